"""Slicing: ``pyconv.slice_axis`` against numpy's slicing (every axis, negative and clamped bounds,
steps, odd shapes, thread counts); the ``slice`` graph layer (errors name the layer and field); ONNX
Split (opset 11 attribute, opset 13 input, equal parts, opset 18 ``num_outputs``) and Slice of computed
tensors against onnxruntime; a ShuffleNetV2 unit (split -> branch -> concat -> channel shuffle) exported
by torch.
"""
from __future__ import annotations

import numpy as np
import pytest

import model_reference as mref
import pyconv
from conftest import model_config, rng_for

CASES = [
    # (shape, axis, start, stop, step)
    ((2, 5, 7, 17), -1, 3, 11, 1),
    ((2, 5, 7, 17), 3, -5, None, 1),
    ((2, 5, 7, 17), -1, 0, 100, 3),
    ((2, 5, 7, 17), -1, -100, -16, 1),
    ((1, 1, 1, 1), -1, 0, 1, 1),
    ((3, 4, 4, 1), 3, None, None, 1),
    ((2, 5, 7, 33), 1, 1, -1, 1),
    ((2, 5, 7, 33), 1, 0, None, 2),
    ((2, 5, 7, 3), 2, -3, 6, 2),
    ((2, 5, 7, 3), 2, 6, None, 1),
    ((2, 9), 1, 2, 7, 1),
    ((2, 9), -1, 1, None, 4),
    ((4, 3, 2, 16), 0, 1, 3, 1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, (*c[0], *c[1:]))))
def test_matches_numpy(case):
    shape, axis, start, stop, step = case
    x = rng_for(case).uniform(-1, 1, shape).astype(np.float32)
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop, step)
    y = pyconv.slice_axis(x, axis, start, stop, step)
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(y, x[tuple(index)])


@pytest.mark.parametrize("axis, step", [(-1, 1), (-1, 2), (1, 1), (2, 3)])
def test_thread_count_invariance(axis, step):
    x = rng_for("threads", axis).uniform(-1, 1, (2, 64, 64, 48)).astype(np.float32)
    one = pyconv.slice_axis(x, axis, 5, -3, step, threads=1)
    for threads in (2, 3):
        np.testing.assert_array_equal(pyconv.slice_axis(x, axis, 5, -3, step, threads=threads), one)


def test_out():
    x = rng_for("out").uniform(-1, 1, (2, 3, 4, 10)).astype(np.float32)
    out = np.empty((2, 3, 4, 4), np.float32)
    assert pyconv.slice_axis(x, -1, 2, 6, out=out) is out
    np.testing.assert_array_equal(out, x[..., 2:6])


X = np.zeros((2, 3, 4, 5), np.float32)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: pyconv.slice_axis(X, 4, 0, 1), ValueError, "axis 4 is out of range"),
    (lambda: pyconv.slice_axis(X, -1, 3, 1), ValueError, r"slice \[3:1:1\] of axis 3 \(length 5\).*empty"),
    (lambda: pyconv.slice_axis(X, -1, 0, 4, 0), ValueError, "step must be a positive int"),
    (lambda: pyconv.slice_axis(X, -1, 0, 4, -1), ValueError, "step must be a positive int"),
    (lambda: pyconv.slice_axis(X, -1, 0.5, 4), TypeError, "start must be an int or None"),
    (lambda: pyconv.slice_axis(X, -1, 0, 4, out=np.zeros((2, 3, 4, 5), np.float32)), ValueError, "out must have"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --- graph layer -------------------------------------------------------------------------------------

def doc(*layers, outputs, shape=(5, 6, 10)):
    return model_config(*layers, outputs=outputs, shape=shape)


def layer(name, type_, *inputs, **kw):
    return {"name": name, "type": type_, "inputs": list(inputs), **kw}


def test_shufflenet_v2_unit_config():
    """Split the channels in halves, run one through a branch, concatenate and shuffle; also H and W
    slices and a slice of a flat tensor."""
    config = doc(layer("left", "slice", "input", start=0, stop=5),
                 layer("right", "slice", "input", axis=-1, start=5),
                 layer("pw", "pointwise_conv2d", "right", filters=5, activation="relu"),
                 layer("dw", "depthwise_conv2d", "pw", kernel=3, padding="same"),
                 layer("cat", "concat", "left", "dw"),
                 layer("shuffle", "channel_shuffle", "cat", groups=2),
                 layer("rows", "slice", "shuffle", axis=1, start=1, stop=-1, step=2),
                 layer("cols", "slice", "rows", axis=-2, start=-4),
                 layer("gap", "global_avg_pool", "cols"),
                 layer("flat", "slice", "gap", start=1, step=3),
                 outputs=["shuffle", "cols", "flat"])
    model = pyconv.Model(config, threads=2)
    assert model.info.outputs["cols"] == (2, 4, 10) and model.info.outputs["flat"] == (3,)
    x = rng_for("unit").uniform(-1, 1, (2, 5, 6, 10)).astype(np.float32)
    weights = {f"{layer}/{p}": a for layer, ps in model.weights.items() for p, a in ps.items()}
    got = model.run(x)
    for name, ref in zip(config["outputs"], mref.run(config, weights, x)):
        np.testing.assert_allclose(got[name], ref, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("fields, field, match", [
    ({"axis": 0}, "axis", "expected an axis in 1..3 or -3..-1 of the batched 4-D tensor, found 0"),
    ({"axis": 4}, "axis", "found 4"),
    ({"start": 7, "stop": 9}, "start", r"non-empty slice, found \[7:9:1\] of an axis of length 6"),
    ({"step": 0}, "step", "positive integer"),
    ({"stop": 2.5}, "stop", "an integer"),
])
def test_layer_errors(fields, field, match):
    config = doc(layer("s", "slice", "input", **{"axis": 2, **fields}), outputs=["s"])
    with pytest.raises(pyconv.ModelError, match=match) as info:
        pyconv.Model(config)
    assert info.value.layer == "s" and info.value.field == field


# --- ONNX --------------------------------------------------------------------------------------------

def _onnx():
    """The ONNX graph helpers and onnx.helper, or a skip (imported lazily: the other tests run without onnx)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import onnx_graphs
    from onnx import helper
    return onnx_graphs, helper


def assert_outputs_match(data, feeds, names):
    og, _ = _onnx()
    model = pyconv.from_onnx(data)
    got = model.run(feeds)
    got = got if isinstance(got, dict) else {names[0]: got}
    for name, ref in zip(names, og.ort_run(data, feeds)):
        np.testing.assert_array_equal(got[name], ref, err_msg=name)
    return model


@pytest.mark.parametrize("form", ["attribute", "input", "equal", "num_outputs"])
def test_onnx_split(form):
    og, helper = _onnx()
    opset = {"attribute": 11, "input": 13, "equal": 13, "num_outputs": 18}[form]
    inits, inputs, attrs = {}, ["x"], {"axis": 1}
    outs = ["a", "b", "c"]
    if form == "attribute":
        attrs["split"] = [2, 5, 3]
    elif form == "input":
        inits["split"] = np.array([4, 1, 5], np.int64)
        inputs.append("split")
    elif form == "num_outputs":
        attrs["num_outputs"] = 3  # chunks of 4, 4 and 2
    else:
        outs = ["a", "b"]
    nodes = [helper.make_node("Split", inputs, outs, name="split", **attrs),
             helper.make_node("Relu", ["b"], ["rb"]),
             helper.make_node("Split", ["x"], ["h1", "h2"], axis=-2, **({"split": [2, 3]} if opset < 13 else {}),
                              **({} if opset < 13 else {"num_outputs": 2} if opset >= 18 else {}))
             if form != "equal" else helper.make_node("Split", ["x"], ["h1", "unused", "h2"], axis=3)]
    if form == "input":  # opset 13 has no attribute for unequal H parts: use the input
        nodes[-1] = helper.make_node("Split", ["x", "hsplit"], ["h1", "h2"], axis=2)
        inits["hsplit"] = np.array([2, 3], np.int64)
    names = [o for o in outs if o != "b"] + ["rb", "h1", "h2"]
    data = og.make_model(nodes, [og.tensor("x", ["N", 10, 5, 6])], [og.tensor(n) for n in names], inits, opset)
    x = rng_for("split", form).uniform(-1, 1, (2, 10, 5, 6)).astype(np.float32)
    model = assert_outputs_match(data, {"x": x}, names)
    slices = [layer for layer in model.spec.document["layers"] if layer["type"] == "slice"]
    assert len(slices) == len(outs) + 2 + (form == "equal")


@pytest.mark.parametrize("opset", [9, 13])
def test_onnx_slice(opset):
    """Channel ranges with negative and clamped ends, H and W crops with steps, several axes in one node,
    a whole-axis (batch) entry that cuts nothing, and a flat tensor."""
    og, helper = _onnx()
    big = 2 ** 62
    forms = {"c": ([2], [-3], [1], None), "hw": ([0, 1, -4], [big, -1, big], [0, 2, 3], None),
             "cs": ([1, 1], [big, 5], [1, 3], [3, 2]), "f": ([3], [big], [1], None)}
    nodes, inits = [helper.make_node("Flatten", ["x"], ["flat"])], {}
    for name, (starts, ends, axes, steps) in forms.items():
        src = "flat" if name == "f" else "x"
        if opset < 10:
            if steps is not None:
                continue  # no steps before opset 10
            nodes.append(helper.make_node("Slice", [src], [name], starts=starts, ends=ends, axes=axes))
            continue
        ins = [src]
        for part, values in (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps)):
            if values is not None:
                inits[f"{name}_{part}"] = np.array(values, np.int64)
                ins.append(f"{name}_{part}")
        nodes.append(helper.make_node("Slice", ins, [name]))
    names = [n.output[0] for n in nodes[1:]]
    data = og.make_model(nodes, [og.tensor("x", ["N", 7, 6, 9])], [og.tensor(n) for n in names], inits, opset)
    x = rng_for("slice", opset).uniform(-1, 1, (2, 7, 6, 9)).astype(np.float32)
    assert_outputs_match(data, {"x": x}, names)


def test_onnx_slice_errors():
    og, helper = _onnx()
    inits = {"s": np.array([0], np.int64), "e": np.array([1], np.int64), "a0": np.array([0], np.int64),
             "a1": np.array([1], np.int64), "neg": np.array([-1], np.int64), "big": np.array([5], np.int64)}
    nodes = [helper.make_node("Slice", ["x", "s", "e", "a0"], ["batch"]),
             helper.make_node("Slice", ["x", "e", "s", "a1", "neg"], ["backwards"]),
             helper.make_node("Slice", ["x", "big", "big", "a1"], ["empty"]),
             helper.make_node("Split", ["x"], ["p", "q"], axis=1)]
    data = og.make_model(nodes, [og.tensor("x", ["N", 3, 4, 4])],
                         [og.tensor(n) for n in ("batch", "backwards", "empty", "p")], inits)
    with pytest.raises(pyconv.OnnxImportError) as info:
        pyconv.from_onnx(data)
    text = str(info.value)
    assert "4 problem(s)" in text
    assert "not the batch axis" in text and "only positive steps" in text
    assert "Slice [5:5:1] of axis 1" in text and "cannot be split into 2 equal parts" in text


def test_shufflenet_v2_unit_from_torch():
    """torch.chunk / split of the channels, a branch, concat and channel shuffle, at opsets 11, 13, 18."""
    torch = pytest.importorskip("torch")
    og, _ = _onnx()
    import onnx_models

    class Unit(torch.nn.Module):
        def __init__(self, c=10):
            super().__init__()
            self.branch = torch.nn.Sequential(torch.nn.Conv2d(c // 2, c // 2, 1), torch.nn.ReLU(),
                                              torch.nn.Conv2d(c // 2, c // 2, 3, padding=1, groups=c // 2))

        def forward(self, x):
            a, b = x.chunk(2, dim=1)
            y = torch.cat([a, self.branch(b)], 1)
            n, c, h, w = y.shape
            y = y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
            p, q = torch.split(y, [3, 7], dim=1)
            return torch.cat([q[:, 1:6, 1:-1, ::2], p[:, :, 1:-1, ::2]], 1)

    torch.manual_seed(0)
    net = Unit().eval()
    x = rng_for("shufflenet").uniform(-1, 1, (2, 10, 6, 9)).astype(np.float32)
    for opset in (11, 13, 18):
        data = onnx_models.export(net, (1, 10, 6, 9), opset, dynamic_batch=True)
        model = pyconv.from_onnx(data)
        assert "channel_shuffle" in {layer["type"] for layer in model.spec.document["layers"]}
        np.testing.assert_allclose(model.run(x), og.ort_run(data, {"input": x})[0],
                                   rtol=1e-5, atol=1e-6)
        with torch.no_grad():
            np.testing.assert_allclose(model.run(x), net(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
