"""ONNX import (issue 4): networks defined in PyTorch (tests/onnx_models.py), exported with
``torch.onnx.export`` at several opsets, imported with ``pyconv.from_onnx`` and compared with
onnxruntime on the very same file; hand-built graphs (onnx.helper) for the operator forms PyTorch does not
emit (auto_pad, asymmetric conv pads, Gemm alpha/beta/transB, MatMul + Add, Clip bounds, ...); the
``pyconv convert`` command. Skipped when torch, onnx or onnxruntime is missing.
"""
from __future__ import annotations

import collections

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

import onnx_models as om  # noqa: E402  (needs torch)
from onnx import TensorProto, helper  # noqa: E402
from onnx_graphs import make_model, ort_run, tensor  # noqa: E402

import pyconv  # noqa: E402
from pyconv.cli import main as cli_main  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TOL = 1e-4


def assert_matches(model: pyconv.Model, data: bytes, x: np.ndarray, name: str = "input") -> None:
    """pyconv's single-array and dict calls both equal onnxruntime's result, relative to its scale."""
    (ref,) = ort_run(data, {name: x})
    for got in (model.run(x), model.run({name: x})):
        assert got.shape == ref.shape and got.dtype == np.float32
        err = float(np.abs(got - ref).max()) / max(1.0, float(np.abs(ref).max()))
        assert err <= TOL, f"max |pyconv - onnxruntime| / scale = {err:.2e}"


def image(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def layer_types(model: pyconv.Model) -> collections.Counter:
    return collections.Counter(layer["type"] for layer in model.spec.document["layers"])


# --- whole networks ----------------------------------------------------------------------------------

NETWORKS = {
    "mobilenet_v1": (lambda: om.MobileNetV1(0.25, 100), (1, 3, 96, 96)),
    "mobilenet_v2": (lambda: om.MobileNetV2(0.35, 100), (1, 3, 96, 96)),
    "xception": (lambda: om.Xception(0.125, 2, 100), (1, 3, 96, 96)),
    "shufflenet_v1": (lambda: om.ShuffleNetV1(3, 0.5, 100), (1, 3, 96, 96)),
    "resnext_block": (lambda: om.ResNeXtBlock(128, 64, 32), (1, 128, 14, 14)),
    "tf_same": (lambda: om.TFSameNet(), (1, 3, 33, 33)),
}


@pytest.fixture(scope="module")
def networks():
    torch.manual_seed(0)
    return {name: om.randomize_bn(make()) for name, (make, _) in NETWORKS.items()}


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_matches_onnxruntime(networks, name, opset):
    shape = NETWORKS[name][1]
    data = om.export(networks[name], shape, opset)
    model = pyconv.from_onnx(data, threads=1)
    assert model.input_names == ["input"] and model.output_names == ["output"]
    assert model.input_shape() == shape
    assert_matches(model, data, image(shape))


def test_dynamic_batch(networks):
    data = om.export(networks["shufflenet_v1"], (1, 3, 96, 96), 13, dynamic_batch=True)
    model = pyconv.from_onnx(data)
    assert_matches(model, data, image((3, 3, 96, 96), seed=1))


def test_group_and_depthwise_convolutions_stay_whole(networks):
    model = pyconv.from_onnx(om.export(networks["shufflenet_v1"], (1, 3, 96, 96), 13))
    types = layer_types(model)
    layers = model.spec.document["layers"]
    assert types["channel_shuffle"] == 15 and types["depthwise_conv2d"] == 16
    assert {layer["groups"] for layer in layers if layer["type"] == "conv2d" and layer["kernel"] == [1, 1]} == {3}
    assert types["pointwise_conv2d"] == 1  # the first unit's ungrouped 1x1
    resnext = pyconv.from_onnx(om.export(networks["resnext_block"], (1, 128, 14, 14), 13))
    (grouped,) = [layer for layer in resnext.spec.document["layers"] if layer["type"] == "conv2d"]
    assert grouped["groups"] == 32 and grouped["kernel"] == [3, 3]
    # 1x1, 3x3/32, then 1x1 with the shortcut add and relu fused into its store: nothing split per group.
    assert [node.type for node in resnext.graph.nodes.values()] == ["pointwise_conv2d", "conv2d", "pointwise_conv2d"]
    assert [node.attrs.get("residual", False) for node in resnext.graph.nodes.values()] == [False, False, True]


def test_same_padding_folds_into_convs_and_pools(networks):
    model = pyconv.from_onnx(om.export(networks["tf_same"], (1, 3, 33, 33), 13))
    types = layer_types(model)
    assert "pad" not in types
    pads = {layer["type"]: layer["padding"] for layer in model.spec.document["layers"] if "padding" in layer}
    assert pads["max_pool"] == [[0, 1], [0, 1]] and pads["depthwise_conv2d"] == [[1, 2], [1, 2]]
    assert types["activation"] == 3 and types["scale_shift"] == 2  # relu, relu6, clip(-1, 1); Mul and Add
    assert any(layer.get("function") == "clip" for layer in model.spec.document["layers"])


def _pads_into_convs(data: bytes) -> bytes:
    """The same network with every Pad -> Conv pair merged into the Conv's own asymmetric ``pads`` (the
    form tf2onnx gives Keras "same" convolutions). torch computes the pad amounts in a shape subgraph;
    onnxruntime evaluates it here. The unused Pad nodes stay in the graph (dead code is allowed)."""
    model = onnx.load_from_string(data)
    pads = {node.output[0]: node for node in model.graph.node if node.op_type == "Pad"}
    probe = onnx.load_from_string(data)
    names = [node.input[1] for node in pads.values()]
    probe.graph.output.extend([helper.make_tensor_value_info(n, TensorProto.INT64, None) for n in names])
    values = dict(zip(names, ort_run(probe.SerializeToString(), {"input": image((1, 3, 33, 33))})[1:]))
    merged = 0
    for node in model.graph.node:
        if node.op_type == "Conv" and node.input[0] in pads:
            pad = pads[node.input[0]]
            p = [int(v) for v in values[pad.input[1]]]
            node.input[0] = pad.input[0]
            kept = [a for a in node.attribute if a.name != "pads"]
            del node.attribute[:]
            node.attribute.extend(kept + [helper.make_attribute("pads", [p[2], p[3], p[6], p[7]])])
            merged += 1
    assert merged == 3
    return model.SerializeToString()


def test_asymmetric_conv_pads(networks):
    data = om.export(networks["tf_same"], (1, 3, 33, 33), 11)
    convs = lambda m: {layer["name"]: layer["padding"] for layer in m.spec.document["layers"]  # noqa: E731
                       if layer["type"] in ("conv2d", "depthwise_conv2d")}
    rewritten = _pads_into_convs(data)
    model = pyconv.from_onnx(rewritten)
    assert convs(model) == convs(pyconv.from_onnx(data))
    assert_matches(model, rewritten, image((1, 3, 33, 33)))


def test_batch_norm_nodes_folded_and_kept(networks):
    data = om.export(networks["mobilenet_v1"], (1, 3, 96, 96), 13, keep_batch_norm=True)
    assert sum(node.op_type == "BatchNormalization" for node in onnx.load_from_string(data).graph.node) == 27
    model = pyconv.from_onnx(data)
    assert len(model.graph.folded) == 27  # every one follows a convolution
    assert_matches(model, data, image((1, 3, 96, 96)))

    class BnAfterAdd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)

        def forward(self, x):
            return torch.relu(self.bn(x + self.conv(x)))

    data = om.export(om.randomize_bn(BnAfterAdd()), (1, 8, 12, 12), 13, keep_batch_norm=True, dynamic_batch=True)
    model = pyconv.from_onnx(data)
    # The batch norm after the add cannot fold; the add itself fuses into the convolution's store.
    assert [n.type for n in model.graph.nodes.values()] == ["conv2d", "batch_norm"]
    assert model.graph.nodes[next(iter(model.graph.nodes))].attrs["residual"]
    assert_matches(model, data, image((2, 8, 12, 12)))


def test_summary_and_round_trip(networks, tmp_path):
    path = tmp_path / "mnv2.onnx"
    data = om.export(networks["mobilenet_v2"], (1, 3, 96, 96), 13, path=path)
    model = pyconv.from_onnx(str(path))
    text = model.summary()
    assert "depthwise_conv2d" in text and "input (1, 3, 96, 96) NCHW" in text
    out = tmp_path / "out" / "mnv2.json"
    assert cli_main(["convert", str(path), "-o", str(out)]) == 0
    reloaded = pyconv.load(out)
    x = image((1, 3, 96, 96))
    np.testing.assert_array_equal(reloaded.run(x), model.run(x))
    assert_matches(reloaded, data, x)
    assert cli_main(["summary", str(path)]) == 0


def test_wrong_input_shape_at_run_time(networks):
    model = pyconv.from_onnx(om.export(networks["mobilenet_v1"], (1, 3, 96, 96), 13))
    with pytest.raises(pyconv.ModelError, match=r"\(N, 3, 96, 96\) \(NCHW; H and W may differ, C = 3\)"):
        model.run(image((1, 4, 64, 64)))
    with pytest.raises(pyconv.ModelError) as info:
        model.run(image((1, 96, 96, 3)))
    assert "looks like NHWC" in info.value.hint
    with pytest.raises(pyconv.ModelError, match="expected inputs named input"):
        model.run({"x": image((1, 3, 96, 96))})


# --- hand-built graphs -------------------------------------------------------------------------------

def weights(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)


CONV_FORMS = [
    dict(group=1, kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    dict(group=1, kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER"),
    dict(group=1, kernel_shape=[3, 3], strides=[1, 2], auto_pad="VALID"),
    dict(group=1, kernel_shape=[3, 2], strides=[2, 1], pads=[0, 2, 1, 0], dilations=[2, 1]),
    dict(group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1], dilations=[2, 2]),
    dict(group=4, kernel_shape=[5, 5], strides=[2, 2], auto_pad="SAME_UPPER"),  # depthwise, multiplier 2
    dict(group=1, kernel_shape=[1, 1]),  # pointwise
    dict(group=1, kernel_shape=[1, 1], strides=[2, 2]),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("form", CONV_FORMS, ids=lambda f: "-".join(f"{k}{v}" for k, v in f.items()))
def test_conv_forms(form, bias):
    form = dict(form)
    group, (kh, kw) = form["group"], form["kernel_shape"]
    inits = {"w": weights(8, 4 // group, kh, kw)}
    names = ["x", "w"] + (["b"] if bias else [])
    if bias:
        inits["b"] = weights(8, seed=1)
    data = make_model([helper.make_node("Conv", names, ["y"], **form)], [tensor("x", ["N", 4, 11, 10])],
                      [tensor("y", None)], inits)
    model = pyconv.from_onnx(data)
    expected = {4: "depthwise_conv2d"}.get(group, "pointwise_conv2d" if (kh, kw) == (1, 1) and "strides" not in form
                                           else "conv2d")
    assert layer_types(model)[expected] == 1
    assert_matches(model, data, image((2, 4, 11, 10)), name="x")


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_pools(count_include_pad, ceil_mode, opset):
    nodes = [helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1],
                              count_include_pad=count_include_pad, ceil_mode=ceil_mode),
             helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[2, 3], strides=[2, 1], pads=[0, 1, 1, 1],
                              ceil_mode=ceil_mode),
             helper.make_node("GlobalAveragePool", ["x"], ["g"])]
    data = make_model(nodes, [tensor("x", ["N", 3, 10, 9])], [tensor(n, None) for n in "amg"], opset=opset)
    model = pyconv.from_onnx(data)
    x = image((2, 3, 10, 9))
    got, refs = model.run(x), ort_run(data, {"x": x})
    for name, ref in zip("amg", refs):
        np.testing.assert_allclose(got[name], ref, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("opset", [11, 13])
def test_dense_forms_and_elementwise_constants(opset):
    """Gemm with transB/alpha/beta, MatMul + Add, Mul/Add/Sub/Div by per-channel constants and scalars,
    Clip with general and partial bounds, Flatten, Squeeze, Concat, Softmax, Dropout, Identity."""
    squeeze_axes = {"axes": [2, 3]} if opset < 13 else {}
    squeeze_inputs = ["p"] + ([] if opset < 13 else ["sq_axes"])
    nodes = [
        helper.make_node("Mul", ["x", "scale"], ["m"]),
        helper.make_node("Add", ["shift", "m"], ["s"]),
        helper.make_node("Sub", ["s", "half"], ["s2"]),
        helper.make_node("Div", ["s2", "two"], ["s3"]),
        helper.make_node("Clip", ["s3", "lo", "hi"], ["c"]),
        helper.make_node("Clip", ["s3", "", "hi"], ["c_hi"]),
        helper.make_node("Concat", ["c", "c_hi"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["p"]),
        helper.make_node("Squeeze", squeeze_inputs, ["sq"], **squeeze_axes),
        helper.make_node("Gemm", ["sq", "gw"], ["g"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Gemm", ["sq", "gw", "gb"], ["g2"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Dropout", ["g2"], ["d"]),
        helper.make_node("Flatten", ["cat"], ["f"]),
        helper.make_node("MatMul", ["f", "mw"], ["mm"]),
        helper.make_node("Add", ["mm", "mb"], ["mmb"]),
        helper.make_node("Identity", ["mmb"], ["i"]),
        helper.make_node("Concat", ["g", "d", "i"], ["all"], axis=1),
        helper.make_node("Softmax", ["all"], ["out"], axis=1),
    ]
    inits = {"scale": weights(3, 1, 1, seed=2), "shift": weights(1, 3, 1, 1, seed=3),
             "half": np.float32(0.5), "two": np.array([2.0], np.float32), "lo": np.float32(-0.3),
             "hi": np.float32(0.4), "gw": weights(5, 6, seed=4), "gb": weights(1, 5, seed=5),
             "mw": weights(6 * 4 * 4, 7, seed=6), "mb": weights(7, seed=7)}
    if opset >= 13:
        inits["sq_axes"] = np.array([2, 3], np.int64)
    data = make_model(nodes, [tensor("x", ["N", 3, 4, 4])], [tensor("out", None), tensor("c", None)], inits,
                      opset=opset)
    model = pyconv.from_onnx(data)
    x = image((2, 3, 4, 4)) * 2
    got, (ref_out, ref_c) = model.run(x), ort_run(data, {"x": x})
    np.testing.assert_allclose(got["out"], ref_out, rtol=TOL, atol=1e-6)
    np.testing.assert_allclose(got["c"], ref_c, rtol=TOL, atol=1e-6)
    types = layer_types(model)
    assert types["dense"] == 3 and types["activation"] == 2 and types["flatten"] == 1


def test_clip_bounds_as_attributes_and_relu6():
    nodes = [helper.make_node("Clip", ["x"], ["a"], min=0.0, max=6.0),
             helper.make_node("Clip", ["x"], ["b"], min=-1.0, max=2.5),
             helper.make_node("Clip", ["x"], ["c"], min=0.0)]
    data = make_model(nodes, [tensor("x", ["N", 2, 3, 3])], [tensor(n, None) for n in "abc"], opset=10)
    model = pyconv.from_onnx(data)
    functions = [layer.get("function") for layer in model.spec.document["layers"] if layer["type"] == "activation"]
    assert functions == ["relu6", "clip", "relu"]
    x = image((1, 2, 3, 3)) * 8
    got = model.run(x)
    for name, ref in zip("abc", ort_run(data, {"x": x})):
        np.testing.assert_array_equal(got[name], ref)


def test_explicit_pad_kept_when_it_cannot_fold():
    """A zero pad before a max pool of signed values, and a non-zero pad, run as pad layers."""
    pads = np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"]),
             helper.make_node("MaxPool", ["p"], ["m"], kernel_shape=[2, 2]),
             helper.make_node("Pad", ["x", "pads", "v"], ["q"]),
             helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Pad", ["r", "pads"], ["rp"]),
             helper.make_node("MaxPool", ["rp"], ["rm"], kernel_shape=[3, 3], strides=[2, 2])]
    data = make_model(nodes, [tensor("x", ["N", 2, 6, 7])], [tensor(n, None) for n in ("m", "q", "rm")],
                      {"pads": pads, "v": np.float32(-2.0)})
    model = pyconv.from_onnx(data)
    assert layer_types(model)["pad"] == 2  # the relu'd input's pad folds into its pool
    x = image((2, 2, 6, 7))
    got = model.run(x)
    for name, ref in zip(("m", "q", "rm"), ort_run(data, {"x": x})):
        np.testing.assert_array_equal(got[name], ref)


def test_shape_subgraph_is_folded():
    """``x.view(x.size(0), -1)`` as exporters emit it with a dynamic batch: Shape, Gather, Unsqueeze,
    Concat, Reshape."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("Shape", ["c"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["c", "target"], ["y"])]
    data = make_model(nodes, [tensor("x", ["batch", 2, 5, 6])], [tensor("y", None)],
                      {"w": weights(4, 2, 3, 3), "zero": np.array(0, np.int64), "axes0": np.array([0], np.int64),
                       "minus1": np.array([-1], np.int64)})
    model = pyconv.from_onnx(data)
    assert set(layer_types(model)) == {"input", "conv2d", "flatten"}
    assert_matches(model, data, image((3, 2, 5, 6)), name="x")


def test_onnx_package_is_optional(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pyconv\[onnx\]"):
        pyconv.from_onnx(b"\x08\x07")


FULL_SIZE = {
    "mobilenet_v1": (lambda: om.MobileNetV1(), (1, 3, 224, 224)),
    "mobilenet_v2": (lambda: om.MobileNetV2(), (1, 3, 224, 224)),
    "xception": (lambda: om.Xception(), (1, 3, 299, 299)),
    "shufflenet_v1": (lambda: om.ShuffleNetV1(3), (1, 3, 224, 224)),
    "resnext_block": (lambda: om.ResNeXtBlock(), (1, 256, 56, 56)),
}


@pytest.mark.parametrize("name", list(FULL_SIZE))
def test_full_size_network(name):
    """The published architectures at their real sizes (a few seconds each: Xception's export is the
    slowest)."""
    make, shape = FULL_SIZE[name]
    torch.manual_seed(0)
    for opset in (11, 17):
        data = om.export(om.randomize_bn(make()), shape, opset)
        assert_matches(pyconv.from_onnx(data), data, image(shape))


@pytest.mark.parametrize("pool", ["reduce_mean", "flatten"])
def test_tf2onnx_style_nhwc_boundary(pool):
    """What tf2onnx makes of a Keras model: an NHWC input transposed to NCHW, convolutions with explicit
    pads, batch norm as Mul + Add, Relu6 as Clip, and either a ReduceMean over H, W of the tensor
    transposed back to NHWC, or a Transpose back to NHWC then a Reshape to (N, F) (Keras's Flatten order),
    then MatMul + Add and Softmax."""
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w"], ["c"], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]),
             helper.make_node("Mul", ["c", "scale"], ["m"]),
             helper.make_node("Add", ["m", "shift"], ["a"]),
             helper.make_node("Clip", ["a", "zero", "six"], ["r"]),
             helper.make_node("Transpose", ["r"], ["back"], perm=[0, 2, 3, 1])]
    features = 8 if pool == "reduce_mean" else 8 * 5 * 4
    if pool == "reduce_mean":
        nodes.append(helper.make_node("ReduceMean", ["back"], ["f"], axes=[1, 2], keepdims=0))
    else:
        nodes.append(helper.make_node("Reshape", ["back", "flat"], ["f"]))
    nodes += [helper.make_node("MatMul", ["f", "mw"], ["mm"]), helper.make_node("Add", ["mm", "mb"], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)]
    inits = {"w": weights(8, 3, 3, 3), "scale": weights(8, 1, 1, seed=1) + 1, "shift": weights(8, 1, 1, seed=2),
             "zero": np.float32(0), "six": np.float32(6), "flat": np.array([-1, features], np.int64),
             "mw": weights(features, 5, seed=3), "mb": weights(5, seed=4)}
    data = make_model(nodes, [tensor("x", ["N", 10, 8, 3])], [tensor("probs", None)], inits)
    model = pyconv.from_onnx(data)
    assert model.spec.layers["x"].attrs["layout"] == "NHWC" and model.input_shape() == (1, 10, 8, 3)
    assert "pad" not in layer_types(model)
    x = image((2, 10, 8, 3)) * 2
    np.testing.assert_allclose(model.run(x), ort_run(data, {"x": x})[0], rtol=TOL, atol=1e-6)
