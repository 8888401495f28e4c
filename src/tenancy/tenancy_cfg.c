/*
 * tenancy_cfg.c - the tenancy file of `testbench plan --tenancy` (docs/CONFIG.md, "Tenancy
 * files"): read through config/yaml_file.h, every error with file:line:column and the key.
 */
#include "tenancy/tenancy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml_file.h"

#define TENANCY_MAX_FILE (1024 * 1024)

struct tparse {
    yaml_document_t *doc;
    const char *file;
    char *err;
    size_t errlen;
};

static int fail(struct tparse *p, const yaml_node_t *n, const char *key, const char *msg)
{
    snprintf(p->err, p->errlen, "%s:%zu:%zu: %s%s%s", p->file, n ? n->start_mark.line + 1 : 0,
             n ? n->start_mark.column + 1 : 0, key ? key : "", key ? ": " : "", msg);
    return -EINVAL;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A plain null (null, ~ or nothing), as YAML spells it. */
static bool objective_is_null(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0 ||
           strcmp(s, "~") == 0;
}

static int get_str(struct tparse *p, yaml_node_t *v, const char *key, char **out)
{
    const char *s = scalar(v);
    if (!s || !*s)
        return fail(p, v, key, "expected a non-empty string");
    free(*out);
    *out = xstrdup(s);
    return 0;
}

static int get_num(struct tparse *p, yaml_node_t *v, const char *key, double lo, double hi,
                   double *out)
{
    const char *s = scalar(v);
    char *end = NULL;
    errno = 0;
    double x = s ? strtod(s, &end) : NAN;
    if (!s || errno || end == s || *end || !(x >= lo && x <= hi)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "expected a number in [%g, %g]", lo, hi);
        return fail(p, v, key, msg);
    }
    *out = x;
    return 0;
}

static int get_int(struct tparse *p, yaml_node_t *v, const char *key, long lo, long hi, int *out)
{
    const char *s = scalar(v);
    char *end = NULL;
    errno = 0;
    long x = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || x < lo || x > hi) {
        char msg[96];
        snprintf(msg, sizeof(msg), "expected an integer in [%ld, %ld]", lo, hi);
        return fail(p, v, key, msg);
    }
    *out = (int)x;
    return 0;
}

static int parse_slo(struct tparse *p, yaml_node_t *map, struct slo_cfg *slo)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(p, map, "slo", "expected a mapping");
    /* A profile first (the default one is already there), then the keys that replace its
     * values, whatever their order in the file. */
    for (yaml_node_pair_t *kv = map->data.mapping.pairs.start; kv < map->data.mapping.pairs.top;
         kv++) {
        yaml_node_t *kn = yaml_document_get_node(p->doc, kv->key);
        yaml_node_t *vn = yaml_document_get_node(p->doc, kv->value);
        const char *k = scalar(kn);
        if (!k || strcmp(k, "profile") != 0)
            continue;
        const struct slo_profile *prof = slo_profile_find(scalar(vn));
        if (!prof) {
            char msg[160];
            snprintf(msg, sizeof(msg), "unknown profile; allowed: %s", slo_profile_names());
            return fail(p, vn, k, msg);
        }
        slo_from_profile(slo, prof);
    }
    for (yaml_node_pair_t *kv = map->data.mapping.pairs.start; kv < map->data.mapping.pairs.top;
         kv++) {
        yaml_node_t *kn = yaml_document_get_node(p->doc, kv->key);
        yaml_node_t *vn = yaml_document_get_node(p->doc, kv->value);
        const char *k = scalar(kn);
        if (k && strcmp(k, "profile") == 0)
            continue;
        double *dst = !k                             ? NULL
                      : strcmp(k, "ttft_ms") == 0    ? &slo->ttft_ms
                      : strcmp(k, "itl_ms") == 0     ? &slo->itl_ms
                      : strcmp(k, "tpot_ms") == 0    ? &slo->tpot_ms
                      : strcmp(k, "e2e_ms") == 0     ? &slo->e2e_ms
                      : strcmp(k, "percentile") == 0 ? &slo->percentile
                                                     : NULL;
        if (!dst)
            return fail(p, kn, k ? k : "slo",
                        "unknown key (profile, ttft_ms, itl_ms, tpot_ms, e2e_ms, percentile)");
        /* null: no such objective (as in a run's slo), so a tenant can be judged on nothing */
        if (dst != &slo->percentile && objective_is_null(vn)) {
            *dst = NAN;
            continue;
        }
        int rc = get_num(p, vn, k, dst == &slo->percentile ? 1 : 0.001,
                         dst == &slo->percentile ? 100 : 1e9, dst);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_tenant(struct tparse *p, yaml_node_t *map, struct tenancy_tenant *t)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(p, map, "tenants", "expected a mapping per tenant");
    slo_from_profile(&t->slo, slo_profile_default()); /* every entry point's default */
    int rc = 0;
    for (yaml_node_pair_t *kv = map->data.mapping.pairs.start;
         kv < map->data.mapping.pairs.top && !rc; kv++) {
        yaml_node_t *kn = yaml_document_get_node(p->doc, kv->key);
        yaml_node_t *vn = yaml_document_get_node(p->doc, kv->value);
        const char *k = scalar(kn);
        if (!k)
            rc = fail(p, kn, "tenants", "expected a key");
        else if (strcmp(k, "name") == 0)
            rc = get_str(p, vn, k, &t->name);
        else if (strcmp(k, "model") == 0)
            rc = get_str(p, vn, k, &t->model);
        else if (strcmp(k, "adapter") == 0)
            rc = get_str(p, vn, k, &t->adapter);
        else if (strcmp(k, "quantization") == 0)
            rc = get_str(p, vn, k, &t->quantization);
        else if (strcmp(k, "max_model_len") == 0)
            rc = get_int(p, vn, k, 16, 10000000, &t->max_model_len);
        else if (strcmp(k, "users") == 0)
            rc = get_int(p, vn, k, 1, 100000, &t->users);
        else if (strcmp(k, "rate") == 0)
            rc = get_num(p, vn, k, 1e-6, 1e6, &t->rate);
        else if (strcmp(k, "prompt_tokens") == 0)
            rc = get_int(p, vn, k, 1, 10000000, &t->prompt_tokens);
        else if (strcmp(k, "output_tokens") == 0)
            rc = get_int(p, vn, k, 1, 1000000, &t->output_tokens);
        else if (strcmp(k, "requests") == 0)
            rc = get_int(p, vn, k, 1, 1000000, &t->requests);
        else if (strcmp(k, "slo") == 0)
            rc = parse_slo(p, vn, &t->slo);
        else
            rc = fail(p, kn, k,
                      "unknown key (name, model, adapter, quantization, max_model_len, users, "
                      "rate, prompt_tokens, output_tokens, requests, slo)");
    }
    if (rc)
        return rc;
    if (!t->name || !t->model)
        return fail(p, map, "tenants", "a tenant needs a name and a model");
    if ((t->users > 0) == (t->rate > 0))
        return fail(p, map, t->name, "give either users (closed loop) or rate (requests/s)");
    if (t->prompt_tokens <= 0 || t->output_tokens <= 0)
        return fail(p, map, t->name, "prompt_tokens and output_tokens are required");
    if (t->requests <= 0)
        t->requests = t->users > 0 ? (t->users * 4 > 32 ? t->users * 4 : 32) : 100;
    if (t->slo.percentile <= 0)
        t->slo.percentile = 95;
    return 0;
}

static int parse_list(struct tparse *p, yaml_node_t *v, const char *key, struct tenancy_strategy *s,
                      bool numbers)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(p, v, key, "expected a list, one value per tenant");
    s->n_values = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(p->doc, *it);
        if (s->n_values == TENANCY_MAX_TENANTS)
            return fail(p, item, key, "too many values");
        int rc = numbers ? get_num(p, item, key, 0.01, 1.0, &s->fractions[s->n_values])
                         : get_str(p, item, key, &s->profiles[s->n_values]);
        if (rc)
            return rc;
        s->n_values++;
    }
    return 0;
}

static int parse_strategy(struct tparse *p, yaml_node_t *map, struct tenancy_strategy *s,
                          size_t n_tenants)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(p, map, "strategies", "expected a mapping per strategy");
    int rc = 0;
    char *kind = NULL;
    yaml_node_t *kind_node = map, *list_node = NULL;
    for (yaml_node_pair_t *kv = map->data.mapping.pairs.start;
         kv < map->data.mapping.pairs.top && !rc; kv++) {
        yaml_node_t *kn = yaml_document_get_node(p->doc, kv->key);
        yaml_node_t *vn = yaml_document_get_node(p->doc, kv->value);
        const char *k = scalar(kn);
        if (!k) {
            rc = fail(p, kn, "strategies", "expected a key");
        } else if (strcmp(k, "name") == 0) {
            rc = get_str(p, vn, k, &s->name);
        } else if (strcmp(k, "kind") == 0) {
            kind_node = vn;
            rc = get_str(p, vn, k, &kind);
        } else if (strcmp(k, "gpu_memory_utilization") == 0) {
            rc = get_num(p, vn, k, 0.01, 1.0, &s->gpu_memory_utilization);
        } else if (strcmp(k, "fractions") == 0) {
            list_node = vn;
            rc = parse_list(p, vn, k, s, true);
        } else if (strcmp(k, "profiles") == 0) {
            list_node = vn;
            rc = parse_list(p, vn, k, s, false);
        } else {
            rc = fail(p, kn, k,
                      "unknown key (name, kind, gpu_memory_utilization, fractions, profiles)");
        }
    }
    if (!rc && !kind)
        rc = fail(p, map, "strategies", "a strategy needs kind: shared, partitioned or mig");
    if (!rc) {
        if (strcmp(kind, "shared") == 0)
            s->kind = TENANCY_SHARED;
        else if (strcmp(kind, "partitioned") == 0)
            s->kind = TENANCY_PARTITIONED;
        else if (strcmp(kind, "mig") == 0)
            s->kind = TENANCY_MIG;
        else
            rc = fail(p, kind_node, "kind", "expected shared, partitioned or mig");
    }
    if (!rc && s->kind != TENANCY_SHARED && s->n_values != n_tenants) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s needs one %s per tenant (%zu tenants, %zu given)", kind,
                 s->kind == TENANCY_MIG ? "profile" : "fraction", n_tenants, s->n_values);
        rc = fail(p, list_node ? list_node : map, s->kind == TENANCY_MIG ? "profiles" : "fractions",
                  msg);
    }
    if (!rc && s->kind == TENANCY_PARTITIONED && s->gpu_memory_utilization > 0)
        rc = fail(p, map, "gpu_memory_utilization",
                  "a partitioned strategy sets one fraction per tenant in 'fractions'");
    if (!rc && !s->name)
        s->name = xstrdup(kind);
    free(kind);
    return rc;
}

static int parse_root(struct tparse *p, yaml_node_t *root, struct tenancy_cfg *c)
{
    if (!root || root->type != YAML_MAPPING_NODE)
        return fail(p, root, NULL, "expected a mapping with gpu, tenants and strategies");
    yaml_node_t *strategies = NULL;
    int rc = 0;
    for (yaml_node_pair_t *kv = root->data.mapping.pairs.start;
         kv < root->data.mapping.pairs.top && !rc; kv++) {
        yaml_node_t *kn = yaml_document_get_node(p->doc, kv->key);
        yaml_node_t *vn = yaml_document_get_node(p->doc, kv->value);
        const char *k = scalar(kn);
        if (!k) {
            rc = fail(p, kn, NULL, "expected a key");
        } else if (strcmp(k, "gpu") == 0) {
            rc = get_str(p, vn, k, &c->gpu);
        } else if (strcmp(k, "catalog") == 0) {
            rc = get_str(p, vn, k, &c->catalog_dir);
        } else if (strcmp(k, "seed") == 0) {
            int seed = 0;
            rc = get_int(p, vn, k, 0, 2147483647L, &seed);
            c->seed = (uint64_t)seed;
        } else if (strcmp(k, "tenants") == 0) {
            if (vn->type != YAML_SEQUENCE_NODE)
                rc = fail(p, vn, k, "expected a list of tenants");
            for (yaml_node_item_t *it =
                     vn->type == YAML_SEQUENCE_NODE ? vn->data.sequence.items.start : NULL;
                 it && it < vn->data.sequence.items.top && !rc; it++) {
                yaml_node_t *item = yaml_document_get_node(p->doc, *it);
                if (c->n_tenants == TENANCY_MAX_TENANTS)
                    rc = fail(p, item, k, "too many tenants (at most 8)");
                else
                    rc = parse_tenant(p, item, &c->tenants[c->n_tenants++]);
            }
        } else if (strcmp(k, "strategies") == 0) {
            strategies = vn; /* after the tenants: each list is one value per tenant */
        } else {
            rc = fail(p, kn, k, "unknown key (gpu, catalog, seed, tenants, strategies)");
        }
    }
    if (rc)
        return rc;
    if (!c->gpu)
        return fail(p, root, "gpu", "required");
    if (c->n_tenants == 0)
        return fail(p, root, "tenants", "at least one tenant is required");
    for (size_t i = 0; i < c->n_tenants; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->tenants[i].name, c->tenants[j].name) == 0)
                return fail(p, root, "tenants", "two tenants have the same name");
    if (!strategies || strategies->type != YAML_SEQUENCE_NODE)
        return fail(p, strategies ? strategies : root, "strategies", "expected a list");
    for (yaml_node_item_t *it = strategies->data.sequence.items.start;
         it < strategies->data.sequence.items.top && !rc; it++) {
        yaml_node_t *item = yaml_document_get_node(p->doc, *it);
        if (c->n_strategies == TENANCY_MAX_STRATEGIES)
            rc = fail(p, item, "strategies", "too many strategies (at most 16)");
        else
            rc = parse_strategy(p, item, &c->strategies[c->n_strategies++], c->n_tenants);
    }
    if (!rc && c->n_strategies == 0)
        rc = fail(p, strategies, "strategies", "at least one strategy is required");
    return rc;
}

int tenancy_cfg_load(struct tenancy_cfg *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->path = xstrdup(path);
    c->seed = 42;
    struct yaml_file yf;
    int rc = yaml_file_load(&yf, path, TENANCY_MAX_FILE, "a tenancy file", err, errlen);
    if (rc)
        return rc;
    struct tparse p = {.doc = &yf.doc, .file = path, .err = err, .errlen = errlen};
    rc = parse_root(&p, yaml_document_get_root_node(&yf.doc), c);
    yaml_file_release(&yf);
    return rc;
}

void tenancy_cfg_release(struct tenancy_cfg *c)
{
    free(c->path);
    free(c->gpu);
    free(c->catalog_dir);
    for (size_t i = 0; i < TENANCY_MAX_TENANTS; i++) {
        free(c->tenants[i].name);
        free(c->tenants[i].model);
        free(c->tenants[i].adapter);
        free(c->tenants[i].quantization);
    }
    for (size_t i = 0; i < TENANCY_MAX_STRATEGIES; i++) {
        free(c->strategies[i].name);
        for (size_t k = 0; k < TENANCY_MAX_TENANTS; k++)
            free(c->strategies[i].profiles[k]);
    }
    memset(c, 0, sizeof(*c));
}

double tenancy_jain(const double *x, size_t n)
{
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += x[i] * x[i];
    }
    return n > 0 && s2 > 0 ? s * s / ((double)n * s2) : NAN;
}
