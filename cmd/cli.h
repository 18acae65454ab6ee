/* cli.h - what every rbmkit command shares: messages, exit codes, number
 * parsing, opening inputs and outputs, and the stream writer settings.
 *
 * Exit status: 0 success, 1 runtime or data error, 2 usage error.
 * Messages go to stderr as "prog: message".
 */
#ifndef RBMKIT_CLI_H
#define RBMKIT_CLI_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdnoreturn.h>

#include "bm.h"
#include "dataset.h"
#include "tz.h"

#define RBMKIT_VERSION "0.1.0"

extern const char *cli_prog;     /* set by cli_init */

/* Call first in main(): sets cli_prog, ensures fast BLAS kernels (may
 * re-exec), and ignores nothing else. */
void cli_init(int argc, char **argv, const char *prog);

/* "prog: message\n"; a message ending in ':' gets strerror(errno) added. */
void cli_warn(const char *fmt, ...);
noreturn void cli_die(const char *fmt, ...);          /* exit 1 */
/* Usage error: message plus "Try 'prog --help'." on stderr, exit 2. */
noreturn void cli_usage_error(const char *fmt, ...);
/* A usage error for what getopt_long returned ('?' or ':') when opterr
 * is 0: "unknown option '--x'" or "option '--x' needs an argument". */
noreturn void cli_option_error(int c, char **argv);
/* Print "prog (rbmkit) VERSION" to stdout and exit 0. */
noreturn void cli_version(void);

/* Number parsing: the whole string must be a number in [lo, hi]; otherwise
 * a usage error naming the option `what`. */
long cli_long(const char *s, long lo, long hi, const char *what);
double cli_double(const char *s, double lo, double hi, const char *what);
uint64_t cli_u64(const char *s, const char *what);

/* The operands MODEL [INPUT] of the model tools (encode, rbm-sample,
 * ais-estimate) after getopt; *input is NULL when absent.  Usage errors
 * for a missing MODEL or extra operands. */
void cli_model_operands(int argc, char **argv, const char **model,
                        const char **input);

/* Open an input named on the command line; NULL or "-" is stdin.  Dies
 * with "prog: PATH:" + strerror on failure. */
FILE *cli_open_in(const char *path);
void cli_close_in(FILE *f);

/* Data output to stdout: refuses a terminal unless force is set (exit 2). */
void cli_check_stdout(int force);
/* Flush and close stdout, dying on error (full disk, closed pipe). */
void cli_close_stdout(void);

/* Shared stream-writer settings, set by the common options
 * --level N, --chunk-size BYTES, --compress-threads N.  Put
 * CLI_STREAM_LONGOPTS in a getopt_long table, pass the codes it returns to
 * cli_stream_option(), and print CLI_STREAM_HELP in --help. */
extern tz_write_opts cli_wopts;
enum { CLI_OPT_LEVEL = 0x1000, CLI_OPT_CHUNK, CLI_OPT_CTHREADS };
#define CLI_STREAM_LONGOPTS \
    {"level", required_argument, 0, CLI_OPT_LEVEL}, \
    {"chunk-size", required_argument, 0, CLI_OPT_CHUNK}, \
    {"compress-threads", required_argument, 0, CLI_OPT_CTHREADS}
#define CLI_STREAM_HELP \
    "      --level N            zstd level of the output, -50..19 (default: 1 for\n" \
    "                           integer data, -1 for floating point)\n" \
    "      --chunk-size BYTES   uncompressed bytes per chunk (default 1048576)\n" \
    "      --compress-threads N compress on 1 or 2 threads (default 2 on 2+ CPUs)\n"
/* Handles CLI_OPT_* codes; returns 1 if c was one of them, else 0. */
int cli_stream_option(int c, const char *arg);
/* Legacy name: the default level is chosen per element type. */
#define TZ_DEFAULT_LEVEL TZ_LEVEL_AUTO

/* True when progress should be shown (stderr is a terminal, not -q). */
extern int cli_quiet;
int cli_progress_enabled(void);

/* Die with "prog: context: reader message" for a negative tz code. */
noreturn void cli_die_reader(const char *context, tz_reader *r, int code);
noreturn void cli_die_writer(const char *context, tz_writer *w, int code);

/* A reader on a FILE opened with cli_open_in, positioned at the first
 * tensor (tz_next called); dies on error or an empty input. */
tz_reader *cli_reader(FILE *f, const char *name);
/* A writer on stdout with cli_wopts; checks stdout is not a terminal. */
tz_writer *cli_writer_stdout(int force);
/* Close the writer (trailer) and stdout; dies on error. */
void cli_finish_writer(tz_writer *w);

/* Read a whole stream (NULL or "-" = stdin) into ds; dies with a clear
 * message on a read error or an empty input. */
void cli_load_dataset(const char *path, dataset *ds);
/* Dies with "prog: WHAT: row N: problem [hint]" at the first row of ds that
 * is not a valid state of layer L. */
void cli_check_dataset(const dataset *ds, const bm_layer *L, int allow_real,
                       const char *what);

/* ---- a training run's plumbing (rbm-train, stack) ---------------------- */

/* Set to the signal number by SIGINT or SIGTERM once cli_trap_stop_signals
 * ran: the trainer finishes its batch, saves a checkpoint and calls
 * cli_interrupted.  cli_restore_signals puts the defaults back. */
extern volatile sig_atomic_t cli_stop;
void cli_trap_stop_signals(void);
void cli_restore_signals(void);
/* Dies with "PATH: reason" unless a file can be created next to path (a
 * temporary file is made and removed): called before training, so that a
 * run is not lost at save time to a missing or read-only folder. */
void cli_check_output(const char *path);
/* "MODEL.ckpt", malloc'd. */
char *cli_ckpt_path(const char *model);
/* The --log file: appended to when resuming, else created with the header
 * line.  Dies with the path on failure. */
FILE *cli_open_log(const char *path, int resume, const char *header);
double cli_now(void);     /* monotonic seconds */
/* Progress on stderr when enabled: the batch line at most every 0.5 s
 * (*last holds the time of the previous one), and the epoch's summary. */
void cli_batch_progress(double *last, long ep, long epochs, long batch,
                        long batches, double recon);
void cli_epoch_progress(long ep, long epochs, double secs, double recon);
/* "interrupted; checkpoint saved to CKPT (epoch E, batch B)" and exit
 * 128 + the signal. */
noreturn void cli_interrupted(const char *ckpt, long ep, long batch);

/* Model loading with a clear error. */
tz_model *cli_load_model(const char *path);


/* Parse "A:B,C,D:" (half-open column ranges, python-like; A defaults to 0,
 * B to n) into mask (n), setting 1 for every listed index; `unit` scales an
 * index (a softmax group size).  Dies with a usage error naming opt. */
void cli_parse_ranges(const char *spec, const char *opt, long n, int unit,
                      unsigned char *mask);

/* ---- modality streams (encode, rbm-sample) --------------------------------
 * --modality NAME=DATA: row-aligned streams, one per visible layer of a
 * multimodal model, read in lockstep.  A row of NaN marks the modality
 * absent in that row; a softmax layer also takes one integer column of
 * class indices. */
#define CLI_MAX_MODALITIES 8
typedef struct {
    int n;
    char name[CLI_MAX_MODALITIES][32];
    const char *path[CLI_MAX_MODALITIES];
    int layer[CLI_MAX_MODALITIES];      /* visible layer of the model */
    int index[CLI_MAX_MODALITIES];      /* 1: one column of class indices */
    int u8[CLI_MAX_MODALITIES];         /* u8 data for bernoulli units: with
                                           allow_real, grey levels / 255 */
    FILE *f[CLI_MAX_MODALITIES];
    tz_reader *r[CLI_MAX_MODALITIES];
    float *raw[CLI_MAX_MODALITIES];     /* (cap, input width) */
    int allow_real;
    int cap;
    uint64_t rows;                      /* rows read so far */
    /* the last batch, per visible layer of the model (not given: absent) */
    float *x[BM_MAX_LAYERS];            /* (cap, n_l) */
    unsigned char *present[BM_MAX_LAYERS];  /* (cap) */
    uint64_t *key;                      /* (cap) */
    int *order;                         /* (cap) batch row at each place */
    unsigned *pat;                      /* (cap) observed layers of it */
} cli_modal;
/* Record NAME=DATA, or DATA alone (its modality.name attribute names it);
 * exits with a usage error when malformed or full. */
void cli_modal_add(cli_modal *mm, const char *arg);
/* Open every stream and match it to a visible layer of net (by name):
 * errors for an unknown modality, a hidden layer, a repeated name, a
 * width that does not fit.  cap is the most rows read at once. */
void cli_modal_open(cli_modal *mm, const bm_net *net, int cap);
/* Read up to B (at most cap) rows of every stream into mm->x[layer] with
 * mm->present[layer][b] = 0 for absent rows, checking the values of the
 * present rows against the layer's units, and group them by the layers
 * they observe (mm->order, mm->pat: bm_group_rows).  Returns the rows
 * read, 0 at the end of every stream; exits when the streams have
 * different row counts. */
int cli_modal_read(cli_modal *mm, const bm_net *net, int B);
/* The run of places [r, end) of the last batch (n rows) that observe the
 * same layers: their observed layers copied into rows [r, end) of st in
 * that order, the others marked absent (bm_state_absent); clamp[l] (nl)
 * set for the observed visible layers.  Returns end; exits naming the row
 * when a row observes nothing and allow_none is 0. */
int cli_modal_run(const cli_modal *mm, const bm_net *net, int n, int r,
                  bm_state *st, unsigned char *clamp, int allow_none);
void cli_modal_close(cli_modal *mm);

#endif
