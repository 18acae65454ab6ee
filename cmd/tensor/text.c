/* tensor_text.c - `tensor bow` and `tensor words`: the text modality.
 *
 *   bow    text, one document a line -> word-count rows f32 [K], the input
 *          of a replicated-softmax RBM; K = vocabulary size
 *   words  rows [K] -> the N heaviest words of each row, one line a row
 *
 * A token is a maximal run of ASCII letters and digits and bytes >= 0x80
 * (so UTF-8 letters stay inside words); ASCII letters are lowercased and
 * every other byte separates.  The vocabulary is a list of tokens, one a
 * line, in column order.  Part of the `tensor` tool (tensor.h).
 */
#include "tensor.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli.h"
#include "tz.h"

#define VOCAB_ATTR_MAX (64u << 10)   /* store text.vocab up to this size */


static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c >= 0x80;
}

/* ---- a word table: token -> (count, column) ------------------------------- */

typedef struct {
    char *w;            /* NUL-terminated token; NULL = empty slot */
    size_t len;
    uint64_t count;     /* occurrences in the input */
    long col;           /* vocabulary column, or -1 */
} wentry;

typedef struct {
    wentry *e;
    size_t cap, n;      /* cap is a power of two */
} wtab;

static uint64_t whash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;           /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void wtab_init(wtab *t)
{
    t->cap = 1024;
    t->n = 0;
    t->e = calloc(t->cap, sizeof *t->e);
    if (!t->e)
        cli_die("out of memory");
}

static void wtab_free(wtab *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->e[i].w);
    free(t->e);
}

/* The entry of s[0..n); inserted (count 0, col -1) when absent and insert
 * is set, else NULL. */
static wentry *wtab_get(wtab *t, const char *s, size_t n, int insert)
{
    size_t mask = t->cap - 1, i = (size_t)whash(s, n) & mask;
    while (t->e[i].w) {
        if (t->e[i].len == n && memcmp(t->e[i].w, s, n) == 0)
            return &t->e[i];
        i = (i + 1) & mask;
    }
    if (!insert)
        return NULL;
    if (2 * (t->n + 1) > t->cap) {
        wtab old = *t;
        t->cap *= 2;
        t->n = 0;
        t->e = calloc(t->cap, sizeof *t->e);
        if (!t->e)
            cli_die("out of memory");
        for (size_t k = 0; k < old.cap; k++)
            if (old.e[k].w) {
                size_t j = (size_t)whash(old.e[k].w, old.e[k].len) & (t->cap - 1);
                while (t->e[j].w)
                    j = (j + 1) & (t->cap - 1);
                t->e[j] = old.e[k];
                t->n++;
            }
        free(old.e);
        return wtab_get(t, s, n, 1);
    }
    wentry *e = &t->e[i];
    e->w = tensor_xmalloc(n + 1);
    memcpy(e->w, s, n);
    e->w[n] = 0;
    e->len = n;
    e->count = 0;
    e->col = -1;
    t->n++;
    return e;
}

/* Call fn(token, len, arg) for each token of line[0..n), lowercased in
 * place. */
static void tokens(char *line, size_t n, void (*fn)(const char *, size_t, void *), void *arg)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && !is_word_byte((unsigned char)line[i]))
            i++;
        size_t s = i;
        for (; i < n && is_word_byte((unsigned char)line[i]); i++)
            if (line[i] >= 'A' && line[i] <= 'Z')
                line[i] = (char)(line[i] - 'A' + 'a');
        if (i > s)
            fn(line + s, i - s, arg);
    }
}

/* ---- vocabulary files ---- */

typedef struct {
    char **w;           /* (K) tokens in column order */
    size_t k;
} vocab;

static void vocab_free(vocab *v)
{
    for (size_t i = 0; i < v->k; i++)
        free(v->w[i]);
    free(v->w);
}

/* Read a vocabulary file (one token a line) into v and, when t is not
 * NULL, its columns into t.  Dies on a line that is not a token or a
 * repeated word. */
static void vocab_read(vocab *v, wtab *t, const char *path, const char *sub)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        cli_die("%s: %s:", sub, path);
    wtab own;
    if (!t) {
        wtab_init(&own);
        t = &own;
    }
    char *line = NULL;
    size_t cap = 0, vcap = 0;
    ssize_t len;
    unsigned long lineno = 0;
    v->w = NULL;
    v->k = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        if (len == 0)
            cli_die("%s: %s: line %lu: empty line", sub, path, lineno);
        for (ssize_t i = 0; i < len; i++)
            if (!is_word_byte((unsigned char)line[i]) || (line[i] >= 'A' && line[i] <= 'Z'))
                cli_die("%s: %s: line %lu: '%.40s' is not a token (lowercase letters, "
                        "digits and non-ASCII bytes)", sub, path, lineno, line);
        wentry *e = wtab_get(t, line, (size_t)len, 1);
        if (e->col >= 0)
            cli_die("%s: %s: line %lu: '%.40s' repeats line %ld", sub, path, lineno,
                    line, e->col + 1);
        e->col = (long)v->k;
        if (v->k == vcap) {
            vcap = vcap ? 2 * vcap : 256;
            char **nw = realloc(v->w, vcap * sizeof *nw);
            if (!nw)
                cli_die("out of memory");
            v->w = nw;
        }
        v->w[v->k++] = e->w;
    }
    if (ferror(f))
        cli_die("%s: %s: read error:", sub, path);
    fclose(f);
    free(line);
    if (v->k == 0)
        cli_die("%s: %s: empty vocabulary", sub, path);
    /* v->w points into the table; give v its own copies */
    for (size_t i = 0; i < v->k; i++) {
        char *c = tensor_xmalloc(strlen(v->w[i]) + 1);
        strcpy(c, v->w[i]);
        v->w[i] = c;
    }
    if (t == &own)
        wtab_free(&own);
}

/* ---- bow -------------------------------------------------------------------- */

static const char bow_usage[] =
    "Usage: tensor bow [OPTION]... [FILE]\n"
    "Turn text, one document a line, into word-count rows f32 [K] on stdout\n"
    "(K = vocabulary size; an empty line is a row of zeros).  Tokens are runs of\n"
    "ASCII letters and digits and non-ASCII bytes, ASCII lowercased.\n"
    "\n"
    "      --vocab FILE         count the words of FILE (one a line, in column order)\n"
    "                           (default: build the vocabulary from the input)\n"
    "      --save-vocab FILE    write the vocabulary to FILE (default: none)\n"
    "      --max-words N        building: keep the N most frequent words, ties in\n"
    "                           byte order (default 2000)\n"
    "      --min-count N        building: drop words seen fewer than N times\n"
    "                           (default 1)\n"
    "  -f, --force              write binary data to a terminal\n"
    "  -q, --quiet              no progress\n"
    CLI_STREAM_HELP
    "  -h, --help               show this help\n"
    "      --version            print the version\n";

enum { OPT_VOCAB = 1000, OPT_SAVE, OPT_MAXW, OPT_MINC };

static void count_token(const char *s, size_t n, void *arg)
{
    wtab_get(arg, s, n, 1)->count++;
}

typedef struct {
    wtab *t;
    float *row;        /* (K) */
} row_ctx;

static void row_token(const char *s, size_t n, void *arg)
{
    row_ctx *c = arg;
    wentry *e = wtab_get(c->t, s, n, 0);
    if (e && e->col >= 0)
        c->row[e->col] += 1;
}

static int by_count(const void *a, const void *b)
{
    const wentry *x = *(wentry *const *)a, *y = *(wentry *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->w, y->w);
}

int tensor_bow(int argc, char **argv)
{
    static const struct option lo[] = {
        {"vocab", required_argument, NULL, OPT_VOCAB},
        {"save-vocab", required_argument, NULL, OPT_SAVE},
        {"max-words", required_argument, NULL, OPT_MAXW},
        {"min-count", required_argument, NULL, OPT_MINC},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        CLI_STREAM_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    const char *vpath = NULL, *spath = NULL;
    long max_words = 2000, min_count = 1;
    int force = 0, c;
    while ((c = getopt_long(argc, argv, ":fqh", lo, NULL)) != -1) {
        switch (c) {
        case OPT_VOCAB: vpath = optarg; break;
        case OPT_SAVE: spath = optarg; break;
        case OPT_MAXW: max_words = cli_long(optarg, 1, TZ_RECORD_MAX / 4, "--max-words"); break;
        case OPT_MINC: min_count = cli_long(optarg, 1, LONG_MAX, "--min-count"); break;
        case 'f': force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'h': fputs(bow_usage, stdout); cli_close_stdout(); return 0;
        case 'V': cli_version();
        default:
            if (!cli_stream_option(c, optarg))
                tensor_option_error(c, argv);
        }
    }
    const char *path = tensor_one_operand(argc, argv);
    cli_check_stdout(force);
    FILE *in = cli_open_in(path);

    wtab t;
    wtab_init(&t);
    vocab v = {NULL, 0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    FILE *src = in;            /* where the second pass reads */
    if (vpath) {
        vocab_read(&v, &t, vpath, "bow");
    } else {
        /* First pass: count.  A regular file is re-read from where it
         * started; anything else is copied to a temporary file. */
        struct stat st;
        off_t start = -1;
        if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
            start = ftello(in);
        if (start < 0) {
            src = tmpfile();
            if (!src)
                cli_die("bow: cannot create a temporary file:");
        }
        while ((len = getline(&line, &cap, in)) >= 0) {
            if (src != in && fwrite(line, 1, (size_t)len, src) != (size_t)len)
                cli_die("bow: temporary file: write error:");
            tokens(line, (size_t)len, count_token, &t);
        }
        if (ferror(in))
            cli_die("bow: read error:");
        if (src != in) {
            if (fflush(src) != 0)
                cli_die("bow: temporary file: write error:");
            rewind(src);
        } else if (fseeko(in, start, SEEK_SET) != 0) {
            cli_die("bow: cannot rewind the input:");
        }
        clearerr(src);
        /* Columns: count >= min_count, most frequent first, ties by bytes. */
        wentry **cand = tensor_xmalloc(t.n * sizeof *cand);
        size_t nc = 0;
        for (size_t i = 0; i < t.cap; i++)
            if (t.e[i].w && t.e[i].count >= (uint64_t)min_count)
                cand[nc++] = &t.e[i];
        qsort(cand, nc, sizeof *cand, by_count);
        v.k = nc < (size_t)max_words ? nc : (size_t)max_words;
        if (v.k == 0)
            cli_die("bow: empty vocabulary: no word occurs %ld time%s or more",
                    min_count, min_count == 1 ? "" : "s");
        v.w = tensor_xmalloc(v.k * sizeof *v.w);
        for (size_t i = 0; i < v.k; i++) {
            cand[i]->col = (long)i;
            v.w[i] = tensor_xmalloc(cand[i]->len + 1);
            memcpy(v.w[i], cand[i]->w, cand[i]->len + 1);
        }
        free(cand);
    }
    if (spath) {
        char *tmp;
        FILE *f = tz_atomic_open(spath, &tmp);
        if (!f)
            cli_die("bow: %s:", spath);
        for (size_t i = 0; i < v.k; i++)
            fprintf(f, "%s\n", v.w[i]);
        if (ferror(f)) {
            tz_atomic_abort(f, tmp);
            cli_die("bow: %s: write error", spath);
        }
        if (tz_atomic_commit(f, tmp, spath) != 0)
            cli_die("bow: %s:", spath);
    }

    /* Second pass: one row (K) a line. */
    tz_header h;
    tz_header_init(&h);
    uint64_t K = v.k;
    if (tz_header_set_shape(&h, TZ_F32, 1, &K) != 0)
        cli_die("bow: vocabulary of %zu words is too large", v.k);
    tz_attr_set_i(&h, "text.vocab_size", (int64_t)v.k);
    size_t vbytes = 0;
    for (size_t i = 0; i < v.k; i++)
        vbytes += strlen(v.w[i]) + 1;
    if (vbytes <= VOCAB_ATTR_MAX) {
        char *all = tensor_xmalloc(vbytes + 1), *p = all;
        for (size_t i = 0; i < v.k; i++)
            p += sprintf(p, "%s\n", v.w[i]);
        *p = 0;
        tz_attr_set_s(&h, "text.vocab", all);
        free(all);
    }
    tz_writer *w = cli_writer_stdout(force);
    int e = tz_writer_begin(w, &h);
    if (e)
        cli_die_writer("bow", w, e);
    tz_header_clear(&h);
    size_t nb = (1u << 20) / (v.k * sizeof(float)), have = 0;
    nb = nb ? nb : 1;
    float *rows = tensor_xmalloc(nb * v.k * sizeof *rows);
    row_ctx rc = {&t, rows};
    memset(rows, 0, v.k * sizeof *rows);
    while ((len = getline(&line, &cap, src)) >= 0) {
        tokens(line, (size_t)len, row_token, &rc);
        if (++have == nb) {
            if ((e = tz_write(w, rows, have)) != 0)
                cli_die_writer("bow", w, e);
            have = 0;
        }
        rc.row = rows + have * v.k;
        memset(rc.row, 0, v.k * sizeof *rows);
    }
    if (ferror(src))
        cli_die(src == in ? "bow: read error:" : "bow: temporary file: read error:");
    if (have && (e = tz_write(w, rows, have)) != 0)
        cli_die_writer("bow", w, e);
    if (src != in)
        fclose(src);
    cli_close_in(in);
    free(rows);
    free(line);
    vocab_free(&v);
    wtab_free(&t);
    tensor_finish_writer(w);
    return 0;
}

/* ---- words ------------------------------------------------------------------ */

static const char words_usage[] =
    "Usage: tensor words --vocab FILE [OPTION]... [FILE]\n"
    "Print the N heaviest words of each row [K] of the stream, one line a row,\n"
    "space-separated, heaviest first, ties in column order; words of weight\n"
    "zero or less are left out.\n"
    "\n"
    "      --vocab FILE         vocabulary, one word a line in column order (default:\n"
    "                           the input's text.vocab attribute, which bow writes)\n"
    "  -n, --count N            words per row (default 10)\n"
    "  -h, --help               show this help\n"
    "      --version            print the version\n";

/* Split the text.vocab attribute (words each ended by '\n') into v. */
static void vocab_from_attr(vocab *v, const char *s)
{
    size_t k = 0;
    for (const char *p = s; *p; p++)
        k += *p == '\n';
    v->w = tensor_xmalloc(k * sizeof *v->w);
    v->k = 0;
    for (const char *p = s; *p;) {
        const char *e = strchr(p, '\n');
        if (!e)
            break;
        v->w[v->k] = tensor_xmalloc((size_t)(e - p) + 1);
        memcpy(v->w[v->k], p, (size_t)(e - p));
        v->w[v->k++][e - p] = 0;
        p = e + 1;
    }
}

int tensor_words(int argc, char **argv)
{
    static const struct option lo[] = {
        {"vocab", required_argument, NULL, OPT_VOCAB},
        {"count", required_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    const char *vpath = NULL;
    long top = 10;
    int c;
    while ((c = getopt_long(argc, argv, ":n:qh", lo, NULL)) != -1) {
        switch (c) {
        case OPT_VOCAB: vpath = optarg; break;
        case 'n': top = cli_long(optarg, 1, 1000000, "-n"); break;
        case 'q': cli_quiet = 1; break;
        case 'h': fputs(words_usage, stdout); cli_close_stdout(); return 0;
        case 'V': cli_version();
        default: tensor_option_error(c, argv);
        }
    }
    const char *path = tensor_one_operand(argc, argv);
    FILE *in = cli_open_in(path);
    tz_reader *r = cli_reader(in, path);
    const tz_header *h = tz_reader_header(r);
    vocab v;
    if (vpath) {
        vocab_read(&v, NULL, vpath, "words");
    } else {
        const char *s = tz_attr_get_s(h, "text.vocab", NULL);
        if (!s)
            cli_usage_error("words: no --vocab FILE, and the input has no text.vocab attribute");
        vocab_from_attr(&v, s);
    }
    size_t K = (size_t)tz_record_elems(h);
    if (K != v.k)
        cli_die("words: rows have %zu values but the vocabulary has %zu words", K, v.k);
    size_t n = (size_t)top < K ? (size_t)top : K;
    size_t nb = (1u << 20) / (K * sizeof(double));
    nb = nb ? nb : 1;
    double *x = tensor_xmalloc(nb * K * sizeof *x);
    size_t *best = tensor_xmalloc(n * sizeof *best);
    long k;
    while ((k = tz_read_f64(r, x, nb)) > 0) {
        for (long i = 0; i < k; i++) {
            const double *row = x + (size_t)i * K;
            /* best[0..m): columns by decreasing weight, earlier column first
             * on ties (insert after equals). */
            size_t m = 0;
            for (size_t j = 0; j < K; j++) {
                double y = row[j];
                if (!(y > 0) || (m == n && !(y > row[best[m - 1]])))
                    continue;
                size_t p = m < n ? m : n - 1;
                while (p > 0 && y > row[best[p - 1]]) {
                    best[p] = best[p - 1];
                    p--;
                }
                best[p] = j;
                if (m < n)
                    m++;
            }
            for (size_t q = 0; q < m; q++) {
                if (q)
                    putchar(' ');
                fputs(v.w[best[q]], stdout);
            }
            putchar('\n');
        }
        if (ferror(stdout))
            break;
    }
    if (k < 0)
        cli_die_reader("words", r, (int)k);
    free(x);
    free(best);
    vocab_free(&v);
    tz_reader_free(r);
    cli_close_in(in);
    cli_close_stdout();
    return 0;
}
