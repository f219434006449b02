/*
 * Convolution on NCHW input rows in plain C (a model's first layer read in place; see ukernels.h).
 */
#include "../ukernels.h"

void pyconv_nchwconv__scalar(PYCONV_NCHWCONV_ARGS) {
    float acc[PYCONV_ROWS_MR][PYCONV_GEMM_NR_MAX];
    memset(acc, 0, sizeof(acc));
    for (size_t k = 0; k < K; k++) {
        const float *ak = a[k] + off, *bk = b + k * nrp;
        for (size_t i = 0; i < mr; i++)
            for (size_t j = 0; j < nrp; j++) acc[i][j] += ak[(ptrdiff_t)i * S] * bk[j];
    }
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j++)
            c[i * ldc + j] = pyconv_activate(acc[i][j] + (bias ? bias[j] : 0.0f), act);
}
