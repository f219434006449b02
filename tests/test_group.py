"""Group convolution (pyconv.conv2d / Conv2D with ``groups``) against the float64 reference.

Covers: every group count that divides both channel counts, for channel pairs around the SIMD and tile
widths, through every strategy; that groups are isolated (a group's outputs ignore the other groups'
inputs); the output channel order ``o // (C_out // groups)``; groups = C_in = C_out equals depthwise
(with and without a multiplier); the 3x3 group sweep's bits at every thread count; every other
instruction-set level; exhaustive sweeps marked slow.
"""
import re

import numpy as np
import pytest

import pyconv
from conftest import LEVELS, assert_close, cases_param, pairwise, rand, rng_for
from reference import conv2d_ref, output_hw

# Around the SIMD widths, and for the AVX-512 narrow-group kernel (C_out/G in {1, 2, 4, 8, 16}, several
# groups per 16-lane vector): output channel counts that fill whole vectors and that leave a partial one.
CHANNEL_PAIRS = [(4, 4), (8, 4), (9, 6), (6, 3), (10, 10), (12, 18), (16, 32), (17, 34), (24, 48), (32, 32),
                 (34, 34), (30, 60), (40, 20), (65, 65), (96, 96)]
GEOMETRY = [
    dict(h=7, w=9, k=3, s=1, d=1, pad="same"),
    dict(h=15, w=6, k=3, s=2, d=1, pad="valid"),
    dict(h=17, w=17, k=5, s=1, d=2, pad=((2, 0), (1, 3))),
    dict(h=5, w=11, k=1, s=1, d=1, pad=0),
    dict(h=8, w=8, k=2, s=3, d=1, pad=(1, 2)),
    dict(h=12, w=3, k=7, s=1, d=1, pad="same"),
    dict(h=1, w=1, k=3, s=1, d=1, pad="same"),
]
ACTIVATIONS = [None, "relu", "relu6"]


def divisors(a, b):
    return [g for g in range(1, min(a, b) + 1) if a % g == 0 and b % g == 0]


def _group_cases(geometry):
    cases = []
    i = 0
    for cin, cout in CHANNEL_PAIRS:
        for g in divisors(cin, cout):
            cases.append(dict(cin=cin, cout=cout, g=g, **geometry[i % len(geometry)],
                              n=[1, 3][i // 2 % 2], t=[1, 2][i % 2], bias=bool(i // 3 % 2),
                              act=ACTIVATIONS[i % 3]))
            i += 1
    return cases


DEFAULT_CASES = _group_cases(GEOMETRY)
# Winograd serves 3x3 stride 1 dilation 1 only.
WINOGRAD_CASES = _group_cases([dict(h=7, w=9, k=3, s=1, d=1, pad="same"),
                               dict(h=10, w=13, k=3, s=1, d=1, pad="valid"),
                               dict(h=16, w=5, k=3, s=1, d=1, pad=((0, 2), (1, 1)))])


def check_group(case, strategy):
    rng = rng_for("group", strategy, sorted(case.items(), key=str))
    g, k = case["g"], case["k"]
    x = rand(rng, case["n"], case["h"], case["w"], case["cin"])
    w = rand(rng, k, k, case["cin"] // g, case["cout"])
    b = rand(rng, case["cout"]) if case["bias"] else None
    kw = dict(stride=case["s"], padding=case["pad"], dilation=case["d"], groups=g, activation=case["act"])
    if output_hw(x.shape[1:3], (k, k), case["s"], case["pad"], case["d"]) is None:
        with pytest.raises(ValueError, match=re.escape(str(x.shape))):
            pyconv.conv2d(x, w, b, strategy=strategy, threads=case["t"], **kw)
        return
    ref = conv2d_ref(x, w, b, **kw)
    y = pyconv.conv2d(x, w, b, strategy=strategy, threads=case["t"], **kw)
    assert_close(y, ref, what=f"groups={g} strategy={strategy}")
    op = pyconv.Conv2D(w, b, strategy=strategy, **kw)
    assert_close(op(x, threads=case["t"]), ref, what=f"Conv2D groups={g} strategy={strategy}")


@pytest.mark.parametrize("strategy", ["direct", "im2col", "auto"])
@cases_param(DEFAULT_CASES)
def test_groups_match_reference(strategy, case):
    check_group(case, strategy)


@cases_param(WINOGRAD_CASES)
def test_groups_winograd_match_reference(case):
    check_group(case, "winograd")


# Group shapes (C_in/G, C_out/G, G) of the AVX-512 narrow-group kernel (C_out/G divides 16, 16/(C_out/G)
# groups of C_in/G channels fit 32 lanes) and of the 16-wide GEMM panel for groups of <= 16 outputs,
# with group counts that fill the vectors exactly, partly, or several times.
NARROW = [(2, 1, 3), (2, 2, 8), (4, 2, 5), (2, 4, 12), (8, 4, 3), (4, 8, 6), (16, 16, 2), (3, 16, 4),
          (32, 16, 3), (1, 16, 5), (6, 6, 7), (12, 3, 4)]
NARROW_AXES = dict(shape=NARROW, h=[1, 2, 7, 15, 17], w=[1, 3, 8, 16], k=[1, 2, 3, 5], s=[1, 2, 3], d=[1, 2],
                   pad=["valid", "same", 1, ((0, 2), (1, 0))], n=[1, 3], t=[1, 2], bias=[False, True],
                   act=ACTIVATIONS)


def _narrow_case(c):
    cg, og, g = c["shape"]
    case = {k: v for k, v in c.items() if k != "shape"}
    return dict(cin=cg * g, cout=og * g, g=g, **case)


NARROW_CASES = [_narrow_case(c) for c in pairwise(NARROW_AXES, seed=21)]


@pytest.mark.parametrize("strategy", ["direct", "auto"])
@cases_param(NARROW_CASES)
def test_narrow_groups_match_reference(strategy, case):
    check_group(case, strategy)


@pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd", "auto"])
@pytest.mark.parametrize("cin, cout, g", [(8, 4, 2), (12, 18, 3), (16, 16, 4), (6, 6, 6)],
                         ids=lambda v: str(v))
def test_groups_are_isolated(strategy, cin, cout, g):
    # Perturbing one group's inputs changes that group's outputs and leaves every other group's
    # outputs bit-for-bit unchanged.
    rng = rng_for("isolation", strategy, cin, cout, g)
    x = rand(rng, 2, 9, 8, cin)
    w = rand(rng, 3, 3, cin // g, cout)
    b = rand(rng, cout)
    y = pyconv.conv2d(x, w, b, groups=g, padding="same", strategy=strategy)
    cg, og = cin // g, cout // g
    for victim in range(g):
        x2 = x.copy()
        x2[..., victim * cg:(victim + 1) * cg] = rand(rng, 2, 9, 8, cg)
        y2 = pyconv.conv2d(x2, w, b, groups=g, padding="same", strategy=strategy)
        for grp in range(g):
            sl = slice(grp * og, (grp + 1) * og)
            if grp == victim:
                assert not np.array_equal(y2[..., sl], y[..., sl]), f"group {grp} ignored its own inputs"
            else:
                np.testing.assert_array_equal(y2[..., sl], y[..., sl],
                                              err_msg=f"group {grp} changed when group {victim}'s inputs did")


def test_output_channel_order():
    # Output channel o belongs to group o // (C_out // groups): with a 1x1 kernel of ones and input
    # channel c holding the constant 10**c, each output is the sum of its group's constants.
    cin, cout, g = 6, 9, 3
    x = np.broadcast_to(10.0 ** np.arange(cin, dtype=np.float32), (1, 2, 2, cin)).copy()
    w = np.ones((1, 1, cin // g, cout), np.float32)
    y = pyconv.conv2d(x, w, groups=g)
    expected = [10.0 ** (2 * (o // 3)) + 10.0 ** (2 * (o // 3) + 1) for o in range(cout)]
    np.testing.assert_allclose(y[0, 1, 1], expected, rtol=1e-6)


@pytest.mark.parametrize("strategy", ["direct", "im2col", "auto"])
@pytest.mark.parametrize("c, m", [(1, 1), (8, 1), (17, 1), (32, 1), (5, 2), (16, 3)], ids=lambda v: str(v))
def test_groups_equal_channels_is_depthwise(strategy, c, m):
    # G = C_in, C_out = C_in * M: HWIO weights (K, K, 1, C*M) are the depthwise (K, K, C, M) weights
    # flattened, since output channel c*M + m is group c's m-th output.
    rng = rng_for("group-dw", strategy, c, m)
    x = rand(rng, 2, 10, 7, c)
    wd = rand(rng, 3, 3, c, m)
    b = rand(rng, c * m)
    y_dw = pyconv.depthwise_conv2d(x, wd, b, stride=2, padding="same", activation="relu")
    y_g = pyconv.conv2d(x, wd.reshape(3, 3, 1, c * m), b, stride=2, padding="same", groups=c,
                        activation="relu", strategy=strategy)
    ref = conv2d_ref(x, wd.reshape(3, 3, 1, c * m), b, stride=2, padding="same", groups=c, activation="relu")
    assert_close(y_dw, ref)
    assert_close(y_g, ref)


@pytest.mark.parametrize("strategy", ["direct", "im2col", "auto"])
@cases_param(DEFAULT_CASES[::2])
def test_other_levels(level, strategy, case):
    check_group(case, strategy)


@cases_param(WINOGRAD_CASES[::2])
def test_other_levels_winograd(level, case):
    check_group(case, "winograd")


# Group counts of a 3x3 64 -> 64 layer from wide groups to narrow ones (16 to 2 channels each), on images
# of several pixel blocks per group (each thread then walks a block's windows once for all groups), of
# one pixel, and strided past the kernel.
SWEEP_GEOMETRY = [dict(h=23, w=19, s=1, d=1, pad="same"), dict(h=21, w=17, s=1, d=2, pad=((2, 1), (0, 3))),
                  dict(h=1, w=1, s=1, d=1, pad="same"), dict(h=17, w=16, s=4, d=1, pad="valid")]


@pytest.mark.parametrize("g", [2, 4, 8, 16, 32])
@pytest.mark.parametrize("geom", SWEEP_GEOMETRY, ids=lambda d: f"{d['h']}x{d['w']}s{d['s']}d{d['d']}")
def test_group_sweep_thread_invariant(g, geom):
    # Every thread count gives the same bits, and they match the reference (bias, relu6, a residual).
    rng = rng_for("sweep", g, sorted(geom.items(), key=str))
    x = rand(rng, 2, geom["h"], geom["w"], 64)
    w = rand(rng, 3, 3, 64 // g, 64)
    b = rand(rng, 64)
    op = pyconv.Conv2D(w, b, stride=geom["s"], padding=geom["pad"], dilation=geom["d"], groups=g,
                       activation="relu6")
    ref = conv2d_ref(x, w, b, stride=geom["s"], padding=geom["pad"], dilation=geom["d"], groups=g,
                     activation="relu6")
    ys = [op(x, threads=t) for t in (1, 2, 3)]
    assert_close(ys[0], ref, what=f"groups={g}")
    for t, y in zip((2, 3), ys[1:]):
        np.testing.assert_array_equal(y, ys[0], err_msg=f"groups={g}: {t} threads differ from 1")
    res = rand(rng, *ref.shape)
    np.testing.assert_array_equal(op(x, residual=res, threads=2), op(x, residual=res, threads=1))


@pytest.mark.parametrize("g", [2, 8, 32])
def test_group_sweep_other_levels(level, g):
    test_group_sweep_thread_invariant(g, SWEEP_GEOMETRY[0])
    test_group_sweep_thread_invariant(g, SWEEP_GEOMETRY[1])


@pytest.mark.parametrize("cin, cout, g", [(16, 32, 8), (8, 4, 2), (24, 48, 3), (12, 12, 12)], ids=str)
def test_operator_survives_a_switch_of_level(cin, cout, g):
    # The same operator, run at one level, then another, then back: whatever it cached (per-shape
    # strategy, per-kernel packed weights) must stay valid at every level.
    rng = rng_for("switch", cin, cout, g)
    x = rand(rng, 2, 9, 11, cin)
    w = rand(rng, 3, 3, cin // g, cout)
    ref = conv2d_ref(x, w, padding="same", groups=g, activation="relu")
    op = pyconv.Conv2D(w, padding="same", groups=g, activation="relu")
    for level in LEVELS + LEVELS[::-1]:
        with pyconv.isa.use(level):
            assert_close(op(x, threads=2), ref, what=f"level {level}")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["direct", "im2col", "auto"])
@cases_param([c for i in range(len(GEOMETRY)) for c in _group_cases(GEOMETRY[i:] + GEOMETRY[:i])])
def test_slow_groups_every_geometry(strategy, case):
    check_group(case, strategy)


@pytest.mark.slow
@cases_param([c for i in range(3) for c in _group_cases([dict(h=7 + i, w=9, k=3, s=1, d=1, pad=p)
                                                          for p in ["same", "valid", 2]])])
def test_slow_groups_winograd(case):
    check_group(case, "winograd")
