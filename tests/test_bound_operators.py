"""Operators bound to their arrays (``op.bind``): each call computes from the arrays' current contents,
equal to the one-shot call and to the numpy reference, at any thread count; arrays a bound call could
only read through a converted copy are refused."""
from __future__ import annotations

import numpy as np
import pytest

import pyconv

from conftest import assert_close, rand, rng_for
from reference import (conv2d_ref, dense_ref, depthwise_conv2d_ref, pointwise_conv2d_ref,
                       separable_conv2d_ref)


def _operators(rng):
    """(name, operator, input shape, takes a residual, reference of (x, residual))."""
    w3 = rand(rng, 3, 3, 8, 16)
    wg = rand(rng, 3, 3, 4, 16)
    wd = rand(rng, 3, 3, 8, 1)
    wp = rand(rng, 8, 16)
    b = rand(rng, 16)
    return [
        ("conv2d", pyconv.Conv2D(w3, b, padding="same", activation="relu"), (2, 9, 7, 8), True,
         lambda x, r: np.maximum(conv2d_ref(x, w3, b, padding="same") + r, 0)),
        ("group conv2d", pyconv.Conv2D(wg, padding=1, stride=2, groups=2), (1, 11, 6, 8), True,
         lambda x, r: conv2d_ref(x, wg, padding=1, stride=2, groups=2) + r),
        ("winograd", pyconv.Conv2D(w3, padding="same", strategy="winograd"), (1, 14, 14, 8), True,
         lambda x, r: conv2d_ref(x, w3, padding="same") + r),
        ("depthwise", pyconv.DepthwiseConv2D(wd, padding="same", activation="relu6"), (1, 10, 9, 8), False,
         lambda x, r: np.clip(depthwise_conv2d_ref(x, wd, padding="same"), 0, 6)),
        ("pointwise", pyconv.PointwiseConv2D(wp, b), (3, 5, 4, 8), True,
         lambda x, r: pointwise_conv2d_ref(x, wp, b) + r),
        ("separable", pyconv.SeparableConv2D(wd, wp, padding="same"), (1, 8, 8, 8), True,
         lambda x, r: separable_conv2d_ref(x, wd, wp, padding="same") + r),
        ("dense", pyconv.Dense(wp, b), (5, 8), False, lambda x, r: dense_ref(x, wp, b)),
    ]


OPERATORS = [case[0] for case in _operators(np.random.default_rng(0))]


def _case(name):
    rng = rng_for("bound", name)
    return rng, next(case for case in _operators(rng) if case[0] == name)


@pytest.mark.parametrize("name", OPERATORS)
def test_each_call_reads_the_arrays_current_contents(name):
    rng, (_, op, shape, takes_residual, ref) = _case(name)
    x = rand(rng, *shape)
    out_shape = op.output_shape(shape)
    r = rand(rng, *out_shape) if takes_residual else None
    bound = op.bind(x, residual=r) if takes_residual else op.bind(x)
    assert isinstance(bound, pyconv.Bound) and bound.out.shape == out_shape
    for step in range(3):
        x[...] = rand(rng, *shape)
        if takes_residual:
            r[...] = rand(rng, *out_shape)
        want = ref(x, r if takes_residual else 0)
        one_shot = op(x, residual=r, threads=1) if takes_residual else op(x, threads=1)
        got = bound(threads=1)
        assert got is bound.out
        assert_close(got, want, rtol=1e-4)
        np.testing.assert_array_equal(got, one_shot, err_msg=f"{name}, step {step}: bound vs one-shot")
        for threads in (2, 3):
            np.testing.assert_array_equal(bound(threads=threads), one_shot, err_msg=f"{name}, {threads} threads")


@pytest.mark.parametrize("name", OPERATORS)
def test_a_given_out_is_written_in_place(name):
    rng, (_, op, shape, _, _) = _case(name)
    x = rand(rng, *shape)
    out = np.full(op.output_shape(shape), np.nan, np.float32)
    bound = op.bind(x, out=out)
    assert bound(threads=1) is out and bound.out is out
    np.testing.assert_array_equal(out, op(x, threads=1))


@pytest.mark.parametrize("name", OPERATORS)
@pytest.mark.parametrize("make, what", [
    (lambda x: x.astype(np.float64), "float64"),
    (lambda x: np.asfortranarray(x), "strides"),
    (lambda x: x.tolist(), "list"),
])
def test_arrays_it_would_have_to_copy_are_refused(name, make, what):
    rng, (_, op, shape, _, _) = _case(name)
    x = rand(rng, *shape)
    if what == "strides" and x.flags.c_contiguous and x.flags.f_contiguous:
        pytest.skip("a 1-element axis leaves the array both C- and F-contiguous")
    with pytest.raises(TypeError, match=r"bind reads x in place .* C-contiguous float32 array; got a"):
        op.bind(make(x))


def test_a_residual_it_would_have_to_copy_is_refused():
    rng, (_, op, shape, _, _) = _case("conv2d")
    x = rand(rng, *shape)
    r = rand(rng, *op.output_shape(shape)).astype(np.float64)
    with pytest.raises(TypeError, match="bind reads residual in place"):
        op.bind(x, residual=r)


def test_wrong_shapes_name_the_argument():
    rng, (_, op, shape, _, _) = _case("conv2d")
    x = rand(rng, *shape)
    with pytest.raises(ValueError, match="channels"):
        op.bind(rand(rng, 1, 9, 7, 5))
    with pytest.raises(ValueError, match="out"):
        op.bind(x, out=np.empty((1, 2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="residual"):
        op.bind(x, residual=rand(rng, 1, 2, 3, 4))
