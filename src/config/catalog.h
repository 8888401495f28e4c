/*
 * catalog.h - the GPU / model / quantization catalog: catalog/{gpus,models}/ YAML embedded in the
 * binary (cmake/catalog.cmake), plus an optional folder that adds or overrides entries
 * (`--catalog DIR`: DIR/gpus/NAME.yaml, DIR/models/NAME.yaml, DIR/quantizations.yaml, or any
 * DIR/NAME.yaml with `kind: gpu|model|quantization`). Every entry carries a `source:` string.
 * Lookups are case-insensitive over the name and aliases; model names also match without the
 * "org/" prefix and without an "-Instruct"/"-it" suffix (so "llama-3.1-70b" finds
 * meta-llama/Llama-3.1-70B-Instruct). All strings are owned by the catalog.
 */
#ifndef TB_CATALOG_H
#define TB_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/xalloc.h"

/* One embedded file (generated table, terminated by {NULL, NULL}). */
struct catalog_blob {
    const char *path; /* relative to catalog/, e.g. "gpus/h200.yaml" */
    const char *text;
};
extern const struct catalog_blob catalog_blobs[];

#define CATALOG_MAX_ALIASES 12
/* Cross-socket over same-socket PCIe P2P bandwidth when a GPU entry gives none: 39 / 54 GB/s,
 * measured on a dual EPYC 9374F host with eight RTX PRO 6000 (github.com/voipmonitor/rtx6kpro,
 * hardware/pcie-bandwidth.md, "Unidirectional P2P Bandwidth"; docs/ENGINE.md, "Multi-GPU"). */
#define CATALOG_NUMA_P2P_RATIO (39.0 / 54.0)
#define CATALOG_MAX_MIG 8 /* MIG GPU-instance profiles per GPU entry */

/* One MIG GPU-instance profile (NVIDIA MIG user guide, "Supported MIG Profiles"): the share of
 * the GPU's memory (with its memory controllers and L2 slices, hence its bandwidth) and of its
 * SMs that one instance of the profile owns. */
struct mig_profile {
    char name[24];          /* "2g.48gb" */
    double memory_fraction; /* of memory_mib and of bandwidth_gbs */
    double sm_fraction;     /* of every tensor peak */
    int max_instances;      /* of this profile on one GPU */
};

struct gpu_spec {
    char *name; /* canonical, e.g. "rtx-pro-6000" */
    char *display_name;
    char *aliases[CATALOG_MAX_ALIASES];
    size_t n_aliases;
    double memory_mib;    /* as the driver reports it */
    double bandwidth_gbs; /* GB/s (1e9 bytes) */
    double fp16_tflops;   /* dense tensor peaks; 0 = not supported */
    double fp8_tflops;
    double fp4_tflops;
    double int8_tops;
    double tdp_w;
    double p2p_bandwidth_gbs; /* GPU-to-GPU per direction, for tensor-parallel all-reduce */
    /* CUDA compute capability (8.9 = sm_89; NVIDIA's CUDA GPUs page), 0 = not given: the GPU
     * family plan's band judges its basis on (plan/band.h), not used by the cost model. */
    double compute_capability;
    /* Topology for tensor parallelism (docs/ENGINE.md, "Multi-GPU"): nvlink = GPUs joined by
     * NVLink/NVSwitch, else PCIe; p2p = the driver enables PCIe peer-to-peer for this board
     * (GeForce boards: not with NVIDIA's driver), else all-reduces are staged through host
     * memory at host_bandwidth_gbs; numa_p2p_bandwidth_gbs = P2P between GPUs under different
     * CPU sockets. Left out of an entry: nvlink false, p2p true, host_bandwidth_gbs half of
     * p2p_bandwidth_gbs, numa_p2p_bandwidth_gbs CATALOG_NUMA_P2P_RATIO of it. */
    bool nvlink;
    bool p2p;
    double host_bandwidth_gbs;
    double numa_p2p_bandwidth_gbs;
    char *interconnect;
    char *source;
    struct mig_profile mig[CATALOG_MAX_MIG]; /* `mig:` in the GPU's YAML */
    size_t n_mig;
    /* A MIG slice is an entry of its own, "PARENT:mig-PROFILE", derived at load from its
     * parent's figures and the profile (docs/TENANCY.md): mig_parent names the parent
     * (NULL for a whole GPU) and mig_slice is the profile. */
    char *mig_parent;
    struct mig_profile mig_slice;
};

struct model_spec {
    char *name; /* canonical HF id */
    char *aliases[CATALOG_MAX_ALIASES];
    size_t n_aliases;
    double params_b;        /* total parameters, billions (as cited) */
    double active_params_b; /* MoE: as cited; 0 for dense */
    int layers, hidden, heads, kv_heads, head_dim, intermediate, vocab;
    bool tie_word_embeddings;
    int experts, experts_per_token, moe_intermediate; /* 0 for dense */
    int sliding_window;                               /* tokens; 0 = none */
    int sliding_layers;                               /* how many layers use the window */
    int dense_layers; /* MoE: leading layers with a dense MLP (first_k_dense_replace), 0 = none */
    char *dtype;      /* "bf16" | "fp16" */
    char *native_quantization; /* e.g. "mxfp4" for gpt-oss, or NULL */
    bool native_experts_only;  /* the native quantization covers MoE experts only */
    int max_model_len;
    char *source;
};

struct quant_spec {
    char *name;
    char *aliases[CATALOG_MAX_ALIASES];
    size_t n_aliases;
    double bytes_per_weight; /* packed weights + scales */
    char *compute;           /* "fp16" | "fp8" | "int8" | "fp4" */
    bool weight_only;
    char *kv_cache_dtype; /* the checkpoint convention's KV dtype ("fp8"), or NULL = model dtype */
    char *source;
};

/* A pre-quantized checkpoint of a catalog model (catalog/checkpoints.yaml): what vLLM finds in
 * its config.json decides which --quantization it accepts (docs/ENGINE.md, "Checkpoints"). */
struct checkpoint_spec {
    char *name;              /* its Hugging Face id */
    char *model;             /* the catalog model it quantizes */
    char *quantization;      /* the catalog's name for its format: fp8, awq, ... */
    char *vllm_quantization; /* vLLM's name (config.json quantization_config.quant_method, or
                                the faster kernel vLLM picks for it): compressed-tensors, ... */
    char *source;
};

struct catalog {
    struct gpu_spec *gpus;
    size_t n_gpus;
    struct model_spec *models;
    size_t n_models;
    struct quant_spec *quants;
    size_t n_quants;
    struct checkpoint_spec *checkpoints;
    size_t n_checkpoints;
};

/* Loads the embedded catalog, then dir (may be NULL). 0, or -EINVAL/-ENOENT with err. */
MUST_USE int catalog_load(struct catalog **out, const char *dir, char *err, size_t errlen);
void catalog_free(struct catalog *c); /* NULL is a no-op */

/* name may be "GPU:PROFILE" for a MIG slice ("rtx-pro-6000:mig-2g.48gb", or without "mig-"). */
const struct gpu_spec *catalog_find_gpu(const struct catalog *c, const char *name);
const struct model_spec *catalog_find_model(const struct catalog *c, const char *name);
const struct quant_spec *catalog_find_quant(const struct catalog *c, const char *name);
/* The pre-quantized checkpoint called name (its Hugging Face id, case-insensitive), or NULL.
 * catalog_find_model finds its model under the same name. */
const struct checkpoint_spec *catalog_find_checkpoint(const struct catalog *c, const char *name);

/* Writes up to a few names close to 'name' ("a, b, c") for an error message. kind: "gpu",
 * "model" or "quantization". */
void catalog_suggest(const struct catalog *c, const char *kind, const char *name, char *buf,
                     size_t len);

/* `testbench catalog [gpus|models|quantizations] [--catalog DIR] [--json]` (catalog_cmd.c). */
int catalog_main(int argc, char **argv);

#endif
