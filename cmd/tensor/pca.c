/* tensor_pca.c - `tensor pca` and `tensor whiten` (tensor.h).
 *
 * Both fit a linear map on the input's mean and covariance (lib/pca.h) and
 * then apply it to the same input, so the data are read twice: a named
 * regular file is re-read from its start, anything else (stdin, a pipe) is
 * first copied to a tmpfile().  Memory holds one batch and the (D, D)
 * covariance, never the data.  With --model the saved map is applied in a
 * single pass.  Input records are flattened to D = record elements (as
 * `tensor standardize` does; rank 0 is refused), of any dtype; output
 * records are f32 of shape [K] (pca, whiten) or of the input's record
 * shape (whiten --zca).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cli.h"
#include "pca.h"
#include "tensor.h"

#define DEFAULT_EPSILON 1e-5

static const char pca_usage[] =
"Usage: tensor pca -k K [options] [FILE]\n"
"       tensor pca --model MODEL [options] [FILE]\n"
"Project records (flattened to D values) on their K principal components,\n"
"y = U (x - mean),\n"
"where the rows of U (K, D) are the eigenvectors of the sample covariance\n"
"for the K largest eigenvalues.  Output: f32 records of shape [K].\n"
"The transform is fitted on the input itself (read twice; stdin is buffered\n"
"in a temporary file) unless --model gives a saved one.\n"
"\n"
"  -k, --components K       components to keep, 1..D (required unless --model)\n"
"      --save FILE          also write the fitted transform to FILE, a model\n"
"                           file (default: not saved)\n"
"      --model FILE         apply the transform saved in FILE (default: fit)\n"
"  -f, --force              write binary data to a terminal (default: refuse)\n"
"  -q, --quiet              accepted for symmetry; there is no progress output\n"
CLI_STREAM_HELP
"  -h, --help               show this help and exit\n"
"      --version            show the version and exit\n"
"FILE defaults to stdin ('-').\n";

static const char whiten_usage[] =
"Usage: tensor whiten [--zca] [--epsilon E] [-k K] [options] [FILE]\n"
"       tensor whiten --model MODEL [options] [FILE]\n"
"Decorrelate records (flattened to D values) and scale them to unit\n"
"variance.  With U (K, D)\n"
"the leading eigenvectors and l (K) the eigenvalues of the sample covariance,\n"
"and S = diag(1/sqrt(l + E)):\n"
"  PCA whitening  y = S U (x - mean)        f32 records of shape [K]\n"
"  ZCA whitening  y = U' S U (x - mean)     f32, the input's record shape\n"
"The transform is fitted on the input itself (read twice; stdin is buffered\n"
"in a temporary file) unless --model gives a saved one.\n"
"\n"
"      --zca                ZCA (rotated back to the input axes) instead of PCA\n"
"                           whitening (default: PCA whitening)\n"
"      --epsilon E          added to each eigenvalue, E >= 0 (default 1e-05)\n"
"  -k, --components K       components to keep, 1..D (default: D, all)\n"
"      --save FILE          also write the fitted transform to FILE, a model\n"
"                           file (default: not saved)\n"
"      --model FILE         apply the transform saved in FILE (default: fit)\n"
"  -f, --force              write binary data to a terminal (default: refuse)\n"
"  -q, --quiet              accepted for symmetry; there is no progress output\n"
CLI_STREAM_HELP
"  -h, --help               show this help and exit\n"
"      --version            show the version and exit\n"
"FILE defaults to stdin ('-').\n";

enum { OPT_SAVE = 256, OPT_MODEL, OPT_ZCA };

typedef struct {
    const char *cmd;      /* "pca" or "whiten" */
    int whiten;
    long k;               /* 0: not given */
    int zca;
    double epsilon;
    int epsilon_given;
    const char *save;
    const char *model;
    const char *input;
    int force;
} options;

static void parse(int argc, char **argv, int whiten, options *o)
{
    static const struct option longs[] = {
        {"components", required_argument, NULL, 'k'},
        {"epsilon", required_argument, NULL, 'e'},
        {"zca", no_argument, NULL, OPT_ZCA},
        {"save", required_argument, NULL, OPT_SAVE},
        {"model", required_argument, NULL, OPT_MODEL},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        CLI_STREAM_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}
    };
    memset(o, 0, sizeof *o);
    o->cmd = whiten ? "whiten" : "pca";
    o->whiten = whiten;
    o->epsilon = DEFAULT_EPSILON;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:fqh",
                            longs, NULL)) != -1) {
        if (cli_stream_option(c, optarg))
            continue;
        switch (c) {
        case 'k':
            o->k = cli_long(optarg, 1, 1L << 30, "-k");
            break;
        case 'e':
        case OPT_ZCA:
            if (!whiten)
                cli_usage_error("pca: %s is an option of 'tensor whiten'",
                                c == 'e' ? "--epsilon" : "--zca");
            if (c == 'e') {
                o->epsilon = cli_double(optarg, 0, 1e300, "--epsilon");
                o->epsilon_given = 1;
            } else {
                o->zca = 1;
            }
            break;
        case OPT_SAVE: o->save = optarg; break;
        case OPT_MODEL: o->model = optarg; break;
        case 'f': o->force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'h':
            fputs(whiten ? whiten_usage : pca_usage, stdout);
            cli_close_stdout();
            exit(0);
        case 'V':
            cli_version();
        default:
            tensor_option_error(c, argv);
        }
    }
    o->input = tensor_one_operand(argc, argv);
    if (o->model) {
        const char *clash = o->k ? "-k" : o->zca ? "--zca" :
                            o->epsilon_given ? "--epsilon" :
                            o->save ? "--save" : NULL;
        if (clash)
            cli_usage_error("%s: --model cannot be combined with %s",
                            o->cmd, clash);
        int in_stdin = !o->input || strcmp(o->input, "-") == 0;
        if (strcmp(o->model, "-") == 0 && in_stdin)
            cli_usage_error("%s: --model and the input cannot both be stdin",
                            o->cmd);
    } else if (!whiten && !o->k) {
        cli_usage_error("pca: -k K is required (or --model FILE)");
    }
}

/* What is allocated while a subcommand runs.  cli_die() exits from deep
 * inside; holding the pointers here as well as in locals keeps them
 * reachable at exit, so leak checkers (make check-asan) stay quiet. */
static struct {
    tz_writer *writer;
    tz_reader *reader;
    pca_moments *moments;
    pca *transform;
    tz_model *model;
    void *buf[3];
} live;

/* A reader positioned at the first tensor of f; dies with "cmd: ..." on an
 * unreadable or empty stream. */
static tz_reader *open_reader(const options *o, FILE *f)
{
    tz_reader *r = live.reader = tz_reader_new(f);
    if (!r)
        cli_die("%s: out of memory", o->cmd);
    int e = tz_next(r);
    if (e < 0)
        cli_die("%s: %s", o->cmd, tz_reader_error(r));
    if (e == 0)
        cli_die("%s: empty input (no tensor stream)", o->cmd);
    return r;
}

/* The record width D (elements of a record, flattened); dies for scalar
 * records, which are labels far more often than one-column data. */
static int record_width(const options *o, const tz_reader *r)
{
    const tz_header *h = tz_reader_header(r);
    if (h->rank == 0)
        cli_die("%s: records are scalars (rank 0); PCA needs vectors",
                o->cmd);
    return (int)tz_record_elems(h);
}

/* Rows a batch: about 8 MiB of doubles in each of the two buffers. */
static size_t batch_rows(int d, int out)
{
    size_t w = (size_t)(d > out ? d : out);
    size_t b = ((size_t)1 << 20) / w;
    return b < 1 ? 1 : b > 4096 ? 4096 : b;
}

/* Make f re-readable from its current position: a regular file is used as
 * is (*start gets the position); anything else is copied to a tmpfile(),
 * returned in its place with *start = 0. */
static FILE *rereadable(const options *o, FILE *f, off_t *start)
{
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        off_t pos = ftello(f);
        if (pos >= 0) {
            *start = pos;
            return f;
        }
    }
    FILE *t = tmpfile();
    if (!t)
        cli_die("%s: cannot create a temporary file:", o->cmd);
    char *buf = live.buf[0] = malloc(1 << 16);
    if (!buf)
        cli_die("%s: out of memory", o->cmd);
    size_t n;
    while ((n = fread(buf, 1, 1 << 16, f)) > 0)
        if (fwrite(buf, 1, n, t) != n)
            cli_die("%s: temporary file:", o->cmd);
    if (ferror(f))
        cli_die("%s: %s:", o->cmd, o->input ? o->input : "stdin");
    free(buf);
    live.buf[0] = NULL;
    if (fflush(t) != 0)
        cli_die("%s: temporary file:", o->cmd);
    rewind(t);
    *start = 0;
    return t;
}

/* First pass: the transform fitted on all records of r. */
static pca *fit(const options *o, tz_reader *r, int d, uint64_t *count)
{
    int k = o->k ? (int)o->k : d;
    if (o->k > d)
        cli_die("%s: -k %ld is larger than the record width %d", o->cmd, o->k, d);
    pca_moments *m = live.moments = pca_moments_new(d);
    pca *p = live.transform = pca_new(d, k);
    size_t b = batch_rows(d, d);
    double *x = live.buf[0] = malloc(b * (size_t)d * sizeof *x);
    double *mean = live.buf[1] = malloc((size_t)d * sizeof *mean);
    double *cov = live.buf[2] = malloc((size_t)d * d * sizeof *cov);
    if (!m || !p || !x || !mean || !cov)
        cli_die("%s: out of memory (record width %d)", o->cmd, d);
    long got;
    while ((got = tz_read_f64(r, x, b)) > 0) {
        int e = pca_moments_add(m, x, (size_t)got);
        if (e)
            cli_die("%s: %s", o->cmd, pca_strerror(e));
    }
    if (got < 0)
        cli_die("%s: %s", o->cmd, tz_reader_error(r));
    int e = tz_expect_end(r);
    if (e)
        cli_die("%s: %s", o->cmd, tz_reader_error(r));
    if (m->n == 0)
        cli_die("%s: no records to fit", o->cmd);
    if (m->n < 2)
        cli_die("%s: need at least 2 records to fit (got 1)", o->cmd);
    if ((e = pca_moments_result(m, mean, cov)) || (e = pca_fit(p, mean, cov)))
        cli_die("%s: %s", o->cmd, pca_strerror(e));
    int mode = !o->whiten ? PCA_PROJECT : o->zca ? PCA_ZCA : PCA_WHITEN;
    if ((e = pca_prepare(p, mode, o->epsilon)))
        cli_die("%s: %s", o->cmd, pca_strerror(e));
    *count = m->n;
    pca_moments_free(m);
    free(x);
    free(mean);
    free(cov);
    memset(live.buf, 0, sizeof live.buf);
    live.moments = NULL;
    return p;
}

static void save(const options *o, const pca *p)
{
    tz_model *mf = live.model = tz_model_new();
    if (!mf)
        cli_die("%s: out of memory", o->cmd);
    int e = pca_to_model(p, mf);
    if (e)
        cli_die("%s: %s", o->cmd, pca_strerror(e));
    char err[300];
    if (tz_model_save(mf, o->save, err, sizeof err))
        cli_die("%s: %s", o->cmd, err);
    tz_model_free(mf);
    live.model = NULL;
}

static pca *load(const options *o)
{
    tz_model *mf = live.model = cli_load_model(o->model);
    char err[300];
    pca *p = live.transform = pca_from_model(mf, err, sizeof err);
    if (!p)
        cli_die("%s: %s: %s", o->cmd, o->model, err);
    tz_model_free(mf);
    live.model = NULL;
    const char *type = p->mode == PCA_PROJECT ? "pca" : "whiten";
    if (strcmp(type, o->cmd) != 0)
        cli_die("%s: %s: a %s model; apply it with 'tensor %s --model'",
                o->cmd, o->model, type, type);
    return p;
}

/* Apply p to every record of r, writing f32 records to w: of shape [K],
 * or for ZCA of r's record shape.  Returns the number of records. */
static uint64_t transform(const options *o, const pca *p, tz_reader *r,
                          tz_writer *w)
{
    size_t b = batch_rows(p->d, p->out);
    double *x = live.buf[0] = malloc(b * (size_t)p->d * sizeof *x);
    double *y = live.buf[1] = malloc(b * (size_t)p->out * sizeof *y);
    if (!x || !y)
        cli_die("%s: out of memory", o->cmd);
    const tz_header *in = tz_reader_header(r);
    tz_header h;
    tz_header_init(&h);
    uint64_t dims[1] = {(uint64_t)p->out};
    int e = p->mode == PCA_ZCA
            ? tz_header_set_shape(&h, TZ_F32, in->rank, in->dims)
            : tz_header_set_shape(&h, TZ_F32, 1, dims);
    if (!e)
        e = tz_writer_begin(w, &h);
    if (e)
        cli_die_writer(o->cmd, w, e);
    tz_header_clear(&h);
    uint64_t n = 0;
    long got;
    while ((got = tz_read_f64(r, x, b)) > 0) {
        pca_apply(p, (size_t)got, x, y);
        if ((e = tz_write_as(w, TZ_F64, y, (size_t)got)))
            cli_die_writer(o->cmd, w, e);
        n += (uint64_t)got;
    }
    if (got < 0 || (e = tz_expect_end(r)))
        cli_die("%s: %s", o->cmd, tz_reader_error(r));
    free(x);
    free(y);
    memset(live.buf, 0, sizeof live.buf);
    return n;
}

static int run(int argc, char **argv, int whiten)
{
    options o;
    parse(argc, argv, whiten, &o);
    tz_writer *w = live.writer = cli_writer_stdout(o.force);
    FILE *in = cli_open_in(o.input);
    pca *p;
    tz_reader *r;
    if (o.model) {
        p = load(&o);
        r = open_reader(&o, in);
        int d = record_width(&o, r);
        if (d != p->d)
            cli_die("%s: record width %d does not match the model's %d",
                    o.cmd, d, p->d);
        transform(&o, p, r, w);
    } else {
        off_t start;
        FILE *f = rereadable(&o, in, &start);
        r = open_reader(&o, f);
        uint64_t n1;
        p = fit(&o, r, record_width(&o, r), &n1);
        tz_reader_free(r);
        live.reader = NULL;
        if (o.save)
            save(&o, p);
        if (fseeko(f, start, SEEK_SET) != 0)
            cli_die("%s: cannot re-read the input:", o.cmd);
        r = open_reader(&o, f);
        if (record_width(&o, r) != p->d ||
            transform(&o, p, r, w) != n1)
            cli_die("%s: the input changed between the two passes", o.cmd);
        if (f != in)
            fclose(f);
    }
    tz_reader_free(r);
    cli_close_in(in);
    pca_free(p);
    memset(&live, 0, sizeof live);
    cli_finish_writer(w);
    return 0;
}

int tensor_pca(int argc, char **argv)
{
    return run(argc, argv, 0);
}

int tensor_whiten(int argc, char **argv)
{
    return run(argc, argv, 1);
}
