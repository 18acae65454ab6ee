/* vmath.h - the small vector kernels every numeric module shares: a 4-wide
 * exp and sigmoid written with GCC/clang vector extensions (vectorised at
 * -O2 with either compiler, no intrinsics), row passes over them, and the
 * scalar softplus / log-sum-exp in double.  Header-only (static inline).
 *
 * The exp: x clamped to [-87, 88], x = n ln2 + r with |r| <= ln2/2, a
 * degree-6 Taylor polynomial in r times 2^n (relative error below 2e-7).
 */
#ifndef RBMKIT_VMATH_H
#define RBMKIT_VMATH_H

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

static inline v4f v4_load(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v4_store(float *p, v4f v)
{
    memcpy(p, &v, sizeof v);
}

static inline v4f v4_splat(float x)
{
    return (v4f){x, x, x, x};
}

/* a where mask is set, else b (mask from a lane comparison). */
static inline v4f v4_select(v4i mask, v4f a, v4f b)
{
    return (v4f)(((v4i)a & mask) | ((v4i)b & ~mask));
}

static inline v4f v4_exp(v4f x)
{
    const v4f hi = v4_splat(88.0f), lo = v4_splat(-87.0f);
    x = v4_select(x > hi, hi, x);
    x = v4_select(x < lo, lo, x);
    const v4f magic = v4_splat(12582912.0f);      /* 1.5 * 2^23: rounds */
    v4f n = (x * v4_splat(1.44269504f) + magic) - magic;
    v4f r = x - n * v4_splat(0.693145752f);       /* ln2 high part */
    r = r - n * v4_splat(1.42860677e-6f);         /* ln2 low part */
    v4f p = v4_splat(1.0f / 720.0f);
    p = p * r + v4_splat(1.0f / 120.0f);
    p = p * r + v4_splat(1.0f / 24.0f);
    p = p * r + v4_splat(1.0f / 6.0f);
    p = p * r + v4_splat(0.5f);
    p = p * r + v4_splat(1.0f);
    p = p * r + v4_splat(1.0f);
    v4i e = (__builtin_convertvector(n, v4i) + 127) << 23;
    return p * (v4f)e;
}

static inline v4f v4_sigmoid(v4f x)
{
    return v4_splat(1.0f) / (v4_splat(1.0f) + v4_exp(-x));
}

/* x[j] = sigmoid(x[j] + s * bias[j]) for j < n; bias may be NULL. */
static inline void vm_row_sigmoid(float *x, const float *bias, float s, int n)
{
    int j = 0;
    v4f vs = v4_splat(s);
    for (; j + 4 <= n; j += 4) {
        v4f v = v4_load(x + j);
        if (bias)
            v += vs * v4_load(bias + j);
        v4_store(x + j, v4_sigmoid(v));
    }
    if (j < n) {
        float t[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
        memcpy(t, x + j, (size_t)(n - j) * sizeof *t);
        if (bias)
            memcpy(b, bias + j, (size_t)(n - j) * sizeof *b);
        v4_store(t, v4_sigmoid(v4_load(t) + vs * v4_load(b)));
        memcpy(x + j, t, (size_t)(n - j) * sizeof *t);
    }
}

/* x[j] = exp(x[j] - shift) for j < n; returns the sum (double). */
static inline double vm_row_exp_shift(float *x, float shift, int n)
{
    int j = 0;
    double sum = 0;
    v4f sh = v4_splat(shift);
    for (; j + 4 <= n; j += 4) {
        v4f e = v4_exp(v4_load(x + j) - sh);
        v4_store(x + j, e);
        sum += (double)e[0] + e[1] + e[2] + e[3];
    }
    for (; j < n; j++) {
        x[j] = expf(x[j] - shift);
        sum += x[j];
    }
    return sum;
}

/* x[i] *= a for i < n. */
static inline void vm_scale(float *x, float a, size_t n)
{
    size_t i = 0;
    v4f va = v4_splat(a);
    for (; i + 4 <= n; i += 4)
        v4_store(x + i, v4_load(x + i) * va);
    for (; i < n; i++)
        x[i] *= a;
}

/* sum of (a[i] - b[i])^2 for i < n, float lanes summed in double. */
static inline double vm_sqdiff(const float *a, const float *b, size_t n)
{
    double s = 0;
    size_t i = 0;
    while (i < n) {
        size_t end = n - i > 4096 ? i + 4096 : n;   /* bound float error */
        v4f acc = v4_splat(0);
        for (; i + 4 <= end; i += 4) {
            v4f d = v4_load(a + i) - v4_load(b + i);
            acc += d * d;
        }
        s += (double)acc[0] + acc[1] + acc[2] + acc[3];
        for (; i < end; i++)
            s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    return s;
}

/* log(1 + t) for t in [0, 1]: 2 atanh(s), s = t / (2 + t) in [0, 1/3],
 * odd series to s^13 (relative error below 1e-7). */
static inline v4f v4_log1p01(v4f t)
{
    v4f s = t / (v4_splat(2.0f) + t), s2 = s * s;
    v4f p = v4_splat(1.0f / 13);
    p = p * s2 + v4_splat(1.0f / 11);
    p = p * s2 + v4_splat(1.0f / 9);
    p = p * s2 + v4_splat(1.0f / 7);
    p = p * s2 + v4_splat(1.0f / 5);
    p = p * s2 + v4_splat(1.0f / 3);
    p = p * s2 + v4_splat(1.0f);
    return v4_splat(2.0f) * s * p;
}

/* sum_i [softplus(b1 y_i + a_i) - softplus(b0 y_i + a_i)] for i < n (a NULL
 * = 0): the change of a bernoulli layer's log-partition between two
 * annealing temperatures.  softplus(z) = max(z, 0) + log1p(exp(-|z|)):
 * the linear parts are taken in double, the log1p parts (below log 2) in
 * float lanes summed in double, so the difference keeps its precision. */
static inline double vm_softplus_diff(const float *y, const float *a,
                                      float b0, float b1, int n)
{
    double lin = 0, acc = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f yv = v4_load(y + i), av = a ? v4_load(a + i) : v4_splat(0);
        v4f z0 = v4_splat(b0) * yv + av, z1 = v4_splat(b1) * yv + av;
        v4f m0 = v4_select(z0 < v4_splat(0), -z0, z0);
        v4f m1 = v4_select(z1 < v4_splat(0), -z1, z1);
        v4f l = v4_log1p01(v4_exp(-m1)) - v4_log1p01(v4_exp(-m0));
        acc += (double)l[0] + l[1] + l[2] + l[3];
        for (int k = 0; k < 4; k++) {
            double ak = a ? a[i + k] : 0, yk = y[i + k];
            double d1 = (double)b1 * yk + ak, d0 = (double)b0 * yk + ak;
            lin += (d1 > 0 ? d1 : 0) - (d0 > 0 ? d0 : 0);
        }
    }
    for (; i < n; i++) {
        double ak = a ? a[i] : 0, yk = y[i];
        double d1 = (double)b1 * yk + ak, d0 = (double)b0 * yk + ak;
        lin += (d1 > 0 ? d1 : 0) - (d0 > 0 ? d0 : 0);
        acc += log1p(exp(-fabs(d1))) - log1p(exp(-fabs(d0)));
    }
    return lin + acc;
}

/* softplus(x) = log(1 + exp(x)), stable, in double. */
static inline double vm_softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* log sum_i exp(x[i]) over n >= 1 floats, in double. */
static inline double vm_logsumexp(const float *x, int n)
{
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    for (int i = 0; i < n; i++)
        s += exp(x[i] - mx);
    return mx + log(s);
}

/* c (n) += a * column sums of X (B, n), each row times m[b] (m NULL: 1). */
static inline void vm_colsum_add(int B, int n, float a, const float *X,
                                 const float *m, float *c)
{
    for (int b = 0; b < B; b++) {
        float s = a * (m ? m[b] : 1.0f);
        for (int i = 0; i < n; i++)
            c[i] += s * X[(size_t)b * n + i];
    }
}

#endif
