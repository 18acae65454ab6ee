/* cli.c - shared command-line plumbing for the rbmkit commands (cli.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gemm.h"

const char *cli_prog = "rbmkit";
tz_write_opts cli_wopts;
int cli_quiet;

void cli_init(int argc, char **argv, const char *prog)
{
    cli_prog = prog;
    tz_write_opts_init(&cli_wopts);
    /* A closed pipe downstream (`| head`) ends us quietly: EPIPE from
     * write is handled where stdout is closed. */
    signal(SIGPIPE, SIG_IGN);
    gemm_ensure_fast_kernel(argc, argv);
}

static void vmsg(const char *fmt, va_list ap)
{
    int e = errno;
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    size_t n = strlen(fmt);
    if (n && fmt[n - 1] == ':')
        fprintf(stderr, " %s", strerror(e));
    fputc('\n', stderr);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void cli_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    exit(1);
}

void cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for more information.\n", cli_prog);
    exit(2);
}

void cli_option_error(int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':') {
        if (optopt && optopt < 256)
            cli_usage_error("option '-%c' needs an argument", optopt);
        cli_usage_error("option '%s' needs an argument", arg);
    }
    if (optopt && optopt < 256)
        cli_usage_error("unknown option '-%c'", optopt);
    cli_usage_error("unknown option '%s'", arg);
}

void cli_version(void)
{
    printf("%s (rbmkit) %s\n", cli_prog, RBMKIT_VERSION);
    cli_close_stdout();
    exit(0);
}

long cli_long(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno)
        cli_usage_error("invalid %s '%s': not an integer", what, s);
    if (v < lo || v > hi)
        cli_usage_error("invalid %s '%s': must be in [%ld, %ld]", what, s, lo, hi);
    return v;
}

double cli_double(const char *s, double lo, double hi, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v))
        cli_usage_error("invalid %s '%s': not a number", what, s);
    if (v < lo || v > hi)
        cli_usage_error("invalid %s '%s': must be in [%g, %g]", what, s, lo, hi);
    return v;
}

uint64_t cli_u64(const char *s, const char *what)
{
    char *end;
    errno = 0;
    if (*s == '-')
        cli_usage_error("invalid %s '%s': must not be negative", what, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno)
        cli_usage_error("invalid %s '%s': not a non-negative integer", what, s);
    return v;
}

void cli_model_operands(int argc, char **argv, const char **model,
                        const char **input)
{
    if (optind >= argc)
        cli_usage_error("missing MODEL");
    if (argc - optind > 2)
        cli_usage_error("too many operands");
    *model = argv[optind];
    *input = optind + 1 < argc ? argv[optind + 1] : NULL;
}

FILE *cli_open_in(const char *path)
{
    if (!path || strcmp(path, "-") == 0)
        return stdin;
    FILE *f = fopen(path, "rb");
    if (!f)
        cli_die("%s:", path);
    return f;
}

void cli_close_in(FILE *f)
{
    if (f && f != stdin)
        fclose(f);
}

void cli_check_stdout(int force)
{
    if (!force && isatty(STDOUT_FILENO))
        cli_usage_error("refusing to write binary data to a terminal (use -f to force)");
}

void cli_close_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno == EPIPE)
            exit(0);
        cli_die("write error:");
    }
    if (fclose(stdout) != 0) {
        if (errno == EPIPE)
            exit(0);
        cli_die("write error:");
    }
}

int cli_stream_option(int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_LEVEL:
        cli_wopts.level = (int)cli_long(arg, -50, 19, "--level");
        return 1;
    case CLI_OPT_CHUNK:
        cli_wopts.chunk_bytes = (size_t)cli_long(arg, 1, TZ_CHUNK_MAX, "--chunk-size");
        return 1;
    case CLI_OPT_CTHREADS:
        cli_wopts.threads = (int)cli_long(arg, 1, 2, "--compress-threads");
        return 1;
    }
    return 0;
}

int cli_progress_enabled(void)
{
    return !cli_quiet && isatty(STDERR_FILENO);
}

void cli_die_reader(const char *context, tz_reader *r, int code)
{
    const char *m = r ? tz_reader_error(r) : tz_strerror(code);
    if (context && *context)
        cli_die("%s: %s", context, m);
    cli_die("%s", m);
}

void cli_die_writer(const char *context, tz_writer *w, int code)
{
    if (code == TZ_E_IO && (w ? tz_writer_errno(w) : errno) == EPIPE)
        exit(0);      /* the reader downstream went away: quiet, as cat */
    const char *m = w ? tz_writer_error(w) : tz_strerror(code);
    if (context && *context)
        cli_die("%s: %s", context, m);
    cli_die("%s", m);
}

tz_reader *cli_reader(FILE *f, const char *name)
{
    tz_reader *r = tz_reader_new(f);
    if (!r)
        cli_die("out of memory");
    int e = tz_next(r);
    const char *ctx = name && strcmp(name, "-") ? name : "";
    if (e < 0)
        cli_die_reader(ctx, r, e);
    if (e == 0) {
        if (*ctx)
            cli_die("%s: empty input (no tensor stream)", ctx);
        cli_die("empty input (no tensor stream)");
    }
    return r;
}

tz_writer *cli_writer_stdout(int force)
{
    cli_check_stdout(force);
    tz_writer *w = tz_writer_new(stdout, &cli_wopts);
    if (!w)
        cli_die("out of memory");
    return w;
}

void cli_finish_writer(tz_writer *w)
{
    int e = tz_writer_close(w);
    if (e)
        cli_die_writer("", w, e);
    tz_writer_free(w);
    cli_close_stdout();
}

tz_model *cli_load_model(const char *path)
{
    char err[300];
    tz_model *m = tz_model_load(path, err, sizeof err);
    if (!m)
        cli_die("%s", err);
    return m;
}

void cli_load_dataset(const char *path, dataset *ds)
{
    FILE *f = cli_open_in(path);
    const char *name = path ? path : "-";
    tz_reader *r = cli_reader(f, name);
    const tz_header *h = tz_reader_header(r);
    uint64_t elems = tz_record_elems(h);
    memset(ds, 0, sizeof *ds);
    ds->scale = 1;
    if (elems > (1u << 24))
        cli_die("%s: records of %llu values are too wide", name,
                (unsigned long long)elems);
    ds->V = (int)elems;
    ds->dtype = h->dtype;
    ds->probs = tz_data_are_probabilities(h);
    ds->row_bytes = (size_t)tz_record_bytes(h);
    int e = tz_read_all(r, 0, &ds->data, &ds->rows);
    const char *ctx = strcmp(name, "-") ? name : "";
    if (e)
        cli_die_reader(ctx, r, e);
    e = tz_expect_end(r);
    if (e)
        cli_die_reader(ctx, r, e);
    if (ds->rows == 0) {
        if (*ctx)
            cli_die("%s: empty input (no records)", ctx);
        cli_die("empty input (no records)");
    }
    if (ds->rows > INT32_MAX)
        cli_die("too many rows (%llu)", (unsigned long long)ds->rows);
    ds->crc = tz_crc32c(0, ds->data, (size_t)ds->rows * ds->row_bytes);
    snprintf(ds->modality, sizeof ds->modality, "%s",
             tz_attr_get_s(h, "modality.name", ""));
    tz_reader_free(r);
    cli_close_in(f);
}

void cli_check_dataset(const dataset *ds, const bm_layer *L, int allow_real,
                       const char *what)
{
    uint64_t row;
    const char *msg = dataset_check(ds, L, allow_real, &row);
    if (!msg)
        return;
    if (strcmp(msg, "out of memory") == 0)
        cli_die("out of memory");
    const char *hint = strcmp(msg, "non-binary value for bernoulli units") == 0
        ? " (use tensor binarize, or --allow-real for probabilities)" : "";
    cli_die("%s: row %llu: %s%s", what, (unsigned long long)(row + 1), msg,
            hint);
}

/* ---- a training run's plumbing ------------------------------------------- */

volatile sig_atomic_t cli_stop;

static void on_stop_signal(int sig)
{
    cli_stop = sig;
}

void cli_trap_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_restore_signals(void)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

void cli_check_output(const char *path)
{
    if (!*path)
        cli_usage_error("empty output file name");
    char *tmp;
    FILE *f = tz_atomic_open(path, &tmp);
    if (!f)
        cli_die("%s: cannot write here:", path);
    tz_atomic_abort(f, tmp);
}

char *cli_ckpt_path(const char *model)
{
    size_t n = strlen(model) + 6;
    char *p = malloc(n);
    if (!p)
        cli_die("out of memory");
    snprintf(p, n, "%s.ckpt", model);
    return p;
}

FILE *cli_open_log(const char *path, int resume, const char *header)
{
    FILE *f = fopen(path, resume ? "a" : "w");
    if (!f)
        cli_die("%s:", path);
    if (!resume)
        fprintf(f, "%s\n", header);
    return f;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_batch_progress(double *last, long ep, long epochs, long batch,
                        long batches, double recon)
{
    if (!cli_progress_enabled() || cli_now() - *last <= 0.5)
        return;
    *last = cli_now();
    fprintf(stderr, "\repoch %ld/%ld  batch %ld/%ld  recon %.4f ", ep + 1,
            epochs, batch + 1, batches, recon);
}

void cli_epoch_progress(long ep, long epochs, double secs, double recon)
{
    if (cli_progress_enabled())
        fprintf(stderr, "\repoch %ld/%ld  %.2f s  recon %.4f          \n",
                ep + 1, epochs, secs, recon);
}

noreturn void cli_interrupted(const char *ckpt, long ep, long batch)
{
    int sig = cli_stop ? cli_stop : SIGTERM;
    if (cli_progress_enabled())
        fputc('\n', stderr);
    cli_warn("interrupted; checkpoint saved to %s (epoch %ld, batch %ld)",
             ckpt, ep + 1, batch);
    exit(128 + sig);
}

/* Parse "A:B,C,D:" (half-open column ranges, python-like; A defaults to 0,
 * B to n) into mask (n), setting 1 for every listed index; `unit` scales an
 * index (softmax group size for --clamp-group).  Returns 0 or dies with a
 * usage error. */
void cli_parse_ranges(const char *spec, const char *opt, long n, int unit,
                         unsigned char *mask)
{
    char *copy = strdup(spec);
    if (!copy)
        cli_die("out of memory");
    char *save = NULL;
    int any = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        long a, b;
        char *colon = strchr(tok, ':');
        if (colon) {
            *colon = 0;
            a = *tok ? cli_long(tok, 0, n, opt) : 0;
            b = colon[1] ? cli_long(colon + 1, 0, n, opt) : n;
        } else {
            a = cli_long(tok, 0, n - 1, opt);
            b = a + 1;
        }
        if (a >= b)
            cli_usage_error("invalid %s '%s': empty range", opt, spec);
        for (long i = a * unit; i < b * unit; i++)
            mask[i] = 1;
        any = 1;
    }
    if (!any)
        cli_usage_error("invalid %s '%s': no columns", opt, spec);
    free(copy);
}

/* ---- modality streams ------------------------------------------------------ */

void cli_modal_add(cli_modal *mm, const char *arg)
{
    if (mm->n == CLI_MAX_MODALITIES)
        cli_usage_error("at most %d modalities", CLI_MAX_MODALITIES);
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : 0;
    if (!eq) {          /* DATA alone: its modality.name names it */
        mm->name[mm->n][0] = 0;
        mm->path[mm->n++] = arg;
        return;
    }
    if (n == 0 || n >= sizeof mm->name[0] || !eq[1])
        cli_usage_error("--modality wants NAME=DATA, not '%s'", arg);
    memcpy(mm->name[mm->n], arg, n);
    mm->name[mm->n][n] = 0;
    mm->path[mm->n] = eq + 1;
    mm->n++;
}

void cli_modal_open(cli_modal *mm, const bm_net *net, int cap)
{
    char names[400] = "";
    for (int l = 0; l < net->nl; l++)
        if (net->vis[l]) {
            size_t k = strlen(names);
            snprintf(names + k, sizeof names - k, "%s%s", k ? ", " : "",
                     net->L[l].name);
        }
    for (int i = 0; i < mm->n; i++) {
        mm->f[i] = cli_open_in(mm->path[i]);
        mm->r[i] = cli_reader(mm->f[i], mm->path[i]);
        if (!mm->name[0][0] || !mm->name[i][0]) {
            const char *nm = tz_attr_get_s(tz_reader_header(mm->r[i]),
                                           "modality.name", "");
            if (!mm->name[i][0] && !*nm)
                cli_usage_error("--modality %s: no NAME= and the stream has "
                                "no modality.name attribute", mm->path[i]);
            if (!mm->name[i][0])
                snprintf(mm->name[i], sizeof mm->name[i], "%s", nm);
        }
    }
    for (int i = 0; i < mm->n; i++) {
        for (int k = 0; k < i; k++)
            if (strcmp(mm->name[i], mm->name[k]) == 0)
                cli_usage_error("two modalities named '%s'", mm->name[i]);
        int l = bm_find_layer(net, mm->name[i]);
        if (l < 0 || !net->vis[l])
            cli_usage_error("--modality %s: the model has no modality '%s' "
                            "(its modalities: %s)", mm->name[i], mm->name[i],
                            names);
        mm->layer[i] = l;
        uint64_t V = tz_record_elems(tz_reader_header(mm->r[i]));
        int dt = tz_reader_header(mm->r[i])->dtype;
        const bm_layer *L = &net->L[l];
        mm->index[i] = L->unit == BM_SOFTMAX && L->group == L->n && V == 1 &&
                       L->n > 1 && dt != TZ_F32 && dt != TZ_F64;
        if (!mm->index[i] && V != (uint64_t)L->n)
            cli_die("%s: rows of %llu values, modality '%s' has %d units",
                    mm->path[i], (unsigned long long)V, mm->name[i], L->n);
        if (tz_data_are_probabilities(tz_reader_header(mm->r[i])))
            mm->allow_real = 1;
        mm->u8[i] = dt == TZ_U8 && L->unit == BM_BERNOULLI;
        mm->raw[i] = malloc((size_t)cap * (size_t)V * sizeof(float));
        if (!mm->raw[i])
            cli_die("out of memory");
    }
    mm->cap = cap;
    for (int l = 0; l < net->nl; l++) {
        if (!net->vis[l])
            continue;
        mm->x[l] = malloc((size_t)cap * net->L[l].n * sizeof(float));
        mm->present[l] = calloc((size_t)cap, 1);     /* not given: absent */
        if (!mm->x[l] || !mm->present[l])
            cli_die("out of memory");
    }
    mm->key = malloc((size_t)cap * sizeof *mm->key);
    mm->order = malloc((size_t)cap * sizeof *mm->order);
    mm->pat = malloc((size_t)cap * sizeof *mm->pat);
    if (!mm->key || !mm->order || !mm->pat)
        cli_die("out of memory");
}

int cli_modal_read(cli_modal *mm, const bm_net *net, int B)
{
    float **x = mm->x;
    unsigned char **present = mm->present;
    if (B > mm->cap)
        B = mm->cap;
    long got = -1;
    int first = 0;
    for (int i = 0; i < mm->n; i++) {
        long k = tz_read_f32(mm->r[i], mm->raw[i], (size_t)B);
        if (k < 0)
            cli_die_reader(mm->path[i], mm->r[i], (int)k);
        if (got >= 0 && k != got) {
            /* read both to the end to name their row counts */
            uint64_t cnt[2];
            int who[2] = {first, i};
            for (int q = 0; q < 2; q++) {
                long e;
                while ((e = tz_read(mm->r[who[q]], NULL, SIZE_MAX)) > 0) {}
                if (e < 0)
                    cli_die_reader(mm->path[who[q]], mm->r[who[q]], (int)e);
                cnt[q] = tz_reader_count(mm->r[who[q]]);
            }
            cli_die("%s and %s: modality streams with different row counts "
                    "(%llu and %llu rows)", mm->path[first], mm->path[i],
                    (unsigned long long)cnt[0], (unsigned long long)cnt[1]);
        }
        if (got < 0)
            got = k;
    }
    if (got == 0)
        for (int i = 0; i < mm->n; i++) {
            int e = tz_expect_end(mm->r[i]);
            if (e)
                cli_die_reader(mm->path[i], mm->r[i], e);
        }
    for (int i = 0; i < mm->n && got > 0; i++) {
        int l = mm->layer[i];
        const bm_layer *L = &net->L[l];
        int n = L->n, V = mm->index[i] ? 1 : n;
        for (long b = 0; b < got; b++) {
            const float *v = mm->raw[i] + (size_t)b * V;
            float *o = x[l] + (size_t)b * n;
            int nan = 0;
            for (int j = 0; j < V; j++)
                nan += v[j] != v[j];
            unsigned long long row = (unsigned long long)(mm->rows + (uint64_t)b + 1);
            if (nan && nan < V)
                cli_die("%s: row %llu: NaN in some columns (an absent "
                        "modality is a row of NaN in every column)",
                        mm->path[i], row);
            present[l][b] = nan == 0;
            if (nan) {
                memset(o, 0, (size_t)n * sizeof *o);
                continue;
            }
            if (mm->u8[i] && mm->allow_real) {   /* grey levels */
                for (int j = 0; j < n; j++)
                    o[j] = v[j] * (1.0f / 255);
            } else if (mm->index[i]) {
                if (!(v[0] >= 0 && v[0] < n && v[0] == floorf(v[0])))
                    cli_die("%s: row %llu: %g is not a class index below %d",
                            mm->path[i], row, v[0], n);
                memset(o, 0, (size_t)n * sizeof *o);
                o[(int)v[0]] = 1;
            } else {
                memcpy(o, v, (size_t)n * sizeof *o);
            }
            const char *bad = bm_layer_check(L, 1, o, mm->allow_real);
            if (bad)
                cli_die("%s: row %llu: %s%s", mm->path[i], row, bad,
                        strstr(bad, "non-binary") && !mm->allow_real
                        ? " (--allow-real accepts values in [0, 1])" : "");
        }
    }
    mm->rows += (uint64_t)(got > 0 ? got : 0);
    if (got > 0)
        bm_group_rows(net, (int)got, (const unsigned char *const *)present,
                      mm->key, mm->order, mm->pat);
    return (int)(got > 0 ? got : 0);
}

int cli_modal_run(const cli_modal *mm, const bm_net *net, int n, int r,
                  bm_state *st, unsigned char *clamp, int allow_none)
{
    int r1 = r + 1;
    while (r1 < n && mm->pat[r1] == mm->pat[r])
        r1++;
    int any = 0;
    for (int l = 0; l < net->nl; l++) {
        clamp[l] = net->vis[l] && ((mm->pat[r] >> l) & 1);
        if (!net->vis[l])
            continue;
        any |= clamp[l];
        if (!clamp[l]) {
            bm_state_absent(net, st, l, r, r1 - r);
            continue;
        }
        size_t nl = (size_t)net->L[l].n;
        for (int i = r; i < r1; i++)
            memcpy(st->x[l] + (size_t)i * nl, mm->x[l] + (size_t)mm->order[i] * nl,
                   nl * sizeof(float));
        bm_state_sync(net, st, l, r, r1 - r);
    }
    if (!any && !allow_none)
        cli_die("row %llu: every modality is absent",
                (unsigned long long)(mm->rows - (uint64_t)n +
                                     (uint64_t)mm->order[r] + 1));
    return r1;
}

void cli_modal_close(cli_modal *mm)
{
    for (int i = 0; i < mm->n; i++) {
        tz_reader_free(mm->r[i]);
        cli_close_in(mm->f[i]);
        free(mm->raw[i]);
    }
    for (int l = 0; l < BM_MAX_LAYERS; l++) {
        free(mm->x[l]);
        free(mm->present[l]);
    }
    free(mm->key);
    free(mm->order);
    free(mm->pat);
}
