/* The fused activations on NEON vectors (codes in common.h), and the partial loads and stores of a
 * vector's first lanes that every NEON family uses at the end of a row.  vmaxq/vminq return NaN when either
 * operand is NaN: a NaN passes through relu and relu6, as in PyTorch. */
#ifndef PYCONV_ACT_NEON_H
#define PYCONV_ACT_NEON_H

#include <arm_neon.h>

#include "../common.h"

static inline float32x4_t pyconv_act__neon(float32x4_t v, int act) {
    if (act >= PYCONV_ACT_RELU) v = vmaxq_f32(v, vdupq_n_f32(0.0f));
    if (act == PYCONV_ACT_RELU6) v = vminq_f32(v, vdupq_n_f32(6.0f));
    return v;
}

/* The first n < 4 floats at p, the other lanes zero; the lanes past n are never read. */
static inline float32x4_t pyconv_load_part__neon(const float *p, ptrdiff_t n) {
    float32x4_t v = vld1q_lane_f32(p, vdupq_n_f32(0.0f), 0);
    if (n > 1) v = vld1q_lane_f32(p + 1, v, 1);
    if (n > 2) v = vld1q_lane_f32(p + 2, v, 2);
    return v;
}

/* The first n < 4 lanes of v to p; nothing past p + n is written. */
static inline void pyconv_store_part__neon(float *p, float32x4_t v, ptrdiff_t n) {
    vst1q_lane_f32(p, v, 0);
    if (n > 1) vst1q_lane_f32(p + 1, v, 1);
    if (n > 2) vst1q_lane_f32(p + 2, v, 2);
}

#endif /* PYCONV_ACT_NEON_H */
