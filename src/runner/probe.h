/*
 * probe.h - what the runner learns about a server before it sends load: is it up,
 * which models it serves (/v1/models, with vLLM's max_model_len), its version
 * (/version). Works with any OpenAI-compatible server; missing endpoints are unknowns.
 */
#ifndef TB_PROBE_H
#define TB_PROBE_H

#include <stdbool.h>
#include <signal.h>
#include <stddef.h>

#include <jansson.h>

#include "core/xalloc.h"

struct server_info {
    char *endpoint;
    char **models; /* ids from /v1/models, in order */
    size_t n_models;
    long max_model_len; /* of the first model, -1 unknown */
    char *version;      /* NULL unknown */
};

/* A flag a signal handler sets: every wait here (the polling and each request in flight)
 * ends soon after it becomes non-zero, with -EINTR. NULL = none. */
void probe_set_stop_flag(volatile sig_atomic_t *flag);

/* Polls GET {endpoint}/v1/models until it answers or wait_s passes (INFINITY: until it
 * answers or the stop flag is set). 0; -EINTR (stopped); -ECONNREFUSED (nothing answers: err names
 * the URL and what to check); -EAGAIN (it answers but is not ready, e.g. 503 while loading);
 * -EACCES (401/403). */
MUST_USE int probe_server(const char *endpoint, const char *api_key, double wait_s,
                          struct server_info *out, char *err, size_t errlen);
/* Sends one tiny request (max_tokens 1) the way the load will, with vLLM's extensions
 * ignore_eos and min_tokens. *accepted is false only when the server answers 400 naming one of
 * them (OpenAI's API: "Unrecognized request argument supplied: ignore_eos"); any other answer
 * leaves it true, and real errors show up in the load. chat selects /v1/chat/completions. */
void probe_extensions(const char *endpoint, bool chat, const char *model, const char *api_key,
                      bool *accepted);
json_t *server_info_json(const struct server_info *si, const char *model);
void server_info_release(struct server_info *si);

/* Host facts for result files: hostname, kernel, cpu model, cores, memory. */
json_t *host_info_json(void);

#endif
