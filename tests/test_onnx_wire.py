"""Large ONNX initializers read out of the file apart from the rest (pyconv.onnx.wire): the arrays and
the remaining model equal what the onnx package parses from the whole file; a file this reader does not
expect (truncated, a repeated graph, external data, no large initializer) is left to the whole parse,
so every malformed file still gets the onnx package's own diagnosis."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import pyconv  # noqa: E402
from pyconv.onnx.reader import OnnxImportError  # noqa: E402
from pyconv.onnx.wire import STREAMED_BYTES, split_large_initializers  # noqa: E402


def _model(channels: int = 256) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((channels, 8, 3, 3)).astype(np.float32)       # large: streamed
    w2 = rng.standard_normal((4, channels, 1, 1)).astype(np.float32)       # small: stays
    b1 = rng.standard_normal(channels).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], pads=[1, 1, 1, 1], name="c1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["y"], name="c2")]
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b1, "b1")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_large_initializers_are_read_apart_and_the_rest_parses_the_same(tmp_path):
    model = _model()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    rest, arrays = split_large_initializers(path)
    assert set(arrays) == {"w1"} and 4 * arrays["w1"].size >= STREAMED_BYTES
    np.testing.assert_array_equal(arrays["w1"], numpy_helper.to_array(model.graph.initializer[0]))
    parsed = onnx.ModelProto.FromString(rest)
    assert [t.name for t in parsed.graph.initializer] == ["w2", "b1"]
    del model.graph.initializer[0]
    assert parsed == model


def test_an_import_through_the_split_equals_one_from_the_bytes(tmp_path):
    model = _model()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(1).standard_normal((1, 8, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(pyconv.from_onnx(path).run(x), pyconv.from_onnx(path.read_bytes()).run(x))


@pytest.mark.parametrize("damage", ["truncated", "graph-twice", "no-large-initializer", "external-data"])
def test_files_it_does_not_expect_are_left_to_the_whole_parse(tmp_path, damage):
    path = tmp_path / "m.onnx"
    if damage == "no-large-initializer":
        onnx.save(_model(channels=4), path)
    elif damage == "external-data":
        onnx.save(_model(), path, save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
                  size_threshold=0)
    else:
        data = _model().SerializeToString()
        if damage == "truncated":
            data = data[: len(data) // 2]
        else:  # a second graph field, which protobuf would merge into the first
            graph = _model().graph.SerializeToString()
            data += bytes([7 << 3 | 2]) + _varint(len(graph)) + graph
        path.write_bytes(data)
    assert split_large_initializers(path) is None
    if damage == "truncated":
        with pytest.raises(OnnxImportError, match="cannot parse"):
            pyconv.from_onnx(path)
    elif damage == "external-data":
        x = np.zeros((1, 8, 6, 6), np.float32)
        assert pyconv.from_onnx(path).run(x).shape == (1, 4, 6, 6)


def test_a_missing_file_is_reported_by_the_whole_parse(tmp_path):
    assert split_large_initializers(tmp_path / "absent.onnx") is None
    with pytest.raises(FileNotFoundError, match="ONNX file not found"):
        pyconv.from_onnx(tmp_path / "absent.onnx")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _mutations(data: bytes, count: int):
    rng = np.random.default_rng(11)
    for _ in range(count):
        buf = bytearray(data)
        kind = rng.integers(4)
        if kind == 0:  # flip bits in the first kilobytes, where the fields' keys and lengths are
            for at in rng.integers(0, min(len(buf), 4096), size=int(rng.integers(1, 4))):
                buf[at] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            buf = buf[: int(rng.integers(1, len(buf)))]
        elif kind == 2:
            at = int(rng.integers(len(buf)))
            buf[at:at] = bytes(rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8))
        else:
            at = int(rng.integers(len(buf)))
            buf[at] = int(rng.integers(256))
        yield bytes(buf)


def test_damaged_files_never_escape_as_foreign_exceptions(tmp_path):
    """Byte mutations of a file: the split returns its parts or None, never raises; the import from the
    file then does what an import of the same bytes (parsed whole) does: both load the same model, or
    both raise pyconv's own errors."""
    data = _model().SerializeToString()
    path = tmp_path / "m.onnx"
    x = np.random.default_rng(2).standard_normal((1, 8, 6, 6)).astype(np.float32)

    def outcome(source):
        try:
            return pyconv.from_onnx(source).run(x)
        except pyconv.ModelError as exc:
            return type(exc)

    for mutated in _mutations(data, 150):
        path.write_bytes(mutated)
        split = split_large_initializers(path)
        assert split is None or isinstance(split[0], bytes)
        got, want = outcome(path), outcome(mutated)
        if isinstance(want, np.ndarray):
            np.testing.assert_array_equal(got, want)
        else:
            assert got is want, (got, want)
