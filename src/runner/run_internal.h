/*
 * run_internal.h - what the runner's own modules share: the run's state (run.c sets it up
 * and tears it down) and one point's run (point.c). Not for other rooms: they call run.h.
 */
#ifndef TB_RUN_INTERNAL_H
#define TB_RUN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "config/config.h"
#include "core/clock.h"
#include "runner/run.h"

struct client;
struct prompt_builder;
struct ptimer_set;
struct results_writer;
struct sim_server;
struct telemetry;
struct workload;

struct runner {
    struct config cfg;
    struct run_options args;
    struct run_outcome *out; /* points measured, for callers of run_config() */
    struct event_base *base;
    struct ptimer_set *timers; /* the run loop's precise timers (releases, heartbeat) */
    struct client *client;
    struct telemetry **telems; /* [0]: GPUs, host and the first endpoint's /metrics;
                                  [k > 0]: another endpoint's /metrics (partitioned
                                  tenants, one server each) */
    char **telem_endpoint;
    size_t n_telems;
    size_t *tenant_telem; /* per tenant: its endpoint's index in telems */
    struct results_writer *rw;
    struct prompt_builder **builders; /* per tenant */
    struct workload **workloads;      /* per tenant: lengths, datasets, traces, RAG */
    struct sim_server *sim;
    const char *api_key;
    char **tenant_endpoint; /* resolved per tenant (sim overrides) */
    char **tenant_model;
    long *tenant_max_len;
    bool *tenant_ignore_eos; /* the server takes vLLM's ignore_eos/min_tokens */
    mono_ns t0;
    size_t completed_total;
    bool write_failed;     /* the last flush failed: results are held in memory */
    char write_error[512]; /* its message, said once until it changes */
};

/* One point of the sweep. */
struct point_key {
    size_t index;
    size_t count;
    int context;     /* 0 = none */
    int concurrency; /* top-level sweep value */
    double rate;
};

/* Runs one point, all tenants at once: plans every prompt, then measures, then adds the
 * point's results and flushes the files. 0; -E2BIG when no request of a tenant fits the
 * server's window (said); -errno when the point could not start. Ctrl-C is 0 (what completed
 * is kept). */
int point_run(struct runner *r, const struct point_key *k);

/* Rewrites the result files (telemetry sampled first). 0, or -errno (said once). */
int runner_flush(struct runner *r);

/* SIGINT, SIGTERM or SIGHUP arrived during run_config(). */
bool run_interrupted(void);

/* The seed of a point's tenant for `what` (run_point_seed). */
uint64_t run_seed(const struct runner *r, size_t point, size_t tenant, const char *what);

#endif
