/*
 * estimate.h - the run's expected length, printed before it starts (docs/METRICS.md "Warm-up,
 * run length and stopping"): per point the arrivals' span, at most duration_s, and on the
 * simulator the planner's pace for the point's requests at its concurrency cap.
 */
#ifndef TB_RUN_ESTIMATE_H
#define TB_RUN_ESTIMATE_H

#include <stdio.h>

#include "config/config.h"

/* One line to f, e.g. "estimate: 3 points of 100 requests, about 47 min (the planner's pace
 * for this simulated server)". */
void run_estimate_print(FILE *f, const struct config *c);

#endif
