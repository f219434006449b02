"""The operators that are not convolutions, as functions: max and average pooling, global average
pooling, broadcasting binary ops (add, subtract, multiply, divide), per-channel scale/shift, an
activation function on its own and PReLU, concatenation along channels, slicing along an axis, channel
shuffle, softmax, spatial resizing (nearest, bilinear), and the NCHW <-> NHWC layout conversions.  Every
``activation`` is None, a function name or a mapping with its parameters (:mod:`pyconv.activations`),
applied to each chunk of the result as it is written.

Activations are NHWC; the channel-wise ops (scale_shift, concat, channel_shuffle, softmax) take any
rank and work on the last axis; the binary ops broadcast by numpy's rules. Every function validates
and converts its arguments here, once, so the nogil kernels in :mod:`pyconv._pooling` and
:mod:`pyconv._gather` only ever see legal, C-contiguous float32 arrays. Each accepts
``out=`` (a preallocated C-contiguous float32 array of the result's shape) and ``threads=``, the most
threads the call may use (``None``: as resolved by :mod:`pyconv.threads`). Small inputs use fewer: these
ops are memory-bound and cheap, and waking a second thread, or waiting at the barrier for one that
another process has preempted, would cost more than it saves. Results are identical for every thread
count.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Callable, Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _gather, _kernels, _layout, _pooling
from .padding import PaddingLike, output_size, resolve_padding
from .threads import resolve_threads
from .activations import ActivationLike, kernel_args
from .validation import as_float32_array, check_out, positive_pair

__all__ = [
    "activation",
    "add",
    "avg_pool2d",
    "channel_shuffle",
    "concat",
    "divide",
    "global_avg_pool2d",
    "max_pool2d",
    "multiply",
    "nchw_to_nhwc",
    "nhwc_to_nchw",
    "prelu",
    "resize",
    "scale_shift",
    "slice_axis",
    "softmax",
    "subtract",
]

# Work (element reads, roughly) that one more thread must have to be worth starting: about 20-50 us.
_WORK_PER_THREAD = 1 << 16


def _threads_for(threads: Optional[int], work: int) -> int:
    return max(1, min(resolve_threads(threads), work // _WORK_PER_THREAD))


def _at_least_1d(name: str, x: ArrayLike) -> np.ndarray:
    arr = as_float32_array(name, x)
    # Checked on x itself: the conversion turns a scalar into shape (1,).
    if np.ndim(x) == 0:
        raise ValueError(f"{name} must have at least 1 dimension, got a scalar")
    return arr


def _reject_overlap(out: np.ndarray, inputs: Sequence[np.ndarray], *, in_place_ok: Sequence[np.ndarray] = ()):
    """Refuse an ``out`` that overlaps an input, except one it exactly coincides with in ``in_place_ok``."""
    for x in inputs:
        if not np.may_share_memory(out, x):
            continue
        same = (x.shape == out.shape and x.__array_interface__["data"][0] == out.__array_interface__["data"][0])
        if same and any(x is y for y in in_place_ok):
            continue
        raise ValueError(f"out must not overlap the inputs of this operation (out shape {out.shape}, "
                         f"overlapping input shape {x.shape})")


def _rows(x: np.ndarray) -> np.ndarray:
    """``x`` as a ``(rows, last axis)`` view; no copy for a C-contiguous array."""
    # reshape cannot infer -1 next to a zero-length axis; the kernels do nothing with such arrays.
    return x.reshape(-1, x.shape[-1]) if x.shape[-1] else x.reshape(0, 0)


# ---------------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------------

def _pooled_size(axis: str, size: int, k: int, stride: int, before: int, after: int, ceil_mode: bool,
                 padding: PaddingLike) -> int:
    out = output_size(size, k, stride, 1, before, after, ceil_mode)
    if out < 1:
        raise ValueError(f"kernel {axis} {k} is larger than the padded input {axis} "
                         f"{size} + {before} + {after} (padding={padding!r})")
    # Windows start at o*stride - before, in order, so only the first and last can miss the input.
    if before >= k or (out - 1) * stride - before >= size:
        raise ValueError(f"padding={padding!r} leaves a pooling window along the {axis} with no input "
                         f"cell (pads ({before}, {after}), kernel {k}, stride {stride}, input {size}); "
                         f"each pad must be smaller than the kernel")
    return out


Run = Callable[[Optional[int]], np.ndarray]


def _pool_bind(x: ArrayLike, kernel, stride, padding: PaddingLike, ceil_mode: bool, count_include_pad: bool,
               is_max: bool, activation: ActivationLike, out: Optional[np.ndarray]) -> Run:
    """Validate a pooling call once; ``run(threads)`` then pools the bound arrays' current contents
    (the graph runtime binds its nodes once per plan; the public functions bind and run at once)."""
    act = kernel_args(activation)
    x = as_float32_array("x", x, 4)
    kh, kw = positive_pair("kernel", kernel)
    sh, sw = (kh, kw) if stride is None else positive_pair("stride", stride)
    n, h, w, c = x.shape
    top, bottom, left, right = resolve_padding(padding, (h, w), (kh, kw), (sh, sw), (1, 1))
    oh = _pooled_size("height", h, kh, sh, top, bottom, bool(ceil_mode), padding)
    ow = _pooled_size("width", w, kw, sw, left, right, bool(ceil_mode), padding)
    y = check_out(out, (n, oh, ow, c))
    _reject_overlap(y, [x])
    cip = bool(count_include_pad)

    def run(threads: Optional[int]) -> np.ndarray:
        _pooling.pool2d(x, y, kh, kw, sh, sw, top, bottom, left, right, is_max, cip,
                        _threads_for(threads, y.size * kh * kw), act)
        return y
    return run


def max_pool2d(x: ArrayLike, kernel, stride=None, padding: PaddingLike = "valid", *, ceil_mode: bool = False,
               activation: ActivationLike = None, out: Optional[np.ndarray] = None,
               threads: Optional[int] = None) -> np.ndarray:
    """Max pooling over ``kernel`` windows of an NHWC batch.

    Args:
        x: ``(N, H, W, C)``.
        kernel: window size, an int or ``(kh, kw)``.
        stride: an int or ``(sh, sw)``; ``None`` means the kernel size.
        padding: ``"valid"``, ``"same"`` (TensorFlow), an int, ``(pad_h, pad_w)`` or
            ``((top, bottom), (left, right))``. Padded cells are never candidates (not zeros).
        ceil_mode: round the output size up (ONNX/PyTorch), keeping only windows that start inside the
            input or its top/left padding.
        activation: see :mod:`pyconv.activations`, applied to each pooled value.
        out: optional preallocated result.
        threads: thread count (see the module docstring).

    Returns:
        ``(N, OH, OW, C)``. A NaN in a window gives NaN, as in PyTorch.

    Raises:
        ValueError: the kernel does not fit the padded input, or a pad would leave a window with no
            input cell (each pad must be smaller than the kernel).
    """
    return _pool_bind(x, kernel, stride, padding, ceil_mode, False, True, activation, out)(threads)


def avg_pool2d(x: ArrayLike, kernel, stride=None, padding: PaddingLike = "valid", *, ceil_mode: bool = False,
               count_include_pad: bool = False, activation: ActivationLike = None,
               out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
    """Average pooling over ``kernel`` windows of an NHWC batch.

    Arguments as :func:`max_pool2d`, plus ``count_include_pad``: divide by the window's cells inside
    the padded input (padding counts as zeros; the overhang ``ceil_mode`` adds past the padding does
    not count, as in PyTorch) instead of by its cells inside the input.

    Returns:
        ``(N, OH, OW, C)``.
    """
    return _pool_bind(x, kernel, stride, padding, ceil_mode, count_include_pad, False, activation, out)(threads)


def global_avg_pool2d(x: ArrayLike, *, out: Optional[np.ndarray] = None,
                      threads: Optional[int] = None) -> np.ndarray:
    """Mean over H and W of an NHWC batch ``(N, H, W, C)``: returns ``(N, C)`` (summed in float64)."""
    return _global_avg_pool_bind(x, out)(threads)


def _global_avg_pool_bind(x: ArrayLike, out: Optional[np.ndarray]) -> Run:
    """See :func:`_pool_bind`."""
    x = as_float32_array("x", x, 4)
    n, h, w, c = x.shape
    if h * w == 0:
        raise ValueError(f"x must have non-empty spatial dimensions, got shape {x.shape}")
    y = check_out(out, (n, c))
    _reject_overlap(y, [x])

    def run(threads: Optional[int]) -> np.ndarray:
        _pooling.global_avg_pool2d(x, y, _threads_for(threads, x.size))
        return y
    return run


# ---------------------------------------------------------------------------------------------------
# Channel-wise ops
# ---------------------------------------------------------------------------------------------------

# Each binary op's kernel code (ukernels/common.h), and its code with the operands swapped (the
# kernel broadcasts its second operand; a broadcast left operand is passed second).
_BINARY_CODES = {"add": (0, 0), "subtract": (1, 4), "multiply": (2, 2), "divide": (3, 5)}


def _broadcast_split(full: tuple[int, ...], small: tuple[int, ...]) -> Optional[tuple[int, int, int]]:
    """``(P, R, K)`` when ``small`` (right-aligned) matches ``full`` on its leading and trailing axes and
    is 1 on those between: ``full`` then reads as ``(P, R, K)`` and ``small`` as ``(P, 1, K)``; None for
    any other pattern. Axes of length 1 in ``full`` match either way."""
    small = (1,) * (len(full) - len(small)) + tuple(small)
    axes = [(f, f == s) for f, s in zip(full, small) if f != 1]
    i = 0
    while i < len(axes) and axes[i][1]:
        i += 1
    j = i
    while j < len(axes) and not axes[j][1]:
        j += 1
    if not all(same for _, same in axes[j:]):
        return None
    sizes = [f for f, _ in axes]
    if i == j:  # nothing broadcast: one run of equal shapes
        return 1, 1, math.prod(sizes)
    return math.prod(sizes[:i]), math.prod(sizes[i:j]), math.prod(sizes[j:])


def _binary_bind(op: str, a: ArrayLike, b: ArrayLike, activation: ActivationLike, out: Optional[np.ndarray]) -> Run:
    """See :func:`_pool_bind`. ``op``: "add", "subtract", "multiply" or "divide"."""
    act = kernel_args(activation)
    a = _at_least_1d("a", a)
    b = _at_least_1d("b", b)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"a and b must broadcast against each other (numpy's rules), got a {a.shape} and "
                         f"b {b.shape}") from None
    y = check_out(out, shape)
    _reject_overlap(y, [a, b], in_place_ok=[x for x in (a, b) if x.shape == shape])
    code, swapped = _BINARY_CODES[op]
    split = None
    if a.shape == shape:
        full, small, split = a, b, _broadcast_split(shape, b.shape)
    elif b.shape == shape:
        full, small, split, code = b, a, _broadcast_split(shape, a.shape), swapped
    flat_y = y.reshape(-1)
    if split is not None:
        p, r, k = split
        flat_full, flat_small = full.reshape(-1), small.reshape(-1)

        def run(threads: Optional[int]) -> np.ndarray:
            _pooling.binary(flat_full, flat_small, flat_y, p, r, k, code, act, _threads_for(threads, y.size))
            return y
        return run
    # Both operands broadcast, or the broadcast axes are not one run: the broadcast operands are copied
    # to the full shape on each run (the bound arrays' contents change between runs), then added as equals.
    code = _BINARY_CODES[op][0]
    buffers = [None if x.shape == shape else np.empty(shape, np.float32) for x in (a, b)]

    def run(threads: Optional[int]) -> np.ndarray:
        for x, buf in zip((a, b), buffers):
            if buf is not None:
                np.copyto(buf, np.broadcast_to(x, shape))
        fa, fb = (x if buf is None else buf for x, buf in zip((a, b), buffers))
        _pooling.binary(fa.reshape(-1), fb.reshape(-1), flat_y, 1, 1, y.size, code, act,
                        _threads_for(threads, y.size))
        return y
    return run


def _binary_doc(symbol: str) -> str:
    return f"""``activation(a {symbol} b)``, elementwise, ``a`` and ``b`` broadcast against each other by numpy's rules.

    ``activation``: see :mod:`pyconv.activations`, applied as each chunk is stored. ``out`` may be an input of
    the result's shape itself (in place), but no other array overlapping the inputs.

    Shapes that read one operand whole and the other broadcast over a run of axes (same shapes, a
    ``(C,)`` vector against ``(..., C)``, ``(N, 1, 1, C)`` against ``(N, H, W, C)``: a squeeze-and-excitation
    gate, ``(N, H, W, 1)`` against ``(N, H, W, C)``) run without a copy; other broadcasts copy the broadcast
    operands to the result's shape first. Results are identical for any thread count.
    """


def add(a: ArrayLike, b: ArrayLike, *, activation: ActivationLike = None, out: Optional[np.ndarray] = None,
        threads: Optional[int] = None) -> np.ndarray:
    return _binary_bind("add", a, b, activation, out)(threads)


def subtract(a: ArrayLike, b: ArrayLike, *, activation: ActivationLike = None, out: Optional[np.ndarray] = None,
             threads: Optional[int] = None) -> np.ndarray:
    return _binary_bind("subtract", a, b, activation, out)(threads)


def multiply(a: ArrayLike, b: ArrayLike, *, activation: ActivationLike = None, out: Optional[np.ndarray] = None,
             threads: Optional[int] = None) -> np.ndarray:
    return _binary_bind("multiply", a, b, activation, out)(threads)


def divide(a: ArrayLike, b: ArrayLike, *, activation: ActivationLike = None, out: Optional[np.ndarray] = None,
           threads: Optional[int] = None) -> np.ndarray:
    return _binary_bind("divide", a, b, activation, out)(threads)


add.__doc__ = _binary_doc("+")
subtract.__doc__ = _binary_doc("-")
multiply.__doc__ = _binary_doc("*")
divide.__doc__ = _binary_doc("/") + "\n    Division is IEEE float32 division: ``x / 0`` is +-inf or NaN, as in numpy.\n"


def _channel_vector(name: str, v: Optional[ArrayLike], channels: int, fill: float) -> np.ndarray:
    if v is None:
        return np.full(channels, fill, dtype=np.float32)
    arr = as_float32_array(name, v, integers=True)
    if arr.shape in ((), (1,)):
        return np.full(channels, arr.reshape(()), dtype=np.float32)
    if arr.shape != (channels,):
        raise ValueError(f"{name} must be a scalar or have shape ({channels},) to match x's last axis, "
                         f"got shape {arr.shape}")
    return arr


def scale_shift(x: ArrayLike, scale: Optional[ArrayLike] = None, shift: Optional[ArrayLike] = None, *,
                activation: ActivationLike = None, out: Optional[np.ndarray] = None,
                threads: Optional[int] = None) -> np.ndarray:
    """``activation(x * scale + shift)`` with per-channel ``scale`` and ``shift``.

    ``scale`` and ``shift`` are ``(C,)`` vectors over x's last axis, or scalars; ``None`` means 1 and 0.
    This is a folded batch norm, or an ONNX ``Mul``/``Add`` by a constant. The multiply-add may be one
    FMA (one rounding). ``out`` may be ``x`` itself.
    """
    act = kernel_args(activation)
    x = _at_least_1d("x", x)
    c = x.shape[-1]
    s = _channel_vector("scale", scale, c, 1.0)
    t = _channel_vector("shift", shift, c, 0.0)
    y = check_out(out, x.shape)
    _reject_overlap(y, [x, s, t], in_place_ok=[x])
    _pooling.scale_shift(_rows(x), s, t, _rows(y), act, _threads_for(threads, x.size))
    return y


def activation(x: ArrayLike, function: ActivationLike, *, out: Optional[np.ndarray] = None,
               threads: Optional[int] = None) -> np.ndarray:
    """``function(x)`` elementwise, for any shape: ``function`` is a name (``"sigmoid"``), a mapping
    (``{"function": "leaky_relu", "alpha": 0.1}``) or None (a copy).  ``out`` may be ``x`` itself."""
    return _activation_bind(x, function, out)(threads)


def _activation_bind(x: ArrayLike, function: ActivationLike, out: Optional[np.ndarray]) -> Run:
    """See :func:`_pool_bind`."""
    act = kernel_args(function, "function")
    x = _at_least_1d("x", x)
    y = check_out(out, x.shape)
    _reject_overlap(y, [x], in_place_ok=[x])
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)

    def run(threads: Optional[int]) -> np.ndarray:
        _pooling.activation(flat_x, flat_y, act, _threads_for(threads, x.size))
        return y
    return run


def prelu(x: ArrayLike, alpha: ArrayLike, *, out: Optional[np.ndarray] = None,
          threads: Optional[int] = None) -> np.ndarray:
    """``x`` where ``x >= 0``, else ``alpha * x``: ``alpha`` a scalar, a ``(C,)`` vector over x's last
    axis, or any shape that broadcasts (numpy's rules) to one sample's shape ``x.shape[1:]``.  NaN passes
    through.  ``out`` may be ``x`` itself."""
    return _prelu_bind(x, alpha, out)(threads)


def _prelu_bind(x: ArrayLike, alpha: ArrayLike, out: Optional[np.ndarray]) -> Run:
    """See :func:`_pool_bind`; the slopes are read here, once."""
    x = _at_least_1d("x", x)
    a = as_float32_array("alpha", alpha, integers=True)
    c = x.shape[-1]
    if a.size == 1 or a.shape == (c,):
        slopes = np.ascontiguousarray(np.broadcast_to(a.reshape(-1), (c,)))
        rows = _rows(x)
    else:
        sample = x.shape[1:]
        # Leading unit axes (a batch axis of 1) broadcast away.
        a = a.reshape(a.shape[a.ndim - len(sample):]) if a.ndim > len(sample) and \
            not any(d != 1 for d in a.shape[:a.ndim - len(sample)]) else a
        try:
            slopes = np.ascontiguousarray(np.broadcast_to(a, sample)).reshape(-1)
        except ValueError:
            raise ValueError(f"alpha of shape {a.shape} must be a scalar, ({c},), or broadcast to one "
                             f"sample's shape {sample} of x {x.shape}") from None
        rows = x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(1, -1)
    y = check_out(out, x.shape)
    _reject_overlap(y, [x, a], in_place_ok=[x])
    rows_y = y.reshape(rows.shape)

    def run(threads: Optional[int]) -> np.ndarray:
        _pooling.prelu(rows, slopes, rows_y, _threads_for(threads, x.size))
        return y
    return run


def concat(xs: Sequence[ArrayLike], *, out: Optional[np.ndarray] = None,
           threads: Optional[int] = None) -> np.ndarray:
    """Concatenate along the channel (last) axis; the inputs agree on every other axis (N, H, W)."""
    return _concat_bind(xs, out)(threads)


def _concat_bind(xs: Sequence[ArrayLike], out: Optional[np.ndarray]) -> Run:
    """See :func:`_pool_bind`."""
    if isinstance(xs, np.ndarray) or not isinstance(xs, Sequence) or isinstance(xs, (str, bytes)):
        raise TypeError(f"xs must be a list or tuple of arrays, got {type(xs).__name__}")
    if len(xs) == 0:
        raise ValueError("xs must hold at least one array")
    arrays = [_at_least_1d(f"xs[{i}]", x) for i, x in enumerate(xs)]
    lead = arrays[0].shape[:-1]
    for i, arr in enumerate(arrays):
        if arr.shape[:-1] != lead:
            raise ValueError(f"xs[{i}] has shape {arr.shape}, which does not match xs[0] {arrays[0].shape} "
                             f"on every axis but the last; shapes: {[a.shape for a in arrays]}")
    y = check_out(out, lead + (sum(a.shape[-1] for a in arrays),))
    _reject_overlap(y, arrays)
    rows, y_rows = [_rows(a) for a in arrays if a.shape[-1]], _rows(y)

    def run(threads: Optional[int]) -> np.ndarray:
        _pooling.concat(rows, y_rows, _threads_for(threads, y.size))
        return y
    return run


def channel_shuffle(x: ArrayLike, groups: int, *, out: Optional[np.ndarray] = None,
                    threads: Optional[int] = None) -> np.ndarray:
    """ShuffleNet's channel shuffle: split the last axis C into ``groups`` x ``C // groups``, transpose,
    flatten, so output channel ``j * groups + i`` is input channel ``i * (C // groups) + j``."""
    return _shuffle_bind(x, groups, out)(threads)


def _shuffle_bind(x: ArrayLike, groups: int, out: Optional[np.ndarray]) -> Run:
    """See :func:`_pool_bind`."""
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral):
        raise TypeError(f"groups must be a positive int, got {groups!r}")
    x = _at_least_1d("x", x)
    c = x.shape[-1]
    if groups < 1 or c % groups:
        raise ValueError(f"groups must be a positive divisor of the channel count {c} "
                         f"(x shape {x.shape}), got {groups}")
    y = check_out(out, x.shape)
    _reject_overlap(y, [x])
    x_rows, y_rows, g = _rows(x), _rows(y), int(groups)

    def run(threads: Optional[int]) -> np.ndarray:
        _pooling.channel_shuffle(x_rows, y_rows, g, _threads_for(threads, x.size))
        return y
    return run


def softmax(x: ArrayLike, axis: int = -1, *, out: Optional[np.ndarray] = None,
            threads: Optional[int] = None) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed as ``exp(x - max)`` so large logits cannot
    overflow (sums in float64). Any ``axis`` works; the last one avoids a transposed copy."""
    x = _at_least_1d("x", x)
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int, got {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for x of shape {x.shape}")
    axis = int(axis) % x.ndim
    y = check_out(out, x.shape)
    _reject_overlap(y, [x])
    nthreads = _threads_for(threads, x.size)
    if axis == x.ndim - 1:
        _pooling.softmax(_rows(x), _rows(y), nthreads)
        return y
    xt = np.ascontiguousarray(np.moveaxis(x, axis, -1))
    yt = np.empty_like(xt)
    _pooling.softmax(_rows(xt), _rows(yt), nthreads)
    y[...] = np.moveaxis(yt, -1, axis)
    return y


def slice_axis(x: ArrayLike, axis: int, start: Optional[int] = None, stop: Optional[int] = None, step: int = 1, *,
               out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
    """``x[..., start:stop:step, ...]`` along ``axis``, as a fresh C-contiguous array (or into ``out``).

    ``start`` and ``stop`` follow Python's slices: negative values count from the end, values past
    either end are clamped, ``None`` is the end. ``step`` is positive. The result is a copy, not a
    view: the graph runtime keeps every tensor in its arena, and the readers of a slice (convolutions)
    take C-contiguous arrays; a channel slice copies one contiguous run per pixel.

    Raises:
        ValueError: ``axis`` out of range, ``step`` < 1, or an empty result.
    """
    return _slice_bind(x, axis, start, stop, step, out)(threads)


def _slice_bind(x: ArrayLike, axis: int, start: Optional[int], stop: Optional[int], step: int,
                out: Optional[np.ndarray]) -> Run:
    """See :func:`_pool_bind`."""
    x = _at_least_1d("x", x)
    for name, value in (("axis", axis), ("start", start), ("stop", stop), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise TypeError(f"{name} must be an int{' or None' if name in ('start', 'stop') else ''}, got {value!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for x of shape {x.shape}")
    if step is None or step < 1:
        raise ValueError(f"step must be a positive int, got {step!r}")
    axis = int(axis) % x.ndim
    size = x.shape[axis]
    begin, _, _ = slice(start, stop, step).indices(size)
    count = len(range(*slice(start, stop, step).indices(size)))
    if count == 0:
        raise ValueError(f"the slice [{start}:{stop}:{step}] of axis {axis} (length {size}) of x {x.shape} is empty")
    y = check_out(out, x.shape[:axis] + (count,) + x.shape[axis + 1:])
    _reject_overlap(y, [x])
    outer, inner = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1:])
    fx, fy = x.reshape(-1), y.reshape(-1)

    def run(threads: Optional[int]) -> np.ndarray:
        _gather.slice_axis(fx, fy, outer, size, inner, begin, int(step), count, _threads_for(threads, y.size))
        return y
    return run


RESIZE_MODES = ("nearest", "bilinear")
COORDINATE_TRANSFORMATIONS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                              "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _resize_source(out_size: int, in_size: int, scale: np.float32, transformation: str) -> np.ndarray:
    """The input coordinate of each output coordinate along one axis, ONNX's formulas in float32 (as ONNX
    Runtime computes them)."""
    o = np.arange(out_size, dtype=np.float32)
    half = np.float32(0.5)
    if transformation == "half_pixel":
        return (o + half) / scale - half
    if transformation == "pytorch_half_pixel":
        return (o + half) / scale - half if out_size > 1 else np.zeros(1, np.float32)
    if transformation == "align_corners":
        return o * np.float32(in_size - 1) / np.float32(out_size - 1) if out_size > 1 else np.zeros(1, np.float32)
    if transformation == "asymmetric":
        return o / scale
    return (o + half) / scale  # tf_half_pixel_for_nn


def _nearest_index(source: np.ndarray, in_size: int, nearest_mode: str) -> np.ndarray:
    floor = np.floor(source)
    if nearest_mode == "floor":
        index = floor
    elif nearest_mode == "ceil":
        index = np.ceil(source)
    else:
        half = source - floor == np.float32(0.5)
        index = np.where(half, floor if nearest_mode == "round_prefer_floor" else floor + 1, np.floor(source + 0.5))
    return np.clip(index, 0, in_size - 1).astype(np.intp)


def _linear_taps(source: np.ndarray, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The two input indices each output reads and their weights; coordinates outside the input are
    clamped to its edge."""
    source = np.clip(source, np.float32(0), np.float32(in_size - 1))
    i0 = np.minimum(source.astype(np.intp), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = np.where(i0 == i1, np.float32(0.5), source - i0.astype(np.float32)).astype(np.float32)
    w0 = np.where(i0 == i1, np.float32(0.5), i1.astype(np.float32) - source).astype(np.float32)
    return i0, i1, w0, w1


def resize_output_size(in_hw: tuple[int, int], size=None, scale=None) -> tuple[int, int]:
    """The output (H, W) of :func:`resize`: ``size``, or ``floor(in * scale)`` per axis (in float32)."""
    if size is not None:
        return positive_pair("size", size)
    sh, sw = _scale_pair(scale)
    return tuple(int(np.float32(s) * np.float32(n)) for s, n in zip((sh, sw), in_hw))


def _scale_pair(scale) -> tuple[float, float]:
    pair = (scale, scale) if isinstance(scale, numbers.Real) else tuple(scale)
    if len(pair) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"scale must be a positive number or an (sh, sw) pair of them, got {scale!r}")
    if not all(math.isfinite(v) and v > 0 for v in pair):
        raise ValueError(f"scale must be positive and finite, got {scale!r}")
    return float(pair[0]), float(pair[1])


def resize(x: ArrayLike, size=None, *, scale=None, mode: str = "nearest",
           coordinate_transformation: str = "half_pixel", nearest_mode: str = "round_prefer_floor",
           out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
    """Resize the spatial axes of an NHWC batch ``(N, H, W, C)``, as ONNX ``Resize`` does.

    Args:
        size: the output ``(OH, OW)`` (or one int for both); the scale is then ``OH / H``, ``OW / W``.
        scale: instead of ``size``, ``(sh, sw)`` (or one number): the output is ``floor(H * sh)`` by
            ``floor(W * sw)`` and the coordinate transformation uses these scales as given.
        mode: ``"nearest"`` or ``"bilinear"`` (ONNX ``"linear"`` on H and W).
        coordinate_transformation: how an output coordinate ``o`` maps to the input (ONNX's
            ``coordinate_transformation_mode``): ``"half_pixel"`` ``(o + 0.5) / s - 0.5``,
            ``"pytorch_half_pixel"`` (the same, 0 when the output has length 1), ``"align_corners"``
            ``o * (in - 1) / (out - 1)``, ``"asymmetric"`` ``o / s``, ``"tf_half_pixel_for_nn"``
            ``(o + 0.5) / s``. Bilinear sources outside the input are clamped to its edge.
        nearest_mode: rounding of the source coordinate for ``"nearest"``: ``"round_prefer_floor"``,
            ``"round_prefer_ceil"``, ``"floor"`` or ``"ceil"`` (then clamped into the input).
        out, threads: see the module docstring.

    Returns:
        ``(N, OH, OW, C)``.
    """
    return _resize_bind(x, size, scale, mode, coordinate_transformation, nearest_mode, out)(threads)


def _resize_bind(x: ArrayLike, size, scale, mode: str, coordinate_transformation: str, nearest_mode: str,
                 out: Optional[np.ndarray]) -> Run:
    """See :func:`_pool_bind`; the index and weight tables are computed here, once."""
    x = as_float32_array("x", x, 4)
    for name, value, allowed in (("mode", mode, RESIZE_MODES),
                                 ("coordinate_transformation", coordinate_transformation, COORDINATE_TRANSFORMATIONS),
                                 ("nearest_mode", nearest_mode, NEAREST_MODES)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    if (size is None) == (scale is None):
        raise ValueError("give exactly one of size and scale")
    n, h, w, c = x.shape
    if h == 0 or w == 0:
        raise ValueError(f"x must have non-empty spatial dimensions, got shape {x.shape}")
    oh, ow = resize_output_size((h, w), size, scale)
    if oh < 1 or ow < 1:
        raise ValueError(f"scale {scale!r} gives an empty output ({oh}x{ow}) for input {h}x{w}")
    scales = (np.float32(oh) / np.float32(h), np.float32(ow) / np.float32(w)) if scale is None \
        else tuple(np.float32(s) for s in _scale_pair(scale))
    y = check_out(out, (n, oh, ow, c))
    _reject_overlap(y, [x])
    src_y = _resize_source(oh, h, scales[0], coordinate_transformation)
    src_x = _resize_source(ow, w, scales[1], coordinate_transformation)
    if mode == "nearest":
        # An axis of scale 1 is copied as it is, as ONNX Runtime does (tf_half_pixel_for_nn would
        # otherwise shift it by half a pixel).
        ys = np.arange(h, dtype=np.intp) if scales[0] == 1 and oh == h else _nearest_index(src_y, h, nearest_mode)
        xs = np.arange(w, dtype=np.intp) if scales[1] == 1 and ow == w else _nearest_index(src_x, w, nearest_mode)

        def run(threads: Optional[int]) -> np.ndarray:
            _gather.resize_nearest(x, y, ys, xs, _threads_for(threads, y.size))
            return y
        return run
    y0, y1, wy0, wy1 = _linear_taps(src_y, h)
    x0, x1, wx0, wx1 = _linear_taps(src_x, w)
    x0, x1 = x0 * c, x1 * c

    def run(threads: Optional[int]) -> np.ndarray:
        _gather.resize_bilinear(x, y, y0, y1, wy0, wy1, x0, x1, wx0, wx1, _threads_for(threads, 4 * y.size))
        return y
    return run


def _relayout(x: ArrayLike, out: Optional[np.ndarray], threads: Optional[int], to_nhwc: bool) -> np.ndarray:
    x = as_float32_array("x", x, 4)
    n, a, b, c = x.shape
    y = check_out(out, (n, b, c, a) if to_nhwc else (n, c, a, b))
    _reject_overlap(y, [x])
    rows, cols = (a, b * c) if to_nhwc else (a * b, c)
    _layout.transpose_inner(x.reshape(n, rows, cols), y.reshape(n, cols, rows), _threads_for(threads, x.size))
    return y


def nchw_to_nhwc(x: ArrayLike, *, out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
    """``x.transpose(0, 2, 3, 1)`` as a fresh C-contiguous array (or into ``out``), by a blocked
    transpose: numpy's strided copy of a 56x56x256 map takes about 25x longer."""
    return _relayout(x, out, threads, True)


def nhwc_to_nchw(x: ArrayLike, *, out: Optional[np.ndarray] = None, threads: Optional[int] = None) -> np.ndarray:
    """``x.transpose(0, 3, 1, 2)`` as a fresh C-contiguous array (or into ``out``); see :func:`nchw_to_nhwc`."""
    return _relayout(x, out, threads, False)
