/*
 * servable.h - can vLLM load this checkpoint with this --quantization? What the catalog knows
 * about checkpoints (catalog/quantized_checkpoints.yaml) against vLLM's rules:
 *   - a pre-quantized checkpoint carries its format in config.json and vLLM refuses a different
 *     --quantization;
 *   - vLLM cannot make AWQ, GPTQ, NVFP4, MXFP4 or INT8 weights from a 16-bit checkpoint at
 *     load;
 *   - it can quantize a 16-bit checkpoint to FP8 at load, after loading all of its 16-bit
 *     weights, which must fit the GPU first.
 * A model the catalog does not know is not judged. docs/ENGINE.md, "Checkpoints".
 */
#ifndef TB_SERVABLE_H
#define TB_SERVABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/catalog.h"
#include "core/xalloc.h"

struct servable {
    bool known;            /* the catalog knows the model (or the checkpoint) */
    char quantization[32]; /* the weights served, catalog name ("" = the checkpoint's 16-bit) */
    char vllm_flag[48];    /* what to pass vLLM as --quantization ("" = nothing) */
    char why[640];         /* why vLLM would refuse it, with the lever */
};

/* quantization: NULL, "none", "auto", "native" or "default" = none asked. gpu: catalog name;
 * util: gpu_memory_utilization (0 = 0.9); tp: tensor_parallel_size (0 = 1). 0, or -EINVAL when
 * vLLM would refuse the pair (out->why says why and what to use instead). */
MUST_USE int servable_check(const struct catalog *cat, const char *model, const char *quantization,
                            const char *gpu, double util, int tp, struct servable *out);
/* A run config's model.name and model.quantization (with server.sim's GPU, memory share and
 * tensor parallelism): 0, or -EINVAL with "model.quantization: why" in err. A config that asks
 * the server for its model (name null) is not judged. */
struct config;
MUST_USE int servable_config_check(const struct config *c, char *err, size_t errlen);
/* The weights as a person names them, one name per dtype: "bf16 (checkpoint)" for a 16-bit
 * checkpoint served as it is, "awq (checkpoint)" for a pre-quantized one, "fp8" for a format
 * asked for; the catalog may be NULL (then "checkpoint's dtype"). */
void servable_weights_name(const struct catalog *cat, const char *model, const char *quantization,
                           char *buf, size_t len);
/* True for the words that mean "the checkpoint's own weights". */
bool servable_is_native(const char *quantization);

#endif
