"""End-to-end latency of every shipped model (models/*.json) against PyTorch, ONNX Runtime and OpenVINO.

pyconv runs the config through its graph runtime (``pyconv.load``), NHWC, at each instruction-set level
of ``--levels`` (default: every level this CPU runs but scalar), with pyconv at the reference level
timed beside the other levels' rows (engine ``pyconv_<level>``). The peers run the same network with
the same weights: PyTorch the twin from ``pyconv.testing.build_twin`` (NCHW), ONNX Runtime and OpenVINO
that twin exported once per model with ``pyconv.testing.export_onnx`` (NCHW; ONNX Runtime: all graph
optimisations on, intra-op threads = the case's thread count, inter-op 1; OpenVINO: that many inference
threads, one stream, float32). In the rows of the AVX2 level, OpenVINO also runs held to AVX2
(``openvino_avx2``: a child process started with ONEDNN_MAX_CPU_ISA=AVX2). All must agree before
anything is timed.

Two phases per model and thread count:

* ``first``: every round loads each engine afresh and times its first run (what a caller sees right
  after loading); the load itself is recorded in extra_info ``load_s``, untimed by pytest-benchmark.
  pyconv's load includes generating seeded weights; the twin gets them ready-made. Process-wide caches
  of the peers (oneDNN primitives, for instance) stay warm after the first round.
* ``warm``: steady-state runs in alternating, settled steps, as in the kernel benchmarks (harness.py).
  After the timed rounds, pyconv's per-node profile of the model (``Model.profile``: each node's median,
  strategy and GFLOP/s) is recorded in extra_info ``profile``.
"""
from __future__ import annotations

import gc
import statistics
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from harness import (Engine, alternate, at_level, available_peers, blas_limits, check_agreement, gc_paused,
                     level_info, openvino_avx2_engine, openvino_engine, ort_session, reference_engine, rounds_for,
                     runs_at, settle, summarise, timed_calls)

pyconv = pytest.importorskip("pyconv")
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MODEL_RTOL = 1e-3  # max |diff| / max |pyconv| over all outputs, after dozens of float32 layers
PEERS = ("onnxruntime", "torch", "openvino", "openvino_avx2")
ONNX_PEERS = ("onnxruntime", "openvino", "openvino_avx2")  # they run the twin's ONNX export
SCALAR_BY_DEFAULT = False  # a scalar Xception takes seconds a run: only when --levels names scalar
PROFILE_RUNS = 10  # runs the per-node profile takes the median of


@dataclass(frozen=True)
class ModelCase:
    model: str  # the config's file stem
    phase: str  # "first" or "warm"

    @property
    def path(self) -> Path:
        return MODELS_DIR / f"{self.model}.json"

    @property
    def id(self) -> str:
        return f"models-{self.model}-{self.phase}"


CASES = [ModelCase(p.stem, phase) for p in sorted(MODELS_DIR.glob("*.json")) for phase in ("first", "warm")]


def _flat(arrays, to_nhwc: bool) -> np.ndarray:
    """Every output raveled into one vector in pyconv's layout, so engines compare with one check."""
    return np.concatenate([(a.transpose(0, 2, 3, 1) if to_nhwc and a.ndim == 4 else a).ravel()
                           for a in arrays])


class ModelEngines:
    """Builds fresh engines for one model at one thread count, all on the same input and weights."""

    def __init__(self, case: ModelCase, threads: int, onnx_path: str):
        self.case, self.threads, self.onnx_path = case, threads, onnx_path
        model = pyconv.load(case.path)
        self.weights = model.weights
        self.outputs = model.output_names
        self.x = model.example_input()  # in the input layer's layout, which pyconv takes as it is
        nchw_input = model.spec.layers[model.input_names[0]].attrs["layout"] == "NCHW"
        self.x_nchw = self.x if nchw_input else np.ascontiguousarray(self.x.transpose(0, 3, 1, 2))
        # The twin speaks NCHW; pyconv returns 4-D outputs in the config's output_layout.
        self.to_nhwc = model.spec.output_layout == "NHWC"

    def pyconv(self, name: str = "pyconv") -> Engine:
        model = pyconv.load(self.case.path)
        last = []

        def call():
            y = model.run(self.x, threads=self.threads)
            last[:] = [y[n] for n in self.outputs] if isinstance(y, dict) else [y]

        return Engine(name, call, lambda: _flat(last, False), {})

    def onnxruntime(self) -> Engine:
        session = ort_session(self.onnx_path, self.threads)
        feed = {session.get_inputs()[0].name: self.x_nchw}
        last = []

        def call():
            last[:] = session.run(None, feed)

        return Engine("onnxruntime", call, lambda: _flat(last, self.to_nhwc), {"intra_op_threads": self.threads})

    def torch(self) -> Engine:
        import torch

        from pyconv.testing import build_twin

        torch.set_num_threads(self.threads)
        twin = build_twin(str(self.case.path), self.weights, io_layout="NCHW")
        xt = torch.from_numpy(self.x_nchw)
        last = []

        def call():
            with torch.inference_mode():
                y = twin(xt)
            last[:] = [t.numpy() for t in (y if isinstance(y, tuple) else (y,))]

        return Engine("torch", call, lambda: _flat(last, self.to_nhwc), {"torch_threads": torch.get_num_threads()})

    def openvino(self) -> Engine:
        return openvino_engine(self.onnx_path, {0: self.x_nchw}, self.threads, lambda ys: _flat(ys, self.to_nhwc))

    def openvino_avx2(self) -> Engine:
        return openvino_avx2_engine(self.onnx_path, {0: self.x_nchw}, self.threads,
                                    lambda ys: _flat(ys, self.to_nhwc))


@pytest.fixture(scope="session")
def onnx_files(tmp_path_factory):
    """model name -> its twin exported to ONNX (once per session: exporting Xception takes seconds)."""
    from pyconv.testing import export_onnx

    cache = {}

    def get(case: ModelCase) -> str:
        if case.model not in cache:
            path = tmp_path_factory.mktemp("onnx") / f"{case.model}.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's notes on Python ints in shape arithmetic
                cache[case.model] = export_onnx(str(case.path), pyconv.load(case.path).weights, path,
                                                io_layout="NCHW")
        return cache[case.model]

    return get


def _first_runs(benchmark, factories: dict, seconds: float, min_rounds: int) -> dict:
    """Per round: each peer loaded afresh and its first run timed, then pyconv's (pytest-benchmark's round)."""
    times, waits, loads = defaultdict(list), defaultdict(list), defaultdict(list)
    fresh = {}

    def load(name):
        fresh.pop(name, None)
        waits[name].append(settle())
        start = time.perf_counter()
        fresh[name] = factories[name]()
        loads[name].append(time.perf_counter() - start)

    def first_run(name):
        times[name] += timed_calls(fresh[name], 0, 1)

    order = [name for name in factories if name != "pyconv"]
    calibration_start = time.perf_counter()
    for name in factories:
        load(name)
        first_run(name)
    rounds = rounds_for(time.perf_counter() - calibration_start, seconds, min_rounds)
    for series in (times, waits, loads):
        series.clear()

    def between_rounds():
        for name in order:
            load(name)
            first_run(name)
        if order:
            order.append(order.pop(0))
        fresh.clear()
        gc.collect()  # the previous round's models go here, outside any timed call
        load("pyconv")

    with gc_paused():
        benchmark.pedantic(lambda: fresh["pyconv"].call(), setup=between_rounds, rounds=rounds, iterations=1)
    if benchmark.stats is None:
        return {}
    times["pyconv"] = list(benchmark.stats.stats.data)
    info = summarise(times, waits, "pyconv", rounds)
    info["load_s"] = {name: statistics.median(ts) for name, ts in loads.items()}
    return info


def test_models(benchmark, case, level, threads, reference, peer_names, onnx_files, pytestconfig):
    seconds = pytestconfig.getoption("case_seconds")
    min_rounds = pytestconfig.getoption("benchmark_min_rounds")
    wanted = [name for name in PEERS if name in peer_names and runs_at(name, level)]
    if available_peers(["torch"])["torch"].startswith("missing"):
        wanted = [name for name in wanted if name not in ONNX_PEERS]  # their model is exported from the twin
    needs_onnx = any(name in ONNX_PEERS for name in wanted)
    engines = ModelEngines(case, threads, onnx_files(case) if needs_onnx else "")
    factories = {"pyconv": engines.pyconv}
    if reference is not None and reference != level:
        factories[f"pyconv_{reference}"] = lambda: reference_engine(engines.pyconv, reference)
    factories.update({name: getattr(engines, name) for name in wanted})
    with at_level(level):
        main, peers = factories["pyconv"](), [factories[name]() for name in factories if name != "pyconv"]
        check_agreement(main, peers, MODEL_RTOL)
        peer_info = {p.name: p.info for p in peers}
        benchmark.group = f"models-{case.phase} t{threads}"
        with blas_limits(threads):  # in case a layer of any engine calls into numpy's BLAS
            if case.phase == "first":
                del main, peers  # each round loads its own
                info = _first_runs(benchmark, factories, seconds, min_rounds)
            else:
                info = alternate(benchmark, main, peers, seconds, min_rounds)
    if info:
        benchmark.extra_info.update(info)
        benchmark.extra_info.update({"module": "models", "model": case.model, "phase": case.phase,
                                     "threads": threads, "peer_info": peer_info, **level_info(level, reference)})
        if case.phase == "warm":
            benchmark.extra_info["profile"] = _profile(case, level, threads)


def _profile(case: ModelCase, level: str, threads: int) -> dict:
    """pyconv's per-node profile of the model at ``level`` (``Model.profile``), JSON-ready."""
    with at_level(level):
        profile = pyconv.load(case.path).profile(repeat=PROFILE_RUNS, threads=threads)
    return {"total_s": profile.total_seconds, "repeat": profile.repeat,
            "strategy_share": dict(profile.strategy_share),
            "nodes": [{"name": r.name, "type": r.type, "strategy": r.strategy, "seconds": r.seconds,
                       "gflops": r.gflops} for r in profile.rows]}
