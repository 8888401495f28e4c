/*
 * vdriver.c - the engine in virtual time (vdriver.h).
 *
 * The loop: every idle instance admits the requests that reached it and plans a step; a step
 * on a time-sliced GPU claims it after the step that holds it (gpu_share_run), a step on a GPU
 * of its own ends d seconds later. Time then jumps to the next step end or arrival. An
 * instance whose step just ended admits only what arrived strictly before that instant (a
 * request sent as the step ends misses it, as on a real server); an idle one woken by an
 * arrival admits what arrived up to now.
 *
 * Prompts are token ids made from (tenant, key, position): the first shared_prefix positions
 * are the same for every request of the tenant, the rest differ by key (the request, or the
 * session). A session's turn is its conversation's first P positions, so each turn's prompt
 * starts with the whole previous one and the engine's prefix cache finds it, as it finds the
 * text the runner resends. Nothing of a prompt is kept between requests: the engine hashes
 * the blocks when the request is added.
 */
#include "plan/vdriver.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/rng.h"
#include "engine/engine.h"
#include "engine/share.h"

/* One request in flight or done. */
struct vd_req {
    int tenant;
    int index; /* the tenant's request index (sessions: session x turns + turn) */
    int turn;  /* sessions: its turn; else 0 */
    int prompt;
    double t_sent, t_first, t_last;
    int out;
    bool warmup;      /* one of the tenant's warm-up requests: served, not counted */
    struct dvec gaps; /* its inter-token gaps, for an ITL objective */
};

/* A request on its way: sent at t_sent, it reaches the engine after the per-request cost. */
struct vd_arrival {
    double t_sent;
    uint64_t seq; /* push order: equal times keep it */
    int index;    /* sessions: the request index; streams: the user; rate: unused */
};

struct vd_session {
    int first, turns; /* its requests: [first, first + turns) */
    long conv;        /* tokens of the conversation so far: last prompt + its answer */
};

/* One tenant's state. */
struct vd_tq {
    struct vd_arrival *heap; /* min-heap by (t_sent, seq) */
    size_t n_heap, cap_heap;
    uint64_t seq;
    int pushed; /* streams, rate: requests pushed so far */
    int issued; /* streams, rate: requests added to the engine (the lengths' index) */
    int live;   /* added, not finished */
    struct dvec ttft, tpot, itl, e2e, ttft_first, ttft_later;
    int sent, completed, met, skipped;
    int added; /* requests sent, the warm-up's included */
    long out_tokens, prompt_tokens, cached_tokens;
    int max_prompt;
    double first_sent, last_done;
    bool any_sent;
    /* sessions */
    struct vd_session *sess;
    int n_sess;
    int *waiting; /* sessions waiting for a user, in order */
    int n_waiting, head_waiting;
};

struct vd_inst_state {
    bool stepping;
    bool just_finished; /* its step ended at now: later arrivals wait for the next */
    double end;
    double busy_running, peak_kv;
};

struct vd {
    struct vd_instance *inst;
    size_t n_inst;
    const struct vd_tenant *ten;
    size_t n_ten;
    struct vd_tq *tq;
    struct vd_inst_state *is;
    struct gpu_share *gpus;
    int n_gpus;
    struct vd_req *reqs;
    size_t n_reqs, cap_reqs;
    uint32_t *buf; /* the prompt being added */
    size_t cap_buf;
    double now;
    char err[256];
    int rc;
};

const char *vd_population_name(enum vd_population p)
{
    return p == VD_SESSIONS ? "sessions" : p == VD_RATE ? "rate" : "streams";
}

/* ==== Arrivals (a binary heap per tenant) ==== */

static bool arrival_before(const struct vd_arrival *a, const struct vd_arrival *b)
{
    return a->t_sent < b->t_sent || (a->t_sent == b->t_sent && a->seq < b->seq);
}

static void heap_push(struct vd_tq *q, double t_sent, int index)
{
    if (q->n_heap == q->cap_heap) {
        q->cap_heap = q->cap_heap ? 2 * q->cap_heap : 16;
        q->heap = xreallocarray(q->heap, q->cap_heap, sizeof(*q->heap));
    }
    size_t i = q->n_heap++;
    q->heap[i] = (struct vd_arrival){.t_sent = t_sent, .seq = q->seq++, .index = index};
    while (i > 0 && arrival_before(&q->heap[i], &q->heap[(i - 1) / 2])) {
        struct vd_arrival t = q->heap[i];
        q->heap[i] = q->heap[(i - 1) / 2];
        q->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct vd_arrival heap_pop(struct vd_tq *q)
{
    struct vd_arrival top = q->heap[0];
    q->heap[0] = q->heap[--q->n_heap];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->n_heap && arrival_before(&q->heap[l], &q->heap[m]))
            m = l;
        if (r < q->n_heap && arrival_before(&q->heap[r], &q->heap[m]))
            m = r;
        if (m == i)
            break;
        struct vd_arrival t = q->heap[i];
        q->heap[i] = q->heap[m];
        q->heap[m] = t;
        i = m;
    }
    return top;
}

/* ==== Prompts ==== */

static uint32_t mix32(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return (uint32_t)(x % 100000u) + 1;
}

/* Token ids of positions [0, len) of the prompt of (tenant, key). */
static const uint32_t *prompt_tokens(struct vd *s, int tenant, uint64_t key, int len,
                                     int shared_prefix)
{
    if ((size_t)len > s->cap_buf) {
        s->cap_buf = (size_t)len;
        free(s->buf);
        s->buf = xcalloc(s->cap_buf, sizeof(*s->buf));
    }
    uint64_t t = (uint64_t)tenant << 48, k = (key + 1) << 20;
    for (int p = 0; p < len; p++)
        s->buf[p] = p < shared_prefix ? mix32(t ^ (uint64_t)p)
                                      : mix32(t ^ (k * 0x9e3779b97f4a7c15ull) ^ (uint64_t)p);
    return s->buf;
}

/* ==== Sessions ==== */

static double think_s(const struct vd_tenant *t, int index)
{
    return (double)session_think_at(&t->session, t->think_seed, (uint64_t)index) / NS_PER_S;
}

/* The next waiting session begins after its user thought (the runner's closed loop). */
static void session_next(struct vd_tq *q, const struct vd_tenant *t, double at)
{
    if (q->head_waiting >= q->n_waiting)
        return;
    const struct vd_session *n = &q->sess[q->waiting[q->head_waiting++]];
    heap_push(q, at + think_s(t, n->first), n->first);
}

static void session_end(struct vd_tq *q, const struct vd_tenant *t, int turns_left, double at)
{
    q->skipped += turns_left;
    session_next(q, t, at);
}

static int session_message(const struct vd_tenant *t, int index)
{
    if (t->n_lens > 0)
        return t->prompt_lens[(size_t)index % t->n_lens];
    return (t->session.message_tokens_min + t->session.message_tokens_max) / 2;
}

/* ==== Events ==== */

static bool request_meets(const struct slo_cfg *slo, struct vd_req *r, double ttft, double tpot,
                          double e2e)
{
    double q = (slo->percentile > 0 && slo->percentile <= 100 ? slo->percentile : 95) / 100.0;
    if (slo->ttft_ms > 0 && !(ttft * 1e3 <= slo->ttft_ms))
        return false;
    if (slo->tpot_ms > 0 && r->out > 1 && !(tpot * 1e3 <= slo->tpot_ms))
        return false;
    if (slo->e2e_ms > 0 && !(e2e * 1e3 <= slo->e2e_ms))
        return false;
    if (slo->itl_ms > 0 && r->gaps.n > 0) {
        sort_doubles(r->gaps.v, r->gaps.n);
        if (!(percentile_sorted(r->gaps.v, r->gaps.n, q) * 1e3 <= slo->itl_ms))
            return false;
    }
    return true;
}

/* A finished request: its user goes on (the next request, the next turn or conversation). */
static void request_done(struct vd *s, struct vd_req *r)
{
    struct vd_tq *q = &s->tq[r->tenant];
    const struct vd_tenant *t = &s->ten[r->tenant];
    q->live--;
    if (!r->warmup) {
        q->completed++;
        q->last_done = s->now;
        double tpot = r->out > 1 ? (r->t_last - r->t_first) / (r->out - 1) : 0;
        double ttft = r->t_first >= 0 ? r->t_first - r->t_sent : INFINITY;
        double e2e = r->t_last - r->t_sent;
        if (r->out > 1)
            dvec_push(&q->tpot, tpot);
        if (r->t_last >= 0)
            dvec_push(&q->e2e, e2e);
        if (request_meets(&t->slo, r, ttft, tpot, e2e))
            q->met++;
    }
    dvec_release(&r->gaps);
    if (t->population == VD_STREAMS) {
        /* Its user sends the next request now; it reaches the engine after the overhead. */
        if (q->pushed < t->requests) {
            q->pushed++;
            heap_push(q, s->now, 0);
        }
    } else if (t->population == VD_SESSIONS) {
        struct vd_session *ss = &q->sess[r->index / t->session.turns];
        ss->conv = (long)r->prompt + r->out;
        int next = r->index + 1;
        if (next < ss->first + ss->turns)
            heap_push(q, s->now + think_s(t, next), next);
        else
            session_end(q, t, 0, s->now);
    }
}

static void on_event(void *ctx, const struct engine_event *ev)
{
    struct vd *s = ctx;
    struct vd_req *r = &s->reqs[(size_t)ev->id];
    struct vd_tq *q = &s->tq[r->tenant];
    const struct vd_tenant *t = &s->ten[r->tenant];
    if (ev->new_tokens > 0 && !r->warmup) {
        if (r->t_first < 0) {
            dvec_push(&q->ttft, s->now - r->t_sent);
            dvec_push(r->turn > 0 ? &q->ttft_later : &q->ttft_first, s->now - r->t_sent);
            q->cached_tokens += ev->cached_prompt_tokens;
        } else {
            dvec_push(&q->itl, s->now - r->t_last);
            if (t->slo.itl_ms > 0)
                dvec_push(&r->gaps, s->now - r->t_last);
        }
        q->out_tokens += ev->new_tokens;
    }
    if (ev->new_tokens > 0) {
        if (r->t_first < 0)
            r->t_first = s->now;
        r->t_last = s->now;
        r->out += ev->new_tokens;
    }
    if (ev->finish != FINISH_NONE)
        request_done(s, r);
}

/* ==== Admission ==== */

/* What the next arrival of tenant k sends: prompt tokens, output tokens, content key. */
static void request_shape(struct vd *s, int k, const struct vd_arrival *a, int *index, int *turn,
                          int *prompt, int *output, uint64_t *key)
{
    const struct vd_tenant *t = &s->ten[k];
    struct vd_tq *q = &s->tq[k];
    if (t->population == VD_SESSIONS) {
        int turns = t->session.turns;
        const struct vd_session *ss = &q->sess[a->index / turns];
        *index = a->index;
        *turn = a->index - ss->first;
        *key = (uint64_t)(a->index / turns);
        size_t li = t->n_lens ? (size_t)a->index % t->n_lens : 0;
        *output = t->n_lens ? t->output_lens[li] : t->output;
        if (*turn == 0) {
            *prompt = t->n_lens ? t->prompt_lens[li] : t->prompt;
        } else {
            long p = ss->conv + t->turn_tokens + session_message(t, a->index);
            *prompt = p < INT32_MAX / 2 ? (int)p : INT32_MAX / 2;
        }
        return;
    }
    int i = q->issued++;
    *index = i;
    *turn = 0;
    *key = (uint64_t)i;
    *prompt = t->n_lens ? t->prompt_lens[(size_t)i % t->n_lens] : t->prompt;
    *output = t->n_lens ? t->output_lens[(size_t)i % t->n_lens] : t->output;
}

static int add_request(struct vd *s, int k, const struct vd_arrival *a)
{
    const struct vd_tenant *t = &s->ten[k];
    struct vd_tq *q = &s->tq[k];
    int index, turn, prompt, output;
    uint64_t key;
    request_shape(s, k, a, &index, &turn, &prompt, &output, &key);
    /* The runner marks the first warmup_requests it sends, whatever they are. */
    bool warmup = ++q->added <= t->warmup;
    if (!warmup) {
        if (!q->any_sent || a->t_sent < q->first_sent)
            q->first_sent = a->t_sent;
        q->any_sent = true;
        q->sent++;
    }
    struct engine *e = s->inst[t->instance].e;
    struct engine_request er = {.prompt_len = (size_t)prompt, .max_tokens = output};
    char why[256];
    if (engine_check(e, &er, why, sizeof(why))) {
        /* A conversation grown past the window: the server refuses the turn, the request
         * fails (a miss) and its user gives up the conversation, as the runner's does. */
        if (t->population != VD_SESSIONS) {
            snprintf(s->err, sizeof(s->err), "%s", why);
            return -EINVAL;
        }
        const struct vd_session *ss = &q->sess[index / t->session.turns];
        session_end(q, t, ss->first + ss->turns - index - 1, s->now);
        return 0;
    }
    if (s->n_reqs == s->cap_reqs) {
        s->cap_reqs = s->cap_reqs ? 2 * s->cap_reqs : 256;
        s->reqs = xreallocarray(s->reqs, s->cap_reqs, sizeof(*s->reqs));
    }
    size_t id = s->n_reqs++;
    struct vd_req *r = &s->reqs[id];
    memset(r, 0, sizeof(*r));
    r->tenant = k;
    r->index = index;
    r->turn = turn;
    r->prompt = prompt;
    r->warmup = warmup;
    r->t_sent = a->t_sent;
    r->t_first = r->t_last = -1;
    dvec_init(&r->gaps);
    if (prompt > q->max_prompt)
        q->max_prompt = prompt;
    if (!warmup)
        q->prompt_tokens += prompt;
    er.id = (uint64_t)id;
    er.prompt = prompt_tokens(s, k, key, prompt, t->shared_prefix);
    q->live++;
    return engine_add(e, &er, s->err, sizeof(s->err));
}

/* Admits, for instance i, the arrivals that reached its engine before now (or at it). */
static void admit(struct vd *s, size_t i, bool inclusive)
{
    double ovh = engine_request_overhead(s->inst[i].e);
    for (size_t k = 0; k < s->n_ten && !s->rc; k++) {
        if (s->ten[k].instance != (int)i)
            continue;
        struct vd_tq *q = &s->tq[k];
        while (q->n_heap > 0 && !s->rc) {
            double te = q->heap[0].t_sent + ovh;
            if (inclusive ? te > s->now : te >= s->now)
                break;
            struct vd_arrival a = heap_pop(q);
            s->rc = add_request(s, (int)k, &a);
        }
    }
}

/* When the next arrival reaches idle instance i, or INFINITY. */
static double next_arrival(const struct vd *s, size_t i)
{
    double best = INFINITY, ovh = engine_request_overhead(s->inst[i].e);
    for (size_t k = 0; k < s->n_ten; k++) {
        const struct vd_tq *q = &s->tq[k];
        if (s->ten[k].instance == (int)i && q->n_heap > 0 && q->heap[0].t_sent + ovh < best)
            best = q->heap[0].t_sent + ovh;
    }
    return best;
}

/* Extra GPU time per step for the LoRA adapters with requests on instance i. */
static double lora_time(const struct vd *s, size_t i)
{
    double x = 0;
    for (size_t k = 0; k < s->n_ten; k++)
        if (s->ten[k].instance == (int)i && s->tq[k].live > 0)
            x += s->ten[k].lora_s;
    return x;
}

static void start_steps(struct vd *s)
{
    for (size_t i = 0; i < s->n_inst && !s->rc; i++) {
        struct vd_inst_state *st = &s->is[i];
        if (st->stepping)
            continue;
        admit(s, i, !st->just_finished);
        st->just_finished = false;
        if (s->rc)
            return;
        double d = engine_step_plan(s->inst[i].e);
        if (d < 0)
            continue;
        struct engine_counters ct;
        engine_counters(s->inst[i].e, &ct);
        if (ct.kv_cache_usage > st->peak_kv)
            st->peak_kv = ct.kv_cache_usage;
        st->busy_running += ct.num_running * d;
        d += lora_time(s, i);
        int g = s->inst[i].gpu;
        st->end = g >= 0 ? gpu_share_run(&s->gpus[g], s->now, d) : s->now + d;
        st->stepping = true;
    }
}

/* ==== Set-up and results ==== */

static int tenant_check(const struct vd_tenant *t, size_t n_inst, char *err, size_t errlen)
{
    const char *why = NULL;
    if (t->instance < 0 || (size_t)t->instance >= n_inst)
        why = "names no instance";
    else if (t->requests < 1)
        why = "sends no requests";
    else if (t->population != VD_RATE && t->users < 1)
        why = "has no users";
    else if (t->population == VD_RATE && !(t->rate > 0))
        why = "has no arrival rate";
    else if (t->population == VD_SESSIONS && t->session.turns < 1)
        why = "has sessions of no turns";
    else if (t->n_lens == 0 && (t->prompt < 1 || t->output < 1))
        why = "has a prompt or output of no tokens";
    if (!why)
        return 0;
    snprintf(err, errlen, "virtual-time driver: a tenant %s", why);
    return -EINVAL;
}

static void tenant_start(struct vd *s, size_t k, struct rng *rng)
{
    const struct vd_tenant *t = &s->ten[k];
    struct vd_tq *q = &s->tq[k];
    dvec_init(&q->ttft);
    dvec_init(&q->tpot);
    dvec_init(&q->itl);
    dvec_init(&q->e2e);
    dvec_init(&q->ttft_first);
    dvec_init(&q->ttft_later);
    if (t->population == VD_STREAMS) {
        for (int u = 0; u < t->users && q->pushed < t->requests; u++, q->pushed++)
            heap_push(q, 0.0, u);
    } else if (t->population == VD_RATE) {
        double at = 0;
        for (; q->pushed < t->requests; q->pushed++) {
            heap_push(q, at, 0);
            at += rng_exp(rng, 1.0 / t->rate);
        }
    } else {
        int turns = t->session.turns;
        q->n_sess = (t->requests + turns - 1) / turns;
        q->sess = xcalloc((size_t)q->n_sess, sizeof(*q->sess));
        q->waiting = xcalloc((size_t)q->n_sess, sizeof(*q->waiting));
        double spread = session_start_spread_s(&t->session);
        for (int j = 0; j < q->n_sess; j++) {
            struct vd_session *ss = &q->sess[j];
            ss->first = j * turns;
            ss->turns = ss->first + turns <= t->requests ? turns : t->requests - ss->first;
            if (j < t->users)
                heap_push(q, spread * j / t->users, ss->first);
            else
                q->waiting[q->n_waiting++] = j;
        }
    }
}

static void dist_of(struct dist *d, struct dvec *v)
{
    dist_compute(d, v->v, v->n);
}

/* percentile_sorted over values that may end in infinities (failed requests): an interpolation
 * towards an infinity is infinite, one that lands on a finite value is that value. */
static double pct_inf(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double rank = q * (double)(n - 1);
    size_t lo = (size_t)floor(rank);
    double frac = rank - (double)lo;
    if (lo + 1 < n && isinf(v[lo + 1]))
        return frac > 0 ? INFINITY : v[lo];
    return percentile_sorted(v, n, q);
}

static void tenant_finish(const struct vd_tenant *t, struct vd_tq *q, struct vd_result *r)
{
    memset(r, 0, sizeof(*r));
    dist_of(&r->ttft, &q->ttft);
    dist_of(&r->tpot, &q->tpot);
    dist_of(&r->itl, &q->itl);
    dist_of(&r->e2e, &q->e2e);
    dist_of(&r->ttft_first, &q->ttft_first);
    dist_of(&r->ttft_later, &q->ttft_later);
    double p = (t->slo.percentile > 0 && t->slo.percentile <= 100 ? t->slo.percentile : 95) / 100.0;
    /* A failed request is a miss: it counts as an infinite latency in the judged percentile,
     * so a point passes only while its failures stay within what the percentile allows
     * (docs/METRICS.md). ITL is pooled over tokens, which a failed request never had. */
    int failed = q->sent - q->completed;
    for (int i = 0; i < failed; i++) {
        dvec_push(&q->ttft, INFINITY);
        dvec_push(&q->tpot, INFINITY);
        dvec_push(&q->e2e, INFINITY);
    }
    sort_doubles(q->ttft.v, q->ttft.n);
    sort_doubles(q->tpot.v, q->tpot.n);
    sort_doubles(q->e2e.v, q->e2e.n);
    r->at_pct[0] = pct_inf(q->ttft.v, q->ttft.n, p);
    r->at_pct[1] = pct_inf(q->itl.v, q->itl.n, p);
    r->at_pct[2] = pct_inf(q->tpot.v, q->tpot.n, p);
    r->at_pct[3] = pct_inf(q->e2e.v, q->e2e.n, p);
    r->sent = q->sent;
    r->completed = q->completed;
    r->met = q->met;
    r->turns_skipped = q->skipped;
    int judged = t->requests - (t->warmup < t->requests ? t->warmup : t->requests);
    r->attainment_pct = judged > 0 ? 100.0 * q->met / judged : NAN;
    r->window_s = q->last_done - q->first_sent;
    r->goodput_rps = r->window_s > 0 ? q->met / r->window_s : NAN;
    r->output_tps = r->window_s > 0 ? (double)q->out_tokens / r->window_s : NAN;
    r->output_tokens = q->out_tokens;
    r->prompt_tokens = q->prompt_tokens;
    r->cached_prompt_tokens = q->cached_tokens;
    r->max_prompt = q->max_prompt;
    const double lim[4] = {t->slo.ttft_ms, t->slo.itl_ms, t->slo.tpot_ms, t->slo.e2e_ms};
    r->meets_slo = q->completed > 0;
    for (int k = 0; k < 4; k++)
        if (lim[k] > 0 && !(r->at_pct[k] * 1e3 <= lim[k]))
            r->meets_slo = false;
}

static void vd_release(struct vd *s)
{
    for (size_t k = 0; s->tq && k < s->n_ten; k++) {
        struct vd_tq *q = &s->tq[k];
        free(q->heap);
        free(q->sess);
        free(q->waiting);
        dvec_release(&q->ttft);
        dvec_release(&q->tpot);
        dvec_release(&q->itl);
        dvec_release(&q->e2e);
        dvec_release(&q->ttft_first);
        dvec_release(&q->ttft_later);
    }
    for (size_t i = 0; i < s->n_reqs; i++)
        dvec_release(&s->reqs[i].gaps);
    free(s->reqs);
    free(s->tq);
    free(s->is);
    free(s->gpus);
    free(s->buf);
}

int vd_run(struct vd_instance *inst, size_t n_inst, const struct vd_tenant *ten, size_t n_ten,
           uint64_t seed, struct vd_out *out, char *err, size_t errlen)
{
    for (size_t k = 0; k < n_ten; k++)
        if (tenant_check(&ten[k], n_inst, err, errlen))
            return -EINVAL;
    struct vd s;
    memset(&s, 0, sizeof(s));
    s.inst = inst;
    s.n_inst = n_inst;
    s.ten = ten;
    s.n_ten = n_ten;
    s.tq = xcalloc(n_ten ? n_ten : 1, sizeof(*s.tq));
    s.is = xcalloc(n_inst ? n_inst : 1, sizeof(*s.is));
    s.n_gpus = 1;
    for (size_t i = 0; i < n_inst; i++)
        if (inst[i].gpu + 1 > s.n_gpus)
            s.n_gpus = inst[i].gpu + 1;
    s.gpus = xcalloc((size_t)s.n_gpus, sizeof(*s.gpus));
    for (int g = 0; g < s.n_gpus; g++)
        gpu_share_init(&s.gpus[g]);
    struct rng rng;
    rng_seed(&rng, seed);
    for (size_t k = 0; k < n_ten; k++)
        tenant_start(&s, k, &rng);

    start_steps(&s);
    while (!s.rc) {
        double t_next = INFINITY;
        for (size_t i = 0; i < n_inst; i++) {
            double t = s.is[i].stepping ? s.is[i].end : next_arrival(&s, i);
            if (t < t_next)
                t_next = t;
        }
        if (!isfinite(t_next))
            break;
        if (t_next > s.now)
            s.now = t_next;
        for (size_t i = 0; i < n_inst; i++) {
            if (s.is[i].stepping && s.is[i].end <= s.now) {
                s.is[i].stepping = false;
                s.is[i].just_finished = true;
                engine_step_finish(inst[i].e, s.now, on_event, &s);
            }
        }
        start_steps(&s);
    }
    if (s.rc) {
        snprintf(err, errlen, "%s", s.err);
    } else {
        for (size_t k = 0; k < n_ten; k++)
            tenant_finish(&ten[k], &s.tq[k], &out->tenants[k]);
        for (size_t i = 0; out->insts && i < n_inst; i++) {
            out->insts[i].peak_kv_usage = s.is[i].peak_kv;
            out->insts[i].mean_running = s.now > 0 ? s.is[i].busy_running / s.now : 0;
        }
        for (int g = 0; out->gpus && g <= out->max_gpu; g++) {
            out->gpus[g].busy_s = g < s.n_gpus ? s.gpus[g].busy_s : 0;
            out->gpus[g].wait_s = g < s.n_gpus ? s.gpus[g].wait_s : 0;
        }
        out->end_s = s.now;
    }
    int rc = s.rc ? -EINVAL : 0;
    vd_release(&s);
    return rc;
}
