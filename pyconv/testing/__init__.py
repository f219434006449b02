"""Testing helpers for pyconv users and its own test suite.

``build_twin`` and ``export_onnx`` (from :mod:`pyconv.testing.torch_twin`) rebuild a pyconv model as
a PyTorch module with the same weights, and export it to ONNX, so pyconv's results and speed can be
compared with PyTorch's and onnxruntime's on the same network. They need torch (and onnx to export),
which are imported only when called.
"""
from .torch_twin import build_twin, export_onnx

__all__ = ["build_twin", "export_onnx"]
