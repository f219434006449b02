"""Instruction-set levels: which micro-kernels this build holds, which this CPU runs, and the one in use.

A build holds every level of its target architecture (x86-64: ``avx512``, ``avx2``, ``scalar``;
aarch64: ``neon``, ``scalar``), each compiled with its own flags.  At import pyconv uses the best level
the CPU runs, or the one named by the environment variable ``PYCONV_ISA`` (read once, at import);
naming a level the build lacks or the CPU cannot run raises :class:`ISAError` rather than risk an
illegal instruction.  Every level computes the same results to float32 rounding, reads the same packed
weights, and gives identical results for any thread count.

``use(level)`` switches the level of the whole process (for benchmarks and tests comparing levels); a
kernel call already running finishes on the level it started with.
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Callable, Iterator, List, Tuple

from . import _cpu

LEVELS = ("avx512", "avx2", "neon", "scalar")
"""Every level pyconv knows, best first; a build holds those of its architecture."""

_setters: List[Callable[[str], None]] = []
_lock = threading.Lock()


class ISAError(RuntimeError):
    """An instruction-set level was asked for that this build lacks or this CPU cannot run."""


def built() -> Tuple[str, ...]:
    """The levels this build holds, best first."""
    return _cpu.built()


def supported() -> Tuple[str, ...]:
    """The levels of this build that this CPU can run, best first."""
    return tuple(level for level in built() if _cpu.supported(level))


def detected() -> str:
    """The best level this CPU runs."""
    return supported()[0]


def active() -> str:
    """The level every kernel call uses now."""
    return _active


def _check(level: str, source: str) -> str:
    name = level.strip().lower()
    if name not in LEVELS:
        raise ISAError(f"{source}={level!r} is not an instruction-set level; choose one of {', '.join(LEVELS)}")
    if name not in built():
        raise ISAError(f"{source}={level!r}: this pyconv build holds only {', '.join(built())}")
    if name not in supported():
        raise ISAError(f"{source}={level!r}: this CPU cannot run {name} (it runs {', '.join(supported())}); "
                       f"unset PYCONV_ISA or choose one of those")
    return name


def _set(level: str) -> None:
    global _active
    for setter in _setters:
        setter(level)
    _active = level


@contextlib.contextmanager
def use(level: str) -> Iterator[str]:
    """Run every kernel on ``level`` inside the ``with`` block, then restore the previous level."""
    name = _check(level, "level")
    with _lock:
        before = _active
        _set(name)
    try:
        yield name
    finally:
        with _lock:
            _set(before)


def _register(setter: Callable[[str], None]) -> None:
    """A kernel module's hook: called now and on every switch with the level to use."""
    with _lock:
        setter(_active)
        _setters.append(setter)


_active = _check(os.environ["PYCONV_ISA"], "PYCONV_ISA") if os.environ.get("PYCONV_ISA", "").strip() \
    else detected()
