/* Elementwise and channel-wise loops, compiled for the avx2 level. */
#define PYCONV_ELT_FN(name) name##__avx2
#include "generic.h"
