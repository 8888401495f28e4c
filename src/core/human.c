/* human.c - durations and numbers for people (human.h). */
#include "core/human.h"

#include <math.h>
#include <stdio.h>

const char *human_ms(double ms, char *buf, size_t len)
{
    if (isnan(ms) || ms < 0)
        snprintf(buf, len, "%s", HUMAN_NONE);
    else if (isinf(ms))
        snprintf(buf, len, "inf");
    else if (ms < 100)
        snprintf(buf, len, "%.1f ms", ms);
    else if (ms < 10000)
        snprintf(buf, len, "%.0f ms", ms);
    else if (ms < 600000)
        snprintf(buf, len, "%.1f s", ms / 1e3);
    else if (ms < 7200000)
        snprintf(buf, len, "%.1f min", ms / 60e3);
    else
        snprintf(buf, len, "%.1f h", ms / 3600e3);
    return buf;
}

const char *human_num(double x, int decimals, char *buf, size_t len)
{
    if (isnan(x))
        snprintf(buf, len, "%s", HUMAN_NONE);
    else
        snprintf(buf, len, "%.*f", decimals, x);
    return buf;
}
