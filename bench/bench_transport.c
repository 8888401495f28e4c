/*
 * bench_transport.c - what one streamed token costs the client, by transport, against
 * bench/gt_server: the runner's own client (libcurl multi_socket on libevent, src/runner/
 * client.c) and libevent's evhttp client with a chunked callback, both feeding the same SSE
 * parser and chunk scanner and stamping each event on the same clock, on one thread. Per
 * transport and load it prints the CPU per event (this process's user+sys over the load) and
 * the ITL p50/p99 error against the server's interval, so the choice of transport rests on a
 * measurement (docs/RUNNER.md).
 *
 *   build/bench_transport [--streams 300,1000] [--tokens 200] [--requests-per-stream 2]
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "bench_common.h"
#include "core/clock.h"
#include "core/stats.h"
#include "core/xalloc.h"
#include "runner/client.h"
#include "runner/record.h"
#include "runner/sse.h"

#define INTERVAL_MS 5.0
#define TTFT_MS 50.0

static const char body[] = "{\"model\":\"gt\",\"prompt\":\"hello hello hello hello\","
                           "\"max_tokens\":%d,\"stream\":true,"
                           "\"stream_options\":{\"include_usage\":true}}";

struct bench {
    struct event_base *base;
    int port, tokens;
    size_t total, started, finished;
    struct dvec gaps; /* every inter-event gap, seconds */
    size_t events;
};

/* ===== evhttp ===== */

struct evstream {
    struct bench *b;
    struct evhttp_connection *conn;
    struct sse_parser *sse;
    mono_ns now, last;
};

static int ev_on_event(void *ctx, const char *data, size_t len)
{
    struct evstream *s = ctx;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
        return 0;
    struct client_chunk ck;
    if (client_chunk_parse(data, len, &ck, NULL) || !ck.text)
        return 0;
    if (s->last)
        dvec_push(&s->b->gaps, ns_diff_s(s->last, s->now));
    s->last = s->now;
    s->b->events++;
    return 0;
}

static void ev_on_chunk(struct evhttp_request *req, void *arg)
{
    struct evstream *s = arg;
    s->now = clock_now();
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    int n = evbuffer_peek(in, -1, NULL, NULL, 0);
    struct evbuffer_iovec v[8];
    n = evbuffer_peek(in, -1, NULL, v, n < 8 ? n : 8);
    for (int i = 0; i < n; i++)
        if (sse_parser_feed(s->sse, v[i].iov_base, v[i].iov_len))
            break;
    /* libevent drains the chunk after this callback returns. */
}

static void ev_start(struct evstream *s);

static void ev_on_done(struct evhttp_request *req, void *arg)
{
    struct evstream *s = arg;
    (void)req;
    s->b->finished++;
    if (s->b->started < s->b->total)
        ev_start(s);
    else if (s->b->finished == s->b->total)
        event_base_loopexit(s->b->base, NULL);
}

static void ev_start(struct evstream *s)
{
    sse_parser_reset(s->sse);
    s->last = 0;
    struct evhttp_request *req = evhttp_request_new(ev_on_done, s);
    evhttp_request_set_chunked_cb(req, ev_on_chunk);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    evhttp_add_header(h, "Content-Type", "application/json");
    evbuffer_add_printf(evhttp_request_get_output_buffer(req), body, s->b->tokens);
    s->b->started++;
    if (evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, "/v1/completions"))
        fprintf(stderr, "bench: evhttp_make_request failed\n");
}

/* Stream i starts i/N of an interval after the first, so token phases are spread as in a
 * server that is not stepping all streams at once. */
static struct timeval stagger(size_t i, size_t n)
{
    double s = INTERVAL_MS / 1e3 * (double)i / (double)n;
    return (struct timeval){0, (suseconds_t)(s * 1e6)};
}

static void ev_start_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ev_start(arg);
}

static void run_evhttp(struct bench *b, size_t streams)
{
    struct evstream *ss = xcalloc(streams, sizeof(*ss));
    for (size_t i = 0; i < streams; i++) {
        ss[i].b = b;
        ss[i].conn = evhttp_connection_base_new(b->base, NULL, "127.0.0.1", (uint16_t)b->port);
        if (sse_parser_new(&ss[i].sse, 256 * 1024, ev_on_event, &ss[i]))
            abort();
        struct timeval tv = stagger(i, streams);
        event_base_once(b->base, -1, EV_TIMEOUT, ev_start_cb, &ss[i], &tv);
    }
    event_base_dispatch(b->base);
    for (size_t i = 0; i < streams; i++) {
        evhttp_connection_free(ss[i].conn);
        sse_parser_free(ss[i].sse);
    }
    free(ss);
}

/* ===== the runner's client ===== */

struct custream {
    struct bench *b;
    struct client *c;
    struct req_record rec;
};

static void cu_start(struct custream *s);

static void cu_on_done(void *ctx, struct req_record *rec)
{
    struct custream *s = ctx;
    for (size_t k = 1; k < rec->n_events; k++)
        dvec_push(&s->b->gaps, ns_diff_s(rec->events[k - 1], rec->events[k]));
    s->b->events += rec->n_events;
    if (rec->status != REQ_OK)
        fprintf(stderr, "bench: %s\n", rec->error ? rec->error : "failed");
    s->b->finished++;
    if (s->b->started < s->b->total)
        cu_start(s);
    else if (s->b->finished == s->b->total)
        event_base_loopexit(s->b->base, NULL);
}

static void cu_start(struct custream *s)
{
    static char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->b->port);
    req_record_release(&s->rec);
    req_record_init(&s->rec);
    struct client_request rq = {.base_url = url,
                                .api = API_COMPLETIONS,
                                .model = "gt",
                                .prompt = "hello hello hello hello",
                                .max_tokens = s->b->tokens};
    s->b->started++;
    if (client_start(s->c, &rq, &s->rec, cu_on_done, s))
        fprintf(stderr, "bench: client_start failed\n");
}

static void cu_start_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cu_start(arg);
}

static void run_curl(struct bench *b, size_t streams)
{
    struct client *c;
    struct client_options o = {0};
    if (client_new(&c, b->base, &o))
        abort();
    struct custream *ss = xcalloc(streams, sizeof(*ss));
    for (size_t i = 0; i < streams; i++) {
        ss[i].b = b;
        ss[i].c = c;
        req_record_init(&ss[i].rec);
        struct timeval tv = stagger(i, streams);
        event_base_once(b->base, -1, EV_TIMEOUT, cu_start_cb, &ss[i], &tv);
    }
    event_base_dispatch(b->base);
    client_free(c);
    for (size_t i = 0; i < streams; i++)
        req_record_release(&ss[i].rec);
    free(ss);
}

/* ===== the parse alone ===== */

static int parse_on_event(void *ctx, const char *data, size_t len)
{
    struct bench *b = ctx;
    struct client_chunk ck;
    if (client_chunk_parse(data, len, &ck, NULL) == 0 && ck.text)
        b->events++;
    return 0;
}

/* The SSE parser and chunk scanner on gt_server's own event text, one event per feed as the
 * write callback sees it at this load: the client's share of the CPU per event. */
static void run_parse_only(void)
{
    static const char ev[] =
        "data: {\"id\":\"cmpl-gt-1\",\"object\":\"text_completion\",\"model\":\"gt\","
        "\"choices\":[{\"index\":0,\"text\":\" tok\",\"logprobs\":null,\"finish_reason\":"
        "null}]}\n\n";
    struct bench b = {0};
    struct sse_parser *p;
    if (sse_parser_new(&p, 256 * 1024, parse_on_event, &b))
        abort();
    const size_t n = 2000000;
    mono_ns t0 = clock_now();
    for (size_t i = 0; i < n; i++) {
        mono_ns now = clock_now(); /* the write callback's stamp */
        (void)now;
        if (sse_parser_feed(p, ev, sizeof(ev) - 1))
            abort();
    }
    double s = ns_diff_s(t0, clock_now());
    sse_parser_free(p);
    printf("%-8s %7s %9zu %9s %8.2f   (SSE parser + chunk scanner + clock, no I/O)\n", "parse", "-",
           b.events, "-", s * 1e6 / (double)n);
}

/* ===== driver ===== */

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int bench_one(const char *transport, size_t streams, int tokens, int per_stream)
{
    int port = bench_free_port();
    char ports[16], toks[16];
    snprintf(ports, sizeof(ports), "%d", port);
    snprintf(toks, sizeof(toks), "%d", tokens);
    char *argv[] = {(char *)GT_SERVER, "--port",    ports, "--tokens", toks,
                    "--stats",         "/dev/null", NULL};
    pid_t srv = bench_spawn(argv);
    if (bench_wait_listening(port, 10)) {
        kill(srv, SIGTERM);
        waitpid(srv, NULL, 0);
        return -1;
    }
    /* As the runner's loop: libcurl's timer is the client's own precise timer (ptimer.h), so
     * libevent's precise timers, and their timerfd re-arm every loop turn, stay off. */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    struct bench b = {.base = event_base_new_with_config(ec),
                      .port = port,
                      .tokens = tokens,
                      .total = streams * (size_t)per_stream};
    event_config_free(ec);
    dvec_init(&b.gaps);
    double cpu0 = cpu_now();
    mono_ns t0 = clock_now();
    if (strcmp(transport, "evhttp") == 0)
        run_evhttp(&b, streams);
    else
        run_curl(&b, streams);
    double wall = ns_diff_s(t0, clock_now()), cpu = cpu_now() - cpu0;
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    struct dist d;
    dist_compute(&d, b.gaps.v, b.gaps.n);
    printf("%-8s %7zu %9zu %9.0f %8.2f %+9.3f %+9.3f %+9.3f\n", transport, streams, b.events,
           (double)b.events / wall, cpu * 1e6 / (double)b.events, d.p50 * 1e3 - INTERVAL_MS,
           d.p99 * 1e3 - INTERVAL_MS, d.p999 * 1e3 - INTERVAL_MS);
    fflush(stdout);
    dvec_release(&b.gaps);
    event_base_free(b.base);
    return 0;
}

int main(int argc, char **argv)
{
    const char *streams_list = "300,1000";
    int tokens = 200, per_stream = 2;
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
    signal(SIGPIPE, SIG_IGN);
    printf("transport benchmark: one thread, bench/gt_server (first token %.0f ms, then one every "
           "%.0f ms), %d tokens, %d requests per stream; stream starts spread over one interval\n",
           TTFT_MS, INTERVAL_MS, tokens, per_stream);
    printf("%-8s %7s %9s %9s %8s %9s %9s %9s\n", "client", "streams", "events", "events/s", "us/ev",
           "itl50", "itl99", "itl99.9");
    run_parse_only();
    int status = 0;
    char *list = xstrdup(streams_list), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t n = strtoul(t, NULL, 10);
        static const char *const transports[] = {"libcurl", "evhttp"};
        for (size_t k = 0; k < 2; k++)
            if (bench_one(transports[k], n, tokens, per_stream))
                status = 1;
    }
    free(list);
    return status;
}
