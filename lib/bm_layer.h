/* bm_layer.h - a layer of a Boltzmann machine: a group of units of one
 * type, with its bias.  This is the only module that knows unit types;
 * rbm.c, bm.c, ais.c and the tools call it for every per-type formula.
 *
 * A layer's units enter the energy as
 *     -E = sum_i [ own_i(v_i) + s_i(v_i) x_i ]
 * where x is the total input from the neighbouring layers (the weighted sum
 * of their scaled states, without this layer's bias), s(v) the scaled state
 * a neighbour sees, and own(v) the layer's own term:
 *
 *   type                state            s(v)        own(v)
 *   bernoulli           v in {0,1}       v           d c'v
 *   gaussian            v real           v/sigma     -(v - c)^2 / (2 sigma^2)
 *   softmax (groups K)  one-hot per group v          d c'v
 *   replicated softmax  counts, D = sum v v          c'v
 *
 * d is a per-row multiplier of the bias: the document length D of a
 * replicated-softmax neighbour (the hidden bias of a replicated-softmax
 * RBM is scaled by D), else 1.  For a replicated-softmax layer itself d is
 * its own document length D, the number of words in a row.
 *
 * Given the input x (B, n) the conditional distribution of the layer is
 * independent across units (or groups), with
 *   mean        bernoulli s(x + d c); gaussian c + sigma x (no d); softmax
 *               softmax(x + d c) within each group; replicated softmax
 *               D softmax(x + c) over the vocabulary
 *   log-partition  log sum_v exp(own(v) + s(v)'x) summed over the layer:
 *               bernoulli sum softplus(x + d c); gaussian
 *               sum [log(sqrt(2 pi) sigma) + c x / sigma + x^2 / 2];
 *               softmax sum over groups of logsumexp(x + d c); replicated
 *               softmax D logsumexp(x + c) (the D words as a sequence).
 *
 * Layout: a batch is row-major (B, n).  A layer does not own its arrays
 * when it is a view (rbm.c views its parameters this way); bm.c allocates
 * them.  Nothing here prints or exits; functions that need memory take
 * caller scratch or return BM_E_NOMEM.
 */
#ifndef RBMKIT_BM_LAYER_H
#define RBMKIT_BM_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

typedef enum {
    BM_BERNOULLI = 0,
    BM_GAUSSIAN = 1,
    BM_REPSOFTMAX = 2,   /* replicated softmax (word counts) */
    BM_SOFTMAX = 3,      /* groups of one-hot categories */
    BM_NUNITS = 4
} bm_unit;

/* Error codes of the numeric modules (bm_layer, bm, rbm, model). */
enum {
    BM_OK = 0,
    BM_E_NOMEM = -1,
    BM_E_ARG = -2,         /* invalid size, type or argument */
    BM_E_TOOBIG = -3,      /* exact enumeration: too many states */
    BM_E_UNSUPPORTED = -4, /* an operation this unit type cannot do */
    BM_E_DATA = -5         /* input rows that fail the layer's check */
};
const char *bm_strerror(int code);

const char *bm_unit_name(int unit);      /* "bernoulli", ..., "?" */
int bm_unit_parse(const char *name);     /* bm_unit, or -1 */

#define BM_NAME_MAX 32

typedef struct {
    char name[BM_NAME_MAX];  /* "v", "h1", "label", ... */
    int unit;                /* bm_unit */
    int n;                   /* units */
    int group;               /* softmax: group size K (n % K == 0);
                                replicated softmax: n; else 1 */
    float *bias;             /* (n) c */
    float *sigma;            /* (n) gaussian standard deviations, else NULL */
} bm_layer;

/* NULL when the layer's type, sizes and arrays are consistent, else a
 * static message. */
const char *bm_layer_validate(const bm_layer *L);

/* The scaled state s(v) (B, n) that neighbours see: v / sigma for gaussian
 * units, else a copy (out may equal v). */
void bm_layer_scale(const bm_layer *L, int B, const float *v, float *out);
/* The wake-sleep residuals of B rows x against their predicted means:
 * diff (B, n) <- (x - mean) / sigma (for the weights; sigma 1 but for
 * gaussian units) and bd (B, n) <- (x - mean) / sigma^2 (for the bias). */
void bm_layer_residual(const bm_layer *L, int B, const float *x,
                       const float *mean, float *diff, float *bd);

/* Per-row document length D = sum of the row (B) for replicated softmax;
 * 1 for every other type. */
void bm_layer_doclen(const bm_layer *L, int B, const float *v, float *D);

/* In place: x (B, n) holds the input from the neighbours; on return it
 * holds the conditional mean given that input (table above).  d (B) is the
 * per-row bias multiplier (or, for replicated softmax, the document length);
 * NULL means 1. */
void bm_layer_mean(const bm_layer *L, int B, float *x, const float *d);

/* out (B, n) <- a draw from the conditional whose mean is `mean` (in place
 * allowed): bernoulli 0/1, gaussian mean + sigma N(0,1), softmax one-hot
 * per group, replicated softmax round(d[b]) words from mean / d[b]
 * (d NULL: one word).  `cdf` is scratch of n doubles, needed only for
 * replicated softmax (NULL allowed otherwise). */
void bm_layer_sample(const bm_layer *L, int B, const float *mean,
                     const float *d, float *out, rng_t *rng, double *cdf);

/* Sum over the layer of log sum_v exp(own(v) + s(v)'x), in double, for each
 * row of x (B, n) (the input without the bias); d as for bm_layer_mean.
 * Each unit's term (each softmax group's, the whole replicated-softmax
 * layer's) is added to out[b] as it is computed, one running sum that
 * continues the caller's.  bm_layer_add_logpart_d takes its input in
 * double (exact enumeration multiplies in double). */
void bm_layer_add_logpart(const bm_layer *L, int B, const float *x,
                          const float *d, double *out);
void bm_layer_add_logpart_d(const bm_layer *L, int B, const double *x,
                            const float *d, double *out);

/* Adds own(v) (the layer's own term of -E) of each row of v (B, n) to
 * out (B); d as for bm_layer_mean (replicated softmax ignores it). */
void bm_layer_add_own(const bm_layer *L, int B, const float *v,
                      const float *d, double *out);

/* Adds the entropy of the factorised distribution with means mu (B, n) to
 * out (B): bernoulli -sum [mu log mu + (1-mu) log(1-mu)], softmax
 * -sum mu log mu within each group.  BM_E_UNSUPPORTED for gaussian and
 * replicated-softmax layers (mean-field posteriors are not defined for
 * them here), else 0. */
int bm_layer_add_entropy(const bm_layer *L, int B, const float *mu,
                         double *out);

/* NULL when the rows v (B, n) are valid states of the layer, else a static
 * message: finite; bernoulli in {0,1} (in [0,1] with allow_real, for
 * probabilities); replicated softmax counts >= 0 and integral; softmax
 * groups one-hot (non-negative summing to 1 with allow_real). */
const char *bm_layer_check(const bm_layer *L, int B, const float *v,
                           int allow_real);

/* The bias from data column means mean (n): bernoulli log(p/(1-p)) with p
 * clipped to [1e-3, 1-1e-3]; gaussian the mean; softmax and replicated
 * softmax log of the frequencies within each group (at least 1e-6). */
void bm_layer_init_bias(bm_layer *L, const float *mean);

/* A random state for one row (n): bernoulli uniform 0/1, gaussian
 * c + sigma N(0,1), softmax a uniform category per group, replicated
 * softmax `length` uniformly drawn words. */
void bm_layer_random(const bm_layer *L, float *v, long length, rng_t *rng);

/* Number of states of the layer when it can be enumerated (bernoulli 2^n,
 * softmax K^(n/K)), as a double; 0 for gaussian and replicated softmax.
 * bm_layer_state(L, k, v) writes state number k (0 <= k < count) to v (n). */
double bm_layer_states(const bm_layer *L);
void bm_layer_state(const bm_layer *L, uint64_t k, float *v);

/* ---- row-wise draws and base rates (AIS) ---------------------------------- */

/* Draws given the input rather than the mean, one random stream per row
 * (rng has B streams; row b uses rng[b], as AIS runs do): row b of out
 * (B, n) <- a draw from the layer's conditional given the input x (B, n)
 * (without the bias; d as for bm_layer_mean):
 *   bernoulli  [u < sigmoid(x + d c)], u from rng_fill_uniform
 *   gaussian   c + sigma (x + z), z standard normal (Box-Muller pairs)
 *   softmax, replicated softmax: the probabilities exp(x + d c - max)
 *              (replicated softmax: x + c) summed in double within each
 *              group (not rounded through the float means of
 *              bm_layer_mean); one category per group, resp. round(d[b])
 *              words (d NULL: one).
 * out may equal x.  cdf: scratch of `group` doubles (softmax, replicated
 * softmax; NULL allowed otherwise). */
void bm_layer_sample_input(const bm_layer *L, int B, const float *x,
                           const float *d, float *out, rng_t *rng,
                           double *cdf);

/* Base-rate biases (the AIS base of ais.h) from data column sums colsum
 * (n) over `rows` rows, with pseudo-count 1, into L->bias: bernoulli
 * log((s_i + 1) / (rows - s_i + 1)); softmax log((s_k + 1) / (S_g + K)),
 * S_g the sum of the group's column sums; replicated softmax
 * log((s_k + 1) / (S + n)), S the sum of all column sums (the words);
 * gaussian the column means s_i / rows.  BM_E_ARG when rows <= 0, else 0. */
int bm_layer_base_bias(bm_layer *L, const double *colsum, double rows);

#endif
