"""Naive NumPy reference for pyconv's convolutions and spatial resizing: the test oracle.

Written straight from the definitions in docs/architecture.md, independently of the package (it must
not import pyconv, so that a bug shared by the kernels and their Python wrappers cannot hide here).
Everything is computed in float64.

Layouts: activations NHWC; conv2d weights HWIO ``(KH, KW, C_in // groups, C_out)``; depthwise weights
``(KH, KW, C, M)`` with output channel ``c * M + m`` reading input channel ``c``; pointwise weights
``(C_in, C_out)``; dense weights ``(in_features, out_features)``.

Padding forms: ``"valid"``, ``"same"`` (TensorFlow), an int, ``(pad_h, pad_w)`` or
``((top, bottom), (left, right))``.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "activate",
    "prelu",
    "conv2d_ref",
    "conv2d_ref_loops",
    "dense_ref",
    "depthwise_conv2d_ref",
    "effective_kernel",
    "explicit_pads",
    "output_hw",
    "pointwise_conv2d_ref",
    "resize_ref",
    "separable_conv2d_ref",
]


def _pair(v, name):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v!r}")
    return int(v[0]), int(v[1])


def effective_kernel(k: int, dilation: int) -> int:
    """Extent of a dilated kernel: the taps sit at 0, d, ..., (k-1)*d."""
    return (k - 1) * dilation + 1


def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    # TensorFlow's rule, as stated in issue 2: out = ceil(in / stride), the total pad is whatever it
    # takes for the last window to fit, the odd extra pixel goes bottom/right.
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(k, dilation) - size, 0)
    return total // 2, total - total // 2


def explicit_pads(padding, in_hw, k_hw, stride=1, dilation=1) -> tuple[int, int, int, int]:
    """Any padding form -> ``(top, bottom, left, right)``."""
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            t, b = _same_pads(in_hw[0], k_hw[0], sh, dh)
            l, r = _same_pads(in_hw[1], k_hw[1], sw, dw)
            return t, b, l, r
        raise ValueError(f"unknown padding {padding!r}")
    if isinstance(padding, (int, np.integer)):
        p = int(padding)
        return p, p, p, p
    a, b = padding
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        return int(a), int(a), int(b), int(b)
    (t, bo), (l, r) = a, b
    return int(t), int(bo), int(l), int(r)


def output_hw(in_hw, k_hw, stride=1, padding="valid", dilation=1):
    """Output ``(OH, OW)``, or None when the (dilated) kernel does not fit in the padded input."""
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    t, b, l, r = explicit_pads(padding, in_hw, k_hw, stride, dilation)
    eh = effective_kernel(k_hw[0], dh)
    ew = effective_kernel(k_hw[1], dw)
    ph, pw = in_hw[0] + t + b, in_hw[1] + l + r
    if eh > ph or ew > pw:
        return None
    return (ph - eh) // sh + 1, (pw - ew) // sw + 1


def _sigmoid(y: np.ndarray) -> np.ndarray:
    # exp of a non-positive argument only: no overflow for any |y|; NaN stays NaN.
    e = np.exp(-np.abs(y))
    return np.where(y >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def activate(y: np.ndarray, activation):
    """``activation`` (None, a function name, or a mapping {"function": name, parameters}) of ``y``,
    in float64, straight from the definitions; NaN propagates, and -inf * 0 is NaN as in PyTorch."""
    if activation is None:
        return y
    params = dict(activation) if isinstance(activation, dict) else {"function": activation}
    fn = params.pop("function")
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if fn == "relu":
            return np.maximum(y, 0.0)
        if fn == "relu6":
            return np.minimum(np.maximum(y, 0.0), 6.0)
        if fn == "clip":
            lo, hi = params.get("min"), params.get("max")
            y = y if lo is None else np.maximum(y, lo)
            return y if hi is None else np.minimum(y, hi)
        if fn == "sigmoid":
            return _sigmoid(y)
        if fn == "hard_sigmoid":
            return np.clip(params.get("alpha", 0.2) * y + params.get("beta", 0.5), 0.0, 1.0)
        if fn == "hard_swish":
            return y * np.clip(y + 3.0, 0.0, 6.0) / 6.0
        if fn == "silu":
            return y * _sigmoid(y)
        if fn == "leaky_relu":
            return np.where(y >= 0, y, params.get("alpha", 0.01) * y)
        if fn == "tanh":
            return np.tanh(y)
        if fn == "gelu":
            # x * Phi(x) with Phi from erfc (no cancellation in the lower tail); PyTorch's gelu is NaN at
            # +inf, and so is pyconv's.
            phi = 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(-y / math.sqrt(2.0))
            return np.where(np.isposinf(y), np.nan, y * phi)
        if fn == "gelu_tanh":
            # 0.5 (1 + tanh(u)) is the logistic function of 2u: written so, it does not cancel for x < 0.
            u = math.sqrt(2.0 / math.pi) * (y + 0.044715 * y ** 3)
            return y / (1.0 + np.exp(-2.0 * u))
        if fn in ("elu", "selu"):
            alpha = params.get("alpha", 1.0 if fn == "elu" else 1.6732632423543772)
            scale = 1.0 if fn == "elu" else params.get("beta", 1.0507009873554805)
            return scale * np.where(y > 0, y, alpha * np.expm1(np.minimum(y, 0.0)))
        if fn == "softplus":
            return np.logaddexp(0.0, y)
        if fn == "mish":
            return y * np.tanh(np.logaddexp(0.0, y))
    raise ValueError(f"unknown activation {activation!r}")


def prelu(y: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``y`` where ``y >= 0``, else ``alpha * y`` (alpha broadcast against y)."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(y >= 0, y, np.asarray(alpha, dtype=np.float64) * y)


def _padded(x, pads):
    t, b, l, r = pads
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))


def _taps(x, k_hw, stride, padding, dilation):
    """``(oh, ow)`` and, for every tap ``(i, j)``, the strided slice of the padded input that each output
    pixel reads at that tap. Raises ValueError when the kernel does not fit in the padded input."""
    h, wd = x.shape[1:3]
    kh, kw = k_hw
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    ohw = output_hw((h, wd), k_hw, stride, padding, dilation)
    if ohw is None:
        raise ValueError("kernel larger than padded input")
    oh, ow = ohw
    xp = _padded(x, explicit_pads(padding, (h, wd), k_hw, stride, dilation))
    taps = ((i, j, xp[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw, :])
            for i in range(kh) for j in range(kw))
    return oh, ow, taps


def conv2d_ref(x, w, b=None, *, stride=1, padding="valid", dilation=1, groups=1, activation=None):
    """y[n, oh, ow, o] = act(b[o] + sum_{i, j, c} xpad[n, oh*sh + i*dh, ow*sw + j*dw, g*Cg + c]
                                                  * w[i, j, c, o])

    with ``g = o // (C_out // groups)`` and ``Cg = C_in // groups``. Raises ValueError when the kernel
    does not fit in the padded input.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n, h, wd, cin = x.shape
    kh, kw, cg, cout = w.shape
    assert cin % groups == 0 and cout % groups == 0 and cg == cin // groups, (x.shape, w.shape, groups)
    oh, ow, taps = _taps(x, (kh, kw), stride, padding, dilation)
    og = cout // groups
    y = np.zeros((n, oh, ow, cout))
    for i, j, patch in taps:
        for g in range(groups):
            y[..., g * og:(g + 1) * og] += patch[..., g * cg:(g + 1) * cg] @ w[i, j, :, g * og:(g + 1) * og]
    if b is not None:
        y += np.asarray(b, dtype=np.float64)
    return activate(y, activation)


def conv2d_ref_loops(x, w, b=None, *, stride=1, padding="valid", dilation=1, groups=1, activation=None):
    """The same definition with every index spelt out as a Python loop: used to check ``conv2d_ref``
    itself on tiny shapes (too slow for anything else)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n, h, wd, cin = x.shape
    kh, kw, cg, cout = w.shape
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    t, _, l, _ = explicit_pads(padding, (h, wd), (kh, kw), stride, dilation)
    oh, ow = output_hw((h, wd), (kh, kw), stride, padding, dilation)
    og = cout // groups
    y = np.zeros((n, oh, ow, cout))
    for bi in range(n):
        for p in range(oh):
            for q in range(ow):
                for o in range(cout):
                    g = o // og
                    acc = 0.0 if b is None else float(b[o])
                    for i in range(kh):
                        for j in range(kw):
                            r = p * sh + i * dh - t
                            s = q * sw + j * dw - l
                            if not (0 <= r < h and 0 <= s < wd):
                                continue
                            for c in range(cg):
                                acc += x[bi, r, s, g * cg + c] * w[i, j, c, o]
                    y[bi, p, q, o] = acc
    return activate(y, activation)


def depthwise_conv2d_ref(x, w, b=None, *, stride=1, padding="valid", dilation=1, activation=None):
    """Depthwise: output channel ``c * M + m`` is input channel ``c`` convolved with ``w[:, :, c, m]``.

    ``w`` is ``(KH, KW, C, M)``, or ``(KH, KW, C)`` for M = 1.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 3:
        w = w[..., None]
    n, h, wd, c = x.shape
    kh, kw, wc, m = w.shape
    assert wc == c, (x.shape, w.shape)
    oh, ow, taps = _taps(x, (kh, kw), stride, padding, dilation)
    y = np.zeros((n, oh, ow, c, m))
    for i, j, patch in taps:
        y += patch[..., :, None] * w[i, j]
    y = y.reshape(n, oh, ow, c * m)
    if b is not None:
        y += np.asarray(b, dtype=np.float64)
    return activate(y, activation)


def pointwise_conv2d_ref(x, w, b=None, *, activation=None):
    """1x1 convolution: ``y[n, h, w, o] = act(b[o] + sum_c x[n, h, w, c] * w[c, o])``."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    y = np.einsum("nhwc,co->nhwo", x, w)
    if b is not None:
        y += np.asarray(b, dtype=np.float64)
    return activate(y, activation)


def separable_conv2d_ref(x, w_depthwise, w_pointwise, b_depthwise=None, b_pointwise=None, *, stride=1,
                         padding="valid", dilation=1, depthwise_activation=None, activation=None):
    """Depthwise (with its own bias and activation) followed by pointwise."""
    mid = depthwise_conv2d_ref(x, w_depthwise, b_depthwise, stride=stride, padding=padding,
                               dilation=dilation, activation=depthwise_activation)
    return pointwise_conv2d_ref(mid, w_pointwise, b_pointwise, activation=activation)


def dense_ref(x, w, b=None, *, activation=None):
    """``y[n, o] = act(b[o] + sum_i x[n, i] * w[i, o])``."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    y = x @ w
    if b is not None:
        y += np.asarray(b, dtype=np.float64)
    return activate(y, activation)


def conv2d_param_count(k: int, c_in: int, c_out: int, groups: int = 1) -> int:
    """Weights of a K x K group convolution: K*K*(C_in/G)*(C_out/G)*G."""
    assert c_in % groups == 0 and c_out % groups == 0
    return k * k * (c_in // groups) * (c_out // groups) * groups


def same_output(size: int, stride: int) -> int:
    return math.ceil(size / stride)


def _source_coordinate(o: int, in_size: int, out_size: int, scale: float, transformation: str) -> float:
    """ONNX Resize's coordinate_transformation_mode: the input coordinate of output coordinate ``o``."""
    if transformation == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if transformation == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if out_size > 1 else 0.0
    if transformation == "align_corners":
        return o * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    if transformation == "asymmetric":
        return o / scale
    if transformation == "tf_half_pixel_for_nn":
        return (o + 0.5) / scale
    raise ValueError(f"unknown coordinate transformation {transformation!r}")


def _round(v: float, nearest_mode: str) -> int:
    if nearest_mode == "floor":
        return math.floor(v)
    if nearest_mode == "ceil":
        return math.ceil(v)
    if v - math.floor(v) == 0.5:
        return math.floor(v) if nearest_mode == "round_prefer_floor" else math.ceil(v)
    return math.floor(v + 0.5)


def resize_ref(x, size=None, scale=None, mode="nearest", transformation="half_pixel",
               nearest_mode="round_prefer_floor"):
    """ONNX ``Resize`` of the H and W axes of an NHWC batch, one output pixel at a time, in float64.

    ``size`` (oh, ow) or ``scale`` (sh, sw): the output is ``floor(in * scale)``; with ``size`` the scale is
    ``out / in``. ``mode`` "nearest" rounds the source coordinate by ``nearest_mode`` and clamps it into
    the input; "bilinear" ("linear" in ONNX) clamps the source coordinate into ``[0, in - 1]`` and
    interpolates between the two nearest inputs along each axis. An axis whose scale is 1 and size
    unchanged is copied as it is (ONNX Runtime's behaviour).
    """
    x = np.asarray(x, dtype=np.float64)
    n, h, w, c = x.shape
    if size is not None:
        oh, ow = size
        sh, sw = oh / h, ow / w
    else:
        sh, sw = (float(v) for v in scale)
        oh, ow = int(math.floor(h * sh)), int(math.floor(w * sw))

    def taps(o, in_size, out_size, s):
        """[(input index, weight), ...] that output coordinate ``o`` reads along one axis."""
        if s == 1 and in_size == out_size:
            return [(o, 1.0)]
        v = _source_coordinate(o, in_size, out_size, s, transformation)
        if mode == "nearest":
            return [(min(max(_round(v, nearest_mode), 0), in_size - 1), 1.0)]
        v = min(max(v, 0.0), in_size - 1.0)
        lo = int(math.floor(v))
        hi = min(lo + 1, in_size - 1)
        if hi == lo:
            return [(lo, 1.0)]
        return [(lo, hi - v), (hi, v - lo)]

    y = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            for yi, wy in taps(i, h, oh, sh):
                for xj, wx in taps(j, w, ow, sw):
                    y[:, i, j, :] += wy * wx * x[:, yi, xj, :]
    return y
