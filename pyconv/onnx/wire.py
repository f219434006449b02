"""Large ONNX weights read out of the file one by one, without the file or its parse held whole.

``onnx.load`` reads the whole file and then parses it, so for a moment a model's weights are in memory
twice (the file's bytes and the parsed message), and three times once they are converted to numpy. Here
the protobuf wire format is read just far enough to find the graph's initializers
(``ModelProto.graph`` = field 7, ``GraphProto.initializer`` = field 5): each float32 initializer whose
``raw_data`` (``TensorProto`` field 9) is at least :data:`STREAMED_BYTES` long is read from the file
straight into an array of its own, and left out of the model's other bytes, which the ``onnx`` package
then parses as usual (they are small: the nodes, attributes, shapes and small tensors).

Anything not laid out exactly as expected (a field repeated where the reader would have to merge it,
a length past its message's end, an unknown wire type, a tensor whose raw data does not match its
shape, external or segmented data) makes :func:`split_large_initializers` return None: the caller then
parses the file whole, and the ``onnx`` package's own checks report what is wrong with it.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import IO, Optional, Union

import numpy as np

from ..memory import MAPPED_BYTES, aligned_empty

__all__ = ["STREAMED_BYTES", "split_large_initializers"]

# Initializers with at least this much raw data are streamed (into arrays mapped from the OS); smaller
# ones stay in the parsed model.
STREAMED_BYTES = MAPPED_BYTES

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
_MODEL_GRAPH, _GRAPH_INITIALIZER = 7, 5
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_SEGMENT, _TENSOR_NAME, _TENSOR_RAW_DATA, _TENSOR_DATA_LOCATION = \
    1, 2, 3, 8, 9, 14
_FLOAT = 1  # TensorProto.FLOAT
# Past these, a file is left to the whole parse (a crafted file of millions of tiny fields would take
# this reader, a Python loop, minutes; the onnx package's C++ parser, a moment).
_MAX_FIELDS = 1 << 20
_MAX_DIMS = 64


class _Malformed(Exception):
    """The file is not laid out as this reader expects (the caller falls back to a whole parse)."""


def _varint(f: IO[bytes]) -> int:
    value = shift = 0
    for _ in range(10):
        byte = f.read(1)
        if not byte:
            raise _Malformed("truncated varint")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
    raise _Malformed("varint longer than 10 bytes")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Reader:
    """A file being scanned, counting the fields read (see :data:`_MAX_FIELDS`)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.fields = 0


def _field(r: _Reader, end: int) -> tuple[int, int, int]:
    """The next field before ``end``: (field number, wire type, where it starts); the file is left at
    its payload (for a length-delimited field, at the payload's length)."""
    r.fields += 1
    if r.fields > _MAX_FIELDS:
        raise _Malformed("too many fields")
    f = r.f
    start = f.tell()
    key = _varint(f)
    number, wire = key >> 3, key & 7
    if number == 0 or wire not in (_VARINT, _FIXED64, _LENGTH, _FIXED32) or f.tell() > end:
        raise _Malformed(f"field {number} of wire type {wire}")
    return number, wire, start


def _skip(f: IO[bytes], wire: int, end: int) -> None:
    """Move past the payload of a field of ``wire`` type."""
    if wire == _VARINT:
        _varint(f)
    elif wire == _FIXED64:
        f.seek(8, io.SEEK_CUR)
    elif wire == _FIXED32:
        f.seek(4, io.SEEK_CUR)
    else:
        length = _varint(f)
        f.seek(length, io.SEEK_CUR)
    if f.tell() > end:
        raise _Malformed("a field runs past the end of its message")


def _read(f: IO[bytes], start: int, end: int) -> bytes:
    f.seek(start)
    data = f.read(end - start)
    if len(data) != end - start:
        raise _Malformed("truncated")
    return data


def _tensor(r: _Reader, end: int) -> Optional[tuple[str, np.ndarray]]:
    """The (name, array) of the TensorProto from here to ``end`` if it is a float32 initializer with
    large raw data, read into an array of its own; else None (the file is left at ``end``)."""
    f = r.f
    dims: list[int] = []
    name, data_type, raw = None, None, None
    while f.tell() < end:
        number, wire, _ = _field(r, end)
        if len(dims) > _MAX_DIMS:
            raise _Malformed("too many dims")
        if number == _TENSOR_DIMS and wire == _VARINT:
            dims.append(_varint(f))
        elif number == _TENSOR_DIMS and wire == _LENGTH:  # packed
            stop = _varint(f) + f.tell()
            if stop > end:
                raise _Malformed("dims run past the tensor")
            while f.tell() < stop and len(dims) <= _MAX_DIMS:
                dims.append(_varint(f))
        elif number == _TENSOR_DATA_TYPE and wire == _VARINT and data_type is None:
            data_type = _varint(f)
        elif number == _TENSOR_NAME and wire == _LENGTH and name is None:
            length = _varint(f)
            name = _read(f, f.tell(), f.tell() + length).decode("utf-8", errors="strict")
        elif number == _TENSOR_RAW_DATA and wire == _LENGTH and raw is None:
            length = _varint(f)
            raw = (f.tell(), length)
            f.seek(length, io.SEEK_CUR)
        elif number in (_TENSOR_SEGMENT, _TENSOR_DATA_LOCATION, _TENSOR_RAW_DATA, _TENSOR_NAME, _TENSOR_DATA_TYPE):
            # Segments, external data or a repeated field: what the whole parse handles.
            raise _Malformed(f"tensor field {number}")
        else:
            _skip(f, wire, end)
        if f.tell() > end:
            raise _Malformed("a field runs past the end of the tensor")
    if raw is None or raw[1] < STREAMED_BYTES or data_type != _FLOAT or name is None:
        return None
    if any(d < 0 for d in dims) or 4 * math.prod(dims) != raw[1]:
        raise _Malformed(f"initializer {name!r}: raw data of {raw[1]} bytes for dims {dims}")
    array = aligned_empty(tuple(dims), mapped=True)
    f.seek(raw[0])
    if f.readinto(memoryview(array.reshape(-1)).cast("B")) != raw[1]:
        raise _Malformed("truncated raw data")
    if not np.little_endian:
        array.byteswap(inplace=True)
    f.seek(end)
    return name, array


def _graph(r: _Reader, end: int, arrays: dict[str, np.ndarray]) -> bytes:
    """The GraphProto from here to ``end`` without its streamed initializers, which go into ``arrays``."""
    f = r.f
    out = bytearray()
    while f.tell() < end:
        number, wire, start = _field(r, end)
        if number == _GRAPH_INITIALIZER and wire == _LENGTH:
            length = _varint(f)
            stop = f.tell() + length
            if stop > end:
                raise _Malformed("an initializer runs past the graph")
            found = _tensor(r, stop)
            if found is not None:
                if found[0] in arrays:
                    raise _Malformed(f"initializer {found[0]!r} twice")
                arrays[found[0]] = found[1]
                continue
            out += _read(f, start, stop)
            continue
        _skip(f, wire, end)
        out += _read(f, start, f.tell())
    return bytes(out)


def _split(r: _Reader, size: int) -> tuple[bytes, dict[str, np.ndarray]]:
    f = r.f
    out = bytearray()
    arrays: dict[str, np.ndarray] = {}
    graphs = 0
    while f.tell() < size:
        number, wire, start = _field(r, size)
        if number == _MODEL_GRAPH and wire == _LENGTH:
            graphs += 1
            if graphs > 1:
                raise _Malformed("two graph fields (protobuf would merge them)")
            length = _varint(f)
            stop = f.tell() + length
            if stop > size:
                raise _Malformed("the graph runs past the end of the file")
            graph = _graph(r, stop, arrays)
            out += _encode_varint(_MODEL_GRAPH << 3 | _LENGTH) + _encode_varint(len(graph)) + graph
            continue
        _skip(f, wire, size)
        out += _read(f, start, f.tell())
    return bytes(out), arrays


def split_large_initializers(path: Union[str, Path]) -> Optional[tuple[bytes, dict[str, np.ndarray]]]:
    """The ONNX file at ``path`` as (its bytes without the large float32 initializers, those
    initializers by name as arrays), read without holding the file whole; None where the file is not
    laid out as expected, or has no such initializer (parse it whole then)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, io.SEEK_END)
            f.seek(0)
            rest, arrays = _split(_Reader(f), size)
    except (_Malformed, UnicodeDecodeError, ValueError, OverflowError, MemoryError, OSError):
        return None  # the whole parse reports a missing or unreadable file in its own words
    return (rest, arrays) if arrays else None
