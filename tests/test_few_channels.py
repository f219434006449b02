"""The few-channel first-layer kernel (``conv2d_few_channels``), which reads an NHWC input (``Conv2D``'s
"direct" kernel for 1-4 input channels) or an NCHW one (``Conv2D._bind_nchw``) in place, against the
float64 reference of ``tests/reference.py``.

The sweep covers both layouts, 1-4 input channels, 1x1 images, kernels as large as the padded input,
strides larger than the kernel, dilation, explicit asymmetric and large pads, widths on both sides of
the 12-pixel tile, rows whose tiles read the input in place between tiles that cross the left or right
edge, rows ending on the 4- and 8-pixel tiles, 16- and 32-wide panels with partial last panels, every
activation, batches, every instruction-set level this CPU runs, and 1 or 2 threads.
"""
from __future__ import annotations


import numpy as np
import pytest

from conftest import LEVELS, run_at_level
from pyconv.conv import Conv2D
from pyconv.strategy import FEW_CHANNELS
from reference import conv2d_ref

GEOMETRIES = [  # (H, W, K, stride, dilation, padding)
    (1, 1, 1, 1, 1, "valid"), (1, 1, 3, 1, 1, "same"), (5, 5, 3, 1, 1, "same"), (5, 5, 3, 1, 1, "valid"),
    (7, 13, 3, 2, 1, ((1, 1), (1, 1))), (224, 23, 3, 2, 1, ((0, 1), (0, 1))), (9, 25, 5, 3, 1, "same"),
    (6, 11, 2, 4, 1, "valid"), (11, 12, 3, 1, 2, "same"), (4, 4, 7, 1, 1, ((3, 3), (3, 3))),
    (3, 37, 3, 1, 1, ((4, 0), (9, 2))), (17, 29, 1, 2, 1, "valid"), (8, 8, 3, 2, 3, ((2, 2), (2, 2))),
    # Stride 2 rows ending in 8 and 6 pixels after whole 12-pixel tiles: the 8-pixel tile.
    (3, 16, 3, 2, 1, "same"), (3, 35, 3, 2, 1, "same"),
    # Wide rows: tiles read in place between a first tile inside the left pad and a last one past W.
    (6, 61, 3, 1, 1, "same"), (5, 100, 5, 2, 2, ((2, 2), (3, 3))), (8, 50, 7, 3, 1, "valid"),
]
CHANNELS = [(1, 8), (3, 16), (3, 24), (3, 32), (4, 40), (2, 70)]  # (C_in, C_out)


def _case_id(g):
    return "{}x{}-k{}-s{}-d{}-{}".format(*g[:5], g[5] if isinstance(g[5], str) else "explicit")


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=_case_id)
@pytest.mark.parametrize("channels", CHANNELS, ids=lambda c: f"{c[0]}to{c[1]}")
@pytest.mark.parametrize("path", LEVELS)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_matches_the_reference(geometry, channels, path, layout, request):
    run_at_level(request, path)
    h, w, k, stride, dilation, padding = geometry
    cin, cout = channels
    rng = np.random.default_rng(h * 1000 + w * 10 + cin)
    x = rng.standard_normal((2, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal((k, k, cin, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    for activation, threads in [(None, 1), ("relu", 2), ("relu6", 2)]:
        op = Conv2D(wt, b, stride=stride, padding=padding, dilation=dilation, activation=activation)
        if layout == "NCHW":
            got = op._bind_nchw(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))(threads)
        else:
            assert op.strategy_for(x.shape) == "direct"
            got = op(x, threads=threads)
        want = conv2d_ref(x, wt, b, stride=stride, padding=padding, dilation=dilation, activation=activation)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 3, 61, 45)).astype(np.float32)
    op = Conv2D(rng.standard_normal((3, 3, 3, 40)).astype(np.float32), stride=2, padding="same")
    runs = [op._bind_nchw(x)(t) for t in (1, 2, 3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    runs = [op(x_nhwc, threads=t) for t in (1, 2, 3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_an_nhwc_first_layer_runs_the_few_channel_kernel():
    op = Conv2D(np.ones((3, 3, 3, 16), np.float32), stride=2, padding="same")
    assert "few input channels" in op.explain((1, 224, 224, 3)).reason
    assert "few input channels" not in Conv2D(np.ones((3, 3, 5, 16), np.float32)).explain((1, 9, 9, 5)).reason


def test_writes_only_the_output():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 9, 14)).astype(np.float32)
    op = Conv2D(rng.standard_normal((3, 3, 3, 20)).astype(np.float32), padding="same")
    slab = np.full((3, 9, 14, 20), np.nan, dtype=np.float32)
    op._bind_nchw(x, out=slab[1:2])(2)
    assert np.isnan(slab[0]).all() and np.isnan(slab[2]).all() and not np.isnan(slab[1]).any()


@pytest.mark.parametrize("kwargs, x_shape, match", [
    ({"groups": 2}, (1, 4, 8, 8), "ungrouped"),
    ({}, (1, 3, 8, 8), "channels"),
    ({}, (1, 8, 8), "4-D|dimension"),
])
def test_rejects_what_it_cannot_serve(kwargs, x_shape, match):
    cin = 4
    groups = kwargs.get("groups", 1)
    op = Conv2D(np.ones((3, 3, cin // groups, 8), np.float32), **kwargs)
    with pytest.raises(ValueError, match=match):
        op._bind_nchw(np.ones(x_shape, np.float32))


def test_only_few_input_channels_read_nchw():
    assert Conv2D(np.ones((3, 3, FEW_CHANNELS, 8), np.float32)).reads_nchw()
    assert not Conv2D(np.ones((3, 3, FEW_CHANNELS + 1, 8), np.float32)).reads_nchw()
    assert not Conv2D(np.ones((3, 3, 1, 8), np.float32), groups=2).reads_nchw()
