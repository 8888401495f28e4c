/*
 * ptimer.c - precise timers on one timerfd per set (see ptimer.h for why).
 *
 * The heap is ordered by due time. The timerfd is armed with an absolute CLOCK_MONOTONIC
 * time, and only when the earliest due time is earlier than what is armed: a timer that is
 * cancelled or moved later leaves the timerfd armed, and that wake-up finds nothing due and
 * arms the next. Timers armed by a callback wait for the next wake-up, even when already due,
 * so a callback that re-arms itself at "now" cannot hold the loop.
 */
#include "runner/ptimer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/xalloc.h"

#define NOT_PENDING SIZE_MAX

struct ptimer {
    struct ptimer_set *set;
    ptimer_fn fn;
    void *arg;
    mono_ns due;
    uint64_t seq; /* when it was armed, to tell timers armed during a dispatch */
    size_t slot;  /* its index in the heap, or NOT_PENDING */
};

struct ptimer_set {
    int fd;
    struct event *ev;
    struct ptimer **heap;
    size_t n, cap;
    mono_ns armed; /* the timerfd's due time; 0 = not armed */
    unsigned long arms;
    uint64_t seq;     /* arms so far */
    bool dispatching; /* arming waits for the dispatch's end */
};

/* ---- the heap ------------------------------------------------------------------------ */

static bool earlier(const struct ptimer *a, const struct ptimer *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(struct ptimer_set *s, size_t i, struct ptimer *t)
{
    s->heap[i] = t;
    t->slot = i;
}

static void sift_up(struct ptimer_set *s, size_t i)
{
    struct ptimer *t = s->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(t, s->heap[parent]))
            break;
        place(s, i, s->heap[parent]);
        i = parent;
    }
    place(s, i, t);
}

static void sift_down(struct ptimer_set *s, size_t i)
{
    struct ptimer *t = s->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= s->n)
            break;
        if (child + 1 < s->n && earlier(s->heap[child + 1], s->heap[child]))
            child++;
        if (!earlier(s->heap[child], t))
            break;
        place(s, i, s->heap[child]);
        i = child;
    }
    place(s, i, t);
}

static void heap_remove(struct ptimer_set *s, struct ptimer *t)
{
    size_t i = t->slot;
    t->slot = NOT_PENDING;
    s->n--;
    if (i == s->n)
        return;
    place(s, i, s->heap[s->n]);
    if (i > 0 && earlier(s->heap[i], s->heap[(i - 1) / 2]))
        sift_up(s, i);
    else
        sift_down(s, i);
}

/* ---- the timerfd --------------------------------------------------------------------- */

static int arm_fd(struct ptimer_set *s, mono_ns due)
{
    if (due == 0)
        due = 1; /* 0 would disarm */
    struct itimerspec its = {.it_value = {(time_t)(due / NS_PER_S), (long)(due % NS_PER_S)}};
    if (timerfd_settime(s->fd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        return -errno;
    s->armed = due;
    s->arms++;
    return 0;
}

/* Arms the timerfd for the earliest timer unless something as early is armed already. */
static int arm_earliest(struct ptimer_set *s)
{
    if (s->dispatching || s->n == 0)
        return 0;
    mono_ns first = s->heap[0]->due;
    if (s->armed != 0 && s->armed <= first)
        return 0;
    return arm_fd(s, first);
}

static void on_fire(evutil_socket_t fd, short what, void *arg)
{
    struct ptimer_set *s = arg;
    (void)what;
    uint64_t expirations;
    ssize_t r = read(fd, &expirations, sizeof(expirations));
    (void)r; /* EAGAIN: a re-arm already cleared it; the heap says what is due either way */
    s->armed = 0;
    s->dispatching = true;
    uint64_t armed_before = s->seq;
    mono_ns now = clock_now();
    while (s->n > 0 && s->heap[0]->due <= now && s->heap[0]->seq <= armed_before) {
        struct ptimer *t = s->heap[0];
        heap_remove(s, t);
        t->fn(t->arg, now);
        now = clock_now();
    }
    s->dispatching = false;
    arm_earliest(s);
}

/* ---- public -------------------------------------------------------------------------- */

struct ptimer_set *ptimer_set_new(struct event_base *base)
{
    struct ptimer_set *s = xcalloc(1, sizeof(*s));
    s->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->fd < 0) {
        free(s);
        return NULL;
    }
    s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST, on_fire, s);
    if (!s->ev || event_add(s->ev, NULL) != 0) {
        int e = s->ev ? EIO : ENOMEM;
        ptimer_set_free(s);
        errno = e;
        return NULL;
    }
    return s;
}

void ptimer_set_free(struct ptimer_set *s)
{
    if (!s)
        return;
    if (s->ev)
        event_free(s->ev);
    close(s->fd);
    free(s->heap);
    free(s);
}

struct ptimer *ptimer_new(struct ptimer_set *s, ptimer_fn fn, void *arg)
{
    struct ptimer *t = xcalloc(1, sizeof(*t));
    t->set = s;
    t->fn = fn;
    t->arg = arg;
    t->slot = NOT_PENDING;
    return t;
}

void ptimer_free(struct ptimer *t)
{
    if (!t)
        return;
    ptimer_cancel(t);
    free(t);
}

int ptimer_at(struct ptimer *t, mono_ns due)
{
    struct ptimer_set *s = t->set;
    if (t->slot != NOT_PENDING)
        heap_remove(s, t);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->heap = xrealloc(s->heap, s->cap * sizeof(*s->heap));
    }
    t->due = due;
    t->seq = ++s->seq;
    place(s, s->n++, t);
    sift_up(s, t->slot);
    return arm_earliest(s);
}

int ptimer_after(struct ptimer *t, mono_ns wait)
{
    return ptimer_at(t, clock_now() + wait);
}

void ptimer_cancel(struct ptimer *t)
{
    if (t && t->slot != NOT_PENDING)
        heap_remove(t->set, t);
}

bool ptimer_pending(const struct ptimer *t)
{
    return t->slot != NOT_PENDING;
}

double ptimer_probe_tick(struct ptimer *t, mono_ns *due, mono_ns period, mono_ns now)
{
    double lag = now > *due ? ns_diff_s(*due, now) : 0;
    /* Expecting the next tick one period after this one ran would hide the lateness of the
     * tick after a late one. */
    *due += period;
    if (*due < now)
        *due = now + period;
    ptimer_at(t, *due);
    return lag;
}

unsigned long ptimer_set_arms(const struct ptimer_set *s)
{
    return s->arms;
}
