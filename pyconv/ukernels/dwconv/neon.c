/*
 * The depthwise row on aarch64 NEON: a range of columns and channels of one NHWC output row, in blocks
 * of up to 4 output pixels x 8 channels (8 accumulators); channels in blocks of 8, then 4, then the last
 * 1-3 in the low lanes of one vector.
 *
 * Expected throughput (from instruction counts; nothing here can time NEON code): a Cortex-A76 issues
 * 2 128-bit FMAs per cycle (latency 4) and 2 loads per cycle.  A 3x3 stride-1 block of 4 pixels x 8
 * channels is 72 FMAs (36 cycles) against 36 input loads (each input vector of a kernel row loaded once
 * and used by every pixel that reads it: 6 columns x 2 vectors x 3 rows) and 18 weight loads (27
 * cycles) and 8 stores: FMA-bound, the 8 accumulators exactly covering the latency
 * (2 pipes x 4 cycles).  gcc 12 emits about 165 instructions for the block (72 FMA, about 55 loads,
 * address arithmetic and register moves), about 41 cycles of the 4-wide decode: about 14 FLOP/cycle,
 * 85-90% of the FMA peak for data in L1 (about 36 GFLOP/s per core at 2.6 GHz).  Stride 2 loads 9 x 2 x
 * 3 = 54 input vectors for the same 72 FMAs (36 cycles of loads with the weights: both bounds meet).
 * A fused input relu adds one FMAX per loaded input vector on the same two pipes (stride 1: 36 + 18 =
 * 54 cycles, 11 FLOP/cycle).  Other kernels load an input per FMA and a weight per 4 (no streaming):
 * load-bound at about 13 FLOP/cycle.  Layers from 112x112x32 up stream from L2 or memory and sit below this.
 */
#include <arm_neon.h>

#include "../ukernels.h"
#include "../act/neon.h"

/* NV vectors of channels (8 or 4; or, with PART, the part < 4 channels of a row's channel tail, in the
 * low lanes of one vector: the same arithmetic as the full vectors, so a channel's result does not
 * depend on the block it fell in). */
#define PYCONV_DW_LD(p) (PART ? pyconv_load_part__neon(p, part) : vld1q_f32(p))
#define PYCONV_DW_IN(p) pyconv_act__neon(PYCONV_DW_LD(p), IN_ACT)

/* NPX output pixels SW apart, biased, activated and stored to yo (pixels C floats apart).  xr0 is where
 * the window of the first pixel starts (kernel row 0, window column 0), inside the image or not; wp the
 * block's weights (tap t at wp + t * C).  Without CHECKED every tap is inside the image; with it, only
 * kernel rows [kh_lo, kh_hi) and window columns [j_lo, j_hi) are read (the others are zero padding).
 * With STREAM (the literal 3x3 cases), each input vector of a kernel row is loaded once and multiplied
 * into every pixel that reads it (stride 1: 6 vectors per row for 4 pixels instead of 12).  Every pixel
 * sums its taps in (kh, kw) order on every path, so results do not depend on which path or which
 * neighbours computed them.
 * The weights are loaded per block, a kernel row at a time, not held for the whole row: 3x3 x 8 channels
 * held (18 vectors beside 8 accumulators) left gcc too few registers and it spilled; per block they are
 * 18 loads against 72 FMAs (stride 1), which leaves the block FMA-bound on 2 load pipes. */
static inline __attribute__((always_inline)) void
pyconv_dw_pixels__neon(const int NPX, const int NV, const int PART, const int STREAM, const int IN_ACT,
                       const int CHECKED, ptrdiff_t part, const float *xr0, ptrdiff_t rs, ptrdiff_t C,
                       const float *wp, const float32x4_t *bv, float *yo, int act, ptrdiff_t KH, ptrdiff_t KW,
                       ptrdiff_t SW, ptrdiff_t DW, ptrdiff_t kh_lo, ptrdiff_t kh_hi, ptrdiff_t j_lo,
                       ptrdiff_t j_hi) {
    float32x4_t acc[4][2];
#pragma GCC unroll 4
    for (int i = 0; i < NPX; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) acc[i][v] = vdupq_n_f32(0.0f);
    const float *xr = xr0, *wr = wp;
    for (ptrdiff_t kh = 0; kh < KH; kh++, xr += rs, wr += KW * C) {
        if (CHECKED && (kh < kh_lo || kh >= kh_hi)) continue;
        if (STREAM) {
            float32x4_t wv[3][2];
#pragma GCC unroll 3
            for (ptrdiff_t kw = 0; kw < KW; kw++)
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++) wv[kw][v] = PYCONV_DW_LD(wr + kw * C + 4 * v);
#pragma GCC unroll 16
            for (ptrdiff_t j = 0; j < (NPX - 1) * SW + (KW - 1) * DW + 1; j++) {
                if (CHECKED && (j < j_lo || j >= j_hi)) continue;
                float32x4_t xv[2];
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++) xv[v] = PYCONV_DW_IN(xr + j * C + 4 * v);
#pragma GCC unroll 3
                for (ptrdiff_t kw = 0; kw < KW; kw++) {
                    const ptrdiff_t t = j - kw * DW;
                    if (t >= 0 && t % SW == 0 && t / SW < NPX)
#pragma GCC unroll 2
                        for (int v = 0; v < NV; v++) acc[t / SW][v] = vfmaq_f32(acc[t / SW][v], xv[v], wv[kw][v]);
                }
            }
        } else {
            for (ptrdiff_t kw = 0; kw < KW; kw++)
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++) {
                    const float32x4_t wv = PYCONV_DW_LD(wr + kw * C + 4 * v);
#pragma GCC unroll 4
                    for (int i = 0; i < NPX; i++) {
                        const ptrdiff_t j = i * SW + kw * DW;
                        if (CHECKED && (j < j_lo || j >= j_hi)) continue;
                        acc[i][v] = vfmaq_f32(acc[i][v], PYCONV_DW_IN(xr + j * C + 4 * v), wv);
                    }
                }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NPX; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            const float32x4_t r = pyconv_act__neon(vaddq_f32(acc[i][v], bv[v]), act);
            if (PART)
                pyconv_store_part__neon(yo + i * C, r, part);
            else
                vst1q_f32(yo + i * C + 4 * v, r);
        }
}

/* One block of channels [c0, c0 + 4 * NV) (or c0 + part with PART) across the columns of the row: 4
 * pixels at a time, edges included (at 7x7 a row has 2 edge pixels of 7, and one pixel at a time would
 * wait on the FMA latency); a pixel group whose windows cross the image's edge takes the checked path. */
static inline __attribute__((always_inline)) void
pyconv_dw_channels__neon(const int NV, const int PART, const int STREAM, const int IN_ACT, ptrdiff_t part,
                         const pyconv_dw_geom *g, const float *x, const float *w, const float *bias, float *y,
                         ptrdiff_t oh, ptrdiff_t ow_begin, ptrdiff_t ow_end, ptrdiff_t c0, int act,
                         ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t DW, ptrdiff_t kh_lo, ptrdiff_t kh_hi,
                         ptrdiff_t ow_lo, ptrdiff_t ow_hi, int pf) {
    const ptrdiff_t C = g->C, W = g->W, PL = g->PL;
    const int full_rows = kh_lo == 0 && kh_hi == KH;
    float32x4_t bv[2];
    for (int v = 0; v < NV; v++) bv[v] = bias ? PYCONV_DW_LD(bias + c0 + 4 * v) : vdupq_n_f32(0.0f);
    const float *wp = w + c0;
    const ptrdiff_t rs = g->DH * W * C;
    for (ptrdiff_t ow = ow_begin; ow < ow_end;) {
        const ptrdiff_t npx = ow_end - ow < 4 ? ow_end - ow : 4;
        if (pf && ow + PYCONV_DW_PREFETCH_AHEAD < ow_end)
            pyconv_dw_prefetch(g, x, oh, ow + PYCONV_DW_PREFETCH_AHEAD, npx, kh_lo, kh_hi);
        const ptrdiff_t iw0 = ow * SW - PL;
        const float *xr0 = x + ((oh * g->SH - g->PT) * W + iw0) * C + c0;
        float *yo = y + (ow - ow_begin) * C + c0;
        const ptrdiff_t j_lo = iw0 < 0 ? -iw0 : 0, j_hi = W - iw0;
#define PYCONV_DW_RUN(NPX, CHECKED)                                                                 \
        pyconv_dw_pixels__neon(NPX, NV, PART, STREAM, IN_ACT, CHECKED, part, xr0, rs, C, wp, bv, yo, act, KH, \
                               KW, SW, DW, kh_lo, kh_hi, j_lo, j_hi)
#define PYCONV_DW_RUN_NPX(CHECKED)                                                                  \
        if (npx == 4)                                                                               \
            PYCONV_DW_RUN(4, CHECKED);                                                              \
        else if (npx == 3)                                                                          \
            PYCONV_DW_RUN(3, CHECKED);                                                              \
        else if (npx == 2)                                                                          \
            PYCONV_DW_RUN(2, CHECKED);                                                              \
        else                                                                                        \
            PYCONV_DW_RUN(1, CHECKED);
        if (full_rows && ow >= ow_lo && ow + npx <= ow_hi) {
            PYCONV_DW_RUN_NPX(0)
        } else {
            PYCONV_DW_RUN_NPX(1)
        }
#undef PYCONV_DW_RUN_NPX
#undef PYCONV_DW_RUN
        ow += npx;
    }
}
#undef PYCONV_DW_IN
#undef PYCONV_DW_LD

/* Channels in blocks of 8, then one of 4, then the last 1 to 3 in lanes.  KH/KW/SW/DW are passed as
 * arguments so that the literal 3x3 calls below are specialised by the compiler. */
static inline __attribute__((always_inline)) void
pyconv_dw_row_impl__neon(const pyconv_dw_geom *g, const float *x, const float *w, const float *bias, float *y,
                         ptrdiff_t oh, ptrdiff_t ow_begin, ptrdiff_t ow_end, ptrdiff_t c_begin, ptrdiff_t c_end,
                         int act, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t DW, const int STREAM,
                         const int IN_ACT) {
    ptrdiff_t kh_lo, kh_hi, ow_lo, ow_hi;
    pyconv_dw_row_bounds(g, oh, ow_begin, ow_end, KH, KW, SW, DW, &kh_lo, &kh_hi, &ow_lo, &ow_hi);
    for (ptrdiff_t c0 = c_begin; c0 < c_end;) {
        const ptrdiff_t cn = c_end - c0;
        const int pf = g->prefetch && c0 == c_begin;
#define PYCONV_DW_CHANNELS(NV, PART)                                                                \
        pyconv_dw_channels__neon(NV, PART, STREAM, IN_ACT, cn, g, x, w, bias, y, oh, ow_begin, ow_end, c0, act, \
                                 KH, KW, SW, DW, kh_lo, kh_hi, ow_lo, ow_hi, pf)
        if (cn >= 8) {
            PYCONV_DW_CHANNELS(2, 0);
            c0 += 8;
        } else if (cn >= 4) {
            PYCONV_DW_CHANNELS(1, 0);
            c0 += 4;
        } else {
            PYCONV_DW_CHANNELS(1, 1);
            c0 += cn;
        }
#undef PYCONV_DW_CHANNELS
    }
}

/* One function per literal geometry (and the general one), kept apart so that each is compiled and
 * register-allocated on its own. */
#define PYCONV_DW_VARIANT(NAME, KH, KW, SW, DW, STREAM, IN_ACT)                                     \
    static __attribute__((noinline)) void NAME(PYCONV_DWCONV_ROW_ARGS) {                            \
        pyconv_dw_row_impl__neon(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, KH, KW, SW, DW, \
                                 STREAM, IN_ACT);                                                   \
    }
PYCONV_DW_VARIANT(pyconv_dw_3x3s1__neon, 3, 3, 1, 1, 1, 0)
PYCONV_DW_VARIANT(pyconv_dw_3x3s1_in_act__neon, 3, 3, 1, 1, 1, g->in_act)
PYCONV_DW_VARIANT(pyconv_dw_3x3s2__neon, 3, 3, 2, 1, 1, 0)
PYCONV_DW_VARIANT(pyconv_dw_3x3s2_in_act__neon, 3, 3, 2, 1, 1, g->in_act)
PYCONV_DW_VARIANT(pyconv_dw_general__neon, g->KH, g->KW, g->SW, g->DW, 0, g->in_act)
#undef PYCONV_DW_VARIANT

void pyconv_dwconv_row__neon(PYCONV_DWCONV_ROW_ARGS) {
    /* Literal 3x3 geometry (and no input activation) lets the compiler unroll and specialise. */
    const int k33 = g->KH == 3 && g->KW == 3 && g->DW == 1, ia = g->in_act;
    if (k33 && g->SW == 1)
        (ia ? pyconv_dw_3x3s1_in_act__neon : pyconv_dw_3x3s1__neon)(g, x, w, bias, y, oh, ow_begin, ow_end,
                                                                     c_begin, c_end, act);
    else if (k33 && g->SW == 2)
        (ia ? pyconv_dw_3x3s2_in_act__neon : pyconv_dw_3x3s2__neon)(g, x, w, bias, y, oh, ow_begin, ow_end,
                                                                     c_begin, c_end, act);
    else
        pyconv_dw_general__neon(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act);
}
