/* The activations of the store set (PYCONV_ACT_STORED in common.h) on AVX2 vectors, and the partial
 * loads and stores of a vector's first floats that every AVX2 family uses at the end of a row.  max/min
 * return their second operand when either is NaN, so v goes second: a NaN passes through relu and
 * relu6, as in PyTorch.  The smooth ones are common.h's scalar functions step for step (the same
 * polynomial, the same fused multiply-adds), so a fused activation gives what the eltwise loop gives. */
#ifndef PYCONV_ACT_AVX2_H
#define PYCONV_ACT_AVX2_H

#include <immintrin.h>

#include "asan_x86.h"
#include "../common.h"

/* e^z for z <= 0, as pyconv_exp_nonpositive: 2^n from the magic number's low bits, a degree-5
 * polynomial for e^t, 0 below the cutoff. */
static inline __m256 pyconv_exp_nonpositive__avx2(__m256 z) {
    const __m256 magic = _mm256_set1_ps(0x1.8000FEp23f);
    __m256 n = _mm256_fmadd_ps(z, _mm256_set1_ps(0x1.715476p+0f), magic);
    const __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(n), 23));
    n = _mm256_sub_ps(n, magic);
    __m256 t = _mm256_fmadd_ps(n, _mm256_set1_ps(-0x1.62E400p-1f), z);
    t = _mm256_fmadd_ps(n, _mm256_set1_ps(-0x1.7F7D1Cp-20f), t);
    __m256 p = _mm256_set1_ps(0x1.0FA832p-7f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0x1.573A54p-5f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0x1.555A6Ap-3f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0x1.FFFDC6p-2f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0x1.FFFFF6p-1f));
    const __m256 e = _mm256_fmadd_ps(_mm256_mul_ps(t, s), p, s);
    return _mm256_andnot_ps(_mm256_cmp_ps(z, _mm256_set1_ps(PYCONV_EXP_CUTOFF), _CMP_LT_OQ), e);
}

/* 1 / (1 + e^-x), as pyconv_sigmoid: e = e^-|x|, e / (1 + e) for x <= 0, 1 minus that above. */
static inline __m256 pyconv_sigmoid__avx2(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = pyconv_exp_nonpositive__avx2(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));
    const __m256 f = _mm256_div_ps(e, _mm256_add_ps(one, e));
    return _mm256_blendv_ps(f, _mm256_sub_ps(one, f), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
}

/* The smooth members of the store set, apart so that each store site calls them rather than holding
 * a copy of the exponential. */
static __attribute__((noinline, unused)) __m256 pyconv_act_smooth__avx2(__m256 v, int act) {
    if (act == PYCONV_ACT_HARD_SWISH) {
        const __m256 gate = _mm256_min_ps(_mm256_set1_ps(6.0f),
                                          _mm256_max_ps(_mm256_setzero_ps(), _mm256_add_ps(v, _mm256_set1_ps(3.0f))));
        return _mm256_mul_ps(v, _mm256_mul_ps(gate, _mm256_set1_ps(1.0f / 6.0f)));
    }
    const __m256 s = pyconv_sigmoid__avx2(v);
    return act == PYCONV_ACT_SILU ? _mm256_mul_ps(v, s) : s;
}

static inline __m256 pyconv_act__avx2(__m256 v, int act) {
    if (act == PYCONV_ACT_RELU || act == PYCONV_ACT_RELU6) v = _mm256_max_ps(_mm256_setzero_ps(), v);
    if (act == PYCONV_ACT_RELU6) v = _mm256_min_ps(_mm256_set1_ps(6.0f), v);
    if (act > PYCONV_ACT_RELU6) v = pyconv_act_smooth__avx2(v, act);
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
