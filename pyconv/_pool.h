/*
 * pyconv pooling micro-kernel: the maximum of one pooling window over up to 64 channels (NHWC), its
 * running maximum held in registers across the window's cells (AVX-512 where the build targets it,
 * plain C otherwise).
 */
#ifndef PYCONV_POOL_H
#define PYCONV_POOL_H

#include <math.h>
#include <stddef.h>

#include "_prefetch.h"

#if defined(__AVX512F__)
#include <immintrin.h>

static inline __mmask16 pyconv_pool_mask(ptrdiff_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}
#endif

/* dst[c] = max over rows [h0, h1) and columns [w0, w1) of img[(h * W + w) * C + c], for c < n <= 64.
 * A NaN anywhere in the window wins, as in PyTorch; of equal values (+0 and -0) the first is kept. */
static inline void pyconv_max_window(const float *img, float *dst, ptrdiff_t n, ptrdiff_t C, ptrdiff_t W,
                                     ptrdiff_t h0, ptrdiff_t h1, ptrdiff_t w0, ptrdiff_t w1) {
#if defined(__AVX512F__)
    /* Before the vector max (which returns its second operand when either is NaN) a NaN is recorded
     * in a mask and put back at the end: the gcc-vectorised loop kept the maximum in memory and ran
     * 1.7x slower (147x147x128, 3x3 stride 2: 0.425 against 0.247 ms). */
    const __mmask16 k0 = pyconv_pool_mask(n), k1 = pyconv_pool_mask(n - 16), k2 = pyconv_pool_mask(n - 32),
                    k3 = pyconv_pool_mask(n - 48);
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    __mmask16 q0 = 0, q1 = 0, q2 = 0, q3 = 0;
    for (ptrdiff_t h = h0; h < h1; h++) {
        for (ptrdiff_t w = w0; w < w1; w++) {
            const float *s = img + (h * W + w) * C;
            __m512 v;
#define PYCONV_MAX_BLOCK(b)                                                 \
            v = _mm512_maskz_loadu_ps(k##b, s + 16 * b);                    \
            q##b |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);                 \
            m##b = _mm512_max_ps(v, m##b);
            PYCONV_MAX_BLOCK(0)
            if (n > 16) { PYCONV_MAX_BLOCK(1) }
            if (n > 32) { PYCONV_MAX_BLOCK(2) }
            if (n > 48) { PYCONV_MAX_BLOCK(3) }
#undef PYCONV_MAX_BLOCK
        }
    }
    const __m512 nan = _mm512_set1_ps(NAN);
    _mm512_mask_storeu_ps(dst, k0, _mm512_mask_blend_ps(q0, m0, nan));
    _mm512_mask_storeu_ps(dst + 16, k1, _mm512_mask_blend_ps(q1, m1, nan));
    _mm512_mask_storeu_ps(dst + 32, k2, _mm512_mask_blend_ps(q2, m2, nan));
    _mm512_mask_storeu_ps(dst + 48, k3, _mm512_mask_blend_ps(q3, m3, nan));
#else
    float m[64];
    int nan_seen[64];
    for (ptrdiff_t c = 0; c < n; c++) {
        m[c] = -INFINITY;
        nan_seen[c] = 0;
    }
    for (ptrdiff_t h = h0; h < h1; h++)
        for (ptrdiff_t w = w0; w < w1; w++) {
            const float *s = img + (h * W + w) * C;
            for (ptrdiff_t c = 0; c < n; c++) {
                const float v = s[c];
                m[c] = v > m[c] ? v : m[c];
                nan_seen[c] |= v != v;
            }
        }
    for (ptrdiff_t c = 0; c < n; c++) dst[c] = nan_seen[c] ? NAN : m[c];
#endif
}

/* Prefetch, for reading, the cells of rows [h0, h1) and columns [w0, w1) (NHWC, C channels): the
 * columns a window a few outputs ahead adds.  A pooling layer reads a map that the layer before it
 * has just written and whose older rows have left the caches, and the hardware prefetcher kept too
 * few of those misses in flight: 147x147x128 3x3 stride 2 right after a convolution wrote it took
 * 1.45-1.65 ms on one thread, 0.37-0.45 with this (ONNX Runtime: 0.31-0.43); 4 outputs ahead measured
 * best (2 alike, 8 and 16 slower). */
static inline void pyconv_prefetch_cells(const float *img, ptrdiff_t C, ptrdiff_t W, ptrdiff_t h0,
                                         ptrdiff_t h1, ptrdiff_t w0, ptrdiff_t w1) {
    if (w1 <= w0) return;
    for (ptrdiff_t h = h0; h < h1; h++) pyconv_prefetch_floats(img + (h * W + w0) * C, (w1 - w0) * C);
}

#endif /* PYCONV_POOL_H */
