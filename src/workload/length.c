/*
 * length.c - output-length distributions. Normal and lognormal draws are clipped to
 * [min, max] (clamped, not redrawn: the bounds are what a server's max_tokens and a client's
 * floor do to real outputs); the lognormal is parameterised by the mean and standard
 * deviation of the length itself, the way chat output lengths are usually summarised:
 * sigma^2 = ln(1 + sd^2 / mean^2), mu = ln(mean) - sigma^2 / 2.
 */
#include "workload/length.h"

#include <errno.h>
#include <math.h>

/* max 0 gives this many times the mean as the upper clip (normal, lognormal, uniform). */
#define LENGTH_DEFAULT_SPAN 4

int length_sampler_init(struct length_sampler *s, const struct length_dist *d,
                        int completion_tokens)
{
    if (length_kind_parse(d->distribution, &s->kind))
        return -EINVAL;
    s->mean = d->mean > 0 ? d->mean : (double)completion_tokens;
    s->stddev = d->stddev;
    s->lo = d->min > 0 ? d->min : 1;
    s->hi = d->max;
    if (s->hi == 0 && s->kind != LEN_DATASET)
        s->hi = (int)fmin(ceil(LENGTH_DEFAULT_SPAN * s->mean), 1e9);
    if (s->hi > 0 && s->hi < s->lo)
        s->hi = s->lo;
    double var = s->mean > 0 ? log1p(s->stddev * s->stddev / (s->mean * s->mean)) : 0;
    s->sig = sqrt(var);
    s->mu = log(s->mean > 0 ? s->mean : 1) - var / 2;
    return 0;
}

static int clip(const struct length_sampler *s, double v)
{
    if (!(v >= s->lo)) /* NAN too */
        return s->lo;
    if (s->hi > 0 && v > s->hi)
        return s->hi;
    return (int)llround(v);
}

int length_draw(const struct length_sampler *s, struct rng *r, int dataset_len)
{
    switch (s->kind) {
    case LEN_UNIFORM:
        return (int)rng_range(r, s->lo, s->hi);
    case LEN_NORMAL:
        return clip(s, s->mean + s->stddev * rng_normal(r));
    case LEN_LOGNORMAL:
        return clip(s, exp(s->mu + s->sig * rng_normal(r)));
    case LEN_DATASET:
        return clip(s, dataset_len > 0 ? (double)dataset_len : s->mean);
    case LEN_FIXED:
    default:
        return clip(s, s->mean);
    }
}
