/*
 * load.h - finds and reads testbench results for `report` and `compare`: run result files
 * (<prefix>_<stamp>_detailed.json with its _telemetry.json beside it), folders of them, and
 * study folders (study.csv and the runs it points at). Every file is checked to be ours and of
 * a schema this binary understands before anything is drawn from it.
 */
#ifndef TB_REPORT_LOAD_H
#define TB_REPORT_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "core/xalloc.h"
#include "report/csv.h"

/* The newest detailed.json / telemetry.json schema this reader understands. */
#define REPORT_SCHEMA_VERSION 1
/* A folder walk stops this deep below the named folder (results/<study>/<setup>/ is 2). */
#define REPORT_MAX_DEPTH 3
/* Input ceilings: more is a mistake (a home folder given by accident), not a benchmark. */
#define REPORT_MAX_RUNS 4096
/* A result file larger than this is refused rather than parsed (parsing takes ~5x its size in
 * memory; a million requests of 128 tokens is ~2 GiB). */
#define REPORT_MAX_FILE_BYTES (4ull * 1024 * 1024 * 1024)
#define REPORT_MAX_STUDIES 256

struct report_run {
    char *path;           /* the detailed.json */
    char *telemetry_path; /* NULL when absent beside it */
    char *label;          /* the file's stem, or the study's setup name */
    char *study_setup;    /* NULL unless a study referenced it */
    json_t *detailed;     /* owned */
    json_t *telemetry;    /* owned; NULL when absent */
    char *model;          /* served model name */
    char *quantization;   /* as configured; "default" when the config left it to the model */
    char *kv_dtype;       /* "auto" (sim default), a dtype, or "unknown" for a real server */
    char *gpu;            /* catalog id for predictions (the sim's), or NULL */
};

struct report_study {
    char *dir;  /* the study folder */
    char *name; /* folder name */
    struct csv_table csv;
    json_t *definition; /* study.json's "definition" (workloads, SLO, users), or NULL */
};

struct report_input {
    struct report_run *runs;
    size_t n_runs;
    struct report_study *studies;
    size_t n_studies;
    bool progress; /* say on stderr what is being read (large inputs) */
};

void report_input_init(struct report_input *in);
void report_input_release(struct report_input *in);
/*
 * Adds what path names: a result file, a folder of them, a study folder, or a glob of those.
 * 0; -EINVAL (not a testbench result or holds none), -EPROTO (a newer schema), or another
 * -errno from reading. err (errlen bytes) says which file and why.
 */
MUST_USE int report_input_add(struct report_input *in, const char *path, char *err, size_t errlen);

/* Helpers over the runs' JSON. */
double json_num(const json_t *j, const char *key); /* NAN when absent or null */
/* Writes j[key] through fmt, or "–" when it is absent or null (a table cell, a summary line). */
void json_num_write(FILE *f, const json_t *j, const char *key, const char *fmt);
/* A distribution's field in ms: summary[key][q], e.g. ("ttft_ms", "p95"). */
double summary_dist(const json_t *summary, const char *key, const char *q);

#endif
