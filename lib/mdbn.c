/* mdbn.c - multimodal deep belief nets (mdbn.h). */
#include "mdbn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "vmath.h"

void mdbn_free(mdbn *m)
{
    if (!m)
        return;
    for (int l = 0; l < BM_MAX_LAYERS; l++) {
        free(m->up[l]);
        free(m->R[l]);
    }
    bm_free(m->net);
    free(m);
}

int mdbn_in_top(const mdbn *m, int l)
{
    return m->depth[l] <= 1;
}

int mdbn_modality_of(const mdbn *m, int l)
{
    if (l == m->joint)
        return -1;
    const bm_net *net = m->net;
    /* down the chain away from J until the visible layer */
    for (int guard = 0; guard < net->nl && !net->vis[l]; guard++) {
        if (m->child[l] < 0)
            return -1;
        l = m->child[l];
    }
    return net->vis[l] ? l : -1;
}

mdbn *mdbn_new(bm_net *net, int joint, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    mdbn *m = calloc(1, sizeof *m);
    if (!m) {
        *why = "out of memory";
        bm_free(net);
        return NULL;
    }
    m->net = net;
    m->joint = joint;
    if (joint < 0 || joint >= net->nl || net->vis[joint]) {
        *why = "the joint layer must be a hidden layer of the network";
        goto fail;
    }
    for (int l = 0; l < net->nl; l++) {
        m->parent[l] = -1;
        m->child[l] = -1;
        m->depth[l] = -1;
    }
    m->depth[joint] = 0;
    for (int pass = 0; pass < net->nl; pass++)
        for (int e = 0; e < net->ne; e++) {
            int a = net->E[e].a, b = net->E[e].b;
            if (m->depth[a] >= 0 && m->depth[b] < 0) {
                m->depth[b] = m->depth[a] + 1;
                m->parent[b] = a;
            } else if (m->depth[b] >= 0 && m->depth[a] < 0) {
                m->depth[a] = m->depth[b] + 1;
                m->parent[a] = b;
            }
        }
    for (int l = 0; l < net->nl; l++) {
        if (l == joint)
            continue;
        int children = 0;
        for (int k = 0; k < net->nl; k++)
            if (m->parent[k] == l) {
                children++;
                m->child[l] = k;
            }
        if (net->vis[l] ? children != 0 : children != 1) {
            *why = "below the joint layer every pathway must be a chain "
                   "ending in one visible layer";
            goto fail;
        }
        if (!net->vis[l]) {
            m->up[l] = malloc((size_t)net->L[l].n * sizeof(float));
            if (!m->up[l]) {
                *why = "out of memory";
                goto fail;
            }
            memcpy(m->up[l], net->L[l].bias, (size_t)net->L[l].n * sizeof(float));
        }
    }
    return m;
fail:
    mdbn_free(m);
    return NULL;
}

int mdbn_to_model(const mdbn *m, tz_model *mf)
{
    int e = bm_to_model(m->net, mf);
    if (!e)
        e = tz_attr_set_s(&mf->meta, "mdbn.joint", m->net->L[m->joint].name);
    char name[64];
    for (int l = 0; l < m->net->nl && !e; l++) {
        if (!m->up[l])
            continue;
        uint64_t sh[1] = {(uint64_t)m->net->L[l].n};
        snprintf(name, sizeof name, "%s.up_bias", m->net->L[l].name);
        e = tz_model_add(mf, name, TZ_F32, 1, sh, m->up[l]);
    }
    for (int k = 0; k < m->net->ne && !e; k++) {
        if (!m->R[k])
            continue;
        const bm_edge *E = &m->net->E[k];
        uint64_t sh[2] = {(uint64_t)m->net->L[E->a].n, (uint64_t)m->net->L[E->b].n};
        snprintf(name, sizeof name, "R%d", k + 1);
        e = tz_model_add(mf, name, TZ_F32, 2, sh, m->R[k]);
    }
    return e;
}

mdbn *mdbn_from_model(tz_model *mf, char *err, size_t es)
{
    char dummy[8], name[64];
    if (!err) {
        err = dummy;
        es = sizeof dummy;
    }
    bm_net *net = bm_from_model(mf, err, es);
    if (!net)
        return NULL;
    const char *jn = tz_attr_get_s(&mf->meta, "mdbn.joint", "");
    int joint = bm_find_layer(net, jn);
    if (joint < 0) {
        snprintf(err, es, "corrupt model: mdbn.joint names no layer");
        bm_free(net);
        return NULL;
    }
    const char *why;
    mdbn *m = mdbn_new(net, joint, &why);
    if (!m) {
        snprintf(err, es, "corrupt model: %s", why);
        return NULL;
    }
    for (int l = 0; l < m->net->nl; l++) {
        if (!m->up[l])
            continue;
        const bm_layer *L = &m->net->L[l];
        snprintf(name, sizeof name, "%s.up_bias", L->name);
        if (tz_model_read_exact(mf, name, TZ_F32, (uint64_t)L->n, 1, m->up[l])) {
            snprintf(err, es, "corrupt model: %s", tz_model_error(mf));
            mdbn_free(m);
            return NULL;
        }
        for (int i = 0; i < L->n; i++)
            if (!isfinite(m->up[l][i])) {
                snprintf(err, es, "corrupt model: tensor '%s' holds NaN or "
                         "infinite values", name);
                mdbn_free(m);
                return NULL;
            }
    }
    for (int k = 0; k < m->net->ne; k++) {
        snprintf(name, sizeof name, "R%d", k + 1);
        if (!tz_model_find(mf, name))
            continue;
        const bm_edge *E = &m->net->E[k];
        if (E->a == joint || E->b == joint) {
            snprintf(err, es, "corrupt model: %s: the top RBM's edges have "
                     "no recognition weights", name);
            mdbn_free(m);
            return NULL;
        }
        size_t n = (size_t)m->net->L[E->a].n * m->net->L[E->b].n;
        m->R[k] = malloc(n * sizeof(float));
        if (!m->R[k] || tz_model_read_exact(mf, name, TZ_F32,
                                            (uint64_t)m->net->L[E->a].n,
                                            (uint64_t)m->net->L[E->b].n,
                                            m->R[k])) {
            snprintf(err, es, m->R[k] ? "corrupt model: %s" : "%s",
                     m->R[k] ? tz_model_error(mf) : "out of memory");
            mdbn_free(m);
            return NULL;
        }
        for (size_t i = 0; i < n; i++)
            if (!isfinite(m->R[k][i])) {
                snprintf(err, es, "corrupt model: tensor '%s' holds NaN or "
                         "infinite values", name);
                mdbn_free(m);
                return NULL;
            }
    }
    return m;
}

/* Layer l of rows [r0, r0+B) from its neighbour `from` alone, with bias
 * `bias` (the layer's own when NULL): its mean, or a draw. */
static void directed(const mdbn *m, bm_state *st, int l, int from,
                     const float *bias, int r0, int B, int sample,
                     rng_t *rng, bm_scratch *w)
{
    const bm_net *net = m->net;
    bm_layer L = net->L[l];
    if (bias)
        L.bias = (float *)bias;
    float *x = st->x[l] + (size_t)r0 * L.n;
    float *buf = bm_scratch_buf(w);
    const float *d = bm_bias_mult(net, st, l, r0);
    int e = bm_find_edge(net, l, from);
    if (bias && m->R[e]) {      /* the up-pass of an untied pathway */
        const bm_edge *E = &net->E[e];
        int nf = net->L[from].n;
        const float *sf = st->s[from] + (size_t)r0 * nf;
        if (l == E->b)
            gemm_f32(GEMM_NOTRANS, GEMM_NOTRANS, B, L.n, nf, 1.0f, sf, nf,
                     m->R[e], L.n, 0.0f, buf, L.n);
        else
            gemm_f32(GEMM_NOTRANS, GEMM_TRANS, B, L.n, nf, 1.0f, sf, nf,
                     m->R[e], nf, 0.0f, buf, L.n);
    } else {
        bm_input(net, st, l, r0, B, NULL, 1u << from, buf);
    }
    bm_layer_mean(&L, B, buf, d);
    if (sample) {
        bm_layer_sample(&L, B, buf, d, x, rng, bm_scratch_cdf(w));
    } else {
        memcpy(x, buf, (size_t)B * L.n * sizeof *x);
    }
    if (L.unit == BM_REPSOFTMAX) {
        /* keep the document length the layer was given */
        if (st->s[l] != st->x[l])
            bm_layer_scale(&L, B, x, st->s[l] + (size_t)r0 * L.n);
    } else {
        bm_state_sync(net, st, l, r0, B);
    }
}

/* Which layers belong to observed pathways. */
static void observed(const mdbn *m, const unsigned char *clamp,
                     unsigned char *seen)
{
    for (int l = 0; l < m->net->nl; l++) {
        int v = mdbn_modality_of(m, l);
        seen[l] = v >= 0 && clamp && clamp[v];
    }
}

static int max_depth(const mdbn *m)
{
    int d = 0;
    for (int l = 0; l < m->net->nl; l++)
        if (m->depth[l] > d)
            d = m->depth[l];
    return d;
}

void mdbn_up(const mdbn *m, bm_state *st, int r0, int B,
             const unsigned char *clamp, int sample, rng_t *rng,
             bm_scratch *w)
{
    const bm_net *net = m->net;
    int nl = net->nl;
    unsigned char seen[BM_MAX_LAYERS];
    observed(m, clamp, seen);
    /* unobserved pathways start at zero (no input from below) */
    for (int l = 0; l < nl; l++)
        if (l != m->joint && !seen[l])
            bm_state_absent(net, st, l, r0, B);
    /* up the observed pathways, deepest first */
    for (int d = max_depth(m) - 1; d >= 1; d--)
        for (int l = 0; l < nl; l++) {
            if (m->depth[l] != d || !seen[l] || net->vis[l])
                continue;
            directed(m, st, l, m->child[l], m->up[l], r0, B, sample, rng, w);
        }
}

void mdbn_top_clamp(const mdbn *m, const unsigned char *clamp,
                    unsigned char *top_clamp)
{
    unsigned char seen[BM_MAX_LAYERS];
    observed(m, clamp, seen);
    for (int l = 0; l < m->net->nl; l++)
        top_clamp[l] = !(l == m->joint || (m->depth[l] == 1 && !seen[l]));
}

void mdbn_down(const mdbn *m, bm_state *st, int r0, int B,
               const unsigned char *clamp, int sample, rng_t *rng,
               bm_scratch *w)
{
    unsigned char seen[BM_MAX_LAYERS];
    observed(m, clamp, seen);
    int maxd = max_depth(m);
    for (int d = 2; d <= maxd; d++)
        for (int l = 0; l < m->net->nl; l++)
            if (m->depth[l] == d && !seen[l])
                directed(m, st, l, m->parent[l], NULL, r0, B, sample, rng, w);
}

void mdbn_infer(const mdbn *m, bm_state *st, int r0, int B,
                const unsigned char *clamp, int iters, float tol, int sample,
                rng_t *rng, bm_scratch *w)
{
    unsigned char top_clamp[BM_MAX_LAYERS];
    mdbn_up(m, st, r0, B, clamp, sample, rng, w);
    mdbn_top_clamp(m, clamp, top_clamp);
    bm_bottom_up(m->net, st, r0, B, top_clamp, w);
    if (sample)
        for (int s = 0; s < iters; s++)
            bm_gibbs_sweep(m->net, st, r0, B, top_clamp, rng, w);
    else
        bm_meanfield(m->net, st, r0, B, top_clamp, iters, tol, 0, w);
    mdbn_down(m, st, r0, B, clamp, sample, rng, w);
}

/* ---- up-down fine-tuning ---------------------------------------------------- */

struct mdbn_work {
    int B;
    bm_state wake, sleep;
    bm_scratch *w;
    float *pred[BM_MAX_LAYERS];   /* (B, n_l) predicted means */
    float *t, *u;                 /* (B, widest layer) */
    float *pos, *neg;             /* (B, n_J) the joint layer's means */
};

void mdbn_work_free(mdbn_work *w)
{
    if (!w)
        return;
    bm_state_free(&w->wake);
    bm_state_free(&w->sleep);
    bm_scratch_free(w->w);
    for (int l = 0; l < BM_MAX_LAYERS; l++)
        free(w->pred[l]);
    free(w->t);
    free(w->u);
    free(w->pos);
    free(w->neg);
    free(w);
}

mdbn_work *mdbn_work_new(const mdbn *m, int B)
{
    const bm_net *net = m->net;
    mdbn_work *w = calloc(1, sizeof *w);
    if (!w || B < 1)
        goto fail;
    w->B = B;
    size_t mx = 1;
    for (int l = 0; l < net->nl; l++)
        mx = (size_t)net->L[l].n > mx ? (size_t)net->L[l].n : mx;
    if (bm_state_alloc(net, &w->wake, B) || bm_state_alloc(net, &w->sleep, B) ||
        !(w->w = bm_scratch_new(net, B)))
        goto fail;
    for (int l = 0; l < net->nl; l++)
        if (!(w->pred[l] = malloc((size_t)B * net->L[l].n * sizeof(float))))
            goto fail;
    size_t nj = (size_t)net->L[m->joint].n;
    w->t = malloc((size_t)B * mx * sizeof(float));
    w->u = malloc((size_t)B * mx * sizeof(float));
    w->pos = malloc((size_t)B * nj * sizeof(float));
    w->neg = malloc((size_t)B * nj * sizeof(float));
    if (!w->t || !w->u || !w->pos || !w->neg)
        goto fail;
    return w;
fail:
    mdbn_work_free(w);
    return NULL;
}

/* W (n_a, n_b) of edge e += a * X_a' X_b, X_l (B, n_l) rows of its ends. */
static void edge_outer(const bm_net *net, int e, int B, float a,
                       const float *xa, const float *xb, float *W)
{
    const bm_edge *E = &net->E[e];
    int na = net->L[E->a].n, nb = net->L[E->b].n;
    gemm_f32(GEMM_TRANS, GEMM_NOTRANS, na, nb, B, a, xa, na, xb, nb, 1.0f,
             W, nb);
}

/* The same with the two ends given as (layer l: xl, layer o: xo). */
static void pair_outer(const bm_net *net, int e, int l, int B, float a,
                       const float *xl, const float *xo, float *W)
{
    if (net->E[e].a == l)
        edge_outer(net, e, B, a, xl, xo, W);
    else
        edge_outer(net, e, B, a, xo, xl, W);
}

/* out (B, n_J) <- the joint layer's means given the tops in st. */
static void joint_mean(const mdbn *m, const bm_state *st, int B, float *out)
{
    const bm_net *net = m->net;
    const bm_layer *L = &net->L[m->joint];
    bm_input(net, st, m->joint, 0, B, NULL, ~0u, out);
    bm_layer_mean(L, B, out, bm_bias_mult(net, st, m->joint, 0));
}

int mdbn_tune_step(mdbn *m, int B, const float *const *data,
                   const mdbn_tune_opts *o, rng_t *rng, mdbn_work *wk,
                   double *recon)
{
    bm_net *net = m->net;
    int nl = net->nl, J = m->joint, maxd = max_depth(m);
    if (B < 1 || B > wk->B)
        return BM_E_ARG;
    for (int l = 0; l < nl; l++)
        if (net->vis[l] && !data[l])
            return BM_E_ARG;
    /* untie: the pathways' W becomes generative, R recognition */
    for (int e = 0; e < net->ne; e++) {
        const bm_edge *E = &net->E[e];
        if (m->R[e] || E->a == J || E->b == J)
            continue;
        size_t n = (size_t)net->L[E->a].n * net->L[E->b].n;
        if (!(m->R[e] = malloc(n * sizeof(float))))
            return BM_E_NOMEM;
        memcpy(m->R[e], E->W, n * sizeof(float));
    }
    bm_state *wa = &wk->wake, *sl = &wk->sleep;
    bm_scratch *w = wk->w;
    unsigned char all[BM_MAX_LAYERS] = {0};
    for (int l = 0; l < nl; l++) {
        all[l] = net->vis[l];
        if (net->vis[l])
            bm_state_set(net, wa, l, B, data[l]);
    }
    /* wake: recognition draws up every pathway */
    mdbn_up(m, wa, 0, B, all, 1, rng, w);
    /* the top RBM: the joint layer's means given the wake tops, then CD-k
     * from there (tops drawn from the joint layer alone) */
    joint_mean(m, wa, B, wk->pos);
    for (int l = 0; l < nl; l++)
        if (m->depth[l] == 1) {
            size_t n = (size_t)B * net->L[l].n;
            memcpy(sl->x[l], wa->x[l], n * sizeof(float));
            bm_state_sync(net, sl, l, 0, B);
            if (sl->D[l])
                memcpy(sl->D[l], wa->D[l], (size_t)B * sizeof(float));
        }
    const bm_layer *LJ = &net->L[J];
    bm_layer_sample(LJ, B, wk->pos, NULL, sl->x[J], rng, bm_scratch_cdf(w));
    for (int s = 0; s < (o->k < 1 ? 1 : o->k); s++) {
        for (int l = 0; l < nl; l++)
            if (m->depth[l] == 1)
                directed(m, sl, l, J, NULL, 0, B, 1, rng, w);
        joint_mean(m, sl, B, wk->neg);
        bm_layer_sample(LJ, B, wk->neg, NULL, sl->x[J], rng, bm_scratch_cdf(w));
    }
    /* generative predictions of the wake states, before any update */
    double err = 0;
    for (int d = 2; d <= maxd; d++)
        for (int l = 0; l < nl; l++) {
            if (m->depth[l] != d)
                continue;
            const bm_layer *L = &net->L[l];
            float *buf = bm_scratch_buf(w);
            bm_input(net, wa, l, 0, B, NULL, 1u << m->parent[l], buf);
            bm_layer_mean(L, B, buf, bm_bias_mult(net, wa, l, 0));
            memcpy(wk->pred[l], buf, (size_t)B * L->n * sizeof(float));
            if (net->vis[l])
                err += vm_sqdiff(wa->x[l], wk->pred[l], (size_t)B * L->n);
        }
    /* sleep: draws down every pathway from the negative tops (visible
     * layers their means), then the recognition predictions */
    for (int d = 2; d <= maxd; d++)
        for (int l = 0; l < nl; l++)
            if (m->depth[l] == d) {
                if (net->L[l].unit == BM_REPSOFTMAX)
                    memcpy(sl->D[l], wa->D[l], (size_t)B * sizeof(float));
                directed(m, sl, l, m->parent[l], NULL, 0, B, !net->vis[l],
                         rng, w);
            }
    for (int l = 0; l < nl; l++) {
        if (!m->up[l])
            continue;
        int child = m->child[l];
        const bm_layer *L = &net->L[l];
        float *buf = bm_scratch_buf(w);
        int e = bm_find_edge(net, l, child);
        const bm_edge *E = &net->E[e];
        int nc = net->L[child].n;
        if (l == E->b)
            gemm_f32(GEMM_NOTRANS, GEMM_NOTRANS, B, L->n, nc, 1.0f, sl->s[child],
                     nc, m->R[e], L->n, 0.0f, buf, L->n);
        else
            gemm_f32(GEMM_NOTRANS, GEMM_TRANS, B, L->n, nc, 1.0f, sl->s[child],
                     nc, m->R[e], nc, 0.0f, buf, L->n);
        bm_layer U = *L;
        U.bias = m->up[l];
        bm_layer_mean(&U, B, buf, bm_bias_mult(net, sl, l, 0));
        memcpy(wk->pred[l], buf, (size_t)B * L->n * sizeof(float));
    }

    float lr = o->lr / B;
    /* generative: each pathway layer below a top from the one above */
    for (int l = 0; l < nl; l++) {
        if (m->depth[l] < 2)
            continue;
        bm_layer *L = &net->L[l];
        int p = m->parent[l], e = bm_find_edge(net, l, p);
        bm_layer_residual(L, B, wa->x[l], wk->pred[l], wk->t, wk->u);
        pair_outer(net, e, l, B, lr, wk->t, wa->s[p], net->E[e].W);
        vm_colsum_add(B, L->n, lr, wk->u, L->unit == BM_REPSOFTMAX ? NULL
                      : bm_bias_mult(net, wa, l, 0), L->bias);
    }
    /* the top RBM: data (wake) minus model (negative) statistics */
    for (int l = 0; l < nl; l++) {
        if (m->depth[l] != 1)
            continue;
        bm_layer *L = &net->L[l];
        int e = bm_find_edge(net, l, J);
        pair_outer(net, e, l, B, lr, wa->s[l], wk->pos, net->E[e].W);
        pair_outer(net, e, l, B, -lr, sl->s[l], wk->neg, net->E[e].W);
        bm_layer_residual(L, B, wa->x[l], sl->x[l], wk->t, wk->u);
        vm_colsum_add(B, L->n, lr, wk->u, L->unit == BM_REPSOFTMAX ? NULL
                      : bm_bias_mult(net, wa, l, 0), L->bias);
    }
    vm_colsum_add(B, LJ->n, lr, wk->pos, bm_bias_mult(net, wa, J, 0), LJ->bias);
    vm_colsum_add(B, LJ->n, -lr, wk->neg, bm_bias_mult(net, sl, J, 0), LJ->bias);
    /* recognition: each pathway hidden layer from the one below, on the
     * sleep draws */
    for (int l = 0; l < nl; l++) {
        if (!m->up[l])
            continue;
        int child = m->child[l];
        const bm_layer *L = &net->L[l];
        size_t n = (size_t)B * L->n;
        for (size_t i = 0; i < n; i++)
            wk->t[i] = sl->x[l][i] - wk->pred[l][i];
        int e = bm_find_edge(net, l, child);
        pair_outer(net, e, l, B, lr, wk->t, sl->s[child], m->R[e]);
        vm_colsum_add(B, L->n, lr, wk->t, bm_bias_mult(net, sl, l, 0), m->up[l]);
    }
    if (recon)
        *recon = err;
    return 0;
}
