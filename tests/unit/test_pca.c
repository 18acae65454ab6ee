/* test_pca.c - unit tests for lib/pca: the eigen-decomposition, streaming
 * moments, PCA projection, PCA/ZCA whitening and the model-file round
 * trip, each against a reference computed here independently (direct
 * two-pass sums in long double, explicit matrix products). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pca.h"
#include "rng.h"

static int n_test, n_fail;

static void check(int ok, const char *what, double err)
{
    n_test++;
    if (!ok)
        n_fail++;
    printf("%sok %d - %s (err %.3g)\n", ok ? "" : "not ", n_test, what, err);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* x (n, D) = z (n, R) a (R, D) + noise * N(0,1) + offset, with z ~ N(0,1)
 * and a ~ N(0,1) (row-major). */
static double *make_data(rng_t *g, int n, int d, int r, double noise,
                         double offset)
{
    double *a = xmalloc((size_t)r * d * sizeof *a);
    double *x = xmalloc((size_t)n * d * sizeof *x);
    for (int i = 0; i < r * d; i++)
        a[i] = rng_normal(g);
    for (int i = 0; i < n; i++) {
        double z[16];
        for (int l = 0; l < r; l++)
            z[l] = rng_normal(g);
        for (int j = 0; j < d; j++) {
            double s = offset + (j % 3) + noise * rng_normal(g);
            for (int l = 0; l < r; l++)
                s += z[l] * a[l * d + j];
            x[(size_t)i * d + j] = s;
        }
    }
    free(a);
    return x;
}

/* Reference mean (D) and covariance (D, D) by two passes in long double. */
static void ref_moments(const double *x, int n, int d, double *mean,
                        double *cov)
{
    for (int j = 0; j < d; j++) {
        long double s = 0;
        for (int i = 0; i < n; i++)
            s += x[(size_t)i * d + j];
        mean[j] = (double)(s / n);
    }
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) {
            long double s = 0;
            for (int i = 0; i < n; i++)
                s += ((long double)x[(size_t)i * d + a] - mean[a]) *
                     ((long double)x[(size_t)i * d + b] - mean[b]);
            cov[a * d + b] = (double)(s / (n - 1));
        }
}

/* Moments accumulated by pca_moments in batches of `batch` rows. */
static pca_moments *stream(const double *x, int n, int d, int batch)
{
    pca_moments *m = pca_moments_new(d);
    double *buf = xmalloc((size_t)batch * d * sizeof *buf);
    for (int i = 0; i < n; i += batch) {
        int b = n - i < batch ? n - i : batch;
        memcpy(buf, x + (size_t)i * d, (size_t)b * d * sizeof *buf);
        if (pca_moments_add(m, buf, (size_t)b))
            return NULL;
    }
    free(buf);
    return m;
}

static double max_abs_diff(const double *a, const double *b, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i] - b[i]) > e || isnan(a[i] - b[i]))
            e = isnan(a[i] - b[i]) ? INFINITY : fabs(a[i] - b[i]);
    return e;
}

/* A random symmetric positive semi-definite matrix c (D, D) = b b' / D with
 * b (D, R). */
static void random_psd(rng_t *g, int d, int r, double *c)
{
    double *b = xmalloc((size_t)d * r * sizeof *b);
    for (int i = 0; i < d * r; i++)
        b[i] = rng_normal(g);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int l = 0; l < r; l++)
                s += b[i * r + l] * b[j * r + l];
            c[i * d + j] = s / d;
        }
    free(b);
}

static void test_eigh(rng_t *g)
{
    for (int t = 0; t < 3; t++) {
        int d = 7 + 9 * t, k = t == 1 ? 4 : d;
        double *c = xmalloc((size_t)d * d * sizeof *c);
        double *w = xmalloc((size_t)k * sizeof *w);
        double *u = xmalloc((size_t)k * d * sizeof *u);
        random_psd(g, d, d + 3, c);
        int e = pca_eigh(d, k, c, w, u);
        check(e == 0, "pca_eigh succeeds", e);
        /* U U' = I (K, K) */
        double orth = 0;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) {
                double s = 0;
                for (int i = 0; i < d; i++)
                    s += u[a * d + i] * u[b * d + i];
                orth = fmax(orth, fabs(s - (a == b)));
            }
        check(orth < 1e-12, "eigenvectors are orthonormal", orth);
        /* C u_j = l_j u_j for each kept pair */
        double res = 0;
        for (int j = 0; j < k; j++)
            for (int i = 0; i < d; i++) {
                double s = 0;
                for (int l = 0; l < d; l++)
                    s += c[i * d + l] * u[j * d + l];
                res = fmax(res, fabs(s - w[j] * u[j * d + i]));
            }
        check(res < 1e-12 * (1 + w[0]), "C u = l u for every kept pair", res);
        int order = 1, sign = 1;
        for (int j = 0; j + 1 < k; j++)
            order &= w[j] >= w[j + 1];
        for (int j = 0; j < k; j++) {
            int arg = 0;
            for (int i = 1; i < d; i++)
                if (fabs(u[j * d + i]) > fabs(u[j * d + arg]))
                    arg = i;
            sign &= u[j * d + arg] > 0;
        }
        check(order, "eigenvalues decrease", 0);
        check(sign, "largest |entry| of each component is positive", 0);
        if (k == d) {
            /* C = U' diag(l) U (rows of U are the eigenvectors) */
            double rec = 0;
            for (int a = 0; a < d; a++)
                for (int b = 0; b < d; b++) {
                    double s = 0;
                    for (int j = 0; j < d; j++)
                        s += u[j * d + a] * w[j] * u[j * d + b];
                    rec = fmax(rec, fabs(s - c[a * d + b]));
                }
            check(rec < 1e-12 * (1 + w[0]), "C = U' diag(l) U reconstructs C",
                  rec);
            double tr = 0, sw = 0;
            for (int i = 0; i < d; i++) {
                tr += c[i * d + i];
                sw += w[i];
            }
            check(fabs(tr - sw) < 1e-12 * tr, "sum of eigenvalues = trace",
                  fabs(tr - sw));
        }
        free(c);
        free(w);
        free(u);
    }
    /* A diagonal matrix with known answer: eigenvalues 5 3 2, e_1 e_2 e_0 */
    double c[9] = {2, 0, 0, 0, 5, 0, 0, 0, 3}, w[2], u[6];
    int e = pca_eigh(3, 2, c, w, u);
    double want_u[6] = {0, 1, 0, 0, 0, 1};
    double err = fmax(fabs(w[0] - 5) + fabs(w[1] - 3), max_abs_diff(u, want_u, 6));
    check(e == 0 && err < 1e-14, "diagonal matrix: top 2 eigenpairs exact", err);
    check(pca_eigh(3, 4, c, w, u) == PCA_E_ARG, "k > d is rejected", 0);
    c[4] = NAN;
    check(pca_eigh(3, 2, c, w, u) == PCA_E_NONFINITE, "NaN is rejected", 0);
}

static void test_moments(rng_t *g)
{
    int n = 1000, d = 9;
    /* an offset of 1e6 with unit-scale spread: a naive sum of squares
     * loses about 12 of its 16 digits here; the shifted sums must not */
    double *x = make_data(g, n, d, 4, 0.5, 1e6);
    double *rm = xmalloc(d * sizeof *rm), *rc = xmalloc(d * d * sizeof *rc);
    double *m1 = xmalloc(d * sizeof *m1), *c1 = xmalloc(d * d * sizeof *c1);
    ref_moments(x, n, d, rm, rc);
    int batches[3] = {1000, 64, 7};
    for (int t = 0; t < 3; t++) {
        pca_moments *m = stream(x, n, d, batches[t]);
        int e = pca_moments_result(m, m1, c1);
        double em = max_abs_diff(m1, rm, d), ec = max_abs_diff(c1, rc, d * d);
        char what[100];
        snprintf(what, sizeof what,
                 "moments in batches of %d match two-pass reference (offset 1e6)",
                 batches[t]);
        check(e == 0 && m->n == (uint64_t)n && em < 1e-8 && ec < 1e-9, what,
              fmax(em / 1e6, ec));
        pca_moments_free(m);
    }
    pca_moments *m = pca_moments_new(d);
    check(pca_moments_result(m, m1, c1) == PCA_E_FEW, "no records: PCA_E_FEW", 0);
    memcpy(m1, x, d * sizeof *m1);
    pca_moments_add(m, m1, 1);
    check(pca_moments_result(m, m1, c1) == PCA_E_FEW, "one record: PCA_E_FEW", 0);
    memcpy(m1, x, d * sizeof *m1);
    m1[3] = INFINITY;
    check(pca_moments_add(m, m1, 1) == PCA_E_NONFINITE && m->n == 1,
          "infinity rejected, sums untouched", 0);
    pca_moments_free(m);
    free(x);
    free(rm);
    free(rc);
    free(m1);
    free(c1);
}

/* Sample covariance (out, out) of y (n, out) in long double. */
static double cov_identity_err(const double *y, int n, int out, double *mean_err)
{
    double *mu = xmalloc(out * sizeof *mu), *cv = xmalloc(out * out * sizeof *cv);
    ref_moments(y, n, out, mu, cv);
    double e = 0, me = 0;
    for (int a = 0; a < out; a++) {
        me = fmax(me, fabs(mu[a]));
        for (int b = 0; b < out; b++)
            e = fmax(e, fabs(cv[a * out + b] - (a == b)));
    }
    free(mu);
    free(cv);
    *mean_err = me;
    return e;
}

static pca *fit_data(const double *x, int n, int d, int k)
{
    double *mean = xmalloc(d * sizeof *mean), *cov = xmalloc(d * d * sizeof *cov);
    pca_moments *m = stream(x, n, d, 100);
    pca *p = pca_new(d, k);
    if (pca_moments_result(m, mean, cov) || pca_fit(p, mean, cov)) {
        pca_free(p);
        p = NULL;
    }
    pca_moments_free(m);
    free(mean);
    free(cov);
    return p;
}

static double *apply_copy(const pca *p, const double *x, int n)
{
    double *xc = xmalloc((size_t)n * p->d * sizeof *xc);
    double *y = xmalloc((size_t)n * p->out * sizeof *y);
    memcpy(xc, x, (size_t)n * p->d * sizeof *xc);
    pca_apply(p, n, xc, y);
    free(xc);
    return y;
}

static void test_whiten(rng_t *g)
{
    int n = 2000, d = 8;
    double *x = make_data(g, n, d, 8, 0.1, 3.0);
    pca *p = fit_data(x, n, d, d);
    check(p && pca_prepare(p, PCA_WHITEN, 0) == 0, "fit + prepare PCA whitening", 0);
    double me;
    double *y = apply_copy(p, x, n);
    double e = cov_identity_err(y, n, d, &me);
    check(e < 1e-9 && me < 1e-9, "PCA-whitened data: covariance I, mean 0",
          fmax(e, me));
    free(y);

    check(pca_prepare(p, PCA_ZCA, 0) == 0 && p->out == d, "prepare ZCA", 0);
    y = apply_copy(p, x, n);
    e = cov_identity_err(y, n, d, &me);
    check(e < 1e-9 && me < 1e-9, "ZCA-whitened data: covariance I, mean 0",
          fmax(e, me));
    double sym = 0;
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++)
            sym = fmax(sym, fabs(p->w[a * d + b] - p->w[b * d + a]));
    check(sym == 0, "ZCA matrix is symmetric, W = W'", sym);
    /* W C W = I, with C the reference covariance */
    double *rm = xmalloc(d * sizeof *rm), *rc = xmalloc(d * d * sizeof *rc);
    ref_moments(x, n, d, rm, rc);
    double wcw = 0;
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) {
            double s = 0;
            for (int i = 0; i < d; i++)
                for (int j = 0; j < d; j++)
                    s += p->w[a * d + i] * rc[i * d + j] * p->w[j * d + b];
            wcw = fmax(wcw, fabs(s - (a == b)));
        }
    check(wcw < 1e-9, "ZCA: W C W = I", wcw);
    /* ZCA output is the PCA-whitened output rotated by U': y_zca = U' y_pca */
    double *yz = y;
    pca_prepare(p, PCA_WHITEN, 0);
    double *yp = apply_copy(p, x, n), rot = 0;
    for (int i = 0; i < n; i++)
        for (int a = 0; a < d; a++) {
            double s = 0;
            for (int j = 0; j < d; j++)
                s += p->components[j * d + a] * yp[(size_t)i * d + j];
            rot = fmax(rot, fabs(s - yz[(size_t)i * d + a]));
        }
    check(rot < 1e-9, "ZCA output = U' (PCA-whitened output)", rot);
    /* epsilon shrinks the variance of component j to l_j / (l_j + eps) */
    double eps = 0.5;
    pca_prepare(p, PCA_WHITEN, eps);
    free(y);
    y = apply_copy(p, x, n);
    double *ym = xmalloc(d * sizeof *ym), *yc = xmalloc(d * d * sizeof *yc), ee = 0;
    ref_moments(y, n, d, ym, yc);
    for (int j = 0; j < d; j++)
        ee = fmax(ee, fabs(yc[j * d + j] - p->eigenvalues[j] /
                                         (p->eigenvalues[j] + eps)));
    check(ee < 1e-9, "with epsilon: var_j = l_j / (l_j + eps)", ee);
    free(ym);
    free(yc);
    free(y);
    free(yp);
    free(rm);
    free(rc);
    pca_free(p);
    free(x);

    /* rank-deficient data cannot be whitened without epsilon */
    double *xr = make_data(g, 200, 6, 2, 0, 0);
    p = fit_data(xr, 200, 6, 6);
    check(p && pca_prepare(p, PCA_WHITEN, 0) == PCA_E_SINGULAR,
          "rank-2 data, epsilon 0: PCA_E_SINGULAR", 0);
    check(p && pca_prepare(p, PCA_ZCA, 1e-3) == 0,
          "rank-2 data, epsilon 1e-3: accepted", 0);
    pca_free(p);
    free(xr);
}

static void test_lowrank(rng_t *g)
{
    /* x = z a + m exactly, z (n, 3): the covariance has rank 3 */
    int n = 500, d = 12, r = 3;
    double *x = make_data(g, n, d, r, 0, 5.0);
    double *rm = xmalloc(d * sizeof *rm), *rc = xmalloc(d * d * sizeof *rc);
    ref_moments(x, n, d, rm, rc);
    double trace = 0;
    for (int j = 0; j < d; j++)
        trace += rc[j * d + j];
    pca *full = fit_data(x, n, d, d);
    double tail = 0;
    for (int j = r; j < d; j++)
        tail = fmax(tail, full->eigenvalues[j]);
    check(tail < 1e-10 * trace, "rank-3 data: eigenvalues 4..12 vanish", tail);
    pca_free(full);

    pca *p = fit_data(x, n, d, r);
    check(p && pca_prepare(p, PCA_PROJECT, 0) == 0 && p->out == r,
          "fit + prepare PCA, k = 3", 0);
    double *y = apply_copy(p, x, n);
    double *ym = xmalloc(r * sizeof *ym), *yc = xmalloc(r * r * sizeof *yc);
    ref_moments(y, n, r, ym, yc);
    /* projections: uncorrelated, with variances = eigenvalues summing to
     * the total variance (trace), mean 0 */
    double e = 0, sum = 0;
    for (int a = 0; a < r; a++) {
        sum += yc[a * r + a];
        e = fmax(e, fabs(ym[a]));
        for (int b = 0; b < r; b++)
            e = fmax(e, fabs(yc[a * r + b] - (a == b ? p->eigenvalues[a] : 0)));
    }
    check(e < 1e-9 * trace, "projection covariance = diag(eigenvalues)", e);
    check(fabs(sum - trace) < 1e-9 * trace,
          "3 components recover all the variance (sum = trace)",
          fabs(sum - trace));
    /* and reconstruct the data: x = mean + y U */
    double rec = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double s = p->mean[j];
            for (int a = 0; a < r; a++)
                s += y[(size_t)i * r + a] * p->components[a * d + j];
            rec = fmax(rec, fabs(s - x[(size_t)i * d + j]));
        }
    check(rec < 1e-9, "mean + y U reconstructs x", rec);

    /* model round trip: the same transform, bit for bit */
    tz_model *mf = tz_model_new();
    char err[200] = "";
    check(pca_to_model(p, mf) == 0, "pca_to_model", 0);
    pca *q = pca_from_model(mf, err, sizeof err);
    int same = q && q->d == d && q->k == r && q->mode == PCA_PROJECT &&
               !memcmp(q->w, p->w, (size_t)r * d * sizeof *q->w) &&
               !memcmp(q->mean, p->mean, d * sizeof *q->mean);
    check(same, "model round trip gives the identical transform", 0);
    pca_free(q);
    pca_prepare(p, PCA_ZCA, 0.25);
    tz_model_free(mf);
    mf = tz_model_new();
    pca_to_model(p, mf);
    q = pca_from_model(mf, err, sizeof err);
    same = q && q->mode == PCA_ZCA && q->epsilon == 0.25 && q->out == d &&
           !memcmp(q->w, p->w, (size_t)d * d * sizeof *q->w);
    check(same, "ZCA model round trip: mode, epsilon and W identical", 0);
    pca_free(q);
    tz_attr_set_s(&mf->meta, "model.type", "rbm");
    q = pca_from_model(mf, err, sizeof err);
    check(!q && strcmp(err, "not a pca or whiten model (model.type is 'rbm')") == 0,
          "a non-pca model is refused", 0);
    tz_model_free(mf);
    pca_free(p);
    free(x);
    free(y);
    free(ym);
    free(yc);
    free(rm);
    free(rc);
}

int main(void)
{
    rng_t g;
    rng_seed(&g, 20240607);
    test_eigh(&g);
    test_moments(&g);
    test_whiten(&g);
    test_lowrank(&g);
    printf("1..%d\n", n_test);
    return n_fail != 0;
}
