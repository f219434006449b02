"""pyconv.depthwise_conv2d / pyconv.DepthwiseConv2D against the float64 reference.

Covers: a pairwise subset of (H, W, kernel, stride, dilation, padding form, channels around the 8/16
SIMD widths, multiplier M, 3-D vs 4-D weights, batch, threads, bias, activation); the channel order
``c * M + m``; the 3x3 stride 1/2 fast paths next to generic kernel sizes; kernels larger than the
padded input; the operator protocol; every other instruction-set level; exhaustive sweeps marked slow.
"""
import itertools
import re

import numpy as np
import pytest

import pyconv
from conftest import assert_close, cases_param, pairwise, product, rand, rng_for
from reference import depthwise_conv2d_ref, output_hw

SIZES = [1, 2, 7, 15, 17, 33]
# Depthwise vectorises along channels, 8 or 16 at a time: below, at and above both.
CHANNELS = [1, 3, 7, 8, 9, 16, 17, 24, 33, 65]
PADDINGS = ["valid", "same", 1, (2, 0), ((0, 2), (1, 0)), ((3, 1), (0, 4))]
ACTIVATIONS = [None, "relu", "relu6"]

AXES = dict(h=SIZES, w=SIZES, k=[1, 2, 3, 4, 5, 7], s=[1, 2, 3], d=[1, 2], pad=PADDINGS, c=CHANNELS,
            m=[1, 2, 3], wdim=[3, 4], n=[1, 3], t=[1, 2], bias=[False, True], act=ACTIVATIONS)


def _valid(case):
    return case["wdim"] == 4 or case["m"] == 1


DEFAULT_CASES = pairwise(AXES, seed=5, valid=_valid)


def check_depthwise(case):
    rng = rng_for("depthwise", sorted(case.items(), key=str))
    k = case["k"]
    kh, kw = (k, k) if isinstance(k, int) else k
    c, m = case["c"], case["m"]
    x = rand(rng, case["n"], case["h"], case["w"], c)
    w = rand(rng, kh, kw, c, m) if case["wdim"] == 4 else rand(rng, kh, kw, c)
    b = rand(rng, c * m) if case["bias"] else None
    kw_ = dict(stride=case["s"], padding=case["pad"], dilation=case["d"], activation=case["act"])
    if output_hw(x.shape[1:3], (kh, kw), case["s"], case["pad"], case["d"]) is None:
        with pytest.raises(ValueError, match=re.escape(str(x.shape))):
            pyconv.depthwise_conv2d(x, w, b, threads=case["t"], **kw_)
        with pytest.raises(ValueError, match=re.escape(str(x.shape))):
            pyconv.DepthwiseConv2D(w, b, **kw_)(x, threads=case["t"])
        return
    ref = depthwise_conv2d_ref(x, w, b, **kw_)
    assert_close(pyconv.depthwise_conv2d(x, w, b, threads=case["t"], **kw_), ref, what="depthwise_conv2d")
    op = pyconv.DepthwiseConv2D(w, b, **kw_)
    assert tuple(op.output_shape(x.shape)) == ref.shape
    assert_close(op(x, threads=case["t"]), ref, what="DepthwiseConv2D")


@cases_param(DEFAULT_CASES)
def test_depthwise_matches_reference(case):
    check_depthwise(case)


# The shapes MobileNets actually run, where the fast 3x3 paths live.
MOBILENET = [dict(h=h, w=h, k=3, s=s, d=1, pad="same", c=c, m=1, wdim=3, n=1, t=t, bias=True, act="relu6")
             for h, s, c, t in [(112, 1, 32, 2), (112, 2, 64, 1), (28, 1, 256, 2), (14, 2, 512, 2),
                                (7, 1, 1024, 1), (10, 1, 144, 2), (19, 2, 40, 1)]]


@cases_param(MOBILENET)
def test_depthwise_mobilenet_layers(case):
    check_depthwise(case)


# Today's mobile nets (MobileNetV3, EfficientNet, MixNet, GhostNet): 3x3 to 9x9 kernels at stride 1 and 2,
# channel counts that are multiples of 8 but not of 16 or 32 (24, 40, 72, 120, 200) and multiples of 128
# (the AVX2 row takes other blocks there), on rows narrower than a block of pixels, one block plus a
# few, and several.
MOBILE_NETS = [dict(h=h, w=w, k=k, s=s, d=1, pad="same", c=c, m=1, wdim=3, n=1, t=1 + i % 2, bias=i % 3 > 0,
                    act=ACTIVATIONS[i % 3])
               for i, (k, s, c) in enumerate(itertools.product([3, 5, 7, 9], [1, 2], [24, 40, 72, 120, 128, 200]))
               for h, w in [[(9, 7), (6, 13), (5, 21), (3, 2), (4, 17), (7, 30)][i % 6]]]


@cases_param(MOBILE_NETS)
def test_depthwise_mobile_net_shapes(case):
    check_depthwise(case)


@cases_param(MOBILE_NETS)
def test_other_levels_mobile_net_shapes(level, case):
    check_depthwise(case)


# Xception's entry maps (>= 4 MB), on which the row kernel prefetches its input ahead; an odd width and
# ragged channels make the prefetched ranges end at the image's right edge and mid-vector.
LARGE = [dict(h=h, w=w, k=3, s=s, d=1, pad="same", c=c, m=1, wdim=3, n=1, t=t, bias=True, act="relu")
         for h, w, s, c, t in [(147, 147, 1, 64, 2), (147, 147, 2, 128, 1), (75, 149, 1, 100, 2)]]


@cases_param(LARGE)
def test_depthwise_large_maps(case):
    check_depthwise(case)


@pytest.mark.parametrize("n, h, w, c, m, k, s", [
    (1, 7, 7, 1024, 1, 3, 1), (1, 7, 7, 1000, 1, 5, 1), (1, 1, 50, 2001, 1, 3, 1), (1, 2, 9, 4100, 1, 3, 2),
    (1, 3, 3, 777, 2, 3, 1), (2, 1, 1, 9000, 1, 1, 1), (1, 14, 14, 1000, 1, 3, 2),
], ids=["7x7x1024", "7x7x1000-k5", "1row-2001", "2rows-4100-s2", "3x3x777-m2", "1x1x9000-k1", "14x14-s2"])
def test_few_rows_many_channels_split_across_threads(n, h, w, c, m, k, s):
    # With fewer rows than threads the work is split along channels, in 32-channel-aligned slices:
    # channel counts that are not multiples of 32 leave a ragged last slice, which must be neither
    # dropped nor computed twice, and the split must not change a single bit.
    rng = rng_for("dw-split", n, h, w, c, m, k, s)
    x = rand(rng, n, h, w, c)
    wt = rand(rng, k, k, c, m)
    b = rand(rng, c * m)
    op = pyconv.DepthwiseConv2D(wt, b, stride=s, padding="same", activation="relu6")
    y1 = op(x, threads=1)
    y2 = op(x, threads=2)
    assert_close(y2, depthwise_conv2d_ref(x, wt, b, stride=s, padding="same", activation="relu6"))
    np.testing.assert_array_equal(y1, y2)


def test_multiplier_channel_order():
    # Output channel c*M + m reads input channel c: put a distinct constant in each input channel and a
    # 1x1 kernel selecting it with weight (m + 1), so every output channel names its source.
    c, m = 5, 3
    x = np.broadcast_to(np.arange(1, c + 1, dtype=np.float32), (1, 4, 4, c)).copy()
    w = np.broadcast_to(np.arange(1, m + 1, dtype=np.float32), (1, 1, c, m)).copy()
    y = pyconv.depthwise_conv2d(x, w)
    expected = np.array([(ci + 1) * (mi + 1) for ci in range(c) for mi in range(m)], dtype=np.float32)
    np.testing.assert_array_equal(y[0, 2, 1], expected)


def test_three_d_weights_mean_multiplier_one():
    rng = rng_for("dw-3d")
    x = rand(rng, 2, 9, 9, 12)
    w3 = rand(rng, 3, 3, 12)
    b = rand(rng, 12)
    y3 = pyconv.depthwise_conv2d(x, w3, b, padding="same")
    y4 = pyconv.depthwise_conv2d(x, w3[..., None], b, padding="same")
    assert y3.shape == (2, 9, 9, 12)
    np.testing.assert_array_equal(y3, y4)


def test_operator_call_twice_and_out():
    rng = rng_for("dw-op")
    x = rand(rng, 2, 11, 13, 20)
    w = rand(rng, 3, 3, 20, 2)
    b = rand(rng, 40)
    op = pyconv.DepthwiseConv2D(w, b, stride=2, padding="same", activation="relu")
    y1, y2 = op(x), op(x)
    np.testing.assert_array_equal(y1, y2)
    ref = depthwise_conv2d_ref(x, w, b, stride=2, padding="same", activation="relu")
    assert_close(y1, ref)
    out = np.full(op.output_shape(x.shape), np.nan, np.float32)
    assert op(x, out=out) is out
    assert_close(out, ref)
    assert pyconv.depthwise_conv2d(x, w, b, stride=2, padding="same", activation="relu", out=out) is out
    with pytest.raises(ValueError, match="out"):
        op(x, out=np.empty((2, 6, 7, 20), np.float32))
    with pytest.raises(TypeError, match="out"):
        op(x, out=np.empty(out.shape, np.float64))


@cases_param(DEFAULT_CASES)
def test_other_levels(level, case):
    check_depthwise(case)


@cases_param(MOBILENET)
def test_other_levels_mobilenet_layers(level, case):
    check_depthwise(case)


# ---- exhaustive sweeps (pytest -m slow) ------------------------------------------------------------

def _slow_geometry():
    cases = product(dict(h=SIZES, w=SIZES, k=[1, 2, 3, 4, 5, 7], s=[1, 2, 3], d=[1, 2], pad=PADDINGS))
    for i, c in enumerate(cases):
        c.update(c=CHANNELS[i % len(CHANNELS)], m=[1, 2, 3][i // 5 % 3], wdim=4, n=[1, 2][i // 7 % 2],
                 t=[1, 2][i // 3 % 2], bias=bool(i % 2), act=ACTIVATIONS[i // 2 % 3])
    return cases


@pytest.mark.slow
@cases_param(_slow_geometry())
def test_slow_geometry_sweep(case):
    check_depthwise(case)


@pytest.mark.slow
@cases_param(product(dict(h=[9], w=[14], k=[2, 3, 5], s=[1, 2], d=[1], pad=["same", "valid"],
                          c=list(range(1, 34)) + [48, 63, 64, 65], m=[1, 2], wdim=[4], n=[2], t=[2],
                          bias=[True], act=["relu6"])))
def test_slow_channel_sweep(case):
    check_depthwise(case)


@pytest.mark.slow
@cases_param(pairwise(dict(AXES, t=[1]), seed=13, valid=_valid))
def test_slow_other_levels_sweep(level, case):
    check_depthwise(case)
