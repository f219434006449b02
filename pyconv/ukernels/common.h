/*
 * What every micro-kernel family shares, whatever its instruction set: the tile contract of the
 * indirect GEMM, the geometry structs of the row kernels, activation codes, software prefetch and
 * aligned allocation.  Nothing here depends on the compiler's target flags.
 *
 * The tile contract: a GEMM tile is at most PYCONV_GEMM_MR (12) output pixels, each given as one row
 * pointer per pointer set, by PYCONV_GEMM_NR (32) or PYCONV_GEMM_NR_NARROW (16) output channels read
 * from weights packed in panels of that width.  Both widths are whole multiples of every level's vector
 * (16 floats on AVX-512, 8 on AVX2, 4 on NEON), so one packed form feeds every level; each level
 * covers the tile with register blocks of its own shape (AVX-512 12x32 in 24 zmm, AVX2 and NEON 6x16
 * blocks).
 */
#ifndef PYCONV_UKERNELS_COMMON_H
#define PYCONV_UKERNELS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PYCONV_GEMM_MR 12
#define PYCONV_GEMM_NR 32
#define PYCONV_GEMM_NR_NARROW 16
#define PYCONV_GEMM_NR_MAX 32
/* Output pixels per NCHW-row tile: a whole tile is always computed, so each input row must hold
 * (PYCONV_ROWS_MR - 1) * S floats past the last pixel's window start. */
#define PYCONV_ROWS_MR 12
#define PYCONV_ALIGN 64

/* Activation codes.  The micro-kernels take only the first three (0 none, 1 relu, 2 relu6), applied
 * when a tile is stored; the others are applied by the drivers with the eltwise family's
 * activate_span (its alpha and beta: clip's bounds, hard_sigmoid's slope and offset, leaky_relu's
 * and elu's slope, selu's alpha and scale) to each tile or row right after a micro-kernel wrote it.
 * pyconv/activations.py holds the same numbering.  NaN passes through every activation unchanged, as in PyTorch. */
#define PYCONV_ACT_NONE 0
#define PYCONV_ACT_RELU 1
#define PYCONV_ACT_RELU6 2
#define PYCONV_ACT_CLIP 3
#define PYCONV_ACT_SIGMOID 4
#define PYCONV_ACT_HARD_SIGMOID 5
#define PYCONV_ACT_HARD_SWISH 6
#define PYCONV_ACT_SILU 7
#define PYCONV_ACT_LEAKY_RELU 8
#define PYCONV_ACT_TANH 9
#define PYCONV_ACT_GELU 10
#define PYCONV_ACT_GELU_TANH 11
#define PYCONV_ACT_ELU 12
#define PYCONV_ACT_SELU 13
#define PYCONV_ACT_SOFTPLUS 14
#define PYCONV_ACT_MISH 15

/* Binary op codes of the eltwise binary kernels: o = a OP b, the RSUB and RDIV forms with the operands
 * swapped (o = b - a, b / a), for a broadcast operand on the left. */
#define PYCONV_BIN_ADD 0
#define PYCONV_BIN_SUB 1
#define PYCONV_BIN_MUL 2
#define PYCONV_BIN_DIV 3
#define PYCONV_BIN_RSUB 4
#define PYCONV_BIN_RDIV 5

/* Inputs (bytes per image) from which the depthwise and pooling kernels prefetch ahead.  A smaller map
 * is mostly still in the cache its producer wrote it to, where the prefetches only cost (warm
 * 112x112x32 depthwise: 0.063 -> 0.076 ms, 147x147x128 max pool 0.229 -> 0.269 ms, one thread); at
 * Xception's 147x147x128 read cold they gain 25% (separable) and 3-4x (max pool).  MobileNets' maps
 * (at most 3.2 MB, halves that fit each core's L2 at 2 threads) stay below: 2 MB measured no gain. */
#define PYCONV_PREFETCH_MIN_BYTES 4194304

/* The scalar activation; written as comparisons against v so that NaN falls through. */
static inline float pyconv_activate(float v, int act) {
    if (act >= PYCONV_ACT_RELU && v < 0.0f) v = 0.0f;
    if (act == PYCONV_ACT_RELU6 && v > 6.0f) v = 6.0f;
    return v;
}

/* Whether packed weights with panels nrp wide can feed the GEMM tiles. */
static inline int pyconv_valid_panel(ptrdiff_t nrp) {
    return nrp == PYCONV_GEMM_NR_NARROW || nrp == PYCONV_GEMM_NR;
}

static inline void *pyconv_aligned_alloc(size_t bytes) {
#if defined(__SANITIZE_ADDRESS__)
    /* Exactly the bytes asked for, so that AddressSanitizer reports an access past them (aligned_alloc
     * wants a size rounded up to the alignment, whose slack it would take as the buffer's). */
    void *p = NULL;
    return posix_memalign(&p, PYCONV_ALIGN, bytes ? bytes : 1) == 0 ? p : NULL;
#else
    size_t rounded = (bytes + PYCONV_ALIGN - 1) / PYCONV_ALIGN * PYCONV_ALIGN;
    return aligned_alloc(PYCONV_ALIGN, rounded ? rounded : PYCONV_ALIGN);
#endif
}

/* Prefetch the n floats from p, for reading, into every cache level: one hint per 64-byte line.  For
 * inputs that have left the caches and whose access pattern the hardware prefetcher follows too
 * slowly (pooling rows, depthwise rows, the NCHW first layer's rows, the transpose's blocks). */
static inline void pyconv_prefetch_floats(const float *p, ptrdiff_t n) {
    for (const char *q = (const char *)p, *end = (const char *)(p + n); q < end; q += 64)
        __builtin_prefetch(q, 0, 3);
}

/* Prefetch, for reading, the cells of rows [h0, h1) and columns [w0, w1) (NHWC, C channels): the
 * columns a window a few outputs ahead adds.  A pooling layer reads a map that the layer before it
 * has just written and whose older rows have left the caches, and the hardware prefetcher kept too
 * few of those misses in flight: 147x147x128 3x3 stride 2 right after a convolution wrote it took
 * 1.45-1.65 ms on one thread, 0.37-0.45 with this (ONNX Runtime: 0.31-0.43); 4 outputs ahead measured
 * best (2 alike, 8 and 16 slower). */
static inline void pyconv_prefetch_cells(const float *img, ptrdiff_t C, ptrdiff_t W, ptrdiff_t h0,
                                         ptrdiff_t h1, ptrdiff_t w0, ptrdiff_t w1) {
    if (w1 <= w0) return;
    for (ptrdiff_t h = h0; h < h1; h++) pyconv_prefetch_floats(img + (h * W + w0) * C, (w1 - w0) * C);
}

/* Geometry of one depthwise layer: input (H, W, C) of one image, kernel (KH, KW), weights packed
 * (KH*KW, C), pads top/left, output width OW; in_act: the activation code applied to every input value
 * as it is read (a relu before the layer, as in Xception's blocks, fused into it), 0 for none;
 * prefetch: whether the row kernel prefetches its input ahead (an image too large to be in cache). */
typedef struct {
    ptrdiff_t H, W, C, KH, KW, SH, SW, DH, DW, PT, PL, OW;
    int in_act, prefetch;
} pyconv_dw_geom;

/* For output row oh of a depthwise layer: the kernel rows whose input row lies inside the image,
 * [*kh_lo, *kh_hi), and the columns of [ow_begin, ow_end) whose whole window lies inside the row,
 * [*ow_lo, *ow_hi) (empty when none).  KH, KW, SW and DW are the row kernel's own (literal in its
 * specialisations). */
static inline void pyconv_dw_row_bounds(const pyconv_dw_geom *g, ptrdiff_t oh, ptrdiff_t ow_begin,
                                        ptrdiff_t ow_end, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW,
                                        ptrdiff_t DW, ptrdiff_t *kh_lo, ptrdiff_t *kh_hi, ptrdiff_t *ow_lo,
                                        ptrdiff_t *ow_hi) {
    ptrdiff_t lo = 0, hi = KH;
    while (lo < KH && oh * g->SH - g->PT + lo * g->DH < 0) lo++;
    while (hi > lo && oh * g->SH - g->PT + (hi - 1) * g->DH >= g->H) hi--;
    *kh_lo = lo;
    *kh_hi = hi;
    const ptrdiff_t last = g->W - 1 - (KW - 1) * DW + g->PL;
    lo = g->PL > 0 ? (g->PL + SW - 1) / SW : 0;
    hi = last >= 0 ? last / SW + 1 : 0;
    if (hi > ow_end) hi = ow_end;
    if (lo < ow_begin) lo = ow_begin;
    if (lo > hi) lo = hi;
    *ow_lo = lo;
    *ow_hi = hi;
}

/* Output columns ahead whose input columns the depthwise row kernel prefetches. */
#define PYCONV_DW_PREFETCH_AHEAD 8

/* Prefetch every channel of the input columns that output columns [ow, ow + n) add to the window on
 * their right (SW of them each), in the kernel rows [kh_lo, kh_hi) of output row oh.  The row kernel
 * sweeps its input once per block of channels; a map that the layer before has just written has left
 * the caches, and the first sweep, reading 2 lines in every pixel's C/16, kept too few misses in flight
 * for the hardware prefetcher (the max pool's problem). */
static inline void pyconv_dw_prefetch(const pyconv_dw_geom *g, const float *x, ptrdiff_t oh, ptrdiff_t ow,
                                      ptrdiff_t n, ptrdiff_t kh_lo, ptrdiff_t kh_hi) {
    ptrdiff_t w1 = (ow + n - 1) * g->SW - g->PL + (g->KW - 1) * g->DW + 1, w0 = w1 - n * g->SW;
    if (w0 < 0) w0 = 0;
    if (w1 > g->W) w1 = g->W;
    if (w1 <= w0) return;
    for (ptrdiff_t kh = kh_lo; kh < kh_hi; kh++) {
        const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
        pyconv_prefetch_floats(x + (ih * g->W + w0) * g->C, (w1 - w0) * g->C);
    }
}

/* A group convolution whose groups are narrow (OG output channels per group, OG dividing 16):
 * 16 output channels of several groups per vector block.  Weights packed as (CO/16 blocks, KH*KW taps,
 * CG, 16); idx holds CG vectors of 16 lane indices into the (16/OG)*CG <= 32 consecutive input channels
 * that a block reads. */
typedef struct {
    ptrdiff_t H, W, C, CO, KH, KW, SH, SW, DH, DW, PT, PL, OW, CG, OG;
} pyconv_gc_geom;

#endif /* PYCONV_UKERNELS_COMMON_H */
