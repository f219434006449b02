/*
 * Elementwise and channel-wise loops (the non-convolution operators' inner loops): add, per-channel
 * scale and shift, an average pool's sums and division, a global average's float64 sums, a fused
 * activation in place, and a channel shuffle's interleave.  Written once in plain C over contiguous
 * channels; each level's file compiles it with its own flags and the compiler vectorises the loops for
 * that level (ShuffleNet's G = 3 interleave runs about 10x faster with AVX-512 permutes than as SSE2).
 * Every activation lets NaN through (comparisons against v, see common.h).
 *
 * Include after defining PYCONV_ELT_FN(name), which gives name its level's suffix.
 */
#include "../ukernels.h"

/* o = act(a + b); no restrict: o may be a or b (an in-place add). */
void PYCONV_ELT_FN(pyconv_add)(const float *a, const float *b, float *o, ptrdiff_t n, int act) {
    if (act == PYCONV_ACT_NONE)
        for (ptrdiff_t i = 0; i < n; i++) o[i] = a[i] + b[i];
    else
        for (ptrdiff_t i = 0; i < n; i++) o[i] = pyconv_activate(a[i] + b[i], act);
}

/* o = act(x * s + b) per channel; o may be x. */
void PYCONV_ELT_FN(pyconv_scale_shift)(const float *x, const float *__restrict__ s, const float *__restrict__ b,
                                       float *o, ptrdiff_t n, int act) {
    for (ptrdiff_t i = 0; i < n; i++) o[i] = pyconv_activate(x[i] * s[i] + b[i], act);
}

/* dst += src (an average pool's window sum, one cell at a time). */
void PYCONV_ELT_FN(pyconv_accumulate)(float *__restrict__ dst, const float *__restrict__ src, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) dst[i] += src[i];
}

/* dst = act(dst / divisor) (an average pool's mean). */
void PYCONV_ELT_FN(pyconv_divide)(float *dst, float divisor, ptrdiff_t n, int act) {
    for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_activate(dst[i] / divisor, act);
}

/* dst = act(dst) in place. */
void PYCONV_ELT_FN(pyconv_activate_span)(float *dst, ptrdiff_t n, int act) {
    for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_activate(dst[i], act);
}

/* dst[c] = mean over HW pixels of img[p * C + c] for c < n <= 64, summed in float64: a 112x112 map is
 * 12544 terms, enough to lose digits in float32. */
void PYCONV_ELT_FN(pyconv_mean_pixels)(const float *img, float *__restrict__ dst, ptrdiff_t HW, ptrdiff_t C,
                                       ptrdiff_t n) {
    double acc[64];
    for (ptrdiff_t c = 0; c < n; c++) acc[c] = 0.0;
    for (ptrdiff_t p = 0; p < HW; p++) {
        const float *src = img + p * C;
        for (ptrdiff_t c = 0; c < n; c++) acc[c] += src[c];
    }
    for (ptrdiff_t c = 0; c < n; c++) dst[c] = (float)(acc[c] / (double)HW);
}

/* dst[j * groups + i] = src[i * P + j]: ShuffleNet's group counts get loops with the count spelled
 * out, which the compiler turns into vector permutes over the G input runs. */
void PYCONV_ELT_FN(pyconv_shuffle_row)(const float *__restrict__ src, float *__restrict__ dst, ptrdiff_t groups,
                                       ptrdiff_t P) {
    if (groups == 2) {
        for (ptrdiff_t j = 0; j < P; j++) {
            dst[2 * j] = src[j];
            dst[2 * j + 1] = src[P + j];
        }
    } else if (groups == 3) {
        for (ptrdiff_t j = 0; j < P; j++) {
            dst[3 * j] = src[j];
            dst[3 * j + 1] = src[P + j];
            dst[3 * j + 2] = src[2 * P + j];
        }
    } else if (groups == 4) {
        for (ptrdiff_t j = 0; j < P; j++) {
            dst[4 * j] = src[j];
            dst[4 * j + 1] = src[P + j];
            dst[4 * j + 2] = src[2 * P + j];
            dst[4 * j + 3] = src[3 * P + j];
        }
    } else if (groups == 8) {
        for (ptrdiff_t j = 0; j < P; j++)
            for (ptrdiff_t i = 0; i < 8; i++) dst[8 * j + i] = src[i * P + j];
    } else {
        for (ptrdiff_t j = 0; j < P; j++)
            for (ptrdiff_t i = 0; i < groups; i++) dst[j * groups + i] = src[i * P + j];
    }
}
