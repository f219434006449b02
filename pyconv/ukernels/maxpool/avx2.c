/*
 * The max-pool window on AVX2: the maximum of one window over up to 64 channels (8 ymm held across the
 * window's cells), NaN-propagating as in PyTorch (semantics in ukernels.h).
 */
#include <math.h>

#include "../ukernels.h"
#include "../act/avx2.h"

/* NB vectors of 8 channels, the last one partial when TAIL.  max(v, m) returns m when either is NaN and
 * when they are equal (so of +0 and -0 the first is kept); a NaN v is or-ed into m as the all-ones
 * compare mask, itself a NaN, which max(v, m) then keeps.  That costs no register per vector, where a
 * separate NaN mask would take 8 of the 16.  The NaNs are stored as the canonical NaN. */
static inline __attribute__((always_inline)) void
pyconv_max_blocks__avx2(const int NB, const int TAIL, const float *img, float *dst, ptrdiff_t n, ptrdiff_t C,
                        ptrdiff_t W, ptrdiff_t h0, ptrdiff_t h1, ptrdiff_t w0, ptrdiff_t w1) {
    const ptrdiff_t tail = n - 8 * (NB - 1);
    __m256 m[8];
#pragma GCC unroll 8
    for (int b = 0; b < NB; b++) m[b] = _mm256_set1_ps(-INFINITY);
    for (ptrdiff_t h = h0; h < h1; h++)
        for (ptrdiff_t w = w0; w < w1; w++) {
            const float *s = img + (h * W + w) * C;
#pragma GCC unroll 8
            for (int b = 0; b < NB; b++) {
                const __m256 v = TAIL && b == NB - 1 ? pyconv_load_part8(s + 8 * b, tail) : _mm256_loadu_ps(s + 8 * b);
                m[b] = _mm256_or_ps(_mm256_max_ps(v, m[b]), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            }
        }
    const __m256 nan = _mm256_set1_ps(NAN);
#pragma GCC unroll 8
    for (int b = 0; b < NB; b++) {
        const __m256 r = _mm256_blendv_ps(m[b], nan, _mm256_cmp_ps(m[b], m[b], _CMP_UNORD_Q));
        if (TAIL && b == NB - 1)
            pyconv_store_part8(dst + 8 * b, r, tail);
        else
            _mm256_storeu_ps(dst + 8 * b, r);
    }
}

void pyconv_maxpool_window__avx2(PYCONV_MAXPOOL_WINDOW_ARGS) {
#define PYCONV_MAX_CASE(NB)                                                                            \
    case NB:                                                                                           \
        if (n % 8)                                                                                     \
            pyconv_max_blocks__avx2(NB, 1, img, dst, n, C, W, h0, h1, w0, w1);                         \
        else                                                                                           \
            pyconv_max_blocks__avx2(NB, 0, img, dst, n, C, W, h0, h1, w0, w1);                         \
        break;
    switch ((n + 7) / 8) {
        PYCONV_MAX_CASE(1)
        PYCONV_MAX_CASE(2)
        PYCONV_MAX_CASE(3)
        PYCONV_MAX_CASE(4)
        PYCONV_MAX_CASE(5)
        PYCONV_MAX_CASE(6)
        PYCONV_MAX_CASE(7)
        PYCONV_MAX_CASE(8)
    }
#undef PYCONV_MAX_CASE
}
