/* pca.c - PCA and PCA/ZCA whitening (pca.h): streaming moments with
 * gemm_f64, eigenpairs from LAPACK's dsyevr, and the model-file form. */
#include "pca.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

/* LAPACK (Fortran) symmetric eigensolver, relatively robust
 * representations.  The trailing size_t arguments are the hidden lengths
 * of the three CHARACTER arguments, as gfortran passes them. */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo,
                    const int *n, double *a, const int *lda,
                    const double *vl, const double *vu,
                    const int *il, const int *iu, const double *abstol,
                    int *m, double *w, double *z, const int *ldz,
                    int *isuppz, double *work, const int *lwork,
                    int *iwork, const int *liwork, int *info,
                    size_t jobz_len, size_t range_len, size_t uplo_len);

const char *pca_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case PCA_E_ARG: return "invalid argument";
    case PCA_E_NOMEM: return "out of memory";
    case PCA_E_FEW: return "need at least 2 records to estimate a covariance";
    case PCA_E_NONFINITE: return "input contains NaN or infinite values";
    case PCA_E_EIGEN: return "the eigensolver (LAPACK dsyevr) failed";
    case PCA_E_SINGULAR:
        return "covariance is singular in the kept components; "
               "use a positive epsilon or fewer components";
    case PCA_E_MODEL: return "not a valid pca or whiten model";
    default: return "unknown error";
    }
}

/* ---- streaming moments ------------------------------------------------- */

pca_moments *pca_moments_new(int d)
{
    if (d < 1 || (size_t)d > SIZE_MAX / sizeof(double) / (size_t)d)
        return NULL;
    pca_moments *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->d = d;
    m->shift = calloc((size_t)d, sizeof *m->shift);
    m->sum = calloc((size_t)d, sizeof *m->sum);
    m->sxx = calloc((size_t)d * d, sizeof *m->sxx);
    if (!m->shift || !m->sum || !m->sxx) {
        pca_moments_free(m);
        return NULL;
    }
    return m;
}

void pca_moments_free(pca_moments *m)
{
    if (!m)
        return;
    free(m->shift);
    free(m->sum);
    free(m->sxx);
    free(m);
}

int pca_moments_add(pca_moments *m, double *x, size_t n)
{
    size_t d = (size_t)m->d;
    if (n == 0)
        return 0;
    if (n > INT_MAX)
        return PCA_E_ARG;
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(x[i]))
            return PCA_E_NONFINITE;
    if (m->n == 0) {
        /* c (D) = mean of the first batch: the shift */
        for (size_t j = 0; j < d; j++)
            m->shift[j] = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                m->shift[j] += x[i * d + j];
        for (size_t j = 0; j < d; j++)
            m->shift[j] /= (double)n;
    }
    /* x (n, D) -= c; sum (D) += column sums; sxx (D, D) += x'x */
    for (size_t i = 0; i < n; i++) {
        double *row = x + i * d;
        for (size_t j = 0; j < d; j++) {
            row[j] -= m->shift[j];
            m->sum[j] += row[j];
        }
    }
    gemm_f64(GEMM_TRANS, GEMM_NOTRANS, m->d, m->d, (int)n,
             1.0, x, m->d, x, m->d, 1.0, m->sxx, m->d);
    m->n += n;
    return 0;
}

int pca_moments_result(const pca_moments *m, double *mean, double *cov)
{
    size_t d = (size_t)m->d;
    if (m->n < 2)
        return PCA_E_FEW;
    double n = (double)m->n;
    for (size_t j = 0; j < d; j++)
        mean[j] = m->shift[j] + m->sum[j] / n;
    /* cov = (sxx - sum sum' / n) / (n - 1), made exactly symmetric */
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j <= i; j++) {
            double a = m->sxx[i * d + j] - m->sum[i] * m->sum[j] / n;
            double b = m->sxx[j * d + i] - m->sum[j] * m->sum[i] / n;
            double c = 0.5 * (a + b) / (n - 1);
            cov[i * d + j] = c;
            cov[j * d + i] = c;
        }
    return 0;
}

/* ---- eigen-decomposition ------------------------------------------------ */

int pca_eigh(int d, int k, const double *a, double *w, double *z)
{
    if (d < 1 || k < 1 || k > d)
        return PCA_E_ARG;
    size_t dd = (size_t)d * d;
    for (size_t i = 0; i < dd; i++)
        if (!isfinite(a[i]))
            return PCA_E_NONFINITE;
    double *acopy = malloc(dd * sizeof *acopy);
    double *wall = malloc((size_t)d * sizeof *wall);
    double *zcol = malloc((size_t)d * k * sizeof *zcol);
    int *isuppz = malloc(2 * (size_t)k * sizeof *isuppz);
    double *work = NULL;
    int *iwork = NULL;
    int rc = PCA_E_NOMEM;
    if (!acopy || !wall || !zcol || !isuppz)
        goto out;
    memcpy(acopy, a, dd * sizeof *acopy);

    /* The matrix is symmetric, so row-major and column-major agree.  Ask
     * for eigenvalues il..iu (1-based, ascending) = the k largest. */
    const char *range = k == d ? "A" : "I";
    int il = d - k + 1, iu = d, m = 0, info = 0, lwork = -1, liwork = -1;
    double vl = 0, vu = 0, abstol = DBL_MIN, wq = 0;
    int iwq = 0;
    dsyevr_("V", range, "U", &d, acopy, &d, &vl, &vu, &il, &iu, &abstol,
            &m, wall, zcol, &d, isuppz, &wq, &lwork, &iwq, &liwork, &info,
            1, 1, 1);
    if (info != 0) {
        rc = PCA_E_EIGEN;
        goto out;
    }
    lwork = (int)wq + 1;
    liwork = iwq;
    work = malloc((size_t)lwork * sizeof *work);
    iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork)
        goto out;
    dsyevr_("V", range, "U", &d, acopy, &d, &vl, &vu, &il, &iu, &abstol,
            &m, wall, zcol, &d, isuppz, work, &lwork, iwork, &liwork, &info,
            1, 1, 1);
    if (info != 0 || m != k) {
        rc = PCA_E_EIGEN;
        goto out;
    }
    /* zcol is (D, k) column-major: column c is eigenvector c, ascending.
     * Output row i takes column k-1-i. */
    for (int i = 0; i < k; i++) {
        const double *src = zcol + (size_t)(k - 1 - i) * d;
        double *dst = z + (size_t)i * d;
        int arg = 0;
        for (int j = 1; j < d; j++)
            if (fabs(src[j]) > fabs(src[arg]))
                arg = j;
        double sign = src[arg] < 0 ? -1.0 : 1.0;
        for (int j = 0; j < d; j++)
            dst[j] = sign * src[j];
        w[i] = wall[k - 1 - i];
    }
    rc = 0;
out:
    free(acopy);
    free(wall);
    free(zcol);
    free(isuppz);
    free(work);
    free(iwork);
    return rc;
}

/* ---- the transform ---------------------------------------------------- */

pca *pca_new(int d, int k)
{
    if (d < 1 || k < 1 || k > d ||
        (size_t)d > SIZE_MAX / sizeof(double) / (size_t)d)
        return NULL;
    pca *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->d = d;
    p->k = k;
    p->mode = PCA_PROJECT;
    p->out = k;
    p->mean = calloc((size_t)d, sizeof *p->mean);
    p->components = calloc((size_t)k * d, sizeof *p->components);
    p->eigenvalues = calloc((size_t)k, sizeof *p->eigenvalues);
    if (!p->mean || !p->components || !p->eigenvalues) {
        pca_free(p);
        return NULL;
    }
    return p;
}

void pca_free(pca *p)
{
    if (!p)
        return;
    free(p->mean);
    free(p->components);
    free(p->eigenvalues);
    free(p->w);
    free(p);
}

int pca_fit(pca *p, const double *mean, const double *cov)
{
    int e = pca_eigh(p->d, p->k, cov, p->eigenvalues, p->components);
    if (e)
        return e;
    for (int j = 0; j < p->k; j++)
        if (p->eigenvalues[j] < 0)
            p->eigenvalues[j] = 0;
    memcpy(p->mean, mean, (size_t)p->d * sizeof *mean);
    return 0;
}

int pca_prepare(pca *p, int mode, double epsilon)
{
    if ((mode != PCA_PROJECT && mode != PCA_WHITEN && mode != PCA_ZCA) ||
        !(epsilon >= 0) || !isfinite(epsilon))
        return PCA_E_ARG;
    size_t d = (size_t)p->d, k = (size_t)p->k;
    int out = mode == PCA_ZCA ? p->d : p->k;
    /* s (K) = 1/sqrt(l + epsilon), or 1 for a plain projection */
    double *s = malloc(k * sizeof *s);
    double *w = malloc((size_t)out * d * sizeof *w);
    double *v = mode == PCA_ZCA ? malloc(k * d * sizeof *v) : NULL;
    if (!s || !w || (mode == PCA_ZCA && !v)) {
        free(s);
        free(w);
        free(v);
        return PCA_E_NOMEM;
    }
    double floor_ = (p->eigenvalues[0] > 0 ? p->eigenvalues[0] : 0) *
                    (double)d * DBL_EPSILON;
    for (size_t j = 0; j < k; j++) {
        if (mode == PCA_PROJECT) {
            s[j] = 1;
            continue;
        }
        double l = p->eigenvalues[j] + epsilon;
        if (!(l > floor_)) {
            free(s);
            free(w);
            free(v);
            return PCA_E_SINGULAR;
        }
        s[j] = 1 / sqrt(l);
    }
    if (mode == PCA_ZCA) {
        /* v (K, D) = diag(sqrt(s)) U;  w (D, D) = v'v = U' diag(s) U */
        for (size_t j = 0; j < k; j++) {
            double r = sqrt(s[j]);
            for (size_t i = 0; i < d; i++)
                v[j * d + i] = r * p->components[j * d + i];
        }
        gemm_f64(GEMM_TRANS, GEMM_NOTRANS, p->d, p->d, p->k, 1.0, v, p->d,
                 v, p->d, 0.0, w, p->d);
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < i; j++) {
                double c = 0.5 * (w[i * d + j] + w[j * d + i]);
                w[i * d + j] = c;
                w[j * d + i] = c;
            }
    } else {
        /* w (K, D) = diag(s) U */
        for (size_t j = 0; j < k; j++)
            for (size_t i = 0; i < d; i++)
                w[j * d + i] = s[j] * p->components[j * d + i];
    }
    free(s);
    free(v);
    free(p->w);
    p->w = w;
    p->out = out;
    p->mode = mode;
    p->epsilon = epsilon;
    return 0;
}

void pca_apply(const pca *p, size_t n, double *x, double *y)
{
    size_t d = (size_t)p->d;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] -= p->mean[j];
    /* y (n, out) = x (n, D) w' ; w is (out, D) */
    size_t step = INT_MAX / 2;
    for (size_t i = 0; i < n; i += step) {
        size_t b = n - i < step ? n - i : step;
        gemm_f64(GEMM_NOTRANS, GEMM_TRANS, (int)b, p->out, p->d, 1.0,
                 x + i * d, p->d, p->w, p->d, 0.0, y + i * (size_t)p->out,
                 p->out);
    }
}

/* ---- model files -------------------------------------------------------- */

int pca_to_model(const pca *p, tz_model *mf)
{
    uint64_t sd[1] = {(uint64_t)p->d};
    uint64_t sk[1] = {(uint64_t)p->k};
    uint64_t skd[2] = {(uint64_t)p->k, (uint64_t)p->d};
    int e;
    if ((e = tz_model_add(mf, "mean", TZ_F64, 1, sd, p->mean)) ||
        (e = tz_model_add(mf, "components", TZ_F64, 2, skd, p->components)) ||
        (e = tz_model_add(mf, "eigenvalues", TZ_F64, 1, sk, p->eigenvalues)))
        return e == TZ_E_NOMEM ? PCA_E_NOMEM : PCA_E_ARG;
    const char *type = p->mode == PCA_PROJECT ? "pca" : "whiten";
    if ((e = tz_attr_set_s(&mf->meta, "model.type", type)))
        return e == TZ_E_NOMEM ? PCA_E_NOMEM : PCA_E_ARG;
    if (p->mode != PCA_PROJECT) {
        if ((e = tz_attr_set_i(&mf->meta, "whiten.zca", p->mode == PCA_ZCA)) ||
            (e = tz_attr_set_f(&mf->meta, "whiten.epsilon", p->epsilon)))
            return e == TZ_E_NOMEM ? PCA_E_NOMEM : PCA_E_ARG;
    }
    return 0;
}

/* Copy tensor `name` as doubles into dst when it holds `count` records of
 * `elems` elements each; NULL on success or a message. */
static const char *get_tensor(tz_model *mf, const char *name, uint64_t count,
                              uint64_t elems, double *dst)
{
    tz_tensor *t = tz_model_find(mf, name);
    if (!t)
        return "missing";
    if (t->count != count || tz_record_elems(&t->h) != elems)
        return "shape";
    if (tz_convert(dst, TZ_F64, t->data, t->h.dtype, (size_t)(count * elems)))
        return "dtype";
    for (uint64_t i = 0; i < count * elems; i++)
        if (!isfinite(dst[i]))
            return "value";
    return NULL;
}

pca *pca_from_model(tz_model *mf, char *err, size_t errsize)
{
    char dummy[1];
    if (!err) {
        err = dummy;
        errsize = sizeof dummy;
    }
    const char *type = tz_attr_get_s(&mf->meta, "model.type", NULL);
    if (!type) {
        snprintf(err, errsize, "not a pca or whiten model (no model.type)");
        return NULL;
    }
    int mode;
    if (strcmp(type, "pca") == 0) {
        mode = PCA_PROJECT;
    } else if (strcmp(type, "whiten") == 0) {
        mode = tz_attr_get_i(&mf->meta, "whiten.zca", 0) ? PCA_ZCA : PCA_WHITEN;
    } else {
        snprintf(err, errsize, "not a pca or whiten model (model.type is '%.100s')",
                 type);
        return NULL;
    }
    double eps = mode == PCA_PROJECT ? 0.0 :
                 tz_attr_get_f(&mf->meta, "whiten.epsilon", 0.0);
    if (!isfinite(eps) || eps < 0) {
        snprintf(err, errsize, "whiten.epsilon must be finite and >= 0");
        return NULL;
    }
    tz_tensor *c = tz_model_find(mf, "components");
    if (!c) {
        snprintf(err, errsize, "%s model has no tensor 'components'", type);
        return NULL;
    }
    if (c->h.rank != 1 || c->count < 1 || c->count > (uint64_t)c->h.dims[0] ||
        c->h.dims[0] > INT_MAX) {
        snprintf(err, errsize, "%s model: tensor 'components' must be (K, D) "
                 "with 1 <= K <= D", type);
        return NULL;
    }
    int d = (int)c->h.dims[0], k = (int)c->count;
    pca *p = pca_new(d, k);
    if (!p) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    static const char *const names[3] = {"mean", "components", "eigenvalues"};
    const uint64_t counts[3] = {(uint64_t)d, (uint64_t)k, (uint64_t)k};
    const uint64_t elems[3] = {1, (uint64_t)d, 1};
    double *dst[3] = {p->mean, p->components, p->eigenvalues};
    for (int i = 0; i < 3; i++) {
        const char *why = get_tensor(mf, names[i], counts[i], elems[i], dst[i]);
        if (!why)
            continue;
        if (strcmp(why, "missing") == 0)
            snprintf(err, errsize, "%s model has no tensor '%s'", type, names[i]);
        else if (strcmp(why, "shape") == 0)
            snprintf(err, errsize, "%s model: tensor '%s' must have %llu "
                     "element%s%s", type, names[i],
                     (unsigned long long)(counts[i] * elems[i]),
                     counts[i] * elems[i] == 1 ? "" : "s",
                     i == 1 ? "" : " (one a record)");
        else
            snprintf(err, errsize, "%s model: tensor '%s' holds non-finite "
                     "values", type, names[i]);
        pca_free(p);
        return NULL;
    }
    for (int j = 0; j < k; j++)
        if (p->eigenvalues[j] < 0) {
            snprintf(err, errsize, "%s model: negative eigenvalue", type);
            pca_free(p);
            return NULL;
        }
    int e = pca_prepare(p, mode, eps);
    if (e) {
        snprintf(err, errsize, "%s model: %s", type, pca_strerror(e));
        pca_free(p);
        return NULL;
    }
    return p;
}
