"""ONNX import of the activation operators: Sigmoid, HardSigmoid, HardSwish, LeakyRelu, PRelu, Tanh and
Clip in every bound form, from PyTorch exports (tests/onnx_models.py ActivationNet) and hand-built
graphs, each compared with onnxruntime on the same file.  Skipped when onnx, onnxruntime or torch is
missing."""
from __future__ import annotations

import collections

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

import onnx_graphs as og  # noqa: E402
import onnx_models as om  # noqa: E402  (needs torch)
from onnx import helper  # noqa: E402

import pyconv  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TOL = 1e-4
nn = torch.nn


def assert_matches(model: pyconv.Model, data: bytes, x: np.ndarray) -> None:
    refs = og.ort_run(data, {"input": x})
    got = model.run(x)
    got = list(got.values()) if isinstance(got, dict) else [got]
    for g, ref in zip(got, refs):
        assert g.shape == ref.shape
        err = float(np.abs(g - ref).max()) / max(1.0, float(np.abs(ref).max()))
        assert err <= TOL, f"max |pyconv - onnxruntime| / scale = {err:.2e}"


def image(shape, seed=0, scale=3.0) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(-1, 1, shape) * scale).astype(np.float32)


ACTS = {
    "sigmoid": (nn.Sigmoid, 13),
    "hardsigmoid": (nn.Hardsigmoid, 13),
    "hardswish": (nn.Hardswish, 14),
    "leaky_relu": (lambda: nn.LeakyReLU(0.1), 13),
    "tanh": (nn.Tanh, 13),
    "prelu": (nn.PReLU, 13),
    "relu6": (nn.ReLU6, 13),
    "hardtanh": (lambda: nn.Hardtanh(-0.5, 0.75), 13),
    "hardtanh_opset10": (lambda: nn.Hardtanh(-0.5, 0.75), 10),
    "elu": (lambda: nn.ELU(0.7), 13),
    "selu": (nn.SELU, 13),
    "softplus": (nn.Softplus, 13),
    "mish": (nn.Mish, 18),
    "gelu": (nn.GELU, 20),
    "gelu_tanh": (lambda: nn.GELU("tanh"), 20),
}


@pytest.mark.parametrize("name", ACTS)
def test_torch_activation_net_matches_onnxruntime(name):
    act, opset = ACTS[name]
    torch.manual_seed(0)
    net = om.randomize_bn(om.ActivationNet(act))
    if name == "prelu":
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.PReLU):
                    m.weight.uniform_(-0.5, 0.5)
    data = om.export(net, (2, 3, 20, 18), opset)
    model = pyconv.from_onnx(data)
    assert_matches(model, data, image((2, 3, 20, 18)))
    # Every activation fuses into the convolution, pool or linear layer before it (PReLU is a layer).
    kinds = collections.Counter(n.type for n in model.graph.nodes.values())
    assert kinds["activation"] == 0 and kinds["prelu"] == (5 if name == "prelu" else 0)


@pytest.mark.parametrize("act, opset, function", [(nn.SiLU, 13, "silu"), (nn.Hardswish, 11, "hard_swish"),
                                                   (nn.Hardswish, 13, "hard_swish")])
def test_exported_gates_become_one_fused_activation(act, opset, function):
    # SiLU exports as x * Sigmoid(x), HardSwish before opset 14 as x * HardSigmoid(x): Mul of two computed
    # tensors, the multiply layer.
    from pyconv.graph.layers import LAYER_TYPES
    if "multiply" not in LAYER_TYPES:
        pytest.skip("the multiply layer is not in this build yet")
    torch.manual_seed(0)
    data = om.export(om.randomize_bn(om.ActivationNet(act)), (2, 3, 20, 18), opset)
    model = pyconv.from_onnx(data)
    assert_matches(model, data, image((2, 3, 20, 18)))
    nodes = list(model.graph.nodes.values())
    assert not any(n.type in ("multiply", "activation") for n in nodes)
    assert sum(n.attrs.get("activation") == function for n in nodes) == 4


def make_model(nodes, outputs, initializers=(), opset=13, shape=(2, 4, 7, 6)) -> bytes:
    """``nodes`` reading ``input`` of ``shape``, computing ``outputs``."""
    return og.make_model(nodes, [og.tensor("input", list(shape))], [og.tensor(o) for o in outputs], initializers,
                         opset)


def test_hand_built_activation_operators():
    f32 = np.float32
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("HardSigmoid", ["c"], ["hs"], alpha=0.3, beta=0.4),
             helper.make_node("HardSigmoid", ["input"], ["hs_default"]),
             helper.make_node("LeakyRelu", ["input"], ["lr"]),
             helper.make_node("Sigmoid", ["c"], ["sg"]),
             helper.make_node("Tanh", ["input"], ["th"]),
             helper.make_node("HardSwish", ["input"], ["hw"]),
             helper.make_node("PRelu", ["input", "slope_c"], ["pc"]),
             helper.make_node("PRelu", ["input", "slope_s"], ["ps"]),
             helper.make_node("PRelu", ["input", "slope_hw"], ["phw"]),
             helper.make_node("PRelu", ["input", "slope_1"], ["p1"]),
             helper.make_node("Clip", ["input", "lo"], ["clip_lo"]),
             helper.make_node("Clip", ["input", "", "hi"], ["clip_hi"]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["clip_both"]),
             helper.make_node("Clip", ["input"], ["clip_none"]),
             helper.make_node("Clip", ["input", "zero", "six"], ["clip_relu6"])]
    rng = np.random.default_rng(1)
    inits = {"w": rng.uniform(-0.5, 0.5, (5, 4, 3, 3)).astype(f32),
             "slope_c": rng.uniform(-1, 1, (4, 1, 1)).astype(f32), "slope_s": np.array([0.25], f32),
             "slope_hw": rng.uniform(-1, 1, (4, 7, 6)).astype(f32), "slope_1": rng.uniform(-1, 1, (1, 6)).astype(f32),
             "lo": np.array(-0.3, f32), "hi": np.array(0.6, f32), "zero": np.array(0.0, f32),
             "six": np.array(6.0, f32)}
    outputs = [n.output[0] for n in nodes[1:]]
    data = make_model(nodes, outputs, inits, opset=14)
    model = pyconv.from_onnx(data)
    x = image((2, 4, 7, 6), seed=2)
    x[0, 0, 0, :4] = [np.nan, np.inf, -np.inf, 0.0]
    refs = og.ort_run(data, {"input": x})
    got = model.run(x)
    for name, ref in zip(outputs, refs):
        g = got[name]
        assert g.shape == ref.shape, name
        np.testing.assert_array_equal(np.isnan(g), np.isnan(ref), err_msg=name)
        keep = ~np.isnan(ref)
        if name.startswith("clip"):
            # onnxruntime clips an absent bound at +-FLT_MAX, so inf comes out finite; pyconv (and
            # PyTorch's clamp) keep it inf.
            keep &= np.abs(ref) < 3e38
        np.testing.assert_allclose(g[keep], ref[keep], rtol=TOL, atol=TOL, err_msg=name)
    functions = {layer["name"]: layer.get("function") for layer in model.spec.document["layers"]}
    assert functions["clip_relu6"] == "relu6" and functions["hs"] == "hard_sigmoid"
    assert not any(layer["name"] == "clip_none" and layer["type"] == "activation"
                   for layer in model.spec.document["layers"])


def test_prelu_slope_that_does_not_broadcast_is_refused():
    nodes = [helper.make_node("PRelu", ["input", "slope"], ["y"])]
    data = make_model(nodes, ["y"], {"slope": np.ones((3, 1), np.float32)}, shape=(1, 4, 7, 6))
    with pytest.raises(pyconv.OnnxImportError, match="slope"):
        pyconv.from_onnx(data)


@pytest.mark.parametrize("act, opset, dynamo, function", [
    (nn.GELU, 17, False, "gelu"), (nn.GELU, 13, False, "gelu"), (nn.GELU, 18, True, "gelu"),
    (nn.Mish, 17, False, "mish"), (nn.Mish, 13, False, "mish"), (nn.Mish, 18, True, "mish")])
def test_exported_gelu_and_mish_become_one_fused_activation(act, opset, dynamo, function):
    # Before opset 20 (18 for Mish) exporters spell these out: 0.5 x (1 + erf(x / sqrt 2)) in either
    # exporter's order, x * tanh(softplus(x)); each becomes one activation fused into the layer before.
    if dynamo:
        pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    net = om.randomize_bn(om.ActivationNet(act))
    data = om.export(net, (2, 3, 20, 18), opset, dynamo=dynamo)
    model = pyconv.from_onnx(data)
    assert_matches(model, data, image((2, 3, 20, 18)))
    kinds = collections.Counter(n.type for n in model.graph.nodes.values())
    assert kinds["activation"] == 0 and kinds["multiply"] == 0 and kinds["scale_shift"] == 0
    acts = [n.attrs.get("activation") for n in model.graph.nodes.values()]
    assert function in acts


def test_gelu_pattern_needs_its_constants():
    # Div by 1.5 instead of sqrt(2): not a GELU; the Erf stays and is refused by name.
    nodes = [helper.make_node("Div", ["input", "c"], ["d"]), helper.make_node("Erf", ["d"], ["e"], name="erf"),
             helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["input", "a"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["output"])]
    inits = {"c": np.float32(1.5), "one": np.float32(1.0), "half": np.float32(0.5)}
    data = og.make_model(nodes, [og.tensor("input", [1, 2, 3, 3])], [og.tensor("output")],
                         initializers={k: np.array(v) for k, v in inits.items()})
    with pytest.raises(pyconv.OnnxImportError, match=r"\(Erf, 'erf'\)"):
        pyconv.from_onnx(data)
