/*
 * client_workers.c - the client's worker threads (client_options.threads > 1): each runs the
 * loop of client.c on a base and multi handle of its own; the owner hands transfers over
 * through a mutex-guarded inbox and an eventfd, and gets them back the same way, so done
 * callbacks run on the owner's loop. Each worker probes its own loop lag with a 1 ms
 * heartbeat (client_take_loop_lag).
 */
#include "runner/client_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CLIENT_HEARTBEAT_NS (1 * NS_PER_MS) /* a worker's loop-lag probe, as point.c's own */

/* Cancels every transfer this worker runs (worker thread). */
static void worker_cancel(struct worker *w)
{
    while (w->mine) {
        struct transfer *t = w->mine;
        long http = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &http);
        t->rec->http_status = http;
        curl_multi_remove_handle(w->multi, t->easy);
        req_record_fail(t->rec, REQ_CANCELLED, "cancelled");
        client_transfer_over(w, t);
    }
}

/* The owner posted transfers or a command (worker thread). */
static void on_worker_wake(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)what;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r; /* nonblocking: nothing to read means another wake-up already took it */
    pthread_mutex_lock(&w->lock);
    struct transfer *in = w->inbox;
    w->inbox = NULL;
    bool cancel = w->cancel, stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    /* The inbox is newest first; start in the order they were handed over. */
    struct transfer *rev = NULL;
    while (in) {
        struct transfer *t = in;
        in = t->wnext;
        t->wnext = rev;
        rev = t;
    }
    while (rev) {
        struct transfer *t = rev;
        rev = t->wnext;
        t->wprev = NULL;
        t->wnext = w->mine;
        if (w->mine)
            w->mine->wprev = t;
        w->mine = t;
        if (curl_multi_add_handle(w->multi, t->easy) != CURLM_OK) {
            req_record_fail(t->rec, REQ_BAD_RESPONSE, "client_start: %s", strerror(EIO));
            t->failed = true;
            client_transfer_over(w, t);
        }
    }
    if (cancel) {
        worker_cancel(w);
        pthread_mutex_lock(&w->lock);
        w->cancel = false;
        w->cancel_done = true;
        pthread_cond_signal(&w->acked);
        pthread_mutex_unlock(&w->lock);
    }
    if (stop)
        event_base_loopbreak(w->base);
}

/* The worker's own loop-lag probe, as point.c's heartbeat is the owner's. */
static void on_worker_heartbeat(void *arg, mono_ns now)
{
    struct worker *w = arg;
    double lag = ptimer_probe_tick(w->heartbeat, &w->hb_expected, CLIENT_HEARTBEAT_NS, now);
    pthread_mutex_lock(&w->lock);
    dvec_push(&w->lag, lag);
    pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->turns = true;
    while (!event_base_got_break(w->base)) {
        event_base_loop(w->base, EVLOOP_ONCE);
        w->turn_t0 = 0;
    }
    return NULL;
}

static void post_wake(int fd)
{
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof(one));
    (void)n; /* fails only when the counter would overflow: the reader is awake anyway */
}

/* A worker with its own base and thread. 0 or -errno. */
int client_worker_start(struct client *c, struct worker *w)
{
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->acked, NULL);
    dvec_init(&w->lag);
    w->inited = true;
    struct event_config *ec = event_config_new();
    if (!ec)
        return -ENOMEM;
    /* Only its own thread touches this base (the owner talks through the eventfd): no locks.
     * Its precise timers are ptimer's, not libevent's (ptimer.h says why). */
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    struct event_base *base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!base || client_worker_setup(c, w, base))
        return -ENOMEM;
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0)
        return -errno;
    w->wake_ev = event_new(base, w->wake_fd, EV_READ | EV_PERSIST, on_worker_wake, w);
    w->heartbeat = ptimer_new(w->timers, on_worker_heartbeat, w);
    if (!w->wake_ev || event_add(w->wake_ev, NULL))
        return -ENOMEM;
    w->hb_expected = clock_now() + CLIENT_HEARTBEAT_NS;
    ptimer_at(w->heartbeat, w->hb_expected);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc)
        return -rc;
    w->started = true;
    return 0;
}

/* Stops the worker's thread and frees what it held (owner). */
void client_worker_stop(struct worker *w)
{
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_mutex_unlock(&w->lock);
        post_wake(w->wake_fd);
        pthread_join(w->thread, NULL);
        w->started = false;
    }
    client_worker_release(w);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    if (w->base)
        event_base_free(w->base);
    if (w->inited) {
        dvec_release(&w->lag);
        pthread_cond_destroy(&w->acked);
        pthread_mutex_destroy(&w->lock);
    }
}

/* Runs the done callbacks of transfers the workers finished (owner). */
static void deliver_done(struct client *c)
{
    pthread_mutex_lock(&c->done_lock);
    struct transfer *t = c->done_head;
    c->done_head = c->done_tail = NULL;
    pthread_mutex_unlock(&c->done_lock);
    while (t) {
        struct transfer *next = t->wnext;
        t->wnext = NULL;
        t->w->load--;
        client_transfer_hand_back(t);
        t = next;
    }
}

void client_on_done_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r;
    deliver_done(arg);
}

/* Hands t to the worker with the fewest transfers (owner). Its thread starts it and, when it
 * ends, hands it back through deliver_done: done is never called from inside client_start. */
void client_worker_post(struct client *c, struct transfer *t)
{
    struct worker *w = &c->workers[0];
    for (size_t i = 1; i < c->n_workers; i++)
        if (c->workers[i].load < w->load)
            w = &c->workers[i];
    t->w = w;
    w->load++;
    pthread_mutex_lock(&w->lock);
    t->wnext = w->inbox;
    w->inbox = t;
    pthread_mutex_unlock(&w->lock);
    post_wake(w->wake_fd);
}

/* Threaded: each worker cancels its own and acknowledges; then every record that came back
 * (cancelled, or finished just before) gets its done callback here. */
void client_cancel_workers(struct client *c)
{
    for (size_t i = 0; i < c->n_workers; i++) {
        struct worker *w = &c->workers[i];
        if (!w->started)
            continue;
        pthread_mutex_lock(&w->lock);
        w->cancel = true;
        w->cancel_done = false;
        pthread_mutex_unlock(&w->lock);
        post_wake(w->wake_fd);
    }
    for (size_t i = 0; i < c->n_workers; i++) {
        struct worker *w = &c->workers[i];
        if (!w->started)
            continue;
        pthread_mutex_lock(&w->lock);
        while (!w->cancel_done)
            pthread_cond_wait(&w->acked, &w->lock);
        pthread_mutex_unlock(&w->lock);
    }
    deliver_done(c);
}

void client_take_loop_lag(struct client *c, struct dvec *into)
{
    for (size_t i = 0; c && c->threaded && i < c->n_workers; i++) {
        struct worker *w = &c->workers[i];
        if (!w->inited)
            continue;
        pthread_mutex_lock(&w->lock);
        for (size_t k = 0; into && k < w->lag.n; k++)
            dvec_push(into, w->lag.v[k]);
        w->lag.n = 0;
        pthread_mutex_unlock(&w->lock);
    }
}
