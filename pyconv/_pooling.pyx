"""nogil kernels for the operators that are not convolutions: pooling, elementwise binary ops (add,
subtract, multiply, divide, one operand broadcast) and per-channel scale/shift (with a fused
activation), activations and PReLU on their own, concatenation along channels, channel shuffle and
softmax.

Arrays arrive from :mod:`pyconv.ops` already validated and converted (C-contiguous float32). Each
driver still checks the relations it relies on (buffer lengths against the geometry it is given,
strides and group counts positive, every pooling window holding an input cell, a thread count of at
least 1) and raises ValueError rather than divide by zero or read or write out of bounds: these checks
cost well under a microsecond a call.

Channels are innermost (NHWC), so every inner loop runs over a contiguous run of channels: those
loops are micro-kernels of the instruction-set level in use (``ukernels/eltwise``, ``ukernels/maxpool``);
the channel-wise ops see their input as ``(rows, C)``. Each parallel task writes a disjoint
slice of the output and computes it in a fixed order, so results do not depend on the thread count.

``act``: an activation code (0 none, 1 relu, 2 relu6, ...: ukernels/common.h) or (code, alpha, beta),
as ``pyconv.activations.Activation.kernel_args`` gives it; NaN passes through, as in PyTorch.  The
micro-kernels fuse relu and relu6; the others run over each row or chunk right after it is written.
"""
from cython.parallel cimport prange
from libc.math cimport expf
from libc.string cimport memcpy, memset
from libc.stdlib cimport malloc, free

from ._ukernels cimport *

include "_level.pxi"

cdef extern from *:
    # Cython cannot spell restrict; without it gcc versions each loop on a runtime aliasing check.
    ctypedef float* fptr_r "float * __restrict__"
    ctypedef const float* cfptr_r "const float * __restrict__"

cdef enum:
    # Elements per task of the channel-wise ops: enough to hide the scheduling cost, few enough that a
    # few hundred KB still splits across threads.
    ELEMS_PER_TASK = 16384
    # Channels per task of global average pooling; its float64 accumulators live on the stack.
    GAP_BLOCK = 64
    # Channels per call of the max-pool window kernel (four AVX-512 vectors).
    MAX_BLOCK = 64
    # Floats of a short broadcast vector repeated for one kernel call of a binary op (see binary).
    GATE_SPAN = 1024
    # Output columns ahead of the one computed whose input cells a pooling row prefetches (from inputs
    # of PYCONV_PREFETCH_MIN_BYTES, ukernels/common.h).
    PREFETCH_AHEAD = 4

cdef struct Pool2D:
    Py_ssize_t H, W, C, OH, OW
    Py_ssize_t kh, kw, sh, sw
    Py_ssize_t top, bottom, left, right
    bint prefetch       # the input is too large to be still in cache: prefetch ahead (_pool_row)
    const pyconv_ukernels *uk


cdef inline Py_ssize_t _imax(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b


cdef int _check_same(what, tuple x_shape, tuple out_shape) except -1:
    if x_shape != out_shape:
        raise ValueError(f"{what}: out {out_shape} must have the shape of x {x_shape}")
    return 0


cdef inline Py_ssize_t _imin(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b


# ---------------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------------

cdef void _pool_row(const float* img, float* orow, Py_ssize_t oh, const Pool2D* g, bint is_max,
                    bint count_include_pad, const act_spec *act) noexcept nogil:
    """One output row ``orow`` (OW x C) of one image ``img`` (H x W x C)."""
    cdef Py_ssize_t C = g.C
    cdef Py_ssize_t hs = oh * g.sh - g.top
    cdef Py_ssize_t h0 = _imax(hs, 0)
    cdef Py_ssize_t h1 = _imin(hs + g.kh, g.H)
    # count_include_pad counts padded cells but not the overhang past the padding that ceil_mode
    # can add (PyTorch's divisor).
    cdef Py_ssize_t padded_h = _imin(hs + g.kh, g.H + g.bottom) - hs
    cdef Py_ssize_t ow, ws, w0, w1, h, w, c, divisor, pf
    cdef float* dst
    for ow in range(g.OW):
        ws = ow * g.sw - g.left
        w0 = _imax(ws, 0)
        w1 = _imin(ws + g.kw, g.W)
        if g.prefetch and ow + PREFETCH_AHEAD < g.OW:
            # The columns that the window PREFETCH_AHEAD outputs on adds to the one before it.
            pf = ws + PREFETCH_AHEAD * g.sw
            pyconv_prefetch_cells(img, C, g.W, h0, h1, _imax(_imax(pf + g.kw - g.sw, pf), 0),
                                  _imin(pf + g.kw, g.W))
        dst = orow + ow * C
        if is_max:
            c = 0
            while c < C:
                g.uk.maxpool_window(img + c, dst + c, _imin(MAX_BLOCK, C - c), C, g.W, h0, h1, w0, w1)
                c = c + MAX_BLOCK
            if act.code:
                g.uk.activate_span(dst, C, act.code, act.alpha, act.beta)
        else:
            memset(dst, 0, C * sizeof(float))
            for h in range(h0, h1):
                for w in range(w0, w1):
                    g.uk.accumulate(dst, img + (h * g.W + w) * C, C)
            if count_include_pad:
                divisor = padded_h * (_imin(ws + g.kw, g.W + g.right) - ws)
            else:
                divisor = (h1 - h0) * (w1 - w0)
            g.uk.divide(dst, <float>divisor, C, act.fused)
            act_rows(g.uk, act, dst, 1, C, 0)


def pool2d(const float[:, :, :, ::1] x, float[:, :, :, ::1] out, Py_ssize_t kh, Py_ssize_t kw,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t top, Py_ssize_t bottom, Py_ssize_t left,
           Py_ssize_t right, bint is_max, bint count_include_pad, int threads, act=0):
    """Max or average pooling, NHWC, then the activation ``act``.

    x : (N, H, W, C) IN;  out : (N, OH, OW, C) OUT.
    Window ``(oh, ow)`` covers rows ``oh*sh - top ...`` (kh of them) and columns ``ow*sw - left ...``
    (kw), clipped to the input; every window must keep at least one cell. Averages divide by the
    number of input cells, or with ``count_include_pad`` by the cells inside the padded input.
    """
    check_threads(threads)
    if out.shape[0] != x.shape[0] or out.shape[3] != x.shape[3]:
        raise ValueError(f"pool2d: out {tuple(out.shape)[:4]} must have the batch and channels of x "
                         f"{tuple(x.shape)[:4]}")
    if min(kh, kw, sh, sw) < 1 or min(top, bottom, left, right) < 0:
        raise ValueError(f"pool2d: kernel {kh}x{kw} and stride {sh}x{sw} must be positive, pads "
                         f"{(top, bottom, left, right)} non-negative")
    if out.shape[0] and out.shape[1] and out.shape[2] and out.shape[3] and (
            x.shape[1] < 1 or x.shape[2] < 1 or top >= kh or left >= kw
            or (out.shape[1] - 1) * sh - top >= x.shape[1] or (out.shape[2] - 1) * sw - left >= x.shape[2]):
        raise ValueError(f"pool2d: out {tuple(out.shape)[:4]} with kernel {kh}x{kw}, stride {sh}x{sw}, pads "
                         f"(top {top}, left {left}) has a window with no cell of x {tuple(x.shape)[:4]}")
    cdef Pool2D g
    g.H, g.W, g.C = x.shape[1], x.shape[2], x.shape[3]
    g.OH, g.OW = out.shape[1], out.shape[2]
    g.kh, g.kw, g.sh, g.sw = kh, kw, sh, sw
    g.top, g.bottom, g.left, g.right = top, bottom, left, right
    g.prefetch = g.H * g.W * g.C * sizeof(float) >= PYCONV_PREFETCH_MIN_BYTES
    g.uk = uk
    cdef Py_ssize_t N = x.shape[0]
    cdef Py_ssize_t tasks = N * g.OH
    cdef Py_ssize_t in_img = g.H * g.W * g.C
    cdef Py_ssize_t out_row = g.OW * g.C
    cdef const float* xp
    cdef float* op
    cdef Py_ssize_t t
    cdef act_spec a = act_spec_of(act)
    if tasks == 0 or g.OW == 0 or g.C == 0:
        return
    xp = &x[0, 0, 0, 0]
    op = &out[0, 0, 0, 0]
    with nogil:
        for t in prange(tasks, num_threads=threads, schedule="static"):
            _pool_row(xp + (t // g.OH) * in_img, op + t * out_row, t % g.OH, &g, is_max,
                      count_include_pad, &a)


def global_avg_pool2d(const float[:, :, :, ::1] x, float[:, ::1] out, int threads):
    """x : (N, H, W, C) IN;  out : (N, C) OUT, the mean over H and W. Requires H*W > 0."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[3]
    cdef Py_ssize_t HW = x.shape[1] * x.shape[2]
    cdef Py_ssize_t blocks = (C + GAP_BLOCK - 1) // GAP_BLOCK
    cdef Py_ssize_t t, n, c0
    cdef const float* xp
    cdef float* op
    cdef const pyconv_ukernels *k = uk
    check_threads(threads)
    if out.shape[0] != N or out.shape[1] != C:
        raise ValueError(f"global_avg_pool2d: out {tuple(out.shape)[:2]} must be (N, C) = {(N, C)}")
    if N == 0 or C == 0:
        return
    if HW < 1:
        raise ValueError(f"global_avg_pool2d: x {tuple(x.shape)[:4]} has no pixels to average")
    xp = &x[0, 0, 0, 0]
    op = &out[0, 0]
    with nogil:
        for t in prange(N * blocks, num_threads=threads, schedule="static"):
            n = t // blocks
            c0 = (t % blocks) * GAP_BLOCK
            k.mean_pixels(xp + n * HW * C + c0, op + n * C + c0, HW, C, _imin(GAP_BLOCK, C - c0))


# ---------------------------------------------------------------------------------------------------
# Channel-wise ops on (rows, C)
# ---------------------------------------------------------------------------------------------------

cdef inline Py_ssize_t _rows_per_task(Py_ssize_t C) noexcept nogil:
    return _imax(1, ELEMS_PER_TASK // _imax(C, 1))


def binary(const float[::1] a, const float[::1] b, float[::1] out, Py_ssize_t P, Py_ssize_t R, Py_ssize_t K,
           int op, act, int threads):
    """out[p, r, k] = act(a[p, r, k] OP b[p, k]): ``b`` broadcast over the R axis of ``a``.

    a, out : (P * R * K,) flat;  b : (P * K,).  ``op`` is a ``PYCONV_BIN_*`` code (common.h). Same shapes
    are P = R = 1; (H, W, C) OP (1, 1, C) per sample is P = N, R = H * W, K = C. With K = 1 each of the
    P runs of R values takes one scalar of ``b``. ``out`` may be ``a`` (or ``b`` when R = 1).
    """
    cdef bint scalar = K == 1 and R > 1
    cdef Py_ssize_t rows = P if scalar else P * R
    cdef Py_ssize_t L = R if scalar else K
    cdef Py_ssize_t pieces, rpt, tasks, t, r, r0, r1, c0, c1, e, M = 1
    cdef const float* ap
    cdef const float* bp
    cdef float* op_
    cdef float* tiled = NULL
    check_threads(threads)
    if min(P, R, K) < 0 or not PYCONV_BIN_ADD <= op <= PYCONV_BIN_RDIV:
        raise ValueError(f"binary: P, R, K {(P, R, K)} must be non-negative and op a PYCONV_BIN_* code, got {op}")
    if a.shape[0] != (<object>P) * R * K or out.shape[0] != a.shape[0] or b.shape[0] != (<object>P) * K:
        raise ValueError(f"binary: a ({a.shape[0]},), b ({b.shape[0]},) and out ({out.shape[0]},) do not match "
                         f"P={P}, R={R}, K={K} (a and out P*R*K floats, b P*K)")
    if rows == 0 or L == 0:
        return
    ap, bp, op_ = &a[0], &b[0], &out[0]
    if not scalar and R > 1 and K < GATE_SPAN // 2:
        # A short vector over many rows (a squeeze-and-excitation gate over an H x W x C map): each
        # sample's vector repeated M times, so that one kernel call covers M rows instead of one (a call
        # per 16-channel pixel made a 56x56x16 gate 16 us, the calls costing more than the work).
        M = _imin(GATE_SPAN // K, R)
        tiled = <float*>malloc(P * M * K * sizeof(float))
        if tiled == NULL:
            raise MemoryError()
        for r in range(P):
            for e in range(M):
                memcpy(tiled + (r * M + e) * K, bp + r * K, K * sizeof(float))
    # A task is whole rows, or a piece of one long row: each element is computed once, by one task,
    # whatever the thread count.
    pieces = (L + ELEMS_PER_TASK - 1) // ELEMS_PER_TASK
    rpt = _rows_per_task(L) if pieces == 1 else 1
    tasks = (rows + rpt - 1) // rpt if pieces == 1 else rows * pieces
    cdef const pyconv_ukernels *k = uk
    cdef act_spec s = act_spec_of(act)
    with nogil:
        for t in prange(tasks, num_threads=threads, schedule="static"):
            if pieces == 1:
                r0 = t * rpt
                r1 = _imin(r0 + rpt, rows)
                c0 = 0
                c1 = L
            else:
                r0 = t // pieces
                r1 = r0 + 1
                c0 = (t % pieces) * ELEMS_PER_TASK
                c1 = _imin(c0 + ELEMS_PER_TASK, L)
            if tiled != NULL:
                r = r0
                while r < r1:
                    e = _imin(_imin(r1, r + M), (r // R + 1) * R)  # M rows at most, within one sample
                    k.binary(ap + r * K, tiled + (r // R) * M * K, op_ + r * K, (e - r) * K, op, s.fused)
                    act_rows(k, &s, op_ + r * K, 1, (e - r) * K, 0)
                    r = e
            else:
                for r in range(r0, r1):
                    if scalar:
                        k.binary_scalar(ap + r * L + c0, bp[r], op_ + r * L + c0, c1 - c0, op, s.fused)
                    else:
                        k.binary(ap + r * L + c0, bp + (r // R) * K + c0, op_ + r * L + c0, c1 - c0, op, s.fused)
                    act_rows(k, &s, op_ + r * L + c0, 1, c1 - c0, 0)
    free(tiled)


def scale_shift(const float[:, ::1] x, const float[::1] scale, const float[::1] shift,
                float[:, ::1] out, act, int threads):
    """out[r, c] = act(x[r, c] * scale[c] + shift[c]).  x, out : (rows, C). ``out`` may be ``x``.

    gcc may contract the multiply-add into one FMA (one rounding instead of two).
    """
    cdef Py_ssize_t rows = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t rpt = _rows_per_task(C)
    cdef Py_ssize_t tasks = (rows + rpt - 1) // rpt
    cdef Py_ssize_t t, r
    cdef const float* xp
    cdef const float* sp
    cdef const float* bp
    cdef float* op
    check_threads(threads)
    _check_same("scale_shift", tuple(x.shape)[:2], tuple(out.shape)[:2])
    if scale.shape[0] != C or shift.shape[0] != C:
        raise ValueError(f"scale_shift: scale ({scale.shape[0]},) and shift ({shift.shape[0]},) must have the "
                         f"{C} channels of x")
    if rows == 0 or C == 0:
        return
    xp, sp, bp, op = &x[0, 0], &scale[0], &shift[0], &out[0, 0]
    cdef const pyconv_ukernels *k = uk
    cdef act_spec s = act_spec_of(act)
    with nogil:
        for t in prange(tasks, num_threads=threads, schedule="static"):
            for r in range(t * rpt, _imin(t * rpt + rpt, rows)):
                k.scale_shift(xp + r * C, sp, bp, op + r * C, C, s.fused)
                act_rows(k, &s, op + r * C, 1, C, 0)


def activation(const float[::1] x, float[::1] out, act, int threads):
    """out = act(x), flat and of one length; ``out`` may be ``x`` (in place)."""
    cdef Py_ssize_t n = x.shape[0]
    cdef Py_ssize_t tasks = (n + ELEMS_PER_TASK - 1) // ELEMS_PER_TASK
    cdef Py_ssize_t t, i0, m
    cdef const float* xp
    cdef float* op
    check_threads(threads)
    _check_same("activation", tuple(x.shape)[:1], tuple(out.shape)[:1])
    cdef act_spec s = act_spec_of(act)
    if n == 0:
        return
    xp, op = &x[0], &out[0]
    cdef const pyconv_ukernels *k = uk
    with nogil:
        for t in prange(tasks, num_threads=threads, schedule="static"):
            i0 = t * ELEMS_PER_TASK
            m = _imin(ELEMS_PER_TASK, n - i0)
            # Copied a chunk at a time, then activated while the chunk is in cache.
            if op != xp:
                memcpy(op + i0, xp + i0, m * sizeof(float))
            if s.code:
                k.activate_span(op + i0, m, s.code, s.alpha, s.beta)


def prelu(const float[:, ::1] x, const float[::1] alpha, float[:, ::1] out, int threads):
    """out[r, i] = x[r, i] if x[r, i] >= 0 else alpha[i] * x[r, i].  x, out : (rows, L); alpha : (L,)
    (a PReLU's slopes over the channels, or over a whole sample).  ``out`` may be ``x``."""
    cdef Py_ssize_t rows = x.shape[0], L = x.shape[1]
    cdef Py_ssize_t rpt = _rows_per_task(L)
    cdef Py_ssize_t tasks = (rows + rpt - 1) // rpt
    cdef Py_ssize_t t, r
    cdef const float* xp
    cdef const float* ap
    cdef float* op
    check_threads(threads)
    _check_same("prelu", tuple(x.shape)[:2], tuple(out.shape)[:2])
    if alpha.shape[0] != L:
        raise ValueError(f"prelu: alpha ({alpha.shape[0]},) must have the {L} entries of a row of x")
    if rows == 0 or L == 0:
        return
    xp, ap, op = &x[0, 0], &alpha[0], &out[0, 0]
    cdef const pyconv_ukernels *k = uk
    with nogil:
        for t in prange(tasks, num_threads=threads, schedule="static"):
            for r in range(t * rpt, _imin(t * rpt + rpt, rows)):
                k.prelu(xp + r * L, ap, op + r * L, L)


def concat(list xs, float[:, ::1] out, int threads):
    """out[r, :] = xs[0][r, :] ++ xs[1][r, :] ++ ...  Each x : (rows, C_i) with C_i > 0 and sum C_i = C."""
    cdef Py_ssize_t k = len(xs)
    cdef Py_ssize_t rows = out.shape[0], C = out.shape[1]
    cdef Py_ssize_t rpt = _rows_per_task(C)
    cdef Py_ssize_t tasks = (rows + rpt - 1) // rpt
    cdef Py_ssize_t t, r, i, off
    cdef const float[:, ::1] view
    cdef float* op
    cdef const float** srcs
    cdef Py_ssize_t* widths
    check_threads(threads)
    off = 0
    for i in range(k):
        view = xs[i]
        if view.shape[0] != rows:
            raise ValueError(f"concat: xs[{i}] has {view.shape[0]} rows, out {rows}")
        off = off + view.shape[1]
    if off != C:
        raise ValueError(f"concat: the inputs have {off} columns in all, out {C}")
    if rows == 0 or C == 0 or k == 0:
        return
    srcs = <const float**>malloc(k * sizeof(float*))
    widths = <Py_ssize_t*>malloc(k * sizeof(Py_ssize_t))
    if srcs == NULL or widths == NULL:
        free(srcs)
        free(widths)
        raise MemoryError()
    try:
        # The caller's list holds the arrays alive for the whole call, so raw pointers are safe.
        for i in range(k):
            view = xs[i]
            srcs[i] = &view[0, 0]
            widths[i] = view.shape[1]
        op = &out[0, 0]
        with nogil:
            for t in prange(tasks, num_threads=threads, schedule="static"):
                for r in range(t * rpt, _imin(t * rpt + rpt, rows)):
                    off = 0
                    for i in range(k):
                        memcpy(op + r * C + off, srcs[i] + r * widths[i], widths[i] * sizeof(float))
                        off = off + widths[i]
    finally:
        free(srcs)
        free(widths)


def channel_shuffle(const float[:, ::1] x, float[:, ::1] out, Py_ssize_t groups, int threads):
    """x, out : (rows, C), C = groups * per_group; out[r, j*groups + i] = x[r, i*per_group + j]."""
    cdef Py_ssize_t rows = x.shape[0], C = x.shape[1]
    check_threads(threads)
    _check_same("channel_shuffle", tuple(x.shape)[:2], tuple(out.shape)[:2])
    if groups < 1 or C % groups:
        raise ValueError(f"channel_shuffle: groups must be positive and divide the {C} channels, got {groups}")
    cdef Py_ssize_t per_group = C // groups
    cdef Py_ssize_t rpt = _rows_per_task(C)
    cdef Py_ssize_t tasks = (rows + rpt - 1) // rpt
    cdef Py_ssize_t t, r
    cdef const float* xp
    cdef float* op
    if rows == 0 or C == 0:
        return
    xp, op = &x[0, 0], &out[0, 0]
    cdef const pyconv_ukernels *k = uk
    with nogil:
        for t in prange(tasks, num_threads=threads, schedule="static"):
            for r in range(t * rpt, _imin(t * rpt + rpt, rows)):
                k.shuffle_row(xp + r * C, op + r * C, groups, per_group)


cdef void _softmax_row(cfptr_r src, fptr_r dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef float m = src[0]
    cdef double total = 0.0
    cdef float ftotal
    # Subtracting the row max keeps every exponent <= 0: no overflow, whatever the logits.
    for i in range(1, n):
        if src[i] > m:
            m = src[i]
    for i in range(n):
        dst[i] = expf(src[i] - m)
        total += dst[i]
    ftotal = <float>total
    for i in range(n):
        dst[i] = dst[i] / ftotal


def softmax(const float[:, ::1] x, float[:, ::1] out, int threads):
    """Softmax of each row.  x, out : (rows, C) with C > 0; ``out`` must not overlap ``x``."""
    cdef Py_ssize_t rows = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t rpt = _rows_per_task(C)
    cdef Py_ssize_t tasks = (rows + rpt - 1) // rpt
    cdef Py_ssize_t t, r
    cdef const float* xp
    cdef float* op
    check_threads(threads)
    _check_same("softmax", tuple(x.shape)[:2], tuple(out.shape)[:2])
    if rows == 0 or C == 0:
        return
    xp, op = &x[0, 0], &out[0, 0]
    if xp < op + rows * C and op < xp + rows * C:
        raise ValueError("softmax: out must not overlap x")
    with nogil:
        for t in prange(tasks, num_threads=threads, schedule="static"):
            for r in range(t * rpt, _imin(t * rpt + rpt, rows)):
                _softmax_row(xp + r * C, op + r * C, C)
