/* mdbn.c - multimodal deep belief nets (mdbn.h). */
#include "mdbn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mdbn_free(mdbn *m)
{
    if (!m)
        return;
    for (int l = 0; l < BM_MAX_LAYERS; l++)
        free(m->up[l]);
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
        int child = -1;
        for (int k = 0; k < net->nl; k++)
            if (m->parent[k] == l)
                child = k;
        if (child < 0)
            return -1;
        l = child;
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
            children += m->parent[k] == l;
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
    bm_input(net, st, l, r0, B, NULL, 1u << from, buf);
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
            int child = -1;
            for (int k = 0; k < nl; k++)
                if (m->parent[k] == l)
                    child = k;
            directed(m, st, l, child, m->up[l], r0, B, sample, rng, w);
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
