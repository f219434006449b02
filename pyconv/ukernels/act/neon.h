/* The fused activations on NEON vectors (codes in common.h).  vmaxq/vminq return NaN when either
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

#endif /* PYCONV_ACT_NEON_H */
