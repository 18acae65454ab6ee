/* tensor.h - the subcommands of the `tensor` tool, one function each.
 *
 * cmd/tensor.c holds main(), the dispatcher, --help and the stream
 * subcommands; cmd/tensor/io.c holds import, export and tile;
 * cmd/tensor/text.c holds bow and words; cmd/tensor/pca.c holds pca and
 * whiten.  Each function receives argv with argv[0] = the subcommand name
 * (so getopt_long works as usual, with optind reset to 1 by the caller) and
 * returns the exit status (0, 1 or 2), or exits through cli_die.
 *
 * Common options every subcommand accepts where it writes a stream:
 *   -f, --force            write binary to a terminal
 *   -q, --quiet            no progress
 *       --level N          zstd level (default 1; negative = faster)
 *       --chunk-size N     uncompressed bytes per chunk (default 1048576)
 * Inputs: a FILE operand, "-" or none means stdin.  Data goes to stdout.
 *
 * The interface, fixed for scripts and other tools:
 *   tensor info [--json] [FILE]
 *       dtype, record shape, record count, attributes, compressed size;
 *       for a model file, one block per tensor.
 *   tensor cat [FILE...]            concatenate compatible streams
 *   tensor head -n N [FILE]         first N records
 *   tensor slice [-r A:B] [-c A:B] [FILE]   rows [A,B) and columns [A,B)
 *                                   of rank-1 records (python-like, B may
 *                                   be omitted; negative counts from end)
 *   tensor paste FILE FILE...       join aligned streams column-wise
 *                                   (records flattened; dtype promoted)
 *   tensor shuffle [-s SEED] [FILE] random permutation (in memory)
 *   tensor split -n N [-p PREFIX] [FILE]   N-record pieces PREFIX0000.tz..
 *   tensor stats [--save FILE] [FILE]      per-column mean/std/min/max
 *                                   (text table; --save writes a model
 *                                   file with tensors mean, std, min, max)
 *   tensor standardize [--stats FILE] [--save FILE] [FILE]
 *                                   (x - mean) / std per column, f32;
 *                                   statistics fitted here unless given
 *   tensor binarize [-t T | --stochastic -s SEED] [FILE]   -> u8 0/1
 *   tensor import idx|csv|tsv|npy|pgm [--dtype T] [--header] [FILE]
 *   tensor export csv|tsv|npy|pgm|png [--name TENSOR] [FILE]
 *   tensor tile [--rows R] [--cols C] [--shape HxW] [--name TENSOR]
 *               [--transpose] [--scale minmax|unit] [FILE]    -> PNG
 *   tensor bow [--vocab FILE] [--save-vocab FILE] [--max-words N]
 *              [--min-count N] [FILE]   text lines -> word-count rows
 *   tensor words --vocab FILE [-n N] [FILE]  rows -> top N words a line
 *   tensor pca -k K [--save FILE] [--model FILE] [FILE]
 *   tensor whiten [--zca] [--epsilon E] [--save FILE] [--model FILE] [FILE]
 */
#ifndef RBMKIT_TENSOR_H
#define RBMKIT_TENSOR_H

int tensor_info(int argc, char **argv);
int tensor_cat(int argc, char **argv);
int tensor_head(int argc, char **argv);
int tensor_slice(int argc, char **argv);
int tensor_paste(int argc, char **argv);
int tensor_shuffle(int argc, char **argv);
int tensor_split(int argc, char **argv);
int tensor_stats(int argc, char **argv);
int tensor_standardize(int argc, char **argv);
int tensor_binarize(int argc, char **argv);

int tensor_import(int argc, char **argv);   /* cmd/tensor/io.c */
int tensor_export(int argc, char **argv);
int tensor_tile(int argc, char **argv);

int tensor_bow(int argc, char **argv);      /* cmd/tensor/text.c */
int tensor_words(int argc, char **argv);

int tensor_pca(int argc, char **argv);      /* cmd/tensor/pca.c */
int tensor_whiten(int argc, char **argv);

/* Helpers shared by the subcommands (cmd/tensor/util.c). */
#include <stddef.h>
#include <stdnoreturn.h>
#include "tz.h"
/* malloc that dies with "out of memory"; n = 0 is allowed. */
void *tensor_xmalloc(size_t n);
/* Usage error for getopt_long's ':' or '?' (optstring starting with ':'),
 * naming the subcommand argv[0]: "import: unknown option '-x'". */
noreturn void tensor_option_error(int c, char **argv);
/* The single optional FILE operand after the options (NULL: stdin); more
 * is a usage error naming the subcommand argv[0]. */
const char *tensor_one_operand(int argc, char **argv);
/* Close the writer and stdout; dies on error (quietly on a closed pipe). */
void tensor_finish_writer(tz_writer *w);

#endif
