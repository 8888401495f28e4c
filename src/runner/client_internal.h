/*
 * client_internal.h - what the client's own files share: client.c (the loop's wiring with
 * libcurl, the stream's events, starting and cancelling transfers), client_finish.c
 * (classifying a finished transfer and handing its record back) and client_workers.c (the
 * worker threads of client_options.threads). Other modules use client.h.
 */
#ifndef TB_CLIENT_INTERNAL_H
#define TB_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/stats.h"
#include "runner/client.h"
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

/* client.c: one loop's multi handle and libevent glue on base (0 or -ENOMEM), and closing it
 * (the worker's thread, if any, has ended). */
int client_worker_setup(struct client *c, struct worker *w, struct event_base *base);
void client_worker_release(struct worker *w);

/* client_finish.c */
/* Copies s[0..n) into out (size cap) with control characters replaced, for messages. */
void client_clean_copy(char *out, size_t cap, const char *s, size_t n);
/* Fills in tokens and t_end (on the loop that ran the transfer). */
void client_transfer_settle(struct transfer *t);
/* Hands the record over and recycles t (on the owner's loop). */
void client_transfer_hand_back(struct transfer *t);
/* A transfer is over on its loop (w's): settled, then handed back (threaded: through the
 * owner's loop). */
void client_transfer_over(struct worker *w, struct transfer *t);
/* Finishes every transfer libcurl reports done on w's multi handle. */
void client_drain_done(struct worker *w);

/* client_workers.c (threaded only) */
int client_worker_start(struct client *c, struct worker *w); /* 0 or -errno */
void client_worker_stop(struct worker *w);
/* Hands t to the worker with the fewest transfers (owner). */
void client_worker_post(struct client *c, struct transfer *t);
/* Every worker cancels its own; then every record back gets its done callback (owner). */
void client_cancel_workers(struct client *c);
/* The owner's eventfd callback: done callbacks of transfers the workers finished. */
void client_on_done_ready(evutil_socket_t fd, short what, void *arg);

#endif
