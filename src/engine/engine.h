/*
 * engine.h - the serving model shared by the simulator (real time) and the planner
 * (virtual time): vLLM-style continuous batching over a paged KV cache with prefix
 * caching, and a roofline cost model for the duration of each engine step.
 *
 * The engine never reads a clock. Its driver alternates:
 *     d = engine_step_plan(e);            // < 0: idle, nothing to do
 *     ... let d seconds pass (a timer, or now += d in virtual time) ...
 *     engine_step_finish(e, now, cb, ctx); // emits the step's tokens
 * Requests may be added or aborted at any time; a request added while a step runs
 * joins the next step (as in vLLM). Formulas and defaults: docs/ENGINE.md.
 */
#ifndef TB_ENGINE_H
#define TB_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/xalloc.h"

struct cost_calibration;

/* PCIe peer-to-peer between the GPUs of a tensor-parallel group (engine_config.p2p). */
enum { ENGINE_P2P_CATALOG = 0, ENGINE_P2P_ON = 1, ENGINE_P2P_OFF = 2 };

/* Serving options, named as vLLM's flags. Strings are borrowed for the call to engine_new. */
struct engine_config {
    const char *gpu;            /* catalog name or alias; NULL = "rtx-pro-6000" */
    const char *model;          /* HF id or short name; NULL = "meta-llama/Llama-3.1-8B-Instruct" */
    const char *quantization;   /* NULL/"auto"/"none" = the model's native dtype; fp8, awq, ... */
    const char *kv_cache_dtype; /* NULL/"auto" = model dtype; "fp8" */
    int max_model_len;          /* 0 = the model's maximum */
    double gpu_memory_utilization; /* 0 = 0.9 */
    int max_num_seqs;              /* 0 = vLLM's default for the GPU */
    int max_num_batched_tokens;    /* 0 = vLLM's default for the GPU */
    int enable_prefix_caching;     /* -1 = default (on), 0 off, 1 on */
    int tensor_parallel_size;      /* 0 = 1 */
    /* Topology (docs/ENGINE.md, "Multi-GPU"): ENGINE_P2P_* (0 = the catalog's p2p); the CPU
     * sockets the tensor-parallel group spans (0 = 1); busy servers sharing the host, this one
     * included (0 = 1; "Several servers on one host"). */
    int p2p;
    int numa_nodes;
    int host_servers;
    int block_size;          /* 0 = 16 */
    int num_lora_slots;      /* LoRA adapters served; reserves memory like vLLM */
    const char *catalog_dir; /* extra catalog folder, or NULL */
    /* Efficiencies and fixed costs (engine/calibration.h), borrowed for the call to engine_new;
     * NULL = the built-in defaults. */
    const struct cost_calibration *calibration;
};

/* What the engine worked out at start (the numbers vLLM logs). */
struct engine_info {
    const char *model_name;   /* canonical HF id */
    const char *gpu_name;     /* catalog display name */
    const char *weight_dtype; /* quantization in effect */
    const char *kv_dtype;
    int max_model_len;
    int block_size;
    int max_num_seqs;
    int max_num_batched_tokens;
    bool prefix_caching;
    int tensor_parallel_size;
    int vocab_size;
    double total_gib;      /* GPU memory as the driver reports it */
    double weights_gib;    /* per GPU */
    double activation_gib; /* activation peak + non-torch overhead */
    double kv_budget_gib;
    double kv_bytes_per_token; /* per GPU, full-attention equivalent */
    long num_gpu_blocks;
    long kv_capacity_tokens; /* "GPU KV cache size: N tokens" */
    double max_concurrency;  /* "Maximum concurrency for max_model_len tokens per request: X" */
    bool fits;               /* weights + overhead fit in the memory budget */
};

enum finish_reason { FINISH_NONE = 0, FINISH_LENGTH, FINISH_STOP, FINISH_ABORT };

struct engine_request {
    uint64_t id;            /* unique among live requests */
    const uint32_t *prompt; /* token ids; copied as needed (prefix hashing) */
    size_t prompt_len;
    int max_tokens; /* exact number of tokens to generate (the caller decides EOS) */
    void *user;     /* returned in events */
};

/* One request's progress in one step. */
struct engine_event {
    uint64_t id;
    void *user;
    int new_tokens;            /* tokens emitted by this step (0 for a partial chunked prefill) */
    int total_tokens;          /* generated so far */
    bool first;                /* this step emitted its first token */
    int cached_prompt_tokens;  /* prefix-cache hits for this request (set with first) */
    enum finish_reason finish; /* != FINISH_NONE: the request is done and forgotten */
};

typedef void (*engine_event_fn)(void *ctx, const struct engine_event *ev);

/* Live gauges and counters, in vLLM's /metrics terms. */
struct engine_counters {
    int num_running;
    int num_waiting;
    double kv_cache_usage;  /* 0..1 */
    uint64_t prompt_tokens; /* prompt tokens computed or served from cache */
    uint64_t generation_tokens;
    uint64_t prefix_cache_queries; /* tokens looked up */
    uint64_t prefix_cache_hits;    /* tokens found */
    uint64_t num_preemptions;
    uint64_t steps;
    uint64_t requests_finished;
};

struct engine;

/* 0, or -EINVAL / -ENOENT (unknown GPU or model) / -ENOSPC (does not fit) with a message in err. */
MUST_USE int engine_new(struct engine **out, const struct engine_config *cfg, char *err,
                        size_t errlen);
void engine_free(struct engine *e); /* NULL is a no-op */
const struct engine_info *engine_info(const struct engine *e);

/* engine_add's checks on r alone (lengths), without adding it: 0 or -EINVAL with err. */
MUST_USE int engine_check(const struct engine *e, const struct engine_request *r, char *err,
                          size_t errlen);
/* The fixed per-request cost outside the GPU (HTTP, tokenisation, detokenisation, frontend
 * scheduling) in seconds: a server holds a request this long before engine_add. */
double engine_request_overhead(const struct engine *e);
/* 0, or -EINVAL when prompt_len + max_tokens exceeds max_model_len (err says so). */
MUST_USE int engine_add(struct engine *e, const struct engine_request *r, char *err, size_t errlen);
/* Drops a request wherever it is; no event is emitted for it. Unknown ids are ignored. */
void engine_abort(struct engine *e, uint64_t id);
/* Schedules the next step; returns its duration in seconds, or a negative value when idle. */
double engine_step_plan(struct engine *e);
/* Ends the planned step at time 'now' (seconds, the driver's clock): emits one event per
 * request that progressed. Events for a request aborted during the step are not emitted. */
void engine_step_finish(struct engine *e, double now, engine_event_fn cb, void *ctx);
void engine_counters(const struct engine *e, struct engine_counters *out);

#endif
