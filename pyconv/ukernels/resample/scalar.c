/* An image resize's integer rows, compiled for the scalar level (baseline). */
#define PYCONV_RS_FN(name) name##__scalar
#include "generic.h"
