/*
 * An image resize's integer rows (pyconv/_resample.pyx): Pillow's fixed-point convolution of uint8 RGB
 * pixels along a row (horizontal) or down a column of rows (vertical).  Each output is a sum of pixel x
 * weight products in int32, plus a half, shifted right by PYCONV_RESAMPLE_BITS and, with `clip`, clamped
 * to 0-255 (without it the caller knows the sum is in range).  Integer sums are exact in any order, so
 * every level gives Pillow's values bit for bit.
 *
 * Written once in plain C; each level's file compiles it with its own flags, where the vertical row
 * vectorises across its elements.  A level that defines PYCONV_RESAMPLE_PIXEL (x86.h, neon.h) computes a
 * horizontal output's three channels as one vector instead.
 *
 * Include after defining PYCONV_RS_FN(name), which gives name its level's suffix.
 */
#include <stdint.h>

#include "../ukernels.h"

static inline uint8_t pyconv_rs_pixel(int32_t acc, int clip) {
    acc >>= PYCONV_RESAMPLE_BITS;
    if (clip) acc = acc < 0 ? 0 : (acc > 255 ? 255 : acc);
    return (uint8_t)acc;
}

/* Horizontal outputs [x0, count) with `span` weights each; the constant spans the callers pass unroll. */
static inline void pyconv_rs_horizontal_span(const uint8_t *line, ptrdiff_t x0, ptrdiff_t count,
                                             const int32_t *starts, const int32_t *weights,
                                             const ptrdiff_t span, const int clip, uint8_t *dst) {
    for (ptrdiff_t x = x0; x < count; x++) {
        const int32_t *k = weights + x * span;
        const uint8_t *p = line + 3 * (ptrdiff_t)starts[x];
        int32_t s0 = 1 << (PYCONV_RESAMPLE_BITS - 1), s1 = s0, s2 = s0;
        for (ptrdiff_t t = 0; t < span; t++) {
            s0 += p[3 * t] * k[t];
            s1 += p[3 * t + 1] * k[t];
            s2 += p[3 * t + 2] * k[t];
        }
        dst[3 * x] = pyconv_rs_pixel(s0, clip);
        dst[3 * x + 1] = pyconv_rs_pixel(s1, clip);
        dst[3 * x + 2] = pyconv_rs_pixel(s2, clip);
    }
}

void PYCONV_RS_FN(pyconv_resample_horizontal)(PYCONV_RESAMPLE_HORIZONTAL_ARGS) {
    ptrdiff_t x = 0;
#if defined(PYCONV_RESAMPLE_PIXEL)
    /* Vector loads read one byte past a tap's pixel: those whose last tap is not the line's last pixel
     * (a prefix, as the starts never decrease). */
    for (; x < count && starts[x] + span < pixels; x++)
        PYCONV_RESAMPLE_PIXEL(line + 3 * (ptrdiff_t)starts[x], weights + x * span, span, dst + 3 * x);
#else
    (void)pixels;
#endif
    if (x == count) return;
    if (!clip && span == 2) pyconv_rs_horizontal_span(line, x, count, starts, weights, 2, 0, dst);
    else if (!clip && span == 3) pyconv_rs_horizontal_span(line, x, count, starts, weights, 3, 0, dst);
    else if (!clip && span == 4) pyconv_rs_horizontal_span(line, x, count, starts, weights, 4, 0, dst);
    else if (clip && span == 4) pyconv_rs_horizontal_span(line, x, count, starts, weights, 4, 1, dst);
    else if (clip && span == 5) pyconv_rs_horizontal_span(line, x, count, starts, weights, 5, 1, dst);
    else if (clip && span == 6) pyconv_rs_horizontal_span(line, x, count, starts, weights, 6, 1, dst);
    else pyconv_rs_horizontal_span(line, x, count, starts, weights, span, clip, dst);
}

void PYCONV_RS_FN(pyconv_resample_vertical)(PYCONV_RESAMPLE_VERTICAL_ARGS) {
    for (ptrdiff_t j = 0; j < elems; j++) acc[j] = 1 << (PYCONV_RESAMPLE_BITS - 1);
    for (ptrdiff_t t = 0; t < length; t++) {
        const int32_t w = k[t];
        const uint8_t *line = first + t * stride;
        for (ptrdiff_t j = 0; j < elems; j++) acc[j] += line[j] * w;
    }
    if (clip)
        for (ptrdiff_t j = 0; j < elems; j++) dst[j] = pyconv_rs_pixel(acc[j], 1);
    else
        for (ptrdiff_t j = 0; j < elems; j++) dst[j] = pyconv_rs_pixel(acc[j], 0);
}
