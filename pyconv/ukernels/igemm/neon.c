/*
 * The indirect GEMM tile on aarch64 NEON (A64, float32 FMA): the tile contract of common.h covered by
 * register blocks of 4 rows x 16 columns (16 accumulators of 4 floats, 4 vectors of A holding 4 k steps
 * each, 4 vectors of B), 1-2 rows x 32 columns for the shortest tiles.  6x16 (24 accumulators) was
 * tried first: gcc loads a k step's 4 B vectors together, 24 + 6 + 4 > 32 registers, and it spilled.
 *
 * Expected throughput (from instruction counts; nothing here can time NEON code): a Cortex-A76 issues 2
 * 128-bit FMAs per cycle (latency 4) and 2 loads per cycle.  A 4x16 block's k step is 16 FMAs (8 cycles)
 * against 4 loads of B and, per row, one of A every 4 k steps (5 loads per k: 2.5 cycles): FMA-bound, with
 * 16 independent chains where 8 cover the latency; about 23 instructions per k step (16 FMA, 5 loads,
 * prefetch and loop), under the 4-wide decode's 8 cycles.  A full 12x32 tile is 6 blocks, 96 FMAs, i.e. 48
 * cycles per k step at the peak of 16 FLOP/cycle; the store (16 vectors per block with bias, residual and
 * activation, about 25 cycles) and the block setup leave about 90-95% of it at kc >= 64 (37-39 GFLOP/s per
 * core at 2.6 GHz) and about 80% at kc = 16.  A 1-row tile over 16 columns keeps 4 chains and runs at half
 * the peak (latency-bound); over 32 columns it keeps 8, the peak again.
 */
#include <arm_neon.h>

#include "../ukernels.h"
#include "../act/neon.h"

static inline float32x4_t pyconv_load_n__neon(const float *p, size_t n) {
    return n >= 4 ? vld1q_f32(p) : pyconv_load_part__neon(p, n);
}

/* One line of the next B block per k step, into L2 (PRFM PLDL2KEEP), as the AVX-512 tile does. */
#define PYCONV_PREFETCH_NEXT                                                                        \
    if (pf) {                                                                                       \
        __builtin_prefetch(pf, 0, 2);                                                               \
        pf += 16;                                                                                   \
    }

/* ROWS rows (from row0) x NV vectors of 4 columns (from b and c as given), every k step of every pointer
 * set summed in order into one accumulator per output, so that a pixel's result does not depend on the
 * block shape that computed it; nr: the columns of this block to store (<= 4 * NV).  A row's k steps
 * go 4 at a time through one vector load of A and lane FMAs; the last kc % 4 one float at a time, so
 * nothing past a row's kc floats is read.  pf: NULL except in the tile's first block. */
static inline __attribute__((always_inline)) void
pyconv_igemm_block__neon(const int ROWS, const int NV, size_t nrp, size_t ks, size_t kc,
                         const float *const *a, size_t row0, const float *b, float *c, size_t ldc,
                         size_t nr, const float *bias, const float *res, int accumulate, int act,
                         const float *pf) {
    float32x4_t acc[4][8];
#pragma GCC unroll 4
    for (int i = 0; i < ROWS; i++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) acc[i][v] = vdupq_n_f32(0.0f);
    for (size_t s = 0; s < ks; s++) {
        const float *ar[4];
#pragma GCC unroll 4
        for (int i = 0; i < ROWS; i++) ar[i] = a[s * PYCONV_GEMM_MR + row0 + i];
        const float *bk = b + s * kc * nrp;
        size_t k = 0;
        for (; k + 4 <= kc; k += 4) {
            float32x4_t av[4];
#pragma GCC unroll 4
            for (int i = 0; i < ROWS; i++) av[i] = vld1q_f32(ar[i] + k);
#define PYCONV_LANE_STEP(l)                                                                         \
            {                                                                                       \
                PYCONV_PREFETCH_NEXT                                                                \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                              \
                    const float32x4_t bv = vld1q_f32(bk + 4 * v);                                   \
                    _Pragma("GCC unroll 4") for (int i = 0; i < ROWS; i++)                          \
                        acc[i][v] = vfmaq_laneq_f32(acc[i][v], bv, av[i], l);                       \
                }                                                                                   \
                bk += nrp;                                                                          \
            }
            PYCONV_LANE_STEP(0) PYCONV_LANE_STEP(1) PYCONV_LANE_STEP(2) PYCONV_LANE_STEP(3)
#undef PYCONV_LANE_STEP
        }
        for (; k < kc; k++) {
            PYCONV_PREFETCH_NEXT
#pragma GCC unroll 8
            for (int v = 0; v < NV; v++) {
                const float32x4_t bv = vld1q_f32(bk + 4 * v);
#pragma GCC unroll 4
                for (int i = 0; i < ROWS; i++) acc[i][v] = vfmaq_n_f32(acc[i][v], bv, ar[i][k]);
            }
            bk += nrp;
        }
    }
    /* Bias, then residual: the order of every level's store. */
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
        if ((size_t)(4 * v) >= nr) break;
        const size_t n = nr - 4 * v;
        const float32x4_t base = !accumulate && bias ? pyconv_load_n__neon(bias + 4 * v, n) : vdupq_n_f32(0.0f);
#pragma GCC unroll 4
        for (int i = 0; i < ROWS; i++) {
            float *ci = c + (row0 + i) * ldc + 4 * v;
            float32x4_t x = vaddq_f32(acc[i][v], accumulate ? pyconv_load_n__neon(ci, n) : base);
            if (!accumulate && res) x = vaddq_f32(x, pyconv_load_n__neon(res + (row0 + i) * ldc + 4 * v, n));
            x = pyconv_act__neon(x, act);
            if (n >= 4)
                vst1q_f32(ci, x);
            else
                pyconv_store_part__neon(ci, x, n);
        }
    }
}
#undef PYCONV_PREFETCH_NEXT

/* The rows of the tile in blocks of 4 over 16 columns from col; a remainder of 5 rows runs as 3 + 2, so
 * that no row runs alone (4 chains) unless the tile has one row. */
static void pyconv_igemm_rows16__neon(size_t nrp, size_t mr, size_t nr, size_t ks, size_t kc,
                                      const float *const *a, const float *b, float *c, size_t ldc,
                                      const float *bias, const float *res, int accumulate, int act,
                                      const float *pf, size_t col) {
    b += col;
    c += col;
    if (bias) bias += col;
    if (res) res += col;
    for (size_t r = 0, rows; r < mr; r += rows, pf = NULL) {
        rows = mr - r == 5 ? 3 : mr - r >= 4 ? 4 : mr - r;
#define PYCONV_BLOCK(R)                                                                             \
        pyconv_igemm_block__neon(R, 4, nrp, ks, kc, a, r, b, c, ldc, nr, bias, res, accumulate, act, pf)
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

void pyconv_igemm__neon(PYCONV_IGEMM_ARGS) {
    if (nr <= 16) {
        /* Columns 16-31 of a 32-wide panel, zero padding here, are neither read nor computed. */
        pyconv_igemm_rows16__neon(nrp, mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf, 0);
    } else if (mr <= 2) {
        /* One or two rows over all 32 columns: 8 or 16 chains instead of 4 or 8 (a dense layer's batch). */
        if (mr == 2)
            pyconv_igemm_block__neon(2, 8, nrp, ks, kc, a, 0, b, c, ldc, nr, bias, res, accumulate, act, pf);
        else
            pyconv_igemm_block__neon(1, 8, nrp, ks, kc, a, 0, b, c, ldc, nr, bias, res, accumulate, act, pf);
    } else {
        pyconv_igemm_rows16__neon(nrp, mr, 16, ks, kc, a, b, c, ldc, bias, res, accumulate, act, pf, 0);
        pyconv_igemm_rows16__neon(nrp, mr, nr - 16, ks, kc, a, b, c, ldc, bias, res, accumulate, act, NULL, 16);
    }
}

/* Work is proportional to the rows, except that a lone row over 16 columns waits on the FMA latency
 * (4 chains of 4 cycles) as long as two rows take. */
ptrdiff_t pyconv_igemm_tile_rows__neon(ptrdiff_t mr) {
    return mr < 2 ? 2 : mr;
}
