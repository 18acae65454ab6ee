/* rbm-sample.c - draw visible vectors from an RBM by block Gibbs sampling.
 *
 *   rbm-sample MODEL [-n N] [--steps N] [-s SEED] [INPUT]  > samples.tz
 *
 * Each chain alternates h ~ p(h|v), v ~ p(v|h).  Without INPUT, N chains
 * start at random; with INPUT, one chain starts at each input row, and
 * --clamp / --clamp-mask / --clamp-group keep chosen visible units at the
 * row's values, which samples the free units from p(v_free | v_clamped).
 * Chains are independent, each with its own random stream derived from the
 * seed and the chain's number, so they run in blocks of up to 256 (one
 * gemm_f32 per product for the block) and memory does not grow with the
 * number of chains or input rows.  Output rows are grouped by chain:
 * chain 0's emitted states in time order, then chain 1's, ...
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gemm.h"
#include "model.h"
#include "rbm.h"
#include "rng.h"
#include "tz.h"

#define DEFAULT_COUNT 10
#define DEFAULT_STEPS 1000
#define DEFAULT_LENGTH 100
#define BLOCK_MAX 256
#define BLOCK_OUT_BYTES (64u << 20)   /* bound on a block's buffered output */

typedef struct {
    long steps, burn_in, every;   /* every 0: only the final state */
    int means;                    /* emit E[v|h] instead of samples */
    uint64_t seed;
} sample_opts;

/* ---- clamp sets ------------------------------------------------------------ */

/* Read one row of width V from a stream; nonzero = clamped. */
static void read_mask(const char *path, int V, unsigned char *mask)
{
    FILE *f = cli_open_in(path);
    tz_reader *r = cli_reader(f, path);
    uint64_t cols = tz_record_elems(tz_reader_header(r));
    if (cols != (uint64_t)V)
        cli_die("%s: clamp mask has %llu columns, model expects %d", path,
                (unsigned long long)cols, V);
    float *row = malloc((size_t)V * sizeof *row);
    if (!row)
        cli_die("out of memory");
    long n = tz_read_f32(r, row, 1);
    if (n < 0)
        cli_die_reader(path, r, (int)n);
    if (n == 0)
        cli_die("%s: empty clamp mask", path);
    for (int i = 0; i < V; i++) {
        if (row[i] != 0 && row[i] != 1)
            cli_die("%s: clamp mask values must be 0 or 1", path);
        if (row[i] == 1)
            mask[i] = 1;
    }
    free(row);
    tz_reader_free(r);
    cli_close_in(f);
}

/* ---- the sampler ----------------------------------------------------------- */

typedef struct {
    rbm *m;
    sample_opts o;
    const unsigned char *clamp;   /* (V) 1 = held at the start value, or NULL */
    int B;                        /* chains per block */
    rng_t base;                   /* seeded; never advanced */
    rng_t *rng;                   /* (B) one stream per chain */
    float *v, *v0, *ph, *h, *pv;  /* (B,V) (B,V) (B,H) (B,H) (B,V) */
    float *d;                     /* (B) document lengths */
    float *out;                   /* (B, E, V) emitted states, chain-major */
    long n_emit;                  /* E: states emitted per chain */
} sampler;

/* Number of states a chain emits. */
static long emit_count(const sample_opts *o)
{
    if (o->every == 0)
        return 1;
    return (o->steps - o->burn_in) / o->every;
}

/* Index in 0..E-1 of the state after step t (1-based), or -1. */
static long emit_index(const sample_opts *o, long t)
{
    if (o->every == 0)
        return t == o->steps ? 0 : -1;
    if (t <= o->burn_in || (t - o->burn_in) % o->every)
        return -1;
    return (t - o->burn_in) / o->every - 1;
}

/* Chain number `chain`'s own stream, split from the seeded base. */
static void chain_rng(const rng_t *base, uint64_t chain, rng_t *out)
{
    rng_t p = *base;
    rng_split(out, &p, chain);
}

/* Chains run together in a block: at most BLOCK_MAX, and their buffered
 * output (per_chain bytes each) within BLOCK_OUT_BYTES. */
static size_t block_chains(size_t per_chain)
{
    size_t B = per_chain ? BLOCK_OUT_BYTES / per_chain : BLOCK_MAX;
    return B > BLOCK_MAX ? BLOCK_MAX : B < 1 ? 1 : B;
}

/* A random start for chain b (rng already set): uniform 0/1 (bernoulli),
 * c + sigma N(0,1) (gaussian), a uniform category per group (softmax),
 * D uniformly drawn words (replicated softmax): bm_layer_random. */
static void random_start(sampler *s, int b, float length)
{
    bm_layer L = rbm_visible_layer(s->m);
    bm_layer_random(&L, s->v + (size_t)b * L.n, (long)length, &s->rng[b]);
}

static void apply_clamp(const sampler *s, int B, float *x)
{
    if (!s->clamp)
        return;
    int V = s->m->nv;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < V; i++)
            if (s->clamp[i])
                x[(size_t)b * V + i] = s->v0[(size_t)b * V + i];
}

/* Run B chains (started in s->v, rngs set) for o.steps steps, filling
 * s->out (B, E, V). */
static void run_block(sampler *s, int B)
{
    rbm *m = s->m;
    int V = m->nv, H = m->nh;
    long E = s->n_emit;
    memcpy(s->v0, s->v, (size_t)B * V * sizeof *s->v);
    rbm_doc_lengths(m, B, s->v, s->d);
    for (long t = 1; t <= s->o.steps; t++) {
        /* ph (B,H) = p(h|v); h ~ ph; pv (B,V) = E[v|h]; v ~ pv */
        if (rbm_hidden_probs(m, B, s->v, s->ph))
            cli_die("out of memory");
        for (int b = 0; b < B; b++)
            rbm_sample_hidden(m, 1, s->ph + (size_t)b * H, s->h + (size_t)b * H,
                              &s->rng[b]);
        rbm_visible_probs(m, B, s->h, s->d, s->pv);
        for (int b = 0; b < B; b++)
            if (rbm_sample_visible(m, 1, s->pv + (size_t)b * V, s->d + b,
                                   s->v + (size_t)b * V, &s->rng[b]))
                cli_die("out of memory");
        apply_clamp(s, B, s->v);
        long k = emit_index(&s->o, t);
        if (k < 0)
            continue;
        const float *src = s->v;
        if (s->o.means) {
            apply_clamp(s, B, s->pv);
            src = s->pv;
        }
        for (int b = 0; b < B; b++)
            memcpy(s->out + ((size_t)b * E + (size_t)k) * V,
                   src + (size_t)b * V, (size_t)V * sizeof *src);
    }
}

static void sampler_init(sampler *s, rbm *m, const sample_opts *o,
                         const unsigned char *clamp)
{
    memset(s, 0, sizeof *s);
    s->m = m;
    s->o = *o;
    s->clamp = clamp;
    s->n_emit = emit_count(o);
    size_t V = (size_t)m->nv, H = (size_t)m->nh;
    size_t per_chain = (size_t)s->n_emit * V * sizeof(float);
    size_t B = block_chains(per_chain);
    s->B = (int)B;
    rng_seed(&s->base, o->seed);
    s->rng = malloc(B * sizeof *s->rng);
    s->v = malloc(B * V * sizeof(float));
    s->v0 = malloc(B * V * sizeof(float));
    s->pv = malloc(B * V * sizeof(float));
    s->ph = malloc(B * H * sizeof(float));
    s->h = malloc(B * H * sizeof(float));
    s->d = malloc(B * sizeof(float));
    s->out = malloc(B * per_chain);
    if (!s->rng || !s->v || !s->v0 || !s->pv || !s->ph || !s->h || !s->d ||
        !s->out)
        cli_die("out of memory");
}

static void sampler_free(sampler *s)
{
    free(s->rng);
    free(s->v);
    free(s->v0);
    free(s->pv);
    free(s->ph);
    free(s->h);
    free(s->d);
    free(s->out);
}

static void write_block(tz_writer *w, const sampler *s, int B)
{
    int rc = tz_write(w, s->out, (size_t)B * (size_t)s->n_emit);
    if (rc)
        cli_die_writer("", w, rc);
}

/* ---- deep models: DBN (top-RBM chains, then a down-pass) and DBM ----------- */

typedef struct {
    model *m;
    sample_opts o;
    const unsigned char *clamp;   /* (V) or NULL */
    int B, V, nl;
    rng_t base;
    rng_t *rng;                   /* (B) one stream per chain */
    bm_state st;                  /* DBM: every layer; DBN: x[l] below */
    bm_scratch *w;                /* DBM */
    float *x[BM_MAX_LAYERS];      /* DBN: (B, n_l) states, x[0] = v */
    float *pv;                    /* (B, V) means of the visible layer */
    float *v0;                    /* (B, V) the start rows */
    float *t;                     /* (B, max n) */
    float *dl;                    /* (B) document lengths of layer 0 */
    double *cdf;
    float *out;                   /* (B, E, V) */
    long n_emit;
} deep_sampler;

/* Row b of a layer from its means with chain b's stream. */
static void sample_rows(const bm_layer *L, int B, const float *mean,
                        const float *d, float *out, rng_t *rng, double *cdf)
{
    for (int b = 0; b < B; b++)
        bm_layer_sample(L, 1, mean + (size_t)b * L->n, d ? d + b : NULL,
                        out + (size_t)b * L->n, &rng[b], cdf);
}

static void deep_clamp(const deep_sampler *s, int B, float *x)
{
    if (!s->clamp)
        return;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < s->V; i++)
            if (s->clamp[i])
                x[(size_t)b * s->V + i] = s->v0[(size_t)b * s->V + i];
}

static float *deep_visible(deep_sampler *s)
{
    return s->m->kind == MODEL_DBM ? s->st.x[0] : s->x[0];
}

static void deep_init(deep_sampler *s, model *m, const sample_opts *o,
                      const unsigned char *clamp)
{
    memset(s, 0, sizeof *s);
    s->m = m;
    s->o = *o;
    s->clamp = clamp;
    s->n_emit = emit_count(o);
    s->nl = model_layers(m);
    bm_layer L0 = model_layer(m, 0);
    s->V = L0.n;
    size_t V = (size_t)s->V, mx = 1;
    for (int l = 0; l < s->nl; l++) {
        size_t n = (size_t)model_layer(m, l).n;
        mx = n > mx ? n : mx;
    }
    size_t per_chain = (size_t)s->n_emit * V * sizeof(float);
    size_t B = block_chains(per_chain);
    s->B = (int)B;
    rng_seed(&s->base, o->seed);
    s->rng = malloc(B * sizeof *s->rng);
    s->pv = malloc(B * V * sizeof(float));
    s->v0 = malloc(B * V * sizeof(float));
    s->t = malloc(B * mx * sizeof(float));
    s->dl = malloc(B * sizeof(float));
    s->cdf = malloc(mx * sizeof(double));
    s->out = malloc(B * per_chain);
    int bad = !s->rng || !s->pv || !s->v0 || !s->t || !s->dl || !s->cdf ||
              !s->out;
    if (m->kind == MODEL_DBM) {
        bad |= bm_state_alloc(m->net, &s->st, (int)B) != 0;
        bad |= !(s->w = bm_scratch_new(m->net, (int)B));
    } else {
        for (int l = 0; l < s->nl; l++)
            bad |= !(s->x[l] = malloc(B * (size_t)model_layer(m, l).n *
                                      sizeof(float)));
    }
    if (bad)
        cli_die("out of memory");
}

static void deep_free(deep_sampler *s)
{
    bm_state_free(&s->st);
    bm_scratch_free(s->w);
    for (int l = 0; l < BM_MAX_LAYERS; l++)
        free(s->x[l]);
    free(s->rng);
    free(s->pv);
    free(s->v0);
    free(s->t);
    free(s->dl);
    free(s->cdf);
    free(s->out);
}

/* Chain b of the block starts at random (start = 0) or at the row already
 * in the visible buffer (start = 1). */
static void deep_start(deep_sampler *s, int B, int from_rows, long length)
{
    model *m = s->m;
    float *v = deep_visible(s);
    if (!from_rows)
        for (int b = 0; b < B; b++) {
            bm_layer L0 = model_layer(m, 0);
            bm_layer_random(&L0, v + (size_t)b * s->V, length, &s->rng[b]);
        }
    memcpy(s->v0, v, (size_t)B * s->V * sizeof(float));
    if (m->kind == MODEL_DBM) {
        const bm_net *net = m->net;
        bm_state_sync(net, &s->st, 0, 0, B);
        if (from_rows) {
            unsigned char cl[BM_MAX_LAYERS] = {1};
            bm_bottom_up(net, &s->st, 0, B, cl, s->w);
        } else {
            for (int l = 1; l < net->nl; l++) {
                for (int b = 0; b < B; b++)
                    bm_layer_random(&net->L[l], s->st.x[l] +
                                    (size_t)b * net->L[l].n, length,
                                    &s->rng[b]);
                bm_state_sync(net, &s->st, l, 0, B);
            }
        }
        return;
    }
    /* DBN: the top RBM's visible layer from an up-pass of the start rows,
     * or at random */
    dbn *d = m->dbn;
    int n = d->n;
    bm_layer T = dbn_layer(d, n - 1);
    if (from_rows) {
        if (dbn_up(d, B, v, n - 1, s->x, NULL, NULL))
            cli_die("out of memory");
        sample_rows(&T, B, s->x[n - 1], NULL, s->x[n - 1], s->rng, s->cdf);
    } else {
        for (int b = 0; b < B; b++)
            bm_layer_random(&T, s->x[n - 1] + (size_t)b * T.n, length,
                            &s->rng[b]);
    }
}

/* DBN: from x[n-1] down to the visible layer (pv the means, x[0] a draw). */
static void dbn_sample_down(deep_sampler *s, int B)
{
    dbn *d = s->m->dbn;
    for (int k = d->n - 2; k >= 0; k--) {
        bm_layer L = dbn_layer(d, k);
        const float *dl = NULL;
        if (L.unit == BM_REPSOFTMAX) {
            bm_layer_doclen(&L, B, s->v0, s->dl);
            dl = s->dl;
        }
        float *mean = k == 0 ? s->pv : s->x[k];
        dbn_down_mean(d, k, B, s->x[k + 1], dl, mean);
        sample_rows(&L, B, mean, dl, s->x[k], s->rng, s->cdf);
    }
}

static void deep_step(deep_sampler *s, int B, int emit)
{
    model *m = s->m;
    if (m->kind == MODEL_DBM) {
        const bm_net *net = m->net;
        for (int c = 1; c >= 0; c--)
            for (int l = 0; l < net->nl; l++) {
                if (net->color[l] != c)
                    continue;
                const bm_layer *L = &net->L[l];
                int src = L->unit == BM_REPSOFTMAX ? l : net->dsrc[l];
                const float *d = src >= 0 ? s->st.D[src] : NULL;
                float *mean = l == 0 ? s->pv : s->t;
                bm_input(net, &s->st, l, 0, B, NULL, ~0u, mean);
                bm_layer_mean(L, B, mean, d);
                sample_rows(L, B, mean, d, s->st.x[l], s->rng, s->cdf);
                if (l == 0)
                    deep_clamp(s, B, s->st.x[0]);
                bm_state_sync(net, &s->st, l, 0, B);
            }
        return;
    }
    dbn *d = m->dbn;
    int n = d->n;
    rbm *top = d->r[n - 1];
    if (s->clamp) {           /* re-infer the top's visible layer from v */
        if (dbn_up(d, B, s->x[0], n - 1, s->x, NULL, NULL))
            cli_die("out of memory");
        bm_layer T = dbn_layer(d, n - 1);
        sample_rows(&T, B, s->x[n - 1], NULL, s->x[n - 1], s->rng, s->cdf);
    }
    bm_layer H = dbn_layer(d, n), T = dbn_layer(d, n - 1);
    if (rbm_hidden_probs(top, B, s->x[n - 1], s->x[n]))
        cli_die("out of memory");
    sample_rows(&H, B, s->x[n], NULL, s->x[n], s->rng, s->cdf);
    rbm_visible_probs(top, B, s->x[n], NULL, s->t);
    sample_rows(&T, B, s->t, NULL, s->x[n - 1], s->rng, s->cdf);
    if (emit || s->clamp) {
        dbn_sample_down(s, B);
        deep_clamp(s, B, s->x[0]);
    }
}

static void deep_run_block(deep_sampler *s, int B)
{
    long E = s->n_emit;
    int V = s->V;
    for (long t = 1; t <= s->o.steps; t++) {
        long k = emit_index(&s->o, t);
        deep_step(s, B, k >= 0);
        if (k < 0)
            continue;
        const float *src = deep_visible(s);
        if (s->o.means) {
            deep_clamp(s, B, s->pv);
            src = s->pv;
        }
        for (int b = 0; b < B; b++)
            memcpy(s->out + ((size_t)b * E + (size_t)k) * V,
                   src + (size_t)b * V, (size_t)V * sizeof *src);
    }
}

/* ---- multimodal: --modality NAME=DATA --generate NAME -------------------------- */

/* One chain per input row: the given modalities clamped where present,
 * the generated one (and every absent one) sampled.  A DBM sweeps every
 * layer; an MDBN runs its chain in the top RBM and samples down the
 * unobserved pathways when it emits. */
static int modal_main(model *md, const sample_opts *o, cli_modal *mm,
                      const char *gen_name, long count, int force,
                      const char *model_path)
{
    if (md->kind != MODEL_DBM && md->kind != MODEL_MDBN)
        cli_usage_error("--modality needs a multimodal model (a DBM or an "
                        "MDBN), not model.type %s", model_kind_name(md->kind));
    const bm_net *net = md->net;
    int g = bm_find_layer(net, gen_name);
    if (g < 0 || !net->vis[g])
        cli_usage_error("--generate %s: the model has no modality '%s'",
                        gen_name, gen_name);
    for (int i = 0; i < mm->n; i++)
        if (strcmp(mm->name[i], gen_name) == 0)
            cli_usage_error("--generate %s: that modality is given "
                            "(--modality %s=...)", gen_name, gen_name);
    const bm_layer *G = &net->L[g];
    long E = emit_count(o);
    size_t per_chain = (size_t)E * G->n * sizeof(float);
    int B = (int)block_chains(per_chain);
    cli_modal_open(mm, net, B);
    bm_state st;
    bm_scratch *w = bm_scratch_new(net, B);
    if (!w || bm_state_alloc(net, &st, B))
        cli_die("out of memory");
    float *mean = malloc((size_t)B * G->n * sizeof *mean);
    float *out = malloc((size_t)B * per_chain);
    if (!mean || !out)
        cli_die("out of memory");

    tz_header oh;
    tz_header_init(&oh);
    uint64_t dim = (uint64_t)G->n;
    if (tz_header_set_shape(&oh, TZ_F32, 1, &dim) ||
        tz_attr_set_s(&oh, "modality.name", G->name) ||
        tz_attr_set_s(&oh, "sample.model", strrchr(model_path, '/')
                                           ? strrchr(model_path, '/') + 1
                                           : model_path) ||
        tz_attr_set_i(&oh, "sample.seed", (int64_t)o->seed) ||
        tz_attr_set_i(&oh, "sample.steps", o->steps) ||
        tz_attr_set_i(&oh, "sample.burn_in", o->burn_in) ||
        tz_attr_set_i(&oh, "sample.every", o->every) ||
        tz_attr_set_s(&oh, "sample.output", o->means ? "means" : "samples") ||
        (o->means && G->unit == BM_BERNOULLI &&
         tz_attr_set_s(&oh, "data.values", "probabilities")))
        cli_die("out of memory");
    tz_writer *wr = cli_writer_stdout(force);
    int rc = tz_writer_begin(wr, &oh);
    if (rc)
        cli_die_writer("", wr, rc);
    long left = count;
    uint64_t block = 0;
    int n;
    while (left > 0 &&
           (n = cli_modal_read(mm, net, B < left ? B : (int)left)) > 0) {
        left -= n;
        rng_t base, rng;
        rng_seed(&base, o->seed);
        rng_split(&rng, &base, block++);
        for (int r = 0; r < n;) {
            unsigned char clamp[BM_MAX_LAYERS], top[BM_MAX_LAYERS];
            /* a row with nothing observed: a free chain (the prior) */
            int r1 = cli_modal_run(mm, net, n, r, &st, clamp, 1);
            int R = r1 - r;
            if (md->kind == MODEL_MDBN) {
                mdbn_up(md->mdbn, &st, r, R, clamp, 1, &rng, w);
                mdbn_top_clamp(md->mdbn, clamp, top);
                bm_bottom_up(net, &st, r, R, top, w);
            } else {
                bm_bottom_up(net, &st, r, R, clamp, w);
            }
            for (long t = 1; t <= o->steps; t++) {
                long k = emit_index(o, t);
                if (md->kind == MODEL_MDBN) {
                    bm_gibbs_sweep(net, &st, r, R, top, &rng, w);
                    if (k >= 0)
                        mdbn_down(md->mdbn, &st, r, R, clamp, !o->means,
                                  &rng, w);
                } else {
                    bm_gibbs_sweep(net, &st, r, R, clamp, &rng, w);
                }
                if (k < 0)
                    continue;
                const float *src = st.x[g] + (size_t)r * G->n;
                /* means: a DBM's (or an MDBN's top-RBM modality's) mean
                 * given its neighbours; an MDBN pathway's down-pass means */
                if (o->means && (md->kind == MODEL_DBM ||
                                 mdbn_in_top(md->mdbn, g))) {
                    bm_input(net, &st, g, r, R, NULL, ~0u, mean);
                    bm_layer_mean(G, R, mean, bm_bias_mult(net, &st, g, r));
                    src = mean;
                }
                for (int i = 0; i < R; i++)
                    memcpy(out + ((size_t)mm->order[r + i] * E + (size_t)k) * G->n,
                           src + (size_t)i * G->n, (size_t)G->n * sizeof(float));
            }
            r = r1;
        }
        rc = tz_write(wr, out, (size_t)n * (size_t)E);
        if (rc)
            cli_die_writer("", wr, rc);
    }
    cli_finish_writer(wr);
    cli_modal_close(mm);
    tz_header_clear(&oh);
    free(mean);
    free(out);
    bm_state_free(&st);
    bm_scratch_free(w);
    model_free(md);
    return 0;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void)
{
    printf(
"Usage: %s [OPTION]... MODEL [INPUT]\n"
"       %s [OPTION]... MODEL -m NAME=DATA... -g NAME\n"
"Draw visible vectors from MODEL by block Gibbs sampling and write them as\n"
"f32 rows of width V: an RBM alternates h ~ p(h|v) and v ~ p(v|h); a DBN\n"
"runs its chains in the top RBM and samples down through the directed\n"
"layers; a DBM alternates the layers of even and odd depth.  Without INPUT,\n"
"--count chains start at\n"
"random (bernoulli: uniform 0/1; gaussian: visible bias + sigma N(0,1);\n"
"softmax: a uniform category per group; replicated softmax: --length\n"
"uniform words).  With INPUT ('-' = stdin), one chain starts at each row.\n"
"\n"
"  -n, --count N         chains started at random (default: %d); with INPUT,\n"
"                        at most N rows are used (default: all)\n"
"      --steps N         Gibbs steps per chain (RBM v->h->v; DBN one step of\n"
"                        the top RBM; DBM one sweep of all layers) (default: %d)\n"
"      --burn-in N       steps before the first emitted state, with --every\n"
"                        (default: half of --steps)\n"
"      --every K         emit the state every K steps after the burn-in\n"
"                        (default: 0 = only the final state)\n"
"      --means           emit E[v|h] of the step instead of the sample\n"
"  -s, --seed N          random seed (default: 1)\n"
"  -D, --length D        replicated softmax: words in a random start\n"
"                        (default: %d); chains from INPUT keep their row's length\n"
"      --clamp COLS      hold the visible units COLS at the input row's\n"
"                        values: a list of columns and half-open ranges such\n"
"                        as 0:392,700 (needs INPUT; default: none)\n"
"      --clamp-mask FILE hold the units where the one-row stream FILE is 1\n"
"                        (needs INPUT; default: none)\n"
"      --clamp-group G   softmax visible units: hold whole groups, a list of\n"
"                        group numbers and ranges as for --clamp (default: none)\n"
"      --allow-real      accept input values other than 0/1 for bernoulli\n"
"                        visible units (default: an error)\n"
"  -m, --modality NAME=DATA  multimodal models (joint, stack --labels): one\n"
"                        chain per row of the given modalities, held at their\n"
"                        values (a row of NaN: absent, sampled too); repeat\n"
"                        for each given modality; DATA alone when its\n"
"                        modality.name attribute names it\n"
"  -g, --generate NAME   with --modality: the modality to emit (its samples,\n"
"                        or with --means its conditional means)\n"
"  -j, --threads N       BLAS threads; 0 = the BLAS default (default: 0)\n"
"  -f, --force           write binary output to a terminal\n"
"  -q, --quiet           no progress on stderr\n"
CLI_STREAM_HELP
"  -h, --help            show this help and exit\n"
"      --version         show the version and exit\n"
"\n"
"Rows come grouped by chain: chain 0's states in time order, then chain\n"
"1's.  The output is the same for the same seed, options and BLAS threads.\n",
        cli_prog, cli_prog, DEFAULT_COUNT, DEFAULT_STEPS, DEFAULT_LENGTH);
}

enum {
    OPT_STEPS = 256, OPT_BURN, OPT_EVERY, OPT_MEANS, OPT_CLAMP, OPT_CMASK,
    OPT_CGROUP, OPT_ALLOW_REAL
};

int main(int argc, char **argv)
{
    cli_init(argc, argv, "rbm-sample");
    sample_opts o = {0};
    o.steps = DEFAULT_STEPS;
    o.burn_in = -1;
    o.seed = 1;
    long count = DEFAULT_COUNT, threads = 0;
    int count_set = 0, force = 0, allow_real = 0;
    double length = DEFAULT_LENGTH;
    int length_set = 0;
    const char *clamp_cols = NULL, *clamp_mask = NULL, *clamp_groups = NULL;
    static const struct option lopts[] = {
        {"count", required_argument, NULL, 'n'},
        {"steps", required_argument, NULL, OPT_STEPS},
        {"burn-in", required_argument, NULL, OPT_BURN},
        {"every", required_argument, NULL, OPT_EVERY},
        {"means", no_argument, NULL, OPT_MEANS},
        {"seed", required_argument, NULL, 's'},
        {"length", required_argument, NULL, 'D'},
        {"clamp", required_argument, NULL, OPT_CLAMP},
        {"clamp-mask", required_argument, NULL, OPT_CMASK},
        {"clamp-group", required_argument, NULL, OPT_CGROUP},
        {"allow-real", no_argument, NULL, OPT_ALLOW_REAL},
        {"modality", required_argument, NULL, 'm'},
        {"generate", required_argument, NULL, 'g'},
        {"threads", required_argument, NULL, 'j'},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        CLI_STREAM_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    static cli_modal mm;
    const char *generate = NULL;
    while ((c = getopt_long(argc, argv, ":n:s:D:m:g:j:fqh", lopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            count = cli_long(optarg, 1, 1L << 40, "count");
            count_set = 1;
            break;
        case OPT_STEPS: o.steps = cli_long(optarg, 1, 1L << 40, "steps"); break;
        case OPT_BURN: o.burn_in = cli_long(optarg, 0, 1L << 40, "burn-in"); break;
        case OPT_EVERY: o.every = cli_long(optarg, 0, 1L << 40, "every"); break;
        case OPT_MEANS: o.means = 1; break;
        case 's': o.seed = cli_u64(optarg, "seed"); break;
        case 'D':
            length = (double)cli_long(optarg, 1, 1L << 30, "document length");
            length_set = 1;
            break;
        case OPT_CLAMP: clamp_cols = optarg; break;
        case OPT_CMASK: clamp_mask = optarg; break;
        case OPT_CGROUP: clamp_groups = optarg; break;
        case OPT_ALLOW_REAL: allow_real = 1; break;
        case 'm': cli_modal_add(&mm, optarg); break;
        case 'g': generate = optarg; break;
        case 'j': threads = cli_long(optarg, 0, 1024, "thread count"); break;
        case 'f': force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(); cli_close_stdout(); return 0;
        case 'V': cli_version();
        default:
            if (cli_stream_option(c, optarg))
                break;
            cli_option_error(c, argv);
        }
    }
    const char *model_path, *in_path;
    cli_model_operands(argc, argv, &model_path, &in_path);
    int have_input = in_path != NULL;
    if (o.burn_in < 0)
        o.burn_in = o.every ? o.steps / 2 : 0;
    if (o.every && o.burn_in + o.every > o.steps)
        cli_usage_error("--burn-in %ld plus --every %ld exceeds --steps %ld: "
                        "nothing to emit", o.burn_in, o.every, o.steps);
    if ((clamp_cols || clamp_mask || clamp_groups) && !have_input)
        cli_usage_error("clamping needs an INPUT stream to take the clamped "
                        "values from");
    if (length_set && have_input)
        cli_usage_error("--length applies only to random starts (no INPUT)");
    if (threads > 0)
        gemm_init((int)threads);
    if ((mm.n > 0) != (generate != NULL))
        cli_usage_error(mm.n ? "--modality needs --generate NAME (the "
                               "modality to sample)"
                             : "--generate needs the given modalities "
                               "(--modality NAME=DATA)");
    if (mm.n && (have_input || clamp_cols || clamp_mask || clamp_groups ||
                 length_set))
        cli_usage_error("with --modality the data comes from the modality "
                        "streams (no INPUT, --clamp or --length)");

    /* the model: an RBM samples here, a DBN or DBM in deep_sampler */
    char err[400];
    model *md = model_load(model_path, err, sizeof err);
    if (!md)
        cli_die("%s", err);
    if (mm.n) {
        if (allow_real)
            mm.allow_real = 1;
        return modal_main(md, &o, &mm, generate,
                          count_set ? count : 1L << 40, force, model_path);
    }
    if (md->kind == MODEL_MDBN)
        cli_usage_error("%s: a multimodal DBN; sample it with --modality "
                        "NAME=DATA --generate NAME", model_path);
    rbm *m = md->rbm;
    int deep = md->kind != MODEL_RBM;
    bm_layer L0 = model_layer(md, 0);
    int V = L0.n;
    if (length_set && L0.unit != BM_REPSOFTMAX)
        cli_usage_error("--length applies only to replicated-softmax visible "
                        "units");

    /* the clamp set (V) */
    unsigned char *clamp = NULL;
    if (clamp_cols || clamp_mask || clamp_groups) {
        clamp = calloc((size_t)V, 1);
        if (!clamp)
            cli_die("out of memory");
        if (L0.unit == BM_REPSOFTMAX)
            cli_usage_error("clamping is not supported for replicated-softmax "
                            "visible units");
        if (clamp_cols)
            cli_parse_ranges(clamp_cols, "--clamp", V, 1, clamp);
        if (clamp_groups) {
            if (L0.unit != BM_SOFTMAX)
                cli_usage_error("--clamp-group needs softmax visible units");
            int K = L0.group;
            cli_parse_ranges(clamp_groups, "--clamp-group", V / K, K, clamp);
        }
        if (clamp_mask)
            read_mask(clamp_mask, V, clamp);
        if (L0.unit == BM_SOFTMAX) {
            int K = L0.group;
            for (int g = 0; g < V; g += K)
                for (int i = 1; i < K; i++)
                    if (clamp[g + i] != clamp[g])
                        cli_usage_error("clamped columns must cover whole "
                                        "softmax groups of %d", K);
        }
    }

    sampler s;
    deep_sampler ds;
    if (deep)
        deep_init(&ds, md, &o, clamp);
    else
        sampler_init(&s, m, &o, clamp);
    int block = deep ? ds.B : s.B;

    tz_header oh;
    tz_header_init(&oh);
    uint64_t dim = (uint64_t)V;
    tz_header_set_shape(&oh, TZ_F32, 1, &dim);
    const char *base = strrchr(model_path, '/');
    base = base ? base + 1 : model_path;
    if (tz_attr_set_s(&oh, "sample.model", base) ||
        tz_attr_set_i(&oh, "sample.seed", (int64_t)o.seed) ||
        tz_attr_set_i(&oh, "sample.steps", o.steps) ||
        tz_attr_set_i(&oh, "sample.burn_in", o.burn_in) ||
        tz_attr_set_i(&oh, "sample.every", o.every) ||
        tz_attr_set_s(&oh, "sample.output", o.means ? "means" : "samples"))
        cli_die("out of memory");

    tz_writer *w;
    uint64_t chain = 0;
    if (!have_input) {
        w = cli_writer_stdout(force);
        int rc = tz_writer_begin(w, &oh);
        if (rc)
            cli_die_writer("", w, rc);
        while (chain < (uint64_t)count) {
            int B = (int)((uint64_t)count - chain < (uint64_t)block
                          ? (uint64_t)count - chain : (uint64_t)block);
            if (deep) {
                for (int b = 0; b < B; b++)
                    chain_rng(&ds.base, chain + b, &ds.rng[b]);
                deep_start(&ds, B, 0, (long)length);
                deep_run_block(&ds, B);
                int rc2 = tz_write(w, ds.out, (size_t)B * (size_t)ds.n_emit);
                if (rc2)
                    cli_die_writer("", w, rc2);
                chain += B;
                continue;
            }
            for (int b = 0; b < B; b++) {
                chain_rng(&s.base, chain + b, &s.rng[b]);
                random_start(&s, b, (float)length);
            }
            run_block(&s, B);
            write_block(w, &s, B);
            chain += B;
        }
    } else {
        FILE *in = cli_open_in(in_path);
        tz_reader *r = cli_reader(in, in_path);
        const tz_header *ih = tz_reader_header(r);
        uint64_t cols = tz_record_elems(ih);
        if (cols != (uint64_t)V)
            cli_die("input has %llu columns, model expects %d",
                    (unsigned long long)cols, V);
        const char *modality = tz_attr_get_s(ih, "modality.name", NULL);
        if (modality && tz_attr_set_s(&oh, "modality.name", modality))
            cli_die("out of memory");
        w = cli_writer_stdout(force);
        int rc = tz_writer_begin(w, &oh);
        if (rc)
            cli_die_writer("", w, rc);
        const char *ctx = strcmp(in_path, "-") ? in_path : "";
        for (;;) {
            size_t want = (size_t)block;
            if (count_set && (uint64_t)count - chain < want)
                want = (size_t)((uint64_t)count - chain);
            if (want == 0)
                break;
            float *vbuf = deep ? deep_visible(&ds) : s.v;
            long n = tz_read_f32(r, vbuf, want);
            if (n < 0)
                cli_die_reader(ctx, r, (int)n);
            if (n == 0)
                break;
            for (long b = 0; b < n; b++) {
                const char *bad = bm_layer_check(&L0, 1, vbuf + (size_t)b * V,
                                                 allow_real);
                if (bad)
                    cli_die("input row %llu: %s%s",
                            (unsigned long long)(chain + b + 1), bad,
                            strstr(bad, "non-binary") && !allow_real
                                ? " (--allow-real accepts values in [0, 1])"
                                : "");
                if (deep)
                    chain_rng(&ds.base, chain + b, &ds.rng[b]);
                else
                    chain_rng(&s.base, chain + b, &s.rng[b]);
            }
            if (deep) {
                deep_start(&ds, (int)n, 1, 0);
                deep_run_block(&ds, (int)n);
                rc = tz_write(w, ds.out, (size_t)n * (size_t)ds.n_emit);
                if (rc)
                    cli_die_writer("", w, rc);
            } else {
                run_block(&s, (int)n);
                write_block(w, &s, (int)n);
            }
            chain += (uint64_t)n;
        }
        if (!count_set || chain < (uint64_t)count) {
            rc = tz_expect_end(r);
            if (rc)
                cli_die_reader(ctx, r, rc);
        }
        tz_reader_free(r);
        cli_close_in(in);
    }
    cli_finish_writer(w);

    tz_header_clear(&oh);
    if (deep)
        deep_free(&ds);
    else
        sampler_free(&s);
    free(clamp);
    model_free(md);
    return 0;
}
