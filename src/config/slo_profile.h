/*
 * slo_profile.h - named service-level objectives (docs/CONFIG.md "slo"): one vocabulary for
 * plan, run, study, tenancy and report, and one default. A config's `slo.profile` names one;
 * the keys it sets beside it replace that profile's values; with no profile the default
 * (SLO_PROFILE_DEFAULT) fills every objective the file does not set.
 *
 * The thresholds are published practice: MLPerf Inference's latency constraints for its LLM
 * scenarios (github.com/mlcommons/inference, loadgen/mlperf.conf; the rules in
 * github.com/mlcommons/inference_policies, inference_rules.adoc), which judge at p99; ours
 * judge at p95, since a study's probe sends tens of requests and its p99 is its slowest one.
 */
#ifndef TB_SLO_PROFILE_H
#define TB_SLO_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/xalloc.h"

struct slo_cfg;

#define SLO_PROFILE_DEFAULT "chat"

struct slo_profile {
    const char *name;
    const char *use;                         /* what it is for, in a few words */
    double ttft_ms, itl_ms, tpot_ms, e2e_ms; /* NAN = no objective */
    double percentile;
    const char *source; /* where the thresholds come from */
};

/* The profile called name (case-sensitive), or NULL. */
const struct slo_profile *slo_profile_find(const char *name);
const struct slo_profile *slo_profile_default(void);
/* The profiles in order; *n is set to their count. */
const struct slo_profile *slo_profiles(size_t *n);
/* "chat, interactive, long_documents, batch", for messages. */
const char *slo_profile_names(void);
/* Every objective and the percentile of slo from p; slo->profile names it. */
void slo_from_profile(struct slo_cfg *slo, const struct slo_profile *p);
/* What slo judges, in one line: "chat: TTFT p95 <= 2000 ms, TPOT p95 <= 100 ms", with
 * "(changed)" after the name when a value differs from the named profile's, or "custom" when
 * no profile is named; "no objectives" when none is set. */
void slo_describe(const struct slo_cfg *slo, char *buf, size_t len);
/* True when slo has at least one objective. */
bool slo_any(const struct slo_cfg *slo);

#endif
