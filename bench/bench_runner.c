/*
 * bench_runner.c - is the runner ever the bottleneck? Starts `testbench sim` as its own
 * process (a made-up tiny model from a temporary catalog, so the engine's steps are short and
 * the event rate high), then `testbench run` with N concurrent streams, and reports:
 *   - token events per second the runner received, over the point's window;
 *   - the runner's CPU microseconds per token event and its peak memory (wait4 rusage);
 *   - the per-event ITL error: each gap the client measured minus the same gap in the
 *     simulator's own emission trace (--trace), matched by response id (median, p99);
 *   - the delivery delay: client arrival time minus emission time (same clock, one machine).
 *
 *   build/bench_runner [--streams 250,500,1000] [--tokens 400] [--requests-per-stream 1]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "core/clock.h"
#include "core/stats.h"
#include "core/xalloc.h"

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        return -1;
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int wait_listening(int port, double timeout_s)
{
    mono_ns end = clock_now() + s_to_ns(timeout_s);
    while (clock_now() < end) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok)
            return 0;
        clock_sleep_ns(50 * NS_PER_MS);
    }
    return -ETIMEDOUT;
}

/* Emission times per response id, from the simulator's trace. */
static json_t *load_trace(const char *path)
{
    json_t *by_id = json_object();
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    while (f && getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));
        if (id)
            json_object_set(by_id, id, json_object_get(j, "tokens"));
        json_decref(j);
    }
    free(line);
    if (f)
        fclose(f);
    return by_id;
}

struct result {
    double events, window_s, cpu_s, rss_mib, window_cpu_s, sim_cpu_s;
    struct dist itl_err, delivery;
    size_t matched;
};

static void compare(json_t *detailed, json_t *trace, struct result *res)
{
    double t0 = bench_path_number(detailed, "clock.t0_monotonic_s");
    json_t *reqs =
        json_object_get(json_array_get(json_object_get(detailed, "points"), 0), "requests");
    struct dvec err, del;
    dvec_init(&err);
    dvec_init(&del);
    size_t i;
    json_t *rq;
    json_array_foreach(reqs, i, rq)
    {
        const char *id = json_string_value(json_object_get(rq, "response_id"));
        json_t *emit = id ? json_object_get(trace, id) : NULL;
        json_t *itl = json_object_get(rq, "itl");
        double t = json_number_value(json_object_get(rq, "t_first"));
        if (!emit || json_array_size(emit) != json_array_size(itl) + 1)
            continue;
        res->matched++;
        double client = t0 + t;
        dvec_push(&del, client - json_number_value(json_array_get(emit, 0)));
        for (size_t k = 0; k < json_array_size(itl); k++) {
            double gap = json_number_value(json_array_get(itl, k));
            double sim_gap = json_number_value(json_array_get(emit, k + 1)) -
                             json_number_value(json_array_get(emit, k));
            client += gap;
            dvec_push(&err, fabs(gap - sim_gap));
            dvec_push(&del, client - json_number_value(json_array_get(emit, k + 1)));
        }
    }
    dist_compute(&res->itl_err, err.v, err.n);
    dist_compute(&res->delivery, del.v, del.n);
    dvec_release(&err);
    dvec_release(&del);
}

static int bench_one(const char *dir, const char *catalog, int streams, int tokens, int per_stream,
                     struct result *res)
{
    memset(res, 0, sizeof(*res));
    int port = free_port();
    char *trace = xasprintf("%s/trace_%d.jsonl", dir, streams);
    char *ports = xasprintf("%d", port), *seqs = xasprintf("%d", streams);
    char *sim_argv[] = {(char *)TB_BINARY,
                        "sim",
                        "--port",
                        ports,
                        "--model",
                        "bench-tiny",
                        "--gpu",
                        "h200",
                        "--catalog",
                        (char *)catalog,
                        "--max-num-seqs",
                        seqs,
                        "--max-num-batched-tokens",
                        "65536",
                        "--trace",
                        trace,
                        "--quiet",
                        NULL};
    pid_t sim = bench_spawn(sim_argv);
    int rc = wait_listening(port, 10);
    char *cfg = xasprintf("%s/run_%d.yaml", dir, streams);
    char *out = xasprintf("%s/out_%d", dir, streams);
    FILE *f = fopen(cfg, "w");
    if (rc || !f) {
        fprintf(stderr, "bench: simulator did not start\n");
        rc = -1;
        goto out;
    }
    fprintf(f,
            "benchmark: {name: runner-bench, output_prefix: rb, output_dir: %s}\n"
            "server: {endpoint: \"http://127.0.0.1:%d\", timeout_s: 300}\n"
            "model: {name: bench/tiny-0.1b}\n"
            "requests: {num_requests: %d, concurrent_requests: %d, rate_per_second: inf,\n"
            "           prompt_tokens_min: 16, prompt_tokens_max: 16, completion_tokens: %d}\n"
            "telemetry: {sample_interval_sec: 0.1, collect_gpu_stats: false,\n"
            "            scrape_server_metrics: false}\n",
            out, port, streams * per_stream, streams, tokens);
    fclose(f);
    char *run_argv[] = {(char *)TB_BINARY, "run", "--config", cfg, "--quiet", NULL};
    struct rusage ru;
    rc = bench_run(run_argv, 0, &ru);
    kill(sim, SIGTERM);
    struct rusage sru;
    int st;
    wait4(sim, &st, 0, &sru);
    sim = 0;
    res->sim_cpu_s = (double)sru.ru_utime.tv_sec + sru.ru_utime.tv_usec / 1e6 +
                     (double)sru.ru_stime.tv_sec + sru.ru_stime.tv_usec / 1e6;
    if (rc) {
        fprintf(stderr, "bench: testbench run exited %d\n", rc);
        goto out;
    }
    res->cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    res->rss_mib = (double)ru.ru_maxrss / 1024.0;
    char *path = bench_find(out, "_detailed.json");
    json_error_t je;
    json_t *detailed = path ? json_load_file(path, 0, &je) : NULL;
    free(path);
    if (!detailed) {
        rc = -1;
        goto out;
    }
    res->events = bench_path_number(detailed, "points.0.summary.output_tokens_total");
    res->window_s = bench_path_number(detailed, "points.0.summary.duration_s");
    res->window_cpu_s = bench_path_number(detailed, "points.0.summary.telemetry.runner_cpu_s");
    json_t *tr = load_trace(trace);
    compare(detailed, tr, res);
    json_decref(tr);
    json_decref(detailed);
out:
    if (sim > 0) {
        kill(sim, SIGTERM);
        waitpid(sim, NULL, 0);
    }
    free(trace);
    free(ports);
    free(seqs);
    free(cfg);
    free(out);
    return rc;
}

int main(int argc, char **argv)
{
    const char *streams_list = "250,500,1000";
    int tokens = 400, per_stream = 1;
    static const struct option lo[] = {
        {"streams", required_argument, NULL, 's'},
        {"tokens", required_argument, NULL, 't'},
        {"requests-per-stream", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "s:t:r:", lo, NULL)) != -1) {
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
        default:
            return 2;
        }
    }
    char dir[] = "/tmp/tb_runner_bench_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char catalog[64];
    if (bench_tiny_catalog(catalog, sizeof(catalog)))
        return 1;
    printf("runner benchmark: tiny model on the simulator (separate process), %d tokens per "
           "request, loopback, %ld cores\n",
           tokens, sysconf(_SC_NPROCESSORS_ONLN));
    printf("%8s %10s %10s %12s %10s %10s %12s %12s %12s %8s\n", "streams", "events", "window_s",
           "events/s", "cpu_s", "us/event", "rss_mib", "itl_err_p50", "itl_err_p99", "matched");
    int status = 0;
    char *list = xstrdup(streams_list), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        struct result r;
        if (bench_one(dir, catalog, (int)strtol(tok, NULL, 10), tokens, per_stream, &r)) {
            printf("%8s failed\n", tok);
            status = 1;
            continue;
        }
        printf("%8s %10.0f %10.2f %12.0f %10.2f %10.2f %12.1f %10.3fms %10.3fms %8zu\n", tok,
               r.events, r.window_s, r.events / r.window_s, r.cpu_s, r.cpu_s * 1e6 / r.events,
               r.rss_mib, r.itl_err.p50 * 1e3, r.itl_err.p99 * 1e3, r.matched);
        printf("%8s delivery delay (client arrival - emission): p50 %.3f ms, p99 %.3f ms\n", "",
               r.delivery.p50 * 1e3, r.delivery.p99 * 1e3);
        printf("%8s runner CPU in the window %.2f s (%.2f us/event); simulator CPU %.2f s\n", "",
               r.window_cpu_s, r.window_cpu_s * 1e6 / r.events, r.sim_cpu_s);
        fflush(stdout);
    }
    free(list);
    char *rm = xasprintf("rm -rf %s", dir);
    if (system(rm) != 0)
        status = 1;
    free(rm);
    bench_tiny_catalog_remove(catalog);
    return status;
}
