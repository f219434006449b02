"""pyconv's benchmark dashboard and regression gate.

``pyconv dashboard [RUNS ...] -o dashboard.html`` turns saved pytest-benchmark runs of benchmarks/ into one
self-contained HTML page (needs ``pip install 'pyconv[dashboard]'``, i.e. plotly); ``pyconv dashboard
--check`` judges the newest run and needs nothing beyond pyconv.

Modules: runs.py (loading runs, commit order), targets.py (the performance targets), gate.py (regressions
and the verdict), views.py (one function per view), page.py (the HTML), command.py (the command line).
"""
from .gate import GateResult, gate
from .runs import Run, load_runs

__all__ = ["GateResult", "Run", "gate", "load_runs"]
