/* dataset.c - in-memory training sets (dataset.h). */
#include "dataset.h"

#include <stdlib.h>
#include <string.h>

#include "tz.h"

void dataset_free(dataset *ds)
{
    if (!ds)
        return;
    free(ds->data);
    free(ds->present);
    ds->data = NULL;
    ds->present = NULL;
    ds->rows = 0;
    ds->absent = 0;
}

int dataset_find_absent(dataset *ds, uint64_t *row)
{
    enum { CH = 256 };
    *row = 0;
    free(ds->present);
    ds->present = NULL;
    ds->absent = 0;
    if (ds->dtype != TZ_F32 && ds->dtype != TZ_F64)
        return 0;              /* integers cannot be NaN */
    float *buf = malloc((size_t)CH * ds->V * sizeof *buf);
    unsigned char *p = malloc((size_t)ds->rows);
    if (!buf || !p) {
        free(buf);
        free(p);
        return BM_E_NOMEM;
    }
    for (uint64_t r0 = 0; r0 < ds->rows; r0 += CH) {
        int n = ds->rows - r0 < CH ? (int)(ds->rows - r0) : CH;
        dataset_gather(ds, NULL, r0, n, buf);
        for (int b = 0; b < n; b++) {
            const float *x = buf + (size_t)b * ds->V;
            int nan = 0;
            for (int i = 0; i < ds->V; i++)
                nan += x[i] != x[i];
            if (nan && nan < ds->V) {
                free(buf);
                free(p);
                *row = r0 + (uint64_t)b;
                return 1;
            }
            p[r0 + b] = nan == 0;
            ds->absent += nan != 0;
        }
    }
    free(buf);
    if (ds->absent)
        ds->present = p;
    else
        free(p);
    return 0;
}

void dataset_gather(const dataset *ds, const uint64_t *idx, uint64_t first,
                    int n, float *out)
{
    for (int b = 0; b < n; b++) {
        uint64_t row = idx ? idx[b] : first + b;
        const char *src = (const char *)ds->data + row * ds->row_bytes;
        float *o = out + (size_t)b * ds->V;
        if (ds->dtype == TZ_U8) {     /* the common case, vectorised */
            const unsigned char *u = (const unsigned char *)src;
            for (int i = 0; i < ds->V; i++)
                o[i] = (float)u[i];
        } else {
            tz_convert(o, TZ_F32, src, ds->dtype, (size_t)ds->V);
        }
        if (ds->scale != 1)
            for (int i = 0; i < ds->V; i++)
                o[i] *= ds->scale;
    }
}

/* u8 without scale: 32-bit counts over blocks of rows that cannot
 * overflow them. */
static int u8_column_sums(const dataset *ds, double *sum)
{
    enum { BLOCK = 1 << 16 };             /* 255 * 2^16 < 2^32 */
    uint32_t *acc = malloc((size_t)ds->V * sizeof *acc);
    if (!acc)
        return BM_E_NOMEM;
    const unsigned char *x = ds->data;
    for (uint64_t r0 = 0; r0 < ds->rows; r0 += BLOCK) {
        uint64_t r1 = ds->rows - r0 < BLOCK ? ds->rows : r0 + BLOCK;
        memset(acc, 0, (size_t)ds->V * sizeof *acc);
        for (uint64_t r = r0; r < r1; r++) {
            const unsigned char *row = x + r * ds->row_bytes;
            for (int i = 0; i < ds->V; i++)
                acc[i] += row[i];
        }
        for (int i = 0; i < ds->V; i++)
            sum[i] += acc[i];
    }
    free(acc);
    return 0;
}

int dataset_column_sums(const dataset *ds, double *sum)
{
    if (ds->dtype == TZ_U8 && ds->scale == 1)
        return u8_column_sums(ds, sum);
    float *buf = malloc((size_t)256 * ds->V * sizeof *buf);
    if (!buf)
        return BM_E_NOMEM;
    for (uint64_t r0 = 0; r0 < ds->rows; r0 += 256) {
        int n = ds->rows - r0 < 256 ? (int)(ds->rows - r0) : 256;
        dataset_gather(ds, NULL, r0, n, buf);
        for (int b = 0; b < n; b++)
            for (int i = 0; i < ds->V; i++)
                sum[i] += buf[(size_t)b * ds->V + i];
    }
    free(buf);
    return 0;
}

int dataset_is_index(const dataset *ds)
{
    return ds->V == 1 && ds->dtype != TZ_F32 && ds->dtype != TZ_F64;
}

int dataset_onehot(dataset *ds, int K, uint64_t *row)
{
    *row = 0;
    float *v = malloc((size_t)ds->rows * sizeof *v);
    if (!v)
        return BM_E_NOMEM;
    dataset_gather(ds, NULL, 0, (int)ds->rows, v);
    if (K == 0)
        for (uint64_t i = 0; i < ds->rows; i++)
            if (v[i] >= K && v[i] < (1 << 24))
                K = (int)v[i] + 1;
    if (K < 1)
        K = 1;
    for (uint64_t i = 0; i < ds->rows; i++)
        if (!(v[i] >= 0 && v[i] < K && v[i] == (float)(int)v[i])) {
            *row = i;
            free(v);
            return 1;
        }
    float *y = calloc((size_t)ds->rows * K, sizeof *y);
    if (!y) {
        free(v);
        return BM_E_NOMEM;
    }
    for (uint64_t i = 0; i < ds->rows; i++)
        y[i * (size_t)K + (int)v[i]] = 1;
    free(v);
    free(ds->data);
    ds->data = y;
    ds->V = K;
    ds->dtype = TZ_F32;
    ds->row_bytes = (size_t)K * sizeof(float);
    ds->scale = 1;
    ds->crc = tz_crc32c(ds->crc, y, (size_t)ds->rows * ds->row_bytes);
    return 0;
}

const char *dataset_check(const dataset *ds, const bm_layer *L,
                          int allow_real, uint64_t *row)
{
    enum { CH = 256 };
    *row = 0;
    if (ds->dtype == TZ_U8 && L->unit == BM_BERNOULLI) {
        /* u8 is always finite; it is binary unless a byte has bits above
         * the lowest, and grey levels / 255 (allow_real) are in [0, 1] */
        const unsigned char *x = ds->data;
        size_t n = (size_t)ds->rows * ds->row_bytes;
        unsigned char any = 0;
        for (size_t i = 0; i < n; i++)
            any |= x[i];
        if (allow_real || any <= 1)
            return NULL;
    }
    float *buf = malloc((size_t)CH * ds->V * sizeof *buf);
    if (!buf)
        return "out of memory";
    for (uint64_t r0 = 0; r0 < ds->rows; r0 += CH) {
        int n = ds->rows - r0 < CH ? (int)(ds->rows - r0) : CH;
        dataset_gather(ds, NULL, r0, n, buf);
        if (!ds->present && !bm_layer_check(L, n, buf, allow_real))
            continue;
        for (int b = 0; b < n; b++) {
            if (ds->present && !ds->present[r0 + b])
                continue;
            const char *msg = bm_layer_check(L, 1, buf + (size_t)b * ds->V,
                                             allow_real);
            if (msg) {
                free(buf);
                *row = r0 + (uint64_t)b;
                return msg;
            }
        }
    }
    free(buf);
    return NULL;
}
