/* tensor.c - the `tensor` tool: main(), the subcommand dispatcher, and the
 * stream subcommands info, cat, head, slice, paste, shuffle, split, stats,
 * standardize and binarize (cmd/tensor.h lists them all; import, export,
 * tile, bow, words, pca and whiten live in cmd/tensor_*.c).
 *
 * Every subcommand here reads .tz streams through lib/tz and, where it
 * produces data, writes one .tz stream to stdout.  All but shuffle work in
 * batches of at most BATCH_RECORDS records, so memory does not grow with
 * the length of the stream.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdnoreturn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rng.h"
#include "tensor.h"
#include "tz.h"

#define BATCH_RECORDS 4096
#define BATCH_BYTES   (8u << 20)      /* cap on one batch buffer */

/* ---- subcommand table ---------------------------------------------------- */

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"info", tensor_info, "describe a stream or model file"},
    {"cat", tensor_cat, "concatenate compatible streams"},
    {"head", tensor_head, "first N records"},
    {"slice", tensor_slice, "a range of records and of columns"},
    {"paste", tensor_paste, "join aligned streams column-wise"},
    {"shuffle", tensor_shuffle, "random permutation of the records"},
    {"split", tensor_split, "cut a stream into files of N records"},
    {"stats", tensor_stats, "per-column mean, std, min and max"},
    {"standardize", tensor_standardize, "(x - mean) / std per column"},
    {"binarize", tensor_binarize, "threshold or sample to 0/1 bytes"},
    {"import", tensor_import, "idx, csv, tsv, npy or pgm to a stream"},
    {"export", tensor_export, "a stream to csv, tsv, npy, pgm or png"},
    {"tile", tensor_tile, "draw records as a PNG grid of images"},
    {"bow", tensor_bow, "text lines to bag-of-words count rows"},
    {"words", tensor_words, "count rows to their top words"},
    {"pca", tensor_pca, "principal component projection"},
    {"whiten", tensor_whiten, "PCA or ZCA whitening"},
};
#define N_SUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static void main_help(void)
{
    printf("Usage: tensor SUBCOMMAND [OPTION]... [FILE]...\n"
           "Tools over .tz tensor streams; data flows from FILE (or stdin) to stdout.\n"
           "\nSubcommands:\n");
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        printf("  %-12s %s\n", subcommands[i].name, subcommands[i].summary);
    printf("\n  -h, --help     this help; 'tensor SUBCOMMAND --help' for one subcommand\n"
           "      --version  print the version\n"
           "\nExit status: 0 success, 1 data or runtime error, 2 usage error.\n");
    cli_close_stdout();
    exit(0);
}

int main(int argc, char **argv)
{
    cli_init(argc, argv, "tensor");
    if (argc < 2)
        cli_usage_error("missing subcommand");
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)
        main_help();
    if (strcmp(sub, "--version") == 0 || strcmp(sub, "-V") == 0)
        cli_version();
    if (sub[0] == '-')
        cli_usage_error("unknown option '%s' (a subcommand must come first)", sub);
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        if (strcmp(sub, subcommands[i].name) == 0) {
            optind = 1;
            return subcommands[i].fn(argc - 1, argv + 1);
        }
    cli_usage_error("unknown subcommand '%s'", sub);
}

/* ---- shared option handling ------------------------------------------------ */

enum { OPT_JSON = 1000, OPT_SAVE, OPT_STATS, OPT_STOCHASTIC, OPT_NO_SCALE };

/* Options of every subcommand that writes a stream. */
#define WRITER_LONGOPTS \
    {"force", no_argument, NULL, 'f'}, \
    {"quiet", no_argument, NULL, 'q'}, \
    CLI_STREAM_LONGOPTS
#define HELP_LONGOPTS \
    {"help", no_argument, NULL, 'h'}, \
    {"version", no_argument, NULL, 'V'}

static const char writer_help[] =
    "  -f, --force              write binary data even to a terminal\n"
    "  -q, --quiet              no progress on stderr (default: progress only\n"
    "                           when stderr is a terminal)\n"
    CLI_STREAM_HELP;
static const char common_help[] =
    "  -h, --help               this help\n"
    "      --version            print the version\n";

static int force;

/* Handle what every subcommand's getopt loop shares: help, version,
 * writer settings and getopt's errors.  `help` is printed for -h. */
static void common_option(int c, char **argv, const char *help, int writes)
{
    if (writes && cli_stream_option(c, optarg))
        return;
    switch (c) {
    case 'h':
        fputs(help, stdout);
        if (writes)
            fputs(writer_help, stdout);
        fputs(common_help, stdout);
        cli_close_stdout();
        exit(0);
    case 'V':
        cli_version();
    case 'f':
        if (writes) { force = 1; return; }
        break;
    case 'q':
        if (writes) { cli_quiet = 1; return; }
        break;
    case ':':
        if (optopt > 0 && optopt < 256 && strncmp(argv[optind - 1], "--", 2))
            cli_usage_error("%s: option '-%c' requires an argument", argv[0], optopt);
        cli_usage_error("%s: option '%s' requires an argument", argv[0], argv[optind - 1]);
    default:
        break;
    }
    if (c == '?' && optopt > 0 && optopt < 256)
        cli_usage_error("%s: unknown option '-%c'", argv[0], optopt);
    cli_usage_error("%s: unknown option '%s'", argv[0], argv[optind - 1]);
}

/* Name of an input for messages: "" for stdin (cli_reader's convention). */
static const char *ctx_name(const char *path)
{
    return path && strcmp(path, "-") ? path : "";
}

static const char *show_name(const char *path)
{
    return path && strcmp(path, "-") ? path : "stdin";
}

/* Records per batch buffer holding records of `rec_bytes` bytes. */
static size_t batch_for(uint64_t rec_bytes)
{
    if (rec_bytes == 0)
        return BATCH_RECORDS;
    uint64_t b = BATCH_BYTES / rec_bytes;
    if (b < 1) b = 1;
    if (b > BATCH_RECORDS) b = BATCH_RECORDS;
    return (size_t)b;
}

/* Heap blocks (and readers, writers, models) in use stay reachable from
 * this table until they are released, so that leaving through cli_die()
 * half-way leaves nothing for LeakSanitizer to report. */
static void *live[256];

static void *track(void *p)
{
    for (size_t i = 0; p && i < sizeof live / sizeof live[0]; i++)
        if (!live[i]) {
            live[i] = p;
            break;
        }
    return p;
}

static void untrack(void *p)
{
    for (size_t i = 0; p && i < sizeof live / sizeof live[0]; i++)
        if (live[i] == p) {
            live[i] = NULL;
            break;
        }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        cli_die("out of memory");
    return track(p);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        cli_die("out of memory");
    return track(p);
}

static void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (!p)
        cli_die("out of memory");
    untrack(old);
    return track(p);
}

static void xfree(void *p)
{
    untrack(p);
    free(p);
}

/* cli_reader, tracked; release with close_reader. */
static tz_reader *open_reader(FILE *f, const char *path)
{
    return track(cli_reader(f, path));
}

static void close_reader(tz_reader *r)
{
    untrack(r);
    tz_reader_free(r);
}

/* ---- progress on a terminal ------------------------------------------------ */

typedef struct {
    int on;
    const char *what;
    double last;
} progress;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress_start(progress *p, const char *what)
{
    p->on = cli_progress_enabled();
    p->what = what;
    p->last = p->on ? now_seconds() : 0;
}

static void progress_update(progress *p, uint64_t records)
{
    if (!p->on)
        return;
    double t = now_seconds();
    if (t - p->last < 0.5)
        return;
    p->last = t;
    fprintf(stderr, "\r%s %s: %" PRIu64 " records", cli_prog, p->what, records);
}

static void progress_end(progress *p, uint64_t records)
{
    if (p->on)
        fprintf(stderr, "\r%s %s: %" PRIu64 " records\n", cli_prog, p->what, records);
}

/* ---- small helpers over lib/tz ----------------------------------------------- */

/* A write error ends the program; quietly (status 0, as cat) when the
 * reader downstream went away (cli_die_writer knows). */
static noreturn void die_writer(tz_writer *w, int e)
{
    cli_die_writer("", w, e);
}

static void begin_or_die(tz_writer *w, const tz_header *h)
{
    int e = tz_writer_begin(w, h);
    if (e)
        die_writer(w, e);
}

static void write_or_die(tz_writer *w, const void *rec, size_t n)
{
    int e = tz_write(w, rec, n);
    if (e)
        die_writer(w, e);
}

static void write_as_or_die(tz_writer *w, int dtype, const void *rec, size_t n)
{
    int e = tz_write_as(w, dtype, rec, n);
    if (e)
        die_writer(w, e);
}

/* cli_finish_writer, also forgetting the writer in the leak table. */
static void finish_writer(tz_writer *w)
{
    int e = tz_writer_close(w);
    if (e)
        die_writer(w, e);
    untrack(w);
    tz_writer_free(w);
    cli_close_stdout();
}

/* Read up to max records (converted to dtype; 0 = stored); dies on error. */
static size_t read_or_die(tz_reader *r, const char *path, int dtype, void *dst,
                          size_t max)
{
    long k = tz_read_as(r, dtype, dst, max);
    if (k < 0)
        cli_die_reader(ctx_name(path), r, (int)k);
    return (size_t)k;
}

/* After the last record: the input must hold nothing else. */
static void expect_end_or_die(tz_reader *r, const char *path)
{
    int e = tz_expect_end(r);
    if (e)
        cli_die_reader(ctx_name(path), r, e);
}

/* Bytes the header h occupies in a stream (formats/tensor-stream.md):
 * 16 fixed bytes, the body, and a 4-byte CRC. */
static uint64_t header_bytes(const tz_header *h)
{
    uint64_t body = 4 + 8 * (uint64_t)h->rank + strlen(h->name) + 4;
    for (size_t i = 0; i < h->n_attrs; i++) {
        const tz_attr *a = &h->attrs[i];
        body += 2 + strlen(a->key) + 1 +
                (a->type == TZ_ATTR_STR ? 4 + strlen(a->s) : 8);
    }
    return 16 + body + 4;
}

static void shape_text(const tz_header *h, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    n += snprintf(buf + n, size - n, "[");
    for (int i = 0; i < h->rank && n < size; i++)
        n += snprintf(buf + n, size - n, i ? " %" PRIu64 : "%" PRIu64, h->dims[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

/* ---- info -------------------------------------------------------------------- */

static const char info_help[] =
    "Usage: tensor info [--json] [FILE]\n"
    "Describe a tensor stream or model file: for each tensor its name, dtype,\n"
    "record shape, record count, attributes, and the bytes it takes in the\n"
    "file (with the uncompressed size).  Every chunk is decoded and checked.\n"
    "\n"
    "      --json               one JSON object instead of text (default: text)\n";

typedef struct {
    tz_header h;
    uint64_t records, bytes;
} info_entry;

static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void json_double(double v)
{
    if (isfinite(v))
        printf("%.17g", v);
    else
        printf("null");
}

static void info_print_json(const info_entry *t, size_t n, uint64_t total)
{
    printf("{\"bytes\": %" PRIu64 ", \"tensors\": [", total);
    for (size_t i = 0; i < n; i++) {
        const tz_header *h = &t[i].h;
        printf(i ? ",\n  {" : "\n  {");
        printf("\"name\": ");
        json_string(h->name);
        printf(", \"dtype\": \"%s\", \"shape\": [", tz_dtype_name(h->dtype));
        for (int d = 0; d < h->rank; d++)
            printf(d ? ", %" PRIu64 : "%" PRIu64, h->dims[d]);
        printf("], \"records\": %" PRIu64 ", \"bytes\": %" PRIu64
               ", \"raw_bytes\": %" PRIu64 ", \"attrs\": {",
               t[i].records, t[i].bytes, t[i].records * tz_record_bytes(h));
        for (size_t a = 0; a < h->n_attrs; a++) {
            const tz_attr *at = &h->attrs[a];
            printf(a ? ", " : "");
            json_string(at->key);
            printf(": ");
            if (at->type == TZ_ATTR_I64)
                printf("%" PRId64, at->i);
            else if (at->type == TZ_ATTR_F64)
                json_double(at->f);
            else
                json_string(at->s);
        }
        printf("}}");
    }
    printf("\n]}\n");
}

static void info_print_text(const info_entry *t, size_t n, uint64_t total)
{
    for (size_t i = 0; i < n; i++) {
        const tz_header *h = &t[i].h;
        char shape[200];
        shape_text(h, shape, sizeof shape);
        uint64_t raw = t[i].records * tz_record_bytes(h);
        if (i)
            putchar('\n');
        if (h->name[0])
            printf("name:       %s\n", h->name);
        printf("dtype:      %s\n", tz_dtype_name(h->dtype));
        printf("shape:      %s per record\n", shape);
        printf("records:    %" PRIu64 "\n", t[i].records);
        printf("bytes:      %" PRIu64 " (raw %" PRIu64, t[i].bytes, raw);
        if (t[i].bytes)
            printf(", ratio %.2f", (double)raw / (double)t[i].bytes);
        printf(")\n");
        for (size_t a = 0; a < h->n_attrs; a++) {
            const tz_attr *at = &h->attrs[a];
            printf("attribute:  %s = ", at->key);
            if (at->type == TZ_ATTR_I64)
                printf("%" PRId64 "\n", at->i);
            else if (at->type == TZ_ATTR_F64)
                printf("%.17g\n", at->f);
            else
                printf("\"%s\"\n", at->s);
        }
    }
    if (n > 1)
        printf("\ntensors:    %zu\ntotal bytes: %" PRIu64 "\n", n, total);
}

int tensor_info(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, OPT_JSON},
        HELP_LONGOPTS, {NULL, 0, NULL, 0}
    };
    int json = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (c == OPT_JSON) json = 1;
        else common_option(c, argv, info_help, 0);
    }
    const char *path = tensor_one_operand(argc, argv);
    FILE *f = cli_open_in(path);
    tz_reader *r = open_reader(f, path);
    info_entry *t = NULL;
    size_t n = 0;
    int e = 1;
    while (e == 1) {
        t = xrealloc(t, (n + 1) * sizeof *t);
        info_entry *cur = &t[n++];
        tz_header_init(&cur->h);
        if (tz_header_copy(&cur->h, tz_reader_header(r)))
            cli_die("out of memory");
        /* The header of a following tensor is read ahead with the previous
         * one's trailer, so a tensor starts where its header began. */
        uint64_t start = tz_reader_in_bytes(r) - header_bytes(&cur->h);
        if (n > 1)
            t[n - 2].bytes = start - t[n - 2].bytes;
        cur->bytes = start;
        long k;
        while ((k = tz_read(r, NULL, SIZE_MAX)) > 0) {}
        if (k < 0)
            cli_die_reader(ctx_name(path), r, (int)k);
        cur->records = tz_reader_count(r);
        e = tz_next(r);
        if (e < 0)
            cli_die_reader(ctx_name(path), r, e);
    }
    uint64_t total = tz_reader_in_bytes(r);
    t[n - 1].bytes = total - t[n - 1].bytes;
    if (json)
        info_print_json(t, n, total);
    else
        info_print_text(t, n, total);
    for (size_t i = 0; i < n; i++)
        tz_header_clear(&t[i].h);
    xfree(t);
    close_reader(r);
    cli_close_in(f);
    cli_close_stdout();
    return 0;
}

/* ---- cat ----------------------------------------------------------------------- */

static const char cat_help[] =
    "Usage: tensor cat [OPTION]... [FILE]...\n"
    "Concatenate streams of equal dtype and record shape into one stream on\n"
    "stdout, checking every chunk.  The output keeps the first input's\n"
    "attributes.  No FILE, or '-', reads stdin.  Chunks are decoded to be\n"
    "checked but copied as they are, unless --level or --chunk-size asks\n"
    "for them to be compressed again.\n"
    "\n";

int tensor_cat(int argc, char **argv)
{
    static const struct option lo[] = {WRITER_LONGOPTS, HELP_LONGOPTS, {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":fqh", lo, NULL)) != -1)
        common_option(c, argv, cat_help, 1);
    char *stdin_only[] = {"-"};
    char **files = optind < argc ? argv + optind : stdin_only;
    int nfiles = optind < argc ? argc - optind : 1;

    /* the output's compression settings, when given, mean re-encoding */
    int copy_frames = cli_wopts.level == TZ_LEVEL_AUTO &&
                      cli_wopts.chunk_bytes == TZ_DEFAULT_CHUNK;
    tz_writer *w = track(cli_writer_stdout(force));
    tz_header first;
    tz_header_init(&first);
    const char *first_name = NULL;
    void *buf = NULL;
    size_t batch = 0;
    uint64_t total = 0;
    progress pg;
    progress_start(&pg, "cat");
    for (int i = 0; i < nfiles; i++) {
        FILE *f = cli_open_in(files[i]);
        tz_reader *r = open_reader(f, files[i]);
        const tz_header *h = tz_reader_header(r);
        if (!first_name) {
            if (tz_header_copy(&first, h))
                cli_die("out of memory");
            first_name = files[i];
            begin_or_die(w, &first);
            batch = batch_for(tz_record_bytes(h));
            buf = xmalloc(batch * tz_record_bytes(h));
        } else if (!tz_header_same_tensor(&first, h)) {
            char a[120], b[120];
            tz_header_describe(&first, a, sizeof a);
            tz_header_describe(h, b, sizeof b);
            cli_die("cannot concatenate: %s is %s%s%s but %s is %s%s%s",
                    show_name(first_name), first.name, first.name[0] ? " " : "", a,
                    show_name(files[i]), h->name, h->name[0] ? " " : "", b);
        }
        if (copy_frames) {
            /* checked by decoding, but not compressed a second time */
            const void *frame;
            size_t len;
            long k;
            while ((k = tz_read_chunk(r, &frame, &len)) > 0) {
                int e = tz_write_frame(w, frame, len, (size_t)k);
                if (e)
                    die_writer(w, e);
                total += (uint64_t)k;
                progress_update(&pg, total);
            }
            if (k < 0)
                cli_die_reader(ctx_name(files[i]), r, (int)k);
        } else {
            size_t k;
            while ((k = read_or_die(r, files[i], 0, buf, batch)) > 0) {
                write_or_die(w, buf, k);
                total += k;
                progress_update(&pg, total);
            }
        }
        expect_end_or_die(r, files[i]);
        close_reader(r);
        cli_close_in(f);
    }
    progress_end(&pg, total);
    xfree(buf);
    tz_header_clear(&first);
    finish_writer(w);
    return 0;
}

/* ---- head ------------------------------------------------------------------------ */

static const char head_help[] =
    "Usage: tensor head [-n N] [OPTION]... [FILE]\n"
    "The first N records of a stream.  Reading stops after them: the rest of\n"
    "the input is neither decoded nor checked.\n"
    "\n"
    "  -n, --records N          records to keep (default 10)\n";

int tensor_head(int argc, char **argv)
{
    static const struct option lo[] = {
        {"records", required_argument, NULL, 'n'},
        WRITER_LONGOPTS, HELP_LONGOPTS, {NULL, 0, NULL, 0}
    };
    uint64_t want = 10;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:fqh", lo, NULL)) != -1) {
        if (c == 'n') want = cli_u64(optarg, "record count");
        else common_option(c, argv, head_help, 1);
    }
    const char *path = tensor_one_operand(argc, argv);
    FILE *f = cli_open_in(path);
    tz_reader *r = open_reader(f, path);
    const tz_header *h = tz_reader_header(r);
    tz_writer *w = track(cli_writer_stdout(force));
    begin_or_die(w, h);
    size_t batch = batch_for(tz_record_bytes(h));
    void *buf = xmalloc(batch * tz_record_bytes(h));
    uint64_t done = 0;
    while (done < want) {
        size_t ask = want - done < batch ? (size_t)(want - done) : batch;
        size_t k = read_or_die(r, path, 0, buf, ask);
        if (k == 0)
            break;
        write_or_die(w, buf, k);
        done += k;
    }
    xfree(buf);
    close_reader(r);
    cli_close_in(f);
    finish_writer(w);
    return 0;
}

/* ---- slice ----------------------------------------------------------------------- */

static const char slice_help[] =
    "Usage: tensor slice [-r A:B] [-c A:B] [OPTION]... [FILE]\n"
    "Records A to B-1 and columns A to B-1 (of the last axis: for images of\n"
    "shape [H W], -c 0:14 keeps the left 14 columns of every row).  Ranges are\n"
    "python-like: A or B may be omitted (start, end), a negative index counts\n"
    "from the end, and a single index I selects one record or column.\n"
    "A negative row index holds that many records in memory.\n"
    "\n"
    "  -r, --rows A:B           records to keep (default ':', all)\n"
    "  -c, --cols A:B           columns to keep (default ':', all)\n";

typedef struct {
    int has_a, has_b;
    int64_t a, b;
} range;

static int parse_index(const char *s, size_t len, int64_t *v)
{
    char tmp[32], *end;
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    errno = 0;
    long long x = strtoll(tmp, &end, 10);
    if (*end || errno || end == tmp || x < -INT64_MAX)
        return -1;
    *v = x;
    return 0;
}

static range parse_range(const char *s, const char *what)
{
    range r = {0, 0, 0, 0};
    const char *colon = strchr(s, ':');
    if (!colon) {
        /* a single index I: I:I+1, or I: for the last one */
        if (parse_index(s, strlen(s), &r.a))
            cli_usage_error("invalid %s '%s': expected A:B", what, s);
        r.has_a = 1;
        if (r.a != -1) {
            r.has_b = 1;
            r.b = r.a + 1;
        }
        return r;
    }
    if (colon > s) {
        if (parse_index(s, (size_t)(colon - s), &r.a))
            cli_usage_error("invalid %s '%s': expected A:B", what, s);
        r.has_a = 1;
    }
    if (colon[1]) {
        if (parse_index(colon + 1, strlen(colon + 1), &r.b))
            cli_usage_error("invalid %s '%s': expected A:B", what, s);
        r.has_b = 1;
    }
    return r;
}

/* Resolve a range against a known length n into [*lo, *hi). */
static void range_resolve(const range *r, uint64_t n, uint64_t *lo, uint64_t *hi)
{
    int64_t a = r->has_a ? r->a : 0, b = r->has_b ? r->b : (int64_t)n;
    if (a < 0) a = a + (int64_t)n < 0 ? 0 : a + (int64_t)n;
    if (b < 0) b = b + (int64_t)n < 0 ? 0 : b + (int64_t)n;
    if ((uint64_t)a > n) a = (int64_t)n;
    if ((uint64_t)b > n) b = (int64_t)n;
    if (b < a) b = a;
    *lo = (uint64_t)a;
    *hi = (uint64_t)b;
}

int tensor_slice(int argc, char **argv)
{
    static const struct option lo[] = {
        {"rows", required_argument, NULL, 'r'},
        {"cols", required_argument, NULL, 'c'},
        WRITER_LONGOPTS, HELP_LONGOPTS, {NULL, 0, NULL, 0}
    };
    range rows = {0, 0, 0, 0}, cols = {0, 0, 0, 0};
    int c, have_cols = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":r:c:fqh", lo, NULL)) != -1) {
        if (c == 'r') rows = parse_range(optarg, "row range");
        else if (c == 'c') { cols = parse_range(optarg, "column range"); have_cols = 1; }
        else common_option(c, argv, slice_help, 1);
    }
    const char *path = tensor_one_operand(argc, argv);
    FILE *f = cli_open_in(path);
    tz_reader *r = open_reader(f, path);
    const tz_header *h = tz_reader_header(r);

    /* the output record: all of it, or columns [c0, c1) of a rank-1 record */
    tz_header oh;
    tz_header_init(&oh);
    if (tz_header_copy(&oh, h))
        cli_die("out of memory");
    uint64_t c0 = 0, c1 = 0;
    size_t es = tz_dtype_size(h->dtype);
    uint64_t outer = 1, width = 0;          /* rows of the last axis */
    if (have_cols) {
        if (h->rank < 1) {
            char d[120];
            tz_header_describe(h, d, sizeof d);
            cli_die("column slice needs records with columns; input records are %s", d);
        }
        width = h->dims[h->rank - 1];
        for (int k = 0; k + 1 < h->rank; k++)
            outer *= h->dims[k];
        range_resolve(&cols, width, &c0, &c1);
        if (c1 == c0)
            cli_die("column range selects no columns of %" PRIu64, width);
        uint64_t nd[TZ_RANK_MAX];
        for (int k = 0; k < h->rank; k++)
            nd[k] = h->dims[k];
        nd[h->rank - 1] = c1 - c0;
        if (tz_header_set_shape(&oh, h->dtype, h->rank, nd))
            cli_die("cannot set the output shape");
    }
    size_t in_rb = (size_t)tz_record_bytes(h), out_rb = (size_t)tz_record_bytes(&oh);
    tz_writer *w = track(cli_writer_stdout(force));
    begin_or_die(w, &oh);

    size_t batch = batch_for(in_rb);
    unsigned char *buf = xmalloc(batch * in_rb);
    unsigned char *out = have_cols ? xmalloc(batch * out_rb) : NULL;
    /* Records held back: the last -A records (A < 0), or a delay line of
     * -B records (A >= 0, B < 0).  ring is (cap, in_rb), allocated as it
     * fills (alloc slots), so a short input needs little memory. */
    size_t cap = 0;
    if (rows.has_a && rows.a < 0)
        cap = (size_t)(-rows.a);
    else if (rows.has_b && rows.b < 0)
        cap = (size_t)(-rows.b);
    if (cap > SIZE_MAX / in_rb)
        cap = SIZE_MAX / in_rb;        /* more could never be held anyway */
    unsigned char *ring = NULL;
    size_t held = 0, head = 0;            /* ring occupancy, oldest slot */
    size_t alloc = 0;
    /* Make room for one more record while the ring is filling (head is 0
     * until it is full, so growing keeps the order). */
#define RING_ROOM() do { \
        if (held == alloc && alloc < cap) { \
            alloc = alloc ? (alloc > cap / 2 ? cap : 2 * alloc) \
                          : (cap < batch ? cap : batch); \
            ring = xrealloc(ring, alloc * in_rb); \
        } \
    } while (0)
    uint64_t idx = 0;                     /* input records seen */
    int stop = 0, read_all = 0;

    /* emit one input record (columns cut if asked) */
#define EMIT(rec) do { \
        if (have_cols) { \
            for (uint64_t q_ = 0; q_ < outer; q_++) \
                memcpy(out + q_ * (c1 - c0) * es, \
                       (rec) + (q_ * width + c0) * es, (c1 - c0) * es); \
            write_or_die(w, out, 1); \
        } else \
            write_or_die(w, (rec), 1); \
    } while (0)

    while (!stop) {
        size_t k = read_or_die(r, path, 0, buf, batch);
        if (k == 0) { read_all = 1; break; }
        for (size_t i = 0; i < k && !stop; i++, idx++) {
            unsigned char *rec = buf + i * in_rb;
            if (rows.has_a && rows.a < 0) {
                /* keep the last `cap` records */
                RING_ROOM();
                size_t slot = (head + held) % cap;
                if (held == cap) { slot = head; head = (head + 1) % cap; }
                else held++;
                memcpy(ring + slot * in_rb, rec, in_rb);
            } else if (rows.has_b && rows.b >= 0 && idx >= (uint64_t)rows.b) {
                stop = 1;
            } else if (idx < (uint64_t)(rows.has_a ? rows.a : 0)) {
                continue;
            } else if (rows.has_b && rows.b < 0) {
                /* delay line: emit a record once -B newer ones arrived */
                if (held == cap) {
                    EMIT(ring + head * in_rb);
                    memcpy(ring + head * in_rb, rec, in_rb);
                    head = (head + 1) % cap;
                } else {
                    RING_ROOM();
                    memcpy(ring + ((head + held) % cap) * in_rb, rec, in_rb);
                    held++;
                }
            } else {
                EMIT(rec);
            }
        }
    }
    if (rows.has_a && rows.a < 0) {
        /* the input is over: idx records; the ring holds the last `held` */
        uint64_t lo, hi;
        range_resolve(&rows, idx, &lo, &hi);
        uint64_t first = idx - held;
        for (uint64_t i = lo; i < hi; i++)
            EMIT(ring + ((head + (i - first)) % cap) * in_rb);
    }
#undef EMIT
#undef RING_ROOM
    if (read_all)
        expect_end_or_die(r, path);
    xfree(buf);
    xfree(out);
    xfree(ring);
    tz_header_clear(&oh);
    close_reader(r);
    cli_close_in(f);
    finish_writer(w);
    return 0;
}

/* ---- paste ------------------------------------------------------------------------- */

static const char paste_help[] =
    "Usage: tensor paste [OPTION]... FILE FILE...\n"
    "Join streams record by record: output record i is record i of every\n"
    "input, flattened and laid end to end (a rank-1 record).  All inputs must\n"
    "have the same number of records.  Unequal dtypes are promoted to one\n"
    "that holds them all (u8+i8 -> i16, ints+f32 -> f32 or f64, ...).  The\n"
    "output keeps the attributes every input has with equal values.\n"
    "\n"
    "      --side-by-side       images side by side: each record is R rows (R\n"
    "                           the first dimension of the first input of rank\n"
    "                           2 or more) and output row r joins row r of\n"
    "                           every input: the output records are [R W]\n"
    "                           (the inverse of slice -c)\n";

/* The smallest dtype that holds every value of dtypes a and b. */
static int promote(int a, int b)
{
    if (a == b)
        return a;
    int fa = a == TZ_F32 || a == TZ_F64, fb = b == TZ_F32 || b == TZ_F64;
    if (fa || fb) {
        int fl = fa && fb ? (a == TZ_F64 || b == TZ_F64 ? TZ_F64 : TZ_F32)
               : fa ? a : b;
        int in = fa ? b : a;
        if (fa && fb)
            return fl;
        /* f32 holds integers of up to 16 bits exactly */
        return fl == TZ_F64 || tz_dtype_size(in) >= 4 ? TZ_F64 : TZ_F32;
    }
    int ua = a == TZ_U8 || a == TZ_U16, ub = b == TZ_U8 || b == TZ_U16;
    size_t sa = tz_dtype_size(a), sb = tz_dtype_size(b);
    if (ua && ub)
        return sa > sb ? a : b;
    /* signed result: an unsigned type needs twice its size */
    size_t need = 0;
    if (ua) need = 2 * sa; else need = sa;
    if (ub) { if (2 * sb > need) need = 2 * sb; }
    else if (sb > need) need = sb;
    return need <= 1 ? TZ_I8 : need == 2 ? TZ_I16 : need <= 4 ? TZ_I32 : TZ_I64;
}

static int attr_equal(const tz_attr *a, const tz_attr *b)
{
    if (a->type != b->type)
        return 0;
    if (a->type == TZ_ATTR_I64) return a->i == b->i;
    if (a->type == TZ_ATTR_F64) return memcmp(&a->f, &b->f, sizeof a->f) == 0;
    return strcmp(a->s, b->s) == 0;
}

int tensor_paste(int argc, char **argv)
{
    static const struct option lo[] = {
        {"side-by-side", no_argument, NULL, 'S'},
        WRITER_LONGOPTS, HELP_LONGOPTS, {NULL, 0, NULL, 0}};
    int c, side = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":fqh", lo, NULL)) != -1) {
        if (c == 'S')
            side = 1;
        else
            common_option(c, argv, paste_help, 1);
    }
    int n = argc - optind;
    char **files = argv + optind;
    if (n < 2)
        cli_usage_error("paste: needs at least two FILE operands");
    int stdin_uses = 0;
    for (int i = 0; i < n; i++)
        stdin_uses += strcmp(files[i], "-") == 0;
    if (stdin_uses > 1)
        cli_usage_error("paste: stdin ('-') can be named only once");

    FILE **fs = xcalloc((size_t)n, sizeof *fs);
    tz_reader **rs = xcalloc((size_t)n, sizeof *rs);
    uint64_t *elems = xcalloc((size_t)n, sizeof *elems);
    int od = 0;
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        fs[i] = cli_open_in(files[i]);
        rs[i] = open_reader(fs[i], files[i]);
        const tz_header *h = tz_reader_header(rs[i]);
        elems[i] = tz_record_elems(h);
        total += elems[i];
        od = i ? promote(od, h->dtype) : h->dtype;
    }
    uint64_t R = 1;                     /* rows of every record */
    if (side) {
        R = 0;
        for (int i = 0; i < n && !R; i++)
            if (tz_reader_header(rs[i])->rank >= 2)
                R = tz_reader_header(rs[i])->dims[0];
        if (!R)
            cli_die("paste --side-by-side: no input has records of rank 2 "
                    "or more to take the row count from");
        for (int i = 0; i < n; i++)
            if (elems[i] % R)
                cli_die("paste --side-by-side: %s has records of %" PRIu64
                        " values, not %" PRIu64 " rows", show_name(files[i]),
                        elems[i], R);
    }
    tz_header oh;
    tz_header_init(&oh);
    uint64_t oshape[2] = {R, total / R};
    if (side ? tz_header_set_shape(&oh, od, 2, oshape)
             : tz_header_set_shape(&oh, od, 1, &total))
        cli_die("pasted record of %" PRIu64 " %s elements exceeds the record limit",
                total, tz_dtype_name(od));
    /* attributes all inputs agree on */
    const tz_header *h0 = tz_reader_header(rs[0]);
    for (size_t a = 0; a < h0->n_attrs; a++) {
        const tz_attr *at = &h0->attrs[a];
        int all = 1;
        for (int i = 1; i < n && all; i++) {
            const tz_attr *o = tz_attr_get(tz_reader_header(rs[i]), at->key);
            all = o && attr_equal(at, o);
        }
        if (!all)
            continue;
        int e = at->type == TZ_ATTR_I64 ? tz_attr_set_i(&oh, at->key, at->i)
              : at->type == TZ_ATTR_F64 ? tz_attr_set_f(&oh, at->key, at->f)
              : tz_attr_set_s(&oh, at->key, at->s);
        if (e)
            cli_die("out of memory");
    }
    size_t es = tz_dtype_size(od);
    size_t batch = batch_for(total * es);
    unsigned char **bufs = xcalloc((size_t)n, sizeof *bufs);
    for (int i = 0; i < n; i++)
        bufs[i] = xmalloc(batch * elems[i] * es);
    unsigned char *out = xmalloc(batch * total * es);
    size_t *got = xcalloc((size_t)n, sizeof *got);

    tz_writer *w = track(cli_writer_stdout(force));
    begin_or_die(w, &oh);
    progress pg;
    progress_start(&pg, "paste");
    uint64_t done = 0;
    for (;;) {
        int differ = 0;
        for (int i = 0; i < n; i++) {
            got[i] = read_or_die(rs[i], files[i], od, bufs[i], batch);
            differ |= got[i] != got[0];
        }
        if (differ) {
            /* count what is left of each input to name both counts */
            for (int i = 0; i < n; i++) {
                long k;
                while ((k = tz_read(rs[i], NULL, SIZE_MAX)) > 0) {}
                if (k < 0)
                    cli_die_reader(ctx_name(files[i]), rs[i], (int)k);
            }
            uint64_t n0 = tz_reader_count(rs[0]);
            for (int i = 1; i < n; i++)
                if (tz_reader_count(rs[i]) != n0)
                    cli_die("paste: %s has %" PRIu64 " records but %s has %" PRIu64,
                            show_name(files[0]), n0, show_name(files[i]),
                            tz_reader_count(rs[i]));
        }
        size_t k = got[0];
        if (k == 0)
            break;
        /* out is (k, total): the inputs' (k, elems[i]) side by side */
        for (size_t j = 0; j < k; j++) {
            unsigned char *o = out + j * total * es;
            for (uint64_t q = 0; q < R; q++)
            for (int i = 0; i < n; i++) {
                size_t rb = (size_t)(elems[i] / R) * es;
                memcpy(o, bufs[i] + j * elems[i] * es + q * rb, rb);
                o += rb;
            }
        }
        write_or_die(w, out, k);
        done += k;
        progress_update(&pg, done);
    }
    progress_end(&pg, done);
    for (int i = 0; i < n; i++) {
        expect_end_or_die(rs[i], files[i]);
        close_reader(rs[i]);
        cli_close_in(fs[i]);
        xfree(bufs[i]);
    }
    xfree(bufs);
    xfree(out);
    xfree(got);
    xfree(elems);
    xfree(rs);
    xfree(fs);
    tz_header_clear(&oh);
    finish_writer(w);
    return 0;
}

/* ---- shuffle ------------------------------------------------------------------------ */

static const char shuffle_help[] =
    "Usage: tensor shuffle [-s SEED] [OPTION]... [FILE]\n"
    "The records in a random order.  The whole stream is held in memory.\n"
    "The same seed gives the same order on every machine.\n"
    "\n"
    "  -s, --seed SEED          random seed (default 1)\n";

int tensor_shuffle(int argc, char **argv)
{
    static const struct option lo[] = {
        {"seed", required_argument, NULL, 's'},
        WRITER_LONGOPTS, HELP_LONGOPTS, {NULL, 0, NULL, 0}
    };
    uint64_t seed = 1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:fqh", lo, NULL)) != -1) {
        if (c == 's') seed = cli_u64(optarg, "seed");
        else common_option(c, argv, shuffle_help, 1);
    }
    const char *path = tensor_one_operand(argc, argv);
    FILE *f = cli_open_in(path);
    tz_reader *r = open_reader(f, path);
    tz_writer *w = track(cli_writer_stdout(force));
    void *data;
    uint64_t n;
    int e = tz_read_all(r, 0, &data, &n);
    if (e)
        cli_die_reader(ctx_name(path), r, e);
    track(data);
    expect_end_or_die(r, path);
    const tz_header *h = tz_reader_header(r);
    size_t rb = (size_t)tz_record_bytes(h);
    uint64_t *perm = xmalloc((size_t)n * sizeof *perm);
    rng_t rng;
    rng_seed(&rng, seed);
    rng_permutation(&rng, perm, (size_t)n);
    begin_or_die(w, h);
    for (uint64_t i = 0; i < n; i++)
        write_or_die(w, (unsigned char *)data + perm[i] * rb, 1);
    xfree(perm);
    xfree(data);
    close_reader(r);
    cli_close_in(f);
    finish_writer(w);
    return 0;
}

/* ---- split --------------------------------------------------------------------------- */

static const char split_help[] =
    "Usage: tensor split -n N [-p PREFIX] [OPTION]... [FILE]\n"
    "Cut a stream into files of N records each (the last may hold fewer),\n"
    "named PREFIX0000.tz, PREFIX0001.tz, ...  Each file is written to a\n"
    "temporary name and renamed when complete; existing files are replaced.\n"
    "An empty input writes no file.\n"
    "\n"
    "  -n, --records N          records per file (required)\n"
    "  -p, --prefix PREFIX      output name prefix (default 'part')\n"
    "  -q, --quiet              no progress on stderr\n"
    CLI_STREAM_HELP;

int tensor_split(int argc, char **argv)
{
    static const struct option lo[] = {
        {"records", required_argument, NULL, 'n'},
        {"prefix", required_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, 'q'},
        CLI_STREAM_LONGOPTS,
        HELP_LONGOPTS, {NULL, 0, NULL, 0}
    };
    uint64_t per = 0;
    const char *prefix = "part";
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:p:qh", lo, NULL)) != -1) {
        if (c == 'n') {
            per = cli_u64(optarg, "record count");
            if (per == 0)
                cli_usage_error("invalid record count '%s': must be at least 1", optarg);
        } else if (c == 'p') {
            prefix = optarg;
        } else if (c == 'h') {
            /* split writes files, not stdout: its help lists its own
             * writer options */
            fputs(split_help, stdout);
            fputs(common_help, stdout);
            cli_close_stdout();
            exit(0);
        } else {
            common_option(c, argv, split_help, 1);
        }
    }
    if (per == 0)
        cli_usage_error("split: missing -n N (records per file)");
    const char *path = tensor_one_operand(argc, argv);
    FILE *f = cli_open_in(path);
    tz_reader *r = open_reader(f, path);
    const tz_header *h = tz_reader_header(r);
    size_t rb = (size_t)tz_record_bytes(h);
    size_t batch = batch_for(rb);
    unsigned char *buf = xmalloc(batch * rb);
    size_t plen = strlen(prefix) + 32;
    char *name = xmalloc(plen);
    FILE *of = NULL;
    char *tmp = NULL;
    tz_writer *w = NULL;
    uint64_t piece = 0, in_piece = 0;
    long k;
    while ((k = tz_read(r, buf, batch)) != 0) {
        if (k < 0) {
            /* a damaged input leaves no temporary file behind */
            if (w)
                tz_atomic_abort(of, tmp);
            cli_die_reader(ctx_name(path), r, (int)k);
        }
        size_t i = 0;
        while (i < (size_t)k) {
            if (!w) {
                snprintf(name, plen, "%s%04" PRIu64 ".tz", prefix, piece);
                of = tz_atomic_open(name, &tmp);
                if (!of)
                    cli_die("%s:", name);
                w = track(tz_writer_new(of, &cli_wopts));
                if (!w)
                    cli_die("out of memory");
                int e = tz_writer_begin(w, h);
                if (e)
                    cli_die("%s: %s", name, tz_writer_error(w));
                in_piece = 0;
            }
            size_t take = (size_t)k - i;
            if (take > per - in_piece)
                take = (size_t)(per - in_piece);
            int e = tz_write(w, buf + i * rb, take);
            if (e) {
                tz_atomic_abort(of, tmp);
                cli_die("%s: %s", name, tz_writer_error(w));
            }
            i += take;
            in_piece += take;
            if (in_piece == per) {
                e = tz_writer_close(w);
                if (e) {
                    tz_atomic_abort(of, tmp);
                    cli_die("%s: %s", name, tz_writer_error(w));
                }
                untrack(w);
                tz_writer_free(w);
                w = NULL;
                if (tz_atomic_commit(of, tmp, name) != 0)
                    cli_die("%s:", name);
                piece++;
            }
        }
    }
    /* input over: check it before keeping the last, short piece */
    int e = tz_expect_end(r);
    if (e) {
        if (w)
            tz_atomic_abort(of, tmp);
        cli_die_reader(ctx_name(path), r, e);
    }
    if (w) {
        e = tz_writer_close(w);
        if (e) {
            tz_atomic_abort(of, tmp);
            cli_die("%s: %s", name, tz_writer_error(w));
        }
        untrack(w);
        tz_writer_free(w);
        if (tz_atomic_commit(of, tmp, name) != 0)
            cli_die("%s:", name);
    }
    xfree(name);
    xfree(buf);
    close_reader(r);
    cli_close_in(f);
    return 0;
}

/* ---- column statistics (stats, standardize) --------------------------------------- */

/* Running per-column moments over records of d elements: mean and M2 (sum
 * of squared deviations), combined batch by batch (Chan et al.), in
 * double.  All arrays are (d). */
typedef struct {
    size_t d;
    uint64_t n;
    double *mean, *m2, *min, *max;
    double *sd;                  /* filled by colstats_finish or loaded */
    double *bsum, *bm2;          /* scratch for one batch */
} colstats;

static void colstats_init(colstats *s, size_t d)
{
    s->d = d;
    s->n = 0;
    s->mean = xcalloc(d, sizeof(double));
    s->m2 = xcalloc(d, sizeof(double));
    s->min = xcalloc(d, sizeof(double));
    s->max = xcalloc(d, sizeof(double));
    s->sd = xcalloc(d, sizeof(double));
    s->bsum = xcalloc(d, sizeof(double));
    s->bm2 = xcalloc(d, sizeof(double));
    for (size_t j = 0; j < d; j++) {
        s->min[j] = INFINITY;
        s->max[j] = -INFINITY;
    }
}

static void colstats_free(colstats *s)
{
    xfree(s->mean); xfree(s->m2); xfree(s->min); xfree(s->max);
    xfree(s->sd); xfree(s->bsum); xfree(s->bm2);
}

/* Add k records; x is (k, d) row-major. */
static void colstats_add(colstats *s, const double *x, size_t k)
{
    size_t d = s->d;
    if (k == 0)
        return;
    for (size_t j = 0; j < d; j++)
        s->bsum[j] = s->bm2[j] = 0;
    for (size_t i = 0; i < k; i++) {
        const double *row = x + i * d;
        for (size_t j = 0; j < d; j++) {
            double v = row[j];
            s->bsum[j] += v;
            if (v < s->min[j]) s->min[j] = v;
            if (v > s->max[j]) s->max[j] = v;
        }
    }
    for (size_t j = 0; j < d; j++)
        s->bsum[j] /= (double)k;              /* now the batch mean */
    for (size_t i = 0; i < k; i++) {
        const double *row = x + i * d;
        for (size_t j = 0; j < d; j++) {
            double e = row[j] - s->bsum[j];
            s->bm2[j] += e * e;
        }
    }
    double na = (double)s->n, nb = (double)k, nt = na + nb;
    for (size_t j = 0; j < d; j++) {
        double delta = s->bsum[j] - s->mean[j];
        s->mean[j] += delta * nb / nt;
        s->m2[j] += s->bm2[j] + delta * delta * na * nb / nt;
    }
    s->n += k;
}

/* sd = the population standard deviation (divides by n). */
static void colstats_finish(colstats *s)
{
    for (size_t j = 0; j < s->d; j++)
        s->sd[j] = s->n ? sqrt(s->m2[j] / (double)s->n) : NAN;
}

/* Read the rest of the current tensor into s (records as f64). */
static void colstats_read(colstats *s, tz_reader *r, const char *path,
                          const char *what)
{
    size_t batch = batch_for(s->d * sizeof(double));
    double *buf = xmalloc(batch * s->d * sizeof(double));
    progress pg;
    progress_start(&pg, what);
    size_t k;
    while ((k = read_or_die(r, path, TZ_F64, buf, batch)) > 0) {
        colstats_add(s, buf, k);
        progress_update(&pg, s->n);
    }
    progress_end(&pg, s->n);
    expect_end_or_die(r, path);
    xfree(buf);
    colstats_finish(s);
}

/* Save mean, std, min, max as a model file: four f64 tensors of shape (d),
 * and the attribute stats.records = n. */
static void colstats_save(const colstats *s, const char *path)
{
    tz_model *m = track(tz_model_new());
    if (!m)
        cli_die("out of memory");
    uint64_t shape[1] = {s->d};
    int e = tz_model_add(m, "mean", TZ_F64, 1, shape, s->mean);
    if (!e) e = tz_model_add(m, "std", TZ_F64, 1, shape, s->sd);
    if (!e) e = tz_model_add(m, "min", TZ_F64, 1, shape, s->min);
    if (!e) e = tz_model_add(m, "max", TZ_F64, 1, shape, s->max);
    if (!e) e = tz_attr_set_i(&m->meta, "stats.records", (int64_t)s->n);
    if (e)
        cli_die("%s: %s", path, tz_strerror(e));
    char err[300];
    if (tz_model_save(m, path, err, sizeof err))
        cli_die("%s", err);
    untrack(m);
    tz_model_free(m);
}

/* Make a FILE readable twice: a seekable file is used as it is; anything
 * else (a pipe) is copied to an anonymous temporary file first.  Returns
 * the FILE positioned at the start; *pos gets that offset. */
static FILE *rewindable(FILE *f, const char *path, long *pos)
{
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        *pos = ftell(f);
        if (*pos >= 0)
            return f;
    }
    FILE *t = tmpfile();
    if (!t)
        cli_die("temporary file:");
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (fwrite(buf, 1, n, t) != n)
            cli_die("temporary file:");
    if (ferror(f))
        cli_die("%s:", show_name(path));
    if (fflush(t) != 0)
        cli_die("temporary file:");
    rewind(t);
    *pos = 0;
    return t;
}

/* ---- stats ---------------------------------------------------------------------------- */

static const char stats_help[] =
    "Usage: tensor stats [--save FILE] [FILE]\n"
    "Per-column statistics of a stream, columns being the elements of the\n"
    "flattened record: a tab-separated table with a header line and the\n"
    "columns column, mean, std, min, max.  std is the population standard\n"
    "deviation (divides by N).  Sums are kept in double precision.\n"
    "\n"
    "      --save FILE          also write a model file with f64 tensors mean,\n"
    "                           std, min and max of shape (D) (default: none)\n";

int tensor_stats(int argc, char **argv)
{
    static const struct option lo[] = {
        {"save", required_argument, NULL, OPT_SAVE},
        {"quiet", no_argument, NULL, 'q'},
        HELP_LONGOPTS, {NULL, 0, NULL, 0}
    };
    const char *save = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qh", lo, NULL)) != -1) {
        if (c == OPT_SAVE) save = optarg;
        else if (c == 'q') cli_quiet = 1;
        else common_option(c, argv, stats_help, 0);
    }
    const char *path = tensor_one_operand(argc, argv);
    FILE *f = cli_open_in(path);
    tz_reader *r = open_reader(f, path);
    colstats s;
    colstats_init(&s, (size_t)tz_record_elems(tz_reader_header(r)));
    colstats_read(&s, r, path, "stats");
    if (s.n == 0)
        cli_die("%s%sno records to compute statistics of", ctx_name(path),
                *ctx_name(path) ? ": " : "");
    if (save)
        colstats_save(&s, save);
    printf("column\tmean\tstd\tmin\tmax\n");
    for (size_t j = 0; j < s.d; j++)
        printf("%zu\t%.10g\t%.10g\t%.10g\t%.10g\n", j, s.mean[j],
               s.sd[j], s.min[j], s.max[j]);
    colstats_free(&s);
    close_reader(r);
    cli_close_in(f);
    cli_close_stdout();
    return 0;
}

/* ---- standardize ------------------------------------------------------------------------ */

static const char standardize_help[] =
    "Usage: tensor standardize [--stats FILE] [--save FILE] [OPTION]... [FILE]\n"
    "(x - mean) / std for every column of the flattened record, as f32, for\n"
    "Gaussian visible units.  Without --stats the statistics are fitted on\n"
    "the input first (a second pass; a pipe is spooled to a temporary file).\n"
    "A column whose std is 0 (constant) is divided by 1 instead.\n"
    "\n"
    "      --stats FILE         use the mean and std of a 'tensor stats --save'\n"
    "                           file (default: fit them on the input)\n"
    "      --save FILE          write the statistics used to FILE (default: none)\n";

/* Load a 'tensor stats --save' file for records of d elements into s:
 * mean and std are required, min and max optional (NaN when absent). */
static void load_stats(const char *path, colstats *s)
{
    tz_model *m = track(cli_load_model(path));
    const char *names[4] = {"mean", "std", "min", "max"};
    double *dst[4] = {s->mean, s->sd, s->min, s->max};
    size_t d = s->d;
    for (int i = 0; i < 4; i++) {
        tz_tensor *t = tz_model_find(m, names[i]);
        if (!t && i >= 2) {
            for (size_t j = 0; j < d; j++)
                dst[i][j] = NAN;
            continue;
        }
        if (!t)
            cli_die("%s: no tensor '%s' (not a 'tensor stats --save' file?)", path, names[i]);
        uint64_t n = t->count * tz_record_elems(&t->h);
        if (n != d)
            cli_die("%s: '%s' has %" PRIu64 " values but input records have %zu",
                    path, names[i], n, d);
        tz_convert(dst[i], TZ_F64, t->data, t->h.dtype, d);
    }
    int64_t n = tz_attr_get_i(&m->meta, "stats.records", 0);
    s->n = n > 0 ? (uint64_t)n : 0;
    untrack(m);
    tz_model_free(m);
}

int tensor_standardize(int argc, char **argv)
{
    static const struct option lo[] = {
        {"stats", required_argument, NULL, OPT_STATS},
        {"save", required_argument, NULL, OPT_SAVE},
        WRITER_LONGOPTS, HELP_LONGOPTS, {NULL, 0, NULL, 0}
    };
    const char *stats_path = NULL, *save = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":fqh", lo, NULL)) != -1) {
        if (c == OPT_STATS) stats_path = optarg;
        else if (c == OPT_SAVE) save = optarg;
        else common_option(c, argv, standardize_help, 1);
    }
    const char *path = tensor_one_operand(argc, argv);
    cli_check_stdout(force);
    FILE *f = cli_open_in(path), *in = f;
    tz_reader *r;
    size_t d;
    colstats s;
    long pos = 0;
    if (stats_path) {
        r = open_reader(f, path);
        d = (size_t)tz_record_elems(tz_reader_header(r));
        colstats_init(&s, d);
        load_stats(stats_path, &s);
    } else {
        in = rewindable(f, path, &pos);
        r = open_reader(in, path);
        d = (size_t)tz_record_elems(tz_reader_header(r));
        colstats_init(&s, d);
        colstats_read(&s, r, path, "standardize (fit)");
        close_reader(r);
        if (fseek(in, pos, SEEK_SET) != 0)
            cli_die("%s:", show_name(path));
        r = open_reader(in, path);
    }
    if (save)
        colstats_save(&s, save);
    double *scale = xmalloc(d * sizeof(double));
    for (size_t j = 0; j < d; j++) {
        scale[j] = s.sd[j] > 0 ? 1.0 / s.sd[j] : 1.0;
    }
    tz_header oh;
    tz_header_init(&oh);
    const tz_header *h = tz_reader_header(r);
    if (tz_header_copy(&oh, h) || tz_header_set_shape(&oh, TZ_F32, h->rank, h->dims))
        cli_die("out of memory");
    tz_writer *w = track(cli_writer_stdout(force));
    begin_or_die(w, &oh);
    size_t batch = batch_for(d * sizeof(double));
    double *buf = xmalloc(batch * d * sizeof(double));
    size_t k;
    uint64_t done = 0;
    progress pg;
    progress_start(&pg, "standardize");
    while ((k = read_or_die(r, path, TZ_F64, buf, batch)) > 0) {
        for (size_t i = 0; i < k; i++) {
            double *row = buf + i * d;    /* (d) */
            for (size_t j = 0; j < d; j++)
                row[j] = (row[j] - s.mean[j]) * scale[j];
        }
        write_as_or_die(w, TZ_F64, buf, k);
        done += k;
        progress_update(&pg, done);
    }
    progress_end(&pg, done);
    expect_end_or_die(r, path);
    xfree(buf);
    xfree(scale);
    colstats_free(&s);
    tz_header_clear(&oh);
    close_reader(r);
    if (in != f)
        fclose(in);
    cli_close_in(f);
    finish_writer(w);
    return 0;
}

/* ---- binarize ------------------------------------------------------------------------------ */

static const char binarize_help[] =
    "Usage: tensor binarize [-t T | --stochastic [-s SEED]] [OPTION]... [FILE]\n"
    "Turn values into u8 0/1.  u8 input is first scaled by 1/255 (pixels to\n"
    "[0, 1]) unless --no-scale is given.  With a threshold a value becomes 1\n"
    "when it is greater than T.  With --stochastic it becomes 1 with\n"
    "probability equal to the value (clipped to [0, 1]), one uniform draw per\n"
    "element in stream order, so the same seed gives the same output.\n"
    "\n"
    "  -t, --threshold T        threshold (default 0.5)\n"
    "      --stochastic         sample instead of thresholding\n"
    "  -s, --seed SEED          random seed for --stochastic (default 1)\n"
    "      --no-scale           do not scale u8 input by 1/255\n";

int tensor_binarize(int argc, char **argv)
{
    static const struct option lo[] = {
        {"threshold", required_argument, NULL, 't'},
        {"stochastic", no_argument, NULL, OPT_STOCHASTIC},
        {"seed", required_argument, NULL, 's'},
        {"no-scale", no_argument, NULL, OPT_NO_SCALE},
        WRITER_LONGOPTS, HELP_LONGOPTS, {NULL, 0, NULL, 0}
    };
    double thr = 0.5;
    uint64_t seed = 1;
    int c, stochastic = 0, no_scale = 0, have_t = 0, have_s = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:s:fqh", lo, NULL)) != -1) {
        if (c == 't') { thr = cli_double(optarg, -HUGE_VAL, HUGE_VAL, "threshold"); have_t = 1; }
        else if (c == 's') { seed = cli_u64(optarg, "seed"); have_s = 1; }
        else if (c == OPT_STOCHASTIC) stochastic = 1;
        else if (c == OPT_NO_SCALE) no_scale = 1;
        else common_option(c, argv, binarize_help, 1);
    }
    if (stochastic && have_t)
        cli_usage_error("binarize: --threshold and --stochastic exclude each other");
    if (!stochastic && have_s)
        cli_usage_error("binarize: --seed needs --stochastic");
    const char *path = tensor_one_operand(argc, argv);
    FILE *f = cli_open_in(path);
    tz_reader *r = open_reader(f, path);
    const tz_header *h = tz_reader_header(r);
    double mul = h->dtype == TZ_U8 && !no_scale ? 1.0 / 255.0 : 1.0;
    size_t d = (size_t)tz_record_elems(h);
    tz_header oh;
    tz_header_init(&oh);
    if (tz_header_copy(&oh, h) || tz_header_set_shape(&oh, TZ_U8, h->rank, h->dims))
        cli_die("out of memory");
    tz_writer *w = track(cli_writer_stdout(force));
    begin_or_die(w, &oh);
    size_t batch = batch_for(d * sizeof(double));
    double *buf = xmalloc(batch * d * sizeof(double));   /* (batch, d) */
    unsigned char *out = xmalloc(batch * d);              /* (batch, d) */
    rng_t rng;
    rng_seed(&rng, seed);
    size_t k;
    uint64_t done = 0;
    progress pg;
    progress_start(&pg, "binarize");
    while ((k = read_or_die(r, path, TZ_F64, buf, batch)) > 0) {
        size_t m = k * d;
        if (stochastic)
            for (size_t i = 0; i < m; i++) {
                double p = buf[i] * mul;     /* NaN compares false: 0 */
                out[i] = rng_uniform_d(&rng) < p;
            }
        else
            for (size_t i = 0; i < m; i++)
                out[i] = buf[i] * mul > thr;
        write_or_die(w, out, k);
        done += k;
        progress_update(&pg, done);
    }
    progress_end(&pg, done);
    expect_end_or_die(r, path);
    xfree(buf);
    xfree(out);
    tz_header_clear(&oh);
    close_reader(r);
    cli_close_in(f);
    finish_writer(w);
    return 0;
}
