/* The fused activations on AVX-512 vectors (codes in common.h).  max/min return their second operand
 * when either is NaN, so v goes second: a NaN passes through relu and relu6, as in PyTorch. */
#ifndef PYCONV_ACT_AVX512_H
#define PYCONV_ACT_AVX512_H

#include <immintrin.h>

#include "asan_x86.h"
#include "../common.h"

static inline __m512 pyconv_act__avx512(__m512 v, int act) {
    if (act >= PYCONV_ACT_RELU) v = _mm512_max_ps(_mm512_setzero_ps(), v);
    if (act == PYCONV_ACT_RELU6) v = _mm512_min_ps(_mm512_set1_ps(6.0f), v);
    return v;
}

static inline __mmask16 pyconv_mask16(size_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

#endif /* PYCONV_ACT_AVX512_H */
