/*
 * record.h - everything measured about one request (docs/OUTPUTS.md "A request record").
 * Times are run-clock nanoseconds (CLOCK_MONOTONIC); 0 means "did not happen".
 */
#ifndef TB_RECORD_H
#define TB_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"

enum req_status {
    REQ_OK = 0,
    REQ_HTTP_4XX,
    REQ_HTTP_5XX,
    REQ_TIMEOUT,
    REQ_CONNECT,
    REQ_STREAM_CUT,
    REQ_BAD_RESPONSE,
    REQ_CANCELLED,
    REQ_CLIENT_LIMIT, /* this machine ran out of something (file descriptors): not the server */
    REQ__COUNT
};

/* "ok", "http_4xx", "http_5xx", "timeout", "connect", "stream_cut", "bad_response", "cancelled",
 * "client_limit" */
const char *req_status_name(enum req_status s);

struct req_record {
    uint64_t id;
    int tenant;               /* index into config tenants */
    mono_ns t_due;            /* when the arrival process scheduled it */
    mono_ns t_sent;           /* handed to the transport */
    mono_ns t_first;          /* first event carrying generated (or reasoning) text */
    mono_ns t_last;           /* last such event */
    mono_ns t_end;            /* [DONE] or close */
    int target_prompt_tokens; /* what the prompt was built for */
    int prompt_tokens;        /* usage.prompt_tokens; -1 unknown */
    int target_output_tokens; /* max_tokens sent */
    int output_tokens;        /* usage.completion_tokens, else the number of text events */
    bool tokens_from_usage;   /* false: "tokens_source": "events" */
    int usage_output_tokens;  /* usage.completion_tokens as the server said it; -1 none */
    bool usage_implausible;   /* usage contradicts the events or max_tokens: output_tokens
                               * holds the event count instead (docs/METRICS.md) */
    mono_ns *events;          /* arrival time of each text-carrying event (t_first first) */
    size_t n_events;
    size_t cap_events;
    enum req_status status;
    long http_status;     /* 0 = none received */
    char *error;          /* owned; NULL when ok */
    char response_id[64]; /* the server's id of the response ("cmpl-..."), "" if none */
    /* Sessions (docs/METRICS.md "Sessions"): -1 when the request is not part of one. */
    int session;      /* the session (user conversation) within the tenant's point */
    int turn;         /* 0 = the conversation's first request */
    mono_ns think_ns; /* the think time drawn before this turn (0 for a first turn) */
    /* Reasoning models: events carrying only reasoning text come before the answer. */
    mono_ns t_first_answer;     /* first event carrying answer text (content / text) */
    size_t n_reasoning_events;  /* text events that carried reasoning text and no answer */
    int usage_reasoning_tokens; /* usage.completion_tokens_details.reasoning_tokens; -1 none */
    int cached_tokens;          /* usage.prompt_tokens_details.cached_tokens; -1 none */
    /* Sent during the point's warm-up (requests.warmup_requests / warmup_s): recorded, left
     * out of every statistic (docs/METRICS.md "Warm-up"). */
    bool warmup;
};

void req_record_init(struct req_record *r);
void req_record_release(struct req_record *r); /* frees events and error */
/* Makes room for n event times (the client reserves max_tokens up front so the hot path
 * does not reallocate); aborts on OOM. */
void req_record_reserve_events(struct req_record *r, size_t n);
/* Appends an event time (aborts on OOM: bounded by max_tokens). */
void req_record_add_event(struct req_record *r, mono_ns t);
/* Sets status and a formatted error message (replacing any earlier one). */
void req_record_fail(struct req_record *r, enum req_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
