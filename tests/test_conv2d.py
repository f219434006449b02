"""pyconv.conv2d / pyconv.Conv2D against the float64 reference, strategy by strategy.

Covers: "direct", "im2col" and "auto" on a pairwise subset of (H, W, kernel, stride, dilation, padding
form, C_in, C_out, batch, threads, bias, activation); "winograd" on the shapes it serves (3x3, stride 1,
dilation 1) and ValueError on those it does not; kernels larger than the padded input; rectangular
kernels and per-axis stride/dilation; the operator protocol (prepare once, call many, ``out=``,
``output_shape``, ``strategy_for``) and ``explain_conv2d``; every other instruction-set level on a representative
subset. The exhaustive sweeps are marked slow.
"""
import re

import numpy as np
import pytest

import pyconv
from conftest import assert_close, cases_param, pairwise, product, rand, rng_for
from reference import conv2d_ref, output_hw

GENERAL = ["direct", "im2col", "auto"]

SIZES = [1, 2, 7, 15, 17, 33]
KERNELS = [1, 2, 3, 5, 7]
# Channel counts below, at and just above the likely SIMD widths and GEMM tile sizes.
C_INS = [1, 3, 8, 16, 17, 33, 65]
C_OUTS = [1, 5, 16, 31, 32, 48, 49]
PADDINGS = ["valid", "same", 1, (2, 0), ((0, 2), (1, 0)), ((3, 1), (0, 4))]
ACTIVATIONS = [None, "relu", "relu6"]

AXES = dict(h=SIZES, w=SIZES, k=KERNELS, s=[1, 2, 3], d=[1, 2], pad=PADDINGS, cin=C_INS, cout=C_OUTS,
            n=[1, 3], t=[1, 2], bias=[False, True], act=ACTIVATIONS)
# Two independent pairwise covers: each hits every pair of values once, together they also vary the
# combinations around each pair.
DEFAULT_CASES = pairwise(AXES, seed=2) + pairwise(AXES, seed=20)

WINOGRAD_AXES = dict(h=SIZES, w=SIZES, pad=PADDINGS, cin=C_INS, cout=C_OUTS, n=[1, 3], t=[1, 2],
                     bias=[False, True], act=ACTIVATIONS)
WINOGRAD_CASES = pairwise(WINOGRAD_AXES, seed=3)


def make_inputs(case, *key):
    rng = rng_for("conv2d", *key, sorted(case.items(), key=str))
    k = case.get("k", 3)
    kh, kw = (k, k) if isinstance(k, int) else k
    g = case.get("g", 1)
    x = rand(rng, case["n"], case["h"], case["w"], case["cin"])
    w = rand(rng, kh, kw, case["cin"] // g, case["cout"])
    b = rand(rng, case["cout"]) if case["bias"] else None
    return x, w, b


def check_conv2d(case, strategy):
    """Run one case through both the functional API and the operator, compare with the reference;
    a kernel that does not fit in the padded input must be a ValueError from both."""
    x, w, b = make_inputs(case, strategy)
    kw = dict(stride=case.get("s", 1), padding=case["pad"], dilation=case.get("d", 1),
              groups=case.get("g", 1), activation=case["act"])
    fits = output_hw(x.shape[1:3], w.shape[:2], kw["stride"], kw["padding"], kw["dilation"]) is not None
    if not fits:
        with pytest.raises(ValueError, match=re.escape(str(x.shape))):
            pyconv.conv2d(x, w, b, strategy=strategy, threads=case["t"], **kw)
        op = pyconv.Conv2D(w, b, strategy=strategy, **kw)
        with pytest.raises(ValueError, match=re.escape(str(x.shape))):
            op(x, threads=case["t"])
        return
    ref = conv2d_ref(x, w, b, **kw)
    y = pyconv.conv2d(x, w, b, strategy=strategy, threads=case["t"], **kw)
    assert_close(y, ref, what=f"conv2d strategy={strategy}")
    op = pyconv.Conv2D(w, b, strategy=strategy, **kw)
    assert tuple(op.output_shape(x.shape)) == ref.shape
    assert_close(op(x, threads=case["t"]), ref, what=f"Conv2D strategy={strategy}")


@pytest.mark.parametrize("strategy", GENERAL)
@cases_param(DEFAULT_CASES)
def test_general_strategies_match_reference(strategy, case):
    check_conv2d(case, strategy)


@pytest.mark.parametrize("strategy", ["winograd", "auto"])
@cases_param(WINOGRAD_CASES)
def test_winograd_shapes_match_reference(strategy, case):
    check_conv2d(dict(case, k=3, s=1, d=1), strategy)


@pytest.mark.parametrize("k, s, d", [(1, 1, 1), (2, 1, 1), (5, 1, 1), (7, 1, 1), (3, 2, 1), (3, 3, 1),
                                     (3, 1, 2), ((3, 1), 1, 1), ((1, 3), 1, 1)],
                         ids=lambda v: str(v).replace(" ", ""))
def test_winograd_rejects_shapes_it_cannot_serve(k, s, d):
    # Contract: a strategy forced onto a shape it cannot serve is a ValueError, never a silent
    # fallback or garbage.
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = rng_for("winograd-reject", k, s, d)
    x = rand(rng, 1, 12, 12, 4)
    w = rand(rng, kh, kw, 4, 8)
    with pytest.raises(ValueError, match="(?i)winograd|strategy"):
        pyconv.conv2d(x, w, stride=s, dilation=d, padding="same", strategy="winograd")
    with pytest.raises(ValueError, match="(?i)winograd|strategy"):
        op = pyconv.Conv2D(w, stride=s, dilation=d, padding="same", strategy="winograd")
        op(x)


def test_unknown_strategy_is_rejected():
    rng = rng_for("unknown-strategy")
    x, w = rand(rng, 1, 5, 5, 3), rand(rng, 3, 3, 3, 4)
    with pytest.raises(ValueError, match="strategy"):
        pyconv.conv2d(x, w, strategy="fft")


@pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd", "auto"])
@pytest.mark.parametrize("hw, k, padding", [
    ((2, 2), 3, "valid"),
    ((1, 9), 2, "valid"),
    ((9, 1), (1, 2), ((0, 0), (0, 0))),
    ((4, 4), 7, 1),
    ((3, 3), 3, ((0, 0), (0, 0))),
], ids=["2x2-k3", "1x9-k2", "9x1-k1x2", "4x4-k7-pad1", "3x3-k3-explicit0"])
def test_kernel_larger_than_padded_input_raises(strategy, hw, k, padding):
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = rng_for("too-large", strategy, hw, k)
    x = rand(rng, 1, *hw, 2)
    w = rand(rng, kh, kw, 2, 3)
    fits = output_hw(hw, (kh, kw), 1, padding, 1) is not None
    if fits:
        # The last id is the boundary that does fit: a 3x3 kernel on a 3x3 image gives one pixel.
        if strategy == "winograd" and (kh, kw) != (3, 3):
            pytest.skip("winograd serves 3x3 only")
        y = pyconv.conv2d(x, w, padding=padding, strategy=strategy)
        assert_close(y, conv2d_ref(x, w, padding=padding))
        return
    with pytest.raises(ValueError):
        pyconv.conv2d(x, w, padding=padding, strategy=strategy)


@pytest.mark.parametrize("strategy", ["direct", "im2col", "auto"])
@pytest.mark.parametrize("k, s, d, padding", [
    ((1, 3), 1, 1, "same"),
    ((3, 1), 2, 1, "same"),
    ((5, 2), 1, 2, ((2, 1), (0, 3))),
    ((2, 5), (2, 1), 1, "valid"),
    ((3, 3), (1, 3), (2, 1), "same"),
    ((3, 3), 2, (1, 2), (1, 2)),
], ids=["k1x3", "k3x1-s2", "k5x2-d2-asym", "k2x5-s2x1", "s1x3-d2x1", "s2-d1x2-pad1x2"])
def test_rectangular_kernels_and_per_axis_params(strategy, k, s, d, padding):
    rng = rng_for("rect", strategy, k, s, d, padding)
    x = rand(rng, 2, 13, 11, 5)
    w = rand(rng, *k, 5, 7)
    b = rand(rng, 7)
    ref = conv2d_ref(x, w, b, stride=s, dilation=d, padding=padding)
    y = pyconv.conv2d(x, w, b, stride=s, dilation=d, padding=padding, strategy=strategy)
    assert_close(y, ref)


# Kernel rows of KW*C floats on either side of 96, where the direct kernel switches to reading a whole
# kernel row as one contiguous tap (copying only the windows that hang over the left/right edge).
SHORT_ROWS = [(32, 3), (33, 3), (48, 2), (49, 2), (19, 5), (20, 5), (13, 7), (14, 7), (96, 1), (97, 1),
              (3, 7)]


@pytest.mark.parametrize("strategy", ["direct", "auto"])
@pytest.mark.parametrize("cin, k", SHORT_ROWS, ids=[f"c{c}-k{k}" for c, k in SHORT_ROWS])
@pytest.mark.parametrize("w, s, padding", [(17, 1, "same"), (5, 2, "same"), (4, 1, ((1, 0), (6, 5))),
                                           (9, 3, "valid"), (2, 1, (0, 3))],
                         ids=["w17-same", "w5-s2-same", "w4-pads-exceed", "w9-s3-valid", "w2-pad3"])
def test_short_kernel_rows(strategy, cin, k, w, s, padding):
    rng = rng_for("short-rows", strategy, cin, k, w, s, padding)
    x = rand(rng, 2, 6, w, cin)
    wt = rand(rng, k, k, cin, 20)
    b = rand(rng, 20)
    kw = dict(stride=s, padding=padding, activation="relu")
    if output_hw((6, w), (k, k), s, padding, 1) is None:
        with pytest.raises(ValueError, match=re.escape(str(x.shape))):
            pyconv.conv2d(x, wt, b, strategy=strategy, **kw)
        return
    y = pyconv.conv2d(x, wt, b, strategy=strategy, threads=2, **kw)
    assert_close(y, conv2d_ref(x, wt, b, **kw))


@pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd", "auto"])
@pytest.mark.parametrize("cin, cout, groups", [(300, 33, 1), (256, 320, 1), (520, 40, 2), (192, 200, 1),
                                               (96, 16, 1), (130, 17, 1), (1100, 40, 1)],
                         ids=lambda v: str(v))
def test_wide_layers(strategy, cin, cout, groups):
    # K past the 512-deep K block, over several taps and within a single tap (1100 channels: a tap's
    # channels split across three blocks), and C_out around the 16/32-wide panels.
    rng = rng_for("wide", strategy, cin, cout, groups)
    x = rand(rng, 2, 6, 7, cin)
    w = rand(rng, 3, 3, cin // groups, cout)
    b = rand(rng, cout)
    y = pyconv.conv2d(x, w, b, padding="same", groups=groups, activation="relu", strategy=strategy, threads=2)
    assert_close(y, conv2d_ref(x, w, b, padding="same", groups=groups, activation="relu"))


class TestOperator:
    """The prepared operator: packed once, called many times."""

    def setup_method(self):
        rng = rng_for("operator")
        self.x = rand(rng, 2, 9, 10, 6)
        self.w = rand(rng, 3, 3, 6, 20)
        self.b = rand(rng, 20)

    @pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd", "auto"])
    def test_calling_twice_gives_identical_results(self, strategy):
        op = pyconv.Conv2D(self.w, self.b, padding="same", activation="relu", strategy=strategy)
        y1 = op(self.x)
        y2 = op(self.x)
        np.testing.assert_array_equal(y1, y2)
        assert y1 is not y2
        assert_close(y1, conv2d_ref(self.x, self.w, self.b, padding="same", activation="relu"))

    @pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd", "auto"])
    def test_one_operator_many_input_shapes(self, strategy):
        # Whatever the operator caches (packed weights, per-shape plans, scratch), a call must not
        # depend on the shapes of earlier calls: interleave sizes, batch counts and a layer big enough
        # for "auto" to change its mind between shapes.
        rng = rng_for("many-shapes", strategy)
        w = rand(rng, 3, 3, 192, 200)
        b = rand(rng, 200)
        op = pyconv.Conv2D(w, b, padding="same", activation="relu6", strategy=strategy)
        shapes = [(1, 16, 16, 192), (2, 3, 5, 192), (1, 1, 1, 192), (1, 16, 16, 192), (3, 7, 2, 192)]
        xs = [rand(rng, *s) for s in shapes]
        first = [op(x) for x in xs]
        picked = {op.strategy_for(s) for s in shapes}
        if strategy != "auto":
            assert picked == {strategy}
        for x, y in zip(xs[::-1], first[::-1]):
            np.testing.assert_array_equal(op(x), y)
        for x, y in zip(xs, first):
            assert_close(y, conv2d_ref(x, w, b, padding="same", activation="relu6"))

    def test_weights_are_packed_at_construction(self):
        # Mutating the caller's arrays after construction must not change the operator: the contract
        # says weights are packed once, so the operator owns its copy.
        w, b = self.w.copy(), self.b.copy()
        op = pyconv.Conv2D(w, b, padding="same")
        expected = op(self.x)
        w[:] = 0
        b[:] = 0
        np.testing.assert_array_equal(op(self.x), expected)

    @pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd"])
    def test_out_is_filled_and_returned(self, strategy):
        op = pyconv.Conv2D(self.w, self.b, padding="same", strategy=strategy)
        out = np.full(op.output_shape(self.x.shape), np.nan, dtype=np.float32)
        y = op(self.x, out=out)
        assert y is out
        assert_close(out, conv2d_ref(self.x, self.w, self.b, padding="same"))

    def test_functional_out(self):
        out = np.empty((2, 7, 8, 20), dtype=np.float32)
        y = pyconv.conv2d(self.x, self.w, self.b, out=out)
        assert y is out
        assert_close(out, conv2d_ref(self.x, self.w, self.b))

    @pytest.mark.parametrize("bad, exc", [
        (lambda s: np.empty(s[:-1] + (s[-1] + 1,), np.float32), ValueError),
        (lambda s: np.empty((s[0] + 1,) + s[1:], np.float32), ValueError),
        (lambda s: np.empty(s[1:], np.float32), ValueError),
        (lambda s: np.empty(s, np.float64), TypeError),
        (lambda s: np.empty(s, np.int32), TypeError),
        # Non-contiguous: the contract allows either error type, but never a silent copy.
        (lambda s: np.empty(s[:-1] + (2 * s[-1],), np.float32)[..., ::2], (ValueError, TypeError)),
        (lambda s: np.empty(s[::-1], np.float32).transpose(3, 2, 1, 0), (ValueError, TypeError)),
        (lambda s: [[0.0]], TypeError),
    ], ids=["channels", "batch", "rank", "float64", "int32", "strided", "transposed", "list"])
    def test_wrong_out_is_rejected(self, bad, exc):
        op = pyconv.Conv2D(self.w, self.b, padding="same")
        out = bad(tuple(op.output_shape(self.x.shape)))
        with pytest.raises(exc, match="out"):
            op(self.x, out=out)

    def test_output_shape(self):
        op = pyconv.Conv2D(self.w, stride=2, padding="same", dilation=1)
        assert tuple(op.output_shape((3, 9, 10, 6))) == (3, 5, 5, 20)
        op = pyconv.Conv2D(self.w, stride=1, padding="valid", dilation=2)
        assert tuple(op.output_shape((1, 9, 10, 6))) == (1, 5, 6, 20)
        op = pyconv.Conv2D(self.w, padding=((1, 0), (3, 2)))
        assert tuple(op.output_shape((1, 9, 10, 6))) == (1, 8, 13, 20)

    def test_explain_names_the_strategy_auto_picks(self):
        for shape, kw in [((1, 56, 56, 6), dict(padding="same")),
                          ((2, 7, 7, 6), dict(stride=2, padding="same")),
                          ((1, 15, 15, 6), dict(dilation=2))]:
            op = pyconv.Conv2D(self.w, **kw)
            picked = op.strategy_for(shape)
            assert isinstance(picked, str) and picked
            assert picked != "auto"
            for x_arg, w_arg in [(shape, self.w.shape), (np.zeros(shape, np.float32), self.w)]:
                text = pyconv.explain_conv2d(x_arg, w_arg, **kw)
                assert isinstance(text, str)
                assert picked in text, (picked, text)
            # The name is a real strategy: forcing it reproduces "auto" bit for bit.
            x = rand(rng_for("explain", shape), *shape)
            forced = pyconv.Conv2D(self.w, strategy=picked, **kw)
            np.testing.assert_array_equal(forced(x), op(x))

    @pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd"])
    def test_strategy_for_reports_a_forced_strategy(self, strategy):
        op = pyconv.Conv2D(self.w, padding="same", strategy=strategy)
        assert op.strategy_for(self.x.shape) == strategy

    def test_auto_never_picks_winograd_where_it_cannot_serve(self):
        op = pyconv.Conv2D(self.w, stride=2, padding="same")
        assert op.strategy_for((1, 64, 64, 6)) != "winograd"
        op = pyconv.Conv2D(self.w, dilation=2, padding="same")
        assert op.strategy_for((1, 64, 64, 6)) != "winograd"


@pytest.mark.parametrize("strategy", ["direct", "im2col", "auto"])
@cases_param(DEFAULT_CASES[::2])
def test_other_levels_general(level, strategy, case):
    check_conv2d(case, strategy)


@pytest.mark.parametrize("strategy", ["winograd"])
@cases_param(WINOGRAD_CASES)
def test_other_levels_winograd(level, strategy, case):
    check_conv2d(dict(case, k=3, s=1, d=1), strategy)


# ---- exhaustive sweeps (pytest -m slow) ------------------------------------------------------------

def _cycle(lst, i):
    return lst[i % len(lst)]


def _geometry_cases():
    # Every geometry combination; the channel and epilogue axes cycle along so that all their values
    # still appear, each against many geometries.
    cases = product(dict(h=SIZES, w=SIZES, k=KERNELS, s=[1, 2, 3], d=[1, 2], pad=PADDINGS))
    for i, c in enumerate(cases):
        # Small channel counts keep 19k cases affordable; the channel sweep below covers the wide ones.
        c.update(cin=_cycle([1, 3, 8, 17], i), cout=_cycle([1, 5, 16, 33], i // 4), n=_cycle([1, 2], i // 3),
                 t=_cycle([1, 2], i // 5), bias=_cycle([False, True], i // 2), act=_cycle(ACTIVATIONS, i))
    return cases


def _channel_cases():
    cases = product(dict(cin=C_INS, cout=C_OUTS, k=[1, 2, 3, 5], n=[1, 3], bias=[False, True],
                         act=ACTIVATIONS))
    for i, c in enumerate(cases):
        c.update(h=_cycle([7, 9, 15], i), w=_cycle([11, 6, 17], i // 3), s=_cycle([1, 2], i // 2),
                 d=1, pad=_cycle(PADDINGS, i), t=_cycle([1, 2], i // 5))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("strategy", GENERAL)
@cases_param(_geometry_cases())
def test_slow_geometry_sweep(strategy, case):
    check_conv2d(case, strategy)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", GENERAL)
@cases_param(_channel_cases())
def test_slow_channel_sweep(strategy, case):
    check_conv2d(case, strategy)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["winograd", "auto"])
@cases_param(product(dict(h=SIZES, w=SIZES, pad=PADDINGS, cin=[1, 8, 17], cout=[5, 16, 49],
                          n=[1], t=[2], bias=[True], act=["relu6"])))
def test_slow_winograd_sweep(strategy, case):
    check_conv2d(dict(case, k=3, s=1, d=1), strategy)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd"])
@cases_param(pairwise(dict(AXES, t=[1]), seed=11))
def test_slow_other_levels_sweep(level, strategy, case):
    if strategy == "winograd":
        case = dict(case, k=3, s=1, d=1)
    check_conv2d(case, strategy)
