/*
 * One tile of a matrix transpose on AVX-512 (NCHW <-> NHWC at a model's boundary): 16 rows in
 * registers, transposed by unpacks and lane shuffles (no gathers).
 */
#include <immintrin.h>

#include "../ukernels.h"
#include "../act/avx512.h"

void pyconv_transpose_tile__avx512(PYCONV_TRANSPOSE_TILE_ARGS) {
    const __mmask16 mc = pyconv_mask16((size_t)cols), mr = pyconv_mask16((size_t)rows);
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
