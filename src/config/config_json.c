/*
 * config_json.c - the resolved config as JSON (config_to_json): what every result file records
 * as the config it ran, each key as docs/CONFIG.md spells it.
 */
#include "config/config.h"
#include "config/config_internal.h"
#include "core/jsonx.h"
#include "telemetry/telemetry.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* NAN = null (no objective), INFINITY = "inf" (as the config spells it). */
static json_t *json_num(double v)
{
    if (isnan(v))
        return json_null();
    if (isinf(v))
        return json_string(v > 0 ? "inf" : "-inf");
    return json_real(v);
}

static json_t *requests_to_json(const struct requests_cfg *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "num_requests", json_integer(r->num_requests));
    if (r->n_concurrency == 1) {
        json_object_set_new(o, "concurrent_requests", json_integer(r->concurrency[0]));
    } else {
        json_t *a = json_array();
        for (size_t i = 0; i < r->n_concurrency; i++)
            json_array_append_new(a, json_integer(r->concurrency[i]));
        json_object_set_new(o, "concurrent_requests", a);
    }
    json_object_set_new(o, "arrival_pattern", json_string(arrival_name(r->arrival)));
    if (r->n_rates == 1) {
        json_object_set_new(o, "rate_per_second", json_num(r->rates[0]));
    } else {
        json_t *a = json_array();
        for (size_t i = 0; i < r->n_rates; i++)
            json_array_append_new(a, json_num(r->rates[i]));
        json_object_set_new(o, "rate_per_second", a);
    }
    json_object_set_new(o, "burstiness", json_num(r->burstiness));
    json_object_set_new(o, "prompt_tokens_min", json_integer(r->prompt_tokens_min));
    json_object_set_new(o, "prompt_tokens_max", json_integer(r->prompt_tokens_max));
    json_object_set_new(o, "completion_tokens", json_integer(r->completion_tokens));
    json_object_set_new(o, "shared_prefix_tokens", json_integer(r->shared_prefix_tokens));
    measure_cfg_to_json(o, r);
    workload_cfg_to_json(o, r);
    json_object_set_new(o, "session", session_cfg_to_json(&r->session));
    return o;
}

static json_t *slo_to_json(const struct slo_cfg *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "ttft_ms", json_num(s->ttft_ms));
    json_object_set_new(o, "itl_ms", json_num(s->itl_ms));
    json_object_set_new(o, "tpot_ms", json_num(s->tpot_ms));
    json_object_set_new(o, "e2e_ms", json_num(s->e2e_ms));
    json_object_set_new(o, "percentile", json_num(s->percentile));
    json_object_set_new(o, "profile", s->profile[0] ? json_string(s->profile) : json_null());
    json_object_set_new(o, "confidence", json_num(s->confidence));
    return o;
}

json_t *config_to_json(const struct config *c)
{
    json_t *root = json_object();
    json_object_set_new(root, "path", json_string_or_null(c->path));

    json_t *b = json_object();
    json_object_set_new(b, "name", json_string_or_null(c->benchmark.name));
    json_object_set_new(b, "description", json_string_or_null(c->benchmark.description));
    json_object_set_new(b, "output_prefix", json_string_or_null(c->benchmark.output_prefix));
    json_object_set_new(b, "output_dir", json_string_or_null(c->benchmark.output_dir));
    json_object_set_new(b, "seed", json_integer((json_int_t)c->benchmark.seed));
    json_object_set_new(root, "benchmark", b);

    const struct sim_cfg *s = &c->server.sim;
    json_t *sim = json_object();
    json_object_set_new(sim, "enabled", json_boolean(s->enabled));
    json_object_set_new(sim, "gpu", json_string_or_null(s->gpu));
    json_object_set_new(sim, "model", json_string_or_null(s->model));
    json_object_set_new(sim, "quantization", json_string_or_null(s->quantization));
    json_object_set_new(sim, "kv_cache_dtype", json_string_or_null(s->kv_cache_dtype));
    json_object_set_new(sim, "catalog", json_string_or_null(s->catalog));
    json_object_set_new(sim, "calibration", json_string_or_null(s->calibration));
    json_object_set_new(sim, "max_model_len", json_integer(s->max_model_len));
    json_object_set_new(sim, "gpu_memory_utilization", json_num(s->gpu_memory_utilization));
    json_object_set_new(sim, "max_num_seqs", json_integer(s->max_num_seqs));
    json_object_set_new(sim, "max_num_batched_tokens", json_integer(s->max_num_batched_tokens));
    json_object_set_new(sim, "enable_prefix_caching", json_boolean(s->enable_prefix_caching > 0));
    json_object_set_new(sim, "tensor_parallel_size", json_integer(s->tensor_parallel_size));
    json_object_set_new(sim, "seed", json_integer((json_int_t)s->seed));
    json_object_set_new(sim, "reasoning_tokens", json_integer(s->reasoning_tokens));
    json_object_set_new(sim, "enable_prompt_tokens_details",
                        json_boolean(s->enable_prompt_tokens_details));

    json_t *sv = json_object();
    json_object_set_new(sv, "endpoint", json_string_or_null(c->server.endpoint));
    json_object_set_new(sv, "api", json_string(api_kind_name(c->server.api)));
    json_object_set_new(sv, "api_key_env", json_string_or_null(c->server.api_key_env));
    json_object_set_new(sv, "ca_bundle", json_string_or_null(c->server.ca_bundle));
    json_object_set_new(sv, "timeout_s", json_num(c->server.timeout_s));
    json_object_set_new(sv, "sim", sim);
    json_object_set_new(root, "server", sv);

    json_t *m = json_object();
    json_object_set_new(m, "name", json_string_or_null(c->model.name));
    json_object_set_new(m, "quantization", json_string_or_null(c->model.quantization));
    json_object_set_new(m, "tensor_parallel_size", json_integer(c->model.tensor_parallel_size));
    json_object_set_new(m, "enable_prefix_caching", json_boolean(c->model.enable_prefix_caching));
    json_object_set_new(root, "model", m);

    if (c->n_context_lengths == 0) {
        json_object_set_new(root, "context_lengths", json_null());
    } else {
        json_t *a = json_array();
        for (size_t i = 0; i < c->n_context_lengths; i++)
            json_array_append_new(a, json_integer(c->context_lengths[i]));
        json_object_set_new(root, "context_lengths", a);
    }

    json_object_set_new(root, "requests", requests_to_json(&c->requests));
    json_object_set_new(root, "slo", slo_to_json(&c->slo));

    json_t *ts = json_array();
    for (size_t i = 0; i < c->n_tenants; i++) {
        const struct tenant_cfg *t = &c->tenants[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string_or_null(t->name));
        json_object_set_new(o, "endpoint", json_string_or_null(t->endpoint));
        json_object_set_new(o, "model", json_string_or_null(t->model));
        json_object_set_new(o, "requests", requests_to_json(&t->requests));
        json_object_set_new(o, "slo", slo_to_json(&t->slo));
        json_array_append_new(ts, o);
    }
    json_object_set_new(root, "tenants", ts);

    json_t *tl = json_object();
    json_object_set_new(tl, "sample_interval_sec", json_num(c->telemetry.sample_interval_sec));
    json_object_set_new(tl, "collect_gpu_stats", json_boolean(c->telemetry.collect_gpu_stats));
    json_object_set_new(tl, "scrape_server_metrics",
                        json_boolean(c->telemetry.scrape_server_metrics));
    json_object_set_new(root, "telemetry", tl);
    return root;
}
