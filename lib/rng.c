/* rng.c - xoshiro256** with splitmix64 seeding (rng.h). */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

void rng_split(rng_t *child, rng_t *parent, uint64_t index)
{
    uint64_t x = rng_next(parent) ^ (index * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++)
        child->s[i] = splitmix64(&x);
}

float rng_uniform(rng_t *r)
{
    return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

double rng_uniform_d(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double rng_normal(rng_t *r)
{
    double u1 = rng_uniform_d(r), u2 = rng_uniform_d(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t rng_below(rng_t *r, uint64_t n)
{
    uint64_t lim = -n % n;   /* 2^64 mod n */
    for (;;) {
        uint64_t x = rng_next(r);
        __uint128_t m = (__uint128_t)x * n;
        if ((uint64_t)m >= lim)
            return (uint64_t)(m >> 64);
    }
}

void rng_fill_uniform(rng_t *r, float *u, size_t n)
{
    size_t i = 0;
    /* two 24-bit uniforms per 64-bit draw */
    for (; i + 1 < n; i += 2) {
        uint64_t x = rng_next(r);
        u[i] = (float)(x >> 40) * (1.0f / 16777216.0f);
        u[i + 1] = (float)((x >> 8) & 0xFFFFFF) * (1.0f / 16777216.0f);
    }
    if (i < n)
        u[i] = rng_uniform(r);
}

void rng_permutation(rng_t *r, uint64_t *idx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        uint64_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
