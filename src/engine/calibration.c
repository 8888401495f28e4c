/*
 * calibration.c - the cost model's efficiencies: defaults, and a YAML profile read with
 * file:line errors and written back by `testbench calibrate`. Format: docs/CALIBRATION.md.
 */
#include "engine/calibration.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config/yaml_file.h"

#define CAL_MAX_FILE (64 * 1024)
/* What a fit's own figures can be: `testbench calibrate` reads at most 512 points (its
 * CAL_MAX_POINTS), and a median error beyond 1000 % is no fit. */
#define CAL_MAX_FIT_POINTS 512
#define CAL_MAX_FIT_ERROR_PCT 1000.0

static const char *const param_names[CAL_N_PARAMS] = {
    "gemm",
    "gemm_int4",
    "gemm_fp4_upcast",
    "moe",
    "attention",
    "weight_bandwidth",
    "kv_bandwidth",
    "step_s",
    "request_s",
    "sequence_s",
    "allreduce_nvlink_s",
    "allreduce_hop_pcie_s",
    "allreduce_hop_host_s",
    "host_contention",
    "moe_layer_s",
};

/* Efficiencies are fractions of a peak; the fixed costs are seconds; host_contention is a
 * fraction of the CPU-side costs per other server. A fit that leaves these ranges is describing
 * something else (a wrong GPU, a throttled card). */
static const double param_lo[CAL_N_PARAMS] = {0.02, 0.02, 0.02, 0.05, 0.02, 0.05, 0.05, 0.0,
                                              0.0,  0.0,  0.0,  0.0,  0.0,  0.0,  0.0};
static const double param_hi[CAL_N_PARAMS] = {1.0, 1.0,  1.0,  1.5,  1.0,  1.0, 1.0, 0.05,
                                              2.0, 1e-3, 1e-4, 1e-4, 1e-3, 1.0, 1e-3};

bool calibration_param_is_overhead(enum calibration_param p)
{
    return p == CAL_STEP_S || p == CAL_REQUEST_S || p == CAL_SEQ_S || p == CAL_AR_NVLINK_S ||
           p == CAL_HOP_PCIE_S || p == CAL_HOP_HOST_S || p == CAL_HOST_CONTENTION ||
           p == CAL_MOE_LAYER_S;
}

bool calibration_param_fitted_by_default(enum calibration_param p)
{
    return !calibration_param_is_overhead(p) || p == CAL_REQUEST_S;
}

const char *calibration_param_name(enum calibration_param p)
{
    return p < CAL_N_PARAMS ? param_names[p] : "?";
}

void calibration_param_range(enum calibration_param p, double *lo, double *hi)
{
    *lo = param_lo[p];
    *hi = param_hi[p];
}

void cost_calibration_default(struct cost_calibration *c)
{
    memset(c, 0, sizeof(*c));
    /* docs/ENGINE.md "Step duration" gives the reason and source for each. gemm_int4 and
     * kv_bandwidth were fitted on the fitting half of bench/validation with moe held at its
     * prior (`build/bench_validation --calibration moe=0.70 --fit gemm_int4,kv_bandwidth`);
     * gemm_fp4_upcast on the gpt-oss rows of the same half (`--fit gemm_fp4_upcast`, 0.332),
     * then sequence_s on the extended fitting half (`--fit sequence_s`, 55.5 us; a joint fit
     * with gemm_fp4_upcast had the larger median error on that half);
     * the others are priors the validation set cannot move. */
    c->p[CAL_GEMM] = 0.60;
    c->p[CAL_GEMM_INT4] = 0.52;
    c->p[CAL_GEMM_FP4W] = 0.33;
    c->p[CAL_MOE] = 0.70;
    c->p[CAL_ATTN] = 0.60;
    c->p[CAL_WEIGHT_BW] = 0.80;
    c->p[CAL_KV_BW] = 0.49;
    c->p[CAL_STEP_S] = 1.5e-3;
    c->p[CAL_REQUEST_S] = 0.015;
    c->attn_context_knee = 40960;
    c->p[CAL_SEQ_S] = 5.55e-5;
    /* Tensor-parallel topology and host contention (docs/ENGINE.md, "Multi-GPU", "Several
     * servers on one host"). allreduce_nvlink_s: vLLM's custom all-reduce on H100, 9-10 us at
     * TP 2/4/8 (sgl-project/sglang pull request 2904); fitted on the fitting half's NVLink rows
     * that are not 1,000-request bursts it comes out 20.7 us with their median error 5.0 -> 5.3 %,
     * so the measured value stays. allreduce_hop_pcie_s: NCCL's measured 24 us on eight RTX PRO
     * 6000 / 14 ring steps (the one fitting row over PCIe would put it at 27.7 us: its kernel
     * class and per-layer floor, not the link). allreduce_hop_host_s: fitted on the one fitting
     * row without peer-to-peer (`bench_validation --fit allreduce_hop_host_s --fit-rows
     * rtx5090x4-tp4`, 172.6 us). host_contention: fitted on the fitting rows with several
     * servers on one host (5.7e-16: none shows). */
    c->p[CAL_AR_NVLINK_S] = 10e-6;
    c->p[CAL_HOP_PCIE_S] = 1.7e-6;
    c->p[CAL_HOP_HOST_S] = 172.6e-6;
    c->p[CAL_HOST_CONTENTION] = 0;
    /* The MoE layer's kernel floor: fitted on the fitting half's rows of 1 to 8 users
     * (`bench_validation --fit moe_layer_s --fit-rows ...`, docs/ENGINE.md "Kernel floor":
     * 12 rows, median error 13.3 -> 8.2 %). */
    c->p[CAL_MOE_LAYER_S] = 166e-6;
}

static int node_double(const char *file, const yaml_node_t *n, const char *key, double lo,
                       double hi, double *out, char *err, size_t errlen)
{
    if (n->type != YAML_SCALAR_NODE)
        return yaml_node_fail(err, errlen, file, n, key, "expected a number");
    const char *s = (const char *)n->data.scalar.value;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return yaml_node_fail(err, errlen, file, n, key, "expected a number");
    if (v < lo || v > hi) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%g is outside [%g, %g]", v, lo, hi);
        return yaml_node_fail(err, errlen, file, n, key, msg);
    }
    *out = v;
    return 0;
}

static int node_string(const char *file, const yaml_node_t *n, const char *key, char *out,
                       size_t len, char *err, size_t errlen)
{
    if (n->type != YAML_SCALAR_NODE)
        return yaml_node_fail(err, errlen, file, n, key, "expected a string");
    snprintf(out, len, "%s", (const char *)n->data.scalar.value);
    return 0;
}

/* A key given twice in one mapping: the second would silently win (gemm: 0.6, gemm: 0.1). */
static int duplicate_key(yaml_document_t *doc, yaml_node_t *map, yaml_node_pair_t *at,
                         const char *file, char *err, size_t errlen)
{
    yaml_node_t *kn = yaml_document_get_node(doc, at->key);
    if (!kn || kn->type != YAML_SCALAR_NODE)
        return 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < at; p++) {
        yaml_node_t *prev = yaml_document_get_node(doc, p->key);
        if (prev && prev->type == YAML_SCALAR_NODE &&
            strcmp((const char *)prev->data.scalar.value, (const char *)kn->data.scalar.value) ==
                0) {
            char msg[96];
            snprintf(msg, sizeof(msg), "duplicate key (first given at line %zu)",
                     prev->start_mark.line + 1);
            return yaml_node_fail(err, errlen, file, kn, (const char *)kn->data.scalar.value, msg);
        }
    }
    return 0;
}

/* A whole number in [lo, hi]. */
static int node_int(const char *file, const yaml_node_t *n, const char *key, int lo, int hi,
                    int *out, char *err, size_t errlen)
{
    double v = 0;
    int rc = node_double(file, n, key, lo, hi, &v, err, errlen);
    if (!rc && v != floor(v))
        rc = yaml_node_fail(err, errlen, file, n, key, "expected a whole number");
    if (!rc)
        *out = (int)v;
    return rc;
}

/* One mapping of `key: number` pairs under `efficiency:` or `overhead:`. */
static int load_section(struct cost_calibration *c, yaml_document_t *doc, yaml_node_t *map,
                        const char *file, bool overhead, char *err, size_t errlen)
{
    if (map->type != YAML_MAPPING_NODE)
        return yaml_node_fail(err, errlen, file, map, NULL, "expected a mapping");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const char *k =
            kn && kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "";
        int rc = duplicate_key(doc, map, p, file, err, errlen);
        if (rc)
            return rc;
        rc = -ENOENT;
        for (int i = 0; i < CAL_N_PARAMS; i++) {
            bool is_overhead = calibration_param_is_overhead((enum calibration_param)i);
            if (is_overhead == overhead && strcmp(k, param_names[i]) == 0)
                rc = node_double(file, vn, k, param_lo[i], param_hi[i], &c->p[i], err, errlen);
        }
        if (rc == -ENOENT && !overhead && strcmp(k, "attention_context_knee") == 0)
            rc = node_double(file, vn, k, 1024, 1e7, &c->attn_context_knee, err, errlen);
        if (rc == -ENOENT)
            return yaml_node_fail(err, errlen, file, kn, k, "unknown key");
        if (rc)
            return rc;
    }
    return 0;
}

static int load_fit(struct cost_calibration *c, yaml_document_t *doc, yaml_node_t *map,
                    const char *file, char *err, size_t errlen)
{
    if (map->type != YAML_MAPPING_NODE)
        return yaml_node_fail(err, errlen, file, map, "fit", "expected a mapping");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const char *k =
            kn && kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "";
        int rc = duplicate_key(doc, map, p, file, err, errlen);
        if (rc)
            return rc;
        if (strcmp(k, "points") == 0) {
            rc = node_int(file, vn, k, 0, CAL_MAX_FIT_POINTS, &c->points, err, errlen);
        } else if (strcmp(k, "parameters") == 0) {
            rc = node_int(file, vn, k, 0, CAL_N_PARAMS, &c->parameters, err, errlen);
        } else if (strcmp(k, "error_before_pct") == 0) {
            rc =
                node_double(file, vn, k, 0, CAL_MAX_FIT_ERROR_PCT, &c->err_before_pct, err, errlen);
        } else if (strcmp(k, "error_after_pct") == 0) {
            rc = node_double(file, vn, k, 0, CAL_MAX_FIT_ERROR_PCT, &c->err_after_pct, err, errlen);
        } else {
            rc = yaml_node_fail(err, errlen, file, kn, k, "unknown key");
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int load_doc(struct cost_calibration *c, yaml_document_t *doc, const char *file, char *err,
                    size_t errlen)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        return yaml_node_fail(err, errlen, file, root, NULL,
                              "expected a calibration profile (a mapping)");
    bool kind_seen = false;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const char *k =
            kn && kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "";
        int rc = duplicate_key(doc, root, p, file, err, errlen);
        if (rc)
            return rc;
        if (strcmp(k, "kind") == 0) {
            char kind[32];
            rc = node_string(file, vn, k, kind, sizeof(kind), err, errlen);
            if (!rc && strcmp(kind, "calibration") != 0)
                rc = yaml_node_fail(err, errlen, file, vn, k, "expected `calibration`");
            kind_seen = true;
        } else if (strcmp(k, "gpu") == 0) {
            rc = node_string(file, vn, k, c->gpu, sizeof(c->gpu), err, errlen);
        } else if (strcmp(k, "engine") == 0) {
            rc = node_string(file, vn, k, c->engine, sizeof(c->engine), err, errlen);
        } else if (strcmp(k, "engine_version") == 0) {
            rc =
                node_string(file, vn, k, c->engine_version, sizeof(c->engine_version), err, errlen);
        } else if (strcmp(k, "model") == 0) {
            rc = node_string(file, vn, k, c->model, sizeof(c->model), err, errlen);
        } else if (strcmp(k, "efficiency") == 0) {
            rc = load_section(c, doc, vn, file, false, err, errlen);
        } else if (strcmp(k, "overhead") == 0) {
            rc = load_section(c, doc, vn, file, true, err, errlen);
        } else if (strcmp(k, "fit") == 0) {
            rc = load_fit(c, doc, vn, file, err, errlen);
        } else {
            rc = yaml_node_fail(err, errlen, file, kn, k, "unknown key");
        }
        if (rc)
            return rc;
    }
    if (!kind_seen)
        return yaml_node_fail(err, errlen, file, root, NULL, "missing `kind: calibration`");
    return 0;
}

int cost_calibration_load(struct cost_calibration *c, const char *path, char *err, size_t errlen)
{
    struct yaml_file yf;
    int rc = yaml_file_load(&yf, path, CAL_MAX_FILE, "a calibration profile", err, errlen);
    if (rc)
        return rc;
    yaml_document_t doc = yf.doc;
    /* Parse into a copy so that a bad file leaves c as it was. */
    struct cost_calibration tmp = *c;
    rc = load_doc(&tmp, &doc, path, err, errlen);
    if (!rc)
        *c = tmp;
    yaml_file_release(&yf);
    return rc;
}

int cost_calibration_write(const struct cost_calibration *c, FILE *f)
{
    fprintf(f, "# testbench calibration profile (docs/CALIBRATION.md): the cost model's\n"
               "# efficiencies fitted to results measured on this GPU. Use it with\n"
               "# `testbench plan|sim|study --calibration FILE`.\n");
    fprintf(f, "kind: calibration\n");
    fprintf(f, "gpu: \"%s\"\n", c->gpu);
    fprintf(f, "engine: \"%s\"\n", c->engine);
    fprintf(f, "engine_version: \"%s\"\n", c->engine_version);
    fprintf(f, "model: \"%s\"\n", c->model);
    fprintf(f, "efficiency:\n");
    for (int i = 0; i < CAL_N_PARAMS; i++)
        if (!calibration_param_is_overhead((enum calibration_param)i))
            fprintf(f, "  %s: %.4f\n", param_names[i], c->p[i]);
    fprintf(f, "  attention_context_knee: %.0f\n", c->attn_context_knee);
    fprintf(f, "overhead:\n");
    for (int i = 0; i < CAL_N_PARAMS; i++)
        if (calibration_param_is_overhead((enum calibration_param)i))
            fprintf(f, "  %s: %.8g\n", param_names[i], c->p[i]);
    fprintf(f, "fit:\n");
    fprintf(f, "  points: %d\n", c->points);
    fprintf(f, "  parameters: %d\n", c->parameters);
    fprintf(f, "  error_before_pct: %.2f\n", c->err_before_pct);
    fprintf(f, "  error_after_pct: %.2f\n", c->err_after_pct);
    return ferror(f) ? -EIO : 0;
}

bool cost_calibration_fit_error_holds(const struct cost_calibration *c)
{
    return c->points > 0 && c->points >= c->parameters;
}

bool cost_calibration_other_gpu(const struct cost_calibration *c, const char *name,
                                const char *display_name)
{
    return c->gpu[0] && !(name && strcmp(c->gpu, name) == 0) &&
           !(display_name && strcmp(c->gpu, display_name) == 0);
}
