"""Activations in model configs: the ``activation`` layer's functions and parameters, the ``activation``
field of the layers that take one (a name or a mapping), the ``prelu`` layer, and the load-time
fusions (into producers, through a concat, the depthwise input path, the multiply gates), each checked
against the independent reference (tests/model_reference.py) and the unoptimised graph."""
from __future__ import annotations

import numpy as np
import pytest

import model_reference as mr
from conftest import model_config
from pyconv.graph import Model, ModelError
from pyconv.graph.passes import Graph, Node, _fuse_activations, _fuse_gates


def config(*layers: dict, outputs, shape=(8, 9, 6)) -> dict:
    return model_config(*layers, outputs=outputs, shape=shape, input_name="in")


def rand(*shape, seed=0, scale=2.0):
    return (np.random.default_rng(seed).uniform(-1, 1, shape) * scale).astype(np.float32)


def flat(weights) -> dict:
    return {f"{layer}/{k}": v for layer, params in weights.items() for k, v in params.items()}


def check_model(doc: dict, x: np.ndarray) -> Model:
    """The optimised model, the unoptimised one and the reference agree; returns the optimised one."""
    m = Model(doc)
    plain = Model(doc, optimize=False, weights=m.weights)
    want = mr.run(doc, flat(m.weights), x)
    got, got_plain = m.run(x), plain.run(x)
    if not isinstance(got, dict):
        got, got_plain = {doc["outputs"][0]: got}, {doc["outputs"][0]: got_plain}
    for name, ref in zip(doc["outputs"], want):
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got[name], ref, rtol=1e-4, atol=1e-4 * scale, err_msg=name)
        np.testing.assert_allclose(got_plain[name], ref, rtol=1e-4, atol=1e-4 * scale, err_msg=name)
    return m


def test_activation_layers_and_fields_fuse_and_match_the_reference():
    doc = config(
        {"name": "c1", "type": "conv2d", "inputs": ["in"], "filters": 8, "kernel": 3, "padding": "same",
         "activation": {"function": "leaky_relu", "alpha": 0.2}},
        # After a producer with an activation of its own: stays a node.
        {"name": "a1", "type": "activation", "inputs": ["c1"], "function": "sigmoid"},
        {"name": "d1", "type": "depthwise_conv2d", "inputs": ["a1"], "kernel": 3, "padding": "same",
         "activation": "hard_swish"},
        {"name": "p1", "type": "pointwise_conv2d", "inputs": ["d1"], "filters": 8},
        {"name": "bn", "type": "batch_norm", "inputs": ["p1"], "activation": "silu"},
        {"name": "a2", "type": "activation", "inputs": ["bn"], "function": "tanh"},
        {"name": "c2", "type": "conv2d", "inputs": ["in"], "filters": 3, "kernel": 1},
        {"name": "c3", "type": "conv2d", "inputs": ["in"], "filters": 5, "kernel": 3, "padding": "same"},
        {"name": "cat", "type": "concat", "inputs": ["c2", "c3"]},
        {"name": "a3", "type": "activation", "inputs": ["cat"], "function": "hard_sigmoid", "alpha": 0.25,
         "beta": 0.4},
        {"name": "sum", "type": "add", "inputs": ["a2", "a3"],
         "activation": {"function": "clip", "min": -0.3, "max": 0.45}},
        {"name": "pr", "type": "prelu", "inputs": ["sum"]},
        {"name": "c4", "type": "conv2d", "inputs": ["pr"], "filters": 4, "kernel": 1},
        {"name": "a4", "type": "activation", "inputs": ["c4"], "function": "leaky_relu", "alpha": 0.3},
        {"name": "gap", "type": "global_avg_pool", "inputs": ["a4"]},
        {"name": "fc", "type": "dense", "inputs": ["gap"], "units": 7, "activation": "sigmoid"},
        outputs=["fc", "a4"])
    m = check_model(doc, rand(2, 8, 9, 6))
    nodes = {n.name: (n.type, n.layers) for n in m.graph.nodes.values()}
    assert nodes["a1"] == ("activation", ["a1"])
    assert nodes["bn"][0] == "separable_conv2d" and nodes["a2"] == ("activation", ["a2"])
    # The hard_sigmoid after the concat moved into both convolutions.
    assert "a3" in nodes and nodes["a3"][0] == "concat"
    assert m.graph.nodes["c2"].attrs["activation"] == {"function": "hard_sigmoid", "alpha": 0.25, "beta": 0.4}
    assert nodes["a4"] == ("conv2d", ["c4", "a4"])
    assert m.graph.nodes["a4"].attrs["activation"] == {"function": "leaky_relu", "alpha": 0.3}


@pytest.mark.parametrize("function", ["sigmoid", "hard_swish", "silu", "tanh", "leaky_relu", "hard_sigmoid",
                                      "relu6", "gelu", "gelu_tanh", "elu", "selu", "softplus", "mish"])
def test_each_function_fuses_into_a_conv(function):
    doc = config({"name": "c", "type": "conv2d", "inputs": ["in"], "filters": 5, "kernel": 3},
                 {"name": "a", "type": "activation", "inputs": ["c"], "function": function}, outputs=["a"])
    m = check_model(doc, rand(1, 8, 9, 6, seed=1))
    assert [(n.type, n.layers) for n in m.graph.nodes.values()] == [("conv2d", ["c", "a"])]


def test_relu_and_relu6_still_compose_and_move_into_a_depthwise_input():
    doc = config({"name": "c", "type": "conv2d", "inputs": ["in"], "filters": 6, "kernel": 1, "activation": "relu"},
                 {"name": "a", "type": "activation", "inputs": ["c"], "function": "relu6"},
                 {"name": "s", "type": "activation", "inputs": ["in"], "function": "sigmoid"},
                 {"name": "d", "type": "depthwise_conv2d", "inputs": ["s"], "kernel": 3},
                 {"name": "r", "type": "activation", "inputs": ["in"], "function": "relu6"},
                 {"name": "e", "type": "depthwise_conv2d", "inputs": ["r"], "kernel": 3},
                 {"name": "sum", "type": "add", "inputs": ["in", "a"]}, outputs=["sum", "d", "e"])
    m = check_model(doc, rand(1, 8, 9, 6, seed=2))
    assert m.graph.nodes["a"].attrs["activation"] == "relu6"
    # A sigmoid is not fused into the depthwise kernel's reads; a relu6 is.
    assert "s" in m.graph.nodes and not m.graph.nodes["d"].attrs.get("input_activation")
    assert "r" not in m.graph.nodes and m.graph.nodes["e"].attrs["input_activation"] == "relu6"


def test_prelu_layer_shapes_and_errors():
    doc = config({"name": "p", "type": "prelu", "inputs": ["in"], "alpha_shape": [1, 9, 6]}, outputs=["p"])
    m = check_model(doc, rand(2, 8, 9, 6, seed=3))
    assert m.weights["p"]["alpha"].shape == (1, 9, 6)
    assert Model(config({"name": "p", "type": "prelu", "inputs": ["in"]}, outputs=["p"])).weights["p"][
        "alpha"].shape == (6,)
    with pytest.raises(ModelError, match="alpha_shape"):
        Model(config({"name": "p", "type": "prelu", "inputs": ["in"], "alpha_shape": [9, 2]}, outputs=["p"]))


@pytest.mark.parametrize("field, message, where", [
    ({"activation": {"function": "leaky_relu", "beta": 1.0}}, "unknown field 'beta'", "activation.beta"),
    ({"activation": {"function": "swish"}}, "expected null, a function name", "activation"),
    ({"activation": "swish"}, "expected null, a function name", "activation"),
    ({"activation": {"function": "clip", "min": "0"}}, "expected null, a function name", "activation"),
])
def test_activation_field_errors_name_the_layer_and_field(field, message, where):
    with pytest.raises(ModelError, match=message) as e:
        Model(config({"name": "c", "type": "conv2d", "inputs": ["in"], "filters": 2, "kernel": 1, **field},
                     outputs=["c"]))
    assert e.value.layer == "c" and e.value.field == where


@pytest.mark.parametrize("fields, message", [
    ({"function": "sigmoid", "alpha": 1.0}, "expected no alpha for function 'sigmoid'"),
    ({"function": "leaky_relu", "min": 1.0}, "expected no min"),
    ({"function": "softsign"}, "expected one of"),
])
def test_activation_layer_errors(fields, message):
    with pytest.raises(ModelError, match=message):
        Model(config({"name": "a", "type": "activation", "inputs": ["in"], **fields}, outputs=["a"]))


# --- multiply(x, gate(x)) -----------------------------------------------------------------------------
# The multiply layer is another branch's; these build the graph by hand against its agreed form (type
# "multiply", two inputs, an optional activation).

def _node(name, type, inputs, **attrs) -> Node:
    return Node(name=name, type=type, inputs=list(inputs), attrs=attrs, weights={}, layers=[name],
                in_shapes=[(4, 4, 3)] * len(inputs), out_shape=(4, 4, 3))


def _gate_graph(gate: dict, order=("c", "g"), multiply_act=None, outputs=("m",)) -> Graph:
    nodes = [_node("c", "conv2d", ["in"], activation=None),
             _node("g", "activation", ["c"], **{"min": None, "max": None, **gate}),
             _node("m", "multiply", order, activation=multiply_act)]
    return Graph(nodes={n.name: n for n in nodes}, inputs=["in"], outputs={o: o for o in outputs})


@pytest.mark.parametrize("gate, order, result", [
    ({"function": "sigmoid"}, ("c", "g"), "silu"),
    ({"function": "sigmoid"}, ("g", "c"), "silu"),
    ({"function": "hard_sigmoid", "alpha": 0.16666667, "beta": 0.5}, ("c", "g"), "hard_swish"),
])
def test_gates_become_one_activation_and_fuse(gate, order, result):
    graph = _gate_graph(gate, order)
    _fuse_gates(graph)
    assert [(n.name, n.type, n.inputs) for n in graph.nodes.values()] == [("c", "conv2d", ["in"]),
                                                                          ("m", "activation", ["c"])]
    assert graph.nodes["m"].attrs["function"] == result and graph.nodes["m"].layers == ["g", "m"]
    _fuse_activations(graph)
    assert [(n.name, n.type, n.attrs["activation"], n.layers) for n in graph.nodes.values()] == [
        ("m", "conv2d", result, ["c", "g", "m"])]


@pytest.mark.parametrize("gate, multiply_act, outputs", [
    ({"function": "hard_sigmoid"}, None, ("m",)),  # ONNX's default alpha 0.2 is not hard_swish's gate
    ({"function": "tanh"}, None, ("m",)),
    ({"function": "sigmoid"}, "relu", ("m",)),  # silu then relu is no single activation
    ({"function": "sigmoid"}, None, ("m", "g")),  # the gate is observed
])
def test_gates_left_alone(gate, multiply_act, outputs):
    graph = _gate_graph(gate, multiply_act=multiply_act, outputs=outputs)
    _fuse_gates(graph)
    assert [n.type for n in graph.nodes.values()] == ["conv2d", "activation", "multiply"]


def test_torch_twin_matches():
    torch = pytest.importorskip("torch")
    from pyconv.testing.torch_twin import build_twin
    doc = config({"name": "c", "type": "conv2d", "inputs": ["in"], "filters": 6, "kernel": 3, "padding": "same",
                  "activation": {"function": "leaky_relu", "alpha": 0.2}},
                 {"name": "a", "type": "activation", "inputs": ["c"], "function": "hard_sigmoid", "alpha": 0.3},
                 {"name": "p", "type": "prelu", "inputs": ["a"], "alpha_shape": [1, 9, 6]},
                 {"name": "q", "type": "prelu", "inputs": ["p"]},
                 {"name": "s", "type": "add", "inputs": ["q", "in"], "activation": "silu"},
                 {"name": "h", "type": "activation", "inputs": ["s"], "function": "hard_swish"},
                 {"name": "k", "type": "activation", "inputs": ["h"], "function": "clip", "max": 0.4},
                 outputs=["k"])
    m = Model(doc)
    x = rand(2, 8, 9, 6, seed=4)
    with torch.no_grad():
        want = build_twin(doc, flat(m.weights))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(m.run(x), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("function", ["gelu", "gelu_tanh", "elu", {"function": "elu", "alpha": 0.4}, "selu",
                                      {"function": "selu", "alpha": 1.2, "beta": 0.9}, "softplus", "mish"])
def test_torch_twin_matches_the_smooth_functions(function):
    torch = pytest.importorskip("torch")
    from pyconv.testing.torch_twin import build_twin
    doc = config({"name": "c", "type": "conv2d", "inputs": ["in"], "filters": 6, "kernel": 3, "padding": "same",
                  "activation": function},
                 {"name": "s", "type": "add", "inputs": ["c", "in"], "activation": function}, outputs=["s"])
    m = Model(doc)
    x = rand(2, 8, 9, 6, seed=5) * 3
    with torch.no_grad():
        want = build_twin(doc, flat(m.weights))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(m.run(x), want, rtol=1e-5, atol=1e-5)
