/*
 * The narrow-group convolution row on AVX2 + FMA (semantics and the weight packing, shared with the
 * AVX-512 level, in common.h's pyconv_gc_geom and pyconv/packing.py).
 *
 * A 16-channel output block is two 8-lane halves.  When a group has at least as many outputs as inputs
 * (CG <= OG <= 8), the 8 / OG groups of a half read at most 8 consecutive input channels, so one load
 * per half and pixel and one in-lane permute (vpermps) per weight vector hand each lane its input: a
 * permute per FMA, where AVX-512 needs two input vectors and a two-source permute.  Wider inputs
 * (CG > OG) would need two or four permutes and blends per FMA; those layers take the GEMM path.
 */
#include "../ukernels.h"
#include "../act/avx2.h"

int pyconv_gconv_supported__avx2(ptrdiff_t cg, ptrdiff_t og) {
    return og >= 1 && og <= 8 && 8 % og == 0 && cg >= 1 && cg <= og;
}

void pyconv_gconv_row__avx2(PYCONV_GCONV_ROW_ARGS) {
    const ptrdiff_t C = g->C, CO = g->CO, W = g->W, CG = g->CG, OG = g->OG, taps = g->KH * g->KW;
    const ptrdiff_t nblk = (CO + 15) / 16;
    /* Lane indices relative to each half's first input channel (idx[8h], input 0 of its first group). */
    __m256i perm[2 * 8];
    for (ptrdiff_t i = 0; i < CG; i++)
        for (int h = 0; h < 2; h++)
            perm[2 * i + h] = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(idx + i * 16 + 8 * h)),
                                               _mm256_set1_epi32(idx[8 * h]));
    for (ptrdiff_t v = 0; v < nblk; v++) {
        const ptrdiff_t co0 = v * 16, ci0 = (co0 / OG) * CG, nout = CO - co0 < 16 ? CO - co0 : 16;
        const int nh = nout > 8 ? 2 : 1;
        ptrdiff_t base[2] = {0, 0}, avail[2] = {0, 0};
        __m256 bv[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int h = 0; h < nh; h++) {
            base[h] = ci0 + idx[8 * h];
            avail[h] = C - base[h];
            const ptrdiff_t no = nout - 8 * h;
            if (bias)
                bv[h] = no >= 8 ? _mm256_loadu_ps(bias + co0 + 8 * h) : pyconv_load_part8(bias + co0 + 8 * h, no);
        }
        const float *wv = w + v * taps * CG * 16;
        for (ptrdiff_t ow = 0; ow < g->OW; ow += 4) {
            const ptrdiff_t np = g->OW - ow < 4 ? g->OW - ow : 4;
            __m256 acc[2][4];
            for (int h = 0; h < 2; h++)
                for (int p = 0; p < 4; p++) acc[h][p] = _mm256_setzero_ps();
            for (ptrdiff_t kh = 0; kh < g->KH; kh++) {
                const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
                if (ih < 0 || ih >= g->H) continue;
                for (ptrdiff_t kw = 0; kw < g->KW; kw++) {
                    const float *xp[4];
                    for (int p = 0; p < 4; p++) {
                        const ptrdiff_t iw = (ow + p) * g->SW - g->PL + kw * g->DW;
                        xp[p] = p < np && iw >= 0 && iw < W ? x + (ih * W + iw) * C : NULL;
                    }
                    const float *wt = wv + (kh * g->KW + kw) * CG * 16;
                    /* Per half, every pixel's input window is loaded once and permuted CG times; a
                     * pixel outside the image reads zeros, as on AVX-512. */
#define PYCONV_GC_HALF(h)                                                                              \
                    {                                                                                  \
                        __m256 xv[4];                                                                  \
                        for (int p = 0; p < 4; p++)                                                    \
                            xv[p] = !xp[p] ? _mm256_setzero_ps()                                       \
                                    : avail[h] >= 8 ? _mm256_loadu_ps(xp[p] + base[h])                 \
                                                    : pyconv_load_part8(xp[p] + base[h], avail[h]);    \
                        for (ptrdiff_t i = 0; i < CG; i++) {                                           \
                            const __m256i id = perm[2 * i + h];                                        \
                            const __m256 wi = _mm256_loadu_ps(wt + i * 16 + 8 * h);                   \
                            acc[h][0] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(xv[0], id), wi, acc[h][0]); \
                            acc[h][1] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(xv[1], id), wi, acc[h][1]); \
                            acc[h][2] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(xv[2], id), wi, acc[h][2]); \
                            acc[h][3] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(xv[3], id), wi, acc[h][3]); \
                        }                                                                              \
                    }
                    PYCONV_GC_HALF(0)
                    if (nh > 1) PYCONV_GC_HALF(1)
#undef PYCONV_GC_HALF
                }
            }
            float *yo = y + ow * CO + co0;
            for (int h = 0; h < nh; h++)
                for (int p = 0; p < np; p++) {
                    const __m256 r = pyconv_act__avx2(_mm256_add_ps(acc[h][p], bv[h]), act);
                    if (nout - 8 * h >= 8)
                        _mm256_storeu_ps(yo + p * CO + 8 * h, r);
                    else
                        pyconv_store_part8(yo + p * CO + 8 * h, r, nout - 8 * h);
                }
        }
    }
}
