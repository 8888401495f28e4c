/*
 * jsonx.h - small jansson helpers used wherever results become JSON: the files promise
 * null for an unknown value, never 0 (docs/OUTPUTS.md), and jansson refuses NAN and infinities.
 */
#ifndef TB_JSONX_H
#define TB_JSONX_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/text.h"

/* A number, or null when it is not finite. New reference. */
static inline json_t *json_real_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

/* A string, or null for NULL; bytes that are not valid UTF-8 become U+FFFD (jansson refuses
 * such a string, which would drop the key). New reference. */
static inline json_t *json_string_or_null(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *fixed = utf8_repair(s, strlen(s));
    j = json_string(fixed);
    free(fixed);
    return j;
}

/* "path:line:column: what" for a JSON parse error, or "path: what" when jansson gives it no
 * place (line -1: an empty or unreadable file, running out of memory). */
static inline void jsonx_error_format(char *buf, size_t len, const char *path,
                                      const json_error_t *je)
{
    if (je->line > 0)
        snprintf(buf, len, "%s:%d:%d: %s", path, je->line, je->column, je->text);
    else
        snprintf(buf, len, "%s: %s", path, je->text);
}

#endif
