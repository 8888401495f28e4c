/*
 * telemetry.h - a sampler thread that reads GPUs (NVML by dlopen), the server's
 * Prometheus /metrics and the host (/proc) on the run's clock. Contract: docs/TELEMETRY.md
 * and the telemetry.json format in docs/OUTPUTS.md. Unreadable fields are null, never 0.
 */
#ifndef TB_TELEMETRY_H
#define TB_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/xalloc.h"

/* The longest sampling interval: config and --interval refuse more, the sampler clamps to
 * it (a huge interval overflowed its nanosecond clock and divided by zero). */
#define TELEMETRY_INTERVAL_MAX_S 3600.0

struct telemetry_options {
    double interval_s;       /* default 1.0; at least 0.05, at most TELEMETRY_INTERVAL_MAX_S */
    bool gpu;                /* read NVML (TESTBENCH_NVML_LIB overrides the library path) */
    const char *metrics_url; /* full URL of the server's /metrics; NULL = no scrape */
    const char *api_key;     /* sent as a bearer token with each scrape; NULL = none */
    bool host;               /* /proc CPU and memory, and this process's CPU time */
    mono_ns t0;              /* the run's clock origin; samples carry t - t0 in seconds */
};

/* Per-window aggregates for one point (summary.csv / detailed.json). NAN = unknown. */
struct telemetry_window {
    double gpu_power_mean_w;
    double gpu_power_max_w;
    double gpu_energy_j; /* counter difference, else power integrated over samples */
    bool gpu_energy_from_counter;
    double gpu_mem_used_max_mib;
    double gpu_temp_max_c;
    bool throttled;             /* any clock-event reason other than idle seen */
    char throttle_reasons[256]; /* comma-separated names seen in the window */
    double kv_cache_usage_max_pct;
    double kv_cache_usage_mean_pct;
    double prefix_cache_hit_rate_pct; /* hits / queries over the window's counter differences */
    double num_preemptions;           /* counter difference over the window */
    double server_ttft_p50_s;         /* from the server's TTFT histogram over the window */
    double server_ttft_p95_s;
    double server_itl_p50_s;
    double host_cpu_util_mean_pct;
    double runner_cpu_s; /* this process's CPU time in the window */
    size_t n_samples;
};

struct telemetry;

MUST_USE int telemetry_start(struct telemetry **out, const struct telemetry_options *o);
void telemetry_sample_now(struct telemetry *t); /* one extra sample now (point edges) */
void telemetry_stop(struct telemetry *t);       /* joins the thread; data stays readable */
void telemetry_free(struct telemetry *t);       /* stops if needed; NULL is a no-op */
/* Aggregates over samples with from <= t <= to (run-clock ns). */
void telemetry_window(struct telemetry *t, mono_ns from, mono_ns to, struct telemetry_window *w);
json_t *telemetry_json(struct telemetry *t);      /* the whole telemetry.json object (new ref) */
json_t *telemetry_gpus_json(struct telemetry *t); /* static GPU facts, for detailed.json "gpus" */
/* Added for live views (the telemetry command): samples stored so far, and sample i as
 * its telemetry.json "samples" element (new ref; NULL when i is out of range). */
size_t telemetry_n_samples(struct telemetry *t);
json_t *telemetry_sample_json(struct telemetry *t, size_t i);
/* GPUs NVML showed; 0 when GPU telemetry is off. */
unsigned telemetry_n_gpus(struct telemetry *t);

/* `testbench telemetry [--interval S] [--duration S] [--json] [--metrics-url URL]`.
 * Returns an exit code. */
int telemetry_main(int argc, char **argv);

#endif
