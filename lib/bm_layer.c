/* bm_layer.c - unit-type math of one layer (bm_layer.h): means, draws,
 * log-partitions, own energy terms, data checks, bias initialisation,
 * random states and enumeration.  The row passes use the vector kernels
 * of vmath.h; sums that enter log-probabilities are taken in double.
 */
#include "bm_layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vmath.h"

static const char *const unit_names[BM_NUNITS] = {
    "bernoulli", "gaussian", "replicated-softmax", "softmax"
};

const char *bm_unit_name(int unit)
{
    if (unit < 0 || unit >= BM_NUNITS)
        return "?";
    return unit_names[unit];
}

int bm_unit_parse(const char *name)
{
    for (int i = 0; i < BM_NUNITS; i++)
        if (strcmp(name, unit_names[i]) == 0)
            return i;
    return -1;
}

const char *bm_strerror(int code)
{
    switch (code) {
    case BM_OK: return "success";
    case BM_E_NOMEM: return "out of memory";
    case BM_E_ARG: return "invalid argument";
    case BM_E_TOOBIG: return "too many states to enumerate";
    case BM_E_UNSUPPORTED: return "not supported for this unit type";
    case BM_E_DATA: return "invalid data for the units";
    }
    return "unknown error";
}

const char *bm_layer_validate(const bm_layer *L)
{
    if (L->unit < 0 || L->unit >= BM_NUNITS)
        return "unknown unit type";
    if (L->n < 1)
        return "a layer needs at least one unit";
    if (!L->bias)
        return "layer without a bias";
    if (L->unit == BM_SOFTMAX && (L->group < 1 || L->n % L->group))
        return "softmax group size does not divide the layer width";
    if (L->unit == BM_REPSOFTMAX && L->group != L->n)
        return "replicated softmax: the group is the whole layer";
    if ((L->unit == BM_BERNOULLI || L->unit == BM_GAUSSIAN) && L->group != 1)
        return "group size must be 1 for bernoulli and gaussian units";
    if (L->unit != BM_GAUSSIAN && L->sigma)
        return "only gaussian units have sigma";
    return NULL;
}

void bm_layer_scale(const bm_layer *L, int B, const float *v, float *out)
{
    size_t n = (size_t)L->n, total = (size_t)B * n;
    if (L->unit == BM_GAUSSIAN && L->sigma) {
        for (size_t b = 0; b < (size_t)B; b++)
            for (size_t i = 0; i < n; i++)
                out[b * n + i] = v[b * n + i] / L->sigma[i];
    } else if (out != v) {
        memcpy(out, v, total * sizeof *out);
    }
}

void bm_layer_doclen(const bm_layer *L, int B, const float *v, float *D)
{
    int n = L->n;
    for (int b = 0; b < B; b++) {
        if (L->unit != BM_REPSOFTMAX) {
            D[b] = 1;
            continue;
        }
        double s = 0;
        for (int i = 0; i < n; i++)
            s += v[(size_t)b * n + i];
        D[b] = (float)s;
    }
}

void bm_layer_mean(const bm_layer *L, int B, float *x, const float *d)
{
    int n = L->n;
    for (int b = 0; b < B; b++) {
        float *p = x + (size_t)b * n;
        float s = d ? d[b] : 1.0f;
        switch (L->unit) {
        case BM_BERNOULLI:
            vm_row_sigmoid(p, L->bias, s, n);
            break;
        case BM_GAUSSIAN:
            /* own(v) has no multiplier: the mean is c + sigma x */
            if (L->sigma)
                for (int i = 0; i < n; i++)
                    p[i] = L->bias[i] + L->sigma[i] * p[i];
            else
                for (int i = 0; i < n; i++)
                    p[i] += L->bias[i];
            break;
        case BM_REPSOFTMAX:
        case BM_SOFTMAX: {
            int K = L->group;
            float D = L->unit == BM_REPSOFTMAX ? s : 1.0f;
            /* softmax: own(v) = d c'v, so the bias is scaled by d;
             * replicated softmax: d is the length, the bias is not */
            float bs = L->unit == BM_SOFTMAX ? s : 1.0f;
            for (int i = 0; i < n; i++)
                p[i] += bs * L->bias[i];
            for (int g = 0; g < n; g += K) {
                float mx = p[g];
                for (int i = 1; i < K; i++)
                    if (p[g + i] > mx)
                        mx = p[g + i];
                double sum = vm_row_exp_shift(p + g, mx, K);
                float sc = (float)(D / sum);
                for (int i = 0; i < K; i++)
                    p[g + i] *= sc;
            }
            break;
        }
        }
    }
}

/* ---- draws ---------------------------------------------------------------- */

/* n standard normals into z (Box-Muller, both outputs used). */
static void fill_normal(rng_t *rng, float *z, size_t n)
{
    size_t i = 0;
    for (; i + 1 < n; i += 2) {
        double u1 = rng_uniform_d(rng), u2 = rng_uniform_d(rng);
        if (u1 < 1e-300)
            u1 = 1e-300;
        double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
        z[i] = (float)(r * cos(a));
        z[i + 1] = (float)(r * sin(a));
    }
    if (i < n)
        z[i] = (float)rng_normal(rng);
}

/* Bernoulli: out = (u < p), u from rng, in blocks (in place allowed). */
static void sample_bernoulli(const float *p, float *out, size_t n, rng_t *rng)
{
    float u[1024];
    for (size_t i = 0; i < n; i += 1024) {
        size_t c = n - i < 1024 ? n - i : 1024;
        rng_fill_uniform(rng, u, c);
        size_t j = 0;
        for (; j + 4 <= c; j += 4) {
            v4i lt = v4_load(u + j) < v4_load(p + i + j);
            v4_store(out + i + j, (v4f)(lt & (v4i)v4_splat(1.0f)));
        }
        for (; j < c; j++)
            out[i + j] = u[j] < p[i + j] ? 1.0f : 0.0f;
    }
}

/* out = mean + s * N(0,1), s per column (NULL = 1); row width n. */
static void sample_normal(const float *mean, const float *s, float *out,
                          size_t rows, size_t n, rng_t *rng)
{
    float z[1024];
    size_t total = rows * n;
    for (size_t i = 0; i < total; i += 1024) {
        size_t c = total - i < 1024 ? total - i : 1024;
        fill_normal(rng, z, c);
        for (size_t j = 0; j < c; j++)
            out[i + j] = mean[i + j] + (s ? s[(i + j) % n] : 1.0f) * z[j];
    }
}

/* Index of the first cumulative value exceeding u (binary search). */
static int search_cdf(const double *cdf, int n, double u)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void bm_layer_sample(const bm_layer *L, int B, const float *mean,
                     const float *d, float *out, rng_t *rng, double *cdf)
{
    int n = L->n;
    size_t total = (size_t)B * n;
    switch (L->unit) {
    case BM_BERNOULLI:
        sample_bernoulli(mean, out, total, rng);
        break;
    case BM_GAUSSIAN:
        sample_normal(mean, L->sigma, out, (size_t)B, (size_t)n, rng);
        break;
    case BM_SOFTMAX: {
        int K = L->group;
        for (size_t g = 0; g < total; g += K) {
            double s = 0;
            for (int i = 0; i < K; i++)
                s += mean[g + i];
            double u = rng_uniform_d(rng) * s, c = 0;
            int pick = K - 1;
            for (int i = 0; i < K; i++) {
                c += mean[g + i];
                if (u < c) {
                    pick = i;
                    break;
                }
            }
            for (int i = 0; i < K; i++)
                out[g + i] = i == pick ? 1.0f : 0.0f;
        }
        break;
    }
    case BM_REPSOFTMAX:
        for (int b = 0; b < B; b++) {
            const float *p = mean + (size_t)b * n;
            float *o = out + (size_t)b * n;
            double c = 0;
            if (cdf)
                for (int i = 0; i < n; i++)
                    cdf[i] = c += p[i];
            long D = d ? lrintf(d[b]) : 1;
            for (int i = 0; i < n; i++)
                o[i] = 0;
            if (!cdf || c <= 0)
                continue;
            for (long w = 0; w < D; w++)
                o[search_cdf(cdf, n, rng_uniform_d(rng) * c)] += 1.0f;
        }
        break;
    }
}

/* ---- log-partitions and own terms ----------------------------------------- */

void bm_layer_add_own(const bm_layer *L, int B, const float *v,
                      const float *d, double *out)
{
    int n = L->n;
    for (int b = 0; b < B; b++) {
        const float *vr = v + (size_t)b * n;
        double f = 0;
        if (L->unit == BM_GAUSSIAN) {
            for (int i = 0; i < n; i++) {
                double t = ((double)vr[i] - L->bias[i]) /
                           (L->sigma ? L->sigma[i] : 1.0f);
                f -= 0.5 * t * t;
            }
        } else {
            for (int i = 0; i < n; i++)
                f += (double)L->bias[i] * vr[i];
            if (L->unit != BM_REPSOFTMAX && d)
                f *= d[b];
        }
        out[b] += f;
    }
}

int bm_layer_add_entropy(const bm_layer *L, int B, const float *mu,
                         double *out)
{
    if (L->unit != BM_BERNOULLI && L->unit != BM_SOFTMAX)
        return BM_E_UNSUPPORTED;
    int n = L->n;
    for (int b = 0; b < B; b++) {
        const float *m = mu + (size_t)b * n;
        double h = 0;
        for (int i = 0; i < n; i++) {
            double p = m[i];
            if (p > 0)
                h -= p * log(p);
            if (L->unit == BM_BERNOULLI && p < 1)
                h -= (1 - p) * log1p(-p);
        }
        out[b] += h;
    }
    return 0;
}

/* ---- checks, initial biases, random states ---------------------------------- */

const char *bm_layer_check(const bm_layer *L, int B, const float *v,
                           int allow_real)
{
    size_t total = (size_t)B * L->n;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(v[i]))
            return "NaN or infinite value";
    switch (L->unit) {
    case BM_BERNOULLI:
        for (size_t i = 0; i < total; i++) {
            if (allow_real) {
                if (v[i] < 0 || v[i] > 1)
                    return "value outside [0, 1] for bernoulli units";
            } else if (v[i] != 0 && v[i] != 1) {
                return "non-binary value for bernoulli units";
            }
        }
        break;
    case BM_REPSOFTMAX:
        for (size_t i = 0; i < total; i++) {
            if (v[i] < 0)
                return "negative count for replicated-softmax units";
            if (v[i] != floorf(v[i]))
                return "non-integral count for replicated-softmax units";
        }
        break;
    case BM_SOFTMAX: {
        int K = L->group;
        for (size_t g = 0; g < total; g += K) {
            double s = 0;
            for (int i = 0; i < K; i++) {
                float x = v[g + i];
                if (x < 0 || x > 1 || (!allow_real && x != 0 && x != 1))
                    return "softmax group is not one-hot";
                s += x;
            }
            if (fabs(s - 1) > (allow_real ? 1e-4 : 0))
                return "softmax group is not one-hot";
        }
        break;
    }
    default:
        break;
    }
    return NULL;
}

void bm_layer_init_bias(bm_layer *L, const float *mean)
{
    int n = L->n;
    switch (L->unit) {
    case BM_BERNOULLI:
        for (int i = 0; i < n; i++) {
            double p = mean[i];
            p = p < 1e-3 ? 1e-3 : p > 1 - 1e-3 ? 1 - 1e-3 : p;
            L->bias[i] = (float)log(p / (1 - p));
        }
        break;
    case BM_GAUSSIAN:
        for (int i = 0; i < n; i++)
            L->bias[i] = mean[i];
        break;
    case BM_REPSOFTMAX:
    case BM_SOFTMAX: {
        int K = L->group;
        for (int g = 0; g < n; g += K) {
            double s = 0;
            for (int i = 0; i < K; i++)
                s += mean[g + i];
            for (int i = 0; i < K; i++) {
                double p = s > 0 ? mean[g + i] / s : 1.0 / K;
                L->bias[g + i] = (float)log(p < 1e-6 ? 1e-6 : p);
            }
        }
        break;
    }
    }
}

void bm_layer_random(const bm_layer *L, float *v, long length, rng_t *rng)
{
    int n = L->n;
    switch (L->unit) {
    case BM_BERNOULLI:
        for (int i = 0; i < n; i++)
            v[i] = (float)(rng_next(rng) >> 63);
        break;
    case BM_GAUSSIAN:
        for (int i = 0; i < n; i++)
            v[i] = L->bias[i] + (L->sigma ? L->sigma[i] : 1.0f) *
                                    (float)rng_normal(rng);
        break;
    case BM_SOFTMAX: {
        int K = L->group;
        memset(v, 0, (size_t)n * sizeof *v);
        for (int i = 0; i < n; i += K)
            v[i + (int)rng_below(rng, (uint64_t)K)] = 1;
        break;
    }
    case BM_REPSOFTMAX:
        memset(v, 0, (size_t)n * sizeof *v);
        for (long k = 0; k < length; k++)
            v[rng_below(rng, (uint64_t)n)] += 1;
        break;
    }
}

double bm_layer_states(const bm_layer *L)
{
    if (L->unit == BM_BERNOULLI)
        return ldexp(1.0, L->n);
    if (L->unit == BM_SOFTMAX)
        return pow((double)L->group, (double)(L->n / L->group));
    return 0;
}

void bm_layer_state(const bm_layer *L, uint64_t k, float *v)
{
    int n = L->n;
    if (L->unit == BM_BERNOULLI) {
        for (int i = 0; i < n; i++)
            v[i] = (float)((k >> i) & 1);
        return;
    }
    int K = L->group;
    memset(v, 0, (size_t)n * sizeof *v);
    for (int g = 0; g < n; g += K) {
        v[g + (int)(k % (uint64_t)K)] = 1;
        k /= (uint64_t)K;
    }
}

/* ---- log-partitions (continued), row-wise draws, base rates --------------- */

/* Element k of the input, given in float (xf) or in double (xd). */
static inline double input_at(const float *xf, const double *xd, size_t k)
{
    return xf ? (double)xf[k] : xd[k];
}

static void acc_logpart(const bm_layer *L, int B, const float *xf,
                        const double *xd, const float *d, double *out)
{
    const double half_log_2pi = 0.5 * log(2 * M_PI);
    int n = L->n;
    const float *c = L->bias;
    for (int b = 0; b < B; b++) {
        size_t r = (size_t)b * n;
        double s = d ? d[b] : 1.0, acc = out[b];
        switch (L->unit) {
        case BM_BERNOULLI:
            for (int i = 0; i < n; i++)
                acc += vm_softplus(input_at(xf, xd, r + i) + s * c[i]);
            break;
        case BM_GAUSSIAN:     /* own(v) has no multiplier */
            for (int i = 0; i < n; i++) {
                double sg = L->sigma ? L->sigma[i] : 1.0;
                double xi = input_at(xf, xd, r + i);
                acc += half_log_2pi + log(sg) + c[i] * xi / sg + 0.5 * xi * xi;
            }
            break;
        case BM_REPSOFTMAX:
        case BM_SOFTMAX: {
            int K = L->group;
            double D = L->unit == BM_REPSOFTMAX ? s : 1.0;
            double bs = L->unit == BM_SOFTMAX ? s : 1.0;   /* d c for softmax */
            for (int g = 0; g < n; g += K) {
                double mx = -INFINITY, e = 0;
                for (int i = 0; i < K; i++) {
                    double y = input_at(xf, xd, r + g + i) + bs * c[g + i];
                    if (y > mx)
                        mx = y;
                }
                for (int i = 0; i < K; i++)
                    e += exp(input_at(xf, xd, r + g + i) + bs * c[g + i] - mx);
                acc += D * (mx + log(e));
            }
            break;
        }
        }
        out[b] = acc;
    }
}

void bm_layer_add_logpart(const bm_layer *L, int B, const float *x,
                          const float *d, double *out)
{
    acc_logpart(L, B, x, NULL, d, out);
}

void bm_layer_add_logpart_d(const bm_layer *L, int B, const double *x,
                            const float *d, double *out)
{
    acc_logpart(L, B, NULL, x, d, out);
}

void bm_layer_sample_input(const bm_layer *L, int B, const float *x,
                           const float *d, float *out, rng_t *rng,
                           double *cdf)
{
    int n = L->n;
    const float *c = L->bias;
    for (int b = 0; b < B; b++) {
        const float *xr = x + (size_t)b * n;
        float *o = out + (size_t)b * n;
        rng_t *g = &rng[b];
        float s = d ? d[b] : 1.0f;
        switch (L->unit) {
        case BM_BERNOULLI:
        case BM_GAUSSIAN: {
            float z[1024], p[1024];
            for (int i = 0; i < n; i += 1024) {
                int m = n - i < 1024 ? n - i : 1024;
                if (L->unit == BM_GAUSSIAN) {
                    fill_normal(g, z, (size_t)m);
                    for (int j = 0; j < m; j++)     /* no multiplier */
                        o[i + j] = c[i + j] +
                                   (L->sigma ? L->sigma[i + j] : 1.0f) *
                                       (xr[i + j] + z[j]);
                } else {
                    memcpy(p, xr + i, (size_t)m * sizeof *p);
                    vm_row_sigmoid(p, c + i, s, m);
                    rng_fill_uniform(g, z, (size_t)m);
                    for (int j = 0; j < m; j++)
                        o[i + j] = z[j] < p[j] ? 1.0f : 0.0f;
                }
            }
            break;
        }
        case BM_REPSOFTMAX:
        case BM_SOFTMAX: {
            int K = L->group;
            long words = L->unit == BM_SOFTMAX ? 1 : d ? lrintf(d[b]) : 1;
            float bs = L->unit == BM_SOFTMAX ? s : 1.0f;   /* d c for softmax */
            for (int g0 = 0; g0 < n; g0 += K) {
                float mx = -INFINITY;
                for (int i = 0; i < K; i++)
                    if (xr[g0 + i] + bs * c[g0 + i] > mx)
                        mx = xr[g0 + i] + bs * c[g0 + i];
                double acc = 0;
                for (int i = 0; i < K; i++)
                    cdf[i] = acc += exp((double)xr[g0 + i] +
                                        bs * c[g0 + i] - mx);
                for (int i = 0; i < K; i++)
                    o[g0 + i] = 0;
                for (long w = 0; w < words; w++)
                    o[g0 + search_cdf(cdf, K, rng_uniform_d(g) * acc)] += 1.0f;
            }
            break;
        }
        }
    }
}

int bm_layer_base_bias(bm_layer *L, const double *colsum, double rows)
{
    int n = L->n;
    if (!(rows > 0))
        return BM_E_ARG;
    switch (L->unit) {
    case BM_BERNOULLI:
        for (int i = 0; i < n; i++)
            L->bias[i] = (float)log((colsum[i] + 1) / (rows - colsum[i] + 1));
        break;
    case BM_GAUSSIAN:
        for (int i = 0; i < n; i++)
            L->bias[i] = (float)(colsum[i] / rows);
        break;
    case BM_REPSOFTMAX:
    case BM_SOFTMAX: {
        int K = L->group;
        for (int g = 0; g < n; g += K) {
            double tot = 0;
            for (int k = 0; k < K; k++)
                tot += colsum[g + k];
            for (int k = 0; k < K; k++)
                L->bias[g + k] = (float)log((colsum[g + k] + 1) / (tot + K));
        }
        break;
    }
    }
    return 0;
}

void bm_layer_residual(const bm_layer *L, int B, const float *x,
                       const float *mean, float *diff, float *bd)
{
    size_t n = (size_t)L->n;
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++) {
            float r = x[b * n + i] - mean[b * n + i];
            float sg = L->sigma ? L->sigma[i] : 1.0f;
            diff[b * n + i] = r / sg;
            bd[b * n + i] = r / (sg * sg);
        }
}
