/* Winograd F(mxm, 3x3) transforms, compiled for the avx2 level (AVX2+FMA). */
#define PYCONV_WINO_FN(name) name##__avx2
#define PYCONV_WINO_VL 8
#include "generic.h"
