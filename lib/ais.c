/* ais.c - annealed importance sampling and exact partition functions
 * (ais.h).
 *
 * The RBM target.  Write the energy of rbm.h as
 *     E_B(v,h) = -g_B(v) - (s(v)'W a + D b)'h,
 * with a = up_scale (= down_scale), s(v) = v/sigma for gaussian visible
 * units and v otherwise, D the document length for replicated softmax and 1
 * otherwise, and the visible log-factor
 *     g(v) = c'v                                bernoulli, softmax, rep. softmax
 *     g(v) = -sum_i (v_i - c_i)^2 / (2 sigma_i^2)   gaussian.
 * The base A has W = 0, b = 0 and visible biases c_A (the same sigma), so
 * E_A(v,h) = -g_A(v): independent visible units and uniform hidden units,
 *     log Z_A = H log 2 + sum_i softplus(c_A,i)                 bernoulli
 *             = H log 2 + sum_i log(sqrt(2 pi) sigma_i)          gaussian
 *             = H log 2 + sum_groups logsumexp_k c_A,k           softmax
 *             = H log 2 + D logsumexp_k c_A,k                    rep. softmax
 * (replicated softmax: the D words of a document are a sequence, each word
 * one of V, so the sum over documents is a sum over V^D sequences).
 *
 * Intermediate distributions p*_beta = p*_A^(1-beta) p*_B^beta, i.e.
 *     -E_beta(v,h) = (1-beta) g_A(v) + beta g_B(v) + beta x(v)'h,
 *     x(v) = a s(v)'W + D b   (H).
 * Summing h out:
 *     log p*_beta(v) = (1-beta) g_A(v) + beta g_B(v)
 *                      + sum_j softplus(beta x_j(v)),
 * so the weight increment from beta0 to beta1 at the same v is
 *     (beta1-beta0) (g_B(v) - g_A(v))
 *       + sum_j [softplus(beta1 x_j) - softplus(beta0 x_j)].
 * g_B - g_A is affine in v: (c_B - c_A)'v, or for gaussian units
 *     sum_i v_i (c_i - a_i)/sigma_i^2 - sum_i (c_i^2 - a_i^2)/(2 sigma_i^2)
 * (a = c_A).  It rides along in the product as one more column of W.
 *
 * Transition at beta (block Gibbs on the joint p_beta(v,h), then h is
 * dropped, which leaves the marginal p_beta(v) invariant):
 *     h_j ~ Bernoulli(sigmoid(beta x_j(v)))
 *     v | h: the visible part of -E_beta is
 *         (1-beta) g_A(v) + beta g_B(v) + beta a s(v)'W h.
 *   bernoulli: independent, logit z_i = (1-beta) c_A,i + beta (c_B,i + a (Wh)_i)
 *   softmax, replicated softmax: the same z as logits, a softmax per group,
 *     resp. D words drawn from softmax(z) over the vocabulary
 *   gaussian: (1-beta)(v-a)^2 + beta(v-c)^2 = (v - m)^2 + beta(1-beta)(a-c)^2
 *     with m = (1-beta) a + beta c, so completing the square with the
 *     linear term beta a v (Wh)/sigma gives
 *         v_i ~ Normal(m_i + beta sigma_i a (Wh)_i, sigma_i^2),
 *     i.e. the same "mixed mean" as the other types with sigma scaling.
 *
 * The per-type pieces - g(v), log Z_A, log p*, the base rates, the draws
 * of gaussian, softmax and replicated-softmax visible units, the exact
 * sums - are bm_layer.h's, on views of the model's layers; what stays
 * here is what annealing alone needs (the affine term, the kernels below).
 *
 * Each of the B runs a thread owns is one row, so a step is one product
 * (B,V)x(V,H+1) for x and the affine term and one (B,H)x(H,V) back.  The
 * per-element work (two softplus, a sigmoid and a Bernoulli draw per hidden
 * unit; a sigmoid and a draw per visible unit) is written with GCC vector
 * extensions and compiled twice, for AVX2+FMA and for the baseline ISA,
 * chosen at run time.  Betas enter as floats, the log weights accumulate in
 * double.
 */
#include "ais.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

const char *ais_strerror(int code)
{
    switch (code) {
    case AIS_OK: return "success";
    case AIS_E_NOMEM: return "out of memory";
    case AIS_E_ARG: return "invalid argument";
    case AIS_E_TOOBIG: return "too many states to enumerate";
    case AIS_E_UNSUPPORTED: return "unsupported model";
    }
    return "unknown error";
}

/* ---- schedules --------------------------------------------------------- */

double *ais_schedule_default(int K)
{
    if (K < 3)
        return NULL;
    double *b = malloc(((size_t)K + 1) * sizeof *b);
    if (!b)
        return NULL;
    long n1 = lround(K * (500.0 / 14500.0));
    long n2 = lround(K * (4000.0 / 14500.0));
    if (n1 < 1) n1 = 1;
    if (n2 < 1) n2 = 1;
    if (n1 + n2 > K - 1)
        n2 = K - 1 - n1;
    long n3 = K - n1 - n2;
    const double start[3] = {0.0, 0.5, 0.9}, end[3] = {0.5, 0.9, 1.0};
    const long n[3] = {n1, n2, n3};
    long k = 0;
    b[k++] = 0.0;
    for (int s = 0; s < 3; s++)
        for (long j = 1; j <= n[s]; j++)
            b[k++] = j == n[s] ? end[s]
                               : start[s] + (end[s] - start[s]) * j / n[s];
    return b;
}

const char *ais_schedule_check(const double *beta, int K)
{
    if (K < 1)
        return "a schedule needs at least two betas";
    if (beta[0] != 0.0)
        return "the first beta must be 0";
    if (beta[K] != 1.0)
        return "the last beta must be 1";
    for (int k = 1; k <= K; k++)
        if (!((float)beta[k] > (float)beta[k - 1]))
            return "betas must increase strictly (also in float precision)";
    return NULL;
}

void ais_target_free(ais_target *t)
{
    if (t && t->destroy)
        t->destroy(t);
}

/* ---- threads ----------------------------------------------------------- */

/* Run fn(arg + i*size) for i in [0, n) on n threads; the first on the
 * calling thread.  Falls back to running in turn when a thread cannot be
 * created. */
static void run_threads(int n, void *(*fn)(void *), void *arg, size_t size)
{
    pthread_t tid[256];
    int started[256] = {0};
    if (n > 256)
        n = 256;
    for (int i = 1; i < n; i++)
        started[i] = pthread_create(&tid[i], NULL, fn,
                                    (char *)arg + (size_t)i * size) == 0;
    fn(arg);
    for (int i = 1; i < n; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            fn((char *)arg + (size_t)i * size);
    }
}

/* ---- the annealing loop ------------------------------------------------ */

typedef struct {
    const ais_target *t;
    const float *beta;
    int K, B, lead;
    rng_t *rng;
    double *logw;
    void (*progress)(double, void *);
    void *parg;
    int err;
} run_job;

static void *run_block(void *p)
{
    run_job *j = p;
    const ais_target *t = j->t;
    if (j->B <= 0)
        return NULL;
    size_t sb = t->scratch_bytes(t, j->B);
    void *scratch = calloc(1, sb ? sb : 1);   /* targets may keep state */
    float *x = malloc((size_t)j->B * t->width * sizeof *x);
    if (!scratch || !x) {
        j->err = AIS_E_NOMEM;
        free(scratch);
        free(x);
        return NULL;
    }
    for (int b = 0; b < j->B; b++)
        j->logw[b] = 0.0;
    t->sample_base(t, j->B, x, j->rng, scratch);
    for (int k = 1; k <= j->K; k++) {
        t->step(t, j->beta[k - 1], j->beta[k], k < j->K, j->B, x, j->logw,
                j->rng, scratch);
        if (j->lead && j->progress && (k % 256 == 0 || k == j->K))
            j->progress((double)k / j->K, j->parg);
    }
    if (t->scratch_release)
        t->scratch_release(t, scratch);
    free(scratch);
    free(x);
    return NULL;
}

int ais_run(const ais_target *t, const double *beta, int K, int M,
            uint64_t seed, int nthreads, double *logw,
            void (*progress)(double fraction, void *arg), void *arg)
{
    if (!t || !beta || !logw || M < 1 || nthreads < 1 ||
        ais_schedule_check(beta, K))
        return AIS_E_ARG;
    int T = nthreads < M ? nthreads : M;
    if (T > 256)
        T = 256;
    float *bf = malloc(((size_t)K + 1) * sizeof *bf);
    rng_t *rng = malloc((size_t)M * sizeof *rng);
    run_job *job = calloc((size_t)T, sizeof *job);
    if (!bf || !rng || !job) {
        free(bf);
        free(rng);
        free(job);
        return AIS_E_NOMEM;
    }
    for (int k = 0; k <= K; k++)
        bf[k] = (float)beta[k];
    rng_t master;
    rng_seed(&master, seed);
    for (int i = 0; i < M; i++)
        rng_split(&rng[i], &master, (uint64_t)i);
    int off = 0;
    for (int i = 0; i < T; i++) {
        int B = M / T + (i < M % T);
        job[i] = (run_job){t, bf, K, B, i == 0, rng + off, logw + off,
                           progress, arg, 0};
        off += B;
    }
    run_threads(T, run_block, job, sizeof *job);
    int err = 0;
    for (int i = 0; i < T; i++)
        if (job[i].err)
            err = job[i].err;
    free(bf);
    free(rng);
    free(job);
    return err;
}

int ais_estimate_from(const double *logw, int M, double log_z0,
                      ais_estimate *e)
{
    if (M < 2 || !logw || !e)
        return AIS_E_ARG;
    double mx = -INFINITY;
    for (int i = 0; i < M; i++)
        if (logw[i] > mx)
            mx = logw[i];
    if (!isfinite(mx))
        return AIS_E_ARG;
    double s1 = 0, s2 = 0;
    for (int i = 0; i < M; i++) {
        double w = exp(logw[i] - mx);
        s1 += w;
        s2 += w * w;
    }
    double r = s1 / M, var = 0;
    for (int i = 0; i < M; i++) {
        double d = exp(logw[i] - mx) - r;
        var += d * d;
    }
    double s = sqrt(var / (M - 1) / M);
    e->logz = log_z0 + mx + log(r);
    e->logz_high = log_z0 + mx + log(r + 3 * s);
    e->logz_low = r > 3 * s ? log_z0 + mx + log(r - 3 * s) : -INFINITY;
    e->log_ess = 2 * log(s1) - log(s2);
    return 0;
}

/* ---- vector kernels ---------------------------------------------------- */

/* The helpers below take and return 32-byte vectors; they are always
 * inlined, so the calling-convention note GCC and clang attach to such
 * functions (-Wpsabi) does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));

#define AIS_INLINE static inline __attribute__((always_inline))

AIS_INLINE v8f vset(float s) { return (v8f){s, s, s, s, s, s, s, s}; }
AIS_INLINE v8f vload(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
#define vstore(p, v) do { v8f v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)
/* m ? a : b lane-wise (m from a comparison: all ones or zero); |x|; max(x, 0) */
#define VSEL(m, a, b) ((v8f)(((v8i)(a) & (m)) | ((v8i)(b) & ~(m))))
#define VABS(x) ((v8f)((v8i)(x) & ~(v8i)vset(-0.0f)))
#define VMAX0(x) ((v8f)((v8i)(x) & ((x) > vset(0.0f))))

/* exp(z) for z <= 0 (z below -87 is taken as -87: about 1.6e-38).
 * z = n ln2 + r, |r| <= ln2/2, Taylor polynomial of degree 7 in r. */
AIS_INLINE v8f vexp_neg(const v8f *zp)
{
    v8f z = *zp;
    z = VSEL(z < vset(-87.0f), vset(-87.0f), z);
    v8i n = __builtin_convertvector(z * vset(1.44269504f) - vset(0.5f), v8i);
    v8f fn = __builtin_convertvector(n, v8f);
    v8f r = z - fn * vset(0.693359375f) - fn * vset(-2.12194440e-4f);
    v8f p = vset(1.0f / 5040);
    p = p * r + vset(1.0f / 720);
    p = p * r + vset(1.0f / 120);
    p = p * r + vset(1.0f / 24);
    p = p * r + vset(1.0f / 6);
    p = p * r + vset(0.5f);
    p = p * r + vset(1.0f);
    p = p * r + vset(1.0f);
    v8i e = (n + 127) << 23;
    return p * (v8f)e;
}

/* log(1 + t) for t in [0, 1]: 2 atanh(s), s = t/(2+t) in [0, 1/3]. */
AIS_INLINE v8f vlog1p01(const v8f *tp)
{
    v8f t = *tp;
    v8f s = t / (vset(2.0f) + t), s2 = s * s;
    v8f p = vset(1.0f / 13);
    p = p * s2 + vset(1.0f / 11);
    p = p * s2 + vset(1.0f / 9);
    p = p * s2 + vset(1.0f / 7);
    p = p * s2 + vset(1.0f / 5);
    p = p * s2 + vset(1.0f / 3);
    p = p * s2 + vset(1.0f);
    return vset(2.0f) * s * p;
}

/* One row of hidden units, n a multiple of 8:
 *   returns sum_j softplus(b1 y_j) - softplus(b0 y_j), y = x + hb,
 *   and when u is not NULL sets h_j = [u_j < sigmoid(b1 y_j)]. */
AIS_INLINE double hid_body(int n, const float *x, const float *hb, float b0,
                           float b1, const float *u, float *h)
{
    /* softplus(b1 y) - softplus(b0 y)
     *   = (b1 - b0) max(y, 0) + log1p(exp(-b1|y|)) - log1p(exp(-b0|y|)),
     * summed as two parts so that the rounding errors are those of numbers
     * below log 2, not of the softplus values themselves. */
    v8d lin = {0}, acc = {0};
    for (int j = 0; j < n; j += 8) {
        v8f y = vload(x + j) + vload(hb + j);
        v8f y0 = y * vset(b0), y1 = y * vset(b1);
        v8f a0 = -VABS(y0), a1 = -VABS(y1);
        v8f t0 = vexp_neg(&a0), t1 = vexp_neg(&a1);
        lin += __builtin_convertvector(VMAX0(y), v8d);
        acc += __builtin_convertvector(vlog1p01(&t1) - vlog1p01(&t0), v8d);
        if (u) {
            /* u < sigmoid(y1)  <=>  u (1 + t1) < (y1 >= 0 ? 1 : t1) */
            v8f num = VSEL(y1 >= vset(0.0f), vset(1.0f), t1);
            v8i on = vload(u + j) * (vset(1.0f) + t1) < num;
            vstore(h + j, VSEL(on, vset(1.0f), vset(0.0f)));
        }
    }
    double s = 0, l = 0;
    for (int k = 0; k < 8; k++) {
        s += acc[k];
        l += lin[k];
    }
    return s + ((double)b1 - (double)b0) * l;
}

/* Bernoulli visible units, n a multiple of 8: v_i = [u_i < sigmoid(z_i + c_i)]. */
AIS_INLINE void vis_body(int n, const float *z, const float *c,
                         const float *u, float *v)
{
    for (int i = 0; i < n; i += 8) {
        v8f y = vload(z + i) + vload(c + i);
        v8f a = -VABS(y);
        v8f t = vexp_neg(&a);
        v8f num = VSEL(y >= vset(0.0f), vset(1.0f), t);
        v8i on = vload(u + i) * (vset(1.0f) + t) < num;
        vstore(v + i, VSEL(on, vset(1.0f), vset(0.0f)));
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define AIS_X86 1
__attribute__((target("avx2,fma")))
static double hid_avx2(int n, const float *x, const float *hb, float b0,
                       float b1, const float *u, float *h)
{
    return hid_body(n, x, hb, b0, b1, u, h);
}
__attribute__((target("avx2,fma")))
static void vis_avx2(int n, const float *z, const float *c, const float *u,
                     float *v)
{
    vis_body(n, z, c, u, v);
}
#endif

static double hid_base(int n, const float *x, const float *hb, float b0,
                       float b1, const float *u, float *h)
{
    return hid_body(n, x, hb, b0, b1, u, h);
}

static void vis_base(int n, const float *z, const float *c, const float *u,
                     float *v)
{
    vis_body(n, z, c, u, v);
}

static int have_avx2(void)
{
#ifdef AIS_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
#else
    return 0;
#endif
}

static double hid_row(int n, const float *x, const float *hb, float b0,
                      float b1, const float *u, float *h)
{
#ifdef AIS_X86
    if (have_avx2())
        return hid_avx2(n, x, hb, b0, b1, u, h);
#endif
    return hid_base(n, x, hb, b0, b1, u, h);
}

/* Any n: whole blocks of 8 in place, the tail through a padded copy. */
static void vis_row(int n, const float *z, const float *c, const float *u,
                    float *v)
{
    int n8 = n & ~7;
#ifdef AIS_X86
    if (have_avx2())
        vis_avx2(n8, z, c, u, v);
    else
#endif
        vis_base(n8, z, c, u, v);
    if (n8 < n) {
        float zz[8] = {0}, cc[8] = {0}, uu[8] = {0}, vv[8];
        memcpy(zz, z + n8, (size_t)(n - n8) * sizeof *zz);
        memcpy(cc, c + n8, (size_t)(n - n8) * sizeof *cc);
        memcpy(uu, u + n8, (size_t)(n - n8) * sizeof *uu);
        vis_base(8, zz, cc, uu, vv);
        memcpy(v + n8, vv, (size_t)(n - n8) * sizeof *vv);
    }
}

/* ---- RBM helpers ------------------------------------------------------- */

const char *ais_rbm_check(const rbm *m)
{
    if (!m)
        return "no model";
    if (m->hid != RBM_BERNOULLI)
        return "only bernoulli hidden units can be summed out";
    if (m->vis != RBM_BERNOULLI && m->vis != RBM_GAUSSIAN &&
        m->vis != RBM_REPSOFTMAX && m->vis != RBM_SOFTMAX)
        return "unknown visible unit type";
    if (m->up_scale != m->down_scale)
        return "up_scale and down_scale differ (a DBM pretraining layer has "
               "no RBM energy of its own)";
    if (m->vis == RBM_SOFTMAX &&
        (m->softmax_group < 1 || m->nv % m->softmax_group))
        return "softmax group size does not divide the visible width";
    if (m->vis == RBM_GAUSSIAN && !m->sigma)
        return "gaussian visible units without sigma";
    return NULL;
}

int ais_rbm_log_pstar(const rbm *m, int B, const float *v, double *lp)
{
    enum { CH = 256 };
    const int V = m->nv, H = m->nh;
    float *x = malloc((size_t)CH * (H ? H : 1) * sizeof *x);
    float *s = m->vis == RBM_GAUSSIAN ? malloc((size_t)CH * V * sizeof *s) : NULL;
    if (!x || (m->vis == RBM_GAUSSIAN && !s)) {
        free(x);
        free(s);
        return AIS_E_NOMEM;
    }
    bm_layer Lv = rbm_visible_layer(m), Lh = rbm_hidden_layer(m);
    for (int r0 = 0; r0 < B; r0 += CH) {
        int n = B - r0 < CH ? B - r0 : CH;
        const float *rows = v + (size_t)r0 * V, *in = rows;
        if (s) {
            bm_layer_scale(&Lv, n, rows, s);
            in = s;
        }
        gemm_f32(GEMM_NOTRANS, GEMM_NOTRANS, n, H, V, m->up_scale, in, V,
                 m->W, H, 0.0f, x, H);
        /* g(v) (the visible layer's own term), then the hidden units
         * summed out, their bias times D added in double, in one sum */
        float D[CH];
        if (m->vis == RBM_REPSOFTMAX)
            bm_layer_doclen(&Lv, n, rows, D);
        for (int b = 0; b < n; b++)
            lp[r0 + b] = 0;
        bm_layer_add_own(&Lv, n, rows, NULL, lp + r0);
        bm_layer_add_logpart(&Lh, n, x, m->vis == RBM_REPSOFTMAX ? D : NULL,
                             lp + r0);
    }
    free(x);
    free(s);
    return 0;
}

int ais_rbm_base_from_sums(const rbm *m, const double *colsum, double n,
                           float *base)
{
    bm_layer L = rbm_visible_layer(m);
    L.bias = base;
    return bm_layer_base_bias(&L, colsum, n) ? AIS_E_ARG : 0;
}

/* ---- the RBM annealing target ------------------------------------------ */

typedef struct {
    int V, H, Hh, L;      /* H rounded up to 8 = Hh; L = Hh + 8 columns */
    int vis, D;           /* visible unit type, document length */
    float *Wp;            /* (V, L): columns [0,H) a W, [H,Hh) 0, column Hh
                             the affine term's slope (times sigma for
                             gaussian), the rest 0 */
    float *hb;            /* (Hh) D b, then zeros */
    float *cA, *cB;       /* (V) base and model visible biases */
    float *sigma, *isig;  /* (V) gaussian only */
    double g0;            /* the affine term's constant */
    bm_layer vl;          /* the visible layer (sigma); its bias is given
                             at each draw */
} rbm_target;

/* Scratch layout for B runs (floats): s (B,V) gaussian input, x (B,L),
 * h (B,Hh), z (B,V), mb (V), dl (B), u (max(Hh,V)); doubles: cdf (V). */
static size_t rbm_scratch_bytes(const ais_target *t, int B)
{
    const rbm_target *r = t->ctx;
    size_t U = (size_t)(r->Hh > r->V ? r->Hh : r->V);
    size_t nf = (size_t)B * r->V * 2 + (size_t)B * r->L + (size_t)B * r->Hh +
                U + (size_t)r->V + (size_t)B;
    return nf * sizeof(float) + (size_t)r->V * sizeof(double) + 64;
}

typedef struct {
    float *s, *x, *h, *z, *u, *mb, *dl;
    double *cdf;
} rbm_scratch;

static rbm_scratch rbm_scratch_map(const rbm_target *r, int B, void *p)
{
    rbm_scratch s;
    s.cdf = p;
    float *f = (float *)(s.cdf + r->V);
    s.s = f; f += (size_t)B * r->V;
    s.x = f; f += (size_t)B * r->L;
    s.h = f; f += (size_t)B * r->Hh;
    s.z = f; f += (size_t)B * r->V;
    s.mb = f; f += r->V;
    s.dl = f; f += B;
    s.u = f;
    return s;
}

/* Draw visible rows v (B,V) from logits/means z (B,V) plus c (V): the
 * vector kernel for bernoulli units, bm_layer_sample_input for the rest
 * (row b uses rng[b]). */
static void rbm_sample_vis(const rbm_target *r, int B, const float *z,
                           const float *c, float *v, rng_t *rng,
                           rbm_scratch *sc)
{
    const int V = r->V;
    if (r->vis != RBM_BERNOULLI) {
        bm_layer L = r->vl;
        L.bias = (float *)c;      /* only read */
        for (int b = 0; b < B; b++)
            sc->dl[b] = (float)r->D;
        bm_layer_sample_input(&L, B, z, r->vis == RBM_REPSOFTMAX ? sc->dl : NULL,
                              v, rng, sc->cdf);
        return;
    }
    for (int b = 0; b < B; b++) {
        rng_fill_uniform(&rng[b], sc->u, (size_t)V);
        vis_row(V, z + (size_t)b * V, c, sc->u, v + (size_t)b * V);
    }
}

static void rbm_sample_base(const ais_target *t, int B, float *x, rng_t *rng,
                            void *scratch)
{
    const rbm_target *r = t->ctx;
    rbm_scratch sc = rbm_scratch_map(r, B, scratch);
    memset(sc.z, 0, (size_t)B * r->V * sizeof *sc.z);
    rbm_sample_vis(r, B, sc.z, r->cA, x, rng, &sc);
}

static void rbm_step(const ais_target *t, float beta0, float beta1, int move,
                     int B, float *v, double *logw, rng_t *rng, void *scratch)
{
    const rbm_target *r = t->ctx;
    const int V = r->V, H = r->H, Hh = r->Hh, L = r->L;
    rbm_scratch sc = rbm_scratch_map(r, B, scratch);
    /* x (B, L) = s(v) Wp; column Hh is the affine term's slope . v */
    const float *in = v;
    if (r->vis == RBM_GAUSSIAN) {
        for (int b = 0; b < B; b++)
            for (int i = 0; i < V; i++)
                sc.s[(size_t)b * V + i] = v[(size_t)b * V + i] * r->isig[i];
        in = sc.s;
    }
    gemm_f32(GEMM_NOTRANS, GEMM_NOTRANS, B, L, V, 1.0f, in, V, r->Wp, L,
             0.0f, sc.x, L);
    double db = (double)beta1 - (double)beta0;
    for (int b = 0; b < B; b++) {
        const float *xr = sc.x + (size_t)b * L;
        if (move)
            rng_fill_uniform(&rng[b], sc.u, (size_t)Hh);
        double d = hid_row(Hh, xr, r->hb, beta0, beta1, move ? sc.u : NULL,
                           sc.h + (size_t)b * Hh);
        logw[b] += d + db * ((double)xr[Hh] + r->g0);
    }
    if (!move)
        return;
    /* z (B, V) = beta1 h (a W)'; mixed biases mb = (1-beta1) c_A + beta1 c_B */
    gemm_f32(GEMM_NOTRANS, GEMM_TRANS, B, V, H, beta1, sc.h, Hh, r->Wp, L,
             0.0f, sc.z, V);
    for (int i = 0; i < V; i++)
        sc.mb[i] = (1.0f - beta1) * r->cA[i] + beta1 * r->cB[i];
    rbm_sample_vis(r, B, sc.z, sc.mb, v, rng, &sc);
}

static void rbm_destroy(ais_target *t)
{
    rbm_target *r = t->ctx;
    if (r) {
        free(r->Wp);
        free(r->hb);
        free(r->cA);
        free(r->cB);
        free(r->sigma);
        free(r->isig);
        free(r);
    }
    free(t);
}

ais_target *ais_rbm_target(const rbm *m, const float *base, int doclen)
{
    if (ais_rbm_check(m) || (m->vis == RBM_REPSOFTMAX && doclen < 1))
        return NULL;
    ais_target *t = calloc(1, sizeof *t);
    rbm_target *r = calloc(1, sizeof *r);
    if (!t || !r) {
        free(t);
        free(r);
        return NULL;
    }
    t->ctx = r;
    t->destroy = rbm_destroy;
    const int V = m->nv, H = m->nh;
    r->V = V;
    r->H = H;
    r->Hh = (H + 7) & ~7;
    r->L = r->Hh + 8;
    r->vis = m->vis;
    r->D = m->vis == RBM_REPSOFTMAX ? doclen : 1;
    r->Wp = calloc((size_t)V * r->L, sizeof *r->Wp);
    r->hb = calloc((size_t)r->Hh, sizeof *r->hb);
    r->cA = calloc((size_t)V, sizeof *r->cA);
    r->cB = malloc((size_t)V * sizeof *r->cB);
    if (m->vis == RBM_GAUSSIAN) {
        r->sigma = malloc((size_t)V * sizeof *r->sigma);
        r->isig = malloc((size_t)V * sizeof *r->isig);
    }
    if (!r->Wp || !r->hb || !r->cA || !r->cB ||
        (m->vis == RBM_GAUSSIAN && (!r->sigma || !r->isig))) {
        rbm_destroy(t);
        return NULL;
    }
    if (base)
        memcpy(r->cA, base, (size_t)V * sizeof *r->cA);
    memcpy(r->cB, m->vbias, (size_t)V * sizeof *r->cB);
    for (int i = 0; i < V; i++)
        for (int j = 0; j < H; j++)
            r->Wp[(size_t)i * r->L + j] = m->up_scale * m->W[(size_t)i * H + j];
    for (int j = 0; j < H; j++)
        r->hb[j] = (float)r->D * m->hbias[j];
    double lz = H * log(2.0), g0 = 0;
    if (m->vis == RBM_GAUSSIAN) {
        for (int i = 0; i < V; i++) {
            double sg = m->sigma[i], a = r->cA[i], c = r->cB[i];
            r->sigma[i] = m->sigma[i];
            r->isig[i] = 1.0f / m->sigma[i];
            r->Wp[(size_t)i * r->L + r->Hh] = (float)((c - a) / sg);
            g0 -= (c * c - a * a) / (2 * sg * sg);
        }
    } else {
        for (int i = 0; i < V; i++)
            r->Wp[(size_t)i * r->L + r->Hh] = r->cB[i] - r->cA[i];
    }
    r->g0 = g0;
    r->vl = rbm_visible_layer(m);
    r->vl.sigma = r->sigma;
    /* log Z_A = H log 2 + the base's visible layer at zero input */
    float *zero = calloc((size_t)V, sizeof *zero), D = (float)r->D;
    if (!zero) {
        rbm_destroy(t);
        return NULL;
    }
    bm_layer A = r->vl;
    A.bias = r->cA;
    bm_layer_add_logpart(&A, 1, zero, m->vis == RBM_REPSOFTMAX ? &D : NULL,
                         &lz);
    free(zero);
    t->width = V;
    t->log_z0 = lz;
    t->scratch_bytes = rbm_scratch_bytes;
    t->sample_base = rbm_sample_base;
    t->step = rbm_step;
    return t;
}

/* ---- exact enumeration ------------------------------------------------- */

typedef struct {
    const rbm *m;
    const double *W;      /* (V, H) a W in double */
    int D;
    char layer;           /* 'h' or 'v' */
    double start, end;    /* state index range [start, end) */
    double mx, sum;       /* running log-sum-exp: mx + log(sum) */
    int err;
} exact_job;

#define EXACT_BATCH 512

static void lse_add(exact_job *j, double x)
{
    if (x <= j->mx) {
        j->sum += exp(x - j->mx);
    } else {
        j->sum = j->sum * exp(j->mx - x) + 1.0;
        j->mx = x;
    }
}

static void *exact_block(void *p)
{
    exact_job *j = p;
    const rbm *m = j->m;
    const int V = m->nv, H = m->nh;
    bm_layer Lv = rbm_visible_layer(m), Lh = rbm_hidden_layer(m);
    const bm_layer *Ls = j->layer == 'h' ? &Lh : &Lv;   /* enumerated */
    const bm_layer *Lo = j->layer == 'h' ? &Lv : &Lh;   /* summed out */
    const int n = Ls->n, o = Lo->n;
    float *sf = malloc((size_t)EXACT_BATCH * n * sizeof *sf);
    double *st = malloc((size_t)EXACT_BATCH * n * sizeof *st);
    double *u = malloc((size_t)EXACT_BATCH * o * sizeof *u);
    if (!sf || !st || !u) {
        j->err = AIS_E_NOMEM;
        free(sf);
        free(st);
        free(u);
        return NULL;
    }
    /* replicated softmax (only ever summed out): the document length, the
     * multiplier of the hidden bias and the number of words */
    float D[EXACT_BATCH];
    for (int b = 0; b < EXACT_BATCH; b++)
        D[b] = (float)j->D;
    const float *d = m->vis == RBM_REPSOFTMAX ? D : NULL;
    double e[EXACT_BATCH];
    j->mx = -INFINITY;
    j->sum = 0;
    for (double s0 = j->start; s0 < j->end; s0 += EXACT_BATCH) {
        int nb = j->end - s0 < EXACT_BATCH ? (int)(j->end - s0) : EXACT_BATCH;
        for (int b = 0; b < nb; b++)
            bm_layer_state(Ls, (uint64_t)(s0 + b), sf + (size_t)b * n);
        for (size_t k = 0; k < (size_t)nb * n; k++)
            st[k] = sf[k];
        if (j->layer == 'h')      /* u (nb, V) = h (a W)' */
            gemm_f64(GEMM_NOTRANS, GEMM_TRANS, nb, V, H, 1.0, st, H, j->W, H,
                     0.0, u, V);
        else                      /* u (nb, H) = v (a W) */
            gemm_f64(GEMM_NOTRANS, GEMM_NOTRANS, nb, H, V, 1.0, st, V, j->W, H,
                     0.0, u, H);
        /* the enumerated layer's own term, then the other layer summed
         * out, in one sum */
        for (int b = 0; b < nb; b++)
            e[b] = 0;
        bm_layer_add_own(Ls, nb, sf, d, e);
        bm_layer_add_logpart_d(Lo, nb, u, d, e);
        for (int b = 0; b < nb; b++)
            lse_add(j, e[b]);
    }
    free(sf);
    free(st);
    free(u);
    return NULL;
}

int ais_rbm_exact_logz(const rbm *m, int doclen, int nthreads,
                       double *logz, double *states, char *layer)
{
    if (ais_rbm_check(m))
        return AIS_E_UNSUPPORTED;
    if (nthreads < 1 || (m->vis == RBM_REPSOFTMAX && doclen < 1))
        return AIS_E_ARG;
    const int V = m->nv, H = m->nh;
    bm_layer Lv = rbm_visible_layer(m), Lh = rbm_hidden_layer(m);
    double nh = bm_layer_states(&Lh), nv = bm_layer_states(&Lv);
    if (!(nv > 0))
        nv = INFINITY;    /* gaussian, replicated softmax: summed out */
    char side = nv < nh ? 'v' : 'h';
    double n = side == 'v' ? nv : nh;
    if (!(n <= ldexp(1.0, 30)))
        return AIS_E_TOOBIG;
    double *W = malloc((size_t)V * (H ? H : 1) * sizeof *W);
    int T = nthreads > 64 ? 64 : nthreads;
    if ((double)T * EXACT_BATCH > n)
        T = 1;
    exact_job *job = calloc((size_t)T, sizeof *job);
    if (!W || !job) {
        free(W);
        free(job);
        return AIS_E_NOMEM;
    }
    for (size_t k = 0; k < (size_t)V * H; k++)
        W[k] = (double)m->up_scale * m->W[k];
    for (int i = 0; i < T; i++) {
        job[i].m = m;
        job[i].W = W;
        job[i].D = m->vis == RBM_REPSOFTMAX ? doclen : 1;
        job[i].layer = side;
        job[i].start = floor(n * i / T);
        job[i].end = i == T - 1 ? n : floor(n * (i + 1) / T);
    }
    run_threads(T, exact_block, job, sizeof *job);
    double mx = -INFINITY, s = 0;
    int err = 0;
    for (int i = 0; i < T; i++) {
        if (job[i].err)
            err = job[i].err;
        if (job[i].sum > 0 && job[i].mx > mx)
            mx = job[i].mx;
    }
    for (int i = 0; i < T; i++)
        if (job[i].sum > 0)
            s += job[i].sum * exp(job[i].mx - mx);
    free(W);
    free(job);
    if (err)
        return err;
    *logz = mx + log(s);
    if (states)
        *states = n;
    if (layer)
        *layer = side;
    return 0;
}
