/* pca.h - principal component analysis and PCA/ZCA whitening.
 *
 * The math behind `tensor pca` and `tensor whiten`, with no I/O: streaming
 * moments (mean and covariance accumulated batch by batch with gemm_f64),
 * the top-K eigenpairs of a covariance from LAPACK's dsyevr, and the linear
 * map applied to a batch of records.  Everything is double precision.
 *
 * With x a record (D), m the mean (D), U the components (K, D) (row j is
 * the eigenvector of the j-th largest eigenvalue l_j) and s_j = 1 /
 * sqrt(l_j + epsilon), the three transforms are
 *   PCA_PROJECT   y (K) = U (x - m)
 *   PCA_WHITEN    y (K) = diag(s) U (x - m)
 *   PCA_ZCA       y (D) = U' diag(s) U (x - m)
 * Each component's largest-magnitude entry is positive (the first such
 * entry on ties), so fits are reproducible across eigensolvers.
 *
 * Functions return 0 or a negative PCA_E_* code (pca_strerror explains).
 * Constructors return NULL when out of memory or given bad sizes; the
 * caller owns what they return and frees it with the matching *_free,
 * which accepts NULL.
 */
#ifndef RBMKIT_PCA_H
#define RBMKIT_PCA_H

#include <stddef.h>
#include <stdint.h>

#include "tz.h"

enum {
    PCA_E_ARG = -1,         /* invalid argument */
    PCA_E_NOMEM = -2,       /* out of memory */
    PCA_E_FEW = -3,         /* fewer than 2 records: no covariance */
    PCA_E_NONFINITE = -4,   /* NaN or infinity in the data */
    PCA_E_EIGEN = -5,       /* the LAPACK eigensolver failed */
    PCA_E_SINGULAR = -6,    /* l_j + epsilon is not positive enough */
    PCA_E_MODEL = -7        /* a model file lacks or mis-shapes a tensor */
};
const char *pca_strerror(int code);

enum { PCA_PROJECT = 0, PCA_WHITEN = 1, PCA_ZCA = 2 };

/* ---- streaming moments ------------------------------------------------- */

/* Shifted sums: c is the first batch's mean, and the sums are of x - c, so
 * the covariance does not lose digits to a large common offset. */
typedef struct {
    int d;              /* record width D */
    uint64_t n;         /* records added */
    double *shift;      /* (D) c */
    double *sum;        /* (D) sum of (x - c) */
    double *sxx;        /* (D, D) sum of (x - c)(x - c)' */
} pca_moments;

pca_moments *pca_moments_new(int d);
void pca_moments_free(pca_moments *m);
/* Add n records x (n, D), row-major.  x is overwritten (centred on c).
 * Returns PCA_E_NONFINITE, leaving the sums untouched, when x holds a NaN
 * or an infinity. */
int pca_moments_add(pca_moments *m, double *x, size_t n);
/* mean (D) and the sample covariance cov (D, D), divided by n - 1 (as
 * numpy.cov).  PCA_E_FEW when fewer than 2 records were added. */
int pca_moments_result(const pca_moments *m, double *mean, double *cov);

/* ---- eigen-decomposition ------------------------------------------------ */

/* The k largest eigenpairs of the symmetric matrix a (D, D) (read only):
 * eigenvalues w (k) in decreasing order and eigenvectors as the rows of
 * z (k, D), each with its largest-|value| entry positive.  1 <= k <= d. */
int pca_eigh(int d, int k, const double *a, double *w, double *z);

/* ---- the transform ---------------------------------------------------- */

typedef struct {
    int d;               /* input width D */
    int k;               /* components kept K, 1..D */
    int mode;            /* PCA_PROJECT, PCA_WHITEN or PCA_ZCA */
    double epsilon;      /* added to each eigenvalue before 1/sqrt */
    double *mean;        /* (D) */
    double *components;  /* (K, D), rows in decreasing eigenvalue order */
    double *eigenvalues; /* (K), decreasing, >= 0 */
    int out;             /* output width: K, or D for PCA_ZCA */
    double *w;           /* (out, D): y = w (x - mean); set by pca_prepare */
} pca;

/* A transform of d inputs and k components, zero-filled, mode PCA_PROJECT. */
pca *pca_new(int d, int k);
void pca_free(pca *p);
/* Fill mean, components and eigenvalues from a mean (D) and a covariance
 * (D, D).  Eigenvalues below zero (rounding) are stored as 0. */
int pca_fit(pca *p, const double *mean, const double *cov);
/* Choose the transform and build w.  PCA_E_SINGULAR when whitening and some
 * l_j + epsilon <= l_1 * D * DBL_EPSILON (the scale would be noise). */
int pca_prepare(pca *p, int mode, double epsilon);
/* y (n, out) = (x - mean) w' for x (n, D); x is overwritten (centred). */
void pca_apply(const pca *p, size_t n, double *x, double *y);

/* ---- model files (formats/model-keys.md) ------------------------------ */

/* Tensors mean (D), components (K, D), eigenvalues (K), all f64;
 * attributes model.type = "pca" (PCA_PROJECT) or "whiten", and for whiten
 * whiten.zca (0 or 1) and whiten.epsilon.  pca_prepare must have run. */
int pca_to_model(const pca *p, tz_model *mf);
/* The transform stored in mf, prepared.  Returns NULL with a one-line
 * message in err for a wrong model.type, missing or mis-shaped tensors,
 * or values that cannot whiten. */
pca *pca_from_model(tz_model *mf, char *err, size_t errsize);

#endif
