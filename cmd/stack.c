/* stack - deep models from RBMs: compose a deep belief net (DBN) or a deep
 * Boltzmann machine (DBM) from greedily pretrained RBMs, fine-tune a DBN
 * with the up-down algorithm, and train a DBM jointly.
 *
 *   stack -o DBN L1.rbm L2.rbm ...                      compose a DBN
 *   stack --fine-tune -e N -o OUT DBN|L1.rbm... [DATA]  up-down fine-tuning
 *   stack --dbm -o DBM L1.rbm ... Ln.rbm                compose a DBM
 *   stack --dbm -e N -o DBM L1.rbm ... | DBM [DATA]     ... and train it
 *
 * Operands are told apart by content: a file whose first section carries
 * model.type is a model, the last operand otherwise is the data (without
 * one, the data is standard input).  Training follows rbm-train: the data
 * is held in memory, mini-batches are shuffled each epoch from --seed, the
 * model is written atomically, and SIGINT/SIGTERM stop at the end of the
 * batch with MODEL.ckpt, which --resume continues exactly.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bm.h"
#include "cli.h"
#include "dataset.h"
#include "dbn.h"
#include "gemm.h"
#include "model.h"
#include "par.h"
#include "rbm.h"
#include "rng.h"
#include "tz.h"

static void usage(void)
{
    printf(
"Usage: stack -o MODEL [OPTION]... L1.rbm L2.rbm ...\n"
"       stack --fine-tune -e N -o MODEL [OPTION]... DBN|L1.rbm... [DATA]\n"
"       stack --dbm -o MODEL [-e N] [OPTION]... L1.rbm ... Ln.rbm|DBM [DATA]\n"
"Compose greedily pretrained RBMs into a deep belief net (default) or a deep\n"
"Boltzmann machine (--dbm); fine-tune a DBN (--fine-tune) or train a DBM\n"
"jointly (--dbm with --epochs) on DATA (a tensor stream, or standard input).\n"
"\n"
"Model:\n"
"  -o, --output MODEL        model file to write (required)\n"
"      --dbm                 a deep Boltzmann machine (default: a DBN)\n"
"      --fine-tune           up-down fine-tuning of a DBN\n"
"  -f, --force               compose layers that were not pretrained for the\n"
"                            model (doubling missing for --dbm, or present\n"
"                            for a DBN)\n"
"      --labels FILE         --dbm: a label layer of softmax units on the top\n"
"                            layer, trained with DATA's rows; FILE holds one\n"
"                            class index or one one-hot row per data row\n"
"      --classes K           label classes (default: largest index + 1)\n"
"Training:\n"
"  -e, --epochs N            passes over the data (default: 0 = compose only;\n"
"                            --fine-tune: 10)\n"
"  -b, --batch N             rows per mini-batch (default: 100)\n"
"  -l, --learning-rate X     default: 0.001 (--dbm), 0.01 (--fine-tune)\n"
"      --lr-decay R          --dbm: divide the rate by R after every update\n"
"                            (default: 1.000015)\n"
"      --lr-min X            --dbm: the rate never falls below X\n"
"                            (default: learning rate / 10)\n"
"      --momentum M          --dbm: momentum after the first epochs (default: 0.9)\n"
"      --initial-momentum M  --dbm: momentum in the first epochs (default: 0.5)\n"
"      --momentum-epochs N   --dbm: epochs at the initial momentum (default: 5)\n"
"      --weight-decay X      --dbm: L2 coefficient on the weights (default: 0.0002)\n"
"      --chains N            --dbm: persistent chains (default: 100)\n"
"      --sweeps N            --dbm: Gibbs sweeps of the chains per update\n"
"                            (default: 5)\n"
"      --mf-iters N          --dbm: mean-field sweeps at most (default: 30)\n"
"      --mf-tol X            --dbm: mean-field stops when no mean changes by\n"
"                            more than X (default: 1e-05)\n"
"      --damping X           --dbm: mean-field damping in [0, 1) (default: 0)\n"
"      --sparsity P          --dbm: target mean activity of hidden layers;\n"
"                            0 = off (default: 0)\n"
"      --sparsity-cost X     --dbm: weight of the sparsity penalty (default: 0.1)\n"
"      --rebinarize          --dbm: draw 0/1 data from grey values each update\n"
"                            (implies --allow-real)\n"
"  -k, --cd-steps N          --fine-tune: Gibbs steps in the top RBM (default: 10)\n"
"      --allow-real          bernoulli inputs may be probabilities in [0,1];\n"
"                            u8 input is then read as grey levels / 255\n"
"  -s, --seed N              chains, shuffling, sampling (default: 1)\n"
"  -j, --threads N           threads; 0 = all CPUs (default: 0); the model\n"
"                            depends on the count\n"
"Monitoring and recovery:\n"
"      --log FILE            per-epoch TSV: epoch, seconds, recon_error,\n"
"                            learning_rate [, mf_sweeps] (default: none)\n"
"      --checkpoint-every N  write MODEL.ckpt every N epochs; 0 = only when\n"
"                            interrupted (default: 0)\n"
"      --resume              continue from MODEL.ckpt\n"
"      --stop-after-batches N  testing: act as if SIGTERM arrived after N\n"
"                            batches (default: 0 = never)\n"
"  -q, --quiet               no progress on stderr\n"
"  -h, --help                this help\n"
"      --version             version\n"
"\n"
"A DBM of RBMs pretrained with doubled inputs (rbm-train --dbm-bottom for\n"
"the bottom RBM, --dbm-top for the top one, both for a middle one) keeps\n"
"their weights; the bias of a layer where two RBMs meet is the mean of the\n"
"two biases they learned for it.  Interrupted by SIGINT or SIGTERM, stack\n"
"saves MODEL.ckpt at the end of the batch and exits with status 128+signal.\n");
}

enum {
    OPT_DBM = 256, OPT_FINE_TUNE, OPT_LABELS, OPT_CLASSES, OPT_LR_DECAY,
    OPT_LR_MIN, OPT_MOMENTUM, OPT_INIT_MOMENTUM, OPT_MOM_EPOCHS, OPT_WD,
    OPT_CHAINS, OPT_SWEEPS, OPT_MF_ITERS, OPT_MF_TOL, OPT_DAMPING,
    OPT_SPARSITY, OPT_SPARSITY_COST, OPT_REBINARIZE, OPT_ALLOW_REAL, OPT_LOG,
    OPT_CKPT_EVERY, OPT_RESUME, OPT_STOP_AFTER, OPT_VERSION
};

static const struct option long_opts[] = {
    {"output", required_argument, 0, 'o'},
    {"dbm", no_argument, 0, OPT_DBM},
    {"fine-tune", no_argument, 0, OPT_FINE_TUNE},
    {"force", no_argument, 0, 'f'},
    {"labels", required_argument, 0, OPT_LABELS},
    {"classes", required_argument, 0, OPT_CLASSES},
    {"epochs", required_argument, 0, 'e'},
    {"batch", required_argument, 0, 'b'},
    {"learning-rate", required_argument, 0, 'l'},
    {"lr-decay", required_argument, 0, OPT_LR_DECAY},
    {"lr-min", required_argument, 0, OPT_LR_MIN},
    {"momentum", required_argument, 0, OPT_MOMENTUM},
    {"initial-momentum", required_argument, 0, OPT_INIT_MOMENTUM},
    {"momentum-epochs", required_argument, 0, OPT_MOM_EPOCHS},
    {"weight-decay", required_argument, 0, OPT_WD},
    {"chains", required_argument, 0, OPT_CHAINS},
    {"sweeps", required_argument, 0, OPT_SWEEPS},
    {"mf-iters", required_argument, 0, OPT_MF_ITERS},
    {"mf-tol", required_argument, 0, OPT_MF_TOL},
    {"damping", required_argument, 0, OPT_DAMPING},
    {"sparsity", required_argument, 0, OPT_SPARSITY},
    {"sparsity-cost", required_argument, 0, OPT_SPARSITY_COST},
    {"rebinarize", no_argument, 0, OPT_REBINARIZE},
    {"cd-steps", required_argument, 0, 'k'},
    {"allow-real", no_argument, 0, OPT_ALLOW_REAL},
    {"seed", required_argument, 0, 's'},
    {"threads", required_argument, 0, 'j'},
    {"log", required_argument, 0, OPT_LOG},
    {"checkpoint-every", required_argument, 0, OPT_CKPT_EVERY},
    {"resume", no_argument, 0, OPT_RESUME},
    {"stop-after-batches", required_argument, 0, OPT_STOP_AFTER},
    {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, OPT_VERSION},
    {0, 0, 0, 0}
};

typedef struct {
    const char *output, *data, *labels, *log;
    int dbm, fine_tune, force, rebinarize, allow_real, resume, threads;
    int classes;
    long epochs, batch, k, mom_epochs, chains, sweeps, mf_iters, ckpt_every;
    long stop_after;
    double lr, lr_decay, lr_min, momentum, init_momentum, wd, mf_tol, damping;
    double sparsity, sparsity_cost;
    uint64_t seed;
    const char *models[BM_MAX_LAYERS];
    int nmodels;
} options;

/* 1 when the first section of path carries model.type. */
static int is_model(const char *path)
{
    if (strcmp(path, "-") == 0)
        return 0;
    FILE *f = cli_open_in(path);
    tz_reader *r = tz_reader_new(f);
    if (!r)
        cli_die("out of memory");
    int e = tz_next(r), yes = 0;
    if (e < 0)
        cli_die_reader(path, r, e);
    if (e > 0)
        yes = tz_attr_get_s(tz_reader_header(r), "model.type", NULL) != NULL;
    tz_reader_free(r);
    cli_close_in(f);
    return yes;
}

static model *open_model(const char *path)
{
    char err[400];
    model *m = model_load(path, err, sizeof err);
    if (!m)
        cli_die("%s", err);
    return m;
}

static void save_model(tz_model *mf, const char *path)
{
    char err[400];
    if (tz_model_save(mf, path, err, sizeof err))
        cli_die("%s", err);
}

/* ---- composition ---------------------------------------------------------- */

/* The RBMs named on the command line, in order (each must be an RBM). */
static int load_rbms(const options *o, rbm **r)
{
    for (int k = 0; k < o->nmodels; k++) {
        model *m = open_model(o->models[k]);
        if (m->kind != MODEL_RBM)
            cli_die("%s: a %s, not an rbm: give either RBMs or one model",
                    o->models[k], model_kind_name(m->kind));
        r[k] = m->rbm;
        m->rbm = NULL;
        model_free(m);
    }
    return o->nmodels;
}

static dbn *compose_dbn(const options *o)
{
    rbm *r[BM_MAX_LAYERS];
    int n = load_rbms(o, r);
    char err[300];
    dbn *d = dbn_from_rbms(r, n, o->force, err, sizeof err);
    if (!d)
        cli_die("%s", err);
    return d;
}

/* A DBM from RBMs r[0..n): layers v, h1..hn; layer k (0 < k < n) gets the
 * mean of r[k-1]'s hidden bias and r[k]'s visible bias. */
static bm_net *compose_dbm(const options *o)
{
    rbm *r[BM_MAX_LAYERS];
    int n = load_rbms(o, r);
    if (n < 2)
        cli_die("a DBM needs at least two RBMs");
    for (int k = 0; k < n; k++) {
        const rbm *m = r[k];
        if (k + 1 < n && m->nh != r[k + 1]->nv)
            cli_die("%s has %d hidden units but %s has %d visible units",
                    o->models[k], m->nh, o->models[k + 1], r[k + 1]->nv);
        if (k + 1 < n && m->hid != r[k + 1]->vis)
            cli_die("%s has %s hidden units but %s has %s visible units",
                    o->models[k], rbm_unit_name(m->hid), o->models[k + 1],
                    rbm_unit_name(r[k + 1]->vis));
        if (m->hid != RBM_BERNOULLI)
            cli_die("%s: a DBM needs bernoulli hidden units", o->models[k]);
        float want_up = k + 1 < n ? 2.0f : 1.0f, want_down = k > 0 ? 2.0f : 1.0f;
        if (!o->force && (m->up_scale != want_up || m->down_scale != want_down))
            cli_die("%s was not pretrained for this place in a DBM (it needs "
                    "%s); retrain it with rbm-train %s, or use --force",
                    o->models[k],
                    k == 0 ? "a doubled bottom-up input"
                    : k + 1 == n ? "a doubled top-down input"
                                 : "doubled inputs both ways",
                    k == 0 ? "--dbm-bottom" : k + 1 == n ? "--dbm-top"
                                                         : "--dbm-bottom --dbm-top");
    }
    bm_layer_spec spec[BM_MAX_LAYERS];
    char names[BM_MAX_LAYERS][8];
    int edges[BM_MAX_LAYERS][2];
    for (int l = 0; l <= n; l++) {
        snprintf(names[l], sizeof names[l], l ? "h%d" : "v", l);
        const rbm *m = l < n ? r[l] : r[n - 1];
        spec[l] = (bm_layer_spec){names[l], l < n ? m->vis : m->hid,
                                  l < n ? m->nv : m->nh,
                                  l < n && m->vis == RBM_SOFTMAX ? m->softmax_group : 0,
                                  l == 0};
        if (l < n) {
            edges[l][0] = l;
            edges[l][1] = l + 1;
        }
    }
    const char *why;
    bm_net *net = bm_new(n + 1, spec, (const int (*)[2])edges, &why);
    if (!net)
        cli_die("%s", why);
    for (int k = 0; k < n; k++) {
        const rbm *m = r[k];
        memcpy(net->E[k].W, m->W, (size_t)m->nv * m->nh * sizeof(float));
    }
    memcpy(net->L[0].bias, r[0]->vbias, (size_t)r[0]->nv * sizeof(float));
    if (net->L[0].sigma)
        memcpy(net->L[0].sigma, r[0]->sigma, (size_t)r[0]->nv * sizeof(float));
    for (int l = 1; l <= n; l++) {
        float *b = net->L[l].bias;
        const rbm *below = r[l - 1];
        for (int j = 0; j < net->L[l].n; j++)
            b[j] = l < n ? 0.5f * (below->hbias[j] + r[l]->vbias[j])
                         : below->hbias[j];
    }
    for (int k = 0; k < n; k++)
        rbm_free(r[k]);
    return net;
}

/* ---- labels ----------------------------------------------------------------- */

/* One-hot label rows (N, K) from a stream of class indices (one value per
 * row) or of one-hot rows. */
static float *load_labels(const options *o, uint64_t N, int *K)
{
    dataset ld;
    cli_load_dataset(o->labels, &ld);
    if (ld.rows != N)
        cli_die("%s: %llu label rows for %llu data rows", o->labels,
                (unsigned long long)ld.rows, (unsigned long long)N);
    float *row = malloc((size_t)ld.V * sizeof *row);
    if (!row)
        cli_die("out of memory");
    int k = o->classes;
    if (ld.V == 1 && !k) {
        for (uint64_t i = 0; i < N; i++) {
            dataset_gather(&ld, NULL, i, 1, row);
            if (row[0] + 1 > k)
                k = (int)row[0] + 1;
        }
    } else if (ld.V > 1) {
        if (k && k != ld.V)
            cli_die("%s: one-hot rows of %d columns but --classes %d",
                    o->labels, ld.V, k);
        k = ld.V;
    }
    if (k < 2 || k > 100000)
        cli_die("%s: labels need 2 to 100000 classes", o->labels);
    float *y = calloc((size_t)N * k, sizeof *y);
    if (!y)
        cli_die("out of memory");
    bm_layer L = {.unit = BM_SOFTMAX, .n = k, .group = k};
    for (uint64_t i = 0; i < N; i++) {
        dataset_gather(&ld, NULL, i, 1, row);
        float *yi = y + i * (size_t)k;
        if (ld.V == 1) {
            double c = row[0];
            if (!(c >= 0 && c < k && c == floor(c)))
                cli_die("%s: row %llu: label %g is not a class index below %d",
                        o->labels, (unsigned long long)(i + 1), c, k);
            yi[(int)c] = 1;
        } else {
            memcpy(yi, row, (size_t)k * sizeof *yi);
            if (bm_layer_check(&L, 1, yi, 0))
                cli_die("%s: row %llu: not a one-hot row", o->labels,
                        (unsigned long long)(i + 1));
        }
    }
    free(row);
    dataset_free(&ld);
    *K = k;
    return y;
}

/* A copy of net with a softmax layer "label" (K units) joined to its top
 * layer, weights N(0, 0.01^2), bias the log class frequencies. */
static bm_net *add_label_layer(bm_net *net, int K, const float *y,
                               uint64_t N, rng_t *rng)
{
    if (bm_find_layer(net, "label") >= 0)
        return net;
    bm_layer_spec spec[BM_MAX_LAYERS];
    int edges[BM_MAX_LAYERS][2];
    int nl = net->nl;
    if (nl + 1 > BM_MAX_LAYERS)
        cli_die("too many layers for a label layer");
    for (int l = 0; l < nl; l++)
        spec[l] = (bm_layer_spec){net->L[l].name, net->L[l].unit,
                                  net->L[l].n, net->L[l].group, net->vis[l]};
    spec[nl] = (bm_layer_spec){"label", BM_SOFTMAX, K, K, 1};
    for (int e = 0; e < net->ne; e++) {
        edges[e][0] = net->E[e].a;
        edges[e][1] = net->E[e].b;
    }
    edges[net->ne][0] = nl - 1;
    edges[net->ne][1] = nl;
    const char *why;
    bm_net *x = bm_new(nl + 1, spec, (const int (*)[2])edges, &why);
    if (!x)
        cli_die("%s", why);
    for (int l = 0; l < nl; l++) {
        memcpy(x->L[l].bias, net->L[l].bias, (size_t)net->L[l].n * sizeof(float));
        if (net->L[l].sigma)
            memcpy(x->L[l].sigma, net->L[l].sigma,
                   (size_t)net->L[l].n * sizeof(float));
    }
    for (int e = 0; e < net->ne; e++)
        memcpy(x->E[e].W, net->E[e].W, (size_t)net->L[net->E[e].a].n *
               net->L[net->E[e].b].n * sizeof(float));
    size_t nw = (size_t)net->L[nl - 1].n * K;
    for (size_t i = 0; i < nw; i++)
        x->E[net->ne].W[i] = (float)(0.01 * rng_normal(rng));
    float *mean = calloc((size_t)K, sizeof *mean);
    if (!mean)
        cli_die("out of memory");
    for (uint64_t i = 0; i < N; i++)
        for (int k = 0; k < K; k++)
            mean[k] += y[i * (size_t)K + k] / (float)N;
    bm_layer_init_bias(&x->L[nl], mean);
    free(mean);
    bm_free(net);
    return x;
}

/* ---- provenance and checkpoints -------------------------------------------------- */

static void options_key(const options *o, const dataset *ds, char *buf,
                        size_t n)
{
    snprintf(buf, n, "dbm=%d ft=%d batch=%ld lr=%.9g decay=%.9g lrmin=%.9g "
             "mom=%.9g imom=%.9g mep=%ld wd=%.9g chains=%ld sweeps=%ld "
             "mfi=%ld mft=%.9g damp=%.9g sp=%.9g spc=%.9g rebin=%d k=%ld "
             "real=%d seed=%llu threads=%d labels=%s rows=%llu cols=%d "
             "dtype=%d crc=%08x",
             o->dbm, o->fine_tune, o->batch, o->lr, o->lr_decay, o->lr_min,
             o->momentum, o->init_momentum, o->mom_epochs, o->wd, o->chains,
             o->sweeps, o->mf_iters, o->mf_tol, o->damping, o->sparsity,
             o->sparsity_cost, o->rebinarize, o->k, o->allow_real,
             (unsigned long long)o->seed, o->threads, o->labels ? "yes" : "no",
             (unsigned long long)ds->rows, ds->V, ds->dtype, ds->crc);
}

static void set_provenance(tz_model *mf, const options *o, const dataset *ds,
                           long epochs, double recon)
{
    tz_header *h = &mf->meta;
    tz_attr_set_s(h, "rbmkit.version", RBMKIT_VERSION);
    if (!ds)
        return;
    tz_attr_set_i(h, "train.epochs", epochs);
    tz_attr_set_i(h, "train.batch", o->batch);
    tz_attr_set_f(h, "train.learning_rate", o->lr);
    if (o->dbm) {
        tz_attr_set_f(h, "train.lr_decay", o->lr_decay);
        tz_attr_set_f(h, "train.lr_min", o->lr_min);
        tz_attr_set_f(h, "train.momentum", o->momentum);
        tz_attr_set_f(h, "train.initial_momentum", o->init_momentum);
        tz_attr_set_i(h, "train.momentum_epochs", o->mom_epochs);
        tz_attr_set_f(h, "train.weight_decay", o->wd);
        tz_attr_set_i(h, "train.chains", o->chains);
        tz_attr_set_i(h, "train.gibbs_sweeps", o->sweeps);
        tz_attr_set_i(h, "train.mf_iters", o->mf_iters);
        tz_attr_set_f(h, "train.mf_tol", o->mf_tol);
        tz_attr_set_f(h, "train.damping", o->damping);
        tz_attr_set_f(h, "train.sparsity", o->sparsity);
        tz_attr_set_f(h, "train.sparsity_cost", o->sparsity_cost);
        tz_attr_set_i(h, "train.rebinarize", o->rebinarize);
    } else {
        tz_attr_set_s(h, "train.method", "up-down");
        tz_attr_set_i(h, "train.cd_steps", o->k);
    }
    tz_attr_set_i(h, "train.allow_real", o->allow_real);
    tz_attr_set_i(h, "train.seed", (int64_t)o->seed);
    tz_attr_set_i(h, "train.threads", o->threads);
    tz_attr_set_i(h, "train.data_rows", (int64_t)ds->rows);
    tz_attr_set_i(h, "train.data_columns", ds->V);
    tz_attr_set_s(h, "train.data_dtype", tz_dtype_name(ds->dtype));
    tz_attr_set_i(h, "train.data_crc32c", ds->crc);
    tz_attr_set_f(h, "train.recon_error", recon);
}

/* The whole trained state as a model container. */
typedef struct {
    bm_net *net;
    bm_trainer *bt;
    dbn *d;
    rng_t *rng;       /* fine-tuning's stream */
} state;

static tz_model *state_model(const state *s, const options *o,
                             const dataset *ds, long epochs, double recon)
{
    tz_model *mf = tz_model_new();
    if (!mf)
        cli_die("out of memory");
    int e = tz_attr_set_s(&mf->meta, "model.type", s->net ? "dbm" : "dbn");
    if (!e)
        e = s->net ? bm_to_model(s->net, mf) : dbn_to_model(s->d, mf);
    if (e)
        cli_die("out of memory");
    set_provenance(mf, o, ds, epochs, recon);
    return mf;
}

static void save_checkpoint(const char *path, const state *s,
                            const options *o, const dataset *ds,
                            const char *key, long epoch, long batch,
                            double recon_sum)
{
    tz_model *mf = state_model(s, o, ds, epoch, 0);
    int e = 0;
    if (s->bt) {
        e = bm_trainer_save(s->bt, mf);
    } else {
        int64_t rs[4];
        uint64_t sh[1] = {4};
        memcpy(rs, s->rng->s, sizeof rs);
        e = tz_model_add(mf, "train.rng", TZ_I64, 1, sh, rs);
    }
    if (e)
        cli_die("out of memory");
    tz_attr_set_s(&mf->meta, "ckpt.options", key);
    tz_attr_set_i(&mf->meta, "ckpt.epoch", epoch);
    tz_attr_set_i(&mf->meta, "ckpt.batch", batch);
    tz_attr_set_f(&mf->meta, "ckpt.recon_sum", recon_sum);
    save_model(mf, path);
    tz_model_free(mf);
}

/* ---- main ----------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    cli_init(argc, argv, "stack");
    options o = {
        .epochs = -1, .batch = 100, .k = 10, .lr = -1, .lr_decay = 1.000015,
        .lr_min = -1, .momentum = 0.9, .init_momentum = 0.5, .mom_epochs = 5,
        .wd = 2e-4, .chains = 100, .sweeps = 5, .mf_iters = 30,
        .mf_tol = 1e-5, .sparsity_cost = 0.1, .seed = 1,
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:fe:b:l:k:s:j:qh", long_opts,
                            NULL)) != -1) {
        switch (c) {
        case 'o': o.output = optarg; break;
        case OPT_DBM: o.dbm = 1; break;
        case OPT_FINE_TUNE: o.fine_tune = 1; break;
        case 'f': o.force = 1; break;
        case OPT_LABELS: o.labels = optarg; break;
        case OPT_CLASSES: o.classes = (int)cli_long(optarg, 2, 100000, "class count"); break;
        case 'e': o.epochs = cli_long(optarg, 0, 1000000, "epoch count"); break;
        case 'b': o.batch = cli_long(optarg, 1, 1000000, "batch size"); break;
        case 'l': o.lr = cli_double(optarg, 0, 100, "learning rate"); break;
        case OPT_LR_DECAY: o.lr_decay = cli_double(optarg, 1, 2, "learning-rate decay"); break;
        case OPT_LR_MIN: o.lr_min = cli_double(optarg, 0, 100, "minimum learning rate"); break;
        case OPT_MOMENTUM: o.momentum = cli_double(optarg, 0, 0.999, "momentum"); break;
        case OPT_INIT_MOMENTUM: o.init_momentum = cli_double(optarg, 0, 0.999, "momentum"); break;
        case OPT_MOM_EPOCHS: o.mom_epochs = cli_long(optarg, 0, 1000000, "momentum epochs"); break;
        case OPT_WD: o.wd = cli_double(optarg, 0, 1, "weight decay"); break;
        case OPT_CHAINS: o.chains = cli_long(optarg, 1, 1000000, "chain count"); break;
        case OPT_SWEEPS: o.sweeps = cli_long(optarg, 1, 100000, "sweep count"); break;
        case OPT_MF_ITERS: o.mf_iters = cli_long(optarg, 1, 100000, "mean-field iterations"); break;
        case OPT_MF_TOL: o.mf_tol = cli_double(optarg, 0, 1, "mean-field tolerance"); break;
        case OPT_DAMPING: o.damping = cli_double(optarg, 0, 0.999, "damping"); break;
        case OPT_SPARSITY: o.sparsity = cli_double(optarg, 0, 0.999, "sparsity target"); break;
        case OPT_SPARSITY_COST: o.sparsity_cost = cli_double(optarg, 0, 1000, "sparsity cost"); break;
        case OPT_REBINARIZE: o.rebinarize = 1; o.allow_real = 1; break;
        case 'k': o.k = cli_long(optarg, 1, 100000, "CD step count"); break;
        case OPT_ALLOW_REAL: o.allow_real = 1; break;
        case 's': o.seed = cli_u64(optarg, "seed"); break;
        case 'j': o.threads = (int)cli_long(optarg, 0, 1024, "thread count"); break;
        case OPT_LOG: o.log = optarg; break;
        case OPT_CKPT_EVERY: o.ckpt_every = cli_long(optarg, 0, 1000000, "checkpoint interval"); break;
        case OPT_RESUME: o.resume = 1; break;
        case OPT_STOP_AFTER: o.stop_after = cli_long(optarg, 0, 1L << 40, "batch count"); break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(); cli_close_stdout(); return 0;
        case OPT_VERSION: cli_version();
        default: cli_option_error(c, argv);
        }
    }
    if (!o.output)
        cli_usage_error("no model file given (-o MODEL)");
    if (o.dbm && o.fine_tune)
        cli_usage_error("--fine-tune is for DBNs; a DBM trains with --dbm -e N");
    if (o.labels && !o.dbm)
        cli_usage_error("--labels needs --dbm");
    if (o.classes && !o.labels)
        cli_usage_error("--classes needs --labels");
    if (o.fine_tune && o.rebinarize)
        cli_usage_error("--rebinarize applies to --dbm training");
    if (o.epochs < 0)
        o.epochs = o.fine_tune ? 10 : 0;
    if (!o.dbm && !o.fine_tune && o.epochs > 0)
        cli_usage_error("training a DBN is --fine-tune; a DBM is --dbm");
    if (o.labels && o.epochs == 0)
        cli_usage_error("--labels needs training (-e N): the label layer is "
                        "learnt jointly");
    if (o.lr < 0)
        o.lr = o.dbm ? 0.001 : 0.01;
    if (o.lr_min < 0)
        o.lr_min = o.lr / 10;
    for (int i = optind; i < argc; i++) {
        int last = i == argc - 1;
        if (last && o.epochs > 0 && !is_model(argv[i])) {
            o.data = argv[i];
            break;
        }
        if (o.nmodels == BM_MAX_LAYERS - 1)
            cli_usage_error("too many models (at most %d)", BM_MAX_LAYERS - 1);
        o.models[o.nmodels++] = argv[i];
    }
    if (o.nmodels == 0)
        cli_usage_error("no models given");
    cli_check_output(o.output);
    for (int i = 0; i < o.nmodels; i++)
        if (strcmp(o.models[i], "-") == 0 || !is_model(o.models[i]))
            cli_die("%s: not a model file (no model.type attribute)%s",
                    o.models[i], o.epochs > 0 ? "" :
                    "; data needs --epochs (-e N) to train on");

    /* the starting model: composed from RBMs, or one DBN / DBM */
    state s = {0};
    rng_t tune_rng;
    if (o.nmodels == 1) {
        model *m = open_model(o.models[0]);
        if (o.dbm && m->kind == MODEL_RBM)
            cli_die("%s: one RBM; a DBM needs at least two (or one DBM to "
                    "train further)", o.models[0]);
        if (m->kind == MODEL_MDBN)
            cli_die("%s: a multimodal DBN; joint trains it", o.models[0]);
        if (o.dbm && m->kind != MODEL_DBM)
            cli_die("%s: a DBN; --dbm composes RBMs or trains a DBM further",
                    o.models[0]);
        if (!o.dbm && m->kind == MODEL_RBM)
            cli_die("%s: one RBM; a DBN needs at least two", o.models[0]);
        if (!o.dbm && m->kind != MODEL_DBN)
            cli_die("%s: a DBM; a DBM trains with --dbm", o.models[0]);
        for (int l = 1; m->net && l < m->net->nl; l++)
            if (m->net->vis[l] && strcmp(m->net->L[l].name, "label") != 0)
                cli_die("%s: a multimodal DBM (modality '%s' besides '%s'); "
                        "joint trains it", o.models[0], m->net->L[l].name,
                        m->net->L[0].name);
        s.net = m->net;
        s.d = m->dbn;
        m->net = NULL;
        m->dbn = NULL;
        model_free(m);
    } else if (o.dbm) {
        s.net = compose_dbm(&o);
    } else {
        s.d = compose_dbn(&o);
    }

    if (o.epochs == 0) {          /* compose (or copy) only */
        tz_model *mf = state_model(&s, &o, NULL, 0, 0);
        save_model(mf, o.output);
        tz_model_free(mf);
        bm_free(s.net);
        dbn_free(s.d);
        return 0;
    }

    /* training data: the bottom layer's rows */
    if (!o.threads)
        o.threads = par_cpu_count();
    gemm_init(o.dbm ? 1 : o.threads);
    dataset ds;
    cli_load_dataset(o.data, &ds);
    const char *dname = o.data ? o.data : "stdin";
    bm_layer L0 = s.net ? s.net->L[0] : dbn_layer(s.d, 0);
    if (ds.V != L0.n)
        cli_die("%s: rows of %d values, the model's visible layer has %d units",
                dname, ds.V, L0.n);
    if (ds.probs && ds.dtype != TZ_U8)
        o.allow_real = 1;
    if (o.allow_real && L0.unit == BM_BERNOULLI && ds.dtype == TZ_U8)
        ds.scale = 1.0f / 255;
    cli_check_dataset(&ds, &L0, o.allow_real, dname);

    char key[1024];
    options_key(&o, &ds, key, sizeof key);
    char *ckpt = cli_ckpt_path(o.output);
    rng_t root;
    rng_seed(&root, o.seed);
    rng_t init_rng, order_root;
    rng_split(&init_rng, &root, 1);
    rng_split(&order_root, &root, 2);
    uint64_t train_seed = rng_next(&root);
    rng_seed(&tune_rng, train_seed);
    s.rng = &tune_rng;

    int K = 0, lab = -1;
    float *y = NULL;
    if (o.labels) {
        y = load_labels(&o, ds.rows, &K);
        s.net = add_label_layer(s.net, K, y, ds.rows, &init_rng);
        lab = bm_find_layer(s.net, "label");
        if (s.net->L[lab].n != K)
            cli_die("%s: %d classes, the model's label layer has %d",
                    o.labels, K, s.net->L[lab].n);
    }

    long start_epoch = 0, start_batch = 0;
    double recon_sum = 0;
    tz_model *cf = NULL;
    if (o.resume) {
        if (access(ckpt, F_OK) != 0)
            cli_die("%s: no checkpoint to resume from", ckpt);
        char err[400];
        model *m = model_load(ckpt, err, sizeof err);
        if (!m)
            cli_die("%s", err);
        if (strcmp(tz_attr_get_s(&m->mf->meta, "ckpt.options", ""), key) != 0)
            cli_die("%s: checkpoint was made with other options or data", ckpt);
        if ((m->kind == MODEL_DBM) != (s.net != NULL))
            cli_die("%s: checkpoint of another kind of model", ckpt);
        bm_free(s.net);
        dbn_free(s.d);
        s.net = m->net;
        s.d = m->dbn;
        m->net = NULL;
        m->dbn = NULL;
        start_epoch = (long)tz_attr_get_i(&m->mf->meta, "ckpt.epoch", 0);
        start_batch = (long)tz_attr_get_i(&m->mf->meta, "ckpt.batch", 0);
        recon_sum = tz_attr_get_f(&m->mf->meta, "ckpt.recon_sum", 0);
        if (start_epoch > o.epochs ||
            (start_epoch == o.epochs && start_batch > 0))
            cli_die("%s: the checkpoint is past epoch %ld already (epoch %ld, "
                    "batch %ld); ask for at least -e %ld", ckpt, o.epochs,
                    start_epoch + 1, start_batch, start_epoch + 1);
        cf = m->mf;
        m->mf = NULL;
        model_free(m);
    }

    unsigned char vis[BM_MAX_LAYERS] = {0};
    bm_train_opts to;
    bm_train_opts_init(&to);
    if (s.net) {
        vis[0] = 1;
        if (lab >= 0)
            vis[lab] = 1;
        s.bt = bm_trainer_new(s.net, vis, (int)o.batch, (int)o.chains,
                              train_seed);
        if (!s.bt || bm_trainer_set_threads(s.bt, o.threads))
            cli_die("out of memory");
        to.weight_decay = (float)o.wd;
        to.mf_iters = (int)o.mf_iters;
        to.mf_tol = (float)o.mf_tol;
        to.damping = (float)o.damping;
        to.sweeps = (int)o.sweeps;
        to.sparsity_target = (float)o.sparsity;
        to.sparsity_cost = (float)o.sparsity_cost;
        to.rebinarize = o.rebinarize;
    }
    if (cf) {
        if (s.bt && bm_trainer_load(s.bt, cf))
            cli_die("%s: %s", ckpt, tz_model_error(cf));
        if (!s.bt) {
            tz_tensor *t = tz_model_find(cf, "train.rng");
            if (!t || t->h.dtype != TZ_I64 || t->count != 4)
                cli_die("%s: checkpoint has no train.rng", ckpt);
            memcpy(tune_rng.s, t->data, sizeof tune_rng.s);
        }
        tz_model_free(cf);
    }
    dbn_work *dw = s.d ? dbn_work_new(s.d, (int)o.batch) : NULL;
    if (s.d && !dw)
        cli_die("out of memory");

    FILE *logf = o.log ? cli_open_log(o.log, o.resume, s.net
        ? "epoch\tseconds\trecon_error\tlearning_rate\tmf_sweeps"
        : "epoch\tseconds\trecon_error\tlearning_rate") : NULL;
    cli_trap_stop_signals();

    uint64_t N = ds.rows;
    long nb = (long)((N + o.batch - 1) / o.batch);
    uint64_t *perm = malloc(N * sizeof *perm);
    float *batch = malloc((size_t)o.batch * ds.V * sizeof *batch);
    float *ybatch = K ? malloc((size_t)o.batch * K * sizeof *ybatch) : NULL;
    if (!perm || !batch || (K && !ybatch))
        cli_die("out of memory");
    const float *data[BM_MAX_LAYERS] = {0};
    data[0] = batch;
    if (lab >= 0)
        data[lab] = ybatch;
    long done = 0;
    double last_recon = 0;
    for (long ep = start_epoch; ep < o.epochs; ep++) {
        double t0 = cli_now(), tshow = t0, sweeps_sum = 0;
        rng_t order = order_root, er;
        rng_split(&er, &order, (uint64_t)ep);
        rng_permutation(&er, perm, N);
        to.momentum = (float)(ep < o.mom_epochs ? o.init_momentum : o.momentum);
        double lr = o.lr;
        for (long bi = ep == start_epoch ? start_batch : 0; bi < nb; bi++) {
            uint64_t r0 = (uint64_t)bi * o.batch;
            int B = N - r0 < (uint64_t)o.batch ? (int)(N - r0) : (int)o.batch;
            dataset_gather(&ds, perm + r0, 0, B, batch);
            for (int b = 0; b < B && K; b++)
                memcpy(ybatch + (size_t)b * K, y + perm[r0 + b] * (size_t)K,
                       (size_t)K * sizeof *ybatch);
            double rec = 0;
            if (s.net) {
                /* the rate after every update so far: lr / R^updates */
                double u = (double)ep * nb + bi;
                lr = o.lr * pow(o.lr_decay, -u);
                if (lr < o.lr_min)
                    lr = o.lr_min;
                to.lr = (float)lr;
                bm_step_stats st;
                if (bm_train_step(s.bt, B, data, NULL, &to, &st))
                    cli_die("training step failed");
                rec = st.recon;
                sweeps_sum += st.mf_sweeps * B;
            } else {
                dbn_tune_opts tuo = {(float)o.lr, (int)o.k};
                if (dbn_tune_step(s.d, B, batch, &tuo, &tune_rng, dw, &rec))
                    cli_die("out of memory");
            }
            recon_sum += rec;
            if (o.stop_after && ++done == o.stop_after)
                cli_stop = SIGTERM;
            if (cli_stop) {
                save_checkpoint(ckpt, &s, &o, &ds, key, ep, bi + 1, recon_sum);
                cli_interrupted(ckpt, ep, bi + 1);
            }
            cli_batch_progress(&tshow, ep, o.epochs, bi, nb,
                               recon_sum / (double)(r0 + B));
        }
        last_recon = recon_sum / (double)N;
        double secs = cli_now() - t0;
        cli_epoch_progress(ep, o.epochs, secs, last_recon);
        if (logf) {
            fprintf(logf, "%ld\t%.3f\t%.6f\t%.6g", ep + 1, secs, last_recon,
                    lr);
            if (s.net)
                fprintf(logf, "\t%.2f", sweeps_sum / (double)N);
            fputc('\n', logf);
            fflush(logf);
        }
        recon_sum = 0;
        if (o.ckpt_every && (ep + 1) % o.ckpt_every == 0 && ep + 1 < o.epochs)
            save_checkpoint(ckpt, &s, &o, &ds, key, ep + 1, 0, 0);
    }
    cli_restore_signals();
    if (logf && fclose(logf) != 0)
        cli_die("%s:", o.log);

    tz_model *mf = state_model(&s, &o, &ds, o.epochs, last_recon);
    save_model(mf, o.output);
    tz_model_free(mf);
    if (unlink(ckpt) != 0 && errno != ENOENT)
        cli_warn("%s: cannot remove:", ckpt);
    bm_trainer_free(s.bt);
    dbn_work_free(dw);
    bm_free(s.net);
    dbn_free(s.d);
    dataset_free(&ds);
    free(perm);
    free(batch);
    free(ybatch);
    free(y);
    free(ckpt);
    return 0;
}
