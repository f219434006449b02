"""Options, parametrisation and fixtures shared by the benchmarks.

Options (after ``pytest benchmarks/``):
  --threads 1,2                       thread counts; every engine of a case runs with the same one
  --peers numpy,numpy_avx2,...        peer engines to compare against ("none" for pyconv alone); a peer
                                      that is not installed is left out and reported in the header
  --levels avx512,avx2,scalar         pyconv's instruction-set levels, one row each (default: every level
                                      this CPU runs; the model benchmarks leave scalar out unless named)
  --case-seconds 3.0                  time budget of one case (all its engines); sets the rounds, at least
                                      pytest-benchmark's --benchmark-min-rounds

A benchmark module lists its cases in ``CASES`` (:class:`harness.Case`); each case is crossed with the
thread counts and levels here, so ids read ``<strategy>-<layer>_<shape>-<level>-t<threads>``. A module
whose ``SCALAR_BY_DEFAULT`` is False runs the scalar level only when ``--levels`` names it.
"""
from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache

import pytest

import harness


def pytest_addoption(parser):
    group = parser.getgroup("pyconv benchmarks")
    group.addoption("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    group.addoption("--peers", default=",".join(harness.PEER_NAMES),
                    help=f"comma-separated peer engines, or none (default {','.join(harness.PEER_NAMES)}); "
                         "numpy_avx2 and openvino_avx2 run in the rows of the avx2 level only")
    group.addoption("--levels", default="",
                    help="comma-separated pyconv instruction-set levels (default: every level this CPU runs; "
                         "the model benchmarks leave scalar out unless it is named)")
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


def module_levels(config, module) -> list:
    """The levels ``module`` runs at, best first (``--levels``, or its default)."""
    try:
        return harness.chosen_levels(config.getoption("levels"), getattr(module, "SCALAR_BY_DEFAULT", True))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    except ImportError:  # pyconv is not built: every benchmark is skipped (fixture pyconv_module)
        return []


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        metafunc.parametrize(("case", "level", "threads"), harness.level_params(
            metafunc.module.CASES, lambda c: c.id, _thread_counts(metafunc.config),
            module_levels(metafunc.config, metafunc.module)))


def cpu_model() -> dict:
    """lscpu's model name, family and model (from /proc/cpuinfo where lscpu is missing)."""
    keys = {"Model name": "model_name", "CPU family": "family", "Model": "model",
            "model name": "model_name", "cpu family": "family", "model": "model"}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True,
                              env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.CalledProcessError):
        try:
            with open("/proc/cpuinfo") as f:
                text = f.read().split("\n\n")[0]
        except OSError:
            return {"model_name": platform.processor() or "?"}
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys and keys[key.strip()] not in found:
            found[keys[key.strip()]] = value.strip()
    return found


def isa_summary() -> dict:
    """pyconv's levels: the one in use, the best this CPU runs, those it runs, those built."""
    import pyconv.isa

    return {"active": pyconv.isa.active(), "detected": pyconv.isa.detected(),
            "supported": list(pyconv.isa.supported()), "built": list(pyconv.isa.built())}


def pytest_report_header(config):
    peers = harness.available_peers(_requested_peers(config))
    cpu = cpu_model()
    lines = [f"pyconv benchmarks: threads {config.getoption('threads')}, "
             f"{config.getoption('case_seconds')} s per case",
             f"cpu: {cpu.get('model_name', '?')} (family {cpu.get('family', '?')}, model {cpu.get('model', '?')})",
             "peers: " + (", ".join(f"{k} {v}" for k, v in peers.items()) or "none")]
    try:
        isa = isa_summary()
    except ImportError:
        return lines
    lines.append(f"pyconv isa: active {isa['active']}, detected {isa['detected']}, this CPU runs "
                 f"{', '.join(isa['supported'])} (built {', '.join(isa['built'])}); levels run: "
                 f"{','.join(module_levels(config, None))} (model benchmarks "
                 f"{','.join(harness.chosen_levels(config.getoption('levels'), False))}), "
                 f"reference {harness.reference_level(module_levels(config, None))}")
    policy = os.environ.get("OMP_WAIT_POLICY", "").lower()
    if policy == "active":
        lines.append("WARNING: OMP_WAIT_POLICY=active: libgomp workers never sleep, so every step waits "
                     f"the full settle cap ({harness.SETTLE_CAP_S} s) and still runs beside spinning threads")
    elif policy == "passive":
        lines.append("note: OMP_WAIT_POLICY=passive: pyconv and torch pay a thread wake-up in every "
                     "parallel region (not their default behaviour)")
    return lines


@lru_cache(maxsize=None)
def machine_peak(threads: tuple) -> dict:
    """The machine's measured roofs (``pyconv.machine``) at these thread counts, once per session."""
    import pyconv.machine

    return pyconv.machine.measure(threads).as_dict()


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["pyconv_benchmarks"] = {
        "threads": _thread_counts(config),
        "peers": harness.available_peers(_requested_peers(config)),
        "case_seconds": config.getoption("case_seconds"),
        "env": _benchmark_env(),
        "python": platform.python_version(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "loadavg": os.getloadavg(),
        "cpu_model": cpu_model(),
    }
    try:
        import pyconv
    except ImportError:
        return
    machine_info["pyconv_benchmarks"]["pyconv"] = getattr(pyconv, "__version__", "unknown")
    machine_info["pyconv_benchmarks"]["isa"] = isa_summary()
    machine_info["pyconv_benchmarks"]["peak"] = machine_peak(tuple(_thread_counts(config)))


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
def reference(pytestconfig, request):
    """The level timed beside the other levels' rows of the requesting module (None: one level only)."""
    return harness.reference_level(module_levels(pytestconfig, request.module))


@pytest.fixture
def measure(benchmark, pytestconfig, peer_names, reference):
    """``measure(case, level, threads, peers, extra=())``: run one case at pyconv's ``level`` against
    those of ``peers`` installed, and pyconv at the reference level when ``level`` is another."""
    seconds = pytestconfig.getoption("case_seconds")
    min_rounds = pytestconfig.getoption("benchmark_min_rounds")

    def run(case, level, threads, peers, extra=()):
        chosen = [p for p in peers if p in peer_names]
        harness.measure(benchmark, case, threads, chosen, seconds, min_rounds, extra, level, reference)

    return run
