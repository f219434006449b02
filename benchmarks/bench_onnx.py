"""ONNX import (issue 4): ``pyconv.from_onnx`` against ONNX Runtime and OpenVINO on the very same ONNX file.

The networks are the PyTorch definitions of the import tests (``tests/onnx_models.py``) at their real
sizes: MobileNet v1 and v2 at 224, Xception at 299, ShuffleNet v1 (g = 3) at 224 and a ResNeXt-50
conv2 block (256 channels, 32 x 4d) at 56x56, batch norms with random statistics. Each is exported once
per session with ``torch.onnx.export`` (opset 13); pyconv imports that file, ONNX Runtime runs it (all
graph optimisations on, ``intra_op_num_threads`` = the case's thread count, one inter-op thread). Both
take the same NCHW batch-1 input through their public call (``model.run(x)``, ``session.run``), must
agree, and are timed in the harness's alternating, settled steps (:func:`harness.alternate`). OpenVINO
(if installed) runs the file too: ``openvino`` at this CPU's best ISA, and in the rows of pyconv's AVX2
level ``openvino_avx2``, held to AVX2 by ONEDNN_MAX_CPU_ISA=AVX2 in a child process.

pyconv runs at each level of ``--levels`` (default: every level this CPU runs but scalar), with pyconv
at the reference level (the best one) timed beside the other levels' rows (engine ``pyconv_<level>``).

    pytest benchmarks/bench_onnx.py --benchmark-only --threads 1,2 --benchmark-json=onnx.json

``extra_info["pyconv_over_peer"]["onnxruntime"]`` is ONNX Runtime's median over pyconv's: above 1,
pyconv is faster.
"""
from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from harness import (Engine, alternate, at_level, blas_limits, check_agreement, level_info, openvino_avx2_engine,
                     openvino_engine, ort_session, reference_engine, runs_at)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

NETWORKS = {
    "mobilenet_v1": ("MobileNetV1", {}, (1, 3, 224, 224)),
    "mobilenet_v2": ("MobileNetV2", {}, (1, 3, 224, 224)),
    "xception": ("Xception", {}, (1, 3, 299, 299)),
    "shufflenet_v1": ("ShuffleNetV1", {"groups": 3}, (1, 3, 224, 224)),
    "resnext_block": ("ResNeXtBlock", {"channels": 256, "width": 128, "cardinality": 32}, (1, 256, 56, 56)),
}
OPSET = 13
MODEL_RTOL = 1e-3  # max |diff| / max |pyconv| after dozens of float32 layers
SCALAR_BY_DEFAULT = False  # a scalar Xception takes seconds a run: only when --levels names scalar


@dataclass(frozen=True)
class OnnxCase:
    network: str  # a key of NETWORKS

    @property
    def id(self) -> str:
        return f"onnx-{self.network}"


CASES = [OnnxCase(name) for name in NETWORKS]  # crossed with levels and thread counts by conftest.py


@pytest.fixture(scope="session")
def onnx_file(tmp_path_factory):
    """network name -> the path of its ONNX export (made once per session)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnx_models

    cache = {}

    def get(name: str) -> str:
        if name not in cache:
            cls, kwargs, shape = NETWORKS[name]
            torch.manual_seed(0)
            model = onnx_models.randomize_bn(getattr(onnx_models, cls)(**kwargs))
            path = tmp_path_factory.mktemp("onnx") / f"{name}.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's deprecation and tracing notes
                onnx_models.export(model, shape, OPSET, path=path)
            cache[name] = str(path)
        return cache[name]

    return get


def _pyconv_engine(path: str, x: np.ndarray, threads: int, name: str = "pyconv") -> Engine:
    import pyconv

    model = pyconv.from_onnx(path, threads=threads)
    last = []

    def call():
        last[:] = [model.run(x)]

    return Engine(name, call, lambda: last[0], {"nodes": len(model.graph.nodes)})


def _ort_engine(path: str, x: np.ndarray, threads: int) -> Engine:
    session = ort_session(path, threads)
    feed = {session.get_inputs()[0].name: x}
    last = []

    def call():
        last[:] = [session.run(None, feed)[0]]

    return Engine("onnxruntime", call, lambda: last[0], {"intra_op_threads": threads})


def test_onnx_import(benchmark, case, level, threads, reference, onnx_file, peer_names, pytestconfig):
    wanted = [name for name in ("onnxruntime", "openvino", "openvino_avx2")
              if name in peer_names and runs_at(name, level)]
    if not wanted:
        pytest.skip("neither onnxruntime nor openvino is installed (or requested with --peers)")
    path = onnx_file(case.network)
    shape = NETWORKS[case.network][2]
    x = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
    builders = {"onnxruntime": lambda: _ort_engine(path, x, threads),
                "openvino": lambda: openvino_engine(path, {0: x}, threads, lambda ys: ys[0]),
                "openvino_avx2": lambda: openvino_avx2_engine(path, {0: x}, threads, lambda ys: ys[0])}

    with at_level(level):
        main = _pyconv_engine(path, x, threads)
        peers = [builders[name]() for name in wanted]
        if reference is not None and reference != level:
            peers.insert(0, reference_engine(lambda name: _pyconv_engine(path, x, threads, name), reference))
        check_agreement(main, peers, MODEL_RTOL)
        benchmark.group = f"onnx t{threads}"
        with blas_limits(threads):
            info = alternate(benchmark, main, peers, pytestconfig.getoption("case_seconds"),
                             pytestconfig.getoption("benchmark_min_rounds"))
    if info:
        benchmark.extra_info.update(info)
        benchmark.extra_info.update({"module": "onnx", "model": case.network, "phase": "warm", "threads": threads,
                                     "opset": OPSET, "input_shape": list(shape),
                                     "peer_info": {p.name: p.info for p in peers}, **level_info(level, reference)})
