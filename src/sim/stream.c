/*
 * stream.c - one accepted generation request, from engine events to bytes.
 *
 * The per-token path is here: one SSE event per engine step per request, written as
 * preformatted JSON pieces into one scratch evbuffer and handed to evhttp as one HTTP chunk.
 * No JSON library on this path: the id, created time and model name are escaped once into
 * chunk_prefix when the stream starts, and output words come from the vocabulary arena
 * (plain ASCII letters, nothing to escape).
 *
 * Output text: token i is a common word picked by hash64(text_seed, i), so the same seed
 * gives the same text, and the text tokenizes back to exactly one token per output token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/rng.h"
#include "sim/sim_internal.h"

/* Appends a string literal without strlen or a hand-counted length. */
#define ADD_LIT(out, lit) evbuffer_add((out), (lit), sizeof(lit) - 1)

static uint32_t token_id(const struct sim_stream *s, int i)
{
    uint64_t key[2] = {s->text_seed, (uint64_t)i};
    uint32_t n = tokenizer_n_common(s->srv->tok);
    return (uint32_t)(hash64(key, sizeof(key), 0x6f7574u) % n);
}

const char *sim_stream_token_text(const struct sim_stream *s, int i, size_t *len)
{
    return tokenizer_word(s->srv->tok, token_id(s, i), len);
}

void sim_stream_free(struct sim_stream *s)
{
    if (!s)
        return;
    sim_call_release(&s->call);
    free(s->chunk_prefix);
    dvec_release(&s->token_times);
    free(s);
}

/* "data: {"id":"..","object":"..","created":N,"model":"..","choices":[" */
static void build_prefix(struct sim_stream *s)
{
    struct buf b;
    buf_init(&b, 4 * SIM_MAX_NAME + 512);
    int rc = buf_printf(
        &b, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":", s->id_str,
        s->call.chat ? "chat.completion.chunk" : "text_completion", s->created);
    rc = rc ? rc : json_quote(&b, s->call.model);
    rc = rc ? rc : buf_puts(&b, ",\"choices\":[");
    if (rc) {
        /* Names are bounded by SIM_MAX_NAME when parsed; this cannot overflow. */
        buf_reset(&b);
        if (buf_puts(&b, "data: {\"choices\":[")) {
            /* out of memory: an empty body is all we can send */
        }
    }
    s->chunk_prefix = buf_take(&b, &s->chunk_prefix_len);
}

/* The reply is about to end: the connection is no longer ours to watch, and idles again. */
static void clear_closecb(struct sim_stream *s)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(s->req);
    if (evcon)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    sim_server_conn_idle(s->srv, s->req);
}

void sim_stream_begin(struct sim_stream *s)
{
    build_prefix(s);
    if (!s->call.stream)
        return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(s->req);
    evhttp_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_send_reply_start(s->req, 200, "OK");
}

/*
 * Writes the connection's pending output now instead of on the next loop turn. evhttp would
 * arm the socket's write event, wait for epoll to report it writable (it always is: a few
 * hundred bytes into an idle socket) and disarm it again: two epoll_ctl calls per chunk.
 * Writing here and disabling the write event when everything went out lets the changelist
 * cancel the arm/disarm pair. A short write (slow reader) leaves the rest to libevent. Not
 * used for the last chunk: evhttp finishes the request from its write callback.
 */
static void flush_now(struct sim_stream *s)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(s->req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (!bev)
        return;
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd < 0)
        return;
    /* A socket bufferevent keeps its output's start frozen so that only its write callback
     * drains it; that callback unfreezes around its own write the same way. */
    evbuffer_unfreeze(out, 1);
    int wr = evbuffer_write(out, fd);
    evbuffer_freeze(out, 1);
    if (wr < 0)
        return;
    if (evbuffer_get_length(out) == 0)
        bufferevent_disable(bev, EV_WRITE);
}

static void add_usage(struct evbuffer *out, const struct sim_stream *s, int completion)
{
    size_t p = s->call.prompt.n;
    evbuffer_add_printf(out,
                        ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu,"
                        "\"completion_tokens\":%d",
                        p, p + (size_t)completion, completion);
    /* vLLM's shape with --enable-prompt-tokens-details (UsageInfo.prompt_tokens_details). */
    if (s->srv->prompt_tokens_details)
        evbuffer_add_printf(out, ",\"prompt_tokens_details\":{\"cached_tokens\":%d}",
                            s->cached_tokens);
    ADD_LIT(out, "}");
}

/* Chat with --reasoning-tokens: tokens before this index are reasoning. */
static int reasoning_end(const struct sim_stream *s)
{
    return s->call.chat ? s->srv->reasoning_tokens : 0;
}

/* One content chunk carrying tokens [from, to) and, when finish != NULL, its reason.
 * Reasoning tokens (chat, --reasoning-tokens) go in delta.reasoning_content instead. */
static void add_content_chunk(struct evbuffer *out, const struct sim_stream *s, int from, int to,
                              const char *finish)
{
    evbuffer_add(out, s->chunk_prefix, s->chunk_prefix_len);
    if (s->call.chat && from < reasoning_end(s))
        ADD_LIT(out, "{\"index\":0,\"delta\":{\"reasoning_content\":\"");
    else if (s->call.chat)
        ADD_LIT(out, "{\"index\":0,\"delta\":{\"content\":\"");
    else
        ADD_LIT(out, "{\"index\":0,\"text\":\"");
    for (int i = from; i < to; i++) {
        size_t wl;
        const char *w = sim_stream_token_text(s, i, &wl);
        if (i > 0)
            ADD_LIT(out, " ");
        evbuffer_add(out, w, wl);
    }
    const char *fr = finish ? finish : "null";
    const char *q = finish ? "\"" : "";
    if (s->call.chat)
        evbuffer_add_printf(out, "\"},\"logprobs\":null,\"finish_reason\":%s%s%s}]", q, fr, q);
    else
        evbuffer_add_printf(
            out, "\",\"logprobs\":null,\"finish_reason\":%s%s%s,\"stop_reason\":null}]", q, fr, q);
    if (s->call.continuous_usage)
        add_usage(out, s, to);
    ADD_LIT(out, "}\n\n");
}

static void add_role_chunk(struct evbuffer *out, const struct sim_stream *s)
{
    evbuffer_add(out, s->chunk_prefix, s->chunk_prefix_len);
    static const char role[] = "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                               "\"logprobs\":null,\"finish_reason\":null}]";
    evbuffer_add(out, role, sizeof(role) - 1);
    if (s->call.continuous_usage)
        add_usage(out, s, 0);
    ADD_LIT(out, "}\n\n");
}

static const char *finish_name(const struct sim_stream *s, enum finish_reason f)
{
    if (f == FINISH_ABORT)
        return "abort";
    return s->emitted < s->call.max_tokens ? "stop" : "length";
}

/* The whole response of a non-streaming call. */
static void send_full(struct sim_stream *s, const char *finish)
{
    struct buf *b = &s->srv->body;
    buf_reset(b);
    int rc = buf_printf(b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":", s->id_str,
                        s->call.chat ? "chat.completion" : "text_completion", s->created);
    rc = rc ? rc : json_quote(b, s->call.model);
    if (s->call.chat)
        rc = rc ? rc
                : buf_puts(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                              "\"content\":\"");
    else
        rc = rc ? rc : buf_puts(b, ",\"choices\":[{\"index\":0,\"text\":\"");
    for (int i = 0; !rc && i < s->emitted; i++) {
        size_t wl;
        const char *w = sim_stream_token_text(s, i, &wl);
        if (i > 0)
            rc = buf_append(b, " ", 1);
        rc = rc ? rc : buf_append(b, w, wl);
    }
    if (s->call.chat)
        rc = rc ? rc
                : buf_printf(b,
                             "\",\"tool_calls\":[]},\"logprobs\":null,\"finish_reason\":\"%s\","
                             "\"stop_reason\":null}]",
                             finish);
    else
        rc = rc ? rc
                : buf_printf(b,
                             "\",\"logprobs\":null,\"finish_reason\":\"%s\","
                             "\"stop_reason\":null,\"prompt_logprobs\":null}]",
                             finish);
    rc = rc ? rc
            : buf_printf(b,
                         ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu,"
                         "\"completion_tokens\":%d}}",
                         s->call.prompt.n, s->call.prompt.n + (size_t)s->emitted, s->emitted);
    struct evbuffer *out = s->srv->scratch;
    evhttp_add_header(evhttp_request_get_output_headers(s->req), "Content-Type",
                      "application/json");
    if (rc) {
        evbuffer_add_printf(out, "{\"error\":{\"message\":\"response too large\"}}");
        evhttp_send_reply(s->req, 500, "Internal Server Error", out);
        return;
    }
    evbuffer_add(out, b->data, b->len);
    evhttp_send_reply(s->req, 200, "OK", out);
}

static void record_finish(struct sim_stream *s, const char *finish, double now)
{
    struct sim_server *srv = s->srv;
    if (finish[0] == 's')
        srv->metrics.finished_stop++;
    else if (finish[0] == 'l')
        srv->metrics.finished_length++;
    else
        srv->metrics.finished_abort++;
    sim_hist_record(&srv->metrics.e2e, now - s->arrival);
    if (srv->trace)
        sim_trace_write(srv->trace, s->id_str, srv->t0_abs + s->arrival,
                        s->prefill_start < 0 ? -1 : srv->t0_abs + s->prefill_start,
                        s->token_times.v, s->token_times.n, srv->t0_abs + now, finish,
                        s->call.prompt.n);
}

bool sim_stream_on_event(struct sim_stream *s, const struct engine_event *ev, double step_start,
                         double now)
{
    struct sim_server *srv = s->srv;
    struct evbuffer *out = srv->scratch;
    if (s->prefill_start < 0)
        s->prefill_start = step_start;
    int from = s->emitted;
    if (ev->first)
        s->cached_tokens = ev->cached_prompt_tokens;
    if (ev->new_tokens > 0) {
        if (from == 0) {
            s->first_time = now;
            sim_hist_record(&srv->metrics.ttft, now - s->arrival);
        } else {
            sim_hist_record(&srv->metrics.itl, now - s->last_time);
        }
        s->last_time = now;
        s->emitted += ev->new_tokens;
        if (srv->trace)
            for (int i = 0; i < ev->new_tokens; i++)
                dvec_push(&s->token_times, srv->t0_abs + now);
    }
    const char *finish = ev->finish != FINISH_NONE ? finish_name(s, ev->finish) : NULL;

    if (s->call.stream) {
        if (s->call.chat && from == 0 && (ev->new_tokens > 0 || finish))
            add_role_chunk(out, s);
        /* A step that crosses from reasoning to the answer sends one chunk of each. */
        int cut = reasoning_end(s);
        if (from < cut && s->emitted > cut) {
            add_content_chunk(out, s, from, cut, NULL);
            from = cut;
        }
        if (ev->new_tokens > 0 || finish)
            add_content_chunk(out, s, from, s->emitted, finish);
        if (finish) {
            if (s->call.include_usage) {
                evbuffer_add(out, s->chunk_prefix, s->chunk_prefix_len);
                ADD_LIT(out, "]");
                add_usage(out, s, s->emitted);
                ADD_LIT(out, "}\n\n");
            }
            ADD_LIT(out, "data: [DONE]\n\n");
        }
        if (evbuffer_get_length(out) > 0) {
            evhttp_send_reply_chunk(s->req, out);
            if (!finish)
                flush_now(s);
        }
        if (!finish)
            return false;
        clear_closecb(s);
        evhttp_send_reply_end(s->req);
    } else {
        if (!finish)
            return false;
        clear_closecb(s);
        send_full(s, finish);
    }
    s->req = NULL;
    record_finish(s, finish, now);
    return true;
}
