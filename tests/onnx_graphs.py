"""Helpers for tests that build small ONNX graphs by hand (``onnx.helper``) and run them in onnxruntime.

Import it after ``pytest.importorskip("onnx")``; :func:`ort_run` needs onnxruntime as well (skip on
``pytest.importorskip("onnxruntime")`` before calling it).
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

__all__ = ["make_model", "ort_run", "tensor"]


def make_model(nodes, inputs, outputs, initializers=(), opset: int = 13) -> bytes:
    """The serialized model of ``nodes`` (``initializers``: name -> array)."""
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def tensor(name: str, shape=None):
    """A float tensor's value info (``shape`` None: unknown)."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def ort_run(data: bytes, feeds: dict) -> list:
    """onnxruntime's outputs on one thread, warnings silenced."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]).run(None, feeds)
