/*
 * catalog_cmd.c - `testbench catalog [gpus|models|quantizations] [--catalog DIR] [--json]`:
 * what the catalog holds, by the names plan, sim, study and calibrate take (--gpu, --model,
 * --quantization), with the figures the cost model uses and each entry's aliases, so a user
 * can pick a name without reading the YAML. Text: one table per kind; --json: the same as
 * arrays of objects.
 */
#include "config/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/exitcode.h"
#include "core/log.h"

static const char catalog_usage[] =
    "usage: testbench catalog [gpus|models|quantizations] [--catalog DIR] [--json]\n"
    "  Lists the GPUs, models and quantizations plan, sim, study and calibrate know, by the\n"
    "  names --gpu, --model and --quantization take (aliases work too). --catalog DIR adds a\n"
    "  folder of your own entries, as those commands do.\n";

enum which { W_GPUS = 1, W_MODELS = 2, W_QUANTS = 4, W_ALL = 7 };

/* "a, b, c" of an entry's aliases into buf. */
static const char *aliases_text(char *const *a, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", a[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

static json_t *aliases_json(char *const *a, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(a[i]));
    return arr;
}

/* The MIG profiles of a whole GPU, as the names --gpu takes ("rtx-pro-6000:mig-1g.24gb"). */
static void mig_text(const struct gpu_spec *g, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < g->n_mig && used < len; i++) {
        int w =
            snprintf(buf + used, len - used, "%s%s:mig-%s", i ? ", " : "", g->name, g->mig[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static void gpus_print(const struct catalog *c)
{
    printf("GPUs (--gpu NAME)\n");
    printf("  %-22s %7s %7s %6s %6s %6s %5s  %s\n", "name", "GiB", "GB/s", "BF16", "FP8", "FP4",
           "W", "what it is; aliases");
    for (size_t i = 0; i < c->n_gpus; i++) {
        const struct gpu_spec *g = &c->gpus[i];
        if (g->mig_parent)
            continue;                               /* a MIG slice: listed under its GPU */
        char al[512], fp8[16] = "-", fp4[16] = "-"; /* "-": no such tensor format */
        if (g->fp8_tflops > 0)
            snprintf(fp8, sizeof(fp8), "%.0f", g->fp8_tflops);
        if (g->fp4_tflops > 0)
            snprintf(fp4, sizeof(fp4), "%.0f", g->fp4_tflops);
        printf("  %-22s %7.1f %7.0f %6.0f %6s %6s %5.0f  %s", g->name, g->memory_mib / 1024.0,
               g->bandwidth_gbs, g->fp16_tflops, fp8, fp4, g->tdp_w,
               g->display_name ? g->display_name : "");
        if (g->n_aliases)
            printf("; %s", aliases_text(g->aliases, g->n_aliases, al, sizeof(al)));
        printf("\n");
        if (g->n_mig) {
            char mig[512];
            mig_text(g, mig, sizeof(mig));
            printf("  %-22s MIG slices: %s\n", "", mig);
        }
    }
    printf("  (GiB of memory, GB/s of bandwidth, dense tensor TFLOPS, board power)\n");
}

static void models_print(const struct catalog *c)
{
    printf("Models (--model NAME; the name without its org/ prefix or -Instruct works too)\n");
    printf("  %-44s %10s %6s %8s %9s %-8s  %s\n", "name", "params", "layers", "KV heads", "max len",
           "weights", "aliases");
    for (size_t i = 0; i < c->n_models; i++) {
        const struct model_spec *m = &c->models[i];
        char al[512], params[32];
        if (m->experts)
            snprintf(params, sizeof(params), "%.0fB/%.1fB", m->params_b, m->active_params_b);
        else
            snprintf(params, sizeof(params), "%.1fB", m->params_b);
        printf("  %-44s %10s %6d %8d %9d %-8s  %s\n", m->name, params, m->layers, m->kv_heads,
               m->max_model_len, m->native_quantization ? m->native_quantization : m->dtype,
               aliases_text(m->aliases, m->n_aliases, al, sizeof(al)));
    }
    printf("  (params: total, and active per token for a mixture of experts; weights: the "
           "checkpoint's dtype)\n");
}

static void quants_print(const struct catalog *c)
{
    printf("Quantizations (--quantization NAME; none = the checkpoint's own dtype)\n");
    printf("  %-14s %12s %-8s %-12s %-8s  %s\n", "name", "bytes/weight", "compute", "weight-only",
           "KV", "aliases");
    for (size_t i = 0; i < c->n_quants; i++) {
        const struct quant_spec *q = &c->quants[i];
        char al[512];
        printf("  %-14s %12.4g %-8s %-12s %-8s  %s\n", q->name, q->bytes_per_weight, q->compute,
               q->weight_only ? "yes" : "no", q->kv_cache_dtype ? q->kv_cache_dtype : "model",
               aliases_text(q->aliases, q->n_aliases, al, sizeof(al)));
    }
}

static json_t *catalog_json(const struct catalog *c, int which)
{
    json_t *o = json_object();
    if (which & W_GPUS) {
        json_t *a = json_array();
        for (size_t i = 0; i < c->n_gpus; i++) {
            const struct gpu_spec *g = &c->gpus[i];
            json_t *e = json_object();
            json_object_set_new(e, "name", json_string(g->name));
            json_object_set_new(e, "display_name",
                                g->display_name ? json_string(g->display_name) : json_null());
            json_object_set_new(e, "aliases", aliases_json(g->aliases, g->n_aliases));
            json_object_set_new(e, "mig_parent",
                                g->mig_parent ? json_string(g->mig_parent) : json_null());
            json_object_set_new(e, "memory_mib", json_real(g->memory_mib));
            json_object_set_new(e, "bandwidth_gbs", json_real(g->bandwidth_gbs));
            json_object_set_new(e, "fp16_tflops", json_real(g->fp16_tflops));
            json_object_set_new(e, "fp8_tflops", json_real(g->fp8_tflops));
            json_object_set_new(e, "fp4_tflops", json_real(g->fp4_tflops));
            json_object_set_new(e, "tdp_w", json_real(g->tdp_w));
            json_object_set_new(e, "source", json_string(g->source ? g->source : ""));
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "gpus", a);
    }
    if (which & W_MODELS) {
        json_t *a = json_array();
        for (size_t i = 0; i < c->n_models; i++) {
            const struct model_spec *m = &c->models[i];
            json_t *e = json_object();
            json_object_set_new(e, "name", json_string(m->name));
            json_object_set_new(e, "aliases", aliases_json(m->aliases, m->n_aliases));
            json_object_set_new(e, "params_b", json_real(m->params_b));
            json_object_set_new(e, "active_params_b", json_real(m->active_params_b));
            json_object_set_new(e, "layers", json_integer(m->layers));
            json_object_set_new(e, "kv_heads", json_integer(m->kv_heads));
            json_object_set_new(e, "max_model_len", json_integer(m->max_model_len));
            json_object_set_new(e, "dtype", json_string(m->dtype ? m->dtype : ""));
            json_object_set_new(e, "native_quantization",
                                m->native_quantization ? json_string(m->native_quantization)
                                                       : json_null());
            json_object_set_new(e, "source", json_string(m->source ? m->source : ""));
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "models", a);
    }
    if (which & W_QUANTS) {
        json_t *a = json_array();
        for (size_t i = 0; i < c->n_quants; i++) {
            const struct quant_spec *q = &c->quants[i];
            json_t *e = json_object();
            json_object_set_new(e, "name", json_string(q->name));
            json_object_set_new(e, "aliases", aliases_json(q->aliases, q->n_aliases));
            json_object_set_new(e, "bytes_per_weight", json_real(q->bytes_per_weight));
            json_object_set_new(e, "compute", json_string(q->compute ? q->compute : ""));
            json_object_set_new(e, "weight_only", json_boolean(q->weight_only));
            json_object_set_new(e, "kv_cache_dtype",
                                q->kv_cache_dtype ? json_string(q->kv_cache_dtype) : json_null());
            json_object_set_new(e, "source", json_string(q->source ? q->source : ""));
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "quantizations", a);
    }
    return o;
}

int catalog_main(int argc, char **argv)
{
    int which = 0;
    bool json = false;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "gpus") == 0 || strcmp(a, "gpu") == 0)
            which |= W_GPUS;
        else if (strcmp(a, "models") == 0 || strcmp(a, "model") == 0)
            which |= W_MODELS;
        else if (strcmp(a, "quantizations") == 0 || strcmp(a, "quantization") == 0)
            which |= W_QUANTS;
        else if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--catalog") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strncmp(a, "--catalog=", 10) == 0)
            dir = a + 10;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(catalog_usage, stdout);
            return TB_EXIT_OK;
        } else {
            log_error("catalog: unknown argument '%s' (gpus, models, quantizations, --catalog "
                      "DIR, --json)",
                      a);
            fputs(catalog_usage, stderr);
            return TB_EXIT_USAGE;
        }
    }
    if (!which)
        which = W_ALL;
    struct catalog *c = NULL;
    char err[512];
    if (catalog_load(&c, dir, err, sizeof(err))) {
        log_error("catalog: %s", err);
        return TB_EXIT_USAGE;
    }
    if (json) {
        json_t *o = catalog_json(c, which);
        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        fputs("\n", stdout);
        json_decref(o);
    } else {
        if (which & W_GPUS)
            gpus_print(c);
        if (which & W_MODELS) {
            if (which & W_GPUS)
                printf("\n");
            models_print(c);
        }
        if (which & W_QUANTS) {
            if (which & (W_GPUS | W_MODELS))
                printf("\n");
            quants_print(c);
        }
    }
    catalog_free(c);
    return TB_EXIT_OK;
}
