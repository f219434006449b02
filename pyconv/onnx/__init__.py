"""ONNX import (issue 4): run the CNNs people already have, as exported from PyTorch, Keras (tf2onnx) or
model zoos. ``pyconv.from_onnx(path_or_bytes)`` returns a :class:`~pyconv.Model` with the ONNX file's
interface (input names, NCHW, outputs); ``pyconv convert MODEL.onnx -o OUT.json`` writes the pyconv
config and weights instead.

Needs the ``onnx`` package, the optional ``pyconv[onnx]`` extra; it is imported when a model is read,
so importing this package does not need it.
"""
from .convert import convert, from_onnx, supported_operators
from .reader import OnnxImportError

__all__ = ["OnnxImportError", "convert", "from_onnx", "supported_operators"]
