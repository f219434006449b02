/* Winograd F(mxm, 3x3) transforms, compiled for the neon level (NEON). */
#define PYCONV_WINO_FN(name) name##__neon
#define PYCONV_WINO_VL 4
#include "generic.h"
