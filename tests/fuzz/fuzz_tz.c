/* fuzz_tz.c - libFuzzer target for the stream and model reader.
 * Feeds arbitrary bytes to tz_next/tz_read_as (every tensor, converted to
 * f32 and f64) and to tz_model_read.  Nothing may crash, hang, leak or
 * allocate beyond the format's limits.
 * Build: make fuzz; run: build-fuzz/fuzz_tz -max_total_time=600 corpus_dir
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* as a data stream, every tensor read in batches */
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) return 0;
    tz_reader *r = tz_reader_new(f);
    float buf[4096];
    int e;
    while (r && (e = tz_next(r)) == 1) {
        const tz_header *h = tz_reader_header(r);
        uint64_t elems = tz_record_elems(h);
        size_t per = elems <= 4096 ? 4096 / elems : 0;
        if (per == 0) {
            long n;
            while ((n = tz_read(r, NULL, 16)) > 0) {}
            continue;
        }
        long n;
        while ((n = tz_read_f32(r, buf, per)) > 0) {}
        if (n < 0) break;
    }
    tz_reader_free(r);
    fclose(f);
    /* as a model */
    f = fmemopen((void *)data, size, "rb");
    if (!f) return 0;
    r = tz_reader_new(f);
    char err[256];
    tz_model *m = r ? tz_model_read(r, err, sizeof err) : NULL;
    if (m) {
        for (size_t i = 0; i < m->n; i++) {
            size_t n;
            free(tz_model_get_f32(m, m->t[i].h.name, &n));
        }
    }
    tz_model_free(m);
    tz_reader_free(r);
    fclose(f);
    return 0;
}
