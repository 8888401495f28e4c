/*
 * run.c - `testbench run`: loads a config, finds (or starts) the server, then runs each
 * point of the sweep (context × concurrency × rate), all tenants at once, on one libevent
 * loop: per-tenant timers release requests at their scheduled due times (fixed before the
 * point starts), a concurrency cap holds them in a FIFO, the client streams them. After each
 * point the summaries and files are rewritten, so an interrupted run keeps every finished
 * request. The loop also measures its own lateness (docs/METRICS.md, "client self-check").
 */
#include "runner/run.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "core/exitcode.h"
#include "core/http.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/text.h"
#include "core/thread.h"
#include "core/version.h"
#include "engine/calibration.h"
#include "runner/client.h"
#include "runner/estimate.h"
#include "runner/probe.h"
#include "runner/progress.h"
#include "runner/ptimer.h"
#include "runner/prompt.h"
#include "runner/results.h"
#include "runner/schedule.h"
#include "runner/session.h"
#include "runner/verdict.h"
#include "sim/sim.h"
#include "telemetry/telemetry.h"
#include "workload/workload.h"

#define HEARTBEAT_NS (1 * NS_PER_MS)   /* loop-lag probe (fine enough to see 1 ms stalls) */
#define START_LEAD_NS (20 * NS_PER_MS) /* first request due this long after set-up ends */
#define LATE_LIMIT_S 0.001             /* p99 lag above this: warn of distortion */
#define CHECKPOINT_S 30.0 /* files rewritten this often during a point (TESTBENCH_CHECKPOINT_S) */
/* Descriptors the runner needs besides one per stream: stdio, result files, the event loop's
 * own, telemetry's scrape and NVML, DNS, /tokenize calls. */
#define FD_RESERVE 64
/* Prompts are built on a thread of their own while the point runs, at most PROMPT_AHEAD ahead
 * of the requests released (memory stays bounded whatever num_requests is); the point starts
 * once PROMPT_LEAD of them (or all, or the concurrency cap's worth) are ready, so a slow
 * /tokenize no longer delays the whole load until every prompt exists. */
#define PROMPT_AHEAD 1024
#define PROMPT_LEAD 32
#define PROMPT_POLL_NS (1 * NS_PER_MS)

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

struct run_args {
    const char *config;
    struct run_options o;
};

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
    char **prompts;
    mono_ns *due;           /* absolute due times */
    bool *held;             /* waited for a concurrency slot */
    bool *done;             /* its result is in (ok, failed or cancelled) */
    size_t next;            /* next index not yet released */
    atomic_size_t released; /* = next, for the prompt thread */
    atomic_size_t built;    /* prompts[0..built) are ready (the prompt thread's progress) */
    atomic_bool prompt_stop;
    pthread_t prompt_thread;
    bool prompt_running;
    size_t prompt_waits; /* requests released late because their prompt was not built */
    size_t waited_for;   /* index + 1 of the request last counted there, 0 = none */
    int context;
    size_t point;
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

struct runner {
    struct config cfg;
    struct run_options args;
    struct run_outcome *out; /* points measured, for callers of run_config() */
    struct event_base *base;
    struct ptimer_set *timers; /* the run loop's precise timers (releases, heartbeat) */
    struct client *client;
    struct telemetry **telems; /* [0]: GPUs, host and the first endpoint's /metrics;
                                  [k > 0]: another endpoint's /metrics (partitioned
                                  tenants, one server each) */
    char **telem_endpoint;
    size_t n_telems;
    size_t *tenant_telem; /* per tenant: its endpoint's index in telems */
    struct results_writer *rw;
    struct prompt_builder **builders; /* per tenant */
    struct workload **workloads;      /* per tenant: lengths, datasets, traces, RAG */
    struct sim_server *sim;
    const char *api_key;
    char **tenant_endpoint; /* resolved per tenant (sim overrides) */
    char **tenant_model;
    long *tenant_max_len;
    bool *tenant_ignore_eos; /* the server takes vLLM's ignore_eos/min_tokens */
    mono_ns t0;
    size_t completed_total;
    bool write_failed;     /* the last flush failed: results are held in memory */
    char write_error[512]; /* its message, said once until it changes */
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

static void tenant_start(struct tenant_run *tr, size_t i)
{
    struct runner *r = tr->pr->r;
    struct client_request rq = {
        .base_url = tr->endpoint,
        .api = r->cfg.server.api,
        .model = tr->model,
        .prompt = tr->prompts[i],
        .messages_json = workload_messages(r->workloads[tr->index]) ? tr->prompts[i] : NULL,
        .max_tokens = tr->recs[i].target_output_tokens,
        .ignore_eos = r->tenant_ignore_eos[tr->index],
    };
    tr->in_flight++;
    tr->sent++;
    /* Decided before the transfer starts: with loop threads the record is theirs after. */
    const struct requests_cfg *wcfg = &tr->tc->requests;
    tr->recs[i].warmup =
        tr->sent <= (size_t)wcfg->warmup_requests ||
        (wcfg->warmup_s > 0 && clock_now() < tr->pr->start + s_to_ns(wcfg->warmup_s));
    int rc = 0;
    if (tr->sessions && session_fill_request(tr->sessions, i, &tr->prompts[i], &tr->recs[i], &rq))
        req_record_fail(&tr->recs[i], REQ_CLIENT_LIMIT,
                        "the session's conversation grew past what the runner keeps");
    else
        rc = client_start(r->client, &rq, &tr->recs[i], on_request_done, tr);
    if (rc != 0 || tr->recs[i].status != REQ_OK) {
        if (tr->recs[i].t_sent == 0)
            tr->recs[i].t_sent = clock_now();
        tr->recs[i].t_end = tr->recs[i].t_sent;
        on_request_done(tr, &tr->recs[i]);
        return;
    }
    if (!tr->held[i])
        dvec_push(&tr->pr->dispatch_lag, ns_diff_s(tr->recs[i].t_due, tr->recs[i].t_sent));
    free(tr->prompts[i]); /* the body was built in client_start */
    tr->prompts[i] = NULL;
}

/* Moves past the arrivals other workers send, so that the timer wakes for this one's only. */
static void tenant_skip_others(struct tenant_run *tr)
{
    size_t k = tr->next;
    while (k < tr->n_arrivals && !share_owns(tr->pr->r, k))
        k++;
    if (k == tr->next)
        return;
    tr->next = k;
    atomic_store(&tr->released, tr->sessions ? session_set_first(tr->sessions, k) : k);
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
        atomic_store(&tr->released, session_set_first(tr->sessions, tr->next));
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
        if (atomic_load(&tr->built) <= tr->next) {
            /* Its prompt is not built yet (a slow /tokenize): try again shortly. The wait
             * shows in dispatch lag, and is counted and said at the end of the point. */
            if (tr->waited_for != tr->next + 1) { /* count each request once */
                tr->prompt_waits++;
                tr->waited_for = tr->next + 1;
            }
            ptimer_at(tr->timer, now + PROMPT_POLL_NS);
            return;
        }
        size_t i = tr->next++;
        atomic_store(&tr->released, tr->next);
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
        atomic_store(&pr->tenants[t].prompt_stop, true);
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
        atomic_store(&pr->tenants[t].prompt_stop, true);
    }
    client_cancel_all(pr->r->client);
    point_maybe_done(pr);
}

/* Measures how late the loop runs its timers, and notices Ctrl-C. */
static void on_heartbeat(void *arg, mono_ns now)
{
    struct point_run *pr = arg;
    dvec_push(&pr->loop_lag, ptimer_probe_tick(pr->heartbeat, &pr->hb_expected, HEARTBEAT_NS, now));
    if (interrupted)
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

/* ---- preparing a point ----------------------------------------------------------------- */

uint64_t run_point_seed(uint64_t seed, size_t point, size_t tenant, const char *what)
{
    char key[128];
    int n = snprintf(key, sizeof(key), "%zu/%zu/%s", point, tenant, what);
    return hash64(key, (unsigned long)n, seed);
}

static uint64_t derive_seed(uint64_t seed, size_t point, size_t tenant, const char *what)
{
    return run_point_seed(seed, point, tenant, what);
}

/* The prompt thread: builds prompts in order, never more than PROMPT_AHEAD beyond the
 * requests released. Only it uses the tenant's builder while the point runs. */
static void *prompt_main(void *arg)
{
    struct tenant_run *tr = arg;
    struct runner *r = tr->pr->r;
    uint64_t base = derive_seed(r->cfg.benchmark.seed, tr->point, (size_t)tr->index, "prompt");
    (void)thread_set_background(); /* it runs ahead of the loop; its wake-ups must not preempt it */
    for (size_t i = 0; i < tr->n; i++) {
        while (i >= atomic_load(&tr->released) + PROMPT_AHEAD && !atomic_load(&tr->prompt_stop))
            clock_sleep_ns(PROMPT_POLL_NS);
        if (atomic_load(&tr->prompt_stop))
            break;
        /* The actual count comes from the server's usage; the builder's own is not needed.
         * A session's later messages do not repeat the shared prefix: the conversation they
         * join starts with it. */
        if (tr->recs[i].turn > 0)
            tr->prompts[i] = prompt_build(r->builders[tr->index], tr->recs[i].target_prompt_tokens,
                                          0, base + i, NULL);
        else
            tr->prompts[i] = workload_prompt(r->workloads[tr->index], r->builders[tr->index],
                                             base + i, i, &tr->recs[i]);
        atomic_store(&tr->built, i + 1); /* publishes prompts[i] to the loop */
    }
    return NULL;
}

/* ---- sessions' hooks (session.h) ---- */

static bool session_ready(void *ctx, size_t i)
{
    struct tenant_run *tr = ctx;
    if (atomic_load(&tr->built) > i)
        return true;
    if (tr->waited_for != i + 1) { /* counted once per request, as for arrivals */
        tr->prompt_waits++;
        tr->waited_for = i + 1;
    }
    return false;
}

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
    (void)s;
    tr->pr->finished += skipped;
    tr->pr->progress.done += skipped; /* the bar reaches its end */
    if (!tr->pr->stopping)
        tr->turns_skipped += skipped;
}

/* Users who hold conversations: the arrivals are sessions; the cap bounds open sessions. */
static int tenant_sessions_new(struct runner *r, struct tenant_run *tr, size_t point)
{
    const struct session_hooks hooks = {session_ready, session_release, session_ended, tr};
    uint64_t seed = derive_seed(r->cfg.benchmark.seed, point, (size_t)tr->index, "think");
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

static int tenant_prepare(struct runner *r, struct tenant_run *tr, size_t point, int context)
{
    const struct requests_cfg *rq = &tr->tc->requests;
    uint64_t seed = r->cfg.benchmark.seed;
    struct workload *w = r->workloads[tr->index];
    tr->n = workload_n_requests(w);
    tr->recs = xcalloc(tr->n, sizeof(*tr->recs));
    tr->prompts = xcalloc(tr->n, sizeof(*tr->prompts));
    tr->due = xcalloc(tr->n, sizeof(*tr->due));
    tr->held = xcalloc(tr->n, sizeof(*tr->held));
    tr->done = xcalloc(tr->n, sizeof(*tr->done));
    tr->fifo = xcalloc(tr->n, sizeof(*tr->fifo));
    tr->n_arrivals = tr->n;
    if (rq->session.enabled) {
        int src = tenant_sessions_new(r, tr, point);
        if (src)
            return src;
    }
    int rc = 0;
    if (!workload_schedule(w, tr->due, tr->n)) /* a trace has its own arrival times */
        rc = schedule_build(tr->due, tr->n_arrivals, rq->arrival, tr->rate, rq->burstiness,
                            derive_seed(seed, point, (size_t)tr->index, "schedule"));
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
    workload_plan(w, derive_seed(seed, point, (size_t)tr->index, "lengths"), context, tr->recs,
                  tr->n);
    if (tr->sessions)
        workload_plan_turns(rq, derive_seed(seed, point, (size_t)tr->index, "turns"), context,
                            tr->recs, tr->n);
    tr->context = context;
    tr->point = point;
    atomic_store(&tr->built, 0);
    atomic_store(&tr->released, 0);
    atomic_store(&tr->prompt_stop, false);
    tr->prompt_running = pthread_create(&tr->prompt_thread, NULL, prompt_main, tr) == 0;
    if (!tr->prompt_running) {
        log_error("tenant %s: cannot start the prompt thread", tr->tc->name);
        return -EAGAIN;
    }
    return 0;
}

/* Waits until the first prompts of tr are ready (or interrupted). */
static int tenant_await_lead(struct tenant_run *tr)
{
    size_t lead = tr->n_arrivals < PROMPT_LEAD ? tr->n_arrivals : PROMPT_LEAD;
    if (tr->concurrency > 0 && (size_t)tr->concurrency < lead)
        lead = (size_t)tr->concurrency;
    if (tr->sessions && lead > 0) /* up to the first turn of the last session that starts */
        lead = session_set_first(tr->sessions, lead - 1) + 1;
    while (atomic_load(&tr->built) < lead && !interrupted && tr->prompt_running)
        clock_sleep_ns(PROMPT_POLL_NS);
    return interrupted ? -EINTR : 0;
}

static void tenant_stop_prompts(struct tenant_run *tr)
{
    if (!tr->prompt_running)
        return;
    atomic_store(&tr->prompt_stop, true);
    pthread_join(tr->prompt_thread, NULL);
    tr->prompt_running = false;
}

static void tenant_release(struct tenant_run *tr)
{
    tenant_stop_prompts(tr);
    session_set_free(tr->sessions);
    for (size_t i = 0; i < tr->n; i++) {
        req_record_release(&tr->recs[i]);
        free(tr->prompts ? tr->prompts[i] : NULL);
    }
    free(tr->recs);
    free(tr->prompts);
    free(tr->due);
    free(tr->held);
    free(tr->done);
    free(tr->fifo);
    ptimer_free(tr->timer);
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

/* ---- one point -------------------------------------------------------------------------- */

struct point_key {
    size_t index;
    size_t count;
    int context;     /* 0 = none */
    int concurrency; /* top-level sweep value */
    double rate;
};

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
        struct req_record *sent = xcalloc(tr->n, sizeof(*sent));
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
        struct point_info pi = {
            .benchmark = r->cfg.benchmark.name,
            .tenant = tr->tc->name,
            .model = tr->model,
            .context_length = k->context,
            .concurrency = tr->concurrency,
            .rate = tr->rate,
            .arrival = tr->tc->requests.arrival,
            .num_requests = tr->tc->requests.num_requests,
            .dispatch_lag_s = dl,
            .loop_lag_s = ll,
            .client_distorted = (dl.n && dl.p99 > LATE_LIMIT_S) ||
                                (ll.n && ll.p99 > LATE_LIMIT_S) ||
                                (!checkpoint && tr->prompt_waits > 0),
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
        /* The point is over: its prompt thread (still running after Ctrl-C) stops before the
         * workload it writes is read. */
        tenant_stop_prompts(tr);
        workload_point_note(r->workloads[t], tr->tc->name);
        if (tr->turns_skipped)
            log_warn("tenant %s: %zu session turns were not sent because an earlier turn of "
                     "their conversation failed",
                     tr->tc->name, tr->turns_skipped);
        if (tr->prompt_waits)
            log_warn("tenant %s: %zu requests were sent late because their prompts were not "
                     "built in time (a slow /tokenize); the point is marked client_distorted",
                     tr->tc->name, tr->prompt_waits);
        if (s.usage_implausible)
            log_warn("tenant %s: the server's usage contradicted what it streamed for %zu "
                     "requests (more tokens than max_tokens, or fewer than text events); their "
                     "output_tokens are the event counts (usage_implausible in %s)",
                     tr->tc->name, s.usage_implausible, results_path(r->rw, "detailed"));
        if (s.prompt_off_target)
            log_warn("tenant %s: actual prompt lengths missed their targets by up to %.1f%% "
                     "(the server's tokenizer differs from the estimate; see summary)",
                     tr->tc->name, s.prompt_error_max_pct);
    }
}

static int flush_results(struct runner *r)
{
    char err[512];
    for (size_t k = 0; k < r->n_telems; k++)
        if (r->telems[k])
            telemetry_sample_now(r->telems[k]);
    json_t *tj = telem_main(r) ? telemetry_json(telem_main(r)) : NULL;
    /* Other endpoints' /metrics samples, beside the main timeline (same clock). */
    json_t *others = json_array();
    for (size_t k = 1; k < r->n_telems; k++) {
        if (!r->telems[k])
            continue;
        json_t *oj = telemetry_json(r->telems[k]);
        json_array_append_new(others, json_pack("{s:s, s:O}", "endpoint", r->telem_endpoint[k],
                                                "samples", json_object_get(oj, "samples")));
        json_decref(oj);
    }
    if (tj && json_array_size(others))
        json_object_set(tj, "other_servers", others);
    json_decref(others);
    const struct run_share *sh = r->args.share;
    if (sh)
        results_set_load(r->rw, sh->describe(sh->ctx));
    int rc = results_flush(r->rw, tj, err, sizeof(err));
    json_decref(tj);
    if (rc && strcmp(err, r->write_error) != 0) {
        log_error("%s%s", err,
                  r->out->n_points ? "; the results are kept in memory and written again after "
                                     "the next point"
                                   : "");
        snprintf(r->write_error, sizeof(r->write_error), "%s", err);
    } else if (!rc && r->write_failed) {
        log_info("results written again: %s", results_path(r->rw, "detailed"));
        r->write_error[0] = '\0';
    }
    r->write_failed = rc != 0;
    return rc;
}

/* Where the results go when their directory cannot take them at the end:
 * TESTBENCH_FALLBACK_DIR, else $TMPDIR, else /tmp. */
static const char *fallback_dir(void)
{
    const char *d = getenv("TESTBENCH_FALLBACK_DIR");
    if (!d || !*d)
        d = getenv("TMPDIR");
    return d && *d ? d : "/tmp";
}

/* The last flush: when the output directory still fails, the measured points go to the
 * fallback directory rather than being lost. 0 when they were written somewhere. */
static int flush_final(struct runner *r)
{
    if (flush_results(r) == 0)
        return 0;
    char err[512];
    const char *dir = fallback_dir();
    char *from = xstrdup(results_path(r->rw, "detailed"));
    int rc = results_relocate(r->rw, dir, err, sizeof(err));
    if (rc == 0)
        rc = flush_results(r);
    if (rc == 0)
        log_error("%s could not be written; every measured point is in %s instead (and the "
                  "matching _summary.csv, _telemetry.json)",
                  from, results_path(r->rw, "detailed"));
    else
        log_error("the results could not be written to %s either: they are lost", dir);
    free(from);
    return -EIO; /* not where they were asked for: exit 1 either way */
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
    (void)flush_results(pr->r); /* a failure is logged; the point's own flush decides */
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

static int point_run(struct runner *r, const struct point_key *k)
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
        rc = tenant_prepare(r, tr, k->index, k->context);
        pr.ck.done[t] = xcalloc(tr->n ? tr->n : 1, sizeof(bool));
        pr.total += rc == 0 ? tenant_share(tr) : tr->n;
    }
    for (size_t t = 0; t < pr.n_tenants && rc == 0; t++)
        rc = tenant_await_lead(&pr.tenants[t]);
    if (rc == -EINTR)
        rc = 0; /* Ctrl-C while building prompts: nothing of this point was sent */
    if (rc == 0 && !interrupted) {
        char label[64];
        snprintf(label, sizeof(label), "point %zu/%zu", k->index + 1, k->count);
        mono_ns start = clock_now() + START_LEAD_NS;
        const struct run_share *sh = r->args.share;
        if (sh && sh->point_begin(sh->ctx, k->index, &start) != 0) {
            rc = -ECANCELED; /* the other workers cannot start it with this one */
            goto out;
        }
        progress_begin(&pr.progress, !r->args.quiet || r->args.heartbeat,
                       r->args.label ? r->args.label : label, pr.total);
        pr.start = start;
        point_limits(&pr);
        for (size_t t = 0; t < pr.n_tenants; t++) {
            struct tenant_run *tr = &pr.tenants[t];
            for (size_t i = 0; i < tr->n; i++)
                tr->due[i] += start;
            tenant_arm(tr);
        }
        pr.heartbeat = ptimer_new(r->timers, on_heartbeat, &pr);
        pr.progress_ev = event_new(r->base, -1, EV_PERSIST, on_progress, &pr);
        pr.checkpoint_ev = event_new(r->base, -1, EV_PERSIST, on_checkpoint, &pr);
        mono_ns ck_ns = s_to_ns(checkpoint_interval_s());
        struct timeval one = {1, 0},
                       ck = {(time_t)(ck_ns / NS_PER_S), (suseconds_t)(ck_ns % NS_PER_S / 1000)};
        event_add(pr.checkpoint_ev, &ck);
        pr.hb_expected = clock_now() + HEARTBEAT_NS;
        ptimer_at(pr.heartbeat, pr.hb_expected);
        pr.events0 = client_events(r->client);
        client_take_loop_lag(r->client, NULL); /* loop threads: this point's lag only */
        if (pr.progress.enabled)
            event_add(pr.progress_ev, &one);
        /* Turn by turn, so the client can stamp a turn's events from its wake-up (the loop
         * clears the exit flag of the point before as it starts). */
        if (pr.total > 0)
            do {
                event_base_loop(r->base, EVLOOP_ONCE);
                client_turn_end(r->client);
            } while (!event_base_got_exit(r->base) && !event_base_got_break(r->base));
        client_take_loop_lag(r->client, &pr.loop_lag); /* the self-check per loop thread */
        if (sh)
            sh->point_end(sh->ctx, k->index);
        ptimer_free(pr.heartbeat);
        event_free(pr.progress_ev);
        event_free(pr.checkpoint_ev);
        progress_end(&pr.progress);
        checkpoint_join(&pr);
        point_collect(r, &pr, k, NULL);
        slo_stopper_free(pr.stopper); /* it borrowed the records */
        pr.stopper = NULL;
        /* A failed write does not stop the run: the point is held in memory, said once, and
         * written with the next flush (or to the fallback directory at the end). */
        (void)flush_results(r);
    }
out:
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

/* ---- set-up ----------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct run_args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"endpoint", required_argument, NULL, 'e'},
        {"model", required_argument, NULL, 'm'},  {"output-dir", required_argument, NULL, 'o'},
        {"sim", no_argument, NULL, 's'},          {"quiet", no_argument, NULL, 'q'},
        {"wait", required_argument, NULL, 'w'},   {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    a->o.wait_s = 5;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:e:m:o:sqw:t:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 'e':
            a->o.endpoint = optarg;
            break;
        case 'm':
            a->o.model = optarg;
            break;
        case 'o':
            a->o.output_dir = optarg;
            break;
        case 's':
            a->o.sim = true;
            break;
        case 'q':
            a->o.quiet = true;
            break;
        case 'w':
            /* NAN compares false with everything and never ended the wait: refused, as are
             * negative values; "inf" waits until the server is ready or a signal comes. */
            a->o.wait_s = strtod(optarg, &end);
            if (end == optarg || *end || isnan(a->o.wait_s) || a->o.wait_s < 0) {
                log_error("run: --wait expects seconds (a number >= 0, or inf), got '%s'", optarg);
                return -EINVAL;
            }
            break;
        case 't': {
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end || n < 1 || n > 256) {
                log_error("run: --threads expects a number of loop threads 1..256, got '%s'",
                          optarg);
                return -EINVAL;
            }
            a->o.threads = (int)n;
            break;
        }
        default:
            return -EINVAL;
        }
    }
    if (optind < argc) {
        log_error("run: unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (!a->config) {
        log_error("run: --config FILE is required (see 'testbench help run')");
        return -EINVAL;
    }
    return 0;
}

int run_parse_args(int argc, char **argv, const char **config, struct run_options *o)
{
    struct run_args a;
    int rc = parse_args(argc, argv, &a);
    *config = a.config;
    *o = a.o;
    return rc;
}

static int apply_overrides(struct runner *r)
{
    struct config *c = &r->cfg;
    if (r->args.endpoint)
        config_set_endpoint(c, r->args.endpoint);
    if (r->args.model)
        config_set_model(c, r->args.model);
    if (r->args.output_dir) {
        free(c->benchmark.output_dir);
        c->benchmark.output_dir = xstrdup(r->args.output_dir);
    }
    if (r->args.sim)
        c->server.sim.enabled = true;
    char err[1024];
    if (config_check(c, err, sizeof(err))) {
        log_error("%s", err);
        return -EINVAL;
    }
    return 0;
}

/* The simulator serves the config's model; tenants naming other models become LoRA adapters. */
int run_sim_start(const struct config *c, bool quiet, struct sim_server **out)
{
    const struct sim_cfg *s = &c->server.sim;
    struct sim_options o;
    sim_options_init(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.quiet = quiet;
    o.seed = s->seed;
    o.engine.gpu = s->gpu;
    o.engine.model = s->model ? s->model : c->model.name;
    o.engine.quantization = s->quantization ? s->quantization : c->model.quantization;
    o.engine.kv_cache_dtype = s->kv_cache_dtype;
    o.reasoning_tokens = s->reasoning_tokens;
    o.prompt_tokens_details = s->enable_prompt_tokens_details;
    o.engine.catalog_dir = s->catalog;
    struct cost_calibration cal;
    if (s->calibration) {
        char err[512];
        cost_calibration_default(&cal);
        if (cost_calibration_load(&cal, s->calibration, err, sizeof(err))) {
            log_error("run: server.sim.calibration: %s", err);
            return -EINVAL;
        }
        o.engine.calibration = &cal;
    }
    o.engine.max_model_len = s->max_model_len;
    o.engine.gpu_memory_utilization = s->gpu_memory_utilization;
    o.engine.max_num_seqs = s->max_num_seqs;
    o.engine.max_num_batched_tokens = s->max_num_batched_tokens;
    o.engine.enable_prefix_caching =
        s->enable_prefix_caching >= 0 ? s->enable_prefix_caching : c->model.enable_prefix_caching;
    o.engine.tensor_parallel_size =
        s->tensor_parallel_size ? s->tensor_parallel_size : c->model.tensor_parallel_size;
    const char **lora = xcalloc(c->n_tenants, sizeof(*lora));
    char **lora_own = xcalloc(c->n_tenants, sizeof(*lora_own));
    size_t n_lora = 0;
    for (size_t t = 0; t < c->n_tenants; t++) {
        const char *m = c->tenants[t].model;
        if (m && o.engine.model && strcmp(m, o.engine.model) != 0) {
            lora_own[n_lora] = xasprintf("%s=sim", m);
            lora[n_lora] = lora_own[n_lora];
            n_lora++;
        }
    }
    o.lora_modules = lora;
    o.n_lora_modules = n_lora;
    o.engine.num_lora_slots = (int)n_lora;
    char err[1024];
    int rc = sim_server_start(out, &o, err, sizeof(err));
    for (size_t i = 0; i < n_lora; i++)
        free(lora_own[i]);
    free(lora_own);
    free(lora);
    if (rc)
        log_error("cannot start the built-in simulator: %s", err);
    return rc;
}

static int start_sim(struct runner *r)
{
    const struct config *c = &r->cfg;
    int rc = run_sim_start(c, r->args.quiet, &r->sim);
    if (rc)
        return rc;
    char *ep = xasprintf("http://127.0.0.1:%d", sim_server_port(r->sim));
    log_info("simulator listening on %s", ep);
    for (size_t t = 0; t < c->n_tenants; t++) {
        free(r->tenant_endpoint[t]);
        r->tenant_endpoint[t] = xstrdup(ep);
    }
    free(ep);
    return 0;
}

/* Probes each tenant's server; fills model names and max lengths. Returns an exit code. */
/* An earlier tenant on the same server, or -1: its answers are reused, not asked again. */
static long same_server(const struct runner *r, size_t t)
{
    for (size_t u = 0; u < t; u++)
        if (strcmp(r->tenant_endpoint[u], r->tenant_endpoint[t]) == 0)
            return (long)u;
    return -1;
}

/* Checks one tenant's model against the server's vLLM extensions (once per server and model). */
static void tenant_extensions(struct runner *r, size_t t, long u)
{
    if (u >= 0 && strcmp(r->tenant_model[u], r->tenant_model[t]) == 0) {
        r->tenant_ignore_eos[t] = r->tenant_ignore_eos[u];
        return;
    }
    probe_extensions(r->tenant_endpoint[t], r->cfg.server.api == API_CHAT, r->tenant_model[t],
                     r->api_key, &r->tenant_ignore_eos[t]);
    if (!r->tenant_ignore_eos[t])
        log_warn("%s rejects vLLM's ignore_eos/min_tokens: sending max_tokens alone, so "
                 "outputs may end before completion_tokens (see output_tokens per request)",
                 r->tenant_endpoint[t]);
}

/* Probes each distinct server once; fills every tenant's model name and max length. */
static int probe_servers(struct runner *r, json_t **server_json)
{
    const struct config *c = &r->cfg;
    *server_json = NULL;
    for (size_t t = 0; t < c->n_tenants; t++) {
        long u = same_server(r, t);
        if (u >= 0) {
            const char *model = c->tenants[t].model ? c->tenants[t].model : r->tenant_model[u];
            r->tenant_model[t] = xstrdup(model);
            r->tenant_max_len[t] = r->tenant_max_len[u];
            tenant_extensions(r, t, u);
            continue;
        }
        struct server_info si;
        char err[1024];
        int rc =
            probe_server(r->tenant_endpoint[t], r->api_key, r->args.wait_s, &si, err, sizeof(err));
        if (rc == -EINTR) {
            server_info_release(&si);
            return TB_EXIT_INTERRUPTED;
        }
        if (rc) {
            log_error("%s", err);
            server_info_release(&si);
            return rc == -EACCES ? TB_EXIT_RUNTIME : TB_EXIT_UNREACHABLE;
        }
        const char *model = c->tenants[t].model;
        if (!model && si.n_models)
            model = si.models[0];
        if (!model) {
            log_error("%s does not list a model in /v1/models; set model.name in the config or "
                      "--model",
                      r->tenant_endpoint[t]);
            server_info_release(&si);
            return TB_EXIT_USAGE;
        }
        r->tenant_model[t] = xstrdup(model);
        /* vLLM reports one max_model_len for the base model and its adapters. */
        r->tenant_max_len[t] = si.max_model_len;
        tenant_extensions(r, t, -1);
        if (t == 0)
            *server_json = server_info_json(&si, model);
        /* The server's strings may hold terminal escapes (a title, a cleared screen). */
        char shown_model[256], shown_version[128];
        term_clean(shown_model, sizeof(shown_model), model);
        term_clean(shown_version, sizeof(shown_version), si.version ? si.version : "unknown");
        log_info("server %s: model %s, version %s, max_model_len %ld", r->tenant_endpoint[t],
                 shown_model, shown_version, r->tenant_max_len[t]);
        server_info_release(&si);
    }
    return TB_EXIT_OK;
}

static json_t *tool_json(void)
{
    return json_pack("{s:s, s:s, s:s}", "name", "testbench", "version", TB_VERSION, "git", TB_GIT);
}

static int open_results(struct runner *r, json_t *server_json)
{
    char err[1024], started[64];
    int rc = results_open(&r->rw, r->cfg.benchmark.output_dir, r->cfg.benchmark.output_prefix, err,
                          sizeof(err));
    if (rc) {
        log_error("%s", err);
        json_decref(server_json);
        return rc;
    }
    clock_wall_iso(started, sizeof(started));
    results_set_clock(r->rw, r->t0);
    results_set_meta(r->rw, started, tool_json(), config_to_json(&r->cfg), server_json,
                     host_info_json(),
                     telem_main(r) ? telemetry_gpus_json(telem_main(r)) : json_array());
    return 0;
}

/* One sampler for the GPUs, the host and the first tenant's server; one more per other
 * server endpoint, scraping its /metrics only. */
static void start_telemetry(struct runner *r)
{
    const struct telemetry_cfg *tc = &r->cfg.telemetry;
    size_t n = r->cfg.n_tenants;
    r->telems = xcalloc(n, sizeof(*r->telems));
    r->telem_endpoint = xcalloc(n, sizeof(*r->telem_endpoint));
    r->tenant_telem = xcalloc(n, sizeof(*r->tenant_telem));
    for (size_t t = 0; t < n; t++) {
        size_t k = 0;
        while (k < r->n_telems && strcmp(r->telem_endpoint[k], r->tenant_endpoint[t]) != 0)
            k++;
        if (k == r->n_telems && k > 0 && !tc->scrape_server_metrics)
            k = 0; /* nothing to sample per server */
        r->tenant_telem[t] = k;
        if (k < r->n_telems)
            continue;
        char *url =
            tc->scrape_server_metrics ? xasprintf("%s/metrics", r->tenant_endpoint[t]) : NULL;
        struct telemetry_options o = {
            .interval_s = tc->sample_interval_sec,
            .gpu = k == 0 && tc->collect_gpu_stats,
            .metrics_url = url,
            .api_key = r->api_key,
            .host = k == 0,
            .t0 = r->t0,
        };
        r->telem_endpoint[k] = xstrdup(r->tenant_endpoint[t]);
        r->n_telems++;
        if (telemetry_start(&r->telems[k], &o) != 0) {
            log_warn("telemetry for %s could not start; the run goes on without it",
                     r->tenant_endpoint[t]);
            r->telems[k] = NULL;
        }
        free(url);
    }
}

static void stop_telemetry(struct runner *r)
{
    for (size_t k = 0; k < r->n_telems; k++)
        if (r->telems[k])
            telemetry_stop(r->telems[k]);
}

static bool context_fits(struct runner *r, int context)
{
    for (size_t t = 0; t < r->cfg.n_tenants; t++) {
        if (r->tenant_max_len[t] > 0 && context > r->tenant_max_len[t]) {
            log_warn("context %d is longer than the server's max_model_len %ld (%s); skipping "
                     "its points",
                     context, r->tenant_max_len[t], r->tenant_endpoint[t]);
            return false;
        }
    }
    return true;
}

static int run_points(struct runner *r)
{
    const struct config *c = &r->cfg;
    size_t n_ctx = c->n_context_lengths ? c->n_context_lengths : 1;
    size_t per_ctx = c->requests.n_concurrency * c->requests.n_rates;
    size_t count = config_n_points(c);
    for (size_t ci = 0; ci < n_ctx; ci++) {
        int context = c->n_context_lengths ? c->context_lengths[ci] : 0;
        if (context && !context_fits(r, context))
            continue; /* said once for all its concurrency and rate points */
        for (size_t k = 0; k < c->requests.n_concurrency; k++) {
            for (size_t q = 0; q < c->requests.n_rates; q++) {
                if (interrupted)
                    return 0;
                struct point_key key = {ci * per_ctx + k * c->requests.n_rates + q, count, context,
                                        c->requests.concurrency[k], c->requests.rates[q]};
                int rc = point_run(r, &key);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

static void runner_release(struct runner *r)
{
    for (size_t k = 0; k < r->n_telems; k++) {
        telemetry_free(r->telems[k]);
        free(r->telem_endpoint[k]);
    }
    free(r->telems);
    free(r->telem_endpoint);
    free(r->tenant_telem);
    client_free(r->client);
    ptimer_set_free(r->timers);
    if (r->base)
        event_base_free(r->base);
    for (size_t t = 0; t < r->cfg.n_tenants; t++) {
        if (r->builders)
            prompt_builder_free(r->builders[t]);
        if (r->workloads)
            workload_free(r->workloads[t]);
        if (r->tenant_endpoint)
            free(r->tenant_endpoint[t]);
        if (r->tenant_model)
            free(r->tenant_model[t]);
    }
    free(r->builders);
    free(r->workloads);
    free(r->tenant_endpoint);
    free(r->tenant_model);
    free(r->tenant_max_len);
    free(r->tenant_ignore_eos);
    results_free(r->rw);
    sim_server_stop(r->sim);
    config_release(&r->cfg);
}

static struct event_base *loop_new(void)
{
    /* libevent's own timers stay coarse (progress, checkpoints): what needs sub-millisecond
     * accuracy (releases, session turns, the heartbeat, libcurl's timer) runs on ptimer sets,
     * since libevent's precise timers re-arm a timerfd on every loop turn (ptimer.h). */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    struct event_base *b = event_base_new_with_config(ec);
    event_config_free(ec);
    return b;
}

/* The most streams the config can have open at once: each tenant's concurrency cap (the
 * largest of a sweep), or all its requests when uncapped. */
static rlim_t streams_planned(const struct config *c)
{
    rlim_t n = 0;
    for (size_t t = 0; t < c->n_tenants; t++) {
        const struct requests_cfg *rq = &c->tenants[t].requests;
        rlim_t most = 0;
        for (size_t k = 0; k < rq->n_concurrency; k++) {
            rlim_t v =
                rq->concurrency[k] > 0 ? (rlim_t)rq->concurrency[k] : (rlim_t)rq->num_requests;
            most = v > most ? v : most;
        }
        n += most + 2; /* + its /tokenize and telemetry connections */
    }
    return n;
}

/* Loop threads for the transfers: --threads, else one per CLIENT_STREAMS_PER_THREAD planned
 * streams (at ~100 events/s a stream and ~8 us an event, most of a core) up to the CPUs but
 * one, which stays with the run's own loop; 1 = the transfers run on the run's loop. */
#define CLIENT_STREAMS_PER_THREAD 1000
static int client_threads(const struct runner *r)
{
    if (r->args.threads > 0)
        return r->args.threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    rlim_t want =
        (streams_planned(&r->cfg) + CLIENT_STREAMS_PER_THREAD - 1) / CLIENT_STREAMS_PER_THREAD;
    long most = cpus > 2 ? cpus - 1 : 1;
    return want > (rlim_t)most ? (int)most : want < 1 ? 1 : (int)want;
}

/* Every stream holds a socket: check the descriptor limit before any load (running out
 * mid-run looked like a server that refused connections, and libevent exits on it). The
 * soft limit is raised up to the hard one when that is enough. 0, or -EMFILE (said). */
static int check_fd_limit(const struct config *c)
{
    rlim_t need = streams_planned(c) + FD_RESERVE;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) {
        struct rlimit up = {rl.rlim_max == RLIM_INFINITY ? need : rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return 0;
    }
    log_error("this run needs about %llu file descriptors (%llu concurrent streams and "
              "connections + %d for the runner), but the limit is %llu (hard limit %llu): raise it "
              "(ulimit -n %llu) or lower concurrent_requests",
              (unsigned long long)need, (unsigned long long)(need - FD_RESERVE), FD_RESERVE,
              (unsigned long long)rl.rlim_cur,
              rl.rlim_max == RLIM_INFINITY ? 0ull : (unsigned long long)rl.rlim_max,
              (unsigned long long)need);
    return -EMFILE;
}

/* True for localhost, 127.0.0.0/8 and [::1]: traffic that never leaves the machine. */
static bool host_is_loopback(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    const char *at = strchr(h, '@');
    size_t hl = strcspn(h, "/?#");
    if (at && (size_t)(at - h) < hl)
        h = at + 1;
    return strncmp(h, "localhost", 9) == 0 || strncmp(h, "127.", 4) == 0 ||
           strncmp(h, "[::1]", 5) == 0;
}

/* The API key and URL credentials never reach a file or a message (core/text.h); a key sent
 * in clear text over the network is worth a warning. */
static void register_secrets(struct runner *r)
{
    secret_add(r->api_key);
    bool warned = false;
    for (size_t t = 0; t < r->cfg.n_tenants; t++) {
        const char *ep = r->tenant_endpoint[t];
        char *ui = url_userinfo(ep);
        if (ui) {
            secret_add(ui);
            const char *colon = strchr(ui, ':');
            if (colon)
                secret_add(colon + 1);
            free(ui);
        }
        if (!warned && r->api_key && r->api_key[0] && strncmp(ep, "http://", 7) == 0 &&
            !host_is_loopback(ep)) {
            log_warn("the API key in %s goes to %s over plain http://: anyone on the path can "
                     "read it; use https://",
                     r->cfg.server.api_key_env, ep);
            warned = true;
        }
    }
}

static int runner_setup(struct runner *r)
{
    struct config *c = &r->cfg;
    r->tenant_endpoint = xcalloc(c->n_tenants, sizeof(char *));
    r->tenant_model = xcalloc(c->n_tenants, sizeof(char *));
    r->tenant_max_len = xcalloc(c->n_tenants, sizeof(long));
    r->tenant_ignore_eos = xcalloc(c->n_tenants, sizeof(bool));
    r->builders = xcalloc(c->n_tenants, sizeof(*r->builders));
    r->workloads = xcalloc(c->n_tenants, sizeof(*r->workloads));
    for (size_t t = 0; t < c->n_tenants; t++)
        r->tenant_endpoint[t] = xstrdup(c->tenants[t].endpoint);
    /* Datasets and traces are read before anything starts: a bad file costs no server. */
    for (size_t t = 0; t < c->n_tenants; t++) {
        char err[1280];
        if (workload_new(&r->workloads[t], &c->tenants[t].requests, c->server.api, err,
                         sizeof(err))) {
            log_error("tenant %s: %s", c->tenants[t].name, err);
            return TB_EXIT_USAGE;
        }
    }
    r->api_key = c->server.api_key_env ? getenv(c->server.api_key_env) : NULL;
    register_secrets(r);
    http_set_ca_bundle(c->server.ca_bundle); /* before the sampler thread starts */
    if (c->server.sim.enabled) {
        /* As `testbench sim`: a setup the engine refuses (or a bad calibration file) is a
         * usage error, anything else a runtime failure. */
        int src = start_sim(r);
        if (src)
            return src == -EINVAL || src == -ENOENT || src == -ENOSPC ? TB_EXIT_USAGE
                                                                      : TB_EXIT_RUNTIME;
    }
    json_t *server_json;
    int ec = probe_servers(r, &server_json);
    if (ec != TB_EXIT_OK)
        return ec;
    r->t0 = clock_now();
    start_telemetry(r);
    if (open_results(r, server_json))
        return TB_EXIT_RUNTIME;
    /* Files from the start (no points yet): a run killed before its first checkpoint still
     * leaves them, and a directory that cannot take them is found before any load. */
    if (flush_results(r)) {
        log_error("nothing was sent; fix the output directory (benchmark.output_dir or "
                  "--output-dir) and run again");
        return TB_EXIT_RUNTIME;
    }
    for (size_t t = 0; t < c->n_tenants; t++) {
        if (interrupted) /* between calibrations: each is at most one /tokenize call */
            return TB_EXIT_INTERRUPTED;
        if (prompt_builder_new(&r->builders[t], r->tenant_endpoint[t], r->tenant_model[t],
                               r->api_key, derive_seed(c->benchmark.seed, 0, t, "prefix"))) {
            log_error("cannot set up prompts for tenant %s", c->tenants[t].name);
            return TB_EXIT_RUNTIME;
        }
        prompt_builder_set_chat(r->builders[t], c->server.api == API_CHAT);
        workload_attach(r->workloads[t], r->builders[t]);
        bool seen = false; /* one warning per server */
        for (size_t u = 0; u < t; u++)
            seen |= strcmp(r->tenant_endpoint[u], r->tenant_endpoint[t]) == 0;
        if (!seen && !prompt_builder_calibrated(r->builders[t]))
            log_warn("%s has no /tokenize: prompt lengths are estimated (about one token per "
                     "word); actual counts come from usage",
                     r->tenant_endpoint[t]);
    }
    r->base = loop_new();
    r->timers = r->base ? ptimer_set_new(r->base) : NULL;
    struct client_options co = {
        .api_key = r->api_key, .timeout_s = c->server.timeout_s, .threads = client_threads(r)};
    if (!r->timers || client_new(&r->client, r->base, &co)) {
        log_error("cannot create the event loop or HTTP client");
        return TB_EXIT_RUNTIME;
    }
    return TB_EXIT_OK;
}

int run_config(struct config *cfg, const struct run_options *o, struct run_outcome *out)
{
    struct runner r;
    memset(&r, 0, sizeof(r));
    memset(out, 0, sizeof(*out));
    r.cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg)); /* ours now: released with the runner */
    r.args = *o;
    r.out = out;
    log_set_quiet(r.args.quiet);
    if (apply_overrides(&r)) {
        config_release(&r.cfg);
        return out->exit_code = TB_EXIT_USAGE;
    }
    if (check_fd_limit(&r.cfg)) {
        config_release(&r.cfg);
        return out->exit_code = TB_EXIT_RUNTIME;
    }
    client_reserve_descriptors((size_t)(streams_planned(&r.cfg) + FD_RESERVE));
    if (!r.args.quiet)
        run_estimate_print(stdout, &r.cfg);
    interrupted = 0;
    struct sigaction sa, old_int, old_term, old_hup;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    /* A second Ctrl-C kills at once, unless the caller has processes of its own to stop. */
    sa.sa_flags = o->keep_handler ? 0 : SA_RESETHAND;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* A dropped SSH session (SIGHUP) ends the run as Ctrl-C does: files written, exit 130. */
    sigaction(SIGHUP, &sa, &old_hup);
    probe_set_stop_flag(&interrupted);

    int ec = runner_setup(&r);
    if (ec == TB_EXIT_OK) {
        int rc = run_points(&r);
        stop_telemetry(&r);
        /* Once more after the last point's flush: telemetry's closing samples, and files at
         * all when no point ran (every context skipped, or Ctrl-C while building prompts). */
        if (flush_final(&r) || rc)
            ec = TB_EXIT_RUNTIME;
        else if (interrupted)
            ec = TB_EXIT_INTERRUPTED;
        else if (r.completed_total == 0)
            ec = TB_EXIT_RUNTIME;
        if (r.rw && !r.args.quiet)
            printf("\nresults:\n  %s\n  %s\n  %s\n", results_path(r.rw, "detailed"),
                   results_path(r.rw, "summary"), results_path(r.rw, "telemetry"));
        if (interrupted)
            log_warn("interrupted: partial results written");
        else if (r.completed_total == 0)
            log_error("no request completed; see the errors in %s",
                      r.rw ? results_path(r.rw, "detailed") : "the results");
    } else if (interrupted) {
        ec = TB_EXIT_INTERRUPTED;
    }
    if (r.rw) {
        out->detailed_path = xstrdup(results_path(r.rw, "detailed"));
        out->summary_path = xstrdup(results_path(r.rw, "summary"));
        out->telemetry_path = xstrdup(results_path(r.rw, "telemetry"));
    }
    runner_release(&r);
    secret_forget_all();
    probe_set_stop_flag(NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    return out->exit_code = ec;
}

void run_outcome_release(struct run_outcome *o)
{
    free(o->points);
    free(o->detailed_path);
    free(o->summary_path);
    free(o->telemetry_path);
    memset(o, 0, sizeof(*o));
}

int run_main(int argc, char **argv)
{
    struct run_args a;
    if (parse_args(argc, argv, &a))
        return TB_EXIT_USAGE;
    log_set_quiet(a.o.quiet);
    struct config cfg;
    char err[1024];
    if (config_load(&cfg, a.config, err, sizeof(err))) {
        log_error("%s", err);
        return TB_EXIT_USAGE;
    }
    if (config_prompt_note(&cfg))
        log_warn("%s: %s", a.config, config_prompt_note(&cfg));
    struct run_outcome out;
    int ec = run_config(&cfg, &a.o, &out);
    run_outcome_release(&out);
    return ec;
}
