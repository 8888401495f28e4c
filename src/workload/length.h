/*
 * length.h - output lengths drawn from requests.output_tokens (fixed, uniform, normal and
 * lognormal with clipping, or the dataset's own), reproducible from the caller's rng.
 */
#ifndef TB_LENGTH_H
#define TB_LENGTH_H

#include "config/workload_cfg.h"
#include "core/rng.h"
#include "core/xalloc.h"

struct length_sampler {
    enum length_kind kind;
    double mean;    /* of the length, tokens */
    double stddev;  /* of the length, tokens */
    int lo, hi;     /* clip (uniform: the range); hi 0 = none (dataset only) */
    double mu, sig; /* lognormal: of log(length) */
};

/* From the config section; completion_tokens is the mean when d->mean is 0. 0 or -EINVAL
 * (an unknown distribution name). */
MUST_USE int length_sampler_init(struct length_sampler *s, const struct length_dist *d,
                                 int completion_tokens);
/* One length >= 1. dataset_len is the dataset's own length for this request (dataset kind;
 * <= 0 = none there, then the mean is used). */
int length_draw(const struct length_sampler *s, struct rng *r, int dataset_len);

#endif
