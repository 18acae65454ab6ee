/* joint - multimodal deep models: a joint layer over several modalities,
 * each a row-aligned stream with its own unit type and, optionally, its
 * own pretrained pathway.
 *
 *   joint -o MODEL -H N -m image=IMG -m text=TXT [-p image=IMG.rbm] ...
 *       a multimodal DBN (model.type mdbn): the joint RBM trained on the
 *       top codes of the pathways (recognition up-pass)
 *   joint --dbm -o MODEL -H N -m ... [-p NAME=L1.rbm|DBM] ...
 *       a multimodal DBM (model.type dbm): the joint RBM pretrained on the
 *       doubled top codes with doubled top-down input, then the whole tree
 *       trained jointly (mean-field data term, persistent chains)
 *
 * A row whose values are all NaN marks its modality absent in that row;
 * training infers it from the others.  Training follows stack: data in
 * memory, shuffled mini-batches from --seed, the model written atomically,
 * SIGINT/SIGTERM stop at the end of a batch with MODEL.ckpt for --resume.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bm.h"
#include "cli.h"
#include "dataset.h"
#include "dbn.h"
#include "gemm.h"
#include "mdbn.h"
#include "model.h"
#include "par.h"
#include "rbm.h"
#include "rng.h"
#include "tz.h"

#define MAX_MOD 8

static void usage(void)
{
    printf(
"Usage: joint -o MODEL [--dbm] -H N -m NAME=DATA -m NAME=DATA... [OPTION]...\n"
"Train a multimodal deep model: one joint layer of N units over several\n"
"modalities, each a row-aligned tensor stream (a file, or <(...)) with its\n"
"own unit type and, optionally, its own pretrained pathway.  The default is\n"
"a multimodal DBN (the joint RBM on the pathways' top codes); --dbm trains\n"
"a multimodal DBM (the joint RBM pretrained, then the whole tree jointly).\n"
"\n"
"Modalities:\n"
"  -o, --output MODEL        model file to write (required)\n"
"  -m, --modality NAME=DATA  a modality and its rows; NAME may be left out\n"
"                            when DATA's modality.name attribute gives it\n"
"  -V, --visible NAME=TYPE   unit type of a modality without a pathway:\n"
"                            bernoulli, gaussian, softmax or\n"
"                            replicated-softmax (default: bernoulli)\n"
"      --softmax-group NAME=K  softmax modality: group size (default: all\n"
"                            columns form one group)\n"
"  -p, --pathway NAME=MODEL  the modality's pretrained pathway: an RBM, a DBN\n"
"                            (without --dbm) or a DBM chain (--dbm) whose\n"
"                            visible layer takes DATA; without one, the\n"
"                            modality joins the joint layer directly\n"
"  -H, --hidden N            joint layer units (default: 500)\n"
"      --dbm                 a multimodal DBM (default: a multimodal DBN)\n"
"  -f, --force               use pathways that were not pretrained for the\n"
"                            model (doubling missing for --dbm, or present\n"
"                            without it)\n"
"Training:\n"
"      --pretrain-epochs N   --dbm: epochs of the joint RBM (default: 10)\n"
"      --pretrain-rate X     --dbm: its learning rate (default: 0.01; 0.001\n"
"                            with a gaussian or replicated-softmax modality)\n"
"      --pretrain-momentum M --dbm: its momentum after the first epochs\n"
"                            (default: 0.5)\n"
"  -e, --epochs N            the joint RBM (default) or, with --dbm, joint\n"
"                            training of the whole tree (default: 10)\n"
"  -b, --batch N             rows per mini-batch (default: 100)\n"
"  -l, --learning-rate X     the joint RBM's rate, default as --pretrain-rate;\n"
"                            --dbm: joint training's (default: 0.001)\n"
"      --lr-decay R          --dbm: divide the rate by R after every update\n"
"                            of joint training (default: 1.000015)\n"
"      --lr-min X            --dbm: the rate never falls below X\n"
"                            (default: learning rate / 10)\n"
"      --fine-tune N         a multimodal DBN: N epochs of up-down fine-tuning\n"
"                            of the whole after the joint RBM (unties the\n"
"                            pathways; rows missing a modality are left out)\n"
"                            (default: 0)\n"
"      --fine-tune-rate X    its learning rate (default: 0.01)\n"
"  -k, --cd-steps N          its Gibbs steps in the top RBM (default: 10)\n"
"      --momentum M          momentum after the first epochs (default: 0.5 for\n"
"                            the joint RBM, 0.9 for --dbm joint training)\n"
"      --initial-momentum M  momentum in the first epochs (default: 0.5)\n"
"      --momentum-epochs N   epochs at the initial momentum (default: 5)\n"
"      --weight-decay X      L2 coefficient on the weights (default: 0.0002)\n"
"      --chains N            persistent chains (default: 100)\n"
"      --sweeps N            Gibbs sweeps of the chains per update (default: 5)\n"
"      --mf-iters N          mean-field sweeps at most (default: 30)\n"
"      --mf-tol X            mean-field stops when no mean changes by more\n"
"                            than X (default: 1e-05)\n"
"      --damping X           mean-field damping in [0, 1) (default: 0)\n"
"      --sparsity P          target mean activity of hidden layers; 0 = off\n"
"                            (default: 0)\n"
"      --sparsity-cost X     weight of the sparsity penalty (default: 0.1)\n"
"      --allow-real          bernoulli inputs may be probabilities in [0,1];\n"
"                            u8 input is then read as grey levels / 255\n"
"  -s, --seed N              initialisation, chains, shuffling (default: 1)\n"
"  -j, --threads N           threads; 0 = all CPUs (default: 0); the model\n"
"                            depends on the count\n"
"Monitoring and recovery:\n"
"      --log FILE            per-epoch TSV: phase (pretrain, joint, fine-tune),\n"
"                            epoch, seconds, recon_error, learning_rate,\n"
"                            mf_sweeps\n"
"      --checkpoint-every N  write MODEL.ckpt every N epochs; 0 = only when\n"
"                            interrupted (default: 0)\n"
"      --resume              continue from MODEL.ckpt\n"
"      --stop-after-batches N  testing: act as if SIGTERM arrived after N\n"
"                            batches (default: 0 = never)\n"
"  -q, --quiet               no progress on stderr\n"
"  -h, --help                this help\n"
"      --version             version\n"
"\n"
"An absent modality in a row is a row of NaN values (every column); such\n"
"rows are inferred from the row's other modalities during training.  A DBM\n"
"pathway RBM should be pretrained with rbm-train --dbm-bottom (its hidden\n"
"layer also has the joint layer above it).  Layers are named after the\n"
"modalities: NAME, NAME_h1, NAME_h2, ..., and joint.\n");
}

enum {
    OPT_DBM = 256, OPT_SOFTMAX_GROUP, OPT_PRE_EPOCHS, OPT_PRE_RATE, OPT_PRE_MOM,
    OPT_FINE_TUNE, OPT_FT_RATE,
    OPT_LR_DECAY, OPT_LR_MIN, OPT_MOMENTUM, OPT_INIT_MOMENTUM,
    OPT_MOM_EPOCHS, OPT_WD, OPT_CHAINS, OPT_SWEEPS, OPT_MF_ITERS, OPT_MF_TOL,
    OPT_DAMPING, OPT_SPARSITY, OPT_SPARSITY_COST, OPT_ALLOW_REAL, OPT_LOG,
    OPT_CKPT_EVERY, OPT_RESUME, OPT_STOP_AFTER, OPT_VERSION
};

static const struct option long_opts[] = {
    {"output", required_argument, 0, 'o'},
    {"modality", required_argument, 0, 'm'},
    {"visible", required_argument, 0, 'V'},
    {"softmax-group", required_argument, 0, OPT_SOFTMAX_GROUP},
    {"pathway", required_argument, 0, 'p'},
    {"hidden", required_argument, 0, 'H'},
    {"dbm", no_argument, 0, OPT_DBM},
    {"force", no_argument, 0, 'f'},
    {"pretrain-epochs", required_argument, 0, OPT_PRE_EPOCHS},
    {"pretrain-rate", required_argument, 0, OPT_PRE_RATE},
    {"pretrain-momentum", required_argument, 0, OPT_PRE_MOM},
    {"fine-tune", required_argument, 0, OPT_FINE_TUNE},
    {"fine-tune-rate", required_argument, 0, OPT_FT_RATE},
    {"cd-steps", required_argument, 0, 'k'},
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
    char name[BM_NAME_MAX];
    const char *data, *pathway;     /* paths */
    int unit, group;                /* -V / --softmax-group (0 = unset) */
    dataset ds;
    int vis, top;                   /* its visible and top layers in the tree */
    int depth;                      /* pathway layers above the visible one */
} modality;

typedef struct {
    const char *output, *log;
    int dbm, force, allow_real, resume, threads, hidden;
    long pre_epochs, epochs, batch, mom_epochs, chains, sweeps, mf_iters;
    long ckpt_every, stop_after;
    double pre_lr, lr, lr_decay, lr_min, momentum, init_momentum, wd, mf_tol;
    double pre_momentum;
    long fine_tune, cd_steps;      /* MDBN: up-down epochs, CD steps */
    double ft_lr;
    double damping, sparsity, sparsity_cost;
    uint64_t seed;
    modality mod[MAX_MOD];
    int nmod;
    /* -V / --softmax-group / -p given before their -m: kept by name */
    struct { char name[BM_NAME_MAX]; int kind; const char *val; } late[3 * MAX_MOD];
    int nlate;
} options;

/* ---- options ------------------------------------------------------------- */

/* Split "NAME=VALUE" into name (checked) and value; with no '=' and
 * name_optional, name is "" and value the whole argument. */
static const char *split_arg(const char *arg, char *name, const char *opt,
                             int name_optional)
{
    const char *eq = strchr(arg, '=');
    if (!eq) {
        if (!name_optional)
            cli_usage_error("%s wants NAME=VALUE, not '%s'", opt, arg);
        name[0] = 0;
        return arg;
    }
    size_t n = (size_t)(eq - arg);
    if (n == 0 || n >= BM_NAME_MAX)
        cli_usage_error("%s: modality names are 1 to %d characters", opt,
                        BM_NAME_MAX - 1);
    memcpy(name, arg, n);
    name[n] = 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            cli_usage_error("%s: modality name '%s': use a-z, 0-9 and _",
                            opt, name);
    }
    if (!eq[1])
        cli_usage_error("%s %s=: nothing after '='", opt, name);
    return eq + 1;
}

static modality *find_mod(options *o, const char *name)
{
    for (int i = 0; i < o->nmod; i++)
        if (strcmp(o->mod[i].name, name) == 0)
            return &o->mod[i];
    return NULL;
}

static void apply_late(options *o)
{
    for (int i = 0; i < o->nlate; i++) {
        modality *m = find_mod(o, o->late[i].name);
        const char *opt = o->late[i].kind == 'V' ? "--visible"
                        : o->late[i].kind == 'p' ? "--pathway"
                                                 : "--softmax-group";
        if (!m)
            cli_usage_error("%s %s=...: no modality '%s' (give it with -m "
                            "%s=DATA)", opt, o->late[i].name,
                            o->late[i].name, o->late[i].name);
        const char *v = o->late[i].val;
        if (o->late[i].kind == 'V') {
            int u = bm_unit_parse(v);
            if (u < 0)
                cli_usage_error("--visible %s=%s: unit type must be "
                                "bernoulli, gaussian, softmax or "
                                "replicated-softmax", m->name, v);
            m->unit = u;
        } else if (o->late[i].kind == 'p') {
            if (m->pathway)
                cli_usage_error("two pathways for modality '%s'", m->name);
            m->pathway = v;
        } else {
            m->group = (int)cli_long(v, 1, 1 << 24, "softmax group");
        }
    }
}

/* ---- the network ----------------------------------------------------------- */

typedef struct {
    bm_net *net;          /* the whole tree */
    mdbn *md;             /* the MDBN over net (without --dbm) */
    int joint;
    float *top_hbias[MAX_MOD]; /* pathway's own bias of its top layer */
} tree;

/* A pathway as a chain of layers: widths, units, weights, biases. */
typedef struct {
    int nl;                        /* layers, visible first */
    bm_layer L[BM_MAX_LAYERS];     /* views into the pathway model */
    const float *W[BM_MAX_LAYERS]; /* (n_k, n_k+1) */
    const float *up[BM_MAX_LAYERS];/* recognition biases of layers >= 1 */
    model *m;                      /* owner of the arrays */
} chain;

static void load_chain(const options *o, const modality *md, chain *c)
{
    char err[400];
    model *m = model_load(md->pathway, err, sizeof err);
    if (!m)
        cli_die("%s", err);
    memset(c, 0, sizeof *c);
    c->m = m;
    if (m->kind == MODEL_RBM) {
        rbm *r = m->rbm;
        float want_up = o->dbm ? 2.0f : 1.0f;
        if (!o->force && (r->up_scale != want_up || r->down_scale != 1.0f))
            cli_die("%s: pathway of '%s' was not pretrained for a %s (%s); "
                    "retrain it%s, or use --force", md->pathway, md->name,
                    o->dbm ? "multimodal DBM" : "multimodal DBN",
                    o->dbm ? "it needs a doubled bottom-up input"
                           : "it has DBM doubling",
                    o->dbm ? " with rbm-train --dbm-bottom" : " without --dbm-*");
        if (r->hid != RBM_BERNOULLI)
            cli_die("%s: a pathway needs bernoulli hidden units", md->pathway);
        c->nl = 2;
        c->L[0] = rbm_visible_layer(r);
        c->L[1] = rbm_hidden_layer(r);
        c->W[0] = r->W;
        c->up[1] = r->hbias;
    } else if (m->kind == MODEL_DBN) {
        if (o->dbm)
            cli_die("%s: a DBN; a multimodal DBM's pathway is an RBM or a "
                    "DBM (or leave out --dbm)", md->pathway);
        dbn *d = m->dbn;
        for (int k = 0; k < d->n; k++)
            if (d->G[k])
                cli_die("%s: a fine-tuned DBN (untied weights); give the "
                        "pathway before stack --fine-tune", md->pathway);
        c->nl = d->n + 1;
        for (int l = 0; l <= d->n; l++)
            c->L[l] = dbn_layer(d, l);
        for (int k = 0; k < d->n; k++) {
            c->W[k] = d->r[k]->W;
            c->up[k + 1] = d->r[k]->hbias;
        }
    } else if (m->kind == MODEL_DBM) {
        if (!o->dbm)
            cli_die("%s: a DBM; its pathway in a multimodal DBN is an RBM "
                    "or a DBN (or use --dbm)", md->pathway);
        bm_net *net = m->net;
        for (int l = 0; l < net->nl; l++) {
            if (l > 0 && net->vis[l])
                cli_die("%s: a DBM with more than one visible layer ('%s'); "
                        "a pathway has one", md->pathway, net->L[l].name);
            if (l < net->nl - 1 && bm_find_edge(net, l, l + 1) < 0)
                cli_die("%s: not a chain of layers", md->pathway);
        }
        c->nl = net->nl;
        for (int l = 0; l < net->nl; l++)
            c->L[l] = net->L[l];
        for (int k = 0; k + 1 < net->nl; k++)
            c->W[k] = net->E[bm_find_edge(net, k, k + 1)].W;
        for (int l = 1; l < net->nl; l++)
            c->up[l] = net->L[l].bias;
    } else {
        cli_die("%s: a %s cannot be a pathway", md->pathway,
                model_kind_name(m->kind));
    }
    for (int l = 1; l < c->nl; l++)
        if (c->L[l].unit != BM_BERNOULLI)
            cli_die("%s: a pathway needs bernoulli hidden layers",
                    md->pathway);
}

/* A softmax modality given as one column of class indices becomes one-hot
 * rows of K columns (K = 0: the largest index + 1). */
static void index_to_onehot(modality *m, int K)
{
    if (!dataset_is_index(&m->ds))
        return;
    uint64_t row;
    int e = dataset_onehot(&m->ds, K, &row);
    if (e == BM_E_NOMEM)
        cli_die("out of memory");
    if (e)
        cli_die("%s: row %llu: not a class index%s", m->data,
                (unsigned long long)(row + 1), K ? " below the group size" : "");
}

/* The tree: modality 0's layers first (visible, then up its pathway), the
 * joint layer, then every other modality from its top down. */
static void build_tree(options *o, tree *t, rng_t *rng)
{
    chain ch[MAX_MOD];
    bm_layer_spec spec[BM_MAX_LAYERS];
    char names[BM_MAX_LAYERS][BM_NAME_MAX];
    int edges[BM_MAX_LAYERS][2];
    int lay[MAX_MOD][BM_MAX_LAYERS];     /* tree index of chain layer k */
    int nl = 0, ne = 0;
    memset(t, 0, sizeof *t);
    for (int i = 0; i < o->nmod; i++) {
        modality *m = &o->mod[i];
        if (m->pathway) {
            load_chain(o, m, &ch[i]);
            bm_layer *L0 = &ch[i].L[0];
            if (L0->unit == BM_SOFTMAX && L0->group == L0->n)
                index_to_onehot(m, L0->n);
            if (L0->n != m->ds.V)
                cli_die("%s: pathway of '%s' takes rows of %d values, %s has "
                        "%d", m->pathway, m->name, L0->n, m->data, m->ds.V);
            if (m->unit >= 0 && m->unit != L0->unit)
                cli_die("--visible %s=%s, but its pathway %s has %s visible "
                        "units", m->name, bm_unit_name(m->unit), m->pathway,
                        bm_unit_name(L0->unit));
            if (m->group && L0->unit == BM_SOFTMAX && m->group != L0->group)
                cli_die("--softmax-group %s=%d, but its pathway %s has "
                        "groups of %d", m->name, m->group, m->pathway,
                        L0->group);
            m->unit = L0->unit;
        } else {
            memset(&ch[i], 0, sizeof ch[i]);
            ch[i].nl = 1;
            if (m->unit < 0)
                m->unit = BM_BERNOULLI;
            if (m->unit == BM_SOFTMAX) {
                index_to_onehot(m, m->group);
                if (m->group == 0 || m->group == 1)
                    m->group = m->ds.V;
            }
            ch[i].L[0] = (bm_layer){.unit = m->unit, .n = m->ds.V,
                                    .group = m->unit == BM_SOFTMAX
                                             ? (m->group ? m->group : m->ds.V)
                                             : m->unit == BM_REPSOFTMAX
                                             ? m->ds.V : 1};
            if (m->unit == BM_SOFTMAX && m->ds.V % ch[i].L[0].group)
                cli_die("--softmax-group %s=%d does not divide its %d "
                        "columns", m->name, m->group, m->ds.V);
        }
        if (m->group && m->unit != BM_SOFTMAX)
            cli_die("--softmax-group %s=%d: '%s' does not have softmax units",
                    m->name, m->group, m->name);
        m->depth = ch[i].nl - 1;
        if (nl + ch[i].nl + (i == 0) > BM_MAX_LAYERS)
            cli_die("too many layers (at most %d in all)", BM_MAX_LAYERS);
        if (i == 0) {           /* visible, pathway upwards, joint */
            for (int k = 0; k < ch[i].nl; k++)
                lay[i][k] = nl++;
            t->joint = nl++;
        } else {                /* top first, down to the visible */
            for (int k = ch[i].nl - 1; k >= 0; k--)
                lay[i][k] = nl++;
        }
        for (int k = 0; k < ch[i].nl; k++) {
            int l = lay[i][k];
            if (k == 0)
                snprintf(names[l], sizeof names[l], "%s", m->name);
            else if ((size_t)snprintf(names[l], sizeof names[l], "%s_h%d",
                                      m->name, k) >= sizeof names[l])
                cli_die("modality name '%s' is too long for its pathway's "
                        "layer names", m->name);
            spec[l] = (bm_layer_spec){names[l], ch[i].L[k].unit,
                                      ch[i].L[k].n,
                                      ch[i].L[k].unit == BM_SOFTMAX
                                      ? ch[i].L[k].group : 0, k == 0};
            if (k > 0) {
                edges[ne][0] = lay[i][k - 1];
                edges[ne][1] = l;
                ne++;
            }
        }
        m->vis = lay[i][0];
        m->top = lay[i][ch[i].nl - 1];
    }
    snprintf(names[t->joint], sizeof names[t->joint], "joint");
    spec[t->joint] = (bm_layer_spec){names[t->joint], BM_BERNOULLI,
                                     o->hidden, 0, 0};
    for (int i = 0; i < o->nmod; i++) {
        edges[ne][0] = o->mod[i].top;
        edges[ne][1] = t->joint;
        ne++;
    }
    const char *why;
    bm_net *net = bm_new(nl, spec, (const int (*)[2])edges, &why);
    if (!net)
        cli_die("%s", why);
    /* parameters: pathways as pretrained, joint weights N(0, 0.01^2) */
    for (int i = 0; i < o->nmod; i++) {
        chain *c = &ch[i];
        for (int k = 0; k < c->nl; k++) {
            bm_layer *L = &net->L[lay[i][k]];
            memcpy(L->bias, c->L[k].bias ? c->L[k].bias : L->bias,
                   (size_t)L->n * sizeof(float));
            if (L->sigma && c->L[k].sigma)
                memcpy(L->sigma, c->L[k].sigma, (size_t)L->n * sizeof(float));
            if (k + 1 < c->nl) {
                int e = bm_find_edge(net, lay[i][k], lay[i][k + 1]);
                bm_edge *E = &net->E[e];
                size_t n = (size_t)c->L[k].n * c->L[k + 1].n;
                if (E->a == lay[i][k]) {
                    memcpy(E->W, c->W[k], n * sizeof(float));
                } else {            /* stored (upper, lower): transpose */
                    int r = c->L[k].n, q = c->L[k + 1].n;
                    for (int a = 0; a < r; a++)
                        for (int b = 0; b < q; b++)
                            E->W[(size_t)b * r + a] = c->W[k][(size_t)a * q + b];
                }
            }
        }
        /* a DBN level's visible bias is the generative bias of its layer
         * (above), the hidden bias the recognition one: for an RBM or DBN
         * pathway the layer above the visible holds hbias as a start */
        if (c->m && c->m->kind == MODEL_DBN) {
            dbn *d = c->m->dbn;
            for (int k = 1; k < d->n; k++)
                memcpy(net->L[lay[i][k]].bias, d->r[k]->vbias,
                       (size_t)d->r[k]->nv * sizeof(float));
        }
        if (c->nl > 1) {
            int top = lay[i][c->nl - 1];
            t->top_hbias[i] = malloc((size_t)net->L[top].n * sizeof(float));
            if (!t->top_hbias[i])
                cli_die("out of memory");
            memcpy(t->top_hbias[i], c->up[c->nl - 1],
                   (size_t)net->L[top].n * sizeof(float));
        }
    }
    for (int e = 0; e < net->ne; e++)
        if (net->E[e].a == t->joint || net->E[e].b == t->joint) {
            size_t n = (size_t)net->L[net->E[e].a].n * net->L[net->E[e].b].n;
            for (size_t x = 0; x < n; x++)
                net->E[e].W[x] = (float)(0.01 * rng_normal(rng));
        }
    t->net = net;
    if (!o->dbm) {
        t->md = mdbn_new(net, t->joint, &why);     /* takes net */
        if (!t->md)
            cli_die("%s", why);
        for (int i = 0; i < o->nmod; i++) {
            chain *c = &ch[i];
            for (int k = 1; k < c->nl; k++)
                memcpy(t->md->up[lay[i][k]], c->up[k],
                       (size_t)c->L[k].n * sizeof(float));
        }
    }
    for (int i = 0; i < o->nmod; i++)
        model_free(ch[i].m);
}

/* ---- data -------------------------------------------------------------------- */

static void load_modalities(options *o)
{
    uint64_t N = 0;
    for (int i = 0; i < o->nmod; i++) {
        modality *m = &o->mod[i];
        cli_load_dataset(m->data, &m->ds);
        if (!m->name[0]) {
            if (!m->ds.modality[0])
                cli_usage_error("-m %s: no NAME= and the stream has no "
                                "modality.name attribute", m->data);
            snprintf(m->name, sizeof m->name, "%s", m->ds.modality);
        }
        if (strcmp(m->name, "joint") == 0)
            cli_usage_error("'joint' names the joint layer; call the "
                            "modality something else");
        if (i == 0)
            N = m->ds.rows;
        else if (m->ds.rows != N)
            cli_die("%s: %llu rows, but %s has %llu: modality streams must be "
                    "row-aligned", m->data, (unsigned long long)m->ds.rows,
                    o->mod[0].data, (unsigned long long)N);
        uint64_t row;
        int e = dataset_find_absent(&m->ds, &row);
        if (e == BM_E_NOMEM)
            cli_die("out of memory");
        if (e)
            cli_die("%s: row %llu: NaN in some columns (an absent modality "
                    "is a row of NaN in every column)", m->data,
                    (unsigned long long)(row + 1));
    }
    for (int i = 0; i < o->nmod; i++)
        for (int k = 0; k < i; k++)
            if (strcmp(o->mod[i].name, o->mod[k].name) == 0)
                cli_usage_error("two modalities named '%s'", o->mod[i].name);
    for (uint64_t r = 0; r < N; r++) {
        int any = 0;
        for (int i = 0; i < o->nmod && !any; i++)
            any = !o->mod[i].ds.present || o->mod[i].ds.present[r];
        if (!any)
            cli_die("row %llu: every modality is absent", (unsigned long long)(r + 1));
    }
}

static void check_modalities(options *o, const bm_net *net)
{
    for (int i = 0; i < o->nmod; i++) {
        modality *m = &o->mod[i];
        bm_layer L = net->L[m->vis];
        int real = o->allow_real;
        if (m->ds.probs && m->ds.dtype != TZ_U8)
            real = 1;
        if (real && L.unit == BM_BERNOULLI && m->ds.dtype == TZ_U8)
            m->ds.scale = 1.0f / 255;
        cli_check_dataset(&m->ds, &L, real, m->data);
        if (m->ds.absent == m->ds.rows)
            cli_die("%s: every row of modality '%s' is absent", m->data,
                    m->name);
    }
}

/* ---- one training phase ---------------------------------------------------------- */

typedef struct {
    bm_net *net;               /* what is trained */
    unsigned char vis[BM_MAX_LAYERS];
    const dataset *src[BM_MAX_LAYERS];   /* rows of each visible layer */
    const bm_mult *mult;
    int phase;                 /* 0: joint RBM, 1: the whole tree */
    long epochs;
    double momentum;           /* after o->mom_epochs */
    double lr, lr_decay, lr_min;
    bm_trainer *bt;
} phase;

static void save_model(tz_model *mf, const char *path)
{
    char err[400];
    if (tz_model_save(mf, path, err, sizeof err))
        cli_die("%s", err);
}

static void options_key(const options *o, char *buf, size_t n)
{
    int k = snprintf(buf, n, "dbm=%d H=%d pe=%ld e=%ld batch=%ld plr=%.9g "
                     "lr=%.9g decay=%.9g lrmin=%.9g mom=%.9g imom=%.9g "
                     "mep=%ld wd=%.9g chains=%ld sweeps=%ld mfi=%ld "
                     "mft=%.9g damp=%.9g sp=%.9g spc=%.9g real=%d seed=%llu "
                     "threads=%d force=%d pmom=%.9g ft=%ld ftlr=%.9g k=%ld",
                     o->dbm, o->hidden, o->pre_epochs, o->epochs, o->batch,
                     o->pre_lr, o->lr, o->lr_decay, o->lr_min, o->momentum,
                     o->init_momentum, o->mom_epochs, o->wd, o->chains,
                     o->sweeps, o->mf_iters, o->mf_tol, o->damping,
                     o->sparsity, o->sparsity_cost, o->allow_real,
                     (unsigned long long)o->seed, o->threads, o->force,
                     o->pre_momentum, o->fine_tune, o->ft_lr, o->cd_steps);
    for (int i = 0; i < o->nmod && k > 0 && (size_t)k < n; i++) {
        const modality *m = &o->mod[i];
        k += snprintf(buf + k, n - (size_t)k, " %s:%llu:%d:%d:%08x:%s",
                      m->name, (unsigned long long)m->ds.rows, m->ds.V,
                      m->ds.dtype, m->ds.crc, m->pathway ? m->pathway : "-");
    }
}

static void set_provenance(tz_model *mf, const options *o)
{
    tz_header *h = &mf->meta;
    char list[MAX_MOD * (BM_NAME_MAX + 1)] = "";
    for (int i = 0; i < o->nmod; i++) {
        strcat(list, o->mod[i].name);
        if (i + 1 < o->nmod)
            strcat(list, ",");
    }
    tz_attr_set_s(h, "rbmkit.version", RBMKIT_VERSION);
    tz_attr_set_s(h, "joint.modalities", list);
    tz_attr_set_i(h, "train.epochs", o->epochs);
    if (o->dbm) {
        tz_attr_set_i(h, "train.pretrain_epochs", o->pre_epochs);
        tz_attr_set_f(h, "train.pretrain_rate", o->pre_lr);
        tz_attr_set_f(h, "train.pretrain_momentum", o->pre_momentum);
        tz_attr_set_f(h, "train.lr_decay", o->lr_decay);
        tz_attr_set_f(h, "train.lr_min", o->lr_min);
    }
    if (o->fine_tune) {
        tz_attr_set_i(h, "train.fine_tune_epochs", o->fine_tune);
        tz_attr_set_f(h, "train.fine_tune_rate", o->ft_lr);
        tz_attr_set_i(h, "train.cd_steps", o->cd_steps);
    }
    tz_attr_set_i(h, "train.batch", o->batch);
    tz_attr_set_f(h, "train.learning_rate", o->lr);
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
    tz_attr_set_i(h, "train.allow_real", o->allow_real);
    tz_attr_set_i(h, "train.rows", (int64_t)o->mod[0].ds.rows);
    tz_attr_set_i(h, "train.seed", (int64_t)o->seed);
    tz_attr_set_i(h, "train.threads", o->threads);
    for (int i = 0; i < o->nmod; i++) {
        char key[64];
        snprintf(key, sizeof key, "joint.%s.data", o->mod[i].name);
        tz_attr_set_s(h, key, o->mod[i].data);
        char hex[9];
        snprintf(hex, sizeof hex, "%08x", o->mod[i].ds.crc);
        snprintf(key, sizeof key, "joint.%s.crc32c", o->mod[i].name);
        tz_attr_set_s(h, key, hex);
        snprintf(key, sizeof key, "joint.%s.absent_rows", o->mod[i].name);
        tz_attr_set_i(h, key, (int64_t)o->mod[i].ds.absent);
        if (o->mod[i].pathway) {
            snprintf(key, sizeof key, "joint.%s.pathway", o->mod[i].name);
            tz_attr_set_s(h, key, o->mod[i].pathway);
        }
    }
}

static tz_model *checkpoint_model(const phase *p, const options *o,
                                  const char *key, long epoch, long batch,
                                  double recon_sum, double sweeps_sum)
{
    tz_model *mf = tz_model_new();
    if (!mf || tz_attr_set_s(&mf->meta, "model.type", "dbm") ||
        bm_to_model(p->net, mf) || bm_trainer_save(p->bt, mf))
        cli_die("out of memory");
    set_provenance(mf, o);
    tz_attr_set_s(&mf->meta, "ckpt.options", key);
    tz_attr_set_i(&mf->meta, "ckpt.phase", p->phase);
    tz_attr_set_i(&mf->meta, "ckpt.epoch", epoch);
    tz_attr_set_i(&mf->meta, "ckpt.batch", batch);
    tz_attr_set_f(&mf->meta, "ckpt.recon_sum", recon_sum);
    tz_attr_set_f(&mf->meta, "ckpt.sweeps_sum", sweeps_sum);
    return mf;
}

/* Train p->net for p->epochs from (start_epoch, start_batch). */
static void run_phase(phase *p, const options *o, const char *key,
                      const char *ckpt, FILE *logf, uint64_t N,
                      long start_epoch, long start_batch, double start_recon,
                      double start_sweeps, long *done)
{
    bm_net *net = p->net;
    bm_train_opts to;
    bm_train_opts_init(&to);
    to.weight_decay = (float)o->wd;
    to.mf_iters = (int)o->mf_iters;
    to.mf_tol = (float)o->mf_tol;
    to.damping = (float)o->damping;
    to.sweeps = (int)o->sweeps;
    to.sparsity_target = (float)o->sparsity;
    to.sparsity_cost = (float)o->sparsity_cost;
    to.mult = p->mult;
    long nb = (long)((N + o->batch - 1) / o->batch);
    uint64_t *perm = malloc(N * sizeof *perm);
    float *buf[BM_MAX_LAYERS] = {0};
    unsigned char *pres[BM_MAX_LAYERS] = {0};
    if (!perm)
        cli_die("out of memory");
    for (int l = 0; l < net->nl; l++) {
        if (!p->vis[l])
            continue;
        buf[l] = malloc((size_t)o->batch * net->L[l].n * sizeof(float));
        pres[l] = malloc((size_t)o->batch);
        if (!buf[l] || !pres[l])
            cli_die("out of memory");
    }
    rng_t root, order_root;
    rng_seed(&root, o->seed);
    rng_split(&order_root, &root, 10 + (uint64_t)p->phase);
    const char *pname = p->phase ? "joint" : "pretrain";
    for (long ep = start_epoch; ep < p->epochs; ep++) {
        double t0 = cli_now(), tshow = t0, recon_sum = 0, sweeps_sum = 0;
        if (ep == start_epoch) {
            recon_sum = start_recon;
            sweeps_sum = start_sweeps;
        }
        rng_t order = order_root, er;
        rng_split(&er, &order, (uint64_t)ep);
        rng_permutation(&er, perm, N);
        to.momentum = (float)(ep < o->mom_epochs ? o->init_momentum
                                                 : p->momentum);
        double lr = p->lr;
        for (long bi = ep == start_epoch ? start_batch : 0; bi < nb; bi++) {
            uint64_t r0 = (uint64_t)bi * o->batch;
            int B = N - r0 < (uint64_t)o->batch ? (int)(N - r0) : (int)o->batch;
            for (int l = 0; l < net->nl; l++) {
                if (!p->vis[l])
                    continue;
                const dataset *ds = p->src[l];
                dataset_gather(ds, perm + r0, 0, B, buf[l]);
                for (int b = 0; b < B; b++)
                    pres[l][b] = !ds->present || ds->present[perm[r0 + b]];
            }
            if (p->lr_decay > 1) {
                double u = (double)ep * nb + bi;
                lr = p->lr * pow(p->lr_decay, -u);
                if (lr < p->lr_min)
                    lr = p->lr_min;
            }
            to.lr = (float)lr;
            bm_step_stats st;
            if (bm_train_step(p->bt, B, (const float *const *)buf,
                              (const unsigned char *const *)pres, &to, &st))
                cli_die("training step failed");
            recon_sum += st.recon;
            sweeps_sum += st.mf_sweeps * B;
            if (o->stop_after && ++*done == o->stop_after)
                cli_stop = SIGTERM;
            if (cli_stop) {
                tz_model *mf = checkpoint_model(p, o, key, ep, bi + 1,
                                                recon_sum, sweeps_sum);
                save_model(mf, ckpt);
                tz_model_free(mf);
                cli_interrupted(ckpt, ep, bi + 1);
            }
            cli_batch_progress(&tshow, ep, p->epochs, bi, nb,
                               recon_sum / (double)(r0 + B));
        }
        double secs = cli_now() - t0;
        cli_epoch_progress(ep, p->epochs, secs, recon_sum / (double)N);
        if (logf) {
            fprintf(logf, "%s\t%ld\t%.3f\t%.6f\t%.6g\t%.2f\n", pname, ep + 1,
                    secs, recon_sum / (double)N, lr, sweeps_sum / (double)N);
            fflush(logf);
        }
        if (o->ckpt_every && (ep + 1) % o->ckpt_every == 0 &&
            ep + 1 < p->epochs) {
            tz_model *mf = checkpoint_model(p, o, key, ep + 1, 0, 0, 0);
            save_model(mf, ckpt);
            tz_model_free(mf);
        }
    }
    free(perm);
    for (int l = 0; l < net->nl; l++) {
        free(buf[l]);
        free(pres[l]);
    }
}

/* ---- the joint RBM ------------------------------------------------------------------ */

/* The network of the joint RBM: the top layer of every modality (index
 * i = modality i) and the joint layer (index nmod). */
static bm_net *joint_rbm(const options *o, const tree *t)
{
    bm_layer_spec spec[BM_MAX_LAYERS];
    int edges[BM_MAX_LAYERS][2];
    const bm_net *net = t->net;
    for (int i = 0; i < o->nmod; i++) {
        const bm_layer *L = &net->L[o->mod[i].top];
        spec[i] = (bm_layer_spec){L->name, L->unit, L->n, L->group, 1};
        edges[i][0] = i;
        edges[i][1] = o->nmod;
    }
    spec[o->nmod] = (bm_layer_spec){"joint", BM_BERNOULLI, o->hidden, 0, 0};
    const char *why;
    bm_net *r = bm_new(o->nmod + 1, spec, (const int (*)[2])edges, &why);
    if (!r)
        cli_die("%s", why);
    return r;
}

/* Copy parameters between the tree and the joint RBM: the joint edges and
 * the joint layer's bias; to_tree also sets each top layer's bias (DBM:
 * the mean with the pathway's own; DBN: the generative bias), from_tree
 * the joint RBM's start (the tree's biases of the top layers). */
static void joint_copy(const options *o, tree *t, bm_net *r, int to_tree)
{
    bm_net *net = t->net;
    for (int i = 0; i <= o->nmod; i++) {
        int tl = i < o->nmod ? o->mod[i].top : t->joint;
        bm_layer *T = &net->L[tl], *R = &r->L[i];
        size_t n = (size_t)T->n * sizeof(float);
        if (!to_tree) {
            memcpy(R->bias, T->bias, n);
            if (R->sigma)
                memcpy(R->sigma, T->sigma, n);
        } else if (i < o->nmod && t->top_hbias[i] && o->dbm) {
            for (int j = 0; j < T->n; j++)
                T->bias[j] = 0.5f * (t->top_hbias[i][j] + R->bias[j]);
        } else {
            memcpy(T->bias, R->bias, n);
        }
        if (i == o->nmod)
            break;
        int et = bm_find_edge(net, tl, t->joint), er = bm_find_edge(r, i, o->nmod);
        size_t nw = (size_t)T->n * o->hidden;
        /* both store (nearer layer 0, farther): the same orientation, as
         * modality 0 holds layer 0 in both */
        if ((net->E[et].a == t->joint) != (r->E[er].a == o->nmod))
            cli_die("internal error: joint edge orientation");
        if (to_tree)
            memcpy(net->E[et].W, r->E[er].W, nw * sizeof(float));
        else
            memcpy(r->E[er].W, net->E[et].W, nw * sizeof(float));
    }
}

/* The top codes of every modality with a pathway (N, n_top) as a data set
 * for the joint RBM: DBM, the bottom-up pass with doubled input (each
 * pathway layer also has a layer above it); DBN, the recognition pass.
 * Rows where the modality is absent are NaN. */
static void top_codes(const options *o, const tree *t, dataset *out)
{
    const bm_net *net = t->net;
    uint64_t N = o->mod[0].ds.rows;
    enum { CH = 256 };
    bm_state st;
    bm_scratch *w = bm_scratch_new(net, CH);
    if (!w || bm_state_alloc(net, &st, CH))
        cli_die("out of memory");
    uint64_t *idx = malloc(CH * sizeof *idx);
    if (!idx)
        cli_die("out of memory");
    for (int i = 0; i < o->nmod; i++) {
        const modality *m = &o->mod[i];
        dataset *d = &out[i];
        if (!m->pathway) {
            *d = m->ds;          /* a view: not freed here */
            continue;
        }
        int n = net->L[m->top].n;
        memset(d, 0, sizeof *d);
        d->rows = N;
        d->V = n;
        d->dtype = TZ_F32;
        d->row_bytes = (size_t)n * sizeof(float);
        d->scale = 1;
        d->data = malloc(N * d->row_bytes);
        if (!d->data)
            cli_die("out of memory");
        if (m->ds.present) {
            d->present = malloc(N);
            if (!d->present)
                cli_die("out of memory");
            memcpy(d->present, m->ds.present, N);
            d->absent = m->ds.absent;
        }
        unsigned char clamp[BM_MAX_LAYERS] = {0};
        clamp[m->vis] = 1;
        float *vbuf = malloc((size_t)CH * m->ds.V * sizeof *vbuf);
        if (!vbuf)
            cli_die("out of memory");
        for (uint64_t r0 = 0; r0 < N;) {
            int B = 0;
            uint64_t r = r0;
            for (; r < N && B < CH; r++)
                if (!m->ds.present || m->ds.present[r])
                    idx[B++] = r;
            if (B) {
                dataset_gather(&m->ds, idx, 0, B, vbuf);
                bm_state_set(net, &st, m->vis, B, vbuf);
                if (t->md)
                    mdbn_up(t->md, &st, 0, B, clamp, 0, NULL, w);   /* recognition only */
                else
                    bm_bottom_up(net, &st, 0, B, clamp, w);
                for (int b = 0; b < B; b++)
                    memcpy((char *)d->data + idx[b] * d->row_bytes,
                           st.x[m->top] + (size_t)b * n, d->row_bytes);
            }
            for (uint64_t q = r0; q < r; q++)
                if (m->ds.present && !m->ds.present[q])
                    for (int j = 0; j < n; j++)
                        ((float *)d->data)[q * n + j] = NAN;
            r0 = r;
        }
        free(vbuf);
    }
    free(idx);
    bm_state_free(&st);
    bm_scratch_free(w);
}

/* Biases of the joint RBM's visible layers from the column means of the
 * present rows. */
static void init_visible_biases(const options *o, bm_net *r, const dataset *d)
{
    for (int i = 0; i < o->nmod; i++) {
        int V = d[i].V;
        double *sum = calloc((size_t)V, sizeof *sum);
        float *mean = malloc((size_t)V * sizeof *mean), *row = malloc((size_t)V * sizeof *row);
        if (!sum || !mean || !row)
            cli_die("out of memory");
        uint64_t cnt = 0;
        for (uint64_t q = 0; q < d[i].rows; q++) {
            if (d[i].present && !d[i].present[q])
                continue;
            dataset_gather(&d[i], NULL, q, 1, row);
            for (int j = 0; j < V; j++)
                sum[j] += row[j];
            cnt++;
        }
        bm_layer *L = &r->L[i];
        if (L->unit == BM_REPSOFTMAX) {
            double tot = 0;
            for (int j = 0; j < V; j++)
                tot += sum[j];
            for (int j = 0; j < V; j++)
                mean[j] = tot > 0 ? (float)(sum[j] / tot) : 1.0f / V;
        } else {
            for (int j = 0; j < V; j++)
                mean[j] = (float)(sum[j] / (double)cnt);
        }
        bm_layer_init_bias(L, mean);
        free(sum);
        free(mean);
        free(row);
    }
}

/* Mean document length of the present rows of a replicated-softmax
 * modality. */
static float mean_length(const dataset *ds)
{
    float *row = malloc((size_t)ds->V * sizeof *row);
    if (!row)
        cli_die("out of memory");
    double tot = 0;
    uint64_t cnt = 0;
    for (uint64_t q = 0; q < ds->rows; q++) {
        if (ds->present && !ds->present[q])
            continue;
        dataset_gather(ds, NULL, q, 1, row);
        for (int j = 0; j < ds->V; j++)
            tot += row[j];
        cnt++;
    }
    free(row);
    return cnt ? (float)(tot / (double)cnt) : 1.0f;
}

/* ---- up-down fine-tuning of a multimodal DBN ------------------------------------------- */

static tz_model *mdbn_model(const mdbn *md, const options *o)
{
    tz_model *mf = tz_model_new();
    if (!mf || tz_attr_set_s(&mf->meta, "model.type", "mdbn") ||
        mdbn_to_model(md, mf))
        cli_die("out of memory");
    set_provenance(mf, o);
    return mf;
}

/* o->fine_tune epochs of mdbn_tune_step over the complete rows (rows with
 * an absent modality are left out: wake-sleep needs every pathway). */
static void fine_tune(const options *o, tree *t, model *cm, const char *key,
                      const char *ckpt, FILE *logf, long start_epoch,
                      long start_batch, double start_recon, long *done,
                      uint64_t seed)
{
    rng_t rng;
    rng_seed(&rng, seed + 2);
    if (cm && start_epoch + start_batch > 0) {
        if (cm->kind != MODEL_MDBN || cm->net->nl != t->net->nl)
            cli_die("%s: checkpoint of another model", ckpt);
        tz_tensor *r = tz_model_find(cm->mf, "train.rng");
        if (!r || r->h.dtype != TZ_I64 || r->count != 4)
            cli_die("%s: checkpoint has no train.rng", ckpt);
        memcpy(rng.s, r->data, sizeof rng.s);
        mdbn_free(t->md);
        t->md = cm->mdbn;
        t->net = cm->mdbn->net;
        cm->mdbn = NULL;
        cm->net = NULL;
    }
    mdbn *md = t->md;
    const bm_net *net = md->net;
    uint64_t N = o->mod[0].ds.rows, NC = 0;
    uint64_t *rows = malloc(N * sizeof *rows), *perm = malloc(N * sizeof *perm);
    uint64_t *idx = malloc((size_t)o->batch * sizeof *idx);
    if (!rows || !perm || !idx)
        cli_die("out of memory");
    for (uint64_t r = 0; r < N; r++) {
        int all = 1;
        for (int i = 0; i < o->nmod; i++)
            all &= !o->mod[i].ds.present || o->mod[i].ds.present[r];
        if (all)
            rows[NC++] = r;
    }
    if (NC == 0)
        cli_die("--fine-tune: no row has every modality");
    mdbn_work *wk = mdbn_work_new(md, (int)o->batch);
    float *buf[BM_MAX_LAYERS] = {0};
    if (!wk)
        cli_die("out of memory");
    for (int i = 0; i < o->nmod; i++) {
        int l = o->mod[i].vis;
        buf[l] = malloc((size_t)o->batch * net->L[l].n * sizeof(float));
        if (!buf[l])
            cli_die("out of memory");
    }
    mdbn_tune_opts to = {(float)o->ft_lr, (int)o->cd_steps};
    long nb = (long)((NC + o->batch - 1) / o->batch);
    rng_t root, order_root;
    rng_seed(&root, o->seed);
    rng_split(&order_root, &root, 12);
    for (long ep = start_epoch; ep < o->fine_tune; ep++) {
        double t0 = cli_now(), tshow = t0;
        double recon_sum = ep == start_epoch ? start_recon : 0;
        rng_t order = order_root, er;
        rng_split(&er, &order, (uint64_t)ep);
        rng_permutation(&er, perm, NC);
        for (long bi = ep == start_epoch ? start_batch : 0; bi < nb; bi++) {
            uint64_t r0 = (uint64_t)bi * o->batch;
            int B = NC - r0 < (uint64_t)o->batch ? (int)(NC - r0) : (int)o->batch;
            for (int b = 0; b < B; b++)
                idx[b] = rows[perm[r0 + b]];
            for (int i = 0; i < o->nmod; i++)
                dataset_gather(&o->mod[i].ds, idx, 0, B, buf[o->mod[i].vis]);
            double rec = 0;
            int e = mdbn_tune_step(md, B, (const float *const *)buf, &to, &rng,
                                   wk, &rec);
            if (e)
                cli_die(e == BM_E_NOMEM ? "out of memory" : "fine-tuning step failed");
            recon_sum += rec;
            if (o->stop_after && ++*done == o->stop_after)
                cli_stop = SIGTERM;
            if (cli_stop) {
                tz_model *mf = mdbn_model(md, o);
                int64_t rs[4];
                uint64_t sh[1] = {4};
                memcpy(rs, rng.s, sizeof rs);
                if (tz_model_add(mf, "train.rng", TZ_I64, 1, sh, rs))
                    cli_die("out of memory");
                tz_attr_set_s(&mf->meta, "ckpt.options", key);
                tz_attr_set_i(&mf->meta, "ckpt.phase", 2);
                tz_attr_set_i(&mf->meta, "ckpt.epoch", ep);
                tz_attr_set_i(&mf->meta, "ckpt.batch", bi + 1);
                tz_attr_set_f(&mf->meta, "ckpt.recon_sum", recon_sum);
                save_model(mf, ckpt);
                tz_model_free(mf);
                cli_interrupted(ckpt, ep, bi + 1);
            }
            cli_batch_progress(&tshow, ep, o->fine_tune, bi, nb,
                               recon_sum / (double)(r0 + B));
        }
        double secs = cli_now() - t0;
        cli_epoch_progress(ep, o->fine_tune, secs, recon_sum / (double)NC);
        if (logf) {
            fprintf(logf, "fine-tune\t%ld\t%.3f\t%.6f\t%.6g\t0\n", ep + 1, secs,
                    recon_sum / (double)NC, o->ft_lr);
            fflush(logf);
        }
    }
    for (int l = 0; l < BM_MAX_LAYERS; l++)
        free(buf[l]);
    mdbn_work_free(wk);
    free(rows);
    free(perm);
    free(idx);
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    cli_init(argc, argv, "joint");
    options o = {
        .hidden = 500, .pre_epochs = -1, .epochs = 10, .batch = 100,
        .pre_lr = -1, .lr = -1, .lr_decay = 1.000015, .lr_min = -1,
        .momentum = -1, .pre_momentum = -1, .init_momentum = 0.5, .mom_epochs = 5, .wd = 2e-4,
        .chains = 100, .sweeps = 5, .mf_iters = 30, .mf_tol = 1e-5,
        .sparsity_cost = 0.1, .seed = 1, .ft_lr = 0.01, .cd_steps = 10,
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:m:V:p:H:fe:b:l:k:s:j:qh", long_opts,
                            NULL)) != -1) {
        switch (c) {
        case 'o': o.output = optarg; break;
        case 'm': {
            if (o.nmod == MAX_MOD)
                cli_usage_error("at most %d modalities", MAX_MOD);
            modality *m = &o.mod[o.nmod++];
            m->data = split_arg(optarg, m->name, "--modality", 1);
            m->unit = -1;
            break;
        }
        case 'V': case 'p': case OPT_SOFTMAX_GROUP: {
            if (o.nlate == 3 * MAX_MOD)
                cli_usage_error("too many modality options");
            const char *opt = c == 'V' ? "--visible" : c == 'p' ? "--pathway"
                                                                : "--softmax-group";
            o.late[o.nlate].val = split_arg(optarg, o.late[o.nlate].name, opt, 0);
            o.late[o.nlate].kind = c;
            o.nlate++;
            break;
        }
        case 'H': o.hidden = (int)cli_long(optarg, 1, 1 << 24, "hidden unit count"); break;
        case OPT_DBM: o.dbm = 1; break;
        case 'f': o.force = 1; break;
        case OPT_PRE_EPOCHS: o.pre_epochs = cli_long(optarg, 0, 1000000, "epoch count"); break;
        case OPT_PRE_RATE: o.pre_lr = cli_double(optarg, 0, 100, "learning rate"); break;
        case OPT_PRE_MOM: o.pre_momentum = cli_double(optarg, 0, 0.999, "momentum"); break;
        case OPT_FINE_TUNE: o.fine_tune = cli_long(optarg, 0, 1000000, "epoch count"); break;
        case OPT_FT_RATE: o.ft_lr = cli_double(optarg, 0, 100, "learning rate"); break;
        case 'k': o.cd_steps = cli_long(optarg, 1, 100000, "CD step count"); break;
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
    if (optind < argc)
        cli_usage_error("unexpected operand '%s' (modalities are given with "
                        "-m NAME=DATA)", argv[optind]);
    if (o.nmod == 0)
        cli_usage_error("no modalities given (-m NAME=DATA)");
    if (o.nmod < 2)
        cli_usage_error("one modality; a joint model needs two or more (for "
                        "one, use rbm-train or stack)");
    for (int i = 0; i < o.nmod; i++)
        for (int k = 0; k < i; k++)
            if (o.mod[i].name[0] && strcmp(o.mod[i].name, o.mod[k].name) == 0)
                cli_usage_error("two modalities named '%s'", o.mod[i].name);
    if (!o.dbm && (o.pre_epochs >= 0 || o.pre_lr >= 0 || o.pre_momentum >= 0))
        cli_usage_error("--pretrain-* options are for --dbm; a multimodal DBN "
                        "trains its joint RBM with -e, -l and --momentum");
    /* PCD of the joint RBM with momentum 0.9 diverged in measurements
     * (split MNIST): 0.5 there; DBM joint training as stack --dbm */
    if (o.dbm && o.fine_tune)
        cli_usage_error("--fine-tune is the up-down algorithm of a multimodal "
                        "DBN; a DBM trains jointly with -e N");
    if (o.pre_epochs < 0)
        o.pre_epochs = 10;
    if (o.momentum < 0)
        o.momentum = o.dbm ? 0.9 : 0.5;
    if (o.pre_momentum < 0)
        o.pre_momentum = o.dbm ? 0.5 : o.momentum;
    cli_check_output(o.output);
    load_modalities(&o);
    apply_late(&o);

    if (!o.threads)
        o.threads = par_cpu_count();
    gemm_init(1);
    rng_t root, init_rng;
    rng_seed(&root, o.seed);
    rng_split(&init_rng, &root, 1);
    uint64_t train_seed = rng_next(&root);

    tree t;
    build_tree(&o, &t, &init_rng);
    check_modalities(&o, t.net);
    int soft = 0;
    for (int i = 0; i < o.nmod; i++) {
        int u = t.net->L[o.mod[i].vis].unit;
        if (!o.mod[i].pathway && (u == BM_GAUSSIAN || u == BM_REPSOFTMAX))
            soft = 1;
        if (u == BM_REPSOFTMAX)
            t.net->doclen[o.mod[i].vis] = mean_length(&o.mod[i].ds);
    }
    double rbm_lr = o.dbm ? (o.pre_lr >= 0 ? o.pre_lr : soft ? 0.001 : 0.01)
                          : (o.lr >= 0 ? o.lr : soft ? 0.001 : 0.01);
    if (o.dbm)
        o.pre_lr = rbm_lr;
    else
        o.lr = rbm_lr;         /* the joint RBM is all there is */
    if (o.lr < 0)
        o.lr = 0.001;
    if (o.lr_min < 0)
        o.lr_min = o.lr / 10;

    char key[2048];
    options_key(&o, key, sizeof key);
    char *ckpt = cli_ckpt_path(o.output);
    long start_phase = 0, start_epoch = 0, start_batch = 0;
    double start_recon = 0, start_sweeps = 0;
    model *cm = NULL;
    if (o.resume) {
        if (access(ckpt, F_OK) != 0)
            cli_die("%s: no checkpoint to resume from", ckpt);
        char err[400];
        cm = model_load(ckpt, err, sizeof err);
        if (!cm)
            cli_die("%s", err);
        if (strcmp(tz_attr_get_s(&cm->mf->meta, "ckpt.options", ""), key) != 0)
            cli_die("%s: checkpoint was made with other options or data", ckpt);
        start_phase = (long)tz_attr_get_i(&cm->mf->meta, "ckpt.phase", 0);
        start_epoch = (long)tz_attr_get_i(&cm->mf->meta, "ckpt.epoch", 0);
        start_batch = (long)tz_attr_get_i(&cm->mf->meta, "ckpt.batch", 0);
        start_recon = tz_attr_get_f(&cm->mf->meta, "ckpt.recon_sum", 0);
        start_sweeps = tz_attr_get_f(&cm->mf->meta, "ckpt.sweeps_sum", 0);
        long ep_all = start_phase == 2 ? o.fine_tune : start_phase ? o.epochs
                    : (o.dbm ? o.pre_epochs : o.epochs);
        if (start_epoch > ep_all || (start_epoch == ep_all && start_batch > 0))
            cli_die("%s: the checkpoint is past the epochs asked for", ckpt);
    }
    FILE *logf = o.log ? cli_open_log(o.log, o.resume,
        "phase\tepoch\tseconds\trecon_error\tlearning_rate\tmf_sweeps") : NULL;
    cli_trap_stop_signals();
    long done = 0;
    uint64_t N = o.mod[0].ds.rows;

    /* phase 0: the joint RBM on the top codes */
    long rbm_epochs = o.dbm ? o.pre_epochs : o.epochs;
    if (start_phase == 0) {
        dataset codes[MAX_MOD];
        top_codes(&o, &t, codes);
        bm_net *r = joint_rbm(&o, &t);
        joint_copy(&o, &t, r, 0);
        init_visible_biases(&o, r, codes);
        bm_mult mult;
        for (int e = 0; e < BM_MAX_LAYERS; e++)
            mult.up[e] = mult.down[e] = 1;
        for (int i = 0; i < o.nmod && o.dbm; i++) {
            if (!o.mod[i].pathway)
                continue;
            /* the top layer also has its pathway below: double what the
             * joint layer sends it */
            int e = bm_find_edge(r, i, o.nmod);
            if (r->E[e].a == i)
                mult.down[e] = 2;
            else
                mult.up[e] = 2;
        }
        if (cm) {
            if (cm->kind != MODEL_DBM || cm->net->nl != r->nl)
                cli_die("%s: checkpoint of another model", ckpt);
            bm_free(r);
            r = cm->net;
            cm->net = NULL;
        }
        phase p = {.net = r, .mult = &mult, .phase = 0, .epochs = rbm_epochs,
                   .momentum = o.pre_momentum,
                   .lr = rbm_lr, .lr_decay = 1, .lr_min = 0};
        for (int i = 0; i < o.nmod; i++) {
            p.vis[i] = 1;
            p.src[i] = &codes[i];
        }
        p.bt = bm_trainer_new(r, p.vis, (int)o.batch, (int)o.chains, train_seed);
        if (!p.bt || bm_trainer_set_threads(p.bt, o.threads))
            cli_die("out of memory");
        if (cm && bm_trainer_load(p.bt, cm->mf))
            cli_die("%s: %s", ckpt, tz_model_error(cm->mf));
        run_phase(&p, &o, key, ckpt, logf, N, start_epoch, start_batch,
                  start_recon, start_sweeps, &done);
        joint_copy(&o, &t, r, 1);
        bm_trainer_free(p.bt);
        bm_free(r);
        for (int i = 0; i < o.nmod; i++)
            if (o.mod[i].pathway)
                dataset_free(&codes[i]);
        start_epoch = start_batch = 0;
        start_recon = start_sweeps = 0;
    }

    /* phase 1 (--dbm): the whole tree */
    if (o.dbm && o.epochs > 0) {
        if (start_phase == 1) {
            if (cm->kind != MODEL_DBM || cm->net->nl != t.net->nl)
                cli_die("%s: checkpoint of another model", ckpt);
            bm_free(t.net);
            t.net = cm->net;
            cm->net = NULL;
        }
        phase p = {.net = t.net, .phase = 1, .epochs = o.epochs, .lr = o.lr,
                   .momentum = o.momentum,
                   .lr_decay = o.lr_decay, .lr_min = o.lr_min};
        for (int i = 0; i < o.nmod; i++) {
            p.vis[o.mod[i].vis] = 1;
            p.src[o.mod[i].vis] = &o.mod[i].ds;
        }
        p.bt = bm_trainer_new(t.net, p.vis, (int)o.batch, (int)o.chains,
                              train_seed + 1);
        if (!p.bt || bm_trainer_set_threads(p.bt, o.threads))
            cli_die("out of memory");
        if (start_phase == 1 && bm_trainer_load(p.bt, cm->mf))
            cli_die("%s: %s", ckpt, tz_model_error(cm->mf));
        run_phase(&p, &o, key, ckpt, logf, N, start_epoch, start_batch,
                  start_recon, start_sweeps, &done);
        bm_trainer_free(p.bt);
    }
    /* phase 2 (a multimodal DBN): up-down fine-tuning */
    if (!o.dbm && o.fine_tune > 0)
        fine_tune(&o, &t, cm, key, ckpt, logf, start_phase == 2 ? start_epoch : 0,
                  start_phase == 2 ? start_batch : 0,
                  start_phase == 2 ? start_recon : 0, &done, train_seed);
    model_free(cm);
    cli_restore_signals();
    if (logf && fclose(logf) != 0)
        cli_die("%s:", o.log);

    tz_model *mf = tz_model_new();
    if (!mf || tz_attr_set_s(&mf->meta, "model.type", o.dbm ? "dbm" : "mdbn") ||
        (o.dbm ? bm_to_model(t.net, mf) : mdbn_to_model(t.md, mf)))
        cli_die("out of memory");
    set_provenance(mf, &o);
    save_model(mf, o.output);
    tz_model_free(mf);
    if (unlink(ckpt) != 0 && errno != ENOENT)
        cli_warn("%s: cannot remove:", ckpt);
    if (t.md)
        mdbn_free(t.md);
    else
        bm_free(t.net);
    for (int i = 0; i < o.nmod; i++) {
        dataset_free(&o.mod[i].ds);
        free(t.top_hbias[i]);
    }
    free(ckpt);
    return 0;
}
