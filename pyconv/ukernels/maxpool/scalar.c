/*
 * The maximum of one pooling window over up to 64 channels (NHWC) in plain C.  A NaN anywhere in the
 * window wins, as in PyTorch; of equal values (+0 and -0) the first is kept.
 */
#include <math.h>

#include "../ukernels.h"

void pyconv_maxpool_window__scalar(PYCONV_MAXPOOL_WINDOW_ARGS) {
    float m[64];
    int nan_seen[64];
    for (ptrdiff_t c = 0; c < n; c++) {
        m[c] = -INFINITY;
        nan_seen[c] = 0;
    }
    for (ptrdiff_t h = h0; h < h1; h++)
        for (ptrdiff_t w = w0; w < w1; w++) {
            const float *s = img + (h * W + w) * C;
            for (ptrdiff_t c = 0; c < n; c++) {
                const float v = s[c];
                m[c] = v > m[c] ? v : m[c];
                nan_seen[c] |= v != v;
            }
        }
    for (ptrdiff_t c = 0; c < n; c++) dst[c] = nan_seen[c] ? NAN : m[c];
}
