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

double median_in_place(double *v, size_t n)
{
    sort_doubles(v, n);
    return percentile_sorted(v, n, 0.5);
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
    /* 0 x INFINITY would be NAN: a rank that falls on a finite value is that value. */
    if (frac == 0 || v[hi] == v[lo])
        return v[lo];
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

/* ==== Confidence intervals of quantiles ==== */

/* Binomial(n, q) probabilities of k in [a, b], normalised, into w[k - a]: the walk starts at the
 * mode and multiplies by the ratio of neighbouring terms (no lgamma, which writes the global
 * signgam and so is not thread-safe); outside 40 standard deviations (+2) a binomial's tails
 * hold less than 1e-300 and are left out. The caller frees *w. */
static double *binomial_terms(size_t n, double q, size_t *a, size_t *b)
{
    double m = (double)n * q, sd = sqrt((double)n * q * (1 - q));
    double lo = floor(m - 40 * sd - 2), hi = ceil(m + 40 * sd + 2);
    *a = lo < 0 ? 0 : (size_t)lo;
    *b = hi > (double)n ? n : (size_t)hi;
    size_t len = *b - *a + 1;
    double *w = xcalloc(len, sizeof(*w));
    double mode_d = floor((double)(n + 1) * q);
    size_t mode = mode_d > (double)n ? n : (size_t)mode_d;
    if (mode < *a)
        mode = *a;
    if (mode > *b)
        mode = *b;
    double odds = log(q / (1 - q)), sum = 0;
    w[mode - *a] = 0; /* logs first, relative to the mode */
    for (size_t k = mode + 1; k <= *b; k++)
        w[k - *a] = w[k - 1 - *a] + log((double)(n - k + 1) / (double)k) + odds;
    for (size_t k = mode; k-- > *a;)
        w[k - *a] = w[k + 1 - *a] + log((double)(k + 1) / (double)(n - k)) - odds;
    for (size_t i = 0; i < len; i++) {
        w[i] = exp(w[i]);
        sum += w[i];
    }
    for (size_t i = 0; i < len; i++)
        w[i] /= sum;
    return w;
}

struct quantile_ranks quantile_ci_ranks(size_t n, double q, double alpha)
{
    struct quantile_ranks r = {0, n + 1};
    if (n == 0 || !(alpha > 0))
        return r;
    if (q >= 1) { /* the maximum: every value is at or below it */
        r.lo = n;
        return r;
    }
    if (q <= 0) {
        r.hi = 1;
        return r;
    }
    size_t a, b;
    double *w = binomial_terms(n, q, &a, &b);
    /* Ranks below a (above b) carry no mass: they are valid ends whatever alpha is. */
    r.lo = a;
    double cum = 0;
    for (size_t k = a; k <= b && cum + w[k - a] <= alpha; k++) {
        cum += w[k - a];
        r.lo = k + 1; /* P(B <= lo - 1) <= alpha */
    }
    r.hi = b + 1;
    cum = 0;
    for (size_t k = b + 1; k-- > a && cum + w[k - a] <= alpha;) {
        cum += w[k - a];
        r.hi = k; /* P(B >= hi) <= alpha */
    }
    free(w);
    if (r.lo > n)
        r.lo = n;
    return r;
}

static bool both_ends(size_t n, double q, double alpha)
{
    struct quantile_ranks r = quantile_ci_ranks(n, q, alpha);
    return r.lo >= 1 && r.hi <= n;
}

size_t quantile_ci_min_samples(double q, double alpha)
{
    if (!(q > 0 && q < 1) || !(alpha > 0 && alpha < 0.5))
        return 0;
    /* Both ends exist once q^n <= alpha (upper) and (1 - q)^n <= alpha (lower). */
    double guess = fmax(ceil(log(alpha) / log(q)), ceil(log(alpha) / log(1 - q)));
    size_t n = guess < 1 ? 1 : (size_t)guess;
    while (!both_ends(n, q, alpha))
        n++;
    while (n > 1 && both_ends(n - 1, q, alpha))
        n--;
    return n;
}
