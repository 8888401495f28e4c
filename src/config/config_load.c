/*
 * config_load.c - YAML -> struct config, with file:line:column in every message.
 *
 * libyaml composes the whole document (yaml_parser_load), so every node keeps its start mark.
 * Each section is described by a table of keys; the walker checks types and
 * remembers which node filled which struct member. The value rules (ranges, min <= max, a
 * context that leaves room for the prompt, ...) live once, in config_find_problem(): it names
 * the member at fault and we turn that member back into a node, hence a position.
 *
 * Scalars are typed here, not by libyaml (which tags every untagged scalar as a string):
 * numbers, booleans and null must be plain (unquoted); a quoted "2.0" is a string, and the
 * message says so.
 */
#include "core/text.h"
#include "config/config.h"
#include "config/config_internal.h"
#include "config/config_walk.h"
#include "config/yaml_file.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

/* Configs are a few KiB; anything near this is not a config, and no input
 * is read without a ceiling. */
#define CONFIG_MAX_BYTES (4u << 20)

#define F(st, key, type)                                                                           \
    {                                                                                              \
#key, type, offsetof(struct st, key), NULL, NULL, 0                                        \
    }
#define FC(key, fn)                                                                                \
    {                                                                                              \
#key, FT_CUSTOM, 0, fn, NULL, 0                                                            \
    }
#define N_FIELDS(a) (sizeof(a) / sizeof((a)[0]))
/* A nested section loaded against its own table. */
#define FM(st, key, table)                                                                         \
    {                                                                                              \
#key, FT_MAP, offsetof(struct st, key), NULL, table, N_FIELDS(table)                       \
    }

/* concurrent_requests: an integer or a non-empty list of integers. */
static int load_concurrency(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct requests_cfg *r = base;
    size_t count = n->type == YAML_SEQUENCE_NODE
                       ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
                       : 1;
    if (n->type == YAML_SEQUENCE_NODE && count == 0)
        return walk_fail(ld, n, path, "the list is empty; give a number or a list of numbers");
    if (n->type == YAML_MAPPING_NODE) {
        char g[96];
        return walk_fail(ld, n, path, "expected an integer or a list of integers, %s",
                         walk_got(n, false, g, sizeof(g)));
    }
    int *vals = xreallocarray(NULL, count, sizeof(*vals));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = n;
        char ipath[CFG_PATH_MAX + 32];
        snprintf(ipath, sizeof(ipath), "%s", path);
        if (n->type == YAML_SEQUENCE_NODE) {
            item = walk_node_at(ld, n->data.sequence.items.start[i]);
            snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        }
        long long v = 0;
        int rc = walk_get_int(ld, item, ipath, INT_MIN, INT_MAX, &v);
        if (rc) {
            free(vals);
            return rc;
        }
        vals[i] = (int)v;
    }
    free(r->concurrency);
    r->concurrency = vals;
    r->n_concurrency = count;
    walk_origin_add(ld, &r->concurrency, n);
    for (size_t i = 0; i < count; i++)
        walk_origin_add(
            ld, &vals[i],
            n->type == YAML_SEQUENCE_NODE ? walk_node_at(ld, n->data.sequence.items.start[i]) : n);
    return 0;
}

/* rate_per_second: a number, "inf"/.inf, or a non-empty list of those. */
static int load_rates(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct requests_cfg *r = base;
    size_t count = n->type == YAML_SEQUENCE_NODE
                       ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
                       : 1;
    if (n->type == YAML_SEQUENCE_NODE && count == 0)
        return walk_fail(ld, n, path,
                         "the list is empty; give a number, \"inf\" or a list of those");
    if (n->type == YAML_MAPPING_NODE) {
        char g[96];
        return walk_fail(ld, n, path, "expected a number or \"inf\", %s",
                         walk_got(n, false, g, sizeof(g)));
    }
    double *vals = xreallocarray(NULL, count, sizeof(*vals));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = n;
        char ipath[CFG_PATH_MAX + 32];
        snprintf(ipath, sizeof(ipath), "%s", path);
        if (n->type == YAML_SEQUENCE_NODE) {
            item = walk_node_at(ld, n->data.sequence.items.start[i]);
            snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        }
        int rc = walk_get_number(ld, item, ipath, true, &vals[i]);
        if (rc) {
            free(vals);
            return rc;
        }
    }
    free(r->rates);
    r->rates = vals;
    r->n_rates = count;
    walk_origin_add(ld, &r->rates, n);
    for (size_t i = 0; i < count; i++)
        walk_origin_add(
            ld, &vals[i],
            n->type == YAML_SEQUENCE_NODE ? walk_node_at(ld, n->data.sequence.items.start[i]) : n);
    return 0;
}

static int load_arrival(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct requests_cfg *r = base;
    char g[96];
    if (n->type != YAML_SCALAR_NODE || walk_is_null(n))
        return walk_fail(ld, n, path, "expected one of %s, %s", arrival_names_list(),
                         walk_got(n, false, g, sizeof(g)));
    if (arrival_parse(walk_scalar(n), &r->arrival))
        return walk_fail(ld, n, path, "unknown arrival pattern %s; allowed: %s",
                         walk_describe(n, g, sizeof(g)), arrival_names_list());
    walk_origin_add(ld, &r->arrival, n);
    return 0;
}

/* requests.output_tokens, .dataset, .trace, .rag (workload_cfg.h; rules in workload_cfg.c). */
static const struct field length_fields[] = {
    F(length_dist, distribution, FT_STR), F(length_dist, mean, FT_NUM),
    F(length_dist, stddev, FT_NUM),       F(length_dist, min, FT_INT),
    F(length_dist, max, FT_INT),
};

static const struct field dataset_fields[] = {
    F(dataset_cfg, path, FT_STR_NULL),         F(dataset_cfg, format, FT_STR_NULL),
    F(dataset_cfg, turns, FT_STR_NULL),        F(dataset_cfg, min_prompt_tokens, FT_INT),
    F(dataset_cfg, max_prompt_tokens, FT_INT), F(dataset_cfg, replacement, FT_BOOL),
};

static const struct field trace_fields[] = {
    F(trace_cfg, path, FT_STR_NULL),      F(trace_cfg, format, FT_STR_NULL),
    F(trace_cfg, speed, FT_NUM),          F(trace_cfg, block_tokens, FT_INT),
    F(trace_cfg, time_unit, FT_STR_NULL),
};

static const struct field rag_fields[] = {
    F(rag_cfg, documents, FT_INT),
    F(rag_cfg, document_tokens, FT_INT),
    F(rag_cfg, documents_per_request, FT_INT),
    F(rag_cfg, question_tokens, FT_INT),
    F(rag_cfg, skew, FT_NUM),
};
static int load_think_dist(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct session_cfg *ss = base;
    char g[96];
    if (n->type != YAML_SCALAR_NODE || walk_is_null(n))
        return walk_fail(ld, n, path, "expected one of %s, %s", think_dist_names_list(),
                         walk_got(n, false, g, sizeof(g)));
    if (think_dist_parse(walk_scalar(n), &ss->think))
        return walk_fail(ld, n, path, "unknown distribution %s; allowed: %s",
                         walk_describe(n, g, sizeof(g)), think_dist_names_list());
    walk_origin_add(ld, &ss->think, n);
    return 0;
}

static const struct field session_fields[] = {
    F(session_cfg, enabled, FT_BOOL),
    F(session_cfg, turns, FT_INT),
    FC(think_time_distribution, load_think_dist),
    F(session_cfg, think_time_s, FT_NUM),
    F(session_cfg, think_time_sigma, FT_NUM),
    F(session_cfg, message_tokens_min, FT_INT),
    F(session_cfg, message_tokens_max, FT_INT),
    F(session_cfg, start_spread_s, FT_NUM),
};

/* requests.session: a mapping turns sessions on (unless it says enabled: false); true/false;
 * empty = on with the defaults. */
static int load_session(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct session_cfg *ss = &((struct requests_cfg *)base)->session;
    if (walk_is_null(n)) {
        ss->enabled = true;
    } else if (n->type == YAML_SCALAR_NODE) {
        int rc = walk_get_bool(ld, n, path, &ss->enabled);
        if (rc)
            return rc;
    } else {
        ss->enabled = true; /* before the keys: an explicit enabled: false wins */
        walk_origin_add(ld, &ss->enabled, n);
        return walk_load_map(ld, n, path, session_fields, N_FIELDS(session_fields), ss);
    }
    walk_origin_add(ld, &ss->enabled, n);
    return 0;
}

static const struct field requests_fields[] = {
    F(requests_cfg, num_requests, FT_INT),
    FC(concurrent_requests, load_concurrency),
    FC(arrival_pattern, load_arrival),
    FC(rate_per_second, load_rates),
    F(requests_cfg, burstiness, FT_NUM),
    F(requests_cfg, prompt_tokens_min, FT_INT),
    F(requests_cfg, prompt_tokens_max, FT_INT),
    F(requests_cfg, completion_tokens, FT_INT),
    F(requests_cfg, shared_prefix_tokens, FT_INT),
    FM(requests_cfg, output_tokens, length_fields),
    FM(requests_cfg, dataset, dataset_fields),
    FM(requests_cfg, trace, trace_fields),
    FM(requests_cfg, rag, rag_fields),
    FC(session, load_session),
    F(requests_cfg, warmup_requests, FT_INT),
    F(requests_cfg, warmup_s, FT_NUM),
    F(requests_cfg, duration_s, FT_NUM_NULL),
    F(requests_cfg, stop_when_decided, FT_BOOL),
};

/* slo.profile: a name from slo_profile.h; its values are applied after the section is read
 * (apply_slo_profile), so the keys beside it win whatever their order. */
static int load_slo_profile(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct slo_cfg *slo = base;
    char g[96];
    if (n->type != YAML_SCALAR_NODE || walk_is_null(n))
        return walk_fail(ld, n, path, "expected one of %s, %s", slo_profile_names(),
                         walk_got(n, false, g, sizeof(g)));
    if (!slo_profile_find(walk_scalar(n)))
        return walk_fail(ld, n, path, "unknown profile %s; allowed: %s",
                         walk_describe(n, g, sizeof(g)), slo_profile_names());
    snprintf(slo->profile, sizeof(slo->profile), "%s", walk_scalar(n));
    walk_origin_add(ld, slo->profile, n);
    return 0;
}

static const struct field slo_fields[] = {
    F(slo_cfg, ttft_ms, FT_NUM_NULL), F(slo_cfg, itl_ms, FT_NUM_NULL),
    F(slo_cfg, tpot_ms, FT_NUM_NULL), F(slo_cfg, e2e_ms, FT_NUM_NULL),
    F(slo_cfg, percentile, FT_NUM),   F(slo_cfg, confidence, FT_NUM),
    FC(profile, load_slo_profile),
};

/* A profile named in this slo section fills the objectives the section does not set. */
static void apply_slo_profile(struct loader *ld, struct slo_cfg *slo)
{
    const struct slo_profile *p = slo_profile_find(slo->profile);
    if (!p || !walk_origin_find(ld, slo->profile))
        return;
    struct slo_cfg from;
    slo_from_profile(&from, p);
    double *dst[] = {&slo->ttft_ms, &slo->itl_ms, &slo->tpot_ms, &slo->e2e_ms, &slo->percentile};
    const double src[] = {from.ttft_ms, from.itl_ms, from.tpot_ms, from.e2e_ms, from.percentile};
    for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++)
        if (!walk_origin_find(ld, dst[i]))
            *dst[i] = src[i];
}

static const struct field bench_fields[] = {
    F(bench_cfg, name, FT_STR),          F(bench_cfg, description, FT_STR),
    F(bench_cfg, output_prefix, FT_STR), F(bench_cfg, output_dir, FT_STR),
    F(bench_cfg, seed, FT_U64),
};

static const struct field model_fields[] = {
    F(model_cfg, name, FT_STR_NULL),
    F(model_cfg, quantization, FT_STR_NULL),
    F(model_cfg, tensor_parallel_size, FT_INT),
    F(model_cfg, enable_prefix_caching, FT_BOOL),
};

static const struct field sim_fields[] = {
    F(sim_cfg, gpu, FT_STR),
    F(sim_cfg, model, FT_STR_NULL),
    F(sim_cfg, quantization, FT_STR_NULL),
    F(sim_cfg, kv_cache_dtype, FT_STR),
    F(sim_cfg, catalog, FT_STR_NULL),
    F(sim_cfg, calibration, FT_STR_NULL),
    F(sim_cfg, max_model_len, FT_INT),
    F(sim_cfg, gpu_memory_utilization, FT_NUM),
    F(sim_cfg, max_num_seqs, FT_INT),
    F(sim_cfg, max_num_batched_tokens, FT_INT),
    F(sim_cfg, enable_prefix_caching, FT_BOOL_INT),
    F(sim_cfg, tensor_parallel_size, FT_INT),
    F(sim_cfg, seed, FT_U64),
    F(sim_cfg, reasoning_tokens, FT_INT),
    F(sim_cfg, enable_prompt_tokens_details, FT_BOOL),
};

static const struct field telemetry_fields[] = {
    F(telemetry_cfg, sample_interval_sec, FT_NUM),
    F(telemetry_cfg, collect_gpu_stats, FT_BOOL),
    F(telemetry_cfg, scrape_server_metrics, FT_BOOL),
};

/* server.sim: a mapping (its presence turns the simulator on), true/false, or empty. */
static int load_sim(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct sim_cfg *s = &((struct server_cfg *)base)->sim;
    if (walk_is_null(n)) {
        s->enabled = true;
    } else if (n->type == YAML_SCALAR_NODE) {
        int rc = walk_get_bool(ld, n, path, &s->enabled);
        if (rc)
            return rc;
    } else {
        int rc = walk_load_map(ld, n, path, sim_fields, N_FIELDS(sim_fields), s);
        if (rc)
            return rc;
        s->enabled = true;
    }
    walk_origin_add(ld, &s->enabled, n);
    return 0;
}

static int load_api(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct server_cfg *sv = base;
    char g[96];
    if (n->type != YAML_SCALAR_NODE || walk_is_null(n))
        return walk_fail(ld, n, path, "expected one of %s, %s", api_kind_names_list(),
                         walk_got(n, false, g, sizeof(g)));
    if (api_kind_parse(walk_scalar(n), &sv->api))
        return walk_fail(ld, n, path, "unknown api %s; allowed: %s", walk_describe(n, g, sizeof(g)),
                         api_kind_names_list());
    walk_origin_add(ld, &sv->api, n);
    return 0;
}

static const struct field server_fields[] = {
    F(server_cfg, endpoint, FT_STR),       FC(api, load_api),
    F(server_cfg, api_key_env, FT_STR),    F(server_cfg, timeout_s, FT_NUM),
    F(server_cfg, ca_bundle, FT_STR_NULL), FC(sim, load_sim),
};

static const struct field tenant_fields[] = {
    F(tenant_cfg, name, FT_STR),       F(tenant_cfg, endpoint, FT_STR),
    F(tenant_cfg, model, FT_STR_NULL), FM(tenant_cfg, requests, requests_fields),
    FM(tenant_cfg, slo, slo_fields),
};

/* ==== Study sections (study_cfg.h) ==== */

static const struct field setup_fields[] = {
    F(setup_cfg, name, FT_STR),
    F(setup_cfg, model, FT_STR),
    F(setup_cfg, quantization, FT_STR_NULL),
    F(setup_cfg, kv_cache_dtype, FT_STR),
    F(setup_cfg, max_model_len, FT_INT),
    F(setup_cfg, gpu_memory_utilization, FT_NUM),
    F(setup_cfg, tensor_parallel_size, FT_INT),
    F(setup_cfg, max_num_seqs, FT_INT),
    F(setup_cfg, enable_prefix_caching, FT_BOOL_INT),
    F(setup_cfg, extra_args, FT_STR_LIST),
};

static const struct field grid_fields[] = {
    F(setup_grid, model, FT_STR_LIST),
    F(setup_grid, quantization, FT_STR_LIST),
    F(setup_grid, kv_cache_dtype, FT_STR_LIST),
    F(setup_grid, max_model_len, FT_INT_LIST),
    F(setup_grid, gpu_memory_utilization, FT_NUM_LIST),
    F(setup_grid, tensor_parallel_size, FT_INT_LIST),
    F(setup_grid, max_num_seqs, FT_INT_LIST),
};

/* A list of mappings, each loaded against its own table into a fresh element. */
static int load_seq_of_maps(struct loader *ld, const yaml_node_t *n, const char *path,
                            const struct field *fields, size_t n_fields, size_t elem,
                            void (*init)(void *), void **out, size_t *n_out)
{
    char g[96];
    if (n->type != YAML_SEQUENCE_NODE)
        return walk_fail(ld, n, path, "expected a list, %s", walk_got(n, false, g, sizeof(g)));
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return walk_fail(ld, n, path, "the list is empty; leave the key out instead");
    if (*n_out)
        return walk_fail(ld, n, path, "given twice");
    /* Allocated once: origins point into this array. */
    char *arr = xcalloc(count, elem);
    for (size_t i = 0; i < count; i++)
        init(arr + i * elem);
    *out = arr;
    *n_out = count;
    for (size_t i = 0; i < count; i++) {
        char ipath[CFG_PATH_MAX];
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        int rc = walk_load_map(ld, walk_node_at(ld, n->data.sequence.items.start[i]), ipath, fields,
                               n_fields, arr + i * elem);
        if (rc)
            return rc;
    }
    return 0;
}

static void setup_init(void *p)
{
    struct setup_cfg *s = p;
    s->enable_prefix_caching = -1;
}

static int load_setup_list(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct study_cfg *s = &ld->c->study;
    (void)base;
    return load_seq_of_maps(ld, n, path, setup_fields, N_FIELDS(setup_fields), sizeof(*s->list),
                            setup_init, (void **)&s->list, &s->n_list);
}

static int load_grid(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct study_cfg *s = &ld->c->study;
    (void)base;
    s->grid_given = true;
    return walk_load_map(ld, n, path, grid_fields, N_FIELDS(grid_fields), &s->grid);
}

static const struct field setups_fields[] = {
    FM(study_cfg, defaults, setup_fields),
    FC(grid, load_grid),
    FC(list, load_setup_list),
};

/* workloads[].context_fill: the old name of window_fill ("context" meant both the window and
 * the prompt; docs/CONFIG.md, "Window and prompt"). */
static int load_context_fill(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct workload_cfg *w = base;
    int rc = walk_get_number(ld, n, path, false, &w->window_fill);
    if (!rc)
        walk_origin_add(ld, &w->window_fill, n);
    return rc;
}

static const struct field workload_fields[] = {
    F(workload_cfg, name, FT_STR),        F(workload_cfg, config, FT_STR),
    F(workload_cfg, window_fill, FT_NUM), FC(context_fill, load_context_fill),
    F(workload_cfg, population, FT_STR),  F(workload_cfg, slo_profile, FT_STR),
};

static void workload_init(void *p)
{
    struct workload_cfg *w = p;
    w->window_fill = NAN;
}

static int load_workloads(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct study_cfg *s = &ld->c->study;
    (void)base;
    s->present = true;
    return load_seq_of_maps(ld, n, path, workload_fields, N_FIELDS(workload_fields),
                            sizeof(*s->workloads), workload_init, (void **)&s->workloads,
                            &s->n_workloads);
}

static const struct field study_fields[] = {
    F(study_cfg, name, FT_STR),
    F(study_cfg, gpu, FT_STR),
    F(study_cfg, catalog, FT_STR_NULL),
    F(study_cfg, users, FT_INT_LIST),
    F(study_cfg, capacity_search, FT_BOOL),
    F(study_cfg, max_users, FT_INT),
    F(study_cfg, requests_per_user, FT_INT),
    F(study_cfg, min_requests, FT_INT),
    F(study_cfg, max_requests, FT_INT),
    F(study_cfg, warmup_per_user, FT_INT),
    F(study_cfg, stop_when_decided, FT_BOOL),
};

static const struct field backend_fields[] = {
    F(study_backend_cfg, type, FT_STR),
    F(study_backend_cfg, startup_timeout_s, FT_NUM),
    F(study_backend_cfg, stop_grace_s, FT_NUM),
    F(study_backend_cfg, port, FT_INT),
    F(study_backend_cfg, image, FT_STR),
    F(study_backend_cfg, gpus, FT_STR),
    F(study_backend_cfg, hf_cache, FT_STR),
    F(study_backend_cfg, network, FT_STR_NULL),
    F(study_backend_cfg, docker_args, FT_STR_LIST),
    F(study_backend_cfg, command, FT_STR),
    F(study_backend_cfg, endpoint, FT_STR),
    F(study_backend_cfg, gpu_ids, FT_INT_LIST),
    F(study_backend_cfg, gpus_per_setup, FT_INT),
};

static const struct field slurm_fields[] = {
    F(study_slurm_cfg, partition, FT_STR_NULL),  F(study_slurm_cfg, account, FT_STR_NULL),
    F(study_slurm_cfg, time, FT_STR_NULL),       F(study_slurm_cfg, gres, FT_STR_NULL),
    F(study_slurm_cfg, signal_s, FT_INT),        F(study_slurm_cfg, max_parallel, FT_INT),
    F(study_slurm_cfg, extra_args, FT_STR_LIST), F(study_slurm_cfg, testbench, FT_STR_NULL),
};

static const struct field k8s_fields[] = {
    {"namespace", FT_STR_NULL, offsetof(struct study_k8s_cfg, namespace_), NULL, NULL, 0},
    F(study_k8s_cfg, image, FT_STR),
    F(study_k8s_cfg, storage_class, FT_STR_NULL),
    F(study_k8s_cfg, storage_size, FT_STR),
    F(study_k8s_cfg, access_mode, FT_STR),
    F(study_k8s_cfg, hf_token_secret, FT_STR_NULL),
    F(study_k8s_cfg, gpu_resource, FT_STR),
    F(study_k8s_cfg, max_parallel, FT_INT),
};

/* Any study section makes the file a study file. */
static int load_study_section(struct loader *ld, const yaml_node_t *n, const char *path,
                              const struct field *fields, size_t n_fields, void *dst)
{
    ld->c->study.present = true;
    return walk_load_map(ld, n, path, fields, n_fields, dst);
}

static int load_study(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    (void)base;
    return load_study_section(ld, n, path, study_fields, N_FIELDS(study_fields), &ld->c->study);
}

static int load_setups(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    (void)base;
    return load_study_section(ld, n, path, setups_fields, N_FIELDS(setups_fields), &ld->c->study);
}

static int load_backend(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    (void)base;
    return load_study_section(ld, n, path, backend_fields, N_FIELDS(backend_fields),
                              &ld->c->study.backend);
}

static int load_slurm(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    (void)base;
    return load_study_section(ld, n, path, slurm_fields, N_FIELDS(slurm_fields),
                              &ld->c->study.slurm);
}

static int load_k8s(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    (void)base;
    return load_study_section(ld, n, path, k8s_fields, N_FIELDS(k8s_fields), &ld->c->study.k8s);
}

/* ==== Top level ==== */

static int load_contexts(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    struct config *c = base;
    char g[96];
    if (walk_is_null(n))
        return 0; /* same as leaving it out */
    if (n->type != YAML_SEQUENCE_NODE)
        return walk_fail(ld, n, path, "expected a list of context lengths (tokens), %s",
                         walk_got(n, false, g, sizeof(g)));
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return walk_fail(ld, n, path,
                         "the list is empty; leave the key out to use "
                         "requests.prompt_tokens_min/max");
    int *vals = xreallocarray(NULL, count, sizeof(*vals));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = walk_node_at(ld, n->data.sequence.items.start[i]);
        char ipath[CFG_PATH_MAX + 32];
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        long long v = 0;
        int rc = walk_get_int(ld, item, ipath, INT_MIN, INT_MAX, &v);
        if (rc) {
            free(vals);
            return rc;
        }
        vals[i] = (int)v;
    }
    free(c->context_lengths);
    c->context_lengths = vals;
    c->n_context_lengths = count;
    for (size_t i = 0; i < count; i++)
        walk_origin_add(ld, &vals[i], walk_node_at(ld, n->data.sequence.items.start[i]));
    walk_origin_add(ld, &c->context_lengths, n);
    return 0;
}

/* Kept for after the top-level sections: a tenant inherits them, whatever the key order. */
static int note_tenants(struct loader *ld, const yaml_node_t *n, const char *path, void *base)
{
    (void)path;
    (void)base;
    ld->tenants_node = n;
    return 0;
}

static const struct field top_fields[] = {
    FM(config, benchmark, bench_fields),
    FM(config, server, server_fields),
    FM(config, model, model_fields),
    FC(context_lengths, load_contexts),
    FM(config, requests, requests_fields),
    FM(config, slo, slo_fields),
    FC(tenants, note_tenants),
    FM(config, telemetry, telemetry_fields),
    FC(study, load_study),
    FC(setups, load_setups),
    FC(workloads, load_workloads),
    FC(backend, load_backend),
    FC(slurm, load_slurm),
    {"kubernetes", FT_CUSTOM, 0, load_k8s, NULL, 0},
};

static int load_tenants(struct loader *ld)
{
    struct config *c = ld->c;
    const yaml_node_t *n = ld->tenants_node;
    char g[96];
    if (!n || walk_is_null(n)) {
        config_set_default_tenant(c);
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return walk_fail(ld, n, "tenants", "expected a list of tenants, %s",
                         walk_got(n, false, g, sizeof(g)));
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return walk_fail(ld, n, "tenants", "the list is empty; leave the key out for one tenant");
    for (size_t i = 0; i < c->n_tenants; i++)
        tenant_cfg_release(&c->tenants[i]);
    free(c->tenants);
    /* Allocated once: origins point into this array. Each starts as a copy of the top level
     * (name unset), so what a tenant leaves out is inherited. */
    c->tenants = xcalloc(count, sizeof(*c->tenants));
    c->n_tenants = count;
    c->tenants_given = true;
    for (size_t i = 0; i < count; i++)
        tenant_cfg_inherit(&c->tenants[i], c, NULL);
    for (size_t i = 0; i < count; i++) {
        struct tenant_cfg *t = &c->tenants[i];
        const yaml_node_t *item = walk_node_at(ld, n->data.sequence.items.start[i]);
        char path[CFG_PATH_MAX];
        snprintf(path, sizeof(path), "tenants[%zu]", i);
        int rc = walk_load_map(ld, item, path, tenant_fields, N_FIELDS(tenant_fields), t);
        if (rc)
            return rc;
        if (!t->name)
            return walk_fail(ld, item, path, "missing required key \"name\"");
        apply_slo_profile(ld, &t->slo);
        endpoint_normalize(t->endpoint);
    }
    return 0;
}

/* Unset simulator fields follow the model and benchmark sections. */
static void resolve_sim(struct loader *ld)
{
    struct config *c = ld->c;
    struct sim_cfg *s = &c->server.sim;
    if (!walk_origin_find(ld, &s->model)) {
        free(s->model);
        s->model = xstrdup(c->model.name);
    }
    if (!walk_origin_find(ld, &s->quantization)) {
        free(s->quantization);
        s->quantization = xstrdup(c->model.quantization);
    }
    if (!walk_origin_find(ld, &s->enable_prefix_caching))
        s->enable_prefix_caching = c->model.enable_prefix_caching;
    if (!walk_origin_find(ld, &s->tensor_parallel_size) || s->tensor_parallel_size == 0)
        s->tensor_parallel_size = c->model.tensor_parallel_size;
    if (!walk_origin_find(ld, &s->seed))
        s->seed = c->benchmark.seed;
}

/* "none" means unquantized, as null does. */
static void quantization_normalize(char **q)
{
    if (*q && strcasecmp(*q, "none") == 0) {
        free(*q);
        *q = NULL;
    }
}

static int report_problem(struct loader *ld, const yaml_node_t *root)
{
    struct cfg_problem p;
    int rc = config_find_problem(ld->c, &p);
    if (!rc)
        return 0;
    /* The members the problem names besides the one reported (the other bound of min <= max)
     * are left out too when the file is loaded again for its next error: with one of them at
     * its default the same problem would show again in other words. */
    ld->n_err_also = 0;
    for (size_t i = 0; i < p.n_at; i++) {
        const yaml_node_t *n = p.at[i].section ? NULL : walk_origin_lookup(ld, p.at[i].addr, false);
        if (n && ld->n_err_also < CFG_WHERE_MAX)
            ld->err_also[ld->n_err_also++] = n;
    }
    for (size_t i = 0; i < p.n_at; i++) {
        const yaml_node_t *n = walk_origin_lookup(ld, p.at[i].addr, p.at[i].section);
        if (n)
            return walk_fail(ld, n, p.at[i].path, "%s", p.at[i].msg);
    }
    return walk_fail(ld, root, p.at[0].path, "%s", p.at[0].msg);
}

static int load_document(struct loader *ld)
{
    struct config *c = ld->c;
    const yaml_node_t *root = yaml_document_get_root_node(&ld->doc);
    char g[96];
    if (!root)
        return walk_fail(ld, NULL, "",
                         "the file is empty; expected a mapping of sections "
                         "(benchmark, model, requests, ...)");
    if (root->type != YAML_MAPPING_NODE)
        return walk_fail(ld, root, "",
                         "expected a mapping of sections (benchmark, model, requests, "
                         "...) at the top level, %s",
                         walk_got(root, false, g, sizeof(g)));
    int rc = walk_load_map(ld, root, "", top_fields, N_FIELDS(top_fields), c);
    if (rc)
        return rc;
    quantization_normalize(&c->model.quantization);
    quantization_normalize(&c->server.sim.quantization);
    endpoint_normalize(c->server.endpoint);
    resolve_sim(ld);
    apply_slo_profile(ld, &c->slo);
    c->prompt_lengths_unused =
        c->n_context_lengths > 0 && (walk_origin_find(ld, &c->requests.prompt_tokens_min) ||
                                     walk_origin_find(ld, &c->requests.prompt_tokens_max));
    c->study.slo_given = walk_origin_lookup(ld, &c->slo, true) != NULL;
    rc = load_tenants(ld);
    if (rc)
        return rc;
    return report_problem(ld, root);
}

/* ==== File ==== */

/* One error of a file, by its place (for the order they are told in). */
struct found_error {
    size_t line, column;
    char *msg;
};

static int found_error_cmp(const void *a, const void *b)
{
    const struct found_error *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return (x->column > y->column) - (x->column < y->column);
}

/* The errors in file order, one per line of err (what fits); frees them. */
static void errors_write(struct found_error *e, size_t n, char *err, size_t errlen)
{
    if (n > 1)
        qsort(e, n, sizeof(*e), found_error_cmp);
    size_t used = 0;
    err[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (used + 1 < errlen) {
            int w = snprintf(err + used, errlen - used, "%s%s", used ? "\n" : "", e[i].msg);
            if (w > 0)
                used += (size_t)w < errlen - used ? (size_t)w : errlen - used - 1;
        }
        free(e[i].msg);
    }
}

/*
 * Every error in the file, not just the first: after an error the document is loaded again
 * with the key at fault left out (its default stands in), until it loads or an error cannot be
 * left out (no place in the file, the same message again) or CONFIG_MAX_ERRORS were found.
 * Each message keeps its file:line:column; err gets them one per line.
 */
int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    config_defaults(c);
    c->path = xstrdup(path);

    struct yaml_file yf;
    int rc = yaml_file_load(&yf, path, CONFIG_MAX_BYTES, "a config", err, errlen);
    if (rc) {
        text_redact_into(err, errlen);
        yaml_file_release(&yf);
        config_release(c);
        return rc;
    }
    const yaml_node_t **skip = NULL;
    size_t n_skip = 0, n_errors = 0;
    struct found_error errors[CONFIG_MAX_ERRORS];
    char last[1024] = "";
    for (;;) {
        char msg[1024] = "";
        struct loader ld = {.file = path,
                            .c = c,
                            .err = msg,
                            .errlen = sizeof(msg),
                            .doc = yf.doc,
                            .skip = skip,
                            .n_skip = n_skip};
        rc = load_document(&ld);
        free(ld.origins);
        if (!rc)
            break;
        bool repeat = strcmp(msg, last) == 0;
        /* An error at a mapping that holds a key left out ("missing required key") is that
         * key's doing, not the file's: not told, and its mapping left out too. */
        bool consequence = false;
        for (size_t i = 0; i < n_skip && ld.err_node && !repeat; i++)
            consequence = consequence || walk_node_holds(ld.err_node, skip[i]);
        if (!repeat && !consequence) {
            errors[n_errors].line = ld.err_node ? ld.err_node->start_mark.line : 0;
            errors[n_errors].column = ld.err_node ? ld.err_node->start_mark.column : 0;
            errors[n_errors++].msg = xstrdup(msg);
        }
        const yaml_node_t *root = yaml_document_get_root_node(&yf.doc);
        if (repeat || !ld.err_node || ld.err_node == root || n_errors >= CONFIG_MAX_ERRORS)
            break;
        snprintf(last, sizeof(last), "%s", msg);
        skip = xreallocarray(skip, n_skip + 1 + ld.n_err_also, sizeof(*skip));
        skip[n_skip++] = ld.err_node;
        for (size_t i = 0; i < ld.n_err_also; i++)
            skip[n_skip++] = ld.err_also[i];
        config_release(c);
        config_defaults(c);
        c->path = xstrdup(path);
    }
    free(skip);
    yaml_file_release(&yf);
    if (n_errors) {
        rc = -EINVAL;
        errors_write(errors, n_errors, err, errlen);
        /* Messages quote the file; a .env given by mistake must not show its tokens. */
        text_redact_into(err, errlen);
        config_release(c);
    }
    return rc;
}
