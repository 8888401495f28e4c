/*
 * metrics.h - a point's summary from its request records, per docs/METRICS.md.
 * All latencies in seconds; unknown values NAN.
 */
#ifndef TB_METRICS_H
#define TB_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/stats.h"
#include "runner/record.h"

struct point_summary {
    size_t issued;    /* records given (failures included) */
    size_t completed; /* status ok */
    size_t failed;
    size_t failed_by_class[REQ__COUNT];
    mono_ns window_start;      /* first t_sent */
    mono_ns window_end;        /* last t_end */
    double duration_s;         /* window length */
    double request_throughput; /* completed / window */
    double output_throughput;  /* sum output tokens of completed / window */
    double total_throughput;   /* sum (prompt + output) of completed / window */
    long prompt_tokens_total;  /* completed requests, usage where known */
    long output_tokens_total;
    struct dist ttft, ttft_sched, queue_delay, itl, tpot, e2e, e2e_sched, user_token_rate;
    size_t slo_met;
    double goodput;              /* met / window */
    double slo_attainment_pct;   /* met / issued * 100 */
    size_t tokens_from_events;   /* completed requests without usage */
    size_t usage_implausible;    /* requests whose usage contradicted their events/max_tokens */
    double prompt_error_max_pct; /* max |actual - target| / target over requests with usage */
    bool prompt_off_target;      /* prompt_error_max_pct > 2 */
    /* The point against its SLOs at slo.percentile: "" (no objective), "met", or "missed: "
     * and each objective missed, e.g. "missed: ttft p95 2345.6 ms > 2000 ms". */
    char slo_verdict[256];
};

/* One request's own latencies in seconds (docs/METRICS.md); NAN where not applicable:
 * ttft/ttft_sched need t_first; tpot needs output_tokens > 1 and t_first/t_last; e2e uses
 * t_last, or t_end for a stream that carried no text. Computed for any status (failed
 * requests keep what they measured); the summary uses completed requests only. */
struct req_latencies {
    double ttft, ttft_sched, queue_delay, tpot, e2e, e2e_sched;
};
void record_latencies(const struct req_record *r, struct req_latencies *out);

/* Does one completed request meet every objective of slo? TTFT, TPOT and E2E per request;
 * ITL as the request's own gaps at slo->percentile. Failed requests never meet it. */
bool record_meets_slo(const struct req_record *r, const struct slo_cfg *slo);
/* Computes s from n records. */
void point_summary_compute(struct point_summary *s, const struct req_record *recs, size_t n,
                           const struct slo_cfg *slo);

#endif
