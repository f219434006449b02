"""Options, parametrisation and fixtures shared by the benchmarks.

Options (after ``pytest benchmarks/``):
  --threads 1,2                       thread counts; every engine of a case runs with the same one
  --peers numpy,onnxruntime,torch     peer engines to compare against ("none" for pyconv alone); a peer
                                      that is not installed is left out and reported in the header
  --case-seconds 3.0                  time budget of one case (all its engines); sets the rounds, at least
                                      pytest-benchmark's --benchmark-min-rounds

A benchmark module lists its cases in ``CASES`` (:class:`harness.Case`); each case is crossed with the
thread counts here, so ids read ``<strategy>-<layer>_<shape>-t<threads>``.
"""
from __future__ import annotations

import os
import platform

import pytest

import harness


def pytest_addoption(parser):
    group = parser.getgroup("pyconv benchmarks")
    group.addoption("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    group.addoption("--peers", default=",".join(harness.PEER_NAMES),
                    help="comma-separated peer engines, or none (default numpy,onnxruntime,torch)")
    group.addoption("--case-seconds", type=float, default=3.0,
                    help="time budget of one benchmark case, all engines (default 3.0)")


def _thread_counts(config) -> list:
    counts = [int(t) for t in config.getoption("threads").split(",") if t.strip()]
    if not counts or min(counts) < 1:
        raise pytest.UsageError(f"--threads wants positive ints, got {config.getoption('threads')!r}")
    return counts


def _requested_peers(config) -> list:
    names = [p.strip() for p in config.getoption("peers").split(",") if p.strip() and p.strip() != "none"]
    unknown = set(names) - set(harness.PEER_NAMES)
    if unknown:
        raise pytest.UsageError(f"--peers: unknown {sorted(unknown)}; known: {', '.join(harness.PEER_NAMES)}")
    return names


def _benchmark_env() -> dict:
    """The environment variables that change how the engines' thread pools behave."""
    prefixes = ("OMP_", "GOMP_", "OPENBLAS_", "MKL_", "KMP_")
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(prefixes)}


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        pairs = [(case, t) for case in metafunc.module.CASES for t in _thread_counts(metafunc.config)]
        metafunc.parametrize(("case", "threads"), pairs, ids=[f"{c.id}-t{t}" for c, t in pairs])


def pytest_report_header(config):
    peers = harness.available_peers(_requested_peers(config))
    lines = [f"pyconv benchmarks: threads {config.getoption('threads')}, "
             f"{config.getoption('case_seconds')} s per case",
             "peers: " + (", ".join(f"{k} {v}" for k, v in peers.items()) or "none")]
    policy = os.environ.get("OMP_WAIT_POLICY", "").lower()
    if policy == "active":
        lines.append("WARNING: OMP_WAIT_POLICY=active: libgomp workers never sleep, so every step waits "
                     f"the full settle cap ({harness.SETTLE_CAP_S} s) and still runs beside spinning threads")
    elif policy == "passive":
        lines.append("note: OMP_WAIT_POLICY=passive: pyconv and torch pay a thread wake-up in every "
                     "parallel region (not their default behaviour)")
    return lines


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["pyconv_benchmarks"] = {
        "threads": _thread_counts(config),
        "peers": harness.available_peers(_requested_peers(config)),
        "case_seconds": config.getoption("case_seconds"),
        "env": _benchmark_env(),
        "python": platform.python_version(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "loadavg": os.getloadavg(),
    }
    try:
        import pyconv
    except ImportError:
        return
    machine_info["pyconv_benchmarks"]["pyconv"] = getattr(pyconv, "__version__", "unknown")


@pytest.fixture(scope="session", autouse=True)
def pyconv_module():
    """Skips everything when pyconv is not built (``pip install -e . --no-build-isolation``)."""
    return pytest.importorskip("pyconv")


@pytest.fixture(scope="session")
def peer_names(pytestconfig) -> list:
    """The requested peers that are installed."""
    found = harness.available_peers(_requested_peers(pytestconfig))
    return [name for name, version in found.items() if not version.startswith("missing")]


@pytest.fixture
def measure(benchmark, pytestconfig, peer_names):
    """``measure(case, threads, peers, extra=())``: run one case against those of ``peers`` installed."""
    seconds = pytestconfig.getoption("case_seconds")
    min_rounds = pytestconfig.getoption("benchmark_min_rounds")

    def run(case, threads, peers, extra=()):
        chosen = [p for p in peers if p in peer_names]
        harness.measure(benchmark, case, threads, chosen, seconds, min_rounds, extra)

    return run
