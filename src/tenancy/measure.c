/*
 * measure.c - `testbench tenancy --config FILE`: the measured side of `plan --tenancy`. For each
 * strategy of a tenancy file it runs every tenant alone, then all of them together, against
 * that strategy's servers, with the runner (run_config), and writes per tenant what the plan
 * predicts: latency percentiles, SLO attainment, goodput, the interference each tenant suffers
 * (its p50 together / its p50 alone), its normalised throughput (output tokens/s together /
 * alone), Jain's fairness index over those, and its share of the GPU energy, stated as an
 * attribution (the GPU's energy over the together run x the tenant's share of the tokens it
 * processed). docs/TENANCY.md, "Measured side".
 *
 * Servers: by default each strategy is served by the built-in simulator inside this process,
 * laid out as the strategy says (one engine for shared, one per tenant at its fraction on one
 * time-sliced sim_gpu for partitioned, one per MIG slice); `--endpoints NAME=URL[,URL...]`
 * measures strategy NAME on real servers instead (one URL per tenant in the file's order, or
 * one for all), e.g. the docker-compose profiles of each layout.
 *
 * Each run is an ordinary run config, written next to the results (tenancy_<strategy>_*.yaml),
 * so any single run can be repeated by hand with `testbench run --config`. The config is JSON,
 * which YAML 1.2 reads as it is, so jansson does the quoting.
 */
#include "tenancy/tenancy.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "core/exitcode.h"
#include "core/fs.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "engine/calibration.h"
#include "runner/run.h"
#include "sim/sim.h"

#define MAXT TENANCY_MAX_TENANTS

/* Where a strategy's tenants send their requests. */
struct layout {
    bool fits;
    char fit_msg[640];
    char url[MAXT][256];   /* per tenant */
    char model[MAXT][256]; /* per tenant: the name it requests */
    struct sim_server *srv[MAXT];
    size_t n_srv;
    struct sim_gpu *gpu;
};

/* What one tenant's point of one run said (detailed.json, docs/OUTPUTS.md). */
struct tenant_meas {
    bool have;
    json_t *summary; /* the point's summary object (owned) */
    double ttft_p50_ms, tpot_p50_ms, output_tps, tokens, energy_j;
};

struct measure {
    const struct tenancy_cfg *c;
    const char *out_dir;
    const char *const *endpoints; /* per strategy: --endpoints value, or NULL = simulator */
    const struct cost_calibration *cal;
    bool quiet;
};

/* ---- servers ------------------------------------------------------------------------ */

static void layout_stop(struct layout *l)
{
    for (size_t i = 0; i < l->n_srv; i++)
        sim_server_stop(l->srv[i]);
    l->n_srv = 0;
    sim_gpu_free(l->gpu);
    l->gpu = NULL;
}

static void sim_opts_for(const struct measure *m, const struct tenancy_tenant *t,
                         struct sim_options *o)
{
    sim_options_init(o);
    o->port = 0;
    o->quiet = true;
    o->seed = m->c->seed;
    o->engine.gpu = m->c->gpu;
    o->engine.model = t->model;
    o->engine.quantization = t->quantization;
    o->engine.max_model_len = t->max_model_len;
    o->engine.catalog_dir = m->c->catalog_dir;
    o->engine.calibration = m->cal;
    o->served_model_name = t->model;
}

/* Starts the simulator's servers for strategy s. 0 (l->fits false with fit_msg when the layout
 * or an engine does not fit), or -errno with err. */
static int layout_sim(const struct measure *m, const struct tenancy_strategy *s, struct layout *l,
                      char *err, size_t errlen)
{
    const struct tenancy_cfg *c = m->c;
    struct sim_options o[MAXT];
    const char *lora[MAXT];
    char lora_buf[MAXT][192];
    size_t n = s->kind == TENANCY_SHARED ? 1 : c->n_tenants;
    char name[MAXT][160];
    for (size_t i = 0; i < n; i++) {
        sim_opts_for(m, &c->tenants[i], &o[i]);
        if (s->kind == TENANCY_PARTITIONED)
            o[i].engine.gpu_memory_utilization = s->fractions[i];
        else
            o[i].engine.gpu_memory_utilization =
                s->gpu_memory_utilization > 0 ? s->gpu_memory_utilization : 0.9;
        if (s->kind == TENANCY_MIG) {
            snprintf(name[i], sizeof(name[i]), "%s:%s", c->gpu, s->profiles[i]);
            o[i].engine.gpu = name[i];
        }
    }
    if (s->kind == TENANCY_SHARED) {
        /* One engine: the first tenant's model, every adapter as a LoRA module. */
        for (size_t i = 0; i < c->n_tenants; i++) {
            const struct tenancy_tenant *t = &c->tenants[i];
            if (strcmp(t->model, c->tenants[0].model) != 0) {
                snprintf(l->fit_msg, sizeof(l->fit_msg),
                         "one engine serves one model: %s asks %s, %s asks %s", c->tenants[0].name,
                         c->tenants[0].model, t->name, t->model);
                return 0;
            }
            if (t->max_model_len > o[0].engine.max_model_len)
                o[0].engine.max_model_len = t->max_model_len;
            bool seen = false; /* one LoRA module per distinct adapter, as plan's slots */
            for (size_t k = 0; k < i && t->adapter; k++)
                seen |= c->tenants[k].adapter && strcmp(c->tenants[k].adapter, t->adapter) == 0;
            if (t->adapter && !seen) {
                snprintf(lora_buf[o[0].n_lora_modules], sizeof(lora_buf[0]), "%s=%s", t->adapter,
                         t->adapter);
                lora[o[0].n_lora_modules] = lora_buf[o[0].n_lora_modules];
                o[0].n_lora_modules++;
            }
        }
        o[0].lora_modules = lora;
    }
    bool mig = false;
    int rc = n > 1 ? sim_instances_check(o, n, &mig, l->fit_msg, sizeof(l->fit_msg)) : 0;
    if (rc == -ENOSPC || rc == -EINVAL)
        return 0;
    if (rc) {
        snprintf(err, errlen, "strategy %s: %s", s->name, l->fit_msg);
        return rc;
    }
    l->gpu = s->kind == TENANCY_PARTITIONED && n > 1 ? sim_gpu_new() : NULL;
    for (size_t i = 0; i < n; i++) {
        char e[512] = "";
        o[i].gpu = l->gpu;
        rc = sim_server_start(&l->srv[i], &o[i], e, sizeof(e));
        if (rc == -ENOSPC) {
            snprintf(l->fit_msg, sizeof(l->fit_msg), "%s's instance: %s", c->tenants[i].name, e);
            layout_stop(l);
            return 0;
        }
        if (rc) {
            snprintf(err, errlen, "strategy %s: %s", s->name, e);
            layout_stop(l);
            return rc;
        }
        l->n_srv = i + 1;
    }
    for (size_t i = 0; i < c->n_tenants; i++) {
        size_t k = s->kind == TENANCY_SHARED ? 0 : i;
        const struct tenancy_tenant *t = &c->tenants[i];
        snprintf(l->url[i], sizeof(l->url[i]), "http://127.0.0.1:%d", sim_server_port(l->srv[k]));
        snprintf(l->model[i], sizeof(l->model[i]), "%s",
                 s->kind == TENANCY_SHARED && t->adapter ? t->adapter : t->model);
    }
    l->fits = true;
    return 0;
}

/* --endpoints value: one URL per tenant, or one for all. */
static int layout_endpoints(const struct measure *m, const struct tenancy_strategy *s,
                            const char *urls, struct layout *l, char *err, size_t errlen)
{
    const struct tenancy_cfg *c = m->c;
    size_t n = 0;
    for (const char *p = urls; *p; n++) {
        size_t len = strcspn(p, ",");
        if (n < MAXT && len && len < sizeof(l->url[0]))
            snprintf(l->url[n], sizeof(l->url[n]), "%.*s", (int)len, p);
        else if (n < MAXT) {
            snprintf(err, errlen, "--endpoints %s: empty or too long URL", s->name);
            return -EINVAL;
        }
        p += len + (p[len] == ',');
    }
    if (n != 1 && n != c->n_tenants) {
        snprintf(err, errlen, "--endpoints %s: %zu URLs for %zu tenants (give one, or one each)",
                 s->name, n, c->n_tenants);
        return -EINVAL;
    }
    for (size_t i = 0; i < c->n_tenants; i++) {
        const struct tenancy_tenant *t = &c->tenants[i];
        if (n == 1 && i)
            snprintf(l->url[i], sizeof(l->url[i]), "%s", l->url[0]);
        snprintf(l->model[i], sizeof(l->model[i]), "%s",
                 s->kind == TENANCY_SHARED && t->adapter ? t->adapter : t->model);
    }
    l->fits = true;
    return 0;
}

/* ---- runs --------------------------------------------------------------------------- */

static json_t *slo_json(const struct slo_cfg *slo)
{
    json_t *o = json_object();
    const char *keys[4] = {"ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"};
    const double v[4] = {slo->ttft_ms, slo->itl_ms, slo->tpot_ms, slo->e2e_ms};
    /* Every objective written, null where the tenant has none: a key left out would take the
     * run config's default profile instead (docs/CONFIG.md "SLO profiles"). */
    for (int k = 0; k < 4; k++)
        json_object_set_new(o, keys[k], isfinite(v[k]) && v[k] > 0 ? json_real(v[k]) : json_null());
    if (isfinite(slo->percentile) && slo->percentile > 0)
        json_object_set_new(o, "percentile", json_real(slo->percentile));
    return o;
}

/* The run config of the tenants whose 'which' flag is set, as JSON (docs/CONFIG.md). Each run
 * of a strategy has a seed of its own (run: 0 together, 1 + i tenant i alone), so its prompts
 * are text no earlier run sent: the same servers serve every run of a strategy, and prompts
 * repeated from the run before hit the prefix cache (a together run's TTFT read 0.15x its
 * alone run's under MIG slices, which share nothing). */
static json_t *run_cfg_json(const struct measure *m, const struct tenancy_strategy *s,
                            const struct layout *l, const bool *which, const char *prefix,
                            unsigned run)
{
    const struct tenancy_cfg *c = m->c;
    json_t *j = json_object();
    json_t *b = json_object();
    char name[256];
    snprintf(name, sizeof(name), "tenancy %s: %s", s->name, prefix);
    json_object_set_new(b, "name", json_string(name));
    json_object_set_new(b, "output_prefix", json_string(prefix));
    json_object_set_new(b, "output_dir", json_string(m->out_dir));
    json_object_set_new(b, "seed", json_integer((json_int_t)(c->seed + run)));
    json_object_set_new(j, "benchmark", b);
    json_t *tn = json_array();
    size_t first = MAXT;
    for (size_t i = 0; i < c->n_tenants; i++) {
        if (!which[i])
            continue;
        if (first == MAXT)
            first = i;
        const struct tenancy_tenant *t = &c->tenants[i];
        json_t *x = json_object(), *r = json_object();
        json_object_set_new(x, "name", json_string(t->name));
        json_object_set_new(x, "endpoint", json_string(l->url[i]));
        json_object_set_new(x, "model", json_string(l->model[i]));
        json_object_set_new(r, "num_requests", json_integer(t->requests));
        /* users: a closed loop (all due at once, capped); rate: Poisson arrivals, no cap */
        json_object_set_new(r, "concurrent_requests", json_integer(t->users));
        json_object_set_new(r, "arrival_pattern", json_string("poisson"));
        json_object_set_new(r, "rate_per_second",
                            t->users ? json_string("inf") : json_real(t->rate));
        json_object_set_new(r, "prompt_tokens_min", json_integer(t->prompt_tokens));
        json_object_set_new(r, "prompt_tokens_max", json_integer(t->prompt_tokens));
        json_object_set_new(r, "completion_tokens", json_integer(t->output_tokens));
        json_object_set_new(x, "requests", r);
        json_object_set_new(x, "slo", slo_json(&t->slo));
        json_array_append_new(tn, x);
    }
    json_t *srv = json_object();
    json_object_set_new(srv, "endpoint", json_string(l->url[first]));
    json_object_set_new(j, "server", srv);
    json_t *model = json_object();
    json_object_set_new(model, "name", json_string(l->model[first]));
    json_object_set_new(j, "model", model);
    json_object_set_new(j, "tenants", tn);
    /* Short runs still need several samples in each window for the energy reading. */
    json_t *tel = json_object();
    json_object_set_new(tel, "sample_interval_sec", json_real(0.1));
    json_object_set_new(j, "telemetry", tel);
    return j;
}

static double jnum(json_t *o, const char *k1, const char *k2)
{
    json_t *v = json_object_get(o, k1);
    if (k2)
        v = json_object_get(v, k2);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Reads each tenant's point from a run's detailed.json into out (indexed as the file's
 * tenants). 0 or -EIO with err. */
static int read_points(const struct measure *m, const char *path, struct tenant_meas *out,
                       char *err, size_t errlen)
{
    json_error_t je;
    json_t *d = json_load_file(path, 0, &je);
    if (!d) {
        snprintf(err, errlen, "%s: %s", path, je.text);
        return -EIO;
    }
    json_t *pts = json_object_get(d, "points"), *p;
    size_t k;
    json_array_foreach(pts, k, p)
    {
        const char *name = json_string_value(json_object_get(p, "tenant"));
        for (size_t i = 0; name && i < m->c->n_tenants; i++) {
            if (strcmp(name, m->c->tenants[i].name) != 0)
                continue;
            json_t *s = json_object_get(p, "summary");
            struct tenant_meas *t = &out[i];
            json_decref(t->summary);
            t->summary = json_incref(s);
            t->have = true;
            t->ttft_p50_ms = jnum(s, "ttft_ms", "p50");
            t->tpot_p50_ms = jnum(s, "tpot_ms", "p50");
            t->output_tps = jnum(s, "output_throughput", NULL);
            t->tokens = jnum(s, "prompt_tokens_total", NULL) + jnum(s, "output_tokens_total", NULL);
            t->energy_j = jnum(json_object_get(s, "telemetry"), "gpu_energy_j", NULL);
        }
    }
    json_decref(d);
    return 0;
}

/* One run of the flagged tenants; fills their entries of out. 0, or -errno with err. */
static int one_run(const struct measure *m, const struct tenancy_strategy *s,
                   const struct layout *l, const bool *which, unsigned run, const char *label,
                   struct tenant_meas *out, json_t *runs, char *err, size_t errlen)
{
    char prefix[192], cfg_path[1024];
    snprintf(prefix, sizeof(prefix), "tenancy_%s_%s", s->name, label);
    for (char *p = prefix; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.'))
            *p = '_';
    snprintf(cfg_path, sizeof(cfg_path), "%s/%s.yaml", m->out_dir, prefix);
    json_t *j = run_cfg_json(m, s, l, which, prefix, run);
    int rc = json_dump_file(j, cfg_path, JSON_INDENT(2)) ? -EIO : 0;
    json_decref(j);
    if (rc) {
        snprintf(err, errlen, "cannot write %.900s", cfg_path);
        return rc;
    }
    struct config cfg;
    if (config_load(&cfg, cfg_path, err, errlen)) {
        config_release(&cfg);
        return -EINVAL;
    }
    char run_label[320]; /* names the strategy and run in the runner's warnings */
    snprintf(run_label, sizeof(run_label), "strategy %s, %s", s->name, label);
    struct run_options ro = {.quiet = true,
                             .wait_s = 10,
                             .keep_handler = true,
                             .label = run_label,
                             .server_in_process = !m->endpoints[s - m->c->strategies]};
    struct run_outcome oc;
    memset(&oc, 0, sizeof(oc));
    if (!m->quiet)
        log_info("tenancy: strategy %s, %s", s->name, label);
    int ec = run_config(&cfg, &ro, &oc);
    if (ec == TB_EXIT_INTERRUPTED) {
        snprintf(err, errlen, "interrupted");
        rc = -EINTR;
    } else if (!oc.detailed_path) {
        snprintf(err, errlen, "strategy %s, %s: the run wrote no results (exit %d)", s->name, label,
                 ec);
        rc = -EIO;
    } else {
        rc = read_points(m, oc.detailed_path, out, err, errlen);
        json_t *r = json_object();
        json_object_set_new(r, "config", json_string(cfg_path));
        json_object_set_new(r, "detailed", json_string(oc.detailed_path));
        json_object_set_new(r, "telemetry", json_string_or_null(oc.telemetry_path));
        json_object_set_new(r, "exit_code", json_integer(ec));
        json_object_set_new(runs, label, r);
    }
    run_outcome_release(&oc);
    return rc;
}

/* ---- figures ------------------------------------------------------------------------ */

/* Raises the "used_max_mib" of the entry of arr whose 'key' equals id (adding it with the
 * fields of x when new) to x's 'mem'. */
static void usage_max(json_t *arr, const char *key, json_t *id, json_t *x, const char *mem,
                      unsigned gpu)
{
    json_t *e = NULL, *y;
    size_t i;
    json_array_foreach(arr, i, y)
    {
        if (json_equal(json_object_get(y, key), id) &&
            json_integer_value(json_object_get(y, "gpu")) == (json_int_t)gpu)
            e = y;
    }
    if (!e) {
        e = json_object();
        json_object_set_new(e, "gpu", json_integer(gpu));
        json_object_set(e, key, id);
        json_object_set(e, "gpu_instance_id", json_object_get(x, "gpu_instance_id"));
        if (json_object_get(x, "memory_total_mib"))
            json_object_set(e, "memory_total_mib", json_object_get(x, "memory_total_mib"));
        json_object_set_new(e, "used_max_mib", json_null());
        json_array_append_new(arr, e);
    }
    double v = jnum(x, mem, NULL), cur = jnum(e, "used_max_mib", NULL);
    if (isfinite(v) && !(v <= cur))
        json_object_set_new(e, "used_max_mib", json_real(v));
}

/* Per server process and per MIG device, the most GPU memory seen over a run's telemetry
 * samples (telemetry.json, docs/TELEMETRY.md): {"processes": [{gpu, pid, gpu_instance_id,
 * used_max_mib}], "mig_devices": [{gpu, uuid, gpu_instance_id, memory_total_mib,
 * used_max_mib}]}, or null without GPU samples. */
static json_t *gpu_usage_json(const char *telemetry_path)
{
    json_t *d = telemetry_path ? json_load_file(telemetry_path, 0, NULL) : NULL;
    json_t *procs = json_array(), *migs = json_array(), *smp, *g, *x;
    size_t i, k, q;
    bool any = false;
    json_array_foreach(json_object_get(d, "samples"), i, smp)
    {
        json_array_foreach(json_object_get(smp, "gpus"), k, g)
        {
            unsigned gpu = (unsigned)json_integer_value(json_object_get(g, "index"));
            any = true;
            json_array_foreach(json_object_get(g, "processes"), q, x)
                usage_max(procs, "pid", json_object_get(x, "pid"), x, "used_mib", gpu);
            json_array_foreach(json_object_get(g, "mig_devices"), q, x)
                usage_max(migs, "uuid", json_object_get(x, "uuid"), x, "memory_used_mib", gpu);
        }
    }
    json_decref(d);
    if (!any) {
        json_decref(procs);
        json_decref(migs);
        return json_null();
    }
    return json_pack("{s:o, s:o}", "processes", procs, "mig_devices", migs);
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* The strategy's per-tenant and total figures from its runs. */
static json_t *strategy_json(const struct measure *m, const struct tenancy_strategy *s,
                             const struct layout *l, const struct tenant_meas *alone,
                             const struct tenant_meas *tog, json_t *runs)
{
    const struct tenancy_cfg *c = m->c;
    size_t n = c->n_tenants;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "kind",
                        json_string(s->kind == TENANCY_SHARED        ? "shared"
                                    : s->kind == TENANCY_PARTITIONED ? "partitioned"
                                                                     : "mig"));
    json_object_set_new(o, "fits", json_boolean(l->fits));
    json_object_set_new(o, "fit_msg", l->fits ? json_null() : json_string(l->fit_msg));
    if (!l->fits)
        return o;
    /* Energy: the GPU's over the together run. Every tenant starts at once, so the longest
     * tenant window spans the others: its reading is the run's. */
    double energy = NAN, tokens = 0, norm[MAXT], total_tps = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(tog[i].energy_j) && !(tog[i].energy_j <= energy))
            energy = tog[i].energy_j;
        tokens += isfinite(tog[i].tokens) ? tog[i].tokens : 0;
    }
    json_t *ta = json_array();
    bool all_met = true, judged = false, all_decided = true;
    for (size_t i = 0; i < n; i++) {
        const struct tenant_meas *a = &alone[i], *t = &tog[i];
        json_t *x = json_object();
        json_object_set_new(x, "tenant", json_string(c->tenants[i].name));
        json_object_set_new(x, "endpoint", json_string(l->url[i]));
        json_object_set_new(x, "model", json_string(l->model[i]));
        json_object_set_new(x, "together", t->summary ? json_incref(t->summary) : json_null());
        json_object_set_new(x, "alone", a->summary ? json_incref(a->summary) : json_null());
        double it = a->ttft_p50_ms > 0 ? t->ttft_p50_ms / a->ttft_p50_ms : NAN;
        double ip = a->tpot_p50_ms > 0 ? t->tpot_p50_ms / a->tpot_p50_ms : NAN;
        norm[i] = a->output_tps > 0 ? t->output_tps / a->output_tps : NAN;
        total_tps += isfinite(t->output_tps) ? t->output_tps : 0;
        json_object_set_new(x, "interference_ttft", num_or_null(it));
        json_object_set_new(x, "interference_tpot", num_or_null(ip));
        json_object_set_new(x, "normalised_tps", num_or_null(norm[i]));
        double share = tokens > 0 && isfinite(t->tokens) ? t->tokens / tokens : NAN;
        json_object_set_new(x, "token_share", num_or_null(share));
        json_object_set_new(x, "energy_j_attributed", num_or_null(energy * share));
        /* a tenant without objectives (verdict null) misses nothing, and judges nothing */
        json_t *v = json_object_get(t->summary, "slo_verdict");
        judged |= json_is_string(v);
        all_met &= t->summary && (json_is_null(v) || !v ||
                                  (json_is_string(v) && strcmp(json_string_value(v), "met") == 0));
        /* "met" is the estimate's side when the interval still holds a limit (too few
         * requests): the total says so instead of "every SLO met" */
        if (json_is_string(v))
            all_decided &=
                json_is_true(json_object_get(json_object_get(t->summary, "verdict"), "decided"));
        json_array_append_new(ta, x);
    }
    json_object_set_new(o, "tenants", ta);
    json_t *tot = json_object();
    json_object_set_new(tot, "output_tps", json_real(total_tps));
    json_object_set_new(tot, "jain_fairness", num_or_null(tenancy_jain(norm, n)));
    /* null when no tenant has an SLO: nothing was judged, so nothing "met" */
    json_object_set_new(tot, "all_meet_slo", judged ? json_boolean(all_met) : json_null());
    json_object_set_new(tot, "all_decided", judged ? json_boolean(all_decided) : json_null());
    json_object_set_new(tot, "gpu_energy_j", num_or_null(energy));
    json_object_set_new(o, "total", tot);
    const char *tp =
        json_string_value(json_object_get(json_object_get(runs, "together"), "telemetry"));
    json_object_set_new(o, "gpu_usage", gpu_usage_json(tp));
    json_object_set_new(o, "runs", json_incref(runs));
    return o;
}

/* The plan's prediction for the same strategy beside the measurement: "predicted" on the
 * strategy (plan --tenancy --json's object) and on each tenant (its entry there). */
static void attach_prediction(const struct measure *m, size_t k, json_t *st)
{
    char err[512] = "";
    json_t *p = tenancy_predict_strategy(m->c, k, m->cal, err, sizeof(err));
    if (!p) {
        log_warn("tenancy: no prediction for strategy %s: %s", m->c->strategies[k].name, err);
        json_object_set_new(st, "predicted", json_null());
        return;
    }
    json_t *pt = json_object_get(p, "tenants"), *x;
    size_t i;
    json_array_foreach(json_object_get(st, "tenants"), i, x)
    {
        json_t *y = json_array_get(pt, i);
        json_object_set(x, "predicted", y ? y : json_null());
    }
    json_object_set_new(st, "predicted", p);
}

static void print_strategy(json_t *st)
{
    printf("\nstrategy %s (%s)\n", json_string_value(json_object_get(st, "name")),
           json_string_value(json_object_get(st, "kind")));
    if (!json_is_true(json_object_get(st, "fits"))) {
        printf("  does not fit: %s\n", json_string_value(json_object_get(st, "fit_msg")));
        return;
    }
    printf("  %-14s %17s %17s %10s %6s %12s %6s %9s\n", "tenant", "TTFT p50/p95 ms",
           "TPOT p50/p95 ms", "out tok/s", "SLO %", "interf T/P", "norm", "energy J");
    json_t *x;
    size_t i;
    json_array_foreach(json_object_get(st, "tenants"), i, x)
    {
        json_t *t = json_object_get(x, "together");
        double e = jnum(x, "energy_j_attributed", NULL);
        char energy[32] = "-";
        if (isfinite(e))
            snprintf(energy, sizeof(energy), "%.0f", e);
        printf("  %-14s %8.1f/%8.1f %8.1f/%8.1f %10.1f %6.1f %5.2f/%5.2f %6.2f %9s\n",
               json_string_value(json_object_get(x, "tenant")), jnum(t, "ttft_ms", "p50"),
               jnum(t, "ttft_ms", "p95"), jnum(t, "tpot_ms", "p50"), jnum(t, "tpot_ms", "p95"),
               jnum(t, "output_throughput", NULL), jnum(t, "slo_attainment_pct", NULL),
               jnum(x, "interference_ttft", NULL), jnum(x, "interference_tpot", NULL),
               jnum(x, "normalised_tps", NULL), energy);
        /* The verdict by the rule every command uses: failed requests are misses. */
        const char *line =
            json_string_value(json_object_get(json_object_get(t, "verdict"), "line"));
        printf("    verdict: %s\n", line ? line : "no SLO set");
        json_t *p = json_object_get(x, "predicted");
        if (json_is_object(p))
            printf("    %-12s %8.1f/%8.1f %8.1f/%8.1f %10.1f %6.1f %5.2f/%5.2f %6.2f\n", "(plan)",
                   jnum(p, "ttft", "p50_ms"), jnum(p, "ttft", "p95_ms"), jnum(p, "tpot", "p50_ms"),
                   jnum(p, "tpot", "p95_ms"), jnum(p, "output_tps", NULL),
                   jnum(p, "slo_attainment_pct", NULL), jnum(p, "interference_ttft", NULL),
                   jnum(p, "interference_tpot", NULL), jnum(p, "normalised_tps", NULL));
    }
    json_t *tot = json_object_get(st, "total");
    json_array_foreach(json_object_get(st, "tenants"), i, x)
    {
        bool a = json_is_true(json_object_get(
                 json_object_get(json_object_get(x, "alone"), "client"), "client_distorted")),
             t = json_is_true(json_object_get(
                 json_object_get(json_object_get(x, "together"), "client"), "client_distorted"));
        if (a || t)
            printf("  note: %s's %s client_distorted (requests sent late): its TTFT and "
                   "interference are not the server's alone\n",
                   json_string_value(json_object_get(x, "tenant")),
                   a && t ? "runs are"
                   : a    ? "alone run is"
                          : "together run is");
    }
    json_t *pt = json_object_get(json_object_get(st, "predicted"), "total");
    if (pt)
        printf("  plan: %.1f output tokens/s, Jain fairness %.3f\n", jnum(pt, "output_tps", NULL),
               jnum(pt, "jain_fairness", NULL));
    printf("  total: %.1f output tokens/s, Jain fairness %.3f, %s\n", jnum(tot, "output_tps", NULL),
           jnum(tot, "jain_fairness", NULL),
           json_is_null(json_object_get(tot, "all_meet_slo"))    ? "no SLO set"
           : !json_is_true(json_object_get(tot, "all_meet_slo")) ? "some SLO missed"
           : json_is_true(json_object_get(tot, "all_decided"))
               ? "every SLO met"
               : "every SLO met by the estimate, not decided (too few requests or an interval "
                 "across a limit: the verdicts above say which)");
}

/* Measures strategy k; appends its object to arr. 0 or -errno with err. */
static int measure_strategy(const struct measure *m, size_t k, json_t *arr, char *err,
                            size_t errlen)
{
    const struct tenancy_cfg *c = m->c;
    const struct tenancy_strategy *s = &c->strategies[k];
    struct layout l;
    memset(&l, 0, sizeof(l));
    int rc = m->endpoints[k] ? layout_endpoints(m, s, m->endpoints[k], &l, err, errlen)
                             : layout_sim(m, s, &l, err, errlen);
    if (rc)
        return rc;
    struct tenant_meas alone[MAXT], tog[MAXT];
    memset(alone, 0, sizeof(alone));
    memset(tog, 0, sizeof(tog));
    json_t *runs = json_object();
    for (size_t i = 0; l.fits && !rc && i < c->n_tenants; i++) {
        bool which[MAXT] = {false};
        char label[160];
        which[i] = true;
        snprintf(label, sizeof(label), "alone_%s", c->tenants[i].name);
        rc = one_run(m, s, &l, which, 1 + (unsigned)i, label, alone, runs, err, errlen);
    }
    if (l.fits && !rc) {
        bool all[MAXT];
        for (size_t i = 0; i < MAXT; i++)
            all[i] = i < c->n_tenants;
        rc = one_run(m, s, &l, all, 0, "together", tog, runs, err, errlen);
    }
    layout_stop(&l);
    if (!rc) {
        json_t *st = strategy_json(m, s, &l, alone, tog, runs);
        attach_prediction(m, k, st);
        if (!m->quiet)
            print_strategy(st);
        json_array_append_new(arr, st);
    }
    json_decref(runs);
    for (size_t i = 0; i < MAXT; i++) {
        json_decref(alone[i].summary);
        json_decref(tog[i].summary);
    }
    return rc;
}

/* ---- command ------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: testbench tenancy --config FILE [--output-dir DIR] [--calibration FILE]\n"
            "    [--endpoints STRATEGY=URL[,URL...] ...] [--quiet]\n"
            "  Measures each strategy of a tenancy file (the one plan --tenancy reads): each\n"
            "  tenant alone, then all together; per tenant latency, SLO attainment,\n"
            "  interference, normalised throughput, Jain's index and attributed energy.\n"
            "  Strategies are served by the built-in simulator in this process unless\n"
            "  --endpoints names their servers (one URL per tenant, or one for all; only those\n"
            "  strategies are measured then). docs/TENANCY.md.\n");
}

int tenancy_measure_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"output-dir", required_argument, NULL, 'o'},
        {"calibration", required_argument, NULL, 'k'},
        {"endpoints", required_argument, NULL, 'e'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *out_dir = "results", *cal_path = NULL;
    const char *eps[TENANCY_MAX_STRATEGIES * 2];
    size_t n_eps = 0;
    bool quiet = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'c')
            path = optarg;
        else if (ch == 'o')
            out_dir = optarg;
        else if (ch == 'k')
            cal_path = optarg;
        else if (ch == 'q')
            quiet = true;
        else if (ch == 'e' && n_eps < sizeof(eps) / sizeof(eps[0]))
            eps[n_eps++] = optarg;
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
    char err[1024] = "";
    struct tenancy_cfg c;
    struct cost_calibration cal;
    const char *by_strategy[TENANCY_MAX_STRATEGIES] = {NULL};
    json_t *arr = json_array();
    int code = TB_EXIT_OK;
    if (tenancy_cfg_load(&c, path, err, sizeof(err))) {
        log_error("tenancy: %s", err);
        code = TB_EXIT_USAGE;
        goto out;
    }
    cost_calibration_default(&cal);
    if (cal_path && cost_calibration_load(&cal, cal_path, err, sizeof(err))) {
        log_error("tenancy: %s", err);
        code = TB_EXIT_USAGE;
        goto out;
    }
    for (size_t i = 0; i < n_eps; i++) {
        const char *eq = strchr(eps[i], '=');
        size_t k = 0;
        while (eq && k < c.n_strategies &&
               !(strlen(c.strategies[k].name) == (size_t)(eq - eps[i]) &&
                 strncmp(c.strategies[k].name, eps[i], (size_t)(eq - eps[i])) == 0))
            k++;
        if (!eq || !eq[1] || k == c.n_strategies) {
            log_error("tenancy: --endpoints %s: expected STRATEGY=URL[,URL...] with a strategy "
                      "of %s",
                      eps[i], path);
            code = TB_EXIT_USAGE;
            goto out;
        }
        by_strategy[k] = eq + 1;
    }
    if (fs_mkdir_p(out_dir)) {
        log_error("tenancy: cannot create %s", out_dir);
        code = TB_EXIT_RUNTIME;
        goto out;
    }
    struct measure m = {
        .c = &c, .out_dir = out_dir, .endpoints = by_strategy, .cal = &cal, .quiet = quiet};
    for (size_t k = 0; k < c.n_strategies; k++) {
        if (n_eps && !by_strategy[k])
            continue; /* real servers: only the strategies given */
        int rc = measure_strategy(&m, k, arr, err, sizeof(err));
        if (rc) {
            log_error("tenancy: %s", err);
            code = rc == -EINTR ? TB_EXIT_INTERRUPTED : TB_EXIT_RUNTIME;
            goto out;
        }
    }
    char stamp[32], file[1024];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(file, sizeof(file), "%s/tenancy_%s.json", out_dir, stamp);
    json_t *j = json_object();
    json_object_set_new(j, "tenancy_file", json_string(path));
    json_object_set_new(j, "gpu", json_string(c.gpu));
    json_object_set_new(j, "served_by", json_string(n_eps ? "endpoints" : "sim"));
    json_object_set_new(j, "strategies", json_incref(arr));
    if (json_dump_file(j, file, JSON_INDENT(2))) {
        log_error("tenancy: cannot write %s", file);
        code = TB_EXIT_RUNTIME;
    } else if (!quiet) {
        printf("\ninterf = p50 together / p50 alone (TTFT/TPOT); norm = output tokens/s together /"
               " alone; energy: the GPU's over the together run x the tenant's share of tokens;\n"
               "(plan) = plan --tenancy's prediction for the same tenants and layout\n"
               "wrote %s\n",
               file);
    }
    json_decref(j);
out:
    json_decref(arr);
    tenancy_cfg_release(&c);
    return code;
}
