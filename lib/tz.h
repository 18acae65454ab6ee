/* tz.h - the .tz tensor stream: reader, writer and model container.
 *
 * Every rbmkit tool reads and writes this format.  A stream is a sequence of
 * sections; a section is a header (name, dtype, record shape, attributes),
 * zstd-compressed chunks of whole records, and a trailer holding the record
 * count and a hash.  Consecutive sections with equal name, dtype and shape
 * form one tensor, so `cat a.tz b.tz` of two data streams is a data stream.
 * A model file is a run of sections with different names.  The byte layout
 * is specified in formats/tensor-stream.md.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * TZ_E_* code on failure, with a one-line explanation available from
 * tz_reader_error() / tz_writer_error() / tz_model_error().  Nothing here
 * prints or exits.  Constructors return NULL only when out of memory.
 * Every *_free(NULL) is a no-op.
 */
#ifndef RBMKIT_TZ_H
#define RBMKIT_TZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TZ_VERSION 1

/* Hard limits, checked before any allocation. */
#define TZ_RANK_MAX      4                  /* record rank 0..4 */
#define TZ_NAME_MAX      255                /* tensor name bytes */
#define TZ_KEY_MAX       128                /* attribute key bytes */
#define TZ_STR_MAX       (1u << 20)         /* string attribute bytes */
#define TZ_HEADER_MAX    (4u << 20)         /* header body bytes */
#define TZ_ATTRS_MAX     4096               /* attributes per section */
#define TZ_CHUNK_MAX     (64u << 20)        /* uncompressed bytes per chunk */
#define TZ_RECORD_MAX    TZ_CHUNK_MAX       /* bytes per record */
#define TZ_WINDOWLOG_MAX 26                 /* zstd window cap: 64 MiB */

/* Element types.  Values are the on-disk codes. */
typedef enum {
    TZ_U8 = 1, TZ_I8 = 2, TZ_U16 = 3, TZ_I16 = 4,
    TZ_I32 = 5, TZ_I64 = 6, TZ_F32 = 7, TZ_F64 = 8
} tz_dtype;

/* Error codes (negative return values). */
enum {
    TZ_OK = 0,
    TZ_E_IO = -1,        /* read or write failed (errno is meaningful) */
    TZ_E_TRUNC = -2,     /* the stream ends early */
    TZ_E_CORRUPT = -3,   /* bad magic, checksum, hash or structure */
    TZ_E_VERSION = -4,   /* unsupported version or flags */
    TZ_E_LIMIT = -5,     /* a size exceeds a hard limit */
    TZ_E_NOMEM = -6,
    TZ_E_MISMATCH = -7,  /* sections or arguments disagree in type/shape */
    TZ_E_ARG = -8,       /* invalid argument from the caller */
    TZ_E_NOTFOUND = -9,  /* no such tensor or attribute */
    TZ_E_EMPTY = -10     /* no data where some was required */
};
const char *tz_strerror(int code);

/* dtype helpers.  tz_dtype_size() is 0 for an unknown code. */
size_t tz_dtype_size(int dtype);
const char *tz_dtype_name(int dtype);          /* "u8", "f32", ... or "?" */
int tz_dtype_parse(const char *name);          /* code, or TZ_E_ARG */

/* Convert n elements between dtypes.  Conversions to integers round to
 * nearest and saturate; NaN becomes 0.  Returns 0 or TZ_E_ARG. */
int tz_convert(void *dst, int dst_dtype, const void *src, int src_dtype,
               size_t n);

/* ---- attributes and headers -------------------------------------------- */

enum { TZ_ATTR_I64 = 1, TZ_ATTR_F64 = 2, TZ_ATTR_STR = 3 };

typedef struct {
    char *key;          /* dotted lower_snake_case, e.g. "modality.name" */
    int type;           /* TZ_ATTR_* */
    int64_t i;          /* TZ_ATTR_I64 */
    double f;           /* TZ_ATTR_F64 */
    char *s;            /* TZ_ATTR_STR, NUL-terminated UTF-8 */
} tz_attr;

typedef struct {
    char name[TZ_NAME_MAX + 1];   /* tensor name; "" for a plain data stream */
    int dtype;                    /* tz_dtype */
    int rank;                     /* 0..TZ_RANK_MAX */
    uint64_t dims[TZ_RANK_MAX];   /* record shape, each >= 1 */
    size_t n_attrs;
    tz_attr *attrs;               /* owned by the header */
} tz_header;

void tz_header_init(tz_header *h);           /* empty: f32, rank 0, no attrs */
void tz_header_clear(tz_header *h);          /* frees attributes, re-inits */
/* Deep copy of src into dst (dst is init'd; its old attributes are freed).
 * Returns 0 or TZ_E_NOMEM; on failure dst holds a partial copy, which
 * tz_header_clear frees.  Callers must check the result. */
int tz_header_copy(tz_header *dst, const tz_header *src);
/* Elements and bytes in one record. */
uint64_t tz_record_elems(const tz_header *h);
uint64_t tz_record_bytes(const tz_header *h);
/* Set a record shape of `rank` dims; checks limits.  */
int tz_header_set_shape(tz_header *h, int dtype, int rank,
                        const uint64_t *dims);
/* Nonzero when a and b have equal name, dtype and shape. */
int tz_header_same_tensor(const tz_header *a, const tz_header *b);
/* "u8 [28 28]" style description into buf. */
void tz_header_describe(const tz_header *h, char *buf, size_t size);

/* Attributes: set replaces an existing key; keys are validated.
 * A valid key is 1..TZ_KEY_MAX bytes of dot-separated segments, each a
 * non-empty run of [a-z0-9_]: lower_snake_case words, which may start with
 * or consist of digits ("modality.name", "layer.0.unit", "edge.2.w_scale").
 * No uppercase, no empty segment (no leading, trailing or double dot). */
int tz_attr_valid_key(const char *key);
int tz_attr_set_i(tz_header *h, const char *key, int64_t v);
int tz_attr_set_f(tz_header *h, const char *key, double v);
int tz_attr_set_s(tz_header *h, const char *key, const char *v);
int tz_attr_remove(tz_header *h, const char *key);
const tz_attr *tz_attr_get(const tz_header *h, const char *key);
/* Typed getters; return `def` when the key is absent or of another type
 * (an integer is accepted where a double is asked for). */
int64_t tz_attr_get_i(const tz_header *h, const char *key, int64_t def);
double tz_attr_get_f(const tz_header *h, const char *key, double def);
const char *tz_attr_get_s(const tz_header *h, const char *key,
                          const char *def);

/* Nonzero when the header says its values are probabilities in [0, 1]
 * (attribute data.values = "probabilities", written by rbm-train --emit and
 * encode), which Bernoulli units accept as input. */
int tz_data_are_probabilities(const tz_header *h);

/* ---- writer ------------------------------------------------------------- */

typedef struct {
    int level;            /* zstd level, or TZ_LEVEL_AUTO */
    size_t chunk_bytes;   /* target uncompressed bytes per chunk */
    int threads;          /* 1: compress inline; 2: on a background thread */
} tz_write_opts;

/* TZ_LEVEL_AUTO picks the level per section by element type, from
 * measurements on this project's data (formats/tensor-stream.md, "Choice
 * of compression level"): integer data (binarised pixels, counts) level 1,
 * which compresses MNIST bits about 5.8x at ~370 MB/s; floating-point data
 * (activations, probabilities) level -1, where zstd stores the incompressible
 * blocks raw at ~4 GB/s instead of gaining 8-10% at ~800 MB/s. */
#define TZ_LEVEL_AUTO 1000
#define TZ_LEVEL_INT 1
#define TZ_LEVEL_FLOAT (-1)
#define TZ_DEFAULT_CHUNK (1u << 20)

/* level auto, 1 MiB chunks, 2 threads when the machine has 2+ CPUs */
void tz_write_opts_init(tz_write_opts *o);

typedef struct tz_writer tz_writer;

/* The writer does not own f (the caller closes it after tz_writer_close). */
tz_writer *tz_writer_new(FILE *f, const tz_write_opts *opts);
/* Start a section; ends the previous one if open.  The header is copied. */
int tz_writer_begin(tz_writer *w, const tz_header *h);
/* Append n records, given in the section's dtype. */
int tz_write(tz_writer *w, const void *records, size_t n);
/* Append n records given in src_dtype, converted to the section's dtype. */
int tz_write_as(tz_writer *w, int src_dtype, const void *records, size_t n);
/* Append one chunk given as its compressed frame, holding n records of
 * the section's dtype and shape, as tz_read_chunk returns it: records are
 * copied without compressing them again.  Records written before are
 * flushed into a chunk of their own first. */
int tz_write_frame(tz_writer *w, const void *frame, size_t frame_len, size_t n);
/* Close the current chunk and push it to the file (fflush). */
int tz_writer_flush(tz_writer *w);
/* Write the trailer of the current section. */
int tz_writer_end(tz_writer *w);
/* End any open section, flush, and check the file for errors.  Does not
 * free; call tz_writer_free after. */
int tz_writer_close(tz_writer *w);
void tz_writer_free(tz_writer *w);
const char *tz_writer_error(const tz_writer *w);
uint64_t tz_writer_count(const tz_writer *w);   /* records in this section */
/* errno of the failed write behind a TZ_E_IO (it may have happened on the
 * compression thread), else 0.  EPIPE means the reader went away. */
int tz_writer_errno(const tz_writer *w);

/* ---- reader ------------------------------------------------------------- */

typedef struct tz_reader tz_reader;

/* The reader does not own f. */
tz_reader *tz_reader_new(FILE *f);
void tz_reader_free(tz_reader *r);
const char *tz_reader_error(const tz_reader *r);

/* Read the next tensor's header.  Returns 1 when a tensor starts, 0 at a
 * clean end of file, or a negative code.  Call it once to start, and again
 * after tz_read* returned 0 to move to a following tensor (model files). */
int tz_next(tz_reader *r);
/* The current tensor's header (valid after tz_next returned 1). */
const tz_header *tz_reader_header(const tz_reader *r);

/* Read up to max records of the current tensor, in the stored dtype
 * (tz_read) or converted (tz_read_as / _f32 / _f64).  Returns the number
 * read, 0 at the end of the tensor, or a negative code.  A section that
 * follows with the same name, dtype and shape is read on seamlessly. */
long tz_read(tz_reader *r, void *dst, size_t max);
long tz_read_as(tz_reader *r, int dtype, void *dst, size_t max);
long tz_read_f32(tz_reader *r, float *dst, size_t max);
long tz_read_f64(tz_reader *r, double *dst, size_t max);

/* The next whole chunk of the current tensor, decoded and checked like any
 * other, with its compressed frame (valid until the next read call), for
 * tools that pass records through unchanged.  Only at a chunk boundary:
 * after tz_next, or after reads that ended exactly at one.  Returns the
 * chunk's record count, 0 at the end of the tensor, or a negative code. */
long tz_read_chunk(tz_reader *r, const void **frame, size_t *frame_len);

/* After tz_read returned 0: checks that the file ends here.  Returns 0, or
 * TZ_E_MISMATCH when another tensor follows (with a message naming both
 * shapes), or another negative code. */
int tz_expect_end(tz_reader *r);

/* Read all remaining records of the current tensor into a new malloc'd
 * buffer in dtype (or the stored dtype if dtype is 0); *count gets the
 * number of records.  The caller frees *data. */
int tz_read_all(tz_reader *r, int dtype, void **data, uint64_t *count);

uint64_t tz_reader_count(const tz_reader *r);      /* records read in tensor */
uint64_t tz_reader_in_bytes(const tz_reader *r);   /* file bytes consumed */

/* ---- models: many named tensors in one file ------------------------------ *
 *
 * Where the attributes go (formats/model-keys.md, "Model and tensor
 * attributes"):
 *   - When the first tensor has no attributes of its own (every rbm, pca,
 *     whiten and stats file), the model's attributes are stored on the
 *     first tensor's section: the compact form, and the only form of files
 *     written before the model section existed.
 *   - Otherwise the file starts with a section named TZ_MODEL_SECTION
 *     ("model") that holds zero records and the model's attributes; every
 *     tensor section that follows carries its own attributes.
 * tz_model_read accepts both, tz_model_write picks one by that rule, so
 * meta and every tensor's attributes survive a round trip.  The tensor
 * name "model" is reserved for that section. */

#define TZ_MODEL_SECTION "model"

typedef struct {
    tz_header h;         /* name, dtype, record shape, per-tensor attrs */
    uint64_t count;      /* number of records (the leading axis) */
    void *data;          /* count * record bytes, stored dtype; owned */
} tz_tensor;

typedef struct {
    tz_header meta;      /* model attributes (name, shape unused) */
    size_t n;
    tz_tensor *t;        /* in file order; each h holds its own attributes */
    char err[256];
} tz_model;

tz_model *tz_model_new(void);
void tz_model_free(tz_model *m);
/* Add a tensor of numpy-style shape (shape[0] records of shape[1..]);
 * ndim is 1..TZ_RANK_MAX+1; the data are copied.  Replaces a tensor of the
 * same name (and drops its attributes).  The name must be non-empty and not
 * TZ_MODEL_SECTION (TZ_E_ARG).  Per-tensor attributes are set afterwards
 * on the tensor's header: tz_attr_set_s(&tz_model_find(m, name)->h, ...). */
int tz_model_add(tz_model *m, const char *name, int dtype, int ndim,
                 const uint64_t *shape, const void *data);
/* Find a tensor by name, or NULL. */
tz_tensor *tz_model_find(const tz_model *m, const char *name);
/* Copy tensor `name`, which must hold exactly `count` records of `elems`
 * values of `dtype`, into dst (no conversion: checkpoints restore state
 * bit for bit).  Returns 0, or TZ_E_MISMATCH with m->err naming the
 * tensor. */
int tz_model_read_exact(tz_model *m, const char *name, int dtype,
                        uint64_t count, uint64_t elems, void *dst);
/* Copy tensor `name` into a new malloc'd float array; *n gets the element
 * count.  Returns NULL (with m->err set) when absent. */
float *tz_model_get_f32(tz_model *m, const char *name, size_t *n);
/* Read a whole model from a reader positioned at the start; or from a path
 * ("-" = stdin).  On failure (including out of memory) returns NULL and,
 * when err is not NULL, writes a one-line message to err (size errsize). */
tz_model *tz_model_read(tz_reader *r, char *err, size_t errsize);
tz_model *tz_model_load(const char *path, char *err, size_t errsize);
/* Write the model to a writer: one section per tensor, with the model's
 * attributes on the first, or on a leading "model" section when the first
 * tensor has attributes of its own (see above).  Tensors named "" or
 * "model" are refused (TZ_E_ARG) before anything is written.  On failure
 * the code is returned and tz_writer_error(w) tells why. */
int tz_model_write(const tz_model *m, tz_writer *w);
/* Write to path atomically: temp file in the same directory, fsync,
 * rename.  An existing file is never left half-written. */
int tz_model_save(const tz_model *m, const char *path, char *err,
                  size_t errsize);
const char *tz_model_error(const tz_model *m);

/* ---- atomic output files ------------------------------------------------ */

/* Open a temporary file next to path for writing; *tmp gets its malloc'd
 * name.  Returns NULL with errno set on failure. */
FILE *tz_atomic_open(const char *path, char **tmp);
/* fflush + fsync + fclose + rename(tmp, path); frees tmp.  On failure the
 * temporary is removed and -1 is returned with errno set. */
int tz_atomic_commit(FILE *f, char *tmp, const char *path);
/* fclose + unlink the temporary; frees tmp. */
void tz_atomic_abort(FILE *f, char *tmp);

/* CRC-32C (Castagnoli; as iSCSI, ext4) of n bytes, continuing from crc
 * (start with 0). */
uint32_t tz_crc32c(uint32_t crc, const void *buf, size_t n);

#endif
