/*
 * load_records.c - a request record back from detailed.json, to the nanosecond.
 *
 * The file writes times as seconds after the run's t0 with 12 significant digits: exact
 * nanoseconds for the first 1,000 s of a run, 10 ns to 10,000 s, and so on. The latencies
 * beside them (ttft, ttft_sched, queue_delay, e2e, ttfa, each ITL gap) are written the same
 * way but are short, so they keep their nanoseconds however long the run. The record is
 * therefore rebuilt from one anchor, t_sent, and every other time is placed from the
 * latency that measures it: a pooled record's TTFT, TPOT, ITL and E2E are then exactly what
 * its worker measured, and only the anchor (the record's place on the run's clock, which a
 * merge shifts anyway) carries the file's rounding.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scale/load_internal.h"

struct rd {
    const json_t *j;
    char *err;
    size_t errlen;
    int rc;
};

static void rd_fail(struct rd *r, const char *key, const char *want)
{
    if (!r->rc)
        snprintf(r->err, r->errlen, "a request record's \"%s\" is not %s", key, want);
    r->rc = -EINVAL;
}

/* A number: true with *x set; false when null or absent. */
static bool rd_num(struct rd *r, const char *key, double *x)
{
    const json_t *v = json_object_get(r->j, key);
    if (!v || json_is_null(v))
        return false;
    if (!json_is_number(v)) {
        rd_fail(r, key, "a number");
        return false;
    }
    *x = json_number_value(v);
    return true;
}

/* An integer, or dflt when null or absent. */
static long long rd_int(struct rd *r, const char *key, long long dflt)
{
    const json_t *v = json_object_get(r->j, key);
    if (!v || json_is_null(v))
        return dflt;
    if (!json_is_integer(v)) {
        rd_fail(r, key, "an integer");
        return dflt;
    }
    return json_integer_value(v);
}

static const char *rd_str(struct rd *r, const char *key)
{
    const json_t *v = json_object_get(r->j, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        rd_fail(r, key, "a string");
        return NULL;
    }
    return json_string_value(v);
}

static int64_t ns_of(double s)
{
    return (int64_t)llround(s * 1e9);
}

/* A time from its own field (seconds after t0); 0 when it did not happen. */
static mono_ns rd_time(struct rd *r, const char *key, mono_ns t0)
{
    double s;
    return rd_num(r, key, &s) ? (mono_ns)((int64_t)t0 + ns_of(s)) : 0;
}

/* A time placed from another by a latency: from + latency, else its own field. */
static mono_ns rd_from(struct rd *r, const char *key, mono_ns t0, mono_ns from, const char *latency,
                       int sign)
{
    double l;
    mono_ns own = rd_time(r, key, t0);
    if (!own || !from || !rd_num(r, latency, &l))
        return own;
    return (mono_ns)((int64_t)from + sign * ns_of(l));
}

static void rd_times(struct rd *r, mono_ns t0, struct req_record *out)
{
    out->t_sent = rd_time(r, "t_sent", t0);
    out->t_first = rd_from(r, "t_first", t0, out->t_sent, "ttft", 1);
    out->t_last = rd_from(r, "t_last", t0, out->t_sent, "e2e", 1);
    out->t_end = rd_time(r, "t_end", t0);
    if (!out->t_last) /* e2e runs to the end of a stream that carried no text */
        out->t_end = rd_from(r, "t_end", t0, out->t_sent, "e2e", 1);
    out->t_due = out->t_first ? rd_from(r, "t_due", t0, out->t_first, "ttft_sched", -1)
                              : rd_from(r, "t_due", t0, out->t_sent, "queue_delay", -1);
    out->t_first_answer = rd_from(r, "t_first_answer", t0, out->t_sent, "ttfa", 1);
    const json_t *itl = json_object_get(r->j, "itl");
    if (itl && !json_is_array(itl))
        rd_fail(r, "itl", "an array");
    if (!out->t_first || r->rc)
        return;
    size_t n = json_array_size(itl);
    req_record_reserve_events(out, n + 1);
    mono_ns t = out->t_first;
    req_record_add_event(out, t);
    for (size_t i = 0; i < n; i++) {
        const json_t *g = json_array_get(itl, i);
        if (!json_is_number(g)) {
            rd_fail(r, "itl", "an array of numbers");
            return;
        }
        t = (mono_ns)((int64_t)t + ns_of(json_number_value(g)));
        req_record_add_event(out, t);
    }
}

static enum req_status status_of(struct rd *r, const char *name)
{
    for (int s = 0; name && s < REQ__COUNT; s++)
        if (strcmp(name, req_status_name((enum req_status)s)) == 0)
            return (enum req_status)s;
    rd_fail(r, "status", "a known status");
    return REQ_BAD_RESPONSE;
}

int load_record_from_json(const json_t *j, mono_ns t0, int tenant, struct req_record *out,
                          char *err, size_t errlen)
{
    struct rd r = {j, err, errlen, 0};
    req_record_init(out);
    if (!json_is_object(j)) {
        snprintf(err, errlen, "a request record is not an object");
        return -EINVAL;
    }
    out->id = (uint64_t)rd_int(&r, "id", 0);
    out->tenant = tenant;
    rd_times(&r, t0, out);
    out->target_prompt_tokens = (int)rd_int(&r, "target_prompt_tokens", 0);
    out->prompt_tokens = (int)rd_int(&r, "prompt_tokens", -1);
    out->target_output_tokens = (int)rd_int(&r, "target_output_tokens", 0);
    out->output_tokens = (int)rd_int(&r, "output_tokens", 0);
    const char *src = rd_str(&r, "tokens_source");
    out->tokens_from_usage = src && strcmp(src, "usage") == 0;
    out->usage_output_tokens = (int)rd_int(&r, "usage_output_tokens", -1);
    out->usage_implausible = json_is_true(json_object_get(j, "usage_implausible"));
    out->status = status_of(&r, rd_str(&r, "status"));
    out->http_status = (long)rd_int(&r, "http_status", 0);
    const char *e = rd_str(&r, "error");
    out->error = e ? xstrdup(e) : NULL;
    const char *rid = rd_str(&r, "response_id");
    snprintf(out->response_id, sizeof(out->response_id), "%s", rid ? rid : "");
    out->session = (int)rd_int(&r, "session", -1);
    out->turn = (int)rd_int(&r, "turn", -1);
    double think;
    out->think_ns = rd_num(&r, "think_time", &think) ? (mono_ns)ns_of(think) : 0;
    int reasoning = (int)rd_int(&r, "reasoning_tokens", 0);
    const char *rsrc = rd_str(&r, "reasoning_tokens_source");
    if (rsrc && strcmp(rsrc, "usage") == 0)
        out->usage_reasoning_tokens = reasoning;
    else
        out->n_reasoning_events = reasoning > 0 ? (size_t)reasoning : 0;
    out->cached_tokens = (int)rd_int(&r, "cached_tokens", -1);
    out->warmup = json_is_true(json_object_get(j, "warmup")); /* left out of the statistics */
    if (r.rc)
        req_record_release(out);
    return r.rc;
}

static void shift(mono_ns *t, int64_t delta)
{
    if (*t)
        *t = (mono_ns)((int64_t)*t + delta);
}

void load_record_shift(struct req_record *r, int64_t delta)
{
    shift(&r->t_due, delta);
    shift(&r->t_sent, delta);
    shift(&r->t_first, delta);
    shift(&r->t_last, delta);
    shift(&r->t_end, delta);
    shift(&r->t_first_answer, delta);
    for (size_t i = 0; i < r->n_events; i++)
        shift(&r->events[i], delta);
}
