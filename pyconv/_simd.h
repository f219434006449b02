/*
 * pyconv micro-kernels: the innermost loops, in C with AVX-512 intrinsics where the build targets it
 * and a portable C path that every build has (and that the tests run through pyconv_portable).
 *
 *   pyconv_gemm_MRxNR   C[mr x nr] (+)= sum over ks row-pointer sets of A_s[mr x kc] * B_s[kc x NR]
 *                       (an "indirect" GEMM: each A row is a pointer, so one kernel serves pointwise,
 *                       im2col, direct convolution (a pointer per tap) and Winograd's batched GEMMs)
 *   pyconv_rows_12xNR   C[12 x nr] = sum over k of A_k[i * S] * B[k]: a convolution reading channel-first
 *                       (NCHW) input rows, whose pixels lie S floats apart (a model's first layer)
 *   pyconv_dw_row       part of one output row of a depthwise convolution (a range of columns and of
 *                       channels), NHWC
 *
 * Conventions: B is packed in panels of PYCONV_GEMM_NR (or 16) columns, rows contiguous, zero-padded past the
 * last real column; row pointers past mr must still point at readable memory (the caller repeats a
 * valid row); activation codes: 0 none, 1 relu, 2 relu6, applied when the tile is stored, after the
 * bias and the residual (a fused skip connection) are added.
 */
#ifndef PYCONV_SIMD_H
#define PYCONV_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_prefetch.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define PYCONV_SIMD_LEVEL "avx512f"
#define PYCONV_GEMM_MR 12
#define PYCONV_GEMM_NR 32
#else
#define PYCONV_SIMD_LEVEL "portable"
#define PYCONV_GEMM_MR 6
#define PYCONV_GEMM_NR 16
#endif

/* Panels are PYCONV_GEMM_NR wide, or 16 for layers whose (per-group) output is at most 16 channels. */
#define PYCONV_GEMM_NR_NARROW 16
#define PYCONV_GEMM_NR_MAX 32
#define PYCONV_ALIGN 64

/* Process-wide switch to the portable paths, for testing them on a SIMD build. */
static int pyconv_portable = 0;

/* Whether packed weights with panels nrp wide can feed pyconv_gemm. */
static inline int pyconv_valid_panel(ptrdiff_t nrp) {
    return nrp == PYCONV_GEMM_NR_NARROW || nrp == PYCONV_GEMM_NR;
}

static inline float pyconv_activate(float v, int act) {
    if (act >= 1 && v < 0.0f) v = 0.0f;
    if (act == 2 && v > 6.0f) v = 6.0f;
    return v;
}

static inline void *pyconv_aligned_alloc(size_t bytes) {
    size_t rounded = (bytes + PYCONV_ALIGN - 1) / PYCONV_ALIGN * PYCONV_ALIGN;
    return aligned_alloc(PYCONV_ALIGN, rounded ? rounded : PYCONV_ALIGN);
}

/* ---------------------------------------------------------------- GEMM: portable */

static void pyconv_gemm_portable(size_t nrp, size_t mr, size_t nr, size_t ks, size_t kc,
                                 const float *const *a, const float *b,
                                 float *c, size_t ldc, const float *bias, const float *res,
                                 int accumulate, int act) {
    float acc[PYCONV_GEMM_MR][PYCONV_GEMM_NR_MAX];
    memset(acc, 0, sizeof(acc));
    for (size_t s = 0; s < ks; s++) {
        const float *const *as = a + s * PYCONV_GEMM_MR;
        for (size_t k = 0; k < kc; k++) {
            const float *bk = b + (s * kc + k) * nrp;
            for (size_t i = 0; i < mr; i++) {
                const float av = as[i][k];
                for (size_t j = 0; j < nrp; j++) acc[i][j] += av * bk[j];
            }
        }
    }
    for (size_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        for (size_t j = 0; j < nr; j++) {
            /* Bias, then residual: the order of the SIMD store, so both paths round alike. */
            float v = acc[i][j] + (accumulate ? ci[j] : (bias ? bias[j] : 0.0f));
            if (!accumulate && res) v += res[i * ldc + j];
            ci[j] = pyconv_activate(v, act);
        }
    }
}

/* ---------------------------------------------------------------- GEMM: AVX-512 12x32 */

#if defined(__AVX512F__)
static inline __m512 pyconv_act512(__m512 v, int act) {
    if (act >= 1) v = _mm512_max_ps(v, _mm512_setzero_ps());
    if (act == 2) v = _mm512_min_ps(v, _mm512_set1_ps(6.0f));
    return v;
}

static inline __mmask16 pyconv_mask16(size_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* The ROWS row pointers of one pointer set; rows past ROWS alias row 0 and are never used. */
#define PYCONV_A_ROWS(as)                                                                               \
    const float *a0 = (as)[0], *a1 = (as)[1], *a2 = (as)[2], *a3 = (as)[3];                             \
    const float *a4 = ROWS > 4 ? (as)[4] : a0, *a5 = ROWS > 4 ? (as)[5] : a0;                           \
    const float *a6 = ROWS > 4 ? (as)[6] : a0, *a7 = ROWS > 4 ? (as)[7] : a0;                           \
    const float *a8 = ROWS > 8 ? (as)[8] : a0, *a9 = ROWS > 8 ? (as)[9] : a0;                           \
    const float *a10 = ROWS > 8 ? (as)[10] : a0, *a11 = ROWS > 8 ? (as)[11] : a0;

/* One cache line of the B block the caller will need next, per k step, into L2 (not L1, which holds
 * the B block in use): a weight panel read cold from memory would otherwise stall the first tile that
 * uses it, and a layer's weights are cold whenever the model's weights outgrow the caches. */
#define PYCONV_PREFETCH_NEXT                                                                            \
    if (pf) { _mm_prefetch((const char *)pf, _MM_HINT_T1); pf += 16; }

/* Up to 24 accumulators in zmm registers: ROWS rows x (2 x 16 columns); per k: 2 loads of B and ROWS
 * broadcasts of A.  ROWS is a literal at each call below, so the unused rows compile away: the 1- to
 * 8-row variants keep small remainders (49 = 4 x 12 + 1 pixels) from paying for a full 12-row tile, and
 * a lone row (49's last pixel, a dense layer at batch 1) from paying for four. */
static inline __attribute__((always_inline)) void
pyconv_gemm_avx512_rows(const int ROWS, size_t mr, size_t nr, size_t ks, size_t kc,
                        const float *const *a, const float *b, float *c, size_t ldc,
                        const float *bias, const float *res, int accumulate, int act, const float *pf) {
    __m512 x0 = _mm512_setzero_ps(), y0 = x0, x1 = x0, y1 = x0, x2 = x0, y2 = x0, x3 = x0, y3 = x0,
           x4 = x0, y4 = x0, x5 = x0, y5 = x0, x6 = x0, y6 = x0, x7 = x0, y7 = x0,
           x8 = x0, y8 = x0, x9 = x0, y9 = x0, x10 = x0, y10 = x0, x11 = x0, y11 = x0;
    for (size_t s = 0; s < ks; s++) {
        PYCONV_A_ROWS(a + s * PYCONV_GEMM_MR)
        for (size_t k = 0; k < kc; k++) {
            const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
            b += 32;
            PYCONV_PREFETCH_NEXT
            __m512 t;
#define PYCONV_ROW(i) if (ROWS > i) { t = _mm512_set1_ps(a##i[k]); x##i = _mm512_fmadd_ps(t, b0, x##i); \
                      y##i = _mm512_fmadd_ps(t, b1, y##i); }
            PYCONV_ROW(0) PYCONV_ROW(1) PYCONV_ROW(2) PYCONV_ROW(3) PYCONV_ROW(4) PYCONV_ROW(5)
            PYCONV_ROW(6) PYCONV_ROW(7) PYCONV_ROW(8) PYCONV_ROW(9) PYCONV_ROW(10) PYCONV_ROW(11)
#undef PYCONV_ROW
        }
    }
    const __mmask16 m0 = pyconv_mask16(nr), m1 = nr > 16 ? pyconv_mask16(nr - 16) : 0;
    __m512 base0 = _mm512_setzero_ps(), base1 = base0;
    if (!accumulate && bias) {
        base0 = _mm512_maskz_loadu_ps(m0, bias);
        base1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
#define PYCONV_STORE(i)                                                                 \
    if (ROWS > i && mr > i) {                                                           \
        float *ci = c + i * ldc;                                                        \
        __m512 v0 = x##i, v1 = y##i;                                                    \
        if (accumulate) {                                                               \
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));                      \
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));                 \
        } else {                                                                        \
            v0 = _mm512_add_ps(v0, base0);                                              \
            v1 = _mm512_add_ps(v1, base1);                                              \
            if (res) {                                                                  \
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, res + i * ldc));       \
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, res + i * ldc + 16));  \
            }                                                                           \
        }                                                                               \
        _mm512_mask_storeu_ps(ci, m0, pyconv_act512(v0, act));                          \
        _mm512_mask_storeu_ps(ci + 16, m1, pyconv_act512(v1, act));                     \
    }
    PYCONV_STORE(0) PYCONV_STORE(1) PYCONV_STORE(2) PYCONV_STORE(3) PYCONV_STORE(4) PYCONV_STORE(5)
    PYCONV_STORE(6) PYCONV_STORE(7) PYCONV_STORE(8) PYCONV_STORE(9) PYCONV_STORE(10) PYCONV_STORE(11)
#undef PYCONV_STORE
}

/* The 1- and 2-row tiles: with one accumulator pair per row, each k step would wait on the previous
 * one's FMA latency (4 cycles for 2 or 4 FMAs).  PHASES (4 for one row, 2 for two) interleaved partial
 * sums over k keep 8 accumulators in flight; they are added at the end.  The sum order then differs from
 * the longer tiles', which is harmless: a layer's tiles do not depend on the thread count (an image's
 * last ROWS pixels, a dense layer's batch), so neither do its results. */
static inline __attribute__((always_inline)) void
pyconv_gemm_avx512_short(const int ROWS, size_t mr, size_t nr, size_t ks, size_t kc,
                         const float *const *a, const float *b, float *c, size_t ldc,
                         const float *bias, const float *res, int accumulate, int act, const float *pf) {
    const int PHASES = ROWS == 1 ? 4 : 2;
    __m512 x[2][4], y[2][4];
    for (int i = 0; i < 2; i++)
        for (int h = 0; h < 4; h++) x[i][h] = y[i][h] = _mm512_setzero_ps();
    for (size_t s = 0; s < ks; s++) {
        const float *a0 = a[s * PYCONV_GEMM_MR], *a1 = ROWS > 1 ? a[s * PYCONV_GEMM_MR + 1] : a0;
        /* Step k into partial sum h. */
#define PYCONV_SHORT_STEP(k, h)                                                                         \
        {                                                                                               \
            const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);                           \
            b += 32;                                                                                    \
            PYCONV_PREFETCH_NEXT                                                                        \
            __m512 t = _mm512_set1_ps(a0[k]);                                                           \
            x[0][h] = _mm512_fmadd_ps(t, b0, x[0][h]);                                                  \
            y[0][h] = _mm512_fmadd_ps(t, b1, y[0][h]);                                                  \
            if (ROWS > 1) {                                                                             \
                t = _mm512_set1_ps(a1[k]);                                                              \
                x[1][h] = _mm512_fmadd_ps(t, b0, x[1][h]);                                              \
                y[1][h] = _mm512_fmadd_ps(t, b1, y[1][h]);                                              \
            }                                                                                           \
        }
        size_t k = 0;
        for (; k + PHASES <= kc; k += PHASES)
            for (int h = 0; h < PHASES; h++) PYCONV_SHORT_STEP(k + h, h)
        for (; k < kc; k++) PYCONV_SHORT_STEP(k, 0)
#undef PYCONV_SHORT_STEP
    }
    const __mmask16 m0 = pyconv_mask16(nr), m1 = nr > 16 ? pyconv_mask16(nr - 16) : 0;
    for (int i = 0; i < ROWS && (size_t)i < mr; i++) {
        __m512 v0 = _mm512_add_ps(x[i][0], x[i][1]), v1 = _mm512_add_ps(y[i][0], y[i][1]);
        if (PHASES == 4) {
            v0 = _mm512_add_ps(v0, _mm512_add_ps(x[i][2], x[i][3]));
            v1 = _mm512_add_ps(v1, _mm512_add_ps(y[i][2], y[i][3]));
        }
        float *ci = c + i * ldc;
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));
        } else {
            if (bias) {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, bias));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, bias + 16));
            }
            if (res) {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, res + i * ldc));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, res + i * ldc + 16));
            }
        }
        _mm512_mask_storeu_ps(ci, m0, pyconv_act512(v0, act));
        _mm512_mask_storeu_ps(ci + 16, m1, pyconv_act512(v1, act));
    }
}

/* The 16-column twin: 12 accumulators, one load of B and ROWS broadcasts per k. */
static inline __attribute__((always_inline)) void
pyconv_gemm16_avx512_rows(const int ROWS, size_t mr, size_t nr, size_t ks, size_t kc,
                          const float *const *a, const float *b, float *c, size_t ldc,
                          const float *bias, const float *res, int accumulate, int act, const float *pf) {
    __m512 x0 = _mm512_setzero_ps(), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0,
           x8 = x0, x9 = x0, x10 = x0, x11 = x0;
    for (size_t s = 0; s < ks; s++) {
        PYCONV_A_ROWS(a + s * PYCONV_GEMM_MR)
        for (size_t k = 0; k < kc; k++) {
            const __m512 b0 = _mm512_load_ps(b);
            b += 16;
            PYCONV_PREFETCH_NEXT
#define PYCONV_ROW(i) if (ROWS > i) x##i = _mm512_fmadd_ps(_mm512_set1_ps(a##i[k]), b0, x##i);
            PYCONV_ROW(0) PYCONV_ROW(1) PYCONV_ROW(2) PYCONV_ROW(3) PYCONV_ROW(4) PYCONV_ROW(5)
            PYCONV_ROW(6) PYCONV_ROW(7) PYCONV_ROW(8) PYCONV_ROW(9) PYCONV_ROW(10) PYCONV_ROW(11)
#undef PYCONV_ROW
        }
    }
    const __mmask16 m0 = pyconv_mask16(nr);
    __m512 base0 = _mm512_setzero_ps();
    if (!accumulate && bias) base0 = _mm512_maskz_loadu_ps(m0, bias);
#define PYCONV_STORE(i)                                                                   \
    if (ROWS > i && mr > i) {                                                             \
        float *ci = c + i * ldc;                                                          \
        __m512 v0 = _mm512_add_ps(x##i, accumulate ? _mm512_maskz_loadu_ps(m0, ci) : base0); \
        if (!accumulate && res) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, res + i * ldc)); \
        _mm512_mask_storeu_ps(ci, m0, pyconv_act512(v0, act));                            \
    }
    PYCONV_STORE(0) PYCONV_STORE(1) PYCONV_STORE(2) PYCONV_STORE(3) PYCONV_STORE(4) PYCONV_STORE(5)
    PYCONV_STORE(6) PYCONV_STORE(7) PYCONV_STORE(8) PYCONV_STORE(9) PYCONV_STORE(10) PYCONV_STORE(11)
#undef PYCONV_STORE
}

/* The named micro-kernels: pyconv_gemm_<MR>x<NR>_avx512. */
#define PYCONV_GEMM_KERNEL(NAME, IMPL, ROWS)                                                            \
    static void NAME(size_t mr, size_t nr, size_t ks, size_t kc, const float *const *a, const float *b, \
                     float *c, size_t ldc, const float *bias, const float *res, int accumulate, int act,     \
                     const float *pf) {                                                                \
        IMPL(ROWS, mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);                    \
    }
PYCONV_GEMM_KERNEL(pyconv_gemm_12x16_avx512, pyconv_gemm16_avx512_rows, 12)
PYCONV_GEMM_KERNEL(pyconv_gemm_4x16_avx512, pyconv_gemm16_avx512_rows, 4)
PYCONV_GEMM_KERNEL(pyconv_gemm_1x16_avx512, pyconv_gemm16_avx512_rows, 1)
PYCONV_GEMM_KERNEL(pyconv_gemm_12x32_avx512, pyconv_gemm_avx512_rows, 12)
PYCONV_GEMM_KERNEL(pyconv_gemm_8x32_avx512, pyconv_gemm_avx512_rows, 8)
PYCONV_GEMM_KERNEL(pyconv_gemm_4x32_avx512, pyconv_gemm_avx512_rows, 4)
PYCONV_GEMM_KERNEL(pyconv_gemm_2x32_avx512, pyconv_gemm_avx512_short, 2)
PYCONV_GEMM_KERNEL(pyconv_gemm_1x32_avx512, pyconv_gemm_avx512_short, 1)
#undef PYCONV_GEMM_KERNEL
#undef PYCONV_A_ROWS
#undef PYCONV_PREFETCH_NEXT
#endif

/* The work of an mr-row tile in rows of a full tile's work, for splitting a layer evenly between threads:
 * 5 to 8 rows run the 8-row tile, more the 12-row one, and the 1- and 2-row tiles wait on their few
 * accumulators' FMA latency as long as the 4-row tile does. */
static inline ptrdiff_t pyconv_gemm_tile_rows(ptrdiff_t mr) {
#if defined(__AVX512F__)
    if (!pyconv_portable) return mr <= 4 ? 4 : mr <= 8 ? 8 : PYCONV_GEMM_MR;
#endif
    return mr;
}

/* C tile of mr x nr (nr <= nrp, the panel width of b: 16 or PYCONV_GEMM_NR).  Unless accumulating, the
 * store adds bias and, when res is not NULL, the residual tile res (leading dimension ldc, may be c
 * itself).  pf: NULL, or ks*kc*16 floats to prefetch (one line per k step), normally part of the next
 * call's B block. */
static inline void pyconv_gemm(size_t nrp, size_t mr, size_t nr, size_t ks, size_t kc,
                               const float *const *a, const float *b,
                               float *c, size_t ldc, const float *bias, const float *res,
                               int accumulate, int act, const float *pf) {
#if defined(__AVX512F__)
    if (!pyconv_portable && nrp == 16) {
        if (mr > 4)
            pyconv_gemm_12x16_avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
        else if (mr > 1)
            pyconv_gemm_4x16_avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
        else
            pyconv_gemm_1x16_avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
        return;
    }
    if (!pyconv_portable) {
        if (mr > 8)
            pyconv_gemm_12x32_avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
        else if (mr > 4)
            pyconv_gemm_8x32_avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
        else if (mr > 2)
            pyconv_gemm_4x32_avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
        else if (mr > 1)
            pyconv_gemm_2x32_avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
        else
            pyconv_gemm_1x32_avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
        return;
    }
#endif
    (void)pf;
    pyconv_gemm_portable(nrp, mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act);
}

/* ---------------------------------------------------------------- convolution on NCHW rows */

/* Output pixels per pyconv_rows call: a whole tile is always computed, so each input row must hold
 * (12 - 1) * S floats past the last pixel's window start. */
#define PYCONV_ROWS_MR 12

/* C[mr x nr] (nr <= nrp, 16 or 32) = bias + sum over k < K of a[k][off + i * S] * b[k][:], activated:
 * a[k] is one input row (channel c, kernel row kh, shifted by the tap's column kw) of a channel-first
 * image, in which the tile's 12 output pixels read floats S apart: no pointer per pixel, and the
 * input of a 3-channel first layer is read where the caller left it, without a transpose to NHWC. */
static void pyconv_rows_portable(ptrdiff_t S, size_t mr, size_t nr, size_t nrp, size_t K,
                                 const float *const *a, ptrdiff_t off, const float *b, float *c, size_t ldc,
                                 const float *bias, int act) {
    float acc[PYCONV_ROWS_MR][PYCONV_GEMM_NR_MAX];
    memset(acc, 0, sizeof(acc));
    for (size_t k = 0; k < K; k++) {
        const float *ak = a[k] + off, *bk = b + k * nrp;
        for (size_t i = 0; i < mr; i++)
            for (size_t j = 0; j < nrp; j++) acc[i][j] += ak[(ptrdiff_t)i * S] * bk[j];
    }
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j++)
            c[i * ldc + j] = pyconv_activate(acc[i][j] + (bias ? bias[j] : 0.0f), act);
}

#if defined(__AVX512F__)
/* ROWS (4, 8 or 12) pixels x NB zmm columns (NB = 2, ROWS = 12: 24 accumulators); S a literal at the
 * calls below makes each broadcast an immediate offset from a[k].  A row's last 1-8 pixels run on the
 * 4- or 8-pixel variant (112 = 9 x 12 + 4 pixels paid for 120). */
static inline __attribute__((always_inline)) void
pyconv_rows_avx512_impl(const int NB, const ptrdiff_t S, const int ROWS, size_t mr, size_t nr, size_t K,
                        const float *const *a, ptrdiff_t off, const float *b, float *c, size_t ldc,
                        const float *bias, int act) {
    __m512 x0 = _mm512_setzero_ps(), y0 = x0, x1 = x0, y1 = x0, x2 = x0, y2 = x0, x3 = x0, y3 = x0,
           x4 = x0, y4 = x0, x5 = x0, y5 = x0, x6 = x0, y6 = x0, x7 = x0, y7 = x0,
           x8 = x0, y8 = x0, x9 = x0, y9 = x0, x10 = x0, y10 = x0, x11 = x0, y11 = x0;
    for (size_t k = 0; k < K; k++) {
        const float *r = a[k] + off;
        const __m512 b0 = _mm512_load_ps(b), b1 = NB > 1 ? _mm512_load_ps(b + 16) : b0;
        b += 16 * NB;
        __m512 t;
#define PYCONV_ROW(i) if (ROWS > i) { t = _mm512_set1_ps(r[i * S]); x##i = _mm512_fmadd_ps(t, b0, x##i); \
                      if (NB > 1) y##i = _mm512_fmadd_ps(t, b1, y##i); }
        PYCONV_ROW(0) PYCONV_ROW(1) PYCONV_ROW(2) PYCONV_ROW(3) PYCONV_ROW(4) PYCONV_ROW(5)
        PYCONV_ROW(6) PYCONV_ROW(7) PYCONV_ROW(8) PYCONV_ROW(9) PYCONV_ROW(10) PYCONV_ROW(11)
#undef PYCONV_ROW
    }
    const __mmask16 m0 = pyconv_mask16(nr), m1 = nr > 16 ? pyconv_mask16(nr - 16) : 0;
    __m512 base0 = _mm512_setzero_ps(), base1 = base0;
    if (bias) {
        base0 = _mm512_maskz_loadu_ps(m0, bias);
        if (NB > 1) base1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
#define PYCONV_STORE(i)                                                                           \
    if (ROWS > i && mr > i) {                                                                     \
        _mm512_mask_storeu_ps(c + i * ldc, m0, pyconv_act512(_mm512_add_ps(x##i, base0), act));   \
        if (NB > 1)                                                                               \
            _mm512_mask_storeu_ps(c + i * ldc + 16, m1, pyconv_act512(_mm512_add_ps(y##i, base1), act)); \
    }
    PYCONV_STORE(0) PYCONV_STORE(1) PYCONV_STORE(2) PYCONV_STORE(3) PYCONV_STORE(4) PYCONV_STORE(5)
    PYCONV_STORE(6) PYCONV_STORE(7) PYCONV_STORE(8) PYCONV_STORE(9) PYCONV_STORE(10) PYCONV_STORE(11)
#undef PYCONV_STORE
}
#endif

static inline void pyconv_rows(ptrdiff_t S, size_t mr, size_t nr, size_t nrp, size_t K,
                               const float *const *a, ptrdiff_t off, const float *b, float *c, size_t ldc,
                               const float *bias, int act) {
#if defined(__AVX512F__)
    if (!pyconv_portable) {
        const int nb = nrp > 16 ? 2 : 1;
        if (nb == 2 && S == 2 && mr > 8)
            pyconv_rows_avx512_impl(2, 2, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
        else if (nb == 2 && S == 2 && mr > 4)
            pyconv_rows_avx512_impl(2, 2, 8, mr, nr, K, a, off, b, c, ldc, bias, act);
        else if (nb == 2 && S == 2)
            pyconv_rows_avx512_impl(2, 2, 4, mr, nr, K, a, off, b, c, ldc, bias, act);
        else if (nb == 2 && S == 1)
            pyconv_rows_avx512_impl(2, 1, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
        else if (nb == 2)
            pyconv_rows_avx512_impl(2, S, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
        else if (S == 2)
            pyconv_rows_avx512_impl(1, 2, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
        else
            pyconv_rows_avx512_impl(1, S, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
        return;
    }
#endif
    pyconv_rows_portable(S, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
}

/* ---------------------------------------------------------------- depthwise row */

/* Geometry of one depthwise layer: input (H, W, C) of one image, kernel (KH, KW), weights packed
 * (KH*KW, C), pads top/left, output width OW; in_act: the activation code applied to every input value
 * as it is read (a relu before the layer, as in Xception's blocks, fused into it), 0 for none;
 * prefetch: whether the row kernel prefetches its input ahead (an image too large to be in cache). */
typedef struct {
    ptrdiff_t H, W, C, KH, KW, SH, SW, DH, DW, PT, PL, OW;
    int in_act, prefetch;
} pyconv_dw_geom;

/* Output columns ahead whose input columns the depthwise row kernel prefetches. */
#define PYCONV_DW_PREFETCH_AHEAD 8

/* Prefetch every channel of the input columns that output columns [ow, ow + n) add to the window on
 * their right (SW of them each), in the kernel rows [kh_lo, kh_hi) of output row oh.  The row kernel
 * sweeps its input once per 32 channels; a map that the layer before has just written has left the
 * caches, and the first sweep, reading 2 lines in every pixel's C/16, kept too few misses in flight
 * for the hardware prefetcher (the max pool's problem, _pool.h). */
static inline void pyconv_dw_prefetch(const pyconv_dw_geom *g, const float *x, ptrdiff_t oh, ptrdiff_t ow,
                                      ptrdiff_t n, ptrdiff_t kh_lo, ptrdiff_t kh_hi) {
    ptrdiff_t w1 = (ow + n - 1) * g->SW - g->PL + (g->KW - 1) * g->DW + 1, w0 = w1 - n * g->SW;
    if (w0 < 0) w0 = 0;
    if (w1 > g->W) w1 = g->W;
    if (w1 <= w0) return;
    for (ptrdiff_t kh = kh_lo; kh < kh_hi; kh++) {
        const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
        pyconv_prefetch_floats(x + (ih * g->W + w0) * g->C, (w1 - w0) * g->C);
    }
}

/* Output row oh, columns [ow_begin, ow_end), channels [c_begin, c_end); y points at column ow_begin. */
static void pyconv_dw_row_portable(const pyconv_dw_geom *g, const float *x, const float *w,
                                   const float *bias, float *y, ptrdiff_t oh, ptrdiff_t ow_begin,
                                   ptrdiff_t ow_end, ptrdiff_t c_begin, ptrdiff_t c_end, int act) {
    const ptrdiff_t C = g->C;
    for (ptrdiff_t ow = ow_begin; ow < ow_end; ow++) {
        float *yo = y + (ow - ow_begin) * C;
        for (ptrdiff_t c = c_begin; c < c_end; c++) yo[c] = 0.0f;
        for (ptrdiff_t kh = 0; kh < g->KH; kh++) {
            const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
            if (ih < 0 || ih >= g->H) continue;
            for (ptrdiff_t kw = 0; kw < g->KW; kw++) {
                const ptrdiff_t iw = ow * g->SW - g->PL + kw * g->DW;
                if (iw < 0 || iw >= g->W) continue;
                const float *xi = x + (ih * g->W + iw) * C, *wk = w + (kh * g->KW + kw) * C;
                for (ptrdiff_t c = c_begin; c < c_end; c++) yo[c] += pyconv_activate(xi[c], g->in_act) * wk[c];
            }
        }
        for (ptrdiff_t c = c_begin; c < c_end; c++)
            yo[c] = pyconv_activate(yo[c] + (bias ? bias[c] : 0.0f), act);
    }
}

#if defined(__AVX512F__)
/* One tap for four pixels SW apart (8 FMA chains: a*, c_* hold channels 0-15 and 16-31), and the
 * store of the four finished pixels. */
#define PYCONV_DW_IN(m, p) pyconv_act512(_mm512_maskz_loadu_ps(m, p), IN_ACT)
#define PYCONV_DW_FMA4(xp, w0, w1)                                                         \
    a0 = _mm512_fmadd_ps(PYCONV_DW_IN(m0, xp), w0, a0);                                    \
    c_0 = _mm512_fmadd_ps(PYCONV_DW_IN(m1, xp + 16), w1, c_0);                             \
    a1 = _mm512_fmadd_ps(PYCONV_DW_IN(m0, xp + SW * C), w0, a1);                           \
    c_1 = _mm512_fmadd_ps(PYCONV_DW_IN(m1, xp + SW * C + 16), w1, c_1);                    \
    a2 = _mm512_fmadd_ps(PYCONV_DW_IN(m0, xp + 2 * SW * C), w0, a2);                       \
    c_2 = _mm512_fmadd_ps(PYCONV_DW_IN(m1, xp + 2 * SW * C + 16), w1, c_2);                \
    a3 = _mm512_fmadd_ps(PYCONV_DW_IN(m0, xp + 3 * SW * C), w0, a3);                       \
    c_3 = _mm512_fmadd_ps(PYCONV_DW_IN(m1, xp + 3 * SW * C + 16), w1, c_3);
#define PYCONV_DW_STORE4(yo)                                                               \
    _mm512_mask_storeu_ps(yo, m0, pyconv_act512(_mm512_add_ps(a0, b0), act));              \
    _mm512_mask_storeu_ps(yo + 16, m1, pyconv_act512(_mm512_add_ps(c_0, b1), act));        \
    _mm512_mask_storeu_ps(yo + C, m0, pyconv_act512(_mm512_add_ps(a1, b0), act));          \
    _mm512_mask_storeu_ps(yo + C + 16, m1, pyconv_act512(_mm512_add_ps(c_1, b1), act));    \
    _mm512_mask_storeu_ps(yo + 2 * C, m0, pyconv_act512(_mm512_add_ps(a2, b0), act));      \
    _mm512_mask_storeu_ps(yo + 2 * C + 16, m1, pyconv_act512(_mm512_add_ps(c_2, b1), act)); \
    _mm512_mask_storeu_ps(yo + 3 * C, m0, pyconv_act512(_mm512_add_ps(a3, b0), act));      \
    _mm512_mask_storeu_ps(yo + 3 * C + 16, m1, pyconv_act512(_mm512_add_ps(c_3, b1), act));

/* NPX output pixels SW apart x 16 channels (mask m), weights held in registers (wk: KH*KW taps), biased,
 * activated and stored to yo (pixels C floats apart).  xr0 is where the window of the first pixel starts
 * (kernel row 0, column j = 0), inside the image or not.  Without CHECKED every tap is inside the image;
 * with it, only kernel rows [kh_lo, kh_hi) and window columns [j_lo, j_hi) are read (an image's edges:
 * the others are zero padding).  With STREAM (the literal 3x3 specialisations), each input pixel of a
 * kernel row is loaded once and multiplied into every output pixel that reads it: 3x3 stride 1 loads 6
 * vectors per row for 4 pixels instead of 12 (112x112x32: 0.074 -> 0.058 ms on one thread; 8 pixels at
 * a time measured no faster).  Every pixel sums its taps in (kh, kw) order, as the other paths do, so
 * results do not depend on which path ran. */
static inline __attribute__((always_inline)) void
pyconv_dw_held(const int NPX, const int STREAM, const int IN_ACT, const int CHECKED, const float *xr0,
               ptrdiff_t row_stride, ptrdiff_t C, __mmask16 m, const __m512 *wk, __m512 bv, float *yo, int act,
               ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t DW, ptrdiff_t kh_lo, ptrdiff_t kh_hi,
               ptrdiff_t j_lo, ptrdiff_t j_hi) {
    __m512 acc[4];
    for (int i = 0; i < NPX; i++) acc[i] = _mm512_setzero_ps();
    for (ptrdiff_t kh = 0; kh < KH; kh++) {
        if (CHECKED && (kh < kh_lo || kh >= kh_hi)) continue;
        const float *xr = xr0 + kh * row_stride;
        if (STREAM) {
            for (ptrdiff_t j = 0; j < (NPX - 1) * SW + (KW - 1) * DW + 1; j++) {
                if (CHECKED && (j < j_lo || j >= j_hi)) continue;
                const __m512 v = PYCONV_DW_IN(m, xr + j * C);
                for (ptrdiff_t kw = 0; kw < KW; kw++) {
                    const ptrdiff_t t = j - kw * DW;
                    if (t >= 0 && t % SW == 0 && t / SW < NPX)
                        acc[t / SW] = _mm512_fmadd_ps(v, wk[kh * KW + kw], acc[t / SW]);
                }
            }
        } else {
            for (ptrdiff_t kw = 0; kw < KW; kw++)
                for (int i = 0; i < NPX; i++) {
                    const ptrdiff_t j = i * SW + kw * DW;
                    if (CHECKED && (j < j_lo || j >= j_hi)) continue;
                    acc[i] = _mm512_fmadd_ps(PYCONV_DW_IN(m, xr + j * C), wk[kh * KW + kw], acc[i]);
                }
        }
    }
    for (int i = 0; i < NPX; i++)
        _mm512_mask_storeu_ps(yo + i * C, m, pyconv_act512(_mm512_add_ps(acc[i], bv), act));
}

/* Taps whose weights the depthwise row keeps in registers (3x3: 18 zmm beside 8 accumulators). */
#define PYCONV_DW_HELD_TAPS 9

/* Four output pixels x 32 channels = 8 independent FMA chains, which hides the FMA latency that
 * bounds a one-pixel loop; pixels whose window crosses the left or right edge run one at a time,
 * skipping the taps outside the image (measured faster than four at a time reading zeros: ~47 vs ~37
 * GFLOP/s at 14x14x512).  KW/SW/DW are passed as
 * arguments so that the calls with literal 3x3 s1/s2 below are specialised by the compiler. */
static inline __attribute__((always_inline)) void
pyconv_dw_row_avx512_impl(const pyconv_dw_geom *g, const float *x, const float *w, const float *bias,
                          float *y, ptrdiff_t oh, ptrdiff_t ow_begin, ptrdiff_t ow_end, ptrdiff_t c_begin,
                          ptrdiff_t c_end, int act, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t DW,
                          const int STREAM, const int IN_ACT) {
    const ptrdiff_t C = g->C, W = g->W, PL = g->PL;
    ptrdiff_t kh_lo = 0, kh_hi = KH;
    while (kh_lo < KH && oh * g->SH - g->PT + kh_lo * g->DH < 0) kh_lo++;
    while (kh_hi > kh_lo && oh * g->SH - g->PT + (kh_hi - 1) * g->DH >= g->H) kh_hi--;
    /* Output columns whose whole window lies inside the row: [ow_lo, ow_hi). */
    ptrdiff_t ow_lo = PL > 0 ? (PL + SW - 1) / SW : 0;
    ptrdiff_t ow_hi = (W - 1 - (KW - 1) * DW + PL) >= 0 ? (W - 1 - (KW - 1) * DW + PL) / SW + 1 : 0;
    if (ow_hi > ow_end) ow_hi = ow_end;
    if (ow_lo < ow_begin) ow_lo = ow_begin;
    if (ow_lo > ow_hi) ow_lo = ow_hi;
    /* Kernels small enough to hold their weights in registers run every pixel, edges included, 4 at a
     * time through pyconv_dw_held: at 7x7x1024 a row has 2 edge pixels of 7, and one pixel at a time
     * waits on its FMA latency (7x7x1024 on one thread: 18.6 us with the edges one by one). */
    const int held = KH * KW <= PYCONV_DW_HELD_TAPS;
    const int full_rows = kh_lo == 0 && kh_hi == KH;
    for (ptrdiff_t c0 = c_begin; c0 < c_end; c0 += 32) {
        const ptrdiff_t cn = c_end - c0;
        const __mmask16 m0 = pyconv_mask16(cn > 16 ? 16 : (size_t)cn),
                        m1 = cn > 16 ? pyconv_mask16((size_t)(cn - 16)) : 0;
        const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias + c0) : _mm512_setzero_ps();
        const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + c0 + 16) : _mm512_setzero_ps();
        __m512 wk0[PYCONV_DW_HELD_TAPS], wk1[PYCONV_DW_HELD_TAPS];
        if (held)
            for (ptrdiff_t t = 0; t < KH * KW; t++) {
                wk0[t] = _mm512_maskz_loadu_ps(m0, w + t * C + c0);
                wk1[t] = _mm512_maskz_loadu_ps(m1, w + t * C + c0 + 16);
            }
        const int pf = g->prefetch && c0 == c_begin;
        ptrdiff_t ow = ow_begin;
        while (ow < ow_end) {
            const int interior = ow >= ow_lo && ow + 4 <= ow_hi;
            if (held) {
                const ptrdiff_t npx = ow_end - ow < 4 ? ow_end - ow : 4;
                if (pf && ow + PYCONV_DW_PREFETCH_AHEAD < ow_end)
                    pyconv_dw_prefetch(g, x, oh, ow + PYCONV_DW_PREFETCH_AHEAD, npx, kh_lo, kh_hi);
                const ptrdiff_t iw0 = ow * SW - PL;
                const float *xr0 = x + ((oh * g->SH - g->PT) * W + iw0) * C + c0;
                float *yo = y + (ow - ow_begin) * C + c0;
                const ptrdiff_t rs = g->DH * W * C;
                const ptrdiff_t j_lo = iw0 < 0 ? -iw0 : 0, j_hi = W - iw0;
#define PYCONV_DW_HELD(NPX, CHECKED)                                                                 \
                pyconv_dw_held(NPX, STREAM, IN_ACT, CHECKED, xr0, rs, C, m0, wk0, b0, yo, act, KH, KW, SW, \
                               DW, kh_lo, kh_hi, j_lo, j_hi);                                        \
                pyconv_dw_held(NPX, STREAM, IN_ACT, CHECKED, xr0 + 16, rs, C, m1, wk1, b1, yo + 16, act, KH, \
                               KW, SW, DW, kh_lo, kh_hi, j_lo, j_hi);
#define PYCONV_DW_HELD_NPX(CHECKED)                                                                  \
                if (npx == 4) {                                                                      \
                    PYCONV_DW_HELD(4, CHECKED)                                                       \
                } else if (npx == 3) {                                                               \
                    PYCONV_DW_HELD(3, CHECKED)                                                       \
                } else if (npx == 2) {                                                               \
                    PYCONV_DW_HELD(2, CHECKED)                                                       \
                } else {                                                                             \
                    PYCONV_DW_HELD(1, CHECKED)                                                       \
                }
                if (full_rows && ow >= ow_lo && ow + npx <= ow_hi) {
                    PYCONV_DW_HELD_NPX(0)
                } else {
                    PYCONV_DW_HELD_NPX(1)
                }
#undef PYCONV_DW_HELD_NPX
#undef PYCONV_DW_HELD
                ow += npx;
            } else if (interior) {
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, c_0 = a0, c_1 = a0, c_2 = a0,
                       c_3 = a0;
                for (ptrdiff_t kh = kh_lo; kh < kh_hi; kh++) {
                    const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
                    const float *xr = x + (ih * W + ow * SW - PL) * C + c0;
                    const float *wr = w + kh * KW * C + c0;
                    for (ptrdiff_t kw = 0; kw < KW; kw++) {
                        const float *xp = xr + kw * DW * C;
                        const __m512 w0 = _mm512_maskz_loadu_ps(m0, wr + kw * C);
                        const __m512 w1 = _mm512_maskz_loadu_ps(m1, wr + kw * C + 16);
                        PYCONV_DW_FMA4(xp, w0, w1)
                    }
                }
                PYCONV_DW_STORE4(y + (ow - ow_begin) * C + c0)
                ow += 4;
            } else {
                __m512 a0 = _mm512_setzero_ps(), c_0 = a0;
                for (ptrdiff_t kh = kh_lo; kh < kh_hi; kh++) {
                    const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
                    for (ptrdiff_t kw = 0; kw < KW; kw++) {
                        const ptrdiff_t iw = ow * SW - PL + kw * DW;
                        if (iw < 0 || iw >= W) continue;
                        const float *xp = x + (ih * W + iw) * C + c0;
                        const float *wp = w + (kh * KW + kw) * C + c0;
                        a0 = _mm512_fmadd_ps(PYCONV_DW_IN(m0, xp), _mm512_maskz_loadu_ps(m0, wp), a0);
                        c_0 = _mm512_fmadd_ps(PYCONV_DW_IN(m1, xp + 16), _mm512_maskz_loadu_ps(m1, wp + 16), c_0);
                    }
                }
                float *yo = y + (ow - ow_begin) * C + c0;
                _mm512_mask_storeu_ps(yo, m0, pyconv_act512(_mm512_add_ps(a0, b0), act));
                _mm512_mask_storeu_ps(yo + 16, m1, pyconv_act512(_mm512_add_ps(c_0, b1), act));
                ow += 1;
            }
        }
    }
}
#undef PYCONV_DW_IN
#undef PYCONV_DW_FMA4
#undef PYCONV_DW_STORE4
#endif

static void pyconv_dw_row(const pyconv_dw_geom *g, const float *x, const float *w, const float *bias,
                          float *y, ptrdiff_t oh, ptrdiff_t ow_begin, ptrdiff_t ow_end, ptrdiff_t c_begin,
                          ptrdiff_t c_end, int act) {
#if defined(__AVX512F__)
    if (!pyconv_portable) {
        /* Literal 3x3 geometry (and no input activation) lets the compiler unroll and specialise. */
        const int ia = g->in_act;
        if (g->KH == 3 && g->KW == 3 && g->DW == 1 && g->SW == 1 && ia == 0)
            pyconv_dw_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 1, 1, 1, 0);
        else if (g->KH == 3 && g->KW == 3 && g->DW == 1 && g->SW == 1)
            pyconv_dw_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 1, 1, 1, ia);
        else if (g->KH == 3 && g->KW == 3 && g->DW == 1 && g->SW == 2 && ia == 0)
            pyconv_dw_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 2, 1, 1, 0);
        else if (g->KH == 3 && g->KW == 3 && g->DW == 1 && g->SW == 2)
            pyconv_dw_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 2, 1, 1, ia);
        else
            pyconv_dw_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, g->KH, g->KW,
                                      g->SW, g->DW, 0, ia);
        return;
    }
#endif
    pyconv_dw_row_portable(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act);
}

/* ---------------------------------------------------------------- narrow-group convolution row */

/* A group convolution whose groups are narrow (OG output channels per group, OG dividing 16) is a poor
 * GEMM: each group's product is only OG columns wide.  Instead, vectorise across 16 output channels of
 * several groups at once: the inputs those 16 channels read lie in (16/OG)*CG <= 32 consecutive input
 * channels, loaded as two vectors, and a permute hands lane o its group's input channel i.
 * Weights packed as (CO/16 blocks, KH*KW taps, CG, 16); idx holds CG vectors of 16 lane indices. */
typedef struct {
    ptrdiff_t H, W, C, CO, KH, KW, SH, SW, DH, DW, PT, PL, OW, CG, OG;
} pyconv_gc_geom;

static inline int pyconv_gconv_supported(ptrdiff_t cg, ptrdiff_t og) {
#if defined(__AVX512F__)
    return og >= 1 && og <= 16 && 16 % og == 0 && (16 / og) * cg <= 32;
#else
    (void)cg; (void)og;
    return 0;
#endif
}

#if defined(__AVX512F__)
static void pyconv_gconv_row_avx512(const pyconv_gc_geom *g, const float *x, const float *w, const int *idx,
                                    const float *bias, float *y, ptrdiff_t oh, int act) {
    const ptrdiff_t C = g->C, CO = g->CO, W = g->W, CG = g->CG, taps = g->KH * g->KW;
    const ptrdiff_t nblk = (CO + 15) / 16;
    for (ptrdiff_t v = 0; v < nblk; v++) {
        const ptrdiff_t co0 = v * 16, ci0 = (co0 / g->OG) * CG;
        const __mmask16 mo = pyconv_mask16((size_t)(CO - co0 < 16 ? CO - co0 : 16));
        const ptrdiff_t span_full = (16 / g->OG) * CG, avail = C - ci0;
        const ptrdiff_t span = span_full < avail ? span_full : avail;
        const __mmask16 mlo = pyconv_mask16((size_t)(span < 16 ? span : 16));
        const __mmask16 mhi = span > 16 ? pyconv_mask16((size_t)(span - 16)) : 0;
        const __m512 bvec = bias ? _mm512_maskz_loadu_ps(mo, bias + co0) : _mm512_setzero_ps();
        const float *wv = w + v * taps * CG * 16;
        for (ptrdiff_t ow = 0; ow < g->OW; ow += 4) {
            const ptrdiff_t np = g->OW - ow < 4 ? g->OW - ow : 4;
            __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
            for (ptrdiff_t kh = 0; kh < g->KH; kh++) {
                const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
                if (ih < 0 || ih >= g->H) continue;
                for (ptrdiff_t kw = 0; kw < g->KW; kw++) {
                    __m512 lo[4], hi[4];
                    int valid[4];
                    for (int p = 0; p < 4; p++) {
                        const ptrdiff_t iw = (ow + p) * g->SW - g->PL + kw * g->DW;
                        valid[p] = p < np && iw >= 0 && iw < W;
                        const float *xp = valid[p] ? x + (ih * W + iw) * C + ci0 : x;
                        lo[p] = valid[p] ? _mm512_maskz_loadu_ps(mlo, xp) : _mm512_setzero_ps();
                        hi[p] = valid[p] ? _mm512_maskz_loadu_ps(mhi, xp + 16) : _mm512_setzero_ps();
                    }
                    const float *wt = wv + (kh * g->KW + kw) * CG * 16;
                    for (ptrdiff_t i = 0; i < CG; i++) {
                        const __m512 wi = _mm512_loadu_ps(wt + i * 16);
                        const __m512i id = _mm512_loadu_si512((const void *)(idx + i * 16));
                        acc0 = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo[0], id, hi[0]), wi, acc0);
                        acc1 = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo[1], id, hi[1]), wi, acc1);
                        acc2 = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo[2], id, hi[2]), wi, acc2);
                        acc3 = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo[3], id, hi[3]), wi, acc3);
                    }
                }
            }
            float *yo = y + ow * CO + co0;
            _mm512_mask_storeu_ps(yo, mo, pyconv_act512(_mm512_add_ps(acc0, bvec), act));
            if (np > 1) _mm512_mask_storeu_ps(yo + CO, mo, pyconv_act512(_mm512_add_ps(acc1, bvec), act));
            if (np > 2) _mm512_mask_storeu_ps(yo + 2 * CO, mo, pyconv_act512(_mm512_add_ps(acc2, bvec), act));
            if (np > 3) _mm512_mask_storeu_ps(yo + 3 * CO, mo, pyconv_act512(_mm512_add_ps(acc3, bvec), act));
        }
    }
}
#endif

/* Returns 0 when this build has no narrow-group kernel (the caller must use the GEMM path). */
static int pyconv_gconv_row(const pyconv_gc_geom *g, const float *x, const float *w, const int *idx,
                            const float *bias, float *y, ptrdiff_t oh, int act) {
#if defined(__AVX512F__)
    pyconv_gconv_row_avx512(g, x, w, idx, bias, y, oh, act);
    return 1;
#else
    (void)g; (void)x; (void)w; (void)idx; (void)bias; (void)y; (void)oh; (void)act;
    return 0;
#endif
}

#endif /* PYCONV_SIMD_H */
