"""Fuzzing of both model loaders: every input loads and runs, or fails with pyconv's own error (see
:mod:`fuzz.harness` for the rule).

The default run replays the corpus and draws a few dozen inputs of each kind, derandomized so that it
is the same on every machine. The campaign (``-m slow``) draws thousands, checks them in a worker
process so that a crash or a hang is reported too, keeps every failing input in the corpus and lists
the distinct failures at the end.
"""
from __future__ import annotations

import collections
import os
import signal

import numpy as np
import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("onnx")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pyconv  # noqa: E402
from fuzz import harness  # noqa: E402
from fuzz.configs import configs, mutated_configs, mutated_weights, npz_bytes  # noqa: E402
from fuzz.graphs import mutated_bytes, mutated_onnx, onnx_models  # noqa: E402

DEFAULT = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck))
CAMPAIGN = settings(max_examples=4000, derandomize=False, database=None, deadline=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck))


def _npz_weights() -> dict[str, np.ndarray]:
    weights = pyconv.load(harness.NPZ_CONFIG, threads=1).weights
    return {f"{layer}/{name}": array for layer, params in weights.items() for name, array in params.items()}


# Each kind of input as a strategy of (kind, data).
INPUTS = {
    "config": configs().map(lambda doc: ("config", doc)),
    "config-mutated": mutated_configs().map(lambda doc: ("config", doc)),
    "config-file-mutated": mutated_configs().map(lambda doc: ("config-bytes", harness.to_json(doc))),
    "config-bytes": configs().flatmap(lambda doc: mutated_bytes(harness.to_json(doc))).map(
        lambda data: ("config-bytes", data)),
    "npz-mutated": st.deferred(lambda: mutated_weights(_npz_weights())).map(lambda a: ("npz", npz_bytes(a))),
    "npz-bytes": st.deferred(lambda: mutated_bytes(npz_bytes(_npz_weights()))).map(lambda data: ("npz", data)),
    "onnx": onnx_models().map(lambda m: ("onnx", m.SerializeToString())),
    "onnx-mutated": mutated_onnx().map(lambda data: ("onnx", data)),
    "onnx-bytes": onnx_models().flatmap(lambda m: mutated_bytes(m.SerializeToString())).map(
        lambda data: ("onnx", data)),
}


@pytest.mark.parametrize("kind, path", harness.corpus(), ids=lambda v: getattr(v, "name", v))
def test_corpus(kind, path):
    problem = harness.outcome(kind, path.read_bytes())
    assert problem is None, f"{path.name}:\n{problem}"


@pytest.mark.parametrize("name", INPUTS)
def test_fuzz(name):
    @DEFAULT
    @given(INPUTS[name])
    def check(case):
        problem = harness.outcome(*case)
        assert problem is None, problem
    check()


def test_valid_inputs_mostly_load():
    """The generators make valid inputs (else the mutations would only probe the first check)."""
    loaded = collections.Counter()

    @DEFAULT
    @given(st.one_of(INPUTS["config"], INPUTS["onnx"]))
    def count(case):
        kind, data = case
        try:
            harness.attempt(kind, data)
            loaded[kind, True] += 1
        except pyconv.ModelError:
            loaded[kind, False] += 1
    count()
    for kind in ("config", "onnx"):
        assert loaded[kind, True] >= 2 * loaded[kind, False], loaded


def test_worker_reports_crashes_and_hangs():
    worker = harness.Worker(timeout=3)
    try:
        assert worker.check("config-bytes", b"{}") is None
        os.kill(worker._process.pid, signal.SIGKILL)
        assert "crashed" in worker.check("config-bytes", b"{}")
        os.kill(worker._process.pid, signal.SIGSTOP)
        assert "no answer after 3 s" in worker.check("config-bytes", b"{}")
        assert worker.check("config-bytes", b"{}") is None  # a fresh process took over
    finally:
        worker.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", INPUTS)
def test_campaign(name):
    worker = harness.Worker()
    failures: dict[str, str] = {}
    count = 0

    @CAMPAIGN
    @given(INPUTS[name])
    def run(case):
        nonlocal count
        count += 1
        problem = worker.check(*case)
        if problem is not None:
            # One entry per distinct failure: the exception and where it was raised.
            key = "\n".join(problem.strip().splitlines()[-3:])
            if key not in failures:
                failures[key] = f"{harness.save(*case).name}:\n{problem}"
    try:
        run()
    finally:
        worker.close()
    print(f"campaign {name}: {count} inputs, {len(failures)} distinct failure(s)")
    assert not failures, f"{len(failures)} distinct failure(s):\n\n" + "\n\n".join(failures.values())
