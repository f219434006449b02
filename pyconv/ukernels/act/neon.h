/* The activations of the store set (PYCONV_ACT_STORED in common.h) on NEON vectors, and the partial
 * loads and stores of a vector's first lanes that every NEON family uses at the end of a row.
 * vmaxq/vminq return NaN when either operand is NaN: a NaN passes through relu and relu6, as in
 * PyTorch.  The smooth ones are common.h's scalar functions step for step (the same polynomial, the
 * same fused multiply-adds), so a fused activation gives what the eltwise loop gives. */
#ifndef PYCONV_ACT_NEON_H
#define PYCONV_ACT_NEON_H

#include <arm_neon.h>

#include "../common.h"

/* e^z for z <= 0, as pyconv_exp_nonpositive: 2^n from the magic number's low bits, a degree-5
 * polynomial for e^t, 0 below the cutoff.  vfmaq_f32(a, b, c) is a + b * c. */
static inline float32x4_t pyconv_exp_nonpositive__neon(float32x4_t z) {
    const float32x4_t magic = vdupq_n_f32(0x1.8000FEp23f);
    float32x4_t n = vfmaq_f32(magic, z, vdupq_n_f32(0x1.715476p+0f));
    const float32x4_t s = vreinterpretq_f32_u32(vshlq_n_u32(vreinterpretq_u32_f32(n), 23));
    n = vsubq_f32(n, magic);
    float32x4_t t = vfmaq_f32(z, n, vdupq_n_f32(-0x1.62E400p-1f));
    t = vfmaq_f32(t, n, vdupq_n_f32(-0x1.7F7D1Cp-20f));
    float32x4_t p = vdupq_n_f32(0x1.0FA832p-7f);
    p = vfmaq_f32(vdupq_n_f32(0x1.573A54p-5f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0x1.555A6Ap-3f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0x1.FFFDC6p-2f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0x1.FFFFF6p-1f), p, t);
    const float32x4_t e = vfmaq_f32(s, vmulq_f32(t, s), p);
    return vbslq_f32(vcltq_f32(z, vdupq_n_f32(PYCONV_EXP_CUTOFF)), vdupq_n_f32(0.0f), e);
}

/* 1 / (1 + e^-x), as pyconv_sigmoid: e = e^-|x|, e / (1 + e) for x <= 0, 1 minus that above. */
static inline float32x4_t pyconv_sigmoid__neon(float32x4_t x) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    const float32x4_t e = pyconv_exp_nonpositive__neon(vnegq_f32(vabsq_f32(x)));
    const float32x4_t f = vdivq_f32(e, vaddq_f32(one, e));
    return vbslq_f32(vcgtq_f32(x, vdupq_n_f32(0.0f)), vsubq_f32(one, f), f);
}

/* The smooth members of the store set, apart so that each store site calls them rather than holding
 * a copy of the exponential. */
static __attribute__((noinline, unused)) float32x4_t pyconv_act_smooth__neon(float32x4_t v, int act) {
    if (act == PYCONV_ACT_HARD_SWISH) {
        const float32x4_t gate = vminq_f32(vmaxq_f32(vaddq_f32(v, vdupq_n_f32(3.0f)), vdupq_n_f32(0.0f)),
                                           vdupq_n_f32(6.0f));
        return vmulq_f32(v, vmulq_f32(gate, vdupq_n_f32(1.0f / 6.0f)));
    }
    const float32x4_t s = pyconv_sigmoid__neon(v);
    return act == PYCONV_ACT_SILU ? vmulq_f32(v, s) : s;
}

static inline float32x4_t pyconv_act__neon(float32x4_t v, int act) {
    if (act == PYCONV_ACT_RELU || act == PYCONV_ACT_RELU6) v = vmaxq_f32(v, vdupq_n_f32(0.0f));
    if (act == PYCONV_ACT_RELU6) v = vminq_f32(v, vdupq_n_f32(6.0f));
    if (act > PYCONV_ACT_RELU6) v = pyconv_act_smooth__neon(v, act);
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
