/*
 * The micro-kernel families and the table that dispatches them.  Each family has one source file per
 * instruction set (pyconv/ukernels/<family>/<isa>.c), compiled with that set's flags only; the
 * functions below are named <family>__<isa>.  At import, pyconv picks one level for the process
 * (pyconv_ukernels_for) and every driver calls through its table, so nothing outside a level's own
 * files is ever compiled for, or runs, an instruction the CPU may lack.
 *
 *   igemm           C[mr x nr] (+)= sum over ks row-pointer sets of A_s[mr x kc] * B_s[kc x nrp]: one GEMM
 *                   tile of the tile contract (common.h), with bias, residual and activation in the store
 *   igemm_tile_rows the work of an mr-row tile in rows of a full tile's, for even work splits
 *   nchwconv        C[mr x nr] = bias + sum over k < K of a[k][off + i * S] * b[k][:]: a convolution
 *                   reading input rows whose pixels lie S floats apart (a first layer over an RGB
 *                   image: S = stride in NCHW, stride x channels in NHWC)
 *   dwconv_row      a range of columns and channels of one depthwise output row, NHWC
 *   gconv_row       one output row of a narrow-group convolution (NULL where a level has none;
 *                   gconv_supported then answers 0 and the drivers use the GEMM path); a level has
 *                   one where gconv/<level>.c exists (PYCONV_HAVE_<LEVEL>_GCONV)
 *   wino_input / wino_output   Winograd F(mxm,3x3) tile transforms (m = 2, 4, 6), vectorised across
 *                   channels
 *   maxpool_window  the maximum of one pooling window over up to 64 channels, NaN-propagating
 *   transpose_tile  dst[j][i] = src[i][j] for a tile of at most 16x16
 *   eltwise         binary ops (add, subtract, multiply, divide) against a vector or a scalar,
 *                   scale/shift, pooling sums and means, every activation (common.h's codes) in place,
 *                   PReLU, channel shuffle rows, bilinear resize rows
 *   resample_horizontal / resample_vertical   an image resize's uint8 RGB rows in Pillow's fixed-point
 *                   arithmetic (weights of PYCONV_RESAMPLE_BITS fraction bits), along a row or down rows
 */
#ifndef PYCONV_UKERNELS_H
#define PYCONV_UKERNELS_H

#include "common.h"

#define PYCONV_IGEMM_ARGS                                                                            \
    size_t nrp, size_t mr, size_t nr, size_t ks, size_t kc, const float *const *a, const float *b,   \
        float *c, size_t ldc, const float *bias, const float *res, int accumulate, int act,          \
        const float *pf
#define PYCONV_NCHWCONV_ARGS                                                                         \
    ptrdiff_t S, size_t mr, size_t nr, size_t nrp, size_t K, const float *const *a, ptrdiff_t off,   \
        const float *b, float *c, size_t ldc, const float *bias, int act
#define PYCONV_DWCONV_ROW_ARGS                                                                       \
    const pyconv_dw_geom *g, const float *x, const float *w, const float *bias, float *y,            \
        ptrdiff_t oh, ptrdiff_t ow_begin, ptrdiff_t ow_end, ptrdiff_t c_begin, ptrdiff_t c_end, int act
#define PYCONV_GCONV_ROW_ARGS                                                                        \
    const pyconv_gc_geom *g, const float *x, const float *w, const int *idx, const float *bias,      \
        float *y, ptrdiff_t oh, int act
#define PYCONV_WINO_INPUT_ARGS                                                                       \
    int m, const float *x, ptrdiff_t H, ptrdiff_t W, ptrdiff_t C, ptrdiff_t n, ptrdiff_t ih0,               \
        ptrdiff_t iw0, const float *zeros, float *v, ptrdiff_t v_stride
#define PYCONV_WINO_OUTPUT_ARGS                                                                      \
    int m, const float *mm, ptrdiff_t m_stride, const float *bias, float *y, ptrdiff_t OH, ptrdiff_t OW,   \
        ptrdiff_t CO, ptrdiff_t n, ptrdiff_t oh0, ptrdiff_t ow0, int act
#define PYCONV_MAXPOOL_WINDOW_ARGS                                                                   \
    const float *img, float *dst, ptrdiff_t n, ptrdiff_t C, ptrdiff_t W, ptrdiff_t h0, ptrdiff_t h1, \
        ptrdiff_t w0, ptrdiff_t w1
#define PYCONV_ELTWISE_FNS(prefix, suffix)                                                           \
    void prefix##binary##suffix(const float *a, const float *b, float *o, ptrdiff_t n, int op, int act); \
    void prefix##binary_scalar##suffix(const float *a, float s, float *o, ptrdiff_t n, int op, int act);  \
    void prefix##scale_shift##suffix(const float *x, const float *s, const float *b, float *o,        \
                                     ptrdiff_t n, int act);                                           \
    void prefix##accumulate##suffix(float *dst, const float *src, ptrdiff_t n);                      \
    void prefix##divide##suffix(float *dst, float divisor, ptrdiff_t n, int act);                    \
    void prefix##activate_span##suffix(float *dst, ptrdiff_t n, int act, float alpha, float beta);   \
    void prefix##prelu##suffix(const float *x, const float *alpha, float *o, ptrdiff_t n);           \
    void prefix##mean_pixels##suffix(const float *img, float *dst, ptrdiff_t HW, ptrdiff_t C,        \
                                     ptrdiff_t n);                                                    \
    void prefix##shuffle_row##suffix(const float *src, float *dst, ptrdiff_t groups, ptrdiff_t P);    \
    void prefix##bilinear_row##suffix(PYCONV_BILINEAR_ROW_ARGS);
#define PYCONV_BILINEAR_ROW_ARGS                                                                     \
    const float *r0, const float *r1, float wy0, float wy1, const ptrdiff_t *x0, const ptrdiff_t *x1, \
        const float *wx0, const float *wx1, float *o, ptrdiff_t OW, ptrdiff_t C
/* Horizontal: `count` outputs, output x reading pixels starts[x] .. starts[x] + span - 1 of `line` (which
 * holds `pixels` RGB pixels) with weights[x * span + t].  Vertical: `elems` bytes, each the weighted sum
 * down `length` rows `stride` bytes apart from `first`; `acc` is scratch of `elems` int32. */
#define PYCONV_RESAMPLE_BITS 22
#define PYCONV_RESAMPLE_HORIZONTAL_ARGS                                                              \
    const uint8_t *line, ptrdiff_t pixels, ptrdiff_t count, const int32_t *starts,                   \
        const int32_t *weights, ptrdiff_t span, int clip, uint8_t *dst
#define PYCONV_RESAMPLE_VERTICAL_ARGS                                                                \
    const uint8_t *first, ptrdiff_t stride, ptrdiff_t length, const int32_t *k, ptrdiff_t elems,     \
        int clip, int32_t *acc, uint8_t *dst
#define PYCONV_TRANSPOSE_TILE_ARGS                                                                   \
    const float *src, ptrdiff_t ld_src, float *dst, ptrdiff_t ld_dst, ptrdiff_t rows, ptrdiff_t cols

typedef struct {
    const char *name;
    void (*igemm)(PYCONV_IGEMM_ARGS);
    ptrdiff_t (*igemm_tile_rows)(ptrdiff_t mr);
    void (*nchwconv)(PYCONV_NCHWCONV_ARGS);
    void (*dwconv_row)(PYCONV_DWCONV_ROW_ARGS);
    int (*gconv_supported)(ptrdiff_t cg, ptrdiff_t og);
    void (*gconv_row)(PYCONV_GCONV_ROW_ARGS);
    void (*wino_input)(PYCONV_WINO_INPUT_ARGS);
    void (*wino_output)(PYCONV_WINO_OUTPUT_ARGS);
    void (*maxpool_window)(PYCONV_MAXPOOL_WINDOW_ARGS);
    void (*transpose_tile)(PYCONV_TRANSPOSE_TILE_ARGS);
    /* eltwise: the non-convolution operators' loops (eltwise/generic.h) */
    void (*binary)(const float *a, const float *b, float *o, ptrdiff_t n, int op, int act);
    void (*binary_scalar)(const float *a, float s, float *o, ptrdiff_t n, int op, int act);
    void (*scale_shift)(const float *x, const float *s, const float *b, float *o, ptrdiff_t n, int act);
    void (*accumulate)(float *dst, const float *src, ptrdiff_t n);
    void (*divide)(float *dst, float divisor, ptrdiff_t n, int act);
    void (*activate_span)(float *dst, ptrdiff_t n, int act, float alpha, float beta);
    void (*prelu)(const float *x, const float *alpha, float *o, ptrdiff_t n);
    void (*mean_pixels)(const float *img, float *dst, ptrdiff_t HW, ptrdiff_t C, ptrdiff_t n);
    void (*shuffle_row)(const float *src, float *dst, ptrdiff_t groups, ptrdiff_t P);
    void (*bilinear_row)(PYCONV_BILINEAR_ROW_ARGS);
    void (*resample_horizontal)(PYCONV_RESAMPLE_HORIZONTAL_ARGS);
    void (*resample_vertical)(PYCONV_RESAMPLE_VERTICAL_ARGS);
} pyconv_ukernels;

/* Every family's entry points for one instruction set. */
#define PYCONV_DECLARE_ISA(isa)                                                                      \
    void pyconv_igemm__##isa(PYCONV_IGEMM_ARGS);                                                     \
    ptrdiff_t pyconv_igemm_tile_rows__##isa(ptrdiff_t mr);                                           \
    void pyconv_nchwconv__##isa(PYCONV_NCHWCONV_ARGS);                                               \
    void pyconv_dwconv_row__##isa(PYCONV_DWCONV_ROW_ARGS);                                           \
    void pyconv_wino_input__##isa(PYCONV_WINO_INPUT_ARGS);                                           \
    void pyconv_wino_output__##isa(PYCONV_WINO_OUTPUT_ARGS);                                         \
    void pyconv_maxpool_window__##isa(PYCONV_MAXPOOL_WINDOW_ARGS);                                   \
    void pyconv_transpose_tile__##isa(PYCONV_TRANSPOSE_TILE_ARGS);                                   \
    PYCONV_ELTWISE_FNS(pyconv_, __##isa)                                                             \
    void pyconv_resample_horizontal__##isa(PYCONV_RESAMPLE_HORIZONTAL_ARGS);                         \
    void pyconv_resample_vertical__##isa(PYCONV_RESAMPLE_VERTICAL_ARGS);

/* The narrow-group row, for the levels that have one. */
#define PYCONV_DECLARE_GCONV(isa)                                                                    \
    int pyconv_gconv_supported__##isa(ptrdiff_t cg, ptrdiff_t og);                                   \
    void pyconv_gconv_row__##isa(PYCONV_GCONV_ROW_ARGS);

PYCONV_DECLARE_ISA(scalar)
#if defined(PYCONV_HAVE_AVX2)
PYCONV_DECLARE_ISA(avx2)
#endif
#if defined(PYCONV_HAVE_AVX2_GCONV)
PYCONV_DECLARE_GCONV(avx2)
#endif
#if defined(PYCONV_HAVE_AVX512)
PYCONV_DECLARE_ISA(avx512)
#endif
#if defined(PYCONV_HAVE_AVX512_GCONV)
PYCONV_DECLARE_GCONV(avx512)
#endif
#if defined(PYCONV_HAVE_NEON)
PYCONV_DECLARE_ISA(neon)
#endif

/* The i-th level this build holds, best first ("avx512", "avx2", "scalar"), or NULL past the last. */
const char *pyconv_isa_level(size_t i);
/* Whether this CPU (and its OS, for the wider registers' state) can run level `name`. */
int pyconv_isa_supported(const char *name);
/* The table of level `name`, or NULL if this build does not hold it. */
const pyconv_ukernels *pyconv_ukernels_for(const char *name);

/* A buffer of at least `bytes` (aligned as pyconv_aligned_alloc's) that the calling thread keeps in
 * `slot` for its later calls (scratch.c); NULL if it cannot be had.  Never free it; a thread's slot is
 * reused by its next call of any driver that takes that slot. */
#define PYCONV_SCRATCH_SLOTS 4
void *pyconv_thread_scratch(int slot, size_t bytes);

#endif /* PYCONV_UKERNELS_H */
