/*
 * test_study.c - `testbench study` end to end through the real binary: a 2 x 2 study on the
 * sim backend (every study.csv column, predicted against measured, capacity against the plan),
 * a setup that does not fit is not launched, a server that fails to start is classified and the
 * study goes on, Ctrl-C mid-study then --resume measures only what remains, and no server
 * process outlives the study. The capacity search itself is checked against a known threshold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/stats.h"
#include "core/xalloc.h"
#include "study/capacity.h"
#include "study/study_files.h"
#include "tb_proc.h"

static int setup(void **state)
{
    return tb_dir_setup(state, "tb_study");
}

static int teardown(void **state)
{
    return tb_dir_teardown(state);
}

static int run_study_until(const char *const *argv, const char *log, bool (*interrupt)(void *),
                           void *ctx, bool *sent)
{
    return tb_run_logged(TB_BINARY, argv, log, interrupt, ctx, SIGINT, sent);
}

static int run_study(const char *const *argv, const char *log)
{
    return run_study_until(argv, log, NULL, NULL, NULL);
}

static char *study_dir(const char *dir, const char *name)
{
    return tb_study_dir(dir, name);
}

static json_t *load_study(const char *sdir)
{
    json_t *doc = NULL;
    char err[512];
    assert_int_equal(study_files_read(sdir, &doc, err, sizeof(err)), 0);
    return doc;
}

/* No process with the pid of any started server remains (a zombie would still answer kill 0:
 * the study reaps its children, so none may). */
static void servers_gone(const json_t *doc)
{
    size_t i;
    const json_t *s;
    int seen = 0;
    json_array_foreach(json_object_get(doc, "setups"), i, s)
    {
        const json_t *pid = json_object_get(s, "server_pid");
        if (!json_is_integer(pid) || json_integer_value(pid) <= 0)
            continue;
        seen++;
        errno = 0;
        assert_int_equal(kill((pid_t)json_integer_value(pid), 0), -1);
        assert_int_equal(errno, ESRCH);
    }
    assert_true(seen > 0);
}

/* Users in conversation (the default population), with short think times so that a probe
 * lasts a few seconds: the plan must model them, and the search must start at its answer. The
 * objectives are judged at p50, which 6 requests decide (p95 needs 72 and users in
 * conversation run to its cap: 4 x 72 by default); the verdict's confidence at p95 is
 * test_verdict_e2e's subject, what is checked here is the study's answer against the plan. */
static const char quick_study[] =
    "study:\n"
    "  name: two_by_two\n"
    "  gpu: rtx-pro-6000\n"
    "  users: [10]\n"
    "  max_users: 64\n"
    "  requests_per_user: 2\n"
    "  min_requests: 10\n"
    "  max_requests: 24\n"
    "setups:\n"
    "  grid:\n"
    "    model: [meta-llama/Llama-3.1-8B-Instruct]\n"
    "    quantization: [none, fp8]\n"
    "    max_model_len: [4096, 8192]\n"
    "workloads:\n"
    "  - name: chat\n"
    "benchmark:\n"
    "  output_dir: OUT\n"
    "model:\n"
    "  name: meta-llama/Llama-3.1-8B-Instruct\n"
    "requests:\n"
    "  prompt_tokens_min: 512\n"
    "  prompt_tokens_max: 1536\n"
    "  completion_tokens: 32\n"
    "  session: {turns: 2, think_time_s: 0.2, message_tokens_min: 32,\n"
    "            message_tokens_max: 128}\n"
    "slo:\n"
    "  profile: interactive\n"
    "  percentile: 50\n"
    "telemetry:\n"
    "  sample_interval_sec: 0.2\n";

/* Writes a study file with OUT replaced by dir/out. */
static char *write_study(const char *dir, const char *name, const char *text)
{
    char *out = xasprintf("%s/out", dir);
    size_t cap = strlen(text) + strlen(out) * 4 + 1;
    char *body = xcalloc(1, cap);
    size_t len = 0;
    for (const char *p = text; *p;) {
        if (strncmp(p, "OUT", 3) == 0) {
            memcpy(body + len, out, strlen(out));
            len += strlen(out);
            p += 3;
        } else {
            body[len++] = *p++;
        }
    }
    char *path = tb_write(dir, name, body);
    free(body);
    free(out);
    return path;
}

static double median_abs(struct dvec *d)
{
    for (size_t i = 0; i < d->n; i++)
        d->v[i] = fabs(d->v[i]);
    sort_doubles(d->v, d->n);
    return percentile_sorted(d->v, d->n, 0.5);
}

static void sim_study_answers_and_agrees_with_the_plan(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *cfg = write_study(f->dir, "study.yaml", quick_study);
    char *log = xasprintf("%s/log.txt", f->dir);
    setenv("TESTBENCH_NVML_LIB", NVML_DOUBLE_PATH, 1);
    const char *argv[] = {"testbench", "study", "--config", cfg, NULL};
    int rc = run_study(argv, log);
    unsetenv("TESTBENCH_NVML_LIB");
    char *out = tb_read(log);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    /* The plan is printed before anything is measured, the guidance matrix at the end. */
    char *plan = strstr(out, "Predicted before any server starts");
    char *first_probe = strstr(out, "users: TTFT p95");
    assert_non_null(plan);
    assert_non_null(first_probe);
    assert_true(plan < first_probe);
    /* The matrix says what it rests on, above it: the workload with its population, and the
     * SLO with its profile and percentile. */
    char *matrix = strstr(out, "What 10 users get on rtx-pro-6000, workload chat: users in "
                               "conversation (population sessions: 2 turns");
    assert_non_null(matrix);
    char *slo_line =
        strstr(matrix, "\nSLO interactive (changed): TTFT p50 <= 500 ms, TPOT p50 <= 30 ms\n");
    char *mheader = strstr(matrix, "model / weights / KV cache");
    assert_non_null(slo_line);
    assert_non_null(mheader);
    assert_true(slo_line < mheader);

    char *sdir = study_dir(f->dir, "two_by_two");
    assert_non_null(sdir);
    json_t *doc = load_study(sdir);
    json_t *rows = json_object_get(doc, "rows");
    char *csv_path = xasprintf("%s/study.csv", sdir);
    char *csv = tb_read(csv_path);
    assert_non_null(csv);
    /* The header is the documented column list; one line per row. */
    char header[4096] = "";
    for (size_t c = 0; c < study_csv_n_columns; c++) {
        strcat(header, c ? "," : "");
        strcat(header, study_csv_columns[c]);
    }
    strcat(header, "\n");
    assert_int_equal(strncmp(csv, header, strlen(header)), 0);
    size_t lines = 0;
    for (const char *p = csv; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, json_array_size(rows) + 1);

    /* Four setups, each measured at 10 users (target) plus search probes. */
    struct dvec ttft, ttft50, tpot, tps;
    dvec_init(&ttft);
    dvec_init(&ttft50);
    dvec_init(&tpot);
    dvec_init(&tps);
    size_t targets = 0, i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        assert_string_equal(json_string_value(json_object_get(r, "status")), "measured");
        /* Every column is present; measured rows fill every one but reason, max_num_seqs and
         * side_by_side (empty: measured alone) and an interval's end the probe's sample was too
         * small for (a clear miss decided by the early look of ten requests has no upper end). */
        for (size_t c = 0; c < study_csv_n_columns; c++) {
            const char *col = study_csv_columns[c];
            json_t *v = json_object_get(r, col);
            assert_non_null(v);
            if (strcmp(col, "reason") == 0 || strcmp(col, "max_num_seqs") == 0 ||
                strcmp(col, "side_by_side") == 0 || strcmp(col, "slo_ci_high_ms") == 0 ||
                strcmp(col, "slo_ci_low_ms") == 0)
                continue;
            if (json_is_null(v))
                fprintf(stderr, "row %zu: %s is null\n", i, col);
            assert_false(json_is_null(v));
        }
        /* The server's own KV figure is the plan's (the simulator runs the same engine). */
        assert_int_equal(json_integer_value(json_object_get(r, "pred_kv_capacity_tokens")),
                         json_integer_value(json_object_get(r, "meas_kv_capacity_tokens")));
        /* Energy per token comes from the NVML double's counter. */
        assert_true(json_number_value(json_object_get(r, "energy_j_per_token")) > 0);
        dvec_push(&ttft, json_number_value(json_object_get(r, "err_ttft_p95_pct")));
        dvec_push(&ttft50, json_number_value(json_object_get(r, "err_ttft_p50_pct")));
        dvec_push(&tpot, json_number_value(json_object_get(r, "err_tpot_p50_pct")));
        dvec_push(&tps, json_number_value(json_object_get(r, "err_output_tps_pct")));
        /* The capacity search, in sessions mode, lands near the plan's answer (users in
         * conversation draw their own lengths and think times: a count either side of the
         * boundary can flip; the plan's figures are bench_sessions'). */
        long pm = (long)json_integer_value(json_object_get(r, "pred_max_users"));
        long mm = (long)json_integer_value(json_object_get(r, "meas_max_users"));
        long tol = pm / 5 > 2 ? pm / 5 : 2;
        if (labs(pm - mm) > tol)
            fprintf(stderr, "row %zu: capacity planned %ld, measured %ld; the study said:\n%s\n", i,
                    pm, mm, out);
        assert_true(labs(pm - mm) <= tol);
        assert_true(mm >= 1);
        /* Each row names its run files, which exist. */
        char *p = xasprintf("%s/%s", sdir, json_string_value(json_object_get(r, "run_summary")));
        assert_int_equal(access(p, R_OK), 0);
        free(p);
        bool target = strcmp(json_string_value(json_object_get(r, "role")), "target") == 0;
        targets += target;
        /* Each measured cell shows its verdict's evidence: the percentile judged, its
         * confidence interval and the requests judged, as the row records it. */
        const char *ev = json_string_value(json_object_get(r, "slo_evidence"));
        assert_non_null(ev);
        assert_non_null(strstr(ev, "% CI ["));
        char *n_judged = xasprintf(
            ", %lld requests", (long long)json_integer_value(json_object_get(r, "slo_requests")));
        assert_non_null(strstr(ev, n_judged));
        free(n_judged);
        if (target && !strstr(mheader, ev))
            fprintf(stderr, "the matrix lacks \"%s\":\n%s\n", ev, mheader);
        assert_true(!target || strstr(mheader, ev));
    }
    assert_int_equal(targets, 4);
    /* The search starts at the plan's answer: each setup's first search probe is at
     * pred_max_users users (unless that count was a target point, measured already). */
    const char *prev_setup = "";
    json_array_foreach(rows, i, r)
    {
        const char *setup = json_string_value(json_object_get(r, "setup"));
        if (strcmp(json_string_value(json_object_get(r, "role")), "search") != 0 ||
            strcmp(setup, prev_setup) == 0)
            continue;
        prev_setup = setup;
        long pm = (long)json_integer_value(json_object_get(r, "pred_max_users"));
        long users = (long)json_integer_value(json_object_get(r, "users"));
        if (pm != 10 && users != (pm > 0 ? pm : 1))
            fprintf(stderr, "%s: first search probe at %ld users, the plan said %ld\n", setup,
                    users, pm);
        assert_true(pm == 10 || users == (pm > 0 ? pm : 1));
    }
    /* Predicted against measured: the median error over all rows of TTFT p50, TPOT p50 and
     * output tokens/s under 10 % (single points of a few requests vary with where arrivals fall
     * between engine steps); of TTFT p95 under 20 %: a probe judged at p50 sends tens of
     * requests, whose p95 is one of the slowest few (11.9 % seen under ASan on the loaded
     * 2-core box). The sessions workloads' p95 against the plan:
     * plan_models_sessions_like_the_simulator. */
    double e1 = median_abs(&ttft), e0 = median_abs(&ttft50), e2 = median_abs(&tpot),
           e3 = median_abs(&tps);
    fprintf(stderr,
            "median |error|: TTFT p50 %.1f %%, TTFT p95 %.1f %%, TPOT p50 %.1f %%, output tok/s "
            "%.1f %%\n",
            e0, e1, e2, e3);
    assert_true(e0 < 10);
    assert_true(e1 < 20);
    assert_true(e2 < 10);
    assert_true(e3 < 10);
    /* The manifest: all done. */
    char *mpath = xasprintf("%s/manifest.json", sdir);
    json_t *m = json_load_file(mpath, 0, NULL);
    assert_non_null(m);
    assert_int_equal(json_integer_value(json_object_get(m, "done")), 4);
    assert_int_equal(json_integer_value(json_object_get(m, "remaining")), 0);
    servers_gone(doc);
    json_decref(m);
    json_decref(doc);
    dvec_release(&ttft);
    dvec_release(&ttft50);
    dvec_release(&tpot);
    dvec_release(&tps);
    free(mpath);
    free(csv);
    free(csv_path);
    free(sdir);
    free(out);
    free(log);
    free(cfg);
}

/* The command backend: a setup too big for the GPU is never launched (the wrapper would leave
 * a marker), one whose server reports vLLM's KV-cache error is recorded as failed_to_start with
 * the reason, and the next setup is measured. */
static void unfit_and_failing_setups_are_recorded_and_the_study_goes_on(void **state)
{
    struct tb_dir_fixture *f = *state;
    /* The server: a script that marks its launch, plays a vLLM that cannot fit its KV cache
     * for the "broken" setup, and is the simulator otherwise. */
    char *script_text = xasprintf(
        "#!/bin/sh\nid=$1\nshift\ntouch '%s/launched-'\"$id\"\n"
        "case $id in *broken*)\n"
        "  echo \"ValueError: The model's max seq len (8192) is larger than the maximum number of "
        "tokens that can be stored in KV cache (4096). Try increasing gpu_memory_utilization or "
        "decreasing max_model_len when initializing the engine.\" >&2\n  exit 1;;\nesac\n"
        "exec '%s' sim --quiet \"$@\"\n",
        f->dir, TB_BINARY);
    char *script = tb_write(f->dir, "server.sh", script_text);
    assert_int_equal(chmod(script, 0755), 0);
    char *text =
        xasprintf("study:\n"
                  "  name: failures\n"
                  "  users: [2]\n"
                  "  capacity_search: false\n"
                  "  min_requests: 4\n"
                  "backend:\n"
                  "  type: command\n"
                  "  startup_timeout_s: 60\n"
                  "  stop_grace_s: 2\n"
                  "  command: \"%s {id} --port {port} --model {model} {max_model_len_flag} "
                  "{quantization_flag}\"\n"
                  "setups:\n"
                  "  list:\n"
                  "    - {name: huge, model: meta-llama/Llama-3.1-70B-Instruct}\n"
                  "    - {name: broken, model: meta-llama/Llama-3.1-8B-Instruct, "
                  "max_model_len: 8192}\n"
                  "    - {name: fine, model: meta-llama/Llama-3.1-8B-Instruct, "
                  "max_model_len: 4096}\n"
                  "benchmark:\n"
                  "  output_dir: OUT\n"
                  "requests:\n"
                  "  prompt_tokens_min: 256\n"
                  "  prompt_tokens_max: 256\n"
                  "  completion_tokens: 16\n"
                  /* request streams, nothing judged: short probes */
                  "workloads: [{name: default, population: streams}]\n"
                  "slo: {ttft_ms: null, tpot_ms: null}\n",
                  script);
    char *cfg = write_study(f->dir, "study.yaml", text);
    char *log = xasprintf("%s/log.txt", f->dir);
    const char *argv[] = {"testbench", "study", "--config", cfg, NULL};
    int rc = run_study(argv, log);
    char *out = tb_read(log);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    char *sdir = study_dir(f->dir, "failures");
    assert_non_null(sdir);
    json_t *doc = load_study(sdir);
    json_t *setups = json_object_get(doc, "setups");
    assert_int_equal(json_array_size(setups), 3);
    const char *st0 = json_string_value(json_object_get(json_array_get(setups, 0), "status"));
    const char *st1 = json_string_value(json_object_get(json_array_get(setups, 1), "status"));
    const char *st2 = json_string_value(json_object_get(json_array_get(setups, 2), "status"));
    assert_string_equal(st0, "does_not_fit");
    assert_string_equal(st1, "failed_to_start");
    if (strcmp(st2, "done") != 0)
        fprintf(stderr, "%s\n", json_dumps(json_array_get(setups, 2), JSON_INDENT(1)));
    assert_string_equal(st2, "done");
    const char *why1 = json_string_value(json_object_get(json_array_get(setups, 1), "reason"));
    assert_non_null(strstr(why1, "kv_too_small"));
    const char *why0 = json_string_value(json_object_get(json_array_get(setups, 0), "reason"));
    assert_non_null(strstr(why0, "GiB"));
    /* Not launched: no marker for the 70B setup; the other two were started. */
    char *m0 = xasprintf("%s/launched-s01-huge", f->dir);
    char *m1 = xasprintf("%s/launched-s02-broken", f->dir);
    char *m2 = xasprintf("%s/launched-s03-fine", f->dir);
    assert_int_equal(access(m0, F_OK), -1);
    assert_int_equal(access(m1, F_OK), 0);
    assert_int_equal(access(m2, F_OK), 0);
    /* study.csv rows say the same. */
    size_t i;
    json_t *r;
    int unfit = 0, failed = 0, measured = 0;
    json_array_foreach(json_object_get(doc, "rows"), i, r)
    {
        const char *s = json_string_value(json_object_get(r, "status"));
        unfit += strcmp(s, "does_not_fit") == 0;
        failed += strcmp(s, "failed_to_start") == 0;
        measured += strcmp(s, "measured") == 0;
        if (strcmp(s, "failed_to_start") == 0)
            assert_non_null(strstr(json_string_value(json_object_get(r, "reason")), "KV"));
    }
    assert_int_equal(unfit, 1);
    assert_int_equal(failed, 1);
    assert_int_equal(measured, 1);
    servers_gone(doc);
    json_decref(doc);
    free(m0);
    free(m1);
    free(m2);
    free(sdir);
    free(out);
    free(log);
    free(cfg);
    free(text);
    free(script);
    free(script_text);
}

static const char resume_study[] = "study:\n"
                                   "  name: resumable\n"
                                   "  users: [4]\n"
                                   "  capacity_search: false\n"
                                   "  min_requests: 8\n"
                                   "setups:\n"
                                   "  grid:\n"
                                   "    model: [meta-llama/Llama-3.1-8B-Instruct]\n"
                                   "    max_model_len: [2048, 4096, 8192]\n"
                                   "benchmark:\n"
                                   "  output_dir: OUT\n"
                                   "requests:\n"
                                   "  prompt_tokens_min: 512\n"
                                   "  prompt_tokens_max: 512\n"
                                   "  completion_tokens: 48\n"
                                   /* Request streams, nothing judged: each probe sends
                                    * min_requests after its warm-up (with an SLO, the 72 a
                                    * p95 verdict needs; users in conversation to a cap of
                                    * 288: minutes for what this test checks). */
                                   "workloads: [{name: default, population: streams}]\n"
                                   "slo: {ttft_ms: null, tpot_ms: null}\n";

static int count_files(const char *dir, const char *suffix)
{
    char *cmd = xasprintf("ls %s 2>/dev/null | grep -c -- '%s$'", dir, suffix);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p && fscanf(p, "%d", &n) != 1)
        n = 0;
    if (p)
        pclose(p);
    free(cmd);
    return n;
}

struct first_done {
    const char *dir;
    char *sdir; /* found once the study made it */
};

static bool first_setup_done(void *ctx)
{
    struct first_done *w = ctx;
    if (!w->sdir)
        w->sdir = study_dir(w->dir, "resumable");
    if (!w->sdir)
        return false;
    char *mp = xasprintf("%s/manifest.json", w->sdir);
    json_t *m = json_load_file(mp, 0, NULL);
    free(mp);
    bool done = m && json_integer_value(json_object_get(m, "done")) >= 1;
    json_decref(m);
    return done;
}

static void ctrl_c_then_resume_measures_only_what_remains(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *cfg = write_study(f->dir, "study.yaml", resume_study);
    char *log = xasprintf("%s/log.txt", f->dir);
    const char *argv[] = {"testbench", "study", "--config", cfg, NULL};
    /* Ctrl-C once the first setup is done (the manifest says so). */
    struct first_done w = {.dir = f->dir};
    bool sent = false;
    int rc0 = run_study_until(argv, log, first_setup_done, &w, &sent);
    assert_true(sent);
    assert_int_equal(rc0, 130);
    char *sdir = w.sdir;
    json_t *doc = load_study(sdir);
    servers_gone(doc);
    json_t *setups = json_object_get(doc, "setups");
    assert_string_equal(json_string_value(json_object_get(json_array_get(setups, 0), "status")),
                        "done");
    const char *second = json_string_value(json_object_get(json_array_get(setups, 1), "status"));
    assert_string_not_equal(second, "done");
    json_decref(doc);
    /* The first setup's files, as they are now. */
    char *d1 = xasprintf("%s/s01-llama-3.1-8b-instruct-native-kvauto-2k-g0.90", sdir);
    assert_int_equal(count_files(d1, "_detailed.json"), 1);
    char *det = tb_find(d1, "_detailed.json");
    struct stat before;
    assert_int_equal(stat(det, &before), 0);

    const char *rargv[] = {"testbench", "study", "--resume", sdir, NULL};
    int rc = run_study(rargv, log);
    char *out = tb_read(log);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "done earlier, skipped"));
    /* Only the remaining setups ran: the first one's folder is as it was. */
    assert_int_equal(count_files(d1, "_detailed.json"), 1);
    struct stat after;
    assert_int_equal(stat(det, &after), 0);
    assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    doc = load_study(sdir);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "setups"), i, s)
        assert_string_equal(json_string_value(json_object_get(s, "status")), "done");
    /* One target row per setup, none twice. */
    assert_int_equal(json_array_size(json_object_get(doc, "rows")), 3);
    servers_gone(doc);
    json_decref(doc);
    free(out);
    free(det);
    free(d1);
    free(sdir);
    free(log);
    free(cfg);
}

static void bad_study_file_names_file_line_and_key(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *cfg = tb_write(f->dir, "bad.yaml",
                         "study:\n  name: x\nsetups:\n  grid:\n    model: [m]\n"
                         "    max_model_len: [4096, lots]\nbackend:\n  type: docker\n");
    char *log = xasprintf("%s/log.txt", f->dir);
    const char *argv[] = {"testbench", "validate", "--config", cfg, NULL};
    assert_int_equal(run_study(argv, log), 2);
    char *out = tb_read(log);
    char *want = xasprintf("%s:6:27: setups.grid.max_model_len[1]: expected an integer", cfg);
    if (!strstr(out, want))
        fprintf(stderr, "%s\n", out);
    assert_non_null(strstr(out, want));
    free(out);
    free(want);
    free(cfg);
    cfg =
        tb_write(f->dir, "bad2.yaml",
                 "study:\n  name: x\nsetups:\n  grid:\n    model: [m]\nbackend:\n  type: podman\n");
    const char *argv2[] = {"testbench", "study", "--config", cfg, NULL};
    assert_int_equal(run_study(argv2, log), 2);
    out = tb_read(log);
    want = xasprintf("%s:7:9: backend.type: unknown backend \"podman\"", cfg);
    if (!strstr(out, want))
        fprintf(stderr, "%s\n", out);
    assert_non_null(strstr(out, want));
    free(out);
    free(want);
    free(log);
    free(cfg);
}

/* The plan replays each probe's drawn lengths: two workloads with the same mean lengths, one
 * fixed, one varied (uniform prompts, lognormal outputs), plan alike only if lengths are
 * averaged. With the draws, the fixed users stay in step (eight 1,000-token prefills land in
 * one step) and the varied ones do not, so the varied TTFT p95 is clearly lower. */
static double plan_only_ttft_p95(const char *out, const char *workload)
{
    char key[64];
    snprintf(key, sizeof(key), " %s ", workload);
    const char *p = strstr(strstr(out, "KV tokens"), key);
    assert_non_null(p);
    long kv = 0;
    double ttft = 0;
    char name[32], unit[8];
    assert_int_equal(sscanf(p, "%31s %ld %lf %7s", name, &kv, &ttft, unit), 4);
    return strcmp(unit, "s") == 0 ? ttft * 1e3 : ttft;
}

static void plan_only_replays_the_workloads_drawn_lengths(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *fx = tb_write(f->dir, "fixed.yaml",
                        "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                        "requests: {prompt_tokens_min: 1000, prompt_tokens_max: 1000,\n"
                        "           completion_tokens: 100}\n");
    char *vr = tb_write(f->dir, "varied.yaml",
                        "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                        "requests:\n  prompt_tokens_min: 100\n  prompt_tokens_max: 1900\n"
                        "  completion_tokens: 100\n"
                        "  output_tokens: {distribution: lognormal, mean: 100, stddev: 100}\n");
    char *cfg = write_study(f->dir, "study.yaml",
                            "study:\n  name: lengths\n  gpu: rtx-pro-6000\n  users: [8]\n"
                            "  requests_per_user: 4\n  min_requests: 20\n"
                            "setups:\n  grid:\n    model: [meta-llama/Llama-3.1-8B-Instruct]\n"
                            "    max_model_len: [4096]\n"
                            "workloads:\n"
                            "  - {name: fixed, config: fixed.yaml, population: streams}\n"
                            "  - {name: varied, config: varied.yaml, population: streams}\n"
                            "benchmark:\n  output_dir: OUT\n"
                            "model:\n  name: meta-llama/Llama-3.1-8B-Instruct\n");
    char *log = xasprintf("%s/log.txt", f->dir);
    const char *argv[] = {"testbench", "study", "--config", cfg, "--plan-only", NULL};
    assert_int_equal(run_study(argv, log), 0);
    char *out = tb_read(log);
    double fixed = plan_only_ttft_p95(out, "fixed"), varied = plan_only_ttft_p95(out, "varied");
    fprintf(stderr, "TTFT p95: fixed %.0f ms, varied %.0f ms\n", fixed, varied);
    assert_true(fixed > 0 && varied > 0);
    assert_true(varied < 0.8 * fixed);
    free(out);
    free(log);
    free(cfg);
    free(vr);
    free(fx);
}

/* The plan models users in conversation as the simulator serves them: three session workloads
 * (short chat, long-context chat, RAG-like with a shared document prefix; tests/data/sessions/)
 * measured at 8 users. The simulator runs in real time, so a busy 2-core machine delays some
 * of its requests: a p95 of 48 requests is its third slowest, and one hiccup moves it by tens
 * of percent. So each median (TTFT p50, TPOT p50) must be within 25 % of the plan, each TTFT
 * p95 within 60 %, and the mean of the nine errors within 15 %; the figures and the 10 %
 * target are build/bench_sessions' (the median over repeated runs). */
static void plan_models_sessions_like_the_simulator(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *cfg = xasprintf("%s/tests/data/sessions/study.yaml", TB_SOURCE_DIR);
    char *out_dir = xasprintf("%s/out", f->dir);
    char *log = xasprintf("%s/log.txt", f->dir);
    const char *argv[] = {"testbench", "study", "--config", cfg, "--output-dir", out_dir, NULL};
    int rc = run_study(argv, log);
    char *out = tb_read(log);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    char *sdir = study_dir(f->dir, "sessions_agreement");
    assert_non_null(sdir);
    json_t *doc = load_study(sdir);
    static const char *const workloads[] = {"short_chat", "long_chat", "rag"};
    static const char *const errs[] = {"err_ttft_p50_pct", "err_ttft_p95_pct", "err_tpot_p50_pct"};
    size_t seen = 0, i, n = 0;
    double sum = 0;
    json_t *r;
    json_array_foreach(json_object_get(doc, "rows"), i, r)
    {
        const char *wl = json_string_value(json_object_get(r, "workload"));
        assert_string_equal(json_string_value(json_object_get(r, "status")), "measured");
        for (size_t k = 0; k < 3; k++) {
            json_t *e = json_object_get(r, errs[k]);
            assert_true(json_is_number(e));
            double x = fabs(json_number_value(e));
            fprintf(stderr, "%s %s %+.1f %%\n", wl, errs[k], json_number_value(e));
            assert_true(x < (k == 1 ? 60 : 25));
            sum += x;
            n++;
        }
        for (size_t w = 0; w < 3; w++)
            seen += strcmp(wl, workloads[w]) == 0;
    }
    assert_int_equal(seen, 3);
    fprintf(stderr, "mean |error| %.1f %% over %zu\n", sum / (double)n, n);
    assert_true(sum / (double)n < 15);
    json_decref(doc);
    free(sdir);
    free(out);
    free(log);
    free(out_dir);
    free(cfg);
}

/* plan and study mean the same thing by window and prompt: the same setup (window 8192) and
 * workload (first prompts of 1,000 tokens, one-turn conversations, fixed think time) give the
 * same prompt, window and predicted TTFT in `plan --json` and in the study's plan. */
static void plan_and_study_agree_on_prompt_and_window(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *cfg = write_study(f->dir, "study.yaml",
                            "study:\n  name: same\n  gpu: rtx-pro-6000\n  users: [12]\n"
                            "  requests_per_user: 2\n  min_requests: 2\n"
                            "setups:\n  grid:\n    model: [meta-llama/Llama-3.1-8B-Instruct]\n"
                            "    max_model_len: [8192]\n"
                            "benchmark:\n  output_dir: OUT\n"
                            "model:\n  name: meta-llama/Llama-3.1-8B-Instruct\n"
                            "requests:\n  prompt_tokens_min: 1000\n  prompt_tokens_max: 1000\n"
                            "  completion_tokens: 100\n"
                            "  session: {turns: 1, think_time_distribution: fixed, "
                            "think_time_s: 0.5}\n");
    char *log = xasprintf("%s/log.txt", f->dir);
    const char *argv[] = {"testbench", "study", "--config", cfg, "--plan-only", NULL};
    assert_int_equal(run_study(argv, log), 0);
    char *study = tb_read(log);
    char *plan_log = xasprintf("%s/plan.txt", f->dir);
    const char *pargv[] = {
        "testbench", "plan", "--gpu", "rtx-pro-6000", "--model", "meta-llama/Llama-3.1-8B-Instruct",
        "--max-model-len", "8192", "--prompt-tokens", "1000", "--output-tokens", "100", "--users",
        "12", "--turns", "1", "--think-time-distribution", "fixed", "--think-time-s", "0.5",
        /* The probe's: 72 requests judged (the fewest that decide a p95
         * verdict at 95 %) after a warm-up of one round of its 12 users. */
        "--requests", "84", "--warmup-requests", "12", "--json", NULL};
    assert_int_equal(run_study(pargv, plan_log), 0);
    char *plan = tb_read(plan_log);
    json_t *pj = json_loads(strchr(plan, '{'), JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(pj);
    /* The prompt is the workload's, the window the setup's: neither fills the other. */
    assert_int_equal(json_integer_value(json_object_get(pj, "prompt_tokens")), 1000);
    assert_int_equal(json_integer_value(json_object_get(pj, "max_model_len")), 8192);
    assert_string_equal(json_string_value(json_object_get(pj, "population")), "sessions");
    assert_non_null(strstr(study, "first prompts 1000-1000 tokens"));
    assert_non_null(strstr(study, "window 8192"));
    /* The same users, lengths and think times: the same prediction. */
    const char *row = strstr(strstr(study, "KV tokens"), " default ");
    assert_non_null(row);
    long kv = 0;
    double ttft = 0;
    char name[32], unit[8];
    assert_int_equal(sscanf(row, "%31s %ld %lf %7s", name, &kv, &ttft, unit), 4);
    double want = json_number_value(json_object_get(pj, "ttft_p95_ms"));
    fprintf(stderr, "TTFT p95: study %.1f %s, plan %.1f ms\n", ttft, unit, want);
    assert_string_equal(unit, "ms");
    assert_true(fabs(ttft - want) <= 0.05 * want + 0.1);
    assert_int_equal(kv, json_integer_value(json_object_get(pj, "kv_capacity_tokens")));
    json_decref(pj);
    free(plan);
    free(plan_log);
    free(study);
    free(log);
    free(cfg);
}

/* docs/STUDY.md lists every study.csv column (first cell of its table rows, backticked names),
 * and nothing else. */
static void study_csv_columns_are_documented(void **state)
{
    (void)state;
    char *doc = tb_read(TB_SOURCE_DIR "/docs/STUDY.md");
    assert_non_null(doc);
    char *table = strstr(doc, "### study.csv");
    assert_non_null(table);
    char *end = strstr(table, "\n## ");
    if (end)
        *end = '\0';
    size_t documented = 0;
    for (char *line = strstr(table, "\n| `"); line; line = strstr(line + 1, "\n| `")) {
        char *cell_end = strstr(line + 3, " |");
        for (char *p = strchr(line + 2, '`'); p && p < cell_end; p = strchr(p + 1, '`')) {
            char *q = strchr(p + 1, '`');
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(q - p - 1), p + 1);
            bool known = false;
            for (size_t c = 0; c < study_csv_n_columns; c++)
                known |= strcmp(study_csv_columns[c], name) == 0;
            if (!known)
                fprintf(stderr, "documented but not written: %s\n", name);
            assert_true(known);
            documented++;
            p = q;
        }
    }
    assert_int_equal(documented, study_csv_n_columns);
    free(doc);
}

/* ---- the capacity search against a known threshold ---- */

struct threshold {
    int limit; /* users <= limit meet the SLO */
    int calls;
    int stop_after; /* 0 = never */
};

static int probe_threshold(void *ctx, int users, bool *met)
{
    struct threshold *t = ctx;
    t->calls++;
    *met = users <= t->limit;
    return t->stop_after && t->calls >= t->stop_after ? 130 : 0;
}

static void capacity_search_finds_the_threshold(void **state)
{
    (void)state;
    for (int limit = 0; limit <= 70; limit++) {
        const int starts[] = {1, limit > 0 ? limit : 1, limit + 1, 3 * limit + 2, 64};
        for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
            struct threshold t = {.limit = limit};
            struct capacity_result r;
            assert_int_equal(capacity_search(starts[s], 64, probe_threshold, &t, &r), 0);
            int want = limit > 64 ? 64 : limit;
            assert_int_equal(r.max_users, want);
            assert_int_equal(r.probes, t.calls);
            assert_int_equal(r.at_ceiling, limit >= 64);
            /* Logarithmic in the distance from the guess, never a scan. */
            assert_true(r.probes <= 16);
        }
    }
    /* A right guess costs two probes: the answer and one more user. */
    struct threshold t = {.limit = 21};
    struct capacity_result r;
    assert_int_equal(capacity_search(21, 256, probe_threshold, &t, &r), 0);
    assert_int_equal(r.probes, 2);
    /* A probe that says stop ends the search with its code. */
    struct threshold stop = {.limit = 30, .stop_after = 2};
    assert_int_equal(capacity_search(1, 256, probe_threshold, &stop, &r), 130);
    assert_int_equal(stop.calls, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(capacity_search_finds_the_threshold),
        cmocka_unit_test(study_csv_columns_are_documented),
        cmocka_unit_test_setup_teardown(bad_study_file_names_file_line_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(plan_only_replays_the_workloads_drawn_lengths, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(plan_and_study_agree_on_prompt_and_window, setup, teardown),
        cmocka_unit_test_setup_teardown(plan_models_sessions_like_the_simulator, setup, teardown),
        cmocka_unit_test_setup_teardown(sim_study_answers_and_agrees_with_the_plan, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unfit_and_failing_setups_are_recorded_and_the_study_goes_on,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(ctrl_c_then_resume_measures_only_what_remains, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
