/*
 * listen.c - the simulator's listening socket (sim_internal.h): bound with a deep backlog
 * (evhttp_bind_socket's is 128) and TCP_NODELAY, the port read back; and its accept()
 * failures. accept() failing for want of descriptors (EMFILE, ENFILE) or memory would spin:
 * the listening socket stays readable, and libevent's default is to log each failure and try
 * again at once. Instead the listener is disabled for a pause that doubles (10 ms .. 1 s)
 * while the failures go on, and one warning at most every ACCEPT_LOG_EVERY_S counts them.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "core/clock.h"
#include "core/log.h"
#include "sim/sim_internal.h"

#define LISTEN_BACKLOG 8192
#define ACCEPT_PAUSE_MIN_MS 10
#define ACCEPT_PAUSE_MAX_MS 1000
#define ACCEPT_LOG_EVERY_S 10

/* The listener's error callback gets the listener's user pointer, which evhttp_bind_listener
 * sets to the struct evhttp (and libevent 2.1 has no getter for evhttp's own callback
 * argument), so the server is found here by its evhttp. Servers are few (tests run several at
 * once, each on its own thread), registered at bind and removed before evhttp_free. */
static pthread_mutex_t owners_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sim_server *owners;

static void owners_add(struct sim_server *srv)
{
    pthread_mutex_lock(&owners_lock);
    srv->next_owner = owners;
    owners = srv;
    pthread_mutex_unlock(&owners_lock);
}

void sim_listen_forget(struct sim_server *srv)
{
    pthread_mutex_lock(&owners_lock);
    for (struct sim_server **p = &owners; *p; p = &(*p)->next_owner)
        if (*p == srv) {
            *p = srv->next_owner;
            break;
        }
    pthread_mutex_unlock(&owners_lock);
}

static struct sim_server *owners_find(const struct evhttp *http)
{
    pthread_mutex_lock(&owners_lock);
    struct sim_server *srv = owners;
    while (srv && srv->http != http)
        srv = srv->next_owner;
    pthread_mutex_unlock(&owners_lock);
    return srv;
}

void sim_on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct sim_server *srv = arg;
    (void)fd;
    (void)what;
    if (srv->listener)
        evconnlistener_enable(srv->listener);
}

/* libevent calls this for accept() errors other than EAGAIN/EINTR/ECONNABORTED. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct sim_server *srv = owners_find(arg);
    if (!srv) /* cannot happen: registered before the listener is enabled */
        return;
    mono_ns now = clock_now();
    /* Failures in a row (the last one under two pauses ago) double the pause. */
    if (srv->accept_pause_ms &&
        now - srv->accept_last_fail < 2 * (mono_ns)srv->accept_pause_ms * NS_PER_MS)
        srv->accept_pause_ms = srv->accept_pause_ms * 2 > ACCEPT_PAUSE_MAX_MS
                                   ? ACCEPT_PAUSE_MAX_MS
                                   : srv->accept_pause_ms * 2;
    else
        srv->accept_pause_ms = ACCEPT_PAUSE_MIN_MS;
    srv->accept_last_fail = now;
    srv->accept_failures++;
    if (!srv->accept_last_log || now - srv->accept_last_log >= ACCEPT_LOG_EVERY_S * NS_PER_S) {
        log_warn("sim: accept() failed %llu time(s): %s; new connections wait (up to %d ms "
                 "between tries)%s",
                 (unsigned long long)srv->accept_failures, strerror(err), ACCEPT_PAUSE_MAX_MS,
                 err == EMFILE || err == ENFILE ? "; raise the open-files limit (ulimit -n) or "
                                                  "lower the client's concurrency"
                                                : "");
        srv->accept_last_log = now;
        srv->accept_failures = 0;
    }
    evconnlistener_disable(l);
    struct timeval tv = {srv->accept_pause_ms / 1000, (srv->accept_pause_ms % 1000) * 1000};
    evtimer_add(srv->accept_retry, &tv);
}

/* Binds host:port with a deep backlog (evhttp_bind_socket's is 128); reads the port back. */
int sim_listen_bind(struct sim_server *srv, const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char service[16];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof(service), "%d", port);
    int gai = getaddrinfo(host, service, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(gai));
        return -EINVAL;
    }
    struct evconnlistener *l = NULL;
    int saved = 0;
    for (struct addrinfo *p = ai; p && !l; p = p->ai_next) {
        l = evconnlistener_new_bind(srv->base, NULL, NULL,
                                    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
                                        LEV_OPT_CLOSE_ON_EXEC,
                                    LISTEN_BACKLOG, p->ai_addr, (int)p->ai_addrlen);
        if (!l)
            saved = errno;
    }
    freeaddrinfo(ai);
    if (!l) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(saved));
        return saved ? -saved : -EADDRNOTAVAIL;
    }
    if (!evhttp_bind_listener(srv->http, l)) {
        evconnlistener_free(l);
        snprintf(err, errlen, "evhttp_bind_listener failed");
        return -ENOMEM;
    }
    srv->listener = l; /* evhttp owns it and frees it with the evhttp */
    owners_add(srv);
    evconnlistener_set_error_cb(l, on_accept_error);
    /* No Nagle: a token chunk must leave at once, as vLLM's (asyncio's) sockets do. Without
     * it, on a reused keep-alive connection the first chunks of a response wait for the
     * client's delayed ACK (~30-40 ms). Accepted sockets inherit this from the listener. */
    int one = 1;
    setsockopt(evconnlistener_get_fd(l), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl) == 0)
        srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}
