"""ONNX import (issue 4): ``pyconv.from_onnx`` against ONNX Runtime on the very same ONNX file.

The networks are the PyTorch definitions of the import tests (``tests/onnx_models.py``) at their real
sizes: MobileNet v1 and v2 at 224, Xception at 299, ShuffleNet v1 (g = 3) at 224 and a ResNeXt-50
conv2 block (256 channels, 32 x 4d) at 56x56, batch norms with random statistics. Each is exported once
per session with ``torch.onnx.export`` (opset 13); pyconv imports that file, ONNX Runtime runs it (all
graph optimisations on, ``intra_op_num_threads`` = the case's thread count, one inter-op thread). Both
take the same NCHW batch-1 input through their public call (``model.run(x)``, ``session.run``), must
agree, and are timed in the harness's alternating, settled steps (:func:`harness.alternate`).

    pytest benchmarks/bench_onnx.py --benchmark-only --threads 1,2 --benchmark-json=onnx.json

``extra_info["pyconv_over_peer"]["onnxruntime"]`` is ONNX Runtime's median over pyconv's: above 1,
pyconv is faster.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from harness import Engine, alternate, blas_limits, check_agreement, ort_session

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


def pytest_generate_tests(metafunc):
    if "network" in metafunc.fixturenames:
        threads = [int(t) for t in metafunc.config.getoption("threads").split(",") if t.strip()]
        pairs = [(name, t) for name in NETWORKS for t in threads]
        metafunc.parametrize(("network", "threads"), pairs, ids=[f"onnx-{n}-t{t}" for n, t in pairs])


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


def test_onnx_import(benchmark, network, threads, onnx_file, peer_names, pytestconfig):
    import pyconv

    if "onnxruntime" not in peer_names:
        pytest.skip("onnxruntime is not installed (or not requested with --peers)")
    path = onnx_file(network)
    shape = NETWORKS[network][2]
    x = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)

    model = pyconv.from_onnx(path, threads=threads)
    session = ort_session(path, threads)
    feed = {session.get_inputs()[0].name: x}
    results = {}

    def run_pyconv():
        results["pyconv"] = model.run(x)

    def run_ort():
        results["onnxruntime"] = session.run(None, feed)[0]

    main = Engine("pyconv", run_pyconv, lambda: results["pyconv"], {"nodes": len(model.graph.nodes)})
    peer = Engine("onnxruntime", run_ort, lambda: results["onnxruntime"], {"intra_op_threads": threads})
    check_agreement(main, [peer], MODEL_RTOL)
    benchmark.group = f"onnx t{threads}"
    with blas_limits(threads):
        info = alternate(benchmark, main, [peer], pytestconfig.getoption("case_seconds"),
                         pytestconfig.getoption("benchmark_min_rounds"))
    if info:
        benchmark.extra_info.update(info)
        benchmark.extra_info.update({"module": "onnx", "model": network, "phase": "warm", "threads": threads,
                                     "opset": OPSET, "input_shape": list(shape),
                                     "peer_info": {"onnxruntime": peer.info}})
