/*
 * plan_cli.c - `testbench plan`: the arguments, the one-setup report, the sweep table and the
 * JSON. The answers come from plan.c. One convention for lengths everywhere (docs/CONFIG.md):
 * the window (--max-model-len) is the server's setting, the prompt (--prompt-tokens) is the
 * workload's; users are people in conversation unless --population streams says otherwise.
 */
#include "plan/plan.h"
#include "plan/plan_internal.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/exitcode.h"
#include "core/human.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "runner/run.h"

#define PLAN_DEFAULT_WINDOW 8192
#define PLAN_DEFAULT_PROMPT 1024
#define PLAN_DEFAULT_OUTPUT 256
#define PLAN_DEFAULT_USERS 10
#define PLAN_DEFAULT_SEED 42
/* Tokens a later chat turn adds besides the answer and the new message: the answer's end of
 * turn, the user message's header (3) and end (1), and the generation prompt (3): the Llama-3
 * shaped template `testbench sim` applies (src/sim/request.c). Completions join the turns with
 * a blank line, which the simulator's tokenizer counts as nothing. */
#define PLAN_CHAT_TURN_TOKENS 8
/* The most tokens (prompt + output of every request) one row of `plan` simulates. The engine's
 * steps and the latency samples grow with them: 20 M tokens took 3.4 s of CPU and 330 MB when
 * decode-bound (2,441 users, 8,000-token outputs), 0.8 s and 24 MB when prefill-bound (152
 * users at 131,072 tokens); unbounded, 100,000 users at 8,192 took 61 s and 3.6 GB. Beyond it the
 * default requests are cut down to what fits, at least one per user (a conversation, with
 * sessions); more users than that, or more --requests, are refused with the bound. */
#define PLAN_MAX_SIM_TOKENS 20000000LL

/* ---- output ---------------------------------------------------------------------------- */

static json_t *ms_or_null(bool ok, double s)
{
    return ok ? json_real_or_null(s * 1e3) : json_null();
}

static json_t *slo_json(const struct slo_cfg *slo)
{
    json_t *o = json_object();
    json_object_set_new(o, "profile", slo->profile[0] ? json_string(slo->profile) : json_null());
    json_object_set_new(o, "percentile", json_real(slo->percentile));
    json_object_set_new(o, "ttft_ms", json_real_or_null(slo->ttft_ms));
    json_object_set_new(o, "itl_ms", json_real_or_null(slo->itl_ms));
    json_object_set_new(o, "tpot_ms", json_real_or_null(slo->tpot_ms));
    json_object_set_new(o, "e2e_ms", json_real_or_null(slo->e2e_ms));
    char what[200];
    slo_describe(slo, what, sizeof(what));
    json_object_set_new(o, "text", json_string(what));
    return o;
}

static json_t *workload_json(const struct plan_opts *o, const struct plan_row *r)
{
    json_t *w = json_object();
    json_object_set_new(w, "population", json_string(vd_population_name(o->population)));
    json_object_set_new(w, "users", json_integer(r->users));
    json_object_set_new(w, "requests", json_integer(r->requests));
    json_object_set_new(w, "warmup_requests", json_integer(r->warmup));
    json_object_set_new(w, "prompt_tokens", json_integer(r->prompt));
    json_object_set_new(w, "output_tokens", json_integer(r->output));
    json_object_set_new(w, "shared_prefix_tokens", json_integer(o->shared_prefix));
    if (o->population == VD_SESSIONS) {
        json_object_set_new(w, "session", session_cfg_to_json(&o->session));
        json_object_set_new(w, "turn_tokens", json_integer(o->turn_tokens));
    }
    return w;
}

static void row_json_results(json_t *j, const struct plan_row *r)
{
    const struct vd_result *x = &r->res;
    bool s = r->simulated;
    /* Means as well as percentiles: published benchmarks (vllm bench serve) report means, and a
     * comparison must take like with like. */
    json_object_set_new(j, "ttft_mean_ms", ms_or_null(s, x->ttft.mean));
    json_object_set_new(j, "tpot_mean_ms", ms_or_null(s, x->tpot.mean));
    json_object_set_new(j, "itl_mean_ms", ms_or_null(s, x->itl.mean));
    json_object_set_new(j, "ttft_p50_ms", ms_or_null(s, x->ttft.p50));
    json_object_set_new(j, "ttft_p95_ms", ms_or_null(s, x->ttft.p95));
    json_object_set_new(j, "ttft_p99_ms", ms_or_null(s, x->ttft.p99));
    json_object_set_new(j, "tpot_p50_ms", ms_or_null(s, x->tpot.p50));
    json_object_set_new(j, "tpot_p95_ms", ms_or_null(s, x->tpot.p95));
    json_object_set_new(j, "itl_p50_ms", ms_or_null(s, x->itl.p50));
    json_object_set_new(j, "itl_p95_ms", ms_or_null(s, x->itl.p95));
    json_object_set_new(j, "ttft_first_turn_p50_ms",
                        ms_or_null(s && x->ttft_first.n, x->ttft_first.p50));
    json_object_set_new(j, "ttft_later_turns_p50_ms",
                        ms_or_null(s && x->ttft_later.n, x->ttft_later.p50));
    json_object_set_new(j, "cached_prompt_pct",
                        s && x->prompt_tokens > 0
                            ? json_real(100.0 * x->cached_prompt_tokens / (double)x->prompt_tokens)
                            : json_null());
    json_object_set_new(j, "max_prompt_tokens", s ? json_integer(x->max_prompt) : json_null());
    json_object_set_new(j, "failed_requests",
                        s ? json_integer(x->sent - x->completed) : json_null());
    json_object_set_new(j, "user_tokens_per_s", s ? json_real_or_null(r->user_tps) : json_null());
    json_object_set_new(j, "output_throughput", s ? json_real_or_null(r->out_tps) : json_null());
    json_object_set_new(j, "duration_s", s ? json_real_or_null(r->duration_s) : json_null());
    json_object_set_new(j, "num_preemptions",
                        s ? json_integer((json_int_t)r->preemptions) : json_null());
    json_object_set_new(j, "peak_kv_cache_usage",
                        s ? json_real_or_null(r->peak_kv_usage) : json_null());
}

/* The ids of the rows the band rests on, as a JSON array (up to PLAN_BAND_MAX_IDS, 64: the
 * built-in table has 28 held-out rows). */
static json_t *band_ids_json(const struct plan_band *b)
{
    json_t *a = json_array();
    for (int i = 0; i < b->n_row_ids; i++)
        json_array_append_new(a, json_string(b->row_id[i]));
    return a;
}

static json_t *plan_row_json(const struct plan_opts *o, const struct plan_row *r,
                             const struct plan_floor *fl)
{
    const struct cost_model *m = &r->cm;
    json_t *j = json_object();
    json_object_set_new(j, "gpu", json_string(m->gpu->name));
    json_object_set_new(j, "gpu_name", json_string(m->gpu->display_name));
    json_object_set_new(j, "model", json_string(m->model->name));
    json_object_set_new(j, "quantization", json_string(m->weight_dtype));
    json_object_set_new(j, "kv_cache_dtype", json_string(m->kv_dtype));
    json_object_set_new(j, "tensor_parallel_size", json_integer(m->tp));
    json_object_set_new(j, "p2p", json_boolean(m->p2p));
    json_object_set_new(j, "numa_nodes", json_integer(m->numa_nodes));
    json_object_set_new(j, "servers_per_host", json_integer(m->host_servers));
    json_object_set_new(j, "gpu_memory_utilization",
                        json_real(m->requested_bytes / m->total_bytes));
    json_object_set_new(j, "total_gib", json_real(r->info.total_gib));
    json_object_set_new(j, "weights_gib", json_real(r->info.weights_gib));
    json_object_set_new(j, "activation_gib", json_real(r->info.activation_gib));
    json_object_set_new(j, "kv_budget_gib", json_real(r->info.kv_budget_gib));
    json_object_set_new(j, "kv_bytes_per_token",
                        json_integer((json_int_t)r->info.kv_bytes_per_token));
    json_object_set_new(j, "num_gpu_blocks", json_integer(r->info.num_gpu_blocks));
    json_object_set_new(j, "kv_capacity_tokens", json_integer(r->info.kv_capacity_tokens));
    long per = cost_blocks_for(m, r->window);
    json_object_set_new(j, "max_concurrency_at_window",
                        json_real(m->num_blocks > 0 ? (double)m->num_blocks / per : 0));
    json_object_set_new(j, "fits", json_boolean(r->fits));
    json_object_set_new(j, "max_model_len", json_integer(r->window));
    json_object_set_new(j, "population", json_string(vd_population_name(o->population)));
    json_object_set_new(j, "prompt_tokens", json_integer(r->prompt));
    json_object_set_new(j, "output_tokens", json_integer(r->output));
    json_object_set_new(j, "users", json_integer(r->users));
    json_object_set_new(j, "requests", json_integer(r->requests));
    json_object_set_new(j, "workload", workload_json(o, r));
    json_object_set_new(j, "max_num_seqs", json_integer(m->max_num_seqs));
    json_object_set_new(j, "max_num_batched_tokens", json_integer(m->max_num_batched_tokens));
    row_json_results(j, r);
    json_object_set_new(j, "slo", slo_json(&o->slo));
    json_object_set_new(j, "slo_ttft_ms", json_real_or_null(o->slo.ttft_ms));
    json_object_set_new(j, "slo_tpot_ms", json_real_or_null(o->slo.tpot_ms));
    json_object_set_new(j, "meets_slo", json_boolean(r->ok));
    json_object_set_new(j, "verdict", json_string(r->verdict));
    json_object_set_new(j, "slo_unreachable", json_boolean(fl && fl->unreachable));
    json_object_set_new(j, "slo_floor", json_string(fl && fl->unreachable ? fl->why : ""));
    json_t *u = json_object();
    json_object_set_new(u, "output_throughput_pct", json_real(r->band.tps_pct));
    json_object_set_new(u, "tpot_pct", json_real(r->band.tpot_pct));
    json_object_set_new(u, "ttft_pct", json_real(r->band.ttft_pct));
    json_object_set_new(u, "validated", json_boolean(!r->band.extrapolated));
    json_object_set_new(u, "basis", json_string(r->band.basis));
    json_object_set_new(u, "outside", json_string(r->band.outside));
    json_object_set_new(u, "combination", json_string(r->band.combination));
    json_object_set_new(u, "rows_like", json_integer(r->band.rows_like));
    json_object_set_new(u, "row_ids", band_ids_json(&r->band));
    json_object_set_new(j, "uncertainty", u);
    json_object_set_new(j, "calibration",
                        o->calibration_path ? json_string(o->calibration_path) : json_null());
    json_t *src = json_object();
    json_object_set_new(src, "gpu", json_string(m->gpu->source));
    json_object_set_new(src, "model", json_string(m->model->source));
    if (m->quant)
        json_object_set_new(src, "quantization", json_string(m->quant->source));
    json_object_set_new(j, "sources", src);
    return j;
}

/* The workload and the SLO in one line each: every answer says what it was judged on. */
static void print_basis(const struct plan_opts *o, const struct plan_row *r, bool sweep)
{
    char what[200], who[64] = "";
    slo_describe(&o->slo, what, sizeof(what));
    printf("SLO %s\n", what);
    if (!sweep)
        snprintf(who, sizeof(who), "%d %s, %d %s%s; ", r->users, r->users == 1 ? "user" : "users",
                 r->requests, r->requests == 1 ? "request" : "requests",
                 r->warmup > 0 ? " (the warm-up's first)" : "");
    if (o->population == VD_SESSIONS) {
        const struct session_cfg *ss = &o->session;
        printf("Workload: users in conversation (population sessions): %s%d turns each, think "
               "time %s mean %g s, first prompt %d tokens, later messages %d-%d tokens, answers "
               "%d tokens\n",
               who, ss->turns, think_dist_name(ss->think), ss->think_time_s, r->prompt,
               ss->message_tokens_min, ss->message_tokens_max, r->output);
    } else {
        printf("Workload: closed-loop request streams (population streams: a batch job, no think "
               "time, all at t = 0): %sprompt %d + output %d tokens\n",
               who, r->prompt, r->output);
    }
}

static void print_memory(const struct plan_row *r)
{
    const struct cost_model *m = &r->cm;
    const struct model_spec *md = m->model;
    printf("\nMemory per GPU (vLLM accounting, gpu_memory_utilization %.2f)\n",
           m->requested_bytes / m->total_bytes);
    printf("  GPU memory                 %8.2f GiB\n", m->total_bytes / GIB);
    printf("  usable (x %.2f)            %8.2f GiB\n", m->requested_bytes / m->total_bytes,
           m->requested_bytes / GIB);
    printf("  weights                    %8.2f GiB\n", m->weight_bytes / GIB);
    printf("  activation peak            %8.2f GiB (profile run, %d batched tokens)\n",
           m->activation_bytes / GIB, m->max_num_batched_tokens);
    printf("  non-torch + CUDA graphs    %8.2f GiB\n", (m->nontorch_bytes + m->lora_bytes) / GIB);
    printf("  KV cache budget            %8.2f GiB\n",
           m->kv_budget_bytes > 0 ? m->kv_budget_bytes / GIB : 0.0);
    printf("  KV bytes per token         %8.0f (2 x %d full-attention layers x %d KV heads x %d "
           "x %.0f B)\n",
           m->kv_bpt_full, m->full_layers, md->kv_heads / m->tp > 0 ? md->kv_heads / m->tp : 1,
           md->head_dim, m->kv_dtype_bytes);
    if (m->sliding_layers)
        printf("  sliding-window layers      %8.0f B/token, at most %d tokens per request\n",
               m->kv_bpt_sliding, m->window);
    printf("  KV capacity                %8ld tokens (%ld blocks of %d)\n",
           r->info.kv_capacity_tokens, r->info.num_gpu_blocks, m->block_size);
    long per = cost_blocks_for(m, r->window);
    printf("  max concurrency at a full %d-token window: %.2f sequences\n", r->window,
           m->num_blocks > 0 ? (double)m->num_blocks / per : 0.0);
}

static void print_header(const struct plan_row *r)
{
    const struct cost_model *m = &r->cm;
    const struct gpu_spec *g = m->gpu;
    const struct model_spec *md = m->model;
    printf("testbench plan: %s on %s", md->name, g->display_name);
    if (m->tp > 1)
        printf(" x%d (tensor parallel over %s)", m->tp, cost_allreduce_path(m));
    if (m->host_servers > 1)
        printf(", %d busy servers on the host", m->host_servers);
    printf("\n\n");
    char fp4[32] = "n/a";
    if (g->fp4_tflops > 0)
        snprintf(fp4, sizeof(fp4), "%.0f", g->fp4_tflops);
    printf("GPU     %.0f MiB, %.0f GB/s, dense TFLOPS BF16 %.0f / FP8 %.0f / FP4 %s, %.0f W, %s\n",
           g->memory_mib, g->bandwidth_gbs, g->fp16_tflops, g->fp8_tflops, fp4, g->tdp_w,
           g->interconnect ? g->interconnect : "");
    printf("        source: %s\n", g->source);
    printf("Model   %.1fB params%s, %d layers, hidden %d, %d heads / %d KV heads x %d, vocab %d, "
           "max_model_len %d",
           md->params_b, md->experts ? " (MoE)" : "", md->layers, md->hidden, md->heads,
           md->kv_heads, md->head_dim, md->vocab, md->max_model_len);
    if (md->experts)
        printf(", %d experts top-%d (%.1fB active per token)", md->experts, md->experts_per_token,
               (m->active_linear_params + m->embed_params) / 1e9);
    if (m->sliding_layers)
        printf(", %d of %d layers sliding window %d", m->sliding_layers, md->layers, m->window);
    printf("\n        source: %s\n", md->source);
    if (m->quant)
        printf("Weights %s: %.4g bytes/weight (embeddings/lm_head 16-bit), FLOPs at the %s peak\n"
               "        source: %s\n",
               m->quant->name, m->quant->bytes_per_weight, m->compute_dtype, m->quant->source);
    else
        printf("Weights %s (checkpoint), FLOPs at the %s peak\n", m->weight_dtype,
               m->compute_dtype);
}

static void print_predicted(const struct plan_opts *o, const struct plan_row *r)
{
    const struct vd_result *x = &r->res;
    printf("\nPredicted (engine in virtual time, %.1f s simulated, %llu steps, %llu "
           "preemptions, peak KV usage %.0f %%, mean running %.1f)\n",
           r->duration_s, (unsigned long long)r->steps, (unsigned long long)r->preemptions,
           r->peak_kv_usage * 100, r->mean_running);
    char a[32], b[32];
    printf("  TTFT   p50 %10s   p95 %10s\n", human_ms(x->ttft.p50 * 1e3, a, sizeof(a)),
           human_ms(x->ttft.p95 * 1e3, b, sizeof(b)));
    printf("  TPOT   p50 %10s   p95 %10s\n", human_ms(x->tpot.p50 * 1e3, a, sizeof(a)),
           human_ms(x->tpot.p95 * 1e3, b, sizeof(b)));
    printf("  ITL    p50 %10s   p95 %10s\n", human_ms(x->itl.p50 * 1e3, a, sizeof(a)),
           human_ms(x->itl.p95 * 1e3, b, sizeof(b)));
    if (o->population == VD_SESSIONS && x->ttft_later.n)
        printf("  TTFT p50: first turns %s, later turns %s; %.0f %% of prompt tokens "
               "from the prefix cache; longest conversation %d tokens\n",
               human_ms(x->ttft_first.p50 * 1e3, a, sizeof(a)),
               human_ms(x->ttft_later.p50 * 1e3, b, sizeof(b)),
               x->prompt_tokens > 0 ? 100.0 * x->cached_prompt_tokens / (double)x->prompt_tokens
                                    : 0.0,
               x->max_prompt);
    printf("  per-user rate %.1f tokens/s (1 / TPOT p50); aggregate output %.1f tokens/s\n",
           r->user_tps, r->out_tps);
    char c[32];
    printf("  means: TTFT %s, TPOT %s, ITL %s\n", human_ms(x->ttft.mean * 1e3, a, sizeof(a)),
           human_ms(x->tpot.mean * 1e3, b, sizeof(b)), human_ms(x->itl.mean * 1e3, c, sizeof(c)));
    printf("\nUncertainty: output tokens/s +/-%.0f %%, TPOT +/-%.0f %%, TTFT +/-%.0f %% (%s)\n",
           r->band.tps_pct, r->band.tpot_pct, r->band.ttft_pct, r->band.basis);
    printf("  %s: ", r->band.extrapolated ? "nearest held-out rows" : "held-out rows");
    for (int i = 0; i < r->band.n_row_ids; i++)
        printf("%s%s", i ? ", " : "", r->band.row_id[i]);
    if (r->band.row_ids_more)
        printf(" and %d more", r->band.row_ids_more);
    printf("%s\n", r->band.n_row_ids ? "" : "none");
    if (r->band.extrapolated && r->band.outside[0])
        printf("  not validated: %s\n", r->band.outside);
}

static void print_row_text(const struct plan_opts *o, const struct plan_row *r,
                           const struct plan_floor *fl)
{
    const struct cost_model *m = &r->cm;
    print_header(r);
    print_memory(r);
    printf("\n");
    print_basis(o, r, false);
    printf("Server: window (max_model_len) %d, max_num_seqs %d, max_num_batched_tokens %d\n",
           r->window, m->max_num_seqs, m->max_num_batched_tokens);
    if (r->simulated)
        print_predicted(o, r);
    printf("\nVerdict: %s\n", r->verdict);
    if (fl && fl->unreachable)
        printf("Unreachable at any user count: %s.\n", fl->why);
    long per = cost_blocks_for(m, r->window);
    double cc = m->num_blocks > 0 ? (double)m->num_blocks / per : 0.0;
    if (r->fits && !r->ok && o->population == VD_STREAMS && cc < r->users)
        printf("Why: the KV cache holds %.2f sequences of %d tokens, so %d users take turns and "
               "TTFT includes the wait.\n     Options:%s%s a shorter --max-model-len, "
               "--gpu-memory-utilization 0.95, or --tensor-parallel-size %d.\n",
               cc, r->window, r->users,
               m->kv_dtype_bytes > 1 ? " --kv-cache-dtype fp8 (halves KV bytes/token)," : "",
               m->quant && m->quant->bytes_per_weight <= 0.6
                   ? ""
                   : " a 4-bit --quantization (awq, nvfp4) to free memory for KV,",
               m->tp * 2);
}

static void print_table(const struct plan_opts *o, const struct plan_row *rows, size_t n)
{
    print_basis(o, &rows[0], true);
    printf("\n%-8s %7s %5s %4s %8s %8s %9s %7s %9s %9s %8s %8s %8s %8s %9s  %s\n", "quant",
           "window", "users", "fits", "weights", "kv_gib", "kv_tokens", "max_cc", "ttft_p50",
           "ttft_p95", "tpot_p50", "tpot_p95", "itl_p50", "user_t/s", "out_t/s", "verdict");
    for (size_t i = 0; i < n; i++) {
        const struct plan_row *r = &rows[i];
        long per = cost_blocks_for(&r->cm, r->window);
        printf("%-8s %7d %5d %4s %8.2f %8.2f %9ld %7.2f", r->cm.weight_dtype, r->window, r->users,
               r->fits ? "yes" : "no", r->info.weights_gib, r->info.kv_budget_gib,
               r->info.kv_capacity_tokens,
               r->cm.num_blocks > 0 ? (double)r->cm.num_blocks / per : 0.0);
        const struct vd_result *x = &r->res;
        char t[5][32];
        if (r->simulated)
            printf(" %9s %9s %8s %8s %8s %8.1f %9.1f", human_ms(x->ttft.p50 * 1e3, t[0], 32),
                   human_ms(x->ttft.p95 * 1e3, t[1], 32), human_ms(x->tpot.p50 * 1e3, t[2], 32),
                   human_ms(x->tpot.p95 * 1e3, t[3], 32), human_ms(x->itl.p50 * 1e3, t[4], 32),
                   r->user_tps, r->out_tps);
        else
            printf(" %9s %9s %8s %8s %8s %8s %9s", "–", "–", "–", "–", "–", "–", "–");
        printf("  %s\n", r->verdict);
    }
    const struct cost_model *m = &rows[0].cm;
    printf("\nwindow = max_model_len (the server's setting); max_cc = full windows the KV cache "
           "holds; – = not simulated\n");
    printf("sources: GPU: %s\n         model: %s\n", m->gpu->source, m->model->source);
}

/* ---- arguments ------------------------------------------------------------------------- */

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -EINVAL;
    *out = v;
    return 0;
}

/* "a,b,c" into ints; the list is rewritten in place (argv strings are ours to cut). */
static int parse_int_list(char *s, long lo, long hi, int *out, size_t *n)
{
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == PLAN_MAX_LIST || parse_int(tok, lo, hi, &out[*n]))
            return -EINVAL;
        (*n)++;
    }
    return *n ? 0 : -EINVAL;
}

static int parse_str_list(char *s, const char **out, size_t *n)
{
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == PLAN_MAX_LIST)
            return -EINVAL;
        out[(*n)++] = tok;
    }
    return *n ? 0 : -EINVAL;
}

/* "MIN-MAX" or "N" (both MIN and MAX). */
static int parse_range(char *s, int *lo, int *hi)
{
    char *dash = strchr(s, '-');
    if (dash)
        *dash = '\0';
    int rc = parse_int(s, 1, 10000000, lo);
    if (!rc)
        rc = dash ? parse_int(dash + 1, 1, 10000000, hi) : (*hi = *lo, 0);
    return rc || *hi < *lo ? -EINVAL : 0;
}

static void plan_usage(void)
{
    fprintf(
        stderr,
        "usage: testbench plan --gpu NAME --model NAME [--quantization Q[,Q...]]\n"
        "    [--kv-cache-dtype D] [--max-model-len N[,N...]] [--prompt-tokens N]\n"
        "    [--output-tokens N] [--users N[,N...]] [--requests N] [--warmup-requests N]\n"
        "    [--population sessions|streams] [--turns N] [--think-time-s X]\n"
        "    [--think-time-distribution fixed|exponential|lognormal] [--message-tokens MIN-MAX]\n"
        "    [--start-spread-s X] [--shared-prefix-tokens N] [--api completions|chat]\n"
        "    [--max-num-seqs N] [--max-num-batched-tokens N] [--gpu-memory-utilization F]\n"
        "    [--tensor-parallel-size N] [--p2p on|off] [--numa-nodes N]\n"
        "    [--servers-per-host N] [--catalog DIR] [--slo PROFILE] [--slo-ttft-ms X]\n"
        "    [--slo-tpot-ms X] [--no-enable-prefix-caching] [--calibration FILE] [--json]\n"
        "Defaults: %d users in conversation (sessions of %d turns, think time exponential\n"
        "mean %g s, first prompt %d tokens, later messages 64-256 tokens, answers %d tokens,\n"
        "two conversations each); window (max_model_len) %d or the model's own if smaller;\n"
        "SLO profile %s (%s).\n"
        "--population streams: closed-loop request streams without think time (a batch job),\n"
        "max(users x 4, 32) requests. --tenancy FILE plans several tenants (docs/TENANCY.md).\n",
        PLAN_DEFAULT_USERS, 4, 5.0, PLAN_DEFAULT_PROMPT, PLAN_DEFAULT_OUTPUT, PLAN_DEFAULT_WINDOW,
        SLO_PROFILE_DEFAULT, slo_profile_default()->use);
}

enum {
    OPT_GPU = 256,
    OPT_MODEL,
    OPT_QUANT,
    OPT_KV,
    OPT_WINDOW,
    OPT_PROMPT,
    OPT_OUTPUT,
    OPT_USERS,
    OPT_REQUESTS,
    OPT_WARMUP,
    OPT_SEQS,
    OPT_MBT,
    OPT_UTIL,
    OPT_TP,
    OPT_CATALOG,
    OPT_TTFT,
    OPT_TPOT,
    OPT_NO_PC,
    OPT_JSON,
    OPT_HELP,
    OPT_CALIBRATION,
    OPT_POPULATION,
    OPT_TURNS,
    OPT_THINK,
    OPT_THINK_DIST,
    OPT_MESSAGE,
    OPT_SPREAD,
    OPT_PREFIX,
    OPT_API,
    OPT_SLO,
    OPT_CONTEXT,
    OPT_P2P,
    OPT_NUMA,
    OPT_SERVERS,
    OPT_END, /* one past the last; plan_long_opts lists them in this order */
};

static const struct option plan_long_opts[] = {
    {"gpu", required_argument, NULL, OPT_GPU},
    {"model", required_argument, NULL, OPT_MODEL},
    {"quantization", required_argument, NULL, OPT_QUANT},
    {"kv-cache-dtype", required_argument, NULL, OPT_KV},
    {"max-model-len", required_argument, NULL, OPT_WINDOW},
    {"prompt-tokens", required_argument, NULL, OPT_PROMPT},
    {"output-tokens", required_argument, NULL, OPT_OUTPUT},
    {"users", required_argument, NULL, OPT_USERS},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"warmup-requests", required_argument, NULL, OPT_WARMUP},
    {"max-num-seqs", required_argument, NULL, OPT_SEQS},
    {"max-num-batched-tokens", required_argument, NULL, OPT_MBT},
    {"gpu-memory-utilization", required_argument, NULL, OPT_UTIL},
    {"tensor-parallel-size", required_argument, NULL, OPT_TP},
    {"catalog", required_argument, NULL, OPT_CATALOG},
    {"slo-ttft-ms", required_argument, NULL, OPT_TTFT},
    {"slo-tpot-ms", required_argument, NULL, OPT_TPOT},
    {"no-enable-prefix-caching", no_argument, NULL, OPT_NO_PC},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {"calibration", required_argument, NULL, OPT_CALIBRATION},
    {"population", required_argument, NULL, OPT_POPULATION},
    {"turns", required_argument, NULL, OPT_TURNS},
    {"think-time-s", required_argument, NULL, OPT_THINK},
    {"think-time-distribution", required_argument, NULL, OPT_THINK_DIST},
    {"message-tokens", required_argument, NULL, OPT_MESSAGE},
    {"start-spread-s", required_argument, NULL, OPT_SPREAD},
    {"shared-prefix-tokens", required_argument, NULL, OPT_PREFIX},
    {"api", required_argument, NULL, OPT_API},
    {"slo", required_argument, NULL, OPT_SLO},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"p2p", required_argument, NULL, OPT_P2P},
    {"numa-nodes", required_argument, NULL, OPT_NUMA},
    {"servers-per-host", required_argument, NULL, OPT_SERVERS},
    {NULL, 0, NULL, 0},
};

/* What an option takes, for "bad value" messages. */
static const char *opt_range(int c)
{
    switch (c) {
    case OPT_QUANT:
        return "a quantization name, or a comma-separated list of up to 32";
    case OPT_WINDOW:
        return "a whole number of tokens from 16 to 10000000, or a comma-separated list of up to "
               "32";
    case OPT_PROMPT:
    case OPT_OUTPUT:
    case OPT_REQUESTS:
    case OPT_MBT:
        return "a whole number from 1 to 10000000";
    case OPT_WARMUP:
        return "a whole number from 0 to 10000000";
    case OPT_USERS:
        return "a whole number from 1 to 100000, or a comma-separated list of up to 32";
    case OPT_SEQS:
        return "a whole number from 1 to 1000000";
    case OPT_UTIL:
        return "a fraction above 0 and at most 1";
    case OPT_TP:
        return "a whole number of GPUs from 1 to 64";
    case OPT_P2P:
        return "on or off";
    case OPT_NUMA:
        return "a whole number of CPU sockets from 1 to the tensor-parallel size";
    case OPT_SERVERS:
        return "a whole number of servers from 1 to 64";
    case OPT_TURNS:
        return "a whole number from 1 to 1000";
    case OPT_THINK:
    case OPT_SPREAD:
        return "seconds from 0 to 86400";
    case OPT_THINK_DIST:
        return "fixed, exponential or lognormal";
    case OPT_MESSAGE:
        return "MIN-MAX or N, whole numbers of tokens from 1";
    case OPT_PREFIX:
        return "a whole number from 0 to 10000000";
    case OPT_POPULATION:
        return "sessions (users in conversation) or streams (closed-loop request streams)";
    case OPT_API:
        return "completions or chat";
    case OPT_TTFT:
    case OPT_TPOT:
        return "milliseconds above 0";
    default:
        return "see testbench help plan";
    }
}

static int parse_slo_profile(const char *name, struct plan_opts *o)
{
    const struct slo_profile *p = slo_profile_find(name);
    if (!p) {
        log_error("plan: unknown SLO profile '%s' (profiles: %s)", name, slo_profile_names());
        return -EINVAL;
    }
    slo_from_profile(&o->slo, p); /* --slo-*-ms replace its values afterwards */
    return 0;
}

static int plan_option(int c, char *arg, struct plan_opts *o, bool *chat, double *ttft,
                       double *tpot)
{
    switch (c) {
    case OPT_GPU:
        o->gpu = arg;
        return 0;
    case OPT_MODEL:
        o->model = arg;
        return 0;
    case OPT_QUANT:
        return parse_str_list(arg, o->quants, &o->n_quants);
    case OPT_KV:
        o->kv_dtype = arg;
        return 0;
    case OPT_WINDOW:
        return parse_int_list(arg, 16, 10000000, o->windows, &o->n_windows);
    case OPT_PROMPT:
        return parse_int(arg, 1, 10000000, &o->prompt_tokens);
    case OPT_OUTPUT:
        return parse_int(arg, 1, 10000000, &o->output_tokens);
    case OPT_USERS:
        return parse_int_list(arg, 1, 100000, o->users, &o->n_users);
    case OPT_REQUESTS:
        return parse_int(arg, 1, 10000000, &o->requests);
    case OPT_WARMUP:
        return parse_int(arg, 0, 10000000, &o->warmup_requests);
    case OPT_SEQS:
        return parse_int(arg, 1, 1000000, &o->max_num_seqs);
    case OPT_MBT:
        return parse_int(arg, 1, 10000000, &o->max_num_batched_tokens);
    case OPT_UTIL:
        return parse_double(arg, 1e-9, 1, &o->gpu_memory_utilization);
    case OPT_TP:
        return parse_int(arg, 1, 64, &o->tp);
    case OPT_P2P:
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0)
            return -EINVAL;
        o->p2p = strcmp(arg, "on") == 0 ? ENGINE_P2P_ON : ENGINE_P2P_OFF;
        return 0;
    case OPT_NUMA:
        return parse_int(arg, 1, 64, &o->numa_nodes);
    case OPT_SERVERS:
        return parse_int(arg, 1, 64, &o->host_servers);
    case OPT_CATALOG:
        o->catalog_dir = arg;
        return 0;
    case OPT_TTFT:
        return parse_double(arg, 1e-9, 1e12, ttft);
    case OPT_TPOT:
        return parse_double(arg, 1e-9, 1e12, tpot);
    case OPT_NO_PC:
        o->prefix_caching = false;
        return 0;
    case OPT_JSON:
        o->json = true;
        return 0;
    case OPT_CALIBRATION:
        o->calibration_path = arg;
        return 0;
    case OPT_POPULATION:
        if (strcmp(arg, "sessions") == 0)
            o->population = VD_SESSIONS;
        else if (strcmp(arg, "streams") == 0)
            o->population = VD_STREAMS;
        else
            return -EINVAL;
        return 0;
    case OPT_TURNS:
        return parse_int(arg, 1, 1000, &o->session.turns);
    case OPT_THINK:
        return parse_double(arg, 0, 86400, &o->session.think_time_s);
    case OPT_THINK_DIST:
        return think_dist_parse(arg, &o->session.think);
    case OPT_MESSAGE:
        return parse_range(arg, &o->session.message_tokens_min, &o->session.message_tokens_max);
    case OPT_SPREAD:
        return parse_double(arg, 0, 86400, &o->session.start_spread_s);
    case OPT_PREFIX:
        return parse_int(arg, 0, 10000000, &o->shared_prefix);
    case OPT_API:
        if (strcmp(arg, "chat") != 0 && strcmp(arg, "completions") != 0)
            return -EINVAL;
        *chat = strcmp(arg, "chat") == 0;
        return 0;
    default:
        return -EINVAL;
    }
}

/* Returns 0, 1 (help printed), -EINVAL (a usage error: print the usage) or -EBADMSG (an error
 * already explained, such as a bad value or calibration profile: the usage would bury it). */
static int plan_parse(int argc, char **argv, struct plan_opts *o)
{
    plan_opts_defaults(o);
    o->output_tokens = PLAN_DEFAULT_OUTPUT;
    o->think_seed = run_point_seed(PLAN_DEFAULT_SEED, 0, 0, "think");
    bool chat = false;
    double ttft = NAN, tpot = NAN;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", plan_long_opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            plan_usage();
            return 1;
        }
        if (c == OPT_CONTEXT) {
            log_error("plan: --context is gone: it meant both the window and a prompt filling "
                      "it. The window is --max-model-len N, the prompt --prompt-tokens N "
                      "(docs/CONFIG.md, \"Window and prompt\")");
            return -EBADMSG;
        }
        if (c == OPT_SLO) {
            if (parse_slo_profile(optarg, o))
                return -EBADMSG;
            continue;
        }
        if (c < OPT_GPU || c >= OPT_END) {
            log_error("plan: unknown or incomplete option '%s'", argv[optind - 1]);
            return -EINVAL;
        }
        /* One model per plan: its rows share that model's memory plan and catalog entry. A
         * list would be planned as one model of that name, so it is refused. */
        if (c == OPT_MODEL && strchr(optarg, ',')) {
            log_error("plan: --model takes one model, '%s' names several; run plan once per "
                      "model (testbench catalog models lists them)",
                      optarg);
            return -EBADMSG;
        }
        if (plan_option(c, optarg, o, &chat, &ttft, &tpot)) {
            log_error("plan: bad value '%s' for --%s: %s", optarg, plan_long_opts[c - OPT_GPU].name,
                      opt_range(c));
            return -EBADMSG;
        }
    }
    /* Objectives given on their own replace the profile's, whatever the order. */
    if (!isnan(ttft))
        o->slo.ttft_ms = ttft;
    if (!isnan(tpot))
        o->slo.tpot_ms = tpot;
    o->turn_tokens = chat ? PLAN_CHAT_TURN_TOKENS : 0;
    if (optind < argc) {
        log_error("plan: unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (!o->gpu || !o->model) {
        log_error("plan: --gpu and --model are required");
        return -EINVAL;
    }
    if (o->calibration_path) {
        char err[512];
        if (cost_calibration_load(&o->cal, o->calibration_path, err, sizeof(err))) {
            log_error("plan: %s", err);
            return -EBADMSG; /* said in one line: the usage would bury it */
        }
        o->have_cal = true;
    }
    if (!o->n_quants) {
        o->quants[0] = NULL;
        o->n_quants = 1;
    }
    if (!o->n_users) {
        o->users[0] = PLAN_DEFAULT_USERS;
        o->n_users = 1;
    }
    if (!o->prompt_tokens)
        o->prompt_tokens = PLAN_DEFAULT_PROMPT;
    return 0;
}

/* Tokens one request may carry: its prompt and output, with sessions its whole conversation
 * at the last turn (every answer and the largest follow-ups). */
static long long plan_request_tokens(const struct plan_opts *o, const struct plan_row *r)
{
    long long per = (long long)r->prompt + r->output;
    if (o->population == VD_SESSIONS && o->session.turns > 1)
        per += (long long)(o->session.turns - 1) *
               (r->output + o->session.message_tokens_max + o->turn_tokens);
    return per;
}

/* The requests a row simulates, within PLAN_MAX_SIM_TOKENS; 0, or -E2BIG (said). */
static int plan_requests_bounded(const struct plan_opts *o, struct plan_row *r)
{
    long long per = plan_request_tokens(o, r);
    long long cap = PLAN_MAX_SIM_TOKENS / per;
    int unit = o->population == VD_SESSIONS ? o->session.turns : 1; /* whole conversations */
    if ((long long)r->users * unit > cap) {
        log_error("plan: %d users of %lld tokens each (prompt + output%s) is more than a plan "
                  "simulates (%lld M tokens, every user sending at least one %s): at most %lld "
                  "users at these lengths, or a shorter --prompt-tokens",
                  r->users, per, unit > 1 ? ", a whole conversation" : "",
                  PLAN_MAX_SIM_TOKENS / 1000000, unit > 1 ? "conversation" : "request", cap / unit);
        return -E2BIG;
    }
    if (o->requests) {
        if (o->requests > cap) {
            log_error("plan: --requests %d of %lld tokens each is more than a plan simulates "
                      "(%lld M tokens): at most %lld at these lengths",
                      o->requests, per, PLAN_MAX_SIM_TOKENS / 1000000, cap);
            return -E2BIG;
        }
        r->requests = o->requests;
        return 0;
    }
    r->requests = plan_requests_for(o, r->users);
    if (r->requests > cap) {
        long long fit = cap / unit * unit;
        log_info("plan: %d users at %lld tokens per request: %lld requests simulated instead of "
                 "%d (a plan simulates at most %lld M tokens)",
                 r->users, per, fit, r->requests, PLAN_MAX_SIM_TOKENS / 1000000);
        r->requests = (int)fit;
    }
    return 0;
}

/* Each row's inputs; a TB_EXIT code when the lengths cannot fit a window. */
static int rows_fill(const struct plan_opts *o, const struct model_spec *md, struct plan_row *rows)
{
    size_t k = 0;
    for (size_t qi = 0; qi < o->n_quants; qi++) {
        for (size_t wi = 0; wi < o->n_windows; wi++) {
            for (size_t ui = 0; ui < o->n_users; ui++) {
                struct plan_row *r = &rows[k++];
                r->quant = o->quants[qi];
                r->window = o->windows[wi];
                r->output = o->output_tokens;
                r->prompt = o->prompt_tokens;
                if (r->window > md->max_model_len) {
                    log_error("plan: --max-model-len %d exceeds %s's own %d", r->window, md->name,
                              md->max_model_len);
                    return TB_EXIT_USAGE;
                }
                if (r->prompt + r->output > r->window) {
                    log_error("plan: prompt %d + output %d tokens exceed the window "
                              "(--max-model-len) %d",
                              r->prompt, r->output, r->window);
                    return TB_EXIT_USAGE;
                }
                r->users = o->users[ui];
                if (plan_requests_bounded(o, r))
                    return TB_EXIT_USAGE;
                if (o->warmup_requests >= r->requests) {
                    log_error("plan: --warmup-requests %d leaves none of the %d requests to judge "
                              "(%d users): fewer, or more --requests",
                              o->warmup_requests, r->requests, r->users);
                    return TB_EXIT_USAGE;
                }
                r->warmup = o->warmup_requests;
            }
        }
    }
    return 0;
}

static void plan_print(const struct plan_opts *o, const struct plan_row *rows, size_t nrows,
                       const struct plan_floor *floors)
{
    if (o->json) {
        json_t *out;
        if (nrows == 1) {
            out = plan_row_json(o, &rows[0], &floors[0]);
        } else {
            json_t *arr = json_array();
            for (size_t i = 0; i < nrows; i++)
                json_array_append_new(arr, plan_row_json(o, &rows[i], &floors[i]));
            out = json_object();
            json_object_set_new(out, "rows", arr);
        }
        char *s = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(out);
    } else if (nrows == 1) {
        print_row_text(o, &rows[0], &floors[0]);
    } else {
        printf("testbench plan: %s on %s\n\n", rows[0].cm.model->name,
               rows[0].cm.gpu->display_name);
        print_table(o, rows, nrows);
    }
}

/* Misses at one user mean no user count meets the SLO: say the floor. */
static void rows_floor(const struct plan_opts *o, const struct catalog *cat, struct plan_row *rows,
                       size_t nrows, struct plan_floor *floors)
{
    for (size_t i = 0; i < nrows; i++) {
        struct plan_row *r = &rows[i];
        if (!r->simulated || r->ok)
            continue;
        struct plan_row one = {.quant = r->quant,
                               .window = r->window,
                               .prompt = r->prompt,
                               .output = r->output,
                               .users = 1};
        one.requests = plan_requests_for(o, 1);
        if (r->users == 1)
            one = *r;
        else if (plan_row_run(o, cat, &one) || !one.simulated)
            continue;
        plan_floor_judge(&o->slo, one.res.at_pct, &floors[i]);
    }
}

int plan_main(int argc, char **argv)
{
    struct plan_opts o;
    int rc = plan_parse(argc, argv, &o);
    if (rc) {
        if (rc == -EINVAL) /* a usage error; an explained one (-EBADMSG) stands alone */
            plan_usage();
        return rc < 0 ? TB_EXIT_USAGE : TB_EXIT_OK;
    }
    struct catalog *cat = NULL;
    char err[512];
    if (catalog_load(&cat, o.catalog_dir, err, sizeof(err))) {
        log_error("plan: %s", err);
        return TB_EXIT_USAGE;
    }
    const struct model_spec *md = catalog_find_model(cat, o.model);
    if (!md) {
        char close[256];
        catalog_suggest(cat, "model", o.model, close, sizeof(close));
        log_error("plan: unknown model '%s' (close: %s)", o.model, close);
        catalog_free(cat);
        return TB_EXIT_USAGE;
    }
    /* A profile fitted on another card describes that card's kernels and memory. */
    const struct gpu_spec *pg = catalog_find_gpu(cat, o.gpu);
    if (o.have_cal && pg && cost_calibration_other_gpu(&o.cal, pg->name, pg->display_name))
        log_warn("plan: the calibration profile %s was fitted on %s, not %s: its efficiencies "
                 "describe that GPU (the uncertainty band is the uncalibrated one)",
                 o.calibration_path, o.cal.gpu, pg->name);
    if (!o.n_windows) {
        o.windows[0] =
            md->max_model_len < PLAN_DEFAULT_WINDOW ? md->max_model_len : PLAN_DEFAULT_WINDOW;
        if (o.prompt_tokens + o.output_tokens > o.windows[0] &&
            o.prompt_tokens + o.output_tokens <= md->max_model_len)
            o.windows[0] = o.prompt_tokens + o.output_tokens; /* a long prompt: its window */
        o.n_windows = 1;
    }
    size_t nrows = o.n_quants * o.n_windows * o.n_users;
    struct plan_row *rows = xcalloc(nrows, sizeof(*rows));
    struct plan_floor *floors = xcalloc(nrows, sizeof(*floors));
    int exit_code = rows_fill(&o, md, rows);
    for (size_t i = 0; i < nrows && !exit_code; i++)
        exit_code = plan_row_run(&o, cat, &rows[i]);
    if (!exit_code) {
        rows_floor(&o, cat, rows, nrows, floors);
        plan_print(&o, rows, nrows, floors);
    }
    free(floors);
    free(rows);
    catalog_free(cat);
    return exit_code;
}
