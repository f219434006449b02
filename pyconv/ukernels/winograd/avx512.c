/* Winograd F(mxm, 3x3) transforms, compiled for the avx512 level (AVX-512). */
#define PYCONV_WINO_FN(name) name##__avx512
#define PYCONV_WINO_VL 16
#include "generic.h"
