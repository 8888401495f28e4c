/*
 * judge.h - a point of a result file against its SLO by the rule `run` and `study` use
 * (runner/verdict.h, docs/METRICS.md "Verdicts"): the objectives of the point's tenant as the
 * run recorded them, each replaced by the report's overrides (--slo-*), judged on the point's
 * request records, warm-up left out and failed requests counted as misses, with the
 * confidence interval of each quantile.
 */
#ifndef TB_REPORT_JUDGE_H
#define TB_REPORT_JUDGE_H

#include <jansson.h>

#include "report/guidance.h"
#include "runner/verdict.h"

/* run: the run's detailed.json; point: one of its points. 1 met (by the estimate: out->decided
 * says whether the interval agrees), 0 missed, -1 no objective. out may be NULL. */
int report_point_verdict(const json_t *run, const json_t *point, const struct report_slo *slo,
                         struct slo_verdict *out);

/* The section key ("slo", "requests") of tenant's own entry in the run's recorded config, else
 * the config's top-level one; NULL when neither has it. */
const json_t *report_tenant_section(const json_t *run, const char *tenant, const char *key);

#endif
