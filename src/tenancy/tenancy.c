/*
 * tenancy.c - `testbench plan --tenancy FILE` (tenancy.h). For each strategy: build its engine
 * instances (does it fit? with the numbers when not), run every tenant together in virtual time
 * (plan/vdriver.c, the planner's driver), then each tenant alone on the same instances for the
 * interference ratios, and judge each tenant by its SLO. The verdict picks, among strategies where
 * every tenant meets its SLO, the one with the largest headroom (the smallest margin to any
 * objective). docs/TENANCY.md.
 */
#include "tenancy/tenancy.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "config/catalog.h"
#include "core/exitcode.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "engine/cost.h"
#include "engine/engine.h"
#include "plan/vdriver.h"

#define MAXT TENANCY_MAX_TENANTS

/* What one strategy did. */
struct strat_out {
    const struct tenancy_strategy *s;
    bool fits;
    char fit_msg[640];
    size_t n_inst;
    char inst_gpu[MAXT][96]; /* catalog name the instance runs on */
    double inst_util[MAXT];  /* gpu_memory_utilization */
    struct engine_info inst_info[MAXT];
    int tenant_inst[MAXT]; /* tenant -> instance */
    struct vd_result together[MAXT], alone[MAXT];
    double interf_ttft[MAXT], interf_tpot[MAXT]; /* p50 together / p50 alone */
    double norm_tps[MAXT];                       /* output tok/s together / alone */
    double jain;
    double total_tps, total_goodput;
    bool all_meet;
    double headroom_pct; /* min over tenants and objectives of 1 - value / objective */
    bool judged;         /* some tenant sets an objective: the SLO verdicts mean something */
    double min_attain;
};

struct tenancy_run {
    const struct tenancy_cfg *c;
    struct catalog *cat;
    struct cost_calibration cal;
};

static const char *kind_name(enum tenancy_kind k)
{
    return k == TENANCY_SHARED ? "shared" : k == TENANCY_PARTITIONED ? "partitioned" : "mig";
}

static void engine_cfg_for(const struct tenancy_cfg *c, const struct tenancy_tenant *t,
                           const char *gpu, double util, int lora_slots, int max_model_len,
                           struct engine_config *ec)
{
    memset(ec, 0, sizeof(*ec));
    ec->gpu = gpu;
    ec->model = t->model;
    ec->quantization = t->quantization;
    ec->gpu_memory_utilization = util;
    ec->max_model_len = max_model_len;
    ec->enable_prefix_caching = 1;
    ec->num_lora_slots = lora_slots;
    ec->catalog_dir = c->catalog_dir;
}

/* Frees the engines of one build. */
static void free_engines(struct vd_instance *inst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        engine_free(inst[i].e);
        inst[i].e = NULL;
    }
}

/* Memory and slice checks that come before any engine: partition fractions adding up to more
 * than the GPU, MIG profiles the GPU lacks or cannot hold together. 0 or -ENOSPC with fit_msg;
 * -ENOENT for an unknown profile (a config error). */
static int check_layout(const struct tenancy_run *r, struct strat_out *o, char *err, size_t errlen)
{
    const struct tenancy_cfg *c = r->c;
    const struct tenancy_strategy *s = o->s;
    if (s->kind == TENANCY_PARTITIONED) {
        double sum = 0;
        for (size_t i = 0; i < s->n_values; i++)
            sum += s->fractions[i];
        if (sum > 1.0 + 1e-9) {
            snprintf(o->fit_msg, sizeof(o->fit_msg),
                     "fractions add up to %.2f of the GPU (> 1): vLLM refuses to start an "
                     "instance when free memory is below its gpu_memory_utilization x total",
                     sum);
            return -ENOSPC;
        }
        return 0;
    }
    if (s->kind != TENANCY_MIG)
        return 0;
    const struct gpu_spec *parent = catalog_find_gpu(r->cat, c->gpu);
    double mem = 0, sms = 0;
    for (size_t i = 0; i < s->n_values; i++) {
        char name[160];
        snprintf(name, sizeof(name), "%s:%s", c->gpu, s->profiles[i]);
        const struct gpu_spec *g = catalog_find_gpu(r->cat, name);
        if (!g || !g->mig_parent) {
            char list[256] = "";
            size_t used = 0;
            for (size_t k = 0; parent && k < parent->n_mig; k++) {
                int w = snprintf(list + used, sizeof(list) - used, "%s%s", k ? ", " : "",
                                 parent->mig[k].name);
                if (w < 0 || (size_t)w >= sizeof(list) - used)
                    break;
                used += (size_t)w;
            }
            snprintf(err, errlen, "%s: strategy %s: %s has no MIG profile '%s' (%s)", c->path,
                     s->name, parent ? parent->name : c->gpu, s->profiles[i],
                     parent && parent->n_mig ? list : "the GPU has no MIG profiles");
            return -ENOENT;
        }
        snprintf(o->inst_gpu[i], sizeof(o->inst_gpu[i]), "%s", g->name);
        mem += g->mig_slice.memory_fraction;
        sms += g->mig_slice.sm_fraction;
        int same = 0;
        for (size_t k = 0; k < s->n_values; k++)
            same += strcasecmp(s->profiles[k], s->profiles[i]) == 0;
        if (same > g->mig_slice.max_instances) {
            snprintf(o->fit_msg, sizeof(o->fit_msg),
                     "%d instances of MIG %s asked, the GPU holds at most %d", same,
                     g->mig_slice.name, g->mig_slice.max_instances);
            return -ENOSPC;
        }
    }
    if (mem > 1.0 + 1e-9 || sms > 1.0 + 1e-9) {
        snprintf(o->fit_msg, sizeof(o->fit_msg),
                 "the MIG slices need %.2f of the GPU's memory and %.2f of its SMs (> 1)", mem,
                 sms);
        return -ENOSPC;
    }
    return 0;
}

/* Builds the strategy's engines (all of them, even for a run of one tenant, so memory is as
 * in the together run). 0; -ENOSPC with fit_msg (weights or one request do not fit); other
 * negative errno with err (unknown names). */
static int build(const struct tenancy_run *r, struct strat_out *o, struct vd_instance *inst,
                 double *lora_s, char *err, size_t errlen)
{
    const struct tenancy_cfg *c = r->c;
    const struct tenancy_strategy *s = o->s;
    char eerr[512];
    memset(inst, 0, sizeof(*inst) * MAXT);
    if (s->kind == TENANCY_SHARED) {
        /* One engine: every tenant must use the same base model. */
        const struct model_spec *m0 = catalog_find_model(r->cat, c->tenants[0].model);
        int slots = 0, max_len = 0;
        for (size_t i = 0; i < c->n_tenants; i++) {
            const struct tenancy_tenant *t = &c->tenants[i];
            const struct model_spec *m = catalog_find_model(r->cat, t->model);
            if (m != m0 || (t->quantization == NULL) != (c->tenants[0].quantization == NULL) ||
                (t->quantization && strcasecmp(t->quantization, c->tenants[0].quantization))) {
                snprintf(
                    o->fit_msg, sizeof(o->fit_msg),
                    "one engine serves one model: %s asks %s%s%s, %s asks %s%s%s (give "
                    "the second an adapter: on the same base model to share one engine)",
                    c->tenants[0].name, c->tenants[0].model, c->tenants[0].quantization ? " " : "",
                    c->tenants[0].quantization ? c->tenants[0].quantization : "", t->name, t->model,
                    t->quantization ? " " : "", t->quantization ? t->quantization : "");
                return -ENOSPC;
            }
            bool seen = false;
            for (size_t k = 0; k < i && t->adapter; k++)
                seen |= c->tenants[k].adapter && strcmp(c->tenants[k].adapter, t->adapter) == 0;
            slots += t->adapter && !seen;
            if (t->max_model_len > max_len)
                max_len = t->max_model_len;
            o->tenant_inst[i] = 0;
        }
        o->n_inst = 1;
        snprintf(o->inst_gpu[0], sizeof(o->inst_gpu[0]), "%s", c->gpu);
        o->inst_util[0] = s->gpu_memory_utilization > 0 ? s->gpu_memory_utilization : 0.9;
        struct engine_config ec;
        engine_cfg_for(c, &c->tenants[0], c->gpu, o->inst_util[0], slots, max_len, &ec);
        ec.calibration = &r->cal;
        int rc = engine_new(&inst[0].e, &ec, eerr, sizeof(eerr));
        if (rc == -ENOSPC)
            snprintf(o->fit_msg, sizeof(o->fit_msg), "shared engine: %s", eerr);
        else if (rc)
            snprintf(err, errlen, "strategy %s: %s", s->name, eerr);
        if (rc)
            return rc;
        inst[0].gpu = -1; /* alone on its GPU */
        o->inst_info[0] = *engine_info(inst[0].e);
        for (size_t i = 0; i < c->n_tenants; i++) {
            lora_s[i] = 0;
            if (c->tenants[i].adapter) {
                /* An adapter's A and B for q,k,v,o and gate,up,down in every layer, read once
                 * per step it runs in (cost.c's LoRA reservation / slot). */
                const struct model_spec *m = m0;
                double bytes = (double)COST_LORA_RANK * m->layers *
                               (4.0 * 2.0 * m->hidden + 3.0 * (m->hidden + m->intermediate)) * 2.0;
                const struct gpu_spec *g = catalog_find_gpu(r->cat, c->gpu);
                lora_s[i] = bytes / (g->bandwidth_gbs * 1e9 * r->cal.p[CAL_WEIGHT_BW]);
            }
        }
        return 0;
    }
    o->n_inst = c->n_tenants;
    for (size_t i = 0; i < c->n_tenants; i++) {
        const struct tenancy_tenant *t = &c->tenants[i];
        lora_s[i] = 0;
        o->tenant_inst[i] = (int)i;
        if (s->kind == TENANCY_PARTITIONED) {
            snprintf(o->inst_gpu[i], sizeof(o->inst_gpu[i]), "%s", c->gpu);
            o->inst_util[i] = s->fractions[i];
            inst[i].gpu = 0; /* every partition time-slices the one GPU */
        } else {
            o->inst_util[i] = s->gpu_memory_utilization > 0 ? s->gpu_memory_utilization : 0.9;
            inst[i].gpu = -1; /* a MIG slice is isolated */
        }
        struct engine_config ec;
        engine_cfg_for(c, t, o->inst_gpu[i], o->inst_util[i], 0, t->max_model_len, &ec);
        ec.calibration = &r->cal;
        int rc = engine_new(&inst[i].e, &ec, eerr, sizeof(eerr));
        if (rc == -ENOSPC)
            snprintf(o->fit_msg, sizeof(o->fit_msg), "%s's instance (%s, %.2f): %s", t->name,
                     o->inst_gpu[i], o->inst_util[i], eerr);
        else if (rc)
            snprintf(err, errlen, "strategy %s, tenant %s: %s", s->name, t->name, eerr);
        if (rc) {
            free_engines(inst, i);
            return rc;
        }
        o->inst_info[i] = *engine_info(inst[i].e);
        int need = t->prompt_tokens + t->output_tokens;
        if (need > o->inst_info[i].max_model_len) {
            snprintf(o->fit_msg, sizeof(o->fit_msg),
                     "%s's requests need %d tokens, its instance (%s, %.2f) holds %d "
                     "(max_model_len, KV cache %ld tokens)",
                     t->name, need, o->inst_gpu[i], o->inst_util[i], o->inst_info[i].max_model_len,
                     o->inst_info[i].kv_capacity_tokens);
            free_engines(inst, i + 1);
            return -ENOSPC;
        }
    }
    return 0;
}

static void tenant_sim(const struct tenancy_tenant *t, int instance, double lora_s,
                       struct vd_tenant *out)
{
    memset(out, 0, sizeof(*out));
    out->instance = instance;
    /* A tenancy file's users are closed-loop request streams (its rate, open-loop arrivals). */
    out->population = t->users > 0 ? VD_STREAMS : VD_RATE;
    out->users = t->users;
    out->rate = t->rate;
    out->prompt = t->prompt_tokens;
    out->output = t->output_tokens;
    out->requests = t->requests;
    out->lora_s = lora_s;
    out->slo = t->slo;
}

/* Whether a tenant sets any objective at all (a tenancy file may leave slo out). */
static bool slo_set(const struct slo_cfg *slo)
{
    const double lim[4] = {slo->ttft_ms, slo->itl_ms, slo->tpot_ms, slo->e2e_ms};
    for (int k = 0; k < 4; k++)
        if (lim[k] > 0)
            return true;
    return false;
}

/* Smallest margin to any objective over the tenants, in percent of the objective. */
static double headroom(const struct tenancy_cfg *c, const struct vd_result *res)
{
    double h = INFINITY;
    for (size_t i = 0; i < c->n_tenants; i++) {
        const struct slo_cfg *slo = &c->tenants[i].slo;
        const double lim[4] = {slo->ttft_ms, slo->itl_ms, slo->tpot_ms, slo->e2e_ms};
        for (int k = 0; k < 4; k++)
            if (lim[k] > 0 && isfinite(res[i].at_pct[k]))
                h = fmin(h, (1.0 - res[i].at_pct[k] * 1e3 / lim[k]) * 100.0);
    }
    return h;
}

static int run_strategy(const struct tenancy_run *r, struct strat_out *o, char *err, size_t errlen)
{
    const struct tenancy_cfg *c = r->c;
    struct vd_instance inst[MAXT];
    struct vd_tenant ten[MAXT];
    double lora_s[MAXT];
    o->fits = false;
    int rc = check_layout(r, o, err, errlen);
    if (!rc)
        rc = build(r, o, inst, lora_s, err, errlen);
    if (rc == -ENOSPC)
        return 0; /* does not fit: said in fit_msg */
    if (rc)
        return rc;
    o->fits = true;
    for (size_t i = 0; i < c->n_tenants; i++)
        tenant_sim(&c->tenants[i], o->tenant_inst[i], lora_s[i], &ten[i]);
    struct vd_out out = {.tenants = o->together};
    rc = vd_run(inst, o->n_inst, ten, c->n_tenants, c->seed, &out, err, errlen);
    free_engines(inst, o->n_inst);
    /* Each tenant alone on fresh engines of the same layout. */
    for (size_t k = 0; k < c->n_tenants && !rc; k++) {
        rc = build(r, o, inst, lora_s, err, errlen);
        if (rc)
            break;
        struct vd_tenant one = ten[k];
        struct vd_out out1 = {.tenants = &o->alone[k]};
        rc = vd_run(inst, o->n_inst, &one, 1, c->seed, &out1, err, errlen);
        free_engines(inst, o->n_inst);
    }
    if (rc)
        return rc < 0 ? rc : -EINVAL;
    o->all_meet = true;
    o->min_attain = INFINITY;
    for (size_t i = 0; i < c->n_tenants; i++) {
        const struct vd_result *a = &o->alone[i], *t = &o->together[i];
        o->interf_ttft[i] = a->ttft.p50 > 0 ? t->ttft.p50 / a->ttft.p50 : NAN;
        o->interf_tpot[i] = a->tpot.p50 > 0 ? t->tpot.p50 / a->tpot.p50 : NAN;
        o->norm_tps[i] = a->output_tps > 0 ? t->output_tps / a->output_tps : NAN;
        o->total_tps += t->output_tps;
        o->total_goodput += isfinite(t->goodput_rps) ? t->goodput_rps : 0;
        o->all_meet &= t->meets_slo;
        o->min_attain = fmin(o->min_attain, t->attainment_pct);
    }
    o->jain = tenancy_jain(o->norm_tps, c->n_tenants);
    o->headroom_pct = headroom(c, o->together);
    o->judged = false;
    for (size_t i = 0; i < c->n_tenants; i++)
        o->judged = o->judged || slo_set(&c->tenants[i].slo);
    return 0;
}

/* ---- output ----------------------------------------------------------------------------- */

static json_t *dist_json(const struct dist *d)
{
    json_t *j = json_object();
    json_object_set_new(j, "p50_ms", json_real_or_null(d->p50 * 1e3));
    json_object_set_new(j, "p90_ms", json_real_or_null(d->p90 * 1e3));
    json_object_set_new(j, "p95_ms", json_real_or_null(d->p95 * 1e3));
    json_object_set_new(j, "p99_ms", json_real_or_null(d->p99 * 1e3));
    json_object_set_new(j, "mean_ms", json_real_or_null(d->mean * 1e3));
    return j;
}

static json_t *strategy_json(const struct tenancy_cfg *c, const struct strat_out *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string_or_null(o->s->name));
    json_object_set_new(j, "kind", json_string(kind_name(o->s->kind)));
    json_object_set_new(j, "fits", json_boolean(o->fits));
    json_object_set_new(j, "fit_msg", o->fits ? json_null() : json_string_or_null(o->fit_msg));
    if (!o->fits)
        return j;
    json_t *insts = json_array();
    for (size_t i = 0; i < o->n_inst; i++) {
        json_t *x = json_object();
        json_object_set_new(x, "gpu", json_string_or_null(o->inst_gpu[i]));
        json_object_set_new(x, "gpu_memory_utilization", json_real(o->inst_util[i]));
        json_object_set_new(x, "weights_gib", json_real(o->inst_info[i].weights_gib));
        json_object_set_new(x, "kv_budget_gib", json_real(o->inst_info[i].kv_budget_gib));
        json_object_set_new(x, "kv_capacity_tokens",
                            json_integer(o->inst_info[i].kv_capacity_tokens));
        json_object_set_new(x, "time_sliced", json_boolean(o->s->kind == TENANCY_PARTITIONED));
        json_array_append_new(insts, x);
    }
    json_object_set_new(j, "instances", insts);
    json_t *ts = json_array();
    for (size_t i = 0; i < c->n_tenants; i++) {
        const struct vd_result *t = &o->together[i];
        json_t *x = json_object();
        json_object_set_new(x, "tenant", json_string_or_null(c->tenants[i].name));
        json_object_set_new(x, "instance", json_integer(o->tenant_inst[i]));
        json_object_set_new(x, "ttft", dist_json(&t->ttft));
        json_object_set_new(x, "tpot", dist_json(&t->tpot));
        json_object_set_new(x, "itl", dist_json(&t->itl));
        json_object_set_new(x, "e2e", dist_json(&t->e2e));
        json_object_set_new(x, "slo_attainment_pct", json_real_or_null(t->attainment_pct));
        json_object_set_new(x, "goodput", json_real_or_null(t->goodput_rps));
        json_object_set_new(x, "output_tps", json_real_or_null(t->output_tps));
        json_object_set_new(x, "meets_slo",
                            slo_set(&c->tenants[i].slo)
                                ? json_boolean(t->meets_slo)
                                : json_null()); /* no objective: not judged */
        char slo[200];
        slo_describe(&c->tenants[i].slo, slo, sizeof(slo));
        json_object_set_new(x, "slo", json_string(slo)); /* what meets_slo judged */
        json_object_set_new(x, "alone_output_tps", json_real_or_null(o->alone[i].output_tps));
        json_object_set_new(x, "interference_ttft", json_real_or_null(o->interf_ttft[i]));
        json_object_set_new(x, "interference_tpot", json_real_or_null(o->interf_tpot[i]));
        json_object_set_new(x, "normalised_tps", json_real_or_null(o->norm_tps[i]));
        json_array_append_new(ts, x);
    }
    json_object_set_new(j, "tenants", ts);
    json_t *tot = json_object();
    json_object_set_new(tot, "output_tps", json_real_or_null(o->total_tps));
    json_object_set_new(tot, "goodput", json_real_or_null(o->total_goodput));
    json_object_set_new(tot, "jain_fairness", json_real_or_null(o->jain));
    json_object_set_new(tot, "all_meet_slo", o->judged ? json_boolean(o->all_meet) : json_null());
    json_object_set_new(tot, "headroom_pct", json_real_or_null(o->headroom_pct));
    json_object_set_new(tot, "min_slo_attainment_pct", json_real_or_null(o->min_attain));
    json_object_set_new(j, "total", tot);
    return j;
}

json_t *tenancy_predict_strategy(const struct tenancy_cfg *c, size_t k,
                                 const struct cost_calibration *cal, char *err, size_t errlen)
{
    struct tenancy_run r = {.c = c};
    json_t *j = NULL;
    struct strat_out *o = xcalloc(1, sizeof(*o));
    if (catalog_load(&r.cat, c->catalog_dir, err, errlen))
        goto out;
    if (cal)
        r.cal = *cal;
    else
        cost_calibration_default(&r.cal);
    o->s = &c->strategies[k];
    if (run_strategy(&r, o, err, errlen) == 0)
        j = strategy_json(c, o);
out:
    catalog_free(r.cat);
    free(o);
    return j;
}

/* The strategy that meets every tenant's SLO with the largest headroom; else -1. */
static int pick(const struct strat_out *o, size_t n)
{
    int best = -1;
    for (size_t i = 0; i < n; i++)
        if (o[i].fits && o[i].all_meet && (best < 0 || o[i].headroom_pct > o[best].headroom_pct))
            best = (int)i;
    return best;
}

static void verdict_text(const struct strat_out *o, size_t n, char *buf, size_t len)
{
    /* Without objectives nothing is met or missed: the verdict says so and ranks by output. */
    bool judged = false;
    int most = -1;
    for (size_t i = 0; i < n; i++) {
        judged = judged || (o[i].fits && o[i].judged);
        if (o[i].fits && (most < 0 || o[i].total_tps > o[most].total_tps))
            most = (int)i;
    }
    if (!judged && most >= 0) {
        snprintf(buf, len,
                 "no tenant sets an SLO, so no strategy is judged against one; %s gives the most "
                 "output tokens/s (%.0f in total, Jain fairness %.2f)",
                 o[most].s->name, o[most].total_tps, o[most].jain);
        return;
    }
    int b = pick(o, n);
    if (b >= 0) {
        snprintf(buf, len,
                 "%s meets every tenant's SLO with the most headroom (%.0f %% below the tightest "
                 "objective; %.0f output tokens/s in total, Jain fairness %.2f)",
                 o[b].s->name, o[b].headroom_pct, o[b].total_tps, o[b].jain);
        return;
    }
    int c = -1;
    for (size_t i = 0; i < n; i++)
        if (o[i].fits && (c < 0 || o[i].min_attain > o[c].min_attain))
            c = (int)i;
    if (c < 0)
        snprintf(buf, len, "no strategy fits on this GPU");
    else
        snprintf(buf, len,
                 "no strategy meets every tenant's SLO; closest: %s (lowest tenant attainment "
                 "%.0f %%)",
                 o[c].s->name, o[c].min_attain);
}

static void print_strategy(const struct tenancy_cfg *c, const struct strat_out *o)
{
    printf("\nstrategy %s (%s)\n", o->s->name, kind_name(o->s->kind));
    if (!o->fits) {
        printf("  does not fit: %s\n", o->fit_msg);
        return;
    }
    for (size_t i = 0; i < o->n_inst; i++)
        printf("  instance %zu  %-28s util %.2f  weights %5.1f GiB  KV %5.1f GiB (%ld tokens)%s\n",
               i, o->inst_gpu[i], o->inst_util[i], o->inst_info[i].weights_gib,
               o->inst_info[i].kv_budget_gib, o->inst_info[i].kv_capacity_tokens,
               o->s->kind == TENANCY_PARTITIONED ? "  time-sliced" : "");
    printf("  %-12s %19s %19s %9s %8s %6s %15s  %s\n", "tenant", "TTFT p50/p95 ms",
           "TPOT p50/p95 ms", "out tok/s", "goodput", "SLO %", "interf TTFT/TPOT", "SLO");
    for (size_t i = 0; i < c->n_tenants; i++) {
        const struct vd_result *t = &o->together[i];
        printf("  %-12s %9.1f/%9.1f %9.1f/%9.1f %9.1f %8.2f %6.1f %7.2f/%7.2f  %s\n",
               c->tenants[i].name, t->ttft.p50 * 1e3, t->ttft.p95 * 1e3, t->tpot.p50 * 1e3,
               t->tpot.p95 * 1e3, t->output_tps, t->goodput_rps, t->attainment_pct,
               o->interf_ttft[i], o->interf_tpot[i],
               !slo_set(&c->tenants[i].slo) ? "no SLO"
               : t->meets_slo               ? "met"
                                            : "missed");
    }
    printf("  total: %.1f output tokens/s, goodput %.2f req/s, Jain fairness %.3f, ", o->total_tps,
           o->total_goodput, o->jain);
    if (!o->judged)
        printf("no tenant sets an SLO: none judged\n");
    else if (o->all_meet)
        printf("every SLO met, headroom %.0f %%\n", o->headroom_pct);
    else
        printf("some SLO missed (lowest attainment %.0f %%)\n", o->min_attain);
}

static void usage(void)
{
    fprintf(stderr, "usage: testbench plan --tenancy FILE [--calibration FILE] [--json]\n"
                    "  Predicts each tenant's latency, SLO attainment and goodput under each\n"
                    "  strategy of FILE (shared engine, memory-fraction partitions, MIG slices)\n"
                    "  on one simulated GPU, and says which strategy serves them all best.\n");
}

int tenancy_plan_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tenancy", required_argument, NULL, 't'},
        {"calibration", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *cal_path = NULL;
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 't')
            path = optarg;
        else if (ch == 'c')
            cal_path = optarg;
        else if (ch == 'j')
            json = true;
        else if (ch == 'h') {
            usage();
            return TB_EXIT_OK;
        } else {
            usage();
            return TB_EXIT_USAGE;
        }
    }
    if (!path || optind < argc) {
        usage();
        return TB_EXIT_USAGE;
    }
    char err[1024];
    struct tenancy_cfg c;
    if (tenancy_cfg_load(&c, path, err, sizeof(err))) {
        log_error("plan: %s", err);
        tenancy_cfg_release(&c);
        return TB_EXIT_USAGE;
    }
    struct tenancy_run r = {.c = &c};
    int exit_code = TB_EXIT_OK;
    struct strat_out *outs = xcalloc(c.n_strategies, sizeof(*outs));
    if (catalog_load(&r.cat, c.catalog_dir, err, sizeof(err))) {
        log_error("plan: %s", err);
        exit_code = TB_EXIT_USAGE;
        goto out;
    }
    cost_calibration_default(&r.cal);
    if (cal_path && cost_calibration_load(&r.cal, cal_path, err, sizeof(err))) {
        log_error("plan: %s", err);
        exit_code = TB_EXIT_USAGE;
        goto out;
    }
    const struct gpu_spec *g = catalog_find_gpu(r.cat, c.gpu);
    if (!g) {
        char close[256];
        catalog_suggest(r.cat, "gpu", c.gpu, close, sizeof(close));
        log_error("plan: %s: unknown GPU '%s' (close: %s)", path, c.gpu, close);
        exit_code = TB_EXIT_USAGE;
        goto out;
    }
    for (size_t i = 0; i < c.n_tenants; i++) {
        if (!catalog_find_model(r.cat, c.tenants[i].model)) {
            char close[256];
            catalog_suggest(r.cat, "model", c.tenants[i].model, close, sizeof(close));
            log_error("plan: %s: tenant %s: unknown model '%s' (close: %s)", path,
                      c.tenants[i].name, c.tenants[i].model, close);
            exit_code = TB_EXIT_USAGE;
            goto out;
        }
    }
    for (size_t k = 0; k < c.n_strategies; k++) {
        outs[k].s = &c.strategies[k];
        if (run_strategy(&r, &outs[k], err, sizeof(err))) {
            log_error("plan: %s", err);
            exit_code = TB_EXIT_USAGE;
            goto out;
        }
    }
    char verdict[640];
    verdict_text(outs, c.n_strategies, verdict, sizeof(verdict));
    if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "gpu", json_string(g->name));
        json_object_set_new(j, "gpu_name", json_string_or_null(g->display_name));
        json_t *tn = json_array();
        for (size_t i = 0; i < c.n_tenants; i++) {
            const struct tenancy_tenant *t = &c.tenants[i];
            json_t *x = json_object();
            json_object_set_new(x, "name", json_string_or_null(t->name));
            json_object_set_new(x, "model", json_string_or_null(t->model));
            json_object_set_new(x, "adapter", json_string_or_null(t->adapter));
            json_object_set_new(x, "users", t->users ? json_integer(t->users) : json_null());
            json_object_set_new(x, "rate", t->rate > 0 ? json_real(t->rate) : json_null());
            json_object_set_new(x, "prompt_tokens", json_integer(t->prompt_tokens));
            json_object_set_new(x, "output_tokens", json_integer(t->output_tokens));
            json_object_set_new(x, "requests", json_integer(t->requests));
            json_array_append_new(tn, x);
        }
        json_object_set_new(j, "tenants", tn);
        json_t *st = json_array();
        for (size_t k = 0; k < c.n_strategies; k++)
            json_array_append_new(st, strategy_json(&c, &outs[k]));
        json_object_set_new(j, "strategies", st);
        int b = pick(outs, c.n_strategies);
        json_object_set_new(j, "best", b >= 0 ? json_string_or_null(outs[b].s->name) : json_null());
        json_object_set_new(j, "verdict", json_string_or_null(verdict));
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(j);
    } else {
        printf("testbench plan --tenancy %s: %zu tenants on %s\n", path, c.n_tenants,
               g->display_name);
        for (size_t i = 0; i < c.n_tenants; i++) {
            const struct tenancy_tenant *t = &c.tenants[i];
            printf("  %-12s %s%s%s, ", t->name, t->model, t->adapter ? " + LoRA " : "",
                   t->adapter ? t->adapter : "");
            if (t->users)
                printf("%d users", t->users);
            else
                printf("%.2f req/s", t->rate);
            printf(", %d requests of %d + %d tokens; SLO", t->requests, t->prompt_tokens,
                   t->output_tokens);
            if (t->slo.ttft_ms > 0)
                printf(" TTFT p%g <= %g ms", t->slo.percentile, t->slo.ttft_ms);
            if (t->slo.tpot_ms > 0)
                printf(" TPOT p%g <= %g ms", t->slo.percentile, t->slo.tpot_ms);
            if (t->slo.itl_ms > 0)
                printf(" ITL p%g <= %g ms", t->slo.percentile, t->slo.itl_ms);
            if (t->slo.e2e_ms > 0)
                printf(" E2E p%g <= %g ms", t->slo.percentile, t->slo.e2e_ms);
            printf("\n");
        }
        for (size_t k = 0; k < c.n_strategies; k++)
            print_strategy(&c, &outs[k]);
        printf("\nVerdict: %s\n", verdict);
        printf("interf = the tenant's p50 together / its p50 alone on the same instances; "
               "Jain over output tokens/s together / alone. Model: docs/TENANCY.md\n");
    }
out:
    free(outs);
    catalog_free(r.cat);
    tenancy_cfg_release(&c);
    return exit_code;
}
