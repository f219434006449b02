"""The micro-kernel library's C interface (pyconv/ukernels/ukernels.h and common.h), for the Cython
drivers: the tile contract's constants, the geometry structs and the per-level dispatch table."""
from libc.stdint cimport int32_t, uint8_t

cdef extern from "ukernels.h" nogil:
    enum:
        PYCONV_GEMM_MR
        PYCONV_GEMM_NR
        PYCONV_GEMM_NR_NARROW
        PYCONV_ROWS_MR
        PYCONV_ALIGN
        PYCONV_PREFETCH_MIN_BYTES
        PYCONV_ACT_NONE
        PYCONV_ACT_RELU6
        PYCONV_ACT_MISH
        PYCONV_BIN_ADD
        PYCONV_BIN_SUB
        PYCONV_BIN_MUL
        PYCONV_BIN_DIV
        PYCONV_BIN_RSUB
        PYCONV_BIN_RDIV
        PYCONV_RESAMPLE_BITS
    ctypedef struct pyconv_dw_geom:
        ptrdiff_t H, W, C, KH, KW, SH, SW, DH, DW, PT, PL, OW
        int in_act, prefetch
    ctypedef struct pyconv_gc_geom:
        ptrdiff_t H, W, C, CO, KH, KW, SH, SW, DH, DW, PT, PL, OW, CG, OG
    # The dispatch table: one per instruction-set level (ukernels.h).
    ctypedef struct pyconv_ukernels:
        const char *name
        void (*igemm)(size_t nrp, size_t mr, size_t nr, size_t ks, size_t kc, const float **a,
                      const float *b, float *c, size_t ldc, const float *bias, const float *res,
                      int accumulate, int act, const float *pf) noexcept nogil
        ptrdiff_t (*igemm_tile_rows)(ptrdiff_t mr) noexcept nogil
        void (*nchwconv)(ptrdiff_t S, size_t mr, size_t nr, size_t nrp, size_t K, const float **a,
                         ptrdiff_t off, const float *b, float *c, size_t ldc, const float *bias,
                         int act) noexcept nogil
        void (*dwconv_row)(const pyconv_dw_geom *g, const float *x, const float *w, const float *bias,
                           float *y, ptrdiff_t oh, ptrdiff_t ow_begin, ptrdiff_t ow_end, ptrdiff_t c_begin,
                           ptrdiff_t c_end, int act) noexcept nogil
        int (*gconv_supported)(ptrdiff_t cg, ptrdiff_t og) noexcept nogil
        void (*gconv_row)(const pyconv_gc_geom *g, const float *x, const float *w, const int *idx,
                          const float *bias, float *y, ptrdiff_t oh, int act) noexcept nogil
        void (*wino_input)(int m, const float *x, ptrdiff_t H, ptrdiff_t W, ptrdiff_t C, ptrdiff_t n,
                           ptrdiff_t ih0, ptrdiff_t iw0, const float *zeros, float *v,
                           ptrdiff_t v_stride) noexcept nogil
        void (*wino_output)(int m, const float *mm, ptrdiff_t m_stride, const float *bias, float *y,
                            ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t CO, ptrdiff_t n, ptrdiff_t oh0, ptrdiff_t ow0,
                            int act) noexcept nogil
        void (*maxpool_window)(const float *img, float *dst, ptrdiff_t n, ptrdiff_t C, ptrdiff_t W,
                               ptrdiff_t h0, ptrdiff_t h1, ptrdiff_t w0, ptrdiff_t w1) noexcept nogil
        void (*transpose_tile)(const float *src, ptrdiff_t ld_src, float *dst, ptrdiff_t ld_dst,
                               ptrdiff_t rows, ptrdiff_t cols) noexcept nogil
        void (*binary)(const float *a, const float *b, float *o, ptrdiff_t n, int op, int act) noexcept nogil
        void (*binary_scalar)(const float *a, float s, float *o, ptrdiff_t n, int op, int act) noexcept nogil
        void (*scale_shift)(const float *x, const float *s, const float *b, float *o, ptrdiff_t n,
                            int act) noexcept nogil
        void (*accumulate)(float *dst, const float *src, ptrdiff_t n) noexcept nogil
        void (*divide)(float *dst, float divisor, ptrdiff_t n, int act) noexcept nogil
        void (*activate_span)(float *dst, ptrdiff_t n, int act, float alpha, float beta) noexcept nogil
        void (*prelu)(const float *x, const float *alpha, float *o, ptrdiff_t n) noexcept nogil
        void (*mean_pixels)(const float *img, float *dst, ptrdiff_t HW, ptrdiff_t C, ptrdiff_t n) noexcept nogil
        void (*shuffle_row)(const float *src, float *dst, ptrdiff_t groups, ptrdiff_t P) noexcept nogil
        void (*bilinear_row)(const float *r0, const float *r1, float wy0, float wy1, const ptrdiff_t *x0,
                             const ptrdiff_t *x1, const float *wx0, const float *wx1, float *o, ptrdiff_t OW,
                             ptrdiff_t C) noexcept nogil
        void (*resample_horizontal)(const uint8_t *line, ptrdiff_t pixels, ptrdiff_t count, const int32_t *starts,
                                    const int32_t *weights, ptrdiff_t span, int clip, uint8_t *dst) noexcept nogil
        void (*resample_vertical)(const uint8_t *first, ptrdiff_t stride, ptrdiff_t length, const int32_t *k,
                                  ptrdiff_t elems, int clip, int32_t *acc, uint8_t *dst) noexcept nogil
    const pyconv_ukernels *pyconv_ukernels_for(const char *name)
    void pyconv_prefetch_floats(const float *p, ptrdiff_t n)
    void pyconv_prefetch_cells(const float *img, ptrdiff_t C, ptrdiff_t W, ptrdiff_t h0, ptrdiff_t h1,
                               ptrdiff_t w0, ptrdiff_t w1)
    void *pyconv_aligned_alloc(size_t nbytes)
    void *pyconv_thread_scratch(int slot, size_t nbytes)
    int pyconv_valid_panel(ptrdiff_t nrp)


# An activation as the drivers apply it (pyconv.activations builds it): its code (common.h's
# PYCONV_ACT_*), the part the micro-kernels fuse into their store (relu and relu6 are; 0 for the
# others, which the drivers apply with activate_span right after a kernel wrote a tile or row), and its
# parameters.
cdef struct act_spec:
    int code
    int fused
    float alpha
    float beta

# The most threads one driver call may use (pyconv.threads.MAX_THREADS, which every threads= resolves
# against, is the same number): OpenMP would try to start every thread asked for, and a process that
# cannot create them dies.
cdef enum:
    PYCONV_MAX_THREADS = 1024


cdef inline int check_threads(int threads) except -1:
    if threads < 1 or threads > PYCONV_MAX_THREADS:
        raise ValueError(f"threads must be in 1..{<int>PYCONV_MAX_THREADS}, got {threads}")
    return 0


cdef inline act_spec act_spec_of(object act) except *:
    """``act`` as a driver takes it: an int code, or (code, alpha, beta) for the functions with
    parameters (``pyconv.activations.Activation.kernel_args``)."""
    cdef act_spec a
    if isinstance(act, tuple):
        code, alpha, beta = act
    else:
        code, alpha, beta = act, 0.0, 0.0
    if not PYCONV_ACT_NONE <= code <= PYCONV_ACT_MISH:
        raise ValueError(f"activation code must be in [{PYCONV_ACT_NONE}, {PYCONV_ACT_MISH}], got {code!r}")
    a.code, a.alpha, a.beta = code, alpha, beta
    a.fused = code if code <= PYCONV_ACT_RELU6 else PYCONV_ACT_NONE
    return a


cdef inline void act_rows(const pyconv_ukernels *k, const act_spec *a, float *p, ptrdiff_t rows,
                          ptrdiff_t n, ptrdiff_t ld) noexcept nogil:
    """The activations the store did not fuse, on ``rows`` rows of n floats, ld apart, from p."""
    cdef ptrdiff_t r
    if a.code != a.fused:
        for r in range(rows):
            k.activate_span(p + r * ld, n, a.code, a.alpha, a.beta)
