"""The performance targets of pyconv's kernel benchmarks (judged at ``TARGET_THREADS``) and the verdict
of one benchmark against them: PASS, FAIL, SKIPPED (the peer the target compares with was not measured)
or INCONCLUSIVE (the row is noisy: some engine's median is over ``NOISY_SPREAD`` times its minimum).

Read from a benchmark's ``extra_info`` (see benchmarks/README.md, "What each benchmark records"); used by
benchmarks/report.py and by the dashboard's gate."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

__all__ = ["Check", "PASS", "FAIL", "SKIPPED", "INCONCLUSIVE", "STATUSES", "TARGET_THREADS", "noisy", "speedups",
           "target_checks"]

TARGET_THREADS = 2
POINTWISE_VS_NUMPY = 0.90      # pointwise >= 90 % of numpy matmul GFLOP/s, MobileNet v1 shapes
DEPTHWISE_GFLOPS = 30.0        # depthwise 3x3 s1/s2 GFLOP/s, MobileNet v1 shapes
STANDARD_GFLOPS = 150.0        # effective GFLOP/s of strategy auto at 3x3 64 -> 64, 56x56
STANDARD_TARGET_LAYER = "std_3x3"
VS_ONNXRUNTIME = 1.0           # every network row (pyconv's auto path) no slower than ORT
GROUP_VS_XNNPACK = 1.1         # group sweep, 1 < G < C: at most this times TFLite XNNPACK's time, where it ran
NOISY_SPREAD = 1.5             # a row whose median exceeds its min by this factor (any engine) is noisy
NETWORKS = ("mobilenet_v1", "xception", "efficientnet_b0", "mobilenet_v3", "mixed_kernels", "shufflenet_v1")
# The numpy peer a pointwise row is judged against: at the avx2 level the one held to AVX2 (harness.HELD_PEERS);
# at the level this CPU runs best, numpy at its own best kernel.
HELD_NUMPY = {"avx2": "numpy_avx2"}

PASS, FAIL, SKIPPED, INCONCLUSIVE = "PASS", "FAIL", "SKIPPED", "INCONCLUSIVE"
STATUSES = (PASS, FAIL, INCONCLUSIVE, SKIPPED)


@dataclass(frozen=True)
class Check:
    """One target judged on one benchmark row: ``target`` says what is required, ``detail`` what was found."""

    target: str
    status: str
    detail: str


def noisy(info: dict) -> bool:
    """Whether some engine's median is over NOISY_SPREAD times its fastest call in this row."""
    return any(t > NOISY_SPREAD * info["min_s"][name] for name, t in info["median_s"].items() if name in info["min_s"])


def speedups(times: Dict[str, float]) -> Dict[str, float]:
    """pyconv's speed relative to each other engine: that engine's time over pyconv's (above 1: faster)."""
    return {name: t / times["pyconv"] for name, t in times.items() if name != "pyconv"}


def _against(target: str, peer: str, speedup: Dict[str, float], at_least: float, strict: bool = False) -> Check:
    if peer not in speedup:
        return Check(target, SKIPPED, f"{peer} was not measured in this run")
    ratio = speedup[peer]
    ok = ratio > at_least if strict else ratio >= at_least
    return Check(target, PASS if ok else FAIL, f"x{ratio:.2f} vs {peer}")


def _gflops(target: str, gflops: float, at_least: float) -> Check:
    return Check(target, PASS if gflops >= at_least else FAIL, f"{gflops:.0f} GFLOP/s")


def target_checks(info: dict, stat: str = "median") -> List[Check]:
    """The targets that apply to one kernel benchmark (none at other thread counts than TARGET_THREADS,
    none for whole models), judged with each engine's ``stat`` ("median" or "min")."""
    if info.get("threads") != TARGET_THREADS or "macs" not in info:
        return []
    times = info[f"{stat}_s"]
    speedup = speedups(times)
    gflops = 2 * info["macs"] / times["pyconv"] / 1e9
    module, network, level = info.get("module"), info.get("network"), info.get("level")
    auto = info.get("strategy_requested", "auto") == "auto"
    best = level is None or level == info.get("isa_detected")  # files from before the levels: judged
    numpy = HELD_NUMPY.get(level, "numpy" if best else None)
    checks = []
    if module == "pointwise" and network == "mobilenet_v1" and numpy:
        checks.append(_against(f"pointwise >= {POINTWISE_VS_NUMPY:.0%} of {numpy}", numpy, speedup,
                               POINTWISE_VS_NUMPY))
    groups = info.get("shape", {}).get("groups", 1)
    if module == "group" and level != "scalar" and groups > 1:
        checks.append(_against("group G faster than G = 1", "pyconv_g1", speedup, 1.0, strict=True))
    # Judged only where XNNPACK ran (bench_xnnpack.py, an optional module): elsewhere it is no omission.
    if network == "group" and level != "scalar" and 1 < groups < info["shape"]["C_in"] and "xnnpack" in speedup:
        checks.append(_against(f"group <= {GROUP_VS_XNNPACK}x xnnpack's time", "xnnpack", speedup,
                               1 / GROUP_VS_XNNPACK))
    if best:
        if module == "depthwise" and network == "mobilenet_v1":
            checks.append(_gflops(f"depthwise >= {DEPTHWISE_GFLOPS:.0f} GFLOP/s", gflops, DEPTHWISE_GFLOPS))
        if module == "standard" and auto and info.get("layer") == STANDARD_TARGET_LAYER:
            checks.append(_gflops(f"standard auto >= {STANDARD_GFLOPS:.0f} GFLOP/s", gflops, STANDARD_GFLOPS))
        if network in NETWORKS and auto:
            checks.append(_against("no slower than onnxruntime", "onnxruntime", speedup, VS_ONNXRUNTIME))
    if noisy(info):
        checks = [Check(c.target, INCONCLUSIVE, f"{c.detail}, {c.status} on a noisy row")
                  if c.status in (PASS, FAIL) else c for c in checks]
    return checks
