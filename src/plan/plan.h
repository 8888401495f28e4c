/* plan.h - `testbench plan`: the engine in virtual time, and capacity answers. */
#ifndef TB_PLAN_H
#define TB_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/stats.h"
#include "core/xalloc.h"
#include "plan/vdriver.h"

/* One server setup under one workload (borrowed strings). The population is the workload's
 * users: N conversations (sessions) or N closed-loop request streams (plan/vdriver.h). */
struct plan_query {
    const char *gpu;
    const char *model;
    const char *quantization;      /* NULL = the checkpoint's own dtype */
    const char *kv_cache_dtype;    /* NULL or "auto" = the model's dtype */
    const char *catalog_dir;       /* extra catalog files, or NULL */
    int max_model_len;             /* 0 = the model's own */
    double gpu_memory_utilization; /* 0 = vLLM's 0.9 */
    int tensor_parallel_size;      /* 0 = 1 */
    int max_num_seqs;              /* 0 = vLLM's default */
    int max_num_batched_tokens;    /* 0 = vLLM's default */
    int p2p;          /* PCIe peer-to-peer for tensor parallelism: ENGINE_P2P_* (0 = catalog's) */
    int numa_nodes;   /* CPU sockets the tensor-parallel group spans; 0 = 1 */
    int host_servers; /* busy servers sharing this server's host (several replicas); 0 = 1 */
    bool prefix_caching;
    int prompt_tokens; /* per request, or the mean when the lengths below vary */
    int output_tokens;
    /* Per-request lengths (borrowed, may be NULL): the k-th request sent has
     * prompt_lens[k % n_lens] prompt and output_lens[k % n_lens] output tokens, the way a run
     * sends its drawn lengths in order; NULL or n_lens 0 = prompt_tokens and output_tokens for
     * every request. Each pair must fit max_model_len. */
    const int *prompt_lens;
    const int *output_lens;
    size_t n_lens;
    int users;                     /* users: conversations (sessions) or request streams */
    enum vd_population population; /* VD_STREAMS (0, what calibration and validation use) or
                                      VD_SESSIONS */
    struct session_cfg session;    /* sessions: turns, think times, messages, start spread */
    uint64_t think_seed;           /* sessions: the probe's think-time seed (the runner's) */
    int turn_tokens;               /* sessions: template/separator tokens a later turn adds */
    int shared_prefix;             /* prompt tokens every request shares (a system prompt) */
    int requests;                  /* 0 = by the policy below */
    int warmup_requests;   /* the first this many of them are a warm-up, served but not judged
                              (requests.warmup_requests; a study probe's warm-up) */
    int requests_per_user; /* with requests 0: max(users x this, min_requests); 0 = the plan's
                              own policy, plan_requests_default(users) */
    int min_requests;
    struct slo_cfg slo;      /* judged as the runner judges a measured point */
    const char *calibration; /* calibration profile (docs/CALIBRATION.md), or NULL = defaults */
};

/* How far to trust a prediction (plan/band.h): the error of the held-out published measurements
 * of bench_validation with the same combination (GPU family, weight format, KV dtype, model
 * class, prompt-length bucket, parallelism), widened when they are few and extrapolated when there
 * are none, or the error left after the fit when a calibration profile for this GPU is in use.
 * Percent. */
#define PLAN_BAND_MAX_IDS 64
struct plan_band {
    double tps_pct, tpot_pct, ttft_pct;
    bool extrapolated;     /* no held-out row like this one: the band is a guess */
    int rows_like;         /* held-out rows with this combination the band rests on */
    char combination[256]; /* "GPU sm_120, weights fp8, KV fp8, dense, prompt <=2k, 1 GPU" */
    /* The ids of the rows it rests on (the nearest ones when extrapolated), pointing into the
     * row table the band was computed from (the built-in one lives as long as the program);
     * past PLAN_BAND_MAX_IDS they are counted in row_ids_more. */
    const char *row_id[PLAN_BAND_MAX_IDS];
    int n_row_ids, row_ids_more;
    char outside[320]; /* the dimensions in which the nearest rows differ, "" when none */
    char basis[448];   /* where the figures come from, in words */
};

struct plan_prediction {
    bool fits;               /* weights and one max_model_len request fit */
    char fit_msg[800];       /* why not, with the numbers and the lever */
    long kv_capacity_tokens; /* vLLM's "GPU KV cache size: N tokens" */
    int max_model_len;       /* as the engine resolved it */
    double max_concurrency;  /* requests of max_model_len tokens the KV cache holds */
    double weights_gib, kv_budget_gib;
    char weight_dtype[32];       /* the weights as served: "bf16", "fp8", "awq", ... */
    bool weights_native;         /* the checkpoint's own dtype (no quantization asked for) */
    char kv_dtype[24];           /* the KV cache as allocated: "bf16", "fp8" */
    bool simulated;              /* latencies below are valid */
    struct dist ttft, tpot, itl; /* seconds */
    double output_tps;           /* aggregate output tokens/s */
    double user_tps;             /* 1 / TPOT p50 */
    double duration_s;           /* how long serving the requests takes, first sent to last done */
    struct dist ttft_first, ttft_later; /* sessions: first turns, later turns (seconds) */
    double cached_prompt_pct;           /* prompt tokens served from the prefix cache */
    int max_prompt;                     /* the longest prompt sent (sessions: conversation) */
    int failed;                         /* requests that failed (a conversation past the window) */
    double at_pct[4];                   /* TTFT, ITL, TPOT, E2E at slo.percentile (s) */
    bool meets_slo;
    char verdict[1024];
    struct plan_band band;
};

/* Memory plan and closed-loop simulation of q. 0, or -errno with a message in err (unknown
 * GPU/model, a prompt that does not fit max_model_len). A setup that does not fit is not an
 * error: out->fits is false and fit_msg says why. */
MUST_USE int plan_predict(const struct plan_query *q, struct plan_prediction *out, char *err,
                          size_t errlen);
struct catalog;
struct cost_calibration;
struct engine_config;
/* The engine options query q plans with (the built-in calibration): one place that maps a
 * query onto vLLM's flags, for plan and for the band's combination. Strings are borrowed from
 * q. */
void plan_query_engine_config(const struct plan_query *q, struct engine_config *c);
/* plan_predict over a loaded catalog with the given efficiencies (NULL = defaults; q->calibration
 * is then ignored): the inner loop of `testbench calibrate`. */
MUST_USE int plan_predict_with(const struct plan_query *q, const struct catalog *cat,
                               const struct cost_calibration *cal, struct plan_prediction *out,
                               char *err, size_t errlen);
/* The largest number of users in [1, max_users] whose prediction meets q->slo (q->users and
 * q->requests are ignored: each count sends what the request policy says); 0 when one user
 * already misses it or the setup does not fit. */
MUST_USE int plan_max_users(const struct plan_query *q, int max_users, int *out, char *err,
                            size_t errlen);
/* Requests a plan runs for n users: max(4 n, 32), so each user sends several. */
int plan_requests_default(int users);
/* Requests a study probe (and its plan) sends for n users: max(n x per_user, min_requests);
 * with sessions of `turns` turns (0: streams), every user holds whole conversations: per_user
 * and min_requests are rounded up to multiples of turns, and per_user is at least one
 * conversation. */
int plan_probe_requests(int users, int per_user, int min_requests, int turns);

/* What one user alone gets on the setup (q at 1 user): the floor under every percentile. */
struct plan_floor {
    bool known;       /* the setup fits and one user was simulated */
    double at_pct[4]; /* TTFT, ITL, TPOT, E2E at slo.percentile with one user (s) */
    bool unreachable; /* an objective is missed even by one user */
    char why[256];    /* "TPOT floor 52 ms > 50 ms (p95, 1 user on this GPU)", or "" */
};
/* The floor of q's workload on q's setup: q at one user. 0 or -errno with err. */
MUST_USE int plan_floor(const struct plan_query *q, struct plan_floor *out, char *err,
                        size_t errlen);
/* Fills out from one user's percentiles (at_pct: TTFT, ITL, TPOT, E2E in seconds). */
void plan_floor_judge(const struct slo_cfg *slo, const double at_pct[4], struct plan_floor *out);

int plan_main(int argc, char **argv);

#endif
