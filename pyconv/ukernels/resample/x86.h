/*
 * One horizontal resize output's three channels as one SSE4.1 vector, for the x86 levels (both imply
 * SSE4.1): each tap's pixel widened to int32 lanes (R, G, B and the next pixel's R, whose lane is
 * dropped), multiplied by the tap's weight and summed; the pack instructions' saturation is the clamp
 * to 0-255.  Twice the plain loop's speed on a bilinear shrink's 3 taps (Zen 4).
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "../ukernels.h"

static inline void pyconv_rs_pixel_sse41(const uint8_t *p, const int32_t *k, ptrdiff_t span, uint8_t *dst) {
    __m128i acc = _mm_set1_epi32(1 << (PYCONV_RESAMPLE_BITS - 1));
    for (ptrdiff_t t = 0; t < span; t++) {
        int32_t four;
        memcpy(&four, p + 3 * t, sizeof four);
        const __m128i px = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(four));
        acc = _mm_add_epi32(acc, _mm_mullo_epi32(px, _mm_set1_epi32(k[t])));
    }
    acc = _mm_srai_epi32(acc, PYCONV_RESAMPLE_BITS);
    const __m128i words = _mm_packs_epi32(acc, acc);
    const uint32_t rgb = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(words, words));
    dst[0] = (uint8_t)rgb;
    dst[1] = (uint8_t)(rgb >> 8);
    dst[2] = (uint8_t)(rgb >> 16);
}

#define PYCONV_RESAMPLE_PIXEL pyconv_rs_pixel_sse41
