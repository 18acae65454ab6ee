/* test_dbn.c - lib/dbn.c against exact references on DBNs small enough to
 * enumerate (6 visible, 4 and 3 hidden units; a 3-level chain 5-4-3-3):
 *   - exact log p(v) = log sum_h1 p(v|h1) p(h1), p(h1) from the top RBM
 *     with h2 summed out and its exact log Z, written here from the
 *     definitions (dbn.h), not with the library;
 *   - dbn_lower_bound: its estimate with many samples against the exact
 *     expectation E_q[log p(v|h1) + log p*(h1)] + H(q) computed by
 *     enumerating h1, and the bound below the exact log p(v) for every v;
 *   - samples (top-RBM Gibbs chains, then dbn_down) against exact p(v) by a
 *     chi-square test;
 *   - dbn_up against rbm_hidden_probs; up-down fine-tuning raising the exact
 *     expected bound on data drawn from another DBN; the model round trip
 *     with untied generative weights.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbn.h"
#include "gemm.h"
#include "rbm.h"

#include "tap.h"

static rbm *random_rbm(int V, int H, double scale, rng_t *r)
{
    rbm *m = rbm_new(V, H, RBM_BERNOULLI, RBM_BERNOULLI);
    for (int i = 0; i < V * H; i++)
        m->W[i] = (float)(scale * rng_normal(r));
    for (int i = 0; i < V; i++)
        m->vbias[i] = (float)(0.5 * rng_normal(r));
    for (int j = 0; j < H; j++)
        m->hbias[j] = (float)(0.5 * rng_normal(r));
    return m;
}

static double softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

static void bits(int k, int n, double *x)
{
    for (int i = 0; i < n; i++)
        x[i] = (k >> i) & 1;
}

/* log sigmoid-belief probability of x (n) given the input a (n). */
static double log_bern(const double *x, const double *a, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += x[i] * a[i] - softplus(a[i]);
    return s;
}

/* Generative input of layer k given x_(k+1): c_k + G_k x. */
static void gen_input(const dbn *d, int k, const double *x, double *a)
{
    const rbm *m = d->r[k];
    const float *G = d->G[k] ? d->G[k] : m->W;
    for (int i = 0; i < m->nv; i++) {
        a[i] = m->vbias[i];
        for (int j = 0; j < m->nh; j++)
            a[i] += G[i * m->nh + j] * x[j];
    }
}

/* log p*(x) of the top RBM, hidden summed out. */
static double top_lpstar(const rbm *m, const double *x)
{
    double s = 0;
    for (int i = 0; i < m->nv; i++)
        s += m->vbias[i] * x[i];
    for (int j = 0; j < m->nh; j++) {
        double a = m->hbias[j];
        for (int i = 0; i < m->nv; i++)
            a += m->W[i * m->nh + j] * x[i];
        s += softplus(a);
    }
    return s;
}

static double top_logz(const rbm *m)
{
    double x[32] = {0}, mx = -INFINITY, sum = 0;
    int n = 1 << m->nv;
    double *lp = malloc((size_t)n * sizeof *lp);
    for (int k = 0; k < n; k++) {
        bits(k, m->nv, x);
        lp[k] = top_lpstar(m, x);
        if (lp[k] > mx)
            mx = lp[k];
    }
    for (int k = 0; k < n; k++)
        sum += exp(lp[k] - mx);
    free(lp);
    return mx + log(sum);
}

/* Exact log p(v) of a 2- or 3-level DBN by enumerating the hidden layers
 * below the top RBM. */
static double exact_logp(const dbn *d, const double *v)
{
    int n = d->n;
    double lz = top_logz(d->r[n - 1]);
    int w1 = d->r[0]->nh, w2 = n == 3 ? d->r[1]->nh : 0;
    double h1[32] = {0}, h2[32] = {0}, a[32] = {0}, mx = -INFINITY, terms[1 << 12];
    int nt = 0;
    for (int k1 = 0; k1 < (1 << w1); k1++) {
        bits(k1, w1, h1);
        gen_input(d, 0, h1, a);
        double l1 = log_bern(v, a, d->r[0]->nv);
        if (n == 2) {
            terms[nt] = l1 + top_lpstar(d->r[1], h1) - lz;
            mx = terms[nt] > mx ? terms[nt] : mx;
            nt++;
            continue;
        }
        for (int k2 = 0; k2 < (1 << w2); k2++) {
            bits(k2, w2, h2);
            gen_input(d, 1, h2, a);
            terms[nt] = l1 + log_bern(h1, a, w1) + top_lpstar(d->r[2], h2) - lz;
            mx = terms[nt] > mx ? terms[nt] : mx;
            nt++;
        }
    }
    double s = 0;
    for (int i = 0; i < nt; i++)
        s += exp(terms[i] - mx);
    return mx + log(s);
}

/* The exact expectation of the 2-level bound (without log Z) by
 * enumerating h1 under the factorial q(h1|v). */
static double exact_bound2_sd(const dbn *d, const double *v, double *sd)
{
    const rbm *r0 = d->r[0];
    int V = r0->nv, H = r0->nh;
    double q[32] = {0}, h1[32] = {0}, a[32] = {0}, ent = 0, e = 0, e2 = 0;
    for (int j = 0; j < H; j++) {
        double x = r0->hbias[j];
        for (int i = 0; i < V; i++)
            x += r0->W[i * H + j] * v[i];
        q[j] = 1 / (1 + exp(-x));
        ent -= q[j] * log(q[j]) + (1 - q[j]) * log(1 - q[j]);
    }
    for (int k = 0; k < (1 << H); k++) {
        bits(k, H, h1);
        double p = 1;
        for (int j = 0; j < H; j++)
            p *= h1[j] ? q[j] : 1 - q[j];
        gen_input(d, 0, h1, a);
        double f = log_bern(v, a, V) + top_lpstar(d->r[1], h1);
        e += p * f;
        e2 += p * f * f;
    }
    if (sd)
        *sd = sqrt(e2 - e * e > 0 ? e2 - e * e : 0);
    return e + ent;
}

static double exact_bound2(const dbn *d, const double *v)
{
    return exact_bound2_sd(d, v, NULL);
}

static dbn *make_dbn(const int *w, int n, double scale, rng_t *r)
{
    rbm *rs[8];
    for (int k = 0; k < n; k++)
        rs[k] = random_rbm(w[k], w[k + 1], scale, r);
    char err[200];
    dbn *d = dbn_from_rbms(rs, n, 0, err, sizeof err);
    if (!d)
        printf("# %s\n", err);
    return d;
}

int main(void)
{
    gemm_init(1);
    rng_t r;
    rng_seed(&r, 42);

    /* ---- composition checks ---- */
    {
        rbm *a = random_rbm(6, 4, 1, &r), *b = random_rbm(5, 3, 1, &r);
        rbm *rs[2] = {a, b};
        char err[200] = "";
        dbn *d = dbn_from_rbms(rs, 2, 0, err, sizeof err);
        ok(!d && strcmp(err, "level 1 has 4 hidden units but level 2 has 5 "
                        "visible units") == 0, "sizes must chain: %s", err);
        a = random_rbm(6, 4, 1, &r);
        b = random_rbm(4, 3, 1, &r);
        a->up_scale = 2;
        rbm *rs2[2] = {a, b};
        d = dbn_from_rbms(rs2, 2, 0, err, sizeof err);
        ok(!d && strstr(err, "pretrained for a DBM"), "DBM-pretrained levels "
           "refused: %s", err);
    }

    /* ---- a 6-4-3 DBN ---- */
    int w2[3] = {6, 4, 3};
    dbn *d = make_dbn(w2, 2, 1.2, &r);
    ok(d != NULL, "6-4-3 DBN composed");
    dbn_work *w = dbn_work_new(d, 64);
    int V = 6;
    float vf[64 * 6];
    double v[6];

    /* dbn_up against rbm_hidden_probs */
    for (int b = 0; b < 64; b++)
        for (int i = 0; i < V; i++)
            vf[b * V + i] = (float)((b >> i) & 1);
    float h1[64 * 4], h2[64 * 3], ref[64 * 4], ref2[64 * 3];
    float *x[3] = {vf, h1, h2};
    dbn_up(d, 64, vf, 2, x, NULL, w);
    rbm_hidden_probs(d->r[0], 64, vf, ref);
    rbm_hidden_probs(d->r[1], 64, ref, ref2);
    ok(memcmp(h1, ref, sizeof h1) == 0 && memcmp(h2, ref2, sizeof h2) == 0,
       "dbn_up is the chain of rbm_hidden_probs");

    /* the bound: estimate vs exact expectation, and below log p(v) */
    double lz = top_logz(d->r[1]);
    double max_gap = 0, min_gap = INFINITY, worst_z = 0, mean_gap = 0;
    int below = 1;
    const int S = 4000;
    double *lb = malloc(64 * sizeof *lb);
    rng_t br;
    rng_seed(&br, 7);
    dbn_lower_bound(d, 64, vf, S, &br, lb, w);
    for (int b = 0; b < 64; b++) {
        bits(b, V, v);
        double sd, lp = exact_logp(d, v), eb = exact_bound2_sd(d, v, &sd);
        /* the estimate's error in standard errors sd / sqrt(S) */
        double z = fabs(lb[b] - eb) / (sd / sqrt((double)S) + 1e-12);
        worst_z = z > worst_z ? z : worst_z;
        double gap = lp - (eb - lz);
        below &= gap >= -1e-9;
        max_gap = gap > max_gap ? gap : max_gap;
        min_gap = gap < min_gap ? gap : min_gap;
        mean_gap += gap / 64;
    }
    ok(worst_z < 4.5, "bound estimate (S=%d) vs exact expectation: largest "
       "difference %.2f standard errors over 64 states", S, worst_z);
    ok(below, "the bound is below the exact log p(v) for every v (gap %.4f "
       "to %.4f, mean %.4f nats)", min_gap, max_gap, mean_gap);

    /* samples: top-RBM chains then a down-pass, against exact p(v) */
    {
        const int C = 2000, steps = 200;
        float *t1 = malloc((size_t)C * 4 * sizeof *t1);
        float *t2 = malloc((size_t)C * 3 * sizeof *t2);
        float *vv = malloc((size_t)C * V * sizeof *vv);
        float *p = malloc((size_t)C * 4 * sizeof *p);
        dbn_work *wc = dbn_work_new(d, C);
        rng_t sr;
        rng_seed(&sr, 11);
        for (int i = 0; i < C * 4; i++)
            t1[i] = (float)(rng_next(&sr) >> 63);
        long count[64] = {0};
        int draws = 0;
        for (int s = 0; s < steps; s++) {
            rbm_hidden_probs(d->r[1], C, t1, t2);
            rbm_sample_hidden(d->r[1], C, t2, t2, &sr);
            rbm_visible_probs(d->r[1], C, t2, NULL, p);
            rbm_sample_visible(d->r[1], C, p, NULL, t1, &sr);
            if (s >= 50 && s % 10 == 0) {
                float *xs[3] = {vv, t1, t2};
                dbn_down(d, C, 1, xs, 0, &sr, wc);
                for (int c = 0; c < C; c++) {
                    int k = 0;
                    for (int i = 0; i < V; i++)
                        k |= (vv[c * V + i] > 0.5f) << i;
                    count[k]++;
                }
                draws += C;
            }
        }
        double chi = 0;
        int cells = 0;
        for (int k = 0; k < 64; k++) {
            bits(k, V, v);
            double e = draws * exp(exact_logp(d, v));
            if (e < 5)
                continue;
            chi += (count[k] - e) * (count[k] - e) / e;
            cells++;
        }
        /* 99.9% point of chi-square with ~63 degrees of freedom is ~104;
         * consecutive draws of a chain are correlated, so allow twice */
        ok(chi < 2 * (cells + 3.3 * sqrt(2.0 * cells)), "DBN sample "
           "frequencies vs exact p(v): chi-square %.1f over %d cells, %d "
           "draws", chi, cells, draws);
        free(t1);
        free(t2);
        free(vv);
        free(p);
        dbn_work_free(wc);
    }

    /* ---- a 3-level chain 5-4-3-3: the bound is below log p(v) ---- */
    {
        int w3[4] = {5, 4, 3, 3};
        dbn *e = make_dbn(w3, 3, 1.0, &r);
        dbn_work *we = dbn_work_new(e, 32);
        float v5[32 * 5];
        for (int b = 0; b < 32; b++)
            for (int i = 0; i < 5; i++)
                v5[b * 5 + i] = (float)((b >> i) & 1);
        double lbe[32], lze = top_logz(e->r[2]);
        rng_t er;
        rng_seed(&er, 3);
        dbn_lower_bound(e, 32, v5, 3000, &er, lbe, we);
        int ok_all = 1;
        double worst = -INFINITY;
        for (int b = 0; b < 32; b++) {
            double vd[5];
            bits(b, 5, vd);
            double gap = exact_logp(e, vd) - (lbe[b] - lze);
            worst = gap < worst || worst == -INFINITY ? gap : worst;
            ok_all &= gap > -0.05;      /* sampling noise of the estimate */
        }
        ok(ok_all, "3-level DBN: bound estimate below exact log p(v) "
           "(smallest gap %.4f nats)", worst);
        dbn_work_free(we);
        dbn_free(e);
    }

    /* ---- up-down fine-tuning raises the bound on data of another DBN ---- */
    {
        dbn *truth = make_dbn(w2, 2, 2.0, &r);
        dbn *m = make_dbn(w2, 2, 0.1, &r);
        const int N = 1000;
        float *data = malloc((size_t)N * V * sizeof *data);
        float *t1 = malloc((size_t)N * 4 * sizeof *t1);
        float *t2 = malloc((size_t)N * 3 * sizeof *t2);
        float *p = malloc((size_t)N * 4 * sizeof *p);
        dbn_work *wt = dbn_work_new(truth, N);
        rng_t dr;
        rng_seed(&dr, 5);
        for (int i = 0; i < N * 4; i++)
            t1[i] = (float)(rng_next(&dr) >> 63);
        for (int s = 0; s < 100; s++) {
            rbm_hidden_probs(truth->r[1], N, t1, t2);
            rbm_sample_hidden(truth->r[1], N, t2, t2, &dr);
            rbm_visible_probs(truth->r[1], N, t2, NULL, p);
            rbm_sample_visible(truth->r[1], N, p, NULL, t1, &dr);
        }
        float *xs[3] = {data, t1, t2};
        dbn_down(truth, N, 1, xs, 0, &dr, wt);
        double before = 0, after = 0, ll0 = 0, ll1 = 0;
        for (int b = 0; b < N; b++) {
            for (int i = 0; i < V; i++)
                v[i] = data[b * V + i];
            before += exact_bound2(m, v) / N;
            ll0 += exact_logp(m, v) / N;
        }
        before -= top_logz(m->r[1]);
        dbn_work *wm = dbn_work_new(m, 50);
        dbn_tune_opts to = {0.05f, 3};
        rng_t tr;
        rng_seed(&tr, 9);
        double rec = 0;
        for (int ep = 0; ep < 60; ep++)
            for (int b0 = 0; b0 < N; b0 += 50)
                dbn_tune_step(m, 50, data + (size_t)b0 * V, &to, &tr, wm, &rec);
        for (int b = 0; b < N; b++) {
            for (int i = 0; i < V; i++)
                v[i] = data[b * V + i];
            after += exact_bound2(m, v) / N;
            ll1 += exact_logp(m, v) / N;
        }
        after -= top_logz(m->r[1]);
        ok(m->G[0] != NULL, "fine-tuning unties the generative weights");
        ok(after > before + 0.1, "up-down fine-tuning raises the exact mean "
           "bound: %.4f -> %.4f nats (log p(v): %.4f -> %.4f)", before, after,
           ll0, ll1);
        ok(ll1 > ll0, "... and the exact mean log-likelihood");

        /* model round trip keeps G */
        tz_model *mf = tz_model_new();
        tz_attr_set_s(&mf->meta, "model.type", "dbn");
        ok(dbn_to_model(m, mf) == 0, "dbn_to_model");
        char path[] = "/tmp/test_dbn_XXXXXX";
        int fd = mkstemp(path);
        close(fd);
        char err[300];
        ok(tz_model_save(mf, path, err, sizeof err) == 0, "saved");
        tz_model *back = tz_model_load(path, err, sizeof err);
        dbn *m2 = back ? dbn_from_model(back, err, sizeof err) : NULL;
        ok(m2 && m2->n == 2 && m2->G[0] &&
           memcmp(m2->G[0], m->G[0], 6 * 4 * sizeof(float)) == 0 &&
           memcmp(m2->r[0]->W, m->r[0]->W, 6 * 4 * sizeof(float)) == 0 &&
           memcmp(m2->r[1]->hbias, m->r[1]->hbias, 3 * sizeof(float)) == 0,
           "model round trip keeps every parameter and G");
        unlink(path);
        tz_model_free(mf);
        tz_model_free(back);
        dbn_free(m2);
        dbn_work_free(wm);
        dbn_work_free(wt);
        dbn_free(truth);
        dbn_free(m);
        free(data);
        free(t1);
        free(t2);
        free(p);
    }

    free(lb);
    dbn_work_free(w);
    dbn_free(d);
    return tap_done();
}
