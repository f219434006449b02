/*
 * Layout micro-kernel: one tile of a matrix transpose, the step that turns NCHW into NHWC and back at
 * a model's boundary ((C, H*W) <-> (H*W, C) per image).
 *
 *   pyconv_transpose_tile   dst[j][i] = src[i][j] for i < rows <= 16, j < cols <= 16; AVX-512: 16 rows
 *                           in registers, transposed by unpack and lane shuffles (no gathers)
 */
#ifndef PYCONV_LAYOUT_H
#define PYCONV_LAYOUT_H

#include <stddef.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ld_src / ld_dst: floats between consecutive rows of src / dst. */
static inline void pyconv_transpose_tile_portable(const float *src, ptrdiff_t ld_src, float *dst,
                                                  ptrdiff_t ld_dst, ptrdiff_t rows, ptrdiff_t cols) {
    for (ptrdiff_t j = 0; j < cols; j++)
        for (ptrdiff_t i = 0; i < rows; i++) dst[j * ld_dst + i] = src[i * ld_src + j];
}

#if defined(__AVX512F__)
static inline void pyconv_transpose_tile_avx512(const float *src, ptrdiff_t ld_src, float *dst,
                                                ptrdiff_t ld_dst, ptrdiff_t rows, ptrdiff_t cols) {
    const __mmask16 mc = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1u);
    const __mmask16 mr = rows >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rows) - 1u);
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(mc, src + i * ld_src) : _mm512_setzero_ps();
    /* Within each 128-bit lane: 2x2 blocks of floats, then of pairs, leaving r[4q + j] lane L holding
     * rows 4q..4q+3 of column 4L + j. */
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int q = 0; q < 4; q++) {
        const __m512d t0 = _mm512_castps_pd(t[4 * q]), t1 = _mm512_castps_pd(t[4 * q + 1]);
        const __m512d t2 = _mm512_castps_pd(t[4 * q + 2]), t3 = _mm512_castps_pd(t[4 * q + 3]);
        r[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        r[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        r[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        r[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    /* Across lanes: column 4L + j gathers lane L of r[j], r[4 + j], r[8 + j], r[12 + j]. */
    for (int j = 0; j < 4; j++) {
        const __m512 a = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88), b = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        const __m512 c = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88),
                     d = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
        t[j] = _mm512_shuffle_f32x4(a, c, 0x88);
        t[8 + j] = _mm512_shuffle_f32x4(a, c, 0xdd);
        t[4 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(b, d, 0xdd);
    }
    for (int j = 0; j < 16; j++)
        if (j < cols) _mm512_mask_storeu_ps(dst + j * ld_dst, mr, t[j]);
}
#endif

static inline void pyconv_transpose_tile(const float *src, ptrdiff_t ld_src, float *dst, ptrdiff_t ld_dst,
                                         ptrdiff_t rows, ptrdiff_t cols, int portable) {
#if defined(__AVX512F__)
    if (!portable) {
        pyconv_transpose_tile_avx512(src, ld_src, dst, ld_dst, rows, cols);
        return;
    }
#endif
    (void)portable;
    pyconv_transpose_tile_portable(src, ld_src, dst, ld_dst, rows, cols);
}

#endif /* PYCONV_LAYOUT_H */
