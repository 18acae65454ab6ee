/* rng.h - a small deterministic random number generator (xoshiro256**,
 * seeded through splitmix64).  The same seed gives the same sequence on
 * every machine; streams for parallel work are made with rng_split.
 */
#ifndef RBMKIT_RNG_H
#define RBMKIT_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} rng_t;

void rng_seed(rng_t *r, uint64_t seed);
/* A child stream: seeded from the parent's next outputs and `index`. */
void rng_split(rng_t *child, rng_t *parent, uint64_t index);
uint64_t rng_next(rng_t *r);
/* Uniform in [0, 1) with 24 (f32) or 53 (f64) random bits. */
float rng_uniform(rng_t *r);
double rng_uniform_d(rng_t *r);
/* Standard normal (Box-Muller). */
double rng_normal(rng_t *r);
/* Uniform integer in [0, n), without modulo bias; n >= 1. */
uint64_t rng_below(rng_t *r, uint64_t n);
/* Fill u[0..n) with uniforms in [0,1) (f32). */
void rng_fill_uniform(rng_t *r, float *u, size_t n);
/* Fisher-Yates permutation of idx[0..n) (filled with 0..n-1 first). */
void rng_permutation(rng_t *r, uint64_t *idx, size_t n);

#endif
