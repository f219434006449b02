"""Summarise a pytest-benchmark JSON of the pyconv benchmarks as Markdown tables, with target verdicts.

    pytest benchmarks/ --benchmark-only --benchmark-json=out.json
    python benchmarks/report.py out.json [--threads 2] [--stat min] [--check]

A header names the CPU (lscpu's model name, family, model), pyconv's instruction-set levels (active,
detected, run) and the kernels the peers loaded (numpy's OpenBLAS kernel, native and held to AVX2;
OpenVINO's oneDNN kernels, XNNPACK's ops). Then one table per benchmark module: one row per case, level and thread
count, with every engine's median (ms), pyconv's GFLOP/s (2 x direct MACs / median), pyconv's speed
relative to each peer (peer median / pyconv median: above 1 means pyconv is faster) and the verdicts
against the targets (``pyconv.dashboard.targets``), judged at ``TARGET_THREADS`` only: PASS, FAIL,
INCONCLUSIVE (a noisy row: some engine's median over ``NOISY_SPREAD`` times its minimum) or SKIPPED (the
peer a target compares with was not measured); the ones that did not pass are listed at the end, and
``--check`` exits 1 when one FAILed. Last, the levels side by side: per case and thread count,
each level's median (and GFLOP/s), each level's speed relative to the reference level (same rounds
where the row timed ``pyconv_<reference>`` beside it, otherwise from the reference level's own row,
marked ``*``) and relative to the peers held to its instruction set (``numpy_avx2``, ``openvino_avx2``).
All numbers of one row come from the same run, interleaved (see README.md). ``--stat min`` uses each
engine's fastest timed call instead of the median: on a machine shared with other work the minimum is
the less disturbed estimate (say so when quoting it). A model phase marked "(noisy)" comes from a noisy
row.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict

from pyconv.dashboard.targets import FAIL, PASS, STATUSES, TARGET_THREADS, noisy, speedups, target_checks

MODULE_ORDER = ("pointwise", "depthwise", "standard", "group", "xnnpack", "models", "onnx")
LEVEL_ORDER = ("avx512", "avx2", "neon", "scalar")
PEER_ORDER = ("pyconv_g1", "numpy", "numpy_avx2", "onnxruntime", "torch", "openvino", "openvino_avx2",
              "xnnpack")
# The peers held to one level's instruction set (harness.HELD_PEERS), shown beside that level's rows.
HELD_PEERS = {"avx2": ("numpy_avx2", "openvino_avx2")}


def _level(info: dict) -> str:
    return info.get("level") or "-"


def _verdict(checks: list) -> str:
    """One row's verdicts: PASS, or each check that did not pass with its status and what was found."""
    if not checks:
        return "-"
    if all(c.status == PASS for c in checks):
        return PASS
    return "; ".join(f"{c.status}: {c.target} ({c.detail})" for c in checks if c.status != PASS)


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


def _peers(benchmarks: list) -> list:
    """The engines other than pyconv in these benchmarks: pyconv at reference levels first, then PEER_ORDER."""
    names = {name for b in benchmarks for name in b["extra_info"]["median_s"] if name != "pyconv"}
    references = sorted((n for n in names if n.startswith("pyconv_") and n != "pyconv_g1"),
                        key=lambda n: LEVEL_ORDER.index(n[7:]) if n[7:] in LEVEL_ORDER else len(LEVEL_ORDER))
    return references + [p for p in PEER_ORDER if p in names] + sorted(names - set(references) - set(PEER_ORDER))


def _ms(times: dict, name: str, digits: int = 3) -> str:
    return f"{1e3 * times[name]:.{digits}f}" if name in times else "n/a"


def _ratio(ratios: dict, name: str) -> str:
    return f"{ratios[name]:.2f}" if name in ratios else "n/a"


def kernel_table(benchmarks: list, stat: str) -> tuple:
    """The Markdown table of one kernel module and its checks, as (layer, level, targets.Check)."""
    peers = _peers(benchmarks)
    rated = [p for p in ("numpy", "numpy_avx2") if p in peers]  # GEMM peers: their GFLOP/s is the target's
    header = (["layer", "shape", "t", "level", "strategy", "pyconv ms"] + [f"{p} ms" for p in peers]
              + ["GFLOP/s"] + [f"{p} GFLOP/s" for p in rated] + [f"x {p}" for p in peers] + ["target"])
    rows, all_checks = [], []
    for bench in benchmarks:
        info = bench["extra_info"]
        times = info[f"{stat}_s"]
        speedup = speedups(times)
        gflops = 2 * info["macs"] / times["pyconv"] / 1e9
        checks = target_checks(info, stat)
        all_checks += [(info["layer"], _level(info), c) for c in checks]
        strategy = info.get("strategy", "?")
        if info.get("strategy_requested", "auto") == "auto" and info.get("operator") == "conv2d":
            strategy = f"auto:{strategy}"
        rows.append([info["layer"], _shape(info), info["threads"], _level(info), strategy, _ms(times, "pyconv")]
                    + [_ms(times, p) for p in peers]
                    + [f"{gflops:.1f}"]
                    + [f"{2 * info['macs'] / times[p] / 1e9:.1f}" if p in times else "n/a" for p in rated]
                    + [_ratio(speedup, p) for p in peers]
                    + [_verdict(checks)])
    return _table(header, rows), all_checks


def models_table(benchmarks: list, stat: str) -> str:
    """The Markdown table of whole-network benchmarks (first run after load, and warm runs); for the
    first-run phase, also each engine's median load time."""
    peers = _peers(benchmarks)
    engines = ["pyconv"] + peers
    loaded = [e for e in engines if any(e in b["extra_info"].get("load_s", {}) for b in benchmarks)]
    header = (["model", "t", "level", "phase"] + [f"{e} ms" for e in engines] + [f"x {e}" for e in peers]
              + [f"{e} load ms" for e in loaded])
    rows = []
    for bench in benchmarks:
        info = bench["extra_info"]
        times, loads = info[f"{stat}_s"], info.get("load_s", {})
        speedup = speedups(times)
        phase = info["phase"] + (" (noisy)" if noisy(info) else "")
        rows.append([info["model"], info["threads"], _level(info), phase]
                    + [_ms(times, e, 2) for e in engines]
                    + [_ratio(speedup, e) for e in peers]
                    + [f"{1e3 * loads[e]:.0f}" if e in loads else "-" for e in loaded])
    return _table(header, rows)


def _case_key(info: dict) -> tuple:
    """What a row measures but for its level: the same key at every level of one run."""
    if "model" in info:
        return info["module"], f"{info['model']} {info['phase']}", info["threads"]
    case = info["layer"]
    if info.get("module") == "standard":
        case = f"{info.get('strategy_requested', 'auto')} {case}"
    return info["module"], case, info["threads"]


def levels_table(benchmarks: list, stat: str) -> str:
    """Each case's levels side by side: median ms (and GFLOP/s for layers) per level, every level's speed
    relative to the reference level and to the peers held to its instruction set."""
    by_case = defaultdict(dict)
    for bench in benchmarks:
        info = bench["extra_info"]
        by_case[_case_key(info)][_level(info)] = info
    levels = sorted({lv for rows in by_case.values() for lv in rows},
                    key=lambda lv: LEVEL_ORDER.index(lv) if lv in LEVEL_ORDER else len(LEVEL_ORDER))
    references = {info.get("reference_level") for rows in by_case.values() for info in rows.values()} - {None}
    reference = min(references, key=LEVEL_ORDER.index) if references else None
    held = {lv: [p for p in HELD_PEERS.get(lv, ())
                 if any(p in rows.get(lv, {}).get("median_s", {}) for rows in by_case.values())] for lv in levels}
    rated = any("macs" in info for rows in by_case.values() for info in rows.values())  # layers, not models
    header = ["module", "case", "t"]
    for lv in levels:
        header += [f"{lv} ms"] + [f"{lv} GFLOP/s"] * rated
        if reference and lv != reference:
            header.append(f"{lv} vs {reference}")
        header += [f"{lv} vs {p}" for p in held[lv]]
    rows = []
    for (module, case, threads), at in by_case.items():
        row = [module, case, threads]
        for lv in levels:
            info = at.get(lv)
            times = info[f"{stat}_s"] if info else {}
            row.append(_ms(times, "pyconv"))
            if rated:
                row.append(f"{2 * info['macs'] / times['pyconv'] / 1e9:.1f}" if info and "macs" in info else "-")
            if reference and lv != reference:
                same_rounds = f"pyconv_{reference}"
                if same_rounds in times:
                    row.append(f"{times[same_rounds] / times['pyconv']:.2f}")
                elif info and reference in at:
                    row.append(f"{at[reference][f'{stat}_s']['pyconv'] / times['pyconv']:.2f}*")
                else:
                    row.append("n/a")
            row += [_ratio(speedups(times), p) if times else "n/a" for p in held[lv]]
        rows.append(row)
    return _table(header, rows)


def _machine_lines(data: dict, benchmarks: list) -> list:
    """The header: CPU, pyconv's levels, the peers' versions and the kernels they loaded."""
    machine = data.get("machine_info", {})
    run = machine.get("pyconv_benchmarks", {})
    cpu = run.get("cpu_model") or {"model_name": machine.get("cpu", {}).get("brand_raw", "?")}
    isa = run.get("isa", {})
    levels = sorted({_level(b["extra_info"]) for b in benchmarks},
                    key=lambda lv: LEVEL_ORDER.index(lv) if lv in LEVEL_ORDER else len(LEVEL_ORDER))
    references = sorted({b["extra_info"].get("reference_level") for b in benchmarks} - {None})
    threads = sorted({b["extra_info"].get("threads") for b in benchmarks} - {None})
    lines = [f"CPU: {cpu.get('model_name', '?')} (family {cpu.get('family', '?')}, model {cpu.get('model', '?')}), "
             f"{run.get('cores_usable', '?')} cores usable. "
             + (f"pyconv isa: active {isa['active']}, detected {isa['detected']}, this CPU runs "
                f"{', '.join(isa['supported'])} (built {', '.join(isa['built'])}). " if isa else "")
             + f"Levels in this file: {', '.join(levels)}"
             + (f" (reference {', '.join(references)})" if references else "")
             + f"; thread counts: {', '.join(map(str, threads))}."]
    peers = run.get("peers", {})
    if peers:
        lines.append("Peers: " + "; ".join(f"{name} {version}" for name, version in peers.items()) + ".")
    kernels = defaultdict(Counter)
    for bench in benchmarks:
        for name, info in bench["extra_info"].get("peer_info", {}).items():
            kernels[name].update(info.get("kernels", {}))
            kernels[name].update({k: 1 for k in info.get("blas", [])})
    if kernels:
        lines.append("Kernels the peers ran (most used first): " + "; ".join(
            f"{name}: {', '.join(k for k, _ in counts.most_common(6))}" for name, counts in kernels.items()
            if counts) + ".")
    not_held = sorted({k for b in benchmarks for k in b["extra_info"].get("peer_info", {})
                       .get("openvino_avx2", {}).get("not_held", [])})
    if not_held:
        lines.append(f"openvino_avx2 kernels ONEDNN_MAX_CPU_ISA=AVX2 does not hold: {', '.join(not_held)}.")
    return lines


def render(data: dict, threads: int = None, stat: str = "median") -> tuple:
    """The report's Markdown and its target checks, as (layer, level, targets.Check)."""
    by_module = defaultdict(list)
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        if "median_s" in info and (threads is None or info.get("threads") == threads):
            by_module[info["module"]].append(bench)
    modules = sorted(by_module, key=lambda m: MODULE_ORDER.index(m) if m in MODULE_ORDER else len(MODULE_ORDER))
    everything = [b for module in modules for b in by_module[module]]
    out = _machine_lines(data, everything) + [""]
    checks = []
    for module in modules:
        out.append(f"### {module}\n")
        if "model" in by_module[module][0]["extra_info"]:  # whole networks: bench_models, bench_onnx
            out.append(models_table(by_module[module], stat))
        else:
            table, module_checks = kernel_table(by_module[module], stat)
            checks += module_checks
            out.append(table)
        out.append("")
    if len({_level(b["extra_info"]) for b in everything}) > 1:
        out += ["### levels side by side\n", levels_table(everything, stat), ""]
    loads = [b["extra_info"].get("loadavg_1m", 0.0) for b in everything]
    statuses = Counter(c.status for _, _, c in checks)
    verdicts = (f"targets at {TARGET_THREADS} threads: " + ", ".join(f"{statuses[s]} {s}" for s in STATUSES)
                if checks else f"no targets (they are judged at {TARGET_THREADS} threads)")
    out.append(f"Statistic: {stat} per engine; {verdicts}. Load average (1 min) during the run up to "
               f"{max(loads, default=0.0):.1f}; {data.get('datetime', '')}.")
    not_passed = [f"- {c.status}: {layer} ({level}): {c.target} ({c.detail})" for layer, level, c in checks
                  if c.status != PASS]
    if not_passed:
        out += ["", "Targets not passed (a noisy row is INCONCLUSIVE, a missing peer SKIPPED):", *not_passed]
    return "\n".join(out), checks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="file written by pytest --benchmark-json")
    parser.add_argument("--threads", type=int, help="show only this thread count")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="per-engine statistic the table and verdicts use (default median)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a target FAILs (INCONCLUSIVE and SKIPPED checks are listed, not failed)")
    args = parser.parse_args(argv)
    with open(args.json) as f:
        text, checks = render(json.load(f), args.threads, args.stat)
    print(text)
    return 1 if args.check and any(c.status == FAIL for _, _, c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
