/*
 * capacity.h - the largest number of closed-loop users whose measured percentiles meet the SLO,
 * found with few measurements: start at the planner's answer, step outwards (1, 2, 4, ...)
 * until the answer is bracketed, then bisect. Assumes attainment falls as users rise, which
 * holds for one engine: more users share the same steps and KV cache.
 */
#ifndef TB_CAPACITY_H
#define TB_CAPACITY_H

#include <stdbool.h>

/* Measures `users` and says whether the point met the SLO. 0, or nonzero to stop the search
 * (interrupted, server died): that value is returned by capacity_search. */
typedef int (*capacity_probe_fn)(void *ctx, int users, bool *met);

struct capacity_result {
    int max_users;   /* 0: even one user misses the SLO */
    int probes;      /* measurements asked for */
    bool at_ceiling; /* max_users == the search ceiling: the true answer may be higher */
};

/* start: the first guess (clamped to [1, ceiling]). */
int capacity_search(int start, int ceiling, capacity_probe_fn probe, void *ctx,
                    struct capacity_result *out);

#endif
