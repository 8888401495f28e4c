/*
 * sse.h - an incremental Server-Sent Events parser: blind to how the byte
 * stream is split, with a bounded line size. Calls back once per complete event.
 */
#ifndef TB_SSE_H
#define TB_SSE_H

#include <stddef.h>

#include "core/xalloc.h"

#define SSE_MAX_LINE (1024 * 1024)

/* data is the event's data field (lines joined with \n), NUL-terminated; borrowed. Return
 * nonzero to stop parsing (sse_parser_feed then returns that value). */
typedef int (*sse_event_fn)(void *ctx, const char *data, size_t len);

struct sse_parser;

MUST_USE int sse_parser_new(struct sse_parser **out, size_t max_line, sse_event_fn cb, void *ctx);
/* 0, -E2BIG (a line over max_line), or the callback's nonzero value. */
MUST_USE int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len);
/* End of stream: dispatches a final event not followed by a blank line. */
MUST_USE int sse_parser_finish(struct sse_parser *p);
void sse_parser_reset(struct sse_parser *p);
void sse_parser_free(struct sse_parser *p); /* NULL is a no-op */

#endif
