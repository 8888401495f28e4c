/*
 * judge.c - the verdict of a point read back from its files (judge.h). The records are the
 * evidence: a summary's percentiles leave the failed requests out, and an override of the
 * objectives needs the samples anyway.
 */
#include "report/judge.h"

#include <math.h>
#include <string.h>

#include "config/measure_cfg.h"
#include "report/load.h"
#include "core/stats.h"

const json_t *report_tenant_section(const json_t *run, const char *tenant, const char *key)
{
    json_t *cfg = json_object_get(run, "config");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(cfg, "tenants"), i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        if (name && tenant && strcmp(name, tenant) == 0 && json_object_get(t, key))
            return json_object_get(t, key);
    }
    return json_object_get(cfg, key);
}

/* A positive number from the override, else from the file; NAN when neither sets one. */
static double objective(double override, const json_t *cfg, const char *key)
{
    double v = isnan(override) ? json_num(cfg, key) : override;
    return v > 0 ? v : NAN;
}

static double record_num(const json_t *r, const char *key)
{
    const json_t *v = json_object_get(r, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int report_point_verdict(const json_t *run, const json_t *point, const struct report_slo *slo,
                         struct slo_verdict *out)
{
    const char *tenant = json_string_value(json_object_get(point, "tenant"));
    const json_t *cfg = report_tenant_section(run, tenant, "slo");
    struct slo_cfg s = {
        .ttft_ms = objective(slo ? slo->ttft_ms : NAN, cfg, "ttft_ms"),
        .itl_ms = objective(slo ? slo->itl_ms : NAN, cfg, "itl_ms"),
        .tpot_ms = objective(slo ? slo->tpot_ms : NAN, cfg, "tpot_ms"),
        .e2e_ms = objective(slo ? slo->e2e_ms : NAN, cfg, "e2e_ms"),
        .percentile =
            slo && !isnan(slo->percentile) ? slo->percentile : json_num(cfg, "percentile"),
        .confidence = json_num(cfg, "confidence"),
    };
    if (isnan(s.percentile))
        s.percentile = 95;
    if (isnan(s.confidence)) /* a file from before the key: the default */
        s.confidence = SLO_CONFIDENCE_DEFAULT;
    struct dvec d[OBJ__COUNT];
    for (int o = 0; o < OBJ__COUNT; o++)
        dvec_init(&d[o]);
    size_t requests = 0, failed = 0, by_class[REQ__COUNT] = {0};
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(point, "requests"), i, r)
    {
        if (json_is_true(json_object_get(r, "warmup")))
            continue;
        requests++;
        const char *st = json_string_value(json_object_get(r, "status"));
        bool ok = st && strcmp(st, "ok") == 0;
        if (!ok) {
            failed++;
            int c = REQ_BAD_RESPONSE; /* a class this build does not know */
            for (int k = 1; k < REQ__COUNT; k++)
                if (st && strcmp(st, req_status_name((enum req_status)k)) == 0)
                    c = k;
            by_class[c]++;
        }
        slo_samples_add_values(d, &s, ok, record_num(r, "ttft"), record_num(r, "tpot"),
                               record_num(r, "e2e"));
        size_t k;
        json_t *g;
        json_array_foreach(ok ? json_object_get(r, "itl") : NULL, k, g)
            slo_samples_add_gap(d, &s, json_is_number(g) ? json_number_value(g) : NAN);
    }
    struct slo_verdict v;
    slo_verdict_judge(&v, &s, d, requests, failed, by_class);
    for (int o = 0; o < OBJ__COUNT; o++)
        dvec_release(&d[o]);
    if (out)
        *out = v;
    return !v.has_slo ? -1 : v.met ? 1 : 0;
}
