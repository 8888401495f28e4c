/*
 * trace.c - `--trace FILE`: one JSON line per finished request, for checking a client's
 * timings against the server's:
 *   {"id":"cmpl-..","arrival":T,"prefill_start":T|null,"tokens":[T,...],"finish":T,
 *    "finish_reason":"length","prompt_tokens":N,"completion_tokens":K}
 * Every T is absolute CLOCK_MONOTONIC seconds (not relative to the server's start), so a
 * client on the same machine can compare them with its own CLOCK_MONOTONIC stamps.
 * "tokens" has one time per emitted token (tokens of one step share the step's time).
 * Lines are buffered in memory and written when the buffer passes TRACE_FLUSH_BYTES, on
 * sim_trace_flush (the server calls it every second) and at close.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sim/sim_internal.h"

#define TRACE_FLUSH_BYTES (1u << 20)
#define TRACE_MAX_BYTES (256u << 20)

struct sim_trace {
    FILE *f;
    struct buf pending;
    bool failed;
};

int sim_trace_open(struct sim_trace **out, const char *path)
{
    struct sim_trace *t = xcalloc(1, sizeof(*t));
    t->f = fopen(path, "w");
    if (!t->f) {
        int rc = -errno;
        free(t);
        return rc;
    }
    buf_init(&t->pending, TRACE_MAX_BYTES);
    *out = t;
    return 0;
}

static int put_time(struct buf *b, double t)
{
    if (t < 0)
        return buf_puts(b, "null");
    return buf_printf(b, "%.6f", t);
}

void sim_trace_write(struct sim_trace *t, const char *id, double arrival, double prefill_start,
                     const double *token_times, size_t n_tokens, double finish,
                     const char *finish_reason, size_t prompt_tokens)
{
    if (!t)
        return;
    struct buf *b = &t->pending;
    size_t mark = b->len;
    int rc = buf_printf(b, "{\"id\":\"%s\",\"arrival\":", id);
    rc = rc ? rc : put_time(b, arrival);
    rc = rc ? rc : buf_puts(b, ",\"prefill_start\":");
    rc = rc ? rc : put_time(b, prefill_start);
    rc = rc ? rc : buf_puts(b, ",\"tokens\":[");
    for (size_t i = 0; !rc && i < n_tokens; i++)
        rc = buf_printf(b, i ? ",%.6f" : "%.6f", token_times[i]);
    rc = rc ? rc : buf_puts(b, "],\"finish\":");
    rc = rc ? rc : put_time(b, finish);
    rc = rc ? rc
            : buf_printf(b,
                         ",\"finish_reason\":\"%s\",\"prompt_tokens\":%zu,"
                         "\"completion_tokens\":%zu}\n",
                         finish_reason, prompt_tokens, n_tokens);
    if (rc) {
        /* Drop a line that does not fit rather than leave half of it. */
        buf_truncate(b, mark);
        if (!t->failed)
            log_warn("trace: buffer full, dropping lines");
        t->failed = true;
        return;
    }
    if (b->len >= TRACE_FLUSH_BYTES)
        sim_trace_flush(t);
}

void sim_trace_flush(struct sim_trace *t)
{
    if (!t || t->pending.len == 0)
        return;
    if (fwrite(t->pending.data, 1, t->pending.len, t->f) != t->pending.len && !t->failed) {
        log_warn("trace: write failed: %s", strerror(errno));
        t->failed = true;
    }
    fflush(t->f);
    buf_reset(&t->pending);
}

void sim_trace_close(struct sim_trace *t)
{
    if (!t)
        return;
    sim_trace_flush(t);
    fclose(t->f);
    buf_release(&t->pending);
    free(t);
}
