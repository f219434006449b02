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

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator, Optional, Sequence

from ..threads import available_cores, env_threads
from .engine import BatchPredictor, PendingBatch
from .rows import Result

__all__ = ["run_local", "default_workers", "default_layout", "MAX_DEFAULT_CALLERS"]

# Model runs at once when none are asked for, at most: each holds an arena of its own.
MAX_DEFAULT_CALLERS = 8


def default_workers() -> int:
    """Decoding threads when none are asked for: the usable cores, at most 4."""
    return min(4, available_cores())


def default_layout(threads: Optional[int], callers: Optional[int]) -> tuple[Optional[int], int]:
    """The model's threads per run and the runs at once, where not given. With neither given (nor
    ``OMP_NUM_THREADS``), one single-threaded run per usable core: decoding shares the cores with the
    model, and a run with no barrier per layer loses only what a decoding thread takes, where a run
    split over the cores waits at each layer for the half a decoding thread delayed (MobileNet v2 on 2
    cores: a median of 91-93% of the model's own rate against 87-89%, bench_predict.py). Each run holds
    an arena (about 85 MB for MobileNet v2 at batch 16), so beyond ``MAX_DEFAULT_CALLERS`` cores the
    runs share them out instead. With ``threads`` alone, one run at a time with that many threads."""
    if callers is not None:
        return threads, callers
    if threads is None and env_threads() is None:
        cores = available_cores()
        callers = min(cores, MAX_DEFAULT_CALLERS)
        return cores // callers, callers
    return threads, 1


def run_local(predictor: BatchPredictor, paths: Sequence[str], *, batch: int = 16, workers: Optional[int] = None,
              prefetch: int = 2, callers: int = 1) -> Iterator[list[Result]]:
    """The results of ``paths`` in order, one list per batch of at most ``batch`` images."""
    if batch < 1 or prefetch < 1 or callers < 1:
        raise ValueError(f"batch, prefetch and callers: expected positive integers, found {batch}, {prefetch} "
                         f"and {callers}")
    chunks = (paths[i:i + batch] for i in range(0, len(paths), batch))
    decoding: deque[PendingBatch] = deque()
    running: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="pyconv-decode") as pool, \
            ThreadPoolExecutor(max_workers=callers, thread_name_prefix="pyconv-run") as runners:
        try:
            for chunk in chunks:
                decoding.append(predictor.decode(pool, chunk))
                if len(decoding) > prefetch:
                    running.append(runners.submit(predictor.finish, decoding.popleft()))
                if len(running) >= callers:
                    yield running.popleft().result()
            while decoding:
                running.append(runners.submit(predictor.finish, decoding.popleft()))
                if len(running) >= callers:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:
            # A caller that stops early must not wait for the work of batches it will never see.
            for future in running:
                future.cancel()
            for pending in decoding:
                pending.cancel()
