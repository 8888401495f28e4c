/*
 * load_internal.h - what the distributed-load files of src/scale share (load_*.c): the clock
 * offset estimate, the coordinator, the worker, the record reader and the merge. Other rooms
 * call load.h.
 */
#ifndef TB_SCALE_LOAD_INTERNAL_H
#define TB_SCALE_LOAD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "runner/record.h"
#include "runner/results.h"
#include "runner/run.h"

/* The protocol's version: a worker and a coordinator of another refuse each other. */
#define LOAD_PROTOCOL 1
/* Ping samples per clock measurement (each one HTTP round trip). */
#define LOAD_PINGS 16
/* How long every worker waits for the others, from the first one's arrival at a point's
 * start, or at the end with its results (TESTBENCH_LOAD_TIMEOUT_S overrides). */
#define LOAD_TIMEOUT_S 600.0
/* Points start this long after the last worker is ready (at least; more when a round trip
 * is slow), so that the start reaches every worker before it is due. */
#define LOAD_START_LEAD_NS (100 * NS_PER_MS)
/* An uploaded result file (the whole detailed.json in the coordinator's memory). */
#define LOAD_RESULT_MAX ((size_t)16 << 30)
/* Any other request or reply body. */
#define LOAD_BODY_MAX (1u << 20)

/* ---- clock (load_sync.c) ---- */

/* One ping: the worker's clock when it sent and when the answer came, the coordinator's
 * clock when it answered. */
struct load_ping {
    mono_ns sent, coord, recv;
};

/* A worker's clock against the coordinator's: worker = coordinator + offset_ns, the true
 * offset within offset_ns +- uncertainty_ns. */
struct load_sync {
    size_t point;
    bool end;     /* false: before the point's start; true: after its requests */
    mono_ns t_ns; /* the worker's clock at the measurement (its best ping's middle) */
    int64_t offset_ns;
    int64_t uncertainty_ns; /* half the width of the interval the pings leave */
    int64_t rtt_min_ns;
    int samples;
};

/* NTP's bound from each ping (the coordinator answered between sent and recv, so the offset
 * lies in [sent - coord, recv - coord], an interval as wide as the round trip), intersected
 * over the pings: never wider than the minimum-RTT ping's. Where the intervals do not meet
 * (a clock stepped: impossible for CLOCK_MONOTONIC), the minimum-RTT ping's alone. 0, or
 * -EINVAL for n == 0. */
MUST_USE int load_sync_estimate(const struct load_ping *p, size_t n, struct load_sync *out);
/* Measures with n pings of GET base/v1/clock on h (a keep-alive handle). 0 or -errno. */
MUST_USE int load_sync_measure(CURL *h, const char *base, int n, struct load_sync *out);
json_t *load_sync_json(const struct load_sync *s);
/* 0, or -EINVAL when j is not such an object. */
MUST_USE int load_sync_from_json(const json_t *j, struct load_sync *out);

/* ---- small shared helpers (load_sync.c) ---- */

/* A blocking JSON exchange with the coordinator: method "GET" or "POST", body NULL or a
 * JSON text of len bytes; *status the HTTP status (0: no answer), *reply the parsed answer
 * (NULL when none or not JSON; the caller decrefs). 0, or -errno with why in err. */
MUST_USE int load_http(CURL *h, const char *method, const char *url, const char *body, size_t len,
                       double timeout_s, long *status, json_t **reply, char *err, size_t errlen);
/* A coordinator on this machine (localhost, 127.0.0.0/8, [::1]) is reached directly, never
 * through a proxy the environment names. */
bool load_url_is_loopback(const char *url);
/* The fingerprint of what every worker must agree on: the config less its paths,
 * endpoints and the simulator (the coordinator may serve one), as 16 hex digits. */
void load_config_fingerprint(const struct config *c, char out[17]);
/* Every concurrency cap of c can be split over n workers (at least one each). 0, or
 * -EINVAL with why in err. */
int load_check_split(const struct config *c, int n, char *err, size_t errlen);
/* TESTBENCH_LOAD_TIMEOUT_S, else LOAD_TIMEOUT_S. */
double load_timeout_s(void);
/* The machine's name (gethostname) into buf. */
void load_hostname(char *buf, size_t len);

/* ---- the coordinator (load_coord.c) ---- */

struct load_coord_options {
    const char *bind; /* "HOST:PORT" (port 0: any free one) */
    int n;            /* workers expected */
    const struct config *cfg;
    const char *endpoint; /* the server every worker is told to use (a simulator the
                             coordinator runs), NULL = each worker's own config */
    const char *out_dir;  /* merged files go here; the workers' into a folder beside them */
    const char *prefix;
    bool quiet;
};

struct load_coord;

/* Binds and prepares; *url is where workers reach it. 0, or an exit code (said). */
int load_coord_new(struct load_coord **out, const struct load_coord_options *o);
const char *load_coord_url(const struct load_coord *c);
/* The folder the workers' uploaded files go to (they may write theirs there directly). */
const char *load_coord_workers_dir(const struct load_coord *c);
/* Tells the coordinator about a local worker process (--workers): its exit is noticed. */
void load_coord_add_child(struct load_coord *c, int rank, int pid);
/* Serves until every worker has sent its results or is lost, then merges them. Returns the
 * exit code: the worst of the workers' and the merge's. */
int load_coord_run(struct load_coord *c);
void load_coord_free(struct load_coord *c); /* NULL is a no-op */

/* ---- a worker (load_worker.c) ---- */

/* Joins the coordinator at url as rank (-1: SLURM_PROCID, JOB_COMPLETION_INDEX, else one the
 * coordinator gives), runs cfg (taken) with o, uploads the result files. Returns the run's
 * exit code (or the failure's). */
int load_worker_run(struct config *cfg, const struct run_options *o, const char *url, int rank);

/* ---- records and merge (load_records.c, load_merge.c) ---- */

/* A request record from its detailed.json object, on the clock it was written with: every
 * time is t0 + its offset in the file, and the latencies (ttft, itl, e2e, ...) come out to
 * the nanosecond the runner measured (docs/SCALE_LOAD.md, "Exact and approximate"). tenant is
 * the record's tenant index. 0, or -EINVAL (a field of the wrong type; said in err). */
MUST_USE int load_record_from_json(const json_t *j, mono_ns t0, int tenant, struct req_record *out,
                                   char *err, size_t errlen);
/* Shifts every time of r by delta nanoseconds (unset times stay 0). */
void load_record_shift(struct req_record *r, int64_t delta);

/* Merges the workers' detailed.json files (paths) into rw (borrowed: its files are written).
 * *merged_path (may be NULL) gets the merged detailed.json's path (caller frees). Returns an
 * exit code; quiet: no tables. */
int load_merge_into(struct results_writer *rw, const char *const *paths, size_t n, bool quiet,
                    char **merged_path);
/* The same into out_dir, the files named after prefix (NULL: the workers' own prefix). */
int load_merge_files(const char *const *paths, size_t n, const char *out_dir, const char *prefix,
                     bool quiet, char **merged_path);

#endif
