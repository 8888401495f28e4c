/*
 * test_notebook.c - notebooks/analysis.ipynb executed headless by Jupyter's nbconvert against
 * results of `run --sim` (a context × concurrency sweep with GPU telemetry from the NVML
 * double): every cell runs without an error, the counts it prints are the files' counts, and
 * its charts come out as images. The committed notebook must hold no outputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/xalloc.h"
#include "tb_proc.h"

static char dir[256];

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tb_notebook_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char *cfg = tb_write(dir, "nb.yaml",
                         "benchmark: {name: nb, output_prefix: nb, seed: 4}\n"
                         "server: {endpoint: \"http://127.0.0.1:1\"}\n"
                         "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                         "context_lengths: [512, 1024]\n"
                         "requests: {num_requests: 6, concurrent_requests: [2, 4],\n"
                         "           rate_per_second: inf, completion_tokens: 8}\n"
                         "slo: {ttft_ms: 400, tpot_ms: 50}\n"
                         "telemetry: {sample_interval_sec: 0.1}\n");
    assert_non_null(cfg);
    char *out = xasprintf("%s/results", dir);
    setenv("TESTBENCH_NVML_LIB", NVML_DOUBLE_PATH, 1);
    setenv("NVML_DOUBLE_SCENARIO", "ramp", 1);
    const char *args[] = {"testbench",    "run", "--config", cfg, "--sim",
                          "--output-dir", out,   "--quiet",  NULL};
    int rc = tb_run(TB_BINARY, args, NULL, 0, 0);
    unsetenv("TESTBENCH_NVML_LIB");
    unsetenv("NVML_DOUBLE_SCENARIO");
    assert_int_equal(rc, 0);
    free(cfg);
    free(out);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    free(cmd);
    return 0;
}

static void committed_notebook_has_no_outputs(void **state)
{
    (void)state;
    json_error_t je;
    json_t *nb = json_load_file(TB_SOURCE_DIR "/notebooks/analysis.ipynb", 0, &je);
    assert_non_null(nb);
    size_t i, code = 0;
    json_t *c;
    json_array_foreach(json_object_get(nb, "cells"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "cell_type")), "code") != 0)
            continue;
        code++;
        assert_int_equal(json_array_size(json_object_get(c, "outputs")), 0);
        assert_true(json_is_null(json_object_get(c, "execution_count")));
    }
    assert_true(code >= 5);
    json_decref(nb);
}

static void notebook_runs_on_sim_results(void **state)
{
    (void)state;
    /* What the notebook must find: counted from the files here. */
    char *results = xasprintf("%s/results", dir);
    char *detailed = tb_find(results, "_detailed.json");
    char *telemetry = tb_find(results, "_telemetry.json");
    assert_non_null(detailed);
    assert_non_null(telemetry);
    json_error_t je;
    json_t *d = json_load_file(detailed, 0, &je);
    json_t *t = json_load_file(telemetry, 0, &je);
    assert_non_null(d);
    assert_non_null(t);
    size_t points = json_array_size(json_object_get(d, "points")), requests = 0, i;
    json_t *p;
    json_array_foreach(json_object_get(d, "points"), i, p) requests +=
        json_array_size(json_object_get(p, "requests"));
    size_t samples = json_array_size(json_object_get(t, "samples"));
    assert_true(samples > 0);
    char *expect = xasprintf("runs: 1 points: %zu requests: %zu telemetry samples: %zu", points,
                             requests, samples);

    /* Debian's Jupyter and kernel (/usr/bin first: a user's own Python may lack them); no
     * bytecode written into the source tree. */
    char *cmd = xasprintf("cd %s/notebooks && PATH=/usr/bin:$PATH PYTHONDONTWRITEBYTECODE=1 "
                          "PYDEVD_DISABLE_FILE_VALIDATION=1 TESTBENCH_RESULTS=%s "
                          "jupyter nbconvert --to notebook --execute "
                          "--ExecutePreprocessor.timeout=120 --output-dir %s analysis.ipynb "
                          "> %s/nbconvert.log 2>&1",
                          TB_SOURCE_DIR, results, dir, dir);
    int rc = sh(cmd);
    if (rc != 0) {
        char *show = xasprintf("tail -40 %s/nbconvert.log >&2", dir);
        (void)!system(show);
        free(show);
    }
    assert_int_equal(rc, 0);
    char *executed = xasprintf("%s/analysis.ipynb", dir);
    json_t *nb = json_load_file(executed, 0, &je);
    assert_non_null(nb);
    size_t images = 0, errors = 0;
    bool counted = false;
    json_t *c;
    json_array_foreach(json_object_get(nb, "cells"), i, c)
    {
        size_t k;
        json_t *o;
        json_array_foreach(json_object_get(c, "outputs"), k, o)
        {
            const char *type = json_string_value(json_object_get(o, "output_type"));
            if (strcmp(type, "error") == 0)
                errors++;
            if (json_object_get(json_object_get(o, "data"), "image/png"))
                images++;
            json_t *text = json_object_get(o, "text");
            size_t m;
            json_t *line;
            json_array_foreach(text, m, line)
            {
                if (strstr(json_string_value(line), expect))
                    counted = true;
            }
        }
    }
    fprintf(stderr, "notebook: %zu images, %zu errors; expects \"%s\": %s\n", images, errors,
            expect, counted ? "found" : "missing");
    assert_int_equal(errors, 0);
    assert_true(counted);
    assert_true(images >= 4);
    json_decref(nb);
    json_decref(d);
    json_decref(t);
    free(executed);
    free(cmd);
    free(expect);
    free(detailed);
    free(telemetry);
    free(results);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(committed_notebook_has_no_outputs),
        cmocka_unit_test(notebook_runs_on_sim_results),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
