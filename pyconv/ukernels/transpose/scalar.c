/*
 * One tile of a matrix transpose in plain C (NCHW <-> NHWC at a model's boundary).
 */
#include "../ukernels.h"

void pyconv_transpose_tile__scalar(PYCONV_TRANSPOSE_TILE_ARGS) {
    for (ptrdiff_t j = 0; j < cols; j++)
        for (ptrdiff_t i = 0; i < rows; i++) dst[j * ld_dst + i] = src[i * ld_src + j];
}
