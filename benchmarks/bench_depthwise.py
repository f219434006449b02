"""Depthwise 3x3 convolutions (stride 1 and 2) of MobileNet v1 and Xception: ``pyconv.DepthwiseConv2D``.

Target (2 threads): >= 30 GFLOP/s at every MobileNet v1 shape, no slower than ONNX Runtime.
"""
from harness import Case
from layer_tables import DEPTHWISE

PEERS = ("onnxruntime", "openvino", "torch")
CASES = [Case("depthwise", "depthwise", row, "depthwise") for row in DEPTHWISE]


def test_depthwise(measure, case, level, threads):
    measure(case, level, threads, PEERS)
