/* test_schedule.c - arrival schedules: moments of the gap distributions, exact constant
 * spacing, reproducibility from the seed and rejected arguments. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runner/schedule.h"

#define N_GAPS 20000

/* Mean and population variance (in seconds) of the n - 1 gaps of a schedule. */
static void gap_moments(const mono_ns *o, size_t n, double *mean, double *var)
{
    double sum = 0, ss = 0;
    for (size_t i = 1; i < n; i++)
        sum += (double)(o[i] - o[i - 1]) / 1e9;
    *mean = sum / (double)(n - 1);
    for (size_t i = 1; i < n; i++) {
        double d = (double)(o[i] - o[i - 1]) / 1e9 - *mean;
        ss += d * d;
    }
    *var = ss / (double)(n - 1);
}

static mono_ns *build(size_t n, enum arrival a, double rate, double burst, uint64_t seed)
{
    mono_ns *o = calloc(n, sizeof(*o));
    assert_non_null(o);
    assert_int_equal(schedule_build(o, n, a, rate, burst, seed), 0);
    return o;
}

static void first_due_at_zero_and_nondecreasing(void **state)
{
    (void)state;
    const enum arrival kinds[] = {ARRIVAL_POISSON, ARRIVAL_CONSTANT, ARRIVAL_GAMMA};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        mono_ns *o = build(500, kinds[k], 50.0, 0.5, 7);
        assert_int_equal(o[0], 0);
        for (size_t i = 1; i < 500; i++)
            assert_true(o[i] >= o[i - 1]);
        assert_true(o[499] > 0);
        free(o);
    }
}

static void poisson_moments(void **state)
{
    (void)state;
    const double rate = 4.0; /* mean gap 0.25 s */
    mono_ns *o = build(N_GAPS + 1, ARRIVAL_POISSON, rate, 1.0, 42);
    double mean, var;
    gap_moments(o, N_GAPS + 1, &mean, &var);
    /* Standard error of the mean is 0.25/sqrt(20000) = 0.0018; allow ~3.5 sigma. */
    assert_true(fabs(mean - 0.25) < 0.0065);
    /* Exponential: variance = mean^2; the sample variance's relative SE is ~sqrt(8/n) = 2%. */
    assert_true(fabs(var / (0.25 * 0.25) - 1.0) < 0.08);
    free(o);
}

static void gamma_moments(void **state)
{
    (void)state;
    const double rate = 10.0, shapes[] = {0.25, 1.0, 4.0};
    for (size_t k = 0; k < 3; k++) {
        mono_ns *o = build(N_GAPS + 1, ARRIVAL_GAMMA, rate, shapes[k], 1234 + k);
        double mean, var;
        gap_moments(o, N_GAPS + 1, &mean, &var);
        double want_var = 0.1 * 0.1 / shapes[k];
        double se_mean = sqrt(want_var / N_GAPS);
        assert_true(fabs(mean - 0.1) < 4 * se_mean);
        /* Relative SE of a gamma sample variance: sqrt((2 + 6/k) / n); 4 sigma. */
        double rel = 4 * sqrt((2 + 6 / shapes[k]) / N_GAPS);
        assert_true(fabs(var / want_var - 1.0) < rel);
        free(o);
    }
}

static void constant_exact(void **state)
{
    (void)state;
    mono_ns *o = build(1000, ARRIVAL_CONSTANT, 3.0, 1.0, 1);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(o[i], (mono_ns)llround((double)i * 1e9 / 3.0));
    assert_int_equal(o[3], 1000000000ull);
    free(o);
    /* The seed does not matter for constant arrivals. */
    mono_ns *a = build(10, ARRIVAL_CONSTANT, 7.0, 1.0, 1),
            *b = build(10, ARRIVAL_CONSTANT, 7.0, 1.0, 2);
    assert_memory_equal(a, b, 10 * sizeof(*a));
    free(a);
    free(b);
}

static void burst_and_inf_all_zero(void **state)
{
    (void)state;
    mono_ns o[64];
    memset(o, 0xff, sizeof(o));
    assert_int_equal(schedule_build(o, 64, ARRIVAL_BURST, 5.0, 1.0, 3), 0);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(o[i], 0);
    memset(o, 0xff, sizeof(o));
    assert_int_equal(schedule_build(o, 64, ARRIVAL_POISSON, INFINITY, 1.0, 3), 0);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(o[i], 0);
    memset(o, 0xff, sizeof(o));
    assert_int_equal(schedule_build(o, 64, ARRIVAL_GAMMA, INFINITY, 0.5, 3), 0);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(o[i], 0);
}

static void seeds(void **state)
{
    (void)state;
    const enum arrival kinds[] = {ARRIVAL_POISSON, ARRIVAL_GAMMA};
    for (size_t k = 0; k < 2; k++) {
        mono_ns *a = build(200, kinds[k], 5.0, 0.7, 99);
        mono_ns *b = build(200, kinds[k], 5.0, 0.7, 99);
        mono_ns *c = build(200, kinds[k], 5.0, 0.7, 100);
        assert_memory_equal(a, b, 200 * sizeof(*a));
        size_t same = 0;
        for (size_t i = 1; i < 200; i++)
            same += a[i] == c[i];
        assert_true(same < 5);
        free(a);
        free(b);
        free(c);
    }
}

static void invalid(void **state)
{
    (void)state;
    mono_ns o[4];
    assert_int_equal(schedule_build(o, 4, ARRIVAL_POISSON, 0.0, 1.0, 1), -EINVAL);
    assert_int_equal(schedule_build(o, 4, ARRIVAL_POISSON, -2.0, 1.0, 1), -EINVAL);
    assert_int_equal(schedule_build(o, 4, ARRIVAL_CONSTANT, NAN, 1.0, 1), -EINVAL);
    assert_int_equal(schedule_build(o, 4, ARRIVAL_CONSTANT, -INFINITY, 1.0, 1), -EINVAL);
    assert_int_equal(schedule_build(o, 4, ARRIVAL_GAMMA, 2.0, 0.0, 1), -EINVAL);
    assert_int_equal(schedule_build(o, 4, ARRIVAL_GAMMA, 2.0, -1.0, 1), -EINVAL);
    assert_int_equal(schedule_build(o, 4, ARRIVAL_GAMMA, 2.0, NAN, 1), -EINVAL);
    assert_int_equal(schedule_build(NULL, 4, ARRIVAL_POISSON, 2.0, 1.0, 1), -EINVAL);
    assert_int_equal(schedule_build(o, 4, (enum arrival)99, 2.0, 1.0, 1), -EINVAL);
    /* A rate so low the schedule would overflow the clock. */
    assert_int_equal(schedule_build(o, 4, ARRIVAL_CONSTANT, 1e-12, 1.0, 1), -EINVAL);
    /* n = 0 is fine and touches nothing. */
    assert_int_equal(schedule_build(NULL, 0, ARRIVAL_POISSON, 2.0, 1.0, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_due_at_zero_and_nondecreasing),
        cmocka_unit_test(poisson_moments),
        cmocka_unit_test(gamma_moments),
        cmocka_unit_test(constant_exact),
        cmocka_unit_test(burst_and_inf_all_zero),
        cmocka_unit_test(seeds),
        cmocka_unit_test(invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
