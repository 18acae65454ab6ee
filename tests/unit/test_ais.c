/* test_ais.c - annealed importance sampling and exact partition functions
 * (lib/ais.h) against independent references:
 *   - the exact enumeration against a brute-force sum over both layers
 *     (a grid integral for gaussian visible units, all word sequences for
 *     replicated softmax), for each enumeration side;
 *   - log p*(v) against log sum_h exp(-E(v,h)) and rbm_free_energy;
 *   - AIS log Z within 0.1 nats of the exact value, the exact value inside
 *     the reported interval, for random models of every visible type;
 *   - the layer functions AIS and rbm.c use (bm_layer_add_logpart[_d]
 *     against bm_layer_add_logpart, bm_layer_sample_input's frequencies);
 *   - the schedule, the interval formula, determinism.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ais.h"
#include "gemm.h"
#include "rbm.h"
#include "rng.h"

#include "tap.h"

/* A random RBM: W ~ N(0, wscale^2), biases ~ N(0, 0.5^2) (plus bshift on
 * the visible biases), sigma in [0.5, 1.5] for gaussian units. */
static rbm *random_rbm(int V, int H, int vis, int K, double wscale,
                       double bshift, uint64_t seed)
{
    rbm *m = rbm_new(V, H, vis, RBM_BERNOULLI);
    if (!m)
        abort();
    rng_t r;
    rng_seed(&r, seed);
    if (vis == RBM_SOFTMAX)
        m->softmax_group = K;
    for (int k = 0; k < V * H; k++)
        m->W[k] = (float)(wscale * rng_normal(&r));
    for (int i = 0; i < V; i++)
        m->vbias[i] = (float)(0.5 * rng_normal(&r) + bshift);
    for (int j = 0; j < H; j++)
        m->hbias[j] = (float)(0.5 * rng_normal(&r));
    if (vis == RBM_GAUSSIAN)
        for (int i = 0; i < V; i++)
            m->sigma[i] = (float)(0.5 + rng_uniform_d(&r));
    return m;
}

/* -E(v,h) straight from the definition in rbm.h (D = document length). */
static double neg_energy(const rbm *m, const double *v, const double *h,
                         double D)
{
    double e = 0;
    for (int j = 0; j < m->nh; j++)
        e += D * m->hbias[j] * h[j];
    for (int i = 0; i < m->nv; i++) {
        double s = m->vis == RBM_GAUSSIAN ? v[i] / m->sigma[i] : v[i];
        for (int j = 0; j < m->nh; j++)
            e += s * m->W[i * m->nh + j] * h[j];
        if (m->vis == RBM_GAUSSIAN) {
            double d = (v[i] - m->vbias[i]) / m->sigma[i];
            e -= 0.5 * d * d;
        } else {
            e += m->vbias[i] * v[i];
        }
    }
    return e;
}

static void bits(uint64_t x, int n, double *out)
{
    for (int i = 0; i < n; i++)
        out[i] = (double)((x >> i) & 1);
}

/* log sum over v in a finite list and all h of exp(-E), with the list given
 * by a callback filling state k (returns 0 when k is past the end). */
typedef int (*vstate_fn)(const rbm *m, long k, double *v, double *D);

static int vstate_binary(const rbm *m, long k, double *v, double *D)
{
    if (k >= (1L << m->nv))
        return 0;
    bits((uint64_t)k, m->nv, v);
    *D = 1;
    return 1;
}

static int vstate_softmax(const rbm *m, long k, double *v, double *D)
{
    int K = m->softmax_group, G = m->nv / K;
    long n = 1;
    for (int g = 0; g < G; g++)
        n *= K;
    if (k >= n)
        return 0;
    for (int g = 0; g < G; g++) {
        for (int c = 0; c < K; c++)
            v[g * K + c] = 0;
        v[g * K + k % K] = 1;
        k /= K;
    }
    *D = 1;
    return 1;
}

static int g_doclen;   /* replicated softmax: word sequences of this length */
static int vstate_words(const rbm *m, long k, double *v, double *D)
{
    long n = 1;
    for (int w = 0; w < g_doclen; w++)
        n *= m->nv;
    if (k >= n)
        return 0;
    for (int i = 0; i < m->nv; i++)
        v[i] = 0;
    for (int w = 0; w < g_doclen; w++) {
        v[k % m->nv] += 1;
        k /= m->nv;
    }
    *D = g_doclen;
    return 1;
}

static double brute_logz(const rbm *m, vstate_fn next)
{
    double v[64], h[64], D, mx = -INFINITY, s = 0;
    for (int pass = 0; pass < 2; pass++)
        for (long k = 0; next(m, k, v, &D); k++)
            for (uint64_t hi = 0; hi < (1u << m->nh); hi++) {
                bits(hi, m->nh, h);
                double e = neg_energy(m, v, h, D);
                if (pass == 0)
                    mx = e > mx ? e : mx;
                else
                    s += exp(e - mx);
            }
    return mx + log(s);
}

/* Gaussian visible units: a grid integral over v (V = 2) and a sum over h. */
static double brute_logz_gauss(const rbm *m)
{
    const double lo = -12, hi = 12, step = 0.01;
    double v[2], h[64], s = 0;
    for (double a = lo; a <= hi; a += step)
        for (double b = lo; b <= hi; b += step) {
            v[0] = a;
            v[1] = b;
            for (uint64_t k = 0; k < (1u << m->nh); k++) {
                bits(k, m->nh, h);
                s += exp(neg_energy(m, v, h, 1));
            }
        }
    return log(s * step * step);
}

static void test_exact_enumeration(void)
{
    double lz, states;
    char side;
    /* bernoulli, enumerated over h (H < V) and over v (V < H) */
    for (int t = 0; t < 2; t++) {
        int V = t ? 5 : 7, H = t ? 7 : 4;
        rbm *m = random_rbm(V, H, RBM_BERNOULLI, 0, 1.0, 0, 10 + t);
        int e = ais_rbm_exact_logz(m, 1, 1, &lz, &states, &side);
        double ref = brute_logz(m, vstate_binary);
        ok(e == 0 && fabs(lz - ref) < 1e-9 * fabs(ref) + 1e-9 &&
           side == (t ? 'v' : 'h'),
           "exact log Z, bernoulli %dx%d over %c: %.12f vs brute force %.12f",
           V, H, side, lz, ref);
        rbm_free(m);
    }
    /* softmax groups: 3 groups of 3 = 27 visible states vs 2^6 hidden */
    for (int t = 0; t < 2; t++) {
        int H = t ? 6 : 4;
        rbm *m = random_rbm(9, H, RBM_SOFTMAX, 3, 1.0, 0, 20 + t);
        int e = ais_rbm_exact_logz(m, 1, 2, &lz, &states, &side);
        double ref = brute_logz(m, vstate_softmax);
        ok(e == 0 && fabs(lz - ref) < 1e-9 * fabs(ref) + 1e-9 &&
           side == (t ? 'v' : 'h'),
           "exact log Z, softmax 3x3 groups, H=%d over %c: %.12f vs %.12f",
           H, side, lz, ref);
        rbm_free(m);
    }
    /* replicated softmax: all word sequences of length D */
    for (int D = 1; D <= 4; D += 3) {
        rbm *m = random_rbm(4, 3, RBM_REPSOFTMAX, 0, 1.0, 0, 30 + D);
        g_doclen = D;
        int e = ais_rbm_exact_logz(m, D, 1, &lz, NULL, NULL);
        double ref = brute_logz(m, vstate_words);
        ok(e == 0 && fabs(lz - ref) < 1e-9 * fabs(ref) + 1e-9,
           "exact log Z, replicated softmax V=4 H=3 D=%d: %.12f vs %.12f",
           D, lz, ref);
        rbm_free(m);
    }
    /* gaussian: grid integral */
    rbm *m = random_rbm(2, 3, RBM_GAUSSIAN, 0, 0.7, 0, 40);
    int e = ais_rbm_exact_logz(m, 1, 1, &lz, NULL, NULL);
    double ref = brute_logz_gauss(m);
    ok(e == 0 && fabs(lz - ref) < 1e-6,
       "exact log Z, gaussian V=2 H=3 (sigma %.2f, %.2f): %.9f vs grid %.9f",
       m->sigma[0], m->sigma[1], lz, ref);
    rbm_free(m);
    /* refusal */
    m = random_rbm(40, 40, RBM_BERNOULLI, 0, 0.1, 0, 41);
    e = ais_rbm_exact_logz(m, 1, 1, &lz, NULL, NULL);
    ok(e == AIS_E_TOOBIG, "exact log Z refuses 40x40 (%s)", ais_strerror(e));
    rbm_free(m);
}

static void test_log_pstar(void)
{
    const int types[4] = {RBM_BERNOULLI, RBM_GAUSSIAN, RBM_SOFTMAX,
                          RBM_REPSOFTMAX};
    for (int t = 0; t < 4; t++) {
        int V = 6, H = 5, B = 8;
        rbm *m = random_rbm(V, H, types[t], 3, 1.0, 0, 50 + t);
        rng_t r;
        rng_seed(&r, 60 + t);
        float v[8 * 6];
        for (int b = 0; b < B; b++)
            for (int i = 0; i < V; i++) {
                float x = types[t] == RBM_GAUSSIAN ? (float)rng_normal(&r)
                        : types[t] == RBM_REPSOFTMAX ? (float)rng_below(&r, 4)
                        : (float)rng_below(&r, 2);
                if (types[t] == RBM_SOFTMAX)
                    x = (i % 3) == (int)((b + i / 3) % 3);
                v[b * V + i] = x;
            }
        double lp[8], F[8], worst = 0, worst_f = 0;
        ais_rbm_log_pstar(m, B, v, lp);
        rbm_free_energy(m, B, v, F);
        for (int b = 0; b < B; b++) {
            double vd[6], h[5], D = 0, mx = -INFINITY, s = 0;
            for (int i = 0; i < V; i++)
                D += (vd[i] = v[b * V + i]);
            if (types[t] != RBM_REPSOFTMAX)
                D = 1;
            for (int pass = 0; pass < 2; pass++)
                for (uint64_t k = 0; k < (1u << H); k++) {
                    bits(k, H, h);
                    double e = neg_energy(m, vd, h, D);
                    if (pass == 0)
                        mx = e > mx ? e : mx;
                    else
                        s += exp(e - mx);
                }
            double ref = mx + log(s);
            worst = fmax(worst, fabs(lp[b] - ref));
            worst_f = fmax(worst_f, fabs(lp[b] + F[b]));
        }
        ok(worst < 1e-5 && worst_f < 1e-5,
           "log p*(v), %s: max error %.2g vs sum over h, %.2g vs -F",
           rbm_unit_name(types[t]), worst, worst_f);
        rbm_free(m);
    }
}

/* The bm_layer variants of ais.c and rbm.c: the running log-partition
 * agrees with bm_layer_add_logpart (up to rounding), continues the
 * caller's sum, and is the same in double; draws given the input have the
 * conditional's moments. */
static void test_layer_variants(void)
{
    const int types[4] = {RBM_BERNOULLI, RBM_GAUSSIAN, RBM_SOFTMAX,
                          RBM_REPSOFTMAX};
    for (int t = 0; t < 4; t++) {
        int V = 12, B = 5;
        rbm *m = random_rbm(V, 2, types[t], 3, 1.0, 0, 90 + t);
        bm_layer L = rbm_visible_layer(m);
        rng_t r;
        rng_seed(&r, 91 + t);
        float x[5 * 12], d[5] = {3, 1, 7, 2, 5};
        double xd[5 * 12], a[5] = {0}, c[5], e[5];
        for (int k = 0; k < B * V; k++)
            xd[k] = x[k] = (float)rng_normal(&r);
        const float *dd = types[t] == RBM_GAUSSIAN ? NULL : d;
        bm_layer_add_logpart(&L, B, x, dd, a);
        for (int b = 0; b < B; b++)
            c[b] = e[b] = 5.0;
        bm_layer_add_logpart(&L, B, x, dd, c);
        bm_layer_add_logpart_d(&L, B, xd, dd, e);
        double worst = 0;
        int same = 1;
        for (int b = 0; b < B; b++) {
            worst = fmax(worst, fabs(c[b] - 5.0 - a[b]) / fmax(1, fabs(a[b])));
            same &= c[b] == e[b];
        }
        ok(worst < 1e-13 && same, "bm_layer_add_logpart, %s: continues a "
           "running sum (rel. diff %.2g), float and double input alike",
           rbm_unit_name(types[t]), worst);

        /* draws given one row's input, every row its own stream */
        enum { N = 20000 };
        float *xs = malloc(sizeof(float) * N * V), *o = malloc(sizeof(float) * N * V);
        float *ds = malloc(sizeof(float) * N);
        rng_t *rs = malloc(sizeof(rng_t) * N);
        double cdf[12], mean[12] = {0}, var[12] = {0}, err = 0;
        for (int b = 0; b < N; b++) {
            memcpy(xs + (size_t)b * V, x, sizeof(float) * V);
            ds[b] = 4;
            rng_split(&rs[b], &r, (uint64_t)b);
        }
        bm_layer_sample_input(&L, N, xs, types[t] == RBM_REPSOFTMAX ? ds : NULL,
                              o, rs, cdf);
        for (int b = 0; b < N; b++)
            for (int i = 0; i < V; i++)
                mean[i] += o[(size_t)b * V + i] / N;
        for (int b = 0; b < N; b++)
            for (int i = 0; i < V; i++) {
                double u = o[(size_t)b * V + i] - mean[i];
                var[i] += u * u / N;
            }
        memcpy(xs, x, sizeof(float) * V);       /* the exact means */
        bm_layer_mean(&L, 1, xs, types[t] == RBM_REPSOFTMAX ? ds : NULL);
        for (int i = 0; i < V; i++) {
            double sd = types[t] == RBM_GAUSSIAN ? m->sigma[i]
                      : types[t] == RBM_REPSOFTMAX ? 2.0 : 0.5;
            err = fmax(err, fabs(mean[i] - xs[i]) / sd * sqrt((double)N));
            if (types[t] == RBM_GAUSSIAN)
                err = fmax(err, fabs(var[i] / (m->sigma[i] * m->sigma[i]) - 1) *
                                    sqrt(N / 2.0));
        }
        ok(err < 5, "bm_layer_sample_input, %s: means%s within 5 standard "
           "errors (%.2f)", rbm_unit_name(types[t]),
           types[t] == RBM_GAUSSIAN ? " and variances" : "", err);
        free(xs);
        free(o);
        free(ds);
        free(rs);
        rbm_free(m);
    }
}

static void test_schedule(void)
{
    double *b = ais_schedule_default(AIS_DEFAULT_STEPS);
    int good = b && ais_schedule_check(b, AIS_DEFAULT_STEPS) == NULL;
    double e1 = 0, e2 = 0, e3 = 0;
    for (int k = 1; good && k <= AIS_DEFAULT_STEPS; k++) {
        double d = b[k] - b[k - 1];
        if (k <= 500) e1 = fmax(e1, fabs(d - 1e-3));
        else if (k <= 4500) e2 = fmax(e2, fabs(d - 1e-4));
        else e3 = fmax(e3, fabs(d - 1e-5));
    }
    ok(good && b[500] == 0.5 && b[4500] == 0.9 && e1 < 1e-12 && e2 < 1e-12 &&
       e3 < 1e-12, "default schedule: 500 x 1e-3, 4000 x 1e-4, 10000 x 1e-5");
    free(b);
    b = ais_schedule_default(29);   /* 1 : 8 : 20 */
    ok(b && !ais_schedule_check(b, 29) && b[1] == 0.5 && b[9] == 0.9 &&
       b[29] == 1.0, "29-step schedule keeps the three segments");
    free(b);
    b = ais_schedule_default(3);
    ok(b && !ais_schedule_check(b, 3) && b[1] == 0.5 && b[2] == 0.9,
       "3-step schedule: 0, 0.5, 0.9, 1");
    free(b);
    ok(ais_schedule_default(2) == NULL, "2-step default schedule refused");
    double bad1[3] = {0, 0.5, 0.5}, bad2[3] = {0.1, 0.5, 1}, bad3[3] = {0, 0.5, 0.9},
           bad4[3] = {0, 1 - 1e-9, 1};
    ok(ais_schedule_check(bad1, 2) && ais_schedule_check(bad2, 2) &&
       ais_schedule_check(bad3, 2) && ais_schedule_check(bad4, 2),
       "schedule check: repeats, bad ends, float-equal steps refused");
}

static void test_interval(void)
{
    double lw[4] = {1000.0, 1000.0 + log(2.0), 1000.0 + log(3.0),
                    1000.0 + log(6.0)};
    /* w = e^1000 (1, 2, 3, 6): mean 3, std (M-1) sqrt(14/3), s = std/2 */
    ais_estimate e;
    int rc = ais_estimate_from(lw, 4, 5.0, &e);
    double s = sqrt(14.0 / 3.0) / 2;
    ok(rc == 0 && fabs(e.logz - (1005 + log(3.0))) < 1e-12 &&
       fabs(e.logz_high - (1005 + log(3 + 3 * s))) < 1e-12 &&
       isinf(e.logz_low) && e.logz_low < 0,
       "interval: log mean, log(r+3s), -inf when r <= 3s");
    double lw2[3] = {-2000.0, -2000.0 + 1e-3, -2000.0 - 1e-3};
    rc = ais_estimate_from(lw2, 3, 0.0, &e);
    ok(rc == 0 && isfinite(e.logz_low) && e.logz_low < e.logz &&
       e.logz < e.logz_high && fabs(e.logz + 2000) < 1e-3 &&
       fabs(e.log_ess - log(3.0)) < 1e-5,
       "interval: tiny weights, finite low end, ESS ~ M");
}

/* AIS against exact: returns nonzero when within tol and inside. */
static void check_ais(const char *what, const rbm *m, const float *base,
                      int D, int K, double tol)
{
    double *beta = ais_schedule_default(K);
    ais_target *t = ais_rbm_target(m, base, D);
    double logw[100], lz = NAN;
    int M = 100;
    int e1 = ais_rbm_exact_logz(m, D, 1, &lz, NULL, NULL);
    int e2 = t && beta ? ais_run(t, beta, K, M, 7, 2, logw, NULL, NULL) : -1;
    ais_estimate est = {0};
    int e3 = e2 == 0 ? ais_estimate_from(logw, M, t->log_z0, &est) : -1;
    ok(!e1 && !e2 && !e3 && fabs(est.logz - lz) < tol &&
       est.logz_low <= lz && lz <= est.logz_high,
       "AIS %s: %.4f [%.4f, %.4f] vs exact %.4f (diff %+.4f)", what,
       est.logz, est.logz_low, est.logz_high, lz, est.logz - lz);
    ais_target_free(t);
    free(beta);
}

static void test_ais_vs_exact(void)
{
    char what[128];
    for (int s = 0; s < 4; s++) {
        double ws = s < 3 ? 1.0 : 2.0;
        rbm *m = random_rbm(20, 10, RBM_BERNOULLI, 0, ws, -1.0, 100 + s);
        snprintf(what, sizeof what, "bernoulli 20x10 W~N(0,%g^2) #%d", ws, s);
        check_ais(what, m, NULL, 1, 10000, 0.1);
        rbm_free(m);
    }
    {   /* a base-rate base from the visible biases' sigmoid as "data" */
        rbm *m = random_rbm(20, 10, RBM_BERNOULLI, 0, 3.0, -1.0, 110);
        double sums[20];
        float base[20];
        for (int i = 0; i < 20; i++)
            sums[i] = 1000.0 / (1.0 + exp(-m->vbias[i]));
        ok(ais_rbm_base_from_sums(m, sums, 1000, base) == 0 &&
           fabs(base[0] - log((sums[0] + 1) / (1000 - sums[0] + 1))) < 1e-6,
           "base-rate biases: log((s+1)/(n-s+1))");
        check_ais("bernoulli 20x10 W~N(0,3^2), base-rate base", m, base, 1,
                  10000, 0.1);
        rbm_free(m);
    }
    {
        rbm *m = random_rbm(12, 8, RBM_GAUSSIAN, 0, 0.5, 0, 120);
        check_ais("gaussian 12x8, sigma in [0.5, 1.5]", m, NULL, 1, 10000, 0.1);
        float base[12];
        for (int i = 0; i < 12; i++)
            base[i] = 0.3f * (float)i - 1.5f;
        check_ais("gaussian 12x8, shifted base means", m, base, 1, 10000, 0.1);
        rbm_free(m);
    }
    {
        rbm *m = random_rbm(12, 10, RBM_SOFTMAX, 4, 1.0, 0, 130);
        check_ais("softmax 3 groups of 4 x 10", m, NULL, 1, 10000, 0.1);
        rbm_free(m);
    }
    for (int D = 3; D <= 60; D *= 4) {
        rbm *m = random_rbm(30, 8, RBM_REPSOFTMAX, 0, 0.3, 0, 140);
        for (int j = 0; j < 8; j++)
            m->hbias[j] *= 0.1f;
        snprintf(what, sizeof what, "replicated softmax 30x8, D=%d", D);
        check_ais(what, m, NULL, D, 10000, 0.1);
        rbm_free(m);
    }
}

/* W = 0 with 500 hidden units and the base's visible biases equal to the
 * model's: every run's weight is then the same number in exact arithmetic
 * and log Z is closed form, so the estimate shows the rounding error of the
 * float kernels accumulated over 500 hidden units and the whole default
 * schedule. */
static void test_rounding(void)
{
    const int V = 30, H = 500, K = AIS_DEFAULT_STEPS, M = 8;
    rbm *m = random_rbm(V, H, RBM_BERNOULLI, 0, 0.0, 0, 300);
    for (int j = 0; j < H; j++)
        m->hbias[j] *= 8;   /* hidden inputs up to about +-10 */
    double exact = 0;
    for (int i = 0; i < V; i++)
        exact += log1p(exp(m->vbias[i]));
    for (int j = 0; j < H; j++)
        exact += m->hbias[j] > 0 ? m->hbias[j] + log1p(exp(-m->hbias[j]))
                                 : log1p(exp(m->hbias[j]));
    ais_target *t = ais_rbm_target(m, m->vbias, 1);
    double *beta = ais_schedule_default(K), logw[8];
    ais_estimate est = {0};
    int e = ais_run(t, beta, K, M, 9, 2, logw, NULL, NULL);
    if (!e)
        e = ais_estimate_from(logw, M, t->log_z0, &est);
    ok(!e && fabs(est.logz - exact) < 1e-4,
       "W=0, H=500, 14500 betas: %.6f vs closed form %.6f (diff %.1e)",
       est.logz, exact, est.logz - exact);
    free(beta);
    ais_target_free(t);
    rbm_free(m);
}

static void test_determinism(void)
{
    rbm *m = random_rbm(20, 10, RBM_BERNOULLI, 0, 1.0, 0, 200);
    ais_target *t = ais_rbm_target(m, NULL, 1);
    double *beta = ais_schedule_default(300);
    double a[10], b[10], c[10];
    ais_run(t, beta, 300, 10, 5, 1, a, NULL, NULL);
    ais_run(t, beta, 300, 10, 5, 1, b, NULL, NULL);
    ais_run(t, beta, 300, 10, 6, 1, c, NULL, NULL);
    ok(memcmp(a, b, sizeof a) == 0 && memcmp(a, c, sizeof a) != 0,
       "same seed, same log weights; another seed, others");
    /* runs own their random streams: grouping them differently among
     * threads gives the same weights - up to the rounding of the products,
     * which some BLAS kernels sum in an order that depends on the number
     * of rows (OpenBLAS 0.3.21 SkylakeX: differences of 5e-7 on log
     * weights of 20, the same draws) */
    double d[10], e[10], worst = 0;
    ais_run(t, beta, 300, 10, 5, 3, d, NULL, NULL);
    ais_run(t, beta, 300, 10, 5, 7, e, NULL, NULL);
    for (int i = 0; i < 10; i++) {
        worst = fmax(worst, fabs(d[i] - a[i]));
        worst = fmax(worst, fabs(e[i] - a[i]));
    }
    ok(worst < 1e-5, "1, 3 and 7 threads give the same log weights "
       "(max abs difference %.2g)", worst);
    free(beta);
    ais_target_free(t);
    rbm_free(m);
}

int main(void)
{
    gemm_init(1);
    test_schedule();
    test_interval();
    test_exact_enumeration();
    test_log_pstar();
    test_layer_variants();
    test_ais_vs_exact();
    test_rounding();
    test_determinism();
    return tap_done();
}
