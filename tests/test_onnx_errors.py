"""ONNX import errors: every model pyconv cannot serve fails at import with one clear
:class:`pyconv.OnnxImportError` (a :class:`pyconv.ModelError`) saying what and where; nothing is
skipped silently. Hand-built graphs (onnx.helper); needs only the onnx package.
"""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
import onnx_graphs as og  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

import pyconv  # noqa: E402
from pyconv.cli import main as cli_main  # noqa: E402


def make_model(nodes, inputs=None, outputs=("y",), initializers=None, opset=13) -> bytes:
    """``nodes`` reading ``x`` (1, 4, 8, 8) unless ``inputs`` are given, computing ``outputs``."""
    return og.make_model(nodes, inputs if inputs is not None else [og.tensor("x", [1, 4, 8, 8])],
                         [og.tensor(o) for o in outputs], initializers or {}, opset)


W = {"w": np.ones((4, 4, 3, 3), np.float32)}


def conv(inp="x", out="c", **attrs):
    return helper.make_node("Conv", [inp, "w"], [out], name=f"conv_{out}", pads=[1, 1, 1, 1], **attrs)


def test_unsupported_ops_listed_together():
    nodes = [conv(), helper.make_node("Softsign", ["c"], ["s"], name="gate"),
             helper.make_node("Celu", ["s"], ["h"], name="celu1"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    with pytest.raises(pyconv.OnnxImportError) as info:
        pyconv.from_onnx(make_model(nodes, initializers=W))
    message = str(info.value)
    assert ("2 node(s) of unsupported operator types: (Softsign, 'gate') [Softsign is not a pyconv activation], "
            "(Celu, 'celu1') [CELU is not a pyconv activation]") in message
    assert "Conv" in info.value.hint and "BatchNormalization" in info.value.hint
    assert isinstance(info.value, pyconv.ModelError)


def test_custom_domain_is_unsupported():
    node = helper.make_node("FusedConv", ["x", "w"], ["y"], name="fc", domain="com.microsoft")
    with pytest.raises(pyconv.OnnxImportError, match=r"\(com.microsoft.FusedConv, 'fc'\)"):
        pyconv.from_onnx(make_model([node], initializers=W))


def test_missing_initializer():
    with pytest.raises(pyconv.OnnxImportError, match=r"Conv 'conv_y'.*input 1 \('w'\).*missing initializer"):
        pyconv.from_onnx(make_model([conv(out="y")]))


def test_truncated_and_garbage_files(tmp_path):
    data = make_model([conv(out="y")], initializers=W)
    for broken in (data[: len(data) // 2], data[:-7], b"\x00\xffnot an onnx file\x13" * 3):
        with pytest.raises(pyconv.OnnxImportError) as info:
            pyconv.from_onnx(broken)
        assert "truncated" in (info.value.hint or str(info.value))
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(pyconv.OnnxImportError, match="empty file"):
        pyconv.from_onnx(empty)
    with pytest.raises(FileNotFoundError, match="not found"):
        pyconv.from_onnx(tmp_path / "missing.onnx")


def test_inconsistent_shapes():
    wrong = {"w": np.ones((4, 3, 3, 3), np.float32)}  # expects 3 input channels, the input has 4
    with pytest.raises(pyconv.OnnxImportError, match=r"Conv 'conv_y'.*inconsistent shapes.*expect 3 input channels"):
        pyconv.from_onnx(make_model([conv(out="y")], initializers=wrong))
    nodes = [conv(), helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Add", ["c", "p"], ["y"], name="add")]
    with pytest.raises(pyconv.OnnxImportError,
                       match=r"Add 'add'.*inconsistent shapes.*\[1, 4, 8, 8\] and \[1, 4, 4, 4\]"):
        pyconv.from_onnx(make_model(nodes, initializers=W))


def test_problems_in_supported_ops_reported_together():
    nodes = [conv(),
             helper.make_node("Pad", ["c", "pads"], ["p"], name="wrap", mode="wrap"),
             helper.make_node("Transpose", ["c"], ["t"], name="hw", perm=[0, 1, 3, 2]),
             helper.make_node("Relu", ["t"], ["r"], name="after")]  # downstream of a problem: not repeated
    data = make_model(nodes, outputs=("p", "r"), initializers={**W, "pads": np.zeros(8, np.int64)})
    with pytest.raises(pyconv.OnnxImportError) as info:
        pyconv.from_onnx(data)
    message = str(info.value)
    assert "2 problem(s)" in message and "Pad 'wrap': padding mode 'wrap' is not supported" in message
    assert "Transpose 'hw': Transpose perm [0, 1, 3, 2]" in message and "after" not in message


def test_dynamic_spatial_size():
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, "height", "width"])]
    with pytest.raises(pyconv.OnnxImportError, match=r"found H = 'height', W = 'width'") as info:
        pyconv.from_onnx(make_model([conv(out="y")], inputs=inputs, initializers=W))
    assert info.value.field == "input_shape" and "input_shape=(1, 4, 224, 224)" in info.value.hint


def test_unsupported_input_types():
    inputs = [helper.make_tensor_value_info("x", TensorProto.INT64, [1, 4, 8, 8])]
    with pytest.raises(pyconv.OnnxImportError, match="element type INT64"):
        pyconv.from_onnx(make_model([conv(out="y")], inputs=inputs, initializers=W))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])]
    with pytest.raises(pyconv.OnnxImportError, match=r"expected an image \(N, C, H, W\).*rank 3"):
        pyconv.from_onnx(make_model([conv(out="y")], inputs=inputs, initializers=W))


def test_computed_weights_and_dynamic_shape_ops():
    nodes = [helper.make_node("Conv", ["x", "x"], ["y"], name="self")]
    with pytest.raises(pyconv.OnnxImportError, match=r"expected the weights \(input 1\) to be a constant"):
        pyconv.from_onnx(make_model(nodes))
    nodes = [conv(), helper.make_node("Gather", ["c", "i"], ["y"], name="pick", axis=1)]
    with pytest.raises(pyconv.OnnxImportError, match="Gather 'pick': Gather is supported only on constants"):
        pyconv.from_onnx(make_model(nodes, initializers={**W, "i": np.array([0, 1], np.int64)}))


def test_not_topologically_sorted():
    nodes = [helper.make_node("Relu", ["c"], ["y"], name="early"), conv()]
    with pytest.raises(pyconv.OnnxImportError, match="not in topological order"):
        pyconv.from_onnx(make_model(nodes, initializers=W))


def test_cli_reports_import_errors(tmp_path, capsys):
    path = tmp_path / "bad.onnx"
    path.write_bytes(make_model([conv(), helper.make_node("Softsign", ["c"], ["y"], name="gate")], initializers=W))
    assert cli_main(["convert", str(path), "-o", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert "(Softsign, 'gate')" in err and "hint: supported operators:" in err
    assert not (tmp_path / "out.json").exists()


def test_nhwc_transposed_image_only_flattens_or_transposes_back():
    nodes = [conv(), helper.make_node("Transpose", ["c"], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]),
             helper.make_node("Relu", ["t"], ["y"], name="relu_nhwc")]
    with pytest.raises(pyconv.OnnxImportError, match=r"Relu 'relu_nhwc'.*transposed to NHWC \[1, 8, 8, 4\]"):
        pyconv.from_onnx(make_model(nodes, initializers=W))
