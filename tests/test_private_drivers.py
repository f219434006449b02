"""The extension modules' module-level functions (pyconv._kernels, _pooling, _layout, _gather) called
directly with degenerate arguments: zero or negative group counts, strides, kernels and thread counts,
negative pads, buffers that do not match the geometry they are given, too-small outputs, out-of-range
indices, misaligned or empty weights. Each must raise ValueError or TypeError, never divide by zero,
read or write out of bounds or kill the interpreter.

The calls run in a child interpreter, one after another, each announced before it starts: a crash
(SIGFPE, SIGSEGV) ends the child, names the call that caused it, and the rest run in a fresh child.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PRELUDE = """
import numpy as np
from pyconv import _gather as G, _kernels as K, _layout as L, _pooling as P
from pyconv.memory import aligned_empty
from pyconv.packing import pack_gemm_weights, pack_narrow_group_weights, pack_channel_rows, pack_winograd_weights

def a(*shape, value=0.5):
    out = aligned_empty(shape)
    out.fill(value)
    return out

def unaligned(array):
    buf = aligned_empty((array.size + 1,))
    view = buf[1:].reshape(array.shape)
    view[...] = array
    return view

W = a(3, 3, 4, 8)
GEMM = pack_gemm_weights(W, 1)
GEMM2 = pack_gemm_weights(a(3, 3, 2, 8), 2)
WINO = pack_winograd_weights(W, 1)
NARROW, IDX = pack_narrow_group_weights(a(3, 3, 1, 8), 4)
ROWS = pack_channel_rows(a(3, 3, 3, 8))
PW = pack_gemm_weights(a(1, 1, 4, 8), 1)
X = a(1, 6, 6, 4)
Y = a(1, 6, 6, 8)
I = np.arange
"""

# name -> the call; every one must raise ValueError or TypeError.
CASES = {
    # _pooling
    "channel_shuffle-groups-0": "P.channel_shuffle(a(2, 6), a(2, 6), 0, 1)",
    "channel_shuffle-groups-negative": "P.channel_shuffle(a(2, 6), a(2, 6), -2, 1)",
    "channel_shuffle-groups-not-dividing": "P.channel_shuffle(a(2, 6), a(2, 6), 4, 1)",
    "channel_shuffle-out-too-small": "P.channel_shuffle(a(4, 6), a(2, 6), 2, 1)",
    "channel_shuffle-threads-0": "P.channel_shuffle(a(2, 6), a(2, 6), 2, 0)",
    "pool2d-stride-0": "P.pool2d(a(1, 4, 4, 2), a(1, 2, 2, 2), 2, 2, 0, 2, 0, 0, 0, 0, True, False, 1)",
    "pool2d-kernel-0": "P.pool2d(a(1, 4, 4, 2), a(1, 2, 2, 2), 0, 2, 2, 2, 0, 0, 0, 0, False, False, 1)",
    "pool2d-negative-pad": "P.pool2d(a(1, 4, 4, 2), a(1, 2, 2, 2), 2, 2, 2, 2, -1, 0, 0, 0, False, True, 1)",
    "pool2d-out-too-large": "P.pool2d(a(1, 4, 4, 2), a(1, 9, 9, 2), 2, 2, 2, 2, 0, 0, 0, 0, True, False, 1)",
    "pool2d-pad-as-large-as-kernel": "P.pool2d(a(1, 4, 4, 2), a(1, 3, 2, 2), 2, 2, 2, 2, 2, 0, 0, 0, False, False, 1)",
    "pool2d-channels-differ": "P.pool2d(a(1, 4, 4, 2), a(1, 2, 2, 3), 2, 2, 2, 2, 0, 0, 0, 0, True, False, 1)",
    "pool2d-batch-differs": "P.pool2d(a(1, 4, 4, 2), a(2, 2, 2, 2), 2, 2, 2, 2, 0, 0, 0, 0, True, False, 1)",
    "pool2d-empty-input": "P.pool2d(a(1, 0, 4, 2), a(1, 1, 2, 2), 2, 2, 2, 2, 1, 0, 0, 0, False, False, 1)",
    "pool2d-threads-negative": "P.pool2d(a(1, 4, 4, 2), a(1, 2, 2, 2), 2, 2, 2, 2, 0, 0, 0, 0, True, False, -3)",
    "pool2d-bad-activation": "P.pool2d(a(1, 4, 4, 2), a(1, 2, 2, 2), 2, 2, 2, 2, 0, 0, 0, 0, True, False, 1, 99)",
    "global_avg_pool2d-out-channels": "P.global_avg_pool2d(a(1, 3, 3, 2), a(1, 3), 1)",
    "global_avg_pool2d-out-batch": "P.global_avg_pool2d(a(2, 3, 3, 2), a(1, 2), 1)",
    "global_avg_pool2d-no-pixels": "P.global_avg_pool2d(a(1, 0, 3, 2), a(1, 2), 1)",
    "binary-b-too-short": "P.binary(a(10), a(3), a(10), 1, 2, 5, 0, 0, 1)",
    "binary-out-too-short": "P.binary(a(10), a(10), a(4), 1, 1, 10, 0, 0, 1)",
    "binary-geometry-larger-than-a": "P.binary(a(10), a(5), a(10), 4, 2, 5, 0, 0, 1)",
    "binary-negative-count": "P.binary(a(10), a(10), a(10), -1, -1, 10, 0, 0, 1)",
    "binary-bad-op": "P.binary(a(10), a(10), a(10), 1, 1, 10, 9, 0, 1)",
    "binary-scalar-b-too-short": "P.binary(a(12), a(2), a(12), 3, 4, 1, 0, 0, 1)",
    "scale_shift-scale-too-short": "P.scale_shift(a(3, 8), a(4), a(8), a(3, 8), 0, 1)",
    "scale_shift-out-too-small": "P.scale_shift(a(3, 8), a(8), a(8), a(1, 8), 0, 1)",
    "activation-out-too-short": "P.activation(a(100), a(10), 1, 1)",
    "activation-bad-code": "P.activation(a(100), a(100), 99, 1)",
    "activation-threads-0": "P.activation(a(100), a(100), 1, 0)",
    "prelu-alpha-too-short": "P.prelu(a(3, 8), a(2), a(3, 8), 1)",
    "prelu-out-too-small": "P.prelu(a(3, 8), a(8), a(3, 4), 1)",
    "concat-widths-exceed-out": "P.concat([a(3, 4), a(3, 5)], a(3, 6), 1)",
    "concat-rows-differ": "P.concat([a(3, 4), a(2, 2)], a(3, 6), 1)",
    "concat-float64": "P.concat([np.zeros((3, 6))], a(3, 6), 1)",
    "concat-not-arrays": "P.concat([None], a(3, 6), 1)",
    "softmax-out-too-small": "P.softmax(a(4, 10), a(2, 10), 1)",
    "softmax-out-is-x": "x = a(4, 10); P.softmax(x, x, 1)",
    "_use_isa-unknown": "P._use_isa('no-such-level')",
    # _layout
    "transpose_inner-out-too-small": "L.transpose_inner(a(2, 3, 4), a(2, 4, 2), 1)",
    "transpose_inner-float64": "L.transpose_inner(np.zeros((2, 3, 4)), a(2, 4, 3), 1)",
    # _gather
    "slice_axis-step-0": "G.slice_axis(a(24), a(8), 2, 4, 3, 0, 0, 1, 1)",
    "slice_axis-negative-start": "G.slice_axis(a(24), a(6), 2, 4, 3, -1, 1, 1, 1)",
    "slice_axis-past-the-axis": "G.slice_axis(a(24), a(12), 2, 4, 3, 2, 2, 2, 1)",
    "slice_axis-x-too-short": "G.slice_axis(a(10), a(6), 2, 4, 3, 0, 1, 1, 1)",
    "slice_axis-out-too-short": "G.slice_axis(a(24), a(2), 2, 4, 3, 0, 1, 2, 1)",
    "slice_axis-threads-0": "G.slice_axis(a(24), a(6), 2, 4, 3, 0, 1, 1, 0)",
    "resize_nearest-row-out-of-range": "G.resize_nearest(a(1, 4, 4, 2), a(1, 2, 2, 2), I(2) + 10, I(2), 1)",
    "resize_nearest-negative-column": "G.resize_nearest(a(1, 4, 4, 2), a(1, 2, 2, 2), I(2), I(2) - 5, 1)",
    "resize_nearest-table-too-short": "G.resize_nearest(a(1, 4, 4, 2), a(1, 3, 2, 2), I(2), I(2), 1)",
    "resize_nearest-channels-differ": "G.resize_nearest(a(1, 4, 4, 2), a(1, 2, 2, 3), I(2), I(2), 1)",
    "resize_bilinear-column-past-the-row": (
        "f = a(2); G.resize_bilinear(a(1, 4, 4, 2), a(1, 2, 2, 2), I(2), I(2), f, f, I(2) * 8, I(2), f, f, 1)"),
    "resize_bilinear-weights-too-short": (
        "f = a(2); G.resize_bilinear(a(1, 4, 4, 2), a(1, 2, 2, 2), I(2), I(2), a(1), f, I(2), I(2), f, f, 1)"),
    "resize_bilinear-negative-row": (
        "f = a(2); G.resize_bilinear(a(1, 4, 4, 2), a(1, 2, 2, 2), I(2) - 1, I(2), f, f, I(2), I(2), f, f, 1)"),
    # _kernels: GEMM convolutions
    "conv2d_direct-groups-0": "K.conv2d_direct(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1)",
    "conv2d_direct-groups-negative": "K.conv2d_direct(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, -1, 0, 1)",
    "conv2d_direct-groups-not-dividing": "K.conv2d_direct(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 3, 0, 1)",
    "conv2d_direct-stride-0": "K.conv2d_direct(X, GEMM, None, Y, 3, 3, 0, 1, 1, 1, 1, 1, 1, 0, 1)",
    "conv2d_direct-dilation-0": "K.conv2d_direct(X, GEMM, None, Y, 3, 3, 1, 1, 0, 1, 1, 1, 1, 0, 1)",
    "conv2d_direct-kernel-0": "K.conv2d_direct(X, GEMM, None, Y, 0, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)",
    "conv2d_direct-negative-pad": "K.conv2d_direct(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, -2, 1, 1, 0, 1)",
    "conv2d_direct-weights-of-another-kernel": "K.conv2d_direct(X, GEMM, None, Y, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1)",
    "conv2d_direct-weights-of-other-groups": "K.conv2d_direct(X, GEMM2, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)",
    "conv2d_direct-misaligned-weights": (
        "K.conv2d_direct(X, unaligned(GEMM), None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)"),
    "conv2d_direct-y-batch-differs": "K.conv2d_direct(X, GEMM, None, a(2, 6, 6, 8), 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)",
    # (Packed weights hold whole panels: an output of fewer channels within them reads only their first columns.)
    "conv2d_direct-y-channels-beyond-the-weights": (
        "K.conv2d_direct(X, GEMM, None, a(1, 6, 6, 40), 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)"),
    "conv2d_direct-kernel-product-overflows": (
        "K.conv2d_direct(X, pack_gemm_weights(a(1, 1, 4, 8), 1)[:, :, :0], None, Y, 65536, 65536, 1, 1, 1, 1, 1, 1, "
        "1, 0, 1)"),
    "depthwise_conv2d-kernel-product-overflows": (
        "K.depthwise_conv2d(X, a(0, 4), None, a(1, 6, 6, 4), 65536, 65536, 1, 1, 1, 1, 1, 1, 0, 1)"),
    "conv2d_direct-bias-too-short": "K.conv2d_direct(X, GEMM, a(3), Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)",
    "conv2d_direct-residual-too-small": (
        "K.conv2d_direct(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1, a(1, 3, 3, 8))"),
    "conv2d_direct-no-input-channels": (
        "K.conv2d_direct(a(1, 6, 6, 0), pack_gemm_weights(a(3, 3, 0, 8), 1), None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)"),
    "conv2d_direct-no-output-channels": (
        "K.conv2d_direct(X, pack_gemm_weights(a(3, 3, 4, 0), 1), None, a(1, 6, 6, 0), 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)"),
    "conv2d_direct-bad-activation": "K.conv2d_direct(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, (42, 0, 0), 1)",
    "conv2d_direct-float64-x": "K.conv2d_direct(np.zeros((1, 6, 6, 4)), GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)",
    "conv2d_direct-read-only-y": (
        "y = a(1, 6, 6, 8); y.flags.writeable = False; K.conv2d_direct(X, GEMM, None, y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)"),
    "direct_plan-groups-0": "K.direct_plan(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0)",
    "direct_plan-no-input-channels": (
        "K.direct_plan(a(1, 6, 6, 0), pack_gemm_weights(a(3, 3, 0, 8), 1), None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0)"),
    "conv2d_im2col-groups-0": "K.conv2d_im2col(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1)",
    "conv2d_im2col-stride-0": "K.conv2d_im2col(X, GEMM, None, Y, 3, 3, 1, 0, 1, 1, 1, 1, 1, 0, 1)",
    "conv2d_im2col-no-input-channels": (
        "K.conv2d_im2col(a(1, 6, 6, 0), pack_gemm_weights(a(3, 3, 0, 8), 1), None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1)"),
    "conv2d_im2col-weights-of-another-kernel": "K.conv2d_im2col(X, GEMM, None, Y, 5, 5, 1, 1, 1, 1, 2, 2, 1, 0, 1)",
    # _kernels: Winograd, narrow groups, depthwise, separable, ROWS input
    "conv2d_winograd-groups-0": "K.conv2d_winograd(X, WINO, None, Y, 1, 1, 0, 0, 1)",
    "conv2d_winograd-groups-not-dividing": "K.conv2d_winograd(X, WINO, None, Y, 1, 1, 3, 0, 1)",
    "conv2d_winograd-negative-pad": "K.conv2d_winograd(X, WINO, None, Y, -1, 1, 1, 0, 1)",
    "conv2d_winograd-weights-of-other-channels": "K.conv2d_winograd(a(1, 6, 6, 2), WINO, None, Y, 1, 1, 1, 0, 1)",
    "conv2d_winograd-no-input-channels": (
        "K.conv2d_winograd(a(1, 6, 6, 0), pack_winograd_weights(a(3, 3, 0, 8), 1), None, Y, 1, 1, 1, 0, 1)"),
    "conv2d_narrow_groups-groups-0": (
        "K.conv2d_narrow_groups(X, NARROW, IDX, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1)"),
    "conv2d_narrow_groups-stride-0": (
        "K.conv2d_narrow_groups(X, NARROW, IDX, None, Y, 3, 3, 0, 0, 1, 1, 1, 1, 4, 0, 1)"),
    "conv2d_narrow_groups-lanes-out-of-range": (
        "K.conv2d_narrow_groups(X, NARROW, IDX + 1000, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0, 1)"),
    "conv2d_narrow_groups-weights-of-other-groups": (
        "K.conv2d_narrow_groups(X, NARROW, IDX, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0, 1)"),
    "depthwise_conv2d-stride-0": "K.depthwise_conv2d(X, a(9, 4), None, a(1, 6, 6, 4), 3, 3, 0, 1, 1, 1, 1, 1, 0, 1)",
    "depthwise_plan-weights-of-another-kernel": (
        "K.depthwise_plan(X, a(4, 4), None, a(1, 6, 6, 4), 3, 3, 1, 1, 1, 1, 1, 1, 0)"),
    "depthwise_plan-bias-too-short": "K.depthwise_plan(X, a(9, 4), a(2), a(1, 6, 6, 4), 3, 3, 1, 1, 1, 1, 1, 1, 0)",
    "depthwise_plan-in-act-unknown": "K.depthwise_plan(X, a(9, 4), None, a(1, 6, 6, 4), 3, 3, 1, 1, 1, 1, 1, 1, 0, 7)",
    "depthwise_plan-run-threads-0": "K.depthwise_plan(X, a(9, 4), None, a(1, 6, 6, 4), 3, 3, 1, 1, 1, 1, 1, 1, 0).run(0)",
    "narrow_groups_plan-groups-0": "K.narrow_groups_plan(a(1, 6, 6, 4), NARROW, IDX, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0)",
    "narrow_groups_plan-idx-not-the-permutation": (
        "K.narrow_groups_plan(a(1, 6, 6, 4), NARROW, IDX * 0 + 3, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0)"),
    "narrow_groups_plan-run-threads-0": (
        "K.narrow_groups_plan(a(1, 6, 6, 4), NARROW, IDX, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0).run(0)"),
    "few_channels_plan-packed-of-another-kernel": (
        "K.few_channels_plan(a(1, 6, 6, 3), ROWS, None, Y, 5, 5, 1, 1, 1, 1, 2, 2, 0, False)"),
    "few_channels_plan-stride-0": "K.few_channels_plan(a(1, 6, 6, 3), ROWS, None, Y, 3, 3, 0, 1, 1, 1, 1, 1, 0, False)",
    "few_channels_plan-run-threads-huge": (
        "K.few_channels_plan(a(1, 6, 6, 3), ROWS, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, False).run(100000)"),
    "depthwise_conv2d-weights-of-another-kernel": (
        "K.depthwise_conv2d(X, a(4, 4), None, a(1, 6, 6, 4), 3, 3, 1, 1, 1, 1, 1, 1, 0, 1)"),
    "depthwise_conv2d-y-channels-differ": (
        "K.depthwise_conv2d(X, a(9, 4), None, a(1, 6, 6, 8), 3, 3, 1, 1, 1, 1, 1, 1, 0, 1)"),
    "depthwise_conv2d-bias-too-short": "K.depthwise_conv2d(X, a(9, 4), a(2), a(1, 6, 6, 4), 3, 3, 1, 1, 1, 1, 1, 1, 0, 1)",
    "depthwise_conv2d-no-channels": (
        "K.depthwise_conv2d(a(1, 6, 6, 0), a(9, 0), None, a(1, 6, 6, 0), 3, 3, 1, 1, 1, 1, 1, 1, 0, 1)"),
    "depthwise_conv2d-bad-input-activation": (
        "K.depthwise_conv2d(X, a(9, 4), None, a(1, 6, 6, 4), 3, 3, 1, 1, 1, 1, 1, 1, 0, 1, 7)"),
    "separable_conv2d-no-channels": (
        "K.separable_conv2d(a(1, 6, 6, 0), a(9, 0), None, pack_gemm_weights(a(1, 1, 0, 8), 1), None, Y, "
        "3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1)"),
    "separable_conv2d-no-output-channels": (
        "K.separable_conv2d(X, a(9, 4), None, pack_gemm_weights(a(1, 1, 4, 0), 1), None, a(1, 6, 6, 0), "
        "3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1)"),
    "separable_conv2d-pointwise-of-other-channels": (
        "K.separable_conv2d(X, a(9, 4), None, pack_gemm_weights(a(1, 1, 6, 8), 1), None, Y, "
        "3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1)"),
    "separable_conv2d-stride-0": "K.separable_conv2d(X, a(9, 4), None, PW, None, Y, 3, 3, 1, 0, 1, 1, 1, 1, 0, 0, 1)",
    "separable_conv2d-bias-too-short": (
        "K.separable_conv2d(X, a(9, 4), a(1), PW, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1)"),
    "separable_plan-no-channels": (
        "K.separable_plan(a(1, 6, 6, 0), a(9, 0), None, pack_gemm_weights(a(1, 1, 0, 8), 1), None, Y, "
        "3, 3, 1, 1, 1, 1, 1, 1, 0, 0)"),
    "conv2d_few_channels-stride-0": "K.conv2d_few_channels(a(1, 3, 6, 6), ROWS, None, Y, 3, 3, 0, 1, 1, 1, 1, 1, 0, 1, True)",
    "conv2d_few_channels-weights-of-other-channels": (
        "K.conv2d_few_channels(a(1, 2, 6, 6), ROWS, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1, True)"),
    "conv2d_few_channels-no-channels": (
        "K.conv2d_few_channels(a(1, 0, 6, 6), pack_channel_rows(a(3, 3, 0, 8)), None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1, True)"),
    "conv2d_few_channels-nhwc-weights-of-other-channels": (
        "K.conv2d_few_channels(a(1, 6, 6, 2), ROWS, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1, False)"),
    "conv2d_few_channels-nhwc-dilation-0": "K.conv2d_few_channels(a(1, 6, 6, 3), ROWS, None, Y, 3, 3, 1, 1, 1, 0, 1, 1, 0, 1, False)",
    "conv2d_few_channels-negative-pad": "K.conv2d_few_channels(a(1, 3, 6, 6), ROWS, None, Y, 3, 3, 1, 1, 1, 1, 1, -1, 0, 1, True)",
    "_kernels-_use_isa-unknown": "K._use_isa('no-such-level')",
    # Thread counts: below 1, or more than OpenMP could start (it would try, and the process die).
    "start_threads-0": "K.start_threads(0)",
    "start_threads-huge": "K.start_threads(100000)",
    "activation-threads-huge": "P.activation(a(100), a(100), 0, 100000)",
    "transpose_inner-threads-0": "L.transpose_inner(a(2, 3, 4), a(2, 4, 3), 0)",
    "resize_nearest-threads-huge": "G.resize_nearest(a(1, 4, 4, 2), a(1, 2, 2, 2), I(2), I(2), 100000)",
    "conv2d_direct-threads-huge": "K.conv2d_direct(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 100000)",
    "conv2d_im2col-threads-0": "K.conv2d_im2col(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0)",
    "direct_plan-run-threads-huge": "K.direct_plan(X, GEMM, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0).run(100000)",
    "separable_plan-run-threads-0": (
        "K.separable_plan(X, a(9, 4), None, PW, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0).run(0)"),
    "conv2d_winograd-threads-huge": "K.conv2d_winograd(X, WINO, None, Y, 1, 1, 1, 0, 100000)",
    "depthwise_conv2d-threads-huge": (
        "K.depthwise_conv2d(X, a(9, 4), None, a(1, 6, 6, 4), 3, 3, 1, 1, 1, 1, 1, 1, 0, 100000)"),
    "conv2d_few_channels-threads-huge": "K.conv2d_few_channels(a(1, 3, 6, 6), ROWS, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 0, 100000, True)",
    "conv2d_narrow_groups-threads-huge": (
        "K.conv2d_narrow_groups(X, NARROW, IDX, None, Y, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0, 100000)"),
}

# Degenerate arguments these functions answer without an error (and without a crash).
ANSWERED = {
    "narrow_groups_supported-negative": "assert K.narrow_groups_supported(-1, 0) is False",
    "max_threads": "assert K.max_threads() >= 1",
    "transpose_inner-empty": "L.transpose_inner(a(0, 3, 4), a(0, 4, 3), 1)",
}

RUNNER = """
import json, sys, traceback
exec(sys.argv[1])
for name, code in json.loads(sys.argv[2]):
    print(json.dumps(["start", name]), flush=True)
    try:
        exec(code)
        outcome = "none"
    except BaseException as exc:
        outcome = type(exc).__name__ + ": " + str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    print(json.dumps(["done", name, outcome]), flush=True)
"""


def _run_all(cases: dict[str, str]) -> dict[str, str]:
    """Every case's outcome: "none", "<Exception>: message", or "crash (exit status ...)"."""
    outcomes: dict[str, str] = {}
    pending = list(cases.items())
    root = Path(__file__).resolve().parents[1]
    while pending:
        proc = subprocess.run([sys.executable, "-c", RUNNER, PRELUDE, json.dumps(pending)], capture_output=True,
                              text=True, timeout=300, cwd=root)
        started = None
        for line in proc.stdout.splitlines():
            event = json.loads(line)
            if event[0] == "start":
                started = event[1]
            else:
                outcomes[event[1]] = event[2]
                started = None
        if proc.returncode != 0 and started is None:
            raise AssertionError(f"the driver calls' child failed outside any call: {proc.stderr[-2000:]}")
        if started is not None:
            outcomes[started] = f"crash (exit status {proc.returncode}): {proc.stderr[-500:]}"
        pending = [(name, code) for name, code in pending if name not in outcomes]
    return outcomes


@pytest.fixture(scope="module")
def outcomes() -> dict[str, str]:
    return _run_all({**CASES, **ANSWERED})


@pytest.mark.parametrize("name", CASES)
def test_degenerate_arguments_raise(outcomes, name):
    outcome = outcomes[name]
    assert outcome.startswith(("ValueError", "TypeError")), f"{CASES[name]} -> {outcome}"


@pytest.mark.parametrize("name", ANSWERED)
def test_degenerate_arguments_answered(outcomes, name):
    assert outcomes[name] == "none", f"{ANSWERED[name]} -> {outcomes[name]}"


def test_every_module_level_driver_is_exercised():
    """Each def the extension modules expose appears in a case above (a new driver needs its own)."""
    from pyconv import _gather, _kernels, _layout, _pooling

    called = " ".join([*CASES.values(), *ANSWERED.values()])
    for prefix, module in (("G.", _gather), ("K.", _kernels), ("L.", _layout), ("P.", _pooling)):
        names = [n for n in dir(module) if callable(getattr(module, n)) and type(getattr(module, n)).__name__
                 == "builtin_function_or_method" and not n.startswith("__") and n != "_register_isa"]
        missing = [n for n in names if f"{prefix}{n}(" not in called]
        assert not missing, f"{module.__name__}: no degenerate-argument case for {missing}"
