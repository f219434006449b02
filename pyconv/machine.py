"""The machine's measured roofs: peak arithmetic throughput and streaming memory bandwidth.

A roofline puts a layer's achieved GFLOP/s under two roofs: what the cores can compute and what memory
can feed them. Both are measured here, not taken from a data sheet:

* compute: the best of several calls of pyconv's own pointwise GEMM at a compute-bound shape (M = 1024,
  K = N = 512: about 85 FLOPs per byte of compulsory traffic, all of it cache-resident) at the instruction-set
  level in use, at each thread count. That is the FMA throughput pyconv's GEMM tiles reach, a little
  under the cores' theoretical FMA peak;
* memory: the best of several ``numpy.copyto`` calls of a buffer much larger than the last-level cache,
  counted as bytes read plus bytes written (one thread: numpy copies on one).

``pyconv peak`` prints them; the benchmarks record them once per session in the JSON's machine info.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Sequence

import numpy as np

__all__ = ["Peak", "gemm_peak", "copy_bandwidth", "measure"]

GEMM_SHAPE = (1024, 512, 512)  # M, K, N
COPY_BYTES = 128 << 20         # per buffer: well beyond any last-level cache of today's CPUs


@dataclass(frozen=True)
class Peak:
    """The measured roofs: GFLOP/s by thread count (pyconv's GEMM at ``level``) and GB/s (copy)."""

    level: str
    gflops: Dict[int, float]
    bandwidth_gbs: float
    gemm_mkn: tuple
    copy_bytes: int

    def as_dict(self) -> dict:
        """JSON-ready: thread counts become strings (JSON object keys)."""
        data = asdict(self)
        data["gflops"] = {str(t): g for t, g in self.gflops.items()}
        data["gemm_mkn"] = list(self.gemm_mkn)
        return data

    def __str__(self) -> str:
        m, k, n = self.gemm_mkn
        peaks = ", ".join(f"{g:.1f} GFLOP/s at {t} thread(s)" for t, g in self.gflops.items())
        return (f"compute peak ({self.level} level, pyconv GEMM {m}x{k}x{n}): {peaks}\n"
                f"memory bandwidth (numpy copy of {self.copy_bytes >> 20} MiB, read + write): "
                f"{self.bandwidth_gbs:.1f} GB/s")


def _best_seconds(call: Callable[[], object], repeat: int) -> float:
    call()  # warm-up: thread pool awake, data in cache, pages touched
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_peak(threads: int, shape: Sequence[int] = GEMM_SHAPE, repeat: int = 10) -> float:
    """GFLOP/s of pyconv's pointwise GEMM (M x K times K x N) at ``threads``: best of ``repeat`` calls."""
    from .conv import PointwiseConv2D

    m, k, n = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, m, k), dtype=np.float32)
    op = PointwiseConv2D(rng.standard_normal((k, n), dtype=np.float32))
    out = np.empty((1, 1, m, n), dtype=np.float32)
    seconds = _best_seconds(lambda: op(x, out=out, threads=threads), repeat)
    return 2.0 * m * k * n / seconds / 1e9


def copy_bandwidth(nbytes: int = COPY_BYTES, repeat: int = 5) -> float:
    """GB/s of ``numpy.copyto`` between two ``nbytes`` buffers (bytes read + written): best of ``repeat``."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    seconds = _best_seconds(lambda: np.copyto(dst, src), repeat)
    return 2.0 * src.nbytes / seconds / 1e9


def measure(threads: Sequence[int] = (1,), gemm_shape: Sequence[int] = GEMM_SHAPE,
            copy_bytes: int = COPY_BYTES) -> Peak:
    """Both roofs, the compute one at each of ``threads``, on the instruction-set level in use."""
    from . import isa

    counts = sorted({int(t) for t in threads})
    if not counts or counts[0] < 1:
        raise ValueError(f"threads: expected positive thread counts, found {list(threads)}")
    return Peak(isa.active(), {t: gemm_peak(t, gemm_shape) for t in counts}, copy_bandwidth(copy_bytes),
                tuple(gemm_shape), copy_bytes)
