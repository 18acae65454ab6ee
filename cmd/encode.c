/* encode.c - map rows through a trained model: visible rows in, hidden
 * probabilities (or samples) out; with --down, hidden rows in, visible
 * means (reconstructions) out.
 *
 *   encode MODEL [--sample] [--down] [INPUT]  > codes.tz
 *
 * The input is read, mapped and written in batches of --batch rows, so
 * memory does not grow with the stream.  A reader thread decodes the next
 * batch while the current one is mapped, the rows of a batch are split
 * among --threads threads (par.h), each calling single-threaded BLAS inside
 * lib/rbm.c, and the tz writer compresses on a thread of its own.  The model type (the model.type attribute) is looked at
 * in one place, encoder_open(); each type supplies an `encoder` (widths, a
 * row check and a batch map), so deeper models plug in there.
 */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "gemm.h"
#include "model.h"
#include "par.h"
#include "rbm.h"
#include "rng.h"
#include "tz.h"

#define DEFAULT_BATCH 1024

typedef struct {
    int sample;          /* draw samples instead of means */
    int down;            /* hidden -> visible */
    double length;       /* replicated softmax document length for --down */
    int length_set;
    int allow_real;      /* real values for bernoulli visible units */
    uint64_t seed;
    int threads;         /* >= 1 */
    int batch;           /* rows per batch at most */
    const char *layer;   /* deep models: the layer to output, or NULL */
    int mf_iters;        /* DBM mean-field sweeps at most */
    const char *clamp_cols;  /* DBM: the observed visible units, or NULL */
    double mf_tol;       /* ... and the tolerance */
} encode_opts;

/* A model as a row map: in (B, in_dim) -> out (B, out_dim). */
typedef struct encoder encoder;
struct encoder {
    const char *type;      /* model.type */
    int in_dim, out_dim;
    const char *in_what;   /* "visible" or "hidden": names in_dim's units */
    const char *layer;     /* deep models: the output layer's name */
    int *allow_real;       /* set to 1 when the input holds probabilities */
    int probs_out;         /* the output rows are probabilities in [0,1] */
    /* NULL, or a message about a problem in rows in (B, in_dim) */
    const char *(*check)(encoder *e, int B, const float *in);
    void (*map)(encoder *e, int B, const float *in, float *out);
    void (*free)(encoder *e);
    void *impl;
};

/* ---- RBM ------------------------------------------------------------------ */

typedef struct {
    rbm *m;
    encode_opts o;
    rng_t rng;
    par_pool *pool;  /* the rows of a batch are split among its threads */
    float *d;        /* (batch) document lengths for --down */
    int dcap;
} rbm_enc;

/* GNU C vectors (gcc, clang): four lanes, compared lane by lane. */
typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));

static const char *check_finite(int n, const float *x)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return "NaN or infinite value";
    return NULL;
}

static const char *rbm_enc_check(encoder *e, int B, const float *in)
{
    rbm_enc *s = e->impl;
    if (s->o.down)
        return check_finite(B * e->in_dim, in);
    if (s->m->vis == RBM_BERNOULLI && !s->o.allow_real) {
        /* The common case, binary rows, in one branch-free pass (NaN and
         * infinities fail both tests); rbm_check_data names any problem. */
        size_t n = (size_t)B * (size_t)e->in_dim, i = 0;
        v4i bad = {0, 0, 0, 0};
        for (; i + 4 <= n; i += 4) {
            v4f x;
            memcpy(&x, in + i, sizeof x);
            bad |= (x != 0.0f) & (x != 1.0f);
        }
        int any = bad[0] | bad[1] | bad[2] | bad[3];
        for (; i < n; i++)
            any |= (in[i] != 0.0f) & (in[i] != 1.0f);
        if (!any)
            return NULL;
    }
    return rbm_check_data(s->m, B, in, s->o.allow_real);
}

/* One thread's rows [a, b) of a batch: E[h|v] (up) or E[v|h] (down). */
typedef struct {
    rbm_enc *s;
    int B;
    const float *in;      /* (B, in_dim) */
    float *out;           /* (B, out_dim) */
    volatile int failed;  /* a thread ran out of memory */
} map_job;

static void map_part(void *arg, int id, int T)
{
    map_job *J = arg;
    const rbm *m = J->s->m;
    int a = par_split(J->B, T, id), n = par_split(J->B, T, id + 1) - a;
    if (!J->s->o.down) {
        if (rbm_hidden_probs(m, n, J->in + (size_t)a * m->nv,
                             J->out + (size_t)a * m->nh))
            J->failed = 1;
    } else
        rbm_visible_probs(m, n, J->in + (size_t)a * m->nh, J->s->d + a,
                          J->out + (size_t)a * m->nv);
}

static void rbm_enc_map(encoder *e, int B, const float *in, float *out)
{
    rbm_enc *s = e->impl;
    map_job J = {s, B, in, out, 0};
    if (!s->o.down) {
        /* out (B, H) = E[h | v], threads; a sample of h on one stream, so
         * that samples do not depend on the thread count */
        par_run(s->pool, map_part, &J);
        if (J.failed)
            cli_die("out of memory");
        if (s->o.sample)
            rbm_sample_hidden(s->m, B, out, out, &s->rng);
        return;
    }
    if (B > s->dcap) {
        float *d = realloc(s->d, (size_t)B * sizeof *d);
        if (!d)
            cli_die("out of memory");
        s->d = d;
        s->dcap = B;
    }
    for (int b = 0; b < B; b++)
        s->d[b] = (float)s->o.length;
    /* out (B, V) = E[v | h] or a sample of v */
    par_run(s->pool, map_part, &J);
    if (s->o.sample && rbm_sample_visible(s->m, B, out, s->d, out, &s->rng))
        cli_die("out of memory");
}

static void rbm_enc_free(encoder *e)
{
    rbm_enc *s = e->impl;
    par_free(s->pool);
    rbm_free(s->m);
    free(s->d);
    free(s);
}

static encoder *rbm_encoder_open(model *md, const encode_opts *o,
                                 encoder *e)
{
    rbm *m = md->rbm;
    md->rbm = NULL;
    if (o->layer && strcmp(o->layer, "h") != 0 && strcmp(o->layer, "1") != 0)
        cli_usage_error("--layer %s: an RBM's codes are its hidden layer 'h' "
                        "(use --down for the visible layer)", o->layer);
    if (o->length_set && !(o->down && m->vis == RBM_REPSOFTMAX))
        cli_usage_error("--length applies only with --down to a model with "
                        "replicated-softmax visible units");
    rbm_enc *s = calloc(1, sizeof *s);
    if (!s)
        cli_die("out of memory");
    s->m = m;
    s->o = *o;
    rng_seed(&s->rng, o->seed);
    s->pool = par_new(o->threads);
    if (!s->pool)
        cli_die("cannot start %d threads", o->threads);
    e->in_dim = o->down ? m->nh : m->nv;
    e->out_dim = o->down ? m->nv : m->nh;
    e->in_what = o->down ? "hidden" : "visible";
    e->allow_real = &s->o.allow_real;
    e->probs_out = !o->sample &&
        (o->down ? m->vis == RBM_BERNOULLI : m->hid == RBM_BERNOULLI);
    e->check = rbm_enc_check;
    e->map = rbm_enc_map;
    e->free = rbm_enc_free;
    e->impl = s;
    return e;
}

/* ---- deep models: DBN up-pass, DBM mean-field ------------------------------ */

/* One thread's buffers for rows of a batch. */
typedef struct {
    bm_state st;              /* DBM */
    bm_scratch *w;            /* DBM */
    float *x[BM_MAX_LAYERS];  /* DBN: layers 1..top */
} deep_part;

typedef struct {
    model *m;
    encode_opts o;
    int layer;                /* the output layer */
    bm_layer in, out;         /* the input and output layers */
    unsigned char clamp[BM_MAX_LAYERS];
    unsigned char *held;      /* --clamp: observed units of layer 0 */
    float *neutral;           /* their start where unobserved: the mean
                                 from the bias alone */
    rng_t rng;
    par_pool *pool;
    deep_part *part;          /* (threads) */
    double *cdf;
    volatile int failed;      /* a thread ran out of memory */
} deep_enc;

static const char *deep_check(encoder *e, int B, const float *in)
{
    deep_enc *s = e->impl;
    return bm_layer_check(&s->in, B, in, s->o.allow_real);
}

typedef struct {
    deep_enc *s;
    int B;
    const float *in;
    float *out;
} deep_job;

static void deep_part_run(void *arg, int id, int T)
{
    deep_job *J = arg;
    deep_enc *s = J->s;
    deep_part *p = &s->part[id];
    int a = par_split(J->B, T, id), n = par_split(J->B, T, id + 1) - a;
    if (n <= 0)
        return;
    const float *in = J->in + (size_t)a * s->in.n;
    float *out = J->out + (size_t)a * s->out.n;
    if (s->m->kind == MODEL_DBN) {
        if (dbn_up(s->m->dbn, n, in, s->layer, p->x, NULL, NULL))
            s->failed = 1;
        memcpy(out, p->x[s->layer], (size_t)n * s->out.n * sizeof *out);
        return;
    }
    const bm_net *net = s->m->net;
    bm_state_set(net, &p->st, 0, n, in);
    if (s->held) {
        /* units outside --clamp start from their bias, then are inferred
         * with the hidden layers */
        int V = net->L[0].n;
        for (int b = 0; b < n; b++)
            for (int i = 0; i < V; i++)
                if (!s->held[i])
                    p->st.x[0][(size_t)b * V + i] = s->neutral[i];
        bm_state_sync(net, &p->st, 0, 0, n);
        unsigned char start[BM_MAX_LAYERS];
        memcpy(start, s->clamp, sizeof start);
        start[0] = 1;
        bm_bottom_up(net, &p->st, 0, n, start, p->w);
        const unsigned char *held[BM_MAX_LAYERS] = {s->held};
        bm_meanfield_held(net, &p->st, 0, n, s->clamp, held, s->o.mf_iters,
                          (float)s->o.mf_tol, 0, p->w);
    } else {
        bm_bottom_up(net, &p->st, 0, n, s->clamp, p->w);
        bm_meanfield(net, &p->st, 0, n, s->clamp, s->o.mf_iters,
                     (float)s->o.mf_tol, 0, p->w);
    }
    memcpy(out, p->st.x[s->layer], (size_t)n * s->out.n * sizeof *out);
}

static void deep_map(encoder *e, int B, const float *in, float *out)
{
    deep_enc *s = e->impl;
    deep_job J = {s, B, in, out};
    par_run(s->pool, deep_part_run, &J);
    if (s->failed)
        cli_die("out of memory");
    if (s->o.sample)      /* one stream: samples do not depend on threads */
        bm_layer_sample(&s->out, B, out, NULL, out, &s->rng, s->cdf);
}

static void deep_free(encoder *e)
{
    deep_enc *s = e->impl;
    par_free(s->pool);
    for (int i = 0; i < s->o.threads; i++) {
        bm_state_free(&s->part[i].st);
        bm_scratch_free(s->part[i].w);
        for (int l = 0; l < BM_MAX_LAYERS; l++)
            free(s->part[i].x[l]);
    }
    free(s->part);
    free(s->cdf);
    free(s->held);
    free(s->neutral);
    model_free(s->m);
    free(s);
}

static encoder *deep_encoder_open(model *m, const encode_opts *o, encoder *e)
{
    if (o->down)
        cli_usage_error("--down applies to RBMs (a %s generates with "
                        "rbm-sample)", model_kind_name(m->kind));
    if (o->length_set)
        cli_usage_error("--length applies only with --down");
    deep_enc *s = calloc(1, sizeof *s);
    if (!s)
        cli_die("out of memory");
    s->m = m;
    s->o = *o;
    int nl = model_layers(m);
    if (o->layer) {
        s->layer = model_find_layer(m, o->layer);
        if (s->layer < 0) {
            char names[256] = "";
            for (int l = 0; l < nl; l++) {
                bm_layer L = model_layer(m, l);
                size_t k = strlen(names);
                snprintf(names + k, sizeof names - k, "%s%s", l ? ", " : "",
                         L.name);
            }
            cli_usage_error("--layer %s: the model has no such layer (its "
                            "layers: %s)", o->layer, names);
        }
    } else {
        /* the top layer: a DBM's label layer is not its top */
        s->layer = nl - 1;
        if (m->kind == MODEL_DBM && strcmp(m->net->L[nl - 1].name, "label") == 0)
            s->layer = nl - 2;
    }
    s->in = model_layer(m, 0);
    s->out = model_layer(m, s->layer);
    s->clamp[0] = 1;
    if (o->clamp_cols) {
        if (m->kind != MODEL_DBM)
            cli_usage_error("--clamp applies to DBMs (a DBN's up-pass needs "
                            "every visible unit)");
        if (s->in.unit == BM_REPSOFTMAX)
            cli_usage_error("--clamp is not supported for replicated-softmax "
                            "visible units");
        s->held = calloc((size_t)s->in.n, 1);
        s->neutral = calloc((size_t)s->in.n, sizeof *s->neutral);
        if (!s->held || !s->neutral)
            cli_die("out of memory");
        cli_parse_ranges(o->clamp_cols, "--clamp", s->in.n, 1, s->held);
        bm_layer_mean(&s->in, 1, s->neutral, NULL);
        s->clamp[0] = 0;
    }
    if (s->layer == 0 && !s->held)
        cli_usage_error("--layer %s is the visible layer, the input",
                        o->layer);
    rng_seed(&s->rng, o->seed);
    s->pool = par_new(o->threads);
    s->part = calloc((size_t)o->threads, sizeof *s->part);
    s->cdf = malloc((size_t)s->out.n * sizeof *s->cdf);
    if (!s->pool || !s->part || !s->cdf)
        cli_die("out of memory");
    int rows = o->batch / o->threads + 1;
    for (int i = 0; i < o->threads; i++) {
        deep_part *p = &s->part[i];
        if (m->kind == MODEL_DBM) {
            if (bm_state_alloc(m->net, &p->st, rows) ||
                !(p->w = bm_scratch_new(m->net, rows)))
                cli_die("out of memory");
        } else {
            for (int l = 1; l <= s->layer; l++)
                if (!(p->x[l] = malloc((size_t)rows *
                                       dbn_layer_width(m->dbn, l) *
                                       sizeof(float))))
                    cli_die("out of memory");
        }
    }
    if (s->out.unit == BM_GAUSSIAN || s->out.unit == BM_REPSOFTMAX)
        cli_usage_error("--layer %s: %s units have no mean-field code here",
                        s->out.name, bm_unit_name(s->out.unit));
    e->in_dim = s->in.n;
    e->out_dim = s->out.n;
    e->in_what = "visible";
    e->layer = s->out.name;
    e->allow_real = &s->o.allow_real;
    e->probs_out = !o->sample && s->out.unit == BM_BERNOULLI;
    e->check = deep_check;
    e->map = deep_map;
    e->free = deep_free;
    e->impl = s;
    return e;
}

/* ---- model type dispatch --------------------------------------------------- */

static encoder *encoder_open(model *m, const encode_opts *o)
{
    static encoder e;
    e.type = model_kind_name(m->kind);
    if (m->kind == MODEL_RBM)
        return rbm_encoder_open(m, o, &e);
    return deep_encoder_open(m, o, &e);
}

/* ---- provenance ------------------------------------------------------------ */

/* FNV-1a 64 over the tensors' names, dtypes, shapes and data: identifies
 * the parameters the codes came from, whatever the model file is called. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t model_hash(const tz_model *mf)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < mf->n; i++) {
        const tz_tensor *t = &mf->t[i];
        h = fnv1a(h, t->h.name, strlen(t->h.name) + 1);
        unsigned char meta[8 + 8 * (TZ_RANK_MAX + 1)];
        size_t k = 0;
        uint64_t v[TZ_RANK_MAX + 2];
        v[k++] = (uint64_t)t->h.dtype;
        v[k++] = t->count;
        for (int j = 0; j < t->h.rank; j++)
            v[k++] = t->h.dims[j];
        for (size_t j = 0; j < k; j++)
            for (int b = 0; b < 8; b++)
                meta[8 * j + b] = (unsigned char)(v[j] >> (8 * b));
        h = fnv1a(h, meta, 8 * k);
        h = fnv1a(h, t->data, (size_t)(t->count * tz_record_bytes(&t->h)));
    }
    return h;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- reading ahead ----------------------------------------------------------- */

/* A reader thread fills two batch buffers in turn, so that decoding batch
 * i+1 overlaps mapping batch i.  Buffer i is the reader's while full[i] is
 * 0 and the main thread's while it is 1. */
typedef struct {
    tz_reader *r;
    size_t batch;               /* rows a buffer holds */
    float *buf[2];              /* (batch, in_dim) */
    long n[2];                  /* rows read into buf[i]; 0 end, < 0 error */
    int full[2];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
} prefetch;

static void *prefetch_main(void *arg)
{
    prefetch *p = arg;
    for (int i = 0;; i ^= 1) {
        pthread_mutex_lock(&p->mu);
        while (p->full[i])
            pthread_cond_wait(&p->cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
        long n = tz_read_f32(p->r, p->buf[i], p->batch);
        pthread_mutex_lock(&p->mu);
        p->n[i] = n;
        p->full[i] = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (n <= 0)
            return NULL;      /* end of the stream, or an error */
    }
}

/* Wait for buffer i; returns its row count (0 at the end, < 0 error). */
static long prefetch_take(prefetch *p, int i)
{
    pthread_mutex_lock(&p->mu);
    while (!p->full[i])
        pthread_cond_wait(&p->cv, &p->mu);
    long n = p->n[i];
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Hand buffer i back to the reader. */
static void prefetch_give(prefetch *p, int i)
{
    pthread_mutex_lock(&p->mu);
    p->full[i] = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- main ------------------------------------------------------------------ */

/* ---- multimodal: --modality NAME=DATA ---------------------------------------- */

static int multimodal_main(model *md, const encode_opts *o, cli_modal *mm,
                           const char *model_path, uint64_t mhash, int force)
{
    if (md->kind != MODEL_DBM && md->kind != MODEL_MDBN)
        cli_usage_error("--modality needs a multimodal model (a DBM or an "
                        "MDBN from joint or stack), not model.type %s",
                        model_kind_name(md->kind));
    if (o->down)
        cli_usage_error("--down applies to RBMs; --modality infers any layer "
                        "(--layer)");
    const bm_net *net = md->net;
    int out = -1;
    if (o->layer) {
        out = model_find_layer(md, o->layer);
        if (out < 0)
            cli_usage_error("--layer %s: the model has no such layer",
                            o->layer);
    } else {
        out = bm_find_layer(net, "joint");
        if (out < 0) {           /* a DBM from stack: its top hidden layer */
            for (int l = 0; l < net->nl; l++)
                if (!net->vis[l])
                    out = l;
        }
    }
    int B = o->batch;
    cli_modal_open(mm, net, B);
    if (o->allow_real)
        mm->allow_real = 1;
    const bm_layer *Lo = &net->L[out];

    bm_state st;
    bm_scratch *w = bm_scratch_new(net, B);
    if (!w || bm_state_alloc(net, &st, B))
        cli_die("out of memory");
    float *y = malloc((size_t)B * Lo->n * sizeof *y);
    if (!y)
        cli_die("out of memory");
    rng_t rng;
    rng_seed(&rng, o->seed);

    tz_header oh;
    tz_header_init(&oh);
    uint64_t dim = (uint64_t)Lo->n;
    char hex[17], list[CLI_MAX_MODALITIES * 33] = "";
    for (int i = 0; i < mm->n; i++) {
        strcat(list, mm->name[i]);
        if (i + 1 < mm->n)
            strcat(list, ",");
    }
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)mhash);
    int probs = !o->sample && Lo->unit == BM_BERNOULLI;
    if (tz_header_set_shape(&oh, TZ_F32, 1, &dim) ||
        tz_attr_set_s(&oh, "encode.model", base_name(model_path)) ||
        tz_attr_set_s(&oh, "encode.model_hash", hex) ||
        tz_attr_set_s(&oh, "encode.mode", o->sample ? "infer-sample"
                                                    : "infer-mean") ||
        tz_attr_set_s(&oh, "encode.layer", Lo->name) ||
        tz_attr_set_s(&oh, "encode.modalities", list) ||
        (o->sample && tz_attr_set_i(&oh, "encode.seed", (int64_t)o->seed)) ||
        (net->vis[out] && tz_attr_set_s(&oh, "modality.name", Lo->name)) ||
        (probs && tz_attr_set_s(&oh, "data.values", "probabilities")))
        cli_die("out of memory");
    tz_writer *wr = cli_writer_stdout(force);
    int rc = tz_writer_begin(wr, &oh);
    if (rc)
        cli_die_writer("", wr, rc);
    int n;
    while ((n = cli_modal_read(mm, net, B)) > 0) {
        for (int r = 0; r < n;) {
            unsigned char clamp[BM_MAX_LAYERS];
            int r1 = cli_modal_run(mm, net, n, r, &st, clamp, 0);
            if (md->kind == MODEL_MDBN) {
                mdbn_infer(md->mdbn, &st, r, r1 - r, clamp, o->mf_iters,
                           (float)o->mf_tol, o->sample, &rng, w);
            } else {
                bm_bottom_up(net, &st, r, r1 - r, clamp, w);
                bm_meanfield(net, &st, r, r1 - r, clamp, o->mf_iters,
                             (float)o->mf_tol, 0, w);
                for (int k = 0; o->sample && k < o->mf_iters; k++)
                    bm_gibbs_sweep(net, &st, r, r1 - r, clamp, &rng, w);
            }
            r = r1;
        }
        for (int i = 0; i < n; i++) {
            float *yo = y + (size_t)mm->order[i] * Lo->n;
            memcpy(yo, st.x[out] + (size_t)i * Lo->n, (size_t)Lo->n * sizeof *yo);
            if (Lo->unit == BM_REPSOFTMAX) {   /* word probabilities x D */
                double s = 0;
                for (int j = 0; j < Lo->n; j++)
                    s += yo[j];
                float k = s > 0 ? (float)(o->length / s) : 0;
                for (int j = 0; j < Lo->n; j++)
                    yo[j] *= k;
            }
        }
        rc = tz_write(wr, y, (size_t)n);
        if (rc)
            cli_die_writer("", wr, rc);
    }
    cli_finish_writer(wr);
    cli_modal_close(mm);
    tz_header_clear(&oh);
    free(y);
    bm_state_free(&st);
    bm_scratch_free(w);
    model_free(md);
    return 0;
}

static void usage(void)
{
    printf(
"Usage: %s [OPTION]... MODEL [INPUT]\n"
"       %s [OPTION]... MODEL -m NAME=DATA [-m NAME=DATA]...\n"
"Map rows of INPUT (a .tz stream; stdin when absent or '-') through MODEL\n"
"(an RBM, DBN or DBM): visible rows in, hidden probabilities out (f32 rows\n"
"of the hidden layer's width).\n"
"\n"
"  -S, --sample          output samples: 0/1 for bernoulli hidden units,\n"
"                        mean + N(0,1) noise for gaussian ones (default: means)\n"
"  -d, --down            hidden rows in, visible means E[v|h] out (width V):\n"
"                        reconstructions; with --sample, visible samples\n"
"  -D, --length D        with --down and replicated-softmax visible units:\n"
"                        the document length, means are D * p(word|h) and a\n"
"                        sample has D words (default: 1, the word distribution)\n"
"      --allow-real      accept values other than 0/1 for bernoulli visible\n"
"                        units (default: an error)\n"
"  -L, --layer NAME      deep models: the layer to output, by name (v, h1,\n"
"                        h2, ..., label) or number (default: the top hidden\n"
"                        layer); DBN: the recognition up-pass, DBM: mean-field\n"
"                        posteriors with the visible layer clamped\n"
"  -m, --modality NAME=DATA  multimodal models (joint, stack --labels): the\n"
"                        rows of modality NAME, read in step with the other\n"
"                        -m streams instead of INPUT; absent modalities (not\n"
"                        given, or a row of NaN) are inferred by mean-field\n"
"                        (--sample: then Gibbs); --layer picks any layer, a\n"
"                        modality's inferred means included (default: joint)\n"
"      --clamp COLS      DBM: only the visible units COLS are observed (a list\n"
"                        of columns and half-open ranges such as 0:14,28:42);\n"
"                        the others are inferred with the hidden layers, and\n"
"                        --layer v outputs their means (default: all observed)\n"
"      --mf-iters N      DBM: mean-field sweeps at most (default: 50)\n"
"      --mf-tol X        DBM: stop when no mean changes by more than X\n"
"                        (default: 1e-06)\n"
"  -s, --seed N          random seed for --sample (default: 1)\n"
"  -b, --batch N         rows per batch (default: %d)\n"
"  -j, --threads N       threads; 0 = every CPU (default: 0)\n"
"  -f, --force           write binary output to a terminal\n"
"  -q, --quiet           no progress on stderr\n"
CLI_STREAM_HELP
"  -h, --help            show this help and exit\n"
"      --version         show the version and exit\n"
"\n"
"The output carries the attributes encode.model (MODEL's file name),\n"
"encode.model_hash (FNV-1a 64 of its tensors) and encode.mode, and keeps\n"
"the input's modality.name.  Samples are deterministic for a given seed\n"
"and batch size.\n",
        cli_prog, cli_prog, DEFAULT_BATCH);
}

enum { OPT_ALLOW_REAL = 256, OPT_MF_ITERS, OPT_MF_TOL, OPT_CLAMP };

int main(int argc, char **argv)
{
    cli_init(argc, argv, "encode");
    encode_opts o = {0};
    o.seed = 1;
    o.length = 1;
    o.mf_iters = 50;
    o.mf_tol = 1e-6;
    long batch = DEFAULT_BATCH, threads = 0;
    int force = 0;
    static const struct option lopts[] = {
        {"sample", no_argument, NULL, 'S'},
        {"down", no_argument, NULL, 'd'},
        {"length", required_argument, NULL, 'D'},
        {"allow-real", no_argument, NULL, OPT_ALLOW_REAL},
        {"layer", required_argument, NULL, 'L'},
        {"modality", required_argument, NULL, 'm'},
        {"clamp", required_argument, NULL, OPT_CLAMP},
        {"mf-iters", required_argument, NULL, OPT_MF_ITERS},
        {"mf-tol", required_argument, NULL, OPT_MF_TOL},
        {"seed", required_argument, NULL, 's'},
        {"batch", required_argument, NULL, 'b'},
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
    while ((c = getopt_long(argc, argv, ":SdD:L:m:s:b:j:fqh", lopts, NULL)) != -1) {
        switch (c) {
        case 'S': o.sample = 1; break;
        case 'd': o.down = 1; break;
        case 'D':
            o.length = cli_double(optarg, 1e-6, 1e9, "document length");
            o.length_set = 1;
            break;
        case OPT_ALLOW_REAL: o.allow_real = 1; break;
        case 'L': o.layer = optarg; break;
        case 'm': cli_modal_add(&mm, optarg); break;
        case OPT_CLAMP: o.clamp_cols = optarg; break;
        case OPT_MF_ITERS: o.mf_iters = (int)cli_long(optarg, 1, 100000, "mean-field iterations"); break;
        case OPT_MF_TOL: o.mf_tol = cli_double(optarg, 0, 1, "mean-field tolerance"); break;
        case 's': o.seed = cli_u64(optarg, "seed"); break;
        case 'b': batch = cli_long(optarg, 1, 1 << 20, "batch size"); break;
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
    if (mm.n && in_path)
        cli_usage_error("give the data with --modality NAME=DATA, not as "
                        "INPUT '%s'", in_path);
    /* our threads split each batch, each running single-threaded BLAS */
    o.threads = threads > 0 ? (int)threads : par_cpu_count();
    o.batch = (int)batch;
    gemm_init(1);

    char err[400];
    model *md = model_load(model_path, err, sizeof err);
    if (!md)
        cli_die("%s", err);
    uint64_t mhash = model_hash(md->mf);
    if (o.clamp_cols && (md->kind != MODEL_DBM || mm.n))
        cli_usage_error(mm.n ? "--clamp holds units of INPUT; with --modality "
                               "an absent modality is a row of NaN"
                             : "--clamp applies to DBMs (a DBN's up-pass needs "
                               "every visible unit)");
    if (mm.n) {
        gemm_init(o.threads);
        return multimodal_main(md, &o, &mm, model_path, mhash, force);
    }
    if (md->kind == MODEL_MDBN)
        cli_usage_error("%s: a multimodal DBN; give its data with --modality "
                        "NAME=DATA", model_path);
    encoder *e = encoder_open(md, &o);

    FILE *in = cli_open_in(in_path);
    const char *in_name = in_path ? in_path : "-";
    tz_reader *r = cli_reader(in, in_name);
    const tz_header *ih = tz_reader_header(r);
    uint64_t cols = tz_record_elems(ih);
    if (cols != (uint64_t)e->in_dim)
        cli_die("input has %llu columns, model expects %d%s",
                (unsigned long long)cols, e->in_dim,
                o.down ? " (hidden units)" : "");

    /* probabilities from an upstream model are valid bernoulli input */
    if (tz_data_are_probabilities(ih)) {
        o.allow_real = 1;
        *e->allow_real = 1;
    }

    tz_header oh;
    tz_header_init(&oh);
    uint64_t dim = (uint64_t)e->out_dim;
    if (tz_header_set_shape(&oh, TZ_F32, 1, &dim))
        cli_die("output shape [%d] exceeds the stream limits", e->out_dim);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)mhash);
    const char *mode = o.down ? (o.sample ? "down-sample" : "down-mean")
                              : (o.sample ? "up-sample" : "up-mean");
    const char *modality = tz_attr_get_s(ih, "modality.name", NULL);
    if (tz_attr_set_s(&oh, "encode.model", base_name(model_path)) ||
        tz_attr_set_s(&oh, "encode.model_hash", hex) ||
        tz_attr_set_s(&oh, "encode.mode", mode) ||
        (o.sample && tz_attr_set_i(&oh, "encode.seed", (int64_t)o.seed)) ||
        (o.length_set && tz_attr_set_f(&oh, "encode.length", o.length)) ||
        (modality && tz_attr_set_s(&oh, "modality.name", modality)) ||
        (e->layer && tz_attr_set_s(&oh, "encode.layer", e->layer)) ||
        (e->probs_out && tz_attr_set_s(&oh, "data.values", "probabilities")))
        cli_die("out of memory");

    /* two input buffers (batch, in_dim), y (batch, out_dim); static, so
     * that they stay reachable (not reported as leaks) when a data error
     * exits */
    static prefetch pf;
    static float *y;
    pf.r = r;
    pf.batch = (size_t)batch;
    for (int i = 0; i < 2; i++)
        pf.buf[i] = malloc((size_t)batch * (size_t)e->in_dim * sizeof(float));
    y = malloc((size_t)batch * (size_t)e->out_dim * sizeof *y);
    if (!pf.buf[0] || !pf.buf[1] || !y)
        cli_die("out of memory");
    pthread_mutex_init(&pf.mu, NULL);
    pthread_cond_init(&pf.cv, NULL);
    if (pthread_create(&pf.th, NULL, prefetch_main, &pf) != 0)
        cli_die("cannot start a thread");

    tz_writer *w = cli_writer_stdout(force);
    int rc = tz_writer_begin(w, &oh);
    if (rc)
        cli_die_writer("", w, rc);
    uint64_t done = 0;
    time_t last = time(NULL);
    int progress = cli_progress_enabled();
    for (int cur = 0;; cur ^= 1) {
        long n = prefetch_take(&pf, cur);
        float *x = pf.buf[cur];
        if (n < 0)
            cli_die_reader(in_path ? in_path : "", r, (int)n);
        if (n == 0)
            break;
        const char *bad = e->check(e, (int)n, x);
        if (bad) {
            /* find the first bad row for the message */
            long i = 0;
            while (i < n - 1 && !e->check(e, 1, x + (size_t)i * e->in_dim))
                i++;
            bad = e->check(e, 1, x + (size_t)i * e->in_dim);
            cli_die("input row %llu: %s%s", (unsigned long long)(done + i + 1),
                    bad ? bad : "invalid values",
                    bad && strstr(bad, "non-binary") && !o.allow_real
                        ? " (--allow-real accepts values in [0, 1])" : "");
        }
        e->map(e, (int)n, x, y);
        prefetch_give(&pf, cur);
        rc = tz_write(w, y, (size_t)n);
        if (rc)
            cli_die_writer("", w, rc);
        done += (uint64_t)n;
        if (progress && time(NULL) != last) {
            last = time(NULL);
            fprintf(stderr, "\r%s: %llu rows", cli_prog, (unsigned long long)done);
        }
    }
    if (progress)
        fprintf(stderr, "\r%s: %llu rows\n", cli_prog, (unsigned long long)done);
    pthread_join(pf.th, NULL);
    pthread_mutex_destroy(&pf.mu);
    pthread_cond_destroy(&pf.cv);
    rc = tz_expect_end(r);
    if (rc)
        cli_die_reader(in_path ? in_path : "", r, rc);
    cli_finish_writer(w);

    free(pf.buf[0]);
    free(pf.buf[1]);
    free(y);
    tz_header_clear(&oh);
    tz_reader_free(r);
    cli_close_in(in);
    int deep = md->kind != MODEL_RBM;
    e->free(e);               /* a deep encoder owns md */
    if (!deep)
        model_free(md);
    return 0;
}
