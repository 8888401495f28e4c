/*
 * bench_report.c - how big and how slow is `testbench report` on a large run? Synthesizes a
 * detailed.json (and telemetry.json) of N requests in the files' real format — points of
 * 1/4 of the requests each, every request with its ITL gaps, 1 telemetry sample a second —
 * then times `testbench report` on it and prints the input and output sizes.
 *
 *   build/bench_report [--requests 10000] [--tokens 128] [--keep DIR]
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/rng.h"
#include "core/stats.h"
#include "core/xalloc.h"

static json_t *dist_json(struct dvec *v, double scale)
{
    struct dist d;
    dist_compute(&d, v->v, v->n);
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)d.n));
    const char *k[] = {"mean", "p50", "p90", "p95", "p99", "p99_9", "min", "max", "std"};
    double x[] = {d.mean, d.p50, d.p90, d.p95, d.p99, d.p999, d.min, d.max, d.std};
    for (size_t i = 0; i < 9; i++)
        json_object_set_new(o, k[i], json_real(x[i] * scale));
    return o;
}

static json_t *point_make(struct rng *r, int users, size_t n, int tokens, double *t)
{
    json_t *reqs = json_array();
    struct dvec ttft, itl, tpot, e2e, utr;
    dvec_init(&ttft);
    dvec_init(&itl);
    dvec_init(&tpot);
    dvec_init(&e2e);
    dvec_init(&utr);
    double start = *t, base_ttft = 0.05 + 0.02 * users, gap = 0.012 + 0.0008 * users;
    for (size_t i = 0; i < n; i++) {
        double sent = start + (double)i / (users * 2.0);
        double tt = base_ttft * (0.7 + 0.6 * rng_uniform(r));
        json_t *gaps = json_array();
        double sum = 0;
        for (int k = 1; k < tokens; k++) {
            double g = gap * (0.8 + 0.4 * rng_uniform(r));
            sum += g;
            json_array_append_new(gaps, json_real(g));
            dvec_push(&itl, g);
        }
        double tp = sum / (tokens - 1);
        json_t *q = json_object();
        json_object_set_new(q, "id", json_integer((json_int_t)i));
        json_object_set_new(q, "tenant", json_string("default"));
        json_object_set_new(q, "t_due", json_real(sent));
        json_object_set_new(q, "t_sent", json_real(sent));
        json_object_set_new(q, "t_first", json_real(sent + tt));
        json_object_set_new(q, "t_last", json_real(sent + tt + sum));
        json_object_set_new(q, "t_end", json_real(sent + tt + sum));
        json_object_set_new(q, "prompt_tokens", json_integer(1000));
        json_object_set_new(q, "output_tokens", json_integer(tokens));
        json_object_set_new(q, "tokens_source", json_string("usage"));
        json_object_set_new(q, "ttft", json_real(tt));
        json_object_set_new(q, "itl", gaps);
        json_object_set_new(q, "tpot", json_real(tp));
        json_object_set_new(q, "e2e", json_real(tt + sum));
        json_object_set_new(q, "status", json_string("ok"));
        json_array_append_new(reqs, q);
        dvec_push(&ttft, tt);
        dvec_push(&tpot, tp);
        dvec_push(&e2e, tt + sum);
        dvec_push(&utr, 1 / tp);
        if (sent + tt + sum > *t)
            *t = sent + tt + sum;
    }
    json_t *s = json_object();
    json_object_set_new(s, "num_requests", json_integer((json_int_t)n));
    json_object_set_new(s, "completed", json_integer((json_int_t)n));
    json_object_set_new(s, "failed", json_integer(0));
    json_object_set_new(s, "window_start_s", json_real(start));
    json_object_set_new(s, "window_end_s", json_real(*t));
    json_object_set_new(s, "request_throughput", json_real((double)n / (*t - start)));
    json_object_set_new(s, "output_throughput", json_real((double)n * tokens / (*t - start)));
    json_object_set_new(s, "ttft_ms", dist_json(&ttft, 1e3));
    json_object_set_new(s, "itl_ms", dist_json(&itl, 1e3));
    json_object_set_new(s, "tpot_ms", dist_json(&tpot, 1e3));
    json_object_set_new(s, "e2e_ms", dist_json(&e2e, 1e3));
    json_object_set_new(s, "user_token_rate", dist_json(&utr, 1));
    json_object_set_new(s, "goodput", json_real((double)n / (*t - start)));
    json_object_set_new(s, "slo_attainment_pct", json_real(100));
    dvec_release(&ttft);
    dvec_release(&itl);
    dvec_release(&tpot);
    dvec_release(&e2e);
    dvec_release(&utr);
    json_t *p = json_object();
    json_object_set_new(p, "tenant", json_string("default"));
    json_object_set_new(p, "model", json_string("meta-llama/Llama-3.1-8B-Instruct"));
    json_object_set_new(p, "context_length", json_integer(4096));
    json_object_set_new(p, "concurrency", json_integer(users));
    json_object_set_new(p, "rate", json_string("inf"));
    json_object_set_new(p, "partial", json_false());
    json_object_set_new(p, "summary", s);
    json_object_set_new(p, "requests", reqs);
    *t += 1;
    return p;
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

int main(int argc, char **argv)
{
    size_t n = 10000;
    int tokens = 128;
    const char *keep = NULL;
    static const struct option opts[] = {{"requests", required_argument, NULL, 'n'},
                                         {"tokens", required_argument, NULL, 't'},
                                         {"keep", required_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'n')
            n = strtoul(optarg, NULL, 10);
        else if (c == 't')
            tokens = atoi(optarg);
        else if (c == 'k')
            keep = optarg;
        else
            return 2;
    }
    char tmpl[] = "/tmp/bench_report_XXXXXX";
    const char *dir = keep ? keep : mkdtemp(tmpl);
    if (!dir || (keep && mkdir(keep, 0755) != 0 && errno != EEXIST))
        return 1;
    struct rng r;
    rng_seed(&r, 1);
    json_t *root = json_pack(
        "{s:i, s:{s:s, s:s, s:s}, s:s, s:{s:{s:s, s:s}, s:{s:{s:b, s:s}}, s:{s:s}, "
        "s:{s:i, s:i}, s:{s:f, s:f, s:f}}, s:{s:s, s:s}, s:[]}",
        "schema_version", 1, "tool", "name", "testbench", "version", "bench", "git", "bench",
        "started_at", "2026-01-01T00:00:00Z", "config", "benchmark", "name", "bench",
        "output_prefix", "bench", "server", "sim", "enabled", 1, "gpu", "rtx-pro-6000", "model",
        "name", "meta-llama/Llama-3.1-8B-Instruct", "requests", "completion_tokens", tokens,
        "prompt_tokens_max", 4096, "slo", "ttft_ms", 2000.0, "tpot_ms", 100.0, "percentile", 95.0,
        "server", "model", "meta-llama/Llama-3.1-8B-Instruct", "version", "bench", "gpus");
    json_t *points = json_array();
    double t = 0;
    int users[] = {1, 10, 32, 64};
    for (int i = 0; i < 4; i++)
        json_array_append_new(points, point_make(&r, users[i], n / 4, tokens, &t));
    json_object_set_new(root, "points", points);
    char *detailed = xasprintf("%s/bench_20260101-000000_detailed.json", dir);
    char *telemetry = xasprintf("%s/bench_20260101-000000_telemetry.json", dir);
    if (json_dump_file(root, detailed, JSON_COMPACT | JSON_REAL_PRECISION(12)) != 0)
        return 1;
    json_decref(root);
    json_t *samples = json_array();
    for (double s = 0; s <= t; s += 1.0)
        json_array_append_new(
            samples,
            json_pack("{s:f, s:[{s:i, s:f, s:f, s:f, s:f}], s:{s:f, s:f, s:f}}", "t", s, "gpus",
                      "index", 0, "power_w", 300 + 200 * sin(s / 50), "temperature_c",
                      60 + 10 * sin(s / 80), "sm_clock_mhz", 2400.0, "memory_used_mib", 80000.0,
                      "server", "kv_cache_usage_pct", 50 + 40 * sin(s / 30), "num_requests_running",
                      10.0, "num_requests_waiting", 0.0));
    json_t *tel = json_pack("{s:f, s:[s], s:o, s:{s:s}}", "interval_s", 1.0, "sources", "nvml",
                            "samples", samples, "tool", "name", "testbench");
    if (json_dump_file(tel, telemetry, JSON_COMPACT) != 0)
        return 1;
    json_decref(tel);
    char *html = xasprintf("%s/report.html", dir);
    mono_ns t0 = clock_now();
    pid_t pid = fork();
    if (pid == 0) {
        execl(TB_BINARY, "testbench", "report", detailed, "--output", html, "--quiet", NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    double secs = (double)(clock_now() - t0) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("requests %zu (%d tokens each): detailed.json %.1f MiB, telemetry.json %.1f KiB\n", n,
           tokens, (double)file_size(detailed) / 1048576.0, (double)file_size(telemetry) / 1024.0);
    printf("report: exit %d, %.2f s, peak RSS %.0f MiB, report.html %.0f KiB\n",
           WIFEXITED(st) ? WEXITSTATUS(st) : -1, secs, (double)ru.ru_maxrss / 1024.0,
           (double)file_size(html) / 1024.0);
    if (!keep) {
        unlink(detailed);
        unlink(telemetry);
        unlink(html);
        char *md = xasprintf("%s/report.md", dir);
        unlink(md);
        free(md);
        rmdir(dir);
    }
    free(detailed);
    free(telemetry);
    free(html);
    return 0;
}
