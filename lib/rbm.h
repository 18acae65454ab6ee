/* rbm.h - restricted Boltzmann machines: parameters, conditionals, free
 * energy, and the training step (CD-k / PCD-k).  The unit-type math is
 * bm_layer.h's, on views of the two layers (rbm_visible_layer,
 * rbm_hidden_layer).
 *
 * Units (see ../shared/BRIEF.md section 2 and formats/model-keys.md):
 *   visible: bernoulli, gaussian (per-dimension sigma), replicated-softmax
 *            (word counts; hidden input from the bias scaled by the document
 *            length D), softmax (groups of one-hot categories)
 *   hidden:  bernoulli, gaussian (linear units with unit variance)
 *
 * Layout: every matrix is row-major.  W is (V, H): W[i*H + j] connects
 * visible i to hidden j.  A batch of B rows is (B, V) or (B, H).
 * All arithmetic is float32 with BLAS (lib/gemm.h) for every product.
 *
 * Errors: functions that can fail (they need memory) return 0 or a
 * negative BM_E_* code (bm_strerror in bm_layer.h), and their outputs are
 * then unspecified; the others return void.  rbm_to_model and the trainer's
 * save / load return tz codes (tz.h).  Nothing here prints or exits.
 */
#ifndef RBMKIT_RBM_H
#define RBMKIT_RBM_H

#include <stddef.h>
#include <stdint.h>

#include "bm_layer.h"
#include "rng.h"
#include "tz.h"

typedef enum {
    RBM_BERNOULLI = 0,
    RBM_GAUSSIAN = 1,
    RBM_REPSOFTMAX = 2,    /* replicated softmax, visible only */
    RBM_SOFTMAX = 3        /* softmax groups, visible only */
} rbm_unit;

const char *rbm_unit_name(int unit);      /* "bernoulli", ... */
int rbm_unit_parse(const char *name);     /* rbm_unit or -1 */

typedef struct {
    int nv, nh;              /* V visible, H hidden units */
    int vis, hid;            /* rbm_unit of each layer */
    int softmax_group;       /* RBM_SOFTMAX: group size K; V % K == 0 */
    float up_scale;          /* multiplies W'v in p(h|v): 1, or 2 for the
                                bottom RBM of a DBM stack */
    float down_scale;        /* multiplies W h in p(v|h): 1, or 2 for the
                                top RBM of a DBM stack */
    /* up_scale and down_scale are input multipliers applied at call time
     * to a one-edge network, the same idea as bm.h's bm_mult: DBM
     * pretraining (rbm-train --dbm-bottom / --dbm-top) doubles what the
     * edge carries in one direction.  They are no part of an energy: with
     * up_scale != down_scale the conditionals belong to no RBM (the free
     * energy below and ais.h then do not apply).  They are stored in the
     * model file (rbm.up_scale, rbm.down_scale) so that a layer of a DBM
     * stack is trained and used with the same factors. */
    float *W;                /* (V, H) */
    float *vbias;            /* (V) visible bias c */
    float *hbias;            /* (H) hidden bias b */
    float *sigma;            /* (V) gaussian visible std devs, else NULL */
} rbm;

/* Allocate with zero parameters (sigma = 1 for gaussian visible units).
 * Returns NULL if out of memory or the sizes are invalid. */
rbm *rbm_new(int nv, int nh, int vis, int hid);
void rbm_free(rbm *m);

/* The two layers of m as bm_layer views of its arrays (bm_layer.h): the
 * visible layer (bias vbias, sigma, softmax group) and the hidden layer
 * (bias hbias).  Valid while m lives. */
bm_layer rbm_visible_layer(const rbm *m);
bm_layer rbm_hidden_layer(const rbm *m);

/* Load from / save to a model file (formats/model-keys.md: tensors W,
 * vbias, hbias, sigma; attributes rbm.visible, rbm.hidden, ...).
 * rbm_from_model reads the rbm.* attributes and the tensors only, whatever
 * model.type says (lib/model.h is the one reader of model.type, and
 * dispatches here for model.type = rbm); it returns NULL with err filled.
 * rbm_to_model writes model.type = rbm with the rest. */
rbm *rbm_from_model(tz_model *mf, char *err, size_t errsize);
int rbm_to_model(const rbm *m, tz_model *mf);

/* ---- inference (B rows at a time; all outputs caller-allocated) -------- */

/* Document length D of each row (sum of counts) for replicated softmax;
 * d is (B).  For other unit types fills 1. */
void rbm_doc_lengths(const rbm *m, int B, const float *v, float *d);

/* Hidden pre-activations x (B,H) = up_scale * (v/sigma) W + D * hbias,
 * where D is the document length (replicated softmax) or 1.  Gaussian
 * visible units need B*V floats of scratch: 0 or BM_E_NOMEM. */
int rbm_hidden_input(const rbm *m, int B, const float *v, float *x);
/* Hidden means E[h|v] (B,H): sigmoid(x) for bernoulli, x for gaussian.
 * 0 or BM_E_NOMEM, as rbm_hidden_input. */
int rbm_hidden_probs(const rbm *m, int B, const float *v, float *ph);
/* Visible means E[v|h] (B,V) given h (B,H): sigmoid for bernoulli,
 * c + sigma*down_scale*Wh for gaussian, softmax within each group for
 * softmax units, D * softmax over the vocabulary for replicated softmax
 * (d is the per-row document length (B), used only there; may be NULL
 * otherwise). */
void rbm_visible_probs(const rbm *m, int B, const float *h, const float *d,
                       float *pv);
/* Draw samples from means, in place allowed (dst may equal src).
 * Hidden: bernoulli -> 0/1, gaussian -> mean + N(0,1).
 * Visible: bernoulli 0/1; gaussian mean + sigma N(0,1); softmax one-hot
 * per group; replicated softmax: d[b] words drawn from the multinomial
 * (d NULL: one word), which needs V doubles of scratch: 0 or BM_E_NOMEM. */
void rbm_sample_hidden(const rbm *m, int B, const float *ph, float *h,
                       rng_t *rng);
int rbm_sample_visible(const rbm *m, int B, const float *pv, const float *d,
                       float *v, rng_t *rng);

/* Free energy F(v) of each row (B), in double precision:
 * log p(v) = -F(v) - log Z (per document length D for replicated softmax),
 * with the energy of formats/model-keys.md (gaussian hidden units: h^2/2 -
 * x h, x the hidden input with its bias).  Meaningful when up_scale ==
 * down_scale.  0 or BM_E_NOMEM. */
int rbm_free_energy(const rbm *m, int B, const float *v, double *F);

/* Checks a row block against the unit type (bm_layer_check on the visible
 * layer): bernoulli values in {0,1} (unless allow_real), counts >= 0 and
 * integral for replicated softmax, one-hot groups for softmax, finite
 * everywhere.  Returns NULL or a static message naming the problem. */
const char *rbm_check_data(const rbm *m, int B, const float *v,
                           int allow_real);

/* ---- training ----------------------------------------------------------- */

typedef struct {
    float lr;              /* learning rate */
    float momentum;        /* this update's momentum */
    float weight_decay;    /* L2 coefficient on W */
    int k;                 /* Gibbs steps (CD-k / PCD-k) */
    int pcd;               /* persistent chains */
    float sparsity_target; /* 0 = off */
    float sparsity_cost;
    int learn_sigma;       /* gaussian visible: learn log sigma */
} rbm_train_opts;

void rbm_train_opts_init(rbm_train_opts *o);   /* lr 0.1, k 1, ... */

/* W ~ N(0, 0.01^2) from rng; vbias from the data's column means mean (V)
 * by bm_layer_init_bias: log(p/(1-p)) (bernoulli, p clipped to [1e-3,
 * 1-1e-3]), the data mean (gaussian), log of the word frequencies
 * (replicated softmax) or of category frequencies (softmax); hbias = 0. */
void rbm_init_params(rbm *m, const float *mean, rng_t *rng);

typedef struct rbm_trainer rbm_trainer;

/* Scratch for batches up to `batch` rows, momentum buffers, and (PCD)
 * `batch` persistent chains, all allocated here once (learning sigma
 * adds a buffer at the first step that does it).  Owns nothing of m. */
rbm_trainer *rbm_trainer_new(rbm *m, int batch, uint64_t seed);
void rbm_trainer_free(rbm_trainer *t);
/* Run each step on nthreads >= 1 threads (default 1): rows of the batch
 * and of the chains, then rows of W, are split among them, each thread
 * sampling with its own stream split from the trainer's each step.  The
 * result is deterministic for a given thread count (and differs between
 * counts).  Make the BLAS single-threaded (gemm_init(1)) first.  Returns 0,
 * BM_E_ARG (nthreads < 1) or BM_E_NOMEM (out of memory, no threads); the
 * trainer is then unchanged. */
int rbm_trainer_set_threads(rbm_trainer *t, int nthreads);
int rbm_trainer_threads(const rbm_trainer *t);
/* One CD-k / PCD-k update on v0 (B,V).  Returns the summed squared
 * reconstruction error sum |v0 - E[v1]|^2 over the batch, or NaN with m
 * and the trainer unchanged (B outside [1, batch], or out of memory for
 * the buffer of learn_sigma). */
double rbm_train_step(rbm_trainer *t, int B, const float *v0,
                      const rbm_train_opts *o);
/* Trainer state (momentum buffers, chains, rng) as model tensors named
 * "train.*", so a checkpoint can resume exactly. */
int rbm_trainer_save(const rbm_trainer *t, tz_model *mf);
int rbm_trainer_load(rbm_trainer *t, tz_model *mf);

#endif
