/* The fused activations on AVX2 vectors (codes in common.h).  max/min return their second operand when
 * either is NaN, so v goes second: a NaN passes through relu and relu6, as in PyTorch. */
#ifndef PYCONV_ACT_AVX2_H
#define PYCONV_ACT_AVX2_H

#include <immintrin.h>

#include "../common.h"

static inline __m256 pyconv_act__avx2(__m256 v, int act) {
    if (act >= PYCONV_ACT_RELU) v = _mm256_max_ps(_mm256_setzero_ps(), v);
    if (act == PYCONV_ACT_RELU6) v = _mm256_min_ps(_mm256_set1_ps(6.0f), v);
    return v;
}

#endif /* PYCONV_ACT_AVX2_H */
