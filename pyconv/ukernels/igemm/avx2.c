/*
 * The indirect GEMM tile on AVX2 + FMA (common.h's tile contract: up to 12 rows by a panel of 16 or 32
 * columns).  Sixteen ymm registers hold one 6x16 block (12 accumulators, 2 loads of B, a broadcast of
 * A), so a tile runs as several blocks, each over the whole ks*kc loop: for each group of up to 6 rows,
 * each 16-column half of the panel (A's rows stay in L1 between the halves).  A remainder of 3 rows on a
 * 32-wide panel runs as one 3x32 block, one of 1 or 2 rows across the whole panel with partial sums.
 */
#include "../ukernels.h"
#include "../act/avx2.h"

/* The n valid floats of 8 at p, zeros past them. */
static inline __m256 pyconv_load8(const float *p, ptrdiff_t n) {
    return n >= 8 ? _mm256_loadu_ps(p) : pyconv_load_part8(p, n);
}

/* The store of 8 columns, n of them valid: v + (accumulate ? C : base), then the residual, then the
 * activation (the order of every level's store, so that all round alike). */
static inline __attribute__((always_inline)) void
pyconv_store8(float *c, const float *res, __m256 v, __m256 base, ptrdiff_t n, int accumulate, int act) {
    if (n >= 8) {
        v = _mm256_add_ps(v, accumulate ? _mm256_loadu_ps(c) : base);
        if (!accumulate && res) v = _mm256_add_ps(v, _mm256_loadu_ps(res));
        _mm256_storeu_ps(c, pyconv_act__avx2(v, act));
    } else if (n > 0) {
        v = _mm256_add_ps(v, accumulate ? pyconv_load8(c, n) : base);
        if (!accumulate && res) v = _mm256_add_ps(v, pyconv_load8(res, n));
        pyconv_store_part8(c, pyconv_act__avx2(v, act), n);
    }
}

/* Zeros for a store without bias, and -0.0 for one without residual: x + -0.0 is x for every x, -0.0
 * and NaN included, so adding it changes nothing. */
static const float pyconv_zeros[32] = {0.0f};
static const float pyconv_negzeros[32] = {-0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f,
                                          -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f,
                                          -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f,
                                          -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f};

/* The store of 8 valid columns without a branch: act(v + x[0:8] + y[0:8]). */
static inline __attribute__((always_inline)) void
pyconv_store8_full(const int ACT, float *c, const float *x, const float *y, __m256 v) {
    v = _mm256_add_ps(_mm256_add_ps(v, _mm256_loadu_ps(x)), _mm256_loadu_ps(y));
    _mm256_storeu_ps(c, pyconv_act__avx2(v, ACT));
}

/* One cache line of the next call's B block per k step, into L2 (L1 holds the B block in use).  The
 * blocks run their k loop in two copies, with PF 1 and 0: a test of pf in the loop costs more than the
 * prefetch (most tiles of a block prefetch nothing). */
#define PYCONV_PREFETCH_NEXT(PF)                                                                      \
    if (PF) { _mm_prefetch((const char *)pf, _MM_HINT_T1); pf += 16; }

/* ROWS (3 to 6) rows x NB (1 to 4, ROWS * NB <= 12) vectors of 8 columns from a panel NRP wide;
 * a, c, res are already offset to the block's first row, b, bias, c, res to its first column; n counts
 * the valid columns from there.  Each row sums its taps in (s, k) order, as every block but the 1- and
 * 2-row ones does. */
static inline __attribute__((always_inline)) void
pyconv_igemm_block(const int ROWS, const int NB, const size_t NRP, size_t ks, size_t kc,
                   const float *const *a, const float *b, float *c, size_t ldc, ptrdiff_t n,
                   const float *bias, const float *res, int accumulate, int act, const float *pf) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 x0 = zero, y0 = zero, z0 = zero, w0 = zero, x1 = zero, y1 = zero, z1 = zero, w1 = zero,
           x2 = zero, y2 = zero, z2 = zero, w2 = zero, x3 = zero, y3 = zero, z3 = zero, w3 = zero,
           x4 = zero, y4 = zero, z4 = zero, w4 = zero, x5 = zero, y5 = zero, z5 = zero, w5 = zero;
    for (size_t s = 0; s < ks; s++) {
        const float *const *as = a + s * PYCONV_GEMM_MR;
        const float *a0 = as[0], *a1 = as[1], *a2 = as[2];
        const float *a3 = ROWS > 3 ? as[3] : a0, *a4 = ROWS > 4 ? as[4] : a0, *a5 = ROWS > 5 ? as[5] : a0;
        const float *bk = b + s * kc * NRP;
/* 3 rows x 3 or 4 vectors (NB > 2): 3 broadcasts and one vector of B at a time beside the 12
 * accumulators (B loaded once for all 4 vectors made gcc spill an accumulator, halving the speed). */
#define PYCONV_ROW(i) if (ROWS > i) { t = _mm256_broadcast_ss(a##i + k); x##i = _mm256_fmadd_ps(t, b0, x##i); \
                      if (NB > 1) y##i = _mm256_fmadd_ps(t, b1, y##i); }
#define PYCONV_COLUMN(j, v)                                                                           \
                bv = _mm256_load_ps(bk + 8 * j);                                                      \
                v##0 = _mm256_fmadd_ps(t0, bv, v##0);                                                 \
                v##1 = _mm256_fmadd_ps(t1, bv, v##1);                                                 \
                v##2 = _mm256_fmadd_ps(t2, bv, v##2);
#define PYCONV_K_LOOP(PF)                                                                             \
        for (size_t k = 0; k < kc; k++) {                                                             \
            PYCONV_PREFETCH_NEXT(PF)                                                                  \
            if (NB <= 2) {                                                                            \
                const __m256 b0 = _mm256_load_ps(bk), b1 = NB > 1 ? _mm256_load_ps(bk + 8) : b0;      \
                __m256 t;                                                                             \
                PYCONV_ROW(0) PYCONV_ROW(1) PYCONV_ROW(2) PYCONV_ROW(3) PYCONV_ROW(4) PYCONV_ROW(5)   \
            } else {                                                                                  \
                const __m256 t0 = _mm256_broadcast_ss(a0 + k), t1 = _mm256_broadcast_ss(a1 + k),      \
                             t2 = _mm256_broadcast_ss(a2 + k);                                        \
                __m256 bv;                                                                            \
                PYCONV_COLUMN(0, x) PYCONV_COLUMN(1, y) PYCONV_COLUMN(2, z)                           \
                if (NB > 3) { PYCONV_COLUMN(3, w) }                                                   \
            }                                                                                         \
            bk += NRP;                                                                                \
        }
        if (pf) { PYCONV_K_LOOP(1) } else { PYCONV_K_LOOP(0) }
#undef PYCONV_K_LOOP
#undef PYCONV_COLUMN
#undef PYCONV_ROW
    }
    if (n >= 8 * NB) {
        /* Every column valid (all blocks but a row of channels' last): the store's choices made once and
         * the activation as a literal leave each vector without a branch.  A store of bias alone (no
         * residual, not accumulating: most calls) adds the bias from registers; the others add what
         * they add from where (C, or the bias or zeros, for every row; then the residual or -0.0), 2
         * loads and 2 adds a vector.  At small K the store is a large share of a block: 12544 x 32 -> 64
         * pointwise with bias, one thread, 86 -> 90 GFLOP/s with the branchless store, 90 -> 98 with the
         * bias in registers (AVX-512's speed); 3136 x 64 -> 128: 98 -> 101 -> 107. */
        const int plain = !accumulate && !res;
        const __m256 bb0 = plain && bias ? _mm256_loadu_ps(bias) : zero,
                     bb1 = plain && bias && NB > 1 ? _mm256_loadu_ps(bias + 8) : zero,
                     bb2 = plain && bias && NB > 2 ? _mm256_loadu_ps(bias + 16) : zero,
                     bb3 = plain && bias && NB > 3 ? _mm256_loadu_ps(bias + 24) : zero;
        const float *xp = accumulate ? c : bias ? bias : pyconv_zeros;
        const float *yp = !accumulate && res ? res : pyconv_negzeros;
        const size_t xs = accumulate ? ldc : 0, ys = !accumulate && res ? ldc : 0;
#define PYCONV_FULL8(PLAIN, ACT, i, j, v)                                                             \
        if (PLAIN)                                                                                    \
            _mm256_storeu_ps(c + i * ldc + 8 * j, pyconv_act__avx2(_mm256_add_ps(v, bb##j), ACT));   \
        else                                                                                          \
            pyconv_store8_full(ACT, c + i * ldc + 8 * j, xp + i * xs + 8 * j, yp + i * ys + 8 * j, v);
#define PYCONV_FULL(PLAIN, ACT, i)                                                                    \
        if (ROWS > i) {                                                                               \
            PYCONV_FULL8(PLAIN, ACT, i, 0, x##i)                                                      \
            if (NB > 1) { PYCONV_FULL8(PLAIN, ACT, i, 1, y##i) }                                      \
            if (NB > 2) { PYCONV_FULL8(PLAIN, ACT, i, 2, z##i) }                                      \
            if (NB > 3) { PYCONV_FULL8(PLAIN, ACT, i, 3, w##i) }                                      \
        }
#define PYCONV_FULL_ROWS(PLAIN, ACT)                                                                  \
        PYCONV_FULL(PLAIN, ACT, 0) PYCONV_FULL(PLAIN, ACT, 1) PYCONV_FULL(PLAIN, ACT, 2)              \
        PYCONV_FULL(PLAIN, ACT, 3) PYCONV_FULL(PLAIN, ACT, 4) PYCONV_FULL(PLAIN, ACT, 5)
#define PYCONV_FULL_ACTS(PLAIN)                                                                       \
        if (act == PYCONV_ACT_NONE) {                                                                 \
            PYCONV_FULL_ROWS(PLAIN, PYCONV_ACT_NONE)                                                  \
        } else if (act == PYCONV_ACT_RELU) {                                                          \
            PYCONV_FULL_ROWS(PLAIN, PYCONV_ACT_RELU)                                                  \
        } else {                                                                                      \
            PYCONV_FULL_ROWS(PLAIN, PYCONV_ACT_RELU6)                                                 \
        }
        if (plain) {
            PYCONV_FULL_ACTS(1)
        } else {
            PYCONV_FULL_ACTS(0)
        }
#undef PYCONV_FULL_ACTS
#undef PYCONV_FULL_ROWS
#undef PYCONV_FULL
#undef PYCONV_FULL8
        return;
    }
    __m256 base0 = zero, base1 = zero, base2 = zero, base3 = zero;
    if (!accumulate && bias) {
        base0 = pyconv_load8(bias, n);
        if (NB > 1) base1 = pyconv_load8(bias + 8, n - 8);
        if (NB > 2) base2 = pyconv_load8(bias + 16, n - 16);
        if (NB > 3) base3 = pyconv_load8(bias + 24, n - 24);
    }
#define PYCONV_STORE8(i, j, v)                                                                        \
    pyconv_store8(c + i * ldc + 8 * j, res ? res + i * ldc + 8 * j : NULL, v, base##j, n - 8 * j, accumulate, act);
#define PYCONV_STORE(i)                                                                               \
    if (ROWS > i) {                                                                                   \
        PYCONV_STORE8(i, 0, x##i)                                                                     \
        if (NB > 1) { PYCONV_STORE8(i, 1, y##i) }                                                     \
        if (NB > 2) { PYCONV_STORE8(i, 2, z##i) }                                                     \
        if (NB > 3) { PYCONV_STORE8(i, 3, w##i) }                                                     \
    }
    PYCONV_STORE(0) PYCONV_STORE(1) PYCONV_STORE(2) PYCONV_STORE(3) PYCONV_STORE(4) PYCONV_STORE(5)
#undef PYCONV_STORE
#undef PYCONV_STORE8
}

/* Each block shape compiled as a function of its own: inlined into one tile function, the blocks'
 * register allocation interfered (the 5x16 block spilled an accumulator on 32-wide panels, 109 -> 42
 * GFLOP/s). */
/* The block shapes (rows, vectors of 8 columns, panel width) that a tile is cut into. */
#define PYCONV_BLOCK_SHAPES(X)                                                                        \
    X(6, 2, 16) X(6, 1, 16) X(5, 2, 16) X(5, 1, 16) X(4, 2, 16) X(4, 1, 16)                           \
    X(6, 2, 32) X(6, 1, 32) X(5, 2, 32) X(5, 1, 32) X(4, 2, 32) X(4, 1, 32)                           \
    X(3, 2, 16) X(3, 1, 16) X(3, 4, 32) X(3, 3, 32)
#define PYCONV_BLOCK_FN(ROWS, NB, NRP)                                                                \
    static __attribute__((noinline)) void pyconv_igemm_block_##ROWS##x##NB##_##NRP(                   \
        size_t ks, size_t kc, const float *const *a, const float *b, float *c, size_t ldc, ptrdiff_t n, \
        const float *bias, const float *res, int accumulate, int act, const float *pf) {              \
        pyconv_igemm_block(ROWS, NB, NRP, ks, kc, a, b, c, ldc, n, bias, res, accumulate, act, pf);   \
    }
PYCONV_BLOCK_SHAPES(PYCONV_BLOCK_FN)
#undef PYCONV_BLOCK_FN

/* The block function of shape ROWS x NB on an NRP-wide panel (all literals after inlining). */
static inline __attribute__((always_inline)) void
pyconv_igemm_block_call(const int ROWS, const int NB, const size_t NRP, size_t ks, size_t kc,
                        const float *const *a, const float *b, float *c, size_t ldc, ptrdiff_t n,
                        const float *bias, const float *res, int accumulate, int act, const float *pf) {
#define PYCONV_CALL(R, N, W)                                                                          \
    if (ROWS == R && NB == N && NRP == W) {                                                           \
        pyconv_igemm_block_##R##x##N##_##W(ks, kc, a, b, c, ldc, n, bias, res, accumulate, act, pf);   \
        return;                                                                                       \
    }
    PYCONV_BLOCK_SHAPES(PYCONV_CALL)
#undef PYCONV_CALL
}

/* Two vectors of accumulators += t * the 16 floats at p. */
#define PYCONV_FMA16(u, w, t, p)                                                                      \
    u = _mm256_fmadd_ps(t, _mm256_load_ps(p), u);                                                     \
    w = _mm256_fmadd_ps(t, _mm256_load_ps((p) + 8), w);

/* The store of one row's NV (2 or 4) vectors of 8 columns, nr of them valid. */
static inline __attribute__((always_inline)) void
pyconv_store_row(const int NV, float *c, const float *res, size_t nr, const float *bias, int accumulate,
                 int act, __m256 v0, __m256 v1, __m256 v2, __m256 v3) {
    const __m256 v[4] = {v0, v1, v2, v3};
    for (int j = 0; j < NV; j++) {
        const ptrdiff_t n = (ptrdiff_t)nr - 8 * j;
        const __m256 base = !accumulate && bias ? pyconv_load8(bias + 8 * j, n) : _mm256_setzero_ps();
        pyconv_store8(c + 8 * j, res ? res + 8 * j : NULL, v[j], base, n, accumulate, act);
    }
}

/* One or two rows across the whole panel.  With that few accumulators each k step would wait on the
 * last one's FMA latency, so 8 accumulators (4 cycles of latency on 2 FMA pipes) are kept in flight:
 * the k steps are dealt round 2 partial sums (1 row x 32 columns, 2 rows x 16) or 4 (1 row x 16),
 * added at the end; 2 rows x 32 columns need none.  The sum order then differs from the longer
 * blocks', which is harmless: which rows of a layer run on this block depends on the layer's shape (an
 * image's last pixels, a dense layer's batch), not on the thread count. */
static inline __attribute__((always_inline)) void
pyconv_igemm_short(const int ROWS, const size_t NRP, size_t ks, size_t kc, const float *const *a,
                   const float *b, float *c, size_t ldc, size_t nr, const float *bias, const float *res,
                   int accumulate, int act, const float *pf) {
    const size_t PHASES = NRP == 32 ? 3 - ROWS : 8 / (ROWS * 2);
    __m256 u0 = _mm256_setzero_ps(), u1 = u0, u2 = u0, u3 = u0, w0 = u0, w1 = u0, w2 = u0, w3 = u0;
    for (size_t s = 0; s < ks; s++) {
        const float *a0 = a[s * PYCONV_GEMM_MR], *a1 = ROWS > 1 ? a[s * PYCONV_GEMM_MR + 1] : a0;
        const float *bk = b + s * kc * NRP;
        /* Step k into partial sum h (literal at every use). */
#define PYCONV_SHORT_STEP(k, h)                                                                       \
        {                                                                                             \
            PYCONV_PREFETCH_NEXT(pf)                                                                  \
            const __m256 t0 = _mm256_broadcast_ss(a0 + (k)), t1 = _mm256_broadcast_ss(a1 + (k));      \
            if (NRP == 32 && ROWS == 1) {                                                             \
                if (h == 0) { PYCONV_FMA16(u0, u1, t0, bk) PYCONV_FMA16(u2, u3, t0, bk + 16) }        \
                else { PYCONV_FMA16(w0, w1, t0, bk) PYCONV_FMA16(w2, w3, t0, bk + 16) }               \
            } else if (NRP == 32) {                                                                   \
                PYCONV_FMA16(u0, u1, t0, bk) PYCONV_FMA16(u2, u3, t0, bk + 16)                        \
                PYCONV_FMA16(w0, w1, t1, bk) PYCONV_FMA16(w2, w3, t1, bk + 16)                        \
            } else if (ROWS == 1) {                                                                   \
                if (h == 0) { PYCONV_FMA16(u0, u1, t0, bk) }                                          \
                else if (h == 1) { PYCONV_FMA16(u2, u3, t0, bk) }                                     \
                else if (h == 2) { PYCONV_FMA16(w0, w1, t0, bk) }                                     \
                else { PYCONV_FMA16(w2, w3, t0, bk) }                                                 \
            } else if (h == 0) {                                                                      \
                PYCONV_FMA16(u0, u1, t0, bk) PYCONV_FMA16(u2, u3, t1, bk)                             \
            } else {                                                                                  \
                PYCONV_FMA16(w0, w1, t0, bk) PYCONV_FMA16(w2, w3, t1, bk)                             \
            }                                                                                         \
            bk += NRP;                                                                                \
        }
        size_t k = 0;
        for (; k + PHASES <= kc; k += PHASES) {
            PYCONV_SHORT_STEP(k, 0)
            if (PHASES > 1) PYCONV_SHORT_STEP(k + 1, 1)
            if (PHASES > 2) PYCONV_SHORT_STEP(k + 2, 2)
            if (PHASES > 3) PYCONV_SHORT_STEP(k + 3, 3)
        }
        for (; k < kc; k++) PYCONV_SHORT_STEP(k, 0)
#undef PYCONV_SHORT_STEP
    }
    if (NRP == 32 && ROWS == 1) {
        pyconv_store_row(4, c, res, nr, bias, accumulate, act, _mm256_add_ps(u0, w0), _mm256_add_ps(u1, w1),
                         _mm256_add_ps(u2, w2), _mm256_add_ps(u3, w3));
    } else if (NRP == 32) {
        pyconv_store_row(4, c, res, nr, bias, accumulate, act, u0, u1, u2, u3);
        pyconv_store_row(4, c + ldc, res ? res + ldc : NULL, nr, bias, accumulate, act, w0, w1, w2, w3);
    } else if (ROWS == 1) {
        pyconv_store_row(2, c, res, nr, bias, accumulate, act, _mm256_add_ps(_mm256_add_ps(u0, u2), _mm256_add_ps(w0, w2)),
                         _mm256_add_ps(_mm256_add_ps(u1, u3), _mm256_add_ps(w1, w3)), u0, u0);
    } else {
        pyconv_store_row(2, c, res, nr, bias, accumulate, act, _mm256_add_ps(u0, w0), _mm256_add_ps(u1, w1), u0, u0);
        pyconv_store_row(2, c + ldc, res ? res + ldc : NULL, nr, bias, accumulate, act, _mm256_add_ps(u2, w2),
                         _mm256_add_ps(u3, w3), u0, u0);
    }
}
#undef PYCONV_FMA16

/* Rows [r0, r0 + rows) of the tile (rows <= 6), every 16-column half of the panel that holds a valid
 * column; a half with at most 8 valid columns runs 8 wide.  pf is spent in the first block only. */
static inline __attribute__((always_inline)) void
pyconv_igemm_rows(const int ROWS, const size_t NRP, size_t r0, size_t nr, size_t ks, size_t kc,
                  const float *const *a, const float *b, float *c, size_t ldc, const float *bias,
                  const float *res, int accumulate, int act, const float **pf) {
    a += r0;
    c += r0 * ldc;
    if (res) res += r0 * ldc;
    if (ROWS <= 2) {
        pyconv_igemm_short(ROWS, NRP, ks, kc, a, b, c, ldc, nr, bias, res, accumulate, act, *pf);
        *pf = NULL;
        return;
    }
    if (ROWS == 3 && NRP == 32) {
        /* 3 x 32: 12 accumulators in flight, where two 3x16 blocks would wait on the FMA latency. */
        if (nr > 24)
            pyconv_igemm_block_call(3, 4, NRP, ks, kc, a, b, c, ldc, nr, bias, res, accumulate, act, *pf);
        else
            pyconv_igemm_block_call(3, 3, NRP, ks, kc, a, b, c, ldc, nr, bias, res, accumulate, act, *pf);
        *pf = NULL;
        return;
    }
    for (size_t j0 = 0; j0 < NRP && j0 < nr; j0 += 16) {
        const ptrdiff_t n = (ptrdiff_t)(nr - j0);
        const float *bj = bias ? bias + j0 : NULL, *rj = res ? res + j0 : NULL;
        if (n > 8)
            pyconv_igemm_block_call(ROWS, 2, NRP, ks, kc, a, b + j0, c + j0, ldc, n, bj, rj, accumulate, act, *pf);
        else
            pyconv_igemm_block_call(ROWS, 1, NRP, ks, kc, a, b + j0, c + j0, ldc, n, bj, rj, accumulate, act, *pf);
        *pf = NULL;
    }
}

/* A whole tile: 6-row blocks, then the remaining mr % 6 rows on a block of their own height. */
static inline __attribute__((always_inline)) void
pyconv_igemm_tile(const size_t NRP, size_t mr, size_t nr, size_t ks, size_t kc, const float *const *a,
                  const float *b, float *c, size_t ldc, const float *bias, const float *res, int accumulate,
                  int act, const float *pf) {
    size_t r0 = 0;
    for (; r0 + 6 <= mr; r0 += 6)
        pyconv_igemm_rows(6, NRP, r0, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, &pf);
    switch (mr - r0) {
    case 5: pyconv_igemm_rows(5, NRP, r0, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, &pf); break;
    case 4: pyconv_igemm_rows(4, NRP, r0, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, &pf); break;
    case 3: pyconv_igemm_rows(3, NRP, r0, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, &pf); break;
    case 2: pyconv_igemm_rows(2, NRP, r0, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, &pf); break;
    case 1: pyconv_igemm_rows(1, NRP, r0, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, &pf); break;
    default: break;
    }
}

static void pyconv_igemm32(size_t mr, size_t nr, size_t ks, size_t kc, const float *const *a, const float *b,
                           float *c, size_t ldc, const float *bias, const float *res, int accumulate, int act,
                           const float *pf) {
    pyconv_igemm_tile(32, mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
}

static void pyconv_igemm16(size_t mr, size_t nr, size_t ks, size_t kc, const float *const *a, const float *b,
                           float *c, size_t ldc, const float *bias, const float *res, int accumulate, int act,
                           const float *pf) {
    pyconv_igemm_tile(16, mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
}

void pyconv_igemm__avx2(PYCONV_IGEMM_ARGS) {
    if (nrp == PYCONV_GEMM_NR_NARROW)
        pyconv_igemm16(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
    else
        pyconv_igemm32(mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf);
}

/* The work of an mr-row tile in rows of a full tile's work, for even splits between threads: every block
 * runs near the FMA peak but the short ones, whose 1 or 2 rows (8 accumulators) cost about a row more
 * (measured single thread, kc = 512: 1 row 56, 2 rows 86, 3 to 12 rows 99-115 GFLOP/s). */
ptrdiff_t pyconv_igemm_tile_rows__avx2(ptrdiff_t mr) {
    return mr % 6 == 1 || mr % 6 == 2 ? mr + 1 : mr;
}
