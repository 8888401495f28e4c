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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/text.h"
#include "runner/client.h"
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
    rlim_t nofile;      /* > 0: RLIMIT_NOFILE soft limit in the child */
    rlim_t nofile_hard; /* its hard limit (0: the same as nofile) */
    rlim_t fsize;       /* > 0: RLIMIT_FSIZE in the child, SIGXFSZ ignored (writes fail EFBIG) */
};

/* The peak resident memory of the last child run_proc waited for (the kernel's own account of
 * the process, as /proc/PID/status VmHWM would give it), KiB. */
static long last_maxrss_kib;

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
        if (o && o->fsize) {
            struct rlimit rl = {o->fsize, o->fsize};
            signal(SIGXFSZ, SIG_IGN);
            if (setrlimit(RLIMIT_FSIZE, &rl))
                _exit(124);
        }
        if (o && o->nofile) {
            struct rlimit rl = {o->nofile, o->nofile_hard ? o->nofile_hard : o->nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl))
                _exit(125);
        }
        execv(TB_BINARY, (char *const *)args);
        _exit(127);
    }
    int status;
    pid_t got = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    if (o && o->sig) {
        /* The signal goes only to a child still running at that time. */
        mono_ns at = clock_now() + s_to_ns(o->signal_after_s);
        while ((got = wait4(pid, &status, WNOHANG, &ru)) == 0 && clock_now() < at)
            clock_sleep_ns(10 * NS_PER_MS);
        if (got == 0)
            kill(pid, o->sig);
    }
    if (got == 0)
        got = wait4(pid, &status, 0, &ru);
    assert_int_equal(got, pid);
    last_maxrss_kib = ru.ru_maxrss;
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
    json_t *root = tb_load_json(out_dir, "_detailed.json");
    assert_non_null(root);
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

/* ---- what servers send --------------------------------------------------------------- */

/* A run of one tenant per model against the fake server (or endpoint when given); returns
 * the exit status, the output in *out and detailed.json in *root. */
static int run_tenants(const struct fixture *f, const char *name, const char *endpoint,
                       const char *const *models, size_t n_models, const char *extra, bool quiet,
                       char **out, json_t **root)
{
    struct buf body;
    buf_init(&body, 1 << 16);
    char ep[256];
    if (endpoint)
        snprintf(ep, sizeof(ep), "%s", endpoint);
    else
        snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f->port);
    assert_int_equal(buf_printf(&body,
                                "benchmark: {name: %s, output_prefix: %s}\n"
                                "server: {endpoint: \"%s\", timeout_s: 5}\n"
                                "requests: {num_requests: 2, concurrent_requests: 2,\n"
                                "  rate_per_second: inf, prompt_tokens_min: 10,\n"
                                "  prompt_tokens_max: 10, completion_tokens: 12}\n"
                                "telemetry: {collect_gpu_stats: false, sample_interval_sec: 0.1}\n"
                                "%s"
                                "tenants:\n",
                                name, name, ep, extra ? extra : ""),
                     0);
    for (size_t i = 0; i < n_models; i++)
        assert_int_equal(buf_printf(&body, "  - {name: t%zu, model: \"%s\"}\n", i, models[i]), 0);
    char *cfg = write_config(f, name, body.data);
    char *out_dir = xasprintf("%s/%s_out", f->dir, name);
    const char *args[] = {
        "testbench", "run", "--config", cfg, "--output-dir", out_dir, quiet ? "--quiet" : NULL,
        NULL};
    struct proc_opts o = {.signal_after_s = 60, .sig = SIGKILL}; /* never hang the suite */
    int rc = run_proc(f, name, args, &o, out);
    *root = load_detailed(out_dir);
    free(out_dir);
    free(cfg);
    buf_release(&body);
    return rc;
}

static json_t *point_requests(json_t *root, size_t point)
{
    return json_object_get(json_array_get(json_object_get(root, "points"), point), "requests");
}

/* Item 1: a server that streams forever is cut once it sends more than max_tokens allows, and
 * the runner's memory stays small (it grew by GBs until the request timeout). */
static void endless_stream_is_cut_with_bounded_memory(void **state)
{
    struct fixture *f = *state;
    const char *models[] = {"endless per=200 gap=1"};
    char *out = NULL;
    json_t *root = NULL;
    mono_ns t = clock_now();
    int rc = run_tenants(f, "endless", NULL, models, 1, NULL, true, &out, &root);
    double took = ns_diff_s(t, clock_now());
    fprintf(stderr, "endless stream: exit %d after %.2f s, peak RSS %ld KiB\n", rc, took,
            last_maxrss_kib);
    assert_int_equal(rc, 1); /* nothing completed */
    size_t i;
    json_t *rq;
    json_array_foreach(point_requests(root, 0), i, rq)
    {
        assert_string_equal(json_string_value(json_object_get(rq, "status")), "bad_response");
        assert_non_null(
            strstr(json_string_value(json_object_get(rq, "error")), "more than it was asked for"));
        assert_true(json_array_size(json_object_get(rq, "itl")) <= 12 + 64);
    }
    assert_int_equal(i, 2);
    assert_true(took < 4.0); /* not the 5 s request timeout */
    assert_true(last_maxrss_kib < 100 * 1024);
    json_decref(root);
    free(out);
}

/* Item 2: usage.completion_tokens of 2e9 after 3 events is kept but not believed. */
static void lying_usage_is_flagged_and_not_used(void **state)
{
    struct fixture *f = *state;
    const char *models[] = {"normal n=3 gap=20 usage_n=2000000000", "normal n=5 gap=1"};
    char *out = NULL;
    json_t *root = NULL;
    assert_int_equal(run_tenants(f, "liar", NULL, models, 2, NULL, true, &out, &root), 0);
    size_t i;
    json_t *rq;
    json_array_foreach(point_requests(root, 0), i, rq)
    {
        assert_string_equal(json_string_value(json_object_get(rq, "status")), "ok");
        assert_int_equal(json_integer_value(json_object_get(rq, "output_tokens")), 3);
        assert_string_equal(json_string_value(json_object_get(rq, "tokens_source")), "events");
        assert_int_equal(json_integer_value(json_object_get(rq, "usage_output_tokens")),
                         2000000000);
        assert_true(json_is_true(json_object_get(rq, "usage_implausible")));
        /* TPOT over the 2 gaps of the 3 events, not over 2e9 tokens. */
        double span = json_number_value(json_object_get(rq, "t_last")) -
                      json_number_value(json_object_get(rq, "t_first"));
        assert_true(fabs(json_number_value(json_object_get(rq, "tpot")) - span / 2) < 1e-6);
        assert_true(span > 0.001); /* 20 ms apart: the check above can tell */
    }
    json_t *sum = json_object_get(json_array_get(json_object_get(root, "points"), 0), "summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "usage_implausible")), 2);
    assert_true(json_number_value(json_object_get(sum, "output_throughput")) < 1e4);
    /* The honest tenant is believed. */
    json_array_foreach(point_requests(root, 1), i, rq)
    {
        assert_string_equal(json_string_value(json_object_get(rq, "tokens_source")), "usage");
        assert_true(json_is_false(json_object_get(rq, "usage_implausible")));
    }
    assert_non_null(strstr(out, "usage contradicted"));
    json_decref(root);
    free(out);
}

/* A server that speaks broken HTTP: answers GETs and /tokenize with 404, and each completion
 * with the canned reply its model names. */
struct raw_server {
    int fd, port;
    pthread_t thread;
    atomic_bool stop;
};

static void raw_reply(int c, const char *req)
{
    static const char not_found[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                    "Connection: close\r\n\r\n";
    struct buf b;
    buf_init(&b, 1 << 22);
    const char *sse_head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n";
    if (strncmp(req, "POST /v1/completions", 20) != 0) {
        assert_int_equal(buf_puts(&b, not_found), 0);
    } else if (strstr(req, "\"http09")) {
        assert_int_equal(buf_puts(&b, "data: {\"choices\":[{\"text\":\"x\"}]}\n\n"), 0);
    } else if (strstr(req, "\"bighdr")) {
        assert_int_equal(buf_printf(&b, "%sX-Big: ", sse_head), 0);
        for (int i = 0; i < 300 * 1024; i++)
            assert_int_equal(buf_append(&b, "a", 1), 0);
        assert_int_equal(buf_puts(&b, "\r\n\r\ndata: [DONE]\n\n"), 0);
    } else if (strstr(req, "\"badchunk")) {
        assert_int_equal(
            buf_printf(&b, "%sTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n", sse_head), 0);
    } else if (strstr(req, "\"badgzip")) {
        assert_int_equal(buf_printf(&b,
                                    "%sContent-Encoding: gzip\r\nContent-Length: 16\r\n\r\n"
                                    "0123456789abcdef",
                                    sse_head),
                         0);
    } else {
        assert_int_equal(buf_puts(&b, not_found), 0);
    }
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = send(c, b.data + off, b.len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    buf_release(&b);
}

static void *raw_main(void *arg)
{
    struct raw_server *rs = arg;
    while (!atomic_load(&rs->stop)) {
        int c = accept(rs->fd, NULL, NULL);
        if (c < 0)
            continue;
        struct timeval tv = {2, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char req[65536];
        size_t n = 0;
        /* Headers, then the body by Content-Length. */
        for (;;) {
            ssize_t k = recv(c, req + n, sizeof(req) - 1 - n, 0);
            if (k <= 0)
                break;
            n += (size_t)k;
            req[n] = '\0';
            char *end = strstr(req, "\r\n\r\n");
            if (!end)
                continue;
            const char *cl = strcasestr(req, "Content-Length:");
            size_t want = (size_t)(end + 4 - req) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
            if (n >= want || n >= sizeof(req) - 1)
                break;
        }
        req[n] = '\0';
        if (n)
            raw_reply(c, req);
        shutdown(c, SHUT_RDWR);
        close(c);
    }
    return NULL;
}

static void raw_server_start(struct raw_server *rs)
{
    memset(rs, 0, sizeof(*rs));
    rs->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(rs->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(rs->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(rs->fd, 64), 0);
    assert_int_equal(getsockname(rs->fd, (struct sockaddr *)&a, &len), 0);
    rs->port = ntohs(a.sin_port);
    struct timeval tv = {0, 200000}; /* accept wakes up to see stop */
    setsockopt(rs->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(pthread_create(&rs->thread, NULL, raw_main, rs), 0);
}

static void raw_server_stop(struct raw_server *rs)
{
    atomic_store(&rs->stop, true);
    pthread_join(rs->thread, NULL);
    close(rs->fd);
}

/* Item 19: each misbehaviour gets its own class and keeps the server's words. */
static void protocol_violations_get_the_right_class(void **state)
{
    struct fixture *f = *state;
    const char *models[] = {"jsonerr200", "status999", "normal n=5 after=1"};
    const char *want[] = {"bad_response", "bad_response", "ok"};
    char *out = NULL;
    json_t *root = NULL;
    mono_ns t = clock_now();
    assert_int_equal(run_tenants(f, "proto", NULL, models, 3, NULL, true, &out, &root), 0);
    /* after=1 never closes: the runner stops reading at the data after [DONE]. */
    assert_true(ns_diff_s(t, clock_now()) < 4.0);
    for (size_t p = 0; p < 3; p++) {
        size_t i;
        json_t *rq;
        json_array_foreach(point_requests(root, p), i, rq)
        {
            const char *st = json_string_value(json_object_get(rq, "status"));
            if (strcmp(st, want[p]) != 0)
                fprintf(stderr, "%s: %s (%s)\n", models[p], st,
                        json_string_value(json_object_get(rq, "error")));
            assert_string_equal(st, want[p]);
        }
    }
    json_t *rq = json_array_get(point_requests(root, 0), 0);
    assert_non_null(strstr(json_string_value(json_object_get(rq, "error")), FAKE_ERR200_MSG));
    json_decref(root);
    free(out);

    struct raw_server rs;
    raw_server_start(&rs);
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", rs.port);
    const char *raw[] = {"http09", "bighdr", "badchunk", "badgzip"};
    int rc = run_tenants(f, "raw", ep, raw, 4, NULL, true, &out, &root);
    raw_server_stop(&rs);
    assert_int_equal(rc, 1);
    for (size_t p = 0; p < 4; p++) {
        size_t i;
        json_t *r;
        json_array_foreach(point_requests(root, p), i, r)
        {
            const char *st = json_string_value(json_object_get(r, "status"));
            if (strcmp(st, "bad_response") != 0 || getenv("HARDEN_DEBUG"))
                fprintf(stderr, "%s: %s (%s)\n", raw[p], st,
                        json_string_value(json_object_get(r, "error")));
            assert_string_equal(st, "bad_response");
        }
        assert_int_equal(i, 2);
    }
    json_decref(root);
    free(out);
}

/* The whole of a file as a string (caller frees). */
static char *slurp(const char *path)
{
    char *s = tb_read(path);
    assert_non_null(s);
    return s;
}

/* No file of out_dir (and not out) holds any of needles. */
static void assert_nowhere(const char *out_dir, const char *out, const char *const *needles)
{
    static const char *const kinds[] = {"_detailed.json", "_summary.csv", "_telemetry.json"};
    for (size_t k = 0; k < 3; k++) {
        char *path = tb_find(out_dir, kinds[k]);
        assert_non_null(path);
        char *text = slurp(path);
        for (const char *const *n = needles; *n; n++) {
            if (strstr(text, *n))
                fprintf(stderr, "'%s' found in %s\n", *n, path);
            assert_null(strstr(text, *n));
        }
        free(text);
        free(path);
    }
    for (const char *const *n = needles; *n; n++) {
        if (strstr(out, *n))
            fprintf(stderr, "'%s' found in the output: %s\n", *n, out);
        assert_null(strstr(out, *n));
    }
}

#define TEST_KEY "sk-harden-0123456789abcdef"
#define TEST_PASSWORD "hunter2-url-password"

/* Item 11 (and 20: /metrics gets the key): a key the server echoes, URL credentials, a .env
 * given as the config: never in a file or a message; a key over plain http to another host
 * is warned about. */
static void secrets_never_reach_files_or_messages(void **state)
{
    struct fixture *f = *state;
    setenv("OPENAI_API_KEY", TEST_KEY, 1);
    char ep[128];
    snprintf(ep, sizeof(ep), "http://bench:" TEST_PASSWORD "@127.0.0.1:%d", f->port);
    const char *models[] = {"echokey", "normal n=4"};
    char *out = NULL;
    json_t *root = NULL;
    int rc = run_tenants(f, "secret", ep, models, 2, NULL, false, &out, &root);
    assert_int_equal(rc, 0);
    /* The echo did arrive, redacted. */
    json_t *rq = json_array_get(point_requests(root, 0), 0);
    const char *err = json_string_value(json_object_get(rq, "error"));
    assert_non_null(strstr(err, "Incorrect API key provided: Bearer [redacted]"));
    char *dir = xasprintf("%s/secret_out", f->dir);
    const char *needles[] = {TEST_KEY, TEST_PASSWORD, NULL};
    assert_nowhere(dir, out, needles);
    assert_null(strstr(out, "plain http://")); /* loopback: no warning */
    char auth[256];
    fake_server_metrics_auth(f->fs, auth, sizeof(auth));
    assert_string_equal(auth, "Bearer " TEST_KEY);
    json_decref(root);
    free(dir);
    free(out);

    /* To another host over http: warned (the host does not resolve: exit 3 at once). */
    char *cfg = write_config(f, "remote",
                             "server: {endpoint: \"http://testbench-host.invalid:8000\"}\n"
                             "model: {name: m}\n");
    const char *args[] = {"testbench", "run", "--config", cfg, "--wait", "0", NULL};
    assert_int_equal(run_proc(f, "remote", args, NULL, &out), 3);
    assert_non_null(strstr(out, "over plain http://"));
    assert_null(strstr(out, TEST_KEY));
    free(out);
    free(cfg);
    unsetenv("OPENAI_API_KEY");

    /* A .env file given as the config: its error quotes the line, not the token. */
    char *env = write_config(f, "dotenv",
                             "HF_TOKEN=hf_harden0123456789secret\nVLLM_API_KEY=plainsecret77\n");
    const char *vargs[] = {"testbench", "validate", "--config", env, NULL};
    assert_int_equal(run_proc(f, "dotenv", vargs, NULL, &out), 2);
    assert_non_null(strstr(out, "HF_TOKEN=[redacted]"));
    assert_null(strstr(out, "hf_harden"));
    assert_null(strstr(out, "plainsecret77"));
    free(out);
    free(env);
}

/* Items 10 and 16: invalid UTF-8 from the server, in --model and in the config path keeps
 * every key (U+FFFD in place of the bad bytes) and a valid CSV; a server's version with
 * terminal escapes is printed without them. */
static void invalid_utf8_and_escapes_are_made_safe(void **state)
{
    struct fixture *f = *state;
    char *body = xasprintf("benchmark: {name: u8, output_prefix: u8}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\", timeout_s: 5}\n"
                           "requests: {num_requests: 2, concurrent_requests: 2,\n"
                           "  rate_per_second: inf, prompt_tokens_min: 10,\n"
                           "  prompt_tokens_max: 10, completion_tokens: 12}\n"
                           "telemetry: {collect_gpu_stats: false}\n",
                           f->port);
    char *cfg = write_config(f, "u8\xff\xfe", body);
    char *out_dir = xasprintf("%s/u8_out", f->dir);
    const char *args[] = {"testbench", "run",     "--config",         cfg, "--output-dir",
                          out_dir,     "--model", "badutf8 \xff\xc3", NULL};
    char *out = NULL;
    assert_int_equal(run_proc(f, "u8", args, NULL, &out), 1); /* every request failed */
    json_t *root = load_detailed(out_dir);
    json_t *server = json_object_get(root, "server");
    assert_true(json_is_object(server));
    assert_non_null(strstr(json_string_value(json_object_get(server, "model")), "\xef\xbf\xbd"));
    const char *path = json_string_value(json_object_get(json_object_get(root, "config"), "path"));
    assert_non_null(path);
    assert_non_null(strstr(path, "u8\xef\xbf\xbd\xef\xbf\xbd"));
    size_t i;
    json_t *rq;
    json_array_foreach(point_requests(root, 0), i, rq)
    {
        const char *err = json_string_value(json_object_get(rq, "error"));
        const char *rid = json_string_value(json_object_get(rq, "response_id"));
        assert_non_null(err);
        assert_non_null(strstr(err, "broken \xef\xbf\xbd\xef\xbf\xbd bytes"));
        assert_non_null(rid);
        assert_non_null(strstr(rid, "cmpl-"));
    }
    char *csv_path = tb_find(out_dir, "_summary.csv");
    char *csv = slurp(csv_path);
    assert_true(utf8_valid(csv, strlen(csv)));
    free(csv);
    free(csv_path);
    /* The version line: printed, escapes gone. */
    assert_non_null(strstr(out, "pwned"));
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\x07'));
    json_decref(root);
    free(out);
    free(out_dir);
    free(cfg);
    free(body);
}

/* Item 12: the descriptor limit is checked before any load: raised when the hard limit
 * allows, refused with the numbers when it does not (not "couldn't connect" and exit 0, nor
 * libevent's raw exit). */
static void fd_limit_is_checked_before_load(void **state)
{
    struct fixture *f = *state;
    char *body = xasprintf("benchmark: {name: fd, output_prefix: fd}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\", timeout_s: 10}\n"
                           "model: {name: \"normal n=2 gap=50\"}\n"
                           "requests: {num_requests: 150, concurrent_requests: 150,\n"
                           "  rate_per_second: inf, prompt_tokens_min: 10,\n"
                           "  prompt_tokens_max: 10, completion_tokens: 2}\n"
                           "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
                           f->port);
    char *cfg = write_config(f, "fd", body);
    char *out_dir = xasprintf("%s/fd_out", f->dir);
    const char *args[] = {"testbench",    "run",   "--config", cfg,
                          "--output-dir", out_dir, "--quiet",  NULL};
    struct proc_opts tight = {.nofile = 64};
    char *out = NULL;
    assert_int_equal(run_proc(f, "fd_tight", args, &tight, &out), 1);
    assert_non_null(strstr(out, "file descriptors"));
    assert_non_null(strstr(out, "the limit is 64"));
    assert_non_null(strstr(out, "ulimit -n"));
    assert_null(strstr(out, "[err]"));
    free(out);
    struct proc_opts raisable = {.nofile = 64, .nofile_hard = 4096};
    assert_int_equal(run_proc(f, "fd_raise", args, &raisable, &out), 0);
    json_t *root = load_detailed(out_dir);
    size_t i;
    json_t *rq;
    json_array_foreach(point_requests(root, 0), i, rq)
    {
        assert_string_equal(json_string_value(json_object_get(rq, "status")), "ok");
    }
    assert_int_equal(i, 150);
    json_decref(root);
    free(out);
    free(out_dir);
    free(cfg);
    free(body);
}

/* Mounts a tmpfs of size bytes at path (ro: read-only); false when this process may not. */
static bool mount_tmpfs(const char *path, const char *size, bool ro)
{
    char *cmd = xasprintf("mkdir -p %s && mount -t tmpfs -o size=%s%s tmpfs %s 2>/dev/null", path,
                          size, ro ? ",ro" : "", path);
    bool ok = system(cmd) == 0;
    free(cmd);
    return ok;
}

static void umount_quietly(const char *path)
{
    char *cmd = xasprintf("umount %s 2>/dev/null", path);
    if (system(cmd) != 0)
        fprintf(stderr, "umount %s failed\n", path);
    free(cmd);
}

/* Item 3: an output directory that cannot take the files is found before any load (one
 * message naming the file and why); a disk that fills up during the run loses no point: the
 * run goes on, says "the disk is full" once, and writes everything to the fallback directory.
 * A tmpfs is mounted for both when this process may mount (CI runs as root); otherwise the
 * read-only case uses a directory without write permission and the full disk RLIMIT_FSIZE. */
static void unwritable_output_loses_no_point(void **state)
{
    struct fixture *f = *state;
    char *ro = xasprintf("%s/ro", f->dir);
    bool ro_mounted = mount_tmpfs(ro, "64k", true);
    if (!ro_mounted) {
        assert_int_equal(mkdir(ro, 0555), 0);
        fprintf(stderr, "no mount allowed: read-only case uses a 0555 directory\n");
    }
    char *body = xasprintf("benchmark: {name: full, output_prefix: full}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\", timeout_s: 10}\n"
                           "model: {name: \"normal n=400 gap=0\"}\n"
                           "requests: {num_requests: 4, concurrent_requests: [1, 2, 4],\n"
                           "  rate_per_second: inf, prompt_tokens_min: 10,\n"
                           "  prompt_tokens_max: 10, completion_tokens: 400}\n"
                           "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
                           f->port);
    char *cfg = write_config(f, "full", body);
    const char *ro_args[] = {"testbench",    "run", "--config", cfg,
                             "--output-dir", ro,    "--quiet",  NULL};
    size_t before = fake_server_requests(f->fs);
    char *out = NULL;
    assert_int_equal(run_proc(f, "ro", ro_args, NULL, &out), 1);
    fprintf(stderr, "read-only: %s", out);
    assert_non_null(strstr(out, "cannot write"));
    assert_non_null(strstr(out, "_detailed.json"));
    assert_true(strstr(out, "read-only") || strstr(out, "permission denied"));
    assert_non_null(strstr(out, "nothing was sent"));
    /* The probes only: none of the 12 requests of the load. */
    assert_true(fake_server_requests(f->fs) - before < 6);
    free(out);
    if (ro_mounted)
        umount_quietly(ro);

    char *full = xasprintf("%s/full", f->dir);
    char *fallback = xasprintf("%s/fallback", f->dir);
    bool mounted = mount_tmpfs(full, "64k", false);
    struct proc_opts o = {0};
    if (!mounted) {
        assert_int_equal(mkdir(full, 0755), 0);
        o.fsize = 40000;
        fprintf(stderr, "no mount allowed: full disk simulated with RLIMIT_FSIZE\n");
    }
    const char *args[] = {"testbench",    "run", "--config", cfg,
                          "--output-dir", full,  "--quiet",  NULL};
    setenv("TESTBENCH_FALLBACK_DIR", fallback, 1);
    int rc = run_proc(f, "full", args, &o, &out);
    unsetenv("TESTBENCH_FALLBACK_DIR");
    fprintf(stderr, "full disk: exit %d: %s", rc, out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, mounted ? "the disk is full" : "file too large"));
    /* Said once, not at every flush. */
    const char *first = strstr(out, "cannot write");
    assert_non_null(first);
    assert_null(strstr(first + 1, "cannot write"));
    if (mounted) {
        assert_non_null(strstr(out, "every measured point is in"));
        json_t *root = load_detailed(fallback);
        json_t *points = json_object_get(root, "points");
        assert_int_equal(json_array_size(points), 3);
        for (size_t p = 0; p < 3; p++)
            assert_int_equal(json_array_size(point_requests(root, p)), 4);
        json_decref(root);
        char *csv = tb_find(fallback, "_summary.csv");
        assert_non_null(csv);
        free(csv);
        umount_quietly(full);
    }
    free(out);
    free(fallback);
    free(full);
    free(cfg);
    free(body);
    free(ro);
}

/* Issue 20 (first probe's item 7 turned round): every prompt and its /tokenize calls are
 * made before the point's clock starts, with a word when that takes over a second, so no
 * request is ever late because of its prompt. With /tokenize at 60 ms a call (~2 calls a
 * prompt) and a request due every 25 ms, prompts built while the point ran (32 ahead) fell
 * further behind with each later request (the last ones went out ~0.8 s late, said as "sent
 * late"). */
static void slow_tokenize_is_paid_before_the_clock(void **state)
{
    struct fixture *f = *state;
    fake_server_set_tokenize_ms(f->fs, 60);
    char *body = xasprintf("benchmark: {name: tok, output_prefix: tok}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\", timeout_s: 10}\n"
                           "model: {name: \"normal n=4\"}\n"
                           "requests: {num_requests: 48, concurrent_requests: 0,\n"
                           "  arrival_pattern: constant, rate_per_second: 40,\n"
                           "  prompt_tokens_min: 20, prompt_tokens_max: 40,\n"
                           "  completion_tokens: 4}\n"
                           "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
                           f->port);
    char *cfg = write_config(f, "tok", body);
    char *out_dir = xasprintf("%s/tok_out", f->dir);
    const char *args[] = {"testbench", "run", "--config", cfg, "--output-dir", out_dir, NULL};
    char *out = NULL;
    assert_int_equal(run_proc(f, "tok", args, NULL, &out), 0);
    json_t *root = load_detailed(out_dir);
    json_t *reqs = point_requests(root, 0);
    assert_int_equal(json_array_size(reqs), 48);
    double worst = 0;
    size_t i;
    json_t *rq;
    json_array_foreach(reqs, i, rq)
    {
        assert_string_equal(json_string_value(json_object_get(rq, "status")), "ok");
        double late = json_number_value(json_object_get(rq, "t_sent")) -
                      json_number_value(json_object_get(rq, "t_due"));
        worst = late > worst ? late : worst;
    }
    fprintf(stderr, "slow /tokenize: the latest request went out %.1f ms after it was due\n",
            worst * 1e3);
    /* Late by ~0.8 s when built during the point; a loaded machine's scheduling is far less. */
    assert_true(worst < 0.15);
    assert_non_null(strstr(out, "prompts built in")); /* ~4 s of calls: said */
    assert_null(strstr(out, "sent late"));
    assert_null(strstr(out, "has no /tokenize")); /* the slow one was used */
    json_decref(root);
    free(out);
    free(out_dir);
    free(cfg);
    free(body);
}

struct emfile_state {
    struct event_base *base;
    int pending;
};

static void on_emfile_done(void *ctx, struct req_record *rec)
{
    struct emfile_state *s = ctx;
    (void)rec;
    if (--s->pending == 0)
        event_base_loopbreak(s->base);
}

/* Item 12: a request that cannot get a socket (EMFILE) is client_limit, not the server's
 * "connect" failure. In a child process whose descriptors are used up on purpose. */
static void emfile_is_its_own_error_class(void **state)
{
    struct fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct event_base *base = event_base_new();
        struct client *c = NULL;
        struct client_options co = {.timeout_s = 5};
        if (!base || client_new(&c, base, &co))
            _exit(100);
        struct rlimit rl = {64, 64};
        if (setrlimit(RLIMIT_NOFILE, &rl))
            _exit(101);
        while (dup(0) >= 0) /* every descriptor taken */
            ;
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->port);
        enum { N = 3 };
        struct req_record recs[N];
        struct emfile_state st = {base, 0};
        for (int i = 0; i < N; i++) {
            req_record_init(&recs[i]);
            struct client_request rq = {.base_url = url,
                                        .api = API_COMPLETIONS,
                                        .model = "normal n=2",
                                        .prompt = "hi",
                                        .max_tokens = 2};
            if (client_start(c, &rq, &recs[i], on_emfile_done, &st) == 0)
                st.pending++;
        }
        if (st.pending)
            event_base_dispatch(base);
        int limit = 0;
        for (int i = 0; i < N; i++) {
            if (recs[i].status == REQ_CLIENT_LIMIT)
                limit++;
            else
                fprintf(stderr, "emfile: %s: %s\n", req_status_name(recs[i].status),
                        recs[i].error ? recs[i].error : "");
        }
        _exit(limit == N ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
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
        cmocka_unit_test_setup_teardown(endless_stream_is_cut_with_bounded_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(lying_usage_is_flagged_and_not_used, setup, teardown),
        cmocka_unit_test_setup_teardown(protocol_violations_get_the_right_class, setup, teardown),
        cmocka_unit_test_setup_teardown(secrets_never_reach_files_or_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_utf8_and_escapes_are_made_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(fd_limit_is_checked_before_load, setup, teardown),
        cmocka_unit_test_setup_teardown(emfile_is_its_own_error_class, setup, teardown),
        cmocka_unit_test_setup_teardown(unwritable_output_loses_no_point, setup, teardown),
        cmocka_unit_test_setup_teardown(slow_tokenize_is_paid_before_the_clock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
