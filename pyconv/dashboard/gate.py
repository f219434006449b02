"""The regression gate: every benchmark of the newest run against the run before it, and the newest
run's targets (targets.py).

A change is judged on pyconv's timed calls, by the minimum and the interquartile range rather than one
median: a benchmark *regressed* when its fastest call got slower than the previous run's fastest by more
than the threshold AND by more than the noise; *improved* the same way round.  The noise is the larger
IQR of the two runs, or, where the history holds two or more earlier runs of the benchmark on the same
CPU, the spread of their minimums if that is larger: a short call on a shared machine moves between
runs of one build by more than its spread within a run shows. A row that is noisy in either run (targets.noisy) is *inconclusive*, never passed; one without an
earlier run to compare with, or whose earlier run was on another CPU, is *skipped* and listed as such.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .runs import Bench, Run
from .targets import FAIL, INCONCLUSIVE, SKIPPED, noisy, target_checks

__all__ = ["Change", "GateResult", "REGRESSED", "IMPROVED", "UNCHANGED", "DEFAULT_THRESHOLD", "compare",
           "history", "gate", "parse_threshold"]

REGRESSED, IMPROVED, UNCHANGED = "REGRESSED", "IMPROVED", "UNCHANGED"
DEFAULT_THRESHOLD = 0.05


@dataclass(frozen=True)
class Change:
    """A benchmark's move from ``previous`` (run) to ``run``: ``ratio`` is new min / previous min."""

    key: str
    status: str
    detail: str
    run: Run
    previous: Optional[Run] = None
    ratio: Optional[float] = None


def parse_threshold(text: str) -> float:
    """``"5%"`` or ``"0.05"`` as a fraction; ValueError for anything else or a negative value."""
    value = text.strip()
    try:
        fraction = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise ValueError(f"--threshold: expected a percentage like 5% or a fraction like 0.05, found {text!r}") \
            from None
    if not fraction >= 0:
        raise ValueError(f"--threshold: expected a non-negative value, found {text!r}")
    return fraction


def compare(key: str, before: Optional[Bench], previous: Optional[Run], after: Bench, run: Run,
            threshold: float, spread: float = 0.0) -> Change:
    """Judge ``after`` (in ``run``) against ``before`` (in ``previous``); ``spread``: how far the minimums
    of the earlier runs of this benchmark on this CPU lie apart (seconds)."""
    if before is None or previous is None:
        return Change(key, SKIPPED, "no earlier run holds this benchmark", run)
    if previous.cpu != run.cpu:
        return Change(key, SKIPPED, f"the earlier run was on another CPU ({previous.cpu})", run, previous)
    old, new = before.timing, after.timing
    ratio = new.min / old.min
    noise = max(old.iqr, new.iqr, spread)
    moved = abs(new.min - old.min) > noise and abs(ratio - 1) > threshold
    detail = (f"min {1e3 * old.min:.4g} -> {1e3 * new.min:.4g} ms ({ratio - 1:+.1%}), IQR {1e3 * old.iqr:.3g} / "
              f"{1e3 * new.iqr:.3g} ms, since {previous.commit[:8] or previous.path.name}")
    if noisy(before.info) or noisy(after.info):
        return Change(key, INCONCLUSIVE, f"{detail}; noisy row", run, previous, ratio)
    status = UNCHANGED if not moved else REGRESSED if ratio > 1 else IMPROVED
    return Change(key, status, detail, run, previous, ratio)


def history(runs: Sequence[Run], threshold: float) -> Dict[str, List[Change]]:
    """Every benchmark's changes run by run (in the runs' order), each against the latest earlier run
    that holds it; the first occurrence is SKIPPED."""
    changes: Dict[str, List[Change]] = {}
    last: Dict[str, tuple] = {}
    minimums: Dict[tuple, List[float]] = {}  # (key, cpu) -> the earlier runs' minimums
    for run in runs:
        for bench in run.benchmarks:
            before, previous = last.get(bench.key, (None, None))
            earlier = minimums.setdefault((bench.key, run.cpu), [])
            spread = max(earlier) - min(earlier) if len(earlier) >= 2 else 0.0
            changes.setdefault(bench.key, []).append(
                compare(bench.key, before, previous, bench, run, threshold, spread))
            last[bench.key] = (bench, run)
            earlier.append(bench.timing.min)
    return changes


@dataclass(frozen=True)
class GateResult:
    """The newest run's target checks (benchmark key, check) and changes against the runs before it."""

    run: Optional[Run]
    threshold: float
    checks: List[tuple] = field(default_factory=list)
    changes: List[Change] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """A target failed or a benchmark regressed beyond the threshold and the noise."""
        return any(c.status == FAIL for _, c in self.checks) or any(c.status == REGRESSED for c in self.changes)

    def counts(self) -> str:
        statuses = [c.status for _, c in self.checks] + [c.status for c in self.changes]
        return ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses))) or "nothing to judge"

    def __str__(self) -> str:
        if self.run is None:
            return "gate: no runs"
        lines = [f"gate: run {self.run.label} ({self.run.path}), threshold {self.threshold:.1%} beyond the noise"]
        lines += [f"{c.status:<12} {key}: {c.target} ({c.detail})" for key, c in self.checks]
        lines += [f"{c.status:<12} {c.key}: {c.detail}" for c in self.changes]
        lines.append(f"gate: {'FAILED' if self.failed else 'passed'}: {self.counts()}")
        return "\n".join(lines)


def gate(runs: Sequence[Run], threshold: float = DEFAULT_THRESHOLD) -> GateResult:
    """The gate on the newest of ``runs`` (in commit order): its targets, and each of its benchmarks
    against the latest earlier run holding it."""
    if not runs:
        return GateResult(None, threshold)
    newest = runs[-1]
    checks = [(b.key, c) for b in newest.benchmarks for c in target_checks(b.info)]
    changes = [h[-1] for key, h in history(runs, threshold).items() if h[-1].run is newest]
    return GateResult(newest, threshold, checks, changes)
