/*
 * catalog.c - loads the GPU / model / quantization catalog from YAML (libyaml's document
 * API: the files are small, a tree is simplest). Fields are table-driven: one
 * row per key with its type and offset, so a new field is one line. An entry whose name
 * matches an existing one starts from a copy of it, so a user file can override a single
 * field ("max_model_len: 8192") without repeating the rest. Finding an entry by a name the user
 * typed is catalog_find.c's.
 */
#include "config/catalog.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#define CATALOG_MAX_FILE (1024 * 1024) /* a catalog file larger than this is a mistake */

enum field_type { F_STR, F_DOUBLE, F_INT, F_BOOL, F_ALIASES, F_MIG };

struct field {
    const char *key;
    enum field_type type;
    size_t off;
};

#define GF(k, t)                                                                                   \
    {                                                                                              \
#k, t, offsetof(struct gpu_spec, k)                                                        \
    }
static const struct field gpu_fields[] = {
    GF(name, F_STR),
    GF(display_name, F_STR),
    GF(aliases, F_ALIASES),
    GF(memory_mib, F_DOUBLE),
    GF(bandwidth_gbs, F_DOUBLE),
    GF(fp16_tflops, F_DOUBLE),
    GF(fp8_tflops, F_DOUBLE),
    GF(fp4_tflops, F_DOUBLE),
    GF(int8_tops, F_DOUBLE),
    GF(tdp_w, F_DOUBLE),
    GF(p2p_bandwidth_gbs, F_DOUBLE),
    GF(compute_capability, F_DOUBLE),
    GF(nvlink, F_BOOL),
    GF(p2p, F_BOOL),
    GF(host_bandwidth_gbs, F_DOUBLE),
    GF(numa_p2p_bandwidth_gbs, F_DOUBLE),
    GF(interconnect, F_STR),
    GF(source, F_STR),
    GF(mig, F_MIG),
    {NULL, F_STR, 0},
};

#define MF(k, t)                                                                                   \
    {                                                                                              \
#k, t, offsetof(struct model_spec, k)                                                      \
    }
static const struct field model_fields[] = {
    MF(name, F_STR),
    MF(aliases, F_ALIASES),
    MF(params_b, F_DOUBLE),
    MF(active_params_b, F_DOUBLE),
    MF(layers, F_INT),
    MF(hidden, F_INT),
    MF(heads, F_INT),
    MF(kv_heads, F_INT),
    MF(head_dim, F_INT),
    MF(intermediate, F_INT),
    MF(vocab, F_INT),
    MF(tie_word_embeddings, F_BOOL),
    MF(experts, F_INT),
    MF(experts_per_token, F_INT),
    MF(moe_intermediate, F_INT),
    MF(sliding_window, F_INT),
    MF(sliding_layers, F_INT),
    MF(dense_layers, F_INT),
    MF(dtype, F_STR),
    MF(native_quantization, F_STR),
    {"native_quantization_scope", F_STR, (size_t)-1}, /* "experts" or "all", handled below */
    MF(max_model_len, F_INT),
    MF(source, F_STR),
    {"hf_id", F_STR, offsetof(struct model_spec, name)},
    {NULL, F_STR, 0},
};

#define QF(k, t)                                                                                   \
    {                                                                                              \
#k, t, offsetof(struct quant_spec, k)                                                      \
    }
static const struct field quant_fields[] = {
    QF(name, F_STR),    QF(aliases, F_ALIASES),  QF(bytes_per_weight, F_DOUBLE),
    QF(compute, F_STR), QF(weight_only, F_BOOL), QF(kv_cache_dtype, F_STR),
    QF(source, F_STR),  {NULL, F_STR, 0},
};

enum kind { K_GPU, K_MODEL, K_QUANT };

/* F_ALIASES writes the count right after the array: keep the two fields adjacent. */
_Static_assert(offsetof(struct gpu_spec, n_aliases) ==
                   offsetof(struct gpu_spec, aliases) + sizeof(char *) * CATALOG_MAX_ALIASES,
               "gpu aliases layout");
_Static_assert(offsetof(struct model_spec, n_aliases) ==
                   offsetof(struct model_spec, aliases) + sizeof(char *) * CATALOG_MAX_ALIASES,
               "model aliases layout");
_Static_assert(offsetof(struct quant_spec, n_aliases) ==
                   offsetof(struct quant_spec, aliases) + sizeof(char *) * CATALOG_MAX_ALIASES,
               "quant aliases layout");

/* ---- small string helpers ------------------------------------------------------------- */

static void aliases_free(char **a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(a[i]);
}

static void gpu_release(struct gpu_spec *g)
{
    free(g->name);
    free(g->display_name);
    aliases_free(g->aliases, g->n_aliases);
    free(g->interconnect);
    free(g->source);
    free(g->mig_parent);
    memset(g, 0, sizeof(*g));
}

static void model_release(struct model_spec *m)
{
    free(m->name);
    aliases_free(m->aliases, m->n_aliases);
    free(m->dtype);
    free(m->native_quantization);
    free(m->source);
    memset(m, 0, sizeof(*m));
}

static void quant_release(struct quant_spec *q)
{
    free(q->name);
    aliases_free(q->aliases, q->n_aliases);
    free(q->compute);
    free(q->kv_cache_dtype);
    free(q->source);
    memset(q, 0, sizeof(*q));
}

static void dup_aliases(char **dst, char *const *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = xstrdup(src[i]);
}

static void gpu_copy(struct gpu_spec *d, const struct gpu_spec *s)
{
    *d = *s;
    d->name = xstrdup(s->name);
    d->display_name = xstrdup(s->display_name);
    dup_aliases(d->aliases, s->aliases, s->n_aliases);
    d->interconnect = xstrdup(s->interconnect);
    d->source = xstrdup(s->source);
    d->mig_parent = s->mig_parent ? xstrdup(s->mig_parent) : NULL;
}

static void model_copy(struct model_spec *d, const struct model_spec *s)
{
    *d = *s;
    d->name = xstrdup(s->name);
    dup_aliases(d->aliases, s->aliases, s->n_aliases);
    d->dtype = xstrdup(s->dtype);
    d->native_quantization = xstrdup(s->native_quantization);
    d->source = xstrdup(s->source);
}

static void quant_copy(struct quant_spec *d, const struct quant_spec *s)
{
    *d = *s;
    d->name = xstrdup(s->name);
    dup_aliases(d->aliases, s->aliases, s->n_aliases);
    d->compute = xstrdup(s->compute);
    d->kv_cache_dtype = s->kv_cache_dtype ? xstrdup(s->kv_cache_dtype) : NULL;
    d->source = xstrdup(s->source);
}

/* ---- YAML ----------------------------------------------------------------------------- */

static const char *scalar_of(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int fail_at(char *err, size_t errlen, const char *file, yaml_node_t *n, const char *msg,
                   const char *key)
{
    snprintf(err, errlen, "%s:%zu:%zu: %s%s%s", file, n ? n->start_mark.line + 1 : 0,
             n ? n->start_mark.column + 1 : 0, key ? key : "", key ? ": " : "", msg);
    return -EINVAL;
}

/* "1/4", "0.25" or "full" into (0, 1]. */
static int parse_fraction(const char *s, double *out)
{
    if (!s)
        return -EINVAL;
    if (strcasecmp(s, "full") == 0) {
        *out = 1.0;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    double a = strtod(s, &end);
    if (errno || end == s)
        return -EINVAL;
    if (*end == '/') {
        const char *d = end + 1;
        double b = strtod(d, &end);
        if (errno || end == d || b <= 0)
            return -EINVAL;
        a /= b;
    }
    if (*end || !(a > 0 && a <= 1.0))
        return -EINVAL;
    *out = a;
    return 0;
}

/* `mig:` a list of {profile, memory, sms, instances} mappings (fractions as "1/4"). */
static int set_mig(struct gpu_spec *g, yaml_document_t *doc, yaml_node_t *v, const char *file,
                   char *err, size_t errlen)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail_at(err, errlen, file, v, "expected a list of MIG profiles", "mig");
    g->n_mig = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        if (!item || item->type != YAML_MAPPING_NODE)
            return fail_at(err, errlen, file, item ? item : v,
                           "expected {profile, memory, sms, instances}", "mig");
        if (g->n_mig == CATALOG_MAX_MIG)
            return fail_at(err, errlen, file, item, "too many MIG profiles", "mig");
        struct mig_profile *p = &g->mig[g->n_mig];
        memset(p, 0, sizeof(*p));
        for (yaml_node_pair_t *kv = item->data.mapping.pairs.start;
             kv < item->data.mapping.pairs.top; kv++) {
            yaml_node_t *kn = yaml_document_get_node(doc, kv->key);
            yaml_node_t *vn = yaml_document_get_node(doc, kv->value);
            const char *k = scalar_of(kn), *s = scalar_of(vn);
            int bad = !k || !s;
            if (bad) {
                /* reported below */
            } else if (strcmp(k, "profile") == 0) {
                bad = strlen(s) >= sizeof(p->name) || strchr(s, ':') != NULL;
                if (!bad)
                    snprintf(p->name, sizeof(p->name), "%s", s);
            } else if (strcmp(k, "memory") == 0) {
                bad = parse_fraction(s, &p->memory_fraction) != 0;
            } else if (strcmp(k, "sms") == 0) {
                bad = parse_fraction(s, &p->sm_fraction) != 0;
            } else if (strcmp(k, "instances") == 0) {
                char *end = NULL;
                errno = 0;
                long x = strtol(s, &end, 10);
                bad = errno || end == s || *end || x < 1 || x > 64;
                p->max_instances = (int)x;
            } else {
                return fail_at(err, errlen, file, kn,
                               "unknown key (profile, memory, sms, instances)", "mig");
            }
            if (bad)
                return fail_at(err, errlen, file, vn ? vn : item,
                               "bad value (profile: a name; memory, sms: a fraction such as 1/4; "
                               "instances: 1-64)",
                               k ? k : "mig");
        }
        if (!p->name[0] || p->memory_fraction <= 0 || p->sm_fraction <= 0 || p->max_instances < 1)
            return fail_at(err, errlen, file, item,
                           "a MIG profile needs profile, memory, sms and "
                           "instances",
                           "mig");
        g->n_mig++;
    }
    return 0;
}

static int set_field(void *obj, const struct field *f, yaml_document_t *doc, yaml_node_t *v,
                     const char *file, char *err, size_t errlen)
{
    char *p = (char *)obj + f->off;
    const char *s = scalar_of(v);
    char *end = NULL;
    switch (f->type) {
    case F_STR:
        if (!s)
            return fail_at(err, errlen, file, v, "expected a string", f->key);
        free(*(char **)p);
        *(char **)p = xstrdup(s);
        return 0;
    case F_DOUBLE:
        if (!s)
            return fail_at(err, errlen, file, v, "expected a number", f->key);
        errno = 0;
        *(double *)p = strtod(s, &end);
        if (errno || end == s || *end || *(double *)p < 0)
            return fail_at(err, errlen, file, v, "expected a non-negative number", f->key);
        return 0;
    case F_INT: {
        if (!s)
            return fail_at(err, errlen, file, v, "expected an integer", f->key);
        errno = 0;
        long x = strtol(s, &end, 10);
        if (errno || end == s || *end || x < 0 || x > 1000000000L)
            return fail_at(err, errlen, file, v, "expected a non-negative integer", f->key);
        *(int *)p = (int)x;
        return 0;
    }
    case F_BOOL:
        if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0))
            *(bool *)p = true;
        else if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0))
            *(bool *)p = false;
        else
            return fail_at(err, errlen, file, v, "expected true or false", f->key);
        return 0;
    case F_ALIASES: {
        char **a = (char **)p;
        size_t *n = (size_t *)(p + sizeof(char *) * CATALOG_MAX_ALIASES);
        if (v->type != YAML_SEQUENCE_NODE)
            return fail_at(err, errlen, file, v, "expected a list of names", f->key);
        aliases_free(a, *n);
        *n = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *item = yaml_document_get_node(doc, *it);
            const char *is = scalar_of(item);
            if (!is)
                return fail_at(err, errlen, file, item, "expected a name", f->key);
            if (*n == CATALOG_MAX_ALIASES)
                return fail_at(err, errlen, file, item, "too many aliases", f->key);
            a[(*n)++] = xstrdup(is);
        }
        return 0;
    }
    case F_MIG:
        return set_mig(obj, doc, v, file, err, errlen);
    }
    return -EINVAL;
}

static const char *mapping_get(yaml_document_t *doc, yaml_node_t *map, const char *key,
                               yaml_node_t **vnode)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = scalar_of(yaml_document_get_node(doc, p->key));
        if (k && strcmp(k, key) == 0) {
            yaml_node_t *v = yaml_document_get_node(doc, p->value);
            if (vnode)
                *vnode = v;
            return scalar_of(v);
        }
    }
    return NULL;
}

static void *grow(void *arr, size_t n, size_t size)
{
    return xreallocarray(arr, n + 1, size);
}

/* Applies one mapping of the given kind to the catalog (adding or overriding an entry). */
static int apply_entry(struct catalog *c, enum kind kind, yaml_document_t *doc, yaml_node_t *map,
                       const char *file, char *err, size_t errlen)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail_at(err, errlen, file, map, "expected a mapping", NULL);
    yaml_node_t *name_node = NULL;
    const char *name = mapping_get(doc, map, "name", &name_node);
    if (!name && kind == K_MODEL)
        name = mapping_get(doc, map, "hf_id", &name_node);
    if (!name)
        return fail_at(err, errlen, file, map, "entry has no name", NULL);

    const struct field *fields = kind == K_GPU     ? gpu_fields
                                 : kind == K_MODEL ? model_fields
                                                   : quant_fields;
    union {
        struct gpu_spec g;
        struct model_spec m;
        struct quant_spec q;
    } tmp;
    memset(&tmp, 0, sizeof(tmp));
    void *obj = &tmp;
    size_t existing = (size_t)-1;
    /* Overrides match the canonical name exactly (case-insensitive), never an alias. */
    if (kind == K_GPU) {
        for (size_t i = 0; i < c->n_gpus; i++)
            if (strcasecmp(c->gpus[i].name, name) == 0)
                existing = i;
        if (existing != (size_t)-1)
            gpu_copy(&tmp.g, &c->gpus[existing]);
        else
            tmp.g.p2p = true; /* PCIe P2P unless the entry says the driver disables it */
    } else if (kind == K_MODEL) {
        for (size_t i = 0; i < c->n_models; i++)
            if (strcasecmp(c->models[i].name, name) == 0)
                existing = i;
        if (existing != (size_t)-1)
            model_copy(&tmp.m, &c->models[existing]);
    } else {
        for (size_t i = 0; i < c->n_quants; i++)
            if (strcasecmp(c->quants[i].name, name) == 0)
                existing = i;
        if (existing != (size_t)-1)
            quant_copy(&tmp.q, &c->quants[existing]);
    }

    int rc = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const char *key = scalar_of(kn);
        if (!key) {
            rc = fail_at(err, errlen, file, kn, "expected a key", NULL);
            goto out;
        }
        if (strcmp(key, "kind") == 0)
            continue;
        const struct field *f = fields;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        if (!f->key) {
            rc = fail_at(err, errlen, file, kn, "unknown key", key);
            goto out;
        }
        if (f->off == (size_t)-1) { /* native_quantization_scope */
            const char *s = scalar_of(vn);
            if (!s || (strcmp(s, "experts") != 0 && strcmp(s, "all") != 0)) {
                rc = fail_at(err, errlen, file, vn, "expected experts or all", key);
                goto out;
            }
            tmp.m.native_experts_only = strcmp(s, "experts") == 0;
            continue;
        }
        rc = set_field(obj, f, doc, vn, file, err, errlen);
        if (rc)
            goto out;
    }

    /* Required fields and derived defaults. */
    if (kind == K_GPU) {
        struct gpu_spec *g = &tmp.g;
        if (g->memory_mib <= 0 || g->bandwidth_gbs <= 0 || g->fp16_tflops <= 0) {
            rc = fail_at(err, errlen, file, map,
                         "a GPU needs memory_mib, bandwidth_gbs and fp16_tflops > 0", name);
            goto out;
        }
        if (!g->display_name)
            g->display_name = xstrdup(g->name);
        if (!g->source)
            g->source = xstrdup(file);
        if (g->p2p_bandwidth_gbs <= 0)
            g->p2p_bandwidth_gbs = 25;
        /* Staged through host memory, a transfer crosses PCIe twice (docs/ENGINE.md). */
        if (g->host_bandwidth_gbs <= 0)
            g->host_bandwidth_gbs = g->p2p_bandwidth_gbs / 2;
        if (g->numa_p2p_bandwidth_gbs <= 0)
            g->numa_p2p_bandwidth_gbs = g->p2p_bandwidth_gbs * CATALOG_NUMA_P2P_RATIO;
    } else if (kind == K_MODEL) {
        struct model_spec *m = &tmp.m;
        if (m->layers <= 0 || m->hidden <= 0 || m->heads <= 0 || m->vocab <= 0 ||
            m->params_b <= 0) {
            rc = fail_at(err, errlen, file, map,
                         "a model needs layers, hidden, heads, vocab and params_b > 0", name);
            goto out;
        }
        if (m->kv_heads <= 0)
            m->kv_heads = m->heads;
        if (m->head_dim <= 0)
            m->head_dim = m->hidden / m->heads;
        if (m->intermediate <= 0)
            m->intermediate = 4 * m->hidden;
        if (m->max_model_len <= 0)
            m->max_model_len = 8192;
        if (m->sliding_layers > m->layers || (m->sliding_layers > 0 && m->sliding_window <= 0)) {
            rc = fail_at(err, errlen, file, map,
                         "sliding_layers needs sliding_window and at most 'layers'", name);
            goto out;
        }
        if (m->sliding_layers == m->layers) {
            rc = fail_at(err, errlen, file, map, "at least one full-attention layer needed", name);
            goto out;
        }
        if (m->dense_layers < 0 || m->dense_layers >= m->layers ||
            (m->dense_layers > 0 && m->experts <= 0)) {
            rc = fail_at(err, errlen, file, map,
                         "dense_layers needs experts and fewer than 'layers'", name);
            goto out;
        }
        if (m->experts > 0 && (m->experts_per_token <= 0 || m->moe_intermediate <= 0 ||
                               m->experts_per_token > m->experts)) {
            rc = fail_at(err, errlen, file, map,
                         "a MoE model needs experts_per_token (<= experts) and moe_intermediate",
                         name);
            goto out;
        }
        if (!m->dtype)
            m->dtype = xstrdup("bf16");
        if (!m->source)
            m->source = xstrdup(file);
    } else {
        struct quant_spec *q = &tmp.q;
        if (q->bytes_per_weight <= 0 || !q->compute ||
            (strcmp(q->compute, "fp16") != 0 && strcmp(q->compute, "fp8") != 0 &&
             strcmp(q->compute, "int8") != 0 && strcmp(q->compute, "fp4") != 0)) {
            rc = fail_at(err, errlen, file, map,
                         "a quantization needs bytes_per_weight > 0 and compute: fp16|fp8|int8|fp4",
                         name);
            goto out;
        }
        if (q->kv_cache_dtype && strcmp(q->kv_cache_dtype, "fp8") != 0 &&
            strcmp(q->kv_cache_dtype, "auto") != 0) {
            rc = fail_at(err, errlen, file, map, "kv_cache_dtype must be fp8 or auto", name);
            goto out;
        }
        if (!q->source)
            q->source = xstrdup(file);
    }

    if (kind == K_GPU) {
        if (existing != (size_t)-1) {
            gpu_release(&c->gpus[existing]);
            c->gpus[existing] = tmp.g;
        } else {
            c->gpus = grow(c->gpus, c->n_gpus, sizeof(*c->gpus));
            c->gpus[c->n_gpus++] = tmp.g;
        }
    } else if (kind == K_MODEL) {
        if (existing != (size_t)-1) {
            model_release(&c->models[existing]);
            c->models[existing] = tmp.m;
        } else {
            c->models = grow(c->models, c->n_models, sizeof(*c->models));
            c->models[c->n_models++] = tmp.m;
        }
    } else {
        if (existing != (size_t)-1) {
            quant_release(&c->quants[existing]);
            c->quants[existing] = tmp.q;
        } else {
            c->quants = grow(c->quants, c->n_quants, sizeof(*c->quants));
            c->quants[c->n_quants++] = tmp.q;
        }
    }
    return 0;
out:
    if (kind == K_GPU)
        gpu_release(&tmp.g);
    else if (kind == K_MODEL)
        model_release(&tmp.m);
    else
        quant_release(&tmp.q);
    return rc;
}

static int kind_from_string(const char *s, enum kind *k)
{
    if (!s)
        return -EINVAL;
    if (strcmp(s, "gpu") == 0)
        *k = K_GPU;
    else if (strcmp(s, "model") == 0)
        *k = K_MODEL;
    else if (strcmp(s, "quantization") == 0)
        *k = K_QUANT;
    else
        return -EINVAL;
    return 0;
}

static void checkpoint_release(struct checkpoint_spec *k)
{
    free(k->name);
    free(k->model);
    free(k->quantization);
    free(k->vllm_quantization);
    free(k->source);
    memset(k, 0, sizeof(*k));
}

/* One entry of a `checkpoints:` list: name, model, quantization, vllm_quantization, source.
 * Its model and quantization must be in the catalog already (the embedded files load models
 * and quantizations before checkpoints.yaml, which sorts after them by name). */
static int apply_checkpoint(struct catalog *c, yaml_document_t *doc, yaml_node_t *map,
                            const char *file, char *err, size_t errlen)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail_at(err, errlen, file, map, "expected a mapping", "checkpoints");
    static const char *const keys[] = {"name", "model", "quantization", "vllm_quantization",
                                       "source"};
    char *v[5] = {0};
    int rc = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top && !rc; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        const char *key = scalar_of(kn), *val = scalar_of(yaml_document_get_node(doc, p->value));
        size_t k = 0;
        while (key && k < 5 && strcmp(keys[k], key) != 0)
            k++;
        if (!key || k == 5)
            rc = fail_at(err, errlen, file, kn, "unknown key", key ? key : "checkpoints");
        else if (!val)
            rc = fail_at(err, errlen, file, kn, "expected a string", key);
        else if (!v[k])
            v[k] = xstrdup(val);
    }
    if (!rc && (!v[0] || !v[1] || !v[2] || !v[3]))
        rc = fail_at(err, errlen, file, map,
                     "a checkpoint needs name, model, quantization and vllm_quantization", NULL);
    else if (!rc && !catalog_find_model(c, v[1]))
        rc = fail_at(err, errlen, file, map, "unknown model", v[1]);
    else if (!rc && !catalog_find_quant(c, v[2]))
        rc = fail_at(err, errlen, file, map, "unknown quantization", v[2]);
    struct checkpoint_spec k = {v[0], v[1], v[2], v[3], v[4] ? v[4] : xstrdup(file)};
    if (rc) {
        checkpoint_release(&k);
        return rc;
    }
    for (size_t i = 0; i < c->n_checkpoints; i++) {
        if (strcasecmp(c->checkpoints[i].name, k.name) == 0) { /* an override */
            checkpoint_release(&c->checkpoints[i]);
            c->checkpoints[i] = k;
            return 0;
        }
    }
    c->checkpoints = grow(c->checkpoints, c->n_checkpoints, sizeof(*c->checkpoints));
    c->checkpoints[c->n_checkpoints++] = k;
    return 0;
}

/* Parses one file's text. 'kind' is a hint from the folder (-1: decide from `kind:` or
 * from a top-level `quantizations:` list). */
static int load_text(struct catalog *c, const char *text, size_t len, const char *file, int kind,
                     char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = 0;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: %s", file, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) /* empty file */
        goto out;
    if (root->type != YAML_MAPPING_NODE) {
        rc = fail_at(err, errlen, file, root, "expected a mapping", NULL);
        goto out;
    }
    yaml_node_t *list = NULL;
    mapping_get(&doc, root, "checkpoints", &list);
    if (list) {
        if (list->type != YAML_SEQUENCE_NODE) {
            rc = fail_at(err, errlen, file, list, "expected a list", "checkpoints");
            goto out;
        }
        for (yaml_node_item_t *it = list->data.sequence.items.start;
             it < list->data.sequence.items.top && !rc; it++)
            rc = apply_checkpoint(c, &doc, yaml_document_get_node(&doc, *it), file, err, errlen);
        goto out;
    }
    mapping_get(&doc, root, "quantizations", &list);
    if (list) {
        if (list->type != YAML_SEQUENCE_NODE) {
            rc = fail_at(err, errlen, file, list, "expected a list", "quantizations");
            goto out;
        }
        for (yaml_node_item_t *it = list->data.sequence.items.start;
             it < list->data.sequence.items.top && !rc; it++)
            rc =
                apply_entry(c, K_QUANT, &doc, yaml_document_get_node(&doc, *it), file, err, errlen);
        goto out;
    }
    enum kind k = K_MODEL;
    yaml_node_t *kn = NULL;
    const char *ks = mapping_get(&doc, root, "kind", &kn);
    if (ks) {
        if (kind_from_string(ks, &k)) {
            rc = fail_at(err, errlen, file, kn, "expected gpu, model or quantization", "kind");
            goto out;
        }
    } else if (kind >= 0) {
        k = (enum kind)kind;
    } else {
        rc = fail_at(err, errlen, file, root,
                     "cannot tell the entry's kind: add `kind: gpu|model|quantization` or put "
                     "it under gpus/ or models/",
                     NULL);
        goto out;
    }
    rc = apply_entry(c, k, &doc, root, file, err, errlen);
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

static int load_file(struct catalog *c, const char *path, int kind, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -ENOENT;
    }
    char *text = xmalloc(CATALOG_MAX_FILE + 1);
    size_t n = fread(text, 1, CATALOG_MAX_FILE + 1, f);
    int rc = 0;
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -EIO;
    } else if (n > CATALOG_MAX_FILE) {
        snprintf(err, errlen, "%s: larger than %d bytes", path, CATALOG_MAX_FILE);
        rc = -EINVAL;
    } else {
        rc = load_text(c, text, n, path, kind, err, errlen);
    }
    free(text);
    fclose(f);
    return rc;
}

static int has_yaml_ext(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads every *.yaml of a folder in name order (deterministic overrides). */
static int load_dir(struct catalog *c, const char *dir, int kind, bool must_exist, char *err,
                    size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (!must_exist && errno == ENOENT)
            return 0;
        snprintf(err, errlen, "catalog folder %s: %s", dir, strerror(errno));
        return -ENOENT;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !has_yaml_ext(de->d_name))
            continue;
        names = xreallocarray(names, n + 1, sizeof(*names));
        names[n++] = xasprintf("%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = load_file(c, names[i], kind, err, errlen);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

void catalog_free(struct catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_gpus; i++)
        gpu_release(&c->gpus[i]);
    for (size_t i = 0; i < c->n_models; i++)
        model_release(&c->models[i]);
    for (size_t i = 0; i < c->n_quants; i++)
        quant_release(&c->quants[i]);
    for (size_t i = 0; i < c->n_checkpoints; i++)
        checkpoint_release(&c->checkpoints[i]);
    free(c->checkpoints);
    free(c->gpus);
    free(c->models);
    free(c->quants);
    free(c);
}

/* Appends one entry per MIG profile of every whole GPU, "PARENT:mig-PROFILE": memory and
 * bandwidth scale by the profile's memory fraction (a memory slice brings its own memory
 * controllers and L2), tensor peaks by its SM fraction; power and links stay the board's
 * (NVML reports power per physical GPU). Rules and their limits: docs/TENANCY.md. */
static void add_mig_slices(struct catalog *c)
{
    size_t n_whole = c->n_gpus;
    for (size_t i = 0; i < n_whole; i++) {
        for (size_t k = 0; k < c->gpus[i].n_mig; k++) {
            const struct gpu_spec *p = &c->gpus[i]; /* re-read: grow() may move the array */
            const struct mig_profile *mp = &p->mig[k];
            struct gpu_spec g;
            memset(&g, 0, sizeof(g));
            g.name = xasprintf("%s:mig-%s", p->name, mp->name);
            g.display_name = xasprintf("%s, MIG %s", p->display_name, mp->name);
            g.memory_mib = p->memory_mib * mp->memory_fraction;
            g.bandwidth_gbs = p->bandwidth_gbs * mp->memory_fraction;
            g.fp16_tflops = p->fp16_tflops * mp->sm_fraction;
            g.fp8_tflops = p->fp8_tflops * mp->sm_fraction;
            g.fp4_tflops = p->fp4_tflops * mp->sm_fraction;
            g.int8_tops = p->int8_tops * mp->sm_fraction;
            g.tdp_w = p->tdp_w;
            g.p2p_bandwidth_gbs = p->p2p_bandwidth_gbs;
            g.compute_capability = p->compute_capability;
            g.nvlink = p->nvlink;
            g.p2p = p->p2p;
            g.host_bandwidth_gbs = p->host_bandwidth_gbs;
            g.numa_p2p_bandwidth_gbs = p->numa_p2p_bandwidth_gbs;
            g.interconnect = xstrdup(p->interconnect ? p->interconnect : "");
            g.source = xasprintf("%s; MIG profile %s: memory %.4g, SMs %.4g of the GPU, up to %d "
                                 "instances (NVIDIA MIG user guide, supported MIG profiles: "
                                 "https://docs.nvidia.com/datacenter/tesla/mig-user-guide/"
                                 "supported-mig-profiles.html)",
                                 p->source, mp->name, mp->memory_fraction, mp->sm_fraction,
                                 mp->max_instances);
            g.mig_parent = xstrdup(p->name);
            g.mig_slice = *mp;
            c->gpus = grow(c->gpus, c->n_gpus, sizeof(*c->gpus));
            c->gpus[c->n_gpus++] = g;
        }
    }
}

int catalog_load(struct catalog **out, const char *dir, char *err, size_t errlen)
{
    struct catalog *c = xcalloc(1, sizeof(*c));
    int rc = 0;
    for (const struct catalog_blob *b = catalog_blobs; b->path && !rc; b++) {
        int kind = strncmp(b->path, "gpus/", 5) == 0     ? K_GPU
                   : strncmp(b->path, "models/", 7) == 0 ? K_MODEL
                                                         : -1;
        char file[256];
        snprintf(file, sizeof(file), "catalog/%s", b->path);
        rc = load_text(c, b->text, strlen(b->text), file, kind, err, errlen);
    }
    if (!rc && dir && *dir) {
        char *sub = xasprintf("%s/gpus", dir);
        rc = load_dir(c, sub, K_GPU, false, err, errlen);
        free(sub);
        if (!rc) {
            sub = xasprintf("%s/models", dir);
            rc = load_dir(c, sub, K_MODEL, false, err, errlen);
            free(sub);
        }
        if (!rc)
            rc = load_dir(c, dir, -1, true, err, errlen);
    }
    if (rc) {
        catalog_free(c);
        return rc;
    }
    add_mig_slices(c);
    *out = c;
    return 0;
}
