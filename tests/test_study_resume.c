/*
 * test_study_resume.c - `testbench study --resume` never loses or mixes what a study measured,
 * through the real binary: the recorded backend is used again (a study file that says docker,
 * started with --backend sim, resumes on sim) and a different one is refused without
 * --allow-backend-change; points measured before an interruption are kept and not measured
 * again; a changed study file is refused, naming the difference; rows read back without their
 * fields are dropped and measured again; one process per folder; an interruption while
 * planning (SIGHUP, as from a dropped SSH session) leaves a folder --resume continues; start
 * failures of ours are retried, crashes only with --retry-failed, the server's answers never;
 * what would fail only after a launch (a template's placeholder, a workload name) is refused
 * before anything starts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/xalloc.h"
#include "study/study_files.h"
#include "tb_proc.h"

static int setup(void **state)
{
    return tb_dir_setup(state, "tb_resume");
}

static int teardown(void **state)
{
    return tb_dir_teardown(state);
}

/* A study file with OUT replaced by dir/out (the caller frees the path). */
static char *write_study(const char *dir, const char *name, const char *text)
{
    char *out = xasprintf("%s/out", dir);
    char *body = xcalloc(1, strlen(text) + 4 * strlen(out) + 1);
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

static int study(const char *log, const char *a1, const char *a2, const char *a3, const char *a4,
                 const char *a5)
{
    const char *argv[] = {"testbench", "study", a1, a2, a3, a4, a5, NULL};
    return tb_run_logged(TB_BINARY, argv, log, NULL, NULL, 0, NULL);
}

static json_t *load_study(const char *sdir)
{
    json_t *doc = NULL;
    char err[512];
    assert_int_equal(study_files_read(sdir, &doc, err, sizeof(err)), 0);
    return doc;
}

static const char *setup_status(const json_t *doc, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "setups"), i), "status"));
}

/* Rows of setup number `si` (0-based, by the id's "s0N-" prefix) at `users`. */
static int rows_at(const json_t *doc, int si, int users, const char *status)
{
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "s%02d-", si + 1);
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, "rows"), i, r)
    {
        if (strncmp(json_string_value(json_object_get(r, "setup")), prefix, 4) == 0 &&
            json_integer_value(json_object_get(r, "users")) == users &&
            (!status || strcmp(json_string_value(json_object_get(r, "status")), status) == 0))
            n++;
    }
    return n;
}

static const json_t *row_at(const json_t *doc, int si, int users)
{
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "s%02d-", si + 1);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, "rows"), i, r)
    {
        if (strncmp(json_string_value(json_object_get(r, "setup")), prefix, 4) == 0 &&
            json_integer_value(json_object_get(r, "users")) == users)
            return r;
    }
    return NULL;
}

/* The study file says docker (an image no registry has): only the recorded --backend sim can
 * measure it. Two setups, two user counts each. */
static const char two_setups[] = "study:\n"
                                 "  name: NAME\n"
                                 "  users: [2, 4]\n"
                                 "  capacity_search: false\n"
                                 "  requests_per_user: 2\n"
                                 "  min_requests: 4\n"
                                 "backend:\n"
                                 "  type: docker\n"
                                 "  image: testbench-no-such-image:0\n"
                                 "  startup_timeout_s: 60\n"
                                 "  stop_grace_s: 2\n"
                                 "setups:\n"
                                 "  grid:\n"
                                 "    model: [meta-llama/Llama-3.1-8B-Instruct]\n"
                                 "    max_model_len: [2048, 4096]\n"
                                 "benchmark:\n"
                                 "  output_dir: OUT\n"
                                 "requests:\n"
                                 "  prompt_tokens_min: 256\n"
                                 "  prompt_tokens_max: 256\n"
                                 "  completion_tokens: 32\n"
                                 /* Request streams, nothing judged: the subject is the
                                  * resume, not the population or a verdict. */
                                 "workloads: [{name: default, population: streams}]\n"
                                 "slo: {ttft_ms: null, tpot_ms: null}\n";

static char *named(const char *text, const char *name)
{
    const char *at = strstr(text, "NAME");
    return xasprintf("%.*s%s%s", (int)(at - text), text, name, at + 4);
}

struct watch {
    const char *log;
};

/* The second setup has measured its first point (the study prints a line per point). */
static bool second_setup_measured_once(void *ctx)
{
    const struct watch *w = ctx;
    char *text = tb_read(w->log);
    const char *second = text ? strstr(text, "[2/2]") : NULL;
    bool yes = second && strstr(second, " users: TTFT");
    free(text);
    return yes;
}

/* Interrupted by sig (SIGINT: Ctrl-C, the study stops cleanly; SIGKILL: no chance to save, as
 * in a power cut or an OOM kill), then resumed plainly. */
static void interrupted_then_resumed(struct tb_dir_fixture *f, int sig)
{
    char *text = named(two_setups, "kept");
    char *cfg = write_study(f->dir, "study.yaml", text);
    char *log = xasprintf("%s/log.txt", f->dir);
    const char *argv[] = {"testbench", "study", "--config", cfg, "--backend", "sim", NULL};
    struct watch w = {log};
    bool sent = false;
    int rc = tb_run_logged(TB_BINARY, argv, log, second_setup_measured_once, &w, sig, &sent);
    assert_true(sent);
    assert_int_equal(rc, sig == SIGKILL ? 128 + SIGKILL : 130);
    char *sdir = tb_study_dir(f->dir, "kept");
    assert_non_null(sdir);
    json_t *doc = load_study(sdir);
    assert_string_equal(setup_status(doc, 0), "done");
    /* Killed outright, the setup had no chance to say it was interrupted. */
    assert_string_equal(setup_status(doc, 1), sig == SIGKILL ? "measuring" : "interrupted");
    assert_string_equal(json_string_value(json_object_get(doc, "backend")), "sim");
    /* The points the second setup measured before the interruption (at least the first; the
     * second too when the signal came as it ended), their files as they are now. */
    char *kept[2] = {NULL, NULL};
    struct stat before[2];
    int n_kept = 0;
    for (int k = 0; k < 2; k++) {
        if (rows_at(doc, 1, 2 + 2 * k, "measured") != 1)
            continue;
        kept[k] =
            xstrdup(json_string_value(json_object_get(row_at(doc, 1, 2 + 2 * k), "run_detailed")));
        char *p = xasprintf("%s/%s", sdir, kept[k]);
        assert_int_equal(stat(p, &before[k]), 0);
        free(p);
        n_kept++;
    }
    assert_non_null(kept[0]);
    json_decref(doc);

    /* A plain --resume: the recorded backend, not the file's docker; the points kept. */
    rc = study(log, "--resume", sdir, NULL, NULL, NULL);
    char *out = tb_read(log);
    char *said = xasprintf("%d point%s measured before the interruption, kept", n_kept,
                           n_kept == 1 ? "" : "s");
    if (rc != 0 || !strstr(out, said))
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "backend sim (recorded)"));
    assert_non_null(strstr(out, said));
    assert_null(strstr(out, "docker"));
    free(said);
    doc = load_study(sdir);
    assert_string_equal(setup_status(doc, 0), "done");
    assert_string_equal(setup_status(doc, 1), "done");
    /* One row per setup and user count; the kept ones unchanged, their files untouched. */
    for (int si = 0; si < 2; si++)
        for (int u = 2; u <= 4; u += 2)
            assert_int_equal(rows_at(doc, si, u, "measured"), 1);
    for (int k = 0; k < 2; k++) {
        if (!kept[k])
            continue;
        assert_string_equal(
            json_string_value(json_object_get(row_at(doc, 1, 2 + 2 * k), "run_detailed")), kept[k]);
        char *p = xasprintf("%s/%s", sdir, kept[k]);
        struct stat after;
        assert_int_equal(stat(p, &after), 0);
        assert_int_equal(before[k].st_mtim.tv_nsec, after.st_mtim.tv_nsec);
        free(p);
        free(kept[k]);
    }
    json_decref(doc);
    free(out);
    free(sdir);
    free(log);
    free(cfg);
    free(text);
}

/* One setup, one user count: a finished folder in seconds. */
static const char one_setup[] = "study:\n"
                                "  name: NAME\n"
                                "  users: [2]\n"
                                "  capacity_search: false\n"
                                "  min_requests: 4\n"
                                "backend:\n"
                                "  type: sim\n"
                                "  stop_grace_s: 2\n"
                                "setups:\n"
                                "  grid:\n"
                                "    model: [meta-llama/Llama-3.1-8B-Instruct]\n"
                                "    max_model_len: [2048]\n"
                                "benchmark:\n"
                                "  output_dir: OUT\n"
                                "requests:\n"
                                "  prompt_tokens_min: 128\n"
                                "  prompt_tokens_max: 128\n"
                                "  completion_tokens: 16\n"
                                "workloads: [{name: default, population: streams}]\n"
                                "slo: {ttft_ms: null, tpot_ms: null}\n";

static void resume_refuses_another_backend_or_study_and_repairs_bad_rows(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *text = named(one_setup, "guarded");
    char *cfg = write_study(f->dir, "study.yaml", text);
    char *log = xasprintf("%s/log.txt", f->dir);
    assert_int_equal(study(log, "--config", cfg, NULL, NULL, NULL), 0);
    char *sdir = tb_study_dir(f->dir, "guarded");
    assert_non_null(sdir);
    char *json_path = xasprintf("%s/study.json", sdir);
    char *was = tb_read(json_path);

    /* Another backend: refused, nothing written. */
    assert_int_equal(study(log, "--resume", sdir, "--backend", "docker", NULL), 2);
    char *out = tb_read(log);
    assert_non_null(strstr(out, "--allow-backend-change"));
    free(out);
    char *now = tb_read(json_path);
    assert_string_equal(was, now);
    free(now);

    /* Another study (other users): refused with the difference named. */
    char *other_text =
        xasprintf("%.*s[3]%s", (int)(strstr(text, "[2]") - text), text, strstr(text, "[2]") + 3);
    char *other = write_study(f->dir, "other.yaml", other_text);
    assert_int_equal(study(log, "--resume", sdir, "--config", other, NULL), 2);
    out = tb_read(log);
    assert_non_null(strstr(out, "users[0] is 2 there and 3 in the file"));
    free(out);
    now = tb_read(json_path);
    assert_string_equal(was, now);
    free(now);

    /* The backend section may change (how servers start is not what the study is). */
    char *grace_text =
        xasprintf("%.*sstop_grace_s: 3%s", (int)(strstr(text, "stop_grace_s: 2") - text), text,
                  strstr(text, "stop_grace_s: 2") + 15);
    char *grace = write_study(f->dir, "grace.yaml", grace_text);
    assert_int_equal(study(log, "--resume", sdir, "--config", grace, NULL), 0);
    out = tb_read(log);
    assert_non_null(strstr(out, "done earlier, skipped"));
    free(out);

    /* A row without its status (a hand-edited file): dropped, its setup measured again. */
    json_t *doc = load_study(sdir);
    json_object_del(json_array_get(json_object_get(doc, "rows"), 0), "status");
    assert_int_equal(json_dump_file(doc, json_path, 0), 0);
    json_decref(doc);
    assert_int_equal(study(log, "--resume", sdir, NULL, NULL, NULL), 0);
    out = tb_read(log);
    assert_non_null(strstr(out, "has no 'status': dropped; its setup is measured again"));
    free(out);
    doc = load_study(sdir);
    assert_string_equal(setup_status(doc, 0), "done");
    assert_int_equal(json_array_size(json_object_get(doc, "rows")), 1);
    assert_int_equal(rows_at(doc, 0, 2, "measured"), 1);
    json_decref(doc);
    free(grace);
    free(grace_text);
    free(other);
    free(other_text);
    free(was);
    free(json_path);
    free(sdir);
    free(log);
    free(cfg);
    free(text);
}

struct second_try {
    const char *dir, *log2;
    char *sdir;
    int rc;
};

/* Once the study's folder exists, a second process tries to resume it (and must be refused). */
static bool try_second_process(void *ctx)
{
    struct second_try *t = ctx;
    if (!t->sdir)
        t->sdir = tb_study_dir(t->dir, "locked");
    char *p = t->sdir ? xasprintf("%s/study.json", t->sdir) : NULL;
    bool ready = p && access(p, F_OK) == 0;
    free(p);
    if (ready)
        t->rc = study(t->log2, "--resume", t->sdir, NULL, NULL, NULL);
    return ready;
}

static void one_process_per_study_folder(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *text = named(two_setups, "locked");
    char *cfg = write_study(f->dir, "study.yaml", text);
    char *log = xasprintf("%s/log.txt", f->dir);
    char *log2 = xasprintf("%s/log2.txt", f->dir);
    const char *argv[] = {"testbench", "study", "--config", cfg, "--backend", "sim", NULL};
    struct second_try t = {.dir = f->dir, .log2 = log2, .rc = -1};
    bool sent = false;
    int rc = tb_run_logged(TB_BINARY, argv, log, try_second_process, &t, SIGINT, &sent);
    assert_true(sent);
    assert_int_equal(rc, 130);
    assert_int_equal(t.rc, 1);
    char *out = tb_read(log2);
    assert_non_null(strstr(out, "is in use by another testbench study (process"));
    free(out);
    free(t.sdir);
    free(log2);
    free(log);
    free(cfg);
    free(text);
}

static bool study_json_exists(void *ctx)
{
    const char *dir = ctx;
    char *sdir = tb_study_dir(dir, "planning");
    char *p = sdir ? xasprintf("%s/study.json", sdir) : NULL;
    bool yes = p && access(p, F_OK) == 0;
    free(p);
    free(sdir);
    return yes;
}

static void sighup_while_planning_leaves_a_resumable_folder(void **state)
{
    struct tb_dir_fixture *f = *state;
    /* 300 setups: seconds of planning, which the hang-up interrupts. */
    struct {
        char *v;
        size_t n;
    } lens = {xcalloc(1, 8 * 300 + 1), 0};
    for (int k = 0; k < 300; k++)
        lens.n += (size_t)sprintf(lens.v + lens.n, "%s%d", k ? ", " : "", 2048 + 16 * k);
    char *text = xasprintf("study: {name: planning, users: [2], capacity_search: false}\n"
                           "setups:\n  grid:\n    model: [meta-llama/Llama-3.1-8B-Instruct]\n"
                           "    max_model_len: [%s]\n"
                           "benchmark: {output_dir: OUT}\n"
                           "requests: {prompt_tokens_min: 64, prompt_tokens_max: 64, "
                           "completion_tokens: 8}\n"
                           "workloads: [{name: default, population: streams}]\n"
                           "slo: {ttft_ms: null, tpot_ms: null}\n",
                           lens.v);
    char *cfg = write_study(f->dir, "study.yaml", text);
    char *log = xasprintf("%s/log.txt", f->dir);
    const char *argv[] = {"testbench", "study", "--config", cfg, NULL};
    bool sent = false;
    int rc = tb_run_logged(TB_BINARY, argv, log, study_json_exists, f->dir, SIGHUP, &sent);
    assert_true(sent);
    assert_int_equal(rc, 130);
    char *out = tb_read(log);
    assert_null(strstr(out, "study folder:")); /* stopped while planning, before any launch */
    assert_non_null(strstr(out, "continue with 'testbench study --resume"));
    free(out);
    char *sdir = tb_study_dir(f->dir, "planning");
    json_t *doc = load_study(sdir);
    assert_int_equal(json_array_size(json_object_get(doc, "setups")), 300);
    for (size_t i = 0; i < 300; i++)
        assert_string_equal(setup_status(doc, i), "pending");
    json_decref(doc);
    assert_int_equal(study(log, "--resume", sdir, "--plan-only", "--quiet", NULL), 0);
    free(sdir);
    free(log);
    free(cfg);
    free(text);
    free(lens.v);
}

static void start_failures_are_retried_by_their_class(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *script_text = xasprintf(
        "#!/bin/sh\nid=$1\nshift\ncase $id in\n"
        "*kv*) echo \"ValueError: The model's max seq len (4096) is larger than the maximum "
        "number of tokens that can be stored in KV cache (2048).\" >&2; exit 1;;\n"
        "*flaky*) [ -e '%s/flaky-ok' ] || { echo 'Segmentation fault' >&2; exit 3; };;\n"
        "esac\nexec '%s' sim --quiet \"$@\"\n",
        f->dir, TB_BINARY);
    char *script = tb_write(f->dir, "server.sh", script_text);
    assert_int_equal(chmod(script, 0755), 0);
    static const char body[] =
        "study: {name: retries, users: [2], capacity_search: false, min_requests: 4}\n"
        "backend:\n  type: command\n  startup_timeout_s: 60\n  stop_grace_s: 2\n"
        "  command: \"%s {id} --port {port} --model {model} {max_model_len_flag}\"\n"
        "setups:\n  list:\n"
        "    - {name: flaky, model: meta-llama/Llama-3.1-8B-Instruct, max_model_len: 2048}\n"
        "    - {name: kv, model: meta-llama/Llama-3.1-8B-Instruct, max_model_len: 4096}\n"
        "benchmark: {output_dir: OUT}\n"
        "requests: {prompt_tokens_min: 64, prompt_tokens_max: 64, completion_tokens: 8}\n"
        "workloads: [{name: default, population: streams}]\n"
        "slo: {ttft_ms: null, tpot_ms: null}\n";
    char *log = xasprintf("%s/log.txt", f->dir);

    /* What fails only after a launch is refused before anything starts. */
    char *typo_text = xasprintf(body, "/bin/true {prot}");
    char *typo = write_study(f->dir, "typo.yaml", typo_text);
    assert_int_equal(study(log, "--config", typo, NULL, NULL, NULL), 2);
    char *out = tb_read(log);
    assert_non_null(strstr(out, "unknown placeholder {prot}"));
    free(out);
    assert_null(tb_study_dir(f->dir, "retries"));

    /* A server program that is not there: an error of ours, retried by a plain --resume once
     * the study file names the right one. */
    char *missing_text = xasprintf(body, "/nonexistent/server.sh");
    char *cfg = write_study(f->dir, "study.yaml", missing_text);
    assert_int_equal(study(log, "--config", cfg, NULL, NULL, NULL), 0);
    char *sdir = tb_study_dir(f->dir, "retries");
    assert_non_null(sdir);
    json_t *doc = load_study(sdir);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(setup_status(doc, i), "failed_to_start");
        const json_t *s = json_array_get(json_object_get(doc, "setups"), i);
        assert_string_equal(json_string_value(json_object_get(s, "start_class")), "error");
    }
    json_decref(doc);
    char *fixed_text = xasprintf(body, script);
    free(tb_write(f->dir, "study.yaml", fixed_text));
    assert_int_equal(study(log, "--resume", sdir, NULL, NULL, NULL), 0);
    doc = load_study(sdir);
    const json_t *setups = json_object_get(doc, "setups");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(setups, 0), "start_class")), "crashed");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(setups, 1), "start_class")),
        "kv_too_small");
    json_decref(doc);

    /* A crash is final for a plain --resume, retried with --retry-failed; the KV answer stays. */
    char *ok = xasprintf("%s/flaky-ok", f->dir);
    free(tb_write(f->dir, "flaky-ok", ""));
    assert_int_equal(study(log, "--resume", sdir, NULL, NULL, NULL), 0);
    doc = load_study(sdir);
    assert_string_equal(setup_status(doc, 0), "failed_to_start");
    json_decref(doc);
    assert_int_equal(study(log, "--resume", sdir, "--retry-failed", NULL, NULL), 0);
    out = tb_read(log);
    assert_non_null(strstr(out, "failed_to_start earlier, skipped")); /* the kv setup */
    free(out);
    doc = load_study(sdir);
    assert_string_equal(setup_status(doc, 0), "done");
    assert_string_equal(setup_status(doc, 1), "failed_to_start");
    assert_int_equal(rows_at(doc, 0, 2, "measured"), 1);
    assert_int_equal(rows_at(doc, 0, 2, NULL), 1);
    json_decref(doc);
    free(ok);
    free(sdir);
    free(fixed_text);
    free(cfg);
    free(missing_text);
    free(typo);
    free(typo_text);
    free(log);
    free(script);
    free(script_text);
}

static void a_workload_name_that_cannot_name_files_is_refused_first(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *cfg = write_study(f->dir, "study.yaml",
                            "study: {name: badname, users: [2], capacity_search: false}\n"
                            "setups: {grid: {model: [meta-llama/Llama-3.1-8B-Instruct]}}\n"
                            "workloads:\n  - name: \"a\\nb\"\n"
                            "benchmark: {output_dir: OUT}\n");
    char *log = xasprintf("%s/log.txt", f->dir);
    assert_int_equal(study(log, "--config", cfg, NULL, NULL, NULL), 2);
    char *out = tb_read(log);
    assert_non_null(strstr(out, "cannot name its result files"));
    free(out);
    assert_null(tb_study_dir(f->dir, "badname"));
    free(log);
    free(cfg);
}

static void resume_keeps_the_backend_and_every_measured_point(void **state)
{
    interrupted_then_resumed(*state, SIGINT);
}

static void a_killed_study_keeps_every_measured_point(void **state)
{
    interrupted_then_resumed(*state, SIGKILL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_workload_name_that_cannot_name_files_is_refused_first,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            resume_refuses_another_backend_or_study_and_repairs_bad_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(start_failures_are_retried_by_their_class, setup, teardown),
        cmocka_unit_test_setup_teardown(sighup_while_planning_leaves_a_resumable_folder, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(one_process_per_study_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(resume_keeps_the_backend_and_every_measured_point, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_killed_study_keeps_every_measured_point, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
