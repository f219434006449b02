"""A relu or relu6 applied to the input as a depthwise or separable convolution reads it
(``input_activation``), against the references on ``act(x)``, and the load-time pass that moves an
activation layer into its one depthwise or separable reader (Xception's blocks: relu(x) feeds the block,
x itself its shortcut).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import pyconv
from conftest import assert_close, rand, rng_for, LEVELS, run_at_level
from reference import activate, depthwise_conv2d_ref, separable_conv2d_ref
from pyconv.graph import Model

CASES = [  # (shape, kernel, stride, dilation, padding, multiplier): the 3x3 specialisations and the rest
    ((2, 13, 11, 70), 3, 1, 1, "same", 1), ((1, 29, 29, 32), 3, 2, 1, "same", 1),
    ((1, 9, 9, 40), 3, 1, 2, "same", 1), ((1, 8, 10, 24), 5, 2, 1, "valid", 1), ((1, 7, 7, 6), 3, 1, 1, "same", 2),
]


def _x(rng, shape):
    return (rand(rng, *shape) * 5.0).astype(np.float32)  # values past 6, for relu6


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("function", ["relu", "relu6"])
@pytest.mark.parametrize("path", LEVELS)
def test_depthwise_input_activation(case, function, path, request):
    run_at_level(request, path)
    shape, k, s, d, padding, m = case
    rng = rng_for("dw-in-act", case, function)
    x, w, b = _x(rng, shape), rand(rng, k, k, shape[3], m), rand(rng, shape[3] * m)
    y = pyconv.depthwise_conv2d(x, w, b, stride=s, dilation=d, padding=padding, activation="relu",
                                input_activation=function, threads=2)
    assert_close(y, depthwise_conv2d_ref(activate(x, function), w, b, stride=s, dilation=d, padding=padding,
                                         activation="relu"))


@pytest.mark.parametrize("shape, cout", [((1, 13, 13, 70), 33), ((1, 7, 7, 1024), 640)], ids=["fused", "two-step"])
@pytest.mark.parametrize("function", ["relu", "relu6"])
@pytest.mark.parametrize("path", LEVELS)
def test_separable_input_activation(shape, cout, function, path, request):
    run_at_level(request, path)
    rng = rng_for("sep-in-act", shape, function)
    x, wd, wp = _x(rng, shape), rand(rng, 3, 3, shape[3]), rand(rng, shape[3], cout) * 0.05
    want = separable_conv2d_ref(activate(x, function), wd, wp, padding="same", depthwise_activation="relu6")
    for threads in (1, 2):
        y = pyconv.separable_conv2d(x, wd, wp, padding="same", depthwise_activation="relu6",
                                    input_activation=function, threads=threads)
        assert_close(y, want)


def test_an_unknown_input_activation_is_rejected():
    with pytest.raises(ValueError, match="input_activation"):
        pyconv.DepthwiseConv2D(np.ones((3, 3, 4), np.float32), input_activation="tanh")


def _block(**extra) -> dict:
    """x -> relu -> separable -> + x (Xception's middle block, one separable deep)."""
    layers = [{"name": "input", "type": "input", "shape": [9, 9, 16]},
              {"name": "act", "type": "activation", "inputs": ["input"], "function": "relu"},
              {"name": "sep", "type": "separable_conv2d", "inputs": ["act"], "filters": 16, "kernel": 3,
               "padding": "same"},
              {"name": "sum", "type": "add", "inputs": ["sep", "input"]}]
    doc = {"format": "pyconv-model", "version": 1, "name": "block", "layers": layers, "outputs": ["sum"]}
    doc.update(extra)
    return doc


def test_the_pass_moves_a_relu_into_its_separable_reader():
    fused, plain = Model(_block(), threads=1), Model(_block(), threads=1, optimize=False)
    assert [n.type for n in fused.graph.nodes.values()] == ["separable_conv2d"]
    node = fused.graph.nodes["sum"]
    assert node.inputs == ["input", "input"] and node.attrs["input_activation"] == "relu"
    assert "act" in node.layers
    x = np.asarray(plain.example_input(seed=3)) * 2.0 - 1.0
    assert_close(fused(x), plain(x))


@pytest.mark.parametrize("change", ["relu is an output", "relu has two readers"])
def test_the_pass_leaves_a_relu_others_can_see(change):
    doc = _block()
    if change == "relu is an output":
        doc["outputs"] = ["sum", "act"]
    else:
        doc["layers"].append({"name": "pool", "type": "max_pool", "inputs": ["act"], "pool": 3, "stride": 1,
                              "padding": "same"})
        doc["outputs"] = ["sum", "pool"]
    fused, plain = Model(json.loads(json.dumps(doc)), threads=1), Model(doc, threads=1, optimize=False)
    assert "act" in fused.graph.nodes
    assert not any(n.attrs.get("input_activation") for n in fused.graph.nodes.values())
    x = np.asarray(plain.example_input(seed=4)) * 2.0 - 1.0
    for name in ("sum",):
        assert_close(fused(x)[name], plain(x)[name])
