"""Full 3x3 convolutions (MobileNet v1 and Xception stems, 3x3 64 -> 64 at 56x56), one case per strategy.

Every strategy ``pyconv.Conv2D`` offers is forced in turn (Winograd only on 3x3 stride-1 rows), plus
"auto", the one users get. GFLOP/s are effective: 2 x direct MACs / time, whatever the algorithm.
Target (2 threads): auto >= 150 effective GFLOP/s at 56x56x64x64; every row no slower than ONNX Runtime.
"""
from harness import Case
from layer_tables import STANDARD

PEERS = ("onnxruntime", "openvino", "torch")
STRATEGIES = ("auto", "direct", "im2col", "winograd")


def _applies(strategy, row) -> bool:
    return strategy != "winograd" or (row.kernel == 3 and row.stride == 1)


CASES = [Case("standard", s, row, "conv2d", s) for row in STANDARD for s in STRATEGIES if _applies(s, row)]


def test_standard(measure, case, level, threads):
    measure(case, level, threads, PEERS)
