/* Winograd F(mxm, 3x3) transforms, compiled for the scalar level (baseline). */
#define PYCONV_WINO_FN(name) name##__scalar
/* 4 channels per vector: what every 64-bit baseline has (SSE2, NEON), or plain code elsewhere. */
#define PYCONV_WINO_VL 4
#include "generic.h"
