"""Benchmark runs: pytest-benchmark JSON files, or the storage folders ``--benchmark-save`` and
``--benchmark-autosave`` write, loaded and put in commit order; each benchmark reduced to its id, its
``extra_info`` and the statistics of pyconv's timed calls."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

__all__ = ["RunsError", "Timing", "Bench", "Run", "load_runs", "DEFAULT_STORAGE"]

DEFAULT_STORAGE = ".benchmarks"  # where pytest-benchmark saves runs by default


class RunsError(ValueError):
    """A run that cannot be read: names the file and, where it applies, the field."""


@dataclass(frozen=True)
class Timing:
    """pytest-benchmark's statistics of pyconv's timed calls, in seconds."""

    min: float
    q1: float
    median: float
    q3: float
    iqr: float
    rounds: int


@dataclass(frozen=True)
class Bench:
    """One benchmark of one run: ``key`` is its parametrised id (``group-grp_g2_28x28x128x128_k3g2-avx512-t2``),
    the same in every run; ``info`` its extra_info (see benchmarks/README.md)."""

    key: str
    info: dict
    timing: Timing

    @property
    def module(self) -> str:
        return self.info["module"]

    @property
    def threads(self) -> int:
        return int(self.info.get("threads", 0))

    @property
    def level(self) -> str:
        return self.info.get("level") or "-"


@dataclass(frozen=True)
class Run:
    """One saved benchmark run: where it came from, when, at which commit, on which machine."""

    path: Path
    datetime: str
    commit: str
    commit_time: str
    branch: str
    dirty: bool
    machine: dict
    benchmarks: Tuple[Bench, ...]

    @property
    def label(self) -> str:
        """Short name of the run: commit (``+`` when the tree had uncommitted changes) and date."""
        return f"{self.commit[:8] or 'no-commit'}{'+' if self.dirty else ''} {self.datetime[:16].replace('T', ' ')}"

    @property
    def pyconv(self) -> dict:
        """What the pyconv benchmarks add to the machine info (CPU, levels, peers, measured roofs)."""
        return self.machine.get("pyconv_benchmarks", {})

    @property
    def cpu(self) -> str:
        return self.pyconv.get("cpu_model", {}).get("model_name") or self.machine.get("cpu", {}).get("brand_raw", "?")

    def get(self, key: str) -> Optional[Bench]:
        return self._by_key.get(key)

    @cached_property
    def _by_key(self) -> Dict[str, Bench]:
        return {b.key: b for b in self.benchmarks}


def _timing(stats: dict, where: str) -> Timing:
    try:
        return Timing(float(stats["min"]), float(stats["q1"]), float(stats["median"]), float(stats["q3"]),
                      float(stats["iqr"]), int(stats["rounds"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise RunsError(f"{where}: stats: missing or not a number: {exc}") from None


def _bench(entry: dict, where: str) -> Optional[Bench]:
    """The benchmark of one JSON entry, or None for one that timed nothing (``--benchmark-disable``) or
    that no pyconv benchmark wrote (no ``module`` in extra_info)."""
    if not isinstance(entry, dict):
        raise RunsError(f"{where}: expected an object")
    info = entry.get("extra_info") or {}
    if "module" not in info or "median_s" not in info or not entry.get("stats"):
        return None
    key = entry.get("param") or entry.get("name")
    if not isinstance(key, str):
        raise RunsError(f"{where}: param: expected the benchmark's id")
    return Bench(key, info, _timing(entry["stats"], f"{where} ({key})"))


def read_run(path: Union[str, Path]) -> Run:
    """One pytest-benchmark JSON file (``--benchmark-json``, ``--benchmark-save``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunsError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise RunsError(f"{path}: benchmarks: not a pytest-benchmark JSON file (no list of benchmarks)")
    commit = data.get("commit_info") or {}
    benches = [_bench(entry, f"{path}: benchmarks[{i}]") for i, entry in enumerate(data["benchmarks"])]
    return Run(path, str(data.get("datetime", "")), str(commit.get("id") or ""), str(commit.get("time") or ""),
               str(commit.get("branch") or ""), bool(commit.get("dirty")), data.get("machine_info") or {},
               tuple(b for b in benches if b is not None))


def _when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _files(paths: Sequence[Union[str, Path]]) -> List[Path]:
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(path.rglob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise RunsError(f"{path}: no such file or folder")
    return files


def load_runs(paths: Sequence[Union[str, Path]] = (DEFAULT_STORAGE,)) -> List[Run]:
    """Every run in ``paths`` (JSON files, or folders searched for them), in commit order: by commit
    time, then by the time of the run (runs of one commit in the order they were made)."""
    runs = [read_run(f) for f in _files(paths)]
    return sorted(runs, key=lambda r: (_when(r.commit_time or r.datetime), _when(r.datetime)))
