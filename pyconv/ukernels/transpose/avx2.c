/*
 * The transpose tile on AVX2: dst[j][i] = src[i][j] for i < rows <= 16, j < cols <= 16, as four 8x8
 * register transposes (semantics in ukernels.h).
 */
#include "../ukernels.h"
#include "../act/avx2.h"

/* Four floats of row i from column j: zeros past the tile, a partial load across its last column. */
static inline __attribute__((always_inline)) __m128
pyconv_tr_load4__avx2(const int FULL, const float *src, ptrdiff_t ld_src, ptrdiff_t i, ptrdiff_t j, ptrdiff_t rows,
                      ptrdiff_t cols) {
    if (FULL) return _mm_loadu_ps(src + i * ld_src + j);
    if (i >= rows || j >= cols) return _mm_setzero_ps();
    if (j + 4 <= cols) return _mm_loadu_ps(src + i * ld_src + j);
    return pyconv_load_part4(src + i * ld_src + j, cols - j);
}

/* The 8x8 block at rows r0, columns c0.  Row i's halves are loaded into the two 128-bit lanes of
 * register i % 4 (columns c0..c0+3) and 4 + i % 4 (c0+4..c0+7), rows i < 4 in the low lane; then
 * in-lane unpacks and shuffles finish the transpose with no lane crossing (16 shuffles, against 24
 * with permute2f128). */
static inline __attribute__((always_inline)) void
pyconv_tr_8x8__avx2(const int FULL, const float *src, ptrdiff_t ld_src, float *dst, ptrdiff_t ld_dst,
                    ptrdiff_t r0, ptrdiff_t c0, ptrdiff_t rows, ptrdiff_t cols) {
    __m256 r[8], t[8];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_insertf128_ps(
            _mm256_castps128_ps256(pyconv_tr_load4__avx2(FULL, src, ld_src, r0 + q, c0, rows, cols)),
            pyconv_tr_load4__avx2(FULL, src, ld_src, r0 + 4 + q, c0, rows, cols), 1);
        r[4 + q] = _mm256_insertf128_ps(
            _mm256_castps128_ps256(pyconv_tr_load4__avx2(FULL, src, ld_src, r0 + q, c0 + 4, rows, cols)),
            pyconv_tr_load4__avx2(FULL, src, ld_src, r0 + 4 + q, c0 + 4, rows, cols), 1);
    }
    /* r[h*4 + q] lane L holds row r0 + 4L + q, columns c0 + 4h .. c0 + 4h + 3. */
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        t[4 * h] = _mm256_unpacklo_ps(r[4 * h], r[4 * h + 1]);
        t[4 * h + 1] = _mm256_unpackhi_ps(r[4 * h], r[4 * h + 1]);
        t[4 * h + 2] = _mm256_unpacklo_ps(r[4 * h + 2], r[4 * h + 3]);
        t[4 * h + 3] = _mm256_unpackhi_ps(r[4 * h + 2], r[4 * h + 3]);
        r[4 * h] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        r[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xee);
        r[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        r[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xee);
    }
    /* r[k] is now column c0 + k, rows r0 .. r0 + 7. */
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        if (FULL)
            _mm256_storeu_ps(dst + (c0 + k) * ld_dst + r0, r[k]);
        else if (c0 + k < cols) {
            if (r0 + 8 <= rows)
                _mm256_storeu_ps(dst + (c0 + k) * ld_dst + r0, r[k]);
            else
                pyconv_store_part8(dst + (c0 + k) * ld_dst + r0, r[k], rows - r0);
        }
    }
}

void pyconv_transpose_tile__avx2(PYCONV_TRANSPOSE_TILE_ARGS) {
    if (rows == 16 && cols == 16) {
        for (ptrdiff_t r0 = 0; r0 < 16; r0 += 8)
            for (ptrdiff_t c0 = 0; c0 < 16; c0 += 8) pyconv_tr_8x8__avx2(1, src, ld_src, dst, ld_dst, r0, c0, 16, 16);
        return;
    }
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += 8)
        for (ptrdiff_t c0 = 0; c0 < cols; c0 += 8) pyconv_tr_8x8__avx2(0, src, ld_src, dst, ld_dst, r0, c0, rows, cols);
}
