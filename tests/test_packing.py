"""Weight packings and their inverses: every packing an operator may hold alone gives the HWIO weights
back exactly (``unpack_*``), so an operator keeps one packed copy and no other; an operator built at
one instruction-set level and run at another derives the other packing from it and stays correct."""
from __future__ import annotations

import numpy as np
import pytest

import pyconv
from pyconv import packing
from reference import conv2d_ref
from conftest import assert_close, rand, rng_for

# (KH, KW, C_in/G, C_out), G: wide and narrow panels, a narrow last panel, one panel, many groups.
SHAPES = [((3, 3, 4, 40), 1), ((1, 1, 7, 80), 1), ((3, 3, 2, 6), 3), ((5, 5, 1, 12), 12),
          ((3, 3, 8, 24), 2), ((1, 1, 32, 64), 1), ((3, 3, 16, 17), 1), ((3, 3, 3, 200), 1),
          ((2, 2, 3, 100), 1), ((1, 1, 5, 48), 1), ((7, 7, 3, 1), 1), ((3, 3, 4, 96), 4)]


@pytest.mark.parametrize("shape, groups", SHAPES)
def test_every_packing_has_an_exact_inverse(shape, groups):
    w = rand(rng_for("unpack", shape, groups), *shape)
    assert np.array_equal(packing.unpack_gemm_weights(packing.pack_gemm_weights(w, groups), shape, groups), w)
    assert np.array_equal(packing.unpack_narrow_group_weights(
        packing.pack_narrow_group_weights(w, groups), shape, groups), w)
    if groups == 1:
        assert np.array_equal(packing.unpack_channel_rows(packing.pack_channel_rows(w), shape), w)


@pytest.mark.parametrize("shape, groups", SHAPES)
def test_operators_give_back_the_weights_they_were_given(shape, groups):
    w = rand(rng_for("op.w", shape, groups), *shape)
    op = pyconv.Conv2D(w, groups=groups)
    assert np.array_equal(op.w, w)
    w2 = w[0, 0].reshape(shape[2], shape[3])
    assert np.array_equal(pyconv.PointwiseConv2D(w2).w, w2)
    assert np.array_equal(pyconv.Dense(w2).w, w2)
    dw = rand(rng_for("dw", shape), shape[0], shape[1], shape[2], 2)
    assert np.array_equal(pyconv.DepthwiseConv2D(dw).w, dw)


def test_a_convolution_holds_one_packed_copy_of_its_weights():
    w = rand(rng_for("held"), 3, 3, 64, 64)
    op = pyconv.Conv2D(w, padding="same")
    op(np.zeros((1, 8, 8, 64), np.float32))
    assert len(op._packed) == 1 and op._original is None
    assert w.nbytes <= op.nbytes <= w.nbytes + 64 * 4 + 4096


@pytest.mark.parametrize("shape, groups", [((3, 3, 2, 16), 8), ((3, 3, 4, 32), 8), ((3, 3, 1, 24), 24),
                                           ((3, 3, 3, 32), 1)])
def test_a_kernel_at_another_level_packs_from_the_held_copy(shape, groups):
    """Built at one level, run at every other: the other level's kernel may read another packing, made
    from the one held, with the same results as the reference."""
    rng = rng_for("levels", shape, groups)
    w, b = rand(rng, *shape), rand(rng, shape[3])
    x = rand(rng, 2, 9, 7, shape[2] * groups)
    op = pyconv.Conv2D(w, b, groups=groups, padding="same")
    want = conv2d_ref(x, w, b, padding="same", groups=groups)
    for level in pyconv.isa.supported():
        with pyconv.isa.use(level):
            assert_close(op(x), want, what=level)
    assert np.array_equal(op.w, w)
