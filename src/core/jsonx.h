/*
 * jsonx.h - small jansson helpers used wherever results become JSON: the files promise
 * null for an unknown value, never 0 (docs/OUTPUTS.md), and jansson refuses NAN and infinities.
 */
#ifndef TB_JSONX_H
#define TB_JSONX_H

#include <math.h>

#include <jansson.h>

/* A number, or null when it is not finite. New reference. */
static inline json_t *json_real_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

/* A string, or null for NULL. New reference. */
static inline json_t *json_string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

#endif
