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
    char modality[32];    /* the stream's modality.name, or "" */
    unsigned char *present;  /* (rows) 0 where the row is absent (all NaN),
                                or NULL: every row present; owned */
    uint64_t absent;      /* rows absent */
} dataset;

void dataset_free(dataset *ds);     /* frees data; the struct is the caller's */

/* Rows idx[0..n) (or first..first+n when idx is NULL) as f32 into out
 * (n, V), times scale. */
void dataset_gather(const dataset *ds, const uint64_t *idx, uint64_t first,
                    int n, float *out);

/* Column sums (V) in double, added to sum (exact for u8 without scale).
 * Returns 0 or BM_E_NOMEM. */
int dataset_column_sums(const dataset *ds, double *sum);

/* Absent rows: in a multimodal data set a row whose every value is NaN
 * marks the modality as not observed for that row.  Finds them and sets
 * present and absent.  Returns 0, 1 when a row holds NaN in some columns
 * but not all (*row set: corrupt, never taken for absent), or BM_E_NOMEM. */
int dataset_find_absent(dataset *ds, uint64_t *row);

/* Class indices to one-hot rows: a data set of one integer column becomes
 * f32 rows of K columns (K = 0: the largest index + 1).  Returns 0, 1 when
 * a row holds no index in [0, K) (*row set), or BM_E_NOMEM. */
int dataset_onehot(dataset *ds, int K, uint64_t *row);
/* 1 when ds holds one integer column (class indices). */
int dataset_is_index(const dataset *ds);

/* Checks every present row as states of layer L (bm_layer_check): NULL, or
 * a static message with *row set to the first bad row (0-based); the
 * message is "out of memory" when it cannot allocate its buffer. */
const char *dataset_check(const dataset *ds, const bm_layer *L,
                          int allow_real, uint64_t *row);

#endif
