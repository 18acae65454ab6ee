/* rbm.c - restricted Boltzmann machines (rbm.h): parameters, model files,
 * the conditionals p(h|v) and p(v|h), sampling, free energy, and the
 * CD-k / PCD-k training step.
 *
 * Every product goes through gemm_f32.  Everything that depends on a unit
 * type (means, draws, free-energy terms, data checks, initial biases) is
 * the layer module's (bm_layer.h), called on views of the two layers
 * (rbm_visible_layer, rbm_hidden_layer); the element-wise passes of the
 * training step use the vector kernels of vmath.h.
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
#include "vmath.h"

/* ---- unit names ----------------------------------------------------------- */

const char *rbm_unit_name(int unit)
{
    return bm_unit_name(unit);
}

int rbm_unit_parse(const char *name)
{
    return bm_unit_parse(name);
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
    bm_layer L = rbm_visible_layer(m);
    bm_layer_doclen(&L, B, v, d);
}

/* x (B,H) = up_scale * vs W, where vs (B,V) is already divided by sigma.
 * Bias not added. */
static void hidden_product(const rbm *m, int B, const float *vs, float *x)
{
    gemm_f32(GEMM_NOTRANS, GEMM_NOTRANS, B, m->nh, m->nv, m->up_scale,
             vs, m->nv, m->W, m->nh, 0.0f, x, m->nh);
}

/* hidden_product of v itself: gaussian units need a scaled copy of v. */
static int hidden_product_v(const rbm *m, int B, const float *v, float *x)
{
    if (m->vis != RBM_GAUSSIAN) {
        hidden_product(m, B, v, x);
        return 0;
    }
    float *vs = malloc((size_t)B * m->nv * sizeof *vs);     /* B >= 1 */
    if (!vs)
        return BM_E_NOMEM;
    bm_layer L = rbm_visible_layer(m);
    bm_layer_scale(&L, B, v, vs);
    hidden_product(m, B, vs, x);
    free(vs);
    return 0;
}

/* Rows per block of the passes that need per-row document lengths, which
 * then live on the stack. */
enum { DOC_ROWS = 256 };

/* The multipliers of the hidden bias for rows v (n <= DOC_ROWS): their
 * document lengths, in d, for replicated softmax; NULL (all 1) otherwise. */
static const float *hidden_mult(const rbm *m, int n, const float *v, float *d)
{
    if (m->vis != RBM_REPSOFTMAX)
        return NULL;
    rbm_doc_lengths(m, n, v, d);
    return d;
}

/* x (n,H) += D hbias, D the multipliers d (n), NULL for 1: the hidden
 * input of rbm.h, the bias folded in. */
static void add_hidden_bias(const rbm *m, int n, const float *d, float *x)
{
    int H = m->nh;
    for (int b = 0; b < n; b++) {
        float s = d ? d[b] : 1.0f;
        float *xr = x + (size_t)b * H;
        for (int j = 0; j < H; j++)
            xr[j] += s * m->hbias[j];
    }
}

/* The hidden units take their bias as part of their input (D b for
 * replicated softmax, with gaussian units too: the energy of rbm.h), so
 * the layer math runs on the hidden layer with a zero bias. */
static const float zero_bias[256];

/* x (n,H) <- E[h | x], x the hidden input with the bias folded in.  The
 * hidden units have no groups: blocks of columns are layers of their own. */
static void hidden_mean(const rbm *m, int n, float *x)
{
    bm_layer L = rbm_hidden_layer(m);
    L.bias = (float *)zero_bias;     /* only read */
    for (int b = 0; b < n; b++)
        for (int j = 0; j < m->nh; j += 256) {
            L.n = m->nh - j < 256 ? m->nh - j : 256;
            bm_layer_mean(&L, 1, x + (size_t)b * m->nh + j, NULL);
        }
}

int rbm_hidden_input(const rbm *m, int B, const float *v, float *x)
{
    if (B < 1)
        return 0;
    int e = hidden_product_v(m, B, v, x);
    if (e)
        return e;
    for (int b0 = 0; b0 < B; b0 += DOC_ROWS) {
        int n = B - b0 < DOC_ROWS ? B - b0 : DOC_ROWS;
        float dbuf[DOC_ROWS];
        add_hidden_bias(m, n, hidden_mult(m, n, v + (size_t)b0 * m->nv, dbuf),
                        x + (size_t)b0 * m->nh);
    }
    return 0;
}

int rbm_hidden_probs(const rbm *m, int B, const float *v, float *ph)
{
    int e = rbm_hidden_input(m, B, v, ph);
    if (!e)
        hidden_mean(m, B, ph);
    return e;
}

void rbm_visible_probs(const rbm *m, int B, const float *h, const float *d,
                       float *pv)
{
    gemm_f32(GEMM_NOTRANS, GEMM_TRANS, B, m->nv, m->nh, m->down_scale,
             h, m->nh, m->W, m->nh, 0.0f, pv, m->nv);
    bm_layer L = rbm_visible_layer(m);
    bm_layer_mean(&L, B, pv, m->vis == RBM_REPSOFTMAX ? d : NULL);
}

/* ---- sampling -------------------------------------------------------------- */

void rbm_sample_hidden(const rbm *m, int B, const float *ph, float *h,
                       rng_t *rng)
{
    bm_layer L = rbm_hidden_layer(m);
    bm_layer_sample(&L, B, ph, NULL, h, rng, NULL);
}

int rbm_sample_visible(const rbm *m, int B, const float *pv, const float *d,
                       float *v, rng_t *rng)
{
    double *cdf = NULL;
    if (m->vis == RBM_REPSOFTMAX &&
        !(cdf = malloc((size_t)m->nv * sizeof *cdf)))
        return BM_E_NOMEM;
    bm_layer L = rbm_visible_layer(m);
    bm_layer_sample(&L, B, pv, d, v, rng, cdf);
    free(cdf);
    return 0;
}

/* ---- free energy ------------------------------------------------------------ */

int rbm_free_energy(const rbm *m, int B, const float *v, double *F)
{
    int V = m->nv, H = m->nh;
    const int chunk = 256;
    /* x (chunk, H) the hidden input, bias included, then H zeros: the
     * hidden layer with its bias folded into its input (hidden_mean; for
     * gaussian units the energy h^2/2 - x h of rbm.h) */
    float *x = malloc(((size_t)chunk + 1) * H * sizeof *x);
    if (!x)
        return BM_E_NOMEM;
    float *zero = x + (size_t)chunk * H;
    memset(zero, 0, (size_t)H * sizeof *zero);
    bm_layer Lv = rbm_visible_layer(m), Lh = rbm_hidden_layer(m);
    Lh.bias = zero;
    int e = 0;
    for (int b0 = 0; b0 < B && !e; b0 += chunk) {
        int n = B - b0 < chunk ? B - b0 : chunk;
        const float *vb = v + (size_t)b0 * V;
        double *G = F + b0;       /* -F: one running sum, own terms first */
        if ((e = rbm_hidden_input(m, n, vb, x)))
            break;
        for (int b = 0; b < n; b++)
            G[b] = 0;
        bm_layer_add_own(&Lv, n, vb, NULL, G);
        bm_layer_add_logpart(&Lh, n, x, NULL, G);
        for (int b = 0; b < n; b++)
            G[b] = -G[b];
    }
    free(x);
    return e;
}

/* ---- data checks ---------------------------------------------------------- */

const char *rbm_check_data(const rbm *m, int B, const float *v, int allow_real)
{
    bm_layer L = rbm_visible_layer(m);
    return bm_layer_check(&L, B, v, allow_real);
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
    size_t n = (size_t)m->nv * m->nh;
    for (size_t i = 0; i < n; i++)
        m->W[i] = (float)(0.01 * rng_normal(rng));
    for (int j = 0; j < m->nh; j++)
        m->hbias[j] = 0;
    bm_layer L = rbm_visible_layer(m);
    bm_layer_init_bias(&L, mean);
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
    double *cdf;          /* (nthreads, V) replicated softmax: each thread's
                             scratch for the visible draws, else NULL */
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
    free(t->cdf);
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
    if (m->vis == RBM_REPSOFTMAX)
        t->cdf = malloc(V * sizeof(double));
    if (!t->trng || !t->recon || !t->vs || !t->hs || !t->h || !t->pv ||
        !t->d || !t->ones || !t->gv || !t->sp || !t->vm || !t->Winc ||
        !t->vinc || !t->hinc || !t->sinc || !t->q || !t->chain_h ||
        !t->chain_d || (m->vis == RBM_REPSOFTMAX && !t->cdf)) {
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
        return BM_E_ARG;
    if (nthreads == t->nthreads)
        return 0;
    rng_t *trng = malloc((size_t)nthreads * sizeof *trng);
    double *recon = malloc((size_t)nthreads * sizeof *recon);
    double *cdf = NULL;
    if (t->cdf)
        cdf = malloc((size_t)nthreads * t->m->nv * sizeof *cdf);
    par_pool *pool = nthreads > 1 ? par_new(nthreads) : NULL;
    if (!trng || !recon || (t->cdf && !cdf) || (nthreads > 1 && !pool)) {
        free(trng);
        free(recon);
        free(cdf);
        par_free(pool);
        return BM_E_NOMEM;
    }
    par_free(t->pool);
    free(t->trng);
    free(t->recon);
    free(t->cdf);
    t->pool = pool;
    t->trng = trng;
    t->recon = recon;
    t->cdf = cdf;
    t->nthreads = nthreads;
    return 0;
}

int rbm_trainer_threads(const rbm_trainer *t)
{
    return t->nthreads;
}

/* ph (n,H) = p(h|v) from vs (n,V) = v/sigma and document lengths d (n). */
static void gibbs_up(const rbm *m, int n, const float *vs, const float *d,
                     float *ph)
{
    hidden_product(m, n, vs, ph);
    add_hidden_bias(m, n, m->vis == RBM_REPSOFTMAX ? d : NULL, ph);
    hidden_mean(m, n, ph);
}

/* Visible step for n rows: pv (n,V) = E[v|h] given h (n,H) and document
 * lengths d (n), then vs (n,V) = a sample of v, divided by sigma; cdf is
 * the thread's scratch for replicated-softmax draws. */
static void gibbs_down(const rbm *m, int n, const float *h, const float *d,
                       float *pv, float *vs, rng_t *rng, double *cdf)
{
    bm_layer L = rbm_visible_layer(m);
    rbm_visible_probs(m, n, h, d, pv);
    bm_layer_sample(&L, n, pv, d, vs, rng, cdf);
    bm_layer_scale(&L, n, vs, vs);
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
    double *cdf = t->cdf ? t->cdf + (size_t)id * Vz : NULL;
    const float *v0 = J->v0;
    float *vs0 = t->vs, *hs0 = t->hs, *d0 = t->d;
    float *vsk = vs0 + (size_t)B * Vz, *hsk = hs0 + (size_t)B * Hz;
    float *chain = o->pcd ? t->chain_h : t->h;    /* (Bn, H) */
    float *dk = o->pcd ? t->chain_d : d0;         /* (Bn) */
    double recon = 0;

    /* positive phase, data rows [b0, b1): vs0 = v0/sigma (B,V),
     * hs0 = p(h|v0) (B,H), h ~ hs0 */
    bm_layer Lv = rbm_visible_layer(m);
    int b0 = par_split(B, T, id), nb = par_split(B, T, id + 1) - b0;
    bm_layer_scale(&Lv, nb, v0 + b0 * Vz, vs0 + b0 * Vz);
    rbm_doc_lengths(m, nb, v0 + b0 * Vz, d0 + b0);
    gibbs_up(m, nb, vs0 + b0 * Vz, d0 + b0, hs0 + b0 * Hz);
    rbm_sample_hidden(m, nb, hs0 + b0 * Hz, t->h + b0 * Hz, rng);

    int c0 = par_split(Bn, T, id), nc = par_split(Bn, T, id + 1) - c0;
    if (o->pcd) {
        /* reconstruction error from the data's own down pass (B,V), which
         * CD gets from its negative phase for free: 2BVH more flops */
        float *pr = t->pv + ((size_t)t->cap + b0) * Vz;
        rbm_visible_probs(m, nb, t->h + b0 * Hz, d0 + b0, pr);
        recon = vm_sqdiff(v0 + b0 * Vz, pr, (size_t)nb * Vz);
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
        gibbs_down(m, nc, hc, dc, pvc, vsc, rng, cdf);
        if (s == 1 && !o->pcd)        /* CD: c0 == b0 */
            recon = vm_sqdiff(v0 + c0 * Vz, pvc, (size_t)nc * Vz);
        gibbs_up(m, nc, vsc, dc, hsc);
        if (s < k || o->pcd)
            rbm_sample_hidden(m, nc, hsc, hc, rng);
    }
    t->recon[id] = recon;

    /* learning log sigma needs wv = [hs0; hsk] W' (B+Bn,V), unscaled */
    if (gauss && o->learn_sigma) {
        gemm_f32(GEMM_NOTRANS, GEMM_TRANS, nb, V, H, 1.0f, hs0 + b0 * Hz, H,
                 m->W, H, 0.0f, t->wv + b0 * Vz, V);
        gemm_f32(GEMM_NOTRANS, GEMM_TRANS, nc, V, H, 1.0f, hsc, H,
                 m->W, H, 0.0f, t->wv + ((size_t)B + c0) * Vz, V);
    }
    /* hs0 /= B, hsk /= -Bn: then the weight gradient is vs' hs */
    vm_scale(hs0 + b0 * Hz, 1.0f / B, (size_t)nb * Hz);
    vm_scale(hsc, -1.0f / Bn, (size_t)nc * Hz);
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
    if (gauss && o->learn_sigma) {
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
    if (m->vis == RBM_GAUSSIAN && o->learn_sigma && !t->wv &&
        !(t->wv = malloc(2 * (size_t)t->cap * m->nv * sizeof(float))))
        return NAN;       /* out of memory: no step rather than one without
                             the sigma update */
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

int rbm_trainer_load(rbm_trainer *t, tz_model *mf)
{
    const rbm *m = t->m;
    int64_t state[3], rs[4];
    int e = tz_model_read_exact(mf, "train.state", TZ_I64, 3, 1, state);
    if (!e && state[0] != t->cap) {
        snprintf(mf->err, sizeof mf->err, "checkpoint: batch size %lld, "
                 "trainer has %d", (long long)state[0], t->cap);
        return TZ_E_MISMATCH;
    }
    if (!e) e = tz_model_read_exact(mf, "train.W_inc", TZ_F32, m->nv, m->nh, t->Winc);
    if (!e) e = tz_model_read_exact(mf, "train.vbias_inc", TZ_F32, m->nv, 1, t->vinc);
    if (!e) e = tz_model_read_exact(mf, "train.hbias_inc", TZ_F32, m->nh, 1, t->hinc);
    if (!e) e = tz_model_read_exact(mf, "train.log_sigma_inc", TZ_F32, m->nv, 1, t->sinc);
    if (!e) e = tz_model_read_exact(mf, "train.activity", TZ_F32, m->nh, 1, t->q);
    if (!e) e = tz_model_read_exact(mf, "train.chain_h", TZ_F32, t->cap, m->nh, t->chain_h);
    if (!e) e = tz_model_read_exact(mf, "train.chain_d", TZ_F32, t->cap, 1, t->chain_d);
    if (!e) e = tz_model_read_exact(mf, "train.rng", TZ_I64, 4, 1, rs);
    if (e)
        return e;
    memcpy(t->rng.s, rs, sizeof rs);
    t->q_init = (int)state[1];
    t->chains_init = (int)state[2];
    return 0;
}
