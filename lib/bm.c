/* bm.c - Boltzmann networks over a tree of layers (bm.h): construction,
 * model keys, Gibbs sweeps, mean-field, log p* with a colour class summed
 * out, exact log Z, and the DBM training step.
 *
 * Every product goes through gemm_f32.  Inputs are accumulated edge by
 * edge into one (B, n) buffer: for layer l and edge e = (a, b),
 *     l == b:  x += up[e]   * s_a W_e      (B,n_a) x (n_a,n_b)
 *     l == a:  x += down[e] * s_b W_e'     (B,n_b) x (n_b,n_a)
 * then bm_layer_mean turns the input into the conditional mean.
 *
 * The training step (Salakhutdinov & Hinton 2009) on one state of
 * B + C rows: rows [0, B) are the data, whose hidden layers get mean-field
 * posteriors; rows [B, B + C) are the persistent chains, advanced by
 * `sweeps` Gibbs sweeps.  With G_l = s_l scaled by 1/B on data rows and by
 * -1/C on chain rows, the gradient of edge e is one product s_a' G_b over
 * all B + C rows, as in rbm.c.  Threads split the rows of both parts, then
 * (after one barrier) the rows of every W and the units of every bias.
 */
#include "bm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "par.h"
#include "vmath.h"

/* ---- construction ------------------------------------------------------------ */

static void free_arrays(bm_net *net)
{
    for (int l = 0; l < net->nl; l++) {
        free(net->L[l].bias);
        free(net->L[l].sigma);
        net->L[l].bias = net->L[l].sigma = NULL;
    }
    for (int e = 0; e < net->ne; e++) {
        free(net->E[e].W);
        net->E[e].W = NULL;
    }
}

void bm_free(bm_net *net)
{
    if (!net)
        return;
    if (net->owns)
        free_arrays(net);
    free(net);
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= BM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* Colours by depth from layer 0 and the replicated-softmax sources; 0 or a
 * message when the edges are not a tree over all layers. */
static const char *derive(bm_net *net)
{
    int depth[BM_MAX_LAYERS];
    for (int l = 0; l < net->nl; l++) {
        depth[l] = -1;
        net->dsrc[l] = -1;
    }
    depth[0] = 0;
    for (int pass = 0; pass < net->nl; pass++)
        for (int e = 0; e < net->ne; e++) {
            int a = net->E[e].a, b = net->E[e].b;
            if (depth[a] >= 0 && depth[b] < 0)
                depth[b] = depth[a] + 1;
            else if (depth[b] >= 0 && depth[a] < 0)
                depth[a] = depth[b] + 1;
        }
    for (int l = 0; l < net->nl; l++) {
        if (depth[l] < 0)
            return "the edges do not connect every layer";
        net->color[l] = depth[l] & 1;
    }
    for (int e = 0; e < net->ne; e++) {
        int a = net->E[e].a, b = net->E[e].b;
        if (depth[a] >= depth[b]) {      /* orient a nearer layer 0 */
            net->E[e].a = b;
            net->E[e].b = a;
            a = net->E[e].a;
            b = net->E[e].b;
        }
        for (int k = 0; k < 2; k++) {
            int r = k ? b : a, o = k ? a : b;
            if (net->L[r].unit == BM_REPSOFTMAX) {
                if (net->dsrc[o] >= 0 || net->L[o].unit == BM_REPSOFTMAX)
                    return "a layer may neighbour one replicated-softmax layer";
                net->dsrc[o] = r;
            }
        }
    }
    return NULL;
}

bm_net *bm_new(int nl, const bm_layer_spec *spec, const int (*edges)[2],
               const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (nl < 2 || nl > BM_MAX_LAYERS) {
        *why = "a network has 2 to 16 layers";
        return NULL;
    }
    bm_net *net = calloc(1, sizeof *net);
    if (!net) {
        *why = "out of memory";
        return NULL;
    }
    net->nl = nl;
    net->ne = nl - 1;
    net->owns = 1;
    for (int l = 0; l < nl; l++) {
        bm_layer *L = &net->L[l];
        if (!spec[l].name || !name_ok(spec[l].name)) {
            *why = "layer names are 1-31 characters of a-z, 0-9 and _";
            goto fail;
        }
        for (int k = 0; k < l; k++)
            if (strcmp(net->L[k].name, spec[l].name) == 0) {
                *why = "two layers have the same name";
                goto fail;
            }
        snprintf(L->name, sizeof L->name, "%s", spec[l].name);
        net->vis[l] = spec[l].visible != 0;
        L->unit = spec[l].unit;
        L->n = spec[l].n;
        L->group = spec[l].group > 0 ? spec[l].group
                   : L->unit == BM_REPSOFTMAX ? L->n
                   : L->unit == BM_SOFTMAX ? L->n : 1;
        if (L->n < 1 || L->n > (1 << 28)) {
            *why = "a layer has 1 to 2^28 units";
            goto fail;
        }
        L->bias = calloc((size_t)L->n, sizeof *L->bias);
        if (!L->bias) {
            *why = "out of memory";
            goto fail;
        }
        if (L->unit == BM_GAUSSIAN) {
            L->sigma = malloc((size_t)L->n * sizeof *L->sigma);
            if (!L->sigma) {
                *why = "out of memory";
                goto fail;
            }
            for (int i = 0; i < L->n; i++)
                L->sigma[i] = 1;
        }
        if ((*why = bm_layer_validate(L)))
            goto fail;
    }
    for (int e = 0; e < net->ne; e++) {
        int a = edges[e][0], b = edges[e][1];
        if (a < 0 || a >= nl || b < 0 || b >= nl || a == b) {
            *why = "an edge names a layer that does not exist";
            goto fail;
        }
        for (int k = 0; k < e; k++)
            if ((net->E[k].a == a && net->E[k].b == b) ||
                (net->E[k].a == b && net->E[k].b == a)) {
                *why = "two edges join the same layers";
                goto fail;
            }
        net->E[e].a = a;
        net->E[e].b = b;
        size_t n = (size_t)net->L[a].n * (size_t)net->L[b].n;
        net->E[e].W = calloc(n, sizeof(float));
        if (!net->E[e].W) {
            *why = "out of memory";
            goto fail;
        }
    }
    if ((*why = derive(net)))
        goto fail;
    int any = 0;
    for (int l = 0; l < nl; l++)
        any |= net->vis[l];
    if (!any)
        net->vis[0] = 1;
    return net;
fail:
    bm_free(net);
    return NULL;
}

bm_net *bm_clone(const bm_net *src)
{
    bm_layer_spec spec[BM_MAX_LAYERS];
    int edges[BM_MAX_LAYERS][2];
    for (int l = 0; l < src->nl; l++)
        spec[l] = (bm_layer_spec){src->L[l].name, src->L[l].unit,
                                  src->L[l].n, src->L[l].group, src->vis[l]};
    for (int e = 0; e < src->ne; e++) {
        edges[e][0] = src->E[e].a;
        edges[e][1] = src->E[e].b;
    }
    bm_net *net = bm_new(src->nl, spec, (const int (*)[2])edges, NULL);
    if (!net)
        return NULL;
    for (int l = 0; l < src->nl; l++) {
        memcpy(net->L[l].bias, src->L[l].bias,
               (size_t)src->L[l].n * sizeof(float));
        if (src->L[l].sigma)
            memcpy(net->L[l].sigma, src->L[l].sigma,
                   (size_t)src->L[l].n * sizeof(float));
    }
    for (int e = 0; e < src->ne; e++)
        memcpy(net->E[e].W, src->E[e].W, (size_t)src->L[src->E[e].a].n *
               (size_t)src->L[src->E[e].b].n * sizeof(float));
    memcpy(net->doclen, src->doclen, sizeof net->doclen);
    return net;
}

int bm_find_layer(const bm_net *net, const char *name)
{
    for (int l = 0; l < net->nl; l++)
        if (strcmp(net->L[l].name, name) == 0)
            return l;
    return -1;
}

int bm_find_edge(const bm_net *net, int a, int b)
{
    for (int e = 0; e < net->ne; e++)
        if ((net->E[e].a == a && net->E[e].b == b) ||
            (net->E[e].a == b && net->E[e].b == a))
            return e;
    return -1;
}

size_t bm_param_count(const bm_net *net)
{
    size_t n = 0;
    for (int l = 0; l < net->nl; l++)
        n += (size_t)net->L[l].n;
    for (int e = 0; e < net->ne; e++)
        n += (size_t)net->L[net->E[e].a].n * (size_t)net->L[net->E[e].b].n;
    return n;
}

/* ---- model files ---------------------------------------------------------------- */

int bm_to_model(const bm_net *net, tz_model *mf)
{
    char key[64], name[64];
    int e = tz_attr_set_i(&mf->meta, "dbm.layers", net->nl);
    for (int l = 0; l < net->nl && !e; l++) {
        const bm_layer *L = &net->L[l];
        uint64_t sh[1] = {(uint64_t)L->n};
        snprintf(name, sizeof name, "%s.bias", L->name);
        e = tz_model_add(mf, name, TZ_F32, 1, sh, L->bias);
        if (!e && L->sigma) {
            snprintf(name, sizeof name, "%s.sigma", L->name);
            e = tz_model_add(mf, name, TZ_F32, 1, sh, L->sigma);
        }
        snprintf(key, sizeof key, "layer.%d.name", l);
        if (!e) e = tz_attr_set_s(&mf->meta, key, L->name);
        snprintf(key, sizeof key, "layer.%d.unit", l);
        if (!e) e = tz_attr_set_s(&mf->meta, key, bm_unit_name(L->unit));
        snprintf(key, sizeof key, "layer.%d.units", l);
        if (!e) e = tz_attr_set_i(&mf->meta, key, L->n);
        snprintf(key, sizeof key, "layer.%d.softmax_group", l);
        if (!e) e = tz_attr_set_i(&mf->meta, key,
                                  L->unit == BM_SOFTMAX ? L->group : 1);
        snprintf(key, sizeof key, "layer.%d.visible", l);
        if (!e) e = tz_attr_set_i(&mf->meta, key, net->vis[l]);
        snprintf(key, sizeof key, "layer.%d.doclen", l);
        if (!e && net->vis[l] && L->unit == BM_REPSOFTMAX && net->doclen[l] > 0)
            e = tz_attr_set_f(&mf->meta, key, net->doclen[l]);
    }
    for (int k = 0; k < net->ne && !e; k++) {
        const bm_edge *E = &net->E[k];
        uint64_t sh[2] = {(uint64_t)net->L[E->a].n, (uint64_t)net->L[E->b].n};
        snprintf(name, sizeof name, "W%d", k + 1);
        e = tz_model_add(mf, name, TZ_F32, 2, sh, E->W);
        snprintf(key, sizeof key, "edge.%d.from", k + 1);
        if (!e) e = tz_attr_set_s(&mf->meta, key, net->L[E->a].name);
        snprintf(key, sizeof key, "edge.%d.to", k + 1);
        if (!e) e = tz_attr_set_s(&mf->meta, key, net->L[E->b].name);
    }
    return e;
}

/* Copy tensor `name` of exactly count records of elems values (f32). */
static int get_exact(tz_model *mf, const char *name, uint64_t count,
                     uint64_t elems, float *dst, char *err, size_t es)
{
    tz_tensor *t = tz_model_find(mf, name);
    if (!t) {
        snprintf(err, es, "corrupt model: no tensor '%s'", name);
        return -1;
    }
    if (t->count != count || tz_record_elems(&t->h) != elems) {
        snprintf(err, es, "corrupt model: tensor '%s' is not %llu x %llu",
                 name, (unsigned long long)count, (unsigned long long)elems);
        return -1;
    }
    if (tz_convert(dst, TZ_F32, t->data, t->h.dtype, count * elems)) {
        snprintf(err, es, "corrupt model: tensor '%s' cannot be read as f32",
                 name);
        return -1;
    }
    for (uint64_t i = 0; i < count * elems; i++)
        if (!isfinite(dst[i])) {
            snprintf(err, es, "corrupt model: tensor '%s' holds NaN or "
                     "infinite values", name);
            return -1;
        }
    return 0;
}

bm_net *bm_from_model(tz_model *mf, char *err, size_t es)
{
    char key[64], name[64], dummy[8];
    if (!err) {
        err = dummy;
        es = sizeof dummy;
    }
    int64_t nl = tz_attr_get_i(&mf->meta, "dbm.layers", 0);
    if (nl < 2 || nl > BM_MAX_LAYERS) {
        snprintf(err, es, "corrupt model: dbm.layers must be 2 to %d",
                 BM_MAX_LAYERS);
        return NULL;
    }
    bm_layer_spec spec[BM_MAX_LAYERS];
    char names[BM_MAX_LAYERS][BM_NAME_MAX];
    int edges[BM_MAX_LAYERS][2];
    int any_vis = 0;
    for (int l = 0; l < nl; l++) {
        snprintf(key, sizeof key, "layer.%d.name", l);
        const char *nm = tz_attr_get_s(&mf->meta, key, NULL);
        snprintf(key, sizeof key, "layer.%d.unit", l);
        const char *un = tz_attr_get_s(&mf->meta, key, "?");
        snprintf(key, sizeof key, "layer.%d.units", l);
        int64_t n = tz_attr_get_i(&mf->meta, key, 0);
        snprintf(key, sizeof key, "layer.%d.softmax_group", l);
        int64_t g = tz_attr_get_i(&mf->meta, key, 1);
        int unit = bm_unit_parse(un);
        if (!nm || !name_ok(nm) || unit < 0 || n < 1 || n > (1 << 28) ||
            g < 1 || g > n) {
            snprintf(err, es, "corrupt model: layer %d is not described "
                     "(layer.%d.name, .unit, .units)", l, l);
            return NULL;
        }
        snprintf(names[l], sizeof names[l], "%s", nm);
        snprintf(key, sizeof key, "layer.%d.visible", l);
        int64_t vis = tz_attr_get_i(&mf->meta, key, -1);
        if (vis > 1 || vis < -1) {
            snprintf(err, es, "corrupt model: %s must be 0 or 1", key);
            return NULL;
        }
        if (vis >= 0)
            any_vis = 1;
        spec[l] = (bm_layer_spec){names[l], unit, (int)n,
                                  unit == BM_SOFTMAX ? (int)g : 0, vis == 1};
    }
    if (!any_vis)      /* a file from before multimodal models */
        for (int l = 0; l < nl; l++)
            spec[l].visible = l == 0 || strcmp(names[l], "label") == 0;
    for (int e = 0; e < nl - 1; e++) {
        int ab[2];
        for (int k = 0; k < 2; k++) {
            snprintf(key, sizeof key, "edge.%d.%s", e + 1, k ? "to" : "from");
            const char *nm = tz_attr_get_s(&mf->meta, key, "");
            ab[k] = -1;
            for (int l = 0; l < nl; l++)
                if (strcmp(names[l], nm) == 0)
                    ab[k] = l;
            if (ab[k] < 0) {
                snprintf(err, es, "corrupt model: %s names no layer", key);
                return NULL;
            }
        }
        edges[e][0] = ab[0];
        edges[e][1] = ab[1];
    }
    /* the sizes the attributes claim must be those of the stored tensors,
     * before anything is allocated from them */
    for (int l = 0; l < nl; l++) {
        snprintf(name, sizeof name, "%s.bias", names[l]);
        tz_tensor *t = tz_model_find(mf, name);
        if (!t || t->count != (uint64_t)spec[l].n ||
            tz_record_elems(&t->h) != 1) {
            snprintf(err, es, "corrupt model: %s", t ? "a bias tensor does "
                     "not match its layer's width" : "a layer has no bias "
                     "tensor");
            return NULL;
        }
    }
    for (int e = 0; e < nl - 1; e++) {
        snprintf(name, sizeof name, "W%d", e + 1);
        tz_tensor *t = tz_model_find(mf, name);
        if (!t || t->count != (uint64_t)spec[edges[e][0]].n ||
            tz_record_elems(&t->h) != (uint64_t)spec[edges[e][1]].n) {
            snprintf(err, es, "corrupt model: tensor '%s' %s", name,
                     t ? "does not match the widths of the layers it joins"
                       : "is missing");
            return NULL;
        }
    }
    const char *why;
    bm_net *net = bm_new((int)nl, spec, (const int (*)[2])edges, &why);
    if (!net) {
        snprintf(err, es, "corrupt model: %s", why);
        return NULL;
    }
    for (int l = 0; l < net->nl; l++) {
        bm_layer *L = &net->L[l];
        snprintf(key, sizeof key, "layer.%d.doclen", l);
        double dl = tz_attr_get_f(&mf->meta, key, 0);
        if (!(dl >= 0 && dl < 1e9)) {
            snprintf(err, es, "corrupt model: %s must be a length >= 0", key);
            goto fail;
        }
        net->doclen[l] = (float)dl;
        snprintf(name, sizeof name, "%s.bias", L->name);
        if (get_exact(mf, name, (uint64_t)L->n, 1, L->bias, err, es))
            goto fail;
        if (L->sigma) {
            snprintf(name, sizeof name, "%s.sigma", L->name);
            if (get_exact(mf, name, (uint64_t)L->n, 1, L->sigma, err, es))
                goto fail;
            for (int i = 0; i < L->n; i++)
                if (!(L->sigma[i] > 0)) {
                    snprintf(err, es, "corrupt model: %s[%d] is not positive",
                             name, i);
                    goto fail;
                }
        }
    }
    for (int e = 0; e < net->ne; e++) {
        bm_edge *E = &net->E[e];
        snprintf(name, sizeof name, "W%d", e + 1);
        /* derive() may have swapped the endpoints: the file is (from, to) */
        int flipped = E->a != edges[e][0];
        if (flipped) {
            snprintf(err, es, "corrupt model: edge %d runs towards layer 0",
                     e + 1);
            goto fail;
        }
        if (get_exact(mf, name, (uint64_t)net->L[E->a].n,
                      (uint64_t)net->L[E->b].n, E->W, err, es))
            goto fail;
    }
    return net;
fail:
    bm_free(net);
    return NULL;
}

/* ---- states ----------------------------------------------------------------------- */

void bm_state_free(bm_state *st)
{
    for (int l = 0; l < BM_MAX_LAYERS; l++) {
        if (st->s[l] != st->x[l])
            free(st->s[l]);
        free(st->x[l]);
        free(st->D[l]);
        st->x[l] = st->s[l] = st->D[l] = NULL;
    }
    st->cap = 0;
}

int bm_state_alloc(const bm_net *net, bm_state *st, int cap)
{
    memset(st, 0, sizeof *st);
    if (cap < 1)
        return BM_E_ARG;
    st->cap = cap;
    for (int l = 0; l < net->nl; l++) {
        const bm_layer *L = &net->L[l];
        size_t n = (size_t)cap * L->n;
        st->x[l] = calloc(n, sizeof(float));
        st->s[l] = L->unit == BM_GAUSSIAN ? calloc(n, sizeof(float))
                                          : st->x[l];
        if (L->unit == BM_REPSOFTMAX) {
            st->D[l] = malloc((size_t)cap * sizeof(float));
            if (st->D[l])
                for (int b = 0; b < cap; b++)
                    st->D[l][b] = 1;
        }
        if (!st->x[l] || !st->s[l] ||
            (L->unit == BM_REPSOFTMAX && !st->D[l])) {
            bm_state_free(st);
            return BM_E_NOMEM;
        }
    }
    return 0;
}

void bm_state_sync(const bm_net *net, bm_state *st, int l, int r0, int B)
{
    const bm_layer *L = &net->L[l];
    size_t off = (size_t)r0 * L->n;
    if (st->s[l] != st->x[l])
        bm_layer_scale(L, B, st->x[l] + off, st->s[l] + off);
    if (st->D[l])
        bm_layer_doclen(L, B, st->x[l] + off, st->D[l] + r0);
}

void bm_state_absent(const bm_net *net, bm_state *st, int l, int r0, int B)
{
    const bm_layer *L = &net->L[l];
    size_t off = (size_t)r0 * L->n, n = (size_t)B * L->n;
    memset(st->x[l] + off, 0, n * sizeof(float));
    if (st->s[l] != st->x[l])
        memset(st->s[l] + off, 0, n * sizeof(float));
    if (st->D[l]) {
        float d = net->doclen[l] > 0 ? net->doclen[l] : 1.0f;
        for (int b = 0; b < B; b++)
            st->D[l][r0 + b] = d;
    }
}

void bm_state_set(const bm_net *net, bm_state *st, int l, int B,
                  const float *v)
{
    memcpy(st->x[l], v, (size_t)B * net->L[l].n * sizeof(float));
    bm_state_sync(net, st, l, 0, B);
}

/* ---- scratch ---------------------------------------------------------------------- */

struct bm_scratch {
    int B;
    float *fixed[BM_MAX_LAYERS];   /* (B, n_l) input from clamped layers */
    float *tmp;                    /* (B, max n) */
    float *old;                    /* (B, max n) */
    double *cdf;                   /* (max n) */
    double *lp;                    /* (B) */
};

void bm_scratch_free(bm_scratch *w)
{
    if (!w)
        return;
    for (int l = 0; l < BM_MAX_LAYERS; l++)
        free(w->fixed[l]);
    free(w->tmp);
    free(w->old);
    free(w->cdf);
    free(w->lp);
    free(w);
}

bm_scratch *bm_scratch_new(const bm_net *net, int B)
{
    bm_scratch *w = calloc(1, sizeof *w);
    if (!w || B < 1) {
        free(w);
        return NULL;
    }
    w->B = B;
    int mx = 1;
    for (int l = 0; l < net->nl; l++) {
        if (net->L[l].n > mx)
            mx = net->L[l].n;
        w->fixed[l] = malloc((size_t)B * net->L[l].n * sizeof(float));
        if (!w->fixed[l])
            goto fail;
    }
    w->tmp = malloc((size_t)B * mx * sizeof(float));
    w->old = malloc((size_t)B * mx * sizeof(float));
    w->cdf = malloc((size_t)mx * sizeof(double));
    w->lp = malloc((size_t)B * sizeof(double));
    if (!w->tmp || !w->old || !w->cdf || !w->lp)
        goto fail;
    return w;
fail:
    bm_scratch_free(w);
    return NULL;
}

/* ---- inputs, updates, sweeps ---------------------------------------------------------- */

/* x += scale * (input of layer l through edge e from the other end). */
static void add_edge_input(const bm_net *net, const bm_state *st, int e,
                           int l, int r0, int B, float scale, float beta,
                           float *x)
{
    const bm_edge *E = &net->E[e];
    int na = net->L[E->a].n, nb = net->L[E->b].n;
    if (l == E->b)
        gemm_f32(GEMM_NOTRANS, GEMM_NOTRANS, B, nb, na, scale,
                 st->s[E->a] + (size_t)r0 * na, na, E->W, nb, beta, x, nb);
    else
        gemm_f32(GEMM_NOTRANS, GEMM_TRANS, B, na, nb, scale,
                 st->s[E->b] + (size_t)r0 * nb, nb, E->W, nb, beta, x, na);
}

void bm_input(const bm_net *net, const bm_state *st, int l, int r0, int B,
              const bm_mult *m, unsigned from, float *x)
{
    int first = 1;
    for (int e = 0; e < net->ne; e++) {
        const bm_edge *E = &net->E[e];
        if (E->a != l && E->b != l)
            continue;
        int other = E->a == l ? E->b : E->a;
        if (!(from & (1u << other)))
            continue;
        float sc = m ? (l == E->b ? m->up[e] : m->down[e]) : 1.0f;
        add_edge_input(net, st, e, l, r0, B, sc, first ? 0.0f : 1.0f, x);
        first = 0;
    }
    if (first)
        memset(x, 0, (size_t)B * net->L[l].n * sizeof *x);
}

static const float *bias_mult(const bm_net *net, const bm_state *st, int l,
                              int r0)
{
    int src = net->L[l].unit == BM_REPSOFTMAX ? l : net->dsrc[l];
    return src >= 0 && st->D[src] ? st->D[src] + r0 : NULL;
}

const float *bm_bias_mult(const bm_net *net, const bm_state *st, int l,
                          int r0)
{
    return bias_mult(net, st, l, r0);
}

float *bm_scratch_buf(bm_scratch *w)
{
    return w->tmp;
}

double *bm_scratch_cdf(bm_scratch *w)
{
    return w->cdf;
}

void bm_update(const bm_net *net, bm_state *st, int l, int r0, int B,
               const bm_mult *m, int sample, rng_t *rng, bm_scratch *w)
{
    const bm_layer *L = &net->L[l];
    float *x = st->x[l] + (size_t)r0 * L->n;
    const float *d = bias_mult(net, st, l, r0);
    /* the input is computed into scratch: x itself may feed it */
    bm_input(net, st, l, r0, B, m, ~0u, w->tmp);
    bm_layer_mean(L, B, w->tmp, d);
    if (sample)
        bm_layer_sample(L, B, w->tmp, d, x, rng, w->cdf);
    else
        memcpy(x, w->tmp, (size_t)B * L->n * sizeof *x);
    if (st->s[l] != st->x[l])
        bm_layer_scale(L, B, x, st->s[l] + (size_t)r0 * L->n);
}

void bm_gibbs_sweep_mult(const bm_net *net, bm_state *st, int r0, int B,
                         const unsigned char *clamp, const bm_mult *m,
                         rng_t *rng, bm_scratch *w)
{
    for (int c = 1; c >= 0; c--)
        for (int l = 0; l < net->nl; l++)
            if (net->color[l] == c && !(clamp && clamp[l]))
                bm_update(net, st, l, r0, B, m, 1, rng, w);
}

void bm_gibbs_sweep(const bm_net *net, bm_state *st, int r0, int B,
                    const unsigned char *clamp, rng_t *rng, bm_scratch *w)
{
    bm_gibbs_sweep_mult(net, st, r0, B, clamp, NULL, rng, w);
}

void bm_bottom_up(const bm_net *net, bm_state *st, int r0, int B,
                  const unsigned char *clamp, bm_scratch *w)
{
    unsigned done = 0;
    for (int l = 0; l < net->nl; l++)
        if (clamp && clamp[l])
            done |= 1u << l;
    if (!done)
        done = 1;      /* nothing clamped: start from layer 0 as it is */
    /* outward from the clamped layers: each layer, when first reached,
     * from its neighbours already set, doubled when it also has neighbours
     * not yet set (in the model they add an input of similar size) */
    for (int pass = 0; pass < net->nl; pass++) {
        unsigned next = done;
        for (int l = 0; l < net->nl; l++) {
            if (done & (1u << l))
                continue;
            unsigned from = 0;
            int unset = 0;
            for (int e = 0; e < net->ne; e++) {
                int a = net->E[e].a, b = net->E[e].b;
                int o = a == l ? b : b == l ? a : -1;
                if (o < 0)
                    continue;
                if (done & (1u << o))
                    from |= 1u << o;
                else
                    unset = 1;
            }
            if (!from)
                continue;
            bm_mult m;
            for (int e = 0; e < BM_MAX_LAYERS; e++)
                m.up[e] = m.down[e] = unset ? 2.0f : 1.0f;
            const bm_layer *L = &net->L[l];
            bm_input(net, st, l, r0, B, &m, from, w->tmp);
            bm_layer_mean(L, B, w->tmp, bias_mult(net, st, l, r0));
            memcpy(st->x[l] + (size_t)r0 * L->n, w->tmp,
                   (size_t)B * L->n * sizeof(float));
            bm_state_sync(net, st, l, r0, B);
            next |= 1u << l;
        }
        if (next == done)
            break;
        done = next;
    }
}

int bm_meanfield(const bm_net *net, bm_state *st, int r0, int B,
                 const unsigned char *clamp, int iters, float tol,
                 float damping, bm_scratch *w)
{
    return bm_meanfield_mult(net, st, r0, B, clamp, NULL, iters, tol,
                             damping, w);
}

static int meanfield(const bm_net *net, bm_state *st, int r0, int B,
                     const unsigned char *clamp, const bm_mult *m,
                     const unsigned char *const *held, int iters, float tol,
                     float damping, bm_scratch *w);

int bm_meanfield_mult(const bm_net *net, bm_state *st, int r0, int B,
                      const unsigned char *clamp, const bm_mult *m, int iters,
                      float tol, float damping, bm_scratch *w)
{
    return meanfield(net, st, r0, B, clamp, m, NULL, iters, tol, damping, w);
}

int bm_meanfield_held(const bm_net *net, bm_state *st, int r0, int B,
                      const unsigned char *clamp,
                      const unsigned char *const *held, int iters, float tol,
                      float damping, bm_scratch *w)
{
    return meanfield(net, st, r0, B, clamp, NULL, held, iters, tol, damping, w);
}

static int meanfield(const bm_net *net, bm_state *st, int r0, int B,
                     const unsigned char *clamp, const bm_mult *m,
                     const unsigned char *const *held, int iters, float tol,
                     float damping, bm_scratch *w)
{
    unsigned fixed = 0;
    for (int l = 0; l < net->nl; l++)
        if (clamp && clamp[l])
            fixed |= 1u << l;
    /* the input from clamped neighbours is the same every sweep */
    for (int l = 0; l < net->nl; l++)
        if (!(fixed & (1u << l)))
            bm_input(net, st, l, r0, B, m, fixed, w->fixed[l]);
    int it = 0;
    while (it < iters) {
        it++;
        float change = 0;
        for (int l = 0; l < net->nl; l++) {
            if (fixed & (1u << l))
                continue;
            const bm_layer *L = &net->L[l];
            size_t n = (size_t)B * L->n;
            float *x = st->x[l] + (size_t)r0 * L->n;
            memcpy(w->tmp, w->fixed[l], n * sizeof(float));
            for (int e = 0; e < net->ne; e++) {
                const bm_edge *E = &net->E[e];
                int other = E->a == l ? E->b : E->b == l ? E->a : -1;
                if (other >= 0 && !(fixed & (1u << other)))
                    add_edge_input(net, st, e, l, r0, B,
                                   m ? (l == E->b ? m->up[e] : m->down[e])
                                     : 1.0f, 1.0f, w->tmp);
            }
            bm_layer_mean(L, B, w->tmp, bias_mult(net, st, l, r0));
            const unsigned char *hl = held ? held[l] : NULL;
            if (hl)         /* held units keep their values */
                for (int b = 0; b < B; b++)
                    for (int i = 0; i < L->n; i++)
                        if (hl[i])
                            w->tmp[(size_t)b * L->n + i] = x[(size_t)b * L->n + i];
            for (size_t i = 0; i < n; i++) {
                float v = damping > 0 ? damping * x[i] +
                                        (1 - damping) * w->tmp[i]
                                      : w->tmp[i];
                float dlt = fabsf(v - x[i]);
                if (dlt > change)
                    change = dlt;
                x[i] = v;
            }
            if (st->s[l] != st->x[l])
                bm_layer_scale(L, B, x, st->s[l] + (size_t)r0 * L->n);
        }
        if (change < tol)
            break;
    }
    return it;
}

/* ---- log p* and exact log Z --------------------------------------------------------------- */

void bm_log_pstar(const bm_net *net, const bm_state *st, int r0, int B,
                  int c, double *lp, bm_scratch *w)
{
    for (int b = 0; b < B; b++)
        lp[b] = 0;
    for (int l = 0; l < net->nl; l++) {
        const bm_layer *L = &net->L[l];
        const float *d = bias_mult(net, st, l, r0);
        if (net->color[l] != c) {
            bm_layer_add_own(L, B, st->x[l] + (size_t)r0 * L->n, d, lp);
        } else {
            bm_input(net, st, l, r0, B, NULL, ~0u, w->tmp);
            bm_layer_add_logpart(L, B, w->tmp, d, lp);
        }
    }
}

void bm_log_pjoint(const bm_net *net, const bm_state *st, int r0, int B,
                   double *lp, bm_scratch *w)
{
    for (int b = 0; b < B; b++)
        lp[b] = 0;
    for (int l = 0; l < net->nl; l++) {
        const bm_layer *L = &net->L[l];
        bm_layer_add_own(L, B, st->x[l] + (size_t)r0 * L->n,
                         bias_mult(net, st, l, r0), lp);
    }
    for (int e = 0; e < net->ne; e++) {
        int b = net->E[e].b, n = net->L[b].n;
        add_edge_input(net, st, e, b, r0, B, 1.0f, 0.0f, w->tmp);
        const float *sb = st->s[b] + (size_t)r0 * n;
        for (int r = 0; r < B; r++) {
            double d = 0;
            for (int j = 0; j < n; j++)
                d += (double)w->tmp[(size_t)r * n + j] * sb[(size_t)r * n + j];
            lp[r] += d;
        }
    }
}

int bm_enum_color(const bm_net *net, double *states)
{
    double best = INFINITY;
    int pick = -1;
    for (int c = 0; c < 2; c++) {
        double n = 1;
        for (int l = 0; l < net->nl; l++)
            if (net->color[l] != c) {
                double s = bm_layer_states(&net->L[l]);
                n = s > 0 ? n * s : INFINITY;
            }
        if (n < best) {
            best = n;
            pick = c;
        }
    }
    if (states)
        *states = best;
    return pick;
}

int bm_exact_logz(const bm_net *net, double doclen, double *logz)
{
    double total;
    int c = bm_enum_color(net, &total);
    if (c < 0 || !isfinite(total))
        return BM_E_UNSUPPORTED;
    if (total > 1073741824.0)
        return BM_E_TOOBIG;
    const int CH = 256;
    bm_state st;
    bm_scratch *w = bm_scratch_new(net, CH);
    double *lp = malloc(CH * sizeof *lp);
    if (!w || !lp || bm_state_alloc(net, &st, CH)) {
        bm_scratch_free(w);
        free(lp);
        return BM_E_NOMEM;
    }
    for (int l = 0; l < net->nl; l++)
        if (st.D[l])
            for (int b = 0; b < CH; b++)
                st.D[l][b] = (float)doclen;
    uint64_t N = (uint64_t)total;
    double mx = -INFINITY, sum = 0;
    for (uint64_t k0 = 0; k0 < N; k0 += CH) {
        int n = N - k0 < (uint64_t)CH ? (int)(N - k0) : CH;
        for (int b = 0; b < n; b++) {
            uint64_t k = k0 + (uint64_t)b;
            for (int l = 0; l < net->nl; l++) {
                if (net->color[l] == c)
                    continue;
                const bm_layer *L = &net->L[l];
                uint64_t S = (uint64_t)bm_layer_states(L);
                bm_layer_state(L, k % S, st.x[l] + (size_t)b * L->n);
                k /= S;
            }
        }
        bm_log_pstar(net, &st, 0, n, c, lp, w);
        for (int b = 0; b < n; b++) {
            if (lp[b] > mx) {
                sum = sum * exp(mx - lp[b]) + 1;
                mx = lp[b];
            } else {
                sum += exp(lp[b] - mx);
            }
        }
    }
    *logz = mx + log(sum);
    bm_state_free(&st);
    bm_scratch_free(w);
    free(lp);
    return 0;
}

/* ---- DBM training ----------------------------------------------------------------------------- */

void bm_train_opts_init(bm_train_opts *o)
{
    o->lr = 0.001f;
    o->momentum = 0.5f;
    o->weight_decay = 2e-4f;
    o->mf_iters = 30;
    o->mf_tol = 1e-5f;
    o->damping = 0;
    o->sweeps = 5;
    o->sparsity_target = 0;
    o->sparsity_cost = 0.1f;
    o->rebinarize = 0;
    o->mult = NULL;
}

struct bm_trainer {
    bm_net *net;
    unsigned char vis[BM_MAX_LAYERS];
    int cap, C;                  /* data rows at most; chains */
    bm_state st;                 /* rows [0, cap) data, [cap, cap+C) chains */
    float *G[BM_MAX_LAYERS];     /* (cap + C, n_l) signed, scaled s_l */
    float *Winc[BM_MAX_LAYERS];  /* edge momentum (n_a, n_b) */
    float *binc[BM_MAX_LAYERS];  /* bias momentum (n_l) */
    int *order;                  /* (cap) batch row of each data row: rows
                                    grouped by the layers they observe */
    unsigned *pat;               /* (cap) the observed visible layers of
                                    each data row, a bit per layer */
    uint64_t *key;               /* (cap) sort keys: pattern, row */
    rng_t rng;
    int64_t steps;
    int chains_init;
    int nthreads;
    par_pool *pool;
    rng_t *trng;                 /* (nthreads) */
    bm_scratch **w;              /* (nthreads) */
    double *recon, *sweeps;      /* (nthreads) */
    int err;
};

void bm_trainer_free(bm_trainer *t)
{
    if (!t)
        return;
    bm_state_free(&t->st);
    for (int l = 0; l < BM_MAX_LAYERS; l++) {
        free(t->G[l]);
        free(t->Winc[l]);
        free(t->binc[l]);
    }
    free(t->order);
    free(t->pat);
    free(t->key);
    par_free(t->pool);
    if (t->w)
        for (int i = 0; i < t->nthreads; i++)
            bm_scratch_free(t->w[i]);
    free(t->w);
    free(t->trng);
    free(t->recon);
    free(t->sweeps);
    free(t);
}

bm_trainer *bm_trainer_new(bm_net *net, const unsigned char *visible,
                           int batch, int chains, uint64_t seed)
{
    if (batch < 1 || chains < 1)
        return NULL;
    bm_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->net = net;
    t->cap = batch;
    t->C = chains;
    memcpy(t->vis, visible, (size_t)net->nl);
    rng_seed(&t->rng, seed);
    t->order = malloc((size_t)batch * sizeof *t->order);
    t->pat = malloc((size_t)batch * sizeof *t->pat);
    t->key = malloc((size_t)batch * sizeof *t->key);
    if (!t->order || !t->pat || !t->key || bm_state_alloc(net, &t->st, batch + chains))
        goto fail;
    for (int l = 0; l < net->nl; l++) {
        t->G[l] = malloc((size_t)(batch + chains) * net->L[l].n * sizeof(float));
        t->binc[l] = calloc((size_t)net->L[l].n, sizeof(float));
        if (!t->G[l] || !t->binc[l])
            goto fail;
    }
    for (int e = 0; e < net->ne; e++) {
        t->Winc[e] = calloc((size_t)net->L[net->E[e].a].n *
                            (size_t)net->L[net->E[e].b].n, sizeof(float));
        if (!t->Winc[e])
            goto fail;
    }
    t->nthreads = 0;
    if (bm_trainer_set_threads(t, 1))
        goto fail;
    return t;
fail:
    bm_trainer_free(t);
    return NULL;
}

int bm_trainer_set_threads(bm_trainer *t, int n)
{
    if (n < 1)
        return BM_E_ARG;
    if (n == t->nthreads)
        return 0;
    par_pool *pool = n > 1 ? par_new(n) : NULL;
    rng_t *trng = malloc((size_t)n * sizeof *trng);
    double *recon = malloc((size_t)n * sizeof *recon);
    double *sweeps = malloc((size_t)n * sizeof *sweeps);
    bm_scratch **w = calloc((size_t)n, sizeof *w);
    int rows = (t->cap > t->C ? t->cap : t->C);
    int bad = (n > 1 && !pool) || !trng || !recon || !sweeps || !w;
    for (int i = 0; i < n && !bad; i++) {
        /* each thread's share of the data or of the chains, at most */
        w[i] = bm_scratch_new(t->net, rows / n + 1);
        bad = !w[i];
    }
    if (bad) {
        par_free(pool);
        free(trng);
        free(recon);
        free(sweeps);
        if (w)
            for (int i = 0; i < n; i++)
                bm_scratch_free(w[i]);
        free(w);
        return BM_E_NOMEM;
    }
    par_free(t->pool);
    if (t->w)
        for (int i = 0; i < t->nthreads; i++)
            bm_scratch_free(t->w[i]);
    free(t->w);
    free(t->trng);
    free(t->recon);
    free(t->sweeps);
    t->pool = pool;
    t->trng = trng;
    t->recon = recon;
    t->sweeps = sweeps;
    t->w = w;
    t->nthreads = n;
    return 0;
}

typedef struct {
    bm_trainer *t;
    const bm_train_opts *o;
    const float *const *data;
    int B;
    int init_chains;
} bm_step_job;

/* Thread id of T: data rows [b0, b1) and chain rows [c0, c1), then rows
 * [i0, i1) of every edge's W and units [j0, j1) of every bias. */
static void train_part(void *arg, int id, int T)
{
    bm_step_job *J = arg;
    bm_trainer *t = J->t;
    bm_net *net = t->net;
    const bm_train_opts *o = J->o;
    bm_state *st = &t->st;
    bm_scratch *w = t->w[id];
    rng_t *rng = &t->trng[id];
    int B = J->B, C = t->C, cap = t->cap;
    int b0 = par_split(B, T, id), nb = par_split(B, T, id + 1) - b0;
    int c0 = par_split(C, T, id), nc = par_split(C, T, id + 1) - c0;

    /* data rows: clamp the observed visible layers, start mean-field
     * bottom-up; rows come grouped by the layers they observe, and each
     * run of one pattern is inferred with its own clamp */
    double recon = 0;
    int sweeps = 0;
    if (nb > 0) {
        for (int r = b0; r < b0 + nb;) {
            int r1 = r + 1;
            while (r1 < b0 + nb && t->pat[r1] == t->pat[r])
                r1++;
            unsigned char clamp[BM_MAX_LAYERS];
            for (int l = 0; l < net->nl; l++) {
                clamp[l] = t->vis[l] && (t->pat[r] & (1u << l));
                if (!t->vis[l])
                    continue;
                if (!clamp[l]) {
                    bm_state_absent(net, st, l, r, r1 - r);
                    continue;
                }
                size_t n = (size_t)net->L[l].n, m = (size_t)(r1 - r) * n;
                float *x = st->x[l] + (size_t)r * n;
                for (int i = r; i < r1; i++)
                    memcpy(st->x[l] + (size_t)i * n,
                           J->data[l] + (size_t)t->order[i] * n,
                           n * sizeof(float));
                if (o->rebinarize && net->L[l].unit == BM_BERNOULLI) {
                    float u[256];
                    for (size_t i = 0; i < m; i += 256) {
                        size_t k = m - i < 256 ? m - i : 256;
                        rng_fill_uniform(rng, u, k);
                        for (size_t j = 0; j < k; j++)
                            x[i + j] = u[j] < x[i + j] ? 1.0f : 0.0f;
                    }
                }
                bm_state_sync(net, st, l, r, r1 - r);
            }
            bm_bottom_up(net, st, r, r1 - r, clamp, w);
            int sw = bm_meanfield_mult(net, st, r, r1 - r, clamp, o->mult,
                                       o->mf_iters, o->mf_tol, o->damping, w);
            if (sw > sweeps)
                sweeps = sw;
            /* reconstruction error of each observed visible layer from its
             * neighbours' posterior means */
            for (int l = 0; l < net->nl; l++) {
                if (!clamp[l])
                    continue;
                const bm_layer *L = &net->L[l];
                size_t n = (size_t)(r1 - r) * L->n;
                bm_input(net, st, l, r, r1 - r, o->mult, ~0u, w->tmp);
                bm_layer_mean(L, r1 - r, w->tmp, bias_mult(net, st, l, r));
                recon += vm_sqdiff(st->x[l] + (size_t)r * L->n, w->tmp, n);
            }
            r = r1;
        }
    }

    /* chain rows: random start once, then Gibbs sweeps */
    if (nc > 0) {
        int r0 = cap + c0;
        if (J->init_chains) {
            for (int l = 0; l < net->nl; l++) {
                const bm_layer *L = &net->L[l];
                for (int c = 0; c < nc; c++) {
                    /* replicated softmax: as many words as a data row */
                    long len = 0;
                    int src = (c0 + c) % B;
                    if (L->unit == BM_REPSOFTMAX && J->data[l] &&
                        (t->pat[src] & (1u << l))) {
                        const float *v = J->data[l] +
                                         (size_t)t->order[src] * L->n;
                        double s = 0;
                        for (int i = 0; i < L->n; i++)
                            s += v[i];
                        len = lround(s);
                    } else if (L->unit == BM_REPSOFTMAX) {
                        len = lroundf(net->doclen[l] > 0 ? net->doclen[l] : 1);
                    }
                    bm_layer_random(L, st->x[l] + (size_t)(r0 + c) * L->n,
                                    len, rng);
                }
                bm_state_sync(net, st, l, r0, nc);
            }
        }
        for (int s = 0; s < o->sweeps; s++)
            bm_gibbs_sweep_mult(net, st, r0, nc, NULL, o->mult, rng, w);
    }
    t->recon[id] = recon;
    t->sweeps[id] = sweeps;

    /* G_l: data rows s_l / B, chain rows -s_l / C (own rows only) */
    for (int l = 0; l < net->nl; l++) {
        size_t n = (size_t)net->L[l].n;
        if (nb > 0) {
            memcpy(t->G[l] + (size_t)b0 * n, st->s[l] + (size_t)b0 * n,
                   (size_t)nb * n * sizeof(float));
            vm_scale(t->G[l] + (size_t)b0 * n, 1.0f / B, (size_t)nb * n);
        }
        if (nc > 0) {
            size_t r = (size_t)(B + c0) * n;
            memcpy(t->G[l] + r, st->s[l] + (size_t)(cap + c0) * n,
                   (size_t)nc * n * sizeof(float));
            vm_scale(t->G[l] + r, -1.0f / C, (size_t)nc * n);
        }
    }
    par_barrier(t->pool);    /* every row of s and G is set */

    float lr = o->lr, mom = o->momentum, lwd = o->lr * o->weight_decay;
    for (int e = 0; e < net->ne; e++) {
        bm_edge *E = &net->E[e];
        int na = net->L[E->a].n, nbu = net->L[E->b].n;
        int i0 = par_split(na, T, id), i1 = par_split(na, T, id + 1);
        if (i1 <= i0)
            continue;
        float *Winc = t->Winc[e] + (size_t)i0 * nbu;
        float *Wr = E->W + (size_t)i0 * nbu;
        /* Winc = mom Winc + lr (s_a' G_b) over data rows, then chain rows */
        gemm_f32(GEMM_TRANS, GEMM_NOTRANS, i1 - i0, nbu, B, lr,
                 st->s[E->a] + i0, na, t->G[E->b], nbu, mom, Winc, nbu);
        gemm_f32(GEMM_TRANS, GEMM_NOTRANS, i1 - i0, nbu, C, lr,
                 st->s[E->a] + (size_t)cap * na + i0, na,
                 t->G[E->b] + (size_t)B * nbu, nbu, 1.0f, Winc, nbu);
        size_t n = (size_t)(i1 - i0) * nbu;
        for (size_t x = 0; x < n; x++) {
            Winc[x] -= lwd * Wr[x];
            Wr[x] += Winc[x];
        }
    }
    /* biases: d(own)/dc averaged, data minus model */
    for (int l = 0; l < net->nl; l++) {
        bm_layer *L = &net->L[l];
        int n = L->n;
        int j0 = par_split(n, T, id), j1 = par_split(n, T, id + 1);
        for (int j = j0; j < j1; j++) {
            double g = 0, act = 0;
            for (int r = 0; r < B + C; r++) {
                int row = r < B ? r : cap + (r - B);
                double wgt = r < B ? 1.0 / B : -1.0 / C;
                float x = st->x[l][(size_t)row * n + j];
                double dv;
                if (L->unit == BM_GAUSSIAN) {
                    double sg = L->sigma ? L->sigma[j] : 1.0;
                    dv = (x - L->bias[j]) / (sg * sg);
                } else {
                    int src = net->dsrc[l];
                    dv = src >= 0 ? (double)x * st->D[src][row] : x;
                }
                g += wgt * dv;
                if (r < B)
                    act += x;
            }
            if (o->sparsity_target > 0 && !t->vis[l] &&
                L->unit == BM_BERNOULLI)
                g += o->sparsity_cost * (o->sparsity_target - act / B);
            t->binc[l][j] = mom * t->binc[l][j] + lr * (float)g;
            L->bias[j] += t->binc[l][j];
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void bm_group_rows(const bm_net *net, int B,
                   const unsigned char *const *present, uint64_t *key,
                   int *order, unsigned *pat)
{
    for (int r = 0; r < B; r++) {
        uint64_t p = 0;
        for (int l = 0; l < net->nl; l++)
            if (net->vis[l] && (!present || !present[l] || present[l][r]))
                p |= 1u << l;
        key[r] = p << 32 | (uint64_t)r;
    }
    qsort(key, (size_t)B, sizeof *key, cmp_u64);
    for (int r = 0; r < B; r++) {
        order[r] = (int)(key[r] & 0xffffffffu);
        pat[r] = (unsigned)(key[r] >> 32);
    }
}

int bm_train_step(bm_trainer *t, int B, const float *const *data,
                  const unsigned char *const *present,
                  const bm_train_opts *o, bm_step_stats *stats)
{
    if (B < 1 || B > t->cap)
        return BM_E_ARG;
    for (int l = 0; l < t->net->nl; l++)
        if (t->vis[l] && !data[l])
            return BM_E_ARG;
    /* group the rows by the visible layers they observe (the identity
     * when every row is complete) */
    bm_group_rows(t->net, B, present, t->key, t->order, t->pat);
    for (int i = 0; i < t->nthreads; i++)
        rng_split(&t->trng[i], &t->rng, (uint64_t)i);
    bm_step_job J = {t, o, data, B, !t->chains_init};
    par_run(t->pool, train_part, &J);
    t->chains_init = 1;
    t->steps++;
    if (stats) {
        stats->recon = 0;
        stats->mf_sweeps = 0;
        for (int i = 0; i < t->nthreads; i++) {
            stats->recon += t->recon[i];
            stats->mf_sweeps += t->sweeps[i] / t->nthreads;
        }
    }
    return 0;
}

/* ---- trainer state ---------------------------------------------------------------------------- */

int bm_trainer_save(const bm_trainer *t, tz_model *mf)
{
    const bm_net *net = t->net;
    char name[64];
    int e = 0;
    for (int k = 0; k < net->ne && !e; k++) {
        uint64_t sh[2] = {(uint64_t)net->L[net->E[k].a].n,
                          (uint64_t)net->L[net->E[k].b].n};
        snprintf(name, sizeof name, "train.W%d_inc", k + 1);
        e = tz_model_add(mf, name, TZ_F32, 2, sh, t->Winc[k]);
    }
    for (int l = 0; l < net->nl && !e; l++) {
        const bm_layer *L = &net->L[l];
        uint64_t sh[1] = {(uint64_t)L->n};
        uint64_t ch[2] = {(uint64_t)t->C, (uint64_t)L->n};
        snprintf(name, sizeof name, "train.%s.bias_inc", L->name);
        e = tz_model_add(mf, name, TZ_F32, 1, sh, t->binc[l]);
        snprintf(name, sizeof name, "train.chain.%s", L->name);
        if (!e) e = tz_model_add(mf, name, TZ_F32, 2, ch,
                                 t->st.x[l] + (size_t)t->cap * L->n);
    }
    int64_t rs[4], state[3] = {t->C, t->chains_init, t->steps};
    memcpy(rs, t->rng.s, sizeof rs);
    uint64_t rsh[1] = {4}, ssh[1] = {3};
    if (!e) e = tz_model_add(mf, "train.rng", TZ_I64, 1, rsh, rs);
    if (!e) e = tz_model_add(mf, "train.state", TZ_I64, 1, ssh, state);
    return e;
}

int bm_trainer_load(bm_trainer *t, tz_model *mf)
{
    bm_net *net = t->net;
    char name[64];
    int64_t rs[4], state[3];
    int e = tz_model_read_exact(mf, "train.state", TZ_I64, 3, 1, state);
    if (!e && state[0] != t->C) {
        snprintf(mf->err, sizeof mf->err, "checkpoint: %lld chains, "
                 "trainer has %d", (long long)state[0], t->C);
        return BM_E_ARG;
    }
    for (int k = 0; k < net->ne && !e; k++) {
        snprintf(name, sizeof name, "train.W%d_inc", k + 1);
        e = tz_model_read_exact(mf, name, TZ_F32, (uint64_t)net->L[net->E[k].a].n,
                       (uint64_t)net->L[net->E[k].b].n, t->Winc[k]);
    }
    for (int l = 0; l < net->nl && !e; l++) {
        const bm_layer *L = &net->L[l];
        snprintf(name, sizeof name, "train.%s.bias_inc", L->name);
        e = tz_model_read_exact(mf, name, TZ_F32, (uint64_t)L->n, 1, t->binc[l]);
        snprintf(name, sizeof name, "train.chain.%s", L->name);
        if (!e) e = tz_model_read_exact(mf, name, TZ_F32, (uint64_t)t->C,
                               (uint64_t)L->n,
                               t->st.x[l] + (size_t)t->cap * L->n);
        if (!e)
            bm_state_sync(net, &t->st, l, t->cap, t->C);
    }
    if (!e) e = tz_model_read_exact(mf, "train.rng", TZ_I64, 4, 1, rs);
    if (e)
        return e;
    memcpy(t->rng.s, rs, sizeof rs);
    t->chains_init = (int)state[1];
    t->steps = state[2];
    return 0;
}
