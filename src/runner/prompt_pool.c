/*
 * prompt_pool.c - a point's prompts, planned before its clock starts and composed ahead
 * within a byte budget (prompt_pool.h).
 *
 * Each request has a slot: EMPTY (planned, no text), BUILDING (the pool's thread composes
 * it), READY (text[i] holds it) or TAKEN (handed out). The taker swaps TAKEN in: from READY
 * it takes text[i]; from EMPTY or BUILDING it composes the text itself, and a thread that
 * then finds its slot TAKEN frees what it composed. So neither side ever waits for the other,
 * and text[i] belongs to whoever moved the slot last.
 */
#include "runner/prompt_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/thread.h"
#include "runner/prompt.h"
#include "workload/workload.h"

#define POOL_POLL_NS (2 * NS_PER_MS) /* the thread's wait while the budget is full */

enum slot { SLOT_EMPTY, SLOT_BUILDING, SLOT_READY, SLOT_TAKEN };

struct prompt_pool {
    struct prompt_pool_cfg cfg;
    struct prompt_recipe *recipe;
    char **text;
    size_t *len;
    bool *is_body; /* text[i] is the request's body (cfg.finish) */
    _Atomic unsigned char *state;
    atomic_size_t planned;
    atomic_bool plan_done;
    atomic_int failed;
    atomic_bool stop;
    atomic_size_t held; /* bytes of READY texts */
    atomic_size_t held_peak;
    size_t composed_on_take; /* the taker's own */
    mono_ns t_start, t_planned;
    pthread_t thread;
    bool running;
};

static void held_add(struct prompt_pool *p, size_t n)
{
    size_t now = atomic_fetch_add(&p->held, n) + n;
    size_t peak = atomic_load(&p->held_peak);
    while (now > peak && !atomic_compare_exchange_weak(&p->held_peak, &peak, now))
        ;
}

/* t in an allocation of its own size: texts are composed in a buffer that doubles as it grows,
 * and kept as they are they held twice their bytes (30,000 prompts of 1,000 tokens: 259 MiB
 * resident for 126 MiB of text). */
static char *shrunk(char *t)
{
    char *fit = t ? realloc(t, strlen(t) + 1) : NULL;
    return fit ? fit : t;
}

/* What is held for request i made of its text: the body when there is a finish. */
static char *finished(struct prompt_pool *p, size_t i, char *text, bool *is_body)
{
    *is_body = false;
    if (!text || !p->cfg.finish)
        return shrunk(text);
    char *body = p->cfg.finish(p->cfg.finish_ctx, i, text);
    if (!body)
        return text; /* sent as text: the client says why it cannot go */
    free(text);
    *is_body = true;
    return shrunk(body);
}

/* Plans request i; keeps the text composed on the way while it fits in the budget. */
static int plan_one(struct prompt_pool *p, size_t i)
{
    if (p->cfg.skip && p->cfg.skip[i])
        return 0;
    struct req_record *rec = &p->cfg.recs[i];
    uint64_t seed = p->cfg.seed + i;
    char *text = NULL;
    int rc;
    /* A session's later message does not repeat the shared prefix: the conversation it
     * joins starts with it. */
    if (rec->turn > 0)
        rc = prompt_plan(p->cfg.builder, rec->target_prompt_tokens, 0, seed, &p->recipe[i], &text);
    else
        rc = workload_recipe(p->cfg.workload, p->cfg.builder, seed, i, rec, &p->recipe[i], &text);
    if (rc)
        return rc;
    size_t n = text ? strlen(text) : 0;
    if (text && atomic_load(&p->held) + n <= p->cfg.budget) {
        text = finished(p, i, text, &p->is_body[i]);
        n = strlen(text);
        p->text[i] = text;
        p->len[i] = n;
        held_add(p, n);
        atomic_store(&p->state[i], SLOT_READY);
    } else {
        free(text);
    }
    return 0;
}

/* After planning: composes the texts that did not fit, in order, within the budget. */
static void compose_ahead(struct prompt_pool *p)
{
    for (size_t i = 0; i < p->cfg.n && !atomic_load(&p->stop); i++) {
        if (atomic_load(&p->state[i]) != SLOT_EMPTY || (p->cfg.skip && p->cfg.skip[i]))
            continue;
        while (atomic_load(&p->held) >= p->cfg.budget && !atomic_load(&p->stop))
            clock_sleep_ns(POOL_POLL_NS);
        unsigned char want = SLOT_EMPTY;
        if (!atomic_compare_exchange_strong(&p->state[i], &want, SLOT_BUILDING))
            continue; /* taken meanwhile */
        char *t =
            finished(p, i, prompt_recipe_text(p->cfg.builder, &p->recipe[i], NULL), &p->is_body[i]);
        size_t n = t ? strlen(t) : 0;
        p->text[i] = t;
        p->len[i] = n;
        held_add(p, n);
        want = SLOT_BUILDING;
        if (!atomic_compare_exchange_strong(&p->state[i], &want, t ? SLOT_READY : SLOT_EMPTY) ||
            !t) {
            /* The taker composed its own (or there was no memory, and the taker will): drop
             * this one. */
            atomic_fetch_sub(&p->held, n);
            free(t);
            p->text[i] = NULL;
        }
    }
}

static void *pool_main(void *arg)
{
    struct prompt_pool *p = arg;
    /* It runs beside the measuring loop once the point starts: its wake-ups must not
     * preempt the loop's. */
    (void)thread_set_background();
    int rc = 0;
    for (size_t i = 0; i < p->cfg.n && !rc; i++) {
        if (atomic_load(&p->stop))
            rc = -ECANCELED;
        else
            rc = plan_one(p, i);
        if (!rc)
            atomic_store(&p->planned, i + 1);
    }
    p->t_planned = clock_now();
    atomic_store(&p->failed, rc);
    atomic_store(&p->plan_done, true);
    if (!rc)
        compose_ahead(p);
    return NULL;
}

int prompt_pool_new(struct prompt_pool **out, const struct prompt_pool_cfg *cfg)
{
    struct prompt_pool *p = xcalloc(1, sizeof(*p));
    size_t n = cfg->n ? cfg->n : 1;
    p->cfg = *cfg;
    if (!p->cfg.budget)
        p->cfg.budget = PROMPT_POOL_BUDGET;
    p->recipe = xcalloc(n, sizeof(*p->recipe));
    p->text = xcalloc(n, sizeof(*p->text));
    p->len = xcalloc(n, sizeof(*p->len));
    p->is_body = xcalloc(n, sizeof(*p->is_body));
    p->state = xcalloc(n, sizeof(*p->state));
    atomic_init(&p->planned, 0);
    atomic_init(&p->plan_done, false);
    atomic_init(&p->failed, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->held, 0);
    atomic_init(&p->held_peak, 0);
    for (size_t i = 0; i < n; i++)
        atomic_init(&p->state[i], SLOT_EMPTY);
    prompt_builder_set_stop(cfg->builder, &p->stop);
    p->t_start = clock_now();
    int rc = pthread_create(&p->thread, NULL, pool_main, p);
    if (rc) {
        prompt_builder_set_stop(cfg->builder, NULL);
        prompt_pool_free(p);
        return -rc;
    }
    p->running = true;
    *out = p;
    return 0;
}

size_t prompt_pool_planned(const struct prompt_pool *p)
{
    return atomic_load(&p->planned);
}

bool prompt_pool_plan_done(const struct prompt_pool *p)
{
    return atomic_load(&p->plan_done);
}

int prompt_pool_failed(const struct prompt_pool *p)
{
    return atomic_load(&p->failed);
}

char *prompt_pool_take(struct prompt_pool *p, size_t i, bool *is_body)
{
    *is_body = false;
    if (i >= p->cfg.n)
        return NULL;
    unsigned char was = atomic_exchange(&p->state[i], SLOT_TAKEN);
    if (was == SLOT_READY) {
        char *t = p->text[i];
        p->text[i] = NULL;
        *is_body = p->is_body[i];
        atomic_fetch_sub(&p->held, p->len[i]);
        return t;
    }
    if (was == SLOT_TAKEN)
        return NULL; /* taken twice: a caller's bug, nothing to give */
    p->composed_on_take++;
    return finished(p, i, prompt_recipe_text(p->cfg.builder, &p->recipe[i], NULL), is_body);
}

void prompt_pool_stop(struct prompt_pool *p)
{
    if (!p || !p->running)
        return;
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    p->running = false;
    prompt_builder_set_stop(p->cfg.builder, NULL);
}

void prompt_pool_get_stats(const struct prompt_pool *p, struct prompt_pool_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->plan_s = atomic_load(&p->plan_done) ? ns_diff_s(p->t_start, p->t_planned) : 0;
    out->recipe_bytes = p->cfg.n * sizeof(*p->recipe);
    for (size_t i = 0; i < p->cfg.n && atomic_load(&p->plan_done); i++)
        out->recipe_bytes += p->recipe[i].n_segs * sizeof(*p->recipe[i].segs);
    out->held_peak = atomic_load(&p->held_peak);
    out->composed_on_take = p->composed_on_take;
}

void prompt_pool_free(struct prompt_pool *p)
{
    if (!p)
        return;
    prompt_pool_stop(p);
    for (size_t i = 0; i < p->cfg.n; i++) {
        free(p->text[i]);
        prompt_recipe_release(&p->recipe[i]);
    }
    free(p->recipe);
    free(p->text);
    free(p->len);
    free(p->is_body);
    free((void *)p->state);
    free(p);
}
