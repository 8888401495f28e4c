/*
 * test_telemetry_cmd.c - `testbench telemetry` as a user runs it: JSON lines from the NVML
 * double, the text table without NVML (said once on stderr, host columns still there),
 * SIGINT ends it with exit 0, and bad options are usage errors (2).
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
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

#include "core/clock.h"

#define OUT_PATH "test_telemetry_cmd.out"
#define ERR_PATH "test_telemetry_cmd.err"

/* Runs testbench with args (NULL-terminated); stdout/stderr to files. Sends SIGINT after
 * sigint_ms when > 0. Returns the exit status. */
static int run_tb(const char *nvml_lib, int sigint_ms, const char *const *args)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(OUT_PATH, "w", stdout) || !freopen(ERR_PATH, "w", stderr))
            _exit(127);
        setenv("TESTBENCH_NVML_LIB", nvml_lib, 1);
        setenv("NVML_DOUBLE_SCENARIO", "ramp", 1);
        setenv("NVML_DOUBLE_GPUS", "1", 1);
        char *argv[16] = {(char *)TB_BINARY, (char *)"telemetry"};
        int n = 2;
        for (; args[n - 2] && n < 15; n++)
            argv[n] = (char *)args[n - 2];
        argv[n] = NULL;
        execv(TB_BINARY, argv);
        _exit(127);
    }
    if (sigint_ms > 0) {
        clock_sleep_ns((mono_ns)sigint_ms * NS_PER_MS);
        kill(pid, SIGINT);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void json_lines_from_double(void **state)
{
    (void)state;
    static const char *const args[] = {"--interval", "0.1",       "--duration", "0.45",
                                       "--json",     "--no-host", NULL};
    assert_int_equal(run_tb(NVML_DOUBLE_PATH, 0, args), 0);
    char *out = slurp(OUT_PATH);
    size_t n = count_lines(out);
    assert_true(n >= 3 && n <= 6); /* t = 0, 0.1, ... 0.4 on an unloaded machine */
    char *line = out;
    for (size_t i = 0; i < n; i++) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        json_error_t err;
        json_t *s = json_loads(line, 0, &err);
        assert_non_null(s);
        json_t *g = json_array_get(json_object_get(s, "gpus"), 0);
        assert_true(fabs(json_number_value(json_object_get(g, "power_w")) -
                         (100.0 + 10.0 * (double)i)) < 1e-9);
        assert_null(json_object_get(s, "host"));
        json_decref(s);
        line = nl + 1;
    }
    assert_null(strstr(slurp(ERR_PATH), "GPU telemetry off"));
}

static void text_without_nvml(void **state)
{
    (void)state;
    static const char *const args[] = {"--interval", "0.1", "--duration", "0.25", NULL};
    assert_int_equal(run_tb("/nonexistent/libnvidia-ml.so.1", 0, args), 0);
    char *err = slurp(ERR_PATH);
    char *first = strstr(err, "GPU telemetry off");
    assert_non_null(first);
    assert_null(strstr(first + 1, "GPU telemetry off")); /* once */
    char *out = slurp(OUT_PATH);
    assert_true(out[0] == '#');
    assert_non_null(strstr(out, "host_MiB"));
    assert_true(count_lines(out) >= 3); /* header + samples */
}

static void sigint_ends_cleanly(void **state)
{
    (void)state;
    static const char *const args[] = {"--interval", "0.05", "--json", NULL};
    mono_ns t0 = clock_now();
    assert_int_equal(run_tb(NVML_DOUBLE_PATH, 300, args), 0);
    assert_true(clock_now() - t0 < 3 * NS_PER_S);
    assert_true(count_lines(slurp(OUT_PATH)) >= 3);
}

static void usage_errors(void **state)
{
    (void)state;
    static const char *const bad1[] = {"--interval", "0.01", NULL};
    static const char *const bad2[] = {"--duration", "soon", NULL};
    static const char *const bad3[] = {"--frobnicate", NULL};
    assert_int_equal(run_tb(NVML_DOUBLE_PATH, 0, bad1), 2);
    assert_int_equal(run_tb(NVML_DOUBLE_PATH, 0, bad2), 2);
    assert_int_equal(run_tb(NVML_DOUBLE_PATH, 0, bad3), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_lines_from_double),
        cmocka_unit_test(text_without_nvml),
        cmocka_unit_test(sigint_ends_cleanly),
        cmocka_unit_test(usage_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    remove(OUT_PATH);
    remove(ERR_PATH);
    return rc;
}
