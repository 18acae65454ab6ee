/* test_tz.c - unit tests of the tensor stream library (lib/tz.c):
 * round trips of every dtype, chunking, concatenation, attributes and their
 * key grammar, models (with model and per-tensor attributes, both layouts,
 * the reserved name, out of memory at every allocation), conversions, and
 * detection of every truncation and byte flip.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "tz.h"

static int n_test, n_fail;

/* Failing allocations on demand, for the out-of-memory tests: after
 * alloc_budget more successful malloc/calloc/realloc calls (anywhere in the
 * process, libc included), every further one fails until the budget is
 * reset to -1.  The hook replaces glibc's malloc by interposition; builds
 * with a sanitizer that owns malloc (make check-asan) skip those tests. */
#if defined(__SANITIZE_ADDRESS__)
#define NO_ALLOC_HOOK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NO_ALLOC_HOOK 1
#endif
#endif
#if !defined(NO_ALLOC_HOOK) && defined(__GLIBC__)
#include <errno.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static long alloc_budget = -1;
static long alloc_live;   /* blocks allocated minus blocks freed: leak checks */
static int alloc_fails(void)
{
    if (alloc_budget < 0) return 0;
    if (alloc_budget == 0) { errno = ENOMEM; return 1; }
    alloc_budget--;
    return 0;
}
static void *alloc_count(void *p, long d)
{
    if (p) __atomic_add_fetch(&alloc_live, d, __ATOMIC_RELAXED);
    return p;
}
void *malloc(size_t n) { return alloc_fails() ? NULL : alloc_count(__libc_malloc(n), 1); }
void *calloc(size_t k, size_t n)
{
    return alloc_fails() ? NULL : alloc_count(__libc_calloc(k, n), 1);
}
void *realloc(void *p, size_t n)
{
    if (alloc_fails()) return NULL;
    void *q = __libc_realloc(p, n);
    if (!p) alloc_count(q, 1);
    else if (!q && n == 0) alloc_count(p, -1);   /* realloc(p, 0) freed p */
    return q;
}
void free(void *p) { alloc_count(p, -1); __libc_free(p); }
#define HAVE_ALLOC_HOOK 1
#endif

static void check(int cond, const char *what)
{
    n_test++;
    if (!cond) n_fail++;
    printf("%s %d - %s\n", cond ? "ok" : "not ok", n_test, what);
}

/* Write a stream into a malloc'd buffer. */
static unsigned char *mem_stream(const tz_header *h, const void *data, size_t n,
                                 size_t chunk, int threads, size_t *len)
{
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    tz_write_opts o;
    tz_write_opts_init(&o);
    o.chunk_bytes = chunk;
    o.threads = threads;
    tz_writer *w = tz_writer_new(f, &o);
    int e = tz_writer_begin(w, h);
    /* write in uneven pieces */
    size_t done = 0, rb = (size_t)tz_record_bytes(h), step = 1;
    while (!e && done < n) {
        size_t k = n - done < step ? n - done : step;
        e = tz_write(w, (const char *)data + done * rb, k);
        done += k;
        step = step * 3 + 1;
    }
    if (!e) e = tz_writer_close(w);
    tz_writer_free(w);
    fclose(f);
    if (e) { free(buf); return NULL; }
    *len = sz;
    return (unsigned char *)buf;
}

/* Read a whole single-tensor stream; returns 0 or the error code. */
static int mem_read(const unsigned char *buf, size_t len, void **data,
                    uint64_t *count, tz_header *hout, char *msg, size_t msz)
{
    FILE *f = fmemopen((void *)buf, len ? len : 1, "rb");
    if (len == 0) { fclose(f); f = fopen("/dev/null", "rb"); }
    tz_reader *r = tz_reader_new(f);
    int e = tz_next(r);
    if (e == 0) e = TZ_E_EMPTY;
    if (e == 1) e = tz_read_all(r, 0, data, count);
    if (!e) {
        e = tz_expect_end(r);
        if (e) { free(*data); *data = NULL; }
    }
    if (!e && hout) {
        e = tz_header_copy(hout, tz_reader_header(r));
        if (e) { free(*data); *data = NULL; }
    }
    if (e && msg) snprintf(msg, msz, "%s", e == TZ_E_EMPTY ? "empty" : tz_reader_error(r));
    tz_reader_free(r);
    fclose(f);
    return e;
}

static void test_roundtrip_dtypes(void)
{
    rng_t rng;
    rng_seed(&rng, 1);
    for (int dt = 1; dt <= 8; dt++) {
        tz_header h;
        tz_header_init(&h);
        uint64_t dims[2] = {3, 5};
        tz_header_set_shape(&h, dt, 2, dims);
        tz_attr_set_s(&h, "modality.name", "image");
        tz_attr_set_i(&h, "data.count_hint", -42);
        tz_attr_set_f(&h, "data.scale", 0.125);
        size_t n = 1000, bytes = n * (size_t)tz_record_bytes(&h);
        unsigned char *data = malloc(bytes);
        for (size_t i = 0; i < bytes; i++) data[i] = (unsigned char)rng_next(&rng);
        for (int threads = 1; threads <= 2; threads++) {
            size_t len;
            unsigned char *s = mem_stream(&h, data, n, 997, threads, &len);
            void *back = NULL;
            uint64_t cnt = 0;
            tz_header h2;
            tz_header_init(&h2);
            int e = s ? mem_read(s, len, &back, &cnt, &h2, NULL, 0) : -100;
            char what[120];
            snprintf(what, sizeof what, "round trip %s, %d thread(s), 1000 records in "
                     "small chunks", tz_dtype_name(dt), threads);
            check(e == 0 && cnt == n && memcmp(back, data, bytes) == 0 &&
                  tz_header_same_tensor(&h, &h2) &&
                  strcmp(tz_attr_get_s(&h2, "modality.name", ""), "image") == 0 &&
                  tz_attr_get_i(&h2, "data.count_hint", 0) == -42 &&
                  tz_attr_get_f(&h2, "data.scale", 0) == 0.125, what);
            free(back);
            free(s);
            tz_header_clear(&h2);
        }
        free(data);
        tz_header_clear(&h);
    }
}

static void test_concat(void)
{
    tz_header h;
    tz_header_init(&h);
    uint64_t d = 4;
    tz_header_set_shape(&h, TZ_F32, 1, &d);
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[4] = {-1, -2, -3, -4};
    size_t la, lb;
    unsigned char *sa = mem_stream(&h, a, 2, 1 << 20, 1, &la);
    unsigned char *sb = mem_stream(&h, b, 1, 1 << 20, 1, &lb);
    unsigned char *cat = malloc(la + lb);
    memcpy(cat, sa, la);
    memcpy(cat + la, sb, lb);
    void *back;
    uint64_t cnt;
    int e = mem_read(cat, la + lb, &back, &cnt, NULL, NULL, 0);
    check(e == 0 && cnt == 3 && memcmp(back, a, 32) == 0 &&
          memcmp((float *)back + 8, b, 16) == 0, "cat a.tz b.tz reads as one stream");
    if (!e) free(back);
    /* unequal shapes: a clear error */
    uint64_t d5 = 5;
    tz_header_set_shape(&h, TZ_F32, 1, &d5);
    float c[5] = {0};
    size_t lc;
    unsigned char *sc = mem_stream(&h, c, 1, 1 << 20, 1, &lc);
    unsigned char *bad = malloc(la + lc);
    memcpy(bad, sa, la);
    memcpy(bad + la, sc, lc);
    char msg[256];
    e = mem_read(bad, la + lc, &back, &cnt, NULL, msg, sizeof msg);
    check(e == TZ_E_MISMATCH && strstr(msg, "f32 [4]") && strstr(msg, "f32 [5]"),
          "concatenation of unequal shapes is a mismatch error naming both");
    printf("# message: %s\n", msg);
    free(sa); free(sb); free(sc); free(cat); free(bad);
    tz_header_clear(&h);
}

/* Every truncation and every single-byte flip of a small stream fails. */
static void test_damage(void)
{
    tz_header h;
    tz_header_init(&h);
    uint64_t d = 7;
    tz_header_set_shape(&h, TZ_F32, 1, &d);
    tz_attr_set_s(&h, "modality.name", "x");
    float data[7 * 40];
    for (int i = 0; i < 7 * 40; i++) data[i] = (float)(i % 13) * 0.5f;
    size_t len;
    unsigned char *s = mem_stream(&h, data, 40, 7 * 4 * 12, 1, &len);
    int bad_trunc = 0, bad_flip = 0;
    for (size_t cut = 0; cut < len; cut++) {
        void *back = NULL;
        uint64_t cnt;
        int e = mem_read(s, cut, &back, &cnt, NULL, NULL, 0);
        if (e == 0) { bad_trunc++; free(back); }
    }
    check(bad_trunc == 0, "every truncation of a 4-chunk stream is detected");
    unsigned char *c = malloc(len);
    for (size_t pos = 0; pos < len; pos++)
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(c, s, len);
            c[pos] ^= (unsigned char)(1u << bit);
            void *back = NULL;
            uint64_t cnt;
            int e = mem_read(c, len, &back, &cnt, NULL, NULL, 0);
            if (e == 0) {
                bad_flip++;
                free(back);
                if (bad_flip < 5) printf("# undetected flip at byte %zu bit %d\n", pos, bit);
            }
        }
    check(bad_flip == 0, "every single-bit flip of a 4-chunk stream is detected");
    printf("# stream of %zu bytes swept\n", len);
    free(c);
    free(s);
    tz_header_clear(&h);
}

static void test_model(void)
{
    tz_model *m = tz_model_new();
    float W[6] = {1, 2, 3, 4, 5, 6}, b[3] = {7, 8, 9};
    uint64_t sw[2] = {2, 3}, sb[1] = {3};
    tz_attr_set_s(&m->meta, "model.type", "rbm");
    int e = tz_model_add(m, "W", TZ_F32, 2, sw, W);
    e |= tz_model_add(m, "hbias", TZ_F32, 1, sb, b);
    char path[] = "/tmp/rbmkit-test-model-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char err[256];
    e |= tz_model_save(m, path, err, sizeof err);
    tz_model *m2 = tz_model_load(path, err, sizeof err);
    int ok = !e && m2 && m2->n == 2;
    if (ok) {
        tz_tensor *t = tz_model_find(m2, "W");
        size_t n;
        float *hb = tz_model_get_f32(m2, "hbias", &n);
        ok = t && t->count == 2 && t->h.rank == 1 && t->h.dims[0] == 3 &&
             memcmp(t->data, W, sizeof W) == 0 && hb && n == 3 &&
             memcmp(hb, b, sizeof b) == 0 &&
             strcmp(tz_attr_get_s(&m2->meta, "model.type", ""), "rbm") == 0 &&
             tz_attr_get(&t->h, "model.type") == NULL;
        free(hb);
    }
    check(ok, "model save/load keeps tensors, shapes and model attributes");
    check(tz_model_get_f32(m2 ? m2 : m, "nope", NULL) == NULL &&
          strstr(tz_model_error(m2 ? m2 : m), "nope"), "missing tensor names itself");
    unlink(path);
    tz_model_free(m);
    tz_model_free(m2);
}

/* ---- model files with per-tensor attributes ------------------------------ */

static int attrs_equal(const tz_header *a, const tz_header *b)
{
    if (a->n_attrs != b->n_attrs) return 0;
    for (size_t i = 0; i < a->n_attrs; i++) {
        const tz_attr *x = &a->attrs[i], *y = &b->attrs[i];
        if (strcmp(x->key, y->key) || x->type != y->type) return 0;
        if (x->type == TZ_ATTR_I64 && x->i != y->i) return 0;
        if (x->type == TZ_ATTR_F64 && memcmp(&x->f, &y->f, sizeof x->f)) return 0;
        if (x->type == TZ_ATTR_STR && strcmp(x->s, y->s)) return 0;
    }
    return 1;
}

/* Equal meta, tensors in the same order with equal names, dtypes, shapes,
 * counts, attributes and data bytes.  what gets the first difference. */
static int models_equal(const tz_model *a, const tz_model *b, char *what, size_t wsz)
{
    snprintf(what, wsz, "equal");
    if (!attrs_equal(&a->meta, &b->meta)) { snprintf(what, wsz, "model attributes"); return 0; }
    if (a->n != b->n) { snprintf(what, wsz, "%zu vs %zu tensors", a->n, b->n); return 0; }
    for (size_t i = 0; i < a->n; i++) {
        const tz_tensor *x = &a->t[i], *y = &b->t[i];
        snprintf(what, wsz, "tensor %zu '%s'", i, x->h.name);
        if (!tz_header_same_tensor(&x->h, &y->h) || x->count != y->count ||
            !attrs_equal(&x->h, &y->h))
            return 0;
        size_t bytes = (size_t)(x->count * tz_record_bytes(&x->h));
        if (bytes && memcmp(x->data, y->data, bytes)) return 0;
    }
    snprintf(what, wsz, "equal");
    return 1;
}

/* tz_model_write into a malloc'd buffer; *e gets the code, msg the writer's
 * message. */
static unsigned char *model_to_mem(const tz_model *m, int threads, size_t *len,
                                   int *e, char *msg, size_t msz)
{
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    tz_write_opts o;
    tz_write_opts_init(&o);
    o.threads = threads;
    o.chunk_bytes = 40;        /* several chunks per tensor */
    tz_writer *w = tz_writer_new(f, &o);
    *e = w ? tz_model_write(m, w) : TZ_E_NOMEM;
    if (!*e) *e = tz_writer_close(w);
    if (msg) snprintf(msg, msz, "%s", *e && w ? tz_writer_error(w) : "");
    tz_writer_free(w);
    fclose(f);
    *len = sz;
    return (unsigned char *)buf;
}

static tz_model *model_from_mem(const unsigned char *buf, size_t len, char *err, size_t esz)
{
    FILE *f = fmemopen((void *)buf, len ? len : 1, "rb");
    tz_reader *r = tz_reader_new(f);
    tz_model *m = tz_model_read(r, err, esz);
    tz_reader_free(r);
    fclose(f);
    return m;
}

/* The sections of a stream as the plain reader sees them: names, counts,
 * attribute counts, written to out ("model:0:6 layer.0.W:4:4 ..."). */
static void list_sections(const unsigned char *buf, size_t len, char *out, size_t osz)
{
    FILE *f = fmemopen((void *)buf, len, "rb");
    tz_reader *r = tz_reader_new(f);
    size_t n = 0;
    out[0] = 0;
    int e;
    while ((e = tz_next(r)) == 1 && n < osz) {
        const tz_header *h = tz_reader_header(r);
        long k = tz_read(r, NULL, SIZE_MAX);
        n += (size_t)snprintf(out + n, osz - n, "%s%s:%ld:%zu", n ? " " : "", h->name, k,
                              h->n_attrs);
    }
    if (e < 0 && n < osz) snprintf(out + n, osz - n, " error %s", tz_reader_error(r));
    tz_reader_free(r);
    fclose(f);
}

/* A small deep model: attributes on the model, on its first tensor and on
 * others, the same key on the model and on a tensor, a tensor without
 * attributes and one without records. */
static tz_model *deep_model(int meta_attrs, int first_attrs, int other_attrs)
{
    tz_model *m = tz_model_new();
    float W0[4 * 3], b0[4];
    double W1[3 * 2 * 2];
    uint8_t lab[5] = {0, 1, 2, 254, 255};
    for (int i = 0; i < 12; i++) { W0[i] = (float)i * 0.25f - 1; W1[i] = -(double)i / 3; }
    for (int i = 0; i < 4; i++) b0[i] = (float)i;
    W0[5] = -0.0f;
    uint64_t s0[2] = {4, 3}, sb[1] = {4}, s1[3] = {3, 2, 2}, sl[1] = {5}, se[2] = {0, 3};
    int e = tz_model_add(m, "layer.0.W", TZ_F32, 2, s0, W0);
    if (!e) e = tz_model_add(m, "layer.0.vbias", TZ_F32, 1, sb, b0);
    if (!e) e = tz_model_add(m, "labels", TZ_U8, 1, sl, lab);
    if (!e) e = tz_model_add(m, "layer.1.W", TZ_F64, 3, s1, W1);
    if (!e) e = tz_model_add(m, "empty", TZ_I32, 2, se, NULL);
    if (!e && meta_attrs) {
        tz_header *h = &m->meta;
        e = tz_attr_set_s(h, "model.type", "dbn");
        if (!e) e = tz_attr_set_s(h, "rbmkit.version", "0.1.0");
        if (!e) e = tz_attr_set_i(h, "dbn.layers", 2);
        if (!e) e = tz_attr_set_s(h, "layer.0.unit", "bernoulli");
        if (!e) e = tz_attr_set_s(h, "layer.1.unit", "gaussian");
        if (!e) e = tz_attr_set_f(h, "train.learning_rate", 0.05);
    }
    if (!e && first_attrs) {
        tz_header *h = &tz_model_find(m, "layer.0.W")->h;
        e = tz_attr_set_i(h, "edge.0.from", 0);
        if (!e) e = tz_attr_set_i(h, "edge.0.to", 1);
        if (!e) e = tz_attr_set_f(h, "edge.0.w_scale", 2.0);
        if (!e) e = tz_attr_set_s(h, "note", "first tensor");
        if (!e) e = tz_attr_set_i(h, "model.type", -7);   /* a tensor's own, not the model's */
    }
    if (!e && other_attrs) {
        e = tz_attr_set_s(&tz_model_find(m, "layer.0.vbias")->h, "layer.0.unit", "softmax");
        if (!e) e = tz_attr_set_i(&tz_model_find(m, "layer.1.W")->h, "edge.1.from", 1);
        if (!e) e = tz_attr_set_f(&tz_model_find(m, "layer.1.W")->h, "edge.1.w_scale", -0.5);
        if (!e) e = tz_attr_set_s(&tz_model_find(m, "empty")->h, "data.source", "none");
    }
    if (e) { tz_model_free(m); return NULL; }
    return m;
}

static void test_model_tensor_attrs(void)
{
    static const struct { int meta, first, other; const char *name, *layout; } cases[] = {
        {1, 1, 1, "model, first and other tensors have attributes",
         "model:0:6 layer.0.W:4:5 layer.0.vbias:4:1 labels:5:0 layer.1.W:3:2 empty:0:1"},
        {0, 1, 0, "only the first tensor has attributes",
         "model:0:0 layer.0.W:4:5 layer.0.vbias:4:0 labels:5:0 layer.1.W:3:0 empty:0:0"},
        {1, 0, 1, "first tensor without attributes, others with",
         "layer.0.W:4:6 layer.0.vbias:4:1 labels:5:0 layer.1.W:3:2 empty:0:1"},
        {1, 0, 0, "no per-tensor attributes (as rbm-train writes)",
         "layer.0.W:4:6 layer.0.vbias:4:0 labels:5:0 layer.1.W:3:0 empty:0:0"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int threads = 1; threads <= 2; threads++) {
            tz_model *m = deep_model(cases[c].meta, cases[c].first, cases[c].other);
            size_t len = 0;
            int e = -100;
            char msg[256] = "", err[256] = "", diff[300] = "", secs[600] = "", what[1200];
            unsigned char *buf = m ? model_to_mem(m, threads, &len, &e, msg, sizeof msg) : NULL;
            tz_model *back = !e ? model_from_mem(buf, len, err, sizeof err) : NULL;
            int same = m && back && models_equal(m, back, diff, sizeof diff);
            if (!e) list_sections(buf, len, secs, sizeof secs);
            snprintf(what, sizeof what, "model round trip, %s (%d thread%s): %s%s%s",
                     cases[c].name, threads, threads > 1 ? "s" : "",
                     e ? msg : back ? diff : err, threads == 1 ? "; sections " : "",
                     threads == 1 ? secs : "");
            check(!e && same, what);
            if (threads == 1) {
                snprintf(what, sizeof what, "layout: %s", cases[c].layout);
                check(!e && strcmp(secs, cases[c].layout) == 0, what);
            }
            tz_model_free(back);
            tz_model_free(m);
            free(buf);
        }

    /* the compact form: the first section carries exactly the model's
     * attributes, in order, as before the model section existed */
    tz_model *m = deep_model(1, 0, 0);
    size_t len = 0;
    int e = -100;
    unsigned char *buf = m ? model_to_mem(m, 1, &len, &e, NULL, 0) : NULL;
    tz_header h1;
    tz_header_init(&h1);
    void *d = NULL;
    uint64_t cnt;
    FILE *f = fmemopen(buf ? (void *)buf : (void *)"", len ? len : 1, "rb");
    tz_reader *r = tz_reader_new(f);
    int ok = !e && r && tz_next(r) == 1 && tz_header_copy(&h1, tz_reader_header(r)) == 0 &&
             tz_read_all(r, 0, &d, &cnt) == 0;
    check(ok && strcmp(h1.name, "layer.0.W") == 0 && attrs_equal(&h1, &m->meta),
          "compact form: the first tensor's section holds the model's attributes");
    free(d);
    tz_reader_free(r);
    fclose(f);
    tz_header_clear(&h1);
    free(buf);

    /* the same model through tz_model_save / tz_model_load */
    tz_model_free(m);
    m = deep_model(1, 1, 1);
    char path[] = "/tmp/rbmkit-test-model-XXXXXX", err[256] = "", diff[200] = "";
    int fd = mkstemp(path);
    close(fd);
    e = m ? tz_model_save(m, path, err, sizeof err) : -100;
    tz_model *back = e ? NULL : tz_model_load(path, err, sizeof err);
    check(back && models_equal(m, back, diff, sizeof diff),
          "tz_model_save / tz_model_load keep model and per-tensor attributes");
    unlink(path);
    tz_model_free(back);
    tz_model_free(m);
}

/* Write a raw stream of sections: name, dtype u8, rank 0, n records, one
 * attribute k.x = i. */
static unsigned char *raw_sections(const char *const *names, const int *counts, int n,
                                   size_t *len)
{
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    tz_write_opts o;
    tz_write_opts_init(&o);
    o.threads = 1;
    tz_writer *w = tz_writer_new(f, &o);
    unsigned char rec[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int i = 0; i < n; i++) {
        tz_header h;
        tz_header_init(&h);
        h.dtype = TZ_U8;
        snprintf(h.name, sizeof h.name, "%s", names[i]);
        tz_attr_set_i(&h, "k.x", i);
        tz_writer_begin(w, &h);
        tz_write(w, rec, (size_t)counts[i]);
        tz_header_clear(&h);
    }
    tz_writer_close(w);
    tz_writer_free(w);
    fclose(f);
    *len = sz;
    return (unsigned char *)buf;
}

static void test_model_reserved_name(void)
{
    tz_model *m = tz_model_new();
    uint64_t s1[1] = {2};
    float v[2] = {1, 2};
    check(tz_model_add(m, TZ_MODEL_SECTION, TZ_F32, 1, s1, v) == TZ_E_ARG && m->n == 0,
          "tz_model_add refuses the reserved tensor name 'model'");
    tz_model_add(m, "a", TZ_F32, 1, s1, v);
    tz_model_add(m, "b", TZ_F32, 1, s1, v);
    snprintf(m->t[1].h.name, sizeof m->t[1].h.name, "%s", TZ_MODEL_SECTION);
    size_t len;
    int e;
    char msg[256];
    unsigned char *buf = model_to_mem(m, 1, &len, &e, msg, sizeof msg);
    check(e == TZ_E_ARG && len == 0 && strstr(msg, "reserved"),
          "tz_model_write refuses a tensor named 'model' before writing anything");
    printf("# message: %s\n", msg);
    free(buf);
    tz_model_free(m);

    /* readers: a "model" section holding records, or not first, is an error;
     * a lone "model" section is an empty model */
    static const struct { const char *names[3]; int counts[3], n; const char *what; } bad[] = {
        {{"model", "W"}, {2, 3}, 2, "a 'model' section with records is an error"},
        {{"W", "model"}, {3, 0}, 2, "a 'model' section after the first is an error"},
        {{"model", "model2", "model"}, {0, 1, 0}, 3, "two 'model' sections are an error"},
        {{"model"}, {0}, 1, "a 'model' section alone is an empty model"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *s = raw_sections(bad[i].names, bad[i].counts, bad[i].n, &len);
        char err[256] = "", what[400];
        tz_model *mm = model_from_mem(s, len, err, sizeof err);
        snprintf(what, sizeof what, "%s: %s", bad[i].what, err);
        check(!mm && err[0], what);
        tz_model_free(mm);
        free(s);
    }
    /* a "model" section with zero records first: its attributes are the
     * model's, the next tensor keeps its own (dtype and shape are ignored) */
    const char *names[2] = {"model", "W"};
    int counts[2] = {0, 3};
    unsigned char *s = raw_sections(names, counts, 2, &len);
    char err[256] = "";
    tz_model *mm = model_from_mem(s, len, err, sizeof err);
    check(mm && mm->n == 1 && tz_attr_get_i(&mm->meta, "k.x", -1) == 0 &&
          mm->meta.n_attrs == 1 && tz_attr_get_i(&mm->t[0].h, "k.x", -1) == 1 &&
          mm->t[0].h.n_attrs == 1 && mm->t[0].count == 3,
          "a leading 'model' section holds the model's attributes");
    tz_model_free(mm);
    free(s);
}

/* Out of memory at every allocation of tz_model_read and tz_model_write in
 * turn: each either fails with a message or gives the complete model;
 * never a model with attributes missing. */
static void test_model_oom(void)
{
#ifdef HAVE_ALLOC_HOOK
    tz_model *m = deep_model(1, 1, 1), *m2 = deep_model(1, 0, 1);
    if (!m || !m2) {
        check(0, "tz_model_read out of memory: test model built");
        check(0, "tz_model_write out of memory: test model built");
        tz_model_free(m);
        tz_model_free(m2);
        return;
    }
    int bad_read = 0, nomem_read = 0, bad_write = 0, nomem_write = 0, leaks = 0;
    long runs_read = 0, runs_write = 0;
    for (int pass = 0; pass < 2; pass++) {
        const tz_model *src = pass ? m2 : m;
        size_t len;
        int e;
        unsigned char *buf = model_to_mem(src, 1, &len, &e, NULL, 0);
        for (long budget = 0; !e; budget++) {
            long live = alloc_live;
            FILE *f = fmemopen(buf, len, "rb");
            tz_reader *r = tz_reader_new(f);
            char err[256] = "", diff[200];
            alloc_budget = budget;
            tz_model *back = tz_model_read(r, err, sizeof err);
            alloc_budget = -1;
            runs_read++;
            if (back) {
                if (!models_equal(src, back, diff, sizeof diff)) {
                    bad_read++;
                    printf("# after %ld allocations: a model read differs: %s\n", budget, diff);
                }
            } else if (!err[0]) {
                bad_read++;
            } else if (strstr(err, "out of memory")) {
                nomem_read++;
            }
            tz_model_free(back);
            tz_reader_free(r);
            fclose(f);
            if (alloc_live != live) {
                leaks++;
                printf("# read after %ld allocations: %ld blocks not freed\n", budget,
                       alloc_live - live);
            }
            if (back) break;
            if (budget > 100000) { bad_read++; break; }
        }
        free(buf);
        for (long budget = 0; !e; budget++) {
            long live = alloc_live;
            char *out = NULL;
            size_t sz = 0;
            FILE *f = open_memstream(&out, &sz);
            tz_write_opts o;
            tz_write_opts_init(&o);
            o.threads = 1;
            o.chunk_bytes = 40;
            tz_writer *w = tz_writer_new(f, &o);
            alloc_budget = budget;
            int we = tz_model_write(src, w);
            if (!we) we = tz_writer_close(w);
            alloc_budget = -1;
            runs_write++;
            const char *msg = we ? tz_writer_error(w) : "";
            if (we && (!msg[0] || strcmp(msg, "success") == 0)) bad_write++;
            if (we && strstr(msg, "out of memory")) nomem_write++;
            tz_writer_free(w);
            fclose(f);
            if (!we) {
                char err[256], diff[200];
                tz_model *back = model_from_mem((unsigned char *)out, sz, err, sizeof err);
                if (!back || !models_equal(src, back, diff, sizeof diff)) bad_write++;
                tz_model_free(back);
            }
            free(out);
            if (alloc_live != live) {
                leaks++;
                printf("# write after %ld allocations: %ld blocks not freed\n", budget,
                       alloc_live - live);
            }
            if (!we) break;
            if (budget > 100000) { bad_write++; break; }
        }
    }
    printf("# %ld reads, %ld writes with failing allocations\n", runs_read, runs_write);
    check(bad_read == 0 && nomem_read > 0,
          "tz_model_read out of memory at each allocation: NULL and a message, "
          "or the whole model");
    check(bad_write == 0 && nomem_write > 0,
          "tz_model_write out of memory at each allocation: an error with a message, "
          "or the whole model");
    check(leaks == 0, "no memory leaks on the out-of-memory paths");
    tz_model_free(m);
    tz_model_free(m2);
#else
    check(1, "tz_model_read out of memory # SKIP no allocation hook in this build");
    check(1, "tz_model_write out of memory # SKIP no allocation hook in this build");
    check(1, "no memory leaks on the out-of-memory paths # SKIP no allocation hook");
#endif
}

static void test_keys_and_limits(void)
{
    /* dotted segments of [a-z0-9_]+; a segment may start with or be digits */
    const char *valid[] = {"modality.name", "rbm.k2", "layer.0.unit", "a.10",
                           "edge.2.w_scale", "a.2b", "_x.0_", "7", NULL};
    const char *invalid[] = {"Layer.0", "a..b", ".a", "a.", "a.0B", "", "Modality",
                             "a-b", "a b", "layer.0.Unit", NULL};
    char what[200];
    for (int i = 0; valid[i]; i++) {
        snprintf(what, sizeof what, "attribute key '%s' is valid", valid[i]);
        check(tz_attr_valid_key(valid[i]) == 1, what);
    }
    for (int i = 0; invalid[i]; i++) {
        snprintf(what, sizeof what, "attribute key '%s' is invalid", invalid[i]);
        check(tz_attr_valid_key(invalid[i]) == 0, what);
    }
    /* the length limit is unchanged: 128 bytes, digits count like letters */
    char key[TZ_KEY_MAX + 2];
    for (int i = 0; i < TZ_KEY_MAX; i++)  /* "01.345.789.123. ... .67" */
        key[i] = i % 4 == 2 ? '.' : (char)('0' + i % 10);
    key[TZ_KEY_MAX] = 0;
    int ok128 = tz_attr_valid_key(key);
    key[TZ_KEY_MAX] = '9';
    key[TZ_KEY_MAX + 1] = 0;
    check(ok128 && !tz_attr_valid_key(key),
          "a key of 128 bytes (digit segments) is valid, one of 129 is not");
    /* numeric segments pass through the writer and the reader's checks */
    {
        tz_header h, h2;
        tz_header_init(&h);
        tz_header_init(&h2);
        uint64_t d = 2;
        tz_header_set_shape(&h, TZ_U8, 1, &d);
        int e = tz_attr_set_s(&h, "layer.0.unit", "bernoulli");
        if (!e) e = tz_attr_set_i(&h, "edge.1.from", 0);
        if (!e) e = tz_attr_set_f(&h, "a.10", 0.5);
        unsigned char rec[4] = {1, 2, 3, 4};
        size_t len = 0;
        unsigned char *sbuf = e ? NULL : mem_stream(&h, rec, 2, 1 << 20, 1, &len);
        void *back = NULL;
        uint64_t cnt = 0;
        e = sbuf ? mem_read(sbuf, len, &back, &cnt, &h2, NULL, 0) : -100;
        check(e == 0 && cnt == 2 &&
              strcmp(tz_attr_get_s(&h2, "layer.0.unit", ""), "bernoulli") == 0 &&
              tz_attr_get_i(&h2, "edge.1.from", -1) == 0 &&
              tz_attr_get_f(&h2, "a.10", 0) == 0.5,
              "keys with numeric segments are written and read back");
        check(tz_attr_set_i(&h, "layer.0.Unit", 1) == TZ_E_ARG &&
              tz_attr_set_i(&h, "layer..0", 1) == TZ_E_ARG,
              "setting an invalid key is refused");
        free(back);
        free(sbuf);
        tz_header_clear(&h);
        tz_header_clear(&h2);
    }
    tz_header h;
    tz_header_init(&h);
    uint64_t big[2] = {1u << 20, 1u << 20}, zero[1] = {0};
    check(tz_header_set_shape(&h, TZ_F32, 2, big) == TZ_E_LIMIT,
          "record larger than the limit is refused");
    check(tz_header_set_shape(&h, TZ_F32, 1, zero) == TZ_E_ARG,
          "zero dimension is refused");
    uint64_t ovf[4] = {UINT64_MAX / 2, 3, 3, 3};
    check(tz_header_set_shape(&h, TZ_F64, 4, ovf) == TZ_E_LIMIT,
          "dimension product overflow is refused");
    tz_header_clear(&h);
}

static void test_convert(void)
{
    float f[6] = {-1.5f, 0.4f, 255.6f, 300, NAN, 2.5f};
    uint8_t u[6];
    tz_convert(u, TZ_U8, f, TZ_F32, 6);
    check(u[0] == 0 && u[1] == 0 && u[2] == 255 && u[3] == 255 && u[4] == 0 && u[5] == 2,
          "f32 -> u8 rounds to nearest even and saturates; NaN -> 0");
    uint8_t px[3] = {0, 128, 255};
    float g[3];
    tz_convert(g, TZ_F32, px, TZ_U8, 3);
    check(g[0] == 0 && g[1] == 128 && g[2] == 255, "u8 -> f32 exact");
    int64_t big = (int64_t)1 << 60;
    int64_t out;
    tz_convert(&out, TZ_I64, &big, TZ_I64, 1);
    check(out == big, "i64 copies exactly");
}

static void test_empty_stream(void)
{
    tz_header h;
    tz_header_init(&h);
    uint64_t d = 3;
    tz_header_set_shape(&h, TZ_U8, 1, &d);
    size_t len;
    unsigned char *s = mem_stream(&h, NULL, 0, 1 << 20, 1, &len);
    void *back = NULL;
    uint64_t cnt = 99;
    int e = mem_read(s, len, &back, &cnt, NULL, NULL, 0);
    check(e == 0 && cnt == 0, "a stream of zero records is valid and reads as 0");
    free(back);
    free(s);
    tz_header_clear(&h);
}

static void test_crc(void)
{
    check(tz_crc32c(0, "123456789", 9) == 0xE3069283u, "CRC-32C check value of '123456789'");
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 7 + 3);
    uint32_t whole = tz_crc32c(0, buf, 1000);
    uint32_t parts = tz_crc32c(tz_crc32c(tz_crc32c(0, buf, 3), buf + 3, 500), buf + 503, 497);
    check(whole == parts, "CRC-32C continues across unaligned pieces");
}

/* Chunk copying (tz_read_chunk + tz_write_frame), as tensor cat uses it:
 * a concatenation of two sections copied after two records written the
 * usual way reads back as all the records, in order. */
static void test_chunk_copy(void)
{
    tz_header h;
    tz_header_init(&h);
    uint64_t d = 3;
    tz_header_set_shape(&h, TZ_I32, 1, &d);
    int32_t a[3 * 50], pre[6] = {-1, -2, -3, -4, -5, -6};
    for (int i = 0; i < 150; i++) a[i] = i * 7 - 100;
    size_t la;
    unsigned char *sa = mem_stream(&h, a, 50, 3 * 4 * 8, 1, &la);
    unsigned char *two = malloc(2 * la);
    memcpy(two, sa, la);
    memcpy(two + la, sa, la);
    for (int threads = 1; threads <= 2; threads++) {
        char *buf = NULL;
        size_t sz = 0;
        FILE *out = open_memstream(&buf, &sz);
        tz_write_opts o;
        tz_write_opts_init(&o);
        o.threads = threads;
        tz_writer *w = tz_writer_new(out, &o);
        FILE *in = fmemopen(two, 2 * la, "rb");
        tz_reader *r = tz_reader_new(in);
        int e = tz_next(r) == 1 ? 0 : -1;
        if (!e) e = tz_writer_begin(w, tz_reader_header(r));
        if (!e) e = tz_write(w, pre, 2);
        const void *fr;
        size_t fl;
        long n;
        while (!e && (n = tz_read_chunk(r, &fr, &fl)) > 0)
            e = tz_write_frame(w, fr, fl, (size_t)n);
        if (!e) e = tz_expect_end(r);
        if (!e) e = tz_writer_close(w);
        tz_writer_free(w);
        tz_reader_free(r);
        fclose(in);
        fclose(out);
        void *back = NULL;
        uint64_t cnt = 0;
        int e2 = e ? e : mem_read((unsigned char *)buf, sz, &back, &cnt, NULL, NULL, 0);
        int ok = !e2 && cnt == 102 && memcmp(back, pre, sizeof pre) == 0 &&
                 memcmp((int32_t *)back + 6, a, sizeof a) == 0 &&
                 memcmp((int32_t *)back + 6 + 150, a, sizeof a) == 0;
        char what[100];
        snprintf(what, sizeof what, "chunks copied as frames after written records "
                 "read back in order (%d thread%s)", threads, threads > 1 ? "s" : "");
        check(ok, what);
        free(back);
        free(buf);
    }
    /* a damaged frame is caught while copying */
    unsigned char *bad = malloc(la);
    memcpy(bad, sa, la);
    bad[la - 40] ^= 1;
    FILE *in = fmemopen(bad, la, "rb");
    tz_reader *r = tz_reader_new(in);
    long n = 0;
    const void *fr;
    size_t fl;
    if (tz_next(r) == 1)
        while ((n = tz_read_chunk(r, &fr, &fl)) > 0) {}
    check(n < 0, "tz_read_chunk checks each chunk");
    tz_reader_free(r);
    fclose(in);
    free(bad);
    free(two);
    free(sa);
    tz_header_clear(&h);
}

/* formats/testdata: good-* read, bad-* fail (run from the top directory) */
static void test_testdata(void)
{
    const char *good[] = {"good-u8-3x2", "good-concat", "good-f32-5", "good-empty",
                          "good-f64-scalar", NULL};
    const char *bad[] = {"bad-truncated-mid", "bad-truncated-notrailer", "bad-flipped",
                         "bad-version", "bad-mismatch-concat", "bad-not-a-stream",
                         "bad-huge-dims", NULL};
    const uint64_t good_count[] = {4, 4, 3, 0, 3};
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; (pass ? bad : good)[i]; i++) {
            char path[128], what[600], msg[256] = "";
            snprintf(path, sizeof path, "formats/testdata/%s.tz", (pass ? bad : good)[i]);
            FILE *f = fopen(path, "rb");
            if (!f) { check(0, path); continue; }
            unsigned char buf[4096];
            size_t n = fread(buf, 1, sizeof buf, f);
            fclose(f);
            void *data = NULL;
            uint64_t cnt = 0;
            int e = mem_read(buf, n, &data, &cnt, NULL, msg, sizeof msg);
            free(data);
            snprintf(what, sizeof what, "%s %s%s%s", path, pass ? "fails" : "reads",
                     pass ? ": " : "", msg);
            check(pass ? e < 0 : (e == 0 && cnt == good_count[i]), what);
        }
    char err[256];
    tz_model *m = tz_model_load("formats/testdata/good-model.tz", err, sizeof err);
    check(m && m->n == 2 && tz_model_find(m, "W") && tz_model_find(m, "W")->count == 2 &&
          m->meta.n_attrs == 1 &&
          strcmp(tz_attr_get_s(&m->meta, "model.type", ""), "rbm") == 0 &&
          m->t[0].h.n_attrs == 0 && m->t[1].h.n_attrs == 0,
          "formats/testdata/good-model.tz loads as a model: the first section's "
          "attributes are the model's");
    tz_model_free(m);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_crc();
    test_roundtrip_dtypes();
    test_concat();
    test_damage();
    test_model();
    test_model_tensor_attrs();
    test_model_reserved_name();
    test_model_oom();
    test_keys_and_limits();
    test_convert();
    test_empty_stream();
    test_testdata();
    test_chunk_copy();
    printf("# %d tests, %d failed\n", n_test, n_fail);
    return n_fail != 0;
}
