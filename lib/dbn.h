/* dbn.h - deep belief nets (Hinton, Osindero & Teh 2006): a stack of RBMs
 * whose top RBM is undirected and whose lower levels are directed
 * top-down sigmoid belief layers,
 *     p(v, h1, ..., hn) = p(h(n-1), hn) prod_{k<n-1} p(h_k | h_(k+1)),
 * v = h0.  Level k (0-based) is the RBM r[k] between layer k (its visible
 * layer) and layer k+1 (its hidden layer).
 *
 * Recognition (up): q(h_(k+1) | h_k) = p_(r[k])(h | v) with W_k and the
 * hidden bias of r[k].  Generation (down): p(h_k | h_(k+1)) with G_k (the
 * generative weights, equal to W_k until up-down fine-tuning unties them)
 * and the visible bias of r[k].  The top RBM r[n-1] is used both ways.
 *
 * Model files: model.type = dbn (formats/model-keys.md).  Layout and
 * errors as in rbm.h and bm.h; nothing here prints or exits.
 */
#ifndef RBMKIT_DBN_H
#define RBMKIT_DBN_H

#include <stddef.h>
#include <stdint.h>

#include "bm.h"
#include "rbm.h"
#include "rng.h"
#include "tz.h"

typedef struct {
    int n;                           /* levels (RBMs), 2..15; layers n + 1 */
    rbm *r[BM_MAX_LAYERS];           /* owned */
    float *G[BM_MAX_LAYERS];         /* (V_k, H_k) untied generative weights
                                        of level k < n-1, or NULL (= W_k) */
} dbn;

/* A DBN from n >= 2 RBMs, taking ownership of them (also on failure):
 * layer k+1 of r[k] must have the width and unit type of the visible layer
 * of r[k+1] (bernoulli hidden units feed bernoulli visible units; gaussian
 * feed gaussian); none may carry DBM pretraining scales (up_scale or
 * down_scale != 1) unless force.  NULL with a message in err. */
dbn *dbn_from_rbms(rbm **r, int n, int force, char *err, size_t errsize);
void dbn_free(dbn *d);

/* Layer names "v", "h1", ..., "hn"; width and unit type of layer l. */
const char *dbn_layer_name(int l, char *buf, size_t size);
int dbn_layer_width(const dbn *d, int l);
/* Layer l as a bm_layer: the visible layer of r[l] (l < n), or the hidden
 * layer of the top RBM (l = n).  A view, valid while d lives. */
bm_layer dbn_layer(const dbn *d, int l);

int dbn_to_model(const dbn *d, tz_model *mf);
dbn *dbn_from_model(tz_model *mf, char *err, size_t errsize);

/* Work space for batches of up to B rows. */
typedef struct dbn_work dbn_work;
dbn_work *dbn_work_new(const dbn *d, int B);
void dbn_work_free(dbn_work *w);

/* Up-pass of B rows v (B, n_0): x[l] (B, n_l) <- recognition means of
 * layers 1..top (x[0] is not touched; the caller's arrays), each from the
 * means below, or from samples below when rng is not NULL (x then holds
 * the samples).  Returns 0 or BM_E_NOMEM. */
int dbn_up(const dbn *d, int B, const float *v, int top, float *const *x,
           rng_t *rng, dbn_work *w);

/* Down-pass from layer `from` (x[from] (B, n_from) given) to layer 0: each
 * layer below drawn from p(h_k | h_(k+1)) (x[k] gets the draw), except
 * layer 0 which gets the means when means is set. */
void dbn_down(const dbn *d, int B, int from, float *const *x, int means,
              rng_t *rng, dbn_work *w);

/* out (B, n_k) <- the mean of layer k < n given layer k+1 rows x
 * (B, n_(k+1)) through the generative weights (the top RBM's W for
 * k = n-1); dl (B) the document lengths when layer k is replicated
 * softmax, else NULL. */
void dbn_down_mean(const dbn *d, int k, int B, const float *x,
                   const float *dl, float *out);

/* The variational lower bound on log p(v) of Salakhutdinov & Murray 2008,
 * without the top RBM's log Z: for each row of v (B, n_0), the mean over S
 * samples h ~ q(h1..h(n-1) | v) of
 *     sum_{k<n-1} log p(h_k | h_(k+1)) + log p*_top(h_(n-1))
 *     + sum_{k=1}^{n-1} H(q(h_k | h_(k-1)))
 * (entropies in closed form given the sampled layer below; log p*_top with
 * the top hidden layer summed out).  Subtract log Z of the top RBM for the
 * bound.  lb (B).  Returns 0 or a negative BM_E_* code. */
int dbn_lower_bound(const dbn *d, int B, const float *v, int S, rng_t *rng,
                    double *lb, dbn_work *w);

/* ---- up-down fine-tuning (contrastive wake-sleep) ------------------------ */

typedef struct {
    float lr;        /* learning rate of every parameter */
    int k;           /* Gibbs steps in the top RBM */
} dbn_tune_opts;

/* One up-down update from B rows v (B, n_0): the wake phase samples up with
 * the recognition weights and moves the generative weights of the directed
 * levels towards reconstructing each layer from the one above; the top RBM
 * gets a CD-k update from the wake sample; the sleep phase generates down
 * from the top RBM's negative sample and moves the recognition weights
 * towards inferring each layer from the one below.  Unties G on first use.
 * Returns 0 or BM_E_NOMEM; *recon (may be NULL) gets the summed squared
 * error of v against its generative means from the wake sample. */
int dbn_tune_step(dbn *d, int B, const float *v, const dbn_tune_opts *o,
                  rng_t *rng, dbn_work *w, double *recon);

#endif
