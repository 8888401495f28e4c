/*
 * html.h - writes the report page: one self-contained HTML file (the chart library, the page's
 * script and style and the data all inlined; the page loads nothing from anywhere).
 */
#ifndef TB_REPORT_HTML_H
#define TB_REPORT_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "core/xalloc.h"

/* The chart library's file from Debian's libjs-chart.js; $TESTBENCH_CHARTJS overrides. */
#ifndef TB_CHARTJS_PATH
#define TB_CHARTJS_PATH "/usr/share/javascript/chart.js/chart.min.js"
/* For the page's sections written in other files (html_workload.c). */
void html_esc(FILE *f, const char *s); /* s as HTML text; NULL writes nothing */
/* A <figure> holding one chart: <canvas attrs> that report.js fills (zoom: a reset button). */
void html_figure(FILE *f, const char *caption, const char *attrs, bool zoom);
/* A run's workload, sessions and reasoning (html_workload.c); idx is the run's index. */
void html_workload_write(FILE *f, const json_t *run, size_t idx);

#endif
/* A chart library bigger than this is not the one we mean. */
#define HTML_MAX_LIBRARY (8u * 1024 * 1024)

/* The chart library's path in effect (the variable's or the default). Borrowed. */
const char *html_chartjs_path(void);
/* Writes model (report_model_build's, with "compare" added by compare) to path through a
 * temporary file. 0, or -errno; err says what failed (the missing library names its package). */
MUST_USE int html_write(const char *path, const json_t *model, char *err, size_t errlen);

/* For the page's sections written in other files (html_workload.c). */
void html_esc(FILE *f, const char *s); /* s as HTML text; NULL writes nothing */
/* A <figure> holding one chart: <canvas attrs> that report.js fills (zoom: a reset button). */
void html_figure(FILE *f, const char *caption, const char *attrs, bool zoom);
/* A run's workload, sessions and reasoning (html_workload.c); idx is the run's index. */
void html_workload_write(FILE *f, const json_t *run, size_t idx);
/* A row per run outside a study, for a page of more runs than it charts (html_runs.c). */
void html_runs_summary(FILE *f, const json_t *model);
/* Every run's file, start, versions, GPU, config and client self-check (html_runs.c). */
void html_provenance(FILE *f, const json_t *model);

#endif
