"""The layer types added for ONNX import, in plain configs: ``scale_shift`` (and its folding into the
layer before it), ``pad``, and the ``activation`` function ``clip`` with its bounds."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import model_config
from pyconv.graph import Model, ModelError


def config(*layers: dict, outputs, shape=(6, 7, 4)) -> dict:
    return model_config(*layers, outputs=outputs, shape=shape, input_name="in")


def rand(*shape, seed=0, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


def test_scale_shift_folds_into_conv_with_its_activation():
    doc = config({"name": "c", "type": "conv2d", "inputs": ["in"], "filters": 5, "kernel": 3, "padding": "same"},
                 {"name": "s", "type": "scale_shift", "inputs": ["c"], "activation": "relu6"},
                 {"name": "t", "type": "scale_shift", "inputs": ["s"]}, outputs=["t"])
    weights = {"c/kernel": rand(3, 3, 4, 5), "c/bias": rand(5, seed=1), "s/scale": rand(5, seed=2, lo=0.5, hi=4),
               "s/shift": rand(5, seed=3), "t/scale": rand(5, seed=4), "t/shift": rand(5, seed=5)}
    folded, plain = Model(doc, weights=weights), Model(doc, weights=weights, optimize=False)
    assert [n.type for n in folded.graph.nodes.values()] == ["conv2d", "scale_shift"]  # t follows an activation
    assert folded.graph.folded == ["s"] and folded.graph.nodes["t"].inputs == ["s"]
    x = rand(2, 6, 7, 4, seed=6) * 3
    y = plain.run(x)
    np.testing.assert_allclose(folded.run(x), y, rtol=1e-5, atol=1e-5)
    mid = np.clip(Model(config({"name": "c", "type": "conv2d", "inputs": ["in"], "filters": 5, "kernel": 3,
                                "padding": "same"}, outputs=["c"]),
                        weights={k: v for k, v in weights.items() if k.startswith("c/")}).run(x)
                  * weights["s/scale"] + weights["s/shift"], 0, 6)
    np.testing.assert_allclose(y, mid * weights["t/scale"] + weights["t/shift"], rtol=1e-5, atol=1e-5)


def test_scale_shift_seeded_weights_and_params():
    m = Model(config({"name": "s", "type": "scale_shift", "inputs": ["in"]}, outputs=["s"]))
    assert {k: p.shape for k, p in m.info.params["s"].items()} == {"scale": (4,), "shift": (4,)}
    x = rand(1, 6, 7, 4)
    np.testing.assert_allclose(m.run(x), x * m.weights["s"]["scale"] + m.weights["s"]["shift"], rtol=1e-6)


def test_pad_layer():
    doc = config({"name": "p", "type": "pad", "inputs": ["in"], "padding": [[1, 2], [0, 3]], "value": -1.5},
                 {"name": "z", "type": "pad", "inputs": ["in"], "padding": [[0, 1], [2, 0]]}, outputs=["p", "z"])
    m = Model(doc)
    x = rand(2, 6, 7, 4)
    got = m.run(x)
    np.testing.assert_array_equal(got["p"], np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0)), constant_values=-1.5))
    np.testing.assert_array_equal(got["z"], np.pad(x, ((0, 0), (0, 1), (2, 0), (0, 0))))
    with pytest.raises(ModelError, match="padding"):
        Model(config({"name": "p", "type": "pad", "inputs": ["in"], "padding": [1, 2]}, outputs=["p"]))


def test_clip_fuses_and_a_function_after_it_runs_on_its_own():
    doc = config({"name": "c", "type": "conv2d", "inputs": ["in"], "filters": 3, "kernel": 1},
                 {"name": "k", "type": "activation", "inputs": ["c"], "function": "clip", "min": -0.25, "max": 0.5},
                 {"name": "h", "type": "activation", "inputs": ["in"], "function": "clip", "max": 0.1},
                 {"name": "r", "type": "activation", "inputs": ["k"], "function": "relu"}, outputs=["r", "h"])
    m = Model(doc)
    # The clip fuses into the conv like any activation; the relu after it does not compose with a clip.
    assert [(n.type, n.layers) for n in m.graph.nodes.values()] == [
        ("conv2d", ["c", "k"]), ("activation", ["h"]), ("activation", ["r"])]
    x = rand(1, 6, 7, 4) * 2
    got = m.run(x)
    plain = Model(doc, optimize=False).run(x)
    np.testing.assert_array_equal(got["h"], np.minimum(x, np.float32(0.1)))
    np.testing.assert_array_equal(got["r"], plain["r"])


def test_clip_activation_chain_is_computed_exactly():
    doc = config({"name": "k", "type": "activation", "inputs": ["in"], "function": "clip", "min": -0.25, "max": 0.5},
                 {"name": "r", "type": "activation", "inputs": ["k"], "function": "relu"}, outputs=["r"])
    x = rand(1, 6, 7, 4)
    np.testing.assert_array_equal(Model(doc).run(x), np.maximum(np.clip(x, -0.25, 0.5), 0))


@pytest.mark.parametrize("fields, message", [
    ({"function": "relu", "max": 1.0}, "expected no max for function 'relu'"),
    ({"function": "clip"}, "expected a min or a max bound"),
    ({"function": "clip", "min": 2.0, "max": 1.0}, "expected min <= max"),
])
def test_clip_bounds_are_checked(fields, message):
    with pytest.raises(ModelError, match=message):
        Model(config({"name": "a", "type": "activation", "inputs": ["in"], **fields}, outputs=["a"]))
