/*
 * selfcheck.h - is the client the cause? A point's own lag figures judged against what the
 * point measured (docs/METRICS.md "The client's self-check").
 *
 * Two lags: the loop lag (how late the event loop ran a 1 ms heartbeat: every time the
 * client takes, a token's or a first token's, may be that late) and the dispatch lag (how
 * long after its due time a request that no concurrency cap held went out: it shifts the
 * offered load and is inside ttft_sched and queue_delay). Each p99 is compared with the
 * quantity it could corrupt: the loop lag with the ITL p50 (the smallest interval a point
 * measures; TTFT p50 when no request had two tokens), the dispatch lag with the TTFT p50.
 * A lag is too large above SELFCHECK_SHARE of that reference, and never below
 * SELFCHECK_FLOOR_S: a sub-millisecond lag is within what a shared host's scheduler does to
 * any client, and the stamps' own resolution.
 */
#ifndef TB_SELFCHECK_H
#define TB_SELFCHECK_H

#include <stdbool.h>

#include "core/stats.h"
#include "runner/metrics.h"

#define SELFCHECK_SHARE 0.10
#define SELFCHECK_FLOOR_S 0.001

struct selfcheck {
    bool distorted;
    double error_s; /* the possible error of a time the client took, at p99: the larger lag
                     * p99 (0 when neither was measured) */
    char why[400];  /* distorted: each lag over its limit with the figures it was judged on */
};

/* Judges a point (s: its summary over what was sent) from its lag samples (seconds). */
void selfcheck_judge(struct selfcheck *out, const struct dist *dispatch_lag,
                     const struct dist *loop_lag, const struct point_summary *s);

#endif
