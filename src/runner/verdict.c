/*
 * verdict.c - the SLO verdict with its confidence (verdict.h, docs/METRICS.md "Verdicts").
 *
 * A failed request is a miss: it enters each objective's sample as INFINITY, so failures
 * that reach the percentile's rank make the quantile infinite and the point cannot be met,
 * and the interval's upper end cannot fall below a limit while the failures could hold the
 * quantile. The interval comes from the order statistics of the sample (core/stats.h): exact
 * for any continuous distribution, no assumption about its shape, only that the requests are
 * independent draws (the warm-up and the minimum sample exist because the first requests of a
 * closed loop are not).
 */
#include "runner/verdict.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/measure_cfg.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "runner/metrics.h"

static const char *const names[OBJ__COUNT] = {"ttft", "itl", "tpot", "e2e"};
static const char *const labels[OBJ__COUNT] = {"TTFT", "ITL", "TPOT", "E2E"};

const char *slo_objective_name(enum slo_objective o)
{
    return (unsigned)o < OBJ__COUNT ? names[o] : "unknown";
}

const char *slo_objective_label(enum slo_objective o)
{
    return (unsigned)o < OBJ__COUNT ? labels[o] : "?";
}

static double slo_limit(const struct slo_cfg *slo, int o)
{
    const double l[OBJ__COUNT] = {slo->ttft_ms, slo->itl_ms, slo->tpot_ms, slo->e2e_ms};
    return l[o];
}

static void push_value(struct dvec *d, double x)
{
    if (!isnan(x))
        dvec_push(d, x);
}

void slo_samples_add_values(struct dvec d[OBJ__COUNT], const struct slo_cfg *slo, bool ok,
                            double ttft_s, double tpot_s, double e2e_s)
{
    if (!slo_cfg_has_objective(slo))
        return;
    if (!ok) {
        for (int o = 0; o < OBJ__COUNT; o++)
            if (!isnan(slo_limit(slo, o)))
                dvec_push(&d[o], INFINITY);
        return;
    }
    if (!isnan(slo->ttft_ms)) /* a stream with no text never gave its user a first token */
        dvec_push(&d[OBJ_TTFT], isnan(ttft_s) ? INFINITY : ttft_s);
    if (!isnan(slo->tpot_ms))
        push_value(&d[OBJ_TPOT], tpot_s);
    if (!isnan(slo->e2e_ms))
        push_value(&d[OBJ_E2E], e2e_s);
}

void slo_samples_add_gap(struct dvec d[OBJ__COUNT], const struct slo_cfg *slo, double gap_s)
{
    if (slo && !isnan(slo->itl_ms) && !isnan(gap_s))
        dvec_push(&d[OBJ_ITL], gap_s);
}

void slo_samples_add(struct dvec d[OBJ__COUNT], const struct req_record *r,
                     const struct slo_cfg *slo)
{
    if (r->status != REQ_OK) {
        slo_samples_add_values(d, slo, false, NAN, NAN, NAN);
        return;
    }
    struct req_latencies l;
    record_latencies(r, &l);
    slo_samples_add_values(d, slo, true, l.ttft, l.tpot, l.e2e);
    for (size_t k = 1; slo && k < r->n_events; k++)
        slo_samples_add_gap(d, slo, ns_diff_s(r->events[k - 1], r->events[k]));
}

/* Seconds to ms; an end the sample cannot give (rank 0 or n + 1) is NAN. */
static double rank_ms(const struct dvec *v, size_t rank)
{
    if (rank < 1 || rank > v->n)
        return NAN;
    return v->v[rank - 1] * 1e3;
}

static void judge_objective(struct objective_verdict *ov, struct dvec *v, double q, double alpha)
{
    sort_doubles(v->v, v->n);
    ov->n = v->n;
    ov->value_ms = v->n ? percentile_sorted(v->v, v->n, q) * 1e3 : NAN;
    struct quantile_ranks r = quantile_ci_ranks(v->n, q, alpha);
    ov->ci_low_ms = rank_ms(v, r.lo);
    ov->ci_high_ms = rank_ms(v, r.hi);
    /* No value at all (no completed request, no failure): nothing meets the objective. */
    ov->met = ov->value_ms <= ov->limit_ms;
    ov->decided = ov->met ? ov->ci_high_ms <= ov->limit_ms : ov->ci_low_ms > ov->limit_ms;
}

/* The objective the one-line verdict shows: for a miss the one furthest over its limit (a
 * decided one first), for a pass the one with the least room left at its interval's top. */
static int pick_shown(const struct slo_verdict *v)
{
    int best = -1;
    double best_key = -INFINITY;
    for (int o = 0; o < OBJ__COUNT; o++) {
        const struct objective_verdict *ov = &v->obj[o];
        if (!ov->present)
            continue;
        double key;
        if (!v->met) {
            if (ov->met)
                continue;
            key =
                (ov->decided ? 1e9 : 0) + (isnan(ov->value_ms) ? 1e6 : ov->value_ms / ov->limit_ms);
        } else {
            key = (isnan(ov->ci_high_ms) ? 1e6 : ov->ci_high_ms / ov->limit_ms) +
                  (ov->decided ? 0 : 1e9);
        }
        if (key > best_key) {
            best_key = key;
            best = o;
        }
    }
    return best;
}

void slo_verdict_judge(struct slo_verdict *v, const struct slo_cfg *slo, struct dvec d[OBJ__COUNT],
                       size_t requests, size_t failed, const size_t *by_class)
{
    slo_verdict_judge_at(v, slo, d, requests, failed, by_class, slo_cfg_alpha(slo));
}

void slo_verdict_judge_at(struct slo_verdict *v, const struct slo_cfg *slo,
                          struct dvec d[OBJ__COUNT], size_t requests, size_t failed,
                          const size_t *by_class, double alpha)
{
    memset(v, 0, sizeof(*v));
    v->shown = -1;
    v->has_slo = slo_cfg_has_objective(slo);
    if (!v->has_slo)
        return;
    double q = slo_cfg_quantile(slo);
    v->percentile = q * 100;
    v->confidence = 1 - 2 * alpha;
    v->requests = requests;
    v->failed = failed;
    v->min_requests = slo_cfg_min_requests(slo);
    v->failure = REQ_OK;
    for (int c = 1; by_class && c < REQ__COUNT; c++)
        if (by_class[c] > (v->failure == REQ_OK ? 0 : by_class[v->failure]))
            v->failure = (enum req_status)c;
    v->met = true;
    bool all_decided = true, miss_decided = false;
    for (int o = 0; o < OBJ__COUNT; o++) {
        struct objective_verdict *ov = &v->obj[o];
        ov->limit_ms = slo_limit(slo, o);
        ov->present = !isnan(ov->limit_ms);
        if (!ov->present)
            continue;
        judge_objective(ov, &d[o], q, alpha);
        v->met &= ov->met;
        all_decided &= ov->decided;
        miss_decided |= !ov->met && ov->decided;
    }
    v->decided = v->met ? all_decided : miss_decided;
    v->shown = pick_shown(v);
}

const char *slo_verdict_state(const struct slo_verdict *v)
{
    if (!v->has_slo)
        return "";
    if (!v->decided)
        return "undecided";
    return v->met ? "met" : "missed";
}

/* Did the failures alone put every missed objective's quantile at infinity? */
static bool failures_decide(const struct slo_verdict *v)
{
    if (v->met || !v->failed)
        return false;
    for (int o = 0; o < OBJ__COUNT; o++)
        if (v->obj[o].present && !v->obj[o].met && !isinf(v->obj[o].value_ms))
            return false;
    return true;
}

static int put_failures(struct buf *b, const struct slo_verdict *v)
{
    return buf_printf(b, "%zu of %zu failed (%s)", v->failed, v->requests,
                      req_status_name(v->failure));
}

void slo_verdict_text(const struct slo_verdict *v, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    if (!v->has_slo)
        return;
    if (v->met) {
        snprintf(buf, len, "met");
        return;
    }
    struct buf b;
    buf_init(&b, len - 1);
    int rc = buf_puts(&b, "missed: ");
    if (failures_decide(v)) {
        if (!rc)
            rc = put_failures(&b, v);
    } else {
        bool first = true;
        for (int o = 0; o < OBJ__COUNT && !rc; o++) {
            const struct objective_verdict *ov = &v->obj[o];
            if (!ov->present || ov->met)
                continue;
            rc = buf_puts(&b, first ? "" : "; ");
            first = false;
            if (!rc && isnan(ov->value_ms))
                rc = buf_printf(&b, "%s (no value)", names[o]);
            else if (!rc && isinf(ov->value_ms))
                rc = buf_printf(&b, "%s p%g: failed requests reach it", names[o], v->percentile);
            else if (!rc)
                rc = buf_printf(&b, "%s p%g %.1f ms > %g ms", names[o], v->percentile, ov->value_ms,
                                ov->limit_ms);
        }
        if (!rc && v->failed) {
            rc = buf_puts(&b, "; ");
            if (!rc)
                rc = put_failures(&b, v);
        }
    }
    (void)rc; /* a verdict too long for buf is cut short, never overflows */
    snprintf(buf, len, "%s", b.data ? b.data : "missed");
    buf_release(&b);
}

/* A latency for people in the unit the larger of (a, b) reads best in: ms below 10 s. */
static bool in_seconds(double a_ms, double b_ms)
{
    return fmax(isfinite(a_ms) ? a_ms : 0, isfinite(b_ms) ? b_ms : 0) >= 10000;
}

/* A number in that unit; "–" for no value, "∞" for failed requests. */
static void fmt_in(char *out, size_t len, double ms, bool secs)
{
    if (isnan(ms))
        snprintf(out, len, "–");
    else if (isinf(ms))
        snprintf(out, len, "∞");
    else if (secs)
        snprintf(out, len, ms < 10000 ? "%.3g" : "%.1f", ms / 1e3);
    else
        snprintf(out, len, ms < 10 ? "%.2f" : "%.1f", ms);
}

void slo_verdict_line(const struct slo_verdict *v, char *buf, size_t len)
{
    if (!v->has_slo) {
        snprintf(buf, len, "no SLO set");
        return;
    }
    if (failures_decide(v) && v->decided) {
        snprintf(buf, len, "missed: %zu of %zu failed (%s)", v->failed, v->requests,
                 req_status_name(v->failure));
        return;
    }
    const char *state = v->decided ? (v->met ? "met" : "missed")
                        : v->met   ? "undecided (met by the estimate)"
                                   : "undecided (missed by the estimate)";
    if (v->shown < 0) {
        snprintf(buf, len, "%s", state);
        return;
    }
    const struct objective_verdict *ov = &v->obj[v->shown];
    bool secs = in_seconds(ov->value_ms, ov->limit_ms);
    const char *unit = secs ? "s" : "ms";
    char val[48], lo[32], hi[32], lim[32];
    fmt_in(val, sizeof(val), ov->value_ms, secs);
    if (isinf(ov->value_ms))
        snprintf(val, sizeof(val), "∞ (failed requests reach it)");
    else if (!isnan(ov->value_ms))
        snprintf(val + strlen(val), sizeof(val) - strlen(val), " %s", unit);
    fmt_in(lo, sizeof(lo), ov->ci_low_ms, secs);
    fmt_in(hi, sizeof(hi), ov->ci_high_ms, secs);
    snprintf(lim, sizeof(lim), "%g", secs ? ov->limit_ms / 1e3 : ov->limit_ms);
    const char *rel = !v->decided ? "spans" : v->met ? "<=" : ">";
    char fails[64] = "";
    if (v->failed)
        snprintf(fails, sizeof(fails), ", %zu failed (%s)", v->failed, req_status_name(v->failure));
    char few[96] = "";
    if (!v->decided && v->requests < v->min_requests)
        snprintf(few, sizeof(few), "; a p%g verdict needs %zu", v->percentile, v->min_requests);
    snprintf(buf, len, "%s: p%g %s %s, %g %% CI [%s, %s] %s %s %s (%zu requests%s%s)", state,
             v->percentile, labels[v->shown], val, v->confidence * 100, lo, hi, rel, lim, unit,
             v->requests, fails, few);
}

/* The evidence beside a matrix cell's "met" or "missed", shorter than the line: the objective
 * at its percentile with its interval and the requests judged. */
void slo_verdict_evidence(const struct slo_verdict *v, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!v->has_slo)
        return;
    if (failures_decide(v) && v->decided) {
        snprintf(buf, len, "%zu of %zu failed", v->failed, v->requests);
        return;
    }
    const char *state = v->decided ? "" : "undecided: ";
    if (v->shown < 0) {
        snprintf(buf, len, "%s%zu requests", state, v->requests);
        return;
    }
    const struct objective_verdict *ov = &v->obj[v->shown];
    bool secs = in_seconds(ov->value_ms, ov->limit_ms);
    char val[32], lo[32], hi[32], fails[48] = "";
    fmt_in(val, sizeof(val), ov->value_ms, secs);
    fmt_in(lo, sizeof(lo), ov->ci_low_ms, secs);
    fmt_in(hi, sizeof(hi), ov->ci_high_ms, secs);
    if (v->failed)
        snprintf(fails, sizeof(fails), ", %zu failed", v->failed);
    snprintf(buf, len, "%sp%g %s %s %s, %g %% CI [%s, %s], %zu requests%s", state, v->percentile,
             labels[v->shown], val, secs ? "s" : "ms", v->confidence * 100, lo, hi, v->requests,
             fails);
}

/* ==== The stop rule ==== */

/* done[] of a request that will never be sent: passed over, never judged. */
static const struct req_record never_sent;

struct stop_tenant {
    const struct slo_cfg *slo; /* NULL: not judged */
    size_t n;
    const struct req_record **done; /* [index]: finished (or never_sent), else NULL */
    size_t prefix;                  /* done[0..prefix) all finished */
    size_t counted;                 /* non-warm-up requests among them */
    bool early_looked;              /* the look for clear misses is behind us */
    bool looked, decided;
    struct slo_verdict at_look;
};

size_t slo_early_look_requests(const struct slo_cfg *slo)
{
    size_t need = slo_cfg_min_requests(slo);
    return SLO_EARLY_LOOK < need ? SLO_EARLY_LOOK : 0;
}

struct slo_stopper {
    struct stop_tenant *t;
    size_t n;
};

struct slo_stopper *slo_stopper_new(size_t n_tenants)
{
    struct slo_stopper *s = xcalloc(1, sizeof(*s));
    s->t = xcalloc(n_tenants ? n_tenants : 1, sizeof(*s->t));
    s->n = n_tenants;
    return s;
}

void slo_stopper_free(struct slo_stopper *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->t[i].done);
    free(s->t);
    free(s);
}

void slo_stopper_tenant(struct slo_stopper *s, size_t t, const struct slo_cfg *slo, size_t n)
{
    if (t >= s->n || !slo_cfg_has_objective(slo) || slo_cfg_min_requests(slo) == 0)
        return;
    struct stop_tenant *st = &s->t[t];
    free(st->done);
    memset(st, 0, sizeof(*st));
    st->slo = slo;
    st->n = n;
    st->done = xcalloc(n ? n : 1, sizeof(*st->done));
}

/* Judges exactly the first `need` non-warm-up requests of done[0..prefix), each end of the
 * interval with error alpha. */
static void look(struct stop_tenant *st, size_t need, double alpha)
{
    struct dvec d[OBJ__COUNT];
    for (int o = 0; o < OBJ__COUNT; o++)
        dvec_init(&d[o]);
    size_t taken = 0, failed = 0, by_class[REQ__COUNT] = {0};
    for (size_t i = 0; i < st->prefix && taken < need; i++) {
        const struct req_record *r = st->done[i];
        if (r == &never_sent || r->warmup)
            continue;
        taken++;
        if (r->status != REQ_OK) {
            failed++;
            by_class[(unsigned)r->status < REQ__COUNT ? r->status : REQ_BAD_RESPONSE]++;
        }
        slo_samples_add(d, r, st->slo);
    }
    slo_verdict_judge_at(&st->at_look, st->slo, d, taken, failed, by_class, alpha);
    for (int o = 0; o < OBJ__COUNT; o++)
        dvec_release(&d[o]);
    st->decided = st->at_look.decided;
}

bool slo_stopper_done(struct slo_stopper *s, size_t t, size_t index, const struct req_record *r)
{
    if (!s || t >= s->n)
        return false;
    struct stop_tenant *st = &s->t[t];
    if (st->slo && index < st->n && !st->looked) {
        st->done[index] = r;
        size_t need = slo_cfg_min_requests(st->slo);
        /* The look's sample is fixed by the requests' indices, not by which requests happen
         * to finish first (those would be the fast ones): the order of sending, and for users
         * in conversation whole conversations in the order they begin (session, then turn). */
        while (st->prefix < st->n && st->done[st->prefix]) {
            const struct req_record *d = st->done[st->prefix];
            st->counted += d != &never_sent && !d->warmup;
            st->prefix++;
        }
        size_t early = slo_early_look_requests(st->slo);
        if (early && !st->early_looked && st->counted >= early) {
            /* A clear miss only: ten requests cannot bound a p95 from above. */
            st->early_looked = true;
            look(st, early, SLO_EARLY_ALPHA);
            st->looked = st->decided;
        }
        if (!st->looked && st->counted >= need) {
            look(st, need, slo_cfg_alpha(st->slo));
            st->looked = true;
        }
    }
    bool any = false;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->t[i].slo)
            continue;
        any = true;
        if (!s->t[i].decided)
            return false;
    }
    return any;
}

void slo_stopper_skip(struct slo_stopper *s, size_t t, size_t index)
{
    if (s && t < s->n && s->t[t].slo && index < s->t[t].n && !s->t[t].done[index])
        s->t[t].done[index] = &never_sent;
}

bool slo_stopper_decided(const struct slo_stopper *s, size_t t, struct slo_verdict *out)
{
    if (!s || t >= s->n || !s->t[t].looked)
        return false;
    if (out)
        *out = s->t[t].at_look;
    return s->t[t].decided;
}
