/*
 * Elementwise and channel-wise loops (the non-convolution operators' inner loops): binary ops
 * (add, subtract, multiply, divide, against a vector or a scalar), per-channel scale and shift, an
 * average pool's sums and division, a global average's float64 sums, a fused activation in place, a
 * channel shuffle's interleave and a bilinear resize's rows.  Written once in plain C over contiguous
 * channels; each level's file compiles it with its own flags and the compiler vectorises the loops for
 * that level (ShuffleNet's G = 3 interleave runs about 10x faster with AVX-512 permutes than as SSE2).
 * Every activation lets NaN through (comparisons against v, see common.h).
 *
 * Include after defining PYCONV_ELT_FN(name), which gives name its level's suffix.
 */
#include "../ukernels.h"

/* The body of a binary op's loop for each op code (common.h), the activation hoisted out of the loop
 * when there is none so that the plain loop vectorises as it is. */
#define PYCONV_BINARY_LOOPS(B)                                                                       \
    switch (op) {                                                                                    \
    case PYCONV_BIN_ADD: PYCONV_BINARY_LOOP(a[i] + (B)) break;                                      \
    case PYCONV_BIN_SUB: PYCONV_BINARY_LOOP(a[i] - (B)) break;                                      \
    case PYCONV_BIN_MUL: PYCONV_BINARY_LOOP(a[i] * (B)) break;                                      \
    case PYCONV_BIN_DIV: PYCONV_BINARY_LOOP(a[i] / (B)) break;                                      \
    case PYCONV_BIN_RSUB: PYCONV_BINARY_LOOP((B) - a[i]) break;                                     \
    default: PYCONV_BINARY_LOOP((B) / a[i]) break;                                                   \
    }
#define PYCONV_BINARY_LOOP(expr)                                                                     \
    if (act == PYCONV_ACT_NONE)                                                                      \
        for (ptrdiff_t i = 0; i < n; i++) o[i] = (expr);                                             \
    else                                                                                             \
        for (ptrdiff_t i = 0; i < n; i++) o[i] = pyconv_activate((expr), act);

/* o = act(a OP b) elementwise; no restrict: o may be a or b (in place). */
void PYCONV_ELT_FN(pyconv_binary)(const float *a, const float *b, float *o, ptrdiff_t n, int op, int act) {
    PYCONV_BINARY_LOOPS(b[i])
}

/* o = act(a OP s) for one scalar s; o may be a. */
void PYCONV_ELT_FN(pyconv_binary_scalar)(const float *a, float s, float *o, ptrdiff_t n, int op, int act) {
    PYCONV_BINARY_LOOPS(s)
}

#undef PYCONV_BINARY_LOOP
#undef PYCONV_BINARY_LOOPS

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

/* One output row of a bilinear resize, NHWC: for j < OW and c < C,
 *   o[j * C + c] = wy0 * (wx0[j] * r0[x0[j] + c] + wx1[j] * r0[x1[j] + c])
 *                + wy1 * (wx0[j] * r1[x0[j] + c] + wx1[j] * r1[x1[j] + c])
 * r0, r1: the two input rows read; x0, x1: offsets of the two input columns read, in floats. */
void PYCONV_ELT_FN(pyconv_bilinear_row)(const float *r0, const float *r1, float wy0, float wy1,
                                        const ptrdiff_t *x0, const ptrdiff_t *x1, const float *wx0,
                                        const float *wx1, float *__restrict__ o, ptrdiff_t OW, ptrdiff_t C) {
    for (ptrdiff_t j = 0; j < OW; j++) {
        const float *__restrict__ a = r0 + x0[j];
        const float *__restrict__ b = r0 + x1[j];
        const float *__restrict__ c0 = r1 + x0[j];
        const float *__restrict__ d = r1 + x1[j];
        const float u0 = wx0[j], u1 = wx1[j];
        float *__restrict__ dst = o + j * C;
        for (ptrdiff_t c = 0; c < C; c++) dst[c] = wy0 * (u0 * a[c] + u1 * b[c]) + wy1 * (u0 * c0[c] + u1 * d[c]);
    }
}
