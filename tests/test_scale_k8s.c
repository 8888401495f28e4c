/*
 * test_scale_k8s.c - `study --executor k8s --emit DIR` and `--apply/--status/--collect DIR`.
 * The flagship study's manifests pass offline validation against the Kubernetes API schema
 * (tests/k8s_validate.mjs with the npm package kubernetes-models, which scripts/setup.sh dev
 * installs), and the same manifests with an unknown field or a wrong type fail it. The kubectl
 * paths run against a stand-in kubectl this test writes (no API server exists here): it records
 * its calls, answers `get job -o json` with a Job status, and serves `cp` from a folder that
 * stands for the results volume, where two of the four shards ran for real.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/xalloc.h"
#include "study/study_files.h"
#include "tb_proc.h"

static int setup(void **state)
{
    return tb_dir_setup(state, "tb_k8s");
}

static int teardown(void **state)
{
    return tb_dir_teardown(state);
}

static int run(const char *log, const char *const *args)
{
    const char *argv[16] = {"testbench"};
    size_t n = 1;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return tb_run_logged(TB_BINARY, argv, log, NULL, NULL, 0, NULL);
}

/* node tests/k8s_validate.mjs files: its exit status; what it said into log. */
static int validate(const char *log, const char *files)
{
    char *cmd = xasprintf("node %s/tests/k8s_validate.mjs %s > %s 2>&1", TB_SOURCE_DIR, files, log);
    int rc = system(cmd);
    free(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *replace(const char *text, const char *what, const char *with)
{
    const char *at = strstr(text, what);
    assert_non_null(at);
    return xasprintf("%.*s%s%s", (int)(at - text), text, with, at + strlen(what));
}

static void flagship_manifests_pass_the_kubernetes_schema(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *log = xasprintf("%s/log.txt", f->dir), *emit = xasprintf("%s/k8s", f->dir);
    char *out = xasprintf("%s/out", f->dir);
    assert_int_equal(
        run(log, (const char *[]){"study", "--config",
                                  TB_SOURCE_DIR "/configs/llama3_70b_study.yaml", "--executor",
                                  "k8s", "--emit", emit, "--output-dir", out, "--quiet", NULL}),
        0);
    char *files = xasprintf("%s/manifests/00-configmap.yaml %s/manifests/01-pvc.yaml "
                            "%s/manifests/02-job.yaml %s/manifests/03-merge.yaml "
                            "%s/collect/pod.yaml",
                            emit, emit, emit, emit, emit);
    char *vlog = xasprintf("%s/validate.txt", f->dir);
    int rc = validate(vlog, files);
    char *said = tb_read(vlog);
    if (rc != 0)
        fprintf(stderr,
                "%s\n(scripts/setup.sh dev installs kubernetes-models, yaml and "
                "typescript into .tools/node)\n",
                said);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(said, "5 objects valid"));
    free(said);

    /* What the Job is: one completion per launched setup, vLLM a native sidecar. */
    char *job_path = xasprintf("%s/manifests/02-job.yaml", emit);
    char *job = tb_read(job_path);
    char *rec_path = xasprintf("%s/k8s.json", emit);
    json_error_t je;
    json_t *rec = json_load_file(rec_path, 0, &je);
    char *completions = xasprintf("completions: %lld\n",
                                  (long long)json_integer_value(json_object_get(rec, "setups")));
    assert_non_null(strstr(job, completions));
    assert_non_null(strstr(job, "completionMode: Indexed\n"));
    assert_non_null(strstr(job, "initContainers:\n      - name: vllm\n"));
    assert_non_null(strstr(job, "restartPolicy: Always\n"));
    assert_non_null(strstr(job, "secretKeyRef:\n"));
    assert_non_null(strstr(job, "name: hf-token\n"));
    assert_non_null(strstr(job, "--setup-index \"$TB_INDEX\""));
    free(completions);

    /* An unknown field, anywhere, fails; so does a wrong type. */
    char *bad = replace(job, "restartPolicy: Always\n",
                        "restartPolicy: Always\n        restartPolicyy: Never\n");
    free(tb_write(f->dir, "unknown.yaml", bad));
    char *bad_path = xasprintf("%s/unknown.yaml", f->dir);
    assert_int_equal(validate(vlog, bad_path), 1);
    said = tb_read(vlog);
    assert_non_null(strstr(said, "'\"restartPolicyy\"' does not exist in type 'IContainer'"));
    free(said);
    free(bad);
    free(bad_path);
    bad = replace(job, "completionMode: Indexed\n", "completionMode: Indexed\n  completions2: 1\n");
    free(tb_write(f->dir, "unknown2.yaml", bad));
    bad_path = xasprintf("%s/unknown2.yaml", f->dir);
    assert_int_equal(validate(vlog, bad_path), 1);
    free(bad);
    free(bad_path);
    bad = replace(job, "backoffLimitPerIndex: 1\n", "backoffLimitPerIndex: one\n");
    free(tb_write(f->dir, "type.yaml", bad));
    bad_path = xasprintf("%s/type.yaml", f->dir);
    assert_int_equal(validate(vlog, bad_path), 1);
    free(bad);
    free(bad_path);
    json_decref(rec);
    free(rec_path);
    free(job);
    free(job_path);
    free(vlog);
    free(files);
    free(out);
    free(emit);
    free(log);
}

/* The stand-in kubectl: every call recorded; get, wait, cp, apply and delete answered. */
static const char fake_kubectl[] =
    "#!/bin/sh\n"
    "echo \"kubectl $*\" >> '%s/kubectl-record'\n"
    "case \"$1\" in\n"
    "apply)\n"
    "  [ -e \"$3\" ] || { echo \"error: the path $3 does not exist\" >&2; exit 1; }\n"
    "  for f in $(find \"$3\" -name '*.yaml' | sort); do echo \"applied $(basename $f)\"; done;;\n"
    "get) cat '%s/job-status.json';;\n"
    "wait) echo \"$2 condition met\";;\n"
    "cp) src=${2#*:/results/}; cp -r \"%s/pvc/$src\" \"$3\";;\n"
    "delete) echo \"$2 deleted\";;\n"
    "*) echo \"unknown: $*\" >&2; exit 1;;\n"
    "esac\n";

static const char job_status[] =
    "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": ["
    "{\"metadata\": {\"name\": \"tb-kube\"}, \"spec\": {\"completionMode\": \"Indexed\"},"
    " \"status\": {\"active\": 1, \"succeeded\": 2, \"failed\": 1, \"completedIndexes\": \"0,2\","
    " \"failedIndexes\": \"3\"}},"
    "{\"metadata\": {\"name\": \"tb-kube-merge\"}, \"spec\": {},"
    " \"status\": {\"active\": 1}}]}";

static const char kube_study[] = "study:\n"
                                 "  name: kube\n"
                                 "  users: [2]\n"
                                 "  capacity_search: false\n"
                                 "  min_requests: 4\n"
                                 "backend: {type: sim, stop_grace_s: 2}\n"
                                 "kubernetes:\n"
                                 "  namespace: testns\n"
                                 "  image: registry.example/testbench:1\n"
                                 "setups:\n"
                                 "  grid:\n"
                                 "    model: [meta-llama/Llama-3.1-8B-Instruct]\n"
                                 "    quantization: [none, fp8]\n"
                                 "    max_model_len: [2048, 4096]\n"
                                 "benchmark: {output_dir: OUT}\n"
                                 "requests: {prompt_tokens_min: 128, prompt_tokens_max: 128, "
                                 "completion_tokens: 16}\n"
                                 /* Request streams, nothing judged: the executor is under test, not
                                  * the population or a verdict (each probe sends min_requests). */
                                 "workloads: [{name: default, population: streams}]\n"
                                 "slo: {ttft_ms: null, tpot_ms: null}\n";

static void apply_status_and_collect_drive_kubectl(void **state)
{
    struct tb_dir_fixture *f = *state;
    char *log = xasprintf("%s/log.txt", f->dir), *emit = xasprintf("%s/k8s", f->dir);
    char *out = xasprintf("%s/out", f->dir);
    char *text = replace(kube_study, "OUT", out);
    char *cfg = tb_write(f->dir, "kube.yaml", text);
    assert_int_equal(run(log, (const char *[]){"study", "--config", cfg, "--executor", "k8s",
                                               "--emit", emit, "--quiet", NULL}),
                     0);
    char *local = tb_study_dir(f->dir, "kube");
    assert_non_null(local);

    /* The stand-in, first on PATH. */
    char *bin = xasprintf("%s/bin", f->dir);
    mkdir(bin, 0777);
    char *kt = xasprintf(fake_kubectl, f->dir, f->dir, f->dir);
    char *kpath = tb_write(bin, "kubectl", kt);
    assert_int_equal(chmod(kpath, 0755), 0);
    char *path = xasprintf("%s:%s", bin, getenv("PATH"));
    setenv("PATH", path, 1);
    free(tb_write(f->dir, "job-status.json", job_status));

    assert_int_equal(run(log, (const char *[]){"study", "--apply", emit, NULL}), 0);
    char *said = tb_read(log);
    assert_non_null(strstr(said, "applied 02-job.yaml"));
    free(said);
    char *record_path = xasprintf("%s/kubectl-record", f->dir);
    char *record = tb_read(record_path);
    char *want = xasprintf("kubectl apply -f %s/manifests -n testns\n", emit);
    assert_non_null(strstr(record, want));
    free(want);
    free(record);

    assert_int_equal(run(log, (const char *[]){"study", "--status", emit, NULL}), 0);
    said = tb_read(log);
    assert_non_null(strstr(said, "tb-kube: running; 2 succeeded, 1 failed, 1 running of 4 "
                                 "setups; completed indexes 0,2, failed 3"));
    assert_non_null(strstr(said, "tb-kube-merge: running"));
    free(said);

    /* The volume: the prepared folder, where shards 0 and 2 ran. */
    const char *folder = strrchr(local, '/') + 1;
    char *pvc = xasprintf("%s/pvc", f->dir);
    mkdir(pvc, 0777);
    char *cmd = xasprintf("cp -r '%s' '%s/'", local, pvc);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    char *remote = xasprintf("%s/%s", pvc, folder);
    assert_int_equal(run(log, (const char *[]){"study", "--resume", remote, "--setup-index", "0",
                                               "--quiet", NULL}),
                     0);
    assert_int_equal(run(log, (const char *[]){"study", "--resume", remote, "--setup-index", "2",
                                               "--quiet", NULL}),
                     0);
    assert_int_equal(run(log, (const char *[]){"study", "--collect", emit, NULL}), 0);
    said = tb_read(log);
    assert_non_null(strstr(said, "2 fragments folded in; 2 launched setups not finished"));
    free(said);
    json_t *doc = NULL;
    char err[512];
    assert_int_equal(study_files_read(local, &doc, err, sizeof(err)), 0);
    static const char *const want_status[] = {"done", "pending", "done", "pending"};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(doc, "setups"), i), "status")),
                            want_status[i]);
    json_decref(doc);
    record = tb_read(record_path);
    char *pod = xasprintf("kubectl wait --for=condition=Ready pod/tb-kube-collect --timeout=300s "
                          "-n testns\nkubectl cp tb-kube-collect:/results/%s %s.collecting -n "
                          "testns\nkubectl delete pod/tb-kube-collect --wait=false -n testns\n",
                          folder, local);
    assert_non_null(strstr(record, pod));
    free(pod);
    free(record);

    /* kubectl failing: said, exit 1. */
    free(tb_write(f->dir, "job-status.json", "not json"));
    assert_int_equal(run(log, (const char *[]){"study", "--status", emit, NULL}), 1);
    char *gone = xasprintf("%s/nothing", f->dir);
    assert_int_equal(run(log, (const char *[]){"study", "--apply", gone, NULL}), 2);
    said = tb_read(log);
    assert_non_null(strstr(said, "write it with --executor k8s --emit"));
    free(said);
    free(gone);
    free(remote);
    free(pvc);
    free(record_path);
    free(path);
    free(kpath);
    free(kt);
    free(bin);
    free(local);
    free(cfg);
    free(text);
    free(out);
    free(emit);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(flagship_manifests_pass_the_kubernetes_schema, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(apply_status_and_collect_drive_kubectl, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
