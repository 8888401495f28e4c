/* run.h - `testbench run --config FILE`: the benchmark runner, and the same as a call for
 * commands that drive runs of their own (study). */
#ifndef TB_RUN_H
#define TB_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config/config.h"
#include "core/clock.h"
#include "runner/metrics.h"
#include "telemetry/telemetry.h"

/* Distributed load (src/scale/load.h): this process is one of n workers that share each
 * point's arrivals. Every worker builds the same seeded schedule and keeps arrival k (a
 * request, or a session with all its turns) when k % n == rank; a concurrency cap c is split
 * (c / n each, one more for the ranks below c % n). The hooks run on the run's thread between
 * points, except describe, which runs wherever the files are flushed (a checkpoint thread). */
struct run_share {
    int rank, n;
    /* The point's prompts are ready: *start (this machine's clock) is when every worker's
     * point begins. 0, or -errno: the run ends there (the hook says why). */
    int (*point_begin)(void *ctx, size_t point, mono_ns *start);
    /* The point's requests are done (before its results are added). */
    void (*point_end)(void *ctx, size_t point);
    /* detailed.json's "load" object (a new reference; NULL = null). */
    json_t *(*describe)(void *ctx);
    void *ctx;
};

/* What the command line can override (borrowed strings; NULL = as in the config). */
struct run_options {
    const char *endpoint;
    const char *model;
    const char *output_dir;
    bool sim;          /* serve the config with the built-in simulator */
    bool quiet;        /* no progress, tables or info lines */
    double wait_s;     /* how long to wait for the server to answer (default 5 in run) */
    bool keep_handler; /* a second Ctrl-C does not kill the process (the caller has servers
                          to stop); the first one always ends the run with partial files */
    int threads;       /* loop threads for the transfers; 0 = from the load (run.c) */
    /* Names the run: the progress line's name for the point (NULL = "point i/n") and the
     * prefix of its warnings, so that a note about one point says which (a study's setup and
     * user count, a tenancy strategy's run). */
    const char *label;
    /* The servers run in this process (a caller's simulators): each stream then costs two
     * descriptors, which the preflight counts. `sim` implies it. */
    bool server_in_process;
    bool heartbeat; /* progress (a line every 30 s outside a terminal) even when quiet */
    const struct run_share *share; /* borrowed; NULL = this process makes the whole load */
};

/* One measured point (tenant "default", or the first tenant's). */
struct run_point {
    int context_length; /* 0 = none */
    int concurrency;    /* 0 = no cap */
    double rate;        /* INFINITY = closed loop */
    bool client_distorted;
    bool partial;
    const char *ended_by; /* static: "requests", "duration", "decided", "interrupted" */
    struct point_summary summary;
    bool have_telemetry;
    struct telemetry_window telemetry;
};

struct run_outcome {
    int exit_code; /* as `testbench run` would exit (core/exitcode.h) */
    struct run_point *points;
    size_t n_points;
    char *detailed_path, *summary_path, *telemetry_path; /* NULL when no file was opened */
};

/* Runs cfg (taken: released before the call returns, also on error) with the overrides in o,
 * writing the usual result files. Returns out->exit_code; out is filled either way and is
 * released with run_outcome_release(). SIGINT/SIGTERM during the call end it as Ctrl-C does
 * in `testbench run` (TB_EXIT_INTERRUPTED); the caller's handlers are restored afterwards. */
int run_config(struct config *cfg, const struct run_options *o, struct run_outcome *out);
void run_outcome_release(struct run_outcome *o);

/* The seed from which a point's tenant draws `what` ("lengths", "prompt", "schedule"), as the
 * run derives it from benchmark.seed: a study's plan draws the same request lengths as the probe
 * it predicts (point 0, tenant 0). */
uint64_t run_point_seed(uint64_t seed, size_t point, size_t tenant, const char *what);

/* Parses `testbench run`'s own options (argv[0] is the command's name): *config and o's
 * strings point into argv. 0, or -EINVAL (said). */
int run_parse_args(int argc, char **argv, const char **config, struct run_options *o);

/* Serves cfg's model with the built-in simulator (server.sim) on 127.0.0.1, any free port,
 * as `run --sim` does: *out is stopped with sim_server_stop(). 0; -EINVAL, -ENOENT or -ENOSPC
 * for a setup the engine refuses (a usage error); another -errno otherwise (said). */
struct sim_server;
int run_sim_start(const struct config *cfg, bool quiet, struct sim_server **out);

int run_main(int argc, char **argv);

#endif
