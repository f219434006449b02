/*
 * The max-pool window on AVX2: the maximum of one window over up to 64 channels (8 ymm held across the
 * window's cells), NaN-propagating as in PyTorch (semantics in ukernels.h).
 */
#include <math.h>

#include "../ukernels.h"
#include "../act/avx2.h"

/* Partial vectors: loads and stores of exactly the n valid floats (64-, 32- and 128-bit moves), never
 * vmaskmovps: that would do on hardware, but qemu's emulation of it (7.2) faults on masked-out lanes
 * past the end of a buffer, in an unmapped page, and the AVX2 level is tested under qemu.  Through a
 * stack buffer (as igemm/avx2.c) the partial tiles of a transpose with 3 channels ran 4-12x slower
 * than AVX-512's masked moves. */

/* The n < 4 valid floats at p, zeros past them: never reads past p + n. */
static inline __m128 pyconv_load_part4(const float *p, ptrdiff_t n) {
    if (n >= 2) {
        const __m128 lo = _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)p);
        return n == 3 ? _mm_movelh_ps(lo, _mm_load_ss(p + 2)) : lo;
    }
    return n == 1 ? _mm_load_ss(p) : _mm_setzero_ps();
}

/* The n < 8 valid floats at p, zeros past them. */
static inline __m256 pyconv_load_part8(const float *p, ptrdiff_t n) {
    if (n >= 4)
        return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), pyconv_load_part4(p + 4, n - 4),
                                    1);
    return _mm256_insertf128_ps(_mm256_setzero_ps(), pyconv_load_part4(p, n), 0);
}

/* The first n < 4 floats of v to p. */
static inline void pyconv_store_part4(float *p, __m128 v, ptrdiff_t n) {
    if (n >= 2) {
        _mm_storel_pi((__m64 *)p, v);
        if (n == 3) _mm_store_ss(p + 2, _mm_movehl_ps(v, v));
    } else if (n == 1) {
        _mm_store_ss(p, v);
    }
}

/* The first n < 8 floats of v to p. */
static inline void pyconv_store_part8(float *p, __m256 v, ptrdiff_t n) {
    if (n >= 4) {
        _mm_storeu_ps(p, _mm256_castps256_ps128(v));
        pyconv_store_part4(p + 4, _mm256_extractf128_ps(v, 1), n - 4);
    } else {
        pyconv_store_part4(p, _mm256_castps256_ps128(v), n);
    }
}

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
