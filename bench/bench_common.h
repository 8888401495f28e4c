/*
 * bench_common.h - small helpers shared by the benchmark programs: run the testbench
 * binary, read its JSON output, find result files.
 */
#ifndef TB_BENCH_COMMON_H
#define TB_BENCH_COMMON_H

#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <jansson.h>

/* Runs argv (argv[0] = path) with stdout to /dev/null unless keep_stdout; fills ru with the
 * child's resource use. Returns its exit status (128 + signal if killed). */
int bench_run(char *const *argv, int keep_stdout, struct rusage *ru);
/* Starts argv in the background; returns its pid. */
pid_t bench_spawn(char *const *argv);
/* Runs a command and parses its stdout as JSON (NULL on failure). */
json_t *bench_json_from_command(const char *cmd);
/* First file in dir whose name ends with suffix (caller frees), or NULL. */
char *bench_find(const char *dir, const char *suffix);
/* A number at a path like "points.0.summary.ttft_ms.p50" (NAN if missing). */
double bench_path_number(json_t *root, const char *path);

/* A loopback TCP port free now (-1 on failure). */
int bench_free_port(void);
/* Waits until something accepts on 127.0.0.1:port; 0 or -ETIMEDOUT. */
int bench_wait_listening(int port, double timeout_s);

/* Writes a made-up tiny model (bench/tiny-0.1b, alias bench-tiny) into a new temporary
 * catalog folder, so that the engine's steps are short and the limit measured is the HTTP
 * path's CPU, not the modelled GPU. dir receives the folder (at least 64 bytes). 0 or -errno. */
int bench_tiny_catalog(char *dir, size_t len);
void bench_tiny_catalog_remove(const char *dir);

#endif
