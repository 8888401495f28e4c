/*
 * prompt_pool.h - one tenant's prompts for one point, fixed before the point's clock starts.
 *
 * A thread of its own first plans every request's prompt in request order (workload_recipe:
 * every /tokenize round trip happens here), keeping the texts it composed on the way while
 * they fit in the byte budget; the point starts once every pool is planned. If some texts did
 * not fit, the thread goes on composing them from their recipes ahead of the requests, never
 * holding more than the budget, without asking the server. A request whose text is not ready
 * when it goes has it composed at once from its recipe on the caller's thread (pure CPU, no
 * round trip): no request ever waits for a prompt. docs/RUNNER.md "Prompts".
 *
 * Sessions: a later turn's user message is planned here like any prompt; the conversation
 * it joins (the earlier messages and answers) is appended at run time (session.c), which
 * costs no round trip.
 */
#ifndef TB_PROMPT_POOL_H
#define TB_PROMPT_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/xalloc.h"
#include "runner/record.h"

struct prompt_builder;
struct workload;

/* Text held ahead of the requests, at most: enough for every prompt of common points (4,000
 * prompts of 8k tokens), a bound for the rest. docs/RUNNER.md "Prompts" has the figures. */
#define PROMPT_POOL_BUDGET (256u << 20)

struct prompt_pool_cfg {
    struct prompt_builder *builder; /* the tenant's; only the pool's thread plans on it */
    struct workload *workload;
    struct req_record *recs; /* targets set (workload_plan, sessions'); the pool's thread
                              * writes a dataset's targets until prompt_pool_planned says all */
    size_t n;
    uint64_t seed;      /* request i's prompt seed is seed + i */
    size_t budget;      /* bytes of text held at most; 0 = PROMPT_POOL_BUDGET */
    const char *tenant; /* for messages */
    /* When set, what the pool holds for request i is finish(ctx, i, text): the request's
     * whole body (client_body_build), so that sending costs no JSON work either. It takes
     * text; NULL (the text cannot be sent, or no memory) keeps the text instead. Called on
     * the pool's thread and on the taker's: it must only read what does not change during
     * the point. */
    char *(*finish)(void *ctx, size_t i, char *text);
    void *finish_ctx;
    /* skip[i]: request i is another process's (distributed load): not planned, never taken.
     * NULL = every request is this one's. Borrowed for the pool's life. */
    const bool *skip;
};

struct prompt_pool_stats {
    double plan_s;           /* planning time, start to last recipe */
    size_t recipe_bytes;     /* what the recipes hold */
    size_t held_peak;        /* most text bytes held at once */
    size_t composed_on_take; /* texts composed by the taker (the pool was behind) */
};

struct prompt_pool;

/* Starts the pool's thread. 0, or -errno (nothing started). */
MUST_USE int prompt_pool_new(struct prompt_pool **out, const struct prompt_pool_cfg *cfg);
/* Prompts planned so far (any thread). */
size_t prompt_pool_planned(const struct prompt_pool *p);
/* Every prompt is planned (or the thread stopped early: prompt_pool_failed says why). */
bool prompt_pool_plan_done(const struct prompt_pool *p);
/* 0, or -ENOMEM / -ECANCELED when planning stopped before the end. */
int prompt_pool_failed(const struct prompt_pool *p);
/* Request i's prompt, the caller's to free: its body when the pool has a finish and it
 * succeeded (*is_body true), else its text. Each i once, after planning is done, on one
 * thread. NULL only when memory ran out. */
char *prompt_pool_take(struct prompt_pool *p, size_t i, bool *is_body);
/* Stops the thread (a /tokenize call in flight is abandoned) and waits for it. */
void prompt_pool_stop(struct prompt_pool *p);
void prompt_pool_get_stats(const struct prompt_pool *p, struct prompt_pool_stats *out);
void prompt_pool_free(struct prompt_pool *p); /* stops it first; NULL is a no-op */

#endif
