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
/* q in [0, 1] over an ascending array; NAN for n == 0. */
double percentile_sorted(const double *v, size_t n, double q);
/* Sorts a copy-free array ascending. */
void sort_doubles(double *v, size_t n);
/* Value of a named quantile of d: "p50", "p90", "p95", "p99", "p99.9", "mean", "max". NAN if
 * unknown. */
double dist_get(const struct dist *d, const char *name);

#endif
