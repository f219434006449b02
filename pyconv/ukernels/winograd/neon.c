/* Winograd F(mxm, 3x3) transforms, compiled for the neon level (NEON). */
#define PYCONV_WINO_FN(name) name##__neon
#include "generic.h"
