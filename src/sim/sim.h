/*
 * sim.h - `testbench sim`: an OpenAI-compatible HTTP server in front of the engine,
 * in real time (libevent evhttp). Endpoints: docs/ARCHITECTURE.md; the
 * serving model: docs/ENGINE.md.
 */
#ifndef TB_SIM_H
#define TB_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

struct sim_options {
    const char *host; /* default 127.0.0.1 */
    int port;         /* default 8000; 0 = any free port */
    struct engine_config engine;
    const char *served_model_name; /* NULL = engine's model name */
    const char **lora_modules; /* "NAME=PATH" strings, listed in /v1/models with parent = base */
    size_t n_lora_modules;
    uint64_t seed;                /* output lengths without ignore_eos, generated text */
    const char *trace_path;       /* NULL = no trace; else JSON lines of emission times */
    bool quiet;                   /* no start-up log lines */
    int idle_timeout_s;           /* close a connection idle this long (no request in flight) */
    const char *calibration_path; /* --calibration FILE (sim_main loads it into engine), or NULL */
    /* --tokenize-llamacpp: /tokenize answers as llama.cpp's server does ({"content"} ->
     * {"tokens"}, no chat form), to test clients against it; default vLLM's. */
    bool tokenize_llamacpp;
    /* A reasoning model's shape (chat only): the first reasoning_tokens output tokens of each
     * answer stream as delta.reasoning_content, as vLLM's --reasoning-parser sends them. */
    int reasoning_tokens;
    /* vLLM's --enable-prompt-tokens-details: usage.prompt_tokens_details.cached_tokens. */
    bool prompt_tokens_details;
    struct sim_gpu *gpu; /* borrowed: a GPU time-sliced with other servers, or NULL (its own) */
    /* --fail-pct P / --fail-status CODE: a server that sheds load. P % of the generation
     * requests (spread evenly: request k fails when the running count of P % crosses a whole
     * request, so the first one always passes) answer CODE (default 503) with an OpenAI error
     * document, for testing how failures count against a verdict. 0 = none. */
    int fail_pct;
    int fail_status;
};

void sim_options_init(struct sim_options *o); /* defaults above */

/* One simulated GPU shared by several servers in one process (memory-fraction partitions:
 * `sim --instance ...` twice). Each server keeps its own engine and KV budget; their steps take
 * the GPU one at a time, first come first served, by engine/share.h's rule, the one `plan
 * --tenancy` uses. Thread-safe; outlives every server that borrows it. docs/TENANCY.md. */
struct sim_gpu;

struct sim_gpu_stats {
    double busy_s;         /* sum of the steps' durations */
    double wait_s;         /* time steps spent waiting for another server's step */
    uint64_t steps;        /* steps run */
    uint64_t waited_steps; /* steps that had to wait */
};

struct sim_gpu *sim_gpu_new(void);    /* aborts on OOM like xcalloc */
void sim_gpu_free(struct sim_gpu *g); /* NULL is a no-op */
void sim_gpu_stats(struct sim_gpu *g, struct sim_gpu_stats *out);

/* Checks that n instances can share one GPU as the hardware and vLLM allow: whole-GPU
 * instances' gpu_memory_utilization adding up to at most 1, or MIG slices of one GPU that fit
 * it; never both, never two GPUs. *mig says whether they are slices (isolated: no sim_gpu).
 * 0, -EINVAL (mixed, several GPUs) or -ENOSPC (does not fit) with err. instances.c. */
MUST_USE int sim_instances_check(const struct sim_options *inst, size_t n, bool *mig, char *err,
                                 size_t errlen);

struct sim_server;

/* Starts the server on its own thread; returns once it listens (port known). */
MUST_USE int sim_server_start(struct sim_server **out, const struct sim_options *o, char *err,
                              size_t errlen);
int sim_server_port(const struct sim_server *s);
/* Generation requests the server holds now (streams in flight); safe from any thread. */
size_t sim_server_live_streams(const struct sim_server *s);
void sim_server_stop(struct sim_server *s); /* stops, joins, frees; NULL is a no-op */

/* `testbench sim [flags]`: serves until SIGINT/SIGTERM. Returns an exit code. */
int sim_main(int argc, char **argv);

#endif
