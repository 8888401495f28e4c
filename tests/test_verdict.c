/*
 * test_verdict.c - the verdict rule on synthetic requests (docs/METRICS.md "Verdicts"): the
 * order-statistic interval against an independent binomial computation and against its own
 * coverage on drawn samples, the minimum samples, failures as misses, the words, and the stop
 * rule's one look (far from the SLO it decides at the minimum, near it waits for the cap, the
 * look's sample is fixed by the order of sending and leaves the warm-up out). Deterministic: no
 * clock, no server.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/measure_cfg.h"
#include "core/rng.h"
#include "core/stats.h"
#include "runner/metrics.h"
#include "runner/verdict.h"
#include "study/capacity.h"

/* P(Binomial(n, q) <= k), summed in long double from the definition (independent of stats.c's
 * walk from the mode). */
static long double binom_cdf(size_t n, double q, long k)
{
    long double sum = 0;
    for (long j = 0; j <= k && j <= (long)n; j++) {
        long double lc = lgammal((long double)n + 1) - lgammal((long double)j + 1) -
                         lgammal((long double)(n - (size_t)j) + 1);
        sum += expl(lc + j * logl(q) + (long double)(n - (size_t)j) * logl(1 - (long double)q));
    }
    return sum;
}

/* The ranks by their definition: lo the largest with P(B <= lo - 1) <= alpha, hi the smallest
 * with P(B >= hi) = 1 - P(B <= hi - 1) <= alpha. */
static void ranks_by_definition(size_t n, double q, double alpha, size_t *lo, size_t *hi)
{
    *lo = 0;
    for (size_t l = 1; l <= n; l++)
        if (binom_cdf(n, q, (long)l - 1) <= alpha)
            *lo = l;
    *hi = n + 1;
    for (size_t h = n; h >= 1; h--) {
        if (1 - binom_cdf(n, q, (long)h - 1) <= alpha)
            *hi = h;
        else
            break;
    }
}

static void ranks_match_the_binomial(void **state)
{
    (void)state;
    const double qs[] = {0.5, 0.9, 0.95, 0.99};
    const size_t ns[] = {1, 2, 5, 6, 20, 35, 71, 72, 100, 240, 400};
    for (size_t a = 0; a < sizeof(qs) / sizeof(qs[0]); a++) {
        for (size_t b = 0; b < sizeof(ns) / sizeof(ns[0]); b++) {
            size_t lo, hi;
            ranks_by_definition(ns[b], qs[a], 0.025, &lo, &hi);
            struct quantile_ranks r = quantile_ci_ranks(ns[b], qs[a], 0.025);
            if (r.lo != lo || r.hi != hi)
                fail_msg("n %zu q %g: got [%zu, %zu], want [%zu, %zu]", ns[b], qs[a], r.lo, r.hi,
                         lo, hi);
        }
    }
    /* Worked by hand: p95 of 20, the 17th smallest is the lower end (P(B <= 16) = 0.016, P(B <=
     * 17) = 0.075); no upper end (0.95^20 = 0.36). */
    struct quantile_ranks r = quantile_ci_ranks(20, 0.95, 0.025);
    assert_int_equal(r.lo, 17);
    assert_int_equal(r.hi, 21);
    /* A large sample stays quick and sane: the ends straddle the point estimate's rank. */
    r = quantile_ci_ranks(1000000, 0.95, 0.025);
    assert_true(r.lo < 950000 && r.hi > 950000 && r.hi - r.lo < 2000);
}

static void minimum_samples(void **state)
{
    (void)state;
    /* q^n <= 0.025 for the upper end: p95 needs 72 (0.95^71 = 0.0262), p90 36 (0.9^35 =
     * 0.02503), p99 368. */
    assert_int_equal(quantile_ci_min_samples(0.95, 0.025), 72);
    assert_int_equal(quantile_ci_min_samples(0.90, 0.025), 36);
    assert_int_equal(quantile_ci_min_samples(0.99, 0.025), 368);
    assert_int_equal(quantile_ci_min_samples(0.50, 0.025), 6);
    assert_int_equal(quantile_ci_min_samples(1.0, 0.025), 0);
    struct slo_cfg slo = {.ttft_ms = 500,
                          .itl_ms = NAN,
                          .tpot_ms = NAN,
                          .e2e_ms = NAN,
                          .percentile = 95,
                          .confidence = 0.95};
    assert_int_equal(slo_cfg_min_requests(&slo), 72);
    slo.confidence = 0.9; /* each end 5 %: 0.95^59 = 0.0485 */
    assert_int_equal(slo_cfg_min_requests(&slo), 59);
}

/* Over many samples from a known distribution the interval holds the true quantile at least
 * as often as its level says (a fixed seed: the figure is the same every run). */
static void interval_covers_the_true_quantile(void **state)
{
    (void)state;
    struct rng g;
    rng_seed(&g, 20261207);
    const double q = 0.95, truth = -log(1 - q); /* exponential, mean 1 */
    const size_t n = 120, trials = 4000;
    size_t covered = 0, below = 0, above = 0;
    double *v = malloc(n * sizeof(*v));
    for (size_t t = 0; t < trials; t++) {
        for (size_t i = 0; i < n; i++)
            v[i] = rng_exp(&g, 1.0);
        sort_doubles(v, n);
        struct quantile_ranks r = quantile_ci_ranks(n, q, 0.025);
        assert_true(r.lo >= 1 && r.hi <= n);
        if (v[r.lo - 1] > truth)
            above++;
        else if (v[r.hi - 1] < truth)
            below++;
        else
            covered++;
    }
    free(v);
    double cover = (double)covered / trials;
    fprintf(stderr, "coverage of the 95 %% interval of p95 (n %zu): %.3f (%zu above, %zu below)\n",
            n, cover, above, below);
    /* Exact ranks overcover a little; 4,000 trials give a standard error of 0.0035. */
    assert_true(cover >= 0.94);
    assert_true((double)above / trials <= 0.035 && (double)below / trials <= 0.035);
}

/* n requests, TTFT of request i from ttft_ms(i); the first `failed` fail with 4xx. */
struct synth {
    struct req_record *r;
    mono_ns (*ev)[2];
    size_t n;
};

static void synth_build(struct synth *s, size_t n, double (*ttft_ms)(size_t, void *), void *ctx,
                        size_t failed)
{
    s->n = n;
    s->r = calloc(n, sizeof(*s->r));
    s->ev = calloc(n, sizeof(*s->ev));
    for (size_t i = 0; i < n; i++) {
        struct req_record *r = &s->r[i];
        req_record_init(r);
        mono_ns t0 = 1000000000ull + (mono_ns)i * 10000000ull;
        r->t_due = r->t_sent = t0;
        if (i < failed) {
            r->status = REQ_HTTP_4XX;
            r->t_end = t0 + 1000000;
            continue;
        }
        s->ev[i][0] = t0 + (mono_ns)llround(ttft_ms(i, ctx) * 1e6);
        s->ev[i][1] = s->ev[i][0] + 20000000ull;
        r->events = s->ev[i];
        r->n_events = 2;
        r->t_first = s->ev[i][0];
        r->t_last = r->t_end = s->ev[i][1];
        r->output_tokens = 2;
    }
}

static void synth_free(struct synth *s)
{
    free(s->r);
    free(s->ev);
}

/* Uniform TTFTs from base to base + spread ms, in a shuffled but fixed order. */
struct spread {
    double base, spread;
    size_t n;
};

static double spread_ttft(size_t i, void *ctx)
{
    const struct spread *p = ctx;
    size_t k = (i * 7919) % p->n; /* a permutation of 0..n-1 for n prime to 7919 */
    return p->base + p->spread * (double)k / (double)(p->n - 1);
}

static void failures_are_misses(void **state)
{
    (void)state;
    struct slo_cfg slo = {.ttft_ms = 500,
                          .itl_ms = NAN,
                          .tpot_ms = NAN,
                          .e2e_ms = NAN,
                          .percentile = 95,
                          .confidence = 0.95};
    struct spread sp = {100, 50, 20};
    struct synth s;
    /* 13 of 20 fail with HTTP 400: the run that used to read "met". */
    synth_build(&s, 20, spread_ttft, &sp, 13);
    struct point_summary ps;
    point_summary_compute(&ps, s.r, s.n, &slo);
    assert_string_equal(ps.slo_verdict, "missed: 13 of 20 failed (http_4xx)");
    assert_false(ps.verdict.met);
    assert_true(ps.verdict.decided); /* the lower end is already a failure */
    /* attainment counts every issued request: 7 of 20 met */
    assert_true(fabs(ps.slo_attainment_pct - 35.0) < 1e-9);
    char line[512];
    slo_verdict_line(&ps.verdict, line, sizeof(line));
    assert_string_equal(line, "missed: 13 of 20 failed (http_4xx)");
    synth_free(&s);

    /* p95 of 100 tolerates 4 failures (NumPy's rank 94.05 reaches the 96th value), not 5. */
    sp.n = 100;
    synth_build(&s, 100, spread_ttft, &sp, 4);
    point_summary_compute(&ps, s.r, s.n, &slo);
    assert_string_equal(ps.slo_verdict, "met");
    assert_int_equal(ps.verdict.failed, 4);
    synth_free(&s);
    synth_build(&s, 100, spread_ttft, &sp, 5);
    point_summary_compute(&ps, s.r, s.n, &slo);
    assert_string_equal(ps.slo_verdict, "missed: 5 of 100 failed (http_4xx)");
    synth_free(&s);
}

static void words_and_intervals(void **state)
{
    (void)state;
    struct slo_cfg slo = {.ttft_ms = 500,
                          .itl_ms = NAN,
                          .tpot_ms = NAN,
                          .e2e_ms = NAN,
                          .percentile = 95,
                          .confidence = 0.95};
    struct spread sp = {300, 100, 240};
    struct synth s;
    synth_build(&s, 240, spread_ttft, &sp, 0);
    struct point_summary ps;
    point_summary_compute(&ps, s.r, s.n, &slo);
    const struct objective_verdict *ov = &ps.verdict.obj[OBJ_TTFT];
    /* TTFTs 300 + 100 k / 239 for k = 0..239: p95 is rank 227.05 (395.0 ms), and the
     * interval's ends are the values at its ranks. */
    struct quantile_ranks r = quantile_ci_ranks(240, 0.95, 0.025);
    assert_true(fabs(ov->value_ms - 395.0) < 1e-6);
    assert_true(fabs(ov->ci_low_ms - (300 + 100.0 * (double)(r.lo - 1) / 239)) < 1e-6);
    assert_true(fabs(ov->ci_high_ms - (300 + 100.0 * (double)(r.hi - 1) / 239)) < 1e-6);
    assert_true(ov->ci_low_ms <= ov->value_ms && ov->value_ms <= ov->ci_high_ms);
    assert_true(ps.verdict.met && ps.verdict.decided);
    char line[512];
    slo_verdict_line(&ps.verdict, line, sizeof(line));
    fprintf(stderr, "%s\n", line);
    assert_non_null(strstr(line, "met: p95 TTFT 395.0 ms, 95 % CI ["));
    assert_non_null(strstr(line, "<= 500 ms (240 requests)"));
    /* The limit inside the interval: undecided, the estimate's side named. */
    slo.ttft_ms = 396;
    point_summary_compute(&ps, s.r, s.n, &slo);
    assert_false(ps.verdict.decided);
    assert_true(ps.verdict.met);
    assert_string_equal(slo_verdict_state(&ps.verdict), "undecided");
    slo_verdict_line(&ps.verdict, line, sizeof(line));
    assert_non_null(strstr(line, "undecided (met by the estimate): p95 TTFT"));
    assert_non_null(strstr(line, "spans 396 ms"));
    /* Too few requests to bound p95 from above: met by the estimate, never decided. */
    slo.ttft_ms = 1000;
    point_summary_compute(&ps, s.r, 40, &slo);
    assert_true(ps.verdict.met);
    assert_false(ps.verdict.decided);
    slo_verdict_line(&ps.verdict, line, sizeof(line));
    assert_non_null(strstr(line, "a p95 verdict needs 72"));
    /* No SLO: said, and nothing else. */
    struct slo_cfg none = {.ttft_ms = NAN,
                           .itl_ms = NAN,
                           .tpot_ms = NAN,
                           .e2e_ms = NAN,
                           .percentile = 95,
                           .confidence = 0.95};
    point_summary_compute(&ps, s.r, s.n, &none);
    slo_verdict_line(&ps.verdict, line, sizeof(line));
    assert_string_equal(line, "no SLO set");
    synth_free(&s);
}

/* Warm-up requests are counted and left out of everything else. */
static void warmup_is_left_out(void **state)
{
    (void)state;
    struct slo_cfg slo = {.ttft_ms = 500,
                          .itl_ms = NAN,
                          .tpot_ms = NAN,
                          .e2e_ms = NAN,
                          .percentile = 95,
                          .confidence = 0.95};
    struct spread sp = {100, 50, 100};
    struct synth s;
    synth_build(&s, 100, spread_ttft, &sp, 10); /* the ten that fail are the warm-up */
    for (size_t i = 0; i < 10; i++)
        s.r[i].warmup = true;
    struct point_summary ps;
    point_summary_compute(&ps, s.r, s.n, &slo);
    assert_int_equal(ps.warmup, 10);
    assert_int_equal(ps.warmup_failed, 10);
    assert_int_equal(ps.issued, 90);
    assert_int_equal(ps.failed, 0);
    assert_string_equal(ps.slo_verdict, "met");
    assert_true(fabs(ps.slo_attainment_pct - 100) < 1e-9);
    assert_int_equal(ps.verdict.requests, 90);
    synth_free(&s);
}

/* Feeds requests to the stopper in the order given; returns how many it took to stop (0: it
 * never did). */
static size_t feed(struct slo_stopper *st, const struct synth *s, const size_t *order)
{
    for (size_t k = 0; k < s->n; k++) {
        size_t i = order ? order[k] : k;
        if (slo_stopper_done(st, 0, i, &s->r[i]))
            return k + 1;
    }
    return 0;
}

static void stop_rule_far_stops_near_runs_on(void **state)
{
    (void)state;
    struct slo_cfg slo = {.ttft_ms = 500,
                          .itl_ms = NAN,
                          .tpot_ms = NAN,
                          .e2e_ms = NAN,
                          .percentile = 95,
                          .confidence = 0.95};
    struct synth s;
    struct slo_verdict v;
    /* Far below: TTFT 100-150 ms against 500 ms. Decided met at exactly 72 requests. */
    struct spread far = {100, 50, 400};
    synth_build(&s, 400, spread_ttft, &far, 0);
    struct slo_stopper *st = slo_stopper_new(1);
    slo_stopper_tenant(st, 0, &slo, s.n);
    assert_int_equal(feed(st, &s, NULL), 72);
    assert_true(slo_stopper_decided(st, 0, &v));
    assert_true(v.met);
    slo_stopper_free(st);
    synth_free(&s);
    /* Far above: 900-1000 ms. Every one of the first ten misses: the early look decides
     * (each end's error 0.1 %: a 99.8 % interval). */
    struct spread over = {900, 100, 400};
    synth_build(&s, 400, spread_ttft, &over, 0);
    st = slo_stopper_new(1);
    slo_stopper_tenant(st, 0, &slo, s.n);
    assert_int_equal(feed(st, &s, NULL), 10);
    assert_true(slo_stopper_decided(st, 0, &v));
    assert_false(v.met);
    assert_int_equal(v.requests, 10);
    assert_true(fabs(v.confidence - 0.998) < 1e-9);
    slo_stopper_free(st);
    synth_free(&s);
    /* Above, not by much: 425-525 ms, a quarter over 500. Three of the first ten miss, which a
     * p95 within 500 ms would show one time in 87 (above the early look's 0.1 %); the 72 then
     * decide it. */
    struct spread above = {425, 100, 400};
    synth_build(&s, 400, spread_ttft, &above, 0);
    st = slo_stopper_new(1);
    slo_stopper_tenant(st, 0, &slo, s.n);
    assert_int_equal(feed(st, &s, NULL), 72);
    assert_true(slo_stopper_decided(st, 0, &v));
    assert_false(v.met);
    assert_int_equal(v.requests, 72);
    slo_stopper_free(st);
    synth_free(&s);
    /* Near: 450-550 ms, p95 about 545 ms, the limit 545 ms inside the interval. It never
     * stops: the point runs to its cap. */
    slo.ttft_ms = 545;
    struct spread near_it = {450, 100, 400};
    synth_build(&s, 400, spread_ttft, &near_it, 0);
    st = slo_stopper_new(1);
    slo_stopper_tenant(st, 0, &slo, s.n);
    assert_int_equal(feed(st, &s, NULL), 0);
    assert_false(slo_stopper_decided(st, 0, &v));
    slo_stopper_free(st);
    synth_free(&s);
}

/* The look's sample is the first 72 sent after the warm-up, whatever order they finish in. */
static void stop_rule_waits_for_the_sent_prefix(void **state)
{
    (void)state;
    struct slo_cfg slo = {.ttft_ms = 500,
                          .itl_ms = NAN,
                          .tpot_ms = NAN,
                          .e2e_ms = NAN,
                          .percentile = 95,
                          .confidence = 0.95};
    struct spread far = {100, 50, 200};
    struct synth s;
    synth_build(&s, 200, spread_ttft, &far, 0);
    for (size_t i = 0; i < 8; i++)
        s.r[i].warmup = true;
    /* Request 8 (the first after the warm-up) finishes last of the first 100. */
    size_t order[200];
    size_t k = 0;
    for (size_t i = 0; i < 100; i++)
        if (i != 8)
            order[k++] = i;
    order[k++] = 8;
    for (size_t i = 100; i < 200; i++)
        order[k++] = i;
    struct slo_stopper *st = slo_stopper_new(1);
    slo_stopper_tenant(st, 0, &slo, s.n);
    /* Requests 0..99 except 8 are 99 done, 91 after the warm-up: still no look, because the
     * first 72 sent are not all in; the 100th finish (request 8) completes them. */
    assert_int_equal(feed(st, &s, order), 100);
    struct slo_verdict v;
    assert_true(slo_stopper_decided(st, 0, &v));
    assert_int_equal(v.requests, 72);
    slo_stopper_free(st);
    synth_free(&s);
}

/* Users in conversation: a session's turns after its end (a failed turn, a conversation past
 * the client's limit) are never sent. The sample passes over them instead of waiting for them
 * (the point would run to its cap), and never counts them: the look judges 72 sent requests. */
static void stop_rule_passes_over_turns_never_sent(void **state)
{
    (void)state;
    struct slo_cfg slo = {.ttft_ms = 500,
                          .itl_ms = NAN,
                          .tpot_ms = NAN,
                          .e2e_ms = NAN,
                          .percentile = 95,
                          .confidence = 0.95};
    struct spread far = {100, 50, 200};
    struct synth s;
    synth_build(&s, 200, spread_ttft, &far, 0);
    /* 50 conversations of 4 turns; conversation 2 ends after its second turn (request 9),
     * so its turns 10 and 11 never go out. */
    struct slo_stopper *st = slo_stopper_new(1);
    slo_stopper_tenant(st, 0, &slo, s.n);
    size_t k = 0;
    bool stopped = false;
    for (size_t i = 0; i < s.n && !stopped; i++) {
        if (i == 10 || i == 11)
            continue;
        if (i == 9) { /* as the runner does: the session ends before the rule hears of it */
            slo_stopper_skip(st, 0, 10);
            slo_stopper_skip(st, 0, 11);
        }
        k++;
        stopped = slo_stopper_done(st, 0, i, &s.r[i]);
    }
    /* Without the skip the prefix would stop at request 10 and nothing would be decided. */
    assert_true(stopped);
    assert_int_equal(k, 72);
    struct slo_verdict v;
    assert_true(slo_stopper_decided(st, 0, &v));
    assert_int_equal(v.requests, 72);
    assert_true(v.met);
    slo_stopper_free(st);
    synth_free(&s);
}

/* A synthetic server for the capacity search: TTFT p95 rises by 30 ms per user from 220 ms
 * (490 ms at 9 users, 520 ms at 10: the limit of 500 ms lies between), each probe's requests
 * spread +-10 % around it in a fixed shuffled order. A probe runs the stop rule (or, fixed,
 * judges all of its cap). */
struct synth_search {
    bool stop;
    size_t requests; /* sent over the whole search */
    const struct slo_cfg *slo;
};

static double rising_ttft(size_t i, void *ctx)
{
    const double *p95 = ctx;
    double u = (double)((i * 7919) % 288) / 287.0; /* 0..1, shuffled */
    return *p95 * (0.9 + 0.2 * u) / 1.0947;        /* the p95 of 0.9..1.1 is 1.09 */
}

static int synth_probe(void *ctx, int users, bool *met)
{
    struct synth_search *ss = ctx;
    double p95 = 220 + 30.0 * users;
    struct synth s;
    synth_build(&s, 288, rising_ttft, &p95, 0);
    size_t used = s.n;
    struct slo_verdict v;
    if (ss->stop) {
        struct slo_stopper *st = slo_stopper_new(1);
        slo_stopper_tenant(st, 0, ss->slo, s.n);
        size_t at = feed(st, &s, NULL);
        used = at ? at : s.n;
        bool decided = slo_stopper_decided(st, 0, &v);
        slo_stopper_free(st);
        if (!decided) {
            struct point_summary ps;
            point_summary_compute(&ps, s.r, s.n, ss->slo);
            v = ps.verdict;
        }
    } else {
        struct point_summary ps;
        point_summary_compute(&ps, s.r, s.n, ss->slo);
        v = ps.verdict;
    }
    ss->requests += used;
    *met = v.met;
    synth_free(&s);
    return 0;
}

/* The search with the stop rule finds the fixed design's answer with at most half its
 * requests: the probes far from the limit stop at ten or 72, the ones at it run to the cap. */
static void search_stops_early_and_agrees(void **state)
{
    (void)state;
    struct slo_cfg slo = {.ttft_ms = 500,
                          .itl_ms = NAN,
                          .tpot_ms = NAN,
                          .e2e_ms = NAN,
                          .percentile = 95,
                          .confidence = 0.95};
    const int starts[] = {1, 4, 10, 16, 40};
    for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
        struct synth_search seq = {true, 0, &slo}, fixed = {false, 0, &slo};
        struct capacity_result a, b;
        assert_int_equal(capacity_search(starts[k], 64, synth_probe, &seq, &a), 0);
        assert_int_equal(capacity_search(starts[k], 64, synth_probe, &fixed, &b), 0);
        fprintf(stderr, "start %d: stop rule %d users in %zu requests, fixed %d in %zu\n",
                starts[k], a.max_users, seq.requests, b.max_users, fixed.requests);
        assert_int_equal(a.max_users, 9);
        assert_true(abs(a.max_users - b.max_users) <= 1);
        assert_true(seq.requests * 2 <= fixed.requests);
    }
}

/* The settings' rules name file:line:column and the key, and say what would do. */
static void config_rules(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"requests: {num_requests: 50, stop_when_decided: true}\nslo: {ttft_ms: 500}\n",
         ":2:26: requests.num_requests: 50 (50 after warmup_requests) cannot decide a p95 verdict "
         "at 95 % confidence: stop_when_decided needs at least 72 requests after the warm-up"},
        /* Every objective of the default profile cleared: nothing to decide. */
        {"requests: {num_requests: 200, stop_when_decided: true}\n"
         "slo: {ttft_ms: null, tpot_ms: null}\n",
         "requests.stop_when_decided: needs an SLO to decide"},
        /* Users in conversation are decided too: the warm-up counts against the 72. */
        {"requests: {num_requests: 100, warmup_requests: 40, stop_when_decided: true,\n"
         "  session: {turns: 2}}\nslo: {ttft_ms: 500}\n",
         "requests.num_requests: 100 (60 after warmup_requests) cannot decide a p95"},
        {"requests: {num_requests: 10, warmup_requests: 10}\n",
         ":2:47: requests.warmup_requests: 10 leaves no request to measure"},
        {"requests: {duration_s: 5, warmup_s: 5}\n", "requests.warmup_s: 5 s leaves nothing"},
        {"requests: {duration_s: -1}\n", "requests.duration_s"},
        {"slo: {ttft_ms: 500, confidence: 1.5}\n", ":2:33: slo.confidence"},
        {"slo: {ttft_ms: 500, percentile: 100}\nrequests: {stop_when_decided: true}\n",
         "no number of requests decides a p100 verdict"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[] = "/tmp/tb_test_verdict_XXXXXX.yaml";
        int fd = mkstemps(path, 5);
        assert_true(fd >= 0);
        const char *prefix = "model: {name: m}\n";
        assert_true(write(fd, prefix, strlen(prefix)) == (ssize_t)strlen(prefix));
        assert_true(write(fd, cases[i].yaml, strlen(cases[i].yaml)) ==
                    (ssize_t)strlen(cases[i].yaml));
        close(fd);
        struct config c;
        char err[1024] = "";
        int rc = config_load(&c, path, err, sizeof(err));
        unlink(path);
        if (rc == 0 || !strstr(err, cases[i].want))
            fail_msg("case %zu: rc %d, got \"%s\", want \"%s\"", i, rc, err, cases[i].want);
        config_release(&c);
    }
    /* The defaults: 95 % confidence, no warm-up, no duration, no stopping. */
    struct config c;
    config_defaults(&c);
    assert_true(fabs(c.slo.confidence - 0.95) < 1e-12);
    assert_int_equal(c.requests.warmup_requests, 0);
    assert_true(isnan(c.requests.duration_s));
    assert_false(c.requests.stop_when_decided);
    config_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranks_match_the_binomial),
        cmocka_unit_test(minimum_samples),
        cmocka_unit_test(interval_covers_the_true_quantile),
        cmocka_unit_test(failures_are_misses),
        cmocka_unit_test(words_and_intervals),
        cmocka_unit_test(warmup_is_left_out),
        cmocka_unit_test(stop_rule_far_stops_near_runs_on),
        cmocka_unit_test(stop_rule_waits_for_the_sent_prefix),
        cmocka_unit_test(stop_rule_passes_over_turns_never_sent),
        cmocka_unit_test(search_stops_early_and_agrees),
        cmocka_unit_test(config_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
