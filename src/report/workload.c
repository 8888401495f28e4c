/*
 * workload.c - a point's workload for the report: the prompt source and output-length
 * distribution its config asked for, the output lengths its requests asked for and got (as
 * quantiles and a histogram, so a reader sees the distribution was generated), and, when the
 * point had them, sessions by turn and reasoning (TTFA beside TTFT). The summary's figures are
 * taken as the run wrote them (docs/OUTPUTS.md); only what the summary does not hold (output
 * lengths, reasoning and answer tokens per request) is computed here from the requests.
 */
#include "report/workload.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"
#include "core/xalloc.h"
#include "report/load.h"

static json_t *num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

/* The point's tenant's resolved requests (the config lists every tenant, "default" too). */
static const json_t *point_requests(const json_t *config, const json_t *point)
{
    const char *tenant = json_string_value(json_object_get(point, "tenant"));
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(config, "tenants"), i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        if (name && tenant && strcmp(name, tenant) == 0 && json_object_get(t, "requests"))
            return json_object_get(t, "requests");
    }
    return json_object_get(config, "requests");
}

static const char *s_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

/* What was sent, from the records (the server's usage): "every prompt 960 tokens" or "prompts
 * 212–498 tokens, p50 371"; NULL when no record says. sorted: the prompt lengths, ascending. */
static char *prompts_measured(const struct dvec *sorted)
{
    if (!sorted->n)
        return NULL;
    double lo = sorted->v[0], hi = sorted->v[sorted->n - 1];
    if (lo == hi)
        return xasprintf("every prompt %.0f tokens", lo);
    return xasprintf("prompts %.0f–%.0f tokens, p50 %.0f", lo, hi,
                     percentile_sorted(sorted->v, sorted->n, 0.50));
}

/* source: "synthetic", "dataset", "trace" or "rag"; detail: what a reader needs to know of it,
 * with the prompt lengths sent (measured) rather than the bounds the config gave: a context
 * sweep or a workload's context_fill replaces them. */
static void source_set(json_t *o, const json_t *req, const struct dvec *prompts)
{
    const json_t *ds = json_object_get(req, "dataset");
    const json_t *tr = json_object_get(req, "trace");
    const json_t *rag = json_object_get(req, "rag");
    char *detail;
    const char *source;
    if (json_string_value(json_object_get(ds, "path"))) {
        source = "dataset";
        detail = xasprintf("%s (%s, turns %s)", s_or(ds, "path", ""), s_or(ds, "format", "auto"),
                           s_or(ds, "turns", "first"));
    } else if (json_string_value(json_object_get(tr, "path"))) {
        source = "trace";
        detail = xasprintf("%s (%s, speed %gx)", s_or(tr, "path", ""), s_or(tr, "format", "auto"),
                           json_num(tr, "speed"));
    } else if (json_num(rag, "documents") > 0) {
        source = "rag";
        detail = xasprintf("%.0f of %.0f documents of %.0f tokens per request, question %.0f "
                           "tokens, skew %g",
                           json_num(rag, "documents_per_request"), json_num(rag, "documents"),
                           json_num(rag, "document_tokens"), json_num(rag, "question_tokens"),
                           json_num(rag, "skew"));
    } else {
        source = "synthetic";
        detail = xstrdup("random tokens");
    }
    char *sent = prompts_measured(prompts);
    char *full = xasprintf("%s; %s", detail, sent ? sent : "no prompt length recorded");
    free(detail);
    free(sent);
    detail = full;
    json_object_set_new(o, "source", json_string(source));
    json_object_set_new(o, "source_detail", json_string(detail));
    free(detail);
}

/* The output-length distribution asked for, in words ("lognormal mean 200, stddev 150, ...") */
static json_t *output_dist(const json_t *req)
{
    const json_t *ot = json_object_get(req, "output_tokens");
    const char *d = s_or(ot, "distribution", "fixed");
    double mean = json_num(ot, "mean"), sd = json_num(ot, "stddev");
    double lo = json_num(ot, "min"), hi = json_num(ot, "max");
    char *s;
    if (strcmp(d, "fixed") == 0)
        s = xasprintf("fixed %.0f", isnan(mean) ? json_num(req, "completion_tokens") : mean);
    else if (strcmp(d, "uniform") == 0)
        s = xasprintf("uniform %.0f–%.0f", lo, hi);
    else if (strcmp(d, "dataset") == 0)
        s = xasprintf("the dataset's lengths, clipped to %.0f–%.0f", lo, hi);
    else
        s = xasprintf("%s mean %.0f, stddev %.0f, clipped to %.0f–%.0f", d, mean, sd, lo,
                      hi > 0 ? hi : 4 * mean);
    json_t *j = json_string(s);
    free(s);
    return j;
}

static json_t *quants_json(struct dvec *v)
{
    if (!v->n)
        return json_null();
    sort_doubles(v->v, v->n);
    json_t *o = json_object();
    double sum = 0;
    for (size_t i = 0; i < v->n; i++)
        sum += v->v[i];
    json_object_set_new(o, "n", json_integer((json_int_t)v->n));
    json_object_set_new(o, "min", json_real(v->v[0]));
    json_object_set_new(o, "p50", json_real(percentile_sorted(v->v, v->n, 0.50)));
    json_object_set_new(o, "p95", json_real(percentile_sorted(v->v, v->n, 0.95)));
    json_object_set_new(o, "max", json_real(v->v[v->n - 1]));
    json_object_set_new(o, "mean", json_real(sum / (double)v->n));
    return o;
}

/* Equal-width bars over [min, max] of a sorted array; whole tokens, so no bar narrower than 1. */
static json_t *hist_json(const struct dvec *v)
{
    if (!v->n)
        return json_null();
    double lo = v->v[0], hi = v->v[v->n - 1];
    size_t bins = WORKLOAD_HIST_BINS;
    double width = ceil((hi - lo + 1) / (double)bins);
    if (width < 1)
        width = 1;
    bins = (size_t)ceil((hi - lo + 1) / width);
    json_t *counts = json_array();
    size_t k = 0;
    for (size_t b = 0; b < bins; b++) {
        size_t c = 0;
        while (k < v->n && v->v[k] < lo + (double)(b + 1) * width) {
            c++;
            k++;
        }
        json_array_append_new(counts, json_integer((json_int_t)c));
    }
    json_t *o = json_object();
    json_object_set_new(o, "lo", json_real(lo));
    json_object_set_new(o, "width", json_real(width));
    json_object_set_new(o, "counts", counts);
    return o;
}

static json_t *dist_pick(const json_t *summary, const char *key)
{
    const json_t *d = json_object_get(summary, key);
    json_t *o = json_object();
    json_object_set_new(o, "p50", num(json_num(d, "p50")));
    json_object_set_new(o, "p95", num(json_num(d, "p95")));
    return o;
}

/* Sessions from summary.sessions: the users, think times and the per-turn figures. */
static json_t *sessions_json(const json_t *point, const json_t *req)
{
    const json_t *ss = json_object_get(json_object_get(point, "summary"), "sessions");
    if (!json_is_object(ss))
        return json_null();
    const json_t *cfg = json_object_get(req, "session");
    json_t *o = json_object();
    json_object_set_new(o, "count", num(json_num(ss, "count")));
    json_object_set_new(o, "turns", num(json_num(cfg, "turns")));
    json_object_set_new(o, "users", num(json_num(point, "concurrency")));
    json_object_set_new(o, "turns_skipped", num(json_num(ss, "turns_skipped")));
    json_object_set(o, "think_distribution", json_object_get(cfg, "think_time_distribution"));
    json_object_set_new(o, "think_mean_cfg_s", num(json_num(cfg, "think_time_s")));
    const json_t *th = json_object_get(ss, "think_time_s");
    json_object_set_new(o, "think_p50_s", num(json_num(th, "p50")));
    json_object_set_new(o, "think_p95_s", num(json_num(th, "p95")));
    json_object_set_new(o, "ttft_first_p50", num(summary_dist(ss, "ttft_first_turn_ms", "p50")));
    json_object_set_new(o, "ttft_later_p50", num(summary_dist(ss, "ttft_later_turns_ms", "p50")));
    json_t *turns = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(ss, "by_turn"), i, t)
    {
        json_t *r = json_object();
        json_object_set_new(r, "turn", num(json_num(t, "turn")));
        json_object_set_new(r, "completed", num(json_num(t, "completed")));
        json_object_set_new(r, "failed", num(json_num(t, "failed")));
        json_object_set_new(r, "prompt_tokens_mean", num(json_num(t, "prompt_tokens_mean")));
        json_object_set_new(r, "cached_pct", num(json_num(t, "cached_prompt_pct")));
        json_object_set_new(r, "ttft_p50", num(summary_dist(t, "ttft_ms", "p50")));
        json_object_set_new(r, "ttft_p95", num(summary_dist(t, "ttft_ms", "p95")));
        json_object_set_new(r, "ttft_sched_p95", num(summary_dist(t, "ttft_sched_ms", "p95")));
        json_object_set_new(r, "e2e_p50", num(summary_dist(t, "e2e_ms", "p50")));
        json_array_append_new(turns, r);
    }
    json_object_set_new(o, "by_turn", turns);
    return o;
}

/* Reasoning, when any completed request reasoned: TTFA beside TTFT, tokens and phase rates. */
static json_t *reasoning_json(const json_t *point, double reasoning_sum, double answer_sum,
                              size_t n_ok)
{
    const json_t *s = json_object_get(point, "summary");
    if (!(json_num(s, "reasoning_requests") > 0) || !n_ok)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "requests", num(json_num(s, "reasoning_requests")));
    json_object_set_new(o, "tokens_total", num(json_num(s, "reasoning_tokens_total")));
    json_object_set_new(o, "ttft", dist_pick(s, "ttft_ms"));
    json_object_set_new(o, "ttfa", dist_pick(s, "ttfa_ms"));
    json_object_set_new(o, "reasoning_tokens_mean", json_real(reasoning_sum / (double)n_ok));
    json_object_set_new(o, "answer_tokens_mean", json_real(answer_sum / (double)n_ok));
    json_object_set_new(o, "reasoning_rate", dist_pick(s, "reasoning_token_rate"));
    json_object_set_new(o, "answer_rate", dist_pick(s, "answer_token_rate"));
    return o;
}

json_t *workload_point_json(const json_t *config, const json_t *point)
{
    const json_t *req = point_requests(config, point);
    json_t *o = json_object();
    struct dvec prompts;
    dvec_init(&prompts);
    size_t pi;
    json_t *pr;
    json_array_foreach(json_object_get(point, "requests"), pi, pr)
    {
        double n = json_num(pr, "prompt_tokens");
        if (isfinite(n))
            dvec_push(&prompts, n);
    }
    sort_doubles(prompts.v, prompts.n);
    source_set(o, req, &prompts);
    json_object_set_new(o, "prompt_measured", quants_json(&prompts));
    dvec_release(&prompts);
    /* A trace row carries its own output length; requests.output_tokens is not used then. */
    bool trace = strcmp(json_string_value(json_object_get(o, "source")), "trace") == 0;
    json_object_set_new(o, "output_dist",
                        trace ? json_string("the trace's lengths") : output_dist(req));
    struct dvec target, got;
    dvec_init(&target);
    dvec_init(&got);
    double reasoning = 0, answer = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(point, "requests"), i, r)
    {
        double t = json_num(r, "target_output_tokens");
        if (isfinite(t))
            dvec_push(&target, t);
        if (strcmp(s_or(r, "status", ""), "ok") != 0)
            continue;
        double out = json_num(r, "output_tokens"), rt = json_num(r, "reasoning_tokens");
        if (!isfinite(out))
            continue;
        dvec_push(&got, out);
        rt = isfinite(rt) ? rt : 0;
        reasoning += rt;
        answer += out - rt;
    }
    json_object_set_new(o, "output_target", quants_json(&target));
    json_object_set_new(o, "output_measured", quants_json(&got)); /* sorts got */
    json_object_set_new(o, "output_hist", hist_json(&got));
    json_object_set_new(o, "cached_prompt_pct",
                        num(json_num(json_object_get(point, "summary"), "cached_prompt_pct")));
    json_object_set_new(o, "sessions", sessions_json(point, req));
    json_object_set_new(o, "reasoning", reasoning_json(point, reasoning, answer, got.n));
    dvec_release(&target);
    dvec_release(&got);
    return o;
}
