"""The ``pyconv dashboard`` command (also ``python -m pyconv.dashboard``): build the page from saved
benchmark runs, or, with ``--check``, judge the newest run and exit non-zero when it fails the gate."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .gate import DEFAULT_THRESHOLD, gate, parse_threshold
from .runs import DEFAULT_STORAGE, RunsError, load_runs

__all__ = ["add_arguments", "run", "main"]


def _threshold(text: str) -> float:
    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments, on ``parser`` (the ``pyconv`` subcommand's or the module's own)."""
    parser.add_argument("runs", nargs="*", default=[DEFAULT_STORAGE],
                        help=f"pytest-benchmark JSON files or storage folders (default: {DEFAULT_STORAGE}/)")
    parser.add_argument("-o", "--output", default="dashboard.html", help="page to write (default: dashboard.html)")
    parser.add_argument("--check", action="store_true",
                        help="judge the newest run (targets, and regressions against the run before it); "
                             "exit 1 when it fails")
    parser.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD,
                        help=f"smallest change of the fastest call that counts, beyond the noise "
                             f"(default {DEFAULT_THRESHOLD:.0%})")
    parser.add_argument("--title", default="pyconv benchmarks", help="the page's title")


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status (1: the gate failed; 2: unreadable runs or missing plotly)."""
    try:
        runs = load_runs(args.runs)
    except RunsError as exc:
        print(f"pyconv dashboard: error: {exc}", file=sys.stderr)
        return 2
    if not runs:
        print(f"pyconv dashboard: error: no benchmark runs in {', '.join(map(str, args.runs))}", file=sys.stderr)
        print("pyconv dashboard: hint: save runs with pytest benchmarks/ --benchmark-only --benchmark-autosave",
              file=sys.stderr)
        return 2
    result = gate(runs, args.threshold)
    if args.check:
        print(result)
        return 1 if result.failed else 0
    try:
        from .page import write
        from .views import all_views
    except ImportError as exc:
        print(f"pyconv dashboard: error: the page needs plotly ({exc})", file=sys.stderr)
        print("pyconv dashboard: hint: pip install 'pyconv[dashboard]'", file=sys.stderr)
        return 2
    path = write(all_views(runs, result), args.output, args.title)
    print(f"wrote {path}: {len(runs)} run(s), newest {runs[-1].label}; gate {'FAILED' if result.failed else 'passed'}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyconv.dashboard", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
