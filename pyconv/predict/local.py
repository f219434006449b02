"""The local pipeline: images decoded on a thread pool while the model runs the batch before.

The paths are cut into batches in order. Decoding runs ahead by at most ``prefetch`` batches (a bounded
queue of pending batches, each a list of futures on the pool), so memory stays at about
``(prefetch + callers) * batch`` images whatever the number of paths, and the pool keeps decoding while
the model runs (both release the GIL: Pillow's decoders, pyconv's resize (:mod:`pyconv._resample`) and
its kernels). ``callers`` model runs go at once, each on its own batch with the predictor's threads (a
:class:`~pyconv.Model` serves parallel callers, each on an arena of its own): 2 callers x 1 thread have no
barrier per layer, so a decoding thread that takes a core for a moment stalls one run, not both halves of
one. Results come out in path order, one list per batch, whatever the number of callers (a model's
results do not depend on its thread count).
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator, Optional, Sequence

from .engine import BatchPredictor
from .rows import Result

__all__ = ["run_local", "default_workers"]


def default_workers() -> int:
    """Decoding threads when none are asked for: the usable cores, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def run_local(predictor: BatchPredictor, paths: Sequence[str], *, batch: int = 16, workers: Optional[int] = None,
              prefetch: int = 2, callers: int = 1) -> Iterator[list[Result]]:
    """The results of ``paths`` in order, one list per batch of at most ``batch`` images."""
    if batch < 1 or prefetch < 1 or callers < 1:
        raise ValueError(f"batch, prefetch and callers: expected positive integers, found {batch}, {prefetch} "
                         f"and {callers}")
    chunks = (paths[i:i + batch] for i in range(0, len(paths), batch))
    decoding: deque[tuple[Sequence[str], list[Future]]] = deque()
    running: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="pyconv-decode") as pool, \
            ThreadPoolExecutor(max_workers=callers, thread_name_prefix="pyconv-run") as runners:
        try:
            for chunk in chunks:
                decoding.append((chunk, predictor.decode(pool, chunk)))
                if len(decoding) > prefetch:
                    running.append(runners.submit(predictor.finish, *decoding.popleft()))
                if len(running) >= callers:
                    yield running.popleft().result()
            while decoding:
                running.append(runners.submit(predictor.finish, *decoding.popleft()))
                if len(running) >= callers:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:
            # A caller that stops early must not wait for the work of batches it will never see.
            for future in running:
                future.cancel()
            for _, futures in decoding:
                for future in futures:
                    future.cancel()
