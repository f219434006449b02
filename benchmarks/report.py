"""Summarise a pytest-benchmark JSON of the pyconv benchmarks as Markdown tables, with target verdicts.

    pytest benchmarks/ --benchmark-only --benchmark-json=out.json
    python benchmarks/report.py out.json [--threads 2]

One table per benchmark module: layer, threads, pyconv's strategy, every engine's median (ms), pyconv's
GFLOP/s (2 x direct MACs / median), pyconv's speed relative to each peer (peer median / pyconv median:
above 1 means pyconv is faster) and PASS/FAIL against the issue's targets, which are judged at
``TARGET_THREADS`` only. All numbers of one row come from the same run, interleaved (see README.md).
``--stat min`` uses each engine's fastest timed call instead of the median: on a machine shared with other
work the minimum is the less disturbed estimate (say so when quoting it). A verdict or phase marked
"(noisy)" comes from a row where some engine's median is over ``NOISY_SPREAD`` times its minimum.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

TARGET_THREADS = 2
POINTWISE_VS_NUMPY = 0.90      # pointwise >= 90 % of numpy matmul GFLOP/s, MobileNet v1 shapes
DEPTHWISE_GFLOPS = 30.0        # depthwise 3x3 s1/s2 GFLOP/s, MobileNet v1 shapes
STANDARD_GFLOPS = 150.0        # effective GFLOP/s of strategy auto at 3x3 64 -> 64, 56x56
STANDARD_TARGET_LAYER = "std_3x3"
VS_ONNXRUNTIME = 1.0           # every MobileNet v1 / Xception row (pyconv's auto path) no slower than ORT
NOISY_SPREAD = 1.5             # a row whose median exceeds its min by this factor (any engine) is marked noisy
NETWORKS = ("mobilenet_v1", "xception")
MODULE_ORDER = ("pointwise", "depthwise", "standard", "group", "models", "onnx")
PEER_ORDER = ("pyconv_g1", "numpy", "onnxruntime", "torch")


def _checks(info: dict, gflops: float, speedup: dict) -> list:
    """The (description, passed) target checks that apply to one kernel benchmark."""
    if info.get("threads") != TARGET_THREADS:
        return []
    module, network = info.get("module"), info.get("network")
    auto = info.get("strategy_requested", "auto") == "auto"
    checks = []
    if module == "pointwise" and network == "mobilenet_v1" and "numpy" in speedup:
        checks.append((f"numpy x{speedup['numpy']:.2f} >= {POINTWISE_VS_NUMPY}",
                       speedup["numpy"] >= POINTWISE_VS_NUMPY))
    if module == "depthwise" and network == "mobilenet_v1":
        checks.append((f"{gflops:.0f} >= {DEPTHWISE_GFLOPS:.0f} GFLOP/s", gflops >= DEPTHWISE_GFLOPS))
    if module == "standard" and auto and info.get("layer") == STANDARD_TARGET_LAYER:
        checks.append((f"{gflops:.0f} >= {STANDARD_GFLOPS:.0f} GFLOP/s", gflops >= STANDARD_GFLOPS))
    if module == "group" and "pyconv_g1" in speedup:
        checks.append((f"x{speedup['pyconv_g1']:.2f} vs G=1 > 1", speedup["pyconv_g1"] > 1.0))
    if network in NETWORKS and auto and "onnxruntime" in speedup:
        checks.append((f"ort x{speedup['onnxruntime']:.2f} >= {VS_ONNXRUNTIME}",
                       speedup["onnxruntime"] >= VS_ONNXRUNTIME))
    return checks


def _noisy(info: dict) -> bool:
    return any(t > NOISY_SPREAD * info["min_s"][name] for name, t in info["median_s"].items())


def _verdict(checks: list, noisy: bool) -> str:
    if not checks:
        return "-"
    failed = [text for text, ok in checks if not ok]
    verdict = "FAIL: " + "; ".join(failed) if failed else "PASS"
    return verdict + " (noisy)" if noisy else verdict


def _shape(info: dict) -> str:
    s = info["shape"]
    text = f"{s['H']}x{s['W']}x{s['C_in']}->{s['C_out']} k{s['kernel']}"
    if s["stride"] != 1:
        text += f" s{s['stride']}"
    if s["groups"] != 1:
        text += f" g{s['groups']}"
    return text


def _table(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _speedup(times: dict) -> dict:
    return {name: t / times["pyconv"] for name, t in times.items() if name != "pyconv"}


def kernel_table(benchmarks: list, stat: str) -> tuple:
    """The Markdown table of one kernel module and its (description, passed) checks."""
    peers = [p for p in PEER_ORDER if any(p in b["extra_info"]["median_s"] for b in benchmarks)]
    header = (["layer", "shape", "t", "strategy", "pyconv ms"] + [f"{p} ms" for p in peers]
              + ["GFLOP/s"] + [f"x {p}" for p in peers] + ["target"])
    rows, all_checks = [], []
    for bench in benchmarks:
        info = bench["extra_info"]
        times = info[f"{stat}_s"]
        speedup = _speedup(times)
        gflops = 2 * info["macs"] / times["pyconv"] / 1e9
        checks = _checks(info, gflops, speedup)
        all_checks += checks
        strategy = info.get("strategy", "?")
        if info.get("strategy_requested", "auto") == "auto" and info.get("operator") == "conv2d":
            strategy = f"auto:{strategy}"
        rows.append([info["layer"], _shape(info), info["threads"], strategy, f"{1e3 * times['pyconv']:.3f}"]
                    + [f"{1e3 * times[p]:.3f}" if p in times else "n/a" for p in peers]
                    + [f"{gflops:.1f}"]
                    + [f"{speedup[p]:.2f}" if p in speedup else "n/a" for p in peers]
                    + [_verdict(checks, _noisy(info))])
    return _table(header, rows), all_checks


def models_table(benchmarks: list, stat: str) -> str:
    """The Markdown table of whole-network benchmarks (first run after load, and warm runs); for the
    first-run phase, also each engine's median load time."""
    engines = [e for e in ("pyconv", "onnxruntime", "torch")
               if any(e in b["extra_info"]["median_s"] for b in benchmarks)]
    loaded = [e for e in engines if any(e in b["extra_info"].get("load_s", {}) for b in benchmarks)]
    header = (["model", "t", "phase"] + [f"{e} ms" for e in engines] + [f"x {e}" for e in engines[1:]]
              + [f"{e} load ms" for e in loaded])
    rows = []
    for bench in benchmarks:
        info = bench["extra_info"]
        times, loads = info[f"{stat}_s"], info.get("load_s", {})
        speedup = _speedup(times)
        phase = info["phase"] + (" (noisy)" if _noisy(info) else "")
        rows.append([info["model"], info["threads"], phase]
                    + [f"{1e3 * times[e]:.2f}" if e in times else "n/a" for e in engines]
                    + [f"{speedup[e]:.2f}" if e in speedup else "n/a" for e in engines[1:]]
                    + [f"{1e3 * loads[e]:.0f}" if e in loads else "-" for e in loaded])
    return _table(header, rows)


def render(data: dict, threads: int = None, stat: str = "median") -> str:
    by_module = defaultdict(list)
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        if "median_s" in info and (threads is None or info.get("threads") == threads):
            by_module[info["module"]].append(bench)
    modules = sorted(by_module, key=lambda m: MODULE_ORDER.index(m) if m in MODULE_ORDER else len(MODULE_ORDER))
    out, checks = [], []
    for module in modules:
        out.append(f"### {module}\n")
        if "model" in by_module[module][0]["extra_info"]:  # whole networks: bench_models, bench_onnx
            out.append(models_table(by_module[module], stat))
        else:
            table, module_checks = kernel_table(by_module[module], stat)
            checks += module_checks
            out.append(table)
        out.append("")
    machine = data.get("machine_info", {})
    run = machine.get("pyconv_benchmarks", {})
    loads = [b["extra_info"].get("loadavg_1m", 0.0) for bs in by_module.values() for b in bs]
    passed = sum(ok for _, ok in checks)
    verdicts = f"targets at {TARGET_THREADS} threads: {passed}/{len(checks)} PASS" if checks else "no targets"
    out.append(f"Statistic: {stat} per engine; {verdicts}. "
               f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, {run.get('cores_usable', '?')} cores; "
               f"peers {run.get('peers', {})}; load average (1 min) during the run up to "
               f"{max(loads, default=0.0):.1f}; {data.get('datetime', '')}.")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="file written by pytest --benchmark-json")
    parser.add_argument("--threads", type=int, help="show only this thread count")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="per-engine statistic the table and verdicts use (default median)")
    args = parser.parse_args(argv)
    with open(args.json) as f:
        print(render(json.load(f), args.threads, args.stat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
