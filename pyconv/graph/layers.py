"""Layer types: for each, its defaults, shape rule, parameters, MAC count and operator construction.

``LAYER_TYPES`` maps a config ``type`` to an instance of its class; a new layer type is one new class
decorated with :func:`register` (plus its entry in ``model.schema.json``). Shapes here are per sample
(no batch axis), NHWC. Numerical work is delegated to the operators in :mod:`pyconv.conv` and
:mod:`pyconv.ops`; flatten and reshape are numpy copies between arena buffers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple, Optional, Sequence

import numpy as np

from .. import ops
from ..activations import PARAM_FIELDS, ActivationError, of_layer, parse as parse_activation
from ..conv import Conv2D, Dense, DepthwiseConv2D, PointwiseConv2D, SeparableConv2D
from ..padding import effective_kernel, output_size, resolve_padding
from .errors import ModelError

__all__ = ["LAYER_TYPES", "Kernel", "LayerType", "Param", "Shape", "Signal", "register"]

Shape = tuple[int, ...]
Weights = dict[str, np.ndarray]


class Param(NamedTuple):
    """A weight a layer expects: its shape and how seeded weights initialise it (see weights.py)."""

    shape: Shape
    init: str  # "kernel" (He), "linear_kernel" (LeCun), "bias", "gamma", "beta", "mean", "variance", "prelu"
    fan_in: int = 1


class Signal(NamedTuple):
    """A tensor's rough element mean and variance under seeded weights (see weights.py)."""

    mean: float
    var: float

    @property
    def square(self) -> float:
        return self.mean * self.mean + self.var


@dataclass
class Kernel:
    """A prepared layer: ``run(inputs, out, threads)`` writes into ``out``; ``strategy(input_shape)``
    names the algorithm that serves a given full (batched) input shape. ``bind(inputs, out)``, where
    given, validates once and returns ``call(threads)`` doing what ``run`` does on those very arrays
    (the executor binds every node whose arrays are fixed, sparing the checks on each run). ``nchw``,
    where given, is the same layer taking its one input in NCHW layout (a model's first layer, fed the
    caller's NCHW array without a transpose). ``repad(padding)``, where given, is the same layer with
    other pads sharing the packed weights (a model at an input size where its pads differ).
    ``weight_bytes()``: the bytes of weights the layer holds (packed forms included)."""

    run: Callable[[Sequence[np.ndarray], np.ndarray, int], object]
    strategy: Callable[[Shape], str]
    bind: Optional[Callable[[Sequence[np.ndarray], np.ndarray], Callable[[int], object]]] = None
    nchw: Optional["Kernel"] = None
    repad: Optional[Callable[[Any], "Kernel"]] = None
    weight_bytes: Callable[[], int] = lambda: 0


LAYER_TYPES: dict[str, "LayerType"] = {}


def register(cls: type["LayerType"]) -> type["LayerType"]:
    """Class decorator adding a layer type to ``LAYER_TYPES``."""
    LAYER_TYPES[cls.type] = cls()
    return cls


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _as_tuple(value: Any) -> Any:
    """JSON lists -> tuples (the operators' padding and size forms); integral floats -> ints."""
    if isinstance(value, list):
        return tuple(_as_tuple(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fixed(label: str) -> Callable[[Shape], str]:
    return lambda shape: label


# The largest int the kernels take (a C int): geometry past it is refused at load.
_INT_MAX = 2 ** 31 - 1


def _window_hw(name: str, attrs: dict[str, Any], in_shape: Shape, kernel_field: str,
               ceil_mode: bool = False) -> tuple[int, int]:
    """Output (H, W) of a sliding window: conv or pool geometry from ``attrs``."""
    kernel = _pair(attrs[kernel_field])
    stride = _pair(attrs["stride"] if attrs.get("stride") is not None else attrs[kernel_field])
    dilation = _pair(attrs.get("dilation", 1))
    pads = resolve_padding(attrs["padding"], in_shape[:2], kernel, stride, dilation)
    out = []
    for axis in range(2):
        size, lo, hi = in_shape[axis], pads[2 * axis], pads[2 * axis + 1]
        extent = effective_kernel(kernel[axis], dilation[axis])
        if size + lo + hi + extent + stride[axis] > _INT_MAX:
            # The kernels index the padded input with 32-bit ints: every sum of these must fit.
            extent_field = "dilation" if dilation[axis] > kernel[axis] else kernel_field
            field = max((("padding", lo + hi), (extent_field, extent), ("stride", stride[axis])), key=lambda f: f[1])
            raise ModelError(f"expected a padded input, window extent and stride summing below 2^31 along "
                             f"{'HW'[axis]}, found {size} + ({lo}, {hi}) pads, extent {extent}, stride {stride[axis]}",
                             layer=name, field=field[0])
        n = output_size(size, kernel[axis], stride[axis], dilation[axis], lo, hi, ceil_mode)
        if n < 1:
            raise ModelError(
                f"expected a window that fits the input, found a {kernel[0]}x{kernel[1]} {kernel_field}"
                f" (extent {effective_kernel(kernel[axis], dilation[axis])} with dilation {dilation[axis]})"
                f" over {'HW'[axis]}={size} padded by ({lo}, {hi})", layer=name, field=kernel_field)
        if kernel_field == "pool" and (lo >= kernel[axis] or (n - 1) * stride[axis] - lo >= size):
            # A pooling window holding only padding has no defined value.
            raise ModelError(f"expected pads smaller than the {kernel[axis]}-wide pool, found ({lo}, {hi}) "
                             f"along {'HW'[axis]}, which leaves a window with no input", layer=name,
                             field="padding")
        out.append(n)
    return out[0], out[1]


def _image(name: str, shape: Shape) -> Shape:
    if len(shape) != 3:
        raise ModelError(f"expected an image input [H, W, C], found shape {list(shape)}", layer=name,
                         field="inputs", hint="image layers cannot follow flatten, global_avg_pool or dense")
    return shape


class LayerType:
    """Base class: a layer type with no parameters that keeps its input shape."""

    type: ClassVar[str]
    arity: ClassVar[tuple[int, Optional[int]]] = (1, 1)
    defaults: ClassVar[dict[str, Any]] = {}
    # Identity at inference: the loader rewires its consumers to its input instead of running it.
    identity: ClassVar[bool] = False

    def normalize(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Config fields with defaults filled and JSON lists turned into tuples."""
        return {**self.defaults, **{k: _as_tuple(v) for k, v in attrs.items()}}

    def output_shape(self, name: str, attrs: dict[str, Any], in_shapes: list[Shape]) -> Shape:
        return in_shapes[0]

    def params(self, name: str, attrs: dict[str, Any], in_shapes: list[Shape]) -> dict[str, Param]:
        return {}

    def macs(self, attrs: dict[str, Any], in_shapes: list[Shape], out_shape: Shape) -> int:
        """Multiply-accumulates per sample (0 for layers that do no multiply-accumulate work)."""
        return 0

    def signal(self, attrs: dict[str, Any], in_shapes: list[Shape], ins: list["Signal"]) -> "Signal":
        """Rough mean and variance of the output under seeded weights, given the inputs' (weights.py)."""
        return _activated(attrs, ins[0])

    def build(self, attrs: dict[str, Any], weights: Weights, in_shapes: list[Shape]) -> Kernel:
        raise NotImplementedError(f"{self.type} layers are removed by the loader and never run")


def _relu(x: Signal) -> Signal:
    # Mean and variance of max(X, 0) for a Gaussian X; relu6's clipping is ignored.
    sd = math.sqrt(max(x.var, 1e-12))
    a = x.mean / sd
    cdf = 0.5 * (1.0 + math.erf(a / math.sqrt(2.0)))
    pdf = math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    mean = x.mean * cdf + sd * pdf
    square = (x.mean ** 2 + x.var) * cdf + x.mean * sd * pdf
    return Signal(mean, max(square - mean * mean, 0.0))


def _activation_signal(activation: Any, x: Signal) -> Signal:
    """Rough output statistics of an activation: the rectifier-like functions as relu, the squashing
    ones by their range, a clip as its input."""
    act = parse_activation(activation)
    if act is None or act.function == "clip":
        return x
    if act.function in ("sigmoid", "hard_sigmoid"):
        return Signal(0.5, min(x.var, 4.0) / 16.0)
    if act.function == "tanh":
        return Signal(0.0, min(x.var, 1.0) / 2.0)
    return _relu(x)


def _activated(attrs: dict[str, Any], x: Signal) -> Signal:
    return _activation_signal(attrs.get("activation"), x)


class _HeLayer(LayerType):
    """A layer whose seeded kernel is He-scaled and zero-mean: its output has mean 0 and variance
    twice the input's mean square."""

    def signal(self, attrs, in_shapes, ins):
        return _activated(attrs, Signal(0.0, 2.0 * ins[0].square))


def _conv_kernel(op: Any, attrs: dict[str, Any], strategy: Callable[[Shape], str]) -> Kernel:
    """The kernel of a convolution (or dense) node; a node that absorbed a residual add (see passes.py,
    which gives one only to operators whose ``_bind`` takes a residual) takes the shortcut as its
    second input."""
    repad: Optional[Callable[[Any], Kernel]] = None
    if hasattr(op, "with_padding"):
        def with_padding(padding: Any) -> Kernel:
            other = op.with_padding(padding)
            return _conv_kernel(other, {**attrs, "padding": padding},
                                other.strategy_for if isinstance(other, Conv2D) else strategy)
        repad = with_padding
    if attrs.get("residual"):
        if not isinstance(op, (Conv2D, PointwiseConv2D, SeparableConv2D)):
            raise TypeError(f"a {type(op).__name__} cannot take a residual input")
        return Kernel(lambda xs, out, threads: op(xs[0], residual=xs[1], out=out, threads=threads), strategy,
                      lambda xs, out: op._bind(xs[0], xs[1], out), repad=repad, weight_bytes=lambda: op.nbytes)
    nchw = None
    if isinstance(op, Conv2D) and op.reads_nchw() and attrs.get("strategy", "auto") == "auto":
        op._weights("few-channels")  # packed at load, like every other kernel's weights (a few hundred floats)
        bind_nchw = lambda xs, out: op._bind_nchw(xs[0], out)  # noqa: E731
        nchw = Kernel(lambda xs, out, threads: bind_nchw(xs, out)(threads), lambda shape: "nchw-direct", bind_nchw,
                      weight_bytes=lambda: op.nbytes)
    return Kernel(lambda xs, out, threads: op(xs[0], out=out, threads=threads), strategy,
                  lambda xs, out: op._bind(xs[0], out=out), nchw, repad, lambda: op.nbytes)


def _bias(attrs: dict[str, Any], channels: int) -> dict[str, Param]:
    return {"bias": Param((channels,), "bias")} if attrs["use_bias"] else {}


@register
class InputLayer(LayerType):
    type = "input"
    arity = (0, 0)
    defaults = {"layout": "NHWC"}

    def signal(self, attrs, in_shapes, ins):
        return Signal(0.0, 1.0)

    def output_shape(self, name, attrs, in_shapes):
        return tuple(attrs["shape"])


@register
class Conv2DLayer(_HeLayer):
    type = "conv2d"
    defaults = {"stride": 1, "padding": "valid", "dilation": 1, "groups": 1, "use_bias": True,
                "activation": None, "strategy": "auto"}

    def output_shape(self, name, attrs, in_shapes):
        h, w, c = _image(name, in_shapes[0])
        groups, filters = attrs["groups"], attrs["filters"]
        if c % groups or filters % groups:
            raise ModelError(f"expected a divisor of both the input channels ({c}) and filters ({filters}),"
                             f" found {groups}", layer=name, field="groups")
        return (*_window_hw(name, attrs, in_shapes[0], "kernel"), filters)

    def params(self, name, attrs, in_shapes):
        kh, kw = _pair(attrs["kernel"])
        cin = in_shapes[0][-1] // attrs["groups"]
        return {"kernel": Param((kh, kw, cin, attrs["filters"]), "kernel", kh * kw * cin),
                **_bias(attrs, attrs["filters"])}

    def macs(self, attrs, in_shapes, out_shape):
        kh, kw = _pair(attrs["kernel"])
        return math.prod(out_shape) * kh * kw * (in_shapes[0][-1] // attrs["groups"])

    def build(self, attrs, weights, in_shapes):
        op = Conv2D(weights["kernel"], weights.get("bias"), stride=attrs["stride"], padding=attrs["padding"],
                    dilation=attrs["dilation"], groups=attrs["groups"], activation=attrs["activation"],
                    strategy=attrs["strategy"])
        return _conv_kernel(op, attrs, op.strategy_for)


@register
class DepthwiseConv2DLayer(_HeLayer):
    type = "depthwise_conv2d"
    defaults = {"stride": 1, "padding": "valid", "dilation": 1, "depth_multiplier": 1, "use_bias": True,
                "activation": None}

    def output_shape(self, name, attrs, in_shapes):
        _image(name, in_shapes[0])
        return (*_window_hw(name, attrs, in_shapes[0], "kernel"), in_shapes[0][-1] * attrs["depth_multiplier"])

    def params(self, name, attrs, in_shapes):
        kh, kw = _pair(attrs["kernel"])
        c, m = in_shapes[0][-1], attrs["depth_multiplier"]
        return {"kernel": Param((kh, kw, c, m), "kernel", kh * kw), **_bias(attrs, c * m)}

    def macs(self, attrs, in_shapes, out_shape):
        kh, kw = _pair(attrs["kernel"])
        return math.prod(out_shape) * kh * kw

    def build(self, attrs, weights, in_shapes):
        op = DepthwiseConv2D(weights["kernel"], weights.get("bias"), stride=attrs["stride"],
                             padding=attrs["padding"], dilation=attrs["dilation"], activation=attrs["activation"],
                             input_activation=attrs.get("input_activation"))
        return _conv_kernel(op, attrs, _fixed("depthwise"))


@register
class PointwiseConv2DLayer(_HeLayer):
    type = "pointwise_conv2d"
    defaults = {"use_bias": True, "activation": None}

    def output_shape(self, name, attrs, in_shapes):
        h, w, _ = _image(name, in_shapes[0])
        return (h, w, attrs["filters"])

    def params(self, name, attrs, in_shapes):
        c = in_shapes[0][-1]
        return {"kernel": Param((c, attrs["filters"]), "kernel", c), **_bias(attrs, attrs["filters"])}

    def macs(self, attrs, in_shapes, out_shape):
        return math.prod(out_shape) * in_shapes[0][-1]

    def build(self, attrs, weights, in_shapes):
        op = PointwiseConv2D(weights["kernel"], weights.get("bias"), activation=attrs["activation"])
        return _conv_kernel(op, attrs, _fixed("pointwise"))


@register
class SeparableConv2DLayer(_HeLayer):
    """Depthwise then pointwise. The loader also creates these by fusing a depthwise layer into the
    pointwise layer that alone consumes it; such fused nodes carry ``depthwise_activation`` and a
    ``depthwise_bias`` weight, which configs cannot spell."""

    type = "separable_conv2d"
    defaults = {"stride": 1, "padding": "valid", "dilation": 1, "use_bias": True, "activation": None,
                "depthwise_activation": None}

    def output_shape(self, name, attrs, in_shapes):
        _image(name, in_shapes[0])
        return (*_window_hw(name, attrs, in_shapes[0], "kernel"), attrs["filters"])

    def params(self, name, attrs, in_shapes):
        kh, kw = _pair(attrs["kernel"])
        c = in_shapes[0][-1]
        return {"depthwise_kernel": Param((kh, kw, c, 1), "linear_kernel", kh * kw),
                "pointwise_kernel": Param((c, attrs["filters"]), "kernel", c),
                **_bias(attrs, attrs["filters"])}

    def macs(self, attrs, in_shapes, out_shape):
        kh, kw = _pair(attrs["kernel"])
        oh, ow, filters = out_shape
        return oh * ow * in_shapes[0][-1] * (kh * kw + filters)

    def build(self, attrs, weights, in_shapes):
        op = SeparableConv2D(weights["depthwise_kernel"], weights["pointwise_kernel"],
                             weights.get("depthwise_bias"), weights.get("bias"), stride=attrs["stride"],
                             padding=attrs["padding"], dilation=attrs["dilation"],
                             depthwise_activation=attrs["depthwise_activation"], activation=attrs["activation"],
                             input_activation=attrs.get("input_activation"))
        return _conv_kernel(op, attrs, _fixed("separable"))


@register
class BatchNormLayer(LayerType):
    """Folded into the preceding convolution or dense layer when it alone consumes that layer's output;
    otherwise runs as a per-channel scale and shift."""

    type = "batch_norm"
    defaults = {"epsilon": 0.001}

    def params(self, name, attrs, in_shapes):
        c = (in_shapes[0][-1],)
        return {"gamma": Param(c, "gamma"), "beta": Param(c, "beta"), "mean": Param(c, "mean"),
                "variance": Param(c, "variance")}

    def signal(self, attrs, in_shapes, ins):
        return _activated(attrs, Signal(0.0, 1.0))  # seeded statistics match the input's

    def build(self, attrs, weights, in_shapes):
        scale = weights["gamma"] / np.sqrt(weights["variance"].astype(np.float64) + attrs["epsilon"])
        shift = (weights["beta"] - weights["mean"] * scale).astype(np.float32)
        scale = scale.astype(np.float32)
        activation = attrs.get("activation")
        return Kernel(lambda xs, out, threads: ops.scale_shift(xs[0], scale, shift, activation=activation, out=out,
                                                               threads=threads), _fixed("elementwise"),
                      weight_bytes=lambda: scale.nbytes + shift.nbytes)


@register
class ScaleShiftLayer(LayerType):
    """``x * scale + shift`` per channel (the last axis): an ONNX ``Mul``/``Add`` by a constant, or a
    batch norm already reduced to its affine form. Folded like a batch norm into the convolution or
    dense layer before it."""

    type = "scale_shift"
    defaults = {"activation": None}

    def params(self, name, attrs, in_shapes):
        c = (in_shapes[0][-1],)
        return {"scale": Param(c, "gamma"), "shift": Param(c, "beta")}

    def build(self, attrs, weights, in_shapes):
        scale, shift, activation = weights["scale"], weights["shift"], attrs["activation"]
        return Kernel(lambda xs, out, threads: ops.scale_shift(xs[0], scale, shift, activation=activation, out=out,
                                                               threads=threads), _fixed("elementwise"),
                      weight_bytes=lambda: scale.nbytes + shift.nbytes)


@register
class ActivationLayer(LayerType):
    """One of :mod:`pyconv.activations`' functions, with the parameters it takes (``alpha``, ``beta``;
    ``clip``'s bounds ``min`` / ``max``, either may be null).  Fuses into the producing convolution,
    dense, add, batch norm or scale_shift when it alone consumes it (passes.py)."""

    type = "activation"
    defaults = {"min": None, "max": None}

    def output_shape(self, name, attrs, in_shapes):
        lo, hi = attrs["min"], attrs["max"]
        takes = parse_activation(attrs["function"]).params
        for field in PARAM_FIELDS:
            if attrs.get(field) is not None and field not in takes:
                raise ModelError(f"expected no {field} for function {attrs['function']!r} (it takes "
                                 f"{', '.join(takes) or 'no parameters'}), found {attrs[field]}", layer=name,
                                 field=field)
        try:
            of_layer(attrs)
        except ActivationError as exc:  # a parameter that is no finite number
            raise ModelError(f"expected an activation, {exc}", layer=name, field=exc.field) from None
        if attrs["function"] != "clip":
            return in_shapes[0]
        if lo is None and hi is None:
            raise ModelError("expected a min or a max bound for function 'clip', found neither", layer=name,
                             field="min")
        elif lo is not None and hi is not None and lo > hi:
            raise ModelError(f"expected min <= max, found min {lo} and max {hi}", layer=name, field="min")
        return in_shapes[0]

    def signal(self, attrs, in_shapes, ins):
        return _activation_signal(of_layer(attrs), ins[0])

    def build(self, attrs, weights, in_shapes):
        function = of_layer(attrs)
        return Kernel(lambda xs, out, threads: ops.activation(xs[0], function, out=out, threads=threads),
                      _fixed("elementwise"), lambda xs, out: ops._activation_bind(xs[0], function, out))


@register
class PReluLayer(LayerType):
    """``x`` where ``x >= 0``, else ``alpha * x``; weight ``alpha`` of shape (C,) by default, or any
    shape broadcasting to the per-sample shape given as ``alpha_shape``."""

    type = "prelu"
    defaults = {"alpha_shape": None}

    def params(self, name, attrs, in_shapes):
        shape = attrs["alpha_shape"]
        if shape is None:
            return {"alpha": Param((in_shapes[0][-1],), "prelu")}
        if len(shape) > len(in_shapes[0]) or any(a not in (1, b) for a, b in zip(shape[::-1], in_shapes[0][::-1])):
            raise ModelError(f"expected a shape broadcasting to the input's {list(in_shapes[0])}, found "
                             f"{list(shape)}", layer=name, field="alpha_shape")
        return {"alpha": Param(tuple(shape), "prelu")}

    def signal(self, attrs, in_shapes, ins):
        return _relu(ins[0])

    def build(self, attrs, weights, in_shapes):
        alpha = weights["alpha"]
        return Kernel(lambda xs, out, threads: ops.prelu(xs[0], alpha, out=out, threads=threads),
                      _fixed("elementwise"), lambda xs, out: ops._prelu_bind(xs[0], alpha, out),
                      weight_bytes=lambda: alpha.nbytes)


class _PoolLayer(LayerType):
    """Max or average pooling. The loader can give a pooling node an ``activation`` (pushed through a
    concat, see passes.py), which configs cannot spell."""

    defaults = {"stride": None, "padding": "valid", "ceil_mode": False}
    is_max: ClassVar[bool]

    def output_shape(self, name, attrs, in_shapes):
        _image(name, in_shapes[0])
        return (*_window_hw(name, attrs, in_shapes[0], "pool", attrs["ceil_mode"]), in_shapes[0][-1])

    def build(self, attrs, weights, in_shapes):
        def bind(xs: Sequence[np.ndarray], out: np.ndarray) -> Callable[[Optional[int]], np.ndarray]:
            return ops._pool_bind(xs[0], attrs["pool"], attrs["stride"], attrs["padding"], attrs["ceil_mode"],
                                  attrs.get("count_include_pad", False), self.is_max, attrs.get("activation"), out)
        return Kernel(lambda xs, out, threads: bind(xs, out)(threads), _fixed("pool"), bind)


@register
class MaxPoolLayer(_PoolLayer):
    type = "max_pool"
    is_max = True


@register
class AvgPoolLayer(_PoolLayer):
    type = "avg_pool"
    defaults = {**_PoolLayer.defaults, "count_include_pad": False}
    is_max = False


@register
class PadLayer(LayerType):
    """Padding of the spatial axes, ``padding`` [[top, bottom], [left, right]]: ``mode`` "constant"
    (``value``), "reflect" (mirrored about the edge pixel, which is not repeated: each pad below the
    axis's size) or "edge" (the edge pixel repeated). The ONNX importer folds zero pads into the
    convolution or pooling after them; this layer serves the rest."""

    type = "pad"
    defaults = {"value": 0.0, "mode": "constant"}
    MODES = ("constant", "reflect", "edge")

    def output_shape(self, name, attrs, in_shapes):
        h, w, c = _image(name, in_shapes[0])
        (top, bottom), (left, right) = attrs["padding"]
        if attrs["mode"] not in self.MODES:
            raise ModelError(f"expected one of {', '.join(self.MODES)}, found {attrs['mode']!r}", layer=name,
                             field="mode")
        if attrs["mode"] == "reflect" and max(top, bottom) >= h or attrs["mode"] == "reflect" and max(left, right) >= w:
            raise ModelError(f"reflect padding {attrs['padding']} of a {h}x{w} input: each pad must be below the "
                             "size of its axis", layer=name, field="padding")
        return (h + top + bottom, w + left + right, c)

    def build(self, attrs, weights, in_shapes):
        (top, bottom), (left, right) = attrs["padding"]
        value, mode = attrs["value"], attrs["mode"]

        def run(xs: Sequence[np.ndarray], out: np.ndarray, threads: int) -> None:
            if mode == "constant":
                _, h, w, _ = xs[0].shape
                out.fill(value)
                out[:, top:top + h, left:left + w] = xs[0]
            else:
                out[...] = np.pad(xs[0], ((0, 0), (top, bottom), (left, right), (0, 0)), mode=mode)
        return Kernel(run, _fixed("reshape"))


@register
class GlobalAvgPoolLayer(LayerType):
    type = "global_avg_pool"

    def output_shape(self, name, attrs, in_shapes):
        return (_image(name, in_shapes[0])[-1],)

    def build(self, attrs, weights, in_shapes):
        return Kernel(lambda xs, out, threads: ops.global_avg_pool2d(xs[0], out=out, threads=threads), _fixed("pool"),
                      lambda xs, out: ops._global_avg_pool_bind(xs[0], out))


@register
class DenseLayer(_HeLayer):
    type = "dense"
    defaults = {"use_bias": True, "activation": None}

    def output_shape(self, name, attrs, in_shapes):
        if len(in_shapes[0]) != 1:
            raise ModelError(f"expected a flat input [features], found shape {list(in_shapes[0])}", layer=name,
                             field="inputs", hint="put a flatten or global_avg_pool layer before it")
        return (attrs["units"],)

    def params(self, name, attrs, in_shapes):
        f = in_shapes[0][0]
        return {"kernel": Param((f, attrs["units"]), "kernel", f), **_bias(attrs, attrs["units"])}

    def macs(self, attrs, in_shapes, out_shape):
        return in_shapes[0][0] * attrs["units"]

    def build(self, attrs, weights, in_shapes):
        op = Dense(weights["kernel"], weights.get("bias"), activation=attrs["activation"])
        return _conv_kernel(op, attrs, _fixed("dense"))


def _broadcast_shape(name: str, in_shapes: list[Shape]) -> Shape:
    """The shape the inputs broadcast to, by numpy's rules on their per-sample shapes."""
    out = in_shapes[0]
    for i, shape in enumerate(in_shapes[1:], 1):
        try:
            out = np.broadcast_shapes(out, shape)
        except ValueError:
            raise ModelError(f"expected inputs that broadcast against each other (numpy's rules on the per-sample "
                             f"shapes), found {list(shape)} (inputs[{i}]) against {list(out)} (the inputs before it)",
                             layer=name, field=f"inputs[{i}]") from None
    return tuple(out)


def _batched(xs: Sequence[np.ndarray], rank: int) -> list[np.ndarray]:
    """Batched inputs whose per-sample shapes are aligned to ``rank`` axes (views): per-sample
    broadcasting is right-aligned, and the batch axis must stay in front."""
    return [x if x.ndim == rank + 1 else x.reshape(x.shape[0], *(1,) * (rank + 1 - x.ndim), *x.shape[1:])
            for x in xs]


class _BinaryLayer(LayerType):
    """An elementwise op of two inputs that broadcast against each other (e.g. an (H, W, C) map times a
    (1, 1, C) gate: squeeze-and-excitation), with an optional fused ``activation``."""

    arity = (2, 2)
    defaults = {"activation": None}
    op: ClassVar[str]

    def output_shape(self, name, attrs, in_shapes):
        return _broadcast_shape(name, in_shapes)

    def build(self, attrs, weights, in_shapes):
        activation, op, rank = attrs["activation"], self.op, max(len(s) for s in in_shapes)

        def bind(xs: Sequence[np.ndarray], out: np.ndarray) -> Callable[[Optional[int]], np.ndarray]:
            a, b = _batched(xs, rank)
            return ops._binary_bind(op, a, b, activation, out)
        return Kernel(lambda xs, out, threads: bind(xs, out)(threads), _fixed("elementwise"), bind)


@register
class AddLayer(_BinaryLayer):
    type = "add"
    arity = (2, None)
    op = "add"

    def signal(self, attrs, in_shapes, ins):
        return _activated(attrs, Signal(sum(x.mean for x in ins), sum(x.var for x in ins)))

    def build(self, attrs, weights, in_shapes):
        if len(in_shapes) == 2:
            return super().build(attrs, weights, in_shapes)
        activation, rank = attrs["activation"], max(len(s) for s in in_shapes)

        def run(xs: Sequence[np.ndarray], out: np.ndarray, threads: int) -> None:
            xs = _batched(xs, rank)
            # Accumulate in place, in input order; the activation only applies to the complete sum.
            if np.broadcast_shapes(xs[0].shape, xs[1].shape) == out.shape:
                ops.add(xs[0], xs[1], out=out, threads=threads)
                rest = xs[2:]
            else:
                np.copyto(out, np.broadcast_to(xs[0], out.shape))
                rest = xs[1:]
            for x in rest[:-1]:
                ops.add(out, x, out=out, threads=threads)
            ops.add(out, rest[-1], activation=activation, out=out, threads=threads)
        return Kernel(run, _fixed("elementwise"))


@register
class SubtractLayer(_BinaryLayer):
    type = "subtract"
    op = "subtract"

    def signal(self, attrs, in_shapes, ins):
        return _activated(attrs, Signal(ins[0].mean - ins[1].mean, ins[0].var + ins[1].var))


@register
class MultiplyLayer(_BinaryLayer):
    type = "multiply"
    op = "multiply"

    def signal(self, attrs, in_shapes, ins):
        a, b = ins
        mean = a.mean * b.mean
        return _activated(attrs, Signal(mean, max(a.square * b.square - mean * mean, 0.0)))


@register
class DivideLayer(_BinaryLayer):
    """``inputs[0] / inputs[1]``: IEEE float32 division (a zero divisor gives +-inf or NaN)."""

    type = "divide"
    op = "divide"

    def signal(self, attrs, in_shapes, ins):
        return _activated(attrs, ins[0])  # no useful closed form: the divisor's scale is not tracked


@register
class ConcatLayer(LayerType):
    type = "concat"
    arity = (1, None)

    def output_shape(self, name, attrs, in_shapes):
        for i, shape in enumerate(in_shapes[1:], 1):
            if shape[:-1] != in_shapes[0][:-1]:
                raise ModelError(f"expected inputs agreeing on all but the channel axis, found {list(in_shapes[0])}"
                                 f" (inputs[0]) and {list(shape)} (inputs[{i}])", layer=name, field=f"inputs[{i}]")
        return (*in_shapes[0][:-1], sum(s[-1] for s in in_shapes))

    def signal(self, attrs, in_shapes, ins):
        weights = [s[-1] / max(sum(s[-1] for s in in_shapes), 1) for s in in_shapes]
        mean = sum(w * x.mean for w, x in zip(weights, ins))
        return Signal(mean, sum(w * x.square for w, x in zip(weights, ins)) - mean * mean)

    def build(self, attrs, weights, in_shapes):
        return Kernel(lambda xs, out, threads: ops.concat(list(xs), out=out, threads=threads), _fixed("concat"),
                      lambda xs, out: ops._concat_bind(list(xs), out))


@register
class ChannelShuffleLayer(LayerType):
    type = "channel_shuffle"

    def output_shape(self, name, attrs, in_shapes):
        c = _image(name, in_shapes[0])[-1]
        if c % attrs["groups"]:
            raise ModelError(f"expected a divisor of the input channels ({c}), found {attrs['groups']}",
                             layer=name, field="groups")
        return in_shapes[0]

    def build(self, attrs, weights, in_shapes):
        groups = attrs["groups"]
        return Kernel(lambda xs, out, threads: ops.channel_shuffle(xs[0], groups, out=out, threads=threads),
                      _fixed("shuffle"), lambda xs, out: ops._shuffle_bind(xs[0], groups, out))


@register
class SliceLayer(LayerType):
    """``x[..., start:stop:step, ...]`` along ``axis``, which indexes the batched tensor as softmax's does
    (-1, the default, is the channel axis; 0, the batch, is refused). ``start`` and ``stop`` follow
    Python's slices (negative from the end, clamped to the axis; null: the end); ``step`` is positive.
    One output per layer: an ONNX Split becomes one slice layer per output. The slice is copied into its
    own arena buffer (a view would not be C-contiguous, which every reader's kernel needs; a channel
    slice copies one contiguous run per pixel)."""

    type = "slice"
    defaults = {"axis": -1, "start": 0, "stop": None, "step": 1}

    def _axis(self, name: str, attrs: dict[str, Any], shape: Shape) -> int:
        rank = len(shape) + 1
        axis = attrs["axis"]
        if not (-rank < axis < rank) or axis == 0:
            raise ModelError(f"expected an axis in 1..{rank - 1} or -{rank - 1}..-1 of the batched {rank}-D tensor, "
                             f"found {axis}", layer=name, field="axis")
        return axis % rank - 1

    def output_shape(self, name, attrs, in_shapes):
        shape = in_shapes[0]
        axis = self._axis(name, attrs, shape)
        if attrs["step"] < 1:
            raise ModelError(f"expected a positive step, found {attrs['step']}", layer=name, field="step")
        count = len(range(*slice(attrs["start"], attrs["stop"], attrs["step"]).indices(shape[axis])))
        if count == 0:
            raise ModelError(f"expected a non-empty slice, found [{attrs['start']}:{attrs['stop']}:{attrs['step']}] "
                             f"of an axis of length {shape[axis]} (input {list(shape)})", layer=name, field="start")
        return (*shape[:axis], count, *shape[axis + 1:])

    def signal(self, attrs, in_shapes, ins):
        return ins[0]

    def build(self, attrs, weights, in_shapes):
        axis = self._axis("", attrs, in_shapes[0]) + 1  # in the batched tensor
        start, stop, step = attrs["start"], attrs["stop"], attrs["step"]

        def bind(xs: Sequence[np.ndarray], out: np.ndarray) -> Callable[[Optional[int]], np.ndarray]:
            return ops._slice_bind(xs[0], axis, start, stop, step, out)
        return Kernel(lambda xs, out, threads: bind(xs, out)(threads), _fixed("slice"), bind)


@register
class ResizeLayer(LayerType):
    """Spatial resize of an image, as ONNX ``Resize`` (see :func:`pyconv.ops.resize`): ``mode``
    "nearest" or "bilinear", and exactly one of ``scale`` [sh, sw] (output floor(H * sh) by
    floor(W * sw)) and ``size`` [h, w]."""

    type = "resize"
    defaults = {"mode": "nearest", "scale": None, "size": None, "coordinate_transformation": "half_pixel",
                "nearest_mode": "round_prefer_floor"}

    def output_shape(self, name, attrs, in_shapes):
        h, w, c = _image(name, in_shapes[0])
        if (attrs["scale"] is None) == (attrs["size"] is None):
            raise ModelError("expected exactly one of scale and size, found "
                             f"{'both' if attrs['scale'] is not None else 'neither'}", layer=name, field="scale")
        field = "scale" if attrs["size"] is None else "size"
        try:
            oh, ow = ops.resize_output_size((h, w), attrs["size"], attrs["scale"])
        except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: a float32 scale of infinity
            raise ModelError(f"expected a finite positive {field} giving a finite output size, found "
                             f"{attrs[field]!r} ({exc})", layer=name, field=field) from None
        if oh < 1 or ow < 1:
            scale = attrs["scale"]
            raise ModelError(f"expected a scale giving a non-empty output, found "
                             f"{list(scale) if isinstance(scale, tuple) else scale} for an input of {h}x{w} "
                             f"(output {oh}x{ow})", layer=name, field="scale")
        return (oh, ow, c)

    def signal(self, attrs, in_shapes, ins):
        return ins[0]

    def build(self, attrs, weights, in_shapes):
        a = attrs

        def bind(xs: Sequence[np.ndarray], out: np.ndarray) -> Callable[[Optional[int]], np.ndarray]:
            return ops._resize_bind(xs[0], a["size"], a["scale"], a["mode"], a["coordinate_transformation"],
                                    a["nearest_mode"], out)
        return Kernel(lambda xs, out, threads: bind(xs, out)(threads), _fixed("resize"), bind)


@register
class FlattenLayer(LayerType):
    type = "flatten"
    defaults = {"order": "NHWC"}

    def output_shape(self, name, attrs, in_shapes):
        return (math.prod(in_shapes[0]),)

    def build(self, attrs, weights, in_shapes):
        if attrs["order"] == "NCHW" and len(in_shapes[0]) == 3:
            def run(xs: Sequence[np.ndarray], out: np.ndarray, threads: int) -> None:
                n, h, w, c = xs[0].shape
                ops.nhwc_to_nchw(xs[0], out=out.reshape(n, c, h, w), threads=threads)
        else:
            return _copy_kernel()
        return Kernel(run, _fixed("reshape"))


def _copy_kernel() -> Kernel:
    """The input's values copied into ``out`` of another shape (flatten, reshape); bound, the copy is
    one ``np.copyto`` between views made once (the unbound run took 4 us a node: a squeeze-and-excitation
    block's reshape of C floats, 16 of them in EfficientNet-B0)."""
    def run(xs: Sequence[np.ndarray], out: np.ndarray, threads: int) -> None:
        np.copyto(out, xs[0].reshape(out.shape))

    def bind(xs: Sequence[np.ndarray], out: np.ndarray) -> Callable[[int], None]:
        src, copyto = xs[0].reshape(out.shape), np.copyto
        if not np.shares_memory(src, xs[0]):  # a strided input reshapes to a copy: reshape on each run
            return lambda threads: run(xs, out, threads)
        return lambda threads: copyto(out, src)
    return Kernel(run, _fixed("reshape"), bind)


@register
class ReshapeLayer(LayerType):
    type = "reshape"

    def output_shape(self, name, attrs, in_shapes):
        target = list(attrs["shape"])
        size = math.prod(in_shapes[0])
        known = math.prod(d for d in target if d != -1)
        if target.count(-1) > 1 or (-1 in target and size % known) or (-1 not in target and known != size):
            raise ModelError(f"expected a shape holding the input's {size} values ({list(in_shapes[0])}), "
                             f"found {target}", layer=name, field="shape")
        return tuple(size // known if d == -1 else d for d in target)

    def build(self, attrs, weights, in_shapes):
        return _copy_kernel()


@register
class SoftmaxLayer(LayerType):
    """``axis`` indexes the batched tensor, so -1 (the default) is the channel axis; the batch axis 0
    is not allowed."""

    type = "softmax"
    defaults = {"axis": -1}

    def output_shape(self, name, attrs, in_shapes):
        rank = len(in_shapes[0]) + 1
        if not (-rank < attrs["axis"] < rank) or attrs["axis"] == 0:
            raise ModelError(f"expected an axis in 1..{rank - 1} or -{rank - 1}..-1 of the batched "
                             f"{rank}-D tensor, found {attrs['axis']}", layer=name, field="axis")
        return in_shapes[0]

    def build(self, attrs, weights, in_shapes):
        axis = attrs["axis"]
        return Kernel(lambda xs, out, threads: ops.softmax(xs[0], axis=axis, out=out, threads=threads),
                      _fixed("softmax"))


@register
class DropoutLayer(LayerType):
    type = "dropout"
    defaults = {"rate": 0.0}
    identity = True
