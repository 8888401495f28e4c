/*
 * validation.c - loads bench/validation/ files and compares plan's predictions with the
 * published figures. The file format is written at the top of each validation file.
 */
#include "plan/validation.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config/yaml_file.h"

#include "core/rng.h"
#include "core/stats.h"
#include "engine/calibration.h"
#include "engine/cost.h"
#include "workload/length.h"

#define VALIDATION_MAX_FILE (1024 * 1024)
#define VALIDATION_MAX_ROWS 4096

void validation_set_init(struct validation_set *s)
{
    memset(s, 0, sizeof(*s));
}

void validation_set_release(struct validation_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->rows[i].prompt_lens);
        free(s->rows[i].output_lens);
    }
    free(s->rows);
    memset(s, 0, sizeof(*s));
}

enum vtype { V_STR, V_INT, V_DOUBLE, V_BOOL, V_TRI };

struct vfield {
    const char *key;
    enum vtype type;
    size_t off;
    size_t len; /* strings: buffer size */
    bool required;
};

#define VS(k, req)                                                                                 \
    {                                                                                              \
#k, V_STR, offsetof(struct validation_row, k), sizeof(((struct validation_row *)0)->k),    \
            req                                                                                    \
    }
#define VI(k, req)                                                                                 \
    {                                                                                              \
#k, V_INT, offsetof(struct validation_row, k), 0, req                                      \
    }
#define VD(k, req)                                                                                 \
    {                                                                                              \
#k, V_DOUBLE, offsetof(struct validation_row, k), 0, req                                   \
    }
#define VB(k)                                                                                      \
    {                                                                                              \
#k, V_BOOL, offsetof(struct validation_row, k), 0, false                                   \
    }

static const struct vfield vfields[] = {
    VS(id, true),
    VS(source, true),
    VS(gpu, true),
    VS(model, true),
    VS(quantization, false),
    VS(kv_cache_dtype, false),
    {"engine", V_STR, (size_t)-1, 0, true},
    {"engine_version", V_STR, (size_t)-1, 0, true},
    {"note", V_STR, (size_t)-1, 0, false},
    VI(max_model_len, true),
    VD(gpu_memory_utilization, false),
    VI(tensor_parallel_size, false),
    VI(max_num_seqs, false),
    VI(max_num_batched_tokens, false),
    VI(numa_nodes, false),
    {"p2p", V_TRI, offsetof(struct validation_row, p2p), 0, false},
    VI(replicas, false),
    VI(prompt_tokens, true),
    VI(output_tokens, true),
    VI(concurrency, true),
    VI(prompts, true),
    {"output_throughput", V_DOUBLE, offsetof(struct validation_row, output_tps), 0, false},
    VD(ttft_mean_ms, false),
    VD(ttft_median_ms, false),
    VD(tpot_mean_ms, false),
    VD(tpot_median_ms, false),
    VB(ttft_queue_dominated),
    VB(ttft_implausible),
    VB(lengths_vary),
};
#define N_VFIELDS (sizeof(vfields) / sizeof(vfields[0]))

static int set_vfield(struct validation_row *r, const struct vfield *f, const yaml_node_t *v,
                      const char *file, char *err, size_t errlen)
{
    if (v->type != YAML_SCALAR_NODE)
        return yaml_node_fail(err, errlen, file, v, f->key, "expected a scalar");
    const char *s = (const char *)v->data.scalar.value;
    if (f->off == (size_t)-1) /* recorded for people, not used by the planner */
        return 0;
    char *p = (char *)r + f->off;
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case V_STR:
        if (strlen(s) >= f->len)
            return yaml_node_fail(err, errlen, file, v, f->key, "too long");
        snprintf(p, f->len, "%s", s);
        return 0;
    case V_INT: {
        long x = strtol(s, &end, 10);
        if (errno || end == s || *end || x < 0 || x > 100000000)
            return yaml_node_fail(err, errlen, file, v, f->key, "expected a non-negative integer");
        *(int *)(void *)p = (int)x;
        return 0;
    }
    case V_DOUBLE: {
        double x = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(x) || x <= 0)
            return yaml_node_fail(err, errlen, file, v, f->key, "expected a positive number");
        *(double *)(void *)p = x;
        return 0;
    }
    case V_TRI: /* a boolean that may be left out (-1) */
        if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
            return yaml_node_fail(err, errlen, file, v, f->key, "expected true or false");
        *(int *)(void *)p = strcmp(s, "true") == 0;
        return 0;
    case V_BOOL:
        if (strcmp(s, "true") == 0)
            *(bool *)(void *)p = true;
        else if (strcmp(s, "false") == 0)
            *(bool *)(void *)p = false;
        else
            return yaml_node_fail(err, errlen, file, v, f->key, "expected true or false");
        return 0;
    }
    return -EINVAL;
}

static int load_row(struct validation_row *r, yaml_document_t *doc, yaml_node_t *map,
                    const char *file, char *err, size_t errlen)
{
    if (map->type != YAML_MAPPING_NODE)
        return yaml_node_fail(err, errlen, file, map, NULL, "expected a row (a mapping)");
    memset(r, 0, sizeof(*r));
    r->gpu_memory_utilization = 0.9;
    r->tensor_parallel_size = 1;
    r->numa_nodes = 1;
    r->p2p = -1;
    r->replicas = 1;
    r->output_tps = r->ttft_mean_ms = r->ttft_median_ms = NAN;
    r->tpot_mean_ms = r->tpot_median_ms = NAN;
    bool seen[N_VFIELDS] = {false};
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const char *k =
            kn && kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "";
        size_t i = 0;
        while (i < N_VFIELDS && strcmp(vfields[i].key, k) != 0)
            i++;
        if (i == N_VFIELDS)
            return yaml_node_fail(err, errlen, file, kn, k, "unknown key");
        int rc = set_vfield(r, &vfields[i], vn, file, err, errlen);
        if (rc)
            return rc;
        seen[i] = true;
    }
    for (size_t i = 0; i < N_VFIELDS; i++)
        if (vfields[i].required && !seen[i])
            return yaml_node_fail(err, errlen, file, map, vfields[i].key, "missing");
    if (r->replicas < 1 || r->concurrency < r->replicas || r->prompts < r->replicas ||
        r->tensor_parallel_size < 1 || r->prompt_tokens < 1 || r->output_tokens < 1 ||
        r->max_num_seqs < 0 || r->max_num_batched_tokens < 0 || r->numa_nodes < 1 ||
        r->numa_nodes > r->tensor_parallel_size)
        return yaml_node_fail(
            err, errlen, file, map, r->id,
            "replicas, tensor_parallel_size, prompt/output tokens must be >= 1, max_num_seqs and "
            "max_num_batched_tokens >= 0, "
            "numa_nodes between 1 and tensor_parallel_size, and concurrency and prompts at least "
            "one per replica");
    if (isnan(r->output_tps) && isnan(r->ttft_mean_ms) && isnan(r->ttft_median_ms) &&
        isnan(r->tpot_mean_ms) && isnan(r->tpot_median_ms))
        return yaml_node_fail(err, errlen, file, map, r->id, "publishes no figure to compare");
    return 0;
}

/* vLLM's ShareGPT sampler keeps a conversation's first turn when both lengths are >= 4, the
 * prompt <= 1024 and the two together <= 2048 tokens (vllm/benchmarks/datasets.py,
 * is_valid_sequence); within those bounds the lengths are long-tailed, drawn here as lognormals
 * whose standard deviation equals their mean (docs/ENGINE.md), then scaled so that the sample's
 * means are the published ones. */
#define SHAREGPT_MIN_LEN 4
#define SHAREGPT_MAX_PROMPT 1024
#define SHAREGPT_MAX_TOTAL 2048
#define SHAREGPT_CV 1.0
#define SHAREGPT_RESCALE_ROUNDS 8

static void sharegpt_draw(int mean, int hi_cap, struct rng *g, int *v, size_t n)
{
    struct length_dist d = {.distribution = "lognormal",
                            .mean = mean,
                            .stddev = SHAREGPT_CV * mean,
                            .min = SHAREGPT_MIN_LEN,
                            .max = hi_cap};
    struct length_sampler ls;
    if (length_sampler_init(&ls, &d, mean)) { /* "lognormal" is always known */
        for (size_t i = 0; i < n; i++)
            v[i] = mean;
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = length_draw(&ls, g, 0);
}

/* Scales v (clipped to [lo, hi[i]]) until its mean is 'mean': clipping the long tail pulls the
 * mean below the distribution's, and the row publishes the sample's. */
static void rescale_mean(int *v, const int *hi, int hi_all, size_t n, int mean)
{
    for (int k = 0; k < SHAREGPT_RESCALE_ROUNDS && n > 0; k++) {
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += v[i];
        double f = (double)mean * (double)n / sum;
        if (fabs(f - 1) < 1e-3)
            return;
        for (size_t i = 0; i < n; i++) {
            int cap = hi ? hi[i] : hi_all;
            double x = round(v[i] * f);
            v[i] = x < SHAREGPT_MIN_LEN ? SHAREGPT_MIN_LEN : x > cap ? cap : (int)x;
        }
    }
}

void validation_sharegpt_lengths(int prompt_mean, int output_mean, uint64_t seed, int *prompt,
                                 int *output, size_t n)
{
    struct rng g;
    rng_seed(&g, seed);
    sharegpt_draw(prompt_mean, SHAREGPT_MAX_PROMPT, &g, prompt, n);
    rescale_mean(prompt, NULL, SHAREGPT_MAX_PROMPT, n, prompt_mean);
    sharegpt_draw(output_mean, SHAREGPT_MAX_TOTAL - SHAREGPT_MIN_LEN, &g, output, n);
    int *cap = xcalloc(n ? n : 1, sizeof(*cap)); /* owned here */
    for (size_t i = 0; i < n; i++) {
        cap[i] = SHAREGPT_MAX_TOTAL - prompt[i];
        if (output[i] > cap[i])
            output[i] = cap[i];
    }
    rescale_mean(output, cap, 0, n, output_mean);
    free(cap);
}

/* A lengths_vary row's per-request lengths, one set per replica's requests. */
static void row_draw_lengths(struct validation_row *r)
{
    if (!r->lengths_vary)
        return;
    size_t n = (size_t)(r->prompts / r->replicas);
    r->prompt_lens = xcalloc(n, sizeof(*r->prompt_lens));
    r->output_lens = xcalloc(n, sizeof(*r->output_lens));
    r->n_lens = n;
    validation_sharegpt_lengths(r->prompt_tokens, r->output_tokens, hash64(r->id, strlen(r->id), 0),
                                r->prompt_lens, r->output_lens, n);
}

int validation_load(struct validation_set *s, const char *path, char *err, size_t errlen)
{
    struct yaml_file yf;
    int rc = yaml_file_load(&yf, path, VALIDATION_MAX_FILE, "a validation set", err, errlen);
    if (rc)
        return rc;
    yaml_document_t doc = yf.doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *rows = NULL;
    if (root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
             p++) {
            yaml_node_t *kn = yaml_document_get_node(&doc, p->key);
            if (kn && kn->type == YAML_SCALAR_NODE &&
                strcmp((const char *)kn->data.scalar.value, "rows") == 0)
                rows = yaml_document_get_node(&doc, p->value);
            else
                rc = yaml_node_fail(err, errlen, path, kn, NULL, "unknown key (expected `rows:`)");
            if (rc)
                goto out;
        }
    }
    if (!rows || rows->type != YAML_SEQUENCE_NODE) {
        rc = yaml_node_fail(err, errlen, path, rows ? rows : root, "rows",
                            "expected a list of rows");
        goto out;
    }
    size_t count = (size_t)(rows->data.sequence.items.top - rows->data.sequence.items.start);
    if (s->n + count > VALIDATION_MAX_ROWS) {
        snprintf(err, errlen, "%s: more than %d rows in all", path, VALIDATION_MAX_ROWS);
        rc = -EINVAL;
        goto out;
    }
    s->rows = xrealloc(s->rows, (s->n + count) * sizeof(*s->rows));
    size_t k = 0;
    for (yaml_node_item_t *it = rows->data.sequence.items.start; it < rows->data.sequence.items.top;
         it++, k++) {
        struct validation_row *r = &s->rows[s->n];
        rc = load_row(r, &doc, yaml_document_get_node(&doc, *it), path, err, errlen);
        if (rc)
            goto out;
        r->held_out = k % 2 == 1; /* the split rule written in the file */
        row_draw_lengths(r);
        s->n++;
    }
out:
    yaml_file_release(&yf);
    return rc;
}

static const char *or_null(const char *s)
{
    return s && *s && strcmp(s, "auto") != 0 ? s : NULL;
}

void validation_query(const struct validation_row *r, const char *calibration, struct plan_query *q)
{
    memset(q, 0, sizeof(*q));
    q->gpu = r->gpu;
    q->model = r->model;
    q->quantization = or_null(r->quantization);
    q->kv_cache_dtype = or_null(r->kv_cache_dtype);
    q->max_model_len = r->max_model_len;
    q->gpu_memory_utilization = r->gpu_memory_utilization;
    q->tensor_parallel_size = r->tensor_parallel_size;
    q->max_num_seqs = r->max_num_seqs;
    q->max_num_batched_tokens = r->max_num_batched_tokens;
    q->numa_nodes = r->numa_nodes;
    q->p2p = r->p2p < 0 ? ENGINE_P2P_CATALOG : r->p2p ? ENGINE_P2P_ON : ENGINE_P2P_OFF;
    /* Servers sharing the host: every replica is busy (the loader checks concurrency >= replicas;
     * one user through a balancer to idle servers is a row of one replica). */
    q->host_servers = r->replicas;
    q->prefix_caching = true;
    q->prompt_tokens = r->prompt_tokens;
    q->output_tokens = r->output_tokens;
    q->prompt_lens = r->prompt_lens;
    q->output_lens = r->output_lens;
    q->n_lens = r->n_lens;
    q->users = r->concurrency / r->replicas;
    q->requests = r->prompts / r->replicas;
    if (q->requests < q->users)
        q->requests = q->users;
    q->calibration = calibration;
}

int validation_predict(const struct validation_row *r, const char *calibration,
                       struct plan_prediction *out, char *err, size_t errlen)
{
    struct plan_query q;
    validation_query(r, calibration, &q);
    int rc = plan_predict(&q, out, err, errlen);
    if (!rc)
        out->output_tps *= r->replicas;
    return rc;
}

static double ratio(double pred, double pub)
{
    return isfinite(pred) && isfinite(pub) && pub > 0 ? pred / pub : NAN;
}

void validation_compare(const struct validation_row *r, const struct plan_prediction *p,
                        struct validation_ratio *out)
{
    memset(out, 0, sizeof(*out));
    bool sim = p->simulated;
    out->tps = sim ? ratio(p->output_tps, r->output_tps) : NAN;
    out->ttft_is_mean = isfinite(r->ttft_mean_ms);
    out->tpot_is_mean = isfinite(r->tpot_mean_ms);
    if (!sim) {
        out->ttft = out->tpot = NAN;
        return;
    }
    out->ttft = out->ttft_is_mean ? ratio(p->ttft.mean * 1e3, r->ttft_mean_ms)
                                  : ratio(p->ttft.p50 * 1e3, r->ttft_median_ms);
    out->tpot = out->tpot_is_mean ? ratio(p->tpot.mean * 1e3, r->tpot_mean_ms)
                                  : ratio(p->tpot.p50 * 1e3, r->tpot_median_ms);
}

double validation_median_abs_error(const double *ratios, size_t n)
{
    double *v = xcalloc(n ? n : 1, sizeof(*v)); /* owned here */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(ratios[i]))
            v[k++] = fabs(ratios[i] - 1.0) * 100.0;
    double m = median_in_place(v, k);
    free(v);
    return m;
}
