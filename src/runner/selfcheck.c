/*
 * selfcheck.c - the client's self-check: its lags against what the point measured
 * (selfcheck.h; docs/METRICS.md "The client's self-check").
 */
#include "runner/selfcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The limit for a lag judged against ref (seconds, NAN when unknown). */
static double limit_for(double ref)
{
    double l = isfinite(ref) && ref > 0 ? SELFCHECK_SHARE * ref : 0;
    return l > SELFCHECK_FLOOR_S ? l : SELFCHECK_FLOOR_S;
}

/* a and b in ms with as many decimals as it takes (2 to 4) for a > b to read true. */
static void fmt_ordered(char *sa, char *sb, size_t cap, double a, double b)
{
    for (int d = 2; d <= 4; d++) {
        snprintf(sa, cap, "%.*f", d, a * 1e3);
        snprintf(sb, cap, "%.*f", d, b * 1e3);
        if (strtod(sa, NULL) > strtod(sb, NULL))
            return;
    }
}

/* Appends "NAME lag p99 X ms > limit Y ms (10 % of REF p50 Z ms)" and what it may have done. */
static void say(char *buf, size_t cap, const char *name, double lag, double limit,
                const char *ref_name, double ref, const char *effect)
{
    size_t used = strlen(buf);
    if (used >= cap)
        return;
    char basis[96], l[32], m[32];
    if (isfinite(ref) && ref > 0 && SELFCHECK_SHARE * ref >= SELFCHECK_FLOOR_S)
        snprintf(basis, sizeof(basis), "%.0f %% of %s p50 %.2f ms", SELFCHECK_SHARE * 100, ref_name,
                 ref * 1e3);
    else
        snprintf(basis, sizeof(basis), "the %.0f ms floor", SELFCHECK_FLOOR_S * 1e3);
    fmt_ordered(l, m, sizeof(l), lag, limit);
    snprintf(buf + used, cap - used, "%s%s lag p99 %s ms > %s ms (%s): %s", used ? "; " : "", name,
             l, m, basis, effect);
}

void selfcheck_judge(struct selfcheck *out, const struct dist *dispatch_lag,
                     const struct dist *loop_lag, const struct point_summary *s)
{
    memset(out, 0, sizeof(*out));
    double itl = s->itl.n ? s->itl.p50 : NAN, ttft = s->ttft.n ? s->ttft.p50 : NAN;
    const char *loop_ref_name = isfinite(itl) ? "ITL" : "TTFT";
    double loop_ref = isfinite(itl) ? itl : ttft;
    double loop = loop_lag->n ? loop_lag->p99 : 0, disp = dispatch_lag->n ? dispatch_lag->p99 : 0;
    double loop_limit = limit_for(loop_ref), disp_limit = limit_for(ttft);
    out->error_s = loop > disp ? loop : disp;
    char effect[160];
    if (loop > loop_limit) {
        snprintf(effect, sizeof(effect),
                 "1 %% of token times may be late by up to %.2f ms (TTFT, ITL and E2E tails)",
                 loop * 1e3);
        say(out->why, sizeof(out->why), "loop", loop, loop_limit, loop_ref_name, loop_ref, effect);
        out->distorted = true;
    }
    if (disp > disp_limit) {
        snprintf(effect, sizeof(effect),
                 "1 %% of requests went out more than %.2f ms after they were due "
                 "(in ttft_sched and queue_delay)",
                 disp * 1e3);
        say(out->why, sizeof(out->why), "dispatch", disp, disp_limit, "TTFT", ttft, effect);
        out->distorted = true;
    }
}
