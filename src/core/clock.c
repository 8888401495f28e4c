#include "core/clock.h"

#include <errno.h>

static void wall_format(char *buf, size_t len, const char *fmt)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    if (strftime(buf, len, fmt, &tm) == 0 && len)
        buf[0] = '\0';
}

void clock_wall_iso(char *buf, size_t len)
{
    wall_format(buf, len, "%Y-%m-%dT%H:%M:%SZ");
}

void clock_wall_stamp(char *buf, size_t len)
{
    wall_format(buf, len, "%Y%m%d-%H%M%S");
}

void clock_sleep_ns(mono_ns ns)
{
    struct timespec ts = {(time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}
