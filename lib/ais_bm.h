/* ais_bm.h - annealed importance sampling for Boltzmann networks (bm.h):
 * the ais_target of a DBM, a multimodal DBM or an RBM as a one-edge
 * network, with one colour class summed out (see ais_bm.c for the path).
 * Run it with ais_run() and ais_estimate_from() of ais.h.
 */
#ifndef RBMKIT_AIS_BM_H
#define RBMKIT_AIS_BM_H

#include "ais.h"
#include "bm.h"

/* NULL when colour class c can be summed out, else a static message. */
const char *ais_bm_check(const bm_net *net, int c);
/* The class ais_bm_target sums out by default: the one with more units
 * (the chains then run on the narrower class), unless it cannot be. */
int ais_bm_sum_color(const bm_net *net);

/* The AIS target of net (copied: the caller keeps net).  base[l] (n_l) are
 * the base model's biases of layer l, or NULL (zeros) for any layer or for
 * the whole array; doclen is the fixed document length of
 * replicated-softmax layers (>= 1; ignored without them); c the colour
 * summed out, or -1 for ais_bm_sum_color.  Chain state: the layers of the
 * other colour, concatenated in layer order.  NULL when out of memory or
 * the class cannot be summed out. */
ais_target *ais_bm_target(const bm_net *net, const float *const *base,
                          double doclen, int c);

#endif
