"""pyconv.pointwise_conv2d / PointwiseConv2D and pyconv.dense / Dense (the packed GEMM) against the
float64 reference.

Covers: a pairwise subset of (pixels N*H*W around the GEMM row tile of 6-14, C_in and C_out below, at
and above the 16/32-wide column tile and the K block, batch, threads, bias, activation); 1x1 conv2d
through every general strategy equals pointwise; the operator protocol; every other instruction-set level; exhaustive
sweeps marked slow.
"""
import numpy as np
import pytest

import pyconv
from conftest import assert_close, cases_param, pairwise, product, rand, rng_for, LEVELS, run_at_level
from reference import dense_ref, pointwise_conv2d_ref

# (H, W): N*H*W rows of the GEMM, chosen so that with N in {1, 3} the row count lands below, on and
# above the 6-row register blocks (AVX2, NEON) and 12-row tiles, and on a single row; (15, 17) is two pixel blocks.
SPATIAL = [(1, 1), (1, 5), (2, 3), (1, 7), (3, 4), (1, 13), (2, 7), (4, 4), (5, 5), (8, 12), (97, 1),
           (15, 17)]
# Around the SIMD widths and the 512-deep K block (1100: three blocks, the last partial).
C_INS = [1, 3, 8, 16, 17, 33, 65, 256, 257, 512, 513, 1100]
C_OUTS = [1, 5, 16, 31, 32, 48, 49, 97]
ACTIVATIONS = [None, "relu", "relu6"]

AXES = dict(hw=SPATIAL, cin=C_INS, cout=C_OUTS, n=[1, 3], t=[1, 2], bias=[False, True], act=ACTIVATIONS)
DEFAULT_CASES = pairwise(AXES, seed=7)

DENSE_AXES = dict(n=[1, 2, 5, 6, 7, 13, 14, 33], fin=[1, 3, 16, 17, 64, 257, 1025], fout=C_OUTS + [1000],
                  t=[1, 2], bias=[False, True], act=ACTIVATIONS)
DENSE_CASES = pairwise(DENSE_AXES, seed=8)


def check_pointwise(case):
    rng = rng_for("pointwise", sorted(case.items(), key=str))
    h, w_ = case["hw"]
    x = rand(rng, case["n"], h, w_, case["cin"])
    w = rand(rng, case["cin"], case["cout"])
    b = rand(rng, case["cout"]) if case["bias"] else None
    ref = pointwise_conv2d_ref(x, w, b, activation=case["act"])
    y = pyconv.pointwise_conv2d(x, w, b, activation=case["act"], threads=case["t"])
    assert_close(y, ref, what="pointwise_conv2d")
    op = pyconv.PointwiseConv2D(w, b, activation=case["act"])
    assert tuple(op.output_shape(x.shape)) == ref.shape
    assert_close(op(x, threads=case["t"]), ref, what="PointwiseConv2D")


def check_dense(case):
    rng = rng_for("dense", sorted(case.items(), key=str))
    x = rand(rng, case["n"], case["fin"])
    w = rand(rng, case["fin"], case["fout"])
    b = rand(rng, case["fout"]) if case["bias"] else None
    ref = dense_ref(x, w, b, activation=case["act"])
    assert_close(pyconv.dense(x, w, b, activation=case["act"], threads=case["t"]), ref, what="dense")
    op = pyconv.Dense(w, b, activation=case["act"])
    assert tuple(op.output_shape(x.shape)) == ref.shape
    assert_close(op(x, threads=case["t"]), ref, what="Dense")


@cases_param(DEFAULT_CASES)
def test_pointwise_matches_reference(case):
    check_pointwise(case)


@cases_param(DENSE_CASES)
def test_dense_matches_reference(case):
    check_dense(case)


@pytest.mark.parametrize("strategy", ["direct", "im2col", "auto"])
@pytest.mark.parametrize("cin, cout", [(3, 4), (17, 33), (64, 48)], ids=lambda v: str(v))
def test_one_by_one_conv2d_equals_pointwise(strategy, cin, cout):
    rng = rng_for("1x1", strategy, cin, cout)
    x = rand(rng, 2, 7, 9, cin)
    w = rand(rng, cin, cout)
    b = rand(rng, cout)
    y_pw = pyconv.pointwise_conv2d(x, w, b, activation="relu")
    y_conv = pyconv.conv2d(x, w.reshape(1, 1, cin, cout), b, activation="relu", strategy=strategy)
    assert_close(y_pw, pointwise_conv2d_ref(x, w, b, activation="relu"))
    assert_close(y_conv, y_pw)


@pytest.mark.parametrize("padding", [((0, 2), (0, 1)), ((0, 0), (0, 3)), ((1, 0), (0, 0)), ((0, 0), (2, 0))],
                         ids=["bottom-right", "right", "top", "left"])
@pytest.mark.parametrize("stride", [1, 2])
def test_padded_one_by_one_conv2d_is_not_read_as_pointwise(padding, stride):
    """A 1x1 window whose output pixels do not map one-to-one onto the input's (padding on any side, or
    a stride) must walk its window: only the unpadded stride-1 case reads pixel p for output p."""
    from reference import conv2d_ref

    rng = rng_for("1x1-padded", padding, stride)
    x = rand(rng, 2, 5, 7, 33)
    w = rand(rng, 1, 1, 33, 40)
    b = rand(rng, 40)
    ref = conv2d_ref(x, w, b, stride=stride, padding=padding, activation="relu")
    for strategy in ("direct", "auto"):
        for threads in (1, 2):
            y = pyconv.conv2d(x, w, b, stride=stride, padding=padding, activation="relu", strategy=strategy,
                              threads=threads)
            assert_close(y, ref, what=f"1x1 conv2d padding={padding} stride={stride} {strategy} t{threads}")


def test_pointwise_operator_call_twice_and_out():
    rng = rng_for("pw-op")
    x = rand(rng, 3, 5, 6, 40)
    w = rand(rng, 40, 33)
    b = rand(rng, 33)
    op = pyconv.PointwiseConv2D(w, b, activation="relu6")
    y1, y2 = op(x), op(x)
    np.testing.assert_array_equal(y1, y2)
    ref = pointwise_conv2d_ref(x, w, b, activation="relu6")
    assert_close(y1, ref)
    out = np.full((3, 5, 6, 33), np.nan, np.float32)
    assert op(x, out=out) is out
    assert_close(out, ref)
    with pytest.raises(ValueError, match="out"):
        op(x, out=np.empty((3, 5, 6, 32), np.float32))
    with pytest.raises(TypeError, match="out"):
        op(x, out=np.empty((3, 5, 6, 33), np.float16))
    with pytest.raises((ValueError, TypeError), match="out"):
        op(x, out=np.empty((3, 5, 6, 66), np.float32)[..., ::2])


def test_dense_operator_call_twice_and_out():
    rng = rng_for("dense-op")
    x = rand(rng, 4, 300)
    w = rand(rng, 300, 10)
    op = pyconv.Dense(w)
    y1, y2 = op(x), op(x)
    np.testing.assert_array_equal(y1, y2)
    assert_close(y1, dense_ref(x, w))
    out = np.empty((4, 10), np.float32)
    assert op(x, out=out) is out
    assert_close(out, dense_ref(x, w))
    assert pyconv.dense(x, w, out=out) is out
    with pytest.raises(ValueError, match="out"):
        op(x, out=np.empty((4, 11), np.float32))
    with pytest.raises(ValueError):
        op(rand(rng, 4, 299))
    with pytest.raises(ValueError):
        op(rand(rng, 4, 1, 300))


@cases_param(DEFAULT_CASES[::2])
def test_other_levels_pointwise(level, case):
    check_pointwise(case)


@cases_param(DENSE_CASES[::3])
def test_other_levels_dense(level, case):
    check_dense(case)


@pytest.mark.slow
@cases_param(product(dict(hw=SPATIAL, cin=C_INS, cout=C_OUTS, n=[1, 3], t=[2], bias=[True],
                          act=["relu6"])))
def test_slow_pointwise_sweep(case):
    check_pointwise(case)


@pytest.mark.slow
@cases_param(product(dict(hw=[(1, 1), (2, 3), (3, 5)], cin=list(range(1, 40)), cout=list(range(1, 40)),
                          n=[1], t=[1], bias=[True], act=[None])))
def test_slow_pointwise_every_small_channel_count(case):
    check_pointwise(case)


@pytest.mark.slow
@cases_param(product(DENSE_AXES))
def test_slow_dense_sweep(case):
    check_dense(case)


@pytest.mark.slow
@cases_param(pairwise(dict(AXES, t=[1]), seed=17))
def test_slow_other_levels_sweep(level, case):
    check_pointwise(case)


@pytest.mark.parametrize("cout", [40, 48, 80, 97, 144])
@pytest.mark.parametrize("path", LEVELS)
def test_a_narrow_last_panel_is_packed_and_computed_16_wide(cout, path, request):
    # 40 = 32 + 8 output channels: the last panel is stored 16 wide and runs on the 16-wide tile.
    from pyconv.packing import NR, NR_NARROW, pack_gemm_weights
    from reference import conv2d_ref, separable_conv2d_ref
    run_at_level(request, path)
    rng = rng_for("narrow-panel", cout)
    w, b = rand(rng, 3, 3, 24, cout), rand(rng, cout)
    packed = pack_gemm_weights(w, 1)
    rem = cout - (packed.shape[1] - 1) * packed.shape[3]
    if NR > NR_NARROW and rem <= NR_NARROW:
        k, last = packed.shape[2], packed[0, -1].reshape(-1)
        np.testing.assert_array_equal(last[:k * NR_NARROW].reshape(k, NR_NARROW)[:, :rem],
                                      w.reshape(k, cout)[:, -rem:])
        assert not last[k * NR_NARROW:].any()
    x = rand(rng, 2, 9, 9, 24)
    want = conv2d_ref(x, w, b, padding="same")
    for strategy in ("direct", "im2col", "winograd"):
        op = pyconv.Conv2D(w, b, padding="same", strategy=strategy)
        assert_close(op(x, threads=2), want, what=f"{strategy} {cout}")
    wd, wp = rand(rng, 3, 3, 24), rand(rng, 24, cout)
    assert_close(pyconv.separable_conv2d(x, wd, wp, None, b, padding="same", threads=2),
                 separable_conv2d_ref(x, wd, wp, None, b, padding="same"), what=f"separable {cout}")
