/*
 * buf.h - a growable byte buffer with a named ceiling: a peer that never
 * sends a newline must not eat the process. Always NUL-terminated when data != NULL.
 */
#ifndef TB_BUF_H
#define TB_BUF_H

#include <stddef.h>

#include "core/xalloc.h"

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* appends that would exceed this fail with -E2BIG */
};

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b); /* frees data; b can be re-initialised */
void buf_reset(struct buf *b);   /* len = 0, memory kept */
MUST_USE int buf_append(struct buf *b, const void *p, size_t n); /* 0, -E2BIG, -ENOMEM */
MUST_USE int buf_puts(struct buf *b, const char *s);
MUST_USE int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n);    /* drops the first n bytes */
void buf_truncate(struct buf *b, size_t len); /* keeps the first len bytes (len <= b->len) */
/* Moves the bytes out to the caller (who free()s them); b is reset and reusable. */
char *buf_take(struct buf *b, size_t *len);

#endif
