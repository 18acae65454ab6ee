/* rbm-train - train a restricted Boltzmann machine on a tensor stream.
 *
 * Reads the whole training stream into memory in its stored dtype (MNIST
 * stays u8), converts each mini-batch to f32 on the fly, trains with CD-k
 * or PCD-k (lib/rbm.c) and writes the model atomically.  With --emit it
 * then writes p(h|v) of the training rows to stdout, so greedy stacking is
 * a pipe.  SIGINT/SIGTERM stop at the end of the current batch with a
 * checkpoint (MODEL.ckpt) that --resume continues exactly.
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

#include "cli.h"
#include "gemm.h"
#include "par.h"
#include "rbm.h"
#include "rng.h"
#include "tz.h"

static void usage(void)
{
    printf(
"Usage: rbm-train -o MODEL [OPTION]... [INPUT]\n"
"Train a restricted Boltzmann machine on the rows of a tensor stream (INPUT,\n"
"or standard input) and write it to MODEL.\n"
"\n"
"Model:\n"
"  -o, --output MODEL        model file to write (required)\n"
"  -V, --visible TYPE        bernoulli, gaussian, replicated-softmax or\n"
"                            softmax (default: bernoulli)\n"
"  -H, --hidden N            hidden units (default: 500)\n"
"      --hidden-type TYPE    bernoulli or gaussian (default: bernoulli)\n"
"      --softmax-group K     softmax visible: group size (default: all\n"
"                            columns form one group)\n"
"      --dbm-bottom          double the bottom-up input (DBM pretraining)\n"
"      --dbm-top             double the top-down input (DBM pretraining)\n"
"Training:\n"
"  -e, --epochs N            passes over the data (default: 10)\n"
"  -b, --batch N             rows per mini-batch (default: 100)\n"
"  -l, --learning-rate X     default: 0.1 (bernoulli, softmax), 0.01\n"
"                            (gaussian), 0.001 (replicated-softmax)\n"
"      --lr-decay T          rate / (1 + epoch/T); 0 = constant (default: 0)\n"
"  -k, --cd-steps N          Gibbs steps per update (default: 1)\n"
"      --pcd                 persistent chains (PCD-k; default: CD-k)\n"
"      --momentum M          momentum after the first epochs (default: 0.9)\n"
"      --initial-momentum M  momentum in the first epochs (default: 0.5)\n"
"      --momentum-epochs N   epochs at the initial momentum (default: 5)\n"
"      --weight-decay X      L2 coefficient on W (default: 0.0002)\n"
"      --sparsity P          target mean hidden activity; 0 = off (default: 0)\n"
"      --sparsity-cost X     weight of the sparsity penalty (default: 0.1)\n"
"      --learn-sigma         gaussian visible: learn log sigma (default: fixed 1)\n"
"      --allow-real          bernoulli inputs may be probabilities in [0,1];\n"
"                            u8 input is then read as grey levels / 255\n"
"  -s, --seed N              initialisation, shuffling, sampling (default: 1)\n"
"  -j, --threads N           threads; 0 = all CPUs (default: 0); the model\n"
"                            depends on the count\n"
"Output and monitoring:\n"
"      --emit                write p(h|v) of the training rows to stdout\n"
"  -f, --force               --emit even to a terminal\n"
"      --log FILE            per-epoch TSV: epoch, seconds, recon_error\n"
"                            [, fe_train, fe_valid, fe_gap] (default: none)\n"
"      --valid FILE          validation stream for the free-energy gap\n"
"      --checkpoint-every N  write MODEL.ckpt every N epochs; 0 = only when\n"
"                            interrupted (default: 0)\n"
"      --resume              continue from MODEL.ckpt\n"
"      --stop-after-batches N  testing: act as if SIGTERM arrived after N\n"
"                            batches (default: 0 = never)\n"
"  -q, --quiet               no progress on stderr\n"
"Output stream (--emit):\n"
CLI_STREAM_HELP
"  -h, --help                this help\n"
"      --version             version\n"
"\n"
"Bernoulli inputs must be 0/1 (e.g. from `tensor binarize`); counts for\n"
"replicated-softmax units must be non-negative integers.  Interrupted by\n"
"SIGINT or SIGTERM, rbm-train saves MODEL.ckpt at the end of the batch and\n"
"exits with status 128+signal.\n");
}

enum {
    OPT_HIDDEN_TYPE = 256, OPT_SOFTMAX_GROUP, OPT_DBM_BOTTOM, OPT_DBM_TOP,
    OPT_LR_DECAY, OPT_PCD, OPT_MOMENTUM, OPT_INIT_MOMENTUM, OPT_MOM_EPOCHS,
    OPT_WD, OPT_SPARSITY, OPT_SPARSITY_COST, OPT_LEARN_SIGMA, OPT_ALLOW_REAL,
    OPT_EMIT, OPT_LOG, OPT_VALID, OPT_CKPT_EVERY, OPT_RESUME, OPT_STOP_AFTER,
    OPT_VERSION
};

static const struct option long_opts[] = {
    {"output", required_argument, 0, 'o'},
    {"visible", required_argument, 0, 'V'},
    {"hidden", required_argument, 0, 'H'},
    {"hidden-type", required_argument, 0, OPT_HIDDEN_TYPE},
    {"softmax-group", required_argument, 0, OPT_SOFTMAX_GROUP},
    {"dbm-bottom", no_argument, 0, OPT_DBM_BOTTOM},
    {"dbm-top", no_argument, 0, OPT_DBM_TOP},
    {"epochs", required_argument, 0, 'e'},
    {"batch", required_argument, 0, 'b'},
    {"learning-rate", required_argument, 0, 'l'},
    {"lr-decay", required_argument, 0, OPT_LR_DECAY},
    {"cd-steps", required_argument, 0, 'k'},
    {"pcd", no_argument, 0, OPT_PCD},
    {"momentum", required_argument, 0, OPT_MOMENTUM},
    {"initial-momentum", required_argument, 0, OPT_INIT_MOMENTUM},
    {"momentum-epochs", required_argument, 0, OPT_MOM_EPOCHS},
    {"weight-decay", required_argument, 0, OPT_WD},
    {"sparsity", required_argument, 0, OPT_SPARSITY},
    {"sparsity-cost", required_argument, 0, OPT_SPARSITY_COST},
    {"learn-sigma", no_argument, 0, OPT_LEARN_SIGMA},
    {"allow-real", no_argument, 0, OPT_ALLOW_REAL},
    {"seed", required_argument, 0, 's'},
    {"threads", required_argument, 0, 'j'},
    {"emit", no_argument, 0, OPT_EMIT},
    {"force", no_argument, 0, 'f'},
    {"log", required_argument, 0, OPT_LOG},
    {"valid", required_argument, 0, OPT_VALID},
    {"checkpoint-every", required_argument, 0, OPT_CKPT_EVERY},
    {"resume", no_argument, 0, OPT_RESUME},
    {"stop-after-batches", required_argument, 0, OPT_STOP_AFTER},
    {"quiet", no_argument, 0, 'q'},
    CLI_STREAM_LONGOPTS,
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, OPT_VERSION},
    {0, 0, 0, 0}
};

/* Everything that determines the trained model. */
typedef struct {
    const char *output, *input, *log, *valid;
    int vis, hid, nh, softmax_group, dbm_bottom, dbm_top;
    long epochs, batch, k, mom_epochs, ckpt_every, stop_after;
    double lr, lr_decay, momentum, init_momentum, wd, sparsity, sparsity_cost;
    int pcd, learn_sigma, allow_real, emit, force, resume, threads;
    uint64_t seed;
} options;

/* Check every row against the visible units; dies naming the first bad
 * row. */
static void check_rows(const rbm *m, const dataset *ds, int allow_real,
                       const char *what)
{
    bm_layer L = rbm_visible_layer(m);
    cli_check_dataset(ds, &L, allow_real, what);
}

/* The options string stored in a checkpoint; --resume requires equality.
 * (The epoch count is left out so a run may be resumed with more.) */
static void options_key(const options *o, const dataset *ds, char *buf,
                        size_t n)
{
    snprintf(buf, n, "vis=%d hid=%d nh=%d K=%d bottom=%d top=%d batch=%ld "
             "lr=%.9g decay=%.9g k=%ld pcd=%d mom=%.9g imom=%.9g mep=%ld "
             "wd=%.9g sp=%.9g spc=%.9g ls=%d real=%d seed=%llu threads=%d "
             "rows=%llu cols=%d dtype=%d crc=%08x",
             o->vis, o->hid, o->nh, o->softmax_group, o->dbm_bottom,
             o->dbm_top, o->batch, o->lr, o->lr_decay, o->k, o->pcd,
             o->momentum, o->init_momentum, o->mom_epochs, o->wd,
             o->sparsity, o->sparsity_cost, o->learn_sigma, o->allow_real,
             (unsigned long long)o->seed, o->threads,
             (unsigned long long)ds->rows, ds->V, ds->dtype, ds->crc);
}

/* Provenance attributes (no dates: identical runs give identical files). */
static void set_provenance(tz_model *mf, const options *o, const dataset *ds,
                           double recon)
{
    tz_header *h = &mf->meta;
    tz_attr_set_s(h, "rbmkit.version", RBMKIT_VERSION);
    tz_attr_set_i(h, "train.epochs", o->epochs);
    tz_attr_set_i(h, "train.batch", o->batch);
    tz_attr_set_f(h, "train.learning_rate", o->lr);
    tz_attr_set_f(h, "train.lr_decay", o->lr_decay);
    tz_attr_set_i(h, "train.cd_steps", o->k);
    tz_attr_set_i(h, "train.pcd", o->pcd);
    tz_attr_set_f(h, "train.momentum", o->momentum);
    tz_attr_set_f(h, "train.initial_momentum", o->init_momentum);
    tz_attr_set_i(h, "train.momentum_epochs", o->mom_epochs);
    tz_attr_set_f(h, "train.weight_decay", o->wd);
    tz_attr_set_f(h, "train.sparsity", o->sparsity);
    tz_attr_set_f(h, "train.sparsity_cost", o->sparsity_cost);
    tz_attr_set_i(h, "train.learn_sigma", o->learn_sigma);
    tz_attr_set_i(h, "train.allow_real", o->allow_real);
    tz_attr_set_i(h, "train.seed", (int64_t)o->seed);
    tz_attr_set_i(h, "train.threads", o->threads);
    tz_attr_set_i(h, "train.data_rows", (int64_t)ds->rows);
    tz_attr_set_i(h, "train.data_columns", ds->V);
    tz_attr_set_s(h, "train.data_dtype", tz_dtype_name(ds->dtype));
    tz_attr_set_i(h, "train.data_crc32c", ds->crc);
    tz_attr_set_f(h, "train.recon_error", recon);
}

static void save_checkpoint(const char *path, const rbm *m,
                            const rbm_trainer *t, const options *o,
                            const dataset *ds, const char *key, long epoch,
                            long batch, double recon_sum)
{
    tz_model *mf = tz_model_new();
    if (!mf || rbm_to_model(m, mf) || rbm_trainer_save(t, mf))
        cli_die("out of memory");
    set_provenance(mf, o, ds, 0);
    tz_attr_set_s(&mf->meta, "ckpt.options", key);
    tz_attr_set_i(&mf->meta, "ckpt.epoch", epoch);
    tz_attr_set_i(&mf->meta, "ckpt.batch", batch);
    tz_attr_set_f(&mf->meta, "ckpt.recon_sum", recon_sum);
    char err[400];
    if (tz_model_save(mf, path, err, sizeof err))
        cli_die("%s", err);
    tz_model_free(mf);
}

/* Mean free energy of rows [0, n) of ds. */
static double mean_free_energy(const rbm *m, const dataset *ds, uint64_t n)
{
    enum { CH = 256 };
    float *buf = malloc((size_t)CH * ds->V * sizeof *buf);
    double *F = malloc(CH * sizeof *F), sum = 0;
    if (!buf || !F)
        cli_die("out of memory");
    for (uint64_t r0 = 0; r0 < n; r0 += CH) {
        int c = n - r0 < CH ? (int)(n - r0) : CH;
        dataset_gather(ds, NULL, r0, c, buf);
        if (rbm_free_energy(m, c, buf, F))
            cli_die("out of memory");
        for (int b = 0; b < c; b++)
            sum += F[b];
    }
    free(buf);
    free(F);
    return sum / (double)n;
}

/* One chunk of emit_hidden: rows [r0, r0 + n) of ds, split among the
 * threads as encode splits a batch, so that the output is the same. */
typedef struct {
    const rbm *m;
    const dataset *ds;
    uint64_t r0;
    int n;
    float *buf, *ph;      /* (n, V), (n, H) */
    volatile int failed;  /* a thread ran out of memory */
} emit_job;

static void emit_part(void *arg, int id, int T)
{
    emit_job *J = arg;
    int a = par_split(J->n, T, id), b = par_split(J->n, T, id + 1);
    dataset_gather(J->ds, NULL, J->r0 + (uint64_t)a, b - a,
           J->buf + (size_t)a * J->ds->V);
    if (rbm_hidden_probs(J->m, b - a, J->buf + (size_t)a * J->ds->V,
                         J->ph + (size_t)a * J->m->nh))
        J->failed = 1;
}

static void emit_hidden(const rbm *m, const dataset *ds, int force,
                        int threads)
{
    tz_writer *w = cli_writer_stdout(force);
    tz_header h;
    tz_header_init(&h);
    uint64_t dims[1] = {(uint64_t)m->nh};
    tz_header_set_shape(&h, TZ_F32, 1, dims);
    if (m->hid == RBM_BERNOULLI)
        tz_attr_set_s(&h, "data.values", "probabilities");
    int e = tz_writer_begin(w, &h);
    tz_header_clear(&h);
    if (e)
        cli_die_writer("", w, e);
    enum { CH = 256 };
    float *buf = malloc((size_t)CH * ds->V * sizeof *buf);
    float *ph = malloc((size_t)CH * m->nh * sizeof *ph);
    par_pool *pool = par_new(threads);
    if (!buf || !ph || !pool)
        cli_die("out of memory");
    for (uint64_t r0 = 0; r0 < ds->rows; r0 += CH) {
        int c = ds->rows - r0 < CH ? (int)(ds->rows - r0) : CH;
        emit_job J = {m, ds, r0, c, buf, ph, 0};
        par_run(pool, emit_part, &J);
        if (J.failed)
            cli_die("out of memory");
        if ((e = tz_write(w, ph, (size_t)c)))
            cli_die_writer("", w, e);
    }
    par_free(pool);
    free(buf);
    free(ph);
    cli_finish_writer(w);
}

int main(int argc, char **argv)
{
    cli_init(argc, argv, "rbm-train");
    options o = {
        .vis = RBM_BERNOULLI, .hid = RBM_BERNOULLI, .nh = 500,
        .epochs = 10, .batch = 100, .k = 1, .lr = -1, .momentum = 0.9,
        .init_momentum = 0.5, .mom_epochs = 5, .wd = 2e-4,
        .sparsity_cost = 0.1, .seed = 1,
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:V:H:e:b:l:k:s:j:fqh", long_opts,
                            NULL)) != -1) {
        switch (c) {
        case 'o': o.output = optarg; break;
        case 'V':
            if ((o.vis = rbm_unit_parse(optarg)) < 0)
                cli_usage_error("invalid visible unit type '%s'", optarg);
            break;
        case OPT_HIDDEN_TYPE:
            o.hid = rbm_unit_parse(optarg);
            if (o.hid != RBM_BERNOULLI && o.hid != RBM_GAUSSIAN)
                cli_usage_error("invalid hidden unit type '%s'", optarg);
            break;
        case 'H': o.nh = (int)cli_long(optarg, 1, 1 << 20, "hidden unit count"); break;
        case OPT_SOFTMAX_GROUP:
            o.softmax_group = (int)cli_long(optarg, 1, 1 << 24, "softmax group size");
            break;
        case OPT_DBM_BOTTOM: o.dbm_bottom = 1; break;
        case OPT_DBM_TOP: o.dbm_top = 1; break;
        case 'e': o.epochs = cli_long(optarg, 0, 1000000, "epoch count"); break;
        case 'b': o.batch = cli_long(optarg, 1, 1000000, "batch size"); break;
        case 'l': o.lr = cli_double(optarg, 0, 100, "learning rate"); break;
        case OPT_LR_DECAY: o.lr_decay = cli_double(optarg, 0, 1e12, "learning-rate decay"); break;
        case 'k': o.k = cli_long(optarg, 1, 100000, "CD step count"); break;
        case OPT_PCD: o.pcd = 1; break;
        case OPT_MOMENTUM: o.momentum = cli_double(optarg, 0, 0.999, "momentum"); break;
        case OPT_INIT_MOMENTUM: o.init_momentum = cli_double(optarg, 0, 0.999, "momentum"); break;
        case OPT_MOM_EPOCHS: o.mom_epochs = cli_long(optarg, 0, 1000000, "momentum epochs"); break;
        case OPT_WD: o.wd = cli_double(optarg, 0, 1, "weight decay"); break;
        case OPT_SPARSITY: o.sparsity = cli_double(optarg, 0, 0.999, "sparsity target"); break;
        case OPT_SPARSITY_COST: o.sparsity_cost = cli_double(optarg, 0, 1000, "sparsity cost"); break;
        case OPT_LEARN_SIGMA: o.learn_sigma = 1; break;
        case OPT_ALLOW_REAL: o.allow_real = 1; break;
        case 's': o.seed = cli_u64(optarg, "seed"); break;
        case 'j': o.threads = (int)cli_long(optarg, 0, 1024, "thread count"); break;
        case OPT_EMIT: o.emit = 1; break;
        case 'f': o.force = 1; break;
        case OPT_LOG: o.log = optarg; break;
        case OPT_VALID: o.valid = optarg; break;
        case OPT_CKPT_EVERY: o.ckpt_every = cli_long(optarg, 0, 1000000, "checkpoint interval"); break;
        case OPT_RESUME: o.resume = 1; break;
        case OPT_STOP_AFTER: o.stop_after = cli_long(optarg, 0, 1L << 40, "batch count"); break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(); cli_close_stdout(); return 0;
        case OPT_VERSION: cli_version();
        default:
            if (cli_stream_option(c, optarg))
                break;
            cli_option_error(c, argv);
        }
    }
    if (!o.output)
        cli_usage_error("no model file given (-o MODEL)");
    if (optind < argc - 1)
        cli_usage_error("too many arguments");
    o.input = optind < argc ? argv[optind] : NULL;
    if (o.softmax_group && o.vis != RBM_SOFTMAX)
        cli_usage_error("--softmax-group needs --visible softmax");
    if (o.learn_sigma && o.vis != RBM_GAUSSIAN)
        cli_usage_error("--learn-sigma needs --visible gaussian");
    if (o.valid && (o.dbm_bottom || o.dbm_top))
        cli_usage_error("--valid: a DBM pretraining layer (--dbm-bottom, "
                        "--dbm-top) has no free energy of its own");
    if (o.lr < 0)
        o.lr = o.vis == RBM_GAUSSIAN ? 0.01 : o.vis == RBM_REPSOFTMAX ? 0.001 : 0.1;
    if (o.emit)
        cli_check_stdout(o.force);
    /* our threads split each batch, each running single-threaded BLAS */
    if (!o.threads)
        o.threads = par_cpu_count();
    gemm_init(1);

    dataset ds;
    cli_load_dataset(o.input, &ds);
    /* p(h|v) from the layer below (--emit, encode) is valid bernoulli input:
     * greedy stacking is a pipe */
    if (ds.probs && ds.dtype != TZ_U8)
        o.allow_real = 1;
    if (o.allow_real && o.vis == RBM_BERNOULLI && ds.dtype == TZ_U8)
        ds.scale = 1.0f / 255;
    if (o.vis == RBM_SOFTMAX) {
        if (!o.softmax_group)
            o.softmax_group = ds.V;
        if (ds.V % o.softmax_group)
            cli_die("softmax group size %d does not divide the %d columns",
                    o.softmax_group, ds.V);
    }

    char key[1024];
    options_key(&o, &ds, key, sizeof key);
    char *ckpt = cli_ckpt_path(o.output);
    rbm *m = NULL;
    rbm_trainer *t = NULL;
    long start_epoch = 0, start_batch = 0;
    double recon_sum = 0;
    if (o.resume) {
        if (access(ckpt, F_OK) != 0)
            cli_die("%s: no checkpoint to resume from", ckpt);
        tz_model *cf = cli_load_model(ckpt);
        char err[300];
        m = rbm_from_model(cf, err, sizeof err);
        if (!m)
            cli_die("%s: %s", ckpt, err);
        if (m->nv != ds.V)
            cli_die("input has %d columns, checkpoint %s expects %d", ds.V,
                    ckpt, m->nv);
        const char *ck = tz_attr_get_s(&cf->meta, "ckpt.options", "");
        if (strcmp(ck, key) != 0)
            cli_die("%s: checkpoint was made with other options or data",
                    ckpt);
        t = rbm_trainer_new(m, (int)o.batch, 0);
        if (!t)
            cli_die("out of memory");
        if (rbm_trainer_load(t, cf))
            cli_die("%s: %s", ckpt, tz_model_error(cf));
        start_epoch = (long)tz_attr_get_i(&cf->meta, "ckpt.epoch", 0);
        start_batch = (long)tz_attr_get_i(&cf->meta, "ckpt.batch", 0);
        recon_sum = tz_attr_get_f(&cf->meta, "ckpt.recon_sum", 0);
        tz_model_free(cf);
    } else {
        m = rbm_new(ds.V, o.nh, o.vis, o.hid);
        if (!m)
            cli_die("out of memory");
    }
    if (o.vis == RBM_SOFTMAX)
        m->softmax_group = o.softmax_group;
    m->up_scale = o.dbm_bottom ? 2.0f : 1.0f;
    m->down_scale = o.dbm_top ? 2.0f : 1.0f;
    check_rows(m, &ds, o.allow_real, o.input ? o.input : "stdin");

    dataset vd = {.scale = 1};
    if (o.valid) {
        cli_load_dataset(o.valid, &vd);
        if (vd.V != ds.V)
            cli_die("%s: input has %d columns, model expects %d", o.valid,
                    vd.V, ds.V);
        if (o.allow_real && o.vis == RBM_BERNOULLI && vd.dtype == TZ_U8)
            vd.scale = 1.0f / 255;
        check_rows(m, &vd, o.allow_real, o.valid);
    }

    rng_t root;
    rng_seed(&root, o.seed);
    rng_t init_rng, order_root;
    rng_split(&init_rng, &root, 1);
    rng_split(&order_root, &root, 2);
    uint64_t train_seed = rng_next(&root);
    if (!o.resume) {
        double *mean = calloc((size_t)ds.V, sizeof *mean);
        float *fmean = malloc((size_t)ds.V * sizeof *fmean);
        if (!mean || !fmean || dataset_column_sums(&ds, mean))
            cli_die("out of memory");
        for (int i = 0; i < ds.V; i++)
            fmean[i] = (float)(mean[i] / (double)ds.rows);
        rbm_init_params(m, fmean, &init_rng);
        free(mean);
        free(fmean);
        t = rbm_trainer_new(m, (int)o.batch, train_seed);
        if (!t)
            cli_die("out of memory");
    }

    if (rbm_trainer_set_threads(t, o.threads))
        cli_die("cannot start %d threads", o.threads);

    FILE *logf = o.log ? cli_open_log(o.log, o.resume, o.valid
        ? "epoch\tseconds\trecon_error\tfe_train\tfe_valid\tfe_gap"
        : "epoch\tseconds\trecon_error") : NULL;

    cli_trap_stop_signals();

    uint64_t N = ds.rows;
    long nb = (long)((N + o.batch - 1) / o.batch);
    uint64_t *perm = malloc(N * sizeof *perm);
    float *batch = malloc((size_t)o.batch * ds.V * sizeof *batch);
    if (!perm || !batch)
        cli_die("out of memory");
    rbm_train_opts to;
    rbm_train_opts_init(&to);
    to.k = (int)o.k;
    to.pcd = o.pcd;
    to.weight_decay = (float)o.wd;
    to.sparsity_target = (float)o.sparsity;
    to.sparsity_cost = (float)o.sparsity_cost;
    to.learn_sigma = o.learn_sigma;
    long done = 0;
    double last_recon = 0;
    for (long ep = start_epoch; ep < o.epochs; ep++) {
        double t0 = cli_now(), tshow = t0;
        rng_t order = order_root, er;
        rng_split(&er, &order, (uint64_t)ep);
        rng_permutation(&er, perm, N);
        to.lr = (float)(o.lr_decay > 0 ? o.lr / (1 + ep / o.lr_decay) : o.lr);
        to.momentum = (float)(ep < o.mom_epochs ? o.init_momentum : o.momentum);
        for (long bi = ep == start_epoch ? start_batch : 0; bi < nb; bi++) {
            uint64_t r0 = (uint64_t)bi * o.batch;
            int B = N - r0 < (uint64_t)o.batch ? (int)(N - r0) : (int)o.batch;
            dataset_gather(&ds, perm + r0, 0, B, batch);
            recon_sum += rbm_train_step(t, B, batch, &to);
            if (o.stop_after && ++done == o.stop_after)
                cli_stop = SIGTERM;
            if (cli_stop) {
                save_checkpoint(ckpt, m, t, &o, &ds, key, ep, bi + 1, recon_sum);
                cli_interrupted(ckpt, ep, bi + 1);
            }
            cli_batch_progress(&tshow, ep, o.epochs, bi, nb,
                               recon_sum / (double)(r0 + B));
        }
        last_recon = recon_sum / (double)N;
        double secs = cli_now() - t0;
        cli_epoch_progress(ep, o.epochs, secs, last_recon);
        if (logf) {
            fprintf(logf, "%ld\t%.3f\t%.6f", ep + 1, secs, last_recon);
            if (o.valid) {
                uint64_t n = vd.rows < N ? vd.rows : N;
                double ft = mean_free_energy(m, &ds, n);
                double fv = mean_free_energy(m, &vd, vd.rows);
                fprintf(logf, "\t%.6f\t%.6f\t%.6f", ft, fv, fv - ft);
            }
            fputc('\n', logf);
            fflush(logf);
        }
        recon_sum = 0;
        if (o.ckpt_every && (ep + 1) % o.ckpt_every == 0 && ep + 1 < o.epochs)
            save_checkpoint(ckpt, m, t, &o, &ds, key, ep + 1, 0, 0);
    }
    cli_restore_signals();
    if (logf && fclose(logf) != 0)
        cli_die("%s:", o.log);

    tz_model *mf = tz_model_new();
    if (!mf || rbm_to_model(m, mf))
        cli_die("out of memory");
    set_provenance(mf, &o, &ds, last_recon);
    char err[400];
    if (tz_model_save(mf, o.output, err, sizeof err))
        cli_die("%s", err);
    tz_model_free(mf);
    if (unlink(ckpt) != 0 && errno != ENOENT)
        cli_warn("%s: cannot remove:", ckpt);
    rbm_trainer_free(t);          /* stops its threads */
    t = NULL;
    if (o.emit)
        emit_hidden(m, &ds, o.force, o.threads);
    rbm_free(m);
    free(perm);
    free(batch);
    free(ckpt);
    dataset_free(&ds);
    dataset_free(&vd);
    return 0;
}
