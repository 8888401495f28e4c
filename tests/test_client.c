/*
 * test_client.c - the streaming client against the fake server (tests/fixtures): every
 * response mode gives the right status class, HTTP status, error text, token counts and
 * events; request bodies and headers are what OpenAI-compatible servers expect; many
 * concurrent streams; keep-alive; timestamp accuracy; refused connections; cancellation;
 * and the same on worker threads.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "fake_server.h"
#include "runner/client.h"
#include "runner/record.h"
#include "runner/sse.h"
#include "core/clock.h"
#include "core/stats.h"

#define PROMPT "Tell me a story about a fox."
#define DEADLINE_S 15

static struct fake_server *srv;
static char base_url[64];
/* Worker threads every client of the current test gets (0: the caller's loop only). */
static int g_threads;

struct harness {
    struct event_base *base;
    struct event *deadline;
    struct client *c;
    int pending;
    bool timed_out;
    bool turns; /* run the loop turn by turn, telling the client each turn's end */
};

struct slot {
    struct harness *h;
    struct req_record rec;
    int done_calls;
};

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct harness *h = arg;
    (void)fd;
    (void)what;
    h->timed_out = true;
    event_base_loopbreak(h->base);
}

static void harness_init(struct harness *h, const struct client_options *o)
{
    memset(h, 0, sizeof(*h));
    h->base = event_base_new();
    assert_non_null(h->base);
    h->deadline = evtimer_new(h->base, on_deadline, h);
    struct client_options opt = o ? *o : (struct client_options){0};
    opt.threads = g_threads;
    assert_int_equal(client_new(&h->c, h->base, &opt), 0);
}

static void harness_release(struct harness *h)
{
    client_free(h->c);
    event_free(h->deadline);
    event_base_free(h->base);
}

static void on_done(void *ctx, struct req_record *rec)
{
    struct slot *s = ctx;
    assert_ptr_equal(rec, &s->rec);
    s->done_calls++;
    if (--s->h->pending == 0)
        event_base_loopbreak(s->h->base);
}

/* Runs the loop until every started request is done (or the deadline passes). */
static void harness_run(struct harness *h)
{
    struct timeval tv = {DEADLINE_S, 0};
    evtimer_add(h->deadline, &tv);
    if (h->pending > 0 && !h->turns)
        event_base_dispatch(h->base);
    else if (h->pending > 0)
        do {
            event_base_loop(h->base, EVLOOP_ONCE);
            client_turn_end(h->c);
        } while (!event_base_got_break(h->base));
    evtimer_del(h->deadline);
    assert_false(h->timed_out);
    assert_int_equal(h->pending, 0);
    assert_int_equal(client_in_flight(h->c), 0);
}

static void slot_start(struct harness *h, struct slot *s, enum api_kind api, const char *model,
                       int max_tokens, bool ignore_eos)
{
    s->h = h;
    s->done_calls = 0;
    req_record_init(&s->rec);
    struct client_request rq = {.base_url = base_url,
                                .api = api,
                                .model = model,
                                .prompt = PROMPT,
                                .max_tokens = max_tokens,
                                .ignore_eos = ignore_eos};
    assert_int_equal(client_start(h->c, &rq, &s->rec, on_done, s), 0);
    assert_true(s->rec.t_sent > 0);
    h->pending++;
}

/* Times are ordered and the event array agrees with t_first/t_last. */
static void check_times(const struct req_record *r)
{
    assert_true(r->t_end >= r->t_sent);
    if (r->n_events == 0) {
        assert_int_equal(r->t_first, 0);
        return;
    }
    assert_true(r->t_first >= r->t_sent);
    assert_true(r->t_last >= r->t_first);
    assert_true(r->t_end >= r->t_last);
    assert_int_equal(r->events[0], r->t_first);
    assert_int_equal(r->events[r->n_events - 1], r->t_last);
    for (size_t i = 1; i < r->n_events; i++)
        assert_true(r->events[i] >= r->events[i - 1]);
}

struct mode_case {
    const char *model;
    enum api_kind api;
    double timeout_s;
    enum req_status status;
    long http;
    const char *error; /* substring of rec.error; NULL = no error */
    int tokens;
    bool from_usage;
    size_t n_events;
    bool prompt_known; /* usage.prompt_tokens arrives (== strlen(PROMPT)) */
};

static const struct mode_case modes[] = {
    {"normal n=6", API_COMPLETIONS, 0, REQ_OK, 200, NULL, 6, true, 6, true},
    {"normal n=6", API_CHAT, 0, REQ_OK, 200, NULL, 6, true, 6, true}, /* role chunk not text */
    {"normal n=5 usage=last", API_CHAT, 0, REQ_OK, 200, NULL, 5, true, 5, true},
    {"normal n=5 usage=last", API_COMPLETIONS, 0, REQ_OK, 200, NULL, 5, true, 5, true},
    {"normal n=5 usage=none", API_COMPLETIONS, 0, REQ_OK, 200, NULL, 5, false, 5, false},
    {"normal n=7 usage=none", API_CHAT, 0, REQ_OK, 200, NULL, 7, false, 7, false},
    {"normal n=4 done=0", API_CHAT, 0, REQ_OK, 200, NULL, 4, true, 4, true},
    {"normal n=4 done=0 finish=0 usage=none", API_COMPLETIONS, 0, REQ_STREAM_CUT, 200,
     "without [DONE]", 4, false, 4, false},
    {"normal n=0", API_CHAT, 0, REQ_OK, 200, NULL, 0, true, 0, true},
    {"http500", API_COMPLETIONS, 0, REQ_HTTP_5XX, 500, FAKE_ERR500_MSG, 0, false, 0, false},
    {"http429", API_CHAT, 0, REQ_HTTP_4XX, 429, FAKE_ERR429_MSG, 0, false, 0, false},
    {"cut k=3 gap=3", API_COMPLETIONS, 0, REQ_STREAM_CUT, 200, "stream cut", 3, false, 3, false},
    {"cut k=2 gap=3", API_CHAT, 0, REQ_STREAM_CUT, 200, "stream cut", 2, false, 2, false},
    {"badjson", API_COMPLETIONS, 0, REQ_BAD_RESPONSE, 200, "invalid JSON", 2, false, 2, false},
    {"errevent", API_CHAT, 0, REQ_BAD_RESPONSE, 200, FAKE_ERREVENT_MSG, 1, false, 1, false},
    {"bigline", API_COMPLETIONS, 0, REQ_BAD_RESPONSE, 200, "SSE line", 0, false, 0, false},
    {"hang", API_COMPLETIONS, 0.3, REQ_TIMEOUT, 0, "timed out", 0, false, 0, false},
    {"notsse", API_COMPLETIONS, 0, REQ_BAD_RESPONSE, 200, "not an event stream", 0, false, 0,
     false},
};

static void test_modes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        const struct mode_case *m = &modes[i];
        struct client_options o = {.timeout_s = m->timeout_s ? m->timeout_s : 10};
        struct harness h;
        harness_init(&h, &o);
        struct slot s;
        slot_start(&h, &s, m->api, m->model, 16, false);
        assert_int_equal(s.done_calls, 0); /* never from inside client_start */
        harness_run(&h);
        const struct req_record *r = &s.rec;
        if (r->status != m->status || r->n_events != m->n_events)
            fprintf(stderr, "case %zu (%s, %s): status %s, error %s, events %zu\n", i, m->model,
                    m->api == API_CHAT ? "chat" : "completions", req_status_name(r->status),
                    r->error ? r->error : "-", r->n_events);
        assert_int_equal(s.done_calls, 1);
        assert_int_equal(r->status, m->status);
        assert_int_equal(r->http_status, m->http);
        if (m->error) {
            assert_non_null(r->error);
            assert_non_null(strstr(r->error, m->error));
        } else {
            assert_null(r->error);
        }
        assert_int_equal(r->n_events, m->n_events);
        assert_int_equal(r->output_tokens, m->tokens);
        assert_int_equal(r->tokens_from_usage, m->from_usage);
        assert_int_equal(r->prompt_tokens, m->prompt_known ? (int)strlen(PROMPT) : -1);
        assert_int_equal(r->target_output_tokens, 16);
        check_times(r);
        req_record_release(&s.rec);
        harness_release(&h);
    }
}

static void test_request_body(void **state)
{
    (void)state;
    struct client_options o = {.api_key = "sk-test-123", .timeout_s = 10};
    struct harness h;
    char body[4096], auth[256], path[128];
    for (int api = 0; api < 2; api++) {
        harness_init(&h, &o);
        struct slot s;
        slot_start(&h, &s, api ? API_CHAT : API_COMPLETIONS, "normal n=2", 33, true);
        harness_run(&h);
        assert_int_equal(s.rec.status, REQ_OK);
        fake_server_last(srv, body, sizeof(body), auth, sizeof(auth), path, sizeof(path));
        assert_string_equal(auth, "Bearer sk-test-123");
        assert_string_equal(path, api ? "/v1/chat/completions" : "/v1/completions");
        json_t *j = json_loads(body, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "model")), "normal n=2");
        assert_true(json_is_true(json_object_get(j, "stream")));
        assert_true(
            json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")));
        assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 33);
        assert_true(json_is_true(json_object_get(j, "ignore_eos")));
        assert_int_equal(json_integer_value(json_object_get(j, "min_tokens")), 33);
        if (api) {
            json_t *m0 = json_array_get(json_object_get(j, "messages"), 0);
            assert_string_equal(json_string_value(json_object_get(m0, "role")), "user");
            assert_string_equal(json_string_value(json_object_get(m0, "content")), PROMPT);
            assert_int_equal(json_integer_value(json_object_get(j, "max_completion_tokens")), 33);
            assert_null(json_object_get(j, "prompt"));
        } else {
            assert_string_equal(json_string_value(json_object_get(j, "prompt")), PROMPT);
            assert_null(json_object_get(j, "messages"));
        }
        json_decref(j);
        req_record_release(&s.rec);
        harness_release(&h);
    }
    /* without a key: no Authorization header, no ignore_eos extras */
    struct client_options o2 = {.timeout_s = 10};
    harness_init(&h, &o2);
    struct slot s;
    slot_start(&h, &s, API_COMPLETIONS, "normal n=1", 8, false);
    harness_run(&h);
    fake_server_last(srv, body, sizeof(body), auth, sizeof(auth), path, sizeof(path));
    assert_string_equal(auth, "");
    json_t *j = json_loads(body, 0, NULL);
    assert_null(json_object_get(j, "ignore_eos"));
    assert_null(json_object_get(j, "min_tokens"));
    json_decref(j);
    req_record_release(&s.rec);
    harness_release(&h);
}

/* Sequential requests, each started from the previous one's done: one connection. */
struct chain {
    struct harness *h;
    struct slot slots[6];
    int next;
};

static void on_chain_done(void *ctx, struct req_record *rec)
{
    struct chain *ch = ctx;
    (void)rec;
    ch->h->pending--;
    if (ch->next < 6) {
        struct slot *s = &ch->slots[ch->next++];
        s->h = ch->h;
        req_record_init(&s->rec);
        struct client_request rq = {.base_url = base_url,
                                    .api = API_CHAT,
                                    .model = "normal n=3",
                                    .prompt = PROMPT,
                                    .max_tokens = 3};
        assert_int_equal(client_start(ch->h->c, &rq, &s->rec, on_chain_done, ch), 0);
        ch->h->pending++;
    }
    if (ch->h->pending == 0)
        event_base_loopbreak(ch->h->base);
}

static void test_keepalive(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, &(struct client_options){.timeout_s = 10});
    struct chain ch = {.h = &h};
    size_t conns0 = fake_server_connections(srv);
    size_t reqs0 = fake_server_requests(srv);
    ch.next = 1;
    ch.slots[0].h = &h;
    req_record_init(&ch.slots[0].rec);
    struct client_request rq = {.base_url = base_url,
                                .api = API_CHAT,
                                .model = "normal n=3",
                                .prompt = PROMPT,
                                .max_tokens = 3};
    assert_int_equal(client_start(h.c, &rq, &ch.slots[0].rec, on_chain_done, &ch), 0);
    h.pending = 1;
    harness_run(&h);
    assert_int_equal(ch.next, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(ch.slots[i].rec.status, REQ_OK);
        assert_int_equal(ch.slots[i].rec.output_tokens, 3);
        req_record_release(&ch.slots[i].rec);
    }
    assert_int_equal(fake_server_requests(srv) - reqs0, 6);
    assert_int_equal(fake_server_connections(srv) - conns0, 1);
    harness_release(&h);
}

#define N_CONC 200

static void test_concurrent(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, &(struct client_options){.timeout_s = 10});
    struct slot *s = calloc(N_CONC, sizeof(*s));
    for (int i = 0; i < N_CONC; i++)
        slot_start(&h, &s[i], i % 2 ? API_CHAT : API_COMPLETIONS, "normal n=10 gap=3", 10, true);
    assert_int_equal(client_in_flight(h.c), N_CONC);
    harness_run(&h);
    for (int i = 0; i < N_CONC; i++) {
        assert_int_equal(s[i].done_calls, 1);
        assert_int_equal(s[i].rec.status, REQ_OK);
        assert_int_equal(s[i].rec.output_tokens, 10);
        assert_int_equal(s[i].rec.n_events, 10);
        assert_true(s[i].rec.tokens_from_usage);
        check_times(&s[i].rec);
        req_record_release(&s[i].rec);
    }
    free(s);
    harness_release(&h);
}

static void test_max_host_connections(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, &(struct client_options){.timeout_s = 10, .max_host_connections = 3});
    size_t conns0 = fake_server_connections(srv);
    struct slot s[12];
    for (int i = 0; i < 12; i++)
        slot_start(&h, &s[i], API_COMPLETIONS, "normal n=2 gap=2", 2, false);
    harness_run(&h);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(s[i].rec.status, REQ_OK);
        req_record_release(&s[i].rec);
    }
    size_t conns = fake_server_connections(srv) - conns0;
    assert_true(conns >= 1 && conns <= 3);
    harness_release(&h);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Server events 5 ms apart: the measured inter-token gaps have a median within 1 ms. With
 * turns (state non-NULL) each read is stamped from its loop turn's wake-up, and a turn time
 * kept past its turn would show as gaps of 0. */
static void test_itl_accuracy(void **state)
{
    struct harness h;
    harness_init(&h, &(struct client_options){.timeout_s = 10});
    h.turns = state && *state;
    struct slot s[4];
    for (int i = 0; i < 4; i++)
        slot_start(&h, &s[i], i % 2 ? API_CHAT : API_COMPLETIONS, "normal n=40 gap=5", 40, false);
    harness_run(&h);
    int64_t gaps[4 * 39];
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s[i].rec.status, REQ_OK);
        assert_int_equal(s[i].rec.n_events, 40);
        for (size_t k = 1; k < s[i].rec.n_events; k++)
            gaps[n++] = (int64_t)(s[i].rec.events[k] - s[i].rec.events[k - 1]);
        req_record_release(&s[i].rec);
    }
    qsort(gaps, n, sizeof(gaps[0]), cmp_i64);
    double median_ms = (double)gaps[n / 2] / 1e6;
    fprintf(stderr, "itl: median %.3f ms (server gap 5 ms), min %.3f, max %.3f over %zu gaps\n",
            median_ms, (double)gaps[0] / 1e6, (double)gaps[n - 1] / 1e6, n);
    assert_true(median_ms > 4.0 && median_ms < 6.0);
    harness_release(&h);
}

static void test_connect_refused(void **state)
{
    (void)state;
    /* A port that was free a moment ago: bind, read it, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));

    struct harness h;
    harness_init(&h, &(struct client_options){.timeout_s = 5});
    struct slot s = {.h = &h};
    req_record_init(&s.rec);
    struct client_request rq = {
        .base_url = url, .api = API_COMPLETIONS, .model = "m", .prompt = PROMPT, .max_tokens = 4};
    assert_int_equal(client_start(h.c, &rq, &s.rec, on_done, &s), 0);
    h.pending = 1;
    harness_run(&h);
    assert_int_equal(s.done_calls, 1);
    assert_int_equal(s.rec.status, REQ_CONNECT);
    assert_int_equal(s.rec.http_status, 0);
    assert_non_null(s.rec.error);
    assert_int_equal(s.rec.n_events, 0);
    req_record_release(&s.rec);

    /* TLS against a plain-HTTP port: the handshake fails, classified as connect. The
     * library must have TLS at all (HTTPS endpoints use libcurl's default CA store). */
    assert_true(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_SSL);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", fake_server_port(srv));
    req_record_init(&s.rec);
    assert_int_equal(client_start(h.c, &rq, &s.rec, on_done, &s), 0);
    h.pending = 1;
    harness_run(&h);
    assert_int_equal(s.done_calls, 2);
    assert_int_equal(s.rec.status, REQ_CONNECT);
    assert_non_null(s.rec.error);
    req_record_release(&s.rec);

    /* bad arguments: -EINVAL, done not called, the record says why */
    req_record_init(&s.rec);
    rq.model = NULL;
    assert_int_equal(client_start(h.c, &rq, &s.rec, on_done, &s), -EINVAL);
    assert_int_equal(s.done_calls, 2);
    assert_non_null(s.rec.error);
    req_record_release(&s.rec);
    harness_release(&h);
}

static void on_cancel_timer(evutil_socket_t fd, short what, void *arg)
{
    struct harness *h = arg;
    (void)fd;
    (void)what;
    client_cancel_all(h->c);
}

static void test_cancel(void **state)
{
    (void)state;
    struct harness h;
    harness_init(&h, &(struct client_options){.timeout_s = 10});
    struct slot s[10];
    for (int i = 0; i < 10; i++)
        slot_start(&h, &s[i], i % 2 ? API_CHAT : API_COMPLETIONS, "normal n=200 gap=5", 200, true);
    struct event *t = evtimer_new(h.base, on_cancel_timer, &h);
    struct timeval tv = {0, 60 * 1000};
    evtimer_add(t, &tv);
    harness_run(&h);
    event_free(t);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(s[i].done_calls, 1);
        assert_int_equal(s[i].rec.status, REQ_CANCELLED);
        assert_true(s[i].rec.n_events < 200);
        check_times(&s[i].rec);
        req_record_release(&s[i].rec);
    }
    /* client_free with transfers in flight cancels them and still calls done once */
    struct slot s2[3];
    for (int i = 0; i < 3; i++)
        slot_start(&h, &s2[i], API_COMPLETIONS, "normal n=100 gap=5", 100, false);
    client_free(h.c);
    h.c = NULL;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s2[i].done_calls, 1);
        assert_int_equal(s2[i].rec.status, REQ_CANCELLED);
        req_record_release(&s2[i].rec);
    }
    harness_release(&h);
}

static void test_status_names(void **state)
{
    (void)state;
    static const char *const want[] = {"ok",           "http_4xx",  "http_5xx",
                                       "timeout",      "connect",   "stream_cut",
                                       "bad_response", "cancelled", "client_limit"};
    for (int i = 0; i < REQ__COUNT; i++)
        assert_string_equal(req_status_name((enum req_status)i), want[i]);
    struct req_record r;
    req_record_init(&r);
    assert_int_equal(r.prompt_tokens, -1);
    for (int i = 0; i < 1000; i++)
        req_record_add_event(&r, (mono_ns)i);
    assert_int_equal(r.n_events, 1000);
    assert_int_equal(r.events[999], 999);
    req_record_fail(&r, REQ_TIMEOUT, "after %d s", 3);
    req_record_fail(&r, REQ_CONNECT, "%s", "refused");
    assert_int_equal(r.status, REQ_CONNECT);
    assert_string_equal(r.error, "refused");
    req_record_release(&r);
    assert_null(r.events);
}

/* ===== client_chunk_parse against a jansson reference ===== */

static int ref_parse(const char *data, size_t len, struct client_chunk *out)
{
    memset(out, 0, sizeof(*out));
    out->prompt_tokens = out->completion_tokens = -1;
    out->reasoning_tokens = out->cached_tokens = -1;
    json_t *root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return -EINVAL;
    }
    json_t *c0 = json_array_get(json_object_get(root, "choices"), 0);
    if (json_is_object(c0)) {
        json_t *d = json_object_get(c0, "delta");
        static const char *const keys[] = {"content", "reasoning_content", "reasoning"};
        json_t *tx = json_object_get(c0, "text");
        out->text = json_is_string(tx) && json_string_length(tx) > 0;
        out->answer = out->text;
        for (int k = 0; k < 3 && json_is_object(d); k++) {
            json_t *v = json_object_get(d, keys[k]);
            if (json_is_string(v) && json_string_length(v) > 0) {
                out->text = true;
                out->answer |= k == 0; /* content is the answer, the others reasoning */
            }
        }
        json_t *fr = json_object_get(c0, "finish_reason");
        out->finish = fr && !json_is_null(fr);
    }
    json_t *u = json_object_get(root, "usage");
    if (json_is_object(u)) {
        json_t *pt = json_object_get(u, "prompt_tokens"),
               *ct = json_object_get(u, "completion_tokens");
        if (json_is_integer(pt) && json_integer_value(pt) >= 0 &&
            json_integer_value(pt) <= INT32_MAX)
            out->prompt_tokens = (int)json_integer_value(pt);
        if (json_is_integer(ct) && json_integer_value(ct) >= 0 &&
            json_integer_value(ct) <= INT32_MAX)
            out->completion_tokens = (int)json_integer_value(ct);
        json_t *rt = json_object_get(json_object_get(u, "completion_tokens_details"),
                                     "reasoning_tokens"),
               *cc = json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
        if (json_is_integer(rt) && json_integer_value(rt) >= 0 &&
            json_integer_value(rt) <= INT32_MAX)
            out->reasoning_tokens = (int)json_integer_value(rt);
        if (json_is_integer(cc) && json_integer_value(cc) >= 0 &&
            json_integer_value(cc) <= INT32_MAX)
            out->cached_tokens = (int)json_integer_value(cc);
    }
    json_t *e = json_object_get(root, "error");
    out->error = e && !json_is_null(e);
    json_decref(root);
    return 0;
}

static void check_same(const char *data, size_t len)
{
    struct client_chunk a, b;
    int ra = client_chunk_parse(data, len, &a, NULL);
    int rb = ref_parse(data, len, &b);
    if (ra != rb || (!ra && memcmp(&a, &b, sizeof(a)) != 0))
        fprintf(stderr, "chunk mismatch (scanner %d, jansson %d): %.*s\n", ra, rb, (int)len, data);
    assert_int_equal(ra, rb);
    if (!ra) {
        assert_int_equal(a.text, b.text);
        assert_int_equal(a.finish, b.finish);
        assert_int_equal(a.error, b.error);
        assert_int_equal(a.prompt_tokens, b.prompt_tokens);
        assert_int_equal(a.completion_tokens, b.completion_tokens);
        assert_int_equal(a.answer, b.answer);
        assert_int_equal(a.reasoning_tokens, b.reasoning_tokens);
        assert_int_equal(a.cached_tokens, b.cached_tokens);
        assert_int_equal(a.content != NULL, a.answer); /* answer text keeps its bytes */
    }
}

struct fixture_events {
    char *data[64];
    size_t len[64];
    size_t n;
};

static int collect_event(void *ctx, const char *data, size_t len)
{
    struct fixture_events *fe = ctx;
    if (fe->n < 64 && strcmp(data, "[DONE]") != 0) {
        fe->data[fe->n] = strndup(data, len);
        fe->len[fe->n++] = len;
    }
    return 0;
}

static void test_chunk_parse(void **state)
{
    (void)state;
    static const char *const handmade[] = {
        "{}",
        " {\"choices\":[]} ",
        "{\"choices\":[{\"text\":\"\"}]}",
        "{\"choices\":[{\"text\":\"\\n\"}]}",
        "{\"choices\":[{\"text\":\"\\u00e9\",\"finish_reason\":\"stop\"}]}",
        "{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":null,\"reasoning_content\":\"think\"}}]}",
        "{\"choices\":[{\"delta\":{\"reasoning\":\"r\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":null}],\"usage\":null}",
        "{\"choices\":[{\"index\":1},{\"text\":\"second choice does not count\"}]}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":8}}",
        "{\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":-3}}",
        "{\"usage\":{\"completion_tokens\":3e2}}",
        "{\"usage\":{\"completion_tokens\":4294967296}}",
        "{\"choices\":[{\"delta\":{\"reasoning_content\":\"a\",\"content\":\"b\"}}]}",
        "{\"usage\":{\"completion_tokens\":9,\"completion_tokens_details\":"
        "{\"reasoning_tokens\":7},\"prompt_tokens_details\":{\"cached_tokens\":16}}}",
        "{\"usage\":{\"completion_tokens_details\":null,\"prompt_tokens_details\":"
        "{\"cached_tokens\":1.5,\"audio_tokens\":2}}}",
        "{\"usage\":{\"completion_tokens_details\":{\"reasoning_tokens\":-1}}}",
        "{\"error\":null,\"choices\":[{\"text\":\"a\"}]}",
        "{\"error\":{\"message\":\"boom\",\"code\":500}}",
        "{\"error\":\"boom\"}",
        "{\"nested\":{\"a\":[1,2,{\"b\":[true,false,null]}],\"c\":-0.5e-3},\"choices\":[{\"text\":"
        "\"t\"}]}",
        "{\"choices\":{\"text\":\"not an array\"}}",
        "[]",
        "\"s\"",
        "{\"a\":1,}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":tru}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12G4\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":1} x",
        "{\"a\" 1}",
        "{\"a\":[1 2]}",
        "{'a':1}",
        "",
    };
    for (size_t i = 0; i < sizeof(handmade) / sizeof(handmade[0]); i++)
        check_same(handmade[i], strlen(handmade[i]));

    /* broken UTF-8 in a token is still a token (jansson would reject the chunk) */
    static const char bad_utf8[] = "{\"choices\":[{\"text\":\"\xc3(\"}]}";
    struct client_chunk ck;
    assert_int_equal(client_chunk_parse(bad_utf8, sizeof(bad_utf8) - 1, &ck, NULL), 0);
    assert_true(ck.text);

    /* nesting is bounded */
    char deep[300];
    size_t d = 0;
    deep[d++] = '{';
    deep[d++] = '"';
    deep[d++] = 'a';
    deep[d++] = '"';
    deep[d++] = ':';
    for (int i = 0; i < 100; i++)
        deep[d++] = '[';
    for (int i = 0; i < 100; i++)
        deep[d++] = ']';
    deep[d++] = '}';
    size_t bad_at = 0;
    assert_int_equal(client_chunk_parse(deep, d, &ck, &bad_at), -EINVAL);
    assert_true(bad_at > 60);

    /* recorded streams: each event, every truncation, and ASCII mutations at every byte */
    static const char *const files[] = {"vllm_completion.txt", "vllm_chat.txt", "llamacpp_chat.txt",
                                        "tgi_chat.txt"};
    /* no "e": 1e64334009 is valid JSON that jansson rejects as a real overflow */
    static const char mut[] = "{}[]\",:0-. tnu\\";
    size_t n_checked = 0, n_text = 0;
    for (size_t f = 0; f < 4; f++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/tests/data/sse/%s", TB_SOURCE_DIR, files[f]);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        char buf[8192];
        size_t n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        struct fixture_events fe = {.n = 0};
        struct sse_parser *p = NULL;
        assert_int_equal(sse_parser_new(&p, SSE_MAX_LINE, collect_event, &fe), 0);
        assert_int_equal(sse_parser_feed(p, buf, n), 0);
        assert_int_equal(sse_parser_finish(p), 0);
        sse_parser_free(p);
        for (size_t e = 0; e < fe.n; e++) {
            char *ev = fe.data[e];
            size_t len = fe.len[e];
            struct client_chunk a;
            assert_int_equal(client_chunk_parse(ev, len, &a, NULL), 0);
            n_text += a.text;
            for (size_t cut = 0; cut <= len; cut++)
                check_same(ev, cut);
            for (size_t pos = 0; pos < len; pos++) {
                char keep = ev[pos];
                if ((unsigned char)keep & 0x80)
                    continue; /* breaking UTF-8: jansson rejects it, the scanner does not */
                for (size_t m = 0; m < sizeof(mut) - 1; m++) {
                    ev[pos] = mut[m];
                    check_same(ev, len);
                    n_checked++;
                }
                ev[pos] = keep;
            }
            free(ev);
        }
    }
    assert_int_equal(n_text, 8 + 5 + 4 + 4); /* text events in the four recordings */
    assert_true(n_checked > 10000);

    /* cost per event, scanner vs jansson (printed, not asserted: the machine is shared) */
    static const char ev[] =
        "{\"id\":\"chatcmpl-3b6e0d1f2a4c4b8e9d7f6a5b4c3d2e1f\",\"object\":\"chat.completion."
        "chunk\","
        "\"created\":1764334010,\"model\":\"Qwen/Qwen3-8B\",\"choices\":[{\"index\":0,\"delta\":"
        "{\"content\":\" world\"},\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}],"
        "\"usage\":null}";
    enum { REPS = 20000 };
    mono_ns t0 = clock_now();
    int sum = 0;
    for (int i = 0; i < REPS; i++) {
        assert_int_equal(client_chunk_parse(ev, sizeof(ev) - 1, &ck, NULL), 0);
        sum += ck.text;
    }
    mono_ns t1 = clock_now();
    for (int i = 0; i < REPS; i++) {
        json_t *j = json_loadb(ev, sizeof(ev) - 1, 0, NULL);
        sum += j != NULL;
        json_decref(j);
    }
    mono_ns t2 = clock_now();
    assert_int_equal(sum, 2 * REPS);
    fprintf(stderr, "chunk parse: scanner %.2f us/event, jansson %.2f us/event\n",
            (double)(t1 - t0) / REPS / 1e3, (double)(t2 - t1) / REPS / 1e3);
}

static int setup(void **state)
{
    (void)state;
    if (fake_server_start(&srv))
        return -1;
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d/", fake_server_port(srv));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_server_stop(srv);
    return 0;
}

/* The same cases with the transfers on two worker threads: every status class, keep-alive,
 * many streams, timing and cancellation hold, and the done callbacks still run on the
 * caller's loop. */
#define THREADED(name)                                                                             \
    static void name##_threaded(void **state)                                                      \
    {                                                                                              \
        g_threads = 2;                                                                             \
        name(state);                                                                               \
        g_threads = 0;                                                                             \
    }
THREADED(test_modes)
THREADED(test_keepalive)
THREADED(test_itl_accuracy)

/* The run's loop: turn by turn, with client_turn_end (as run.c drives it). */
static void test_itl_accuracy_turns(void **state)
{
    (void)state;
    void *turns = &g_threads;
    test_itl_accuracy(&turns);
}
THREADED(test_cancel)

/* Two worker threads: the streams spread over both, every event is counted, each worker's
 * heartbeat leaves loop-lag samples, and done runs on the caller's thread. */
static pthread_t caller;

static void on_done_here(void *ctx, struct req_record *rec)
{
    assert_true(pthread_equal(pthread_self(), caller));
    on_done(ctx, rec);
}

static void test_threads(void **state)
{
    (void)state;
    g_threads = 2;
    caller = pthread_self();
    struct harness h;
    harness_init(&h, &(struct client_options){.timeout_s = 10});
    size_t events0 = client_events(h.c);
    client_take_loop_lag(h.c, NULL);
    struct slot *s = calloc(N_CONC, sizeof(*s));
    for (int i = 0; i < N_CONC; i++) {
        s[i].h = &h;
        req_record_init(&s[i].rec);
        struct client_request rq = {.base_url = base_url,
                                    .api = i % 2 ? API_CHAT : API_COMPLETIONS,
                                    .model = "normal n=10 gap=3",
                                    .prompt = PROMPT,
                                    .max_tokens = 10,
                                    .ignore_eos = true};
        assert_int_equal(client_start(h.c, &rq, &s[i].rec, on_done_here, &s[i]), 0);
        h.pending++;
    }
    assert_int_equal(client_in_flight(h.c), N_CONC);
    harness_run(&h);
    for (int i = 0; i < N_CONC; i++) {
        assert_int_equal(s[i].done_calls, 1);
        assert_int_equal(s[i].rec.status, REQ_OK);
        assert_int_equal(s[i].rec.n_events, 10);
        check_times(&s[i].rec);
        req_record_release(&s[i].rec);
    }
    assert_int_equal(client_events(h.c) - events0, N_CONC * 10);
    struct dvec lag;
    dvec_init(&lag);
    client_take_loop_lag(h.c, &lag);
    assert_true(lag.n > 0);
    size_t first = lag.n;
    client_take_loop_lag(h.c, &lag); /* taken once: nothing is left to take again */
    assert_true(lag.n - first < 20);
    dvec_release(&lag);
    free(s);
    harness_release(&h);
    g_threads = 0;
}

/* FDSize in /proc/self/status: the slots of this process's descriptor table. */
static long fd_table_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long n = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "FDSize:", 7) == 0)
            n = strtol(line + 7, NULL, 10);
    if (f)
        fclose(f);
    return n;
}

/* The table is grown up front to hold what the load will open (so socket() never waits for it
 * to grow mid-run), and no descriptor is left open by doing so. */
static void test_reserve_descriptors(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    long want = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 3000 ? 3000 : (long)rl.rlim_cur;
    if (fd_table_size() >= want)
        skip(); /* already that large: nothing this process can show */
    int probe = dup(0);
    client_reserve_descriptors((size_t)want);
    assert_true(fd_table_size() >= want);
    int next = dup(0); /* the lowest free descriptor is still the same one */
    assert_int_equal(next, probe + 1);
    close(next);
    close(probe);
    client_reserve_descriptors(0); /* nonsense sizes are ignored */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_request_body),        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_concurrent),          cmocka_unit_test(test_max_host_connections),
        cmocka_unit_test(test_itl_accuracy),        cmocka_unit_test(test_itl_accuracy_turns),
        cmocka_unit_test(test_connect_refused),     cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_chunk_parse),         cmocka_unit_test(test_modes_threaded),
        cmocka_unit_test(test_keepalive_threaded),  cmocka_unit_test(test_itl_accuracy_threaded),
        cmocka_unit_test(test_cancel_threaded),     cmocka_unit_test(test_threads),
        cmocka_unit_test(test_reserve_descriptors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
