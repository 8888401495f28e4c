/*
 * cost.c - memory plan (vLLM's determine_available_memory, vllm/v1/worker/gpu_worker.py)
 * and the roofline step-time model. Formulas and the reasons for each default: docs/ENGINE.md.
 */
#include "engine/cost.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MIB (1024.0 * 1024.0)

static bool is_auto(const char *s)
{
    return !s || !*s || strcasecmp(s, "auto") == 0 || strcasecmp(s, "none") == 0;
}

static double peak_for(const struct gpu_spec *g, const char *compute)
{
    double t = 0;
    if (strcmp(compute, "fp8") == 0)
        t = g->fp8_tflops;
    else if (strcmp(compute, "int8") == 0)
        t = g->int8_tops;
    else if (strcmp(compute, "fp4") == 0)
        t = g->fp4_tflops;
    /* A GPU without that tensor format runs the weights through 16-bit GEMMs (weight-only
     * kernels such as Marlin dequantise on the fly). */
    if (t <= 0)
        t = g->fp16_tflops;
    return t * 1e12;
}

static const char *effective_compute(const struct gpu_spec *g, const char *compute)
{
    if ((strcmp(compute, "fp8") == 0 && g->fp8_tflops > 0) ||
        (strcmp(compute, "int8") == 0 && g->int8_tops > 0) ||
        (strcmp(compute, "fp4") == 0 && g->fp4_tflops > 0))
        return compute;
    return "fp16";
}

int cost_model_init(struct cost_model *m, const struct catalog *cat,
                    const struct engine_config *cfg, char *err, size_t errlen)
{
    char close[256];
    memset(m, 0, sizeof(*m));
    if (cfg->calibration)
        m->cal = *cfg->calibration;
    else
        cost_calibration_default(&m->cal);
    const char *gname = cfg->gpu ? cfg->gpu : "rtx-pro-6000";
    const char *mname = cfg->model ? cfg->model : "meta-llama/Llama-3.1-8B-Instruct";
    m->gpu = catalog_find_gpu(cat, gname);
    if (!m->gpu) {
        catalog_suggest(cat, "gpu", gname, close, sizeof(close));
        snprintf(err, errlen, "unknown GPU '%s' (close: %s)", gname, close);
        return -ENOENT;
    }
    m->model = catalog_find_model(cat, mname);
    if (!m->model) {
        catalog_suggest(cat, "model", mname, close, sizeof(close));
        snprintf(err, errlen, "unknown model '%s' (close: %s)", mname, close);
        return -ENOENT;
    }
    const struct model_spec *md = m->model;
    const struct gpu_spec *g = m->gpu;
    if (!is_auto(cfg->quantization)) {
        m->quant = catalog_find_quant(cat, cfg->quantization);
        if (!m->quant) {
            catalog_suggest(cat, "quantization", cfg->quantization, close, sizeof(close));
            snprintf(err, errlen, "unknown quantization '%s' (known include: %s)",
                     cfg->quantization, close);
            return -ENOENT;
        }
    } else {
        /* A pre-quantized checkpoint's weights are in its own format (vLLM reads it from its
         * config.json; catalog/quantized_checkpoints.yaml). */
        const struct checkpoint_spec *ck = catalog_find_checkpoint(cat, mname);
        if (ck)
            m->quant = catalog_find_quant(cat, ck->quantization);
    }
    m->checkpoint = catalog_find_checkpoint(cat, mname);
    m->tp = cfg->tensor_parallel_size > 0 ? cfg->tensor_parallel_size : 1;
    if (m->tp > 64 || cfg->tensor_parallel_size < 0) {
        snprintf(err, errlen, "tensor_parallel_size %d out of range", cfg->tensor_parallel_size);
        return -EINVAL;
    }
    if (md->heads % m->tp != 0) {
        snprintf(err, errlen, "%d attention heads are not divisible by tensor_parallel_size %d",
                 md->heads, m->tp);
        return -EINVAL;
    }
    m->numa_nodes = cfg->numa_nodes > 0 ? cfg->numa_nodes : 1;
    if (cfg->numa_nodes < 0 || m->numa_nodes > m->tp) {
        snprintf(err, errlen, "numa_nodes %d must be between 1 and tensor_parallel_size %d",
                 cfg->numa_nodes, m->tp);
        return -EINVAL;
    }
    m->host_servers = cfg->host_servers > 0 ? cfg->host_servers : 1;
    if (cfg->host_servers < 0 || m->host_servers > 64) {
        snprintf(err, errlen, "servers per host %d out of range (1-64)", cfg->host_servers);
        return -EINVAL;
    }
    m->p2p = cfg->p2p == ENGINE_P2P_ON ? true : cfg->p2p == ENGINE_P2P_OFF ? false : g->p2p;
    m->block_size = cfg->block_size > 0 ? cfg->block_size : 16;
    if (cfg->block_size < 0 || m->block_size > 1024) {
        snprintf(err, errlen, "block_size %d out of range", cfg->block_size);
        return -EINVAL;
    }
    double util = cfg->gpu_memory_utilization > 0 ? cfg->gpu_memory_utilization : 0.9;
    if (util > 1.0 || cfg->gpu_memory_utilization < 0) {
        snprintf(err, errlen, "gpu_memory_utilization %.3g must be in (0, 1]",
                 cfg->gpu_memory_utilization);
        return -EINVAL;
    }
    if (cfg->max_model_len < 0 || cfg->max_num_seqs < 0 || cfg->max_num_batched_tokens < 0 ||
        cfg->num_lora_slots < 0) {
        snprintf(err, errlen,
                 "negative max_model_len, max_num_seqs, max_num_batched_tokens "
                 "or num_lora_slots");
        return -EINVAL;
    }

    /* KV dtype: "auto" is the checkpoint's convention. NVIDIA's NVFP4 (and some FP8)
     * checkpoints carry kv_cache_quant_algo FP8, which vLLM follows; the catalog records it
     * per quantization (kv_cache_dtype). */
    const char *kv_conv = m->quant && m->quant->kv_cache_dtype ? m->quant->kv_cache_dtype : NULL;
    if (!m->quant && md->native_quantization) {
        const struct quant_spec *nq = catalog_find_quant(cat, md->native_quantization);
        kv_conv = nq && nq->kv_cache_dtype ? nq->kv_cache_dtype : NULL;
    }
    if (is_auto(cfg->kv_cache_dtype) && kv_conv && !is_auto(kv_conv)) {
        m->kv_dtype_bytes = strncasecmp(kv_conv, "fp8", 3) == 0 ? 1 : 2;
        snprintf(m->kv_dtype, sizeof(m->kv_dtype), "%s", kv_conv);
        m->kv_from_checkpoint = true;
    } else if (is_auto(cfg->kv_cache_dtype)) {
        m->kv_dtype_bytes = 2;
        snprintf(m->kv_dtype, sizeof(m->kv_dtype), "%s", md->dtype);
    } else if (strncasecmp(cfg->kv_cache_dtype, "fp8", 3) == 0) {
        m->kv_dtype_bytes = 1;
        snprintf(m->kv_dtype, sizeof(m->kv_dtype), "%s", cfg->kv_cache_dtype);
    } else if (strcasecmp(cfg->kv_cache_dtype, "bf16") == 0 ||
               strcasecmp(cfg->kv_cache_dtype, "fp16") == 0 ||
               strcasecmp(cfg->kv_cache_dtype, "bfloat16") == 0 ||
               strcasecmp(cfg->kv_cache_dtype, "float16") == 0) {
        m->kv_dtype_bytes = 2;
        snprintf(m->kv_dtype, sizeof(m->kv_dtype), "%s", cfg->kv_cache_dtype);
    } else {
        snprintf(err, errlen, "unknown kv_cache_dtype '%s' (auto, fp8, fp8_e4m3, fp8_e5m2, bf16)",
                 cfg->kv_cache_dtype);
        return -ENOENT;
    }

    /* Parameters. */
    double h = md->hidden, v = md->vocab;
    m->lm_head_params = v * h;
    m->embed_params = v * h * (md->tie_word_embeddings ? 1 : 2);
    if (md->experts > 0) /* the leading dense_layers have a dense MLP, counted in dense_params */
        m->expert_params =
            (double)md->experts * 3.0 * h * md->moe_intermediate * (md->layers - md->dense_layers);
    m->dense_params = md->params_b * 1e9 - m->embed_params - m->expert_params;
    if (m->dense_params < 0)
        m->dense_params = 0;
    m->active_linear_params = m->dense_params;
    if (md->experts > 0)
        m->active_linear_params +=
            m->expert_params * (double)md->experts_per_token / (double)md->experts;

    /* Weight bytes: embeddings/lm_head stay 16-bit under every quantization. */
    double linear_bytes, expert_bytes;
    const char *compute;
    if (m->quant) {
        linear_bytes = m->dense_params * m->quant->bytes_per_weight;
        expert_bytes = m->expert_params * m->quant->bytes_per_weight;
        compute = m->quant->compute;
        snprintf(m->weight_dtype, sizeof(m->weight_dtype), "%s", m->quant->name);
    } else {
        const struct quant_spec *nq =
            md->native_quantization ? catalog_find_quant(cat, md->native_quantization) : NULL;
        linear_bytes = m->dense_params * 2.0;
        expert_bytes = m->expert_params * 2.0;
        compute = "fp16";
        snprintf(m->weight_dtype, sizeof(m->weight_dtype), "%s", md->dtype);
        if (nq) {
            expert_bytes = m->expert_params * nq->bytes_per_weight;
            if (!md->native_experts_only)
                linear_bytes = m->dense_params * nq->bytes_per_weight;
            compute = nq->compute;
            snprintf(m->weight_dtype, sizeof(m->weight_dtype), "%s", nq->name);
        }
    }
    /* Weight-only 4-bit kernels: AWQ/GPTQ (Marlin), and FP4 formats on a GPU without FP4
     * tensor cores (vLLM runs MXFP4/NVFP4 through Marlin's w4a16 path there). */
    {
        const struct quant_spec *wq = m->quant;
        if (!wq && md->native_quantization)
            wq = catalog_find_quant(cat, md->native_quantization);
        m->weight_only_int4 = wq && ((wq->weight_only && wq->bytes_per_weight < 0.75) ||
                                     (strcmp(wq->compute, "fp4") == 0 && g->fp4_tflops <= 0));
    }
    /* vLLM's Marlin MoE path for MXFP4/NVFP4 experts on a GPU without FP4 tensor cores pads
     * every expert to the kernel's tile: hidden to a multiple of 256, the per-rank intermediate
     * to a multiple of 128 (vllm/model_executor/layers/quantization/mxfp4.py, create_weights,
     * Marlin branch). gpt-oss (2880 x 2880) grows by 9 %: 65.8 GiB for gpt-oss-120b on one
     * H100, where vLLM logs "Model loading took 65.97 GiB" (vllm-project/vllm issue #23278). */
    m->fp4_upcast = m->weight_only_int4 && strcmp(compute, "fp4") == 0;
    if (m->fp4_upcast && md->experts > 0) {
        double hp = ceil(h / 256.0) * 256.0;
        double ip = ceil(md->moe_intermediate / (double)m->tp / 128.0) * 128.0 * m->tp;
        m->expert_pad = hp * ip / (h * (double)md->moe_intermediate);
        expert_bytes *= m->expert_pad;
    }
    compute = effective_compute(g, compute);
    snprintf(m->compute_dtype, sizeof(m->compute_dtype), "%s", compute);
    m->weight_bytes = (m->embed_params * 2.0 + linear_bytes + expert_bytes) / m->tp;
    /* An untied input embedding is a separate table of which a step gathers only its tokens'
     * rows (vocab-parallel under TP); a tied one is read in full as the lm_head anyway. */
    m->input_embed_bytes = md->tie_word_embeddings ? 0 : v * h * 2.0 / m->tp;
    m->expert_bytes = expert_bytes / m->tp;

    /* Rates. */
    m->peak_flops = peak_for(g, compute);
    m->attn_flops = g->fp16_tflops * 1e12;
    m->bandwidth = g->bandwidth_gbs * 1e9;
    /* The path a tensor-parallel all-reduce takes (docs/ENGINE.md, "Multi-GPU"): NVLink; PCIe
     * peer-to-peer (between sockets when the group spans them); or, without peer-to-peer,
     * staged through host memory. */
    m->ar_path = m->tp <= 1          ? AR_NONE
                 : g->nvlink         ? AR_NVLINK
                 : !m->p2p           ? AR_HOST
                 : m->numa_nodes > 1 ? AR_PCIE_NUMA
                                     : AR_PCIE;
    m->p2p_bandwidth = (m->ar_path == AR_HOST        ? g->host_bandwidth_gbs
                        : m->ar_path == AR_PCIE_NUMA ? g->numa_p2p_bandwidth_gbs
                                                     : g->p2p_bandwidth_gbs) *
                       1e9;

    /* Scheduler defaults: vLLM arg_utils get_batch_defaults, OpenAI API server context; the
     * A100 stays in the small tier whatever its memory (vLLM tests/engine/test_arg_utils.py,
     * test_defaults_with_usage_context: `"a100" not in device_name`). */
    bool big = g->memory_mib * MIB >= 70.0 * GIB && !strcasestr(g->display_name, "a100") &&
               !strcasestr(g->name, "a100");
    m->max_num_seqs = cfg->max_num_seqs > 0 ? cfg->max_num_seqs : big ? 1024 : 256;
    m->max_num_batched_tokens = cfg->max_num_batched_tokens > 0 ? cfg->max_num_batched_tokens
                                : big                           ? 8192
                                                                : 2048;
    m->prefix_caching = cfg->enable_prefix_caching != 0;

    /* KV per token per GPU: KV heads split across TP ranks (replicated when fewer than TP). */
    int kvh = md->kv_heads / m->tp;
    if (kvh < 1)
        kvh = 1;
    m->sliding_layers = md->sliding_window > 0 ? md->sliding_layers : 0;
    m->full_layers = md->layers - m->sliding_layers;
    m->window = md->sliding_window;
    m->kv_bpt_full = 2.0 * m->full_layers * kvh * md->head_dim * m->kv_dtype_bytes;
    m->kv_bpt_sliding = 2.0 * m->sliding_layers * kvh * md->head_dim * m->kv_dtype_bytes;
    m->sliding_ratio = m->full_layers > 0 ? (double)m->sliding_layers / m->full_layers : 0;

    /* Memory plan (docs/ENGINE.md): requested − weights − activation peak − non-torch. */
    m->total_bytes = g->memory_mib * MIB;
    m->requested_bytes = m->total_bytes * util;
    double tokens = m->max_num_batched_tokens;
    double inter = md->experts > 0 ? (double)md->moe_intermediate * md->experts_per_token
                                   : (double)md->intermediate;
    /* Profile run peak: one layer's transient tensors for every batched token (residual,
     * normed input, qkv/attention out ~4 × hidden; gate+up and activated MLP 3 × inter),
     * 16-bit, plus fp32 logits for up to max_num_seqs sampled rows. */
    m->activation_bytes = tokens * (4.0 * h + 3.0 * inter / m->tp) * 2.0 +
                          fmin(tokens, (double)m->max_num_seqs) * v / m->tp * 4.0;
    m->nontorch_bytes = (COST_NONTORCH_GIB + (m->tp > 1 ? COST_NONTORCH_TP_GIB : 0)) * GIB;
    /* LoRA slots: A and B of rank r for q,k,v,o (hidden×hidden) and gate,up,down
     * (hidden×inter) in every layer, 16-bit, split across TP. */
    m->lora_bytes = cfg->num_lora_slots * (double)COST_LORA_RANK * md->layers *
                    (4.0 * 2.0 * h + 3.0 * (h + md->intermediate)) * 2.0 / m->tp;
    m->kv_budget_bytes = m->requested_bytes - m->weight_bytes - m->activation_bytes -
                         m->nontorch_bytes - m->lora_bytes;
    m->fits = m->kv_budget_bytes > 0;
    double block_bytes = m->block_size * m->kv_bpt_full;
    m->num_blocks = m->fits ? (long)floor(m->kv_budget_bytes / block_bytes) : 0;
    if (m->num_blocks < 1)
        m->fits = false;

    /* max_model_len: the model's, unless set. */
    m->max_model_len = cfg->max_model_len > 0 ? cfg->max_model_len : md->max_model_len;
    if (m->max_model_len > md->max_model_len && cfg->max_model_len > 0) {
        snprintf(err, errlen, "max_model_len %d is larger than %s's maximum of %d",
                 cfg->max_model_len, md->name, md->max_model_len);
        return -EINVAL;
    }
    if (m->fits && cost_blocks_for(m, m->max_model_len) > m->num_blocks &&
        cfg->max_model_len <= 0) {
        /* vLLM refuses to start here; the default is lowered instead (docs/ENGINE.md). */
        long lo = m->block_size, hi = m->max_model_len;
        while (lo < hi) {
            long mid = (lo + hi + 1) / 2;
            if (cost_blocks_for(m, mid) <= m->num_blocks)
                lo = mid;
            else
                hi = mid - 1;
        }
        m->max_model_len = (int)lo;
        m->max_model_len_clamped = true;
    }
    return 0;
}

long cost_sliding_blocks(const struct cost_model *m, long n)
{
    if (m->sliding_layers <= 0 || n <= 0)
        return 0;
    long bs = m->block_size;
    long blocks = (n + bs - 1) / bs;
    /* The window's tokens can straddle one more block than window / block_size. */
    long cap = (m->window - 1 + bs - 1) / bs + 1;
    if (blocks > cap)
        blocks = cap;
    return (long)ceil((double)blocks * m->sliding_ratio - 1e-9);
}

long cost_blocks_for(const struct cost_model *m, long n)
{
    return (n + m->block_size - 1) / m->block_size + cost_sliding_blocks(m, n);
}

void cost_model_info(const struct cost_model *m, struct engine_info *info)
{
    memset(info, 0, sizeof(*info));
    /* vLLM serves a checkpoint under its own id, not its base model's. */
    info->model_name = m->checkpoint ? m->checkpoint->name : m->model->name;
    info->gpu_name = m->gpu->display_name;
    info->weight_dtype = m->weight_dtype;
    info->kv_dtype = m->kv_dtype;
    info->max_model_len = m->max_model_len;
    info->block_size = m->block_size;
    info->max_num_seqs = m->max_num_seqs;
    info->max_num_batched_tokens = m->max_num_batched_tokens;
    info->prefix_caching = m->prefix_caching;
    info->tensor_parallel_size = m->tp;
    info->vocab_size = m->model->vocab;
    info->total_gib = m->total_bytes / GIB;
    info->weights_gib = m->weight_bytes / GIB;
    info->activation_gib = (m->activation_bytes + m->nontorch_bytes + m->lora_bytes) / GIB;
    info->kv_budget_gib = m->kv_budget_bytes > 0 ? m->kv_budget_bytes / GIB : 0;
    info->kv_bytes_per_token = m->kv_bpt_full;
    info->num_gpu_blocks = m->num_blocks;
    info->kv_capacity_tokens = m->num_blocks * m->block_size;
    long per_req = cost_blocks_for(m, m->max_model_len);
    info->max_concurrency = per_req > 0 ? (double)m->num_blocks / (double)per_req : 0;
    info->fits = m->fits;
}

/* Attention efficiency falls with context: FlashAttention-class prefill kernels lose
 * occupancy and cache reuse as the attended context grows (docs/ENGINE.md). ctx is the mean
 * context a new token attends. */
static double attn_efficiency(const struct cost_model *m, double ctx)
{
    double knee = m->cal.attn_context_knee > 0 ? m->cal.attn_context_knee : 1e12;
    return m->cal.p[CAL_ATTN] / (1.0 + ctx / knee);
}

/* One tensor-parallel all-reduce's latency on the group's path (docs/ENGINE.md, "Multi-GPU").
 * Over NVLink vLLM runs its custom all-reduce, one kernel whatever the group's size; over PCIe
 * with more than two GPUs it disables it ("not supported on more than two PCIe-only GPUs",
 * vllm/distributed/device_communicators/custom_all_reduce.py) and NCCL's ring takes
 * 2 (TP - 1) steps, each over PCIe peer-to-peer or staged through host memory. */
static double allreduce_latency_s(const struct cost_model *m)
{
    const struct cost_calibration *cal = &m->cal;
    if (m->ar_path == AR_NVLINK)
        return cal->p[CAL_AR_NVLINK_S];
    double steps = 2.0 * (m->tp - 1);
    return steps * (m->ar_path == AR_HOST ? cal->p[CAL_HOP_HOST_S] : cal->p[CAL_HOP_PCIE_S]);
}

const char *cost_allreduce_path(const struct cost_model *m)
{
    static const char *const words[] = {
        [AR_NONE] = "one GPU",
        [AR_NVLINK] = "NVLink",
        [AR_PCIE] = "PCIe peer-to-peer",
        [AR_PCIE_NUMA] = "PCIe peer-to-peer across sockets",
        [AR_HOST] = "host memory (no peer-to-peer)",
    };
    return words[m->ar_path];
}

double cost_host_factor(const struct cost_model *m)
{
    return 1.0 + m->cal.p[CAL_HOST_CONTENTION] * (m->host_servers - 1);
}

void cost_step_parts(const struct cost_model *m, const struct step_load *l, double *compute_s,
                     double *memory_s, double *comm_s, double *overhead_s)
{
    const struct model_spec *md = m->model;
    const struct cost_calibration *cal = &m->cal;
    double tp = m->tp;
    double attn_dim = (double)md->heads * md->head_dim;
    /* FLOPs: 2 per weight per token, each weight class at its kernel's efficiency: dense
     * (or weight-only int4) GEMMs, fused MoE experts, the 16-bit lm_head for sampled rows
     * only; attention (QK^T and PV: 4 × heads × head_dim per attended position per layer). */
    double eff_lin = m->fp4_upcast         ? cal->p[CAL_GEMM_FP4W]
                     : m->weight_only_int4 ? cal->p[CAL_GEMM_INT4]
                                           : cal->p[CAL_GEMM];
    double expert_active =
        md->experts > 0 ? m->expert_params * (double)md->experts_per_token / (double)md->experts
                        : 0;
    double dense_flops = 2.0 * m->dense_params * l->tokens;
    double expert_flops = 2.0 * expert_active * l->tokens;
    double head_flops = 2.0 * m->lm_head_params * l->sampled;
    double att =
        4.0 * attn_dim * (m->full_layers * l->attn_full + m->sliding_layers * l->attn_sliding);
    double ctx = l->tokens > 0 ? l->attn_full / (double)l->tokens : 0;
    *compute_s = (dense_flops / (m->peak_flops * eff_lin) +
                  expert_flops / (m->peak_flops * eff_lin * cal->p[CAL_MOE]) +
                  head_flops / (m->attn_flops * cal->p[CAL_GEMM]) +
                  att / (m->attn_flops * attn_efficiency(m, ctx))) /
                 tp;

    /* Bytes: every non-expert weight once per step, but of an untied input embedding only the
     * rows of the step's tokens; MoE experts only those some token routes to — with T tokens
     * choosing k of E uniformly, a given expert is touched with probability 1 − (1 − k/E)^T.
     * The KV cache read by paged attention streams at its own (lower) efficiency. */
    double w = m->weight_bytes - m->expert_bytes - m->input_embed_bytes;
    if (m->input_embed_bytes > 0)
        w += fmin((double)l->tokens * md->hidden * 2.0 / tp, m->input_embed_bytes);
    if (m->expert_bytes > 0) {
        double k = md->experts_per_token, e = md->experts;
        double touched = 1.0 - pow(1.0 - k / e, (double)l->tokens);
        w += m->expert_bytes * touched;
    }
    double kv = l->kv_full * m->kv_bpt_full + l->kv_sliding * m->kv_bpt_sliding;
    *memory_s =
        w / (m->bandwidth * cal->p[CAL_WEIGHT_BW]) + kv / (m->bandwidth * cal->p[CAL_KV_BW]);

    /* Tensor parallel: two all-reduces of the hidden state per layer, each its path's latency
     * plus 2 (TP - 1)/TP of its bytes over the path's bandwidth. */
    *comm_s = 0;
    if (m->tp > 1) {
        double bytes = (double)l->tokens * md->hidden * 2.0;
        double per = allreduce_latency_s(m) + 2.0 * (tp - 1.0) / tp * bytes / m->p2p_bandwidth;
        *comm_s = 2.0 * md->layers * per;
    }
    /* CPU-side costs (scheduler, input preparation, sampling, output processing) grow with the
     * other busy servers on the host ("Several servers on one host"). */
    *overhead_s = (cal->p[CAL_STEP_S] + cal->p[CAL_SEQ_S] * l->seqs) * cost_host_factor(m);
}

double cost_kernel_floor_s(const struct cost_model *m)
{
    const struct model_spec *md = m->model;
    int moe_layers = md->experts > 0 ? md->layers - md->dense_layers : 0;
    return moe_layers * m->cal.p[CAL_MOE_LAYER_S];
}

double cost_step_time(const struct cost_model *m, const struct step_load *l)
{
    double c, mem, comm, o;
    cost_step_parts(m, l, &c, &mem, &comm, &o);
    /* A step is never shorter on the GPU than its kernels' own latency; only an MoE layer's
     * (router, top-k, token alignment, two grouped GEMMs, combine) is large enough to show at
     * a few users: fitted, dense models show none (docs/ENGINE.md). */
    double gpu = c > mem ? c : mem;
    double floor_s = cost_kernel_floor_s(m);
    return (gpu > floor_s ? gpu : floor_s) + comm + o;
}
