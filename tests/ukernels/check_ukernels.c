/*
 * Tests every micro-kernel family of every instruction-set level this build holds and this CPU runs
 * against naive references written here (in double, independently of any level's code), with every
 * buffer a kernel touches placed against a PROT_NONE guard page (at its end or at its start, in turn)
 * and canaries in every gap of the outputs, so that out-of-bounds reads and writes fail the test
 * instead of passing by luck.  A fault inside a kernel is caught and reported as that case's failure.
 *
 * Build: every level's sources with that level's flags, dispatch.c with the PYCONV_HAVE_* macros, and
 * this file with baseline flags (tests/test_ukernels.py and .ci/aarch64 do it from setup.py's own
 * definitions).  Usage: check_ukernels [level ...] (default: every level built and supported).
 * Prints one line per level and family, then "N passed, M failed"; exits 1 on any failure.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ukernels.h"

#define TOL 1e-4
#define PAD 16                 /* canary floats on each side of a buffer that is not at a guard page */
#define CANARY 0x7fbadbadu     /* a NaN bit pattern no kernel computes */
#define MAX_SHOWN 4            /* failures described per level and family */

/* ------------------------------------------------------------------------------------------ tally */

static int n_passed, n_failed;
static int fam_cases, fam_failed;
static char case_desc[320];

#define DESCRIBE(...) snprintf(case_desc, sizeof(case_desc), __VA_ARGS__)

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int case_failed;
static void fail(const char *fmt, ...) {
    if (!case_failed && fam_failed < MAX_SHOWN) {
        va_list ap;
        va_start(ap, fmt);
        printf("    FAIL %s: ", case_desc);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
    }
    case_failed = 1;
}

static void case_begin(void) { case_failed = 0; }
static void case_end(void) {
    fam_cases++;
    if (case_failed) fam_failed++;
}

/* --------------------------------------------------------------------------------------- random */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}
static float uni(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() >> 8) / 16777216.0f; }
static void fill(float *p, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) p[i] = uni(lo, hi);
}

/* ------------------------------------------------------------------------- guarded buffers (slots) */

static float canary_f(void) {
    float f;
    const uint32_t u = CANARY;
    memcpy(&f, &u, sizeof f);
    return f;
}
static int is_canary(const float *p) { return memcmp(p, &(uint32_t){CANARY}, sizeof(float)) == 0; }

/* A data region with a PROT_NONE page on each side; each case takes one buffer from it, alternately
 * against the trailing guard (catches reads and writes past the end) and the leading one (before the
 * start), with PAD canary floats on the open side. */
typedef struct {
    char *lo;
    size_t bytes;
    float *p;
    size_t n;
} slot;

static size_t page;
static int at_end;   /* where this case's buffers sit: flipped per case */

static void slot_init(slot *s, size_t floats) {
    s->bytes = ((floats + 2 * PAD) * sizeof(float) + 64 + page - 1) / page * page;
    char *m = mmap(NULL, s->bytes + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m, page, PROT_NONE) || mprotect(m + page + s->bytes, page, PROT_NONE)) {
        perror("mmap");
        exit(2);
    }
    s->lo = m + page;
    s->p = NULL;
    s->n = 0;
}

/* n floats aligned to `align` bytes; the canaries on the open side are written here. */
static float *slot_take(slot *s, size_t n, size_t align) {
    if ((n + 2 * PAD) * sizeof(float) + align > s->bytes) {
        fprintf(stderr, "slot too small (%zu floats)\n", n);
        exit(2);
    }
    float *p;
    if (at_end) {
        uintptr_t e = (uintptr_t)(s->lo + s->bytes) - n * sizeof(float);
        p = (float *)(e / align * align);
    } else {
        p = (float *)s->lo;
    }
    s->p = p;
    s->n = n;
    const float cf = canary_f();
    float *end = (float *)(s->lo + s->bytes);
    for (float *q = p - PAD; q < p; q++)
        if ((char *)q >= s->lo) *q = cf;
    for (float *q = p + n; q < p + n + PAD && q < end; q++) *q = cf;
    return p;
}

/* Whether the canaries around the slot's buffer are intact (for output buffers). */
static int slot_intact(const slot *s) {
    const float *end = (const float *)(s->lo + s->bytes);
    for (const float *q = s->p - PAD; q < s->p; q++)
        if ((const char *)q >= s->lo && !is_canary(q)) return 0;
    for (const float *q = s->p + s->n; q < s->p + s->n + PAD && q < end; q++)
        if (!is_canary(q)) return 0;
    return 1;
}

static void fill_canary(float *p, size_t n) {
    const float cf = canary_f();
    for (size_t i = 0; i < n; i++) p[i] = cf;
}

/* ------------------------------------------------------------------------------- fault recovery */

static sigjmp_buf fault_env;
static volatile sig_atomic_t fault_armed, fault_sig;

static void on_fault(int sig) {
    if (!fault_armed) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    fault_armed = 0;
    fault_sig = sig;
    siglongjmp(fault_env, 1);
}

/* Runs one kernel call; a SIGSEGV/SIGBUS inside it (a guard page hit) fails the case. */
#define GUARDED(call)                                                                               \
    do {                                                                                            \
        fault_sig = 0;                                                                              \
        if (sigsetjmp(fault_env, 1) == 0) {                                                         \
            fault_armed = 1;                                                                        \
            call;                                                                                   \
            fault_armed = 0;                                                                        \
        }                                                                                           \
        if (fault_sig) fail("signal %d (out-of-bounds access)", (int)fault_sig);                    \
    } while (0)

/* ------------------------------------------------------------------------------------ references */

static double act_ref(double v, int act) {
    /* Comparisons that let NaN through, as every level must. */
    if (act >= 1 && v < 0) v = 0;
    if (act == 2 && v > 6) v = 6;
    return v;
}

/* float32 result against a double reference: NaN where the reference is NaN, else 1e-4 relative
 * (absolute below 1, where sums of a few hundred terms lose that much to cancellation). */
static int close_to(float got, double ref) {
    if (isnan(ref)) return isnan(got);
    if (isnan(got)) return 0;
    return fabs((double)got - ref) <= TOL * fmax(1.0, fabs(ref));
}

static const int acts[3] = {0, 1, 2};

/* The activations activate_span applies beyond the fused ones (codes in common.h), with parameters. */
static const struct {
    int code;
    float alpha, beta;
} span_acts[] = {{PYCONV_ACT_CLIP, -0.5f, 0.75f}, {PYCONV_ACT_SIGMOID, 0, 0}, {PYCONV_ACT_HARD_SIGMOID, 0.2f, 0.5f},
                 {PYCONV_ACT_HARD_SWISH, 0, 0}, {PYCONV_ACT_SILU, 0, 0}, {PYCONV_ACT_LEAKY_RELU, 0.1f, 0},
                 {PYCONV_ACT_TANH, 0, 0}, {PYCONV_ACT_GELU, 0, 0}, {PYCONV_ACT_GELU_TANH, 0, 0},
                 {PYCONV_ACT_ELU, 0.7f, 0}, {PYCONV_ACT_SELU, 1.6732632f, 1.0507010f}, {PYCONV_ACT_SOFTPLUS, 0, 0},
                 {PYCONV_ACT_MISH, 0, 0}};

static double span_act_ref(double v, int code, double alpha, double beta) {
    /* fmin and fmax drop a NaN operand: adding 0 * v brings it back. */
    switch (code) {
    case PYCONV_ACT_CLIP: return v < alpha ? alpha : v > beta ? beta : v;
    case PYCONV_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case PYCONV_ACT_HARD_SIGMOID: return fmin(fmax(alpha * v + beta, 0.0), 1.0) + 0.0 * v;
    case PYCONV_ACT_HARD_SWISH: return v * (fmin(fmax(v + 3.0, 0.0), 6.0) + 0.0 * v) / 6.0;
    case PYCONV_ACT_SILU: return v / (1.0 + exp(-v));
    case PYCONV_ACT_LEAKY_RELU: return v < 0 ? alpha * v : v;
    case PYCONV_ACT_GELU: return isinf(v) && v > 0 ? NAN : v * 0.5 * erfc(-v / sqrt(2.0)); /* NaN at +inf: PyTorch's */
    case PYCONV_ACT_GELU_TANH: return v / (1.0 + exp(-2.0 * sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    case PYCONV_ACT_ELU: return v > 0 ? v : alpha * expm1(v);
    case PYCONV_ACT_SELU: return beta * (v > 0 ? v : alpha * expm1(v));
    case PYCONV_ACT_SOFTPLUS: return fmax(v, 0.0) + log1p(exp(-fabs(v)));
    case PYCONV_ACT_MISH: return v * tanh(fmax(v, 0.0) + log1p(exp(-fabs(v))));
    default: return tanh(v);
    }
}

/* ------------------------------------------------------------------------------------------ igemm */

enum { MR = PYCONV_GEMM_MR, NRMAX = PYCONV_GEMM_NR_MAX, KSMAX = 3, KCMAX = 300 };
static const size_t kcs[] = {1, 2, 3, 5, 8, 17, 64, 300};
#define NKC (sizeof(kcs) / sizeof(kcs[0]))

typedef struct {
    slot a[KSMAX * MR], b, c, bias, res;
} igemm_slots;

/* One igemm case; flags: bit 0 accumulate, 1 bias, 2 res; nan: 0 none, 1 in A, 2 in B, 3 in bias. */
static void igemm_case(const pyconv_ukernels *uk, igemm_slots *S, size_t nrp, size_t mr, size_t nr, size_t ks,
                       size_t kc, int flags, int act, size_t ldc, int nan, int use_pf) {
    const int accumulate = flags & 1, has_bias = flags >> 1 & 1, has_res = flags >> 2 & 1;
    DESCRIBE("igemm nrp=%zu mr=%zu nr=%zu ks=%zu kc=%zu acc=%d bias=%d res=%d act=%d ldc=%zu nan=%d at_end=%d",
             nrp, mr, nr, ks, kc, accumulate, has_bias, has_res, act, ldc, nan, at_end);
    case_begin();
    const float *a[KSMAX * MR];
    for (size_t s = 0; s < ks; s++)
        for (size_t i = 0; i < MR; i++) {
            float *row = slot_take(&S->a[s * MR + i], kc, sizeof(float));
            /* Rows past mr: readable, but NaN, so that a row that leaks into another shows. */
            if (i < mr)
                fill(row, kc, -1, 1);
            else
                for (size_t k = 0; k < kc; k++) row[k] = NAN;
            a[s * MR + i] = row;
        }
    float *b = slot_take(&S->b, ks * kc * nrp, PYCONV_ALIGN);
    for (size_t r = 0; r < ks * kc; r++)
        for (size_t j = 0; j < nrp; j++) b[r * nrp + j] = j < nr ? uni(-1, 1) : 0.0f;
    const size_t cn = (mr - 1) * ldc + nr;
    float *c = slot_take(&S->c, cn, sizeof(float));
    fill_canary(c, cn);
    static float c0[MR * (2 * NRMAX + 8)];
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j++) {
            /* Without accumulate, C's old contents must not be read: canaries (NaN) would show. */
            if (accumulate) c[i * ldc + j] = uni(-2, 2);
            c0[i * ldc + j] = c[i * ldc + j];
        }
    float *bias = NULL, *res = NULL;
    if (has_bias) fill(bias = slot_take(&S->bias, nr, sizeof(float)), nr, -1, 1);
    if (has_res) {
        res = slot_take(&S->res, cn, sizeof(float));
        for (size_t q = 0; q < cn; q++) res[q] = q % ldc < nr ? uni(-1, 1) : NAN;
    }
    if (nan == 1) ((float *)a[(rnd() % ks) * MR + rnd() % mr])[rnd() % kc] = NAN;
    if (nan == 2) b[(rnd() % (ks * kc)) * nrp + rnd() % nr] = NAN;
    if (nan == 3 && bias) bias[rnd() % nr] = NAN;

    GUARDED(uk->igemm(nrp, mr, nr, ks, kc, a, b, c, ldc, bias, res, accumulate, act, use_pf ? b : NULL));

    for (size_t i = 0; i < mr && !case_failed; i++)
        for (size_t j = 0; j < ldc && (i + 1 < mr || j < nr); j++) {
            const float got = c[i * ldc + j];
            if (j >= nr) {
                if (!is_canary(&c[i * ldc + j])) {
                    fail("wrote C[%zu][%zu], outside the tile", i, j);
                    break;
                }
                continue;
            }
            double v = 0;
            for (size_t s = 0; s < ks; s++)
                for (size_t k = 0; k < kc; k++) v += (double)a[s * MR + i][k] * b[(s * kc + k) * nrp + j];
            v += accumulate ? c0[i * ldc + j] : (bias ? bias[j] : 0.0);
            if (!accumulate && res) v += res[i * ldc + j];
            v = act_ref(v, act);
            if (!close_to(got, v)) {
                fail("C[%zu][%zu] = %.8g, expected %.8g", i, j, got, v);
                break;
            }
        }
    if (!slot_intact(&S->c)) fail("wrote outside C (canaries around the buffer)");
    case_end();
    at_end ^= 1;
}

static void check_igemm(const pyconv_ukernels *uk) {
    static igemm_slots S;
    static int ready;
    if (!ready) {
        for (int i = 0; i < KSMAX * MR; i++) slot_init(&S.a[i], KCMAX);
        slot_init(&S.b, KSMAX * KCMAX * NRMAX);
        slot_init(&S.c, MR * (2 * NRMAX + 8));
        slot_init(&S.bias, NRMAX);
        slot_init(&S.res, MR * (2 * NRMAX + 8));
        ready = 1;
    }
    static const size_t nrps[] = {PYCONV_GEMM_NR_NARROW, PYCONV_GEMM_NR};
    unsigned n = 0;
    /* Every (mr, nr) with every kc; ks, the flags, the activation, ldc and NaNs rotate through all
     * their values so that each meets every kc and every tile shape. */
    for (int pi = 0; pi < 2; pi++)
        for (size_t mr = 1; mr <= MR; mr++)
            for (size_t nr = 1; nr <= nrps[pi]; nr++)
                for (size_t ki = 0; ki < NKC; ki++, n++) {
                    const size_t ldcs[4] = {nr, nr + 1, nr + 5, 2 * nrps[pi] + 3};
                    igemm_case(uk, &S, nrps[pi], mr, nr, 1 + n % 3, kcs[ki], (int)(n / 3 % 8),
                               acts[n / 24 % 3], ldcs[n / 7 % 4], (int)(n / 5 % 4), (int)(n / 11 % 2));
                }
    /* Every combination of ks, kc, flags and activation at the tile shapes' corners. */
    static const size_t mrs[] = {1, 5, 12};
    for (int pi = 0; pi < 2; pi++)
        for (size_t mi = 0; mi < 3; mi++)
            for (size_t ks = 1; ks <= KSMAX; ks++)
                for (size_t ki = 0; ki < NKC; ki++)
                    for (int flags = 0; flags < 8; flags++)
                        for (int ai = 0; ai < 3; ai++, n++) {
                            const size_t nr = n % 2 ? nrps[pi] : nrps[pi] - 3;
                            igemm_case(uk, &S, nrps[pi], mrs[mi], nr, ks, kcs[ki], flags, acts[ai],
                                       nr + n % 3, (int)(n % 4), (int)(n % 2));
                        }
    case_begin();
    DESCRIBE("igemm_tile_rows");
    for (ptrdiff_t mr = 1; mr <= MR; mr++) {
        const ptrdiff_t r = uk->igemm_tile_rows(mr);
        if (r < mr || r > MR) fail("igemm_tile_rows(%td) = %td, outside [mr, %d]", mr, r, MR);
    }
    case_end();
}

/* --------------------------------------------------------------------------------------- nchwconv */

static void check_nchwconv(const pyconv_ukernels *uk) {
    enum { KMAX = 27, SMAX = 4, OFFMAX = 5 };
    static slot rows[KMAX], sb, sc, sbias;
    static int ready;
    if (!ready) {
        for (int k = 0; k < KMAX; k++) slot_init(&rows[k], OFFMAX + (PYCONV_ROWS_MR - 1) * SMAX + 1);
        slot_init(&sb, KMAX * NRMAX);
        slot_init(&sc, PYCONV_ROWS_MR * (NRMAX + 8));
        slot_init(&sbias, NRMAX);
        ready = 1;
    }
    static const size_t Ks[] = {1, 2, 3, 9, 27};
    static const ptrdiff_t offs[] = {0, 1, OFFMAX};
    static const size_t nrps[] = {PYCONV_GEMM_NR_NARROW, PYCONV_GEMM_NR};
    unsigned n = 0;
    for (int pi = 0; pi < 2; pi++)
        for (size_t mr = 1; mr <= PYCONV_ROWS_MR; mr++)
            for (size_t nr = 1; nr <= nrps[pi]; nr++)
                for (ptrdiff_t S = 1; S <= SMAX; S++, n++) {
                    const size_t nrp = nrps[pi], K = Ks[n % 5], ldc = nr + (n / 5 % 2) * 7;
                    const ptrdiff_t off = offs[n / 3 % 3];
                    const int act = acts[n / 2 % 3], has_bias = n / 7 % 2, nan = n % 9 == 0;
                    DESCRIBE("nchwconv nrp=%zu mr=%zu nr=%zu S=%td K=%zu off=%td ldc=%zu bias=%d act=%d nan=%d "
                             "at_end=%d", nrp, mr, nr, S, K, off, ldc, has_bias, act, nan, at_end);
                    case_begin();
                    /* The whole 12-pixel tile is read (common.h): each row holds off + 11 S + 1 floats;
                     * the pixels past mr are NaN, so that one leaking into a stored pixel shows. */
                    const size_t len = (size_t)(off + (PYCONV_ROWS_MR - 1) * S + 1);
                    const float *a[KMAX];
                    for (size_t k = 0; k < K; k++) {
                        float *r = slot_take(&rows[k], len, sizeof(float));
                        fill(r, len, -1, 1);
                        for (size_t i = mr; i < PYCONV_ROWS_MR; i++) r[off + (ptrdiff_t)i * S] = NAN;
                        a[k] = r;
                    }
                    if (nan) ((float *)a[rnd() % K])[off + (ptrdiff_t)(rnd() % mr) * S] = NAN;
                    float *b = slot_take(&sb, K * nrp, PYCONV_ALIGN);
                    for (size_t k = 0; k < K; k++)
                        for (size_t j = 0; j < nrp; j++) b[k * nrp + j] = j < nr ? uni(-1, 1) : 0.0f;
                    const size_t cn = (mr - 1) * ldc + nr;
                    float *c = slot_take(&sc, cn, sizeof(float));
                    fill_canary(c, cn);
                    float *bias = has_bias ? slot_take(&sbias, nr, sizeof(float)) : NULL;
                    if (bias) fill(bias, nr, -1, 1);
                    GUARDED(uk->nchwconv(S, mr, nr, nrp, K, a, off, b, c, ldc, bias, act));
                    for (size_t i = 0; i < mr && !case_failed; i++)
                        for (size_t j = 0; j < ldc && (i + 1 < mr || j < nr); j++) {
                            if (j >= nr) {
                                if (!is_canary(&c[i * ldc + j])) fail("wrote C[%zu][%zu], outside the tile", i, j);
                                continue;
                            }
                            double v = bias ? bias[j] : 0.0;
                            for (size_t k = 0; k < K; k++) v += (double)a[k][off + (ptrdiff_t)i * S] * b[k * nrp + j];
                            v = act_ref(v, act);
                            if (!close_to(c[i * ldc + j], v)) {
                                fail("C[%zu][%zu] = %.8g, expected %.8g", i, j, c[i * ldc + j], v);
                                break;
                            }
                        }
                    if (!slot_intact(&sc)) fail("wrote outside C (canaries around the buffer)");
                    case_end();
                    at_end ^= 1;
                }
}

/* ------------------------------------------------------------------------------------ dwconv_row */

static void check_dwconv(const pyconv_ukernels *uk) {
    enum { HMAX = 7, WMAX = 21, CMAX = 64, KMAX = 5 };
    static slot sx, sw, sb, sy;
    static int ready;
    if (!ready) {
        slot_init(&sx, HMAX * WMAX * CMAX);
        slot_init(&sw, KMAX * KMAX * CMAX);
        slot_init(&sb, CMAX);
        slot_init(&sy, WMAX * CMAX);
        ready = 1;
    }
    static const ptrdiff_t Cs[] = {1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64};
    static const ptrdiff_t kshapes[][2] = {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {1, 3}, {3, 5}};
    static const ptrdiff_t Ws[] = {1, 2, 3, 4, 5, 7, 9, 12, 16, 21};
    static const ptrdiff_t Hs[] = {1, 2, 3, 5, 7};
    unsigned n = 0;
    for (size_t ci = 0; ci < sizeof(Cs) / sizeof(Cs[0]); ci++)
        for (size_t ki = 0; ki < sizeof(kshapes) / sizeof(kshapes[0]); ki++)
            for (ptrdiff_t st = 1; st <= 3; st++)
                for (ptrdiff_t dil = 1; dil <= 2; dil++) {
                    pyconv_dw_geom g;
                    g.C = Cs[ci];
                    g.KH = kshapes[ki][0];
                    g.KW = kshapes[ki][1];
                    g.SW = st;
                    g.SH = n % 5 == 0 ? 1 + (st % 3) : st;
                    g.DW = dil;
                    g.DH = n % 3 == 0 ? 3 - dil : dil;
                    g.W = Ws[n % 10];
                    g.H = Hs[n % 5];
                    const ptrdiff_t spw = (g.KW - 1) * g.DW + 1, sph = (g.KH - 1) * g.DH + 1;
                    g.PL = (ptrdiff_t[]){0, spw / 2, spw - 1}[n % 3];
                    g.PT = (ptrdiff_t[]){0, sph / 2, sph - 1}[n / 3 % 3];
                    ptrdiff_t PR = (ptrdiff_t[]){0, spw - 1 - g.PL, spw - 1}[n / 2 % 3];
                    ptrdiff_t PB = (ptrdiff_t[]){0, sph - 1 - g.PT, sph - 1}[n / 4 % 3];
                    if (g.W + g.PL + PR < spw) PR = spw - g.W - g.PL;
                    if (g.H + g.PT + PB < sph) PB = sph - g.H - g.PT;
                    if (PR >= spw || PB >= sph) { n++; continue; }   /* image narrower than a window */
                    g.OW = (g.W + g.PL + PR - spw) / g.SW + 1;
                    const ptrdiff_t OH = (g.H + g.PT + PB - sph) / g.SH + 1;
                    const ptrdiff_t C = g.C;
                    for (ptrdiff_t oh = 0; oh < OH; oh++)
                        for (int rep = 0; rep < 2; rep++, n++) {
                            g.in_act = acts[n % 3];
                            g.prefetch = n / 3 % 2;
                            const int act = acts[n / 2 % 3], has_bias = n % 4 != 1;
                            ptrdiff_t ob = 0, oe = g.OW, cb = 0, ce = C;
                            switch (n / 5 % 4) {
                            case 1: ob = g.OW > 1; break;
                            case 2: ob = g.OW / 2; oe = ob + 1; break;
                            case 3: oe = g.OW - (g.OW > 2); break;
                            }
                            switch (n / 7 % 4) {
                            case 1: cb = C > 32 ? 32 : C / 2; break;
                            case 2: ce = C > 32 ? 32 : C - C / 3; break;
                            case 3: cb = C > 2; ce = C - (C > 3); break;
                            }
                            DESCRIBE("dwconv_row H=%td W=%td C=%td K=%tdx%td S=%td,%td D=%td,%td P=%td,%td OW=%td oh=%td "
                                     "ow=[%td,%td) c=[%td,%td) in_act=%d act=%d bias=%d prefetch=%d at_end=%d",
                                     g.H, g.W, C, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.PT, g.PL, g.OW, oh, ob, oe, cb,
                                     ce, g.in_act, act, has_bias, g.prefetch, at_end);
                            case_begin();
                            float *x = slot_take(&sx, (size_t)(g.H * g.W * C), sizeof(float));
                            fill(x, (size_t)(g.H * g.W * C), -8, 8);
                            if (n % 7 == 3) x[rnd() % (g.H * g.W * C)] = NAN;
                            float *w = slot_take(&sw, (size_t)(g.KH * g.KW * C), sizeof(float));
                            fill(w, (size_t)(g.KH * g.KW * C), -1, 1);
                            float *bias = has_bias ? slot_take(&sb, (size_t)C, sizeof(float)) : NULL;
                            if (bias) fill(bias, (size_t)C, -1, 1);
                            const size_t yn = (size_t)((oe - ob) * C);
                            float *y = slot_take(&sy, yn, sizeof(float));
                            fill_canary(y, yn);
                            GUARDED(uk->dwconv_row(&g, x, w, bias, y, oh, ob, oe, cb, ce, act));
                            for (ptrdiff_t ow = ob; ow < oe && !case_failed; ow++)
                                for (ptrdiff_t c = 0; c < C; c++) {
                                    const float got = y[(ow - ob) * C + c];
                                    if (c < cb || c >= ce) {
                                        if (!is_canary(&y[(ow - ob) * C + c])) {
                                            fail("wrote column %td channel %td, outside the range", ow, c);
                                            break;
                                        }
                                        continue;
                                    }
                                    double v = bias ? bias[c] : 0.0;
                                    for (ptrdiff_t kh = 0; kh < g.KH; kh++)
                                        for (ptrdiff_t kw = 0; kw < g.KW; kw++) {
                                            const ptrdiff_t ih = oh * g.SH - g.PT + kh * g.DH,
                                                            iw = ow * g.SW - g.PL + kw * g.DW;
                                            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                                            v += act_ref(x[(ih * g.W + iw) * C + c], g.in_act) *
                                                 (double)w[(kh * g.KW + kw) * C + c];
                                        }
                                    v = act_ref(v, act);
                                    if (!close_to(got, v)) {
                                        fail("y[%td][%td] = %.8g, expected %.8g", ow, c, got, v);
                                        break;
                                    }
                                }
                            if (!slot_intact(&sy)) fail("wrote outside y (canaries around the buffer)");
                            case_end();
                            at_end ^= 1;
                        }
                }
}

/* ------------------------------------------------------------------------------------- gconv_row */

static void check_gconv(const pyconv_ukernels *uk) {
    enum { HMAX = 5, WMAX = 9, CMAX = 5 * 32, COMAX = 5 * 16, KMAX = 3 };
    static slot sx, sw, si, sb, sy;
    static int ready;
    if (!ready) {
        slot_init(&sx, HMAX * WMAX * CMAX);
        slot_init(&sw, (COMAX / 16 + 1) * KMAX * KMAX * 32 * 16);
        slot_init(&si, 32 * 16);
        slot_init(&sb, COMAX);
        slot_init(&sy, WMAX * COMAX);
        ready = 1;
    }
    static const ptrdiff_t ogs[] = {1, 2, 4, 8, 16}, cgs[] = {1, 2, 3, 4, 8, 16, 32}, Gs[] = {1, 2, 3, 5};
    static double wref[KMAX * KMAX * 32 * COMAX];
    unsigned n = 0;
    for (size_t oi = 0; oi < 5; oi++)
        for (size_t ci = 0; ci < 7; ci++) {
            const ptrdiff_t OG = ogs[oi], CG = cgs[ci];
            if (!uk->gconv_supported(CG, OG)) continue;
            for (size_t gi = 0; gi < 4; gi++)
                for (ptrdiff_t kk = 1; kk <= 3; kk += 2)
                    for (ptrdiff_t st = 1; st <= 2; st++) {
                        pyconv_gc_geom g;
                        g.CG = CG;
                        g.OG = OG;
                        g.C = Gs[gi] * CG;
                        g.CO = Gs[gi] * OG;
                        if (g.C > CMAX || g.CO > COMAX) continue;
                        g.KH = g.KW = kk;
                        g.SH = g.SW = st;
                        g.DH = g.DW = 1 + n % 2;
                        g.H = 1 + (ptrdiff_t)(n % HMAX);
                        g.W = 1 + (ptrdiff_t)(n * 7 % WMAX);
                        const ptrdiff_t span = (kk - 1) * g.DW + 1;
                        g.PT = g.PL = n % 3 == 0 ? 0 : span / 2;
                        const ptrdiff_t PR = g.W + g.PL < span ? span - g.W - g.PL : span / 2;
                        const ptrdiff_t PB = g.H + g.PT < span ? span - g.H - g.PT : span / 2;
                        g.OW = (g.W + g.PL + PR - span) / g.SW + 1;
                        const ptrdiff_t OH = (g.H + g.PT + PB - span) / g.SH + 1, taps = kk * kk;
                        const ptrdiff_t blocks = (g.CO + 15) / 16;
                        /* HWIO weights, then the packing of pyconv.packing.pack_narrow_group_weights. */
                        for (ptrdiff_t q = 0; q < taps * CG * g.CO; q++) wref[q] = uni(-1, 1);
                        for (ptrdiff_t oh = 0; oh < OH; oh++, n++) {
                            const int act = acts[n % 3], has_bias = n % 4 != 2;
                            DESCRIBE("gconv_row H=%td W=%td C=%td CO=%td CG=%td OG=%td K=%td S=%td D=%td P=%td OW=%td "
                                     "oh=%td act=%d bias=%d at_end=%d", g.H, g.W, g.C, g.CO, CG, OG, kk, st, g.DW,
                                     g.PL, g.OW, oh, act, has_bias, at_end);
                            case_begin();
                            float *x = slot_take(&sx, (size_t)(g.H * g.W * g.C), sizeof(float));
                            fill(x, (size_t)(g.H * g.W * g.C), -2, 2);
                            if (n % 5 == 1) x[rnd() % (g.H * g.W * g.C)] = NAN;
                            float *w = slot_take(&sw, (size_t)(blocks * taps * CG * 16), PYCONV_ALIGN);
                            int *idx = (int *)slot_take(&si, (size_t)(CG * 16), PYCONV_ALIGN);
                            for (ptrdiff_t v = 0; v < blocks; v++)
                                for (ptrdiff_t t = 0; t < taps; t++)
                                    for (ptrdiff_t i = 0; i < CG; i++)
                                        for (ptrdiff_t l = 0; l < 16; l++) {
                                            const ptrdiff_t co = v * 16 + l;
                                            w[((v * taps + t) * CG + i) * 16 + l] =
                                                co < g.CO ? (float)wref[(t * CG + i) * g.CO + co] : 0.0f;
                                        }
                            for (ptrdiff_t i = 0; i < CG; i++)
                                for (ptrdiff_t l = 0; l < 16; l++) idx[i * 16 + l] = (int)((l / OG) * CG + i);
                            float *bias = has_bias ? slot_take(&sb, (size_t)g.CO, sizeof(float)) : NULL;
                            if (bias) fill(bias, (size_t)g.CO, -1, 1);
                            float *y = slot_take(&sy, (size_t)(g.OW * g.CO), sizeof(float));
                            fill_canary(y, (size_t)(g.OW * g.CO));
                            GUARDED(uk->gconv_row(&g, x, w, idx, bias, y, oh, act));
                            for (ptrdiff_t ow = 0; ow < g.OW && !case_failed; ow++)
                                for (ptrdiff_t co = 0; co < g.CO; co++) {
                                    double v = bias ? bias[co] : 0.0;
                                    const ptrdiff_t c0 = co / OG * CG;
                                    for (ptrdiff_t kh = 0; kh < kk; kh++)
                                        for (ptrdiff_t kw = 0; kw < kk; kw++) {
                                            const ptrdiff_t ih = oh * g.SH - g.PT + kh * g.DH,
                                                            iw = ow * g.SW - g.PL + kw * g.DW;
                                            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                                            for (ptrdiff_t i = 0; i < CG; i++)
                                                v += (double)x[(ih * g.W + iw) * g.C + c0 + i] *
                                                     (float)wref[((kh * kk + kw) * CG + i) * g.CO + co];
                                        }
                                    v = act_ref(v, act);
                                    if (!close_to(y[ow * g.CO + co], v)) {
                                        fail("y[%td][%td] = %.8g, expected %.8g", ow, co, y[ow * g.CO + co], v);
                                        break;
                                    }
                                }
                            if (!slot_intact(&sy)) fail("wrote outside y (canaries around the buffer)");
                            case_end();
                            at_end ^= 1;
                        }
                    }
        }
}

/* ------------------------------------------------------------------------------------- winograd */

/* B^T and A^T of each tile size m (generic.h), rows of T = m + 2; A^T's rows past m unused. */
static const double WINO_BT[3][8][8] = {
    {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
    {{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0},
     {0, 4, 0, -5, 0, 1}},
    {{1, 0, -5.25, 0, 5.25, 0, -1, 0}, {0, 1, 1, -4.25, -4.25, 1, 1, 0}, {0, -1, 1, 4.25, -4.25, -1, 1, 0},
     {0, 0.5, 0.25, -2.5, -1.25, 2, 1, 0}, {0, -0.5, 0.25, 2.5, -1.25, -2, 1, 0}, {0, 2, 4, -2.5, -5, 0.5, 1, 0},
     {0, -2, 4, 2.5, -5, -0.5, 1, 0}, {0, -1, 0, 5.25, 0, -5.25, 0, 1}},
};
static const double WINO_AT[3][6][8] = {
    {{1, 1, 1, 0}, {0, 1, -1, -1}},
    {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}},
    {{1, 1, 1, 1, 1, 32, 32, 0}, {0, 1, -1, 2, -2, 16, -16, 0}, {0, 1, 1, 4, 4, 8, 8, 0}, {0, 1, -1, 8, -8, 4, -4, 0},
     {0, 1, 1, 16, 16, 2, 2, 0}, {0, 1, -1, 32, -32, 1, -1, 1}},
};

/* close_to for a sum of terms of magnitudes adding up to mag: F(6)'s transforms weigh values by up to
 * 32 x 32 and 5.25 x 5.25, so random values cancel by far more than a real tile's do. */
static int close_to_sum(float got, double ref, double mag) {
    if (isnan(ref)) return isnan(got);
    if (isnan(got)) return 0;
    return fabs((double)got - ref) <= TOL * fmax(1.0, mag);
}

static void check_winograd(const pyconv_ukernels *uk) {
    enum { HMAX = 7, CMAX = 40 };
    static slot sx, sz, sv, sm, sb, sy;
    static int ready;
    if (!ready) {
        slot_init(&sx, HMAX * HMAX * CMAX);
        slot_init(&sz, CMAX);
        slot_init(&sv, 64 * (CMAX + 8));
        slot_init(&sm, 64 * (CMAX + 8));
        slot_init(&sb, CMAX);
        slot_init(&sy, HMAX * HMAX * (CMAX + 3));
        ready = 1;
    }
    static const ptrdiff_t Cs[] = {1, 3, 4, 7, 8, 9, 16, 17, 33, 40};
    unsigned n = 0;
    for (int mi = 0; mi < 3; mi++) {
        const int m = 2 * mi + 2, T = m + 2, TT = T * T;
        const double(*BT)[8] = WINO_BT[mi];
        const double(*AT)[8] = WINO_AT[mi];
        for (size_t ci = 0; ci < sizeof(Cs) / sizeof(Cs[0]); ci++) {
            const ptrdiff_t C = Cs[ci];
            for (ptrdiff_t H = 1; H <= HMAX; H += 3)
                for (ptrdiff_t ih0 = -T + 1; ih0 < H; ih0 += 2)
                    for (ptrdiff_t iw0 = -T + 2; iw0 < H + 1; iw0 += 3, n++) {
                        /* Channels [c0, c0 + nc) of pixels C floats apart: a grouped layer's chunk of groups. */
                        const ptrdiff_t c0 = (n % 3 == 2 && C > 3) ? 2 : 0, nc = C - c0 - (n % 4 == 1 && C - c0 > 1);
                        const ptrdiff_t W = H + 1 > HMAX ? HMAX : H + 1, vs = nc + (n % 2) * 5;
                        DESCRIBE("wino_input m=%d H=%td W=%td C=%td c0=%td n=%td ih0=%td iw0=%td v_stride=%td "
                                 "at_end=%d", m, H, W, C, c0, nc, ih0, iw0, vs, at_end);
                        case_begin();
                        float *x = slot_take(&sx, (size_t)(H * W * C), sizeof(float));
                        fill(x, (size_t)(H * W * C), -2, 2);
                        if (n % 6 == 0) x[rnd() % (H * W * C)] = NAN;
                        float *zeros = slot_take(&sz, (size_t)C, sizeof(float));
                        memset(zeros, 0, (size_t)C * sizeof(float));
                        const size_t vn = (size_t)((TT - 1) * vs + nc);
                        float *v = slot_take(&sv, vn, sizeof(float));
                        fill_canary(v, vn);
                        GUARDED(uk->wino_input(m, x + c0, H, W, C, nc, ih0, iw0, zeros, v, vs));
                        for (int k = 0; k < TT && !case_failed; k++)
                            for (ptrdiff_t c = 0; c < vs && (k < TT - 1 || c < nc); c++) {
                                const float got = v[k * vs + c];
                                if (c >= nc) {
                                    if (!is_canary(&v[k * vs + c])) fail("wrote v[%d][%td], past n", k, c);
                                    continue;
                                }
                                double ref = 0, mag = 0;
                                for (int p = 0; p < T; p++)
                                    for (int q = 0; q < T; q++) {
                                        const ptrdiff_t ih = ih0 + p, iw = iw0 + q;
                                        const double d =
                                            ih >= 0 && ih < H && iw >= 0 && iw < W ? x[(ih * W + iw) * C + c0 + c] : 0;
                                        if (BT[k / T][p] != 0 && BT[k % T][q] != 0) {
                                            ref += BT[k / T][p] * d * BT[k % T][q];
                                            mag += fabs(BT[k / T][p] * d * BT[k % T][q]);
                                        }
                                    }
                                if (!close_to_sum(got, ref, mag)) {
                                    fail("v[%d][%td] = %.8g, expected %.8g", k, c, got, ref);
                                    break;
                                }
                            }
                        if (!slot_intact(&sv)) fail("wrote outside v (canaries around the buffer)");
                        case_end();
                        at_end ^= 1;
                    }
            for (ptrdiff_t OH = 1; OH <= HMAX; OH += 3)
                for (ptrdiff_t OW = 1; OW <= HMAX; OW += 2)
                    for (ptrdiff_t oh0 = 0; oh0 < OH; oh0 += 1 + (OH > 4))
                        for (ptrdiff_t ow0 = 0; ow0 < OW; ow0 += 1 + (OW > 2), n++) {
                            /* Channels [c0, c0 + CO) of pixels CO + c0 floats apart: a chunk of a wider layer. */
                            const ptrdiff_t c0 = (n % 3 == 2) ? 3 : 0, CO = C, ld = CO + c0, ms = CO + (n % 2) * 3;
                            const int act = acts[n % 3], has_bias = n % 4 != 3;
                            DESCRIBE("wino_output m=%d OH=%td OW=%td CO=%td c0=%td oh0=%td ow0=%td m_stride=%td act=%d "
                                     "bias=%d at_end=%d", m, OH, OW, CO, c0, oh0, ow0, ms, act, has_bias, at_end);
                            case_begin();
                            const size_t mn = (size_t)((TT - 1) * ms + CO);
                            float *mm = slot_take(&sm, mn, sizeof(float));
                            fill(mm, mn, -4, 4);
                            if (n % 5 == 0) mm[(rnd() % TT) * ms + rnd() % CO] = NAN;
                            float *bias = has_bias ? slot_take(&sb, (size_t)CO, sizeof(float)) : NULL;
                            if (bias) fill(bias, (size_t)CO, -1, 1);
                            const size_t yn = (size_t)(OH * OW * ld);
                            float *y = slot_take(&sy, yn, sizeof(float));
                            fill_canary(y, yn);
                            GUARDED(uk->wino_output(m, mm, ms, bias, y + c0, OH, OW, ld, CO, oh0, ow0, act));
                            for (ptrdiff_t oh = 0; oh < OH && !case_failed; oh++)
                                for (ptrdiff_t ow = 0; ow < OW; ow++)
                                    for (ptrdiff_t o = 0; o < ld; o++) {
                                        const float *p = &y[(oh * OW + ow) * ld + o];
                                        const int r = (int)(oh - oh0), q = (int)(ow - ow0);
                                        if (r < 0 || r >= m || q < 0 || q >= m || o < c0) {
                                            if (!is_canary(p))
                                                fail("wrote y[%td][%td][%td], outside the tile", oh, ow, o);
                                            continue;
                                        }
                                        double ref = bias ? bias[o - c0] : 0.0, mag = fabs(ref);
                                        for (int a = 0; a < T; a++)
                                            for (int b = 0; b < T; b++)
                                                if (AT[r][a] != 0 && AT[q][b] != 0) {
                                                    const double t = AT[r][a] * (double)mm[(a * T + b) * ms + o - c0] * AT[q][b];
                                                    ref += t;
                                                    mag += fabs(t);
                                                }
                                        ref = act_ref(ref, act);
                                        if (!close_to_sum(*p, ref, mag)) {
                                            fail("y[%td][%td][%td] = %.8g, expected %.8g", oh, ow, o, *p, ref);
                                            break;
                                        }
                                    }
                            if (!slot_intact(&sy)) fail("wrote outside y (canaries around the buffer)");
                            case_end();
                            at_end ^= 1;
                        }
        }
    }
}

/* -------------------------------------------------------------------------------- maxpool_window */

static void check_maxpool(const pyconv_ukernels *uk) {
    enum { H = 3, W = 4, CMAX = 130 };
    static slot sx, sd;
    static int ready;
    if (!ready) {
        slot_init(&sx, H * W * CMAX);
        slot_init(&sd, 64);
        ready = 1;
    }
    static const ptrdiff_t Cs[] = {1, 3, 4, 15, 16, 17, 33, 48, 64, 65, 100, 130};
    unsigned n = 0;
    for (size_t ci = 0; ci < sizeof(Cs) / sizeof(Cs[0]); ci++)
        for (ptrdiff_t c0 = 0; c0 < Cs[ci]; c0 += 64)
            for (ptrdiff_t h0 = 0; h0 < H; h0++)
                for (ptrdiff_t h1 = h0 + 1; h1 <= H; h1++)
                    for (ptrdiff_t w0 = 0; w0 < W; w0++)
                        for (ptrdiff_t w1 = w0 + 1; w1 <= W; w1++, n++) {
                            const ptrdiff_t C = Cs[ci], nc = C - c0 < 64 ? C - c0 : 64;
                            DESCRIBE("maxpool_window C=%td c0=%td n=%td h=[%td,%td) w=[%td,%td) at_end=%d", C, c0, nc,
                                     h0, h1, w0, w1, at_end);
                            case_begin();
                            float *x = slot_take(&sx, (size_t)(H * W * C), sizeof(float));
                            fill(x, (size_t)(H * W * C), -4, 4);
                            if (n % 3 == 0)   /* a NaN somewhere in the image, inside the window or not */
                                x[rnd() % (H * W * C)] = NAN;
                            if (n % 5 == 0) { /* a channel of signed zeros: the first of equals is kept */
                                const ptrdiff_t c = c0 + (ptrdiff_t)(rnd() % (unsigned)nc);
                                for (ptrdiff_t q = 0; q < H * W; q++) x[q * C + c] = (q + n) % 2 ? -0.0f : 0.0f;
                            }
                            float *dst = slot_take(&sd, (size_t)nc, sizeof(float));
                            fill_canary(dst, (size_t)nc);
                            GUARDED(uk->maxpool_window(x + c0, dst, nc, C, W, h0, h1, w0, w1));
                            for (ptrdiff_t c = 0; c < nc && !case_failed; c++) {
                                float m = -INFINITY;
                                int nan = 0;
                                for (ptrdiff_t h = h0; h < h1; h++)
                                    for (ptrdiff_t w = w0; w < w1; w++) {
                                        const float v = x[(h * W + w) * C + c0 + c];
                                        if (isnan(v)) nan = 1;
                                        else if (v > m) m = v;
                                    }
                                const int ok = nan ? isnan(dst[c]) : memcmp(&dst[c], &m, sizeof m) == 0;
                                if (!ok) fail("dst[%td] = %g, expected %g%s", c, dst[c], nan ? NAN : m,
                                              !nan && m == 0 ? " (first of +0/-0 kept)" : "");
                            }
                            if (!slot_intact(&sd)) fail("wrote outside dst (canaries around the buffer)");
                            case_end();
                            at_end ^= 1;
                        }
}

/* -------------------------------------------------------------------------------- transpose_tile */

static void check_transpose(const pyconv_ukernels *uk) {
    static slot ss, sd;
    static int ready;
    if (!ready) {
        slot_init(&ss, 16 * 40);
        slot_init(&sd, 16 * 40);
        ready = 1;
    }
    unsigned n = 0;
    for (ptrdiff_t rows = 1; rows <= 16; rows++)
        for (ptrdiff_t cols = 1; cols <= 16; cols++)
            for (int v = 0; v < 2; v++, n++) {
                const ptrdiff_t lds = v ? 37 : cols, ldd = v ? rows + 3 : rows;
                DESCRIBE("transpose_tile rows=%td cols=%td ld_src=%td ld_dst=%td at_end=%d", rows, cols, lds, ldd,
                         at_end);
                case_begin();
                const size_t sn = (size_t)((rows - 1) * lds + cols), dn = (size_t)((cols - 1) * ldd + rows);
                float *src = slot_take(&ss, sn, sizeof(float));
                fill(src, sn, -1, 1);
                float *dst = slot_take(&sd, dn, sizeof(float));
                fill_canary(dst, dn);
                GUARDED(uk->transpose_tile(src, lds, dst, ldd, rows, cols));
                for (ptrdiff_t j = 0; j < cols && !case_failed; j++)
                    for (ptrdiff_t i = 0; i < ldd && (j + 1 < cols || i < rows); i++) {
                        const float *p = &dst[j * ldd + i];
                        if (i >= rows ? !is_canary(p) : memcmp(p, &src[i * lds + j], sizeof(float)) != 0) {
                            fail("dst[%td][%td] wrong", j, i);
                            break;
                        }
                    }
                if (!slot_intact(&sd)) fail("wrote outside dst (canaries around the buffer)");
                case_end();
                at_end ^= 1;
            }
}

/* ---------------------------------------------------------------------------------------- eltwise */

/* Checks out[0..n) against ref[0..n) (1e-4 relative, NaN where ref is NaN) and the output's canaries. */
static void check_span(const char *what, const float *out, const double *ref, ptrdiff_t n, const slot *s) {
    for (ptrdiff_t i = 0; i < n; i++)
        if (!close_to(out[i], ref[i])) {
            fail("%s[%td] = %.8g, expected %.8g", what, i, out[i], ref[i]);
            return;
        }
    if (!slot_intact(s)) fail("wrote outside %s (canaries around the buffer)", what);
}

/* a OP b for the binary op codes of common.h (RSUB and RDIV: b - a, b / a). */
static double binary_ref(double a, double b, int op) {
    switch (op) {
    case PYCONV_BIN_ADD: return a + b;
    case PYCONV_BIN_SUB: return a - b;
    case PYCONV_BIN_MUL: return a * b;
    case PYCONV_BIN_DIV: return a / b;
    case PYCONV_BIN_RSUB: return b - a;
    default: return b / a;
    }
}

static void check_eltwise(const pyconv_ukernels *uk) {
    enum { NMAX = 300, HWMAX = 40, CMAX = 130 };
    static slot sa, sb, so, sm;
    static int ready;
    if (!ready) {
        slot_init(&sa, NMAX);
        slot_init(&sb, NMAX);
        slot_init(&so, NMAX);
        slot_init(&sm, HWMAX * CMAX);
        ready = 1;
    }
    static double ref[HWMAX * CMAX];
    unsigned u = 0;
    for (ptrdiff_t n = 1; n <= NMAX; n += n < 70 ? 1 : 23)
        for (int ai = 0; ai < 3; ai++)
            for (int alias = 0; alias < 3; alias++, u++) {
                const int act = acts[ai];
                /* binary, every op; alias 0: o separate, 1: o == a, 2: o == b; a NaN every few cases. */
                for (int op = PYCONV_BIN_ADD; op <= PYCONV_BIN_RDIV; op++) {
                    DESCRIBE("binary op=%d n=%td act=%d alias=%d at_end=%d", op, n, act, alias, at_end);
                    case_begin();
                    float *a = slot_take(&sa, (size_t)n, sizeof(float));
                    float *b = slot_take(&sb, (size_t)n, sizeof(float));
                    fill(a, (size_t)n, -8, 8);
                    fill(b, (size_t)n, 0.5f, 8);
                    if (u % 4 == 0) a[rnd() % n] = NAN;
                    for (ptrdiff_t i = 0; i < n; i++) ref[i] = act_ref(binary_ref(a[i], b[i], op), act);
                    float *o = alias == 1 ? a : alias == 2 ? b : slot_take(&so, (size_t)n, sizeof(float));
                    if (!alias) fill_canary(o, (size_t)n);
                    GUARDED(uk->binary(a, b, o, n, op, act));
                    check_span("o", o, ref, n, alias == 1 ? &sa : alias == 2 ? &sb : &so);
                    case_end();

                    /* binary_scalar, alias 1: o == a */
                    DESCRIBE("binary_scalar op=%d n=%td act=%d in_place=%d at_end=%d", op, n, act, alias == 1, at_end);
                    case_begin();
                    a = slot_take(&sa, (size_t)n, sizeof(float));
                    fill(a, (size_t)n, 0.5f, 8);
                    if (u % 4 == 1) a[rnd() % n] = NAN;
                    const float sc = uni(-4, 4);
                    for (ptrdiff_t i = 0; i < n; i++) ref[i] = act_ref(binary_ref(a[i], sc, op), act);
                    o = alias == 1 ? a : slot_take(&so, (size_t)n, sizeof(float));
                    if (alias != 1) fill_canary(o, (size_t)n);
                    GUARDED(uk->binary_scalar(a, sc, o, n, op, act));
                    check_span("o", o, ref, n, alias == 1 ? &sa : &so);
                    case_end();
                }

                /* scale_shift, alias 1: o == x */
                DESCRIBE("scale_shift n=%td act=%d in_place=%d at_end=%d", n, act, alias == 1, at_end);
                case_begin();
                float *x = slot_take(&sa, (size_t)n, sizeof(float)), *sc = slot_take(&sb, (size_t)n, sizeof(float));
                float *sh = slot_take(&sm, (size_t)n, sizeof(float));
                fill(x, (size_t)n, -8, 8);
                fill(sc, (size_t)n, -2, 2);
                fill(sh, (size_t)n, -2, 2);
                if (u % 4 == 1) x[rnd() % n] = NAN;
                for (ptrdiff_t i = 0; i < n; i++) ref[i] = act_ref((double)x[i] * sc[i] + sh[i], act);
                float *o = alias == 1 ? x : slot_take(&so, (size_t)n, sizeof(float));
                if (alias != 1) fill_canary(o, (size_t)n);
                GUARDED(uk->scale_shift(x, sc, sh, o, n, act));
                check_span("o", o, ref, n, alias == 1 ? &sa : &so);
                case_end();

                /* divide and activate_span (in place), accumulate (dst += src) */
                DESCRIBE("divide/activate_span/accumulate n=%td act=%d at_end=%d", n, act, at_end);
                case_begin();
                float *d = slot_take(&so, (size_t)n, sizeof(float)), *src = slot_take(&sa, (size_t)n, sizeof(float));
                fill(d, (size_t)n, -40, 40);
                if (u % 4 == 2) d[rnd() % n] = NAN;
                const float divisor = (float)(1 + alias * 4 + ai);
                for (ptrdiff_t i = 0; i < n; i++) ref[i] = act_ref((double)d[i] / divisor, act);
                GUARDED(uk->divide(d, divisor, n, act));
                check_span("divide", d, ref, n, &so);
                for (ptrdiff_t i = 0; i < n; i++) ref[i] = act_ref((double)d[i], act);
                GUARDED(uk->activate_span(d, n, act, 0.0f, 0.0f));
                check_span("activate_span", d, ref, n, &so);
                fill(src, (size_t)n, -4, 4);
                for (ptrdiff_t i = 0; i < n; i++) ref[i] = (double)d[i] + src[i];
                GUARDED(uk->accumulate(d, src, n));
                check_span("accumulate", d, ref, n, &so);
                case_end();

                for (size_t k = 0; k < sizeof(span_acts) / sizeof(span_acts[0]); k++) {
                    DESCRIBE("activate_span n=%td code=%d at_end=%d", n, span_acts[k].code, at_end);
                    case_begin();
                    float *e = slot_take(&so, (size_t)n, sizeof(float));
                    fill(e, (size_t)n, -40, 40);
                    if ((u + k) % 4 == 0) e[rnd() % n] = NAN;
                    for (ptrdiff_t i = 0; i < n; i++)
                        ref[i] = span_act_ref((double)e[i], span_acts[k].code, span_acts[k].alpha, span_acts[k].beta);
                    GUARDED(uk->activate_span(e, n, span_acts[k].code, span_acts[k].alpha, span_acts[k].beta));
                    check_span("activate_span", e, ref, n, &so);
                    case_end();
                }
                at_end ^= 1;
            }
    /* mean_pixels: n <= 64 channels from offset c0 of C, over HW pixels */
    static const ptrdiff_t Cs[] = {1, 3, 16, 17, 64, 65, 130};
    for (size_t ci = 0; ci < sizeof(Cs) / sizeof(Cs[0]); ci++)
        for (ptrdiff_t c0 = 0; c0 < Cs[ci]; c0 += 64)
            for (ptrdiff_t HW = 1; HW <= HWMAX; HW += HW < 5 ? 1 : 7, u++) {
                const ptrdiff_t C = Cs[ci], nc = C - c0 < 64 ? C - c0 : 64;
                DESCRIBE("mean_pixels HW=%td C=%td c0=%td n=%td at_end=%d", HW, C, c0, nc, at_end);
                case_begin();
                float *img = slot_take(&sm, (size_t)(HW * C), sizeof(float));
                fill(img, (size_t)(HW * C), -4, 4);
                if (u % 3 == 0) img[rnd() % (HW * C)] = NAN;
                float *dst = slot_take(&so, (size_t)nc, sizeof(float));
                fill_canary(dst, (size_t)nc);
                for (ptrdiff_t c = 0; c < nc; c++) {
                    double acc = 0;
                    for (ptrdiff_t q = 0; q < HW; q++) acc += img[q * C + c0 + c];
                    ref[c] = acc / (double)HW;
                }
                GUARDED(uk->mean_pixels(img + c0, dst, HW, C, nc));
                check_span("dst", dst, ref, nc, &so);
                case_end();
                at_end ^= 1;
            }
    /* shuffle_row: dst[j * groups + i] = src[i * P + j], exactly */
    for (ptrdiff_t groups = 1; groups <= 9; groups++)
        for (ptrdiff_t P = 1; P <= 33; P++) {
            DESCRIBE("shuffle_row groups=%td P=%td at_end=%d", groups, P, at_end);
            case_begin();
            const size_t total = (size_t)(groups * P);
            float *src = slot_take(&sa, total, sizeof(float)), *dst = slot_take(&so, total, sizeof(float));
            fill(src, total, -1, 1);
            fill_canary(dst, total);
            GUARDED(uk->shuffle_row(src, dst, groups, P));
            for (ptrdiff_t j = 0; j < P && !case_failed; j++)
                for (ptrdiff_t i = 0; i < groups; i++)
                    if (memcmp(&dst[j * groups + i], &src[i * P + j], sizeof(float)) != 0) {
                        fail("dst[%td] wrong", j * groups + i);
                        break;
                    }
            if (!slot_intact(&so)) fail("wrote outside dst (canaries around the buffer)");
            case_end();
            at_end ^= 1;
        }
    /* bilinear_row: OW outputs of C channels from two input rows of W pixels, random taps */
    static const ptrdiff_t Ws[] = {1, 2, 5, 9};
    static const ptrdiff_t Bs[] = {1, 3, 16, 17, 33};
    for (size_t wi = 0; wi < sizeof(Ws) / sizeof(Ws[0]); wi++)
        for (size_t ci = 0; ci < sizeof(Bs) / sizeof(Bs[0]); ci++)
            for (ptrdiff_t OW = 1; OW <= 7; OW += 3, u++) {
                const ptrdiff_t W = Ws[wi], C = Bs[ci];
                DESCRIBE("bilinear_row W=%td C=%td OW=%td at_end=%d", W, C, OW, at_end);
                case_begin();
                float *r0 = slot_take(&sa, (size_t)(W * C), sizeof(float));
                float *r1 = slot_take(&sb, (size_t)(W * C), sizeof(float));
                fill(r0, (size_t)(W * C), -4, 4);
                fill(r1, (size_t)(W * C), -4, 4);
                if (u % 3 == 0) r1[rnd() % (W * C)] = NAN;
                ptrdiff_t x0[7], x1[7];
                float wx0[7], wx1[7];
                for (ptrdiff_t j = 0; j < OW; j++) {
                    x0[j] = (ptrdiff_t)(rnd() % W) * C;
                    x1[j] = (ptrdiff_t)(rnd() % W) * C;
                    wx1[j] = uni(0, 1);
                    wx0[j] = 1 - wx1[j];
                }
                const float wy1 = uni(0, 1), wy0 = 1 - wy1;
                float *o = slot_take(&so, (size_t)(OW * C), sizeof(float));
                fill_canary(o, (size_t)(OW * C));
                for (ptrdiff_t j = 0; j < OW; j++)
                    for (ptrdiff_t c = 0; c < C; c++)
                        ref[j * C + c] =
                            (double)wy0 * ((double)wx0[j] * r0[x0[j] + c] + (double)wx1[j] * r0[x1[j] + c]) +
                            (double)wy1 * ((double)wx0[j] * r1[x0[j] + c] + (double)wx1[j] * r1[x1[j] + c]);
                GUARDED(uk->bilinear_row(r0, r1, wy0, wy1, x0, x1, wx0, wx1, o, OW, C));
                check_span("o", o, ref, OW * C, &so);
                case_end();
                at_end ^= 1;
            }
}

/* ------------------------------------------------------------------------------------- resample */

/* n bytes against this case's guard page, the rest of the slot filled with a pattern (exact values are
 * compared, so the output needs no canaries inside it; `bytes_intact` checks the open side). */
static uint8_t *bytes_take(slot *s, size_t n) {
    if (n + 64 > s->bytes) {
        fprintf(stderr, "slot too small (%zu bytes)\n", n);
        exit(2);
    }
    memset(s->lo, 0xa5, s->bytes);
    return at_end ? (uint8_t *)(s->lo + s->bytes - n) : (uint8_t *)s->lo;
}

static int bytes_intact(const slot *s, const uint8_t *p, size_t n) {
    const uint8_t *lo = (const uint8_t *)s->lo, *hi = lo + s->bytes;
    for (const uint8_t *q = p - 64; q < p + n + 64; q++)
        if (q >= lo && q < hi && (q < p || q >= p + n) && *q != 0xa5) return 0;
    return 1;
}

static uint8_t rs_ref(int64_t acc, int clip) {
    acc >>= PYCONV_RESAMPLE_BITS;
    if (clip) acc = acc < 0 ? 0 : (acc > 255 ? 255 : acc);
    return (uint8_t)acc;
}

/* Weights of one output: with clip, either sign (Keys' cubic has negative lobes) and magnitudes summing
 * to at most 1.9 in fixed point, so that sums leave 0-255 both ways but stay within int32 as the
 * callers' do; without, non-negative and summing to at most 1.0, as the callers guarantee. */
static void rs_weights(int32_t *k, ptrdiff_t span, int clip) {
    int64_t left = (int64_t)1 << PYCONV_RESAMPLE_BITS;
    const uint32_t most = (uint32_t)((19 * left / 10) / span);
    for (ptrdiff_t t = 0; t < span; t++) {
        if (clip) {
            k[t] = (int32_t)(rnd() % (most + 1)) - (int32_t)(rnd() % (most / 2 + 1));
        } else {
            k[t] = left ? (int32_t)(rnd() % (uint32_t)(left + 1)) : 0;
            left -= k[t];
        }
    }
}

static void check_resample(const pyconv_ukernels *uk) {
    enum { PMAX = 64, SMAX = 9, CMAX = 40, EMAX = 200 };
    static slot sl, so;
    static int ready;
    if (!ready) {
        slot_init(&sl, PMAX * 3 * SMAX);
        slot_init(&so, EMAX);
        ready = 1;
    }
    static int32_t starts[CMAX], weights[CMAX * SMAX], acc[EMAX];
    static uint8_t want[EMAX];
    /* horizontal: `count` outputs over a line of `pixels`, the last outputs reading its last pixel */
    static const ptrdiff_t Ps[] = {1, 2, 3, 5, 17, 64};
    for (size_t pi = 0; pi < sizeof(Ps) / sizeof(Ps[0]); pi++)
        for (ptrdiff_t span = 1; span <= SMAX && span <= Ps[pi]; span += 1 + (span > 3))
            for (ptrdiff_t count = 1; count <= CMAX; count += 13)
                for (int clip = 0; clip < 2; clip++) {
                    const ptrdiff_t P = Ps[pi];
                    DESCRIBE("resample_horizontal pixels=%td span=%td count=%td clip=%d at_end=%d", P, span,
                             count, clip, at_end);
                    case_begin();
                    uint8_t *line = bytes_take(&sl, (size_t)(3 * P));
                    for (ptrdiff_t i = 0; i < 3 * P; i++) line[i] = (uint8_t)rnd();
                    for (ptrdiff_t x = 0; x < count; x++) {
                        /* non-decreasing starts that reach the end of the line */
                        starts[x] = (int32_t)((P - span) * (x + 1) / count);
                        rs_weights(weights + x * span, span, clip);
                    }
                    for (ptrdiff_t x = 0; x < count; x++)
                        for (ptrdiff_t c = 0; c < 3; c++) {
                            int64_t sum = 1 << (PYCONV_RESAMPLE_BITS - 1);
                            for (ptrdiff_t t = 0; t < span; t++)
                                sum += (int64_t)line[3 * (starts[x] + t) + c] * weights[x * span + t];
                            want[3 * x + c] = rs_ref(sum, clip);
                        }
                    uint8_t *dst = bytes_take(&so, (size_t)(3 * count));
                    GUARDED(uk->resample_horizontal(line, P, count, starts, weights, span, clip, dst));
                    if (!case_failed && memcmp(dst, want, (size_t)(3 * count)) != 0) fail("wrong pixels");
                    if (!bytes_intact(&so, dst, (size_t)(3 * count))) fail("wrote outside dst");
                    case_end();
                    at_end ^= 1;
                }
    /* vertical: `elems` bytes down `length` rows */
    static const ptrdiff_t Es[] = {1, 3, 7, 32, 33, 100, EMAX};
    for (size_t ei = 0; ei < sizeof(Es) / sizeof(Es[0]); ei++)
        for (ptrdiff_t length = 1; length <= 8; length += 3)
            for (int clip = 0; clip < 2; clip++) {
                const ptrdiff_t E = Es[ei], stride = E + (ptrdiff_t)(rnd() % 5);
                DESCRIBE("resample_vertical elems=%td length=%td stride=%td clip=%d at_end=%d", E, length, stride,
                         clip, at_end);
                case_begin();
                const size_t n = (size_t)((length - 1) * stride + E);
                uint8_t *first = bytes_take(&sl, n);
                for (size_t i = 0; i < n; i++) first[i] = (uint8_t)rnd();
                rs_weights(weights, length, clip);
                for (ptrdiff_t j = 0; j < E; j++) {
                    int64_t sum = 1 << (PYCONV_RESAMPLE_BITS - 1);
                    for (ptrdiff_t t = 0; t < length; t++) sum += (int64_t)first[t * stride + j] * weights[t];
                    want[j] = rs_ref(sum, clip);
                }
                uint8_t *dst = bytes_take(&so, (size_t)E);
                GUARDED(uk->resample_vertical(first, stride, length, weights, E, clip, acc, dst));
                if (!case_failed && memcmp(dst, want, (size_t)E) != 0) fail("wrong pixels");
                if (!bytes_intact(&so, dst, (size_t)E)) fail("wrote outside dst");
                case_end();
                at_end ^= 1;
            }
}

/* ------------------------------------------------------------------------------------------- main */

typedef struct {
    const char *name;
    void (*check)(const pyconv_ukernels *);
} family;

static const family families[] = {
    {"igemm", check_igemm},     {"nchwconv", check_nchwconv},   {"dwconv", check_dwconv},
    {"gconv", check_gconv},     {"winograd", check_winograd},   {"maxpool", check_maxpool},
    {"transpose", check_transpose}, {"eltwise", check_eltwise},   {"resample", check_resample},
};

static int wanted(const char *level, int argc, char **argv) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], level) == 0) return 1;
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    page = (size_t)sysconf(_SC_PAGESIZE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);

    printf("levels built:");
    for (size_t i = 0; pyconv_isa_level(i); i++) printf(" %s", pyconv_isa_level(i));
    printf("\n");
    int levels_run = 0;
    const char *level;
    for (size_t i = 0; (level = pyconv_isa_level(i)) != NULL; i++) {
        if (!wanted(level, argc, argv)) continue;
        if (!pyconv_isa_supported(level)) {
            printf("%-7s skipped: this CPU cannot run it\n", level);
            continue;
        }
        const pyconv_ukernels *uk = pyconv_ukernels_for(level);
        if (!uk || strcmp(uk->name, level) != 0) {
            printf("%-7s FAILED: no table of that name\n", level);
            n_failed++;
            continue;
        }
        levels_run++;
        for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
            if (strcmp(families[f].name, "gconv") == 0 && uk->gconv_row == NULL) {
                printf("%-7s %-10s none at this level (the GEMM path serves group convolutions)\n", level, "gconv");
                continue;
            }
            fam_cases = fam_failed = 0;
            families[f].check(uk);
            n_passed += fam_cases - fam_failed;
            n_failed += fam_failed;
            if (fam_failed)
                printf("%-7s %-10s FAILED %d of %d cases\n", level, families[f].name, fam_failed, fam_cases);
            else
                printf("%-7s %-10s ok (%d cases)\n", level, families[f].name, fam_cases);
        }
    }
    if (!levels_run) {
        printf("no level selected or supported\n");
        n_failed++;
    }
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
