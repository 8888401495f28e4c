/* test_metrics.c - point summaries checked against values computed by hand
 * (docs/METRICS.md; percentiles with linear interpolation). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runner/metrics.h"

#define NREC 7
#define TOL 1e-9

/* A run-clock time x milliseconds after an arbitrary nonzero origin. */
static mono_ns ms(double x)
{
    return 1000000000ull + (mono_ns)llround(x * 1e6);
}

static void near(double got, double want)
{
    if (!(fabs(got - want) <= TOL * (1 + fabs(want)))) {
        fail_msg("got %.12g, want %.12g", got, want);
    }
}

struct fixture {
    struct req_record r[NREC];
    mono_ns ev[NREC][8];
};

static void rec(struct fixture *f, int i, double due, double sent, const double *events, size_t ne,
                double end, int out_tokens, bool usage, int prompt, int target, enum req_status st)
{
    struct req_record *r = &f->r[i];
    memset(r, 0, sizeof(*r));
    r->id = (uint64_t)i;
    r->t_due = ms(due);
    r->t_sent = sent < 0 ? 0 : ms(sent);
    for (size_t k = 0; k < ne; k++)
        f->ev[i][k] = ms(events[k]);
    r->events = ne ? f->ev[i] : NULL;
    r->n_events = ne;
    r->t_first = ne ? f->ev[i][0] : 0;
    r->t_last = ne ? f->ev[i][ne - 1] : 0;
    r->t_end = end < 0 ? 0 : ms(end);
    r->output_tokens = out_tokens;
    r->tokens_from_usage = usage;
    r->prompt_tokens = prompt;
    r->target_prompt_tokens = target;
    r->status = st;
}

/* Four completed requests, two failed after sending, one never sent. */
static void build(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    const double e0[] = {100, 110, 130}, e1[] = {220, 240}, e2[] = {320},
                 e3[] = {440, 450, 460, 470, 480}, e5[] = {100};
    rec(f, 0, 0, 0, e0, 3, 131, 3, true, 100, 100, REQ_OK);
    rec(f, 1, 10, 20, e1, 2, 245, 2, true, 99, 100, REQ_OK);
    rec(f, 2, 20, 20, e2, 1, 330, 1, false, -1, 100, REQ_OK);
    rec(f, 3, 30, 40, e3, 5, 500, 5, true, 104, 100, REQ_OK);
    rec(f, 4, 50, 50, NULL, 0, 600, 0, true, -1, 100, REQ_HTTP_5XX);
    rec(f, 5, 60, 60, e5, 1, -1, 0, false, -1, 100, REQ_TIMEOUT);
    rec(f, 6, 70, -1, NULL, 0, -1, 0, false, -1, 100, REQ_CANCELLED);
    f->r[5].t_last = 0; /* cut before a last event was known */
}

static struct slo_cfg no_slo(void)
{
    struct slo_cfg s = {.ttft_ms = NAN,
                        .itl_ms = NAN,
                        .tpot_ms = NAN,
                        .e2e_ms = NAN,
                        .percentile = 95,
                        .confidence = 0.95};
    return s;
}

static void counts_window_throughput(void **state)
{
    (void)state;
    struct fixture f;
    build(&f);
    struct point_summary s;
    struct slo_cfg slo = no_slo();
    point_summary_compute(&s, f.r, NREC, &slo);
    assert_int_equal(s.issued, 7);
    assert_int_equal(s.completed, 4);
    assert_int_equal(s.failed, 3);
    assert_int_equal(s.failed_by_class[REQ_HTTP_5XX], 1);
    assert_int_equal(s.failed_by_class[REQ_TIMEOUT], 1);
    assert_int_equal(s.failed_by_class[REQ_CANCELLED], 1);
    assert_int_equal(s.failed_by_class[REQ_HTTP_4XX], 0);
    assert_int_equal(s.failed_by_class[REQ_OK], 0);
    /* Window: first t_sent (0 ms) to the last t_end of any sent request (the 5xx at 600 ms). */
    assert_int_equal(s.window_start, ms(0));
    assert_int_equal(s.window_end, ms(600));
    near(s.duration_s, 0.6);
    near(s.request_throughput, 4 / 0.6);
    assert_int_equal(s.output_tokens_total, 3 + 2 + 1 + 5);
    /* Request 2 has no usage: its target length stands in. */
    assert_int_equal(s.prompt_tokens_total, 100 + 99 + 100 + 104);
    near(s.output_throughput, 11 / 0.6);
    near(s.total_throughput, 414 / 0.6);
    assert_int_equal(s.tokens_from_events, 1);
    near(s.prompt_error_max_pct, 4.0);
    assert_true(s.prompt_off_target);
    /* No objectives: no SLO to attain, so neither goodput nor attainment (not the completion
     * rate), and no verdict. */
    assert_int_equal(s.slo_met, 0);
    assert_true(isnan(s.goodput));
    assert_true(isnan(s.slo_attainment_pct));
    assert_string_equal(s.slo_verdict, "");
    assert_false(s.verdict.has_slo);
}

static void latency_distributions(void **state)
{
    (void)state;
    struct fixture f;
    build(&f);
    struct point_summary s;
    point_summary_compute(&s, f.r, NREC, NULL);

    /* ttft = t_first - t_sent over completed only: [0.1, 0.2, 0.3, 0.4]; the timeout's 40 ms
     * TTFT is excluded. */
    assert_int_equal(s.ttft.n, 4);
    near(s.ttft.mean, 0.25);
    near(s.ttft.p50, 0.25);
    near(s.ttft.p90, 0.37); /* rank 2.7: 0.3 + 0.7 * 0.1, like p90([1,2,3,4]) = 3.7 */
    near(s.ttft.p95, 0.385);
    near(s.ttft.p99, 0.397);
    near(s.ttft.p999, 0.3997);
    near(s.ttft.min, 0.1);
    near(s.ttft.max, 0.4);
    near(s.ttft.std, sqrt(0.0125));

    /* ttft_sched = t_first - t_due: [0.1, 0.21, 0.3, 0.41]. */
    near(s.ttft_sched.mean, (0.1 + 0.21 + 0.3 + 0.41) / 4);
    near(s.ttft_sched.max, 0.41);
    near(s.ttft_sched.p50, 0.255);
    /* queue_delay = t_sent - t_due: [0, 0.01, 0, 0.01]. */
    assert_int_equal(s.queue_delay.n, 4);
    near(s.queue_delay.mean, 0.005);
    near(s.queue_delay.max, 0.01);
    near(s.queue_delay.min, 0);

    /* itl pooled: 10, 20 | 20 | 10, 10, 10, 10 ms. */
    assert_int_equal(s.itl.n, 7);
    near(s.itl.mean, 0.090 / 7);
    near(s.itl.p50, 0.010);
    near(s.itl.p90, 0.020); /* rank 5.4 between 20 and 20 */
    near(s.itl.p99, 0.020);
    near(s.itl.min, 0.010);

    /* tpot: (130-100)/2, (240-220)/1, (480-440)/4 ms; one-token request 2 has none. */
    assert_int_equal(s.tpot.n, 3);
    near(s.tpot.mean, 0.015);
    near(s.tpot.p50, 0.015);
    near(s.tpot.min, 0.010);
    near(s.tpot.max, 0.020);
    near(s.tpot.p90, 0.019);
    assert_int_equal(s.user_token_rate.n, 3);
    near(s.user_token_rate.min, 50);
    near(s.user_token_rate.max, 100);
    near(s.user_token_rate.mean, (1 / 0.015 + 50 + 100) / 3);

    /* e2e = t_last - t_sent: [0.13, 0.22, 0.3, 0.44]; e2e_sched from t_due. */
    assert_int_equal(s.e2e.n, 4);
    near(s.e2e.mean, (0.13 + 0.22 + 0.3 + 0.44) / 4);
    near(s.e2e.p90, 0.3 + 0.7 * 0.14);
    near(s.e2e_sched.max, 0.45);
    near(s.e2e_sched.min, 0.13);
}

static void slo_per_objective(void **state)
{
    (void)state;
    struct fixture f;
    build(&f);
    struct slo_cfg slo = no_slo();

    slo.ttft_ms = 250; /* met by 100, 200; missed by 300, 400 */
    assert_true(record_meets_slo(&f.r[0], &slo));
    assert_true(record_meets_slo(&f.r[1], &slo));
    assert_false(record_meets_slo(&f.r[2], &slo));
    assert_false(record_meets_slo(&f.r[3], &slo));
    slo.ttft_ms = 100; /* boundary: exactly equal meets */
    assert_true(record_meets_slo(&f.r[0], &slo));

    slo = no_slo();
    slo.tpot_ms = 18; /* 15 met, 20 missed, 10 met; the one-token request has no tpot: met */
    assert_true(record_meets_slo(&f.r[0], &slo));
    assert_false(record_meets_slo(&f.r[1], &slo));
    assert_true(record_meets_slo(&f.r[2], &slo));
    assert_true(record_meets_slo(&f.r[3], &slo));

    slo = no_slo();
    slo.itl_ms = 19; /* request 0's own gaps [10, 20]: p95 = 19.5 ms */
    assert_false(record_meets_slo(&f.r[0], &slo));
    slo.itl_ms = 19.5;
    assert_true(record_meets_slo(&f.r[0], &slo));
    slo.itl_ms = 15;
    slo.percentile = 50; /* p50 = 15 ms */
    assert_true(record_meets_slo(&f.r[0], &slo));
    slo.itl_ms = 14.9;
    assert_false(record_meets_slo(&f.r[0], &slo));
    assert_true(record_meets_slo(&f.r[2], &slo)); /* no gaps: met */

    slo = no_slo();
    slo.e2e_ms = 220; /* 130, 220 met; 300, 440 missed */
    assert_true(record_meets_slo(&f.r[0], &slo));
    assert_true(record_meets_slo(&f.r[1], &slo));
    assert_false(record_meets_slo(&f.r[2], &slo));
    assert_false(record_meets_slo(&f.r[3], &slo));

    /* Failures never meet, even with no objectives. */
    assert_false(record_meets_slo(&f.r[4], NULL));
    assert_false(record_meets_slo(&f.r[5], &slo));
    assert_true(record_meets_slo(&f.r[0], NULL));

    /* A completed stream with no text never gave a first token. */
    struct req_record empty = f.r[0];
    empty.events = NULL;
    empty.n_events = 0;
    empty.t_first = empty.t_last = 0;
    empty.output_tokens = 0;
    slo = no_slo();
    assert_true(record_meets_slo(&empty, &slo));
    slo.ttft_ms = 1e9;
    assert_false(record_meets_slo(&empty, &slo));
}

static void goodput_and_attainment(void **state)
{
    (void)state;
    struct fixture f;
    build(&f);
    struct slo_cfg slo = no_slo();
    slo.ttft_ms = 250;
    slo.tpot_ms = 18; /* only request 0 meets both */
    struct point_summary s;
    point_summary_compute(&s, f.r, NREC, &slo);
    assert_int_equal(s.slo_met, 1);
    near(s.goodput, 1 / 0.6);
    near(s.slo_attainment_pct, 100.0 / 7.0);
}

static void empty_and_all_failed(void **state)
{
    (void)state;
    struct point_summary s;
    point_summary_compute(&s, NULL, 0, NULL);
    assert_int_equal(s.issued, 0);
    assert_true(isnan(s.duration_s));
    assert_true(isnan(s.request_throughput));
    assert_true(isnan(s.slo_attainment_pct));
    assert_true(isnan(s.ttft.p50));
    assert_true(isnan(s.prompt_error_max_pct));
    assert_false(s.prompt_off_target);

    struct fixture f;
    build(&f);
    point_summary_compute(&s, &f.r[4], 3, NULL);
    assert_int_equal(s.completed, 0);
    assert_int_equal(s.failed, 3);
    near(s.duration_s, 0.55); /* 50 ms to 600 ms; the unsent one does not count */
    near(s.request_throughput, 0);
    assert_true(isnan(s.slo_attainment_pct)); /* no SLO */
    struct slo_cfg slo = no_slo();
    slo.ttft_ms = 1000;
    point_summary_compute(&s, &f.r[4], 3, &slo);
    near(s.slo_attainment_pct, 0); /* every request failed: every one a miss */
    assert_string_equal(s.slo_verdict, "missed: 3 of 3 failed (http_5xx)");
    assert_int_equal(s.ttft.n, 0);
    assert_true(isnan(s.ttft.mean));
}

/* The point's verdict at slo.percentile, worked by hand from build()'s four completed requests
 * (the failed ones are misses: tests/test_verdict.c): TTFTs are 100, 200, 300, 400 ms (p90 =
 * 300 + 0.7 * 100 = 370 ms); TPOTs are 15, 20, 10 ms (p90 = 15 + 0.8 * 5 = 19 ms). */
static void slo_verdict_at_percentile(void **state)
{
    (void)state;
    struct fixture f;
    build(&f);
    struct point_summary s;
    struct slo_cfg slo = no_slo();
    point_summary_compute(&s, f.r, 4, &slo);
    assert_string_equal(s.slo_verdict, "");
    slo.percentile = 90;
    slo.ttft_ms = 400;
    point_summary_compute(&s, f.r, 4, &slo);
    assert_string_equal(s.slo_verdict, "met");
    slo.ttft_ms = 350;
    slo.tpot_ms = 18;
    point_summary_compute(&s, f.r, 4, &slo);
    assert_string_equal(s.slo_verdict,
                        "missed: ttft p90 370.0 ms > 350 ms; tpot p90 19.0 ms > 18 ms");
    slo.tpot_ms = 19.5;
    point_summary_compute(&s, f.r, 4, &slo);
    assert_string_equal(s.slo_verdict, "missed: ttft p90 370.0 ms > 350 ms");
}

static void record_latency_fields(void **state)
{
    (void)state;
    struct fixture f;
    build(&f);
    struct req_latencies l;
    record_latencies(&f.r[3], &l);
    near(l.ttft, 0.4);
    near(l.ttft_sched, 0.41);
    near(l.queue_delay, 0.01);
    near(l.tpot, 0.01);
    near(l.e2e, 0.44);
    near(l.e2e_sched, 0.45);
    record_latencies(&f.r[4], &l); /* failed, no text: e2e from t_end, no ttft/tpot */
    assert_true(isnan(l.ttft));
    assert_true(isnan(l.tpot));
    near(l.e2e, 0.55);
    record_latencies(&f.r[6], &l); /* never sent */
    assert_true(isnan(l.queue_delay));
    assert_true(isnan(l.e2e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_window_throughput),  cmocka_unit_test(latency_distributions),
        cmocka_unit_test(slo_per_objective),         cmocka_unit_test(goodput_and_attainment),
        cmocka_unit_test(empty_and_all_failed),      cmocka_unit_test(record_latency_fields),
        cmocka_unit_test(slo_verdict_at_percentile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
