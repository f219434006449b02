"""Input sizes, requested tensors and config dicts (the "shapes" work): a Model at input sizes other
than its config's against the independent reference (tests/model_reference.py) at each size; ONNX
files with symbolic H and W, and the shape subgraphs exporters emit, against onnxruntime at two sizes;
``pyconv.load(dict)``; ``model.run(x, outputs=[...])`` on tensors the loader would otherwise fuse away;
the errors. ONNX parts skip when onnx, onnxruntime or torch is missing.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import model_reference as ref
import pyconv
from conftest import assert_close
from pyconv.graph.model import _PLANS_KEPT, _VARIANTS_KEPT

MODELS = Path(__file__).resolve().parent.parent / "models"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def layer(name, type_, *inputs, **kw) -> dict:
    return {"name": name, "type": type_, **({"inputs": list(inputs)} if inputs else {}), **kw}


def config(*layers, outputs, shape=(8, 8, 3), layout="NHWC") -> dict:
    return {"format": "pyconv-model", "version": 1, "name": "t",
            "layers": [layer("input", "input", shape=list(shape), layout=layout), *layers], "outputs": outputs}


# Every kind of layer whose output size follows its input's: strided "same" and explicit pads, a
# dilated conv, depthwise + pointwise (fused into separable), a residual add, pools with ceil_mode,
# concat, channel shuffle, global pool and a dense head.
NET = config(
    layer("c1", "conv2d", "input", filters=8, kernel=3, stride=2, padding="same"),
    layer("b1", "batch_norm", "c1"),
    layer("r1", "activation", "b1", function="relu6"),
    layer("dw", "depthwise_conv2d", "r1", kernel=3, padding=[[1, 1], [2, 2]], dilation=[1, 2]),
    layer("pw", "pointwise_conv2d", "dw", filters=8),
    layer("sum", "add", "pw", "r1", activation="relu"),
    layer("mp", "max_pool", "sum", pool=2, stride=2, ceil_mode=True),
    layer("ap", "avg_pool", "sum", pool=2, stride=2, padding="same"),
    layer("cat", "concat", "mp", "ap"),
    layer("shuf", "channel_shuffle", "cat", groups=2),
    layer("c2", "conv2d", "shuf", filters=6, kernel=[3, 2], padding=[1, 0]),
    layer("gap", "global_avg_pool", "c2"),
    layer("fc", "dense", "gap", units=5),
    outputs=["fc", "c2"])


def at_size(doc: dict, h: int, w: int) -> dict:
    """``doc`` with its input layer resized (what the reference runs at each size)."""
    doc = copy.deepcopy(doc)
    shape = doc["layers"][0]["shape"]
    doc["layers"][0]["shape"] = [h, w, shape[2]]
    return doc


def flat(weights) -> dict[str, np.ndarray]:
    return {f"{name}/{p}": a for name, ps in weights.items() for p, a in ps.items()}


def image(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def check_against_reference(model: pyconv.Model, doc: dict, x: np.ndarray, outputs=None) -> None:
    h, w = x.shape[1:3] if doc["layers"][0].get("layout", "NHWC") == "NHWC" else x.shape[2:]
    names = outputs or doc["outputs"]
    expected = ref.run(at_size(doc, h, w), flat(model.weights), x, outputs=names)
    got = model.run(x, outputs=names)
    for name, want in zip(names, expected):
        assert_close(got[name], want, what=f"{name} at {h}x{w}")


# --- any input size ----------------------------------------------------------------------------------

@pytest.mark.parametrize("optimize", [True, False])
def test_model_runs_at_other_sizes_like_the_reference(optimize):
    m = pyconv.load(NET, optimize=optimize)
    for batch, (h, w) in [(1, (8, 8)), (2, (13, 9)), (1, (16, 16)), (3, (5, 7))]:
        x = image((batch, h, w, 3), seed=h)
        check_against_reference(m, NET, x)
        got = m(x)
        assert got["fc"].shape == (batch, 5) and got["c2"].shape[1:3] != (0, 0)


def test_operators_are_shared_between_sizes_and_caches_are_bounded():
    m = pyconv.load(NET)
    sizes = [(8 + i, 9 + 2 * i) for i in range(_VARIANTS_KEPT + 2)]
    for h, w in sizes:
        m(image((1, h, w, 3)))
    assert len(m._pools) <= _PLANS_KEPT and len(m._variants) == _VARIANTS_KEPT
    variant = m._variant(((20, 27, 3),))
    assert all(variant.kernels[name] is m.kernels[name] for name in m.kernels)
    # The most recent sizes are the ones kept; the config's own is always there.
    assert (sizes[-1] + (3,),) in {key[0] for key in m._variants}
    y = m(image((1, 8, 8, 3)))
    assert y["fc"].shape == (1, 5)


def test_nchw_input_at_another_size():
    doc = copy.deepcopy(NET)
    doc["layers"][0]["layout"] = "NCHW"
    doc["output_layout"] = "NCHW"
    m = pyconv.load(doc)
    assert m._nchw_inputs == {"input"}  # the first conv reads NCHW in place, at every size
    x = image((2, 3, 11, 14))
    check_against_reference(m, doc, x)
    assert m._variant(((11, 14, 3),)).nchw_inputs == {"input"}


def test_summary_plan_and_input_shape_at_another_size():
    m = pyconv.load(NET)
    assert m.input_shape() == (1, 8, 8, 3) and m.input_shape(size=(32, 24), batch=2) == (2, 32, 24, 3)
    assert m.input_shape("input", size={"input": (5, 6)}) == (1, 5, 6, 3)
    text = m.summary(size=(32, 24))
    assert "input (1, 32, 24, 3) NHWC" in text and "(1, 16, 12, 8)" in text
    assert m.plan(size=(32, 24)).arena_bytes > m.plan().arena_bytes
    assert m.example_input(size=(32, 24)).shape == (1, 32, 24, 3)
    assert [batch for _, batch in m._pools] == [1]  # reporting plans nothing
    with pytest.raises(pyconv.ModelError, match=r"expected a size \(H, W\)") as info:
        m.summary(size=(32, 24, 3))
    assert info.value.field == "size"


def test_shipped_mobilenet_at_a_small_odd_size_matches_the_reference():
    doc = json.loads((MODELS / "mobilenet_v2.json").read_text())
    m = pyconv.load(doc)
    x = image((2, 67, 53, 3))
    check_against_reference(m, doc, x)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "shufflenet_v1_g3", "xception"])
@pytest.mark.parametrize("size", [(224, 224), (192, 160), (131, 97)])
def test_shipped_models_at_several_sizes_match_the_reference(name, size):
    doc = json.loads((MODELS / f"{name}.json").read_text())
    check_against_reference(pyconv.load(doc), doc, image((1, *size, 3)))


def test_sizes_the_layers_cannot_take_name_the_layer():
    head = config(layer("c", "conv2d", "input", filters=4, kernel=3, stride=2, padding="same", activation="relu"),
                  layer("flat", "flatten", "c"), layer("fc", "dense", "flat", units=3),
                  shape=(16, 16, 3), outputs=["fc"])
    m = pyconv.load(head)
    with pytest.raises(pyconv.ModelError, match="expects 256 inputs, a 12x12 input gives 144") as info:
        m(image((1, 12, 12, 3)))
    assert (info.value.layer, info.value.field) == ("fc", "inputs") and "global_avg_pool" in info.value.hint
    # The feature maps before the head still serve that size.
    assert m.run(image((1, 12, 12, 3)), outputs="c").shape == (1, 6, 6, 4)
    valid = config(layer("c", "conv2d", "input", filters=4, kernel=5), outputs=["c"])
    with pytest.raises(pyconv.ModelError, match=r"a 3x9 input: .*5x5 kernel") as info:
        pyconv.load(valid)(image((1, 3, 9, 3)))
    assert (info.value.layer, info.value.field) == ("c", "kernel")
    with pytest.raises(pyconv.ModelError, match=r"\(N, 16, 16, 3\) \(NHWC; H and W may differ, C = 3\)"):
        m(image((1, 12, 12, 4)))


# --- load(dict) and run(outputs=) --------------------------------------------------------------------

def test_load_takes_a_config_dict_and_weights():
    first = pyconv.load(NET)
    again = pyconv.load(copy.deepcopy(NET), weights=first.weights)
    x = image((1, 8, 8, 3))
    np.testing.assert_array_equal(first(x)["fc"], again(x)["fc"])
    with pytest.raises(TypeError, match="expected a path or a config dict, found int"):
        pyconv.load(3)


def test_run_returns_fused_intermediate_tensors():
    m = pyconv.load(NET)
    fused = m.graph.nodes["r1"]
    assert fused.layers == ["c1", "b1", "r1"]  # the batch norm and relu6 run inside the conv
    x = image((2, 8, 8, 3))
    got = m.run(x, outputs=["c1", "b1", "r1", "dw", "sum", "fc"])
    assert list(got) == ["c1", "b1", "r1", "dw", "sum", "fc"]
    assert got["b1"].min() < 0 and np.array_equal(np.clip(got["b1"], 0, 6), got["r1"])
    check_against_reference(m, NET, x, outputs=["c1", "b1", "r1", "dw", "sum", "mp", "input"])
    np.testing.assert_array_equal(m.run(x, outputs="fc"), m(x)["fc"])
    # The default graph is untouched, and the requested set is planned once.
    assert m.graph.nodes["r1"].layers == ["c1", "b1", "r1"]
    variant = m._variant(((8, 8, 3),), ("c1", "b1", "r1", "dw", "sum", "fc"))
    assert variant.graph.nodes["c1"].type == "conv2d" and "b1" in variant.graph.nodes
    assert variant.kernels["fc"] is m.kernels["fc"]
    # At another size too.
    check_against_reference(m, NET, image((1, 10, 15, 3)), outputs=["b1", "pw"])


def test_unknown_tensor_names_list_close_matches():
    m = pyconv.load(NET)
    with pytest.raises(KeyError, match=r"no tensor named 'c_1' in this model; close matches: 'c1'") as info:
        m.run(image((1, 8, 8, 3)), outputs=["fc", "c_1"])
    assert isinstance(info.value, pyconv.ModelError) and info.value.field == "outputs"
    with pytest.raises(TypeError, match="non-empty list"):
        m.run(image((1, 8, 8, 3)), outputs=[])


# --- ONNX: symbolic sizes, shape subgraphs, tensor names ---------------------------------------------

def ort_session(data: bytes, extra_outputs=()):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    model = onnx.load_from_string(data)
    model.graph.output.extend([helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in extra_outputs])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def assert_matches_ort(model: pyconv.Model, data: bytes, x: np.ndarray, outputs=()) -> None:
    session = ort_session(data, outputs)
    names = [o.name for o in session.get_outputs()]
    expected = dict(zip(names, session.run(None, {model.input_names[0]: x})))
    got = model.run(x, outputs=names)
    for name in names:
        assert_close(got[name], expected[name].astype(np.float64), what=f"{name} at {x.shape}")


def test_torch_export_with_dynamic_height_and_width():
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import io

    import onnx_models as om

    torch.manual_seed(0)
    for net in (om.randomize_bn(om.MobileNetV2(0.35, 10)), om.TFSameNet()):
        f = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(net.eval(), (torch.zeros(1, 3, 64, 64),), f, opset_version=13, dynamo=False,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n"}})
        data = f.getvalue()
        with pytest.raises(pyconv.OnnxImportError, match="found H = 'h', W = 'w'") as info:
            pyconv.from_onnx(data)
        assert "input_shape=(1, 3, 224, 224)" in info.value.hint
        m = pyconv.from_onnx(data, input_shape=(3, 64, 64), threads=1)
        assert m.input_shape() == (1, 3, 64, 64)
        for shape in [(1, 3, 64, 64), (2, 3, 45, 70)]:
            assert_matches_ort(m, data, image(shape))


def _export_shipped(name: str, tmp_path, size, **kw) -> tuple[pyconv.Model, bytes]:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from pyconv.testing import export_onnx

    doc = at_size(json.loads((MODELS / f"{name}.json").read_text()), *size)
    m = pyconv.load(doc)
    path = tmp_path / f"{name}.onnx"
    export_onnx(doc, m.weights, path, **kw)
    return m, path.read_bytes()


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
def test_export_onnx_of_the_shipped_mobilenets_reimports(name, tmp_path):
    """The twin computes TensorFlow "same" pads from the input's shape (Shape, Gather, Neg, Div, Cast
    ...), which the importer evaluates at load, and again at each other size."""
    m, data = _export_shipped(name, tmp_path, (64, 64), dynamic_size=True, dynamic_batch=True)
    imported = pyconv.from_onnx(data, input_shape=(1, 64, 64, 3), threads=1)
    x = image((1, 64, 64, 3))
    assert_matches_ort(imported, data, x)
    assert_close(imported(x), m(x).astype(np.float64))
    # Multiples of 32 (even at every stride-2 layer): the graph's pads are the first size's, and so are
    # the operators.
    assert_matches_ort(imported, data, image((2, 96, 128, 3)))
    variant = imported._variant(((96, 128, 3),))
    assert all(variant.kernels[n] is imported.kernels[n] for n in variant.kernels)
    # Odd sizes: the exported graph's integer Div truncates, as onnxruntime runs it; pyconv follows the file.
    assert_matches_ort(imported, data, image((1, 47, 61, 3)))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
def test_export_onnx_of_the_shipped_mobilenets_at_224(name, tmp_path):
    m, data = _export_shipped(name, tmp_path, (224, 224))
    imported = pyconv.from_onnx(data)
    x = image((1, 224, 224, 3))
    assert_matches_ort(imported, data, x)
    assert_close(imported(x), m(x).astype(np.float64))
    assert imported(image((1, 192, 192, 3))).shape == (1, 1000)


def test_onnx_tensor_names_as_outputs(tmp_path):
    _, data = _export_shipped("mobilenet_v2", tmp_path, (32, 32), dynamic_size=True)
    m = pyconv.from_onnx(data, input_shape=(1, 32, 32, 3))
    # The first conv's output before its Clip (relu6, fused at load), and a pad applied by no layer.
    names = ["/m0_Conv1/Conv_output_0", "/m2_Conv1_relu/Clip_output_0", "/m0_Conv1/Pad_output_0"]
    assert all(n in m.spec.tensors for n in names)
    for shape in [(1, 32, 32, 3), (1, 41, 36, 3)]:
        assert_matches_ort(m, data, image(shape), outputs=names)
    with pytest.raises(KeyError, match="close matches: '/m0_Conv1/Conv_output_0'"):
        m.run(image((1, 32, 32, 3)), outputs=["/m0_Conv1/Conv_output"])


def _shape_graph(opset: int = 13) -> bytes:
    """A Conv whose pads a shape subgraph computes from the input's H and W with every folding
    operator exporters use, on an input of symbolic H and W."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    def const(name, value, dtype=np.int64):
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    n = helper.make_node
    nodes = [
        n("Shape", ["x"], ["s"]),
        n("Gather", ["s", "i2"], ["h"], axis=0), n("Gather", ["s", "i3"], ["w"], axis=0),
        # TF "same" along H for kernel 3, stride 2: total = max((ceil(h / 2) - 1) * 2 + 3 - h, 0)
        n("Cast", ["h"], ["hf"], to=TensorProto.FLOAT), n("Div", ["hf", "two_f"], ["hd"]), n("Ceil", ["hd"], ["hc"]),
        n("Cast", ["hc"], ["hi"], to=TensorProto.INT64), n("Sub", ["hi", "one"], ["hs"]),
        n("Mul", ["hs", "two"], ["hm"]), n("Add", ["hm", "three"], ["ha"]), n("Sub", ["ha", "h"], ["ht"]),
        n("Max", ["ht", "zero"], ["htot"]),
        # along W with the truncating integer Div and Neg of PyTorch's -(-w // 2), Min, Floor, Where
        n("Neg", ["w"], ["wn"]), n("Div", ["wn", "two"], ["wd"]), n("Neg", ["wd"], ["wo"]),
        n("Sub", ["wo", "one"], ["ws"]), n("Mul", ["ws", "two"], ["wm"]), n("Add", ["wm", "three"], ["wa"]),
        n("Sub", ["wa", "w"], ["wt"]), n("Max", ["wt", "zero"], ["wtot0"]), n("Min", ["wtot0", "four"], ["wtot"]),
        n("Div", ["htot", "two"], ["top"]), n("Sub", ["htot", "top"], ["bottom"]),
        n("Cast", ["wtot"], ["wf"], to=TensorProto.FLOAT), n("Div", ["wf", "two_f"], ["wh"]),
        n("Floor", ["wh"], ["wfl"]), n("Cast", ["wfl"], ["left"], to=TensorProto.INT64),
        n("Sub", ["wtot", "left"], ["right0"]),
        n("Equal", ["right0", "zero"], ["none"]), n("Where", ["none", "zero", "right0"], ["right"]),
        n("Unsqueeze", ["top", "ax0"], ["t1"]), n("Unsqueeze", ["left", "ax0"], ["l1"]),
        n("Unsqueeze", ["bottom", "ax0"], ["b1"]), n("Unsqueeze", ["right", "ax0"], ["r1"]),
        n("ConstantOfShape", ["two_1d"], ["z2"], value=numpy_helper.from_array(np.zeros(1, np.int64))),
        n("Concat", ["z2", "t1", "l1", "z2", "b1", "r1"], ["pads"], axis=0),
        n("Pad", ["x", "pads"], ["xp"]),
        n("Conv", ["xp", "W"], ["y"], kernel_shape=[3, 3], strides=[2, 2], name="conv"),
        n("Relu", ["y"], ["out"], name="relu"),
    ]
    inits = [const("i2", 2), const("i3", 3), const("one", 1), const("two", 2), const("three", 3), const("four", 4),
             const("zero", 0), const("ax0", [0]), const("two_1d", [2]), const("two_f", 2.0, np.float32),
             numpy_helper.from_array(np.random.default_rng(0).uniform(-1, 1, (4, 3, 3, 3)).astype(np.float32), "W")]
    graph = helper.make_graph(nodes, "shapes", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                              ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 4, "oh", "ow"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_shape_subgraph_is_evaluated_at_each_size():
    data = _shape_graph()
    m = pyconv.from_onnx(data, input_shape=(1, 3, 10, 10))
    assert [layer["type"] for layer in m.spec.document["layers"]] == ["input", "conv2d", "activation"]
    for shape in [(1, 3, 10, 10), (2, 3, 11, 9), (1, 3, 7, 16)]:
        assert_matches_ort(m, data, image(shape), outputs=["y", "xp"])


def test_input_shape_errors():
    data = _shape_graph()
    with pytest.raises(pyconv.OnnxImportError, match=r"expected 4 positive sizes \(or 3 without the batch\)"):
        pyconv.from_onnx(data, input_shape=(10, 10))
    with pytest.raises(pyconv.OnnxImportError, match="names 'y', which is not a graph input"):
        pyconv.from_onnx(data, input_shape={"y": (1, 3, 10, 10)})
    with pytest.raises(pyconv.OnnxImportError, match="inconsistent shapes"):
        pyconv.from_onnx(data, input_shape=(1, 4, 10, 10))


def test_cli_sizes_symbolic_onnx_inputs(tmp_path, capsys):
    from pyconv.cli import main as cli_main

    path = tmp_path / "shapes.onnx"
    path.write_bytes(_shape_graph())
    assert cli_main(["summary", str(path)]) == 2
    assert "input_shape" in capsys.readouterr().err
    assert cli_main(["summary", str(path), "--input-shape", "1,3,12,12"]) == 0
    assert "x (1, 3, 12, 12) NCHW" in capsys.readouterr().out
    assert cli_main(["convert", str(path), "--input-shape", "1x3x12x12", "-o", str(tmp_path / "out.json")]) == 0
    assert pyconv.load(tmp_path / "out.json").input_shape() == (1, 3, 12, 12)


def test_operators_whose_pads_change_with_the_size_share_their_packed_weights(tmp_path, monkeypatch):
    """At odd sizes the twin's exported pads differ from the first size's: those convolutions get
    operators of their own pads over the same packed weights (``with_padding``), none is built anew."""
    _, data = _export_shipped("mobilenet_v1", tmp_path, (64, 64), dynamic_size=True)
    m = pyconv.from_onnx(data, input_shape=(1, 64, 64, 3))
    built = []
    monkeypatch.setattr(pyconv.Model, "_build", lambda self, node: built.append(node.type))
    assert_matches_ort(m, data, image((1, 47, 61, 3)))
    variant = m._variant(((47, 61, 3),))
    changed = [n for n in variant.kernels if variant.kernels[n] is not m.kernels.get(n)]
    assert changed and built == []
    assert all(variant.graph.nodes[n].attrs["padding"] != m.graph.nodes[n].attrs["padding"] for n in changed)


@pytest.mark.parametrize("kind", ["conv2d", "depthwise", "separable"])
def test_with_padding_equals_an_operator_built_with_those_pads(kind):
    rng = np.random.default_rng(1)
    w = rng.uniform(-1, 1, (3, 3, 6, 5)).astype(np.float32)
    dw = rng.uniform(-1, 1, (3, 3, 6, 1)).astype(np.float32)
    pw = rng.uniform(-1, 1, (6, 5)).astype(np.float32)
    make = {"conv2d": lambda p: pyconv.Conv2D(w, stride=2, padding=p, activation="relu"),
            "depthwise": lambda p: pyconv.DepthwiseConv2D(dw, stride=2, padding=p),
            "separable": lambda p: pyconv.SeparableConv2D(dw, pw, stride=2, padding=p, depthwise_activation="relu6")}
    x = image((2, 9, 12, 6))
    first = make[kind](((0, 1), (0, 1)))
    first(x)  # packs what the first size needs
    other = first.with_padding(((1, 1), (1, 0)))
    np.testing.assert_array_equal(other(x), make[kind](((1, 1), (1, 0)))(x))
    np.testing.assert_array_equal(first(x), make[kind](((0, 1), (0, 1)))(x))
    inner = {"conv2d": lambda op: op._packed, "depthwise": lambda op: op._packed,
             "separable": lambda op: op.depthwise._packed}[kind]
    assert inner(other) is inner(first)


def _i64(*values):
    return np.array(values, dtype=np.int64)


FOLD_CASES = [
    ("Neg", [_i64(-7, 0, 5)], {}), ("Abs", [_i64(-7, 0, 5)], {}),
    ("Ceil", [np.array([-1.5, 0.2, 2.0], np.float32)], {}), ("Floor", [np.array([-1.5, 0.2, 2.0], np.float32)], {}),
    ("Round", [np.array([-2.5, -0.5, 0.5, 1.5, 2.6], np.float32)], {}),
    ("Sqrt", [np.array([4.0, 2.0], np.float32)], {}), ("Sign", [_i64(-3, 0, 4)], {}),
    ("Reciprocal", [np.array([4.0, -0.5], np.float32)], {}),
    ("Div", [_i64(-7, 7, -8, 9), _i64(2, -2, 3, 3)], {}), ("Div", [np.array([-7.0, 1.0], np.float32),
                                                                np.array([2.0, 4.0], np.float32)], {}),
    ("Mod", [_i64(-7, 7, -8, 9), _i64(2, -2, 3, -4)], {}), ("Mod", [_i64(-7, 7, -8, 9), _i64(2, -2, 3, -4)], {"fmod": 1}),
    ("Pow", [np.array([2.0, 3.0], np.float32), np.array([3.0, 0.5], np.float32)], {}),
    ("Min", [_i64(1, 5, 3), _i64(4, 2, 3), _i64(2)], {}), ("Max", [_i64(1, 5, 3), _i64(4, 2, 3)], {}),
    ("Equal", [_i64(1, 2, 3), _i64(1, 0, 3)], {}), ("Less", [_i64(1, 2, 3), _i64(2)], {}),
    ("LessOrEqual", [_i64(1, 2, 3), _i64(2)], {}), ("Greater", [_i64(1, 2, 3), _i64(2)], {}),
    ("GreaterOrEqual", [_i64(1, 2, 3), _i64(2)], {}), ("Not", [np.array([True, False])], {}),
    ("And", [np.array([True, True, False]), np.array([True, False, False])], {}),
    ("Or", [np.array([True, True, False]), np.array([True, False, False])], {}),
    ("Where", [np.array([True, False, True]), _i64(1, 2, 3), _i64(7)], {}),
    ("Shape", [np.zeros((2, 3, 5, 7), np.float32)], {"start": 1, "end": -1}),
    ("Size", [np.zeros((2, 3, 5), np.float32)], {}),
    ("Expand", [_i64(1, 2, 3).reshape(3, 1), _i64(2, 1, 4)], {}), ("Tile", [_i64(1, 2), _i64(3)], {}),
    ("ReduceProd", [_i64(2, 3, 4).reshape(1, 3)], {"keepdims": 0}),
    ("ReduceSum", [_i64(2, 3, 4, 5).reshape(2, 2), _i64(1)], {}),
    ("ReduceMin", [_i64(2, 3, 4, 5).reshape(2, 2)], {"axes": [0], "keepdims": 1}),
    ("ReduceMax", [_i64(2, 3, 4, 5).reshape(2, 2)], {}),
    ("Range", [_i64(0)[0], _i64(10)[0], _i64(3)[0]], {}),
    ("ConstantOfShape", [_i64(2, 3)], {}),
    ("Cast", [np.array([-1.7, 2.9], np.float32)], {"to": 7}),
    ("Slice", [_i64(0, 1, 2, 3, 4, 5), _i64(-1), _i64(0), _i64(0), _i64(-2)], {}),
    ("Gather", [_i64(10, 20, 30, 40), _i64(3, -1, 0)], {}),
]


@pytest.mark.parametrize("op, args, attrs", FOLD_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(FOLD_CASES)])
def test_folded_operators_match_the_onnx_reference(op, args, attrs):
    """Each shape-computation operator the importer folds, on constants, against onnx's own reference
    implementation (onnx.reference), which is independent of pyconv's numpy one."""
    pytest.importorskip("onnx")
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    from pyconv.onnx.reader import OnnxNode, fold

    names = [f"a{i}" for i in range(len(args))]
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph([node], "fold", [], [helper.make_tensor_value_info("y", 0, None)],
                              [numpy_helper.from_array(np.asarray(a), n) for a, n in zip(args, names)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    (want,) = ReferenceEvaluator(model).run(None, {})
    got = fold(OnnxNode(op, "", "", names, ["y"], dict(attrs)), [np.asarray(a) for a in args], 15)
    assert got.dtype == np.asarray(want).dtype and got.shape == np.asarray(want).shape
    np.testing.assert_array_equal(got, want)
