/*
 * sse.c - incremental Server-Sent Events parser (WHATWG "event stream interpretation",
 * the parts an OpenAI-compatible stream uses).
 *
 * Lines end in \n, \r\n or \r. A \r at the very end of one feed is remembered so that a
 * \n starting the next feed completes the same terminator instead of making an empty line
 * (which would dispatch an event early). "data:" lines (one optional space after the colon)
 * are joined with \n; a blank line dispatches the event when at least one data line was
 * seen; comments (":...") and the other fields (event, id, retry, unknown) are ignored.
 *
 * Copies: a line wholly inside one feed is parsed in place; only a line split across feeds
 * is gathered in p->line. The data of an event is gathered in p->data, which is also where
 * the NUL terminator for the callback comes from. Both buffers are bounded by max_line
 * (P6): a peer that never sends a newline gets -E2BIG, which is sticky until reset.
 *
 * Deviations from WHATWG, on purpose: a leading UTF-8 BOM is not stripped (no OpenAI
 * server sends one), and sse_parser_finish dispatches a last event that lacks its blank
 * line (some servers end with "data: [DONE]\n" and close), as sse.h promises.
 */
#include "runner/sse.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

struct sse_parser {
    sse_event_fn cb;
    void *ctx;
    size_t max_line;
    struct buf line; /* a partial line carried over from the previous feed */
    struct buf data; /* the current event's data lines, joined with \n */
    bool has_data;   /* a data field was seen since the last dispatch */
    bool skip_lf;    /* the last feed ended in \r: a leading \n belongs to it */
    int err;         /* sticky -E2BIG */
};

int sse_parser_new(struct sse_parser **out, size_t max_line, sse_event_fn cb, void *ctx)
{
    if (!out || !cb || max_line == 0)
        return -EINVAL;
    struct sse_parser *p = xcalloc(1, sizeof(*p));
    p->cb = cb;
    p->ctx = ctx;
    p->max_line = max_line;
    buf_init(&p->line, max_line);
    buf_init(&p->data, max_line);
    *out = p;
    return 0;
}

void sse_parser_reset(struct sse_parser *p)
{
    buf_reset(&p->line);
    buf_reset(&p->data);
    p->has_data = false;
    p->skip_lf = false;
    p->err = 0;
}

void sse_parser_free(struct sse_parser *p)
{
    if (!p)
        return;
    buf_release(&p->line);
    buf_release(&p->data);
    free(p);
}

static int sse_dispatch(struct sse_parser *p)
{
    if (!p->has_data)
        return 0;
    p->has_data = false;
    /* buf keeps data NUL-terminated once allocated; "data:" alone leaves it unallocated. */
    const char *d = p->data.data ? p->data.data : "";
    size_t n = p->data.len;
    int rc = p->cb(p->ctx, d, n);
    buf_reset(&p->data);
    return rc;
}

/* One complete line, terminator removed. */
static int sse_line(struct sse_parser *p, const char *s, size_t n)
{
    if (n == 0)
        return sse_dispatch(p);
    if (s[0] == ':')
        return 0; /* comment, e.g. keep-alive pings */
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    if (flen != 4 || memcmp(s, "data", 4) != 0)
        return 0; /* event, id, retry and unknown fields carry nothing we measure */
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    if (vlen && v[0] == ' ') {
        v++;
        vlen--;
    }
    int rc = 0;
    if (p->has_data)
        rc = buf_append(&p->data, "\n", 1);
    if (!rc)
        rc = buf_append(&p->data, v, vlen);
    if (rc) {
        p->err = rc == -ENOMEM ? -ENOMEM : -E2BIG;
        return p->err;
    }
    p->has_data = true;
    return 0;
}

/* Index of the first \r or \n in s[0..n), or n. */
static size_t find_eol(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\n' || ch == '\r')
            return i;
    }
    return n;
}

int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len)
{
    if (p->err)
        return p->err;
    size_t i = 0;
    if (p->skip_lf && len > 0) {
        p->skip_lf = false;
        if (buf[0] == '\n')
            i = 1;
    }
    while (i < len) {
        size_t rest = len - i;
        size_t eol = find_eol(buf + i, rest);
        if (eol == rest) {
            /* No terminator in this feed: keep the partial line for the next one. */
            if (p->line.len + rest > p->max_line) {
                p->err = -E2BIG;
                return p->err;
            }
            if (buf_append(&p->line, buf + i, rest)) {
                p->err = -ENOMEM;
                return p->err;
            }
            return 0;
        }
        int rc;
        if (p->line.len) {
            if (p->line.len + eol > p->max_line) {
                p->err = -E2BIG;
                return p->err;
            }
            if (buf_append(&p->line, buf + i, eol)) {
                p->err = -ENOMEM;
                return p->err;
            }
            rc = sse_line(p, p->line.data, p->line.len);
            buf_reset(&p->line);
        } else {
            if (eol > p->max_line) {
                p->err = -E2BIG;
                return p->err;
            }
            rc = sse_line(p, buf + i, eol);
        }
        i += eol + 1;
        if (buf[i - 1] == '\r') {
            if (i < len) {
                if (buf[i] == '\n')
                    i++;
            } else {
                p->skip_lf = true;
            }
        }
        if (rc)
            return rc;
    }
    return 0;
}

int sse_parser_finish(struct sse_parser *p)
{
    if (p->err)
        return p->err;
    if (p->line.len) {
        int rc = sse_line(p, p->line.data, p->line.len);
        buf_reset(&p->line);
        if (rc)
            return rc;
    }
    p->skip_lf = false;
    return sse_dispatch(p);
}
