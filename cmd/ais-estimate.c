/* ais-estimate.c - log partition function of an RBM by annealed importance
 * sampling (or exact enumeration), and the average test log-probability.
 *
 *   ais-estimate MODEL [TEST] [--runs N] [--betas N|FILE] [--base DATA]
 *                [--exact] [--format text|tsv|json] [-s N] [-j N]
 *
 * The command parses arguments, reads the streams and prints; the
 * estimators are in lib/ais.c.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ais.h"
#include "ais_bm.h"
#include "cli.h"
#include "gemm.h"
#include "model.h"
#include "rbm.h"

#define BATCH 1024
#define DEFAULT_RUNS 100
#define DEFAULT_SEED 1

/* long-only options */
enum { OPT_RUNS = 256, OPT_BETAS, OPT_BASE, OPT_EXACT, OPT_FORMAT, OPT_SAMPLES,
       OPT_MF_ITERS, OPT_MF_TOL, OPT_SUM_OUT };

static void usage(void)
{
    printf(
"Usage: ais-estimate [OPTION]... MODEL [TEST]\n"
"Estimate log Z of an RBM, a DBM, or a DBN's top RBM by annealed importance\n"
"sampling (AIS) and, given a TEST stream ('-' = stdin), the average test\n"
"log-probability (for a DBN or DBM, a lower bound on it), each with the\n"
"interval log(mean(w) -/+ 3 std(w)/sqrt(runs)) of the importance weights.\n"
"\n"
"      --runs N          independent AIS runs (default %d)\n"
"      --betas N|FILE    N annealing steps in the three-segment schedule\n"
"                        (default %d: steps 1e-3 to 0.5, 1e-4 to 0.9, 1e-5\n"
"                        to 1), or a text FILE of betas from 0 to 1, one a line\n"
"      --base DATA       base model with the visible biases fitted to the\n"
"                        stream DATA (default: all-zero biases, uniform)\n"
"  -D, --length D        replicated softmax: estimate log Z for documents of\n"
"                        D words (default: every length in TEST)\n"
"      --exact           exact log Z by enumeration instead of AIS (RBM: a\n"
"                        layer of at most 30 units; DBM: at most 2^30 states\n"
"                        in the layers of one depth parity)\n"
"      --samples S       DBN: samples of the posterior per test row in the\n"
"                        variational bound (default 10)\n"
"      --mf-iters N      DBM: mean-field sweeps of the bound at most (default 50)\n"
"      --mf-tol X        DBM: mean-field tolerance (default 1e-06)\n"
"      --sum-out even|odd  DBM: the layers AIS sums out analytically, those\n"
"                        at even depth (v, h2, ...) or odd (h1, h3, ...); the\n"
"                        chains run on the others (default: the class with\n"
"                        more units)\n"
"      --format FMT      text, tsv or json (default text)\n"
"  -s, --seed N          random seed (default %d)\n"
"  -j, --threads N       threads; 0 = every CPU (default 0)\n"
"  -q, --quiet           no progress on stderr\n"
"  -h, --help            this help\n"
"      --version         version\n"
"\n"
"AIS tends to underestimate log Z (and so overestimate the test\n"
"log-probability) when the schedule is too short: check that doubling\n"
"--betas does not move the estimate.  See ais-estimate(1).\n",
        DEFAULT_RUNS, AIS_DEFAULT_STEPS, DEFAULT_SEED);
}

/* ---- beta schedules ---------------------------------------------------- */

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Read a schedule file: one beta a line; blank lines and '#' comments are
 * skipped.  Dies with the file name and line number on any fault. */
static double *read_betas(const char *path, int *K)
{
    FILE *f = cli_open_in(path);
    size_t cap = 1024, n = 0;
    double *b = malloc(cap * sizeof *b);
    char line[256];
    long lineno = 0;
    if (!b)
        cli_die("out of memory");
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n')
            cli_die("%s:%ld: line too long", path, lineno);
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        while (isspace((unsigned char)*end))
            end++;
        if (end == p || (*end && *end != '#') || errno || !isfinite(x)) {
            p[strcspn(p, "\r\n")] = 0;
            cli_die("%s:%ld: not a number: '%s'", path, lineno, p);
        }
        if (x < 0 || x > 1)
            cli_die("%s:%ld: beta %g is outside [0, 1]", path, lineno, x);
        if (n > 0 && !((float)x > (float)b[n - 1]))
            cli_die("%s:%ld: betas must increase (%g after %g)", path,
                    lineno, x, b[n - 1]);
        if (n == 0 && x != 0)
            cli_die("%s:%ld: the first beta must be 0", path, lineno);
        if (n == cap) {
            if (cap > (1u << 26))
                cli_die("%s: too many betas", path);
            cap *= 2;
            double *nb = realloc(b, cap * sizeof *b);
            if (!nb)
                cli_die("out of memory");
            b = nb;
        }
        b[n++] = x;
    }
    if (ferror(f))
        cli_die("%s:", path);
    cli_close_in(f);
    if (n < 2)
        cli_die("%s: need at least two betas (0 and 1)", path);
    if (b[n - 1] != 1)
        cli_die("%s:%ld: the last beta must be 1", path, lineno);
    *K = (int)n - 1;
    return b;
}

/* ---- reading streams --------------------------------------------------- */

/* Open a data stream whose records must have the model's width. */
static tz_reader *open_data(const char *path, FILE **fp, const rbm *m)
{
    *fp = cli_open_in(path);
    tz_reader *r = cli_reader(*fp, path);
    const tz_header *h = tz_reader_header(r);
    uint64_t w = tz_record_elems(h);
    if (w != (uint64_t)m->nv)
        cli_die("%s: input has %llu columns, model expects %d", path,
                (unsigned long long)w, m->nv);
    return r;
}

static long read_batch(tz_reader *r, const char *path, float *v)
{
    long n = tz_read_f32(r, v, BATCH);
    if (n < 0)
        cli_die_reader(path, r, (int)n);
    if (n == 0) {
        int e = tz_expect_end(r);
        if (e < 0)
            cli_die_reader(path, r, e);
    }
    return n;
}

static void check_rows(const rbm *m, const char *path, long n,
                       const float *v, int allow_real, uint64_t row0)
{
    const char *msg = rbm_check_data(m, (int)n, v, allow_real);
    if (!msg)
        return;
    /* find the first offending row for the message */
    for (long b = 0; b < n; b++)
        if (rbm_check_data(m, 1, v + (size_t)b * m->nv, allow_real))
            cli_die("%s: row %llu: %s", path,
                    (unsigned long long)(row0 + b + 1), msg);
    cli_die("%s: %s", path, msg);
}

/* Visible biases of the base-rate model fitted to a data stream. */
static float *fit_base(const rbm *m, const char *path)
{
    FILE *f;
    tz_reader *r = open_data(path, &f, m);
    float *v = malloc((size_t)BATCH * m->nv * sizeof *v);
    double *sum = calloc((size_t)m->nv, sizeof *sum);
    float *base = malloc((size_t)m->nv * sizeof *base);
    if (!v || !sum || !base)
        cli_die("out of memory");
    uint64_t rows = 0;
    long n;
    while ((n = read_batch(r, path, v)) > 0) {
        check_rows(m, path, n, v, 1, rows);
        for (long b = 0; b < n; b++)
            for (int i = 0; i < m->nv; i++)
                sum[i] += v[(size_t)b * m->nv + i];
        rows += (uint64_t)n;
    }
    if (rows == 0)
        cli_die("%s: no rows to fit the base model", path);
    ais_rbm_base_from_sums(m, sum, (double)rows, base);
    tz_reader_free(r);
    cli_close_in(f);
    free(v);
    free(sum);
    return base;
}

/* One partition function: all test rows for a non-softmax model, or the
 * rows of one document length for replicated softmax. */
typedef struct {
    long D;                  /* document length (replicated softmax) or 1 */
    uint64_t rows;           /* test rows with this length */
    double sum_lp;           /* sum of log p*(v) over them */
    double logz, low, high;
    double ess;              /* AIS: effective sample size of the weights */
} part;

typedef struct {
    part *p;
    size_t n, cap;
} parts;

static part *find_part(parts *ps, long D)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->p[i].D == D)
            return &ps->p[i];
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 16;
        part *np = realloc(ps->p, ps->cap * sizeof *np);
        if (!np)
            cli_die("out of memory");
        ps->p = np;
    }
    part *p = &ps->p[ps->n++];
    memset(p, 0, sizeof *p);
    p->D = D;
    return p;
}

static int cmp_part(const void *a, const void *b)
{
    long x = ((const part *)a)->D, y = ((const part *)b)->D;
    return (x > y) - (x < y);
}

static uint64_t read_test(const rbm *m, const char *path, parts *ps)
{
    FILE *f;
    tz_reader *r = open_data(path, &f, m);
    float *v = malloc((size_t)BATCH * m->nv * sizeof *v);
    double *lp = malloc(BATCH * sizeof *lp);
    if (!v || !lp)
        cli_die("out of memory");
    uint64_t rows = 0;
    long n;
    while ((n = read_batch(r, path, v)) > 0) {
        check_rows(m, path, n, v, m->vis == RBM_GAUSSIAN, rows);
        if (ais_rbm_log_pstar(m, (int)n, v, lp))
            cli_die("out of memory");
        for (long b = 0; b < n; b++) {
            long D = 1;
            if (m->vis == RBM_REPSOFTMAX) {
                double s = 0;
                for (int i = 0; i < m->nv; i++)
                    s += v[(size_t)b * m->nv + i];
                if (s < 1)
                    cli_die("%s: row %llu: empty document (no words)", path,
                            (unsigned long long)(rows + b + 1));
                if (s > 1e9)
                    cli_die("%s: row %llu: document too long (%g words)",
                            path, (unsigned long long)(rows + b + 1), s);
                D = (long)s;
            }
            part *p = find_part(ps, D);
            p->rows++;
            p->sum_lp += lp[b];
        }
        rows += (uint64_t)n;
    }
    if (rows == 0)
        cli_die("%s: no test rows", path);
    tz_reader_free(r);
    cli_close_in(f);
    free(v);
    free(lp);
    return rows;
}

/* ---- output ------------------------------------------------------------ */

static void json_num(const char *key, double x, int comma)
{
    if (isfinite(x))
        printf("  \"%s\": %.17g%s\n", key, x, comma ? "," : "");
    else
        printf("  \"%s\": null%s\n", key, comma ? "," : "");
}

static const char *fmt_num(char *buf, double x)
{
    if (isnan(x))
        buf[0] = 0;
    else
        snprintf(buf, 32, "%.17g", x);
    return buf;
}

static void progress(double frac, void *arg)
{
    const char *what = arg;
    fprintf(stderr, "\r%s: %s %3.0f%%", cli_prog, what, 100 * frac);
    if (frac >= 1)
        fprintf(stderr, "\r\033[K");
}

/* ---- deep models: DBN and DBM ------------------------------------------------ */

typedef struct {
    int runs, K, exact, threads, samples, mf_iters, sum_out;
    double mf_tol;
    const double *beta;
    const char *base_path, *test_path, *format, *model_path;
    uint64_t seed;
} deep_opts;

/* Rows of a stream through a callback, BATCH at a time, checked against
 * the layer. */
typedef void (*rows_fn)(void *arg, int n, const float *v);

static uint64_t each_batch(const char *path, const bm_layer *L0,
                           int allow_real, rows_fn fn, void *arg)
{
    FILE *f = cli_open_in(path);
    tz_reader *r = cli_reader(f, path);
    uint64_t w = tz_record_elems(tz_reader_header(r));
    if (w != (uint64_t)L0->n)
        cli_die("%s: input has %llu columns, model expects %d", path,
                (unsigned long long)w, L0->n);
    if (tz_data_are_probabilities(tz_reader_header(r)))
        allow_real = 1;
    float *v = malloc((size_t)BATCH * L0->n * sizeof *v);
    if (!v)
        cli_die("out of memory");
    uint64_t rows = 0;
    long n;
    while ((n = read_batch(r, path, v)) > 0) {
        const char *msg = bm_layer_check(L0, (int)n, v, allow_real);
        if (msg)
            for (long b = 0; b < n; b++)
                if ((msg = bm_layer_check(L0, 1, v + (size_t)b * L0->n,
                                          allow_real)))
                    cli_die("%s: row %llu: %s", path,
                            (unsigned long long)(rows + b + 1), msg);
        fn(arg, (int)n, v);
        rows += (uint64_t)n;
    }
    tz_reader_free(r);
    cli_close_in(f);
    free(v);
    return rows;
}

typedef struct {
    const model *m;
    int layer;               /* the layer whose means are summed */
    double *sum;             /* (n_layer) */
    dbn_work *w;
    float *x[BM_MAX_LAYERS];
} base_job;

static void base_rows(void *arg, int n, const float *v)
{
    base_job *J = arg;
    const float *src = v;
    int width = model_layer(J->m, J->layer).n;
    if (J->layer > 0) {
        if (dbn_up(J->m->dbn, n, v, J->layer, J->x, NULL, J->w))
            cli_die("out of memory");
        src = J->x[J->layer];
    }
    for (int b = 0; b < n; b++)
        for (int i = 0; i < width; i++)
            J->sum[i] += src[(size_t)b * width + i];
}

/* Base-rate biases (n) of `layer` (0, or a DBN's top-RBM visible layer,
 * reached by the recognition up-pass) fitted to the stream at path. */
static float *deep_base(const model *m, int layer, const char *path,
                        const rbm *like)
{
    bm_layer L0 = model_layer(m, 0);
    int width = model_layer(m, layer).n;
    base_job J = {m, layer, calloc((size_t)width, sizeof(double)), NULL, {0}};
    float *base = malloc((size_t)width * sizeof *base);
    if (!J.sum || !base)
        cli_die("out of memory");
    if (layer > 0) {
        J.w = dbn_work_new(m->dbn, BATCH);
        for (int l = 1; l <= layer; l++)
            if (!(J.x[l] = malloc((size_t)BATCH * model_layer(m, l).n *
                                  sizeof(float))))
                cli_die("out of memory");
        if (!J.w)
            cli_die("out of memory");
    }
    uint64_t rows = each_batch(path, &L0, 1, base_rows, &J);
    if (rows == 0)
        cli_die("%s: no rows to fit the base model", path);
    ais_rbm_base_from_sums(like, J.sum, (double)rows, base);
    for (int l = 0; l < BM_MAX_LAYERS; l++)
        free(J.x[l]);
    dbn_work_free(J.w);
    free(J.sum);
    return base;
}

typedef struct {
    const model *m;
    const deep_opts *o;
    double sum;              /* of the bound without log Z */
    rng_t rng;
    dbn_work *w;
    bm_state st;
    bm_scratch *ws;
    double *lp;
} bound_job;

static void bound_rows(void *arg, int n, const float *v)
{
    bound_job *J = arg;
    if (J->m->kind == MODEL_DBN) {
        if (dbn_lower_bound(J->m->dbn, n, v, J->o->samples, &J->rng, J->lp,
                            J->w))
            cli_die("the lower bound: out of memory");
    } else {
        const bm_net *net = J->m->net;
        unsigned char clamp[BM_MAX_LAYERS] = {1};
        bm_state_set(net, &J->st, 0, n, v);
        bm_bottom_up(net, &J->st, 0, n, clamp, J->ws);
        bm_meanfield(net, &J->st, 0, n, clamp, J->o->mf_iters,
                     (float)J->o->mf_tol, 0, J->ws);
        bm_log_pjoint(net, &J->st, 0, n, J->lp, J->ws);
        for (int l = 1; l < net->nl; l++)
            if (bm_layer_add_entropy(&net->L[l], n, J->st.x[l], J->lp))
                cli_die("the mean-field bound needs bernoulli or softmax "
                        "hidden layers");
    }
    for (int b = 0; b < n; b++)
        J->sum += J->lp[b];
}

static int deep_main(model *m, const deep_opts *o)
{
    if (m->kind == MODEL_MDBN)
        cli_die("%s: a multimodal DBN; ais-estimate handles RBMs, DBNs and "
                "DBMs (a multimodal DBM from joint --dbm)", o->model_path);
    int dbm = m->kind == MODEL_DBM;
    for (int l = 0; l < model_layers(m); l++)
        if (model_layer(m, l).unit == BM_REPSOFTMAX)
            cli_die("%s: ais-estimate does not yet handle a deep model with "
                    "replicated-softmax units", o->model_path);
    if (!dbm && (m->dbn->r[m->dbn->n - 1]->hid != RBM_BERNOULLI))
        cli_die("%s: the top RBM needs bernoulli hidden units",
                o->model_path);
    /* log Z: the DBM's, or the DBN's top RBM's */
    double logz, low, high, ess = NAN, states = 0;
    const rbm *top = dbm ? NULL : m->dbn->r[m->dbn->n - 1];
    if (!dbm) {
        const char *why = ais_rbm_check(top);
        if (why)
            cli_die("%s: cannot estimate the top RBM: %s", o->model_path, why);
    }
    if (o->exact) {
        int e;
        if (dbm) {
            e = bm_exact_logz(m->net, 1, &logz);
            bm_enum_color(m->net, &states);
        } else {
            char layer;
            e = ais_rbm_exact_logz(top, 1, o->threads, &logz, &states, &layer);
        }
        if (e == BM_E_TOOBIG || e == AIS_E_TOOBIG)
            cli_die("exact log Z: too many states to enumerate; use AIS");
        if (e)
            cli_die("exact log Z: %s", dbm ? bm_strerror(e) : ais_strerror(e));
        low = high = logz;
    } else {
        float *base = NULL;
        ais_target *t;
        if (dbm) {
            const float *bases[BM_MAX_LAYERS] = {0};
            if (o->base_path) {
                rbm *like = rbm_new(m->net->L[0].n, 1, m->net->L[0].unit,
                                    RBM_BERNOULLI);
                if (!like)
                    cli_die("out of memory");
                like->softmax_group = m->net->L[0].group;
                base = deep_base(m, 0, o->base_path, like);
                rbm_free(like);
                bases[0] = base;
            }
            if (o->sum_out >= 0 && ais_bm_check(m->net, o->sum_out))
                cli_die("--sum-out: %s", ais_bm_check(m->net, o->sum_out));
            t = ais_bm_target(m->net, bases, 1, o->sum_out);
        } else {
            if (o->base_path)
                base = deep_base(m, m->dbn->n - 1, o->base_path, top);
            t = ais_rbm_target(top, base, 1);
        }
        if (!t)
            cli_die("out of memory");
        double *logw = malloc((size_t)o->runs * sizeof *logw);
        if (!logw)
            cli_die("out of memory");
        int e = ais_run(t, o->beta, o->K, o->runs, o->seed, o->threads, logw,
                        cli_progress_enabled() ? progress : NULL, "AIS:");
        if (e)
            cli_die("AIS: %s", ais_strerror(e));
        ais_estimate est;
        if (ais_estimate_from(logw, o->runs, t->log_z0, &est))
            cli_die("AIS: the importance weights are not finite");
        logz = est.logz;
        low = est.logz_low;
        high = est.logz_high;
        ess = exp(est.log_ess);
        ais_target_free(t);
        free(logw);
        free(base);
    }
    /* the test bound */
    uint64_t rows = 0;
    double bound = NAN, blow = NAN, bhigh = NAN;
    if (o->test_path) {
        gemm_init(o->threads);
        bound_job J = {m, o, 0, {{0}}, NULL, {0}, NULL, NULL};
        rng_seed(&J.rng, o->seed ^ 0x5bd1e995u);
        J.lp = malloc(BATCH * sizeof *J.lp);
        if (!J.lp)
            cli_die("out of memory");
        if (dbm) {
            if (bm_state_alloc(m->net, &J.st, BATCH) ||
                !(J.ws = bm_scratch_new(m->net, BATCH)))
                cli_die("out of memory");
        } else if (!(J.w = dbn_work_new(m->dbn, BATCH))) {
            cli_die("out of memory");
        }
        bm_layer L0 = model_layer(m, 0);
        rows = each_batch(o->test_path, &L0, L0.unit == BM_GAUSSIAN,
                          bound_rows, &J);
        if (rows == 0)
            cli_die("%s: no test rows", o->test_path);
        double mean = J.sum / (double)rows;
        bound = mean - logz;
        blow = mean - high;
        bhigh = isinf(low) ? INFINITY : mean - low;
        bm_state_free(&J.st);
        bm_scratch_free(J.ws);
        dbn_work_free(J.w);
        free(J.lp);
    }
    const char *method = o->exact ? "exact" : "ais";
    const char *kind = model_kind_name(m->kind);
    const char *how = dbm ? "mean-field bound" : "variational bound";
    if (strcmp(o->format, "json") == 0) {
        printf("{\n  \"method\": \"%s\",\n  \"model\": \"%s\",\n", method, kind);
        json_num("logz", logz, 1);
        json_num("logz_low", low, 1);
        json_num("logz_high", high, 1);
        printf("  \"runs\": %d,\n  \"betas\": %d,\n", o->exact ? 0 : o->runs,
               o->exact ? 0 : o->K);
        if (!o->exact)
            json_num("ess", ess, 1);
        printf("  \"test_rows\": %llu", (unsigned long long)rows);
        if (o->test_path) {
            printf(",\n  \"bound\": \"%s\",\n", dbm ? "mean-field" : "variational");
            json_num("test_logprob_bound", bound, 1);
            json_num("test_logprob_bound_low", blow, 1);
            json_num("test_logprob_bound_high", bhigh, 0);
        } else {
            printf("\n");
        }
        printf("}\n");
    } else if (strcmp(o->format, "tsv") == 0) {
        char a[32], b[32], c2[32], d[32], e[32], f[32];
        printf("method\tmodel\tlogz\tlogz_low\tlogz_high\truns\tbetas\trows\t"
               "test_logprob_bound\ttest_logprob_bound_low\t"
               "test_logprob_bound_high\n");
        printf("%s\t%s\t%s\t%s\t%s\t%d\t%d\t%llu\t%s\t%s\t%s\n", method, kind,
               fmt_num(a, logz), fmt_num(b, low), fmt_num(c2, high),
               o->exact ? 0 : o->runs, o->exact ? 0 : o->K,
               (unsigned long long)rows, fmt_num(d, bound), fmt_num(e, blow),
               fmt_num(f, bhigh));
    } else {
        const char *what = dbm ? "log Z" : "log Z (top RBM)";
        if (o->exact)
            printf("%s = %.4f (exact, %.0f states)\n", what, logz, states);
        else
            printf("%s = %.4f [%.4f, %.4f] (AIS, %d runs, %d betas)\n", what,
                   logz, low, high, o->runs, o->K);
        if (o->test_path)
            printf("test log p(v) >= %.4f [%.4f, %.4f] nats over %llu rows "
                   "(%s)\n", bound, blow, bhigh, (unsigned long long)rows, how);
    }
    cli_close_stdout();
    return 0;
}

int main(int argc, char **argv)
{
    cli_init(argc, argv, "ais-estimate");
    static const struct option longopts[] = {
        {"runs", required_argument, NULL, OPT_RUNS},
        {"betas", required_argument, NULL, OPT_BETAS},
        {"base", required_argument, NULL, OPT_BASE},
        {"length", required_argument, NULL, 'D'},
        {"exact", no_argument, NULL, OPT_EXACT},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"samples", required_argument, NULL, OPT_SAMPLES},
        {"mf-iters", required_argument, NULL, OPT_MF_ITERS},
        {"mf-tol", required_argument, NULL, OPT_MF_TOL},
        {"sum-out", required_argument, NULL, OPT_SUM_OUT},
        {"seed", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int runs = DEFAULT_RUNS, K = AIS_DEFAULT_STEPS, exact = 0, threads = 0;
    long length = 0;
    const char *betas_file = NULL, *base_path = NULL, *format = "text";
    uint64_t seed = DEFAULT_SEED;
    int samples = 10, mf_iters = 50, sum_out = -1;
    double mf_tol = 1e-6;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":D:s:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_RUNS: runs = (int)cli_long(optarg, 2, 1000000, "run count"); break;
        case OPT_BETAS:
            if (all_digits(optarg)) {
                K = (int)cli_long(optarg, 3, 100000000, "beta count");
                betas_file = NULL;
            } else {
                betas_file = optarg;
            }
            break;
        case OPT_BASE: base_path = optarg; break;
        case 'D': length = cli_long(optarg, 1, 1000000000, "document length"); break;
        case OPT_EXACT: exact = 1; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "text") && strcmp(optarg, "tsv") &&
                strcmp(optarg, "json"))
                cli_usage_error("invalid format '%s': use text, tsv or json",
                                optarg);
            format = optarg;
            break;
        case OPT_SAMPLES: samples = (int)cli_long(optarg, 1, 1000000, "sample count"); break;
        case OPT_MF_ITERS: mf_iters = (int)cli_long(optarg, 1, 100000, "mean-field iterations"); break;
        case OPT_MF_TOL: mf_tol = cli_double(optarg, 0, 1, "mean-field tolerance"); break;
        case OPT_SUM_OUT:
            if (strcmp(optarg, "even") && strcmp(optarg, "odd"))
                cli_usage_error("invalid --sum-out '%s': use even or odd", optarg);
            sum_out = strcmp(optarg, "odd") == 0;
            break;
        case 's': seed = cli_u64(optarg, "seed"); break;
        case 'j': threads = (int)cli_long(optarg, 0, 256, "thread count"); break;
        case 'q': cli_quiet = 1; break;
        case 'h': usage(); cli_close_stdout(); return 0;
        case 'V': cli_version();
        default: cli_option_error(c, argv);
        }
    }
    const char *model_path, *test_path;
    cli_model_operands(argc, argv, &model_path, &test_path);
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (n > 256 ? 256 : (int)n) : 1;
    }
    gemm_init(1);   /* our threads share the runs; one BLAS thread each */

    /* the schedule, checked before any long work */
    double *beta = NULL;
    if (!exact) {
        if (betas_file)
            beta = read_betas(betas_file, &K);
        else if (!(beta = ais_schedule_default(K)))
            cli_die("out of memory");
    }

    char err[400];
    model *md = model_load(model_path, err, sizeof err);
    if (!md)
        cli_die("%s", err);
    if (md->kind != MODEL_RBM) {
        if (length)
            cli_usage_error("--length applies to replicated softmax RBMs only");
        if (sum_out >= 0 && md->kind != MODEL_DBM)
            cli_usage_error("--sum-out applies to DBMs");
        deep_opts dopts = {runs, K, exact, threads, samples, mf_iters, sum_out,
                           mf_tol,
                           beta, base_path, test_path, format, model_path,
                           seed};
        int rc = deep_main(md, &dopts);
        model_free(md);
        free(beta);
        return rc;
    }
    rbm *m = md->rbm;
    const char *why = ais_rbm_check(m);
    if (why)
        cli_die("%s: cannot estimate this model: %s", model_path, why);
    int rsm = m->vis == RBM_REPSOFTMAX;
    if ((length && !rsm) || (rsm && !length && !test_path)) {
        model_free(md);
        free(beta);
        if (!rsm)
            cli_usage_error("--length applies to replicated softmax models only");
        cli_usage_error("a replicated softmax model needs TEST or --length "
                        "(log Z depends on the document length)");
    }

    float *base = base_path ? fit_base(m, base_path) : NULL;
    parts ps = {0};
    uint64_t test_rows = 0;
    if (test_path)
        test_rows = read_test(m, test_path, &ps);
    if (length) {
        /* with --length, only documents of that length are scored */
        part *keep = find_part(&ps, length);
        part one = *keep;
        uint64_t dropped = test_rows - one.rows;
        if (test_path && dropped)
            cli_warn("%s: %llu of %llu rows are not %ld words long and are "
                     "not scored", test_path, (unsigned long long)dropped,
                     (unsigned long long)test_rows, length);
        ps.p[0] = one;
        ps.n = 1;
        test_rows = one.rows;
        if (test_path && test_rows == 0)
            cli_die("%s: no document is %ld words long", test_path, length);
    }
    if (!test_path && !length)
        find_part(&ps, 1);
    qsort(ps.p, ps.n, sizeof *ps.p, cmp_part);

    /* the partition functions */
    double states = 0;
    char layer = 'h';
    double *logw = exact ? NULL : malloc((size_t)runs * sizeof *logw);
    if (!exact && !logw)
        cli_die("out of memory");
    for (size_t i = 0; i < ps.n; i++) {
        part *p = &ps.p[i];
        if (exact) {
            int e = ais_rbm_exact_logz(m, (int)p->D, threads, &p->logz,
                                       &states, &layer);
            if (e == AIS_E_TOOBIG)
                cli_die("exact log Z: both layers have more than 30 units "
                        "(V=%d, H=%d); use AIS", m->nv, m->nh);
            if (e)
                cli_die("exact log Z: %s", ais_strerror(e));
            p->low = p->high = p->logz;
        } else {
            ais_target *t = ais_rbm_target(m, base, (int)p->D);
            if (!t)
                cli_die("out of memory");
            char what[64];
            if (rsm)
                snprintf(what, sizeof what, "AIS, D=%ld:", p->D);
            else
                snprintf(what, sizeof what, "AIS:");
            int e = ais_run(t, beta, K, runs, seed, threads, logw,
                            cli_progress_enabled() ? progress : NULL, what);
            if (e)
                cli_die("AIS: %s", ais_strerror(e));
            ais_estimate est;
            if (ais_estimate_from(logw, runs, t->log_z0, &est))
                cli_die("AIS: the importance weights are not finite");
            p->logz = est.logz;
            p->low = est.logz_low;
            p->high = est.logz_high;
            p->ess = exp(est.log_ess);
            ais_target_free(t);
        }
    }

    /* totals: test log p = mean over rows of log p*(v) - log Z_D(v) */
    double sum_lp = 0, sum_z = 0, sum_zl = 0, sum_zh = 0, words = 0;
    for (size_t i = 0; i < ps.n; i++) {
        part *p = &ps.p[i];
        double w = test_path ? (double)p->rows : 1.0;
        sum_lp += p->sum_lp;
        sum_z += w * p->logz;
        sum_zl += w * p->low;
        sum_zh += w * p->high;
        words += (double)p->rows * p->D;
    }
    double nz = test_path ? (double)test_rows : (double)ps.n;
    double logz = sum_z / nz, logz_low = sum_zl / nz, logz_high = sum_zh / nz;
    double tlp = NAN, tlp_low = NAN, tlp_high = NAN;
    if (test_path) {
        tlp = (sum_lp - sum_z) / (double)test_rows;
        tlp_low = (sum_lp - sum_zh) / (double)test_rows;
        tlp_high = isinf(sum_zl) ? INFINITY : (sum_lp - sum_zl) / (double)test_rows;
    }
    const char *method = exact ? "exact" : "ais";
    int nbetas = exact ? 0 : K, nruns = exact ? 0 : runs;

    if (strcmp(format, "json") == 0) {
        printf("{\n  \"method\": \"%s\",\n", method);
        json_num("logz", logz, 1);
        json_num("logz_low", logz_low, 1);
        json_num("logz_high", logz_high, 1);
        printf("  \"runs\": %d,\n  \"betas\": %d,\n", nruns, nbetas);
        if (!exact) {
            double ess = INFINITY;
            for (size_t i = 0; i < ps.n; i++)
                ess = ps.p[i].ess < ess ? ps.p[i].ess : ess;
            printf("  \"seed\": %llu,\n  \"base\": \"%s\",\n",
                   (unsigned long long)seed, base ? "data" : "uniform");
            json_num("ess", ess, 1);
        }
        else
            printf("  \"states\": %.0f,\n  \"layer\": \"%s\",\n", states,
                   layer == 'h' ? "hidden" : "visible");
        if (rsm) {
            printf("  \"lengths\": [");
            for (size_t i = 0; i < ps.n; i++) {
                char a[32], b[32], c2[32];
                printf("%s\n    {\"length\": %ld, \"rows\": %llu, \"logz\": %s, "
                       "\"logz_low\": %s, \"logz_high\": %s}",
                       i ? "," : "", ps.p[i].D,
                       (unsigned long long)ps.p[i].rows,
                       isfinite(ps.p[i].logz) ? fmt_num(a, ps.p[i].logz) : "null",
                       isfinite(ps.p[i].low) ? fmt_num(b, ps.p[i].low) : "null",
                       isfinite(ps.p[i].high) ? fmt_num(c2, ps.p[i].high) : "null");
            }
            printf("\n  ],\n");
        }
        if (test_path) {
            printf("  \"test_rows\": %llu,\n", (unsigned long long)test_rows);
            json_num("test_logprob", tlp, 1);
            json_num("test_logprob_low", tlp_low, 1);
            json_num("test_logprob_high", tlp_high, rsm);
            if (rsm) {
                printf("  \"test_words\": %.0f,\n", words);
                json_num("perplexity", exp(-tlp * test_rows / words), 1);
                json_num("perplexity_low", exp(-tlp_high * test_rows / words), 1);
                json_num("perplexity_high", exp(-tlp_low * test_rows / words), 0);
            }
        } else {
            printf("  \"test_rows\": 0\n");
        }
        printf("}\n");
    } else if (strcmp(format, "tsv") == 0) {
        printf("method\tlength\trows\tlogz\tlogz_low\tlogz_high\truns\tbetas\t"
               "test_logprob\ttest_logprob_low\ttest_logprob_high\n");
        for (size_t i = 0; i < ps.n; i++) {
            part *p = &ps.p[i];
            char a[32], b[32], c2[32], d[32], e[32], f[32], len[32] = "";
            double t = NAN, tl = NAN, th = NAN;
            if (rsm)
                snprintf(len, sizeof len, "%ld", p->D);
            if (test_path && p->rows) {
                t = p->sum_lp / p->rows - p->logz;
                tl = p->sum_lp / p->rows - p->high;
                th = isinf(p->low) ? INFINITY : p->sum_lp / p->rows - p->low;
            }
            printf("%s\t%s\t%llu\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", method,
                   len,
                   (unsigned long long)p->rows, fmt_num(a, p->logz),
                   fmt_num(b, p->low), fmt_num(c2, p->high), nruns, nbetas,
                   fmt_num(d, t), fmt_num(e, tl), fmt_num(f, th));
        }
    } else {
        for (size_t i = 0; i < ps.n; i++) {
            part *p = &ps.p[i];
            char name[48] = "log Z";
            if (rsm)
                snprintf(name, sizeof name, "log Z(D=%ld)", p->D);
            if (exact)
                printf("%s = %.4f (exact, %.0f %s states)\n", name, p->logz,
                       states, layer == 'h' ? "hidden" : "visible");
            else
                printf("%s = %.4f [%.4f, %.4f] (AIS, %d runs, %d betas)\n",
                       name, p->logz, p->low, p->high, runs, K);
        }
        if (test_path) {
            if (exact)
                printf("test log p(v) = %.4f nats over %llu rows (exact)\n",
                       tlp, (unsigned long long)test_rows);
            else
                printf("test log p(v) = %.4f [%.4f, %.4f] nats over %llu rows\n",
                       tlp, tlp_low, tlp_high, (unsigned long long)test_rows);
            if (rsm) {
                double pp = exp(-tlp * test_rows / words);
                if (exact)
                    printf("perplexity = %.4f over %.0f words\n", pp, words);
                else
                    printf("perplexity = %.4f [%.4f, %.4f] over %.0f words\n",
                           pp, exp(-tlp_high * test_rows / words),
                           exp(-tlp_low * test_rows / words), words);
            }
        }
    }
    cli_close_stdout();
    free(logw);
    free(beta);
    free(base);
    free(ps.p);
    model_free(md);
    return 0;
}
