/* rbm.c - restricted Boltzmann machines (rbm.h): parameters, model files,
 * the conditionals p(h|v) and p(v|h), sampling, free energy, and the
 * CD-k / PCD-k training step.
 *
 * Every product goes through gemm_f32.  The element-wise passes (bias,
 * sigmoid, sampling) are plain loops over whole rows; the sigmoid uses a
 * 4-wide polynomial exp written with GCC/clang vector extensions so it is
 * vectorised at -O2 with either compiler.
 *
 * The training step computes the weight gradient of the positive and the
 * negative phase in ONE product: with vs = [v0/sigma; vk/sigma] (2B, V) and
 * hs = [p(h|v0)/B; -p(h|vk)/B] (2B, H), dW = vs' hs, so a CD-1 update costs
 * 2BVH (up) + 2BVH (down) + 2BVH (up again) + 4BVH (gradient) = 10BVH flops.
 *
 * With rbm_trainer_set_threads(t, T) a step runs on T threads of a pool
 * (par.h), each calling single-threaded BLAS: the Gibbs chains are split
 * by rows, every element-wise pass running next to its product on the same
 * thread, and after one barrier the gradient product and the updates are
 * split by rows of W.  Own threads beat letting BLAS thread each M = B
 * product: the element-wise passes run in parallel too, and there is one
 * synchronisation per step instead of one per product.
 */
#include "rbm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "par.h"

/* ---- unit names ----------------------------------------------------------- */

static const char *const unit_names[] = {
    "bernoulli", "gaussian", "replicated-softmax", "softmax"
};

const char *rbm_unit_name(int unit)
{
    if (unit < 0 || unit > RBM_SOFTMAX)
        return "?";
    return unit_names[unit];
}

int rbm_unit_parse(const char *name)
{
    for (int i = 0; i <= RBM_SOFTMAX; i++)
        if (strcmp(name, unit_names[i]) == 0)
            return i;
    return -1;
}

/* ---- vectorised exp and sigmoid ------------------------------------------- */

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

/* Select a where mask is set, else b. */
static inline v4f v4_select(v4i mask, v4f a, v4f b)
{
    return (v4f)(((v4i)a & mask) | ((v4i)b & ~mask));
}

/* exp(x) for x clamped to [-87, 88]: 2^n * exp(r), |r| <= ln2/2, with a
 * degree-6 Taylor polynomial (relative error below 2e-7). */
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
static void row_sigmoid(float *x, const float *bias, float s, int n)
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
static double row_exp_shift(float *x, float shift, int n)
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
static void vec_scale(float *x, float a, size_t n)
{
    size_t i = 0;
    v4f va = v4_splat(a);
    for (; i + 4 <= n; i += 4)
        v4_store(x + i, v4_load(x + i) * va);
    for (; i < n; i++)
        x[i] *= a;
}

/* sum of (a[i] - b[i])^2 for i < n, float lanes summed in double. */
static double vec_sqdiff(const float *a, const float *b, size_t n)
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
static inline double softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* ---- layer views ------------------------------------------------------------ */

bm_layer rbm_visible_layer(const rbm *m)
{
    bm_layer L = {.unit = m->vis, .n = m->nv, .bias = m->vbias,
                  .sigma = m->vis == RBM_GAUSSIAN ? m->sigma : NULL};
    snprintf(L.name, sizeof L.name, "v");
    L.group = m->vis == RBM_SOFTMAX ? m->softmax_group
              : m->vis == RBM_REPSOFTMAX ? m->nv : 1;
    return L;
}

bm_layer rbm_hidden_layer(const rbm *m)
{
    bm_layer L = {.unit = m->hid, .n = m->nh, .group = 1, .bias = m->hbias};
    snprintf(L.name, sizeof L.name, "h");
    return L;
}

/* ---- allocation and model files ------------------------------------------ */

rbm *rbm_new(int nv, int nh, int vis, int hid)
{
    if (nv < 1 || nh < 1 || vis < 0 || vis > RBM_SOFTMAX ||
        (hid != RBM_BERNOULLI && hid != RBM_GAUSSIAN))
        return NULL;
    if ((size_t)nv > SIZE_MAX / sizeof(float) / (size_t)nh)
        return NULL;
    rbm *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->nv = nv;
    m->nh = nh;
    m->vis = vis;
    m->hid = hid;
    m->softmax_group = vis == RBM_SOFTMAX ? nv : 1;
    m->up_scale = 1;
    m->down_scale = 1;
    m->W = calloc((size_t)nv * nh, sizeof *m->W);
    m->vbias = calloc((size_t)nv, sizeof *m->vbias);
    m->hbias = calloc((size_t)nh, sizeof *m->hbias);
    if (vis == RBM_GAUSSIAN) {
        m->sigma = malloc((size_t)nv * sizeof *m->sigma);
        if (m->sigma)
            for (int i = 0; i < nv; i++)
                m->sigma[i] = 1;
    }
    if (!m->W || !m->vbias || !m->hbias ||
        (vis == RBM_GAUSSIAN && !m->sigma)) {
        rbm_free(m);
        return NULL;
    }
    return m;
}

void rbm_free(rbm *m)
{
    if (!m)
        return;
    free(m->W);
    free(m->vbias);
    free(m->hbias);
    free(m->sigma);
    free(m);
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Copy a tensor of `count` records of `elems` values into dst (float). */
static int get_tensor(tz_model *mf, const char *name, uint64_t count,
                      uint64_t elems, float *dst, char *err, size_t es)
{
    tz_tensor *t = tz_model_find(mf, name);
    if (!t) {
        snprintf(err, es, "corrupt rbm model: no tensor '%s'", name);
        return -1;
    }
    if (t->count != count || tz_record_elems(&t->h) != elems) {
        char d[64];
        tz_header_describe(&t->h, d, sizeof d);
        snprintf(err, es, "corrupt rbm model: tensor '%s' is %llu x %s, "
                 "expected %llu records of %llu values", name,
                 (unsigned long long)t->count, d, (unsigned long long)count,
                 (unsigned long long)elems);
        return -1;
    }
    if (tz_convert(dst, TZ_F32, t->data, t->h.dtype, count * elems) ||
        !all_finite(dst, count * elems)) {
        snprintf(err, es, "corrupt rbm model: tensor '%s' holds NaN or "
                 "infinite values", name);
        return -1;
    }
    return 0;
}

rbm *rbm_from_model(tz_model *mf, char *err, size_t errsize)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errsize = sizeof dummy;
    }
    const char *type = tz_attr_get_s(&mf->meta, "model.type", NULL);
    if (!type) {
        snprintf(err, errsize, "not an rbm model: no model.type attribute");
        return NULL;
    }
    if (strcmp(type, "rbm") != 0) {
        snprintf(err, errsize, "not an rbm model: model.type is '%s'", type);
        return NULL;
    }
    const char *vs = tz_attr_get_s(&mf->meta, "rbm.visible", "?");
    const char *hs = tz_attr_get_s(&mf->meta, "rbm.hidden", "?");
    int vis = rbm_unit_parse(vs), hid = rbm_unit_parse(hs);
    if (vis < 0) {
        snprintf(err, errsize, "corrupt rbm model: unknown rbm.visible '%s'", vs);
        return NULL;
    }
    if (hid != RBM_BERNOULLI && hid != RBM_GAUSSIAN) {
        snprintf(err, errsize, "corrupt rbm model: unknown rbm.hidden '%s'", hs);
        return NULL;
    }
    tz_tensor *w = tz_model_find(mf, "W");
    if (!w || w->h.rank != 1 || w->count < 1 || w->count > INT32_MAX ||
        w->h.dims[0] > INT32_MAX) {
        snprintf(err, errsize, "corrupt rbm model: %s",
                 w ? "tensor 'W' is not V records of shape [H]"
                   : "no tensor 'W'");
        return NULL;
    }
    int nv = (int)w->count, nh = (int)w->h.dims[0];
    rbm *m = rbm_new(nv, nh, vis, hid);
    if (!m) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    int64_t K = tz_attr_get_i(&mf->meta, "rbm.softmax_group", m->softmax_group);
    double up = tz_attr_get_f(&mf->meta, "rbm.up_scale", 1);
    double down = tz_attr_get_f(&mf->meta, "rbm.down_scale", 1);
    if (vis == RBM_SOFTMAX && (K < 1 || K > nv || nv % K)) {
        snprintf(err, errsize, "corrupt rbm model: rbm.softmax_group %lld "
                 "does not divide %d visible units", (long long)K, nv);
        goto fail;
    }
    if (!(up > 0 && up < 1e6) || !(down > 0 && down < 1e6)) {
        snprintf(err, errsize, "corrupt rbm model: bad rbm.up_scale or "
                 "rbm.down_scale");
        goto fail;
    }
    m->softmax_group = vis == RBM_SOFTMAX ? (int)K : 1;
    m->up_scale = (float)up;
    m->down_scale = (float)down;
    if (get_tensor(mf, "W", nv, nh, m->W, err, errsize) ||
        get_tensor(mf, "vbias", nv, 1, m->vbias, err, errsize) ||
        get_tensor(mf, "hbias", nh, 1, m->hbias, err, errsize))
        goto fail;
    if (vis == RBM_GAUSSIAN) {
        if (get_tensor(mf, "sigma", nv, 1, m->sigma, err, errsize))
            goto fail;
        for (int i = 0; i < nv; i++)
            if (!(m->sigma[i] > 0)) {
                snprintf(err, errsize, "corrupt rbm model: sigma[%d] is not "
                         "positive", i);
                goto fail;
            }
    }
    return m;
fail:
    rbm_free(m);
    return NULL;
}

int rbm_to_model(const rbm *m, tz_model *mf)
{
    uint64_t wshape[2] = {(uint64_t)m->nv, (uint64_t)m->nh};
    uint64_t vshape[1] = {(uint64_t)m->nv};
    uint64_t hshape[1] = {(uint64_t)m->nh};
    int e = tz_model_add(mf, "W", TZ_F32, 2, wshape, m->W);
    if (!e) e = tz_model_add(mf, "vbias", TZ_F32, 1, vshape, m->vbias);
    if (!e) e = tz_model_add(mf, "hbias", TZ_F32, 1, hshape, m->hbias);
    if (!e && m->vis == RBM_GAUSSIAN)
        e = tz_model_add(mf, "sigma", TZ_F32, 1, vshape, m->sigma);
    if (!e) e = tz_attr_set_s(&mf->meta, "model.type", "rbm");
    if (!e) e = tz_attr_set_s(&mf->meta, "rbm.visible", rbm_unit_name(m->vis));
    if (!e) e = tz_attr_set_s(&mf->meta, "rbm.hidden", rbm_unit_name(m->hid));
    if (!e) e = tz_attr_set_i(&mf->meta, "rbm.softmax_group",
                              m->vis == RBM_SOFTMAX ? m->softmax_group : 1);
    if (!e) e = tz_attr_set_f(&mf->meta, "rbm.up_scale", m->up_scale);
    if (!e) e = tz_attr_set_f(&mf->meta, "rbm.down_scale", m->down_scale);
    return e;
}

/* ---- inference ------------------------------------------------------------- */

void rbm_doc_lengths(const rbm *m, int B, const float *v, float *d)
{
    int V = m->nv;
    for (int b = 0; b < B; b++) {
        if (m->vis != RBM_REPSOFTMAX) {
            d[b] = 1;
            continue;
        }
        double s = 0;
        for (int i = 0; i < V; i++)
            s += v[(size_t)b * V + i];
        d[b] = (float)s;
    }
}

/* x (B,H) = up_scale * vs W, where vs (B,V) is already divided by sigma.
 * Bias not added. */
static void hidden_product(const rbm *m, int B, const float *vs, float *x)
{
    gemm_f32(GEMM_NOTRANS, GEMM_NOTRANS, B, m->nh, m->nv, m->up_scale,
             vs, m->nv, m->W, m->nh, 0.0f, x, m->nh);
}

/* v/sigma into a new buffer for gaussian units with sigma, else NULL. */
static float *scaled_copy(const rbm *m, int B, const float *v)
{
    if (m->vis != RBM_GAUSSIAN)
        return NULL;
    size_t V = (size_t)m->nv;
    size_t n = (size_t)B * V;
    float *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return NULL;
    for (size_t x = 0; x < n; x++)
        s[x] = v[x] / m->sigma[x % V];
    return s;
}

/* Pre-activation of the hidden units given v (B,V); d (B) doc lengths or
 * NULL for 1; vs is v/sigma or v. */
static void hidden_input_d(const rbm *m, int B, const float *vs,
                           const float *d, float *x)
{
    int H = m->nh;
    hidden_product(m, B, vs, x);
    for (int b = 0; b < B; b++) {
        float s = d ? d[b] : 1.0f;
        float *xr = x + (size_t)b * H;
        for (int j = 0; j < H; j++)
            xr[j] += s * m->hbias[j];
    }
}

/* Hidden inputs for a batch: handles sigma and document lengths. */
static int hidden_input_alloc(const rbm *m, int B, const float *v, float *x)
{
    if (B < 1)
        return 0;
    float *vs = scaled_copy(m, B, v);
    if (m->vis == RBM_GAUSSIAN && !vs)
        return -1;
    float *d = NULL;
    if (m->vis == RBM_REPSOFTMAX) {
        d = malloc((size_t)B * sizeof *d);
        if (!d)
            return -1;
        rbm_doc_lengths(m, B, v, d);
    }
    hidden_input_d(m, B, vs ? vs : v, d, x);
    free(vs);
    free(d);
    return 0;
}

void rbm_hidden_input(const rbm *m, int B, const float *v, float *x)
{
    if (hidden_input_alloc(m, B, v, x) != 0)
        for (size_t i = 0; i < (size_t)B * m->nh; i++)
            x[i] = NAN;       /* out of memory: poison rather than lie */
}

void rbm_hidden_probs(const rbm *m, int B, const float *v, float *ph)
{
    rbm_hidden_input(m, B, v, ph);
    if (m->hid == RBM_BERNOULLI)
        for (int b = 0; b < B; b++)
            row_sigmoid(ph + (size_t)b * m->nh, NULL, 0, m->nh);
}

/* Visible means from the product y = down_scale * h W' already in pv. */
static void visible_finish(const rbm *m, int B, const float *d, float *pv)
{
    int V = m->nv;
    for (int b = 0; b < B; b++) {
        float *p = pv + (size_t)b * V;
        switch (m->vis) {
        case RBM_BERNOULLI:
            row_sigmoid(p, m->vbias, 1.0f, V);
            break;
        case RBM_GAUSSIAN:
            for (int i = 0; i < V; i++)
                p[i] = m->vbias[i] + m->sigma[i] * p[i];
            break;
        case RBM_REPSOFTMAX:
        case RBM_SOFTMAX: {
            int K = m->vis == RBM_SOFTMAX ? m->softmax_group : V;
            float D = m->vis == RBM_REPSOFTMAX ? (d ? d[b] : 1.0f) : 1.0f;
            for (int i = 0; i < V; i++)
                p[i] += m->vbias[i];
            for (int g = 0; g < V; g += K) {
                float mx = p[g];
                for (int i = 1; i < K; i++)
                    if (p[g + i] > mx)
                        mx = p[g + i];
                double s = row_exp_shift(p + g, mx, K);
                float sc = (float)(D / s);
                for (int i = 0; i < K; i++)
                    p[g + i] *= sc;
            }
            break;
        }
        }
    }
}

void rbm_visible_probs(const rbm *m, int B, const float *h, const float *d,
                       float *pv)
{
    gemm_f32(GEMM_NOTRANS, GEMM_TRANS, B, m->nv, m->nh, m->down_scale,
             h, m->nh, m->W, m->nh, 0.0f, pv, m->nv);
    visible_finish(m, B, d, pv);
}

/* ---- sampling -------------------------------------------------------------- */

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

/* Bernoulli: h = (u < p), u from rng, in blocks (in place allowed). */
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

void rbm_sample_hidden(const rbm *m, int B, const float *ph, float *h,
                       rng_t *rng)
{
    size_t n = (size_t)B * m->nh;
    if (m->hid == RBM_GAUSSIAN)
        sample_normal(ph, NULL, h, (size_t)B, (size_t)m->nh, rng);
    else
        sample_bernoulli(ph, h, n, rng);
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

void rbm_sample_visible(const rbm *m, int B, const float *pv, const float *d,
                        float *v, rng_t *rng)
{
    int V = m->nv;
    size_t n = (size_t)B * V;
    switch (m->vis) {
    case RBM_BERNOULLI:
        sample_bernoulli(pv, v, n, rng);
        break;
    case RBM_GAUSSIAN:
        sample_normal(pv, m->sigma, v, (size_t)B, (size_t)V, rng);
        break;
    case RBM_SOFTMAX: {
        int K = m->softmax_group;
        for (size_t g = 0; g < n; g += K) {
            double s = 0;
            for (int i = 0; i < K; i++)
                s += pv[g + i];
            double u = rng_uniform_d(rng) * s, c = 0;
            int pick = K - 1;
            for (int i = 0; i < K; i++) {
                c += pv[g + i];
                if (u < c) {
                    pick = i;
                    break;
                }
            }
            for (int i = 0; i < K; i++)
                v[g + i] = i == pick ? 1.0f : 0.0f;
        }
        break;
    }
    case RBM_REPSOFTMAX: {
        double *cdf = malloc((size_t)V * sizeof *cdf);
        for (int b = 0; b < B; b++) {
            const float *p = pv + (size_t)b * V;
            float *o = v + (size_t)b * V;
            double c = 0;
            for (int i = 0; i < V; i++) {
                if (cdf)
                    cdf[i] = c += p[i];
            }
            long D = d ? lrintf(d[b]) : 1;
            for (int i = 0; i < V; i++)
                o[i] = 0;
            if (!cdf || c <= 0)
                continue;
            for (long w = 0; w < D; w++)
                o[search_cdf(cdf, V, rng_uniform_d(rng) * c)] += 1.0f;
        }
        free(cdf);
        break;
    }
    }
}

/* ---- free energy ------------------------------------------------------------ */

void rbm_free_energy(const rbm *m, int B, const float *v, double *F)
{
    int V = m->nv, H = m->nh;
    const int chunk = 256;
    float *x = malloc((size_t)chunk * H * sizeof *x);
    if (!x) {
        for (int b = 0; b < B; b++)
            F[b] = NAN;
        return;
    }
    const double half_log_2pi = 0.9189385332046728;
    for (int b0 = 0; b0 < B; b0 += chunk) {
        int n = B - b0 < chunk ? B - b0 : chunk;
        const float *vb = v + (size_t)b0 * V;
        if (hidden_input_alloc(m, n, vb, x) != 0) {
            for (int b = 0; b < n; b++)
                F[b0 + b] = NAN;
            continue;
        }
        for (int b = 0; b < n; b++) {
            const float *vr = vb + (size_t)b * V;
            const float *xr = x + (size_t)b * H;
            double f = 0;
            if (m->vis == RBM_GAUSSIAN)
                for (int i = 0; i < V; i++) {
                    double t = ((double)vr[i] - m->vbias[i]) / m->sigma[i];
                    f += 0.5 * t * t;
                }
            else
                for (int i = 0; i < V; i++)
                    f -= (double)m->vbias[i] * vr[i];
            if (m->hid == RBM_GAUSSIAN)
                for (int j = 0; j < H; j++)
                    f -= 0.5 * (double)xr[j] * xr[j] + half_log_2pi;
            else
                for (int j = 0; j < H; j++)
                    f -= softplus(xr[j]);
            F[b0 + b] = f;
        }
    }
    free(x);
}

/* ---- data checks ---------------------------------------------------------- */

const char *rbm_check_data(const rbm *m, int B, const float *v, int allow_real)
{
    size_t n = (size_t)B * m->nv;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return "NaN or infinite value";
    switch (m->vis) {
    case RBM_BERNOULLI:
        for (size_t i = 0; i < n; i++) {
            if (allow_real) {
                if (v[i] < 0 || v[i] > 1)
                    return "value outside [0, 1] for bernoulli units";
            } else if (v[i] != 0 && v[i] != 1) {
                return "non-binary value for bernoulli units";
            }
        }
        break;
    case RBM_REPSOFTMAX:
        for (size_t i = 0; i < n; i++) {
            if (v[i] < 0)
                return "negative count for replicated-softmax units";
            if (v[i] != floorf(v[i]))
                return "non-integral count for replicated-softmax units";
        }
        break;
    case RBM_SOFTMAX: {
        int K = m->softmax_group;
        for (size_t g = 0; g < n; g += K) {
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

/* ---- training ------------------------------------------------------------------ */

void rbm_train_opts_init(rbm_train_opts *o)
{
    o->lr = 0.1f;
    o->momentum = 0.5f;
    o->weight_decay = 2e-4f;
    o->k = 1;
    o->pcd = 0;
    o->sparsity_target = 0;
    o->sparsity_cost = 0.1f;
    o->learn_sigma = 0;
}

void rbm_init_params(rbm *m, const float *mean, rng_t *rng)
{
    int V = m->nv, H = m->nh;
    size_t n = (size_t)V * H;
    for (size_t i = 0; i < n; i++)
        m->W[i] = (float)(0.01 * rng_normal(rng));
    for (int j = 0; j < H; j++)
        m->hbias[j] = 0;
    switch (m->vis) {
    case RBM_BERNOULLI:
        for (int i = 0; i < V; i++) {
            double p = mean[i];
            p = p < 1e-3 ? 1e-3 : p > 1 - 1e-3 ? 1 - 1e-3 : p;
            m->vbias[i] = (float)log(p / (1 - p));
        }
        break;
    case RBM_GAUSSIAN:
        for (int i = 0; i < V; i++)
            m->vbias[i] = mean[i];
        break;
    case RBM_REPSOFTMAX:
    case RBM_SOFTMAX: {
        int K = m->vis == RBM_SOFTMAX ? m->softmax_group : V;
        for (int g = 0; g < V; g += K) {
            double s = 0;
            for (int i = 0; i < K; i++)
                s += mean[g + i];
            for (int i = 0; i < K; i++) {
                double p = s > 0 ? mean[g + i] / s : 1.0 / K;
                m->vbias[g + i] = (float)log(p < 1e-6 ? 1e-6 : p);
            }
        }
        break;
    }
    }
}

struct rbm_trainer {
    rbm *m;
    int cap;              /* rows per batch at most; PCD chains */
    rng_t rng;            /* each step splits its thread streams from it */
    int nthreads;         /* threads of a step; pool is NULL for 1 */
    par_pool *pool;
    rng_t *trng;          /* (nthreads) this step's stream of each thread */
    double *recon;        /* (nthreads) each thread's reconstruction error */
    float *vs;            /* (2cap, V): [v0/sigma; vk/sigma] */
    float *hs;            /* (2cap, H): [p(h|v0); p(h|vk)], then scaled */
    float *h;             /* (cap, H) hidden samples of the data; CD's chain */
    float *pv;            /* (2cap, V): rows [0, cap) visible means of the
                             latest Gibbs step, [cap, 2cap) PCD's
                             reconstructions of the data */
    float *wv;            /* (2cap, V) W p products for learning sigma */
    float *d;             /* (cap) document lengths of the data rows */
    float *ones;          /* (cap) all 1, for column sums */
    float *gv;            /* (V) visible bias gradient */
    float *sp;            /* (H) sparsity penalty cost*(q - target) */
    float *vm;            /* (V) mean visible input (sparsity) */
    float *Winc;          /* (V, H) momentum buffers */
    float *vinc, *hinc, *sinc;   /* (V), (H), (V) */
    float *q;             /* (H) running mean activity (sparsity) */
    int q_init;
    float *chain_h;       /* (cap, H) persistent hidden states (PCD) */
    float *chain_d;       /* (cap) their document lengths */
    int chains_init;
};

void rbm_trainer_free(rbm_trainer *t)
{
    if (!t)
        return;
    par_free(t->pool);
    free(t->trng);
    free(t->recon);
    free(t->vs);
    free(t->hs);
    free(t->h);
    free(t->pv);
    free(t->wv);
    free(t->d);
    free(t->ones);
    free(t->gv);
    free(t->sp);
    free(t->vm);
    free(t->Winc);
    free(t->vinc);
    free(t->hinc);
    free(t->sinc);
    free(t->q);
    free(t->chain_h);
    free(t->chain_d);
    free(t);
}

rbm_trainer *rbm_trainer_new(rbm *m, int batch, uint64_t seed)
{
    if (batch < 1)
        return NULL;
    rbm_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    size_t V = (size_t)m->nv, H = (size_t)m->nh, c = (size_t)batch;
    t->m = m;
    t->cap = batch;
    rng_seed(&t->rng, seed);
    t->nthreads = 1;
    t->trng = malloc(sizeof *t->trng);
    t->recon = malloc(sizeof *t->recon);
    t->vs = malloc(2 * c * V * sizeof(float));
    t->hs = malloc(2 * c * H * sizeof(float));
    t->h = malloc(c * H * sizeof(float));
    t->pv = malloc(2 * c * V * sizeof(float));
    t->d = malloc(c * sizeof(float));
    t->ones = malloc(c * sizeof(float));
    t->gv = malloc(V * sizeof(float));
    t->sp = malloc(H * sizeof(float));
    t->vm = malloc(V * sizeof(float));
    t->Winc = calloc(V * H, sizeof(float));
    t->vinc = calloc(V, sizeof(float));
    t->hinc = calloc(H, sizeof(float));
    t->sinc = calloc(V, sizeof(float));
    t->q = calloc(H, sizeof(float));
    t->chain_h = calloc(c * H, sizeof(float));
    t->chain_d = calloc(c, sizeof(float));
    if (!t->trng || !t->recon || !t->vs || !t->hs || !t->h || !t->pv ||
        !t->d || !t->ones || !t->gv || !t->sp || !t->vm || !t->Winc ||
        !t->vinc || !t->hinc || !t->sinc || !t->q || !t->chain_h ||
        !t->chain_d) {
        rbm_trainer_free(t);
        return NULL;
    }
    for (size_t i = 0; i < c; i++)
        t->ones[i] = 1;
    return t;
}

int rbm_trainer_set_threads(rbm_trainer *t, int nthreads)
{
    if (nthreads < 1)
        return -1;
    if (nthreads == t->nthreads)
        return 0;
    rng_t *trng = malloc((size_t)nthreads * sizeof *trng);
    double *recon = malloc((size_t)nthreads * sizeof *recon);
    par_pool *pool = nthreads > 1 ? par_new(nthreads) : NULL;
    if (!trng || !recon || (nthreads > 1 && !pool)) {
        free(trng);
        free(recon);
        par_free(pool);
        return -1;
    }
    par_free(t->pool);
    free(t->trng);
    free(t->recon);
    t->pool = pool;
    t->trng = trng;
    t->recon = recon;
    t->nthreads = nthreads;
    return 0;
}

int rbm_trainer_threads(const rbm_trainer *t)
{
    return t->nthreads;
}

/* vs (n,V) = v (n,V) divided by sigma (gaussian units), else a copy. */
static void scale_rows(const rbm *m, int n, const float *v, float *vs)
{
    size_t V = (size_t)m->nv;
    if (m->vis != RBM_GAUSSIAN) {
        memcpy(vs, v, (size_t)n * V * sizeof *vs);
        return;
    }
    for (size_t b = 0; b < (size_t)n; b++)
        for (size_t i = 0; i < V; i++)
            vs[b * V + i] = v[b * V + i] / m->sigma[i];
}

/* ph (n,H) = p(h|v) from vs (n,V) = v/sigma and document lengths d (n). */
static void gibbs_up(const rbm *m, int n, const float *vs, const float *d,
                     float *ph)
{
    int H = m->nh;
    hidden_product(m, n, vs, ph);
    for (int b = 0; b < n; b++) {
        float *x = ph + (size_t)b * H;
        float s = m->vis == RBM_REPSOFTMAX ? d[b] : 1.0f;
        if (m->hid == RBM_BERNOULLI)
            row_sigmoid(x, m->hbias, s, H);
        else
            for (int j = 0; j < H; j++)
                x[j] += s * m->hbias[j];
    }
}

/* Visible step for n rows: pv (n,V) = E[v|h] given h (n,H) and document
 * lengths d (n), then vs (n,V) = a sample of v, divided by sigma. */
static void gibbs_down(const rbm *m, int n, const float *h, const float *d,
                       float *pv, float *vs, rng_t *rng)
{
    rbm_visible_probs(m, n, h, d, pv);
    rbm_sample_visible(m, n, pv, d, vs, rng);
    if (m->vis == RBM_GAUSSIAN)
        for (size_t b = 0; b < (size_t)n; b++)
            for (int i = 0; i < m->nv; i++)
                vs[b * m->nv + i] /= m->sigma[i];
}

/* What the threads of one training step share. */
typedef struct {
    rbm_trainer *t;
    const rbm_train_opts *o;
    const float *v0;      /* (B, V) the batch */
    int B, Bn;            /* data rows; negative chains (B, or cap for PCD) */
    int init_chains;      /* PCD: start the chains from this batch's h */
    int init_q;           /* sparsity: no running mean activity yet */
} step_job;

/* Thread `id` of T of one CD-k / PCD-k step.  The Gibbs chains are row by
 * row, so thread id runs rows [b0, b1) of the data and [c0, c1) of the
 * negative chains (the same rows for CD) with its own random stream; after
 * one barrier it owns rows [i0, i1) of W (visible units) and columns
 * [j0, j1) of the hidden units for the gradient and the updates. */
static void train_step_part(void *arg, int id, int T)
{
    step_job *J = arg;
    rbm_trainer *t = J->t;
    rbm *m = t->m;
    const rbm_train_opts *o = J->o;
    int V = m->nv, H = m->nh, B = J->B, Bn = J->Bn;
    size_t Vz = (size_t)V, Hz = (size_t)H;
    int gauss = m->vis == RBM_GAUSSIAN;
    rng_t *rng = &t->trng[id];
    const float *v0 = J->v0;
    float *vs0 = t->vs, *hs0 = t->hs, *d0 = t->d;
    float *vsk = vs0 + (size_t)B * Vz, *hsk = hs0 + (size_t)B * Hz;
    float *chain = o->pcd ? t->chain_h : t->h;    /* (Bn, H) */
    float *dk = o->pcd ? t->chain_d : d0;         /* (Bn) */
    double recon = 0;

    /* positive phase, data rows [b0, b1): vs0 = v0/sigma (B,V),
     * hs0 = p(h|v0) (B,H), h ~ hs0 */
    int b0 = par_split(B, T, id), nb = par_split(B, T, id + 1) - b0;
    scale_rows(m, nb, v0 + b0 * Vz, vs0 + b0 * Vz);
    rbm_doc_lengths(m, nb, v0 + b0 * Vz, d0 + b0);
    gibbs_up(m, nb, vs0 + b0 * Vz, d0 + b0, hs0 + b0 * Hz);
    rbm_sample_hidden(m, nb, hs0 + b0 * Hz, t->h + b0 * Hz, rng);

    int c0 = par_split(Bn, T, id), nc = par_split(Bn, T, id + 1) - c0;
    if (o->pcd) {
        /* reconstruction error from the data's own down pass (B,V), which
         * CD gets from its negative phase for free: 2BVH more flops */
        float *pr = t->pv + ((size_t)t->cap + b0) * Vz;
        rbm_visible_probs(m, nb, t->h + b0 * Hz, d0 + b0, pr);
        recon = vec_sqdiff(v0 + b0 * Vz, pr, (size_t)nb * Vz);
        if (J->init_chains) {
            par_barrier(t->pool);      /* every row of h is drawn */
            for (int c = c0; c < c0 + nc; c++) {
                memcpy(t->chain_h + (size_t)c * Hz,
                       t->h + (size_t)(c % B) * Hz, Hz * sizeof(float));
                t->chain_d[c] = d0[c % B];
            }
        }
    }

    /* negative phase, chain rows [c0, c1): k Gibbs steps from the chain's
     * hidden states; pv (Bn,V) = E[v|h], vsk (Bn,V) ~ pv, hsk (Bn,H) */
    float *hc = chain + c0 * Hz, *pvc = t->pv + c0 * Vz;
    float *vsc = vsk + c0 * Vz, *hsc = hsk + c0 * Hz;
    const float *dc = dk + c0;
    int k = o->k < 1 ? 1 : o->k;
    for (int s = 1; s <= k; s++) {
        gibbs_down(m, nc, hc, dc, pvc, vsc, rng);
        if (s == 1 && !o->pcd)        /* CD: c0 == b0 */
            recon = vec_sqdiff(v0 + c0 * Vz, pvc, (size_t)nc * Vz);
        gibbs_up(m, nc, vsc, dc, hsc);
        if (s < k || o->pcd)
            rbm_sample_hidden(m, nc, hsc, hc, rng);
    }
    t->recon[id] = recon;

    /* learning log sigma needs wv = [hs0; hsk] W' (B+Bn,V), unscaled */
    if (gauss && o->learn_sigma && t->wv) {
        gemm_f32(GEMM_NOTRANS, GEMM_TRANS, nb, V, H, 1.0f, hs0 + b0 * Hz, H,
                 m->W, H, 0.0f, t->wv + b0 * Vz, V);
        gemm_f32(GEMM_NOTRANS, GEMM_TRANS, nc, V, H, 1.0f, hsc, H,
                 m->W, H, 0.0f, t->wv + ((size_t)B + c0) * Vz, V);
    }
    /* hs0 /= B, hsk /= -Bn: then the weight gradient is vs' hs */
    vec_scale(hs0 + b0 * Hz, 1.0f / B, (size_t)nb * Hz);
    vec_scale(hsc, -1.0f / Bn, (size_t)nc * Hz);
    par_barrier(t->pool);

    float lr = o->lr, mom = o->momentum;
    float ip = 1.0f / B, in = 1.0f / Bn;

    /* hidden units [j0, j1): gh = mom gh + lr (hs0' d0 / B - hsk' dk / Bn),
     * d the document length (replicated softmax) or 1; hs is scaled */
    int j0 = par_split(H, T, id), j1 = par_split(H, T, id + 1);
    float *gh = t->hinc;
    gemm_gemv_f32(GEMM_TRANS, B, j1 - j0, lr, hs0 + j0, H, d0, 1, mom,
                  gh + j0, 1);
    gemm_gemv_f32(GEMM_TRANS, Bn, j1 - j0, lr, hsk + j0, H, dk, 1, 1.0f,
                  gh + j0, 1);
    float *sp = NULL;     /* (H) sparsity penalty cost*(q - target) */
    if (o->sparsity_target > 0) {
        float *qn = t->sp;    /* this batch's mean activity, then penalty */
        for (int j = j0; j < j1; j++)
            qn[j] = 0;
        for (int b = 0; b < B; b++)
            for (int j = j0; j < j1; j++)
                qn[j] += hs0[(size_t)b * H + j];
        for (int j = j0; j < j1; j++) {
            t->q[j] = J->init_q ? qn[j] : 0.9f * t->q[j] + 0.1f * qn[j];
            qn[j] = o->sparsity_cost * (t->q[j] - o->sparsity_target);
            gh[j] -= lr * qn[j];
        }
        sp = qn;
        par_barrier(t->pool);      /* the rows of W need all of sp */
    }
    for (int j = j0; j < j1; j++)
        m->hbias[j] += gh[j];

    /* visible units [i0, i1) */
    int i0 = par_split(V, T, id), i1 = par_split(V, T, id + 1);
    if (gauss && o->learn_sigma && t->wv) {
        for (int i = i0; i < i1; i++) {
            double g = 0;
            for (int b = 0; b < B + Bn; b++) {
                size_t x = (size_t)b * Vz + i;
                double u = vs0[x] - m->vbias[i] / m->sigma[i];
                double term = u * u - (double)vs0[x] * t->wv[x];
                g += b < B ? term * ip : -term * in;
            }
            t->sinc[i] = mom * t->sinc[i] + lr * (float)g;
            float ls = logf(m->sigma[i]) + t->sinc[i];
            ls = ls < -4.6f ? -4.6f : ls > 4.6f ? 4.6f : ls;
            m->sigma[i] = expf(ls);
        }
    }

    /* visible bias: (mean v0 - mean E[vk]) / sigma^2 */
    float *g = t->gv;
    gemm_gemv_f32(GEMM_TRANS, B, i1 - i0, ip, v0 + i0, V, t->ones, 1, 0.0f,
                  g + i0, 1);
    gemm_gemv_f32(GEMM_TRANS, Bn, i1 - i0, -in, t->pv + i0, V, t->ones, 1,
                  1.0f, g + i0, 1);
    for (int i = i0; i < i1; i++) {
        t->vinc[i] = mom * t->vinc[i] +
                     lr * g[i] / (gauss ? m->sigma[i] * m->sigma[i] : 1.0f);
        m->vbias[i] += t->vinc[i];
    }

    /* weights, rows [i0, i1): Winc = mom Winc + lr [vs0; vsk]' [hs0/B;
     * -hsk/Bn] - lr wd W (- lr mean(vs0) sp'), then W += Winc */
    gemm_f32(GEMM_TRANS, GEMM_NOTRANS, i1 - i0, H, B + Bn, lr, vs0 + i0, V,
             hs0, H, mom, t->Winc + (size_t)i0 * Hz, H);
    float lwd = lr * o->weight_decay;
    if (sp) {
        float *vm = t->vm;    /* (V) mean visible input of the batch */
        for (int i = i0; i < i1; i++)
            vm[i] = 0;
        for (int b = 0; b < B; b++)
            for (int i = i0; i < i1; i++)
                vm[i] += vs0[(size_t)b * Vz + i] * ip;
        for (int i = i0; i < i1; i++) {
            float *wi = m->W + (size_t)i * Hz, *ci = t->Winc + (size_t)i * Hz;
            float a = lr * vm[i];
            for (int j = 0; j < H; j++) {
                ci[j] -= lwd * wi[j] + a * sp[j];
                wi[j] += ci[j];
            }
        }
    } else {
        size_t n = (size_t)(i1 - i0) * Hz, x = 0;
        float *W = m->W + (size_t)i0 * Hz, *C = t->Winc + (size_t)i0 * Hz;
        v4f vl = v4_splat(lwd);
        for (; x + 4 <= n; x += 4) {
            v4f w = v4_load(W + x), c = v4_load(C + x) - vl * w;
            v4_store(C + x, c);
            v4_store(W + x, w + c);
        }
        for (; x < n; x++) {
            C[x] -= lwd * W[x];
            W[x] += C[x];
        }
    }
}

double rbm_train_step(rbm_trainer *t, int B, const float *v0,
                      const rbm_train_opts *o)
{
    rbm *m = t->m;
    if (B < 1 || B > t->cap)
        return NAN;
    if (m->vis == RBM_GAUSSIAN && o->learn_sigma && !t->wv)
        t->wv = malloc(2 * (size_t)t->cap * m->nv * sizeof(float));
    for (int i = 0; i < t->nthreads; i++)
        rng_split(&t->trng[i], &t->rng, (uint64_t)i);
    step_job J = {
        .t = t, .o = o, .v0 = v0, .B = B, .Bn = o->pcd ? t->cap : B,
        .init_chains = o->pcd && !t->chains_init, .init_q = !t->q_init,
    };
    par_run(t->pool, train_step_part, &J);
    if (o->pcd)
        t->chains_init = 1;
    if (o->sparsity_target > 0)
        t->q_init = 1;
    double recon = 0;
    for (int i = 0; i < t->nthreads; i++)
        recon += t->recon[i];
    return recon;
}

/* ---- trainer state ------------------------------------------------------------ */

int rbm_trainer_save(const rbm_trainer *t, tz_model *mf)
{
    const rbm *m = t->m;
    uint64_t wsh[2] = {(uint64_t)m->nv, (uint64_t)m->nh};
    uint64_t vsh[1] = {(uint64_t)m->nv}, hsh[1] = {(uint64_t)m->nh};
    uint64_t csh[2] = {(uint64_t)t->cap, (uint64_t)m->nh};
    uint64_t cdsh[1] = {(uint64_t)t->cap};
    uint64_t rsh[1] = {4}, ssh[1] = {3};
    int64_t state[3] = {t->cap, t->q_init, t->chains_init};
    int64_t rs[4];
    memcpy(rs, t->rng.s, sizeof rs);
    int e = tz_model_add(mf, "train.W_inc", TZ_F32, 2, wsh, t->Winc);
    if (!e) e = tz_model_add(mf, "train.vbias_inc", TZ_F32, 1, vsh, t->vinc);
    if (!e) e = tz_model_add(mf, "train.hbias_inc", TZ_F32, 1, hsh, t->hinc);
    if (!e) e = tz_model_add(mf, "train.log_sigma_inc", TZ_F32, 1, vsh, t->sinc);
    if (!e) e = tz_model_add(mf, "train.activity", TZ_F32, 1, hsh, t->q);
    if (!e) e = tz_model_add(mf, "train.chain_h", TZ_F32, 2, csh, t->chain_h);
    if (!e) e = tz_model_add(mf, "train.chain_d", TZ_F32, 1, cdsh, t->chain_d);
    if (!e) e = tz_model_add(mf, "train.rng", TZ_I64, 1, rsh, rs);
    if (!e) e = tz_model_add(mf, "train.state", TZ_I64, 1, ssh, state);
    return e;
}

static int load_exact(tz_model *mf, const char *name, int dtype,
                      uint64_t count, uint64_t elems, void *dst)
{
    tz_tensor *x = tz_model_find(mf, name);
    if (!x || x->h.dtype != dtype || x->count != count ||
        tz_record_elems(&x->h) != elems) {
        snprintf(mf->err, sizeof mf->err, "checkpoint: tensor '%s' is "
                 "missing or has the wrong shape", name);
        return TZ_E_MISMATCH;
    }
    memcpy(dst, x->data, (size_t)(count * elems) * tz_dtype_size(dtype));
    return 0;
}

int rbm_trainer_load(rbm_trainer *t, tz_model *mf)
{
    const rbm *m = t->m;
    int64_t state[3], rs[4];
    int e = load_exact(mf, "train.state", TZ_I64, 3, 1, state);
    if (!e && state[0] != t->cap) {
        snprintf(mf->err, sizeof mf->err, "checkpoint: batch size %lld, "
                 "trainer has %d", (long long)state[0], t->cap);
        return TZ_E_MISMATCH;
    }
    if (!e) e = load_exact(mf, "train.W_inc", TZ_F32, m->nv, m->nh, t->Winc);
    if (!e) e = load_exact(mf, "train.vbias_inc", TZ_F32, m->nv, 1, t->vinc);
    if (!e) e = load_exact(mf, "train.hbias_inc", TZ_F32, m->nh, 1, t->hinc);
    if (!e) e = load_exact(mf, "train.log_sigma_inc", TZ_F32, m->nv, 1, t->sinc);
    if (!e) e = load_exact(mf, "train.activity", TZ_F32, m->nh, 1, t->q);
    if (!e) e = load_exact(mf, "train.chain_h", TZ_F32, t->cap, m->nh, t->chain_h);
    if (!e) e = load_exact(mf, "train.chain_d", TZ_F32, t->cap, 1, t->chain_d);
    if (!e) e = load_exact(mf, "train.rng", TZ_I64, 4, 1, rs);
    if (e)
        return e;
    memcpy(t->rng.s, rs, sizeof rs);
    t->q_init = (int)state[1];
    t->chains_init = (int)state[2];
    return 0;
}
