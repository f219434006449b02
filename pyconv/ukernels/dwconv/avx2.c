/*
 * The depthwise row on AVX2 + FMA: a range of columns and channels of one NHWC output row (semantics in
 * ukernels.h and common.h's pyconv_dw_geom).
 *
 * With 16 ymm registers the AVX-512 layout (4 pixels x 32 channels beside all 18 weight vectors of a
 * 3x3) does not fit.  A block here is NPX output pixels x NV vectors of 8 channels, 8 independent FMA
 * chains: 4x2 through a row, 2x4 and 1x8 for its last pixels.  8x1 ran 10-20% slower than 4x2 (the
 * 30 input addresses of its 3x3 block cost gcc an add per load, front-end slots the FMAs needed), 2x4
 * a third slower; a 3x2 block for 7-pixel rows gained 7x7x1024 5% but cost the 4x2 path 15% (gcc's
 * allocation of the larger function).  A kernel row's KW weight vectors are loaded once per kernel
 * row and block (holding all 9 would leave too few registers for 8 accumulators).  The channel loop
 * is innermost, so an input pixel's 64-byte line is used whole before the block moves on, and the
 * weights (KH*KW*C floats) stay in L1.
 */
#include "../ukernels.h"
#include "../act/avx2.h"

/* Window columns of the 3x3 specialisations' STREAM path whose weights a kernel row holds. */
#define PYCONV_DW_STREAM_KW 3

/* Accumulators of a block: NPX * NV, NV = 8 / NPX. */
#define PYCONV_DW_NACC 8

/* NPX output pixels SW apart x NV vectors of 8 channels, finished (biased, activated) and stored to yo
 * (pixels C floats apart).  xr0: where pixel 0's window starts (kernel row 0, window column 0, the
 * block's first channel), inside the image or not; wc and bc: the block's weights and bias (bc NULL for
 * none).  Without CHECKED every tap is inside the image; with it only kernel rows [kh_lo, kh_hi) and
 * window columns [j_lo, j_hi) are read.  MASKED (NV == 1 only): only the first n channels are read and
 * written.  With STREAM (literal KW <= 3), each input vector of a kernel row is loaded once and
 * multiplied into every pixel that reads it: 3x3 stride 1 loads 6 vectors a kernel row for 4 pixels
 * instead of 12.  Every pixel sums its taps in (kh, kw) order on every path, so a result does not
 * depend on the path or on the pixels sharing the block. */
static inline __attribute__((always_inline)) void
pyconv_dw_block__avx2(const int NPX, const int NV, const int STREAM, const int IN_ACT, const int CHECKED,
                      const int MASKED, const float *xr0, ptrdiff_t rs, ptrdiff_t C, const float *wc,
                      const float *bc, float *yo, ptrdiff_t n, int act, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW,
                      ptrdiff_t DW, ptrdiff_t kh_lo, ptrdiff_t kh_hi, ptrdiff_t j_lo, ptrdiff_t j_hi) {
#define PYCONV_DW_LOAD(p) (MASKED ? pyconv_load_part8(p, n) : _mm256_loadu_ps(p))
#define PYCONV_DW_IN(p) pyconv_act__avx2(PYCONV_DW_LOAD(p), IN_ACT)
    /* Opaque to the optimiser: otherwise gcc keeps each of the ~40 addresses a block reads as its own
     * induction variable of the channel loop, spills them and reloads one per vector load. */
    __asm__("" : "+r"(xr0), "+r"(wc), "+r"(yo));
    __m256 acc[PYCONV_DW_NACC];
#pragma GCC unroll 16
    for (int a = 0; a < NPX * NV; a++) acc[a] = _mm256_setzero_ps();
    for (ptrdiff_t kh = 0; kh < KH; kh++) {
        if (CHECKED && (kh < kh_lo || kh >= kh_hi)) continue;
        const float *xr = xr0 + kh * rs, *wr = wc + kh * KW * C;
        __asm__("" : "+r"(xr), "+r"(wr));
        if (STREAM) {
#pragma GCC unroll 16
            for (int v = 0; v < NV; v++) {
                __m256 wk[PYCONV_DW_STREAM_KW];
#pragma GCC unroll 3
                for (ptrdiff_t kw = 0; kw < KW; kw++) wk[kw] = PYCONV_DW_LOAD(wr + kw * C + 8 * v);
                /* A base pointer every 3 columns, the others reached by a scaled index. */
                const float *xq = xr;
#pragma GCC unroll 32
                for (ptrdiff_t j = 0; j < (NPX - 1) * SW + (KW - 1) * DW + 1; j++) {
                    if (j % 3 == 0) {
                        xq = xr + j * C;
                        __asm__("" : "+r"(xq));
                    }
                    if (CHECKED && (j < j_lo || j >= j_hi)) continue;
                    const __m256 xv = PYCONV_DW_IN(xq + (j % 3) * C + 8 * v);
#pragma GCC unroll 3
                    for (ptrdiff_t kw = 0; kw < KW; kw++) {
                        const ptrdiff_t t = j - kw * DW;
                        if (t >= 0 && t % SW == 0 && t / SW < NPX)
                            acc[(t / SW) * NV + v] = _mm256_fmadd_ps(xv, wk[kw], acc[(t / SW) * NV + v]);
                    }
                }
            }
        } else {
            for (ptrdiff_t kw = 0; kw < KW; kw++) {
                const float *xk = xr + kw * DW * C;
                __asm__("" : "+r"(xk));
#pragma GCC unroll 16
                for (int v = 0; v < NV; v++) {
                    const __m256 wv = PYCONV_DW_LOAD(wr + kw * C + 8 * v);
#pragma GCC unroll 16
                    for (int i = 0; i < NPX; i++) {
                        const ptrdiff_t j = i * SW + kw * DW;
                        if (CHECKED && (j < j_lo || j >= j_hi)) continue;
                        acc[i * NV + v] = _mm256_fmadd_ps(PYCONV_DW_IN(xk + i * SW * C + 8 * v), wv, acc[i * NV + v]);
                    }
                }
            }
        }
    }
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) {
        const __m256 bv = bc ? PYCONV_DW_LOAD(bc + 8 * v) : _mm256_setzero_ps();
#pragma GCC unroll 16
        for (int i = 0; i < NPX; i++) {
            const __m256 r = pyconv_act__avx2(_mm256_add_ps(acc[i * NV + v], bv), act);
            if (MASKED)
                pyconv_store_part8(yo + i * C + 8 * v, r, n);
            else
                _mm256_storeu_ps(yo + i * C + 8 * v, r);
        }
    }
#undef PYCONV_DW_IN
#undef PYCONV_DW_LOAD
}

/* NPX pixels over the channels [c_begin, c_end): blocks of NV = 8 / NPX vectors, then single vectors, then
 * a partial one.  The tails run CHECKED (always correct) to keep the number of specialisations down. */
static inline __attribute__((always_inline)) void
pyconv_dw_pixels__avx2(const int NPX, const int STREAM, const int IN_ACT, const int CHECKED, const float *xr0,
                       ptrdiff_t rs, ptrdiff_t C, const float *w, const float *bias, float *yo, int act,
                       ptrdiff_t c_begin, ptrdiff_t c_end, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW,
                       ptrdiff_t DW, ptrdiff_t kh_lo, ptrdiff_t kh_hi, ptrdiff_t j_lo, ptrdiff_t j_hi) {
    const int NV = PYCONV_DW_NACC / NPX;
    ptrdiff_t c = c_begin;
    for (; c + 8 * NV <= c_end; c += 8 * NV)
        pyconv_dw_block__avx2(NPX, NV, STREAM, IN_ACT, CHECKED, 0, xr0 + c, rs, C, w + c, bias ? bias + c : NULL,
                              yo + c, 8, act, KH, KW, SW, DW, kh_lo, kh_hi, j_lo, j_hi);
    if (NV > 1)
        for (; c + 8 <= c_end; c += 8)
            pyconv_dw_block__avx2(NPX, 1, STREAM, IN_ACT, 1, 0, xr0 + c, rs, C, w + c, bias ? bias + c : NULL,
                                  yo + c, 8, act, KH, KW, SW, DW, kh_lo, kh_hi, j_lo, j_hi);
    if (c < c_end)
        pyconv_dw_block__avx2(NPX, 1, STREAM, IN_ACT, 1, 1, xr0 + c, rs, C, w + c, bias ? bias + c : NULL,
                              yo + c, c_end - c, act, KH, KW, SW, DW, kh_lo, kh_hi,
                              j_lo, j_hi);
}

/* KH/KW/SW/DW are arguments so that the literal 3x3 calls below are specialised by the compiler. */
static inline __attribute__((always_inline)) void
pyconv_dw_row_impl__avx2(const pyconv_dw_geom *g, const float *x, const float *w, const float *bias, float *y,
                         ptrdiff_t oh, ptrdiff_t ow_begin, ptrdiff_t ow_end, ptrdiff_t c_begin, ptrdiff_t c_end,
                         int act, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t DW, const int STREAM,
                         const int IN_ACT) {
    const ptrdiff_t C = g->C, W = g->W, PL = g->PL;
    ptrdiff_t kh_lo, kh_hi, ow_lo, ow_hi;
    pyconv_dw_row_bounds(g, oh, ow_begin, ow_end, KH, KW, SW, DW, &kh_lo, &kh_hi, &ow_lo, &ow_hi);
    const int full_rows = kh_lo == 0 && kh_hi == KH;
    const ptrdiff_t rs = g->DH * W * C;
    ptrdiff_t ow = ow_begin;
    while (ow < ow_end) {
        const ptrdiff_t rem = ow_end - ow, npx = rem >= 4 ? 4 : rem >= 2 ? 2 : 1;
        if (g->prefetch && ow + PYCONV_DW_PREFETCH_AHEAD < ow_end)
            pyconv_dw_prefetch(g, x, oh, ow + PYCONV_DW_PREFETCH_AHEAD, npx, kh_lo, kh_hi);
        const ptrdiff_t iw0 = ow * SW - PL;
        const float *xr0 = x + ((oh * g->SH - g->PT) * W + iw0) * C;
        float *yo = y + (ow - ow_begin) * C;
        const ptrdiff_t j_lo = iw0 < 0 ? -iw0 : 0, j_hi = W - iw0;
        const int inside = full_rows && ow >= ow_lo && ow + npx <= ow_hi;
#define PYCONV_DW_PIXELS(NPX, CHECKED)                                                                  \
        pyconv_dw_pixels__avx2(NPX, STREAM, IN_ACT, CHECKED, xr0, rs, C, w, bias, yo, act, c_begin, c_end, KH, \
                               KW, SW, DW, kh_lo, kh_hi, j_lo, j_hi)
#define PYCONV_DW_NPX(CHECKED)                                                                          \
        if (npx == 4)                                                                                   \
            PYCONV_DW_PIXELS(4, CHECKED);                                                               \
        else if (npx == 2)                                                                              \
            PYCONV_DW_PIXELS(2, CHECKED);                                                               \
        else                                                                                            \
            PYCONV_DW_PIXELS(1, CHECKED);
        if (inside) {
            PYCONV_DW_NPX(0)
        } else {
            PYCONV_DW_NPX(1)
        }
#undef PYCONV_DW_NPX
#undef PYCONV_DW_PIXELS
        ow += npx;
    }
}

void pyconv_dwconv_row__avx2(PYCONV_DWCONV_ROW_ARGS) {
    /* Literal 3x3 geometry, with no input activation or a relu, lets the compiler unroll and
     * specialise; every other layer (and relu6 on the input) takes the generic path. */
    const int ia = g->in_act, k33 = g->KH == 3 && g->KW == 3 && g->DW == 1;
    if (k33 && g->SW == 1 && ia == PYCONV_ACT_NONE)
        pyconv_dw_row_impl__avx2(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 1, 1, 1,
                                 PYCONV_ACT_NONE);
    else if (k33 && g->SW == 1 && ia == PYCONV_ACT_RELU)
        pyconv_dw_row_impl__avx2(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 1, 1, 1,
                                 PYCONV_ACT_RELU);
    else if (k33 && g->SW == 2 && ia == PYCONV_ACT_NONE)
        pyconv_dw_row_impl__avx2(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 2, 1, 1,
                                 PYCONV_ACT_NONE);
    else if (k33 && g->SW == 2 && ia == PYCONV_ACT_RELU)
        pyconv_dw_row_impl__avx2(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 2, 1, 1,
                                 PYCONV_ACT_RELU);
    else
        pyconv_dw_row_impl__avx2(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, g->KH, g->KW,
                                 g->SW, g->DW, 0, ia);
}
