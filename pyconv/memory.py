"""64-byte aligned float32 buffers, for every array pyconv allocates for its kernels.

Large arrays made once (``mapped=True``: a model's packed weights and arenas, and each weight array a
load makes on its way to them) are mapped from the operating system directly once they are 64 KiB or
more, never taken from the malloc heap: glibc raises its mmap threshold after the first large free, so
such arrays would otherwise land in the heap between the load's temporaries and keep it from shrinking
(measured: MobileNet v1 held 9 MB more after loading, Xception 30 MB). Buffers a call makes again on
every call stay on the heap, where the next call reuses warm pages.

numpy's own allocations start 16 bytes past a cache line, so each 64-byte vector load of a channel run
spans two lines: measured here, the depthwise kernel runs about 45% slower on such arrays.

Under AddressSanitizer (the sanitized test builds, .ci/sanitize) the slack around each array is
poisoned, so that a kernel's access just before or past the array is reported, not absorbed by the slack.
"""
from __future__ import annotations

import math
import mmap
import os

import numpy as np

__all__ = ["ALIGN", "MAPPED_BYTES", "aligned_empty", "aligned_zeros", "return_free_memory"]

ALIGN = 64


def _asan_poison():
    """AddressSanitizer's ``__asan_poison_memory_region(address, size)`` when its runtime is preloaded
    into this process, else None."""
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        return None
    import ctypes
    poison = getattr(ctypes.CDLL(None), "__asan_poison_memory_region", None)
    if poison is not None:
        poison.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        poison.restype = None
    return poison


_POISON = _asan_poison()
# numpy keeps freed buffers under this many bytes for its next allocations of the same size, where
# poisoned slack would outlive the array: poisoned buffers are never that small.
_NUMPY_CACHED_BYTES = 1024


# Arrays made once are mapped from this size on (see the module docstring).
MAPPED_BYTES = 64 * 1024


def aligned_empty(shape, mapped: bool = False) -> np.ndarray:
    """An uninitialised C-contiguous float32 array whose data starts on a 64-byte boundary; ``mapped``
    for one made once, not on every call (see the module docstring)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    count = math.prod(shape)
    if mapped and _POISON is None and 4 * count >= MAPPED_BYTES:
        # Page-aligned and zeroed; unmapped when the last array viewing it goes.
        return np.frombuffer(mmap.mmap(-1, 4 * count), dtype=np.float32, count=count).reshape(shape)
    total = count + ALIGN // 4
    if _POISON is not None:
        total = max(total, _NUMPY_CACHED_BYTES // 4)
    raw = np.empty(total, dtype=np.float32)
    start = (-raw.ctypes.data % ALIGN) // 4
    if _POISON is not None:
        _POISON(raw.ctypes.data, start * 4)
        _POISON(raw.ctypes.data + (start + count) * 4, (total - start - count) * 4)
    return raw[start:start + count].reshape(shape)


def aligned_zeros(shape, mapped: bool = False) -> np.ndarray:
    """:func:`aligned_empty`, zeroed."""
    out = aligned_empty(shape, mapped)
    out.fill(0.0)
    return out


def _malloc_trim():
    """glibc's ``malloc_trim``, or None on another C library."""
    import ctypes
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def return_free_memory() -> None:
    """Give the heap's free pages back to the operating system (glibc; elsewhere nothing): after a
    load, whose temporaries (a parsed ONNX file, the arrays converted from it) are freed in an order
    that leaves the heap fragmented, so that glibc alone would keep most of it (measured: 89 of
    the 214 MB Xception held after an ONNX import)."""
    if _TRIM is not None:
        _TRIM(0)
