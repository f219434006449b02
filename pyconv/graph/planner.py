"""Memory plan: every intermediate tensor gets an offset in one float32 arena, reusing memory by liveness.

A tensor lives from the step that writes it to the last step that reads it (graph outputs to the end
of the run). Placement is greedy by size (largest first) into the best-fitting gap left by tensors
whose lifetimes overlap, as in TFLite's arena planner; tensors with disjoint lifetimes share memory.
Model inputs are read where the caller's arrays are and take no arena space.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .passes import Graph

__all__ = ["MemoryPlan", "plan_memory"]

# Offsets are multiples of 16 floats (64 bytes, a cache line and one AVX-512 vector).
_ALIGN = 16


@dataclass(frozen=True)
class MemoryPlan:
    """Where each intermediate tensor lives for one batch size.

    ``offsets`` maps a tensor to ``(offset, size)`` in float32 elements; ``arena_bytes`` is the peak
    activation memory actually allocated, ``naive_bytes`` what one buffer per tensor would take, and
    ``live_bytes`` the lower bound: the most bytes alive at any one step.
    """

    batch: int
    offsets: dict[str, tuple[int, int]]
    arena_bytes: int
    naive_bytes: int
    live_bytes: int

    def __str__(self) -> str:
        ratio = self.arena_bytes / self.naive_bytes if self.naive_bytes else 1.0
        return (f"memory plan (batch {self.batch}): arena {_mb(self.arena_bytes)} for {len(self.offsets)} "
                f"tensors, {ratio:.1%} of the naive {_mb(self.naive_bytes)}; "
                f"lower bound (peak live) {_mb(self.live_bytes)}")


def _mb(n: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def plan_memory(graph: Graph, batch: int) -> MemoryPlan:
    """Plan the arena for running ``graph`` on ``batch`` samples."""
    step = {name: i for i, name in enumerate(graph.nodes)}
    last = dict(step)
    for i, node in enumerate(graph.nodes.values()):
        for src in node.inputs:
            if src in step:
                last[src] = i
    for tensor in graph.outputs.values():
        if tensor in step:
            last[tensor] = len(step)
    size = {name: batch * math.prod(node.out_shape) for name, node in graph.nodes.items()}

    placed: list[tuple[int, int, str]] = []  # (offset, aligned size, tensor)
    offsets: dict[str, tuple[int, int]] = {}
    for name in sorted(step, key=lambda t: (-size[t], step[t])):
        need = -(-size[name] // _ALIGN) * _ALIGN
        busy = sorted((off, n) for off, n, other in placed
                      if step[other] <= last[name] and step[name] <= last[other])
        best, cursor = None, 0
        for off, n in busy:
            gap = off - cursor
            if gap >= need and (best is None or gap < best[1]):
                best = (cursor, gap)
            cursor = max(cursor, off + n)
        offset = best[0] if best else cursor
        placed.append((offset, need, name))
        offsets[name] = (offset, size[name])

    arena = max((off + n for off, n, _ in placed), default=0)
    live = max((sum(size[t] for t in step if step[t] <= i <= last[t]) for i in range(len(step))), default=0)
    return MemoryPlan(batch=batch, offsets=offsets, arena_bytes=4 * arena, naive_bytes=4 * sum(size.values()),
                      live_bytes=4 * live)
