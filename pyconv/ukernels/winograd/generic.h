/*
 * Winograd F(mxm, 3x3) tile transforms (Lavin & Gray 2015) for m = 2, 4, 6 on NHWC data, written once in
 * C on vectors of channels (GCC/Clang vector extensions); each level's file sets the vector width and
 * compiles this with its own flags.  A tile is T = m + 2 input pixels square.
 *
 *   input:  V = B^T d B   for a TxT input tile d, per channel  -> T*T matrices of (tiles x C)
 *   output: Y = A^T M A   for the T*T GEMM results of a tile   -> an mxm output tile, per channel
 *
 * Interpolation points: F(2): 0, 1, -1, inf; F(4): 0, 1, -1, 2, -2, inf; F(6): 0, 1, -1, 2, -2, 1/2,
 * -1/2, inf (the rows for +-1/2 scaled by 32 so that A^T holds small integers).  The 1-D transforms
 * below are those matrices factorised into sums and differences; the weight transform G g G^T, whose
 * G matches them (pyconv/packing.py), is done once, at packing time, in float64.
 *
 * Include after defining PYCONV_WINO_FN(name), which gives name its level's suffix, and PYCONV_WINO_VL,
 * the channels per vector.
 */
#include "../ukernels.h"

/* Channels whose output tile one pass of the output transform holds in its buffer. */
#define PYCONV_WINO_CHUNK 64

/* The transforms run on vectors of PYCONV_WINO_VL channels (the level's file sets the width): written
 * in the compiler's vector extension, since its auto-vectoriser left these loops scalar. */
typedef float pyconv_wv __attribute__((vector_size(PYCONV_WINO_VL * sizeof(float))));

/* The first n <= PYCONV_WINO_VL floats at p, zeros after. */
static inline pyconv_wv pyconv_wino_load(const float *p, ptrdiff_t n) {
    pyconv_wv v;
    if (n == PYCONV_WINO_VL) {
        __builtin_memcpy(&v, p, sizeof v);
    } else {
        v = (pyconv_wv){0};
        __builtin_memcpy(&v, p, (size_t)n * sizeof(float));
    }
    return v;
}

static inline void pyconv_wino_store(float *p, pyconv_wv v, ptrdiff_t n) {
    if (n == PYCONV_WINO_VL)
        __builtin_memcpy(p, &v, sizeof v);
    else
        __builtin_memcpy(p, &v, (size_t)n * sizeof(float));
}

/* o[k * os] = (B^T s)[k] for a column or row s[k * ss] of a tile, k < T. */
static inline void pyconv_wino_bt4(const pyconv_wv *s, ptrdiff_t ss, pyconv_wv *o, ptrdiff_t os) {
    const pyconv_wv d0 = s[0], d1 = s[ss], d2 = s[2 * ss], d3 = s[3 * ss];
    o[0] = d0 - d2;
    o[os] = d1 + d2;
    o[2 * os] = d2 - d1;
    o[3 * os] = d1 - d3;
}

static inline void pyconv_wino_bt6(const pyconv_wv *s, ptrdiff_t ss, pyconv_wv *o, ptrdiff_t os) {
    const pyconv_wv d0 = s[0], d1 = s[ss], d2 = s[2 * ss], d3 = s[3 * ss], d4 = s[4 * ss], d5 = s[5 * ss];
    const pyconv_wv a = d4 - 4.0f * d2, b = d3 - 4.0f * d1, c = d4 - d2, e = 2.0f * (d3 - d1);
    o[0] = 4.0f * d0 - 5.0f * d2 + d4;
    o[os] = a + b;
    o[2 * os] = a - b;
    o[3 * os] = c + e;
    o[4 * os] = c - e;
    o[5 * os] = 4.0f * d1 - 5.0f * d3 + d5;
}

static inline void pyconv_wino_bt8(const pyconv_wv *s, ptrdiff_t ss, pyconv_wv *o, ptrdiff_t os) {
    const pyconv_wv d0 = s[0], d1 = s[ss], d2 = s[2 * ss], d3 = s[3 * ss], d4 = s[4 * ss], d5 = s[5 * ss],
                    d6 = s[6 * ss], d7 = s[7 * ss];
    const pyconv_wv t1 = d2 + d6 - 4.25f * d4, t2 = d1 + d5 - 4.25f * d3;
    const pyconv_wv t3 = d6 + 0.25f * d2 - 1.25f * d4, t4 = 0.5f * d1 - 2.5f * d3 + 2.0f * d5;
    const pyconv_wv t5 = d6 + 4.0f * (d2 - 1.25f * d4), t6 = 2.0f * d1 - 2.5f * d3 + 0.5f * d5;
    o[0] = d0 - d6 + 5.25f * (d4 - d2);
    o[os] = t1 + t2;
    o[2 * os] = t1 - t2;
    o[3 * os] = t3 + t4;
    o[4 * os] = t3 - t4;
    o[5 * os] = t5 + t6;
    o[6 * os] = t5 - t6;
    o[7 * os] = d7 - d1 + 5.25f * (d3 - d5);
}

/* o[k * os] = (A^T s)[k] for k < m. */
static inline void pyconv_wino_at4(const pyconv_wv *s, ptrdiff_t ss, pyconv_wv *o, ptrdiff_t os) {
    const pyconv_wv m0 = s[0], m1 = s[ss], m2 = s[2 * ss], m3 = s[3 * ss];
    o[0] = m0 + m1 + m2;
    o[os] = m1 - m2 - m3;
}

static inline void pyconv_wino_at6(const pyconv_wv *s, ptrdiff_t ss, pyconv_wv *o, ptrdiff_t os) {
    const pyconv_wv m0 = s[0], m1 = s[ss], m2 = s[2 * ss], m3 = s[3 * ss], m4 = s[4 * ss], m5 = s[5 * ss];
    const pyconv_wv a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    o[0] = m0 + a + c;
    o[os] = b + 2.0f * d;
    o[2 * os] = a + 4.0f * c;
    o[3 * os] = b + 8.0f * d + m5;
}

static inline void pyconv_wino_at8(const pyconv_wv *s, ptrdiff_t ss, pyconv_wv *o, ptrdiff_t os) {
    const pyconv_wv m0 = s[0], m1 = s[ss], m2 = s[2 * ss], m3 = s[3 * ss], m4 = s[4 * ss], m5 = s[5 * ss],
                    m6 = s[6 * ss], m7 = s[7 * ss];
    const pyconv_wv a1 = m1 + m2, b1 = m1 - m2, a2 = m3 + m4, b2 = m3 - m4, a3 = m5 + m6, b3 = m5 - m6;
    o[0] = m0 + a1 + a2 + 32.0f * a3;
    o[os] = b1 + 2.0f * b2 + 16.0f * b3;
    o[2 * os] = a1 + 4.0f * a2 + 8.0f * a3;
    o[3 * os] = b1 + 8.0f * b2 + 4.0f * b3;
    o[4 * os] = a1 + 16.0f * a2 + 2.0f * a3;
    o[5 * os] = b1 + 32.0f * b2 + b3 + m7;
}

/* The input transform for tiles T wide, a vector of channels at a time: columns into t, then rows.
 * d: the tile's pixel pointers (zeros outside). */
#define PYCONV_WINO_INPUT_BODY(T, bt)                                                                \
    for (ptrdiff_t c = 0; c < C; c += PYCONV_WINO_VL) {                                              \
        const ptrdiff_t n = C - c < PYCONV_WINO_VL ? C - c : PYCONV_WINO_VL;                         \
        pyconv_wv t[T * T];                                                                          \
        for (int q = 0; q < T; q++) {                                                                \
            pyconv_wv s[T];                                                                          \
            for (int r = 0; r < T; r++) s[r] = pyconv_wino_load(d[r * T + q] + c, n);                \
            bt(s, 1, t + q, T);                                                                      \
        }                                                                                            \
        for (int r = 0; r < T; r++) {                                                                \
            pyconv_wv o[T];                                                                          \
            bt(t + r * T, 1, o, 1);                                                                  \
            for (int q = 0; q < T; q++) pyconv_wino_store(v + (r * T + q) * v_stride + c, o[q], n);  \
        }                                                                                            \
    }

/* The output transform of channels [0, n) of mm into buf[(r * M + q) * PYCONV_WINO_CHUNK + o]. */
#define PYCONV_WINO_OUTPUT_BODY(T, M, at)                                                            \
    for (ptrdiff_t o = 0; o < n; o += PYCONV_WINO_VL) {                                              \
        const ptrdiff_t k = n - o < PYCONV_WINO_VL ? n - o : PYCONV_WINO_VL;                         \
        pyconv_wv t[M * T];                                                                          \
        for (int q = 0; q < T; q++) {                                                                \
            pyconv_wv s[T];                                                                          \
            for (int r = 0; r < T; r++) s[r] = pyconv_wino_load(mm + (r * T + q) * m_stride + o, k); \
            at(s, 1, t + q, T);                                                                      \
        }                                                                                            \
        for (int r = 0; r < M; r++) {                                                                \
            pyconv_wv u[M];                                                                          \
            at(t + r * T, 1, u, 1);                                                                  \
            for (int q = 0; q < M; q++)                                                              \
                __builtin_memcpy(buf + (r * M + q) * PYCONV_WINO_CHUNK + o, &u[q], sizeof u[q]);     \
        }                                                                                            \
    }

static void PYCONV_WINO_FN(pyconv_wino_input4)(const float *const *d, ptrdiff_t C, float *__restrict__ v,
                                               ptrdiff_t v_stride) {
    PYCONV_WINO_INPUT_BODY(4, pyconv_wino_bt4)
}

static void PYCONV_WINO_FN(pyconv_wino_input6)(const float *const *d, ptrdiff_t C, float *__restrict__ v,
                                               ptrdiff_t v_stride) {
    PYCONV_WINO_INPUT_BODY(6, pyconv_wino_bt6)
}

static void PYCONV_WINO_FN(pyconv_wino_input8)(const float *const *d, ptrdiff_t C, float *__restrict__ v,
                                               ptrdiff_t v_stride) {
    PYCONV_WINO_INPUT_BODY(8, pyconv_wino_bt8)
}

static void PYCONV_WINO_FN(pyconv_wino_output2)(const float *__restrict__ mm, ptrdiff_t m_stride, ptrdiff_t n,
                                                float *__restrict__ buf) {
    PYCONV_WINO_OUTPUT_BODY(4, 2, pyconv_wino_at4)
}

static void PYCONV_WINO_FN(pyconv_wino_output4)(const float *__restrict__ mm, ptrdiff_t m_stride, ptrdiff_t n,
                                                float *__restrict__ buf) {
    PYCONV_WINO_OUTPUT_BODY(6, 4, pyconv_wino_at6)
}

static void PYCONV_WINO_FN(pyconv_wino_output6)(const float *__restrict__ mm, ptrdiff_t m_stride, ptrdiff_t n,
                                                float *__restrict__ buf) {
    PYCONV_WINO_OUTPUT_BODY(8, 6, pyconv_wino_at8)
}

/* Transforms channels [0, n) of the (m+2)x(m+2) tile whose top-left input pixel is (ih0, iw0) (may lie
 * in the padding; x's pixels are C floats apart) into v[k * v_stride + c] for k < (m+2)^2, c < n; taps
 * outside the image read from `zeros` (>= n floats). */
void PYCONV_WINO_FN(pyconv_wino_input)(PYCONV_WINO_INPUT_ARGS) {
    const int T = m + 2;
    const float *d[64];
    for (int r = 0; r < T; r++)
        for (int q = 0; q < T; q++) {
            const ptrdiff_t ih = ih0 + r, iw = iw0 + q;
            d[r * T + q] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x + (ih * W + iw) * C : zeros;
        }
    if (m == 2)
        PYCONV_WINO_FN(pyconv_wino_input4)(d, n, v, v_stride);
    else if (m == 4)
        PYCONV_WINO_FN(pyconv_wino_input6)(d, n, v, v_stride);
    else
        PYCONV_WINO_FN(pyconv_wino_input8)(d, n, v, v_stride);
}

/* Transforms mm[k * m_stride + o] (k < (m+2)^2, o < n) into channels 0..n-1 of the mxm output tile at
 * (oh0, ow0) of y (OH, OW pixels CO floats apart), adding the bias and applying the activation; rows and
 * columns past the output edge are dropped.  The
 * tile goes through a buffer of PYCONV_WINO_CHUNK channels, so that the transform's stores need no
 * test of the edge and the edge's copy is a plain loop. */
void PYCONV_WINO_FN(pyconv_wino_output)(PYCONV_WINO_OUTPUT_ARGS) {
    float buf[36 * PYCONV_WINO_CHUNK] __attribute__((aligned(64)));
    const ptrdiff_t rows = OH - oh0 < m ? OH - oh0 : m, cols = OW - ow0 < m ? OW - ow0 : m;
    for (ptrdiff_t o0 = 0; o0 < n; o0 += PYCONV_WINO_CHUNK) {
        const ptrdiff_t k = n - o0 < PYCONV_WINO_CHUNK ? n - o0 : PYCONV_WINO_CHUNK;
        if (m == 2)
            PYCONV_WINO_FN(pyconv_wino_output2)(mm + o0, m_stride, k, buf);
        else if (m == 4)
            PYCONV_WINO_FN(pyconv_wino_output4)(mm + o0, m_stride, k, buf);
        else
            PYCONV_WINO_FN(pyconv_wino_output6)(mm + o0, m_stride, k, buf);
        for (ptrdiff_t r = 0; r < rows; r++)
            for (ptrdiff_t q = 0; q < cols; q++) {
                const float *__restrict__ src = buf + (r * m + q) * PYCONV_WINO_CHUNK;
                float *__restrict__ dst = y + ((oh0 + r) * OW + ow0 + q) * CO + o0;
                if (bias)
                    for (ptrdiff_t o = 0; o < k; o++) dst[o] = pyconv_activate(src[o] + bias[o0 + o], act);
                else
                    for (ptrdiff_t o = 0; o < k; o++) dst[o] = pyconv_activate(src[o], act);
            }
    }
}
