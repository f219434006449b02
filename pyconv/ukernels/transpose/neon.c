/*
 * The transpose tile on aarch64 NEON: dst[j][i] = src[i][j] for i < rows <= 16, j < cols <= 16, in 4x4
 * blocks transposed in registers (two TRN steps, on floats then on pairs); blocks cut by the tile's
 * edge are copied one float at a time, so nothing outside the rows x cols tile is read or written.
 */
#include <arm_neon.h>

#include "../ukernels.h"

void pyconv_transpose_tile__neon(PYCONV_TRANSPOSE_TILE_ARGS) {
    for (ptrdiff_t i0 = 0; i0 < rows; i0 += 4)
        for (ptrdiff_t j0 = 0; j0 < cols; j0 += 4) {
            const float *s = src + i0 * ld_src + j0;
            float *d = dst + j0 * ld_dst + i0;
            if (i0 + 4 <= rows && j0 + 4 <= cols) {
                const float32x4_t r0 = vld1q_f32(s), r1 = vld1q_f32(s + ld_src);
                const float32x4_t r2 = vld1q_f32(s + 2 * ld_src), r3 = vld1q_f32(s + 3 * ld_src);
                /* t0 = a0 b0 a2 b2, t1 = a1 b1 a3 b3, t2 = c0 d0 c2 d2, t3 = c1 d1 c3 d3. */
                const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1));
                const float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1));
                const float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3));
                const float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
                vst1q_f32(d, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
                vst1q_f32(d + ld_dst, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
                vst1q_f32(d + 2 * ld_dst, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
                vst1q_f32(d + 3 * ld_dst, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
            } else {
                const ptrdiff_t ni = rows - i0 < 4 ? rows - i0 : 4, nj = cols - j0 < 4 ? cols - j0 : 4;
                for (ptrdiff_t j = 0; j < nj; j++)
                    for (ptrdiff_t i = 0; i < ni; i++) d[j * ld_dst + i] = s[i * ld_src + j];
            }
        }
}
