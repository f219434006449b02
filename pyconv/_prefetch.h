/*
 * pyconv software prefetch: ranges of floats brought into the caches ahead of the loop that reads
 * them, for kernels whose input has left the caches and whose access pattern the hardware prefetcher
 * follows too slowly (_pool.h's pooling rows, _simd.h's depthwise rows, the NCHW first layer's rows,
 * _layout.pyx's transpose blocks).
 */
#ifndef PYCONV_PREFETCH_H
#define PYCONV_PREFETCH_H

#include <stddef.h>

/* Inputs (bytes per image) from which the depthwise and pooling kernels prefetch ahead.  A smaller map
 * is mostly still in the cache its producer wrote it to, where the prefetches only cost (warm
 * 112x112x32 depthwise: 0.063 -> 0.076 ms, 147x147x128 max pool 0.229 -> 0.269 ms, one thread); at
 * Xception's 147x147x128 read cold they gain 25% (separable) and 3-4x (max pool).  MobileNets' maps
 * (at most 3.2 MB, halves that fit each core's L2 at 2 threads) stay below: 2 MB measured no gain. */
#define PYCONV_PREFETCH_MIN_BYTES 4194304

/* Prefetch the n floats from p, for reading, into every cache level: one hint per 64-byte line. */
static inline void pyconv_prefetch_floats(const float *p, ptrdiff_t n) {
    for (const char *q = (const char *)p, *end = (const char *)(p + n); q < end; q += 64)
        __builtin_prefetch(q, 0, 3);
}

#endif /* PYCONV_PREFETCH_H */
