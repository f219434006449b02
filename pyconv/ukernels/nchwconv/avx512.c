/*
 * Convolution on input rows on AVX-512: C[mr x nr] = bias + sum over k of a[k][off + i * S] * b[k], the
 * tile's 12 output pixels S floats apart in an input row (NCHW: S = stride; NHWC: stride x channels),
 * so a 3-channel first layer reads the caller's image in place and needs no pointer per pixel.
 */
#include <immintrin.h>

#include "../ukernels.h"
#include "../act/avx512.h"

/* ROWS (4, 8 or 12) pixels x NB zmm columns (NB = 2, ROWS = 12: 24 accumulators); S a literal at the
 * calls below makes each broadcast an immediate offset from a[k] (S = 3 and 6: an RGB image read in
 * place in NHWC at stride 1 and 2).  A row's last 1-8 pixels run on the
 * 4- or 8-pixel variant (112 = 9 x 12 + 4 pixels paid for 120). */
static inline __attribute__((always_inline)) void
pyconv_nchwconv_avx512_impl(const int NB, const ptrdiff_t S, const int ROWS, size_t mr, size_t nr, size_t K,
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
        _mm512_mask_storeu_ps(c + i * ldc, m0, pyconv_act__avx512(_mm512_add_ps(x##i, base0), act));   \
        if (NB > 1)                                                                               \
            _mm512_mask_storeu_ps(c + i * ldc + 16, m1, pyconv_act__avx512(_mm512_add_ps(y##i, base1), act)); \
    }
    PYCONV_STORE(0) PYCONV_STORE(1) PYCONV_STORE(2) PYCONV_STORE(3) PYCONV_STORE(4) PYCONV_STORE(5)
    PYCONV_STORE(6) PYCONV_STORE(7) PYCONV_STORE(8) PYCONV_STORE(9) PYCONV_STORE(10) PYCONV_STORE(11)
#undef PYCONV_STORE
}

void pyconv_nchwconv__avx512(PYCONV_NCHWCONV_ARGS) {
    const int nb = nrp > 16 ? 2 : 1;
    if (nb == 2 && S == 2 && mr > 8)
        pyconv_nchwconv_avx512_impl(2, 2, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
    else if (nb == 2 && S == 2 && mr > 4)
        pyconv_nchwconv_avx512_impl(2, 2, 8, mr, nr, K, a, off, b, c, ldc, bias, act);
    else if (nb == 2 && S == 2)
        pyconv_nchwconv_avx512_impl(2, 2, 4, mr, nr, K, a, off, b, c, ldc, bias, act);
    else if (nb == 2 && S == 1)
        pyconv_nchwconv_avx512_impl(2, 1, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
    else if (nb == 2 && S == 6)
        pyconv_nchwconv_avx512_impl(2, 6, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
    else if (nb == 2 && S == 3)
        pyconv_nchwconv_avx512_impl(2, 3, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
    else if (nb == 2)
        pyconv_nchwconv_avx512_impl(2, S, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
    else if (S == 2)
        pyconv_nchwconv_avx512_impl(1, 2, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
    else if (S == 6)
        pyconv_nchwconv_avx512_impl(1, 6, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
    else if (S == 3)
        pyconv_nchwconv_avx512_impl(1, 3, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
    else
        pyconv_nchwconv_avx512_impl(1, S, 12, mr, nr, K, a, off, b, c, ldc, bias, act);
}
