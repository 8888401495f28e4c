/*
 * cost.h - the engine's memory plan and roofline step-time model (private to src/engine and
 * src/plan). Every formula and default is written out in docs/ENGINE.md.
 */
#ifndef TB_ENGINE_COST_H
#define TB_ENGINE_COST_H

#include <stdbool.h>
#include <stddef.h>

#include "config/catalog.h"
#include "engine/calibration.h"
#include "engine/engine.h"

/* Defaults (docs/ENGINE.md says why each); the efficiencies live in engine/calibration.h. */
#define COST_NONTORCH_GIB 1.0    /* non-torch allocations + CUDA graph pool */
#define COST_NONTORCH_TP_GIB 0.5 /* NCCL buffers when tensor_parallel_size > 1 */
#define COST_LORA_RANK 16        /* vLLM's default --max-lora-rank */

#define GIB (1024.0 * 1024.0 * 1024.0)

/* The path a tensor-parallel all-reduce takes (docs/ENGINE.md, "Multi-GPU"): decided once in
 * cost_model_init, it picks the latency, the bandwidth and the words for it. */
enum cost_ar_path {
    AR_NONE,      /* one GPU */
    AR_NVLINK,    /* vLLM's custom all-reduce over NVLink */
    AR_PCIE,      /* NCCL ring over PCIe peer-to-peer */
    AR_PCIE_NUMA, /* ... between GPUs under different CPU sockets */
    AR_HOST,      /* ... staged through host memory (no peer-to-peer) */
};

struct cost_model {
    const struct gpu_spec *gpu;
    const struct model_spec *model;
    const struct quant_spec *quant; /* NULL = native dtype */
    char weight_dtype[32];
    char kv_dtype[16];
    char compute_dtype[8]; /* peak used for weight FLOPs: fp16 | fp8 | int8 | fp4 */
    int tp;
    int numa_nodes;            /* CPU sockets the tensor-parallel group spans */
    int host_servers;          /* busy servers sharing the host, this one included */
    bool p2p;                  /* PCIe peer-to-peer in effect (NVLink groups ignore it) */
    enum cost_ar_path ar_path; /* the all-reduce's path, from the three above and the GPU */
    int block_size;
    int max_model_len;
    int max_num_seqs;
    int max_num_batched_tokens;
    bool prefix_caching;
    bool max_model_len_clamped; /* default max_model_len lowered to what the KV cache holds */
    bool kv_from_checkpoint;    /* kv_dtype is the checkpoint's convention (catalog), not asked */
    /* A pre-quantized checkpoint of model (catalog/quantized_checkpoints.yaml), or NULL: its
     * id is what a server names the model it serves. */
    const struct checkpoint_spec *checkpoint;
    /* Linear layers run weight-only int4 kernels (AWQ/GPTQ Marlin; MXFP4/NVFP4 on a GPU
     * without FP4 tensor cores): dequantise to 16-bit, slower than dense GEMMs at large batch. */
    bool weight_only_int4;
    /* FP4 weights (MXFP4/NVFP4) on a GPU without FP4 tensor cores: upcast in the kernel (vLLM's
     * Marlin or Triton matmul_ogs path), a kernel class of its own (gemm_fp4_upcast). */
    bool fp4_upcast;
    double expert_pad; /* expert bytes / their unpadded bytes (Marlin FP4 tiles), 0 if none */
    struct cost_calibration cal; /* efficiencies and fixed costs in effect */

    /* Parameters (counts, whole model). */
    double embed_params;      /* embedding + untied lm_head */
    double input_embed_bytes; /* untied input embedding, per GPU: a step reads only its rows */
    double lm_head_params;
    double expert_params;        /* MoE experts, all of them */
    double dense_params;         /* every other weight */
    double active_linear_params; /* per token: dense + experts × top_k / E */

    /* Memory, bytes per GPU. */
    double total_bytes;
    double requested_bytes; /* total × gpu_memory_utilization */
    double weight_bytes;
    double expert_bytes; /* part of weight_bytes that is MoE experts */
    double activation_bytes;
    double nontorch_bytes;
    double lora_bytes;
    double kv_budget_bytes;
    double kv_dtype_bytes;
    double kv_bpt_full;    /* KV bytes per token, full-attention layers */
    double kv_bpt_sliding; /* KV bytes per token, sliding-window layers */
    int full_layers, sliding_layers, window;
    double sliding_ratio; /* sliding_layers / full_layers */
    long num_blocks;
    bool fits;

    /* Rates (per GPU). */
    double peak_flops;    /* weights' compute dtype, FLOP/s, before efficiency */
    double attn_flops;    /* attention runs at the 16-bit peak */
    double bandwidth;     /* bytes/s, before efficiency */
    double p2p_bandwidth; /* bytes/s */
};

/* What one step does, summed over the requests scheduled in it. */
struct step_load {
    long tokens;         /* new tokens computed (prefill chunks + decodes) */
    int seqs;            /* requests scheduled */
    int sampled;         /* requests that sample a token at the end of the step */
    double attn_full;    /* Σ over new tokens of the context they attend (full layers) */
    double attn_sliding; /* same, clipped to the window (sliding layers) */
    double kv_full;      /* Σ over requests of tokens read from the cache (full layers) */
    double kv_sliding;   /* same, clipped to the window */
};

/* Resolves names and works out the memory plan. 0; -ENOENT (unknown name, err lists close
 * ones); -EINVAL (bad option). Does not fail when weights do not fit: m->fits says so. */
MUST_USE int cost_model_init(struct cost_model *m, const struct catalog *cat,
                             const struct engine_config *cfg, char *err, size_t errlen);
void cost_model_info(const struct cost_model *m, struct engine_info *info);
/* Blocks one request holding n tokens needs (full-attention blocks + its sliding share). */
long cost_blocks_for(const struct cost_model *m, long n);
/* Sliding-window blocks alone for a request of n tokens. */
long cost_sliding_blocks(const struct cost_model *m, long n);
/* The path of the tensor-parallel all-reduce, in words: "NVLink", "PCIe peer-to-peer", "PCIe
 * peer-to-peer across sockets" or "host memory (no peer-to-peer)" ("one GPU" without TP). */
const char *cost_allreduce_path(const struct cost_model *m);
/* The factor by which CPU-side fixed costs (step_s, sequence_s, request_s) grow with the other
 * busy servers on the host: 1 + host_contention x (host_servers - 1). */
double cost_host_factor(const struct cost_model *m);
/* Step duration in seconds (roofline: max(compute, memory) + all-reduce + overhead). */
double cost_step_time(const struct cost_model *m, const struct step_load *l);
/* The least GPU time a step takes whatever its load: an MoE layer's kernels have a latency of
 * their own (moe_layer_s per MoE layer; docs/ENGINE.md, "Kernel floor"). */
double cost_kernel_floor_s(const struct cost_model *m);
/* The parts, for docs and tests. */
void cost_step_parts(const struct cost_model *m, const struct step_load *l, double *compute_s,
                     double *memory_s, double *comm_s, double *overhead_s);

#endif
