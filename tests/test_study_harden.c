/*
 * test_study_harden.c - a study under the failures a GPU server really has, through the real
 * binary: a server that dies while measured ends its setup as crashed (no capacity claimed, its
 * measured points kept) and the study goes on; a failed start quotes the server's first error
 * line and names the log; three setups failing the same way stop the study; a server that goes
 * to the background is named as such; a full disk moves a point's files without losing the
 * point; and study files that would take hours, gigabytes or a mistake to the first launch are
 * refused by `validate` with the key and the bound.
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <jansson.h>

#include "core/xalloc.h"
#include "study/study_files.h"
#include "tb_proc.h"

static int setup(void **state)
{
    return tb_dir_setup(state, "tb_harden_study");
}

static int teardown(void **state)
{
    return tb_dir_teardown(state);
}

static int tb(const char *log, const char *a1, const char *a2, const char *a3, const char *a4)
{
    const char *argv[] = {"testbench", a1, a2, a3, a4, NULL};
    return tb_run_logged(TB_BINARY, argv, log, NULL, NULL, 0, NULL);
}

static json_t *load_study(const char *sdir)
{
    json_t *doc = NULL;
    char err[512];
    assert_int_equal(study_files_read(sdir, &doc, err, sizeof(err)), 0);
    return doc;
}

static const json_t *setup_state(const json_t *doc, size_t i)
{
    return json_array_get(json_object_get(doc, "setups"), i);
}

/* A command backend whose server is the script: it writes its pid, then, by setup name, fails
 * as docker does when an image is missing, goes to the background, or is the simulator. */
static char *write_server_script(const char *dir)
{
    char *text =
        xasprintf("#!/bin/sh\nid=$1\nshift\necho $$ > '%s/pid-'\"$id\"\ncase $id in\n"
                  "*noimage*) echo \"Unable to find image 'vllm/vllm-openai:v9' locally\" >&2\n"
                  "  echo 'docker: Error response from daemon: pull access denied for "
                  "vllm/vllm-openai.' >&2\n"
                  "  echo \"Run 'docker run --help' for more information\" >&2; exit 125;;\n"
                  "*daemon*) exit 0;;\n"
                  "esac\nexec '%s' sim --quiet \"$@\"\n",
                  dir, TB_BINARY);
    char *path = tb_write(dir, "server.sh", text);
    free(text);
    assert_int_equal(chmod(path, 0755), 0);
    return path;
}

static char *write_study(const char *dir, const char *script, const char *setups, const char *extra)
{
    char *text = xasprintf(
        "study: {name: harden, users: [2], max_users: 6, min_requests: 4, %s}\n"
        "backend:\n  type: command\n  startup_timeout_s: 60\n  stop_grace_s: 2\n"
        "  command: \"%s {id} --port {port} --model {model} {max_model_len_flag}\"\n"
        "setups:\n  list:\n%s"
        "benchmark: {output_dir: %s/out}\n"
        "requests: {prompt_tokens_min: 64, prompt_tokens_max: 64, completion_tokens: 24}\n"
        /* Request streams, nothing judged: what is checked is how the study survives its
         * servers, not the population or a verdict (each probe sends min_requests). */
        "workloads: [{name: default, population: streams}]\n"
        "slo: {ttft_ms: null, tpot_ms: null}\n",
        extra, script, setups, dir);
    char *path = tb_write(dir, "study.yaml", text);
    free(text);
    return path;
}

struct killer {
    const char *dir, *log, *id;
    bool killed;
};

/* Once the first setup measured its first point, its server is killed (as an OOM kill would). */
static bool kill_after_first_point(void *ctx)
{
    struct killer *k = ctx;
    char *text = tb_read(k->log);
    bool measured = text && strstr(text, " users: TTFT");
    free(text);
    if (!measured || k->killed)
        return false;
    char *p = xasprintf("%s/pid-%s", k->dir, k->id);
    char *pid = tb_read(p);
    free(p);
    if (pid && atoi(pid) > 0)
        k->killed = kill(atoi(pid), SIGKILL) == 0;
    free(pid);
    return false; /* the study itself is never signalled */
}

static void a_server_that_dies_while_measured_ends_its_setup_as_crashed(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *script = write_server_script(f->dir);
    char *cfg = write_study(f->dir, script,
                            "    - {name: dies, model: meta-llama/Llama-3.1-8B-Instruct, "
                            "max_model_len: 2048}\n"
                            "    - {name: after, model: meta-llama/Llama-3.1-8B-Instruct, "
                            "max_model_len: 2048}\n",
                            "capacity_search: true");
    char *log = xasprintf("%s/log.txt", f->dir);
    const char *argv[] = {"testbench", "study", "--config", cfg, NULL};
    struct killer k = {f->dir, log, "s01-dies", false};
    int rc = tb_run_logged(TB_BINARY, argv, log, kill_after_first_point, &k, 0, NULL);
    char *out = tb_read(log);
    if (rc != 0 || !strstr(out, "while it was being measured"))
        fprintf(stderr, "%s\n", out);
    assert_true(k.killed);
    assert_int_equal(rc, 0);
    assert_non_null(
        strstr(out, "the server killed by signal 9 (Killed) while it was being measured"));
    char *sdir = tb_study_dir(f->dir, "harden");
    json_t *doc = load_study(sdir);
    const json_t *s0 = setup_state(doc, 0);
    assert_string_equal(json_string_value(json_object_get(s0, "status")), "crashed");
    assert_non_null(strstr(json_string_value(json_object_get(s0, "reason")), "signal 9"));
    assert_string_equal(json_string_value(json_object_get(setup_state(doc, 1), "status")), "done");
    /* The first setup's measured point stays; no capacity is claimed for it. */
    size_t i;
    json_t *r;
    int measured = 0;
    json_array_foreach(json_object_get(doc, "rows"), i, r)
    {
        if (strncmp(json_string_value(json_object_get(r, "setup")), "s01-", 4) != 0)
            continue;
        measured += strcmp(json_string_value(json_object_get(r, "status")), "measured") == 0;
        assert_true(json_is_null(json_object_get(r, "meas_max_users")));
    }
    assert_true(measured >= 1);
    json_decref(doc);
    free(sdir);
    free(out);
    free(log);
    free(cfg);
    free(script);
}

static void start_failures_quote_the_cause_and_repeats_stop_the_study(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *script = write_server_script(f->dir);
    char *setups = xcalloc(1, 1024);
    for (int k = 0; k < 4; k++)
        snprintf(setups + strlen(setups), 1024 - strlen(setups),
                 "    - {name: noimage%d, model: meta-llama/Llama-3.1-8B-Instruct, "
                 "max_model_len: %d}\n",
                 k, 2048 + 512 * k);
    char *cfg = write_study(f->dir, script, setups, "capacity_search: false");
    char *log = xasprintf("%s/log.txt", f->dir);
    int rc = tb(log, "study", "--config", cfg, NULL);
    char *out = tb_read(log);
    /* The cause (two lines above the last one), and where the whole log is. */
    assert_non_null(strstr(out, "Unable to find image 'vllm/vllm-openai:v9' locally"));
    assert_null(strstr(out, "failed to start: crashed: server exited with status 125 before it "
                            "was ready: Run 'docker run --help'"));
    assert_non_null(strstr(out, "(server log: "));
    /* Three alike: the study stops, the fourth setup is left for --resume. */
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "the last 3 setups failed to start the same way"));
    char *sdir = tb_study_dir(f->dir, "harden");
    json_t *doc = load_study(sdir);
    assert_string_equal(json_string_value(json_object_get(setup_state(doc, 2), "status")),
                        "failed_to_start");
    assert_string_equal(json_string_value(json_object_get(setup_state(doc, 3), "status")),
                        "pending");
    json_decref(doc);
    free(sdir);
    free(out);

    /* A server that exits 0 at once went to the background: said so. */
    tb_remove_tree(f->dir);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    free(script);
    script = write_server_script(f->dir);
    free(cfg);
    cfg = write_study(f->dir, script,
                      "    - {name: daemon, model: meta-llama/Llama-3.1-8B-Instruct}\n",
                      "capacity_search: false");
    assert_int_equal(tb(log, "study", "--config", cfg, NULL), 0);
    out = tb_read(log);
    assert_non_null(strstr(out, "may have gone to the background"));
    assert_null(strstr(out, "ready: + ")); /* our own command line is not the server's word */
    free(out);
    free(log);
    free(cfg);
    free(setups);
    free(script);
}

struct filler {
    const char *mnt, *log;
    bool filled;
};

/* After the first point, fill the disk but for a little: the next point's files no longer fit,
 * the study's own small files still do. */
static bool fill_after_first_point(void *ctx)
{
    struct filler *fl = ctx;
    char *text = fl->filled ? NULL : tb_read(fl->log);
    if (text && strstr(text, " users: TTFT")) {
        struct statvfs v;
        if (statvfs(fl->mnt, &v) == 0) {
            long long left = (long long)v.f_bavail * (long long)v.f_frsize - 48 * 1024;
            char *p = xasprintf("%s/filler", fl->mnt);
            FILE *f = fopen(p, "w");
            char block[4096] = {0};
            for (long long n = 0; f && n + (long long)sizeof(block) <= left; n += sizeof(block))
                if (fwrite(block, 1, sizeof(block), f) != sizeof(block))
                    break;
            if (f)
                fclose(f);
            free(p);
            fl->filled = true;
        }
    }
    free(text);
    return false;
}

static void a_full_disk_moves_a_points_files_and_keeps_the_point(void **state)
{
    struct tb_dir_fixture *f = *state;
    if (geteuid() != 0)
        skip(); /* a tmpfs of its own needs root (CI runs as root) */
    char *mnt = xasprintf("%s/mnt", f->dir);
    char *spill = xasprintf("%s/spill", f->dir);
    assert_int_equal(mkdir(mnt, 0700), 0);
    assert_int_equal(mkdir(spill, 0700), 0);
    assert_int_equal(mount("tmpfs", mnt, "tmpfs", 0, "size=1m"), 0);
    char *text = xasprintf(
        "study: {name: full, users: [2, 4], capacity_search: false, min_requests: 8}\n"
        "backend: {type: sim, stop_grace_s: 2}\n"
        "setups: {grid: {model: [meta-llama/Llama-3.1-8B-Instruct], max_model_len: [2048]}}\n"
        "benchmark: {output_dir: %s/out}\n"
        "requests: {prompt_tokens_min: 64, prompt_tokens_max: 64, completion_tokens: 400}\n"
        "workloads: [{name: default, population: streams}]\n"
        "telemetry: {sample_interval_sec: 1}\n"
        /* judged at p50 (6 requests decide; p95 needs 72): the files are under test here */
        "slo: {ttft_ms: 2000, tpot_ms: 100, percentile: 50}\n",
        mnt);
    char *cfg = tb_write(f->dir, "study.yaml", text);
    char *log = xasprintf("%s/log.txt", f->dir);
    setenv("TESTBENCH_FALLBACK_DIR", spill, 1);
    const char *argv[] = {"testbench", "study", "--config", cfg, NULL};
    struct filler fl = {mnt, log, false};
    int rc = tb_run_logged(TB_BINARY, argv, log, fill_after_first_point, &fl, 0, NULL);
    unsetenv("TESTBENCH_FALLBACK_DIR");
    char *out = tb_read(log);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_true(fl.filled);
    assert_int_equal(rc, 0);
    char *cmd = xasprintf("ls -d %s/out/full_*", mnt);
    FILE *p = popen(cmd, "r");
    char sdir[512] = "";
    assert_non_null(fgets(sdir, sizeof(sdir), p));
    pclose(p);
    sdir[strcspn(sdir, "\n")] = '\0';
    json_t *doc = load_study(sdir);
    size_t i;
    json_t *r;
    int moved = 0;
    json_array_foreach(json_object_get(doc, "rows"), i, r)
    {
        assert_string_equal(json_string_value(json_object_get(r, "status")), "measured");
        const char *why = json_string_value(json_object_get(r, "reason"));
        if (!why || !strstr(why, "could not take its files"))
            continue;
        moved++;
        const char *det = json_string_value(json_object_get(r, "run_detailed"));
        assert_true(strncmp(det, spill, strlen(spill)) == 0);
        assert_int_equal(access(det, R_OK), 0);
    }
    assert_true(moved >= 1);
    json_decref(doc);
    umount(mnt);
    free(cmd);
    free(out);
    free(log);
    free(cfg);
    free(text);
    free(spill);
    free(mnt);
}

/* Study files that would overflow, take hours to plan, or fail only after a launch. */
static void validate_refuses_what_the_study_could_not_do(void **state)
{
    struct tb_dir_fixture *f = *state;
    static const struct {
        const char *study, *setups, *extra, *says;
    } cases[] = {
        {"users: [2147483647]", "", "", "study.users[0]: must be at most 100000"},
        {"users: [1000], requests_per_user: 5000", "", "",
         "is 5000000 requests in one probe; at most 1000000"},
        {"min_requests: 2147483647", "", "", "study.min_requests: must be at most 1000000"},
        {"users: [2]", "", "backend: {startup_timeout_s: 1e308}\n", "backend.startup_timeout_s"},
        {"users: [2]", ", max_model_len: [2048, 4096]", "backend: {type: none}\n",
         "the none backend measures one server"},
        {"users: [2]", ", tensor_parallel_size: [1024]", "",
         "setups.grid.tensor_parallel_size[0]: must be at most 64"},
        {"users: [2]", ", kv_cache_dtype: [bogus]", "", "unknown kv_cache_dtype 'bogus'"},
        {"users: [2]", "", "model: {name: no/such-model}\n",
         "unknown model 'no/such-model' (close: "},
        {"users: [2]", ", max_model_len: [1]", "", "cannot be planned"},
    };
    char *log = xasprintf("%s/log.txt", f->dir);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        bool own_model = strstr(cases[c].extra, "model:") != NULL;
        char *text = xasprintf(
            "study: {name: v, %s}\n"
            "setups: {grid: {%s%s}}\n%s%s",
            cases[c].study, own_model ? "" : "model: [meta-llama/Llama-3.1-8B-Instruct]",
            own_model && cases[c].setups[0] ? cases[c].setups + 2 : cases[c].setups, cases[c].extra,
            own_model ? "" : "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n");
        char *cfg = tb_write(f->dir, "v.yaml", text);
        int rc = tb(log, "validate", "--config", cfg, NULL);
        char *out = tb_read(log);
        if (rc != 2 || !strstr(out, cases[c].says))
            fprintf(stderr, "case %zu:\n%s\n-> %d: %s\n", c, text, rc, out);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out, cases[c].says));
        free(out);
        free(cfg);
        free(text);
    }
    /* A trace replays its own arrivals: not N users, refused in a study. */
    free(tb_write(f->dir, "t.jsonl",
                  "{\"timestamp\": 0, \"input_length\": 64, "
                  "\"output_length\": 8}\n"));
    char *wl = xasprintf("model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                         "requests: {trace: {path: %s/t.jsonl}}\n",
                         f->dir);
    free(tb_write(f->dir, "trace.yaml", wl));
    char *cfg = tb_write(f->dir, "s.yaml",
                         "study: {name: t, users: [2]}\n"
                         "setups: {grid: {model: [meta-llama/Llama-3.1-8B-Instruct]}}\n"
                         "workloads: [{name: replay, config: trace.yaml}]\n");
    assert_int_equal(tb(log, "validate", "--config", cfg, NULL), 2);
    char *out = tb_read(log);
    assert_non_null(strstr(out, "replays a trace"));
    free(out);
    free(cfg);
    free(wl);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(validate_refuses_what_the_study_could_not_do, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(start_failures_quote_the_cause_and_repeats_stop_the_study,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_server_that_dies_while_measured_ends_its_setup_as_crashed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_disk_moves_a_points_files_and_keeps_the_point, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
