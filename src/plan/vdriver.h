/*
 * vdriver.h - the one virtual-time driver of the engine (engine/engine.h): `testbench plan`,
 * the study's plan step and `plan --tenancy` all run their load through it.
 *
 * Several tenants send requests to several engine instances; instances on one time-sliced GPU
 * share it (engine/share.h), MIG slices and separate GPUs do not. Time jumps from one step end
 * or arrival to the next (now += step duration; no clock is read). Each tenant is one
 * population (docs/METRICS.md "Sessions", docs/STUDY.md):
 *   - streams:  N closed-loop request streams, each sending its next request when the last
 *               ends, all at t = 0 (a batch job; `concurrent_requests: N`, rate inf);
 *   - rate:     open-loop Poisson arrivals at `rate` requests/s;
 *   - sessions: N users in conversation, as `requests.session` runs them: their first
 *               conversations begin spread over start_spread_s, each later turn is due a think
 *               time after the previous answer ended (the runner's draws, from its seed), and
 *               sends the whole conversation so far, so the prefix cache serves its start; a
 *               user who finishes a conversation starts the next after a think time.
 * A request reaches its engine after the engine's fixed per-request cost (HTTP,
 * tokenisation), as `testbench sim` holds it, and never joins the step that begins as the
 * previous request of its user ends (the client needs the final chunk first).
 */
#ifndef TB_PLAN_VDRIVER_H
#define TB_PLAN_VDRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/stats.h"
#include "core/xalloc.h"

struct engine;

enum vd_population { VD_STREAMS, VD_RATE, VD_SESSIONS };

/* "streams", "rate", "sessions". */
const char *vd_population_name(enum vd_population p);

struct vd_tenant {
    int instance; /* index into the instances */
    enum vd_population population;
    int users;    /* streams and sessions: how many */
    double rate;  /* rate: requests/s (Poisson); sessions with rate > 0: sessions/s */
    int requests; /* how many it sends (sessions: turns included) */
    int warmup;   /* the first this many sent are a warm-up: served, never counted (the
                     runner's requests.warmup_requests; sessions: the users' first turns) */
    /* Lengths. Request k (streams, rate: the k-th sent; sessions: session k / turns, turn
     * k % turns, as the runner numbers them) has prompt_lens[k % n_lens] prompt tokens (for a
     * later turn: its new user message) and output_lens[k % n_lens] output tokens; NULL or
     * n_lens 0: prompt (a first turn's prompt) and output for every request, and a later
     * turn's message is the mean of message_tokens_min..max. Borrowed. */
    int prompt, output;
    const int *prompt_lens, *output_lens;
    size_t n_lens;
    int shared_prefix; /* the first N prompt tokens are the same in every request (a system
                          prompt): the prefix cache serves them */
    double lora_s;     /* extra GPU time per step in which this tenant's adapter runs */
    struct slo_cfg slo;
    /* sessions */
    struct session_cfg session; /* turns, think times, messages, start spread */
    uint64_t think_seed;        /* the point's think-time seed (run_point_seed(.., "think")) */
    int turn_tokens;            /* tokens a later turn adds besides the answer and the message
                                   (chat template markers, the completions separator) */
};

struct vd_instance {
    struct engine *e; /* borrowed */
    int gpu;          /* time-sliced GPU index (instances with the same index share it), or
                         -1 for a GPU of its own */
};

/* Per-tenant results; distributions in seconds over completed requests after the warm-up. */
struct vd_result {
    struct dist ttft, tpot, itl, e2e;
    struct dist ttft_first, ttft_later; /* sessions: first turns, later turns */
    double at_pct[4];                   /* TTFT, ITL, TPOT, E2E at slo.percentile (s) */
    int sent, completed;   /* failed = sent - completed (a conversation grown past the window) */
    int met;               /* completed requests meeting every objective */
    int turns_skipped;     /* sessions: turns never sent after a failed one */
    double attainment_pct; /* met / requests x 100: a request that failed or never ran missed */
    double goodput_rps;    /* met / window */
    double output_tps;     /* output tokens / window */
    double window_s;       /* first request sent to last completed */
    long output_tokens, prompt_tokens, cached_prompt_tokens;
    int max_prompt; /* the longest prompt sent (sessions: the longest conversation) */
    bool meets_slo; /* every objective holds at slo.percentile, failures included */
};

/* Per-instance figures. */
struct vd_instance_stats {
    double peak_kv_usage; /* 0..1, at step starts */
    double mean_running;  /* requests running, averaged over time */
};

struct vd_gpu_stats {
    double busy_s, wait_s;
};

struct vd_out {
    struct vd_result *tenants;       /* n_ten entries */
    struct vd_instance_stats *insts; /* n_inst entries, or NULL */
    struct vd_gpu_stats *gpus;       /* max_gpu + 1 entries, or NULL */
    int max_gpu;
    double end_s; /* virtual time when the last step ended */
};

/* Runs the tenants to completion. seed: open-loop arrival times. 0, or -EINVAL with err (a
 * request the engine refuses for a reason other than its length, bad tenant values). */
MUST_USE int vd_run(struct vd_instance *inst, size_t n_inst, const struct vd_tenant *ten,
                    size_t n_ten, uint64_t seed, struct vd_out *out, char *err, size_t errlen);

#endif
