/*
 * client_finish.c - a finished transfer: what its end means (client.c's header says the rules:
 * [DONE], a clean close after a finish_reason, stream_cut, bad_response, connect, ...), its
 * token counts from usage or its events, and its record handed back to the owner's loop.
 */
#include "runner/client_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "core/text.h"

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
void client_clean_copy(char *out, size_t cap, const char *s, size_t n)
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
                client_clean_copy(out, cap, dump, strlen(dump));
                free(dump);
                json_decref(root);
                return;
            }
        }
    }
    if (msg)
        client_clean_copy(out, cap, msg, strlen(msg));
    else
        client_clean_copy(out, cap, body, len);
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
void client_transfer_settle(struct transfer *t)
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
void client_transfer_hand_back(struct transfer *t)
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
void client_transfer_over(struct worker *w, struct transfer *t)
{
    client_transfer_settle(t);
    struct client *c = w->c;
    if (!c->threaded) {
        client_transfer_hand_back(t);
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

void client_drain_done(struct worker *w)
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
        client_transfer_over(w, t);
    }
}
