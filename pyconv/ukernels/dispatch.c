/*
 * Run-time dispatch: which instruction-set levels this build holds, which of them the CPU can run, and
 * the table of micro-kernels of each.  Compiled with baseline flags only: nothing here may execute an
 * instruction the CPU lacks.  The levels a build holds follow the compiler's target (setup.py compiles
 * each level's files only where their flags apply): x86-64 avx512, avx2, scalar; aarch64 neon, scalar.
 */
#include <string.h>

#include "ukernels.h"

#define PYCONV_TABLE(isa, gconv_supported, gconv_row)                                                \
    static const pyconv_ukernels pyconv_ukernels__##isa = {                                          \
        #isa, pyconv_igemm__##isa, pyconv_igemm_tile_rows__##isa, pyconv_nchwconv__##isa,            \
        pyconv_dwconv_row__##isa, gconv_supported, gconv_row, pyconv_wino_input__##isa,              \
        pyconv_wino_output__##isa, pyconv_maxpool_window__##isa, pyconv_transpose_tile__##isa,       \
        pyconv_binary__##isa, pyconv_binary_scalar__##isa, pyconv_scale_shift__##isa,                \
        pyconv_accumulate__##isa, pyconv_divide__##isa, pyconv_activate_span__##isa,                 \
        pyconv_prelu__##isa, pyconv_mean_pixels__##isa, pyconv_shuffle_row__##isa,                   \
        pyconv_bilinear_row__##isa, pyconv_resample_horizontal__##isa,                               \
        pyconv_resample_vertical__##isa,                                                             \
    };

/* Levels without a narrow-group row: every group shape takes the GEMM path. */
static int pyconv_gconv_none(ptrdiff_t cg, ptrdiff_t og) {
    (void)cg;
    (void)og;
    return 0;
}

PYCONV_TABLE(scalar, pyconv_gconv_none, NULL)
#if defined(PYCONV_HAVE_AVX2_GCONV)
PYCONV_TABLE(avx2, pyconv_gconv_supported__avx2, pyconv_gconv_row__avx2)
#elif defined(PYCONV_HAVE_AVX2)
PYCONV_TABLE(avx2, pyconv_gconv_none, NULL)
#endif
#if defined(PYCONV_HAVE_AVX512_GCONV)
PYCONV_TABLE(avx512, pyconv_gconv_supported__avx512, pyconv_gconv_row__avx512)
#elif defined(PYCONV_HAVE_AVX512)
PYCONV_TABLE(avx512, pyconv_gconv_none, NULL)
#endif
#if defined(PYCONV_HAVE_NEON)
PYCONV_TABLE(neon, pyconv_gconv_none, NULL)
#endif

static const pyconv_ukernels *const pyconv_levels[] = {
#if defined(PYCONV_HAVE_AVX512)
    &pyconv_ukernels__avx512,
#endif
#if defined(PYCONV_HAVE_AVX2)
    &pyconv_ukernels__avx2,
#endif
#if defined(PYCONV_HAVE_NEON)
    &pyconv_ukernels__neon,
#endif
    &pyconv_ukernels__scalar,
};

const char *pyconv_isa_level(size_t i) {
    return i < sizeof(pyconv_levels) / sizeof(pyconv_levels[0]) ? pyconv_levels[i]->name : NULL;
}

int pyconv_isa_supported(const char *name) {
    if (strcmp(name, "scalar") == 0) return 1;
#if defined(__x86_64__) || defined(__i386__)
    /* libgcc's checks include the OS's support for the registers' state (XCR0), not only CPUID. */
    __builtin_cpu_init();
    if (strcmp(name, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (strcmp(name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if defined(__aarch64__)
    /* Advanced SIMD is part of every ARMv8-A profile that runs Linux. */
    if (strcmp(name, "neon") == 0) return 1;
#endif
    return 0;
}

const pyconv_ukernels *pyconv_ukernels_for(const char *name) {
    for (size_t i = 0; i < sizeof(pyconv_levels) / sizeof(pyconv_levels[0]); i++)
        if (strcmp(pyconv_levels[i]->name, name) == 0) return pyconv_levels[i];
    return NULL;
}
