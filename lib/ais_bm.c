/* ais_bm.c - the AIS target of a Boltzmann network (bm.h): a DBM, a
 * multimodal DBM, or an RBM seen as a one-edge network (ais.h).
 *
 * The chains run on the layers of one colour class ("kept"); the other
 * class c is summed out analytically.  The base A has no weights and
 * biases c_A (given for the visible layers, e.g. the data's base rates;
 * zero elsewhere; gaussian layers keep the model's sigma).  Along the
 * geometric path p*_beta = p*_A^(1-beta) p*_B^beta,
 *     -E_beta(x) = sum_l [(1-beta) own_A,l(x_l) + beta own_B,l(x_l)]
 *                  + beta sum_e s_a' W_e s_b.
 * own is linear in the bias for every type but gaussian, so a layer at
 * beta is the same layer with bias c_beta = (1-beta) c_A + beta c_B; a
 * gaussian layer also gets the constant -beta(1-beta)(c_A - c)^2/(2 sigma^2)
 * (completing the square), which matters only when it is summed out.
 * Summing class c out:
 *     log p*_beta(kept) = sum_{kept l} [(1-beta) own_A + beta own_B]
 *                         + sum_{l in c} logpart_l(beta u_l; c_beta)
 *                         (+ the gaussian constants of class c),
 * u_l the input of l from the kept layers at beta = 1.  The transition at
 * beta draws class c given the kept layers (input beta u_l, bias c_beta)
 * and then the kept layers given class c (input scaled by beta through the
 * edge multipliers), which leaves p_beta invariant.  Each step costs one
 * product per edge in each direction, as for an RBM.
 *
 * log Z_A = sum over all layers of logpart_l(0; c_A).  Replicated-softmax
 * layers have the fixed document length `doclen` throughout.
 */
#include "ais_bm.h"
#include "vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bm_net *net;                    /* the target (a clone, owned) */
    int c;                          /* the colour summed out */
    int off[BM_MAX_LAYERS];         /* kept layer's offset in the chain row */
    float *base[BM_MAX_LAYERS];     /* (n_l) base biases c_A */
    int zero_base[BM_MAX_LAYERS];   /* c_A is all zero */
    double doclen;
} bmt_ctx;

typedef struct {                    /* one thread's scratch block */
    int B;
    bm_state st;
    bm_scratch *w;
    bm_net view;                    /* the net with biases c_beta */
    bm_net base;                    /* the net with biases c_A */
    float *bb[BM_MAX_LAYERS];       /* (n_l) c_beta */
    float *u[BM_MAX_LAYERS];        /* (B, n_l) inputs at beta = 1, class c */
    float *t;                       /* (B, max n) */
    double *lp, *lp0;               /* (B) */
    double *cdf;                    /* (max n) replicated-softmax draws */
    int ready;                      /* the block starts zeroed (ais_run) */
} bmt_scratch;

static size_t bmt_scratch_bytes(const ais_target *t, int B)
{
    (void)t;
    (void)B;
    return sizeof(bmt_scratch);
}

static void bmt_release(const ais_target *t, void *p)
{
    bmt_ctx *x = t->ctx;
    bmt_scratch *s = p;
    if (!s->ready)
        return;
    bm_state_free(&s->st);
    bm_scratch_free(s->w);
    for (int l = 0; l < x->net->nl; l++) {
        free(s->bb[l]);
        free(s->u[l]);
    }
    free(s->t);
    free(s->lp);
    free(s->lp0);
    free(s->cdf);
    s->ready = 0;
}

/* Allocate the thread's buffers on first use; 0 or -1. */
static int bmt_prepare(const ais_target *t, int B, bmt_scratch *s)
{
    bmt_ctx *x = t->ctx;
    const bm_net *net = x->net;
    if (s->ready)
        return 0;
    memset(s, 0, sizeof *s);
    s->B = B;
    int mx = 1, bad = bm_state_alloc(net, &s->st, B) != 0;
    s->w = bm_scratch_new(net, B);
    s->view = *net;
    s->view.owns = 0;
    s->base = *net;
    s->base.owns = 0;
    for (int l = 0; l < net->nl; l++) {
        int n = net->L[l].n;
        mx = n > mx ? n : mx;
        s->bb[l] = malloc((size_t)n * sizeof(float));
        s->u[l] = malloc((size_t)B * n * sizeof(float));
        bad |= !s->bb[l] || !s->u[l];
        s->view.L[l].bias = s->bb[l];
        s->base.L[l].bias = x->base[l];
        if (!bad && s->st.D[l])
            for (int b = 0; b < B; b++)
                s->st.D[l][b] = (float)x->doclen;
    }
    s->t = malloc(((size_t)B + 2) * mx * sizeof(float));
    s->lp = malloc((size_t)B * sizeof(double));
    s->lp0 = malloc((size_t)B * sizeof(double));
    s->cdf = malloc((size_t)mx * sizeof(double));
    s->ready = 1;
    if (bad || !s->w || !s->t || !s->lp || !s->lp0 || !s->cdf) {
        bmt_release(t, s);
        return -1;
    }
    return 0;
}

static void set_beta(const bmt_ctx *x, bmt_scratch *s, float beta)
{
    const bm_net *net = x->net;
    for (int l = 0; l < net->nl; l++) {
        const float *a = x->base[l], *c = net->L[l].bias;
        for (int i = 0; i < net->L[l].n; i++)
            s->bb[l][i] = (1 - beta) * a[i] + beta * c[i];
    }
}

/* The chain rows (B, width) <-> the kept layers of the state. */
static void unpack(const bmt_ctx *x, bmt_scratch *s, int B, const float *row,
                   int width)
{
    const bm_net *net = x->net;
    for (int l = 0; l < net->nl; l++) {
        if (net->color[l] == x->c)
            continue;
        int n = net->L[l].n;
        for (int b = 0; b < B; b++)
            memcpy(s->st.x[l] + (size_t)b * n, row + (size_t)b * width +
                   x->off[l], (size_t)n * sizeof(float));
        bm_state_sync(net, &s->st, l, 0, B);
        if (s->st.D[l])
            for (int b = 0; b < B; b++)
                s->st.D[l][b] = (float)x->doclen;
    }
}

static void pack(const bmt_ctx *x, const bmt_scratch *s, int B, float *row,
                 int width)
{
    const bm_net *net = x->net;
    for (int l = 0; l < net->nl; l++) {
        if (net->color[l] == x->c)
            continue;
        int n = net->L[l].n;
        for (int b = 0; b < B; b++)
            memcpy(row + (size_t)b * width + x->off[l],
                   s->st.x[l] + (size_t)b * n, (size_t)n * sizeof(float));
    }
}

static void class_inputs(const bmt_ctx *x, bmt_scratch *s, int B)
{
    const bm_net *net = x->net;
    for (int l = 0; l < net->nl; l++)
        if (net->color[l] == x->c)
            bm_input(net, &s->st, l, 0, B, NULL, ~0u, s->u[l]);
}

/* logw (B) += log p*_beta1 - log p*_beta0 of the kept state, with u the
 * class-c inputs: (beta1 - beta0) (own_B - own_A) for the kept layers, the
 * change of each summed layer's log-partition (bernoulli layers by the
 * vector kernel, the others as two totals at bias c_beta), and the
 * gaussian constants. */
static void log_weight_step(const bmt_ctx *x, bmt_scratch *s, int B,
                            float beta0, float beta1, double *logw)
{
    const bm_net *net = x->net;
    double db = (double)beta1 - beta0;
    int slow = 0;
    for (int l = 0; l < net->nl; l++) {
        const bm_layer *L = &net->L[l];
        int src = L->unit == BM_REPSOFTMAX ? l : net->dsrc[l];
        const float *d = src >= 0 ? s->st.D[src] : NULL;
        if (net->color[l] != x->c) {
            for (int b = 0; b < B; b++)
                s->lp[b] = 0;
            bm_layer_add_own(L, B, s->st.x[l], d, s->lp);
            for (int b = 0; b < B; b++)
                s->lp[b] = -s->lp[b];
            bm_layer_add_own(&s->base.L[l], B, s->st.x[l], d, s->lp);
            for (int b = 0; b < B; b++)
                logw[b] -= db * s->lp[b];      /* db (own_B - own_A) */
            continue;
        }
        if (L->unit != BM_BERNOULLI) {
            slow = 1;
            continue;
        }
        /* z = beta u + d c_beta = beta (u + d (c - a)) + d a */
        int n = L->n;
        const float *a = x->base[l], *c = L->bias;
        float *y = s->t, *shift = s->t + n;
        for (int b = 0; b < B; b++) {
            const float *u = s->u[l] + (size_t)b * n;
            float m = d ? d[b] : 1.0f;
            for (int i = 0; i < n; i++) {
                y[i] = u[i] + m * (c[i] - a[i]);
                shift[i] = m * a[i];
            }
            logw[b] += vm_softplus_diff(y, x->zero_base[l] ? NULL : shift,
                                        beta0, beta1, n);
        }
    }
    if (!slow)
        return;
    /* the other summed layers: log-partitions at both temperatures */
    for (int k = 0; k < 2; k++) {
        float beta = k ? beta1 : beta0;
        set_beta(x, s, beta);
        for (int b = 0; b < B; b++)
            s->lp0[b] = 0;
        for (int l = 0; l < net->nl; l++) {
            const bm_layer *L = &net->L[l];
            if (net->color[l] != x->c || L->unit == BM_BERNOULLI)
                continue;
            int src = L->unit == BM_REPSOFTMAX ? l : net->dsrc[l];
            const float *d = src >= 0 ? s->st.D[src] : NULL;
            size_t nn = (size_t)B * L->n;
            for (size_t i = 0; i < nn; i++)
                s->t[i] = beta * s->u[l][i];
            bm_layer_add_logpart(&s->view.L[l], B, s->t, d, s->lp0);
            if (L->unit == BM_GAUSSIAN) {
                double q = 0;
                for (int i = 0; i < L->n; i++) {
                    double dc = (double)x->base[l][i] - L->bias[i];
                    double sg = L->sigma ? L->sigma[i] : 1.0;
                    q -= (double)beta * (1 - beta) * dc * dc / (2 * sg * sg);
                }
                for (int b = 0; b < B; b++)
                    s->lp0[b] += q;
            }
        }
        for (int b = 0; b < B; b++)
            logw[b] += k ? s->lp0[b] : -s->lp0[b];
    }
}

static void bmt_sample_base(const ais_target *t, int B, float *xs, rng_t *rng,
                            void *scratch)
{
    bmt_ctx *x = t->ctx;
    bmt_scratch *s = scratch;
    const bm_net *net = x->net;
    if (bmt_prepare(t, B, s)) {
        memset(xs, 0, (size_t)B * t->width * sizeof *xs);
        return;
    }
    for (int l = 0; l < net->nl; l++) {
        if (net->color[l] == x->c)
            continue;
        const bm_layer *L = &s->base.L[l];
        int src = L->unit == BM_REPSOFTMAX ? l : net->dsrc[l];
        for (int b = 0; b < B; b++) {
            float *m = s->t;
            const float *d = src >= 0 ? s->st.D[src] + b : NULL;
            memset(m, 0, (size_t)L->n * sizeof *m);
            bm_layer_mean(L, 1, m, d);
            bm_layer_sample(L, 1, m, d, s->st.x[l] + (size_t)b * L->n,
                            &rng[b], s->cdf);
        }
    }
    pack(x, s, B, xs, t->width);
}

static void bmt_step(const ais_target *t, float beta0, float beta1, int move,
                     int B, float *xs, double *logw, rng_t *rng,
                     void *scratch)
{
    bmt_ctx *x = t->ctx;
    bmt_scratch *s = scratch;
    const bm_net *net = x->net;
    if (!s->ready) {
        for (int b = 0; b < B; b++)
            logw[b] = NAN;
        return;
    }
    unpack(x, s, B, xs, t->width);
    class_inputs(x, s, B);
    log_weight_step(x, s, B, beta0, beta1, logw);
    set_beta(x, s, beta1);
    if (!move)
        return;
    bm_mult m;
    for (int e = 0; e < BM_MAX_LAYERS; e++)
        m.up[e] = m.down[e] = beta1;
    /* class c given the kept layers, then the kept layers given class c;
     * row b draws from rng[b] so runs do not depend on their grouping */
    for (int pass = 0; pass < 2; pass++)
        for (int l = 0; l < net->nl; l++) {
            int inc = net->color[l] == x->c;
            if (inc != !pass)
                continue;
            const bm_layer *L = &s->view.L[l];
            int src = L->unit == BM_REPSOFTMAX ? l : net->dsrc[l];
            size_t n = (size_t)L->n;
            if (inc)
                for (size_t i = 0; i < (size_t)B * n; i++)
                    s->t[i] = beta1 * s->u[l][i];
            else
                bm_input(&s->view, &s->st, l, 0, B, &m, ~0u, s->t);
            for (int b = 0; b < B; b++) {
                const float *d = src >= 0 ? s->st.D[src] + b : NULL;
                float *mrow = s->t + (size_t)b * n;
                bm_layer_mean(L, 1, mrow, d);
                bm_layer_sample(L, 1, mrow, d, s->st.x[l] + (size_t)b * n,
                                &rng[b], s->cdf);
            }
            bm_state_sync(net, &s->st, l, 0, B);
            if (s->st.D[l])
                for (int b = 0; b < B; b++)
                    s->st.D[l][b] = (float)x->doclen;
        }
    pack(x, s, B, xs, t->width);
}

static void bmt_destroy(ais_target *t)
{
    bmt_ctx *x = t->ctx;
    if (x) {
        for (int l = 0; l < BM_MAX_LAYERS; l++)
            free(x->base[l]);
        bm_free(x->net);
        free(x);
    }
    free(t);
}

const char *ais_bm_check(const bm_net *net, int c)
{
    for (int l = 0; l < net->nl; l++)
        if (net->color[l] == c && net->L[l].unit == BM_REPSOFTMAX &&
            net->dsrc[l] >= 0)
            return "a replicated-softmax layer cannot be summed out next to "
                   "the layer its length scales";
    return NULL;
}

int ais_bm_sum_color(const bm_net *net)
{
    /* Rao-Blackwellise the larger class; keep gaussian layers out of the
     * sum when possible (their summed form needs the base constant) */
    size_t n[2] = {0, 0};
    for (int l = 0; l < net->nl; l++)
        n[net->color[l]] += (size_t)net->L[l].n;
    int c = n[1] > n[0] ? 1 : 0;
    if (ais_bm_check(net, c))
        c = 1 - c;
    return c;
}

ais_target *ais_bm_target(const bm_net *net, const float *const *base,
                          double doclen, int c)
{
    if (c < 0)
        c = ais_bm_sum_color(net);
    if (c > 1 || ais_bm_check(net, c) || !(doclen >= 1))
        return NULL;
    ais_target *t = calloc(1, sizeof *t);
    bmt_ctx *x = calloc(1, sizeof *x);
    if (!t || !x) {
        free(t);
        free(x);
        return NULL;
    }
    t->ctx = x;
    t->destroy = bmt_destroy;
    x->net = bm_clone(net);
    x->c = c;
    x->doclen = doclen;
    if (!x->net) {
        bmt_destroy(t);
        return NULL;
    }
    int width = 0;
    for (int l = 0; l < net->nl; l++) {
        int n = net->L[l].n;
        x->base[l] = calloc((size_t)n, sizeof(float));
        if (!x->base[l]) {
            bmt_destroy(t);
            return NULL;
        }
        if (base && base[l])
            memcpy(x->base[l], base[l], (size_t)n * sizeof(float));
        x->zero_base[l] = 1;
        for (int i = 0; i < n; i++)
            x->zero_base[l] &= x->base[l][i] == 0;
        if (net->color[l] != c) {
            x->off[l] = width;
            width += n;
        }
    }
    /* log Z_A: every layer independent with input 0 */
    double lz = 0;
    for (int l = 0; l < net->nl; l++) {
        bm_layer A = net->L[l];
        A.bias = x->base[l];
        float *z = calloc((size_t)A.n, sizeof(float));
        int src = A.unit == BM_REPSOFTMAX ? l : net->dsrc[l];
        float dl = (float)doclen;
        double one = 0;
        if (!z) {
            bmt_destroy(t);
            return NULL;
        }
        bm_layer_add_logpart(&A, 1, z, src >= 0 ? &dl : NULL, &one);
        lz += one;
        free(z);
    }
    t->width = width;
    t->log_z0 = lz;
    t->scratch_bytes = bmt_scratch_bytes;
    t->scratch_release = bmt_release;
    t->sample_base = bmt_sample_base;
    t->step = bmt_step;
    return t;
}
