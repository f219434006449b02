"""How many threads a kernel call uses: resolved in this one place.

Order: an explicit ``threads`` argument, else ``OMP_NUM_THREADS``, else the cores this process may run on
(CPU affinity and a cgroup CPU quota both lower it). At most :data:`MAX_THREADS`: OpenMP starts every
thread a call asks for, and a process that cannot create them dies, so more is refused.
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Optional

# The drivers refuse more (PYCONV_MAX_THREADS in _ukernels.pxd, the same number).
MAX_THREADS = 1024


def _cgroup_cpu_limit() -> Optional[int]:
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return None


@lru_cache(maxsize=1)
def available_cores() -> int:
    """Cores usable by this process: affinity mask, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    return max(1, min(cores, limit, MAX_THREADS) if limit else min(cores, MAX_THREADS))


def env_threads() -> Optional[int]:
    """``OMP_NUM_THREADS`` (its first entry) if set, else None."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if not env:
        return None
    try:
        value = int(env)
    except ValueError:
        raise ValueError(f"OMP_NUM_THREADS must be a positive integer, got {env!r}") from None
    if not 1 <= value <= MAX_THREADS:
        raise ValueError(f"OMP_NUM_THREADS must be an integer in 1..{MAX_THREADS}, got {env!r}")
    return value


def default_threads() -> int:
    """``OMP_NUM_THREADS`` (its first entry) if set, else :func:`available_cores`."""
    value = env_threads()
    return available_cores() if value is None else value


def resolve_threads(threads: Optional[int] = None) -> int:
    """The thread count for one call: ``threads`` if given (a positive int), else :func:`default_threads`."""
    if threads is None:
        return default_threads()
    if type(threads) is int and 1 <= threads <= MAX_THREADS:
        return threads
    if isinstance(threads, bool) or not isinstance(threads, (int,)) and not hasattr(threads, "__index__"):
        raise TypeError(f"threads must be a positive int or None, got {threads!r}")
    value = int(threads)
    if not 1 <= value <= MAX_THREADS:
        raise ValueError(f"threads must be an int in 1..{MAX_THREADS} or None, got {threads!r}")
    return value
