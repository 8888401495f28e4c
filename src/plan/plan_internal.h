/*
 * plan_internal.h - what plan.c (the planner: memory plan, simulation through the virtual-time
 * driver, verdict) and plan_cli.c (`testbench plan`: arguments, tables, JSON) share. Not a
 * public interface: only src/plan/ includes it.
 */
#ifndef TB_PLAN_INTERNAL_H
#define TB_PLAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/catalog.h"
#include "config/config.h"
#include "core/stats.h"
#include "engine/calibration.h"
#include "engine/cost.h"
#include "engine/engine.h"
#include "plan/plan.h"
#include "plan/vdriver.h"

#define PLAN_MAX_LIST 32

struct plan_opts {
    const char *gpu;
    const char *model;
    const char *quants[PLAN_MAX_LIST];
    size_t n_quants;
    const char *kv_dtype;
    int windows[PLAN_MAX_LIST]; /* max_model_len values; 0 = the default */
    size_t n_windows;
    int users[PLAN_MAX_LIST];
    size_t n_users;
    int prompt_tokens; /* a request's prompt (sessions: the first turn's) */
    int output_tokens;
    int requests;        /* 0 = the policy (plan_requests_for) */
    int warmup_requests; /* the first this many are served, not judged (--warmup-requests) */
    int max_num_seqs;
    int max_num_batched_tokens;
    double gpu_memory_utilization;
    int tp;
    int p2p;          /* ENGINE_P2P_* (--p2p on|off) */
    int numa_nodes;   /* --numa-nodes: CPU sockets the tensor-parallel group spans */
    int host_servers; /* --servers-per-host: busy servers sharing the host */
    const char *catalog_dir;
    struct slo_cfg slo; /* the default profile unless --slo or --slo-*-ms say otherwise */
    bool json;
    bool prefix_caching;
    enum vd_population population; /* sessions unless --population streams */
    struct session_cfg session;
    uint64_t think_seed;
    int turn_tokens;
    int shared_prefix;
    const char *calibration_path; /* --calibration FILE, or NULL */
    struct cost_calibration cal;  /* loaded from it (or given by plan_predict_with) */
    bool have_cal;                /* cal applies; else the engine's defaults */
};

struct plan_row {
    /* inputs */
    const char *quant;
    int window; /* max_model_len */
    int prompt, output, users, requests;
    int warmup; /* the first this many requests are not judged (a probe's warm-up) */
    const int *prompt_lens, *output_lens; /* borrowed; NULL = prompt/output for every request */
    size_t n_lens;
    /* memory */
    struct cost_model cm;
    struct engine_info info;
    bool fits;
    char fit_msg[512];
    /* results */
    bool simulated;
    struct vd_result res; /* distributions, at_pct, completion, prefix-cache hits */
    double user_tps, out_tps, duration_s;
    uint64_t preemptions, steps;
    double peak_kv_usage;
    double mean_running;
    struct plan_band band;
    char verdict[1024];
    bool ok;
};

/* Requests a plan sends for n users: streams max(4 n, 32); sessions two conversations each. */
int plan_requests_for(const struct plan_opts *o, int users);
/* Memory plan, fit check and simulation for one row. 0, or a TB_EXIT code. */
int plan_row_run(const struct plan_opts *o, const struct catalog *cat, struct plan_row *row);
/* The options every plan starts from (default SLO profile, sessions, prefix caching on). */
void plan_opts_defaults(struct plan_opts *o);

#endif
