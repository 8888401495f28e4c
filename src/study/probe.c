/*
 * probe.c - how big a study's probe is and what its measuring costs (docs/STUDY.md "Probes"):
 * a warm-up of one round per user, a first look at the fewest requests that can decide the
 * verdict, a cap for the probes whose interval straddles the SLO; the time the plan expects
 * with and without stopping when certain, and the time the study spent beside the time a
 * fixed-size design of the same confidence would have needed.
 */
#include "study/study_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "config/measure_cfg.h"
#include "core/jsonx.h"
#include "runner/verdict.h"

/* The default cap: this many times the verdict's minimum. */
#define CAP_FACTOR 4
/* No probe sends more than this (a typo in requests_per_user must not run for days). */
#define PROBE_MAX_REQUESTS 1000000L

static int clamp_requests(long n)
{
    return n < 1 ? 1 : n > PROBE_MAX_REQUESTS ? (int)PROBE_MAX_REQUESTS : (int)n;
}

void study_probe_size(const struct study *st, size_t wi, int users, struct probe_size *out)
{
    const struct study_cfg *sc = &st->cfg.study;
    const struct slo_cfg *slo = study_workload_slo(st, wi);
    /* Without an objective there is no verdict to size for: the probe sends what the file
     * asks, max(N x requests_per_user, min_requests), after its warm-up. */
    long look = slo_cfg_has_objective(slo) ? (long)slo_cfg_min_requests(slo) : 0;
    long cap = sc->max_requests > 0 ? sc->max_requests : CAP_FACTOR * look;
    /* Users in conversation hold whole conversations: every count is a multiple of the turns,
     * and each user has at least one (plan_probe_requests, the plan's own rule). */
    int turns = study_turns(st, wi);
    long per_user = plan_probe_requests(users, sc->requests_per_user, 0, turns);
    long warmup = (long)users * sc->warmup_per_user;
    if (turns > 0) {
        look = (look + turns - 1) / turns * turns;
        cap = (cap + turns - 1) / turns * turns;
        warmup = (warmup + turns - 1) / turns * turns;
    }
    long min_requests = plan_probe_requests(1, 1, sc->min_requests, turns);
    cap = cap > per_user ? cap : per_user;
    cap = cap > min_requests ? cap : min_requests;
    cap = cap > look ? cap : look;
    out->look = clamp_requests(look > 0 ? look : cap);
    out->cap = clamp_requests(cap);
    out->warmup = clamp_requests(warmup + 1) - 1;
    out->total = clamp_requests((long)out->cap + out->warmup);
    /* Users in conversation too: the rule's sample is whole conversations in the order they
     * begin (requests.stop_when_decided). */
    out->stops = sc->stop_when_decided && look > 0;
}

int study_requests_for(const struct study *st, size_t wi, int users)
{
    struct probe_size ps;
    study_probe_size(st, wi, users, &ps);
    return ps.total;
}

/* ==== What the plan expects ==== */

/* The plan's distribution as a quantile function: straight lines between its summary points. */
static double dist_quantile(const struct dist *d, double q)
{
    const double qs[] = {0, 0.5, 0.9, 0.95, 0.99, 0.999, 1};
    const double xs[] = {d->min, d->p50, d->p90, d->p95, d->p99, d->p999, d->max};
    if (d->n == 0 || isnan(d->min))
        return NAN;
    for (size_t i = 1; i < sizeof(qs) / sizeof(qs[0]); i++)
        if (q <= qs[i])
            return xs[i - 1] + (xs[i] - xs[i - 1]) * (q - qs[i - 1]) / (qs[i] - qs[i - 1]);
    return d->max;
}

/* Would a probe whose requests follow the plan's distributions be decided by a look at n
 * requests whose interval ends each have error alpha (met only when may_meet)? An interval's
 * end at rank r of n sits near the plan's quantile r / (n + 1). An objective the plan does not
 * predict (E2E) is taken as undecided. */
static bool plan_decides(const struct plan_prediction *p, const struct slo_cfg *slo, int n,
                         double alpha, bool may_meet)
{
    const struct dist *d[OBJ__COUNT] = {&p->ttft, &p->itl, &p->tpot, NULL};
    const double limit[OBJ__COUNT] = {slo->ttft_ms, slo->itl_ms, slo->tpot_ms, slo->e2e_ms};
    double q = slo_cfg_quantile(slo);
    struct quantile_ranks r = quantile_ci_ranks((size_t)n, q, alpha);
    bool all_met = true;
    for (int o = 0; o < OBJ__COUNT; o++) {
        if (isnan(limit[o]))
            continue;
        if (!d[o])
            return false;
        double lo = dist_quantile(d[o], (double)r.lo / (n + 1)) * 1e3;
        double hi = dist_quantile(d[o], (double)r.hi / (n + 1)) * 1e3;
        if (lo > limit[o])
            return true; /* decided missed */
        all_met &= hi <= limit[o];
    }
    return may_meet && all_met;
}

/* One probe as the plan sees it: its time to the cap (*fixed) and with the stop rule. */
static double probe_expected(const struct study *st, size_t si, size_t wi, int users, double *fixed)
{
    struct plan_prediction p;
    int prompt, output, context;
    *fixed = 0;
    if (study_predict(st, si, wi, users, &p, &prompt, &output, &context) || !p.simulated)
        return 0;
    struct probe_size ps;
    study_probe_size(st, wi, users, &ps);
    *fixed = p.duration_s;
    const struct slo_cfg *slo = study_workload_slo(st, wi);
    int early = (int)slo_early_look_requests(slo);
    int at = 0;
    if (ps.stops && early && plan_decides(&p, slo, early, SLO_EARLY_ALPHA, false))
        at = early;
    else if (ps.stops && plan_decides(&p, slo, ps.look, slo_cfg_alpha(slo), true))
        at = ps.look;
    if (!at)
        return p.duration_s;
    /* Stopped at a look: the warm-up, the look's requests and what is in flight. Users in
     * conversation: the look waits for its conversations' last turns, while each other user
     * sends up to a conversation of its own. */
    int turns = study_turns(st, wi);
    double sent = (double)ps.warmup + at + (double)users * (turns > 0 ? turns : 1);
    return sent >= ps.total ? p.duration_s : p.duration_s * sent / ps.total;
}

double study_expected_seconds(const struct study *st, size_t si, size_t wi, int max_users,
                              double *fixed_s)
{
    const struct study_cfg *sc = &st->cfg.study;
    double total = 0, fixed = 0, f;
    for (size_t u = 0; u < sc->users.n; u++) {
        total += probe_expected(st, si, wi, sc->users.v[u], &f);
        fixed += f;
    }
    /* The search: the predicted answer and one more user (two probes when the plan is right);
     * a count already measured as a target costs nothing more. */
    const int probes[] = {max_users > 0 ? max_users : 1, max_users + 1};
    for (size_t k = 0; sc->capacity_search && k < 2; k++) {
        bool target = false;
        for (size_t u = 0; u < sc->users.n; u++)
            target |= sc->users.v[u] == probes[k];
        if (probes[k] > sc->max_users || target)
            continue;
        total += probe_expected(st, si, wi, probes[k], &f);
        fixed += f;
    }
    if (fixed_s)
        *fixed_s = fixed;
    return total;
}

/* ==== What the study spent ==== */

void study_probe_times(json_t *row, double spent_s, size_t sent, int total)
{
    /* A closed loop sends at a steady rate after its warm-up: the cap's time scales with the
     * requests. A probe that ran to its cap is its own fixed design. */
    double fixed =
        sent > 0 && (size_t)total > sent ? spent_s * (double)total / (double)sent : spent_s;
    json_object_set_new(row, "probe_s", json_real(spent_s));
    json_object_set_new(row, "probe_fixed_s", json_real(fixed));
}

void study_measuring_totals(const struct study *st, struct measuring_totals *t)
{
    memset(t, 0, sizeof(*t));
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(st->doc, "rows"), i, row)
    {
        json_t *spent = json_object_get(row, "probe_s");
        if (!json_is_number(spent))
            continue;
        t->probes++;
        t->spent_s += json_number_value(spent);
        t->fixed_s += json_number_value(json_object_get(row, "probe_fixed_s"));
        const char *by = json_string_value(json_object_get(row, "ended_by"));
        t->stopped += by && strcmp(by, "decided") == 0;
        t->undecided += json_is_false(json_object_get(row, "slo_decided"));
    }
}

void study_measuring_save(struct study *st)
{
    struct measuring_totals t;
    study_measuring_totals(st, &t);
    json_object_set_new(st->doc, "measuring",
                        json_pack("{s:i, s:i, s:i, s:f, s:f}", "probes", (json_int_t)t.probes,
                                  "stopped_when_decided", (json_int_t)t.stopped, "undecided",
                                  (json_int_t)t.undecided, "spent_s", t.spent_s, "fixed_design_s",
                                  t.fixed_s));
}

static void fmt_time(char *out, size_t len, double s)
{
    if (s < 120)
        snprintf(out, len, "%.0f s", s);
    else if (s < 7200)
        snprintf(out, len, "%.1f min", s / 60);
    else
        snprintf(out, len, "%.1f h", s / 3600);
}

void study_print_measuring(const struct study *st)
{
    struct measuring_totals t;
    study_measuring_totals(st, &t);
    if (!t.probes)
        return;
    char spent[32], fixed[32];
    fmt_time(spent, sizeof(spent), t.spent_s);
    fmt_time(fixed, sizeof(fixed), t.fixed_s);
    printf("\nMeasuring (GPU time): %s for %zu probes, %zu stopped once their verdict was "
           "certain, %zu undecided at their cap; a fixed-size design of the same confidence (every "
           "probe to its cap) would have needed about %s (%.0f %%).\n",
           spent, t.probes, t.stopped, t.undecided, fixed,
           t.fixed_s > 0 ? t.spent_s / t.fixed_s * 100 : 100.0);
}
