/*
 * GEMM tiles on AVX-512 (the tile contract of common.h): 12x32 in 24 zmm accumulators (per k: 2 loads
 * of B, 12 broadcasts of A), its 8-, 4-, 2- and 1-row variants for a block's last pixels, and the
 * 16-column twins (12x16, 4x16, 1x16) for panels of narrow layers.
 */
#include <immintrin.h>

#include "../ukernels.h"
#include "../act/avx512.h"

/* The ROWS row pointers of one pointer set; rows past ROWS alias row 0 and are never used. */
#define PYCONV_A_ROWS(as)                                                                               \
    const float *a0 = (as)[0], *a1 = (as)[1], *a2 = (as)[2], *a3 = (as)[3];                             \
    const float *a4 = ROWS > 4 ? (as)[4] : a0, *a5 = ROWS > 4 ? (as)[5] : a0;                           \
    const float *a6 = ROWS > 4 ? (as)[6] : a0, *a7 = ROWS > 4 ? (as)[7] : a0;                           \
    const float *a8 = ROWS > 8 ? (as)[8] : a0, *a9 = ROWS > 8 ? (as)[9] : a0;                           \
    const float *a10 = ROWS > 8 ? (as)[10] : a0, *a11 = ROWS > 8 ? (as)[11] : a0;

/* One cache line of the B block the caller will need next, per k step, into L2 (not L1, which holds
 * the B block in use): a weight panel read cold from memory would otherwise stall the first tile that
 * uses it, and a layer's weights are cold whenever the model's weights outgrow the caches.  The tiles
 * run their k loop in two copies, with PF 1 and 0: a test of pf in the loop cost the 12-row tiles more
 * than the prefetch itself (most tiles of a block prefetch nothing). */
#define PYCONV_PREFETCH_NEXT(PF)                                                                        \
    if (PF) { _mm_prefetch((const char *)pf, _MM_HINT_T1); pf += 16; }

/* A tile's k loop over one pointer set, in those two copies; the tile defines PYCONV_LOAD_B (the
 * step's B vectors, b advanced past them) and PYCONV_ROW(i) (row i's FMAs). */
#define PYCONV_K_LOOP(PF)                                                                               \
    for (size_t k = 0; k < kc; k++) {                                                                   \
        PYCONV_LOAD_B                                                                                   \
        PYCONV_PREFETCH_NEXT(PF)                                                                        \
        PYCONV_ROW(0) PYCONV_ROW(1) PYCONV_ROW(2) PYCONV_ROW(3) PYCONV_ROW(4) PYCONV_ROW(5)             \
        PYCONV_ROW(6) PYCONV_ROW(7) PYCONV_ROW(8) PYCONV_ROW(9) PYCONV_ROW(10) PYCONV_ROW(11)           \
    }
#define PYCONV_K_LOOPS if (pf) { PYCONV_K_LOOP(1) } else { PYCONV_K_LOOP(0) }

/* Up to 24 accumulators in zmm registers: ROWS rows x (2 x 16 columns); per k: 2 loads of B and ROWS
 * broadcasts of A.  ROWS is a literal at each call below, so the unused rows compile away: the 1- to
 * 8-row variants keep small remainders (49 = 4 x 12 + 1 pixels) from paying for a full 12-row tile, and
 * a lone row (49's last pixel, a dense layer at batch 1) from paying for four. */
static inline __attribute__((always_inline)) void
pyconv_igemm_avx512_rows(const int ROWS, size_t mr, size_t nr, size_t ks, size_t kc,
                        const float *const *a, const float *b, float *c, size_t ldc,
                        const float *bias, const float *res, int accumulate, int act, const float *pf) {
    __m512 x0 = _mm512_setzero_ps(), y0 = x0, x1 = x0, y1 = x0, x2 = x0, y2 = x0, x3 = x0, y3 = x0,
           x4 = x0, y4 = x0, x5 = x0, y5 = x0, x6 = x0, y6 = x0, x7 = x0, y7 = x0,
           x8 = x0, y8 = x0, x9 = x0, y9 = x0, x10 = x0, y10 = x0, x11 = x0, y11 = x0;
    for (size_t s = 0; s < ks; s++) {
        PYCONV_A_ROWS(a + s * PYCONV_GEMM_MR)
#define PYCONV_ROW(i) if (ROWS > i) { const __m512 t = _mm512_set1_ps(a##i[k]);                             \
                      x##i = _mm512_fmadd_ps(t, b0, x##i); y##i = _mm512_fmadd_ps(t, b1, y##i); }
#define PYCONV_LOAD_B const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16); b += 32;
        PYCONV_K_LOOPS
#undef PYCONV_LOAD_B
#undef PYCONV_ROW
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
        _mm512_mask_storeu_ps(ci, m0, pyconv_act__avx512(v0, act));                          \
        _mm512_mask_storeu_ps(ci + 16, m1, pyconv_act__avx512(v1, act));                     \
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
pyconv_igemm_avx512_short(const int ROWS, size_t mr, size_t nr, size_t ks, size_t kc,
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
            PYCONV_PREFETCH_NEXT(pf)                                                                    \
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
        _mm512_mask_storeu_ps(ci, m0, pyconv_act__avx512(v0, act));
        _mm512_mask_storeu_ps(ci + 16, m1, pyconv_act__avx512(v1, act));
    }
}

/* The 16-column twin: 12 accumulators, one load of B and ROWS broadcasts per k. */
static inline __attribute__((always_inline)) void
pyconv_igemm16_avx512_rows(const int ROWS, size_t mr, size_t nr, size_t ks, size_t kc,
                          const float *const *a, const float *b, float *c, size_t ldc,
                          const float *bias, const float *res, int accumulate, int act, const float *pf) {
    __m512 x0 = _mm512_setzero_ps(), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0,
           x8 = x0, x9 = x0, x10 = x0, x11 = x0;
    for (size_t s = 0; s < ks; s++) {
        PYCONV_A_ROWS(a + s * PYCONV_GEMM_MR)
#define PYCONV_ROW(i) if (ROWS > i) x##i = _mm512_fmadd_ps(_mm512_set1_ps(a##i[k]), b0, x##i);
#define PYCONV_LOAD_B const __m512 b0 = _mm512_load_ps(b); b += 16;
        PYCONV_K_LOOPS
#undef PYCONV_LOAD_B
#undef PYCONV_ROW
    }
    const __mmask16 m0 = pyconv_mask16(nr);
    __m512 base0 = _mm512_setzero_ps();
    if (!accumulate && bias) base0 = _mm512_maskz_loadu_ps(m0, bias);
#define PYCONV_STORE(i)                                                                   \
    if (ROWS > i && mr > i) {                                                             \
        float *ci = c + i * ldc;                                                          \
        __m512 v0 = _mm512_add_ps(x##i, accumulate ? _mm512_maskz_loadu_ps(m0, ci) : base0); \
        if (!accumulate && res) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, res + i * ldc)); \
        _mm512_mask_storeu_ps(ci, m0, pyconv_act__avx512(v0, act));                            \
    }
    PYCONV_STORE(0) PYCONV_STORE(1) PYCONV_STORE(2) PYCONV_STORE(3) PYCONV_STORE(4) PYCONV_STORE(5)
    PYCONV_STORE(6) PYCONV_STORE(7) PYCONV_STORE(8) PYCONV_STORE(9) PYCONV_STORE(10) PYCONV_STORE(11)
#undef PYCONV_STORE
}

/* The named micro-kernels: pyconv_gemm_<MR>x<NR>_avx512. */
/* The named micro-kernels: pyconv_igemm_<MR>x<NR>__avx512. */
#define PYCONV_GEMM_KERNEL(NAME, IMPL, ROWS)                                                            \
    static void NAME(size_t mr, size_t nr, size_t ks, size_t kc, const float *const *a, const float *b, \
                     float *c, size_t ldc, const float *bias, const float *res, int accumulate, int act,     \
                     const float *pf) {                                                                \
        IMPL(ROWS, mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);                    \
    }
PYCONV_GEMM_KERNEL(pyconv_igemm_12x16__avx512, pyconv_igemm16_avx512_rows, 12)
PYCONV_GEMM_KERNEL(pyconv_igemm_4x16__avx512, pyconv_igemm16_avx512_rows, 4)
PYCONV_GEMM_KERNEL(pyconv_igemm_1x16__avx512, pyconv_igemm16_avx512_rows, 1)
PYCONV_GEMM_KERNEL(pyconv_igemm_12x32__avx512, pyconv_igemm_avx512_rows, 12)
PYCONV_GEMM_KERNEL(pyconv_igemm_8x32__avx512, pyconv_igemm_avx512_rows, 8)
PYCONV_GEMM_KERNEL(pyconv_igemm_4x32__avx512, pyconv_igemm_avx512_rows, 4)
PYCONV_GEMM_KERNEL(pyconv_igemm_2x32__avx512, pyconv_igemm_avx512_short, 2)
PYCONV_GEMM_KERNEL(pyconv_igemm_1x32__avx512, pyconv_igemm_avx512_short, 1)
#undef PYCONV_GEMM_KERNEL

/* 5 to 8 rows run the 8-row tile, more the 12-row one, and the 1- and 2-row tiles wait on their few
 * accumulators' FMA latency as long as the 4-row tile does. */
ptrdiff_t pyconv_igemm_tile_rows__avx512(ptrdiff_t mr) {
    return mr <= 4 ? 4 : mr <= 8 ? 8 : PYCONV_GEMM_MR;
}

void pyconv_igemm__avx512(PYCONV_IGEMM_ARGS) {
    if (nrp == 16) {
        if (mr > 4)
            pyconv_igemm_12x16__avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
        else if (mr > 1)
            pyconv_igemm_4x16__avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
        else
            pyconv_igemm_1x16__avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
    } else if (mr > 8)
        pyconv_igemm_12x32__avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
    else if (mr > 4)
        pyconv_igemm_8x32__avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
    else if (mr > 2)
        pyconv_igemm_4x32__avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
    else if (mr > 1)
        pyconv_igemm_2x32__avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
    else
        pyconv_igemm_1x32__avx512(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
}
