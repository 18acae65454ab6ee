/* test_rbm.c - lib/rbm.c against exact references on models small enough
 * to enumerate: conditionals and free energies against direct formulas and
 * brute-force sums over h, the exact log-likelihood gradient against finite
 * differences, CD-k's expected update approaching the exact gradient as k
 * grows, PCD chain marginals against exact marginals, Gaussian and
 * replicated-softmax units, and the model file round trip.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemm.h"
#include "rbm.h"

#include "tap.h"

static rbm *random_rbm(int V, int H, int vis, int hid, double scale, rng_t *r)
{
    rbm *m = rbm_new(V, H, vis, hid);
    for (int i = 0; i < V * H; i++)
        m->W[i] = (float)(scale * rng_normal(r));
    for (int i = 0; i < V; i++)
        m->vbias[i] = (float)(0.5 * rng_normal(r));
    for (int j = 0; j < H; j++)
        m->hbias[j] = (float)(0.5 * rng_normal(r));
    if (m->sigma)
        for (int i = 0; i < V; i++)
            m->sigma[i] = (float)(0.5 + rng_uniform_d(r));
    return m;
}

/* Energy E(v, h) straight from the definitions (BRIEF section 2). */
static double energy(const rbm *m, const double *v, const double *h)
{
    int V = m->nv, H = m->nh;
    double D = 0, e = 0;
    for (int i = 0; i < V; i++)
        D += v[i];
    for (int i = 0; i < V; i++) {
        double vi = m->vis == RBM_GAUSSIAN ? v[i] / m->sigma[i] : v[i];
        for (int j = 0; j < H; j++)
            e -= vi * m->W[i * H + j] * h[j];
        if (m->vis == RBM_GAUSSIAN)
            e += (v[i] - m->vbias[i]) * (v[i] - m->vbias[i]) /
                 (2.0 * m->sigma[i] * m->sigma[i]);
        else
            e -= m->vbias[i] * v[i];
    }
    for (int j = 0; j < H; j++) {
        e -= (m->vis == RBM_REPSOFTMAX ? D : 1.0) * m->hbias[j] * h[j];
        if (m->hid == RBM_GAUSSIAN)
            e += 0.5 * h[j] * h[j];
    }
    return e;
}

static void bits(int x, int n, double *out)
{
    for (int i = 0; i < n; i++)
        out[i] = (x >> i) & 1;
}

/* -F(v) = log sum_h exp(-E(v,h)) over binary h. */
static double neg_free_brute(const rbm *m, const double *v)
{
    int H = m->nh;
    double h[32], mx = -INFINITY, s = 0, lw[1 << 12];
    for (int x = 0; x < (1 << H); x++) {
        bits(x, H, h);
        lw[x] = -energy(m, v, h);
        if (lw[x] > mx)
            mx = lw[x];
    }
    for (int x = 0; x < (1 << H); x++)
        s += exp(lw[x] - mx);
    return mx + log(s);
}

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* 1. Bernoulli conditionals and free energy over all 2^V visibles. */
static void test_bernoulli_exact(void)
{
    rng_t r;
    rng_seed(&r, 1);
    int V = 8, H = 5, NV = 1 << V, NH = 1 << H;
    rbm *m = random_rbm(V, H, RBM_BERNOULLI, RBM_BERNOULLI, 1.0, &r);
    float *v = malloc(sizeof(float) * NV * V), *ph = malloc(sizeof(float) * NV * H);
    float *h = malloc(sizeof(float) * NH * H), *pv = malloc(sizeof(float) * NH * V);
    double *F = malloc(sizeof(double) * NV);
    for (int x = 0; x < NV; x++)
        for (int i = 0; i < V; i++)
            v[x * V + i] = (float)((x >> i) & 1);
    for (int x = 0; x < NH; x++)
        for (int j = 0; j < H; j++)
            h[x * H + j] = (float)((x >> j) & 1);
    rbm_hidden_probs(m, NV, v, ph);
    rbm_visible_probs(m, NH, h, NULL, pv);
    rbm_free_energy(m, NV, v, F);
    double eh = 0, ev = 0, ef = 0;
    for (int x = 0; x < NV; x++) {
        double vd[8];
        bits(x, V, vd);
        for (int j = 0; j < H; j++) {
            double a = m->hbias[j];
            for (int i = 0; i < V; i++)
                a += vd[i] * m->W[i * H + j];
            eh = fmax(eh, fabs(sigm(a) - ph[x * H + j]));
        }
        ef = fmax(ef, fabs(-neg_free_brute(m, vd) - F[x]));
    }
    for (int x = 0; x < NH; x++)
        for (int i = 0; i < V; i++) {
            double a = m->vbias[i];
            for (int j = 0; j < H; j++)
                a += m->W[i * H + j] * ((x >> j) & 1);
            ev = fmax(ev, fabs(sigm(a) - pv[x * V + i]));
        }
    ok(eh < 1e-6, "bernoulli p(h|v) = s(b + W'v) over all 256 v (max err %.2e)", eh);
    ok(ev < 1e-6, "bernoulli p(v|h) = s(c + W h) over all 32 h (max err %.2e)", ev);
    ok(ef < 1e-4, "bernoulli F(v) = -log sum_h exp(-E) (max err %.2e)", ef);
    /* doubled inputs of the DBM-pretraining RBMs */
    m->up_scale = 2;
    m->down_scale = 2;
    rbm_hidden_probs(m, 1, v + 37 * V, ph);
    rbm_visible_probs(m, 1, h + 11 * H, NULL, pv);
    double a = m->hbias[0], c = m->vbias[0];
    for (int i = 0; i < V; i++)
        a += 2 * v[37 * V + i] * m->W[i * H];
    for (int j = 0; j < H; j++)
        c += 2 * h[11 * H + j] * m->W[j];
    ok(fabs(sigm(a) - ph[0]) < 1e-6 && fabs(sigm(c) - pv[0]) < 1e-6,
       "up_scale and down_scale double the inputs");
    rbm_free(m);
    free(v); free(ph); free(h); free(pv); free(F);
}

/* Exact average log-likelihood of N data rows and its gradient wrt W, c, b
 * (double, enumeration over all v and h). */
typedef struct { int V, H; double *W, *c, *b; } dparams;

static double exact_ll(const dparams *p, int N, const double *data)
{
    int V = p->V, H = p->H;
    double lz = -INFINITY;
    double v[16], h[16];
    for (int x = 0; x < (1 << V); x++)
        for (int y = 0; y < (1 << H); y++) {
            bits(x, V, v);
            bits(y, H, h);
            double s = 0;
            for (int i = 0; i < V; i++) {
                s += p->c[i] * v[i];
                for (int j = 0; j < H; j++)
                    s += v[i] * p->W[i * H + j] * h[j];
            }
            for (int j = 0; j < H; j++)
                s += p->b[j] * h[j];
            lz = lz > s ? lz + log1p(exp(s - lz)) : s + log1p(exp(lz - s));
        }
    double ll = 0;
    for (int n = 0; n < N; n++) {
        const double *d = data + n * V;
        double f = 0;
        for (int i = 0; i < V; i++)
            f += p->c[i] * d[i];
        for (int j = 0; j < H; j++) {
            double a = p->b[j];
            for (int i = 0; i < V; i++)
                a += d[i] * p->W[i * H + j];
            f += log1p(exp(a));
        }
        ll += f;
    }
    return ll / N - lz;
}

/* Gradient: <v h'>_data - <v h'>_model, with model term by enumeration. */
static void exact_grad(const dparams *p, int N, const double *data,
                       double *gW, double *gc, double *gb)
{
    int V = p->V, H = p->H;
    memset(gW, 0, sizeof(double) * V * H);
    memset(gc, 0, sizeof(double) * V);
    memset(gb, 0, sizeof(double) * H);
    double v[16];
    for (int n = 0; n < N; n++) {
        const double *d = data + n * V;
        for (int j = 0; j < H; j++) {
            double a = p->b[j];
            for (int i = 0; i < V; i++)
                a += d[i] * p->W[i * H + j];
            double q = sigm(a) / N;
            gb[j] += q;
            for (int i = 0; i < V; i++)
                gW[i * H + j] += d[i] * q;
        }
        for (int i = 0; i < V; i++)
            gc[i] += d[i] / N;
    }
    /* model: p(v) ∝ exp(-F(v)), E[h_j|v] = s(.) */
    double *lp = malloc(sizeof(double) * (1 << V)), mx = -INFINITY, Z = 0;
    for (int x = 0; x < (1 << V); x++) {
        bits(x, V, v);
        double f = 0;
        for (int i = 0; i < V; i++)
            f += p->c[i] * v[i];
        for (int j = 0; j < H; j++) {
            double a = p->b[j];
            for (int i = 0; i < V; i++)
                a += v[i] * p->W[i * H + j];
            f += log1p(exp(a));
        }
        lp[x] = f;
        mx = fmax(mx, f);
    }
    for (int x = 0; x < (1 << V); x++)
        Z += exp(lp[x] - mx);
    for (int x = 0; x < (1 << V); x++) {
        double w = exp(lp[x] - mx) / Z;
        bits(x, V, v);
        for (int j = 0; j < H; j++) {
            double a = p->b[j];
            for (int i = 0; i < V; i++)
                a += v[i] * p->W[i * H + j];
            double q = sigm(a) * w;
            gb[j] -= q;
            for (int i = 0; i < V; i++)
                gW[i * H + j] -= v[i] * q;
        }
        for (int i = 0; i < V; i++)
            gc[i] -= v[i] * w;
    }
    free(lp);
}

/* Model marginals E[v_i] by enumeration. */
static void exact_vmarg(const dparams *p, double *mv)
{
    double gW[64], gc[8], gb[8], zero[8] = {0};
    /* the model term of the gradient with no data: -E[v] */
    exact_grad(p, 0, zero, gW, gc, gb);
    for (int i = 0; i < p->V; i++)
        mv[i] = -gc[i];
}

static void to_dparams(const rbm *m, dparams *p)
{
    p->V = m->nv;
    p->H = m->nh;
    p->W = malloc(sizeof(double) * m->nv * m->nh);
    p->c = malloc(sizeof(double) * m->nv);
    p->b = malloc(sizeof(double) * m->nh);
    for (int i = 0; i < m->nv * m->nh; i++)
        p->W[i] = m->W[i];
    for (int i = 0; i < m->nv; i++)
        p->c[i] = m->vbias[i];
    for (int j = 0; j < m->nh; j++)
        p->b[j] = m->hbias[j];
}

static void free_dparams(dparams *p)
{
    free(p->W);
    free(p->c);
    free(p->b);
}

/* 2-4. Gradient vs finite differences; CD-k -> exact gradient; PCD. */
static void test_gradients(void)
{
    rng_t r;
    rng_seed(&r, 7);
    int V = 8, H = 5, N = 10;
    rbm *m = random_rbm(V, H, RBM_BERNOULLI, RBM_BERNOULLI, 2.0, &r);
    double data[80];
    for (int n = 0; n < N * V; n++)
        data[n] = rng_uniform(&r) < 0.35 + 0.3 * ((n % V) < 4);
    dparams p;
    to_dparams(m, &p);
    double gW[40], gc[8], gb[5];
    exact_grad(&p, N, data, gW, gc, gb);
    double worst = 0, eps = 1e-5;
    for (int x = 0; x < V * H + V + H; x++) {
        double *q = x < V * H ? &p.W[x] : x < V * H + V ? &p.c[x - V * H]
                  : &p.b[x - V * H - V];
        double g = x < V * H ? gW[x] : x < V * H + V ? gc[x - V * H]
                 : gb[x - V * H - V];
        double s = *q;
        *q = s + eps;
        double up = exact_ll(&p, N, data);
        *q = s - eps;
        double dn = exact_ll(&p, N, data);
        *q = s;
        worst = fmax(worst, fabs((up - dn) / (2 * eps) - g));
    }
    ok(worst < 1e-6, "exact log-likelihood gradient = finite differences "
       "(max err %.2e over %d parameters)", worst, V * H + V + H);

    /* CD-k: the average update (lr 1, no momentum or decay, parameters
     * reset after each step) estimates the CD-k gradient. */
    int R = 400, B = N * 50;
    float *batch = malloc(sizeof(float) * B * V);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < V; i++)
            batch[b * V + i] = (float)data[(b % N) * V + i];
    rbm *w = rbm_new(V, H, RBM_BERNOULLI, RBM_BERNOULLI);
    rbm_train_opts o;
    rbm_train_opts_init(&o);
    o.lr = 1;
    o.momentum = 0;
    o.weight_decay = 0;
    int ks[4] = {1, 3, 10, 40};
    double err[4], noise = 0;
    for (int t = 0; t < 4; t++) {
        o.k = ks[t];
        rbm_trainer *tr = rbm_trainer_new(w, B, 100 + t);
        double *sum = calloc(V * H, sizeof(double)), *sq = calloc(V * H, sizeof(double));
        for (int rep = 0; rep < R; rep++) {
            memcpy(w->W, m->W, sizeof(float) * V * H);
            memcpy(w->vbias, m->vbias, sizeof(float) * V);
            memcpy(w->hbias, m->hbias, sizeof(float) * H);
            rbm_train_step(tr, B, batch, &o);
            for (int x = 0; x < V * H; x++) {
                double d = w->W[x] - m->W[x];
                sum[x] += d;
                sq[x] += d * d;
            }
        }
        double e2 = 0, n2 = 0;
        for (int x = 0; x < V * H; x++) {
            double mean = sum[x] / R, var = sq[x] / R - mean * mean;
            e2 += (mean - gW[x]) * (mean - gW[x]);
            n2 += var / R;
        }
        err[t] = sqrt(e2 / (V * H));
        noise = sqrt(n2 / (V * H));
        rbm_trainer_free(tr);
        free(sum);
        free(sq);
    }
    printf("# CD-k rms error of E[dW] vs exact gradient: k=1 %.4f, k=3 %.4f, "
           "k=10 %.4f, k=40 %.4f (sampling noise %.4f)\n",
           err[0], err[1], err[2], err[3], noise);
    ok(err[0] > err[1] + 3 * noise && err[1] > err[2] + 3 * noise,
       "CD-k error decreases with k (%.4f > %.4f > %.4f)", err[0], err[1], err[2]);
    ok(err[3] < 4 * noise + 2e-3, "CD-40 expected update matches the exact "
       "gradient within sampling noise (%.4f vs noise %.4f)", err[3], noise);

    /* PCD with frozen parameters: the negative-phase visible means,
     * recovered from the vbias update, average to the exact marginals. */
    int C = 100, S = 3000;
    o.k = 1;
    o.pcd = 1;
    rbm_trainer *tr = rbm_trainer_new(w, C, 5);
    double mv[8] = {0}, ex[8];
    float v0[100 * 8];
    for (int b = 0; b < C * V; b++)
        v0[b] = batch[b];
    double vm0[8] = {0};
    for (int b = 0; b < C; b++)
        for (int i = 0; i < V; i++)
            vm0[i] += v0[b * V + i] / C;
    for (int s = 0; s < S; s++) {
        memcpy(w->W, m->W, sizeof(float) * V * H);
        memcpy(w->vbias, m->vbias, sizeof(float) * V);
        memcpy(w->hbias, m->hbias, sizeof(float) * H);
        rbm_train_step(tr, C, v0, &o);
        if (s >= 100)
            for (int i = 0; i < V; i++)
                mv[i] += (vm0[i] - (w->vbias[i] - m->vbias[i])) / (S - 100);
    }
    memcpy(w->W, m->W, sizeof(float) * V * H);
    exact_vmarg(&p, ex);
    double e = 0;
    for (int i = 0; i < V; i++)
        e = fmax(e, fabs(mv[i] - ex[i]));
    /* 290k chain states; even with an autocorrelation time of 20 steps the
     * standard error is below 0.5/sqrt(290000/20) = 0.004 */
    ok(e < 0.02, "PCD chain visible marginals = exact marginals (max err %.4f)", e);
    rbm_trainer_free(tr);
    rbm_free(w);
    free(batch);
    free_dparams(&p);
    rbm_free(m);
}

/* 5. Gaussian visible units with non-unit sigma. */
static void test_gaussian(void)
{
    rng_t r;
    rng_seed(&r, 3);
    int V = 3, H = 4;
    rbm *m = random_rbm(V, H, RBM_GAUSSIAN, RBM_BERNOULLI, 0.8, &r);
    float v[3 * 5], ph[4 * 5], h[4], pv[3];
    double F[5], eh = 0, ef = 0;
    for (int x = 0; x < 15; x++)
        v[x] = (float)(2 * rng_normal(&r));
    rbm_hidden_probs(m, 5, v, ph);
    rbm_free_energy(m, 5, v, F);
    for (int b = 0; b < 5; b++) {
        double vd[3] = {v[b * 3], v[b * 3 + 1], v[b * 3 + 2]};
        for (int j = 0; j < H; j++) {
            double a = m->hbias[j];
            for (int i = 0; i < V; i++)
                a += vd[i] / m->sigma[i] * m->W[i * H + j];
            eh = fmax(eh, fabs(sigm(a) - ph[b * H + j]));
        }
        ef = fmax(ef, fabs(-neg_free_brute(m, vd) - F[b]));
    }
    for (int j = 0; j < H; j++)
        h[j] = (float)(j & 1);
    rbm_visible_probs(m, 1, h, NULL, pv);
    double ev = 0;
    for (int i = 0; i < V; i++) {
        double mu = m->vbias[i];
        for (int j = 0; j < H; j++)
            mu += m->sigma[i] * m->W[i * H + j] * h[j];
        ev = fmax(ev, fabs(mu - pv[i]));
    }
    ok(eh < 1e-6, "gaussian p(h|v) = s(b + W'(v/sigma)) (max err %.2e)", eh);
    ok(ev < 1e-6, "gaussian E[v|h] = c + sigma W h (max err %.2e)", ev);
    ok(ef < 1e-4, "gaussian F(v) = -log sum_h exp(-E) (max err %.2e)", ef);

    /* 1-d model: integral of exp(-F) over v against the closed form
     * sum_h sqrt(2 pi) sigma exp(c w.h/sigma + (w.h)^2/2 + b.h) */
    rbm *g = random_rbm(1, 3, RBM_GAUSSIAN, RBM_BERNOULLI, 0.8, &r);
    g->sigma[0] = 0.7f;
    double closed = 0, num = 0, step = 1e-3;
    for (int x = 0; x < 8; x++) {
        double wh = 0, bh = 0;
        for (int j = 0; j < 3; j++)
            if ((x >> j) & 1) {
                wh += g->W[j];
                bh += g->hbias[j];
            }
        closed += sqrt(2 * M_PI) * g->sigma[0] *
                  exp(g->vbias[0] * wh / g->sigma[0] + wh * wh / 2 + bh);
    }
    enum { NP = 1000 };
    float grid[NP];
    double Fg[NP];
    for (double lo = -25; lo < 25; lo += NP * step) {
        for (int x = 0; x < NP; x++)
            grid[x] = (float)(lo + (x + 0.5) * step);
        rbm_free_energy(g, NP, grid, Fg);
        for (int x = 0; x < NP; x++)
            num += exp(-Fg[x]) * step;
    }
    ok(fabs(num / closed - 1) < 1e-4, "gaussian: integral of exp(-F) = closed "
       "form Z (%.6f vs %.6f)", num, closed);
    rbm_free(g);

    /* sampling p(v|h): mean c + sigma W h and standard deviation sigma */
    rng_t s;
    rng_seed(&s, 9);
    enum { NS = 20000 };
    float *hs = malloc(sizeof(float) * NS * H), *pvs = malloc(sizeof(float) * NS * V);
    for (int b = 0; b < NS; b++)
        memcpy(hs + b * H, h, sizeof h);
    rbm_visible_probs(m, NS, hs, NULL, pvs);
    rbm_sample_visible(m, NS, pvs, NULL, pvs, &s);
    double mean = 0, var = 0;
    for (int b = 0; b < NS; b++)
        mean += pvs[b * V] / NS;
    for (int b = 0; b < NS; b++)
        var += (pvs[b * V] - mean) * (pvs[b * V] - mean) / NS;
    ok(fabs(mean - pv[0]) < 4 * m->sigma[0] / sqrt(NS) &&
       fabs(sqrt(var) / m->sigma[0] - 1) < 0.03,
       "gaussian samples: mean %.4f (expect %.4f), sd %.4f (expect %.4f)",
       mean, pv[0], sqrt(var), m->sigma[0]);
    free(hs);
    free(pvs);
    rbm_free(m);
}

/* 6. Replicated softmax and softmax groups; gaussian hidden units. */
static void test_softmax_units(void)
{
    rng_t r;
    rng_seed(&r, 4);
    int V = 5, H = 3;
    rbm *m = random_rbm(V, H, RBM_REPSOFTMAX, RBM_BERNOULLI, 0.6, &r);
    float v[4 * 5] = {1, 0, 2, 0, 0,  0, 0, 0, 0, 7,  3, 1, 1, 2, 1,  0, 1, 0, 0, 0};
    float ph[4 * 3], d[4], pv[4 * 5];
    double F[4], eh = 0, ef = 0, ev = 0;
    rbm_doc_lengths(m, 4, v, d);
    ok(rbm_hidden_probs(m, 4, v, ph) == 0 && rbm_free_energy(m, 4, v, F) == 0,
       "replicated softmax: hidden means and free energies return 0");
    for (int b = 0; b < 4; b++) {
        double vd[5], D = 0;
        for (int i = 0; i < V; i++)
            D += vd[i] = v[b * V + i];
        for (int j = 0; j < H; j++) {
            double a = D * m->hbias[j];
            for (int i = 0; i < V; i++)
                a += vd[i] * m->W[i * H + j];
            eh = fmax(eh, fabs(sigm(a) - ph[b * H + j]));
        }
        ef = fmax(ef, fabs(-neg_free_brute(m, vd) - F[b]));
    }
    ok(d[0] == 3 && d[1] == 7 && d[2] == 8 && d[3] == 1, "document lengths");
    ok(eh < 1e-6, "replicated softmax p(h|v) = s(D b + W'v) (max err %.2e)", eh);
    ok(ef < 1e-4, "replicated softmax F(v) = -log sum_h exp(-E) (max err %.2e)", ef);
    float hh[4 * 3] = {1, 0, 1,  0, 0, 0,  1, 1, 1,  0, 1, 0};
    rbm_visible_probs(m, 4, hh, d, pv);
    for (int b = 0; b < 4; b++) {
        double a[5], s = 0;
        for (int i = 0; i < V; i++) {
            a[i] = m->vbias[i];
            for (int j = 0; j < H; j++)
                a[i] += m->W[i * H + j] * hh[b * H + j];
            s += exp(a[i]);
        }
        for (int i = 0; i < V; i++)
            ev = fmax(ev, fabs(d[b] * exp(a[i]) / s - pv[b * V + i]));
    }
    ok(ev < 1e-5, "replicated softmax E[v|h] = D softmax(c + W h) (max err %.2e)", ev);
    rng_t s;
    rng_seed(&s, 2);
    float smp[4 * 5];
    ok(rbm_sample_visible(m, 4, pv, d, smp, &s) == 0,
       "replicated softmax draws return 0");
    int sums_ok = 1;
    for (int b = 0; b < 4; b++) {
        float t = 0;
        for (int i = 0; i < V; i++)
            t += smp[b * V + i];
        sums_ok &= t == d[b];
    }
    ok(sums_ok, "replicated softmax samples hold D words");
    ok(rbm_check_data(m, 4, v, 0) == NULL, "counts accepted");
    v[3] = -1;
    ok(rbm_check_data(m, 4, v, 0) &&
       strcmp(rbm_check_data(m, 4, v, 0), "negative count for replicated-softmax units") == 0,
       "negative count rejected");
    rbm_free(m);

    /* softmax groups of K=3 over V=6, free energy by brute force */
    m = random_rbm(6, 3, RBM_SOFTMAX, RBM_BERNOULLI, 0.8, &r);
    m->softmax_group = 3;
    float h1[3] = {1, 0, 1}, p1[6], v1[6] = {0, 1, 0, 1, 0, 0};
    rbm_visible_probs(m, 1, h1, NULL, p1);
    double es = 0;
    for (int g = 0; g < 6; g += 3) {
        double a[3], z = 0;
        for (int i = 0; i < 3; i++) {
            a[i] = m->vbias[g + i] + m->W[(g + i) * 3] + m->W[(g + i) * 3 + 2];
            z += exp(a[i]);
        }
        for (int i = 0; i < 3; i++)
            es = fmax(es, fabs(exp(a[i]) / z - p1[g + i]));
    }
    double F1, vd1[6];
    for (int i = 0; i < 6; i++)
        vd1[i] = v1[i];
    rbm_free_energy(m, 1, v1, &F1);
    ok(es < 1e-6, "softmax groups: softmax within each group of 3 (max err %.2e)", es);
    ok(fabs(-neg_free_brute(m, vd1) - F1) < 1e-5, "softmax groups: F(v) brute force");
    ok(rbm_check_data(m, 1, v1, 0) == NULL, "one-hot groups accepted");
    v1[2] = 1;
    ok(rbm_check_data(m, 1, v1, 0) != NULL, "two-hot group rejected");
    rbm_free(m);

    /* gaussian (linear) hidden units: F(v) against numerical integration
     * over h of exp(-E(v,h)) for H = 1 */
    m = random_rbm(4, 1, RBM_BERNOULLI, RBM_GAUSSIAN, 0.8, &r);
    float v4[4] = {1, 0, 1, 1}, x4;
    double F4, vd4[4] = {1, 0, 1, 1}, num = 0;
    rbm_free_energy(m, 1, v4, &F4);
    rbm_hidden_probs(m, 1, v4, &x4);
    for (double t = -30; t < 30; t += 1e-3) {
        double hd = t + 5e-4;
        num += exp(-energy(m, vd4, &hd)) * 1e-3;
    }
    double a = m->hbias[0];
    for (int i = 0; i < 4; i++)
        a += vd4[i] * m->W[i];
    ok(fabs(-log(num) - F4) < 1e-5, "gaussian hidden: F(v) = -log integral "
       "exp(-E) dh (%.6f vs %.6f)", F4, -log(num));
    ok(fabs(x4 - a) < 1e-6, "gaussian hidden: E[h|v] = b + W'v");
    rbm_free(m);

    /* replicated softmax with gaussian hidden units: the hidden bias is
     * scaled by the document length here too (rbm.h, model-keys.md), and
     * F(v) = -log integral exp(-E) dh */
    m = random_rbm(3, 1, RBM_REPSOFTMAX, RBM_GAUSSIAN, 0.3, &r);
    float v5[3] = {2, 0, 3}, x5;
    double F5, vd5[3] = {2, 0, 3};
    ok(rbm_hidden_probs(m, 1, v5, &x5) == 0 && rbm_free_energy(m, 1, v5, &F5) == 0,
       "replicated softmax, gaussian hidden: return 0");
    double a5 = 5 * m->hbias[0], num5 = 0;
    for (int i = 0; i < 3; i++)
        a5 += vd5[i] * m->W[i];
    for (double t = -30; t < 30; t += 1e-3) {
        double hd = t + 5e-4;
        num5 += exp(-energy(m, vd5, &hd)) * 1e-3;
    }
    ok(fabs(x5 - a5) < 1e-6, "replicated softmax, gaussian hidden: E[h|v] = "
       "D b + W'v (%.6f vs %.6f)", x5, a5);
    ok(fabs(-log(num5) - F5) < 1e-5, "replicated softmax, gaussian hidden: "
       "F(v) = -log integral exp(-E) dh (%.6f vs %.6f)", F5, -log(num5));
    rbm_free(m);
}

/* 7. Model file round trip and corrupt models. */
static void test_model_file(void)
{
    rng_t r;
    rng_seed(&r, 5);
    rbm *m = random_rbm(7, 4, RBM_GAUSSIAN, RBM_BERNOULLI, 1, &r);
    m->down_scale = 2;
    tz_model *mf = tz_model_new();
    ok(rbm_to_model(m, mf) == 0, "rbm_to_model");
    char path[] = "/tmp/test_rbm_XXXXXX", err[300];
    int fd = mkstemp(path);
    close(fd);
    ok(tz_model_save(mf, path, err, sizeof err) == 0, "model saved");
    tz_model *back = tz_model_load(path, err, sizeof err);
    rbm *m2 = back ? rbm_from_model(back, err, sizeof err) : NULL;
    ok(m2 && m2->nv == 7 && m2->nh == 4 && m2->vis == RBM_GAUSSIAN &&
       m2->down_scale == 2 && m2->up_scale == 1 &&
       !memcmp(m2->W, m->W, sizeof(float) * 28) &&
       !memcmp(m2->vbias, m->vbias, sizeof(float) * 7) &&
       !memcmp(m2->hbias, m->hbias, sizeof(float) * 4) &&
       !memcmp(m2->sigma, m->sigma, sizeof(float) * 7),
       "model file round trip is exact");
    rbm_free(m2);
    /* rbm_from_model reads the rbm.* keys and the tensors only: model.type
     * is lib/model.c's to check */
    tz_attr_set_s(&back->meta, "model.type", "dbn");
    m2 = rbm_from_model(back, err, sizeof err);
    ok(m2 && m2->nv == 7 && m2->nh == 4 && m2->down_scale == 2,
       "rbm_from_model does not read model.type");
    rbm_free(m2);
    /* a wrong-length hbias; no rbm.visible */
    uint64_t sh[1] = {3};
    float z[3] = {0};
    tz_model_add(back, "hbias", TZ_F32, 1, sh, z);
    m2 = rbm_from_model(back, err, sizeof err);
    ok(!m2 && strstr(err, "tensor 'hbias'"), "wrong hbias shape: %s", err);
    tz_model *empty = tz_model_new();
    m2 = rbm_from_model(empty, err, sizeof err);
    ok(!m2 && !strcmp(err, "corrupt rbm model: unknown rbm.visible '?'"),
       "%s", err);
    tz_model_free(empty);
    unlink(path);
    tz_model_free(back);
    tz_model_free(mf);
    rbm_free(m);
}

/* 7. Threaded training steps (rbm_trainer_set_threads): the same seed and
 * thread count give the same parameters, bit for bit, also with PCD,
 * sparsity and a last batch smaller than the chains; and PCD chains run
 * on 3 threads still have the exact model marginals. */
static void train_some(rbm *w, const rbm *m0, int T, int steps, float *out)
{
    memcpy(w->W, m0->W, sizeof(float) * m0->nv * m0->nh);
    memcpy(w->vbias, m0->vbias, sizeof(float) * m0->nv);
    memcpy(w->hbias, m0->hbias, sizeof(float) * m0->nh);
    int V = m0->nv, H = m0->nh, B = 11;
    rbm_trainer *tr = rbm_trainer_new(w, B, 42);
    ok(tr && rbm_trainer_set_threads(tr, T) == 0 &&
       rbm_trainer_threads(tr) == T, "trainer on %d threads", T);
    rbm_train_opts o;
    rbm_train_opts_init(&o);
    o.pcd = 1;
    o.k = 2;
    o.sparsity_target = 0.1f;
    float v[11 * 9];
    rng_t r;
    rng_seed(&r, 3);
    for (int s = 0; s < steps; s++) {
        int n = s % 4 == 3 ? 4 : B;       /* some short batches */
        for (int x = 0; x < n * V; x++)
            v[x] = rng_uniform(&r) < 0.4f;
        rbm_train_step(tr, n, v, &o);
    }
    memcpy(out, w->W, sizeof(float) * V * H);
    memcpy(out + V * H, w->vbias, sizeof(float) * V);
    memcpy(out + V * H + V, w->hbias, sizeof(float) * H);
    rbm_trainer_free(tr);
}

static void test_threads(void)
{
    rng_t r;
    rng_seed(&r, 11);
    int V = 9, H = 6, n = V * H + V + H;
    rbm *m = random_rbm(V, H, RBM_BERNOULLI, RBM_BERNOULLI, 0.5, &r);
    rbm *w = rbm_new(V, H, RBM_BERNOULLI, RBM_BERNOULLI);
    float a[9 * 6 + 15], b[9 * 6 + 15], c[9 * 6 + 15];
    train_some(w, m, 3, 40, a);
    train_some(w, m, 3, 40, b);
    train_some(w, m, 1, 40, c);
    ok(memcmp(a, b, sizeof a) == 0, "3 threads: same seed, same parameters");
    double d = 0;
    for (int x = 0; x < n; x++)
        d = fmax(d, fabs(a[x] - c[x]));
    ok(memcmp(a, c, sizeof a) != 0 && d < 0.5,
       "3 threads vs 1: other random streams, similar parameters (max "
       "diff %.3f)", d);
    rbm_free(w);
    rbm_free(m);

    /* PCD with frozen parameters on 3 threads: the negative-phase visible
     * means, from the vbias update, average to the exact marginals */
    rng_seed(&r, 7);
    V = 8;
    H = 5;
    m = random_rbm(V, H, RBM_BERNOULLI, RBM_BERNOULLI, 2.0, &r);
    w = rbm_new(V, H, RBM_BERNOULLI, RBM_BERNOULLI);
    dparams p;
    to_dparams(m, &p);
    int C = 100, S = 3000;
    rbm_train_opts o;
    rbm_train_opts_init(&o);
    o.lr = 1;
    o.momentum = 0;
    o.weight_decay = 0;
    o.pcd = 1;
    rbm_trainer *tr = rbm_trainer_new(w, C, 5);
    rbm_trainer_set_threads(tr, 3);
    float v0[100 * 8];
    double vm0[8] = {0}, mv[8] = {0}, ex[8];
    for (int x = 0; x < C * V; x++) {
        v0[x] = rng_uniform(&r) < 0.5f;
        vm0[x % V] += v0[x] / C;
    }
    for (int s = 0; s < S; s++) {
        memcpy(w->W, m->W, sizeof(float) * V * H);
        memcpy(w->vbias, m->vbias, sizeof(float) * V);
        memcpy(w->hbias, m->hbias, sizeof(float) * H);
        rbm_train_step(tr, C, v0, &o);
        if (s >= 100)
            for (int i = 0; i < V; i++)
                mv[i] += (vm0[i] - (w->vbias[i] - m->vbias[i])) / (S - 100);
    }
    exact_vmarg(&p, ex);
    double e = 0;
    for (int i = 0; i < V; i++)
        e = fmax(e, fabs(mv[i] - ex[i]));
    ok(e < 0.02, "PCD on 3 threads: chain visible marginals = exact "
       "marginals (max err %.4f)", e);
    rbm_trainer_free(tr);
    free_dparams(&p);
    rbm_free(w);
    rbm_free(m);
}

int main(void)
{
    gemm_init(1);
    test_bernoulli_exact();
    test_gradients();
    test_gaussian();
    test_softmax_units();
    test_model_file();
    test_threads();
    return tap_done();
}
