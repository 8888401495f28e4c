/*
 * test_compare.c - `testbench compare` on runs of the simulator: a GPU 1.2x slower (a catalog
 * entry with the L40S's bandwidth and compute divided by 1.2) is a TTFT regression beyond
 * noise; the same setup with another seed is not; points that do not match are an error. And
 * the bootstrap itself on samples drawn here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/rng.h"
#include "core/xalloc.h"
#include "report/bootstrap.h"
#include "tb_proc.h"

static char dir[256];
static char *run_a, *run_b, *run_c, *run_other;

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs a config into dir/name/ and returns that folder. */
static char *sim_run(const char *name, const char *gpu, int seed, int context, int requests)
{
    char *yaml = xasprintf("benchmark: {name: cmp, output_prefix: cmp, seed: %d}\n"
                           "server: {endpoint: \"http://127.0.0.1:1\",\n"
                           "         sim: {gpu: %s, catalog: \"%s/catalog\"}}\n"
                           "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                           "context_lengths: [%d]\n"
                           "requests: {num_requests: %d, concurrent_requests: 1,\n"
                           "           rate_per_second: inf, completion_tokens: 4}\n"
                           "telemetry: {sample_interval_sec: 0.5, collect_gpu_stats: false}\n",
                           seed, gpu, dir, context, requests);
    char *file = xasprintf("%s.yaml", name);
    char *cfg = tb_write(dir, file, yaml);
    assert_non_null(cfg);
    char *out = xasprintf("%s/%s", dir, name);
    const char *args[] = {"testbench",    "run", "--config", cfg,
                          "--output-dir", out,   "--quiet",  NULL};
    assert_int_equal(tb_run(TB_BINARY, args, NULL, 0, 0), 0);
    free(cfg);
    free(file);
    free(yaml);
    return out;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tb_compare_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char *gpus = xasprintf("%s/catalog/gpus", dir);
    char *mk = xasprintf("mkdir -p %s", gpus);
    assert_int_equal(sh(mk), 0);
    /* The built-in L40S, 1.2x slower in every figure the cost model uses. */
    char *slow = tb_write(gpus, "l40s-slow.yaml",
                          "name: l40s-slow\ndisplay_name: L40S at 1/1.2\nmemory_mib: 46068\n"
                          "bandwidth_gbs: 720\nfp16_tflops: 301.6667\nfp8_tflops: 610.8333\n"
                          "fp4_tflops: 0\nint8_tops: 610.8333\ntdp_w: 350\n"
                          "interconnect: PCIe\np2p_bandwidth_gbs: 20.8333\nsource: test\n");
    assert_non_null(slow);
    run_a = sim_run("a", "l40s", 1, 2048, 12);
    run_b = sim_run("b", "l40s-slow", 1, 2048, 12);
    run_c = sim_run("c", "l40s", 2, 2048, 12);
    run_other = sim_run("other", "l40s", 1, 1024, 2); /* matches nothing */
    free(slow);
    free(mk);
    free(gpus);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    free(cmd);
    free(run_a);
    free(run_b);
    free(run_c);
    free(run_other);
    return 0;
}

static json_t *compare_json(const char *a, const char *b)
{
    char *out = xasprintf("%s/cmp.json", dir);
    char *cmd = xasprintf("%s compare %s %s --json > %s", TB_BINARY, a, b, out);
    assert_int_equal(sh(cmd), 0);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    assert_non_null(j);
    free(cmd);
    free(out);
    return j;
}

static void slower_gpu_is_a_ttft_regression(void **state)
{
    (void)state;
    json_t *j = compare_json(run_a, run_b);
    size_t i, ttft_rows = 0;
    json_t *r;
    json_array_foreach(json_object_get(j, "rows"), i, r)
    {
        const char *metric = json_string_value(json_object_get(r, "metric"));
        if (strncmp(metric, "ttft_", 5) != 0)
            continue;
        ttft_rows++;
        if (strcmp(metric, "ttft_p95_ms") == 0) {
            /* 12 requests: 0.6 beyond p95, too few to test it; it is shown, not called. */
            assert_false(json_is_true(json_object_get(r, "significant")));
            assert_non_null(strstr(json_string_value(json_object_get(r, "verdict")), "too few"));
            continue;
        }
        double change = json_number_value(json_object_get(r, "change_pct"));
        fprintf(stderr, "%s: %+.1f%% [%g, %g] %s\n", metric, change,
                json_number_value(json_object_get(r, "ci_low")),
                json_number_value(json_object_get(r, "ci_high")),
                json_string_value(json_object_get(r, "verdict")));
        assert_true(json_is_true(json_object_get(r, "significant")));
        assert_string_equal(json_string_value(json_object_get(r, "verdict")), "regression");
        assert_true(change > 10 && change < 40);
        assert_true(json_number_value(json_object_get(r, "ci_low")) > 0);
    }
    assert_int_equal(ttft_rows, 2);
    json_decref(j);
    /* The Markdown table says it too, and --output writes a page with the comparison. */
    char *md = xasprintf("%s/cmp.md", dir);
    char *html = xasprintf("%s/cmp.html", dir);
    char *cmd = xasprintf("%s compare %s %s --output %s > %s", TB_BINARY, run_a, run_b, html, md);
    assert_int_equal(sh(cmd), 0);
    FILE *f = fopen(md, "r");
    assert_non_null(f);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "**regression**"));
    struct stat st;
    assert_int_equal(stat(html, &st), 0);
    f = fopen(html, "r");
    assert_non_null(f);
    char *page = xcalloc((size_t)st.st_size + 1, 1);
    assert_int_equal(fread(page, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    assert_non_null(strstr(page, "id=\"compare\""));
    assert_non_null(strstr(page, "data-kind=\"compare\""));
    free(page);
    /* The page in headless Chromium, as test_report does: clean, offline, the change drawn. */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    char *out = xasprintf("%s/browser.json", dir);
    char *browse = xasprintf("PLAYWRIGHT_CORE=%s/.tools/node/node_modules/playwright-core node "
                             "%s/tests/report_browser.cjs %s %s/compare-screenshot.png > %s",
                             TB_SOURCE_DIR, TB_SOURCE_DIR, html, cwd, out);
    assert_int_equal(sh(browse), 0);
    json_error_t je;
    json_t *b = json_load_file(out, 0, &je);
    assert_non_null(b);
    assert_int_equal(json_array_size(json_object_get(b, "console")), 0);
    assert_int_equal(json_array_size(json_object_get(b, "page_errors")), 0);
    assert_int_equal(json_array_size(json_object_get(b, "requests")), 0);
    size_t compare_charts = 0;
    json_t *c;
    json_array_foreach(json_object_get(b, "charts"), i, c)
    {
        assert_true(json_is_true(json_object_get(c, "chart")));
        assert_true(json_integer_value(json_object_get(c, "points")) > 0);
        if (strcmp(json_string_value(json_object_get(c, "kind")), "compare") == 0)
            compare_charts++;
    }
    assert_int_equal(compare_charts, 1);
    json_decref(b);
    free(browse);
    free(out);
    free(cmd);
    free(md);
    free(html);
}

static void another_seed_is_not_significant(void **state)
{
    (void)state;
    json_t *j = compare_json(run_a, run_c);
    size_t i, rows = 0;
    json_t *r;
    json_array_foreach(json_object_get(j, "rows"), i, r)
    {
        rows++;
        if (json_is_true(json_object_get(r, "significant")))
            fprintf(stderr, "called: %s\n", json_dumps(r, JSON_COMPACT));
        assert_false(json_is_true(json_object_get(r, "significant")));
    }
    assert_true(rows >= 6);
    json_decref(j);
}

static void unmatched_points_exit_2(void **state)
{
    (void)state;
    char *cmd = xasprintf("%s compare %s %s > /dev/null 2>&1", TB_BINARY, run_a, run_other);
    assert_int_equal(sh(cmd), 2);
    free(cmd);
    cmd = xasprintf("%s compare %s > /dev/null 2>&1", TB_BINARY, run_a);
    assert_int_equal(sh(cmd), 2);
    free(cmd);
}

/* Two samples of one distribution: the interval holds 0. One 20% larger: it does not, and it
 * holds the true difference. */
static void bootstrap_intervals(void **state)
{
    (void)state;
    struct rng r;
    rng_seed(&r, 42);
    size_t n = 400;
    double *a = xmalloc(n * sizeof(double)), *b = xmalloc(n * sizeof(double)),
           *c = xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        a[i] = 100 + 10 * rng_normal(&r);
        b[i] = 100 + 10 * rng_normal(&r);
        c[i] = 120 + 10 * rng_normal(&r);
    }
    struct bootstrap_result same, shifted;
    bootstrap_quantile_diff(a, n, b, n, 0.5, 7, &same);
    bootstrap_quantile_diff(a, n, c, n, 0.5, 7, &shifted);
    assert_true(same.low < 0 && same.high > 0);
    assert_true(shifted.low > 0);
    assert_true(shifted.low < 20 && shifted.high > 20);
    assert_true(fabs(same.a - 100) < 3 && fabs(shifted.b - 120) < 3);
    /* The inputs are left as they were. */
    assert_true(a[0] != 0);
    struct bootstrap_result none;
    bootstrap_quantile_diff(a, 0, b, n, 0.5, 7, &none);
    assert_true(isnan(none.low));
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slower_gpu_is_a_ttft_regression),
        cmocka_unit_test(another_seed_is_not_significant),
        cmocka_unit_test(unmatched_points_exit_2),
        cmocka_unit_test(bootstrap_intervals),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
