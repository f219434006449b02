"""pyconv against TFLite's XNNPACK: the group sweep (3x3, 128 -> 128 at 28x28, G in {1, 2, 4, 8, 16, 32,
128}), the standard 3x3 rows and two MobileNet v1 rows (a depthwise, a pointwise), beside ONNX Runtime.

Optional: the peer ``xnnpack`` needs ``pip install tensorflow-cpu ai-edge-litert``; without them (or with
``xnnpack`` left out of ``--peers``) the module is skipped with the reason. Each layer's Keras twin
(``Conv2D(groups=G)``, ``DepthwiseConv2D`` for the depthwise row, the same HWIO weights) is converted by
``tf.lite.TFLiteConverter.from_keras_model`` (float32, no optimisations) in a child process, once per
layer and TensorFlow version (cached on disk, see ``harness.keras_twin_tflite``), and run by
``ai_edge_litert``'s interpreter with ``num_threads`` = the case's threads, XNNPACK its default delegate.
The interpreter's input is set once and only ``invoke()`` is timed (``set_tensor``/``get_tensor`` copy),
as ONNX Runtime is timed on its I/O binding and pyconv through its bound operator. XNNPACK chooses its
own instruction set: in the avx2 rows it still runs its best one for this CPU.

Target (2 threads, avx512 and avx2 levels): every G in {2, 4, 8, 16, 32} of the sweep at most 1.1x
XNNPACK's time (``pyconv.dashboard.targets``).
"""
from importlib.util import find_spec

import pytest

from harness import Case
from layer_tables import GROUP_SWEEP, MOBILENET_V1, STANDARD_EXTRA

MISSING = [name for name in ("tensorflow", "ai_edge_litert") if find_spec(name) is None]
if MISSING:
    pytest.skip(f"the xnnpack peer needs {' and '.join(MISSING)}: pip install tensorflow-cpu ai-edge-litert",
                allow_module_level=True)

PEERS = ("xnnpack", "onnxruntime")
MOBILENET_ROWS = tuple(r for r in MOBILENET_V1 if r.name in ("mnv1_dw5", "mnv1_pw5"))
CASES = ([Case("xnnpack", "group", row, "conv2d") for row in GROUP_SWEEP]
         + [Case("xnnpack", "standard", row, "conv2d") for row in STANDARD_EXTRA]
         + [Case("xnnpack", "depthwise" if row.is_depthwise else "pointwise", row,
                 "depthwise" if row.is_depthwise else "pointwise") for row in MOBILENET_ROWS])


def test_xnnpack(measure, peer_names, case, level, threads):
    if "xnnpack" not in peer_names:
        pytest.skip("xnnpack is not among --peers")
    measure(case, level, threads, PEERS)
