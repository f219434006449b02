# cython: language_level=3
"""Layout conversion kernel: a batched, blocked matrix transpose, (N, A, B) -> (N, B, A), which turns
NCHW into NHWC (A = C, B = H*W) and back at a model's boundary.

numpy's transposed copy walks one side with a stride of a whole row for every element and misses the
cache on nearly every access (1.5 ms for a 56x56x256 map); here each work unit transposes a 64x64 block
in 16x16 register tiles, so both sides stream. Each unit writes its own block: results do not depend on
the thread count.
"""
from cython.parallel cimport prange

from ._ukernels cimport *

include "_level.pxi"

# Block edge of a work unit (a multiple of the 16x16 tile): 64x64 floats = 16 KiB per side, in L1.
DEF BLOCK = 64


cdef void _block(const pyconv_ukernels *k, const float *x, float *y, ptrdiff_t A, ptrdiff_t B, ptrdiff_t a0,
                 ptrdiff_t b0) noexcept nogil:
    cdef ptrdiff_t a1 = min(a0 + BLOCK, A), b1 = min(b0 + BLOCK, B), i, j
    cdef ptrdiff_t nb0 = b1, nb1 = min(b1 + BLOCK, B)
    i = a0
    while i < a1:
        # The thread's next unit reads the next BLOCK floats of these rows.  A model's input comes from
        # memory, where the hardware prefetcher kept too few of a block's 64 short streams in flight:
        # the ResNeXt block's 56x56x256 input took 0.18 ms to transpose in the model, 0.057 with this
        # (0.039 -> 0.047 ms warm, where it only costs).  Prefetching the next block's output rows
        # for writing measured no gain.
        for j in range(i, min(i + 16, a1)):
            pyconv_prefetch_floats(x + j * B + nb0, nb1 - nb0)
        j = b0
        while j < b1:
            k.transpose_tile(x + i * B + j, B, y + j * A + i, A, min(16, a1 - i), min(16, b1 - j))
            j += 16
        i += 16


def transpose_inner(const float[:, :, ::1] x, float[:, :, ::1] y, int threads):
    """y[n, b, a] = x[n, a, b]. x: (N, A, B) IN; y: (N, B, A) OUT, distinct from x; threads: at most this
    many (the caller sizes it to the work)."""
    cdef ptrdiff_t N = x.shape[0], A = x.shape[1], B = x.shape[2]
    check_threads(threads)
    if y.shape[0] != N or y.shape[1] != B or y.shape[2] != A:
        raise ValueError(f"transpose: output {tuple(y.shape)} does not match input {tuple(x.shape)}")
    if N == 0 or A == 0 or B == 0:
        return
    cdef ptrdiff_t ab = (A + BLOCK - 1) // BLOCK, bb = (B + BLOCK - 1) // BLOCK
    cdef ptrdiff_t units = N * ab * bb, u, n, rest
    cdef int nt = <int>max(1, min(threads, units))
    cdef const float *xp = &x[0, 0, 0]
    cdef float *yp = &y[0, 0, 0]
    cdef const pyconv_ukernels *k = uk
    with nogil:
        for u in prange(units, schedule="static", num_threads=nt):
            n = u // (ab * bb)
            rest = u % (ab * bb)
            _block(k, xp + n * A * B, yp + n * A * B, A, B, (rest // bb) * BLOCK, (rest % bb) * BLOCK)
