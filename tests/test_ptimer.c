/* test_ptimer.c - precise timers on one timerfd: order, never early, cancel and move,
 * re-arming from a callback, and a timerfd armed only when the earliest due time moves
 * earlier. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <event2/event.h>

#include "runner/ptimer.h"

#define MS NS_PER_MS

struct fired {
    int order[16];
    mono_ns due[16], at[16];
    int n;
};

struct tcase {
    struct fired *log;
    int id;
    mono_ns due;
    struct ptimer *self;
    int rearm; /* times left to re-arm itself at "now" */
};

static void on_fire(void *arg, mono_ns now)
{
    struct tcase *c = arg;
    struct fired *f = c->log;
    f->order[f->n] = c->id;
    f->due[f->n] = c->due;
    f->at[f->n] = now;
    f->n++;
    if (c->rearm > 0) {
        c->rearm--;
        c->due = now;
        assert_int_equal(ptimer_at(c->self, now), 0);
    }
}

/* Runs base until every timer has fired or 2 s pass. */
static void run_until(struct event_base *b, struct fired *f, int want)
{
    mono_ns end = clock_now() + 2 * NS_PER_S;
    while (f->n < want && clock_now() < end)
        event_base_loop(b, EVLOOP_ONCE);
}

static struct event_base *base_new(void)
{
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK); /* no precise timers of libevent's */
    struct event_base *b = event_base_new_with_config(ec);
    event_config_free(ec);
    assert_non_null(b);
    return b;
}

static void fire_in_due_order_never_early(void **state)
{
    (void)state;
    struct event_base *b = base_new();
    struct ptimer_set *s = ptimer_set_new(b);
    assert_non_null(s);
    struct fired f = {0};
    static const int wait_ms[] = {7, 2, 5, 3, 11, 1};
    struct tcase c[6];
    mono_ns t0 = clock_now();
    for (int i = 0; i < 6; i++) {
        c[i] = (struct tcase){.log = &f, .id = i, .due = t0 + (mono_ns)wait_ms[i] * MS};
        c[i].self = ptimer_new(s, on_fire, &c[i]);
        assert_int_equal(ptimer_at(c[i].self, c[i].due), 0);
        assert_true(ptimer_pending(c[i].self));
    }
    run_until(b, &f, 6);
    assert_int_equal(f.n, 6);
    static const int expect[] = {5, 1, 3, 2, 0, 4};
    for (int k = 0; k < 6; k++) {
        assert_int_equal(f.order[k], expect[k]);
        assert_true(f.at[k] >= f.due[k]); /* a timer never runs before it is due */
        assert_false(ptimer_pending(c[f.order[k]].self));
    }
    for (int i = 0; i < 6; i++)
        ptimer_free(c[i].self);
    ptimer_set_free(s);
    event_base_free(b);
}

static void cancel_and_move(void **state)
{
    (void)state;
    struct event_base *b = base_new();
    struct ptimer_set *s = ptimer_set_new(b);
    struct fired f = {0};
    mono_ns t0 = clock_now();
    struct tcase a = {.log = &f, .id = 1, .due = t0 + 2 * MS};
    struct tcase z = {.log = &f, .id = 2, .due = t0 + 4 * MS};
    a.self = ptimer_new(s, on_fire, &a);
    z.self = ptimer_new(s, on_fire, &z);
    assert_int_equal(ptimer_at(a.self, a.due), 0);
    assert_int_equal(ptimer_at(z.self, z.due), 0);
    ptimer_cancel(a.self); /* cancelled: never runs */
    assert_false(ptimer_pending(a.self));
    z.due = t0 + 6 * MS; /* moved later: runs at the new time, once */
    assert_int_equal(ptimer_at(z.self, z.due), 0);
    run_until(b, &f, 1);
    /* Give a stray second firing the chance to show. */
    mono_ns end = clock_now() + 10 * MS;
    while (clock_now() < end)
        event_base_loop(b, EVLOOP_NONBLOCK);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.order[0], 2);
    assert_true(f.at[0] >= t0 + 6 * MS);
    ptimer_free(a.self);
    ptimer_free(z.self);
    ptimer_set_free(s);
    event_base_free(b);
}

/* A callback that re-arms itself at "now" runs again on a later wake-up, not in a loop. */
static void rearm_now_waits_for_the_next_turn(void **state)
{
    (void)state;
    struct event_base *b = base_new();
    struct ptimer_set *s = ptimer_set_new(b);
    struct fired f = {0};
    struct tcase c = {.log = &f, .id = 7, .due = clock_now() + MS, .rearm = 3};
    c.self = ptimer_new(s, on_fire, &c);
    assert_int_equal(ptimer_at(c.self, c.due), 0);
    int turns = 0;
    mono_ns end = clock_now() + 2 * NS_PER_S;
    while (f.n < 4 && clock_now() < end) {
        int before = f.n;
        event_base_loop(b, EVLOOP_ONCE);
        assert_true(f.n - before <= 1); /* at most one run of it per loop turn */
        turns++;
    }
    assert_int_equal(f.n, 4);
    assert_true(turns >= 4);
    ptimer_free(c.self);
    ptimer_set_free(s);
    event_base_free(b);
}

/* The timerfd is set when the earliest due time moves earlier, not for later timers. */
static void arms_only_when_earliest_moves_earlier(void **state)
{
    (void)state;
    struct event_base *b = base_new();
    struct ptimer_set *s = ptimer_set_new(b);
    struct fired f = {0};
    struct tcase c[20];
    mono_ns t0 = clock_now();
    for (int i = 0; i < 20; i++) {
        c[i] = (struct tcase){.log = &f, .id = i, .due = t0 + (mono_ns)(100 + i) * MS};
        c[i].self = ptimer_new(s, on_fire, &c[i]);
        assert_int_equal(ptimer_at(c[i].self, c[i].due), 0);
    }
    assert_int_equal(ptimer_set_arms(s), 1); /* later due times did not touch the timerfd */
    c[19].due = t0 + 50 * MS;
    assert_int_equal(ptimer_at(c[19].self, c[19].due), 0);
    assert_int_equal(ptimer_set_arms(s), 2); /* an earlier one did */
    ptimer_cancel(c[19].self);
    assert_int_equal(ptimer_set_arms(s), 2); /* cancelling leaves it: that wake finds nothing */
    for (int i = 0; i < 20; i++)
        ptimer_free(c[i].self);
    ptimer_set_free(s);
    event_base_free(b);
}

/* The loop-lag probe: lateness against when the tick was due; the next tick one period after
 * this one was due, or after now when a stall passed that already. */
static void probe_tick_counts_lateness_once(void **state)
{
    (void)state;
    struct event_base *b = base_new();
    struct ptimer_set *s = ptimer_set_new(b);
    struct fired f = {0};
    struct tcase c = {.log = &f};
    struct ptimer *t = ptimer_new(s, on_fire, &c);
    mono_ns t0 = clock_now() + NS_PER_S, due = t0;
    /* On time: no lag, next one period on. */
    assert_true(ptimer_probe_tick(t, &due, MS, t0) == 0);
    assert_true(due == t0 + MS && ptimer_pending(t));
    /* 0.3 ms late: that is the lag, and the next stays on the grid. */
    assert_true(fabs(ptimer_probe_tick(t, &due, MS, t0 + MS + 300000) - 0.0003) < 1e-9);
    assert_true(due == t0 + 2 * MS);
    /* A 5 ms stall: counted once; the next is one period after now, not 4 ticks in the past. */
    assert_true(fabs(ptimer_probe_tick(t, &due, MS, t0 + 7 * MS) - 0.005) < 1e-9);
    assert_true(due == t0 + 8 * MS);
    ptimer_free(t);
    ptimer_set_free(s);
    event_base_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fire_in_due_order_never_early),
        cmocka_unit_test(cancel_and_move),
        cmocka_unit_test(rearm_now_waits_for_the_next_turn),
        cmocka_unit_test(arms_only_when_earliest_moves_earlier),
        cmocka_unit_test(probe_tick_counts_lateness_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
