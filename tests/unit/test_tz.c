/* test_tz.c - unit tests of the tensor stream library (lib/tz.c):
 * round trips of every dtype, chunking, concatenation, attributes,
 * models, conversions, and detection of every truncation and byte flip.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "tz.h"

static int n_test, n_fail;

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
    if (!e && hout) tz_header_copy(hout, tz_reader_header(r));
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

static void test_keys_and_limits(void)
{
    check(tz_attr_valid_key("modality.name") && tz_attr_valid_key("rbm.k2") &&
          !tz_attr_valid_key("Modality") && !tz_attr_valid_key("a..b") &&
          !tz_attr_valid_key(".a") && !tz_attr_valid_key("a.") &&
          !tz_attr_valid_key("a.2b") && !tz_attr_valid_key(""),
          "attribute keys are dotted lower_snake_case");
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
    check(m && m->n == 2 && tz_model_find(m, "W") && tz_model_find(m, "W")->count == 2,
          "formats/testdata/good-model.tz loads as a model");
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
    test_keys_and_limits();
    test_convert();
    test_empty_stream();
    test_testdata();
    test_chunk_copy();
    printf("# %d tests, %d failed\n", n_test, n_fail);
    return n_fail != 0;
}
