/*
 * bootstrap.h - is a quantile's difference between two samples beyond resampling noise? A
 * percentile bootstrap: both samples are resampled with replacement, the quantile difference
 * is taken each time, and the 2.5th and 97.5th percentiles of those differences bound a 95%
 * confidence interval of B − A.
 */
#ifndef TB_REPORT_BOOTSTRAP_H
#define TB_REPORT_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#define BOOTSTRAP_RESAMPLES 1000

struct bootstrap_result {
    double a, b;      /* the quantile of each sample */
    double low, high; /* 95% CI of b − a */
};

/* a and b are not modified; q in [0, 1]. NAN results when either sample is empty. */
void bootstrap_quantile_diff(const double *a, size_t na, const double *b, size_t nb, double q,
                             uint64_t seed, struct bootstrap_result *out);

#endif
