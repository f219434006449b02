/*
 * The depthwise row in plain C: a range of columns and channels of one output row (NHWC), taps summed
 * in (kh, kw) order, the input activation applied to each value as it is read.
 */
#include "../ukernels.h"

void pyconv_dwconv_row__scalar(PYCONV_DWCONV_ROW_ARGS) {
    const ptrdiff_t C = g->C;
    for (ptrdiff_t ow = ow_begin; ow < ow_end; ow++) {
        float *yo = y + (ow - ow_begin) * C;
        for (ptrdiff_t c = c_begin; c < c_end; c++) yo[c] = 0.0f;
        for (ptrdiff_t kh = 0; kh < g->KH; kh++) {
            const ptrdiff_t ih = oh * g->SH - g->PT + kh * g->DH;
            if (ih < 0 || ih >= g->H) continue;
            for (ptrdiff_t kw = 0; kw < g->KW; kw++) {
                const ptrdiff_t iw = ow * g->SW - g->PL + kw * g->DW;
                if (iw < 0 || iw >= g->W) continue;
                const float *xi = x + (ih * g->W + iw) * C, *wk = w + (kh * g->KW + kw) * C;
                for (ptrdiff_t c = c_begin; c < c_end; c++) yo[c] += pyconv_activate(xi[c], g->in_act) * wk[c];
            }
        }
        for (ptrdiff_t c = c_begin; c < c_end; c++)
            yo[c] = pyconv_activate(yo[c] + (bias ? bias[c] : 0.0f), act);
    }
}
