/* dataset.h - a training set held in memory in its stored element type
 * (MNIST stays u8), converted to f32 a mini-batch at a time.  The trainers
 * (rbm-train, stack) share it; cli_load_dataset() in cmd/cli.h fills one
 * from a stream.
 *
 * Rows are ds->row_bytes apart; a row holds V values of ds->dtype.  u8 grey
 * levels read as probabilities are scaled by 1/255 (scale).  Nothing here
 * prints or exits.
 */
#ifndef RBMKIT_DATASET_H
#define RBMKIT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "bm_layer.h"

typedef struct {
    void *data;           /* rows * row_bytes, owned */
    uint64_t rows;
    int V, dtype;         /* values per row; tz dtype */
    size_t row_bytes;
    float scale;          /* 1, or 1/255 for u8 grey levels */
    int probs;            /* the stream says it holds probabilities */
    uint32_t crc;         /* CRC-32C of the raw rows */
} dataset;

void dataset_free(dataset *ds);     /* frees data; the struct is the caller's */

/* Rows idx[0..n) (or first..first+n when idx is NULL) as f32 into out
 * (n, V), times scale. */
void dataset_gather(const dataset *ds, const uint64_t *idx, uint64_t first,
                    int n, float *out);

/* Column sums (V) in double, added to sum (exact for u8 without scale).
 * Returns 0 or BM_E_NOMEM. */
int dataset_column_sums(const dataset *ds, double *sum);

/* Checks every row as states of layer L (bm_layer_check): NULL, or a static
 * message with *row set to the first bad row (0-based); the message is
 * "out of memory" when it cannot allocate its buffer. */
const char *dataset_check(const dataset *ds, const bm_layer *L,
                          int allow_real, uint64_t *row);

#endif
