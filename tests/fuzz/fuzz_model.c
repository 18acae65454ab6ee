/* fuzz_model.c - libFuzzer target for the model opener (lib/model.c):
 * arbitrary bytes read as a model container and opened as whatever kind
 * its model.type names (rbm, dbn, dbm), then each layer of the result
 * described.  Nothing may crash, hang or leak; a bad file is a message.
 * CRC checks are bypassed in fuzz builds (FUZZING_BUILD_MODE_...) so that
 * mutated attributes and shapes reach the kind readers.
 * Build: make fuzz; run: build-fuzz/fuzz_model -max_total_time=600 corpus_dir
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f)
        return 0;
    tz_reader *r = tz_reader_new(f);
    char err[256];
    tz_model *mf = r ? tz_model_read(r, err, sizeof err) : NULL;
    model *m = mf ? model_from_tz(mf, err, sizeof err) : NULL;
    if (m) {
        int n = model_layers(m);
        size_t units = 0;
        for (int l = 0; l < n; l++) {
            bm_layer L = model_layer(m, l);
            if (!bm_layer_validate(&L))
                units += (size_t)L.n;
        }
        if (model_find_layer(m, "h1") >= n || units == 0)
            abort();          /* a model always has valid layers */
    }
    model_free(m);
    tz_reader_free(r);
    fclose(f);
    return 0;
}
