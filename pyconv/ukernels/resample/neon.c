/* An image resize's integer rows, compiled for the neon level (NEON). */
#define PYCONV_RS_FN(name) name##__neon
#include "neon.h"
#include "generic.h"
