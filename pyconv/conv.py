"""Convolution operators: validated, weights packed once at construction, run many times.

    Conv2D            standard and group convolution (strategies: direct, im2col, winograd, auto)
    DepthwiseConv2D   one KxK filter per channel (with a channel multiplier)
    PointwiseConv2D   1x1 convolution mixing channels
    SeparableConv2D   depthwise then pointwise, fused so the depthwise rows stay in cache
    Dense             fully connected layer, the pointwise GEMM on (N, features)

and the functional forms (``conv2d``, ``depthwise_conv2d``, ...) that build an operator and run it once.
``op.bind(x, out=...)`` gives a :class:`Bound` call: the arguments checked and the kernel planned once,
then each call computes from the arrays' current contents (a loop over frames, or a layer timed alone).
Conv2D, PointwiseConv2D and SeparableConv2D take a ``residual``: an array of the output's shape added
before the activation (a skip connection, ``act(conv(x) + residual)``), fused into the GEMM's store.
Every ``activation`` is None, a function name or a mapping with its parameters (:mod:`pyconv.activations`);
relu and relu6 are fused into the micro-kernels' stores, the others applied to each tile right after it
is stored.  Layouts: activations NHWC; conv2d weights HWIO (KH, KW, C_in/groups, C_out); depthwise (KH, KW, C, M);
pointwise and dense (C_in, C_out). ``with_padding`` gives a windowed operator with other pads that shares
the packed weights (a model run at an input size where an ONNX graph computes other pads).

Several Python threads may call one operator at once, in parallel: a call writes nothing the operator
keeps (weights are packed once, under a lock, then only read; every scratch buffer belongs to the call),
and the kernels release the GIL. Data (``x``, ``residual``) must be floating point; see
:mod:`pyconv.validation`.
"""
from __future__ import annotations

import copy
import functools
import numbers
import threading
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from . import _kernels, isa as _isa, ops, strategy as _strategy
from .packing import (pack_channel_rows, pack_gemm_weights, pack_narrow_group_weights, pack_winograd_weights,
                      unpack_channel_rows, unpack_gemm_weights, unpack_narrow_group_weights, WINOGRAD_TILES)
from .memory import aligned_empty
from .padding import PaddingLike, output_size, resolve_padding
from .threads import resolve_threads
from .activations import Activation, ActivationLike, kernel_args, parse as parse_activation
from .validation import (as_float32_array, check_bias, check_out, positive_pair)

Shape4 = Tuple[int, int, int, int]


def _as_input(x, channels: int, what: str) -> np.ndarray:
    arr = as_float32_array("x", x, 4)
    if arr.shape[3] != channels:
        raise ValueError(f"x has {arr.shape[3]} channels (shape {arr.shape}, NHWC) but {what}")
    return arr


def _check_residual(residual, shape: Shape4, y: np.ndarray) -> Optional[np.ndarray]:
    """The residual as a C-contiguous float32 array of the output ``shape``. Only read, it may be ``x``
    itself (``act(conv(x) + x)``) or ``y`` (updated in place), but not overlap only part of ``y``."""
    if residual is None:
        return None
    r = as_float32_array("residual", residual, len(shape))
    if r.shape != tuple(shape):
        raise ValueError(f"residual has shape {r.shape}, expected the output shape {tuple(shape)}")
    if np.may_share_memory(r, y) and r.__array_interface__["data"][0] != y.__array_interface__["data"][0]:
        raise ValueError("residual must be the output array itself or not overlap it")
    return r


def _add_residual(conv_into, y: np.ndarray, residual: np.ndarray, activation: Optional[Activation],
                  threads: int) -> None:
    """``y = act(conv + residual)`` for kernels whose store cannot add it: ``conv_into(dst, 0, threads)``
    writes the convolution without activation, then one elementwise pass adds and activates."""
    conv = aligned_empty(y.shape) if np.may_share_memory(residual, y) else y
    conv_into(conv, 0, threads)
    ops.add(conv, residual, activation=activation, out=y, threads=threads)


def _repeat_channels(x: np.ndarray, m: int) -> np.ndarray:
    """Input channel c repeated as channels c*m .. c*m + m - 1 (depthwise with a channel multiplier:
    then each output channel filters one input channel one-to-one)."""
    if m == 1:
        return x
    out = aligned_empty((*x.shape[:3], x.shape[3] * m))
    out.reshape(*x.shape, m)[...] = x[..., None]
    return out


def _nbytes(held) -> int:
    """Bytes of an array, a tuple of them (a packing with its index table) or None."""
    if held is None:
        return 0
    return sum(a.nbytes for a in held) if isinstance(held, tuple) else held.nbytes


def _shape4(input_shape) -> Shape4:
    try:
        shape = tuple(int(d) for d in input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple of ints, got {input_shape!r}") from None
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError(f"input_shape must be (N, H, W, C), got {input_shape!r}")
    return shape  # type: ignore[return-value]


class Bound:
    """An operator bound to its arrays by ``op.bind(x, ...)``: the arguments are checked, the strategy
    chosen and the kernel planned once, and each call computes ``out`` from the current contents of
    ``x`` (and ``residual``), as ONNX Runtime's I/O binding does. Refill ``x`` in place between calls
    (``x[...] = frame``). It holds its arrays; one caller at a time (two threads running one bound call
    write the same output).

    >>> op = Conv2D(np.ones((3, 3, 3, 4), np.float32), padding="same")
    >>> x = np.ones((1, 5, 5, 3), np.float32)
    >>> run = op.bind(x)
    >>> x[...] = 2.0
    >>> float(run(threads=1)[0, 2, 2, 0])
    54.0
    """
    __slots__ = ("_run", "out")

    def __init__(self, run: Callable[[int], np.ndarray], out: np.ndarray) -> None:
        self._run = run
        self.out = out

    def __call__(self, threads: Optional[int] = None) -> np.ndarray:
        """Compute into ``out`` and return it, at ``threads`` threads (None: ``OMP_NUM_THREADS`` or every
        core)."""
        return self._run(resolve_threads(threads))


def _bind_arrays(op, x, out: Optional[np.ndarray], **arrays) -> Bound:
    """``op._bind`` over arrays it reads in place: float32 and C-contiguous already, since a converted
    copy would not see the caller's later updates."""
    for name, a in (("x", x), *arrays.items()):
        if a is not None and not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous):
            what = f"{a.dtype} array of strides {a.strides}" if isinstance(a, np.ndarray) else type(a).__name__
            raise TypeError(f"bind reads {name} in place on every call, so it must be a C-contiguous float32 "
                            f"array; got a {what} (np.ascontiguousarray(x, dtype=np.float32) makes one to fill)")
    y = out if out is not None else aligned_empty(op.output_shape(x.shape))
    return Bound(op._bind(x, out=y, **arrays), y)


class _Window:
    """The geometry shared by every windowed convolution: kernel, stride, dilation, padding."""

    def __init__(self, kernel: Tuple[int, int], stride, padding: PaddingLike, dilation) -> None:
        self.kernel = kernel
        self.stride = positive_pair("stride", stride)
        self.dilation = positive_pair("dilation", dilation)
        self.padding = padding
        # Resolving once against a dummy size rejects malformed padding at construction.
        resolve_padding(padding, (1, 1), kernel, self.stride, self.dilation)
        # (h, w) -> (pads, oh, ow): a model calls its operators with the same shapes every run.
        self._resolved: Dict[Tuple[int, int], Tuple[Tuple[int, int, int, int], int, int]] = {}

    def resolve(self, h: int, w: int, x_shape, w_shape) -> Tuple[Tuple[int, int, int, int], int, int]:
        cached = self._resolved.get((h, w))
        if cached is not None:
            return cached
        pads = resolve_padding(self.padding, (h, w), self.kernel, self.stride, self.dilation)
        oh = output_size(h, self.kernel[0], self.stride[0], self.dilation[0], pads[0], pads[1])
        ow = output_size(w, self.kernel[1], self.stride[1], self.dilation[1], pads[2], pads[3])
        if oh < 1 or ow < 1:
            raise ValueError(
                f"kernel {self.kernel[0]}x{self.kernel[1]} (dilation {self.dilation}) is larger than the "
                f"padded input: x {tuple(x_shape)} with pads (top, bottom, left, right) = {pads}, "
                f"w {tuple(w_shape)}")
        self._resolved[(h, w)] = (pads, oh, ow)
        return pads, oh, ow

    def with_padding(self, padding: PaddingLike) -> "_Window":
        return _Window(self.kernel, self.stride, padding, self.dilation)


class Conv2D:
    """Standard (groups=1) or group convolution with weights packed once.

    >>> op = Conv2D(np.ones((3, 3, 3, 4), np.float32), padding="same")
    >>> op(np.ones((1, 5, 5, 3), np.float32)).shape
    (1, 5, 5, 4)
    """

    def __init__(self, w, b=None, *, stride=1, padding: PaddingLike = "valid", dilation=1, groups: int = 1,
                 activation: ActivationLike = None, strategy: str = "auto") -> None:
        w = as_float32_array("w", w, 4, integers=True)
        kh, kw, cg, co = self.kernel_shape = w.shape
        if isinstance(groups, bool) or not isinstance(groups, numbers.Integral):
            raise TypeError(f"groups must be an int, got {groups!r}")
        if groups < 1:
            raise ValueError(f"groups must be positive, got {groups}")
        if min(w.shape) < 1:
            raise ValueError(f"w must have a non-empty shape (KH, KW, C_in/groups, C_out), got {w.shape}")
        if co % groups:
            raise ValueError(f"groups={groups} must divide the output channels: w {w.shape} has "
                             f"C_out={co}")
        if strategy not in _strategy.STRATEGIES:
            raise ValueError(f"strategy must be one of {_strategy.STRATEGIES}, got {strategy!r}")
        self.groups = int(groups)
        self.in_channels, self.out_channels = cg * self.groups, co
        self.window = _Window((kh, kw), stride, padding, dilation)
        if strategy == "winograd":
            reason = _strategy.winograd_unsupported((kh, kw), self.window.stride, self.window.dilation)
            if reason:
                raise ValueError(f"strategy='winograd' cannot serve this convolution: {reason}")
        self.b = check_bias(b, co)
        self.activation = parse_activation(activation)
        self.strategy = strategy
        self._chosen: Dict[Tuple[Shape4, str], str] = {}
        # The direct strategy's micro-kernel per level, and whether the level decides it at all (the
        # narrow-group kernel exists on some levels only).
        self._kinds: Dict[str, str] = {}
        og = co // self.groups
        self._level_decides = _strategy.direct_kernel(self.groups, cg, og, True) != \
            _strategy.direct_kernel(self.groups, cg, og, False)
        self._lock = threading.Lock()
        # The weights are held once, packed for the kernel this convolution runs on (the packed form
        # is a private copy: mutating the caller's array later changes nothing). Another packing, for
        # another instruction-set level or strategy, is derived from it on first use. Winograd's
        # transform has no exact inverse, so its layers keep the HWIO weights instead, and pack the
        # tile size an input's shape calls for (``strategy.winograd_tile``) when it is first bound.
        self._original: Optional[np.ndarray] = w.copy() if strategy == "winograd" else None
        self._source: Optional[str] = None if strategy == "winograd" else self._direct_kind()
        self._packed: Dict[str, object] = ({} if self._source is None else
                                           {self._source: _PACKERS[self._source](w, self.groups)})

    def _geometry(self, x_shape):
        n, h, w, c = x_shape
        if c != self.in_channels:
            raise ValueError(
                f"x has {c} channels (shape {tuple(x_shape)}, NHWC) but w {self.kernel_shape} with "
                f"groups={self.groups} expects C_in = {self.kernel_shape[2]} * {self.groups} = {self.in_channels}")
        pads, oh, ow = self.window.resolve(h, w, x_shape, self.kernel_shape)
        return pads, (n, oh, ow, self.out_channels)

    def output_shape(self, input_shape) -> Shape4:
        """Output shape (N, OH, OW, C_out) for an NHWC input shape."""
        return self._geometry(_shape4(input_shape))[1]

    def with_padding(self, padding: PaddingLike) -> "Conv2D":
        """This convolution with ``padding`` instead, sharing the weights and their packed forms."""
        op = copy.copy(self)
        op.window = self.window.with_padding(padding)
        op._chosen = {}  # strategies depend on the output size, which the pads change
        return op

    def explain(self, input_shape) -> _strategy.Choice:
        """The strategy this operator runs for ``input_shape``, and why."""
        shape = _shape4(input_shape)
        _, out = self._geometry(shape)
        if self.strategy == "winograd":
            m = self._winograd_tile(out)
            return _strategy.Choice("winograd", f"requested explicitly; F({m}x{m},3x3) for a "
                                                f"{out[1]}x{out[2]} output")
        if self.strategy != "auto":
            return _strategy.Choice(self.strategy, "requested explicitly")
        return _strategy.select(self.window.kernel, self.window.stride, self.window.dilation, self.groups,
                                self.in_channels, self.out_channels, out[1:3], self._narrow_groups_ok(),
                                _isa.active())

    def strategy_for(self, input_shape) -> str:
        """The name of the strategy this operator runs for ``input_shape``."""
        return self.explain(input_shape).strategy

    @property
    def nbytes(self) -> int:
        """Bytes of weights this operator holds: its packed forms, and its bias."""
        held = [*self._packed.values(), self._original, self.b]
        return sum(_nbytes(a) for a in held)

    @property
    def w(self) -> np.ndarray:
        """The HWIO weights (KH, KW, C_in/groups, C_out), re-derived from the packed form (a new array)."""
        if self._original is not None:
            return self._original.copy()
        return _UNPACKERS[self._source](self._packed[self._source], self.kernel_shape, self.groups)

    def _winograd_tile(self, out_shape) -> int:
        return _strategy.winograd_tile(self.groups, self.kernel_shape[2], self.out_channels // self.groups,
                                       tuple(out_shape[1:3]), _isa.active())

    def _narrow_groups_ok(self) -> bool:
        return _kernels.narrow_groups_supported(self.kernel_shape[2], self.out_channels // self.groups)

    def _direct_kind(self) -> str:
        """The packing the direct strategy's kernel reads at the active instruction-set level."""
        level = _isa.active()
        kind = self._kinds.get(level)
        if kind is None:
            kind = self._kinds[level] = _strategy.direct_kernel(self.groups, self.kernel_shape[2],
                                                                self.out_channels // self.groups,
                                                                self._narrow_groups_ok())
        return kind

    def _weights(self, kind: str):
        packed = self._packed.get(kind)
        if packed is None:
            with self._lock:
                packed = self._packed.get(kind)
                if packed is None:
                    w = self._original if self._original is not None else self.w
                    packed = self._packed[kind] = _PACKERS[kind](w, self.groups)
        return packed

    def __call__(self, x, *, residual=None, out: Optional[np.ndarray] = None,
                 threads: Optional[int] = None) -> np.ndarray:
        return self._bind(x, residual, out)(resolve_threads(threads))

    def bind(self, x: np.ndarray, *, residual: Optional[np.ndarray] = None,
             out: Optional[np.ndarray] = None) -> Bound:
        """This operator bound to ``x``, ``residual`` and ``out`` (a new array when None): see :class:`Bound`."""
        return _bind_arrays(self, x, out, residual=residual)

    def _bind(self, x, residual=None, out: Optional[np.ndarray] = None) -> Callable[[int], np.ndarray]:
        """Validate the arguments once and return ``run(threads)``, which computes into the bound output
        from the bound arrays' current contents: the graph executor calls it on every run."""
        x = as_float32_array("x", x, 4)
        pads, shape = self._geometry(x.shape)
        y = check_out(out, shape, inputs=(x,))
        r = _check_residual(residual, shape, y)
        # Per shape and level: what auto picks depends on both.
        key = (x.shape, _isa.active())
        name = self._chosen.get(key)
        if name is None:
            name = self._chosen[key] = self.explain(x.shape).strategy
        act = kernel_args(self.activation)
        kh, kw = self.window.kernel
        (sh, sw), (dh, dw) = self.window.stride, self.window.dilation
        b, groups, pt, pl = self.b, self.groups, pads[0], pads[2]

        winograd = f"winograd{self._winograd_tile(shape)}" if name == "winograd" else None

        def choose() -> str:
            if name == "winograd":
                return winograd
            return name if name == "im2col" else self._direct_kind()

        # Pack the weights the chosen kernel needs now, not on the first run.
        kernel = choose()
        # Chosen again on every call only where the level decides: pyconv.isa.use can switch levels between
        # runs.
        by_level = name not in ("winograd", "im2col") and self._level_decides
        bound_kernel = kernel
        self._weights("gemm" if kernel == "im2col" else kernel)
        direct = (_kernels.direct_plan(x, self._weights("gemm"), b, y, kh, kw, sh, sw, dh, dw, pt, pl, groups, act,
                                       r) if kernel == "gemm" else None)
        # The row kernels' plans, by family: made for the kernel chosen now and, should the level change,
        # on the first run of another (a bound call belongs to one caller at a time).
        plans: Dict[str, object] = {}

        def plan(kernel: str):
            if kernel not in plans:
                made = None
                if kernel == "few-channels":
                    made = _kernels.few_channels_plan(x, self._weights(kernel), b, y, kh, kw, sh, sw, dh, dw, pt, pl,
                                                      act, False)
                elif kernel == "depthwise" and self.out_channels == groups:
                    made = _kernels.depthwise_plan(x, self._weights(kernel), b, y, kh, kw, sh, sw, dh, dw, pt, pl,
                                                   act)
                elif kernel == "narrow-groups":
                    packed, idx = self._weights(kernel)
                    made = _kernels.narrow_groups_plan(x, packed, idx, b, y, kh, kw, sh, sw, dh, dw, pt, pl, groups,
                                                       act)
                plans[kernel] = made  # None for a depthwise step with a multiplier: its input is repeated
            return plans[kernel]

        if r is None:
            plan(kernel)

        def conv_into(kernel: str, dst: np.ndarray, act, threads: int) -> None:
            if kernel == winograd:
                _kernels.conv2d_winograd(x, self._weights(kernel), b, dst, pt, pl, groups, act, threads)
            elif kernel == "few-channels":
                _kernels.conv2d_few_channels(x, self._weights(kernel), b, dst, kh, kw, sh, sw, dh, dw, pt, pl, act,
                                             threads, False)
            elif kernel == "depthwise":
                xd = _repeat_channels(x, self.out_channels // groups)
                _kernels.depthwise_conv2d(xd, self._weights("depthwise"), b, dst, kh, kw, sh, sw, dh, dw, pt, pl,
                                          act, threads)
            else:
                packed, idx = self._weights("narrow-groups")
                _kernels.conv2d_narrow_groups(x, packed, idx, b, dst, kh, kw, sh, sw, dh, dw, pt, pl, groups, act,
                                              threads)

        def run(threads: int) -> np.ndarray:
            kernel = choose() if by_level else bound_kernel
            if kernel == "gemm" and direct is not None:
                direct.run(threads)
            elif kernel in ("im2col", "gemm"):
                gemm = _kernels.conv2d_im2col if kernel == "im2col" else _kernels.conv2d_direct
                gemm(x, self._weights("gemm"), b, y, kh, kw, sh, sw, dh, dw, pt, pl, groups, act, threads, r)
            elif r is None:
                bound = plan(kernel)
                if bound is not None:
                    bound.run(threads)
                else:
                    conv_into(kernel, y, act, threads)
            else:
                _add_residual(lambda dst, a, t: conv_into(kernel, dst, a, t), y, r, self.activation, threads)
            return y
        return run

    def reads_nchw(self) -> bool:
        """Whether ``_bind_nchw`` serves this convolution: ungrouped, with few input channels (an RGB first
        layer, whose input a model would otherwise transpose to NHWC first)."""
        return self.groups == 1 and self.in_channels <= _strategy.FEW_CHANNELS

    def _bind_nchw(self, x, out: Optional[np.ndarray] = None) -> Callable[[int], np.ndarray]:
        """``_bind`` for an input in NCHW layout, (N, C_in, H, W), read in place; the output is NHWC.
        A model's first layer runs this way on the caller's array, with no transpose."""
        if not self.reads_nchw():
            raise ValueError(f"an NCHW input needs an ungrouped convolution of at most "
                             f"{_strategy.FEW_CHANNELS} input channels, this one has groups={self.groups}, "
                             f"C_in={self.in_channels}")
        x = as_float32_array("x", x, 4)
        n, c, h, w = x.shape
        if c != self.in_channels:
            hint = " (it looks like NHWC)" if x.shape[3] == self.in_channels else ""
            raise ValueError(f"x has {c} channels (shape {x.shape}, read as NCHW){hint} but w {self.kernel_shape} "
                             f"expects C_in = {self.in_channels}")
        try:
            pads, shape = self._geometry((n, h, w, c))
        except ValueError as exc:
            raise ValueError(f"{exc} (x given as NCHW {x.shape})") from None
        y = check_out(out, shape, inputs=(x,))
        kh, kw = self.window.kernel
        (sh, sw), (dh, dw) = self.window.stride, self.window.dilation
        plan = _kernels.few_channels_plan(x, self._weights("few-channels"), self.b, y, kh, kw, sh, sw, dh, dw,
                                          pads[0], pads[2], kernel_args(self.activation), True)

        def run(threads: int) -> np.ndarray:
            plan.run(threads)
            return y
        return run


def _pack_depthwise(w: np.ndarray, groups: int) -> np.ndarray:
    # HWIO with one input channel per group is (KH, KW, 1, C*M): columns already in output order.
    return np.ascontiguousarray(w.reshape(w.shape[0] * w.shape[1], w.shape[3]))


def _unpack_depthwise(packed: np.ndarray, shape: Tuple[int, int, int, int], groups: int) -> np.ndarray:
    return packed.reshape(shape).copy()


_PACKERS = {"gemm": pack_gemm_weights, "narrow-groups": pack_narrow_group_weights, "depthwise": _pack_depthwise,
            "few-channels": pack_channel_rows,
            **{f"winograd{m}": functools.partial(pack_winograd_weights, tile=m) for m in WINOGRAD_TILES}}
_UNPACKERS = {"gemm": unpack_gemm_weights, "narrow-groups": unpack_narrow_group_weights,
              "depthwise": _unpack_depthwise, "few-channels": unpack_channel_rows}


class DepthwiseConv2D:
    """Depthwise convolution: weights (KH, KW, C, M), output channel c*M + m filters input channel c.

    ``input_activation`` (relu or relu6, or a clip the same as one: the only functions the row kernels
    fuse into their reads) is applied to x as it is read: a pre-activation block's ``conv(relu(x))``
    without a pass writing ``relu(x)`` (Xception's blocks keep x for their shortcut).
    """

    def __init__(self, w, b=None, *, stride=1, padding: PaddingLike = "valid", dilation=1,
                 activation: ActivationLike = None, input_activation: ActivationLike = None) -> None:
        w = as_float32_array("w", w, ndims=(3, 4), integers=True)
        w = w if w.ndim == 4 else w[..., None]
        kh, kw, c, m = self.kernel_shape = w.shape
        if min(w.shape) < 1:
            raise ValueError(f"w must have a non-empty shape (KH, KW, C, M), got {w.shape}")
        self.channels, self.multiplier = c, m
        self.window = _Window((kh, kw), stride, padding, dilation)
        self.b = check_bias(b, c * m)
        self.activation = parse_activation(activation)
        self.input_activation = parse_activation(input_activation, "input_activation")
        if self.input_activation is not None and self.input_activation.fused is None:
            raise ValueError(f"input_activation must be None, 'relu' or 'relu6' (the depthwise kernel fuses "
                             f"only those into its reads), got {self.input_activation}")
        # Column c*M + m of (KH*KW, C*M) is exactly the output channel order.
        self._packed = w.reshape(kh * kw, c * m).copy()

    @property
    def nbytes(self) -> int:
        """Bytes of weights this operator holds."""
        return _nbytes(self._packed) + _nbytes(self.b)

    @property
    def w(self) -> np.ndarray:
        """The weights (KH, KW, C, M), as a new array."""
        return self._packed.reshape(self.kernel_shape).copy()

    def _geometry(self, x_shape):
        n, h, w, c = x_shape
        if c != self.channels:
            raise ValueError(f"x has {c} channels (shape {tuple(x_shape)}, NHWC) but depthwise w "
                             f"{self.kernel_shape} expects C = {self.channels}")
        pads, oh, ow = self.window.resolve(h, w, x_shape, self.kernel_shape)
        return pads, (n, oh, ow, c * self.multiplier)

    def output_shape(self, input_shape) -> Shape4:
        return self._geometry(_shape4(input_shape))[1]

    def with_padding(self, padding: PaddingLike) -> "DepthwiseConv2D":
        """This convolution with ``padding`` instead, sharing the packed weights."""
        op = copy.copy(self)
        op.window = self.window.with_padding(padding)
        return op

    def __call__(self, x, *, out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
        return self._bind(x, out)(resolve_threads(threads))

    def bind(self, x: np.ndarray, *, out: Optional[np.ndarray] = None) -> Bound:
        """This operator bound to ``x`` and ``out`` (a new array when None): see :class:`Bound`."""
        return _bind_arrays(self, x, out)

    def _bind(self, x, out: Optional[np.ndarray] = None) -> Callable[[int], np.ndarray]:
        """See :meth:`Conv2D._bind`."""
        x = as_float32_array("x", x, 4)
        pads, shape = self._geometry(x.shape)
        y = check_out(out, shape, inputs=(x,))
        kh, kw = self.window.kernel
        (sh, sw), (dh, dw) = self.window.stride, self.window.dilation
        packed, b, act, m = self._packed, self.b, kernel_args(self.activation), self.multiplier
        in_act = kernel_args(self.input_activation)[0]
        if m == 1:
            plan = _kernels.depthwise_plan(x, packed, b, y, kh, kw, sh, sw, dh, dw, pads[0], pads[2], act, in_act)

            def run(threads: int) -> np.ndarray:
                plan.run(threads)
                return y
            return run

        def run_repeated(threads: int) -> np.ndarray:
            # The channels are repeated on every run: x's contents change between runs.
            xd = _repeat_channels(x, m)
            _kernels.depthwise_conv2d(xd, packed, b, y, kh, kw, sh, sw, dh, dw, pads[0], pads[2], act, threads,
                                      in_act)
            return y
        return run_repeated


class PointwiseConv2D:
    """1x1 convolution: weights (C_in, C_out), packed once for the GEMM micro-kernel."""

    def __init__(self, w, b=None, *, activation: ActivationLike = None) -> None:
        w = as_float32_array("w", w, 2, integers=True)
        if min(w.shape) < 1:
            raise ValueError(f"w must have a non-empty shape (C_in, C_out), got {w.shape}")
        self.in_channels, self.out_channels = w.shape
        self.b = check_bias(b, self.out_channels)
        self.activation = parse_activation(activation)
        # The only copy of the weights the operator keeps.
        self._packed = pack_gemm_weights(w.reshape(1, 1, *w.shape), 1)

    @property
    def nbytes(self) -> int:
        """Bytes of weights this operator holds."""
        return _nbytes(self._packed) + _nbytes(self.b)

    @property
    def w(self) -> np.ndarray:
        """The weights (C_in, C_out), re-derived from the packed form (a new array)."""
        shape = (1, 1, self.in_channels, self.out_channels)
        return unpack_gemm_weights(self._packed, shape, 1).reshape(shape[2:])

    def output_shape(self, input_shape) -> Shape4:
        n, h, w, c = _shape4(input_shape)
        if c != self.in_channels:
            raise ValueError(f"x has {c} channels (shape {(n, h, w, c)}, NHWC) but pointwise w "
                             f"{(self.in_channels, self.out_channels)} expects C_in = {self.in_channels}")
        return (n, h, w, self.out_channels)

    def __call__(self, x, *, residual=None, out: Optional[np.ndarray] = None,
                 threads: Optional[int] = None) -> np.ndarray:
        return self._bind(x, residual, out)(resolve_threads(threads))

    def bind(self, x: np.ndarray, *, residual: Optional[np.ndarray] = None,
             out: Optional[np.ndarray] = None) -> Bound:
        """This operator bound to ``x``, ``residual`` and ``out`` (a new array when None): see :class:`Bound`."""
        return _bind_arrays(self, x, out, residual=residual)

    def _bind(self, x, residual=None, out: Optional[np.ndarray] = None) -> Callable[[int], np.ndarray]:
        """See :meth:`Conv2D._bind`."""
        x = as_float32_array("x", x, 4)
        shape = self.output_shape(x.shape)
        y = check_out(out, shape, inputs=(x,))
        r = _check_residual(residual, shape, y)
        plan = _kernels.direct_plan(x, self._packed, self.b, y, 1, 1, 1, 1, 1, 1, 0, 0, 1,
                                    kernel_args(self.activation), r)

        def run(threads: int) -> np.ndarray:
            plan.run(threads)
            return y
        return run


class Dense:
    """Fully connected layer: x (N, in_features) @ w (in_features, out_features) + b."""

    def __init__(self, w, b=None, *, activation: ActivationLike = None) -> None:
        self._pointwise = PointwiseConv2D(w, b, activation=activation)
        self.b, self.activation = self._pointwise.b, self._pointwise.activation

    @property
    def nbytes(self) -> int:
        """Bytes of weights this operator holds."""
        return self._pointwise.nbytes

    @property
    def w(self) -> np.ndarray:
        """The weights (in_features, out_features), as a new array."""
        return self._pointwise.w

    def output_shape(self, input_shape) -> Tuple[int, int]:
        shape = tuple(input_shape)
        if len(shape) != 2 or shape[1] != self._pointwise.in_channels:
            raise ValueError(f"x must have shape (N, {self._pointwise.in_channels}) to match dense w "
                             f"{(self._pointwise.in_channels, self._pointwise.out_channels)}, got {shape}")
        return (shape[0], self._pointwise.out_channels)

    def __call__(self, x, *, out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
        return self._bind(x, out)(resolve_threads(threads))

    def bind(self, x: np.ndarray, *, out: Optional[np.ndarray] = None) -> Bound:
        """This operator bound to ``x`` and ``out`` (a new array when None): see :class:`Bound`."""
        return _bind_arrays(self, x, out)

    def _bind(self, x, out: Optional[np.ndarray] = None) -> Callable[[int], np.ndarray]:
        """See :meth:`Conv2D._bind`."""
        x = as_float32_array("x", x, 2)
        shape = self.output_shape(x.shape)
        y = check_out(out, shape, inputs=(x,))
        # The batch rows are the GEMM's M: run them as the pixels of one 1 x N image.
        run_pointwise = self._pointwise._bind(x.reshape(1, 1, *x.shape), None, y.reshape(1, 1, *shape))

        def run(threads: int) -> np.ndarray:
            run_pointwise(threads)
            return y
        return run


class SeparableConv2D:
    """Depthwise (KH, KW, C[, M]) then pointwise (C*M, C_out), fused into one pass over the image.

    ``depthwise_activation`` is applied to the depthwise output (MobileNet's ReLU between the two
    steps); ``activation`` to the final output; ``input_activation`` to x as it is read (see
    :class:`DepthwiseConv2D`).
    """

    def __init__(self, w_depthwise, w_pointwise, b_depthwise=None, b_pointwise=None, *, stride=1,
                 padding: PaddingLike = "valid", dilation=1, depthwise_activation: ActivationLike = None,
                 activation: ActivationLike = None, input_activation: ActivationLike = None) -> None:
        wd = as_float32_array("w_depthwise", w_depthwise, ndims=(3, 4), integers=True)
        channels = wd.shape[2] * (wd.shape[3] if wd.ndim == 4 else 1)
        self.depthwise = DepthwiseConv2D(wd, check_bias(b_depthwise, channels, "b_depthwise"), stride=stride, padding=padding,
                                         dilation=dilation, activation=parse_activation(
                                             depthwise_activation, "depthwise_activation"),
                                         input_activation=input_activation)
        wp = as_float32_array("w_pointwise", w_pointwise, 2, integers=True)
        mid = self.depthwise.channels * self.depthwise.multiplier
        if wp.shape[0] != mid:
            raise ValueError(f"w_pointwise {wp.shape} must have {mid} input channels to follow "
                             f"w_depthwise {self.depthwise.kernel_shape}")
        self.pointwise = PointwiseConv2D(wp, check_bias(b_pointwise, wp.shape[1], "b_pointwise"),
                                         activation=activation)
        self.activation, self.depthwise_activation = self.pointwise.activation, self.depthwise.activation

    def output_shape(self, input_shape) -> Shape4:
        n, oh, ow, _ = self.depthwise.output_shape(input_shape)
        return (n, oh, ow, self.pointwise.out_channels)

    @property
    def nbytes(self) -> int:
        """Bytes of weights this operator holds."""
        return self.depthwise.nbytes + self.pointwise.nbytes

    def with_padding(self, padding: PaddingLike) -> "SeparableConv2D":
        """This convolution with ``padding`` instead, sharing the packed weights."""
        op = copy.copy(self)
        op.depthwise = self.depthwise.with_padding(padding)
        return op

    def __call__(self, x, *, residual=None, out: Optional[np.ndarray] = None,
                 threads: Optional[int] = None) -> np.ndarray:
        return self._bind(x, residual, out)(resolve_threads(threads))

    def bind(self, x: np.ndarray, *, residual: Optional[np.ndarray] = None,
             out: Optional[np.ndarray] = None) -> Bound:
        """This operator bound to ``x``, ``residual`` and ``out`` (a new array when None): see :class:`Bound`."""
        return _bind_arrays(self, x, out, residual=residual)

    def _bind(self, x, residual=None, out: Optional[np.ndarray] = None) -> Callable[[int], np.ndarray]:
        """See :meth:`Conv2D._bind`."""
        x = as_float32_array("x", x, 4)
        dw, pw = self.depthwise, self.pointwise
        pads, _ = dw._geometry(x.shape)
        shape = self.output_shape(x.shape)
        y = check_out(out, shape, inputs=(x,))
        r = _check_residual(residual, shape, y)
        if dw.multiplier > 1:
            def run_steps(threads: int) -> np.ndarray:
                return pw(dw(x, threads=threads), residual=r, out=y, threads=threads)
            return run_steps
        kh, kw = dw.window.kernel
        (sh, sw), (dh, ddw) = dw.window.stride, dw.window.dilation
        act_dw, act = kernel_args(dw.activation), kernel_args(self.activation)
        plan = _kernels.separable_plan(x, dw._packed, dw.b, pw._packed, pw.b, y, kh, kw, sh, sw, dh, ddw, pads[0],
                                       pads[2], act_dw, act, r, kernel_args(dw.input_activation)[0])

        def run(threads: int) -> np.ndarray:
            plan.run(threads)
            return y
        return run


def conv2d(x, w, b=None, *, stride=1, padding: PaddingLike = "valid", dilation=1, groups: int = 1,
           activation: ActivationLike = None, strategy: str = "auto", residual=None,
           out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
    """Standard or group convolution of NHWC ``x`` with HWIO ``w`` (KH, KW, C_in/groups, C_out), plus
    ``residual`` (an array of the output's shape) before the activation.

    Packs ``w`` on every call: to run the same weights repeatedly, build a :class:`Conv2D` once.
    """
    return Conv2D(w, b, stride=stride, padding=padding, dilation=dilation, groups=groups,
                  activation=activation, strategy=strategy)(x, residual=residual, out=out, threads=threads)


def depthwise_conv2d(x, w, b=None, *, stride=1, padding: PaddingLike = "valid", dilation=1,
                     activation: ActivationLike = None, input_activation: ActivationLike = None,
                     out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
    """Depthwise convolution of NHWC ``x`` with ``w`` (KH, KW, C[, M])."""
    return DepthwiseConv2D(w, b, stride=stride, padding=padding, dilation=dilation, activation=activation,
                           input_activation=input_activation)(x, out=out, threads=threads)


def pointwise_conv2d(x, w, b=None, *, activation: ActivationLike = None, residual=None,
                     out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
    """1x1 convolution of NHWC ``x`` with ``w`` (C_in, C_out), plus ``residual`` before the activation."""
    return PointwiseConv2D(w, b, activation=activation)(x, residual=residual, out=out, threads=threads)


def separable_conv2d(x, w_depthwise, w_pointwise, b_depthwise=None, b_pointwise=None, *, stride=1,
                     padding: PaddingLike = "valid", dilation=1, depthwise_activation: ActivationLike = None,
                     activation: ActivationLike = None, input_activation: ActivationLike = None, residual=None,
                     out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
    """Depthwise separable convolution: depthwise ``w_depthwise`` then pointwise ``w_pointwise``, plus
    ``residual`` before the final activation."""
    return SeparableConv2D(w_depthwise, w_pointwise, b_depthwise, b_pointwise, stride=stride, padding=padding,
                           dilation=dilation, depthwise_activation=depthwise_activation, activation=activation,
                           input_activation=input_activation)(x, residual=residual, out=out, threads=threads)


def dense(x, w, b=None, *, activation: ActivationLike = None, out: Optional[np.ndarray] = None,
          threads: Optional[int] = None) -> np.ndarray:
    """Fully connected layer: ``x`` (N, in) times ``w`` (in, out) plus ``b``."""
    return Dense(w, b, activation=activation)(x, out=out, threads=threads)


def explain_conv2d(x_shape, w_shape, *, stride=1, padding: PaddingLike = "valid", dilation=1,
                   groups: int = 1, strategy: str = "auto") -> str:
    """Which strategy ``conv2d`` runs for these shapes (or arrays), and why, e.g. ``"direct: 1x1 ..."``."""
    x_shape = getattr(x_shape, "shape", x_shape)
    w = np.zeros(tuple(int(d) for d in getattr(w_shape, "shape", w_shape)), dtype=np.float32)
    choice = Conv2D(w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    strategy=strategy).explain(x_shape)
    return f"{choice.strategy}: {choice.reason}"
