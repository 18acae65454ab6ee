/* ais.h - partition functions by annealed importance sampling (AIS) and by
 * exact enumeration, and the test log-probability they give.
 *
 * AIS (Neal 2001; Salakhutdinov & Murray 2008) estimates Z_B / Z_A of a
 * target B against a tractable base A through the intermediate
 * distributions p_k(x) ~ p*_k(x) = p*_A(x)^(1-beta_k) p*_B(x)^beta_k,
 * 0 = beta_0 < beta_1 < ... < beta_K = 1.  Each of M runs draws x_1 ~ p_A
 * and, for k = 1..K, adds log p*_k(x_k) - log p*_(k-1)(x_k) to its log
 * weight, then draws x_(k+1) ~ T_k(x_k | .), a Markov transition that leaves
 * p_k invariant.  mean(w) is an unbiased estimate of Z_B / Z_A.
 *
 * The annealing loop knows nothing of RBMs: it drives an ais_target, a
 * state width and three callbacks.  ais_rbm_target() builds the target of
 * an RBM (every visible unit type of rbm.h, Bernoulli hidden units) with the
 * hidden layer summed out; a DBN or DBM bound adds its own target.
 *
 * Conventions: functions return 0 or a negative AIS_E_* code (message from
 * ais_strerror); constructors return NULL when out of memory; checkers
 * return NULL or a static message.  The caller owns every array it passes;
 * what a function returns with malloc is the caller's to free.  Nothing
 * here prints or exits.
 */
#ifndef RBMKIT_AIS_H
#define RBMKIT_AIS_H

#include <stddef.h>
#include <stdint.h>

#include "rbm.h"
#include "rng.h"

enum {
    AIS_OK = 0,
    AIS_E_NOMEM = -1,
    AIS_E_ARG = -2,          /* invalid schedule, run count, ... */
    AIS_E_TOOBIG = -3,       /* exact enumeration: both layers too large */
    AIS_E_UNSUPPORTED = -4   /* a model this module cannot handle */
};
const char *ais_strerror(int code);

/* ---- schedules --------------------------------------------------------- */

/* The default number of annealing steps K (Salakhutdinov & Murray 2008). */
#define AIS_DEFAULT_STEPS 14500

/* The three-segment schedule with K steps: beta (K+1), malloc'd, with
 * beta[0] = 0 and beta[K] = 1.  The steps are shared among [0, 0.5],
 * [0.5, 0.9] and [0.9, 1] in the proportions 500 : 4000 : 10000 of the
 * paper's schedule (uniform within a segment; each segment gets at least
 * one step), so K = 14500 gives steps of 1e-3, 1e-4 and 1e-5 exactly.
 * Returns NULL when K < 3 or out of memory. */
double *ais_schedule_default(int K);

/* NULL when beta (K+1) is a valid schedule: beta[0] = 0, beta[K] = 1,
 * strictly increasing also after rounding to float (the precision the
 * chains use), K >= 1; else a static message. */
const char *ais_schedule_check(const double *beta, int K);

/* ---- the annealing target ---------------------------------------------- */

typedef struct ais_target ais_target;
struct ais_target {
    int width;          /* floats of chain state per run */
    double log_z0;      /* log Z of the base distribution (beta = 0) */
    void *ctx;          /* owned by the target, released by destroy */
    /* Bytes of scratch memory for B runs at a time. */
    size_t (*scratch_bytes)(const ais_target *t, int B);
    /* x (B, width) <- exact draws from the base distribution; row b uses
     * rng[b]. */
    void (*sample_base)(const ais_target *t, int B, float *x, rng_t *rng,
                        void *scratch);
    /* One annealing step from beta0 to beta1 on x (B, width):
     *   logw[b] += log p*_beta1(x_b) - log p*_beta0(x_b);
     * then, when move is nonzero, x_b <- a draw from a transition that
     * leaves p_beta1 invariant (row b uses rng[b]).  beta0 and beta1 are
     * floats so that the same rounded values enter both evaluations. */
    void (*step)(const ais_target *t, float beta0, float beta1, int move,
                 int B, float *x, double *logw, rng_t *rng, void *scratch);
    void (*destroy)(ais_target *t);
    /* Optional (NULL): release what step or sample_base allocated and kept
     * in the scratch block, called before it is freed. */
    void (*scratch_release)(const ais_target *t, void *scratch);
};

void ais_target_free(ais_target *t);     /* calls destroy; NULL is a no-op */

/* Run M independent AIS runs over beta (K+1) and store their log weights
 * logw (M).  Run i draws from its own stream rng_split(seed stream, i), so
 * the result does not depend on how runs are grouped; with nthreads > 1 the
 * runs are shared among that many threads, each calling gemm_f32 on its own
 * block (set the BLAS to one thread with gemm_init(1) first).  `progress`,
 * when not NULL, is called now and then from the calling thread with the
 * fraction done.  Returns 0 or a negative code. */
int ais_run(const ais_target *t, const double *beta, int K, int M,
            uint64_t seed, int nthreads, double *logw,
            void (*progress)(double fraction, void *arg), void *arg);

/* The estimate from M >= 2 log weights: with w_i = exp(logw_i),
 * r = mean(w) and s = std(w) / sqrt(M) (std with M - 1 in the divisor),
 *   logz      = log_z0 + log r
 *   logz_low  = log_z0 + log(r - 3 s), or -INFINITY when r <= 3 s
 *   logz_high = log_z0 + log(r + 3 s)
 * all computed relative to max(logw), so nothing overflows. */
typedef struct {
    double logz, logz_low, logz_high;
    double log_ess;     /* log effective sample size (sum w)^2 / sum w^2 */
} ais_estimate;
int ais_estimate_from(const double *logw, int M, double log_z0,
                      ais_estimate *e);

/* ---- restricted Boltzmann machines ------------------------------------- */

/* NULL when the RBM can be annealed and enumerated here, else a static
 * message: hidden units must be Bernoulli and up_scale == down_scale (the
 * model's weights are then up_scale * W). */
const char *ais_rbm_check(const rbm *m);

/* log p*(v) = -F(v) (B) in double for rows v (B, V), with the energy of
 * rbm.h and hidden units summed out (returns 0 or AIS_E_NOMEM):
 *   bernoulli, softmax:  c'v + sum_j softplus(b_j + (v'W)_j)
 *   gaussian:            -sum_i (v_i - c_i)^2 / (2 sigma_i^2)
 *                        + sum_j softplus(b_j + ((v/sigma)'W)_j)
 *   replicated softmax:  c'v + sum_j softplus(D b_j + (v'W)_j), D = sum v
 * (replicated softmax scores the document as a word sequence, so
 * log p(v) = log p*(v) - log Z_D with no multinomial coefficient). */
int ais_rbm_log_pstar(const rbm *m, int B, const float *v, double *lp);

/* Base-rate visible biases (V) from data column sums colsum (V) over n rows
 * (n words in total for replicated softmax), with pseudo-count 1
 * (bm_layer_base_bias on the visible layer):
 *   bernoulli: log((s_i + 1) / (n - s_i + 1))           (marginal log-odds)
 *   softmax:   log((s_k + 1) / (n + K)) within each group of K
 *   replicated softmax: log((s_k + 1) / (n_words + V))  (word frequencies)
 *   gaussian:  the column means s_i / n (the base keeps the model's sigma).
 * Returns 0, or AIS_E_ARG when n <= 0. */
int ais_rbm_base_from_sums(const rbm *m, const double *colsum, double n,
                           float *base);

/* The AIS target of an RBM.  Base A: W = 0, b = 0, visible biases `base`
 * (V), or zeros when base is NULL; the same sigma for gaussian units.
 * doclen is the document length D for replicated softmax (>= 1; ignored
 * otherwise).  Chains run on v with h summed out; the transition samples
 * h | v and then v | h at beta (see ais.c for the derivation).  Returns
 * NULL when out of memory or the model fails ais_rbm_check. */
ais_target *ais_rbm_target(const rbm *m, const float *base, int doclen);

/* Exact log Z by enumerating the layer with fewer states (hidden: 2^H;
 * visible: 2^V for bernoulli, K^(V/K) for softmax groups; gaussian and
 * replicated softmax visible layers are integrated or summed in closed
 * form, so only the hidden layer is enumerated for them).  doclen as
 * above.  Returns AIS_E_TOOBIG when both layers exceed 2^30 states.
 * *states gets the number of states enumerated and *layer 'h' or 'v'
 * (either may be NULL).  nthreads >= 1 threads share the states. */
int ais_rbm_exact_logz(const rbm *m, int doclen, int nthreads,
                       double *logz, double *states, char *layer);

#endif
