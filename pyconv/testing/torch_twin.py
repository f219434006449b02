"""A PyTorch twin of a pyconv model: the same graph and weights as a ``torch.nn.Module``.

Used to cross-check pyconv against PyTorch and (through ``export_onnx``) onnxruntime on identical
networks. The twin computes in NCHW; weights are converted from pyconv's layouts once:

- conv2d HWIO ``(KH, KW, C_in/g, F)`` -> OIHW ``(F, C_in/g, KH, KW)``;
- depthwise ``(KH, KW, C, M)`` -> ``(C*M, 1, KH, KW)`` with ``groups=C`` (output channel ``c*M + m``
  reads input channel ``c`` in both conventions);
- pointwise ``(C_in, F)`` and dense ``(in, units)`` are transposed.

Padding follows the format exactly rather than PyTorch's symmetric convention: the explicit
``(top, bottom, left, right)`` pads (TensorFlow "same" puts the odd pixel bottom/right) are
computed in ``forward`` from the actual input size and applied with ``F.pad`` when they are not
symmetric. Pools pad with -inf (max) or zeros plus a divisor map (average, ``count_include_pad``)
and are cropped to the format's output size, so ``ceil_mode`` follows the format too.

torch is optional for pyconv: it is imported when a twin is built.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..activations import of_layer, parse as parse_activation

__all__ = ["build_twin", "export_onnx"]


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("pyconv.testing.torch_twin needs PyTorch: install the 'test' extra "
                          "(pip install 'pyconv[test]') or torch itself") from exc
    return torch


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _same(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def explicit_pads(padding, hw, k, stride, dilation=(1, 1)) -> tuple[int, int, int, int]:
    """Any padding form of the format -> ``(top, bottom, left, right)`` for an input of size ``hw``."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            return (*_same(hw[0], k[0], stride[0], dilation[0]),
                    *_same(hw[1], k[1], stride[1], dilation[1]))
        raise ValueError(f"unknown padding {padding!r}")
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 4
    a, b = padding
    if isinstance(a, (int, np.integer)):
        return int(a), int(a), int(b), int(b)
    return int(a[0]), int(a[1]), int(b[0]), int(b[1])


def _per_sample_shapes(config: dict) -> tuple[list[dict], dict[str, tuple]]:
    """Topological order and per-sample NHWC shapes, enough to size every module."""
    by_name = {layer["name"]: layer for layer in config["layers"]}
    order, done = [], set()

    def visit(name, stack=()):
        if name in done:
            return
        if name in stack:
            raise ValueError(f"cycle through layer {name!r}")
        for dep in by_name[name].get("inputs", []):
            visit(dep, stack + (name,))
        done.add(name)
        order.append(by_name[name])

    for layer in config["layers"]:
        visit(layer["name"])
    shapes: dict[str, tuple] = {}
    for layer in order:
        t = layer["type"]
        ins = [shapes[i] for i in layer.get("inputs", [])]
        x = ins[0] if ins else None
        if t == "input":
            s = tuple(layer["shape"])
        elif t in ("conv2d", "depthwise_conv2d", "separable_conv2d", "max_pool", "avg_pool"):
            pool = t.endswith("pool")
            k = _pair(layer["pool"] if pool else layer["kernel"])
            st = _pair(layer.get("stride", layer["pool"] if pool else 1))
            d = (1, 1) if pool else _pair(layer.get("dilation", 1))
            pads = explicit_pads(layer.get("padding", "valid"), x[:2], k, st, d)
            oh, ow = _out_hw(x[:2], k, st, d, pads, pool and layer.get("ceil_mode", False))
            c = {"conv2d": layer.get("filters"), "separable_conv2d": layer.get("filters"),
                 "depthwise_conv2d": x[2] * layer.get("depth_multiplier", 1)}.get(t, x[2])
            s = (oh, ow, c)
        elif t == "pointwise_conv2d":
            s = (*x[:2], layer["filters"])
        elif t == "global_avg_pool":
            s = (x[-1],)
        elif t == "dense":
            s = (layer["units"],)
        elif t == "concat":
            s = (*x[:-1], sum(i[-1] for i in ins))
        elif t in ("add", "multiply", "subtract", "divide"):
            s = tuple(np.broadcast_shapes(*ins))
        elif t == "slice":
            axis = layer.get("axis", -1)
            axis = axis - 1 if axis > 0 else axis % len(x)
            n = len(range(x[axis])[layer["start"]:layer.get("stop"):layer.get("step", 1)])
            s = (*x[:axis], n, *x[axis + 1:])
        elif t == "flatten":
            s = (math.prod(x),)
        elif t == "reshape":
            target = list(layer["shape"])
            if -1 in target:
                target[target.index(-1)] = math.prod(x) // math.prod(d for d in target if d != -1)
            s = tuple(target)
        else:
            s = x
        shapes[layer["name"]] = s
    return order, shapes


def _out_hw(hw, k, stride, dilation, pads, ceil) -> tuple[int, int]:
    out = []
    for size, kk, s, d, before, after in ((hw[0], k[0], stride[0], dilation[0], pads[0], pads[1]),
                                           (hw[1], k[1], stride[1], dilation[1], pads[2], pads[3])):
        span = size + before + after - (kk - 1) * d - 1
        o = (-(-span // s) if ceil else span // s) + 1
        if ceil and (o - 1) * s >= size + before:
            o -= 1
        out.append(o)
    return out[0], out[1]


def _make_module_classes():
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class PadConv2d(nn.Conv2d):
        """Conv2d whose padding is the format's, resolved against the actual input size."""

        def __init__(self, cin, cout, kernel, stride, dilation, groups, bias, padding):
            super().__init__(cin, cout, kernel, stride=stride, padding=0, dilation=dilation,
                             groups=groups, bias=bias)
            self.spec = padding

        def forward(self, x):
            t, b, l, r = explicit_pads(self.spec, tuple(x.shape[-2:]), self.kernel_size,
                                       self.stride, self.dilation)
            if t == b and l == r:
                # PyTorch's own (symmetric) padding is exact here and cheaper than a Pad op.
                return F.conv2d(x, self.weight, self.bias, self.stride, (t, l), self.dilation,
                                self.groups)
            return F.conv2d(F.pad(x, (l, r, t, b)), self.weight, self.bias, self.stride, 0,
                            self.dilation, self.groups)

    class Pool2d(nn.Module):
        """Max or average pooling with the format's padding, ceil_mode and count_include_pad."""

        def __init__(self, kind, pool, stride, padding, ceil_mode, count_include_pad):
            super().__init__()
            self.kind = kind
            self.k = _pair(pool)
            self.s = _pair(stride)
            self.spec = padding
            self.ceil_mode = bool(ceil_mode)
            self.count_include_pad = bool(count_include_pad)
            self._divisors = {}

        def _geometry(self, hw):
            pads = explicit_pads(self.spec, hw, self.k, self.s)
            oh, ow = _out_hw(hw, self.k, self.s, (1, 1), pads, self.ceil_mode)
            # Pad the bottom/right far enough that every output window exists, then crop.
            eh = max((oh - 1) * self.s[0] + self.k[0] - (hw[0] + pads[0] + pads[1]), 0)
            ew = max((ow - 1) * self.s[1] + self.k[1] - (hw[1] + pads[2] + pads[3]), 0)
            return pads, (eh, ew), (oh, ow)

        def _divisor(self, hw, like):
            key = (hw, like.dtype, like.device)
            if key not in self._divisors:
                (t, b, l, r), (eh, ew), (oh, ow) = self._geometry(hw)
                ones = torch.ones((1, 1, *hw), dtype=like.dtype, device=like.device)
                if self.count_include_pad:
                    ones = F.pad(ones, (l, r, t, b), value=1.0)
                    ones = F.pad(ones, (0, ew, 0, eh))
                else:
                    ones = F.pad(ones, (l, r + ew, t, b + eh))
                area = self.k[0] * self.k[1]
                self._divisors[key] = (F.avg_pool2d(ones, self.k, self.s) * area)[..., :oh, :ow]
            return self._divisors[key]

        def forward(self, x):
            hw = tuple(int(v) for v in x.shape[-2:])
            (t, b, l, r), (eh, ew), (oh, ow) = self._geometry(hw)
            pad = (l, r + ew, t, b + eh)
            if self.kind == "max":
                if any(pad):
                    x = F.pad(x, pad, value=float("-inf"))
                return F.max_pool2d(x, self.k, self.s)[..., :oh, :ow]
            if any(pad):
                x = F.pad(x, pad)
            summed = F.avg_pool2d(x, self.k, self.s)[..., :oh, :ow] * (self.k[0] * self.k[1])
            return summed / self._divisor(hw, x)

    class Elementwise(nn.Module):
        """An elementwise function of the input (the activations PyTorch has no module for as given)."""

        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x)

    return PadConv2d, Pool2d, Elementwise


def _nhwc_axis_to_internal(axis: int, ndim: int) -> int:
    """An axis of the batched NHWC tensor (as the format counts) -> the twin's NCHW axis."""
    a = axis if axis >= 0 else axis + ndim
    return {1: 2, 2: 3, 3: 1}[a] if ndim == 4 else a


def _broadcastable(values: list) -> list:
    """Tensors of different ranks made to broadcast as their per-sample NHWC shapes do: a lower-rank
    one (per-sample shape aligned to the right of H, W, C) becomes NCHW 4-D."""
    if all(v.dim() == values[0].dim() for v in values):
        return values
    out = []
    for v in values:
        if v.dim() < 4:
            per_sample = (1,) * (4 - v.dim()) + tuple(v.shape[1:])
            v = v.reshape(v.shape[0], *per_sample).permute(0, 3, 1, 2)
        out.append(v)
    return out


def build_twin(config: dict, weights, io_layout: str | None = None):
    """A ``torch.nn.Module`` (eval mode, float32) computing ``config`` with ``weights``.

    ``config`` is a config dict or the path of a JSON config. ``weights`` maps ``<layer>/<param>`` to
    arrays in pyconv's layouts (an ``np.load``-ed ``.npz`` will do), or is nested
    ``{layer: {param: array}}`` as ``pyconv.graph.Model.weights`` gives them. ``forward(x)`` takes the batch
    in the input layer's layout and returns 4-D outputs in the config's ``output_layout``;
    ``io_layout`` (``"NCHW"`` or ``"NHWC"``) overrides both. It returns one tensor per config output
    (a tuple when there are several); ``module.output_names`` lists them.
    """
    torch = _torch()
    return _build(torch, _read_config(config), _flat_weights(weights), io_layout)


def _read_config(config) -> dict:
    if isinstance(config, (str, os.PathLike)):
        return json.loads(Path(config).read_text())
    return config


def _flat_weights(weights) -> dict:
    flat = {}
    for key, value in weights.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}/{p}": a for p, a in value.items()})
        else:
            flat[key] = value
    return flat


def _build(torch, config, weights, io_layout):
    nn = torch.nn
    F = torch.nn.functional
    PadConv2d, Pool2d, Elementwise = _make_module_classes()
    order, shapes = _per_sample_shapes(config)

    def param(layer, p):
        key = f"{layer['name']}/{p}"
        if key not in weights:
            raise KeyError(f"weights lack {key!r}")
        return torch.from_numpy(np.ascontiguousarray(np.asarray(weights[key], dtype=np.float32)))

    def conv(layer, cin, cout, kernel, groups, bias, w_oihw, stride=None, padding=None,
             dilation=None):
        m = PadConv2d(cin, cout, _pair(kernel), _pair(stride or layer.get("stride", 1)),
                      _pair(dilation or layer.get("dilation", 1)), groups, bias,
                      padding if padding is not None else layer.get("padding", "valid"))
        with torch.no_grad():
            m.weight.copy_(w_oihw)
            if bias:
                m.bias.copy_(param(layer, "bias"))
        return m

    def depthwise_weight(k):
        kh, kw = k.shape[:2]
        return k.reshape(kh, kw, -1).permute(2, 0, 1).unsqueeze(1)

    def act(fn):
        a = parse_activation(fn)
        if a is None:
            return nn.Identity()
        if a.function == "clip":
            return Elementwise(lambda x: torch.clamp(x, a.min, a.max))
        if a.function == "hard_sigmoid":
            return Elementwise(lambda x: torch.clamp(a.alpha * x + a.beta, 0.0, 1.0))
        if a.function == "leaky_relu":
            return nn.LeakyReLU(a.alpha)
        if a.function == "elu":
            return nn.ELU(a.alpha)
        if a.function == "selu":
            return Elementwise(lambda x: a.beta * F.elu(x, a.alpha))
        if a.function in ("gelu", "gelu_tanh"):
            return nn.GELU("tanh" if a.function == "gelu_tanh" else "none")
        return {"relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid, "hard_swish": nn.Hardswish,
                "silu": nn.SiLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "mish": nn.Mish}[a.function]()

    modules = nn.ModuleDict()
    keys = {}
    for layer in order:
        name, t = layer["name"], layer["type"]
        if t == "input":
            continue
        cin = shapes[layer["inputs"][0]][-1]
        bias = layer.get("use_bias", True)
        if t == "conv2d":
            g = layer.get("groups", 1)
            m = conv(layer, cin, layer["filters"], layer["kernel"], g, bias,
                     param(layer, "kernel").permute(3, 2, 0, 1))
        elif t == "depthwise_conv2d":
            k = param(layer, "kernel")
            k = k.unsqueeze(-1) if k.dim() == 3 else k
            m = conv(layer, cin, cin * k.shape[3], layer["kernel"], cin, bias, depthwise_weight(k))
        elif t == "pointwise_conv2d":
            m = conv(layer, cin, layer["filters"], 1, 1, bias,
                     param(layer, "kernel").t()[:, :, None, None], stride=1, padding="valid",
                     dilation=1)
        elif t == "separable_conv2d":
            dw = conv(layer, cin, cin, layer["kernel"], cin, False,
                      depthwise_weight(param(layer, "depthwise_kernel")))
            pw = conv(layer, cin, layer["filters"], 1, 1, bias,
                      param(layer, "pointwise_kernel").t()[:, :, None, None], stride=1,
                      padding="valid", dilation=1)
            m = nn.Sequential(dw, pw)
        elif t == "dense":
            m = nn.Linear(shapes[layer["inputs"][0]][0], layer["units"], bias=bias)
            with torch.no_grad():
                m.weight.copy_(param(layer, "kernel").t())
                if bias:
                    m.bias.copy_(param(layer, "bias"))
        elif t == "batch_norm":
            rank = len(shapes[layer["inputs"][0]])
            m = (nn.BatchNorm2d if rank == 3 else nn.BatchNorm1d)(cin, eps=layer.get("epsilon", 1e-3))
            with torch.no_grad():
                m.weight.copy_(param(layer, "gamma"))
                m.bias.copy_(param(layer, "beta"))
                m.running_mean.copy_(param(layer, "mean"))
                m.running_var.copy_(param(layer, "variance"))
        elif t == "activation":
            m = act(of_layer(layer, name))
        elif t == "prelu":
            alpha = param(layer, "alpha")
            # (..., C) per-sample slopes -> NCHW (C, ...), broadcasting against the twin's tensors.
            alpha = alpha.reshape((1,) * (3 - alpha.dim()) + tuple(alpha.shape)).permute(2, 0, 1) \
                if len(shapes[layer["inputs"][0]]) == 3 else alpha
            m = Elementwise(lambda x, alpha=alpha: torch.where(x < 0, alpha * x, x))
        elif t in ("max_pool", "avg_pool"):
            m = Pool2d(t[:3], layer["pool"], layer.get("stride", layer["pool"]),
                       layer.get("padding", "valid"), layer.get("ceil_mode", False),
                       layer.get("count_include_pad", False))
        else:
            continue
        if t in ("conv2d", "depthwise_conv2d", "pointwise_conv2d", "separable_conv2d", "dense",
                 "batch_norm") and layer.get("activation") is not None:
            m = nn.Sequential(m, act(layer["activation"]))
        # ModuleDict keys cannot hold dots; layer names may.
        keys[name] = f"m{len(keys)}_" + "".join(ch if ch.isalnum() or ch == "_" else "_"
                                                 for ch in name)
        modules[keys[name]] = m

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = modules
            self.output_names = list(config["outputs"])

        def forward(self, x):
            values = {}
            for layer in order:
                name, t = layer["name"], layer["type"]
                ins = [values[i] for i in layer.get("inputs", [])]
                if t == "input":
                    layout = io_layout or layer.get("layout", "NHWC")
                    v = x.permute(0, 3, 1, 2) if (x.dim() == 4 and layout == "NHWC") else x
                elif name in keys:
                    v = self.layers[keys[name]](ins[0])
                elif t == "global_avg_pool":
                    v = ins[0].mean(dim=(2, 3))
                elif t in ("add", "multiply", "subtract", "divide"):
                    ins = _broadcastable(ins)
                    v = ins[0]
                    for other in ins[1:]:
                        v = {"add": torch.add, "multiply": torch.mul, "subtract": torch.sub,
                             "divide": torch.div}[t](v, other)
                    v = act(layer.get("activation"))(v)
                elif t == "slice":
                    index = [slice(None)] * ins[0].dim()
                    index[_nhwc_axis_to_internal(layer.get("axis", -1), ins[0].dim())] = slice(
                        layer["start"], layer.get("stop"), layer.get("step", 1))
                    v = ins[0][tuple(index)]
                elif t == "concat":
                    v = torch.cat(ins, dim=1)
                elif t == "channel_shuffle":
                    g = layer["groups"]
                    n, c, h, w = ins[0].shape
                    v = ins[0].reshape(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)
                elif t == "flatten":
                    v = ins[0]
                    if v.dim() == 4 and layer.get("order", "NHWC") == "NHWC":
                        v = v.permute(0, 2, 3, 1)
                    v = v.reshape(v.shape[0], -1)
                elif t == "reshape":
                    v = ins[0]
                    if v.dim() == 4:
                        v = v.permute(0, 2, 3, 1)
                    v = v.reshape(v.shape[0], *shapes[name])
                    if v.dim() == 4:
                        v = v.permute(0, 3, 1, 2)
                elif t == "softmax":
                    v = torch.softmax(ins[0], dim=_nhwc_axis_to_internal(layer.get("axis", -1),
                                                                         ins[0].dim()))
                elif t == "dropout":
                    v = ins[0]
                else:
                    raise ValueError(f"layer {name!r}: unknown type {t!r}")
                values[name] = v
            out_layout = io_layout or config.get("output_layout", "NHWC")
            outs = [values[n].permute(0, 2, 3, 1) if (values[n].dim() == 4 and out_layout == "NHWC")
                    else values[n] for n in self.output_names]
            return outs[0] if len(outs) == 1 else tuple(outs)

    return Twin().eval()


def export_onnx(config: dict, weights, path, opset: int = 13, batch: int = 1,
                io_layout: str | None = None, dynamic_batch: bool = False, dynamic_size: bool = False) -> str:
    """Export the twin of ``config`` with ``weights`` (as for ``build_twin``) to an ONNX file at
    ``path``; returns the path.

    Uses PyTorch's TorchScript-based exporter (``dynamo=False``), which needs no package beyond
    torch and onnx and works offline. The graph's input is named after the input layer, its outputs
    after the config's outputs. ``dynamic_batch`` makes the batch axis symbolic, ``dynamic_size`` the
    input's height and width (the pads of "same" convolutions are then computed from them in the graph).
    """
    torch = _torch()
    config = _read_config(config)
    twin = build_twin(config, weights, io_layout=io_layout)
    (inp,) = [layer for layer in config["layers"] if layer["type"] == "input"]
    shape = tuple(inp["shape"])
    layout = io_layout or inp.get("layout", "NHWC")
    if len(shape) == 3 and layout == "NCHW":
        shape = (shape[2], shape[0], shape[1])
    example = torch.zeros((batch, *shape), dtype=torch.float32)
    names = list(config["outputs"])
    dynamic = None
    if dynamic_batch or dynamic_size:
        dynamic = {n: {0: "batch"} if dynamic_batch else {} for n in [inp["name"], *names]}
    if dynamic_size:
        h_axis = 2 if len(shape) == 3 and layout == "NCHW" else 1
        dynamic[inp["name"]].update({h_axis: "height", h_axis + 1: "width"})
    with torch.no_grad():
        torch.onnx.export(twin, (example,), str(path), input_names=[inp["name"]], output_names=names,
                          opset_version=opset, dynamo=False, dynamic_axes=dynamic,
                          do_constant_folding=True)
    return str(path)
