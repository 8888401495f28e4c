/* test_engine.c - memory plan, roofline step times, batching, KV pressure, prefix cache, aborts. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/catalog.h"
#include "engine/calibration.h"
#include "engine/cost.h"
#include "engine/engine.h"

static struct engine_config cfg_of(const char *gpu, const char *model, const char *quant)
{
    struct engine_config c;
    memset(&c, 0, sizeof(c));
    c.gpu = gpu;
    c.model = model;
    c.quantization = quant;
    c.enable_prefix_caching = -1;
    return c;
}

static struct engine *new_engine(const struct engine_config *c)
{
    struct engine *e = NULL;
    char err[512];
    int rc = engine_new(&e, c, err, sizeof(err));
    if (rc)
        fprintf(stderr, "engine_new: %s\n", err);
    assert_int_equal(rc, 0);
    return e;
}

/* Per-request bookkeeping for the drivers below. */
struct track {
    double t_add, t_first, t_last;
    int tokens;
    int cached;
    bool done;
    int events_after_abort;
};

struct drive {
    double now;
    struct track *t;
    long events;
    uint64_t aborted_id;
    bool check_aborted;
    int aborted_events;
};

static void on_event(void *ctx, const struct engine_event *ev)
{
    struct drive *d = ctx;
    struct track *t = ev->user;
    d->events++;
    if (d->check_aborted && ev->id == d->aborted_id)
        d->aborted_events++;
    if (ev->new_tokens) {
        if (ev->first) {
            t->t_first = d->now;
            t->cached = ev->cached_prompt_tokens;
        }
        t->t_last = d->now;
        t->tokens += ev->new_tokens;
        assert_int_equal(t->tokens, ev->total_tokens);
    }
    if (ev->finish != FINISH_NONE)
        t->done = true;
}

static void add_req(struct engine *e, uint64_t id, const uint32_t *prompt, size_t n, int out,
                    struct track *t, double now)
{
    char err[256];
    struct engine_request r = {
        .id = id, .prompt = prompt, .prompt_len = n, .max_tokens = out, .user = t};
    t->t_add = now;
    t->t_first = -1;
    assert_int_equal(engine_add(e, &r, err, sizeof(err)), 0);
}

/* Runs until idle; returns the virtual time. */
static double run_all(struct engine *e, struct drive *d)
{
    for (;;) {
        double s = engine_step_plan(e);
        if (s < 0)
            return d->now;
        assert_true(s > 0);
        d->now += s;
        engine_step_finish(e, d->now, on_event, d);
    }
}

static uint32_t *make_prompt(size_t n, uint32_t seed)
{
    uint32_t *p = malloc(n * sizeof(*p));
    for (size_t i = 0; i < n; i++)
        p[i] = (uint32_t)((i + 1) * 2654435761u) ^ seed;
    return p;
}

static void kv_bytes_and_capacity(void **state)
{
    (void)state;
    struct engine_config c = cfg_of("rtx-pro-6000", "meta-llama/Llama-3.1-70B-Instruct", "fp8");
    struct engine *e = new_engine(&c);
    const struct engine_info *i = engine_info(e);
    assert_int_equal((long)i->kv_bytes_per_token, 327680);
    assert_true(i->fits);
    /* Hand computation: budget = total × 0.9 − weights − activations/overhead. */
    double budget = i->total_gib * 0.9 - i->weights_gib - i->activation_gib;
    assert_true(fabs(budget - i->kv_budget_gib) < 1e-6);
    long blocks = (long)floor(i->kv_budget_gib * GIB / (16.0 * 327680.0));
    assert_int_equal(i->num_gpu_blocks, blocks);
    assert_int_equal(i->kv_capacity_tokens, blocks * 16);
    assert_true(fabs(i->total_gib - 97887.0 / 1024.0) < 1e-9);
    /* fp8 weights of a 70.6B model: ~1 byte each, lm_head/embeddings 16-bit. */
    assert_true(i->weights_gib > 65.0 && i->weights_gib < 70.0);
    engine_free(e);

    c = cfg_of("h100", "llama-3.1-8b", NULL);
    e = new_engine(&c);
    assert_int_equal((long)engine_info(e)->kv_bytes_per_token, 131072);
    double w = engine_info(e)->weights_gib;
    assert_true(fabs(w - 8.03e9 * 2 / GIB) < 0.01); /* bf16: 2 bytes per parameter */
    long cap16 = engine_info(e)->kv_capacity_tokens;
    assert_int_equal(engine_info(e)->max_num_seqs, 1024); /* >= 70 GiB: vLLM's large defaults */
    assert_int_equal(engine_info(e)->max_num_batched_tokens, 8192);
    engine_free(e);
    c.kv_cache_dtype = "fp8";
    e = new_engine(&c);
    assert_int_equal((long)engine_info(e)->kv_bytes_per_token, 65536);
    /* Same budget, half the bytes: twice the tokens (to a block). */
    assert_true(labs(engine_info(e)->kv_capacity_tokens - 2 * cap16) <= 16);
    engine_free(e);

    c = cfg_of("l40s", "llama-3.1-8b", NULL);
    e = new_engine(&c);
    assert_int_equal(engine_info(e)->max_num_seqs, 256);
    assert_int_equal(engine_info(e)->max_num_batched_tokens, 2048);
    engine_free(e);

    /* TP=2 halves weights and KV heads per GPU. */
    c = cfg_of("h100", "llama-3.1-70b", NULL);
    c.tensor_parallel_size = 2;
    e = new_engine(&c);
    assert_int_equal((long)engine_info(e)->kv_bytes_per_token, 163840);
    assert_true(engine_info(e)->weights_gib > 65 && engine_info(e)->weights_gib < 67);
    engine_free(e);

    /* Sliding windows: gpt-oss counts only its full-attention half per token, and a
     * request's window share makes concurrency a little lower than capacity / length. */
    c = cfg_of("h100", "openai/gpt-oss-20b", NULL);
    c.max_model_len = 32768;
    e = new_engine(&c);
    i = engine_info(e);
    assert_int_equal((long)i->kv_bytes_per_token, 2 * 12 * 8 * 64 * 2);
    double plain = (double)i->kv_capacity_tokens / 32768.0;
    assert_true(i->max_concurrency < plain && i->max_concurrency > plain * 0.95);
    engine_free(e);

    /* MXFP4 experts on a GPU without FP4 tensor cores take vLLM's Marlin layout, padded to
     * 256 (hidden) x 128 (intermediate): gpt-oss-120b on one H100 weighs what vLLM logs
     * ("Model loading took 65.97 GiB", vllm-project/vllm issue #23278), not the 60.7 GiB
     * of the unpadded checkpoint; on an RTX PRO 6000 (FP4 tensor cores) no padding. */
    c = cfg_of("h100", "openai/gpt-oss-120b", NULL);
    c.max_model_len = 4096;
    e = new_engine(&c);
    assert_true(fabs(engine_info(e)->weights_gib - 65.97) < 0.5);
    engine_free(e);
    c = cfg_of("rtx-pro-6000", "openai/gpt-oss-120b", NULL);
    c.max_model_len = 4096;
    e = new_engine(&c);
    assert_true(engine_info(e)->weights_gib > 60 && engine_info(e)->weights_gib < 61.5);
    engine_free(e);
}

static void errors(void **state)
{
    (void)state;
    struct engine *e = NULL;
    char err[512];
    struct engine_config c = cfg_of("l40s", "meta-llama/Llama-3.1-70B-Instruct", NULL);
    assert_int_equal(engine_new(&e, &c, err, sizeof(err)), -ENOSPC);
    assert_null(e);
    assert_non_null(strstr(err, "needs 131."));
    assert_non_null(strstr(err, "GiB for weights, has"));
    c = cfg_of("h1000", "llama-3.1-8b", NULL);
    assert_int_equal(engine_new(&e, &c, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "h100"));
    c = cfg_of("h100", "llama-3.1-9b", NULL);
    assert_int_equal(engine_new(&e, &c, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "Llama-3.1-8B"));
    c = cfg_of("h100", "llama-3.1-8b", "int3");
    assert_int_equal(engine_new(&e, &c, err, sizeof(err)), -ENOENT);
    c = cfg_of("h100", "llama-3.1-8b", NULL);
    c.max_model_len = 1 << 20;
    assert_int_equal(engine_new(&e, &c, err, sizeof(err)), -EINVAL);

    c = cfg_of("h100", "llama-3.1-8b", NULL);
    c.max_model_len = 4096;
    e = new_engine(&c);
    uint32_t p[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct engine_request r = {.id = 1, .prompt = p, .prompt_len = 8, .max_tokens = 4089};
    assert_int_equal(engine_add(e, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "4096"));
    r.max_tokens = 4088;
    assert_int_equal(engine_add(e, &r, err, sizeof(err)), 0);
    assert_int_equal(engine_add(e, &r, err, sizeof(err)), -EINVAL); /* duplicate id */
    engine_free(e);
}

static void single_stream_decode(void **state)
{
    (void)state;
    struct engine_config c = cfg_of("rtx-pro-6000", "llama-3.1-8b", NULL);
    struct engine *e = new_engine(&c);
    uint32_t *p = make_prompt(32, 7);
    struct track t = {0};
    struct drive d = {0};
    add_req(e, 1, p, 32, 20, &t, 0);
    double first = engine_step_plan(e);
    d.now += first;
    engine_step_finish(e, d.now, on_event, &d);
    assert_int_equal(t.tokens, 1);
    double step = engine_step_plan(e);
    /* Decode of one token at a tiny context: weights / (bandwidth × efficiency) + overhead,
     * where of Llama-3.1-8B's untied input embedding (128,256 × 4,096 × 2 B) only the one
     * token's row is read. */
    struct cost_calibration cal;
    cost_calibration_default(&cal);
    double read = engine_info(e)->weights_gib * GIB - 128256.0 * 4096 * 2 + 4096.0 * 2;
    double expect = read / (1792e9 * cal.p[CAL_WEIGHT_BW]) + cal.p[CAL_STEP_S] + cal.p[CAL_SEQ_S];
    assert_true(fabs(step - expect) / expect < 0.01);
    d.now += step;
    engine_step_finish(e, d.now, on_event, &d);
    run_all(e, &d);
    assert_true(t.done);
    assert_int_equal(t.tokens, 20);
    struct engine_counters ct;
    engine_counters(e, &ct);
    assert_int_equal(ct.generation_tokens, 20);
    assert_int_equal(ct.prompt_tokens, 32);
    assert_int_equal(ct.requests_finished, 1);
    assert_int_equal(ct.num_running, 0);
    assert_true(ct.kv_cache_usage == 0.0);
    engine_free(e);
    free(p);

    /* MoE at batch 1 reads only the routed experts: faster than streaming every weight (the
     * memory part; without the MoE layers' kernel floor, tested in moe_kernel_floor). */
    c = cfg_of("h100", "Qwen/Qwen3-30B-A3B", NULL);
    c.max_model_len = 4096;
    struct cost_calibration no_floor;
    cost_calibration_default(&no_floor);
    no_floor.p[CAL_MOE_LAYER_S] = 0;
    c.calibration = &no_floor;
    e = new_engine(&c);
    p = make_prompt(32, 9);
    memset(&t, 0, sizeof(t));
    add_req(e, 1, p, 32, 4, &t, 0);
    d.now += engine_step_plan(e);
    engine_step_finish(e, d.now, on_event, &d);
    step = engine_step_plan(e);
    double all = engine_info(e)->weights_gib * GIB / (3350e9 * cal.p[CAL_WEIGHT_BW]);
    assert_true(step < 0.3 * all);
    engine_free(e);
    free(p);
}

/* Runs n identical concurrent requests; returns aggregate tokens/s, sets mean TPOT. */
static double batch_run(int n, double *tpot)
{
    struct engine_config c = cfg_of("rtx-pro-6000", "llama-3.1-8b", NULL);
    struct engine *e = new_engine(&c);
    struct track *t = calloc((size_t)n, sizeof(*t));
    struct drive d = {0};
    uint32_t *p = make_prompt(256, 3);
    for (int i = 0; i < n; i++) {
        p[0] = (uint32_t)i;
        add_req(e, (uint64_t)i, p, 256, 64, &t[i], 0);
    }
    double end = run_all(e, &d);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        assert_true(t[i].done);
        sum += (t[i].t_last - t[i].t_first) / 63.0;
    }
    *tpot = sum / n;
    free(t);
    free(p);
    engine_free(e);
    return n * 64.0 / end;
}

static void batching(void **state)
{
    (void)state;
    double tpot1, tpot64;
    double thr1 = batch_run(1, &tpot1);
    double thr64 = batch_run(64, &tpot64);
    assert_true(thr64 > 10 * thr1); /* decode is bandwidth-bound: batching is nearly free */
    assert_true(tpot64 > tpot1);    /* but each user sees a slower stream */
}

static void kv_pressure(void **state)
{
    (void)state;
    /* A small KV budget: 8B bf16 on 96 GB at 20 % utilization leaves ~1-2 GiB. */
    struct engine_config c = cfg_of("rtx-pro-6000", "llama-3.1-8b", NULL);
    c.gpu_memory_utilization = 0.2;
    c.max_model_len = 4096;
    struct engine *e = new_engine(&c);
    long cap = engine_info(e)->kv_capacity_tokens;
    assert_true(cap > 4096 && cap < 40000);
    int n = (int)(cap / 1500) * 3; /* three times what fits at once */
    struct track *t = calloc((size_t)n, sizeof(*t));
    uint32_t *p = make_prompt(1000, 5);
    struct drive d = {0};
    for (int i = 0; i < n; i++) {
        p[0] = (uint32_t)i + 100;
        add_req(e, (uint64_t)i, p, 1000, 500, &t[i], 0);
    }
    int max_running = 0, waited = 0;
    for (;;) {
        double s = engine_step_plan(e);
        if (s < 0)
            break;
        struct engine_counters ct;
        engine_counters(e, &ct);
        assert_true(ct.kv_cache_usage <= 1.0);
        if (ct.num_running > max_running)
            max_running = ct.num_running;
        if (ct.num_waiting > 0)
            waited = 1;
        /* Never more requests in the batch than the cache holds blocks for. */
        assert_true((long)ct.num_running * 1 <= cap / 16);
        d.now += s;
        engine_step_finish(e, d.now, on_event, &d);
    }
    for (int i = 0; i < n; i++) {
        assert_true(t[i].done);
        assert_int_equal(t[i].tokens, 500);
    }
    struct engine_counters ct;
    engine_counters(e, &ct);
    assert_true(waited);
    assert_true(max_running <= cap / 1000 + 1); /* at most what the cache can hold */
    assert_true(ct.num_preemptions > 0);        /* admitted optimistically, then preempted */
    assert_int_equal(ct.requests_finished, (uint64_t)n);
    assert_true(ct.kv_cache_usage == 0.0);
    free(t);
    free(p);
    engine_free(e);
}

static void prefix_cache(void **state)
{
    (void)state;
    for (int on = 0; on <= 1; on++) {
        struct engine_config c = cfg_of("h100", "llama-3.1-8b", NULL);
        c.enable_prefix_caching = on;
        c.max_model_len = 8192;
        struct engine *e = new_engine(&c);
        uint32_t *p = make_prompt(4000, 11);
        struct track a = {0}, b = {0};
        struct drive d = {0};
        add_req(e, 1, p, 4000, 8, &a, d.now);
        run_all(e, &d);
        p[3990] ^= 0xffff; /* same 3,984-token prefix, different tail */
        add_req(e, 2, p, 4000, 8, &b, d.now);
        run_all(e, &d);
        struct engine_counters ct;
        engine_counters(e, &ct);
        double ttft_a = a.t_first - a.t_add, ttft_b = b.t_first - b.t_add;
        if (on) {
            assert_int_equal(b.cached, 3984);
            assert_int_equal(ct.prefix_cache_hits, 3984);
            assert_int_equal(ct.prefix_cache_queries, 8000);
            assert_true(ttft_b < 0.3 * ttft_a);
        } else {
            assert_int_equal(b.cached, 0);
            assert_int_equal(ct.prefix_cache_hits, 0);
            assert_true(fabs(ttft_b - ttft_a) < 0.05 * ttft_a);
        }
        free(p);
        engine_free(e);
    }
}

static void abort_mid_step(void **state)
{
    (void)state;
    struct engine_config c = cfg_of("h100", "llama-3.1-8b", NULL);
    c.max_model_len = 4096;
    c.max_num_seqs = 2;
    struct engine *e = new_engine(&c);
    uint32_t *p = make_prompt(100, 13);
    struct track t[4];
    memset(t, 0, sizeof(t));
    struct drive d = {0};
    for (int i = 0; i < 4; i++) {
        p[0] = (uint32_t)i;
        add_req(e, (uint64_t)i, p, 100, 10, &t[i], 0);
    }
    assert_true(engine_step_plan(e) > 0);
    engine_abort(e, 1);   /* running, in this step */
    engine_abort(e, 3);   /* still waiting (max_num_seqs 2) */
    engine_abort(e, 999); /* unknown: ignored */
    struct engine_counters ct;
    engine_counters(e, &ct);
    assert_int_equal(ct.num_running, 1);
    assert_int_equal(ct.num_waiting, 1);
    d.check_aborted = true;
    d.aborted_id = 1;
    d.now += 0.1;
    engine_step_finish(e, d.now, on_event, &d);
    assert_int_equal(d.aborted_events, 0);
    assert_int_equal(t[0].tokens, 1);
    /* Abort again mid-step while decoding, then let the rest finish. */
    assert_true(engine_step_plan(e) > 0);
    engine_abort(e, 0);
    d.aborted_id = 0;
    d.aborted_events = 0;
    d.now += 0.1;
    engine_step_finish(e, d.now, on_event, &d);
    assert_int_equal(d.aborted_events, 0);
    run_all(e, &d);
    assert_true(t[2].done && !t[0].done && !t[1].done && !t[3].done);
    engine_counters(e, &ct);
    assert_int_equal(ct.num_running, 0);
    assert_int_equal(ct.num_waiting, 0);
    assert_true(ct.kv_cache_usage == 0.0);
    assert_true(engine_step_plan(e) < 0);
    /* Free with requests in every state (running in a step, waiting, dead). */
    for (int i = 10; i < 14; i++)
        add_req(e, (uint64_t)i, p, 100, 10, &t[0], d.now);
    assert_true(engine_step_plan(e) > 0);
    engine_abort(e, 10);
    engine_free(e);
    free(p);
}

/* A decode step of 'tokens' requests on model m: its parts (docs/ENGINE.md, "Step duration"). */
static void decode_parts(const struct cost_model *m, long tokens, double *comm, double *ovh)
{
    struct step_load l = {.tokens = tokens, .seqs = (int)tokens, .sampled = (int)tokens};
    l.attn_full = l.kv_full = 1000.0 * (double)tokens;
    double c, mem;
    cost_step_parts(m, &l, &c, &mem, comm, ovh);
}

static void model_of(struct cost_model *m, const struct catalog *cat, const char *gpu, int tp,
                     int p2p, int numa, int servers)
{
    struct engine_config c = cfg_of(gpu, "llama-3.1-70b", "fp8");
    c.tensor_parallel_size = tp;
    c.p2p = p2p;
    c.numa_nodes = numa;
    c.host_servers = servers;
    char err[512];
    int rc = cost_model_init(m, cat, &c, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

/* The tensor-parallel all-reduce follows the group's path (docs/ENGINE.md, "Multi-GPU"): one
 * latency per all-reduce over NVLink (vLLM's custom kernel), 2 (TP - 1) ring steps over PCIe
 * peer-to-peer, across sockets at the cross-socket bandwidth, or staged through host memory
 * without peer-to-peer (GeForce, or p2p off); the CPU-side costs grow with the busy servers on
 * the host. */
static void tensor_parallel_topology(void **state)
{
    (void)state;
    struct catalog *cat = NULL;
    char err[512];
    assert_int_equal(catalog_load(&cat, NULL, err, sizeof(err)), 0);
    struct cost_calibration cal;
    cost_calibration_default(&cal);
    const double layers = 80, hidden = 8192, tokens = 64;
    double bytes = tokens * hidden * 2.0, comm, ovh;
    struct cost_model m;

    /* NVLink, TP 8: one latency per all-reduce whatever the group's size. */
    model_of(&m, cat, "h100-sxm", 8, ENGINE_P2P_CATALOG, 1, 1);
    decode_parts(&m, (long)tokens, &comm, &ovh);
    double want = 2 * layers * (cal.p[CAL_AR_NVLINK_S] + 2.0 * 7 / 8 * bytes / 450e9);
    assert_true(fabs(comm - want) / want < 1e-9);

    /* PCIe peer-to-peer on the RTX PRO 6000, TP 4: six ring steps at 55 GB/s. */
    model_of(&m, cat, "rtx-pro-6000", 4, ENGINE_P2P_CATALOG, 1, 1);
    assert_true(m.p2p);
    decode_parts(&m, (long)tokens, &comm, &ovh);
    want = 2 * layers * (6 * cal.p[CAL_HOP_PCIE_S] + 2.0 * 3 / 4 * bytes / 55e9);
    assert_true(fabs(comm - want) / want < 1e-9);
    double pcie = comm;

    /* Across two sockets: the same steps at the cross-socket bandwidth (39/54 of it). */
    model_of(&m, cat, "rtx-pro-6000", 4, ENGINE_P2P_CATALOG, 2, 1);
    decode_parts(&m, (long)tokens, &comm, &ovh);
    want = 2 * layers * (6 * cal.p[CAL_HOP_PCIE_S] + 2.0 * 3 / 4 * bytes / (55e9 * 39 / 54));
    assert_true(fabs(comm - want) / want < 1e-9);
    assert_true(comm > pcie);

    /* p2p off: staged through host memory, half the P2P bandwidth, the host hop per step. */
    model_of(&m, cat, "rtx-pro-6000", 4, ENGINE_P2P_OFF, 1, 1);
    assert_false(m.p2p);
    decode_parts(&m, (long)tokens, &comm, &ovh);
    want = 2 * layers * (6 * cal.p[CAL_HOP_HOST_S] + 2.0 * 3 / 4 * bytes / 27.5e9);
    assert_true(fabs(comm - want) / want < 1e-9);
    assert_true(comm > 10 * pcie);

    /* GeForce: the catalog says no peer-to-peer; --p2p on overrides it. */
    model_of(&m, cat, "rtx-5090", 2, ENGINE_P2P_CATALOG, 1, 1);
    assert_false(m.p2p);
    double host = 0;
    decode_parts(&m, (long)tokens, &host, &ovh);
    model_of(&m, cat, "rtx-5090", 2, ENGINE_P2P_ON, 1, 1);
    assert_true(m.p2p);
    decode_parts(&m, (long)tokens, &comm, &ovh);
    assert_true(comm < host);

    /* Several busy servers on one host: the CPU-side costs grow by host_contention each. */
    model_of(&m, cat, "rtx-pro-6000", 1, ENGINE_P2P_CATALOG, 1, 1);
    double alone = 0;
    decode_parts(&m, (long)tokens, &comm, &alone);
    assert_true(comm == 0.0);
    model_of(&m, cat, "rtx-pro-6000", 1, ENGINE_P2P_CATALOG, 1, 8);
    m.cal.p[CAL_HOST_CONTENTION] = 0.05;
    decode_parts(&m, (long)tokens, &comm, &ovh);
    assert_true(fabs(ovh - alone * 1.35) / alone < 1e-9);
    assert_true(fabs(cost_host_factor(&m) - 1.35) < 1e-12);
    /* ... and so does the cost before the engine sees a request (request_s). */
    struct cost_calibration busy = cal;
    busy.p[CAL_HOST_CONTENTION] = 0.05;
    struct engine_config ec = cfg_of("rtx-pro-6000", "llama-3.1-8b", NULL);
    ec.calibration = &busy;
    struct engine *e = new_engine(&ec);
    assert_true(fabs(engine_request_overhead(e) - cal.p[CAL_REQUEST_S]) < 1e-12);
    engine_free(e);
    ec.host_servers = 8;
    e = new_engine(&ec);
    assert_true(fabs(engine_request_overhead(e) - cal.p[CAL_REQUEST_S] * 1.35) < 1e-12);
    engine_free(e);

    /* numa_nodes beyond the group is an error. */
    struct engine_config c = cfg_of("rtx-pro-6000", "llama-3.1-70b", "fp8");
    c.tensor_parallel_size = 2;
    c.numa_nodes = 4;
    assert_int_equal(cost_model_init(&m, cat, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "numa_nodes 4"));
    catalog_free(cat);
}

/* GLM-4.5-Air AWQ on one H200: an MoE model whose first layer is dense. */
static struct catalog *glm_air(struct cost_model *m)
{
    struct catalog *cat = NULL;
    char err[512];
    assert_int_equal(catalog_load(&cat, NULL, err, sizeof(err)), 0);
    struct engine_config c = cfg_of("h200", "zai-org/GLM-4.5-Air", "awq");
    assert_int_equal(cost_model_init(m, cat, &c, err, sizeof(err)), 0);
    return cat;
}

/* The leading dense layers of an MoE model (first_k_dense_replace) have a dense MLP: GLM-4.5-Air
 * has 45 MoE layers of 128 experts, not 46, and the rest of its parameters are dense. */
static void dense_layers_of_a_moe_model(void **state)
{
    (void)state;
    struct cost_model m;
    struct catalog *cat = glm_air(&m);
    assert_true(fabs(m.expert_params - 128.0 * 3 * 4096 * 1408 * 45) < 1.0);
    assert_true(fabs(m.dense_params + m.expert_params + m.embed_params - 106.8e9) < 1e3);
    catalog_free(cat);
}

/* The MoE layer's kernel floor (docs/ENGINE.md, "Kernel floor"): a step of an MoE model takes
 * at least moe_layer_s per MoE layer on the GPU; the floor is a maximum with the roofline, so
 * a large step does not pay it, and a dense model has none. */
static void moe_kernel_floor(void **state)
{
    (void)state;
    struct cost_model m;
    struct catalog *cat = glm_air(&m);
    /* 46 layers, the first dense: 45 MoE layers. */
    assert_true(fabs(cost_kernel_floor_s(&m) - 45 * m.cal.p[CAL_MOE_LAYER_S]) < 1e-12);
    assert_true(m.cal.p[CAL_MOE_LAYER_S] > 0);

    /* One user decoding: the roofline is shorter than the floor, so the floor is the GPU time. */
    struct step_load one = {
        .tokens = 1, .seqs = 1, .sampled = 1, .attn_full = 1000, .kv_full = 1000};
    double cmp, mem, comm, ovh;
    cost_step_parts(&m, &one, &cmp, &mem, &comm, &ovh);
    assert_true(fmax(cmp, mem) < cost_kernel_floor_s(&m));
    assert_true(fabs(cost_step_time(&m, &one) - (cost_kernel_floor_s(&m) + comm + ovh)) < 1e-12);

    /* A full prefill step: the roofline is longer, and the step is the roofline alone. */
    struct step_load big = {
        .tokens = 8192, .seqs = 4, .sampled = 4, .attn_full = 8192.0 * 1024, .kv_full = 8192};
    cost_step_parts(&m, &big, &cmp, &mem, &comm, &ovh);
    assert_true(fmax(cmp, mem) > cost_kernel_floor_s(&m));
    assert_true(fabs(cost_step_time(&m, &big) - (fmax(cmp, mem) + comm + ovh)) < 1e-12);

    /* A dense model has no floor. */
    char err[512];
    struct engine_config c = cfg_of("h200", "llama-3.1-8b", NULL);
    assert_int_equal(cost_model_init(&m, cat, &c, err, sizeof(err)), 0);
    assert_true(cost_kernel_floor_s(&m) == 0.0);
    catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kv_bytes_and_capacity),
        cmocka_unit_test(errors),
        cmocka_unit_test(single_stream_decode),
        cmocka_unit_test(batching),
        cmocka_unit_test(kv_pressure),
        cmocka_unit_test(prefix_cache),
        cmocka_unit_test(abort_mid_step),
        cmocka_unit_test(tensor_parallel_topology),
        cmocka_unit_test(dense_layers_of_a_moe_model),
        cmocka_unit_test(moe_kernel_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
