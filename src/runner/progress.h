/*
 * progress.h - the live progress line (terminal only) and the end-of-point table.
 */
#ifndef TB_PROGRESS_H
#define TB_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/clock.h"
#include "runner/metrics.h"
#include "runner/results.h"

struct progress {
    bool enabled;      /* stderr is a terminal and not --quiet */
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
void progress_draw(struct progress *p); /* redraws the line (call about once a second) */
void progress_end(struct progress *p);  /* clears the line */
/* A short human summary of a point and tenant, to f. */
void progress_print_summary(FILE *f, const struct point_info *pi, const struct point_summary *s,
                            const struct telemetry_window *tw);

#endif
