/*
 * bench_sim.c - how many concurrent SSE streams and emitted tokens per second the simulator's
 * one event-loop thread sustains.
 *
 *   bench_sim [--streams N] [--tokens T] [--prompt-words W]
 *
 * Starts the simulator in-process (sim_server_start, port 0) with a tiny model written to a
 * temporary catalog, so that the engine's step times allow far more than the target rate and
 * the limit measured is the HTTP/SSE front's CPU. N streaming completions (ignore_eos,
 * max_tokens T) are opened at once from a libcurl multi handle in the main thread; the bench
 * counts SSE events received. The server's CPU time is the process's CPU time minus the main
 * (client) thread's. Target (the sim brief): 2,000 streams, 100,000 tokens/s on one core.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench_common.h"
#include "core/clock.h"
#include "sim/sim.h"

struct stream {
    long events;
    int done;
};

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    struct stream *s = userp;
    size_t len = size * n;
    /* Count events, not tokens: one SSE event per engine step per request. */
    for (size_t i = 0; i + 6 <= len; i++)
        if (p[i] == 'd' && memcmp(p + i, "data: ", 6) == 0) {
            if (i + 12 <= len && memcmp(p + i + 6, "[DONE]", 6) == 0)
                s->done = 1;
            else
                s->events++;
        }
    return len;
}

static double cpu_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int n = 2000, tokens = 200, words = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--streams") == 0)
            n = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--tokens") == 0)
            tokens = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--prompt-words") == 0)
            words = (int)strtol(argv[i + 1], NULL, 10);
    }
    if (n < 1 || tokens < 1 || words < 1) {
        fprintf(stderr, "usage: bench_sim [--streams N] [--tokens T] [--prompt-words W]\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)(2 * n + 64)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);

    char dir[64];
    if (bench_tiny_catalog(dir, sizeof(dir))) {
        fprintf(stderr, "cannot write a temporary catalog\n");
        return 1;
    }
    struct sim_options o;
    sim_options_init(&o);
    o.port = 0;
    o.quiet = true;
    o.engine.gpu = "h200";
    o.engine.model = "bench/tiny-0.1b";
    o.engine.catalog_dir = dir;
    o.engine.max_num_seqs = n;
    o.engine.max_num_batched_tokens = 65536;
    struct sim_server *srv = NULL;
    char err[256];
    if (sim_server_start(&srv, &o, err, sizeof(err))) {
        fprintf(stderr, "sim_server_start: %s\n", err);
        bench_tiny_catalog_remove(dir);
        return 1;
    }

    char url[128], *body = malloc((size_t)words * 6 + 256);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/completions", sim_server_port(srv));
    size_t off = (size_t)sprintf(body, "{\"prompt\":\"");
    for (int i = 0; i < words; i++)
        off += (size_t)sprintf(body + off, i ? " the" : "the");
    sprintf(body + off, "\",\"max_tokens\":%d,\"ignore_eos\":true,\"stream\":true}", tokens);

    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    CURL **e = calloc((size_t)n, sizeof(*e));
    struct stream *st = calloc((size_t)n, sizeof(*st));
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    for (int i = 0; i < n; i++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &st[i]);
        curl_easy_setopt(e[i], CURLOPT_NOSIGNAL, 1L);
        curl_multi_add_handle(m, e[i]);
    }
    double cpu0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID), client0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
    mono_ns t0 = clock_now();
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    double wall = ns_diff_s(t0, clock_now());
    double cpu = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    double client = cpu_s(CLOCK_THREAD_CPUTIME_ID) - client0;
    double server = cpu - client;

    long events = 0;
    int complete = 0;
    for (int i = 0; i < n; i++) {
        events += st[i].events;
        complete += st[i].done && st[i].events == tokens;
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    sim_server_stop(srv);
    bench_tiny_catalog_remove(dir);
    free(e);
    free(st);
    free(body);
    curl_global_cleanup();

    printf("streams %d (complete %d), tokens/stream %d, events %ld\n", n, complete, tokens, events);
    printf("wall %.2f s: %.0f tokens/s emitted and received\n", wall, (double)events / wall);
    printf("cpu: server thread %.2f s (%.0f tokens per server cpu-second, %.1f us/token), "
           "client %.2f s\n",
           server, server > 0 ? (double)events / server : 0.0,
           events ? server * 1e6 / (double)events : 0.0, client);
    return complete == n ? 0 : 1;
}
