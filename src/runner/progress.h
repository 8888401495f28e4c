/*
 * progress.h - the live progress line (redrawn on a terminal; outside one, a heartbeat line every
 * 30 s, TESTBENCH_HEARTBEAT_S) and the end-of-point table.
 */
#ifndef TB_PROGRESS_H
#define TB_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/clock.h"
#include "runner/metrics.h"
#include "runner/results.h"

/* Seconds between heartbeat lines when stderr is not a terminal. */
#define PROGRESS_HEARTBEAT_S 30.0

struct progress {
    bool enabled;      /* not --quiet (or a caller that wants the heartbeat) */
    bool lines;        /* stderr is not a terminal: a whole line every heartbeat */
    mono_ns next_line; /* when the next heartbeat line is due */
    const char *label; /* e.g. "point 2/6" */
    size_t total;
    size_t done;
    size_t failed;
    long tokens; /* text events received so far (set by the caller) */
    mono_ns start;
    long last_tokens; /* for the live rate */
    mono_ns last_t;
    double rate; /* tok/s over the last interval */
};

void progress_begin(struct progress *p, bool enabled, const char *label, size_t total);
/* Redraws the line, or prints a heartbeat line when one is due (call about once a second). */
void progress_draw(struct progress *p);
void progress_end(struct progress *p); /* clears the line */
/* A short human summary of a point and tenant, to f. */
void progress_print_summary(FILE *f, const struct point_info *pi, const struct point_summary *s,
                            const struct telemetry_window *tw);

#endif
