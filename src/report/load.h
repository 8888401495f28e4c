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
/* Input ceilings: more is a mistake (a home folder given by accident), not a benchmark. Runs
 * beyond REPORT_MAX_RUNS are left out with a warning (each holds its summaries in memory,
 * ~100 KB). */
#define REPORT_MAX_RUNS 20000
/* More runs than this and the page summarises: a table row per run instead of a section of
 * charts each (500 runs took 68 s to render in Chromium, 4,000 did not finish), and no run
 * keeps its per-request records in memory. */
#define REPORT_CHART_RUNS 200
/* A result file larger than this is refused rather than parsed (parsing takes ~5x its size in
 * memory; a million requests of 128 tokens is ~2 GiB). */
#define REPORT_MAX_FILE_BYTES (4ull * 1024 * 1024 * 1024)
/* Memory a parsed result file takes per byte of its text (jansson's tree: a number of 8
 * characters becomes a 40-byte node; measured 6.1 GB for a 1.0 GB detailed.json). A file whose
 * tree would not fit in what the process may still allocate is refused before parsing. */
#define REPORT_PARSE_FACTOR 6.5
#define REPORT_MAX_STUDIES 256

struct report_run {
    char *path;           /* the detailed.json */
    char *telemetry_path; /* NULL when absent beside it */
    char *label;          /* the file's stem, or the study's setup name */
    char *study_setup;    /* NULL unless a study referenced it */
    json_t *detailed;     /* owned */
    json_t *telemetry;    /* owned; NULL when absent */
    char *model;          /* the base model (the config's), not a LoRA adapter's name */
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
    bool progress;      /* say on stderr what is being read (large inputs) */
    size_t detail_runs; /* 0, or: beyond this many runs, drop the per-request records */
    size_t n_skipped;   /* files inside folders or named by studies that could not be read */
    bool warned_full;   /* REPORT_MAX_RUNS reached and said */
};

void report_input_init(struct report_input *in);
void report_input_release(struct report_input *in);
/*
 * Adds what path names: a result file, a folder of them, a study folder, or a glob of those.
 * 0; -EINVAL (not a testbench result or holds none), -EPROTO (a newer schema), -ENOMEM (it
 * would not fit in memory), or another -errno from reading. err (errlen bytes) says which file
 * and why. Inside a folder or a study a file that cannot be read is skipped with a warning
 * (counted in n_skipped): only what path itself names is an error.
 */
MUST_USE int report_input_add(struct report_input *in, const char *path, char *err, size_t errlen);

/* Helpers over the runs' JSON. */
double json_num(const json_t *j, const char *key); /* NAN when absent or null */
/* Writes j[key] through fmt, or "–" when it is absent or null (a table cell, a summary line). */
void json_num_write(FILE *f, const json_t *j, const char *key, const char *fmt);
/* A distribution's field in ms: summary[key][q], e.g. ("ttft_ms", "p95"). */
double summary_dist(const json_t *summary, const char *key, const char *q);

#endif
