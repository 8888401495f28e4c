/*
 * test_cli_messages.c - what plan, plan --tenancy and sim say at the edges of their arguments
 * (issue 23 items 8 and 13, probe 2026-12 #19, #32 and #34): a list of models is refused, not
 * planned as one; a bad value names its range; a bad calibration profile is not buried under the
 * usage; a plan's simulated work is bounded (a huge plan is refused at once or cut down, instead
 * of minutes and gigabytes); tenants without objectives are not "every SLO met, headroom inf %";
 * a simulator that shrinks the window to what the KV cache holds says so.
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

static char dir[256];

#define LLAMA8 "meta-llama/Llama-3.1-8B-Instruct"

/* `timeout LIMIT testbench ARGS` with stdout and stderr in *out; its exit status (124: timed out).
 */
static int tb(int limit_s, const char *args, char **out)
{
    char *path = xasprintf("%s/out.txt", dir);
    char *cmd = xasprintf("timeout %d %s %s > %s 2>&1", limit_s, TB_BINARY, args, path);
    int st = system(cmd);
    *out = tb_read(path);
    if (!*out)
        *out = xstrdup("");
    free(cmd);
    free(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tb_cli_messages_XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return tb_remove_tree(dir) == 0 ? 0 : -1;
}

/* Item 8: `plan --model A,B` planned one model named "A,B" (or the first); it is refused with
 * what to do instead. */
static void plan_refuses_a_list_of_models(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(tb(60, "plan --gpu rtx-pro-6000 --model " LLAMA8 ",Qwen/Qwen3-8B", &out), 2);
    assert_non_null(strstr(out, "--model takes one model"));
    assert_non_null(strstr(out, "testbench catalog models"));
    assert_null(strstr(out, "usage:"));
    assert_null(strstr(out, "Verdict"));
    free(out);
}

/* Probe #34: "bad value 'N' for --X" now says what X takes; a calibration profile that does not
 * load says why in one line, without the whole usage after it. */
static void plan_says_the_range_and_keeps_errors_short(void **state)
{
    (void)state;
    static const struct {
        const char *arg, *says;
    } cases[] = {
        {"--tensor-parallel-size 1024", "a whole number of GPUs from 1 to 64"},
        {"--users 10000000", "a whole number from 1 to 100000"},
        {"--max-model-len 1000000000", "a whole number of tokens from 16 to 10000000"},
        {"--gpu-memory-utilization 1.5", "a fraction above 0 and at most 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *args = xasprintf("plan --gpu rtx-pro-6000 --model " LLAMA8 " %s", cases[i].arg);
        char *out;
        assert_int_equal(tb(60, args, &out), 2);
        if (!strstr(out, cases[i].says))
            fprintf(stderr, "%s: %s\n", cases[i].arg, out);
        assert_non_null(strstr(out, cases[i].says));
        assert_null(strstr(out, "usage:"));
        free(out);
        free(args);
    }
    char *cal = tb_write(dir, "bad_profile.yaml", "efficiency: {gemm: nope}\n");
    char *args = xasprintf("plan --gpu rtx-pro-6000 --model " LLAMA8 " --calibration %s", cal);
    char *out;
    assert_int_equal(tb(60, args, &out), 2);
    assert_non_null(strstr(out, "bad_profile.yaml"));
    assert_null(strstr(out, "usage:"));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
    free(out);
    free(args);
    free(cal);
    /* An unknown option is still a usage error with the usage. */
    assert_int_equal(tb(60, "plan --gpu rtx-pro-6000 --model " LLAMA8 " --bogus", &out), 2);
    assert_non_null(strstr(out, "usage:"));
    free(out);
}

/* Probe #19: 100000 users at 8192 tokens simulated 400000 requests (61 s, 3.6 GB); at 131072
 * tokens it had not finished after 300 s. Now beyond 20 M simulated tokens a plan is refused at
 * once with how many users fit, or (default requests) cut to what fits, at least one per user. */
static void plan_bounds_its_simulated_work(void **state)
{
    (void)state;
    char *out;
#define STREAMS_8K                                                                                 \
    " --population streams --max-model-len 8192 --prompt-tokens 7680 --output-tokens 512"
#define STREAMS_128K                                                                               \
    " --population streams --max-model-len 131072 --prompt-tokens 130560 --output-tokens 512"
    assert_int_equal(
        tb(60, "plan --gpu rtx-pro-6000 --model " LLAMA8 " --users 100000" STREAMS_8K, &out), 2);
    assert_non_null(strstr(out, "at most 2441 users at these lengths"));
    free(out);
    assert_int_equal(
        tb(60, "plan --gpu rtx-pro-6000 --model " LLAMA8 " --users 10 --requests 5000" STREAMS_8K,
           &out),
        2);
    assert_non_null(strstr(out, "at most 2441 at these lengths"));
    free(out);
    /* 128 users at 131072 tokens: 512 requests by default, 152 fit the bound; it answers. */
    assert_int_equal(
        tb(600, "plan --gpu rtx-pro-6000 --model " LLAMA8 " --users 128" STREAMS_128K, &out), 0);
    assert_non_null(strstr(out, "152 requests simulated instead of 512"));
    assert_non_null(strstr(out, "128 users, 152 requests"));
    assert_non_null(strstr(out, "Verdict:"));
    free(out);
    /* Users in conversation count whole conversations: 100000 of them are refused at once. */
    assert_int_equal(tb(60, "plan --gpu rtx-pro-6000 --model " LLAMA8 " --users 100000", &out), 2);
    assert_non_null(strstr(out, "a whole conversation"));
    free(out);
}

/* Probe #32: tenants without an slo got "every SLO met, headroom inf %" and a verdict built on
 * that infinite headroom. Now a tenant without an slo section is judged by the default profile
 * (every entry point's, docs/CONFIG.md "SLO profiles"), and says so; no infinite headroom. */
static void tenancy_without_objectives_is_not_judged(void **state)
{
    (void)state;
    char *file = tb_write(dir, "noslo.yaml",
                          "gpu: rtx-pro-6000\nseed: 1\n"
                          "tenants:\n"
                          "  - {name: a, model: " LLAMA8 ", users: 2, prompt_tokens: 256,\n"
                          "     output_tokens: 32, requests: 8}\n"
                          "  - {name: b, model: " LLAMA8 ", users: 2, prompt_tokens: 512,\n"
                          "     output_tokens: 32, requests: 8}\n"
                          "strategies:\n"
                          "  - {name: shared, kind: shared, gpu_memory_utilization: 0.9}\n"
                          "  - {name: halves, kind: partitioned, fractions: [0.45, 0.45]}\n");
    char *args = xasprintf("plan --tenancy %s", file);
    char *out;
    assert_int_equal(tb(120, args, &out), 0);
    assert_null(strstr(out, "inf %"));
    assert_null(strstr(out, "no tenant sets an SLO"));
    assert_non_null(strstr(out, "Verdict:"));
    free(out);
    free(args);
    args = xasprintf("plan --tenancy %s --json", file);
    assert_int_equal(tb(120, args, &out), 0);
    assert_null(strstr(out, "\"all_meet_slo\": null"));
    assert_non_null(strstr(out, "\"slo\": \"chat: TTFT p95 <= 2000 ms, TPOT p95 <= 100 ms\""));
    free(out);
    free(args);
    free(file);
    /* Objectives set to null judge nothing: no headroom of inf %, and the verdict says so. */
    file = tb_write(dir, "nullslo.yaml",
                    "gpu: rtx-pro-6000\nseed: 1\n"
                    "tenants:\n"
                    "  - {name: a, model: " LLAMA8 ", users: 2, prompt_tokens: 256,\n"
                    "     output_tokens: 32, requests: 8, slo: {ttft_ms: null, tpot_ms: null}}\n"
                    "strategies:\n"
                    "  - {name: shared, kind: shared, gpu_memory_utilization: 0.9}\n");
    args = xasprintf("plan --tenancy %s", file);
    assert_int_equal(tb(120, args, &out), 0);
    assert_null(strstr(out, "inf %"));
    assert_non_null(strstr(out, "no tenant sets an SLO"));
    free(out);
    free(args);
    free(file);
}

/* Item 13: without --max-model-len the simulator serves the window its KV cache holds (70B at
 * FP8 on one RTX PRO 6000: 48384 of 131072 tokens), where vLLM would refuse to start; one line
 * says so. With the flag, or when the whole window fits, nothing is said. */
static void sim_says_when_it_shrinks_the_window(void **state)
{
    (void)state;
    char *out;
    tb(4,
       "sim --port 0 --gpu rtx-pro-6000 --model meta-llama/Llama-3.1-70B-Instruct "
       "--quantization fp8",
       &out);
    assert_non_null(strstr(out, "the window is 48384 tokens, what the KV cache holds"));
    assert_non_null(strstr(out, "vLLM would refuse to start"));
    char *first = strstr(out, "the window is");
    assert_null(strstr(first + 1, "the window is")); /* one line */
    free(out);
    tb(4,
       "sim --port 0 --gpu rtx-pro-6000 --model meta-llama/Llama-3.1-70B-Instruct "
       "--quantization fp8 --max-model-len 32768",
       &out);
    assert_non_null(strstr(out, "GPU KV cache size"));
    assert_null(strstr(out, "the window is"));
    free(out);
    tb(4, "sim --port 0 --gpu rtx-pro-6000 --model " LLAMA8, &out);
    assert_non_null(strstr(out, "GPU KV cache size"));
    assert_null(strstr(out, "the window is"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plan_refuses_a_list_of_models),
        cmocka_unit_test(plan_says_the_range_and_keeps_errors_short),
        cmocka_unit_test(plan_bounds_its_simulated_work),
        cmocka_unit_test(tenancy_without_objectives_is_not_judged),
        cmocka_unit_test(sim_says_when_it_shrinks_the_window),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
