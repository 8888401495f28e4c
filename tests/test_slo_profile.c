/*
 * test_slo_profile.c - one SLO vocabulary and one default for every entry point: `plan`,
 * `run` (the config a run records and judges by), `study`, `plan --tenancy` and `report` all
 * judge by the default profile when nothing says otherwise, and say so; named profiles and the
 * keys beside them; an SLO missed even by one user is reported with its floor.
 */
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

#include "config/config.h"
#include "config/slo_profile.h"
#include "core/xalloc.h"

static char tmpdir[] = "/tmp/tb_slo_XXXXXX";

/* Runs a shell command; returns its exit status and (malloc'd) stdout. */
static int sh(const char *cmd, char **out)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 >= cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(f);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *write_file(const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

/* The default's own words, as every entry point must print them. */
static char *default_text(void)
{
    struct slo_cfg s;
    slo_from_profile(&s, slo_profile_default());
    char buf[200];
    slo_describe(&s, buf, sizeof(buf));
    return xstrdup(buf);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf %s", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static void profiles_are_named_and_sourced(void **state)
{
    (void)state;
    size_t n = 0;
    const struct slo_profile *p = slo_profiles(&n);
    assert_true(n >= 4);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(strstr(p[i].source, "MLPerf"));
        assert_true(p[i].tpot_ms > 0);
        assert_ptr_equal(slo_profile_find(p[i].name), &p[i]);
    }
    const struct slo_profile *d = slo_profile_default();
    assert_string_equal(d->name, "chat");
    assert_true(d->ttft_ms == 2000 && d->tpot_ms == 100 && d->percentile == 95);
    char *t = default_text();
    assert_string_equal(t, "chat: TTFT p95 <= 2000 ms, TPOT p95 <= 100 ms");
    free(t);
    assert_null(slo_profile_find("fast"));
}

/* A file's slo: the profile it names, then its own keys, whatever their order; null removes
 * an objective; a tenant's profile fills what it does not set. */
static void config_profiles_and_overrides(void **state)
{
    (void)state;
    char *p =
        write_file("c.yaml", "slo: {tpot_ms: 50, profile: interactive, e2e_ms: null}\n"
                             "tenants:\n"
                             "  - {name: a}\n"
                             "  - {name: b, slo: {profile: long_documents, ttft_ms: 9000}}\n");
    struct config c;
    char err[512];
    assert_int_equal(config_load(&c, p, err, sizeof(err)), 0);
    assert_true(c.slo.ttft_ms == 500 && c.slo.tpot_ms == 50 && isnan(c.slo.e2e_ms));
    assert_string_equal(c.slo.profile, "interactive");
    char buf[200];
    slo_describe(&c.slo, buf, sizeof(buf));
    assert_string_equal(buf, "interactive (changed): TTFT p95 <= 500 ms, TPOT p95 <= 50 ms");
    assert_true(c.tenants[0].slo.ttft_ms == 500 && c.tenants[0].slo.tpot_ms == 50);
    assert_true(c.tenants[1].slo.ttft_ms == 9000 && c.tenants[1].slo.tpot_ms == 175);
    config_release(&c);
    free(p);
    p = write_file("bad.yaml", "slo:\n  profile: snappy\n");
    assert_int_not_equal(config_load(&c, p, err, sizeof(err)), 0);
    assert_non_null(strstr(err, ":2:12: slo.profile: unknown profile"));
    assert_non_null(strstr(err, "chat, interactive"));
    free(p);
}

/* plan, validate (what run records and judges by), study, plan --tenancy and report: the
 * default, and its words, when nothing sets an SLO. */
static void every_entry_point_uses_the_default(void **state)
{
    (void)state;
    char *want = default_text(), *out = NULL;
    /* plan */
    char *cmd =
        xasprintf("%s plan --gpu rtx-pro-6000 --model llama-3.1-8b --users 2 --json", TB_BINARY);
    assert_int_equal(sh(cmd, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "slo"), "text")),
                        want);
    assert_true(json_number_value(json_object_get(j, "slo_ttft_ms")) == 2000);
    assert_non_null(strstr(json_string_value(json_object_get(j, "verdict")), want));
    json_decref(j);
    free(out);
    free(cmd);
    /* run: the config it records (validate --print shows the same resolved config) */
    char *run = write_file("run.yaml", "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                                       "requests: {num_requests: 4, concurrent_requests: 2,\n"
                                       "  prompt_tokens_min: 64, prompt_tokens_max: 64,\n"
                                       "  completion_tokens: 8}\n"
                                       "telemetry: {collect_gpu_stats: false}\n");
    cmd = xasprintf("%s validate --config %s --print", TB_BINARY, run);
    assert_int_equal(sh(cmd, &out), 0);
    j = json_loads(strchr(out, '{'), JSON_DISABLE_EOF_CHECK, NULL);
    json_t *slo = json_object_get(j, "slo");
    assert_string_equal(json_string_value(json_object_get(slo, "profile")), "chat");
    assert_true(json_number_value(json_object_get(slo, "ttft_ms")) == 2000);
    assert_true(json_number_value(json_object_get(slo, "tpot_ms")) == 100);
    json_decref(j);
    free(out);
    free(cmd);
    /* run itself, on the simulator: its summary is judged by the default, then the report on
     * it says the default above its matrix */
    char *res = xasprintf("%s/res", tmpdir);
    cmd = xasprintf("%s run --config %s --sim --output-dir %s --quiet >/dev/null 2>&1 && "
                    "%s report %s --no-predict --quiet && cat %s/report.md",
                    TB_BINARY, run, res, TB_BINARY, res, res);
    assert_int_equal(sh(cmd, &out), 0);
    /* report.md escapes "<" as "&lt;" (Markdown renders it back). */
    char md_want[256];
    size_t m = 0;
    for (const char *p = want; *p && m + 5 < sizeof(md_want); p++) {
        if (*p == '<') {
            memcpy(md_want + m, "&lt;", 4);
            m += 4;
        } else {
            md_want[m++] = *p;
        }
    }
    md_want[m] = '\0';
    char *line = xasprintf("- **SLO** %s", md_want);
    if (!strstr(out, line))
        fprintf(stderr, "want \"%s\" in:\n%s\n", line, out);
    assert_non_null(strstr(out, line));
    free(line);
    free(out);
    free(cmd);
    cmd = xasprintf("cat %s/*_summary.csv", res);
    assert_int_equal(sh(cmd, &out), 0);
    assert_non_null(strstr(out, "met")); /* judged: an 8B model at 2 users meets chat */
    free(out);
    free(cmd);
    /* study */
    char *study = write_file("study.yaml", "study: {name: s, users: [2], capacity_search: false}\n"
                                           "setups: {grid: {model: [llama-3.1-8b]}}\n"
                                           "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n");
    cmd = xasprintf("%s study --config %s --plan-only", TB_BINARY, study);
    assert_int_equal(sh(cmd, &out), 0);
    line = xasprintf("SLO %s\n", want);
    assert_non_null(strstr(out, line));
    free(line);
    free(out);
    free(cmd);
    /* plan --tenancy */
    char *ten = write_file("ten.yaml", "gpu: rtx-pro-6000\n"
                                       "strategies: [{name: shared, kind: shared}]\n"
                                       "tenants:\n"
                                       "  - {name: a, model: llama-3.1-8b, users: 2,\n"
                                       "     prompt_tokens: 256, output_tokens: 32}\n");
    cmd = xasprintf("%s plan --tenancy %s --json", TB_BINARY, ten);
    assert_int_equal(sh(cmd, &out), 0);
    assert_non_null(strstr(out, want));
    free(out);
    free(cmd);
    free(ten);
    free(study);
    free(res);
    free(run);
    free(want);
}

/* TPOT 5 ms is beyond a 70B model on one GPU at any user count: plan says so, with the floor. */
static void unreachable_slo_says_its_floor(void **state)
{
    (void)state;
    char *out = NULL;
    char *cmd =
        xasprintf("%s plan --gpu rtx-pro-6000 --model RedHatAI/Meta-Llama-3.1-70B-Instruct-FP8"
                  " --users 10 --slo-tpot-ms 5",
                  TB_BINARY);
    assert_int_equal(sh(cmd, &out), 0);
    assert_non_null(strstr(out, "Unreachable at any user count: TPOT floor "));
    assert_non_null(strstr(out, " > 5.0 ms (p95 with one user on this GPU)"));
    free(out);
    free(cmd);
    cmd = xasprintf("%s plan --gpu rtx-pro-6000 --model RedHatAI/Meta-Llama-3.1-70B-Instruct-FP8"
                    " --users 10 --slo-tpot-ms 5 --json",
                    TB_BINARY);
    assert_int_equal(sh(cmd, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_true(json_is_true(json_object_get(j, "slo_unreachable")));
    assert_non_null(strstr(json_string_value(json_object_get(j, "slo_floor")), "TPOT floor"));
    json_decref(j);
    free(out);
    free(cmd);
    /* Reachable: no floor is claimed. */
    cmd = xasprintf("%s plan --gpu rtx-pro-6000 --model RedHatAI/Meta-Llama-3.1-70B-Instruct-FP8"
                    " --users 200 --json",
                    TB_BINARY);
    assert_int_equal(sh(cmd, &out), 0);
    j = json_loads(out, 0, NULL);
    assert_true(json_is_false(json_object_get(j, "meets_slo")));
    assert_true(json_is_false(json_object_get(j, "slo_unreachable")));
    json_decref(j);
    free(out);
    free(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(profiles_are_named_and_sourced),
        cmocka_unit_test(config_profiles_and_overrides),
        cmocka_unit_test(every_entry_point_uses_the_default),
        cmocka_unit_test(unreachable_slo_says_its_floor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
