/*
 * metrics.c - a point's summary from its request records (docs/METRICS.md
 * gives each definition and the choices made).
 *
 * Latency distributions use completed requests only; failures are counted by class, and the
 * verdict counts each as a miss (verdict.c). The window spans every request that was sent,
 * failed ones included, because the server spent that time on them too. Warm-up requests are
 * counted and otherwise left out.
 */
#include "runner/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/measure_cfg.h"

static double gap_s(mono_ns from, mono_ns to)
{
    return ns_diff_s(from, to);
}

void record_latencies(const struct req_record *r, struct req_latencies *out)
{
    out->ttft = out->ttft_sched = out->queue_delay = NAN;
    out->tpot = out->e2e = out->e2e_sched = NAN;
    if (r->t_sent && r->t_due)
        out->queue_delay = gap_s(r->t_due, r->t_sent);
    if (r->t_first) {
        if (r->t_sent)
            out->ttft = gap_s(r->t_sent, r->t_first);
        if (r->t_due)
            out->ttft_sched = gap_s(r->t_due, r->t_first);
    }
    /* One token has no decode phase to time. */
    if (r->output_tokens > 1 && r->t_first && r->t_last >= r->t_first)
        out->tpot = gap_s(r->t_first, r->t_last) / (double)(r->output_tokens - 1);
    /* A stream that ended without text (zero tokens) still had an end-to-end time. */
    mono_ns last = r->t_last ? r->t_last : r->t_end;
    if (last) {
        if (r->t_sent)
            out->e2e = gap_s(r->t_sent, last);
        if (r->t_due)
            out->e2e_sched = gap_s(r->t_due, last);
    }
    out->ttfa = out->reasoning_rate = out->answer_rate = NAN;
    if (r->t_first_answer && r->t_sent)
        out->ttfa = gap_s(r->t_sent, r->t_first_answer);
    bool from_usage;
    int reasoning = record_reasoning_tokens(r, &from_usage);
    int answer = r->output_tokens - reasoning;
    /* From the first reasoning token to the first answer token, one token per step. */
    if (reasoning > 0 && r->t_first && r->t_first_answer > r->t_first)
        out->reasoning_rate = reasoning / gap_s(r->t_first, r->t_first_answer);
    if (answer > 1 && r->t_first_answer && r->t_last > r->t_first_answer)
        out->answer_rate = (answer - 1) / gap_s(r->t_first_answer, r->t_last);
}

int record_reasoning_tokens(const struct req_record *r, bool *from_usage)
{
    *from_usage = r->usage_reasoning_tokens >= 0 && r->usage_reasoning_tokens <= r->output_tokens;
    if (*from_usage)
        return r->usage_reasoning_tokens;
    return (int)r->n_reasoning_events;
}

/* The request's own ITL at quantile q in [0, 1]; NAN when it has fewer than two events. */
static double record_itl_quantile(const struct req_record *r, double q)
{
    if (r->n_events < 2)
        return NAN;
    size_t n = r->n_events - 1;
    struct dvec v;
    dvec_init(&v);
    for (size_t i = 1; i < r->n_events; i++)
        dvec_push(&v, gap_s(r->events[i - 1], r->events[i]));
    sort_doubles(v.v, n);
    double x = percentile_sorted(v.v, n, q);
    dvec_release(&v);
    return x;
}

/* An objective is met when absent (NAN) or when the value is known and within it.
 * A value that does not exist for this request (NAN) meets it: see docs/METRICS.md. */
static bool objective_met(double objective_ms, double value_s)
{
    if (isnan(objective_ms) || isnan(value_s))
        return true;
    return value_s * 1e3 <= objective_ms;
}

bool record_meets_slo(const struct req_record *r, const struct slo_cfg *slo)
{
    if (r->status != REQ_OK)
        return false;
    if (!slo)
        return true;
    struct req_latencies l;
    record_latencies(r, &l);
    /* TTFT is required to exist when it has an objective: a completed stream with no text
     * never gave its user a first token. */
    if (!isnan(slo->ttft_ms) && isnan(l.ttft))
        return false;
    if (!objective_met(slo->ttft_ms, l.ttft) || !objective_met(slo->tpot_ms, l.tpot) ||
        !objective_met(slo->e2e_ms, l.e2e))
        return false;
    if (!isnan(slo->itl_ms)) {
        double pct = slo->percentile;
        if (!(pct > 0 && pct <= 100))
            pct = 95;
        if (!objective_met(slo->itl_ms, record_itl_quantile(r, pct / 100.0)))
            return false;
    }
    return true;
}

enum {
    D_TTFT,
    D_TTFT_SCHED,
    D_QUEUE,
    D_ITL,
    D_TPOT,
    D_E2E,
    D_E2E_SCHED,
    D_RATE,
    D_TTFA,
    D_REASONING_RATE,
    D_ANSWER_RATE,
    D_THINK,
    D_TTFT_TURN0,
    D_TTFT_LATER,
    D__COUNT
};

static void push_known(struct dvec *d, double x)
{
    if (!isnan(x))
        dvec_push(d, x);
}

/* Reasoning, cached prompt tokens and session turns of one completed request. */
static void summary_add_extras(struct point_summary *s, const struct req_record *r,
                               const struct req_latencies *l, struct dvec *d, long *cached_prompt)
{
    bool from_usage;
    int reasoning = record_reasoning_tokens(r, &from_usage);
    s->reasoning_tokens_total += reasoning;
    if (reasoning > 0)
        s->reasoning_requests++;
    push_known(&d[D_TTFA], l->ttfa);
    push_known(&d[D_REASONING_RATE], l->reasoning_rate);
    push_known(&d[D_ANSWER_RATE], l->answer_rate);
    if (r->cached_tokens >= 0) {
        s->cached_reported++;
        s->cached_tokens_total += r->cached_tokens;
        *cached_prompt += r->prompt_tokens >= 0 ? r->prompt_tokens : r->target_prompt_tokens;
    }
    if (r->turn > 0)
        dvec_push(&d[D_THINK], (double)r->think_ns / 1e9);
    if (r->turn >= 0)
        push_known(&d[r->turn == 0 ? D_TTFT_TURN0 : D_TTFT_LATER], l->ttft);
}

/* Distinct sessions among the records (each session's turns share its index). */
static size_t count_sessions(const struct req_record *recs, size_t n)
{
    int most = -1;
    for (size_t i = 0; i < n; i++)
        most = recs[i].session > most ? recs[i].session : most;
    if (most < 0)
        return 0;
    bool *seen = xcalloc((size_t)most + 1, sizeof(*seen));
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].session >= 0 && !seen[recs[i].session]) {
            seen[recs[i].session] = true;
            count++;
        }
    }
    free(seen);
    return count;
}

size_t turn_summaries_compute(struct turn_summary **out, const struct req_record *recs, size_t n)
{
    int most = -1;
    for (size_t i = 0; i < n; i++)
        most = recs[i].session >= 0 && recs[i].turn > most ? recs[i].turn : most;
    *out = NULL;
    if (most < 0)
        return 0;
    size_t nt = (size_t)most + 1;
    struct turn_summary *ts = xcalloc(nt, sizeof(*ts));
    /* One pass over the records: per turn, its three samples and its sums. */
    struct dvec *v = xcalloc(3 * nt, sizeof(*v));
    double *prompt = xcalloc(nt, sizeof(*prompt));
    long *cached = xcalloc(2 * nt, sizeof(*cached)); /* [2t] cached, [2t + 1] their prompts */
    bool *reported = xcalloc(nt, sizeof(*reported));
    for (size_t k = 0; k < 3 * nt; k++)
        dvec_init(&v[k]);
    for (size_t i = 0; i < n; i++) {
        const struct req_record *r = &recs[i];
        if (r->session < 0 || r->turn < 0)
            continue;
        size_t t = (size_t)r->turn;
        if (r->status != REQ_OK) {
            ts[t].failed++;
            continue;
        }
        ts[t].completed++;
        struct req_latencies l;
        record_latencies(r, &l);
        push_known(&v[3 * t], l.ttft);
        push_known(&v[3 * t + 1], l.ttft_sched);
        push_known(&v[3 * t + 2], l.e2e);
        long p = r->prompt_tokens >= 0 ? r->prompt_tokens : r->target_prompt_tokens;
        prompt[t] += (double)p;
        if (r->cached_tokens >= 0) {
            reported[t] = true;
            cached[2 * t] += r->cached_tokens;
            cached[2 * t + 1] += p;
        }
    }
    for (size_t t = 0; t < nt; t++) {
        ts[t].turn = (int)t;
        ts[t].prompt_tokens_mean = ts[t].completed ? prompt[t] / (double)ts[t].completed : NAN;
        ts[t].cached_prompt_pct = reported[t] && cached[2 * t + 1] > 0
                                      ? (double)cached[2 * t] / (double)cached[2 * t + 1] * 100.0
                                      : NAN;
        dist_compute(&ts[t].ttft, v[3 * t].v, v[3 * t].n);
        dist_compute(&ts[t].ttft_sched, v[3 * t + 1].v, v[3 * t + 1].n);
        dist_compute(&ts[t].e2e, v[3 * t + 2].v, v[3 * t + 2].n);
    }
    for (size_t k = 0; k < 3 * nt; k++)
        dvec_release(&v[k]);
    free(v);
    free(prompt);
    free(cached);
    free(reported);
    *out = ts;
    return nt;
}

/* Offered and achieved request rates (metrics.h). Completions are counted over the span of
 * due times shifted by the median E2E from due, so a healthy server's pipeline delay does not
 * read as a shortfall and a short run's drain does not either. */
static void saturation(struct point_summary *s, const struct req_record *recs, size_t n)
{
    s->offered_rate = s->achieved_rate = NAN;
    s->saturated = false;
    mono_ns first = 0, last = 0;
    struct dvec e2e;
    dvec_init(&e2e);
    size_t due = 0;
    for (size_t i = 0; i < n; i++) {
        const struct req_record *r = &recs[i];
        if (r->warmup || !r->t_due || !r->t_sent)
            continue;
        due++;
        first = !first || r->t_due < first ? r->t_due : first;
        last = r->t_due > last ? r->t_due : last;
        if (r->status == REQ_OK && r->t_end > r->t_due)
            dvec_push(&e2e, ns_diff_s(r->t_due, r->t_end));
    }
    double span = ns_diff_s(first, last);
    if (due < SATURATION_MIN_REQUESTS || !(span > 1e-3) || !e2e.n) {
        dvec_release(&e2e);
        return;
    }
    sort_doubles(e2e.v, e2e.n);
    mono_ns shift = s_to_ns(percentile_sorted(e2e.v, e2e.n, 0.5));
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        const struct req_record *r = &recs[i];
        if (!r->warmup && r->status == REQ_OK && r->t_end >= first + shift &&
            r->t_end <= last + shift)
            done++;
    }
    s->offered_rate = (double)(due - 1) / span;
    s->achieved_rate = (double)done / span;
    s->saturated = s->achieved_rate < SATURATION_RATIO * s->offered_rate;
    dvec_release(&e2e);
}

void point_summary_set_verdict(struct point_summary *s, const struct slo_verdict *v)
{
    s->verdict = *v;
    slo_verdict_text(v, s->slo_verdict, sizeof(s->slo_verdict));
}

void point_summary_compute(struct point_summary *s, const struct req_record *recs, size_t n,
                           const struct slo_cfg *slo)
{
    memset(s, 0, sizeof(*s));
    s->issued = n;

    struct dvec d[D__COUNT];
    for (int i = 0; i < D__COUNT; i++)
        dvec_init(&d[i]);

    struct dvec judged[OBJ__COUNT];
    for (int i = 0; i < OBJ__COUNT; i++)
        dvec_init(&judged[i]);
    bool has_slo = slo_cfg_has_objective(slo);

    bool any_sent = false;
    long cached_prompt = 0;
    mono_ns start = 0, end = 0;
    double err_max = NAN;
    for (size_t i = 0; i < n; i++) {
        const struct req_record *r = &recs[i];
        if (r->warmup) {
            s->warmup++;
            s->warmup_failed += r->status != REQ_OK;
            s->issued--;
            continue;
        }
        slo_samples_add(judged, r, slo);
        if (r->t_sent) {
            mono_ns e = r->t_end ? r->t_end : r->t_last ? r->t_last : r->t_sent;
            if (!any_sent || r->t_sent < start)
                start = r->t_sent;
            if (!any_sent || e > end)
                end = e;
            any_sent = true;
        }
        /* A later session turn is the conversation, not a prompt built to a length. */
        if (r->prompt_tokens >= 0 && r->target_prompt_tokens > 0 && r->turn <= 0) {
            double e = fabs((double)(r->prompt_tokens - r->target_prompt_tokens)) /
                       (double)r->target_prompt_tokens * 100.0;
            if (isnan(err_max) || e > err_max)
                err_max = e;
        }
        if (r->usage_implausible)
            s->usage_implausible++;
        if (r->status != REQ_OK) {
            s->failed++;
            if ((unsigned)r->status < REQ__COUNT)
                s->failed_by_class[r->status]++;
            continue;
        }
        s->completed++;
        if (!r->tokens_from_usage)
            s->tokens_from_events++;
        s->output_tokens_total += r->output_tokens > 0 ? r->output_tokens : 0;
        if (r->prompt_tokens >= 0)
            s->prompt_tokens_total += r->prompt_tokens;
        else if (r->target_prompt_tokens > 0)
            s->prompt_tokens_total += r->target_prompt_tokens;
        if (has_slo && record_meets_slo(r, slo))
            s->slo_met++;

        struct req_latencies l;
        record_latencies(r, &l);
        push_known(&d[D_TTFT], l.ttft);
        push_known(&d[D_TTFT_SCHED], l.ttft_sched);
        push_known(&d[D_QUEUE], l.queue_delay);
        push_known(&d[D_TPOT], l.tpot);
        push_known(&d[D_E2E], l.e2e);
        push_known(&d[D_E2E_SCHED], l.e2e_sched);
        /* A zero tpot (every token in one event) has no finite rate. */
        if (l.tpot > 0)
            dvec_push(&d[D_RATE], 1.0 / l.tpot);
        for (size_t k = 1; k < r->n_events; k++)
            dvec_push(&d[D_ITL], gap_s(r->events[k - 1], r->events[k]));
        summary_add_extras(s, r, &l, d, &cached_prompt);
    }
    s->cached_prompt_pct = s->cached_reported && cached_prompt > 0
                               ? (double)s->cached_tokens_total / (double)cached_prompt * 100.0
                               : NAN;
    s->sessions = count_sessions(recs, n);

    s->window_start = start;
    s->window_end = end;
    s->duration_s = any_sent ? gap_s(start, end) : NAN;
    if (s->duration_s > 0) {
        s->request_throughput = (double)s->completed / s->duration_s;
        s->output_throughput = (double)s->output_tokens_total / s->duration_s;
        s->total_throughput =
            (double)(s->output_tokens_total + s->prompt_tokens_total) / s->duration_s;
        s->goodput = has_slo ? (double)s->slo_met / s->duration_s : NAN;
    } else {
        s->request_throughput = s->output_throughput = s->total_throughput = NAN;
        s->goodput = NAN;
    }
    s->slo_attainment_pct =
        has_slo && s->issued ? (double)s->slo_met / (double)s->issued * 100.0 : NAN;
    s->prompt_error_max_pct = err_max;
    s->prompt_off_target = err_max > 2.0;

    saturation(s, recs, n);
    slo_verdict_judge(&s->verdict, slo, judged, s->issued, s->failed, s->failed_by_class);
    slo_verdict_text(&s->verdict, s->slo_verdict, sizeof(s->slo_verdict));
    for (int i = 0; i < OBJ__COUNT; i++)
        dvec_release(&judged[i]);

    struct dist *out[D__COUNT] = {
        &s->ttft,
        &s->ttft_sched,
        &s->queue_delay,
        &s->itl,
        &s->tpot,
        &s->e2e,
        &s->e2e_sched,
        &s->user_token_rate,
        &s->ttfa,
        &s->reasoning_token_rate,
        &s->answer_token_rate,
        &s->think_time,
        &s->ttft_first_turn,
        &s->ttft_later_turns,
    };
    for (int i = 0; i < D__COUNT; i++) {
        dist_compute(out[i], d[i].v, d[i].n);
        dvec_release(&d[i]);
    }
}
