/*
 * pyconv software prefetch: ranges of floats brought into the caches ahead of the loop that reads
 * them, for kernels whose input has left the caches and whose access pattern the hardware prefetcher
 * follows too slowly (_pool.h's pooling rows, _simd.h's depthwise rows, the NCHW first layer's rows).
 */
#ifndef PYCONV_PREFETCH_H
#define PYCONV_PREFETCH_H

#include <stddef.h>

/* Prefetch the n floats from p, for reading, into every cache level: one hint per 64-byte line. */
static inline void pyconv_prefetch_floats(const float *p, ptrdiff_t n) {
    for (const char *q = (const char *)p, *end = (const char *)(p + n); q < end; q += 64)
        __builtin_prefetch(q, 0, 3);
}

#endif /* PYCONV_PREFETCH_H */
