/*
 * study.c - `testbench study` (study.h). The order of work is what makes it cheap:
 *   1. plan every setup x workload (milliseconds) and print the predicted answer;
 *   2. per setup: a setup the plan says does not fit is recorded, not launched (--force
 *      launches anyway); otherwise the backend starts it, its own start-up figures are read,
 *      each workload is measured at the study's user counts and searched for the most users
 *      within the SLO (starting from the plan's answer, so few points are measured), and the
 *      server is stopped;
 *   3. after every setup the study files are rewritten, so Ctrl-C, a crash or --resume lose
 *      nothing finished.
 * Every probe is an ordinary run (runner/run.h) with its own result files.
 */
#include "study/study.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/exitcode.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/version.h"
#include "plan/plan.h"
#include "runner/run.h"
#include "study/backend.h"
#include "study/capacity.h"
#include "study/setups.h"
#include "study/study_files.h"
#include "workload/workload.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct study_args {
    const char *config;
    const char *resume;
    const char *backend;
    const char *output_dir;
    bool force;
    bool plan_only;
    bool quiet;
    const char *calibration; /* --calibration FILE: plan and the sim backend use it */
};

struct study {
    struct study_args args;
    struct config cfg; /* the study file */
    const char *name;
    struct study_setup *setups;
    size_t n_setups;
    struct study_workload *wl;
    size_t n_wl;
    struct config *wcfg; /* each workload's config as loaded, for lengths and SLOs */
    char *dir;
    json_t *doc; /* study.json: {..., setups: [...], rows: [...]} */
    struct backend_options bo;
    char self_exe[PATH_MAX];
};

/* One setup x workload: what its probes share. */
struct cell {
    struct study *st;
    size_t si, wi;
    const char *endpoint;
    long meas_kv; /* from the server's log, -1 unknown */
    int prompt, output, context;
    json_t *measured; /* users (as a string key) -> its row */
    int pred_max;     /* plan's max users, -1 unknown */
};

/* ==== Predictions ==== */

static const struct slo_cfg *workload_slo(const struct study *st, size_t wi)
{
    return st->cfg.study.slo_given ? &st->cfg.slo : &st->wcfg[wi].slo;
}

/* Prompt and output lengths the workload sends on this setup; context > 0 when prompts fill
 * a share of the window. */
static void cell_lengths(const struct study *st, size_t si, size_t wi, int model_max_len,
                         int *prompt, int *output, int *context)
{
    const struct requests_cfg *rq = &st->wcfg[wi].requests;
    int window = st->setups[si].max_model_len ? st->setups[si].max_model_len : model_max_len;
    *output = rq->completion_tokens;
    *context = 0;
    if (!isnan(st->wl[wi].context_fill) && window > 0) {
        *context = (int)lround(st->wl[wi].context_fill * window);
        *prompt = *context - *output;
    } else {
        *prompt = (rq->prompt_tokens_min + rq->prompt_tokens_max) / 2;
    }
}

static void plan_query_fill(const struct study *st, size_t si, size_t wi, int prompt, int output,
                            int users, struct plan_query *q)
{
    const struct study_setup *s = &st->setups[si];
    memset(q, 0, sizeof(*q));
    q->gpu = st->cfg.study.gpu;
    q->model = s->model;
    q->quantization = s->quantization;
    q->kv_cache_dtype = s->kv_cache_dtype;
    q->catalog_dir = st->cfg.study.catalog;
    q->max_model_len = s->max_model_len;
    q->gpu_memory_utilization = s->gpu_memory_utilization;
    q->tensor_parallel_size = s->tensor_parallel_size;
    q->max_num_seqs = s->max_num_seqs;
    q->prefix_caching = s->enable_prefix_caching;
    q->prompt_tokens = prompt;
    q->output_tokens = output;
    q->users = users;
    q->requests = 0;
    /* The probes' request count, so that the plan judges what will be measured. */
    q->requests_per_user = st->cfg.study.requests_per_user;
    q->min_requests = st->cfg.study.min_requests;
    q->slo = *workload_slo(st, wi);
    q->calibration = st->args.calibration;
}

static int requests_for(const struct study *st, int users)
{
    long n = (long)users * st->cfg.study.requests_per_user;
    return n < st->cfg.study.min_requests ? st->cfg.study.min_requests : (int)n;
}

/* A probe's benchmark.seed: fresh prompts for every probe (the server stays up between probes,
 * and prompts it has seen would hit its prefix cache and flatter the later ones). */
static uint64_t probe_seed(uint64_t seed, size_t wi, int users)
{
    return (seed ^ ((uint64_t)wi << 32)) + (uint64_t)users * 7919;
}

/* The probe's own request lengths, drawn as its run draws them (workload_plan with the seed of
 * its only point), so the plan replays what will be measured: varied prompts and outputs put
 * closed-loop users out of step, as they are in the run. *prompt and *output are the caller's
 * to free; 0 (none) when the prompts come from a dataset or trace (a dataset prompt's length is
 * known only once built), or when a drawn pair does not fit the window (the means stand). */
static size_t probe_lengths(const struct study *st, size_t wi, int users, int context, int window,
                            int **prompt, int **output)
{
    const struct config *wc = &st->wcfg[wi];
    *prompt = *output = NULL;
    if (wc->requests.dataset.path || wc->requests.trace.path)
        return 0;
    struct workload *w = NULL;
    char err[256];
    if (workload_new(&w, &wc->requests, wc->server.api, err, sizeof(err)))
        return 0; /* the probe will say why */
    size_t n = (size_t)requests_for(st, users);
    struct req_record *recs = xcalloc(n, sizeof(*recs));
    uint64_t seed = run_point_seed(probe_seed(wc->benchmark.seed, wi, users), 0, 0, "lengths");
    workload_plan(w, seed, context, recs, n);
    workload_free(w);
    int *p = xcalloc(n, sizeof(*p)), *o = xcalloc(n, sizeof(*o));
    for (size_t i = 0; i < n; i++) {
        p[i] = recs[i].target_prompt_tokens;
        o[i] = recs[i].target_output_tokens;
        if (p[i] < 1 || o[i] < 1 || (window > 0 && p[i] + o[i] > window)) {
            free(p);
            free(o);
            free(recs);
            return 0;
        }
    }
    free(recs);
    *prompt = p;
    *output = o;
    return n;
}

/* Predicts the setup x workload at `users`; the plan runs the same number of requests as the
 * measured probe, so both see the same ramp-up and drain. */
static int predict(const struct study *st, size_t si, size_t wi, int users,
                   struct plan_prediction *p, int *prompt, int *output, int *context)
{
    char err[512];
    struct plan_query q;
    plan_query_fill(st, si, wi, 1, 1, 1, &q);
    q.output_tokens = 1;
    q.prompt_tokens = 1;
    int rc = plan_predict(&q, p, err, sizeof(err)); /* the window the engine resolves */
    if (rc) {
        snprintf(p->fit_msg, sizeof(p->fit_msg), "%s", err);
        return rc;
    }
    cell_lengths(st, si, wi, p->max_model_len, prompt, output, context);
    if (!p->fits)
        return 0;
    if (*prompt < 1 || *prompt + *output > p->max_model_len) {
        p->fits = false;
        snprintf(p->fit_msg, sizeof(p->fit_msg),
                 "the workload's prompt %d + output %d tokens exceed max_model_len %d", *prompt,
                 *output, p->max_model_len);
        return 0;
    }
    plan_query_fill(st, si, wi, *prompt, *output, users, &q);
    int *pl = NULL, *ol = NULL;
    q.n_lens = probe_lengths(st, wi, users, *context, p->max_model_len, &pl, &ol);
    q.prompt_lens = pl;
    q.output_lens = ol;
    rc = plan_predict(&q, p, err, sizeof(err));
    free(pl);
    free(ol);
    if (rc)
        snprintf(p->fit_msg, sizeof(p->fit_msg), "%s", err);
    return rc;
}

static int predict_max_users(const struct study *st, size_t si, size_t wi, int prompt, int output)
{
    struct plan_query q;
    plan_query_fill(st, si, wi, prompt, output, 1, &q);
    char err[512];
    int n = 0;
    if (plan_max_users(&q, st->cfg.study.max_users, &n, err, sizeof(err)))
        return -1;
    return n;
}

/* ==== Rows ==== */

static json_t *num_or_null(double x)
{
    return json_real_or_null(x);
}

/* (predicted - measured) / measured x 100, null when either is unknown. */
static json_t *rel_err(const json_t *pred, const json_t *meas)
{
    double p = json_number_value(pred), m = json_number_value(meas);
    if (!json_is_number(pred) || !json_is_number(meas) || m == 0)
        return json_null();
    return json_real((p - m) / m * 100.0);
}

static void row_set_pair(json_t *row, const char *name, json_t *pred, json_t *meas)
{
    char key[64];
    snprintf(key, sizeof(key), "pred_%s", name);
    json_object_set_new(row, key, pred);
    snprintf(key, sizeof(key), "meas_%s", name);
    json_object_set_new(row, key, meas);
    /* "ttft_p50_ms" -> "err_ttft_p50_pct"; "output_tps" -> "err_output_tps_pct" */
    char base[48];
    snprintf(base, sizeof(base), "%s", name);
    size_t bl = strlen(base);
    if (bl > 3 && strcmp(base + bl - 3, "_ms") == 0)
        base[bl - 3] = '\0';
    if (strcmp(base, "kv_capacity_tokens") == 0)
        snprintf(base, sizeof(base), "kv_capacity");
    snprintf(key, sizeof(key), "err_%s_pct", base);
    json_object_set_new(row, key, rel_err(pred, meas));
}

static json_t *row_new(const struct study *st, size_t si, size_t wi, const char *role, int users,
                       const char *status, const char *reason)
{
    const struct study_setup *s = &st->setups[si];
    json_t *r = json_object();
    json_object_set_new(r, "study", json_string(st->name));
    json_object_set_new(r, "setup", json_string(s->id));
    json_object_set_new(r, "model", json_string(s->model));
    json_object_set_new(r, "quantization", json_string(s->quantization ? s->quantization : "none"));
    json_object_set_new(r, "kv_cache_dtype", json_string(s->kv_cache_dtype));
    json_object_set_new(r, "max_model_len",
                        s->max_model_len ? json_integer(s->max_model_len) : json_null());
    json_object_set_new(r, "gpu_memory_utilization", json_real(s->gpu_memory_utilization));
    json_object_set_new(r, "tensor_parallel_size", json_integer(s->tensor_parallel_size));
    json_object_set_new(r, "max_num_seqs",
                        s->max_num_seqs ? json_integer(s->max_num_seqs) : json_null());
    json_object_set_new(r, "enable_prefix_caching", json_boolean(s->enable_prefix_caching));
    json_object_set_new(r, "workload", json_string(st->wl[wi].name));
    json_object_set_new(r, "role", json_string(role));
    json_object_set_new(r, "users", json_integer(users));
    json_object_set_new(r, "status", json_string(status));
    json_object_set_new(r, "reason", json_string_or_null(reason && *reason ? reason : NULL));
    json_object_set_new(r, "slo_met", json_null());
    return r;
}

/* The plan's figures beside the measured ones (null measured until a probe fills them). */
static void row_predicted(json_t *r, const struct plan_prediction *p, long meas_kv)
{
    bool sim = p->fits && p->simulated;
    row_set_pair(r, "kv_capacity_tokens",
                 p->kv_capacity_tokens > 0 ? json_integer(p->kv_capacity_tokens) : json_null(),
                 meas_kv >= 0 ? json_integer(meas_kv) : json_null());
    row_set_pair(r, "ttft_p50_ms", sim ? num_or_null(p->ttft.p50 * 1e3) : json_null(), json_null());
    row_set_pair(r, "ttft_p95_ms", sim ? num_or_null(p->ttft.p95 * 1e3) : json_null(), json_null());
    row_set_pair(r, "tpot_p50_ms", sim ? num_or_null(p->tpot.p50 * 1e3) : json_null(), json_null());
    row_set_pair(r, "tpot_p95_ms", sim ? num_or_null(p->tpot.p95 * 1e3) : json_null(), json_null());
    row_set_pair(r, "output_tps", sim ? num_or_null(p->output_tps) : json_null(), json_null());
    row_set_pair(r, "user_tps", sim ? num_or_null(p->user_tps) : json_null(), json_null());
    row_set_pair(r, "max_users", json_null(), json_null());
    json_object_set_new(r, "energy_j_per_token", json_null());
    json_object_set_new(r, "peak_vram_gib", json_null());
    json_object_set_new(r, "run_detailed", json_null());
    json_object_set_new(r, "run_summary", json_null());
    json_object_set_new(r, "run_telemetry", json_null());
    json_object_set_new(r, "server_log", json_null());
}

/* Measured values replace the nulls; the errors follow. */
static void row_measured(json_t *r, const struct run_point *pt)
{
    const struct point_summary *s = &pt->summary;
    struct {
        const char *name;
        double v;
    } m[] = {
        {"ttft_p50_ms", s->ttft.p50 * 1e3},
        {"ttft_p95_ms", s->ttft.p95 * 1e3},
        {"tpot_p50_ms", s->tpot.p50 * 1e3},
        {"tpot_p95_ms", s->tpot.p95 * 1e3},
        {"output_tps", s->output_throughput},
        /* As the plan defines it: 1 / TPOT p50. */
        {"user_tps", s->tpot.p50 > 0 ? 1.0 / s->tpot.p50 : NAN},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        char key[64];
        snprintf(key, sizeof(key), "pred_%s", m[i].name);
        json_t *pred = json_incref(json_object_get(r, key));
        row_set_pair(r, m[i].name, pred ? pred : json_null(), num_or_null(m[i].v));
    }
    bool met = strcmp(s->slo_verdict, "met") == 0;
    json_object_set_new(r, "slo_met", s->slo_verdict[0] ? json_boolean(met) : json_null());
    if (!met && s->slo_verdict[0] && !json_is_string(json_object_get(r, "reason")))
        json_object_set_new(r, "reason", json_string(s->slo_verdict));
    const struct telemetry_window *tw = pt->have_telemetry ? &pt->telemetry : NULL;
    double energy =
        tw && s->output_tokens_total > 0 ? tw->gpu_energy_j / s->output_tokens_total : NAN;
    json_object_set_new(r, "energy_j_per_token", num_or_null(energy));
    json_object_set_new(r, "peak_vram_gib",
                        num_or_null(tw ? tw->gpu_mem_used_max_mib / 1024.0 : NAN));
}

/* "DIR/s01-x/file" -> "s01-x/file": rows name files inside the study folder. */
static json_t *rel_path(const struct study *st, const char *path)
{
    if (!path)
        return json_null();
    size_t n = strlen(st->dir);
    if (strncmp(path, st->dir, n) == 0 && path[n] == '/')
        return json_string(path + n + 1);
    return json_string(path);
}

/* ==== Study document ==== */

static json_t *setup_state(struct study *st, size_t si)
{
    return json_array_get(json_object_get(st->doc, "setups"), si);
}

static bool setup_finished(const json_t *state)
{
    const char *s = json_string_value(json_object_get(state, "status"));
    return s && (strcmp(s, "done") == 0 || strcmp(s, "failed_to_start") == 0 ||
                 strcmp(s, "does_not_fit") == 0);
}

static void setup_set_status(struct study *st, size_t si, const char *status, const char *reason)
{
    json_t *s = setup_state(st, si);
    json_object_set_new(s, "status", json_string(status));
    json_object_set_new(s, "reason", json_string_or_null(reason && *reason ? reason : NULL));
}

static int save(struct study *st)
{
    char now[64], err[512];
    clock_wall_iso(now, sizeof(now));
    json_object_set_new(st->doc, "updated_at", json_string(now));
    int rc = study_files_write(st->dir, st->doc, err, sizeof(err));
    if (rc)
        log_error("study: %s", err);
    return rc;
}

/* Drops rows of setups that will be measured again (not finished), keeps the rest. */
static void rows_keep_finished(struct study *st)
{
    json_t *rows = json_object_get(st->doc, "rows");
    for (size_t i = json_array_size(rows); i-- > 0;) {
        const char *id = json_string_value(json_object_get(json_array_get(rows, i), "setup"));
        bool keep = false;
        for (size_t si = 0; si < st->n_setups && id; si++)
            if (strcmp(st->setups[si].id, id) == 0)
                keep = setup_finished(setup_state(st, si));
        if (!keep)
            json_array_remove(rows, i);
    }
}

static json_t *setups_json(const struct study *st)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < st->n_setups; i++) {
        const struct study_setup *s = &st->setups[i];
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s?, s:s, s:i, s:f, s:i, s:i, s:b, s:s, s:n}", "id", s->id,
                           "model", s->model, "quantization", s->quantization, "kv_cache_dtype",
                           s->kv_cache_dtype, "max_model_len", s->max_model_len,
                           "gpu_memory_utilization", s->gpu_memory_utilization,
                           "tensor_parallel_size", s->tensor_parallel_size, "max_num_seqs",
                           s->max_num_seqs, "enable_prefix_caching", s->enable_prefix_caching,
                           "status", "pending", "reason"));
    }
    return arr;
}

/* Rows for what was not measured: one per target user count of workload `only`, or of every
 * workload (only == SIZE_MAX). */
static void rows_unmeasured(struct study *st, size_t si, size_t only, const char *status,
                            const char *reason, long meas_kv, const char *log_rel)
{
    for (size_t wi = 0; wi < st->n_wl; wi++) {
        if (only != SIZE_MAX && wi != only)
            continue;
        for (size_t u = 0; u < st->cfg.study.users.n; u++) {
            int users = st->cfg.study.users.v[u];
            struct plan_prediction p;
            int prompt, output, context;
            predict(st, si, wi, users, &p, &prompt, &output, &context);
            json_t *row = row_new(st, si, wi, "target", users, status, reason);
            row_predicted(row, &p, meas_kv);
            if (p.fits && p.simulated)
                json_object_set_new(row, "pred_max_users",
                                    json_integer(predict_max_users(st, si, wi, prompt, output)));
            json_object_set_new(row, "server_log", json_string_or_null(log_rel));
            json_array_append_new(json_object_get(st->doc, "rows"), row);
        }
    }
}

/* ==== Measuring ==== */

/* Loads the workload afresh and turns it into one closed-loop point against the setup. */
static int probe_config(struct cell *c, int users, struct config *cfg)
{
    struct study *st = c->st;
    const struct study_setup *s = &st->setups[c->si];
    char err[1024];
    if (config_load(cfg, st->wl[c->wi].path, err, sizeof(err))) {
        log_error("study: %s", err);
        return -EINVAL;
    }
    config_set_model(cfg, s->model);
    cfg->server.sim.enabled = false;
    if (st->cfg.study.slo_given)
        cfg->slo = st->cfg.slo;
    free(cfg->benchmark.output_dir);
    cfg->benchmark.output_dir = xasprintf("%s/%s", st->dir, s->id);
    free(cfg->benchmark.output_prefix);
    cfg->benchmark.output_prefix = xasprintf("%s_u%d", st->wl[c->wi].name, users);
    cfg->benchmark.seed = probe_seed(cfg->benchmark.seed, c->wi, users);
    if (config_set_closed_loop(cfg, users, requests_for(st, users), c->context)) {
        log_error("study: workload %s has named tenants; a study measures one tenant",
                  st->wl[c->wi].name);
        config_release(cfg);
        return -EINVAL;
    }
    return 0;
}

/* One measured point at `users` (run once per user count per cell). 0, or TB_EXIT_INTERRUPTED
 * to stop the study. */
static int measure(struct cell *c, int users, const char *role, json_t **row_out)
{
    char key[16];
    snprintf(key, sizeof(key), "%d", users);
    json_t *row = json_object_get(c->measured, key);
    if (row) {
        *row_out = row;
        return 0;
    }
    struct study *st = c->st;
    struct plan_prediction p;
    int prompt, output, context;
    predict(st, c->si, c->wi, users, &p, &prompt, &output, &context);
    row = row_new(st, c->si, c->wi, role, users, "measured", NULL);
    row_predicted(row, &p, c->meas_kv);
    struct config cfg;
    int rc = probe_config(c, users, &cfg);
    if (rc) {
        json_object_set_new(row, "status", json_string("failed"));
        json_object_set_new(row, "reason", json_string("the workload config cannot be loaded"));
    } else {
        struct run_options ro = {
            .endpoint = c->endpoint, .quiet = true, .wait_s = 30, .keep_handler = true};
        struct run_outcome out;
        int ec = run_config(&cfg, &ro, &out);
        log_set_quiet(st->args.quiet);
        json_object_set_new(row, "run_detailed", rel_path(st, out.detailed_path));
        json_object_set_new(row, "run_summary", rel_path(st, out.summary_path));
        json_object_set_new(row, "run_telemetry", rel_path(st, out.telemetry_path));
        if (out.n_points > 0)
            row_measured(row, &out.points[0]);
        if (ec == TB_EXIT_INTERRUPTED || (out.n_points && out.points[0].partial)) {
            json_object_set_new(row, "status", json_string("interrupted"));
            rc = TB_EXIT_INTERRUPTED;
        } else if (ec != TB_EXIT_OK || out.n_points == 0) {
            json_object_set_new(row, "status", json_string("failed"));
            char why[128];
            snprintf(why, sizeof(why), "the run ended with exit code %d (see its files)", ec);
            json_object_set_new(row, "reason", json_string(why));
            json_object_set_new(row, "slo_met", json_false());
        }
        run_outcome_release(&out);
    }
    json_array_append_new(json_object_get(st->doc, "rows"), row);
    json_object_set(c->measured, key, row);
    *row_out = row;
    if (!st->args.quiet) {
        printf("    %4d users: TTFT p95 %8.1f ms (plan %8.1f), TPOT p50 %6.1f ms (plan %6.1f), "
               "%s\n",
               users, json_number_value(json_object_get(row, "meas_ttft_p95_ms")),
               json_number_value(json_object_get(row, "pred_ttft_p95_ms")),
               json_number_value(json_object_get(row, "meas_tpot_p50_ms")),
               json_number_value(json_object_get(row, "pred_tpot_p50_ms")),
               json_is_true(json_object_get(row, "slo_met"))
                   ? "meets the SLO"
                   : json_string_value(json_object_get(row, "status")));
        fflush(stdout);
    }
    if (!rc && stop_requested)
        rc = TB_EXIT_INTERRUPTED;
    return rc;
}

static int capacity_probe(void *ctx, int users, bool *met)
{
    json_t *row = NULL;
    int rc = measure(ctx, users, "search", &row);
    *met = row && json_is_true(json_object_get(row, "slo_met"));
    return rc;
}

/* Every row of the cell gets the answer: measured max users beside the plan's. */
static void cell_finish(struct cell *c, int max_users, bool known)
{
    json_t *row;
    const char *k;
    json_object_foreach(c->measured, k, row)
    {
        row_set_pair(row, "max_users", c->pred_max >= 0 ? json_integer(c->pred_max) : json_null(),
                     known ? json_integer(max_users) : json_null());
    }
}

static int measure_cell(struct cell *c)
{
    struct study *st = c->st;
    const struct study_cfg *sc = &st->cfg.study;
    struct plan_prediction p;
    predict(st, c->si, c->wi, sc->users.v[0], &p, &c->prompt, &c->output, &c->context);
    c->pred_max = p.fits ? predict_max_users(st, c->si, c->wi, c->prompt, c->output) : -1;
    if (!st->args.quiet)
        printf("  workload %s: prompt %d + output %d tokens%s\n", st->wl[c->wi].name, c->prompt,
               c->output, c->context ? " (filling the window share)" : "");
    if (!p.fits && !st->args.force) {
        if (!st->args.quiet)
            printf("    does not fit (not measured; --force measures anyway): %s\n", p.fit_msg);
        rows_unmeasured(st, c->si, c->wi, "does_not_fit", p.fit_msg, c->meas_kv, NULL);
        return 0;
    }
    int rc = 0;
    for (size_t u = 0; u < sc->users.n && !rc; u++) {
        json_t *row;
        rc = measure(c, sc->users.v[u], "target", &row);
    }
    struct capacity_result cr = {0};
    bool known = false;
    if (!rc && sc->capacity_search) {
        int start = c->pred_max > 0 ? c->pred_max : 1;
        rc = capacity_search(start, sc->max_users, capacity_probe, c, &cr);
        known = rc == 0;
        if (known && !st->args.quiet)
            printf("    capacity: %d users within the SLO%s (plan %d), %d probes\n", cr.max_users,
                   cr.at_ceiling ? " or more (the search ceiling)" : "", c->pred_max, cr.probes);
    }
    cell_finish(c, cr.max_users, known);
    return rc;
}

/* ==== Setups ==== */

static void server_setup_from(const struct study_setup *s, struct server_setup *out)
{
    *out = (struct server_setup){
        .id = s->id,
        .model = s->model,
        .quantization = s->quantization,
        .kv_cache_dtype = s->kv_cache_dtype,
        .max_model_len = s->max_model_len,
        .gpu_memory_utilization = s->gpu_memory_utilization,
        .tensor_parallel_size = s->tensor_parallel_size,
        .max_num_seqs = s->max_num_seqs,
        .enable_prefix_caching = s->enable_prefix_caching,
        .extra_args = (const char *const *)s->extra_args,
        .n_extra_args = s->n_extra_args,
    };
}

static int run_setup(struct study *st, size_t si)
{
    const struct study_setup *s = &st->setups[si];
    struct plan_prediction p;
    int prompt, output, context;
    /* Launched when one workload fits; the others are recorded as not fitting. */
    for (size_t wi = 0; wi < st->n_wl; wi++) {
        predict(st, si, wi, st->cfg.study.users.v[0], &p, &prompt, &output, &context);
        if (p.fits)
            break;
    }
    if (!st->args.quiet)
        printf("\n[%zu/%zu] %s\n", si + 1, st->n_setups, s->id);
    if (!p.fits && !st->args.force) {
        if (!st->args.quiet)
            printf("  does not fit (not launched; --force launches anyway): %s\n", p.fit_msg);
        setup_set_status(st, si, "does_not_fit", p.fit_msg);
        rows_unmeasured(st, si, SIZE_MAX, "does_not_fit", p.fit_msg, -1, NULL);
        return 0;
    }
    char *sub = xasprintf("%s/%s", st->dir, s->id);
    mkdir(sub, 0777);
    char *log_path = xasprintf("%s/server.log", sub);
    char *log_rel = xasprintf("%s/server.log", s->id);
    struct server_setup ss;
    server_setup_from(s, &ss);
    struct server_handle *h = NULL;
    struct backend_start_result res;
    memset(&res, 0, sizeof(res));
    mono_ns t0 = clock_now();
    int rc = backend_start(&h, &st->bo, &ss, log_path, &stop_requested, &res);
    json_t *state = setup_state(st, si);
    if (rc || res.status != START_OK) {
        char raw[700], reason[700];
        snprintf(raw, sizeof(raw), "%s: %s", start_status_name(res.status),
                 res.reason[0] ? res.reason : "see server.log");
        term_clean(reason, sizeof(reason), raw); /* the server's words: no escape sequences */
        bool interrupted = res.status == START_INTERRUPTED;
        if (!st->args.quiet)
            printf("  %s %s\n",
                   interrupted ? "interrupted while starting:" : "failed to start:", reason);
        json_object_set_new(state, "log_tail", json_string(res.log_tail));
        if (interrupted) {
            setup_set_status(st, si, "interrupted", reason);
        } else {
            setup_set_status(st, si, "failed_to_start", reason);
            rows_unmeasured(st, si, SIZE_MAX, "failed_to_start", reason,
                            res.facts.kv_capacity_tokens, log_rel);
        }
        rc = interrupted ? TB_EXIT_INTERRUPTED : 0;
        goto out;
    }
    json_object_set_new(state, "server_kv_capacity_tokens",
                        res.facts.kv_capacity_tokens >= 0
                            ? json_integer(res.facts.kv_capacity_tokens)
                            : json_null());
    json_object_set_new(state, "server_max_concurrency",
                        json_real_or_null(res.facts.max_concurrency));
    json_object_set_new(state, "plan_kv_capacity_tokens", json_integer(p.kv_capacity_tokens));
    json_object_set_new(state, "plan_max_concurrency", json_real_or_null(p.max_concurrency));
    json_object_set_new(state, "server_pid", json_integer(server_handle_pid(h)));
    json_object_set_new(state, "startup_s", json_real((double)(clock_now() - t0) / NS_PER_S));
    if (!st->args.quiet)
        printf("  ready in %.1f s at %s: KV cache %ld tokens (plan %ld)\n",
               (double)(clock_now() - t0) / NS_PER_S, res.endpoint, res.facts.kv_capacity_tokens,
               p.kv_capacity_tokens);
    for (size_t wi = 0; wi < st->n_wl && !rc; wi++) {
        struct cell c = {.st = st,
                         .si = si,
                         .wi = wi,
                         .endpoint = res.endpoint,
                         .meas_kv = res.facts.kv_capacity_tokens,
                         .measured = json_object(),
                         .pred_max = -1};
        rc = measure_cell(&c);
        json_t *row;
        const char *k;
        json_object_foreach(c.measured, k, row)
            json_object_set_new(row, "server_log", json_string(log_rel));
        json_decref(c.measured);
    }
    setup_set_status(st, si, rc ? "interrupted" : "done", NULL);
out:
    backend_stop(h);
    free(sub);
    free(log_path);
    free(log_rel);
    return rc;
}

/* ==== Terminal tables ==== */

/* Measuring time the plan expects: each target point, and for the search the predicted answer
 * and one more user (two points when the plan is right). */
static double expected_seconds(const struct study *st, size_t si, size_t wi, int max_users)
{
    const struct study_cfg *sc = &st->cfg.study;
    double total = 0;
    struct plan_prediction p;
    int prompt, output, context;
    for (size_t u = 0; u < sc->users.n; u++)
        if (!predict(st, si, wi, sc->users.v[u], &p, &prompt, &output, &context) && p.simulated)
            total += p.duration_s;
    const int probes[] = {max_users > 0 ? max_users : 1, max_users + 1};
    for (size_t k = 0; sc->capacity_search && k < 2; k++)
        if (probes[k] <= sc->max_users &&
            !predict(st, si, wi, probes[k], &p, &prompt, &output, &context) && p.simulated)
            total += p.duration_s;
    return total;
}

static void print_plan(struct study *st)
{
    printf("Predicted before any server starts (testbench plan, %s):\n", st->cfg.study.gpu);
    printf("  %-50s %-16s %5s %10s %10s %8s %9s %6s\n", "setup", "workload", "users", "KV tokens",
           "TTFT p95", "TPOT p50", "tok/s/user", "max");
    double seconds = 0;
    size_t launched = 0;
    for (size_t si = 0; si < st->n_setups; si++) {
        bool any = false;
        for (size_t wi = 0; wi < st->n_wl; wi++) {
            int users = st->cfg.study.users.v[0];
            struct plan_prediction p;
            int prompt, output, context;
            int rc = predict(st, si, wi, users, &p, &prompt, &output, &context);
            if (rc || !p.fits) {
                printf("  %-50.50s %-16.16s %5d %10s  does not fit: %.100s\n", st->setups[si].id,
                       st->wl[wi].name, users, "-", rc ? "plan failed" : p.fit_msg);
                continue;
            }
            any = true;
            int mx = predict_max_users(st, si, wi, prompt, output);
            seconds += expected_seconds(st, si, wi, mx);
            printf("  %-50.50s %-16.16s %5d %10ld %8.0f ms %5.1f ms %9.1f %6d\n", st->setups[si].id,
                   st->wl[wi].name, users, p.kv_capacity_tokens, p.ttft.p95 * 1e3, p.tpot.p50 * 1e3,
                   p.user_tps, mx);
        }
        launched += any;
    }
    char took[32];
    if (seconds < 120)
        snprintf(took, sizeof(took), "%.0f s", seconds);
    else if (seconds < 7200)
        snprintf(took, sizeof(took), "%.0f min", seconds / 60);
    else
        snprintf(took, sizeof(took), "%.1f h", seconds / 3600);
    printf("  %zu of %zu setups to launch; measuring them takes about %s if the plan is right "
           "(plus each server's start-up)\n",
           launched, st->n_setups, took);
    fflush(stdout);
}

/* The guidance matrix for one workload: rows model / quantization / KV dtype, columns context
 * (max_model_len); a cell is the most users served within the SLO and the per-user token rate
 * at the study's first user count, measured where a server ran and predicted (*) where not. */
static int cmp_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static void guidance_cell(const json_t *r, char *cell, size_t len)
{
    const char *status = json_string_value(json_object_get(r, "status"));
    bool measured = strcmp(status, "measured") == 0;
    if (strcmp(status, "does_not_fit") == 0) {
        snprintf(cell, len, "does not fit");
        return;
    }
    if (strcmp(status, "failed_to_start") == 0) {
        const char *why = json_string_value(json_object_get(r, "reason"));
        snprintf(cell, len, "failed: %.*s", (int)strcspn(why ? why : "", ":"), why ? why : "");
        return;
    }
    const json_t *mx = json_object_get(r, measured ? "meas_max_users" : "pred_max_users");
    const json_t *tps = json_object_get(r, measured ? "meas_user_tps" : "pred_user_tps");
    char users[24] = "?";
    if (json_is_integer(mx))
        snprintf(users, sizeof(users), "%lld", (long long)json_integer_value(mx));
    snprintf(cell, len, "%s%s / %.0f tok/s", measured ? "" : "*", users, json_number_value(tps));
}

static void print_guidance(struct study *st)
{
    json_t *rows = json_object_get(st->doc, "rows");
    int users = st->cfg.study.users.v[0];
    int ctx[64];
    size_t nctx = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        int c = (int)json_integer_value(json_object_get(r, "max_model_len"));
        bool seen = false;
        for (size_t k = 0; k < nctx; k++)
            seen |= ctx[k] == c;
        if (!seen && nctx < 64)
            ctx[nctx++] = c;
    }
    qsort(ctx, nctx, sizeof(int), cmp_int);
    for (size_t wi = 0; wi < st->n_wl; wi++) {
        printf("\nGuidance for %d users, workload %s (cell: most users within the SLO / tokens/s "
               "per user at %d users; * = predicted, not measured):\n  %-48s",
               users, st->wl[wi].name, users, "model / quantization / KV cache");
        for (size_t k = 0; k < nctx; k++) {
            char h[24];
            snprintf(h, sizeof(h), ctx[k] ? "ctx %d" : "ctx default", ctx[k]);
            printf(" %-22s", h);
        }
        printf("\n");
        for (size_t si = 0; si < st->n_setups; si++) {
            const struct study_setup *s = &st->setups[si];
            bool first = true; /* a line per distinct row key, at its first setup */
            for (size_t sj = 0; sj < si; sj++)
                first &= !(strcmp(st->setups[sj].model, s->model) == 0 &&
                           !strcmp(st->setups[sj].quantization ? st->setups[sj].quantization : "",
                                   s->quantization ? s->quantization : "") &&
                           strcmp(st->setups[sj].kv_cache_dtype, s->kv_cache_dtype) == 0);
            if (!first)
                continue;
            char label[160];
            snprintf(label, sizeof(label), "%s / %s / %s", s->model,
                     s->quantization ? s->quantization : "none", s->kv_cache_dtype);
            printf("  %-48.48s", label);
            for (size_t k = 0; k < nctx; k++) {
                char cell[64] = "-";
                json_array_foreach(rows, i, r)
                {
                    if (json_integer_value(json_object_get(r, "users")) != users ||
                        strcmp(json_string_value(json_object_get(r, "role")), "target") != 0 ||
                        strcmp(json_string_value(json_object_get(r, "workload")),
                               st->wl[wi].name) != 0 ||
                        json_integer_value(json_object_get(r, "max_model_len")) != ctx[k] ||
                        strcmp(json_string_value(json_object_get(r, "model")), s->model) != 0 ||
                        strcmp(json_string_value(json_object_get(r, "quantization")),
                               s->quantization ? s->quantization : "none") != 0 ||
                        strcmp(json_string_value(json_object_get(r, "kv_cache_dtype")),
                               s->kv_cache_dtype) != 0)
                        continue;
                    guidance_cell(r, cell, sizeof(cell));
                }
                printf(" %-22.22s", cell);
            }
            printf("\n");
        }
    }
}

/* ==== Set-up ==== */

static int parse_args(int argc, char **argv, struct study_args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"resume", required_argument, NULL, 'r'},
        {"backend", required_argument, NULL, 'b'},
        {"output-dir", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},
        {"plan-only", no_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"calibration", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:r:b:o:fpqh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 'r':
            a->resume = optarg;
            break;
        case 'b':
            a->backend = optarg;
            break;
        case 'o':
            a->output_dir = optarg;
            break;
        case 'f':
            a->force = true;
            break;
        case 'p':
            a->plan_only = true;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 'C':
            a->calibration = optarg;
            break;
        default:
            return -EINVAL;
        }
    }
    if (optind < argc) {
        log_error("study: unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (!a->config && !a->resume) {
        log_error("study: --config FILE (a new study) or --resume DIR is required");
        return -EINVAL;
    }
    return 0;
}

static int backend_from_config(struct study *st)
{
    const struct study_backend_cfg *b = &st->cfg.study.backend;
    const char *type = st->args.backend ? st->args.backend : b->type;
    static const struct {
        const char *name;
        enum backend_kind kind;
    } kinds[] = {{"sim", BACKEND_SIM},
                 {"docker", BACKEND_DOCKER},
                 {"command", BACKEND_COMMAND},
                 {"none", BACKEND_NONE}};
    size_t k = 0;
    while (k < 4 && strcmp(kinds[k].name, type) != 0)
        k++;
    if (k == 4) {
        log_error("study: unknown backend '%s' (sim, docker, command, none)", type);
        return -EINVAL;
    }
    if (kinds[k].kind == BACKEND_COMMAND && !b->command) {
        log_error("study: the command backend needs backend.command in %s", st->cfg.path);
        return -EINVAL;
    }
    ssize_t n = readlink("/proc/self/exe", st->self_exe, sizeof(st->self_exe) - 1);
    st->self_exe[n > 0 ? n : 0] = '\0';
    st->bo = (struct backend_options){
        .kind = kinds[k].kind,
        .self_exe = st->self_exe,
        .sim_gpu = st->cfg.study.gpu,
        .sim_catalog = st->cfg.study.catalog,
        .sim_calibration = st->args.calibration,
        .seed = st->cfg.benchmark.seed,
        .docker_image = b->image,
        .docker_gpus = b->gpus,
        .hf_cache = b->hf_cache,
        .docker_network = b->network,
        .docker_args = (const char *const *)b->docker_args.v,
        .n_docker_args = b->docker_args.n,
        .command_template = b->command,
        .endpoint = b->endpoint ? b->endpoint : st->cfg.server.endpoint,
        .port = b->port,
        .startup_timeout_s = b->startup_timeout_s,
        .stop_grace_s = b->stop_grace_s,
        .name_prefix = "testbench",
    };
    json_object_set_new(st->doc, "backend", json_string(type));
    return 0;
}

static int load_workloads(struct study *st)
{
    study_workloads_resolve(&st->cfg, &st->wl, &st->n_wl);
    st->wcfg = xcalloc(st->n_wl, sizeof(*st->wcfg));
    for (size_t i = 0; i < st->n_wl; i++) {
        char err[1024];
        if (config_load(&st->wcfg[i], st->wl[i].path, err, sizeof(err))) {
            log_error("study: workload %s: %s", st->wl[i].name, err);
            return -EINVAL;
        }
        if (st->wcfg[i].tenants_given) {
            log_error("study: workload %s (%s) has tenants; a study measures one tenant per "
                      "server",
                      st->wl[i].name, st->wl[i].path);
            return -EINVAL;
        }
    }
    return 0;
}

/* A new folder results/<name>_<UTC stamp>, or the one being resumed. */
static int open_dir(struct study *st)
{
    if (st->args.resume) {
        st->dir = xstrdup(st->args.resume);
        return 0;
    }
    const char *base = st->args.output_dir ? st->args.output_dir : st->cfg.benchmark.output_dir;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    char *cmd_dir = xstrdup(base);
    for (char *p = cmd_dir + 1; *p; p++) { /* mkdir -p */
        if (*p == '/') {
            *p = '\0';
            mkdir(cmd_dir, 0777);
            *p = '/';
        }
    }
    mkdir(cmd_dir, 0777);
    free(cmd_dir);
    for (int k = 1; k < 100; k++) {
        free(st->dir);
        st->dir = k == 1 ? xasprintf("%s/%s_%s", base, st->name, stamp)
                         : xasprintf("%s/%s_%s-%d", base, st->name, stamp, k);
        if (mkdir(st->dir, 0777) == 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    log_error("study: cannot create %s: %s", st->dir, strerror(errno));
    return -errno;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char b[8192];
    size_t n;
    while (out && (n = fread(b, 1, sizeof(b), in)) > 0)
        fwrite(b, 1, n, out);
    if (out)
        fclose(out);
    if (in)
        fclose(in);
}

/* study.json's frame, or the resumed one with its finished setups kept. */
static int open_doc(struct study *st)
{
    char err[512], now[64];
    if (st->args.resume) {
        if (study_files_read(st->dir, &st->doc, err, sizeof(err))) {
            log_error("study: --resume %s: %s", st->dir, err);
            return -EINVAL;
        }
        json_t *old = json_object_get(st->doc, "setups");
        json_t *fresh = setups_json(st);
        size_t i;
        json_t *s;
        json_array_foreach(fresh, i, s)
        {
            for (size_t j = 0; j < json_array_size(old); j++) {
                json_t *o = json_array_get(old, j);
                if (json_equal(json_object_get(o, "id"), json_object_get(s, "id")) &&
                    setup_finished(o)) {
                    /* Replacing s frees it: stop comparing against it. */
                    json_array_set(fresh, i, o);
                    break;
                }
            }
        }
        json_object_set_new(st->doc, "setups", fresh);
        rows_keep_finished(st);
        return 0;
    }
    clock_wall_iso(now, sizeof(now));
    char *abs = realpath(st->cfg.path, NULL);
    st->doc =
        json_pack("{s:i, s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:s, s:o, s:o}", "schema_version", 1,
                  "tool", "name", "testbench", "version", TB_VERSION, "git", TB_GIT, "study",
                  st->name, "gpu", st->cfg.study.gpu, "started_at", now, "config_path",
                  abs ? abs : st->cfg.path, "setups", setups_json(st), "rows", json_array());
    free(abs);
    char *copy = xasprintf("%s/study.yaml", st->dir);
    copy_file(st->cfg.path, copy);
    free(copy);
    return 0;
}

/* --resume DIR: the study file is the one study.json names. */
static int resume_config_path(struct study *st, char **out)
{
    json_t *doc;
    char err[512];
    if (study_files_read(st->args.resume, &doc, err, sizeof(err))) {
        log_error("study: --resume %s: %s", st->args.resume, err);
        return -EINVAL;
    }
    const char *p = json_string_value(json_object_get(doc, "config_path"));
    *out = p ? xstrdup(p) : NULL;
    json_decref(doc);
    if (!*out) {
        log_error("study: %s/study.json does not name its study file; give --config", st->dir);
        return -EINVAL;
    }
    return 0;
}

static int study_setup_all(struct study *st)
{
    char err[1024];
    char *resume_path = NULL;
    if (!st->args.config && resume_config_path(st, &resume_path))
        return TB_EXIT_USAGE;
    const char *path = st->args.config ? st->args.config : resume_path;
    int rc = config_load(&st->cfg, path, err, sizeof(err));
    free(resume_path);
    if (rc) {
        log_error("%s", err);
        return TB_EXIT_USAGE;
    }
    if (!st->cfg.study.present && !st->cfg.model.name) {
        log_error("study: %s has no study sections and no model.name; see docs/STUDY.md",
                  st->cfg.path);
        return TB_EXIT_USAGE;
    }
    st->name = st->cfg.study.name ? st->cfg.study.name : st->cfg.benchmark.output_prefix;
    study_setups_expand(&st->cfg, &st->setups, &st->n_setups);
    if (load_workloads(st))
        return TB_EXIT_USAGE;
    st->doc = json_object();
    if (backend_from_config(st))
        return TB_EXIT_USAGE;
    json_t *backend = json_incref(json_object_get(st->doc, "backend"));
    json_decref(st->doc);
    st->doc = NULL;
    if (!st->args.plan_only && (open_dir(st) || open_doc(st))) {
        json_decref(backend);
        return TB_EXIT_RUNTIME;
    }
    if (st->doc)
        json_object_set_new(st->doc, "backend", backend);
    else
        json_decref(backend);
    return TB_EXIT_OK;
}

static void study_release(struct study *st)
{
    study_setups_free(st->setups, st->n_setups);
    for (size_t i = 0; st->wcfg && i < st->n_wl; i++)
        config_release(&st->wcfg[i]);
    free(st->wcfg);
    study_workloads_free(st->wl, st->n_wl);
    json_decref(st->doc);
    free(st->dir);
    config_release(&st->cfg);
}

int study_main(int argc, char **argv)
{
    struct study st;
    memset(&st, 0, sizeof(st));
    if (parse_args(argc, argv, &st.args))
        return TB_EXIT_USAGE;
    log_set_quiet(st.args.quiet);
    int ec = study_setup_all(&st);
    if (ec != TB_EXIT_OK) {
        study_release(&st);
        return ec;
    }
    if (!st.args.quiet)
        print_plan(&st);
    if (st.args.plan_only) {
        study_release(&st);
        return TB_EXIT_OK;
    }
    stop_requested = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (!st.args.quiet)
        printf("\nstudy folder: %s\n", st.dir);
    int rc = save(&st) ? TB_EXIT_RUNTIME : TB_EXIT_OK;
    for (size_t si = 0; si < st.n_setups && !rc; si++) {
        if (setup_finished(setup_state(&st, si))) {
            if (!st.args.quiet)
                printf("\n[%zu/%zu] %s: %s earlier, skipped\n", si + 1, st.n_setups,
                       st.setups[si].id,
                       json_string_value(json_object_get(setup_state(&st, si), "status")));
            continue;
        }
        rc = run_setup(&st, si);
        if (save(&st) && !rc)
            rc = TB_EXIT_RUNTIME;
        if (!rc && stop_requested)
            rc = TB_EXIT_INTERRUPTED;
    }
    if (rc == TB_EXIT_INTERRUPTED) {
        log_warn("study interrupted: finished setups are in %s; continue with "
                 "'testbench study --resume %s'",
                 st.dir, st.dir);
        save(&st);
    }
    if (!st.args.quiet) {
        print_guidance(&st);
        printf("\nstudy files:\n  %s/study.csv\n  %s/study.json\n  %s/manifest.json\n", st.dir,
               st.dir, st.dir);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    study_release(&st);
    return rc;
}
