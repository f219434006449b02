"""The fixed cost of a model call: what a tiny model (keyword spotting, a sensor CNN) pays per call and
per layer when its kernels do almost no work, against ONNX Runtime on the same network.

Cases (``CASES``), each loaded with ``pyconv.load`` and run at batch 1 on its ``example_input()``:

* ``toy_design_doc``: models/toy_design_doc.json (5x5x3 input, 8 nodes, 7 outputs);
* ``chain<N>`` for N in :data:`CHAIN_LENGTHS`: N pointwise convolutions 8->8 in a row on a 4x4x8 input,
  built as a config dict. The kernels' work is a few hundred MACs a layer, so the time per call is the
  dispatch: fitted over N as ``fixed + N * per_layer`` (least squares over the chain cases measured in
  the session), it separates the cost of a call from that of a layer.

The peer, ONNX Runtime (optional: left out when it, torch or onnx is missing), runs the twin of the same
config and weights exported with ``pyconv.testing.export_onnx`` (NCHW in and out; all graph
optimisations on, intra-op threads = the case's thread count); results must agree first. A timed call of
an engine is :data:`CALLS_PER_SAMPLE` calls of the model, so that the settle step of the alternating
measurement (harness.py) stays rare beside the calls it separates; ``extra_info`` gives per engine the
microseconds of one model call (``per_call_us``: median, ``min_per_call_us``: fastest sample), and on
each chain case the fit over the chain cases measured so far (``fixed_us``, ``per_layer_us`` per
engine). The numbers are sensitive to other work on the machine: quote them with the load average
recorded beside them.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from harness import Engine, alternate, at_level, available_peers, check_agreement, level_info, ort_session

pyconv = pytest.importorskip("pyconv")

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
CALLS_PER_SAMPLE = 100  # model calls per timed call of an engine
CHAIN_LENGTHS = (1, 8, 32)
CHAIN_SHAPE = (4, 4, 8)
MODEL_RTOL = 1e-3  # max |diff| / max |pyconv| over all outputs
SCALAR_BY_DEFAULT = False  # the dispatch does not depend on the level: the best ones suffice
TOY = "toy_design_doc"


@dataclass(frozen=True)
class OverheadCase:
    model: str  # TOY or "chain<N>"
    layers: int = 0  # the chain's length

    @property
    def id(self) -> str:
        return f"overhead-{self.model}"

    def config(self) -> dict:
        if self.model == TOY:
            return json.loads((MODELS_DIR / f"{TOY}.json").read_text())
        layers = [{"name": "input", "type": "input", "shape": list(CHAIN_SHAPE)}]
        for i in range(self.layers):
            layers.append({"name": f"pw{i}", "type": "pointwise_conv2d", "inputs": [layers[-1]["name"]],
                           "filters": CHAIN_SHAPE[2]})
        return {"format": "pyconv-model", "version": 1, "name": self.model, "seed": 0, "layers": layers,
                "outputs": [layers[-1]["name"]]}


CASES = [OverheadCase(TOY)] + [OverheadCase(f"chain{n}", n) for n in CHAIN_LENGTHS]
# Per (level, threads) and engine: model call seconds (median) by chain length, for the fit.
_chain_seconds: dict[tuple, dict[str, dict[int, float]]] = {}


def _flat(arrays, to_nhwc: bool) -> np.ndarray:
    return np.concatenate([(a.transpose(0, 2, 3, 1) if to_nhwc and a.ndim == 4 else a).ravel() for a in arrays])


def _pyconv_engine(config: dict, threads: int) -> Engine:
    model = pyconv.load(config, threads=threads)
    x, outputs = model.example_input(), model.output_names
    last = []

    def call():
        for _ in range(CALLS_PER_SAMPLE):
            y = model(x)
        last[:] = [y[n] for n in outputs] if isinstance(y, dict) else [y]

    return Engine("pyconv", call, lambda: _flat(last, False), {"nodes": len(model.graph.nodes)})


def _ort_engine(config: dict, threads: int, path: str) -> Engine:
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
        for _ in range(CALLS_PER_SAMPLE):
            y = session.run(None, feed)
        last[:] = y

    return Engine("onnxruntime", call, lambda: _flat(last, True), {"intra_op_threads": threads})


def _fit(seconds: dict[int, float]) -> Optional[tuple[float, float]]:
    """``(fixed, per_layer)`` seconds of ``seconds`` by chain length, least squares; None below two lengths."""
    if len(seconds) < 2:
        return None
    n = np.array(sorted(seconds), dtype=np.float64)
    per_layer, fixed = np.polyfit(n, [seconds[k] for k in sorted(seconds)], 1)
    return float(fixed), float(per_layer)


def test_overhead(benchmark, case, level, threads, peer_names, tmp_path, pytestconfig):
    seconds = pytestconfig.getoption("case_seconds")
    min_rounds = pytestconfig.getoption("benchmark_min_rounds")
    config = case.config()
    ort = ("onnxruntime" in peer_names and not available_peers(["torch"])["torch"].startswith("missing"))
    with at_level(level):
        main = _pyconv_engine(config, threads)
        peers = [_ort_engine(config, threads, str(tmp_path / f"{case.model}.onnx"))] if ort else []
        check_agreement(main, peers, MODEL_RTOL)
        benchmark.group = f"overhead t{threads}"
        info = alternate(benchmark, main, peers, seconds, min_rounds)
    if not info:
        return
    per_call = {name: t / CALLS_PER_SAMPLE for name, t in info["median_s"].items()}
    info.update({"module": "overhead", "model": case.model, "threads": threads, "calls_per_sample": CALLS_PER_SAMPLE,
                 "nodes": main.info["nodes"], "peer_info": {p.name: p.info for p in peers},
                 "per_call_us": {name: 1e6 * t for name, t in per_call.items()},
                 "min_per_call_us": {name: 1e6 * t / CALLS_PER_SAMPLE for name, t in info["min_s"].items()},
                 **level_info(level, None)})
    if case.layers:
        chains = _chain_seconds.setdefault((level, threads), {})
        fits = {}
        for name, t in per_call.items():
            chains.setdefault(name, {})[case.layers] = t
            fit = _fit(chains[name])
            if fit is not None:
                fits[name] = fit
        if fits:
            info["fit_lengths"] = sorted(chains["pyconv"])
            info["fixed_us"] = {name: 1e6 * fixed for name, (fixed, _) in fits.items()}
            info["per_layer_us"] = {name: 1e6 * per_layer for name, (_, per_layer) in fits.items()}
    benchmark.extra_info.update(info)
    line = ", ".join(f"{name} {1e6 * t:.1f} us" for name, t in per_call.items())
    if "fixed_us" in info:
        line += "; fit: " + ", ".join(f"{name} {info['fixed_us'][name]:.1f} us + {info['per_layer_us'][name]:.2f} "
                                      f"us/layer" for name in info["fixed_us"])
    print(f"\n{case.model} ({main.info['nodes']} nodes) per call: {line}")
