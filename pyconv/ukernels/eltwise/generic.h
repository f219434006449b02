/*
 * Elementwise and channel-wise loops (the non-convolution operators' inner loops): binary ops
 * (add, subtract, multiply, divide, against a vector or a scalar), per-channel scale and shift, an
 * average pool's sums and division, a global average's float64 sums, every activation in place
 * (vectorised exp, expm1, log1p, sigmoid, tanh and the normal CDF), PReLU, a channel shuffle's
 * interleave and a bilinear resize's rows.  Written once in plain C over contiguous channels; each level's file compiles it with its own
 * flags and the compiler vectorises the loops for that level (ShuffleNet's G = 3 interleave runs about
 * 10x faster with AVX-512 permutes than as SSE2; every activation loop, exp included, is vectorised at
 * each level: check with -fopt-info-vec after a change).  Every activation lets NaN through.
 *
 * Include after defining PYCONV_ELT_FN(name), which gives name its level's suffix.
 */
#include <math.h>

#include "../ukernels.h"

/* The body of a binary op's loop for each op code (common.h), the activation hoisted out of the loop
 * when there is none so that the plain loop vectorises as it is. */
#define PYCONV_BINARY_LOOPS(B)                                                                       \
    switch (op) {                                                                                    \
    case PYCONV_BIN_ADD: PYCONV_BINARY_LOOP(a[i] + (B)) break;                                      \
    case PYCONV_BIN_SUB: PYCONV_BINARY_LOOP(a[i] - (B)) break;                                      \
    case PYCONV_BIN_MUL: PYCONV_BINARY_LOOP(a[i] * (B)) break;                                      \
    case PYCONV_BIN_DIV: PYCONV_BINARY_LOOP(a[i] / (B)) break;                                      \
    case PYCONV_BIN_RSUB: PYCONV_BINARY_LOOP((B) - a[i]) break;                                     \
    default: PYCONV_BINARY_LOOP((B) / a[i]) break;                                                   \
    }
#define PYCONV_BINARY_LOOP(expr)                                                                     \
    if (act == PYCONV_ACT_NONE)                                                                      \
        for (ptrdiff_t i = 0; i < n; i++) o[i] = (expr);                                             \
    else                                                                                             \
        for (ptrdiff_t i = 0; i < n; i++) o[i] = pyconv_activate((expr), act);

/* o = act(a OP b) elementwise; no restrict: o may be a or b (in place). */
void PYCONV_ELT_FN(pyconv_binary)(const float *a, const float *b, float *o, ptrdiff_t n, int op, int act) {
    PYCONV_BINARY_LOOPS(b[i])
}

/* o = act(a OP s) for one scalar s; o may be a. */
void PYCONV_ELT_FN(pyconv_binary_scalar)(const float *a, float s, float *o, ptrdiff_t n, int op, int act) {
    PYCONV_BINARY_LOOPS(s)
}

#undef PYCONV_BINARY_LOOP
#undef PYCONV_BINARY_LOOPS

/* o = act(x * s + b) per channel; o may be x. */
void PYCONV_ELT_FN(pyconv_scale_shift)(const float *x, const float *__restrict__ s, const float *__restrict__ b,
                                       float *o, ptrdiff_t n, int act) {
    for (ptrdiff_t i = 0; i < n; i++) o[i] = pyconv_activate(x[i] * s[i] + b[i], act);
}

/* dst += src (an average pool's window sum, one cell at a time). */
void PYCONV_ELT_FN(pyconv_accumulate)(float *__restrict__ dst, const float *__restrict__ src, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) dst[i] += src[i];
}

/* dst = act(dst / divisor) (an average pool's mean). */
void PYCONV_ELT_FN(pyconv_divide)(float *dst, float divisor, ptrdiff_t n, int act) {
    for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_activate(dst[i] / divisor, act);
}

/* The smooth activations, branch-free so that the compiler vectorises their loops for each level.
 * exp is computed as XNNPACK's sigmoid kernels do: n = round(z / ln 2) by adding a magic number whose
 * low mantissa bits then hold n + 127, 2^n built from those bits, z - n ln 2 in two parts (ln2_hi has
 * trailing zero bits, so n * ln2_hi is exact), and a degree-5 polynomial for e^t on [-ln2/2, ln2/2]
 * (fitted for relative error: 9e-8).  Only z <= 0 is ever exponentiated, so nothing overflows; below
 * the cutoff, where e^z leaves the normal floats, the result is taken as 0 (the polynomial's bits
 * would be garbage there, as for -inf).  NaN reaches the result through the arithmetic: every
 * select tests a comparison that NaN fails.  Selects between computed values are bitwise
 * (pyconv_select): a ?: whose arm does arithmetic becomes a branch under the default
 * -ftrapping-math, and the loop is then not vectorised. */
#define PYCONV_EXP_CUTOFF -0x1.5D589Ep+6f /* -87.33654 = ln(2^-126) */

static inline float pyconv_float_of_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t pyconv_bits_of_float(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* c ? a : b, without a branch. */
static inline float pyconv_select(int c, float a, float b) {
    const uint32_t m = (uint32_t)0 - (uint32_t)(c != 0);
    return pyconv_float_of_bits((pyconv_bits_of_float(a) & m) | (pyconv_bits_of_float(b) & ~m));
}

/* e^z for z <= 0 (0 below the cutoff, NaN for NaN). */
static inline float pyconv_exp_nonpositive(float z) {
    const float magic = 0x1.8000FEp23f; /* 1.5 * 2^23 + 127 */
    float n = z * 0x1.715476p+0f + magic;
    const float s = pyconv_float_of_bits(pyconv_bits_of_float(n) << 23);
    n -= magic;
    float t = n * -0x1.62E400p-1f + z;
    t = n * -0x1.7F7D1Cp-20f + t;
    float p = 0x1.0FA832p-7f;
    p = p * t + 0x1.573A54p-5f;
    p = p * t + 0x1.555A6Ap-3f;
    p = p * t + 0x1.FFFDC6p-2f;
    p = p * t + 0x1.FFFFF6p-1f;
    const float e = (t * s) * p + s; /* s * e^t, with e^t = 1 + t * p */
    return pyconv_select(z < PYCONV_EXP_CUTOFF, 0.0f, e);
}

/* 1 / (1 + e^-x), from e = e^-|x| in (0, 1]: e / (1 + e) for x <= 0, and 1 minus that for x > 0, so
 * that neither side loses digits. */
static inline float pyconv_sigmoid(float x) {
    const float e = pyconv_exp_nonpositive(-fabsf(x));
    const float f = e / (1.0f + e);
    return pyconv_select(x > 0.0f, 1.0f - f, f);
}

/* tanh: an odd polynomial below 0.625 (1 - e^-2|x| would cancel digits there; fitted for relative
 * error, 4e-9), (1 - e) / (1 + e) with e = e^-2|x| above, the sign of x restored. */
static inline float pyconv_tanh(float x) {
    const float a = fabsf(x), u = x * x;
    float p = -0x1.75E1CAp-8f;
    p = p * u + 0x1.52269Ap-6f;
    p = p * u + -0x1.B83C5Ap-5f;
    p = p * u + 0x1.110726p-3f;
    p = p * u + -0x1.555532p-2f;
    const float small = (x * u) * p + x;
    const float e = pyconv_exp_nonpositive(-2.0f * a);
    const float large = copysignf((1.0f - e) / (1.0f + e), x);
    return pyconv_select(a < 0.625f, small, large);
}

/* e^z - 1 for z <= 0, keeping its relative accuracy near 0 where e^z - 1 would cancel: the Taylor
 * series to z^7 below ln2/2 (truncation 2e-8 relative), e^z - 1 at and beyond (result magnitude above
 * 0.29 there, so e^z's 1e-7 stays 1e-7 relative).  -1 for -inf, NaN for NaN. */
static inline float pyconv_expm1_nonpositive(float z) {
    float p = 1.0f / 5040.0f;
    p = p * z + 1.0f / 720.0f;
    p = p * z + 1.0f / 120.0f;
    p = p * z + 1.0f / 24.0f;
    p = p * z + 1.0f / 6.0f;
    p = p * z + 0.5f;
    const float small = (z * z) * p + z;
    return pyconv_select(z > -0.34657359f, small, pyconv_exp_nonpositive(z) - 1.0f);
}

/* log(1 + u) for u in [0, 1], relatively accurate for small u: 2 atanh(w) with w = u / (2 + u) in
 * [0, 1/3], its odd series to w^15 (truncation 2e-9 relative). */
static inline float pyconv_log1p_unit(float u) {
    const float w = u / (2.0f + u), v = w * w;
    float p = 2.0f / 15.0f;
    p = p * v + 2.0f / 13.0f;
    p = p * v + 2.0f / 11.0f;
    p = p * v + 2.0f / 9.0f;
    p = p * v + 2.0f / 7.0f;
    p = p * v + 2.0f / 5.0f;
    p = p * v + 2.0f / 3.0f;
    return (w * v) * p + 2.0f * w;
}

/* The standard normal CDF Phi(x), both tails relatively accurate: erfc(z) for z = |x| / sqrt(2) as
 * t * e^(-z^2 + c(t)), t = 1 / (1 + z / 2), with the Chebyshev fit c of Numerical Recipes' erfcc
 * (fractional error 1.2e-7 for every z >= 0); Phi is erfc(z) / 2 for x <= 0 and 1 minus that above.
 * z^2 = x^2 / 2 is kept exact as h^2 / 2 + r, h being |x| with its low 12 mantissa bits cleared
 * (h^2 fits a float), and e^(-h^2 / 2) and e^(c - r) taken apart: rounding -z^2 + c to one float
 * would cost 6e-8 * z^2 relative (1e-5 in the far lower tail). */
static inline float pyconv_normal_cdf(float x) {
    const float a = fabsf(x);
    const float h = pyconv_float_of_bits(pyconv_bits_of_float(a) & 0xFFFFF000u), l = a - h;
    const float r = h * l + 0.5f * (l * l);
    const float t = 1.0f / (1.0f + a * 0x1.6A09E6p-2f); /* 1 + z / 2, z = |x| sqrt(1/2) */
    float c = 0.17087277f;
    c = c * t + -0.82215223f;
    c = c * t + 1.48851587f;
    c = c * t + -1.13520398f;
    c = c * t + 0.27886807f;
    c = c * t + -0.18628806f;
    c = c * t + 0.09678418f;
    c = c * t + 0.37409196f;
    c = c * t + 1.00002368f;
    c = c * t + -1.26551223f;
    const float half_erfc = (0.5f * t) * pyconv_exp_nonpositive(-0.5f * (h * h)) * pyconv_exp_nonpositive(c - r);
    return pyconv_select(x > 0.0f, 1.0f - half_erfc, half_erfc);
}

/* log(1 + e^x) as max(x, 0) + log1p(e^-|x|): x itself far above 0, e^x far below, no overflow. */
static inline float pyconv_softplus(float x) {
    return pyconv_select(x > 0.0f, x, 0.0f) + pyconv_log1p_unit(pyconv_exp_nonpositive(-fabsf(x)));
}

/* x * tanh(softplus(x)): with e = e^x, tanh(log(1 + e)) = n / (n + 2), n = e (e + 2); for x > 0 the
 * same divided by e^2, in e = e^-x: (1 + 2e) / (1 + 2e + 2e^2).  Both forms in e in (0, 1], no
 * cancellation. */
static inline float pyconv_mish(float x) {
    const float e = pyconv_exp_nonpositive(-fabsf(x));
    const float n = e * (e + 2.0f), d = 1.0f + 2.0f * e;
    const float g = pyconv_select(x > 0.0f, d / (d + 2.0f * e * e), n / (n + 2.0f));
    return x * g;
}

/* x if x > 0 else alpha * (e^x - 1), the exponential taken of min(x, 0). */
static inline float pyconv_elu(float x, float alpha) {
    const float neg = alpha * pyconv_expm1_nonpositive(pyconv_select(x > 0.0f, 0.0f, x));
    return pyconv_select(x > 0.0f, x, neg);
}

/* clip(v, lo, hi), written as comparisons against v so that NaN falls through. */
static inline float pyconv_clip(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* dst = act(dst) in place, for any activation code (common.h); alpha and beta are clip's min and max
 * (-inf, +inf where absent), hard_sigmoid's slope and offset, leaky_relu's and elu's slope, selu's
 * alpha and scale. */
void PYCONV_ELT_FN(pyconv_activate_span)(float *dst, ptrdiff_t n, int act, float alpha, float beta) {
    switch (act) {
    case PYCONV_ACT_RELU:
    case PYCONV_ACT_RELU6:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_activate(dst[i], act);
        break;
    case PYCONV_ACT_CLIP:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_clip(dst[i], alpha, beta);
        break;
    case PYCONV_ACT_SIGMOID:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_sigmoid(dst[i]);
        break;
    case PYCONV_ACT_HARD_SIGMOID:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_clip(dst[i] * alpha + beta, 0.0f, 1.0f);
        break;
    case PYCONV_ACT_HARD_SWISH:
        /* x * (relu6(x + 3) / 6): scaling the gate first keeps x * 6 from overflowing near FLT_MAX
         * (PyTorch's (x * relu6(x + 3)) / 6 gives inf there); -inf * 0 is NaN in both, and a NaN x
         * needs no help from the gate.  The gate is multiplied by 1/6 (one rounding more than a
         * division, as ONNX Runtime's alpha = 1/6): the division bounded the loop on Zen 4 (384-float
         * spans at the avx512 level: 0.46 -> 0.38 ns a float).  Bitwise selects: with
         * ?: gcc 12 branched here (14 ms per million floats on AVX2 instead of 0.5). */
        for (ptrdiff_t i = 0; i < n; i++) {
            float gate = dst[i] + 3.0f;
            gate = pyconv_select(gate < 0.0f, 0.0f, gate);
            gate = pyconv_select(gate > 6.0f, 6.0f, gate);
            dst[i] = dst[i] * (gate * (1.0f / 6.0f));
        }
        break;
    case PYCONV_ACT_SILU:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = dst[i] * pyconv_sigmoid(dst[i]);
        break;
    case PYCONV_ACT_LEAKY_RELU:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_select(dst[i] < 0.0f, dst[i] * alpha, dst[i]);
        break;
    case PYCONV_ACT_TANH:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_tanh(dst[i]);
        break;
    case PYCONV_ACT_GELU:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = dst[i] * pyconv_normal_cdf(dst[i]);
        break;
    case PYCONV_ACT_GELU_TANH:
        /* 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): no cancellation for
         * negative x. */
        for (ptrdiff_t i = 0; i < n; i++) {
            const float x = dst[i];
            dst[i] = x * pyconv_sigmoid((2.0f * 0.7978845608f) * (x + 0.044715f * (x * x * x)));
        }
        break;
    case PYCONV_ACT_ELU:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_elu(dst[i], alpha);
        break;
    case PYCONV_ACT_SELU:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = beta * pyconv_elu(dst[i], alpha);
        break;
    case PYCONV_ACT_SOFTPLUS:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_softplus(dst[i]);
        break;
    case PYCONV_ACT_MISH:
        for (ptrdiff_t i = 0; i < n; i++) dst[i] = pyconv_mish(dst[i]);
        break;
    default:
        break;
    }
}

/* o = x where x >= 0, else alpha * x, with alpha per element (a PReLU's slopes of one row); o may be x.
 * NaN passes through. */
void PYCONV_ELT_FN(pyconv_prelu)(const float *x, const float *__restrict__ alpha, float *o, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) o[i] = pyconv_select(x[i] < 0.0f, x[i] * alpha[i], x[i]);
}

/* The sums of mean_pixels for a channel count NC known at compile time: the accumulators then stay in
 * registers (with a run-time count they went through memory, a store-to-load wait per pixel: 56x56x16
 * 11.6 us, 112x112x96 126 us); the same additions in the same order, so the same bits. */
#define PYCONV_MEAN_PIXELS_FIXED(NC)                                                                 \
    do {                                                                                             \
        double acc[NC];                                                                              \
        for (ptrdiff_t c = 0; c < NC; c++) acc[c] = 0.0;                                             \
        for (ptrdiff_t p = 0; p < HW; p++) {                                                         \
            const float *src = img + p * C;                                                          \
            for (ptrdiff_t c = 0; c < NC; c++) acc[c] += src[c];                                     \
        }                                                                                            \
        for (ptrdiff_t c = 0; c < NC; c++) dst[c] = (float)(acc[c] / (double)HW);                    \
    } while (0)

/* dst[c] = mean over HW pixels of img[p * C + c] for c < n <= 64, summed in float64: a 112x112 map is
 * 12544 terms, enough to lose digits in float32. */
void PYCONV_ELT_FN(pyconv_mean_pixels)(const float *img, float *__restrict__ dst, ptrdiff_t HW, ptrdiff_t C,
                                       ptrdiff_t n) {
    if (n == 64) {
        PYCONV_MEAN_PIXELS_FIXED(64);
    } else if (n == 32) {
        PYCONV_MEAN_PIXELS_FIXED(32);
    } else if (n == 16) {
        PYCONV_MEAN_PIXELS_FIXED(16);
    } else if (n == 8) {
        PYCONV_MEAN_PIXELS_FIXED(8);
    } else {
        double acc[64];
        for (ptrdiff_t c = 0; c < n; c++) acc[c] = 0.0;
        for (ptrdiff_t p = 0; p < HW; p++) {
            const float *src = img + p * C;
            for (ptrdiff_t c = 0; c < n; c++) acc[c] += src[c];
        }
        for (ptrdiff_t c = 0; c < n; c++) dst[c] = (float)(acc[c] / (double)HW);
    }
}
#undef PYCONV_MEAN_PIXELS_FIXED

/* dst[j * groups + i] = src[i * P + j]: ShuffleNet's group counts get loops with the count spelled
 * out, which the compiler turns into vector permutes over the G input runs. */
void PYCONV_ELT_FN(pyconv_shuffle_row)(const float *__restrict__ src, float *__restrict__ dst, ptrdiff_t groups,
                                       ptrdiff_t P) {
    if (groups == 2) {
        for (ptrdiff_t j = 0; j < P; j++) {
            dst[2 * j] = src[j];
            dst[2 * j + 1] = src[P + j];
        }
    } else if (groups == 3) {
        for (ptrdiff_t j = 0; j < P; j++) {
            dst[3 * j] = src[j];
            dst[3 * j + 1] = src[P + j];
            dst[3 * j + 2] = src[2 * P + j];
        }
    } else if (groups == 4) {
        for (ptrdiff_t j = 0; j < P; j++) {
            dst[4 * j] = src[j];
            dst[4 * j + 1] = src[P + j];
            dst[4 * j + 2] = src[2 * P + j];
            dst[4 * j + 3] = src[3 * P + j];
        }
    } else if (groups == 8) {
        for (ptrdiff_t j = 0; j < P; j++)
            for (ptrdiff_t i = 0; i < 8; i++) dst[8 * j + i] = src[i * P + j];
    } else {
        for (ptrdiff_t j = 0; j < P; j++)
            for (ptrdiff_t i = 0; i < groups; i++) dst[j * groups + i] = src[i * P + j];
    }
}

/* One output row of a bilinear resize, NHWC: for j < OW and c < C,
 *   o[j * C + c] = wy0 * (wx0[j] * r0[x0[j] + c] + wx1[j] * r0[x1[j] + c])
 *                + wy1 * (wx0[j] * r1[x0[j] + c] + wx1[j] * r1[x1[j] + c])
 * r0, r1: the two input rows read; x0, x1: offsets of the two input columns read, in floats. */
void PYCONV_ELT_FN(pyconv_bilinear_row)(const float *r0, const float *r1, float wy0, float wy1,
                                        const ptrdiff_t *x0, const ptrdiff_t *x1, const float *wx0,
                                        const float *wx1, float *__restrict__ o, ptrdiff_t OW, ptrdiff_t C) {
    for (ptrdiff_t j = 0; j < OW; j++) {
        const float *__restrict__ a = r0 + x0[j];
        const float *__restrict__ b = r0 + x1[j];
        const float *__restrict__ c0 = r1 + x0[j];
        const float *__restrict__ d = r1 + x1[j];
        const float u0 = wx0[j], u1 = wx1[j];
        float *__restrict__ dst = o + j * C;
        for (ptrdiff_t c = 0; c < C; c++) dst[c] = wy0 * (u0 * a[c] + u1 * b[c]) + wy1 * (u0 * c0[c] + u1 * d[c]);
    }
}
