/*
 * load_coord.c - the coordinator of a distributed run: an HTTP/1.1 server (libevent's evhttp,
 * one thread) that the workers call, in this order (JSON bodies; docs/SCALE_LOAD.md):
 *
 *   POST /v1/join    {protocol, rank|null, host, pid, version, config_fingerprint}
 *                    -> {rank, n_workers, run_id, t0_ns, endpoint|null}
 *   GET  /v1/clock   -> {t_ns}: the coordinator's clock, stamped as the request is served
 *   POST /v1/ready   {rank, point}: held until every worker is ready for the point
 *                    -> {start_ns}, the point's start on the coordinator's clock
 *   POST /v1/result?rank=R&kind=telemetry|detailed&exit=E&name=FILE   (the file as body)
 *
 * Nothing here measures load. The start barrier is the one place where workers wait for each
 * other; it gives up (and every waiting worker stops, keeping its files) when a worker is
 * lost, finished early, or does not come within load_timeout_s() of the first. When every
 * worker has sent its records, or is lost, the loop ends and the records are merged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/exitcode.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/version.h"
#include "runner/results.h"
#include "scale/load_internal.h"

#define COORD_TICK_MS 200        /* deadlines, local workers' exits and signals are looked at */
#define COORD_WAITING_SAY_S 30.0 /* "waiting for workers" this often while they join */
#define COORD_FLUSH_MS 200       /* the last replies' time to leave before the loop ends */

struct coord_worker {
    bool joined, done, lost;
    char host[256];
    long long pid;
    int child;                   /* --workers: the local process, 0 = none */
    struct evhttp_request *held; /* waiting at the start barrier */
    size_t point;                /* the point it is ready for */
    int exit_code;               /* as it said with its records */
    char *detailed, *telemetry;  /* its files here */
};

struct load_coord {
    struct load_coord_options o;
    struct event_base *base;
    struct evhttp *http;
    struct event *tick, *sigint, *sigterm;
    char *url;
    char fingerprint[17], run_id[17];
    mono_ns t0;
    struct coord_worker *w;
    int joined;
    int at_barrier;
    size_t barrier_point;
    mono_ns deadline; /* of the wait in course (barrier or results), 0 = none */
    mono_ns said_waiting;
    bool aborted;
    char why[512];
    int interrupts;
    struct results_writer *rw; /* the merged files' names, reserved at the start */
    char *workers_dir;
};

/* ---- replies ---- */

static void reply_json(struct evhttp_request *req, int code, json_t *body)
{
    struct evbuffer *b = evbuffer_new();
    char *text = json_dumps(body, JSON_COMPACT);
    evbuffer_add(b, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Refused", b);
    evbuffer_free(b);
    free(text);
    json_decref(body);
}

static void reply_error(struct evhttp_request *req, int code, const char *why)
{
    reply_json(req, code, json_pack("{s:s}", "error", why));
}

/* The request's body as JSON (NULL: none or not JSON). */
static json_t *body_json(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (!len || len > LOAD_BODY_MAX)
        return NULL;
    return json_loadb((const char *)evbuffer_pullup(in, (ssize_t)len), len, 0, NULL);
}

/* ---- the start barrier ---- */

static void on_held_close(struct evhttp_connection *evcon, void *arg);

/* Takes worker k's held request back from the connection's watch. */
static struct evhttp_request *unhold(struct coord_worker *k)
{
    struct evhttp_request *req = k->held;
    k->held = NULL;
    if (req && evhttp_request_get_connection(req))
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
    return req;
}

/* Gives up the run's remaining points: every waiting worker is told why and stops. */
static void coord_abort(struct load_coord *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void coord_abort(struct load_coord *c, const char *fmt, ...)
{
    if (!c->aborted) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof(c->why), fmt, ap);
        va_end(ap);
        c->aborted = true;
        log_error("coordinator: %s; the workers stop and keep what they measured", c->why);
    }
    for (int i = 0; i < c->o.n; i++) {
        struct evhttp_request *req = unhold(&c->w[i]);
        if (req)
            reply_error(req, 409, c->why);
    }
    c->at_barrier = 0;
    c->deadline = 0;
}

static void barrier_release(struct load_coord *c)
{
    int64_t lead = LOAD_START_LEAD_NS;
    mono_ns start = clock_now() + (mono_ns)lead;
    for (int i = 0; i < c->o.n; i++) {
        struct evhttp_request *req = unhold(&c->w[i]);
        if (req)
            reply_json(req, 200, json_pack("{s:I}", "start_ns", (json_int_t)start));
    }
    c->at_barrier = 0;
    c->deadline = 0;
    log_info("coordinator: point %zu starts on %d workers", c->barrier_point + 1, c->o.n);
}

static void on_held_close(struct evhttp_connection *evcon, void *arg)
{
    struct load_coord *c = arg;
    for (int i = 0; i < c->o.n; i++) {
        struct coord_worker *k = &c->w[i];
        if (k->held && evhttp_request_get_connection(k->held) == evcon) {
            k->held = NULL; /* libevent frees the request with its connection */
            k->lost = true;
            c->at_barrier--;
            coord_abort(c, "rank %d went away while waiting for point %zu", i, k->point + 1);
        }
    }
}

/* A worker that will never come to the barrier (done or lost) ends it. */
static void barrier_check(struct load_coord *c)
{
    if (c->at_barrier == 0)
        return;
    for (int i = 0; i < c->o.n; i++)
        if (c->w[i].done || c->w[i].lost)
            coord_abort(c, "rank %d %s before point %zu", i,
                        c->w[i].done ? "finished its run" : "was lost", c->barrier_point + 1);
}

static void on_ready(struct load_coord *c, struct evhttp_request *req, json_t *body)
{
    json_int_t rank, point;
    if (json_unpack(body, "{s:I, s:I}", "rank", &rank, "point", &point) || rank < 0 ||
        rank >= c->o.n || !c->w[rank].joined || point < 0) {
        reply_error(req, 400, "a ready call needs the rank of a joined worker and a point");
        return;
    }
    struct coord_worker *k = &c->w[rank];
    if (c->aborted || k->held) {
        reply_error(req, 409, c->aborted ? c->why : "this rank is already waiting");
        return;
    }
    if (c->at_barrier > 0 && (size_t)point != c->barrier_point) {
        coord_abort(c,
                    "the workers disagree on the points: rank %lld is at point %lld, the "
                    "others at point %zu (do they use the same server and config?)",
                    (long long)rank, (long long)point + 1, c->barrier_point + 1);
        reply_error(req, 409, c->why);
        return;
    }
    if (c->at_barrier == 0) {
        c->barrier_point = (size_t)point;
        c->deadline = clock_now() + s_to_ns(load_timeout_s());
    }
    k->held = req;
    k->point = (size_t)point;
    c->at_barrier++;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    evhttp_connection_set_timeout(evcon, (int)load_timeout_s() + 120);
    evhttp_connection_set_closecb(evcon, on_held_close, c);
    barrier_check(c);
    if (!c->aborted && c->at_barrier == c->o.n)
        barrier_release(c);
}

/* ---- joining ---- */

static int free_rank(const struct load_coord *c)
{
    for (int i = 0; i < c->o.n; i++)
        if (!c->w[i].joined)
            return i;
    return -1;
}

static void on_join(struct load_coord *c, struct evhttp_request *req, json_t *body)
{
    json_int_t proto = 0, pid = 0;
    json_t *rank_j = NULL;
    const char *host = "", *version = "", *fp = "";
    char why[sizeof(c->why) + 64];
    if (json_unpack(body, "{s:I, s:o, s:s, s:I, s:s, s:s}", "protocol", &proto, "rank", &rank_j,
                    "host", &host, "pid", &pid, "version", &version, "config_fingerprint", &fp) ||
        proto != LOAD_PROTOCOL) {
        reply_error(req, 400, "not a testbench worker of this protocol version");
        return;
    }
    int rank = json_is_integer(rank_j) ? (int)json_integer_value(rank_j) : free_rank(c);
    if (c->aborted)
        snprintf(why, sizeof(why), "the run was given up: %s", c->why);
    else if (strcmp(version, TB_VERSION) != 0)
        snprintf(why, sizeof(why),
                 "the worker is testbench %s, the coordinator %s: use one "
                 "version everywhere",
                 version, TB_VERSION);
    else if (strcmp(fp, c->fingerprint) != 0)
        snprintf(why, sizeof(why),
                 "the worker's config differs from the coordinator's (requests, "
                 "tenants, sweep, seed or SLOs): give every worker the same config");
    else if (rank < 0 || rank >= c->o.n)
        snprintf(why, sizeof(why),
                 rank < 0 ? "all %d ranks have joined" : "rank %d is not in 0..%d",
                 rank < 0 ? c->o.n : rank, c->o.n - 1);
    else if (c->w[rank].joined)
        snprintf(why, sizeof(why), "rank %d has joined already", rank);
    else
        why[0] = '\0';
    if (why[0]) {
        log_error("coordinator: a worker on %s (pid %lld) is refused: %s", host, (long long)pid,
                  why);
        reply_error(req, 409, why);
        return;
    }
    struct coord_worker *k = &c->w[rank];
    k->joined = true;
    snprintf(k->host, sizeof(k->host), "%s", host);
    k->pid = pid;
    c->joined++;
    log_info("coordinator: rank %d joined from %s (pid %lld), %d of %d", rank, host, (long long)pid,
             c->joined, c->o.n);
    reply_json(req, 200,
               json_pack("{s:i, s:i, s:s, s:I, s:s?}", "rank", rank, "n_workers", c->o.n, "run_id",
                         c->run_id, "t0_ns", (json_int_t)c->t0, "endpoint", c->o.endpoint));
}

/* ---- results ---- */

/* A file name a worker may give: letters, digits, '.', '_' and '-', ending as its kind. */
static bool name_ok(const char *name, const char *kind)
{
    if (!name || !*name || name[0] == '.' || strlen(name) > 200)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    char *suffix = xasprintf("_%s.json", kind);
    size_t n = strlen(name), s = strlen(suffix);
    bool ok = n > s && strcmp(name + n - s, suffix) == 0;
    free(suffix);
    return ok;
}

/* Writes in to path through path.tmp, fsync and rename. 0 or -errno. */
static int store_file(const char *path, struct evbuffer *in)
{
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : 0;
    while (rc == 0 && evbuffer_get_length(in) > 0)
        if (evbuffer_write(in, fd) < 0)
            rc = -errno;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* Ends the loop once the replies just made have left (a reply is written by the loop). */
static void coord_finish(struct load_coord *c)
{
    struct timeval flush = {0, COORD_FLUSH_MS * 1000};
    event_base_loopexit(c->base, &flush);
}

static bool all_settled(const struct load_coord *c)
{
    for (int i = 0; i < c->o.n; i++)
        if (!c->w[i].done && !c->w[i].lost)
            return false;
    return true;
}

/* A small non-negative number from a query string, else dflt. */
static int query_int(const char *s, int dflt)
{
    char *end;
    long v = s && *s ? strtol(s, &end, 10) : -1;
    return v >= 0 && v < 100000 && *end == '\0' ? (int)v : dflt;
}

static void on_result(struct load_coord *c, struct evhttp_request *req)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    evhttp_parse_query_str(evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)), &q);
    const char *rs = evhttp_find_header(&q, "rank"), *kind = evhttp_find_header(&q, "kind");
    const char *name = evhttp_find_header(&q, "name"), *ex = evhttp_find_header(&q, "exit");
    int rank = query_int(rs, -1);
    bool detailed = kind && strcmp(kind, "detailed") == 0;
    if (rank < 0 || rank >= c->o.n || !c->w[rank].joined || !kind ||
        (!detailed && strcmp(kind, "telemetry") != 0) || !name_ok(name, kind)) {
        reply_error(req, 400,
                    "a result needs a joined rank, kind detailed or telemetry, and a "
                    "plain file name of that kind");
        evhttp_clear_headers(&q);
        return;
    }
    struct coord_worker *k = &c->w[rank];
    char *path = xasprintf("%s/%s", c->workers_dir, name);
    int rc = store_file(path, evhttp_request_get_input_buffer(req));
    if (rc) {
        log_error("coordinator: cannot store rank %d's %s: %s", rank, path, strerror(-rc));
        reply_error(req, 500, "the coordinator could not store the file");
        free(path);
        evhttp_clear_headers(&q);
        return;
    }
    char **slot = detailed ? &k->detailed : &k->telemetry;
    free(*slot);
    *slot = path;
    reply_json(req, 200, json_pack("{s:s}", "stored", name));
    if (detailed) {
        k->done = true;
        k->exit_code = query_int(ex, TB_EXIT_RUNTIME);
        log_info("coordinator: rank %d is done (exit %d)", rank, k->exit_code);
        barrier_check(c);
        if (!c->deadline)
            c->deadline = clock_now() + s_to_ns(load_timeout_s()); /* the others' results */
        if (all_settled(c))
            coord_finish(c);
    }
    evhttp_clear_headers(&q);
}

/* ---- serving ---- */

static void on_request(struct evhttp_request *req, void *arg)
{
    struct load_coord *c = arg;
    mono_ns now = clock_now(); /* a ping's stamp: before anything else */
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!path)
        path = "";
    if (m == EVHTTP_REQ_GET && strcmp(path, "/v1/clock") == 0) {
        reply_json(req, 200, json_pack("{s:I}", "t_ns", (json_int_t)now));
        return;
    }
    if (m == EVHTTP_REQ_POST && strcmp(path, "/v1/result") == 0) {
        on_result(c, req);
        return;
    }
    json_t *body = m == EVHTTP_REQ_POST ? body_json(req) : NULL;
    if (body && strcmp(path, "/v1/join") == 0)
        on_join(c, req, body);
    else if (body && strcmp(path, "/v1/ready") == 0)
        on_ready(c, req, body);
    else
        reply_error(req, 404, "not a testbench coordinator call");
    json_decref(body);
}

/* Local workers that ended without their records are lost (a crash, a config error). */
static void reap_children(struct load_coord *c)
{
    for (int i = 0; i < c->o.n; i++) {
        struct coord_worker *k = &c->w[i];
        int st;
        if (k->child <= 0 || waitpid(k->child, &st, WNOHANG) != k->child)
            continue;
        k->child = 0;
        if (k->done)
            continue;
        k->lost = true;
        k->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        log_error("coordinator: worker %d ended (%s %d) without sending its results", i,
                  WIFEXITED(st) ? "exit" : "signal",
                  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        barrier_check(c);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct load_coord *c = arg;
    (void)fd;
    (void)what;
    mono_ns now = clock_now();
    reap_children(c);
    if (c->deadline && now > c->deadline) {
        c->deadline = 0;
        if (c->at_barrier > 0) {
            coord_abort(c, "only %d of %d workers were ready for point %zu after %.0f s",
                        c->at_barrier, c->o.n, c->barrier_point + 1, load_timeout_s());
        } else {
            for (int i = 0; i < c->o.n; i++)
                if (!c->w[i].done && !c->w[i].lost) {
                    c->w[i].lost = true;
                    log_error("coordinator: rank %d sent no results %.0f s after the first "
                              "worker's; merging without it",
                              i, load_timeout_s());
                }
        }
    }
    if (c->joined < c->o.n && !c->aborted &&
        ns_diff_s(c->said_waiting, now) >= COORD_WAITING_SAY_S) {
        log_info("coordinator: waiting for workers at %s: %d of %d joined", c->url, c->joined,
                 c->o.n);
        c->said_waiting = now;
    }
    if (all_settled(c))
        coord_finish(c);
}

/* Ctrl-C: the run is given up and the local workers are told; a second one stops waiting
 * for their records. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct load_coord *c = arg;
    (void)what;
    c->interrupts++;
    coord_abort(c, "the coordinator was interrupted");
    for (int i = 0; i < c->o.n; i++)
        if (c->w[i].child > 0)
            kill(c->w[i].child, (int)sig);
    if (c->interrupts > 1 || c->joined == 0)
        event_base_loopbreak(c->base);
    else
        c->deadline = clock_now() + s_to_ns(load_timeout_s());
}

/* ---- set-up ---- */

static int split_bind(const char *bind, char *host, size_t hl, int *port)
{
    const char *colon = bind[0] == '[' ? strstr(bind, "]:") : strrchr(bind, ':');
    if (!colon)
        return -EINVAL;
    const char *h = bind[0] == '[' ? bind + 1 : bind;
    size_t n = (size_t)(colon - h);
    const char *ps = bind[0] == '[' ? colon + 2 : colon + 1;
    char *end;
    long p = strtol(ps, &end, 10);
    if (n == 0 || n >= hl || *end || p < 0 || p > 65535)
        return -EINVAL;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (int)p;
    return 0;
}

static int coord_listen(struct load_coord *c)
{
    char host[256];
    int port;
    if (split_bind(c->o.bind, host, sizeof(host), &port)) {
        log_error("run: --coordinator expects HOST:PORT (e.g. 127.0.0.1:7070, or port 0 for any "
                  "free one), got '%s'",
                  c->o.bind);
        return TB_EXIT_USAGE;
    }
    struct evhttp_bound_socket *bs =
        evhttp_bind_socket_with_handle(c->http, host, (ev_uint16_t)port);
    if (!bs) {
        log_error("coordinator: cannot listen on %s (in use, or not an address of this machine)",
                  c->o.bind);
        return TB_EXIT_RUNTIME;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    char shown[256];
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        load_hostname(shown, sizeof(shown));
    else
        snprintf(shown, sizeof(shown), "%s", host);
    c->url = strchr(shown, ':') ? xasprintf("http://[%s]:%d", shown, port)
                                : xasprintf("http://%s:%d", shown, port);
    return TB_EXIT_OK;
}

/* Reserves the merged files' names; the workers' files go to a folder named after them. */
static int coord_files(struct load_coord *c)
{
    char err[1024];
    if (results_open(&c->rw, c->o.out_dir, c->o.prefix, err, sizeof(err))) {
        log_error("%s", err);
        return TB_EXIT_RUNTIME;
    }
    const char *d = results_path(c->rw, "detailed");
    size_t n = strlen(d) - strlen("_detailed.json");
    c->workers_dir = xasprintf("%.*s_workers", (int)n, d);
    int rc = fs_mkdir_p(c->workers_dir);
    if (rc) {
        log_error("coordinator: cannot create %s: %s", c->workers_dir, strerror(-rc));
        return TB_EXIT_RUNTIME;
    }
    return TB_EXIT_OK;
}

int load_coord_new(struct load_coord **out, const struct load_coord_options *o)
{
    struct load_coord *c = xcalloc(1, sizeof(*c));
    c->o = *o;
    c->w = xcalloc((size_t)o->n, sizeof(*c->w));
    c->t0 = clock_now();
    load_config_fingerprint(o->cfg, c->fingerprint);
    char seed[128];
    load_hostname(seed, sizeof(seed));
    snprintf(c->run_id, sizeof(c->run_id), "%016llx",
             (unsigned long long)hash64(seed, (unsigned long)strlen(seed),
                                        c->t0 ^ ((uint64_t)getpid() << 32)));
    c->base = event_base_new();
    c->http = c->base ? evhttp_new(c->base) : NULL;
    int ec = c->http ? TB_EXIT_OK : TB_EXIT_RUNTIME;
    if (ec == TB_EXIT_OK) {
        evhttp_set_max_body_size(c->http, (ev_ssize_t)LOAD_RESULT_MAX);
        evhttp_set_allowed_methods(c->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
        evhttp_set_gencb(c->http, on_request, c);
        ec = coord_listen(c);
    }
    if (ec == TB_EXIT_OK)
        ec = coord_files(c);
    if (ec != TB_EXIT_OK) {
        load_coord_free(c);
        return ec;
    }
    struct timeval tick = {0, COORD_TICK_MS * 1000};
    c->tick = event_new(c->base, -1, EV_PERSIST, on_tick, c);
    event_add(c->tick, &tick);
    c->sigint = evsignal_new(c->base, SIGINT, on_signal, c);
    c->sigterm = evsignal_new(c->base, SIGTERM, on_signal, c);
    event_add(c->sigint, NULL);
    event_add(c->sigterm, NULL);
    c->said_waiting = c->t0;
    *out = c;
    return TB_EXIT_OK;
}

const char *load_coord_url(const struct load_coord *c)
{
    return c->url;
}

const char *load_coord_workers_dir(const struct load_coord *c)
{
    return c->workers_dir;
}

void load_coord_add_child(struct load_coord *c, int rank, int pid)
{
    if (rank >= 0 && rank < c->o.n)
        c->w[rank].child = pid;
}

/* The run's exit code: 130 when anyone was interrupted, else the first failure among the
 * merge's and the workers' (a lost worker's is its exit status, else 1). */
static int coord_exit_code(const struct load_coord *c, int merged)
{
    int ec = merged;
    bool interrupted = c->interrupts > 0;
    for (int i = 0; i < c->o.n; i++) {
        const struct coord_worker *k = &c->w[i];
        int w = k->lost && k->exit_code == TB_EXIT_OK ? TB_EXIT_RUNTIME : k->exit_code;
        if (w == TB_EXIT_INTERRUPTED)
            interrupted = true;
        else if (w != TB_EXIT_OK && ec == TB_EXIT_OK)
            ec = w;
    }
    return interrupted ? TB_EXIT_INTERRUPTED : ec;
}

int load_coord_run(struct load_coord *c)
{
    log_info("coordinator listening on %s for %d workers (run %s)", c->url, c->o.n, c->run_id);
    event_base_dispatch(c->base);
    if (c->at_barrier > 0) /* a second Ctrl-C: anyone still waiting is told */
        coord_abort(c, "the coordinator stopped");
    const char **paths = xcalloc((size_t)c->o.n, sizeof(*paths));
    size_t n = 0;
    for (int i = 0; i < c->o.n; i++)
        if (c->w[i].detailed)
            paths[n++] = c->w[i].detailed;
    int merged = TB_EXIT_RUNTIME;
    if (n == 0) {
        log_error("coordinator: no worker sent results; nothing to merge");
    } else {
        char *path = NULL;
        merged = load_merge_into(c->rw, paths, n, c->o.quiet, &path);
        if (path && !c->o.quiet)
            printf("\nmerged results of %zu workers:\n  %s\n  %s\n  %s\nworkers' files: %s\n", n,
                   results_path(c->rw, "detailed"), results_path(c->rw, "summary"),
                   results_path(c->rw, "telemetry"), c->workers_dir);
        free(path);
    }
    free(paths);
    return coord_exit_code(c, merged);
}

void load_coord_free(struct load_coord *c)
{
    if (!c)
        return;
    if (c->tick)
        event_free(c->tick);
    if (c->sigint)
        event_free(c->sigint);
    if (c->sigterm)
        event_free(c->sigterm);
    if (c->http)
        evhttp_free(c->http);
    if (c->base)
        event_base_free(c->base);
    for (int i = 0; i < c->o.n; i++) {
        free(c->w[i].detailed);
        free(c->w[i].telemetry);
    }
    free(c->w);
    free(c->url);
    free(c->workers_dir);
    results_free(c->rw);
    free(c);
}
