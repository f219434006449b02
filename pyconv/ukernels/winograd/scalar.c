/* Winograd F(mxm, 3x3) transforms, compiled for the scalar level (baseline). */
#define PYCONV_WINO_FN(name) name##__scalar
#include "generic.h"
