"""NaN and +-inf through every activation, pooling and elementwise path, at every instruction-set level
this CPU runs, against PyTorch's semantics (NaN propagates; inf follows the formula as PyTorch evaluates
it, so that gelu(+inf) and silu(-inf) are NaN there and here).

Every activation in ``pyconv.activations.FUNCTIONS`` is checked standalone (``ops.activation``) against
PyTorch on the special values themselves, and fused into each kernel that fuses one (the GEMM
convolutions, Winograd, narrow and wide groups, depthwise, both steps of separable, dense, a residual
add in the store, the NCHW first layer, pooling, add and scale_shift): the fused result must be
PyTorch's function of the same kernel's output without activation, on inputs holding NaN and +-inf.
Max and average pooling are compared with PyTorch's, add/subtract/multiply/divide with numpy, concat
bit for bit.
"""
from __future__ import annotations

import numpy as np
import pytest

import pyconv
from pyconv import ops
from pyconv.activations import FUNCTIONS

from conftest import LEVELS, rng_for, run_at_level

torch = pytest.importorskip("torch")
F = torch.nn.functional

# Each function with its default parameters as PyTorch computes it (clip with both bounds).
TORCH = {
    "relu": F.relu, "relu6": F.relu6, "clip": lambda t: torch.clamp(t, -0.5, 2.0), "sigmoid": torch.sigmoid,
    "hard_sigmoid": lambda t: torch.clamp(t * 0.2 + 0.5, 0.0, 1.0), "hard_swish": F.hardswish, "silu": F.silu,
    "leaky_relu": F.leaky_relu, "tanh": torch.tanh, "gelu": F.gelu,
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "elu": F.elu, "selu": F.selu, "softplus": F.softplus,
    "mish": F.mish,
}
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -1.5, 20.0, -20.0], np.float32)


def activation(name: str):
    return {"function": "clip", "min": -0.5, "max": 2.0} if name == "clip" else name


def with_specials(rng: np.random.Generator, *shape, share: float = 1 / 6) -> np.ndarray:
    """Uniform values in [-2, 2] with ``share`` of them NaN, +inf or -inf."""
    x = rng.uniform(-2, 2, shape).astype(np.float32)
    flat = x.reshape(-1)
    where = rng.choice(flat.size, size=max(3, int(flat.size * share)), replace=False)
    flat[where] = rng.choice(np.array([np.nan, np.inf, -np.inf], np.float32), size=where.size)
    return x


def assert_same(got: np.ndarray, want: np.ndarray, what: str, rtol: float = 1e-4) -> None:
    """NaN exactly where ``want`` has NaN, infinities exact, the rest to ``rtol``."""
    assert got.shape == want.shape, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"NaN positions: {what}")
    keep = ~np.isnan(want)
    np.testing.assert_array_equal(np.isinf(got[keep]), np.isinf(want[keep]), err_msg=f"inf positions: {what}")
    np.testing.assert_allclose(got[keep], want[keep], rtol=rtol, atol=1e-5, err_msg=what)


@pytest.fixture(params=LEVELS)
def at_level(request):
    run_at_level(request, request.param)
    return request.param


def test_every_activation_standalone_as_in_pytorch(at_level):
    x = np.tile(SPECIAL, 7)  # an odd length: every level's vector loop has a remainder
    for name in FUNCTIONS:
        want = TORCH[name](torch.from_numpy(x)).numpy()
        assert_same(ops.activation(x, activation(name)), want, f"{name} at {at_level}", rtol=2e-6)
        assert_same(ops.activation(x.reshape(1, 3, 3, 7), activation(name)), want.reshape(1, 3, 3, 7), name,
                    rtol=2e-6)


def _fusing_calls(rng: np.random.Generator) -> dict:
    """Every kernel path that fuses an activation, as ``call(activation)`` on inputs with NaN and inf (few
    enough that most outputs of a 3x3x16 window stay finite)."""
    x = with_specials(rng, 2, 7, 9, 16, share=1 / 150)
    xd = with_specials(rng, 2, 7, 9, 16)  # denser, for the kernels without windows over channels
    x3 = np.ascontiguousarray(with_specials(rng, 2, 7, 9, 3, share=1 / 60).transpose(0, 3, 1, 2))
    residual = with_specials(rng, 2, 7, 9, 24)
    w = rng.uniform(-1, 1, (3, 3, 16, 24)).astype(np.float32)
    gate = with_specials(rng, 2, 1, 1, 16)
    return {
        "direct": lambda a: pyconv.conv2d(x, w, padding="same", strategy="direct", activation=a),
        "im2col": lambda a: pyconv.conv2d(x, w, padding="same", strategy="im2col", activation=a),
        "winograd": lambda a: pyconv.conv2d(x, w, padding="same", strategy="winograd", activation=a),
        "narrow-groups": lambda a: pyconv.conv2d(x, w[:, :, :2, :16], padding="same", groups=8, activation=a),
        "groups": lambda a: pyconv.conv2d(x, w[:, :, :8], padding="same", groups=2, activation=a),
        "residual": lambda a: pyconv.Conv2D(w, padding="same", activation=a)(x, residual=residual),
        "nchw-input": lambda a: pyconv.Conv2D(w[:, :, :3], padding="same", activation=a)._bind_nchw(x3)(1),
        "pointwise": lambda a: pyconv.pointwise_conv2d(x, w[1, 1], activation=a),
        "depthwise": lambda a: pyconv.depthwise_conv2d(x, w[:, :, :, :1], padding="same", activation=a),
        "separable": lambda a: pyconv.separable_conv2d(x, w[:, :, :, :1], w[0, 0], padding="same", activation=a),
        "dense": lambda a: pyconv.dense(x.reshape(-1, 16), w[0, 0], activation=a),
        "max_pool": lambda a: ops.max_pool2d(xd, 3, 2, padding="same", activation=a),
        "avg_pool": lambda a: ops.avg_pool2d(xd, 3, 2, padding="same", activation=a),
        "add": lambda a: ops.add(xd, xd[:, ::-1].copy(), activation=a),
        "multiply-gate": lambda a: ops.multiply(xd, gate, activation=a),
        "scale_shift": lambda a: ops.scale_shift(xd, np.linspace(-2, 2, 16), 0.5, activation=a),
    }


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_activation_fused_into_every_kernel_as_in_pytorch(at_level, name):
    for path, call in _fusing_calls(rng_for("nonfinite", name)).items():
        plain = call(None)
        assert np.isfinite(plain).any() and not np.isfinite(plain).all(), path
        want = TORCH[name](torch.from_numpy(plain)).numpy()
        assert_same(call(activation(name)), want, f"{name} fused into {path} at {at_level}")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_activation_between_the_separable_steps_as_in_pytorch(at_level, name):
    """The depthwise step's activation: the fused kernel against PyTorch's function of the depthwise
    output, then the pointwise convolution on its own."""
    rng = rng_for("nonfinite-separable", name)
    x = with_specials(rng, 2, 7, 9, 16, share=1 / 60)
    wd, wp = rng.uniform(-1, 1, (3, 3, 16)).astype(np.float32), rng.uniform(-1, 1, (16, 20)).astype(np.float32)
    between = TORCH[name](torch.from_numpy(pyconv.depthwise_conv2d(x, wd, padding="same"))).numpy()
    assert_same(pyconv.separable_conv2d(x, wd, wp, padding="same", depthwise_activation=activation(name)),
                pyconv.pointwise_conv2d(between, wp), f"{name} between the separable steps at {at_level}")


@pytest.mark.parametrize("channels", [3, 16, 70])
def test_pooling_as_in_pytorch(at_level, channels):
    x = with_specials(rng_for("nonfinite-pool", channels), 2, 9, 11, channels)
    t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

    def nhwc(y):
        return y.numpy().transpose(0, 2, 3, 1)

    for kernel, stride, pad in [(3, 2, 1), (2, 2, 0), (3, 1, 1)]:
        what = f"{kernel}x{kernel}/{stride} pad {pad} at {at_level}"
        assert_same(ops.max_pool2d(x, kernel, stride, padding=pad), nhwc(F.max_pool2d(t, kernel, stride, pad)),
                    f"max pool {what}")
        assert_same(ops.avg_pool2d(x, kernel, stride, padding=pad, count_include_pad=True),
                    nhwc(F.avg_pool2d(t, kernel, stride, pad)), f"avg pool {what}")
    with np.errstate(invalid="ignore"):
        assert_same(ops.global_avg_pool2d(x), x.astype(np.float64).mean(axis=(1, 2)).astype(np.float32),
                    "global average pool")


def test_elementwise_and_concat_as_in_numpy(at_level):
    rng = rng_for("nonfinite-eltwise")
    a, b = with_specials(rng, 2, 5, 6, 19), with_specials(rng, 2, 5, 6, 19)
    with np.errstate(invalid="ignore", divide="ignore"):
        for op, want in [(ops.add, a + b), (ops.subtract, a - b), (ops.multiply, a * b), (ops.divide, a / b)]:
            assert_same(op(a, b), want, f"{op.__name__} at {at_level}", rtol=1e-6)
        assert_same(ops.add(a, b[:, :1, :1]), a + b[:, :1, :1], "add broadcast", rtol=1e-6)
    np.testing.assert_array_equal(ops.concat([a, b]), np.concatenate([a, b], axis=-1))
    assert_same(ops.softmax(a), F.softmax(torch.from_numpy(a), -1).numpy(), "softmax")
