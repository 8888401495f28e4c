/*
 * workload.c - a tenant's requests: lengths, prompts and (traces) due times, from the
 * requests section of its config (docs/CONFIG.md). Everything follows the seeds the runner
 * passes, which derive from benchmark.seed: the same config gives the same workload.
 *
 * Datasets are sampled in request order on the prompt thread, because a length filter needs
 * each candidate's token count from the server's /tokenize (counts are cached per entry for
 * the run). Without replacement, the entries are walked in a shuffled order; when a point
 * needs more requests than the dataset holds, a new shuffle starts and the reuse is said.
 */
#include "workload/workload.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rng.h"
#include "workload/dataset.h"
#include "workload/length.h"
#include "workload/trace.h"

#define SALT_OUTPUT 0x6f7574707574ull
#define SALT_PICK 0x7069636bull
#define SALT_RAG 0x726167ull
#define RAG_MAX_TRIES 64

struct workload {
    const struct requests_cfg *rq;
    enum api_kind api;
    struct length_sampler out;
    struct dataset *ds;
    struct trace *tr;
    bool all_turns;
    bool filter; /* a prompt-length range is set */
    /* dataset: per entry, for the run (-1 unknown) */
    int *prompt_tokens;
    int *reply_tokens;
    bool *rejected; /* outside the length range */
    size_t n_rejected;
    bool filter_given_up; /* every entry was outside: said once, then unfiltered */
    double *rag_cdf;      /* rag with skew: cumulative popularity of documents 0..n-1 */
    /* dataset: per point */
    struct rng pick;
    size_t *order;
    size_t pos;
    size_t wraps;
};

static bool prompts_from_entries(const struct workload *w)
{
    return w->ds && w->ds->format != DS_TEXT;
}

int workload_new(struct workload **out, const struct requests_cfg *rq, enum api_kind api, char *err,
                 size_t errlen)
{
    struct workload *w = xcalloc(1, sizeof(*w));
    w->rq = rq;
    w->api = api;
    char why[1024];
    int rc = length_sampler_init(&w->out, &rq->output_tokens, rq->completion_tokens);
    if (rc) {
        snprintf(err, errlen, "requests.output_tokens.distribution: unknown name");
        goto fail;
    }
    if (rq->dataset.path) {
        rc = dataset_load(&w->ds, &rq->dataset, why, sizeof(why));
        if (rc) {
            snprintf(err, errlen, "requests.dataset.path: %s", why);
            goto fail;
        }
        w->all_turns = rq->dataset.turns && strcmp(rq->dataset.turns, "all") == 0;
        w->filter = rq->dataset.min_prompt_tokens > 1 || rq->dataset.max_prompt_tokens > 0;
        size_t n = w->ds->n ? w->ds->n : 1;
        w->prompt_tokens = xcalloc(n, sizeof(int));
        w->reply_tokens = xcalloc(n, sizeof(int));
        w->rejected = xcalloc(n, sizeof(bool));
        w->order = xcalloc(n, sizeof(size_t));
        for (size_t i = 0; i < n; i++)
            w->prompt_tokens[i] = w->reply_tokens[i] = -1;
    }
    if (rq->trace.path) {
        rc = trace_load(&w->tr, &rq->trace, why, sizeof(why));
        if (rc) {
            snprintf(err, errlen, "requests.trace.path: %s", why);
            goto fail;
        }
        for (size_t i = 0; i < rq->n_concurrency; i++)
            if (rq->concurrency[i] > 0)
                log_warn("trace %s is replayed with concurrent_requests %d: requests beyond that "
                         "many in flight wait, later than the trace says (0 = no cap)",
                         rq->trace.path, rq->concurrency[i]);
    }
    if (rq->rag.documents > 0 && rq->rag.skew > 0) {
        /* Zipf: document k (0-based) has weight 1 / (k + 1)^skew. */
        size_t n = (size_t)rq->rag.documents;
        w->rag_cdf = xcalloc(n, sizeof(double));
        double sum = 0;
        for (size_t k = 0; k < n; k++)
            w->rag_cdf[k] = sum += pow((double)(k + 1), -rq->rag.skew);
        for (size_t k = 0; k < n; k++)
            w->rag_cdf[k] /= sum;
    }
    *out = w;
    return 0;
fail:
    workload_free(w);
    return rc;
}

void workload_free(struct workload *w)
{
    if (!w)
        return;
    dataset_free(w->ds);
    trace_free(w->tr);
    free(w->prompt_tokens);
    free(w->reply_tokens);
    free(w->rejected);
    free(w->order);
    free(w->rag_cdf);
    free(w);
}

void workload_attach(struct workload *w, struct prompt_builder *b)
{
    if (w->ds && w->ds->format == DS_TEXT)
        prompt_builder_set_corpus(b, w->ds->words, w->ds->n_words);
}

size_t workload_n_requests(const struct workload *w)
{
    return w->tr ? w->tr->n : (size_t)w->rq->num_requests;
}

bool workload_schedule(const struct workload *w, mono_ns *off, size_t n)
{
    if (!w->tr)
        return false;
    trace_offsets(w->tr, w->rq->trace.speed, off, n);
    return true;
}

bool workload_draws_in_order(const struct workload *w)
{
    return prompts_from_entries(w);
}

bool workload_messages(const struct workload *w)
{
    return prompts_from_entries(w) && w->all_turns && w->api == API_CHAT;
}

/* Fisher-Yates over 0..n-1 from the pick stream. */
static void shuffle(struct workload *w)
{
    size_t n = w->ds->n;
    for (size_t i = 0; i < n; i++)
        w->order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_range(&w->pick, 0, (int64_t)i - 1);
        size_t t = w->order[i - 1];
        w->order[i - 1] = w->order[j];
        w->order[j] = t;
    }
    w->pos = 0;
}

void workload_plan(struct workload *w, uint64_t seed, int context, struct req_record *recs,
                   size_t n)
{
    const struct requests_cfg *rq = w->rq;
    struct rng g, o;
    rng_seed(&g, seed);
    rng_seed(&o, seed ^ SALT_OUTPUT);
    for (size_t i = 0; i < n; i++) {
        struct req_record *rec = &recs[i];
        /* fixed draws nothing: its mean (completion_tokens by default), clipped. */
        rec->target_output_tokens = length_draw(&w->out, &o, 0);
        if (w->tr && i < w->tr->n) {
            rec->target_prompt_tokens = w->tr->v[i].input_tokens;
            rec->target_output_tokens = w->tr->v[i].output_tokens;
        } else if (rq->rag.documents > 0) {
            rec->target_prompt_tokens =
                rq->rag.documents_per_request * rq->rag.document_tokens + rq->rag.question_tokens;
        } else if (prompts_from_entries(w)) {
            rec->target_prompt_tokens = 0; /* known once its prompt is picked */
        } else if (context > 0) {
            /* The window holds both: a long draw is cut to leave one prompt token. */
            if (rec->target_output_tokens >= context)
                rec->target_output_tokens = context > 1 ? context - 1 : 1;
            rec->target_prompt_tokens = context - rec->target_output_tokens;
        } else {
            rec->target_prompt_tokens =
                (int)rng_range(&g, rq->prompt_tokens_min, rq->prompt_tokens_max);
        }
    }
    if (w->ds && w->ds->n) {
        rng_seed(&w->pick, seed ^ SALT_PICK);
        w->wraps = 0;
        shuffle(w);
    }
}

void workload_plan_turns(const struct requests_cfg *rq, uint64_t seed, int context,
                         struct req_record *recs, size_t n)
{
    size_t turns = rq->session.turns > 0 ? (size_t)rq->session.turns : 1;
    struct rng g;
    rng_seed(&g, seed);
    for (size_t i = 0; i < n; i++) {
        struct req_record *rec = &recs[i];
        rec->session = (int)(i / turns);
        rec->turn = (int)(i % turns);
        if (rec->turn > 0)
            rec->target_prompt_tokens =
                (int)rng_range(&g, rq->session.message_tokens_min, rq->session.message_tokens_max);
        else if (context > 0)
            rec->target_prompt_tokens =
                (int)session_first_prompt(&rq->session, context, rq->completion_tokens);
    }
}

static int entry_tokens(struct workload *w, struct prompt_builder *b, size_t k)
{
    if (w->prompt_tokens[k] < 0) {
        const struct ds_entry *e = &w->ds->v[k];
        bool msgs = w->all_turns && w->api == API_CHAT;
        w->prompt_tokens[k] = prompt_count(b, e->prompt, msgs ? e->messages : NULL, true);
    }
    return w->prompt_tokens[k];
}

static bool in_range(const struct workload *w, int tokens)
{
    const struct dataset_cfg *d = &w->rq->dataset;
    return tokens >= d->min_prompt_tokens &&
           (d->max_prompt_tokens == 0 || tokens <= d->max_prompt_tokens);
}

/* The next entry of the sample, within the length range. */
static size_t next_entry(struct workload *w, struct prompt_builder *b)
{
    for (;;) {
        size_t k;
        if (w->rq->dataset.replacement) {
            k = (size_t)rng_range(&w->pick, 0, (int64_t)w->ds->n - 1);
        } else {
            if (w->pos == w->ds->n) {
                shuffle(w);
                w->wraps++;
            }
            k = w->order[w->pos++];
        }
        if (!w->filter || w->filter_given_up || in_range(w, entry_tokens(w, b, k)))
            return k;
        if (!w->rejected[k]) {
            w->rejected[k] = true;
            w->n_rejected++;
        }
        if (w->n_rejected == w->ds->n) {
            log_error("dataset %s: no prompt is within %d..%d tokens; the range is ignored",
                      w->rq->dataset.path, w->rq->dataset.min_prompt_tokens,
                      w->rq->dataset.max_prompt_tokens);
            w->filter_given_up = true;
            return k;
        }
    }
}

static void dataset_recipe(struct workload *w, struct prompt_builder *b, struct req_record *rec,
                           struct prompt_recipe *out)
{
    size_t k = next_entry(w, b);
    const struct ds_entry *e = &w->ds->v[k];
    rec->target_prompt_tokens = entry_tokens(w, b, k);
    if (w->out.kind == LEN_DATASET) {
        if (w->reply_tokens[k] < 0)
            w->reply_tokens[k] = e->output_tokens > 0 ? e->output_tokens
                                 : e->reply           ? prompt_count(b, e->reply, NULL, false)
                                                      : 0;
        rec->target_output_tokens = length_draw(&w->out, NULL, w->reply_tokens[k]);
    }
    prompt_recipe_given(out, workload_messages(w) ? e->messages : e->prompt);
}

/* A document by popularity: uniform, or the first k whose cumulative share passes u. */
static uint64_t rag_pick(const struct workload *w, struct rng *r)
{
    int n = w->rq->rag.documents;
    if (!w->rag_cdf)
        return (uint64_t)rng_range(r, 0, n - 1);
    double u = rng_uniform(r);
    size_t lo = 0, hi = (size_t)n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->rag_cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The documents one request has taken: an open-addressing set of ids + 1 (0 = empty slot),
 * at most half full, so a membership test is O(1) on average and a prompt of k documents
 * costs O(k) (a scan of the earlier ones made large k quadratic). */
struct doc_set {
    uint64_t *slot;
    size_t mask;
};

static void doc_set_init(struct doc_set *s, size_t k)
{
    size_t cap = 16;
    while (cap < 2 * k)
        cap <<= 1;
    s->slot = xcalloc(cap, sizeof(*s->slot));
    s->mask = cap - 1;
}

/* Adds id; false when it was there already. */
static bool doc_set_add(struct doc_set *s, uint64_t id)
{
    size_t h = (size_t)hash64(&id, sizeof(id), SALT_RAG) & s->mask;
    while (s->slot[h]) {
        if (s->slot[h] == id + 1)
            return false;
        h = (h + 1) & s->mask;
    }
    s->slot[h] = id + 1;
    return true;
}

/* documents_per_request distinct documents of the pool, by popularity (rejection: k is
 * small beside the pool; with a steep skew a few redraws). */
static int rag_recipe(struct workload *w, struct prompt_builder *b, uint64_t seed,
                      const struct req_record *rec, struct prompt_recipe *out, char **text)
{
    const struct rag_cfg *g = &w->rq->rag;
    size_t k = (size_t)g->documents_per_request;
    struct prompt_segment *segs = xcalloc(k, sizeof(*segs));
    struct doc_set taken;
    doc_set_init(&taken, k);
    struct rng r;
    rng_seed(&r, seed ^ SALT_RAG);
    for (size_t i = 0; i < k; i++) {
        uint64_t doc = 0;
        int tries = 0;
        do {
            /* A steep skew over a pool barely larger than k could redraw for ages: after
             * RAG_MAX_TRIES, the next document not yet taken, in popularity order. */
            doc = tries < RAG_MAX_TRIES ? rag_pick(w, &r) : doc + 1;
            if (doc >= (uint64_t)g->documents)
                doc = 0;
            tries++;
        } while (!doc_set_add(&taken, doc));
        segs[i] = (struct prompt_segment){doc, g->document_tokens};
    }
    free(taken.slot);
    int rc = prompt_plan_segments(b, rec->target_prompt_tokens, segs, k, seed, out, text);
    free(segs);
    return rc;
}

/* The row's whole blocks are shared (same hash id, same text); the rest is its own. */
static int trace_recipe(struct workload *w, struct prompt_builder *b, uint64_t seed, size_t i,
                        const struct req_record *rec, struct prompt_recipe *out, char **text)
{
    const struct trace_row *row = &w->tr->v[i];
    size_t block = (size_t)w->rq->trace.block_tokens;
    size_t full = (size_t)row->input_tokens / block;
    size_t k = row->n_hash < full ? row->n_hash : full;
    struct prompt_segment *segs = xcalloc(k ? k : 1, sizeof(*segs));
    for (size_t j = 0; j < k; j++)
        segs[j] = (struct prompt_segment){row->hash_ids[j], (int)block};
    int rc = prompt_plan_segments(b, rec->target_prompt_tokens, segs, k, seed, out, text);
    free(segs);
    return rc;
}

int workload_recipe(struct workload *w, struct prompt_builder *b, uint64_t seed, size_t i,
                    struct req_record *rec, struct prompt_recipe *out, char **text)
{
    if (text)
        *text = NULL;
    if (w->tr)
        return trace_recipe(w, b, seed, i, rec, out, text);
    if (w->rq->rag.documents > 0)
        return rag_recipe(w, b, seed, rec, out, text);
    if (prompts_from_entries(w)) {
        dataset_recipe(w, b, rec, out);
        return 0;
    }
    return prompt_plan(b, rec->target_prompt_tokens, w->rq->shared_prefix_tokens, seed, out, text);
}

char *workload_prompt(struct workload *w, struct prompt_builder *b, uint64_t seed, size_t i,
                      struct req_record *rec)
{
    struct prompt_recipe r;
    char *text = NULL;
    if (workload_recipe(w, b, seed, i, rec, &r, &text) == 0 && !text)
        text = prompt_recipe_text(b, &r, NULL);
    prompt_recipe_release(&r);
    return text;
}

void workload_point_note(const struct workload *w, const char *tenant)
{
    if (w->ds && w->wraps)
        log_warn("tenant %s: the dataset %s has fewer usable prompts than the point's requests; "
                 "its prompts were used %zu more time(s) (sampled without replacement)",
                 tenant, w->rq->dataset.path, w->wraps);
}
