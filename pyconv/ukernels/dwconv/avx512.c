/*
 * The depthwise row on AVX-512: 32 channels per sweep, a 3x3 (or smaller) kernel's weights held in
 * registers, 4 output pixels at a time, each input vector of a kernel row loaded once for every pixel
 * that reads it; edge pixels take the same path with the taps outside the image skipped.  Larger
 * kernels (5x5 to 9x9) stream their input through 8-pixel blocks with a kernel row's weights in registers.
 */
#include <immintrin.h>

#include "../ukernels.h"
#include "../act/avx512.h"

/* One tap for four pixels SW apart (8 FMA chains: a*, c_* hold channels 0-15 and 16-31), and the
 * store of the four finished pixels. */
#define PYCONV_DW_IN(m, p) pyconv_act__avx512(_mm512_maskz_loadu_ps(m, p), IN_ACT)
#define PYCONV_DW_FMA4(xp, w0, w1)                                                         \
    a0 = _mm512_fmadd_ps(PYCONV_DW_IN(m0, xp), w0, a0);                                    \
    c_0 = _mm512_fmadd_ps(PYCONV_DW_IN(m1, xp + 16), w1, c_0);                             \
    a1 = _mm512_fmadd_ps(PYCONV_DW_IN(m0, xp + SW * C), w0, a1);                           \
    c_1 = _mm512_fmadd_ps(PYCONV_DW_IN(m1, xp + SW * C + 16), w1, c_1);                    \
    a2 = _mm512_fmadd_ps(PYCONV_DW_IN(m0, xp + 2 * SW * C), w0, a2);                       \
    c_2 = _mm512_fmadd_ps(PYCONV_DW_IN(m1, xp + 2 * SW * C + 16), w1, c_2);                \
    a3 = _mm512_fmadd_ps(PYCONV_DW_IN(m0, xp + 3 * SW * C), w0, a3);                       \
    c_3 = _mm512_fmadd_ps(PYCONV_DW_IN(m1, xp + 3 * SW * C + 16), w1, c_3);
#define PYCONV_DW_STORE4(yo)                                                               \
    _mm512_mask_storeu_ps(yo, m0, pyconv_act__avx512(_mm512_add_ps(a0, b0), act));              \
    _mm512_mask_storeu_ps(yo + 16, m1, pyconv_act__avx512(_mm512_add_ps(c_0, b1), act));        \
    _mm512_mask_storeu_ps(yo + C, m0, pyconv_act__avx512(_mm512_add_ps(a1, b0), act));          \
    _mm512_mask_storeu_ps(yo + C + 16, m1, pyconv_act__avx512(_mm512_add_ps(c_1, b1), act));    \
    _mm512_mask_storeu_ps(yo + 2 * C, m0, pyconv_act__avx512(_mm512_add_ps(a2, b0), act));      \
    _mm512_mask_storeu_ps(yo + 2 * C + 16, m1, pyconv_act__avx512(_mm512_add_ps(c_2, b1), act)); \
    _mm512_mask_storeu_ps(yo + 3 * C, m0, pyconv_act__avx512(_mm512_add_ps(a3, b0), act));      \
    _mm512_mask_storeu_ps(yo + 3 * C + 16, m1, pyconv_act__avx512(_mm512_add_ps(c_3, b1), act));

/* NPX output pixels SW apart x 16 channels (mask m), weights held in registers (wk: KH*KW taps), biased,
 * activated and stored to yo (pixels C floats apart).  xr0 is where the window of the first pixel starts
 * (kernel row 0, column j = 0), inside the image or not.  Without CHECKED every tap is inside the image;
 * with it, only kernel rows [kh_lo, kh_hi) and window columns [j_lo, j_hi) are read (an image's edges:
 * the others are zero padding).  With STREAM (the literal 3x3 specialisations), each input pixel of a
 * kernel row is loaded once and multiplied into every output pixel that reads it: 3x3 stride 1 loads 6
 * vectors per row for 4 pixels instead of 12 (112x112x32: 0.074 -> 0.058 ms on one thread; 8 pixels at
 * a time measured no faster).  Every pixel sums its taps in (kh, kw) order, as the other paths do, so
 * results do not depend on which path ran. */
static inline __attribute__((always_inline)) void
pyconv_dw_held(const int NPX, const int STREAM, const int IN_ACT, const int CHECKED, const float *xr0,
               ptrdiff_t row_stride, ptrdiff_t C, __mmask16 m, const __m512 *wk, __m512 bv, float *yo, int act,
               ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t DW, ptrdiff_t kh_lo, ptrdiff_t kh_hi,
               ptrdiff_t j_lo, ptrdiff_t j_hi) {
    __m512 acc[4];
    for (int i = 0; i < NPX; i++) acc[i] = _mm512_setzero_ps();
    for (ptrdiff_t kh = 0; kh < KH; kh++) {
        if (CHECKED && (kh < kh_lo || kh >= kh_hi)) continue;
        const float *xr = xr0 + kh * row_stride;
        if (STREAM) {
            for (ptrdiff_t j = 0; j < (NPX - 1) * SW + (KW - 1) * DW + 1; j++) {
                if (CHECKED && (j < j_lo || j >= j_hi)) continue;
                const __m512 v = PYCONV_DW_IN(m, xr + j * C);
                for (ptrdiff_t kw = 0; kw < KW; kw++) {
                    const ptrdiff_t t = j - kw * DW;
                    if (t >= 0 && t % SW == 0 && t / SW < NPX)
                        acc[t / SW] = _mm512_fmadd_ps(v, wk[kh * KW + kw], acc[t / SW]);
                }
            }
        } else {
            for (ptrdiff_t kw = 0; kw < KW; kw++)
                for (int i = 0; i < NPX; i++) {
                    const ptrdiff_t j = i * SW + kw * DW;
                    if (CHECKED && (j < j_lo || j >= j_hi)) continue;
                    acc[i] = _mm512_fmadd_ps(PYCONV_DW_IN(m, xr + j * C), wk[kh * KW + kw], acc[i]);
                }
        }
    }
    for (int i = 0; i < NPX; i++)
        _mm512_mask_storeu_ps(yo + i * C, m, pyconv_act__avx512(_mm512_add_ps(acc[i], bv), act));
}

/* Taps whose weights the depthwise row keeps in registers (3x3: 18 zmm beside 8 accumulators). */
#define PYCONV_DW_HELD_TAPS 9

/* Most window columns whose weights the streaming path holds, and the pixels of its blocks. */
#define PYCONV_DW_STREAM_KW 9
#define PYCONV_DW_STREAM_PX 8

/* NPX output pixels SW apart x 16 channels (mask m) of a kernel too large to hold in registers (5x5 to
 * 9x9): each kernel row's KW weight vectors are loaded, then its input vectors streamed, each loaded once
 * and multiplied into every pixel that reads it (5x5 stride 1: 12 input and 5 weight loads per kernel row
 * for 40 FMAs, where 4 pixels at a time with a load per tap read 20 and 5).  Arguments as pyconv_dw_held's
 * but the weights (wc: the block's first channel of tap 0); taps summed in (kh, kw) order as there. */
static inline __attribute__((always_inline)) void
pyconv_dw_stream(const int NPX, const int IN_ACT, const int CHECKED, const float *xr0, ptrdiff_t row_stride,
                 ptrdiff_t C, __mmask16 m, const float *wc, __m512 bv, float *yo, int act, ptrdiff_t KH,
                 ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t DW, ptrdiff_t kh_lo, ptrdiff_t kh_hi, ptrdiff_t j_lo,
                 ptrdiff_t j_hi) {
    __m512 acc[PYCONV_DW_STREAM_PX];
#pragma GCC unroll 8
    for (int i = 0; i < NPX; i++) acc[i] = _mm512_setzero_ps();
    for (ptrdiff_t kh = 0; kh < KH; kh++) {
        if (CHECKED && (kh < kh_lo || kh >= kh_hi)) continue;
        const float *xr = xr0 + kh * row_stride;
        __m512 wk[PYCONV_DW_STREAM_KW];
#pragma GCC unroll 9
        for (ptrdiff_t kw = 0; kw < KW; kw++) wk[kw] = _mm512_maskz_loadu_ps(m, wc + (kh * KW + kw) * C);
#pragma GCC unroll 32
        for (ptrdiff_t j = 0; j < (NPX - 1) * SW + (KW - 1) * DW + 1; j++) {
            if (CHECKED && (j < j_lo || j >= j_hi)) continue;
            const __m512 v = PYCONV_DW_IN(m, xr + j * C);
#pragma GCC unroll 9
            for (ptrdiff_t kw = 0; kw < KW; kw++) {
                const ptrdiff_t t = j - kw * DW;
                if (t >= 0 && t % SW == 0 && t / SW < NPX) acc[t / SW] = _mm512_fmadd_ps(v, wk[kw], acc[t / SW]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < NPX; i++)
        _mm512_mask_storeu_ps(yo + i * C, m, pyconv_act__avx512(_mm512_add_ps(acc[i], bv), act));
}

/* The streaming path over a row: blocks of PYCONV_DW_STREAM_PX pixels, each over every 16 channels (an
 * input pixel's lines used whole before the block moves on); the edges' blocks CHECKED, the interior's
 * not, the last pixels (fewer than a block) one narrower block. */
static inline __attribute__((always_inline)) void
pyconv_dw_stream_row(const int IN_ACT, const pyconv_dw_geom *g, const float *x, const float *w,
                     const float *bias, float *y, ptrdiff_t oh, ptrdiff_t ow_begin, ptrdiff_t ow_end,
                     ptrdiff_t c_begin, ptrdiff_t c_end, int act, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW,
                     ptrdiff_t DW, ptrdiff_t kh_lo, ptrdiff_t kh_hi, ptrdiff_t ow_lo, ptrdiff_t ow_hi) {
    const ptrdiff_t C = g->C, W = g->W, PL = g->PL, rs = g->DH * W * C;
    const int full_rows = kh_lo == 0 && kh_hi == KH;
    const float *xr = x + (oh * g->SH - g->PT) * W * C;
#define PYCONV_DW_BLOCK(NPX, CHECKED, ow)                                                               \
    for (ptrdiff_t c0 = c_begin; c0 < c_end; c0 += 16) {                                                \
        const __mmask16 m = pyconv_mask16(c_end - c0 > 16 ? 16 : (size_t)(c_end - c0));                 \
        const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias + c0) : _mm512_setzero_ps();             \
        pyconv_dw_stream(NPX, IN_ACT, CHECKED, xr + ((ow) * SW - PL) * C + c0, rs, C, m, w + c0, bv,        \
                         y + ((ow) - ow_begin) * C + c0, act, KH, KW, SW, DW, kh_lo, kh_hi,                 \
                         (ow) * SW < PL ? PL - (ow) * SW : 0, W - ((ow) * SW - PL));                         \
    }
#define PYCONV_DW_PREFETCH(ow)                                                                          \
    if (g->prefetch && (ow) + PYCONV_DW_PREFETCH_AHEAD < ow_end)                                        \
        pyconv_dw_prefetch(g, x, oh, (ow) + PYCONV_DW_PREFETCH_AHEAD, PYCONV_DW_STREAM_PX, kh_lo, kh_hi);
    const ptrdiff_t NPX = PYCONV_DW_STREAM_PX;
    ptrdiff_t ow = ow_begin;
    if (full_rows) {
        for (; ow < ow_lo && ow + NPX <= ow_end; ow += NPX) {
            PYCONV_DW_PREFETCH(ow)
            PYCONV_DW_BLOCK(PYCONV_DW_STREAM_PX, 1, ow)
        }
        for (; ow + NPX <= ow_hi; ow += NPX) {
            PYCONV_DW_PREFETCH(ow)
            PYCONV_DW_BLOCK(PYCONV_DW_STREAM_PX, 0, ow)
        }
    }
    for (; ow + NPX <= ow_end; ow += NPX) {
        PYCONV_DW_PREFETCH(ow)
        PYCONV_DW_BLOCK(PYCONV_DW_STREAM_PX, 1, ow)
    }
    switch (ow_end - ow) {
    case 7: PYCONV_DW_BLOCK(7, 1, ow) break;
    case 6: PYCONV_DW_BLOCK(6, 1, ow) break;
    case 5: PYCONV_DW_BLOCK(5, 1, ow) break;
    case 4: PYCONV_DW_BLOCK(4, 1, ow) break;
    case 3: PYCONV_DW_BLOCK(3, 1, ow) break;
    case 2: PYCONV_DW_BLOCK(2, 1, ow) break;
    case 1: PYCONV_DW_BLOCK(1, 1, ow) break;
    default: break;
    }
#undef PYCONV_DW_PREFETCH
#undef PYCONV_DW_BLOCK
}

/* Four output pixels x 32 channels = 8 independent FMA chains, which hides the FMA latency that
 * bounds a one-pixel loop; pixels whose window crosses the left or right edge run one at a time,
 * skipping the taps outside the image (measured faster than four at a time reading zeros: ~47 vs ~37
 * GFLOP/s at 14x14x512).  KW/SW/DW are passed as
 * arguments so that the calls with literal 3x3 s1/s2 below are specialised by the compiler. */
static inline __attribute__((always_inline)) void
pyconv_dwconv_row_avx512_impl(const pyconv_dw_geom *g, const float *x, const float *w, const float *bias,
                              float *y, ptrdiff_t oh, ptrdiff_t ow_begin, ptrdiff_t ow_end, ptrdiff_t c_begin,
                              ptrdiff_t c_end, int act, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SW, ptrdiff_t DW,
                              const int STREAM, const int IN_ACT) {
    const ptrdiff_t C = g->C, W = g->W, PL = g->PL;
    ptrdiff_t kh_lo, kh_hi, ow_lo, ow_hi;
    pyconv_dw_row_bounds(g, oh, ow_begin, ow_end, KH, KW, SW, DW, &kh_lo, &kh_hi, &ow_lo, &ow_hi);
    /* Kernels small enough to hold their weights in registers run every pixel, edges included, 4 at a
     * time through pyconv_dw_held: at 7x7x1024 a row has 2 edge pixels of 7, and one pixel at a time
     * waits on its FMA latency (7x7x1024 on one thread: 18.6 us with the edges one by one). */
    const int held = KH * KW <= PYCONV_DW_HELD_TAPS;
    if (!held && STREAM) {
        pyconv_dw_stream_row(IN_ACT, g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, KH, KW, SW, DW,
                             kh_lo, kh_hi, ow_lo, ow_hi);
        return;
    }
    const int full_rows = kh_lo == 0 && kh_hi == KH;
    for (ptrdiff_t c0 = c_begin; c0 < c_end; c0 += 32) {
        const ptrdiff_t cn = c_end - c0;
        const __mmask16 m0 = pyconv_mask16(cn > 16 ? 16 : (size_t)cn),
                        m1 = cn > 16 ? pyconv_mask16((size_t)(cn - 16)) : 0;
        const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias + c0) : _mm512_setzero_ps();
        const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + c0 + 16) : _mm512_setzero_ps();
        __m512 wk0[PYCONV_DW_HELD_TAPS], wk1[PYCONV_DW_HELD_TAPS];
        if (held)
            for (ptrdiff_t t = 0; t < KH * KW; t++) {
                wk0[t] = _mm512_maskz_loadu_ps(m0, w + t * C + c0);
                wk1[t] = _mm512_maskz_loadu_ps(m1, w + t * C + c0 + 16);
            }
        const int pf = g->prefetch && c0 == c_begin;
        ptrdiff_t ow = ow_begin;
        while (ow < ow_end) {
            const int interior = ow >= ow_lo && ow + 4 <= ow_hi;
            if (held) {
                const ptrdiff_t npx = ow_end - ow < 4 ? ow_end - ow : 4;
                if (pf && ow + PYCONV_DW_PREFETCH_AHEAD < ow_end)
                    pyconv_dw_prefetch(g, x, oh, ow + PYCONV_DW_PREFETCH_AHEAD, npx, kh_lo, kh_hi);
                const ptrdiff_t iw0 = ow * SW - PL;
                const float *xr0 = x + ((oh * g->SH - g->PT) * W + iw0) * C + c0;
                float *yo = y + (ow - ow_begin) * C + c0;
                const ptrdiff_t rs = g->DH * W * C;
                const ptrdiff_t j_lo = iw0 < 0 ? -iw0 : 0, j_hi = W - iw0;
#define PYCONV_DW_HELD(NPX, CHECKED)                                                                 \
                pyconv_dw_held(NPX, STREAM, IN_ACT, CHECKED, xr0, rs, C, m0, wk0, b0, yo, act, KH, KW, SW, \
                               DW, kh_lo, kh_hi, j_lo, j_hi);                                        \
                pyconv_dw_held(NPX, STREAM, IN_ACT, CHECKED, xr0 + 16, rs, C, m1, wk1, b1, yo + 16, act, KH, \
                               KW, SW, DW, kh_lo, kh_hi, j_lo, j_hi);
#define PYCONV_DW_HELD_NPX(CHECKED)                                                                  \
                if (npx == 4) {                                                                      \
                    PYCONV_DW_HELD(4, CHECKED)                                                       \
                } else if (npx == 3) {                                                               \
                    PYCONV_DW_HELD(3, CHECKED)                                                       \
                } else if (npx == 2) {                                                               \
                    PYCONV_DW_HELD(2, CHECKED)                                                       \
                } else {                                                                             \
                    PYCONV_DW_HELD(1, CHECKED)                                                       \
                }
                if (full_rows && ow >= ow_lo && ow + npx <= ow_hi) {
                    PYCONV_DW_HELD_NPX(0)
                } else {
                    PYCONV_DW_HELD_NPX(1)
                }
#undef PYCONV_DW_HELD_NPX
#undef PYCONV_DW_HELD
                ow += npx;
            } else if (interior) {
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, c_0 = a0, c_1 = a0, c_2 = a0,
                       c_3 = a0;
                for (ptrdiff_t kh = kh_lo; kh < kh_hi; kh++) {
                    const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
                    const float *xr = x + (ih * W + ow * SW - PL) * C + c0;
                    const float *wr = w + kh * KW * C + c0;
                    for (ptrdiff_t kw = 0; kw < KW; kw++) {
                        const float *xp = xr + kw * DW * C;
                        const __m512 w0 = _mm512_maskz_loadu_ps(m0, wr + kw * C);
                        const __m512 w1 = _mm512_maskz_loadu_ps(m1, wr + kw * C + 16);
                        PYCONV_DW_FMA4(xp, w0, w1)
                    }
                }
                PYCONV_DW_STORE4(y + (ow - ow_begin) * C + c0)
                ow += 4;
            } else {
                __m512 a0 = _mm512_setzero_ps(), c_0 = a0;
                for (ptrdiff_t kh = kh_lo; kh < kh_hi; kh++) {
                    const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
                    for (ptrdiff_t kw = 0; kw < KW; kw++) {
                        const ptrdiff_t iw = ow * SW - PL + kw * DW;
                        if (iw < 0 || iw >= W) continue;
                        const float *xp = x + (ih * W + iw) * C + c0;
                        const float *wp = w + (kh * KW + kw) * C + c0;
                        a0 = _mm512_fmadd_ps(PYCONV_DW_IN(m0, xp), _mm512_maskz_loadu_ps(m0, wp), a0);
                        c_0 = _mm512_fmadd_ps(PYCONV_DW_IN(m1, xp + 16), _mm512_maskz_loadu_ps(m1, wp + 16), c_0);
                    }
                }
                float *yo = y + (ow - ow_begin) * C + c0;
                _mm512_mask_storeu_ps(yo, m0, pyconv_act__avx512(_mm512_add_ps(a0, b0), act));
                _mm512_mask_storeu_ps(yo + 16, m1, pyconv_act__avx512(_mm512_add_ps(c_0, b1), act));
                ow += 1;
            }
        }
    }
}
#undef PYCONV_DW_IN
#undef PYCONV_DW_FMA4
#undef PYCONV_DW_STORE4

/* 5x5, 7x7 and 9x9 at stride 1 and 2, no input activation (EfficientNet, MixNet, MobileNetV3): literal
 * geometry, streaming; each a function of its own, so that the compiler allocates each alone. */
#define PYCONV_DW_SPEC(K, S)                                                                            \
    static __attribute__((noinline)) void pyconv_dw_k##K##s##S(PYCONV_DWCONV_ROW_ARGS) {                 \
        pyconv_dwconv_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, K, K, S, 1, 1, 0); \
    }
PYCONV_DW_SPEC(5, 1) PYCONV_DW_SPEC(5, 2) PYCONV_DW_SPEC(7, 1) PYCONV_DW_SPEC(7, 2) PYCONV_DW_SPEC(9, 1)
PYCONV_DW_SPEC(9, 2)
#undef PYCONV_DW_SPEC

void pyconv_dwconv_row__avx512(PYCONV_DWCONV_ROW_ARGS) {
    /* Literal 3x3 geometry (and no input activation) lets the compiler unroll and specialise. */
    const int ia = g->in_act;
    if (g->KH == 3 && g->KW == 3 && g->DW == 1 && g->SW == 1 && ia == 0)
        pyconv_dwconv_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 1, 1, 1, 0);
    else if (g->KH == 3 && g->KW == 3 && g->DW == 1 && g->SW == 1)
        pyconv_dwconv_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 1, 1, 1, ia);
    else if (g->KH == 3 && g->KW == 3 && g->DW == 1 && g->SW == 2 && ia == 0)
        pyconv_dwconv_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 2, 1, 1, 0);
    else if (g->KH == 3 && g->KW == 3 && g->DW == 1 && g->SW == 2)
        pyconv_dwconv_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, 3, 3, 2, 1, 1, ia);
    else if (g->KH == 5 && g->KW == 5 && g->DW == 1 && g->SW == 1 && ia == 0)
        pyconv_dw_k5s1(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act);
    else if (g->KH == 5 && g->KW == 5 && g->DW == 1 && g->SW == 2 && ia == 0)
        pyconv_dw_k5s2(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act);
    else if (g->KH == 7 && g->KW == 7 && g->DW == 1 && g->SW == 1 && ia == 0)
        pyconv_dw_k7s1(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act);
    else if (g->KH == 7 && g->KW == 7 && g->DW == 1 && g->SW == 2 && ia == 0)
        pyconv_dw_k7s2(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act);
    else if (g->KH == 9 && g->KW == 9 && g->DW == 1 && g->SW == 1 && ia == 0)
        pyconv_dw_k9s1(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act);
    else if (g->KH == 9 && g->KW == 9 && g->DW == 1 && g->SW == 2 && ia == 0)
        pyconv_dw_k9s2(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act);
    else
        pyconv_dwconv_row_avx512_impl(g, x, w, bias, y, oh, ow_begin, ow_end, c_begin, c_end, act, g->KH, g->KW,
                                      g->SW, g->DW, 0, ia);
}
