/*
 * plan.c - the planner: answers "what will this GPU do with this model" without a GPU.
 * The memory plan comes from the engine's cost model; latencies come from running the engine in
 * virtual time through the one driver (plan/vdriver.c) under the workload's users: N people in
 * conversation (sessions) or N closed-loop request streams, the loads `testbench run` sends
 * with requests.session and with concurrent_requests: N, rate_per_second: inf. Metric
 * definitions follow docs/METRICS.md (TTFT = t_first − t_sent; TPOT = (t_last − t_first)/(out −
 * 1); ITL pooled over consecutive tokens), so a plan and a real run against `testbench sim` with
 * the same engine agree. `testbench plan` itself is plan_cli.c; docs/ENGINE.md explains the
 * defaults.
 */
#include "plan/plan.h"
#include "plan/plan_internal.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exitcode.h"
#include "core/human.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "plan/band.h"
#include "plan/validation.h"

#define PLAN_MIN_REQUESTS 32
#define PLAN_REQUESTS_PER_USER 4
/* Sessions: each user holds this many conversations, so the plan sees users starting a second
 * one after a think time, as a run's closed loop of users does. */
#define PLAN_CONVERSATIONS_PER_USER 2

void plan_opts_defaults(struct plan_opts *o)
{
    memset(o, 0, sizeof(*o));
    slo_from_profile(&o->slo, slo_profile_default());
    o->prefix_caching = true;
    o->population = VD_SESSIONS;
    session_cfg_defaults(&o->session);
    o->session.enabled = true;
    cost_calibration_default(&o->cal);
}

int plan_requests_for(const struct plan_opts *o, int users)
{
    if (o->population == VD_SESSIONS)
        return users * o->session.turns * PLAN_CONVERSATIONS_PER_USER;
    return users * PLAN_REQUESTS_PER_USER > PLAN_MIN_REQUESTS ? users * PLAN_REQUESTS_PER_USER
                                                              : PLAN_MIN_REQUESTS;
}

/* The engine's options for weights 'quant' and window 'window' (max_model_len) under o; the
 * strings and o's calibration are borrowed. */
static void plan_fill_config(const struct plan_opts *o, const char *quant, int window,
                             struct engine_config *c)
{
    memset(c, 0, sizeof(*c));
    c->gpu = o->gpu;
    c->model = o->model;
    c->quantization = quant;
    c->kv_cache_dtype = o->kv_dtype;
    c->max_model_len = window;
    c->gpu_memory_utilization = o->gpu_memory_utilization;
    c->max_num_seqs = o->max_num_seqs;
    c->max_num_batched_tokens = o->max_num_batched_tokens;
    c->enable_prefix_caching = o->prefix_caching ? 1 : 0;
    c->tensor_parallel_size = o->tp;
    c->p2p = o->p2p;
    c->numa_nodes = o->numa_nodes;
    c->host_servers = o->host_servers;
    c->catalog_dir = o->catalog_dir;
    c->calibration = o->have_cal ? &o->cal : NULL;
}

/* Runs the workload on a fresh engine through the driver; fills the row's latency results. */
static int plan_simulate(const struct plan_opts *o, struct plan_row *row, char *err, size_t errlen)
{
    struct engine_config c;
    plan_fill_config(o, row->quant, row->window, &c);
    struct engine *e = NULL;
    int rc = engine_new(&e, &c, err, errlen);
    if (rc)
        return rc;
    struct vd_instance inst = {.e = e, .gpu = -1};
    struct vd_tenant t = {
        .instance = 0,
        .population = o->population,
        .users = row->users,
        .requests = row->requests,
        .warmup = row->warmup < row->requests ? row->warmup : 0,
        .prompt = row->prompt,
        .output = row->output,
        .prompt_lens = row->prompt_lens,
        .output_lens = row->output_lens,
        .n_lens = row->n_lens,
        .shared_prefix = o->shared_prefix,
        .slo = o->slo,
        .session = o->session,
        .think_seed = o->think_seed,
        .turn_tokens = o->turn_tokens,
    };
    struct vd_instance_stats is;
    struct vd_out out = {.tenants = &row->res, .insts = &is};
    rc = vd_run(&inst, 1, &t, 1, 0, &out, err, errlen);
    if (!rc) {
        struct engine_counters ct;
        engine_counters(e, &ct);
        row->preemptions = ct.num_preemptions;
        row->steps = ct.steps;
        row->duration_s = out.end_s;
        row->mean_running = is.mean_running;
        row->peak_kv_usage = is.peak_kv_usage;
        const struct vd_result *r = &row->res;
        row->user_tps = r->tpot.n && r->tpot.p50 > 0 ? 1.0 / r->tpot.p50 : NAN;
        row->out_tps = r->output_tps;
        row->simulated = true;
    }
    engine_free(e);
    return rc;
}

/* The same rule as a measured point's verdict (runner/metrics.c): each objective against its
 * metric at slo.percentile (TTFT, TPOT, E2E per request; ITL pooled over tokens); a request that
 * failed (a conversation past the window) is a miss. */
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
    char missed[320] = "", failures[160] = "";
    size_t nm = 0;
    int failed = row->res.sent - row->res.completed;
    if (failed > 0)
        snprintf(failures, sizeof(failures),
                 "; %d of %d requests failed (a conversation grew past the %d-token window)",
                 failed, row->res.sent, row->cm.max_model_len);
    for (int i = 0; i < 4; i++) {
        if (!(obj[i].limit_ms > 0))
            continue;
        double x = row->res.at_pct[i] * 1e3;
        if (x <= obj[i].limit_ms || nm >= sizeof(missed))
            continue;
        if (isinf(x))
            nm += (size_t)snprintf(missed + nm, sizeof(missed) - nm,
                                   "%s%s p%g: more than %g %% of requests failed", nm ? "; " : "",
                                   obj[i].name, pct, 100 - pct);
        else {
            char got[32], want[32];
            nm += (size_t)snprintf(missed + nm, sizeof(missed) - nm, "%s%s p%g %s > %s",
                                   nm ? "; " : "", obj[i].name, pct, human_ms(x, got, sizeof(got)),
                                   human_ms(obj[i].limit_ms, want, sizeof(want)));
        }
    }
    char what[200];
    slo_describe(slo, what, sizeof(what));
    row->ok = row->res.meets_slo;
    if (row->ok)
        snprintf(row->verdict, sizeof(row->verdict), "meets the SLO (%s)%s", what, failures);
    else
        snprintf(row->verdict, sizeof(row->verdict), "violates the SLO (%s): %s%s", what,
                 missed[0] ? missed : "nothing completed", failures);
}

/* Why a setup does not fit, with the lever that would make it fit. */
static void fit_message(const struct plan_opts *o, struct plan_row *row)
{
    const struct cost_model *m = &row->cm;
    double avail =
        (m->requested_bytes - m->activation_bytes - m->nontorch_bytes - m->lora_bytes) / GIB;
    if (!m->fits) {
        snprintf(row->fit_msg, sizeof(row->fit_msg),
                 "needs %.1f GiB for weights, has %.1f GiB (%.0f MiB x %.2f - %.1f GiB "
                 "activations/overhead); use a 4-bit quantization (awq, nvfp4) or "
                 "tensor_parallel_size %d",
                 m->weight_bytes / GIB, avail, m->gpu->memory_mib,
                 m->requested_bytes / m->total_bytes, row->info.activation_gib, m->tp * 2);
        return;
    }
    long holds = m->num_blocks * (long)m->block_size;
    snprintf(row->fit_msg, sizeof(row->fit_msg),
             "weights fit (%.1f GiB) but the KV cache holds %ld tokens (%.1f GiB), less than "
             "one %d-token window (vLLM refuses to start); use max_model_len <= %ld%s%s",
             m->weight_bytes / GIB, holds, m->kv_budget_bytes / GIB, row->window, holds,
             m->kv_dtype_bytes > 1 ? ", kv_cache_dtype fp8" : "",
             m->requested_bytes / m->total_bytes < 0.95 ? ", or gpu_memory_utilization 0.95" : "");
    (void)o;
}

int plan_row_run(const struct plan_opts *o, const struct catalog *cat, struct plan_row *row)
{
    struct engine_config c;
    char err[512];
    plan_fill_config(o, row->quant, row->window, &c);
    int rc = cost_model_init(&row->cm, cat, &c, err, sizeof(err));
    if (rc) {
        log_error("plan: %s", err);
        return TB_EXIT_USAGE;
    }
    cost_model_info(&row->cm, &row->info);
    const struct cost_model *m = &row->cm;
    if (!row->window)
        row->window = m->max_model_len;
    row->fits = m->fits && cost_blocks_for(m, row->window) <= m->num_blocks;
    if (!row->fits)
        fit_message(o, row);
    plan_band_for(&row->cm, row->prompt, o->have_cal ? &o->cal : NULL, &row->band);
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

/* Each per-request length is positive and each pair fits the window (a later turn's message:
 * its conversation is checked as it grows). */
static int plan_lengths_check(const struct plan_row *row, char *err, size_t errlen)
{
    for (size_t i = 0; i < row->n_lens; i++) {
        int p = row->prompt_lens[i], n = row->output_lens[i];
        if (p < 1 || n < 1 || (row->window > 0 && p + n > row->window)) {
            snprintf(err, errlen,
                     "plan: request %zu's lengths (prompt %d, output %d) must be positive and "
                     "fit max_model_len %d",
                     i, p, n, row->window);
            return -EINVAL;
        }
    }
    return 0;
}

static void plan_opts_from_query(const struct plan_query *q, struct plan_opts *o)
{
    plan_opts_defaults(o);
    o->gpu = q->gpu;
    o->model = q->model;
    o->kv_dtype = q->kv_cache_dtype;
    o->max_num_seqs = q->max_num_seqs;
    o->max_num_batched_tokens = q->max_num_batched_tokens;
    o->gpu_memory_utilization = q->gpu_memory_utilization;
    o->tp = q->tensor_parallel_size;
    o->p2p = q->p2p;
    o->numa_nodes = q->numa_nodes;
    o->host_servers = q->host_servers;
    o->catalog_dir = q->catalog_dir;
    o->prefix_caching = q->prefix_caching;
    o->slo = q->slo;
    o->calibration_path = q->calibration;
    o->population = q->population;
    o->session = q->session;
    if (o->population == VD_SESSIONS && o->session.turns < 1)
        session_cfg_defaults(&o->session);
    o->think_seed = q->think_seed;
    o->turn_tokens = q->turn_tokens;
    o->shared_prefix = q->shared_prefix;
}

static void prediction_from_row(const struct plan_row *row, struct plan_prediction *out)
{
    out->fits = row->fits;
    snprintf(out->fit_msg, sizeof(out->fit_msg), "%s", row->fit_msg);
    out->kv_capacity_tokens = row->info.kv_capacity_tokens;
    out->max_model_len = row->cm.max_model_len;
    long per = cost_blocks_for(&row->cm, row->cm.max_model_len);
    out->max_concurrency = per > 0 ? (double)row->cm.num_blocks / per : 0;
    out->weights_gib = row->info.weights_gib;
    out->kv_budget_gib = row->info.kv_budget_gib;
    snprintf(out->weight_dtype, sizeof(out->weight_dtype), "%s", row->cm.weight_dtype);
    out->weights_native = row->cm.quant == NULL;
    snprintf(out->kv_dtype, sizeof(out->kv_dtype), "%s", row->cm.kv_dtype);
    out->simulated = row->simulated;
    out->ttft = row->res.ttft;
    out->tpot = row->res.tpot;
    out->itl = row->res.itl;
    out->ttft_first = row->res.ttft_first;
    out->ttft_later = row->res.ttft_later;
    out->cached_prompt_pct = row->res.prompt_tokens > 0 ? 100.0 * row->res.cached_prompt_tokens /
                                                              (double)row->res.prompt_tokens
                                                        : NAN;
    out->max_prompt = row->res.max_prompt;
    out->failed = row->simulated ? row->res.sent - row->res.completed : 0;
    memcpy(out->at_pct, row->res.at_pct, sizeof(out->at_pct));
    out->output_tps = row->out_tps;
    out->user_tps = row->user_tps;
    out->duration_s = row->duration_s;
    out->meets_slo = row->ok;
    out->band = row->band;
    snprintf(out->verdict, sizeof(out->verdict), "%s", row->verdict);
}

void plan_query_engine_config(const struct plan_query *q, struct engine_config *c)
{
    struct plan_opts o;
    plan_opts_from_query(q, &o);
    o.have_cal = false; /* o is gone on return: c must not borrow its calibration */
    plan_fill_config(&o, q->quantization, q->max_model_len, c);
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
    row->window = q->max_model_len;
    row->prompt = q->prompt_tokens;
    row->output = q->output_tokens;
    if (q->n_lens > 0 && q->prompt_lens && q->output_lens) {
        row->prompt_lens = q->prompt_lens;
        row->output_lens = q->output_lens;
        row->n_lens = q->n_lens;
    }
    row->users = q->users;
    row->warmup = q->warmup_requests > 0 ? q->warmup_requests : 0;
    if (q->requests > 0)
        row->requests = q->requests;
    else if (q->requests_per_user > 0)
        row->requests = plan_probe_requests(q->users, q->requests_per_user, q->min_requests,
                                            o.population == VD_SESSIONS ? o.session.turns : 0);
    else
        row->requests = plan_requests_for(&o, q->users);
    int rc = 0;
    if (row->prompt < 1 || row->output < 1 || row->users < 1) {
        snprintf(err, errlen, "plan: prompt, output and users must be positive");
        rc = -EINVAL;
    } else if (row->window > 0 && row->prompt + row->output > row->window) {
        snprintf(err, errlen, "plan: prompt %d + output %d tokens exceed max_model_len %d",
                 row->prompt, row->output, row->window);
        rc = -EINVAL;
    } else if (o.population != VD_SESSIONS && plan_lengths_check(row, err, errlen)) {
        rc = -EINVAL;
    } else {
        rc = plan_row_run(&o, cat, row) ? -EINVAL : 0;
        if (rc)
            snprintf(err, errlen, "plan: the engine refused the setup (see the message above)");
    }
    if (!rc)
        prediction_from_row(row, out);
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
    struct plan_opts o;
    plan_opts_defaults(&o);
    o.population = VD_STREAMS;
    return plan_requests_for(&o, users);
}

int plan_probe_requests(int users, int per_user, int min_requests, int turns)
{
    if (turns > 0) {
        per_user = per_user < turns ? turns : (per_user + turns - 1) / turns * turns;
        min_requests = (min_requests + turns - 1) / turns * turns;
    }
    long n = (long)users * per_user;
    return n < min_requests ? min_requests : n > INT32_MAX ? INT32_MAX : (int)n;
}

int plan_floor(const struct plan_query *q, struct plan_floor *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct plan_query one = *q;
    one.users = 1;
    one.requests = 0;
    struct plan_prediction p;
    int rc = plan_predict(&one, &p, err, errlen);
    if (rc || !p.fits || !p.simulated)
        return rc;
    plan_floor_judge(&q->slo, p.at_pct, out);
    return 0;
}

void plan_floor_judge(const struct slo_cfg *slo, const double at_pct[4], struct plan_floor *out)
{
    out->known = true;
    memcpy(out->at_pct, at_pct, sizeof(out->at_pct));
    const double lim[4] = {slo->ttft_ms, slo->itl_ms, slo->tpot_ms, slo->e2e_ms};
    static const char *const names[4] = {"TTFT", "ITL", "TPOT", "E2E"};
    size_t n = 0;
    out->unreachable = false;
    out->why[0] = '\0';
    for (int i = 0; i < 4; i++) {
        double x = at_pct[i] * 1e3;
        if (!(lim[i] > 0) || x <= lim[i] || n >= sizeof(out->why))
            continue;
        out->unreachable = true;
        char got[32], want[32];
        n += (size_t)snprintf(out->why + n, sizeof(out->why) - n,
                              "%s%s floor %s > %s (p%g with one user on this GPU)", n ? "; " : "",
                              names[i], human_ms(x, got, sizeof(got)),
                              human_ms(lim[i], want, sizeof(want)), slo->percentile);
    }
}
