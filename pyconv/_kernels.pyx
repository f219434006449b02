# cython: language_level=3
"""Convolution kernels: nogil Cython drivers that split a layer into independent work units and run them
over OpenMP threads, calling the C micro-kernels (``ukernels/``) of the instruction-set level in use
through its dispatch table (``pyconv.isa``); each run reads the table once, so a run uses one level.

Every driver takes NHWC float32 arrays (conv2d_few_channels: NCHW as well) that the Python layer
(``pyconv.conv``) has already validated and converted; each re-checks the shape relations it relies
on (channel and group counts positive and dividing, packed weights of the layout the geometry needs,
biases and residuals of the output's size), so that no call can divide by zero or read or write out of
bounds: a bad argument is a ValueError (a thread count too, outside 1..1024).  Any output size is legal: it sets the bottom and right pads,
and every tap outside the input reads zeros.  Every output element is computed by exactly one
thread in a fixed order, so results do not depend on the thread count.  Units are handed out
statically, thread i taking the i-th contiguous run of them: units are numbered with pixels slowest,
so each thread computes the same part of the image in every layer and reads the part of the previous
layer's output that it wrote itself, from its own L2 (dynamic scheduling scattered the blocks over
both cores: the ResNeXt block at 2 threads ran 1.2x ONNX Runtime's speed with static units against
1.0x).  ``direct_plan`` and
``separable_plan`` do those checks once and return a plan whose ``run(threads)`` repeats the layer on
the same arrays (a model's bound nodes).

    conv2d_direct      indirect GEMM: a row pointer per (output pixel, tap), no im2col copy; pointwise
                       and dense are its 1x1 case
    conv2d_im2col      im2col of one block of output pixels into a per-thread buffer, then GEMM
    conv2d_narrow_groups  group convolution with narrow groups, 16 output channels of several groups
                       per vector (a GEMM would be only a few columns wide)
    conv2d_winograd    Winograd F(mxm, 3x3), m = 2, 4, 6: input transform, (m+2)^2 batched GEMMs,
                       output transform
    conv2d_few_channels  a first layer over few input channels (an RGB image), NHWC or NCHW, read
                       in place: a row pointer per input channel and tap, pixels a stride apart
    depthwise_conv2d   one output row per work unit, channels vectorised
    separable_conv2d   the depthwise outputs of a block of pixels (it may cut rows) into a per-thread
                       buffer, then the pointwise GEMM on them while they are still in cache
"""
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free
from libc.string cimport memset

from .memory import aligned_empty as _aligned_empty

from ._ukernels cimport *

include "_level.pxi"

IF PYCONV_OPENMP:
    cdef extern from "omp.h" nogil:
        int omp_get_max_threads()

GEMM_MR = PYCONV_GEMM_MR
GEMM_NR = PYCONV_GEMM_NR
GEMM_NR_NARROW = PYCONV_GEMM_NR_NARROW
OPENMP = bool(PYCONV_OPENMP)
MAX_THREADS = PYCONV_MAX_THREADS

# Most output pixels per GEMM work unit.  Each unit streams the packed weights once, so a small image
# (7x7, 10x10) is one block of pixels rather than a full block plus a sliver that would read all the
# weights again.
DEF MC_MAX = 192
# Kernel rows at most this many floats long (KW * C) are read as one "row tap" by the direct kernel.
DEF MERGE_ROW_FLOATS = 96
ROW_TAP_FLOATS = MERGE_ROW_FLOATS
# The fused separable kernel's block: as many GEMM tiles (of PYCONV_GEMM_MR output pixels) as fill
# SEP_BUFFER_FLOATS of depthwise outputs in its per-thread buffer, at most SEP_TILES_MAX.  Measured at
# 2 threads with the weights cold: 16 tiles rather than 8 gained 1-5% at 14x14x512, 56x56x128 and
# MobileNet v2's layers (fewer units, each reading all the pointwise weights), but at 37x37x728 a
# 16-tile buffer (560 KB) lost 8%.
DEF SEP_TILES_MAX = 16
DEF SEP_BUFFER_FLOATS = 98304
# Pointwise weights (floats) above which a small image runs the separable kernel's two steps apart, so
# that each thread reads only its share of the weights from L3.  Measured at 2 threads with the weights
# cold: 7x7x960->320 (1.2 MB) 0.082 ms fused against 0.093 apart, 19x19x728->728 (2.1 MB) 0.93 against
# 0.86, 7x7x1024->1024 0.254 against 0.239.
DEF SEP_SHARED_WEIGHTS = 524288
# Largest depthwise output (floats) whose two-step buffer a separable plan keeps between runs: 7x7x1024
# and 14x14x1024 are far below it (allocating the buffer costs about 5 us a call at 14x14x384).
DEF SEP_KEPT_FLOATS = 262144
# K rows per block of a GEMM: the tile accumulates in registers over a whole block, then adds to C.
# A 32-wide B block of 512 rows (64 KB) lives in L2, which feeds a 12-row tile's 128 bytes per k step
# easily; 512 rather than 256 spares most layers their extra passes over C: measured on one thread,
# 1-4% faster on 3x3 and pointwise layers (Xception's 149x149x32->64 3x3: 3.32 -> 3.17 ms), none slower.
DEF KC = 512
# A window of at most this many K rows is one block all the same: a 3x3 window over 64 channels (576)
# otherwise ran a second pass over C for its last tap alone.
DEF KC_WHOLE = 576
WHOLE_K_ROWS = KC_WHOLE
# Multiply-adds below which one more thread costs more (wake-up, barrier) than it saves.
DEF MACS_PER_THREAD = 200000
# Winograd work units: the floats of transformed inputs and GEMM results a unit may hold (1 MB, a Zen 4
# core's L2), and the fewest and most tiles whatever the channels.  Each unit streams all the
# transformed weights (4x or 7x the size of the 3x3 ones for F(4) and F(6)), so a unit needs enough
# tiles to use them well even where its buffers then spill to L3: measured with one thread, F(4) at
# 19x19x728 ran 26 ms with 12-tile units, 13 with 48.
DEF WINO_UNIT_FLOATS = 262144
DEF WINO_UNIT_TILES_MIN = 48
DEF WINO_UNIT_TILES_MAX = 96


cdef inline ptrdiff_t _cdiv(ptrdiff_t a, ptrdiff_t b) noexcept nogil:
    return (a + b - 1) // b


cdef int _team(int threads, ptrdiff_t units, double macs) noexcept:
    """Threads worth waking for this much work: never more than units, one per MACS_PER_THREAD."""
    cdef ptrdiff_t by_work = <ptrdiff_t>(macs / MACS_PER_THREAD) + 1
    cdef ptrdiff_t n = threads
    if n > units:
        n = units
    if n > by_work:
        n = by_work
    return <int>(n if n > 0 else 1)


cdef inline const float *_opt_ptr(const float[::1] v) noexcept:
    return NULL if v is None else &v[0]


cdef ptrdiff_t _panel_chunks(ptrdiff_t base_units, ptrdiff_t panels, int threads) noexcept:
    """Split output-channel panels (or a depthwise kernel's channel blocks) into chunks only when
    there are too few other units to keep every thread busy (small images with many channels, e.g.
    7x7x1024); one thread is always busy."""
    cdef ptrdiff_t want = 4 * threads
    if threads <= 1 or base_units >= want or panels <= 1:
        return 1
    cdef ptrdiff_t chunks = _cdiv(want, base_units)
    return chunks if chunks < panels else panels


cdef ptrdiff_t _pixel_blocks(ptrdiff_t n, ptrdiff_t tiles, ptrdiff_t per_block, int threads,
                              ptrdiff_t min_units) noexcept:
    """Pixel blocks per image (or per image and group: n of them) of about per_block GEMM tiles each,
    at most one per tile, and, if there are at least min_units, as many in all as a multiple of the
    thread count: block b is tiles b*tiles//blocks .. (b+1)*tiles//blocks, so blocks differ by at most
    one tile and every thread finishes together (7 blocks on 2 threads left one thread idle for a
    seventh of the layer, the main 2-thread loss of MobileNet v2's 28x28 to 7x7 layers)."""
    cdef ptrdiff_t blocks = _cdiv(tiles, per_block)
    if threads > 1 and n * blocks >= min_units:
        while (n * blocks) % threads and blocks < tiles:
            blocks += 1
    return blocks


cdef inline const float *_prefetch_slice(const float *nxt, ptrdiff_t t, ptrdiff_t span,
                                        ptrdiff_t nrp) noexcept nogil:
    """The part of the next B block (span k steps x nrp floats) that tile t prefetches, one line per k
    step: with at least nrp / 16 tiles per panel they cover the whole block the next call needs; a lone
    tile (a dense layer, a 1-pixel image) prefetches only the first 16 columns of a 32-wide panel."""
    if nxt == NULL or (t + 1) * 16 > nrp:
        return NULL
    return nxt + t * span * 16


cdef inline ptrdiff_t _panel_stride(ptrdiff_t nr, ptrdiff_t nrp) noexcept nogil:
    """Floats per K row of a panel with nr real columns in a layout of nrp-wide panels: a last panel
    of at most 16 columns is stored 16 wide (see ``packing._panels``) and runs on the 16-wide tile."""
    return PYCONV_GEMM_NR_NARROW if nr <= PYCONV_GEMM_NR_NARROW else nrp


cdef inline ptrdiff_t _panels_before(ptrdiff_t unit, ptrdiff_t chunks, ptrdiff_t panels, ptrdiff_t ppc) noexcept:
    """Panels in the units before ``unit``, chunks varying fastest (a row's last chunk may be short)."""
    return (unit // chunks) * panels + min((unit % chunks) * ppc, panels)


cdef void _chunking(ptrdiff_t base_units, ptrdiff_t panels, int threads, ptrdiff_t *chunks,
                    ptrdiff_t *per_chunk) noexcept:
    """Panels per chunk and the resulting (non-empty) chunk count: at least as many chunks as
    ``_panel_chunks`` asks for, of the width whose units OpenMP's static schedule (contiguous runs, the
    first units % threads of them one unit longer) spreads most evenly by panels, and of equally even
    widths the widest.  (7x7x1152->320 at 2 threads: 10 panels in 5 chunks of 2 gave one thread 6
    panels and the other 4.)"""
    cdef ptrdiff_t most = _panel_chunks(base_units, panels, threads)
    cdef ptrdiff_t ppc, c, n, q, r, t, start, worst, best = -1
    per_chunk[0] = _cdiv(panels, most)
    chunks[0] = _cdiv(panels, per_chunk[0])
    if most <= 1:
        return
    for ppc in range(1, _cdiv(panels, most) + 1):
        c = _cdiv(panels, ppc)
        n = base_units * c
        q, r = n // threads, n % threads
        worst = 0
        for t in range(threads):
            start = t * q + min(t, r)
            worst = max(worst, _panels_before(start + q + (1 if t < r else 0), c, panels, ppc)
                        - _panels_before(start, c, panels, ppc))
        if best < 0 or worst <= best:
            best, per_chunk[0], chunks[0] = worst, ppc, c


# ---------------------------------------------------------------------------------------------- GEMM convs

ctypedef struct conv_geom:
    ptrdiff_t N, H, W, C, OH, OW, CO, KH, KW, SH, SW, DH, DW, PT, PL
    ptrdiff_t G, CG, OG, P, K, NRP     # groups, channels per group in/out, panels per group, K rows,
                                       # panel width
    ptrdiff_t MC, tiles, mblocks       # most pixels per block, GEMM tiles and pixel blocks per image
    ptrdiff_t chunks, ppc              # panel chunks, panels per chunk
    ptrdiff_t RT, TC, NT               # taps merged into one "row tap", its floats, row taps per group
    ptrdiff_t tpb, kblocks             # row taps per K-block (or 0: one row tap cut into channel chunks)
    bint pointwise                     # 1x1 window, stride 1, no padding: output pixel p is input pixel p
    bint shared                        # groups share one walk of the windows (_direct_unit)
    const float *x
    const float *packed
    const float *bias
    const float *res                   # residual added in the store (may be y itself), or NULL
    const float *zeros
    float *y
    act_spec act
    const pyconv_ukernels *uk          # the level this run uses


cdef void _kblock_range(const conv_geom *g, ptrdiff_t kb, ptrdiff_t *tap0, ptrdiff_t *ntaps,
                        ptrdiff_t *c0, ptrdiff_t *kc) noexcept nogil:
    """K-block kb as (first row tap, row tap count, first float, floats): whole row taps when one
    fits in KC, else one row tap cut into KC-float chunks."""
    cdef ptrdiff_t per_tap
    if g.tpb > 0:
        tap0[0] = kb * g.tpb
        ntaps[0] = min(g.tpb, g.NT - tap0[0])
        c0[0] = 0
        kc[0] = g.TC
    else:
        per_tap = _cdiv(g.TC, KC)
        tap0[0] = kb // per_tap
        ntaps[0] = 1
        c0[0] = (kb % per_tap) * KC
        kc[0] = min(KC, g.TC - c0[0])


ctypedef struct gemm_unit:
    ptrdiff_t n, grp, m0, rows, ntiles, p0, p1   # image, group, pixel block, tiles, panel range


cdef void _decode_unit(const conv_geom *g, ptrdiff_t unit, gemm_unit *u) noexcept nogil:
    """Work unit -> (image, group, block of output pixels, slice of panels); panels vary fastest."""
    cdef ptrdiff_t ch = unit % g.chunks
    cdef ptrdiff_t rest = unit // g.chunks
    u.grp = rest % g.G
    rest = rest // g.G
    u.n = rest // g.mblocks
    rest = rest % g.mblocks
    u.m0 = (rest * g.tiles // g.mblocks) * PYCONV_GEMM_MR
    u.rows = min(((rest + 1) * g.tiles // g.mblocks) * PYCONV_GEMM_MR, g.OH * g.OW) - u.m0
    u.ntiles = _cdiv(u.rows, PYCONV_GEMM_MR)
    u.p0 = ch * g.ppc
    u.p1 = min(g.P, u.p0 + g.ppc)


cdef void _gemm_unit(const conv_geom *g, const gemm_unit *u, const float **ptrs, ptrdiff_t ks, ptrdiff_t kc,
                     ptrdiff_t krow, bint first, bint last) noexcept nogil:
    """The unit's pixel tiles (row pointers ptrs, ks sets of MR per tile) times its panels, over packed
    K rows krow .. krow + ks*kc; the first K-block starts from the bias, the last one activates."""
    cdef ptrdiff_t p, t, nr, nrp, mr, off, span = ks * kc
    cdef const float *blk
    cdef const float *nxt
    for p in range(u.p0, u.p1):
        nr = min(g.NRP, g.OG - p * g.NRP)
        nrp = _panel_stride(nr, g.NRP)
        blk = g.packed + (u.grp * g.P + p) * g.K * g.NRP + krow * nrp
        # Next: the same K rows of the next panel, or after the unit's last panel the next K-block's
        # rows of its first panel (when a block as long as this one follows).
        if p + 1 < u.p1:
            nxt = blk + g.K * g.NRP
        elif krow + 2 * span <= g.K:
            nxt = g.packed + ((u.grp * g.P + u.p0) * g.K + krow + span) * g.NRP
        else:
            nxt = NULL
        for t in range(u.ntiles):
            mr = min(PYCONV_GEMM_MR, u.rows - t * PYCONV_GEMM_MR)
            off = (u.n * g.OH * g.OW + u.m0 + t * PYCONV_GEMM_MR) * g.CO + u.grp * g.OG + p * g.NRP
            g.uk.igemm(nrp, mr, nr, ks, kc, ptrs + t * ks * PYCONV_GEMM_MR, blk, g.y + off, g.CO,
                       NULL if g.bias == NULL else g.bias + u.grp * g.OG + p * g.NRP,
                       g.res + off if first and g.res != NULL else NULL,
                       not first, g.act.fused if last else 0, _prefetch_slice(nxt, t, span, g.NRP))
            if last:
                act_rows(g.uk, &g.act, g.y + off, mr, nr, g.CO)


cdef void _window_ptrs(const conv_geom *g, const gemm_unit *u, ptrdiff_t tap0, ptrdiff_t ntaps, ptrdiff_t c0,
                       const float *img, const float **ptrs, float *patch) noexcept nogil:
    """The row pointers of the unit's pixel tiles for row taps tap0 .. tap0 + ntaps, channels from c0 of
    the image at img (ntaps sets of MR per tile); taps outside the input read zeros."""
    cdef ptrdiff_t rows = u.rows, t, s, i, row, oh, ow, ih0, iw0, kh, kw, ih, iw, q
    cdef const float **tp
    cdef float *pp
    # The pixel's (oh, ow) advances by counters: a division per pixel costs as much as a small-K
    # tile's arithmetic (3-channel stems).
    oh = u.m0 // g.OW
    ow = u.m0 - oh * g.OW
    for t in range(u.ntiles):
        tp = ptrs + t * ntaps * PYCONV_GEMM_MR
        for i in range(PYCONV_GEMM_MR):
            row = t * PYCONV_GEMM_MR + i
            if 0 < row < rows:
                ow = ow + 1
                if ow == g.OW:
                    ow = 0
                    oh = oh + 1
            # Rows past the block keep its last pixel: readable, computed, never stored.
            ih0 = oh * g.SH - g.PT
            iw0 = ow * g.SW - g.PL
            if g.RT > 1:
                # Row taps: a kernel row of an ungrouped, undilated window is KW*C contiguous
                # floats, read in place; only windows crossing the left/right edge are copied
                # (with zeros) into this thread's patch buffer.
                for s in range(ntaps):
                    ih = ih0 + (tap0 + s) * g.DH
                    if ih < 0 or ih >= g.H:
                        tp[s * PYCONV_GEMM_MR + i] = g.zeros
                    elif iw0 >= 0 and iw0 + g.KW <= g.W:
                        tp[s * PYCONV_GEMM_MR + i] = img + (ih * g.W + iw0) * g.C
                    else:
                        pp = patch + ((t * ntaps + s) * PYCONV_GEMM_MR + i) * g.TC
                        for kw in range(g.KW):
                            iw = iw0 + kw
                            if iw >= 0 and iw < g.W:
                                _copy(pp + kw * g.C, img + (ih * g.W + iw) * g.C, g.C)
                            else:
                                for q in range(g.C):
                                    pp[kw * g.C + q] = 0
                        tp[s * PYCONV_GEMM_MR + i] = pp
                continue
            # Walk the taps with counters: a division per pointer would cost more than the GEMM.
            kh = tap0 // g.KW
            kw = tap0 - kh * g.KW
            for s in range(ntaps):
                ih = ih0 + kh * g.DH
                iw = iw0 + kw * g.DW
                if ih >= 0 and ih < g.H and iw >= 0 and iw < g.W:
                    tp[s * PYCONV_GEMM_MR + i] = img + (ih * g.W + iw) * g.C + c0
                else:
                    tp[s * PYCONV_GEMM_MR + i] = g.zeros
                kw = kw + 1
                if kw == g.KW:
                    kw = 0
                    kh = kh + 1


cdef void _direct_unit(const conv_geom *g, ptrdiff_t unit, const float **ptrs, float *patch,
                       ptrdiff_t *built) noexcept nogil:
    """One work unit; built holds the key of the pixel block whose group-0 pointers this thread keeps
    after ptrs' first g.MC * taps entries (g.shared), or -1."""
    cdef gemm_unit u
    _decode_unit(g, unit, &u)
    cdef ptrdiff_t rows = u.rows, m0 = u.m0, ntiles = u.ntiles
    cdef ptrdiff_t kb, tap0, ntaps, c0, kc, t, i, row, key, off, n
    cdef const float *img = g.x + u.n * g.H * g.W * g.C + u.grp * g.CG
    cdef const float **base
    for kb in range(g.kblocks):
        _kblock_range(g, kb, &tap0, &ntaps, &c0, &kc)
        if g.pointwise:
            # Output pixel p reads input pixel p: no window to walk (pointwise layers at small K
            # spent a fifth of their time here, 28x28x32->64 189 -> 235 GFLOP/s on one thread).
            for t in range(ntiles):
                for i in range(PYCONV_GEMM_MR):
                    row = min(t * PYCONV_GEMM_MR + i, rows - 1)
                    ptrs[t * PYCONV_GEMM_MR + i] = img + (m0 + row) * g.C + c0
        elif g.shared:
            # A window's pointers differ between groups by the groups' channel offset only: walk the
            # windows once per pixel block (for group 0) and move them for each group (28x28 3x3 at G=8
            # spent a third of its time walking windows, once per group).
            base = ptrs + g.MC * ntaps
            key = u.n * g.OH * g.OW + m0
            if built[0] != key:
                _window_ptrs(g, &u, tap0, ntaps, c0, img - u.grp * g.CG, base, patch)
                built[0] = key
            off = u.grp * g.CG
            n = ntiles * ntaps * PYCONV_GEMM_MR
            for i in range(n):
                ptrs[i] = base[i] + off
        else:
            _window_ptrs(g, &u, tap0, ntaps, c0, img, ptrs, patch)
        _gemm_unit(g, &u, ptrs, ntaps, kc, tap0 * g.TC + c0, kb == 0, kb == g.kblocks - 1)


cdef inline void _copy(float *dst, const float *src, ptrdiff_t n) noexcept nogil:
    # Runs here are often a few floats (3-channel images): a call to memcpy would cost more than the copy.
    cdef ptrdiff_t j
    for j in range(n):
        dst[j] = src[j]


cdef void _im2col_unit(const conv_geom *g, ptrdiff_t unit, float *abuf, const float **ptrs) noexcept nogil:
    cdef gemm_unit u
    _decode_unit(g, unit, &u)
    cdef ptrdiff_t rows = u.rows, m0 = u.m0, ntiles = u.ntiles
    cdef ptrdiff_t kblocks = _cdiv(g.K, KC)
    cdef ptrdiff_t kb, k0, kc, r, k, tap0, c, run, pix, oh, ih0, iw0, kh, kw, ih, iw, t, i, row
    cdef const float *img = g.x + u.n * g.H * g.W * g.C + u.grp * g.CG
    cdef bint merge_kw = g.G == 1 and g.DW == 1
    cdef ptrdiff_t merged = g.KW * g.CG
    cdef float *arow
    for kb in range(kblocks):
        k0 = kb * KC
        kc = min(KC, g.K - k0)
        # The im2col block: rows = output pixels, columns k0..k0+kc of (tap, channel).
        tap0 = k0 // g.CG
        for r in range(rows):
            pix = m0 + r
            oh = pix // g.OW
            ih0 = oh * g.SH - g.PT
            iw0 = (pix - oh * g.OW) * g.SW - g.PL
            arow = abuf + r * KC
            # Walk (tap, channel) with counters rather than divisions: this loop is per output pixel.
            kh = tap0 // g.KW
            kw = tap0 - kh * g.KW
            c = k0 - tap0 * g.CG
            k = k0
            while k < k0 + kc:
                ih = ih0 + kh * g.DH
                iw = iw0 + kw * g.DW
                # A whole kernel row of an ungrouped, undilated window is one contiguous run of KW*C
                # floats: one copy instead of KW (what makes 3-channel first layers fast).
                if (merge_kw and c == 0 and kw == 0 and k + merged <= k0 + kc and ih >= 0
                        and ih < g.H and iw >= 0 and iw + g.KW <= g.W):
                    _copy(arow + (k - k0), img + (ih * g.W + iw) * g.C, merged)
                    k = k + merged
                    kh = kh + 1
                    continue
                run = min(g.CG - c, k0 + kc - k)
                if ih >= 0 and ih < g.H and iw >= 0 and iw < g.W:
                    _copy(arow + (k - k0), img + (ih * g.W + iw) * g.C + c, run)
                else:
                    memset(arow + (k - k0), 0, run * sizeof(float))
                k = k + run
                c = 0
                kw = kw + 1
                if kw == g.KW:
                    kw = 0
                    kh = kh + 1
        for t in range(ntiles):
            for i in range(PYCONV_GEMM_MR):
                row = t * PYCONV_GEMM_MR + i
                ptrs[t * PYCONV_GEMM_MR + i] = abuf + min(row, rows - 1) * KC
        _gemm_unit(g, &u, ptrs, 1, kc, k0, kb == 0, kb == kblocks - 1)


cdef conv_geom _conv_geom(const float[:, :, :, ::1] x, const float[:, :, :, ::1] packed,
                          const float[::1] bias, float[:, :, :, ::1] y, int kh, int kw, int sh, int sw,
                          int dh, int dw, int pt, int pl, int groups, act_spec act,
                          const float[:, :, :, ::1] residual) except *:
    """The shapes checked against each other, the pointers taken; the split into work units, which
    depends on the thread count, is ``_split_units``'s."""
    cdef conv_geom g
    g.N, g.H, g.W, g.C = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    g.OH, g.OW, g.CO = y.shape[1], y.shape[2], y.shape[3]
    g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.PT, g.PL = kh, kw, sh, sw, dh, dw, pt, pl
    g.G = groups
    _check_groups(groups, g.C, g.CO)
    g.CG, g.OG = g.C // groups, g.CO // groups
    g.P, g.K, g.NRP = packed.shape[1], packed.shape[2], packed.shape[3]
    _check_aligned(&packed[0, 0, 0, 0], "packed weights")
    if (y.shape[0] != g.N or packed.shape[0] != groups or not pyconv_valid_panel(g.NRP)
            or g.P != _cdiv(g.OG, g.NRP) or g.K != <ptrdiff_t>kh * kw * g.CG):
        raise ValueError(f"packed weights {tuple(packed.shape)} do not match x {tuple(x.shape)}, "
                         f"y {tuple(y.shape)}, kernel {kh}x{kw}, groups {groups}")
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(pt, pl) < 0:
        raise ValueError("kernel, stride and dilation must be positive and pads non-negative")
    if bias is not None and bias.shape[0] != g.CO:
        raise ValueError(f"bias has {bias.shape[0]} entries, expected {g.CO}")
    g.tiles = _cdiv(g.OH * g.OW, PYCONV_GEMM_MR)
    g.x, g.packed, g.y, g.act = &x[0, 0, 0, 0], &packed[0, 0, 0, 0], &y[0, 0, 0, 0], act
    g.bias = _opt_ptr(bias)
    g.res = _residual_ptr(residual, y)
    g.pointwise = kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0 and \
        g.OH == g.H and g.OW == g.W
    return g


cdef ptrdiff_t _split_units(conv_geom *g, int threads) noexcept:
    """Pixel blocks and panel chunks for this many threads; returns the number of work units."""
    # Fewer blocks than 4 per thread are split by panels instead (_panel_chunks), which keeps reading
    # the weights once: such small images are where the weights outweigh the pixels.
    g.mblocks = _pixel_blocks(g.N * g.G, g.tiles, MC_MAX // PYCONV_GEMM_MR, threads, 4 * threads)
    g.MC = _cdiv(g.tiles, g.mblocks) * PYCONV_GEMM_MR
    cdef ptrdiff_t base = g.N * g.mblocks * g.G
    _chunking(base, g.P, threads, &g.chunks, &g.ppc)
    return base * g.chunks


cdef int _check_groups(int groups, ptrdiff_t c, ptrdiff_t co) except -1:
    if c < 1 or co < 1:
        raise ValueError(f"x and y must have channels, found C_in={c}, C_out={co}")
    if groups < 1 or c % groups or co % groups:
        raise ValueError(f"groups={groups} must be positive and divide C_in={c} and C_out={co}")
    return 0


cdef int _check_aligned(const float *p, what) except -1:
    """The GEMM tiles load weight panels with aligned vector loads: a misaligned copy would crash them."""
    if (<size_t>p) % PYCONV_ALIGN:
        raise ValueError(f"{what} must start on a {PYCONV_ALIGN}-byte boundary, as pyconv.packing makes them "
                         f"(a copy of packed weights may not be)")
    return 0


cdef const float *_residual_ptr(const float[:, :, :, ::1] residual, float[:, :, :, ::1] y) except? NULL:
    if residual is None:
        return NULL
    cdef int d
    for d in range(4):
        if residual.shape[d] != y.shape[d]:
            raise ValueError(f"residual {tuple(residual.shape)[:4]} does not match the output {tuple(y.shape)[:4]}")
    return &residual[0, 0, 0, 0]


cdef class DirectPlan:
    """``conv2d_direct`` with its arguments checked once, as XNNPACK sets an operator up before running
    it: ``run(threads)`` computes from the bound arrays' current contents, skipping the argument
    parsing and buffer acquisition that cost a small layer about 0.7 us a call.  The plan holds the
    arrays, so the memory its pointers address stays valid (numpy will not resize an exported array)."""
    cdef conv_geom g
    cdef object keep
    cdef double macs

    def run(self, int threads):
        check_threads(threads)
        if self.g.N == 0 or self.g.OH == 0 or self.g.OW == 0:
            return
        _direct_run(self.g, threads, self.macs)


def direct_plan(const float[:, :, :, ::1] x, const float[:, :, :, ::1] packed, const float[::1] bias,
                float[:, :, :, ::1] y, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl,
                int groups, act, const float[:, :, :, ::1] residual=None):
    """The plan of ``conv2d_direct(x, ..., act, threads, residual)``, for any thread count."""
    cdef DirectPlan plan = DirectPlan.__new__(DirectPlan)
    cdef const float[::1] zeros
    plan.g.N, plan.g.OH, plan.g.OW = x.shape[0], y.shape[1], y.shape[2]
    plan.keep = (x, packed, bias, y, residual)
    if x.shape[0] == 0 or y.shape[1] == 0 or y.shape[2] == 0:
        return plan
    cdef conv_geom g = _conv_geom(x, packed, bias, y, kh, kw, sh, sw, dh, dw, pt, pl, groups, act_spec_of(act),
                                  residual)
    # Merge a kernel row's taps into one when they are contiguous in memory and short (few channels):
    # a 3-channel first layer then feeds the GEMM 9-float runs instead of 3-float ones.
    g.RT = kw if (groups == 1 and dw == 1 and kw * g.CG <= MERGE_ROW_FLOATS) else 1
    g.TC, g.NT = g.RT * g.CG, <ptrdiff_t>kh * kw // g.RT
    g.tpb = g.NT if g.NT * g.TC <= KC_WHOLE else KC // g.TC if g.TC <= KC else 0
    g.kblocks = _cdiv(g.NT, g.tpb) if g.tpb > 0 else g.NT * _cdiv(g.TC, KC)
    g.shared = groups > 1 and not g.pointwise and g.RT == 1 and g.kblocks == 1
    # A shared window's zero taps move with the group's channels too: zeros for every group's offset.
    zeros = _zeros(max(g.TC, 16) + (g.C - g.CG if g.shared else 0))
    g.zeros = &zeros[0]
    plan.g = g
    plan.keep = (x, packed, bias, y, residual, zeros)
    plan.macs = <double>g.N * g.OH * g.OW * g.CO * kh * kw * g.CG
    return plan


cdef void _direct_run(conv_geom g, int threads, double macs) except *:
    check_threads(threads)
    g.uk = uk
    cdef ptrdiff_t units = _split_units(&g, threads)
    cdef ptrdiff_t taps = min(g.tpb, g.NT) if g.tpb > 0 else 1
    cdef int nt = _team(threads, units, macs)
    cdef ptrdiff_t u
    cdef const float **ptrs
    cdef float *patch
    cdef ptrdiff_t patch_floats = g.MC * taps * g.TC if g.RT > 1 else 1
    cdef ptrdiff_t built
    cdef int failed = 0
    cdef int *failp = &failed
    with nogil, parallel(num_threads=nt):
        ptrs = <const float **>pyconv_aligned_alloc(g.MC * taps * (2 if g.shared else 1) * sizeof(float *))
        patch = <float *>pyconv_aligned_alloc(patch_floats * sizeof(float))
        built = -1
        if ptrs != NULL and patch != NULL:
            for u in prange(units, schedule="static"):
                _direct_unit(&g, u, ptrs, patch, &built)
        else:
            failp[0] = 1
        free(ptrs)
        free(patch)
    _check_alloc(failed)


def conv2d_direct(const float[:, :, :, ::1] x, const float[:, :, :, ::1] packed, const float[::1] bias,
                  float[:, :, :, ::1] y, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl,
                  int groups, act, int threads, const float[:, :, :, ::1] residual=None):
    """Direct convolution as an indirect GEMM (also pointwise and dense: the 1x1 case).

    x: (N, H, W, C) IN; packed: (G, P, KH*KW*C/G, NR) IN, from ``pack_gemm_weights``;
    bias: (C_out,) or None IN; y: (N, OH, OW, C_out) OUT; pt, pl: top and left pads (bottom and right
    follow from the output size); act: an activation code (0 none, 1 relu, 2 relu6, ...: common.h) or
    (code, alpha, beta), see ``pyconv.activations``; residual: None, or (N, OH, OW, C_out) IN
    added before the activation (a skip connection; only read, it may be x or y itself, but must not
    overlap only part of y).  ``direct_plan`` checks the same arguments once for repeated runs.
    """
    direct_plan(x, packed, bias, y, kh, kw, sh, sw, dh, dw, pt, pl, groups, act, residual).run(threads)


def conv2d_im2col(const float[:, :, :, ::1] x, const float[:, :, :, ::1] packed, const float[::1] bias,
                  float[:, :, :, ::1] y, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl,
                  int groups, act, int threads, const float[:, :, :, ::1] residual=None):
    """im2col + GEMM: each work unit copies its (pixels x K-block) patch matrix into a per-thread
    buffer of at most MC_MAX x KC floats, so memory stays bounded whatever the layer.  Arguments as conv2d_direct."""
    if x.shape[0] == 0 or y.shape[1] == 0 or y.shape[2] == 0:
        return
    cdef conv_geom g = _conv_geom(x, packed, bias, y, kh, kw, sh, sw, dh, dw, pt, pl, groups, act_spec_of(act),
                                  residual)
    check_threads(threads)
    g.uk = uk
    cdef ptrdiff_t units = _split_units(&g, threads)
    cdef int nt = _team(threads, units, <double>g.N * g.OH * g.OW * g.CO * kh * kw * g.CG)
    cdef ptrdiff_t u
    cdef float *abuf
    cdef const float **ptrs
    cdef int failed = 0
    cdef int *failp = &failed
    with nogil, parallel(num_threads=nt):
        abuf = <float *>pyconv_aligned_alloc(g.MC * KC * sizeof(float))
        ptrs = <const float **>pyconv_aligned_alloc((g.MC + PYCONV_GEMM_MR) * sizeof(float *))
        if abuf != NULL and ptrs != NULL:
            for u in prange(units, schedule="static"):
                _im2col_unit(&g, u, abuf, ptrs)
        else:
            failp[0] = 1
        free(abuf)
        free(ptrs)
    _check_alloc(failed)


# ---------------------------------------------------------------------------------------------- narrow groups

def narrow_groups_supported(ptrdiff_t cg, ptrdiff_t og):
    """Whether the level in use has a narrow-group kernel for C_in/G = cg, C_out/G = og."""
    return uk.gconv_row != NULL and bool(uk.gconv_supported(cg, og))


cdef class NarrowGroupsPlan:
    """``conv2d_narrow_groups`` with its arguments checked once (see :class:`DirectPlan`); whether the
    level in use has the kernel is checked on each run (``pyconv.isa.use`` may change it)."""
    cdef pyconv_gc_geom g
    cdef object keep
    cdef ptrdiff_t N, OH
    cdef const float *x
    cdef const float *w
    cdef const int *idx
    cdef const float *bias
    cdef float *y
    cdef act_spec act

    def run(self, int threads):
        check_threads(threads)
        if self.N == 0 or self.OH == 0 or self.g.OW == 0:
            return
        _narrow_groups_check_level(&self.g)
        _narrow_groups_run(self, threads)


cdef void _narrow_groups_check_level(const pyconv_gc_geom *g) except *:
    cdef const pyconv_ukernels *k = uk
    if k.gconv_row == NULL or not k.gconv_supported(g.CG, g.OG):
        raise ValueError(f"no narrow-group kernel for {g.CG}->{g.OG} channels per group at level "
                         f"{k.name.decode()}")


def narrow_groups_plan(const float[:, :, :, ::1] x, const float[:, :, :, ::1] packed, const int[:, ::1] idx,
                       const float[::1] bias, float[:, :, :, ::1] y, int kh, int kw, int sh, int sw, int dh,
                       int dw, int pt, int pl, int groups, act):
    """The plan of ``conv2d_narrow_groups(x, ..., act, threads)``, for any thread count."""
    cdef NarrowGroupsPlan plan = NarrowGroupsPlan.__new__(NarrowGroupsPlan)
    plan.N, plan.OH = x.shape[0], y.shape[1]
    plan.g.OW = y.shape[2]
    plan.keep = (x, packed, idx, bias, y)
    if x.shape[0] == 0 or y.shape[1] == 0 or y.shape[2] == 0:
        return plan
    cdef pyconv_gc_geom g
    cdef ptrdiff_t N = x.shape[0]
    g.H, g.W, g.C, g.CO, g.OW = x.shape[1], x.shape[2], x.shape[3], y.shape[3], y.shape[2]
    g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.PT, g.PL = kh, kw, sh, sw, dh, dw, pt, pl
    _check_groups(groups, g.C, g.CO)
    g.CG, g.OG = g.C // groups, g.CO // groups
    _narrow_groups_check_level(&g)
    if (y.shape[0] != N or packed.shape[0] != _cdiv(g.CO, 16) or packed.shape[1] != <ptrdiff_t>kh * kw
            or packed.shape[2] != g.CG or packed.shape[3] != 16 or idx.shape[0] != g.CG or idx.shape[1] != 16):
        raise ValueError(f"narrow-group weights {tuple(packed.shape)} do not match x {tuple(x.shape)}, "
                         f"y {tuple(y.shape)}, kernel {kh}x{kw}, groups {groups}")
    cdef ptrdiff_t i, lane
    # The kernels index the input with these lanes: only the permutation packing makes is safe.
    for i in range(g.CG):
        for lane in range(16):
            if idx[i, lane] != (lane // g.OG) * g.CG + i:
                raise ValueError(f"idx must be the lane permutation pack_narrow_group_weights makes for "
                                 f"{g.CG}->{g.OG} channels per group")
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(pt, pl) < 0:
        raise ValueError("kernel, stride and dilation must be positive and pads non-negative")
    if bias is not None and bias.shape[0] != g.CO:
        raise ValueError(f"bias has {bias.shape[0]} entries, expected {g.CO}")
    plan.g = g
    plan.x, plan.w, plan.idx, plan.bias, plan.y = &x[0, 0, 0, 0], &packed[0, 0, 0, 0], &idx[0, 0], _opt_ptr(bias), \
        &y[0, 0, 0, 0]
    plan.act = act_spec_of(act)
    return plan


cdef void _narrow_groups_run(NarrowGroupsPlan plan, int threads) except *:
    cdef pyconv_gc_geom *g = &plan.g
    cdef ptrdiff_t N = plan.N, OH = plan.OH
    cdef ptrdiff_t xstride = g.H * g.W * g.C, ystride = OH * g.OW * g.CO
    cdef const float *xp = plan.x
    cdef const float *wp = plan.w
    cdef const int *ip = plan.idx
    cdef const float *bp = plan.bias
    cdef float *yp = plan.y
    cdef act_spec a = plan.act
    cdef const pyconv_ukernels *k = uk
    cdef int nt = _team(threads, N * OH, <double>N * OH * g.OW * g.CO * g.KH * g.KW * g.CG)
    cdef ptrdiff_t u
    with nogil:
        for u in prange(N * OH, schedule="static", num_threads=nt):
            k.gconv_row(g, xp + (u // OH) * xstride, wp, ip, bp,
                        yp + (u // OH) * ystride + (u % OH) * g.OW * g.CO, u % OH, a.fused)
            act_rows(k, &a, yp + (u // OH) * ystride + (u % OH) * g.OW * g.CO, 1, g.OW * g.CO, 0)


def conv2d_narrow_groups(const float[:, :, :, ::1] x, const float[:, :, :, ::1] packed, const int[:, ::1] idx,
                         const float[::1] bias, float[:, :, :, ::1] y, int kh, int kw, int sh, int sw, int dh,
                         int dw, int pt, int pl, int groups, act, int threads):
    """Group convolution for narrow groups, one output row per work unit.

    packed: (ceil(C_out/16), KH*KW, C_in/G, 16) IN, from ``pack_narrow_group_weights``;
    idx: (C_in/G, 16) IN lane permutations; other arguments as conv2d_direct.
    """
    check_threads(threads)
    narrow_groups_plan(x, packed, idx, bias, y, kh, kw, sh, sw, dh, dw, pt, pl, groups, act).run(threads)


# ---------------------------------------------------------------------------------------------- Winograd

ctypedef struct wino_geom:
    ptrdiff_t N, H, W, C, OH, OW, CO, PT, PL, G, CG, OG, P, NRP, TH, TW, tiles, M, TT, UT
    ptrdiff_t MT, blocks            # GEMM tiles (PYCONV_GEMM_MR Winograd tiles) and units of them, per image
    ptrdiff_t chunks, per_chunk     # output channels split over units: panels of an ungrouped layer,
                                    # or whole groups
    const float *x
    const float *packed       # (TT, G, P, CG, NR)
    const float *bias
    const float *zeros
    float *y
    act_spec act
    const pyconv_ukernels *uk


cdef ptrdiff_t _wino_unit_tiles(ptrdiff_t tt, ptrdiff_t c, ptrdiff_t co) noexcept nogil:
    """Tiles per Winograd work unit: as many whole GEMM tiles as keep the unit's transformed inputs and
    GEMM results (tt matrices each of tiles x C and tiles x C_out floats) within WINO_UNIT_FLOATS, within
    WINO_UNIT_TILES_MIN..MAX."""
    cdef ptrdiff_t tiles = WINO_UNIT_FLOATS // (tt * (c + co))
    tiles -= tiles % PYCONV_GEMM_MR
    return min(max(tiles, WINO_UNIT_TILES_MIN), WINO_UNIT_TILES_MAX)


cdef void _wino_unit(const wino_geom *g, ptrdiff_t unit, float *v, float *m, const float **ptrs) noexcept nogil:
    cdef ptrdiff_t ch = unit % g.chunks
    cdef ptrdiff_t n = unit // g.chunks // g.blocks
    cdef ptrdiff_t b = unit // g.chunks % g.blocks
    # Whole GEMM tiles of the image's: how its tiles group into GEMM rows, and so each output's sum
    # order (the 1- and 2-row tiles sum in phases), does not depend on the thread count.
    cdef ptrdiff_t t0 = b * g.MT // g.blocks * PYCONV_GEMM_MR
    cdef ptrdiff_t count = min((b + 1) * g.MT // g.blocks * PYCONV_GEMM_MR, g.tiles) - t0
    cdef ptrdiff_t ntiles = _cdiv(count, PYCONV_GEMM_MR)
    # The unit's output channels c0 .. c1: a chunk of an ungrouped layer's panels p0 .. p1, or the
    # groups g0 .. g1 of a grouped one (whose input channels are the only ones it transforms).
    cdef ptrdiff_t p0 = 0, p1 = g.P, g0 = 0, g1 = g.G
    if g.G == 1:
        p0 = ch * g.per_chunk
        p1 = min(p0 + g.per_chunk, g.P)
    else:
        g0 = ch * g.per_chunk
        g1 = min(g0 + g.per_chunk, g.G)
    cdef ptrdiff_t c0 = p0 * g.NRP + g0 * g.OG
    cdef ptrdiff_t c1 = min(p1 * g.NRP, g.CO) if g.G == 1 else g1 * g.OG
    cdef ptrdiff_t i0 = g0 * g.CG
    cdef const float *img = g.x + n * g.H * g.W * g.C + i0
    cdef float *out = g.y + n * g.OH * g.OW * g.CO + c0
    cdef ptrdiff_t t, ty, tx, xi, grp, p, nr, nrp, mt, mr, i, row, rows, cols, r
    cdef ptrdiff_t M = g.M
    cdef const float *blk
    cdef const float *nxt
    cdef float *tile_out
    for t in range(count):
        ty = (t0 + t) // g.TW
        tx = (t0 + t) - ty * g.TW
        g.uk.wino_input(<int>M, img, g.H, g.W, g.C, (g1 - g0) * g.CG, M * ty - g.PT, M * tx - g.PL, g.zeros,
                        v + t * g.C + i0, g.UT * g.C)
    # One GEMM per transformed tap: (count x C/G) by (C/G x C_out/G), per group, over the unit's tiles.
    for xi in range(g.TT):
        for grp in range(g0, g1):
            for mt in range(ntiles):
                for i in range(PYCONV_GEMM_MR):
                    row = min(mt * PYCONV_GEMM_MR + i, count - 1)
                    ptrs[mt * PYCONV_GEMM_MR + i] = v + (xi * g.UT + row) * g.C + grp * g.CG
            for p in range(p0, p1):
                nr = min(g.NRP, g.OG - p * g.NRP)
                nrp = _panel_stride(nr, g.NRP)
                # Blocks lie in the order they are used: the next one follows, except after the last.
                blk = g.packed + ((xi * g.G + grp) * g.P + p) * g.CG * g.NRP
                nxt = NULL if (xi == g.TT - 1 and grp == g1 - 1 and p == p1 - 1) else blk + g.CG * g.NRP
                for mt in range(ntiles):
                    mr = min(PYCONV_GEMM_MR, count - mt * PYCONV_GEMM_MR)
                    g.uk.igemm(nrp, mr, nr, 1, g.CG, ptrs + mt * PYCONV_GEMM_MR, blk,
                               m + (xi * g.UT + mt * PYCONV_GEMM_MR) * g.CO + grp * g.OG + p * g.NRP,
                               g.CO, NULL, NULL, 0, 0, _prefetch_slice(nxt, mt, g.CG, g.NRP))
    for t in range(count):
        ty = (t0 + t) // g.TW
        tx = (t0 + t) - ty * g.TW
        g.uk.wino_output(<int>M, m + t * g.CO + c0, g.UT * g.CO, NULL if g.bias == NULL else g.bias + c0, out,
                         g.OH, g.OW, g.CO, c1 - c0, M * ty, M * tx, g.act.fused)
        # The tile's (up to) MxM output pixels, cut at the bottom and right edges.
        rows = min(M, g.OH - M * ty)
        cols = min(M, g.OW - M * tx)
        tile_out = out + (M * ty * g.OW + M * tx) * g.CO
        if c1 - c0 == g.CO:
            act_rows(g.uk, &g.act, tile_out, rows, cols * g.CO, g.OW * g.CO)
        else:
            for r in range(rows):
                act_rows(g.uk, &g.act, tile_out + r * g.OW * g.CO, cols, c1 - c0, g.CO)


def conv2d_winograd(const float[:, :, :, ::1] x, const float[:, :, :, :, ::1] packed, const float[::1] bias,
                    float[:, :, :, ::1] y, int pt, int pl, int groups, act, int threads):
    """Winograd F(mxm, 3x3), m = 2, 4 or 6, for 3x3 stride-1 dilation-1 convolutions.

    packed: ((m+2)^2, G, P, C/G, NR) IN, from ``pack_winograd_weights``, whose first axis gives m; other
    arguments as conv2d_direct.  Work unit: a run of output tiles of one image, as many as keep its
    (m+2)^2 transformed input matrices and GEMM results in L2 (``_wino_unit_tiles``), in per-thread
    buffers.
    """
    check_threads(threads)
    if x.shape[0] == 0 or y.shape[1] == 0 or y.shape[2] == 0:
        return
    cdef wino_geom g
    g.N, g.H, g.W, g.C = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    g.OH, g.OW, g.CO = y.shape[1], y.shape[2], y.shape[3]
    g.PT, g.PL, g.G = pt, pl, groups
    _check_groups(groups, g.C, g.CO)
    g.CG, g.OG = g.C // groups, g.CO // groups
    g.P, g.NRP = packed.shape[2], packed.shape[4]
    g.TT = packed.shape[0]
    g.M = {16: 2, 36: 4, 64: 6}.get(g.TT, 0)
    _check_aligned(&packed[0, 0, 0, 0, 0], "packed weights")
    if (y.shape[0] != g.N or g.M == 0 or packed.shape[1] != groups or not pyconv_valid_panel(g.NRP)
            or g.P != _cdiv(g.OG, g.NRP) or packed.shape[3] != g.CG):
        raise ValueError(f"packed Winograd weights {tuple(packed.shape)} do not match x {tuple(x.shape)}, "
                         f"y {tuple(y.shape)}, groups {groups}")
    if pt < 0 or pl < 0:
        raise ValueError("pads must be non-negative")
    if bias is not None and bias.shape[0] != g.CO:
        raise ValueError(f"bias has {bias.shape[0]} entries, expected {g.CO}")
    g.TH, g.TW = _cdiv(g.OH, g.M), _cdiv(g.OW, g.M)
    g.tiles = g.TH * g.TW
    g.UT = _wino_unit_tiles(g.TT, g.C, g.CO)
    g.x, g.packed, g.y, g.act = &x[0, 0, 0, 0], &packed[0, 0, 0, 0, 0], &y[0, 0, 0, 0], act_spec_of(act)
    g.bias = _opt_ptr(bias)
    g.uk = uk
    cdef const float[::1] zeros = _zeros(max(g.C, 16))
    g.zeros = &zeros[0]
    cdef double macs = <double>g.N * g.tiles * g.TT * g.CO * g.CG
    cdef int want = _team(threads, g.N * g.tiles * g.P, macs)
    g.MT = _cdiv(g.tiles, PYCONV_GEMM_MR)
    g.blocks = _pixel_blocks(g.N, g.MT, g.UT // PYCONV_GEMM_MR, want, want)
    # A small image (a few units of tiles) splits its output channels too: an ungrouped layer's panels,
    # each chunk transforming the unit's input tiles again (cheaper than leaving a thread idle), or a
    # grouped layer's groups, each chunk transforming only its groups' channels.
    _chunking(g.N * g.blocks, g.P if groups == 1 else groups, want, &g.chunks, &g.per_chunk)
    cdef ptrdiff_t units = g.N * g.blocks * g.chunks
    cdef int nt = _team(threads, units, macs)
    cdef ptrdiff_t u
    cdef float *v
    cdef float *m
    cdef const float **ptrs
    cdef int failed = 0
    cdef int *failp = &failed
    with nogil, parallel(num_threads=nt):
        # Kept by each thread for its next call (scratch.c): allocated and freed on every call, these
        # buffers were faulted in anew each time.
        v = <float *>pyconv_thread_scratch(0, g.TT * g.UT * g.C * sizeof(float))
        m = <float *>pyconv_thread_scratch(1, g.TT * g.UT * g.CO * sizeof(float))
        ptrs = <const float **>pyconv_thread_scratch(2, (g.UT + PYCONV_GEMM_MR) * sizeof(float *))
        if v != NULL and m != NULL and ptrs != NULL:
            for u in prange(units, schedule="static"):
                _wino_unit(&g, u, v, m, ptrs)
        else:
            failp[0] = 1
    _check_alloc(failed)


# ---------------------------------------------------------------------------------------------- depthwise

cdef pyconv_dw_geom _dw_geom(const float[:, :, :, ::1] x, const float[:, ::1] w, float[:, :, :, ::1] y,
                             int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, int in_act) except *:
    cdef pyconv_dw_geom g
    if in_act < 0 or in_act > 2:
        raise ValueError(f"in_act must be 0 (none), 1 (relu) or 2 (relu6), got {in_act}")
    g.in_act = in_act
    g.H, g.W, g.C = x.shape[1], x.shape[2], x.shape[3]
    g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.PT, g.PL, g.OW = kh, kw, sh, sw, dh, dw, pt, pl, y.shape[2]
    g.prefetch = g.H * g.W * g.C * sizeof(float) >= PYCONV_PREFETCH_MIN_BYTES
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(pt, pl) < 0:
        raise ValueError("kernel, stride and dilation must be positive and pads non-negative")
    if g.C < 1:
        raise ValueError(f"x {tuple(x.shape)[:4]} must have channels")
    if w.shape[0] != <ptrdiff_t>kh * kw or w.shape[1] != g.C:
        raise ValueError(f"depthwise weights {tuple(w.shape)} do not match kernel {kh}x{kw} and C={g.C}")
    return g


cdef class DepthwisePlan:
    """``depthwise_conv2d`` with its arguments checked once (see :class:`DirectPlan`)."""
    cdef pyconv_dw_geom g
    cdef object keep
    cdef ptrdiff_t N, OH
    cdef const float *x
    cdef const float *w
    cdef const float *bias
    cdef float *y
    cdef act_spec act

    def run(self, int threads):
        check_threads(threads)
        if self.N == 0 or self.OH == 0 or self.g.OW == 0:
            return
        _depthwise_run(self, threads)


def depthwise_plan(const float[:, :, :, ::1] x, const float[:, ::1] w, const float[::1] bias,
                   float[:, :, :, ::1] y, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl,
                   act, int in_act=0):
    """The plan of ``depthwise_conv2d(x, ..., act, threads, in_act)``, for any thread count."""
    cdef DepthwisePlan plan = DepthwisePlan.__new__(DepthwisePlan)
    plan.N, plan.OH = x.shape[0], y.shape[1]
    plan.g.OW = y.shape[2]
    plan.keep = (x, w, bias, y)
    if x.shape[0] == 0 or y.shape[1] == 0 or y.shape[2] == 0:
        return plan
    plan.g = _dw_geom(x, w, y, kh, kw, sh, sw, dh, dw, pt, pl, in_act)
    if y.shape[0] != x.shape[0] or y.shape[3] != plan.g.C or (bias is not None and bias.shape[0] != plan.g.C):
        raise ValueError(f"depthwise output {tuple(y.shape)} or bias does not match x {tuple(x.shape)}")
    plan.x, plan.w, plan.bias, plan.y = &x[0, 0, 0, 0], &w[0, 0], _opt_ptr(bias), &y[0, 0, 0, 0]
    plan.act = act_spec_of(act)
    return plan


cdef void _depthwise_run(DepthwisePlan plan, int threads) except *:
    cdef pyconv_dw_geom *g = &plan.g
    cdef ptrdiff_t N = plan.N, OH = plan.OH
    cdef ptrdiff_t rows = N * OH, blocks = _cdiv(g.C, 32)
    cdef ptrdiff_t chunks, blocks_per_chunk
    _chunking(rows, blocks, threads, &chunks, &blocks_per_chunk)
    cdef ptrdiff_t chunk = blocks_per_chunk * 32
    cdef ptrdiff_t xstride = g.H * g.W * g.C, ystride = OH * g.OW * g.C
    cdef const float *xp = plan.x
    cdef const float *wp = plan.w
    cdef const float *bp = plan.bias
    cdef float *yp = plan.y
    cdef int nt = _team(threads, rows * chunks, <double>N * OH * g.OW * g.C * g.KH * g.KW)
    cdef ptrdiff_t u, row, c0
    cdef const pyconv_ukernels *k = uk
    cdef act_spec a = plan.act
    with nogil:
        for u in prange(rows * chunks, schedule="static", num_threads=nt):
            row = u // chunks
            c0 = (u % chunks) * chunk
            k.dwconv_row(g, xp + (row // OH) * xstride, wp, bp,
                         yp + (row // OH) * ystride + (row % OH) * g.OW * g.C, row % OH, 0, g.OW,
                         c0, min(c0 + chunk, g.C), a.fused)
            if chunks == 1:
                act_rows(k, &a, yp + (row // OH) * ystride + (row % OH) * g.OW * g.C, 1, g.OW * g.C, 0)
            else:
                act_rows(k, &a, yp + (row // OH) * ystride + (row % OH) * g.OW * g.C + c0, g.OW,
                         min(chunk, g.C - c0), g.C)


def depthwise_conv2d(const float[:, :, :, ::1] x, const float[:, ::1] w, const float[::1] bias,
                     float[:, :, :, ::1] y, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl,
                     act, int threads, int in_act=0):
    """Depthwise convolution, one filter per channel. w: (KH*KW, C) IN; y: (N, OH, OW, C) OUT;
    act as conv2d_direct; in_act: 0 none, 1 relu or 2 relu6, applied to the input values as they are
    read (the row kernels fuse only those).

    Work unit: one output row, or a 32-channel-aligned slice of it when the image has too few rows
    to keep every thread busy (7x7x1024).
    """
    check_threads(threads)
    depthwise_plan(x, w, bias, y, kh, kw, sh, sw, dh, dw, pt, pl, act, in_act).run(threads)


# ---------------------------------------------------------------------------------------- few input channels

ctypedef struct rows_geom:
    ptrdiff_t C, H, W, OH, OW, CO, KH, KW, SH, SW, DH, DW, PT, PL
    ptrdiff_t P, NRP, K        # panels, panel width, K = C*KH*KW taps in (c, kh, kw) order
    ptrdiff_t PS, CS, RS, IS   # floats between pixels, channels, rows and images of the input
    ptrdiff_t WP               # floats per padded copy of an input row (rows at the image's top/bottom)
    ptrdiff_t SPAN             # input columns one tile's window covers
    const float *x
    const float *packed
    const float *bias
    float *y
    act_spec act
    const pyconv_ukernels *uk


cdef inline void _rows_tile(const rows_geom *g, const float *const *ptrs, ptrdiff_t S, ptrdiff_t off,
                            ptrdiff_t mr, float *y) noexcept nogil:
    cdef ptrdiff_t p, nr
    for p in range(g.P):
        nr = min(g.NRP, g.CO - p * g.NRP)
        g.uk.nchwconv(S, mr, nr, _panel_stride(nr, g.NRP), g.K, ptrs, off, g.packed + p * g.K * g.NRP,
                      y + p * g.NRP, g.CO, NULL if g.bias == NULL else g.bias + p * g.NRP, g.act.fused)
        act_rows(g.uk, &g.act, y + p * g.NRP, mr, nr, g.CO)


cdef void _rows_unit(const rows_geom *g, ptrdiff_t unit, float *rows, float *edge, const float **ptrs
                     ) noexcept nogil:
    """Output row oh of image n, PYCONV_ROWS_MR pixels at a time times every panel.  Where the window
    stays inside the image the micro-kernel reads the input in place, its pixels PS*SW floats apart;
    a tile whose window crosses the left or right edge reads a zero-padded copy of just its window, and
    an output row whose window crosses the top or bottom, padded copies of whole rows.

    Per-thread buffers: rows, C*KH padded input rows of WP floats; edge, C*KH runs of SPAN floats;
    ptrs, 3*K tap pointers: into rows and into edge (both set once per thread), into the input (set
    here)."""
    cdef const float **in_ptrs = ptrs + 2 * g.K
    cdef ptrdiff_t n = unit // g.OH, oh = unit % g.OH
    cdef ptrdiff_t ih0 = oh * g.SH - g.PT
    cdef ptrdiff_t c, kh, kw, k, ih, iw, j, t, ow0, lo, mr, inside
    cdef const float *src
    cdef float *dst
    cdef float *y = g.y + (n * g.OH + oh) * g.OW * g.CO
    cdef bint in_place = ih0 >= 0 and ih0 + (g.KH - 1) * g.DH < g.H
    if not in_place:
        for c in range(g.C):
            for kh in range(g.KH):
                dst = rows + (c * g.KH + kh) * g.WP
                ih = ih0 + kh * g.DH
                memset(dst, 0, g.WP * sizeof(float))
                if 0 <= ih < g.H:
                    src = g.x + n * g.IS + c * g.CS + ih * g.RS
                    inside = min(g.W, g.WP - g.PL)
                    for j in range(inside):
                        dst[g.PL + j] = src[j * g.PS]
    else:
        for c in range(g.C):
            for kh in range(g.KH):
                for kw in range(g.KW):
                    k = (c * g.KH + kh) * g.KW + kw
                    in_ptrs[k] = g.x + n * g.IS + c * g.CS + (ih0 + kh * g.DH) * g.RS + kw * g.DW * g.PS
    # Prefetch the input rows that the next output row adds (a model's input is cold, and the copies
    # read it a line at a time: 224x224x3 -> 112x112x32 with a cold input, 0.093 -> 0.077 ms at
    # 2 threads).
    if oh + 1 < g.OH:
        for kh in range(max(g.KH - g.SH, 0), g.KH):
            ih = (oh + 1) * g.SH - g.PT + kh * g.DH
            if 0 <= ih < g.H:
                if g.PS == 1:
                    for c in range(g.C):
                        pyconv_prefetch_floats(g.x + n * g.IS + c * g.CS + ih * g.RS, g.W)
                else:
                    pyconv_prefetch_floats(g.x + n * g.IS + ih * g.RS, g.W * g.PS)
    for t in range(_cdiv(g.OW, PYCONV_ROWS_MR)):
        ow0 = t * PYCONV_ROWS_MR
        mr = min(PYCONV_ROWS_MR, g.OW - ow0)
        lo = ow0 * g.SW - g.PL
        if not in_place:
            _rows_tile(g, ptrs, g.SW, ow0 * g.SW, mr, y + ow0 * g.CO)
        elif lo >= 0 and lo + g.SPAN <= g.W:
            _rows_tile(g, in_ptrs, g.SW * g.PS, lo * g.PS, mr, y + ow0 * g.CO)
        else:
            for c in range(g.C):
                for kh in range(g.KH):
                    dst = edge + (c * g.KH + kh) * g.SPAN
                    src = g.x + n * g.IS + c * g.CS + (ih0 + kh * g.DH) * g.RS
                    for j in range(g.SPAN):
                        iw = lo + j
                        dst[j] = src[iw * g.PS] if 0 <= iw < g.W else 0.0
            _rows_tile(g, ptrs + g.K, g.SW, 0, mr, y + ow0 * g.CO)


cdef class RowsPlan:
    """``conv2d_few_channels`` with its arguments checked once (see :class:`DirectPlan`)."""
    cdef rows_geom g
    cdef object keep
    cdef ptrdiff_t units

    def run(self, int threads):
        check_threads(threads)
        if self.units == 0:
            return
        _rows_run(self.g, self.units, threads)


def few_channels_plan(const float[:, :, :, ::1] x, const float[:, :, :, ::1] packed, const float[::1] bias,
                      float[:, :, :, ::1] y, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl,
                      act, bint channels_first):
    """The plan of ``conv2d_few_channels(x, ..., act, threads, channels_first)``, for any thread count."""
    cdef RowsPlan plan = RowsPlan.__new__(RowsPlan)
    plan.keep = (x, packed, bias, y)
    plan.units = 0
    if x.shape[0] == 0 or y.shape[1] == 0 or y.shape[2] == 0:
        return plan
    cdef rows_geom g
    if channels_first:
        g.C, g.H, g.W = x.shape[1], x.shape[2], x.shape[3]
        g.PS, g.CS, g.RS = 1, g.H * g.W, g.W
    else:
        g.H, g.W, g.C = x.shape[1], x.shape[2], x.shape[3]
        g.PS, g.CS, g.RS = g.C, 1, g.W * g.C
    g.IS = g.C * g.H * g.W
    g.OH, g.OW, g.CO = y.shape[1], y.shape[2], y.shape[3]
    g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.PT, g.PL = kh, kw, sh, sw, dh, dw, pt, pl
    g.P, g.K, g.NRP = packed.shape[1], packed.shape[2], packed.shape[3]
    _check_groups(1, g.C, g.CO)
    _check_aligned(&packed[0, 0, 0, 0], "packed weights")
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(pt, pl) < 0:
        raise ValueError("kernel, stride and dilation must be positive and pads non-negative")
    if (y.shape[0] != x.shape[0] or packed.shape[0] != 1 or not pyconv_valid_panel(g.NRP)
            or g.P != _cdiv(g.CO, g.NRP) or g.K != g.C * kh * kw):
        raise ValueError(f"packed weights {tuple(packed.shape)} do not match x {tuple(x.shape)} "
                         f"({'NCHW' if channels_first else 'NHWC'}), y {tuple(y.shape)}, kernel {kh}x{kw}")
    if bias is not None and bias.shape[0] != g.CO:
        raise ValueError(f"bias has {bias.shape[0]} entries, expected {g.CO}")
    # Every tile computes PYCONV_ROWS_MR pixels, so a tile's window and the padded rows reach the last
    # one of the last tile.
    g.SPAN = (PYCONV_ROWS_MR - 1) * g.SW + (g.KW - 1) * g.DW + 1
    g.WP = (_cdiv(g.OW, PYCONV_ROWS_MR) - 1) * PYCONV_ROWS_MR * g.SW + g.SPAN
    g.x, g.packed, g.y, g.act = &x[0, 0, 0, 0], &packed[0, 0, 0, 0], &y[0, 0, 0, 0], act_spec_of(act)
    g.bias = _opt_ptr(bias)
    plan.g = g
    plan.units = x.shape[0] * g.OH
    return plan


cdef void _rows_run(rows_geom g, ptrdiff_t units, int threads) except *:
    g.uk = uk
    cdef int nt = _team(threads, units, <double>units * g.OW * g.CO * g.K)
    cdef ptrdiff_t u, k
    cdef float *rows
    cdef float *edge
    cdef const float **ptrs
    cdef int failed = 0
    cdef int *failp = &failed
    with nogil, parallel(num_threads=nt):
        rows = <float *>pyconv_aligned_alloc(g.C * g.KH * g.WP * sizeof(float))
        edge = <float *>pyconv_aligned_alloc(g.C * g.KH * g.SPAN * sizeof(float))
        ptrs = <const float **>pyconv_aligned_alloc(3 * g.K * sizeof(float *))
        if rows != NULL and edge != NULL and ptrs != NULL:
            # Tap (c, kh, kw) reads its padded row or edge run from column kw*DW on.
            for k in range(g.K):
                ptrs[k] = rows + (k // g.KW) * g.WP + (k % g.KW) * g.DW
                ptrs[g.K + k] = edge + (k // g.KW) * g.SPAN + (k % g.KW) * g.DW
            for u in prange(units, schedule="static"):
                _rows_unit(&g, u, rows, edge, ptrs)
        else:
            failp[0] = 1
        free(rows)
        free(edge)
        free(ptrs)
    _check_alloc(failed)


def conv2d_few_channels(const float[:, :, :, ::1] x, const float[:, :, :, ::1] packed, const float[::1] bias,
                        float[:, :, :, ::1] y, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl,
                        act, int threads, bint channels_first):
    """An ungrouped convolution of an input with few channels (a model's first layer, an RGB image), in
    NHWC or, with ``channels_first``, in NCHW (a model's NCHW input then needs no transpose); writes
    NHWC.  In NHWC a tap would be only a few floats long, too short for the GEMM's row pointers: here
    a tap is one input channel at one kernel position, and the micro-kernel reads its pixels in place,
    a stride apart.

    x: (N, H, W, C) IN, or (N, C, H, W) with ``channels_first``; packed: (1, P, C*KH*KW, NR) IN, rows
    in (c, kh, kw) order (``packing.pack_channel_rows``); bias: (C_out,) or None;
    y: (N, OH, OW, C_out) OUT; pt, pl: top and left pads; act as conv2d_direct.  Work unit: one output
    row.
    """
    check_threads(threads)
    few_channels_plan(x, packed, bias, y, kh, kw, sh, sw, dh, dw, pt, pl, act, channels_first).run(threads)


# ---------------------------------------------------------------------------------------------- separable

ctypedef struct sep_geom:
    pyconv_dw_geom dw
    ptrdiff_t N, OH, CO, P, NRP
    ptrdiff_t tiles            # GEMM tiles per image: whole tiles of PYCONV_GEMM_MR pixels, then the rest
    ptrdiff_t per_block        # most tiles whose depthwise outputs one pass keeps in the buffer
    const float *x
    const float *wd
    const float *bd
    const float *packed        # (1, P, C, NR)
    const float *bias
    const float *res
    float *y
    act_spec act_dw, act
    const pyconv_ukernels *uk


cdef void _sep_block(const sep_geom *g, ptrdiff_t n, ptrdiff_t t0, ptrdiff_t t1, ptrdiff_t pa, ptrdiff_t pb,
                     float *buf, const float **ptrs) noexcept nogil:
    """Tiles t0 .. t1 of image n, the first from panel pa on, the last up to panel pb: the tiles'
    depthwise outputs (parts of rows where a tile starts or ends inside one) into buf, then times the
    pointwise panels, each panel over all its tiles while its weights are in cache."""
    cdef ptrdiff_t C = g.dw.C, OW = g.dw.OW, Q = g.OH * g.dw.OW
    cdef ptrdiff_t q0 = t0 * PYCONV_GEMM_MR
    cdef ptrdiff_t q1 = min(t1 * PYCONV_GEMM_MR, Q)
    cdef ptrdiff_t rows = q1 - q0
    cdef ptrdiff_t kblocks = _cdiv(C, KC)
    cdef ptrdiff_t p0 = pa if t1 - t0 == 1 else 0
    cdef ptrdiff_t p1 = pb if t1 - t0 == 1 else g.P
    cdef ptrdiff_t q = q0, r = q0 // OW, ow0, ow1
    cdef ptrdiff_t t, i, kb, c0, kc, p, nr, nrp, mr, off, ta, tb
    cdef const float *blk
    cdef const float *nxt
    while q < q1:
        ow0 = q - r * OW
        ow1 = min(OW, q1 - r * OW)
        g.uk.dwconv_row(&g.dw, g.x + n * g.dw.H * g.dw.W * C, g.wd, g.bd, buf + (q - q0) * C, r, ow0, ow1,
                        0, C, g.act_dw.fused)
        act_rows(g.uk, &g.act_dw, buf + (q - q0) * C, 1, (ow1 - ow0) * C, 0)
        q = q + ow1 - ow0
        r = r + 1
    for kb in range(kblocks):
        c0 = kb * KC
        kc = min(KC, C - c0)
        for t in range(t1 - t0):
            for i in range(PYCONV_GEMM_MR):
                ptrs[t * PYCONV_GEMM_MR + i] = buf + min(t * PYCONV_GEMM_MR + i, rows - 1) * C + c0
        for p in range(p0, p1):
            nr = min(g.NRP, g.CO - p * g.NRP)
            nrp = _panel_stride(nr, g.NRP)
            blk = g.packed + p * C * g.NRP + c0 * nrp
            if p + 1 < p1:
                nxt = blk + C * g.NRP
            elif c0 + 2 * kc <= C:
                nxt = g.packed + (p0 * C + c0 + kc) * g.NRP
            else:
                nxt = NULL
            ta = 1 if p < pa else 0
            tb = t1 - t0 - (1 if p >= pb else 0)
            for t in range(ta, tb):
                mr = min(PYCONV_GEMM_MR, rows - t * PYCONV_GEMM_MR)
                off = (n * Q + q0 + t * PYCONV_GEMM_MR) * g.CO + p * g.NRP
                g.uk.igemm(nrp, mr, nr, 1, kc, ptrs + t * PYCONV_GEMM_MR, blk, g.y + off, g.CO,
                           NULL if g.bias == NULL else g.bias + p * g.NRP,
                           g.res + off if kb == 0 and g.res != NULL else NULL,
                           kb > 0, g.act.fused if kb == kblocks - 1 else 0,
                           _prefetch_slice(nxt, t - ta, kc, g.NRP))
                if kb == kblocks - 1:
                    act_rows(g.uk, &g.act, g.y + off, mr, nr, g.CO)


cdef inline ptrdiff_t _sep_last_tile_cost(const sep_geom *g) noexcept nogil:
    """The work of an image's last tile per panel, in pixel rows of a full tile (see _sep_item_at)."""
    return g.uk.igemm_tile_rows(g.OH * g.dw.OW - (g.tiles - 1) * PYCONV_GEMM_MR)


cdef ptrdiff_t _sep_item_at(const sep_geom *g, ptrdiff_t cost) noexcept nogil:
    """The first (image, tile, panel) item, numbered image-major then tile then panel, that starts at or
    after ``cost`` in units of a panel's work on one pixel row of a tile: every tile but an image's last
    weighs PYCONV_GEMM_MR per panel, the last _sep_last_tile_cost."""
    cdef ptrdiff_t full = (g.tiles - 1) * PYCONV_GEMM_MR * g.P
    cdef ptrdiff_t last = _sep_last_tile_cost(g)
    cdef ptrdiff_t per_image = full + last * g.P
    cdef ptrdiff_t n = cost // per_image
    cdef ptrdiff_t r = cost - n * per_image
    if r < full:
        return (n * g.tiles) * g.P + _cdiv(r, PYCONV_GEMM_MR)
    return (n * g.tiles + g.tiles - 1) * g.P + _cdiv(r - full, last)


cdef void _sep_share(const sep_geom *g, ptrdiff_t share, ptrdiff_t shares, float *buf,
                     const float **ptrs) noexcept nogil:
    """Share ``share`` of ``shares`` equal shares of the layer's work: a contiguous run of items, cut
    where the work is split evenly even inside a tile (its panels then go to two threads, each computing
    the tile's depthwise outputs), done in blocks of at most per_block tiles.  Which thread computes an
    output changes nothing in it: the tiles are the same whoever runs them."""
    cdef ptrdiff_t total = g.N * ((g.tiles - 1) * PYCONV_GEMM_MR + _sep_last_tile_cost(g)) * g.P
    cdef ptrdiff_t i = _sep_item_at(g, total * share // shares)
    cdef ptrdiff_t end = _sep_item_at(g, total * (share + 1) // shares)
    cdef ptrdiff_t tile = i // g.P, pa = i % g.P
    cdef ptrdiff_t last = _cdiv(end, g.P), pb = end - (last - 1) * g.P
    cdef ptrdiff_t n, stop, count, blocks, b, t0, t1
    if i >= end:
        return
    # Tiles numbered across images; the share is tiles tile .. last, the first from panel pa on, the
    # last up to panel pb.  Each image's part is cut into blocks of equal size: a short last block would
    # read all the pointwise weights for a tile or two.
    while tile < last:
        n = tile // g.tiles
        stop = min(last, (n + 1) * g.tiles)
        count = stop - tile
        blocks = _cdiv(count, g.per_block)
        for b in range(blocks):
            t0 = tile + b * count // blocks
            t1 = tile + (b + 1) * count // blocks
            _sep_block(g, n, t0 - n * g.tiles, t1 - n * g.tiles, pa if b == 0 else 0,
                       pb if t1 == last else g.P, buf, ptrs)
        tile = stop
        pa = 0


cdef class SeparablePlan:
    """``separable_conv2d`` with its arguments checked once (see DirectPlan).  The buffer of the
    two-step path is allocated on that path's first run and kept (up to SEP_KEPT_FLOATS)."""
    cdef sep_geom g
    cdef object keep          # x, wd, bd, packed, bias, y, residual
    cdef tuple window         # kh, kw, sh, sw, dh, dw, pt, pl
    cdef tuple acts           # act_dw, act as given
    cdef object mid
    cdef DirectPlan pointwise
    cdef double macs

    def run(self, int threads):
        check_threads(threads)
        if self.g.N == 0 or self.g.OH == 0 or self.g.dw.OW == 0:
            return
        cdef ptrdiff_t blocks = self.g.N * _cdiv(self.g.tiles, self.g.per_block)
        if threads > 1 and blocks < 4 * threads and self.g.dw.C * self.g.CO > SEP_SHARED_WEIGHTS:
            self._two_steps(threads)
        else:
            _sep_run(self.g, threads, self.macs)

    def _two_steps(self, int threads):
        x, wd, bd, packed, bias, y, residual = self.keep
        mid, pointwise = self.mid, self.pointwise
        if pointwise is None:
            mid = _aligned_empty((self.g.N, self.g.OH, self.g.dw.OW, self.g.dw.C))
            pointwise = direct_plan(mid, packed, bias, y, 1, 1, 1, 1, 1, 1, 0, 0, 1, self.acts[1], residual)
            # Kept for the next run unless large (many threads make this path serve larger images).
            if self.g.N * self.g.OH * self.g.dw.OW * self.g.dw.C <= SEP_KEPT_FLOATS:
                self.mid, self.pointwise = mid, pointwise
        depthwise_conv2d(x, wd, bd, mid, *self.window, self.acts[0], threads, self.g.dw.in_act)
        pointwise.run(threads)


def separable_plan(const float[:, :, :, ::1] x, const float[:, ::1] wd, const float[::1] bd,
                   const float[:, :, :, ::1] packed, const float[::1] bias, float[:, :, :, ::1] y,
                   int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, act_dw, act,
                   const float[:, :, :, ::1] residual=None, int in_act=0):
    """The plan of ``separable_conv2d(x, ..., act, threads, residual, in_act)``, for any thread count."""
    cdef SeparablePlan plan = SeparablePlan.__new__(SeparablePlan)
    plan.g.N, plan.g.OH, plan.g.dw.OW = x.shape[0], y.shape[1], y.shape[2]
    plan.keep = (x, wd, bd, packed, bias, y, residual)
    plan.window = (kh, kw, sh, sw, dh, dw, pt, pl)
    plan.acts = (act_dw, act)
    if x.shape[0] == 0 or y.shape[1] == 0 or y.shape[2] == 0:
        return plan
    cdef sep_geom g
    g.dw = _dw_geom(x, wd, y, kh, kw, sh, sw, dh, dw, pt, pl, in_act)
    cdef ptrdiff_t C = g.dw.C
    g.N, g.OH, g.CO = x.shape[0], y.shape[1], y.shape[3]
    g.P, g.NRP = packed.shape[1], packed.shape[3]
    if g.CO < 1:
        raise ValueError(f"y {tuple(y.shape)[:4]} must have channels")
    _check_aligned(&packed[0, 0, 0, 0], "packed weights")
    if (y.shape[0] != g.N or packed.shape[0] != 1 or packed.shape[2] != C
            or not pyconv_valid_panel(g.NRP) or g.P != _cdiv(g.CO, g.NRP)):
        raise ValueError(f"pointwise weights {tuple(packed.shape)} do not match x {tuple(x.shape)}, "
                         f"y {tuple(y.shape)}")
    if (bd is not None and bd.shape[0] != C) or (bias is not None and bias.shape[0] != g.CO):
        raise ValueError("separable biases do not match the channel counts")
    g.tiles = _cdiv(g.OH * g.dw.OW, PYCONV_GEMM_MR)
    g.per_block = max(1, min(SEP_TILES_MAX, SEP_BUFFER_FLOATS // (PYCONV_GEMM_MR * C)))
    g.x, g.wd, g.bd, g.packed, g.bias, g.y = &x[0, 0, 0, 0], &wd[0, 0], _opt_ptr(bd), &packed[0, 0, 0, 0], \
        _opt_ptr(bias), &y[0, 0, 0, 0]
    g.act_dw, g.act = act_spec_of(act_dw), act_spec_of(act)
    g.res = _residual_ptr(residual, y)
    plan.g = g
    plan.macs = <double>g.N * g.OH * g.dw.OW * C * (g.CO + <double>kh * kw)
    return plan


cdef void _sep_run(sep_geom g, int threads, double macs) except *:
    check_threads(threads)
    g.uk = uk
    cdef ptrdiff_t C = g.dw.C
    cdef int nt = _team(threads, g.N * g.tiles * g.P, macs)
    cdef ptrdiff_t share
    cdef ptrdiff_t rows_max = g.per_block * PYCONV_GEMM_MR
    cdef float *buf
    cdef const float **ptrs
    cdef int failed = 0
    cdef int *failp = &failed
    with nogil, parallel(num_threads=nt):
        buf = <float *>pyconv_aligned_alloc(rows_max * C * sizeof(float))
        ptrs = <const float **>pyconv_aligned_alloc(rows_max * sizeof(float *))
        if buf != NULL and ptrs != NULL:
            # One share per thread of the team asked for; a smaller team takes several, in order.
            for share in prange(nt, schedule="static"):
                _sep_share(&g, share, nt, buf, ptrs)
        else:
            failp[0] = 1
        free(buf)
        free(ptrs)
    _check_alloc(failed)


def separable_conv2d(const float[:, :, :, ::1] x, const float[:, ::1] wd, const float[::1] bd,
                     const float[:, :, :, ::1] packed, const float[::1] bias, float[:, :, :, ::1] y,
                     int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, act_dw, act,
                     int threads, const float[:, :, :, ::1] residual=None, int in_act=0):
    """Depthwise then pointwise, fused: each work unit computes the depthwise outputs of a block of
    pixels into a per-thread buffer and multiplies them by the packed pointwise weights (1, P, C, NR)
    at once; residual as in conv2d_direct; in_act as in depthwise_conv2d.

    Every unit reads all the pointwise weights.  When they outgrow 2 MB and the image is too small to
    give every thread several units (7x7x1024), the two steps run one after the other instead, the
    pointwise one split by output channels, through a buffer as small as that image.
    ``separable_plan`` checks the same arguments once (and keeps that buffer) for repeated runs.
    """
    separable_plan(x, wd, bd, packed, bias, y, kh, kw, sh, sw, dh, dw, pt, pl, act_dw, act, residual,
                   in_act).run(threads)


# ---------------------------------------------------------------------------------------------- helpers

_zero_floats = None


cdef const float[::1] _zeros(ptrdiff_t n):
    """At least n + 16 zero floats, shared by every call (kernels only read them): allocating them per
    call was a noticeable part of a small layer's cost."""
    global _zero_floats
    if _zero_floats is None or _zero_floats.shape[0] < n + 16:
        import numpy as np
        _zero_floats = np.zeros(max(n + 16, 4096), dtype=np.float32)
        _zero_floats.flags.writeable = False
    return _zero_floats


cdef void _check_alloc(int failed) except *:
    if failed:
        raise MemoryError("pyconv: could not allocate a kernel work buffer")


def max_threads():
    """Threads OpenMP would use by default (1 in a sequential build)."""
    IF PYCONV_OPENMP:
        return omp_get_max_threads()
    ELSE:
        return 1


def start_threads(int threads):
    """Run one empty parallel region on ``threads`` threads, so that OpenMP creates its workers now
    (about 0.3 ms here) rather than in the first layer of the first run."""
    cdef ptrdiff_t u
    cdef int sink = 0
    check_threads(threads)
    with nogil:
        for u in prange(threads, schedule="static", num_threads=threads):
            sink = sink + 0
