/*
 * workload.h - what a point's workload was and what its new figures say, for the report:
 * where the prompts came from (synthetic, a dataset, a trace, a RAG pool) and the output
 * lengths asked for against those measured; sessions (per-turn TTFT, prompt growth, prefix-cache
 * hits); reasoning (TTFA beside TTFT, reasoning and answer tokens, per-phase rates). All of it is
 * aggregated here, so the page's size does not grow with the requests.
 */
#ifndef TB_REPORT_WORKLOAD_H
#define TB_REPORT_WORKLOAD_H

#include <jansson.h>

/* Bars of a point's measured output-length histogram (fewer when the lengths are fewer). */
#define WORKLOAD_HIST_BINS 20

/*
 * New reference: {source, source_detail, output_dist, output_target: {min,p50,p95,max,mean},
 * output_measured: {...}, output_hist: {lo, width, counts}, cached_prompt_pct, sessions,
 * reasoning}, sessions and reasoning null when the point had none. config is the run's resolved
 * config (its tenants' requests override the top-level ones); point is one of its points.
 */
json_t *workload_point_json(const json_t *config, const json_t *point);

#endif
