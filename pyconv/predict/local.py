"""The local pipeline: images decoded on a thread pool while the model runs the batch before.

The paths are cut into batches in order. Decoding runs ahead by at most ``prefetch`` batches (a bounded
queue of pending batches, each a list of futures on the pool), so memory stays at about
``(prefetch + 1) * batch`` images whatever the number of paths, and the pool keeps decoding while the
model runs (both release the GIL: Pillow's decoders and resizers, pyconv's kernels). Results come out
in path order, one list per batch.
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
              prefetch: int = 2) -> Iterator[list[Result]]:
    """The results of ``paths`` in order, one list per batch of at most ``batch`` images."""
    if batch < 1 or prefetch < 1:
        raise ValueError(f"batch and prefetch: expected positive integers, found {batch} and {prefetch}")
    chunks = (paths[i:i + batch] for i in range(0, len(paths), batch))
    pending: deque[tuple[Sequence[str], list[Future]]] = deque()
    with ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="pyconv-decode") as pool:
        try:
            for chunk in chunks:
                pending.append((chunk, predictor.decode(pool, chunk)))
                if len(pending) > prefetch:
                    yield predictor.finish(*pending.popleft())
            while pending:
                yield predictor.finish(*pending.popleft())
        finally:
            # A caller that stops early must not wait for the decoding of batches it will never see.
            for _, futures in pending:
                for future in futures:
                    future.cancel()
