/*
 * schedule.h - open-loop arrival times, fixed before a point starts so a slow server
 * cannot move when requests are due (docs/METRICS.md on coordinated omission).
 */
#ifndef TB_SCHEDULE_H
#define TB_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/xalloc.h"

/* Fills offsets[0..n) with due times in ns after the point's start, nondecreasing; the first
 * request is due at 0. poisson: exponential gaps of mean 1/rate; constant: exactly 1/rate;
 * gamma: gamma gaps with shape = burstiness and mean 1/rate; burst, or rate = INFINITY: all 0.
 * 0, or -EINVAL (rate <= 0, burstiness <= 0 for gamma). */
MUST_USE int schedule_build(mono_ns *offsets, size_t n, enum arrival a, double rate,
                            double burstiness, uint64_t seed);

#endif
