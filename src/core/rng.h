/*
 * rng.h - a small seeded generator (splitmix64 seeding a xoshiro256** state) so that
 * schedules, prompts and simulated outputs are reproducible from benchmark.seed.
 */
#ifndef TB_RNG_H
#define TB_RNG_H

#include <stdint.h>

struct rng {
    uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
double rng_uniform(struct rng *r);                           /* [0, 1) */
double rng_exp(struct rng *r, double mean);                  /* exponential with the given mean */
double rng_gamma(struct rng *r, double shape, double scale); /* Marsaglia-Tsang */
double rng_normal(struct rng *r);                            /* standard normal */
/* Uniform integer in [lo, hi] (inclusive). */
int64_t rng_range(struct rng *r, int64_t lo, int64_t hi);
/* A 64-bit hash of a byte string (FNV-1a then a splitmix finaliser). */
uint64_t hash64(const void *p, unsigned long n, uint64_t seed);

#endif
