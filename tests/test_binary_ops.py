"""Broadcasting binary ops: ``pyconv.add``, ``subtract``, ``multiply``, ``divide`` against numpy in
float64 (odd shapes, every broadcast pattern the kernel walks and the copy fallback, fused activations,
in place, thread counts, instruction-set levels); the ``add``/``subtract``/``multiply``/``divide`` graph
layers against tests/model_reference.py; ONNX Add/Sub/Mul/Div of two computed tensors against
onnxruntime (skipped without it).
"""
from __future__ import annotations

import numpy as np
import pytest

import model_reference as mref
import pyconv
from conftest import assert_close, model_config, rng_for
from reference import activate

OPS = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide}

# (a, b): same shapes, a per-sample channel gate (squeeze-and-excitation), a (C,) vector on either side,
# a per-pixel scalar (C = 1), a per-sample scalar, a scalar, odd channel counts, 1x1 images, and
# patterns the kernel does not walk (both operands broadcast, or broadcast axes that are not one run).
SHAPES = [
    ((2, 5, 7, 17), (2, 5, 7, 17)),
    ((2, 5, 7, 17), (2, 1, 1, 17)),
    ((2, 1, 1, 33), (2, 6, 3, 33)),
    ((3, 4, 4, 1), (3, 1, 1, 1)),
    ((2, 3, 5, 16), (16,)),
    ((19,), (1, 2, 3, 19)),
    ((2, 4, 5, 6), (2, 4, 5, 1)),
    ((2, 4, 5, 1), (2, 4, 5, 6)),
    ((1, 1, 1, 1), (1, 1, 1, 1)),
    ((2, 1, 1, 7), (2, 1, 1, 7)),
    ((2, 5, 7, 3), (1,)),
    ((2, 5, 1, 3), (2, 1, 6, 3)),
    ((2, 5, 6, 3), (1, 5, 1, 3)),
    # a gate over more pixels than one kernel call covers (1024 floats), the last call short
    ((3, 13, 11, 24), (3, 1, 1, 24)),
    ((4, 9), (4, 1)),
    ((3,), (3,)),
]


def operands(op, sa, sb):
    rng = rng_for(op, sa, sb)
    a = rng.uniform(-2, 2, sa).astype(np.float32)
    b = rng.uniform(-2, 2, sb).astype(np.float32)
    if op == "divide":  # keep divisors away from zero
        b = np.where(b < 0, b - 0.5, b + 0.5).astype(np.float32)
    return a, b


def expected(op, a, b, activation=None):
    return activate(OPS[op](a.astype(np.float64), b.astype(np.float64)), activation)


@pytest.mark.parametrize("activation", [None, "relu", "relu6"])
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{'x'.join(map(str, s[0]))}-{'x'.join(map(str, s[1]))}")
@pytest.mark.parametrize("op", list(OPS))
def test_matches_numpy(op, shapes, activation):
    a, b = operands(op, *shapes)
    fn = getattr(pyconv, op)
    y = fn(a, b, activation=activation, threads=1)
    assert_close(y, expected(op, a, b, activation), what=f"{op} {shapes}")
    # float32 elementwise results are exact roundings: numpy's float32 op gives the same bits.
    np.testing.assert_array_equal(y, activate(OPS[op](a, b), activation).astype(np.float32))


@pytest.mark.parametrize("shapes", [((2, 64, 64, 17), (2, 1, 1, 17)), ((2, 70001), (2, 70001)),
                                    ((2, 80001), (2, 1)), ((2, 64, 65, 9), (2, 64, 1, 9)),
                                    ((1, 300, 300, 3), (1, 300, 1, 1))])
@pytest.mark.parametrize("op", ["subtract", "divide"])
def test_thread_count_invariance(op, shapes):
    """Large enough to split across threads (rows, and pieces of a row longer than a task)."""
    a, b = operands(op, *shapes)
    fn = getattr(pyconv, op)
    one = fn(a, b, threads=1)
    for threads in (2, 3):
        np.testing.assert_array_equal(fn(a, b, threads=threads), one)
        np.testing.assert_array_equal(fn(b, a, threads=threads), fn(b, a, threads=1))
    assert_close(one, expected(op, a, b))


@pytest.mark.parametrize("op", list(OPS))
def test_levels(level, op):
    for shapes in SHAPES[:8]:
        a, b = operands(op, *shapes)
        for activation in (None, "relu6"):
            y = getattr(pyconv, op)(a, b, activation=activation)
            assert_close(y, expected(op, a, b, activation), what=f"{op} {shapes} at {level}")


def test_in_place_and_out():
    a, b = operands("subtract", (2, 3, 4, 5), (2, 1, 1, 5))
    ref = expected("subtract", a, b, "relu")
    assert pyconv.subtract(a, b, activation="relu", out=a) is a
    assert_close(a, ref)
    a, b = operands("divide", (2, 3, 4, 5), (5,))
    ref = expected("divide", b, a)  # the broadcast operand on the left
    assert pyconv.divide(b, a, out=a) is a
    assert_close(a, ref)
    out = np.empty((2, 3, 4, 5), np.float32)
    a, b = operands("multiply", (2, 3, 1, 5), (2, 1, 4, 5))
    assert pyconv.multiply(a, b, out=out) is out
    assert_close(out, expected("multiply", a, b))


X = np.zeros((2, 3, 4, 5), np.float32)
BUF = np.zeros(10, np.float32)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: pyconv.multiply(X, X[..., :3]), ValueError, r"broadcast.*\(2, 3, 4, 5\).*\(2, 3, 4, 3\)"),
    (lambda: pyconv.subtract(X, 1.0), ValueError, "b must have at least 1 dimension"),
    (lambda: pyconv.divide(X, X, activation="swish"), ValueError, "activation"),
    (lambda: pyconv.add(X, X[:, :1], out=np.zeros((2, 1, 4, 5), np.float32)), ValueError, "out must have shape"),
    (lambda: pyconv.multiply(BUF[:8].reshape(2, 4), BUF[:4], out=BUF[2:].reshape(2, 4)), ValueError, "overlap"),
    (lambda: pyconv.add(X, "a"), TypeError, "b"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --- graph layers ------------------------------------------------------------------------------------

def doc(*layers, outputs, shape=(5, 6, 8)):
    return model_config(*layers, outputs=outputs, shape=shape)


def layer(name, type_, *inputs, **kw):
    return {"name": name, "type": type_, "inputs": list(inputs), **kw}


def test_graph_layers_match_reference():
    """A squeeze-and-excitation gate (global pool -> 1x1 convs -> multiply), the gate as (C,) and as
    (1, 1, C), subtract/divide with per-pixel scalars, broadcasting multi-input add, fused relu."""
    config = doc(
        layer("gap", "global_avg_pool", "input"),
        layer("fc", "dense", "gap", units=8, activation="relu"),
        layer("gate", "reshape", "fc", shape=[1, 1, 8]),
        layer("se", "multiply", "input", "gate"),
        layer("se_flat", "multiply", "fc", "input"),
        layer("pix", "pointwise_conv2d", "input", filters=1),
        layer("sub", "subtract", "pix", "se", activation="relu"),
        layer("relu", "activation", "sub", function="relu6"),
        {"name": "den", "type": "input", "shape": [1, 1, 8]},
        layer("div", "divide", "se", "den"),
        layer("sum", "add", "gate", "div", "gap", activation="relu"),
        layer("both", "add", "pix", "gate"),
        outputs=["relu", "sum", "se_flat", "both"])
    model = pyconv.Model(config, threads=2)
    types = {n.name: (n.type, n.attrs.get("activation")) for n in model.graph.nodes.values()}
    assert types["relu"] == ("subtract", "relu6")  # the relu6 fuses into the subtract's store
    assert model.info.outputs["both"] == (5, 6, 8)
    x = rng_for("graph").uniform(-1, 1, (2, 5, 6, 8)).astype(np.float32)
    den = rng_for("den").uniform(0.5, 2, (2, 1, 1, 8)).astype(np.float32)
    weights = {f"{layer}/{p}": a for layer, ps in model.weights.items() for p, a in ps.items()}
    got = model.run({"input": x, "den": den})
    for name, ref in zip(config["outputs"], mref.run(config, weights, {"input": x, "den": den})):
        assert_close(got[name], ref, what=name)


def test_residual_add_does_not_fuse_a_broadcast():
    config = doc(layer("c", "pointwise_conv2d", "input", filters=8), layer("gap", "global_avg_pool", "input"),
                 layer("sum", "add", "c", "gap"), outputs=["sum"])
    model = pyconv.Model(config)
    assert [n.type for n in model.graph.nodes.values()] == ["pointwise_conv2d", "global_avg_pool", "add"]
    x = rng_for("residual").uniform(-1, 1, (1, 5, 6, 8)).astype(np.float32)
    weights = {f"{layer}/{p}": a for layer, ps in model.weights.items() for p, a in ps.items()}
    assert_close(model.run(x), mref.run(config, weights, x)[0])


@pytest.mark.parametrize("type_", ["add", "multiply", "subtract", "divide"])
def test_graph_shape_errors(type_):
    config = doc(layer("p", "pointwise_conv2d", "input", filters=3), layer("op", type_, "input", "p"),
                 outputs=["op"])
    with pytest.raises(pyconv.ModelError) as info:
        pyconv.Model(config)
    assert info.value.layer == "op" and info.value.field == "inputs[1]"
    assert "[5, 6, 3] (inputs[1]) against [5, 6, 8]" in str(info.value)
    if type_ != "add":
        config = doc(layer("op", type_, "input", "input", "input"), outputs=["op"])
        with pytest.raises(pyconv.ModelError, match="exactly 2 input"):
            pyconv.Model(config)


# --- ONNX --------------------------------------------------------------------------------------------

def _onnx():
    """The ONNX graph helpers, or a skip (imported lazily: the other tests run without onnx)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import onnx_graphs
    from onnx import helper
    return onnx_graphs, helper


@pytest.mark.parametrize("opset", [11, 13])
def test_onnx_two_computed_operands(opset):
    """(N, C, H, W) op (N, C, 1, 1) from a global pool (as (C,)) and from a 1x1 conv of it (as (1, 1, C)),
    the gate on the left of Sub and Div, a per-pixel (N, 1, H, W) scalar, (N, C, H, 1) * (N, C, 1, W)
    (both broadcast), (N, F) * (N, F) and (N, F) - (N, 1) after flattening."""
    og, helper = _onnx()
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Conv", ["g", "w1"], ["g1"], kernel_shape=[1, 1]),
        helper.make_node("Mul", ["x", "g"], ["m"]),
        helper.make_node("Sub", ["g1", "m"], ["s"]),
        helper.make_node("Div", ["g1", "x2"], ["d"]),
        helper.make_node("Conv", ["x", "w2"], ["p"], kernel_shape=[1, 1]),
        helper.make_node("Add", ["d", "p"], ["a"]),
        helper.make_node("MaxPool", ["x"], ["rw"], kernel_shape=[5, 1]),
        helper.make_node("Mul", ["s", "a"], ["sa"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Mul", ["f", "f"], ["ff"]),
        helper.make_node("Gemm", ["f", "w3"], ["f1"], transB=1),
        helper.make_node("Sub", ["ff", "f1"], ["fs"]),
        helper.make_node("Relu", ["sa"], ["out"]),
    ]
    weights = {"w1": rng_for("w1").uniform(-1, 1, (6, 6, 1, 1)).astype(np.float32),
               "w2": rng_for("w2").uniform(-1, 1, (1, 6, 1, 1)).astype(np.float32),
               "w3": rng_for("w3").uniform(-1, 1, (1, 6)).astype(np.float32)}
    data = og.make_model(nodes, [og.tensor("x", ["N", 6, 5, 7]), og.tensor("x2", ["N", 6, 5, 7])],
                         [og.tensor(n) for n in ("out", "fs", "rw")], weights, opset)
    model = pyconv.from_onnx(data)
    types = [layer["type"] for layer in model.spec.document["layers"]]
    assert types.count("multiply") == 3 and types.count("subtract") == 2 and types.count("divide") == 1
    rng = rng_for("onnx-binary", opset)
    feeds = {"x": rng.uniform(-1, 1, (2, 6, 5, 7)).astype(np.float32),
             "x2": (rng.uniform(0.5, 2, (2, 6, 5, 7)) * rng.choice([-1, 1], (2, 6, 5, 7))).astype(np.float32)}
    got = model.run(feeds)
    for name, ref in zip(("out", "fs", "rw"), og.ort_run(data, feeds)):
        np.testing.assert_allclose(got[name], ref, rtol=1e-4, atol=1e-5, err_msg=name)


def test_onnx_both_operands_broadcast():
    og, helper = _onnx()
    nodes = [helper.make_node("MaxPool", ["x"], ["rows"], kernel_shape=[1, 7]),
             helper.make_node("MaxPool", ["x"], ["cols"], kernel_shape=[5, 1]),
             helper.make_node("Mul", ["rows", "cols"], ["y"])]
    data = og.make_model(nodes, [og.tensor("x", [1, 3, 5, 7])], [og.tensor("y")])
    model = pyconv.from_onnx(data)
    x = rng_for("both").uniform(-1, 1, (1, 3, 5, 7)).astype(np.float32)
    np.testing.assert_allclose(model.run(x), og.ort_run(data, {"x": x})[0], rtol=1e-6)


def test_onnx_se_block_from_torch():
    """A MobileNetV3-style squeeze-and-excitation block exported by torch, with its hard-sigmoid spelled
    as relu6(x + 3) / 6, at opsets 11, 13 and 18."""
    torch = pytest.importorskip("torch")
    og, _ = _onnx()
    import onnx_models

    class SE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 12, 3, padding=1)
            self.fc1 = torch.nn.Conv2d(12, 4, 1)
            self.fc2 = torch.nn.Conv2d(4, 12, 1)

        def forward(self, x):
            x = self.conv(x)
            s = torch.nn.functional.adaptive_avg_pool2d(x, 1)
            gate = torch.nn.functional.relu6(self.fc2(torch.relu(self.fc1(s))) + 3) / 6
            return x * gate - x / (1 + gate)

    torch.manual_seed(0)
    net = SE().eval()
    x = rng_for("se").uniform(-1, 1, (2, 4, 9, 7)).astype(np.float32)
    for opset in (11, 13, 18):
        data = onnx_models.export(net, (1, 4, 9, 7), opset, dynamic_batch=True)
        model = pyconv.from_onnx(data)
        np.testing.assert_allclose(model.run(x), og.ort_run(data, {"input": x})[0], rtol=1e-4, atol=1e-5)
        with torch.no_grad():
            np.testing.assert_allclose(model.run(x), net(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_errors():
    og, helper = _onnx()
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Mul", ["x", "f"], ["y"]),
             helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2]), helper.make_node("Add", ["x", "p"], ["z"]),
             helper.make_node("Div", ["one", "x"], ["r"])]
    data = og.make_model(nodes, [og.tensor("x", [1, 2, 4, 4])], [og.tensor(n) for n in "yzr"],
                         {"one": np.ones((1,), np.float32)})
    with pytest.raises(pyconv.OnnxImportError) as info:
        pyconv.from_onnx(data)
    text = str(info.value)
    assert "3 problem(s)" in text
    assert "Mul (output 'y'): multiplying [1, 2, 4, 4] and [1, 32]: broadcasting a 2-D" in text
    assert "Add (output 'z'): inconsistent shapes: adding [1, 2, 4, 4] and [1, 2, 3, 3], which do not" in text
    assert "Div of a constant by a computed tensor is not supported" in text


@pytest.mark.parametrize("full, small, split", [
    ((2, 3, 4, 5), (2, 3, 4, 5), (1, 1, 120)),   # equal shapes: one flat run, not one call per element
    ((1, 3, 4, 5), (3, 4, 5), (1, 1, 60)),
    ((2, 3, 4, 5), (2, 1, 1, 5), (2, 12, 5)),    # the squeeze-and-excitation gate
    ((2, 3, 4, 5), (5,), (1, 24, 5)),
    ((2, 3, 4, 5), (2, 3, 4, 1), (24, 5, 1)),    # a scalar per pixel
    ((2, 3, 4, 5), (1,), (1, 120, 1)),
    ((2, 3, 4, 5), (1, 3, 4, 5), (1, 2, 60)),
    ((2, 3, 4, 5), (1, 3, 1, 5), None),          # two broadcast runs: the copy fallback
])
def test_broadcast_split(full, small, split):
    from pyconv.ops import _broadcast_split
    assert _broadcast_split(full, small) == split
