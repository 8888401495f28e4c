/* test_plan.c - `testbench plan` end to end through the built binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "tb_proc.h"

/* Runs `testbench plan ARGS`, returns its exit status and (malloc'd) stdout. */
static int run_plan(const char *args, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s plan %s 2>/dev/null", TB_BINARY, args);
    return tb_shell_capture(cmd, out);
}

static const char *const keys[] = {"gpu",
                                   "model",
                                   "quantization",
                                   "kv_cache_dtype",
                                   "weights_gib",
                                   "kv_budget_gib",
                                   "kv_bytes_per_token",
                                   "kv_capacity_tokens",
                                   "max_concurrency_at_window",
                                   "fits",
                                   "users",
                                   "ttft_p50_ms",
                                   "ttft_p95_ms",
                                   "tpot_p50_ms",
                                   "tpot_p95_ms",
                                   "itl_p50_ms",
                                   "user_tokens_per_s",
                                   "output_throughput",
                                   "verdict"};

static void check_keys(json_t *o)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!json_object_get(o, keys[i]))
            fprintf(stderr, "missing key %s\n", keys[i]);
        assert_non_null(json_object_get(o, keys[i]));
    }
}

static void does_not_fit(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_plan("--gpu l40s --model meta-llama/Llama-3.1-70B-Instruct --json", &out),
                     0);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    assert_non_null(o);
    check_keys(o);
    assert_true(json_is_false(json_object_get(o, "fits")));
    assert_true(json_is_null(json_object_get(o, "ttft_p50_ms")));
    const char *v = json_string_value(json_object_get(o, "verdict"));
    assert_non_null(strstr(v, "does not fit"));
    assert_non_null(strstr(v, "needs 131."));
    assert_true(json_real_value(json_object_get(o, "weights_gib")) > 120);
    json_decref(o);
    free(out);
    /* The text says the same. */
    assert_int_equal(run_plan("--gpu l40s --model llama-3.1-70b", &out), 0);
    assert_non_null(strstr(out, "does not fit: needs"));
    free(out);
}

static void sweep_rows(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_plan("--gpu rtx-pro-6000 --model llama-3.1-8b --max-model-len 2048 "
                              "--prompt-tokens 1920 --output-tokens 128 --users 1,16 "
                              "--population streams --json",
                              &out),
                     0);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    assert_non_null(o);
    json_t *rows = json_object_get(o, "rows");
    assert_int_equal(json_array_size(rows), 2);
    json_t *r1 = json_array_get(rows, 0), *r16 = json_array_get(rows, 1);
    check_keys(r1);
    check_keys(r16);
    assert_true(json_is_true(json_object_get(r1, "fits")));
    assert_int_equal(json_integer_value(json_object_get(r1, "kv_bytes_per_token")), 131072);
    assert_int_equal(json_integer_value(json_object_get(r16, "users")), 16);
    /* More users: more aggregate throughput, less per user. */
    double t1 = json_real_value(json_object_get(r1, "output_throughput"));
    double t16 = json_real_value(json_object_get(r16, "output_throughput"));
    assert_true(t16 > 4 * t1);
    assert_true(json_real_value(json_object_get(r16, "user_tokens_per_s")) <
                json_real_value(json_object_get(r1, "user_tokens_per_s")));
    /* TPOT of one user ≈ 1 / its token rate. */
    double tpot = json_real_value(json_object_get(r1, "tpot_p50_ms"));
    assert_true(tpot > 1 && tpot < 100);
    assert_true(json_real_value(json_object_get(r1, "ttft_p95_ms")) >=
                json_real_value(json_object_get(r1, "ttft_p50_ms")));
    json_decref(o);
    free(out);
}

static void acceptance_text(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_plan("--gpu rtx-pro-6000 --model meta-llama/Llama-3.1-70B-Instruct "
                              "--quantization fp8 --max-model-len 32768 --users 10",
                              &out),
                     0);
    assert_non_null(strstr(out, "source:"));
    assert_non_null(strstr(out, "97887 MiB"));
    assert_non_null(strstr(out, "KV bytes per token"));
    assert_non_null(strstr(out, "327680"));
    assert_non_null(strstr(out, "TTFT"));
    assert_non_null(strstr(out, "Verdict:"));
    free(out);
}

static void usage_errors(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_plan("--gpu rtx-pro-6000 --model no-such-model", &out), 2);
    free(out);
    assert_int_equal(run_plan("--model llama-3.1-8b", &out), 2);
    free(out);
    assert_int_equal(run_plan("--gpu h100 --model llama-3.1-8b --users zero", &out), 2);
    free(out);
    assert_int_equal(run_plan("--gpu h100 --model llama-3.1-8b --max-model-len 400000", &out), 2);
    free(out);
    /* --context meant two things (the window, and a prompt filling it): it is refused. */
    assert_int_equal(run_plan("--gpu h100 --model llama-3.1-8b --context 8192", &out), 2);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(does_not_fit),
        cmocka_unit_test(sweep_rows),
        cmocka_unit_test(acceptance_text),
        cmocka_unit_test(usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
