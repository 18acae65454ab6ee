/* mdbn.h - multimodal deep belief nets (Srivastava & Salakhutdinov 2012):
 * one directed pathway per modality (a DBN below its top layer) under a
 * joint RBM.  The network is a tree (bm.h) with a joint layer J; the top
 * RBM is J and its neighbours (the top layers of the pathways, or a
 * modality joined to J directly); every other layer belongs to a
 * pathway, a chain from a visible layer up to a top layer.
 *
 * The weights of the tree serve both directions (tied, as a DBN before
 * up-down fine-tuning).  Each layer's bias in the tree is its generative
 * bias (the visible bias of the RBM above it, or for the top RBM its own
 * biases); every pathway hidden layer also has a recognition bias (the
 * hidden bias of the pathway RBM below it), used by the up-pass.
 *
 * Inference with some modalities observed: recognition up each observed
 * pathway to its top layer; mean-field (or Gibbs) in the top RBM over J
 * and the tops of the unobserved pathways, the observed tops clamped; then
 * generation down each unobserved pathway.
 *
 * Up-down fine-tuning (wake-sleep with CD-k in the top RBM, Hinton et al.
 * 2006, over every pathway at once) unties the pathways: W stays the
 * generative weights, R holds the recognition ones.
 *
 * Model files: model.type = mdbn, the keys of a tree (bm.h) plus the
 * attribute mdbn.joint (the joint layer's name), a tensor
 * "<layer>.up_bias" per pathway hidden layer and, once fine-tuned, "R<e>"
 * beside "W<e>" for every pathway edge (formats/model-keys.md).
 * Nothing here prints or exits.
 */
#ifndef RBMKIT_MDBN_H
#define RBMKIT_MDBN_H

#include <stddef.h>

#include "bm.h"
#include "rng.h"
#include "tz.h"

typedef struct {
    bm_net *net;                  /* owned */
    int joint;
    int parent[BM_MAX_LAYERS];    /* neighbour towards J (-1 for J) */
    int child[BM_MAX_LAYERS];     /* a pathway layer's neighbour away from
                                     J (-1 for visible layers and J) */
    int depth[BM_MAX_LAYERS];     /* edges from J */
    float *up[BM_MAX_LAYERS];     /* (n_l) recognition biases of pathway
                                     hidden layers, else NULL; owned */
    float *R[BM_MAX_LAYERS];      /* untied recognition weights of pathway
                                     edge e (the shape of its W), or NULL:
                                     tied (W both ways); owned */
} mdbn;

/* An MDBN over net (taken, also on failure) with joint layer `joint`: the
 * visible layers must be leaves, every other layer's subtree away from J
 * a chain ending in one visible layer.  Recognition biases start as
 * copies of the generative ones.  NULL with *why set. */
mdbn *mdbn_new(bm_net *net, int joint, const char **why);
void mdbn_free(mdbn *m);
/* 1 when layer l belongs to the top RBM (J or a neighbour of J). */
int mdbn_in_top(const mdbn *m, int l);
/* The visible layer at the bottom of layer l's pathway (l itself for a
 * visible layer; -1 for J). */
int mdbn_modality_of(const mdbn *m, int l);

int mdbn_to_model(const mdbn *m, tz_model *mf);
mdbn *mdbn_from_model(tz_model *mf, char *err, size_t errsize);

/* Rows [r0, r0 + B) of st with the visible layers where clamp[l] is set
 * holding data: every other layer gets its inferred value as described
 * above.  sample = 0: means, with at most iters mean-field sweeps in the
 * top RBM (tol as bm_meanfield); sample = 1: draws (recognition and
 * generation draws, iters Gibbs sweeps in the top RBM; rng needed). */
void mdbn_infer(const mdbn *m, bm_state *st, int r0, int B,
                const unsigned char *clamp, int iters, float tol, int sample,
                rng_t *rng, bm_scratch *w);

/* The three steps of mdbn_infer, for samplers that keep a chain in the
 * top RBM: the up-pass of the observed pathways (the unobserved ones set
 * to zero); the clamp of the top RBM (1 for every layer but J and the
 * unobserved tops); the down-pass of the unobserved pathways. */
void mdbn_up(const mdbn *m, bm_state *st, int r0, int B,
             const unsigned char *clamp, int sample, rng_t *rng,
             bm_scratch *w);
void mdbn_top_clamp(const mdbn *m, const unsigned char *clamp,
                    unsigned char *top_clamp);
void mdbn_down(const mdbn *m, bm_state *st, int r0, int B,
               const unsigned char *clamp, int sample, rng_t *rng,
               bm_scratch *w);

/* ---- up-down fine-tuning --------------------------------------------------- */

typedef struct mdbn_work mdbn_work;
mdbn_work *mdbn_work_new(const mdbn *m, int B);
void mdbn_work_free(mdbn_work *w);

typedef struct {
    float lr;        /* learning rate of every parameter */
    int k;           /* Gibbs steps in the top RBM */
} mdbn_tune_opts;

/* One up-down update from B complete rows: data[l] (B, n_l) for every
 * visible layer.  Wake: recognition draws up every pathway, the
 * generative weights and biases of the pathways moved towards
 * reconstructing each layer from the one above.  Top RBM: CD-k from the
 * wake tops.  Sleep: draws down every pathway from the top RBM's negative
 * state, the recognition weights and biases moved towards inferring each
 * layer from the one below.  Unties on first use.  Returns 0 or a negative
 * BM_E_* code; *recon (may be NULL) gets the summed squared error of the
 * visible layers against their generative means from the wake draws. */
int mdbn_tune_step(mdbn *m, int B, const float *const *data,
                   const mdbn_tune_opts *o, rng_t *rng, mdbn_work *w,
                   double *recon);

#endif
