/*
 * test_harden_run.c - `testbench run` against hostile input and a hostile world (issue 13):
 * configs that validated but could not run, servers that lie or never stop, signals during
 * waits, unwritable outputs, secrets and terminal escapes. Each test is named after the defect
 * it guards; every one drives the real binary, output captured.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "fake_server.h"
#include "tb_proc.h"

/* A test's process: a scratch folder, and the fake server when it needs one. */
struct fixture {
    char dir[256];
    struct fake_server *fs;
    int port;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/tb_harden_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(fake_server_start(&f->fs), 0);
    f->port = fake_server_port(f->fs);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fake_server_stop(f->fs);
    char *cmd = xasprintf("chmod -R u+w %s; rm -rf %s", f->dir, f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    free(cmd);
    free(f);
    return 0;
}

/* How to run the binary. */
struct proc_opts {
    double signal_after_s; /* > 0: send sig this long after the start */
    int sig;
    rlim_t nofile; /* > 0: RLIMIT_NOFILE (soft and hard) in the child */
    const char *stdin_path;
};

/* Runs TB_BINARY with args (NULL-terminated, args[0] ignored), stdout and stderr into
 * dir/name.out; returns the exit status (128 + signal when killed) and the output in *text
 * (caller frees). */
static int run_proc(const struct fixture *f, const char *name, const char *const *args,
                    const struct proc_opts *o, char **text)
{
    char *log = xasprintf("%s/%s.out", f->dir, name);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        if (o && o->nofile) {
            struct rlimit rl = {o->nofile, o->nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl))
                _exit(125);
        }
        execv(TB_BINARY, (char *const *)args);
        _exit(127);
    }
    int status;
    pid_t got = 0;
    if (o && o->sig) {
        /* The signal goes only to a child still running at that time. */
        mono_ns at = clock_now() + s_to_ns(o->signal_after_s);
        while ((got = waitpid(pid, &status, WNOHANG)) == 0 && clock_now() < at)
            clock_sleep_ns(10 * NS_PER_MS);
        if (got == 0)
            kill(pid, o->sig);
    }
    if (got == 0)
        got = waitpid(pid, &status, 0);
    assert_int_equal(got, pid);
    FILE *fp = fopen(log, "r");
    assert_non_null(fp);
    struct buf b;
    buf_init(&b, 1 << 24);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(fp);
    assert_int_equal(buf_append(&b, "", 1), 0);
    *text = xstrdup(b.data);
    buf_release(&b);
    free(log);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *write_config(const struct fixture *f, const char *name, const char *body)
{
    char *file = xasprintf("%s.yaml", name);
    char *path = tb_write(f->dir, file, body);
    free(file);
    assert_non_null(path);
    return path;
}

/* `testbench validate` must refuse body with exit 2 and a message holding every word in
 * want (NULL-terminated). */
static void expect_invalid(const struct fixture *f, const char *name, const char *body,
                           const char *const *want)
{
    char *cfg = write_config(f, name, body);
    const char *args[] = {"testbench", "validate", "--config", cfg, NULL};
    char *out = NULL;
    int rc = run_proc(f, name, args, NULL, &out);
    if (rc != 2)
        fprintf(stderr, "%s: exit %d: %s\n", name, rc, out);
    assert_int_equal(rc, 2);
    for (const char *const *w = want; *w; w++) {
        if (!strstr(out, *w))
            fprintf(stderr, "%s: '%s' missing from: %s\n", name, *w, out);
        assert_non_null(strstr(out, *w));
    }
    free(out);
    free(cfg);
}

/* ---- config rules -------------------------------------------------------------------- */

/* Item 8: a later context that fits must not hide an earlier one that leaves no room. */
static void tenant_context_check_sees_every_context(void **state)
{
    struct fixture *f = *state;
    const char *want[] = {"context_lengths[0]", "context 100 leaves no room",
                          "tenants[0].requests.completion_tokens is 1000", NULL};
    expect_invalid(f, "ctx_tenant",
                   "context_lengths: [100, 4096]\n"
                   "requests: {completion_tokens: 10}\n"
                   "tenants:\n"
                   "  - {name: a, requests: {completion_tokens: 1000}}\n",
                   want);
}

/* Item 9: a timeout libcurl would round to 0 ms ("no timeout"). */
static void tiny_timeout_is_refused(void **state)
{
    struct fixture *f = *state;
    const char *want[] = {"server.timeout_s", "at least 0.001", NULL};
    expect_invalid(f, "timeout", "server: {timeout_s: 0.0004}\n", want);
}

/* Item 6: an interval that overflowed the sampler's clock (SIGFPE), config and CLI. */
static void huge_telemetry_interval_is_refused(void **state)
{
    struct fixture *f = *state;
    const char *want[] = {"telemetry.sample_interval_sec", "3600", NULL};
    expect_invalid(f, "interval", "telemetry: {sample_interval_sec: 1e308}\n", want);
    const char *args[] = {"testbench",  "telemetry", "--interval", "1e19",
                          "--duration", "0.1",       NULL};
    char *out = NULL;
    assert_int_equal(run_proc(f, "interval_cli", args, NULL, &out), 2);
    assert_non_null(strstr(out, "--interval must be between 0.05 and 3600 s"));
    free(out);
}

/* Item 18: a gamma shape whose schedule cannot be built failed silently at run time. */
static void degenerate_burstiness_is_refused(void **state)
{
    struct fixture *f = *state;
    const char *want[] = {"requests.burstiness", "[0.01, 1000]", NULL};
    expect_invalid(f, "burst",
                   "requests: {arrival_pattern: gamma, burstiness: 1e-300, rate_per_second: 5}\n",
                   want);
}

/* Item 7: a num_requests no memory can hold is refused with the figure. */
static void oversized_num_requests_is_refused(void **state)
{
    struct fixture *f = *state;
    const char *want[] = {"requests.num_requests", "2147483647 requests need about", "GiB",
                          "this machine has", NULL};
    expect_invalid(f, "numreq", "requests: {num_requests: 2147483647}\n", want);
}

/* Item 20: prefixes that make hidden, broken or over-long file names; absurd sweeps. */
static void bad_output_prefix_and_huge_sweep_are_refused(void **state)
{
    struct fixture *f = *state;
    const char *nl[] = {"benchmark.output_prefix", "control characters", NULL};
    expect_invalid(f, "prefix_nl", "benchmark: {output_prefix: \"a\\nb\"}\n", nl);
    const char *dot[] = {"benchmark.output_prefix", "must not start with '.'", NULL};
    expect_invalid(f, "prefix_dot", "benchmark: {output_prefix: .hidden}\n", dot);
    char longp[300];
    memset(longp, 'p', 256);
    longp[256] = '\0';
    char *body = xasprintf("benchmark: {output_prefix: %s}\n", longp);
    const char *lng[] = {"benchmark.output_prefix", "is 256 bytes long", NULL};
    expect_invalid(f, "prefix_long", body, lng);
    free(body);
    /* 400 x 400 x 1 = 160000 points. */
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_puts(&b, "context_lengths: ["), 0);
    for (int i = 0; i < 400; i++)
        assert_int_equal(buf_printf(&b, "%s%d", i ? "," : "", 2000 + i), 0);
    assert_int_equal(buf_puts(&b, "]\nrequests: {concurrent_requests: ["), 0);
    for (int i = 0; i < 400; i++)
        assert_int_equal(buf_printf(&b, "%s%d", i ? "," : "", 1 + i), 0);
    assert_int_equal(buf_puts(&b, "], completion_tokens: 10}\n"), 0);
    const char *pts[] = {"1.6e+05 points", "at most 100000", NULL};
    expect_invalid(f, "sweep", b.data, pts);
    buf_release(&b);
}

/* ---- signals -------------------------------------------------------------------------- */

/* A config against a port where nothing listens: the readiness wait polls until its end. */
static char *unreachable_config(const struct fixture *f, const char *name)
{
    return write_config(f, name,
                        "benchmark: {name: w, output_prefix: w}\n"
                        "server: {endpoint: \"http://127.0.0.1:1\"}\n"
                        "model: {name: m}\n"
                        "requests: {num_requests: 1, prompt_tokens_min: 10, "
                        "prompt_tokens_max: 10, completion_tokens: 4}\n");
}

/* Item 4: SIGTERM and SIGINT end the readiness wait at once with 130 (not 3 at the
 * deadline); --wait nan and negative waits are refused; --wait inf waits until a signal. */
static void wait_honours_signals_and_refuses_nan(void **state)
{
    struct fixture *f = *state;
    char *cfg = unreachable_config(f, "wait");
    const struct {
        const char *wait;
        int sig;
    } cases[] = {{"60", SIGTERM}, {"60", SIGINT}, {"inf", SIGINT}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[] = {"testbench", "run",         "--config", cfg,
                              "--wait",    cases[i].wait, "--quiet",  NULL};
        struct proc_opts o = {.signal_after_s = 0.7, .sig = cases[i].sig};
        char *out = NULL;
        mono_ns t = clock_now();
        int rc = run_proc(f, "wait", args, &o, &out);
        double took = ns_diff_s(t, clock_now());
        fprintf(stderr, "--wait %s, signal %d: exit %d after %.2f s\n", cases[i].wait, cases[i].sig,
                rc, took);
        assert_int_equal(rc, 130);
        assert_true(took < 5.0);
        free(out);
    }
    static const char *const bad[] = {"nan", "-1", "NaN"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[] = {"testbench", "run", "--config", cfg, "--wait", bad[i], NULL};
        struct proc_opts o = {.signal_after_s = 5, .sig = SIGKILL}; /* never hang the suite */
        char *out = NULL;
        assert_int_equal(run_proc(f, "wait_bad", args, &o, &out), 2);
        assert_non_null(strstr(out, "--wait expects seconds"));
        free(out);
    }
    free(cfg);
}

/* A point that streams for 15 s: 2 requests of 3000 events 5 ms apart. */
static char *slow_point_config(const struct fixture *f, const char *name)
{
    char *body = xasprintf("benchmark: {name: %s, output_prefix: %s}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\"}\n"
                           "model: {name: \"normal n=3000 gap=5\"}\n"
                           "requests: {num_requests: 2, concurrent_requests: 2,\n"
                           "  rate_per_second: inf, prompt_tokens_min: 10,\n"
                           "  prompt_tokens_max: 10, completion_tokens: 3000}\n"
                           "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
                           name, name, f->port);
    char *cfg = write_config(f, name, body);
    free(body);
    return cfg;
}

static json_t *load_detailed(const char *out_dir)
{
    char *path = tb_find(out_dir, "_detailed.json");
    assert_non_null(path);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        fprintf(stderr, "%s: %s\n", path, je.text);
    assert_non_null(root);
    free(path);
    return root;
}

/* Item 5: SIGHUP (an SSH drop) mid-point ends the run like Ctrl-C: partial files, exit 130.
 * And a runner killed before its first checkpoint still leaves valid files. */
static void sighup_mid_point_writes_partial_files(void **state)
{
    struct fixture *f = *state;
    char *cfg = slow_point_config(f, "hup");
    char *out_dir = xasprintf("%s/hup_out", f->dir);
    const char *args[] = {"testbench",    "run",   "--config", cfg,
                          "--output-dir", out_dir, "--quiet",  NULL};
    struct proc_opts o = {.signal_after_s = 1.5, .sig = SIGHUP};
    char *out = NULL;
    int rc = run_proc(f, "hup", args, &o, &out);
    if (rc != 130)
        fprintf(stderr, "%s", out);
    assert_int_equal(rc, 130);
    json_t *root = load_detailed(out_dir);
    json_t *point = json_array_get(json_object_get(root, "points"), 0);
    assert_non_null(point);
    assert_true(json_is_true(json_object_get(point, "partial")));
    assert_int_equal(json_array_size(json_object_get(point, "requests")), 2);
    json_decref(root);
    free(out);

    char *kill_dir = xasprintf("%s/kill_out", f->dir);
    const char *kargs[] = {"testbench",    "run",    "--config", cfg,
                           "--output-dir", kill_dir, "--quiet",  NULL};
    struct proc_opts k = {.signal_after_s = 1.5, .sig = SIGKILL};
    assert_int_equal(run_proc(f, "kill", kargs, &k, &out), 128 + SIGKILL);
    root = load_detailed(kill_dir);
    assert_true(json_is_array(json_object_get(root, "points")));
    assert_non_null(json_object_get(root, "server"));
    json_decref(root);
    char *csv = tb_find(kill_dir, "_summary.csv");
    assert_non_null(csv);
    free(csv);
    free(out);
    free(kill_dir);
    free(out_dir);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(tenant_context_check_sees_every_context, setup, teardown),
        cmocka_unit_test_setup_teardown(tiny_timeout_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(huge_telemetry_interval_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(degenerate_burstiness_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_num_requests_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_output_prefix_and_huge_sweep_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(wait_honours_signals_and_refuses_nan, setup, teardown),
        cmocka_unit_test_setup_teardown(sighup_mid_point_writes_partial_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
