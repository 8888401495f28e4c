/*
 * measure_cfg.c - the verdict's settings and their rules (measure_cfg.h): slo.confidence and
 * requests.warmup_requests, warmup_s, duration_s, stop_when_decided.
 */
#include "config/measure_cfg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "config/config_internal.h"
#include "core/stats.h"

/* A point runs at most this long by duration_s (a week): longer is a typo. */
#define DURATION_MAX_S (7 * 24 * 3600.0)

double slo_cfg_quantile(const struct slo_cfg *s)
{
    double p = s ? s->percentile : 95;
    return p > 0 && p <= 100 ? p / 100.0 : 0.95;
}

double slo_cfg_confidence(const struct slo_cfg *s)
{
    double c = s ? s->confidence : 0;
    return c >= SLO_CONFIDENCE_MIN && c <= SLO_CONFIDENCE_MAX ? c : SLO_CONFIDENCE_DEFAULT;
}

double slo_cfg_alpha(const struct slo_cfg *s)
{
    return (1 - slo_cfg_confidence(s)) / 2;
}

bool slo_cfg_has_objective(const struct slo_cfg *s)
{
    return s &&
           (!isnan(s->ttft_ms) || !isnan(s->itl_ms) || !isnan(s->tpot_ms) || !isnan(s->e2e_ms));
}

size_t slo_cfg_min_requests(const struct slo_cfg *s)
{
    return quantile_ci_min_samples(slo_cfg_quantile(s), slo_cfg_alpha(s));
}

int measure_find_problem(struct cfg_problem *p, const struct requests_cfg *r, const char *prefix,
                         const void *owner)
{
    int rc = check_int_min(p, &r->warmup_requests, 0, prefix, "warmup_requests", owner);
    if (!rc)
        rc = check_num(p, &r->warmup_s, 0, true, DURATION_MAX_S, prefix, "warmup_s", owner);
    if (!rc && !isnan(r->duration_s))
        rc = check_num(p, &r->duration_s, 0, false, DURATION_MAX_S, prefix, "duration_s", owner);
    if (rc)
        return rc;
    if (r->warmup_requests >= r->num_requests)
        return problem_at(p, &r->warmup_requests, prefix, "warmup_requests", owner,
                          "%d leaves no request to measure: it must be less than num_requests "
                          "(%d)",
                          r->warmup_requests, r->num_requests);
    if (!isnan(r->duration_s) && r->warmup_s >= r->duration_s)
        return problem_at(p, &r->warmup_s, prefix, "warmup_s", owner,
                          "%g s leaves nothing to measure: it must be less than duration_s (%g s)",
                          r->warmup_s, r->duration_s);
    return 0;
}

int verdict_find_problem(struct cfg_problem *p, const struct slo_cfg *s, const char *prefix,
                         const void *owner)
{
    return check_num(p, &s->confidence, SLO_CONFIDENCE_MIN, true, SLO_CONFIDENCE_MAX, prefix,
                     "confidence", owner);
}

int stop_rule_find_problem(struct cfg_problem *p, const struct requests_cfg *r,
                           const struct slo_cfg *s, const char *prefix, const void *owner)
{
    if (!r->stop_when_decided)
        return 0;
    if (!slo_cfg_has_objective(s))
        return problem_at(p, &r->stop_when_decided, prefix, "stop_when_decided", owner,
                          "needs an SLO to decide: set at least one of slo.ttft_ms, itl_ms, "
                          "tpot_ms, e2e_ms");
    size_t need = slo_cfg_min_requests(s);
    if (need == 0)
        return problem_at(p, &r->stop_when_decided, prefix, "stop_when_decided", owner,
                          "no number of requests decides a p%g verdict with confidence (the "
                          "maximum has no upper bound): use a percentile below 100",
                          slo_cfg_quantile(s) * 100);
    if ((double)r->num_requests - r->warmup_requests < (double)need)
        return problem_at(p, &r->num_requests, prefix, "num_requests", owner,
                          "%d (%d after warmup_requests) cannot decide a p%g verdict at %g %% "
                          "confidence: stop_when_decided needs at least %zu requests after the "
                          "warm-up",
                          r->num_requests, r->num_requests - r->warmup_requests,
                          slo_cfg_quantile(s) * 100, slo_cfg_confidence(s) * 100, need);
    return 0;
}

void measure_cfg_to_json(json_t *o, const struct requests_cfg *r)
{
    json_object_set_new(o, "warmup_requests", json_integer(r->warmup_requests));
    json_object_set_new(o, "warmup_s", json_real(r->warmup_s));
    json_object_set_new(o, "duration_s",
                        isnan(r->duration_s) ? json_null() : json_real(r->duration_s));
    json_object_set_new(o, "stop_when_decided", json_boolean(r->stop_when_decided));
}
