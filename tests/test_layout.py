"""Tests of the NCHW <-> NHWC conversions (pyconv.nchw_to_nhwc / nhwc_to_nchw) against numpy's own
transposed copy, which is exact: a transpose moves floats, so results must match bit for bit.

Shapes straddle the kernel's 16x16 register tile and 64x64 block (1, 3, 15, 16, 17, 63, 65 rows and
columns) so every partial-tile path runs, at every instruction-set level this CPU runs, at 1 and 2
threads.
"""
from __future__ import annotations

import numpy as np
import pytest

import pyconv
from conftest import LEVELS, run_at_level
from pyconv import ops

SHAPES = [(1, 1, 1, 1), (1, 3, 224, 224), (2, 17, 5, 3), (1, 16, 4, 4), (3, 65, 9, 7), (1, 256, 14, 14),
          (2, 1, 63, 1), (1, 1000, 1, 1), (1, 33, 8, 2)]


@pytest.fixture(autouse=True)
def every_thread_gets_work(monkeypatch):
    monkeypatch.setattr(ops, "_WORK_PER_THREAD", 1)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("path", LEVELS)
def test_round_trip_matches_numpy(shape, threads, path, request):
    run_at_level(request, path)
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    nhwc = pyconv.nchw_to_nhwc(x, threads=threads)
    assert nhwc.flags.c_contiguous and nhwc.dtype == np.float32
    np.testing.assert_array_equal(nhwc, x.transpose(0, 2, 3, 1))
    back = pyconv.nhwc_to_nchw(nhwc, threads=threads)
    np.testing.assert_array_equal(back, x)


def test_out_and_input_conversion():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)[:, :, :, ::-1]  # float64, strided
    out = np.full((2, 4, 5, 3), np.nan, dtype=np.float32)
    assert pyconv.nchw_to_nhwc(x, out=out) is out
    np.testing.assert_array_equal(out, x.transpose(0, 2, 3, 1).astype(np.float32))


def test_bad_arguments():
    with pytest.raises(ValueError, match="4"):
        pyconv.nchw_to_nhwc(np.zeros((3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="out"):
        pyconv.nhwc_to_nchw(np.zeros((1, 4, 5, 3), np.float32), out=np.zeros((1, 4, 5, 3), np.float32))
    x = np.zeros((1, 4, 4, 4), np.float32)
    with pytest.raises(ValueError):
        pyconv.nchw_to_nhwc(x, out=x)
