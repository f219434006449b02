"""The fused skip connection: ``act(conv(x) + residual)`` from Conv2D, PointwiseConv2D and
SeparableConv2D (and their functional forms) against the float64 reference plus the residual.

Every convolution path is covered: the direct and im2col GEMMs (the residual is added in the tile
store, on the first K-block only, so K > 256 is included), Winograd, the depthwise and narrow-group
kernels (which add it in a second pass), the fused separable kernel and its two-step path for small
images, channel multipliers; at every instruction-set level this CPU runs, at 1 and 2 threads; with the residual a
separate array, the output itself (in place) and the input itself (``act(conv(x) + x)``).
"""
import numpy as np
import pytest

import pyconv
from conftest import assert_close, rand, rng_for, LEVELS, run_at_level
from reference import activate, conv2d_ref, pointwise_conv2d_ref, separable_conv2d_ref

# (h, c_in, c_out, k, groups, strategy): one row per kernel path.
CONV_CASES = [
    (9, 16, 32, 3, 1, "direct"),
    (7, 300, 40, 1, 1, "auto"),       # K = 300: two K-blocks
    (5, 8, 48, 3, 2, "im2col"),
    (9, 16, 32, 3, 1, "winograd"),
    (7, 12, 12, 3, 12, "auto"),        # depthwise kernel
    (7, 16, 16, 3, 4, "auto"),         # narrow groups
    (6, 32, 64, 3, 2, "auto"),         # grouped GEMM
    (1, 3, 5, 3, 1, "auto"),
]
ACTS = [None, "relu", "relu6"]


@pytest.mark.parametrize("h,c,co,k,g,strategy", CONV_CASES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("path", LEVELS)
def test_conv2d_residual(h, c, co, k, g, strategy, threads, path, request):
    run_at_level(request, path)
    rng = rng_for("residual", h, c, co, k, g, strategy)
    x = rand(rng, 2, h, h, c)
    w = rand(rng, k, k, c // g, co)
    b = rand(rng, co)
    for act in ACTS:
        op = pyconv.Conv2D(w, b, padding="same", groups=g, activation=act, strategy=strategy)
        r = rand(rng, *op.output_shape(x.shape)) * 4
        want = activate(conv2d_ref(x, w, b, padding="same", groups=g) + r, act)
        assert_close(op(x, residual=r, threads=threads), want, what=f"separate residual, {act}")
        in_place = r.copy()
        assert op(x, residual=in_place, out=in_place, threads=threads) is in_place
        assert_close(in_place, want, what=f"in-place residual, {act}")
    assert_close(pyconv.conv2d(x, w, b, padding="same", groups=g, strategy=strategy, residual=r),
                 conv2d_ref(x, w, b, padding="same", groups=g) + r, what="functional")


@pytest.mark.parametrize("h,c,co,s,m", [(14, 64, 96, 1, 1), (7, 512, 512, 1, 1), (15, 32, 40, 2, 1),
                                        (3, 300, 64, 1, 1), (9, 8, 24, 1, 2), (1, 5, 7, 1, 1)])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("path", LEVELS)
def test_separable_residual(h, c, co, s, m, threads, path, request):
    run_at_level(request, path)
    rng = rng_for("residual-separable", h, c, co, s, m)
    x = rand(rng, 1, h, h, c)
    wd = rand(rng, 3, 3, c, m) if m > 1 else rand(rng, 3, 3, c)
    wp, bp = rand(rng, c * m, co), rand(rng, co)
    kw = dict(stride=s, padding="same", depthwise_activation="relu")
    op = pyconv.SeparableConv2D(wd, wp, None, bp, activation="relu6", **kw)
    r = rand(rng, *op.output_shape(x.shape)) * 4
    want = activate(separable_conv2d_ref(x, wd, wp, None, bp, **kw) + r, "relu6")
    assert_close(op(x, residual=r, threads=threads), want, what="separable")
    in_place = r.copy()
    assert_close(op(x, residual=in_place, out=in_place, threads=threads), want, what="separable in place")
    assert_close(pyconv.separable_conv2d(x, wd, wp, None, bp, residual=r, activation="relu6", **kw), want,
                 what="functional")


@pytest.mark.parametrize("threads", [1, 2])
def test_pointwise_residual_is_the_input(threads):
    rng = rng_for("residual-pointwise")
    x = rand(rng, 2, 5, 7, 33)
    w, b = rand(rng, 33, 33), rand(rng, 33)
    op = pyconv.PointwiseConv2D(w, b, activation="relu")
    assert_close(op(x, residual=x, threads=threads), activate(pointwise_conv2d_ref(x, w, b) + x, "relu"),
                 what="act(conv(x) + x)")
    assert_close(pyconv.pointwise_conv2d(x, w, b, residual=x), pointwise_conv2d_ref(x, w, b) + x,
                 what="functional")


def test_bad_residuals():
    x = np.ones((1, 4, 4, 3), np.float32)
    op = pyconv.Conv2D(np.ones((3, 3, 3, 8), np.float32), padding="same")
    with pytest.raises(ValueError, match=r"residual has shape \(1, 4, 4, 7\), expected the output shape"):
        op(x, residual=np.ones((1, 4, 4, 7), np.float32))
    with pytest.raises(ValueError, match="residual must be the output array itself or not overlap it"):
        # The output shifted by one float: a residual overlapping only part of it.
        shifted = np.zeros(1 * 4 * 4 * 8 + 1, np.float32)
        op(x, residual=shifted[1:].reshape(1, 4, 4, 8), out=shifted[:-1].reshape(1, 4, 4, 8))
    with pytest.raises(ValueError, match="residual"):
        pyconv.PointwiseConv2D(np.ones((3, 8), np.float32))(x, residual=np.ones((1, 4, 4), np.float32))


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("n,hw,c", [(2, 30, 40), (1, 7, 512)])  # 7x7x512: the separable two-step path
def test_residual_results_do_not_depend_on_the_thread_count(threads, n, hw, c):
    rng = rng_for("residual-threads", n, hw, c)
    x = rand(rng, n, hw, hw, c)
    r = rand(rng, n, hw, hw, 48)
    conv = pyconv.Conv2D(rand(rng, 3, 3, c, 48), rand(rng, 48), padding="same", activation="relu")
    sep = pyconv.SeparableConv2D(rand(rng, 3, 3, c), rand(rng, c, 48), padding="same", activation="relu6")
    for op in (conv, sep):
        np.testing.assert_array_equal(op(x, residual=r, threads=1), op(x, residual=r, threads=threads))


def test_every_level_adds_the_residual_after_the_bias(level):
    # Every level's tile adds bias then residual: fused equals conv then add, bit for bit.
    rng = rng_for("residual-order")
    x, r = rand(rng, 1, 6, 6, 20), rand(rng, 1, 6, 6, 24) * 100
    op = pyconv.Conv2D(rand(rng, 1, 1, 20, 24), rand(rng, 24) * 100)
    np.testing.assert_array_equal(op(x, residual=r), pyconv.add(op(x), r))
