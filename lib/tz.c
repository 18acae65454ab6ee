/* tz.c - the .tz tensor stream (formats/tensor-stream.md).
 *
 * Writer: records accumulate in a chunk buffer; a full chunk (or a flush)
 * becomes one zstd frame behind a 16-byte chunk header.  With
 * opts.threads >= 2 compression and writing run on a background thread
 * while the caller fills the next chunk.
 * Reader: reads one chunk at a time into bounded buffers and hands out
 * records; every structural field is checked before it is used.
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static const unsigned char MAGIC[8] = {0x89, 'T', 'Z', 'S', '\r', '\n', 0x1a, '\n'};
#define TAG_CHUNK 0x4b4e4843u   /* "CHNK" little-endian */
#define TAG_END   0x444e4554u   /* "TEND" little-endian */
#define CHUNK_HDR 16
#define TRAILER   28
#define ZSTD_MAGIC 0xFD2FB528u

/* Fuzzing builds (make fuzz) accept wrong CRCs so that mutated inputs
 * reach the code behind them; every other build checks them. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define CRC_BAD(a, b) ((void)(a), (void)(b), 0)
#else
#define CRC_BAD(a, b) ((a) != (b))
#endif

/* ---- small helpers ------------------------------------------------------- */

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): software
 * slicing-by-8, or the SSE4.2 crc32 instruction where the CPU has it. */
static uint32_t crc_table[8][256];
static int crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__) && defined(__GNUC__)
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2")))
static uint32_t crc_sse42(uint32_t c, const unsigned char *p, size_t n)
{
    uint64_t c64 = c;
    while (n && ((uintptr_t)p & 7)) { c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++); n--; }
    /* three interleaved streams would be faster; one stream already runs
     * at several GB/s, well above zstd's decoding speed */
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c64;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t tz_crc32c(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = buf;
    uint32_t c = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
    if (crc_hw)
        return ~crc_sse42(c, p, n);
#endif
    while (n >= 8) {
        uint32_t lo = c ^ (p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
            crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

static void put16(unsigned char *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = v >> (8 * i);
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = v >> (8 * i);
}
static uint16_t get16(const unsigned char *p) { return p[0] | (uint16_t)p[1] << 8; }
static uint32_t get32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

const char *tz_strerror(int code)
{
    switch (code) {
    case TZ_OK: return "success";
    case TZ_E_IO: return "input/output error";
    case TZ_E_TRUNC: return "truncated stream";
    case TZ_E_CORRUPT: return "corrupt stream";
    case TZ_E_VERSION: return "unsupported stream version";
    case TZ_E_LIMIT: return "size limit exceeded";
    case TZ_E_NOMEM: return "out of memory";
    case TZ_E_MISMATCH: return "tensor type or shape mismatch";
    case TZ_E_ARG: return "invalid argument";
    case TZ_E_NOTFOUND: return "not found";
    case TZ_E_EMPTY: return "empty stream";
    }
    return "unknown error";
}

/* ---- dtypes -------------------------------------------------------------- */

size_t tz_dtype_size(int dtype)
{
    switch (dtype) {
    case TZ_U8: case TZ_I8: return 1;
    case TZ_U16: case TZ_I16: return 2;
    case TZ_I32: case TZ_F32: return 4;
    case TZ_I64: case TZ_F64: return 8;
    }
    return 0;
}

static const char *const dtype_names[] = {
    "?", "u8", "i8", "u16", "i16", "i32", "i64", "f32", "f64"};

const char *tz_dtype_name(int dtype)
{
    return tz_dtype_size(dtype) ? dtype_names[dtype] : "?";
}

int tz_dtype_parse(const char *name)
{
    for (int d = 1; d <= 8; d++)
        if (strcmp(name, dtype_names[d]) == 0)
            return d;
    return TZ_E_ARG;
}

/* Load element i of src as double. */
static inline double load_d(const void *src, int dt, size_t i)
{
    switch (dt) {
    case TZ_U8: return ((const uint8_t *)src)[i];
    case TZ_I8: return ((const int8_t *)src)[i];
    case TZ_U16: return ((const uint16_t *)src)[i];
    case TZ_I16: return ((const int16_t *)src)[i];
    case TZ_I32: return ((const int32_t *)src)[i];
    case TZ_I64: return (double)((const int64_t *)src)[i];
    case TZ_F32: return ((const float *)src)[i];
    case TZ_F64: return ((const double *)src)[i];
    }
    return 0;
}

static inline double sat(double v, double lo, double hi)
{
    if (isnan(v)) return 0;
    v = nearbyint(v);
    return v < lo ? lo : v > hi ? hi : v;
}

int tz_convert(void *dst, int dd, const void *src, int sd, size_t n)
{
    if (!tz_dtype_size(dd) || !tz_dtype_size(sd))
        return TZ_E_ARG;
    if (dd == sd) {
        memmove(dst, src, n * tz_dtype_size(dd));
        return 0;
    }
    /* The common fast paths. */
    if (dd == TZ_F32 && sd == TZ_U8) {
        float *o = dst; const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) o[i] = s[i];
        return 0;
    }
    if (dd == TZ_F32 && sd == TZ_F64) {
        float *o = dst; const double *s = src;
        for (size_t i = 0; i < n; i++) o[i] = (float)s[i];
        return 0;
    }
    if (dd == TZ_F64 && sd == TZ_F32) {
        double *o = dst; const float *s = src;
        for (size_t i = 0; i < n; i++) o[i] = s[i];
        return 0;
    }
    /* Source and destination may not overlap here (sizes differ). */
    for (size_t i = 0; i < n; i++) {
        double v = load_d(src, sd, i);
        switch (dd) {
        case TZ_U8: ((uint8_t *)dst)[i] = (uint8_t)sat(v, 0, 255); break;
        case TZ_I8: ((int8_t *)dst)[i] = (int8_t)sat(v, -128, 127); break;
        case TZ_U16: ((uint16_t *)dst)[i] = (uint16_t)sat(v, 0, 65535); break;
        case TZ_I16: ((int16_t *)dst)[i] = (int16_t)sat(v, -32768, 32767); break;
        case TZ_I32:
            ((int32_t *)dst)[i] = (int32_t)sat(v, -2147483648.0, 2147483647.0);
            break;
        case TZ_I64:
            if (sd == TZ_I64)
                ((int64_t *)dst)[i] = ((const int64_t *)src)[i];
            else
                ((int64_t *)dst)[i] = (int64_t)sat(v, -9223372036854775808.0,
                                                   9223372036854774784.0);
            break;
        case TZ_F32: ((float *)dst)[i] = (float)v; break;
        case TZ_F64: ((double *)dst)[i] = v; break;
        }
    }
    return 0;
}

/* ---- headers and attributes --------------------------------------------- */

void tz_header_init(tz_header *h)
{
    memset(h, 0, sizeof *h);
    h->dtype = TZ_F32;
}

static void attr_free(tz_attr *a)
{
    free(a->key);
    free(a->s);
}

void tz_header_clear(tz_header *h)
{
    for (size_t i = 0; i < h->n_attrs; i++)
        attr_free(&h->attrs[i]);
    free(h->attrs);
    tz_header_init(h);
}

int tz_header_copy(tz_header *dst, const tz_header *src)
{
    tz_header_clear(dst);
    *dst = *src;
    dst->attrs = NULL;
    dst->n_attrs = 0;
    if (src->n_attrs) {
        dst->attrs = calloc(src->n_attrs, sizeof(tz_attr));
        if (!dst->attrs) return TZ_E_NOMEM;
        for (size_t i = 0; i < src->n_attrs; i++) {
            const tz_attr *a = &src->attrs[i];
            tz_attr *b = &dst->attrs[i];
            *b = *a;
            b->key = strdup(a->key);
            b->s = a->s ? strdup(a->s) : NULL;
            dst->n_attrs = i + 1;
            if (!b->key || (a->s && !b->s))
                return TZ_E_NOMEM;
        }
    }
    return 0;
}

uint64_t tz_record_elems(const tz_header *h)
{
    uint64_t n = 1;
    for (int i = 0; i < h->rank; i++)
        n *= h->dims[i];
    return n;
}

uint64_t tz_record_bytes(const tz_header *h)
{
    return tz_record_elems(h) * tz_dtype_size(h->dtype);
}

/* Checks dtype, rank, dims and the record size against the limits. */
static int check_shape(int dtype, int rank, const uint64_t *dims)
{
    size_t es = tz_dtype_size(dtype);
    if (!es) return TZ_E_CORRUPT;
    if (rank < 0 || rank > TZ_RANK_MAX) return TZ_E_LIMIT;
    uint64_t bytes = es;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0) return TZ_E_CORRUPT;
        if (dims[i] > TZ_RECORD_MAX || bytes > TZ_RECORD_MAX / dims[i])
            return TZ_E_LIMIT;
        bytes *= dims[i];
    }
    return 0;
}

int tz_header_set_shape(tz_header *h, int dtype, int rank, const uint64_t *dims)
{
    int e = check_shape(dtype, rank, dims);
    if (e) return e == TZ_E_CORRUPT ? TZ_E_ARG : e;
    h->dtype = dtype;
    h->rank = rank;
    for (int i = 0; i < TZ_RANK_MAX; i++)
        h->dims[i] = i < rank ? dims[i] : 0;
    return 0;
}

int tz_header_same_tensor(const tz_header *a, const tz_header *b)
{
    if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

void tz_header_describe(const tz_header *h, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%s [", tz_dtype_name(h->dtype));
    for (int i = 0; i < h->rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%llu", i ? " " : "",
                              (unsigned long long)h->dims[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

/* key := seg ('.' seg)*, seg := [a-z0-9_]+, 1..TZ_KEY_MAX bytes: a segment
 * may start with or consist of digits ("layer.0.unit"). */
int tz_attr_valid_key(const char *key)
{
    size_t n = strnlen(key, TZ_KEY_MAX + 1);
    if (n == 0 || n > TZ_KEY_MAX) return 0;
    size_t seg = 0;  /* length of the current segment */
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (c == '.') {
            if (seg == 0) return 0;
            seg = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') {
            seg++;
        } else {
            return 0;
        }
    }
    return seg > 0;
}

static tz_attr *attr_slot(tz_header *h, const char *key, int *err)
{
    *err = 0;
    if (!tz_attr_valid_key(key)) { *err = TZ_E_ARG; return NULL; }
    for (size_t i = 0; i < h->n_attrs; i++)
        if (strcmp(h->attrs[i].key, key) == 0) {
            free(h->attrs[i].s);
            h->attrs[i].s = NULL;
            return &h->attrs[i];
        }
    if (h->n_attrs >= TZ_ATTRS_MAX) { *err = TZ_E_LIMIT; return NULL; }
    tz_attr *na = realloc(h->attrs, (h->n_attrs + 1) * sizeof *na);
    if (!na) { *err = TZ_E_NOMEM; return NULL; }
    h->attrs = na;
    tz_attr *a = &na[h->n_attrs];
    memset(a, 0, sizeof *a);
    a->key = strdup(key);
    if (!a->key) { *err = TZ_E_NOMEM; return NULL; }
    h->n_attrs++;
    return a;
}

int tz_attr_set_i(tz_header *h, const char *key, int64_t v)
{
    int e; tz_attr *a = attr_slot(h, key, &e);
    if (!a) return e;
    a->type = TZ_ATTR_I64; a->i = v;
    return 0;
}

int tz_attr_set_f(tz_header *h, const char *key, double v)
{
    int e; tz_attr *a = attr_slot(h, key, &e);
    if (!a) return e;
    a->type = TZ_ATTR_F64; a->f = v;
    return 0;
}

int tz_attr_set_s(tz_header *h, const char *key, const char *v)
{
    if (strlen(v) > TZ_STR_MAX) return TZ_E_LIMIT;
    int e; tz_attr *a = attr_slot(h, key, &e);
    if (!a) return e;
    a->type = TZ_ATTR_STR;
    a->s = strdup(v);
    return a->s ? 0 : TZ_E_NOMEM;
}

int tz_attr_remove(tz_header *h, const char *key)
{
    for (size_t i = 0; i < h->n_attrs; i++)
        if (strcmp(h->attrs[i].key, key) == 0) {
            attr_free(&h->attrs[i]);
            memmove(&h->attrs[i], &h->attrs[i + 1],
                    (h->n_attrs - i - 1) * sizeof(tz_attr));
            h->n_attrs--;
            return 0;
        }
    return TZ_E_NOTFOUND;
}

const tz_attr *tz_attr_get(const tz_header *h, const char *key)
{
    for (size_t i = 0; i < h->n_attrs; i++)
        if (strcmp(h->attrs[i].key, key) == 0)
            return &h->attrs[i];
    return NULL;
}

int64_t tz_attr_get_i(const tz_header *h, const char *key, int64_t def)
{
    const tz_attr *a = tz_attr_get(h, key);
    return a && a->type == TZ_ATTR_I64 ? a->i : def;
}

double tz_attr_get_f(const tz_header *h, const char *key, double def)
{
    const tz_attr *a = tz_attr_get(h, key);
    if (!a) return def;
    if (a->type == TZ_ATTR_F64) return a->f;
    if (a->type == TZ_ATTR_I64) return (double)a->i;
    return def;
}

const char *tz_attr_get_s(const tz_header *h, const char *key, const char *def)
{
    const tz_attr *a = tz_attr_get(h, key);
    return a && a->type == TZ_ATTR_STR ? a->s : def;
}

int tz_data_are_probabilities(const tz_header *h)
{
    return strcmp(tz_attr_get_s(h, "data.values", ""), "probabilities") == 0;
}

/* Serialise a header (magic .. CRC) into a malloc'd buffer. */
static int header_encode(const tz_header *h, unsigned char **out, size_t *outlen)
{
    size_t nl = strlen(h->name);
    if (nl > TZ_NAME_MAX) return TZ_E_LIMIT;
    int e = check_shape(h->dtype, h->rank, h->dims);
    if (e) return e == TZ_E_CORRUPT ? TZ_E_ARG : e;
    size_t body = 4 + 8 * (size_t)h->rank + nl + 4;
    for (size_t i = 0; i < h->n_attrs; i++) {
        const tz_attr *a = &h->attrs[i];
        body += 2 + strlen(a->key) + 1 + (a->type == TZ_ATTR_STR ? 4 + strlen(a->s) : 8);
    }
    if (body > TZ_HEADER_MAX) return TZ_E_LIMIT;
    size_t total = 16 + body + 4;
    unsigned char *b = malloc(total), *p;
    if (!b) return TZ_E_NOMEM;
    memcpy(b, MAGIC, 8);
    put16(b + 8, TZ_VERSION);
    put16(b + 10, 0);
    put32(b + 12, (uint32_t)body);
    p = b + 16;
    *p++ = (unsigned char)h->dtype;
    *p++ = (unsigned char)h->rank;
    put16(p, (uint16_t)nl); p += 2;
    for (int i = 0; i < h->rank; i++) { put64(p, h->dims[i]); p += 8; }
    memcpy(p, h->name, nl); p += nl;
    put32(p, (uint32_t)h->n_attrs); p += 4;
    for (size_t i = 0; i < h->n_attrs; i++) {
        const tz_attr *a = &h->attrs[i];
        size_t kl = strlen(a->key);
        put16(p, (uint16_t)kl); p += 2;
        memcpy(p, a->key, kl); p += kl;
        *p++ = (unsigned char)a->type;
        if (a->type == TZ_ATTR_STR) {
            size_t sl = strlen(a->s);
            put32(p, (uint32_t)sl); p += 4;
            memcpy(p, a->s, sl); p += sl;
        } else if (a->type == TZ_ATTR_I64) {
            put64(p, (uint64_t)a->i); p += 8;
        } else {
            uint64_t u; memcpy(&u, &a->f, 8);
            put64(p, u); p += 8;
        }
    }
    put32(p, tz_crc32c(0, b, 16 + body));
    *out = b;
    *outlen = total;
    return 0;
}

/* Parse a header body of length n into h (h is init'd).  msg gets the
 * reason on failure. */
static int header_decode(tz_header *h, const unsigned char *p, size_t n,
                         char *msg, size_t msz)
{
#define NEED(k) do { if ((size_t)(end - p) < (size_t)(k)) { \
        snprintf(msg, msz, "corrupt header: fields overrun its length"); \
        return TZ_E_CORRUPT; } } while (0)
    const unsigned char *end = p + n;
    NEED(4);
    int dtype = p[0], rank = p[1];
    size_t nl = get16(p + 2);
    p += 4;
    if (!tz_dtype_size(dtype)) {
        snprintf(msg, msz, "corrupt header: unknown dtype code %d", dtype);
        return TZ_E_CORRUPT;
    }
    if (rank > TZ_RANK_MAX) {
        snprintf(msg, msz, "record rank %d exceeds the limit %d", rank, TZ_RANK_MAX);
        return TZ_E_LIMIT;
    }
    NEED(8 * rank);
    uint64_t dims[TZ_RANK_MAX] = {0};
    for (int i = 0; i < rank; i++) { dims[i] = get64(p); p += 8; }
    int e = check_shape(dtype, rank, dims);
    if (e) {
        snprintf(msg, msz, e == TZ_E_LIMIT ? "record size exceeds the limit of %u bytes"
                 : "corrupt header: a dimension is zero", TZ_RECORD_MAX);
        return e;
    }
    if (nl > TZ_NAME_MAX) {
        snprintf(msg, msz, "tensor name longer than %d bytes", TZ_NAME_MAX);
        return TZ_E_LIMIT;
    }
    NEED(nl);
    memcpy(h->name, p, nl);
    h->name[nl] = 0;
    if (memchr(h->name, 0, nl)) {
        snprintf(msg, msz, "corrupt header: NUL in tensor name");
        return TZ_E_CORRUPT;
    }
    p += nl;
    h->dtype = dtype;
    h->rank = rank;
    memcpy(h->dims, dims, sizeof dims);
    NEED(4);
    uint32_t na = get32(p); p += 4;
    if (na > TZ_ATTRS_MAX) {
        snprintf(msg, msz, "%u attributes exceed the limit of %d", na, TZ_ATTRS_MAX);
        return TZ_E_LIMIT;
    }
    for (uint32_t i = 0; i < na; i++) {
        char key[TZ_KEY_MAX + 1];
        NEED(2);
        size_t kl = get16(p); p += 2;
        if (kl > TZ_KEY_MAX) {
            snprintf(msg, msz, "attribute key longer than %d bytes", TZ_KEY_MAX);
            return TZ_E_LIMIT;
        }
        NEED(kl + 1);
        memcpy(key, p, kl); key[kl] = 0; p += kl;
        int type = *p++;
        if (!tz_attr_valid_key(key) || tz_attr_get(h, key)) {
            snprintf(msg, msz, "corrupt header: invalid or repeated attribute key");
            return TZ_E_CORRUPT;
        }
        if (type == TZ_ATTR_I64 || type == TZ_ATTR_F64) {
            NEED(8);
            uint64_t u = get64(p); p += 8;
            if (type == TZ_ATTR_I64) e = tz_attr_set_i(h, key, (int64_t)u);
            else { double d; memcpy(&d, &u, 8); e = tz_attr_set_f(h, key, d); }
        } else if (type == TZ_ATTR_STR) {
            NEED(4);
            size_t sl = get32(p); p += 4;
            if (sl > TZ_STR_MAX) {
                snprintf(msg, msz, "string attribute longer than %u bytes", TZ_STR_MAX);
                return TZ_E_LIMIT;
            }
            NEED(sl);
            if (memchr(p, 0, sl)) {
                snprintf(msg, msz, "corrupt header: NUL in string attribute");
                return TZ_E_CORRUPT;
            }
            char *s = malloc(sl + 1);
            if (!s) return TZ_E_NOMEM;
            memcpy(s, p, sl); s[sl] = 0; p += sl;
            e = tz_attr_set_s(h, key, s);
            free(s);
        } else {
            snprintf(msg, msz, "corrupt header: unknown attribute type %d", type);
            return TZ_E_CORRUPT;
        }
        if (e) { snprintf(msg, msz, "%s", tz_strerror(e)); return e; }
    }
    if (p != end) {
        snprintf(msg, msz, "corrupt header: %zu unused bytes", (size_t)(end - p));
        return TZ_E_CORRUPT;
    }
    return 0;
#undef NEED
}

/* ---- writer -------------------------------------------------------------- */

void tz_write_opts_init(tz_write_opts *o)
{
    o->level = TZ_LEVEL_AUTO;
    o->chunk_bytes = TZ_DEFAULT_CHUNK;
    o->threads = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1;
}

/* One compressed chunk ready to be written. */
typedef struct {
    unsigned char *raw;     /* uncompressed records */
    size_t raw_len;
    uint32_t n_rec;
    unsigned char *out;     /* chunk header + frame */
    size_t out_cap, out_len;
    int err;
} wjob;

struct tz_writer {
    FILE *f;
    tz_write_opts o;
    ZSTD_CCtx *cctx;
    tz_header h;
    int open;               /* a section is open */
    uint64_t rec_bytes;
    size_t chunk_recs;      /* records per chunk */
    wjob job[2];            /* double buffer: one filling, one compressing */
    int cur;                /* index of the filling job */
    uint64_t count, chunks;
    uint32_t hash;
    /* background thread */
    int threaded;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int busy;               /* job[!cur] is queued or running */
    int quit;
    /* The first error wins; either thread may report one.  `claimed` picks
     * the reporter, which fills msg and sys_errno before publishing err. */
    atomic_int claimed;
    atomic_int err;
    int sys_errno;          /* errno of a failed write */
    char msg[256];
};

static int werr(tz_writer *w, int code, const char *fmt, ...)
{
    if (atomic_exchange(&w->claimed, 1) == 0) {
        w->sys_errno = code == TZ_E_IO ? errno : 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->msg, sizeof w->msg, fmt, ap);
        va_end(ap);
        atomic_store(&w->err, code);
    }
    return code;
}

const char *tz_writer_error(const tz_writer *w)
{
    return w->msg[0] ? w->msg : tz_strerror(w->err);
}

uint64_t tz_writer_count(const tz_writer *w) { return w->count; }
int tz_writer_errno(const tz_writer *w) { return w->sys_errno; }

/* Compress job j into its out buffer.  Runs on either thread; touches only
 * the job and the cctx. */
static void compress_job(ZSTD_CCtx *cctx, wjob *j)
{
    size_t bound = CHUNK_HDR + ZSTD_compressBound(j->raw_len);
    if (j->out_cap < bound) {
        unsigned char *o = realloc(j->out, bound);
        if (!o) { j->err = TZ_E_NOMEM; return; }
        j->out = o;
        j->out_cap = bound;
    }
    size_t z = ZSTD_compress2(cctx, j->out + CHUNK_HDR, j->out_cap - CHUNK_HDR,
                              j->raw, j->raw_len);
    if (ZSTD_isError(z) || z > UINT32_MAX) { j->err = TZ_E_IO; return; }
    put32(j->out, TAG_CHUNK);
    put32(j->out + 4, j->n_rec);
    put32(j->out + 8, (uint32_t)z);
    put32(j->out + 12, tz_crc32c(0, j->out + CHUNK_HDR, z));
    j->out_len = CHUNK_HDR + z;
    j->err = 0;
}

/* Write a compressed job and fold it into the section hash (caller's
 * thread or the background thread, never both at once). */
static int emit_job(tz_writer *w, wjob *j)
{
    if (j->err) return werr(w, j->err, "compression failed: %s", tz_strerror(j->err));
    if (fwrite(j->out, 1, j->out_len, w->f) != j->out_len)
        return werr(w, TZ_E_IO, "write error: %s", strerror(errno));
    /* section hash: CRC-32C chained over the chunk headers */
    w->hash = tz_crc32c(w->hash, j->out, CHUNK_HDR);
    return 0;
}

static void *writer_thread(void *arg)
{
    tz_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->busy && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->busy && w->quit) break;
        wjob *j = &w->job[!w->cur];
        pthread_mutex_unlock(&w->mu);
        compress_job(w->cctx, j);
        int e = emit_job(w, j);
        pthread_mutex_lock(&w->mu);
        (void)e;
        w->busy = 0;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Wait until the background job (if any) is done. */
static void wait_idle(tz_writer *w)
{
    if (!w->threaded) return;
    pthread_mutex_lock(&w->mu);
    while (w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

tz_writer *tz_writer_new(FILE *f, const tz_write_opts *opts)
{
    tz_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    atomic_init(&w->claimed, 0);
    atomic_init(&w->err, 0);
    w->f = f;
    if (opts) w->o = *opts; else tz_write_opts_init(&w->o);
    if (w->o.chunk_bytes == 0) w->o.chunk_bytes = TZ_DEFAULT_CHUNK;
    if (w->o.chunk_bytes > TZ_CHUNK_MAX) w->o.chunk_bytes = TZ_CHUNK_MAX;
    tz_header_init(&w->h);
    w->cctx = ZSTD_createCCtx();
    if (!w->cctx) { free(w); return NULL; }
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_windowLog, 0);
    if (w->o.threads >= 2) {
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        if (pthread_create(&w->th, NULL, writer_thread, w) == 0)
            w->threaded = 1;
        else {
            pthread_mutex_destroy(&w->mu);
            pthread_cond_destroy(&w->cv);
        }
    }
    return w;
}

/* Hand the filling job to compression and switch buffers. */
static int submit_chunk(tz_writer *w)
{
    wjob *j = &w->job[w->cur];
    if (j->n_rec == 0) return w->err;
    w->chunks++;
    if (w->threaded) {
        wait_idle(w);
        if (w->err) return w->err;
        pthread_mutex_lock(&w->mu);
        w->busy = 1;
        w->cur = !w->cur;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    } else {
        compress_job(w->cctx, j);
        int e = emit_job(w, j);
        if (e) return e;
    }
    wjob *n = &w->job[w->cur];
    n->raw_len = 0;
    n->n_rec = 0;
    return w->err;
}

int tz_writer_begin(tz_writer *w, const tz_header *h)
{
    if (w->err) return w->err;
    if (w->open) {
        int e = tz_writer_end(w);
        if (e) return e;
    }
    unsigned char *buf;
    size_t len;
    int e = header_encode(h, &buf, &len);
    if (e) return werr(w, e, "cannot write header: %s", tz_strerror(e));
    e = tz_header_copy(&w->h, h);
    if (e) { free(buf); return werr(w, e, "out of memory"); }
    if (fwrite(buf, 1, len, w->f) != len) {
        free(buf);
        return werr(w, TZ_E_IO, "write error: %s", strerror(errno));
    }
    free(buf);
    /* the background thread is idle here (submit_chunk waited in end) */
    int level = w->o.level;
    if (level == TZ_LEVEL_AUTO)
        level = (h->dtype == TZ_F32 || h->dtype == TZ_F64) ? TZ_LEVEL_FLOAT : TZ_LEVEL_INT;
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level);
    w->rec_bytes = tz_record_bytes(h);
    w->chunk_recs = w->o.chunk_bytes / w->rec_bytes;
    if (w->chunk_recs == 0) w->chunk_recs = 1;
    if (w->chunk_recs > UINT32_MAX) w->chunk_recs = UINT32_MAX;
    size_t cap = w->chunk_recs * w->rec_bytes;
    for (int i = 0; i < 2; i++) {
        unsigned char *r = realloc(w->job[i].raw, cap);
        if (!r) return werr(w, TZ_E_NOMEM, "out of memory");
        w->job[i].raw = r;
        w->job[i].raw_len = 0;
        w->job[i].n_rec = 0;
    }
    w->count = 0;
    w->chunks = 0;
    w->hash = 0;
    w->open = 1;
    return 0;
}

int tz_write(tz_writer *w, const void *records, size_t n)
{
    if (w->err) return w->err;
    if (!w->open) return werr(w, TZ_E_ARG, "write outside a section");
    const unsigned char *src = records;
    while (n > 0) {
        wjob *j = &w->job[w->cur];
        size_t room = w->chunk_recs - j->n_rec;
        size_t k = n < room ? n : room;
        memcpy(j->raw + j->raw_len, src, k * w->rec_bytes);
        j->raw_len += k * w->rec_bytes;
        j->n_rec += (uint32_t)k;
        w->count += k;
        src += k * w->rec_bytes;
        n -= k;
        if (j->n_rec == w->chunk_recs) {
            int e = submit_chunk(w);
            if (e) return e;
        }
    }
    return 0;
}

int tz_write_as(tz_writer *w, int src_dtype, const void *records, size_t n)
{
    if (w->err) return w->err;
    if (!w->open) return werr(w, TZ_E_ARG, "write outside a section");
    if (src_dtype == w->h.dtype) return tz_write(w, records, n);
    size_t es = tz_dtype_size(src_dtype);
    if (!es) return werr(w, TZ_E_ARG, "unknown dtype");
    uint64_t elems = tz_record_elems(&w->h);
    const unsigned char *src = records;
    while (n > 0) {
        wjob *j = &w->job[w->cur];
        size_t room = w->chunk_recs - j->n_rec;
        size_t k = n < room ? n : room;
        tz_convert(j->raw + j->raw_len, w->h.dtype, src, src_dtype, k * elems);
        j->raw_len += k * w->rec_bytes;
        j->n_rec += (uint32_t)k;
        w->count += k;
        src += k * elems * es;
        n -= k;
        if (j->n_rec == w->chunk_recs) {
            int e = submit_chunk(w);
            if (e) return e;
        }
    }
    return 0;
}

int tz_write_frame(tz_writer *w, const void *frame, size_t frame_len, size_t n)
{
    if (w->err) return w->err;
    if (!w->open) return werr(w, TZ_E_ARG, "write outside a section");
    if (n == 0 || n > UINT32_MAX || frame_len > UINT32_MAX ||
        n * w->rec_bytes > TZ_CHUNK_MAX)
        return werr(w, TZ_E_ARG, "invalid chunk of %zu records", n);
    /* pending records first, in a chunk of their own, and in order */
    int e = submit_chunk(w);
    if (e) return e;
    wait_idle(w);
    if (w->err) return w->err;
    unsigned char ch[CHUNK_HDR];
    put32(ch, TAG_CHUNK);
    put32(ch + 4, (uint32_t)n);
    put32(ch + 8, (uint32_t)frame_len);
    put32(ch + 12, tz_crc32c(0, frame, frame_len));
    if (fwrite(ch, 1, CHUNK_HDR, w->f) != CHUNK_HDR ||
        fwrite(frame, 1, frame_len, w->f) != frame_len)
        return werr(w, TZ_E_IO, "write error: %s", strerror(errno));
    w->hash = tz_crc32c(w->hash, ch, CHUNK_HDR);
    w->chunks++;
    w->count += n;
    return 0;
}

int tz_writer_flush(tz_writer *w)
{
    if (w->err) return w->err;
    if (w->open) {
        int e = submit_chunk(w);
        if (e) return e;
    }
    wait_idle(w);
    if (w->err) return w->err;
    if (fflush(w->f) != 0)
        return werr(w, TZ_E_IO, "write error: %s", strerror(errno));
    return 0;
}

int tz_writer_end(tz_writer *w)
{
    if (w->err) return w->err;
    if (!w->open) return 0;
    int e = submit_chunk(w);
    if (e) return e;
    wait_idle(w);
    if (w->err) return w->err;
    unsigned char t[TRAILER];
    put32(t, TAG_END);
    put64(t + 4, w->count);
    put64(t + 12, w->chunks);
    put32(t + 20, w->hash);
    put32(t + 24, tz_crc32c(0, t, 24));
    if (fwrite(t, 1, TRAILER, w->f) != TRAILER)
        return werr(w, TZ_E_IO, "write error: %s", strerror(errno));
    w->open = 0;
    return 0;
}

int tz_writer_close(tz_writer *w)
{
    if (!w) return TZ_E_ARG;
    int e = tz_writer_end(w);
    if (!e && fflush(w->f) != 0)
        e = werr(w, TZ_E_IO, "write error: %s", strerror(errno));
    if (!e && ferror(w->f))
        e = werr(w, TZ_E_IO, "write error");
    return e ? e : w->err;
}

void tz_writer_free(tz_writer *w)
{
    if (!w) return;
    if (w->threaded) {
        pthread_mutex_lock(&w->mu);
        while (w->busy)
            pthread_cond_wait(&w->cv, &w->mu);
        w->quit = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
    }
    for (int i = 0; i < 2; i++) {
        free(w->job[i].raw);
        free(w->job[i].out);
    }
    ZSTD_freeCCtx(w->cctx);
    tz_header_clear(&w->h);
    free(w);
}

/* ---- reader -------------------------------------------------------------- */

struct tz_reader {
    FILE *f;
    ZSTD_DCtx *dctx;
    tz_header h;            /* current tensor */
    tz_header next;         /* a header read ahead that starts a new tensor */
    int have_next;          /* 1: next holds a header; -1: clean EOF seen */
    int state;              /* 0 none, 1 in section, 2 tensor ended */
    uint64_t rec_bytes;
    unsigned char *zbuf;    /* compressed frame */
    size_t zcap;
    unsigned char *buf;     /* decompressed chunk */
    size_t bcap, blen, bpos;
    size_t zlen;            /* length of the frame in zbuf */
    uint64_t count;         /* records read in the current tensor */
    uint64_t decoded;       /* records decoded in the current tensor */
    uint64_t sec_count, sec_chunks;  /* in the current section */
    uint32_t hash;
    uint64_t in_bytes;
    int err;
    char msg[256];
};

static int rerr(tz_reader *r, int code, const char *fmt, ...)
{
    if (!r->err) {
        r->err = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->msg, sizeof r->msg, fmt, ap);
        va_end(ap);
    }
    return r->err;
}

const char *tz_reader_error(const tz_reader *r)
{
    return r->msg[0] ? r->msg : tz_strerror(r->err);
}

tz_reader *tz_reader_new(FILE *f)
{
    tz_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->f = f;
    r->dctx = ZSTD_createDCtx();
    if (!r->dctx) { free(r); return NULL; }
    ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, TZ_WINDOWLOG_MAX);
    tz_header_init(&r->h);
    tz_header_init(&r->next);
    return r;
}

void tz_reader_free(tz_reader *r)
{
    if (!r) return;
    ZSTD_freeDCtx(r->dctx);
    tz_header_clear(&r->h);
    tz_header_clear(&r->next);
    free(r->zbuf);
    free(r->buf);
    free(r);
}

const tz_header *tz_reader_header(const tz_reader *r) { return &r->h; }
uint64_t tz_reader_count(const tz_reader *r) { return r->count; }
uint64_t tz_reader_in_bytes(const tz_reader *r) { return r->in_bytes; }

/* Read exactly n bytes.  Returns n, or the short count at EOF, or -1 on a
 * read error. */
static long read_full(tz_reader *r, void *dst, size_t n)
{
    size_t got = fread(dst, 1, n, r->f);
    r->in_bytes += got;
    if (got < n && ferror(r->f)) return -1;
    return (long)got;
}

/* Read a section header into h.  Returns 1, 0 at a clean EOF (no byte),
 * or a negative code. */
static int read_header(tz_reader *r, tz_header *h)
{
    unsigned char fix[16];
    long got = read_full(r, fix, 16);
    if (got < 0) return rerr(r, TZ_E_IO, "read error: %s", strerror(errno));
    if (got == 0) return 0;
    if (memcmp(fix, MAGIC, (size_t)got < 8 ? (size_t)got : 8) != 0)
        return rerr(r, TZ_E_CORRUPT, "not a tensor stream (bad magic at byte %llu)",
                    (unsigned long long)(r->in_bytes - (uint64_t)got));
    if (got < 16)
        return rerr(r, TZ_E_TRUNC, "truncated stream: ends inside a header");
    uint16_t ver = get16(fix + 8), flags = get16(fix + 10);
    uint32_t body = get32(fix + 12);
    if (ver != TZ_VERSION || flags != 0)
        return rerr(r, TZ_E_VERSION, "unsupported stream version %u (flags %u); "
                    "this reader knows version %d", ver, flags, TZ_VERSION);
    if (body > TZ_HEADER_MAX)
        return rerr(r, TZ_E_LIMIT, "header of %u bytes exceeds the limit of %u",
                    body, TZ_HEADER_MAX);
    unsigned char *b = malloc(16 + (size_t)body + 4);
    if (!b) return rerr(r, TZ_E_NOMEM, "out of memory");
    memcpy(b, fix, 16);
    got = read_full(r, b + 16, (size_t)body + 4);
    if (got < 0) { free(b); return rerr(r, TZ_E_IO, "read error: %s", strerror(errno)); }
    if ((size_t)got < (size_t)body + 4) {
        free(b);
        return rerr(r, TZ_E_TRUNC, "truncated stream: ends inside a header");
    }
    if (CRC_BAD(tz_crc32c(0, b, 16 + body), get32(b + 16 + body))) {
        free(b);
        return rerr(r, TZ_E_CORRUPT, "corrupt stream: header checksum mismatch");
    }
    tz_header_clear(h);
    char msg[200];
    int e = header_decode(h, b + 16, body, msg, sizeof msg);
    free(b);
    if (e) return rerr(r, e, "%s", msg);
    return 1;
}

static void start_section(tz_reader *r)
{
    r->sec_count = 0;
    r->sec_chunks = 0;
    r->hash = 0;
    r->state = 1;
}

int tz_next(tz_reader *r)
{
    if (r->err) return r->err;
    /* Skip what is left of the current tensor. */
    if (r->state == 1) {
        long n;
        while ((n = tz_read(r, NULL, SIZE_MAX)) > 0) {}
        if (n < 0) return (int)n;
    }
    int e;
    if (r->have_next == 1) {
        tz_header t = r->h;
        r->h = r->next;
        r->next = t;
        tz_header_clear(&r->next);
        r->have_next = 0;
        e = 1;
    } else if (r->have_next == -1) {
        e = 0;
    } else {
        e = read_header(r, &r->h);
    }
    if (e <= 0) {
        if (e == 0) r->state = 2;
        return e;
    }
    r->rec_bytes = tz_record_bytes(&r->h);
    r->count = 0;
    r->decoded = 0;
    r->blen = r->bpos = 0;
    start_section(r);
    return 1;
}

/* After a trailer: look at what follows.  Continues the tensor when the
 * next section matches; otherwise stashes it. */
static int after_trailer(tz_reader *r)
{
    int e = read_header(r, &r->next);
    if (e < 0) return e;
    if (e == 0) { r->have_next = -1; r->state = 2; return 0; }
    if (tz_header_same_tensor(&r->h, &r->next)) {
        tz_header_clear(&r->next);
        start_section(r);
        return 1;
    }
    r->have_next = 1;
    r->state = 2;
    return 0;
}

/* Load the next chunk into buf.  Returns 1 with data, 0 at the end of the
 * tensor, negative on error. */
static int load_chunk(tz_reader *r)
{
    for (;;) {
        if (r->state != 1) return 0;
        unsigned char ch[CHUNK_HDR];
        long got = read_full(r, ch, 4);
        if (got < 0) return rerr(r, TZ_E_IO, "read error: %s", strerror(errno));
        if (got < 4)
            return rerr(r, TZ_E_TRUNC, "truncated stream: ends after %llu records "
                        "with no trailer", (unsigned long long)r->decoded);
        uint32_t tag = get32(ch);
        if (tag == TAG_END) {
            unsigned char t[TRAILER];
            memcpy(t, ch, 4);
            got = read_full(r, t + 4, TRAILER - 4);
            if (got < 0) return rerr(r, TZ_E_IO, "read error: %s", strerror(errno));
            if (got < TRAILER - 4)
                return rerr(r, TZ_E_TRUNC, "truncated stream: ends inside the trailer");
            if (CRC_BAD(tz_crc32c(0, t, 24), get32(t + 24)))
                return rerr(r, TZ_E_CORRUPT, "corrupt stream: trailer checksum mismatch");
            if (get64(t + 4) != r->sec_count || get64(t + 12) != r->sec_chunks)
                return rerr(r, TZ_E_CORRUPT, "corrupt stream: trailer says %llu records "
                            "in %llu chunks, found %llu in %llu",
                            (unsigned long long)get64(t + 4), (unsigned long long)get64(t + 12),
                            (unsigned long long)r->sec_count, (unsigned long long)r->sec_chunks);
            if (CRC_BAD(get32(t + 20), r->hash))
                return rerr(r, TZ_E_CORRUPT, "corrupt stream: stream hash mismatch "
                            "(chunks lost, reordered or altered)");
            int e = after_trailer(r);
            if (e <= 0) return e;
            continue;
        }
        if (tag != TAG_CHUNK)
            return rerr(r, TZ_E_CORRUPT, "corrupt stream: bad chunk tag after record %llu",
                        (unsigned long long)r->decoded);
        got = read_full(r, ch + 4, CHUNK_HDR - 4);
        if (got < 0) return rerr(r, TZ_E_IO, "read error: %s", strerror(errno));
        if (got < CHUNK_HDR - 4)
            return rerr(r, TZ_E_TRUNC, "truncated stream: ends inside a chunk header");
        uint32_t nrec = get32(ch + 4), zlen = get32(ch + 8), zcrc = get32(ch + 12);
        if (nrec == 0)
            return rerr(r, TZ_E_CORRUPT, "corrupt stream: empty chunk");
        if (r->rec_bytes * nrec > TZ_CHUNK_MAX)
            return rerr(r, TZ_E_LIMIT, "chunk of %llu bytes exceeds the limit of %u",
                        (unsigned long long)(r->rec_bytes * nrec), TZ_CHUNK_MAX);
        size_t raw = (size_t)(r->rec_bytes * nrec);
        if (zlen < 12 || zlen > ZSTD_compressBound(raw) + 64)
            return rerr(r, TZ_E_CORRUPT, "corrupt stream: chunk size %u impossible "
                        "for %u records", zlen, nrec);
        if (r->zcap < zlen) {
            unsigned char *z = realloc(r->zbuf, zlen);
            if (!z) return rerr(r, TZ_E_NOMEM, "out of memory");
            r->zbuf = z; r->zcap = zlen;
        }
        r->zlen = zlen;
        got = read_full(r, r->zbuf, zlen);
        if (got < 0) return rerr(r, TZ_E_IO, "read error: %s", strerror(errno));
        if ((size_t)got < zlen)
            return rerr(r, TZ_E_TRUNC, "truncated stream: ends inside a chunk "
                        "(after record %llu)", (unsigned long long)r->decoded);
        if (CRC_BAD(tz_crc32c(0, r->zbuf, zlen), zcrc))
            return rerr(r, TZ_E_CORRUPT, "corrupt stream: chunk checksum mismatch "
                        "(after record %llu)", (unsigned long long)r->decoded);
        /* frame must be one zstd frame with a content checksum */
        if (get32(r->zbuf) != ZSTD_MAGIC || !(r->zbuf[4] & 0x04))
            return rerr(r, TZ_E_CORRUPT, "corrupt stream: chunk is not a checksummed "
                        "zstd frame");
        size_t fsz = ZSTD_findFrameCompressedSize(r->zbuf, zlen);
        if (ZSTD_isError(fsz) || fsz != zlen)
            return rerr(r, TZ_E_CORRUPT, "corrupt stream: bad zstd frame in chunk "
                        "after record %llu", (unsigned long long)r->decoded);
        unsigned long long cs = ZSTD_getFrameContentSize(r->zbuf, zlen);
        if (cs != raw)
            return rerr(r, TZ_E_CORRUPT, "corrupt stream: chunk content size "
                        "disagrees with its record count");
        if (r->bcap < raw) {
            unsigned char *b = realloc(r->buf, raw);
            if (!b) return rerr(r, TZ_E_NOMEM, "out of memory");
            r->buf = b; r->bcap = raw;
        }
        size_t d = ZSTD_decompressDCtx(r->dctx, r->buf, raw, r->zbuf, zlen);
        if (ZSTD_isError(d) || d != raw)
            return rerr(r, TZ_E_CORRUPT, "corrupt stream: chunk after record %llu "
                        "does not decompress (%s)", (unsigned long long)r->decoded,
                        ZSTD_isError(d) ? ZSTD_getErrorName(d) : "short");
        r->hash = tz_crc32c(r->hash, ch, CHUNK_HDR);
        r->sec_chunks++;
        r->sec_count += nrec;
        r->decoded += nrec;
        r->blen = raw;
        r->bpos = 0;
        return 1;
    }
}

long tz_read(tz_reader *r, void *dst, size_t max)
{
    if (r->err) return r->err;
    if (r->state == 0) return rerr(r, TZ_E_ARG, "read before tz_next");
    size_t done = 0;
    unsigned char *out = dst;
    while (done < max) {
        if (r->bpos == r->blen) {
            int e = load_chunk(r);
            if (e < 0) return e;
            if (e == 0) break;
        }
        size_t avail = (r->blen - r->bpos) / r->rec_bytes;
        size_t k = max - done < avail ? max - done : avail;
        if (out) {
            memcpy(out, r->buf + r->bpos, k * r->rec_bytes);
            out += k * r->rec_bytes;
        }
        r->bpos += k * r->rec_bytes;
        done += k;
        if (done > LONG_MAX / 2) break;
    }
    r->count += done;
    return (long)done;
}

long tz_read_chunk(tz_reader *r, const void **frame, size_t *frame_len)
{
    if (r->err) return r->err;
    if (r->state == 0) return rerr(r, TZ_E_ARG, "read before tz_next");
    if (r->bpos != r->blen)
        return rerr(r, TZ_E_ARG, "tz_read_chunk in the middle of a chunk");
    int e = load_chunk(r);
    if (e <= 0) return e;
    long n = (long)(r->blen / r->rec_bytes);
    r->bpos = r->blen;
    r->count += (uint64_t)n;
    *frame = r->zbuf;
    *frame_len = r->zlen;
    return n;
}

long tz_read_as(tz_reader *r, int dtype, void *dst, size_t max)
{
    if (r->err) return r->err;
    if (r->state == 0) return rerr(r, TZ_E_ARG, "read before tz_next");
    if (dtype == r->h.dtype || dtype == 0) return tz_read(r, dst, max);
    size_t es = tz_dtype_size(dtype);
    if (!es) return rerr(r, TZ_E_ARG, "unknown dtype %d", dtype);
    uint64_t elems = tz_record_elems(&r->h);
    size_t done = 0;
    unsigned char *out = dst;
    while (done < max) {
        if (r->bpos == r->blen) {
            int e = load_chunk(r);
            if (e < 0) return e;
            if (e == 0) break;
        }
        size_t avail = (r->blen - r->bpos) / r->rec_bytes;
        size_t k = max - done < avail ? max - done : avail;
        tz_convert(out, dtype, r->buf + r->bpos, r->h.dtype, k * elems);
        out += k * elems * es;
        r->bpos += k * r->rec_bytes;
        done += k;
    }
    r->count += done;
    return (long)done;
}

long tz_read_f32(tz_reader *r, float *dst, size_t max)
{
    return tz_read_as(r, TZ_F32, dst, max);
}

long tz_read_f64(tz_reader *r, double *dst, size_t max)
{
    return tz_read_as(r, TZ_F64, dst, max);
}

int tz_expect_end(tz_reader *r)
{
    if (r->err) return r->err;
    if (r->state == 1) {
        long n = tz_read(r, NULL, SIZE_MAX);
        if (n < 0) return (int)n;
        if (n > 0) return rerr(r, TZ_E_ARG, "records left unread");
    }
    if (r->have_next == 1) {
        char a[80], b[80];
        tz_header_describe(&r->h, a, sizeof a);
        tz_header_describe(&r->next, b, sizeof b);
        return rerr(r, TZ_E_MISMATCH, "concatenated streams differ: %s%s%s then %s%s%s",
                    r->h.name[0] ? r->h.name : "", r->h.name[0] ? " " : "", a,
                    r->next.name[0] ? r->next.name : "", r->next.name[0] ? " " : "", b);
    }
    return 0;
}

int tz_read_all(tz_reader *r, int dtype, void **data, uint64_t *count)
{
    *data = NULL;
    *count = 0;
    if (dtype == 0) dtype = r->h.dtype;
    size_t rb = (size_t)(tz_record_elems(&r->h) * tz_dtype_size(dtype));
    size_t cap = 0, n = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (n == cap) {
            /* start near 1 MiB and double: memory follows the data read */
            size_t first = rb ? (size_t)(1u << 20) / rb : 64;
            size_t nc = cap ? cap * 2 : (first ? first : 1);
            if (rb && nc > SIZE_MAX / rb / 2) { free(buf); return rerr(r, TZ_E_NOMEM, "out of memory"); }
            unsigned char *b = realloc(buf, nc * rb);
            if (!b) { free(buf); return rerr(r, TZ_E_NOMEM, "out of memory"); }
            buf = b; cap = nc;
        }
        long k = tz_read_as(r, dtype, buf + n * rb, cap - n);
        if (k < 0) { free(buf); return (int)k; }
        if (k == 0) break;
        n += (size_t)k;
    }
    *data = buf;
    *count = n;
    return 0;
}

/* ---- models -------------------------------------------------------------- */

tz_model *tz_model_new(void)
{
    tz_model *m = calloc(1, sizeof *m);
    if (m) tz_header_init(&m->meta);
    return m;
}

void tz_model_free(tz_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        tz_header_clear(&m->t[i].h);
        free(m->t[i].data);
    }
    free(m->t);
    tz_header_clear(&m->meta);
    free(m);
}

const char *tz_model_error(const tz_model *m) { return m->err; }

tz_tensor *tz_model_find(const tz_model *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->t[i].h.name, name) == 0)
            return &m->t[i];
    return NULL;
}

int tz_model_add(tz_model *m, const char *name, int dtype, int ndim,
                 const uint64_t *shape, const void *data)
{
    if (ndim < 1 || ndim > TZ_RANK_MAX + 1 || strlen(name) > TZ_NAME_MAX || !name[0] ||
        strcmp(name, TZ_MODEL_SECTION) == 0)
        return TZ_E_ARG;
    tz_header h;
    tz_header_init(&h);
    snprintf(h.name, sizeof h.name, "%s", name);
    int e = tz_header_set_shape(&h, dtype, ndim - 1, shape + 1);
    if (e) return e;
    uint64_t rb = tz_record_bytes(&h);
    if (shape[0] > SIZE_MAX / rb) return TZ_E_LIMIT;
    size_t bytes = (size_t)(rb * shape[0]);
    void *copy = malloc(bytes ? bytes : 1);
    if (!copy) return TZ_E_NOMEM;
    if (bytes) memcpy(copy, data, bytes);
    tz_tensor *t = tz_model_find(m, name);
    if (t) {
        tz_header_clear(&t->h);
        free(t->data);
    } else {
        tz_tensor *nt = realloc(m->t, (m->n + 1) * sizeof *nt);
        if (!nt) { free(copy); return TZ_E_NOMEM; }
        m->t = nt;
        t = &m->t[m->n++];
    }
    t->h = h;
    t->count = shape[0];
    t->data = copy;
    return 0;
}

int tz_model_read_exact(tz_model *m, const char *name, int dtype,
                        uint64_t count, uint64_t elems, void *dst)
{
    tz_tensor *x = tz_model_find(m, name);
    if (!x || x->h.dtype != dtype || x->count != count ||
        tz_record_elems(&x->h) != elems) {
        snprintf(m->err, sizeof m->err, "checkpoint: tensor '%s' is "
                 "missing or has the wrong shape", name);
        return TZ_E_MISMATCH;
    }
    memcpy(dst, x->data, (size_t)(count * elems) * tz_dtype_size(dtype));
    return 0;
}

float *tz_model_get_f32(tz_model *m, const char *name, size_t *n)
{
    tz_tensor *t = tz_model_find(m, name);
    if (!t) {
        snprintf(m->err, sizeof m->err, "model has no tensor '%s'", name);
        return NULL;
    }
    size_t elems = (size_t)(t->count * tz_record_elems(&t->h));
    float *f = malloc((elems ? elems : 1) * sizeof(float));
    if (!f) { snprintf(m->err, sizeof m->err, "out of memory"); return NULL; }
    tz_convert(f, TZ_F32, t->data, t->h.dtype, elems);
    if (n) *n = elems;
    return f;
}

/* The model's attributes from section header h: a copy of its attributes,
 * with no name and an empty shape. */
static int meta_from(tz_header *meta, const tz_header *h)
{
    int e = tz_header_copy(meta, h);
    meta->name[0] = 0;
    meta->dtype = TZ_F32;
    meta->rank = 0;
    memset(meta->dims, 0, sizeof meta->dims);
    return e;
}

/* Model files (tz.h, formats/model-keys.md): either the model's attributes
 * sit on the first tensor's section (the compact form: that tensor then has
 * none of its own), or a first section named "model" with zero records
 * holds them and every tensor section keeps its own. */
tz_model *tz_model_read(tz_reader *r, char *err, size_t errsize)
{
    tz_model *m = tz_model_new();
    if (!m) { if (err) snprintf(err, errsize, "out of memory"); return NULL; }
    int e, first = 1;
    while ((e = tz_next(r)) == 1) {
        const tz_header *h = tz_reader_header(r);
        if (!h->name[0]) {
            if (err) snprintf(err, errsize, "not a model: a tensor has no name");
            goto fail;
        }
        if (strcmp(h->name, TZ_MODEL_SECTION) == 0) {
            if (first != 1) {
                if (err) snprintf(err, errsize, "corrupt model: a section named '%s' "
                                  "after the first (the name is reserved for the "
                                  "model's attributes)", TZ_MODEL_SECTION);
                goto fail;
            }
            long k = tz_read(r, NULL, SIZE_MAX);
            if (k < 0) {
                if (err) snprintf(err, errsize, "%s", tz_reader_error(r));
                goto fail;
            }
            if (k > 0) {
                if (err) snprintf(err, errsize, "corrupt model: the '%s' section holds "
                                  "records (the name is reserved for the model's "
                                  "attributes)", TZ_MODEL_SECTION);
                goto fail;
            }
            if (meta_from(&m->meta, h)) {
                if (err) snprintf(err, errsize, "out of memory");
                goto fail;
            }
            first = -1;   /* the model's attributes are read */
            continue;
        }
        if (tz_model_find(m, h->name)) {
            if (err) snprintf(err, errsize, "model has two tensors named '%s'", h->name);
            goto fail;
        }
        void *data;
        uint64_t count;
        e = tz_read_all(r, 0, &data, &count);
        if (e) {
            if (err) snprintf(err, errsize, "%s", tz_reader_error(r));
            goto fail;
        }
        tz_tensor *nt = realloc(m->t, (m->n + 1) * sizeof *nt);
        if (!nt) { free(data); if (err) snprintf(err, errsize, "out of memory"); goto fail; }
        m->t = nt;
        tz_tensor *t = &m->t[m->n++];
        tz_header_init(&t->h);
        t->count = count;
        t->data = data;
        if (first == 1) {
            /* compact form: the first section's attributes are the model's */
            e = meta_from(&m->meta, h);
            t->h = *h;
            t->h.attrs = NULL;
            t->h.n_attrs = 0;
        } else {
            e = tz_header_copy(&t->h, h);
        }
        if (e) {
            if (err) snprintf(err, errsize, "out of memory");
            goto fail;
        }
        first = 0;
    }
    if (e < 0) {
        if (err) snprintf(err, errsize, "%s", tz_reader_error(r));
        goto fail;
    }
    if (m->n == 0) {
        if (err) snprintf(err, errsize, "empty model file");
        goto fail;
    }
    return m;
fail:
    tz_model_free(m);
    return NULL;
}

tz_model *tz_model_load(const char *path, char *err, size_t errsize)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        if (err) snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return NULL;
    }
    tz_reader *r = tz_reader_new(f);
    tz_model *m = NULL;
    if (!r) {
        if (err) snprintf(err, errsize, "out of memory");
    } else {
        char e2[200];
        m = tz_model_read(r, e2, sizeof e2);
        if (!m && err) snprintf(err, errsize, "%s: %s", path, e2);
    }
    tz_reader_free(r);
    if (!is_stdin) fclose(f);
    return m;
}

/* Set every attribute of src on dst, in order (keys are validated again);
 * *bad gets the key that failed. */
static int attrs_merge(tz_header *dst, const tz_header *src, const char **bad)
{
    for (size_t k = 0; k < src->n_attrs; k++) {
        const tz_attr *a = &src->attrs[k];
        int e = a->type == TZ_ATTR_I64 ? tz_attr_set_i(dst, a->key, a->i)
              : a->type == TZ_ATTR_F64 ? tz_attr_set_f(dst, a->key, a->f)
              : a->type == TZ_ATTR_STR && a->s ? tz_attr_set_s(dst, a->key, a->s)
              : TZ_E_ARG;
        if (e) { *bad = a->key; return e; }
    }
    return 0;
}

/* One section: header h, then the records. */
static int write_section(tz_writer *w, const tz_header *h, const void *data,
                         uint64_t count)
{
    int e = tz_writer_begin(w, h);
    if (!e && count) e = tz_write(w, data, (size_t)count);
    if (!e) e = tz_writer_end(w);
    return e;
}

/* The layout rule is in tz.h and formats/model-keys.md: a leading "model"
 * section only when the first tensor has attributes of its own, so that
 * files without per-tensor attributes keep the compact form byte for byte. */
int tz_model_write(const tz_model *m, tz_writer *w)
{
    if (w->err) return w->err;
    for (size_t i = 0; i < m->n; i++) {
        const char *name = m->t[i].h.name;
        if (!name[0] || strcmp(name, TZ_MODEL_SECTION) == 0)
            return werr(w, TZ_E_ARG, "cannot write model: tensor name '%s' is %s", name,
                        name[0] ? "reserved for the model's attributes" : "empty");
    }
    int separate = m->n > 0 && m->t[0].h.n_attrs > 0;
    tz_header h;
    tz_header_init(&h);
    const char *bad = "";
    int e = 0;
    if (separate) {
        snprintf(h.name, sizeof h.name, "%s", TZ_MODEL_SECTION);
        h.dtype = TZ_U8;
        e = attrs_merge(&h, &m->meta, &bad);
        if (e) {
            tz_header_clear(&h);
            return werr(w, e, "cannot write model attribute '%s': %s", bad, tz_strerror(e));
        }
        e = write_section(w, &h, NULL, 0);
        tz_header_clear(&h);
        if (e) return e;
    }
    for (size_t i = 0; i < m->n; i++) {
        const tz_tensor *t = &m->t[i];
        e = tz_header_copy(&h, &t->h);
        if (e) {
            tz_header_clear(&h);
            return werr(w, e, "cannot write tensor '%s': %s", t->h.name, tz_strerror(e));
        }
        if (i == 0 && !separate && (e = attrs_merge(&h, &m->meta, &bad))) {
            tz_header_clear(&h);
            return werr(w, e, "cannot write model attribute '%s': %s", bad, tz_strerror(e));
        }
        e = write_section(w, &h, t->data, t->count);
        tz_header_clear(&h);
        if (e) return e;
    }
    return 0;
}

FILE *tz_atomic_open(const char *path, char **tmp)
{
    size_t n = strlen(path) + 32;
    char *t = malloc(n);
    if (!t) return NULL;
    snprintf(t, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(t);
    if (fd < 0) { free(t); return NULL; }
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    FILE *f = fdopen(fd, "wb");
    if (!f) { int e = errno; close(fd); unlink(t); free(t); errno = e; return NULL; }
    *tmp = t;
    return f;
}

int tz_atomic_commit(FILE *f, char *tmp, const char *path)
{
    int bad = fflush(f) != 0 || ferror(f);
    if (!bad) bad = fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) { bad = 1; e = errno; }
    if (!bad && rename(tmp, path) != 0) { bad = 1; e = errno; }
    if (bad) unlink(tmp);
    free(tmp);
    errno = e;
    return bad ? -1 : 0;
}

void tz_atomic_abort(FILE *f, char *tmp)
{
    if (f) fclose(f);
    if (tmp) { unlink(tmp); free(tmp); }
}

int tz_model_save(const tz_model *m, const char *path, char *err, size_t errsize)
{
    char *tmp;
    FILE *f = tz_atomic_open(path, &tmp);
    if (!f) {
        if (err) snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return TZ_E_IO;
    }
    tz_write_opts o;
    tz_write_opts_init(&o);
    tz_writer *w = tz_writer_new(f, &o);
    int e = w ? tz_model_write(m, w) : TZ_E_NOMEM;
    if (!e) e = tz_writer_close(w);
    if (e) {
        if (err) snprintf(err, errsize, "%s: %s", path, w ? tz_writer_error(w) : "out of memory");
        tz_writer_free(w);
        tz_atomic_abort(f, tmp);
        return e;
    }
    tz_writer_free(w);
    if (tz_atomic_commit(f, tmp, path) != 0) {
        if (err) snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return TZ_E_IO;
    }
    return 0;
}
