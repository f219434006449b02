"""Independent NumPy reference for pyconv model configs: shapes, parameter/MAC counts, and execution.

Written straight from docs/model-format.md and the conventions of docs/architecture.md, without
importing pyconv (nor tests/reference.py), so a misreading of the format shared by the graph runtime
and the kernels cannot hide here. Everything runs in float64, batched NHWC.

- ``infer_shapes(config)``: per-sample shape of every layer.
- ``count_params(config)`` / ``count_macs(config)``: totals as papers and Keras report them
  (BN counts gamma, beta, mean and variance; MACs count the multiplications of conv, depthwise,
  pointwise, separable and dense layers, nothing for BN, pools, activations, element-wise adds and
  multiplies, or bias adds).
- ``random_weights(config, seed)``: well-scaled weights of the right names and shapes, for running
  configs without the pyconv loader.
- ``run(config, weights, x, outputs=None)``: the graph's outputs (or any named layers).

Convolutions use im2col through ``np.lib.stride_tricks.sliding_window_view`` and one ``tensordot``
per group; no Python loop runs over pixels.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "count_macs",
    "count_params",
    "explicit_pads",
    "infer_shapes",
    "layer_params",
    "param_shapes",
    "random_weights",
    "run",
    "topological_order",
]

CONV_TYPES = ("conv2d", "depthwise_conv2d", "pointwise_conv2d", "separable_conv2d")


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    # TensorFlow: out = ceil(size / stride); the total pad makes the last window fit; the odd pixel
    # goes after (bottom/right).
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def explicit_pads(padding, in_hw, k_hw, stride=1, dilation=1) -> tuple[int, int, int, int]:
    """Any padding form of the format -> ``(top, bottom, left, right)``."""
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            return (*_same_pads(in_hw[0], k_hw[0], sh, dh), *_same_pads(in_hw[1], k_hw[1], sw, dw))
        raise ValueError(f"unknown padding {padding!r}")
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 4
    a, b = padding
    if isinstance(a, (int, np.integer)):
        return int(a), int(a), int(b), int(b)
    return int(a[0]), int(a[1]), int(b[0]), int(b[1])


def _conv_out(size: int, pad: int, k: int, stride: int, dilation: int) -> int:
    return (size + pad - (k - 1) * dilation - 1) // stride + 1


def _pool_geometry(layer: dict, in_hw) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """Explicit pads and output size of a pooling layer (ceil_mode as PyTorch defines it)."""
    kh, kw = _pair(layer["pool"])
    sh, sw = _pair(layer.get("stride", layer["pool"]))
    pads = explicit_pads(layer.get("padding", "valid"), in_hw, (kh, kw), (sh, sw))
    ceil = bool(layer.get("ceil_mode", False))
    out = []
    for size, k, s, before, after in ((in_hw[0], kh, sh, pads[0], pads[1]),
                                      (in_hw[1], kw, sw, pads[2], pads[3])):
        span = size + before + after - k
        o = (-(-span // s) if ceil else span // s) + 1
        # A window may not start in the bottom/right padding (PyTorch's ceil_mode rule).
        if ceil and (o - 1) * s >= size + before:
            o -= 1
        out.append(o)
    return pads, (out[0], out[1])


def topological_order(config: dict) -> list[dict]:
    """The config's layers ordered so that every layer follows its inputs."""
    by_name = {layer["name"]: layer for layer in config["layers"]}
    order: list[dict] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"cycle through layer {name!r}")
        state[name] = 1
        for dep in by_name[name].get("inputs", []):
            if dep not in by_name:
                raise ValueError(f"layer {name!r} reads unknown layer {dep!r}")
            visit(dep)
        state[name] = 2
        order.append(by_name[name])

    for layer in config["layers"]:
        visit(layer["name"])
    return order


def _layer_shape(layer: dict, ins: list[tuple]) -> tuple:
    t = layer["type"]
    if t == "input":
        return tuple(layer["shape"])
    x = ins[0]
    if t in ("conv2d", "depthwise_conv2d", "separable_conv2d"):
        kh, kw = _pair(layer["kernel"])
        sh, sw = _pair(layer.get("stride", 1))
        dh, dw = _pair(layer.get("dilation", 1))
        pt, pb, pl, pr = explicit_pads(layer.get("padding", "valid"), x[:2], (kh, kw), (sh, sw),
                                       (dh, dw))
        oh = _conv_out(x[0], pt + pb, kh, sh, dh)
        ow = _conv_out(x[1], pl + pr, kw, sw, dw)
        if oh < 1 or ow < 1:
            raise ValueError(f"layer {layer['name']!r}: kernel does not fit input {x}")
        if t == "depthwise_conv2d":
            return oh, ow, x[2] * layer.get("depth_multiplier", 1)
        groups = layer.get("groups", 1)
        if t == "conv2d" and (x[2] % groups or layer["filters"] % groups):
            raise ValueError(f"layer {layer['name']!r}: groups {groups} must divide channels")
        return oh, ow, layer["filters"]
    if t == "pointwise_conv2d":
        return x[0], x[1], layer["filters"]
    if t in ("max_pool", "avg_pool"):
        _, (oh, ow) = _pool_geometry(layer, x[:2])
        return oh, ow, x[2]
    if t == "global_avg_pool":
        return (x[2],)
    if t == "dense":
        return (layer["units"],)
    if t in ("add", "subtract", "multiply", "divide"):
        # numpy broadcasting of the per-sample shapes (raises ValueError when they do not broadcast)
        return tuple(np.broadcast_shapes(*ins))
    if t == "slice":
        axis = layer.get("axis", -1)
        axis = axis - 1 if axis > 0 else len(x) + axis
        n = len(range(x[axis])[layer.get("start", 0):layer.get("stop"):layer.get("step", 1)])
        return (*x[:axis], n, *x[axis + 1:])
    if t == "concat":
        if any(s[:-1] != x[:-1] for s in ins):
            raise ValueError(f"layer {layer['name']!r}: concat of shapes {ins}")
        return (*x[:-1], sum(s[-1] for s in ins))
    if t == "flatten":
        return (math.prod(x),)
    if t == "reshape":
        target = list(layer["shape"])
        if -1 in target:
            known = math.prod(d for d in target if d != -1)
            target[target.index(-1)] = math.prod(x) // known
        return tuple(target)
    if t in ("batch_norm", "activation", "prelu", "channel_shuffle", "softmax", "dropout"):
        return x
    raise ValueError(f"unknown layer type {t!r}")


def infer_shapes(config: dict) -> dict[str, tuple]:
    """Per-sample output shape (NHWC, no batch axis) of every layer."""
    shapes: dict[str, tuple] = {}
    for layer in topological_order(config):
        shapes[layer["name"]] = _layer_shape(layer, [shapes[i] for i in layer.get("inputs", [])])
    return shapes


def param_shapes(layer: dict, in_shape: tuple) -> dict[str, tuple]:
    """Weight names (without the ``<layer>/`` prefix) and shapes a layer reads."""
    t = layer["type"]
    bias = layer.get("use_bias", True)
    if t in ("conv2d", "depthwise_conv2d", "separable_conv2d"):
        kh, kw = _pair(layer["kernel"])
    c = in_shape[-1]
    if t == "conv2d":
        f = layer["filters"]
        p = {"kernel": (kh, kw, c // layer.get("groups", 1), f)}
    elif t == "depthwise_conv2d":
        m = layer.get("depth_multiplier", 1)
        f = c * m
        p = {"kernel": (kh, kw, c, m)}
    elif t == "pointwise_conv2d":
        f = layer["filters"]
        p = {"kernel": (c, f)}
    elif t == "separable_conv2d":
        f = layer["filters"]
        p = {"depthwise_kernel": (kh, kw, c, 1), "pointwise_kernel": (c, f)}
    elif t == "dense":
        f = layer["units"]
        p = {"kernel": (in_shape[0], f)}
    elif t == "batch_norm":
        return {k: (c,) for k in ("gamma", "beta", "mean", "variance")}
    elif t == "prelu":
        return {"alpha": tuple(layer.get("alpha_shape") or (in_shape[-1],))}
    else:
        return {}
    if bias:
        p["bias"] = (f,)
    return p


def layer_params(config: dict) -> dict[str, dict[str, tuple]]:
    """``{layer name: {param: shape}}`` for every layer that has weights."""
    shapes = infer_shapes(config)
    out = {}
    for layer in topological_order(config):
        if layer["type"] == "input":
            continue
        p = param_shapes(layer, shapes[layer["inputs"][0]])
        if p:
            out[layer["name"]] = p
    return out


BN_COUNTS = {"all": ("gamma", "beta", "mean", "variance"), "affine": ("gamma", "beta"), "none": ()}


def count_params(config: dict, bn: str = "all") -> int:
    """Number of weights. ``bn`` says which BN vectors count: ``"all"`` (Keras' total),
    ``"affine"`` (gamma and beta: Keras' trainable count, PyTorch's ``parameters()``), ``"none"``."""
    keep = BN_COUNTS[bn]
    return sum(math.prod(shape) for layer in layer_params(config).values()
               for p, shape in layer.items()
               if p in keep or p not in BN_COUNTS["all"])


def count_macs(config: dict) -> int:
    """Multiply-accumulates of one sample through the conv and dense layers."""
    shapes = infer_shapes(config)
    total = 0
    for layer in topological_order(config):
        t = layer["type"]
        if t == "input":
            continue
        x, y = shapes[layer["inputs"][0]], shapes[layer["name"]]
        if t == "conv2d":
            kh, kw = _pair(layer["kernel"])
            total += y[0] * y[1] * y[2] * kh * kw * (x[2] // layer.get("groups", 1))
        elif t == "depthwise_conv2d":
            kh, kw = _pair(layer["kernel"])
            total += y[0] * y[1] * y[2] * kh * kw
        elif t == "pointwise_conv2d":
            total += y[0] * y[1] * y[2] * x[2]
        elif t == "separable_conv2d":
            kh, kw = _pair(layer["kernel"])
            total += y[0] * y[1] * x[2] * (kh * kw + y[2])
        elif t == "dense":
            total += x[0] * y[0]
    return total


def random_weights(config: dict, seed: int = 0, calibrate: bool = False) -> dict[str, np.ndarray]:
    """Seeded float32 weights keyed ``<layer>/<param>``.

    Kernels are He-normal (std sqrt(2 / fan_in)); BN statistics are mild perturbations of identity,
    which lets activations drift by a constant factor per layer (in Xception's middle flow roughly
    3x per block). With ``calibrate`` every BN's mean and variance are instead measured on a seeded
    standard-normal input, as a trained network's would be, so activations stay near unit scale.
    """
    rng = np.random.default_rng(seed)
    types = {layer["name"]: layer["type"] for layer in config["layers"]}
    weights = {}
    for name, params in layer_params(config).items():
        for p, shape in params.items():
            if p in ("kernel", "depthwise_kernel", "pointwise_kernel"):
                # A depthwise tap sees one input channel, whatever the multiplier.
                if p == "depthwise_kernel" or types[name] == "depthwise_conv2d":
                    fan_in = shape[0] * shape[1]
                else:
                    fan_in = math.prod(shape[:-1])
                v = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
            elif p in ("bias", "beta", "mean"):
                v = rng.normal(0.0, 0.1, shape)
            else:
                v = rng.uniform(0.8, 1.2, shape)
            weights[f"{name}/{p}"] = v.astype(np.float32)
    if calibrate:
        (inp,) = [layer for layer in config["layers"] if layer["type"] == "input"]
        x = rng.standard_normal((2, *inp["shape"]))
        if inp.get("layout", "NHWC") == "NCHW" and x.ndim == 4:
            x = x.transpose(0, 3, 1, 2)
        run(config, weights, x, outputs=[], _calibrate=True)
    return weights


def _pad(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    t, b, l, r = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def _windows(x: np.ndarray, k_hw, stride, dilation, out_hw) -> np.ndarray:
    """``(N, OH, OW, C, KH, KW)`` view of the padded input's receptive fields."""
    kh, kw = k_hw
    sh, sw = stride
    dh, dw = dilation
    w = sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    return w[:, ::sh, ::sw, :, ::dh, ::dw][:, :out_hw[0], :out_hw[1]]




def activate(x: np.ndarray, fn) -> np.ndarray:
    """An activation as configs spell it: null, a function name, or {"function": name, parameters}."""
    if fn is None:
        return x
    p = dict(fn) if isinstance(fn, dict) else {"function": fn}
    name = p["function"]
    with np.errstate(invalid="ignore", over="ignore"):
        sig = 0.5 * (1.0 + np.tanh(0.5 * x))  # the logistic function, overflow-free
        table = {
            "relu": lambda: np.maximum(x, 0.0),
            "relu6": lambda: np.clip(x, 0.0, 6.0),
            "clip": lambda: np.clip(x, -np.inf if p.get("min") is None else p["min"],
                                    np.inf if p.get("max") is None else p["max"]),
            "sigmoid": lambda: sig,
            "hard_sigmoid": lambda: np.clip(p.get("alpha", 0.2) * x + p.get("beta", 0.5), 0.0, 1.0),
            "hard_swish": lambda: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
            "silu": lambda: x * sig,
            "leaky_relu": lambda: np.where(x < 0, p.get("alpha", 0.01) * x, x),
            "tanh": lambda: np.tanh(x),
            "gelu": lambda: x * 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(-x / math.sqrt(2.0)),
            "gelu_tanh": lambda: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3))),
            "elu": lambda: np.where(x > 0, x, p.get("alpha", 1.0) * np.expm1(np.minimum(x, 0.0))),
            "selu": lambda: p.get("beta", 1.0507009873554805) * np.where(
                x > 0, x, p.get("alpha", 1.6732632423543772) * np.expm1(np.minimum(x, 0.0))),
            "softplus": lambda: np.logaddexp(0.0, x),
            "mish": lambda: x * np.tanh(np.logaddexp(0.0, x)),
        }
        if name not in table:
            raise ValueError(f"unknown activation {fn!r}")
        return table[name]()


def prelu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.where(x < 0, alpha * x, x)


def _conv2d(x, w, layer, out_hw, groups=1):
    kh, kw = w.shape[:2]
    stride = _pair(layer.get("stride", 1))
    dilation = _pair(layer.get("dilation", 1))
    pads = explicit_pads(layer.get("padding", "valid"), x.shape[1:3], (kh, kw), stride, dilation)
    win = _windows(_pad(x, pads), (kh, kw), stride, dilation, out_hw)
    cg, fg = w.shape[2], w.shape[3] // groups
    parts = []
    for g in range(groups):
        wg = w[:, :, :, g * fg:(g + 1) * fg]
        parts.append(np.tensordot(win[:, :, :, g * cg:(g + 1) * cg], wg, axes=([3, 4, 5], [2, 0, 1])))
    return np.concatenate(parts, axis=-1) if groups > 1 else parts[0]


def _depthwise(x, w, layer, out_hw):
    kh, kw, c, m = w.shape
    stride = _pair(layer.get("stride", 1))
    dilation = _pair(layer.get("dilation", 1))
    pads = explicit_pads(layer.get("padding", "valid"), x.shape[1:3], (kh, kw), stride, dilation)
    win = _windows(_pad(x, pads), (kh, kw), stride, dilation, out_hw)
    y = np.einsum("nhwcij,ijcm->nhwcm", win, w)
    # Output channel c * M + m reads input channel c.
    return y.reshape(*y.shape[:3], c * m)


def _pool(x, layer, out_hw, kind):
    k = _pair(layer["pool"])
    stride = _pair(layer.get("stride", layer["pool"]))
    pads, _ = _pool_geometry(layer, x.shape[1:3])
    t, b, l, r = pads
    # ceil_mode may need windows reaching past the explicit bottom/right pad.
    extra_h = max((out_hw[0] - 1) * stride[0] + k[0] - (x.shape[1] + t + b), 0)
    extra_w = max((out_hw[1] - 1) * stride[1] + k[1] - (x.shape[2] + l + r), 0)
    full = (t, b + extra_h, l, r + extra_w)
    if kind == "max":
        return _windows(_pad(x, full, -np.inf), k, stride, (1, 1), out_hw).max(axis=(4, 5))
    total = _windows(_pad(x, full), k, stride, (1, 1), out_hw).sum(axis=(4, 5))
    ones = np.ones((1, *x.shape[1:3], 1))
    if layer.get("count_include_pad", False):
        # The explicit pads count, the ceil_mode extension does not.
        ones = _pad(ones, pads, 1.0)
        count = _windows(_pad(ones, (0, extra_h, 0, extra_w)), k, stride, (1, 1), out_hw)
    else:
        count = _windows(_pad(ones, full), k, stride, (1, 1), out_hw)
    return total / count.sum(axis=(4, 5))


def _eval(layer: dict, ins: list[np.ndarray], weights, out_shape) -> np.ndarray:
    t = layer["type"]
    name = layer["name"]

    def w(p):
        return np.asarray(weights[f"{name}/{p}"], dtype=np.float64)

    x = ins[0]
    bias_act = True
    if t == "conv2d":
        y = _conv2d(x, w("kernel"), layer, out_shape[:2], layer.get("groups", 1))
    elif t == "depthwise_conv2d":
        k = w("kernel")
        y = _depthwise(x, k if k.ndim == 4 else k[..., None], layer, out_shape[:2])
    elif t == "pointwise_conv2d":
        y = np.tensordot(x, w("kernel"), axes=([3], [0]))
    elif t == "separable_conv2d":
        d = _depthwise(x, w("depthwise_kernel"), layer, out_shape[:2])
        y = np.tensordot(d, w("pointwise_kernel"), axes=([3], [0]))
    elif t == "dense":
        if x.ndim != 2:
            raise ValueError(f"layer {name!r}: dense needs a flat input, got {x.shape[1:]}")
        y = x @ w("kernel")
    else:
        bias_act = False
    if bias_act:
        if layer.get("use_bias", True):
            y = y + w("bias")
        return activate(y, layer.get("activation"))
    if t == "batch_norm":
        eps = layer.get("epsilon", 1e-3)
        return activate((x - w("mean")) / np.sqrt(w("variance") + eps) * w("gamma") + w("beta"),
                        layer.get("activation"))
    if t == "activation":
        return activate(x, {k: v for k, v in layer.items()
                            if k in ("function", "alpha", "beta", "min", "max") and v is not None})
    if t == "prelu":
        return prelu(x, w("alpha"))
    if t in ("max_pool", "avg_pool"):
        return _pool(x, layer, out_shape[:2], t[:3])
    if t == "global_avg_pool":
        return x.mean(axis=(1, 2))
    if t in ("add", "subtract", "multiply", "divide"):
        # Per-sample shapes broadcast right-aligned: align them before the batch axis.
        rank = max(v.ndim for v in ins)
        ins = [v.reshape(v.shape[0], *(1,) * (rank - v.ndim), *v.shape[1:]) for v in ins]
        fn = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide}[t]
        y = ins[0]
        for v in ins[1:]:
            y = fn(y, v)
        return activate(y, layer.get("activation"))
    if t == "slice":
        axis = layer.get("axis", -1)
        index = [slice(None)] * x.ndim
        index[axis] = slice(layer.get("start", 0), layer.get("stop"), layer.get("step", 1))
        return x[tuple(index)]
    if t == "concat":
        return np.concatenate(ins, axis=-1)
    if t == "channel_shuffle":
        g = layer["groups"]
        n, h, wd, c = x.shape
        return x.reshape(n, h, wd, g, c // g).transpose(0, 1, 2, 4, 3).reshape(n, h, wd, c)
    if t == "flatten":
        if x.ndim == 4 and layer.get("order", "NHWC") == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return x.reshape(x.shape[0], -1)
    if t == "reshape":
        return x.reshape(x.shape[0], *out_shape)
    if t == "softmax":
        # The axis indexes the batched NHWC tensor (pyconv.graph's reading; 0, the batch, is invalid).
        axis = layer.get("axis", -1)
        if axis == 0 or not -x.ndim < axis < x.ndim:
            raise ValueError(f"layer {name!r}: softmax axis {axis} of a batched {x.ndim}-D tensor")
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    if t == "dropout":
        return x
    raise ValueError(f"unknown layer type {t!r}")


def run(config: dict, weights, x: np.ndarray, outputs: list[str] | None = None,
        _calibrate: bool = False) -> list[np.ndarray]:
    """Run the graph on a batch ``x`` (in the input layer's layout; a dict by input name for several
    inputs) and return float64 outputs.

    ``weights`` maps ``<layer>/<param>`` to arrays (a dict or an ``np.load``-ed npz). ``outputs``
    defaults to the config's; 4-D outputs follow ``output_layout``. Intermediate results are freed
    as soon as no later layer reads them. ``_calibrate`` (for ``random_weights``) overwrites each
    BN's mean and variance in ``weights`` with the statistics of the BN's actual input.
    """
    wanted = list(outputs if outputs is not None else config["outputs"])
    order = topological_order(config)
    shapes = infer_shapes(config)
    last_use = {}
    for i, layer in enumerate(order):
        for dep in layer.get("inputs", []):
            last_use[dep] = i
    values: dict[str, np.ndarray] = {}
    for i, layer in enumerate(order):
        name = layer["name"]
        if layer["type"] == "input":
            v = np.asarray(x[name] if isinstance(x, dict) else x, dtype=np.float64)
            if layer.get("layout", "NHWC") == "NCHW" and v.ndim == 4:
                v = v.transpose(0, 2, 3, 1)
            if v.shape[1:] != tuple(layer["shape"]):
                raise ValueError(f"input {name!r}: expected per-sample shape {layer['shape']}, "
                                 f"got {v.shape[1:]}")
        else:
            ins = [values[d] for d in layer["inputs"]]
            if _calibrate and layer["type"] == "batch_norm":
                axes = tuple(range(ins[0].ndim - 1))
                weights[f"{name}/mean"] = ins[0].mean(axis=axes).astype(np.float32)
                weights[f"{name}/variance"] = ins[0].var(axis=axes).astype(np.float32)
            v = _eval(layer, ins, weights, shapes[name])
        values[name] = v
        for dep in layer.get("inputs", []):
            if last_use[dep] == i and dep not in wanted:
                del values[dep]
    result = []
    for name in wanted:
        v = values[name]
        if v.ndim == 4 and config.get("output_layout", "NHWC") == "NCHW":
            v = v.transpose(0, 3, 1, 2)
        result.append(v)
    return result
