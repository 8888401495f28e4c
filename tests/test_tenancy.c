/* test_tenancy.c - tenancy files and `testbench plan --tenancy` end to end. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "tenancy/tenancy.h"

static char tmp_path[64];

static const char *write_tmp(const char *text)
{
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/tb_tenancy_XXXXXX");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return tmp_path;
}

#define TWO_TENANTS                                                                                \
    "gpu: rtx-pro-6000\n"                                                                          \
    "tenants:\n"                                                                                   \
    "  - {name: chat, model: llama-3.1-8b, users: 4, prompt_tokens: 512, output_tokens: 64,\n"     \
    "     requests: 16, slo: {ttft_ms: 1000, tpot_ms: 60}}\n"                                      \
    "  - {name: batch, model: llama-3.1-8b, users: 4, prompt_tokens: 2048, output_tokens: 128,\n"  \
    "     requests: 16, slo: {ttft_ms: 20000, tpot_ms: 200}}\n"

/* Loads text; returns the rc and leaves the message in err. */
static int load_text(const char *text, char *err, size_t errlen)
{
    struct tenancy_cfg c;
    const char *p = write_tmp(text);
    int rc = tenancy_cfg_load(&c, p, err, errlen);
    tenancy_cfg_release(&c);
    unlink(p);
    return rc;
}

static void config_good_and_bad(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(load_text(TWO_TENANTS "strategies:\n  - {kind: shared}\n"
                                           "  - {kind: partitioned, fractions: [0.45, 0.45]}\n"
                                           "  - {kind: mig, profiles: [2g.48gb, 2g.48gb]}\n",
                               err, sizeof(err)),
                     0);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {TWO_TENANTS "strategies:\n  - {kind: partitioned, fractions: [0.45]}\n",
         ":8:36: fractions: partitioned needs one fraction per tenant (2 tenants, 1 given)"},
        {TWO_TENANTS "strategies:\n  - {kind: timeshare}\n", ":8:12: kind: expected shared"},
        {TWO_TENANTS "strategies:\n  - {kind: shared, colour: red}\n",
         ":8:20: colour: unknown key"},
        {TWO_TENANTS, "strategies: expected a list"},
        {"gpu: rtx-pro-6000\ntenants:\n  - {name: a, model: m, prompt_tokens: 5, output_tokens: "
         "5}\nstrategies: [{kind: shared}]\n",
         ":3:5: a: give either users (closed loop) or rate"},
        {TWO_TENANTS "strategies:\n  - {kind: partitioned, fractions: [0.45, 1.5]}\n",
         "fractions: expected a number in [0.01, 1]"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(load_text(bad[i].text, err, sizeof(err)), -EINVAL);
        if (!strstr(err, bad[i].want))
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, err, bad[i].want);
        assert_non_null(strstr(err, bad[i].want));
        assert_non_null(strstr(err, "/tmp/tb_tenancy_")); /* the file is named */
    }
}

/* Runs `testbench plan --tenancy FILE --json`; returns the parsed output (NULL on failure). */
static json_t *plan_json(const char *path, int *status)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s plan --tenancy %s --json 2>/dev/null", TB_BINARY, path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    json_error_t je;
    json_t *j = json_loadf(f, 0, &je);
    int st = pclose(f);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return j;
}

static json_t *strategy(json_t *j, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(j, "strategies"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
            return s;
    }
    fail_msg("no strategy %s", name);
    return NULL;
}

static double tenant_num(json_t *s, size_t t, const char *key)
{
    json_t *x = json_array_get(json_object_get(s, "tenants"), t);
    return json_number_value(json_object_get(x, key));
}

/* The three strategies side by side: MIG slices are isolated (interference exactly 1), the
 * partitions time-slice (a tenant decodes slower next to the other), the shared engine batches
 * both (one KV pool larger than either partition's). */
static void strategies_compared(void **state)
{
    (void)state;
    const char *p = write_tmp(TWO_TENANTS "strategies:\n  - {name: one, kind: shared}\n"
                                          "  - {name: halves, kind: partitioned, fractions: "
                                          "[0.45, 0.45]}\n"
                                          "  - {name: slices, kind: mig, profiles: [2g.48gb, "
                                          "mig-2g.48gb]}\n");
    int st;
    json_t *j = plan_json(p, &st);
    unlink(p);
    assert_int_equal(st, 0);
    assert_non_null(j);
    json_t *one = strategy(j, "one"), *halves = strategy(j, "halves"),
           *slices = strategy(j, "slices");
    assert_true(json_is_true(json_object_get(one, "fits")));
    for (size_t t = 0; t < 2; t++) {
        assert_true(fabs(tenant_num(slices, t, "interference_tpot") - 1.0) < 1e-9);
        assert_true(tenant_num(halves, t, "interference_tpot") > 1.1);
        double att = tenant_num(halves, t, "slo_attainment_pct");
        assert_true(att >= 0 && att <= 100);
    }
    json_t *i_one = json_array_get(json_object_get(one, "instances"), 0);
    json_t *i_half = json_array_get(json_object_get(halves, "instances"), 0);
    assert_true(json_number_value(json_object_get(i_one, "kv_budget_gib")) >
                2 * json_number_value(json_object_get(i_half, "kv_budget_gib")));
    double jain =
        json_number_value(json_object_get(json_object_get(halves, "total"), "jain_fairness"));
    assert_true(jain > 0.5 && jain <= 1.0);
    assert_non_null(json_string_value(json_object_get(j, "verdict")));
    json_decref(j);
}

/* Strategies that do not fit say so with the numbers and do not stop the others. */
static void does_not_fit(void **state)
{
    (void)state;
    const char *p = write_tmp(
        "gpu: rtx-pro-6000\n"
        "tenants:\n"
        "  - {name: big, model: llama-3.1-70b, users: 1, prompt_tokens: 256, output_tokens: 16,\n"
        "     slo: {tpot_ms: 500}}\n"
        "  - {name: small, model: llama-3.1-8b, users: 1, prompt_tokens: 256, output_tokens: 16}\n"
        "strategies:\n"
        "  - {name: too-much, kind: partitioned, fractions: [0.6, 0.6]}\n"
        "  - {name: slices, kind: mig, profiles: [2g.48gb, 2g.48gb]}\n"
        "  - {name: three, kind: mig, profiles: [4g.96gb, 1g.24gb]}\n"
        "  - {name: one, kind: shared}\n");
    int st;
    json_t *j = plan_json(p, &st);
    unlink(p);
    assert_int_equal(st, 0);
    assert_non_null(j);
    static const struct {
        const char *name, *want;
    } cases[] = {
        {"too-much", "fractions add up to 1.20"},
        {"slices", "GiB for weights, has 41.4 GiB"}, /* 70B bf16 on a 48 GB slice */
        {"three", "need 1.25 of the GPU's memory"},
        {"one", "one engine serves one model"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *s = strategy(j, cases[i].name);
        assert_true(json_is_false(json_object_get(s, "fits")));
        const char *msg = json_string_value(json_object_get(s, "fit_msg"));
        if (!msg || !strstr(msg, cases[i].want))
            fprintf(stderr, "%s: '%s'\n", cases[i].name, msg ? msg : "(null)");
        assert_non_null(msg);
        assert_non_null(strstr(msg, cases[i].want));
    }
    assert_true(json_is_null(json_object_get(j, "best")));
    json_decref(j);
}

static void shipped_config(void **state)
{
    (void)state;
    int st;
    json_t *j = plan_json(TB_SOURCE_DIR "/configs/tenancy/rtx_pro_6000.yaml", &st);
    assert_int_equal(st, 0);
    assert_non_null(j);
    assert_true(json_array_size(json_object_get(j, "strategies")) >= 3);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_good_and_bad),
        cmocka_unit_test(strategies_compared),
        cmocka_unit_test(does_not_fit),
        cmocka_unit_test(shipped_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
