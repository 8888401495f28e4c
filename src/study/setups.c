/* setups.c - a study's setups and workloads from its config (setups.h). */
#include "study/setups.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/servable.h"
#include "core/xalloc.h"

static const char *pick_str(const char *entry, const char *def, const char *fallback)
{
    return entry ? entry : def ? def : fallback;
}

static int pick_int(int entry, int def, int fallback)
{
    return entry ? entry : def ? def : fallback;
}

static double pick_num(double entry, double def, double fallback)
{
    return entry != 0 ? entry : def != 0 ? def : fallback;
}

/* Lower-case, and anything outside [a-z0-9.-] becomes '-'. */
static void sanitize(char *s)
{
    for (; *s; s++) {
        *s = (char)tolower((unsigned char)*s);
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-')
            *s = '-';
    }
}

static void setup_fill(struct study_setup *st, const struct config *c, const struct setup_cfg *e,
                       size_t index)
{
    const struct setup_cfg *d = &c->study.defaults;
    st->model = xstrdup(pick_str(e->model, d->model, c->model.name));
    const char *q = pick_str(e->quantization, d->quantization, c->model.quantization);
    st->quantization = q && strcmp(q, "none") != 0 ? xstrdup(q) : NULL;
    st->kv_cache_dtype = xstrdup(pick_str(e->kv_cache_dtype, d->kv_cache_dtype, "auto"));
    st->max_model_len = pick_int(e->max_model_len, d->max_model_len, 0);
    st->gpu_memory_utilization =
        pick_num(e->gpu_memory_utilization, d->gpu_memory_utilization, 0.9);
    st->tensor_parallel_size =
        pick_int(e->tensor_parallel_size, d->tensor_parallel_size, c->model.tensor_parallel_size);
    st->max_num_seqs = pick_int(e->max_num_seqs, d->max_num_seqs, 0);
    st->enable_prefix_caching = e->enable_prefix_caching >= 0   ? e->enable_prefix_caching
                                : d->enable_prefix_caching >= 0 ? d->enable_prefix_caching
                                                                : c->model.enable_prefix_caching;
    const struct str_list *x = e->extra_args.n ? &e->extra_args : &d->extra_args;
    st->extra_args = x->v;
    st->n_extra_args = x->n;
    const char *base = strrchr(st->model, '/') ? strrchr(st->model, '/') + 1 : st->model;
    char ctx[24] = "default";
    if (st->max_model_len % 1024 == 0 && st->max_model_len)
        snprintf(ctx, sizeof(ctx), "%dk", st->max_model_len / 1024);
    else if (st->max_model_len)
        snprintf(ctx, sizeof(ctx), "%d", st->max_model_len);
    const char *label = e->name ? e->name : base;
    if (e->name)
        st->id = xasprintf("s%02zu-%s", index + 1, label);
    else
        st->id = xasprintf("s%02zu-%s-%s-kv%s-%s-g%.2f%s", index + 1, label,
                           st->quantization ? st->quantization : "native", st->kv_cache_dtype, ctx,
                           st->gpu_memory_utilization, st->tensor_parallel_size > 1 ? "-tp" : "");
    if (st->tensor_parallel_size > 1 && !e->name) {
        char *id = xasprintf("%s%d", st->id, st->tensor_parallel_size);
        free(st->id);
        st->id = id;
    }
    sanitize(st->id);
}

static size_t pick_dim(size_t *k, size_t n)
{
    if (!n)
        return 0;
    size_t i = *k % n;
    *k /= n;
    return i;
}

static void grid_entry(const struct setup_grid *g, size_t k, struct setup_cfg *e)
{
    memset(e, 0, sizeof(*e));
    e->enable_prefix_caching = -1;
    /* Mixed radix, last dimension first so that it varies fastest. */
    size_t i;
    if (g->max_num_seqs.n)
        e->max_num_seqs = g->max_num_seqs.v[pick_dim(&k, g->max_num_seqs.n)];
    if (g->tensor_parallel_size.n)
        e->tensor_parallel_size =
            g->tensor_parallel_size.v[pick_dim(&k, g->tensor_parallel_size.n)];
    if (g->gpu_memory_utilization.n)
        e->gpu_memory_utilization =
            g->gpu_memory_utilization.v[pick_dim(&k, g->gpu_memory_utilization.n)];
    if (g->max_model_len.n)
        e->max_model_len = g->max_model_len.v[pick_dim(&k, g->max_model_len.n)];
    if (g->kv_cache_dtype.n)
        e->kv_cache_dtype = g->kv_cache_dtype.v[pick_dim(&k, g->kv_cache_dtype.n)];
    if (g->quantization.n) {
        i = pick_dim(&k, g->quantization.n);
        e->quantization = g->quantization.v[i];
    }
    if (g->model.n)
        e->model = g->model.v[pick_dim(&k, g->model.n)];
}

void study_setups_expand(const struct config *c, struct study_setup **out, size_t *n)
{
    const struct study_cfg *s = &c->study;
    size_t total = study_cfg_n_setups(s);
    size_t ng = s->grid_given ? total - s->n_list : 0;
    struct study_setup *arr = xcalloc(total, sizeof(*arr));
    for (size_t k = 0; k < total; k++) {
        struct setup_cfg e;
        if (k < ng)
            grid_entry(&s->grid, k, &e);
        else if (s->n_list)
            e = s->list[k - ng];
        else
            memset(&e, 0, sizeof(e)), e.enable_prefix_caching = -1;
        setup_fill(&arr[k], c, &e, k);
    }
    *out = arr;
    *n = total;
}

void study_setups_free(struct study_setup *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i].id);
        free(s[i].model);
        free(s[i].quantization);
        free(s[i].kv_cache_dtype);
    }
    free(s);
}

void study_workloads_resolve(const struct config *c, struct study_workload **out, size_t *n)
{
    const struct study_cfg *s = &c->study;
    size_t count = s->n_workloads ? s->n_workloads : 1;
    struct study_workload *w = xcalloc(count, sizeof(*w));
    for (size_t i = 0; i < count; i++) {
        const struct workload_cfg *wc = s->n_workloads ? &s->workloads[i] : NULL;
        w[i].name = xstrdup(wc ? wc->name : "default");
        w[i].window_fill = wc ? wc->window_fill : NAN;
        /* Users are people unless the workload says streams (docs/STUDY.md "Populations"). */
        w[i].sessions = !(wc && wc->population && strcmp(wc->population, "streams") == 0);
        w[i].slo_profile = wc ? wc->slo_profile : NULL;
        w[i].path = study_workload_path(c->path, wc);
    }
    *out = w;
    *n = count;
}

void study_workloads_free(struct study_workload *w, size_t n)
{
    for (size_t i = 0; w && i < n; i++) {
        free(w[i].name);
        free(w[i].path);
    }
    free(w);
}

int study_setups_check(const struct config *c, char *err, size_t errlen)
{
    struct catalog *cat = NULL;
    char cerr[256];
    if (catalog_load(&cat, c->study.catalog, cerr, sizeof(cerr)))
        return 0;
    struct study_setup *s = NULL;
    size_t n = 0;
    study_setups_expand(c, &s, &n);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        struct servable sv;
        rc = servable_check(cat, s[i].model, s[i].quantization, c->study.gpu,
                            s[i].gpu_memory_utilization, s[i].tensor_parallel_size, &sv);
        if (rc)
            snprintf(err, errlen, "setup %s (model %s, quantization %s): %s", s[i].id, s[i].model,
                     s[i].quantization ? s[i].quantization : "none", sv.why);
    }
    study_setups_free(s, n);
    catalog_free(cat);
    return rc;
}
