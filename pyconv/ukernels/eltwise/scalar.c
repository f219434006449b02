/* Elementwise and channel-wise loops, compiled for the scalar level. */
#define PYCONV_ELT_FN(name) name##__scalar
#include "generic.h"
