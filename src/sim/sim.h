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
};

void sim_options_init(struct sim_options *o); /* defaults above */

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
