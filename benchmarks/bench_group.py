"""Group convolution sweep: 3x3, 128 -> 128 at 28x28, G in {1, 2, 4, 8, 16, 32, 128}, via ``pyconv.Conv2D``;
and ShuffleNet v1's grouped 1x1 convolutions (G = 3).

Each G > 1 case of the sweep also times pyconv at G = 1 on the same shape, in the same alternating rounds
(engine ``pyconv_g1``, at the same level), so "G is faster than G = 1" compares measurements taken
side by side.
Target (2 threads): every G > 1 of the sweep faster than G = 1; every row no slower than ONNX Runtime.
"""
from dataclasses import replace

from harness import Case, at_level, layer_data, pyconv_engine
from layer_tables import GROUP_SWEEP, GROUPED_POINTWISE

PEERS = ("onnxruntime", "openvino", "torch")
CASES = [Case("group", "group", row, "conv2d") for row in GROUP_SWEEP + GROUPED_POINTWISE]


def test_group(measure, case, level, threads):
    extra = ()
    if case.row in GROUP_SWEEP and case.row.groups != 1:
        dense = GROUP_SWEEP[0]
        with at_level(level):
            g1 = pyconv_engine(dense, *layer_data(dense), threads, "conv2d", name="pyconv_g1")
        extra = (replace(g1, result=None, info={**g1.info, "macs": dense.macs}),)
    measure(case, level, threads, PEERS, extra)
