/* Elementwise and channel-wise loops, compiled for the avx512 level. */
#define PYCONV_ELT_FN(name) name##__avx512
#include "generic.h"
