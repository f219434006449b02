/* Elementwise and channel-wise loops, compiled for the neon level. */
#define PYCONV_ELT_FN(name) name##__neon
#include "generic.h"
