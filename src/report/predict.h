/*
 * predict.h - asks the planner: runs this binary's `plan --json` as a child process (the
 * planner has no in-process API) and returns its rows.
 */
#ifndef TB_REPORT_PREDICT_H
#define TB_REPORT_PREDICT_H

#include <stdbool.h>

#include <jansson.h>

/* plan's JSON for a handful of user counts is a few KiB; more is not plan talking. */
#define PREDICT_MAX_OUTPUT (1024u * 1024)

struct predict_query {
    const char *gpu, *model;
    const char *quantization; /* "default" or NULL: the model's own */
    const char *kv_dtype;     /* "auto", "unknown" or NULL: plan's default */
    long context;
    double output_tokens;            /* NAN: plan's default */
    const char *users;               /* comma-separated user counts */
    double slo_ttft_ms, slo_tpot_ms; /* NAN: none */
    bool sessions;                   /* users in conversation; false: closed-loop streams */
};

/* plan's rows (an array, one per user count; new reference), or NULL when plan failed. */
json_t *predict_rows(const char *self_exe, const struct predict_query *q);

#endif
