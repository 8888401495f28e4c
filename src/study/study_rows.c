/*
 * study_rows.c - study.json's content: one row per setup x workload x load (predicted beside
 * measured), each setup's state, and the atomic save of the three study files.
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

#include "core/clock.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "scale/scale.h"
#include "study/study_files.h"

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

void study_row_set_pair(json_t *row, const char *name, json_t *pred, json_t *meas)
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

json_t *study_row_new(const struct study *st, size_t si, size_t wi, const char *role, int users,
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
void study_row_predicted(json_t *r, const struct plan_prediction *p, long meas_kv)
{
    bool sim = p->fits && p->simulated;
    study_row_set_pair(r, "kv_capacity_tokens",
                       p->kv_capacity_tokens > 0 ? json_integer(p->kv_capacity_tokens)
                                                 : json_null(),
                       meas_kv >= 0 ? json_integer(meas_kv) : json_null());
    study_row_set_pair(r, "ttft_p50_ms", sim ? num_or_null(p->ttft.p50 * 1e3) : json_null(),
                       json_null());
    study_row_set_pair(r, "ttft_p95_ms", sim ? num_or_null(p->ttft.p95 * 1e3) : json_null(),
                       json_null());
    study_row_set_pair(r, "tpot_p50_ms", sim ? num_or_null(p->tpot.p50 * 1e3) : json_null(),
                       json_null());
    study_row_set_pair(r, "tpot_p95_ms", sim ? num_or_null(p->tpot.p95 * 1e3) : json_null(),
                       json_null());
    study_row_set_pair(r, "output_tps", sim ? num_or_null(p->output_tps) : json_null(),
                       json_null());
    study_row_set_pair(r, "user_tps", sim ? num_or_null(p->user_tps) : json_null(), json_null());
    study_row_set_pair(r, "max_users", json_null(), json_null());
    json_object_set_new(r, "energy_j_per_token", json_null());
    json_object_set_new(r, "peak_vram_gib", json_null());
    json_object_set_new(r, "run_detailed", json_null());
    json_object_set_new(r, "run_summary", json_null());
    json_object_set_new(r, "run_telemetry", json_null());
    json_object_set_new(r, "server_log", json_null());
}

/* A number, "inf" (failed requests reach it) or null (no such value). */
static json_t *ms_or_inf(double ms)
{
    return isinf(ms) ? json_string("inf") : num_or_null(ms);
}

/* The verdict's evidence (docs/STUDY.md "study.csv"): what the guidance cell and the report
 * show beside "meets" or "misses", e.g. "meets, p95 TTFT 0.62 s [0.55, 0.70], 240 requests". */
static void study_row_verdict(json_t *r, const struct run_point *pt)
{
    const struct point_summary *s = &pt->summary;
    const struct slo_verdict *v = &s->verdict;
    const struct objective_verdict *ov = v->shown >= 0 ? &v->obj[v->shown] : NULL;
    char line[512];
    slo_verdict_line(v, line, sizeof(line));
    json_object_set_new(r, "slo_state",
                        v->has_slo ? json_string(slo_verdict_state(v)) : json_null());
    json_object_set_new(r, "slo_decided", v->has_slo ? json_boolean(v->decided) : json_null());
    json_object_set_new(r, "slo_objective",
                        ov ? json_string(slo_objective_name((enum slo_objective)v->shown))
                           : json_null());
    json_object_set_new(r, "slo_percentile", v->has_slo ? json_real(v->percentile) : json_null());
    json_object_set_new(r, "slo_confidence", v->has_slo ? json_real(v->confidence) : json_null());
    json_object_set_new(r, "slo_limit_ms", ov ? num_or_null(ov->limit_ms) : json_null());
    json_object_set_new(r, "slo_value_ms", ov ? ms_or_inf(ov->value_ms) : json_null());
    json_object_set_new(r, "slo_ci_low_ms", ov ? ms_or_inf(ov->ci_low_ms) : json_null());
    json_object_set_new(r, "slo_ci_high_ms", ov ? ms_or_inf(ov->ci_high_ms) : json_null());
    json_object_set_new(r, "slo_requests",
                        json_integer((json_int_t)(v->has_slo ? v->requests : s->issued)));
    json_object_set_new(r, "slo_min_requests",
                        v->has_slo ? json_integer((json_int_t)v->min_requests) : json_null());
    json_object_set_new(r, "slo_failed",
                        json_integer((json_int_t)(v->has_slo ? v->failed : s->failed)));
    json_object_set_new(r, "slo_line", v->has_slo ? json_string(line) : json_null());
    char evidence[256];
    slo_verdict_evidence(v, evidence, sizeof(evidence));
    json_object_set_new(r, "slo_evidence", v->has_slo ? json_string(evidence) : json_null());
    json_object_set_new(r, "warmup_requests", json_integer((json_int_t)s->warmup));
    json_object_set_new(r, "ended_by", json_string(pt->ended_by ? pt->ended_by : "requests"));
}

/* Measured values replace the nulls; the errors follow. */
void study_row_measured(json_t *r, const struct run_point *pt)
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
        study_row_set_pair(r, m[i].name, pred ? pred : json_null(), num_or_null(m[i].v));
    }
    bool met = strcmp(s->slo_verdict, "met") == 0;
    json_object_set_new(r, "slo_met", s->slo_verdict[0] ? json_boolean(met) : json_null());
    if (!met && s->slo_verdict[0] && !json_is_string(json_object_get(r, "reason")))
        json_object_set_new(r, "reason", json_string(s->slo_verdict));
    study_row_verdict(r, pt);
    const struct telemetry_window *tw = pt->have_telemetry ? &pt->telemetry : NULL;
    double energy =
        tw && s->output_tokens_total > 0 ? tw->gpu_energy_j / s->output_tokens_total : NAN;
    json_object_set_new(r, "energy_j_per_token", num_or_null(energy));
    json_object_set_new(r, "peak_vram_gib",
                        num_or_null(tw ? tw->gpu_mem_used_max_mib / 1024.0 : NAN));
}

/* "DIR/s01-x/file" -> "s01-x/file": rows name files inside the study folder. */
json_t *study_rel_path(const struct study *st, const char *path)
{
    if (!path)
        return json_null();
    size_t n = strlen(st->dir);
    if (strncmp(path, st->dir, n) == 0 && path[n] == '/')
        return json_string(path + n + 1);
    return json_string(path);
}

/* ==== Study document ==== */

json_t *study_setup_state(struct study *st, size_t si)
{
    return json_array_get(json_object_get(st->doc, "setups"), si);
}

void study_setup_set_status(struct study *st, size_t si, const char *status, const char *reason)
{
    json_t *s = study_setup_state(st, si);
    json_object_set_new(s, "status", json_string(status));
    json_object_set_new(s, "reason", json_string_or_null(reason && *reason ? reason : NULL));
}

int study_save(struct study *st)
{
    study_measuring_save(st); /* the totals follow the rows, merged shards' included */
    if (st->hands_off)        /* submitted: the study files are the merge job's now */
        return 0;
    if (st->shard) /* a shard writes its setups' fragments, never the study files */
        return scale_fragments_write(st);
    scale_before_save(st);
    char now[64], err[512];
    clock_wall_iso(now, sizeof(now));
    json_object_set_new(st->doc, "updated_at", json_string(now));
    int rc = study_files_write(st->dir, st->doc, err, sizeof(err));
    if (rc)
        log_error("study: %s", err);
    return rc;
}

json_t *study_setups_json(const struct study *st)
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

/* Is there a measured row for setup si x workload wi at `users`? */
static bool row_measured_exists(const struct study *st, size_t si, size_t wi, int users)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(st->doc, "rows"), i, r)
    {
        const char *setup = json_string_value(json_object_get(r, "setup"));
        const char *wl = json_string_value(json_object_get(r, "workload"));
        const char *status = json_string_value(json_object_get(r, "status"));
        if (setup && wl && status && strcmp(setup, st->setups[si].id) == 0 &&
            strcmp(wl, st->wl[wi].name) == 0 && strcmp(status, "measured") == 0 &&
            json_integer_value(json_object_get(r, "users")) == users)
            return true;
    }
    return false;
}

/* Rows for what was not measured: one per target user count of workload `only`, or of every
 * workload (only == SIZE_MAX). */
void study_rows_unmeasured(struct study *st, size_t si, size_t only, const char *status,
                           const char *reason, long meas_kv, const char *log_rel)
{
    for (size_t wi = 0; wi < st->n_wl; wi++) {
        if (only != SIZE_MAX && wi != only)
            continue;
        for (size_t u = 0; u < st->cfg.study.users.n; u++) {
            int users = st->cfg.study.users.v[u];
            if (row_measured_exists(st, si, wi, users))
                continue; /* a point measured before an interruption stands */
            struct plan_prediction p;
            int prompt, output, context;
            study_predict(st, si, wi, users, &p, &prompt, &output, &context);
            json_t *row = study_row_new(st, si, wi, "target", users, status, reason);
            study_row_predicted(row, &p, meas_kv);
            if (p.fits && p.simulated)
                json_object_set_new(
                    row, "pred_max_users",
                    json_integer(study_predict_max_users(st, si, wi, prompt, output)));
            json_object_set_new(row, "server_log", json_string_or_null(log_rel));
            json_array_append_new(json_object_get(st->doc, "rows"), row);
        }
    }
}
