/*
 * xalloc.h - two-tier allocation: x* abort with a message on OOM for small,
 * fixed-size objects; try_alloc_array checks overflow for sizes that come from input.
 */
#ifndef TB_XALLOC_H
#define TB_XALLOC_H

#include <stddef.h>

#define MUST_USE __attribute__((warn_unused_result))

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* Grows an array: returns p resized to n elements of size bytes, aborting on overflow/OOM. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s); /* NULL -> NULL */
char *xstrndup(const char *s, size_t n);
/* printf into a new string the caller free()s. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 0, -EOVERFLOW or -ENOMEM; *out untouched on error. */
MUST_USE int try_alloc_array(void **out, size_t n, size_t size);

#endif
