/*
 * plan.c - `testbench plan`: answers "what will this GPU do with this model" without a GPU.
 * The memory plan comes from the engine's cost model; latencies come from running the
 * engine in virtual time (now += step duration, no sleeping) under N closed-loop users,
 * the same load as `testbench run` with concurrent_requests: N and rate_per_second: inf.
 * Metric definitions follow docs/METRICS.md (TTFT = t_first − t_sent; TPOT =
 * (t_last − t_first)/(out − 1); ITL pooled over consecutive tokens), so a plan and a real run
 * against `testbench sim` with the same engine agree. docs/ENGINE.md explains the defaults.
 */
#include "plan/plan.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/catalog.h"
#include "core/exitcode.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/xalloc.h"
#include "engine/calibration.h"
#include "engine/cost.h"
#include "engine/engine.h"
#include "plan/validation.h"

#define PLAN_MAX_LIST 32
#define PLAN_DEFAULT_CONTEXT 8192
#define PLAN_DEFAULT_OUTPUT 512
#define PLAN_DEFAULT_USERS 10
#define PLAN_MIN_REQUESTS 32
#define PLAN_REQUESTS_PER_USER 4
#define PLAN_SLO_TTFT_MS 2000.0
#define PLAN_SLO_TPOT_MS 100.0
/* The most tokens (prompt + output of every request) one row of `plan` simulates. The engine's
 * steps and the latency samples grow with them: 20 M tokens took 3.4 s of CPU and 330 MB when
 * decode-bound (2,441 users, 8,000-token outputs), 0.8 s and 24 MB when prefill-bound (152
 * users at 131,072 tokens); unbounded, 100,000 users at 8,192 took 61 s and 3.6 GB. Beyond it the
 * default requests (4 per user) are cut down to what fits, at least one per user; more users
 * than that, or more --requests, are refused with the bound. */
#define PLAN_MAX_SIM_TOKENS 20000000LL

struct plan_opts {
    const char *gpu;
    const char *model;
    const char *quants[PLAN_MAX_LIST];
    size_t n_quants;
    const char *kv_dtype;
    int contexts[PLAN_MAX_LIST];
    size_t n_contexts;
    int users[PLAN_MAX_LIST];
    size_t n_users;
    int prompt_tokens; /* 0 = context − output */
    int output_tokens;
    int requests; /* 0 = max(users × 4, 32) */
    int max_num_seqs;
    int max_num_batched_tokens;
    double gpu_memory_utilization;
    int tp;
    const char *catalog_dir;
    struct slo_cfg slo; /* the CLI sets ttft_ms and tpot_ms at p95 */
    bool json;
    bool prefix_caching;
    const char *calibration_path; /* --calibration FILE, or NULL */
    struct cost_calibration cal;  /* loaded from it (or given by plan_predict_with) */
    bool have_cal;                /* cal applies; else the engine's defaults */
};

/* One request's life in virtual time. */
struct plan_req {
    int user;
    int out;
    double t_sent, t_first, t_last;
};

struct plan_row {
    /* inputs */
    const char *quant;
    int context, prompt, output, users, requests;
    const int *prompt_lens, *output_lens; /* borrowed; NULL = prompt/output for every request */
    size_t n_lens;
    /* memory */
    struct cost_model cm;
    struct engine_info info;
    bool fits;
    char fit_msg[512];
    /* results */
    bool simulated;
    struct dist ttft, tpot, itl;
    double at_pct[4]; /* TTFT, ITL, TPOT, E2E (s) at slo.percentile, as the runner judges */
    double user_tps, out_tps, duration_s;
    uint64_t preemptions, steps;
    double peak_kv_usage;
    double mean_running;
    struct plan_band band;
    char verdict[640];
    bool ok;
};

struct plan_sim {
    struct engine *e;
    struct plan_req *reqs;
    int issued, done, total;
    int users;
    int prompt, output;
    const int *prompt_lens, *output_lens; /* borrowed from the row, NULL = prompt/output */
    size_t n_lens;
    uint32_t *prompt_buf; /* the longest prompt's tokens */
    double now;
    struct dvec ttft, tpot, itl, e2e;
    long out_tokens;
    char err[256];
    int add_rc;
    /* Requests on their way to the engine (closed loop), in the order they were sent: a ring of
     * at most one per user. */
    struct plan_arrival *pending;
    int pending_head, n_pending;
    double request_overhead; /* per-request cost outside the GPU before the engine sees it */
};

struct plan_arrival {
    int user;
    double t_sent;  /* when the client sent it */
    double t_enter; /* when it reaches the engine: t_sent + the per-request overhead */
};

static int plan_issue(struct plan_sim *s, int user, double t_sent)
{
    int k = s->issued++;
    struct plan_req *r = &s->reqs[k];
    r->user = user;
    r->t_sent = t_sent;
    r->t_first = r->t_last = -1;
    int prompt = s->prompt, output = s->output;
    if (s->n_lens > 0) {
        /* In the order sent, as a run sends its drawn lengths. */
        prompt = s->prompt_lens[(size_t)k % s->n_lens];
        output = s->output_lens[(size_t)k % s->n_lens];
    }
    /* Distinct first block per request: no accidental prefix hits between requests. */
    for (int i = 0; i < 16 && i < prompt; i++)
        s->prompt_buf[i] = (uint32_t)(k * 16 + i + 1);
    struct engine_request er = {.id = (uint64_t)k,
                                .prompt = s->prompt_buf,
                                .prompt_len = (size_t)prompt,
                                .max_tokens = output,
                                .user = r};
    return engine_add(s->e, &er, s->err, sizeof(s->err));
}

static void plan_arrival_push(struct plan_sim *s, int user, double t_sent)
{
    int cap = s->users + 1;
    struct plan_arrival *a = &s->pending[(s->pending_head + s->n_pending) % cap];
    a->user = user;
    a->t_sent = t_sent;
    a->t_enter = t_sent + s->request_overhead;
    s->n_pending++;
}

/* Adds the requests that reached the engine before 'by' (or at it, when inclusive). */
static void plan_admit(struct plan_sim *s, double by, bool inclusive)
{
    int cap = s->users + 1;
    while (s->n_pending > 0 && !s->add_rc) {
        struct plan_arrival a = s->pending[s->pending_head];
        if (inclusive ? a.t_enter > by : a.t_enter >= by)
            break;
        s->pending_head = (s->pending_head + 1) % cap;
        s->n_pending--;
        s->add_rc = plan_issue(s, a.user, a.t_sent);
    }
}

static void plan_on_event(void *ctx, const struct engine_event *ev)
{
    struct plan_sim *s = ctx;
    struct plan_req *r = ev->user;
    if (ev->new_tokens > 0) {
        if (r->t_first < 0) {
            r->t_first = s->now;
            dvec_push(&s->ttft, s->now - r->t_sent);
        } else {
            dvec_push(&s->itl, s->now - r->t_last);
        }
        r->t_last = s->now;
        r->out += ev->new_tokens;
        s->out_tokens += ev->new_tokens;
    }
    if (ev->finish != FINISH_NONE) {
        s->done++;
        if (r->out > 1)
            dvec_push(&s->tpot, (r->t_last - r->t_first) / (r->out - 1));
        if (r->t_last >= 0)
            dvec_push(&s->e2e, r->t_last - r->t_sent);
        /* Closed loop: this user sends its next request now. It reaches the engine after the
         * per-request overhead, and never in the step that begins now (the client needs the
         * final chunk before it can send), as with a real server. */
        if (s->issued + s->n_pending < s->total)
            plan_arrival_push(s, r->user, s->now);
    }
}

static void plan_fill_config(const struct plan_opts *o, const struct plan_row *row,
                             struct engine_config *c)
{
    memset(c, 0, sizeof(*c));
    c->gpu = o->gpu;
    c->model = o->model;
    c->quantization = row->quant;
    c->kv_cache_dtype = o->kv_dtype;
    c->max_model_len = row->context;
    c->gpu_memory_utilization = o->gpu_memory_utilization;
    c->max_num_seqs = o->max_num_seqs;
    c->max_num_batched_tokens = o->max_num_batched_tokens;
    c->enable_prefix_caching = o->prefix_caching ? 1 : 0;
    c->tensor_parallel_size = o->tp;
    c->catalog_dir = o->catalog_dir;
    c->calibration = o->have_cal ? &o->cal : NULL;
}

/* Runs the closed-loop workload; fills the row's latency results. */
static int plan_simulate(const struct plan_opts *o, struct plan_row *row, char *err, size_t errlen)
{
    struct engine_config c;
    plan_fill_config(o, row, &c);
    struct plan_sim s;
    memset(&s, 0, sizeof(s));
    int rc = engine_new(&s.e, &c, err, errlen);
    if (rc)
        return rc;
    s.total = row->requests;
    s.users = row->users;
    /* HTTP, tokenisation and the frontend's scheduling: a fixed cost per request before the
     * engine sees it (docs/ENGINE.md); `testbench sim` holds each request as long. */
    s.request_overhead = row->cm.cal.p[CAL_REQUEST_S];
    s.prompt = row->prompt;
    s.output = row->output;
    s.prompt_lens = row->prompt_lens;
    s.output_lens = row->output_lens;
    s.n_lens = row->n_lens;
    int longest = s.prompt;
    for (size_t i = 0; i < s.n_lens; i++)
        if (s.prompt_lens[i] > longest)
            longest = s.prompt_lens[i];
    s.reqs = xcalloc((size_t)s.total, sizeof(*s.reqs));
    s.prompt_buf = xcalloc((size_t)longest, sizeof(*s.prompt_buf));
    for (int i = 0; i < longest; i++)
        s.prompt_buf[i] = (uint32_t)(i * 2654435761u % 100000u);
    dvec_init(&s.ttft);
    dvec_init(&s.tpot);
    dvec_init(&s.itl);
    dvec_init(&s.e2e);
    int first = row->users < s.total ? row->users : s.total;
    s.pending = xcalloc((size_t)s.users + 1, sizeof(*s.pending));
    for (int u = 0; u < first; u++)
        plan_arrival_push(&s, u, 0.0);
    double busy_running = 0;
    while (!rc && !s.add_rc) {
        /* Arrivals strictly before the step begins join it; one that arrives as it begins
         * waits for the next (the engine has already scheduled). */
        plan_admit(&s, s.now, false);
        double d = engine_step_plan(s.e);
        if (d < 0 && s.n_pending > 0 && !s.add_rc) {
            /* Idle until the next arrival reaches the engine. */
            double t = s.pending[s.pending_head].t_enter;
            if (t > s.now)
                s.now = t;
            plan_admit(&s, s.now, true);
            d = engine_step_plan(s.e);
        }
        if (d < 0 || s.add_rc)
            break;
        struct engine_counters ct;
        engine_counters(s.e, &ct);
        if (ct.kv_cache_usage > row->peak_kv_usage)
            row->peak_kv_usage = ct.kv_cache_usage;
        busy_running += ct.num_running * d;
        s.now += d;
        engine_step_finish(s.e, s.now, plan_on_event, &s);
    }
    if (!rc && s.add_rc)
        rc = s.add_rc;
    if (rc) {
        snprintf(err, errlen, "%s", s.err);
    } else {
        struct engine_counters ct;
        engine_counters(s.e, &ct);
        row->preemptions = ct.num_preemptions;
        row->steps = ct.steps;
        row->duration_s = s.now;
        row->mean_running = s.now > 0 ? busy_running / s.now : 0;
        dist_compute(&row->ttft, s.ttft.v, s.ttft.n);
        dist_compute(&row->tpot, s.tpot.v, s.tpot.n);
        dist_compute(&row->itl, s.itl.v, s.itl.n);
        sort_doubles(s.e2e.v, s.e2e.n);
        /* dist_compute sorted the others; the verdict takes the configured percentile. */
        double q =
            (o->slo.percentile > 0 && o->slo.percentile <= 100 ? o->slo.percentile : 95) / 100.0;
        row->at_pct[0] = percentile_sorted(s.ttft.v, s.ttft.n, q);
        row->at_pct[1] = percentile_sorted(s.itl.v, s.itl.n, q);
        row->at_pct[2] = percentile_sorted(s.tpot.v, s.tpot.n, q);
        row->at_pct[3] = percentile_sorted(s.e2e.v, s.e2e.n, q);
        row->user_tps = row->tpot.n && row->tpot.p50 > 0 ? 1.0 / row->tpot.p50 : NAN;
        row->out_tps = s.now > 0 ? (double)s.out_tokens / s.now : NAN;
        row->simulated = true;
    }
    free(s.pending);
    dvec_release(&s.ttft);
    dvec_release(&s.tpot);
    dvec_release(&s.itl);
    dvec_release(&s.e2e);
    free(s.reqs);
    free(s.prompt_buf);
    engine_free(s.e);
    return rc;
}

/* The same rule as a measured point's verdict (runner/metrics.c): each objective against its
 * metric at slo.percentile (TTFT, TPOT, E2E per request; ITL pooled over tokens). */
static void plan_verdict(const struct plan_opts *o, struct plan_row *row)
{
    if (!row->fits) {
        snprintf(row->verdict, sizeof(row->verdict), "does not fit: %s", row->fit_msg);
        row->ok = false;
        return;
    }
    if (!row->simulated) {
        snprintf(row->verdict, sizeof(row->verdict), "not simulated");
        row->ok = false;
        return;
    }
    const struct slo_cfg *slo = &o->slo;
    double pct = slo->percentile > 0 && slo->percentile <= 100 ? slo->percentile : 95;
    const struct {
        const char *name;
        double limit_ms;
    } obj[4] = {
        {"TTFT", slo->ttft_ms}, {"ITL", slo->itl_ms}, {"TPOT", slo->tpot_ms}, {"E2E", slo->e2e_ms}};
    char missed[256] = "", met[256] = "";
    size_t nm = 0, nk = 0;
    for (int i = 0; i < 4; i++) {
        if (isnan(obj[i].limit_ms))
            continue;
        double x = row->at_pct[i] * 1e3;
        if (!(x <= obj[i].limit_ms) && nm < sizeof(missed))
            nm += (size_t)snprintf(missed + nm, sizeof(missed) - nm, "%s%s p%g %.1f ms > %.0f ms",
                                   nm ? "; " : "", obj[i].name, pct, x, obj[i].limit_ms);
        else if (nk < sizeof(met))
            nk += (size_t)snprintf(met + nk, sizeof(met) - nk, "%s%s p%g <= %.0f ms",
                                   nk ? ", " : "", obj[i].name, pct, obj[i].limit_ms);
    }
    row->ok = missed[0] == '\0';
    if (row->ok)
        snprintf(row->verdict, sizeof(row->verdict), "meets SLOs (%s)", met[0] ? met : "none set");
    else
        snprintf(row->verdict, sizeof(row->verdict), "violates SLO: %s", missed);
}

/* Memory plan, fit check and simulation for one row. 0, or a TB_EXIT code. */
static int plan_row_run(const struct plan_opts *o, const struct catalog *cat, struct plan_row *row)
{
    struct engine_config c;
    char err[512];
    plan_fill_config(o, row, &c);
    int rc = cost_model_init(&row->cm, cat, &c, err, sizeof(err));
    if (rc) {
        log_error("plan: %s", err);
        return TB_EXIT_USAGE;
    }
    cost_model_info(&row->cm, &row->info);
    const struct cost_model *m = &row->cm;
    double avail =
        (m->requested_bytes - m->activation_bytes - m->nontorch_bytes - m->lora_bytes) / GIB;
    row->fits = m->fits;
    if (!m->fits) {
        snprintf(row->fit_msg, sizeof(row->fit_msg),
                 "needs %.1f GiB for weights, has %.1f GiB (%.0f MiB x %.2f - %.1f GiB "
                 "activations/overhead)",
                 m->weight_bytes / GIB, avail, m->gpu->memory_mib,
                 m->requested_bytes / m->total_bytes, row->info.activation_gib);
    } else if (cost_blocks_for(m, row->context) > m->num_blocks) {
        row->fits = false;
        snprintf(row->fit_msg, sizeof(row->fit_msg),
                 "weights fit (%.1f GiB) but the KV cache holds %ld tokens (%.1f GiB), less than "
                 "one %d-token context",
                 m->weight_bytes / GIB, m->num_blocks * (long)m->block_size,
                 m->kv_budget_bytes / GIB, row->context);
    }
    plan_band_for(&row->cm, row->context, o->have_cal ? &o->cal : NULL, &row->band);
    if (row->fits) {
        rc = plan_simulate(o, row, err, sizeof(err));
        if (rc) {
            log_error("plan: %s", err);
            return TB_EXIT_RUNTIME;
        }
    }
    plan_verdict(o, row);
    return 0;
}

/* ---- library interface (plan.h) --------------------------------------------------------- */

static int plan_requests_for(int users)
{
    return users * PLAN_REQUESTS_PER_USER > PLAN_MIN_REQUESTS ? users * PLAN_REQUESTS_PER_USER
                                                              : PLAN_MIN_REQUESTS;
}

/* Each per-request length is positive and each pair fits the window. */
static int plan_lengths_check(const struct plan_row *row, char *err, size_t errlen)
{
    for (size_t i = 0; i < row->n_lens; i++) {
        int p = row->prompt_lens[i], n = row->output_lens[i];
        if (p < 1 || n < 1 || (row->context > 0 && p + n > row->context)) {
            snprintf(err, errlen,
                     "plan: request %zu's lengths (prompt %d, output %d) must be positive and "
                     "fit max_model_len %d",
                     i, p, n, row->context);
            return -EINVAL;
        }
    }
    return 0;
}

static void plan_opts_from_query(const struct plan_query *q, struct plan_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->gpu = q->gpu;
    o->model = q->model;
    o->kv_dtype = q->kv_cache_dtype;
    o->max_num_seqs = q->max_num_seqs;
    o->max_num_batched_tokens = q->max_num_batched_tokens;
    o->gpu_memory_utilization = q->gpu_memory_utilization;
    o->tp = q->tensor_parallel_size;
    o->catalog_dir = q->catalog_dir;
    o->prefix_caching = q->prefix_caching;
    o->slo = q->slo;
    o->calibration_path = q->calibration;
}

int plan_predict_with(const struct plan_query *q, const struct catalog *cat,
                      const struct cost_calibration *cal, struct plan_prediction *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct plan_opts o;
    plan_opts_from_query(q, &o);
    if (cal) {
        o.cal = *cal;
        o.have_cal = true;
    }
    struct plan_row *row = xcalloc(1, sizeof(*row));
    row->quant = q->quantization;
    row->context = q->max_model_len;
    row->prompt = q->prompt_tokens;
    row->output = q->output_tokens;
    if (q->n_lens > 0 && q->prompt_lens && q->output_lens) {
        row->prompt_lens = q->prompt_lens;
        row->output_lens = q->output_lens;
        row->n_lens = q->n_lens;
    }
    row->users = q->users;
    if (q->requests > 0)
        row->requests = q->requests;
    else if (q->requests_per_user > 0)
        row->requests = q->users * q->requests_per_user > q->min_requests
                            ? q->users * q->requests_per_user
                            : q->min_requests;
    else
        row->requests = plan_requests_for(q->users);
    int rc = 0;
    if (row->prompt < 1 || row->output < 1 || row->users < 1) {
        snprintf(err, errlen, "plan: prompt, output and users must be positive");
        rc = -EINVAL;
    } else if (row->context > 0 && row->prompt + row->output > row->context) {
        snprintf(err, errlen, "plan: prompt %d + output %d tokens exceed max_model_len %d",
                 row->prompt, row->output, row->context);
        rc = -EINVAL;
    } else if (plan_lengths_check(row, err, errlen)) {
        rc = -EINVAL;
    } else {
        rc = plan_row_run(&o, cat, row) ? -EINVAL : 0;
        if (rc)
            snprintf(err, errlen, "plan: the engine refused the setup (see the message above)");
    }
    if (!rc) {
        out->fits = row->fits;
        snprintf(out->fit_msg, sizeof(out->fit_msg), "%s", row->fit_msg);
        out->kv_capacity_tokens = row->info.kv_capacity_tokens;
        out->max_model_len = row->cm.max_model_len;
        long per = cost_blocks_for(&row->cm, row->cm.max_model_len);
        out->max_concurrency = per > 0 ? (double)row->cm.num_blocks / per : 0;
        out->weights_gib = row->info.weights_gib;
        out->kv_budget_gib = row->info.kv_budget_gib;
        out->simulated = row->simulated;
        out->ttft = row->ttft;
        out->tpot = row->tpot;
        out->itl = row->itl;
        out->output_tps = row->out_tps;
        out->user_tps = row->user_tps;
        out->duration_s = row->duration_s;
        out->meets_slo = row->ok;
        out->band = row->band;
        snprintf(out->verdict, sizeof(out->verdict), "%s", row->verdict);
    }
    free(row);
    return rc;
}

int plan_predict(const struct plan_query *q, struct plan_prediction *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct cost_calibration cal;
    cost_calibration_default(&cal);
    if (q->calibration) {
        int crc = cost_calibration_load(&cal, q->calibration, err, errlen);
        if (crc)
            return crc;
    }
    struct catalog *cat = NULL;
    int rc = catalog_load(&cat, q->catalog_dir, err, errlen);
    if (rc)
        return rc;
    rc = plan_predict_with(q, cat, q->calibration ? &cal : NULL, out, err, errlen);
    catalog_free(cat);
    return rc;
}

/* Doubling to bracket the answer, then bisection: predictions are cheap (virtual time), and SLO
 * attainment falls as users rise (more users share the same steps and KV cache). */
int plan_max_users(const struct plan_query *q, int max_users, int *out, char *err, size_t errlen)
{
    struct plan_query t = *q;
    struct plan_prediction p;
    int ok = 0, bad = 0; /* largest meeting, smallest missing (0 = none found yet) */
    *out = 0;
    for (int n = 1; n <= max_users;) {
        t.users = n;
        t.requests = 0;
        int rc = plan_predict(&t, &p, err, errlen);
        if (rc)
            return rc;
        if (!p.fits)
            return 0;
        if (!p.meets_slo) {
            bad = n;
            break;
        }
        ok = n;
        if (n == max_users)
            break;
        n = n * 2 > max_users ? max_users : n * 2;
    }
    while (bad && bad - ok > 1) {
        int mid = ok + (bad - ok) / 2;
        t.users = mid;
        t.requests = 0;
        int rc = plan_predict(&t, &p, err, errlen);
        if (rc)
            return rc;
        if (p.meets_slo)
            ok = mid;
        else
            bad = mid;
    }
    *out = ok;
    return 0;
}

int plan_requests_default(int users)
{
    return plan_requests_for(users);
}

/* ---- output ---------------------------------------------------------------------------- */

static json_t *plan_row_json(const struct plan_opts *o, const struct plan_row *r)
{
    const struct cost_model *m = &r->cm;
    json_t *j = json_object();
    json_object_set_new(j, "gpu", json_string(m->gpu->name));
    json_object_set_new(j, "gpu_name", json_string(m->gpu->display_name));
    json_object_set_new(j, "model", json_string(m->model->name));
    json_object_set_new(j, "quantization", json_string(m->weight_dtype));
    json_object_set_new(j, "kv_cache_dtype", json_string(m->kv_dtype));
    json_object_set_new(j, "tensor_parallel_size", json_integer(m->tp));
    json_object_set_new(j, "gpu_memory_utilization",
                        json_real(m->requested_bytes / m->total_bytes));
    json_object_set_new(j, "total_gib", json_real(r->info.total_gib));
    json_object_set_new(j, "weights_gib", json_real(r->info.weights_gib));
    json_object_set_new(j, "activation_gib", json_real(r->info.activation_gib));
    json_object_set_new(j, "kv_budget_gib", json_real(r->info.kv_budget_gib));
    json_object_set_new(j, "kv_bytes_per_token",
                        json_integer((json_int_t)r->info.kv_bytes_per_token));
    json_object_set_new(j, "num_gpu_blocks", json_integer(r->info.num_gpu_blocks));
    json_object_set_new(j, "kv_capacity_tokens", json_integer(r->info.kv_capacity_tokens));
    long per = cost_blocks_for(m, r->context);
    json_object_set_new(j, "max_concurrency_at_context",
                        json_real(m->num_blocks > 0 ? (double)m->num_blocks / per : 0));
    json_object_set_new(j, "fits", json_boolean(r->fits));
    json_object_set_new(j, "context", json_integer(r->context));
    json_object_set_new(j, "prompt_tokens", json_integer(r->prompt));
    json_object_set_new(j, "output_tokens", json_integer(r->output));
    json_object_set_new(j, "users", json_integer(r->users));
    json_object_set_new(j, "requests", json_integer(r->requests));
    json_object_set_new(j, "max_num_seqs", json_integer(m->max_num_seqs));
    json_object_set_new(j, "max_num_batched_tokens", json_integer(m->max_num_batched_tokens));
    bool s = r->simulated;
    /* Means as well as percentiles: published benchmarks (vllm bench serve) report means, and a
     * comparison must take like with like. */
    json_object_set_new(j, "ttft_mean_ms", s ? json_real_or_null(r->ttft.mean * 1e3) : json_null());
    json_object_set_new(j, "tpot_mean_ms", s ? json_real_or_null(r->tpot.mean * 1e3) : json_null());
    json_object_set_new(j, "itl_mean_ms", s ? json_real_or_null(r->itl.mean * 1e3) : json_null());
    json_object_set_new(j, "ttft_p50_ms", s ? json_real_or_null(r->ttft.p50 * 1e3) : json_null());
    json_object_set_new(j, "ttft_p95_ms", s ? json_real_or_null(r->ttft.p95 * 1e3) : json_null());
    json_object_set_new(j, "ttft_p99_ms", s ? json_real_or_null(r->ttft.p99 * 1e3) : json_null());
    json_object_set_new(j, "tpot_p50_ms", s ? json_real_or_null(r->tpot.p50 * 1e3) : json_null());
    json_object_set_new(j, "tpot_p95_ms", s ? json_real_or_null(r->tpot.p95 * 1e3) : json_null());
    json_object_set_new(j, "itl_p50_ms", s ? json_real_or_null(r->itl.p50 * 1e3) : json_null());
    json_object_set_new(j, "itl_p95_ms", s ? json_real_or_null(r->itl.p95 * 1e3) : json_null());
    json_object_set_new(j, "user_tokens_per_s", s ? json_real_or_null(r->user_tps) : json_null());
    json_object_set_new(j, "output_throughput", s ? json_real_or_null(r->out_tps) : json_null());
    json_object_set_new(j, "duration_s", s ? json_real_or_null(r->duration_s) : json_null());
    json_object_set_new(j, "num_preemptions",
                        s ? json_integer((json_int_t)r->preemptions) : json_null());
    json_object_set_new(j, "peak_kv_cache_usage",
                        s ? json_real_or_null(r->peak_kv_usage) : json_null());
    json_object_set_new(j, "slo_ttft_ms", json_real_or_null(o->slo.ttft_ms));
    json_object_set_new(j, "slo_tpot_ms", json_real_or_null(o->slo.tpot_ms));
    json_object_set_new(j, "meets_slo", json_boolean(r->ok));
    json_object_set_new(j, "verdict", json_string(r->verdict));
    json_t *u = json_object();
    json_object_set_new(u, "output_throughput_pct", json_real(r->band.tps_pct));
    json_object_set_new(u, "tpot_pct", json_real(r->band.tpot_pct));
    json_object_set_new(u, "ttft_pct", json_real(r->band.ttft_pct));
    json_object_set_new(u, "validated", json_boolean(!r->band.extrapolated));
    json_object_set_new(u, "basis", json_string(r->band.basis));
    json_object_set_new(u, "outside", json_string(r->band.outside));
    json_object_set_new(j, "uncertainty", u);
    json_object_set_new(j, "calibration",
                        o->calibration_path ? json_string(o->calibration_path) : json_null());
    json_t *src = json_object();
    json_object_set_new(src, "gpu", json_string(m->gpu->source));
    json_object_set_new(src, "model", json_string(m->model->source));
    if (m->quant)
        json_object_set_new(src, "quantization", json_string(m->quant->source));
    json_object_set_new(j, "sources", src);
    return j;
}

static void print_row_text(const struct plan_opts *o, const struct plan_row *r)
{
    const struct cost_model *m = &r->cm;
    const struct gpu_spec *g = m->gpu;
    const struct model_spec *md = m->model;
    printf("testbench plan: %s on %s", md->name, g->display_name);
    if (m->tp > 1)
        printf(" x%d (tensor parallel)", m->tp);
    printf("\n\n");
    char fp4[32] = "n/a";
    if (g->fp4_tflops > 0)
        snprintf(fp4, sizeof(fp4), "%.0f", g->fp4_tflops);
    printf("GPU     %.0f MiB, %.0f GB/s, dense TFLOPS BF16 %.0f / FP8 %.0f / FP4 %s, %.0f W, %s\n",
           g->memory_mib, g->bandwidth_gbs, g->fp16_tflops, g->fp8_tflops, fp4, g->tdp_w,
           g->interconnect ? g->interconnect : "");
    printf("        source: %s\n", g->source);
    printf("Model   %.1fB params%s, %d layers, hidden %d, %d heads / %d KV heads x %d, vocab %d, "
           "max_model_len %d",
           md->params_b, md->experts ? " (MoE)" : "", md->layers, md->hidden, md->heads,
           md->kv_heads, md->head_dim, md->vocab, md->max_model_len);
    if (md->experts)
        printf(", %d experts top-%d (%.1fB active per token)", md->experts, md->experts_per_token,
               (m->active_linear_params + m->embed_params) / 1e9);
    if (m->sliding_layers)
        printf(", %d of %d layers sliding window %d", m->sliding_layers, md->layers, m->window);
    printf("\n        source: %s\n", md->source);
    if (m->quant)
        printf("Weights %s: %.4g bytes/weight (embeddings/lm_head 16-bit), FLOPs at the %s peak\n"
               "        source: %s\n",
               m->quant->name, m->quant->bytes_per_weight, m->compute_dtype, m->quant->source);
    else
        printf("Weights native %s (FLOPs at the %s peak)\n", m->weight_dtype, m->compute_dtype);

    printf("\nMemory per GPU (vLLM accounting, gpu_memory_utilization %.2f)\n",
           m->requested_bytes / m->total_bytes);
    printf("  GPU memory                 %8.2f GiB\n", m->total_bytes / GIB);
    printf("  usable (x %.2f)            %8.2f GiB\n", m->requested_bytes / m->total_bytes,
           m->requested_bytes / GIB);
    printf("  weights                    %8.2f GiB\n", m->weight_bytes / GIB);
    printf("  activation peak            %8.2f GiB (profile run, %d batched tokens)\n",
           m->activation_bytes / GIB, m->max_num_batched_tokens);
    printf("  non-torch + CUDA graphs    %8.2f GiB\n", (m->nontorch_bytes + m->lora_bytes) / GIB);
    printf("  KV cache budget            %8.2f GiB\n",
           m->kv_budget_bytes > 0 ? m->kv_budget_bytes / GIB : 0.0);
    printf("  KV bytes per token         %8.0f (2 x %d full-attention layers x %d KV heads x %d "
           "x %.0f B)\n",
           m->kv_bpt_full, m->full_layers, md->kv_heads / m->tp > 0 ? md->kv_heads / m->tp : 1,
           md->head_dim, m->kv_dtype_bytes);
    if (m->sliding_layers)
        printf("  sliding-window layers      %8.0f B/token, at most %d tokens per request\n",
               m->kv_bpt_sliding, m->window);
    printf("  KV capacity                %8ld tokens (%ld blocks of %d)\n",
           r->info.kv_capacity_tokens, r->info.num_gpu_blocks, m->block_size);
    long per = cost_blocks_for(m, r->context);
    printf("  max concurrency at %d tokens: %.2f sequences\n", r->context,
           m->num_blocks > 0 ? (double)m->num_blocks / per : 0.0);

    printf("\nWorkload %d closed-loop users, %d requests, prompt %d + output %d tokens "
           "(context %d); max_num_seqs %d, max_num_batched_tokens %d\n",
           r->users, r->requests, r->prompt, r->output, r->context, m->max_num_seqs,
           m->max_num_batched_tokens);
    if (r->simulated) {
        printf("\nPredicted (engine in virtual time, %.1f s simulated, %llu steps, %llu "
               "preemptions, peak KV usage %.0f %%, mean running %.1f)\n",
               r->duration_s, (unsigned long long)r->steps, (unsigned long long)r->preemptions,
               r->peak_kv_usage * 100, r->mean_running);
        printf("  TTFT   p50 %9.1f ms   p95 %9.1f ms\n", r->ttft.p50 * 1e3, r->ttft.p95 * 1e3);
        printf("  TPOT   p50 %9.1f ms   p95 %9.1f ms\n", r->tpot.p50 * 1e3, r->tpot.p95 * 1e3);
        printf("  ITL    p50 %9.1f ms   p95 %9.1f ms\n", r->itl.p50 * 1e3, r->itl.p95 * 1e3);
        printf("  per-user rate %.1f tokens/s (1 / TPOT p50); aggregate output %.1f tokens/s\n",
               r->user_tps, r->out_tps);
        printf("  means: TTFT %.1f ms, TPOT %.1f ms, ITL %.1f ms\n", r->ttft.mean * 1e3,
               r->tpot.mean * 1e3, r->itl.mean * 1e3);
        printf("\nUncertainty: output tokens/s +/-%.0f %%, TPOT +/-%.0f %%, TTFT +/-%.0f %% (%s)\n",
               r->band.tps_pct, r->band.tpot_pct, r->band.ttft_pct, r->band.basis);
        if (r->band.extrapolated)
            printf("  wider than validated: %s\n", r->band.outside);
    }
    printf("\nVerdict: %s\n", r->verdict);
    double cc = m->num_blocks > 0 ? (double)m->num_blocks / per : 0.0;
    if (r->fits && cc < r->users)
        printf("Why: the KV cache holds %.2f sequences of %d tokens, so %d users take turns and "
               "TTFT includes the wait.\n     Options:%s%s a shorter --context, "
               "--gpu-memory-utilization 0.95, or --tensor-parallel-size %d.\n",
               cc, r->context, r->users,
               m->kv_dtype_bytes > 1 ? " --kv-cache-dtype fp8 (halves KV bytes/token)," : "",
               m->quant && m->quant->bytes_per_weight <= 0.6
                   ? ""
                   : " a 4-bit --quantization (awq, nvfp4) to free memory for KV,",
               m->tp * 2);
    (void)o;
}

static void print_table(const struct plan_row *rows, size_t n)
{
    printf("%-8s %7s %5s %4s %8s %8s %9s %7s %9s %9s %8s %8s %8s %8s %9s  %s\n", "quant", "context",
           "users", "fits", "weights", "kv_gib", "kv_tokens", "max_cc", "ttft_p50", "ttft_p95",
           "tpot_p50", "tpot_p95", "itl_p50", "user_t/s", "out_t/s", "verdict");
    for (size_t i = 0; i < n; i++) {
        const struct plan_row *r = &rows[i];
        long per = cost_blocks_for(&r->cm, r->context);
        printf("%-8s %7d %5d %4s %8.2f %8.2f %9ld %7.2f", r->cm.weight_dtype, r->context, r->users,
               r->fits ? "yes" : "no", r->info.weights_gib, r->info.kv_budget_gib,
               r->info.kv_capacity_tokens,
               r->cm.num_blocks > 0 ? (double)r->cm.num_blocks / per : 0.0);
        if (r->simulated)
            printf(" %9.1f %9.1f %8.1f %8.1f %8.1f %8.1f %9.1f", r->ttft.p50 * 1e3,
                   r->ttft.p95 * 1e3, r->tpot.p50 * 1e3, r->tpot.p95 * 1e3, r->itl.p50 * 1e3,
                   r->user_tps, r->out_tps);
        else
            printf(" %9s %9s %8s %8s %8s %8s %9s", "-", "-", "-", "-", "-", "-", "-");
        printf("  %s\n", r->verdict);
    }
    if (n) {
        const struct cost_model *m = &rows[0].cm;
        printf("\nsources: GPU: %s\n         model: %s\n", m->gpu->source, m->model->source);
    }
}

/* ---- arguments ------------------------------------------------------------------------- */

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

/* "a,b,c" into ints; the list is rewritten in place (argv strings are ours to cut). */
static int parse_int_list(char *s, long lo, long hi, int *out, size_t *n)
{
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == PLAN_MAX_LIST || parse_int(tok, lo, hi, &out[*n]))
            return -EINVAL;
        (*n)++;
    }
    return *n ? 0 : -EINVAL;
}

static int parse_str_list(char *s, const char **out, size_t *n)
{
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == PLAN_MAX_LIST)
            return -EINVAL;
        out[(*n)++] = tok;
    }
    return *n ? 0 : -EINVAL;
}

static void plan_usage(void)
{
    fprintf(
        stderr,
        "usage: testbench plan --gpu NAME --model NAME [--quantization Q[,Q...]]\n"
        "    [--kv-cache-dtype D] [--context N[,N...]] [--prompt-tokens N] [--output-tokens N]\n"
        "    [--users N[,N...]] [--requests N] [--max-num-seqs N] [--max-num-batched-tokens N]\n"
        "    [--gpu-memory-utilization F] [--tensor-parallel-size N] [--catalog DIR]\n"
        "    [--slo-ttft-ms X] [--slo-tpot-ms X] [--no-enable-prefix-caching]\n"
        "    [--calibration FILE] [--json]\n"
        "Defaults: context %d (or the model's max_model_len if smaller), output %d,\n"
        "prompt = context - output, users %d, requests max(users x %d, %d) (fewer, at least\n"
        "one per user, where they would pass 20 M tokens: a plan's bounded work),\n"
        "SLO TTFT p95 <= %.0f ms and TPOT p95 <= %.0f ms.\n",
        PLAN_DEFAULT_CONTEXT, PLAN_DEFAULT_OUTPUT, PLAN_DEFAULT_USERS, PLAN_REQUESTS_PER_USER,
        PLAN_MIN_REQUESTS, PLAN_SLO_TTFT_MS, PLAN_SLO_TPOT_MS);
}

enum {
    OPT_GPU = 256,
    OPT_MODEL,
    OPT_QUANT,
    OPT_KV,
    OPT_CONTEXT,
    OPT_PROMPT,
    OPT_OUTPUT,
    OPT_USERS,
    OPT_REQUESTS,
    OPT_SEQS,
    OPT_MBT,
    OPT_UTIL,
    OPT_TP,
    OPT_CATALOG,
    OPT_TTFT,
    OPT_TPOT,
    OPT_NO_PC,
    OPT_JSON,
    OPT_HELP,
    OPT_CALIBRATION,
};

static const struct option plan_long_opts[] = {
    {"gpu", required_argument, NULL, OPT_GPU},
    {"model", required_argument, NULL, OPT_MODEL},
    {"quantization", required_argument, NULL, OPT_QUANT},
    {"kv-cache-dtype", required_argument, NULL, OPT_KV},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"prompt-tokens", required_argument, NULL, OPT_PROMPT},
    {"output-tokens", required_argument, NULL, OPT_OUTPUT},
    {"users", required_argument, NULL, OPT_USERS},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"max-num-seqs", required_argument, NULL, OPT_SEQS},
    {"max-num-batched-tokens", required_argument, NULL, OPT_MBT},
    {"gpu-memory-utilization", required_argument, NULL, OPT_UTIL},
    {"tensor-parallel-size", required_argument, NULL, OPT_TP},
    {"catalog", required_argument, NULL, OPT_CATALOG},
    {"slo-ttft-ms", required_argument, NULL, OPT_TTFT},
    {"slo-tpot-ms", required_argument, NULL, OPT_TPOT},
    {"no-enable-prefix-caching", no_argument, NULL, OPT_NO_PC},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {"calibration", required_argument, NULL, OPT_CALIBRATION},
    {NULL, 0, NULL, 0},
};

/* What an option takes, for "bad value" messages. */
static const char *opt_range(int c)
{
    switch (c) {
    case OPT_QUANT:
        return "a quantization name, or a comma-separated list of up to 32";
    case OPT_CONTEXT:
        return "a whole number of tokens from 2 to 10000000, or a comma-separated list of up to "
               "32";
    case OPT_PROMPT:
    case OPT_OUTPUT:
    case OPT_REQUESTS:
    case OPT_MBT:
        return "a whole number from 1 to 10000000";
    case OPT_USERS:
        return "a whole number from 1 to 100000, or a comma-separated list of up to 32";
    case OPT_SEQS:
        return "a whole number from 1 to 1000000";
    case OPT_UTIL:
        return "a fraction above 0 and at most 1";
    case OPT_TP:
        return "a whole number of GPUs from 1 to 64";
    case OPT_TTFT:
    case OPT_TPOT:
        return "milliseconds above 0";
    default:
        return "see testbench help plan";
    }
}

/* Returns 0, 1 (help printed), -EINVAL (a usage error: print the usage) or -EBADMSG (an error
 * already explained, such as a bad calibration profile: the usage would bury it). */
static int plan_parse(int argc, char **argv, struct plan_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->output_tokens = PLAN_DEFAULT_OUTPUT;
    o->slo = (struct slo_cfg){PLAN_SLO_TTFT_MS, NAN, PLAN_SLO_TPOT_MS, NAN, 95, 0.95};
    o->prefix_caching = true;
    cost_calibration_default(&o->cal);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", plan_long_opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case OPT_GPU:
            o->gpu = optarg;
            break;
        case OPT_MODEL:
            /* One model per plan: its rows share that model's memory plan and catalog entry.
             * A list would be planned as one model of that name, so it is refused. */
            if (strchr(optarg, ',')) {
                log_error("plan: --model takes one model, '%s' names several; run plan once "
                          "per model (testbench catalog models lists them)",
                          optarg);
                return -EBADMSG;
            }
            o->model = optarg;
            break;
        case OPT_QUANT:
            bad = parse_str_list(optarg, o->quants, &o->n_quants);
            break;
        case OPT_KV:
            o->kv_dtype = optarg;
            break;
        case OPT_CONTEXT:
            bad = parse_int_list(optarg, 2, 10000000, o->contexts, &o->n_contexts);
            break;
        case OPT_PROMPT:
            bad = parse_int(optarg, 1, 10000000, &o->prompt_tokens);
            break;
        case OPT_OUTPUT:
            bad = parse_int(optarg, 1, 10000000, &o->output_tokens);
            break;
        case OPT_USERS:
            bad = parse_int_list(optarg, 1, 100000, o->users, &o->n_users);
            break;
        case OPT_REQUESTS:
            bad = parse_int(optarg, 1, 10000000, &o->requests);
            break;
        case OPT_SEQS:
            bad = parse_int(optarg, 1, 1000000, &o->max_num_seqs);
            break;
        case OPT_MBT:
            bad = parse_int(optarg, 1, 10000000, &o->max_num_batched_tokens);
            break;
        case OPT_UTIL:
            bad = parse_double(optarg, &o->gpu_memory_utilization) ||
                  !(o->gpu_memory_utilization > 0 && o->gpu_memory_utilization <= 1);
            break;
        case OPT_TP:
            bad = parse_int(optarg, 1, 64, &o->tp);
            break;
        case OPT_CATALOG:
            o->catalog_dir = optarg;
            break;
        case OPT_TTFT:
            bad = parse_double(optarg, &o->slo.ttft_ms) || o->slo.ttft_ms <= 0;
            break;
        case OPT_TPOT:
            bad = parse_double(optarg, &o->slo.tpot_ms) || o->slo.tpot_ms <= 0;
            break;
        case OPT_NO_PC:
            o->prefix_caching = false;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_HELP:
            plan_usage();
            return 1;
        case OPT_CALIBRATION:
            o->calibration_path = optarg;
            break;
        default:
            log_error("plan: unknown or incomplete option '%s'", argv[optind - 1]);
            return -EINVAL;
        }
        if (bad) {
            log_error("plan: bad value '%s' for --%s: %s", optarg, plan_long_opts[c - OPT_GPU].name,
                      opt_range(c));
            return -EBADMSG;
        }
    }
    if (optind < argc) {
        log_error("plan: unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (!o->gpu || !o->model) {
        log_error("plan: --gpu and --model are required");
        return -EINVAL;
    }
    if (o->calibration_path) {
        char err[512];
        if (cost_calibration_load(&o->cal, o->calibration_path, err, sizeof(err))) {
            log_error("plan: %s", err);
            return -EBADMSG;
        }
        o->have_cal = true;
    }
    if (!o->n_quants) {
        o->quants[0] = NULL;
        o->n_quants = 1;
    }
    if (!o->n_users) {
        o->users[0] = PLAN_DEFAULT_USERS;
        o->n_users = 1;
    }
    return 0;
}

/* The requests a row simulates, within PLAN_MAX_SIM_TOKENS; 0 or TB_EXIT_USAGE (said). */
static int plan_requests_bounded(const struct plan_opts *o, struct plan_row *r)
{
    long long per = (long long)r->prompt + r->output;
    long long cap = PLAN_MAX_SIM_TOKENS / per;
    if (r->users > cap) {
        log_error("plan: %d users of %lld tokens each (prompt + output) is more than a plan "
                  "simulates (%lld M tokens, every user sending at least one request): at most "
                  "%lld users at this context, or a shorter --context",
                  r->users, per, PLAN_MAX_SIM_TOKENS / 1000000, cap);
        return TB_EXIT_USAGE;
    }
    if (o->requests) {
        if (o->requests > cap) {
            log_error("plan: --requests %d of %lld tokens each is more than a plan simulates "
                      "(%lld M tokens): at most %lld at this context",
                      o->requests, per, PLAN_MAX_SIM_TOKENS / 1000000, cap);
            return TB_EXIT_USAGE;
        }
        r->requests = o->requests;
        return 0;
    }
    r->requests = plan_requests_for(r->users);
    if (r->requests > cap) {
        log_info("plan: %d users at %lld tokens per request: %lld requests simulated instead of "
                 "%d (a plan simulates at most %lld M tokens)",
                 r->users, per, cap, r->requests, PLAN_MAX_SIM_TOKENS / 1000000);
        r->requests = (int)cap;
    }
    return 0;
}

int plan_main(int argc, char **argv)
{
    struct plan_opts o;
    int rc = plan_parse(argc, argv, &o);
    if (rc) {
        if (rc == -EINVAL)
            plan_usage();
        return rc < 0 ? TB_EXIT_USAGE : TB_EXIT_OK;
    }
    struct catalog *cat = NULL;
    char err[512];
    if (catalog_load(&cat, o.catalog_dir, err, sizeof(err))) {
        log_error("plan: %s", err);
        return TB_EXIT_USAGE;
    }
    const struct model_spec *md = catalog_find_model(cat, o.model);
    if (!md) {
        char close[256];
        catalog_suggest(cat, "model", o.model, close, sizeof(close));
        log_error("plan: unknown model '%s' (close: %s)", o.model, close);
        catalog_free(cat);
        return TB_EXIT_USAGE;
    }
    /* A profile fitted on another card describes that card's kernels and memory. */
    const struct gpu_spec *pg = catalog_find_gpu(cat, o.gpu);
    if (o.have_cal && pg && cost_calibration_other_gpu(&o.cal, pg->name, pg->display_name))
        log_warn("plan: the calibration profile %s was fitted on %s, not %s: its efficiencies "
                 "describe that GPU (the uncertainty band is the uncalibrated one)",
                 o.calibration_path, o.cal.gpu, pg->name);
    if (!o.n_contexts) {
        o.contexts[0] = o.prompt_tokens ? o.prompt_tokens + o.output_tokens
                        : md->max_model_len < PLAN_DEFAULT_CONTEXT ? md->max_model_len
                                                                   : PLAN_DEFAULT_CONTEXT;
        o.n_contexts = 1;
    }
    size_t nrows = o.n_quants * o.n_contexts * o.n_users;
    struct plan_row *rows = xcalloc(nrows, sizeof(*rows));
    size_t k = 0;
    int exit_code = TB_EXIT_OK;
    for (size_t qi = 0; qi < o.n_quants && !exit_code; qi++) {
        for (size_t ci = 0; ci < o.n_contexts && !exit_code; ci++) {
            for (size_t ui = 0; ui < o.n_users && !exit_code; ui++) {
                struct plan_row *r = &rows[k];
                r->quant = o.quants[qi];
                r->context = o.contexts[ci];
                r->output = o.output_tokens;
                r->prompt = o.prompt_tokens ? o.prompt_tokens : r->context - r->output;
                if (o.prompt_tokens && o.n_contexts &&
                    o.prompt_tokens + o.output_tokens > r->context) {
                    log_error("plan: prompt %d + output %d tokens exceed the context %d",
                              o.prompt_tokens, o.output_tokens, r->context);
                    exit_code = TB_EXIT_USAGE;
                    break;
                }
                if (r->prompt < 1) {
                    log_error("plan: context %d leaves no prompt after %d output tokens",
                              r->context, r->output);
                    exit_code = TB_EXIT_USAGE;
                    break;
                }
                if (r->context > md->max_model_len) {
                    log_error("plan: context %d exceeds %s's max_model_len %d", r->context,
                              md->name, md->max_model_len);
                    exit_code = TB_EXIT_USAGE;
                    break;
                }
                r->users = o.users[ui];
                exit_code = plan_requests_bounded(&o, r);
                if (exit_code)
                    break;
                exit_code = plan_row_run(&o, cat, r);
                k++;
            }
        }
    }
    if (!exit_code) {
        if (o.json) {
            json_t *out;
            if (nrows == 1) {
                out = plan_row_json(&o, &rows[0]);
            } else {
                json_t *arr = json_array();
                for (size_t i = 0; i < nrows; i++)
                    json_array_append_new(arr, plan_row_json(&o, &rows[i]));
                out = json_object();
                json_object_set_new(out, "rows", arr);
            }
            char *s = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
            if (s)
                printf("%s\n", s);
            free(s);
            json_decref(out);
        } else if (nrows == 1) {
            print_row_text(&o, &rows[0]);
        } else {
            printf("testbench plan: %s on %s\n\n", rows[0].cm.model->name,
                   rows[0].cm.gpu->display_name);
            print_table(rows, nrows);
        }
    }
    free(rows);
    catalog_free(cat);
    return exit_code;
}
