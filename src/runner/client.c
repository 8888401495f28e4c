/*
 * client.c - many concurrent OpenAI-compatible SSE streams on one thread: libcurl's
 * multi_socket interface driven by a libevent loop.
 *
 * Wiring: libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION, one libevent
 * event per socket, kept with curl_multi_assign) and when to wake it (TIMERFUNCTION, one
 * libevent timer). The timer callback only arms the timer, with 0 ms meaning "next loop
 * turn", so libcurl is never re-entered from its own callback. Every socket_action call is
 * followed by draining curl_multi_info_read; finished transfers are classified there and
 * their done callback runs there, outside every libcurl callback, so a done callback may
 * start the next request (closed-loop users).
 *
 * Timing: every SSE event in the bytes of one write callback gets one time, when they reached
 * us as well as a client can know it. Where the loop's owner marks its turns (a worker's own
 * loop, or the caller's through client_turn_end), that is when the loop woke up and first
 * found a socket ready in this turn: epoll reported every socket of the turn readable then,
 * so their bytes had arrived by that time, and stamping each read when the loop gets to it
 * would add the time taken by the sockets before it (milliseconds when the loop is loaded).
 * Otherwise it is clock_now() at the write callback. t_first/t_last/events count only events that
 * carry text (choices[0].text, or delta.content / delta.reasoning_content / delta.reasoning);
 * role-only and empty chunks do not count (docs/METRICS.md "Timestamps of one request").
 *
 * Status: [DONE] ends a stream well. Some servers omit [DONE]; a clean close after at least
 * one valid chunk that carried a finish_reason (or a usage object) is also ok. Any other end
 * of a 200 stream is stream_cut. Bytes that hold no SSE event at all under a Content-Type
 * other than text/event-stream are bad_response (e.g. a server that ignored stream:true).
 * A connection dropped before any HTTP status arrived (send/recv error, empty reply) is
 * classified as connect: the server was not reachable in a usable way.
 *
 * Threads (client_options.threads > 1): each worker thread runs the wiring above on a base
 * and multi handle of its own. client_start (on the caller's loop) builds the request, stamps
 * t_sent and posts the transfer to the worker with the fewest in its inbox (a mutex and an
 * eventfd); the worker adds it to its multi handle, and when it ends settles the record and
 * posts it back to the caller's loop the same way, where the done callback runs. So the
 * schedule, the done callbacks and the results stay on one thread, a record is written by
 * one worker between client_start and done, and no libcurl or libevent object is shared.
 * Cancelling asks every worker to cancel its own and waits for each to acknowledge. Each
 * worker probes its own loop lag with a 1 ms heartbeat (client_take_loop_lag).
 *
 * Files: this one (the wiring above, the stream's events, building and starting requests,
 * cancelling); client_chunk.c (the chunk scanner), client_finish.c (classifying an end,
 * token counts, handing records back), client_workers.c (the threads); client_internal.h.
 *
 * Connections: HTTP/1.1 (one stream per connection, as vLLM's own benchmark client does;
 * keeps per-stream timing independent of HTTP/2 flow control); libcurl's connection cache
 * in the multi handle reuses idle keep-alive connections. "Expect: 100-continue" is turned
 * off: with long prompts libcurl would otherwise wait a round trip (or 1 s) before the body.
 */
#include "runner/client.h"
#include "runner/client_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/jsonx.h"
#include "core/stats.h"
#include "core/text.h"
#include "runner/ptimer.h"
#include "runner/sse.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
    /* Never cleaned up: other threads may hold clients; process exit frees it. */
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Stamps one text event: first token, first answer token, and the kept answer text. */
static void on_text_event(struct transfer *t, const struct client_chunk *ck)
{
    struct req_record *rec = t->rec;
    if (!rec->t_first)
        rec->t_first = t->now;
    rec->t_last = t->now;
    req_record_add_event(rec, t->now);
    atomic_fetch_add_explicit(&t->w->events, 1, memory_order_relaxed);
    if (!ck->answer) {
        rec->n_reasoning_events++;
        return;
    }
    if (!rec->t_first_answer)
        rec->t_first_answer = t->now;
    /* At the ceiling the answer is cut: the session goes on with what fit. */
    if (t->answer && client_text_append(t->answer, ck->content, ck->content_len))
        t->answer = NULL;
}

/* The message of an {"error": ...} event (rare: jansson is fine here). */
static void error_event_message(const char *data, size_t len, char *out, size_t cap)
{
    char *fixed = utf8_valid(data, len) ? NULL : utf8_repair(data, len);
    json_t *root = fixed ? json_loads(fixed, 0, NULL) : json_loadb(data, len, 0, NULL);
    free(fixed);
    json_t *err = json_object_get(root, "error");
    const char *m = json_is_object(err) ? json_string_value(json_object_get(err, "message"))
                                        : json_string_value(err);
    if (!m)
        m = "(no message)";
    client_clean_copy(out, cap, m, strlen(m));
    json_decref(root);
}

static int on_sse_event(void *ctx, const char *data, size_t len)
{
    struct transfer *t = ctx;
    struct req_record *rec = t->rec;
    if (t->saw_done) {
        /* Nothing after [DONE] matters; a server that goes on is not waited for. */
        t->after_done = true;
        return 1;
    }
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        t->saw_done = true;
        rec->t_end = t->now;
        return 0;
    }
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    if (i == len)
        return 0; /* an empty data event carries nothing */
    struct client_chunk ck;
    size_t bad_at = 0;
    if (client_chunk_parse(data, len, &ck, &bad_at)) {
        char snippet[64];
        client_clean_copy(snippet, sizeof(snippet), data, len);
        req_record_fail(rec, REQ_BAD_RESPONSE, "invalid JSON in event at byte %zu: %s", bad_at,
                        snippet);
        t->failed = true;
        return 1;
    }
    if (ck.error) {
        char msg[CLIENT_ERRMSG_MAX];
        error_event_message(data, len, msg, sizeof(msg));
        req_record_fail(rec, REQ_BAD_RESPONSE, "error event: %s", msg);
        t->failed = true;
        return 1;
    }
    t->n_chunks++;
    if (rec->n_events + (ck.text ? 1 : 0) > t->max_events ||
        t->n_chunks > t->max_events * CLIENT_CHUNKS_PER_EVENT) {
        req_record_fail(rec, REQ_BAD_RESPONSE,
                        "the server sent more than it was asked for (%zu text events, %zu chunks "
                        "for max_tokens %d): stream stopped",
                        rec->n_events, t->n_chunks, rec->target_output_tokens);
        t->failed = true;
        return 1;
    }
    if (ck.text)
        on_text_event(t, &ck);
    if (ck.finish)
        t->saw_finish = true;
    if (ck.completion_tokens >= 0) { /* the last chunk that carries usage wins */
        t->have_usage = true;
        t->usage_completion = ck.completion_tokens;
        t->usage_prompt = ck.prompt_tokens;
        t->usage_reasoning = ck.reasoning_tokens;
        t->usage_cached = ck.cached_tokens;
    }
    /* The first id is kept: it ties this record to the server's logs and traces. */
    if (ck.id && !rec->response_id[0] && ck.id_len < sizeof(rec->response_id))
        client_clean_copy(rec->response_id, sizeof(rec->response_id), ck.id, ck.id_len);
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct transfer *t = userp;
    size_t n = size * nmemb;
    /* Before anything else: when these bytes arrived (the file's head says why the turn's
     * wake-up); never before the request was sent, should a turn have begun earlier. */
    mono_ns now = t->w->ready_t0;
    if (now == 0 || now < t->rec->t_sent)
        now = clock_now();
    if (t->http == 0) {
        long http = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &http);
        t->http = http;
    }
    if (t->http < 200 || t->http >= 300) {
        /* An error body: keep its head for the message, drop the rest. */
        size_t room = t->errbody.max - t->errbody.len;
        if (room && buf_append(&t->errbody, ptr, n < room ? n : room))
            return CURL_WRITEFUNC_ERROR;
        return n;
    }
    t->now = now;
    if (t->n_chunks == 0 && t->errbody.len < t->errbody.max) {
        /* Until an event arrives, keep the head: a 200 may carry an error document. */
        size_t room = t->errbody.max - t->errbody.len;
        if (buf_append(&t->errbody, ptr, n < room ? n : room))
            return CURL_WRITEFUNC_ERROR;
    }
    if (t->after_done)
        return CURL_WRITEFUNC_ERROR;
    int rc = sse_parser_feed(t->sse, ptr, n);
    if (rc == 0)
        return n;
    if (t->after_done)
        return CURL_WRITEFUNC_ERROR; /* stop reading: the request is complete */
    if (!t->failed) {
        if (rc == -E2BIG)
            req_record_fail(t->rec, REQ_BAD_RESPONSE, "SSE line longer than %d bytes",
                            CLIENT_SSE_MAX_LINE);
        else
            req_record_fail(t->rec, REQ_BAD_RESPONSE, "SSE parser: %s", strerror(-rc));
        t->failed = true;
    }
    return CURL_WRITEFUNC_ERROR;
}

/* ===== libevent <-> libcurl ===== */

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    int flags =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    if (w->turns) {
        if (!w->turn_t0)
            w->turn_t0 = clock_now();
        w->ready_t0 = w->turn_t0;
    }
    curl_multi_socket_action(w->multi, fd, flags, &running);
    w->ready_t0 = 0;
    client_drain_done(w);
}

static void on_timer(void *arg, mono_ns now)
{
    struct worker *w = arg;
    (void)now;
    int running = 0;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    client_drain_done(w);
}

static void sock_free(struct worker *w, struct sock *sk)
{
    if (sk->prev)
        sk->prev->next = sk->next;
    else
        w->socks = sk->next;
    if (sk->next)
        sk->next->prev = sk->prev;
    event_free(sk->ev);
    free(sk);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct worker *w = userp;
    struct sock *sk = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            curl_multi_assign(w->multi, s, NULL);
            sock_free(w, sk);
        }
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                 ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (!sk) {
        sk = xcalloc(1, sizeof(*sk));
        sk->fd = s;
        sk->ev = event_new(w->base, s, kind, on_socket_ready, w);
        if (!sk->ev) {
            free(sk);
            return -1;
        }
        sk->next = w->socks;
        if (w->socks)
            w->socks->prev = sk;
        w->socks = sk;
        curl_multi_assign(w->multi, s, sk);
    } else if (sk->kind == kind) {
        return 0; /* libcurl repeats itself; re-adding would cost two epoll_ctl calls */
    } else {
        event_del(sk->ev);
        if (event_assign(sk->ev, w->base, s, kind, on_socket_ready, w))
            return -1;
    }
    sk->kind = kind;
    return event_add(sk->ev, NULL) ? -1 : 0;
}

/* Only arms the timer; libcurl must not be called from here (its multi_socket contract). */
static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
    struct worker *w = userp;
    (void)multi;
    if (ms < 0) {
        ptimer_cancel(w->timer);
        return 0;
    }
    return ptimer_after(w->timer, (mono_ns)ms * NS_PER_MS) ? -1 : 0; /* 0: the next loop turn */
}

/* ===== One loop (unthreaded, and each worker's) ===== */

/* The multi handle and its libevent glue, on base. 0 or -ENOMEM. */
int client_worker_setup(struct client *c, struct worker *w, struct event_base *base)
{
    w->c = c;
    w->base = base;
    atomic_init(&w->events, 0);
    w->multi = curl_multi_init();
    w->timers = w->multi ? ptimer_set_new(base) : NULL;
    if (!w->timers)
        return -ENOMEM;
    w->timer = ptimer_new(w->timers, on_timer, w);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    if (c->max_host_connections > 0)
        curl_multi_setopt(w->multi, CURLMOPT_MAX_HOST_CONNECTIONS, c->max_host_connections);
    return 0;
}

/* Closes what client_worker_setup opened; the worker's thread, if any, has ended. */
void client_worker_release(struct worker *w)
{
    /* Closes cached connections; their sockets leave through on_curl_socket. */
    if (w->multi)
        curl_multi_cleanup(w->multi);
    /* libcurl does not always report REMOVE for connections it closes in cleanup. */
    while (w->socks)
        sock_free(w, w->socks);
    ptimer_free(w->timer);
    ptimer_free(w->heartbeat);
    ptimer_set_free(w->timers);
    w->timer = w->heartbeat = NULL;
    w->timers = NULL;
}
/* ===== Public ===== */

void client_turn_end(struct client *c)
{
    if (c->threaded)
        return; /* each worker marks its own */
    c->workers[0].turns = true;
    c->workers[0].turn_t0 = 0;
}

int client_new(struct client **out, struct event_base *base, const struct client_options *o)
{
    if (!out || !base)
        return -EINVAL;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return -ENOMEM;
    int rc = -ENOMEM;
    struct client *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->done_fd = -1;
    c->timeout_s = o ? o->timeout_s : 0;
    c->max_host_connections = o ? o->max_host_connections : 0;
    c->threaded = o && o->threads > 1;
    c->n_workers = c->threaded ? (size_t)o->threads : 1;
    c->workers = xcalloc(c->n_workers, sizeof(*c->workers));
    for (size_t i = 0; i < c->n_workers; i++)
        c->workers[i].wake_fd = -1;
    if (c->threaded) {
        pthread_mutex_init(&c->done_lock, NULL);
        c->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (c->done_fd < 0) {
            rc = -errno;
            goto fail;
        }
        c->done_ev = event_new(base, c->done_fd, EV_READ | EV_PERSIST, client_on_done_ready, c);
        if (!c->done_ev || event_add(c->done_ev, NULL))
            goto fail;
        for (size_t i = 0; i < c->n_workers; i++) {
            rc = client_worker_start(c, &c->workers[i]);
            if (rc)
                goto fail;
        }
        rc = -ENOMEM;
    } else if (client_worker_setup(c, &c->workers[0], base)) {
        goto fail;
    }

    static const char *const fixed[] = {"Content-Type: application/json",
                                        "Accept: text/event-stream", "Expect:"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        struct curl_slist *h = curl_slist_append(c->headers, fixed[i]);
        if (!h)
            goto fail;
        c->headers = h;
    }
    if (o && o->api_key && o->api_key[0]) {
        char *auth = xasprintf("Authorization: Bearer %s", o->api_key);
        struct curl_slist *h = curl_slist_append(c->headers, auth);
        /* The key lives on only inside the header list. */
        explicit_bzero(auth, strlen(auth));
        free(auth);
        if (!h)
            goto fail;
        c->headers = h;
    }
    *out = c;
    return 0;
fail:
    client_free(c);
    return rc;
}

/* jansson refuses a string that is not valid UTF-8 (json_string gives NULL) and a set with
 * NULL adds nothing: a body built that way would go out without its prompt, and every such
 * request fail at the server ("'prompt' is required"). Each string is checked instead. */
static int put_string(json_t *o, const char *key, const char *s)
{
    json_t *v = json_string(s ? s : "");
    return v && json_object_set_new(o, key, v) == 0 ? 0 : -EILSEQ;
}

/* The chat messages: a whole conversation from a dataset, else a session's conversation so
 * far and the new user message. NULL when a text cannot be sent. */
static json_t *build_messages(const struct client_request *rq)
{
    if (rq->messages_json) {
        json_t *msgs = json_loads(rq->messages_json, 0, NULL);
        if (json_is_array(msgs))
            return msgs;
        json_decref(msgs);
        return NULL; /* not a conversation: never sent as if it were a question */
    }
    json_t *msgs = json_array();
    int rc = 0;
    for (size_t i = 0; i < rq->n_history && !rc; i++) {
        json_t *m = json_object();
        rc = put_string(m, "role", i % 2 ? "assistant" : "user");
        rc = rc ? rc : put_string(m, "content", rq->history[i]);
        json_array_append_new(msgs, m);
    }
    json_t *msg = json_object();
    rc = rc ? rc : put_string(msg, "role", "user");
    rc = rc ? rc : put_string(msg, "content", rq->prompt);
    json_array_append_new(msgs, msg);
    if (rc) {
        json_decref(msgs);
        return NULL;
    }
    return msgs;
}

char *client_body_build(const struct client_request *rq, int *why)
{
    json_t *root = json_object();
    json_object_set_new(root, "model", json_string_or_null(rq->model));
    int rc = 0;
    if (rq->api == API_CHAT) {
        json_t *msgs = build_messages(rq);
        rc = msgs ? json_object_set_new(root, "messages", msgs) : -EILSEQ;
        json_object_set_new(root, "max_completion_tokens", json_integer(rq->max_tokens));
    } else {
        rc = put_string(root, "prompt", rq->prompt);
    }
    json_object_set_new(root, "max_tokens", json_integer(rq->max_tokens));
    json_object_set_new(root, "stream", json_true());
    json_t *so = json_object();
    json_object_set_new(so, "include_usage", json_true());
    json_object_set_new(root, "stream_options", so);
    if (rq->ignore_eos) {
        json_object_set_new(root, "ignore_eos", json_true());
        json_object_set_new(root, "min_tokens", json_integer(rq->max_tokens));
    }
    char *s = rc ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    *why = rc ? -EILSEQ : -ENOMEM;
    return s;
}

static char *build_url(const struct client_request *rq)
{
    size_t n = strlen(rq->base_url);
    while (n && rq->base_url[n - 1] == '/')
        n--;
    /* Tolerate a base URL that already names /v1. */
    if (n >= 3 && memcmp(rq->base_url + n - 3, "/v1", 3) == 0)
        n -= 3;
    const char *path = rq->api == API_CHAT ? "/v1/chat/completions" : "/v1/completions";
    return xasprintf("%.*s%s", (int)n, rq->base_url, path);
}

/* Opens the transfer's socket as libcurl would, remembering why it failed: libcurl reports a
 * socket() failure only as "Couldn't connect", hiding that we ran out of descriptors. */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct transfer *t = arg;
    (void)purpose;
    curl_socket_t s = socket(a->family, a->socktype, a->protocol);
    if (s == CURL_SOCKET_BAD)
        t->socket_errno = errno;
    return s;
}

static int transfer_setup(struct client *c, struct transfer *t, const char *url)
{
    CURL *e = t->easy;
    CURLcode r = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (r == CURLE_OK)                                                                         \
            r = curl_easy_setopt(e, opt, val);                                                     \
    } while (0)
    SET(CURLOPT_URL, url);
    http_apply(t->easy);
    SET(CURLOPT_PRIVATE, t);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, t->body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(t->body));
    SET(CURLOPT_HTTPHEADER, c->headers);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, t);
    SET(CURLOPT_WRITEDATA, t);
    SET(CURLOPT_ERRORBUFFER, t->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* Asks for no compression, and turns libcurl's decoding on: a server that compresses
     * anyway with a broken body is then seen as such (bad_response), not as a cut stream. */
    SET(CURLOPT_ACCEPT_ENCODING, "identity");
    SET(CURLOPT_TIMEOUT_MS, (long)(c->timeout_s > 0 ? c->timeout_s * 1000.0 + 0.5 : 0));
#undef SET
    return r == CURLE_OK ? 0 : -EINVAL;
}

int client_start(struct client *c, const struct client_request *rq, struct req_record *rec,
                 client_done_fn done, void *ctx)
{
    if (!c || !rq || !rec || !done || !rq->base_url || !rq->model || !(rq->prompt || rq->body)) {
        if (rec)
            req_record_fail(rec, REQ_BAD_RESPONSE, "client_start: missing argument");
        if (rq)
            free(rq->body);
        return -EINVAL;
    }
    int rc = -ENOMEM;
    char *url = NULL;
    struct transfer *t = c->pool;
    if (t) {
        c->pool = t->next;
        t->next = NULL;
        curl_easy_reset(t->easy);
        sse_parser_reset(t->sse);
        buf_reset(&t->errbody);
    } else {
        t = xcalloc(1, sizeof(*t));
        t->c = c;
        t->w = &c->workers[0];
        buf_init(&t->errbody, CLIENT_ERRBODY_MAX);
        t->easy = curl_easy_init();
        if (!t->easy)
            goto fail;
        rc = sse_parser_new(&t->sse, CLIENT_SSE_MAX_LINE, on_sse_event, t);
        if (rc)
            goto fail;
        rc = -ENOMEM;
    }
    t->rec = rec;
    t->done = done;
    t->ctx = ctx;
    t->now = 0;
    t->http = 0;
    t->n_chunks = 0;
    t->saw_done = t->saw_finish = t->have_usage = t->failed = t->after_done = false;
    t->socket_errno = 0;
    t->max_events = (size_t)(rq->max_tokens > 0 ? rq->max_tokens : 0) + CLIENT_EVENTS_MARGIN;
    t->usage_prompt = t->usage_completion = -1;
    t->usage_reasoning = t->usage_cached = -1;
    t->answer = rq->answer;
    t->errbuf[0] = '\0';
    t->body = rq->body ? rq->body : client_body_build(rq, &rc);
    if (!t->body)
        goto fail;
    rc = -ENOMEM;
    url = build_url(rq);
    rc = transfer_setup(c, t, url);
    if (rc)
        goto fail;
    if (rq->max_tokens > 0)
        req_record_reserve_events(rec, (size_t)rq->max_tokens < CLIENT_RESERVE_MAX
                                           ? (size_t)rq->max_tokens
                                           : CLIENT_RESERVE_MAX);
    /* Written only when it differs: a runner's prompt pool may read it while composing this
     * request's body ahead (the same value), and a read beside a write is a data race. */
    if (rec->target_output_tokens != rq->max_tokens)
        rec->target_output_tokens = rq->max_tokens;
    rec->t_sent = clock_now();
    if (c->threaded) {
        client_worker_post(c, t);
    } else if (curl_multi_add_handle(c->workers[0].multi, t->easy) != CURLM_OK) {
        /* Unthreaded, this only arms the timer (0 ms): the transfer begins on the next loop
         * turn, so done is never called from inside client_start. */
        rc = -EIO;
        goto fail;
    }
    free(url);
    t->prev = NULL;
    t->next = c->active;
    if (c->active)
        c->active->prev = t;
    c->active = t;
    c->in_flight++;
    return 0;
fail:
    free(url);
    if (rq->body && t->body != rq->body)
        free(rq->body); /* taken, also on failure */
    free(t->body);
    t->body = NULL;
    t->rec = NULL;
    if (rc == -EILSEQ) /* nothing went out: the client's own failure, not the server's */
        req_record_fail(rec, REQ_CLIENT_LIMIT,
                        "the request was not sent: its prompt or messages are not valid UTF-8 "
                        "(a JSON body cannot carry them)");
    else
        req_record_fail(rec, REQ_BAD_RESPONSE, "client_start: %s", strerror(-rc));
    if (t->easy && t->sse) {
        t->next = c->pool;
        c->pool = t;
    } else {
        curl_easy_cleanup(t->easy);
        sse_parser_free(t->sse);
        buf_release(&t->errbody);
        free(t);
    }
    return rc;
}

/* Unthreaded: every transfer on the one loop is cancelled here. */
static void cancel_local(struct client *c)
{
    /* Detach the list first: done callbacks may start new transfers, which are not part of
     * this cancellation (the caller stops starting work before cancelling). */
    struct transfer *list = c->active;
    c->active = NULL;
    while (list) {
        struct transfer *t = list;
        list = t->next;
        if (list)
            list->prev = NULL;
        t->prev = t->next = NULL;
        /* Put it back alone so client_transfer_hand_back can unlink it as usual. */
        t->next = c->active;
        if (c->active)
            c->active->prev = t;
        c->active = t;
        long http = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &http);
        t->rec->http_status = http;
        curl_multi_remove_handle(c->workers[0].multi, t->easy);
        req_record_fail(t->rec, REQ_CANCELLED, "cancelled");
        client_transfer_settle(t);
        client_transfer_hand_back(t);
    }
}

void client_cancel_all(struct client *c)
{
    if (!c)
        return;
    if (c->threaded)
        client_cancel_workers(c);
    else
        cancel_local(c);
}

size_t client_in_flight(const struct client *c)
{
    return c ? c->in_flight : 0;
}

size_t client_events(const struct client *c)
{
    size_t n = 0;
    for (size_t i = 0; c && i < c->n_workers; i++)
        n += atomic_load_explicit(&c->workers[i].events, memory_order_relaxed);
    return n;
}

void client_reserve_descriptors(size_t n)
{
    if (n < 2 || n > INT_MAX)
        return;
    /* The lowest free descriptor at or above n - 1: the table must then cover n. */
    int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, (int)(n - 1));
    if (fd >= 0)
        close(fd);
}

void client_free(struct client *c)
{
    if (!c)
        return;
    client_cancel_all(c);
    while (c->pool) {
        struct transfer *t = c->pool;
        c->pool = t->next;
        curl_easy_cleanup(t->easy);
        sse_parser_free(t->sse);
        buf_release(&t->errbody);
        free(t);
    }
    for (size_t i = 0; c->workers && i < c->n_workers; i++) {
        if (c->threaded)
            client_worker_stop(&c->workers[i]);
        else
            client_worker_release(&c->workers[i]);
    }
    free(c->workers);
    if (c->done_ev)
        event_free(c->done_ev);
    if (c->done_fd >= 0)
        close(c->done_fd);
    if (c->threaded)
        pthread_mutex_destroy(&c->done_lock);
    curl_slist_free_all(c->headers);
    free(c);
}
