/*
 * study_measure.c - one setup: launch its server, read its own start-up figures, measure each
 * workload at the study's user counts, search for the most users within the SLO, stop the
 * server. Every probe is an ordinary run (runner/run.h) with its own result files.
 */
#include "study/study_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <sys/stat.h>

#include "core/clock.h"
#include "core/exitcode.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "config/servable.h"
#include "core/human.h"
#include "study/capacity.h"

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
    study_workload_apply(st, c->wi, cfg);
    free(cfg->benchmark.output_dir);
    cfg->benchmark.output_dir = xasprintf("%s/%s", st->dir, s->id);
    free(cfg->benchmark.output_prefix);
    cfg->benchmark.output_prefix = xasprintf("%s_u%d", st->wl[c->wi].name, users);
    cfg->benchmark.seed = study_probe_seed(cfg->benchmark.seed, c->wi, users);
    /* The probe's size and its stop rule (probe.c); set before the closed loop copies the
     * requests into its one tenant. */
    struct probe_size ps;
    study_probe_size(st, c->wi, users, &ps);
    cfg->requests.warmup_requests = ps.warmup;
    cfg->requests.warmup_s = 0;
    cfg->requests.duration_s = NAN;
    cfg->requests.stop_when_decided = ps.stops;
    bool sessions = st->wl[c->wi].sessions;
    if (config_set_closed_loop(cfg, users, ps.total, c->context, sessions)) {
        log_error("study: workload %s has named tenants; a study measures one tenant",
                  st->wl[c->wi].name);
        config_release(cfg);
        return -EINVAL;
    }
    return 0;
}

static double json_num_or_nan(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The probe's two lines: the plan beside what was measured ("–" where a value is unknown, a
 * failed probe), then the verdict with its interval, how many requests it rests on, and
 * whether the probe stopped once certain. */
static void print_probe(const json_t *row, int users)
{
    char a[32], b[32], c[32], d[32];
    const json_t *met = json_object_get(row, "slo_met");
    const char *status = json_string_value(json_object_get(row, "status"));
    const char *reason = json_string_value(json_object_get(row, "reason"));
    printf("    %4d users: TTFT p95 %s (plan %s), TPOT p50 %s (plan %s), %s%s%s\n", users,
           human_ms(json_num_or_nan(row, "meas_ttft_p95_ms"), a, sizeof(a)),
           human_ms(json_num_or_nan(row, "pred_ttft_p95_ms"), b, sizeof(b)),
           human_ms(json_num_or_nan(row, "meas_tpot_p50_ms"), c, sizeof(c)),
           human_ms(json_num_or_nan(row, "pred_tpot_p50_ms"), d, sizeof(d)),
           json_is_true(met)    ? (json_is_true(json_object_get(row, "slo_decided"))
                                       ? "meets the SLO"
                                       : "meets the SLO by the estimate")
           : json_is_false(met) ? "misses the SLO"
                                : status,
           !json_is_true(met) && reason ? ": " : "", !json_is_true(met) && reason ? reason : "");
    const char *line = json_string_value(json_object_get(row, "slo_line"));
    if (line) {
        const char *by = json_string_value(json_object_get(row, "ended_by"));
        printf("                %s%s, %.1f s\n", line,
               by && strcmp(by, "decided") == 0                     ? "; stopped once certain"
               : json_is_false(json_object_get(row, "slo_decided")) ? "; undecided at the cap"
                                                                    : "",
               json_number_value(json_object_get(row, "probe_s")));
    }
    fflush(stdout);
}

/* A point whose files the study folder could not take (a full disk) but which the run wrote
 * elsewhere is measured all the same: the row says where its files went. */
static bool files_moved(const struct study *st, const struct run_outcome *out)
{
    size_t n = strlen(st->dir);
    return out->n_points == 1 && !out->points[0].partial && out->detailed_path &&
           !(strncmp(out->detailed_path, st->dir, n) == 0 && out->detailed_path[n] == '/');
}

/* One measured point at `users` (run once per user count per cell). 0, TB_EXIT_INTERRUPTED to
 * stop the study, or STUDY_SERVER_DIED when the server is gone (before or during the probe). */
static int measure(struct cell *c, int users, const char *role, json_t **row_out)
{
    char key[16];
    snprintf(key, sizeof(key), "%d", users);
    json_t *row = json_object_get(c->measured, key);
    *row_out = row;
    if (row)
        return 0;
    if (!backend_alive(c->server, c->died, sizeof(c->died)))
        return STUDY_SERVER_DIED; /* between probes: nothing to measure against */
    struct study *st = c->st;
    struct plan_prediction p;
    int prompt, output, context;
    study_predict(st, c->si, c->wi, users, &p, &prompt, &output, &context);
    row = study_row_new(st, c->si, c->wi, role, users, "measured", NULL);
    study_row_predicted(row, &p, c->meas_kv);
    struct config cfg;
    int rc = probe_config(c, users, &cfg);
    if (rc) {
        json_object_set_new(row, "status", json_string("failed"));
        json_object_set_new(row, "reason", json_string("the workload config cannot be loaded"));
    } else {
        char label[320]; /* names the setup and probe in the runner's warnings */
        snprintf(label, sizeof(label), "setup %s, workload %s, %d users", st->setups[c->si].id,
                 st->wl[c->wi].name, users);
        struct run_options ro = {.endpoint = c->endpoint,
                                 .quiet = true,
                                 .wait_s = 30,
                                 .keep_handler = true,
                                 .heartbeat = !st->args.quiet,
                                 .label = label};
        struct run_outcome out;
        int total = cfg.requests.num_requests;
        mono_ns t0 = clock_now();
        int ec = run_config(&cfg, &ro, &out);
        double spent = (double)(clock_now() - t0) / NS_PER_S;
        log_set_quiet(st->args.quiet);
        json_object_set_new(row, "run_detailed", study_rel_path(st, out.detailed_path));
        json_object_set_new(row, "run_summary", study_rel_path(st, out.summary_path));
        json_object_set_new(row, "run_telemetry", study_rel_path(st, out.telemetry_path));
        if (out.n_points > 0) {
            const struct point_summary *s = &out.points[0].summary;
            study_row_measured(row, &out.points[0]);
            study_probe_times(row, spent, s->issued + s->warmup, total);
        }
        if (ec == TB_EXIT_INTERRUPTED || (out.n_points && out.points[0].partial)) {
            json_object_set_new(row, "status", json_string("interrupted"));
            rc = TB_EXIT_INTERRUPTED;
        } else if (ec != TB_EXIT_OK && !backend_alive(c->server, c->died, sizeof(c->died))) {
            json_object_set_new(row, "status", json_string("failed"));
            json_object_set_new(row, "reason", json_string(c->died));
            json_object_set_new(row, "slo_met", json_false());
            rc = STUDY_SERVER_DIED;
        } else if (ec == TB_EXIT_RUNTIME && files_moved(st, &out)) {
            char *why = xasprintf("measured; the study folder could not take its files, which "
                                  "are in %s",
                                  out.detailed_path);
            json_object_set_new(row, "reason", json_string(why));
            free(why);
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
    /* Saved at once, not only at the setup's end: a study killed outright (SIGKILL, a power cut)
     * keeps every point it measured, and --resume reuses them (study_resume.c). */
    (void)study_save(st);
    json_object_set(c->measured, key, row);
    *row_out = row;
    if (!st->args.quiet)
        print_probe(row, users);
    if (!rc && study_stop_requested)
        rc = TB_EXIT_INTERRUPTED;
    return rc;
}

/* Points this setup measured before an interruption (kept by study_resume.c) count as measured:
 * a resume never measures them again, nor loses them if the server fails to start now. */
static void cell_reuse_measured(struct cell *c)
{
    const char *id = c->st->setups[c->si].id, *wl = c->st->wl[c->wi].name;
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(json_object_get(c->st->doc, "rows"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "setup")), id) != 0 ||
            strcmp(json_string_value(json_object_get(r, "workload")), wl) != 0 ||
            strcmp(json_string_value(json_object_get(r, "status")), "measured") != 0)
            continue;
        char key[16];
        snprintf(key, sizeof(key), "%lld",
                 (long long)json_integer_value(json_object_get(r, "users")));
        json_object_set(c->measured, key, r);
        n++;
    }
    if (n && !c->st->args.quiet)
        printf("  workload %s: %zu point%s measured before the interruption, kept\n", wl, n,
               n == 1 ? "" : "s");
}

static int capacity_probe(void *ctx, int users, bool *met)
{
    json_t *row = NULL;
    int rc = measure(ctx, users, "search", &row);
    *met = row && json_is_true(json_object_get(row, "slo_met"));
    return rc;
}

/* Was the verdict at `users` decided (the interval on one side of every limit)? A count never
 * measured (0 users, above the ceiling) needs no evidence. */
static bool probe_decided(const struct cell *c, int users)
{
    char key[16];
    snprintf(key, sizeof(key), "%d", users);
    const json_t *row = json_object_get(c->measured, key);
    return !row || !json_is_false(json_object_get(row, "slo_decided"));
}

/* Every row of the cell gets the answer: measured max users beside the plan's, and whether
 * both probes it rests on (the count that met, the next one that missed) were decided. */
static void cell_finish(struct cell *c, int max_users, bool known, bool at_ceiling)
{
    bool decided =
        known && probe_decided(c, max_users) && (at_ceiling || probe_decided(c, max_users + 1));
    json_t *row;
    const char *k;
    json_object_foreach(c->measured, k, row)
    {
        study_row_set_pair(row, "max_users",
                           c->pred_max >= 0 ? json_integer(c->pred_max) : json_null(),
                           known ? json_integer(max_users) : json_null());
        json_object_set_new(row, "max_users_decided", known ? json_boolean(decided) : json_null());
    }
}

static int measure_cell(struct cell *c)
{
    struct study *st = c->st;
    const struct study_cfg *sc = &st->cfg.study;
    struct plan_prediction p;
    study_predict(st, c->si, c->wi, sc->users.v[0], &p, &c->prompt, &c->output, &c->context);
    c->pred_max = p.fits ? study_predict_max_users(st, c->si, c->wi, c->prompt, c->output) : -1;
    if (!st->args.quiet)
        printf("  workload %s: prompt %d + output %d tokens%s\n", st->wl[c->wi].name, c->prompt,
               c->output, c->context ? " (filling the window share)" : "");
    if (!p.fits && !st->args.force) {
        if (!st->args.quiet)
            printf("    does not fit (not measured; --force measures anyway): %s\n", p.fit_msg);
        study_rows_unmeasured(st, c->si, c->wi, "does_not_fit", p.fit_msg, c->meas_kv, NULL);
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
        bool sure =
            probe_decided(c, cr.max_users) && (cr.at_ceiling || probe_decided(c, cr.max_users + 1));
        if (known && !st->args.quiet)
            printf("    capacity: %d users within the SLO%s (plan %d), %d probes%s\n", cr.max_users,
                   cr.at_ceiling ? " or more (the search ceiling)" : "", c->pred_max, cr.probes,
                   sure ? ", its verdicts decided"
                        : "; a verdict it rests on was undecided at its cap (the answer may be off "
                          "by one)");
    }
    cell_finish(c, cr.max_users, known, cr.at_ceiling);
    return rc;
}

/* ==== Setups ==== */

void study_server_setup_from(const struct study_setup *s, struct server_setup *out)
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

int study_run_setup(struct study *st, size_t si)
{
    const struct study_setup *s = &st->setups[si];
    struct plan_prediction p;
    int prompt, output, context;
    /* Launched when one workload fits; the others are recorded as not fitting. */
    for (size_t wi = 0; wi < st->n_wl; wi++) {
        study_predict(st, si, wi, st->cfg.study.users.v[0], &p, &prompt, &output, &context);
        if (p.fits)
            break;
    }
    if (!st->args.quiet)
        printf("\n[%zu/%zu] %s\n", si + 1, st->n_setups, s->id);
    if (!p.fits && !st->args.force) {
        if (!st->args.quiet)
            printf("  does not fit (not launched; --force launches anyway): %s\n", p.fit_msg);
        study_setup_set_status(st, si, "does_not_fit", p.fit_msg);
        study_rows_unmeasured(st, si, SIZE_MAX, "does_not_fit", p.fit_msg, -1, NULL);
        return 0;
    }
    char *sub = xasprintf("%s/%s", st->dir, s->id);
    mkdir(sub, 0777);
    char *log_path = xasprintf("%s/server.log", sub);
    char *log_rel = xasprintf("%s/server.log", s->id);
    struct server_setup ss;
    study_server_setup_from(s, &ss);
    /* vLLM's own name for the format (awq -> awq_marlin, an FP8 checkpoint's
     * compressed-tensors), or nothing where it reads it from the checkpoint; the simulator
     * takes the catalog's names. */
    struct servable sv;
    if (st->bo.kind != BACKEND_SIM && !study_servable(st, si, &sv) && sv.known)
        ss.quantization = sv.vllm_flag[0] ? sv.vllm_flag : NULL;
    struct server_handle *h = NULL;
    struct backend_start_result res;
    memset(&res, 0, sizeof(res));
    mono_ns t0 = clock_now();
    int rc = backend_start(&h, &st->bo, &ss, log_path, &study_stop_requested, &res);
    json_t *state = study_setup_state(st, si);
    if (rc || res.status != START_OK) {
        char raw[700], reason[700];
        snprintf(raw, sizeof(raw), "%s: %s", start_status_name(res.status),
                 res.reason[0] ? res.reason : "see server.log");
        term_clean(reason, sizeof(reason), raw); /* the server's words: no escape sequences */
        bool interrupted = res.status == START_INTERRUPTED;
        if (!st->args.quiet)
            printf("  %s %s\n    (server log: %s)\n",
                   interrupted ? "interrupted while starting:" : "failed to start:", reason,
                   log_path);
        json_object_set_new(state, "log_tail", json_string(res.log_tail));
        json_object_set_new(state, "start_class", json_string(start_status_name(res.status)));
        if (interrupted) {
            study_setup_set_status(st, si, "interrupted", reason);
        } else {
            study_setup_set_status(st, si, "failed_to_start", reason);
            study_rows_unmeasured(st, si, SIZE_MAX, "failed_to_start", reason,
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
    char died[sizeof(((struct cell *)0)->died)] = "";
    for (size_t wi = 0; wi < st->n_wl && !rc; wi++) {
        struct cell c = {.st = st,
                         .si = si,
                         .wi = wi,
                         .endpoint = res.endpoint,
                         .server = h,
                         .meas_kv = res.facts.kv_capacity_tokens,
                         .measured = json_object(),
                         .pred_max = -1};
        cell_reuse_measured(&c);
        rc = measure_cell(&c);
        snprintf(died, sizeof(died), "%s", c.died);
        json_t *row;
        const char *k;
        json_object_foreach(c.measured, k, row)
            json_object_set_new(row, "server_log", json_string(log_rel));
        json_decref(c.measured);
    }
    if (rc == STUDY_SERVER_DIED) {
        /* Vital: a server that dies under load (vLLM's own OOM at more users, say) must not
         * read as "0 users within the SLO" on a setup marked done; its measured points stay,
         * no capacity is claimed, and --retry-failed measures it again. */
        char tail[sizeof(((struct backend_start_result *)0)->log_tail)];
        backend_log_tail(log_path, tail, sizeof(tail));
        if (!st->args.quiet)
            printf("  %s; the setup is stopped (server log: %s)\n", died, log_path);
        json_object_set_new(state, "log_tail", json_string(tail));
        json_object_set_new(state, "start_class", json_string("crashed"));
        study_setup_set_status(st, si, "crashed", died);
        rc = 0;
    } else {
        study_setup_set_status(st, si, rc ? "interrupted" : "done", NULL);
    }
out:
    backend_stop(h);
    free(sub);
    free(log_path);
    free(log_rel);
    return rc;
}
