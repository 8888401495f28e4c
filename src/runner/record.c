/*
 * record.c - the request record's lifecycle and status names.
 */
#include "runner/record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

/* Longest error message kept in a record; server bodies are cut here. */
#define RECORD_ERROR_MAX 1024

static const char *const status_names[REQ__COUNT] = {
    [REQ_OK] = "ok",
    [REQ_HTTP_4XX] = "http_4xx",
    [REQ_HTTP_5XX] = "http_5xx",
    [REQ_TIMEOUT] = "timeout",
    [REQ_CONNECT] = "connect",
    [REQ_STREAM_CUT] = "stream_cut",
    [REQ_BAD_RESPONSE] = "bad_response",
    [REQ_CANCELLED] = "cancelled",
    [REQ_CLIENT_LIMIT] = "client_limit",
};

const char *req_status_name(enum req_status s)
{
    if ((unsigned)s >= REQ__COUNT)
        return "unknown";
    return status_names[s];
}

void req_record_init(struct req_record *r)
{
    memset(r, 0, sizeof(*r));
    r->prompt_tokens = -1;
    r->usage_output_tokens = -1;
    r->status = REQ_OK;
    r->session = -1;
    r->turn = -1;
    r->usage_reasoning_tokens = -1;
    r->cached_tokens = -1;
}

void req_record_release(struct req_record *r)
{
    free(r->events);
    free(r->error);
    r->events = NULL;
    r->n_events = r->cap_events = 0;
    r->error = NULL;
}

void req_record_reserve_events(struct req_record *r, size_t n)
{
    if (n <= r->cap_events)
        return;
    r->events = xreallocarray(r->events, n, sizeof(*r->events));
    r->cap_events = n;
}

void req_record_add_event(struct req_record *r, mono_ns t)
{
    if (r->n_events == r->cap_events)
        req_record_reserve_events(r, r->cap_events ? r->cap_events * 2 : 64);
    r->events[r->n_events++] = t;
}

void req_record_fail(struct req_record *r, enum req_status s, const char *fmt, ...)
{
    char msg[RECORD_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    free(r->error);
    r->error = xstrdup(msg);
    r->status = s;
}
