/*
 * test_scale.c - a study's setups measured by separate processes (src/scale, docs/SCALE.md),
 * through the real binary on the simulator: --prepare writes a stable launch index; a shard
 * (--setup-index K, --shard i/n) measures only its setups and writes only their fragments,
 * never the study files and never under the folder's lock; --merge folds fragments and is
 * idempotent; a plain --resume folds them first and measures the rest; a setup another process
 * holds is left to it; a shard stopped by TERM (Slurm's pre-timeout signal) keeps its points
 * and its rerun measures only the rest; a fragment left behind never undoes a later resume;
 * shards keep the resume rules (recorded backend, the study's definition); --parallel N runs
 * setups side by side on disjoint GPUs (CUDA_VISIBLE_DEVICES, docker --gpus device=...) and
 * marks them side by side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/xalloc.h"
#include "study/study_files.h"
#include "tb_proc.h"

static int setup(void **state)
{
    return tb_dir_setup(state, "tb_scale");
}

static int teardown(void **state)
{
    return tb_dir_teardown(state);
}

/* Four setups (two quantizations x two windows), tiny probes; USERS and BACKEND replaced. The
 * objectives are judged at p50, which 6 requests can decide (p95 needs 72), on request streams
 * (users in conversation think between turns): what is checked here is where setups run and
 * how their files merge, not the population or the verdicts' confidence. */
static const char four_setups[] = "study:\n"
                                  "  name: NAME\n"
                                  "  users: USERS\n"
                                  "  capacity_search: false\n"
                                  "  requests_per_user: 2\n"
                                  "  min_requests: 4\n"
                                  "backend:\n"
                                  "  type: sim\n"
                                  "  stop_grace_s: 2\n"
                                  "BACKEND"
                                  "setups:\n"
                                  "  grid:\n"
                                  "    model: [meta-llama/Llama-3.1-8B-Instruct]\n"
                                  "    quantization: [none, fp8]\n"
                                  "    max_model_len: [2048, 4096]\n"
                                  "benchmark:\n"
                                  "  output_dir: OUT\n"
                                  "requests:\n"
                                  "  prompt_tokens_min: 128\n"
                                  "  prompt_tokens_max: 128\n"
                                  "  completion_tokens: 16\n"
                                  "workloads: [{name: default, population: streams}]\n"
                                  "slo: {ttft_ms: 2000, tpot_ms: 100, percentile: 50}\n";

static char *replace(const char *text, const char *what, const char *with)
{
    const char *at = strstr(text, what);
    if (!at)
        return xstrdup(text);
    return xasprintf("%.*s%s%s", (int)(at - text), text, with, at + strlen(what));
}

/* The study file dir/NAME.yaml (caller frees the path). */
static char *write_study(const char *dir, const char *name, const char *users, const char *backend)
{
    char *out = xasprintf("%s/out", dir);
    char *a = replace(four_setups, "NAME", name), *b = replace(a, "USERS", users);
    char *c = replace(b, "BACKEND", backend ? backend : ""), *d = replace(c, "OUT", out);
    char *file = xasprintf("%s.yaml", name);
    char *path = tb_write(dir, file, d);
    free(file);
    free(d);
    free(c);
    free(b);
    free(a);
    free(out);
    return path;
}

static int study(const char *log, const char *a1, const char *a2, const char *a3, const char *a4,
                 const char *a5, const char *a6)
{
    const char *argv[] = {"testbench", "study", a1, a2, a3, a4, a5, a6, NULL};
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

static const char *setup_status(const json_t *doc, size_t i)
{
    return json_string_value(json_object_get(setup_state(doc, i), "status"));
}

static const char *setup_id(const json_t *doc, size_t i)
{
    return json_string_value(json_object_get(setup_state(doc, i), "id"));
}

/* Rows of setup i (0-based) with the status (NULL: any). */
static int rows_of(const json_t *doc, size_t i, const char *status)
{
    int n = 0;
    size_t k;
    json_t *r;
    json_array_foreach(json_object_get(doc, "rows"), k, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "setup")), setup_id(doc, i)) == 0 &&
            (!status || strcmp(json_string_value(json_object_get(r, "status")), status) == 0))
            n++;
    }
    return n;
}

static char *fragment_path(const char *sdir, const json_t *doc, size_t i)
{
    return xasprintf("%s/%s/fragment.json", sdir, setup_id(doc, i));
}

static json_t *load_fragment(const char *sdir, const json_t *doc, size_t i)
{
    char *p = fragment_path(sdir, doc, i);
    json_error_t je;
    json_t *f = json_load_file(p, 0, &je);
    free(p);
    return f;
}

static bool has(const char *path)
{
    return access(path, F_OK) == 0;
}

static char *prepared(struct tb_dir_fixture *f, const char *name, const char *users,
                      const char *log)
{
    char *cfg = write_study(f->dir, name, users, NULL);
    assert_int_equal(study(log, "--config", cfg, "--prepare", NULL, NULL, NULL), 0);
    free(cfg);
    char *sdir = tb_study_dir(f->dir, name);
    assert_non_null(sdir);
    return sdir;
}

static void shards_write_only_their_fragments_and_merge_is_idempotent(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *log = xasprintf("%s/log.txt", f->dir);
    char *sdir = prepared(f, "shards", "[2]", log);
    char *out = tb_read(log);
    assert_non_null(strstr(out, "--setup-index K   (K = 0 to 3)"));
    free(out);
    json_t *doc = load_study(sdir);
    assert_int_equal(json_array_size(json_object_get(doc, "launch_index")), 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(setup_status(doc, i), "pending");
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(doc, "launch_index"), i)),
            setup_id(doc, i));
    }
    char *json_path = xasprintf("%s/study.json", sdir), *csv_path = xasprintf("%s/study.csv", sdir);
    char *was_json = tb_read(json_path), *was_csv = tb_read(csv_path);

    /* One shard: its setup's fragment, nothing else. */
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "1", NULL, NULL), 0);
    char *now = tb_read(json_path);
    assert_string_equal(was_json, now);
    free(now);
    now = tb_read(csv_path);
    assert_string_equal(was_csv, now);
    free(now);
    for (size_t i = 0; i < 4; i++) {
        char *p = fragment_path(sdir, doc, i);
        assert_int_equal(has(p), i == 1);
        free(p);
    }
    json_t *frag = load_fragment(sdir, doc, 1);
    const json_t *fs = json_object_get(frag, "setup");
    assert_string_equal(json_string_value(json_object_get(fs, "status")), "done");
    assert_true(json_integer_value(json_object_get(fs, "revision")) >= 1);
    assert_int_equal(json_array_size(json_object_get(frag, "rows")), 1);
    assert_non_null(json_object_get(json_object_get(fs, "run"), "host"));
    json_decref(frag);

    /* --shard 1/2: indices 1 and 3; 1 is done already. */
    assert_int_equal(study(log, "--resume", sdir, "--shard", "1/2", NULL, NULL), 0);
    out = tb_read(log);
    assert_non_null(strstr(out, "done earlier, skipped"));
    free(out);
    now = tb_read(json_path);
    assert_string_equal(was_json, now);
    free(now);

    /* The merge: done ones folded, the rest pending; twice is once. */
    assert_int_equal(study(log, "--merge", sdir, NULL, NULL, NULL, NULL), 0);
    json_decref(doc);
    doc = load_study(sdir);
    static const char *const want[] = {"pending", "done", "pending", "done"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(setup_status(doc, i), want[i]);
        assert_int_equal(rows_of(doc, i, "measured"), i % 2);
    }
    char *merged = tb_read(json_path);
    struct stat before, after;
    assert_int_equal(stat(json_path, &before), 0);
    assert_int_equal(study(log, "--merge", sdir, NULL, NULL, NULL, NULL), 0);
    out = tb_read(log);
    assert_non_null(strstr(out, "0 fragments folded in; 2 launched setups not finished"));
    free(out);
    now = tb_read(json_path);
    assert_string_equal(merged, now);
    assert_int_equal(stat(json_path, &after), 0);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    free(now);
    free(merged);

    /* A plain resume measures the rest; rows stay in the setups' order. */
    assert_int_equal(study(log, "--resume", sdir, NULL, NULL, NULL, NULL), 0);
    json_decref(doc);
    doc = load_study(sdir);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(setup_status(doc, i), "done");
        assert_int_equal(rows_of(doc, i, "measured"), 1);
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(doc, "rows"), i), "setup")),
                            setup_id(doc, i));
    }
    /* An index the folder does not have. */
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "4", NULL, NULL), 2);
    out = tb_read(log);
    assert_non_null(strstr(out, "launches 4 setups (indices 0 to 3)"));
    free(out);
    json_decref(doc);
    free(was_json);
    free(was_csv);
    free(json_path);
    free(csv_path);
    free(sdir);
    free(log);
}

/* An exclusive flock on path, as another process would hold it: the fd. */
static int hold(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT, 0666);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(write(fd, "process 4242 on elsewhere\n", 26), 26);
    return fd;
}

static void a_shard_locks_its_setup_and_never_the_folder(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *log = xasprintf("%s/log.txt", f->dir);
    char *sdir = prepared(f, "locks", "[2]", log);
    json_t *doc = load_study(sdir);
    /* The folder is held (a merge, a study): a shard runs all the same. */
    char *folder_lock = xasprintf("%s/.lock", sdir);
    int ffd = hold(folder_lock);
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "0", NULL, NULL), 0);
    /* ...and a plain resume or a merge do not. */
    assert_int_equal(study(log, "--merge", sdir, NULL, NULL, NULL, NULL), 1);
    close(ffd);

    /* Setup 2 is held by another process: its shard is refused, a plain resume leaves it. */
    char *sub = xasprintf("%s/%s", sdir, setup_id(doc, 1));
    mkdir(sub, 0777);
    char *setup_lock = xasprintf("%s/.lock", sub);
    int sfd = hold(setup_lock);
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "1", NULL, NULL), 1);
    char *out = tb_read(log);
    assert_non_null(strstr(out, "is being measured by another testbench process (process 4242 "
                                "on elsewhere)"));
    free(out);
    char *p = fragment_path(sdir, doc, 1);
    assert_false(has(p));
    free(p);
    assert_int_equal(study(log, "--resume", sdir, NULL, NULL, NULL, NULL), 1);
    out = tb_read(log);
    assert_non_null(strstr(out, "1 setup is measured by other processes now"));
    assert_non_null(strstr(out, "1 setup fragment folded in")); /* setup 0's */
    free(out);
    json_decref(doc);
    doc = load_study(sdir);
    assert_string_equal(setup_status(doc, 0), "done");
    assert_string_equal(setup_status(doc, 1), "pending");
    assert_string_equal(setup_status(doc, 2), "done");
    assert_string_equal(setup_status(doc, 3), "done");
    close(sfd);
    json_decref(doc);
    free(setup_lock);
    free(sub);
    free(folder_lock);
    free(sdir);
    free(log);
}

struct watch {
    const char *log;
};

static bool measured_once(void *ctx)
{
    const struct watch *w = ctx;
    char *text = tb_read(w->log);
    bool yes = text && strstr(text, " users: TTFT");
    free(text);
    return yes;
}

static void
a_shard_stopped_by_term_keeps_its_points_and_a_stale_fragment_changes_nothing(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *log = xasprintf("%s/log.txt", f->dir);
    char *sdir = prepared(f, "term", "[2, 4]", log);
    json_t *doc = load_study(sdir);
    /* TERM as Slurm's --signal=B:TERM@N sends it, after the first point. */
    const char *argv[] = {"testbench", "study", "--resume", sdir, "--setup-index", "1", NULL};
    struct watch w = {log};
    bool sent = false;
    int rc = tb_run_logged(TB_BINARY, argv, log, measured_once, &w, SIGTERM, &sent);
    assert_true(sent);
    assert_int_equal(rc, 130);
    json_t *frag = load_fragment(sdir, doc, 1);
    assert_non_null(frag);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(frag, "setup"), "status")),
        "interrupted");
    const json_t *kept = NULL;
    size_t i, n_kept = 0;
    json_t *r;
    json_array_foreach(json_object_get(frag, "rows"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "status")), "measured") == 0) {
            kept = kept ? kept : r;
            n_kept++;
        }
    }
    assert_non_null(kept);
    char *kept_file =
        xasprintf("%s/%s", sdir, json_string_value(json_object_get(kept, "run_detailed")));
    struct stat before, after;
    assert_int_equal(stat(kept_file, &before), 0);
    char *frag_copy = fragment_path(sdir, doc, 1);
    char *saved = tb_read(frag_copy);

    /* The shard resubmitted: the point kept, the rest measured. */
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "1", NULL, NULL), 0);
    char *out = tb_read(log);
    char *said = xasprintf("%zu point%s measured before the interruption, kept", n_kept,
                           n_kept == 1 ? "" : "s");
    assert_non_null(strstr(out, said));
    free(said);
    free(out);
    assert_int_equal(stat(kept_file, &after), 0);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    assert_int_equal(study(log, "--merge", sdir, NULL, NULL, NULL, NULL), 0);
    json_decref(doc);
    doc = load_study(sdir);
    assert_string_equal(setup_status(doc, 1), "done");
    assert_int_equal(rows_of(doc, 1, "measured"), 2);
    assert_int_equal(rows_of(doc, 1, NULL), 2);

    /* The interrupted fragment put back (as if left by a lost node): a merge keeps the newer. */
    char *fdir = xasprintf("%s/%s", sdir, setup_id(doc, 1));
    free(tb_write(fdir, "fragment.json", saved));
    assert_int_equal(study(log, "--merge", sdir, NULL, NULL, NULL, NULL), 0);
    json_decref(doc);
    doc = load_study(sdir);
    assert_string_equal(setup_status(doc, 1), "done");
    assert_int_equal(rows_of(doc, 1, "measured"), 2);
    free(fdir);
    free(saved);
    free(frag_copy);
    free(kept_file);
    json_decref(frag);
    json_decref(doc);
    free(sdir);
    free(log);
}

static void shards_keep_the_resume_rules(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *log = xasprintf("%s/log.txt", f->dir);
    char *sdir = prepared(f, "rules", "[2]", log);
    /* Another study file: refused, naming the difference. */
    char *other = write_study(f->dir, "other", "[3]", NULL);
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "0", "--config", other), 2);
    char *out = tb_read(log);
    assert_non_null(strstr(out, "users[0] is 2 there and 3 in the file"));
    free(out);
    /* Another backend than the recorded one. */
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "0", "--backend", "docker"), 2);
    out = tb_read(log);
    assert_non_null(strstr(out, "--allow-backend-change"));
    free(out);
    /* Flags that do not go together. */
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "0", "--parallel", "2"), 2);
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "0", "--shard", "0/2"), 2);
    assert_int_equal(study(log, "--resume", sdir, "--shard", "2/2", NULL, NULL), 2);
    assert_int_equal(study(log, "--config", other, "--setup-index", "0", NULL, NULL), 2);
    char *p = xasprintf("%s/%s", sdir, "s01-llama-3.1-8b-instruct-native-kvauto-2k-g0.90");
    char *fp = xasprintf("%s/fragment.json", p);
    assert_false(has(fp));
    free(fp);
    free(p);
    free(other);
    free(sdir);
    free(log);
}

/* The command backend's server: takes the GPU it was given (a second holder fails to start),
 * gives it back when stopped. */
static const char gpu_server[] =
    "#!/bin/sh\n"
    "mkdir '%s/gpu-'\"$CUDA_VISIBLE_DEVICES\" || { echo \"GPU $CUDA_VISIBLE_DEVICES busy\" >&2; "
    "exit 3; }\n"
    "echo \"$CUDA_VISIBLE_DEVICES\" >> '%s/gpus-used'\n"
    "'%s' sim --quiet \"$@\" &\n"
    "pid=$!\n"
    "trap 'kill $pid; wait $pid; rmdir \"%s/gpu-$CUDA_VISIBLE_DEVICES\"; exit 0' TERM INT\n"
    "wait $pid\n";

static void parallel_runs_setups_side_by_side_on_their_own_gpus(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *log = xasprintf("%s/log.txt", f->dir);
    char *script_text = xasprintf(gpu_server, f->dir, f->dir, TB_BINARY, f->dir);
    char *script = tb_write(f->dir, "server.sh", script_text);
    assert_int_equal(chmod(script, 0755), 0);
    char *backend = xasprintf("  gpu_ids: [3, 5]\n  type: command\n  command: \"%s --port {port} "
                              "--model {model} {max_model_len_flag}\"\n",
                              script);
    char *text = replace(four_setups, "  type: sim\n", "");
    char *out = xasprintf("%s/out", f->dir);
    char *a = replace(text, "NAME", "par"), *b = replace(a, "USERS", "[2]");
    char *c = replace(b, "BACKEND", backend), *d = replace(c, "OUT", out);
    char *cfg = tb_write(f->dir, "par.yaml", d);
    assert_int_equal(study(log, "--config", cfg, "--parallel", "2", NULL, NULL), 0);
    char *sdir = tb_study_dir(f->dir, "par");
    json_t *doc = load_study(sdir);
    int side = 0;
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(setup_status(doc, i), "done");
        const char *gpus =
            json_string_value(json_object_get(json_object_get(setup_state(doc, i), "run"), "gpus"));
        assert_non_null(gpus);
        assert_true(strcmp(gpus, "3") == 0 || strcmp(gpus, "5") == 0);
        side += json_array_size(json_object_get(setup_state(doc, i), "side_by_side_with")) > 0;
    }
    assert_true(side >= 2); /* two at a time: at least one pair overlapped */
    char *csv_path = xasprintf("%s/study.csv", sdir);
    char *csv = tb_read(csv_path);
    assert_non_null(strstr(csv, ",side_by_side,")); /* later columns are appended after it */
    free(csv);
    free(csv_path);
    char *used = xasprintf("%s/gpus-used", f->dir);
    char *used_text = tb_read(used);
    assert_non_null(strstr(used_text, "3\n"));
    assert_non_null(strstr(used_text, "5\n"));
    free(used_text);
    free(used);
    /* A fixed port cannot serve two at once. */
    char *fixed = replace(d, "  stop_grace_s: 2\n", "  stop_grace_s: 2\n  port: 18123\n");
    char *fixed_cfg = tb_write(f->dir, "fixed.yaml", fixed);
    assert_int_equal(study(log, "--config", fixed_cfg, "--parallel", "2", NULL, NULL), 2);
    char *said = tb_read(log);
    assert_non_null(strstr(said, "cannot share a port"));
    free(said);
    free(fixed_cfg);
    free(fixed);
    json_decref(doc);
    free(sdir);
    free(cfg);
    free(d);
    free(c);
    free(b);
    free(a);
    free(out);
    free(text);
    free(backend);
    free(script);
    free(script_text);
    free(log);
}

static void parallel_hands_docker_its_devices(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *log = xasprintf("%s/log.txt", f->dir);
    char *record = xasprintf("%s/docker-record", f->dir);
    char *bin = xasprintf("%s/bin", f->dir);
    mkdir(bin, 0777);
    free(tb_fake_docker(bin, record, TB_BINARY));
    char *path = xasprintf("%s:%s", bin, getenv("PATH"));
    setenv("PATH", path, 1);
    char *cfg = write_study(f->dir, "dock", "[2]",
                            "  gpu_ids: [0, 1, 2, 3]\n  gpus_per_setup: 2\n  startup_timeout_s: "
                            "60\n");
    char *dcfg = tb_read(cfg);
    char *docker = replace(dcfg, "type: sim", "type: docker");
    free(tb_write(f->dir, "dock.yaml", docker));
    assert_int_equal(study(log, "--config", cfg, "--parallel", "2", NULL, NULL), 0);
    char *rec = tb_read(record);
    int pairs[2] = {0, 0};
    for (int n = 0;; n++) {
        char *call = tb_record_call(rec, n);
        if (!call)
            break;
        pairs[0] += strstr(call, "arg --gpus\narg \"device=0,1\"\n") != NULL;
        pairs[1] += strstr(call, "arg --gpus\narg \"device=2,3\"\n") != NULL;
        free(call);
    }
    assert_true(pairs[0] >= 1 && pairs[1] >= 1);
    assert_int_equal(pairs[0] + pairs[1], 4);
    free(rec);
    free(docker);
    free(dcfg);
    free(cfg);
    free(path);
    free(bin);
    free(record);
    free(log);
}

static void slurm_scripts_are_written_for_the_unfinished_setups(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *log = xasprintf("%s/log.txt", f->dir), *emit = xasprintf("%s/sbatch", f->dir);
    char *cfg = write_study(f->dir, "emit", "[2]", NULL);
    char *text = tb_read(cfg);
    char *with = replace(text, "setups:\n",
                         "slurm:\n  partition: gpu\n  time: \"1:00:00\"\n  max_parallel: 2\n"
                         "  signal_s: 120\n  extra_args: [\"--exclusive\"]\nsetups:\n");
    free(tb_write(f->dir, "emit.yaml", with));
    assert_int_equal(study(log, "--config", cfg, "--executor", "slurm", "--emit", emit), 0);
    char *sdir = tb_study_dir(f->dir, "emit");
    char *script_path = xasprintf("%s/study.sbatch", emit);
    char *script = tb_read(script_path);
    char *exec_line = xasprintf(
        "exec %s study --resume %s --setup-index \"$SLURM_ARRAY_TASK_ID\"\n", TB_BINARY, sdir);
    static const char *const lines[] = {
        "#SBATCH --array=0-3%2\n", "#SBATCH --partition=gpu\n",     "#SBATCH --time=1:00:00\n",
        "#SBATCH --gres=gpu:1\n",  "#SBATCH --signal=B:TERM@120\n", "#SBATCH --exclusive\n"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        assert_non_null(strstr(script, lines[i]));
    assert_non_null(strstr(script, exec_line));
    char *merge_path = xasprintf("%s/merge.sbatch", emit);
    char *merge = tb_read(merge_path);
    char *merge_line = xasprintf("study --merge %s\n", sdir);
    assert_non_null(strstr(merge, merge_line));
    /* Two setups measured since: the array names only the other two. */
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "1", NULL, NULL), 0);
    assert_int_equal(study(log, "--resume", sdir, "--setup-index", "2", NULL, NULL), 0);
    assert_int_equal(study(log, "--resume", sdir, "--executor", "slurm", "--emit", emit), 0);
    free(script);
    script = tb_read(script_path);
    assert_non_null(strstr(script, "#SBATCH --array=0,3%2\n"));
    free(merge_line);
    free(merge);
    free(merge_path);
    free(exec_line);
    free(script);
    free(script_path);
    free(sdir);
    free(with);
    free(text);
    free(cfg);
    free(emit);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(shards_write_only_their_fragments_and_merge_is_idempotent,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_shard_locks_its_setup_and_never_the_folder, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_shard_stopped_by_term_keeps_its_points_and_a_stale_fragment_changes_nothing, setup,
            teardown),
        cmocka_unit_test_setup_teardown(shards_keep_the_resume_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(parallel_runs_setups_side_by_side_on_their_own_gpus, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(parallel_hands_docker_its_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(slurm_scripts_are_written_for_the_unfinished_setups, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
