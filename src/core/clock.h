/*
 * clock.h - the program's one clock (CLOCK_MONOTONIC, integer nanoseconds).
 * Wall-clock time is used only to stamp a run's start in reports.
 */
#ifndef TB_CLOCK_H
#define TB_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef uint64_t mono_ns; /* CLOCK_MONOTONIC nanoseconds */

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull

static inline mono_ns clock_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (mono_ns)ts.tv_sec * NS_PER_S + (mono_ns)ts.tv_nsec;
}

/* Seconds from 'from' to 'to' (negative if 'to' is earlier). */
static inline double ns_diff_s(mono_ns from, mono_ns to)
{
    return ((double)(int64_t)(to - from)) / 1e9;
}

static inline mono_ns s_to_ns(double s)
{
    return s <= 0 ? 0 : (mono_ns)(s * 1e9 + 0.5);
}

/* Current UTC time as ISO-8601 ("2026-11-28T12:46:49Z") into buf. */
void clock_wall_iso(char *buf, size_t len);
/* Current UTC time as "YYYYmmdd-HHMMSS" for file names. */
void clock_wall_stamp(char *buf, size_t len);
/* Sleep for ns nanoseconds (restarts on EINTR unless *stop becomes nonzero). */
void clock_sleep_ns(mono_ns ns);

#endif
