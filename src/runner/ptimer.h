/*
 * ptimer.h - precise timers for an event loop: one timerfd per set, over a min-heap of due
 * times on the program's clock (CLOCK_MONOTONIC ns).
 *
 * Why not libevent's own timers: with EVENT_BASE_FLAG_PRECISE_TIMER libevent 2.1's epoll
 * backend calls timerfd_settime on every loop turn (1.8 us on the VMs measured, a third of
 * the runner's CPU per token event at 300 streams), and without that flag it keeps time with
 * CLOCK_MONOTONIC_COARSE and millisecond epoll timeouts (timers 4-8 ms late). A set here
 * re-arms its timerfd only when its earliest due time moves earlier than the one armed, so
 * a loop turn that fires no timer makes no timer syscall. docs/RUNNER.md has the figures.
 *
 * A set belongs to one loop thread; nothing here locks.
 */
#ifndef TB_PTIMER_H
#define TB_PTIMER_H

#include <stdbool.h>

#include <event2/event.h>

#include "core/clock.h"

struct ptimer_set;
struct ptimer;

/* Runs when the timer is due; now is clock_now() read just before. The callback may arm,
 * cancel or free any timer of the set, itself included. */
typedef void (*ptimer_fn)(void *arg, mono_ns now);

/* A set on base (its timerfd is one persistent read event there). NULL on failure (errno). */
struct ptimer_set *ptimer_set_new(struct event_base *base);
/* Frees the set; its timers must have been freed. NULL is ignored. */
void ptimer_set_free(struct ptimer_set *set);

/* A timer of set, not armed (aborts on OOM, as xcalloc). */
struct ptimer *ptimer_new(struct ptimer_set *set, ptimer_fn fn, void *arg);
/* Cancels and frees; NULL is ignored. */
void ptimer_free(struct ptimer *t);

/* Arms (or moves) t to run at due; a due time already past runs on the next loop turn.
 * 0 or -errno (timerfd_settime). */
int ptimer_at(struct ptimer *t, mono_ns due);
/* Arms t to run after wait nanoseconds from now. */
int ptimer_after(struct ptimer *t, mono_ns wait);
void ptimer_cancel(struct ptimer *t);
bool ptimer_pending(const struct ptimer *t);

/* A loop-lag probe: t runs every period. Called from t's callback with the time it was
 * due (*due) and now, it re-arms t one period after *due (one period after now when that
 * is already past, so one stall is counted once, not again by every tick it delayed) and
 * returns how late this tick ran, in seconds (0 if on time). */
double ptimer_probe_tick(struct ptimer *t, mono_ns *due, mono_ns period, mono_ns now);

/* How many times the set armed its timerfd (timerfd_settime calls), for tests and benches. */
unsigned long ptimer_set_arms(const struct ptimer_set *set);

#endif
