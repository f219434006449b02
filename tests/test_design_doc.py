"""The worked examples of the design document (shared/seed/convolution-strategies.md), as literal tests.

Standard convolution: a 5x5x3 input and a 3x3x3x4 kernel give 4 feature maps, 5x5 with "same" padding
and 3x3 without. Depthwise: 3 maps, 5x5 with "same". Pointwise: a 1x1x3x4 kernel gives 4 maps.
Parameters: 108 for the standard kernel against 27 + 12 for the depthwise separable pair. Group
convolution: K*K*(C_in/G)*(C_out/G)*G parameters, 1/G of the standard; the figure's example (8 input
maps in 2 groups, 4 output maps, 2 kernels of 4 channels per group) keeps groups apart; G = C_in = C_out
is depthwise convolution.
"""
import numpy as np
import pytest

import pyconv
from conftest import assert_close, rand, rng_for
from reference import (conv2d_param_count, conv2d_ref, depthwise_conv2d_ref, pointwise_conv2d_ref,
                       separable_conv2d_ref)


@pytest.fixture
def image():
    """The document's 5x5 three-channel input (batch of one)."""
    return rand(rng_for("design-doc-image"), 1, 5, 5, 3)


STRATEGIES = ["direct", "im2col", "winograd", "auto"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("padding, hw", [("same", 5), ("valid", 3)])
def test_standard_conv_5x5x3_with_3x3x3x4_kernel(image, strategy, padding, hw):
    w = rand(rng_for("design-doc-w"), 3, 3, 3, 4)
    y = pyconv.conv2d(image, w, padding=padding, strategy=strategy)
    assert y.shape == (1, hw, hw, 4)
    assert_close(y, conv2d_ref(image, w, padding=padding))
    op = pyconv.Conv2D(w, padding=padding, strategy=strategy)
    assert tuple(op.output_shape((1, 5, 5, 3))) == (1, hw, hw, 4)


def test_depthwise_gives_one_map_per_channel(image):
    w = rand(rng_for("design-doc-dw"), 3, 3, 3)
    y = pyconv.depthwise_conv2d(image, w, padding="same")
    assert y.shape == (1, 5, 5, 3)
    assert_close(y, depthwise_conv2d_ref(image, w, padding="same"))
    # "Works entirely in the 2-D plane": map c depends on input channel c only.
    for c in range(3):
        assert_close(y[..., c:c + 1], depthwise_conv2d_ref(image[..., c:c + 1], w[:, :, c:c + 1],
                                                           padding="same"))


def test_pointwise_1x1x3x4_gives_4_maps(image):
    w = rand(rng_for("design-doc-pw"), 3, 4)
    y = pyconv.pointwise_conv2d(image, w)
    assert y.shape == (1, 5, 5, 4)
    assert_close(y, pointwise_conv2d_ref(image, w))
    # The same thing as a 1x1x3x4 standard kernel.
    assert_close(pyconv.conv2d(image, w.reshape(1, 1, 3, 4)), pointwise_conv2d_ref(image, w))


def test_separable_gives_the_same_output_shape_as_standard(image):
    wd = rand(rng_for("design-doc-dw"), 3, 3, 3)
    wp = rand(rng_for("design-doc-pw"), 3, 4)
    y = pyconv.separable_conv2d(image, wd, wp, padding="same")
    assert y.shape == (1, 5, 5, 4)
    assert_close(y, separable_conv2d_ref(image, wd, wp, padding="same"))


def test_parameter_counts_108_against_27_plus_12():
    standard = np.zeros((3, 3, 3, 4), np.float32)
    depthwise = np.zeros((3, 3, 3), np.float32)
    pointwise = np.zeros((3, 4), np.float32)
    assert standard.size == conv2d_param_count(3, 3, 4) == 108
    assert depthwise.size == 27 and pointwise.size == 12
    assert depthwise.size + pointwise.size == 39
    # The operators accept exactly those weights and agree on the output shape.
    shapes = {tuple(pyconv.Conv2D(standard, padding="same").output_shape((1, 5, 5, 3))),
              tuple(pyconv.SeparableConv2D(depthwise, pointwise, padding="same").output_shape((1, 5, 5, 3)))}
    assert shapes == {(1, 5, 5, 4)}


@pytest.mark.parametrize("g", [1, 2, 4, 8])
def test_group_parameters_are_one_over_g(g):
    k, c_in, c_out = 3, 8, 16
    n_params = conv2d_param_count(k, c_in, c_out, g)
    assert n_params == k * k * (c_in // g) * (c_out // g) * g
    assert n_params * g == conv2d_param_count(k, c_in, c_out)
    # pyconv takes HWIO weights of exactly that many parameters for this group count...
    w = rand(rng_for("group-params", g), k, k, c_in // g, c_out)
    assert w.size == n_params
    x = rand(rng_for("group-params-x", g), 1, 6, 6, c_in)
    y = pyconv.conv2d(x, w, groups=g, padding="same")
    assert y.shape == (1, 6, 6, c_out)
    assert_close(y, conv2d_ref(x, w, groups=g, padding="same"))
    # ...and rejects the standard-sized kernel once grouped.
    if g > 1:
        with pytest.raises(ValueError, match="groups|w"):
            pyconv.conv2d(x, rand(rng_for("std"), k, k, c_in, c_out), groups=g, padding="same")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_figure_group_example_8_inputs_2_groups_4_outputs(strategy):
    # 8 input maps in 2 groups of 4; 4 output maps, 2 per group; each kernel has 4 channels.
    rng = rng_for("figure")
    x = rand(rng, 1, 6, 6, 8)
    w = rand(rng, 3, 3, 4, 4)
    y = pyconv.conv2d(x, w, groups=2, padding="same", strategy=strategy)
    assert y.shape == (1, 6, 6, 4)
    assert_close(y, conv2d_ref(x, w, groups=2, padding="same"))
    # Group 1's outputs do not see group 0's inputs, and the other way round.
    x_other = x.copy()
    x_other[..., 4:] = rand(rng, 1, 6, 6, 4)
    y_other = pyconv.conv2d(x_other, w, groups=2, padding="same", strategy=strategy)
    np.testing.assert_array_equal(y_other[..., :2], y[..., :2])
    assert not np.array_equal(y_other[..., 2:], y[..., 2:])
    x_other = x.copy()
    x_other[..., :4] = rand(rng, 1, 6, 6, 4)
    y_other = pyconv.conv2d(x_other, w, groups=2, padding="same", strategy=strategy)
    np.testing.assert_array_equal(y_other[..., 2:], y[..., 2:])
    assert not np.array_equal(y_other[..., :2], y[..., :2])
    # Each group's outputs are a standard convolution of its own 4 maps with its own 2 kernels.
    for grp in range(2):
        own = conv2d_ref(x[..., 4 * grp:4 * grp + 4], w[..., 2 * grp:2 * grp + 2], padding="same")
        assert_close(y[..., 2 * grp:2 * grp + 2], own)


@pytest.mark.parametrize("strategy", ["direct", "im2col", "auto"])
def test_g_equals_c_in_equals_c_out_is_depthwise(image, strategy):
    w = rand(rng_for("g=c"), 3, 3, 3)
    y_group = pyconv.conv2d(image, w.reshape(3, 3, 1, 3), groups=3, padding="same", strategy=strategy)
    y_dw = pyconv.depthwise_conv2d(image, w, padding="same")
    assert y_group.shape == y_dw.shape == (1, 5, 5, 3)
    assert_close(y_group, depthwise_conv2d_ref(image, w, padding="same"))
    assert_close(y_dw, y_group.astype(np.float64), rtol=1e-5)
