"""A photo's resize, centre crop and normalisation in one nogil pass: the values Pillow's antialiased
``Image.resize(..., BILINEAR or BICUBIC)`` followed by a crop gives, computed only where the crop keeps
them (see :func:`pyconv.preprocess.preprocess`).

Pillow resamples separably with a convolution whose support widens with the downscale factor, each output
pixel's weights normalised to sum 1 and rounded to fixed point (22 fraction bits). One pass runs into a
clipped uint8 intermediate, then the other: horizontal first, except (Pillow 13 on) when the height
shrinks by more than twice as many pixels as the width, then vertical first; an axis whose size does not
change is not resampled. :func:`resize_crop` follows the same arithmetic and order (so its uint8 values
equal Pillow's bit for bit) but runs the first pass only over the input rows (or columns) the kept output
pixels read and only for the kept columns (or rows), and writes the result through a per-channel lookup
table (``(v - mean) / std`` for the 256 pixel values) straight into the float32 model input, NHWC or
NCHW, either channel order. The weights are computed in double precision without fused multiply-adds
(the extension is built with ``-ffp-contract=off``), as Pillow's portable build computes them. The integer
rows of both passes are micro-kernels of the instruction-set level in use (``ukernels/resample``).
"""
from libc.math cimport ceil
from libc.stdint cimport int32_t, uint8_t

import numpy as np

from ._ukernels cimport *

include "_level.pxi"

cdef enum:
    # Fraction bits of the fixed-point weights: 8 bits of pixel and 2 of headroom in an int32.
    PRECISION_BITS = PYCONV_RESAMPLE_BITS

cdef enum Filter:
    BILINEAR = 0
    BICUBIC = 1

_FILTERS = {"bilinear": BILINEAR, "bicubic": BICUBIC}


cdef inline double _kernel(Filter kind, double x) noexcept nogil:
    if x < 0.0:
        x = -x
    if kind == BILINEAR:
        return 1.0 - x if x < 1.0 else 0.0
    # Keys' cubic with a = -0.5, evaluated in the same operation order as Pillow's.
    if x < 1.0:
        return (1.5 * x - 2.5) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * -0.5
    return 0.0


cdef inline Py_ssize_t _taps(Filter kind, Py_ssize_t in_size, Py_ssize_t out_size) noexcept nogil:
    """The most weights one output pixel takes along an axis of ``in_size`` resampled to ``out_size``."""
    cdef double scale = <double>in_size / out_size
    cdef double support = (1.0 if kind == BILINEAR else 2.0) * (scale if scale > 1.0 else 1.0)
    return <Py_ssize_t>ceil(support) * 2 + 1


cdef void _weights(Filter kind, Py_ssize_t in_size, Py_ssize_t out_size, Py_ssize_t first, Py_ssize_t count,
                   Py_ssize_t taps, int32_t *starts, int32_t *lengths, int32_t *weights,
                   double *scratch) noexcept nogil:
    """Fixed-point weights of output positions ``first .. first + count - 1``: position ``i`` reads
    inputs ``starts[i] .. starts[i] + lengths[i] - 1`` with ``weights[i * taps + t]``."""
    cdef double scale = <double>in_size / out_size
    cdef double filterscale = scale if scale > 1.0 else 1.0
    cdef double support = (1.0 if kind == BILINEAR else 2.0) * filterscale
    cdef double inverse = 1.0 / filterscale
    cdef double center, total, w
    cdef Py_ssize_t i, t, lo, hi
    for i in range(count):
        center = (first + i + 0.5) * scale
        # Truncations, as Pillow's; a negative start truncates towards 0 and is clamped anyway.
        lo = <Py_ssize_t><int>(center - support + 0.5)
        if lo < 0:
            lo = 0
        hi = <Py_ssize_t><int>(center + support + 0.5)
        if hi > in_size:
            hi = in_size
        total = 0.0
        for t in range(hi - lo):
            w = _kernel(kind, (t + lo - center + 0.5) * inverse)
            scratch[t] = w
            total += w
        for t in range(taps):
            w = scratch[t] if t < hi - lo else 0.0
            if total != 0.0 and t < hi - lo:
                w = w / total
            weights[i * taps + t] = <int>(w * (1 << PRECISION_BITS) + (-0.5 if w < 0 else 0.5))
        starts[i] = <int>lo
        lengths[i] = <int>(hi - lo)


cdef Py_ssize_t _uniform(Py_ssize_t in_size, Py_ssize_t count, Py_ssize_t taps, int32_t *starts,
                         const int32_t *lengths, const int32_t *weights, int32_t *packed) noexcept nogil:
    """Rewrites ``count`` positions' weights (``taps`` apart) as ``span`` weights each, ``span`` the longest
    run: a shorter run gets zero weights, its start moved left where it would pass the end of the axis.
    Zero weights add nothing to the integer sums, so results are unchanged and the loops run ``span``
    times per pixel, a count the horizontal pass is specialised on. Returns ``span``."""
    cdef Py_ssize_t i, t, shift, span = 1
    for i in range(count):
        if lengths[i] > span:
            span = lengths[i]
    for i in range(count):
        shift = starts[i] - (in_size - span) if starts[i] > in_size - span else 0
        starts[i] -= <int>shift
        for t in range(span):
            packed[i * span + t] = weights[i * taps + t - shift] if shift <= t < shift + lengths[i] else 0
    return span


cdef void _store(const unsigned char *row, Py_ssize_t y, Py_ssize_t out_h, Py_ssize_t out_w, bint bgr, bint nchw,
                 const float *lut, float *dst_f32, unsigned char *dst_u8) noexcept nogil:
    """Output row ``y`` from its RGB uint8 pixels: through ``lut`` into ``dst_f32``, else into ``dst_u8``."""
    cdef Py_ssize_t plane = out_h * out_w, x
    cdef Py_ssize_t r = 2 if bgr else 0, b = 0 if bgr else 2
    cdef const float *l0 = lut
    cdef const float *l1 = lut + 256
    cdef const float *l2 = lut + 512
    cdef float *f
    cdef unsigned char *u
    if lut != NULL and nchw:
        f = dst_f32 + y * out_w
        for x in range(out_w):
            f[x] = l0[row[3 * x + r]]
            f[plane + x] = l1[row[3 * x + 1]]
            f[2 * plane + x] = l2[row[3 * x + b]]
    elif lut != NULL:
        f = dst_f32 + y * out_w * 3
        for x in range(out_w):
            f[3 * x] = l0[row[3 * x + r]]
            f[3 * x + 1] = l1[row[3 * x + 1]]
            f[3 * x + 2] = l2[row[3 * x + b]]
    else:
        u = dst_u8 + y * (out_w if nchw else out_w * 3)
        for x in range(out_w):
            if nchw:
                u[x], u[plane + x], u[2 * plane + x] = row[3 * x + r], row[3 * x + 1], row[3 * x + b]
            else:
                u[3 * x], u[3 * x + 1], u[3 * x + 2] = row[3 * x + r], row[3 * x + 1], row[3 * x + b]


def _describe(array) -> str:
    if not isinstance(array, np.ndarray):
        return type(array).__name__
    flags = "" if array.flags.c_contiguous and array.flags.writeable else (
        " not C-contiguous" if not array.flags.c_contiguous else " read-only")
    return f"{array.dtype} {array.shape}{flags}"


def resize_crop(const unsigned char[:, :, ::1] image not None, Py_ssize_t height, Py_ssize_t width,
                Py_ssize_t top, Py_ssize_t left, Py_ssize_t out_h, Py_ssize_t out_w, str filter not None,
                bint vertical_first=False, const float[:, ::1] table=None, bint bgr=False, bint nchw=False,
                out=None):
    """Rows ``top .. top + out_h - 1`` and columns ``left .. left + out_w - 1`` of ``image`` (a C-contiguous
    ``(H, W, 3)`` uint8 array) resized to ``height x width`` as Pillow resizes it (``filter``:
    ``"bilinear"`` or ``"bicubic"``; ``vertical_first``: the vertical pass before the horizontal one, the
    order Pillow picks for some sizes).

    Without ``table``: the uint8 pixels, ``(out_h, out_w, 3)``. With a ``(3, 256)`` float32 ``table``:
    float32, each output channel ``c``'s pixel value ``v`` written as ``table[c, v]``; ``bgr`` reverses
    the channel order (``table`` is in the output order) and ``nchw`` writes ``(3, out_h, out_w)``
    instead of ``(out_h, out_w, 3)``. ``out``: a C-contiguous array of that shape and dtype to write into
    and return (one image of a batch, say). Releases the GIL while it computes."""
    cdef Py_ssize_t in_h = image.shape[0], in_w = image.shape[1]
    if image.shape[2] != 3:
        raise ValueError(f"resize_crop: expected an (H, W, 3) image, found {(in_h, in_w, image.shape[2])}")
    if in_h < 1 or in_w < 1 or height < 1 or width < 1 or out_h < 1 or out_w < 1:
        raise ValueError(f"resize_crop: empty image or size: {in_w}x{in_h} to {width}x{height}, crop {out_w}x{out_h}")
    if top < 0 or left < 0 or top + out_h > height or left + out_w > width:
        raise ValueError(f"resize_crop: the crop ({left}, {top}) + {out_w}x{out_h} leaves the {width}x{height} image")
    if max(in_h, in_w, height, width) > (1 << 24):
        raise ValueError(f"resize_crop: sides above {1 << 24} pixels are not supported")
    if filter not in _FILTERS:
        raise ValueError(f"resize_crop: filter must be 'bilinear' or 'bicubic', found {filter!r}")
    if table is not None and (table.shape[0] != 3 or table.shape[1] != 256):
        raise ValueError(f"resize_crop: table must be (3, 256), found {(table.shape[0], table.shape[1])}")
    cdef Filter kind = _FILTERS[filter]
    cdef bint horizontal = width != in_w
    cdef bint vertical = height != in_h
    cdef Py_ssize_t taps_x = _taps(kind, in_w, width) if horizontal else 1
    cdef Py_ssize_t taps_y = _taps(kind, in_h, height) if vertical else 1
    cdef Py_ssize_t row_elems = out_w * 3
    # Sums need no clamp to 0-255 without negative weights: bilinear weights sum to at most 2**22 + taps / 2,
    # so with fewer than 16000 taps a sum of pixels <= 255 rounds to at most 255.
    cdef bint clip = kind == BICUBIC or max(taps_x, taps_y) > 4096
    cdef int32_t[::1] y_starts = np.zeros(out_h, np.int32), y_lengths = np.zeros(out_h, np.int32)
    cdef int32_t[::1] y_weights = np.zeros(out_h * taps_y, np.int32)
    cdef int32_t[::1] x_starts = np.zeros(out_w, np.int32), x_lengths = np.zeros(out_w, np.int32)
    cdef int32_t[::1] x_weights = np.zeros(out_w * taps_x, np.int32)
    cdef double[::1] scratch = np.empty(max(taps_x, taps_y), np.float64)
    cdef int32_t[::1] x_packed = np.zeros(out_w * taps_x, np.int32)
    cdef Py_ssize_t span = 1
    with nogil:
        if vertical:
            _weights(kind, in_h, height, top, out_h, taps_y, &y_starts[0], &y_lengths[0], &y_weights[0],
                     &scratch[0])
        if horizontal:
            _weights(kind, in_w, width, left, out_w, taps_x, &x_starts[0], &x_lengths[0], &x_weights[0],
                     &scratch[0])
            span = _uniform(in_w, out_w, taps_x, &x_starts[0], &x_lengths[0], &x_weights[0], &x_packed[0])
    vertical_first = vertical_first and horizontal and vertical
    # What the first pass covers: the input rows (horizontal first) or columns (vertical first) the kept
    # output pixels read, from the first's first to the last's last (both grow with the position).
    cdef Py_ssize_t row0 = y_starts[0] if vertical else top
    cdef Py_ssize_t rows = y_starts[out_h - 1] + y_lengths[out_h - 1] - row0 if vertical else out_h
    cdef Py_ssize_t col0 = x_starts[0], cols = x_starts[out_w - 1] + span - col0
    cdef unsigned char[::1] between = np.empty(
        out_h * cols * 3 if vertical_first else (rows * row_elems if horizontal else 0), np.uint8)
    cdef unsigned char[::1] row_buffer = np.empty(row_elems, np.uint8)
    cdef int32_t[::1] acc = np.empty(max(row_elems, cols * 3 if vertical_first else 0), np.int32)
    shape = (<Py_ssize_t>3, out_h, out_w) if nchw else (out_h, out_w, <Py_ssize_t>3)
    dtype = np.dtype(np.uint8 if table is None else np.float32)
    if out is None:
        result = np.empty(shape, dtype)
    elif (not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype
          or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"resize_crop: out must be a writeable C-contiguous {dtype} array of shape {shape}, "
                         f"found {_describe(out)}")
    else:
        result = out
    cdef unsigned char[::1] out_u8 = result.reshape(-1) if table is None else None
    cdef float[::1] out_f32 = result.reshape(-1) if table is not None else None
    cdef const float *lut = &table[0, 0] if table is not None else NULL
    cdef unsigned char *dst_u8 = &out_u8[0] if table is None else NULL
    cdef float *dst_f32 = &out_f32[0] if table is not None else NULL
    cdef const unsigned char *src = &image[0, 0, 0]
    cdef unsigned char *mid = &between[0] if between.shape[0] else NULL
    cdef unsigned char *row = &row_buffer[0]
    cdef const unsigned char *line
    cdef Py_ssize_t in_stride = in_w * 3, y, r
    cdef const pyconv_ukernels *kernels = uk
    with nogil:
        if vertical_first:
            # The horizontal pass reads the intermediate, which starts at input column col0.
            for r in range(out_w):
                x_starts[r] -= <int>col0
            for y in range(out_h):
                kernels.resample_vertical(src + y_starts[y] * in_stride + col0 * 3, in_stride, y_lengths[y],
                                          &y_weights[y * taps_y], cols * 3, clip, &acc[0], mid + y * cols * 3)
            for y in range(out_h):
                kernels.resample_horizontal(mid + y * cols * 3, cols, out_w, &x_starts[0], &x_packed[0], span,
                                            clip, row)
                _store(row, y, out_h, out_w, bgr, nchw, lut, dst_f32, dst_u8)
        elif horizontal:
            for r in range(rows):
                kernels.resample_horizontal(src + (row0 + r) * in_stride, in_w, out_w, &x_starts[0],
                                            &x_packed[0], span, clip, mid + r * row_elems)
            for y in range(out_h):
                if vertical:
                    kernels.resample_vertical(mid + (y_starts[y] - row0) * row_elems, row_elems, y_lengths[y],
                                              &y_weights[y * taps_y], row_elems, clip, &acc[0], row)
                    line = row
                else:
                    line = mid + y * row_elems
                _store(line, y, out_h, out_w, bgr, nchw, lut, dst_f32, dst_u8)
        else:
            for y in range(out_h):
                if vertical:
                    kernels.resample_vertical(src + y_starts[y] * in_stride + left * 3, in_stride, y_lengths[y],
                                              &y_weights[y * taps_y], row_elems, clip, &acc[0], row)
                    line = row
                else:
                    line = src + (top + y) * in_stride + left * 3
                _store(line, y, out_h, out_w, bgr, nchw, lut, dst_f32, dst_u8)
    return result
