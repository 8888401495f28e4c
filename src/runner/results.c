/*
 * results.c - the three result files (every key and column is described in
 * docs/OUTPUTS.md).
 *
 * Points are turned into JSON and CSV text when they are added, so the writer holds no
 * pointers into the caller's records. Each flush rewrites all three files from that state
 * through "<path>.tmp" + fsync + rename(): a reader, or a run killed mid-write, only ever
 * sees a complete old file or a complete new one.
 *
 * Unknown numbers (NAN) are null in JSON and empty cells in CSV, never 0.
 */
#include "runner/results.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/text.h"

#define RESULTS_SCHEMA_VERSION 1
#define RESULTS_CSV_MAX (1u << 30) /* the whole CSV body; a row is under 4 KiB */
#define RESULTS_MAX_SUFFIX 1000    /* stamp collisions tried before giving up */
/* Seconds relative to t0 need ~12 significant digits for microseconds over a day. */
#define RESULTS_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))
/* The points of detailed.json as text; a record costs ~20 bytes per token event. */
#define RESULTS_POINTS_MAX ((size_t)16 << 30)

enum { KIND_DETAILED, KIND_SUMMARY, KIND_TELEMETRY, KIND__COUNT };
static const char *const kind_names[KIND__COUNT] = {"detailed", "summary", "telemetry"};
static const char *const kind_suffix[KIND__COUNT] = {"_detailed.json", "_summary.csv",
                                                     "_telemetry.json"};

/* Local copies of the status and arrival names so this file links without record.c and
 * config's sources; they must match req_status_name() and arrival_name(). */
static const char *const status_names[REQ__COUNT] = {
    "ok",         "http_4xx",     "http_5xx",  "timeout",      "connect",
    "stream_cut", "bad_response", "cancelled", "client_limit",
};

static const char *status_name(enum req_status s)
{
    return (unsigned)s < REQ__COUNT ? status_names[s] : "unknown";
}

static const char *arrival_str(enum arrival a)
{
    switch (a) {
    case ARRIVAL_POISSON:
        return "poisson";
    case ARRIVAL_CONSTANT:
        return "constant";
    case ARRIVAL_BURST:
        return "burst";
    case ARRIVAL_GAMMA:
        return "gamma";
    }
    return "unknown";
}

enum { META_TOOL, META_CONFIG, META_SERVER, META_HOST, META_GPUS, META__COUNT };
static const char *const meta_keys[META__COUNT] = {"tool", "config", "server", "host", "gpus"};

struct results_writer {
    char *paths[KIND__COUNT];
    char *started_at;
    mono_ns t0;                /* the run's clock origin, 0 = unknown */
    json_t *load;              /* owned; NULL = null */
    json_t *meta[META__COUNT]; /* owned references, NULL = null */
    struct buf points;         /* the points' JSON text, comma-separated: each point is
                                * serialised once when added, never again, so a long sweep
                                * neither holds millions of jansson numbers nor reformats
                                * them at every flush */
    struct buf csv;            /* data rows, header excluded */
};

/* ---- small JSON helpers ---- */

/* A run-clock time as seconds after t0; null when it did not happen. */
static json_t *jtime(mono_ns t, mono_ns t0)
{
    return t ? json_real(ns_diff_s(t0, t)) : json_null();
}

/* A distribution scaled by 'scale' (1e3 for seconds -> ms). */
static json_t *jdist(const struct dist *d, double scale)
{
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)d->n));
    json_object_set_new(o, "mean", json_real_or_null(d->mean * scale));
    json_object_set_new(o, "p50", json_real_or_null(d->p50 * scale));
    json_object_set_new(o, "p90", json_real_or_null(d->p90 * scale));
    json_object_set_new(o, "p95", json_real_or_null(d->p95 * scale));
    json_object_set_new(o, "p99", json_real_or_null(d->p99 * scale));
    json_object_set_new(o, "p99_9", json_real_or_null(d->p999 * scale));
    json_object_set_new(o, "min", json_real_or_null(d->min * scale));
    json_object_set_new(o, "max", json_real_or_null(d->max * scale));
    json_object_set_new(o, "std", json_real_or_null(d->std * scale));
    return o;
}

static double energy_per(const struct telemetry_window *tw, double count)
{
    if (!tw || !(count > 0))
        return NAN;
    return tw->gpu_energy_j / count;
}

static json_t *telemetry_window_json(const struct telemetry_window *tw,
                                     const struct point_summary *s)
{
    if (!tw)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "n_samples", json_integer((json_int_t)tw->n_samples));
    json_object_set_new(o, "gpu_power_mean_w", json_real_or_null(tw->gpu_power_mean_w));
    json_object_set_new(o, "gpu_power_max_w", json_real_or_null(tw->gpu_power_max_w));
    json_object_set_new(o, "gpu_energy_j", json_real_or_null(tw->gpu_energy_j));
    json_object_set_new(o, "gpu_energy_source",
                        isfinite(tw->gpu_energy_j)
                            ? json_string(tw->gpu_energy_from_counter ? "counter" : "power")
                            : json_null());
    json_object_set_new(o, "energy_per_output_token_j",
                        json_real_or_null(energy_per(tw, (double)s->output_tokens_total)));
    json_object_set_new(o, "energy_per_request_j",
                        json_real_or_null(energy_per(tw, (double)s->completed)));
    json_object_set_new(o, "gpu_mem_used_max_mib", json_real_or_null(tw->gpu_mem_used_max_mib));
    json_object_set_new(o, "gpu_temp_max_c", json_real_or_null(tw->gpu_temp_max_c));
    json_object_set_new(o, "throttled", json_boolean(tw->throttled));
    json_t *reasons = json_array();
    /* "a,b, c" -> ["a", "b", "c"]; bounded by the field's size even without a NUL. */
    const char *p = tw->throttle_reasons, *end = p + strnlen(p, sizeof(tw->throttle_reasons));
    while (p < end) {
        while (p < end && (*p == ',' || *p == ' '))
            p++;
        const char *q = p;
        while (q < end && *q != ',')
            q++;
        size_t len = (size_t)(q - p);
        while (len && p[len - 1] == ' ')
            len--;
        if (len)
            json_array_append_new(reasons, json_stringn(p, len));
        p = q;
    }
    json_object_set_new(o, "throttle_reasons", reasons);
    json_object_set_new(o, "kv_cache_usage_max_pct", json_real_or_null(tw->kv_cache_usage_max_pct));
    json_object_set_new(o, "kv_cache_usage_mean_pct",
                        json_real_or_null(tw->kv_cache_usage_mean_pct));
    json_object_set_new(o, "prefix_cache_hit_rate_pct",
                        json_real_or_null(tw->prefix_cache_hit_rate_pct));
    json_object_set_new(o, "num_preemptions", json_real_or_null(tw->num_preemptions));
    json_object_set_new(o, "server_ttft_p50_ms", json_real_or_null(tw->server_ttft_p50_s * 1e3));
    json_object_set_new(o, "server_ttft_p95_ms", json_real_or_null(tw->server_ttft_p95_s * 1e3));
    json_object_set_new(o, "server_itl_p50_ms", json_real_or_null(tw->server_itl_p50_s * 1e3));
    json_object_set_new(o, "host_cpu_util_mean_pct", json_real_or_null(tw->host_cpu_util_mean_pct));
    json_object_set_new(o, "runner_cpu_s", json_real_or_null(tw->runner_cpu_s));
    return o;
}

/* summary.sessions: null without sessions; else their count, the turns never sent, the
 * think times and one entry per turn index. */
static json_t *sessions_json(const struct point_info *pi, const struct point_summary *s,
                             const struct req_record *recs, size_t n)
{
    if (!s->sessions)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer((json_int_t)s->sessions));
    json_object_set_new(o, "turns_skipped", json_integer((json_int_t)pi->session_turns_skipped));
    json_object_set_new(o, "think_time_s", jdist(&s->think_time, 1.0));
    json_object_set_new(o, "ttft_first_turn_ms", jdist(&s->ttft_first_turn, 1e3));
    json_object_set_new(o, "ttft_later_turns_ms", jdist(&s->ttft_later_turns, 1e3));
    struct turn_summary *ts;
    size_t nt = turn_summaries_compute(&ts, recs, n);
    json_t *by = json_array();
    for (size_t t = 0; t < nt; t++) {
        json_t *e = json_object();
        json_object_set_new(e, "turn", json_integer(ts[t].turn));
        json_object_set_new(e, "completed", json_integer((json_int_t)ts[t].completed));
        json_object_set_new(e, "failed", json_integer((json_int_t)ts[t].failed));
        json_object_set_new(e, "prompt_tokens_mean", json_real_or_null(ts[t].prompt_tokens_mean));
        json_object_set_new(e, "cached_prompt_pct", json_real_or_null(ts[t].cached_prompt_pct));
        json_object_set_new(e, "ttft_ms", jdist(&ts[t].ttft, 1e3));
        json_object_set_new(e, "ttft_sched_ms", jdist(&ts[t].ttft_sched, 1e3));
        json_object_set_new(e, "e2e_ms", jdist(&ts[t].e2e, 1e3));
        json_array_append_new(by, e);
    }
    free(ts);
    json_object_set_new(o, "by_turn", by);
    return o;
}

/* summary.verdict (docs/OUTPUTS.md): null without an SLO. */
static json_t *verdict_json(const struct slo_verdict *v)
{
    if (!v->has_slo)
        return json_null();
    char line[512];
    slo_verdict_line(v, line, sizeof(line));
    json_t *o = json_object();
    json_object_set_new(o, "state", json_string(slo_verdict_state(v)));
    json_object_set_new(o, "met", json_boolean(v->met));
    json_object_set_new(o, "decided", json_boolean(v->decided));
    json_object_set_new(o, "line", json_string(line));
    json_object_set_new(o, "percentile", json_real(v->percentile));
    json_object_set_new(o, "confidence", json_real(v->confidence));
    json_object_set_new(o, "requests", json_integer((json_int_t)v->requests));
    json_object_set_new(o, "failed", json_integer((json_int_t)v->failed));
    json_object_set_new(o, "min_requests", json_integer((json_int_t)v->min_requests));
    json_object_set_new(o, "objective",
                        v->shown >= 0
                            ? json_string(slo_objective_name((enum slo_objective)v->shown))
                            : json_null());
    json_t *objs = json_object();
    for (int k = 0; k < OBJ__COUNT; k++) {
        const struct objective_verdict *ov = &v->obj[k];
        if (!ov->present)
            continue;
        /* INFINITY (failed requests reach the rank) is written as the string "inf". */
        json_t *x = json_object();
        json_object_set_new(x, "limit_ms", json_real(ov->limit_ms));
        json_object_set_new(x, "value_ms",
                            isinf(ov->value_ms) ? json_string("inf")
                                                : json_real_or_null(ov->value_ms));
        json_object_set_new(x, "ci_low_ms",
                            isinf(ov->ci_low_ms) ? json_string("inf")
                                                 : json_real_or_null(ov->ci_low_ms));
        json_object_set_new(x, "ci_high_ms",
                            isinf(ov->ci_high_ms) ? json_string("inf")
                                                  : json_real_or_null(ov->ci_high_ms));
        json_object_set_new(x, "n", json_integer((json_int_t)ov->n));
        json_object_set_new(x, "met", json_boolean(ov->met));
        json_object_set_new(x, "decided", json_boolean(ov->decided));
        json_object_set_new(objs, slo_objective_name((enum slo_objective)k), x);
    }
    json_object_set_new(o, "objectives", objs);
    return o;
}

static json_t *summary_json(const struct point_info *pi, const struct point_summary *s,
                            const struct telemetry_window *tw, mono_ns t0,
                            const struct req_record *recs, size_t n)
{
    json_t *o = json_object();
    json_object_set_new(o, "num_requests", json_integer(pi->num_requests));
    json_object_set_new(o, "issued", json_integer((json_int_t)s->issued));
    json_object_set_new(o, "completed", json_integer((json_int_t)s->completed));
    json_object_set_new(o, "failed", json_integer((json_int_t)s->failed));
    json_t *fc = json_object();
    for (int c = 1; c < REQ__COUNT; c++)
        json_object_set_new(fc, status_names[c], json_integer((json_int_t)s->failed_by_class[c]));
    json_object_set_new(o, "failed_by_class", fc);
    json_object_set_new(o, "window_start_s", jtime(s->window_start, t0));
    json_object_set_new(o, "window_end_s", jtime(s->window_end, t0));
    json_object_set_new(o, "duration_s", json_real_or_null(s->duration_s));
    json_object_set_new(o, "request_throughput", json_real_or_null(s->request_throughput));
    json_object_set_new(o, "output_throughput", json_real_or_null(s->output_throughput));
    json_object_set_new(o, "total_throughput", json_real_or_null(s->total_throughput));
    json_object_set_new(o, "prompt_tokens_total", json_integer(s->prompt_tokens_total));
    json_object_set_new(o, "output_tokens_total", json_integer(s->output_tokens_total));
    json_object_set_new(o, "ttft_ms", jdist(&s->ttft, 1e3));
    json_object_set_new(o, "ttft_sched_ms", jdist(&s->ttft_sched, 1e3));
    json_object_set_new(o, "queue_delay_ms", jdist(&s->queue_delay, 1e3));
    json_object_set_new(o, "itl_ms", jdist(&s->itl, 1e3));
    json_object_set_new(o, "tpot_ms", jdist(&s->tpot, 1e3));
    json_object_set_new(o, "e2e_ms", jdist(&s->e2e, 1e3));
    json_object_set_new(o, "e2e_sched_ms", jdist(&s->e2e_sched, 1e3));
    json_object_set_new(o, "user_token_rate", jdist(&s->user_token_rate, 1.0));
    json_object_set_new(o, "slo_met", json_integer((json_int_t)s->slo_met));
    json_object_set_new(o, "goodput", json_real_or_null(s->goodput));
    json_object_set_new(o, "slo_attainment_pct", json_real_or_null(s->slo_attainment_pct));
    json_object_set_new(o, "slo_verdict",
                        s->slo_verdict[0] ? json_string(s->slo_verdict) : json_null());
    json_object_set_new(o, "verdict", verdict_json(&s->verdict));
    json_object_set_new(o, "warmup_requests", json_integer((json_int_t)s->warmup));
    json_object_set_new(o, "warmup_failed", json_integer((json_int_t)s->warmup_failed));
    json_object_set_new(o, "ended_by", json_string(pi->ended_by ? pi->ended_by : "requests"));
    json_object_set_new(o, "offered_rate", json_real_or_null(s->offered_rate));
    json_object_set_new(o, "achieved_rate", json_real_or_null(s->achieved_rate));
    json_object_set_new(o, "saturated", json_boolean(s->saturated));
    json_object_set_new(o, "tokens_from_events", json_integer((json_int_t)s->tokens_from_events));
    json_object_set_new(o, "usage_implausible", json_integer((json_int_t)s->usage_implausible));
    json_object_set_new(o, "prompt_error_max_pct", json_real_or_null(s->prompt_error_max_pct));
    json_object_set_new(o, "prompt_off_target", json_boolean(s->prompt_off_target));
    json_object_set_new(o, "ttfa_ms", jdist(&s->ttfa, 1e3));
    json_object_set_new(o, "reasoning_tokens_total", json_integer(s->reasoning_tokens_total));
    json_object_set_new(o, "reasoning_requests", json_integer((json_int_t)s->reasoning_requests));
    json_object_set_new(o, "reasoning_token_rate", jdist(&s->reasoning_token_rate, 1.0));
    json_object_set_new(o, "answer_token_rate", jdist(&s->answer_token_rate, 1.0));
    json_object_set_new(o, "cached_prompt_tokens_total",
                        s->cached_reported ? json_integer(s->cached_tokens_total) : json_null());
    json_object_set_new(o, "cached_prompt_pct", json_real_or_null(s->cached_prompt_pct));
    json_object_set_new(o, "sessions", sessions_json(pi, s, recs, n));
    json_t *client = json_object();
    json_object_set_new(client, "dispatch_lag_ms", jdist(&pi->dispatch_lag_s, 1e3));
    json_object_set_new(client, "loop_lag_ms", jdist(&pi->loop_lag_s, 1e3));
    json_object_set_new(client, "client_distorted", json_boolean(pi->client_distorted));
    json_object_set_new(client, "possible_error_ms", json_real_or_null(pi->client_error_s * 1e3));
    json_object_set_new(client, "distortion",
                        pi->distortion && pi->distortion[0] ? json_string(pi->distortion)
                                                            : json_null());
    json_object_set_new(o, "client", client);
    json_object_set_new(o, "telemetry", telemetry_window_json(tw, s));
    return o;
}

/* Sessions, reasoning and cached prompt tokens of one record. */
static void record_json_extras(json_t *o, const struct req_record *r, const struct req_latencies *l,
                               mono_ns t0)
{
    bool session = r->session >= 0;
    json_object_set_new(o, "session", session ? json_integer(r->session) : json_null());
    json_object_set_new(o, "turn", session ? json_integer(r->turn) : json_null());
    /* A first turn has one only when its user started it after reading (closed loop). */
    bool thought = session && (r->turn > 0 || r->think_ns > 0);
    json_object_set_new(o, "think_time",
                        thought ? json_real((double)r->think_ns / 1e9) : json_null());
    json_object_set_new(o, "t_first_answer", jtime(r->t_first_answer, t0));
    json_object_set_new(o, "ttfa", json_real_or_null(l->ttfa));
    bool from_usage;
    int reasoning = record_reasoning_tokens(r, &from_usage);
    json_object_set_new(o, "reasoning_tokens", json_integer(reasoning));
    json_object_set_new(o, "reasoning_tokens_source", json_string(from_usage ? "usage" : "events"));
    json_object_set_new(o, "cached_tokens",
                        r->cached_tokens >= 0 ? json_integer(r->cached_tokens) : json_null());
}

static json_t *record_json(const struct req_record *r, const char *tenant, mono_ns t0)
{
    struct req_latencies l;
    record_latencies(r, &l);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)r->id));
    json_object_set_new(o, "tenant", json_string_or_null(tenant));
    json_object_set_new(o, "t_due", jtime(r->t_due, t0));
    json_object_set_new(o, "t_sent", jtime(r->t_sent, t0));
    json_object_set_new(o, "t_first", jtime(r->t_first, t0));
    json_object_set_new(o, "t_last", jtime(r->t_last, t0));
    json_object_set_new(o, "t_end", jtime(r->t_end, t0));
    json_object_set_new(o, "prompt_tokens",
                        r->prompt_tokens >= 0 ? json_integer(r->prompt_tokens) : json_null());
    json_object_set_new(o, "target_prompt_tokens", json_integer(r->target_prompt_tokens));
    json_object_set_new(o, "target_output_tokens", json_integer(r->target_output_tokens));
    json_object_set_new(o, "output_tokens", json_integer(r->output_tokens));
    json_object_set_new(o, "tokens_source", json_string(r->tokens_from_usage ? "usage" : "events"));
    json_object_set_new(o, "usage_output_tokens",
                        r->usage_output_tokens >= 0 ? json_integer(r->usage_output_tokens)
                                                    : json_null());
    json_object_set_new(o, "usage_implausible", json_boolean(r->usage_implausible));
    json_object_set_new(o, "ttft", json_real_or_null(l.ttft));
    json_object_set_new(o, "ttft_sched", json_real_or_null(l.ttft_sched));
    json_object_set_new(o, "queue_delay", json_real_or_null(l.queue_delay));
    json_t *itl = json_array();
    for (size_t i = 1; i < r->n_events; i++)
        json_array_append_new(itl, json_real(ns_diff_s(r->events[i - 1], r->events[i])));
    json_object_set_new(o, "itl", itl);
    json_object_set_new(o, "tpot", json_real_or_null(l.tpot));
    json_object_set_new(o, "e2e", json_real_or_null(l.e2e));
    json_object_set_new(o, "e2e_sched", json_real_or_null(l.e2e_sched));
    json_object_set_new(o, "status", json_string(status_name(r->status)));
    json_object_set_new(o, "warmup", json_boolean(r->warmup));
    json_object_set_new(o, "http_status",
                        r->http_status ? json_integer((json_int_t)r->http_status) : json_null());
    /* Server-supplied text: may quote a secret (the key it refused), may not be UTF-8. */
    char *error = text_redact(r->error);
    char *rid = r->response_id[0] ? text_redact(r->response_id) : NULL;
    json_object_set_new(o, "error", json_string_or_null(error));
    json_object_set_new(o, "response_id", json_string_or_null(rid));
    free(error);
    free(rid);
    record_json_extras(o, r, &l, t0);
    return o;
}

/* ---- CSV ---- */

/* clang-format off */
static const char *const csv_columns[] = {
    /* the required columns, in this order (docs/OUTPUTS.md "summary.csv") */
    "benchmark", "tenant", "model", "context_length", "concurrency", "rate", "arrival",
    "num_requests", "completed", "failed", "duration_s", "request_throughput",
    "output_throughput", "total_throughput",
    "ttft_mean_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p95_ms", "ttft_p99_ms",
    "itl_mean_ms", "itl_p50_ms", "itl_p90_ms", "itl_p95_ms", "itl_p99_ms",
    "tpot_mean_ms", "tpot_p50_ms", "tpot_p90_ms", "tpot_p95_ms", "tpot_p99_ms",
    "e2e_mean_ms", "e2e_p50_ms", "e2e_p90_ms", "e2e_p95_ms", "e2e_p99_ms",
    "goodput", "slo_attainment_pct", "gpu_power_mean_w", "gpu_energy_j",
    "energy_per_output_token_j", "gpu_mem_used_max_mib", "gpu_temp_max_c",
    "kv_cache_usage_max_pct", "prefix_cache_hit_rate_pct",
    /* extras */
    "ttft_p99_9_ms", "ttft_sched_p50_ms", "ttft_sched_p99_ms", "queue_delay_p99_ms",
    "e2e_sched_p99_ms", "itl_p99_9_ms", "tpot_p99_9_ms", "user_token_rate_p50",
    "user_token_rate_min", "output_tokens_total", "prompt_tokens_total", "slo_met",
    "energy_per_request_j", "gpu_power_max_w", "kv_cache_usage_mean_pct", "num_preemptions",
    "server_ttft_p50_ms", "server_ttft_p95_ms", "throttled", "dispatch_lag_p99_ms",
    "loop_lag_p99_ms", "client_distorted", "prompt_error_max_pct", "tokens_from_events",
    "failed_http_4xx", "failed_http_5xx", "failed_timeout", "failed_connect",
    "failed_stream_cut", "failed_bad_response", "failed_cancelled", "failed_client_limit", "slo_verdict",
    "tool_version", "server_version", "gpu", "config_file", "partial",
    "ttfa_p50_ms", "ttfa_p99_ms", "reasoning_tokens_total", "cached_prompt_pct", "sessions",
    "session_turns_skipped", "ttft_first_turn_p50_ms", "ttft_later_turns_p50_ms",
    "warmup_requests", "slo_state", "slo_objective", "slo_value_ms", "slo_ci_low_ms",
    "slo_ci_high_ms", "slo_confidence", "slo_requests", "slo_min_requests", "ended_by",
    "offered_rate", "achieved_rate", "saturated",
};
/* clang-format on */
#define N_CSV_COLUMNS (sizeof(csv_columns) / sizeof(csv_columns[0]))

struct csv_row {
    struct buf *b;
    size_t cells;
    int rc;
};

static void csv_raw(struct csv_row *row, const char *text)
{
    if (row->cells++ && !row->rc)
        row->rc = buf_puts(row->b, ",");
    if (!row->rc && text)
        row->rc = buf_puts(row->b, text);
}

/* RFC 4180: quote a field holding a comma, quote, CR or LF; double embedded quotes. Bytes
 * that are not UTF-8 become U+FFFD and secrets are hidden, as in the JSON files. */
static void csv_str(struct csv_row *row, const char *raw)
{
    char *clean = raw ? utf8_repair(raw, strlen(raw)) : NULL;
    char *s = text_redact(clean);
    free(clean);
    if (!s || !strpbrk(s, ",\"\r\n")) {
        csv_raw(row, s);
        free(s);
        return;
    }
    csv_raw(row, "\"");
    for (const char *p = s; *p && !row->rc; p++)
        row->rc = *p == '"' ? buf_puts(row->b, "\"\"") : buf_append(row->b, p, 1);
    if (!row->rc)
        row->rc = buf_puts(row->b, "\"");
    free(s);
}

static void csv_num(struct csv_row *row, double x)
{
    char tmp[64] = "";
    if (isfinite(x))
        snprintf(tmp, sizeof(tmp), "%.10g", x);
    csv_raw(row, tmp);
}

static void csv_int(struct csv_row *row, long long x)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%lld", x);
    csv_raw(row, tmp);
}

static void csv_bool(struct csv_row *row, bool x)
{
    csv_raw(row, x ? "true" : "false");
}

static void csv_dist5_ms(struct csv_row *row, const struct dist *d)
{
    csv_num(row, d->mean * 1e3);
    csv_num(row, d->p50 * 1e3);
    csv_num(row, d->p90 * 1e3);
    csv_num(row, d->p95 * 1e3);
    csv_num(row, d->p99 * 1e3);
}

#define TW(field) (tw ? tw->field : NAN)

/* The verdict's evidence (docs/OUTPUTS.md "summary.csv"): empty cells without an SLO. */
static void csv_verdict(struct csv_row *row, const struct point_info *pi,
                        const struct point_summary *s)
{
    const struct slo_verdict *v = &s->verdict;
    const struct objective_verdict *ov = v->shown >= 0 ? &v->obj[v->shown] : NULL;
    csv_int(row, (long long)s->warmup);
    csv_raw(row, slo_verdict_state(v));
    csv_raw(row, ov ? slo_objective_name((enum slo_objective)v->shown) : "");
    const double ends[3] = {ov ? ov->value_ms : NAN, ov ? ov->ci_low_ms : NAN,
                            ov ? ov->ci_high_ms : NAN};
    for (int k = 0; k < 3; k++) {
        if (isinf(ends[k])) /* failed requests reach the rank */
            csv_raw(row, "inf");
        else
            csv_num(row, ends[k]);
    }
    csv_num(row, v->has_slo ? v->confidence : NAN);
    if (v->has_slo) {
        csv_int(row, (long long)v->requests);
        csv_int(row, (long long)v->min_requests);
    } else {
        csv_raw(row, "");
        csv_raw(row, "");
    }
    csv_raw(row, pi->ended_by ? pi->ended_by : "requests");
    csv_num(row, s->offered_rate);
    csv_num(row, s->achieved_rate);
    csv_bool(row, s->saturated);
}

/* The run's identity in every row, so a summary.csv on its own says what made it. */
static void csv_identity(struct csv_row *row, json_t *const meta[META__COUNT])
{
    csv_str(row, json_string_value(json_object_get(meta[META_TOOL], "version")));
    csv_str(row, json_string_value(json_object_get(meta[META_SERVER], "version")));
    struct buf gpus;
    buf_init(&gpus, 1024);
    size_t i;
    json_t *g;
    json_array_foreach(meta[META_GPUS], i, g)
    {
        const char *name = json_string_value(json_object_get(g, "name"));
        if (name && ((gpus.len && buf_puts(&gpus, " + ")) || buf_puts(&gpus, name)))
            break;
    }
    csv_str(row, gpus.data);
    buf_release(&gpus);
    csv_str(row, json_string_value(json_object_get(meta[META_CONFIG], "path")));
}

static int csv_add_row(struct buf *b, const struct point_info *pi, const struct point_summary *s,
                       const struct telemetry_window *tw, json_t *const meta[META__COUNT])
{
    size_t mark = b->len;
    struct csv_row row = {b, 0, 0};
    csv_str(&row, pi->benchmark);
    csv_str(&row, pi->tenant);
    csv_str(&row, pi->model);
    if (pi->context_length > 0)
        csv_int(&row, pi->context_length);
    else
        csv_raw(&row, "");
    if (pi->concurrency > 0)
        csv_int(&row, pi->concurrency);
    else
        csv_raw(&row, "");
    if (isinf(pi->rate) && pi->rate > 0)
        csv_raw(&row, "inf");
    else
        csv_num(&row, pi->rate);
    csv_raw(&row, arrival_str(pi->arrival));
    csv_int(&row, (long long)s->issued);
    csv_int(&row, (long long)s->completed);
    csv_int(&row, (long long)s->failed);
    csv_num(&row, s->duration_s);
    csv_num(&row, s->request_throughput);
    csv_num(&row, s->output_throughput);
    csv_num(&row, s->total_throughput);
    csv_dist5_ms(&row, &s->ttft);
    csv_dist5_ms(&row, &s->itl);
    csv_dist5_ms(&row, &s->tpot);
    csv_dist5_ms(&row, &s->e2e);
    csv_num(&row, s->goodput);
    csv_num(&row, s->slo_attainment_pct);
    csv_num(&row, TW(gpu_power_mean_w));
    csv_num(&row, TW(gpu_energy_j));
    csv_num(&row, energy_per(tw, (double)s->output_tokens_total));
    csv_num(&row, TW(gpu_mem_used_max_mib));
    csv_num(&row, TW(gpu_temp_max_c));
    csv_num(&row, TW(kv_cache_usage_max_pct));
    csv_num(&row, TW(prefix_cache_hit_rate_pct));
    /* extras */
    csv_num(&row, s->ttft.p999 * 1e3);
    csv_num(&row, s->ttft_sched.p50 * 1e3);
    csv_num(&row, s->ttft_sched.p99 * 1e3);
    csv_num(&row, s->queue_delay.p99 * 1e3);
    csv_num(&row, s->e2e_sched.p99 * 1e3);
    csv_num(&row, s->itl.p999 * 1e3);
    csv_num(&row, s->tpot.p999 * 1e3);
    csv_num(&row, s->user_token_rate.p50);
    csv_num(&row, s->user_token_rate.min);
    csv_int(&row, s->output_tokens_total);
    csv_int(&row, s->prompt_tokens_total);
    csv_int(&row, (long long)s->slo_met);
    csv_num(&row, energy_per(tw, (double)s->completed));
    csv_num(&row, TW(gpu_power_max_w));
    csv_num(&row, TW(kv_cache_usage_mean_pct));
    csv_num(&row, TW(num_preemptions));
    csv_num(&row, TW(server_ttft_p50_s) * 1e3);
    csv_num(&row, TW(server_ttft_p95_s) * 1e3);
    if (tw)
        csv_bool(&row, tw->throttled);
    else
        csv_raw(&row, "");
    csv_num(&row, pi->dispatch_lag_s.p99 * 1e3);
    csv_num(&row, pi->loop_lag_s.p99 * 1e3);
    csv_bool(&row, pi->client_distorted);
    csv_num(&row, s->prompt_error_max_pct);
    csv_int(&row, (long long)s->tokens_from_events);
    for (int c = 1; c < REQ__COUNT; c++)
        csv_int(&row, (long long)s->failed_by_class[c]);
    csv_str(&row, s->slo_verdict);
    csv_identity(&row, meta);
    csv_raw(&row, pi->partial ? "true" : "false");
    csv_num(&row, s->ttfa.p50 * 1e3);
    csv_num(&row, s->ttfa.p99 * 1e3);
    csv_int(&row, s->reasoning_tokens_total);
    csv_num(&row, s->cached_prompt_pct);
    if (s->sessions) {
        csv_int(&row, (long long)s->sessions);
        csv_int(&row, (long long)pi->session_turns_skipped);
    } else {
        csv_raw(&row, "");
        csv_raw(&row, "");
    }
    csv_num(&row, s->ttft_first_turn.p50 * 1e3);
    csv_num(&row, s->ttft_later_turns.p50 * 1e3);
    csv_verdict(&row, pi, s);
    if (!row.rc)
        row.rc = buf_puts(b, "\n");
    if (!row.rc && row.cells != N_CSV_COLUMNS)
        row.rc = -EPROTO; /* a column added to one list and not the other */
    if (row.rc) {
        b->len = mark;
        if (b->data)
            b->data[mark] = '\0';
    }
    return row.rc;
}

/* ---- files ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool any_exists(char *const paths[KIND__COUNT])
{
    for (int k = 0; k < KIND__COUNT; k++)
        if (access(paths[k], F_OK) == 0)
            return true;
    return false;
}

static void free_paths(char *paths[KIND__COUNT])
{
    for (int k = 0; k < KIND__COUNT; k++) {
        free(paths[k]);
        paths[k] = NULL;
    }
}

int results_open(struct results_writer **out, const char *dir, const char *prefix, char *err,
                 size_t errlen)
{
    if (!dir || !*dir)
        dir = ".";
    if (!prefix || !*prefix)
        prefix = "benchmark";
    int rc = fs_mkdir_p(dir);
    if (rc) {
        set_err(err, errlen, "%s: cannot create directory: %s", dir, strerror(-rc));
        return rc;
    }
    struct results_writer *w = xcalloc(1, sizeof(*w));
    buf_init(&w->csv, RESULTS_CSV_MAX);
    buf_init(&w->points, RESULTS_POINTS_MAX);
    char stamp[32];
    clock_wall_stamp(stamp, sizeof(stamp));
    /* Two runs in the same second must not overwrite each other: add -2, -3, ... */
    for (int n = 1; n <= RESULTS_MAX_SUFFIX; n++) {
        char suffix[16] = "";
        if (n > 1)
            snprintf(suffix, sizeof(suffix), "-%d", n);
        for (int k = 0; k < KIND__COUNT; k++)
            w->paths[k] = xasprintf("%s/%s_%s%s%s", dir, prefix, stamp, suffix, kind_suffix[k]);
        if (!any_exists(w->paths)) {
            *out = w;
            return 0;
        }
        free_paths(w->paths);
    }
    set_err(err, errlen, "%s: too many result files named %s_%s", dir, prefix, stamp);
    results_free(w);
    return -EEXIST;
}

/* Hides remembered secrets in every string of j (in place): the config and the server's
 * description hold endpoints, which may carry credentials. Returns j. */
static json_t *json_redact(json_t *j)
{
    if (json_is_string(j)) {
        char *r = text_redact(json_string_value(j));
        if (strcmp(r, json_string_value(j)) != 0)
            json_string_set(j, r);
        free(r);
    } else if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            json_redact(v);
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            json_redact(v);
        }
    }
    return j;
}

void results_set_meta(struct results_writer *w, const char *started_at, json_t *tool,
                      json_t *config, json_t *server, json_t *host, json_t *gpus)
{
    json_t *in[META__COUNT] = {tool, config, json_redact(server), host, gpus};
    json_redact(config);
    for (int i = 0; i < META__COUNT; i++) {
        json_decref(w->meta[i]);
        w->meta[i] = in[i];
    }
    free(w->started_at);
    w->started_at = xstrdup(started_at);
}

void results_mark(const struct results_writer *w, struct results_mark *m)
{
    m->points_len = w->points.len;
    m->csv_len = w->csv.len;
}

void results_rollback(struct results_writer *w, const struct results_mark *m)
{
    buf_truncate(&w->points, m->points_len);
    buf_truncate(&w->csv, m->csv_len);
}

static int append_json(const char *chunk, size_t size, void *data)
{
    return buf_append(data, chunk, size) ? -1 : 0;
}

void results_set_clock(struct results_writer *w, mono_ns t0)
{
    w->t0 = t0;
}

void results_set_load(struct results_writer *w, json_t *load)
{
    json_decref(w->load);
    w->load = load;
}

void results_add_point(struct results_writer *w, const struct point_info *pi,
                       const struct point_summary *s, const struct telemetry_window *tw,
                       const struct req_record *recs, size_t n, mono_ns t0)
{
    json_t *p = json_object();
    json_object_set_new(p, "point", json_integer((json_int_t)pi->point));
    json_object_set_new(p, "tenant", json_string_or_null(pi->tenant));
    json_object_set_new(p, "model", json_string_or_null(pi->model));
    json_object_set_new(p, "context_length",
                        pi->context_length > 0 ? json_integer(pi->context_length) : json_null());
    json_object_set_new(p, "concurrency",
                        pi->concurrency > 0 ? json_integer(pi->concurrency) : json_null());
    json_object_set_new(p, "rate",
                        isinf(pi->rate) && pi->rate > 0 ? json_string("inf")
                                                        : json_real_or_null(pi->rate));
    json_object_set_new(p, "arrival", json_string(arrival_str(pi->arrival)));
    json_object_set_new(p, "partial", json_boolean(pi->partial));
    json_object_set_new(p, "summary", summary_json(pi, s, tw, t0, recs, n));
    /* Straight into the text buffer, and the requests one record at a time: a point as one
     * JSON tree costs ~50 bytes a token event (9,000 requests of 400 tokens: ~170 MiB at
     * once), its text ~20. The text is what json_dump of the whole object would write: the
     * object's fields, then "requests" last. */
    size_t mark = w->points.len;
    int rc = mark ? buf_puts(&w->points, ",") : 0;
    if (!rc)
        rc = json_dump_callback(p, append_json, &w->points, RESULTS_JSON_FLAGS) != 0;
    if (!rc && w->points.len > 0 && w->points.data[w->points.len - 1] == '}') {
        buf_truncate(&w->points, w->points.len - 1); /* reopen the object */
        rc = buf_puts(&w->points, ",\"requests\":[");
    } else {
        rc = -1;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *rj = record_json(&recs[i], pi->tenant, t0);
        rc = i ? buf_puts(&w->points, ",") : 0;
        if (!rc)
            rc = json_dump_callback(rj, append_json, &w->points, RESULTS_JSON_FLAGS) != 0;
        json_decref(rj);
    }
    if (!rc)
        rc = buf_puts(&w->points, "]}");
    if (rc) {
        buf_truncate(&w->points, mark); /* drop a half-written point; the JSON stays valid */
        log_error("results: a point could not be kept (out of memory); it is missing from %s",
                  w->paths[KIND_DETAILED]);
    }
    json_decref(p);
    /* Only a broken column table or a 1 GiB CSV can fail here; the JSON still has the point. */
    (void)csv_add_row(&w->csv, pi, s, tw, w->meta);
}

/* The reason a write failed, in the words a user acts on. */
static const char *write_reason(int err)
{
    switch (err) {
    case ENOSPC:
        return "no space left on the device: the disk is full";
    case EDQUOT:
        return "disk quota exceeded";
    case EFBIG:
        return "file too large (a file size limit, ulimit -f)";
    case EROFS:
        return "the file system is read-only";
    case EACCES:
    case EPERM:
        return "permission denied: the directory is not writable";
    case ENAMETOOLONG:
        return "file name too long";
    default:
        return strerror(err);
    }
}

/* The error of a failed stdio write: errno when it says why, else EIO. */
static int io_errno(void)
{
    return errno ? -errno : -EIO;
}

/* Writes path via path.tmp, fsync and rename(). */
static int write_atomic(const char *path, int (*emit)(FILE *f, const void *arg), const void *arg,
                        char *err, size_t errlen)
{
    char *tmp = xasprintf("%s.tmp", path);
    int rc = 0;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = -errno;
        set_err(err, errlen, "cannot write %s: %s", path, write_reason(-rc));
        goto out;
    }
    errno = 0;
    rc = emit(f, arg);
    if (!rc && fflush(f) != 0)
        rc = -errno;
    if (!rc && fsync(fileno(f)) != 0 && errno != EINVAL)
        rc = -errno;
    if (fclose(f) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc) {
        set_err(err, errlen, "cannot write %s: %s", path, write_reason(-rc));
        unlink(tmp);
    }
out:
    free(tmp);
    return rc;
}

struct detailed_doc {
    const json_t *root;       /* every top-level key but "points" */
    const struct buf *points; /* their JSON text, comma-separated */
};

/* The root object with "points": [...] spliced in as its last member. */
static int emit_detailed(FILE *f, const void *arg)
{
    const struct detailed_doc *d = arg;
    char *head = json_dumps(d->root, RESULTS_JSON_FLAGS);
    size_t n = head ? strlen(head) : 0;
    int rc = n >= 2 && head[n - 1] == '}' ? 0 : -EIO; /* a non-empty object: "{...}" */
    if (!rc && (fwrite(head, 1, n - 1, f) != n - 1 || fputs(",\"points\":[", f) == EOF))
        rc = io_errno();
    if (!rc && d->points->len && fwrite(d->points->data, 1, d->points->len, f) != d->points->len)
        rc = io_errno();
    if (!rc && fputs("]}\n", f) == EOF)
        rc = io_errno();
    free(head);
    return rc;
}

static int emit_json(FILE *f, const void *arg)
{
    return json_dumpf((const json_t *)arg, f, RESULTS_JSON_FLAGS) == 0 && fputc('\n', f) != EOF
               ? 0
               : io_errno();
}

static int emit_csv(FILE *f, const void *arg)
{
    const struct results_writer *w = arg;
    for (size_t i = 0; i < N_CSV_COLUMNS; i++)
        if (fprintf(f, "%s%s", i ? "," : "", csv_columns[i]) < 0)
            return io_errno();
    if (fputc('\n', f) == EOF)
        return io_errno();
    if (w->csv.len && fwrite(w->csv.data, 1, w->csv.len, f) != w->csv.len)
        return io_errno();
    return 0;
}

int results_flush(struct results_writer *w, json_t *telemetry, char *err, size_t errlen)
{
    json_t *root = json_object();
    json_object_set_new(root, "schema_version", json_integer(RESULTS_SCHEMA_VERSION));
    json_object_set(root, meta_keys[META_TOOL],
                    w->meta[META_TOOL] ? w->meta[META_TOOL] : json_null());
    json_object_set_new(root, "started_at", json_string_or_null(w->started_at));
    /* Record times are seconds after t0; t0 itself lets tools line them up with other
     * CLOCK_MONOTONIC stamps on the same machine (the simulator's --trace). */
    /* t0 in integer nanoseconds too: 12 significant digits of seconds lose the nanoseconds
     * of an uptime of days, and a merge of several workers' records needs them. */
    json_object_set_new(root, "clock",
                        json_pack("{s:s, s:o, s:o}", "source", "CLOCK_MONOTONIC", "t0_monotonic_s",
                                  w->t0 ? json_real((double)w->t0 / 1e9) : json_null(),
                                  "t0_monotonic_ns",
                                  w->t0 ? json_integer((json_int_t)w->t0) : json_null()));
    for (int i = META_CONFIG; i < META__COUNT; i++)
        json_object_set(root, meta_keys[i], w->meta[i] ? w->meta[i] : json_null());
    if (!w->meta[META_GPUS])
        json_object_set_new(root, "gpus", json_array());
    json_object_set(root, "load", w->load ? w->load : json_null());
    struct detailed_doc doc = {root, &w->points};

    /* A shallow copy of the caller's object, with the run's identity added: the telemetry
     * file, too, says which tool, config, server and GPUs it belongs to. */
    json_t *tel = telemetry ? json_copy(telemetry)
                            : json_pack("{s:n, s:[], s:[]}", "interval_s", "sources", "samples");
    json_redact(tel); /* other servers' endpoints */
    json_object_set(tel, "tool", w->meta[META_TOOL] ? w->meta[META_TOOL] : json_null());
    json_object_set(tel, "config", w->meta[META_CONFIG] ? w->meta[META_CONFIG] : json_null());
    json_object_set(tel, "server", w->meta[META_SERVER] ? w->meta[META_SERVER] : json_null());
    json_object_set(tel, "gpus", w->meta[META_GPUS] ? w->meta[META_GPUS] : json_null());

    int rc = write_atomic(w->paths[KIND_DETAILED], emit_detailed, &doc, err, errlen);
    if (!rc)
        rc = write_atomic(w->paths[KIND_SUMMARY], emit_csv, w, err, errlen);
    if (!rc)
        rc = write_atomic(w->paths[KIND_TELEMETRY], emit_json, tel, err, errlen);
    json_decref(tel);
    json_decref(root);
    return rc;
}

int results_relocate(struct results_writer *w, const char *dir, char *err, size_t errlen)
{
    int rc = fs_mkdir_p(dir);
    if (rc) {
        set_err(err, errlen, "%s: cannot create directory: %s", dir, write_reason(-rc));
        return rc;
    }
    for (int k = 0; k < KIND__COUNT; k++) {
        const char *slash = strrchr(w->paths[k], '/');
        char *moved = xasprintf("%s/%s", dir, slash ? slash + 1 : w->paths[k]);
        free(w->paths[k]);
        w->paths[k] = moved;
    }
    return 0;
}

const char *results_path(const struct results_writer *w, const char *kind)
{
    for (int k = 0; k < KIND__COUNT; k++)
        if (kind && strcmp(kind, kind_names[k]) == 0)
            return w->paths[k];
    return NULL;
}

void results_free(struct results_writer *w)
{
    if (!w)
        return;
    free_paths(w->paths);
    free(w->started_at);
    for (int i = 0; i < META__COUNT; i++)
        json_decref(w->meta[i]);
    json_decref(w->load);
    buf_release(&w->points);
    buf_release(&w->csv);
    free(w);
}
