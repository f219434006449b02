/*
 * The depthwise row on AVX2 + FMA: a range of columns and channels of one NHWC output row (semantics in
 * ukernels.h and common.h's pyconv_dw_geom).
 *
 * With 16 ymm registers the AVX-512 layout (4 pixels x 32 channels beside all 18 weight vectors of a
 * 3x3) does not fit, nor do a 3x3's 9 weight vectors beside 8 accumulators (held, 4 pixels x 8 channels
 * ran 10-25% slower than the blocks below: 4 FMA chains, and gcc spilled).  A block here is NPX output
 * pixels x NV vectors of 8 channels, 8 independent FMA chains (8 x 1 along a row, 4 x 2 where the
 * pixels' addresses share few L1 sets; see pyconv_dw_row_impl__avx2); a kernel row's KW weight vectors
 * are loaded once per kernel row and block, and with STREAM each input vector once per kernel row and
 * block.  The channel loop is innermost, so an input pixel's 64-byte line is used whole before the
 * block moves on, and the weights (KH*KW*C floats) stay in L1.
 */
#include "../ukernels.h"
#include "../act/avx2.h"

/* Most window columns of the STREAM path whose weights a kernel row holds at a time (7 beside 6 pixels'
 * accumulators and an input vector); a wider kernel row streams in groups of that many columns. */
#define PYCONV_DW_STREAM_KW 7

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
            /* The kernel row's columns in groups of at most PYCONV_DW_STREAM_KW (9x9: 5 then 4), each group's
             * weights held while its input columns stream: a pixel still sums its taps in kw order. */
#pragma GCC unroll 2
            for (ptrdiff_t k0 = 0; k0 < KW; k0 += PYCONV_DW_STREAM_KW) {
                const ptrdiff_t nk = KW - k0 < PYCONV_DW_STREAM_KW ? KW - k0 : PYCONV_DW_STREAM_KW;
#pragma GCC unroll 16
                for (int v = 0; v < NV; v++) {
                    __m256 wk[PYCONV_DW_STREAM_KW];
#pragma GCC unroll 7
                    for (ptrdiff_t kw = 0; kw < nk; kw++) wk[kw] = PYCONV_DW_LOAD(wr + (k0 + kw) * C + 8 * v);
                    /* A base pointer every 3 columns, the others reached by a scaled index. */
                    const float *xq = xr;
#pragma GCC unroll 32
                    for (ptrdiff_t j = k0 * DW; j < (NPX - 1) * SW + (k0 + nk - 1) * DW + 1; j++) {
                        if ((j - k0 * DW) % 3 == 0) {
                            xq = xr + j * C;
                            __asm__("" : "+r"(xq));
                        }
                        if (CHECKED && (j < j_lo || j >= j_hi)) continue;
                        const __m256 xv = PYCONV_DW_IN(xq + ((j - k0 * DW) % 3) * C + 8 * v);
#pragma GCC unroll 7
                        for (ptrdiff_t kw = 0; kw < nk; kw++) {
                            const ptrdiff_t t = j - (k0 + kw) * DW;
                            if (t >= 0 && t % SW == 0 && t / SW < NPX)
                                acc[(t / SW) * NV + v] = _mm256_fmadd_ps(xv, wk[kw], acc[(t / SW) * NV + v]);
                        }
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

/* The pixels of a row are computed in blocks of 8 pixels x 1 vector (8 FMA chains; a 3x3 stride-1 kernel
 * row loads 3 weight and 10 input vectors for 24 FMAs), except where the pixels lie a multiple of 512 bytes
 * apart (C a multiple of 128): their vectors then share a few of L1's 64 sets, and a block's 30 input
 * lines and 9 weight lines evict each other (28x28x256 3x3: 41 GFLOP/s against 55 in 4 x 2 blocks, whose
 * 18 input lines fit), so those rows take 4 x 2 blocks.  At 112x112x32, 56x56x144 and 14x14x576 the 8 x 1
 * block ran 15-20% faster than 4 x 2 (one thread, Zen 4).  A row narrower than a block is one block of
 * its width (7x7x960: 58 -> 92 GFLOP/s). */
#define PYCONV_DW_WIDE_PX 8

/* NPX pixels over the channels [c_begin, c_end): blocks of NV vectors, then single vectors, then a partial
 * one.  The tails run CHECKED (always correct) to keep the number of specialisations (and the compile
 * time) down. */
static inline __attribute__((always_inline)) void
pyconv_dw_pixels__avx2(const int NPX, const int NV, const int STREAM, const int IN_ACT, const int CHECKED, const float *xr0,
                       ptrdiff_t rs, ptrdiff_t C, const float *w, const float *bias, float *yo, int act,
                       ptrdiff_t c_begin, ptrdiff_t c_end, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW,
                       ptrdiff_t DW, ptrdiff_t kh_lo, ptrdiff_t kh_hi, ptrdiff_t j_lo, ptrdiff_t j_hi) {
    ptrdiff_t c = c_begin;
    for (; c + 8 * NV <= c_end; c += 8 * NV)
        pyconv_dw_block__avx2(NPX, NV, STREAM, IN_ACT, CHECKED, 0, xr0 + c, rs, C, w + c, bias ? bias + c : NULL,
                              yo + c, 8, act, KH, KW, SW, DW, kh_lo, kh_hi, j_lo, j_hi);
    if (NV > 1)
        for (; c + 8 <= c_end; c += 8)
            pyconv_dw_block__avx2(NPX, 1, STREAM, IN_ACT, 1, 0, xr0 + c, rs, C, w + c, bias ? bias + c : NULL,
                                  yo + c, 8, act, KH, KW, SW, DW, kh_lo, kh_hi, j_lo, j_hi);
    /* The last channels, fewer than 8: in a block as wide as the row's blocks, or a pixel at a time for
     * the narrower ones, so that few specialisations serve every NPX. */
    if (c < c_end && (NPX == PYCONV_DW_WIDE_PX || NPX == 6 || NPX == 4))
        pyconv_dw_block__avx2(NPX, 1, STREAM, IN_ACT, 1, 1, xr0 + c, rs, C, w + c, bias ? bias + c : NULL, yo + c,
                              c_end - c, act, KH, KW, SW, DW, kh_lo, kh_hi, j_lo, j_hi);
    else if (c < c_end)
        for (int i = 0; i < NPX; i++)
            pyconv_dw_block__avx2(1, 1, STREAM, IN_ACT, 1, 1, xr0 + i * SW * C + c, rs, C, w + c,
                                  bias ? bias + c : NULL, yo + i * C + c, c_end - c, act, KH, KW, SW, DW, kh_lo,
                                  kh_hi, j_lo - i * SW, j_hi - i * SW);
}


/* Whether pixels C floats apart fall in few enough L1 sets to need the 4 x 2 blocks. */
static inline int pyconv_dw_few_sets(ptrdiff_t C) { return C % 128 == 0; }

/* KH/KW/SW/DW are arguments so that the literal 3x3 calls below are specialised by the compiler.  The
 * blocks of a row's edges run CHECKED, the others not; a row's last pixels, fewer than a block, run as
 * one narrower block. */
static inline __attribute__((always_inline)) void
pyconv_dw_row_impl__avx2(const pyconv_dw_geom *g, const float *x, const float *w, const float *bias, float *y,
                         ptrdiff_t oh, ptrdiff_t ow_begin, ptrdiff_t ow_end, ptrdiff_t c_begin, ptrdiff_t c_end,
                         int act, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t DW, const int STREAM,
                         const int IN_ACT) {
    const ptrdiff_t C = g->C, W = g->W, PL = g->PL, rs = g->DH * W * C;
    ptrdiff_t kh_lo, kh_hi, ow_lo, ow_hi;
    pyconv_dw_row_bounds(g, oh, ow_begin, ow_end, KH, KW, SW, DW, &kh_lo, &kh_hi, &ow_lo, &ow_hi);
    const int full_rows = kh_lo == 0 && kh_hi == KH, few_sets = pyconv_dw_few_sets(C);
    const float *xr = x + (oh * g->SH - g->PT) * W * C;
    /* NPX pixels from column ow. */
#define PYCONV_DW_PIXELS(NPX, NV, CHECKED, ow)                                                          \
    pyconv_dw_pixels__avx2(NPX, NV, STREAM, IN_ACT, CHECKED, xr + ((ow) * SW - PL) * C, rs, C, w, bias,        \
                           y + ((ow) - ow_begin) * C, act, c_begin, c_end, KH, KW, SW, DW, kh_lo, kh_hi,     \
                           (ow) * SW < PL ? PL - (ow) * SW : 0, W - ((ow) * SW - PL))
#define PYCONV_DW_PREFETCH(ow, NPX)                                                                     \
    if (g->prefetch && (ow) + PYCONV_DW_PREFETCH_AHEAD < ow_end)                                        \
        pyconv_dw_prefetch(g, x, oh, (ow) + PYCONV_DW_PREFETCH_AHEAD, NPX, kh_lo, kh_hi);
    /* The n < 8 pixels from column ow, CHECKED. */
#define PYCONV_DW_NARROW(ow, n)                                                                         \
    if (!few_sets) {                                                                                    \
        switch (n) {                                                                                    \
        case 7: PYCONV_DW_PIXELS(7, 1, 1, ow); break;                                                   \
        case 6: PYCONV_DW_PIXELS(6, 1, 1, ow); break;                                                   \
        case 5: PYCONV_DW_PIXELS(5, 1, 1, ow); break;                                                   \
        case 4: PYCONV_DW_PIXELS(4, 2, 1, ow); break;                                                   \
        case 3: PYCONV_DW_PIXELS(3, 1, 1, ow); break;                                                   \
        case 2: PYCONV_DW_PIXELS(2, 4, 1, ow); break;                                                   \
        case 1: PYCONV_DW_PIXELS(1, 8, 1, ow); break;                                                   \
        default: break;                                                                                 \
        }                                                                                               \
    } else {                                                                                            \
        ptrdiff_t o = ow;                                                                               \
        for (; o + 4 <= (ow) + (n); o += 4) PYCONV_DW_PIXELS(4, 2, 1, o);                               \
        if (o + 2 <= (ow) + (n)) { PYCONV_DW_PIXELS(2, 4, 1, o); o += 2; }                              \
        if (o < (ow) + (n)) PYCONV_DW_PIXELS(1, 8, 1, o);                                               \
    }
    /* The row in blocks of NPX x NV, its last pixels narrower. */
#define PYCONV_DW_ROW(NPX, NV)                                                                          \
    {                                                                                                   \
        ptrdiff_t ow = ow_begin;                                                                        \
        if (full_rows) {                                                                                \
            for (; ow < ow_lo && ow + NPX <= ow_end; ow += NPX) {                                       \
                PYCONV_DW_PREFETCH(ow, NPX)                                                             \
                PYCONV_DW_PIXELS(NPX, NV, 1, ow);                                                       \
            }                                                                                           \
            for (; ow + NPX <= ow_hi; ow += NPX) {                                                      \
                PYCONV_DW_PREFETCH(ow, NPX)                                                             \
                PYCONV_DW_PIXELS(NPX, NV, 0, ow);                                                       \
            }                                                                                           \
        }                                                                                               \
        for (; ow + NPX <= ow_end; ow += NPX) {                                                         \
            PYCONV_DW_PREFETCH(ow, NPX)                                                                 \
            PYCONV_DW_PIXELS(NPX, NV, 1, ow);                                                           \
        }                                                                                               \
        PYCONV_DW_NARROW(ow, ow_end - ow)                                                               \
    }
    if (few_sets) {
        PYCONV_DW_ROW(4, 2)
    } else if (KW <= 5 || KW > PYCONV_DW_STREAM_KW) {
        PYCONV_DW_ROW(PYCONV_DW_WIDE_PX, 1)
    } else {
        /* 7 weight vectors of a kernel row leave room for 6 accumulators. */
        PYCONV_DW_ROW(6, 1)
    }
#undef PYCONV_DW_NARROW
#undef PYCONV_DW_ROW
#undef PYCONV_DW_PREFETCH
#undef PYCONV_DW_PIXELS
}

/* The specialisations with literal geometry, each a function of its own (the compiler allocates each
 * alone): 3x3 with no input activation or a relu, 5x5 to 9x9 (EfficientNet, MixNet, MobileNetV3) with
 * none, at stride 1 and 2, streaming their input. */
#define PYCONV_DW_SPEC(K, S, IN_ACT)                                                                    \
    static __attribute__((noinline)) void pyconv_dw_k##K##s##S##a##IN_ACT(PYCONV_DWCONV_ROW_ARGS) {       \
        pyconv_dw_row_impl__avx2(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, K, K, S, 1, 1,   \
                                 IN_ACT);                                                             \
    }
PYCONV_DW_SPEC(3, 1, 0) PYCONV_DW_SPEC(3, 1, 1) PYCONV_DW_SPEC(3, 2, 0) PYCONV_DW_SPEC(3, 2, 1)
PYCONV_DW_SPEC(5, 1, 0) PYCONV_DW_SPEC(5, 2, 0) PYCONV_DW_SPEC(7, 1, 0) PYCONV_DW_SPEC(7, 2, 0)
PYCONV_DW_SPEC(9, 1, 0) PYCONV_DW_SPEC(9, 2, 0)
#undef PYCONV_DW_SPEC

void pyconv_dwconv_row__avx2(PYCONV_DWCONV_ROW_ARGS) {
    /* Every other layer (relu6 on the input, a relu on a larger kernel's, dilation, other sizes and
     * strides) takes the generic path. */
    const ptrdiff_t K = g->KH, S = g->SW;
    const int ia = g->in_act, square = g->KW == K && g->DW == 1 && (S == 1 || S == 2);
#define PYCONV_DW_CALL(K, S, IN_ACT) pyconv_dw_k##K##s##S##a##IN_ACT(g, x, w, bias, y, oh, ow_begin, ow_end, \
                                                                     c_begin, c_end, act)
    if (square && K == 3 && ia <= PYCONV_ACT_RELU) {
        if (S == 1 && ia == PYCONV_ACT_NONE) PYCONV_DW_CALL(3, 1, 0);
        else if (S == 1) PYCONV_DW_CALL(3, 1, 1);
        else if (ia == PYCONV_ACT_NONE) PYCONV_DW_CALL(3, 2, 0);
        else PYCONV_DW_CALL(3, 2, 1);
    } else if (square && K == 5 && ia == PYCONV_ACT_NONE) {
        if (S == 1) PYCONV_DW_CALL(5, 1, 0);
        else PYCONV_DW_CALL(5, 2, 0);
    } else if (square && K == 7 && ia == PYCONV_ACT_NONE) {
        if (S == 1) PYCONV_DW_CALL(7, 1, 0);
        else PYCONV_DW_CALL(7, 2, 0);
    } else if (square && K == 9 && ia == PYCONV_ACT_NONE) {
        if (S == 1) PYCONV_DW_CALL(9, 1, 0);
        else PYCONV_DW_CALL(9, 2, 0);
    } else {
        pyconv_dw_row_impl__avx2(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, g->KH, g->KW,
                                 g->SW, g->DW, 0, ia);
    }
#undef PYCONV_DW_CALL
}
