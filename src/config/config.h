/*
 * config.h - a benchmark config (YAML, docs/CONFIG.md) loaded into plain structs.
 * The seed schema loads unchanged; extensions have defaults. Every error names
 * file:line:column and the key path, e.g.
 *   configs/x.yaml:14:5: requests.rate_per_second: expected a number or "inf", got "fast"
 * All strings are owned by the config and freed by config_release().
 */
#ifndef TB_CONFIG_H
#define TB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/session_cfg.h"
#include "config/slo_profile.h"
#include "config/study_cfg.h"
#include "config/workload_cfg.h"
#include "core/xalloc.h"

enum arrival { ARRIVAL_POISSON, ARRIVAL_CONSTANT, ARRIVAL_BURST, ARRIVAL_GAMMA };
enum api_kind { API_COMPLETIONS, API_CHAT };

const char *arrival_name(enum arrival a);
const char *api_kind_name(enum api_kind a);

/* NAN = no objective on that metric. The values come from a named profile (slo_profile.h;
 * default "chat"), then the keys a file sets. */
struct slo_cfg {
    double ttft_ms;
    double itl_ms;
    double tpot_ms;
    double e2e_ms;
    double percentile; /* quantile used for verdicts, e.g. 95 for p95 (default 95) */
    char profile[24];  /* the profile the values started from ("" = none) */
    /* Level of the two-sided confidence interval each verdict carries (docs/METRICS.md
     * "Confidence"); default 0.95, and 0 (a struct filled by position) reads as 0.95. */
    double confidence;
};

struct requests_cfg {
    int num_requests; /* per point and tenant; default 100 */
    int *concurrency; /* sweep list; 0 = no cap; default [10] */
    size_t n_concurrency;
    double *rates; /* requests/s; INFINITY = "inf"; default [inf] */
    size_t n_rates;
    enum arrival arrival;     /* default poisson */
    double burstiness;        /* gamma shape: 1 = poisson, < 1 burstier; default 1 */
    int prompt_tokens_min;    /* default 512 */
    int prompt_tokens_max;    /* default 2048 */
    int completion_tokens;    /* default 512; sent as max_tokens with ignore_eos */
    int shared_prefix_tokens; /* default 0 */
    /* What each request contains and when a trace says it arrives (workload_cfg.h). */
    struct length_dist output_tokens;
    struct dataset_cfg dataset;
    struct trace_cfg trace;
    struct rag_cfg rag;
    /* requests.session: multi-turn users; off by default. */
    struct session_cfg session;
    /* How long a point runs and what its statistics leave out (docs/METRICS.md "Warm-up, run
     * length and stopping"): num_requests is the ceiling; duration_s (NAN = none) ends the
     * point earlier; stop_when_decided ends it once its SLO verdict is certain. */
    int warmup_requests;    /* the first N requests sent are warm-up; default 0 */
    double warmup_s;        /* and those sent in the first S seconds; default 0 */
    double duration_s;      /* stop sending after this long; NAN = until num_requests */
    bool stop_when_decided; /* default false */
};

/* server.sim: the built-in simulator's options (same names as `testbench sim` flags). */
struct sim_cfg {
    bool enabled;                  /* server.sim present, or --sim */
    char *gpu;                     /* default "rtx-pro-6000" */
    char *model;                   /* default: model.name */
    char *quantization;            /* default: model.quantization */
    char *kv_cache_dtype;          /* default "auto" */
    char *catalog;                 /* folder of extra GPU/model files (--catalog); NULL = none */
    char *calibration;             /* calibration profile (--calibration); NULL = none */
    int max_model_len;             /* 0 = model max */
    double gpu_memory_utilization; /* 0 = 0.9 */
    int max_num_seqs;              /* 0 = default */
    int max_num_batched_tokens;    /* 0 = default */
    int enable_prefix_caching;     /* -1 = model.enable_prefix_caching */
    int tensor_parallel_size;      /* 0 = model.tensor_parallel_size */
    uint64_t seed;                 /* default benchmark.seed */
    /* Chat: the first reasoning_tokens output tokens stream as reasoning_content (0 = none);
     * enable_prompt_tokens_details: usage.prompt_tokens_details.cached_tokens. */
    int reasoning_tokens;
    bool enable_prompt_tokens_details;
};

struct server_cfg {
    char *endpoint;    /* base URL; default http://localhost:8000 */
    enum api_kind api; /* default completions */
    char *api_key_env; /* default OPENAI_API_KEY */
    double timeout_s;  /* per request; default 600 */
    char *ca_bundle;   /* PEM file of CAs trusted for https://; NULL = the system's store */
    struct sim_cfg sim;
};

struct model_cfg {
    char *name;                 /* NULL = ask the server (/v1/models) */
    char *quantization;         /* informational for real servers; used by the simulator;
                                   NULL = none ("none" and null in the file load as NULL) */
    int tensor_parallel_size;   /* default 1 */
    bool enable_prefix_caching; /* default true */
};

struct tenant_cfg {
    char *name;                   /* "default" when the config has no tenants: */
    char *endpoint;               /* default server.endpoint */
    char *model;                  /* default model.name */
    struct requests_cfg requests; /* inherits the top-level requests' fields it does not set;
                                     concurrency/rates lists of length 1 only */
    struct slo_cfg slo;           /* inherits top-level slo fields it does not set */
};

struct telemetry_cfg {
    double sample_interval_sec; /* default 1.0; >= 0.05 */
    bool collect_gpu_stats;     /* default true */
    bool scrape_server_metrics; /* default true */
};

struct bench_cfg {
    char *name;          /* default "benchmark" */
    char *description;   /* default "" */
    char *output_prefix; /* default "benchmark" */
    char *output_dir;    /* default "results" */
    uint64_t seed;       /* default 42 */
};

struct config {
    char *path; /* as given to config_load */
    struct bench_cfg benchmark;
    struct server_cfg server;
    struct model_cfg model;
    int *context_lengths; /* sweep; NULL/0 = prompt lengths from requests min/max */
    size_t n_context_lengths;
    struct requests_cfg requests;
    struct slo_cfg slo;
    struct tenant_cfg *tenants; /* always >= 1 after a successful load */
    size_t n_tenants;
    bool tenants_given; /* false: the one tenant "default" copies the top level, and
                           may hold the sweep lists */
    struct telemetry_cfg telemetry;
    struct study_cfg study; /* study sections (study, setups, workloads, backend) */
    /* The file sets requests.prompt_tokens_min/max and context_lengths, which replace them:
     * validate and run say so (docs/CONFIG.md, "Window and prompt"). */
    bool prompt_lengths_unused;
};
/* The warning for prompt_lengths_unused, or NULL. */
const char *config_prompt_note(const struct config *c);

/* Fills c with defaults (a config with no file; one tenant "default"). Release it after. */
void config_defaults(struct config *c);
/* 0 on success; -EINVAL (bad content) or -ENOENT/-EIO (cannot read) with the message in err.
 * c is caller storage and need not be initialised; on error it is left released (zeroed), so
 * config_release() is safe either way. */
MUST_USE int config_load(struct config *c, const char *path, char *err, size_t errlen);
/* Checks every rule again after command-line overrides (endpoint, model, ...); the message
 * is "key.path: what is wrong" (no file position: the value may not come from the file). */
MUST_USE int config_check(const struct config *c, char *err, size_t errlen);
/* Frees what c owns and zeroes it; a second call is a no-op. */
void config_release(struct config *c);
/* --endpoint: sets server.endpoint and every tenant endpoint that was the old server.endpoint
 * (trailing '/' dropped). Run config_check() afterwards. */
void config_set_endpoint(struct config *c, const char *url);
/* --model: sets model.name and every tenant model / server.sim.model that was the old one. */
void config_set_model(struct config *c, const char *name);
/* Turns a one-tenant config into one point of `users` users (concurrency = users, rate inf)
 * sending num_requests requests; context > 0 fills each (first) prompt to that window, 0 keeps
 * the prompt_tokens_min/max lengths. sessions: the users hold conversations (requests.session
 * on, with the config's own session keys or their defaults); else they are closed-loop request
 * streams without think times (requests.session off). -EINVAL for a config with named tenants.
 * Run config_check() afterwards. */
MUST_USE int config_set_closed_loop(struct config *c, int users, int num_requests, int context,
                                    bool sessions);
/* Points measured per tenant: max(1, context lengths) x concurrency sweep x rate sweep. */
size_t config_n_points(const struct config *c);
/* The resolved config as JSON (every key, defaults filled in), for result files. */
json_t *config_to_json(const struct config *c);
/* NULL when prefix can start a result file's name in any folder, else what is wrong with it
 * (a static string). */
const char *config_prefix_problem(const char *prefix);

/* `testbench validate --config FILE`. Returns an exit code. */
int validate_main(int argc, char **argv);

#endif
