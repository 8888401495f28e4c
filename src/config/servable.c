/* servable.c - checkpoint x quantization against vLLM's loading rules (servable.h). */
#include "config/servable.h"

#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define GIB (1024.0 * 1024.0 * 1024.0)
/* What vLLM holds besides the weights while it loads them (CUDA context, allocator). */
#define LOAD_OVERHEAD_GIB 1.0

bool servable_is_native(const char *q)
{
    return !q || !*q || strcasecmp(q, "none") == 0 || strcasecmp(q, "auto") == 0 ||
           strcasecmp(q, "native") == 0 || strcasecmp(q, "default") == 0;
}

/* The catalog's checkpoints of model in quantization q, as "a, b" (or "none in the catalog"). */
static void checkpoints_of(const struct catalog *cat, const struct model_spec *md,
                           const struct quant_spec *q, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cat->n_checkpoints && n < len; i++) {
        const struct checkpoint_spec *k = &cat->checkpoints[i];
        if (catalog_find_model(cat, k->model) == md &&
            catalog_find_quant(cat, k->quantization) == q)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", k->name);
    }
    if (!n)
        snprintf(buf, len, "none in the catalog: add one to catalog/quantized_checkpoints.yaml");
}

/* A pre-quantized checkpoint: its own format, or nothing. */
static int check_checkpoint(const struct catalog *cat, const struct checkpoint_spec *ck,
                            const struct quant_spec *want, const char *asked, struct servable *out)
{
    const struct quant_spec *has = catalog_find_quant(cat, ck->quantization);
    snprintf(out->quantization, sizeof(out->quantization), "%s", has->name);
    if (!asked)
        return 0; /* vLLM reads the format from config.json */
    if (want == has) {
        snprintf(out->vllm_flag, sizeof(out->vllm_flag), "%s", ck->vllm_quantization);
        return 0;
    }
    char others[400];
    if (want)
        checkpoints_of(cat, catalog_find_model(cat, ck->model), want, others, sizeof(others));
    else
        snprintf(others, sizeof(others), "the catalog has no quantization called %s", asked);
    snprintf(out->why, sizeof(out->why),
             "%s is a %s checkpoint (config.json: %s) and vLLM refuses --quantization %s for it: "
             "use quantization none or %s with it, or a checkpoint in that format (%s)",
             ck->name, has->name, ck->vllm_quantization, asked, has->name, others);
    return -EINVAL;
}

int servable_check(const struct catalog *cat, const char *model, const char *quantization,
                   const char *gpu, double util, int tp, struct servable *out)
{
    memset(out, 0, sizeof(*out));
    const char *asked = servable_is_native(quantization) ? NULL : quantization;
    const struct model_spec *md = catalog_find_model(cat, model);
    if (!md) { /* not judged: passed on as given */
        snprintf(out->vllm_flag, sizeof(out->vllm_flag), "%s", asked ? asked : "");
        snprintf(out->quantization, sizeof(out->quantization), "%s", asked ? asked : "");
        return 0;
    }
    out->known = true;
    const struct quant_spec *want = asked ? catalog_find_quant(cat, asked) : NULL;
    const struct checkpoint_spec *ck = catalog_find_checkpoint(cat, model);
    if (ck)
        return check_checkpoint(cat, ck, want, asked, out);
    if (!asked)
        return 0;
    if (!want) { /* a format the catalog does not know: vLLM decides */
        snprintf(out->vllm_flag, sizeof(out->vllm_flag), "%s", asked);
        snprintf(out->quantization, sizeof(out->quantization), "%s", asked);
        return 0;
    }
    snprintf(out->quantization, sizeof(out->quantization), "%s", want->name);
    /* The checkpoint's own dtype (bf16, or gpt-oss's native mxfp4): nothing to convert. */
    if (strcasecmp(want->name, md->dtype) == 0 ||
        (md->native_quantization && catalog_find_quant(cat, md->native_quantization) == want))
        return 0;
    char others[400];
    checkpoints_of(cat, md, want, others, sizeof(others));
    if (strcmp(want->name, "fp8") != 0) {
        snprintf(out->why, sizeof(out->why),
                 "%s is a %s checkpoint and vLLM cannot quantize it to %s at load: name a "
                 "pre-quantized %s checkpoint as the model (%s)",
                 md->name, md->dtype, want->name, want->name, others);
        return -EINVAL;
    }
    /* Online FP8: the 16-bit weights are loaded whole, then quantized. */
    const struct gpu_spec *g = catalog_find_gpu(cat, gpu ? gpu : "rtx-pro-6000");
    double have =
        g ? g->memory_mib * 1024.0 * 1024.0 * (util > 0 ? util : 0.9) / GIB - LOAD_OVERHEAD_GIB
          : 1e30;
    double need = md->params_b * 1e9 * 2.0 / (tp > 0 ? tp : 1) / GIB;
    if (need > have) {
        snprintf(out->why, sizeof(out->why),
                 "vLLM quantizes %s to fp8 only after loading its 16-bit weights, %.0f GiB per "
                 "GPU, more than the %.0f GiB it may use here: name a pre-quantized fp8 "
                 "checkpoint as the model (%s)",
                 md->name, need, have, others);
        return -EINVAL;
    }
    snprintf(out->vllm_flag, sizeof(out->vllm_flag), "fp8");
    return 0;
}

int servable_config_check(const struct config *c, char *err, size_t errlen)
{
    if (!c->model.name)
        return 0;
    struct catalog *cat = NULL;
    char cerr[256];
    if (catalog_load(&cat, c->server.sim.catalog, cerr, sizeof(cerr)))
        return 0; /* the simulator says why, when it starts */
    struct servable sv;
    int rc = servable_check(cat, c->model.name, c->model.quantization, c->server.sim.gpu,
                            c->server.sim.gpu_memory_utilization,
                            c->server.sim.tensor_parallel_size, &sv);
    if (rc)
        snprintf(err, errlen, "model.quantization: %s", sv.why);
    catalog_free(cat);
    return rc;
}

void servable_weights_name(const struct catalog *cat, const char *model, const char *quantization,
                           char *buf, size_t len)
{
    if (!servable_is_native(quantization)) {
        const struct quant_spec *q = cat ? catalog_find_quant(cat, quantization) : NULL;
        snprintf(buf, len, "%s", q ? q->name : quantization);
        return;
    }
    const struct checkpoint_spec *ck = cat ? catalog_find_checkpoint(cat, model) : NULL;
    const struct model_spec *md = cat ? catalog_find_model(cat, model) : NULL;
    const char *dtype = ck                              ? ck->quantization
                        : md && md->native_quantization ? md->native_quantization
                        : md                            ? md->dtype
                                                        : "checkpoint's dtype";
    snprintf(buf, len, "%s (checkpoint)", dtype);
}
