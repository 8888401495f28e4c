/* test_selfcheck.c - the client's self-check: each lag judged against the quantity it could
 * corrupt (selfcheck.h), with the figures said and never contradicting themselves. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runner/selfcheck.h"

/* A distribution whose p99 is p99_ms (the rest is not read). */
static struct dist lag(double p99_ms)
{
    struct dist d;
    memset(&d, 0, sizeof(d));
    d.n = 1000;
    d.p99 = p99_ms / 1e3;
    return d;
}

/* A point with ITL p50 and TTFT p50 in ms (itl_ms <= 0: no request had two tokens). */
static struct point_summary point(double itl_ms, double ttft_ms)
{
    struct point_summary s;
    memset(&s, 0, sizeof(s));
    s.itl.n = itl_ms > 0 ? 100 : 0;
    s.itl.p50 = itl_ms > 0 ? itl_ms / 1e3 : NAN;
    s.ttft.n = 10;
    s.ttft.p50 = ttft_ms / 1e3;
    return s;
}

static void judge(struct selfcheck *c, double disp_ms, double loop_ms, double itl_ms,
                  double ttft_ms)
{
    struct dist d = lag(disp_ms), l = lag(loop_ms);
    struct point_summary s = point(itl_ms, ttft_ms);
    selfcheck_judge(c, &d, &l, &s);
}

/* Sub-millisecond lags never flag; a lag is judged against what it could corrupt. */
static void lags_are_judged_against_what_was_measured(void **state)
{
    (void)state;
    struct selfcheck c;
    judge(&c, 0.6, 0.9, 5, 50); /* below the 1 ms floor */
    assert_false(c.distorted);
    assert_string_equal(c.why, "");
    assert_true(fabs(c.error_s - 0.9e-3) < 1e-12);
    judge(&c, 0.5, 2.0, 30, 400); /* 2 ms against a 30 ms ITL: within 10 % */
    assert_false(c.distorted);
    judge(&c, 0.5, 2.0, 12, 400); /* against 12 ms: past 1.2 ms */
    assert_true(c.distorted);
    assert_non_null(strstr(c.why, "loop lag p99 2.00 ms > 1.20 ms (10 % of ITL p50 12.00 ms)"));
    assert_null(strstr(c.why, "dispatch"));
    judge(&c, 7, 0.3, 12, 50); /* sent 7 ms late against a 50 ms TTFT */
    assert_true(c.distorted);
    assert_non_null(
        strstr(c.why, "dispatch lag p99 7.00 ms > 5.00 ms (10 % of TTFT p50 50.00 ms)"));
    assert_null(strstr(c.why, "loop lag"));
    assert_true(fabs(c.error_s - 7e-3) < 1e-12);
    judge(&c, 3, 3, 12, 500); /* dispatch 3 ms against a 500 ms TTFT: fine */
    assert_true(c.distorted);
    assert_null(strstr(c.why, "dispatch"));
}

/* Without gaps (one-token outputs) the loop lag is judged against the TTFT; below 10 ms
 * medians the floor applies and says so. */
static void references_and_floor(void **state)
{
    (void)state;
    struct selfcheck c;
    judge(&c, 0, 3, 0, 20);
    assert_true(c.distorted);
    assert_non_null(strstr(c.why, "loop lag p99 3.00 ms > 2.00 ms (10 % of TTFT p50 20.00 ms)"));
    judge(&c, 0, 1.5, 5, 20);
    assert_true(c.distorted);
    assert_non_null(strstr(c.why, "> 1.00 ms (the 1 ms floor)"));
    struct dist none;
    memset(&none, 0, sizeof(none));
    struct point_summary s = point(5, 20);
    selfcheck_judge(&c, &none, &none, &s); /* nothing measured (no request sent) */
    assert_false(c.distorted);
    assert_true(c.error_s == 0);
}

/* "1.38 ms > 1.38 ms" read as a contradiction: the figures get the decimals they need. */
static void figures_never_contradict_the_verdict(void **state)
{
    (void)state;
    struct selfcheck c;
    judge(&c, 0, 1.3812, 13.76, 400);
    assert_true(c.distorted);
    assert_non_null(strstr(c.why, "loop lag p99 1.381 ms > 1.376 ms"));
    judge(&c, 0, 1.3761, 13.76, 400);
    assert_true(c.distorted);
    assert_non_null(strstr(c.why, "loop lag p99 1.3761 ms > 1.3760 ms"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lags_are_judged_against_what_was_measured),
        cmocka_unit_test(references_and_floor),
        cmocka_unit_test(figures_never_contradict_the_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
