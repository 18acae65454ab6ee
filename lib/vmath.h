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

#endif
