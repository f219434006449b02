/* An image resize's integer rows, compiled for the avx2 level. */
#define PYCONV_RS_FN(name) name##__avx2
#include "x86.h"
#include "generic.h"
