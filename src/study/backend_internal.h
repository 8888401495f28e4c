/*
 * backend_internal.h - what the backend's files share (private to src/study/backend*.c and
 * server_log.c).
 */
#ifndef TB_STUDY_BACKEND_INTERNAL_H
#define TB_STUDY_BACKEND_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "study/backend.h"

#define BACKEND_HOST "127.0.0.1"
#define BACKEND_MAX_ARGS 4096        /* words in one argv */
#define BACKEND_MAX_WORD (64 * 1024) /* bytes in one word of a command template */
#define BACKEND_CONTAINER_PORT 8000  /* vLLM's port inside the container */
#define BACKEND_DEFAULT_PREFIX "testbench"
#define BACKEND_HOST_NETWORK "host" /* backend.network: the container on the host's network */

/* backend_argv with a message: err names what is wrong (an unknown placeholder, an unset
 * value, a bad setup id). */
MUST_USE int backend_argv_err(const struct backend_options *o, const struct server_setup *s,
                              int port, char ***argv_out, char *err, size_t errlen);
/* A docker backend with network "host": no port is published, the server listens on our
 * loopback port itself and the endpoint is http://127.0.0.1:PORT. */
bool backend_docker_host_net(const struct backend_options *o);
/* "<name_prefix>-<id>" into buf; 0 or -EINVAL (id or prefix empty or with other characters
 * than [a-z0-9._-], or too long; err says so). */
MUST_USE int backend_container_name(const struct backend_options *o, const struct server_setup *s,
                                    char *buf, size_t len, char *err, size_t errlen);
/* The last max_lines lines of text (borrowed) into out, at most outlen - 1 bytes (the end is
 * kept when they are longer). */
void server_log_tail(const char *text, size_t max_lines, char *out, size_t outlen);
/* The first line of text (borrowed) that reads as an error ("Unable to find image ...",
 * "docker: Error response from daemon: ...", a Python exception), not one of our own "+ ..."
 * lines; else the last line that is not ours; "" when there is none. The cause usually comes
 * first: what follows ("Run 'docker run --help' for more information") is its fallout. */
void server_log_first_error(const char *text, char *out, size_t outlen);

#endif
