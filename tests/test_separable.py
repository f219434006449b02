"""pyconv.separable_conv2d / SeparableConv2D (depthwise then pointwise) against the float64 reference.

Covers: a pairwise subset of geometry, channels, multiplier, both biases and both activations; that the
result equals running DepthwiseConv2D then PointwiseConv2D; the operator protocol; every other instruction-set level.
"""
import re

import numpy as np
import pytest

import pyconv
from conftest import assert_close, cases_param, pairwise, product, rand, rng_for
from reference import output_hw, separable_conv2d_ref

ACTIVATIONS = [None, "relu", "relu6"]
AXES = dict(h=[1, 2, 7, 15, 17, 33], w=[1, 3, 8, 16], k=[1, 2, 3, 5, 7], s=[1, 2, 3], d=[1, 2],
            pad=["valid", "same", 1, (0, 2), ((2, 0), (0, 1))], c=[1, 3, 8, 16, 17, 33],
            m=[1, 2], cout=[1, 5, 16, 32, 49], n=[1, 3], t=[1, 2], bd=[False, True], bp=[False, True],
            dact=ACTIVATIONS, act=ACTIVATIONS)
DEFAULT_CASES = pairwise(AXES, seed=9)


def check_separable(case):
    rng = rng_for("separable", sorted(case.items(), key=str))
    k, c, m = case["k"], case["c"], case["m"]
    x = rand(rng, case["n"], case["h"], case["w"], c)
    wd = rand(rng, k, k, c, m) if m > 1 else rand(rng, k, k, c)
    wp = rand(rng, c * m, case["cout"])
    bd = rand(rng, c * m) if case["bd"] else None
    bp = rand(rng, case["cout"]) if case["bp"] else None
    kw = dict(stride=case["s"], padding=case["pad"], dilation=case["d"],
              depthwise_activation=case["dact"], activation=case["act"])
    if output_hw(x.shape[1:3], (k, k), case["s"], case["pad"], case["d"]) is None:
        with pytest.raises(ValueError, match=re.escape(str(x.shape))):
            pyconv.separable_conv2d(x, wd, wp, bd, bp, threads=case["t"], **kw)
        return
    ref = separable_conv2d_ref(x, wd, wp, bd, bp, **kw)
    assert_close(pyconv.separable_conv2d(x, wd, wp, bd, bp, threads=case["t"], **kw), ref,
                 what="separable_conv2d")
    op = pyconv.SeparableConv2D(wd, wp, bd, bp, **kw)
    assert tuple(op.output_shape(x.shape)) == ref.shape
    assert_close(op(x, threads=case["t"]), ref, what="SeparableConv2D")


@cases_param(DEFAULT_CASES)
def test_separable_matches_reference(case):
    check_separable(case)


@pytest.mark.parametrize("h, w, c, cout, s", [(147, 147, 128, 128, 1), (147, 147, 64, 130, 2), (75, 149, 100, 40, 1)],
                         ids=["147x147x128", "147x147x64-s2", "75x149x100"])
@pytest.mark.parametrize("threads", [1, 2])
def test_large_maps(h, w, c, cout, s, threads):
    """Images of 4 MB and more, whose depthwise rows prefetch their input ahead (Xception's entry)."""
    check_separable(dict(n=1, h=h, w=w, c=c, m=1, k=3, cout=cout, s=s, pad="same", d=1, bd=True, bp=True,
                         dact="relu", act=None, t=threads))


def test_equals_depthwise_then_pointwise():
    rng = rng_for("sep-compose")
    x = rand(rng, 2, 14, 11, 24)
    wd, wp = rand(rng, 3, 3, 24, 2), rand(rng, 48, 40)
    bd, bp = rand(rng, 48), rand(rng, 40)
    y = pyconv.separable_conv2d(x, wd, wp, bd, bp, stride=2, padding="same",
                                depthwise_activation="relu6", activation="relu")
    mid = pyconv.depthwise_conv2d(x, wd, bd, stride=2, padding="same", activation="relu6")
    two_step = pyconv.pointwise_conv2d(mid, wp, bp, activation="relu")
    # A fused implementation may sum in another order; equal up to float reassociation.
    assert_close(y, two_step.astype(np.float64), rtol=1e-5)


@pytest.mark.parametrize("shape, cout, s", [((1, 7, 7, 1024), 1024, 1), ((1, 14, 14, 512), 1024, 2),
                                             ((1, 1, 30, 700), 90, 1), ((3, 2, 2, 333), 50, 1)],
                         ids=["7x7x1024", "14x14x512-s2", "1row-700", "tiny-images-333"])
def test_mobilenet_tail_layers_split_across_threads(shape, cout, s):
    # MobileNet's last layers: few rows, many channels. However the fused kernel splits them, one and
    # two threads must agree bit for bit, and with the reference.
    rng = rng_for("sep-tail", shape, cout, s)
    x = rand(rng, *shape)
    wd, wp = rand(rng, 3, 3, shape[3]), rand(rng, shape[3], cout)
    bd, bp = rand(rng, shape[3]), rand(rng, cout)
    kw = dict(stride=s, padding="same", depthwise_activation="relu6", activation="relu6")
    op = pyconv.SeparableConv2D(wd, wp, bd, bp, **kw)
    y1, y2 = op(x, threads=1), op(x, threads=2)
    assert_close(y2, separable_conv2d_ref(x, wd, wp, bd, bp, **kw))
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("shape, cout", [((2, 14, 14, 64), 96), ((3, 5, 7, 40), 50), ((1, 7, 7, 512), 512),
                                         ((2, 1, 3, 24), 200)],
                         ids=["14x14-batch2", "5x7-batch3", "7x7x512", "1x3-many-panels"])
def test_shares_that_cut_a_tile_agree_for_every_thread_count(shape, cout):
    # Threads split the layer's (tile, panel) work evenly, cutting a tile between two of them when the
    # even split falls inside it (and images between threads when the batch is larger than one); every
    # thread count must give the same bits, and the reference's values.
    rng = rng_for("sep-shares", shape, cout)
    x = rand(rng, *shape)
    wd, wp = rand(rng, 3, 3, shape[3]), rand(rng, shape[3], cout) * 0.1
    bd, bp = rand(rng, shape[3]), rand(rng, cout)
    kw = dict(padding="same", depthwise_activation="relu", activation="relu6")
    op = pyconv.SeparableConv2D(wd, wp, bd, bp, **kw)
    y1 = op(x, threads=1)
    assert_close(y1, separable_conv2d_ref(x, wd, wp, bd, bp, **kw))
    for threads in (2, 3, 5):
        np.testing.assert_array_equal(op(x, threads=threads), y1, err_msg=f"{threads} threads")


def test_operator_call_twice_and_out():
    rng = rng_for("sep-op")
    x = rand(rng, 1, 9, 9, 16)
    op = pyconv.SeparableConv2D(rand(rng, 5, 5, 16), rand(rng, 16, 20), padding="same", activation="relu")
    y1, y2 = op(x), op(x)
    np.testing.assert_array_equal(y1, y2)
    out = np.empty((1, 9, 9, 20), np.float32)
    assert op(x, out=out) is out
    np.testing.assert_array_equal(out, y1)
    with pytest.raises(ValueError, match="out"):
        op(x, out=np.empty((1, 9, 9, 16), np.float32))


@pytest.mark.parametrize("wd_shape, wp_shape", [((3, 3, 8), (16, 4)), ((3, 3, 8, 2), (8, 4)),
                                                ((3, 3, 8, 2), (17, 4))],
                         ids=["m1-wp16", "m2-wp8", "m2-wp17"])
def test_pointwise_weight_must_match_depthwise_output(wd_shape, wp_shape):
    rng = rng_for("sep-mismatch")
    with pytest.raises(ValueError, match="w_pointwise|w_depthwise"):
        pyconv.SeparableConv2D(rand(rng, *wd_shape), rand(rng, *wp_shape))


@cases_param(DEFAULT_CASES[::2])
def test_other_levels(level, case):
    check_separable(case)


@pytest.mark.slow
@cases_param(product(dict(h=[2, 7, 17], w=[3, 16], k=[1, 3, 5], s=[1, 2], d=[1, 2], pad=["valid", "same"],
                          c=[1, 8, 17], m=[1, 2], cout=[5, 32], n=[2], t=[2], bd=[True], bp=[True],
                          dact=["relu6"], act=[None])))
def test_slow_separable_sweep(case):
    check_separable(case)


@pytest.mark.parametrize("c, cout", [(1024, 640), (64, 40)], ids=["two-step", "fused"])
def test_bound_small_image_reuses_its_buffer_and_reads_fresh_inputs(c, cout):
    # 7x7x1024->640 (2.5 MB of pointwise weights) at 2 threads takes the kernel's two-step path through
    # the bound call's own buffer; 7x7x64->40 the fused one.
    from reference import separable_conv2d_ref
    rng = rng_for("separable-bound", c)
    wd, wp = rand(rng, 3, 3, c), rand(rng, c, cout) * 0.05
    op = pyconv.SeparableConv2D(wd, wp, padding="same", depthwise_activation="relu")
    x = rand(rng, 1, 7, 7, c)
    out = np.empty((1, 7, 7, cout), np.float32)
    run = op._bind(x, None, out)
    for _ in range(2):
        assert run(2) is out
        assert_close(out, separable_conv2d_ref(x, wd, wp, padding="same", depthwise_activation="relu"),
                     what="bound separable")
        x[...] = rand(rng, 1, 7, 7, c)
