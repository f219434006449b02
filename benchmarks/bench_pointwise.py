"""Pointwise (1x1) convolutions of MobileNet v1 and Xception against numpy matmul at the GEMM shape.

Stride-1 rows run ``pyconv.PointwiseConv2D``; Xception's stride-2 residual 1x1 convs run ``pyconv.Conv2D``
(strategy auto), while numpy gets their GEMM on the already subsampled input.
Target (2 threads): >= 90 % of numpy's GFLOP/s at every MobileNet v1 shape, no slower than ONNX Runtime;
at the AVX2 level, >= 90 % of numpy with OpenBLAS held to its AVX2 (Haswell) kernel (peer
``numpy_avx2``, timed in a child process started with OPENBLAS_CORETYPE=Haswell, same thread count).
"""
from harness import Case
from layer_tables import POINTWISE

PEERS = ("numpy", "numpy_avx2", "onnxruntime", "openvino", "torch")
CASES = [Case("pointwise", "pointwise", row, "pointwise" if row.stride == 1 else "conv2d")
         for row in POINTWISE]


def test_pointwise(measure, case, level, threads):
    measure(case, level, threads, PEERS)
