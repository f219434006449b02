/* An image resize's integer rows, compiled for the avx512 level. */
#define PYCONV_RS_FN(name) name##__avx512
#include "x86.h"
#include "generic.h"
