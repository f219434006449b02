/*
 * One horizontal resize output's three channels as one NEON vector, for the neon level: each tap's pixel
 * widened to int32 lanes (R, G, B and the next pixel's R, whose lane is dropped) and multiplied by the
 * tap's weight into the sums; the saturating narrows are the clamp to 0-255.  Per tap one load, two
 * widenings and one multiply-add, where the plain loop loads, multiplies and adds each channel.
 */
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "../ukernels.h"

static inline void pyconv_rs_pixel_neon(const uint8_t *p, const int32_t *k, ptrdiff_t span, uint8_t *dst) {
    int32x4_t acc = vdupq_n_s32(1 << (PYCONV_RESAMPLE_BITS - 1));
    for (ptrdiff_t t = 0; t < span; t++) {
        uint32_t four;
        memcpy(&four, p + 3 * t, sizeof four);
        const uint16x8_t wide = vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(four)));
        acc = vmlaq_n_s32(acc, vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(wide))), k[t]);
    }
    const uint16x4_t words = vqmovun_s32(vshrq_n_s32(acc, PYCONV_RESAMPLE_BITS));
    const uint8x8_t bytes = vqmovn_u16(vcombine_u16(words, words));
    dst[0] = vget_lane_u8(bytes, 0);
    dst[1] = vget_lane_u8(bytes, 1);
    dst[2] = vget_lane_u8(bytes, 2);
}

#define PYCONV_RESAMPLE_PIXEL pyconv_rs_pixel_neon
