"""The dashboard's views, one function each: charts (Plotly figures) and tables built from benchmark runs.

Each view has a one-line reading guide. The single-run views (layers, trade-off, roofline, models) read
the newest run, in commit order, that holds their benchmarks; history and machine read every run.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .gate import IMPROVED, REGRESSED, GateResult, history
from .runs import Bench, Run
from .targets import FAIL, INCONCLUSIVE, SKIPPED

__all__ = ["Table", "View", "gate_view", "layers_view", "tradeoff_view", "roofline_view", "models_view",
           "history_view", "machine_view", "all_views"]

KERNEL_MODULES = ("pointwise", "depthwise", "standard", "group")
# pyconv's own series in blues; the peers in colours that are neither blue nor the red of a regression.
PEER_COLOURS = {"numpy": "#ff7f0e", "numpy_avx2": "#ffbb78", "onnxruntime": "#2ca02c", "torch": "#9467bd",
                "openvino": "#8c564b", "openvino_avx2": "#c49c94", "xnnpack": "#dbdb8d",
                "pyconv_g1": "#7f7f7f"}
PYCONV_COLOURS = ("#1f77b4", "#4a98c9", "#08519c", "#6baed6", "#2171b5", "#9ecae1", "#084594")
OTHER_COLOURS = ("#17becf", "#bcbd22", "#e377c2", "#393b79", "#637939", "#8c6d31")
# History lines: anything but the red of a regression and the green of an improvement.
HISTORY_COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                   "#393b79", "#637939", "#8c6d31", "#7b4173")
REGRESSION_RED = "#d62728"
IMPROVEMENT_GREEN = "#2ca02c"
FLOAT_BYTES = 4


@dataclass(frozen=True)
class Table:
    """A table under a view's charts; ``classes`` gives each row a CSS class (``bad`` rows are red); a table
    with a ``folded`` summary shows only that until opened."""

    header: List[str]
    rows: List[List[str]]
    classes: List[str] = field(default_factory=list)
    folded: str = ""


@dataclass(frozen=True)
class View:
    """One section of the page: an anchor, a title, a one-line reading guide, charts, tables, notes."""

    id: str
    title: str
    guide: str
    figures: List[go.Figure] = field(default_factory=list)
    tables: List[Table] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def _newest(runs: Sequence[Run], wanted) -> Optional[Run]:
    """The newest run holding a benchmark for which ``wanted(bench)`` holds."""
    return next((run for run in reversed(runs) if any(wanted(b) for b in run.benchmarks)), None)


def _is_kernel(bench: Bench) -> bool:
    return "macs" in bench.info and "shape" in bench.info


def _is_model(bench: Bench) -> bool:
    return "model" in bench.info


def _colour(name: str, palette: Dict[str, str]) -> str:
    if name not in palette:
        pyconv = name.startswith("pyconv") and name not in PEER_COLOURS
        pool = PYCONV_COLOURS if pyconv else OTHER_COLOURS
        used = sum(1 for n in palette if (n.startswith("pyconv") and n not in PEER_COLOURS) == pyconv)
        palette[name] = PEER_COLOURS.get(name) or pool[used % len(pool)]
    return palette[name]


def strategy_label(info: dict) -> str:
    """pyconv's series name for one kernel row: the strategy requested and, for auto, what it resolved to."""
    requested, resolved = info.get("strategy_requested", "auto"), info.get("strategy", "?")
    if info.get("operator") == "conv2d" and requested == "auto":
        return f"pyconv auto:{resolved}"
    return f"pyconv {requested if requested != 'auto' else resolved}"


def layer_label(info: dict) -> str:
    s = info["shape"]
    text = f"{info['layer']} {s['H']}x{s['W']}x{s['C_in']}->{s['C_out']} k{s['kernel']}"
    return text + (f"s{s['stride']}" if s["stride"] != 1 else "") + (f"g{s['groups']}" if s["groups"] != 1 else "")


def _gflops(info: dict, engine: str) -> float:
    by_engine = info.get("gflops_by_engine", {})
    return by_engine[engine] if engine in by_engine else 2 * info["macs"] / info["median_s"][engine] / 1e9


def _layer_series(benches: Iterable[Bench], levels: int) -> Dict[str, Dict[str, tuple]]:
    """Series name -> layer label -> (median ms, GFLOP/s): pyconv per strategy (and level, when the run
    holds several), each peer from the first row of the layer that measured it."""
    series: Dict[str, Dict[str, tuple]] = defaultdict(dict)
    for bench in benches:
        info, layer = bench.info, layer_label(bench.info)
        for engine, seconds in info["median_s"].items():
            name = strategy_label(info) + (f" {bench.level}" if levels > 1 else "") if engine == "pyconv" else engine
            series[name].setdefault(layer, (1e3 * seconds, _gflops(info, engine)))
    return series


def layers_view(runs: Sequence[Run]) -> View:
    """Per layer shape: every strategy's and every peer's latency and GFLOP/s, one chart per module,
    one column per thread count."""
    guide = ("Per layer: median latency (top, log scale, lower is better) and GFLOP/s (bottom, 2 x direct MACs "
             "/ median, higher is better) of each pyconv strategy (blues) and of the peers timed in the same rounds.")
    run = _newest(runs, _is_kernel)
    if run is None:
        return View("layers", "Layers", guide, notes=["No kernel benchmarks in these runs."])
    figures = []
    benches = [b for b in run.benchmarks if _is_kernel(b)]
    modules = sorted({b.module for b in benches}, key=lambda m: (KERNEL_MODULES + (m,)).index(m))
    levels = len({b.level for b in benches})
    for module in modules:
        rows = [b for b in benches if b.module == module]
        threads = sorted({b.threads for b in rows})
        fig = make_subplots(rows=2, cols=len(threads), shared_xaxes=True, vertical_spacing=0.06,
                            column_titles=[f"{t} thread(s)" for t in threads])
        palette: Dict[str, str] = {}
        for col, t in enumerate(threads, 1):
            for name, points in _layer_series([b for b in rows if b.threads == t], levels).items():
                layers = list(points)
                common = dict(name=name, legendgroup=name, showlegend=col == 1, marker_color=_colour(name, palette))
                fig.add_trace(go.Bar(x=layers, y=[points[k][0] for k in layers], **common,
                                     hovertemplate="%{x}<br>" + name + ": %{y:.4g} ms<extra></extra>"), 1, col)
                fig.add_trace(go.Bar(x=layers, y=[points[k][1] for k in layers], **{**common, "showlegend": False},
                                     hovertemplate="%{x}<br>" + name + ": %{y:.1f} GFLOP/s<extra></extra>"), 2, col)
            fig.update_yaxes(type="log", title_text="median ms" if col == 1 else None, row=1, col=col)
            fig.update_yaxes(title_text="GFLOP/s" if col == 1 else None, row=2, col=col)
        fig.update_layout(title=f"{module} ({run.label})", barmode="group", height=620)
        figures.append(fig)
    return View("layers", "Layers", guide, figures)


def _tradeoff_rows(run: Run) -> List[dict]:
    """The group sweep's variants at its shape (standard, each G, depthwise) and depthwise separable."""
    group = [b for b in run.benchmarks if b.module == "group" and _is_kernel(b)]
    by_g: Dict[int, Dict[int, Bench]] = defaultdict(dict)
    for b in group:
        by_g[b.info["shape"]["groups"]][b.threads] = b
    s = group[0].info["shape"]
    k, c_in, c_out, pixels = s["kernel"], s["C_in"], s["C_out"], s["OH"] * s["OW"]
    rows = []
    for g in sorted(by_g):
        name = "standard" if g == 1 else "depthwise" if g == c_in == c_out else f"group G = {g}"
        rows.append({"variant": name, "G": str(g), "params": k * k * (c_in // g) * (c_out // g) * g,
                     "macs": pixels * k * k * (c_in // g) * (c_out // g) * g,
                     "ms": {t: 1e3 * b.info["median_s"]["pyconv"] for t, b in by_g[g].items()}})
    if c_in in by_g and c_in == c_out:  # depthwise then a 1x1 c_in -> c_out: timed where a pointwise row matches
        pointwise = {b.threads: b for b in run.benchmarks if b.module == "pointwise" and _is_kernel(b)
                     and (b.info["shape"]["H"], b.info["shape"]["W"], b.info["shape"]["C_in"],
                          b.info["shape"]["C_out"], b.info["shape"]["stride"]) == (s["H"], s["W"], c_in, c_out, 1)}
        rows.append({"variant": "depthwise separable", "G": f"{c_in}, then 1x1",
                     "params": k * k * c_in + c_in * c_out, "macs": pixels * (k * k * c_in + c_in * c_out),
                     "ms": {t: 1e3 * (b.info["median_s"]["pyconv"] + pointwise[t].info["median_s"]["pyconv"])
                            for t, b in by_g[c_in].items() if t in pointwise}})
    return rows


def tradeoff_view(runs: Sequence[Run]) -> View:
    """The design document's trade-off at the group sweep's shape: standard, group G, depthwise and
    depthwise separable, with parameters, MACs and measured latency side by side."""
    guide = ("At one layer shape: parameters and MACs (K*K*(C_in/G)*(C_out/G)*G per output pixel) fall as 1/G; "
             "measured latency (lower is better) shows how much of that saving the kernels turn into time.")
    run = _newest(runs, lambda b: b.module == "group" and _is_kernel(b))
    if run is None:
        return View("tradeoff", "Trade-off", guide, notes=["No group-sweep benchmarks (bench_group.py) in these runs."])
    rows = _tradeoff_rows(run)
    s = next(b for b in run.benchmarks if b.module == "group").info["shape"]
    threads = sorted({t for r in rows for t in r["ms"]})
    names = [r["variant"] + ("" if r["variant"].startswith("group") else f" (G = {r['G']})") for r in rows]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("parameters", "MACs", "median latency (ms)"))
    fig.add_trace(go.Bar(x=names, y=[r["params"] for r in rows], name="parameters", marker_color="#7f7f7f"), 1, 1)
    fig.add_trace(go.Bar(x=names, y=[r["macs"] for r in rows], name="MACs", marker_color="#bcbd22"), 1, 2)
    palette: Dict[str, str] = {}
    for t in threads:
        name = f"pyconv {t} thread(s)"
        fig.add_trace(go.Bar(x=names, y=[r["ms"].get(t) for r in rows], name=name,
                             marker_color=_colour(name, palette)), 1, 3)
    for col in (1, 2, 3):
        fig.update_yaxes(type="log", row=1, col=col)
    fig.update_layout(title=f"3x3 {s['C_in']}->{s['C_out']} at {s['H']}x{s['W']} ({run.label})", height=480,
                      barmode="group")
    standard = next((r for r in rows if r["G"] == "1"), None)
    header = ["variant", "G", "parameters", "MACs"] + [f"ms, {t} thread(s)" for t in threads]
    header += [f"speed-up vs standard, {t} thread(s)" for t in threads] * bool(standard)
    table_rows = []
    for r in rows:
        row = [r["variant"], r["G"], f"{r['params']:,}", f"{r['macs']:,}"]
        row += [f"{r['ms'][t]:.4g}" if t in r["ms"] else "not measured" for t in threads]
        if standard:
            row += [f"x{standard['ms'][t] / r['ms'][t]:.2f}" if t in r["ms"] and t in standard["ms"] else "-"
                    for t in threads]
        table_rows.append(row)
    notes = []
    if rows[-1]["variant"] == "depthwise separable" and not rows[-1]["ms"]:
        notes.append("Depthwise separable: its depthwise half is the G = C row; its 1x1 half was not timed at "
                     "this shape in this run, so its latency is not shown.")
    return View("tradeoff", "Trade-off", guide, [fig], [Table(header, table_rows)], notes)


def traffic_bytes(info: dict) -> int:
    """Compulsory memory traffic of one layer: input, weights and output read or written once (float32)."""
    s = info["shape"]
    weights = s["kernel"] * s["kernel"] * (s["C_in"] // s["groups"]) * s["C_out"]
    return FLOAT_BYTES * (s["H"] * s["W"] * s["C_in"] + weights + s["OH"] * s["OW"] * s["C_out"])


def roofline_view(runs: Sequence[Run]) -> View:
    """Every layer's arithmetic intensity against achieved GFLOP/s, under the measured compute and memory
    roofs of the machine the run was made on."""
    guide = ("Each dot is a layer: FLOPs per byte of compulsory traffic (x) against pyconv's GFLOP/s (y); the "
             "lines are this machine's measured roofs, min(peak, intensity x bandwidth): the closer, the better.")
    run = _newest(runs, _is_kernel)
    if run is None:
        return View("roofline", "Roofline", guide, notes=["No kernel benchmarks in these runs."])
    benches = [b for b in run.benchmarks if _is_kernel(b)]
    fig = go.Figure()
    palette: Dict[str, str] = {}
    intensities = []
    for module in sorted({b.module for b in benches}, key=lambda m: (KERNEL_MODULES + (m,)).index(m)):
        for t in sorted({b.threads for b in benches}):
            rows = [b for b in benches if b.module == module and b.threads == t]
            if not rows:
                continue
            x = [2 * b.info["macs"] / traffic_bytes(b.info) for b in rows]
            intensities += x
            fig.add_trace(go.Scatter(
                x=x, y=[_gflops(b.info, "pyconv") for b in rows], mode="markers", name=f"{module}, {t} thread(s)",
                text=[f"{layer_label(b.info)} {strategy_label(b.info)} {b.level}" for b in rows],
                marker=dict(color=_colour(module, palette), symbol="circle" if t == 1 else "diamond", size=9),
                hovertemplate="%{text}<br>%{x:.1f} FLOP/byte, %{y:.1f} GFLOP/s<extra></extra>"))
    peak = run.pyconv.get("peak")
    notes = []
    if peak:
        low, high = min(intensities) / 2, max(intensities) * 2
        xs = [low * (high / low) ** (i / 60) for i in range(61)]
        bandwidth = peak["bandwidth_gbs"]
        for t, gflops in sorted(peak["gflops"].items(), key=lambda kv: int(kv[0])):
            fig.add_trace(go.Scatter(x=xs, y=[min(gflops, x * bandwidth) for x in xs], mode="lines",
                                     name=f"roof, {t} thread(s): {gflops:.0f} GFLOP/s, {bandwidth:.1f} GB/s",
                                     line=dict(color="#444", dash="solid" if t == "1" else "dash")))
        m, k, n = peak["gemm_mkn"]
        notes.append(f"Roofs measured with the run ({peak['level']} level): compute = pyconv's GEMM {m}x{k}x{n}, "
                     f"best call; memory = numpy copy of {peak['copy_bytes'] >> 20} MiB, read + write.")
    else:
        notes.append("This run recorded no measured roofs (runs before pyconv.machine): dots only.")
    fig.update_xaxes(type="log", title_text="arithmetic intensity (FLOP/byte)")
    fig.update_yaxes(type="log", title_text="GFLOP/s")
    fig.update_layout(title=f"Roofline ({run.label}, {run.cpu})", height=560)
    return View("roofline", "Roofline", guide, [fig], notes=notes)


def _engines(benches: Sequence[Bench]) -> List[str]:
    names = {e for b in benches for e in b.info["median_s"]}
    return ["pyconv"] + sorted(names - {"pyconv"})


def models_view(runs: Sequence[Run]) -> View:
    """Whole models: latency against the peers per phase and thread count; pyconv's time by strategy."""
    guide = ("Per model: median latency of each engine (log scale, lower is better), first run after load and "
             "warm, per thread count; below, where pyconv's warm time goes, by strategy (from Model.profile).")
    run = _newest(runs, _is_model)
    if run is None:
        return View("models", "Models", guide, notes=["No model benchmarks (bench_models.py) in these runs."])
    benches = [b for b in run.benchmarks if b.module == "models"]
    phases = [p for p in ("first", "warm") if any(b.info["phase"] == p for b in benches)]
    threads = sorted({b.threads for b in benches})
    fig = make_subplots(rows=len(phases), cols=len(threads), shared_yaxes=True, vertical_spacing=0.12,
                        subplot_titles=[f"{p}, {t} thread(s)" for p in phases for t in threads])
    palette: Dict[str, str] = {}
    for row, phase in enumerate(phases, 1):
        for col, t in enumerate(threads, 1):
            cell = [b for b in benches if b.info["phase"] == phase and b.threads == t]
            for engine in _engines(cell):
                at = [b for b in cell if engine in b.info["median_s"]]
                fig.add_trace(go.Bar(x=[b.info["model"] for b in at],
                                     y=[1e3 * b.info["median_s"][engine] for b in at], name=engine,
                                     legendgroup=engine, showlegend=row == col == 1,
                                     marker_color=_colour(engine, palette),
                                     hovertemplate="%{x}<br>" + engine + ": %{y:.3f} ms<extra></extra>"), row, col)
    fig.update_yaxes(type="log", title_text="median ms")
    fig.update_layout(title=f"Models ({run.label})", barmode="group", height=360 * len(phases))
    figures = [fig]
    profiled = [b for b in benches if "profile" in b.info]
    if profiled:
        figures.append(_profile_figure(profiled, run))
    return View("models", "Models", guide, figures)


def _profile_figure(benches: Sequence[Bench], run: Run) -> go.Figure:
    """pyconv's warm time per model and thread count, stacked by strategy; hover lists the slowest nodes."""
    bars = [f"{b.info['model']}, {b.threads} thread(s), {b.level}" for b in benches]
    strategies = sorted({n["strategy"] for b in benches for n in b.info["profile"]["nodes"]})
    fig = go.Figure()
    palette: Dict[str, str] = {}
    for strategy in strategies:
        ms, hover = [], []
        for b in benches:
            nodes = sorted((n for n in b.info["profile"]["nodes"] if n["strategy"] == strategy),
                           key=lambda n: -n["seconds"])
            ms.append(1e3 * sum(n["seconds"] for n in nodes))
            hover.append("<br>".join(f"{n['name']} ({n['type']}): {1e3 * n['seconds']:.3f} ms" for n in nodes[:5]))
        fig.add_trace(go.Bar(y=bars, x=ms, name=strategy, orientation="h", customdata=hover,
                             marker_color=_colour(f"strategy {strategy}", palette),
                             hovertemplate=strategy + ": %{x:.3f} ms<br>%{customdata}<extra></extra>"))
    fig.update_layout(title=f"pyconv's per-node profile by strategy, warm ({run.label})", barmode="stack",
                      xaxis_title="ms per run (sum of node medians)", height=120 + 40 * len(bars))
    return fig


def history_view(runs: Sequence[Run], threshold: float) -> View:
    """Every benchmark across the runs in commit order: median with its interquartile range; a change of
    the minimum beyond the threshold and the noise is marked (red: slower) with the run's commit."""
    guide = (f"One line per benchmark over the runs in commit order: median with the interquartile range "
             f"(log scale); red crosses: the fastest call got slower by over {threshold:.0%} and beyond the "
             f"noise against the run before, labelled with the commit; green: faster.")
    changes = history(runs, threshold)
    if len(runs) < 2:
        return View("history", "History", guide, notes=["History needs two runs or more."])
    labels = [r.label for r in runs]
    figures, table_rows, classes = [], [], []
    modules = sorted({b.module for r in runs for b in r.benchmarks},
                     key=lambda m: (KERNEL_MODULES + ("models", "onnx", m)).index(m))
    for module in modules:
        fig = go.Figure()
        keys = sorted(k for k, h in changes.items() if h[0].run.get(k).module == module)
        flagged = {REGRESSED: ([], [], []), IMPROVED: ([], [], [])}
        for key in keys:
            points = [(c.run.label, c.run.get(key).timing, c) for c in changes[key]]
            fig.add_trace(go.Scatter(
                x=[p[0] for p in points], y=[1e3 * p[1].median for p in points], name=key, mode="lines+markers",
                error_y=dict(type="data", symmetric=False, array=[1e3 * (p[1].q3 - p[1].median) for p in points],
                             arrayminus=[1e3 * (p[1].median - p[1].q1) for p in points], thickness=1),
                customdata=[f"min {1e3 * p[1].min:.4g} ms, {p[2].status}" for p in points],
                hovertemplate=key + "<br>%{x}: median %{y:.4g} ms<br>%{customdata}<extra></extra>"))
            for label, timing, change in points:
                if change.status in flagged:
                    xs, ys, texts = flagged[change.status]
                    xs.append(label)
                    ys.append(1e3 * timing.median)
                    texts.append(f"{change.ratio - 1:+.0%} {change.run.commit[:8]}")
                    table_rows.append([change.status, key, change.run.commit[:8] or change.run.path.name,
                                       change.detail])
                    classes.append("bad" if change.status == REGRESSED else "good")
        for status, colour in ((REGRESSED, REGRESSION_RED), (IMPROVED, IMPROVEMENT_GREEN)):
            xs, ys, texts = flagged[status]
            if xs:
                fig.add_trace(go.Scatter(x=xs, y=ys, text=texts, mode="markers+text", textposition="top center",
                                         name=status.lower(), textfont=dict(color=colour),
                                         marker=dict(color=colour, size=14, symbol="x")))
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels, title_text="run")
        fig.update_yaxes(type="log", title_text="median ms")
        fig.update_layout(title=f"{module}: history", height=460, colorway=HISTORY_COLOURS)
        figures.append(fig)
    tables = [Table(["change", "benchmark", "commit", "detail"], table_rows, classes)] if table_rows else []
    notes = [] if table_rows else [f"No change beyond {threshold:.0%} and the noise between consecutive runs."]
    return View("history", "History", guide, figures, tables, notes)


def machine_view(runs: Sequence[Run]) -> View:
    """The machine and software of every run."""
    guide = "Where and with what each run was made: numbers from different CPUs or levels do not compare."
    header = ["run", "date", "commit", "branch", "CPU", "ISA level in use (detected; levels run)", "cores usable",
              "threads", "measured roofs", "python", "pyconv", "peers", "load avg (1 min)", "file"]
    rows = []
    for run in runs:
        p = run.pyconv
        isa = p.get("isa", {})
        levels = sorted({b.level for b in run.benchmarks})
        peak = p.get("peak")
        roofs = (", ".join(f"{g:.0f} GFLOP/s at {t}t" for t, g in peak["gflops"].items())
                 + f"; {peak['bandwidth_gbs']:.1f} GB/s") if peak else "-"
        cpu = p.get("cpu_model", {})
        rows.append([run.label, run.datetime, run.commit + (" (uncommitted changes)" if run.dirty else ""),
                     run.branch, f"{run.cpu} (family {cpu.get('family', '?')}, model {cpu.get('model', '?')})",
                     f"{isa.get('active', '?')} ({isa.get('detected', '?')}; {', '.join(levels)})",
                     str(p.get("cores_usable", "?")), ", ".join(map(str, p.get("threads", []))), roofs,
                     str(p.get("python", run.machine.get("python_version", "?"))), str(p.get("pyconv", "?")),
                     "; ".join(f"{k} {v}" for k, v in p.get("peers", {}).items()) or "-",
                     f"{max((b.info.get('loadavg_1m', 0.0) for b in run.benchmarks), default=0.0):.1f}",
                     run.path.name])
    return View("machine", "Machine", guide, tables=[Table(header, rows)])


def gate_view(result: GateResult) -> View:
    """The gate's verdicts on the newest run: failures and regressions (red) first, then inconclusive and
    skipped checks; passed ones last."""
    order = {FAIL: 0, REGRESSED: 0, INCONCLUSIVE: 1, SKIPPED: 2}
    css = {FAIL: "bad", REGRESSED: "bad", INCONCLUSIVE: "noisy", SKIPPED: "skipped", IMPROVED: "good"}
    guide = (f"The newest run against its targets and against the run before it (threshold {result.threshold:.0%} "
             "beyond the noise): red rows fail the gate; inconclusive rows are noisy, skipped ones had nothing to "
             "compare with.")
    entries = [(c.status, key, c.target, c.detail) for key, c in result.checks]
    entries += [(c.status, c.key, "no regression against the run before", c.detail) for c in result.changes]
    entries.sort(key=lambda e: order.get(e[0], 3))
    header = ["verdict", "benchmark", "check", "detail"]
    attention = [e for e in entries if e[0] in order]
    passed = [e for e in entries if e[0] not in order]
    tables = [Table(header, [list(e) for e in attention], [css[e[0]] for e in attention])] if attention else []
    if passed:
        tables.append(Table(header, [list(e) for e in passed], [css.get(e[0], "") for e in passed],
                            folded=f"{len(passed)} passed or unchanged"))
    verdict = "FAILED" if result.failed else "passed"
    notes = [f"Gate {verdict} on run {result.run.label if result.run else '-'}: {result.counts()}."]
    return View("gate", "Gate", guide, tables=tables, notes=notes)


def all_views(runs: Sequence[Run], result: GateResult) -> List[View]:
    """Every view of the page, in page order."""
    return [gate_view(result), layers_view(runs), tradeoff_view(runs), roofline_view(runs), models_view(runs),
            history_view(runs, result.threshold), machine_view(runs)]
