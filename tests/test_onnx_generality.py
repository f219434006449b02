"""ONNX import beyond the named networks: mobile CNNs and blocks written the ways the model zoos write
them (tests/onnx_models.py: the MBConv family, squeeze-excitation in every common spelling, RegNet,
SqueezeNet 1.1, ResNet-18, a DenseNet with batch norms after concatenations), exported by the
TorchScript exporter at opsets 13 and 17 and by the dynamo exporter, each compared with onnxruntime on
the very same file; and hand-built graphs (onnx.helper) for the forms they produce: (N, C) <-> (N, C, 1)
<-> (N, C, 1, 1) through Unsqueeze, Squeeze and Reshape, Expand of a computed tensor, reflect and edge
Pad. Skipped when torch, onnx or onnxruntime is missing; ``pytest.importorskip("onnxscript")`` guards
the dynamo exports.
"""
from __future__ import annotations

import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

import onnx_graphs as og  # noqa: E402
import onnx_models as om  # noqa: E402  (needs torch)
from onnx import helper  # noqa: E402

import pyconv  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")

TOL = 1e-4


def export(model, shape, exporter) -> bytes:
    """``model`` exported at input ``shape`` by the TorchScript exporter at opset ``exporter`` (an int)
    or by the dynamo exporter (``"dynamo"``), input "input", output "output"."""
    model = om.randomize_bn(model)
    if exporter != "dynamo":
        return om.export(model, shape, exporter)
    pytest.importorskip("onnxscript")
    f = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(shape),), dynamo=True, input_names=["input"], output_names=["output"],
                          verbose=False).save(f)
    return f.getvalue()


def assert_matches(data: bytes, shape, name: str = "input") -> pyconv.Model:
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    (ref,) = og.ort_run(data, {name: x})
    model = pyconv.from_onnx(data, threads=1)
    got = model.run(x)
    assert got.shape == ref.shape
    err = float(np.abs(got - ref).max()) / max(1.0, float(np.abs(ref).max()))
    assert err <= TOL, f"max |pyconv - onnxruntime| / scale = {err:.2e}"
    return model


# --- networks ----------------------------------------------------------------------------------------

NETWORKS = {
    **{name: (lambda kw=kw: om.MBConvNet(**kw), 48) for name, kw in om.MBCONV_NETS.items()},
    "regnetx_400mf": (lambda: om.RegNet(se=False), 32),
    "regnety_400mf": (lambda: om.RegNet(se=True), 32),
    "squeezenet1_1": (om.SqueezeNet11, 35),
    "densenet": (om.DenseNet, 32),
    "resnet18": (lambda: om.ResNet18(0.25), 32),
}
# One exporter per network in the default run (the others under slow), cycling over the three.
EXPORTERS = [13, 17, "dynamo"]
CASES = [pytest.param(name, exporter, marks=() if exporter == EXPORTERS[i % 3] else pytest.mark.slow)
         for i, name in enumerate(NETWORKS) for exporter in EXPORTERS]


@pytest.mark.parametrize("name,exporter", CASES)
def test_network_matches_onnxruntime(name, exporter):
    make, size = NETWORKS[name]
    torch.manual_seed(0)
    shape = (1, 3, size, size)
    assert_matches(export(make(), shape, exporter), shape)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnasnet_a1", "tinynet", "regnety_400mf", "squeezenet1_1"])
def test_network_at_224(name):
    torch.manual_seed(0)
    shape = (1, 3, 224, 224)
    assert_matches(export(NETWORKS[name][0](), shape, 13), shape)


class _SEBlock(torch.nn.Module):
    def __init__(self, spell: str, gate: str) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, 2, 1)
        self.se = om.SqueezeExcite(16, spell, gate)

    def forward(self, x):
        return self.se(torch.relu(self.conv(x)))


SPELLS = ["none_none", "unsqueeze", "view", "expand_as", "reshape", "conv_mean", "conv_pool", "conv_module"]


@pytest.mark.parametrize("exporter", [13, 17, "dynamo"])
@pytest.mark.parametrize("spell", SPELLS)
def test_squeeze_excite_spellings(spell, exporter):
    torch.manual_seed(0)
    gate = {"view": "hardsigmoid", "conv_mean": "relu6_div"}.get(spell, "sigmoid")
    shape = (1, 3, 13, 11)
    model = assert_matches(export(_SEBlock(spell, gate), shape, exporter), shape)
    # The gate is applied by broadcasting, never by materialising it at the image's size.
    assert not any(layer["type"] == "resize" for layer in model.spec.document["layers"])


# --- hand-built graphs -------------------------------------------------------------------------------

def _weights(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)


def _gate_graph(steps, opset=13, extra_outputs=()):
    """x (2, 4, 5, 3) -> mean over H, W (N, C) -> ``steps`` (nodes from "v" to "g") -> x * g."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["v"], axes=[2, 3], keepdims=0), *steps,
             helper.make_node("Mul", ["x", "g"], ["y"])]
    inits = {"a2": np.array([2], np.int64), "a3": np.array([3], np.int64), "am1": np.array([-1], np.int64),
             "c1": np.array([0, 4, 1], np.int64), "c11": np.array([0, 4, 1, 1], np.int64)}
    return og.make_model(nodes, [og.tensor("x", [2, 4, 5, 3])], [og.tensor(o) for o in ("y", *extra_outputs)],
                         inits, opset)


GATES = {
    "unsqueeze_2_3": [helper.make_node("Unsqueeze", ["v", "a2"], ["u"]),
                      helper.make_node("Unsqueeze", ["u", "a3"], ["g"])],
    "unsqueeze_neg": [helper.make_node("Unsqueeze", ["v", "am1"], ["u"]),
                      helper.make_node("Sigmoid", ["u"], ["s"]), helper.make_node("Unsqueeze", ["s", "am1"], ["g"])],
    "reshape_then_unsqueeze": [helper.make_node("Reshape", ["v", "c1"], ["u"]),
                               helper.make_node("Unsqueeze", ["u", "a3"], ["g"])],
    "squeeze_back": [helper.make_node("Unsqueeze", ["v", "a2"], ["u"]), helper.make_node("Squeeze", ["u", "a2"], ["f"]),
                     helper.make_node("Reshape", ["f", "c11"], ["g"])],
    "column_mul": [helper.make_node("Unsqueeze", ["v", "a2"], ["u"]), helper.make_node("Mul", ["u", "u"], ["m"]),
                   helper.make_node("Unsqueeze", ["m", "a3"], ["g"])],
}


@pytest.mark.parametrize("name", GATES)
def test_gate_reshapes(name):
    data = _gate_graph(GATES[name])
    x = np.random.default_rng(1).uniform(-1, 1, (2, 4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(pyconv.from_onnx(data).run(x), og.ort_run(data, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_column_tensor_observable_and_as_output():
    data = _gate_graph(GATES["unsqueeze_2_3"], extra_outputs=("u",))
    x = np.random.default_rng(2).uniform(-1, 1, (2, 4, 5, 3)).astype(np.float32)
    y, u = og.ort_run(data, {"x": x})
    model = pyconv.from_onnx(data)
    got = model.run(x)
    assert got["u"].shape == (2, 4, 1)
    np.testing.assert_allclose(got["u"], u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["y"], y, rtol=1e-5, atol=1e-6)
    assert model.run(x, outputs=["u", "g"])["u"].shape == (2, 4, 1)


def test_column_against_image_refused():
    nodes = [helper.make_node("ReduceMean", ["x"], ["v"], axes=[2, 3], keepdims=0),
             helper.make_node("Unsqueeze", ["v", "a2"], ["u"]), helper.make_node("Mul", ["x", "u"], ["y"])]
    data = og.make_model(nodes, [og.tensor("x", [1, 4, 4, 3])], [og.tensor("y")], {"a2": np.array([2], np.int64)})
    with pytest.raises(pyconv.OnnxImportError, match=r"Mul.*3-D \(N, C, 1\) operand"):
        pyconv.from_onnx(data)


def _expand_graph(then, target=(1, 4, 5, 3)):
    """x (1, 4, 5, 3) -> global average pool (N, C, 1, 1) -> Expand to ``target`` -> ``then``."""
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Expand", ["p", "shape"], ["e"]),
             *then]
    return og.make_model(nodes, [og.tensor("x", [1, 4, 5, 3])], [og.tensor("y")],
                         {"shape": np.array(target, np.int64), "w": _weights(6, 4, 3, 3)})


EXPANDS = {
    # Read by broadcasting ops against the full shape: nothing materialised.
    "mul": ([helper.make_node("Mul", ["x", "e"], ["y"])], False),
    "sub_and_add": ([helper.make_node("Sub", ["e", "x"], ["s"]), helper.make_node("Add", ["s", "e"], ["y"])], True),
    # Read by a convolution: repeated over H and W.
    "conv": ([helper.make_node("Conv", ["e", "w"], ["y"], pads=[1, 1, 1, 1])], True),
    "output": ([helper.make_node("Identity", ["e"], ["y"])], True),
}


@pytest.mark.parametrize("name", EXPANDS)
def test_expand(name):
    then, materialised = EXPANDS[name]
    data = _expand_graph(then)
    x = np.random.default_rng(3).uniform(-1, 1, (1, 4, 5, 3)).astype(np.float32)
    model = pyconv.from_onnx(data)
    np.testing.assert_allclose(model.run(x), og.ort_run(data, {"x": x})[0], rtol=1e-5, atol=1e-6)
    assert any(layer["type"] == "resize" for layer in model.spec.document["layers"]) == materialised


def test_expand_refusals():
    for target in ((2, 1, 4, 5, 3), (3, 4, 5, 3)):  # another rank; repeating the batch
        with pytest.raises(pyconv.OnnxImportError, match=r"Expand.*only a target of the same rank"):
            pyconv.from_onnx(_expand_graph([helper.make_node("Identity", ["e"], ["y"])], target))
    # Repeating a single channel: no pyconv layer does that.
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"]), helper.make_node("Expand", ["c", "shape"], ["e"]),
             helper.make_node("Conv", ["e", "w"], ["y"])]
    data = og.make_model(nodes, [og.tensor("x", [1, 4, 5, 3])], [og.tensor("y")],
                         {"shape": np.array([1, 4, 5, 3], np.int64), "w1": _weights(1, 4, 1, 1),
                          "w": _weights(6, 4, 3, 3)})
    with pytest.raises(pyconv.OnnxImportError, match=r"Expand.*only repeating the unit spatial axes"):
        pyconv.from_onnx(data)


def _pad_reference(x: np.ndarray, pads, mode: str) -> np.ndarray:
    """Pads H and W of NCHW ``x`` pixel by pixel: each output pixel's source index, mirrored about the
    edge (reflect) or clamped to it (edge)."""
    (top, bottom), (left, right) = pads
    n, c, h, w = x.shape
    out = np.empty((n, c, h + top + bottom, w + left + right), x.dtype)

    def source(i, size):
        if mode == "edge":
            return min(max(i, 0), size - 1)
        period = 2 * (size - 1)
        i = abs(i) % period if period else 0
        return period - i if i >= size else i
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, source(i - top, h), source(j - left, w)]
    return out


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("mode,pads", [("reflect", [[1, 2], [3, 0]]), ("reflect", [[4, 4], [2, 2]]),
                                      ("edge", [[0, 5], [1, 2]]), ("edge", [[3, 3], [3, 3]])])
def test_reflect_and_edge_pad(mode, pads, opset):
    (top, bottom), (left, right) = pads
    inits = {"pads": np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), "w": _weights(2, 3, 3, 3)}
    inputs = ["x", "pads"]
    if opset >= 18:  # pads for the listed axes only
        inits["pads"], inits["axes"] = np.array([top, left, bottom, right], np.int64), np.array([2, 3], np.int64)
        inputs += ["", "axes"]
    nodes = [helper.make_node("Pad", inputs, ["p"], mode=mode), helper.make_node("Conv", ["p", "w"], ["y"])]
    data = og.make_model(nodes, [og.tensor("x", [2, 3, 5, 6])], [og.tensor("y")], inits, opset)
    x = np.random.default_rng(4).uniform(-1, 1, (2, 3, 5, 6)).astype(np.float32)
    model = pyconv.from_onnx(data)
    np.testing.assert_allclose(model.run(x), og.ort_run(data, {"x": x})[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(model.run(x, outputs=["p"])["p"], _pad_reference(x, pads, mode))


def test_pad_layer_modes_against_reference():
    x = np.random.default_rng(5).uniform(-1, 1, (1, 4, 3, 2)).astype(np.float32)  # NHWC
    for mode, pads in (("reflect", [[3, 2], [1, 1]]), ("edge", [[0, 4], [3, 0]]), ("constant", [[1, 0], [0, 2]])):
        config = {"format": "pyconv-model", "version": 1, "name": "pad", "layers": [
            {"name": "x", "type": "input", "shape": [4, 3, 2]},
            {"name": "y", "type": "pad", "inputs": ["x"], "padding": pads, "mode": mode, "value": 0.0}],
            "outputs": ["y"]}
        got = pyconv.load(config).run(x)
        reference = _pad_reference(x.transpose(0, 3, 1, 2), pads, mode if mode != "constant" else "edge")
        if mode == "constant":
            (top, bottom), (left, right) = pads
            reference = np.zeros_like(reference)
            reference[:, :, top:top + 4, left:left + 3] = x.transpose(0, 3, 1, 2)
        np.testing.assert_array_equal(got, reference.transpose(0, 2, 3, 1))


def test_reflect_pad_wider_than_the_input_refused():
    config = {"format": "pyconv-model", "version": 1, "name": "pad", "layers": [
        {"name": "x", "type": "input", "shape": [3, 5, 2]},
        {"name": "y", "type": "pad", "inputs": ["x"], "padding": [[3, 0], [0, 0]], "mode": "reflect"}],
        "outputs": ["y"]}
    with pytest.raises(pyconv.ModelError, match="each pad must be below") as info:
        pyconv.load(config)
    assert info.value.layer == "y" and info.value.field == "padding"
    config["layers"][1].update(padding=[[1, 1], [1, 1]], mode="wrap")
    with pytest.raises(pyconv.ModelError, match=r"field .mode.*found \"wrap\""):
        pyconv.load(config)


@pytest.mark.parametrize("op,what", [("Erf", "GELU"), ("Celu", "CELU"), ("Softsign", "Softsign")])
def test_missing_activation_named(op, what):
    data = og.make_model([helper.make_node(op, ["x"], ["y"], name="act")], [og.tensor("x", [1, 2, 3, 3])],
                         [og.tensor("y")])
    with pytest.raises(pyconv.OnnxImportError, match=rf"\({op}, 'act'\) \[.*{what}") as info:
        pyconv.from_onnx(data)
    assert "hard_swish" in info.value.hint


@pytest.mark.parametrize("form", ["GlobalMaxPool", "ReduceMax_keepdims", "ReduceMax_flat", "ReduceMax_axes_input"])
def test_global_max(form):
    """dynamo exports ``F.adaptive_max_pool2d(x, 1)`` as ReduceMax over (2, 3); other exporters write
    GlobalMaxPool. The window follows the input size when the model runs at another one."""
    opset = 18 if form == "ReduceMax_axes_input" else 13
    if form == "GlobalMaxPool":
        node = helper.make_node("GlobalMaxPool", ["c"], ["m"])
    elif form == "ReduceMax_axes_input":
        node = helper.make_node("ReduceMax", ["c", "axes"], ["m"], keepdims=0)
    else:
        node = helper.make_node("ReduceMax", ["c"], ["m"], axes=[-1, 2], keepdims=int(form.endswith("keepdims")))
    then = (helper.make_node("Flatten", ["m"], ["y"]) if form in ("GlobalMaxPool", "ReduceMax_keepdims")
            else helper.make_node("Relu", ["m"], ["y"]))
    data = og.make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), node, then],
                         [og.tensor("x", [1, 3, "h", "w"])], [og.tensor("y")],
                         {"w": _weights(5, 3, 3, 3), "axes": np.array([2, 3], np.int64)}, opset)
    model = pyconv.from_onnx(data, input_shape=(1, 3, 6, 7))
    for hw in ((6, 7), (9, 4)):
        x = np.random.default_rng(6).uniform(-1, 1, (1, 3, *hw)).astype(np.float32)
        np.testing.assert_allclose(model.run(x), og.ort_run(data, {"x": x})[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode,value", [("constant", 0.0), ("constant", 1.5), ("edge", 0.0)])
@pytest.mark.parametrize("pads", [[0, 0, -1, 0, 0, 0, -2, -1], [0, 0, 2, -1, 0, 0, -1, 3], [0, 0, -1, -2, 0, 0, 0, 0]])
def test_negative_pads_crop(pads, mode, value):
    """Negative pads crop: what TensorFlow-"same" pads traced at one size compute at a larger one."""
    nodes = [helper.make_node("Pad", ["x", "pads", "value"], ["p"], mode=mode),
             helper.make_node("Conv", ["p", "w"], ["y"])]
    inits = {"pads": np.array(pads, np.int64), "value": np.array(value, np.float32), "w": _weights(2, 3, 2, 2)}
    data = og.make_model(nodes, [og.tensor("x", [1, 3, 6, 7])], [og.tensor("y")], inits)
    x = np.random.default_rng(7).uniform(-1, 1, (1, 3, 6, 7)).astype(np.float32)
    np.testing.assert_allclose(pyconv.from_onnx(data).run(x), og.ort_run(data, {"x": x})[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [13, 18])
def test_channel_mean(opset):
    """``x.mean(1, keepdim=True)`` (CBAM's spatial attention) as a 1x1 convolution by 1/C, broadcast back."""
    axes = {"axes": [1]} if opset < 18 else {}
    nodes = [helper.make_node("ReduceMean", ["x", "axes"] if opset >= 18 else ["x"], ["m"], keepdims=1, **axes),
             helper.make_node("Sigmoid", ["m"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])]
    data = og.make_model(nodes, [og.tensor("x", [2, 5, 4, 3])], [og.tensor("y")], {"axes": np.array([1], np.int64)},
                         opset)
    x = np.random.default_rng(8).uniform(-1, 1, (2, 5, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(pyconv.from_onnx(data).run(x), og.ort_run(data, {"x": x})[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(pyconv.OnnxImportError, match="over the channels with keepdims=1"):
        pyconv.from_onnx(og.make_model([helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0)],
                                       [og.tensor("x", [2, 5, 4, 3])], [og.tensor("y")]))
