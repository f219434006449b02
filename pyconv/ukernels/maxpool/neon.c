/*
 * The max-pool window on aarch64 NEON: the maximum of one window over up to 64 channels (NHWC), 16
 * channels (4 vectors) at a time, the running maxima held in registers across the window's cells.
 */
#include <math.h>

#include <arm_neon.h>

#include "../ukernels.h"

/* Channels [c0, c0 + 4 * NV) of the window, the last vector holding only `part` (1 to 3) channels with
 * PART.  A cell replaces the maximum where it is greater or NaN (v != v): a NaN, once in, stays (nothing
 * compares greater than it), as in the spec; of equal values (+0 and -0) the first is kept, which FMAX
 * would not do.  NaNs are stored as the canonical NaN, as the other levels store them. */
static inline __attribute__((always_inline)) void
pyconv_maxpool_channels__neon(const int NV, const int PART, ptrdiff_t part, const float *img, float *dst,
                              ptrdiff_t C, ptrdiff_t W, ptrdiff_t h0, ptrdiff_t h1, ptrdiff_t w0, ptrdiff_t w1) {
    float32x4_t m[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) m[v] = vdupq_n_f32(-INFINITY);
    for (ptrdiff_t h = h0; h < h1; h++)
        for (ptrdiff_t w = w0; w < w1; w++) {
            const float *s = img + (h * W + w) * C;
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                float32x4_t x;
                if (PART && v == NV - 1) {
                    x = vld1q_lane_f32(s + 4 * v, vdupq_n_f32(-INFINITY), 0);
                    if (part > 1) x = vld1q_lane_f32(s + 4 * v + 1, x, 1);
                    if (part > 2) x = vld1q_lane_f32(s + 4 * v + 2, x, 2);
                } else {
                    x = vld1q_f32(s + 4 * v);
                }
                const uint32x4_t take = vornq_u32(vcgtq_f32(x, m[v]), vceqq_f32(x, x));
                m[v] = vbslq_f32(take, x, m[v]);
            }
        }
    const float32x4_t nan = vdupq_n_f32(NAN);
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        const float32x4_t r = vbslq_f32(vceqq_f32(m[v], m[v]), m[v], nan);
        if (PART && v == NV - 1) {
            vst1q_lane_f32(dst + 4 * v, r, 0);
            if (part > 1) vst1q_lane_f32(dst + 4 * v + 1, r, 1);
            if (part > 2) vst1q_lane_f32(dst + 4 * v + 2, r, 2);
        } else {
            vst1q_f32(dst + 4 * v, r);
        }
    }
}

void pyconv_maxpool_window__neon(PYCONV_MAXPOOL_WINDOW_ARGS) {
    for (ptrdiff_t c0 = 0; c0 < n; c0 += 16) {
        const ptrdiff_t cn = n - c0 < 16 ? n - c0 : 16, nv = (cn + 3) / 4, part = cn % 4;
        const float *s = img + c0;
        float *d = dst + c0;
#define PYCONV_MAX(NV, PART) pyconv_maxpool_channels__neon(NV, PART, part, s, d, C, W, h0, h1, w0, w1)
        if (part == 0) {
            if (nv == 4)
                PYCONV_MAX(4, 0);
            else if (nv == 3)
                PYCONV_MAX(3, 0);
            else if (nv == 2)
                PYCONV_MAX(2, 0);
            else
                PYCONV_MAX(1, 0);
        } else {
            if (nv == 4)
                PYCONV_MAX(4, 1);
            else if (nv == 3)
                PYCONV_MAX(3, 1);
            else if (nv == 2)
                PYCONV_MAX(2, 1);
            else
                PYCONV_MAX(1, 1);
        }
#undef PYCONV_MAX
    }
}
