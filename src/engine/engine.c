/*
 * engine.c - vLLM V1-style scheduler over a paged KV cache with prefix caching.
 *
 * Design (docs/ENGINE.md has the long form):
 *  - Blocks live in one pool. A free block sits on a doubly linked LRU list; if it still
 *    holds a cached prefix (hash != 0) it stays findable in the hash table until the
 *    allocator pops it from the list head (eviction). Freed request blocks go to the tail in
 *    reverse order (a request's last blocks are evicted first, as vLLM does); blocks without
 *    a hash go to the head, since nothing can reuse them.
 *  - Every step: running requests first, in order (1 decode token, or the rest of a chunked
 *    prefill), preempting the newest running request by recompute when blocks run out;
 *    then, if nothing was preempted, waiting requests FCFS within max_num_batched_tokens and
 *    max_num_seqs. Work per step is O(scheduled requests) plus O(new blocks).
 *  - Sliding-window layers (gpt-oss, Gemma 3) take a bounded number of extra blocks per
 *    request (cost_sliding_blocks); they are anonymous (never cached).
 *  - Aborts free blocks at once; a request scheduled in the current step keeps its struct
 *    (marked dead) until engine_step_finish, which skips it.
 */
#include "engine/engine.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/catalog.h"
#include "core/rng.h"
#include "engine/cost.h"

enum req_state { RS_WAITING, RS_RUNNING, RS_DEAD };

struct req {
    uint64_t id;
    void *user;
    int prompt_len;
    int max_tokens;
    int num_computed;  /* tokens whose KV is in the cache */
    int num_generated; /* tokens emitted */
    int cached_tokens; /* prefix hits at the last admission */
    int step_tokens;   /* tokens scheduled in the current step */
    bool in_step;
    bool first_emitted;
    enum req_state state;
    uint64_t salt;    /* hashes blocks past the prompt (their token ids are not known) */
    uint64_t *hashes; /* chained block hashes, computed lazily */
    int n_hashes, cap_hashes;
    int n_prompt_hashes; /* full prompt blocks, hashed at add time */
    int32_t *blocks;     /* full-attention blocks, in order */
    int n_blocks, cap_blocks;
    int n_registered;   /* leading blocks offered to the prefix cache */
    int32_t *sw_blocks; /* sliding-window share */
    int n_sw, cap_sw;
};

/* uint64 -> uint64 open-addressing table, linear probing, backward-shift deletion. */
struct u64map {
    uint64_t *keys;
    uint64_t *vals;
    uint8_t *used;
    size_t cap; /* power of two */
    size_t n;
};

struct engine {
    struct catalog *cat;
    struct cost_model cm;
    struct engine_info info;

    /* Block pool. */
    long nblocks;
    int32_t *ref;
    uint64_t *bhash;
    int32_t *prev, *next; /* free list links; -1 = none */
    int32_t free_head, free_tail;
    long n_free;
    struct u64map cache; /* block hash -> block id */

    /* Requests. */
    struct u64map reqs; /* id -> struct req * */
    struct req **running;
    size_t n_running, cap_running;
    struct req **wq; /* waiting ring buffer (may hold dead entries) */
    size_t wq_head, wq_len, wq_cap;
    int n_waiting;      /* live waiting requests */
    struct req **sched; /* this step's requests */
    size_t n_sched, cap_sched;
    bool planned;
    double planned_dur;

    struct engine_counters ctr;
    uint64_t salt_seq;
};

/* ---- u64map ---------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static void map_init(struct u64map *m, size_t want)
{
    size_t cap = 16;
    while (cap < want * 2)
        cap *= 2;
    m->cap = cap;
    m->n = 0;
    m->keys = xcalloc(cap, sizeof(*m->keys));
    m->vals = xcalloc(cap, sizeof(*m->vals));
    m->used = xcalloc(cap, 1);
}

static void map_release(struct u64map *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof(*m));
}

static bool map_get(const struct u64map *m, uint64_t key, uint64_t *val)
{
    size_t mask = m->cap - 1;
    for (size_t i = mix64(key) & mask; m->used[i]; i = (i + 1) & mask) {
        if (m->keys[i] == key) {
            if (val)
                *val = m->vals[i];
            return true;
        }
    }
    return false;
}

static void map_put(struct u64map *m, uint64_t key, uint64_t val);

static void map_grow(struct u64map *m)
{
    struct u64map old = *m;
    map_init(m, old.cap); /* doubles: map_init sizes to 2 × want */
    for (size_t i = 0; i < old.cap; i++)
        if (old.used[i])
            map_put(m, old.keys[i], old.vals[i]);
    map_release(&old);
}

static void map_put(struct u64map *m, uint64_t key, uint64_t val)
{
    if ((m->n + 1) * 4 > m->cap * 3)
        map_grow(m);
    size_t mask = m->cap - 1;
    size_t i = mix64(key) & mask;
    for (; m->used[i]; i = (i + 1) & mask) {
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return;
        }
    }
    m->used[i] = 1;
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
}

static void map_del(struct u64map *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    size_t i = mix64(key) & mask;
    for (; m->used[i]; i = (i + 1) & mask)
        if (m->keys[i] == key)
            break;
    if (!m->used[i])
        return;
    /* Backward shift: move later entries of the cluster into the hole when allowed. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->used[j])
            break;
        size_t home = mix64(m->keys[j]) & mask;
        /* Entry j may move to i if its home is not in (i, j] cyclically. */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (between)
            continue;
        m->keys[i] = m->keys[j];
        m->vals[i] = m->vals[j];
        i = j;
    }
    m->used[i] = 0;
    m->n--;
}

/* ---- block pool ------------------------------------------------------------------------ */

static void fl_remove(struct engine *e, int32_t b)
{
    int32_t p = e->prev[b], n = e->next[b];
    if (p >= 0)
        e->next[p] = n;
    else
        e->free_head = n;
    if (n >= 0)
        e->prev[n] = p;
    else
        e->free_tail = p;
    e->prev[b] = e->next[b] = -1;
    e->n_free--;
}

static void fl_push_tail(struct engine *e, int32_t b)
{
    e->prev[b] = e->free_tail;
    e->next[b] = -1;
    if (e->free_tail >= 0)
        e->next[e->free_tail] = b;
    else
        e->free_head = b;
    e->free_tail = b;
    e->n_free++;
}

static void fl_push_head(struct engine *e, int32_t b)
{
    e->next[b] = e->free_head;
    e->prev[b] = -1;
    if (e->free_head >= 0)
        e->prev[e->free_head] = b;
    else
        e->free_tail = b;
    e->free_head = b;
    e->n_free++;
}

/* Pops the least recently freed block, evicting its cached prefix. Caller checked n_free. */
static int32_t block_alloc(struct engine *e)
{
    int32_t b = e->free_head;
    fl_remove(e, b);
    if (e->bhash[b]) {
        map_del(&e->cache, e->bhash[b]);
        e->bhash[b] = 0;
    }
    e->ref[b] = 1;
    return b;
}

static void block_release(struct engine *e, int32_t b)
{
    if (--e->ref[b] > 0)
        return;
    if (e->bhash[b])
        fl_push_tail(e, b);
    else
        fl_push_head(e, b);
}

/* ---- requests -------------------------------------------------------------------------- */

static void *grow_array(void *p, int *cap, int need, size_t size)
{
    if (need <= *cap)
        return p;
    int c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    *cap = c;
    return xreallocarray(p, (size_t)c, size);
}

/* Hash of full block i of r (chained over the parent). Prompt blocks were hashed from the
 * token ids at add time; later blocks hold generated tokens, hashed from a per-request salt
 * so that a preempted request can find its own blocks again. */
static uint64_t req_hash(struct req *r, int i)
{
    while (r->n_hashes <= i) {
        int k = r->n_hashes;
        r->hashes = grow_array(r->hashes, &r->cap_hashes, k + 1, sizeof(*r->hashes));
        uint64_t parent = k ? r->hashes[k - 1] : 0x9e3779b97f4a7c15ull;
        uint64_t h = mix64(parent ^ mix64(r->salt + (uint64_t)k));
        r->hashes[k] = h ? h : 1;
        r->n_hashes++;
    }
    return r->hashes[i];
}

static void req_free_blocks(struct engine *e, struct req *r)
{
    for (int i = r->n_sw - 1; i >= 0; i--)
        block_release(e, r->sw_blocks[i]);
    for (int i = r->n_blocks - 1; i >= 0; i--)
        block_release(e, r->blocks[i]);
    r->n_sw = 0;
    r->n_blocks = 0;
    r->n_registered = 0;
}

static void req_destroy(struct req *r)
{
    if (!r)
        return;
    free(r->hashes);
    free(r->blocks);
    free(r->sw_blocks);
    free(r);
}

/* Offers r's full, scheduled blocks to the prefix cache. */
static void req_register(struct engine *e, struct req *r, int tokens)
{
    if (!e->cm.prefix_caching)
        return;
    int full = tokens / e->cm.block_size;
    if (full > r->n_blocks)
        full = r->n_blocks;
    for (; r->n_registered < full; r->n_registered++) {
        int32_t b = r->blocks[r->n_registered];
        if (e->bhash[b])
            continue; /* a prefix hit: already cached */
        uint64_t h = req_hash(r, r->n_registered);
        if (map_get(&e->cache, h, NULL))
            continue; /* the same content is cached in another block */
        e->bhash[b] = h;
        map_put(&e->cache, h, (uint64_t)b);
    }
}

/* Makes room for r to hold 'tokens' tokens. false (and nothing changed) if the pool is short. */
static bool req_alloc(struct engine *e, struct req *r, int tokens)
{
    long bs = e->cm.block_size;
    long want = (tokens + bs - 1) / bs;
    long need = want > r->n_blocks ? want - r->n_blocks : 0;
    long sw_want = cost_sliding_blocks(&e->cm, tokens);
    long sw_need = sw_want > r->n_sw ? sw_want - r->n_sw : 0;
    if (need + sw_need > e->n_free)
        return false;
    if (need) {
        r->blocks = grow_array(r->blocks, &r->cap_blocks, (int)want, sizeof(*r->blocks));
        for (long i = 0; i < need; i++)
            r->blocks[r->n_blocks++] = block_alloc(e);
    }
    if (sw_need) {
        r->sw_blocks = grow_array(r->sw_blocks, &r->cap_sw, (int)sw_want, sizeof(*r->sw_blocks));
        for (long i = 0; i < sw_need; i++)
            r->sw_blocks[r->n_sw++] = block_alloc(e);
    }
    req_register(e, r, tokens);
    return true;
}

/* ---- queues ---------------------------------------------------------------------------- */

static void wq_reserve(struct engine *e)
{
    if (e->wq_len < e->wq_cap)
        return;
    size_t nc = e->wq_cap ? e->wq_cap * 2 : 64;
    struct req **n = xcalloc(nc, sizeof(*n));
    for (size_t i = 0; i < e->wq_len; i++)
        n[i] = e->wq[(e->wq_head + i) % e->wq_cap];
    free(e->wq);
    e->wq = n;
    e->wq_cap = nc;
    e->wq_head = 0;
}

static void wq_push_back(struct engine *e, struct req *r)
{
    wq_reserve(e);
    e->wq[(e->wq_head + e->wq_len) % e->wq_cap] = r;
    e->wq_len++;
}

static void wq_push_front(struct engine *e, struct req *r)
{
    wq_reserve(e);
    e->wq_head = (e->wq_head + e->wq_cap - 1) % e->wq_cap;
    e->wq[e->wq_head] = r;
    e->wq_len++;
}

/* The first live waiting request (dead ones at the front are freed on the way). */
static struct req *wq_front(struct engine *e)
{
    while (e->wq_len) {
        struct req *r = e->wq[e->wq_head];
        if (r->state != RS_DEAD)
            return r;
        e->wq_head = (e->wq_head + 1) % e->wq_cap;
        e->wq_len--;
        req_destroy(r);
    }
    return NULL;
}

static void wq_pop(struct engine *e)
{
    e->wq_head = (e->wq_head + 1) % e->wq_cap;
    e->wq_len--;
}

static void running_push(struct engine *e, struct req *r)
{
    if (e->n_running == e->cap_running) {
        e->cap_running = e->cap_running ? e->cap_running * 2 : 64;
        e->running = xreallocarray(e->running, e->cap_running, sizeof(*e->running));
    }
    e->running[e->n_running++] = r;
}

static void sched_push(struct engine *e, struct req *r, int n)
{
    if (e->n_sched == e->cap_sched) {
        e->cap_sched = e->cap_sched ? e->cap_sched * 2 : 64;
        e->sched = xreallocarray(e->sched, e->cap_sched, sizeof(*e->sched));
    }
    r->in_step = true;
    r->step_tokens = n;
    e->sched[e->n_sched++] = r;
}

/* ---- public API ------------------------------------------------------------------------ */

int engine_new(struct engine **out, const struct engine_config *cfg, char *err, size_t errlen)
{
    struct engine_config dflt;
    if (!cfg) {
        memset(&dflt, 0, sizeof(dflt));
        dflt.enable_prefix_caching = -1;
        cfg = &dflt;
    }
    struct engine *e = xcalloc(1, sizeof(*e));
    int rc = catalog_load(&e->cat, cfg->catalog_dir, err, errlen);
    if (rc)
        goto fail;
    rc = cost_model_init(&e->cm, e->cat, cfg, err, errlen);
    if (rc)
        goto fail;
    cost_model_info(&e->cm, &e->info);
    if (!e->cm.fits) {
        double avail = (e->cm.requested_bytes - e->cm.activation_bytes - e->cm.nontorch_bytes -
                        e->cm.lora_bytes) /
                       GIB;
        /* "CUDA out of memory" is what vLLM's log says when weights do not fit, so a log
         * reader (src/study/server_log.c) classifies the simulator's refusal the same way. */
        snprintf(err, errlen,
                 "CUDA out of memory: %s (%s) needs %.1f GiB for weights, has %.1f GiB on %s "
                 "(%.0f MiB x %.2f utilization - %.1f GiB activations/overhead)%s",
                 e->cm.model->name, e->cm.weight_dtype, e->cm.weight_bytes / GIB, avail,
                 e->cm.gpu->display_name, e->cm.gpu->memory_mib,
                 e->cm.requested_bytes / e->cm.total_bytes, e->info.activation_gib,
                 e->cm.tp == 1 ? "; try a smaller --quantization or --tensor-parallel-size" : "");
        rc = -ENOSPC;
        goto fail;
    }
    if (cost_blocks_for(&e->cm, e->cm.max_model_len) > e->cm.num_blocks) {
        /* vLLM's own wording (vllm/worker/worker.py raise_if_cache_size_invalid), so log
         * readers classify the simulator's refusal as they classify vLLM's. */
        snprintf(err, errlen,
                 "The model's max seq len (%d) is larger than the maximum number of tokens that "
                 "can be stored in KV cache (%ld). Try increasing `gpu_memory_utilization` or "
                 "decreasing `max_model_len` when initializing the engine. (%ld KV blocks "
                 "needed, %ld available)",
                 e->cm.max_model_len, e->cm.num_blocks * e->cm.block_size,
                 cost_blocks_for(&e->cm, e->cm.max_model_len), e->cm.num_blocks);
        rc = -ENOSPC;
        goto fail;
    }
    if (e->cm.num_blocks > INT32_MAX - 1) {
        snprintf(err, errlen, "KV cache of %ld blocks is too large", e->cm.num_blocks);
        rc = -EINVAL;
        goto fail;
    }

    e->nblocks = e->cm.num_blocks;
    e->ref = xcalloc((size_t)e->nblocks, sizeof(*e->ref));
    e->bhash = xcalloc((size_t)e->nblocks, sizeof(*e->bhash));
    e->prev = xcalloc((size_t)e->nblocks, sizeof(*e->prev));
    e->next = xcalloc((size_t)e->nblocks, sizeof(*e->next));
    e->free_head = e->free_tail = -1;
    for (long b = 0; b < e->nblocks; b++)
        fl_push_tail(e, (int32_t)b);
    map_init(&e->cache, e->cm.prefix_caching ? (size_t)e->nblocks : 16);
    map_init(&e->reqs, 1024);
    *out = e;
    return 0;
fail:
    engine_free(e);
    return rc;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    /* Dead requests are no longer in the map but may sit in the queue (aborted while
     * waiting) or in this step (aborted or finished while scheduled); live ones are all in
     * the map. Dead ones first, while the live pointers in the queue are still valid. */
    for (size_t i = 0; i < e->wq_len; i++) {
        struct req *r = e->wq[(e->wq_head + i) % e->wq_cap];
        if (r->state == RS_DEAD && !r->in_step)
            req_destroy(r);
    }
    for (size_t i = 0; i < e->n_sched; i++)
        if (e->sched[i]->state == RS_DEAD)
            req_destroy(e->sched[i]);
    for (size_t i = 0; i < e->reqs.cap; i++)
        if (e->reqs.used && e->reqs.used[i])
            req_destroy((struct req *)(uintptr_t)e->reqs.vals[i]);
    map_release(&e->reqs);
    map_release(&e->cache);
    free(e->ref);
    free(e->bhash);
    free(e->prev);
    free(e->next);
    free(e->running);
    free(e->wq);
    free(e->sched);
    catalog_free(e->cat);
    free(e);
}

const struct engine_info *engine_info(const struct engine *e)
{
    return &e->info;
}

int engine_check(const struct engine *e, const struct engine_request *r, char *err, size_t errlen)
{
    if (!r || r->prompt_len < 1 || r->max_tokens < 1) {
        snprintf(err, errlen, "a request needs at least one prompt token and max_tokens >= 1");
        return -EINVAL;
    }
    if (r->prompt_len + (size_t)r->max_tokens > (size_t)e->cm.max_model_len) {
        snprintf(err, errlen,
                 "This model's maximum context length is %d tokens. However, you requested %zu "
                 "tokens (%zu in the messages, %d in the completion).",
                 e->cm.max_model_len, r->prompt_len + (size_t)r->max_tokens, r->prompt_len,
                 r->max_tokens);
        return -EINVAL;
    }
    return 0;
}

double engine_request_overhead(const struct engine *e)
{
    return e->cm.cal.p[CAL_REQUEST_S] * cost_host_factor(&e->cm);
}

int engine_add(struct engine *e, const struct engine_request *r, char *err, size_t errlen)
{
    int rc = engine_check(e, r, err, errlen);
    if (rc)
        return rc;
    if (map_get(&e->reqs, r->id, NULL)) {
        snprintf(err, errlen, "request id %llu is already live", (unsigned long long)r->id);
        return -EINVAL;
    }
    struct req *q = xcalloc(1, sizeof(*q));
    q->id = r->id;
    q->user = r->user;
    q->prompt_len = (int)r->prompt_len;
    q->max_tokens = r->max_tokens;
    q->state = RS_WAITING;
    q->salt = mix64(++e->salt_seq ^ 0x5bd1e995ull);
    if (e->cm.prefix_caching && r->prompt) {
        int bs = e->cm.block_size;
        int nfull = q->prompt_len / bs;
        q->hashes = xreallocarray(NULL, (size_t)(nfull ? nfull : 1), sizeof(*q->hashes));
        q->cap_hashes = nfull ? nfull : 1;
        uint64_t parent = 0x9e3779b97f4a7c15ull;
        for (int i = 0; i < nfull; i++) {
            uint64_t h =
                hash64(r->prompt + (size_t)i * bs, (unsigned long)bs * sizeof(uint32_t), parent);
            q->hashes[i] = h ? h : 1;
            parent = q->hashes[i];
        }
        q->n_hashes = q->n_prompt_hashes = nfull;
    }
    map_put(&e->reqs, q->id, (uint64_t)(uintptr_t)q);
    wq_push_back(e, q);
    e->n_waiting++;
    return 0;
}

void engine_abort(struct engine *e, uint64_t id)
{
    uint64_t v;
    if (!map_get(&e->reqs, id, &v))
        return;
    struct req *r = (struct req *)(uintptr_t)v;
    map_del(&e->reqs, id);
    req_free_blocks(e, r);
    if (r->state == RS_WAITING) {
        e->n_waiting--;
        r->state = RS_DEAD; /* freed when the queue reaches it */
        return;
    }
    /* Running: take it out of the batch now. */
    for (size_t i = 0; i < e->n_running; i++) {
        if (e->running[i] == r) {
            memmove(&e->running[i], &e->running[i + 1],
                    (e->n_running - i - 1) * sizeof(*e->running));
            e->n_running--;
            break;
        }
    }
    r->state = RS_DEAD;
    if (!r->in_step)
        req_destroy(r);
}

static void preempt(struct engine *e, struct req *r)
{
    req_free_blocks(e, r);
    r->num_computed = 0;
    r->state = RS_WAITING;
    e->n_running--; /* r is the last running request */
    wq_push_front(e, r);
    e->n_waiting++;
    e->ctr.num_preemptions++;
}

/* Adds r's n new tokens (computed on top of r->num_computed) to the step's load. */
static void load_add(const struct engine *e, struct step_load *l, const struct req *r, int n)
{
    double c = r->num_computed, w = e->cm.window;
    double mid = c + (n + 1) / 2.0;
    l->tokens += n;
    l->seqs++;
    if (r->num_computed + n >= r->prompt_len + r->num_generated)
        l->sampled++;
    l->attn_full += n * mid;
    l->kv_full += c + n;
    if (e->cm.sliding_layers) {
        l->attn_sliding += n * (mid < w ? mid : w);
        l->kv_sliding += (c + n) < w ? (c + n) : w;
    }
}

double engine_step_plan(struct engine *e)
{
    if (e->planned)
        return e->planned_dur;
    struct step_load load;
    memset(&load, 0, sizeof(load));
    e->n_sched = 0;
    long budget = e->cm.max_num_batched_tokens;
    bool preempted = false;

    for (size_t i = 0; i < e->n_running && budget > 0; i++) {
        struct req *r = e->running[i];
        long n = (long)r->prompt_len + r->num_generated - r->num_computed;
        if (n > budget)
            n = budget;
        if (n <= 0)
            continue;
        bool self = false;
        while (!req_alloc(e, r, r->num_computed + (int)n)) {
            struct req *victim = e->running[e->n_running - 1];
            preempt(e, victim);
            preempted = true;
            if (victim == r) {
                self = true;
                break;
            }
        }
        if (self)
            break;
        sched_push(e, r, (int)n);
        load_add(e, &load, r, (int)n);
        budget -= n;
    }

    while (!preempted && budget > 0 && e->n_running < (size_t)e->cm.max_num_seqs) {
        struct req *r = wq_front(e);
        if (!r)
            break;
        int total = r->prompt_len + r->num_generated;
        /* Prefix-cache lookup: full blocks, never the whole request (the last token must be
         * computed to sample the next one). */
        int hits = 0;
        long hit_free = 0; /* hit blocks that sit on the free list now */
        if (e->cm.prefix_caching) {
            int maxb = (total - 1) / e->cm.block_size;
            for (int i = 0; i < maxb; i++) {
                if (i >= r->n_prompt_hashes && r->num_generated == 0)
                    break;
                uint64_t b;
                if (!map_get(&e->cache, req_hash(r, i), &b))
                    break;
                if (e->ref[b] == 0)
                    hit_free++;
                hits++;
            }
        }
        int hit_tokens = hits * e->cm.block_size;
        long n = total - hit_tokens;
        if (n > budget)
            n = budget;
        long need = (hit_tokens + n + e->cm.block_size - 1) / e->cm.block_size - hits +
                    cost_sliding_blocks(&e->cm, hit_tokens + n);
        if (need + hit_free > e->n_free)
            break;
        /* Take the hit blocks, then allocate the rest (cannot fail now). */
        if (hits) {
            r->blocks = grow_array(r->blocks, &r->cap_blocks, hits, sizeof(*r->blocks));
            for (int i = 0; i < hits; i++) {
                uint64_t b = 0; /* the hit was counted above: map_get finds it */
                map_get(&e->cache, r->hashes[i], &b);
                if (e->ref[b] == 0)
                    fl_remove(e, (int32_t)b);
                e->ref[b]++;
                r->blocks[r->n_blocks++] = (int32_t)b;
            }
            r->n_registered = hits;
        }
        r->num_computed = hit_tokens;
        if (!req_alloc(e, r, hit_tokens + (int)n))
            abort(); /* checked above; a failure here is a bug */
        e->ctr.prefix_cache_queries += (uint64_t)total;
        e->ctr.prefix_cache_hits += (uint64_t)hit_tokens;
        r->cached_tokens = hit_tokens;
        wq_pop(e);
        e->n_waiting--;
        r->state = RS_RUNNING;
        running_push(e, r);
        sched_push(e, r, (int)n);
        load_add(e, &load, r, (int)n);
        budget -= n;
    }

    if (e->n_sched == 0)
        return -1.0;
    e->planned = true;
    e->planned_dur = cost_step_time(&e->cm, &load);
    return e->planned_dur;
}

void engine_step_finish(struct engine *e, double now, engine_event_fn cb, void *ctx)
{
    (void)now; /* the engine keeps no clock; events carry the driver's time implicitly */
    if (!e->planned)
        return;
    e->planned = false;
    e->ctr.steps++;
    bool any_done = false;
    for (size_t i = 0; i < e->n_sched; i++) {
        struct req *r = e->sched[i];
        if (r->state == RS_DEAD)
            continue;
        r->num_computed += r->step_tokens;
        struct engine_event ev = {.id = r->id, .user = r->user, .total_tokens = r->num_generated};
        if (r->num_computed >= r->prompt_len + r->num_generated) {
            r->num_generated++;
            e->ctr.generation_tokens++;
            ev.new_tokens = 1;
            ev.total_tokens = r->num_generated;
            if (!r->first_emitted) {
                r->first_emitted = true;
                ev.first = true;
                ev.cached_prompt_tokens = r->cached_tokens;
                e->ctr.prompt_tokens += (uint64_t)r->prompt_len;
            }
            if (r->num_generated >= r->max_tokens) {
                ev.finish = FINISH_LENGTH;
                any_done = true;
            }
        }
        if (ev.finish != FINISH_NONE) {
            /* Forget it before the callback, so that the callback may reuse the id. */
            map_del(&e->reqs, r->id);
            req_free_blocks(e, r);
            r->state = RS_DEAD;
            e->ctr.requests_finished++;
        }
        if (cb)
            cb(ctx, &ev);
    }
    /* Drop finished (and, defensively, aborted) requests from the batch; free dead structs. */
    if (any_done) {
        size_t k = 0;
        for (size_t i = 0; i < e->n_running; i++)
            if (e->running[i]->state != RS_DEAD)
                e->running[k++] = e->running[i];
        e->n_running = k;
    }
    for (size_t i = 0; i < e->n_sched; i++) {
        struct req *r = e->sched[i];
        r->in_step = false;
        if (r->state == RS_DEAD)
            req_destroy(r);
    }
    e->n_sched = 0;
}

void engine_counters(const struct engine *e, struct engine_counters *out)
{
    *out = e->ctr;
    out->num_running = (int)e->n_running;
    out->num_waiting = e->n_waiting;
    out->kv_cache_usage = e->nblocks ? (double)(e->nblocks - e->n_free) / (double)e->nblocks : 0.0;
}
