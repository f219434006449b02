"""The fixed cost of a model call: what a tiny model (keyword spotting, a sensor CNN) pays per call and
per layer when its kernels do almost no work, against ONNX Runtime on the same network.

Cases (``CASES``), each model loaded with ``pyconv.load`` and run at batch 1 on its ``example_input()``:

* ``toy_design_doc``: models/toy_design_doc.json (5x5x3 input, 8 nodes, 7 outputs);
* ``chains``: for N in :data:`CHAIN_LENGTHS`, N pointwise convolutions 8->8 in a row on a 4x4x8 input,
  built as a config dict. The kernels' work is a few hundred MACs a layer, so the time per call is the
  dispatch: fitted over N as ``fixed + N * per_layer`` (least squares), it separates the cost of a call
  from that of a layer. Every chain of every engine runs in the same alternating rounds, so that the
  fit is not skewed by the machine's load changing between lengths; the longest pyconv chain is
  pytest-benchmark's row, the others its peers (``pyconv_chain<N>``, ``onnxruntime_chain<N>``).

The peer, ONNX Runtime (optional: left out when it, torch or onnx is missing), runs the twin of the same
config and weights exported with ``pyconv.testing.export_onnx`` (NCHW in and out; all graph
optimisations on, intra-op threads = the case's thread count); each must agree with pyconv on the same
model first. A timed call of an engine is :func:`calls_per_sample` calls of the model (fixed by the
model's node count, so that runs compare: about a millisecond), so that the settle step of the
alternating measurement (harness.py) stays rare beside the calls it separates, while a sample stays
shorter than the time slice another process would take from it on a busy machine (samples of several
milliseconds were all interrupted there, the longest chains' more than the others). pytest-benchmark's
statistics are per sample; in ``extra_info``, ``median_s``, ``min_s`` and ``pyconv_over_peer`` are per
model call, ``per_call_us`` and ``min_per_call_us`` the same in microseconds, and for ``chains`` the
fit per engine (``fixed_us``, ``per_layer_us``). The numbers are sensitive to other work on the
machine: quote them with the load average recorded beside them.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from harness import Engine, alternate, at_level, available_peers, check_agreement, level_info, ort_session

pyconv = pytest.importorskip("pyconv")

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
SAMPLE_US = 1000.0  # a timed call of an engine: about this long (see calls_per_sample)
CHAIN_LENGTHS = (1, 8, 32)
CHAIN_SHAPE = (4, 4, 8)
MODEL_RTOL = 1e-3  # max |diff| / max |pyconv| over all outputs
SCALAR_BY_DEFAULT = False  # the dispatch does not depend on the level: the best ones suffice
TOY = "toy_design_doc"


def _chain(n: int) -> dict:
    layers = [{"name": "input", "type": "input", "shape": list(CHAIN_SHAPE)}]
    for i in range(n):
        layers.append({"name": f"pw{i}", "type": "pointwise_conv2d", "inputs": [layers[-1]["name"]],
                       "filters": CHAIN_SHAPE[2]})
    return {"format": "pyconv-model", "version": 1, "name": f"chain{n}", "seed": 0, "layers": layers,
            "outputs": [layers[-1]["name"]]}


@dataclass(frozen=True)
class OverheadCase:
    name: str  # TOY or "chains"

    @property
    def id(self) -> str:
        return f"overhead-{self.name}"

    def configs(self) -> dict[int, dict]:
        """The models of the case by layer count (the toy's: 0, it is no chain)."""
        if self.name == TOY:
            return {0: json.loads((MODELS_DIR / f"{TOY}.json").read_text())}
        return {n: _chain(n) for n in CHAIN_LENGTHS}


CASES = [OverheadCase(TOY), OverheadCase("chains")]


def _flat(arrays, to_nhwc: bool) -> np.ndarray:
    return np.concatenate([(a.transpose(0, 2, 3, 1) if to_nhwc and a.ndim == 4 else a).ravel() for a in arrays])


def calls_per_sample(nodes: int) -> int:
    """Model calls per timed call for a model of ``nodes`` nodes: about :data:`SAMPLE_US` at a generous
    4 us per call and 2 per node; a function of the model alone, so that runs compare."""
    return max(1, round(SAMPLE_US / (4 + 2 * nodes)))


def _pyconv_engine(config: dict, threads: int, name: str, calls: int) -> Engine:
    model = pyconv.load(config, threads=threads)
    x, outputs = model.example_input(), model.output_names
    last = []

    def call():
        for _ in range(calls):
            y = model(x)
        last[:] = [y[n] for n in outputs] if isinstance(y, dict) else [y]

    return Engine(name, call, lambda: _flat(last, False), {"nodes": len(model.graph.nodes), "calls": calls})


def _ort_engine(config: dict, threads: int, path: str, name: str, calls: int) -> Engine:
    from pyconv.testing import export_onnx

    model = pyconv.load(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python ints in shape arithmetic
        export_onnx(config, model.weights, path, io_layout="NCHW")
    session = ort_session(path, threads)
    x = np.ascontiguousarray(model.example_input().transpose(0, 3, 1, 2))
    feed = {session.get_inputs()[0].name: x}
    last = []

    def call():
        for _ in range(calls):
            y = session.run(None, feed)
        last[:] = y

    return Engine(name, call, lambda: _flat(last, True), {"intra_op_threads": threads, "calls": calls})


def _fit(seconds: dict[int, float]) -> tuple[float, float]:
    """``(fixed, per_layer)`` seconds of ``seconds`` by chain length, least squares."""
    n = sorted(seconds)
    per_layer, fixed = np.polyfit(np.array(n, dtype=np.float64), [seconds[k] for k in n], 1)
    return float(fixed), float(per_layer)


def test_overhead(benchmark, case, level, threads, peer_names, tmp_path, pytestconfig):
    seconds = pytestconfig.getoption("case_seconds")
    min_rounds = pytestconfig.getoption("benchmark_min_rounds")
    ort = "onnxruntime" in peer_names and not available_peers(["torch"])["torch"].startswith("missing")
    configs = case.configs()
    longest = max(configs)
    suffix = {n: f"_chain{n}" if n else "" for n in configs}
    with at_level(level):
        engines, peers = {}, []
        for n, config in configs.items():
            calls = calls_per_sample(len(pyconv.load(config).graph.nodes))
            own = [_pyconv_engine(config, threads, "pyconv" if n == longest else f"pyconv{suffix[n]}", calls)]
            if ort:
                own.append(_ort_engine(config, threads, str(tmp_path / f"{config['name']}.onnx"),
                                       f"onnxruntime{suffix[n]}", calls))
            check_agreement(own[0], own[1:], MODEL_RTOL)
            engines.update({(e.name.split("_chain")[0], n): e for e in own})
            peers += [e for e in own if e.name != "pyconv"]
        main = engines[("pyconv", longest)]
        benchmark.group = f"overhead t{threads}"
        info = alternate(benchmark, main, peers, seconds, min_rounds)
    if not info:
        return
    calls = {e.name: e.info["calls"] for e in engines.values()}
    per_call = {name: t / calls[name] for name, t in info["median_s"].items()}
    fastest = {name: t / calls[name] for name, t in info["min_s"].items()}
    info.update({"module": "overhead", "model": case.name, "phase": "warm", "threads": threads,
                 "calls_per_sample": calls, "median_s": per_call, "min_s": fastest,
                 "pyconv_over_peer": {name: t / per_call["pyconv"] for name, t in per_call.items() if name != "pyconv"},
                 "nodes": {e.name: e.info["nodes"] for e in engines.values() if "nodes" in e.info},
                 "peer_info": {p.name: p.info for p in peers},
                 "per_call_us": {name: 1e6 * t for name, t in per_call.items()},
                 "min_per_call_us": {name: 1e6 * t for name, t in fastest.items()},
                 **level_info(level, None)})
    line = ", ".join(f"{name} {1e6 * t:.1f} us" for name, t in per_call.items())
    if longest:
        fits = {engine: _fit({n: per_call[engines[(engine, n)].name] for n in configs})
                for engine in ("pyconv", "onnxruntime") if (engine, longest) in engines}
        info["chain_lengths"] = list(configs)
        info["fixed_us"] = {name: 1e6 * fixed for name, (fixed, _) in fits.items()}
        info["per_layer_us"] = {name: 1e6 * per_layer for name, (_, per_layer) in fits.items()}
        line += "; fit: " + ", ".join(f"{name} {info['fixed_us'][name]:.1f} us + {info['per_layer_us'][name]:.2f} "
                                      f"us/layer" for name in fits)
    benchmark.extra_info.update(info)
    print(f"\n{case.name} per call: {line}")
