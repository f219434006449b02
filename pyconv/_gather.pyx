"""nogil kernels that gather values from other positions: a slice along one axis (a strided copy) and
a spatial resize (nearest neighbour and bilinear), NHWC.

Arrays arrive from :mod:`pyconv.ops` already validated and converted (C-contiguous float32); the
resize index and weight tables are computed there, once per plan, so these loops only read them.
Each driver still checks what it relies on (buffer lengths against the geometry given, every index in
range, a thread count in 1..1024) and raises ValueError rather than read or write out of bounds.
Each parallel task writes a disjoint part of the output in a fixed order, so results do not depend on
the thread count.
"""
from cython.parallel cimport prange
from libc.string cimport memcpy

from ._ukernels cimport *

include "_level.pxi"

cdef enum:
    # Floats copied or computed per task: enough to hide the scheduling cost.
    ELEMS_PER_TASK = 16384


cdef inline Py_ssize_t _imax(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b


cdef inline Py_ssize_t _imin(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b


cdef int _check_indices(what, const Py_ssize_t[::1] indices, Py_ssize_t count, Py_ssize_t size,
                        Py_ssize_t scale=1) except -1:
    """``indices`` holds ``count`` entries, each ``scale`` times a position in [0, size)."""
    cdef Py_ssize_t i, v
    if indices.shape[0] != count:
        raise ValueError(f"{what} has {indices.shape[0]} entries, expected {count}")
    for i in range(count):
        v = indices[i]
        if v < 0 or v > (size - 1) * scale:
            raise ValueError(f"{what}[{i}] = {v} is out of range for an axis of {size}"
                             + (f" (offsets of {scale} floats)" if scale != 1 else ""))
    return 0


cdef int _check_images(what, tuple x_shape, tuple out_shape) except -1:
    if out_shape[0] != x_shape[0] or out_shape[3] != x_shape[3]:
        raise ValueError(f"{what}: out {out_shape} must have the batch and channels of x {x_shape}")
    return 0


def slice_axis(const float[::1] x, float[::1] out, Py_ssize_t outer, Py_ssize_t A, Py_ssize_t inner,
               Py_ssize_t start, Py_ssize_t step, Py_ssize_t count, int threads):
    """out[o, j, i] = x[o, start + j * step, i] for o < outer, j < count, i < inner.

    x : (outer * A * inner,) flat;  out : (outer * count * inner,). ``start + (count - 1) * step < A``,
    ``step >= 1``. With step 1 each output row is one contiguous copy.
    """
    cdef Py_ssize_t row = count * inner
    cdef Py_ssize_t rpt = _imax(1, ELEMS_PER_TASK // _imax(row, 1))
    cdef Py_ssize_t tasks = (outer + rpt - 1) // rpt
    cdef Py_ssize_t t, o, j, i
    cdef const float* xp
    cdef const float* src
    cdef float* op
    cdef float* dst
    check_threads(threads)
    if min(outer, A, inner, count) < 0 or step < 1:
        raise ValueError(f"slice_axis: outer, A, inner, count {(outer, A, inner, count)} must be non-negative "
                         f"and step positive, got {step}")
    if x.shape[0] != (<object>outer) * A * inner or out.shape[0] != (<object>outer) * count * inner:
        raise ValueError(f"slice_axis: x ({x.shape[0]},) and out ({out.shape[0]},) do not match outer={outer}, "
                         f"A={A}, inner={inner}, count={count}")
    if count > 0 and (start < 0 or start + (<object>count - 1) * step >= A):
        raise ValueError(f"slice_axis: {count} entries from {start} in steps of {step} leave an axis of {A}")
    if outer == 0 or row == 0:
        return
    xp, op = &x[0], &out[0]
    with nogil:
        for t in prange(tasks, num_threads=threads, schedule="static"):
            for o in range(t * rpt, _imin(t * rpt + rpt, outer)):
                src = xp + (o * A + start) * inner
                dst = op + o * row
                if step == 1:
                    memcpy(dst, src, row * sizeof(float))
                elif inner == 1:
                    for j in range(count):
                        dst[j] = src[j * step]
                else:
                    for j in range(count):
                        memcpy(dst + j * inner, src + j * step * inner, inner * sizeof(float))


def resize_nearest(const float[:, :, :, ::1] x, float[:, :, :, ::1] out, const Py_ssize_t[::1] ys,
                   const Py_ssize_t[::1] xs, int threads):
    """out[n, i, j, :] = x[n, ys[i], xs[j], :].  ys : (OH,) rows of x;  xs : (OW,) columns of x."""
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t OH = out.shape[1], OW = out.shape[2]
    cdef Py_ssize_t tasks = N * OH
    cdef Py_ssize_t t, j
    cdef const float* xp
    cdef const float* row
    cdef float* op
    cdef float* dst
    cdef const Py_ssize_t* yp
    cdef const Py_ssize_t* xq
    check_threads(threads)
    _check_images("resize_nearest", tuple(x.shape)[:4], tuple(out.shape)[:4])
    _check_indices("ys", ys, OH, H)
    _check_indices("xs", xs, OW, W)
    if tasks == 0 or OW == 0 or C == 0:
        return
    xp, op, yp, xq = &x[0, 0, 0, 0], &out[0, 0, 0, 0], &ys[0], &xs[0]
    with nogil:
        for t in prange(tasks, num_threads=threads, schedule="static"):
            row = xp + ((t // OH) * H + yp[t % OH]) * W * C
            dst = op + t * OW * C
            if C == 1:
                for j in range(OW):
                    dst[j] = row[xq[j]]
            else:
                for j in range(OW):
                    memcpy(dst + j * C, row + xq[j] * C, C * sizeof(float))


def resize_bilinear(const float[:, :, :, ::1] x, float[:, :, :, ::1] out, const Py_ssize_t[::1] y0,
                    const Py_ssize_t[::1] y1, const float[::1] wy0, const float[::1] wy1,
                    const Py_ssize_t[::1] x0, const Py_ssize_t[::1] x1, const float[::1] wx0,
                    const float[::1] wx1, int threads):
    """out[n, i, j, :] = wy0[i] * (wx0[j] * x[n, y0[i], x0[j]] + wx1[j] * x[n, y0[i], x1[j]])
                       + wy1[i] * (wx0[j] * x[n, y1[i], x0[j]] + wx1[j] * x[n, y1[i], x1[j]]).

    y0, y1, wy0, wy1 : (OH,);  x0, x1 : (OW,) column offsets in floats (column * C);  wx0, wx1 : (OW,).
    """
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef Py_ssize_t OH = out.shape[1], OW = out.shape[2]
    cdef Py_ssize_t tasks = N * OH
    cdef Py_ssize_t t, i
    cdef const float* img
    check_threads(threads)
    _check_images("resize_bilinear", tuple(x.shape)[:4], tuple(out.shape)[:4])
    _check_indices("y0", y0, OH, H)
    _check_indices("y1", y1, OH, H)
    _check_indices("x0", x0, OW, W, C)
    _check_indices("x1", x1, OW, W, C)
    if wy0.shape[0] != OH or wy1.shape[0] != OH or wx0.shape[0] != OW or wx1.shape[0] != OW:
        raise ValueError(f"resize_bilinear: the weights must have {OH} (wy0, wy1) and {OW} (wx0, wx1) entries")
    if tasks == 0 or OW == 0 or C == 0:
        return
    cdef const float* xp = &x[0, 0, 0, 0]
    cdef float* op = &out[0, 0, 0, 0]
    cdef const Py_ssize_t* y0p = &y0[0]
    cdef const Py_ssize_t* y1p = &y1[0]
    cdef const float* wy0p = &wy0[0]
    cdef const float* wy1p = &wy1[0]
    cdef const Py_ssize_t* x0p = &x0[0]
    cdef const Py_ssize_t* x1p = &x1[0]
    cdef const float* wx0p = &wx0[0]
    cdef const float* wx1p = &wx1[0]
    cdef const pyconv_ukernels *k = uk
    with nogil:
        for t in prange(tasks, num_threads=threads, schedule="static"):
            img = xp + (t // OH) * H * W * C
            i = t % OH
            k.bilinear_row(img + y0p[i] * W * C, img + y1p[i] * W * C, wy0p[i], wy1p[i],
                           <const ptrdiff_t*>x0p, <const ptrdiff_t*>x1p, wx0p, wx1p, op + t * OW * C, OW, C)
