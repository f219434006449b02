/* The fused activations on AVX2 vectors (codes in common.h), and the partial loads and stores of a
 * vector's first floats that every AVX2 family uses at the end of a row.  max/min return their second operand when
 * either is NaN, so v goes second: a NaN passes through relu and relu6, as in PyTorch. */
#ifndef PYCONV_ACT_AVX2_H
#define PYCONV_ACT_AVX2_H

#include <immintrin.h>

#include "asan_x86.h"
#include "../common.h"

static inline __m256 pyconv_act__avx2(__m256 v, int act) {
    if (act >= PYCONV_ACT_RELU) v = _mm256_max_ps(_mm256_setzero_ps(), v);
    if (act == PYCONV_ACT_RELU6) v = _mm256_min_ps(_mm256_set1_ps(6.0f), v);
    return v;
}

/* Partial vectors, at the end of a row of channels: loads and stores of exactly the n valid floats
 * (64-, 32- and 128-bit moves), never vmaskmovps: that would do on hardware, but qemu's emulation of it
 * (7.2) faults on masked-out lanes past the end of a buffer, in an unmapped page, and the AVX2 level is
 * tested under qemu.  Through a stack buffer the partial tiles of a transpose with 3 channels ran
 * 4-12x slower than AVX-512's masked moves. */

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

#endif /* PYCONV_ACT_AVX2_H */
