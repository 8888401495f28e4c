/*
 * estimate.c - how long a run will take, said before it starts (estimate.h). A point lasts at
 * least as long as its arrivals (num_requests at rate_per_second), at most duration_s; on the
 * simulator the planner (the same engine in virtual time) also knows the server's pace, and
 * a point whose server cannot keep up takes what the planner's closed loop of the concurrency
 * cap takes. Against a real server the pace is unknown until the first requests finish: the
 * progress line (or the heartbeat outside a terminal) shows it.
 */
#include "runner/estimate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config/measure_cfg.h"
#include "config/workload_cfg.h"
#include "plan/plan.h"

/* The planner's seconds for n requests of tenant t at `users` closed-loop users on the run's
 * simulated server; NAN when it cannot say (no simulator, prompts from a file, a failure). */
static double plan_seconds(const struct config *c, const struct requests_cfg *rq, int context,
                           int users, int n)
{
    const struct sim_cfg *s = &c->server.sim;
    if (!s->enabled || users < 1 || workload_cfg_sets_prompts(rq))
        return NAN;
    struct plan_query q;
    memset(&q, 0, sizeof(q));
    q.gpu = s->gpu;
    q.model = s->model ? s->model : c->model.name;
    q.quantization = s->quantization;
    q.kv_cache_dtype = s->kv_cache_dtype;
    q.catalog_dir = s->catalog;
    q.max_model_len = s->max_model_len;
    q.gpu_memory_utilization = s->gpu_memory_utilization;
    q.tensor_parallel_size = s->tensor_parallel_size;
    q.max_num_seqs = s->max_num_seqs;
    q.max_num_batched_tokens = s->max_num_batched_tokens;
    q.prefix_caching = s->enable_prefix_caching;
    q.output_tokens = rq->completion_tokens;
    q.prompt_tokens = context > 0 ? context - rq->completion_tokens
                                  : (rq->prompt_tokens_min + rq->prompt_tokens_max) / 2;
    q.users = users;
    q.requests = n;
    q.slo = c->slo;
    q.calibration = s->calibration;
    struct plan_prediction p;
    char err[256];
    if (!q.model || q.prompt_tokens < 1 || plan_predict(&q, &p, err, sizeof(err)) || !p.fits ||
        !p.simulated)
        return NAN;
    return p.duration_s;
}

/* One point of one tenant: its expected seconds (NAN: unknown), *lower set when that is only
 * the arrivals' span (the server's pace unknown). */
static double point_seconds(const struct config *c, const struct requests_cfg *rq, int context,
                            int cap, double rate, bool *lower)
{
    int n = rq->num_requests;
    double arrivals = isfinite(rate) && rate > 0 ? (n - 1) / rate : 0;
    int users = cap > 0 ? cap : isfinite(rate) ? 0 : n;
    double served = plan_seconds(c, rq, context, users, n);
    double t = isnan(served) ? arrivals : fmax(arrivals, served);
    *lower = isnan(served);
    if (!isnan(rq->duration_s) && (isnan(t) || t > rq->duration_s || *lower)) {
        t = rq->duration_s;
        *lower = false;
    }
    return t > 0 ? t : NAN;
}

static void fmt_time(char *out, size_t len, double s)
{
    if (s < 120)
        snprintf(out, len, "%.0f s", s);
    else if (s < 7200)
        snprintf(out, len, "%.1f min", s / 60);
    else
        snprintf(out, len, "%.1f h", s / 3600);
}

void run_estimate_print(FILE *f, const struct config *c)
{
    size_t n_ctx = c->n_context_lengths ? c->n_context_lengths : 1;
    const struct requests_cfg *top = &c->tenants[0].requests;
    size_t points = 0;
    double total = 0;
    bool lower = false, unknown = false, stops = false;
    for (size_t ci = 0; ci < n_ctx; ci++) {
        int context = c->n_context_lengths ? c->context_lengths[ci] : 0;
        for (size_t k = 0; k < top->n_concurrency; k++) {
            for (size_t q = 0; q < top->n_rates; q++) {
                /* All tenants at once: the point lasts as long as its longest tenant. */
                double longest = 0;
                for (size_t t = 0; t < c->n_tenants; t++) {
                    const struct requests_cfg *rq = &c->tenants[t].requests;
                    int cap = c->tenants_given ? rq->concurrency[0] : top->concurrency[k];
                    double rate = c->tenants_given ? rq->rates[0] : top->rates[q];
                    bool lo = false;
                    double s = point_seconds(c, rq, context, cap, rate, &lo);
                    stops |= rq->stop_when_decided;
                    if (isnan(s)) {
                        unknown = true;
                        continue;
                    }
                    lower |= lo;
                    longest = fmax(longest, s);
                }
                total += longest;
                points++;
            }
        }
    }
    char took[32];
    fmt_time(took, sizeof(took), total);
    fprintf(f, "estimate: %zu point%s of %d requests", points, points == 1 ? "" : "s",
            top->num_requests);
    if (total > 0 && !unknown)
        fprintf(f, ", %s %s", lower ? "at least" : "about", took);
    if (unknown || lower)
        fprintf(f,
                "%s the server's pace is known once its first requests finish (the progress "
                "line shows it)",
                total > 0 && !unknown ? ";" : ":");
    else if (c->server.sim.enabled)
        fprintf(f, " (the planner's pace for this simulated server)");
    if (stops)
        fprintf(f, "; less where a point's verdict is certain early (stop_when_decided)");
    fprintf(f, "\n");
}
