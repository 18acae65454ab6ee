/* tensor_io.c - `tensor import`, `tensor export` and `tensor tile`: the
 * doors between .tz streams and the formats data arrive in or leave as.
 *
 *   import idx|csv|tsv|npy|pgm   foreign file -> stream (stdout)
 *   export csv|tsv|npy|pgm|png   stream (or one tensor of a model) -> file
 *   tile                         records (or columns) -> one PNG grid
 *
 * IDX, CSV/TSV and .npy are converted record by record in bounded memory
 * (a batch of about 1 MiB); only a Fortran-ordered .npy and `tile
 * --transpose` hold the whole array.  Part of the `tensor` tool; main() and
 * the dispatcher are in tensor.c, the interface in tensor.h.
 */
#include "tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "tz.h"

#define BATCH_BYTES (1u << 20)     /* target bytes of one conversion batch */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG 1
#else
#define HOST_BIG 0
#endif

/* ---- small helpers --------------------------------------------------------- */


/* Records per batch for records of rb bytes: about BATCH_BYTES, at least 1. */
static size_t batch_records(uint64_t rb)
{
    uint64_t n = rb ? BATCH_BYTES / rb : BATCH_BYTES;
    return n ? (size_t)n : 1;
}

/* Reverse the byte order of n elements of size es in place. */
static void swap_bytes(void *buf, size_t n, size_t es)
{
    unsigned char *p = buf;
    if (es < 2)
        return;
    for (size_t i = 0; i < n; i++, p += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* Options every stream-writing subcommand shares (tensor.h). */
enum { OPT_DTYPE = 1000, OPT_HEADER, OPT_NAME,
       OPT_SHAPE, OPT_SCALE, OPT_TRANSPOSE, OPT_MAX };

/* "HxW" -> h, w (each >= 1). */
static void parse_shape(const char *s, uint64_t *h, uint64_t *w)
{
    char *end;
    errno = 0;
    unsigned long long a = strtoull(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X') || errno || a == 0 || *s == '-')
        cli_usage_error("invalid --shape '%s': expected HxW, e.g. 28x28", s);
    const char *t = end + 1;
    unsigned long long b = strtoull(t, &end, 10);
    if (end == t || *end || errno || b == 0 || *t == '-' || a > (1u << 24) || b > (1u << 24))
        cli_usage_error("invalid --shape '%s': expected HxW, e.g. 28x28", s);
    *h = a;
    *w = b;
}

enum { SCALE_AUTO, SCALE_UNIT, SCALE_MINMAX };

static int parse_scale(const char *s)
{
    if (strcmp(s, "unit") == 0)
        return SCALE_UNIT;
    if (strcmp(s, "minmax") == 0)
        return SCALE_MINMAX;
    cli_usage_error("invalid --scale '%s': expected unit or minmax", s);
}

/* ---- import ---------------------------------------------------------------- */

static const char import_usage[] =
    "Usage: tensor import FORMAT [OPTION]... [FILE]\n"
    "Convert FILE (default stdin) to a tensor stream on stdout.\n"
    "FORMAT is one of:\n"
    "  idx   IDX (MNIST): records of shape dims[1..], element type kept\n"
    "  csv   comma-separated numbers, one record (rank 1) a line\n"
    "  tsv   tab-separated numbers, one record (rank 1) a line\n"
    "  npy   NumPy .npy v1-v3; the first axis indexes records\n"
    "  pgm   PGM images P5/P2 (several may be concatenated), records [H W]\n"
    "\n"
    "      --dtype T            output element type: u8 i8 u16 i16 i32 i64 f32 f64\n"
    "                           (default: f32 for csv/tsv, the file's type otherwise)\n"
    "      --header             csv/tsv: skip the first line (default: no)\n"
    "  -f, --force              write binary data to a terminal\n"
    "  -q, --quiet              no progress (default: quiet unless stderr is a tty)\n"
    CLI_STREAM_HELP
    "  -h, --help               show this help\n"
    "      --version            print the version\n";

/* The state of one import: where the records go. */
typedef struct {
    const char *fmt;          /* "idx", "csv", ... for messages */
    int out_dtype;            /* requested --dtype, or 0 */
    int force;
    tz_writer *w;
} importer;

/* Start the output section: records of `dtype` and shape (rank, dims),
 * stored as imp->out_dtype if set.  Dies on a bad shape. */
static void import_begin(importer *imp, int dtype, int rank, const uint64_t *dims)
{
    tz_header h;
    tz_header_init(&h);
    int e = tz_header_set_shape(&h, imp->out_dtype ? imp->out_dtype : dtype, rank, dims);
    if (e == 0 && tz_record_bytes(&h) > TZ_RECORD_MAX)
        e = TZ_E_LIMIT;
    if (e) {
        char d[200] = "";
        size_t k = 0;
        for (int i = 0; i < rank && k < sizeof d - 24; i++)
            k += (size_t)snprintf(d + k, sizeof d - k, "%s%" PRIu64, i ? " " : "", dims[i]);
        cli_die("import: %s: record shape [%s] not supported: %s", imp->fmt, d,
                rank > TZ_RANK_MAX ? "rank above 4" : tz_strerror(e));
    }
    imp->w = cli_writer_stdout(imp->force);
    e = tz_writer_begin(imp->w, &h);
    tz_header_clear(&h);
    if (e)
        cli_die_writer("import", imp->w, e);
}

static void import_write(importer *imp, int src_dtype, const void *recs, size_t n)
{
    int e = tz_write_as(imp->w, src_dtype, recs, n);
    if (e)
        cli_die_writer("import", imp->w, e);
}

/* IDX: 0 0 TYPE NDIM, NDIM big-endian u32 dims, then the big-endian data. */
static int import_idx(importer *imp, FILE *in)
{
    unsigned char m[4];
    size_t got = fread(m, 1, 4, in);
    if (got == 0 && !ferror(in))
        cli_die("import: idx: empty input");
    if (got < 4)
        cli_die("import: idx: truncated header");
    if (m[0] || m[1])
        cli_die("import: idx: bad magic %02x%02x%02x%02x (not an IDX file)",
                m[0], m[1], m[2], m[3]);
    int dt;
    switch (m[2]) {
    case 0x08: dt = TZ_U8; break;
    case 0x09: dt = TZ_I8; break;
    case 0x0B: dt = TZ_I16; break;
    case 0x0C: dt = TZ_I32; break;
    case 0x0D: dt = TZ_F32; break;
    case 0x0E: dt = TZ_F64; break;
    default: cli_die("import: idx: unknown element type 0x%02x", m[2]);
    }
    int nd = m[3];
    if (nd < 1 || nd > TZ_RANK_MAX + 1)
        cli_die("import: idx: %d dimensions (1 to %d supported)", nd, TZ_RANK_MAX + 1);
    uint64_t dims[TZ_RANK_MAX + 1];
    for (int i = 0; i < nd; i++) {
        unsigned char b[4];
        if (fread(b, 1, 4, in) != 4)
            cli_die("import: idx: truncated header");
        dims[i] = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
        if (i > 0 && dims[i] == 0)
            cli_die("import: idx: dimension %d is 0", i);
    }
    import_begin(imp, dt, nd - 1, dims + 1);
    size_t es = tz_dtype_size(dt);
    uint64_t elems = 1;
    for (int i = 1; i < nd; i++)
        elems *= dims[i];
    size_t rb = (size_t)(elems * es), nb = batch_records(rb);
    unsigned char *buf = tensor_xmalloc(nb * rb);
    for (uint64_t done = 0; done < dims[0];) {
        size_t k = dims[0] - done < nb ? (size_t)(dims[0] - done) : nb;
        size_t r = fread(buf, rb, k, in);
        if (r < k) {
            if (ferror(in))
                cli_die("import: idx: read error:");
            cli_die("import: idx: truncated data: ends in record %" PRIu64 " of %" PRIu64,
                    done + r + 1, dims[0]);
        }
        if (!HOST_BIG)
            swap_bytes(buf, k * (size_t)elems, es);
        import_write(imp, dt, buf, k);
        done += k;
    }
    free(buf);
    if (fgetc(in) != EOF)
        cli_die("import: idx: trailing data after %" PRIu64 " records", dims[0]);
    if (ferror(in))
        cli_die("import: idx: read error:");
    tensor_finish_writer(imp->w);
    return 0;
}

/* Parse one CSV field at s as `dtype` into dst; *end gets the first byte
 * after it.  Returns NULL or a message. */
static const char *parse_field(const char *s, char **end, int dtype, void *dst)
{
    errno = 0;
    if (dtype == TZ_F32 || dtype == TZ_F64) {
        if (dtype == TZ_F32) {
            float v = strtof(s, end);
            if (*end == s)
                return "not a number";
            if (errno == ERANGE && isinf(v))
                return "out of range";
            *(float *)dst = v;
        } else {
            double v = strtod(s, end);
            if (*end == s)
                return "not a number";
            if (errno == ERANGE && isinf(v))
                return "out of range";
            *(double *)dst = v;
        }
        return NULL;
    }
    long long v = strtoll(s, end, 10);
    if (*end == s)
        return "not an integer";
    if (**end == '.' || **end == 'e' || **end == 'E')
        return "not an integer";
    long long lo, hi;
    switch (dtype) {
    case TZ_U8: lo = 0; hi = 255; break;
    case TZ_I8: lo = -128; hi = 127; break;
    case TZ_U16: lo = 0; hi = 65535; break;
    case TZ_I16: lo = -32768; hi = 32767; break;
    case TZ_I32: lo = INT32_MIN; hi = INT32_MAX; break;
    default: lo = LLONG_MIN; hi = LLONG_MAX; break;
    }
    if (errno == ERANGE || v < lo || v > hi)
        return "out of range";
    switch (dtype) {
    case TZ_U8: *(uint8_t *)dst = (uint8_t)v; break;
    case TZ_I8: *(int8_t *)dst = (int8_t)v; break;
    case TZ_U16: *(uint16_t *)dst = (uint16_t)v; break;
    case TZ_I16: *(int16_t *)dst = (int16_t)v; break;
    case TZ_I32: *(int32_t *)dst = (int32_t)v; break;
    default: *(int64_t *)dst = (int64_t)v; break;
    }
    return NULL;
}

/* Split a line at delim, parsing each field into rec (NULL: count only).
 * Returns the number of fields; dies with the line number on junk. */
static size_t parse_line(importer *imp, char *line, char delim, int dtype,
                         unsigned char *rec, size_t max, unsigned long lineno)
{
    size_t es = tz_dtype_size(dtype), n = 0;
    unsigned char scratch[8];
    char *p = line;
    for (;;) {
        char *end;
        const char *msg = parse_field(p, &end, dtype, rec && n < max ? rec + n * es : scratch);
        while (*end == ' ' || (*end == '\t' && delim != '\t'))
            end++;
        if (!msg && *end != delim && *end != '\0')
            msg = dtype == TZ_F32 || dtype == TZ_F64 ? "not a number" : "not an integer";
        if (msg) {
            char *q = p;
            while (*q == ' ' || *q == '\t')
                q++;
            size_t len = strcspn(q, delim == ',' ? "," : "\t");
            while (len && (q[len - 1] == ' ' || q[len - 1] == '\t'))
                len--;
            if (len == 0)
                cli_die("import: %s: line %lu, column %zu: empty field", imp->fmt,
                        lineno, n + 1);
            int range = strcmp(msg, "out of range") == 0;
            cli_die("import: %s: line %lu, column %zu: '%.*s' is %s%s%s", imp->fmt, lineno,
                    n + 1, len > 40 ? 40 : (int)len, q, msg,
                    range ? " for " : "", range ? tz_dtype_name(dtype) : "");
        }
        n++;
        if (*end == '\0')
            return n;
        p = end + 1;
    }
}

static int import_text(importer *imp, FILE *in, char delim, int header)
{
    int dt = imp->out_dtype ? imp->out_dtype : TZ_F32;
    char *line = NULL;
    size_t cap = 0, width = 0, nb = 0, have = 0, es = tz_dtype_size(dt);
    unsigned char *buf = NULL;
    unsigned long lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if ((size_t)len != strlen(line))
            cli_die("import: %s: line %lu: NUL byte", imp->fmt, lineno);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (header && lineno == 1)
            continue;
        if (len == 0)
            cli_die("import: %s: line %lu: empty line", imp->fmt, lineno);
        if (!width) {
            width = parse_line(imp, line, delim, dt, NULL, 0, lineno);
            uint64_t d = width;
            imp->out_dtype = dt;
            import_begin(imp, dt, 1, &d);
            nb = batch_records(width * es);
            buf = tensor_xmalloc(nb * width * es);
        }
        size_t n = parse_line(imp, line, delim, dt, buf + have * width * es, width, lineno);
        if (n != width)
            cli_die("import: %s: line %lu: %zu columns, expected %zu", imp->fmt,
                    lineno, n, width);
        if (++have == nb) {
            import_write(imp, dt, buf, have);
            have = 0;
        }
    }
    if (ferror(in))
        cli_die("import: %s: read error:", imp->fmt);
    free(line);
    if (!width)
        cli_die("import: %s: no data", imp->fmt);
    if (have)
        import_write(imp, dt, buf, have);
    free(buf);
    tensor_finish_writer(imp->w);
    return 0;
}

/* ---- .npy ---- */

typedef struct {
    const char *s, *p;        /* the header dict and the parse position */
} npy_lex;

static void npy_ws(npy_lex *x)
{
    while (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r')
        x->p++;
}

static noreturn void npy_bad(const char *what)
{
    cli_die("import: npy: bad header: %s", what);
}

static void npy_expect(npy_lex *x, char c, const char *what)
{
    npy_ws(x);
    if (*x->p != c)
        npy_bad(what);
    x->p++;
}

/* A quoted Python string literal (no escapes) into out. */
static void npy_string(npy_lex *x, char *out, size_t size)
{
    npy_ws(x);
    char q = *x->p;
    if (q != '\'' && q != '"')
        npy_bad("expected a quoted string");
    const char *e = strchr(x->p + 1, q);
    if (!e)
        npy_bad("unterminated string");
    size_t n = (size_t)(e - x->p - 1);
    if (n >= size)
        npy_bad("string too long");
    memcpy(out, x->p + 1, n);
    out[n] = 0;
    x->p = e + 1;
}

/* descr -> tz dtype, *swap when the byte order is not the host's. */
static int npy_descr(const char *d, int *swap)
{
    static const struct { const char *code; int dt; } tab[] = {
        {"u1", TZ_U8}, {"i1", TZ_I8}, {"b1", TZ_U8}, {"u2", TZ_U16},
        {"i2", TZ_I16}, {"i4", TZ_I32}, {"i8", TZ_I64}, {"f4", TZ_F32},
        {"f8", TZ_F64}};
    char o = d[0];
    if (o != '<' && o != '>' && o != '|' && o != '=')
        return -1;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(d + 1, tab[i].code) == 0) {
            if (o == '|' && tab[i].code[1] != '1')
                return -1;
            *swap = (o == '<' && HOST_BIG) || (o == '>' && !HOST_BIG);
            return tab[i].dt;
        }
    return -1;
}

static int import_npy(importer *imp, FILE *in)
{
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, in);
    if (got == 0 && !ferror(in))
        cli_die("import: npy: empty input");
    if (got < 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        cli_die("import: npy: not a .npy file (bad magic)");
    int major = pre[6];
    size_t hlen;
    if (major == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, in) != 2)
            cli_die("import: npy: truncated header");
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        if (hlen > TZ_HEADER_MAX)
            cli_die("import: npy: header of %zu bytes is too long", hlen);
    } else {
        cli_die("import: npy: unsupported format version %d.%d", pre[6], pre[7]);
    }
    char *hd = tensor_xmalloc(hlen + 1);
    if (fread(hd, 1, hlen, in) != hlen)
        cli_die("import: npy: truncated header");
    hd[hlen] = 0;
    if (strlen(hd) != hlen)
        npy_bad("NUL byte");

    npy_lex x = {hd, hd};
    char descr[32] = "", key[32];
    int fortran = -1, nd = -1, dt = 0, swap = 0;
    uint64_t shape[TZ_RANK_MAX + 1];
    npy_expect(&x, '{', "expected '{'");
    for (;;) {
        npy_ws(&x);
        if (*x.p == '}')
            break;
        npy_string(&x, key, sizeof key);
        npy_expect(&x, ':', "expected ':'");
        npy_ws(&x);
        if (strcmp(key, "descr") == 0) {
            if (*x.p == '[')
                cli_die("import: npy: structured dtypes are not supported");
            npy_string(&x, descr, sizeof descr);
            dt = npy_descr(descr, &swap);
            if (dt < 0)
                cli_die("import: npy: unsupported dtype '%s'", descr);
        } else if (strcmp(key, "fortran_order") == 0) {
            if (strncmp(x.p, "True", 4) == 0)
                fortran = 1, x.p += 4;
            else if (strncmp(x.p, "False", 5) == 0)
                fortran = 0, x.p += 5;
            else
                npy_bad("fortran_order is not True or False");
        } else if (strcmp(key, "shape") == 0) {
            npy_expect(&x, '(', "shape is not a tuple");
            nd = 0;
            for (;;) {
                npy_ws(&x);
                if (*x.p == ')')
                    break;
                if (*x.p < '0' || *x.p > '9')
                    npy_bad("shape holds a non-integer");
                char *e;
                errno = 0;
                unsigned long long v = strtoull(x.p, &e, 10);
                if (errno || v > (1ull << 48))
                    npy_bad("shape dimension too large");
                x.p = e;
                if (nd == TZ_RANK_MAX + 1)
                    cli_die("import: npy: more than %d dimensions", TZ_RANK_MAX + 1);
                shape[nd++] = v;
                npy_ws(&x);
                if (*x.p == ',')
                    x.p++;
                else if (*x.p != ')')
                    npy_bad("expected ',' or ')' in shape");
            }
            x.p++;
        } else {
            cli_die("import: npy: bad header: unknown key '%s'", key);
        }
        npy_ws(&x);
        if (*x.p == ',')
            x.p++;
        else if (*x.p != '}')
            npy_bad("expected ',' or '}'");
    }
    x.p++;
    npy_ws(&x);
    if (*x.p)
        npy_bad("junk after the dictionary");
    if (!descr[0] || fortran < 0 || nd < 0)
        npy_bad("missing descr, fortran_order or shape");
    free(hd);

    /* shape () is one scalar record */
    uint64_t count = nd ? shape[0] : 1;
    int rank = nd ? nd - 1 : 0;
    for (int i = 1; i < nd; i++)
        if (shape[i] == 0)
            cli_die("import: npy: dimension %d is 0", i);
    import_begin(imp, dt, rank, shape + 1);
    size_t es = tz_dtype_size(dt);
    uint64_t elems = 1;
    for (int i = 1; i < nd; i++)
        elems *= shape[i];
    size_t rb = (size_t)(elems * es);

    if (fortran && rank > 0) {
        /* Column-major: the whole array, element (i0..ik) at offset
         * i0 + s0*(i1 + s1*(...)); reorder to row-major. */
        if (count > SIZE_MAX / 2 / rb)
            cli_die("import: npy: array too large");
        size_t total = (size_t)(count * elems);
        unsigned char *f = tensor_xmalloc(total * es), *c = tensor_xmalloc(total * es);
        size_t r = fread(f, es, total, in);
        if (r < total) {
            if (ferror(in))
                cli_die("import: npy: read error:");
            cli_die("import: npy: truncated data: %zu of %zu elements", r, total);
        }
        size_t idx[TZ_RANK_MAX + 1] = {0}, fstride[TZ_RANK_MAX + 1];
        for (int k = 0; k < nd; k++)
            fstride[k] = k ? fstride[k - 1] * (size_t)shape[k - 1] : 1;
        for (size_t i = 0; i < total; i++) {
            size_t off = 0;
            for (int k = 0; k < nd; k++)
                off += idx[k] * fstride[k];
            memcpy(c + i * es, f + off * es, es);
            for (int k = nd - 1; k >= 0; k--) {
                if (++idx[k] < shape[k])
                    break;
                idx[k] = 0;
            }
        }
        free(f);
        if (swap)
            swap_bytes(c, total, es);
        if (count)
            import_write(imp, dt, c, (size_t)count);
        free(c);
    } else {
        size_t nb = batch_records(rb);
        unsigned char *buf = tensor_xmalloc(nb * rb);
        for (uint64_t done = 0; done < count;) {
            size_t k = count - done < nb ? (size_t)(count - done) : nb;
            size_t r = fread(buf, rb, k, in);
            if (r < k) {
                if (ferror(in))
                    cli_die("import: npy: read error:");
                cli_die("import: npy: truncated data: ends in record %" PRIu64 " of %" PRIu64,
                        done + r + 1, count);
            }
            if (swap)
                swap_bytes(buf, k * (size_t)elems, es);
            if (strcmp(descr + 1, "b1") == 0)
                for (size_t i = 0; i < k * rb; i++)
                    if (buf[i] > 1)
                        cli_die("import: npy: bool element is neither 0 nor 1");
            import_write(imp, dt, buf, k);
            done += k;
        }
        free(buf);
    }
    if (fgetc(in) != EOF)
        cli_die("import: npy: trailing data after %" PRIu64 " records", count);
    tensor_finish_writer(imp->w);
    return 0;
}

/* ---- PGM ---- */

/* Skip whitespace and # comments. */
static int pgm_skip(FILE *in)
{
    int c;
    for (;;) {
        c = getc(in);
        if (c == '#') {
            while ((c = getc(in)) != EOF && c != '\n')
                ;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
            continue;
        return c;
    }
}

/* An unsigned decimal header field or sample; dies naming `what`. */
static unsigned long pgm_uint(FILE *in, int image, const char *what)
{
    int c = pgm_skip(in);
    if (c < '0' || c > '9')
        cli_die("import: pgm: image %d: %s %s", image, c == EOF ? "ends before" : "bad", what);
    unsigned long v = 0;
    while (c >= '0' && c <= '9') {
        v = v * 10 + (unsigned long)(c - '0');
        if (v > 1ul << 30)
            cli_die("import: pgm: image %d: %s too large", image, what);
        c = getc(in);
    }
    if (c != EOF)
        ungetc(c, in);
    return v;
}

static int import_pgm(importer *imp, FILE *in)
{
    unsigned long W = 0, H = 0, first_max = 0;
    int image = 0, dt = TZ_U8;
    unsigned char *raw = NULL;
    uint16_t *img = NULL;
    for (;;) {
        int c = pgm_skip(in);
        if (c == EOF)
            break;
        image++;
        int c2 = getc(in);
        if (c != 'P' || (c2 != '5' && c2 != '2'))
            cli_die("import: pgm: image %d: not a PGM image (expected P5 or P2)", image);
        int plain = c2 == '2';
        unsigned long w = pgm_uint(in, image, "width");
        unsigned long h = pgm_uint(in, image, "height");
        unsigned long maxval = pgm_uint(in, image, "maxval");
        if (w == 0 || h == 0)
            cli_die("import: pgm: image %d: empty image (%lux%lu)", image, w, h);
        if (maxval == 0 || maxval > 65535)
            cli_die("import: pgm: image %d: maxval %lu outside 1..65535", image, maxval);
        if (image == 1) {
            W = w;
            H = h;
            first_max = maxval;
            dt = maxval > 255 ? TZ_U16 : TZ_U8;
            uint64_t dims[2] = {h, w};
            import_begin(imp, dt, 2, dims);
            raw = tensor_xmalloc(w * h * 2);
            img = tensor_xmalloc(w * h * sizeof *img);
        } else if (w != W || h != H || (maxval > 255) != (first_max > 255)) {
            cli_die("import: pgm: image %d is %lux%lu with maxval %lu, unlike image 1 "
                    "(%lux%lu, maxval %lu)", image, w, h, maxval, W, H, first_max);
        }
        size_t n = w * h;
        if (plain) {
            for (size_t i = 0; i < n; i++) {
                unsigned long v = pgm_uint(in, image, "sample");
                if (v > maxval)
                    cli_die("import: pgm: image %d: sample %lu exceeds maxval %lu",
                            image, v, maxval);
                img[i] = (uint16_t)v;
            }
        } else {
            c = getc(in);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
                cli_die("import: pgm: image %d: no whitespace after maxval", image);
            size_t bps = maxval > 255 ? 2 : 1;
            size_t r = fread(raw, bps, n, in);
            if (r < n)
                cli_die("import: pgm: image %d: truncated raster (%zu of %zu samples)",
                        image, r, n);
            for (size_t i = 0; i < n; i++) {
                unsigned v = bps == 2 ? (unsigned)raw[2 * i] << 8 | raw[2 * i + 1] : raw[i];
                if (v > maxval)
                    cli_die("import: pgm: image %d: sample %u exceeds maxval %lu",
                            image, v, maxval);
                img[i] = (uint16_t)v;
            }
        }
        if (dt == TZ_U8) {
            for (size_t i = 0; i < n; i++)
                raw[i] = (unsigned char)img[i];
            import_write(imp, TZ_U8, raw, 1);
        } else {
            import_write(imp, TZ_U16, img, 1);
        }
    }
    if (ferror(in))
        cli_die("import: pgm: read error:");
    if (!image)
        cli_die("import: pgm: empty input");
    free(raw);
    free(img);
    tensor_finish_writer(imp->w);
    return 0;
}

int tensor_import(int argc, char **argv)
{
    static const struct option lo[] = {
        {"dtype", required_argument, NULL, OPT_DTYPE},
        {"header", no_argument, NULL, OPT_HEADER},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        CLI_STREAM_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    importer imp = {0};
    int header = 0, c;
    while ((c = getopt_long(argc, argv, ":fqh", lo, NULL)) != -1) {
        switch (c) {
        case OPT_DTYPE:
            imp.out_dtype = tz_dtype_parse(optarg);
            if (imp.out_dtype < 0)
                cli_usage_error("import: unknown --dtype '%s' (u8 i8 u16 i16 i32 i64 f32 f64)",
                                optarg);
            break;
        case OPT_HEADER: header = 1; break;
        case 'f': imp.force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'h': fputs(import_usage, stdout); cli_close_stdout(); return 0;
        case 'V': cli_version();
        default:
            if (!cli_stream_option(c, optarg))
                tensor_option_error(c, argv);
        }
    }
    if (optind >= argc)
        cli_usage_error("import: missing FORMAT (idx, csv, tsv, npy or pgm)");
    const char *fmt = argv[optind++];
    const char *path = tensor_one_operand(argc, argv);
    int kind;
    if (strcmp(fmt, "idx") == 0) kind = 0;
    else if (strcmp(fmt, "csv") == 0) kind = 1;
    else if (strcmp(fmt, "tsv") == 0) kind = 2;
    else if (strcmp(fmt, "npy") == 0) kind = 3;
    else if (strcmp(fmt, "pgm") == 0) kind = 4;
    else cli_usage_error("import: unknown format '%s' (idx, csv, tsv, npy or pgm)", fmt);
    if (header && kind != 1 && kind != 2)
        cli_usage_error("import: --header applies to csv and tsv only");
    imp.fmt = fmt;
    cli_check_stdout(imp.force);
    FILE *in = cli_open_in(path);
    switch (kind) {
    case 0: import_idx(&imp, in); break;
    case 1: import_text(&imp, in, ',', header); break;
    case 2: import_text(&imp, in, '\t', header); break;
    case 3: import_npy(&imp, in); break;
    default: import_pgm(&imp, in); break;
    }
    cli_close_in(in);
    return 0;
}

/* ---- reading one tensor of a stream or model ------------------------------- */

/* Reader on the tensor named `name` (or the first one when name is NULL). */
static tz_reader *open_tensor(FILE *in, const char *path, const char *name, const char *sub)
{
    tz_reader *r = cli_reader(in, path);
    if (!name)
        return r;
    char seen[512] = "";
    size_t k = 0;
    for (;;) {
        const tz_header *h = tz_reader_header(r);
        if (strcmp(h->name, name) == 0)
            return r;
        if (k < sizeof seen - 4)
            k += (size_t)snprintf(seen + k, sizeof seen - k, "%s%s", k ? ", " : "",
                                  h->name[0] ? h->name : "(unnamed)");
        int e = tz_next(r);
        if (e < 0)
            cli_die_reader(sub, r, e);
        if (e == 0)
            cli_die("%s: no tensor '%s' in %s (tensors: %s)", sub, name,
                    path && strcmp(path, "-") ? path : "the input", seen);
    }
}

/* After the last record of an export without --name: a model file with
 * several tensors is an error that names them (read again from the file;
 * from stdin only the first two can be named). */
static void check_single(tz_reader *r, const char *sub, const char *path)
{
    int e = tz_expect_end(r);
    if (e == 0)
        return;
    if (e != TZ_E_MISMATCH || !tz_reader_header(r)->name[0])
        cli_die_reader(sub, r, e);
    FILE *f = path && strcmp(path, "-") ? fopen(path, "rb") : NULL;
    tz_reader *r2 = f ? tz_reader_new(f) : NULL;
    if (r2) {
        char seen[512] = "";
        size_t k = 0;
        while (tz_next(r2) == 1 && k < sizeof seen - 4)
            k += (size_t)snprintf(seen + k, sizeof seen - k, "%s%s", k ? ", " : "",
                                  tz_reader_header(r2)->name);
        cli_die("%s: the input holds several tensors; choose one with --name "
                "(tensors: %s)", sub, seen);
    }
    cli_die("%s: the input holds several tensors; choose one with --name (%s)", sub,
            tz_reader_error(r));
}

/* ---- text output ---- */

/* Shortest %g text that reads back (strtof) as exactly v. */
static int fmt_f32(char *buf, size_t size, float v)
{
    if (isnan(v))
        return snprintf(buf, size, "nan");
    if (isinf(v))
        return snprintf(buf, size, v < 0 ? "-inf" : "inf");
    for (int p = 6; p < 9; p++) {
        int n = snprintf(buf, size, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v)
            return n;
    }
    return snprintf(buf, size, "%.9g", (double)v);
}

static int fmt_f64(char *buf, size_t size, double v)
{
    if (isnan(v))
        return snprintf(buf, size, "nan");
    if (isinf(v))
        return snprintf(buf, size, v < 0 ? "-inf" : "inf");
    for (int p = 15; p < 17; p++) {
        int n = snprintf(buf, size, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            return n;
    }
    return snprintf(buf, size, "%.17g", v);
}

static void print_elem(const void *base, int dt, size_t i)
{
    char b[40];
    switch (dt) {
    case TZ_U8: fprintf(stdout, "%u", ((const uint8_t *)base)[i]); return;
    case TZ_I8: fprintf(stdout, "%d", ((const int8_t *)base)[i]); return;
    case TZ_U16: fprintf(stdout, "%u", ((const uint16_t *)base)[i]); return;
    case TZ_I16: fprintf(stdout, "%d", ((const int16_t *)base)[i]); return;
    case TZ_I32: fprintf(stdout, "%" PRId32, ((const int32_t *)base)[i]); return;
    case TZ_I64: fprintf(stdout, "%" PRId64, ((const int64_t *)base)[i]); return;
    case TZ_F32: fmt_f32(b, sizeof b, ((const float *)base)[i]); break;
    default: fmt_f64(b, sizeof b, ((const double *)base)[i]); break;
    }
    fputs(b, stdout);
}

static void export_text(tz_reader *r, char delim, int single, const char *sub,
                        const char *path)
{
    const tz_header *h = tz_reader_header(r);
    int dt = h->dtype;
    size_t elems = (size_t)tz_record_elems(h), rb = (size_t)tz_record_bytes(h);
    size_t nb = batch_records(rb);
    unsigned char *buf = tensor_xmalloc(nb * rb);
    long k;
    while ((k = tz_read(r, buf, nb)) > 0) {
        for (long j = 0; j < k; j++) {
            const unsigned char *rec = buf + (size_t)j * rb;
            for (size_t i = 0; i < elems; i++) {
                if (i)
                    putchar(delim);
                print_elem(rec, dt, i);
            }
            putchar('\n');
        }
        if (ferror(stdout))
            break;
    }
    if (k < 0)
        cli_die_reader(sub, r, (int)k);
    free(buf);
    if (single)
        check_single(r, sub, path);
}

/* ---- npy output ---- */

static const char *npy_code(int dt)
{
    switch (dt) {
    case TZ_U8: return "|u1";
    case TZ_I8: return "|i1";
    case TZ_U16: return HOST_BIG ? ">u2" : "<u2";
    case TZ_I16: return HOST_BIG ? ">i2" : "<i2";
    case TZ_I32: return HOST_BIG ? ">i4" : "<i4";
    case TZ_I64: return HOST_BIG ? ">i8" : "<i8";
    case TZ_F32: return HOST_BIG ? ">f4" : "<f4";
    default: return HOST_BIG ? ">f8" : "<f8";
    }
}

/* The v1.0 header for `count` records of h into buf; padded with spaces to
 * `total` bytes when total is nonzero, else to a multiple of 64.  Returns
 * the length. */
static size_t npy_header(char *buf, size_t size, const tz_header *h, uint64_t count,
                         size_t total)
{
    char dict[300];
    size_t k = (size_t)snprintf(dict, sizeof dict,
                                "{'descr': '%s', 'fortran_order': False, 'shape': (%" PRIu64,
                                npy_code(h->dtype), count);
    if (h->rank == 0)
        k += (size_t)snprintf(dict + k, sizeof dict - k, ",");
    for (int i = 0; i < h->rank; i++)
        k += (size_t)snprintf(dict + k, sizeof dict - k, ", %" PRIu64, h->dims[i]);
    k += (size_t)snprintf(dict + k, sizeof dict - k, "), }");
    size_t len = 10 + k + 1;
    if (!total)
        total = (len + 63) / 64 * 64;
    if (total > size || total < len)
        return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)((total - 10) & 0xff);
    buf[9] = (char)((total - 10) >> 8);
    memcpy(buf + 10, dict, k);
    memset(buf + 10 + k, ' ', total - 10 - k - 1);
    buf[total - 1] = '\n';
    return total;
}

static void export_npy(tz_reader *r, int single, const char *sub, const char *path)
{
    const tz_header *h = tz_reader_header(r);
    tz_header hc;
    tz_header_init(&hc);
    tz_header_copy(&hc, h);
    size_t rb = (size_t)tz_record_bytes(h), nb = batch_records(rb);
    unsigned char *buf = tensor_xmalloc(nb * rb);
    char hdr[512];
    /* Room for any count: the header of the largest count, reused. */
    size_t hl = npy_header(hdr, sizeof hdr, &hc, UINT64_MAX, 0);

    /* Seekable regular stdout: write a placeholder, patch it at the end.
     * Otherwise spool the data to a temporary file. */
    struct stat st;
    int fd = fileno(stdout), fl = fcntl(fd, F_GETFL);
    off_t off0 = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && fl >= 0 && !(fl & O_APPEND)) {
        fflush(stdout);
        off0 = lseek(fd, 0, SEEK_CUR);
    }
    FILE *out = stdout;
    if (off0 >= 0) {
        fwrite(hdr, 1, hl, stdout);
    } else {
        out = tmpfile();
        if (!out)
            cli_die("%s: cannot create a temporary file:", sub);
    }
    uint64_t count = 0;
    long k;
    while ((k = tz_read(r, buf, nb)) > 0) {
        if (fwrite(buf, rb, (size_t)k, out) != (size_t)k)
            break;
        count += (uint64_t)k;
    }
    if (k < 0)
        cli_die_reader(sub, r, (int)k);
    if (single)
        check_single(r, sub, path);
    if (ferror(out))
        cli_die(out == stdout ? "write error:" : "%s: temporary file: write error:", sub);
    npy_header(hdr, sizeof hdr, &hc, count, hl);
    if (off0 >= 0) {
        if (fflush(stdout) != 0)
            cli_die("write error:");
        if (pwrite(fd, hdr, hl, off0) != (ssize_t)hl)
            cli_die("write error:");
    } else {
        fwrite(hdr, 1, hl, stdout);
        rewind(out);
        size_t n;
        while ((n = fread(buf, 1, nb * rb, out)) > 0)
            if (fwrite(buf, 1, n, stdout) != n)
                break;
        if (ferror(out))
            cli_die("%s: temporary file: read error:", sub);
        fclose(out);
    }
    tz_header_clear(&hc);
    free(buf);
}

/* ---- images ---- */

/* One image of n values x -> gray levels.  depth 8: g[i] in 0..255; depth
 * 16 (only for u16 with unit scale): 0..65535.  unit: integer types are
 * gray levels as they are (clamped), floats are read as [0,1]; minmax: the
 * image's own range maps to 0..max (a constant image is all 0). */
static void to_gray(uint16_t *g, const double *x, size_t n, int dtype, int scale, int depth)
{
    double top = depth == 16 ? 65535 : 255;
    if (scale == SCALE_MINMAX) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++)
            if (!isnan(x[i])) {
                lo = x[i] < lo ? x[i] : lo;
                hi = x[i] > hi ? x[i] : hi;
            }
        double s = hi > lo && isfinite(hi - lo) ? top / (hi - lo) : 0;
        for (size_t i = 0; i < n; i++)
            g[i] = isnan(x[i]) || s == 0 ? 0 : (uint16_t)lrint((x[i] - lo) * s);
        return;
    }
    int isfloat = dtype == TZ_F32 || dtype == TZ_F64;
    double mul = isfloat ? top : dtype == TZ_U16 && depth == 8 ? 1.0 / 257 : 1;
    for (size_t i = 0; i < n; i++) {
        double v = x[i] * mul;
        g[i] = isnan(v) ? 0 : v <= 0 ? 0 : v >= top ? (uint16_t)top : (uint16_t)lrint(v);
    }
}

typedef struct {
    char msg[200];
    const char *sub;
} png_err;

static void png_on_error(png_structp p, png_const_charp msg)
{
    png_err *e = png_get_error_ptr(p);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void png_on_warning(png_structp p, png_const_charp msg)
{
    (void)p;
    (void)msg;
}

/* Write a gray PNG of h rows of w samples g (row-major) to stdout. */
/* g holds h rows of w pixels of ch channels (1 gray, 3 RGB). */
static void write_png_ch(const uint16_t *g, size_t w, size_t h, int ch, int depth,
                         const char *sub)
{
    if (w > 0x7fffffff || h > 0x7fffffff)
        cli_die("%s: image of %zux%zu is too large for PNG", sub, w, h);
    png_err pe = {"", sub};
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, &pe, png_on_error,
                                            png_on_warning);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    if (!info)
        cli_die("out of memory");
    unsigned char *row = tensor_xmalloc(w * (size_t)ch * 2);
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        if (errno == EPIPE)
            exit(0);
        cli_die("%s: png: %s", sub, pe.msg);
    }
    png_init_io(p, stdout);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, depth,
                 ch == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    size_t vals = w * (size_t)ch;            /* values a row */
    for (size_t y = 0; y < h; y++) {
        const uint16_t *s = g + y * vals;
        if (depth == 16)
            for (size_t x = 0; x < vals; x++) {
                row[2 * x] = (unsigned char)(s[x] >> 8);     /* PNG is big-endian */
                row[2 * x + 1] = (unsigned char)s[x];
            }
        else
            for (size_t x = 0; x < vals; x++)
                row[x] = (unsigned char)s[x];
        png_write_row(p, row);
    }
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    free(row);
}

static void write_png(const uint16_t *g, size_t w, size_t h, int depth, const char *sub)
{
    write_png_ch(g, w, h, 1, depth, sub);
}

/* Image height and width of records of h (rank 2, or any rank with
 * --shape HxW whose area is the record size). */
static void image_shape(const tz_header *h, uint64_t sh, uint64_t sw, uint64_t *H,
                        uint64_t *W, const char *sub)
{
    uint64_t n = tz_record_elems(h);
    if (sh) {
        if (sh * sw != n)
            cli_die("%s: --shape %" PRIu64 "x%" PRIu64 " has %" PRIu64 " pixels, records "
                    "have %" PRIu64, sub, sh, sw, sh * sw, n);
        *H = sh;
        *W = sw;
    } else if (h->rank == 2) {
        *H = h->dims[0];
        *W = h->dims[1];
    } else {
        char d[80];
        tz_header_describe(h, d, sizeof d);
        cli_die("%s: records are %s, not images; give --shape HxW", sub, d);
    }
}

static void export_image(tz_reader *r, int png, int scale, uint64_t sh, uint64_t sw,
                         int single, const char *sub, const char *path)
{
    const tz_header *h = tz_reader_header(r);
    uint64_t H, W;
    image_shape(h, sh, sw, &H, &W, sub);
    int dt = h->dtype;
    if (scale == SCALE_AUTO)
        scale = SCALE_UNIT;
    int depth = dt == TZ_U16 && scale == SCALE_UNIT ? 16 : 8;
    size_t n = (size_t)(H * W);
    double *x = tensor_xmalloc(n * sizeof *x);
    uint16_t *g = tensor_xmalloc(n * sizeof *g);
    unsigned char *raw = tensor_xmalloc(n * 2);
    long k;
    uint64_t count = 0;
    while ((k = tz_read_f64(r, x, 1)) > 0) {
        count++;
        if (png && count > 1)
            cli_die("%s: png holds one image and the input has more than one record; "
                    "use 'tensor tile' for a grid, or 'tensor head' and 'tensor slice'", sub);
        to_gray(g, x, n, dt, scale, depth);
        if (png)
            continue;
        printf("P5\n%" PRIu64 " %" PRIu64 "\n%d\n", W, H, depth == 16 ? 65535 : 255);
        for (size_t i = 0; i < n; i++) {
            if (depth == 16) {
                raw[2 * i] = (unsigned char)(g[i] >> 8);
                raw[2 * i + 1] = (unsigned char)g[i];
            } else {
                raw[i] = (unsigned char)g[i];
            }
        }
        if (fwrite(raw, depth / 8, n, stdout) != n)
            break;
    }
    if (k < 0)
        cli_die_reader(sub, r, (int)k);
    if (png) {
        if (count == 0)
            cli_die("%s: the input has no records", sub);
        write_png(g, (size_t)W, (size_t)H, depth, sub);
    }
    if (single)
        check_single(r, sub, path);
    free(x);
    free(g);
    free(raw);
}

static const char export_usage[] =
    "Usage: tensor export FORMAT [OPTION]... [FILE]\n"
    "Convert a tensor stream, or one tensor of a model file, to FORMAT on stdout.\n"
    "FORMAT is one of:\n"
    "  csv   one record a line, elements comma-separated (floats in the shortest\n"
    "        form that reads back bit-exactly)\n"
    "  tsv   the same, tab-separated\n"
    "  npy   NumPy .npy v1.0 of shape (count, record shape...)\n"
    "  pgm   one binary PGM (P5) image per record, concatenated\n"
    "  png   one gray PNG image; the input must hold exactly one record\n"
    "\n"
    "      --name TENSOR        export the tensor TENSOR of a model file\n"
    "                           (default: the only tensor of the input)\n"
    "      --shape HxW          pgm/png: image shape of non-rank-2 records\n"
    "                           (default: the record shape, which must be rank 2)\n"
    "      --scale S            pgm/png gray levels: unit (integers as they\n"
    "                           are, floats in [0,1] clamped) or minmax (each\n"
    "                           image's range to black..white) (default: unit)\n"
    "  -f, --force              write binary data (npy, pgm, png) to a terminal\n"
    "  -h, --help               show this help\n"
    "      --version            print the version\n";

int tensor_export(int argc, char **argv)
{
    static const struct option lo[] = {
        {"name", required_argument, NULL, OPT_NAME},
        {"shape", required_argument, NULL, OPT_SHAPE},
        {"scale", required_argument, NULL, OPT_SCALE},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    const char *name = NULL;
    uint64_t sh = 0, sw = 0;
    int scale = SCALE_AUTO, force = 0, c;
    while ((c = getopt_long(argc, argv, ":fqh", lo, NULL)) != -1) {
        switch (c) {
        case OPT_NAME: name = optarg; break;
        case OPT_SHAPE: parse_shape(optarg, &sh, &sw); break;
        case OPT_SCALE: scale = parse_scale(optarg); break;
        case 'f': force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'h': fputs(export_usage, stdout); cli_close_stdout(); return 0;
        case 'V': cli_version();
        default: tensor_option_error(c, argv);
        }
    }
    if (optind >= argc)
        cli_usage_error("export: missing FORMAT (csv, tsv, npy, pgm or png)");
    const char *fmt = argv[optind++];
    const char *path = tensor_one_operand(argc, argv);
    int kind;
    if (strcmp(fmt, "csv") == 0) kind = 0;
    else if (strcmp(fmt, "tsv") == 0) kind = 1;
    else if (strcmp(fmt, "npy") == 0) kind = 2;
    else if (strcmp(fmt, "pgm") == 0) kind = 3;
    else if (strcmp(fmt, "png") == 0) kind = 4;
    else cli_usage_error("export: unknown format '%s' (csv, tsv, npy, pgm or png)", fmt);
    if ((sh || scale != SCALE_AUTO) && kind < 3)
        cli_usage_error("export: --shape and --scale apply to pgm and png only");
    if (kind >= 2)
        cli_check_stdout(force);
    FILE *in = cli_open_in(path);
    tz_reader *r = open_tensor(in, path, name, "export");
    int single = name == NULL;
    switch (kind) {
    case 0: export_text(r, ',', single, "export", path); break;
    case 1: export_text(r, '\t', single, "export", path); break;
    case 2: export_npy(r, single, "export", path); break;
    default: export_image(r, kind == 4, scale, sh, sw, single, "export", path); break;
    }
    tz_reader_free(r);
    cli_close_in(in);
    cli_close_stdout();
    return 0;
}

/* ---- tile ------------------------------------------------------------------ */

static const char tile_usage[] =
    "Usage: tensor tile [OPTION]... [FILE]\n"
    "Draw records (or, with --transpose, columns) as a grid of gray images in\n"
    "one PNG on stdout, tiles separated by 1-pixel white lines; records of\n"
    "shape [H W 3] are drawn as colour (RGB) images.\n"
    "\n"
    "      --rows R             grid rows (default: near-square grid)\n"
    "      --cols C             grid columns (default: near-square grid)\n"
    "      --shape HxW          tile shape (default: the record shape if rank 2, else\n"
    "                           a square of the tile length)\n"
    "      --name TENSOR        draw tensor TENSOR of a model file (default:\n"
    "                           the only tensor of the input)\n"
    "      --transpose          one tile per column of the (records x elements)\n"
    "                           matrix, e.g. a hidden unit's weights in W (V, H)\n"
    "      --scale S            unit (integers as gray levels, floats in [0,1]) or\n"
    "                           minmax (each tile's own range) (default: minmax with\n"
    "                           --name, unit otherwise)\n"
    "      --max N              draw at most the first N tiles (default 400)\n"
    "  -f, --force              write the PNG to a terminal\n"
    "  -h, --help               show this help\n"
    "      --version            print the version\n";

int tensor_tile(int argc, char **argv)
{
    static const struct option lo[] = {
        {"rows", required_argument, NULL, 'r'},
        {"cols", required_argument, NULL, 'c'},
        {"shape", required_argument, NULL, OPT_SHAPE},
        {"name", required_argument, NULL, OPT_NAME},
        {"transpose", no_argument, NULL, OPT_TRANSPOSE},
        {"scale", required_argument, NULL, OPT_SCALE},
        {"max", required_argument, NULL, OPT_MAX},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    const char *name = NULL;
    uint64_t sh = 0, sw = 0;
    long rows = 0, cols = 0, max = 400;
    int scale = SCALE_AUTO, force = 0, transpose = 0, c;
    while ((c = getopt_long(argc, argv, ":r:c:fqh", lo, NULL)) != -1) {
        switch (c) {
        case 'r': rows = cli_long(optarg, 1, 10000, "--rows"); break;
        case 'c': cols = cli_long(optarg, 1, 10000, "--cols"); break;
        case OPT_SHAPE: parse_shape(optarg, &sh, &sw); break;
        case OPT_NAME: name = optarg; break;
        case OPT_TRANSPOSE: transpose = 1; break;
        case OPT_SCALE: scale = parse_scale(optarg); break;
        case OPT_MAX: max = cli_long(optarg, 1, 1000000, "--max"); break;
        case 'f': force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'h': fputs(tile_usage, stdout); cli_close_stdout(); return 0;
        case 'V': cli_version();
        default: tensor_option_error(c, argv);
        }
    }
    const char *path = tensor_one_operand(argc, argv);
    if (scale == SCALE_AUTO)
        scale = name ? SCALE_MINMAX : SCALE_UNIT;
    cli_check_stdout(force);
    FILE *in = cli_open_in(path);
    tz_reader *r = open_tensor(in, path, name, "tile");
    const tz_header *h = tz_reader_header(r);
    int dt = h->dtype;
    size_t elems = (size_t)tz_record_elems(h);
    size_t ntile, len;           /* number of tiles, values per tile */
    double *t;                   /* tiles (ntile, len) */
    if (rows && cols && (uint64_t)rows * (uint64_t)cols < (uint64_t)max)
        max = rows * cols;
    if (transpose) {
        /* X is (count, elems); tile j is column j: X[:, j]. */
        void *all;
        uint64_t count;
        int e = tz_read_all(r, TZ_F64, &all, &count);
        if (e)
            cli_die_reader("tile", r, e);
        if (count == 0)
            cli_die("tile: the input has no records");
        ntile = elems < (size_t)max ? elems : (size_t)max;
        len = (size_t)count;
        t = tensor_xmalloc(ntile * len * sizeof *t);
        const double *X = all;
        for (size_t j = 0; j < ntile; j++)
            for (size_t i = 0; i < len; i++)
                t[j * len + i] = X[i * elems + j];
        free(all);
    } else {
        len = elems;
        t = tensor_xmalloc((size_t)max * len * sizeof *t);
        long k = 0;
        ntile = 0;
        while (ntile < (size_t)max && (k = tz_read_f64(r, t + ntile * len, (size_t)max - ntile)) > 0)
            ntile += (size_t)k;
        if (k < 0)
            cli_die_reader("tile", r, (int)k);
        if (ntile == 0)
            cli_die("tile: the input has no records");
    }
    uint64_t H, W;
    int ch = 1;
    if (!sh && !transpose && h->rank == 3 && h->dims[2] == 3) {
        H = h->dims[0];
        W = h->dims[1];
        ch = 3;
    } else if (sh) {
        if (sh * sw != len)
            cli_die("tile: --shape %" PRIu64 "x%" PRIu64 " has %" PRIu64 " pixels, tiles "
                    "have %zu values", sh, sw, sh * sw, len);
        H = sh;
        W = sw;
    } else if (!transpose && h->rank == 2) {
        H = h->dims[0];
        W = h->dims[1];
    } else {
        uint64_t s = (uint64_t)llround(sqrt((double)len));
        if (s * s != len)
            cli_die("tile: tiles have %zu values, not a square; give --shape HxW", len);
        H = W = s;
    }
    if (!cols && !rows) {
        cols = (long)ceil(sqrt((double)ntile));
        rows = (long)((ntile + (size_t)cols - 1) / (size_t)cols);
    } else if (!cols) {
        cols = (long)((ntile + (size_t)rows - 1) / (size_t)rows);
    } else if (!rows) {
        rows = (long)((ntile + (size_t)cols - 1) / (size_t)cols);
    }
    /* The canvas (IH, IW): tiles at (H+1)*r, (W+1)*c, white between. */
    uint64_t IH = (uint64_t)rows * (H + 1) - 1, IW = (uint64_t)cols * (W + 1) - 1;
    if (IH * IW > (1ull << 28))
        cli_die("tile: image of %" PRIu64 "x%" PRIu64 " is too large", IW, IH);
    size_t C = (size_t)ch;
    uint16_t *img = tensor_xmalloc((size_t)(IH * IW) * C * sizeof *img);
    for (size_t i = 0; i < IH * IW * C; i++)
        img[i] = 255;
    uint16_t *g = tensor_xmalloc(len * sizeof *g);
    for (size_t j = 0; j < ntile; j++) {
        to_gray(g, t + j * len, len, transpose ? TZ_F64 : dt, scale, 8);
        size_t r0 = j / (size_t)cols * (size_t)(H + 1), c0 = j % (size_t)cols * (size_t)(W + 1);
        for (size_t y = 0; y < H; y++)
            memcpy(img + ((r0 + y) * IW + c0) * C, g + y * W * C, W * C * sizeof *g);
    }
    write_png_ch(img, (size_t)IW, (size_t)IH, ch, 8, "tile");
    free(img);
    free(g);
    free(t);
    tz_reader_free(r);
    cli_close_in(in);
    cli_close_stdout();
    return 0;
}
