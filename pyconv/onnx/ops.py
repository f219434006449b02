"""One converter per ONNX operator type: ``CONVERTERS[op_type](ctx, node)`` emits pyconv layers.

A converter reads its inputs through the :class:`~pyconv.onnx.convert.Context` (constants, or computed
tensors with their layout), checks the attributes it depends on, and records its outputs. Anything it
cannot represent exactly raises :class:`~pyconv.onnx.reader.OnnxImportError` saying what and why;
nothing is dropped silently. Weights are converted to pyconv's layouts here:

- Conv ``(O, I/g, KH, KW)`` -> conv2d HWIO ``(KH, KW, I/g, O)``; a depthwise Conv (group == C_in)
  ``(C*M, 1, KH, KW)`` -> ``(KH, KW, C, M)``; a 1x1 stride-1 unpadded Conv -> pointwise ``(I, O)``;
- Gemm / MatMul weights -> dense ``(in, out)``, with Gemm's ``alpha`` and ``beta`` applied.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from ..ops import COORDINATE_TRANSFORMATIONS, NEAREST_MODES
from ..padding import output_size, same_pads
from .reader import BATCH, OnnxImportError, OnnxNode

if TYPE_CHECKING:
    from .convert import Context, Pads, Tensor

__all__ = ["CONVERTERS"]

Converter = Callable[["Context", OnnxNode], None]
CONVERTERS: dict[str, Converter] = {}


def _converter(*op_types: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for op in op_types:
            CONVERTERS[op] = fn
        return fn
    return register


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _used(node: OnnxNode, index: int) -> bool:
    return len(node.outputs) > index and bool(node.outputs[index])


def _only_first_output(node: OnnxNode, what: str) -> None:
    if any(_used(node, i) for i in range(1, len(node.outputs))):
        raise OnnxImportError(f"only the first output is supported, found {what} used as well")


# --- sliding windows ---------------------------------------------------------------------------------

def _window(node: OnnxNode, t: "Tensor", kernel: tuple[int, int]) -> tuple[list[int], list[int], "Pads"]:
    """``strides``, ``dilations`` and the node's own (top, bottom, left, right) pads, ``auto_pad``
    resolved against the input size (any pending pad included)."""
    if len(kernel) != 2:
        raise OnnxImportError(f"only 2-D windows are supported, found kernel {list(kernel)}")
    strides, dilations = _pair(node, "strides"), _pair(node, "dilations")
    auto = _text(node.attrs.get("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(t.padded_hw, kernel, strides, dilations):
            lo, hi = same_pads(size, k, s, d)
            pads += [lo, hi] if auto == "SAME_UPPER" else [hi, lo]
        return strides, dilations, tuple(pads)
    if auto == "VALID":
        return strides, dilations, (0, 0, 0, 0)
    if auto != "NOTSET":
        raise OnnxImportError(f"unknown auto_pad {auto!r}")
    pads = [int(p) for p in node.attrs.get("pads", [0, 0, 0, 0])]
    if len(pads) != 4:
        raise OnnxImportError(f"expected 4 pads for a 2-D window, found {pads}")
    top, left, bottom, right = pads
    if min(top, left, bottom, right) < 0:
        raise OnnxImportError(f"negative pads are not supported, found {[top, left, bottom, right]}")
    return strides, dilations, (top, bottom, left, right)


def _pair(node: OnnxNode, name: str) -> list[int]:
    """A window attribute of two positive ints (``strides``, ``dilations``), by default [1, 1]."""
    value = [int(v) for v in node.attrs.get(name, [1, 1])]
    if len(value) != 2 or min(value) < 1:
        raise OnnxImportError(f"expected {name} of two positive ints for a 2-D window, found {value}")
    return value


def _sum_pads(a: "Pads", b: "Pads") -> "Pads":
    return tuple(x + y for x, y in zip(a, b))


def _padding(pads: "Pads") -> list[list[int]]:
    return [[pads[0], pads[1]], [pads[2], pads[3]]]


def _scalar(ctx: "Context", node: OnnxNode, index: int, what: str) -> Optional[float]:
    """Optional input ``index`` of ``node``, a constant scalar (or one-element tensor); None if absent."""
    if len(node.inputs) <= index or not node.inputs[index]:
        return None
    value = ctx.input_const(node, index, what)
    if value.size != 1:
        raise OnnxImportError(f"expected {what} (input {index}) to be a scalar, found shape {list(value.shape)}")
    return float(value.reshape(-1)[0])


def _bias(ctx: "Context", node: OnnxNode, index: int, size: int) -> Optional[np.ndarray]:
    if len(node.inputs) <= index or not node.inputs[index]:
        return None
    b = ctx.input_const(node, index, "the bias")
    if b.size != size:
        raise OnnxImportError(f"expected a bias of {size} values, found shape {list(b.shape)}")
    return b.reshape(size)


@_converter("Conv")
def _conv(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.image(node.inputs[0], keep_pads=True)
    # No copy of a float32 initializer: the layer's kernel stays a view of it until the model packs it.
    w = ctx.input_const(node, 1, "the weights").astype(np.float32, copy=False)
    if w.ndim != 4:
        raise OnnxImportError(f"only 2-D convolutions are supported, found weights of shape {list(w.shape)}")
    group = int(node.attrs.get("group", 1))
    cout, cin_g, kh, kw = w.shape
    if list(node.attrs.get("kernel_shape", [kh, kw])) != [kh, kw]:
        raise OnnxImportError(f"kernel_shape {list(node.attrs['kernel_shape'])} disagrees with the weights' "
                              f"shape {list(w.shape)}")
    c = t.shape[2]
    if cin_g * group != c or cout % group:
        raise OnnxImportError(f"inconsistent shapes: weights {list(w.shape)} with group {group} expect "
                              f"{cin_g * group} input channels (and filters divisible by the group), "
                              f"found an input of shape {list(t.onnx_shape(1))}")
    strides, dilations, own = _window(node, t, (kh, kw))
    pads = _sum_pads(t.pads, own)
    b = _bias(ctx, node, 2, cout)
    common = {"use_bias": b is not None}
    weights = {} if b is None else {"bias": b}
    if group == c and cin_g == 1:
        m = cout // c
        weights["kernel"] = w.reshape(c, m, kh, kw).transpose(2, 3, 0, 1)
        ctx.emit(node, "depthwise_conv2d", [t], {"kernel": [kh, kw], "stride": strides, "padding": _padding(pads),
                                                 "dilation": dilations, "depth_multiplier": m, **common}, weights)
    elif group == 1 and (kh, kw) == (1, 1) and strides == [1, 1] and pads == (0, 0, 0, 0):
        weights["kernel"] = w[:, :, 0, 0].T
        ctx.emit(node, "pointwise_conv2d", [t], {"filters": cout, **common}, weights)
    else:
        weights["kernel"] = w.transpose(2, 3, 1, 0)
        ctx.emit(node, "conv2d", [t], {"filters": cout, "kernel": [kh, kw], "stride": strides,
                                       "padding": _padding(pads), "dilation": dilations, "groups": group,
                                       **common}, weights)


def _pool_output(t: "Tensor", kernel, strides, pads: "Pads", ceil_mode: bool) -> tuple[int, int]:
    return tuple(output_size(size, k, s, 1, pads[2 * a], pads[2 * a + 1], ceil_mode)
                 for a, (size, k, s) in enumerate(zip(t.shape[:2], kernel, strides)))


def _fold_pool_pads(t: "Tensor", kernel, strides, own: "Pads", ceil_mode: bool) -> bool:
    """Whether the pending zero pad of ``t`` can become part of the pool's own pads: the merged pads stay
    below the window (pyconv's rule) and give the same output size as padding first."""
    merged = _sum_pads(t.pads, own)
    if any(merged[2 * a] >= kernel[a] or merged[2 * a + 1] >= kernel[a] for a in range(2)):
        return False
    padded = dataclasses.replace(t, shape=(*t.padded_hw, t.shape[2]), pads=(0, 0, 0, 0))
    return _pool_output(t, kernel, strides, merged, ceil_mode) == _pool_output(padded, kernel, strides, own,
                                                                                ceil_mode)


def _pool_attrs(node: OnnxNode) -> tuple[list[int], bool]:
    kernel = [int(k) for k in node.attrs["kernel_shape"]]
    if len(kernel) != 2 or min(kernel) < 1:
        raise OnnxImportError(f"expected a kernel_shape of two positive ints, found {kernel}")
    if any(d != 1 for d in node.attrs.get("dilations", [1, 1])):
        raise OnnxImportError(f"dilated pooling is not supported, found dilations {list(node.attrs['dilations'])}")
    return kernel, bool(node.attrs.get("ceil_mode", 0))


@_converter("MaxPool")
def _max_pool(ctx: "Context", node: OnnxNode) -> None:
    _only_first_output(node, "the Indices output")
    if "kernel_shape" not in node.attrs:
        raise OnnxImportError("missing attribute kernel_shape")
    kernel, ceil_mode = _pool_attrs(node)
    t = ctx.image(node.inputs[0], keep_pads=True)
    strides, _, own = _window(node, t, tuple(kernel))
    # Zero padding equals max pooling's -inf padding only where every real value is >= 0.
    if t.pads != (0, 0, 0, 0) and not (t.nonneg and _fold_pool_pads(t, kernel, strides, own, ceil_mode)):
        t = ctx.value(node.inputs[0])
    pads = _sum_pads(t.pads, own)
    ctx.emit(node, "max_pool", [t], {"pool": kernel, "stride": strides, "padding": _padding(pads),
                                     "ceil_mode": ceil_mode}, nonneg=t.nonneg)


@_converter("AveragePool")
def _avg_pool(ctx: "Context", node: OnnxNode) -> None:
    if "kernel_shape" not in node.attrs:
        raise OnnxImportError("missing attribute kernel_shape")
    kernel, ceil_mode = _pool_attrs(node)
    include = bool(node.attrs.get("count_include_pad", 0))
    t = ctx.image(node.inputs[0], keep_pads=True)
    strides, _, own = _window(node, t, tuple(kernel))
    if t.pads != (0, 0, 0, 0):
        # Explicit zeros count in every window's divisor, as the pool's own pads do with
        # count_include_pad: the two agree when the pool has no pads of its own or counts them.
        if (include or own == (0, 0, 0, 0)) and _fold_pool_pads(t, kernel, strides, own, ceil_mode):
            include = True
        else:
            t = ctx.value(node.inputs[0])
    pads = _sum_pads(t.pads, own)
    ctx.emit(node, "avg_pool", [t], {"pool": kernel, "stride": strides, "padding": _padding(pads),
                                     "ceil_mode": ceil_mode, "count_include_pad": include}, nonneg=t.nonneg)


@_converter("GlobalAveragePool")
def _global_avg_pool(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.image(node.inputs[0])
    ctx.emit(node, "global_avg_pool", [t], {}, kind="pooled", nonneg=t.nonneg)


@_converter("ReduceMean")
def _reduce_mean(ctx: "Context", node: OnnxNode) -> None:
    raw = ctx.raw(node.inputs[0])
    t = raw if raw.nhwc else ctx.image(node.inputs[0])
    axes = _axes(ctx, node)
    spatial = [1, 2] if t.nhwc else [2, 3]
    keepdims = node.attrs.get("keepdims", 1)
    if not t.nhwc and keepdims and axes is not None and [a % 4 for a in axes] == [1]:
        # The mean over the channels (CBAM's spatial attention) is a 1x1 convolution by 1/C.
        c = t.shape[2]
        ctx.emit(node, "pointwise_conv2d", [t], {"filters": 1, "use_bias": False},
                 {"kernel": np.full((c, 1), 1.0 / c, np.float32)}, nonneg=t.nonneg)
        return
    if axes is None or sorted(a % 4 for a in axes) != spatial or (t.nhwc and keepdims):
        also = " (with keepdims=0)" if t.nhwc else ", or over the channels with keepdims=1"
        raise OnnxImportError(f"only the mean over the spatial axes {tuple(spatial)} of {list(t.onnx_shape(1))} is "
                              f"supported{also}, found axes {axes}{'' if keepdims else ' with keepdims=0'}")
    kind = "pooled" if keepdims else "flat"
    ctx.emit(node, "global_avg_pool", [t], {}, kind=kind, nonneg=t.nonneg)


# ONNX Pad mode -> the pad layer's mode.
_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge"}


def _global_max_pool(ctx: "Context", node: OnnxNode, t: "Tensor", keepdims: bool) -> None:
    """The max over H and W as a max pool whose window is the whole image (converted again at each
    input size, so the window follows it)."""
    h, w, _ = t.shape
    attrs = {"pool": [h, w], "stride": [h, w], "padding": [[0, 0], [0, 0]], "ceil_mode": False}
    if keepdims:
        ctx.emit(node, "max_pool", [t], attrs, nonneg=t.nonneg)
        return
    pooled = ctx.add_layer(f"{node.name or node.outputs[0]}/max", "max_pool", [t.layer], attrs)
    ctx.emit(node, "flatten", [dataclasses.replace(t, layer=pooled, shape=ctx.shapes[pooled])], {"order": "NCHW"},
             kind="flat", nonneg=t.nonneg)


@_converter("GlobalMaxPool")
def _global_max(ctx: "Context", node: OnnxNode) -> None:
    _global_max_pool(ctx, node, ctx.image(node.inputs[0]), True)


@_converter("ReduceMax")
def _reduce_max(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.image(node.inputs[0])
    axes = _axes(ctx, node)
    if axes is None or sorted(a % 4 for a in axes) != [2, 3]:
        raise OnnxImportError(f"only the max over the spatial axes (2, 3) of {list(t.onnx_shape(1))} is supported, "
                              f"found axes {axes}")
    _global_max_pool(ctx, node, t, bool(node.attrs.get("keepdims", 1)))


@_converter("Pad")
def _pad(ctx: "Context", node: OnnxNode) -> None:
    mode = _text(node.attrs.get("mode", "constant"))
    if mode not in _PAD_MODES:
        raise OnnxImportError(f"padding mode {mode!r} is not supported (supported: {', '.join(_PAD_MODES)})")
    if ctx.opset < 11:
        pads, value = list(node.attrs["pads"]), float(node.attrs.get("value", 0.0))
    else:
        pads = ctx.input_ints(node, 1, "the pads")
        value = _scalar(ctx, node, 2, "the padding value")
        value = 0.0 if value is None else value
    t = ctx.image(node.inputs[0], keep_pads=True)
    rank = 4
    if len(node.inputs) > 3 and node.inputs[3]:  # opset 18: pads for the listed axes only
        axes = [a % rank for a in ctx.input_ints(node, 3, "the axes")]
        if len(pads) != 2 * len(axes):
            raise OnnxImportError(f"expected 2 pads per axis for axes {axes}, found {pads}")
        full = [0] * (2 * rank)
        for i, a in enumerate(axes):
            full[a], full[rank + a] = pads[i], pads[len(axes) + i]
        pads = full
    if len(pads) != 2 * rank:
        raise OnnxImportError(f"expected {2 * rank} pads for a 4-D input, found {pads}")
    if pads[0] or pads[1] or pads[4] or pads[5]:
        raise OnnxImportError(f"only padding of the spatial axes (H, W) is supported, found pads {pads}")
    own = (pads[2], pads[6], pads[3], pads[7])
    if min(own) < 0:
        # Negative pads crop (TensorFlow-"same" pads an exporter traced at one size and computes at a
        # larger one): slices first, then the positive pads on the other sides.
        t = ctx.value(node.inputs[0])
        for axis, (before, after) in ((1, own[:2]), (2, own[2:])):
            if min(before, after) < 0:
                size = t.shape[axis - 1]
                start, stop = max(-before, 0), size - max(-after, 0)
                if start >= stop:
                    raise OnnxImportError(f"pads {pads} crop all of axis {axis + 1} of {list(t.onnx_shape(1))}")
                layer = ctx.add_layer(f"{node.name or node.outputs[0]}/crop", "slice", [t.layer],
                                      {"axis": axis, "start": start, "stop": stop, "step": 1})
                t = dataclasses.replace(t, layer=layer, shape=ctx.shapes[layer])
        own = tuple(max(p, 0) for p in own)
        if own == (0, 0, 0, 0):
            ctx.alias(node, t)
            return
    if mode == "constant" and value == 0.0:
        ctx.alias(node, dataclasses.replace(t, pads=_sum_pads(t.pads, own)))
        return
    if min(pads) >= 0:
        t = ctx.value(node.inputs[0])
    attrs = {"value": value} if mode == "constant" else {"mode": _PAD_MODES[mode]}
    ctx.emit(node, "pad", [t], {"padding": _padding(own), **attrs},
             nonneg=t.nonneg and (mode != "constant" or value >= 0))


# --- normalisation and activations -------------------------------------------------------------------

@_converter("BatchNormalization")
def _batch_norm(ctx: "Context", node: OnnxNode) -> None:
    if node.attrs.get("training_mode", 0):
        raise OnnxImportError("training_mode=1 (batch statistics) is not supported; export the model in eval mode")
    _only_first_output(node, "the running statistics outputs")
    t = ctx.value(node.inputs[0])
    c = t.shape[-1]
    names = ("gamma", "beta", "mean", "variance")
    weights = {}
    for i, param in enumerate(names, 1):
        v = ctx.input_const(node, i, f"the {param}")
        if v.size != c:
            raise OnnxImportError(f"inconsistent shapes: {param} has shape {list(v.shape)}, the input "
                                  f"{list(t.onnx_shape(1))} has {c} channels")
        weights[param] = v.reshape(c)
    ctx.emit(node, "batch_norm", [t], {"epsilon": float(node.attrs.get("epsilon", 1e-5))}, weights)


@_converter("Relu")
def _relu(ctx: "Context", node: OnnxNode) -> None:
    ctx.emit(node, "activation", [ctx.value(node.inputs[0])], {"function": "relu"}, nonneg=True)


@_converter("Clip")
def _clip(ctx: "Context", node: OnnxNode) -> None:
    if ctx.opset < 11:
        lo, hi = node.attrs.get("min"), node.attrs.get("max")
    else:
        lo, hi = (_scalar(ctx, node, i, f"the {what} bound") for i, what in ((1, "min"), (2, "max")))
    t = ctx.value(node.inputs[0])
    if lo == 0.0 and hi == 6.0:
        ctx.emit(node, "activation", [t], {"function": "relu6"}, nonneg=True)
    elif lo == 0.0 and hi is None:
        ctx.emit(node, "activation", [t], {"function": "relu"}, nonneg=True)
    elif lo is None and hi is None:
        ctx.alias(node, t)
    else:
        ctx.emit(node, "activation", [t], {"function": "clip", "min": lo, "max": hi},
                 nonneg=lo is not None and lo >= 0)


def _unary(function: str, nonneg: bool = False, **params: float) -> Converter:
    """The converter of an ONNX activation: ``function`` with its ``params`` (ONNX attribute name ->
    default, taken from the node's attributes of those names)."""
    def convert(ctx: "Context", node: OnnxNode) -> None:
        attrs = {"function": function, **{k: float(node.attrs.get(k, v)) for k, v in params.items()}}
        ctx.emit(node, "activation", [ctx.value(node.inputs[0])], attrs, nonneg=nonneg)
    return convert


_converter("Sigmoid")(_unary("sigmoid", nonneg=True))
_converter("HardSigmoid")(_unary("hard_sigmoid", nonneg=True, alpha=0.2, beta=0.5))
_converter("HardSwish")(_unary("hard_swish"))
_converter("LeakyRelu")(_unary("leaky_relu", alpha=0.01))
_converter("Tanh")(_unary("tanh"))
_converter("Elu")(_unary("elu", alpha=1.0))
_converter("Softplus")(_unary("softplus", nonneg=True))
_converter("Mish")(_unary("mish"))


@_converter("Selu")
def _selu(ctx: "Context", node: OnnxNode) -> None:
    # ONNX's gamma, the scale, is pyconv's beta.
    attrs = {"function": "selu", "alpha": float(node.attrs.get("alpha", 1.6732632423543772)),
             "beta": float(node.attrs.get("gamma", 1.0507009873554805))}
    ctx.emit(node, "activation", [ctx.value(node.inputs[0])], attrs)


@_converter("Gelu")
def _gelu(ctx: "Context", node: OnnxNode) -> None:
    approximate = node.attrs.get("approximate", "none")
    if isinstance(approximate, bytes):
        approximate = approximate.decode()
    if approximate not in ("none", "tanh"):
        raise OnnxImportError(f"Gelu's approximate must be 'none' or 'tanh', got {approximate!r}")
    function = "gelu" if approximate == "none" else "gelu_tanh"
    ctx.emit(node, "activation", [ctx.value(node.inputs[0])], {"function": function})


@_converter("PRelu")
def _prelu(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.value(node.inputs[0])
    slope = ctx.input_const(node, 1, "the slope").astype(np.float32)
    alpha = _channel_vector(t, slope)
    if alpha is not None:
        ctx.emit(node, "prelu", [t], {}, {"alpha": alpha})
        return
    # Slopes varying over more than the channels: broadcast against one sample, in pyconv's layout.
    sample = t.onnx_shape(1)[1:]
    if slope.ndim > len(sample) or any(a not in (1, b) for a, b in zip(slope.shape[::-1], sample[::-1])):
        raise OnnxImportError(f"a slope of shape {list(slope.shape)} does not broadcast to one sample of the "
                              f"input, {list(sample)}")
    full = slope.reshape((1,) * (len(sample) - slope.ndim) + slope.shape)
    if t.kind == "image" and t.shuffle is None:
        full = full if t.nhwc else full.transpose(1, 2, 0)
    elif t.kind != "flat":
        raise OnnxImportError(f"a slope of shape {list(slope.shape)} varying over the positions of a "
                              f"{t.kind} tensor is not supported")
    ctx.emit(node, "prelu", [t], {"alpha_shape": list(full.shape)}, {"alpha": np.ascontiguousarray(full)})


# --- elementwise with constants ----------------------------------------------------------------------

def _channel_vector(t: "Tensor", const: np.ndarray) -> Optional[np.ndarray]:
    """``const`` as a per-channel (C,) vector if it broadcasts against ``t`` along the channel axis
    only (a scalar, (C,), (C, 1, 1), (1, C, 1, 1) ...); otherwise None."""
    shape = t.onnx_shape(1)
    if const.ndim > len(shape):
        return None
    full = (1,) * (len(shape) - const.ndim) + const.shape
    channels = shape[1]
    if any(d != 1 for i, d in enumerate(full) if i != 1) or full[1] not in (1, channels):
        return None
    return np.broadcast_to(const.reshape(-1).astype(np.float32), (channels,)).copy() if full[1] == 1 \
        else const.reshape(channels).astype(np.float32)


def _affine(ctx: "Context", node: OnnxNode, dynamic: int, scale: Optional[Callable], shift: Optional[Callable]):
    """A binary op with one constant operand as ``scale_shift``: ``scale(v)`` / ``shift(v)`` build the
    per-channel scale and shift from the constant's channel vector ``v``."""
    t = ctx.value(node.inputs[dynamic])
    const = ctx.const(node.inputs[1 - dynamic])
    v = _channel_vector(t, const)
    if v is None:
        raise OnnxImportError(f"a constant operand of shape {list(const.shape)} against a tensor of shape "
                              f"{list(t.onnx_shape(1))}: only scalars and per-channel constants are supported")
    s = scale(v) if scale else np.ones_like(v)
    b = shift(v) if shift else np.zeros_like(v)
    ctx.emit(node, "scale_shift", [t], {}, {"scale": s, "shift": b},
             nonneg=t.nonneg and bool((s >= 0).all() and (b >= 0).all()))


def _constant_side(ctx: "Context", node: OnnxNode) -> Optional[int]:
    """Index of the computed operand when the other is a constant, else None."""
    a, b = (ctx.const(i) is not None for i in node.inputs[:2])
    return 0 if b else 1 if a else None


def _computed_operands(ctx: "Context", node: OnnxNode, what: str) -> tuple["Tensor", "Tensor", str]:
    """Both computed operands of a binary op and the kind of its result. ONNX broadcasting of
    (N, C, H, W) shapes is numpy's broadcasting of the per-sample (H, W, C) shapes pyconv holds (a global
    pool's (N, C, 1, 1) held as (C,) aligns with C); a 2-D (N, F) operand against a 4-D one aligns its
    batch axis with H, which no per-sample shape can express."""
    a, b = (ctx.value(i) for i in node.inputs[:2])
    kinds = {a.kind, b.kind}
    for low, form in (("flat", "2-D (N, F)"), ("column", "3-D (N, C, 1)")):
        if low in kinds and kinds != {low}:
            raise OnnxImportError(f"{what} {list(a.onnx_shape(1))} and {list(b.onnx_shape(1))}: broadcasting a "
                                  f"{form} operand against a higher-rank one aligns its batch axis with another "
                                  "axis, which pyconv's per-sample shapes cannot express")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise OnnxImportError(f"inconsistent shapes: {what} {list(a.onnx_shape(1))} and {list(b.onnx_shape(1))}, "
                              "which do not broadcast against each other") from None
    kind = kinds.pop() if len(kinds) == 1 else "image"
    return a, b, kind


def _binary(ctx: "Context", node: OnnxNode, layer: str, what: str, nonneg: bool) -> None:
    a, b, kind = _computed_operands(ctx, node, what)
    ctx.emit(node, layer, [a, b], {}, kind=kind, nonneg=nonneg and a.nonneg and b.nonneg)


@_converter("Add")
def _add(ctx: "Context", node: OnnxNode) -> None:
    dynamic = _constant_side(ctx, node)
    if dynamic is not None:
        _affine(ctx, node, dynamic, None, lambda v: v)
        return
    _binary(ctx, node, "add", "adding", True)


@_converter("Sub")
def _sub(ctx: "Context", node: OnnxNode) -> None:
    dynamic = _constant_side(ctx, node)
    if dynamic is None:
        _binary(ctx, node, "subtract", "subtracting", False)
    elif dynamic == 0:
        _affine(ctx, node, 0, None, lambda v: -v)
    else:
        _affine(ctx, node, 1, lambda v: -np.ones_like(v), lambda v: v)


@_converter("Mul")
def _mul(ctx: "Context", node: OnnxNode) -> None:
    dynamic = _constant_side(ctx, node)
    if dynamic is None:
        _binary(ctx, node, "multiply", "multiplying", True)
    else:
        _affine(ctx, node, dynamic, lambda v: v, None)


@_converter("Div")
def _div(ctx: "Context", node: OnnxNode) -> None:
    dynamic = _constant_side(ctx, node)
    if dynamic is None:
        _binary(ctx, node, "divide", "dividing", True)
    elif dynamic == 0:
        _affine(ctx, node, 0, lambda v: 1.0 / v, None)
    else:
        raise OnnxImportError("Div of a constant by a computed tensor is not supported")


# --- dense layers ------------------------------------------------------------------------------------

def _flat(ctx: "Context", name: str) -> "Tensor":
    t = ctx.value(name)
    if t.kind == "image":
        raise OnnxImportError(f"expected a matrix (N, F), found tensor {name!r} of shape {list(t.onnx_shape(1))}",
                              hint="a Flatten or Reshape to 2-D must come first")
    return t


def _dense(ctx: "Context", node: OnnxNode, t: "Tensor", w: np.ndarray, b: Optional[np.ndarray]) -> None:
    if w.shape[0] != t.shape[0]:
        raise OnnxImportError(f"inconsistent shapes: weights of shape {list(w.shape)} (as (in, out)) against an "
                              f"input of shape {list(t.onnx_shape(1))}")
    weights = {"kernel": w} if b is None else {"kernel": w, "bias": b}
    ctx.emit(node, "dense", [t], {"units": int(w.shape[1]), "use_bias": b is not None}, weights, kind="flat")


@_converter("Gemm")
def _gemm(ctx: "Context", node: OnnxNode) -> None:
    if node.attrs.get("transA", 0) or ctx.const(node.inputs[0]) is not None:
        raise OnnxImportError("only Gemm(A=computed (N, K), B=constant) with transA=0 is supported")
    t = _flat(ctx, node.inputs[0])
    w = ctx.input_const(node, 1, "B")
    if w.ndim != 2:
        raise OnnxImportError(f"expected a 2-D B, found shape {list(w.shape)}")
    w = w.T if node.attrs.get("transB", 0) else w
    alpha = float(node.attrs.get("alpha", 1.0))
    w = w.astype(np.float32, copy=False) if alpha == 1.0 else w.astype(np.float64) * alpha
    b = None
    if len(node.inputs) > 2 and node.inputs[2]:
        c = ctx.input_const(node, 2, "C").astype(np.float64) * float(node.attrs.get("beta", 1.0))
        if c.size not in (1, w.shape[1]) or (c.ndim == 2 and c.shape[0] != 1):
            raise OnnxImportError(f"expected C broadcasting along the batch (a scalar, (M,) or (1, M)), found "
                                  f"shape {list(c.shape)}")
        b = np.broadcast_to(c.reshape(-1), (w.shape[1],))
    _dense(ctx, node, t, w.astype(np.float32, copy=False), None if b is None else b.astype(np.float32))


@_converter("MatMul")
def _matmul(ctx: "Context", node: OnnxNode) -> None:
    if ctx.const(node.inputs[0]) is not None:
        raise OnnxImportError("only MatMul(computed (N, K), constant (K, M)) is supported")
    t = _flat(ctx, node.inputs[0])
    w = ctx.input_const(node, 1, "the weights")
    if w.ndim != 2:
        raise OnnxImportError(f"expected 2-D weights, found shape {list(w.shape)}")
    _dense(ctx, node, t, w.astype(np.float32, copy=False), None)


# --- shapes and layout -------------------------------------------------------------------------------

@_converter("Flatten")
def _flatten(ctx: "Context", node: OnnxNode) -> None:
    raw = ctx.raw(node.inputs[0])
    t = raw if raw.nhwc else ctx.value(node.inputs[0])
    axis = int(node.attrs.get("axis", 1))
    rank = len(t.onnx_shape(1))
    if axis == 0 or axis % rank != 1:
        raise OnnxImportError(f"only Flatten with axis 1 (keeping the batch) is supported, found axis {axis}")
    _to_flat(ctx, node, t)


def _to_flat(ctx: "Context", node: OnnxNode, t: "Tensor") -> None:
    if t.kind == "image":
        ctx.emit(node, "flatten", [t], {"order": "NHWC" if t.nhwc else "NCHW"}, kind="flat", nonneg=t.nonneg)
    else:
        ctx.alias(node, dataclasses.replace(t, kind="flat"))


def _target(ctx: "Context", node: OnnxNode, in_shape: tuple[int, ...]) -> Optional[list[int]]:
    """The per-sample target shape of a Reshape (batch axis removed), or None if its first axis is not
    the batch."""
    shape = ctx.input_ints(node, 1, "the shape")
    if not node.attrs.get("allowzero", 0):
        shape = [in_shape[i] if d == 0 and i < len(in_shape) else d for i, d in enumerate(shape)]
    if not shape:
        return None
    first, rest = shape[0], shape[1:]
    per_sample = int(np.prod(in_shape[1:]))
    keeps_batch = first in (BATCH, ctx.batch, in_shape[0]) or (
        first == -1 and -1 not in rest and int(np.prod(rest)) == per_sample)
    if not keeps_batch:
        return None
    if rest.count(-1) == 1:
        known = int(np.prod([d for d in rest if d != -1]))
        if known <= 0 or per_sample % known:
            return None
        rest = [per_sample // known if d == -1 else d for d in rest]
    if int(np.prod(rest)) != per_sample or min(rest, default=1) < 1:
        return None
    return rest


@_converter("Reshape")
def _reshape(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.raw(node.inputs[0])
    if t.pads != (0, 0, 0, 0):
        t = ctx.value(node.inputs[0])
    in_shape = t.onnx_shape(ctx.batch)
    if t.nhwc:
        target = _target(ctx, node, in_shape)
        if target is None or len(target) != 1:
            raise OnnxImportError(f"an NHWC-transposed image {list(t.onnx_shape(1))} can only be flattened to "
                                  f"(N, F), found target {[int(d) for d in ctx.const(node.inputs[1]).reshape(-1)]}")
        _to_flat(ctx, node, t)
        return
    target = _target(ctx, node, in_shape)
    if target is None:
        raise OnnxImportError(f"cannot reshape {list(t.onnx_shape(1))} to "
                              f"{[int(d) for d in ctx.const(node.inputs[1]).reshape(-1)]}: only reshapes that "
                              "keep the batch axis are supported")
    per_sample = list(in_shape[1:])
    if target == per_sample:
        ctx.alias(node, t)
    elif t.shuffle is None and t.kind == "image" and len(target) == 4 and target[2:] == per_sample[1:] \
            and target[0] * target[1] == per_sample[0]:
        ctx.alias(node, dataclasses.replace(t, shuffle=("split", target[0])))
    elif t.shuffle is not None and t.shuffle[0] == "swapped" and len(target) == 3 \
            and target == [t.shape[2], *t.shape[:2]]:
        if t.shuffle[1] == 1:  # one group: the pattern moves nothing
            ctx.alias(node, dataclasses.replace(t, shuffle=None))
        else:
            ctx.emit(node, "channel_shuffle", [dataclasses.replace(t, shuffle=None)], {"groups": t.shuffle[1]},
                     nonneg=t.nonneg)
    elif t.shuffle is None and len(target) == 1:
        _to_flat(ctx, node, t)
    elif t.shuffle is None and _vector_kind(t, [1, *target]) is not None:
        ctx.alias(node, dataclasses.replace(t, kind=_vector_kind(t, [1, *target])))
    else:
        raise OnnxImportError(f"unsupported reshape of {list(t.onnx_shape(1))} to (N, {', '.join(map(str, target))}):"
                              " supported are flattening to (N, F), (N, C) <-> (N, C, 1) <-> (N, C, 1, 1) and the "
                              "channel shuffle pattern")


@_converter("Transpose")
def _transpose(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.raw(node.inputs[0])
    perm = [int(p) for p in node.attrs.get("perm", [])]
    if t.shuffle is not None and t.shuffle[0] == "split" and perm == [0, 2, 1, 3, 4]:
        ctx.alias(node, dataclasses.replace(t, shuffle=("swapped", t.shuffle[1])))
        return
    if t.kind == "image" and t.shuffle is None and perm == ([0, 3, 1, 2] if t.nhwc else [0, 2, 3, 1]):
        # pyconv holds images NHWC whatever ONNX calls them: only the bookkeeping changes.
        ctx.alias(node, dataclasses.replace(ctx.image(node.inputs[0]) if not t.nhwc else t, nhwc=not t.nhwc))
        return
    raise OnnxImportError(f"Transpose perm {perm} of a tensor of shape {list(t.onnx_shape(1))}: supported are the "
                          "channel shuffle pattern (Reshape to (N, g, C/g, H, W), Transpose perm (0, 2, 1, 3, 4), "
                          "Reshape back), and NCHW <-> NHWC around an input or before a flatten")


def _axes(ctx: "Context", node: OnnxNode) -> Optional[list[int]]:
    if "axes" in node.attrs:
        return [int(a) for a in node.attrs["axes"]]
    if len(node.inputs) > 1 and node.inputs[1]:
        return ctx.input_ints(node, 1, "the axes")
    return None


# The kinds held as a (C,) vector, by their ONNX rank: (N, C), (N, C, 1), (N, C, 1, 1).
_VECTOR_KINDS = {2: "flat", 3: "column", 4: "pooled"}


def _vector_kind(t: "Tensor", shape: list[int]) -> Optional[str]:
    """The kind holding a vector ``t`` (a one-axis flat, column or pooled tensor) reshaped to the ONNX
    ``shape`` (batch 1), if that shape is (1, C) with trailing unit axes; else None."""
    if len(t.shape) != 1 or t.kind not in _VECTOR_KINDS.values():
        return None
    if shape[:2] != [1, t.shape[0]] or any(d != 1 for d in shape[2:]):
        return None
    return _VECTOR_KINDS.get(len(shape))


@_converter("Squeeze", "Unsqueeze")
def _squeeze(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.value(node.inputs[0])
    axes = _axes(ctx, node)
    shape = list(t.onnx_shape(1))
    kind = None
    if axes is not None:
        rank = len(shape) + (len(axes) if node.op_type == "Unsqueeze" else 0)
        axes = sorted({a % rank for a in axes if -rank <= a < rank})
        if len(axes) == len(_axes(ctx, node)) and 0 not in axes:
            if node.op_type == "Unsqueeze":
                for a in axes:
                    shape.insert(a, 1)
            elif all(shape[a] == 1 for a in axes):
                shape = [d for i, d in enumerate(shape) if i not in axes]
            kind = _vector_kind(t, shape)
    if kind is None:
        raise OnnxImportError(f"{node.op_type} axes {_axes(ctx, node)} of a tensor of shape {list(t.onnx_shape(1))}: "
                              "only moving between (N, C), (N, C, 1) and (N, C, 1, 1) is supported")
    ctx.alias(node, dataclasses.replace(t, kind=kind))


_BROADCASTING = ("Add", "Sub", "Mul", "Div")


def _broadcast_again(ctx: "Context", name: str, shape: list[int]) -> bool:
    """Whether every reader of ``name`` is a broadcasting op whose other operand is a computed tensor of
    ONNX ``shape`` (batch 1), and ``name`` is no graph output."""
    def against_shape(n: OnnxNode) -> bool:
        if n.op_type not in _BROADCASTING or len(n.inputs) != 2 or n.inputs[0] == n.inputs[1]:
            return False
        other = n.inputs[1 - n.inputs.index(name)]
        return other in ctx.tensors and list(ctx.raw(other).onnx_shape(1)) == shape
    readers = [n for n in ctx.graph.nodes if name in n.inputs]
    return bool(readers) and name not in ctx.graph.outputs and all(map(against_shape, readers))


@_converter("Expand")
def _expand(ctx: "Context", node: OnnxNode) -> None:
    """Expand (``expand_as`` in PyTorch): a result read only by broadcasting ops against tensors of the
    expanded shape is the input itself (their broadcasting expands it again); otherwise an image's unit
    spatial axes are materialised by a nearest resize to the target size, which repeats them."""
    t = ctx.value(node.inputs[0])
    target = ctx.input_ints(node, 1, "the shape")
    shape = list(t.onnx_shape(ctx.batch))
    rank = max(len(shape), len(target))
    a, b = [1] * (rank - len(shape)) + shape, [1] * (rank - len(target)) + target
    out = [x if y == 1 or y == x or (i == 0 and y in (BATCH, ctx.batch)) else y if x == 1 else None
           for i, (x, y) in enumerate(zip(a, b))]
    if None in out or rank != len(shape) or out[0] != shape[0]:
        raise OnnxImportError(f"cannot expand {list(t.onnx_shape(1))} to {target}: only a target of the same rank "
                              "that broadcasts with the input and keeps its batch is supported")
    if out[1:] == shape[1:]:
        ctx.alias(node, t)
        return
    if _broadcast_again(ctx, node.outputs[0], [1, *out[1:]]):
        ctx.alias(node, t)
        ctx.hidden.add(node.outputs[0])
        return
    if t.kind not in ("image", "pooled") or out[1] != shape[1]:
        raise OnnxImportError(f"expanding {list(t.onnx_shape(1))} to {target}: only repeating the unit spatial axes "
                              "of an image (or a global pool's (N, C, 1, 1)) is supported")
    image = ctx.image(node.inputs[0])
    ctx.emit(node, "resize", [image], {"mode": "nearest", "size": out[2:], "coordinate_transformation": "asymmetric",
                                       "nearest_mode": "floor"}, kind="image", nonneg=t.nonneg)


@_converter("Concat")
def _concat(ctx: "Context", node: OnnxNode) -> None:
    if any(ctx.const(i) is not None for i in node.inputs):
        raise OnnxImportError("concatenating computed tensors with constants is not supported")
    ts = [ctx.value(i) for i in node.inputs]
    rank = len(ts[0].onnx_shape(1))
    if int(node.attrs["axis"]) % rank != 1 or len({t.kind for t in ts}) != 1:
        raise OnnxImportError(f"only concatenation along the channel axis 1 of tensors of one rank is supported, "
                              f"found axis {node.attrs['axis']} over shapes {[list(t.onnx_shape(1)) for t in ts]}")
    ctx.emit(node, "concat", ts, {}, nonneg=all(t.nonneg for t in ts))


# --- slicing and resizing ----------------------------------------------------------------------------

def _slice_axis(t: "Tensor", axis: int, op: str) -> tuple[int, int]:
    """The pyconv slice ``axis`` (of the batched NHWC tensor) of ONNX ``axis`` of ``t``, and its length."""
    shape = t.onnx_shape(1)
    a = axis % len(shape) if -len(shape) <= axis < len(shape) else None
    if a is None or a == 0:
        raise OnnxImportError(f"{op} along axis {axis} of {list(shape)}: only the channel and spatial axes "
                              f"(1..{len(shape) - 1}) are supported, not the batch axis")
    if t.kind == "flat":
        return -1, shape[a]
    if t.kind in ("pooled", "column") and a != 1:
        raise OnnxImportError(f"{op} along axis {a} of {list(shape)}: only the channel axis 1 is supported")
    return {1: -1, 2: 1, 3: 2}[a], shape[a]


def _emit_slice(ctx: "Context", node: OnnxNode, out: str, t: "Tensor", axis: int, start: int, stop: Optional[int],
                step: int, index: int) -> "Tensor":
    """A slice layer computing ONNX tensor ``out`` (output ``index`` of ``node``)."""
    name = f"{node.name}_{index}" if node.name and len(node.outputs) > 1 else node.name
    sub = dataclasses.replace(node, name=name, outputs=[out])
    return ctx.emit(sub, "slice", [t], {"axis": axis, "start": start, "stop": stop, "step": step}, nonneg=t.nonneg)


@_converter("Split")
def _split(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.value(node.inputs[0])
    axis, length = _slice_axis(t, int(node.attrs.get("axis", 0)), "Split")
    outputs = len(node.outputs)
    if len(node.inputs) > 1 and node.inputs[1]:
        sizes = ctx.input_ints(node, 1, "the split sizes")
    elif "split" in node.attrs:
        sizes = [int(v) for v in node.attrs["split"]]
    elif "num_outputs" in node.attrs:  # opset 18: equal chunks, the last one smaller
        parts = int(node.attrs["num_outputs"])
        if parts < 1:
            raise OnnxImportError(f"expected a positive num_outputs, found {parts}")
        chunk = -(-length // parts)
        sizes = [min(chunk, length - i * chunk) for i in range(parts)]
    elif length % outputs == 0:
        sizes = [length // outputs] * outputs
    else:
        raise OnnxImportError(f"an axis of length {length} cannot be split into {outputs} equal parts")
    if len(sizes) != outputs or sum(sizes) != length or min(sizes) < 1:
        raise OnnxImportError(f"split sizes {sizes} for {outputs} outputs of an axis of length {length}: expected "
                              f"{outputs} positive sizes summing to {length}")
    start = 0
    for i, (out, size) in enumerate(zip(node.outputs, sizes)):
        if out:
            _emit_slice(ctx, node, out, t, axis, start, start + size if start + size < length else None, 1, i)
        start += size


# What exporters write for "to the end" (INT64_MAX, or INT32_MAX from older ones) and beyond.
_INT_MAX = 2 ** 31 - 1


def _whole_axis(t: "Tensor", axis: int, start: int, end: int, step: int) -> bool:
    """Whether a Slice entry keeps all of ``axis`` (the batch axis: whatever its size)."""
    shape = t.onnx_shape(1)
    if step != 1 or not -len(shape) <= axis < len(shape):
        return False
    if axis % len(shape) == 0:
        return (start == 0 or start <= -_INT_MAX) and end >= _INT_MAX
    return slice(start, end).indices(shape[axis])[:2] == (0, shape[axis])


@_converter("Slice")
def _slice(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.value(node.inputs[0])
    if "starts" in node.attrs:  # opset < 10
        starts, ends = list(node.attrs["starts"]), list(node.attrs["ends"])
        axes, steps = node.attrs.get("axes"), None
    else:
        starts, ends = ctx.input_ints(node, 1, "the starts"), ctx.input_ints(node, 2, "the ends")
        axes, steps = (ctx.input_ints(node, i, what)
                       if len(node.inputs) > i and node.inputs[i] else None
                       for i, what in ((3, "the axes"), (4, "the steps")))
    axes = list(range(len(starts))) if axes is None else [int(a) for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    cuts = []
    for axis, start, end, step in zip(axes, starts, ends, steps):
        if _whole_axis(t, axis, start, end, step):
            continue
        if step < 1:
            raise OnnxImportError(f"Slice with step {step}: only positive steps are supported")
        pyconv_axis, length = _slice_axis(t, axis, "Slice")
        if not len(range(length)[start:end:step]):
            raise OnnxImportError(f"Slice [{start}:{end}:{step}] of axis {axis} of {list(t.onnx_shape(1))} is empty")
        # ONNX's bounds (negative from the end, clamped) are Python's for positive steps: kept as given,
        # so that a bound counted from the end stays so; only "to the end" and "from the start" markers
        # become null and 0.
        cuts.append((pyconv_axis, 0 if start <= -_INT_MAX else start, None if end >= _INT_MAX else end, step))
    if not cuts:
        ctx.alias(node, t)
        return
    for axis, begin, stop, step in cuts[:-1]:
        # Several sliced axes chain slice layers; the last one computes the node's output.
        attrs = {"axis": axis, "start": begin, "stop": stop, "step": step}
        layer = ctx.add_layer(f"{node.name or node.outputs[0]}/slice", "slice", [t.layer], attrs)
        t = dataclasses.replace(t, layer=layer, shape=ctx.shapes[layer])
    _emit_slice(ctx, node, node.outputs[0], t, *cuts[-1], 0)


def _resize_factors(ctx: "Context", node: OnnxNode, t: "Tensor") -> tuple[Optional[list[float]], Optional[list[int]]]:
    """The (N, C, H, W) scales or sizes of a Resize or Upsample, whichever it gives."""
    if node.op_type == "Upsample" and "scales" in node.attrs:  # opset 7
        return [float(v) for v in node.attrs["scales"]], None
    scales_at = 1 if node.op_type == "Upsample" or ctx.opset < 11 else 2
    scales = ctx.const(node.inputs[scales_at]) if len(node.inputs) > scales_at and node.inputs[scales_at] else None
    if scales is None and len(node.inputs) > scales_at and node.inputs[scales_at]:
        raise OnnxImportError("expected constant scales, found a computed tensor")
    sizes = None
    if scales is None or scales.size == 0:
        scales = None
        if len(node.inputs) <= 3 or not node.inputs[3]:
            raise OnnxImportError("expected scales or sizes, found neither")
        sizes = ctx.input_ints(node, 3, "the sizes")
    values = [float(v) for v in scales.reshape(-1)] if scales is not None else sizes
    axes = node.attrs.get("axes")
    if axes is not None:  # opset 18: values for the listed axes only
        full = [1.0, 1.0, 1.0, 1.0] if sizes is None else list(t.onnx_shape(ctx.batch))
        for a, v in zip(axes, values):
            full[int(a) % 4] = v
        values = full
    if len(values) != 4:
        raise OnnxImportError(f"expected 4 {'scales' if sizes is None else 'sizes'} for a 4-D input, found {values}")
    return (values, None) if sizes is None else (None, values)


@_converter("Resize", "Upsample")
def _resize(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.image(node.inputs[0])
    mode = _text(node.attrs.get("mode", "nearest"))
    if mode not in ("nearest", "linear", "bilinear"):
        raise OnnxImportError(f"mode {mode!r} is not supported (nearest and linear are)")
    legacy = node.op_type == "Upsample" or ctx.opset < 11
    transform = "asymmetric" if legacy else _text(node.attrs.get("coordinate_transformation_mode", "half_pixel"))
    if transform not in COORDINATE_TRANSFORMATIONS:
        raise OnnxImportError(f"coordinate_transformation_mode {transform!r} is not supported (supported: "
                              f"{', '.join(COORDINATE_TRANSFORMATIONS)}; tf_crop_and_resize's roi cropping is not)")
    if _text(node.attrs.get("keep_aspect_ratio_policy", "stretch")) != "stretch":
        raise OnnxImportError(f"keep_aspect_ratio_policy {_text(node.attrs['keep_aspect_ratio_policy'])!r} is not "
                              "supported (only stretch)")
    scales, sizes = _resize_factors(ctx, node, t)
    n, c, h, w = t.onnx_shape(ctx.batch)
    if scales is not None and scales[:2] != [1.0, 1.0]:
        raise OnnxImportError(f"scales {scales}: only the spatial axes (2, 3) can be resized")
    if sizes is not None and (sizes[1] != c or sizes[0] not in (n, BATCH)):
        raise OnnxImportError(f"sizes {sizes} for an input of {list(t.onnx_shape(1))}: only the spatial axes (2, 3) "
                              "can be resized")
    factors = scales[2:] if scales is not None else sizes[2:]
    downscaling = any(f < 1 for f in factors) if scales is not None else sizes[2] < h or sizes[3] < w
    if node.attrs.get("antialias", 0) and mode != "nearest" and downscaling:
        raise OnnxImportError("antialias=1 when downscaling is not supported")
    if legacy:
        # Before opset 11 a nearest source index is truncated when upscaling and rounded up when
        # downscaling (ONNX Runtime's reading of the older operators).
        ups = [f >= 1 for f in factors] if scales is not None else [sizes[2] >= h, sizes[3] >= w]
        if mode == "nearest" and ups[0] != ups[1]:
            raise OnnxImportError(f"upscaling one axis and downscaling the other ({factors}) is not supported "
                                  "before opset 11")
        nearest_mode = "floor" if ups[0] else "ceil"
    else:
        nearest_mode = _text(node.attrs.get("nearest_mode", "round_prefer_floor"))
        if nearest_mode not in NEAREST_MODES:
            raise OnnxImportError(f"unknown nearest_mode {nearest_mode!r}")
    attrs = {"mode": "nearest" if mode == "nearest" else "bilinear",
             "coordinate_transformation": transform, "nearest_mode": nearest_mode}
    if scales is not None:
        attrs["scale"] = [float(np.float32(f)) for f in factors]
        identity = factors == [1.0, 1.0]
    else:
        attrs["size"] = [int(v) for v in factors]
        identity = attrs["size"] == [h, w]
    if identity:
        ctx.alias(node, t)
        return
    ctx.emit(node, "resize", [t], attrs, nonneg=t.nonneg)


@_converter("Softmax")
def _softmax(ctx: "Context", node: OnnxNode) -> None:
    t = ctx.value(node.inputs[0])
    shape = t.onnx_shape(1)
    axis = int(node.attrs.get("axis", -1 if ctx.opset >= 13 else 1)) % len(shape)
    if axis == 0:
        raise OnnxImportError("softmax over the batch axis is not supported")
    if t.kind == "image":
        # Before opset 13, Softmax flattens every axis from `axis` on into one.
        if ctx.opset < 13 and axis != 3 and int(np.prod(shape[axis + 1:])) > 1:
            raise OnnxImportError(f"opset {ctx.opset} Softmax over axes {axis}.. of {list(shape)} (flattened) is "
                                  "not supported")
        axis = {1: -1, 2: 1, 3: 2}[axis]
    elif axis != 1:
        raise OnnxImportError(f"softmax over axis {axis} of {list(shape)} is not supported (only the channel axis)")
    else:
        axis = -1
    ctx.emit(node, "softmax", [t], {"axis": axis}, nonneg=True)


@_converter("Dropout", "Identity")
def _identity(ctx: "Context", node: OnnxNode) -> None:
    _only_first_output(node, "the dropout mask")
    ctx.alias(node, ctx.raw(node.inputs[0]))

