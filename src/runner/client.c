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
 * Connections: HTTP/1.1 (one stream per connection, as vLLM's own benchmark client does;
 * keeps per-stream timing independent of HTTP/2 flow control); libcurl's connection cache
 * in the multi handle reuses idle keep-alive connections. "Expect: 100-continue" is turned
 * off: with long prompts libcurl would otherwise wait a round trip (or 1 s) before the body.
 */
#include "runner/client.h"

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

/* An SSE line longer than this aborts the stream (bad_response). OpenAI chunks are < 2 KiB;
 * a chunk with logprobs can be tens of KiB. */
#define CLIENT_SSE_MAX_LINE (256 * 1024)
/* How much of an error response body is kept to find its message. */
#define CLIENT_ERRBODY_MAX (16 * 1024)
/* How much of the server's message goes into rec->error. */
#define CLIENT_ERRMSG_MAX 400
/* Events capacity reserved up front is capped here (max_tokens can be huge). */
#define CLIENT_RESERVE_MAX (1u << 20)
/* A stream may carry this many text events beyond max_tokens (a server that splits a token's
 * text), and this many chunks of any kind per allowed event (role, usage, empty keep-alive
 * chunks), before it is cut as bad_response: a server that streams forever would otherwise
 * fill memory (8 bytes an event here, ~24 in detailed.json) until the request timeout. */
#define CLIENT_EVENTS_MARGIN 64
#define CLIENT_CHUNKS_PER_EVENT 4

struct worker;

struct transfer {
    struct client *c;
    struct worker *w; /* the loop that runs it */
    CURL *easy;
    struct sse_parser *sse;
    struct transfer *prev, *next;   /* in c->active, or next in c->pool */
    struct transfer *wprev, *wnext; /* in w->mine (threaded), or next in an inbox/done queue */
    struct req_record *rec;
    client_done_fn done;
    void *ctx;
    char *body;         /* request body (json_dumps), owned */
    struct buf errbody; /* body of a non-2xx response, bounded */
    mono_ns now;        /* arrival time of the bytes being parsed */
    long http;          /* status seen by the first write callback, 0 before */
    size_t n_chunks;    /* valid JSON data events */
    bool saw_done;
    bool saw_finish; /* some chunk had a non-null finish_reason */
    bool have_usage;
    bool failed;       /* rec already holds the failure (set inside a callback) */
    bool after_done;   /* bytes came after [DONE]: the transfer was stopped, still ok */
    size_t max_events; /* text events allowed (max_tokens + margin) */
    int socket_errno;  /* why socket() failed (EMFILE...), 0 = it did not */
    int usage_prompt;
    int usage_completion;
    int usage_reasoning; /* usage.completion_tokens_details.reasoning_tokens, -1 none */
    int usage_cached;    /* usage.prompt_tokens_details.cached_tokens, -1 none */
    struct buf *answer;  /* the caller's, for sessions; NULL = answer text not kept */
    char errbuf[CURL_ERROR_SIZE];
};

/* One event loop driving one libcurl multi handle. Unthreaded, the client has one that runs on
 * the caller's base; with threads, each worker thread has its own, and everything marked
 * "worker" below is touched by that thread only. */
struct worker {
    struct client *c;
    struct event_base *base; /* the caller's, or the worker's own */
    CURLM *multi;
    struct ptimer_set *timers; /* this loop's precise timers: libcurl's and the heartbeat */
    struct ptimer *timer;      /* libcurl's */
    struct sock *socks;        /* sockets libcurl asked us to watch */
    bool turns;                /* the loop's turns are marked (client_turn_end, or its own) */
    mono_ns turn_t0;           /* the turn's first socket wake-up; 0 = none yet this turn */
    mono_ns ready_t0;          /* while a socket's action runs: when it was known readable */
    atomic_size_t events;      /* text events received (worker writes, anyone reads) */
    /* threaded only */
    pthread_t thread;
    bool inited, started;
    int wake_fd; /* eventfd: the owner posted work or a command */
    struct event *wake_ev;
    struct ptimer *heartbeat;
    mono_ns hb_expected;   /* worker */
    struct transfer *mine; /* worker: in this multi handle, doubly linked by wprev/wnext */
    size_t load;           /* owner: handed over and not yet back */
    pthread_mutex_t lock;  /* guards the fields below */
    pthread_cond_t acked;
    struct transfer *inbox; /* handed over, not yet started (by wnext) */
    bool cancel, cancel_done, stop;
    struct dvec lag; /* heartbeat lateness, seconds */
};

struct client {
    struct event_base *base;
    struct curl_slist *headers;
    struct transfer *active; /* doubly linked, in flight */
    struct transfer *pool;   /* finished transfers kept for reuse (easy handle, parser) */
    size_t in_flight;
    double timeout_s;
    long max_host_connections;
    struct worker *workers;
    size_t n_workers;
    bool threaded;
    /* threaded: finished transfers on their way back to the owner's loop */
    int done_fd;
    struct event *done_ev;
    pthread_mutex_t done_lock;
    struct transfer *done_head, *done_tail; /* by wnext */
};

/* A libevent event per socket libcurl asks us to watch. */
struct sock {
    struct event *ev;
    curl_socket_t fd;
    short kind;               /* the libevent flags it is registered with */
    struct sock *prev, *next; /* in client->socks, so client_free can free leftovers */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
    /* Never cleaned up: other threads may hold clients; process exit frees it. */
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ===== Finishing and classifying ===== */

static void list_unlink(struct client *c, struct transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        c->active = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

/* Copies s[0..n) into out (size cap) with control characters replaced, for messages. */
static void clean_copy(char *out, size_t cap, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[j++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    out[j] = '\0';
}

/* The message of an error body: OpenAI {"error":{"message"}}, TGI {"error":"..."},
 * FastAPI {"detail":...}, {"message":...}; else the raw body. */
static void error_message(const char *body, size_t len, char *out, size_t cap)
{
    out[0] = '\0';
    if (!body || !len)
        return;
    /* jansson refuses invalid UTF-8 outright: repair first, so the message survives. */
    char *fixed = utf8_valid(body, len) ? NULL : utf8_repair(body, len);
    json_t *root = fixed ? json_loads(fixed, 0, NULL) : json_loadb(body, len, 0, NULL);
    free(fixed);
    const char *msg = NULL;
    if (json_is_object(root)) {
        json_t *e = json_object_get(root, "error");
        if (json_is_object(e))
            msg = json_string_value(json_object_get(e, "message"));
        else if (json_is_string(e))
            msg = json_string_value(e);
        if (!msg)
            msg = json_string_value(json_object_get(root, "detail"));
        if (!msg)
            msg = json_string_value(json_object_get(root, "message"));
        if (!msg && e) {
            char *dump = json_dumps(e, JSON_COMPACT);
            if (dump) {
                clean_copy(out, cap, dump, strlen(dump));
                free(dump);
                json_decref(root);
                return;
            }
        }
    }
    if (msg)
        clean_copy(out, cap, msg, strlen(msg));
    else
        clean_copy(out, cap, body, len);
    json_decref(root);
}

static bool content_type_is_sse(CURL *easy)
{
    char *ct = NULL;
    if (curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK || !ct)
        return false;
    return strncasecmp(ct, "text/event-stream", 17) == 0;
}

static void classify(struct transfer *t, CURLcode res)
{
    struct req_record *rec = t->rec;
    long http = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &http);
    rec->http_status = http;
    if (t->failed)
        return;
    const char *cerr = t->errbuf[0] ? t->errbuf : curl_easy_strerror(res);
    /* [DONE] arrived: the request is complete whatever came after it (more data, which made
     * us stop reading, or a connection the server kept open until the timeout). */
    if (t->saw_done && http >= 200 && http < 300)
        return;
    if (http >= 600 || (http > 0 && http < 100)) {
        req_record_fail(rec, REQ_BAD_RESPONSE, "HTTP status %ld is outside 100-599", http);
        return;
    }
    if (http >= 400) {
        char msg[CLIENT_ERRMSG_MAX];
        error_message(t->errbody.data, t->errbody.len, msg, sizeof(msg));
        req_record_fail(rec, http >= 500 ? REQ_HTTP_5XX : REQ_HTTP_4XX, "HTTP %ld: %s", http,
                        msg[0] ? msg : "(no body)");
        return;
    }
    switch (res) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT:
        req_record_fail(rec, REQ_TIMEOUT, "timed out after %.3f s: %s", t->c->timeout_s, cerr);
        return;
    case CURLE_COULDNT_CONNECT: {
        /* libcurl's words are "Couldn't connect to server" either way; the OS error tells. */
        long os_errno = t->socket_errno;
        if (!os_errno)
            curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_errno);
        if (os_errno == EMFILE || os_errno == ENFILE || strstr(cerr, "Too many open files")) {
            /* Our limit, not the server's fault: said as such (EMFILE). */
            req_record_fail(rec, REQ_CLIENT_LIMIT,
                            "out of file descriptors (%s): %s; raise ulimit -n or lower the "
                            "concurrency",
                            os_errno == ENFILE ? "ENFILE" : "EMFILE", cerr);
            return;
        }
        req_record_fail(rec, REQ_CONNECT, "%s", cerr);
        return;
    }
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_URL_MALFORMAT:
        req_record_fail(rec, REQ_CONNECT, "%s", cerr);
        return;
    /* The server answered, but not in HTTP/1.1 as it is spoken: an HTTP/0.9 reply, a
     * malformed status line or headers, headers too large, an encoding that does not
     * decode, broken chunked framing. */
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_FILESIZE_EXCEEDED:
        req_record_fail(rec, REQ_BAD_RESPONSE, "malformed HTTP response: %s", cerr);
        return;
#if LIBCURL_VERSION_NUM >= 0x080600
    case CURLE_TOO_LARGE: /* newer libcurl's word for the same */
#endif
    case CURLE_OUT_OF_MEMORY: /* what libcurl 7.88 says of headers over its 100 KiB limit */
        req_record_fail(rec, REQ_BAD_RESPONSE,
                        "malformed HTTP response: headers too large (libcurl: %s)", cerr);
        return;
    case CURLE_RECV_ERROR:
        if (http > 0 && (strstr(cerr, "chunk") || strstr(cerr, "header"))) {
            req_record_fail(rec, REQ_BAD_RESPONSE, "malformed HTTP response: %s", cerr);
            return;
        }
        __attribute__((fallthrough)); /* a connection reset */
    default:
        if (http == 0)
            req_record_fail(rec, REQ_CONNECT, "no response: %s", cerr);
        else if (http >= 200 && http < 300)
            req_record_fail(rec, REQ_STREAM_CUT, "stream cut after %zu chunks: %s", t->n_chunks,
                            cerr);
        else
            req_record_fail(rec, REQ_BAD_RESPONSE, "HTTP %ld: %s", http, cerr);
        return;
    }
    if (http < 200 || http >= 300) {
        req_record_fail(rec, REQ_BAD_RESPONSE, "unexpected HTTP status %ld", http);
        return;
    }
    if (t->saw_done)
        return; /* ok */
    if (t->n_chunks > 0 && (t->saw_finish || t->have_usage))
        return; /* a clean end without [DONE]: some servers never send it */
    if (t->n_chunks == 0 && !content_type_is_sse(t->easy)) {
        /* A 200 that carries an error document: keep the server's words. */
        char msg[CLIENT_ERRMSG_MAX];
        error_message(t->errbody.data, t->errbody.len, msg, sizeof(msg));
        req_record_fail(rec, REQ_BAD_RESPONSE, "response is not an event stream%s%s",
                        msg[0] ? ": " : "", msg);
        return;
    }
    req_record_fail(rec, REQ_STREAM_CUT, "stream ended without [DONE] after %zu chunks",
                    t->n_chunks);
}

/* A server's usage.completion_tokens is believed when it fits what was seen and asked: at
 * least one token per text event (an event carries a token's text or more; a detokenizer may
 * hold text back, never invent it) and no more than max_tokens. */
static bool usage_implausible(int usage, size_t events, int max_tokens)
{
    if ((size_t)usage < events)
        return true;
    return max_tokens > 0 && usage > max_tokens;
}

/* Fills in tokens and t_end (on the loop that ran the transfer). */
static void transfer_settle(struct transfer *t)
{
    struct req_record *rec = t->rec;
    if (!rec->t_end)
        rec->t_end = clock_now();
    rec->usage_output_tokens = t->have_usage ? t->usage_completion : -1;
    rec->usage_implausible =
        t->have_usage && t->usage_completion >= 0 &&
        usage_implausible(t->usage_completion, rec->n_events, rec->target_output_tokens);
    if (t->have_usage && t->usage_completion >= 0 && !rec->usage_implausible) {
        rec->output_tokens = t->usage_completion;
        rec->tokens_from_usage = true;
    } else {
        rec->output_tokens = (int)rec->n_events;
        rec->tokens_from_usage = false;
    }
    if (t->have_usage && t->usage_prompt >= 0)
        rec->prompt_tokens = t->usage_prompt;
    rec->usage_reasoning_tokens = t->have_usage ? t->usage_reasoning : -1;
    rec->cached_tokens = t->have_usage ? t->usage_cached : -1;
}

/* Hands the record over and recycles t (on the owner's loop). */
static void transfer_hand_back(struct transfer *t)
{
    struct client *c = t->c;
    struct req_record *rec = t->rec;
    client_done_fn done = t->done;
    void *ctx = t->ctx;
    list_unlink(c, t);
    c->in_flight--;
    free(t->body);
    t->body = NULL;
    t->rec = NULL;
    t->next = c->pool;
    c->pool = t;
    done(ctx, rec);
}

static void worker_unlink(struct worker *w, struct transfer *t)
{
    if (t->wprev)
        t->wprev->wnext = t->wnext;
    else
        w->mine = t->wnext;
    if (t->wnext)
        t->wnext->wprev = t->wprev;
    t->wprev = t->wnext = NULL;
}

/* A transfer is over on its loop: unthreaded, its done callback runs now; threaded, it goes
 * back to the owner's loop, whose done callbacks run there. */
static void transfer_over(struct worker *w, struct transfer *t)
{
    transfer_settle(t);
    struct client *c = w->c;
    if (!c->threaded) {
        transfer_hand_back(t);
        return;
    }
    worker_unlink(w, t);
    pthread_mutex_lock(&c->done_lock);
    if (c->done_tail)
        c->done_tail->wnext = t;
    else
        c->done_head = t;
    c->done_tail = t;
    pthread_mutex_unlock(&c->done_lock);
    uint64_t one = 1;
    ssize_t n = write(c->done_fd, &one, sizeof(one));
    (void)n; /* an eventfd write fails only when the counter would overflow: already woken */
}

static void drain_done(struct worker *w)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(w->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result; /* msg is invalid after remove_handle */
        struct transfer *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        if (t->sse && !t->failed && !t->saw_done && t->http >= 200 && t->http < 300 &&
            res == CURLE_OK) {
            /* A last event without its blank line still counts. */
            t->now = clock_now();
            int rc = sse_parser_finish(t->sse);
            (void)rc; /* a failing event already marked t->failed */
        }
        classify(t, res);
        curl_multi_remove_handle(w->multi, easy);
        transfer_over(w, t);
    }
}

/* ===== Chunk scanner =====
 *
 * One vLLM chunk is ~250 bytes; jansson builds a document of hash tables for it (~6 us on
 * the build machine), which at 100k events/s would be most of a core. This scanner walks
 * the text once, validates the syntax (RFC 8259 grammar, nesting bounded) and picks out the
 * few members we need, allocating nothing. "Non-empty string" is decided on the raw token:
 * any escape decodes to at least one character. UTF-8 is not validated (a server that sends
 * broken UTF-8 still produced a token). Rare paths (error messages) use jansson.
 */

#define JS_MAX_DEPTH 64

struct jscan {
    const char *p, *end, *start;
    int depth;
};

typedef int (*js_member_fn)(struct jscan *s, const char *key, size_t klen, void *ctx);

static int js_value(struct jscan *s);

static void js_ws(struct jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static bool js_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* A string token; body and blen give its raw contents between the quotes. */
static int js_string(struct jscan *s, const char **body, size_t *blen)
{
    if (s->p >= s->end || *s->p != '"')
        return -1;
    const char *b = ++s->p;
    while (s->p < s->end) {
        unsigned char ch = (unsigned char)*s->p;
        if (ch == '"') {
            *body = b;
            *blen = (size_t)(s->p - b);
            s->p++;
            return 0;
        }
        if (ch < 0x20)
            return -1;
        if (ch != '\\') {
            s->p++;
            continue;
        }
        if (++s->p >= s->end)
            return -1;
        switch (*s->p) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            s->p++;
            break;
        case 'u':
            if (s->end - s->p < 5 || !js_hex(s->p[1]) || !js_hex(s->p[2]) || !js_hex(s->p[3]) ||
                !js_hex(s->p[4]))
                return -1;
            s->p += 5;
            break;
        default:
            return -1;
        }
    }
    return -1;
}

static bool js_digit(const struct jscan *s)
{
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

/* A number; *ival is set (and true returned through is_int) for a plain integer. */
static int js_number(struct jscan *s, long long *ival, bool *is_int)
{
    bool neg = false, integer = true;
    long long v = 0;
    if (s->p < s->end && *s->p == '-') {
        neg = true;
        s->p++;
    }
    if (!js_digit(s))
        return -1;
    if (*s->p == '0') {
        s->p++;
    } else {
        while (js_digit(s)) {
            if (v < 1000000000000000LL)
                v = v * 10 + (*s->p - '0');
            s->p++;
        }
    }
    if (s->p < s->end && *s->p == '.') {
        integer = false;
        s->p++;
        if (!js_digit(s))
            return -1;
        while (js_digit(s))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        integer = false;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!js_digit(s))
            return -1;
        while (js_digit(s))
            s->p++;
    }
    if (ival)
        *ival = neg ? -v : v;
    if (is_int)
        *is_int = integer;
    return 0;
}

static int js_literal(struct jscan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static bool js_at_null(const struct jscan *s)
{
    return s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0;
}

/* An object; fn (may be NULL) is called at each member's value and must consume it. */
static int js_object(struct jscan *s, js_member_fn fn, void *ctx)
{
    if (s->p >= s->end || *s->p != '{' || ++s->depth > JS_MAX_DEPTH)
        return -1;
    s->p++;
    js_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        const char *key;
        size_t klen;
        if (js_string(s, &key, &klen))
            return -1;
        js_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        js_ws(s);
        if (fn ? fn(s, key, klen, ctx) : js_value(s))
            return -1;
        js_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == '}') {
            s->p++;
            s->depth--;
            return 0;
        }
        if (*s->p != ',')
            return -1;
        s->p++;
        js_ws(s);
    }
}

/* An array; fn (may be NULL) is called for the first element (index 0) only. */
static int js_array(struct jscan *s, int (*first)(struct jscan *s, void *ctx), void *ctx)
{
    if (s->p >= s->end || *s->p != '[' || ++s->depth > JS_MAX_DEPTH)
        return -1;
    s->p++;
    js_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        s->depth--;
        return 0;
    }
    for (size_t i = 0;; i++) {
        if ((i == 0 && first) ? first(s, ctx) : js_value(s))
            return -1;
        js_ws(s);
        if (s->p >= s->end)
            return -1;
        if (*s->p == ']') {
            s->p++;
            s->depth--;
            return 0;
        }
        if (*s->p != ',')
            return -1;
        s->p++;
        js_ws(s);
    }
}

static int js_value(struct jscan *s)
{
    if (s->p >= s->end)
        return -1;
    const char *b;
    size_t n;
    switch (*s->p) {
    case '{':
        return js_object(s, NULL, NULL);
    case '[':
        return js_array(s, NULL, NULL);
    case '"':
        return js_string(s, &b, &n);
    case 't':
        return js_literal(s, "true", 4);
    case 'f':
        return js_literal(s, "false", 5);
    case 'n':
        return js_literal(s, "null", 4);
    default:
        return js_number(s, NULL, NULL);
    }
}

static bool key_is(const char *key, size_t klen, const char *lit)
{
    size_t n = strlen(lit);
    return klen == n && memcmp(key, lit, n) == 0;
}

/* A value that counts as text when it is a non-empty string; answer text (not reasoning)
 * also keeps its raw bytes. */
static int js_text_value(struct jscan *s, struct client_chunk *out, bool answer)
{
    if (s->p < s->end && *s->p == '"') {
        const char *b;
        size_t n;
        if (js_string(s, &b, &n))
            return -1;
        if (n > 0) {
            out->text = true;
            if (answer) {
                out->answer = true;
                out->content = b;
                out->content_len = n;
            }
        }
        return 0;
    }
    return js_value(s);
}

static int on_delta_member(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    if (key_is(key, klen, "content"))
        return js_text_value(s, ctx, true);
    if (key_is(key, klen, "reasoning_content") || key_is(key, klen, "reasoning"))
        return js_text_value(s, ctx, false);
    return js_value(s);
}

static int on_choice_member(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    struct client_chunk *out = ctx;
    if (key_is(key, klen, "text"))
        return js_text_value(s, out, true);
    if (key_is(key, klen, "delta") && s->p < s->end && *s->p == '{')
        return js_object(s, on_delta_member, out);
    if (key_is(key, klen, "finish_reason") && !js_at_null(s))
        out->finish = true;
    return js_value(s);
}

static int on_first_choice(struct jscan *s, void *ctx)
{
    if (s->p < s->end && *s->p == '{')
        return js_object(s, on_choice_member, ctx);
    return js_value(s);
}

/* A count into *slot when the value is a plain integer in int range; else just skipped. */
static int js_count_value(struct jscan *s, int *slot)
{
    if (!slot || s->p >= s->end || !(*s->p == '-' || (*s->p >= '0' && *s->p <= '9')))
        return js_value(s);
    long long v;
    bool is_int;
    if (js_number(s, &v, &is_int))
        return -1;
    if (is_int && v >= 0 && v <= INT32_MAX)
        *slot = (int)v;
    return 0;
}

static int on_completion_details(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    struct client_chunk *out = ctx;
    return js_count_value(s, key_is(key, klen, "reasoning_tokens") ? &out->reasoning_tokens : NULL);
}

static int on_prompt_details(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    struct client_chunk *out = ctx;
    return js_count_value(s, key_is(key, klen, "cached_tokens") ? &out->cached_tokens : NULL);
}

static int on_usage_member(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    struct client_chunk *out = ctx;
    bool obj = s->p < s->end && *s->p == '{';
    if (obj && key_is(key, klen, "completion_tokens_details"))
        return js_object(s, on_completion_details, out);
    if (obj && key_is(key, klen, "prompt_tokens_details"))
        return js_object(s, on_prompt_details, out);
    int *slot = key_is(key, klen, "prompt_tokens")       ? &out->prompt_tokens
                : key_is(key, klen, "completion_tokens") ? &out->completion_tokens
                                                         : NULL;
    return js_count_value(s, slot);
}

static int on_top_member(struct jscan *s, const char *key, size_t klen, void *ctx)
{
    struct client_chunk *out = ctx;
    if (key_is(key, klen, "choices") && s->p < s->end && *s->p == '[')
        return js_array(s, on_first_choice, out);
    if (key_is(key, klen, "usage") && s->p < s->end && *s->p == '{')
        return js_object(s, on_usage_member, out);
    if (key_is(key, klen, "error") && !js_at_null(s))
        out->error = true;
    if (key_is(key, klen, "id") && s->p < s->end && *s->p == '"')
        return js_string(s, &out->id, &out->id_len);
    return js_value(s);
}

int client_chunk_parse(const char *data, size_t len, struct client_chunk *out, size_t *bad_at)
{
    struct jscan s = {.p = data, .end = data + len, .start = data};
    memset(out, 0, sizeof(*out));
    out->prompt_tokens = out->completion_tokens = -1;
    out->reasoning_tokens = out->cached_tokens = -1;
    js_ws(&s);
    int rc = js_object(&s, on_top_member, out);
    if (!rc) {
        js_ws(&s);
        if (s.p != s.end)
            rc = -1;
    }
    if (rc) {
        if (bad_at)
            *bad_at = (size_t)(s.p - s.start);
        return -EINVAL;
    }
    return 0;
}

/* ===== Stream content ===== */

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v = v * 16 + (unsigned)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
    }
    return v;
}

static int append_utf8(struct buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_append(b, u, n);
}

/* Only sessions keep answers, so this is off the common path. */
int client_text_append(struct buf *b, const char *raw, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && raw[run] != '\\')
            run++;
        if (run > i) {
            int rc = buf_append(b, raw + i, run - i);
            if (rc)
                return rc;
            i = run;
            continue;
        }
        char e = raw[i + 1];
        if (e != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *k = strchr(from, e);
            char ch = k ? to[k - from] : e;
            int rc = buf_append(b, &ch, 1);
            if (rc)
                return rc;
            i += 2;
            continue;
        }
        unsigned cp = hex4(raw + i + 2);
        i += 6;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= n && raw[i] == '\\' && raw[i + 1] == 'u' &&
            hex4(raw + i + 2) >= 0xdc00 && hex4(raw + i + 2) < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(raw + i + 2) - 0xdc00);
            i += 6;
        } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd;
        }
        int rc = append_utf8(b, cp);
        if (rc)
            return rc;
    }
    return 0;
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
    clean_copy(out, cap, m, strlen(m));
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
        clean_copy(snippet, sizeof(snippet), data, len);
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
        clean_copy(rec->response_id, sizeof(rec->response_id), ck.id, ck.id_len);
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
    drain_done(w);
}

static void on_timer(void *arg, mono_ns now)
{
    struct worker *w = arg;
    (void)now;
    int running = 0;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_done(w);
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

/* ===== Workers ===== */

#define CLIENT_HEARTBEAT_NS (1 * NS_PER_MS) /* a worker's loop-lag probe, as run.c's own */

/* The multi handle and its libevent glue, on base. 0 or -ENOMEM. */
static int worker_setup(struct client *c, struct worker *w, struct event_base *base)
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

/* Closes what worker_setup opened; the worker's thread, if any, has ended. */
static void worker_release(struct worker *w)
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

/* Cancels every transfer this worker runs (worker thread). */
static void worker_cancel(struct worker *w)
{
    while (w->mine) {
        struct transfer *t = w->mine;
        long http = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &http);
        t->rec->http_status = http;
        curl_multi_remove_handle(w->multi, t->easy);
        req_record_fail(t->rec, REQ_CANCELLED, "cancelled");
        transfer_over(w, t);
    }
}

/* The owner posted transfers or a command (worker thread). */
static void on_worker_wake(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)what;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r; /* nonblocking: nothing to read means another wake-up already took it */
    pthread_mutex_lock(&w->lock);
    struct transfer *in = w->inbox;
    w->inbox = NULL;
    bool cancel = w->cancel, stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    /* The inbox is newest first; start in the order they were handed over. */
    struct transfer *rev = NULL;
    while (in) {
        struct transfer *t = in;
        in = t->wnext;
        t->wnext = rev;
        rev = t;
    }
    while (rev) {
        struct transfer *t = rev;
        rev = t->wnext;
        t->wprev = NULL;
        t->wnext = w->mine;
        if (w->mine)
            w->mine->wprev = t;
        w->mine = t;
        if (curl_multi_add_handle(w->multi, t->easy) != CURLM_OK) {
            req_record_fail(t->rec, REQ_BAD_RESPONSE, "client_start: %s", strerror(EIO));
            t->failed = true;
            transfer_over(w, t);
        }
    }
    if (cancel) {
        worker_cancel(w);
        pthread_mutex_lock(&w->lock);
        w->cancel = false;
        w->cancel_done = true;
        pthread_cond_signal(&w->acked);
        pthread_mutex_unlock(&w->lock);
    }
    if (stop)
        event_base_loopbreak(w->base);
}

/* The worker's own loop-lag probe, as run.c's heartbeat is the owner's. */
static void on_worker_heartbeat(void *arg, mono_ns now)
{
    struct worker *w = arg;
    double lag = ptimer_probe_tick(w->heartbeat, &w->hb_expected, CLIENT_HEARTBEAT_NS, now);
    pthread_mutex_lock(&w->lock);
    dvec_push(&w->lag, lag);
    pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->turns = true;
    while (!event_base_got_break(w->base)) {
        event_base_loop(w->base, EVLOOP_ONCE);
        w->turn_t0 = 0;
    }
    return NULL;
}

static void post_wake(int fd)
{
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof(one));
    (void)n; /* fails only when the counter would overflow: the reader is awake anyway */
}

/* A worker with its own base and thread. 0 or -errno. */
static int worker_start(struct client *c, struct worker *w)
{
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->acked, NULL);
    dvec_init(&w->lag);
    w->inited = true;
    struct event_config *ec = event_config_new();
    if (!ec)
        return -ENOMEM;
    /* Only its own thread touches this base (the owner talks through the eventfd): no locks.
     * Its precise timers are ptimer's, not libevent's (ptimer.h says why). */
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    struct event_base *base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!base || worker_setup(c, w, base))
        return -ENOMEM;
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0)
        return -errno;
    w->wake_ev = event_new(base, w->wake_fd, EV_READ | EV_PERSIST, on_worker_wake, w);
    w->heartbeat = ptimer_new(w->timers, on_worker_heartbeat, w);
    if (!w->wake_ev || event_add(w->wake_ev, NULL))
        return -ENOMEM;
    w->hb_expected = clock_now() + CLIENT_HEARTBEAT_NS;
    ptimer_at(w->heartbeat, w->hb_expected);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc)
        return -rc;
    w->started = true;
    return 0;
}

/* Stops the worker's thread and frees what it held (owner). */
static void worker_stop(struct worker *w)
{
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_mutex_unlock(&w->lock);
        post_wake(w->wake_fd);
        pthread_join(w->thread, NULL);
        w->started = false;
    }
    worker_release(w);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    if (w->base)
        event_base_free(w->base);
    if (w->inited) {
        dvec_release(&w->lag);
        pthread_cond_destroy(&w->acked);
        pthread_mutex_destroy(&w->lock);
    }
}

/* Runs the done callbacks of transfers the workers finished (owner). */
static void deliver_done(struct client *c)
{
    pthread_mutex_lock(&c->done_lock);
    struct transfer *t = c->done_head;
    c->done_head = c->done_tail = NULL;
    pthread_mutex_unlock(&c->done_lock);
    while (t) {
        struct transfer *next = t->wnext;
        t->wnext = NULL;
        t->w->load--;
        transfer_hand_back(t);
        t = next;
    }
}

static void on_done_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r;
    deliver_done(arg);
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
        c->done_ev = event_new(base, c->done_fd, EV_READ | EV_PERSIST, on_done_ready, c);
        if (!c->done_ev || event_add(c->done_ev, NULL))
            goto fail;
        for (size_t i = 0; i < c->n_workers; i++) {
            rc = worker_start(c, &c->workers[i]);
            if (rc)
                goto fail;
        }
        rc = -ENOMEM;
    } else if (worker_setup(c, &c->workers[0], base)) {
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

/* The request's JSON body, or NULL (-EILSEQ in *why) when its prompt cannot be sent. */
static char *build_body(const struct client_request *rq, int *why)
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

/* Hands t to the worker with the fewest transfers (owner). Its thread starts it and, when it
 * ends, hands it back through deliver_done: done is never called from inside client_start. */
static void worker_post(struct client *c, struct transfer *t)
{
    struct worker *w = &c->workers[0];
    for (size_t i = 1; i < c->n_workers; i++)
        if (c->workers[i].load < w->load)
            w = &c->workers[i];
    t->w = w;
    w->load++;
    pthread_mutex_lock(&w->lock);
    t->wnext = w->inbox;
    w->inbox = t;
    pthread_mutex_unlock(&w->lock);
    post_wake(w->wake_fd);
}

int client_start(struct client *c, const struct client_request *rq, struct req_record *rec,
                 client_done_fn done, void *ctx)
{
    if (!c || !rq || !rec || !done || !rq->base_url || !rq->model || !rq->prompt) {
        if (rec)
            req_record_fail(rec, REQ_BAD_RESPONSE, "client_start: missing argument");
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
    t->body = build_body(rq, &rc);
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
    rec->target_output_tokens = rq->max_tokens;
    rec->t_sent = clock_now();
    if (c->threaded) {
        worker_post(c, t);
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
        /* Put it back alone so transfer_hand_back can unlink it as usual. */
        t->next = c->active;
        if (c->active)
            c->active->prev = t;
        c->active = t;
        long http = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &http);
        t->rec->http_status = http;
        curl_multi_remove_handle(c->workers[0].multi, t->easy);
        req_record_fail(t->rec, REQ_CANCELLED, "cancelled");
        transfer_settle(t);
        transfer_hand_back(t);
    }
}

/* Threaded: each worker cancels its own and acknowledges; then every record that came back
 * (cancelled, or finished just before) gets its done callback here. */
static void cancel_workers(struct client *c)
{
    for (size_t i = 0; i < c->n_workers; i++) {
        struct worker *w = &c->workers[i];
        if (!w->started)
            continue;
        pthread_mutex_lock(&w->lock);
        w->cancel = true;
        w->cancel_done = false;
        pthread_mutex_unlock(&w->lock);
        post_wake(w->wake_fd);
    }
    for (size_t i = 0; i < c->n_workers; i++) {
        struct worker *w = &c->workers[i];
        if (!w->started)
            continue;
        pthread_mutex_lock(&w->lock);
        while (!w->cancel_done)
            pthread_cond_wait(&w->acked, &w->lock);
        pthread_mutex_unlock(&w->lock);
    }
    deliver_done(c);
}

void client_cancel_all(struct client *c)
{
    if (!c)
        return;
    if (c->threaded)
        cancel_workers(c);
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

void client_take_loop_lag(struct client *c, struct dvec *into)
{
    for (size_t i = 0; c && c->threaded && i < c->n_workers; i++) {
        struct worker *w = &c->workers[i];
        if (!w->inited)
            continue;
        pthread_mutex_lock(&w->lock);
        for (size_t k = 0; into && k < w->lag.n; k++)
            dvec_push(into, w->lag.v[k]);
        w->lag.n = 0;
        pthread_mutex_unlock(&w->lock);
    }
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
            worker_stop(&c->workers[i]);
        else
            worker_release(&c->workers[i]);
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
