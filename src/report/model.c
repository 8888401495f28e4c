/*
 * model.c - turns loaded runs and studies into the report's JSON. Per point: the summary
 * figures the charts use and CDFs of TTFT and ITL as MODEL_CDF_POINTS quantiles (exact order
 * statistics, so a CDF of 100,000 requests is as sharp as one of 100). Per run: the telemetry
 * timeline, binned by time when long (bin mean for levels, union for throttle reasons).
 */
#include "report/model.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"
#include "report/predict.h"
#include "report/workload.h"

static json_t *num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

json_t *quantiles_json(const double *v, size_t n, size_t points, double scale)
{
    json_t *a = json_array();
    if (n == 0)
        return a;
    if (points > n)
        points = n;
    for (size_t k = 0; k < points; k++) {
        double q = points > 1 ? (double)k / (double)(points - 1) : 1.0;
        json_array_append_new(a, json_real(percentile_sorted(v, n, q) * scale));
    }
    return a;
}

/* TTFT of completed requests and their pooled inter-token gaps, sorted. */
static void point_samples(const json_t *p, struct dvec *ttft, struct dvec *itl)
{
    const json_t *reqs = json_object_get(p, "requests");
    size_t total = 0, i;
    json_t *r;
    json_array_foreach(reqs, i, r) total += json_array_size(json_object_get(r, "itl"));
    size_t stride = total > MODEL_MAX_GAPS ? (total + MODEL_MAX_GAPS - 1) / MODEL_MAX_GAPS : 1;
    size_t seen = 0;
    json_array_foreach(reqs, i, r)
    {
        const char *st = json_string_value(json_object_get(r, "status"));
        if (!st || strcmp(st, "ok") != 0)
            continue;
        double t = json_num(r, "ttft");
        if (isfinite(t))
            dvec_push(ttft, t);
        size_t k;
        json_t *g;
        json_array_foreach(json_object_get(r, "itl"), k, g)
        {
            if (seen++ % stride == 0 && json_is_number(g))
                dvec_push(itl, json_number_value(g));
        }
    }
    sort_doubles(ttft->v, ttft->n);
    sort_doubles(itl->v, itl->n);
}

static json_t *point_json(const struct report_run *run, const json_t *p,
                          const struct report_slo *slo)
{
    const json_t *s = json_object_get(p, "summary");
    json_t *o = json_object();
    json_object_set(o, "tenant", json_object_get(p, "tenant"));
    json_object_set_new(o, "context", num(json_num(p, "context_length")));
    json_object_set_new(o, "concurrency", num(json_num(p, "concurrency")));
    json_t *rate = json_object_get(p, "rate");
    json_object_set_new(
        o, "rate", json_is_number(rate) ? json_real(json_number_value(rate)) : json_string("inf"));
    json_object_set(o, "partial", json_object_get(p, "partial"));
    json_object_set_new(o, "completed", num(json_num(s, "completed")));
    json_object_set_new(o, "failed", num(json_num(s, "failed")));
    json_object_set_new(o, "req_tps", num(json_num(s, "request_throughput")));
    json_object_set_new(o, "out_tps", num(json_num(s, "output_throughput")));
    static const char *const dists[][3] = {
        {"ttft_p50", "ttft_ms", "p50"}, {"ttft_p95", "ttft_ms", "p95"},
        {"ttft_p99", "ttft_ms", "p99"}, {"itl_p50", "itl_ms", "p50"},
        {"itl_p99", "itl_ms", "p99"},   {"tpot_p50", "tpot_ms", "p50"},
        {"tpot_p95", "tpot_ms", "p95"}, {"e2e_p95", "e2e_ms", "p95"},
    };
    for (size_t i = 0; i < sizeof(dists) / sizeof(dists[0]); i++)
        json_object_set_new(o, dists[i][0], num(summary_dist(s, dists[i][1], dists[i][2])));
    json_object_set_new(o, "user_tps_p50", num(summary_dist(s, "user_token_rate", "p50")));
    json_object_set_new(o, "goodput", num(json_num(s, "goodput")));
    json_object_set_new(o, "attainment", num(json_num(s, "slo_attainment_pct")));
    char why[512];
    int met = point_judge(run->detailed, p, slo, why, sizeof(why));
    json_object_set_new(o, "slo_met", met < 0 ? json_null() : json_boolean(met));
    json_object_set_new(o, "verdict", json_string(met < 0 ? "no SLO set" : why));
    const json_t *tel = json_object_get(s, "telemetry");
    json_object_set_new(o, "energy_j_per_tok", num(json_num(tel, "energy_per_output_token_j")));
    json_object_set_new(o, "gpu_power_mean_w", num(json_num(tel, "gpu_power_mean_w")));
    json_object_set_new(o, "kv_max_pct", num(json_num(tel, "kv_cache_usage_max_pct")));
    json_object_set(o, "throttle_reasons", json_object_get(tel, "throttle_reasons"));
    const json_t *client = json_object_get(s, "client");
    json_object_set_new(o, "distorted",
                        json_boolean(json_is_true(json_object_get(client, "client_distorted"))));
    json_object_set_new(o, "dispatch_lag_p99_ms",
                        num(summary_dist(client, "dispatch_lag_ms", "p99")));
    json_object_set_new(o, "loop_lag_p99_ms", num(summary_dist(client, "loop_lag_ms", "p99")));
    json_t *w = json_array();
    json_array_append_new(w, num(json_num(s, "window_start_s")));
    json_array_append_new(w, num(json_num(s, "window_end_s")));
    json_object_set_new(o, "window", w);
    struct dvec ttft, itl;
    dvec_init(&ttft);
    dvec_init(&itl);
    point_samples(p, &ttft, &itl);
    json_t *cdf = json_object();
    json_object_set_new(cdf, "ttft", quantiles_json(ttft.v, ttft.n, MODEL_CDF_POINTS, 1e3));
    json_object_set_new(cdf, "itl", quantiles_json(itl.v, itl.n, MODEL_CDF_POINTS, 1e3));
    json_object_set_new(o, "cdf", cdf);
    json_object_set_new(o, "workload",
                        workload_point_json(json_object_get(run->detailed, "config"), p));
    dvec_release(&ttft);
    dvec_release(&itl);
    return o;
}

/* One telemetry sample reduced to the timeline's fields (NAN where unknown). */
enum tl_field {
    TL_POWER,
    TL_TEMP,
    TL_SM,
    TL_VRAM,
    TL_KV,
    TL_RUN,
    TL_WAIT,
    TL_PREFIX,
    TL_THR,
    TL_N
};
static const char *const tl_names[TL_N] = {"power_w",  "temp_c",         "sm_mhz",
                                           "vram_gib", "kv_pct",         "running",
                                           "waiting",  "prefix_hit_pct", "throttled"};

static void sample_fields(const json_t *smp, double f[TL_N], char *thr, size_t thrlen)
{
    for (int i = 0; i < TL_N; i++)
        f[i] = NAN;
    size_t gi;
    json_t *g;
    size_t used = thr && thrlen ? (thr[0] = '\0', 0) : 0;
    json_array_foreach(json_object_get(smp, "gpus"), gi, g)
    {
        double p = json_num(g, "power_w"), t = json_num(g, "temperature_c");
        double sm = json_num(g, "sm_clock_mhz"), mem = json_num(g, "memory_used_mib");
        if (!isnan(p))
            f[TL_POWER] = (isnan(f[TL_POWER]) ? 0 : f[TL_POWER]) + p;
        if (!isnan(t) && (isnan(f[TL_TEMP]) || t > f[TL_TEMP]))
            f[TL_TEMP] = t;
        if (!isnan(sm) && (isnan(f[TL_SM]) || sm < f[TL_SM]))
            f[TL_SM] = sm; /* the slowest GPU sets the pace */
        if (!isnan(mem))
            f[TL_VRAM] = (isnan(f[TL_VRAM]) ? 0 : f[TL_VRAM]) + mem / 1024.0;
        json_t *reasons = json_object_get(g, "throttle_reasons");
        if (json_is_array(reasons)) {
            if (isnan(f[TL_THR]))
                f[TL_THR] = 0;
            size_t k;
            json_t *r;
            json_array_foreach(reasons, k, r)
            {
                const char *name = json_string_value(r);
                if (!name || strcmp(name, "gpu_idle") == 0)
                    continue;
                f[TL_THR] = 1;
                if (thr && used < thrlen && !strstr(thr, name))
                    used +=
                        (size_t)snprintf(thr + used, thrlen - used, "%s%s", used ? "," : "", name);
            }
        }
    }
    const json_t *srv = json_object_get(smp, "server");
    f[TL_KV] = json_num(srv, "kv_cache_usage_pct");
    f[TL_RUN] = json_num(srv, "num_requests_running");
    f[TL_WAIT] = json_num(srv, "num_requests_waiting");
    f[TL_PREFIX] = json_num(srv, "prefix_cache_hit_rate_pct");
}

static json_t *timeline_json(const json_t *telemetry)
{
    const json_t *samples = json_object_get(telemetry, "samples");
    size_t n = json_array_size(samples);
    if (n == 0)
        return json_null();
    double t0 = json_num(json_array_get(samples, 0), "t");
    double t1 = json_num(json_array_get(samples, n - 1), "t");
    size_t bins = n > MODEL_TIMELINE_BINS ? MODEL_TIMELINE_BINS : n;
    double width = bins < n && t1 > t0 ? (t1 - t0) / (double)bins : 0;
    double *sum = xcalloc(bins * TL_N, sizeof(double));
    size_t *cnt = xcalloc(bins * TL_N, sizeof(size_t));
    double *tsum = xcalloc(bins, sizeof(double));
    size_t *tcnt = xcalloc(bins, sizeof(size_t));
    char(*thr)[160] = xcalloc(bins, sizeof(*thr));
    bool seen[TL_N] = {false};
    size_t i;
    json_t *smp;
    json_array_foreach(samples, i, smp)
    {
        double t = json_num(smp, "t");
        if (isnan(t))
            continue;
        size_t b = width > 0 ? (size_t)((t - t0) / width) : i;
        if (b >= bins)
            b = bins - 1;
        double f[TL_N];
        char reasons[160];
        sample_fields(smp, f, reasons, sizeof(reasons));
        tsum[b] += t;
        tcnt[b]++;
        for (int k = 0; k < TL_N; k++)
            if (!isnan(f[k])) {
                sum[b * TL_N + k] += f[k];
                cnt[b * TL_N + k]++;
                seen[k] = true;
            }
        size_t used = strlen(thr[b]);
        char *save = NULL;
        for (char *tok = strtok_r(reasons, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            if (!strstr(thr[b], tok) && used + strlen(tok) + 2 < sizeof(thr[b]))
                used += (size_t)snprintf(thr[b] + used, sizeof(thr[b]) - used, "%s%s",
                                         used ? "," : "", tok);
    }
    json_t *o = json_object();
    json_t *ta = json_array(), *arr[TL_N], *th = json_array();
    for (int k = 0; k < TL_N; k++)
        arr[k] = json_array();
    for (size_t b = 0; b < bins; b++) {
        if (!tcnt[b])
            continue;
        json_array_append_new(ta, json_real(tsum[b] / (double)tcnt[b]));
        for (int k = 0; k < TL_N; k++)
            json_array_append_new(
                arr[k], cnt[b * TL_N + k] ? json_real(sum[b * TL_N + k] / (double)cnt[b * TL_N + k])
                                          : json_null());
        json_array_append_new(th, json_string(thr[b]));
    }
    json_object_set_new(o, "t", ta);
    for (int k = 0; k < TL_N; k++) {
        if (seen[k])
            json_object_set_new(o, tl_names[k], arr[k]);
        else
            json_decref(arr[k]);
    }
    json_object_set_new(o, "throttle", th);
    json_object_set_new(o, "n_samples", json_integer((json_int_t)n));
    json_object_set_new(o, "bin_s", json_real(width));
    free(sum);
    free(cnt);
    free(tsum);
    free(tcnt);
    free(thr);
    return o;
}

/* {ttft_ms, tpot_ms, itl_ms, e2e_ms, percentile}: cs's objectives with the report's overrides. */
static json_t *slo_json(const json_t *cs, const struct report_slo *slo)
{
    json_t *so = json_object();
    const char *keys[] = {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "percentile"};
    double ov[] = {slo->ttft_ms, slo->tpot_ms, slo->itl_ms, slo->e2e_ms, slo->percentile};
    for (size_t i = 0; i < 5; i++)
        json_object_set_new(so, keys[i], num(isnan(ov[i]) ? json_num(cs, keys[i]) : ov[i]));
    return so;
}

/* The slo a tenant's points are judged by: its own when the config gives it one. */
static const json_t *point_slo(const json_t *detailed, const char *tenant)
{
    const json_t *cfg = json_object_get(detailed, "config");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(cfg, "tenants"), i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        if (name && strcmp(name, tenant) == 0 && json_is_object(json_object_get(t, "slo")))
            return json_object_get(t, "slo");
    }
    return json_object_get(cfg, "slo");
}

static json_t *run_json(const struct report_run *r, const struct report_slo *slo)
{
    json_t *o = json_object();
    const json_t *d = r->detailed;
    json_object_set_new(o, "label", json_string(r->label));
    json_object_set_new(o, "file", json_string(r->path));
    json_object_set_new(o, "telemetry_file",
                        r->telemetry_path ? json_string(r->telemetry_path) : json_null());
    json_object_set_new(o, "model", json_string(r->model));
    json_object_set_new(o, "quantization", json_string(r->quantization));
    json_object_set_new(o, "kv_dtype", json_string(r->kv_dtype));
    json_object_set_new(o, "setup", r->study_setup ? json_string(r->study_setup) : json_null());
    json_object_set(o, "tool", json_object_get(d, "tool"));
    json_object_set(o, "started_at", json_object_get(d, "started_at"));
    json_object_set(o, "server", json_object_get(d, "server"));
    json_object_set(o, "gpus", json_object_get(d, "gpus"));
    json_object_set(o, "host", json_object_get(d, "host"));
    const json_t *cfg = json_object_get(d, "config");
    json_object_set(o, "config_file", json_object_get(cfg, "path"));
    json_object_set(o, "benchmark", json_object_get(json_object_get(cfg, "benchmark"), "name"));
    json_object_set(o, "sim", json_object_get(json_object_get(cfg, "server"), "sim"));
    /* The run's objectives as the report judges them (overrides applied), and each tenant's
     * own: a tenant's slo replaces the top level's for its points. */
    json_object_set_new(o, "slo", slo_json(json_object_get(cfg, "slo"), slo));
    json_t *slos = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(d, "points"), i, p)
    {
        const char *tn = json_string_value(json_object_get(p, "tenant"));
        bool seen = false;
        size_t k;
        json_t *e;
        json_array_foreach(slos, k, e) seen =
            seen || (tn && strcmp(json_string_value(json_object_get(e, "tenant")), tn) == 0);
        if (seen || !tn)
            continue;
        json_t *e2 = slo_json(point_slo(d, tn), slo);
        json_object_set_new(e2, "tenant", json_string(tn));
        json_array_append_new(slos, e2);
    }
    json_object_set_new(o, "slos", slos);
    json_t *pts = json_array();
    json_array_foreach(json_object_get(d, "points"), i, p)
        json_array_append_new(pts, point_json(r, p, slo));
    json_object_set_new(o, "points", pts);
    json_object_set_new(o, "telemetry", r->telemetry ? timeline_json(r->telemetry) : json_null());
    /* Partitioned when tenants name more than one endpoint, shared otherwise. */
    const char *first = NULL;
    bool partitioned = false;
    json_t *t;
    json_array_foreach(json_object_get(cfg, "tenants"), i, t)
    {
        const char *ep = json_string_value(json_object_get(t, "endpoint"));
        if (ep && first && strcmp(ep, first) != 0)
            partitioned = true;
        if (ep && !first)
            first = ep;
    }
    json_object_set_new(o, "tenancy", json_string(partitioned ? "partitioned" : "shared"));
    return o;
}

/* One row per tenant point of every run with several tenants, for the side-by-side charts. */
static json_t *tenants_json(json_t *runs)
{
    json_t *rows = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r)
    {
        json_t *pts = json_object_get(r, "points");
        const char *t0 = json_string_value(json_object_get(json_array_get(pts, 0), "tenant"));
        bool several = false;
        size_t k;
        json_t *p;
        json_array_foreach(pts, k, p)
        {
            const char *t = json_string_value(json_object_get(p, "tenant"));
            if (t && t0 && strcmp(t, t0) != 0)
                several = true;
        }
        if (!several)
            continue;
        json_array_foreach(pts, k, p)
        {
            json_t *o = json_object();
            char *name = xasprintf("%s (%s)", json_string_value(json_object_get(r, "label")),
                                   json_string_value(json_object_get(r, "tenancy")));
            json_object_set_new(o, "run", json_string(name));
            free(name);
            json_object_set(o, "tenant", json_object_get(p, "tenant"));
            json_object_set(o, "ttft_p95", json_object_get(p, "ttft_p95"));
            json_object_set(o, "tpot_p95", json_object_get(p, "tpot_p95"));
            json_object_set(o, "attainment", json_object_get(p, "attainment"));
            json_object_set(o, "slo_met", json_object_get(p, "slo_met"));
            /* The tenant's own objectives, drawn beside its bars. */
            const char *tn = json_string_value(json_object_get(p, "tenant"));
            size_t si;
            json_t *e;
            json_array_foreach(json_object_get(r, "slos"), si, e)
            {
                if (tn && strcmp(json_string_value(json_object_get(e, "tenant")), tn) == 0) {
                    json_object_set(o, "slo_ttft_ms", json_object_get(e, "ttft_ms"));
                    json_object_set(o, "slo_tpot_ms", json_object_get(e, "tpot_ms"));
                }
            }
            json_array_append_new(rows, o);
        }
    }
    return rows;
}

static void pvm_row(json_t *rows, const char *study, const char *setup, const char *workload,
                    double users, const char *metric, double pred, double meas, double err)
{
    if (isnan(pred) || isnan(meas))
        return;
    if (isnan(err) && meas != 0)
        err = (pred - meas) / meas * 100.0;
    json_t *o = json_object();
    json_object_set_new(o, "study", json_string(study));
    json_object_set_new(o, "setup", json_string(setup));
    json_object_set_new(o, "workload", json_string(workload));
    json_object_set_new(o, "users", num(users));
    json_object_set_new(o, "metric", json_string(metric));
    json_object_set_new(o, "predicted", json_real(pred));
    json_object_set_new(o, "measured", json_real(meas));
    json_object_set_new(o, "error_pct", num(err));
    json_array_append_new(rows, o);
}

/* The planner's prediction for each closed-loop point (rate inf, a concurrency cap) of a run
 * that says which GPU it ran on (the simulator's) or of every run when gpu is given: one
 * `plan` per tenant and context, for the user counts the run measured. */
static void run_predictions(json_t *rows, const struct report_run *r, const char *self,
                            const char *gpu)
{
    const char *g = gpu ? gpu : r->gpu;
    if (!self || !g || r->study_setup)
        return;
    const json_t *points = json_object_get(r->detailed, "points");
    const json_t *cfg = json_object_get(r->detailed, "config");
    size_t n = json_array_size(points);
    bool *done = xcalloc(n ? n : 1, sizeof(bool));
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(points, i);
        if (done[i] || json_is_number(json_object_get(p, "rate")) ||
            isnan(json_num(p, "concurrency")))
            continue;
        const char *tenant = json_string_value(json_object_get(p, "tenant"));
        double ctx = json_num(p, "context_length");
        /* The group: same tenant and context, closed loop. */
        char users[512] = "";
        size_t used = 0;
        for (size_t k = i; k < n; k++) {
            const json_t *q = json_array_get(points, k);
            const char *t = json_string_value(json_object_get(q, "tenant"));
            double c = json_num(q, "context_length");
            if (done[k] || json_is_number(json_object_get(q, "rate")) ||
                isnan(json_num(q, "concurrency")) || !t || !tenant || strcmp(t, tenant) != 0 ||
                !((isnan(c) && isnan(ctx)) || c == ctx) || used + 16 >= sizeof(users))
                continue;
            used += (size_t)snprintf(users + used, sizeof(users) - used, "%s%.0f", used ? "," : "",
                                     json_num(q, "concurrency"));
        }
        const json_t *req = json_object_get(cfg, "requests");
        size_t ti;
        json_t *t;
        json_array_foreach(json_object_get(cfg, "tenants"), ti, t)
        {
            const char *name = json_string_value(json_object_get(t, "name"));
            if (name && tenant && strcmp(name, tenant) == 0 && json_object_get(t, "requests"))
                req = json_object_get(t, "requests");
        }
        double out = json_num(req, "completion_tokens");
        long context = isnan(ctx) ? (long)(json_num(req, "prompt_tokens_max") + out) : (long)ctx;
        struct predict_query pq = {
            .gpu = g,
            .model = r->model,
            .quantization = r->quantization,
            .kv_dtype = r->kv_dtype,
            .context = context,
            .output_tokens = out,
            .users = users,
            .slo_ttft_ms = NAN,
            .slo_tpot_ms = NAN,
        };
        json_t *pred = context > 0 ? predict_rows(self, &pq) : NULL;
        char *workload = isnan(ctx) ? xasprintf("%s, up to %ld tokens", tenant, context)
                                    : xasprintf("%s, context %ld", tenant, context);
        for (size_t k = i; k < n; k++) {
            const json_t *q = json_array_get(points, k);
            const char *tk = json_string_value(json_object_get(q, "tenant"));
            double c = json_num(q, "context_length");
            if (done[k] || json_is_number(json_object_get(q, "rate")) ||
                isnan(json_num(q, "concurrency")) || !tk || !tenant || strcmp(tk, tenant) != 0 ||
                !((isnan(c) && isnan(ctx)) || c == ctx))
                continue;
            done[k] = true;
            double users_k = json_num(q, "concurrency");
            const json_t *row = NULL;
            size_t ri;
            json_t *rr;
            json_array_foreach(pred, ri, rr) if (json_num(rr, "users") == users_k) row = rr;
            if (!row)
                continue;
            const json_t *s = json_object_get(q, "summary");
            static const char *const m[][4] = {
                {"ttft_p50_ms", "ttft_p50_ms", "ttft_ms", "p50"},
                {"ttft_p95_ms", "ttft_p95_ms", "ttft_ms", "p95"},
                {"tpot_p50_ms", "tpot_p50_ms", "tpot_ms", "p50"},
                {"user_tps", "user_tokens_per_s", "user_token_rate", "p50"},
            };
            for (size_t mi = 0; mi < sizeof(m) / sizeof(m[0]); mi++)
                pvm_row(rows, "", r->label, workload, users_k, m[mi][0], json_num(row, m[mi][1]),
                        summary_dist(s, m[mi][2], m[mi][3]), NAN);
            pvm_row(rows, "", r->label, workload, users_k, "output_tps",
                    json_num(row, "output_throughput"), json_num(s, "output_throughput"), NAN);
        }
        free(workload);
        json_decref(pred);
    }
    free(done);
}

/* study.csv's pred_X / meas_X / err_X triples, one row per metric where both are known. */
static json_t *pvm_json(const struct report_input *in, const char *self, const char *gpu)
{
    static const char *const metrics[][2] = {
        {"kv_capacity_tokens", "err_kv_capacity_pct"},
        {"ttft_p50_ms", "err_ttft_p50_pct"},
        {"ttft_p95_ms", "err_ttft_p95_pct"},
        {"tpot_p50_ms", "err_tpot_p50_pct"},
        {"tpot_p95_ms", "err_tpot_p95_pct"},
        {"output_tps", "err_output_tps_pct"},
        {"user_tps", "err_user_tps_pct"},
        {"max_users", "err_max_users_pct"},
    };
    json_t *rows = json_array();
    /* A plan per run is a process per run: not for a summarised page of hundreds. */
    for (size_t r = 0; r < in->n_runs && in->n_runs <= REPORT_CHART_RUNS; r++)
        run_predictions(rows, &in->runs[r], self, gpu);
    for (size_t s = 0; s < in->n_studies; s++) {
        const struct csv_table *t = &in->studies[s].csv;
        for (size_t r = 0; r < t->nrows; r++)
            for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
                char pk[64], mk[64];
                snprintf(pk, sizeof(pk), "pred_%s", metrics[m][0]);
                snprintf(mk, sizeof(mk), "meas_%s", metrics[m][0]);
                double pv = csv_table_num(t, r, pk), mv = csv_table_num(t, r, mk);
                if (isnan(pv) || isnan(mv))
                    continue;
                double err = csv_table_num(t, r, metrics[m][1]);
                if (isnan(err) && mv != 0)
                    err = (pv - mv) / mv * 100.0;
                json_t *o = json_object();
                json_object_set_new(o, "study", json_string(in->studies[s].name));
                json_object_set_new(o, "setup", json_string(csv_table_get(t, r, "setup")));
                json_object_set_new(o, "workload", json_string(csv_table_get(t, r, "workload")));
                json_object_set_new(o, "users", num(csv_table_num(t, r, "users")));
                json_object_set_new(o, "metric", json_string(metrics[m][0]));
                json_object_set_new(o, "predicted", json_real(pv));
                json_object_set_new(o, "measured", json_real(mv));
                json_object_set_new(o, "error_pct", num(err));
                json_array_append_new(rows, o);
            }
    }
    return rows;
}

/* The run loaded from a study row's run_detailed, as an index into in->runs; -1 when none. */
static long study_row_run(const struct report_input *in, const struct report_study *st, size_t r)
{
    const char *rel = csv_table_get(&st->csv, r, "run_detailed");
    if (!*rel)
        return -1;
    char *p = rel[0] == '/' ? xstrdup(rel) : xasprintf("%s/%s", st->dir, rel);
    char real[PATH_MAX];
    bool ok = realpath(p, real) != NULL;
    free(p);
    for (size_t i = 0; ok && i < in->n_runs; i++)
        if (strcmp(in->runs[i].path, real) == 0)
            return (long)i;
    return -1;
}

static int users_cmp(const void *a, const void *b)
{
    double x = json_num(*(json_t *const *)a, "users"), y = json_num(*(json_t *const *)b, "users");
    return (x > y) - (x < y);
}

/* A run's start time, for putting a setup's runs in the order they ran. */
static const char *run_started(const json_t *runs, long idx)
{
    const char *s =
        json_string_value(json_object_get(json_array_get(runs, (size_t)idx), "started_at"));
    return s ? s : "";
}

/*
 * One entry per study setup x workload: what study.csv says of it (model, quantization, KV
 * dtype, max_model_len, status, reason, server log, capacity predicted and measured) and its
 * rows by user count with their pred_* / meas_* / err_* cells and the index of the run each
 * measured. The page draws the setup's curves over these rows and its runs' points.
 */
static json_t *study_setups_json(const struct report_input *in, const json_t *runs)
{
    static const char *const cols[] = {
        "pred_ttft_p50_ms",        "meas_ttft_p50_ms",       "err_ttft_p50_pct",
        "pred_ttft_p95_ms",        "meas_ttft_p95_ms",       "err_ttft_p95_pct",
        "pred_tpot_p50_ms",        "meas_tpot_p50_ms",       "err_tpot_p50_pct",
        "pred_tpot_p95_ms",        "meas_tpot_p95_ms",       "err_tpot_p95_pct",
        "pred_output_tps",         "meas_output_tps",        "err_output_tps_pct",
        "pred_user_tps",           "meas_user_tps",          "err_user_tps_pct",
        "pred_kv_capacity_tokens", "meas_kv_capacity_tokens"};
    json_t *out = json_array();
    for (size_t s = 0; s < in->n_studies; s++) {
        const struct report_study *st = &in->studies[s];
        const struct csv_table *t = &st->csv;
        bool *done = xcalloc(t->nrows ? t->nrows : 1, sizeof(bool));
        for (size_t r0 = 0; r0 < t->nrows; r0++) {
            if (done[r0])
                continue;
            const char *setup = csv_table_get(t, r0, "setup");
            const char *wl = csv_table_get(t, r0, "workload");
            json_t *g = json_object();
            json_object_set_new(g, "study", json_string(st->name));
            json_object_set_new(g, "setup", json_string(setup));
            json_object_set_new(g, "workload", json_string(wl));
            const char *keys[] = {"model", "quantization", "kv_cache_dtype"};
            for (size_t k = 0; k < 3; k++)
                json_object_set_new(g, keys[k], json_string(csv_table_get(t, r0, keys[k])));
            /* The server log where it lies (study.csv names it relative to the folder). */
            const char *log = csv_table_get(t, r0, "server_log");
            char *log_path =
                !*log || log[0] == '/' ? xstrdup(log) : xasprintf("%s/%s", st->dir, log);
            json_object_set_new(g, "server_log", json_string(log_path));
            free(log_path);
            /* Measured while other setups ran on the same host (src/scale): said beside it. */
            json_object_set_new(g, "side_by_side",
                                json_string(csv_table_get(t, r0, "side_by_side")));
            json_object_set_new(g, "max_model_len", num(csv_table_num(t, r0, "max_model_len")));
            json_t *rows = json_array(), *rruns = json_array();
            const char *status = NULL, *reason = "";
            double pmax = NAN, mmax = NAN, emax = NAN;
            long target = -1;
            for (size_t r = r0; r < t->nrows; r++) {
                if (strcmp(csv_table_get(t, r, "setup"), setup) != 0 ||
                    strcmp(csv_table_get(t, r, "workload"), wl) != 0)
                    continue;
                done[r] = true;
                const char *rs = csv_table_get(t, r, "status");
                /* A setup is as measured as its best row. */
                if (!status || (strcmp(rs, "measured") == 0 && strcmp(status, "measured") != 0))
                    status = rs;
                if (!*reason && strcmp(rs, "measured") != 0)
                    reason = csv_table_get(t, r, "reason");
                if (isnan(pmax))
                    pmax = csv_table_num(t, r, "pred_max_users");
                if (isnan(mmax))
                    mmax = csv_table_num(t, r, "meas_max_users");
                if (isnan(emax))
                    emax = csv_table_num(t, r, "err_max_users_pct");
                json_t *o = json_object();
                json_object_set_new(o, "users", num(csv_table_num(t, r, "users")));
                json_object_set_new(o, "role", json_string(csv_table_get(t, r, "role")));
                json_object_set_new(o, "status", json_string(rs));
                json_object_set_new(o, "reason", json_string(csv_table_get(t, r, "reason")));
                /* The verdict with its interval (a study from before the column: ""). */
                json_object_set_new(o, "slo_line", json_string(csv_table_get(t, r, "slo_line")));
                const char *met = csv_table_get(t, r, "slo_met");
                json_object_set_new(o, "slo_met",
                                    strcmp(met, "true") == 0    ? json_true()
                                    : strcmp(met, "false") == 0 ? json_false()
                                                                : json_null());
                for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++)
                    json_object_set_new(o, cols[k], num(csv_table_num(t, r, cols[k])));
                long ri = study_row_run(in, st, r);
                json_object_set_new(o, "run", ri >= 0 ? json_integer(ri) : json_null());
                if (ri >= 0) {
                    json_array_append_new(rruns, json_integer(ri));
                    if (strcmp(csv_table_get(t, r, "role"), "target") == 0 && target < 0)
                        target = ri;
                }
                json_array_append_new(rows, o);
            }
            /* Rows by user count; the runs in the order they ran (for the timelines). */
            size_t n = json_array_size(rows);
            json_t **v = xcalloc(n ? n : 1, sizeof(*v));
            for (size_t k = 0; k < n; k++)
                v[k] = json_incref(json_array_get(rows, k));
            qsort(v, n, sizeof(*v), users_cmp);
            json_array_clear(rows);
            for (size_t k = 0; k < n; k++)
                json_array_append_new(rows, v[k]);
            free(v);
            size_t m = json_array_size(rruns);
            for (size_t a = 1; a < m; a++)
                for (size_t b = a; b > 0; b--) {
                    json_int_t x = json_integer_value(json_array_get(rruns, b - 1));
                    json_int_t y = json_integer_value(json_array_get(rruns, b));
                    if (strcmp(run_started(runs, (long)x), run_started(runs, (long)y)) <= 0)
                        break;
                    json_array_set_new(rruns, b - 1, json_integer(y));
                    json_array_set_new(rruns, b, json_integer(x));
                }
            json_object_set_new(g, "status", json_string(status ? status : ""));
            json_object_set_new(g, "reason", json_string(reason));
            json_object_set_new(g, "pred_max_users", num(pmax));
            json_object_set_new(g, "meas_max_users", num(mmax));
            if (isnan(emax) && !isnan(pmax) && !isnan(mmax) && mmax != 0)
                emax = (pmax - mmax) / mmax * 100.0;
            json_object_set_new(g, "err_max_users_pct", num(emax));
            json_object_set_new(g, "target_run", target >= 0 ? json_integer(target) : json_null());
            json_object_set_new(
                g, "slo",
                m ? json_incref(json_object_get(
                        json_array_get(runs, (size_t)json_integer_value(json_array_get(rruns, 0))),
                        "slo"))
                  : json_null());
            json_object_set_new(g, "rows", rows);
            json_object_set_new(g, "runs", rruns);
            json_array_append_new(out, g);
        }
        free(done);
    }
    return out;
}

json_t *report_model_build(const struct report_input *in, const struct guidance *g,
                           const struct report_slo *slo, const char *title, const char *self_exe,
                           const char *gpu)
{
    json_t *o = json_object();
    json_object_set_new(o, "title", json_string(title));
    json_object_set_new(o, "users", json_integer(g->users));
    json_t *so = json_object();
    json_object_set_new(so, "ttft_ms", num(slo->ttft_ms));
    json_object_set_new(so, "tpot_ms", num(slo->tpot_ms));
    json_object_set_new(so, "itl_ms", num(slo->itl_ms));
    json_object_set_new(so, "e2e_ms", num(slo->e2e_ms));
    json_object_set_new(so, "percentile", num(slo->percentile));
    json_object_set_new(o, "slo_override", so);
    json_object_set_new(o, "summarised", json_boolean(in->n_runs > REPORT_CHART_RUNS));
    json_object_set_new(o, "chart_runs", json_integer(REPORT_CHART_RUNS));
    json_object_set_new(o, "guidance", guidance_json(g));
    json_object_set_new(o, "guidance_basis", guidance_bases_json(g));
    json_t *runs = json_array();
    for (size_t i = 0; i < in->n_runs; i++) {
        if (in->progress)
            fprintf(stderr, "report: summarising run %zu/%zu\n", i + 1, in->n_runs);
        json_array_append_new(runs, run_json(&in->runs[i], slo));
    }
    json_object_set_new(o, "study_setups", study_setups_json(in, runs));
    json_object_set_new(o, "tenants", tenants_json(runs));
    json_object_set_new(o, "runs", runs);
    json_object_set_new(o, "predicted_vs_measured", pvm_json(in, self_exe, gpu));
    json_t *studies = json_array();
    for (size_t i = 0; i < in->n_studies; i++)
        json_array_append_new(studies, json_string(in->studies[i].dir));
    json_object_set_new(o, "studies", studies);
    return o;
}
