/*
 * sim_internal.h - pieces of the simulator shared between its files (not a public API).
 *
 *   request.c       JSON body -> struct sim_call (validation, prompt rendering, limits)
 *   stream.c        one accepted request: SSE chunks or the final JSON body
 *   metrics_text.c  latency histograms and the Prometheus exposition
 *   trace.c         --trace: JSON lines of per-request emission times
 *   server.c        evhttp, routes, the engine step timer, start/stop
 *   gpu.c           one simulated GPU time-sliced between servers (sim_gpu)
 *   instances.c     `sim --instance ...`: several servers in one process on one GPU
 *   sim_cli.c       `testbench sim` flags
 */
#ifndef TB_SIM_INTERNAL_H
#define TB_SIM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h> /* evutil_socket_t */

#include "core/buf.h"
#include "core/clock.h"
#include "core/stats.h"
#include "engine/engine.h"
#include "sim/sim.h"
#include "sim/tokenizer.h"

struct evhttp_request;
struct evhttp_connection;
struct evbuffer;

#define SIM_VERSION "0.11.0"
#define SIM_MAX_BODY (64u * 1024 * 1024)  /* request bodies; a 128k-token prompt is ~1 MB */
#define SIM_MAX_HEADERS (64u * 1024)      /* request line + headers of one request */
#define SIM_IDLE_TIMEOUT_S 60             /* default --idle-timeout */
#define SIM_REQUEST_TIMEOUT_S (24 * 3600) /* a connection with a generation in flight */
#define SIM_MAX_PROMPT_TOKENS (4u * 1024 * 1024)
#define SIM_MAX_NAME 512     /* model names in requests */
#define SIM_NATURAL_CAP 1024 /* natural output lengths stay under this */

/* ---- models served ---------------------------------------------------------------- */

struct sim_lora {
    char *name;
    char *path;
};

/* What /v1/models lists and which names a request may use. */
struct sim_models {
    char *served_name; /* base model id */
    char *root;        /* the engine's canonical model name */
    struct sim_lora *lora;
    size_t n_lora;
    int max_model_len;
    long created; /* unix time of start */
};

/* Name as requested -> the server-owned copy, or NULL when unknown. NULL/"" = served. */
const char *sim_models_resolve(const struct sim_models *m, const char *name);

/* ---- errors ----------------------------------------------------------------------- */

struct sim_error {
    int status;       /* HTTP status */
    const char *type; /* "BadRequestError", "NotFoundError", ... */
    char message[768];
};

void sim_error_set(struct sim_error *e, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* {"object":"error","error":{"message","type","param","code"},"message","type","code"}:
 * OpenAI's shape, with vLLM's older top-level fields kept for clients that read those. */
void sim_error_json(const struct sim_error *e, struct buf *out);

/* ---- requests --------------------------------------------------------------------- */

/* A validated generation request. */
struct sim_call {
    bool chat;
    const char *model;    /* server-owned name echoed in responses */
    struct tokvec prompt; /* owned */
    bool stream;
    bool include_usage;    /* stream_options.include_usage */
    bool continuous_usage; /* stream_options.continuous_usage_stats (needs include_usage) */
    bool ignore_eos;
    int min_tokens;
    int max_tokens; /* resolved: the cap on output tokens */
    bool has_seed;
    uint64_t seed;
};

void sim_call_init(struct sim_call *c);
void sim_call_release(struct sim_call *c);

/* Parses a /v1/completions (chat = false) or /v1/chat/completions body. 0, or -1 with e set
 * (400 bad JSON / fields / too long; 404 unknown model). */
MUST_USE int sim_call_parse(struct sim_call *c, bool chat, const char *body, size_t len,
                            const struct tokenizer *tok, const struct sim_models *models,
                            struct sim_error *e);

/* Chat template: appends the ids of messages (a JSON array, see request.c) to out.
 * 0, or -1 with e set. 'messages' is a json_t *, kept void here to spare jansson. */
MUST_USE int sim_render_chat(const void *messages, const struct tokenizer *tok, struct tokvec *out,
                             struct sim_error *e);

/* /tokenize and /detokenize bodies -> JSON responses. 0 or -1 with e set. */
MUST_USE int sim_tokenize(const char *body, size_t len, const struct tokenizer *tok,
                          const struct sim_models *models, struct buf *out, struct sim_error *e);
/* llama.cpp's shape: {"content": text} -> {"tokens": [...]} of the text alone (no chat form:
 * a body without "content" gets no tokens, as llama.cpp's server answers). */
MUST_USE int sim_tokenize_llamacpp(const char *body, size_t len, const struct tokenizer *tok,
                                   struct buf *out, struct sim_error *e);
MUST_USE int sim_detokenize(const char *body, size_t len, const struct tokenizer *tok,
                            const struct sim_models *models, struct buf *out, struct sim_error *e);

/* Appends s as a JSON string literal (quotes included). */
MUST_USE int json_quote(struct buf *out, const char *s);

/* ---- metrics ---------------------------------------------------------------------- */

struct sim_hist {
    const double *le; /* upper bounds, ascending (+Inf implied) */
    size_t n_le;
    uint64_t *counts; /* n_le + 1 (last = +Inf only) */
    double sum;
    uint64_t count;
};

void sim_hist_init(struct sim_hist *h, const double *le, size_t n_le);
void sim_hist_release(struct sim_hist *h);
void sim_hist_record(struct sim_hist *h, double v);

struct sim_metrics {
    struct sim_hist ttft;
    struct sim_hist itl;
    struct sim_hist e2e;
    uint64_t finished_stop, finished_length, finished_abort;
};

void sim_metrics_init(struct sim_metrics *m);
void sim_metrics_release(struct sim_metrics *m);
/* The Prometheus text exposition of everything /metrics shows. */
MUST_USE int sim_metrics_text(const struct sim_metrics *m, const struct engine_counters *c,
                              const struct engine_info *info, const char *model_name,
                              struct buf *out);

/* ---- trace ------------------------------------------------------------------------ */

struct sim_trace;

MUST_USE int sim_trace_open(struct sim_trace **out, const char *path);
/* One JSON line; times are absolute CLOCK_MONOTONIC seconds (< 0 = unknown -> null). */
void sim_trace_write(struct sim_trace *t, const char *id, double arrival, double prefill_start,
                     const double *token_times, size_t n_tokens, double finish,
                     const char *finish_reason, size_t prompt_tokens);
void sim_trace_flush(struct sim_trace *t);
void sim_trace_close(struct sim_trace *t); /* flushes; NULL is a no-op */

/* ---- streams ---------------------------------------------------------------------- */

struct sim_server;

struct sim_stream {
    struct sim_server *srv;
    struct evhttp_request *req;
    struct sim_stream *prev, *next; /* the server's live list */
    uint64_t id;                    /* engine request id */
    char id_str[48];                /* "cmpl-..." / "chatcmpl-..." */
    struct sim_call call;
    int target_tokens; /* what the engine will generate */
    int emitted;
    int cached_tokens; /* prefix-cache hits of its prompt (the engine says with the first) */
    long created;
    uint64_t text_seed;
    double arrival;       /* server-relative seconds */
    double prefill_start; /* < 0 until the first step that scheduled it */
    double first_time, last_time;
    bool in_engine;
    bool held;                    /* waiting out the per-request overhead before engine_add */
    double admit_at;              /* server-relative seconds when it reaches the engine */
    struct sim_stream *held_next; /* the server's admission queue (FIFO: one hold for all) */
    char *chunk_prefix;           /* preformatted JSON up to the text/content value */
    size_t chunk_prefix_len;
    struct dvec token_times; /* absolute monotonic seconds, only with --trace */
};

/* Text of output token i of s (a vocabulary word, with a leading space after the first). */
const char *sim_stream_token_text(const struct sim_stream *s, int i, size_t *len);

/* Formats and sends what one engine event means for the stream; step_start is when the step
 * that produced it began. Returns true when the stream finished (reply sent; the caller
 * unlinks and frees it). */
bool sim_stream_on_event(struct sim_stream *s, const struct engine_event *ev, double step_start,
                         double now);
void sim_stream_free(struct sim_stream *s); /* the stream's memory only; NULL is a no-op */
/* Starts the SSE reply (headers) for a streaming call; builds the chunk prefix. */
void sim_stream_begin(struct sim_stream *s);

/* ---- the server ------------------------------------------------------------------- */

struct event_base;
struct event;
struct evhttp;
struct evconnlistener;

struct sim_server {
    struct event_base *base;
    struct evhttp *http;
    struct event *step_timer;  /* the one timer that drives the engine */
    struct event *kick;        /* plans a step on the next loop turn after arrivals */
    struct event *trace_timer; /* flushes the trace every second */
    struct event *admit_timer; /* admits held requests (per-request overhead) */
    struct sim_stream *held_head, *held_tail;
    struct event *sig_int, *sig_term;
    struct event *wake; /* read end of wake_fd: sim_server_stop from another thread */
    int wake_fd[2];
    struct evbuffer *scratch; /* one chunk at a time; emptied by each send */
    struct engine *engine;
    struct sim_gpu *gpu; /* borrowed; NULL = a GPU of its own */
    const struct engine_info *info;
    struct tokenizer *tok;
    struct sim_models models;
    struct sim_metrics metrics;
    struct sim_trace *trace;
    struct sim_stream *streams; /* live list */
    size_t n_streams;
    struct buf body; /* response scratch for non-per-token replies */
    mono_ns t0;      /* server start; engine time = seconds since t0 */
    double t0_abs;   /* t0 in absolute monotonic seconds (trace) */
    uint64_t seed;
    uint64_t next_id;
    bool stepping;          /* a step is planned and the timer armed */
    double step_start;      /* server-relative seconds */
    double step_end;        /* nominal end of the planned step */
    double step_end_actual; /* when the step's timer really fired */
    bool ready;
    bool quiet;
    int port;
    bool thread_started;
    pthread_t thread;
    uint64_t steps_late;    /* steps that fired over 20 ms after their nominal end */
    int idle_timeout_s;     /* connections with nothing in flight */
    bool tokenize_llamacpp; /* /tokenize in llama.cpp's shape (sim.h) */
    /* --reasoning-tokens: chat's first output tokens stream as reasoning_content;
     * --enable-prompt-tokens-details: usage carries prompt_tokens_details.cached_tokens. */
    int reasoning_tokens;
    bool prompt_tokens_details;
    int fail_pct, fail_status; /* --fail-pct, --fail-status (sim.h) */
    uint64_t generations;      /* generation requests seen, for --fail-pct */
    /* accept() failing for lack of descriptors or memory: the listener pauses (a level-
     * triggered listener would otherwise spin on the same error) and the log is rate-limited */
    struct evconnlistener *listener;
    struct event *accept_retry;
    long accept_pause_ms;          /* current pause; doubles while failures keep coming */
    mono_ns accept_last_fail;      /* when the last failure came */
    mono_ns accept_last_log;       /* when the last warning about them was written */
    uint64_t accept_failures;      /* since the last warning */
    struct sim_server *next_owner; /* server.c's list of servers by evhttp */
};

/* Connection of req: back to the idle timeout (its generation is done). */
void sim_server_conn_idle(struct sim_server *srv, struct evhttp_request *req);

/* ---- the listening socket (listen.c) ------------------------------------------------ */

/* Binds host:port for srv's evhttp, registers srv for the accept() error callback and sets
 * srv->listener and srv->port. 0, or -errno with err. */
int sim_listen_bind(struct sim_server *srv, const char *host, int port, char *err, size_t errlen);
/* Forgets srv (before its evhttp is freed). */
void sim_listen_forget(struct sim_server *srv);
/* srv->accept_retry's callback: listens again after an accept() failure's pause. */
void sim_on_accept_retry(evutil_socket_t fd, short what, void *arg);

/* A step of d seconds ready at now_abs (CLOCK_MONOTONIC seconds) on a shared GPU: returns
 * when it starts (>= now_abs; later when another server's step holds the GPU). */
double sim_gpu_claim(struct sim_gpu *g, double now_abs, double d);

/* `sim --instance`: checks the layout (sim_instances_check), then serves every instance until
 * SIGINT/SIGTERM, time-slicing one sim_gpu between whole-GPU instances. 0 or -errno with err.
 * instances.c. */
MUST_USE int sim_instances_serve(struct sim_options *inst, size_t n, char *err, size_t errlen);

/* Runs a server in the calling thread until SIGINT/SIGTERM (sim_main). 0 or -errno + err. */
MUST_USE int sim_server_serve(const struct sim_options *o, char *err, size_t errlen);

/* Seconds since the server started (the engine's clock). */
double sim_server_now(const struct sim_server *srv);

#endif
