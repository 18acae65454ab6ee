/* bm.h - Boltzmann networks: layers (bm_layer.h) joined by weight matrices
 * along the edges of a tree.  One edge is an RBM; a chain is a deep
 * Boltzmann machine (DBM); chains joined at a top layer are a multimodal
 * DBM.  This module holds what all of them share: the parameters and their
 * model keys, block Gibbs sampling, mean-field inference, the unnormalised
 * log-probability with one colour class summed out, exact log Z by
 * enumeration, and the DBM training step (mean-field data term, persistent
 * chains for the model term).
 *
 * Energy of a state (x_l for every layer l):
 *     -E = sum_l own_l(x_l) + sum_edges s_a(x_a)' W_e s_b(x_b)
 * with own and s of bm_layer.h.  A tree is bipartite: colour 0 holds the
 * layers at even depth from layer 0, colour 1 the odd ones, and the layers
 * of one colour are independent given the other, so block Gibbs alternates
 * the two classes and either class sums out analytically.
 *
 * Per-edge input multipliers (bm_mult) scale what an edge carries in each
 * direction at call time: the bottom-up pass that starts DBM mean-field
 * doubles inputs, AIS scales every edge by beta, and DBM pretraining
 * (rbm-train --dbm-bottom/--dbm-top) is the same scaling on a one-edge
 * network.  Stored models carry no multipliers.
 *
 * Layout: W of edge e is (n_a, n_b) row-major, a = E[e].a the endpoint
 * nearer layer 0.  A state of B rows has one (B, n_l) array per layer.
 * Errors: 0 or a negative BM_E_* code (bm_strerror); constructors return
 * NULL.  Nothing here prints or exits.  bm_free(NULL) is a no-op.
 */
#ifndef RBMKIT_BM_H
#define RBMKIT_BM_H

#include <stddef.h>
#include <stdint.h>

#include "bm_layer.h"
#include "rng.h"
#include "tz.h"

#define BM_MAX_LAYERS 16

typedef struct {
    int a, b;            /* layers joined; a is nearer layer 0 */
    float *W;            /* (n_a, n_b) */
} bm_edge;

typedef struct {
    int nl, ne;                  /* layers; edges = nl - 1 */
    bm_layer L[BM_MAX_LAYERS];
    bm_edge E[BM_MAX_LAYERS];
    int color[BM_MAX_LAYERS];    /* 0 or 1: depth parity from layer 0 */
    int dsrc[BM_MAX_LAYERS];     /* replicated-softmax neighbour whose
                                    document length scales this layer's
                                    bias, or -1 */
    unsigned char vis[BM_MAX_LAYERS]; /* 1: a visible layer (a modality:
                                    given as data, or inferred when absent) */
    float doclen[BM_MAX_LAYERS]; /* replicated-softmax visible layers: the
                                    document length assumed when the
                                    modality is absent (0 = unknown: 1) */
    int owns;                    /* 1: bm_free frees the arrays */
} bm_net;

/* A layer as given to bm_new: name, unit type, width, softmax group (0 =
 * the default: 1, or n for replicated softmax), visible (a modality).
 * When no layer is marked visible, layer 0 is. */
typedef struct {
    const char *name;
    int unit, n, group;
    int visible;
} bm_layer_spec;

/* A network of nl layers and nl - 1 edges edges[e] = {a, b} forming a tree
 * (every layer reachable from layer 0), with zero weights and biases and
 * sigma 1.  Returns NULL on invalid input or out of memory (then *why, if
 * not NULL, gets a static message). */
bm_net *bm_new(int nl, const bm_layer_spec *spec, const int (*edges)[2],
               const char **why);
void bm_free(bm_net *net);
/* A deep copy (owning). */
bm_net *bm_clone(const bm_net *net);

/* Layer index by name, or -1. */
int bm_find_layer(const bm_net *net, const char *name);
/* The edge joining layers a and b (either order), or -1. */
int bm_find_edge(const bm_net *net, int a, int b);
/* Number of weights plus biases. */
size_t bm_param_count(const bm_net *net);

/* ---- model files (formats/model-keys.md, model.type = dbm) -------------- */

/* Tensors "W1".."Wn" (edge e is "W<e+1>"), "<layer>.bias", "<layer>.sigma";
 * attributes dbm.layers, layer.<i>.name / .unit / .units / .softmax_group
 * / .visible / .doclen, edge.<e>.from / .to (layer names).  A file without
 * any layer.<i>.visible (made before multimodal models) has layer 0 and a
 * layer named "label" visible.  bm_to_model adds to mf (model.type is
 * the caller's); bm_from_model reads them (NULL with a message in err). */
int bm_to_model(const bm_net *net, tz_model *mf);
bm_net *bm_from_model(tz_model *mf, char *err, size_t errsize);

/* ---- states --------------------------------------------------------------- */

typedef struct {
    int cap;                      /* rows allocated */
    float *x[BM_MAX_LAYERS];      /* (cap, n_l): states or means */
    float *s[BM_MAX_LAYERS];      /* scaled states s(x) (gaussian layers;
                                     else the same pointer as x) */
    float *D[BM_MAX_LAYERS];      /* (cap) document lengths of
                                     replicated-softmax layers, else NULL */
} bm_state;

/* Allocate a state for up to cap rows (zeros; D = 1).  Returns 0 or
 * BM_E_NOMEM; bm_state_free on a zeroed or failed state is safe. */
int bm_state_alloc(const bm_net *net, bm_state *st, int cap);
void bm_state_free(bm_state *st);
/* Set layer l of rows [0, B) from v (B, n_l): copy, scaled copy and
 * document lengths. */
void bm_state_set(const bm_net *net, bm_state *st, int l, int B,
                  const float *v);
/* Recompute s and D of layer l for rows [r0, r0 + B) after x changed. */
void bm_state_sync(const bm_net *net, bm_state *st, int l, int r0, int B);
/* Mark layer l of rows [r0, r0 + B) as not observed: x = s = 0, and a
 * replicated-softmax layer's document length is net->doclen[l] (1 when
 * unknown), so the means inferred for it have that many words. */
void bm_state_absent(const bm_net *net, bm_state *st, int l, int r0, int B);

/* Input multipliers: up[e] scales what edge e carries from a to b, down[e]
 * from b to a.  A NULL bm_mult means 1 on every edge. */
typedef struct {
    float up[BM_MAX_LAYERS], down[BM_MAX_LAYERS];
} bm_mult;
/* Scratch for B rows of the operations below (one per thread). */
typedef struct bm_scratch bm_scratch;
bm_scratch *bm_scratch_new(const bm_net *net, int B);
void bm_scratch_free(bm_scratch *w);
/* Its (B, widest layer) buffer, free for the caller between calls (every
 * function here that takes w may overwrite it). */
float *bm_scratch_buf(bm_scratch *w);
/* Its (widest layer) double buffer for bm_layer_sample's cdf. */
double *bm_scratch_cdf(bm_scratch *w);
/* The bias multipliers of layer l for rows from r0 (NULL = 1): the
 * document lengths of its replicated-softmax neighbour, or its own. */
const float *bm_bias_mult(const bm_net *net, const bm_state *st, int l,
                          int r0);

/* x (B, n_l) <- the total input of layer l from its neighbours in rows
 * [r0, r0 + B) of st (their scaled states), with multipliers m (NULL = 1);
 * `from` is a bit mask of the neighbour layers to include (~0 = all). */
void bm_input(const bm_net *net, const bm_state *st, int l, int r0, int B,
              const bm_mult *m, unsigned from, float *x);

/* Layer l of rows [r0, r0 + B) <- its conditional mean given its
 * neighbours (sample = 0) or a draw from the conditional (sample = 1). */
void bm_update(const bm_net *net, bm_state *st, int l, int r0, int B,
               const bm_mult *m, int sample, rng_t *rng, bm_scratch *w);

/* One block Gibbs sweep of rows [r0, r0 + B): colour 1 given colour 0, then
 * colour 0 given colour 1; layers with clamp[l] set are left as they are
 * (clamp may be NULL).  Draws from rng. */
void bm_gibbs_sweep(const bm_net *net, bm_state *st, int r0, int B,
                    const unsigned char *clamp, rng_t *rng, bm_scratch *w);
/* The same with input multipliers m (NULL = 1). */
void bm_gibbs_sweep_mult(const bm_net *net, bm_state *st, int r0, int B,
                         const unsigned char *clamp, const bm_mult *m,
                         rng_t *rng, bm_scratch *w);

/* Mean-field inference on rows [r0, r0 + B): the layers without clamp[l]
 * hold means in [0,1] (their start values are used), updated in layer
 * order until the largest change of any mean is below tol or after iters
 * sweeps; damping in [0,1) keeps that share of the old mean.  Returns the
 * sweeps run. */
int bm_meanfield(const bm_net *net, bm_state *st, int r0, int B,
                 const unsigned char *clamp, int iters, float tol,
                 float damping, bm_scratch *w);
int bm_meanfield_mult(const bm_net *net, bm_state *st, int r0, int B,
                      const unsigned char *clamp, const bm_mult *m, int iters,
                      float tol, float damping, bm_scratch *w);
/* The same with some units of unclamped layers held at their start values:
 * held[l] (may be NULL, as may held itself) marks them (n_l) - a layer
 * observed in part, such as the left half of a digit. */
int bm_meanfield_held(const bm_net *net, bm_state *st, int r0, int B,
                      const unsigned char *clamp,
                      const unsigned char *const *held, int iters, float tol,
                      float damping, bm_scratch *w);

/* Start values for mean-field (Salakhutdinov & Hinton 2009: a bottom-up
 * pass with doubled weights): outward from the clamped layers, each layer
 * when first reached gets its mean from the neighbours already set, with
 * their input doubled when it has neighbours not yet set.  In a DBM chain
 * with v clamped: h_k from 2 W_k' h_(k-1) for k < n, h_n from W_n' h_(n-1). */
void bm_bottom_up(const bm_net *net, bm_state *st, int r0, int B,
                  const unsigned char *clamp, bm_scratch *w);

/* log p*(x) with the layers of colour c summed out, for rows [r0, r0+B)
 * (the layers of the other colour give the state), into lp (B), double:
 *   sum_{l not in c} own_l(x_l) + sum_{l in c} logpart_l(input of l). */
void bm_log_pstar(const bm_net *net, const bm_state *st, int r0, int B,
                  int c, double *lp, bm_scratch *w);

/* log p*(x) of a whole state (nothing summed out) for rows [r0, r0+B):
 * sum_l own_l(x_l) + sum_e s_a' W_e s_b, into lp (B).  With mean-field
 * means in the unclamped layers this is E_q[-E], the first term of the
 * variational bound log p(v) >= E_q[-E(v,h)] + H(q) - log Z. */
void bm_log_pjoint(const bm_net *net, const bm_state *st, int r0, int B,
                   double *lp, bm_scratch *w);

/* The colour class that is cheaper to enumerate (both must be
 * enumerable: bernoulli or softmax layers only), or -1. */
int bm_enum_color(const bm_net *net, double *states);

/* Exact log Z: enumerate the joint states of the layers of colour
 * 1 - c (c as chosen by bm_enum_color) and sum colour c out.  BM_E_TOOBIG
 * above 2^30 states; doclen fixes replicated-softmax document lengths. */
int bm_exact_logz(const bm_net *net, double doclen, double *logz);

/* Rows grouped by the visible layers they observe, for inference and
 * training with absent modalities: present[l][b] (present, or present[l],
 * may be NULL: every row) marks row b's layer l observed.  A stable sort:
 * order[i] is the row that goes to place i, pat[i] its observed visible
 * layers (a bit per layer); key is (B) scratch. */
void bm_group_rows(const bm_net *net, int B,
                   const unsigned char *const *present, uint64_t *key,
                   int *order, unsigned *pat);

/* ---- DBM training ------------------------------------------------------------ */

typedef struct {
    float lr;              /* this update's learning rate */
    float momentum;
    float weight_decay;    /* L2 on the weights */
    int mf_iters;          /* mean-field sweeps at most (data term) */
    float mf_tol;          /* stop when no mean changes more than this */
    float damping;         /* mean-field damping, 0 = none */
    int sweeps;            /* Gibbs sweeps of the persistent chains */
    float sparsity_target; /* 0 = off: mean activity target of hidden layers */
    float sparsity_cost;
    int rebinarize;        /* visible bernoulli data: draw 0/1 from the
                              grey values each update */
    const bm_mult *mult;   /* input multipliers of the mean-field and the
                              chains (NULL = 1): pretraining a layer of a
                              DBM as a network of its own */
} bm_train_opts;
void bm_train_opts_init(bm_train_opts *o);

typedef struct bm_trainer bm_trainer;

/* A trainer for batches of up to `batch` rows and `chains` persistent
 * chains, started from random states by the first step.  visible[l] marks
 * the layers clamped to data.  Owns nothing of net. */
bm_trainer *bm_trainer_new(bm_net *net, const unsigned char *visible,
                           int batch, int chains, uint64_t seed);
void bm_trainer_free(bm_trainer *t);
/* Rows of the batch and of the chains, and rows of each W for the update,
 * are split among n threads (single-threaded BLAS each).  0 or BM_E_NOMEM. */
int bm_trainer_set_threads(bm_trainer *t, int n);
/* One update from B data rows: data[l] (B, n_l) for the visible layers
 * (NULL for the others).  present (may be NULL, as may present[l]) marks
 * per row whether visible layer l is observed: an absent one is inferred
 * by mean-field with the others, as a hidden layer is (rows are grouped
 * by which layers they have; with every row complete nothing changes).
 * Returns 0 or a negative code; stats (may be NULL) get the mean
 * mean-field sweeps run and the squared reconstruction error of the
 * observed visible layers from the data's mean-field posterior. */
typedef struct {
    double mf_sweeps;      /* mean over the batch's threads */
    double recon;          /* summed over the batch */
} bm_step_stats;
int bm_train_step(bm_trainer *t, int B, const float *const *data,
                  const unsigned char *const *present,
                  const bm_train_opts *o, bm_step_stats *stats);
/* Trainer state (momentum, chains, rng, step count) as tensors "train.*". */
int bm_trainer_save(const bm_trainer *t, tz_model *mf);
int bm_trainer_load(bm_trainer *t, tz_model *mf);

#endif
