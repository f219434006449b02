/*
 * Winograd F(2x2, 3x3) transforms (Lavin & Gray 2015) on NHWC data, written once in plain C whose loops
 * run across channels; each level's file compiles this with its own flags, and the compiler vectorises
 * the channel loops for that level.
 *
 *   input:  V = B^T d B   for a 4x4 input tile d, per channel  -> 16 matrices of (tiles x C)
 *   output: Y = A^T M A   for the 16 GEMM results of a tile    -> a 2x2 output tile, per channel
 *
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  A^T = [1 1 1 0; 0 1 -1 -1]
 * (the weight transform G g G^T is done once, at packing time, in Python).
 *
 * Include after defining PYCONV_WINO_FN(name), which gives name its level's suffix.
 */
#include "../ukernels.h"

/* Transforms the 4x4 tile whose top-left input pixel is (ih0, iw0) (may lie in the padding) into
 * v[k * v_stride + c] for k in 0..15; taps outside the image read from `zeros` (>= C floats). */
void PYCONV_WINO_FN(pyconv_wino23_input)(PYCONV_WINO23_INPUT_ARGS) {
    float *__restrict__ vr = v;
    const float *d[16];
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++) {
            const ptrdiff_t ih = ih0 + r, iw = iw0 + q;
            d[r * 4 + q] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x + (ih * W + iw) * C : zeros;
        }
    for (ptrdiff_t c = 0; c < C; c++) {
        float t[16];
        for (int q = 0; q < 4; q++) {
            const float d0 = d[q][c], d1 = d[4 + q][c], d2 = d[8 + q][c], d3 = d[12 + q][c];
            t[q] = d0 - d2;
            t[4 + q] = d1 + d2;
            t[8 + q] = d2 - d1;
            t[12 + q] = d1 - d3;
        }
        for (int r = 0; r < 4; r++) {
            const float t0 = t[r * 4], t1 = t[r * 4 + 1], t2 = t[r * 4 + 2], t3 = t[r * 4 + 3];
            vr[(r * 4 + 0) * v_stride + c] = t0 - t2;
            vr[(r * 4 + 1) * v_stride + c] = t1 + t2;
            vr[(r * 4 + 2) * v_stride + c] = t2 - t1;
            vr[(r * 4 + 3) * v_stride + c] = t1 - t3;
        }
    }
}

/* Transforms m[k * m_stride + o] (k in 0..15) into the 2x2 output tile at (oh0, ow0) of y (OH, OW, CO),
 * adding the bias and applying the activation; rows/columns past the output edge are dropped. */
void PYCONV_WINO_FN(pyconv_wino23_output)(PYCONV_WINO23_OUTPUT_ARGS) {
    const float *__restrict__ mr = m;
    float *out[4];
    int valid[4];
    for (int r = 0; r < 2; r++)
        for (int q = 0; q < 2; q++) {
            valid[r * 2 + q] = (oh0 + r < OH) && (ow0 + q < OW);
            out[r * 2 + q] = y + ((oh0 + r) * OW + (ow0 + q)) * CO;
        }
    for (ptrdiff_t o = 0; o < CO; o++) {
        float t[8];
        for (int q = 0; q < 4; q++) {
            const float m0 = mr[q * m_stride + o], m1 = mr[(4 + q) * m_stride + o],
                        m2 = mr[(8 + q) * m_stride + o], m3 = mr[(12 + q) * m_stride + o];
            t[q] = m0 + m1 + m2;
            t[4 + q] = m1 - m2 - m3;
        }
        const float b = bias ? bias[o] : 0.0f;
        const float y00 = t[0] + t[1] + t[2], y01 = t[1] - t[2] - t[3];
        const float y10 = t[4] + t[5] + t[6], y11 = t[5] - t[6] - t[7];
        if (valid[0]) out[0][o] = pyconv_activate(y00 + b, act);
        if (valid[1]) out[1][o] = pyconv_activate(y01 + b, act);
        if (valid[2]) out[2][o] = pyconv_activate(y10 + b, act);
        if (valid[3]) out[3][o] = pyconv_activate(y11 + b, act);
    }
}

