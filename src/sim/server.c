/*
 * server.c - the simulator's HTTP front: evhttp routes, the engine step timer, start/stop.
 *
 * Real-time driving: one libevent timer for the whole engine, not one per stream. When a
 * request arrives and the engine is idle, a "kick" event plans a step on the next loop turn
 * (so arrivals parsed in the same turn join the same step, as they would join vLLM's busy
 * loop), and the timer is armed for the step's duration. When it fires,
 * engine_step_finish(now) emits one event per progressed request; each becomes one SSE chunk
 * on that request's connection (stream.c), then the next step is planned. Consecutive steps
 * are laid end to end on their nominal times: a step that fires late by x (loop busy writing
 * chunks, a busy host) shortens the next timer by x, down to half its duration, so the
 * simulated throughput does not drift and gaps do not collapse; beyond STEP_LATE_CAP the
 * schedule restarts from now (the server is overloaded; no catch-up burst).
 * The engine's clock is seconds on CLOCK_MONOTONIC since the server started. A server that
 * shares its GPU with others in the process (sim_options.gpu) has each step claim the GPU
 * first: the step starts when the other servers' step ends (gpu.c, docs/TENANCY.md).
 *
 * Client disconnects: evhttp calls the connection's close callback; the stream's request is
 * aborted in the engine and the stream freed. evhttp has by then detached the request from
 * the connection (libevent 2.1 keeps an unfinished request alive for its owner), so we free
 * it too (evhttp_send_reply_end on a detached request frees it).
 *
 * Threads: sim_server_start runs the loop on its own thread; sim_server_stop wakes it from
 * another thread by writing a byte into a socketpair whose read end is an event on the loop
 * (its callback calls event_base_loopbreak), then joins and tears down. Everything else runs
 * on the loop thread, so the base needs no evthread locks: evthread_use_pthreads would put a
 * mutex around every evbuffer operation on the per-token path.
 *
 * Limits (docs/ARCHITECTURE.md, "Simulator limits"): a request's line and headers are capped at
 * SIM_MAX_HEADERS and its body at SIM_MAX_BODY; evhttp stops reading past them and answers 413
 * (libevent 2.1 has no hook to answer 431 for the headers). A connection with nothing in flight
 * is closed after --idle-timeout seconds of silence (evhttp's read/write timeout); while a
 * generation is in flight its connection's timeout is raised to SIM_REQUEST_TIMEOUT_S, as a
 * long stream sends while the client sends nothing, and lowered again when the reply ends.
 * The listening socket and its accept() failures are listen.c's.
 *
 * SIGPIPE is ignored process-wide while a server exists: a client that vanishes between two
 * chunks must cost an EPIPE, not the process (libevent writes with writev, not MSG_NOSIGNAL).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "core/log.h"
#include "core/rng.h"
#include "sim/sim_internal.h"

#define STEP_LATE_CAP 0.020
/* Held requests due this close together reach the engine in one step (on_admit): a client
 * answering one step's burst of last tokens with as many new requests spreads them over a few
 * milliseconds on a busy host, which the planner's clients (all at once) do not. */
#define SIM_ADMIT_GATHER_S 0.005

void sim_options_init(struct sim_options *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = 8000;
    o->engine.enable_prefix_caching = -1;
    o->seed = 42;
    o->idle_timeout_s = SIM_IDLE_TIMEOUT_S;
}

void sim_server_conn_idle(struct sim_server *srv, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = req ? evhttp_request_get_connection(req) : NULL;
    if (evcon)
        evhttp_connection_set_timeout(evcon, srv->idle_timeout_s);
}

double sim_server_now(const struct sim_server *srv)
{
    return ns_diff_s(srv->t0, clock_now());
}

int sim_server_port(const struct sim_server *s)
{
    return s ? s->port : -1;
}

size_t sim_server_live_streams(const struct sim_server *s)
{
    return s ? __atomic_load_n(&s->n_streams, __ATOMIC_RELAXED) : 0;
}

/* ---- replies ----------------------------------------------------------------------- */

static void reply_json(struct evhttp_request *req, int code, const char *reason, const char *json,
                       size_t len)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(b, json, len);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static const char *status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

static void reply_error(struct sim_server *srv, struct evhttp_request *req,
                        const struct sim_error *e)
{
    sim_error_json(e, &srv->body);
    reply_json(req, e->status, status_reason(e->status), srv->body.data, srv->body.len);
}

static void reply_status(struct sim_server *srv, struct evhttp_request *req, int status,
                         const char *msg)
{
    struct sim_error e;
    sim_error_set(&e, status, "%s", msg);
    reply_error(srv, req, &e);
}

/* --fail-pct: does generation request number k (0-based) fail? Evenly spread: when
 * floor((k + 1) P / 100) passes floor(k P / 100). */
static bool shed_load(struct sim_server *srv)
{
    if (!srv->fail_pct)
        return false;
    uint64_t k = srv->generations++;
    return (k + 1) * (uint64_t)srv->fail_pct / 100 > k * (uint64_t)srv->fail_pct / 100;
}

static void reply_buf(struct sim_server *srv, struct evhttp_request *req)
{
    reply_json(req, 200, "OK", srv->body.data ? srv->body.data : "", srv->body.len);
}

/* ---- streams and the step timer ---------------------------------------------------- */

static void stream_unlink(struct sim_server *srv, struct sim_stream *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    __atomic_sub_fetch(&srv->n_streams, 1, __ATOMIC_RELAXED);
}

static void on_engine_event(void *ctx, const struct engine_event *ev)
{
    struct sim_server *srv = ctx;
    struct sim_stream *s = ev->user;
    if (!s)
        return;
    if (ev->finish != FINISH_NONE)
        s->in_engine = false;
    if (sim_stream_on_event(s, ev, srv->step_start, srv->step_end_actual)) {
        stream_unlink(srv, s);
        sim_stream_free(s);
    }
}

static void plan_step(struct sim_server *srv, bool back_to_back)
{
    double d = engine_step_plan(srv->engine);
    if (d < 0) {
        srv->stepping = false;
        return;
    }
    double now = sim_server_now(srv);
    double start = now;
    if (back_to_back) {
        /* Carry the last step's lateness into this one, but never shorten a step below
         * half its duration: a late timer must not turn into a burst of near-zero gaps. */
        double late = now - srv->step_end;
        if (late >= STEP_LATE_CAP)
            srv->steps_late++;
        else
            start = late > d / 2 ? now - d / 2 : srv->step_end;
    }
    /* On a GPU shared with other servers the step waits for the one holding it (gpu.c). */
    if (srv->gpu)
        start = sim_gpu_claim(srv->gpu, srv->t0_abs + start, d) - srv->t0_abs;
    srv->step_start = start;
    srv->step_end = start + d;
    double delay = srv->step_end - now;
    if (delay < 0)
        delay = 0;
    mono_ns ns = s_to_ns(delay);
    struct timeval tv = {(time_t)(ns / NS_PER_S), (suseconds_t)((ns % NS_PER_S) / 1000)};
    srv->stepping = true;
    evtimer_add(srv->step_timer, &tv);
}

static void on_step_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sim_server *srv = arg;
    (void)fd;
    (void)what;
    srv->step_end_actual = sim_server_now(srv);
    engine_step_finish(srv->engine, srv->step_end_actual, on_engine_event, srv);
    plan_step(srv, true);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct sim_server *srv = arg;
    (void)fd;
    (void)what;
    if (!srv->stepping)
        plan_step(srv, false);
}

/* The client went away: forget the request everywhere. */
static void arm_admit(struct sim_server *srv, double after)
{
    if (after < 0)
        after = 0;
    struct timeval tv = {(time_t)after, (suseconds_t)((after - (double)(time_t)after) * 1e6)};
    if (evtimer_add(srv->admit_timer, &tv))
        log_error("sim: cannot arm the admission timer");
}

static void held_remove(struct sim_server *srv, struct sim_stream *s)
{
    struct sim_stream **pp = &srv->held_head, *prev = NULL;
    while (*pp && *pp != s) {
        prev = *pp;
        pp = &(*pp)->held_next;
    }
    if (!*pp)
        return;
    *pp = s->held_next;
    if (srv->held_tail == s)
        srv->held_tail = prev;
    s->held_next = NULL;
    s->held = false;
}

/* Held requests whose per-request overhead has passed reach the engine. Requests due within
 * SIM_ADMIT_GATHER_S of each other go together: clients that send at the same moment (every
 * closed-loop user whose answer ended in the same step) reach the engine in one step, as they
 * do in the planner and as same-turn arrivals do without a hold; only the loop's wake-up
 * jitter separates them otherwise. */
static void on_admit(evutil_socket_t fd, short what, void *arg)
{
    struct sim_server *srv = arg;
    (void)fd;
    (void)what;
    double now = sim_server_now(srv);
    bool added = false;
    while (srv->held_head && srv->held_head->admit_at <= now + SIM_ADMIT_GATHER_S) {
        struct sim_stream *s = srv->held_head;
        held_remove(srv, s);
        struct engine_request er = {
            .id = s->id,
            .prompt = s->call.prompt.v,
            .prompt_len = s->call.prompt.n,
            .max_tokens = s->target_tokens,
            .user = s,
        };
        char err[512];
        /* engine_check passed on arrival and ids are unique, so this cannot fail; if it did,
         * the stream would wait for its client to give up, which the log line explains. */
        if (engine_add(srv->engine, &er, err, sizeof(err))) {
            log_error("sim: %s", err);
            continue;
        }
        s->in_engine = true;
        added = true;
    }
    if (srv->held_head)
        arm_admit(srv, srv->held_head->admit_at - now);
    if (added && !srv->stepping)
        event_active(srv->kick, EV_TIMEOUT, 1);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct sim_stream *s = arg;
    struct sim_server *srv = s->srv;
    (void)evcon;
    if (s->in_engine)
        engine_abort(srv->engine, s->id);
    if (s->held)
        held_remove(srv, s);
    srv->metrics.finished_abort++;
    /* Detached from its connection (unfinished): we own it now and must free it. When the
     * connection still holds it (evhttp_free at shutdown), evhttp frees it itself. */
    if (s->req && evhttp_request_get_connection(s->req) == NULL)
        evhttp_send_reply_end(s->req);
    s->req = NULL;
    stream_unlink(srv, s);
    sim_stream_free(s);
}

static const char *body_of(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    if (*len == 0)
        return "";
    return (const char *)evbuffer_pullup(in, -1);
}

static void handle_generate(struct sim_server *srv, struct evhttp_request *req, bool chat)
{
    struct sim_error e;
    char err[512];
    size_t len;
    const char *body = body_of(req, &len);
    struct sim_stream *s = xcalloc(1, sizeof(*s));
    s->srv = srv;
    s->req = req;
    s->prefill_start = -1;
    dvec_init(&s->token_times);
    sim_call_init(&s->call);
    if (sim_call_parse(&s->call, chat, body, len, srv->tok, &srv->models, &e)) {
        reply_error(srv, req, &e);
        goto drop;
    }
    s->id = ++srv->next_id;
    s->arrival = sim_server_now(srv);
    s->created = (long)time(NULL);
    uint64_t key[2] = {srv->seed, s->id};
    s->text_seed = s->call.has_seed ? hash64(&s->call.seed, sizeof(s->call.seed), 0x736565u)
                                    : hash64(key, sizeof(key), 0x736565u);
    snprintf(s->id_str, sizeof(s->id_str), "%s-%016llx%08llx", chat ? "chatcmpl" : "cmpl",
             (unsigned long long)hash64(key, sizeof(key), 1), (unsigned long long)s->id);
    /* Output length: exactly max_tokens with ignore_eos; else a seeded natural length,
     * uniform in [lo, hi] with lo = max(min_tokens, 1) and hi = min(max_tokens,
     * max(lo, SIM_NATURAL_CAP)) ("stop" when shorter than max_tokens). The cap keeps a chat
     * without max_tokens (default: the whole context) at answer-like lengths. */
    s->target_tokens = s->call.max_tokens;
    if (!s->call.ignore_eos) {
        struct rng r;
        rng_seed(&r, s->text_seed ^ 0x6c656e677468ull);
        int lo = s->call.min_tokens > 1 ? s->call.min_tokens : 1;
        int hi = lo > SIM_NATURAL_CAP ? lo : SIM_NATURAL_CAP;
        if (hi > s->call.max_tokens)
            hi = s->call.max_tokens;
        s->target_tokens = (int)rng_range(&r, lo, hi);
    }
    struct engine_request er = {
        .id = s->id,
        .prompt = s->call.prompt.v,
        .prompt_len = s->call.prompt.n,
        .max_tokens = s->target_tokens,
        .user = s,
    };
    if (engine_check(srv->engine, &er, err, sizeof(err))) {
        sim_error_set(&e, 400, "%s", err);
        reply_error(srv, req, &e);
        goto drop;
    }
    /* vLLM's frontend spends a fixed time per request before its engine sees it (HTTP,
     * tokenisation, scheduling); the engine's cost model names it, and the planner lets a
     * request reach the engine as late, so the simulator holds it as long (docs/ENGINE.md). */
    double hold = engine_request_overhead(srv->engine);
    if (hold > 0) {
        s->held = true;
        s->admit_at = s->arrival + hold;
        if (srv->held_tail)
            srv->held_tail->held_next = s;
        else
            srv->held_head = s;
        srv->held_tail = s;
        if (!evtimer_pending(srv->admit_timer, NULL))
            arm_admit(srv, hold);
    } else if (engine_add(srv->engine, &er, err, sizeof(err))) {
        sim_error_set(&e, 400, "%s", err);
        reply_error(srv, req, &e);
        goto drop;
    } else {
        s->in_engine = true;
    }
    /* The client may now be silent for as long as the generation takes. */
    evhttp_connection_set_timeout(evhttp_request_get_connection(req), SIM_REQUEST_TIMEOUT_S);
    s->next = srv->streams;
    if (srv->streams)
        srv->streams->prev = s;
    srv->streams = s;
    __atomic_add_fetch(&srv->n_streams, 1, __ATOMIC_RELAXED);
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_close, s);
    sim_stream_begin(s);
    if (s->in_engine && !srv->stepping)
        event_active(srv->kick, EV_TIMEOUT, 1);
    return;
drop:
    sim_stream_free(s);
}

/* ---- other routes ------------------------------------------------------------------ */

static void handle_models(struct sim_server *srv, struct evhttp_request *req)
{
    struct buf *b = &srv->body;
    const struct sim_models *m = &srv->models;
    buf_reset(b);
    int rc = buf_puts(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; !rc && i <= m->n_lora; i++) {
        const char *id = i == 0 ? m->served_name : m->lora[i - 1].name;
        const char *root = i == 0 ? m->root : m->lora[i - 1].path;
        rc = buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
        rc = rc ? rc : json_quote(b, id);
        rc = rc ? rc
                : buf_printf(b,
                             ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"vllm\","
                             "\"root\":",
                             m->created);
        rc = rc ? rc : json_quote(b, root);
        rc = rc ? rc : buf_puts(b, ",\"parent\":");
        rc = rc ? rc : (i == 0 ? buf_puts(b, "null") : json_quote(b, m->served_name));
        rc = rc ? rc : buf_printf(b, ",\"max_model_len\":%d,\"permission\":[]}", m->max_model_len);
    }
    rc = rc ? rc : buf_puts(b, "]}");
    if (rc) {
        reply_status(srv, req, 500, "model list too large");
        return;
    }
    reply_buf(srv, req);
}

static void handle_metrics(struct sim_server *srv, struct evhttp_request *req)
{
    struct engine_counters c;
    engine_counters(srv->engine, &c);
    if (sim_metrics_text(&srv->metrics, &c, srv->info, srv->models.served_name, &srv->body)) {
        reply_status(srv, req, 500, "metrics too large");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evbuffer_add(b, srv->body.data, srv->body.len);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

enum route_id {
    R_HEALTH,
    R_MODELS,
    R_VERSION,
    R_METRICS,
    R_TOKENIZE,
    R_DETOKENIZE,
    R_COMPLETIONS,
    R_CHAT,
};

static const struct route {
    const char *path;
    enum evhttp_cmd_type method;
    enum route_id id;
} routes[] = {
    {"/health", EVHTTP_REQ_GET, R_HEALTH},
    {"/v1/models", EVHTTP_REQ_GET, R_MODELS},
    {"/version", EVHTTP_REQ_GET, R_VERSION},
    {"/metrics", EVHTTP_REQ_GET, R_METRICS},
    {"/tokenize", EVHTTP_REQ_POST, R_TOKENIZE},
    {"/detokenize", EVHTTP_REQ_POST, R_DETOKENIZE},
    {"/v1/completions", EVHTTP_REQ_POST, R_COMPLETIONS},
    {"/v1/chat/completions", EVHTTP_REQ_POST, R_CHAT},
};

static void on_request(struct evhttp_request *req, void *arg)
{
    struct sim_server *srv = arg;
    const char *uri = evhttp_request_get_uri(req);
    size_t plen = strcspn(uri, "?#");
    const struct route *r = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strlen(routes[i].path) == plen && memcmp(routes[i].path, uri, plen) == 0)
            r = &routes[i];
    if (!r) {
        reply_status(srv, req, 404, "Not Found");
        return;
    }
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    bool head = m == EVHTTP_REQ_HEAD && r->method == EVHTTP_REQ_GET;
    if (m != r->method && !head) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          r->method == EVHTTP_REQ_GET ? "GET" : "POST");
        reply_status(srv, req, 405, "Method Not Allowed");
        return;
    }
    if (!srv->ready) {
        reply_status(srv, req, 503, "The engine is not ready");
        return;
    }
    struct sim_error e;
    size_t len;
    const char *body;
    switch (r->id) {
    case R_HEALTH:
        evhttp_send_reply(req, 200, "OK", NULL);
        break;
    case R_MODELS:
        handle_models(srv, req);
        break;
    case R_VERSION: {
        static const char v[] = "{\"version\":\"" SIM_VERSION " (testbench-sim)\"}";
        reply_json(req, 200, "OK", v, sizeof(v) - 1);
        break;
    }
    case R_METRICS:
        handle_metrics(srv, req);
        break;
    case R_TOKENIZE:
        body = body_of(req, &len);
        if (srv->tokenize_llamacpp
                ? sim_tokenize_llamacpp(body, len, srv->tok, &srv->body, &e)
                : sim_tokenize(body, len, srv->tok, &srv->models, &srv->body, &e))
            reply_error(srv, req, &e);
        else
            reply_buf(srv, req);
        break;
    case R_DETOKENIZE:
        body = body_of(req, &len);
        if (sim_detokenize(body, len, srv->tok, &srv->models, &srv->body, &e))
            reply_error(srv, req, &e);
        else
            reply_buf(srv, req);
        break;
    case R_COMPLETIONS:
    case R_CHAT:
        if (shed_load(srv)) {
            sim_error_set(&e, srv->fail_status, "simulated failure (--fail-pct %d)", srv->fail_pct);
            reply_error(srv, req, &e);
            break;
        }
        handle_generate(srv, req, r->id == R_CHAT);
        break;
    }
}

static void on_trace_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sim_trace_flush(arg);
}

/* ---- lifecycle --------------------------------------------------------------------- */

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct sim_server *srv = arg;
    char c[16];
    (void)what;
    while (read(fd, c, sizeof(c)) > 0)
        ;
    event_base_loopbreak(srv->base);
}

static void models_release(struct sim_models *m)
{
    free(m->served_name);
    free(m->root);
    for (size_t i = 0; i < m->n_lora; i++) {
        free(m->lora[i].name);
        free(m->lora[i].path);
    }
    free(m->lora);
    memset(m, 0, sizeof(*m));
}

static int models_setup(struct sim_models *m, const struct sim_options *o,
                        const struct engine_info *info, char *err, size_t errlen)
{
    m->root = xstrdup(info->model_name);
    m->served_name = xstrdup(o->served_model_name ? o->served_model_name : info->model_name);
    m->max_model_len = info->max_model_len;
    m->created = (long)time(NULL);
    if (strlen(m->served_name) > SIM_MAX_NAME) {
        snprintf(err, errlen, "--served-model-name is longer than %d bytes", SIM_MAX_NAME);
        return -EINVAL;
    }
    m->lora = xcalloc(o->n_lora_modules ? o->n_lora_modules : 1, sizeof(*m->lora));
    for (size_t i = 0; i < o->n_lora_modules; i++) {
        const char *spec = o->lora_modules[i];
        const char *eq = strchr(spec, '=');
        if (!eq || eq == spec || !eq[1] || (size_t)(eq - spec) > SIM_MAX_NAME) {
            snprintf(err, errlen, "--lora-modules: expected NAME=PATH, got '%s'", spec);
            return -EINVAL;
        }
        m->lora[i].name = xstrndup(spec, (size_t)(eq - spec));
        m->lora[i].path = xstrdup(eq + 1);
        m->n_lora = i + 1;
    }
    return 0;
}

static void server_free(struct sim_server *srv)
{
    if (!srv)
        return;
    srv->ready = false;
    if (srv->steps_late && !srv->quiet)
        log_warn("%llu engine steps ran over %.0f ms late: the server was CPU-bound and its "
                 "timings are slower than the model's",
                 (unsigned long long)srv->steps_late, STEP_LATE_CAP * 1e3);
    /* evhttp_free closes every connection; their close callbacks abort and free streams. */
    if (srv->listener)
        sim_listen_forget(srv);
    if (srv->http)
        evhttp_free(srv->http);
    srv->listener = NULL;
    if (srv->accept_retry)
        event_free(srv->accept_retry);
    while (srv->streams) {
        struct sim_stream *s = srv->streams;
        stream_unlink(srv, s);
        sim_stream_free(s);
    }
    if (srv->step_timer)
        event_free(srv->step_timer);
    if (srv->kick)
        event_free(srv->kick);
    if (srv->admit_timer)
        event_free(srv->admit_timer);
    if (srv->wake)
        event_free(srv->wake);
    for (int i = 0; i < 2; i++)
        if (srv->wake_fd[i] >= 0)
            evutil_closesocket(srv->wake_fd[i]);
    if (srv->trace_timer)
        event_free(srv->trace_timer);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->scratch)
        evbuffer_free(srv->scratch);
    sim_trace_close(srv->trace);
    engine_free(srv->engine);
    tokenizer_free(srv->tok);
    models_release(&srv->models);
    sim_metrics_release(&srv->metrics);
    buf_release(&srv->body);
    if (srv->base)
        event_base_free(srv->base);
    free(srv);
}

static int server_new(struct sim_server **out, const struct sim_options *o, char *err,
                      size_t errlen)
{
    int rc = -ENOMEM;
    struct event_config *cfg = NULL;
    struct sim_server *srv = xcalloc(1, sizeof(*srv));
    srv->wake_fd[0] = srv->wake_fd[1] = -1;
    signal(SIGPIPE, SIG_IGN);
    sim_metrics_init(&srv->metrics);
    buf_init(&srv->body, SIM_MAX_BODY * 4);
    srv->seed = o->seed;
    srv->quiet = o->quiet;
    srv->gpu = o->gpu;
    srv->idle_timeout_s = o->idle_timeout_s > 0 ? o->idle_timeout_s : SIM_IDLE_TIMEOUT_S;
    srv->tokenize_llamacpp = o->tokenize_llamacpp;
    srv->reasoning_tokens = o->reasoning_tokens > 0 ? o->reasoning_tokens : 0;
    srv->prompt_tokens_details = o->prompt_tokens_details;
    srv->fail_pct = o->fail_pct > 0 && o->fail_pct <= 100 ? o->fail_pct : 0;
    srv->fail_status = o->fail_status >= 400 && o->fail_status <= 599 ? o->fail_status : 503;

    struct engine_config ec = o->engine;
    if (ec.num_lora_slots == 0)
        ec.num_lora_slots = (int)o->n_lora_modules;
    rc = engine_new(&srv->engine, &ec, err, errlen);
    if (rc)
        goto fail;
    srv->info = engine_info(srv->engine);
    rc = models_setup(&srv->models, o, srv->info, err, errlen);
    if (rc)
        goto fail;
    rc =
        tokenizer_new(&srv->tok, (uint32_t)(srv->info->vocab_size > 0 ? srv->info->vocab_size : 0));
    if (rc) {
        snprintf(err, errlen, "tokenizer: out of memory");
        goto fail;
    }
    if (o->trace_path) {
        rc = sim_trace_open(&srv->trace, o->trace_path);
        if (rc) {
            snprintf(err, errlen, "cannot open trace file %s: %s", o->trace_path, strerror(-rc));
            goto fail;
        }
    }

    rc = -ENOMEM;
    cfg = event_config_new();
    if (!cfg)
        goto fail;
    /* Steps last milliseconds: timerfd precision instead of epoll's millisecond rounding.
     * The changelist folds the add+remove of a write event within one loop turn into nothing,
     * which is what a chunk written at once (stream.c) does. */
    event_config_set_flag(cfg,
                          EVENT_BASE_FLAG_PRECISE_TIMER | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    srv->base = event_base_new_with_config(cfg);
    srv->http = srv->base ? evhttp_new(srv->base) : NULL;
    srv->scratch = evbuffer_new();
    if (!srv->base || !srv->http || !srv->scratch)
        goto fail;
    srv->step_timer = evtimer_new(srv->base, on_step_timer, srv);
    srv->kick = event_new(srv->base, -1, 0, on_kick, srv);
    srv->accept_retry = evtimer_new(srv->base, sim_on_accept_retry, srv);
    srv->admit_timer = evtimer_new(srv->base, on_admit, srv);
    if (!srv->step_timer || !srv->kick || !srv->accept_retry || !srv->admit_timer)
        goto fail;
    if (evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, srv->wake_fd) ||
        evutil_make_socket_nonblocking(srv->wake_fd[0]) ||
        evutil_make_socket_closeonexec(srv->wake_fd[0]) ||
        evutil_make_socket_closeonexec(srv->wake_fd[1])) {
        rc = -errno;
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        goto fail;
    }
    srv->wake = event_new(srv->base, srv->wake_fd[0], EV_READ | EV_PERSIST, on_wake, srv);
    if (!srv->wake || event_add(srv->wake, NULL))
        goto fail;
    if (srv->trace) {
        srv->trace_timer = event_new(srv->base, -1, EV_PERSIST, on_trace_timer, srv->trace);
        struct timeval one = {1, 0};
        if (!srv->trace_timer || evtimer_add(srv->trace_timer, &one))
            goto fail;
    }
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(srv->http, SIM_MAX_BODY);
    evhttp_set_max_headers_size(srv->http, SIM_MAX_HEADERS);
    evhttp_set_timeout(srv->http, srv->idle_timeout_s);
    evhttp_set_gencb(srv->http, on_request, srv);
    rc = sim_listen_bind(srv, o->host ? o->host : "127.0.0.1", o->port, err, errlen);
    if (rc)
        goto fail;

    srv->t0 = clock_now();
    srv->t0_abs = (double)srv->t0 / 1e9;
    srv->ready = true;
    event_config_free(cfg);
    *out = srv;
    return 0;
fail:
    if (cfg)
        event_config_free(cfg);
    server_free(srv);
    return rc;
}

static void log_startup(const struct sim_server *srv, const char *host)
{
    const struct engine_info *i = srv->info;
    log_info("testbench sim %s: %s on %s (TP %d, weights %s, KV %s)", SIM_VERSION, i->model_name,
             i->gpu_name, i->tensor_parallel_size, i->weight_dtype, i->kv_dtype);
    log_info("GPU KV cache size: %ld tokens", i->kv_capacity_tokens);
    log_info("Maximum concurrency for %d tokens per request: %.2fx", i->max_model_len,
             i->max_concurrency);
    log_info("Serving %s: API server on http://%s:%d", srv->models.served_name, host, srv->port);
}

static void *loop_thread(void *arg)
{
    struct sim_server *srv = arg;
    event_base_dispatch(srv->base);
    return NULL;
}

int sim_server_start(struct sim_server **out, const struct sim_options *o, char *err, size_t errlen)
{
    struct sim_server *srv = NULL;
    int rc = server_new(&srv, o, err, errlen);
    if (rc)
        return rc;
    if (!o->quiet)
        log_startup(srv, o->host ? o->host : "127.0.0.1");
    rc = pthread_create(&srv->thread, NULL, loop_thread, srv);
    if (rc) {
        snprintf(err, errlen, "pthread_create: %s", strerror(rc));
        server_free(srv);
        return -rc;
    }
    srv->thread_started = true;
    *out = srv;
    return 0;
}

void sim_server_stop(struct sim_server *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        ssize_t n;
        do
            n = write(s->wake_fd[1], "x", 1);
        while (n < 0 && errno == EINTR);
        pthread_join(s->thread, NULL);
    }
    server_free(s);
}

/* ---- foreground (sim_main) ----------------------------------------------------------- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct sim_server *srv = arg;
    (void)what;
    log_info("received signal %d, shutting down", (int)sig);
    event_base_loopbreak(srv->base);
}

int sim_server_serve(const struct sim_options *o, char *err, size_t errlen)
{
    struct sim_server *srv = NULL;
    int rc = server_new(&srv, o, err, errlen);
    if (rc)
        return rc;
    srv->sig_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
    srv->sig_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    if (!srv->sig_int || !srv->sig_term || evsignal_add(srv->sig_int, NULL) ||
        evsignal_add(srv->sig_term, NULL)) {
        snprintf(err, errlen, "cannot install signal handlers");
        server_free(srv);
        return -ENOMEM;
    }
    if (!o->quiet)
        log_startup(srv, o->host ? o->host : "127.0.0.1");
    event_base_dispatch(srv->base);
    server_free(srv);
    return 0;
}
