/*
 * client.h - the streaming HTTP client: libcurl's multi_socket interface driven by a
 * libevent loop, many concurrent SSE streams, on the caller's loop thread or spread over
 * worker threads (client_options.threads).
 * Works with any OpenAI-compatible server: usage is taken from whichever chunk carries
 * it, text events are counted when usage never arrives, errors are classified.
 */
#ifndef TB_CLIENT_H
#define TB_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "runner/client_chunk.h"
#include "runner/record.h"

struct client_options {
    const char *api_key;       /* Authorization: Bearer ...; NULL = none */
    double timeout_s;          /* whole-request limit; 0 = none */
    long max_host_connections; /* 0 = libcurl default (unlimited); per worker thread */
    int threads; /* > 1: that many worker threads, each with its own loop and libcurl multi
                  * handle, run the transfers; records and done callbacks still belong to the
                  * caller's loop. 0 or 1: everything on the caller's loop. */
};

/* One request. Strings are borrowed until client_start returns (the body is built there). */
struct client_request {
    const char *base_url; /* http://host:port (no trailing /v1) */
    enum api_kind api;    /* /v1/completions or /v1/chat/completions */
    const char *model;
    const char *prompt;        /* prompt text, or the user message for chat */
    const char *messages_json; /* chat: a JSON array of messages sent instead of prompt; NULL */
    int max_tokens;  /* max_tokens (completions) / max_completion_tokens + max_tokens (chat) */
    bool ignore_eos; /* vLLM extension; also sends min_tokens = max_tokens */
    /* Sessions (chat): the conversation before prompt, alternating user and assistant
     * messages starting with a user's; prompt is then the new user message. NULL/0 = none. */
    const char *const *history;
    size_t n_history;
    /* When set, the answer text (content / text, not reasoning) is appended here as it
     * streams, decoded; what would pass answer->max is dropped. Borrowed until done. */
    struct buf *answer;
    /* A body built before with client_body_build (a runner builds its requests' bodies
     * before the clock starts, so that sending costs no JSON work): client_start takes it
     * (frees it, also on failure) and prompt, messages_json, history, max_tokens and
     * ignore_eos are not read for the body. NULL = built in client_start. */
    char *body;
};

/* The JSON body client_start would send for rq (caller frees), or NULL: -EILSEQ in *why when
 * the prompt or messages cannot be sent (not valid UTF-8; jansson refuses them, and a body
 * without its prompt must never go out), -ENOMEM otherwise. */
MUST_USE char *client_body_build(const struct client_request *rq, int *why);

/* Called once per request when it ends (ok, failed or cancelled); rec is the caller's.
 * It runs from the caller's event loop, outside libcurl's callbacks: it may call client_start
 * and client_cancel_all, but not client_free. With threads, a worker writes rec from
 * client_start until done is called: the caller must not read it in between. */
typedef void (*client_done_fn)(void *ctx, struct req_record *rec);

struct client;

MUST_USE int client_new(struct client **out, struct event_base *base,
                        const struct client_options *o);
/* Sets rec->t_sent and starts the transfer; the result arrives through done. 0 or -errno
 * (then done is not called and rec holds the error). */
MUST_USE int client_start(struct client *c, const struct client_request *rq, struct req_record *rec,
                          client_done_fn done, void *ctx);
/* Cancels every transfer in flight; each is recorded as "cancelled" and done is called. */
void client_cancel_all(struct client *c);
size_t client_in_flight(const struct client *c);
/* Text events received since client_new, by every thread (safe to call while they run). */
size_t client_events(const struct client *c);
struct dvec;
/* Moves the worker threads' loop-lag samples (seconds, a 1 ms heartbeat each) into into, or
 * drops them when into is NULL. Nothing without threads: the caller's loop is the caller's
 * to probe. */
void client_take_loop_lag(struct client *c, struct dvec *into);
/* The caller's loop ended a turn (its event_base_loop(base, EVLOOP_ONCE) returned). A caller
 * that says so after every turn gets events stamped from the turn's first socket wake-up
 * rather than when the loop reached each socket (client.c "Timing"); one that never calls it
 * gets the latter. Nothing with threads: the workers mark their own turns. */
void client_turn_end(struct client *c);
void client_free(struct client *c); /* cancels what is in flight; NULL is a no-op */
/* Grows the process's descriptor table to hold n descriptors now, before any load. The kernel
 * grows it by doubling when a new descriptor does not fit, and in a process with threads each
 * growth waits for an RCU grace period (expand_fdtable: synchronize_rcu), which stalled the
 * loop 10-20 ms in socket() as streams crossed 128, 256, 512... Best effort: a limit below n
 * leaves the table as it is. */
void client_reserve_descriptors(size_t n);

#endif
