/* AddressSanitizer's view of the x86 intrinsics it cannot see (a PYCONV_SANITIZE=address build only;
 * nothing otherwise).  GCC's ASan checks plain dereferences, which is what _mm*_load[u]_ps and
 * _mm*_store[u]_ps are, but the intrinsics below compile to target builtins that it does not instrument:
 * the AVX-512 masked moves (every AVX-512 row and channel remainder) and AVX2's broadcast and 64-bit
 * partial moves.  Each is redefined here to check, through libasan's own access checks, exactly the bytes
 * it touches (the active lanes of a masked move) before doing the move itself, so that an out-of-bounds
 * lane is reported like any other access.  Include right after <immintrin.h>. */
#ifndef PYCONV_ACT_ASAN_X86_H
#define PYCONV_ACT_ASAN_X86_H

#if defined(__SANITIZE_ADDRESS__)
/* libasan's checked accesses of 4 and 8 bytes (the entry points of its call-instrumented mode). */
void __asan_load4(void *p);
void __asan_store4(void *p);
void __asan_load8(void *p);
void __asan_store8(void *p);

static inline void pyconv_asan_lanes(const void *p, unsigned mask, int store) {
    for (char *q = (char *)p; mask; mask >>= 1, q += 4)
        if (mask & 1u) {
            if (store)
                __asan_store4(q);
            else
                __asan_load4(q);
        }
}

/* (name) in parentheses is the intrinsic itself, not this macro. */
#define _mm512_maskz_loadu_ps(k, p) __extension__({                                                 \
    const __mmask16 pyconv_k_ = (k);                                                             \
    const void *pyconv_p_ = (p);                                                                 \
    pyconv_asan_lanes(pyconv_p_, pyconv_k_, 0);                                                  \
    (_mm512_maskz_loadu_ps)(pyconv_k_, pyconv_p_);                                               \
})
#define _mm512_mask_storeu_ps(p, k, v) __extension__({                                              \
    void *pyconv_p_ = (p);                                                                       \
    const __mmask16 pyconv_k_ = (k);                                                             \
    pyconv_asan_lanes(pyconv_p_, pyconv_k_, 1);                                                  \
    (_mm512_mask_storeu_ps)(pyconv_p_, pyconv_k_, (v));                                          \
})
#define _mm256_broadcast_ss(p) __extension__({                                                      \
    const float *pyconv_p_ = (p);                                                                \
    __asan_load4((void *)pyconv_p_);                                                          \
    (_mm256_broadcast_ss)(pyconv_p_);                                                            \
})
#define _mm_loadl_pi(a, p) __extension__({                                                          \
    const __m64 *pyconv_p_ = (p);                                                                \
    __asan_load8((void *)pyconv_p_);                                                          \
    (_mm_loadl_pi)((a), pyconv_p_);                                                              \
})
#define _mm_storel_pi(p, v) __extension__({                                                         \
    __m64 *pyconv_p_ = (p);                                                                      \
    __asan_store8((void *)pyconv_p_);                                                         \
    (_mm_storel_pi)(pyconv_p_, (v));                                                             \
})
#endif /* __SANITIZE_ADDRESS__ */

#endif /* PYCONV_ACT_ASAN_X86_H */
