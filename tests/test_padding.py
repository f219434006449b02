"""Padding: every form the contract accepts, resolved to (top, bottom, left, right) and output sizes.

Covers: pyconv.padding against the independent resolver in tests/reference.py and against hand-worked
TensorFlow "same" values (odd pixel bottom/right); output sizes through every operator's
``output_shape``; where the pads really land (ones-image probes), pads larger than the kernel (the
out-of-image taps read zero), and rejected padding values. Also checks the reference itself against a
loop-by-loop transcription of the definition.
"""
import itertools

import numpy as np
import pytest

import pyconv
from pyconv import padding as pp
from conftest import assert_close, rand, rng_for
from reference import (conv2d_ref, conv2d_ref_loops, depthwise_conv2d_ref, explicit_pads, output_hw,
                       same_output)

FORMS = ["valid", "same", 0, 1, 3, (2, 0), (0, 1), ((0, 2), (1, 0)), ((3, 1), (0, 4)), ((1, 1), (1, 1))]


# (in, k, stride, dilation) -> (before, after), worked by hand from TF's rule.
SAME_BY_HAND = {
    (5, 3, 1, 1): (1, 1),
    (5, 3, 2, 1): (1, 1),
    (6, 3, 2, 1): (0, 1),
    (224, 3, 2, 1): (0, 1),
    (7, 4, 1, 1): (1, 2),
    (7, 2, 1, 1): (0, 1),
    (1, 7, 3, 1): (3, 3),
    (10, 3, 1, 2): (2, 2),
    (2, 1, 3, 1): (0, 0),
    (8, 5, 3, 2): (3, 4),
    (4, 1, 2, 1): (0, 0),
}


@pytest.mark.parametrize("args, pads", SAME_BY_HAND.items(), ids=[f"in{a}-k{b}-s{c}-d{d}"
                                                                   for a, b, c, d in SAME_BY_HAND])
def test_same_pads_by_hand(args, pads):
    size, k, s, d = args
    assert explicit_pads("same", (size, size), (k, k), s, d)[:2] == pads
    got = pp.resolve_padding("same", (size, 3), (k, 1), (s, 1), (d, 1))
    assert tuple(got[:2]) == pads
    oh, _ = output_hw((size, size), (k, k), s, "same", d)
    assert oh == same_output(size, s)


@pytest.mark.parametrize("form", FORMS, ids=str)
def test_resolve_padding_matches_reference(form):
    for h, w, kh, kw, sh, sw, dh, dw in itertools.product([1, 2, 5, 6, 17], [3, 8], [1, 2, 3, 5], [1, 4],
                                                         [1, 2, 3], [1, 2], [1, 2], [1, 3]):
        want = explicit_pads(form, (h, w), (kh, kw), (sh, sw), (dh, dw))
        got = pp.resolve_padding(form, (h, w), (kh, kw), (sh, sw), (dh, dw))
        assert tuple(got) == want, (form, h, w, kh, kw, sh, sw, dh, dw)


def test_output_size_matches_reference():
    for size, k, s, d, before, after in itertools.product([1, 2, 5, 16, 17], [1, 2, 3, 7], [1, 2, 3],
                                                          [1, 2], [0, 1, 3], [0, 2]):
        ref = output_hw((size, 1), (k, 1), (s, 1), ((before, after), (0, 0)), (d, 1))
        got = pp.output_size(size, k, s, d, before, after)
        if ref is None:
            # The contract for a kernel that does not fit is a ValueError at the operator; the helper
            # reports it as a non-positive size.
            assert got <= 0, (size, k, s, d, before, after)
        else:
            assert got == ref[0], (size, k, s, d, before, after)


@pytest.mark.parametrize("form", FORMS, ids=str)
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_every_operator_reports_the_reference_output_shape(form, stride):
    rng = rng_for("shapes", form, stride)
    x_shape = (2, 17, 8, 6)
    ohw = output_hw(x_shape[1:3], (3, 3), stride, form, 1)
    assert ohw is not None
    ops = {
        "Conv2D": (pyconv.Conv2D(rand(rng, 3, 3, 6, 4), stride=stride, padding=form), 4),
        "Conv2D-groups": (pyconv.Conv2D(rand(rng, 3, 3, 2, 9), stride=stride, padding=form, groups=3), 9),
        "DepthwiseConv2D": (pyconv.DepthwiseConv2D(rand(rng, 3, 3, 6, 2), stride=stride, padding=form), 12),
        "SeparableConv2D": (pyconv.SeparableConv2D(rand(rng, 3, 3, 6), rand(rng, 6, 5), stride=stride,
                                                   padding=form), 5),
    }
    for name, (op, cout) in ops.items():
        assert tuple(op.output_shape(x_shape)) == (2, *ohw, cout), name


def test_same_puts_the_odd_pixel_bottom_right():
    # All-ones 6x6 image, 3x3 all-ones kernel, stride 2, "same": pads are (0, 1) on both axes, so the
    # first window lies wholly inside (sum 9) and the last one hangs one row and column over (sum 4).
    # Pads (1, 0) would give the opposite corners.
    x = np.ones((1, 6, 6, 1), np.float32)
    w = np.ones((3, 3, 1, 1), np.float32)
    for strategy in ["direct", "im2col", "auto"]:
        y = pyconv.conv2d(x, w, stride=2, padding="same", strategy=strategy)[0, :, :, 0]
        np.testing.assert_array_equal(y, [[9, 9, 6], [9, 9, 6], [6, 6, 4]], err_msg=strategy)
    y = pyconv.depthwise_conv2d(x, w[..., 0], stride=2, padding="same")[0, :, :, 0]
    np.testing.assert_array_equal(y, [[9, 9, 6], [9, 9, 6], [6, 6, 4]])


def test_asymmetric_pads_land_where_asked():
    # 1x1 kernel of weight 1: the output is the image inside a zero frame of exactly the given widths.
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3, 1)
    w = np.ones((1, 1, 1, 1), np.float32)
    y = pyconv.conv2d(x, w, padding=((1, 2), (3, 0)))[0, :, :, 0]
    expected = np.zeros((5, 6), np.float32)
    expected[1:3, 3:6] = x[0, :, :, 0]
    np.testing.assert_array_equal(y, expected)
    yd = pyconv.depthwise_conv2d(x, w[..., 0], padding=((1, 2), (3, 0)))[0, :, :, 0]
    np.testing.assert_array_equal(yd, expected)


@pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd", "auto"])
def test_pads_larger_than_the_kernel_read_zero(strategy):
    rng = rng_for("big-pads", strategy)
    x = rand(rng, 1, 3, 4, 5)
    w = rand(rng, 3, 3, 5, 7)
    b = rand(rng, 7)
    pad = ((5, 4), (6, 3))
    y = pyconv.conv2d(x, w, b, padding=pad, strategy=strategy)
    assert y.shape == (1, 3 + 9 - 2, 4 + 9 - 2, 7)
    assert_close(y, conv2d_ref(x, w, b, padding=pad))
    # Windows entirely in the padding see only zeros: the output there is the bias, exactly.
    np.testing.assert_array_equal(y[0, 0, 0], b)
    np.testing.assert_array_equal(y[0, -1, -1], b)
    yd = pyconv.depthwise_conv2d(x, w[:, :, :, 0], b[:5], padding=pad)
    assert_close(yd, depthwise_conv2d_ref(x, w[:, :, :, 0], b[:5], padding=pad))
    np.testing.assert_array_equal(yd[0, 0, 0], b[:5])


@pytest.mark.parametrize("bad", ["full", "", "causal", -1, (1, -1), (-2, 0), ((0, -1), (0, 0)),
                                 ((0, 0), (0, -3)), (1, 2, 3), ((1, 2, 3), (0, 0)), ((1,), (1,))],
                         ids=str)
@pytest.mark.parametrize("api", ["conv2d", "depthwise_conv2d", "Conv2D", "SeparableConv2D"])
def test_bad_padding_is_a_value_error_naming_padding(bad, api):
    rng = rng_for("bad-padding")
    x = rand(rng, 1, 8, 8, 4)
    with pytest.raises(ValueError, match="padding"):
        if api == "conv2d":
            pyconv.conv2d(x, rand(rng, 3, 3, 4, 2), padding=bad)
        elif api == "depthwise_conv2d":
            pyconv.depthwise_conv2d(x, rand(rng, 3, 3, 4), padding=bad)
        elif api == "Conv2D":
            pyconv.Conv2D(rand(rng, 3, 3, 4, 2), padding=bad)(x)
        else:
            pyconv.SeparableConv2D(rand(rng, 3, 3, 4), rand(rng, 4, 2), padding=bad)(x)


@pytest.mark.parametrize("bad", [1.5, "1", None, (1.0, 2)], ids=str)
def test_non_integer_padding_is_rejected(bad):
    # Not fixed by the contract beyond "rejected": TypeError (a wrong type) or ValueError both qualify.
    rng = rng_for("float-padding")
    with pytest.raises((TypeError, ValueError), match="padding"):
        pyconv.conv2d(rand(rng, 1, 8, 8, 4), rand(rng, 3, 3, 4, 2), padding=bad)


@pytest.mark.parametrize("case", [
    dict(shape=(1, 4, 5, 3), k=(2, 3), s=1, d=1, pad="same", g=1),
    dict(shape=(2, 5, 3, 4), k=(3, 2), s=(2, 1), d=1, pad=((2, 0), (1, 3)), g=2),
    dict(shape=(1, 6, 6, 6), k=(2, 2), s=1, d=(2, 3), pad="valid", g=3),
    dict(shape=(1, 3, 7, 2), k=(3, 3), s=3, d=1, pad=(4, 1), g=1),
    dict(shape=(1, 5, 5, 4), k=(3, 3), s=2, d=2, pad="same", g=4),
], ids=["k2x3-same", "s2x1-asym-g2", "d2x3-g3", "pad-exceeds-k", "s2-d2-same-dw"])
def test_reference_agrees_with_loop_transcription(case):
    # The fast reference (tap-by-tap slicing) against the definition written as plain index loops, so
    # that a slicing slip in the oracle cannot pass for a kernel bug or hide one.
    rng = rng_for("ref-self-check", case["shape"])
    x = rand(rng, *case["shape"])
    cout = 2 * case["g"]
    w = rand(rng, *case["k"], case["shape"][3] // case["g"], cout)
    b = rand(rng, cout)
    kw = dict(stride=case["s"], padding=case["pad"], dilation=case["d"], groups=case["g"],
              activation="relu6")
    np.testing.assert_allclose(conv2d_ref(x, w, b, **kw), conv2d_ref_loops(x, w, b, **kw), rtol=1e-12,
                               atol=1e-12)
