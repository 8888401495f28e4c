/* study_files.c - study.json, study.csv and manifest.json (study_files.h). */
#include "study/study_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/jsonx.h"

const char *const study_csv_columns[] = {
    "study",
    "setup",
    "model",
    "quantization",
    "kv_cache_dtype",
    "max_model_len",
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "max_num_seqs",
    "enable_prefix_caching",
    "workload",
    "role",
    "users",
    "status",
    "reason",
    "slo_met",
    "pred_kv_capacity_tokens",
    "meas_kv_capacity_tokens",
    "err_kv_capacity_pct",
    "pred_ttft_p50_ms",
    "meas_ttft_p50_ms",
    "err_ttft_p50_pct",
    "pred_ttft_p95_ms",
    "meas_ttft_p95_ms",
    "err_ttft_p95_pct",
    "pred_tpot_p50_ms",
    "meas_tpot_p50_ms",
    "err_tpot_p50_pct",
    "pred_tpot_p95_ms",
    "meas_tpot_p95_ms",
    "err_tpot_p95_pct",
    "pred_output_tps",
    "meas_output_tps",
    "err_output_tps_pct",
    "pred_user_tps",
    "meas_user_tps",
    "err_user_tps_pct",
    "pred_max_users",
    "meas_max_users",
    "err_max_users_pct",
    "energy_j_per_token",
    "peak_vram_gib",
    "run_detailed",
    "run_summary",
    "run_telemetry",
    "server_log",
    "side_by_side",
    /* The verdict's evidence and the probe's cost (docs/STUDY.md "study.csv"). */
    "max_users_decided",
    "slo_state",
    "slo_decided",
    "slo_objective",
    "slo_percentile",
    "slo_confidence",
    "slo_limit_ms",
    "slo_value_ms",
    "slo_ci_low_ms",
    "slo_ci_high_ms",
    "slo_requests",
    "slo_min_requests",
    "slo_failed",
    "slo_line",
    "slo_evidence",
    "warmup_requests",
    "ended_by",
    "probe_s",
    "probe_fixed_s",
};
const size_t study_csv_n_columns = sizeof(study_csv_columns) / sizeof(study_csv_columns[0]);

/* Writes text to dir/name through name.tmp, fsync and rename(). */
static int write_atomic(const char *dir, const char *name, const char *text, size_t len, char *err,
                        size_t errlen)
{
    char *path = xasprintf("%s/%s", dir, name);
    char *tmp = xasprintf("%s.tmp", path);
    int rc = 0;
    FILE *f = fopen(tmp, "w");
    if (!f || fwrite(text, 1, len, f) != len || fflush(f) || fsync(fileno(f))) {
        rc = -errno;
        snprintf(err, errlen, "cannot write %s: %s%s", path, strerror(errno),
                 errno == ENOSPC ? " (the disk is full)" : "");
    }
    if (f && fclose(f) && !rc) {
        rc = -errno;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    }
    if (!rc && rename(tmp, path)) {
        rc = -errno;
        snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
    }
    if (rc)
        unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

static int write_json(const char *dir, const char *name, const json_t *j, size_t flags, char *err,
                      size_t errlen)
{
    char *s = json_dumps(j, flags | JSON_REAL_PRECISION(10));
    if (!s) {
        snprintf(err, errlen, "cannot format %s/%s", dir, name);
        return -ENOMEM;
    }
    int rc = write_atomic(dir, name, s, strlen(s), err, errlen);
    free(s);
    return rc;
}

int study_files_write_json(const char *dir, const char *name, const json_t *j, char *err,
                           size_t errlen)
{
    return write_json(dir, name, j, JSON_INDENT(1), err, errlen);
}

/* RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled. */
static void csv_cell(FILE *f, const json_t *v)
{
    char num[64];
    const char *s = NULL;
    if (json_is_string(v)) {
        s = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        s = num;
    } else if (json_is_real(v)) {
        snprintf(num, sizeof(num), "%.6g", json_real_value(v));
        s = num;
    } else if (json_is_boolean(v)) {
        s = json_is_true(v) ? "true" : "false";
    }
    if (!s)
        return;
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static char *csv_text(const json_t *rows, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        return NULL;
    for (size_t c = 0; c < study_csv_n_columns; c++)
        fprintf(f, "%s%s", c ? "," : "", study_csv_columns[c]);
    fputc('\n', f);
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        for (size_t c = 0; c < study_csv_n_columns; c++) {
            if (c)
                fputc(',', f);
            csv_cell(f, json_object_get(row, study_csv_columns[c]));
        }
        fputc('\n', f);
    }
    fclose(f);
    return text;
}

static json_t *manifest(const json_t *study)
{
    json_t *m = json_object();
    const char *keys[] = {"study", "started_at", "updated_at", "config_path", "backend"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        json_t *v = json_object_get(study, keys[k]);
        if (v)
            json_object_set(m, keys[k], v);
    }
    json_t *setups = json_array();
    long done = 0, failed = 0, remaining = 0;
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(study, "setups"), i, s)
    {
        const char *st = json_string_value(json_object_get(s, "status"));
        st = st ? st : "pending";
        if (strcmp(st, "done") == 0)
            done++;
        else if (strcmp(st, "failed_to_start") == 0 || strcmp(st, "does_not_fit") == 0 ||
                 strcmp(st, "crashed") == 0)
            failed++;
        else
            remaining++;
        json_array_append_new(setups,
                              json_pack("{s:O?, s:s, s:O?}", "id", json_object_get(s, "id"),
                                        "status", st, "reason", json_object_get(s, "reason")));
    }
    json_object_set_new(m, "done", json_integer(done));
    json_object_set_new(m, "failed", json_integer(failed));
    json_object_set_new(m, "remaining", json_integer(remaining));
    json_object_set_new(m, "setups", setups);
    return m;
}

int study_files_write(const char *dir, const json_t *study, char *err, size_t errlen)
{
    int rc = write_json(dir, "study.json", study, JSON_INDENT(1), err, errlen);
    if (!rc) {
        size_t len = 0;
        char *csv = csv_text(json_object_get(study, "rows"), &len);
        rc = write_atomic(dir, "study.csv", csv ? csv : "", csv ? len : 0, err, errlen);
        free(csv);
    }
    if (!rc) {
        json_t *m = manifest(study);
        rc = write_json(dir, "manifest.json", m, JSON_INDENT(2), err, errlen);
        json_decref(m);
    }
    return rc;
}

int study_files_read(const char *dir, json_t **out, char *err, size_t errlen)
{
    char *path = xasprintf("%s/study.json", dir);
    json_error_t je;
    *out = json_load_file(path, 0, &je);
    int rc = 0;
    if (!*out) {
        jsonx_error_format(err, errlen, path, &je);
        rc = access(path, R_OK) ? -ENOENT : -EINVAL;
    } else if (!json_is_array(json_object_get(*out, "setups")) ||
               !json_is_array(json_object_get(*out, "rows"))) {
        snprintf(err, errlen, "%s: not a testbench study (no setups and rows)", path);
        json_decref(*out);
        *out = NULL;
        rc = -EINVAL;
    }
    free(path);
    return rc;
}
