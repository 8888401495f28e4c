/*
 * measure_cfg.h - what a verdict rests on, as the config sets it (docs/METRICS.md "Verdicts"):
 * the SLO's percentile and confidence, the fewest requests that can decide it, and the rules of
 * requests.warmup_requests, warmup_s, duration_s and stop_when_decided (docs/CONFIG.md).
 */
#ifndef TB_MEASURE_CFG_H
#define TB_MEASURE_CFG_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

#define SLO_CONFIDENCE_DEFAULT 0.95
#define SLO_CONFIDENCE_MIN 0.5
#define SLO_CONFIDENCE_MAX 0.999

/* The judged quantile in (0, 1]: slo.percentile / 100, 0.95 when unset or out of range. */
double slo_cfg_quantile(const struct slo_cfg *s);
/* The two-sided interval level: slo.confidence, 0.95 when 0 (unset). */
double slo_cfg_confidence(const struct slo_cfg *s);
/* Each end's error of that interval, (1 - confidence) / 2. */
double slo_cfg_alpha(const struct slo_cfg *s);
/* True when at least one objective (ttft_ms, itl_ms, tpot_ms, e2e_ms) is set. */
bool slo_cfg_has_objective(const struct slo_cfg *s);
/* The fewest judged requests whose interval has both ends: below it no verdict can be "met"
 * with confidence (72 for p95 at 95 %). 0 when no number suffices (p100). */
size_t slo_cfg_min_requests(const struct slo_cfg *s);

#endif
