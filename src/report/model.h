/*
 * model.h - the numbers a report shows, as one JSON document: the page embeds it for its
 * charts, and the Markdown summary reads its tables from it. Everything here is already
 * aggregated (see docs/REPORT.md "Large runs"), so its size does not grow with the requests.
 */
#ifndef TB_REPORT_MODEL_H
#define TB_REPORT_MODEL_H

#include <jansson.h>

#include "report/guidance.h"
#include "report/load.h"

/* Quantiles a CDF is drawn from (0, 1/(n-1), ..., 1). */
#define MODEL_CDF_POINTS 200
/* Telemetry longer than this many samples is averaged into this many time bins. */
#define MODEL_TIMELINE_BINS 1200
/* Pooled ITL gaps kept per point for its CDF; more are taken at an even stride. */
#define MODEL_MAX_GAPS (2u * 1000 * 1000)

/* New reference: {title, users, slo, guidance, runs, tenants, predicted_vs_measured}.
 * self_exe (NULL: none) runs `plan` for the runs' closed-loop points, on the run's simulated GPU
 * or on gpu when given. */
json_t *report_model_build(const struct report_input *in, const struct guidance *g,
                           const struct report_slo *slo, const char *title, const char *self_exe,
                           const char *gpu);

/* The `n` quantiles of an ascending array (NAN-free), in the array's unit times scale. */
json_t *quantiles_json(const double *v, size_t n, size_t points, double scale);

#endif
