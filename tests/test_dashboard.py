"""The benchmark dashboard and regression gate (pyconv.dashboard), report.py's verdicts, the optional
XNNPACK benchmark's skip, pyconv.machine.

Runs come from tests/fixtures/benchmarks (see its README.md): two real runs of one build, and the second
with one layer made 1.5x slower as a later commit. The expected numbers are read from the fixture JSON
itself, independently of the code under test.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyconv.cli import main as cli_main
from pyconv.dashboard import gate, load_runs
from pyconv.dashboard.gate import REGRESSED, parse_threshold
from pyconv.dashboard.runs import RunsError
from pyconv.dashboard.targets import FAIL, INCONCLUSIVE, PASS, SKIPPED, noisy, target_checks

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
SAME_A, SAME_B, SLOWER = (FIXTURES / n for n in ("0001_same_build_a.json", "0002_same_build_b.json",
                                                 "0003_one_layer_slower.json"))
SLOW_KEY = "group-grp_g4_28x28x128x128_k3g4-avx512-t1"
SLOW_COMMIT = "5107e4a9"


def _raw(path: Path) -> dict:
    return json.loads(path.read_text())


def _entry(path: Path, key: str) -> dict:
    return next(b for b in _raw(path)["benchmarks"] if b["param"] == key)


# --- runs and gate ---------------------------------------------------------------------------------------

def test_runs_load_in_commit_order():
    runs = load_runs([FIXTURES])
    assert [r.path.name for r in runs] == [SAME_A.name, SAME_B.name, SLOWER.name]
    assert runs[2].commit.startswith(SLOW_COMMIT) and runs[2].label.startswith(SLOW_COMMIT)
    assert len(runs[0].benchmarks) == len(_raw(SAME_A)["benchmarks"])
    bench = runs[2].get(SLOW_KEY)
    assert bench.timing.min == _entry(SLOWER, SLOW_KEY)["stats"]["min"]
    assert load_runs([SLOWER, SAME_A])[0].path == SAME_A  # order follows the commits, not the arguments


def test_unreadable_runs_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RunsError, match="bad.json: not JSON"):
        load_runs([bad])
    bad.write_text('{"benchmarks": 3}')
    with pytest.raises(RunsError, match="bad.json: benchmarks"):
        load_runs([bad])
    data = _raw(SAME_A)
    del data["benchmarks"][0]["stats"]["q3"]
    bad.write_text(json.dumps(data))
    with pytest.raises(RunsError, match=r"benchmarks\[0\].*stats"):
        load_runs([bad])
    with pytest.raises(RunsError, match="no such file"):
        load_runs([tmp_path / "missing"])
    assert cli_main(["dashboard", str(tmp_path / "missing"), "--check"]) == 2


def test_threshold():
    assert parse_threshold("5%") == pytest.approx(0.05)
    assert parse_threshold("0.1") == pytest.approx(0.1)
    for text in ("five", "-3%"):
        with pytest.raises(ValueError, match="--threshold"):
            parse_threshold(text)


def test_gate_passes_two_runs_of_one_build(capsys):
    assert cli_main(["dashboard", str(SAME_A), str(SAME_B), "--check"]) == 0
    out = capsys.readouterr().out
    assert "REGRESSED" not in out and "gate: passed" in out
    # noisy rows are neither passed nor dropped
    noisy_key = "group-grp_g2_28x28x128x128_k3g2-avx512-t2"
    assert re.search(rf"INCONCLUSIVE +{noisy_key}: group G faster than G = 1 .*noisy", out)
    result = gate(load_runs([SAME_A, SAME_B]))
    assert len(result.changes) == len(_raw(SAME_B)["benchmarks"])  # every benchmark judged


def test_gate_fails_on_the_slower_layer(capsys):
    assert cli_main(["dashboard", str(FIXTURES), "--check", "--threshold", "5%"]) == 1
    out = capsys.readouterr().out
    regressed = [line for line in out.splitlines() if line.startswith(REGRESSED)]
    assert len(regressed) == 1 and SLOW_KEY in regressed[0] and "+50.0%" in regressed[0]
    assert "gate: FAILED" in out
    # above the change, the gate passes again
    assert cli_main(["dashboard", str(FIXTURES), "--check", "--threshold", "60%"]) == 0


def _with_min(path: Path, key: str, minimum: float, out: Path) -> Path:
    """A copy of run ``path`` in which ``key``'s calls all took ``minimum`` seconds, give or take 1 %."""
    data = _raw(path)
    entry = next(b for b in data["benchmarks"] if b["param"] == key)
    stats = entry["stats"]
    stats.update(min=minimum, q1=minimum, median=1.005 * minimum, q3=1.01 * minimum, iqr=0.01 * minimum)
    entry["extra_info"]["min_s"]["pyconv"] = minimum
    entry["extra_info"]["median_s"]["pyconv"] = 1.005 * minimum
    out.write_text(json.dumps(data))
    return out


def test_gate_allows_for_the_spread_between_earlier_runs(tmp_path):
    # One build whose call took 1.0 ms in one run and 1.3 ms in the next: a later 1.45 ms is within what
    # that build already did, 1.7 ms is not.
    key = next(b["param"] for b in _raw(SAME_A)["benchmarks"] if not noisy(b["extra_info"]))
    a = _with_min(SAME_A, key, 1.0e-3, tmp_path / "a.json")
    b = _with_min(SAME_B, key, 1.3e-3, tmp_path / "b.json")
    for later, status in ((1.45e-3, "UNCHANGED"), (1.7e-3, REGRESSED)):
        c = _with_min(SLOWER, key, later, tmp_path / "c.json")
        change = next(ch for ch in gate(load_runs([a, b, c])).changes if ch.key.startswith(key))
        assert change.status == status, change.detail
    # with only one earlier run, the within-run spread alone is the noise
    change = next(ch for ch in gate(load_runs([b, c])).changes if ch.key.startswith(key))
    assert change.status == REGRESSED


def test_gate_skips_what_has_no_earlier_run():
    result = gate(load_runs([SAME_A]))
    assert result.changes and all(c.status == SKIPPED for c in result.changes)
    assert not result.failed


# --- targets and report.py --------------------------------------------------------------------------------

def _info(**overrides) -> dict:
    info = copy.deepcopy(_entry(SAME_B, "pointwise-mnv1_pw13_7x7x1024x1024-avx512-t1")["extra_info"])
    info.update(threads=2, median_s={"pyconv": 1e-3, "numpy": 2e-3, "onnxruntime": 0.9e-3},
                min_s={"pyconv": 1e-3, "numpy": 2e-3, "onnxruntime": 0.9e-3})
    info.update(overrides)
    return info


def test_targets_pass_fail_skipped_inconclusive():
    checks = {c.target: c for c in target_checks(_info())}
    assert checks["pointwise >= 90% of numpy"].status == PASS
    assert checks["no slower than onnxruntime"].status == FAIL
    skipped = {c.target: c for c in target_checks(_info(median_s={"pyconv": 1e-3}, min_s={"pyconv": 1e-3}))}
    assert [c.status for c in skipped.values()] == [SKIPPED, SKIPPED]
    assert "numpy was not measured" in skipped["pointwise >= 90% of numpy"].detail
    noisy = _info(min_s={"pyconv": 0.5e-3, "numpy": 2e-3, "onnxruntime": 0.9e-3})
    assert {c.status for c in target_checks(noisy)} == {INCONCLUSIVE}
    assert target_checks(_info(threads=1)) == []


def test_group_target_against_xnnpack_only_where_it_ran():
    def checks(key, **times):
        info = copy.deepcopy(_entry(SAME_B, key)["extra_info"])
        info.update(median_s=times, min_s=times)
        return {c.target: c for c in target_checks(info)}

    g4 = "group-grp_g4_28x28x128x128_k3g4-avx512-t2"
    target = "group <= 1.1x xnnpack's time"
    assert checks(g4, pyconv=1.0e-3, pyconv_g1=2e-3, xnnpack=0.95e-3)[target].status == PASS  # 1.05x
    failed = checks(g4, pyconv=1.0e-3, pyconv_g1=2e-3, xnnpack=0.85e-3)[target]  # 1.18x
    assert failed.status == FAIL and failed.detail == "x0.85 vs xnnpack"
    assert target not in checks(g4, pyconv=1.0e-3, pyconv_g1=2e-3)  # not measured: no verdict at all
    # G = 128 is depthwise, outside the target's G in {2, ..., 32}.
    assert target not in checks("group-grp_g128_28x28x128x128_k3g128-avx512-t2", pyconv=1e-3, xnnpack=0.5e-3)


def test_xnnpack_benchmark_skips_without_its_peers():
    pytest.importorskip("pytest_benchmark")
    benchmarks = Path(__file__).parent.parent / "benchmarks"
    # A None in sys.modules makes find_spec report the package absent, installed or not.
    code = ("import sys, pytest; sys.modules['tensorflow'] = sys.modules['ai_edge_litert'] = None; "
            "sys.exit(pytest.main(['bench_xnnpack.py', '-p', 'no:cacheprovider', '-rs', '--benchmark-disable']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=benchmarks, capture_output=True, text=True, timeout=300)
    assert done.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, done.stdout + done.stderr
    assert "the xnnpack peer needs tensorflow and ai_edge_litert: pip install" in done.stdout
    assert "1 skipped" in done.stdout


def _report():
    spec = importlib.util.spec_from_file_location("report", Path(__file__).parent.parent / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_check_exits_1_on_a_failed_target(tmp_path, capsys):
    report = _report()
    data = _raw(SAME_B)
    entry = next(b for b in data["benchmarks"] if b["param"] == "pointwise-mnv1_pw13_7x7x1024x1024-avx512-t2")
    entry["extra_info"].update(median_s=_info()["median_s"], min_s=_info()["min_s"])
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    assert report.main([str(path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "- FAIL: mnv1_pw13 (avx512): no slower than onnxruntime (x0.90 vs onnxruntime)" in out
    assert "- INCONCLUSIVE: mnv1_pw1 (avx512)" in out  # a noisy row of the real run
    assert report.main([str(path)]) == 0
    del entry["extra_info"]["median_s"]["onnxruntime"], entry["extra_info"]["min_s"]["onnxruntime"]
    path.write_text(json.dumps(data))
    assert report.main([str(path), "--check"]) == 0
    assert "- SKIPPED: mnv1_pw13 (avx512): no slower than onnxruntime (onnxruntime was not measured" in \
        capsys.readouterr().out


# --- machine ----------------------------------------------------------------------------------------------

def test_machine_roofs_are_measured():
    from pyconv import machine

    peak = machine.measure((1, 2), gemm_shape=(64, 64, 64), copy_bytes=1 << 20)
    assert set(peak.gflops) == {1, 2} and all(g > 0 for g in peak.gflops.values()) and peak.bandwidth_gbs > 0
    data = peak.as_dict()
    assert data["gflops"].keys() == {"1", "2"} and data["gemm_mkn"] == [64, 64, 64]
    with pytest.raises(ValueError, match="threads"):
        machine.measure((0,))


# --- views and page ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def views():
    pytest.importorskip("plotly")
    from pyconv.dashboard.views import all_views

    runs = load_runs([FIXTURES])
    return {v.id: v for v in all_views(runs, gate(runs))}


def _trace(fig, name: str, **where):
    return [t for t in fig.data if t.name == name and all(getattr(t, k) == v for k, v in where.items())]


def test_layers_view(views):
    figs = {f.layout.title.text.split(" ")[0]: f for f in views["layers"].figures}
    assert set(figs) == {"pointwise", "depthwise", "standard", "group"}
    standard = figs["standard"]
    names = {t.name for t in standard.data}
    assert {"pyconv auto:direct", "pyconv direct", "pyconv im2col", "pyconv winograd", "onnxruntime",
            "torch"} <= names
    info = _entry(SLOWER, "winograd-std_3x3_56x56x64x64_k3-avx512-t1")["extra_info"]
    # 1 thread is the first column: latency on axes x/y, GFLOP/s below it on x3/y3
    latency, gflops = [t for t in standard.data if t.name == "pyconv winograd" and t.xaxis in ("x", "x3")]
    assert latency.y[0] == pytest.approx(1e3 * info["median_s"]["pyconv"])
    assert gflops.y[0] == pytest.approx(info["gflops"])
    assert "numpy" in {t.name for t in figs["pointwise"].data}


def test_tradeoff_view(views):
    table = views["tradeoff"].tables[0]
    rows = {r[0]: r for r in table.rows}
    assert list(rows)[:2] == ["standard", "group G = 2"] and "depthwise" in rows
    for g, name in ((1, "standard"), (4, "group G = 4"), (128, "depthwise")):
        key = f"group-grp_g{g}_28x28x128x128_k3{'' if g == 1 else f'g{g}'}-avx512-t2"
        info = _entry(SLOWER, key)["extra_info"]
        assert rows[name][3] == f"{info['macs']:,}" == f"{28 * 28 * 3 * 3 * (128 // g) * (128 // g) * g:,}"
        assert rows[name][2] == f"{3 * 3 * (128 // g) * 128:,}"
        assert rows[name][5] == f"{1e3 * info['median_s']['pyconv']:.4g}"
    assert rows["depthwise separable"][3] == f"{28 * 28 * (9 * 128 + 128 * 128):,}"
    assert rows["depthwise separable"][4] == "not measured"  # no 28x28 128->128 1x1 row in these runs
    assert views["tradeoff"].notes


def test_roofline_view(views):
    fig = views["roofline"].figures[0]
    peak = _raw(SLOWER)["machine_info"]["pyconv_benchmarks"]["peak"]
    roof = next(t for t in fig.data if t.name.startswith("roof, 1 thread"))
    bw, top = peak["bandwidth_gbs"], peak["gflops"]["1"]
    assert all(y == pytest.approx(min(top, x * bw)) for x, y in zip(roof.x, roof.y))
    dots = next(t for t in fig.data if t.name == "depthwise, 1 thread(s)")
    info = _entry(SLOWER, "depthwise-mnv1_dw1_112x112x32x32_k3g32-avx512-t1")["extra_info"]
    traffic = 4 * (112 * 112 * 32 + 3 * 3 * 32 + 112 * 112 * 32)
    assert 2 * info["macs"] / traffic in [pytest.approx(x) for x in dots.x]


def test_models_view(views):
    latency, profile = views["models"].figures
    assert {t.name for t in latency.data} == {"pyconv", "onnxruntime", "torch"}
    info = _entry(SLOWER, "models-mobilenet_v1-warm-avx512-t2")["extra_info"]
    shares = {t.name: t.x[[i for i, y in enumerate(t.y) if y.startswith("mobilenet_v1, 2")][0]] for t in profile.data}
    nodes = info["profile"]["nodes"]
    assert set(shares) == {n["strategy"] for b in _raw(SLOWER)["benchmarks"]
                           for n in b["extra_info"].get("profile", {}).get("nodes", [])}
    assert shares["separable"] == pytest.approx(1e3 * sum(n["seconds"] for n in nodes if n["strategy"] == "separable"))


def test_history_flags_the_slower_layer_in_red(views):
    group = next(f for f in views["history"].figures if f.layout.title.text.startswith("group"))
    flagged = _trace(group, "regressed")
    assert len(flagged) == 1 and flagged[0].marker.color == "#d62728"
    assert list(flagged[0].text) == [f"+50% {SLOW_COMMIT}"]
    line = _trace(group, SLOW_KEY)[0]
    assert len(line.x) == 3 and line.y[2] == pytest.approx(1e3 * _entry(SLOWER, SLOW_KEY)["stats"]["median"])
    assert all(not _trace(f, "regressed") for f in views["history"].figures if f is not group)
    table = views["history"].tables[0]
    assert table.rows == [[REGRESSED, SLOW_KEY, SLOW_COMMIT, table.rows[0][3]]] and table.classes == ["bad"]


def test_machine_view(views):
    table = views["machine"].tables[0]
    assert len(table.rows) == 3
    row = dict(zip(table.header, table.rows[2]))
    assert row["CPU"].startswith("AMD EPYC (family 25") and row["ISA level in use (detected; levels run)"] == \
        "avx512 (avx512; avx512)"
    assert row["commit"].startswith(SLOW_COMMIT) and "GB/s" in row["measured roofs"]


def test_gate_view_and_page(views, tmp_path):
    from pyconv.dashboard.page import render

    bad = views["gate"].tables[0]
    assert bad.rows[0][:2] == [REGRESSED, SLOW_KEY] and bad.classes[0] == "bad"
    page = render(list(views.values()))
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)  # everything inline
    assert f'<tr class="bad"><td>{REGRESSED}</td><td>{SLOW_KEY}</td>' in page
    assert page.count("Plotly.newPlot(") == sum(len(v.figures) for v in views.values())
    same = load_runs([SAME_A, SAME_B])
    from pyconv.dashboard.views import history_view

    assert not history_view(same, 0.05).tables  # no change to list between runs of one build


# --- the page in a browser --------------------------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, timeout=600)
        if shutil.which("chromium"):
            return shutil.which("chromium")
    pytest.skip("no chromium here, and `apt-get install -y chromium` did not provide one")


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


def test_page_renders_in_chromium(chromium, tmp_path):
    pytest.importorskip("plotly")
    out = tmp_path / "dashboard.html"
    assert cli_main(["dashboard", str(FIXTURES), "-o", str(out)]) == 0
    charts = out.read_text().count("Plotly.newPlot(")
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--host-resolver-rules=MAP * ~NOTFOUND",  # any network request would fail and log an error
         "--virtual-time-budget=30000", "--dump-dom", out.as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = result.stdout
    marker = re.search(r'<div id="pyconv-rendered" data-charts="(\d+)" data-errors="(\d+)"[^>]*>([^<]*)<', dom)
    assert marker, f"the page never reported its charts rendered; chromium said: {result.stderr[-2000:]}"
    assert int(marker[1]) == charts == 13
    assert marker[2] == "0", f"script errors: {marker[3]}"
    assert len(re.findall(r'id="chart-\d+" class="plotly-graph-div js-plotly-plot"', dom)) == charts
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "rror" in line or "Uncaught" in line], console
