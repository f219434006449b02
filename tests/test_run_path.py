"""What one call of a bound model does: no allocation beyond its outputs (tracemalloc's peak during the
call), whether the input is copied into the arena's buffer (small) or read in place (large), nor any
that grows with the number of layers; input checks remembered per (shape, dtype) still refuse every bad
input, and both ways of reading the input give the same results as a model without fusion."""
from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import pyconv
from pyconv.graph import ModelError
from pyconv.graph import model as model_module

from conftest import model_config

MODELS = Path(__file__).resolve().parents[1] / "models"
# The Python objects of a call (the result dict, array headers): well under this.
_SLACK_BYTES = 4096
# What binding a node to an input read in place costs per call (the driver's plan: about 3.5 KB).
_BIND_BYTES = 8192
# The chains' tensors (32 KB each) are larger than either: a copy of one, or of the input, shows.
_CHAIN_SHAPE = (32, 32, 8)


def _chain(n: int, shape=(4, 4, 8)) -> dict:
    layers = [{"name": f"pw{i}", "type": "pointwise_conv2d", "inputs": [f"pw{i - 1}" if i else "input"],
               "filters": shape[2], "activation": "relu"} for i in range(n)]
    return model_config(*layers, shape=shape)


def _nbytes(y) -> int:
    return sum(a.nbytes for a in (y.values() if isinstance(y, dict) else [y]))


def _peak_beyond_outputs(m, x, calls: int = 5) -> int:
    """The most a call's traced memory rose above what it started with, less its outputs' bytes."""
    m(x)
    tracemalloc.start()
    try:
        worst = 0
        for _ in range(calls):
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            y = m(x)
            worst = max(worst, tracemalloc.get_traced_memory()[1] - before - _nbytes(y))
            del y
    finally:
        tracemalloc.stop()
    return worst


@pytest.mark.parametrize("copied", [True, False], ids=["copied", "in-place"])
@pytest.mark.parametrize("source", ["toy_design_doc", "chain1", "chain32"])
def test_a_call_allocates_only_its_outputs(source, copied, monkeypatch):
    if not copied:
        monkeypatch.setattr(model_module, "_COPIED_INPUT_BYTES", 0)
    config = MODELS / f"{source}.json" if source.startswith("toy") else _chain(int(source[5:]), _CHAIN_SHAPE)
    m = pyconv.load(config, threads=1)
    p = next(iter(m._pools.values())).idle[0]
    assert p.bound == copied and bool(p.inputs) == copied
    readers = sum(step.call is None for step in p.steps)
    extra = _peak_beyond_outputs(m, m.example_input())
    assert extra < _SLACK_BYTES + readers * _BIND_BYTES, f"{extra} bytes beyond the outputs ({readers} readers)"


@pytest.mark.parametrize("copied", [True, False], ids=["copied", "in-place"])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_both_ways_of_reading_the_input_give_the_unfused_results(layout, copied, monkeypatch):
    """An NCHW RGB input is read in place by the first convolution (its buffer, when copied, is NCHW)."""
    doc = model_config({"name": "stem", "type": "conv2d", "inputs": ["input"], "filters": 8, "kernel": 3,
                        "padding": "same", "activation": "relu"},
                       {"name": "pw", "type": "pointwise_conv2d", "inputs": ["stem"], "filters": 8},
                       {"name": "sum", "type": "add", "inputs": ["stem", "pw"]}, shape=(6, 5, 3))
    doc["layers"][0]["layout"] = layout
    if not copied:
        monkeypatch.setattr(model_module, "_COPIED_INPUT_BYTES", 0)
    m = pyconv.load(doc, threads=1)
    unfused = pyconv.load(doc, threads=1, optimize=False)
    p = m._pools[(m._base.key, 1)].idle[0]
    assert p.bound == copied
    if layout == "NCHW":
        assert m._base.nchw_inputs == {"input"}
        if copied:
            assert p.inputs["input"].shape == (1, 3, 6, 5)
    rng = np.random.default_rng(3)
    for batch in (1, 3):
        x = rng.uniform(-1, 1, m.input_shape(batch=batch)).astype(np.float32)
        np.testing.assert_allclose(m(x), unfused(x), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m(x.astype(np.float64)), unfused(x), rtol=1e-5, atol=1e-6)


def test_remembered_checks_still_refuse_bad_inputs():
    m = pyconv.load(_chain(2), threads=1)
    x = m.example_input()
    y = m(x)
    # The same shape in other dtypes: float64 is converted (same result), integers are refused.
    np.testing.assert_array_equal(m(x.astype(np.float64)), y)
    with pytest.raises(TypeError, match="float32"):
        m(x.astype(np.int32))
    with pytest.raises(TypeError, match="float32"):
        m((x > 0.5))
    # Other shapes: a missing batch axis, other channels; still refused after a good call of each dtype.
    for _ in range(2):
        with pytest.raises(ModelError, match=r"found \(4, 4, 8\)"):
            m(x[0])
        with pytest.raises(ModelError, match="C = 8"):
            m(np.zeros((1, 4, 4, 3), np.float32))
    # A strided view of the right shape is read correctly; a list is converted.
    wide = np.zeros((1, 4, 4, 16), np.float32)
    wide[..., ::2] = x
    np.testing.assert_array_equal(m(wide[..., ::2]), y)
    np.testing.assert_allclose(m(x.tolist()), y, rtol=1e-6)
    # The remembered checks stay bounded, whatever the sizes callers send.
    for h in range(1, model_module._CHECKED_KEPT + 5):
        m(np.zeros((1, h, 3, 8), np.float32))
    assert len(m._checked) <= model_module._CHECKED_KEPT
