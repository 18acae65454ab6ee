/* tzhelp - test helper: random RBM models, text <-> .tz rows, attributes */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rbm.h"
#include "tz.h"

static void die(const char *m) { fprintf(stderr, "tzhelp: %s\n", m); exit(1); }

int main(int argc, char **argv)
{
    if (argc >= 9 && !strcmp(argv[1], "model")) {
        /* model OUT VIS HID V H SCALE SEED [K [TYPE]]: params as text on stdout */
        int V = atoi(argv[5]), H = atoi(argv[6]);
        double sc = atof(argv[7]);
        rbm *m = rbm_new(V, H, rbm_unit_parse(argv[3]), rbm_unit_parse(argv[4]));
        if (!m) die("rbm_new");
        if (argc > 9) m->softmax_group = atoi(argv[9]);
        rng_t g;
        rng_seed(&g, strtoull(argv[8], NULL, 10));
        for (int i = 0; i < V * H; i++) m->W[i] = (float)(sc * rng_normal(&g));
        for (int i = 0; i < V; i++) m->vbias[i] = (float)(0.5 * sc * rng_normal(&g));
        for (int j = 0; j < H; j++) m->hbias[j] = (float)(0.5 * sc * rng_normal(&g));
        if (m->sigma)
            for (int i = 0; i < V; i++) m->sigma[i] = 0.5f + rng_uniform(&g);
        tz_model *mf = tz_model_new();
        if (rbm_to_model(m, mf)) die("rbm_to_model");
        if (argc > 10) tz_attr_set_s(&mf->meta, "model.type", argv[10]);
        char err[300];
        if (tz_model_save(mf, argv[2], err, sizeof err)) die(err);
        printf("%d %d %d\n", V, H, m->softmax_group);
        for (int i = 0; i < V * H; i++) printf("%.9g\n", m->W[i]);
        for (int i = 0; i < V; i++) printf("%.9g\n", m->vbias[i]);
        for (int j = 0; j < H; j++) printf("%.9g\n", m->hbias[j]);
        for (int i = 0; i < V; i++) printf("%.9g\n", m->sigma ? m->sigma[i] : 1.0f);
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "rows")) {
        /* rows COLS DTYPE [KEY=VALUE]: whitespace numbers on stdin -> stream */
        uint64_t cols = strtoull(argv[2], NULL, 10);
        tz_header h;
        tz_header_init(&h);
        tz_header_set_shape(&h, tz_dtype_parse(argv[3]), 1, &cols);
        if (argc > 4) {
            char *kv = argv[4], *eq = strchr(kv, '=');
            *eq = 0;
            tz_attr_set_s(&h, kv, eq + 1);
        }
        tz_write_opts o;
        tz_write_opts_init(&o);
        tz_writer *w = tz_writer_new(stdout, &o);
        tz_writer_begin(w, &h);
        double *row = malloc(cols * sizeof *row);
        for (;;) {
            uint64_t i = 0;
            for (; i < cols; i++)
                if (scanf("%lf", &row[i]) != 1) break;
            if (i == 0) break;
            if (i < cols) die("short row");
            tz_write_as(w, TZ_F64, row, 1);
        }
        if (tz_writer_close(w)) die("write");
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "rand")) {
        /* rand N COLS SEED: N random 0/1 u8 rows */
        uint64_t n = strtoull(argv[2], NULL, 10), cols = strtoull(argv[3], NULL, 10);
        rng_t g;
        rng_seed(&g, strtoull(argv[4], NULL, 10));
        tz_header h;
        tz_header_init(&h);
        tz_header_set_shape(&h, TZ_U8, 1, &cols);
        tz_write_opts o;
        tz_write_opts_init(&o);
        tz_writer *w = tz_writer_new(stdout, &o);
        tz_writer_begin(w, &h);
        unsigned char *row = malloc(cols);
        for (uint64_t r = 0; r < n; r++) {
            for (uint64_t i = 0; i < cols; i++) row[i] = rng_next(&g) >> 63;
            tz_write(w, row, 1);
        }
        if (tz_writer_close(w)) die("write");
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "dump")) {
        /* dump [KEY]: stream on stdin -> one record a line; or an attribute */
        tz_reader *r = tz_reader_new(stdin);
        if (tz_next(r) != 1) die(tz_reader_error(r));
        const tz_header *h = tz_reader_header(r);
        if (argc > 2) {
            const tz_attr *a = tz_attr_get(h, argv[2]);
            if (!a) die("no such attribute");
            if (a->type == TZ_ATTR_STR) printf("%s\n", a->s);
            else if (a->type == TZ_ATTR_I64) printf("%lld\n", (long long)a->i);
            else printf("%.17g\n", a->f);
            return 0;
        }
        uint64_t cols = tz_record_elems(h);
        double *row = malloc(cols * sizeof *row);
        long n;
        while ((n = tz_read_f64(r, row, 1)) == 1)
            for (uint64_t i = 0; i < cols; i++)
                printf("%.9g%c", row[i], i + 1 < cols ? ' ' : '\n');
        if (n < 0) die(tz_reader_error(r));
        return 0;
    }
    die("usage: tzhelp model|rows|rand|dump ...");
}
