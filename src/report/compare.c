/*
 * compare.c - two inputs point by point. Points match on setup (a study's setup name, else
 * none), tenant, context length, concurrency and rate. For each latency metric the per-request
 * samples of both runs go through a bootstrap of the quantile's difference (bootstrap.h); a
 * change is called only when its 95% interval excludes zero and it is at least
 * min_change_pct large, because a per-request bootstrap cannot see run-to-run variation (a
 * server that is 0.3% slower after a restart is "significant" to it and irrelevant to a user).
 * A quantile is tested only when both samples hold at least the requests the verdict rule needs
 * to bound it (runner/verdict.h, docs/METRICS.md "Confidence": the order-statistic interval at
 * 95 % has both ends, 72 for p95, 6 for p50): a p95 of 12 requests is their largest, and
 * resampling cannot say how much that moves between runs. Warm-up requests are left out, as
 * everywhere. Each point's SLO verdict on both sides, by the same rule, and its failed requests
 * are shown beside. Throughput is one number per run: shown, never called.
 */
#include "report/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"
#include "report/bootstrap.h"
#include "report/judge.h"

/* Each end's error of the interval the minimum sample is taken from (a 95 % interval). */
#define COMPARE_ALPHA 0.025

struct metric {
    const char *name;  /* as shown */
    const char *field; /* request record field, seconds */
    double q;
    bool higher_is_better;
};

static const struct metric metrics[] = {
    {"ttft_p50_ms", "ttft", 0.50, false}, {"ttft_p95_ms", "ttft", 0.95, false},
    {"tpot_p50_ms", "tpot", 0.50, false}, {"tpot_p95_ms", "tpot", 0.95, false},
    {"e2e_p50_ms", "e2e", 0.50, false},   {"e2e_p95_ms", "e2e", 0.95, false},
};

static char *point_key(const struct report_run *r, const json_t *p)
{
    json_t *rate = json_object_get(p, "rate");
    char rs[32];
    if (json_is_number(rate))
        snprintf(rs, sizeof(rs), "%g req/s", json_number_value(rate));
    else
        snprintf(rs, sizeof(rs), "inf");
    double ctx = json_num(p, "context_length"), users = json_num(p, "concurrency");
    char cs[32] = "", us[32] = "";
    if (!isnan(ctx))
        snprintf(cs, sizeof(cs), " ctx %.0f", ctx);
    if (!isnan(users))
        snprintf(us, sizeof(us), " %.0f users", users);
    const char *tenant = json_string_value(json_object_get(p, "tenant"));
    return xasprintf("%s%s%s%s%s %s", r->study_setup ? r->study_setup : "",
                     r->study_setup ? ": " : "", tenant ? tenant : "", cs, us, rs);
}

static void samples(const json_t *p, const char *field, struct dvec *out)
{
    size_t i;
    json_t *rq;
    json_array_foreach(json_object_get(p, "requests"), i, rq)
    {
        const char *st = json_string_value(json_object_get(rq, "status"));
        double v = json_num(rq, field);
        if (json_is_true(json_object_get(rq, "warmup")))
            continue;
        if (st && strcmp(st, "ok") == 0 && isfinite(v))
            dvec_push(out, v * 1e3);
    }
}

static void row_add(json_t *rows, const char *point, const char *metric, double a, double b,
                    double lo, double hi, const char *untested, bool higher_is_better,
                    const struct compare_options *o)
{
    bool tested = untested == NULL;
    json_t *r = json_object();
    double change = a != 0 && isfinite(a) && isfinite(b) ? (b - a) / fabs(a) * 100.0 : NAN;
    bool beyond = tested && isfinite(lo) && (lo > 0 || hi < 0);
    bool big = isfinite(change) && fabs(change) >= o->min_change_pct;
    const char *verdict;
    if (!tested)
        verdict = untested;
    else if (!beyond)
        verdict = "not significant (95% CI includes 0)";
    else if (!big)
        verdict = "within threshold (significant but small)";
    else
        verdict = (b > a) == higher_is_better ? "improvement" : "regression";
    json_object_set_new(r, "point", json_string(point));
    json_object_set_new(r, "metric", json_string(metric));
    json_object_set_new(r, "a", isfinite(a) ? json_real(a) : json_null());
    json_object_set_new(r, "b", isfinite(b) ? json_real(b) : json_null());
    json_object_set_new(r, "change_pct", isfinite(change) ? json_real(change) : json_null());
    json_object_set_new(r, "ci_low", isfinite(lo) ? json_real(lo) : json_null());
    json_object_set_new(r, "ci_high", isfinite(hi) ? json_real(hi) : json_null());
    json_object_set_new(r, "significant", json_boolean(beyond && big));
    json_object_set_new(r, "verdict", json_string(verdict));
    json_array_append_new(rows, r);
}

/* The run (detailed.json) that holds point q of input b. */
static const json_t *b_run_of(const struct report_input *b, const json_t *q)
{
    for (size_t rb = 0; rb < b->n_runs; rb++) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(b->runs[rb].detailed, "points"), i, x)
        {
            if (x == q)
                return b->runs[rb].detailed;
        }
    }
    return NULL;
}

/* Failed requests (warm-up left out) and the SLO verdict of each side, by the rule run and study
 * use: shown beside the latencies, never "tested" (a verdict has its own interval). */
static void verdict_rows(json_t *rows, const char *key, const json_t *ra, const json_t *pa,
                         const json_t *rb, const json_t *pb, const struct compare_options *o)
{
    struct slo_verdict va, vb;
    int ma = report_point_verdict(ra, pa, NULL, &va), mb = report_point_verdict(rb, pb, NULL, &vb);
    double fa = (double)va.failed, fb = (double)vb.failed;
    if (ma < 0) /* no SLO: the verdict has no failures to count; the summary has them */
        fa = json_num(json_object_get(pa, "summary"), "failed");
    if (mb < 0)
        fb = json_num(json_object_get(pb, "summary"), "failed");
    row_add(rows, key, "failed", fa, fb, NAN, NAN, "not tested (counts)", false, o);
    if (ma < 0 && mb < 0)
        return;
    char la[512], lb[512];
    slo_verdict_line(&va, la, sizeof(la));
    slo_verdict_line(&vb, lb, sizeof(lb));
    char *both = xasprintf("A %s; B %s", la, lb);
    row_add(rows, key, "slo_verdict", NAN, NAN, NAN, NAN, both, true, o);
    free(both);
}

json_t *compare_build(const struct report_input *a, const char *a_name,
                      const struct report_input *b, const char *b_name,
                      const struct compare_options *o)
{
    json_t *out = json_object();
    json_t *rows = json_array();
    json_object_set_new(out, "a", json_string(a_name));
    json_object_set_new(out, "b", json_string(b_name));
    char *method = xasprintf(
        "Latency: percentile bootstrap of the quantile's difference over the per-request samples "
        "(%d resamples, 95%% interval, seed %llu), when both runs hold the requests the verdict "
        "rule needs to bound that quantile at 95%% (72 for p95, 6 for p50; warm-up left out); a "
        "change is called when the interval excludes 0 and it is at least %g%%. SLO: each side's "
        "verdict by the rule run and study use (failed requests are misses). Throughput: one "
        "value per run, not tested.",
        BOOTSTRAP_RESAMPLES, (unsigned long long)o->seed, o->min_change_pct);
    json_object_set_new(out, "method", json_string(method));
    free(method);
    for (size_t ra = 0; ra < a->n_runs; ra++) {
        const struct report_run *A = &a->runs[ra];
        size_t pa;
        json_t *p;
        json_array_foreach(json_object_get(A->detailed, "points"), pa, p)
        {
            char *key = point_key(A, p);
            const json_t *q = NULL;
            for (size_t rb = 0; rb < b->n_runs && !q; rb++) {
                const struct report_run *B = &b->runs[rb];
                size_t pb;
                json_t *x;
                json_array_foreach(json_object_get(B->detailed, "points"), pb, x)
                {
                    char *k2 = point_key(B, x);
                    bool same = strcmp(key, k2) == 0;
                    free(k2);
                    if (same) {
                        q = x;
                        break;
                    }
                }
            }
            if (!q) {
                free(key);
                continue;
            }
            for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
                struct dvec sa, sb;
                dvec_init(&sa);
                dvec_init(&sb);
                samples(p, metrics[m].field, &sa);
                samples(q, metrics[m].field, &sb);
                struct bootstrap_result br;
                bootstrap_quantile_diff(sa.v, sa.n, sb.v, sb.n, metrics[m].q, o->seed + m, &br);
                size_t need = quantile_ci_min_samples(metrics[m].q, COMPARE_ALPHA);
                size_t n = sa.n < sb.n ? sa.n : sb.n;
                const char *untested =
                    n < need ? "not tested (too few requests for this quantile)" : NULL;
                row_add(rows, key, metrics[m].name, br.a, br.b, br.low, br.high, untested,
                        metrics[m].higher_is_better, o);
                dvec_release(&sa);
                dvec_release(&sb);
            }
            verdict_rows(rows, key, A->detailed, p, b_run_of(b, q), q, o);
            double ta = json_num(json_object_get(p, "summary"), "output_throughput");
            double tb = json_num(json_object_get(q, "summary"), "output_throughput");
            row_add(rows, key, "output_tokens_per_s", ta, tb, NAN, NAN,
                    "not tested (one value per run)", true, o);
            free(key);
        }
    }
    json_object_set_new(out, "rows", rows);
    return out;
}
