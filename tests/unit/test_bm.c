/* test_bm.c - Boltzmann networks (lib/bm_layer.h, lib/bm.h, lib/ais_bm.h)
 * against independent brute-force references written here from the energy
 * of the headers:
 *     -E = sum_l own_l(x_l) + sum_edges s_a(x_a)' W_e s_b(x_b)
 * with own / s of bm_layer.h (d = the document length of a
 * replicated-softmax neighbour; replicated softmax = D words as a sequence).
 * The reference enumerates every joint state of every layer (sequences of
 * D words for replicated softmax) in double; gaussian layers are integrated
 * numerically unit by unit (trapezoid rule).
 *   1. bm_layer: means, log-partitions, own terms, checks, entropies,
 *      enumeration and draws of every unit type.
 *   2. networks (8-5-4 DBM, 6-4-3-3 chain, a multimodal tree, gaussian
 *      layers): log p* with either colour summed, log p of a whole state,
 *      exact log Z.
 *   3. Gibbs: unit marginals and a chi-square of the visible states against
 *      the exact distribution, free and with a layer clamped.
 *   4. mean-field: convergence, fixed point, variational bound.
 *   5. AIS against the exact log Z (either colour summed, non-zero bases,
 *      gaussian layers summed or kept).
 *   6. model file round trip.
 *   7. DBM training: the exact gradient (frozen parameters), likelihood
 *      increase, checkpoint resume, thread determinism.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ais.h"
#include "ais_bm.h"
#include "bm.h"
#include "bm_layer.h"
#include "gemm.h"
#include "rng.h"
#include "tz.h"

#include "tap.h"

static void *xcalloc(size_t n, size_t s)
{
    void *p = calloc(n ? n : 1, s);
    if (!p)
        abort();
    return p;
}

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* running log-sum-exp */
typedef struct { double mx, s; } lsacc;
static void ls_init(lsacc *a) { a->mx = -INFINITY; a->s = 0; }
static void ls_add(lsacc *a, double v)
{
    if (v > a->mx) {
        a->s = a->s * exp(a->mx - v) + 1;
        a->mx = v;
    } else {
        a->s += exp(v - a->mx);
    }
}
static double ls_get(const lsacc *a) { return a->mx + log(a->s); }

/* ======================================================================
 * The reference
 * ====================================================================== */

/* Every state of a layer (n doubles each): bernoulli bit i of k; softmax
 * one category per group; replicated softmax every sequence of D words
 * (as counts, so a count vector appears once per sequence). */
typedef struct { int S, n; double *v; } tab;

static tab ref_tab(const bm_layer *L, int D)
{
    tab t = {0, L->n, NULL};
    int n = L->n;
    if (L->unit == BM_BERNOULLI) {
        t.S = 1 << n;
        t.v = xcalloc((size_t)t.S * n, sizeof *t.v);
        for (int k = 0; k < t.S; k++)
            for (int i = 0; i < n; i++)
                t.v[(size_t)k * n + i] = (k >> i) & 1;
    } else if (L->unit == BM_SOFTMAX) {
        int K = L->group, G = n / K;
        t.S = 1;
        for (int g = 0; g < G; g++)
            t.S *= K;
        t.v = xcalloc((size_t)t.S * n, sizeof *t.v);
        for (int k = 0; k < t.S; k++) {
            int kk = k;
            for (int g = 0; g < G; g++) {
                t.v[(size_t)k * n + g * K + kk % K] = 1;
                kk /= K;
            }
        }
    } else if (L->unit == BM_REPSOFTMAX) {
        t.S = 1;
        for (int w = 0; w < D; w++)
            t.S *= n;
        t.v = xcalloc((size_t)t.S * n, sizeof *t.v);
        for (int k = 0; k < t.S; k++) {
            int kk = k;
            for (int w = 0; w < D; w++) {
                t.v[(size_t)k * n + kk % n] += 1;
                kk /= n;
            }
        }
    }
    return t;
}

/* replicated-softmax neighbours, from the edges */
static void ref_dsrc(const bm_net *net, int *ds)
{
    for (int l = 0; l < net->nl; l++)
        ds[l] = -1;
    for (int e = 0; e < net->ne; e++) {
        int a = net->E[e].a, b = net->E[e].b;
        if (net->L[a].unit == BM_REPSOFTMAX)
            ds[b] = a;
        if (net->L[b].unit == BM_REPSOFTMAX)
            ds[a] = b;
    }
}

static double ref_sum(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    return s;
}

/* own(v) of the table in bm_layer.h */
static double ref_own(const bm_layer *L, const double *v, double d)
{
    double f = 0;
    for (int i = 0; i < L->n; i++) {
        if (L->unit == BM_GAUSSIAN) {
            double t = (v[i] - L->bias[i]) / L->sigma[i];
            f -= 0.5 * t * t;
        } else if (L->unit == BM_REPSOFTMAX) {
            f += L->bias[i] * v[i];
        } else {
            f += d * L->bias[i] * v[i];
        }
    }
    return f;
}

static double ref_s(const bm_layer *L, const double *v, int i)
{
    return L->unit == BM_GAUSSIAN ? v[i] / L->sigma[i] : v[i];
}

static double ref_d(const bm_net *net, const int *ds, double *const *x, int l)
{
    return ds[l] >= 0 ? ref_sum(x[ds[l]], net->L[ds[l]].n) : 1.0;
}

static double ref_negE(const bm_net *net, const int *ds, double *const *x)
{
    double e = 0;
    for (int l = 0; l < net->nl; l++)
        e += ref_own(&net->L[l], x[l], ref_d(net, ds, x, l));
    for (int k = 0; k < net->ne; k++) {
        int a = net->E[k].a, b = net->E[k].b;
        int na = net->L[a].n, nb = net->L[b].n;
        const float *W = net->E[k].W;
        for (int i = 0; i < na; i++) {
            double si = ref_s(&net->L[a], x[a], i);
            if (si == 0)
                continue;
            double r = 0;
            for (int j = 0; j < nb; j++)
                r += W[i * nb + j] * ref_s(&net->L[b], x[b], j);
            e += si * r;
        }
    }
    return e;
}

/* in (n_l) <- the input of layer l from its neighbours' scaled states */
static void ref_input(const bm_net *net, double *const *x, int l, double *in)
{
    int n = net->L[l].n;
    for (int i = 0; i < n; i++)
        in[i] = 0;
    for (int k = 0; k < net->ne; k++) {
        int a = net->E[k].a, b = net->E[k].b;
        int na = net->L[a].n, nb = net->L[b].n;
        const float *W = net->E[k].W;
        if (l == b)
            for (int j = 0; j < nb; j++)
                for (int i = 0; i < na; i++)
                    in[j] += ref_s(&net->L[a], x[a], i) * W[i * nb + j];
        else if (l == a)
            for (int i = 0; i < na; i++)
                for (int j = 0; j < nb; j++)
                    in[i] += W[i * nb + j] * ref_s(&net->L[b], x[b], j);
    }
}

/* log and mean of int exp(-(v-c)^2/(2 sg^2) + v x/sg) dv, trapezoid rule
 * on +-12 sg around the peak (spectrally accurate for a gaussian) */
static void ref_gauss_int(double c, double sg, double x, double *logI,
                          double *mean)
{
    const int N = 1200;
    double m = c + sg * x, h = 24 * sg / N;
    double fp = -(m - c) * (m - c) / (2 * sg * sg) + m * x / sg;
    double s0 = 0, s1 = 0;
    for (int k = 0; k <= N; k++) {
        double v = m - 12 * sg + k * h;
        double f = exp(-(v - c) * (v - c) / (2 * sg * sg) + v * x / sg - fp);
        double wt = (k == 0 || k == N) ? 0.5 : 1.0;
        s0 += wt * f;
        s1 += wt * f * v;
    }
    if (logI)
        *logI = fp + log(s0 * h);
    if (mean)
        *mean = s1 / s0;
}

typedef void (*visit_fn)(void *u, double *const *x, const int *k, double e);

/* log sum over every joint state of the layers in `mask` of exp(-E), the
 * other layers fixed at x[l]; gaussian layers in the mask are integrated
 * numerically (their neighbours must not be gaussian layers of the mask);
 * replicated-softmax layers of the mask take every sequence of D words.
 * visit (may be NULL) sees every state with its -E (with gaussian layers
 * of the mask integrated out: x holds zeros for them); k[l] is the state's
 * index in ref_tab(l). */
static double ref_enum(const bm_net *net, double **x, unsigned mask, int D,
                       visit_fn visit, void *u)
{
    int ds[BM_MAX_LAYERS], fl[BM_MAX_LAYERS], gl[BM_MAX_LAYERS], nf = 0,
        ng = 0, k[BM_MAX_LAYERS] = {0};
    tab t[BM_MAX_LAYERS];
    double *save[BM_MAX_LAYERS], *in = xcalloc(64, sizeof *in);
    ref_dsrc(net, ds);
    for (int l = 0; l < net->nl; l++) {
        save[l] = x[l];
        if (!(mask & (1u << l)))
            continue;
        if (net->L[l].unit == BM_GAUSSIAN) {
            gl[ng++] = l;
            x[l] = xcalloc((size_t)net->L[l].n, sizeof(double));
        } else {
            t[l] = ref_tab(&net->L[l], D);
            fl[nf++] = l;
        }
    }
    lsacc acc;
    ls_init(&acc);
    for (;;) {
        for (int f = 0; f < nf; f++)
            x[fl[f]] = t[fl[f]].v + (size_t)k[fl[f]] * net->L[fl[f]].n;
        double e = ref_negE(net, ds, x);
        for (int g = 0; g < ng; g++) {
            const bm_layer *L = &net->L[gl[g]];
            ref_input(net, x, gl[g], in);
            for (int i = 0; i < L->n; i++) {
                double lI;
                /* -E above has own(0) = -c^2/(2 sg^2) for this unit */
                e += L->bias[i] * L->bias[i] / (2.0 * L->sigma[i] * L->sigma[i]);
                ref_gauss_int(L->bias[i], L->sigma[i], in[i], &lI, NULL);
                e += lI;
            }
        }
        if (visit)
            visit(u, x, k, e);
        ls_add(&acc, e);
        int f = 0;
        for (; f < nf; f++) {
            if (++k[fl[f]] < t[fl[f]].S)
                break;
            k[fl[f]] = 0;
        }
        if (f == nf)
            break;
    }
    for (int f = 0; f < nf; f++)
        free(t[fl[f]].v);
    for (int g = 0; g < ng; g++)
        free(x[gl[g]]);
    for (int l = 0; l < net->nl; l++)
        x[l] = save[l];
    free(in);
    return ls_get(&acc);
}

static unsigned all_mask(const bm_net *net) { return (1u << net->nl) - 1; }

static double ref_logz(const bm_net *net, int D)
{
    double *x[BM_MAX_LAYERS] = {0};
    return ref_enum(net, x, all_mask(net), D, NULL, NULL);
}

/* exact marginals (and the distribution of the states of layer vl) */
typedef struct {
    const bm_net *net;
    double logz;
    int nl, n[BM_MAX_LAYERS], vl;
    double *marg[BM_MAX_LAYERS];
    double *pv;
} margacc;

static void visit_marg(void *u, double *const *x, const int *k, double e)
{
    margacc *m = u;
    double p = exp(e - m->logz), in[64];
    for (int l = 0; l < m->nl; l++) {
        const bm_layer *L = &m->net->L[l];
        if (L->unit == BM_GAUSSIAN) {
            /* integrated out: its conditional mean c + sigma x */
            ref_input(m->net, x, l, in);
            for (int i = 0; i < m->n[l]; i++)
                m->marg[l][i] += p * (L->bias[i] + L->sigma[i] * in[i]);
            continue;
        }
        for (int i = 0; i < m->n[l]; i++)
            m->marg[l][i] += p * x[l][i];
    }
    if (m->pv)
        m->pv[k[m->vl]] += p;
}

/* ======================================================================
 * Networks for the tests
 * ====================================================================== */

static const char *const lname[] = {"v", "h1", "h2", "h3", "h4", "h5"};

static bm_net *mk_chain(int nl, const int *n, const int *unit)
{
    bm_layer_spec sp[BM_MAX_LAYERS];
    int ed[BM_MAX_LAYERS][2];
    for (int l = 0; l < nl; l++)
        sp[l] = (bm_layer_spec){lname[l], unit ? unit[l] : BM_BERNOULLI,
                                n[l], 0, 0};
    for (int e = 0; e < nl - 1; e++) {
        ed[e][0] = e;
        ed[e][1] = e + 1;
    }
    const char *why = NULL;
    bm_net *net = bm_new(nl, sp, (const int (*)[2])ed, &why);
    if (!net) {
        printf("# bm_new: %s\n", why);
        abort();
    }
    return net;
}

/* The multimodal tree: layers in an order other than the tree's, edges
 * given with either orientation:
 *   image(5) - h1(3) - top(3) - h2(3) - text(4), label(3 softmax) - top. */
enum { T_IMAGE, T_TEXT, T_H1, T_H2, T_TOP, T_LABEL, T_NL };
static bm_net *mk_tree(int text_unit, int text_group)
{
    bm_layer_spec sp[T_NL] = {
        {"image", BM_BERNOULLI, 5, 0, 1},
        {"text", text_unit, 4, text_group, 1},
        {"h1", BM_BERNOULLI, 3, 0, 0},
        {"h2", BM_BERNOULLI, 3, 0, 0},
        {"top", BM_BERNOULLI, 3, 0, 0},
        {"label", BM_SOFTMAX, 3, 3, 1},
    };
    const int ed[T_NL - 1][2] = {
        {T_H1, T_IMAGE}, {T_TOP, T_H1}, {T_H2, T_TOP}, {T_TEXT, T_H2},
        {T_TOP, T_LABEL}};
    const char *why = NULL;
    bm_net *net = bm_new(T_NL, sp, ed, &why);
    if (!net) {
        printf("# bm_new: %s\n", why);
        abort();
    }
    return net;
}

/* W ~ N(0, wsd^2); biases N(0, 0.5^2) (softmax-type N(0, 0.8^2)); sigma
 * uniform in [0.5, 1.5] */
static void randomize(bm_net *net, double wsd, rng_t *r)
{
    for (int l = 0; l < net->nl; l++) {
        bm_layer *L = &net->L[l];
        double bsd = (L->unit == BM_SOFTMAX || L->unit == BM_REPSOFTMAX)
                     ? 0.8 : 0.5;
        for (int i = 0; i < L->n; i++) {
            L->bias[i] = (float)(bsd * rng_normal(r));
            if (L->sigma)
                L->sigma[i] = (float)(0.5 + rng_uniform_d(r));
        }
    }
    for (int e = 0; e < net->ne; e++) {
        size_t n = (size_t)net->L[net->E[e].a].n * net->L[net->E[e].b].n;
        for (size_t i = 0; i < n; i++)
            net->E[e].W[i] = (float)(wsd * rng_normal(r));
    }
}

/* a random state of layer L into v (n doubles): D words for replicated
 * softmax, gaussian around the bias */
static void rand_state(const bm_layer *L, int D, double *v, rng_t *r)
{
    int n = L->n;
    for (int i = 0; i < n; i++)
        v[i] = 0;
    switch (L->unit) {
    case BM_BERNOULLI:
        for (int i = 0; i < n; i++)
            v[i] = rng_uniform_d(r) < 0.5;
        break;
    case BM_GAUSSIAN:
        for (int i = 0; i < n; i++)
            v[i] = L->bias[i] + 1.5 * L->sigma[i] * rng_normal(r);
        break;
    case BM_SOFTMAX:
        for (int g = 0; g < n; g += L->group)
            v[g + (int)rng_below(r, (uint64_t)L->group)] = 1;
        break;
    case BM_REPSOFTMAX:
        for (int w = 0; w < D; w++)
            v[rng_below(r, (uint64_t)n)] += 1;
        break;
    }
}

/* rows [r0, r0 + B) of layer l of st <- v (B, n) doubles (float-rounded) */
static void put_rows(const bm_net *net, bm_state *st, int l, int r0, int B,
                     const double *v)
{
    int n = net->L[l].n;
    for (size_t i = 0; i < (size_t)B * n; i++)
        st->x[l][(size_t)r0 * n + i] = (float)v[i];
    bm_state_sync(net, st, l, r0, B);
}

/* v (n) doubles <- row r of layer l of st */
static void get_row(const bm_net *net, const bm_state *st, int l, int r,
                    double *v)
{
    int n = net->L[l].n;
    for (int i = 0; i < n; i++)
        v[i] = st->x[l][(size_t)r * n + i];
}

/* ======================================================================
 * 1. bm_layer
 * ====================================================================== */

typedef struct {
    bm_layer L;
    float bias[12], sigma[12];
} tlayer;

static void mk_layer(tlayer *t, int unit, int n, int K, rng_t *r)
{
    memset(t, 0, sizeof *t);
    snprintf(t->L.name, sizeof t->L.name, "t");
    t->L.unit = unit;
    t->L.n = n;
    t->L.group = unit == BM_SOFTMAX ? K : unit == BM_REPSOFTMAX ? n : 1;
    t->L.bias = t->bias;
    t->L.sigma = unit == BM_GAUSSIAN ? t->sigma : NULL;
    for (int i = 0; i < n; i++) {
        t->bias[i] = (float)(0.8 * rng_normal(r));
        t->sigma[i] = (float)(0.5 + rng_uniform_d(r));
    }
}

/* conditional mean and log-partition of one row by brute force (or
 * numerical integration for gaussian units) */
static void ref_layer_cond(const bm_layer *L, const float *x, double d,
                           double *mean, double *logpart)
{
    int n = L->n;
    if (L->unit == BM_GAUSSIAN) {
        *logpart = 0;
        for (int i = 0; i < n; i++) {
            double lI;
            ref_gauss_int(L->bias[i], L->sigma[i], x[i], &lI, &mean[i]);
            *logpart += lI;
        }
        return;
    }
    tab t = ref_tab(L, (int)lrint(d));
    lsacc a;
    ls_init(&a);
    double *e = xcalloc((size_t)t.S, sizeof *e);
    for (int k = 0; k < t.S; k++) {
        const double *v = t.v + (size_t)k * n;
        e[k] = ref_own(L, v, d);
        for (int i = 0; i < n; i++)
            e[k] += v[i] * x[i];
        ls_add(&a, e[k]);
    }
    *logpart = ls_get(&a);
    for (int i = 0; i < n; i++)
        mean[i] = 0;
    for (int k = 0; k < t.S; k++)
        for (int i = 0; i < n; i++)
            mean[i] += exp(e[k] - *logpart) * t.v[(size_t)k * n + i];
    free(e);
    free(t.v);
}

static void test_layer_cond(void)
{
    rng_t r;
    rng_seed(&r, 101);
    struct { int unit, n, K; const char *what; float d[3]; } cs[] = {
        {BM_BERNOULLI, 6, 1, "bernoulli", {1, 2.5f, 0.5f}},
        {BM_GAUSSIAN, 5, 1, "gaussian (sigma in [0.5,1.5])", {1, 2, 3}},
        {BM_SOFTMAX, 6, 3, "softmax groups of 3", {1, 2.5f, 0.5f}},
        {BM_SOFTMAX, 4, 4, "softmax one group of 4", {1, 3, 2}},
        {BM_REPSOFTMAX, 4, 4, "replicated softmax", {1, 2, 3}},
        {BM_BERNOULLI, 9, 1, "bernoulli, 9 units (vector tail)", {1, 1, 1}},
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        tlayer t;
        mk_layer(&t, cs[c].unit, cs[c].n, cs[c].K, &r);
        const bm_layer *L = &t.L;
        int n = L->n, B = 3;
        ok(bm_layer_validate(L) == NULL, "%s: layer validates", cs[c].what);
        float x[3 * 12], m[3 * 12];
        for (int i = 0; i < B * n; i++)
            x[i] = m[i] = (float)(1.5 * rng_normal(&r));
        for (int pass = 0; pass < 2; pass++) {
            /* pass 0: d = NULL (1); pass 1: per-row d */
            const float *d = pass ? cs[c].d : NULL;
            for (int i = 0; i < B * n; i++)
                m[i] = x[i];
            bm_layer_mean(L, B, m, d);
            double out[3] = {0.25, -1, 2}, emax = 0, lmax = 0;
            bm_layer_add_logpart(L, B, x, d, out);
            out[0] -= 0.25;
            out[1] += 1;
            out[2] -= 2;
            for (int b = 0; b < B; b++) {
                double mean[12], lp;
                ref_layer_cond(L, x + b * n, d ? d[b] : 1.0, mean, &lp);
                for (int i = 0; i < n; i++)
                    emax = fmax(emax, fabs(m[b * n + i] - mean[i]));
                lmax = fmax(lmax, fabs(out[b] - lp) / fmax(1, fabs(lp)));
            }
            ok(emax < 1e-5, "%s, d %s: bm_layer_mean = brute-force "
               "conditional mean (max err %.1e)", cs[c].what,
               pass ? "per row" : "NULL", emax);
            ok(lmax < 1e-9, "%s, d %s: bm_layer_add_logpart adds the "
               "brute-force log-partition (max rel err %.1e)", cs[c].what,
               pass ? "per row" : "NULL", lmax);
        }
        /* own term of random valid states */
        double emax = 0;
        for (int rep = 0; rep < 5; rep++) {
            double v[3][12], out[3] = {1, 1, 1};
            float vf[3 * 12];
            for (int b = 0; b < B; b++) {
                rand_state(L, (int)cs[c].d[b], v[b], &r);
                for (int i = 0; i < n; i++)
                    vf[b * n + i] = (float)v[b][i];
            }
            bm_layer_add_own(L, B, vf, cs[c].d, out);
            for (int b = 0; b < B; b++) {
                double vv[12];
                for (int i = 0; i < n; i++)
                    vv[i] = vf[b * n + i];
                double ref = 1 + ref_own(L, vv, cs[c].d[b]);
                emax = fmax(emax, fabs(out[b] - ref) / fmax(1, fabs(ref)));
            }
        }
        ok(emax < 1e-12, "%s: bm_layer_add_own adds own(v) with d "
           "(max rel err %.1e)", cs[c].what, emax);
    }
}

static void test_layer_misc(void)
{
    rng_t r;
    rng_seed(&r, 102);
    tlayer tb, tg, ts, tr;
    mk_layer(&tb, BM_BERNOULLI, 3, 1, &r);
    mk_layer(&tg, BM_GAUSSIAN, 3, 1, &r);
    mk_layer(&ts, BM_SOFTMAX, 6, 3, &r);
    mk_layer(&tr, BM_REPSOFTMAX, 3, 3, &r);
    const float nan = NAN;

    /* checks */
    struct { const bm_layer *L; int B; float v[6]; int real;
             const char *want; } ck[] = {
        {&tb.L, 1, {0, 1, 1}, 0, NULL},
        {&tb.L, 1, {0, 0.5f, 1}, 0, "non-binary value for bernoulli units"},
        {&tb.L, 1, {0, 0.5f, 1}, 1, NULL},
        {&tb.L, 1, {0, 1.5f, 1}, 1, "value outside [0, 1] for bernoulli units"},
        {&tb.L, 1, {-0.1f, 0, 1}, 1, "value outside [0, 1] for bernoulli units"},
        {&tb.L, 1, {0, nan, 1}, 1, "NaN or infinite value"},
        {&tg.L, 1, {-3, 100, 0.25f}, 0, NULL},
        {&tg.L, 1, {0, INFINITY, 1}, 0, "NaN or infinite value"},
        {&ts.L, 1, {0, 1, 0, 1, 0, 0}, 0, NULL},
        {&ts.L, 1, {0, 1, 1, 1, 0, 0}, 0, "softmax group is not one-hot"},
        {&ts.L, 1, {0, 0, 0, 1, 0, 0}, 0, "softmax group is not one-hot"},
        {&ts.L, 1, {0.5f, 0.5f, 0, 0.2f, 0.3f, 0.5f}, 1, NULL},
        {&ts.L, 1, {0.5f, 0.5f, 0, 0.2f, 0.3f, 0.5f}, 0,
         "softmax group is not one-hot"},
        {&ts.L, 1, {0.5f, 0.6f, 0, 1, 0, 0}, 1, "softmax group is not one-hot"},
        {&ts.L, 1, {-0.5f, 1.5f, 0, 1, 0, 0}, 1, "softmax group is not one-hot"},
        {&tr.L, 2, {0, 3, 1, 2, 0, 7}, 0, NULL},
        {&tr.L, 2, {0, 3, 1, 2, -1, 7}, 0,
         "negative count for replicated-softmax units"},
        {&tr.L, 2, {0, 3, 1.5f, 2, 0, 7}, 1,
         "non-integral count for replicated-softmax units"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof ck / sizeof ck[0]; i++) {
        const char *m = bm_layer_check(ck[i].L, ck[i].B, ck[i].v, ck[i].real);
        if (!((m == NULL && ck[i].want == NULL) ||
              (m && ck[i].want && strcmp(m, ck[i].want) == 0))) {
            printf("# check case %zu: got '%s', want '%s'\n", i,
                   m ? m : "(null)", ck[i].want ? ck[i].want : "(null)");
            bad++;
        }
    }
    ok(bad == 0, "bm_layer_check: %zu cases give the documented messages",
       sizeof ck / sizeof ck[0]);

    /* validate */
    tlayer tv = ts;
    tv.L.group = 4;
    int vbad = bm_layer_validate(&tv.L) == NULL;
    tv = tb;
    tv.L.sigma = tv.sigma;
    vbad += bm_layer_validate(&tv.L) == NULL;
    tv = tr;
    tv.L.group = 1;
    vbad += bm_layer_validate(&tv.L) == NULL;
    ok(vbad == 0, "bm_layer_validate refuses a bad group, sigma on "
       "bernoulli units, a replicated-softmax group != n");

    /* entropies */
    float mb[2 * 3] = {0.3f, 0, 1, 0.5f, 0.999f, 0.01f};
    float ms[2 * 6] = {0.2f, 0.3f, 0.5f, 0, 1, 0,
                       1.0f / 3, 1.0f / 3, 1.0f / 3, 0.6f, 0, 0.4f};
    double hb[2] = {0.5, 0.5}, hs[2] = {0, 0}, rb[2] = {0, 0}, rs[2] = {0, 0};
    int eb = bm_layer_add_entropy(&tb.L, 2, mb, hb);
    int es = bm_layer_add_entropy(&ts.L, 2, ms, hs);
    for (int b = 0; b < 2; b++) {
        for (int i = 0; i < 3; i++) {
            double p = mb[b * 3 + i];
            rb[b] -= (p > 0 ? p * log(p) : 0) + (p < 1 ? (1 - p) * log(1 - p) : 0);
        }
        for (int i = 0; i < 6; i++) {
            double p = ms[b * 6 + i];
            rs[b] -= p > 0 ? p * log(p) : 0;
        }
    }
    double he = fmax(fmax(fabs(hb[0] - 0.5 - rb[0]), fabs(hb[1] - 0.5 - rb[1])),
                     fmax(fabs(hs[0] - rs[0]), fabs(hs[1] - rs[1])));
    ok(eb == 0 && es == 0 && he < 1e-12,
       "bm_layer_add_entropy: bernoulli and softmax entropies, 0 and 1 "
       "included (max err %.1e)", he);
    double hg[1] = {7}, hr[1] = {7};
    int eg = bm_layer_add_entropy(&tg.L, 1, mb, hg);
    int er = bm_layer_add_entropy(&tr.L, 1, mb, hr);
    ok(eg == BM_E_UNSUPPORTED && er == BM_E_UNSUPPORTED && hg[0] == 7 &&
       hr[0] == 7, "bm_layer_add_entropy: BM_E_UNSUPPORTED for gaussian and "
       "replicated softmax, out untouched");

    /* enumeration */
    struct { int unit, n, K; double S; } en[] = {
        {BM_BERNOULLI, 5, 1, 32}, {BM_SOFTMAX, 6, 3, 9},
        {BM_SOFTMAX, 6, 2, 8}, {BM_SOFTMAX, 4, 1, 1}, {BM_BERNOULLI, 1, 1, 2},
    };
    for (size_t c = 0; c < sizeof en / sizeof en[0]; c++) {
        tlayer t;
        mk_layer(&t, en[c].unit, en[c].n, en[c].K, &r);
        double S = bm_layer_states(&t.L);
        int n = t.L.n, nS = (int)S, valid = 1, distinct = 1;
        float *v = xcalloc((size_t)(nS > 0 ? nS : 1) * n, sizeof *v);
        for (int k = 0; k < nS; k++) {
            bm_layer_state(&t.L, (uint64_t)k, v + (size_t)k * n);
            const float *s = v + (size_t)k * n;
            if (en[c].unit == BM_BERNOULLI) {
                for (int i = 0; i < n; i++)
                    valid &= s[i] == 0 || s[i] == 1;
            } else {
                for (int g = 0; g < n; g += en[c].K) {
                    int ones = 0, zeros = 0;
                    for (int i = 0; i < en[c].K; i++) {
                        ones += s[g + i] == 1;
                        zeros += s[g + i] == 0;
                    }
                    valid &= ones == 1 && zeros == en[c].K - 1;
                }
            }
            for (int j = 0; j < k; j++)
                if (!memcmp(v + (size_t)j * n, s, (size_t)n * sizeof *s))
                    distinct = 0;
        }
        ok(S == en[c].S && valid && distinct, "bm_layer_state: %s n=%d K=%d: "
           "%.0f states (want %.0f), all valid, all distinct",
           bm_unit_name(en[c].unit), en[c].n, en[c].K, S, en[c].S);
        free(v);
    }
    ok(bm_layer_states(&tg.L) == 0 && bm_layer_states(&tr.L) == 0,
       "bm_layer_states: 0 for gaussian and replicated softmax");

    /* scale and doclen */
    float vv[6] = {1, 2, 3, 0, 4, 1}, sc[6], D[2];
    bm_layer_scale(&tg.L, 2, vv, sc);
    double se = 0;
    for (int i = 0; i < 6; i++)
        se = fmax(se, fabs(sc[i] - vv[i] / tg.sigma[i % 3]));
    bm_layer_doclen(&tr.L, 2, vv, D);
    float D1[2];
    bm_layer_doclen(&tb.L, 2, vv, D1);
    ok(se < 1e-6 && D[0] == 6 && D[1] == 5 && D1[0] == 1 && D1[1] == 1,
       "bm_layer_scale (v / sigma) and bm_layer_doclen");

    /* initial biases */
    {
        float mb3[3] = {0.2f, 0, 1}, mg3[3] = {1.5f, -2, 0.25f};
        float ms6[6] = {2, 1, 1, 0, 0, 0}, mr3[3] = {0, 3, 1};
        tlayer ib = tb, ig = tg, is = ts, ir = tr;
        ib.L.bias = ib.bias;     /* the copies' own arrays */
        ig.L.bias = ig.bias;
        ig.L.sigma = ig.sigma;
        is.L.bias = is.bias;
        ir.L.bias = ir.bias;
        bm_layer_init_bias(&ib.L, mb3);
        bm_layer_init_bias(&ig.L, mg3);
        bm_layer_init_bias(&is.L, ms6);
        bm_layer_init_bias(&ir.L, mr3);
        double want[4][6] = {
            {log(0.2 / 0.8), log(1e-3 / (1 - 1e-3)), log((1 - 1e-3) / 1e-3)},
            {1.5, -2, 0.25},
            {log(0.5), log(0.25), log(0.25), log(1.0 / 3), log(1.0 / 3),
             log(1.0 / 3)},
            {log(1e-6), log(0.75), log(0.25)}};
        const float *got[4] = {ib.bias, ig.bias, is.bias, ir.bias};
        int nn[4] = {3, 3, 6, 3};
        double ie = 0;
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < nn[k]; i++)
                ie = fmax(ie, fabs(got[k][i] - want[k][i]));
        ok(ie < 1e-5, "bm_layer_init_bias: log-odds clipped to [1e-3, "
           "1-1e-3], means, log frequencies (at least 1e-6; 1/K for an "
           "empty group) (max err %.1e)", ie);
    }
    ok(bm_unit_parse("replicated-softmax") == BM_REPSOFTMAX &&
       bm_unit_parse("gaussian") == BM_GAUSSIAN &&
       bm_unit_parse("softmax") == BM_SOFTMAX && bm_unit_parse("x") == -1 &&
       !strcmp(bm_unit_name(BM_BERNOULLI), "bernoulli") &&
       !strcmp(bm_unit_name(9), "?"), "bm_unit_name / bm_unit_parse");

    /* draws: means of 20000 rows against the mean the draw is from */
    const int N = 20000;
    struct { tlayer *t; const char *what; } dr[] = {
        {&tb, "bernoulli"}, {&tg, "gaussian"}, {&ts, "softmax"},
        {&tr, "replicated softmax (4 words)"}};
    for (size_t c = 0; c < 4; c++) {
        const bm_layer *L = &dr[c].t->L;
        int n = L->n;
        float *mean = xcalloc((size_t)N * n, sizeof *mean);
        float *out = xcalloc((size_t)N * n, sizeof *out);
        float *d = xcalloc((size_t)N, sizeof *d);
        double cdf[12], s1[12] = {0}, s2[12] = {0}, mu[12];
        for (int i = 0; i < n; i++)
            mu[i] = 0.2 * rng_normal(&r);
        for (int b = 0; b < N; b++) {
            for (int i = 0; i < n; i++)
                mean[(size_t)b * n + i] = (float)mu[i];
            d[b] = 4;
        }
        bm_layer_mean(L, N, mean, d);
        bm_layer_sample(L, N, mean, d, out, &r, cdf);
        int valid = bm_layer_check(L, N, out, 0) == NULL;
        if (L->unit == BM_REPSOFTMAX)
            for (int b = 0; b < N; b++) {
                double s = 0;
                for (int i = 0; i < n; i++)
                    s += out[(size_t)b * n + i];
                valid &= s == 4;
            }
        for (int b = 0; b < N; b++)
            for (int i = 0; i < n; i++) {
                double o = out[(size_t)b * n + i];
                s1[i] += o / N;
                s2[i] += o * o / N;
            }
        double z = 0;
        for (int i = 0; i < n; i++) {
            double m = mean[i], var = s2[i] - s1[i] * s1[i];
            z = fmax(z, fabs(s1[i] - m) / sqrt(var / N + 1e-12));
        }
        ok(valid && z < 5, "bm_layer_sample %s: valid states, means within "
           "%.2f standard errors of the given mean", dr[c].what, z);
        free(mean);
        free(out);
        free(d);
    }
}

/* ======================================================================
 * 2. networks: log p*, log p of a state, exact log Z
 * ====================================================================== */

/* log p* with colour c summed and log p of whole states against the
 * reference, B random rows at offset r0 of a larger state */
static void check_logps(const char *label, const bm_net *net, int D, rng_t *r)
{
    const int B = 24, r0 = 5, cap = B + 8;
    bm_state st;
    bm_scratch *w = bm_scratch_new(net, B);
    ok(w && bm_state_alloc(net, &st, cap) == 0, "%s: state and scratch",
       label);
    double *rows[BM_MAX_LAYERS];
    for (int l = 0; l < net->nl; l++)
        rows[l] = xcalloc((size_t)B * net->L[l].n, sizeof(double));
    double lp[24];
    for (int c = 0; c < 2; c++) {
        for (int l = 0; l < net->nl; l++) {
            for (int b = 0; b < B; b++)
                rand_state(&net->L[l], D, rows[l] + (size_t)b * net->L[l].n, r);
            put_rows(net, &st, l, r0, B, rows[l]);
        }
        unsigned mask = 0;
        for (int l = 0; l < net->nl; l++)
            if (net->color[l] == c)
                mask |= 1u << l;
        bm_log_pstar(net, &st, r0, B, c, lp, w);
        double emax = 0, big = 0;
        for (int b = 0; b < B; b++) {
            double *x[BM_MAX_LAYERS] = {0};
            for (int l = 0; l < net->nl; l++) {
                /* float-rounded, as the library sees it */
                x[l] = xcalloc((size_t)net->L[l].n, sizeof(double));
                get_row(net, &st, l, r0 + b, x[l]);
            }
            double ref = ref_enum(net, x, mask, D, NULL, NULL);
            emax = fmax(emax, fabs(lp[b] - ref));
            big = fmax(big, fabs(ref));
            for (int l = 0; l < net->nl; l++)
                free(x[l]);
        }
        ok(emax < 1e-4, "%s: bm_log_pstar, colour %d summed, = brute-force "
           "log sum (max abs err %.1e, |log p*| up to %.1f)", label, c, emax,
           big);
    }
    /* whole states */
    bm_log_pjoint(net, &st, r0, B, lp, w);
    double emax = 0;
    int ds[BM_MAX_LAYERS];
    ref_dsrc(net, ds);
    for (int b = 0; b < B; b++) {
        double *x[BM_MAX_LAYERS] = {0};
        for (int l = 0; l < net->nl; l++) {
            x[l] = xcalloc((size_t)net->L[l].n, sizeof(double));
            get_row(net, &st, l, r0 + b, x[l]);
        }
        emax = fmax(emax, fabs(lp[b] - ref_negE(net, ds, x)));
        for (int l = 0; l < net->nl; l++)
            free(x[l]);
    }
    ok(emax < 1e-4, "%s: bm_log_pjoint = -E of the state (max abs err %.1e)",
       label, emax);
    for (int l = 0; l < net->nl; l++)
        free(rows[l]);
    bm_state_free(&st);
    bm_scratch_free(w);
}

static double check_exact_logz(const char *label, const bm_net *net, int D)
{
    double ref = ref_logz(net, D), lz = NAN;
    int e = bm_exact_logz(net, D, &lz);
    ok(e == 0 && fabs(lz - ref) < 1e-4, "%s: bm_exact_logz %.6f = "
       "brute-force log Z %.6f (diff %.1e)", label, lz, ref, lz - ref);
    return ref;
}

/* ======================================================================
 * 3. Gibbs sampling
 * ====================================================================== */

/* chi-square of the counts against N p, states with expected count < 5
 * pooled into one bin; *df gets the degrees of freedom */
static double chisq(const double *p, const long *cnt, int S, long N, int *df)
{
    double chi = 0, pe = 0, po = 0;
    int bins = 0;
    for (int s = 0; s < S; s++) {
        double e = N * p[s];
        if (e >= 5) {
            chi += (cnt[s] - e) * (cnt[s] - e) / e;
            bins++;
        } else {
            pe += e;
            po += cnt[s];
        }
    }
    if (pe >= 5) {
        chi += (po - pe) * (po - pe) / pe;
        bins++;
    }
    *df = bins - 1;
    return chi;
}

/* Run C chains for `sweeps` sweeps on the bernoulli layers (each starting
 * uniform unless clamped; clamped layers hold `clampv`); compare the unit
 * marginals of the free layers (time averages after `burn`, standard
 * errors across chains) and the final states of layer vl against the exact
 * conditional distribution given the clamped layers. */
static void check_gibbs(const char *label, const bm_net *net,
                        const unsigned char *clamp, double *const *clampv,
                        int vl, int D, int C, int sweeps, int burn, rng_t *r)
{
    bm_state st;
    int half = C / 2;
    bm_scratch *w = bm_scratch_new(net, C - half);
    ok(w && bm_state_alloc(net, &st, C) == 0, "%s: %d chains", label, C);
    for (int l = 0; l < net->nl; l++) {
        int n = net->L[l].n;
        double v[64];
        for (int c = 0; c < C; c++) {
            rand_state(&net->L[l], D, v, r);
            for (int i = 0; i < n; i++)
                st.x[l][(size_t)c * n + i] = clamp && clamp[l]
                    ? (float)clampv[l][i] : (float)v[i];
        }
        bm_state_sync(net, &st, l, 0, C);
    }
    int tot = 0, off[BM_MAX_LAYERS];
    for (int l = 0; l < net->nl; l++) {
        off[l] = tot;
        tot += net->L[l].n;
    }
    double *acc = xcalloc((size_t)C * tot, sizeof *acc);
    int clamped_ok = 1;
    for (int s = 0; s < sweeps; s++) {
        /* two groups of rows, the second at an offset */
        bm_gibbs_sweep(net, &st, 0, half, clamp, r, w);
        bm_gibbs_sweep(net, &st, half, C - half, clamp, r, w);
        if (s < burn)
            continue;
        for (int l = 0; l < net->nl; l++) {
            int n = net->L[l].n;
            for (int c = 0; c < C; c++)
                for (int i = 0; i < n; i++)
                    acc[(size_t)c * tot + off[l] + i] +=
                        st.x[l][(size_t)c * n + i];
        }
    }
    /* exact */
    double *x[BM_MAX_LAYERS] = {0};
    unsigned mask = 0;
    margacc m = {0};
    m.net = net;
    m.nl = net->nl;
    m.vl = vl;
    for (int l = 0; l < net->nl; l++) {
        m.n[l] = net->L[l].n;
        m.marg[l] = xcalloc((size_t)net->L[l].n, sizeof(double));
        x[l] = clamp && clamp[l] ? clampv[l] : NULL;
        if (!(clamp && clamp[l]))
            mask |= 1u << l;
    }
    int S = 1 << net->L[vl].n;
    m.pv = xcalloc((size_t)S, sizeof(double));
    m.logz = ref_enum(net, x, mask, D, NULL, NULL);
    ref_enum(net, x, mask, D, visit_marg, &m);
    double zmax = 0, emax = 0;
    int T = sweeps - burn;
    for (int l = 0; l < net->nl; l++) {
        if (clamp && clamp[l]) {
            for (int c = 0; c < C; c++)
                for (int i = 0; i < net->L[l].n; i++)
                    clamped_ok &= st.x[l][(size_t)c * net->L[l].n + i] ==
                                  (float)clampv[l][i];
            continue;
        }
        for (int i = 0; i < net->L[l].n; i++) {
            double s1 = 0, s2 = 0;
            for (int c = 0; c < C; c++) {
                double a = acc[(size_t)c * tot + off[l] + i] / T;
                s1 += a;
                s2 += a * a;
            }
            double mean = s1 / C, var = s2 / C - mean * mean;
            double se = sqrt(var / C) + 1e-4;
            zmax = fmax(zmax, fabs(mean - m.marg[l][i]) / se);
            emax = fmax(emax, fabs(mean - m.marg[l][i]));
        }
    }
    ok(clamped_ok, "%s: clamped layers untouched", label);
    ok(zmax < 5, "%s: unit marginals of the free layers = exact (max err "
       "%.4f, %.2f standard errors)", label, emax, zmax);
    long *cnt = xcalloc((size_t)S, sizeof *cnt);
    int nv = net->L[vl].n;
    for (int c = 0; c < C; c++) {
        int k = 0;
        for (int i = 0; i < nv; i++)
            k |= (st.x[vl][(size_t)c * nv + i] != 0) << i;
        cnt[k]++;
    }
    int df;
    double chi = chisq(m.pv, cnt, S, C, &df);
    /* about a 1e-4 upper tail for df of 20..100 */
    double lim = df + 4.0 * sqrt(2.0 * df) + 6;
    ok(df >= 5 && chi < lim, "%s: chi-square of the %d final states of "
       "layer %s against exact p: %.1f on %d df (limit %.1f)", label, C,
       net->L[vl].name, chi, df, lim);
    free(cnt);
    free(m.pv);
    for (int l = 0; l < net->nl; l++)
        free(m.marg[l]);
    free(acc);
    bm_state_free(&st);
    bm_scratch_free(w);
}

/* The 8-5-4 DBM with v split into va (its first 3 units) and vb (the other
 * 5), both joined to h1: the same energy.  Layer 0 is va; the h1-vb edge
 * runs from h1, so its W is the transpose of rows 3..7 of W1. */
static bm_net *split_dbm(const bm_net *dbm)
{
    bm_layer_spec sp[4] = {{"va", BM_BERNOULLI, 3, 0, 1},
                           {"h1", BM_BERNOULLI, 5, 0, 0},
                           {"vb", BM_BERNOULLI, 5, 0, 1},
                           {"h2", BM_BERNOULLI, 4, 0, 0}};
    const int ed[3][2] = {{0, 1}, {2, 1}, {1, 3}};
    bm_net *s = bm_new(4, sp, ed, NULL);
    if (!s)
        abort();
    const float *W1 = dbm->E[0].W, *W2 = dbm->E[1].W;
    memcpy(s->L[0].bias, dbm->L[0].bias, 3 * sizeof(float));
    memcpy(s->L[2].bias, dbm->L[0].bias + 3, 5 * sizeof(float));
    memcpy(s->L[1].bias, dbm->L[1].bias, 5 * sizeof(float));
    memcpy(s->L[3].bias, dbm->L[2].bias, 4 * sizeof(float));
    int e_a = bm_find_edge(s, 0, 1), e_b = bm_find_edge(s, 1, 2),
        e_2 = bm_find_edge(s, 1, 3);
    if (e_a < 0 || e_b < 0 || e_2 < 0 || s->E[e_b].a != 1)
        abort();
    memcpy(s->E[e_a].W, W1, 15 * sizeof(float));
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++)
            s->E[e_b].W[j * 5 + i] = W1[(3 + i) * 5 + j];
    memcpy(s->E[e_2].W, W2, 20 * sizeof(float));
    return s;
}

/* ======================================================================
 * 4. mean-field
 * ====================================================================== */

/* conditional mean of layer l given the input in (bernoulli, softmax) */
static void ref_cmean(const bm_layer *L, const double *in, double d, double *m)
{
    int n = L->n;
    if (L->unit == BM_BERNOULLI) {
        for (int i = 0; i < n; i++)
            m[i] = sigm(in[i] + d * L->bias[i]);
        return;
    }
    for (int g = 0; g < n; g += L->group) {
        double mx = -INFINITY, s = 0;
        for (int i = 0; i < L->group; i++)
            mx = fmax(mx, in[g + i] + d * L->bias[g + i]);
        for (int i = 0; i < L->group; i++)
            s += m[g + i] = exp(in[g + i] + d * L->bias[g + i] - mx);
        for (int i = 0; i < L->group; i++)
            m[g + i] /= s;
    }
}

static double ref_entropy(const bm_layer *L, const double *m)
{
    double h = 0;
    for (int i = 0; i < L->n; i++) {
        double p = m[i];
        if (p > 0)
            h -= p * log(p);
        if (L->unit == BM_BERNOULLI && p < 1)
            h -= (1 - p) * log(1 - p);
    }
    return h;
}

/* Mean-field on B rows with the layers `clamp` set from vis (B rows each):
 * bottom-up start, convergence, fixed point, bound <= exact log p. */
static void check_meanfield(const char *label, const bm_net *net,
                            const unsigned char *clamp, double *const *vis,
                            int B, int D, double logz, int check_bu)
{
    bm_state st;
    bm_scratch *w = bm_scratch_new(net, B);
    ok(w && bm_state_alloc(net, &st, B) == 0, "%s: %d rows", label, B);
    for (int l = 0; l < net->nl; l++)
        if (clamp[l])
            put_rows(net, &st, l, 0, B, vis[l]);
    int ds[BM_MAX_LAYERS];
    ref_dsrc(net, ds);
    bm_bottom_up(net, &st, 0, B, clamp, w);
    int fin = 1;
    for (int l = 0; l < net->nl; l++)
        if (!clamp[l])
            for (int i = 0; i < B * net->L[l].n; i++)
                fin &= isfinite(st.x[l][i]) && st.x[l][i] >= 0 &&
                       st.x[l][i] <= 1;
    ok(fin, "%s: bm_bottom_up gives finite means in [0,1]", label);
    if (check_bu) {
        /* DBM chain v clamped: h_k from 2 W_k' h_(k-1) for k < n, h_n
         * from W_n' h_(n-1) (h_(k-1) as the library set it) */
        double emax = 0, in[64], mr[64];
        for (int b = 0; b < B; b++)
            for (int l = 1; l < net->nl; l++) {
                const bm_layer *L = &net->L[l], *P = &net->L[l - 1];
                const float *W = net->E[l - 1].W, *hp = st.x[l - 1] +
                                 (size_t)b * P->n;
                double f = l < net->nl - 1 ? 2 : 1;
                for (int j = 0; j < L->n; j++) {
                    in[j] = 0;
                    for (int i = 0; i < P->n; i++)
                        in[j] += f * hp[i] * W[i * L->n + j];
                }
                ref_cmean(L, in, 1, mr);
                for (int j = 0; j < L->n; j++)
                    emax = fmax(emax, fabs(mr[j] - st.x[l][(size_t)b * L->n + j]));
            }
        ok(emax < 1e-5, "%s: bm_bottom_up = doubled-weight pass (max err "
           "%.1e)", label, emax);
    }
    const int iters = 500;
    int it = bm_meanfield(net, &st, 0, B, clamp, iters, 1e-6f, 0, w);
    ok(it < iters, "%s: bm_meanfield converges (tol 1e-6) in %d sweeps",
       label, it);
    /* fixed point, bound */
    double *lp = xcalloc((size_t)B, sizeof *lp);
    bm_log_pjoint(net, &st, 0, B, lp, w);
    double res = 0, gap = 0, gmax = 0, viol = -INFINITY, jerr = 0;
    double *x[BM_MAX_LAYERS], in[64], mr[64];
    for (int l = 0; l < net->nl; l++)
        x[l] = xcalloc((size_t)net->L[l].n, sizeof(double));
    unsigned mask = 0;
    for (int l = 0; l < net->nl; l++)
        if (!clamp[l])
            mask |= 1u << l;
    for (int b = 0; b < B; b++) {
        for (int l = 0; l < net->nl; l++)
            get_row(net, &st, l, b, x[l]);
        double H = 0;
        for (int l = 0; l < net->nl; l++) {
            if (clamp[l])
                continue;
            ref_input(net, x, l, in);
            ref_cmean(&net->L[l], in, ref_d(net, ds, x, l), mr);
            for (int i = 0; i < net->L[l].n; i++)
                res = fmax(res, fabs(mr[i] - x[l][i]));
            H += ref_entropy(&net->L[l], x[l]);
        }
        double eq = ref_negE(net, ds, x);
        jerr = fmax(jerr, fabs(eq - lp[b]));
        double bound = lp[b] + H - logz;
        double logp = ref_enum(net, x, mask, D, NULL, NULL) - logz;
        gap += (logp - bound) / B;
        gmax = fmax(gmax, logp - bound);
        viol = fmax(viol, bound - logp);
    }
    ok(res < 2e-5, "%s: the mean-field fixed point satisfies the mean-field "
       "equations (max residual %.1e)", label, res);
    ok(jerr < 1e-4, "%s: bm_log_pjoint at the means = E_q[-E] (max err "
       "%.1e)", label, jerr);
    ok(viol <= 1e-6, "%s: bound E_q[-E] + H(q) - log Z <= exact log p for "
       "every row (gap mean %.4f, max %.4f nats)", label, gap, gmax);
    /* damping reaches the same fixed point */
    bm_bottom_up(net, &st, 0, B, clamp, w);
    int it2 = bm_meanfield(net, &st, 0, B, clamp, 2000, 1e-7f, 0.5f, w);
    double dmax = 0;
    for (int b = 0; b < B; b++) {
        for (int l = 0; l < net->nl; l++)
            get_row(net, &st, l, b, x[l]);
        for (int l = 0; l < net->nl; l++) {
            if (clamp[l])
                continue;
            ref_input(net, x, l, in);
            ref_cmean(&net->L[l], in, ref_d(net, ds, x, l), mr);
            for (int i = 0; i < net->L[l].n; i++)
                dmax = fmax(dmax, fabs(mr[i] - x[l][i]));
        }
    }
    ok(it2 < 2000 && dmax < 2e-5, "%s: damping 0.5 also reaches a fixed "
       "point (%d sweeps, residual %.1e)", label, it2, dmax);
    for (int l = 0; l < net->nl; l++)
        free(x[l]);
    free(lp);
    bm_state_free(&st);
    bm_scratch_free(w);
}

/* ======================================================================
 * 5. AIS
 * ====================================================================== */

static void check_ais(const char *label, const bm_net *net,
                      const float *const *base, int D, int c, double exact,
                      int K, int M, uint64_t seed)
{
    ais_target *t = ais_bm_target(net, base, D, c);
    double *beta = ais_schedule_default(K);
    double *logw = xcalloc((size_t)M, sizeof *logw);
    ais_estimate est = {0};
    int e = t ? ais_run(t, beta, K, M, seed, 2, logw, NULL, NULL) : -100;
    if (!e)
        e = ais_estimate_from(logw, M, t->log_z0, &est);
    double err = est.logz - exact;
    ok(!e && fabs(err) < 0.1, "%s: AIS (%d runs, %d betas) log Z %.4f vs "
       "exact %.4f: error %+.4f nats, interval [%.4f, %.4f]%s", label, M, K,
       est.logz, exact, err, est.logz_low, est.logz_high,
       (exact >= est.logz_low && exact <= est.logz_high) ? "" :
       " (exact outside)");
    free(logw);
    free(beta);
    ais_target_free(t);
}

/* ======================================================================
 * 6. model files
 * ====================================================================== */

static unsigned char *model_to_mem(const tz_model *m, size_t *len, int *e)
{
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    tz_write_opts o;
    tz_write_opts_init(&o);
    tz_writer *w = tz_writer_new(f, &o);
    *e = w ? tz_model_write(m, w) : -1;
    if (!*e)
        *e = tz_writer_close(w);
    tz_writer_free(w);
    fclose(f);
    *len = sz;
    return (unsigned char *)buf;
}

static tz_model *model_from_mem(const unsigned char *buf, size_t len,
                                char *err, size_t esz)
{
    FILE *f = fmemopen((void *)buf, len ? len : 1, "rb");
    tz_reader *r = tz_reader_new(f);
    tz_model *m = tz_model_read(r, err, esz);
    tz_reader_free(r);
    fclose(f);
    return m;
}

/* every parameter and the structure equal, bit for bit */
static int net_equal(const bm_net *a, const bm_net *b)
{
    if (a->nl != b->nl || a->ne != b->ne)
        return 0;
    for (int l = 0; l < a->nl; l++) {
        const bm_layer *p = &a->L[l], *q = &b->L[l];
        if (strcmp(p->name, q->name) || p->unit != q->unit || p->n != q->n ||
            p->group != q->group || a->color[l] != b->color[l] ||
            a->dsrc[l] != b->dsrc[l] || !p->sigma != !q->sigma ||
            memcmp(p->bias, q->bias, (size_t)p->n * sizeof(float)) ||
            (p->sigma && memcmp(p->sigma, q->sigma, (size_t)p->n * sizeof(float))))
            return 0;
    }
    for (int e = 0; e < a->ne; e++) {
        if (a->E[e].a != b->E[e].a || a->E[e].b != b->E[e].b)
            return 0;
        size_t n = (size_t)a->L[a->E[e].a].n * a->L[a->E[e].b].n;
        if (memcmp(a->E[e].W, b->E[e].W, n * sizeof(float)))
            return 0;
    }
    return 1;
}

static bm_net *round_trip(const bm_net *net, char *err, size_t esz)
{
    tz_model *mf = tz_model_new();
    tz_attr_set_s(&mf->meta, "model.type", "dbm");
    int e = bm_to_model(net, mf);
    size_t len = 0;
    unsigned char *buf = e ? NULL : model_to_mem(mf, &len, &e);
    tz_model *back = e ? NULL : model_from_mem(buf, len, err, esz);
    bm_net *out = back ? bm_from_model(back, err, esz) : NULL;
    tz_model_free(back);
    tz_model_free(mf);
    free(buf);
    return out;
}

static void test_model_files(const bm_net *tree, const bm_net *gnet)
{
    char err[300] = "";
    const bm_net *nets[2] = {tree, gnet};
    const char *what[2] = {"multimodal tree (replicated softmax, softmax "
                           "label)", "gaussian-visible DBM"};
    for (int k = 0; k < 2; k++) {
        bm_net *back = round_trip(nets[k], err, sizeof err);
        ok(back && net_equal(nets[k], back), "%s: bm_to_model -> "
           "tz_model_write -> tz_model_read -> bm_from_model is exact%s%s",
           what[k], back ? "" : ": ", back ? "" : err);
        bm_net *cl = bm_clone(nets[k]);
        ok(cl && net_equal(nets[k], cl) && cl->E[0].W != nets[k]->E[0].W,
           "%s: bm_clone is a deep copy", what[k]);
        bm_free(cl);
        bm_free(back);
    }
    /* a wrong-shape weight matrix is refused with its name */
    tz_model *mf = tz_model_new();
    bm_to_model(tree, mf);
    uint64_t sh[2] = {2, 2};
    float z[4] = {0};
    tz_model_add(mf, "W2", TZ_F32, 2, sh, z);
    bm_net *bad = bm_from_model(mf, err, sizeof err);
    ok(!bad && strstr(err, "'W2'"), "wrong-shape W2 refused: %s", err);
    bm_free(bad);
    tz_model_free(mf);
    ok(bm_param_count(tree) == 5 + 4 + 3 * 3 + 3 + 5 * 3 + 3 * 3 + 3 * 3 +
       3 * 4 + 3 * 3, "bm_param_count of the tree");
}

/* ======================================================================
 * 7. training
 * ====================================================================== */

/* exact mean log p(v) of N rows (V units) under a bernoulli DBM chain */
static double ref_avg_ll(const bm_net *net, const float *data, int N)
{
    double logz = ref_logz(net, 1), s = 0;
    int V = net->L[0].n;
    double *x[BM_MAX_LAYERS] = {0};
    x[0] = xcalloc((size_t)V, sizeof(double));
    for (int b = 0; b < N; b++) {
        for (int i = 0; i < V; i++)
            x[0][i] = data[(size_t)b * V + i];
        s += ref_enum(net, x, all_mask(net) & ~1u, 1, NULL, NULL) - logz;
    }
    free(x[0]);
    return s / N;
}

/* N exact draws of v from a bernoulli DBM chain (inverse cdf of p(v)) */
static float *exact_draws(const bm_net *net, int N, rng_t *r)
{
    int V = net->L[0].n, S = 1 << V;
    margacc m = {0};
    m.net = net;
    m.nl = net->nl;
    for (int l = 0; l < net->nl; l++) {
        m.n[l] = net->L[l].n;
        m.marg[l] = xcalloc((size_t)net->L[l].n, sizeof(double));
    }
    m.pv = xcalloc((size_t)S, sizeof(double));
    double *x[BM_MAX_LAYERS] = {0};
    m.logz = ref_logz(net, 1);
    ref_enum(net, x, all_mask(net), 1, visit_marg, &m);
    float *d = xcalloc((size_t)N * V, sizeof *d);
    for (int b = 0; b < N; b++) {
        double u = rng_uniform_d(r), c = 0;
        int k = S - 1;
        for (int s = 0; s < S; s++) {
            c += m.pv[s];
            if (u < c) {
                k = s;
                break;
            }
        }
        for (int i = 0; i < V; i++)
            d[(size_t)b * V + i] = (float)((k >> i) & 1);
    }
    for (int l = 0; l < net->nl; l++)
        free(m.marg[l]);
    free(m.pv);
    return d;
}

static int do_steps(bm_trainer *t, const bm_net *net, const float *data,
                    int N, int B, int s0, int s1, const bm_train_opts *o)
{
    int V = net->L[0].n, err = 0;
    for (int s = s0; s < s1; s++) {
        const float *rows[BM_MAX_LAYERS] = {0};
        rows[0] = data + (size_t)((s * B) % N) * V;
        bm_step_stats st;
        int e = bm_train_step(t, B, rows, NULL, o, &st);
        if (e || !isfinite(st.recon) || !(st.mf_sweeps >= 1))
            err = 1;
    }
    return err;
}

/* conditional mean of any layer given its input (bm_layer.h table, from
 * the energy): D is the layer's own length for replicated softmax */
static void ref_cmean_any(const bm_layer *L, const double *in, double d,
                          double D, double *m)
{
    if (L->unit == BM_GAUSSIAN) {
        for (int i = 0; i < L->n; i++)
            m[i] = L->bias[i] + L->sigma[i] * in[i];
    } else if (L->unit == BM_REPSOFTMAX) {
        bm_layer S = *L;
        S.unit = BM_SOFTMAX;
        S.group = L->n;
        ref_cmean(&S, in, 1, m);
        for (int i = 0; i < L->n; i++)
            m[i] *= D;
    } else {
        ref_cmean(L, in, d, m);
    }
}

/* input of layer l from the neighbours in `from` only */
static void ref_input_from(const bm_net *net, double *const *x, int l,
                           unsigned from, double *in)
{
    double *y[BM_MAX_LAYERS];
    double zero[64] = {0};
    for (int q = 0; q < net->nl; q++)
        y[q] = (from & (1u << q)) ? x[q] : zero;
    ref_input(net, y, l, in);
}

/* Mean-field as documented: the bottom-up start (outward from the clamped
 * layers, doubled input where a layer has neighbours not yet set), then
 * `iters` sweeps in layer order.  x: clamped layers given, others out. */
static void ref_meanfield(const bm_net *net, const unsigned char *clamp,
                          double **x, int iters)
{
    int ds[BM_MAX_LAYERS];
    ref_dsrc(net, ds);
    double in[64];
    unsigned done = 0;
    for (int l = 0; l < net->nl; l++)
        if (clamp[l])
            done |= 1u << l;
    for (int pass = 0; pass < net->nl; pass++) {
        unsigned next = done;
        for (int l = 0; l < net->nl; l++) {
            if (done & (1u << l))
                continue;
            unsigned from = 0;
            int unset = 0;
            for (int e = 0; e < net->ne; e++) {
                int a = net->E[e].a, b = net->E[e].b;
                int o = a == l ? b : b == l ? a : -1;
                if (o < 0)
                    continue;
                if (done & (1u << o))
                    from |= 1u << o;
                else
                    unset = 1;
            }
            if (!from)
                continue;
            ref_input_from(net, x, l, from, in);
            for (int i = 0; i < net->L[l].n; i++)
                in[i] *= unset ? 2 : 1;
            ref_cmean(&net->L[l], in, ref_d(net, ds, x, l), x[l]);
            next |= 1u << l;
        }
        done = next;
    }
    for (int it = 0; it < iters; it++)
        for (int l = 0; l < net->nl; l++) {
            if (clamp[l])
                continue;
            ref_input(net, x, l, in);
            ref_cmean(&net->L[l], in, ref_d(net, ds, x, l), x[l]);
        }
}

/* gradient accumulator: gW[e] (n_a, n_b), gb[l] (n_l) */
typedef struct {
    const bm_net *net;
    int ds[BM_MAX_LAYERS];
    double logz;
    double *gW[BM_MAX_LAYERS], *gb[BM_MAX_LAYERS];
} gacc;

/* adds wt * (d(-E)/d(params)) at state x; layers in `integ` are gaussian
 * layers integrated out (x holds zeros there): their conditional mean is
 * used, which is exact since no edge joins two of them */
static void acc_grad(gacc *g, double *const *x, unsigned integ, double wt)
{
    const bm_net *net = g->net;
    double m[BM_MAX_LAYERS][64], sv[BM_MAX_LAYERS][64], in[64];
    for (int l = 0; l < net->nl; l++) {
        const bm_layer *L = &net->L[l];
        if (integ & (1u << l)) {
            ref_input(net, x, l, in);
            for (int i = 0; i < L->n; i++)
                m[l][i] = L->bias[i] + L->sigma[i] * in[i];
        } else {
            for (int i = 0; i < L->n; i++)
                m[l][i] = x[l][i];
        }
        for (int i = 0; i < L->n; i++)
            sv[l][i] = L->unit == BM_GAUSSIAN ? m[l][i] / L->sigma[i]
                                              : m[l][i];
    }
    for (int l = 0; l < net->nl; l++) {
        const bm_layer *L = &net->L[l];
        double d = ref_d(net, g->ds, x, l);
        for (int i = 0; i < L->n; i++)
            g->gb[l][i] += wt * (L->unit == BM_GAUSSIAN
                ? (m[l][i] - L->bias[i]) / (L->sigma[i] * L->sigma[i])
                : L->unit == BM_REPSOFTMAX ? m[l][i] : d * m[l][i]);
    }
    for (int e = 0; e < net->ne; e++) {
        int a = net->E[e].a, b = net->E[e].b, nb = net->L[b].n;
        for (int i = 0; i < net->L[a].n; i++)
            for (int j = 0; j < nb; j++)
                g->gW[e][i * nb + j] += wt * sv[a][i] * sv[b][j];
    }
}

static void visit_grad(void *u, double *const *x, const int *k, double e)
{
    (void)k;
    gacc *g = u;
    unsigned integ = 0;
    for (int l = 0; l < g->net->nl; l++)
        if (g->net->L[l].unit == BM_GAUSSIAN)
            integ |= 1u << l;
    acc_grad(g, x, integ, -exp(e - g->logz));
}

/* Frozen parameters: lr 1, no momentum or decay, the parameters put back
 * after every step, so each step adds one gradient estimate (mean-field
 * data term - persistent-chain term).  Their mean over the steps against
 * the reference: mean-field data term (ref_meanfield) minus the exact
 * model expectations, within 5 batch-means standard errors (+ 2e-3).  Also
 * the sparsity term, the reconstruction error of the stats, and a trainer
 * with more rows than the batch. */
static void check_train_gradient(const char *label, const bm_net *target,
                                 const unsigned char *vis, int D, int threads,
                                 float sparsity, int rebin, rng_t *r)
{
    const int N = 20, C = 100, S = 2100, burn = 100, NB = 20;
    bm_net *net = bm_clone(target);
    int nl = net->nl;
    float *data[BM_MAX_LAYERS] = {0};
    for (int l = 0; l < nl; l++) {
        if (!vis[l])
            continue;
        int n = net->L[l].n;
        data[l] = xcalloc((size_t)N * n, sizeof(float));
        double v[64];
        for (int b = 0; b < N; b++) {
            rand_state(&net->L[l], D, v, r);
            for (int i = 0; i < n; i++)
                data[l][(size_t)b * n + i] = rebin ? rng_uniform(r)
                                                   : (float)v[i];
        }
    }
    bm_trainer *t = bm_trainer_new(net, vis, N + 7, C, 99);
    int err = !t || bm_trainer_set_threads(t, threads) != 0;
    bm_train_opts o;
    bm_train_opts_init(&o);
    o.lr = 1;
    o.momentum = 0;
    o.weight_decay = 0;
    o.sweeps = 1;
    o.mf_iters = 100;
    o.mf_tol = 1e-7f;
    o.sparsity_target = sparsity;
    o.sparsity_cost = 0.1f;
    o.rebinarize = rebin;
    /* parameters as one list: W of every edge, bias of every layer */
    float *par[2 * BM_MAX_LAYERS];
    size_t pn[2 * BM_MAX_LAYERS];
    int np = 0;
    for (int e = 0; e < net->ne; e++) {
        par[np] = net->E[e].W;
        pn[np++] = (size_t)net->L[net->E[e].a].n * net->L[net->E[e].b].n;
    }
    for (int l = 0; l < nl; l++) {
        par[np] = net->L[l].bias;
        pn[np++] = (size_t)net->L[l].n;
    }
    float *orig[2 * BM_MAX_LAYERS];
    double *sum[2 * BM_MAX_LAYERS], *bsum[2 * BM_MAX_LAYERS], *bsq[2 * BM_MAX_LAYERS];
    for (int k = 0; k < np; k++) {
        orig[k] = xcalloc(pn[k], sizeof(float));
        memcpy(orig[k], par[k], pn[k] * sizeof(float));
        sum[k] = xcalloc(pn[k], sizeof(double));
        bsum[k] = xcalloc(pn[k], sizeof(double));
        bsq[k] = xcalloc(pn[k], sizeof(double));
    }
    double recon0 = NAN, sweeps0 = NAN;
    int per = (S - burn) / NB;
    for (int s = 0; s < S; s++) {
        bm_step_stats st;
        err |= bm_train_step(t, N, (const float *const *)data, NULL, &o, &st) != 0;
        if (s == 0) {
            recon0 = st.recon;
            sweeps0 = st.mf_sweeps;
        }
        for (int k = 0; k < np; k++) {
            for (size_t i = 0; i < pn[k]; i++)
                if (s >= burn)
                    bsum[k][i] += (double)par[k][i] - orig[k][i];
            memcpy(par[k], orig[k], pn[k] * sizeof(float));
        }
        if (s >= burn && (s - burn + 1) % per == 0)
            for (int k = 0; k < np; k++)
                for (size_t i = 0; i < pn[k]; i++) {
                    double m = bsum[k][i] / per;
                    sum[k][i] += m / NB;
                    bsq[k][i] += m * m / NB;
                    bsum[k][i] = 0;
                }
    }
    /* reference */
    gacc g = {0};
    g.net = target;
    ref_dsrc(target, g.ds);
    for (int e = 0; e < target->ne; e++)
        g.gW[e] = xcalloc((size_t)target->L[target->E[e].a].n *
                          target->L[target->E[e].b].n, sizeof(double));
    for (int l = 0; l < nl; l++)
        g.gb[l] = xcalloc((size_t)target->L[l].n, sizeof(double));
    double *x[BM_MAX_LAYERS], recon = 0, act[BM_MAX_LAYERS][64] = {{0}};
    for (int l = 0; l < nl; l++)
        x[l] = xcalloc((size_t)target->L[l].n, sizeof(double));
    /* rebinarize: every 0/1 pattern of the (one, bernoulli) visible layer
     * with its probability under the grey values */
    int rl = 0;
    while (rebin && !vis[rl])
        rl++;
    int npat = rebin ? 1 << target->L[rl].n : 1;
    for (int b = 0; b < N; b++)
      for (int pat = 0; pat < npat; pat++) {
        double pw = 1;
        for (int l = 0; l < nl; l++)
            if (vis[l])
                for (int i = 0; i < target->L[l].n; i++)
                    x[l][i] = data[l][(size_t)b * target->L[l].n + i];
        if (rebin)
            for (int i = 0; i < target->L[rl].n; i++) {
                double q = x[rl][i];
                x[rl][i] = (pat >> i) & 1;
                pw *= x[rl][i] ? q : 1 - q;
            }
        ref_meanfield(target, vis, x, 3000);
        acc_grad(&g, x, 0, pw / N);
        for (int l = 0; l < nl; l++) {
            const bm_layer *L = &target->L[l];
            for (int i = 0; i < L->n; i++)
                act[l][i] += pw * x[l][i] / N;
            if (!vis[l])
                continue;
            double in[64], m[64];
            ref_input(target, x, l, in);
            ref_cmean_any(L, in, ref_d(target, g.ds, x, l),
                          ref_sum(x[l], L->n), m);
            for (int i = 0; i < L->n; i++)
                recon += pw * (x[l][i] - m[i]) * (x[l][i] - m[i]);
        }
      }
    if (sparsity > 0)
        for (int l = 0; l < nl; l++)
            if (!vis[l] && target->L[l].unit == BM_BERNOULLI)
                for (int i = 0; i < target->L[l].n; i++)
                    g.gb[l][i] += 0.1 * (sparsity - act[l][i]);
    double *none[BM_MAX_LAYERS] = {0};
    g.logz = ref_enum(target, none, all_mask(target), D, NULL, NULL);
    ref_enum(target, none, all_mask(target), D, visit_grad, &g);
    double emax = 0, zmax = 0;
    for (int k = 0; k < np; k++) {
        const double *ref = k < target->ne ? g.gW[k] : g.gb[k - target->ne];
        for (size_t i = 0; i < pn[k]; i++) {
            double se = sqrt(fmax(bsq[k][i] - sum[k][i] * sum[k][i], 0) /
                             (NB - 1));
            double dlt = fabs(sum[k][i] - ref[i]);
            emax = fmax(emax, dlt);
            zmax = fmax(zmax, dlt / (5 * se + 2e-3));
        }
    }
    ok(!err && zmax < 1, "%s: mean update over %d frozen steps (lr 1) of "
       "every W and bias = mean-field data term - exact model term (max err "
       "%.4f, at most %.2f of 5 s.e. + 2e-3)", label, S - burn, emax, zmax);
    if (!rebin)
    ok(fabs(recon0 - recon) < 1e-4 * fmax(1, recon) && sweeps0 >= 1 &&
       sweeps0 <= 100, "%s: step stats: reconstruction error %.6f (reference "
       "%.6f), %.1f mean-field sweeps", label, recon0, recon, sweeps0);
    for (int l = 0; l < nl; l++) {
        free(x[l]);
        free(g.gb[l]);
        free(data[l]);
    }
    for (int e = 0; e < target->ne; e++)
        free(g.gW[e]);
    for (int k = 0; k < np; k++) {
        free(orig[k]);
        free(sum[k]);
        free(bsum[k]);
        free(bsq[k]);
    }
    bm_trainer_free(t);
    bm_free(net);
}

static void test_training(rng_t *r)
{
    const int n[3] = {6, 4, 3};
    bm_net *target = mk_chain(3, n, NULL);
    randomize(target, 1.5, r);
    unsigned char v1[3] = {1, 0, 0};
    check_train_gradient("6-4-3 DBM, sparsity 0.2", target, v1, 1, 1, 0.2f, 0,
                         r);
    check_train_gradient("6-4-3 DBM, grey data rebinarized, 2 threads", target,
                         v1, 1, 2, 0, 1, r);

    const int N = 400, B = 40, C = 40, STEPS = 400;
    float *data = exact_draws(target, N, r);
    bm_net *n0 = mk_chain(3, n, NULL);
    for (int e = 0; e < n0->ne; e++)
        for (int i = 0; i < n[e] * n[e + 1]; i++)
            n0->E[e].W[i] = (float)(0.1 * rng_normal(r));
    unsigned char vis[3] = {1, 0, 0};
    bm_train_opts o;
    bm_train_opts_init(&o);
    o.lr = 0.05f;
    o.momentum = 0.5f;
    o.weight_decay = 0;
    o.sweeps = 3;

    /* A: uninterrupted */
    bm_net *a = bm_clone(n0);
    bm_trainer *ta = bm_trainer_new(a, vis, B, C, 77);
    int err = !ta || do_steps(ta, a, data, N, B, 0, STEPS, &o);
    double ll0 = ref_avg_ll(n0, data, N), ll1 = ref_avg_ll(a, data, N);
    double llt = ref_avg_ll(target, data, N);
    ok(!err && ll1 > ll0 + 0.1, "training %d steps on %d exact draws of a "
       "6-4-3 DBM: exact mean log p(v) %.4f -> %.4f (data-generating model "
       "%.4f)", STEPS, N, ll0, ll1, llt);

    /* B: half, checkpoint through a model file, a new trainer (other
     * seed), the other half */
    bm_net *b = bm_clone(n0);
    bm_trainer *tb = bm_trainer_new(b, vis, B, C, 77);
    err = !tb || do_steps(tb, b, data, N, B, 0, STEPS / 2, &o);
    tz_model *mf = tz_model_new();
    tz_attr_set_s(&mf->meta, "model.type", "dbm");
    err |= bm_to_model(b, mf) != 0;
    err |= bm_trainer_save(tb, mf) != 0;
    bm_trainer_free(tb);
    bm_free(b);
    size_t len = 0;
    int e = 0;
    unsigned char *buf = model_to_mem(mf, &len, &e);
    char msg[300] = "";
    tz_model *back = e ? NULL : model_from_mem(buf, len, msg, sizeof msg);
    b = back ? bm_from_model(back, msg, sizeof msg) : NULL;
    tb = b ? bm_trainer_new(b, vis, B, C, 12345) : NULL;
    int le = tb ? bm_trainer_load(tb, back) : -100;
    err |= !tb || le != 0 || do_steps(tb, b, data, N, B, STEPS / 2, STEPS, &o);
    ok(!err && b && net_equal(a, b), "bm_trainer_save / model file / "
       "bm_trainer_load after %d steps, then %d more: parameters identical "
       "to the uninterrupted run%s%s", STEPS / 2, STEPS / 2, msg[0] ? ": " : "",
       msg);
    bm_trainer_free(tb);
    bm_free(b);
    tz_model_free(back);
    tz_model_free(mf);
    free(buf);

    /* argument errors */
    {
        bm_net *x = bm_clone(n0);
        bm_trainer *tx = bm_trainer_new(x, vis, B, C, 1);
        const float *rows[3] = {data, NULL, NULL}, *none[3] = {0};
        int e1 = bm_train_step(tx, B + 1, rows, NULL, &o, NULL);
        int e2 = bm_train_step(tx, 0, rows, NULL, &o, NULL);
        int e3 = bm_train_step(tx, B, none, NULL, &o, NULL);
        tz_model *cm = tz_model_new();
        bm_trainer_save(tx, cm);
        bm_trainer *ty = bm_trainer_new(x, vis, B, C + 1, 1);
        int e4 = bm_trainer_load(ty, cm);
        ok(e1 == BM_E_ARG && e2 == BM_E_ARG && e3 == BM_E_ARG &&
           e4 == BM_E_ARG && strstr(cm->err, "chains"),
           "bm_train_step refuses B > batch, B < 1, missing visible data; "
           "bm_trainer_load another chain count: %s", cm->err);
        tz_model_free(cm);
        bm_trainer_free(ty);
        bm_trainer_free(tx);
        bm_free(x);
    }

    /* 2 threads: deterministic, and also learns */
    bm_net *c2[2];
    err = 0;
    for (int k = 0; k < 2; k++) {
        c2[k] = bm_clone(n0);
        bm_trainer *t = bm_trainer_new(c2[k], vis, B, C, 77);
        err |= !t || bm_trainer_set_threads(t, 2) != 0;
        err |= do_steps(t, c2[k], data, N, B, 0, STEPS, &o);
        bm_trainer_free(t);
    }
    double ll2 = ref_avg_ll(c2[0], data, N);
    ok(!err && net_equal(c2[0], c2[1]), "2 threads: two runs give identical "
       "parameters");
    ok(ll2 > ll0 + 0.1, "2 threads: exact mean log p(v) %.4f -> %.4f", ll0,
       ll2);
    /* 2 threads with a checkpoint in the middle */
    bm_net *d = bm_clone(n0);
    bm_trainer *td = bm_trainer_new(d, vis, B, C, 77);
    bm_trainer_set_threads(td, 2);
    err = do_steps(td, d, data, N, B, 0, STEPS / 2, &o);
    mf = tz_model_new();
    err |= bm_trainer_save(td, mf) != 0;
    bm_trainer_free(td);
    td = bm_trainer_new(d, vis, B, C, 5);
    bm_trainer_set_threads(td, 2);
    err |= bm_trainer_load(td, mf) != 0;
    err |= do_steps(td, d, data, N, B, STEPS / 2, STEPS, &o);
    ok(!err && net_equal(c2[0], d), "2 threads, resumed from a checkpoint: "
       "identical to the uninterrupted 2-thread run");
    bm_trainer_free(td);
    tz_model_free(mf);
    bm_free(d);
    bm_free(c2[0]);
    bm_free(c2[1]);
    bm_trainer_free(ta);
    bm_free(a);
    bm_free(n0);
    free(data);
    bm_free(target);
}

/* ======================================================================
 * main
 * ====================================================================== */

int main(void)
{
    gemm_init(1);
    rng_t r;
    rng_seed(&r, 2024);

    /* 1 */
    test_layer_cond();
    test_layer_misc();

    /* 2: networks */
    const int n854[3] = {8, 5, 4}, n6433[4] = {6, 4, 3, 3};
    bm_net *dbm = mk_chain(3, n854, NULL);
    randomize(dbm, 1.0, &r);
    bm_net *deep = mk_chain(4, n6433, NULL);
    randomize(deep, 0.8, &r);
    bm_net *tree = mk_tree(BM_REPSOFTMAX, 0);
    randomize(tree, 0.8, &r);
    bm_net *tree_s = mk_tree(BM_SOFTMAX, 2);
    randomize(tree_s, 0.8, &r);
    const int ng[3] = {4, 5, 3}, ug[3] = {BM_GAUSSIAN, BM_BERNOULLI,
                                          BM_BERNOULLI};
    bm_net *gnet = mk_chain(3, ng, ug);
    randomize(gnet, 0.6, &r);
    const int nm[3] = {5, 3, 4}, um[3] = {BM_BERNOULLI, BM_GAUSSIAN,
                                          BM_BERNOULLI};
    bm_net *gmid = mk_chain(3, nm, um);
    randomize(gmid, 0.6, &r);
    const int D = 3;
    /* layers next to a replicated-softmax layer whose bias is scaled by
     * its length: softmax and gaussian units */
    const int nts[3] = {4, 6, 3}, uts[3] = {BM_REPSOFTMAX, BM_SOFTMAX,
                                            BM_BERNOULLI};
    bm_net *tsoft = mk_chain(3, nts, uts);
    tsoft->L[1].group = 3;
    randomize(tsoft, 0.8, &r);
    const int ntg[3] = {4, 3, 3}, utg[3] = {BM_REPSOFTMAX, BM_GAUSSIAN,
                                            BM_BERNOULLI};
    bm_net *tgau = mk_chain(3, ntg, utg);
    randomize(tgau, 0.6, &r);
    /* softmax hidden units: 3^6 = 729 states enumerated (not a multiple of
     * the chunk) */
    const int nrs[2] = {11, 18}, urs[2] = {BM_BERNOULLI, BM_SOFTMAX};
    bm_net *rsm = mk_chain(2, nrs, urs);
    rsm->L[1].group = 3;
    randomize(rsm, 0.5, &r);

    ok(dbm->color[0] == 0 && dbm->color[1] == 1 && dbm->color[2] == 0,
       "8-5-4: colours by depth");
    ok(tree->color[T_IMAGE] == 0 && tree->color[T_H1] == 1 &&
       tree->color[T_TOP] == 0 && tree->color[T_H2] == 1 &&
       tree->color[T_TEXT] == 0 && tree->color[T_LABEL] == 1 &&
       tree->dsrc[T_H2] == T_TEXT && tree->dsrc[T_H1] == -1 &&
       tree->E[0].a == T_IMAGE && tree->E[0].b == T_H1 &&
       tree->E[3].a == T_H2 && tree->E[3].b == T_TEXT &&
       bm_find_layer(tree, "top") == T_TOP &&
       bm_find_edge(tree, T_LABEL, T_TOP) == 4,
       "tree: colours, replicated-softmax source, edges oriented from "
       "layer 0, lookups");
    {
        bm_layer_spec sp[3] = {{"a", BM_BERNOULLI, 2, 0, 0},
                               {"b", BM_BERNOULLI, 2, 0, 0},
                               {"a", BM_BERNOULLI, 2, 0, 0}};
        const int ed[2][2] = {{0, 1}, {1, 2}}, ed2[2][2] = {{0, 1}, {0, 1}};
        const char *why = NULL;
        bm_net *x = bm_new(3, sp, ed, &why);
        int bad = x != NULL || !why;
        sp[2].name = "c";
        bm_net *y = bm_new(3, sp, ed2, &why);
        bad += y != NULL || !why;
        bm_free(x);
        bm_free(y);
        ok(!bad, "bm_new refuses duplicate names and edges that do not make "
           "a tree (%s)", why ? why : "");
    }

    check_logps("8-5-4 DBM", dbm, 1, &r);
    check_logps("6-4-3-3 DBM", deep, 1, &r);
    check_logps("tree, text replicated softmax D=3", tree, D, &r);
    check_logps("tree, text softmax 2x2", tree_s, 1, &r);
    check_logps("gaussian 4 - 5 - 3", gnet, 1, &r);
    check_logps("5 - gaussian 3 - 4", gmid, 1, &r);
    check_logps("text D=3 - softmax 2x3 - 3", tsoft, D, &r);
    check_logps("text D=3 - gaussian 3 - 3", tgau, D, &r);
    check_logps("RBM 11 - softmax 6x3", rsm, 1, &r);
    double lz_dbm = check_exact_logz("8-5-4 DBM", dbm, 1);
    double lz_deep = check_exact_logz("6-4-3-3 DBM", deep, 1);
    double lz_tree = check_exact_logz("tree, replicated softmax D=3", tree, D);
    double lz_trees = check_exact_logz("tree, softmax text", tree_s, 1);
    double lz_g = check_exact_logz("gaussian 4 - 5 - 3 (gaussian summed)",
                                   gnet, 1);
    double lz_gm = check_exact_logz("5 - gaussian 3 - 4 (gaussian summed)",
                                    gmid, 1);
    double lz_ts = check_exact_logz("text D=3 - softmax 2x3 - 3", tsoft, D);
    check_exact_logz("RBM 11 - softmax 6x3 (729 states)", rsm, 1);
    double lz_tg = ref_logz(tgau, D);
    {
        const int nb[2] = {40, 40}, ugg[3] = {BM_GAUSSIAN, BM_GAUSSIAN,
                                               BM_BERNOULLI}, n3[3] = {2, 2, 2};
        bm_net *big = mk_chain(2, nb, NULL), *gg = mk_chain(3, n3, ugg);
        double lz;
        int e1 = bm_exact_logz(big, 1, &lz), e2 = bm_exact_logz(gg, 1, &lz);
        ok(e1 == BM_E_TOOBIG && e2 < 0 && bm_enum_color(gg, NULL) == -1,
           "bm_exact_logz: BM_E_TOOBIG for 2^40 states; an error when both "
           "colours hold a gaussian layer (%d)", e2);
        bm_free(big);
        bm_free(gg);
    }

    /* 3: Gibbs */
    check_gibbs("Gibbs 8-5-4 DBM", dbm, NULL, NULL, 0, 1, 4000, 200, 50, &r);
    check_gibbs("Gibbs tree, replicated softmax D=3", tree, NULL, NULL,
                T_IMAGE, D, 3000, 150, 50, &r);
    check_gibbs("Gibbs 5 - gaussian 3 - 4", gmid, NULL, NULL, 0, 1, 3000, 150,
                50, &r);
    check_gibbs("Gibbs text D=3 - softmax 2x3 - 3", tsoft, NULL, NULL, 2, D,
                3000, 150, 50, &r);
    bm_net *split = split_dbm(dbm);
    {
        double lz;
        int e = bm_exact_logz(split, 1, &lz);
        ok(e == 0 && fabs(lz - lz_dbm) < 1e-4, "8-5-4 DBM with v split into "
           "two layers on h1: same log Z %.6f (diff %.1e)", lz, lz - lz_dbm);
        unsigned char clamp[4] = {1, 0, 0, 0};
        double va[3] = {1, 0, 1};
        double *cv[4] = {va, NULL, NULL, NULL};
        check_gibbs("Gibbs 8-5-4 DBM, v[0..2] = 101 clamped", split, clamp, cv,
                    2, 1, 4000, 200, 50, &r);
    }

    /* 4: mean-field */
    {
        double *vis[3] = {xcalloc(256 * 8, sizeof(double)), NULL, NULL};
        for (int k = 0; k < 256; k++)
            for (int i = 0; i < 8; i++)
                vis[0][k * 8 + i] = (k >> i) & 1;
        unsigned char clamp[3] = {1, 0, 0};
        check_meanfield("mean-field 8-5-4, all 256 v", dbm, clamp, vis, 256, 1,
                        lz_dbm, 1);
        free(vis[0]);
        const int nd[4] = {6, 4, 3, 3};
        (void)nd;
        double *vd[4] = {xcalloc(64 * 6, sizeof(double)), NULL, NULL, NULL};
        for (int k = 0; k < 64; k++)
            for (int i = 0; i < 6; i++)
                vd[0][k * 6 + i] = (k >> i) & 1;
        unsigned char cd[4] = {1, 0, 0, 0};
        check_meanfield("mean-field 6-4-3-3, all 64 v", deep, cd, vd, 64, 1,
                        lz_deep, 1);
        free(vd[0]);
        /* the tree with image and text clamped */
        const int B = 40;
        double *tv[T_NL] = {0};
        tv[T_IMAGE] = xcalloc((size_t)B * 5, sizeof(double));
        tv[T_TEXT] = xcalloc((size_t)B * 4, sizeof(double));
        for (int b = 0; b < B; b++) {
            rand_state(&tree->L[T_IMAGE], D, tv[T_IMAGE] + b * 5, &r);
            rand_state(&tree->L[T_TEXT], D, tv[T_TEXT] + b * 4, &r);
        }
        unsigned char ct[T_NL] = {0};
        ct[T_IMAGE] = ct[T_TEXT] = 1;
        check_meanfield("mean-field tree, image and text clamped", tree, ct,
                        tv, B, D, lz_tree, 0);
        free(tv[T_IMAGE]);
        free(tv[T_TEXT]);
    }

    /* 5: AIS */
    {
        const int K = 4000, M = 100;
        float bv[8], bimg[5], btxt[4], bg[4], bgm[3];
        for (int i = 0; i < 8; i++)
            bv[i] = (float)rng_normal(&r);
        for (int i = 0; i < 5; i++)
            bimg[i] = (float)rng_normal(&r);
        for (int i = 0; i < 4; i++)
            btxt[i] = (float)(0.5 * rng_normal(&r));
        for (int i = 0; i < 4; i++)
            bg[i] = gnet->L[0].bias[i] + (float)rng_normal(&r);
        for (int i = 0; i < 3; i++)
            bgm[i] = (float)rng_normal(&r);
        const float *base_dbm[3] = {bv, NULL, NULL};
        const float *base_tree[T_NL] = {0};
        base_tree[T_IMAGE] = bimg;
        base_tree[T_TEXT] = btxt;
        const float *base_g[3] = {bg, NULL, NULL};
        const float *base_gm[3] = {NULL, bgm, NULL};
        check_ais("8-5-4, colour 0 summed", dbm, NULL, 1, 0, lz_dbm, K, M, 1);
        check_ais("8-5-4, colour 1 summed", dbm, NULL, 1, 1, lz_dbm, K, M, 2);
        check_ais("8-5-4, default colour, base v biases", dbm, base_dbm, 1, -1,
                  lz_dbm, K, M, 3);
        check_ais("8-5-4, colour 1 summed, base v biases", dbm, base_dbm, 1, 1,
                  lz_dbm, K, M, 4);
        float bh1[5], bh2[4];
        for (int i = 0; i < 5; i++)
            bh1[i] = (float)rng_normal(&r);
        for (int i = 0; i < 4; i++)
            bh2[i] = (float)rng_normal(&r);
        const float *base_all[3] = {bv, bh1, bh2};
        check_ais("8-5-4, colour 0 summed, base biases on every layer", dbm,
                  base_all, 1, 0, lz_dbm, K, M, 18);
        check_ais("8-5-4, colour 1 summed, base biases on every layer", dbm,
                  base_all, 1, 1, lz_dbm, K, M, 19);
        ok(ais_bm_sum_color(dbm) == 0 && ais_bm_sum_color(tree) == 0 &&
           ais_bm_sum_color(gmid) == 0 && ais_bm_check(tree, 0) == NULL &&
           ais_bm_check(tree, 1) == NULL && !ais_bm_target(dbm, NULL, 0, 0) &&
           !ais_bm_target(dbm, NULL, 1, 2),
           "ais_bm_sum_color sums the class with more units; doclen < 1 and "
           "colour 2 refused");
        check_ais("6-4-3-3, colour 0 summed", deep, NULL, 1, 0, lz_deep, K, M,
                  5);
        check_ais("6-4-3-3, colour 1 summed", deep, NULL, 1, 1, lz_deep, K, M,
                  6);
        check_ais("tree D=3, colour 0 summed (text summed), base biases",
                  tree, base_tree, D, 0, lz_tree, K, M, 7);
        check_ais("tree D=3, colour 1 summed (text in the chains), base "
                  "biases", tree, base_tree, D, 1, lz_tree, K, M, 8);
        check_ais("tree, softmax text, default colour", tree_s, NULL, 1, -1,
                  lz_trees, K, M, 9);
        check_ais("gaussian 4-5-3, gaussian summed, base means", gnet, base_g,
                  1, 0, lz_g, K, M, 10);
        check_ais("gaussian 4-5-3, gaussian in the chains, base means", gnet,
                  base_g, 1, 1, lz_g, K, M, 11);
        check_ais("5-gaussian 3-4, gaussian summed, base means", gmid, base_gm,
                  1, 1, lz_gm, K, M, 12);
        check_ais("5-gaussian 3-4, gaussian in the chains, base means", gmid,
                  base_gm, 1, 0, lz_gm, K, M, 13);
        check_ais("text D=3 - softmax 2x3 - 3, colour 0 summed", tsoft, NULL,
                  D, 0, lz_ts, K, M, 14);
        check_ais("text D=3 - softmax 2x3 - 3, colour 1 summed", tsoft, NULL,
                  D, 1, lz_ts, K, M, 15);
        check_ais("text D=3 - gaussian 3 - 3, gaussian summed", tgau, NULL,
                  D, 1, lz_tg, K, M, 16);
        check_ais("text D=3 - gaussian 3 - 3, gaussian in the chains", tgau,
                  NULL, D, 0, lz_tg, K, M, 17);
    }

    /* 6 */
    test_model_files(tree, gnet);

    /* 7 */
    {
        unsigned char v1[3] = {1, 0, 0}, vt[T_NL] = {0};
        vt[T_IMAGE] = vt[T_TEXT] = 1;
        check_train_gradient("gaussian 4-5-3 DBM", gnet, v1, 1, 1, 0, 0, &r);
        check_train_gradient("tree, image and text D=3 visible, 2 threads",
                             tree, vt, D, 2, 0, 0, &r);
        check_train_gradient("text D=3 - softmax 2x3 - 3, 2 threads", tsoft,
                             v1, D, 2, 0, 0, &r);
    }
    test_training(&r);

    bm_free(split);
    bm_free(tsoft);
    bm_free(tgau);
    bm_free(rsm);
    bm_free(dbm);
    bm_free(deep);
    bm_free(tree);
    bm_free(tree_s);
    bm_free(gnet);
    bm_free(gmid);
    return tap_done();
}
