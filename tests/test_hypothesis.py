"""Randomised shapes and parameters (hypothesis) for every convolution operator against the reference.

Small sizes, a few dozen examples per operator in the default run. Shapes whose kernel does not fit in
the padded input must raise ValueError; every other draw must match the reference. The data itself comes
from a drawn seed, so hypothesis shrinks the shape rather than the numbers.
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pyconv  # noqa: E402
from conftest import assert_close, rand  # noqa: E402
from reference import (conv2d_ref, dense_ref, depthwise_conv2d_ref, output_hw,  # noqa: E402
                       pointwise_conv2d_ref, separable_conv2d_ref)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)

activations = st.sampled_from([None, "relu", "relu6", "sigmoid", "hard_swish", "silu", "tanh",
                               {"function": "leaky_relu", "alpha": 0.2}, {"function": "clip", "min": -0.5, "max": 0.5},
                               {"function": "hard_sigmoid", "alpha": 1 / 6}])
small = st.integers(0, 3)
paddings = st.one_of(
    st.sampled_from(["valid", "same"]),
    small,
    st.tuples(small, small),
    st.tuples(st.tuples(small, small), st.tuples(small, small)),
)
pairs = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))
seeds = st.integers(0, 2**32 - 1)


def _pair(v):
    return (v, v) if isinstance(v, int) else v


@st.composite
def conv_cases(draw):
    g = draw(st.sampled_from([1, 1, 1, 2, 3, 4]))
    c = dict(n=draw(st.integers(1, 2)), h=draw(st.integers(1, 12)), w=draw(st.integers(1, 12)),
             cin=g * draw(st.integers(1, 9)), cout=g * draw(st.integers(1, 12)), g=g,
             kh=draw(st.integers(1, 5)), kw=draw(st.integers(1, 5)), stride=draw(pairs),
             dilation=draw(pairs), padding=draw(paddings), bias=draw(st.booleans()), act=draw(activations),
             threads=draw(st.sampled_from([1, 2])), seed=draw(seeds))
    winograd_ok = ((c["kh"], c["kw"]) == (3, 3) and _pair(c["stride"]) == (1, 1)
                   and _pair(c["dilation"]) == (1, 1))
    strategies = ["direct", "im2col", "auto"] + (["winograd"] if winograd_ok else [])
    c["strategy"] = draw(st.sampled_from(strategies))
    return c


@settings(max_examples=80, **SETTINGS)
@given(conv_cases())
def test_conv2d_random(c):
    check_conv2d_case(c)


@pytest.mark.slow
@settings(max_examples=2000, **SETTINGS)
@given(conv_cases())
def test_slow_conv2d_random(c):
    check_conv2d_case(c)


def check_conv2d_case(c):
    rng = np.random.default_rng(c["seed"])
    x = rand(rng, c["n"], c["h"], c["w"], c["cin"])
    w = rand(rng, c["kh"], c["kw"], c["cin"] // c["g"], c["cout"])
    b = rand(rng, c["cout"]) if c["bias"] else None
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["g"],
              activation=c["act"])
    if output_hw((c["h"], c["w"]), (c["kh"], c["kw"]), c["stride"], c["padding"], c["dilation"]) is None:
        with pytest.raises(ValueError):
            pyconv.conv2d(x, w, b, strategy=c["strategy"], threads=c["threads"], **kw)
        return
    ref = conv2d_ref(x, w, b, **kw)
    assert_close(pyconv.conv2d(x, w, b, strategy=c["strategy"], threads=c["threads"], **kw), ref,
                 what=str(c))


@st.composite
def depthwise_cases(draw):
    return dict(n=draw(st.integers(1, 2)), h=draw(st.integers(1, 14)), w=draw(st.integers(1, 14)),
                c=draw(st.integers(1, 40)), m=draw(st.integers(1, 3)), kh=draw(st.integers(1, 5)),
                kw=draw(st.integers(1, 5)), stride=draw(pairs), dilation=draw(pairs), padding=draw(paddings),
                bias=draw(st.booleans()), act=draw(activations), threads=draw(st.sampled_from([1, 2])),
                seed=draw(seeds))


@settings(max_examples=60, **SETTINGS)
@given(depthwise_cases())
def test_depthwise_random(c):
    check_depthwise_case(c)


@pytest.mark.slow
@settings(max_examples=1000, **SETTINGS)
@given(depthwise_cases())
def test_slow_depthwise_random(c):
    check_depthwise_case(c)


def check_depthwise_case(c):
    rng = np.random.default_rng(c["seed"])
    x = rand(rng, c["n"], c["h"], c["w"], c["c"])
    w = rand(rng, c["kh"], c["kw"], c["c"], c["m"])
    b = rand(rng, c["c"] * c["m"]) if c["bias"] else None
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], activation=c["act"])
    if output_hw((c["h"], c["w"]), (c["kh"], c["kw"]), c["stride"], c["padding"], c["dilation"]) is None:
        with pytest.raises(ValueError):
            pyconv.depthwise_conv2d(x, w, b, threads=c["threads"], **kw)
        return
    assert_close(pyconv.depthwise_conv2d(x, w, b, threads=c["threads"], **kw),
                 depthwise_conv2d_ref(x, w, b, **kw), what=str(c))


@settings(max_examples=50, **SETTINGS)
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), cin=st.integers(1, 70),
       cout=st.integers(1, 70), bias=st.booleans(), act=activations, threads=st.sampled_from([1, 2]),
       seed=seeds)
def test_pointwise_random(n, h, w, cin, cout, bias, act, threads, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, n, h, w, cin)
    wt = rand(rng, cin, cout)
    b = rand(rng, cout) if bias else None
    assert_close(pyconv.pointwise_conv2d(x, wt, b, activation=act, threads=threads),
                 pointwise_conv2d_ref(x, wt, b, activation=act))


@settings(max_examples=40, **SETTINGS)
@given(n=st.integers(1, 2), h=st.integers(1, 10), w=st.integers(1, 10), c=st.integers(1, 20),
       m=st.integers(1, 2), cout=st.integers(1, 40), k=st.integers(1, 4), stride=pairs, dilation=pairs,
       padding=paddings, bd=st.booleans(), bp=st.booleans(), dact=activations, act=activations,
       seed=seeds)
def test_separable_random(n, h, w, c, m, cout, k, stride, dilation, padding, bd, bp, dact, act, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, n, h, w, c)
    wd = rand(rng, k, k, c, m)
    wp = rand(rng, c * m, cout)
    b_d = rand(rng, c * m) if bd else None
    b_p = rand(rng, cout) if bp else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, depthwise_activation=dact, activation=act)
    if output_hw((h, w), (k, k), stride, padding, dilation) is None:
        with pytest.raises(ValueError):
            pyconv.separable_conv2d(x, wd, wp, b_d, b_p, **kw)
        return
    assert_close(pyconv.separable_conv2d(x, wd, wp, b_d, b_p, **kw),
                 separable_conv2d_ref(x, wd, wp, b_d, b_p, **kw))


@settings(max_examples=40, **SETTINGS)
@given(n=st.integers(1, 20), fin=st.integers(1, 300), fout=st.integers(1, 80), bias=st.booleans(),
       act=activations, threads=st.sampled_from([1, 2]), seed=seeds)
def test_dense_random(n, fin, fout, bias, act, threads, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, n, fin)
    w = rand(rng, fin, fout)
    b = rand(rng, fout) if bias else None
    assert_close(pyconv.dense(x, w, b, activation=act, threads=threads), dense_ref(x, w, b, activation=act))
