/*
 * schedule.c - open-loop arrival times, fixed before a point starts, so latency
 * counts from when a request was due (docs/METRICS.md on coordinated omission).
 *
 * Request 0 is due at offset 0: the first gap is not drawn, so request i is due at the sum
 * of i gaps. A point therefore starts with a request instead of an idle wait, and with n
 * requests the schedule spans n - 1 gaps. Offsets are accumulated in double nanoseconds and
 * rounded once per request, so rounding never drifts (constant arrivals land exactly on
 * round(i * 1e9 / rate)).
 */
#include "runner/schedule.h"

#include <errno.h>
#include <math.h>

#include "core/rng.h"

/* Offsets beyond ~292 years cannot be held in mono_ns; far beyond any sane run anyway. */
#define SCHEDULE_MAX_NS 9.0e18

int schedule_build(mono_ns *offsets, size_t n, enum arrival a, double rate, double burstiness,
                   uint64_t seed)
{
    if (n > 0 && !offsets)
        return -EINVAL;
    if (a == ARRIVAL_BURST || (isinf(rate) && rate > 0)) {
        for (size_t i = 0; i < n; i++)
            offsets[i] = 0;
        return 0;
    }
    /* !(rate > 0) also rejects NAN. */
    if (!(rate > 0))
        return -EINVAL;
    if (a == ARRIVAL_GAMMA && !(burstiness > 0 && isfinite(burstiness)))
        return -EINVAL;
    if (a != ARRIVAL_POISSON && a != ARRIVAL_CONSTANT && a != ARRIVAL_GAMMA)
        return -EINVAL;

    double mean_ns = 1e9 / rate;
    struct rng r;
    rng_seed(&r, seed);
    double t = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            switch (a) {
            case ARRIVAL_CONSTANT:
                /* Multiply instead of summing so 1/rate's rounding does not accumulate. */
                t = (double)i * mean_ns;
                break;
            case ARRIVAL_GAMMA:
                /* Shape k and scale mean/k: mean 1/rate, variance mean^2/k; k = 1 is poisson. */
                t += rng_gamma(&r, burstiness, mean_ns / burstiness);
                break;
            default:
                t += rng_exp(&r, mean_ns);
                break;
            }
        }
        if (!(t < SCHEDULE_MAX_NS))
            return -EINVAL;
        offsets[i] = (mono_ns)llround(t);
    }
    return 0;
}
