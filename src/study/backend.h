/*
 * backend.h - the servers a study measures: start one server per setup, wait until it serves,
 * say why it did not, stop it. Four kinds:
 *
 *   sim      `testbench sim` as a child process (this binary, o->self_exe)
 *   docker   `docker run ... vllm/vllm-openai MODEL ...` in the foreground as a child process;
 *            the container is named "<name_prefix>-<setup id>" and removed (`docker rm -f`)
 *            before the start and at the stop
 *   command  any command line built from o->command_template (placeholders below); it must
 *            stay in the foreground: a command that exits (e.g. `docker run -d`) has "crashed"
 *   none     a server someone else runs at o->endpoint: checked for readiness, never started
 *            or stopped
 *
 * Every child runs in its own process group with PR_SET_PDEATHSIG(SIGTERM), writes stdout and
 * stderr to the setup's log file, and is ended by SIGTERM to the group, then SIGKILL after
 * o->stop_grace_s, then reaped. PR_SET_PDEATHSIG fires when the *thread* that started the child
 * ends, so call backend_start from a thread that outlives the server (the main thread).
 *
 * Command template (o->command_template). The template is split into words like a shell
 * would, without running one: blanks separate words, '...' is literal, "..." is literal but
 * for \" and \\, and a backslash outside quotes takes the next character as is. Then in each
 * word:
 *
 *   {model} {port} {host} {id} {seed}            the setup's model, the port the server must
 *                                                listen on, 127.0.0.1, the setup id, o->seed
 *   {quantization} {kv_cache_dtype} {max_model_len} {gpu_memory_utilization}
 *   {tensor_parallel_size} {max_num_seqs}        the setup's value. A value the setup leaves
 *                                                unset is an error naming the placeholder, but
 *                                                {kv_cache_dtype} is then "auto" and
 *                                                {tensor_parallel_size} "1" (vLLM's defaults)
 *
 * A word that is exactly one of these becomes zero or more words:
 *
 *   {quantization_flag} {kv_cache_dtype_flag} {max_model_len_flag}
 *   {gpu_memory_utilization_flag} {tensor_parallel_size_flag} {max_num_seqs_flag}
 *                                                two words, vLLM's flag and the value
 *                                                ("--quantization" "fp8"), or none when unset
 *   {enable_prefix_caching_flag}                 "--enable-prefix-caching",
 *                                                "--no-enable-prefix-caching" or none
 *   {extra_args}                                 the setup's extra_args, one word each; without
 *                                                it they are appended at the end
 *
 * Placeholders are replaced inside quotes too (quotes only group); a '{' not followed by a
 * lowercase name and '}' is an ordinary character, so JSON arguments pass through. An unknown
 * {name} is an error naming it. The first word is the program, looked up on PATH when it has
 * no '/'.
 */
#ifndef TB_STUDY_BACKEND_H
#define TB_STUDY_BACKEND_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/xalloc.h"

enum backend_kind { BACKEND_SIM, BACKEND_DOCKER, BACKEND_COMMAND, BACKEND_NONE };

/* One server configuration to launch (borrowed strings). */
struct server_setup {
    const char *id;                /* [a-z0-9._-] only: it names the docker container */
    const char *model;             /* Hugging Face id */
    const char *quantization;      /* NULL, "" or "none" = flag left out */
    const char *kv_cache_dtype;    /* NULL or "auto" = flag left out */
    int max_model_len;             /* 0 = server default (flag left out) */
    double gpu_memory_utilization; /* 0 = default (flag left out) */
    int tensor_parallel_size;      /* 0/1 = flag left out */
    int max_num_seqs;              /* 0 = flag left out */
    int enable_prefix_caching;     /* 1 --enable-prefix-caching, 0 --no-..., -1 left out */
    const char *const *extra_args; /* appended verbatim */
    size_t n_extra_args;
};

struct backend_options {
    enum backend_kind kind;
    const char *self_exe;           /* sim: path of the testbench binary */
    const char *sim_gpu;            /* sim: --gpu; NULL = sim default */
    const char *sim_catalog;        /* sim: --catalog DIR or NULL */
    const char *sim_calibration;    /* sim: --calibration FILE or NULL */
    uint64_t seed;                  /* sim: --seed */
    const char *docker_bin;         /* NULL = "docker" found on PATH */
    const char *docker_image;       /* NULL = BACKEND_DOCKER_IMAGE */
    const char *docker_gpus;        /* --gpus value; NULL = "all"; "none" = no --gpus */
    const char *hf_cache;           /* mounted at /root/.cache/huggingface; NULL =
                                       $HOME/.cache/huggingface; a leading "~/" is $HOME */
    const char *docker_network;     /* NULL: -p 127.0.0.1:PORT:8000, endpoint http://127.0.0.1:PORT;
                                       "host": --network host, the server gets --host 127.0.0.1
                                       --port PORT, endpoint http://127.0.0.1:PORT; else
                                       --network NET, endpoint http://CONTAINER:8000 */
    const char *const *docker_args; /* extra `docker run` options, before the image */
    size_t n_docker_args;
    const char *command_template; /* command: see the top of this file */
    const char *endpoint;         /* none: the running server's URL */
    int port;                     /* sim/command/docker host port; 0 = a free loopback port */
    double startup_timeout_s;     /* readiness deadline; 0 = BACKEND_STARTUP_TIMEOUT_S */
    double stop_grace_s;          /* SIGTERM -> SIGKILL; 0 = BACKEND_STOP_GRACE_S */
    const char *name_prefix;      /* container "<name_prefix>-<id>"; NULL = "testbench" */
};

/* The image tag docker-compose.yml pins. */
#define BACKEND_DOCKER_IMAGE "vllm/vllm-openai:v0.30.0"
/* Downloading and loading 70B weights takes many minutes. */
#define BACKEND_STARTUP_TIMEOUT_S 1800.0
#define BACKEND_STOP_GRACE_S 30.0

enum start_status {
    START_OK,
    START_OOM,          /* the log says the GPU ran out of memory (weights, activations) */
    START_KV_TOO_SMALL, /* the KV cache cannot hold one request of max_model_len */
    START_TIMEOUT,      /* not ready within startup_timeout_s (the server was stopped; the
                           reason adds the log's OOM / KV line when there is one) */
    START_CRASHED,      /* exited before it was ready, for no reason the log names */
    START_INTERRUPTED,  /* *stop became nonzero while waiting (the server was stopped) */
    START_ERROR         /* could not be started at all: bad template, no docker, port busy */
};
/* "ok", "oom", "kv_too_small", "timeout", "crashed", "interrupted", "error". */
const char *start_status_name(enum start_status s);

/* What the server says about itself in its start-up log. */
struct server_facts {
    long kv_capacity_tokens; /* "GPU KV cache size: 48,384 tokens"; -1 unknown */
    double max_concurrency;  /* "Maximum concurrency for 32,768 tokens per request: 1.48x";
                                NAN unknown */
    int max_concurrency_len; /* the 32,768 in that line; 0 unknown */
};

struct backend_start_result {
    enum start_status status;
    char endpoint[256];  /* base URL, no trailing '/' */
    char reason[512];    /* one line: what went wrong, e.g. the log line that says so */
    char log_tail[4096]; /* the last lines the server wrote (on failure) */
    struct server_facts facts;
    double ready_s; /* seconds from the start to ready (or to the failure): loading time */
};

struct server_handle;

/* Starts the setup with everything the server prints (stdout and stderr) appended to log_path,
 * and waits until GET /health and GET /v1/models both answer 200 (START_OK), the process exits,
 * startup_timeout_s passes, or *stop becomes nonzero (looked at every 50 ms; stop may be NULL).
 * Returns 0 with *out running on START_OK; 0 with *out NULL on any other status, the process
 * already stopped and reaped and res saying why (status from the log: server_log_scan). Returns
 * -EINVAL (bad arguments; res->reason says which) or another negative errno (cannot fork or
 * open the log), *out NULL, res->status START_ERROR. The none backend only waits for
 * o->endpoint to be ready. o, s and log_path are borrowed for the call only. */
MUST_USE int backend_start(struct server_handle **out, const struct backend_options *o,
                           const struct server_setup *s, const char *log_path,
                           volatile sig_atomic_t *stop, struct backend_start_result *res);
/* Stops the server (docker: `docker rm -f NAME` first, its output to the log; then SIGTERM to
 * the group, o->stop_grace_s, SIGKILL), reaps it, writes how it ended to the log, frees h.
 * NULL is a no-op; for the none backend it only frees h. */
void backend_stop(struct server_handle *h);
/* Is the server still running? Reaps it when it exited (why then says how: "the server exited
 * with status 3 while it was being measured", also written to its log). The none backend is
 * always taken as running: it is not ours to watch. */
bool backend_alive(struct server_handle *h, char *why, size_t whylen);
/* The last lines of a server log (what backend_start_result.log_tail holds). */
void backend_log_tail(const char *log_path, char *out, size_t outlen);
/* The child's pid (-1 for none); it is also its process group id. */
pid_t server_handle_pid(const struct server_handle *h);

/* Scans server log text (borrowed) for facts and for a failure cause: *failure is START_OOM,
 * START_KV_TOO_SMALL, or START_OK when the log names neither; reason gets the line that said
 * so, trimmed (empty when none). The last "GPU KV cache size" and "Maximum concurrency" lines
 * win (a restarted engine logs them again). Matching ignores case. */
void server_log_scan(const char *text, struct server_facts *f, enum start_status *failure,
                     char *reason, size_t reason_len);

/* The argv the backend runs (for tests and for printing; backend_start logs it as "+ ...").
 * port is the host port (sim/command/docker publish). NULL-terminated; the caller frees it
 * with backend_argv_free. 0; -EINVAL (bad options or template); -ENOENT (none has no argv). */
MUST_USE int backend_argv(const struct backend_options *o, const struct server_setup *s, int port,
                          char ***argv_out);
void backend_argv_free(char **argv); /* NULL is a no-op */

#endif
