/*
 * test_calibration_profile.c - a calibration profile is about one GPU and says how much its fit
 * can be trusted (probe 2026-12 #17 and #35): `calibrate --gpu X` on results the files say came
 * from Y is refused (or forced, and then named after X); a fit of fewer points than parameters
 * is not taken as the plan's uncertainty band; plan and sim name a profile fitted on another
 * GPU; a profile with a key given twice or absurd fit figures is refused with its line.
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

#include "core/xalloc.h"
#include "tb_proc.h"

#define LLAMA8 "meta-llama/Llama-3.1-8B-Instruct"

static char dir[256];
static char *results; /* a detailed.json of two closed-loop points on the simulated RTX PRO 6000 */

/* `timeout 120 testbench ARGS` with stdout and stderr in *out; its exit status. */
static int tb(const char *args, char **out)
{
    char *path = xasprintf("%s/out.txt", dir);
    char *cmd = xasprintf("cd %s && timeout 120 %s %s > %s 2>&1", dir, TB_BINARY, args, path);
    int st = system(cmd);
    *out = tb_read(path);
    if (!*out)
        *out = xstrdup("");
    if (getenv("TB_TEST_VERBOSE"))
        fprintf(stderr, "$ %s\n%s\n", args, *out);
    free(cmd);
    free(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tb_cal_profile_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char *cfg = tb_write(dir, "c.yaml",
                         "benchmark: {name: cal, output_prefix: cal, seed: 1}\n"
                         "server: {api: completions, sim: {gpu: rtx-pro-6000}}\n"
                         "model: {name: " LLAMA8 "}\n"
                         "requests: {num_requests: 8, concurrent_requests: [1, 4],\n"
                         "           rate_per_second: inf, prompt_tokens_min: 200,\n"
                         "           prompt_tokens_max: 200, completion_tokens: 32}\n"
                         "telemetry: {sample_interval_sec: 0.5, collect_gpu_stats: false}\n");
    assert_non_null(cfg);
    char *out = xasprintf("%s/res", dir);
    const char *args[] = {"testbench",    "run", "--config", cfg, "--sim",
                          "--output-dir", out,   "--quiet",  NULL};
    assert_int_equal(tb_run(TB_BINARY, args, NULL, 0, 0), 0);
    results = tb_find(out, "_detailed.json");
    assert_non_null(results);
    free(out);
    free(cfg);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(results);
    return tb_remove_tree(dir) == 0 ? 0 : -1;
}

/* Probe #17: results of the simulated RTX PRO 6000 calibrated with --gpu h100 gave a profile
 * named h100-sxm holding the RTX's bandwidth ratio, without a word. */
static void calibrate_refuses_a_gpu_the_files_contradict(void **state)
{
    (void)state;
    char *out;
    char *args = xasprintf("calibrate %s --gpu h100 --output wrong.yaml", results);
    assert_int_equal(tb(args, &out), 2);
    assert_non_null(strstr(out, "was measured on rtx-pro-6000"));
    assert_non_null(strstr(out, "not h100-sxm as --gpu says"));
    assert_non_null(strstr(out, "--force"));
    free(out);
    char *path = xasprintf("%s/wrong.yaml", dir);
    assert_int_not_equal(access(path, F_OK), 0); /* nothing written */
    free(args);
    /* Forced: written under the GPU asked for, and it says its 2 points cannot vouch for it. */
    args = xasprintf("calibrate %s --gpu h100 --force --output wrong.yaml", results);
    assert_int_equal(tb(args, &out), 0);
    assert_non_null(strstr(out, "2 points for "));
    assert_non_null(strstr(out, "plan keeps the uncalibrated uncertainty band"));
    free(out);
    char *profile = tb_read(path);
    assert_non_null(profile);
    assert_non_null(strstr(profile, "gpu: \"h100-sxm\""));
    assert_non_null(strstr(profile, "points: 2\n"));
    assert_non_null(strstr(profile, "parameters: "));
    free(profile);
    free(path);
    free(args);
}

/* Probe #17: plan said "Uncertainty: ... +/-5 % (median error after the fit of your calibration
 * profile, 2 points)" for a fit of 2 points; with at least as many points as parameters it still
 * does. */
static void plan_takes_a_fit_error_only_from_enough_points(void **state)
{
    (void)state;
    char *out;
    char *args = xasprintf("calibrate %s --gpu h100 --force --output few.yaml", results);
    assert_int_equal(tb(args, &out), 0);
    free(out);
    free(args);
    assert_int_equal(tb("plan --gpu h100 --model " LLAMA8 " --calibration few.yaml", &out), 0);
    assert_null(strstr(out, "median error after the fit"));
    assert_non_null(strstr(out, "not your profile's fit: 2 points"));
    free(out);
    char *enough = tb_write(dir, "enough.yaml",
                            "kind: calibration\ngpu: h100-sxm\nengine: vllm\n"
                            "fit: {points: 6, parameters: 5, error_before_pct: 20.0,\n"
                            "      error_after_pct: 7.5}\n");
    assert_int_equal(tb("plan --gpu h100 --model " LLAMA8 " --calibration enough.yaml", &out), 0);
    assert_non_null(strstr(out, "+/-8 %"));
    assert_non_null(strstr(out, "median error after the fit of your calibration profile, 6"));
    free(out);
    free(enough);
}

/* Probe #17: a profile fitted on the H100 applied to an RTX PRO 6000 plan or simulator was
 * silent. */
static void a_profile_of_another_gpu_is_named(void **state)
{
    (void)state;
    char *p = tb_write(dir, "h100.yaml",
                       "kind: calibration\ngpu: h100-sxm\nengine: vllm\n"
                       "efficiency: {weight_bandwidth: 0.70}\n"
                       "fit: {points: 6, parameters: 5, error_after_pct: 3.0}\n");
    char *out;
    assert_int_equal(tb("plan --gpu rtx-pro-6000 --model " LLAMA8 " --calibration h100.yaml", &out),
                     0);
    assert_non_null(strstr(out, "was fitted on h100-sxm, not rtx-pro-6000"));
    assert_null(strstr(out, "median error after the fit"));
    free(out);
    assert_int_equal(tb("plan --gpu h100 --model " LLAMA8 " --calibration h100.yaml", &out), 0);
    assert_null(strstr(out, "was fitted on"));
    free(out);
    /* The simulator serving another card with it, for three seconds. */
    char *cmd = xasprintf("cd %s && (timeout -s INT 3 %s sim --port 0 --gpu rtx-pro-6000 "
                          "--calibration h100.yaml > sim.txt 2>&1; true)",
                          dir, TB_BINARY);
    assert_int_equal(system(cmd), 0);
    char *sim_path = xasprintf("%s/sim.txt", dir);
    char *sim = tb_read(sim_path);
    assert_non_null(sim);
    assert_non_null(strstr(sim, "calibration profile was fitted on h100-sxm, not rtx-pro-6000"));
    free(sim);
    free(sim_path);
    free(cmd);
    free(p);
}

/* Probe #35: `efficiency: {gemm: 0.6, gemm: 0.1}` took the second silently (TTFT 826 -> 4375
 * ms); `fit: {points: 1000000000, error_after_pct: 1000000000}` printed "+/-1000000000 %". */
static void duplicate_keys_and_absurd_fits_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *name, *text, *says;
    } cases[] = {
        {"dup_eff.yaml", "kind: calibration\nefficiency: {gemm: 0.6, gemm: 0.1}\n",
         "dup_eff.yaml:2:25: gemm: duplicate key (first given at line 2)"},
        {"dup_top.yaml", "kind: calibration\ngpu: h100-sxm\ngpu: rtx-pro-6000\n",
         "dup_top.yaml:3:1: gpu: duplicate key (first given at line 2)"},
        {"dup_fit.yaml", "kind: calibration\nfit:\n  points: 6\n  points: 60\n",
         "dup_fit.yaml:4:3: points: duplicate key"},
        {"big_points.yaml", "kind: calibration\nfit: {points: 1000000000}\n",
         "big_points.yaml:2:15: points: 1e+09 is outside [0, 512]"},
        {"big_error.yaml", "kind: calibration\nfit: {points: 6, error_after_pct: 1000000000}\n",
         "error_after_pct: 1e+09 is outside [0, 1000]"},
        {"half_point.yaml", "kind: calibration\nfit: {points: 2.5}\n",
         "points: expected a whole number"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = tb_write(dir, cases[i].name, cases[i].text);
        char *args = xasprintf("plan --gpu h100 --model " LLAMA8 " --calibration %s", p);
        char *out;
        assert_int_equal(tb(args, &out), 2);
        if (!strstr(out, cases[i].says))
            fprintf(stderr, "%s: %s\n", cases[i].name, out);
        assert_non_null(strstr(out, cases[i].says));
        free(out);
        free(args);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(calibrate_refuses_a_gpu_the_files_contradict),
        cmocka_unit_test(plan_takes_a_fit_error_only_from_enough_points),
        cmocka_unit_test(a_profile_of_another_gpu_is_named),
        cmocka_unit_test(duplicate_keys_and_absurd_fits_are_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
