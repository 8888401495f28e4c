/*
 * tsim.c - tenants on engine instances in virtual time (tsim.h).
 *
 * The loop: every idle instance admits the requests that reached it and plans a step; a step
 * on a time-sliced GPU claims it after the step that holds it (gpu_share_run), a step on a GPU
 * of its own ends d seconds later. Time then jumps to the next step end or arrival. Arrivals
 * reach the engine after its per-request overhead (HTTP, tokenisation), as in plan.c.
 */
#include "tenancy/tsim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "engine/engine.h"
#include "engine/share.h"

struct tsim_req {
    int tenant;
    double t_sent, t_first, t_last;
    int out;
    struct dvec gaps; /* this request's inter-token gaps, for the ITL objective */
};

struct tsim_tq {    /* one tenant's state */
    double *arrive; /* send times, appended in time order; [head, n) not yet admitted */
    int n, head;
    int live; /* admitted, not finished */
    struct dvec ttft, tpot, itl, e2e;
    int completed, met;
    long out_tokens;
    double first_sent, last_done;
};

struct tsim_inst_state {
    bool stepping;
    double end;
};

struct tsim {
    struct tsim_instance *inst;
    size_t n_inst;
    const struct tsim_tenant *ten;
    size_t n_ten;
    struct tsim_tq *tq;
    struct tsim_inst_state *is;
    struct gpu_share *gpus;
    int n_gpus;
    struct tsim_req *reqs;
    size_t n_reqs, cap_reqs;
    uint32_t *prompt_buf;
    double now;
    char err[256];
    int rc;
};

static double overhead_of(const struct tsim *s, int inst)
{
    return engine_request_overhead(s->inst[inst].e);
}

static void tq_push(struct tsim_tq *q, double t)
{
    q->arrive[q->n++] = t;
}

static bool request_meets(const struct slo_cfg *slo, const struct tsim_req *r, double ttft,
                          double tpot, double e2e)
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

static void on_event(void *ctx, const struct engine_event *ev)
{
    struct tsim *s = ctx;
    struct tsim_req *r = &s->reqs[(size_t)ev->id];
    struct tsim_tq *q = &s->tq[r->tenant];
    const struct tsim_tenant *t = &s->ten[r->tenant];
    if (ev->new_tokens > 0) {
        if (r->t_first < 0) {
            r->t_first = s->now;
            dvec_push(&q->ttft, s->now - r->t_sent);
        } else {
            dvec_push(&q->itl, s->now - r->t_last);
            if (t->slo.itl_ms > 0)
                dvec_push(&r->gaps, s->now - r->t_last);
        }
        r->t_last = s->now;
        r->out += ev->new_tokens;
        q->out_tokens += ev->new_tokens;
    }
    if (ev->finish == FINISH_NONE)
        return;
    q->live--;
    q->completed++;
    q->last_done = s->now;
    double tpot = r->out > 1 ? (r->t_last - r->t_first) / (r->out - 1) : 0;
    double ttft = r->t_first >= 0 ? r->t_first - r->t_sent : INFINITY;
    double e2e = r->t_last - r->t_sent;
    if (r->out > 1)
        dvec_push(&q->tpot, tpot);
    dvec_push(&q->e2e, e2e);
    if (request_meets(&t->slo, r, ttft, tpot, e2e))
        q->met++;
    dvec_release(&r->gaps);
    /* Closed loop: the user sends its next request now (it reaches the engine after the
     * overhead, never in the step that begins now). */
    if (t->users > 0 && q->n < t->requests)
        tq_push(q, s->now);
}

static int add_request(struct tsim *s, int tenant)
{
    const struct tsim_tenant *t = &s->ten[tenant];
    struct tsim_tq *q = &s->tq[tenant];
    if (s->n_reqs == s->cap_reqs) {
        s->cap_reqs = s->cap_reqs ? 2 * s->cap_reqs : 256;
        s->reqs = xreallocarray(s->reqs, s->cap_reqs, sizeof(*s->reqs));
    }
    size_t k = s->n_reqs++;
    struct tsim_req *r = &s->reqs[k];
    memset(r, 0, sizeof(*r));
    r->tenant = tenant;
    r->t_sent = q->arrive[q->head++];
    r->t_first = r->t_last = -1;
    dvec_init(&r->gaps);
    /* Distinct first block per request: no prefix hits between requests or tenants. */
    for (int i = 0; i < 16 && i < t->prompt; i++)
        s->prompt_buf[i] = (uint32_t)(k * 16 + (size_t)i + 1);
    struct engine_request er = {.id = (uint64_t)k,
                                .prompt = s->prompt_buf,
                                .prompt_len = (size_t)t->prompt,
                                .max_tokens = t->output,
                                .user = NULL};
    q->live++;
    return engine_add(s->inst[t->instance].e, &er, s->err, sizeof(s->err));
}

/* Admits, for instance i, the arrivals that reached its engine before 'now' (or at it). */
static void admit(struct tsim *s, size_t i, bool inclusive)
{
    double ovh = overhead_of(s, (int)i);
    for (size_t k = 0; k < s->n_ten && !s->rc; k++) {
        if (s->ten[k].instance != (int)i)
            continue;
        struct tsim_tq *q = &s->tq[k];
        while (q->head < q->n && !s->rc) {
            double te = q->arrive[q->head] + ovh;
            if (inclusive ? te > s->now : te >= s->now)
                break;
            s->rc = add_request(s, (int)k);
        }
    }
}

/* Next time an arrival reaches idle instance i, or INFINITY. */
static double next_arrival(const struct tsim *s, size_t i)
{
    double best = INFINITY, ovh = overhead_of(s, (int)i);
    for (size_t k = 0; k < s->n_ten; k++) {
        const struct tsim_tq *q = &s->tq[k];
        if (s->ten[k].instance == (int)i && q->head < q->n && q->arrive[q->head] + ovh < best)
            best = q->arrive[q->head] + ovh;
    }
    return best;
}

/* Extra GPU time per step for the LoRA adapters with requests on instance i. */
static double lora_time(const struct tsim *s, size_t i)
{
    double x = 0;
    for (size_t k = 0; k < s->n_ten; k++)
        if (s->ten[k].instance == (int)i && s->tq[k].live > 0)
            x += s->ten[k].lora_s;
    return x;
}

static void start_steps(struct tsim *s, bool inclusive)
{
    for (size_t i = 0; i < s->n_inst && !s->rc; i++) {
        if (s->is[i].stepping)
            continue;
        admit(s, i, inclusive);
        if (s->rc)
            return;
        double d = engine_step_plan(s->inst[i].e);
        if (d < 0)
            continue;
        d += lora_time(s, i);
        int g = s->inst[i].gpu;
        s->is[i].end = g >= 0 ? gpu_share_run(&s->gpus[g], s->now, d) : s->now + d;
        s->is[i].stepping = true;
    }
}

static void finish_result(const struct tsim_tenant *t, struct tsim_tq *q, struct tsim_result *r)
{
    memset(r, 0, sizeof(*r));
    dist_compute(&r->ttft, q->ttft.v, q->ttft.n);
    dist_compute(&r->tpot, q->tpot.v, q->tpot.n);
    dist_compute(&r->itl, q->itl.v, q->itl.n);
    dist_compute(&r->e2e, q->e2e.v, q->e2e.n);
    double p = (t->slo.percentile > 0 && t->slo.percentile <= 100 ? t->slo.percentile : 95) / 100.0;
    r->at_pct[0] = percentile_sorted(q->ttft.v, q->ttft.n, p);
    r->at_pct[1] = percentile_sorted(q->itl.v, q->itl.n, p);
    r->at_pct[2] = percentile_sorted(q->tpot.v, q->tpot.n, p);
    r->at_pct[3] = percentile_sorted(q->e2e.v, q->e2e.n, p);
    r->completed = q->completed;
    r->met = q->met;
    r->attainment_pct = t->requests > 0 ? 100.0 * q->met / t->requests : NAN;
    r->window_s = q->last_done - q->first_sent;
    r->goodput_rps = r->window_s > 0 ? q->met / r->window_s : NAN;
    r->output_tps = r->window_s > 0 ? (double)q->out_tokens / r->window_s : NAN;
    r->output_tokens = q->out_tokens;
    r->prompt_tokens = (long)q->completed * t->prompt;
    const double lim[4] = {t->slo.ttft_ms, t->slo.itl_ms, t->slo.tpot_ms, t->slo.e2e_ms};
    r->meets_slo = q->completed == t->requests;
    for (int k = 0; k < 4; k++)
        if (lim[k] > 0 && !(r->at_pct[k] * 1e3 <= lim[k]))
            r->meets_slo = false;
}

int tsim_run(struct tsim_instance *inst, size_t n_inst, const struct tsim_tenant *ten, size_t n_ten,
             uint64_t seed, struct tsim_result *results, struct tsim_gpu_stats *gpu_stats,
             int max_gpu, char *err, size_t errlen)
{
    struct tsim s;
    memset(&s, 0, sizeof(s));
    s.inst = inst;
    s.n_inst = n_inst;
    s.ten = ten;
    s.n_ten = n_ten;
    s.tq = xcalloc(n_ten, sizeof(*s.tq));
    s.is = xcalloc(n_inst, sizeof(*s.is));
    s.n_gpus = 1;
    for (size_t i = 0; i < n_inst; i++)
        if (inst[i].gpu + 1 > s.n_gpus)
            s.n_gpus = inst[i].gpu + 1;
    s.gpus = xcalloc((size_t)s.n_gpus, sizeof(*s.gpus));
    for (int g = 0; g < s.n_gpus; g++)
        gpu_share_init(&s.gpus[g]);
    int maxp = 16;
    struct rng rng;
    rng_seed(&rng, seed);
    for (size_t k = 0; k < n_ten; k++) {
        const struct tsim_tenant *t = &ten[k];
        struct tsim_tq *q = &s.tq[k];
        q->arrive = xcalloc((size_t)(t->requests > 0 ? t->requests : 1), sizeof(*q->arrive));
        dvec_init(&q->ttft);
        dvec_init(&q->tpot);
        dvec_init(&q->itl);
        dvec_init(&q->e2e);
        if (t->prompt > maxp)
            maxp = t->prompt;
        if (t->users > 0) {
            for (int u = 0; u < t->users && u < t->requests; u++)
                tq_push(q, 0.0);
        } else {
            double at = 0;
            for (int j = 0; j < t->requests; j++) {
                tq_push(q, at);
                at += rng_exp(&rng, 1.0 / t->rate);
            }
        }
    }
    s.prompt_buf = xcalloc((size_t)maxp, sizeof(*s.prompt_buf));
    for (int i = 0; i < maxp; i++)
        s.prompt_buf[i] = (uint32_t)((unsigned)i * 2654435761u % 100000u);

    start_steps(&s, false);
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
                engine_step_finish(inst[i].e, s.now, on_event, &s);
            }
        }
        start_steps(&s, true);
    }
    if (s.rc) {
        snprintf(err, errlen, "%s", s.err);
    } else {
        for (size_t k = 0; k < n_ten; k++) {
            s.tq[k].first_sent = s.tq[k].n > 0 ? s.tq[k].arrive[0] : 0;
            finish_result(&ten[k], &s.tq[k], &results[k]);
        }
        for (int g = 0; gpu_stats && g <= max_gpu; g++) {
            gpu_stats[g].busy_s = g < s.n_gpus ? s.gpus[g].busy_s : 0;
            gpu_stats[g].wait_s = g < s.n_gpus ? s.gpus[g].wait_s : 0;
        }
    }
    for (size_t k = 0; k < n_ten; k++) {
        free(s.tq[k].arrive);
        dvec_release(&s.tq[k].ttft);
        dvec_release(&s.tq[k].tpot);
        dvec_release(&s.tq[k].itl);
        dvec_release(&s.tq[k].e2e);
    }
    for (size_t i = 0; i < s.n_reqs; i++)
        dvec_release(&s.reqs[i].gaps);
    free(s.reqs);
    free(s.tq);
    free(s.is);
    free(s.gpus);
    free(s.prompt_buf);
    return s.rc ? -EINVAL : 0;
}
