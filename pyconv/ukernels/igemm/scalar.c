/*
 * GEMM tiles in plain C: the reference every other level is tested against, and the level of a CPU
 * with no vector unit pyconv knows.
 */
#include "../ukernels.h"

void pyconv_igemm__scalar(PYCONV_IGEMM_ARGS) {
    (void)pf;
    float acc[PYCONV_GEMM_MR][PYCONV_GEMM_NR_MAX];
    memset(acc, 0, sizeof(acc));
    for (size_t s = 0; s < ks; s++) {
        const float *const *as = a + s * PYCONV_GEMM_MR;
        for (size_t k = 0; k < kc; k++) {
            const float *bk = b + (s * kc + k) * nrp;
            for (size_t i = 0; i < mr; i++) {
                const float av = as[i][k];
                for (size_t j = 0; j < nrp; j++) acc[i][j] += av * bk[j];
            }
        }
    }
    for (size_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        for (size_t j = 0; j < nr; j++) {
            /* Bias, then residual: the order of the vector stores, so every level rounds alike. */
            float v = acc[i][j] + (accumulate ? ci[j] : (bias ? bias[j] : 0.0f));
            if (!accumulate && res) v += res[i * ldc + j];
            ci[j] = pyconv_activate(v, act);
        }
    }
}

/* Plain loops cost in proportion to their rows. */
ptrdiff_t pyconv_igemm_tile_rows__scalar(ptrdiff_t mr) {
    return mr;
}
