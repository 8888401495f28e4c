/*
 * stats.h - distributions of latencies and other samples.
 * Percentiles use linear interpolation between closest ranks (NumPy's default,
 * docs/METRICS.md): rank = q * (n - 1), value = v[floor] + frac * (v[ceil] - v[floor]).
 */
#ifndef TB_STATS_H
#define TB_STATS_H

#include <stdbool.h>
#include <stddef.h>

/* A growable array of doubles. */
struct dvec {
    double *v;
    size_t n;
    size_t cap;
};

void dvec_init(struct dvec *d);
void dvec_release(struct dvec *d);
void dvec_push(struct dvec *d, double x); /* aborts on OOM (small, bounded by the run) */

/* Summary of a sample; all fields NAN when n == 0. std is the population std (ddof=0). */
struct dist {
    size_t n;
    double mean, std, min, max;
    double p50, p90, p95, p99, p999;
};

/* Sorts v in place and fills d. */
void dist_compute(struct dist *d, double *v, size_t n);
/* q in [0, 1] over an ascending array; NAN for n == 0. The array may end in INFINITY (a failed
 * request counted as beyond every limit): a rank that reaches one gives INFINITY. */
double percentile_sorted(const double *v, size_t n, double q);
/* Sorts a copy-free array ascending. */
void sort_doubles(double *v, size_t n);
/* The median of v[0..n), sorting v in place; NAN for n == 0. */
double median_in_place(double *v, size_t n);
/* Value of a named quantile of d: "p50", "p90", "p95", "p99", "p99.9", "mean", "max". NAN if
 * unknown. */
double dist_get(const struct dist *d, const char *name);

/*
 * Distribution-free confidence interval of a quantile from the order statistics of a sample
 * (docs/METRICS.md "Confidence"): of n independent values, the number at or below the true
 * q-quantile is Binomial(n, q), so the lo-th and hi-th smallest values (1-based) bound it with
 * P(x(lo) > quantile) <= alpha and P(x(hi) < quantile) <= alpha (each end's error; a two-sided
 * 95 % interval has alpha 0.025). lo is the largest rank with P(B <= lo - 1) <= alpha, hi the
 * smallest with P(B >= hi) <= alpha. An end that no rank of n values reaches is 0 (no lower end)
 * or n + 1 (no upper end): the sample is too small to bound the quantile on that side.
 */
struct quantile_ranks {
    size_t lo, hi;
};
struct quantile_ranks quantile_ci_ranks(size_t n, double q, double alpha);
/* The fewest values whose interval has both ends (72 for p95 at alpha 0.025, 36 for p90, 368 for
 * p99, 6 for p50); 0 for q outside (0, 1) or alpha outside (0, 0.5). */
size_t quantile_ci_min_samples(double q, double alpha);

#endif
