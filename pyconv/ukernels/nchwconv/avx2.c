/*
 * The convolution on input rows (a first layer over an RGB image, NCHW or NHWC) on AVX2 + FMA: up to 12
 * output pixels whose inputs lie S floats apart in each row, by a panel of 16 or 32 output channels.  As in the GEMM, one 6x16 block
 * (12 ymm accumulators) at a time, for each group of 6 pixels, each 16-column half of the panel.
 */
#include "../ukernels.h"
#include "../act/avx2.h"

/* act(v + base) into the n (<= 0 for none) valid floats of 8 at c. */
static inline void pyconv_store8(float *c, __m256 v, __m256 base, ptrdiff_t n, int act) {
    v = pyconv_act__avx2(_mm256_add_ps(v, base), act);
    if (n >= 8) {
        _mm256_storeu_ps(c, v);
    } else if (n > 0) {
        pyconv_store_part8(c, v, n);
    }
}

/* The n valid floats of 8 at p, zeros past them. */
static inline __m256 pyconv_load8(const float *p, ptrdiff_t n) {
    return n >= 8 ? _mm256_loadu_ps(p) : pyconv_load_part8(p, n);
}

/* ROWS (2, 4 or 6) pixels x NB (1 or 2) vectors of 8 columns; S a literal at the calls below makes each
 * broadcast an immediate offset from a[k].  b, bias and c start at the block's first column, off and c
 * at its first pixel; n counts the valid columns from there.  Pixels past mr are computed, not stored:
 * every input row holds the whole 12-pixel tile (common.h). */
static inline __attribute__((always_inline)) void
pyconv_nchw_block(const int ROWS, const int NB, const ptrdiff_t S, size_t mr, size_t nrp, size_t K,
                  const float *const *a, ptrdiff_t off, const float *b, float *c, size_t ldc, ptrdiff_t n,
                  const float *bias, int act) {
    __m256 x0 = _mm256_setzero_ps(), y0 = x0, x1 = x0, y1 = x0, x2 = x0, y2 = x0, x3 = x0, y3 = x0,
           x4 = x0, y4 = x0, x5 = x0, y5 = x0;
    for (size_t k = 0; k < K; k++) {
        const float *r = a[k] + off;
        const __m256 b0 = _mm256_load_ps(b), b1 = NB > 1 ? _mm256_load_ps(b + 8) : b0;
        b += nrp;
        __m256 t;
#define PYCONV_ROW(i) if (ROWS > i) { t = _mm256_broadcast_ss(r + i * S); x##i = _mm256_fmadd_ps(t, b0, x##i); \
                      if (NB > 1) y##i = _mm256_fmadd_ps(t, b1, y##i); }
        PYCONV_ROW(0) PYCONV_ROW(1) PYCONV_ROW(2) PYCONV_ROW(3) PYCONV_ROW(4) PYCONV_ROW(5)
#undef PYCONV_ROW
    }
    __m256 base0 = _mm256_setzero_ps(), base1 = base0;
    if (bias) {
        base0 = pyconv_load8(bias, n);
        if (NB > 1) base1 = pyconv_load8(bias + 8, n - 8);
    }
#define PYCONV_STORE(i)                                                                               \
    if (ROWS > i && mr > i) {                                                                         \
        pyconv_store8(c + i * ldc, x##i, base0, n, act);                                              \
        if (NB > 1) pyconv_store8(c + i * ldc + 8, y##i, base1, n - 8, act);                          \
    }
    PYCONV_STORE(0) PYCONV_STORE(1) PYCONV_STORE(2) PYCONV_STORE(3) PYCONV_STORE(4) PYCONV_STORE(5)
#undef PYCONV_STORE
}

/* Pixels [r0, r0 + mr) (at most 6) on the smallest block of 2, 4 or 6 that holds them, every 16-column
 * half that has a valid column (8 wide if it has at most 8). */
static inline __attribute__((always_inline)) void
pyconv_nchw_rows(const ptrdiff_t S, size_t r0, size_t mr, size_t nr, size_t nrp, size_t K,
                 const float *const *a, ptrdiff_t off, const float *b, float *c, size_t ldc,
                 const float *bias, int act) {
    off += (ptrdiff_t)r0 * S;
    c += r0 * ldc;
    for (size_t j0 = 0; j0 < nrp && j0 < nr; j0 += 16) {
        const ptrdiff_t n = (ptrdiff_t)(nr - j0);
        const float *bj = bias ? bias + j0 : NULL;
#define PYCONV_BLOCK(ROWS, NB)                                                                        \
        pyconv_nchw_block(ROWS, NB, S, mr, nrp, K, a, off, b + j0, c + j0, ldc, n, bj, act)
        if (n > 8) {
            if (mr > 4) PYCONV_BLOCK(6, 2); else if (mr > 2) PYCONV_BLOCK(4, 2); else PYCONV_BLOCK(2, 2);
        } else {
            if (mr > 4) PYCONV_BLOCK(6, 1); else if (mr > 2) PYCONV_BLOCK(4, 1); else PYCONV_BLOCK(2, 1);
        }
#undef PYCONV_BLOCK
    }
}

static inline __attribute__((always_inline)) void
pyconv_nchw_tile(const ptrdiff_t S, size_t mr, size_t nr, size_t nrp, size_t K, const float *const *a,
                 ptrdiff_t off, const float *b, float *c, size_t ldc, const float *bias, int act) {
    pyconv_nchw_rows(S, 0, mr < 6 ? mr : 6, nr, nrp, K, a, off, b, c, ldc, bias, act);
    if (mr > 6) pyconv_nchw_rows(S, 6, mr - 6, nr, nrp, K, a, off, b, c, ldc, bias, act);
}

/* S = 3 and 6: an RGB image read in place in NHWC at stride 1 and 2.  The tile is always inlined, so
 * each literal S below gets its own copy with immediate offsets. */
void pyconv_nchwconv__avx2(PYCONV_NCHWCONV_ARGS) {
    if (S == 1)
        pyconv_nchw_tile(1, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
    else if (S == 2)
        pyconv_nchw_tile(2, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
    else if (S == 6)
        pyconv_nchw_tile(6, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
    else if (S == 3)
        pyconv_nchw_tile(3, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
    else
        pyconv_nchw_tile(S, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
}
