/* The activations of the store set (PYCONV_ACT_STORED in common.h) on AVX-512 vectors.  max/min return
 * their second operand when either is NaN, so v goes second: a NaN passes through relu and relu6, as in
 * PyTorch.  The smooth ones are common.h's scalar functions step for step (the same polynomial, the
 * same fused multiply-adds), so a fused activation gives what the eltwise loop gives. */
#ifndef PYCONV_ACT_AVX512_H
#define PYCONV_ACT_AVX512_H

#include <immintrin.h>

#include "asan_x86.h"
#include "../common.h"

/* e^z for z <= 0, as pyconv_exp_nonpositive: 2^n from the magic number's low bits, a degree-5
 * polynomial for e^t, 0 below the cutoff. */
static inline __m512 pyconv_exp_nonpositive__avx512(__m512 z) {
    const __m512 magic = _mm512_set1_ps(0x1.8000FEp23f);
    __m512 n = _mm512_fmadd_ps(z, _mm512_set1_ps(0x1.715476p+0f), magic);
    const __m512 s = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(n), 23));
    n = _mm512_sub_ps(n, magic);
    __m512 t = _mm512_fmadd_ps(n, _mm512_set1_ps(-0x1.62E400p-1f), z);
    t = _mm512_fmadd_ps(n, _mm512_set1_ps(-0x1.7F7D1Cp-20f), t);
    __m512 p = _mm512_set1_ps(0x1.0FA832p-7f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0x1.573A54p-5f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0x1.555A6Ap-3f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0x1.FFFDC6p-2f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0x1.FFFFF6p-1f));
    const __m512 e = _mm512_fmadd_ps(_mm512_mul_ps(t, s), p, s);
    return _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(z, _mm512_set1_ps(PYCONV_EXP_CUTOFF), _CMP_LT_OQ), e);
}

/* 1 / (1 + e^-x), as pyconv_sigmoid: e = e^-|x|, e / (1 + e) for x <= 0, 1 minus that above. */
static inline __m512 pyconv_sigmoid__avx512(__m512 x) {
    const __m512 e = pyconv_exp_nonpositive__avx512(_mm512_or_ps(x, _mm512_set1_ps(-0.0f)));
    const __m512 f = _mm512_div_ps(e, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    const __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_mask_sub_ps(f, pos, _mm512_set1_ps(1.0f), f);
}

/* The smooth members of the store set, apart so that each store site calls them rather than holding
 * a copy of the exponential. */
static __attribute__((noinline, unused)) __m512 pyconv_act_smooth__avx512(__m512 v, int act) {
    if (act == PYCONV_ACT_HARD_SWISH) {
        const __m512 gate = _mm512_min_ps(_mm512_set1_ps(6.0f),
                                          _mm512_max_ps(_mm512_setzero_ps(), _mm512_add_ps(v, _mm512_set1_ps(3.0f))));
        return _mm512_mul_ps(v, _mm512_mul_ps(gate, _mm512_set1_ps(1.0f / 6.0f)));
    }
    const __m512 s = pyconv_sigmoid__avx512(v);
    return act == PYCONV_ACT_SILU ? _mm512_mul_ps(v, s) : s;
}

static inline __m512 pyconv_act__avx512(__m512 v, int act) {
    if (act == PYCONV_ACT_RELU || act == PYCONV_ACT_RELU6) v = _mm512_max_ps(_mm512_setzero_ps(), v);
    if (act == PYCONV_ACT_RELU6) v = _mm512_min_ps(_mm512_set1_ps(6.0f), v);
    if (act > PYCONV_ACT_RELU6) v = pyconv_act_smooth__avx512(v, act);
    return v;
}

static inline __mmask16 pyconv_mask16(size_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

#endif /* PYCONV_ACT_AVX512_H */
