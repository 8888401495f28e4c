/*
 * verdict.h - a point against its SLO, with the evidence behind it (docs/METRICS.md
 * "Verdicts"): each objective's quantile at slo.percentile over the requests judged, where a
 * failed request counts as beyond every limit; the distribution-free confidence interval of that
 * quantile (order statistics, core/stats.h); whether the interval puts the verdict beyond doubt;
 * and the words for it. The same rule serves run, study, tenancy, report and compare.
 */
#ifndef TB_VERDICT_H
#define TB_VERDICT_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/stats.h"
#include "runner/record.h"

enum slo_objective { OBJ_TTFT, OBJ_ITL, OBJ_TPOT, OBJ_E2E, OBJ__COUNT };

/* "ttft", "itl", "tpot", "e2e" (as in slo.*_ms and the summary's fields). */
const char *slo_objective_name(enum slo_objective o);
/* "TTFT", "ITL", "TPOT", "E2E" (for people). */
const char *slo_objective_label(enum slo_objective o);

struct objective_verdict {
    bool present;     /* the SLO sets this objective */
    double limit_ms;  /* the objective */
    size_t n;         /* values judged (a failed request is one INFINITY) */
    double value_ms;  /* the quantile; INFINITY once failures reach its rank; NAN: no value */
    double ci_low_ms; /* the interval's ends; NAN: that end needs more values */
    double ci_high_ms;
    bool met;     /* value_ms <= limit_ms */
    bool decided; /* the whole interval lies on that side of the limit */
};

struct slo_verdict {
    bool has_slo;            /* some objective is set; nothing else is filled without one */
    double percentile;       /* e.g. 95 */
    double confidence;       /* the interval's level, e.g. 0.95 */
    size_t requests;         /* judged: issued, warm-up left out */
    size_t failed;           /* failed among them */
    enum req_status failure; /* their most frequent class (REQ_OK when none failed) */
    size_t min_requests;     /* the fewest that can decide "met" (slo_cfg_min_requests) */
    bool met;                /* every objective's quantile within its limit */
    bool decided;            /* met: every interval below its limit; missed: one above */
    int shown;               /* the objective the one-line verdict shows; -1 none */
    struct objective_verdict obj[OBJ__COUNT];
};

/* Values of one request for each objective of slo, appended to d[OBJ__COUNT]: TTFT, TPOT
 * and E2E of a completed request (no value: left out; a completed request that never gave a
 * first token counts as INFINITY against a TTFT objective), every ITL gap, and one INFINITY per
 * present objective for a failed request. */
void slo_samples_add(struct dvec d[OBJ__COUNT], const struct req_record *r,
                     const struct slo_cfg *slo);
/* The same from a request's figures in seconds (a result file's record: report, compare):
 * ok false for a failed request; NAN for a value it does not have. */
void slo_samples_add_values(struct dvec d[OBJ__COUNT], const struct slo_cfg *slo, bool ok,
                            double ttft_s, double tpot_s, double e2e_s);
/* One ITL gap of a completed request (seconds). */
void slo_samples_add_gap(struct dvec d[OBJ__COUNT], const struct slo_cfg *slo, double gap_s);
/* Judges the samples (sorted in place) of `requests` requests, `failed` of them failed, with
 * failures counted by class in by_class[REQ__COUNT] (may be NULL). slo NULL or without
 * objectives: v->has_slo false. */
void slo_verdict_judge(struct slo_verdict *v, const struct slo_cfg *slo, struct dvec d[OBJ__COUNT],
                       size_t requests, size_t failed, const size_t *by_class);
/* The same with each end of the interval at error alpha (the stop rule's early look). */
void slo_verdict_judge_at(struct slo_verdict *v, const struct slo_cfg *slo,
                          struct dvec d[OBJ__COUNT], size_t requests, size_t failed,
                          const size_t *by_class, double alpha);

/* The verdict as stored in slo_verdict: "" (no SLO), "met", or "missed: " and each reason:
 * "13 of 20 failed (http_4xx)" when failures alone reach the percentile, else each objective
 * missed ("ttft p95 2345.6 ms > 2000 ms") and, after them, "2 of 240 failed (http_5xx)". */
void slo_verdict_text(const struct slo_verdict *v, char *buf, size_t len);
/* One line for people, e.g. "met: p95 TTFT 480.2 ms [455.1, 495.0] <= 500 ms (95 % CI, 240
 * requests)", "missed: 13 of 20 failed (http_4xx)", "undecided (met by the estimate): ...",
 * "no SLO set". */
void slo_verdict_line(const struct slo_verdict *v, char *buf, size_t len);
/* The evidence a matrix cell shows beside its verdict, e.g. "p95 TPOT 19.6 ms, 95 % CI [18.8,
 * 21.0], 72 requests"; "undecided: " first when the interval holds a limit; "3 of 20 failed"
 * when failures decide it; "" with no SLO. */
void slo_verdict_evidence(const struct slo_verdict *v, char *buf, size_t len);
/* "met", "missed", "undecided" or "" (no SLO): the state alone, for files. */
const char *slo_verdict_state(const struct slo_verdict *v);

/*
 * The stop rule (requests.stop_when_decided), per tenant, on the first requests after its
 * warm-up in the order they were sent: an early look at the first SLO_EARLY_LOOK, which can only
 * find a clear miss (its interval's lower end above a limit, each end at error SLO_EARLY_ALPHA);
 * then the look at the first min_requests, which decides either way at slo.confidence; when its
 * intervals straddle a limit the tenant runs on to num_requests (the cap), where its verdict is
 * judged once more. A wrong "met" has probability at most 1 - confidence (two looks), a wrong
 * "missed" at most that plus SLO_EARLY_ALPHA (docs/METRICS.md "Stopping when certain").
 */
#define SLO_EARLY_LOOK 10
#define SLO_EARLY_ALPHA 0.001
/* The early look's request count for slo: SLO_EARLY_LOOK, or 0 when the main look comes no
 * later (p50: 6 requests). */
size_t slo_early_look_requests(const struct slo_cfg *slo);
struct slo_stopper;

/* n_tenants tenants, none judged until slo_stopper_tenant() names them. */
struct slo_stopper *slo_stopper_new(size_t n_tenants);
void slo_stopper_free(struct slo_stopper *s);
/* Tenant t sends up to n requests (indices 0..n-1 in the order they are released) under slo;
 * slo is borrowed for the stopper's life. */
void slo_stopper_tenant(struct slo_stopper *s, size_t t, const struct slo_cfg *slo, size_t n);
/* Request `index` of tenant t finished; r (borrowed until the stopper is freed; r->warmup says
 * whether it is warm-up) no longer changes. True when every judged tenant is decided: the point
 * can stop sending. */
bool slo_stopper_done(struct slo_stopper *s, size_t t, size_t index, const struct req_record *r);
/* Request index of tenant t will never be sent (a session's turn after a failed one): the
 * sample passes over it, as the point's own verdict does, instead of waiting for it. */
void slo_stopper_skip(struct slo_stopper *s, size_t t, size_t index);
/* Whether tenant t was decided at its look (and the look's verdict, when out is not NULL). */
bool slo_stopper_decided(const struct slo_stopper *s, size_t t, struct slo_verdict *out);

#endif
