/*
 * bench_runner.c - the runner against a server of known timing. Starts bench/gt_server (every
 * stream: first token --ttft-ms after the request, then one token every --interval-ms) as its
 * own process, then `testbench run` with N streams, and prints per load:
 *   - token events per second (the truth's count over the truth's window);
 *   - the runner's CPU per event (its process's user+sys over the point's window, sampled by
 *     its telemetry thread) and its peak RSS (wait4);
 *   - throughput, ITL p50/p99/p99.9 and TTFT p50 as the runner measured them, minus the truth
 *     (the schedule; ITL truth = the interval, TTFT truth = the first-token delay);
 *   - the server's own lateness (token written minus token due, p99 and p99.9), so an error
 *     of the server is not charged to the runner;
 *   - the runner's self-check (dispatch and loop lag p99, client_distorted) next to whether
 *     its tail really departs from the truth: ITL p99 beyond interval + 1 ms + the server's
 *     own p99 lateness.
 * Arrivals: constant rate streams / request length, capped at streams in flight, so the load
 * holds about N streams with their token phases spread over the interval.
 *
 *   build/bench_runner [--streams 100,300,1000,3000] [--tokens 400] [--interval-ms 5]
 *                      [--ttft-ms 50] [--requests-per-stream 3] [--threads N] [--quick]
 *                      [--server-nagle]
 * --server-nagle: the server leaves Nagle's algorithm on, as some HTTP servers do; the
 * runner's ITL must hold there too (a client that delays its ACKs would stall it ~40 ms).
 * --quick (or TB_BENCH_QUICK=1): 200 tokens, 2 requests per stream (the whole table in about
 * a minute on 2 cores).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "core/clock.h"
#include "core/xalloc.h"

struct load {
    int streams, tokens, per_stream;
    int server_cpu; /* the CPU the server is pinned to; -1 = not pinned */
    int threads;    /* testbench run --threads; 0 = its default */
    bool nagle;     /* the server leaves Nagle's algorithm on (gt_server --nagle) */
    double interval_ms, ttft_ms;
    const char *binary; /* the testbench under test (--testbench: another build, for A/B pairs) */
};

struct result {
    double events_per_s, cpu_us_per_event, total_cpu_us_per_event, rss_mib, rss_load_mib;
    double loop_us_per_event; /* the loop thread's own CPU per event in the window */
    double loop_wait_pct;     /* share of the window the loop thread waited for a CPU */
    double thr, thr_truth;
    double itl_p50, itl_p99, itl_p999, ttft_p50, ttft_p99; /* runner, ms */
    double late_p99, late_p999, first_late_p99;            /* server, ms */
    double dispatch_p99, loop_p99;                         /* runner self-check, ms */
    bool dispatch_only; /* the flag's reason names the dispatch lag alone */
    double server_cpu_s, window_s;
    int distorted, failed;
};

/* The runner, sampled every 20 ms while it runs: its resident memory (the peak inside the
 * load's window; the whole process's peak includes building the result files at the end) and
 * its main thread's schedstat, the thread that runs the event loop: CPU time, and time spent
 * runnable but waiting for a CPU (another process had it: the machine, not the runner). */
#define TRACE_MAX 8192
struct rss_trace {
    mono_ns t[TRACE_MAX];
    double mib[TRACE_MAX];
    double loop_cpu_s[TRACE_MAX], loop_wait_s[TRACE_MAX];
    size_t n;
};

static void schedstat(pid_t pid, double *cpu, double *wait)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long long c = 0, w = 0;
    if (!f || fscanf(f, "%llu %llu", &c, &w) != 2)
        c = w = 0;
    if (f)
        fclose(f);
    *cpu = (double)c / 1e9;
    *wait = (double)w / 1e9;
}

static double vm_rss_mib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    double kib = NAN;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtod(line + 6, NULL);
    if (f)
        fclose(f);
    return kib / 1024.0;
}

/* Runs argv with stdout to /dev/null, sampling its RSS every 20 ms; returns its exit status. */
static int run_sampled(char *const *argv, struct rusage *ru, struct rss_trace *tr)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    tr->n = 0;
    int status = 0;
    for (;;) {
        pid_t w = wait4(pid, &status, WNOHANG, ru);
        if (w == pid)
            break;
        if (w < 0)
            return -1;
        if (tr->n < sizeof(tr->t) / sizeof(tr->t[0])) {
            tr->t[tr->n] = clock_now();
            schedstat(pid, &tr->loop_cpu_s[tr->n], &tr->loop_wait_s[tr->n]);
            tr->mib[tr->n++] = vm_rss_mib(pid);
        }
        clock_sleep_ns(20 * NS_PER_MS);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static double rss_peak_in(const struct rss_trace *tr, double from_s, double to_s)
{
    double peak = 0;
    for (size_t i = 0; i < tr->n; i++) {
        double t = (double)tr->t[i] / 1e9;
        if (t >= from_s && t <= to_s && tr->mib[i] > peak)
            peak = tr->mib[i];
    }
    return peak;
}

/* The first and last samples inside [from_s, to_s]; false when fewer than two. */
static bool trace_span(const struct rss_trace *tr, double from_s, double to_s, size_t *a, size_t *b)
{
    size_t first = tr->n, last = 0;
    for (size_t i = 0; i < tr->n; i++) {
        double t = (double)tr->t[i] / 1e9;
        if (t >= from_s && t <= to_s) {
            if (first == tr->n)
                first = i;
            last = i;
        }
    }
    *a = first;
    *b = last;
    return first < tr->n && last > first;
}

static double cpu_s(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 + (double)ru->ru_stime.tv_sec +
           ru->ru_stime.tv_usec / 1e6;
}

static void read_runner(json_t *detailed, struct result *r)
{
    json_t *s = json_object_get(json_array_get(json_object_get(detailed, "points"), 0), "summary");
    r->thr = bench_path_number(s, "output_throughput");
    r->itl_p50 = bench_path_number(s, "itl_ms.p50");
    r->itl_p99 = bench_path_number(s, "itl_ms.p99");
    r->itl_p999 = bench_path_number(s, "itl_ms.p99_9");
    r->ttft_p50 = bench_path_number(s, "ttft_ms.p50");
    r->ttft_p99 = bench_path_number(s, "ttft_ms.p99");
    r->dispatch_p99 = bench_path_number(s, "client.dispatch_lag_ms.p99");
    r->loop_p99 = bench_path_number(s, "client.loop_lag_ms.p99");
    json_t *client = json_object_get(s, "client");
    r->distorted = json_is_true(json_object_get(client, "client_distorted"));
    const char *why = json_string_value(json_object_get(client, "distortion"));
    r->dispatch_only = why && strstr(why, "dispatch lag") && !strstr(why, "loop lag");
    r->failed = (int)bench_path_number(s, "failed");
    double events = bench_path_number(s, "output_tokens_total");
    r->cpu_us_per_event = bench_path_number(s, "telemetry.runner_cpu_s") * 1e6 / events;
}

static void read_truth(json_t *st, struct result *r)
{
    double events = bench_path_number(st, "events");
    double win = bench_path_number(st, "window_end_s") - bench_path_number(st, "window_start_s");
    r->thr_truth = events / win;
    r->window_s = win;
    r->events_per_s = r->thr_truth;
    r->late_p99 = bench_path_number(st, "late_us.p99") / 1e3;
    r->late_p999 = bench_path_number(st, "late_us.p99_9") / 1e3;
    r->first_late_p99 = bench_path_number(st, "first_late_us.p99") / 1e3;
    r->server_cpu_s = bench_path_number(st, "cpu_s");
}

static int bench_one(const char *dir, const struct load *ld, struct result *res)
{
    memset(res, 0, sizeof(*res));
    int port = bench_free_port();
    char *stats = xasprintf("%s/gt_%d.json", dir, ld->streams);
    char *ports = xasprintf("%d", port), *tok = xasprintf("%d", ld->tokens);
    char *ival = xasprintf("%g", ld->interval_ms), *ttft = xasprintf("%g", ld->ttft_ms);
    char *cpu = xasprintf("%d", ld->server_cpu);
    char *srv_argv[] = {(char *)GT_SERVER,
                        "--port",
                        ports,
                        "--tokens",
                        tok,
                        "--interval-ms",
                        ival,
                        "--ttft-ms",
                        ttft,
                        "--stats",
                        stats,
                        "--cpu",
                        cpu,
                        ld->nagle ? "--nagle" : NULL,
                        NULL};
    pid_t srv = bench_spawn(srv_argv);
    int rc = bench_wait_listening(port, 10);
    char *cfg = xasprintf("%s/run_%d.yaml", dir, ld->streams);
    char *out = xasprintf("%s/out_%d", dir, ld->streams);
    json_t *detailed = NULL, *st = NULL;
    FILE *f = rc ? NULL : fopen(cfg, "w");
    if (!f) {
        fprintf(stderr, "bench: the ground-truth server did not start\n");
        rc = -1;
        goto out;
    }
    /* Request length T = ttft + tokens * interval; streams / T arrivals a second keep about
     * `streams` in flight with their phases spread evenly. */
    double req_s = (ld->ttft_ms + ld->tokens * ld->interval_ms) / 1e3;
    fprintf(f,
            "benchmark: {name: runner-bench, output_prefix: rb, output_dir: %s}\n"
            "server: {endpoint: \"http://127.0.0.1:%d\", timeout_s: 300}\n"
            "model: {name: gt}\n"
            "requests: {num_requests: %d, concurrent_requests: %d, arrival_pattern: constant,\n"
            "           rate_per_second: %.3f,\n"
            "           prompt_tokens_min: 16, prompt_tokens_max: 16, completion_tokens: %d}\n"
            "telemetry: {sample_interval_sec: 0.1, collect_gpu_stats: false,\n"
            "            scrape_server_metrics: false}\n",
            out, port, ld->streams * ld->per_stream, ld->streams, ld->streams / req_s, ld->tokens);
    fclose(f);
    char threads[16];
    snprintf(threads, sizeof(threads), "%d", ld->threads);
    char *run_argv[] = {(char *)ld->binary,
                        "run",
                        "--config",
                        cfg,
                        "--quiet",
                        ld->threads > 0 ? "--threads" : NULL,
                        threads,
                        NULL};
    struct rusage ru;
    static struct rss_trace rss;
    rc = run_sampled(run_argv, &ru, &rss);
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    srv = 0;
    if (rc) {
        fprintf(stderr, "bench: testbench run exited %d\n", rc);
        goto out;
    }
    res->rss_mib = (double)ru.ru_maxrss / 1024.0;
    char *path = bench_find(out, "_detailed.json");
    json_error_t je;
    detailed = path ? json_load_file(path, 0, &je) : NULL;
    free(path);
    st = json_load_file(stats, 0, &je);
    if (!detailed || !st) {
        fprintf(stderr, "bench: missing %s\n", detailed ? "server stats" : "runner results");
        rc = -1;
        goto out;
    }
    read_runner(detailed, res);
    read_truth(st, res);
    res->total_cpu_us_per_event = cpu_s(&ru) * 1e6 / bench_path_number(st, "events");
    double w0 = bench_path_number(st, "window_start_s"), w1 = bench_path_number(st, "window_end_s");
    res->rss_load_mib = rss_peak_in(&rss, w0, w1);
    size_t a, b;
    res->loop_us_per_event = res->loop_wait_pct = NAN;
    if (trace_span(&rss, w0, w1, &a, &b)) {
        double span = ns_diff_s(rss.t[a], rss.t[b]);
        res->loop_us_per_event =
            (rss.loop_cpu_s[b] - rss.loop_cpu_s[a]) * 1e6 / (res->events_per_s * span);
        res->loop_wait_pct = (rss.loop_wait_s[b] - rss.loop_wait_s[a]) * 100 / span;
    }
out:
    if (srv > 0) {
        kill(srv, SIGTERM);
        waitpid(srv, NULL, 0);
    }
    json_decref(detailed);
    json_decref(st);
    free(stats);
    free(ports);
    free(tok);
    free(ival);
    free(ttft);
    free(cpu);
    free(cfg);
    free(out);
    return rc;
}

/* The runner's tail departs from the truth: ITL p99 beyond interval + 1 ms + the server's own
 * p99 lateness (the tolerance). TTFT is printed, not judged: this server starts its
 * first-token delay when it has read the request, so connecting, sending and the server's
 * own accept and read are in the runner's TTFT error and no truth separates them. */
static bool tail_departs(const struct load *ld, const struct result *r)
{
    return r->itl_p99 > ld->interval_ms + 1.0 + r->late_p99;
}

/* Whether the self-check told the truth about the gaps. A server late by more than the
 * tolerance is no truth to judge against. A flag raised by dispatch lag alone, with the gaps
 * within tolerance, is about the schedule (requests sent late: ttft_sched, queue_delay), which
 * the gaps do not show: "dispatch". The loop lag's limit (10 % of the ITL p50, at least 1 ms:
 * 1 ms at this server's 5 ms interval) and the tail's are thresholds on different measures
 * (lag, and its effect on gaps), so a disagreement where both sit within BORDER_MS of their
 * threshold is "borderline", not a miss. */
#define BORDER_MS 0.25
static const char *verdict(const struct load *ld, const struct result *r, bool departs)
{
    if (r->late_p99 > 1.0)
        return "server late";
    if (departs == (bool)r->distorted)
        return "ok";
    if (!departs && r->dispatch_only)
        return "dispatch";
    double tail_over = r->itl_p99 - (ld->interval_ms + 1.0 + r->late_p99);
    double loop_limit = r->itl_p50 * 0.1 > 1.0 ? r->itl_p50 * 0.1 : 1.0;
    double lag_over = r->loop_p99 - loop_limit;
    if (fabs(tail_over) < BORDER_MS && fabs(lag_over) < BORDER_MS)
        return "borderline";
    return departs ? "MISSED" : "false alarm";
}

static void print_row(const struct load *ld, const struct result *r)
{
    bool departs = tail_departs(ld, r);
    printf("%7d %9.0f %6.2f %6.2f %6.2f %6.1f %6.1f %+7.2f%% %+7.3f %+7.3f %+8.3f %+7.3f %+7.3f "
           "%7.3f %7.3f %6.2f %7.3f %7.3f %6.1f %-4s %-4s %s\n",
           ld->streams, r->events_per_s, r->cpu_us_per_event, r->loop_us_per_event,
           r->total_cpu_us_per_event, r->rss_load_mib, r->rss_mib,
           (r->thr / r->thr_truth - 1) * 100, r->itl_p50 - ld->interval_ms,
           r->itl_p99 - ld->interval_ms, r->itl_p999 - ld->interval_ms, r->ttft_p50 - ld->ttft_ms,
           r->ttft_p99 - ld->ttft_ms, r->late_p99, r->late_p999,
           r->server_cpu_s * 1e6 / (r->events_per_s * r->window_s), r->dispatch_p99, r->loop_p99,
           r->loop_wait_pct, departs ? "yes" : "no", r->distorted ? "yes" : "no",
           verdict(ld, r, departs));
}

int main(int argc, char **argv)
{
    const char *streams_list = "100,300,1000,3000";
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct load base = {.tokens = 400,
                        .per_stream = 3,
                        .interval_ms = 5,
                        .ttft_ms = 50,
                        .server_cpu = ncpu > 1 ? (int)ncpu - 1 : -1,
                        .binary = TB_BINARY};
    bool quick = getenv("TB_BENCH_QUICK") && strcmp(getenv("TB_BENCH_QUICK"), "0") != 0;
    static const struct option lo[] = {
        {"streams", required_argument, NULL, 's'},
        {"tokens", required_argument, NULL, 't'},
        {"requests-per-stream", required_argument, NULL, 'r'},
        {"interval-ms", required_argument, NULL, 'i'},
        {"ttft-ms", required_argument, NULL, 'f'},
        {"quick", no_argument, NULL, 'q'},
        {"threads", required_argument, NULL, 'T'},
        {"server-cpu", required_argument, NULL, 'c'},
        {"server-nagle", no_argument, NULL, 'N'},
        {"testbench", required_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    int c, tokens = 0, per_stream = 0;
    while ((c = getopt_long(argc, argv, "s:t:r:i:f:qc:T:", lo, NULL)) != -1) {
        switch (c) {
        case 's':
            streams_list = optarg;
            break;
        case 't':
            tokens = (int)strtol(optarg, NULL, 10);
            break;
        case 'r':
            per_stream = (int)strtol(optarg, NULL, 10);
            break;
        case 'i':
            base.interval_ms = strtod(optarg, NULL);
            break;
        case 'f':
            base.ttft_ms = strtod(optarg, NULL);
            break;
        case 'q':
            quick = true;
            break;
        case 'T':
            base.threads = (int)strtol(optarg, NULL, 10);
            break;
        case 'c':
            base.server_cpu = (int)strtol(optarg, NULL, 10);
            break;
        case 'N':
            base.nagle = true;
            break;
        case 'B':
            base.binary = optarg;
            break;
        default:
            return 2;
        }
    }
    if (quick) {
        base.tokens = 200;
        base.per_stream = 2;
    }
    if (tokens > 0)
        base.tokens = tokens;
    if (per_stream > 0)
        base.per_stream = per_stream;
    char dir[] = "/tmp/tb_runner_bench_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    double load1 = 0;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load1) != 1)
            load1 = NAN;
        fclose(la);
    }
    printf("runner benchmark: ground-truth server (bench/gt_server), first token %.0f ms, then "
           "one every %.1f ms, %d tokens, %d requests per stream, loopback, %ld cores, load "
           "average %.2f at start, runner --threads %d (0: its default)%s\n",
           base.ttft_ms, base.interval_ms, base.tokens, base.per_stream,
           sysconf(_SC_NPROCESSORS_ONLN), load1, base.threads,
           base.nagle ? ", server with Nagle's algorithm on" : "");
    printf("errors are the runner's reading minus the truth (ms unless marked); server late = "
           "token written minus due; tail departs = ITL p99 > interval + 1 ms + server late "
           "p99\n");
    printf("%7s %9s %6s %6s %6s %6s %6s %8s %7s %7s %8s %7s %7s %7s %7s %6s %7s %7s %6s %-4s "
           "%-4s %s\n",
           "streams", "events/s", "us/ev", "loop", "us/ev*", "rss", "rss*", "thr_err", "itl50",
           "itl99", "itl99.9", "ttft50", "ttft99", "srv99", "srv99.9", "srv_us", "disp99", "loop99",
           "wait%", "tail", "warn", "self-check");
    int status = 0;
    char *list = xstrdup(streams_list), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        struct load ld = base;
        ld.streams = (int)strtol(t, NULL, 10);
        struct result r;
        if (ld.streams <= 0 || bench_one(dir, &ld, &r)) {
            printf("%7s failed\n", t);
            status = 1;
            continue;
        }
        print_row(&ld, &r);
        if (r.failed)
            printf("%7s %d requests failed\n", "", r.failed);
        fflush(stdout);
    }
    printf("us/ev: the runner's CPU per event in the point's window (its process: loop, "
           "telemetry and prompt threads); loop: the event-loop thread's alone; us/ev*: the whole "
           "process from start to exit per event; rss: the runner's peak resident MiB in the "
           "window, rss*: of the whole process (with the result files built at the end); srv: the "
           "server's own lateness and CPU per event; disp99, loop99: the runner's dispatch and "
           "loop lag p99; wait%%: share of the window the loop thread was runnable but waiting "
           "for a CPU (the machine, not the runner); tail: ITL p99 departs from the truth;"
           " warn: the runner flagged the point client_distorted; self-check: ok when warn = "
           "tail, dispatch when only dispatch lag raised the flag (requests sent late, not gaps "
           "delayed), borderline when the loop lag and the tail are both within 0.25 ms of their "
           "thresholds\n");
    free(list);
    char *rm = xasprintf("rm -rf %s", dir);
    if (system(rm) != 0)
        status = 1;
    free(rm);
    return status;
}
