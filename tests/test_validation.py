"""Argument handling at the API boundary of the convolution functions and operators.

Covers: conversion (float64, float16, integer weights, lists, non-contiguous, transposed, Fortran-order, byte-swapped and
read-only inputs and weights give the right float32 answer, and the caller's arrays are never written);
rejections with TypeError (strings, object and complex arrays, None, integer and bool data) and with ValueError whose message
names the argument and shows the shapes (rank, groups, weight/input channel mismatch, kernel larger
than the padded input, stride/dilation, padding, activation, bias length); NaN propagation; zero-size
batches.
"""
import re

import numpy as np
import pytest

import pyconv
from conftest import assert_close, rand, rng_for
from reference import (conv2d_ref, dense_ref, depthwise_conv2d_ref, pointwise_conv2d_ref,
                       separable_conv2d_ref)

RNG = rng_for("validation")
X = rand(RNG, 2, 9, 8, 6)
W = rand(RNG, 3, 3, 6, 5)
B = rand(RNG, 5)
WD = rand(RNG, 3, 3, 6, 2)
WP = rand(RNG, 6, 7)


def _all_apis(x, w=W, b=None, **kw):
    """Every convolution entry point on the same input, with its reference."""
    return {
        "conv2d": (lambda: pyconv.conv2d(x, w, b, padding="same", **kw),
                   lambda: conv2d_ref(x, w, b, padding="same")),
        "Conv2D": (lambda: pyconv.Conv2D(w, b, padding="same", **kw)(x),
                   lambda: conv2d_ref(x, w, b, padding="same")),
        "depthwise_conv2d": (lambda: pyconv.depthwise_conv2d(x, WD, padding="same"),
                             lambda: depthwise_conv2d_ref(x, WD, padding="same")),
        "pointwise_conv2d": (lambda: pyconv.pointwise_conv2d(x, WP),
                             lambda: pointwise_conv2d_ref(x, WP)),
        "separable_conv2d": (lambda: pyconv.separable_conv2d(x, WD, rand(rng_for("sep"), 12, 4), stride=2),
                             lambda: separable_conv2d_ref(x, WD, rand(rng_for("sep"), 12, 4), stride=2)),
    }


# ---- conversion -----------------------------------------------------------------------------------

def _fortran(a):
    return np.asfortranarray(a)


def _strided(a):
    # Same values, every other element of a twice-as-wide buffer along W.
    big = np.zeros(a.shape[:2] + (2 * a.shape[2],) + a.shape[3:], a.dtype)
    big[:, :, ::2] = a
    return big[:, :, ::2]


def _transposed(a):
    # Same values, stored H-W swapped and viewed back.
    return np.ascontiguousarray(a.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)


def _byteswapped(a):
    return a.astype(a.dtype.newbyteorder(">"))


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _misaligned(a):
    # Float32 data starting one byte into a buffer: C-contiguous and float32, yet not 4-byte aligned.
    a = np.ascontiguousarray(a, np.float32)
    out = np.frombuffer(bytearray(a.nbytes + 1), dtype=np.float32, offset=1, count=a.size).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


CONVERSIONS = {
    "float64": lambda a: a.astype(np.float64),
    "fortran": _fortran,
    "strided": _strided,
    "transposed": _transposed,
    "big-endian": _byteswapped,
    "read-only": _readonly,
    "negative-strides": lambda a: a[:, ::-1, ::-1].copy()[:, ::-1, ::-1],
    "misaligned": _misaligned,
}


@pytest.mark.parametrize("convert", CONVERSIONS.values(), ids=CONVERSIONS.keys())
@pytest.mark.parametrize("api", list(_all_apis(X)))
def test_inputs_are_converted(api, convert):
    x = convert(X)
    before = np.array(x, copy=True)
    run, ref = _all_apis(x, b=B)[api]
    y = run()
    assert y.dtype == np.float32 and y.flags.c_contiguous
    assert_close(y, ref())
    # The float32 conversion is the only difference from a plain contiguous float32 call.
    run32, _ = _all_apis(np.ascontiguousarray(X, np.float32), b=B)[api]
    np.testing.assert_array_equal(y, run32())
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("convert", [CONVERSIONS[k] for k in ["float64", "fortran", "strided", "transposed"]],
                         ids=["float64", "fortran", "strided", "transposed"])
def test_weights_and_bias_are_converted(convert):
    w = convert(W)
    b = B.astype(np.float64)[::-1].copy()[::-1]
    y = pyconv.conv2d(X, w, b, padding="same")
    assert_close(y, conv2d_ref(X, W, B, padding="same"))
    yd = pyconv.depthwise_conv2d(X, convert(WD), padding="same")
    assert_close(yd, depthwise_conv2d_ref(X, WD, padding="same"))


def test_integer_weights_and_float_lists_are_converted():
    xi = np.arange(2 * 5 * 4 * 3).reshape(2, 5, 4, 3) % 7 - 3
    wi = np.arange(2 * 2 * 3 * 2).reshape(2, 2, 3, 2) % 5 - 2
    xf = xi.astype(np.float64)
    ref = conv2d_ref(xi, wi, [1, -1])
    assert_close(pyconv.conv2d(xf, wi, [1, -1]), ref)
    assert_close(pyconv.conv2d(xf.tolist(), wi.tolist(), [1.0, -1.0]), ref)
    assert_close(pyconv.conv2d(xf.astype(np.float16), wi.astype(np.int8)), conv2d_ref(xi, wi))
    assert_close(pyconv.pointwise_conv2d(xf.tolist(), [[1, 0], [0, 1], [1, 1]]),
                 pointwise_conv2d_ref(xi, np.array([[1, 0], [0, 1], [1, 1]])))
    assert_close(pyconv.dense([[1.0, 2.0, 3.0]], [[1], [2], [3]]), dense_ref([[1, 2, 3]], [[1], [2], [3]]))


_PIXELS = (np.arange(2 * 9 * 8 * 6) % 256).reshape(2, 9, 8, 6)


def _data_calls():
    """Every entry point that takes data (an image or feature map), called with ``x``."""
    return {
        "conv2d": lambda x: pyconv.conv2d(x, W),
        "Conv2D": lambda x: pyconv.Conv2D(W)(x),
        "Conv2D-residual": lambda x: pyconv.Conv2D(W, padding="same")(X, residual=x[..., :5]),
        "depthwise_conv2d": lambda x: pyconv.depthwise_conv2d(x, WD),
        "pointwise_conv2d": lambda x: pyconv.pointwise_conv2d(x, WP),
        "separable_conv2d": lambda x: pyconv.separable_conv2d(x, WD, rand(RNG, 12, 4)),
        "dense": lambda x: pyconv.dense(x.reshape(-1, 6), WP),
        "add": lambda x: pyconv.ops.add(X, x),
        "multiply-left": lambda x: pyconv.ops.multiply(x, X),
        "max_pool2d": lambda x: pyconv.ops.max_pool2d(x, 2),
        "avg_pool2d": lambda x: pyconv.ops.avg_pool2d(x, 2),
        "global_avg_pool2d": lambda x: pyconv.ops.global_avg_pool2d(x),
        "concat": lambda x: pyconv.ops.concat([X, x]),
        "activation": lambda x: pyconv.ops.activation(x, "relu"),
        "softmax": lambda x: pyconv.ops.softmax(x),
        "nchw_to_nhwc": lambda x: pyconv.ops.nchw_to_nhwc(x),
    }


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.int64, np.bool_], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("api", _data_calls())
def test_integer_and_bool_data_are_refused(api, dtype):
    """An 8-bit image read as floats 0..255 would give plausible nonsense: integer and bool data are a
    TypeError naming the dtype and the conversion."""
    x = (_PIXELS % 2 if dtype == np.bool_ else _PIXELS % 100).astype(dtype)
    with pytest.raises(TypeError, match=rf"expected float32 .*found {np.dtype(dtype).name}: convert with "
                                        r"x\.astype\(np\.float32\) / 255"):
        _data_calls()[api](x)
    _data_calls()[api](x.astype(np.float16))  # converted


def test_lists_of_ints_as_data_are_refused():
    with pytest.raises(TypeError, match="found int64"):
        pyconv.conv2d((_PIXELS % 100).tolist(), W)


def test_broadcast_view_input():
    # Zero strides: a read-only view where every pixel aliases the same memory.
    x = np.broadcast_to(np.linspace(-1, 1, 6, dtype=np.float32), (2, 9, 8, 6))
    assert_close(pyconv.conv2d(x, W, padding="same"), conv2d_ref(x, W, padding="same"))
    assert_close(pyconv.depthwise_conv2d(x, WD), depthwise_conv2d_ref(x, WD))


# ---- type errors ----------------------------------------------------------------------------------

BAD_TYPES = {
    "string": "not an array",
    "bytes": b"\x00" * 16,
    "object-array": np.empty((2, 9, 8, 6), dtype=object),
    "complex": X.astype(np.complex64),
    "none": None,
    "string-array": np.full((2, 9, 8, 6), "a"),
}


@pytest.mark.parametrize("bad", BAD_TYPES.values(), ids=BAD_TYPES.keys())
@pytest.mark.parametrize("api", ["conv2d", "Conv2D", "depthwise_conv2d", "pointwise_conv2d",
                                 "separable_conv2d", "dense"])
def test_bad_input_types_raise_type_error(api, bad):
    with pytest.raises(TypeError, match=r"\bx\b"):
        if api == "conv2d":
            pyconv.conv2d(bad, W)
        elif api == "Conv2D":
            pyconv.Conv2D(W)(bad)
        elif api == "depthwise_conv2d":
            pyconv.depthwise_conv2d(bad, WD)
        elif api == "pointwise_conv2d":
            pyconv.pointwise_conv2d(bad, WP)
        elif api == "separable_conv2d":
            pyconv.separable_conv2d(bad, WD, rand(RNG, 12, 4))
        else:
            pyconv.dense(bad, WP)


@pytest.mark.parametrize("bad", [BAD_TYPES[k] for k in ["string", "object-array", "complex", "none"]],
                         ids=["string", "object-array", "complex", "none"])
def test_bad_weight_types_raise_type_error(bad):
    if isinstance(bad, np.ndarray):
        bad = np.resize(bad, W.shape)
    with pytest.raises(TypeError, match=r"\bw\b"):
        pyconv.Conv2D(bad)
    with pytest.raises(TypeError, match=r"\bw"):
        pyconv.DepthwiseConv2D(bad)
    with pytest.raises(TypeError, match=r"\bw\b"):
        pyconv.Dense(bad)


@pytest.mark.parametrize("bad", ["abc", B.astype(np.complex64), np.array([object()] * 5)],
                         ids=["string", "complex", "object"])
def test_bad_bias_types_raise_type_error(bad):
    with pytest.raises(TypeError, match=r"\bb\b"):
        pyconv.Conv2D(W, bad)


# ---- value errors that name the argument ----------------------------------------------------------

def _msg(excinfo):
    return str(excinfo.value)


@pytest.mark.parametrize("shape", [(9, 8, 6), (1, 2, 9, 8, 6), (6,), ()], ids=["3d", "5d", "1d", "0d"])
def test_wrong_input_rank(shape):
    x = np.zeros(shape, np.float32)
    for call in [lambda: pyconv.conv2d(x, W), lambda: pyconv.Conv2D(W)(x),
                 lambda: pyconv.depthwise_conv2d(x, WD), lambda: pyconv.pointwise_conv2d(x, WP)]:
        with pytest.raises(ValueError, match=r"\bx\b") as e:
            call()
        assert str(shape) in _msg(e), _msg(e)


@pytest.mark.parametrize("shape", [(3, 3, 6), (3, 3, 6, 5, 1), (6, 5)], ids=["3d", "5d", "2d"])
def test_wrong_conv_weight_rank(shape):
    with pytest.raises(ValueError, match=r"\bw\b") as e:
        pyconv.Conv2D(np.zeros(shape, np.float32))
    assert str(shape) in _msg(e)


@pytest.mark.parametrize("shape", [(3, 3), (3, 3, 6, 1, 1)], ids=["2d", "5d"])
def test_wrong_depthwise_weight_rank(shape):
    with pytest.raises(ValueError, match=r"\bw\b"):
        pyconv.DepthwiseConv2D(np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape", [(6,), (1, 1, 6, 7)], ids=["1d", "4d"])
def test_wrong_pointwise_and_dense_weight_rank(shape):
    with pytest.raises(ValueError, match=r"\bw\b"):
        pyconv.Dense(np.zeros(shape, np.float32))
    if len(shape) == 1:
        with pytest.raises(ValueError, match=r"\bw\b"):
            pyconv.PointwiseConv2D(np.zeros(shape, np.float32))


def test_input_channels_must_match_weights():
    x = rand(RNG, 1, 5, 5, 4)
    xd = rand(RNG, 2, 4)
    cases = [(lambda: pyconv.conv2d(x, W), x, W), (lambda: pyconv.Conv2D(W)(x), x, W),
             (lambda: pyconv.depthwise_conv2d(x, WD), x, WD), (lambda: pyconv.pointwise_conv2d(x, WP), x, WP),
             (lambda: pyconv.separable_conv2d(x, WD, rand(RNG, 12, 3)), x, WD),
             (lambda: pyconv.Conv2D(W).output_shape(x.shape), x, W),
             (lambda: pyconv.dense(xd, WP), xd, WP)]
    for call, xi, wi in cases:
        with pytest.raises(ValueError) as e:
            call()
        msg = _msg(e)
        assert re.search(r"\bx\b", msg) and re.search(r"\bw\b", msg), msg
        # Both shapes appear, so the reader sees what disagreed.
        assert str(xi.shape[-1]) in msg and str(wi.shape) in msg, msg


@pytest.mark.parametrize("cin, cout, groups, w_cin", [(6, 5, 2, 3), (6, 4, 4, 1), (6, 4, 0, 6), (6, 4, -2, 3),
                                                      (6, 4, 3, 1), (6, 6, 1, 2)],
                         ids=["cout-not-divisible", "cin-not-divisible", "zero", "negative",
                              "w-per-group-wrong", "w-cin-wrong-for-groups1"])
def test_groups_must_divide_channels(cin, cout, groups, w_cin):
    x = rand(RNG, 1, 5, 5, cin)
    w = rand(RNG, 3, 3, w_cin, cout)
    with pytest.raises(ValueError, match=r"groups|\bw\b|\bx\b"):
        pyconv.conv2d(x, w, groups=groups)
    with pytest.raises(ValueError, match=r"groups|\bw\b|\bx\b"):
        pyconv.Conv2D(w, groups=groups)(x)


def test_groups_error_names_groups():
    with pytest.raises(ValueError, match="groups"):
        pyconv.Conv2D(rand(RNG, 3, 3, 3, 5), groups=2)
    with pytest.raises(ValueError, match="groups"):
        pyconv.conv2d(X, rand(RNG, 3, 3, 2, 6), groups=4)


@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value", [0, -1, (1, 0), (-2, 1)], ids=str)
def test_non_positive_stride_and_dilation(name, value):
    for call in [lambda: pyconv.Conv2D(W, **{name: value}), lambda: pyconv.conv2d(X, W, **{name: value}),
                 lambda: pyconv.DepthwiseConv2D(WD, **{name: value}),
                 lambda: pyconv.SeparableConv2D(WD, rand(RNG, 12, 2), **{name: value})]:
        with pytest.raises(ValueError, match=name):
            call()


@pytest.mark.parametrize("value", [-1, (0, -1), ((0, 0), (-1, 0))], ids=str)
def test_negative_padding(value):
    with pytest.raises(ValueError, match="padding"):
        pyconv.conv2d(X, W, padding=value)
    with pytest.raises(ValueError, match="padding"):
        pyconv.DepthwiseConv2D(WD, padding=value)(X)


@pytest.mark.parametrize("bad", ["swish", "relu7", "", "Tanh", {"function": "softsign"}, {"alpha": 0.1},
                                 {"function": "leaky_relu", "slope": 0.1}, {"function": "relu", "alpha": 1.0},
                                 {"function": "clip", "min": "0"}, {"function": "hard_sigmoid", "beta": float("nan")},
                                 5], ids=str)
def test_bad_activation_names(bad):
    calls = [lambda: pyconv.Conv2D(W, activation=bad), lambda: pyconv.conv2d(X, W, activation=bad),
             lambda: pyconv.DepthwiseConv2D(WD, activation=bad),
             lambda: pyconv.PointwiseConv2D(WP, activation=bad),
             lambda: pyconv.Dense(WP, activation=bad),
             lambda: pyconv.SeparableConv2D(WD, rand(RNG, 12, 2), depthwise_activation=bad),
             lambda: pyconv.SeparableConv2D(WD, rand(RNG, 12, 2), activation=bad)]
    for call in calls:
        with pytest.raises(ValueError, match="activation") as e:
            call()
        # The message names the bad value or the offending field.
        fields = ["function", *map(str, bad.values()), *bad] if isinstance(bad, dict) else [repr(bad)]
        assert any(f in _msg(e) for f in fields), _msg(e)


@pytest.mark.parametrize("b_shape", [(4,), (6,), (1, 5), ()], ids=["short", "long", "2d", "scalar"])
def test_bias_of_wrong_length(b_shape):
    b = np.zeros(b_shape, np.float32)
    with pytest.raises(ValueError, match=r"\bb\b") as e:
        pyconv.Conv2D(W, b)
    assert "5" in _msg(e)
    with pytest.raises(ValueError, match=r"\bb\b"):
        pyconv.conv2d(X, W, b)
    with pytest.raises(ValueError, match=r"\bb\b"):
        pyconv.DepthwiseConv2D(WD, np.zeros((11,), np.float32))
    with pytest.raises(ValueError, match=r"\bb\b"):
        pyconv.PointwiseConv2D(WP, b)
    with pytest.raises(ValueError, match=r"\bb\b"):
        pyconv.Dense(WP, np.zeros((8,), np.float32))
    with pytest.raises(ValueError, match=r"b_depthwise"):
        pyconv.SeparableConv2D(WD, rand(RNG, 12, 5), b_depthwise=b)
    with pytest.raises(ValueError, match=r"b_pointwise"):
        pyconv.SeparableConv2D(WD, rand(RNG, 12, 7), b_pointwise=b)


def test_kernel_larger_than_padded_input_names_the_shapes():
    x = rand(RNG, 1, 2, 9, 6)
    with pytest.raises(ValueError) as e:
        pyconv.conv2d(x, W)
    msg = _msg(e)
    assert str(x.shape) in msg and str(W.shape) in msg, msg
    with pytest.raises(ValueError):
        pyconv.depthwise_conv2d(x, WD, dilation=2, padding=1)
    with pytest.raises(ValueError):
        pyconv.Conv2D(W, dilation=(1, 5))(rand(RNG, 1, 9, 9, 6))


# ---- special values -------------------------------------------------------------------------------

@pytest.mark.parametrize("api", ["direct", "im2col", "winograd", "auto", "depthwise", "pointwise"])
def test_nan_passes_through(api):
    x = rand(rng_for("nan", api), 1, 12, 12, 6)
    x[0, 5, 6, 2] = np.nan
    with np.errstate(invalid="ignore"):
        if api == "depthwise":
            y = pyconv.depthwise_conv2d(x, WD, padding="same")
            ref = depthwise_conv2d_ref(x, WD, padding="same")
        elif api == "pointwise":
            y = pyconv.pointwise_conv2d(x, WP)
            ref = pointwise_conv2d_ref(x, WP)
        else:
            y = pyconv.conv2d(x, W, padding="same", strategy=api)
            ref = conv2d_ref(x, W, padding="same")
    nan_ref = np.isnan(ref)
    assert nan_ref.any()
    # Every output that reads the NaN pixel is NaN.
    assert np.isnan(y[nan_ref]).all()
    if api in ("direct", "im2col", "depthwise", "pointwise"):
        # Those strategies read exactly the window, so nothing else is touched. (Winograd's transforms
        # mix a whole tile, so a NaN may legitimately spread within its tile.)
        assert not np.isnan(y[~nan_ref]).any()
        assert_close(np.where(nan_ref, 0, y).astype(np.float32), np.where(nan_ref, 0, ref))


@pytest.mark.parametrize("api", ["conv2d-direct", "conv2d-im2col", "conv2d-winograd", "conv2d-auto",
                                 "depthwise_conv2d", "pointwise_conv2d", "separable_conv2d", "dense"])
def test_zero_size_batch_is_empty_result_or_value_error(api):
    # The contract leaves this open: either a clean (0, ...) result or a ValueError, never a crash.
    x = np.zeros((0, 9, 8, 6), np.float32)
    try:
        if api.startswith("conv2d"):
            y = pyconv.conv2d(x, W, padding="same", strategy=api.split("-")[1])
            shape = (0, 9, 8, 5)
        elif api == "depthwise_conv2d":
            y = pyconv.depthwise_conv2d(x, WD)
            shape = (0, 7, 6, 12)
        elif api == "pointwise_conv2d":
            y = pyconv.pointwise_conv2d(x, WP)
            shape = (0, 9, 8, 7)
        elif api == "separable_conv2d":
            y = pyconv.separable_conv2d(x, WD, rand(RNG, 12, 3))
            shape = (0, 7, 6, 3)
        else:
            y = pyconv.dense(np.zeros((0, 6), np.float32), WP)
            shape = (0, 7)
    except ValueError as e:
        assert "x" in str(e) or "batch" in str(e) or "empty" in str(e) or "0" in str(e), str(e)
        return
    assert y.shape == shape and y.dtype == np.float32


@pytest.mark.parametrize("shape", [(1, 0, 8, 6), (1, 9, 0, 6)], ids=["h0", "w0"])
def test_zero_size_image_is_rejected_or_empty(shape):
    x = np.zeros(shape, np.float32)
    try:
        y = pyconv.conv2d(x, W, padding="same")
    except ValueError:
        return
    assert y.size == 0


def test_denormals_are_not_flushed():
    # Built without -ffast-math: importing pyconv must not switch the process to flush-to-zero, and
    # the kernels keep subnormal values (1e-39 is below float32's smallest normal, about 1.2e-38).
    tiny = np.float32(1e-39)
    assert tiny * np.float32(1) != 0
    x = np.full((1, 4, 4, 32), tiny, np.float32)
    w = np.ones((3, 3, 32, 2), np.float32)
    for strategy in ["direct", "im2col", "winograd"]:
        y = pyconv.conv2d(x, w, strategy=strategy)
        assert (y > 0).all(), strategy
    assert (pyconv.depthwise_conv2d(x, w[..., 0]) > 0).all()
    assert (pyconv.pointwise_conv2d(x[..., :2], np.eye(2, dtype=np.float32)) == tiny).all()


# ---- the operators own their parameters -------------------------------------------------------------

def _operator_factories():
    return {
        "Conv2D": (lambda w, b: pyconv.Conv2D(w, b, padding="same"), (3, 3, 6, 5), 5, X),
        "Conv2D-winograd": (lambda w, b: pyconv.Conv2D(w, b, padding="same", strategy="winograd"),
                            (3, 3, 6, 5), 5, X),
        "Conv2D-groups": (lambda w, b: pyconv.Conv2D(w, b, groups=3), (3, 3, 2, 6), 6, X),
        "DepthwiseConv2D": (lambda w, b: pyconv.DepthwiseConv2D(w, b), (3, 3, 6, 2), 12, X),
        "PointwiseConv2D": (lambda w, b: pyconv.PointwiseConv2D(w, b), (6, 5), 5, X),
        "Dense": (lambda w, b: pyconv.Dense(w, b), (6, 5), 5, X[:, 0, 0]),
    }


@pytest.mark.parametrize("name", list(_operator_factories()))
def test_operators_copy_weights_and_bias(name):
    # Prepared operators pack (or copy) at construction: the caller reusing or zeroing its arrays
    # afterwards, even before the first call, must not change what the operator computes.
    make, w_shape, channels, x = _operator_factories()[name]
    rng = rng_for("own-params", name)
    w, b = rand(rng, *w_shape), rand(rng, channels)
    expected = make(w.copy(), b.copy())(x)
    op = make(w, b)
    w[:] = 0
    b[:] = 7
    np.testing.assert_array_equal(op(x), expected)


def test_separable_copies_all_four_parameters():
    rng = rng_for("own-params-sep")
    params = [rand(rng, 3, 3, 6), rand(rng, 6, 4), rand(rng, 6), rand(rng, 4)]
    expected = pyconv.SeparableConv2D(*[p.copy() for p in params], padding="same")(X)
    op = pyconv.SeparableConv2D(*params, padding="same")
    for p in params:
        p[:] = 3
    np.testing.assert_array_equal(op(X), expected)


def test_misaligned_out_is_filled_or_refused():
    out = _misaligned(np.zeros((2, 9, 8, 5), np.float32))
    try:
        y = pyconv.conv2d(X, W, B, padding="same", out=out)
    except (ValueError, TypeError) as e:
        assert "out" in str(e)
        return
    assert y is out
    assert_close(out, conv2d_ref(X, W, B, padding="same"))


# ---- out= sharing memory with the input ---------------------------------------------------------------

def _alias_cases():
    rng = rng_for("alias")
    w3 = rand(rng, 3, 3, 40, 40)
    wd = w3[..., 0]
    wp = rand(rng, 40, 40)
    # One thread: whether a racing second thread happens to read a row before it is overwritten
    # must not decide the outcome.
    one = dict(threads=1)
    cases = {}
    for s in ["direct", "im2col", "winograd"]:
        cases[f"conv2d-{s}"] = (
            lambda x, out, s=s: pyconv.conv2d(x, w3, padding="same", strategy=s, out=out, **one),
            lambda x: conv2d_ref(x, w3, padding="same"))
    cases["depthwise"] = (lambda x, out: pyconv.depthwise_conv2d(x, wd, padding="same", out=out, **one),
                          lambda x: depthwise_conv2d_ref(x, wd, padding="same"))
    cases["pointwise"] = (lambda x, out: pyconv.pointwise_conv2d(x, wp, out=out, **one),
                          lambda x: pointwise_conv2d_ref(x, wp))
    cases["separable"] = (lambda x, out: pyconv.separable_conv2d(x, wd, wp, padding="same", out=out, **one),
                          lambda x: separable_conv2d_ref(x, wd, wp, padding="same"))
    cases["dense"] = (
        lambda x, out: pyconv.dense(x.reshape(-1, 40), wp, out=out.reshape(-1, 40), **one).reshape(x.shape),
        lambda x: dense_ref(x.reshape(-1, 40), wp).reshape(x.shape))
    return cases


@pytest.mark.parametrize("name", list(_alias_cases()))
def test_out_aliasing_the_input_is_rejected_or_correct(name):
    # out= the input itself (same shape when C_in == C_out and "same" padding): the kernels read
    # input pixels after writing output pixels, so an in-place call must either be refused with a
    # ValueError or give the right answer (e.g. by copying x first), never silent garbage.
    run, ref = _alias_cases()[name]
    # Big enough that no kernel holds the whole image in one work unit (Winograd: 48 tiles).
    x = rand(rng_for("alias-x", name), 2, 23, 21, 40)
    expected = ref(x)
    buf = x.copy()
    try:
        y = run(buf, buf)
    except ValueError as e:
        assert "out" in str(e)
        return
    assert np.shares_memory(y, buf)
    assert_close(y, expected)


def test_arrays_pyconv_allocates_start_on_a_cache_line():
    # Kernels load 64-byte vectors of channels; numpy's own allocations start 16 bytes into a line.
    from pyconv.memory import aligned_empty, aligned_zeros
    for shape in [(1,), (3, 5), (2, 7, 7, 33), 17]:
        a, z = aligned_empty(shape), aligned_zeros(shape)
        assert a.ctypes.data % 64 == 0 and z.ctypes.data % 64 == 0
        assert a.flags.c_contiguous and a.dtype == np.float32 and not z.any()
    x = np.ones((1, 5, 5, 8), np.float32)
    outputs = [pyconv.conv2d(x, np.ones((3, 3, 8, 4), np.float32)), pyconv.depthwise_conv2d(x, np.ones((3, 3, 8, 2))),
               pyconv.nchw_to_nhwc(x), pyconv.add(x, x), pyconv.max_pool2d(x, 2)]
    assert all(y.ctypes.data % 64 == 0 for y in outputs)


def test_a_model_refuses_integer_and_bool_inputs(tmp_path, capsys):
    from pyconv import cli
    from conftest import model_config
    doc = model_config({"name": "c", "type": "conv2d", "inputs": ["input"], "filters": 4, "kernel": 3},
                       shape=(6, 5, 3))
    m = pyconv.load(doc, threads=1)
    x = m.example_input()
    for dtype in (np.uint8, np.int16, np.bool_):
        with pytest.raises(TypeError, match=rf"model input 'input': expected float32 .*found {np.dtype(dtype).name}: "
                                            r"convert with x\.astype\(np\.float32\) / 255"):
            m((x * 255).astype(dtype))
    with pytest.raises(TypeError, match="found uint8"):
        m({"input": (x * 255).astype(np.uint8)})
    np.testing.assert_array_equal(m(x.astype(np.float64)), m(x))
    # The command line's .npy input says the same, as one line and a hint.
    path = tmp_path / "m.json"
    path.write_text(__import__("json").dumps(doc))
    np.save(tmp_path / "x.npy", (x * 255).astype(np.uint8))
    assert cli.main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--repeat", "1"]) == 2
    err = capsys.readouterr().err
    assert "expected float32 (or float64/float16, converted), found uint8" in err and "astype(np.float32) / 255" in err
