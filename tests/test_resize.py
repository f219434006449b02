"""Spatial resizing: ``pyconv.resize`` against the naive reference of tests/reference.py (every mode,
coordinate transformation and nearest rounding, scales and sizes, odd shapes), at every level and
thread count; torch.nn.functional.interpolate; the ``resize`` graph layer; ONNX Resize (opsets 10, 11,
13, 18: scales, sizes, axes) and Upsample (7, 9) against onnxruntime, and the forms refused.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import pyconv
from conftest import assert_close, model_config, rng_for
from reference import resize_ref

TRANSFORMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
# (input H, W, C), size or scale: up and down, by integers, halves and odd ratios, 1x1 in and out,
# one channel and channel counts off the vector width. Sizes whose ratio is not a dyadic fraction put
# nearest-rounding ties where float32 (pyconv, ONNX Runtime) and float64 (the reference) can differ,
# so the nearest cases use the others.
GEOMETRY = [
    ((5, 7, 3), None, (2, 2)),
    ((4, 6, 17), None, (0.5, 1.5)),
    ((1, 1, 1), None, (3, 2)),
    ((6, 5, 16), (3, 10), None),
    ((3, 4, 33), (12, 1), None),
    ((1, 1, 5), (1, 1), None),
    ((8, 8, 2), None, (0.75, 1.25)),
    ((7, 3, 4), None, (1.7, 2.3)),
]
ODD_SIZES = [((5, 7, 3), (9, 4), None), ((7, 9, 8), (3, 5), None)]


def image(shape, key):
    return rng_for(key).uniform(-1, 1, (2, *shape)).astype(np.float32)


def nearest_cases():
    return [(g, t, m) for g, t, m in itertools.product(GEOMETRY, TRANSFORMS, NEAREST)]


@pytest.mark.parametrize("geometry, transformation, nearest_mode", nearest_cases(),
                         ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) and not isinstance(v[0], tuple)
                         else None)
def test_nearest_matches_reference(geometry, transformation, nearest_mode):
    shape, size, scale = geometry
    x = image(shape, ("nearest", geometry))
    y = pyconv.resize(x, size, scale=scale, coordinate_transformation=transformation, nearest_mode=nearest_mode)
    ref = resize_ref(x, size, scale, "nearest", transformation, nearest_mode)
    np.testing.assert_array_equal(y, ref.astype(np.float32))


@pytest.mark.parametrize("transformation", TRANSFORMS[:4])
@pytest.mark.parametrize("geometry", GEOMETRY + ODD_SIZES)
def test_bilinear_matches_reference(geometry, transformation):
    shape, size, scale = geometry
    x = image(shape, ("bilinear", geometry))
    y = pyconv.resize(x, size, scale=scale, mode="bilinear", coordinate_transformation=transformation)
    assert_close(y, resize_ref(x, size, scale, "bilinear", transformation), rtol=1e-5)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_levels_and_threads(level, mode):
    x = rng_for("levels", mode).uniform(-1, 1, (2, 40, 30, 37)).astype(np.float32)
    one = pyconv.resize(x, scale=(2, 2.5), mode=mode, threads=1)
    assert_close(one, resize_ref(x, None, (2, 2.5), mode), rtol=1e-5)
    for threads in (2, 3):
        np.testing.assert_array_equal(pyconv.resize(x, scale=(2, 2.5), mode=mode, threads=threads), one)


@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True)])
@pytest.mark.parametrize("factor", [dict(scale_factor=2.0), dict(scale_factor=(0.5, 1.5)), dict(size=(7, 3)),
                                    dict(size=(1, 1))])
def test_torch_interpolate(mode, align_corners, factor):
    torch = pytest.importorskip("torch")
    x = rng_for("torch", mode, str(factor)).uniform(-1, 1, (2, 5, 6, 3)).astype(np.float32)
    with torch.no_grad():
        ref = torch.nn.functional.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)), mode=mode,
                                              align_corners=align_corners, **factor).numpy().transpose(0, 2, 3, 1)
    # torch's align_corners=False is half_pixel, also for an output of length 1 (its ONNX export says
    # pytorch_half_pixel, which reads pixel 0 there)
    transformation = {None: "asymmetric", False: "half_pixel", True: "align_corners"}[align_corners]
    kwargs = {"size": factor["size"]} if "size" in factor else {"scale": factor["scale_factor"]}
    y = pyconv.resize(x, mode=mode, coordinate_transformation=transformation, nearest_mode="floor", **kwargs)
    assert_close(y, ref, rtol=1e-5)


X = np.zeros((1, 4, 4, 2), np.float32)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: pyconv.resize(X), ValueError, "exactly one of size and scale"),
    (lambda: pyconv.resize(X, (2, 2), scale=2), ValueError, "exactly one of size and scale"),
    (lambda: pyconv.resize(X, scale=0.1), ValueError, r"empty output \(0x0\)"),
    (lambda: pyconv.resize(X, scale=-1), ValueError, "scale must be positive"),
    (lambda: pyconv.resize(X, (0, 2)), ValueError, "size must be positive"),
    (lambda: pyconv.resize(X, scale=2, mode="cubic"), ValueError, "mode must be one of 'nearest', 'bilinear'"),
    (lambda: pyconv.resize(X, scale=2, coordinate_transformation="tf_crop_and_resize"), ValueError,
     "coordinate_transformation must be one of"),
    (lambda: pyconv.resize(X, scale=2, nearest_mode="round"), ValueError, "nearest_mode must be one of"),
    (lambda: pyconv.resize(X[0], scale=2), ValueError, "x must have 4 dimensions"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --- graph layer -------------------------------------------------------------------------------------

def doc(*layers, outputs, shape=(5, 6, 3)):
    return model_config(*layers, outputs=outputs, shape=shape)


def test_layer():
    config = doc({"name": "up", "type": "resize", "inputs": ["input"], "scale": [2, 1.5], "mode": "bilinear",
                  "coordinate_transformation": "align_corners"},
                 {"name": "down", "type": "resize", "inputs": ["up"], "size": [3, 4], "nearest_mode": "ceil"},
                 outputs=["up", "down"])
    model = pyconv.Model(config)
    assert model.info.outputs == {"input": (5, 6, 3), "up": (10, 9, 3), "down": (3, 4, 3)}
    x = image((5, 6, 3), "layer")
    got = model.run(x)
    up = resize_ref(x, None, (2, 1.5), "bilinear", "align_corners")
    assert_close(got["up"], up, rtol=1e-5)
    assert_close(got["down"], resize_ref(got["up"], (3, 4), None, "nearest", "half_pixel", "ceil"), rtol=1e-6)


@pytest.mark.parametrize("fields, field, match", [
    ({}, "scale", "exactly one of scale and size, found neither"),
    ({"scale": 2, "size": [3, 3]}, "scale", "found both"),
    ({"scale": [0.1, 1]}, "scale", r"non-empty output, found \[0.1, 1\] for an input of 5x6 \(output 0x6\)"),
    ({"scale": [0, 1]}, "scale", "positive number"),
    ({"scale": 0.1}, "scale", r"found 0.1 for an input of 5x6 \(output 0x0\)"),
    ({"size": [3, 3], "mode": "cubic"}, "mode", '"nearest", "bilinear"'),
    ({"size": [3, 3], "coordinate_transformation": "tf_crop_and_resize"}, "coordinate_transformation", "half_pixel"),
])
def test_layer_errors(fields, field, match):
    with pytest.raises(pyconv.ModelError, match=match) as info:
        pyconv.Model(doc({"name": "r", "type": "resize", "inputs": ["input"], **fields}, outputs=["r"]))
    assert info.value.layer == "r" and info.value.field == field


def test_layer_needs_an_image():
    config = doc({"name": "gap", "type": "global_avg_pool", "inputs": ["input"]},
                 {"name": "r", "type": "resize", "inputs": ["gap"], "scale": 2}, outputs=["r"])
    with pytest.raises(pyconv.ModelError, match="expected an image input") as info:
        pyconv.Model(config)
    assert info.value.layer == "r" and info.value.field == "inputs"


# --- ONNX --------------------------------------------------------------------------------------------

def _onnx():
    """The ONNX graph helpers and onnx.helper, or a skip (imported lazily: the other tests run without onnx)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import onnx_graphs
    from onnx import helper
    return onnx_graphs, helper


def resize_node(opset, x, y, factors, sizes=False, axes=None, **attrs):
    """A Resize of ``x`` in the input form of ``opset``; returns (node, initializers)."""
    _, helper = _onnx()
    name = f"{y}_f"
    value = np.array(factors, np.int64 if sizes else np.float32)
    if opset < 11:
        return helper.make_node("Resize", [x, name], [y], **attrs), {name: value}
    inputs = [x, "", "", name] if sizes else [x, "", name]
    if opset < 13:  # roi and scales are not optional before opset 13: empty tensors stand for them
        inputs[1:3] = ["empty", "empty"] if sizes else ["empty", name]
    if axes is not None:
        attrs["axes"] = axes
    return helper.make_node("Resize", inputs, [y], **attrs), {name: value, "empty": np.zeros(0, np.float32)}


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_onnx_resize(opset):
    """Every transformation and nearest mode, linear, scales and sizes, opset 18's axes."""
    og, helper = _onnx()
    nodes, inits, names = [], {}, []
    forms = []
    for transformation in TRANSFORMS:
        for nearest_mode in NEAREST:
            forms.append(dict(mode="nearest", coordinate_transformation_mode=transformation, nearest_mode=nearest_mode))
        if transformation != "tf_half_pixel_for_nn":
            forms.append(dict(mode="linear", coordinate_transformation_mode=transformation))
    for i, attrs in enumerate(forms):
        sizes = i % 3 == 1
        factors = [2, 4, 11, 3] if sizes else [1, 1, 2.0 if i % 3 else 0.75, 1.5]
        axes = None
        if opset >= 18 and i % 4 == 0:
            factors, axes = factors[2:], [2, 3]
        node, extra = resize_node(opset, "x", f"y{i}", factors, sizes, axes, **attrs)
        nodes.append(node)
        inits.update(extra)
        names.append(f"y{i}")
    data = og.make_model(nodes, [og.tensor("x", [2, 4, 8, 6])], [og.tensor(n) for n in names], inits, opset)
    model = pyconv.from_onnx(data)
    assert {layer["type"] for layer in model.spec.document["layers"]} == {"input", "resize"}
    x = rng_for("onnx-resize", opset).uniform(-1, 1, (2, 4, 8, 6)).astype(np.float32)
    got = model.run(x)
    for name, ref, attrs in zip(names, og.ort_run(data, {"x": x}), forms):
        np.testing.assert_allclose(got[name], ref, rtol=1e-5, atol=1e-6, err_msg=f"{name} {attrs}")


@pytest.mark.parametrize("op, opset", [("Upsample", 7), ("Upsample", 9), ("Resize", 10)])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_onnx_legacy(op, opset, mode):
    """Before opset 11: asymmetric coordinates, nearest truncated when upscaling, rounded up when
    downscaling (Resize 10 only: Upsample cannot downscale)."""
    og, helper = _onnx()
    scales = [[1, 1, 2, 3], [1, 1, 1.5, 2.5]] + ([[1, 1, 0.5, 0.75]] if op == "Resize" else [])
    nodes, inits = [], {}
    for i, s in enumerate(scales):
        if opset == 7:
            nodes.append(helper.make_node(op, ["x"], [f"y{i}"], mode=mode, scales=[float(v) for v in s]))
        else:
            nodes.append(helper.make_node(op, ["x", f"s{i}"], [f"y{i}"], mode=mode))
            inits[f"s{i}"] = np.array(s, np.float32)
    names = [f"y{i}" for i in range(len(scales))]
    data = og.make_model(nodes, [og.tensor("x", [1, 3, 5, 7])], [og.tensor(n) for n in names], inits, opset)
    x = rng_for("legacy", op, opset, mode).uniform(-1, 1, (1, 3, 5, 7)).astype(np.float32)
    got = pyconv.from_onnx(data).run(x)
    for name, ref in zip(names, og.ort_run(data, {"x": x})):
        np.testing.assert_allclose(got[name], ref, rtol=1e-5, atol=1e-6, err_msg=name)


def test_onnx_upsample_from_torch():
    """torch exports of F.interpolate (nearest, bilinear, align_corners) after a convolution, and a
    global pool's (N, C, 1, 1) upsampled back to the map's size (DeepLab's image pooling)."""
    torch = pytest.importorskip("torch")
    og, _ = _onnx()
    import onnx_models

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            x = self.conv(x)
            a = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            b = torch.nn.functional.interpolate(x, size=(10, 14), mode="bilinear", align_corners=False)
            c = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            g = torch.nn.functional.interpolate(torch.nn.functional.adaptive_avg_pool2d(x, 1), size=(10, 14),
                                                mode="bilinear", align_corners=False)
            return a + b - c * g

    torch.manual_seed(0)
    net = Net().eval()
    x = rng_for("torch-up").uniform(-1, 1, (2, 3, 5, 7)).astype(np.float32)
    for opset in (11, 13, 18):
        data = onnx_models.export(net, (1, 3, 5, 7), opset, dynamic_batch=True)
        model = pyconv.from_onnx(data)
        np.testing.assert_allclose(model.run(x), og.ort_run(data, {"input": x})[0],
                                   rtol=1e-4, atol=1e-5)
        with torch.no_grad():
            np.testing.assert_allclose(model.run(x), net(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_refused_forms():
    og, helper = _onnx()
    cases = [
        (dict(mode="cubic"), [1, 1, 2, 2], False, "mode 'cubic' is not supported"),
        (dict(coordinate_transformation_mode="tf_crop_and_resize"), [1, 1, 2, 2], False, "tf_crop_and_resize"),
        (dict(mode="linear", antialias=1), [1, 1, 0.5, 0.5], False, "antialias=1 when downscaling"),
        (dict(keep_aspect_ratio_policy="not_larger"), [1, 3, 6, 6], True, "keep_aspect_ratio_policy"),
        ({}, [1, 2, 2, 2], False, "only the spatial axes"),
        ({}, [1, 6, 8, 8], True, "only the spatial axes"),
        (dict(nearest_mode="round"), [1, 1, 2, 2], False, "unknown nearest_mode 'round'"),
        (dict(coordinate_transformation_mode="half_pixel_symmetric"), [1, 1, 2, 2], False,
         "coordinate_transformation_mode 'half_pixel_symmetric' is not supported"),
    ]
    nodes, inits = [], {}
    for i, (attrs, factors, sizes, _) in enumerate(cases):
        node, extra = resize_node(18, "x", f"y{i}", factors, sizes, **attrs)
        nodes.append(node)
        inits.update(extra)
    data = og.make_model(nodes, [og.tensor("x", [1, 3, 4, 4])], [og.tensor(f"y{i}") for i in range(len(cases))],
                      inits, 18)
    with pytest.raises(pyconv.OnnxImportError) as info:
        pyconv.from_onnx(data)
    text = str(info.value)
    assert f"{len(cases)} problem(s)" in text
    for i, (*_, message) in enumerate(cases):
        assert f"Resize (output 'y{i}'): " in text and message in text, message


def test_onnx_symbolic_sizes():
    """A torch export with symbolic H and W: channel split, squeeze-and-excitation multiply, a bilinear
    upscale by a scale, an H crop counted from the end and a nearest resize to sizes computed from the
    input's shape; run at several input sizes against onnxruntime."""
    torch = pytest.importorskip("torch")
    og, _ = _onnx()
    import io

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 8, 3, padding=1)
            self.fc = torch.nn.Conv2d(8, 8, 1)

        def forward(self, x):
            x = self.conv(x)
            a, b = x.chunk(2, 1)
            gate = torch.relu(self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 1)))
            y = torch.nn.functional.interpolate(torch.cat([b, a], 1) * gate, scale_factor=2, mode="bilinear")
            size = (y.shape[2] - 2, y.shape[3])
            return y[:, :, 1:-1, :] - torch.nn.functional.interpolate(x, size=size, mode="nearest")

    torch.manual_seed(0)
    f = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(Net().eval(), (torch.zeros(1, 4, 8, 10),), f, opset_version=13, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "oh", 3: "ow"}})
    model = pyconv.from_onnx(f.getvalue(), input_shape=(1, 4, 8, 10))
    for shape in [(1, 4, 8, 10), (2, 4, 12, 7), (1, 4, 5, 5)]:
        x = rng_for("symbolic", shape).uniform(-1, 1, shape).astype(np.float32)
        np.testing.assert_allclose(model.run(x), og.ort_run(f.getvalue(), {"input": x})[0], rtol=1e-4, atol=1e-5,
                                   err_msg=str(shape))
