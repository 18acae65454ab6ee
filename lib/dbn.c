/* dbn.c - deep belief nets (dbn.h): composition from RBMs, model keys,
 * up and down passes, the variational lower bound, and up-down
 * fine-tuning.  Recognition uses rbm.h; every directed conditional and its
 * log-likelihood go through bm_layer.h, so any visible unit type works at
 * the bottom.  Products use gemm_f32 on the whole batch (the BLAS threads).
 */
#include "dbn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ais.h"
#include "gemm.h"
#include "vmath.h"

/* ---- composition ------------------------------------------------------------ */

void dbn_free(dbn *d)
{
    if (!d)
        return;
    for (int k = 0; k < d->n; k++) {
        rbm_free(d->r[k]);
        free(d->G[k]);
    }
    free(d);
}

static const char *chain_error(rbm **r, int n, int force)
{
    static char msg[160];
    for (int k = 0; k < n; k++) {
        if (!force && (r[k]->up_scale != 1 || r[k]->down_scale != 1)) {
            snprintf(msg, sizeof msg, "level %d was pretrained for a DBM "
                     "(--dbm-bottom/--dbm-top); use stack --dbm, or --force",
                     k + 1);
            return msg;
        }
        if (k + 1 < n) {
            if (r[k]->nh != r[k + 1]->nv) {
                snprintf(msg, sizeof msg, "level %d has %d hidden units but "
                         "level %d has %d visible units", k + 1, r[k]->nh,
                         k + 2, r[k + 1]->nv);
                return msg;
            }
            if (r[k]->hid != r[k + 1]->vis) {
                snprintf(msg, sizeof msg, "level %d has %s hidden units but "
                         "level %d has %s visible units", k + 1,
                         rbm_unit_name(r[k]->hid), k + 2,
                         rbm_unit_name(r[k + 1]->vis));
                return msg;
            }
        }
    }
    return NULL;
}

dbn *dbn_from_rbms(rbm **r, int n, int force, char *err, size_t es)
{
    const char *why = n < 2 ? "a DBN needs at least two RBMs"
                    : n >= BM_MAX_LAYERS ? "too many levels (at most 15)"
                    : chain_error(r, n, force);
    dbn *d = why ? NULL : calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, es, "%s", why ? why : "out of memory");
        for (int k = 0; k < n; k++)
            rbm_free(r[k]);
        return NULL;
    }
    d->n = n;
    for (int k = 0; k < n; k++)
        d->r[k] = r[k];
    return d;
}

const char *dbn_layer_name(int l, char *buf, size_t size)
{
    if (l == 0)
        snprintf(buf, size, "v");
    else
        snprintf(buf, size, "h%d", l);
    return buf;
}

int dbn_layer_width(const dbn *d, int l)
{
    return l < d->n ? d->r[l]->nv : d->r[d->n - 1]->nh;
}

bm_layer dbn_layer(const dbn *d, int l)
{
    bm_layer L = l < d->n ? rbm_visible_layer(d->r[l])
                          : rbm_hidden_layer(d->r[d->n - 1]);
    dbn_layer_name(l, L.name, sizeof L.name);
    return L;
}

/* ---- model files ------------------------------------------------------------- */

int dbn_to_model(const dbn *d, tz_model *mf)
{
    char key[64], name[64];
    int e = tz_attr_set_i(&mf->meta, "dbn.levels", d->n);
    for (int k = 0; k < d->n && !e; k++) {
        const rbm *m = d->r[k];
        uint64_t ws[2] = {(uint64_t)m->nv, (uint64_t)m->nh};
        uint64_t vs[1] = {(uint64_t)m->nv}, hs[1] = {(uint64_t)m->nh};
        snprintf(name, sizeof name, "W%d", k + 1);
        e = tz_model_add(mf, name, TZ_F32, 2, ws, m->W);
        snprintf(name, sizeof name, "vbias%d", k + 1);
        if (!e) e = tz_model_add(mf, name, TZ_F32, 1, vs, m->vbias);
        snprintf(name, sizeof name, "hbias%d", k + 1);
        if (!e) e = tz_model_add(mf, name, TZ_F32, 1, hs, m->hbias);
        if (!e && m->vis == RBM_GAUSSIAN) {
            snprintf(name, sizeof name, "sigma%d", k + 1);
            e = tz_model_add(mf, name, TZ_F32, 1, vs, m->sigma);
        }
        if (!e && d->G[k]) {
            snprintf(name, sizeof name, "G%d", k + 1);
            e = tz_model_add(mf, name, TZ_F32, 2, ws, d->G[k]);
        }
        snprintf(key, sizeof key, "level.%d.visible", k + 1);
        if (!e) e = tz_attr_set_s(&mf->meta, key, rbm_unit_name(m->vis));
        snprintf(key, sizeof key, "level.%d.hidden", k + 1);
        if (!e) e = tz_attr_set_s(&mf->meta, key, rbm_unit_name(m->hid));
        snprintf(key, sizeof key, "level.%d.softmax_group", k + 1);
        if (!e) e = tz_attr_set_i(&mf->meta, key,
                                  m->vis == RBM_SOFTMAX ? m->softmax_group : 1);
        snprintf(key, sizeof key, "level.%d.up_scale", k + 1);
        if (!e) e = tz_attr_set_f(&mf->meta, key, m->up_scale);
        snprintf(key, sizeof key, "level.%d.down_scale", k + 1);
        if (!e) e = tz_attr_set_f(&mf->meta, key, m->down_scale);
    }
    return e;
}

/* Level k of a dbn file as an rbm model container rbm_from_model reads. */
static rbm *level_from_model(tz_model *mf, int k, char *err, size_t es)
{
    static const char *const parts[] = {"W", "vbias", "hbias", "sigma"};
    char key[64], name[64];
    tz_model *one = tz_model_new();
    if (!one) {
        snprintf(err, es, "out of memory");
        return NULL;
    }
    int e = tz_attr_set_s(&one->meta, "model.type", "rbm");
    const char *keys[] = {"visible", "hidden", "softmax_group", "up_scale",
                          "down_scale"};
    for (int i = 0; i < 5 && !e; i++) {
        snprintf(key, sizeof key, "level.%d.%s", k + 1, keys[i]);
        const tz_attr *a = tz_attr_get(&mf->meta, key);
        char rk[64];
        snprintf(rk, sizeof rk, "rbm.%s", keys[i]);
        if (!a)
            continue;
        if (i < 2)
            e = tz_attr_set_s(&one->meta, rk, tz_attr_get_s(&mf->meta, key, ""));
        else if (i == 2)
            e = tz_attr_set_i(&one->meta, rk, tz_attr_get_i(&mf->meta, key, 1));
        else
            e = tz_attr_set_f(&one->meta, rk, tz_attr_get_f(&mf->meta, key, 1));
    }
    for (int i = 0; i < 4 && !e; i++) {
        snprintf(name, sizeof name, "%s%d", parts[i], k + 1);
        tz_tensor *t = tz_model_find(mf, name);
        if (!t)
            continue;
        uint64_t shape[TZ_RANK_MAX + 1];
        shape[0] = t->count;
        for (int j = 0; j < t->h.rank; j++)
            shape[j + 1] = t->h.dims[j];
        e = tz_model_add(one, parts[i], t->h.dtype, t->h.rank + 1, shape,
                         t->data);
    }
    rbm *m = NULL;
    if (e)
        snprintf(err, es, "out of memory");
    else
        m = rbm_from_model(one, err, es);
    tz_model_free(one);
    return m;
}

dbn *dbn_from_model(tz_model *mf, char *err, size_t es)
{
    char sub[300], name[64];
    int64_t n = tz_attr_get_i(&mf->meta, "dbn.levels", 0);
    if (n < 2 || n >= BM_MAX_LAYERS) {
        snprintf(err, es, "corrupt dbn model: dbn.levels must be 2 to %d",
                 BM_MAX_LAYERS - 1);
        return NULL;
    }
    rbm *r[BM_MAX_LAYERS] = {0};
    for (int k = 0; k < n; k++) {
        r[k] = level_from_model(mf, k, sub, sizeof sub);
        if (!r[k]) {
            const char *s = strncmp(sub, "corrupt rbm model: ", 19) == 0
                            ? sub + 19 : sub;
            snprintf(err, es, "corrupt dbn model: level %d: %s", k + 1, s);
            for (int j = 0; j < k; j++)
                rbm_free(r[j]);
            return NULL;
        }
    }
    dbn *d = dbn_from_rbms(r, (int)n, 1, sub, sizeof sub);
    if (!d) {
        snprintf(err, es, "corrupt dbn model: %s", sub);
        return NULL;
    }
    for (int k = 0; k + 1 < d->n; k++) {
        snprintf(name, sizeof name, "G%d", k + 1);
        tz_tensor *t = tz_model_find(mf, name);
        if (!t)
            continue;
        size_t ne = (size_t)d->r[k]->nv * d->r[k]->nh;
        if (t->count != (uint64_t)d->r[k]->nv ||
            tz_record_elems(&t->h) != (uint64_t)d->r[k]->nh ||
            !(d->G[k] = malloc(ne * sizeof(float))) ||
            tz_convert(d->G[k], TZ_F32, t->data, t->h.dtype, ne)) {
            snprintf(err, es, "corrupt dbn model: tensor '%s' is not "
                     "%d x %d", name, d->r[k]->nv, d->r[k]->nh);
            dbn_free(d);
            return NULL;
        }
    }
    return d;
}

/* ---- work space ------------------------------------------------------------------ */

struct dbn_work {
    int B;
    float *a[BM_MAX_LAYERS], *p[BM_MAX_LAYERS];   /* (B, n_l) */
    float *s[BM_MAX_LAYERS], *q[BM_MAX_LAYERS];   /* (B, n_l) */
    float *t, *u;        /* (B, max n) */
    float *d;            /* (B) document lengths of layer 0 */
    double *cdf;         /* (max n) */
    double *acc, *neg;   /* (B) */
    double *top;         /* (B) */
};

void dbn_work_free(dbn_work *w)
{
    if (!w)
        return;
    for (int l = 0; l < BM_MAX_LAYERS; l++) {
        free(w->a[l]);
        free(w->p[l]);
        free(w->s[l]);
        free(w->q[l]);
    }
    free(w->t);
    free(w->u);
    free(w->d);
    free(w->cdf);
    free(w->acc);
    free(w->neg);
    free(w->top);
    free(w);
}

dbn_work *dbn_work_new(const dbn *d, int B)
{
    dbn_work *w = calloc(1, sizeof *w);
    if (!w || B < 1) {
        free(w);
        return NULL;
    }
    w->B = B;
    int mx = 1, bad = 0;
    for (int l = 0; l <= d->n; l++) {
        size_t n = (size_t)dbn_layer_width(d, l);
        mx = (int)n > mx ? (int)n : mx;
        w->a[l] = malloc((size_t)B * n * sizeof(float));
        w->p[l] = malloc((size_t)B * n * sizeof(float));
        w->s[l] = malloc((size_t)B * n * sizeof(float));
        w->q[l] = malloc((size_t)B * n * sizeof(float));
        bad |= !w->a[l] || !w->p[l] || !w->s[l] || !w->q[l];
    }
    w->t = malloc((size_t)B * mx * sizeof(float));
    w->u = malloc((size_t)B * mx * sizeof(float));
    w->d = malloc((size_t)B * sizeof(float));
    w->cdf = malloc((size_t)mx * sizeof(double));
    w->acc = malloc((size_t)B * sizeof(double));
    w->neg = malloc((size_t)B * sizeof(double));
    w->top = malloc((size_t)B * sizeof(double));
    if (bad || !w->t || !w->u || !w->d || !w->cdf || !w->acc || !w->neg ||
        !w->top) {
        dbn_work_free(w);
        return NULL;
    }
    return w;
}

/* ---- passes ---------------------------------------------------------------------- */

/* Generative weights of level k. */
static const float *gen_w(const dbn *d, int k)
{
    return d->G[k] ? d->G[k] : d->r[k]->W;
}

void dbn_down_mean(const dbn *d, int k, int B, const float *x,
                   const float *dl, float *out)
{
    const rbm *m = d->r[k];
    const float *W = k == d->n - 1 ? m->W : gen_w(d, k);
    gemm_f32(GEMM_NOTRANS, GEMM_TRANS, B, m->nv, m->nh, m->down_scale, x,
             m->nh, W, m->nh, 0.0f, out, m->nv);
    bm_layer L = rbm_visible_layer(m);
    bm_layer_mean(&L, B, out, dl);
}

int dbn_up(const dbn *d, int B, const float *v, int top, float *const *x,
           rng_t *rng, dbn_work *w)
{
    (void)w;
    const float *below = v;
    for (int l = 1; l <= top && l <= d->n; l++) {
        const rbm *m = d->r[l - 1];
        if (rbm_hidden_probs(m, B, below, x[l]))
            return BM_E_NOMEM;
        if (rng)
            rbm_sample_hidden(m, B, x[l], x[l], rng);
        below = x[l];
    }
    return 0;
}

void dbn_down(const dbn *d, int B, int from, float *const *x, int means,
              rng_t *rng, dbn_work *w)
{
    for (int k = from - 1; k >= 0; k--) {
        const rbm *m = d->r[k];
        bm_layer L = rbm_visible_layer(m);
        float *dl = NULL;
        if (L.unit == BM_REPSOFTMAX) {
            /* the document length stays that of the layer's current rows */
            bm_layer_doclen(&L, B, x[k], w->d);
            dl = w->d;
        }
        dbn_down_mean(d, k, B, x[k + 1], dl, x[k]);
        if (!(means && k == 0))
            bm_layer_sample(&L, B, x[k], dl, x[k], rng, w->cdf);
    }
}

/* acc[b] += log p(x_b | input) of layer L: own + s(x)'input - logpart;
 * tmp (B, n) and neg (B) are scratch. */
static void add_loglik(const bm_layer *L, int B, const float *x,
                       const float *input, const float *d, double *acc,
                       float *tmp, double *neg)
{
    size_t n = (size_t)L->n;
    bm_layer_scale(L, B, x, tmp);
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += (double)tmp[b * n + i] * input[b * n + i];
        acc[b] += s;
    }
    bm_layer_add_own(L, B, x, d, acc);
    for (int b = 0; b < B; b++)
        neg[b] = 0;
    bm_layer_add_logpart(L, B, input, d, neg);
    for (int b = 0; b < B; b++)
        acc[b] -= neg[b];
}

int dbn_lower_bound(const dbn *d, int B, const float *v, int S, rng_t *rng,
                    double *lb, dbn_work *w)
{
    if (B < 1 || B > w->B || S < 1)
        return BM_E_ARG;
    int n = d->n;
    for (int b = 0; b < B; b++)
        lb[b] = 0;
    float *x[BM_MAX_LAYERS];
    x[0] = (float *)v;
    for (int l = 1; l <= n; l++)
        x[l] = w->a[l];
    double *top = w->top;
    for (int s = 0; s < S; s++) {
        for (int b = 0; b < B; b++)
            w->acc[b] = 0;
        /* sample h1..h(n-1) from q, adding the entropy of each q */
        const float *below = v;
        for (int l = 1; l < n; l++) {
            const rbm *m = d->r[l - 1];
            if (rbm_hidden_probs(m, B, below, w->p[l]))
                return BM_E_NOMEM;
            bm_layer H = rbm_hidden_layer(m);
            if (bm_layer_add_entropy(&H, B, w->p[l], w->acc))
                return BM_E_UNSUPPORTED;
            rbm_sample_hidden(m, B, w->p[l], x[l], rng);
            below = x[l];
        }
        /* directed levels: log p(h_k | h_(k+1)) through G */
        for (int k = 0; k + 1 < n; k++) {
            const rbm *m = d->r[k];
            bm_layer L = rbm_visible_layer(m);
            const float *dl = NULL;
            if (L.unit == BM_REPSOFTMAX) {
                bm_layer_doclen(&L, B, x[k], w->d);
                dl = w->d;
            }
            gemm_f32(GEMM_NOTRANS, GEMM_TRANS, B, m->nv, m->nh, 1.0f,
                     x[k + 1], m->nh, gen_w(d, k), m->nh, 0.0f, w->t, m->nv);
            add_loglik(&L, B, x[k], w->t, dl, w->acc, w->u, w->neg);
        }
        /* the top RBM with its hidden layer summed out */
        if (ais_rbm_log_pstar(d->r[n - 1], B, x[n - 1], top))
            return BM_E_NOMEM;
        for (int b = 0; b < B; b++)
            lb[b] += (w->acc[b] + top[b]) / S;
    }
    return 0;
}

/* ---- up-down fine-tuning ---------------------------------------------------------- */

/* W (V,H) += a * X' Y for X (B,V), Y (B,H). */
static void outer_add(int B, int V, int H, float a, const float *X,
                      const float *Y, float *W)
{
    gemm_f32(GEMM_TRANS, GEMM_NOTRANS, V, H, B, a, X, V, Y, H, 1.0f, W, H);
}

int dbn_tune_step(dbn *d, int B, const float *v, const dbn_tune_opts *o,
                  rng_t *rng, dbn_work *w, double *recon)
{
    int n = d->n;
    if (B < 1 || B > w->B)
        return BM_E_ARG;
    for (int k = 0; k + 1 < n; k++)
        if (!d->G[k]) {
            size_t ne = (size_t)d->r[k]->nv * d->r[k]->nh;
            d->G[k] = malloc(ne * sizeof(float));
            if (!d->G[k])
                return BM_E_NOMEM;
            memcpy(d->G[k], d->r[k]->W, ne * sizeof(float));
        }
    float lr = o->lr / B;
    bm_layer V0 = rbm_visible_layer(d->r[0]);
    float *dl = NULL;
    if (V0.unit == BM_REPSOFTMAX) {
        bm_layer_doclen(&V0, B, v, w->d);
        dl = w->d;
    }
    /* wake: a[l] samples up to the top RBM's visible layer n-1 */
    const float *below = v;
    for (int l = 1; l < n; l++) {
        if (rbm_hidden_probs(d->r[l - 1], B, below, w->p[l]))
            return BM_E_NOMEM;
        rbm_sample_hidden(d->r[l - 1], B, w->p[l], w->a[l], rng);
        below = w->a[l];
    }
    const float *wake_top = n - 1 == 0 ? v : w->a[n - 1];
    /* top RBM: CD-k from the wake sample; s[n-1], s[n] the negative
     * states, p[n] the positive hidden probabilities */
    rbm *top = d->r[n - 1];
    int Vt = top->nv, Ht = top->nh;
    if (rbm_hidden_probs(top, B, wake_top, w->p[n]))
        return BM_E_NOMEM;
    rbm_sample_hidden(top, B, w->p[n], w->s[n], rng);
    for (int s = 0; s < (o->k < 1 ? 1 : o->k); s++) {
        rbm_visible_probs(top, B, w->s[n], NULL, w->q[n - 1]);
        if (rbm_sample_visible(top, B, w->q[n - 1], NULL, w->s[n - 1], rng) ||
            rbm_hidden_probs(top, B, w->s[n - 1], w->q[n]))
            return BM_E_NOMEM;
        rbm_sample_hidden(top, B, w->q[n], w->s[n], rng);
    }
    /* generative predictions of the wake states, before any update */
    for (int k = 0; k + 1 < n; k++) {
        const float *x = k == 0 ? v : w->a[k];
        dbn_down_mean(d, k, B, w->a[k + 1], k == 0 ? dl : NULL, w->q[k]);
        if (k == 0 && recon) {
            double e = 0;
            for (size_t i = 0; i < (size_t)B * V0.n; i++)
                e += ((double)x[i] - w->q[0][i]) * ((double)x[i] - w->q[0][i]);
            *recon = e;
        }
    }
    /* sleep: generate down from the negative top-visible sample; p[k] the
     * recognition predictions of the sleep states */
    for (int k = n - 2; k >= 0; k--) {
        dbn_down_mean(d, k, B, w->s[k + 1], k == 0 ? dl : NULL, w->s[k]);
        if (k > 0) {
            bm_layer L = rbm_visible_layer(d->r[k]);
            bm_layer_sample(&L, B, w->s[k], NULL, w->s[k], rng, w->cdf);
        }
    }
    for (int k = 0; k + 1 < n; k++)
        if (rbm_hidden_probs(d->r[k], B, w->s[k], w->p[k + 1]))
            return BM_E_NOMEM;

    /* updates: generative levels from the wake phase */
    for (int k = 0; k + 1 < n; k++) {
        rbm *m = d->r[k];
        bm_layer L = rbm_visible_layer(m);
        const float *x = k == 0 ? v : w->a[k];
        bm_layer_residual(&L, B, x, w->q[k], w->t, w->u);
        outer_add(B, m->nv, m->nh, lr, w->t, w->a[k + 1], d->G[k]);
        vm_colsum_add(B, m->nv, lr, w->u, NULL, m->vbias);
    }
    /* the top RBM */
    {
        const float *d0 = NULL;
        bm_layer TV = rbm_visible_layer(top);
        if (TV.unit == BM_REPSOFTMAX) {
            bm_layer_doclen(&TV, B, wake_top, w->d);
            d0 = w->d;
        }
        bm_layer_scale(&TV, B, wake_top, w->t);
        outer_add(B, Vt, Ht, lr, w->t, w->p[n], top->W);
        bm_layer_scale(&TV, B, w->s[n - 1], w->u);
        outer_add(B, Vt, Ht, -lr, w->u, w->q[n], top->W);
        vm_colsum_add(B, Ht, lr, w->p[n], d0, top->hbias);
        vm_colsum_add(B, Ht, -lr, w->q[n], d0, top->hbias);
        bm_layer_residual(&TV, B, wake_top, w->s[n - 1], w->t, w->u);
        vm_colsum_add(B, Vt, lr, w->u, NULL, top->vbias);
    }
    /* recognition levels from the sleep phase */
    for (int k = 0; k + 1 < n; k++) {
        rbm *m = d->r[k];
        bm_layer L = rbm_visible_layer(m);
        bm_layer_scale(&L, B, w->s[k], w->t);
        size_t nh = (size_t)m->nh;
        for (size_t i = 0; i < (size_t)B * nh; i++)
            w->u[i] = w->s[k + 1][i] - w->p[k + 1][i];
        outer_add(B, m->nv, m->nh, lr, w->t, w->u, m->W);
        vm_colsum_add(B, m->nh, lr, w->u, k == 0 ? dl : NULL, m->hbias);
    }
    return 0;
}
