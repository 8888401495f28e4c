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
#include "runner/verdict.h"

struct point_summary {
    size_t issued;    /* records given (failures included), warm-up left out */
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
    size_t warmup;        /* warm-up records given: counted here, in no statistic */
    size_t warmup_failed; /* failed among them */
    size_t slo_met;
    double goodput;              /* met / window; NAN without an SLO */
    double slo_attainment_pct;   /* met / issued * 100 (failures are misses); NAN without one */
    size_t tokens_from_events;   /* completed requests without usage */
    size_t usage_implausible;    /* requests whose usage contradicted their events/max_tokens */
    double prompt_error_max_pct; /* max |actual - target| / target over requests with usage */
    bool prompt_off_target;      /* prompt_error_max_pct > 2 */
    /* Open-loop saturation (docs/METRICS.md "Saturation"): requests/s the schedule offered and
     * the server completed over the same span shifted by the median E2E; NAN for a closed
     * loop (everything due at once). saturated: achieved below SATURATION_RATIO of offered. */
    double offered_rate, achieved_rate;
    bool saturated;
    /* The point against its SLOs at slo.percentile, failed requests counted as misses
     * (verdict.h): "" (no objective), "met", or "missed: " and why, e.g. "missed: ttft p95
     * 2345.6 ms > 2000 ms" or "missed: 13 of 20 failed (http_4xx)". */
    char slo_verdict[256];
    struct slo_verdict verdict; /* the same with its confidence interval */
    /* Reasoning models (docs/METRICS.md "Reasoning"): over completed requests. */
    struct dist ttfa;                 /* time to first answer token, from t_sent */
    struct dist reasoning_token_rate; /* per request: reasoning tokens / reasoning phase */
    struct dist answer_token_rate;    /* per request: answer decode rate */
    long reasoning_tokens_total;
    size_t reasoning_requests; /* completed requests that reasoned (reasoning tokens > 0) */
    /* usage.prompt_tokens_details.cached_tokens where the server reports it. */
    size_t cached_reported; /* completed requests that reported it */
    long cached_tokens_total;
    double cached_prompt_pct; /* sum cached / sum prompt of those requests; NAN when none */
    /* Sessions: 0 / n = 0 when the records are not session turns. */
    size_t sessions;                               /* distinct sessions among the records */
    struct dist think_time;                        /* think times before later turns */
    struct dist ttft_first_turn, ttft_later_turns; /* TTFT of turn 0 / of turns >= 1 */
};

/* Achieved below this share of the offered rate: the point is saturated. */
#define SATURATION_RATIO 0.8
/* Fewest requests for the saturation check to mean anything. */
#define SATURATION_MIN_REQUESTS 20

/* One turn index over a point's sessions (completed requests for the distributions). */
struct turn_summary {
    int turn;
    size_t completed, failed;
    struct dist ttft, ttft_sched, e2e;
    double prompt_tokens_mean; /* usage, else the target */
    double cached_prompt_pct;  /* as the point's, over this turn; NAN when not reported */
};

/* The per-turn summaries of the session records among recs: *out (caller frees) has one
 * entry per turn index up to the largest seen; returns their number (0, *out NULL, when no
 * record is a session turn). */
size_t turn_summaries_compute(struct turn_summary **out, const struct req_record *recs, size_t n);
/* A record's reasoning tokens: usage.completion_tokens_details.reasoning_tokens when given and
 * not above output_tokens (*from_usage true), else its reasoning-only events. */
int record_reasoning_tokens(const struct req_record *r, bool *from_usage);

/* One request's own latencies in seconds (docs/METRICS.md); NAN where not applicable:
 * ttft/ttft_sched need t_first; tpot needs output_tokens > 1 and t_first/t_last; e2e uses
 * t_last, or t_end for a stream that carried no text. Computed for any status (failed
 * requests keep what they measured); the summary uses completed requests only. */
struct req_latencies {
    double ttft, ttft_sched, queue_delay, tpot, e2e, e2e_sched;
    double ttfa;           /* t_first_answer - t_sent */
    double reasoning_rate; /* reasoning tokens / (t_first_answer - t_first), tokens/s */
    double answer_rate;    /* (answer tokens - 1) / (t_last - t_first_answer), tokens/s */
};
void record_latencies(const struct req_record *r, struct req_latencies *out);

/* Does one completed request meet every objective of slo? TTFT, TPOT and E2E per request;
 * ITL as the request's own gaps at slo->percentile. Failed requests never meet it. */
bool record_meets_slo(const struct req_record *r, const struct slo_cfg *slo);
/* Replaces s's verdict with v (the stop rule's look: docs/METRICS.md "Stopping when
 * certain"), and its text with v's. */
void point_summary_set_verdict(struct point_summary *s, const struct slo_verdict *v);
/* Computes s from n records. */
void point_summary_compute(struct point_summary *s, const struct req_record *recs, size_t n,
                           const struct slo_cfg *slo);

#endif
