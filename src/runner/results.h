/*
 * results.h - the result files (docs/OUTPUTS.md): <prefix>_<stamp>_detailed.json,
 * _summary.csv and _telemetry.json. Each flush rewrites all three through a temporary file
 * and rename(), so an interrupted run always leaves valid files holding every finished
 * request.
 */
#ifndef TB_RESULTS_H
#define TB_RESULTS_H

#include <stddef.h>

#include <jansson.h>

#include "runner/metrics.h"
#include "runner/record.h"
#include "telemetry/telemetry.h"

/* Identifies a point and tenant (one summary.csv row). */
struct point_info {
    const char *benchmark; /* benchmark.name */
    const char *tenant;
    const char *model;
    int context_length; /* 0 = none (prompt lengths from min/max) */
    int concurrency;    /* 0 = no cap */
    double rate;        /* INFINITY = inf */
    enum arrival arrival;
    bool trace;         /* arrivals replay a trace (arrival and rate do not apply) */
    double trace_speed; /* its speed factor */
    int num_requests;
    struct dist dispatch_lag_s; /* client self-check (t_sent - t_due when no cap held it) */
    struct dist loop_lag_s;     /* event-loop lateness of timers */
    bool client_distorted;      /* a lag p99 past its limit (selfcheck.h) */
    const char *distortion;     /* why, with the figures; "" when not distorted */
    double client_error_s;      /* the possible error of the client's times (larger lag p99) */
    bool partial;               /* cut short: a checkpoint mid-point, or Ctrl-C */
    /* Session turns never sent because an earlier turn of theirs failed. */
    size_t session_turns_skipped;
    /* Why the point stopped sending: "requests" (num_requests sent), "duration"
     * (requests.duration_s), "decided" (requests.stop_when_decided), "interrupted"; NULL =
     * "requests". */
    const char *ended_by;
    size_t point; /* the point's index in the config's sweep (detailed.json "point") */
};

struct results_writer;

/* Creates dir if needed; names the files from prefix and the current UTC time.
 * 0 or -errno with a message in err. */
MUST_USE int results_open(struct results_writer **out, const char *dir, const char *prefix,
                          char *err, size_t errlen);
/* Top-level fields of detailed.json; each argument is a new reference the writer steals
 * (NULL = null). started_at is ISO-8601 UTC. */
void results_set_meta(struct results_writer *w, const char *started_at, json_t *tool,
                      json_t *config, json_t *server, json_t *host, json_t *gpus);
/* The run's clock origin (CLOCK_MONOTONIC ns), written as detailed.json "clock". */
void results_set_clock(struct results_writer *w, mono_ns t0);
/* detailed.json's "load" (distributed load, src/scale/load.h): a new reference the writer
 * steals, replacing the last; NULL = null (one process made the load). */
void results_set_load(struct results_writer *w, json_t *load);
/* Adds a point: its identity, summary, telemetry window (NULL = none) and records
 * (copied into JSON now; times written relative to t0, the run's start). */
void results_add_point(struct results_writer *w, const struct point_info *pi,
                       const struct point_summary *s, const struct telemetry_window *tw,
                       const struct req_record *recs, size_t n, mono_ns t0);
/* Where the writer stands; results_rollback() forgets every point added since. A checkpoint
 * adds the unfinished point as it stands, flushes, and rolls back, so that a crash in the
 * middle of a long point loses little. */
struct results_mark {
    size_t points_len;
    size_t csv_len;
};
void results_mark(const struct results_writer *w, struct results_mark *m);
void results_rollback(struct results_writer *w, const struct results_mark *m);
/* Rewrites the three files; telemetry may be NULL (an empty sample list is written).
 * 0 or -errno with a message in err. */
MUST_USE int results_flush(struct results_writer *w, json_t *telemetry, char *err, size_t errlen);
/* Moves the files' place to dir (created if needed), same names; the next flush writes
 * there. 0 or -errno with a message in err. */
MUST_USE int results_relocate(struct results_writer *w, const char *dir, char *err, size_t errlen);
const char *results_path(const struct results_writer *w, const char *kind); /* "detailed", ... */
void results_free(struct results_writer *w);                                /* NULL is a no-op */

#endif
