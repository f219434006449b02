/*
 * The narrow-group convolution row on AVX-512: 16 output channels of several narrow groups per vector,
 * the inputs they read (at most 32 consecutive channels) loaded as two vectors and handed to each lane
 * by a two-source permute (see common.h for the packing).
 */
#include <immintrin.h>

#include "../ukernels.h"
#include "../act/avx512.h"

int pyconv_gconv_supported__avx512(ptrdiff_t cg, ptrdiff_t og) {
    return og >= 1 && og <= 16 && 16 % og == 0 && (16 / og) * cg <= 32;
}

void pyconv_gconv_row__avx512(PYCONV_GCONV_ROW_ARGS) {
    const ptrdiff_t C = g->C, CO = g->CO, W = g->W, CG = g->CG, taps = g->KH * g->KW;
    const ptrdiff_t nblk = (CO + 15) / 16;
    for (ptrdiff_t v = 0; v < nblk; v++) {
        const ptrdiff_t co0 = v * 16, ci0 = (co0 / g->OG) * CG;
        const __mmask16 mo = pyconv_mask16((size_t)(CO - co0 < 16 ? CO - co0 : 16));
        const ptrdiff_t span_full = (16 / g->OG) * CG, avail = C - ci0;
        const ptrdiff_t span = span_full < avail ? span_full : avail;
        const __mmask16 mlo = pyconv_mask16((size_t)(span < 16 ? span : 16));
        const __mmask16 mhi = span > 16 ? pyconv_mask16((size_t)(span - 16)) : 0;
        const __m512 bvec = bias ? _mm512_maskz_loadu_ps(mo, bias + co0) : _mm512_setzero_ps();
        const float *wv = w + v * taps * CG * 16;
        for (ptrdiff_t ow = 0; ow < g->OW; ow += 4) {
            const ptrdiff_t np = g->OW - ow < 4 ? g->OW - ow : 4;
            __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
            for (ptrdiff_t kh = 0; kh < g->KH; kh++) {
                const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
                if (ih < 0 || ih >= g->H) continue;
                for (ptrdiff_t kw = 0; kw < g->KW; kw++) {
                    __m512 lo[4], hi[4];
                    int valid[4];
                    for (int p = 0; p < 4; p++) {
                        const ptrdiff_t iw = (ow + p) * g->SW - g->PL + kw * g->DW;
                        valid[p] = p < np && iw >= 0 && iw < W;
                        const float *xp = valid[p] ? x + (ih * W + iw) * C + ci0 : x;
                        lo[p] = valid[p] ? _mm512_maskz_loadu_ps(mlo, xp) : _mm512_setzero_ps();
                        hi[p] = valid[p] ? _mm512_maskz_loadu_ps(mhi, xp + 16) : _mm512_setzero_ps();
                    }
                    const float *wt = wv + (kh * g->KW + kw) * CG * 16;
                    for (ptrdiff_t i = 0; i < CG; i++) {
                        const __m512 wi = _mm512_loadu_ps(wt + i * 16);
                        const __m512i id = _mm512_loadu_si512((const void *)(idx + i * 16));
                        acc0 = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo[0], id, hi[0]), wi, acc0);
                        acc1 = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo[1], id, hi[1]), wi, acc1);
                        acc2 = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo[2], id, hi[2]), wi, acc2);
                        acc3 = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo[3], id, hi[3]), wi, acc3);
                    }
                }
            }
            float *yo = y + ow * CO + co0;
            _mm512_mask_storeu_ps(yo, mo, pyconv_act__avx512(_mm512_add_ps(acc0, bvec), act));
            if (np > 1) _mm512_mask_storeu_ps(yo + CO, mo, pyconv_act__avx512(_mm512_add_ps(acc1, bvec), act));
            if (np > 2) _mm512_mask_storeu_ps(yo + 2 * CO, mo, pyconv_act__avx512(_mm512_add_ps(acc2, bvec), act));
            if (np > 3) _mm512_mask_storeu_ps(yo + 3 * CO, mo, pyconv_act__avx512(_mm512_add_ps(acc3, bvec), act));
        }
    }
}
