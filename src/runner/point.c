/*
 * point.c - one point of a run (context x concurrency x rate), all tenants at once, on the
 * run's libevent loop. Before the clock starts, every tenant's prompts are planned on a pool
 * thread of their own (prompt_pool.h), with a progress line when that takes a while; then
 * per-tenant timers release requests at their scheduled due times (fixed before the point
 * starts), a concurrency cap holds them in a FIFO, the client streams them. The loop measures
 * its own lateness (selfcheck.h); checkpoints write what is done on a thread of their own;
 * at the end the point's results are added and the files rewritten, so an interrupted run
 * keeps every finished request.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/rng.h"
#include "core/stats.h"
#include "core/thread.h"
#include "runner/client.h"
#include "runner/progress.h"
#include "runner/prompt_pool.h"
#include "runner/ptimer.h"
#include "runner/results.h"
#include "runner/run_internal.h"
#include "runner/schedule.h"
#include "runner/selfcheck.h"
#include "runner/session.h"
#include "runner/verdict.h"
#include "telemetry/telemetry.h"
#include "workload/workload.h"

#define HEARTBEAT_NS (1 * NS_PER_MS)   /* loop-lag probe (fine enough to see 1 ms stalls) */
#define START_LEAD_NS (20 * NS_PER_MS) /* first request due this long after set-up ends */
#define CHECKPOINT_S 30.0 /* files rewritten this often during a point (TESTBENCH_CHECKPOINT_S) */
#define PLAN_POLL_NS (5 * NS_PER_MS) /* how often the wait for prompts looks */
#define PLAN_QUIET_S 1.0             /* planning shorter than this says nothing */
#define PLAN_LINE_S 10.0             /* progress lines this far apart when not on a terminal */

struct point_run;

/* One tenant's share of one point. */
struct tenant_run {
    struct point_run *pr;
    const struct tenant_cfg *tc;
    int index;
    const char *endpoint;
    const char *model;
    int concurrency; /* 0 = no cap */
    double rate;
    size_t n;
    struct req_record *recs;
    struct prompt_pool *pool;
    bool *skip;   /* another worker's request (distributed load): not planned; NULL = none */
    mono_ns *due; /* absolute due times */
    bool *held;   /* waited for a concurrency slot */
    bool *done;   /* its result is in (ok, failed or cancelled) */
    size_t next;  /* next index not yet released */
    size_t *fifo; /* released, waiting for a slot */
    size_t fifo_head, fifo_tail;
    int in_flight;
    size_t sent;
    struct ptimer *timer;
    /* requests.session: the arrival schedule is of sessions, not requests (n_arrivals of
     * them); NULL for single requests. */
    struct session_set *sessions;
    size_t n_arrivals;
    size_t turns_skipped; /* session turns never sent: an earlier turn of theirs failed */
};

/* A checkpoint writes the requests done so far on its own thread, so that the loop's
 * timestamps never wait for JSON or the disk. Done records no longer change, and the results
 * writer is left alone by the loop until the point ends (when the thread is joined). */
struct checkpoint {
    pthread_t thread;
    bool running;         /* started and not yet joined */
    atomic_bool finished; /* set by the thread as its last act */
    bool **done;          /* per tenant: the done flags when it started */
};

struct point_run {
    struct runner *r;
    const struct point_key *key;
    struct checkpoint ck;
    struct event *checkpoint_ev;
    struct tenant_run *tenants;
    size_t n_tenants;
    size_t total;
    size_t finished;
    bool stopping;
    struct dvec loop_lag;
    struct dvec dispatch_lag;
    mono_ns hb_expected;
    struct ptimer *heartbeat;
    size_t events0; /* client_events() when the point started */
    struct event *progress_ev;
    struct progress progress;
    /* Ending before num_requests (docs/METRICS.md "Warm-up, run length and stopping"). */
    mono_ns start;               /* the first request's due time */
    mono_ns deadline;            /* requests.duration_s; 0 = none */
    struct slo_stopper *stopper; /* requests.stop_when_decided; NULL = off */
    bool drained;                /* stopped sending, let what was in flight finish */
    const char *ended_by;        /* NULL = "requests" */
};

/* ---- distributed load (struct run_share in run.h) ----------------------------------- */

/* Does this process send arrival k (a request, or a session with its turns)? */
static bool share_owns(const struct runner *r, size_t k)
{
    const struct run_share *s = r->args.share;
    return !s || k % (size_t)s->n == (size_t)s->rank;
}

/* This process's part of a concurrency cap c (0, no cap, stays 0); never 0 for a cap, which
 * src/scale refuses to split below one per worker. */
static int share_cap(const struct runner *r, int c)
{
    const struct run_share *s = r->args.share;
    if (!s || c <= 0)
        return c;
    int part = c / s->n + (s->rank < c % s->n ? 1 : 0);
    return part > 0 ? part : 1;
}

/* ---- dispatch ------------------------------------------------------------------------ */

static void tenant_start(struct tenant_run *tr, size_t i);
static void point_drain(struct point_run *pr, const char *why);

static void point_maybe_done(struct point_run *pr)
{
    if (pr->finished == pr->total || (pr->stopping && client_in_flight(pr->r->client) == 0))
        event_base_loopexit(pr->r->base, NULL);
}

static void on_request_done(void *ctx, struct req_record *rec)
{
    struct tenant_run *tr = ctx;
    struct point_run *pr = tr->pr;
    tr->done[rec - tr->recs] = true;
    tr->in_flight--;
    pr->finished++;
    pr->progress.done++;
    if (rec->status != REQ_OK)
        pr->progress.failed++;
    if (tr->sessions)
        session_on_done(tr->sessions, (size_t)(rec - tr->recs), rec);
    else if (!pr->stopping && tr->fifo_head < tr->fifo_tail)
        tenant_start(tr, tr->fifo[tr->fifo_head++]);
    if (pr->stopper && !pr->stopping &&
        slo_stopper_done(pr->stopper, (size_t)tr->index, (size_t)(rec - tr->recs), rec))
        point_drain(pr, "decided");
    point_maybe_done(pr);
}

/* The request i of tr as the client sends it, without its prompt. */
static struct client_request tenant_request(const struct tenant_run *tr, size_t i)
{
    const struct runner *r = tr->pr->r;
    struct client_request rq = {
        .base_url = tr->endpoint,
        .api = r->cfg.server.api,
        .model = tr->model,
        .max_tokens = tr->recs[i].target_output_tokens,
        .ignore_eos = r->tenant_ignore_eos[tr->index],
    };
    return rq;
}

/* The pool's finish (prompt_pool.h): request i's whole body, built from its prompt text before
 * the clock (sessions have none: their conversation is known only as it goes). */
static char *tenant_body(void *ctx, size_t i, char *text)
{
    const struct tenant_run *tr = ctx;
    struct client_request rq = tenant_request(tr, i);
    rq.prompt = text;
    if (workload_messages(tr->pr->r->workloads[tr->index]))
        rq.messages_json = text;
    int why;
    return client_body_build(&rq, &why);
}

/* Fills rq's prompt from the pool: its body, or its text (sessions: the conversation around
 * it). 0, or the reason the request cannot go in rec. */
static int tenant_fill(struct tenant_run *tr, size_t i, struct client_request *rq, char **prompt)
{
    bool is_body;
    *prompt = prompt_pool_take(tr->pool, i, &is_body);
    if (!*prompt) {
        req_record_fail(&tr->recs[i], REQ_CLIENT_LIMIT, "no memory left for the prompt");
        return -ENOMEM;
    }
    if (is_body) {
        rq->body = *prompt; /* client_start takes it */
        *prompt = NULL;
        return 0;
    }
    rq->prompt = *prompt;
    if (workload_messages(tr->pr->r->workloads[tr->index]))
        rq->messages_json = *prompt;
    if (tr->sessions && session_fill_request(tr->sessions, i, prompt, &tr->recs[i], rq)) {
        req_record_fail(&tr->recs[i], REQ_CLIENT_LIMIT,
                        "the session's conversation grew past what the runner keeps");
        return -E2BIG;
    }
    return 0;
}

static void tenant_start(struct tenant_run *tr, size_t i)
{
    struct runner *r = tr->pr->r;
    struct client_request rq = tenant_request(tr, i);
    tr->in_flight++;
    tr->sent++;
    /* Decided before the transfer starts: with loop threads the record is theirs after. */
    const struct requests_cfg *wcfg = &tr->tc->requests;
    tr->recs[i].warmup =
        tr->sent <= (size_t)wcfg->warmup_requests ||
        (wcfg->warmup_s > 0 && clock_now() < tr->pr->start + s_to_ns(wcfg->warmup_s));
    char *prompt = NULL;
    int rc = tenant_fill(tr, i, &rq, &prompt);
    if (rc == 0)
        rc = client_start(r->client, &rq, &tr->recs[i], on_request_done, tr);
    free(prompt); /* the body was built in client_start (a session keeps what it needs) */
    if (rc != 0 || tr->recs[i].status != REQ_OK) {
        if (tr->recs[i].t_sent == 0)
            tr->recs[i].t_sent = clock_now();
        tr->recs[i].t_end = tr->recs[i].t_sent;
        on_request_done(tr, &tr->recs[i]);
        return;
    }
    if (!tr->held[i])
        dvec_push(&tr->pr->dispatch_lag, ns_diff_s(tr->recs[i].t_due, tr->recs[i].t_sent));
}

/* Moves past the arrivals other workers send, so that the timer wakes for this one's only. */
static void tenant_skip_others(struct tenant_run *tr)
{
    while (tr->next < tr->n_arrivals && !share_owns(tr->pr->r, tr->next))
        tr->next++;
}

static void tenant_arm(struct tenant_run *tr)
{
    tenant_skip_others(tr);
    if (tr->next >= tr->n_arrivals || tr->pr->stopping)
        return;
    ptimer_at(tr->timer, tr->due[tr->next]);
}

/* Sessions arrive (their first turns go through the session's own timer). */
static void tenant_sessions_arrive(struct tenant_run *tr, mono_ns now)
{
    while (tr->next < tr->n_arrivals && tr->due[tr->next] <= now && !tr->pr->stopping) {
        if (!share_owns(tr->pr->r, tr->next)) {
            tenant_skip_others(tr);
            continue;
        }
        size_t k = tr->next++;
        session_arrive(tr->sessions, k, tr->due[k]);
    }
    tenant_arm(tr);
}

/* Releases every request that is due; arms the timer for the next. */
static void on_tenant_timer(void *arg, mono_ns now)
{
    struct tenant_run *tr = arg;
    if (tr->sessions) {
        tenant_sessions_arrive(tr, now);
        return;
    }
    while (tr->next < tr->n && tr->due[tr->next] <= now && !tr->pr->stopping) {
        if (!share_owns(tr->pr->r, tr->next)) {
            tenant_skip_others(tr);
            continue;
        }
        size_t i = tr->next++;
        tr->recs[i].t_due = tr->due[i];
        if (tr->concurrency > 0 && tr->in_flight >= tr->concurrency) {
            tr->held[i] = true;
            tr->fifo[tr->fifo_tail++] = i;
        } else {
            tenant_start(tr, i);
        }
        now = clock_now();
    }
    tenant_arm(tr);
}

/* Stops sending for good (duration_s, stop_when_decided): nothing more is released, and what
 * is in flight finishes and counts. */
static void point_drain(struct point_run *pr, const char *why)
{
    if (pr->stopping)
        return;
    pr->stopping = true;
    pr->drained = true;
    pr->ended_by = why;
    for (size_t t = 0; t < pr->n_tenants; t++) {
        ptimer_cancel(pr->tenants[t].timer);
        session_set_stop(pr->tenants[t].sessions);
    }
    point_maybe_done(pr);
}

static void point_stop(struct point_run *pr)
{
    if (pr->stopping && !pr->drained)
        return;
    pr->stopping = true;
    pr->drained = false; /* Ctrl-C during a drain: the point is cut short after all */
    pr->ended_by = "interrupted";
    for (size_t t = 0; t < pr->n_tenants; t++) {
        ptimer_cancel(pr->tenants[t].timer);
        session_set_stop(pr->tenants[t].sessions);
    }
    client_cancel_all(pr->r->client);
    point_maybe_done(pr);
}

/* Measures how late the loop runs its timers, and notices Ctrl-C. */
static void on_heartbeat(void *arg, mono_ns now)
{
    struct point_run *pr = arg;
    dvec_push(&pr->loop_lag, ptimer_probe_tick(pr->heartbeat, &pr->hb_expected, HEARTBEAT_NS, now));
    if (run_interrupted())
        point_stop(pr);
    else if (pr->deadline && now >= pr->deadline)
        point_drain(pr, "duration");
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    struct point_run *pr = arg;
    (void)fd;
    (void)what;
    /* Text events received so far, in flight included, so the live rate moves with the
     * stream rather than in jumps as requests end (the client's count: with loop threads a
     * record in flight is not ours to read). */
    pr->progress.tokens = (long)(client_events(pr->r->client) - pr->events0);
    progress_draw(&pr->progress);
}

/* ---- sessions' hooks (session.h) ---- */

static void session_release(void *ctx, size_t i, mono_ns due, mono_ns think, bool held)
{
    struct tenant_run *tr = ctx;
    if (tr->pr->stopping)
        return;
    tr->recs[i].t_due = due;
    tr->recs[i].think_ns = think;
    tr->held[i] = held;
    tenant_start(tr, i);
}

static void session_ended(void *ctx, size_t s, size_t skipped)
{
    struct tenant_run *tr = ctx;
    /* Its last `skipped` turns are never sent: the stop rule's sample passes over them (this
     * runs before the stop rule hears of the turn that ended the session). */
    size_t end = session_set_first(tr->sessions, s + 1);
    for (size_t i = end - skipped; i < end; i++)
        slo_stopper_skip(tr->pr->stopper, (size_t)tr->index, i);
    tr->pr->finished += skipped;
    tr->pr->progress.done += skipped; /* the bar reaches its end */
    if (!tr->pr->stopping)
        tr->turns_skipped += skipped;
}

/* ---- preparing a point ----------------------------------------------------------------- */

/* Users who hold conversations: the arrivals are sessions; the cap bounds open sessions. */
static int tenant_sessions_new(struct runner *r, struct tenant_run *tr, size_t point)
{
    const struct session_hooks hooks = {session_release, session_ended, tr};
    uint64_t seed = run_seed(r, point, (size_t)tr->index, "think");
    int rc =
        session_set_new(&tr->sessions, r->base, &tr->tc->requests.session, tr->n, tr->concurrency,
                        isinf(tr->rate), r->cfg.server.api == API_CHAT, seed, &hooks);
    if (rc) {
        log_error("tenant %s: cannot set up its sessions", tr->tc->name);
        return rc;
    }
    tr->n_arrivals = session_set_count(tr->sessions);
    return 0;
}

/* Requests whose prompt and output cannot fit in the server's window: the server refuses
 * them (a RAG prompt of many documents, a prompt range past the window). Checked before any
 * prompt is built, on the targets known then (a dataset's are known only once picked). All
 * of them: -E2BIG (said); some: said. */
static int tenant_check_window(struct runner *r, struct tenant_run *tr, const struct point_key *k)
{
    long max_len = r->tenant_max_len[tr->index];
    if (max_len <= 0)
        return 0;
    size_t over = 0, known = 0;
    long longest = 0;
    for (size_t i = 0; i < tr->n; i++) {
        const struct req_record *rec = &tr->recs[i];
        if (rec->turn > 0 || rec->target_prompt_tokens <= 0)
            continue; /* a conversation's length is known as it goes; a dataset's when picked */
        known++;
        long need = (long)rec->target_prompt_tokens + rec->target_output_tokens;
        if (need > max_len) {
            over++;
            longest = need > longest ? need : longest;
        }
    }
    if (!over)
        return 0;
    if (over == known) {
        log_error("%s%stenant %s, point %zu/%zu: every request needs more tokens than the "
                  "server's window (up to %ld prompt + output tokens, max_model_len %ld at %s): "
                  "the server would refuse them all; lower the prompt lengths "
                  "(rag.documents_per_request, rag.document_tokens, prompt_tokens_max) or "
                  "completion_tokens",
                  r->args.label ? r->args.label : "", r->args.label ? ": " : "", tr->tc->name,
                  k->index + 1, k->count, longest, max_len, tr->endpoint);
        return -E2BIG;
    }
    log_warn("%s%stenant %s, point %zu/%zu: %zu of %zu requests need more tokens than the "
             "server's window (up to %ld, max_model_len %ld): the server will refuse them "
             "(http_4xx)",
             r->args.label ? r->args.label : "", r->args.label ? ": " : "", tr->tc->name,
             k->index + 1, k->count, over, known, longest, max_len);
    return 0;
}

/* A trace's replay says how long it takes (a slow speed can make it days). */
static void trace_note(const struct runner *r, const struct tenant_run *tr)
{
    double span = tr->n ? (double)tr->due[tr->n - 1] / 1e9 : 0;
    const struct trace_cfg *t = &tr->tc->requests.trace;
    if (span > 86400.0)
        log_warn("tenant %s: replaying %s at speed %g takes %.1f days (%zu rows); raise "
                 "requests.trace.speed to replay it faster",
                 tr->tc->name, t->path, t->speed, span / 86400.0, tr->n);
    else if (!r->args.quiet)
        log_info("tenant %s: replaying %zu rows of %s at speed %g: %.1f s of arrivals",
                 tr->tc->name, tr->n, t->path, t->speed, span);
}

static int tenant_prepare(struct runner *r, struct tenant_run *tr, const struct point_key *k)
{
    const struct requests_cfg *rq = &tr->tc->requests;
    size_t point = k->index;
    struct workload *w = r->workloads[tr->index];
    tr->n = workload_n_requests(w);
    tr->recs = xcalloc(tr->n ? tr->n : 1, sizeof(*tr->recs));
    tr->due = xcalloc(tr->n ? tr->n : 1, sizeof(*tr->due));
    tr->held = xcalloc(tr->n ? tr->n : 1, sizeof(*tr->held));
    tr->done = xcalloc(tr->n ? tr->n : 1, sizeof(*tr->done));
    tr->fifo = xcalloc(tr->n ? tr->n : 1, sizeof(*tr->fifo));
    tr->n_arrivals = tr->n;
    if (rq->session.enabled) {
        int src = tenant_sessions_new(r, tr, point);
        if (src)
            return src;
    }
    int rc = 0;
    if (workload_schedule(w, tr->due, tr->n)) /* a trace has its own arrival times */
        trace_note(r, tr);
    else
        rc = schedule_build(tr->due, tr->n_arrivals, rq->arrival, tr->rate, rq->burstiness,
                            run_seed(r, point, (size_t)tr->index, "schedule"));
    if (rc) {
        /* Said here: the point never starts, so no record could carry the reason. */
        log_error("tenant %s: cannot schedule %zu %s arrivals at %g requests/s (burstiness %g): "
                  "the arrival times do not fit in a run (lower num_requests, raise the rate or "
                  "the burstiness)",
                  tr->tc->name, tr->n, arrival_name(rq->arrival), tr->rate, rq->burstiness);
        return rc;
    }
    for (size_t i = 0; i < tr->n; i++) {
        struct req_record *rec = &tr->recs[i];
        req_record_init(rec);
        rec->id = (uint64_t)point << 32 | ((uint64_t)tr->index << 24) | i;
        rec->tenant = tr->index;
    }
    workload_plan(w, run_seed(r, point, (size_t)tr->index, "lengths"), k->context, tr->recs, tr->n);
    if (tr->sessions)
        workload_plan_turns(rq, run_seed(r, point, (size_t)tr->index, "turns"), k->context,
                            tr->recs, tr->n);
    rc = tenant_check_window(r, tr, k);
    if (rc)
        return rc;
    /* With other workers, only this one's requests are planned (unless the workload draws
     * each prompt from the ones before it). */
    if (r->args.share && !workload_draws_in_order(w)) {
        tr->skip = xcalloc(tr->n ? tr->n : 1, sizeof(*tr->skip));
        for (size_t i = 0; i < tr->n; i++)
            tr->skip[i] = !share_owns(r, tr->sessions ? (size_t)tr->recs[i].session : i);
    }
    struct prompt_pool_cfg pc = {
        .builder = r->builders[tr->index],
        .workload = w,
        .recs = tr->recs,
        .n = tr->n,
        .seed = run_seed(r, point, (size_t)tr->index, "prompt"),
        .tenant = tr->tc->name,
        .finish = tr->sessions ? NULL : tenant_body,
        .finish_ctx = tr,
        .skip = tr->skip,
    };
    rc = prompt_pool_new(&tr->pool, &pc);
    if (rc)
        log_error("tenant %s: cannot start the prompt thread", tr->tc->name);
    return rc;
}

static size_t planned_total(const struct point_run *pr, bool *all_done)
{
    size_t sum = 0;
    *all_done = true;
    for (size_t t = 0; t < pr->n_tenants; t++) {
        const struct tenant_run *tr = &pr->tenants[t];
        if (!tr->pool)
            continue;
        sum += prompt_pool_planned(tr->pool);
        *all_done &= prompt_pool_plan_done(tr->pool);
    }
    return sum;
}

/* Waits until every tenant's prompts are planned (the clock has not started), saying how it
 * goes when that takes more than a second: a line redrawn each second on a terminal, one
 * every PLAN_LINE_S otherwise. 0, -EINTR on Ctrl-C, or a pool's failure. */
static int point_await_prompts(struct point_run *pr)
{
    struct runner *r = pr->r;
    bool tty = isatty(STDERR_FILENO), done = false, said = false;
    mono_ns t0 = clock_now(), last = t0;
    size_t planned = 0;
    char where[64];
    snprintf(where, sizeof(where), "point %zu/%zu", pr->key->index + 1, pr->key->count);
    while (!run_interrupted()) {
        planned = planned_total(pr, &done);
        if (done)
            break;
        mono_ns now = clock_now();
        double el = ns_diff_s(t0, now);
        if (!r->args.quiet && el >= PLAN_QUIET_S &&
            (!said || ns_diff_s(last, now) >= (tty ? 1.0 : PLAN_LINE_S))) {
            if (tty)
                fprintf(stderr, "\r\033[K[%s] building prompts: %zu of %zu (%.0f %%), %.0f s",
                        where, planned, pr->total, 100.0 * (double)planned / (double)pr->total, el);
            else
                fprintf(stderr, "%s: building prompts: %zu of %zu (%.0f %%), %.0f s\n", where,
                        planned, pr->total, 100.0 * (double)planned / (double)pr->total, el);
            fflush(stderr);
            said = true;
            last = now;
        }
        clock_sleep_ns(PLAN_POLL_NS);
    }
    if (said && tty)
        fprintf(stderr, "\r\033[K");
    if (run_interrupted())
        return -EINTR;
    double el = ns_diff_s(t0, clock_now());
    if (!r->args.quiet && el >= PLAN_QUIET_S)
        log_info("%s: %zu prompts built in %.1f s before the clock started", where, planned, el);
    for (size_t t = 0; t < pr->n_tenants; t++) {
        int rc = pr->tenants[t].pool ? prompt_pool_failed(pr->tenants[t].pool) : 0;
        if (rc) {
            log_error("tenant %s: its prompts could not be built (%s)", pr->tenants[t].tc->name,
                      strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* The requests of tr this process sends (all of them unless the load is shared). */
static size_t tenant_share(const struct tenant_run *tr)
{
    const struct runner *r = tr->pr->r;
    if (!r->args.share)
        return tr->n;
    size_t n = 0;
    for (size_t k = 0; k < tr->n_arrivals; k++)
        if (share_owns(r, k))
            n += tr->sessions
                     ? session_set_first(tr->sessions, k + 1) - session_set_first(tr->sessions, k)
                     : 1;
    return n;
}

static void tenant_release(struct tenant_run *tr)
{
    prompt_pool_free(tr->pool);
    free(tr->skip);
    session_set_free(tr->sessions);
    for (size_t i = 0; i < tr->n; i++)
        req_record_release(&tr->recs[i]);
    free(tr->recs);
    free(tr->due);
    free(tr->held);
    free(tr->done);
    free(tr->fifo);
    ptimer_free(tr->timer);
}

/* ---- results of a point ------------------------------------------------------------------ */

static struct telemetry *telem_main(const struct runner *r)
{
    return r->n_telems ? r->telems[0] : NULL;
}

/* GPU and host figures come from the main sampler; the server's from the sampler of the
 * tenant's own endpoint. False when there is no telemetry or no window. */
static bool telem_window(struct runner *r, size_t tenant, mono_ns from, mono_ns to,
                         struct telemetry_window *w)
{
    if (!telem_main(r) || to <= from)
        return false;
    telemetry_window(telem_main(r), from, to, w);
    size_t k = r->tenant_telem[tenant];
    if (k == 0 || !r->telems[k])
        return true;
    struct telemetry_window sw;
    telemetry_window(r->telems[k], from, to, &sw);
    w->kv_cache_usage_max_pct = sw.kv_cache_usage_max_pct;
    w->kv_cache_usage_mean_pct = sw.kv_cache_usage_mean_pct;
    w->prefix_cache_hit_rate_pct = sw.prefix_cache_hit_rate_pct;
    w->num_preemptions = sw.num_preemptions;
    w->server_ttft_p50_s = sw.server_ttft_p50_s;
    w->server_ttft_p95_s = sw.server_ttft_p95_s;
    w->server_itl_p50_s = sw.server_itl_p50_s;
    return true;
}

static void outcome_add(struct run_outcome *o, const struct point_info *pi,
                        const struct point_summary *s, const struct telemetry_window *tw)
{
    o->points = xreallocarray(o->points, o->n_points + 1, sizeof(*o->points));
    struct run_point *p = &o->points[o->n_points++];
    memset(p, 0, sizeof(*p));
    p->context_length = pi->context_length;
    p->concurrency = pi->concurrency;
    p->rate = pi->rate;
    p->client_distorted = pi->client_distorted;
    p->partial = pi->partial;
    p->ended_by = pi->ended_by ? pi->ended_by : "requests";
    p->summary = *s;
    p->have_telemetry = tw != NULL;
    if (tw)
        p->telemetry = *tw;
}

/* What is said once a tenant's share of a point is over. */
static void tenant_notes(struct runner *r, struct tenant_run *tr, const struct point_info *pi,
                         const struct point_summary *s)
{
    const char *label = r->args.label ? r->args.label : "";
    const char *sep = r->args.label ? ": " : "";
    workload_point_note(r->workloads[tr->index], tr->tc->name);
    if (tr->turns_skipped)
        log_warn("tenant %s: %zu session turns were not sent because an earlier turn of "
                 "their conversation failed",
                 tr->tc->name, tr->turns_skipped);
    if (pi->client_distorted)
        log_warn("%s%stenant %s, point %zu/%zu: the client may have distorted this point: %s",
                 label, sep, tr->tc->name, tr->pr->key->index + 1, tr->pr->key->count,
                 pi->distortion);
    struct prompt_pool_stats ps;
    prompt_pool_get_stats(tr->pool, &ps);
    if (ps.composed_on_take)
        log_info("tenant %s: %zu prompts were composed as their requests went (no server "
                 "round trip; inside the dispatch lag): the pool of %u MiB ran behind",
                 tr->tc->name, ps.composed_on_take, PROMPT_POOL_BUDGET >> 20);
    if (s->usage_implausible)
        log_warn("tenant %s: the server's usage contradicted what it streamed for %zu "
                 "requests (more tokens than max_tokens, or fewer than text events); their "
                 "output_tokens are the event counts (usage_implausible in %s)",
                 tr->tc->name, s->usage_implausible, results_path(r->rw, "detailed"));
    if (s->prompt_off_target)
        log_warn("tenant %s: actual prompt lengths missed their targets by up to %.1f%% "
                 "(the server's tokenizer differs from the estimate; see summary)",
                 tr->tc->name, s->prompt_error_max_pct);
}

/* Adds the point's results. A checkpoint passes the done flags it snapshotted and takes only
 * those requests, without the client self-check (the loop is still filling it) and without a
 * word; the final collection (only == NULL) takes every request that was sent. */
static void point_collect(struct runner *r, struct point_run *pr, const struct point_key *k,
                          bool *const *only)
{
    bool checkpoint = only != NULL;
    struct dist dl, ll;
    dist_compute(&dl, checkpoint ? NULL : pr->dispatch_lag.v, checkpoint ? 0 : pr->dispatch_lag.n);
    dist_compute(&ll, checkpoint ? NULL : pr->loop_lag.v, checkpoint ? 0 : pr->loop_lag.n);
    for (size_t t = 0; t < pr->n_tenants; t++) {
        struct tenant_run *tr = &pr->tenants[t];
        /* Requests never released (Ctrl-C) are not part of the point. The copies are
         * shallow: the originals keep ownership and are released with the tenant. */
        struct req_record *sent = xcalloc(tr->n ? tr->n : 1, sizeof(*sent));
        size_t n = 0;
        for (size_t i = 0; i < tr->n; i++)
            if (checkpoint ? only[t][i] : tr->recs[i].t_sent != 0)
                sent[n++] = tr->recs[i];
        struct point_summary s;
        point_summary_compute(&s, sent, n, &tr->tc->slo);
        /* A point that stopped once certain keeps the verdict that stopped it. */
        struct slo_verdict look;
        if (!checkpoint && pr->drained && slo_stopper_decided(pr->stopper, t, &look))
            point_summary_set_verdict(&s, &look);
        struct telemetry_window tw;
        bool have_tw = telem_window(r, t, s.window_start, s.window_end, &tw);
        struct selfcheck sc;
        selfcheck_judge(&sc, &dl, &ll, &s);
        struct point_info pi = {
            .benchmark = r->cfg.benchmark.name,
            .tenant = tr->tc->name,
            .model = tr->model,
            .context_length = k->context,
            .concurrency = tr->concurrency,
            .rate = tr->rate,
            .arrival = tr->tc->requests.arrival,
            .trace = tr->tc->requests.trace.path != NULL,
            .trace_speed = tr->tc->requests.trace.speed,
            .num_requests = tr->tc->requests.num_requests,
            .dispatch_lag_s = dl,
            .loop_lag_s = ll,
            .client_distorted = !checkpoint && sc.distorted,
            .distortion = !checkpoint && sc.distorted ? sc.why : "",
            .client_error_s = sc.error_s,
            .partial = checkpoint || (pr->stopping && !pr->drained),
            .ended_by = checkpoint ? NULL : pr->ended_by,
            .session_turns_skipped = checkpoint ? 0 : tr->turns_skipped, /* the loop writes it */
            .point = k->index,
        };
        results_add_point(r->rw, &pi, &s, have_tw ? &tw : NULL, sent, n, r->t0);
        free(sent);
        if (checkpoint)
            continue;
        r->completed_total += s.completed;
        outcome_add(r->out, &pi, &s, have_tw ? &tw : NULL);
        if (!r->args.quiet)
            progress_print_summary(stdout, &pi, &s, have_tw ? &tw : NULL);
        /* The point is over: its pool (composing ahead after Ctrl-C) stops before the
         * workload it uses is read. */
        prompt_pool_stop(tr->pool);
        tenant_notes(r, tr, &pi, &s);
    }
}

static double checkpoint_interval_s(void)
{
    const char *env = getenv("TESTBENCH_CHECKPOINT_S");
    char *end;
    double s = env ? strtod(env, &end) : 0;
    return env && *end == '\0' && s >= 0.1 ? s : CHECKPOINT_S;
}

static void *checkpoint_main(void *arg)
{
    struct point_run *pr = arg;
    (void)thread_set_background(); /* a checkpoint may wait; the loop's timestamps may not */
    struct results_mark m;
    results_mark(pr->r->rw, &m);
    point_collect(pr->r, pr, pr->key, pr->ck.done);
    (void)runner_flush(pr->r); /* a failure is logged; the point's own flush decides */
    results_rollback(pr->r->rw, &m);
    atomic_store(&pr->ck.finished, true);
    return NULL;
}

static void checkpoint_join(struct point_run *pr)
{
    if (pr->ck.running)
        pthread_join(pr->ck.thread, NULL);
    pr->ck.running = false;
}

static void on_checkpoint(evutil_socket_t fd, short what, void *arg)
{
    struct point_run *pr = arg;
    (void)fd;
    (void)what;
    if (pr->ck.running && !atomic_load(&pr->ck.finished))
        return; /* the last one is still writing */
    checkpoint_join(pr);
    for (size_t t = 0; t < pr->n_tenants; t++)
        memcpy(pr->ck.done[t], pr->tenants[t].done, pr->tenants[t].n * sizeof(bool));
    atomic_store(&pr->ck.finished, false);
    pr->ck.running = pthread_create(&pr->ck.thread, NULL, checkpoint_main, pr) == 0;
}

/* The point's own ends besides num_requests: the earliest tenant's duration_s, and the stop
 * rule of the tenants that ask for it (the point stops once all of them are decided). A worker
 * of a distributed run holds a share of the requests, not the sample the rule looks at: it
 * runs its share to the cap, and the merged point is judged once on all of them. */
static void point_limits(struct point_run *pr)
{
    double duration = NAN;
    for (size_t t = 0; t < pr->n_tenants; t++) {
        const struct requests_cfg *rq = &pr->tenants[t].tc->requests;
        if (!isnan(rq->duration_s) && !(rq->duration_s >= duration))
            duration = rq->duration_s;
        if (!rq->stop_when_decided || pr->r->args.share)
            continue;
        if (!pr->stopper)
            pr->stopper = slo_stopper_new(pr->n_tenants);
        slo_stopper_tenant(pr->stopper, t, &pr->tenants[t].tc->slo, pr->tenants[t].n);
    }
    pr->deadline = isnan(duration) ? 0 : pr->start + s_to_ns(duration);
}

/* The point's clock: due times from now (with other workers: from the start they agree on),
 * timers armed, the loop run turn by turn until every request is done (or Ctrl-C), then its
 * results. 0, or -ECANCELED when the other workers cannot start the point with this one. */
static int point_measure(struct runner *r, struct point_run *pr, const struct point_key *k)
{
    char label[64];
    snprintf(label, sizeof(label), "point %zu/%zu", k->index + 1, k->count);
    mono_ns start = clock_now() + START_LEAD_NS;
    const struct run_share *sh = r->args.share;
    if (sh && sh->point_begin(sh->ctx, k->index, &start) != 0)
        return -ECANCELED;
    progress_begin(&pr->progress, !r->args.quiet || r->args.heartbeat,
                   r->args.label ? r->args.label : label, pr->total);
    pr->start = start;
    point_limits(pr);
    for (size_t t = 0; t < pr->n_tenants; t++) {
        struct tenant_run *tr = &pr->tenants[t];
        for (size_t i = 0; i < tr->n; i++)
            tr->due[i] += start;
        tenant_arm(tr);
    }
    pr->heartbeat = ptimer_new(r->timers, on_heartbeat, pr);
    pr->progress_ev = event_new(r->base, -1, EV_PERSIST, on_progress, pr);
    pr->checkpoint_ev = event_new(r->base, -1, EV_PERSIST, on_checkpoint, pr);
    mono_ns ck_ns = s_to_ns(checkpoint_interval_s());
    struct timeval one = {1, 0},
                   ck = {(time_t)(ck_ns / NS_PER_S), (suseconds_t)(ck_ns % NS_PER_S / 1000)};
    event_add(pr->checkpoint_ev, &ck);
    pr->hb_expected = clock_now() + HEARTBEAT_NS;
    ptimer_at(pr->heartbeat, pr->hb_expected);
    pr->events0 = client_events(r->client);
    client_take_loop_lag(r->client, NULL); /* loop threads: this point's lag only */
    if (pr->progress.enabled)
        event_add(pr->progress_ev, &one);
    /* Turn by turn, so the client can stamp a turn's events from its wake-up (the loop
     * clears the exit flag of the point before as it starts). */
    if (pr->total > 0)
        do {
            event_base_loop(r->base, EVLOOP_ONCE);
            client_turn_end(r->client);
        } while (!event_base_got_exit(r->base) && !event_base_got_break(r->base));
    client_take_loop_lag(r->client, &pr->loop_lag); /* the self-check per loop thread */
    if (sh)
        sh->point_end(sh->ctx, k->index);
    ptimer_free(pr->heartbeat);
    event_free(pr->progress_ev);
    event_free(pr->checkpoint_ev);
    progress_end(&pr->progress);
    checkpoint_join(pr);
    point_collect(r, pr, k, NULL);
    slo_stopper_free(pr->stopper); /* it borrowed the records */
    pr->stopper = NULL;
    /* A failed write does not stop the run: the point is held in memory, said once, and
     * written with the next flush (or to the fallback directory at the end). */
    (void)runner_flush(r);
    return 0;
}

int point_run(struct runner *r, const struct point_key *k)
{
    struct point_run pr;
    memset(&pr, 0, sizeof(pr));
    pr.r = r;
    pr.key = k;
    pr.n_tenants = r->cfg.n_tenants;
    pr.tenants = xcalloc(pr.n_tenants, sizeof(*pr.tenants));
    pr.ck.done = xcalloc(pr.n_tenants, sizeof(*pr.ck.done));
    dvec_init(&pr.loop_lag);
    dvec_init(&pr.dispatch_lag);
    int rc = 0;
    for (size_t t = 0; t < pr.n_tenants && rc == 0; t++) {
        struct tenant_run *tr = &pr.tenants[t];
        const struct tenant_cfg *tc = &r->cfg.tenants[t];
        tr->pr = &pr;
        tr->tc = tc;
        tr->index = (int)t;
        tr->endpoint = r->tenant_endpoint[t];
        tr->model = r->tenant_model[t];
        /* Named tenants hold single values (config.h); the default one follows the sweep. */
        tr->concurrency =
            share_cap(r, r->cfg.tenants_given ? tc->requests.concurrency[0] : k->concurrency);
        tr->rate = r->cfg.tenants_given ? tc->requests.rates[0] : k->rate;
        tr->timer = ptimer_new(r->timers, on_tenant_timer, tr);
        rc = tenant_prepare(r, tr, k);
        pr.ck.done[t] = xcalloc(tr->n ? tr->n : 1, sizeof(bool));
        pr.total += rc == 0 ? tenant_share(tr) : tr->n;
    }
    if (rc == 0)
        rc = point_await_prompts(&pr);
    if (rc == -EINTR)
        rc = 0; /* Ctrl-C while building prompts: nothing of this point was sent */
    if (rc == 0 && !run_interrupted())
        rc = point_measure(r, &pr, k);
    for (size_t t = 0; t < pr.n_tenants; t++) {
        tenant_release(&pr.tenants[t]);
        free(pr.ck.done[t]);
    }
    free(pr.ck.done);
    free(pr.tenants);
    dvec_release(&pr.loop_lag);
    dvec_release(&pr.dispatch_lag);
    return rc;
}
