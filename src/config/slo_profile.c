/*
 * slo_profile.c - the named SLO profiles (slo_profile.h). The figures and their sources are
 * also in docs/CONFIG.md ("slo"); tests/test_slo_profile.c checks every entry point uses the
 * default.
 */
#include "config/slo_profile.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

#define MLPERF_CONF "MLPerf Inference loadgen/mlperf.conf and inference_rules.adoc (mlcommons)"

static const struct slo_profile profiles[] = {
    {"chat", "people in a conversation: the answer starts within 2 s and streams at 10 tokens/s",
     2000, NAN, 100, NAN, 95,
     MLPERF_CONF ": the Server (conversational) scenario of Llama-3.1-8B, TTFT 2 s and TPOT "
                 "100 ms"},
    {"interactive", "a fast assistant (code completion, agents): TTFT 0.5 s, 33 tokens/s", 500, NAN,
     30, NAN, 95,
     MLPERF_CONF ": the Interactive scenario of Llama-3.1-8B, TTFT 500 ms and TPOT 30 ms "
                 "(Llama-2-70B's: 450 ms and 40 ms)"},
    {"long_documents", "questions over long documents and RAG: TTFT 6 s, then 5.7 tokens/s", 6000,
     NAN, 175, NAN, 95,
     MLPERF_CONF ": the Server scenario of Llama-3.1-405B, whose prompts are long documents, "
                 "TTFT 6 s and TPOT 175 ms"},
    {"batch", "offline work nobody watches: no TTFT objective, TPOT under 200 ms", NAN, NAN, 200,
     NAN, 95,
     MLPERF_CONF ": the loosest published TPOT bound (Llama-2-70B Server, 200 ms); the Offline "
                 "scenario itself has none"},
};

#define N_PROFILES (sizeof(profiles) / sizeof(profiles[0]))

const struct slo_profile *slo_profile_find(const char *name)
{
    for (size_t i = 0; name && i < N_PROFILES; i++)
        if (strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    return NULL;
}

const struct slo_profile *slo_profile_default(void)
{
    return slo_profile_find(SLO_PROFILE_DEFAULT);
}

const struct slo_profile *slo_profiles(size_t *n)
{
    *n = N_PROFILES;
    return profiles;
}

const char *slo_profile_names(void)
{
    return "chat, interactive, long_documents, batch";
}

void slo_from_profile(struct slo_cfg *slo, const struct slo_profile *p)
{
    slo->ttft_ms = p->ttft_ms;
    slo->itl_ms = p->itl_ms;
    slo->tpot_ms = p->tpot_ms;
    slo->e2e_ms = p->e2e_ms;
    slo->percentile = p->percentile;
    if (!(slo->confidence > 0)) /* a profile says nothing of it: the default level */
        slo->confidence = 0.95;
    snprintf(slo->profile, sizeof(slo->profile), "%s", p->name);
}

static bool same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

bool slo_any(const struct slo_cfg *slo)
{
    return slo->ttft_ms > 0 || slo->itl_ms > 0 || slo->tpot_ms > 0 || slo->e2e_ms > 0;
}

void slo_describe(const struct slo_cfg *slo, char *buf, size_t len)
{
    const struct slo_profile *p = slo_profile_find(slo->profile);
    bool changed = p && !(same(p->ttft_ms, slo->ttft_ms) && same(p->itl_ms, slo->itl_ms) &&
                          same(p->tpot_ms, slo->tpot_ms) && same(p->e2e_ms, slo->e2e_ms) &&
                          same(p->percentile, slo->percentile));
    size_t n =
        (size_t)snprintf(buf, len, "%s%s:", p ? p->name : "custom", changed ? " (changed)" : "");
    const struct {
        const char *name;
        double v;
    } obj[] = {
        {"TTFT", slo->ttft_ms}, {"ITL", slo->itl_ms}, {"TPOT", slo->tpot_ms}, {"E2E", slo->e2e_ms}};
    bool any = false;
    for (size_t i = 0; i < 4 && n < len; i++) {
        if (!(obj[i].v > 0))
            continue;
        n += (size_t)snprintf(buf + n, len - n, "%s %s p%g <= %g ms", any ? "," : "", obj[i].name,
                              slo->percentile, obj[i].v);
        any = true;
    }
    if (!any && n < len)
        snprintf(buf + n, len - n, " no objectives");
}
