"""Kernel plans (``_kernels.direct_plan``, ``separable_plan``, ``few_channels_plan``, ``depthwise_plan``,
``narrow_groups_plan``): arguments checked once, then ``run(threads)`` on the bound arrays' current
contents. A plan must give what the one-shot kernel gives at every thread count, see new input contents,
keep its arrays' memory alive, and do nothing on an empty batch; the separable plan's two-step path (large
weights, small image) keeps its buffer.
"""
from __future__ import annotations

import gc

import numpy as np
import pytest

from pyconv import _kernels
from pyconv.memory import aligned_empty
from pyconv.packing import pack_channel_rows, pack_gemm_weights, pack_narrow_group_weights
from reference import conv2d_ref


def _pointwise_case(n=1, h=7, c=48, co=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, h, c)).astype(np.float32)
    w = rng.standard_normal((1, 1, c, co)).astype(np.float32)
    b = rng.standard_normal(co).astype(np.float32)
    return x, pack_gemm_weights(w, 1), b, w.reshape(c, co)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_direct_plan_matches_the_one_shot_kernel_and_follows_new_inputs(threads):
    x, packed, b, w = _pointwise_case()
    y = aligned_empty((1, 7, 7, 40))
    plan = _kernels.direct_plan(x, packed, b, y, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1)
    want = np.empty_like(y)
    for step in range(2):
        x[...] = np.random.default_rng(step + 10).standard_normal(x.shape)
        plan.run(threads)
        _kernels.conv2d_direct(x, packed, b, want, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1)
        np.testing.assert_array_equal(y, want)
        np.testing.assert_allclose(y, np.maximum(x @ w + b, 0), rtol=1e-4, atol=1e-4)


def test_a_plan_keeps_its_arrays_alive():
    x, packed, b, w = _pointwise_case(seed=3)
    expected = np.maximum(x @ w + b, 0)
    y = aligned_empty((1, 7, 7, 40))
    packed_copy = aligned_empty(packed.shape)
    packed_copy[...] = packed
    plan = _kernels.direct_plan(x.copy(), packed_copy, b.copy(), y, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1)
    del packed, packed_copy, b
    gc.collect()
    np.empty(1 << 20, np.float32).fill(np.nan)  # reuse freed memory, if any were freed
    plan.run(2)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_plans_of_an_empty_batch_run_and_do_nothing():
    x, packed, b, _ = _pointwise_case(n=0)
    y = aligned_empty((0, 7, 7, 40))
    _kernels.direct_plan(x, packed, b, y, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0).run(2)
    wd = np.ones((9, 48), np.float32)
    _kernels.separable_plan(x, wd, None, packed, b, y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0).run(2)


@pytest.mark.parametrize("h, c, co", [(7, 1024, 640), (14, 64, 48)], ids=["two-step", "fused"])
def test_separable_plan_matches_the_one_shot_kernel(h, c, co):
    """7x7x1024->640 has 2.5 MB of pointwise weights: at 2 threads it runs its two steps apart."""
    rng = np.random.default_rng(h)
    x = rng.standard_normal((1, h, h, c)).astype(np.float32)
    wd = rng.standard_normal((9, c)).astype(np.float32)
    packed = pack_gemm_weights(rng.standard_normal((1, 1, c, co)).astype(np.float32) * 0.05, 1)
    y = aligned_empty((1, h, h, co))
    plan = _kernels.separable_plan(x, wd, None, packed, None, y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2)
    want = np.empty_like(y)
    for threads in (2, 1, 2):
        y.fill(np.nan)
        plan.run(threads)
        _kernels.separable_conv2d(x, wd, None, packed, None, want, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2, 1)
        np.testing.assert_array_equal(y, want)


def test_misaligned_packed_weights_are_refused_not_crashed_on():
    """The tiles load weights with aligned vector loads; a plain copy of packed weights may sit anywhere."""
    x, packed, b, _ = _pointwise_case()
    shifted = np.empty(packed.size + 16, np.float32)
    start = next(i for i in range(1, 16) if shifted[i:].ctypes.data % 64)
    misaligned = shifted[start:start + packed.size].reshape(packed.shape)
    misaligned[...] = packed
    y = aligned_empty((1, 7, 7, 40))
    with pytest.raises(ValueError, match="64-byte boundary"):
        _kernels.direct_plan(x, misaligned, b, y, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="64-byte boundary"):
        _kernels.separable_plan(x, np.ones((9, 48), np.float32), None, misaligned, None, y, 3, 3, 1, 1, 1, 1,
                                1, 1, 0, 0)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("channels_first", [False, True])
def test_few_channel_plan_matches_the_one_shot_kernel_and_follows_new_inputs(threads, channels_first):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 3, 3, 20)).astype(np.float32)
    packed = pack_channel_rows(w)
    b = rng.standard_normal(20).astype(np.float32)
    x = aligned_empty((2, 3, 13, 11) if channels_first else (2, 13, 11, 3))
    y, want = aligned_empty((2, 7, 6, 20)), aligned_empty((2, 7, 6, 20))
    plan = _kernels.few_channels_plan(x, packed, b, y, 3, 3, 2, 2, 1, 1, 1, 1, 2, channels_first)
    for step in range(2):
        x[...] = rng.standard_normal(x.shape)
        plan.run(threads)
        _kernels.conv2d_few_channels(x, packed, b, want, 3, 3, 2, 2, 1, 1, 1, 1, 2, 1, channels_first)
        np.testing.assert_array_equal(y, want)
        nhwc = x.transpose(0, 2, 3, 1) if channels_first else x
        np.testing.assert_allclose(y, np.clip(conv2d_ref(nhwc, w, b, stride=2, padding=((1, 1), (1, 1))), 0, 6),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_depthwise_plan_matches_the_one_shot_kernel_and_follows_new_inputs(threads):
    rng = np.random.default_rng(6)
    w = rng.standard_normal((9, 40)).astype(np.float32)
    x = aligned_empty((1, 9, 10, 40))
    y, want = aligned_empty((1, 9, 10, 40)), aligned_empty((1, 9, 10, 40))
    plan = _kernels.depthwise_plan(x, w, None, y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2)
    for step in range(2):
        x[...] = rng.standard_normal(x.shape)
        plan.run(threads)
        _kernels.depthwise_conv2d(x, w, None, want, 3, 3, 1, 1, 1, 1, 1, 1, 1, threads, 2)
        np.testing.assert_array_equal(y, want)
        ref = conv2d_ref(np.clip(x, 0, 6), w.reshape(3, 3, 1, 40), padding="same", groups=40)
        np.testing.assert_allclose(y, np.maximum(ref, 0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_narrow_group_plan_matches_the_one_shot_kernel_and_follows_new_inputs(threads):
    if not _kernels.narrow_groups_supported(2, 4):
        pytest.skip("no narrow-group kernel at this level")
    rng = np.random.default_rng(7)
    w = rng.standard_normal((3, 3, 2, 32)).astype(np.float32)  # 8 groups of 2 -> 4
    packed, idx = pack_narrow_group_weights(w, 8)
    x = aligned_empty((1, 8, 9, 16))
    y, want = aligned_empty((1, 8, 9, 32)), aligned_empty((1, 8, 9, 32))
    plan = _kernels.narrow_groups_plan(x, packed, idx, None, y, 3, 3, 1, 1, 1, 1, 1, 1, 8, 0)
    for step in range(2):
        x[...] = rng.standard_normal(x.shape)
        plan.run(threads)
        _kernels.conv2d_narrow_groups(x, packed, idx, None, want, 3, 3, 1, 1, 1, 1, 1, 1, 8, 0, threads)
        np.testing.assert_array_equal(y, want)
        np.testing.assert_allclose(y, conv2d_ref(x, w, padding="same", groups=8), rtol=1e-4, atol=1e-4)
