/*
 * The input-row convolution (a first layer over an RGB image, NCHW or NHWC) on aarch64 NEON: C[mr x nr] = bias + sum over k of
 * a[k][off + i * S] * b[k][:], in register blocks of 4 pixels x 16 columns (16 accumulators; per k,
 * 4 scalar loads of A used through lane FMAs and 4 loads of B), as the GEMM tile does.
 */
#include <arm_neon.h>

#include "../ukernels.h"
#include "../act/neon.h"

/* ROWS pixels (from pixel row0) x NV vectors of 4 columns; nr: the columns of this block to store.  Only
 * the pixels of the block are read (a[k][off + i * S] for i < row0 + ROWS <= mr). */
static inline __attribute__((always_inline)) void
pyconv_nchwconv_block__neon(const int ROWS, const int NV, const ptrdiff_t S, size_t row0, size_t nr,
                            size_t nrp, size_t K, const float *const *a, ptrdiff_t off, const float *b,
                            float *c, size_t ldc, const float *bias, int act) {
    float32x4_t acc[4][8];
#pragma GCC unroll 4
    for (int i = 0; i < ROWS; i++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) acc[i][v] = vdupq_n_f32(0.0f);
    off += (ptrdiff_t)row0 * S;
    for (size_t k = 0; k < K; k++) {
        const float *r = a[k] + off, *bk = b + k * nrp;
        float ak[4];
#pragma GCC unroll 4
        for (int i = 0; i < ROWS; i++) ak[i] = r[i * S];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            const float32x4_t bv = vld1q_f32(bk + 4 * v);
#pragma GCC unroll 4
            for (int i = 0; i < ROWS; i++) acc[i][v] = vfmaq_n_f32(acc[i][v], bv, ak[i]);
        }
    }
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
        if ((size_t)(4 * v) >= nr) break;
        const size_t n = nr - 4 * v;
        /* A partial vector's bias and results go through lanes: nothing past column nr - 1 is touched. */
        float32x4_t base = vdupq_n_f32(0.0f);
        if (bias) {
            base = vld1q_lane_f32(bias + 4 * v, base, 0);
            if (n > 1) base = vld1q_lane_f32(bias + 4 * v + 1, base, 1);
            if (n > 2) base = vld1q_lane_f32(bias + 4 * v + 2, base, 2);
            if (n > 3) base = vld1q_lane_f32(bias + 4 * v + 3, base, 3);
        }
#pragma GCC unroll 4
        for (int i = 0; i < ROWS; i++) {
            float *ci = c + (row0 + i) * ldc + 4 * v;
            const float32x4_t x = pyconv_act__neon(vaddq_f32(acc[i][v], base), act);
            if (n >= 4) {
                vst1q_f32(ci, x);
            } else {
                vst1q_lane_f32(ci, x, 0);
                if (n > 1) vst1q_lane_f32(ci + 1, x, 1);
                if (n > 2) vst1q_lane_f32(ci + 2, x, 2);
            }
        }
    }
}

/* Pixel rows in blocks of 4 (5 as 3 + 2) over 16 columns from col, or 1-2 pixels over all 32 columns. */
static inline __attribute__((always_inline)) void
pyconv_nchwconv_tile__neon(const ptrdiff_t S, size_t mr, size_t nr, size_t nrp, size_t K,
                           const float *const *a, ptrdiff_t off, const float *b, float *c, size_t ldc,
                           const float *bias, int act) {
    if (nr > 16 && mr <= 2) {
        if (mr == 2)
            pyconv_nchwconv_block__neon(2, 8, S, 0, nr, nrp, K, a, off, b, c, ldc, bias, act);
        else
            pyconv_nchwconv_block__neon(1, 8, S, 0, nr, nrp, K, a, off, b, c, ldc, bias, act);
        return;
    }
    for (size_t col = 0; col < nr; col += 16) {
        const size_t ncol = nr - col < 16 ? nr - col : 16;
        const float *bc = b + col, *biasc = bias ? bias + col : NULL;
        for (size_t r = 0, rows; r < mr; r += rows) {
            rows = mr - r == 5 ? 3 : mr - r >= 4 ? 4 : mr - r;
#define PYCONV_BLOCK(R)                                                                             \
            pyconv_nchwconv_block__neon(R, 4, S, r, ncol, nrp, K, a, off, bc, c + col, ldc, biasc, act)
            if (rows == 4)
                PYCONV_BLOCK(4);
            else if (rows == 3)
                PYCONV_BLOCK(3);
            else if (rows == 2)
                PYCONV_BLOCK(2);
            else
                PYCONV_BLOCK(1);
#undef PYCONV_BLOCK
        }
    }
}

/* S a literal for the common strides, so that a pixel's load is an immediate offset (3 and 6: an RGB
 * image read in place in NHWC at stride 1 and 2). */
void pyconv_nchwconv__neon(PYCONV_NCHWCONV_ARGS) {
    if (S == 2)
        pyconv_nchwconv_tile__neon(2, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
    else if (S == 1)
        pyconv_nchwconv_tile__neon(1, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
    else if (S == 6)
        pyconv_nchwconv_tile__neon(6, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
    else if (S == 3)
        pyconv_nchwconv_tile__neon(3, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
    else
        pyconv_nchwconv_tile__neon(S, mr, nr, nrp, K, a, off, b, c, ldc, bias, act);
}
