/*
 * tsim.h - several tenants on several engine instances in virtual time: the planner's loop
 * (src/plan/plan.c) generalised to N engines, where instances on one GPU by memory fraction
 * share it through an engine/share.h time-slicing rule and MIG slices or separate GPUs do not.
 * Tenants send closed-loop (users) or open-loop Poisson (rate) requests of fixed lengths.
 */
#ifndef TB_TENANCY_TSIM_H
#define TB_TENANCY_TSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/stats.h"
#include "core/xalloc.h"

struct engine;

struct tsim_tenant {
    int instance;  /* index into the instances */
    int users;     /* closed-loop users; 0 = open loop at 'rate' */
    double rate;   /* requests/s, Poisson, when users == 0 */
    int prompt;    /* tokens per request */
    int output;    /* tokens per request */
    int requests;  /* how many it sends */
    double lora_s; /* extra GPU time per step in which this tenant's adapter runs (0: none) */
    struct slo_cfg slo;
};

struct tsim_instance {
    struct engine *e; /* borrowed */
    int gpu;          /* time-sliced GPU index (instances with the same index share it), or
                         -1 for a GPU of its own (a MIG slice, a separate card) */
};

/* Per-tenant results; the distributions are seconds over completed requests. */
struct tsim_result {
    struct dist ttft, tpot, itl, e2e;
    double at_pct[4];      /* TTFT, ITL, TPOT, E2E at slo.percentile (s) */
    int completed, met;    /* requests completed / meeting every objective */
    double attainment_pct; /* met / sent x 100 */
    double goodput_rps;    /* met / window */
    double output_tps;     /* output tokens / window */
    double window_s;       /* first request sent to last completed */
    long output_tokens, prompt_tokens;
    bool meets_slo; /* every objective at slo.percentile (the runner's verdict rule) */
};

struct tsim_gpu_stats {
    double busy_s, wait_s;
};

/* Runs the tenants to completion. results: n_tenants entries; gpu_stats (may be NULL): one per
 * time-sliced GPU index up to max_gpu (inclusive). 0, or -EINVAL with err (a request that does
 * not fit its engine). seed: open-loop arrival times. */
MUST_USE int tsim_run(struct tsim_instance *inst, size_t n_inst, const struct tsim_tenant *ten,
                      size_t n_ten, uint64_t seed, struct tsim_result *results,
                      struct tsim_gpu_stats *gpu_stats, int max_gpu, char *err, size_t errlen);

#endif
