#include "core/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

void dvec_init(struct dvec *d)
{
    d->v = NULL;
    d->n = d->cap = 0;
}

void dvec_release(struct dvec *d)
{
    free(d->v);
    dvec_init(d);
}

void dvec_push(struct dvec *d, double x)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->v = xreallocarray(d->v, d->cap, sizeof(*d->v));
    }
    d->v[d->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void sort_doubles(double *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_double);
}

double percentile_sorted(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    if (q <= 0)
        return v[0];
    if (q >= 1)
        return v[n - 1];
    double rank = q * (double)(n - 1);
    size_t lo = (size_t)floor(rank);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    double frac = rank - (double)lo;
    return v[lo] + frac * (v[hi] - v[lo]);
}

void dist_compute(struct dist *d, double *v, size_t n)
{
    d->n = n;
    if (n == 0) {
        d->mean = d->std = d->min = d->max = NAN;
        d->p50 = d->p90 = d->p95 = d->p99 = d->p999 = NAN;
        return;
    }
    sort_doubles(v, n);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    d->mean = sum / (double)n;
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (v[i] - d->mean) * (v[i] - d->mean);
    d->std = sqrt(ss / (double)n);
    d->min = v[0];
    d->max = v[n - 1];
    d->p50 = percentile_sorted(v, n, 0.50);
    d->p90 = percentile_sorted(v, n, 0.90);
    d->p95 = percentile_sorted(v, n, 0.95);
    d->p99 = percentile_sorted(v, n, 0.99);
    d->p999 = percentile_sorted(v, n, 0.999);
}

double dist_get(const struct dist *d, const char *name)
{
    static const struct {
        const char *name;
        size_t off;
    } fields[] = {
        {"p50", offsetof(struct dist, p50)},    {"p90", offsetof(struct dist, p90)},
        {"p95", offsetof(struct dist, p95)},    {"p99", offsetof(struct dist, p99)},
        {"p99.9", offsetof(struct dist, p999)}, {"mean", offsetof(struct dist, mean)},
        {"max", offsetof(struct dist, max)},    {"min", offsetof(struct dist, min)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strcmp(fields[i].name, name) == 0)
            return *(const double *)((const char *)d + fields[i].off);
    return NAN;
}
