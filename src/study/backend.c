/*
 * backend.c - starting, watching and stopping the server of one setup.
 *
 * A server is a child process in its own process group (so Ctrl-C in our terminal does not
 * reach it and one signal reaches everything it started), with PR_SET_PDEATHSIG so it does not
 * outlive us, its output appended to the setup's log. Readiness is polled over HTTP while
 * waitpid(WNOHANG) watches for an early exit; on failure the log, from where this start began
 * writing, says why (server_log.c). For docker the child is `docker run` in the foreground:
 * the client forwards our SIGTERM to the container (docker's --sig-proxy default) and
 * `docker rm -f` removes the container whatever state the client is in.
 */
#include "study/backend_internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/http.h"

#define POLL_INTERVAL_NS (250 * NS_PER_MS) /* between readiness rounds */
#define STOP_CHECK_NS (50 * NS_PER_MS)     /* how often *stop and children are looked at */
#define HTTP_TIMEOUT_MS 5000L              /* one readiness GET; a loading server is slow */
#define DOCKER_RM_TIMEOUT_S 120.0          /* `docker rm -f` on a busy daemon */
#define KILL_WAIT_S 10.0                   /* after SIGKILL: a process in D state may linger */
#define LOG_SCAN_MAX (4 * 1024 * 1024)     /* the end of the log that is read back */
#define LOG_TAIL_LINES 20

struct server_handle {
    enum backend_kind kind;
    pid_t pid;       /* group leader; -1 for none or once reaped */
    int log_fd;      /* O_APPEND, owned; -1 for none */
    char *docker;    /* resolved docker executable (docker only), owned */
    char *container; /* container name (docker only), owned */
    double grace_s;
    char endpoint[256];
};

const char *start_status_name(enum start_status s)
{
    static const char *const names[] = {"ok",      "oom",         "kv_too_small", "timeout",
                                        "crashed", "interrupted", "error"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "error";
}

pid_t server_handle_pid(const struct server_handle *h)
{
    return h ? h->pid : -1;
}

/* ---- small helpers --------------------------------------------------------------------- */

static bool stopped(volatile sig_atomic_t *stop)
{
    return stop && *stop;
}

/* write() all of it; the log is best effort, so errors are dropped. */
static void log_write(int fd, const char *text)
{
    size_t len = strlen(text);
    while (fd >= 0 && len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

/* "+ word word 'word with spaces'" and a newline, the way a shell trace shows a command. */
static void log_argv(int fd, char *const *argv)
{
    struct buf b;
    buf_init(&b, 256 * 1024);
    int rc = buf_puts(&b, "+");
    for (size_t i = 0; !rc && argv[i]; i++) {
        const char *w = argv[i];
        bool plain = *w && strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_-.,:/=@%+") == strlen(w);
        rc = buf_puts(&b, plain ? " " : " '");
        for (const char *c = w; !rc && *c; c++)
            rc = *c == '\'' && !plain ? buf_puts(&b, "'\\''") : buf_append(&b, c, 1);
        if (!rc && !plain)
            rc = buf_puts(&b, "'");
    }
    if (!rc)
        rc = buf_puts(&b, "\n");
    if (!rc)
        log_write(fd, b.data);
    buf_release(&b);
}

/* The executable for name (PATH lookup when it has no '/') into out. 0 or -ENOENT. */
static int find_exe(const char *name, char *out, size_t len)
{
    struct stat st;
    if (strchr(name, '/')) {
        if (stat(name, &st) || !S_ISREG(st.st_mode) || access(name, X_OK))
            return -ENOENT;
        snprintf(out, len, "%s", name);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        size_t n = strcspn(p, ":");
        int w = snprintf(out, len, "%.*s/%s", (int)(n ? n : 1), n ? p : ".", name);
        if (w > 0 && (size_t)w < len && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0)
            return 0;
        if (!p[n])
            break;
        p += n + 1;
    }
    return -ENOENT;
}

/* A loopback port nobody listens on now. The server binds it a moment later; another
 * process taking it in between makes the start fail, never measure the wrong server. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &alen))
        rc = -errno;
    close(fd);
    return rc ? rc : ntohs(a.sin_port);
}

/* 0 when nothing listens on 127.0.0.1:port, -EADDRINUSE when something does. */
static int port_is_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* TIME_WAIT is not "in use" */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = bind(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0;
    close(fd);
    return rc;
}

/* ---- child processes ------------------------------------------------------------------- */

/* Starts exe with argv in a new process group, stdin from /dev/null, stdout and stderr to
 * log_fd. 0 and *pid, or -errno. */
static int spawn(const char *exe, char *const *argv, int log_fd, pid_t *pid)
{
    char fail_msg[512];
    snprintf(fail_msg, sizeof(fail_msg), "testbench: cannot execute %s\n", exe);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0)
        return -errno;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        int rc = -errno;
        close(null_fd);
        return rc;
    }
    if (child == 0) {
        /* Async-signal-safe calls only: the parent may have threads. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) /* the parent died before prctl took effect */
            _exit(126);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigemptyset(&dfl.sa_mask);
        /* Ignored signals stay ignored across exec; a server must hear these. */
        int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD};
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            sigaction(sigs[i], &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
            _exit(126);
        /* Our sockets and files are none of the server's business. */
        if (close_range(3, ~0U, 0) != 0)
            for (int fd = 3; fd < 65536; fd++)
                close(fd);
        execv(exe, argv);
        ssize_t ignored = write(2, fail_msg, strlen(fail_msg));
        (void)ignored;
        _exit(127);
    }
    /* Also here, so the group exists before we signal it, whoever runs first. */
    setpgid(child, child);
    close(null_fd);
    *pid = child;
    return 0;
}

/* Waits for pid to exit until deadline (or *stop, when stop is given). true when it was
 * reaped; *status then holds its wait status. */
static bool wait_until(pid_t pid, mono_ns deadline, volatile sig_atomic_t *stop, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return true;
        if (r < 0 && errno == ECHILD) { /* reaped elsewhere (SIGCHLD ignored): it is gone */
            *status = 0;
            return true;
        }
        if (clock_now() >= deadline || stopped(stop))
            return false;
        clock_sleep_ns(10 * NS_PER_MS);
    }
}

/* Is a live process left in group pgid? kill(-pgid, 0) also reaches zombies, which wait for
 * whoever adopted them (init, which may reap late); those are dead, so /proc decides. */
static bool group_alive(pid_t pgid)
{
    if (pgid <= 0 || kill(-pgid, 0) != 0)
        return false;
    DIR *d = opendir("/proc");
    if (!d)
        return true;
    bool alive = false;
    struct dirent *e;
    while (!alive && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300], stat_line[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, stat_line, sizeof(stat_line) - 1);
        close(fd);
        if (n <= 0)
            continue;
        stat_line[n] = '\0';
        /* "pid (comm) state ppid pgrp ...": comm may hold anything, so parse after the last ')'. */
        const char *p = strrchr(stat_line, ')');
        char state;
        int ppid, pgrp;
        if (p && sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid &&
            state != 'Z' && state != 'X')
            alive = true;
    }
    closedir(d);
    return alive;
}

static void describe_status(int status, char *out, size_t len)
{
    if (WIFEXITED(status))
        snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, len, "ended (wait status %d)", status);
}

/* Ends process group pgid, whose leader pid (-1 when already reaped) is our child: SIGTERM,
 * up to grace_s for all of it to go, SIGKILL, reap. Writes how it ended to how. */
static void group_stop(pid_t pid, pid_t pgid, double grace_s, char *how, size_t howlen)
{
    int status = 0;
    bool reaped = pid < 0;
    snprintf(how, howlen, "already gone");
    if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
        reaped = true;
        describe_status(status, how, howlen);
    }
    if (!group_alive(pgid) && reaped)
        return;
    kill(-pgid, SIGTERM);
    mono_ns deadline = clock_now() + s_to_ns(grace_s);
    if (!reaped && wait_until(pid, deadline, NULL, &status)) {
        reaped = true;
        describe_status(status, how, howlen);
    }
    while (group_alive(pgid) && clock_now() < deadline) /* what the leader left behind */
        clock_sleep_ns(20 * NS_PER_MS);
    if (reaped && !group_alive(pgid))
        return;
    kill(-pgid, SIGKILL);
    if (!reaped && wait_until(pid, clock_now() + s_to_ns(KILL_WAIT_S), NULL, &status)) {
        reaped = true;
        describe_status(status, how, howlen);
    }
    if (!reaped)
        snprintf(how, howlen, "did not die within %.0f s of SIGKILL (pid %d)", KILL_WAIT_S,
                 (int)pid);
    else {
        size_t n = strlen(how);
        snprintf(how + n, howlen - n, " (SIGKILL after %.1f s grace)", grace_s);
    }
}

/* Runs `docker rm -f NAME` to completion (or until *stop, when stop is given), its output to
 * the log. Its failure ("No such container") is the usual case and is ignored. */
static void docker_rm(const char *docker, const char *name, int log_fd, volatile sig_atomic_t *stop)
{
    char *argv[] = {(char *)"docker", (char *)"rm", (char *)"-f", (char *)name, NULL};
    log_argv(log_fd, argv);
    pid_t pid;
    if (spawn(docker, argv, log_fd, &pid))
        return;
    char how[256];
    int status;
    if (wait_until(pid, clock_now() + s_to_ns(DOCKER_RM_TIMEOUT_S), stop, &status))
        return;
    group_stop(pid, pid, 1.0, how, sizeof(how));
    char line[400];
    snprintf(line, sizeof(line), "+ docker rm -f %s %s: %s\n", name,
             stopped(stop) ? "interrupted" : "took too long", how);
    log_write(log_fd, line);
}

/* ---- readiness ------------------------------------------------------------------------- */

static size_t discard_body(char *p, size_t size, size_t nmemb, void *userp)
{
    (void)p;
    (void)userp;
    return size * nmemb;
}

/* GET url; 0 with *status (the HTTP code, 0 when nothing answered), -EINTR when *stop was set
 * meanwhile. The multi interface lets *stop be looked at while a slow server thinks. */
static int http_status(const char *url, bool direct, volatile sig_atomic_t *stop, long timeout_ms,
                       long *status, char *what, size_t whatlen)
{
    *status = 0;
    snprintf(what, whatlen, "no answer");
    CURL *h = curl_easy_init();
    CURLM *m = curl_multi_init();
    int rc = 0;
    if (!h || !m) {
        snprintf(what, whatlen, "cannot set up an HTTP request");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    http_apply(h);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (direct) /* a server we started is local or on docker's network, never behind a proxy */
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 2000 ? timeout_ms : 2000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_multi_add_handle(m, h);
    int running = 1;
    while (running) {
        if (stopped(stop)) {
            rc = -EINTR;
            break;
        }
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        if (running)
            curl_multi_poll(m, NULL, 0, (int)(STOP_CHECK_NS / NS_PER_MS), NULL);
    }
    int left;
    CURLMsg *msg = curl_multi_info_read(m, &left);
    if (!rc && msg && msg->msg == CURLMSG_DONE) {
        if (msg->data.result == CURLE_OK) {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
            snprintf(what, whatlen, "HTTP %ld", *status);
        } else {
            snprintf(what, whatlen, "%s", curl_easy_strerror(msg->data.result));
        }
    }
    curl_multi_remove_handle(m, h);
out:
    curl_multi_cleanup(m);
    curl_easy_cleanup(h);
    return rc;
}

/* Sleeps ns, waking every STOP_CHECK_NS to look at *stop and at the child. */
static void nap(mono_ns ns, volatile sig_atomic_t *stop)
{
    mono_ns end = clock_now() + ns;
    while (!stopped(stop) && clock_now() < end)
        clock_sleep_ns(STOP_CHECK_NS);
}

/* Polls endpoint until /health and /v1/models answer 200. On return *status is START_OK,
 * START_TIMEOUT, START_INTERRUPTED or (child exited) START_CRASHED with *wstatus set; last
 * says what the last probe got. */
static void wait_ready(const char *endpoint, pid_t pid, double timeout_s,
                       volatile sig_atomic_t *stop, enum start_status *status, int *wstatus,
                       char *last, size_t lastlen)
{
    char health[300], models[300];
    snprintf(health, sizeof(health), "%s/health", endpoint);
    snprintf(models, sizeof(models), "%s/v1/models", endpoint);
    snprintf(last, lastlen, "no answer yet");
    mono_ns deadline = clock_now() + s_to_ns(timeout_s);
    for (;;) {
        if (stopped(stop)) {
            *status = START_INTERRUPTED;
            return;
        }
        pid_t r = pid > 0 ? waitpid(pid, wstatus, WNOHANG) : 0;
        if (r == pid || (r < 0 && errno == ECHILD)) { /* ECHILD: reaped elsewhere */
            if (r < 0)
                *wstatus = 0;
            *status = START_CRASHED;
            return;
        }
        mono_ns now = clock_now();
        if (now >= deadline) {
            *status = START_TIMEOUT;
            return;
        }
        long left_ms = (long)((deadline - now) / NS_PER_MS) + 1;
        long timeout_ms = left_ms < HTTP_TIMEOUT_MS ? left_ms : HTTP_TIMEOUT_MS;
        long code;
        char what[256];
        if (http_status(health, pid > 0, stop, timeout_ms, &code, what, sizeof(what)) == 0) {
            snprintf(last, lastlen, "GET /health: %s", what);
            if (code == 200 &&
                http_status(models, pid > 0, stop, timeout_ms, &code, what, sizeof(what)) == 0) {
                snprintf(last, lastlen, "GET /v1/models: %s", what);
                if (code == 200) {
                    *status = START_OK;
                    return;
                }
            }
        }
        nap(POLL_INTERVAL_NS, stop);
    }
}

/* ---- the log --------------------------------------------------------------------------- */

/* The log from byte 'from' to byte 'to' (-1: its end), at most the last LOG_SCAN_MAX bytes
 * of that, NUL-terminated; the caller frees it. An empty string when it cannot be read. */
static char *log_read(const char *path, off_t from, off_t to)
{
    struct buf b;
    buf_init(&b, LOG_SCAN_MAX);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        if (to < 0 || to > st.st_size)
            to = st.st_size;
        off_t start = to - from > LOG_SCAN_MAX ? to - LOG_SCAN_MAX : from;
        char chunk[16384];
        ssize_t n = 1;
        while (start < to && n > 0) {
            size_t want =
                (size_t)(to - start) < sizeof(chunk) ? (size_t)(to - start) : sizeof(chunk);
            n = pread(fd, chunk, want, start);
            if (n > 0 && buf_append(&b, chunk, (size_t)n))
                break;
            start += n > 0 ? n : 0;
        }
    }
    if (fd >= 0)
        close(fd);
    if (!b.data && buf_append(&b, "", 0))
        return xstrdup("");
    /* A NUL written by the server would hide what follows from the string scans. */
    for (size_t i = 0; i < b.len; i++)
        if (b.data[i] == '\0')
            b.data[i] = ' ';
    return b.data;
}

/* ---- start / stop ---------------------------------------------------------------------- */

static void result_init(struct backend_start_result *res)
{
    memset(res, 0, sizeof(*res));
    res->status = START_ERROR;
    res->facts.kv_capacity_tokens = -1;
    res->facts.max_concurrency = NAN;
}

static void handle_free(struct server_handle *h)
{
    if (!h)
        return;
    if (h->log_fd >= 0)
        close(h->log_fd);
    free(h->docker);
    free(h->container);
    free(h);
}

/* The none backend: nothing to start, only a server to wait for. */
static int start_none(struct server_handle **out, const struct backend_options *o,
                      const char *log_path, volatile sig_atomic_t *stop,
                      struct backend_start_result *res)
{
    if (!o->endpoint || !*o->endpoint) {
        snprintf(res->reason, sizeof(res->reason), "the none backend needs an endpoint");
        return -EINVAL;
    }
    size_t n = strlen(o->endpoint);
    while (n > 0 && o->endpoint[n - 1] == '/')
        n--;
    if (n >= sizeof(res->endpoint)) {
        snprintf(res->reason, sizeof(res->reason), "endpoint is longer than %zu bytes",
                 sizeof(res->endpoint) - 1);
        return -EINVAL;
    }
    memcpy(res->endpoint, o->endpoint, n);
    res->endpoint[n] = '\0';
    if (log_path) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        char line[400];
        snprintf(line, sizeof(line), "+ none: the server at %s, started by someone else\n",
                 res->endpoint);
        log_write(fd, line);
        if (fd >= 0)
            close(fd);
    }
    double timeout = o->startup_timeout_s > 0 ? o->startup_timeout_s : BACKEND_STARTUP_TIMEOUT_S;
    int wstatus;
    char last[300];
    mono_ns t0 = clock_now();
    wait_ready(res->endpoint, -1, timeout, stop, &res->status, &wstatus, last, sizeof(last));
    res->ready_s = ns_diff_s(t0, clock_now());
    if (res->status == START_TIMEOUT)
        snprintf(res->reason, sizeof(res->reason), "%s not ready after %.1f s (%.200s)",
                 res->endpoint, timeout, last);
    else if (res->status == START_INTERRUPTED)
        snprintf(res->reason, sizeof(res->reason), "interrupted while waiting for %s",
                 res->endpoint);
    if (res->status != START_OK)
        return 0;
    struct server_handle *h = xcalloc(1, sizeof(*h));
    h->kind = BACKEND_NONE;
    h->pid = -1;
    h->log_fd = -1;
    snprintf(h->endpoint, sizeof(h->endpoint), "%s", res->endpoint);
    *out = h;
    return 0;
}

int backend_start(struct server_handle **out, const struct backend_options *o,
                  const struct server_setup *s, const char *log_path, volatile sig_atomic_t *stop,
                  struct backend_start_result *res)
{
    if (!out || !res)
        return -EINVAL;
    *out = NULL;
    result_init(res);
    if (!o) {
        snprintf(res->reason, sizeof(res->reason), "no backend options");
        return -EINVAL;
    }
    if (o->kind == BACKEND_NONE)
        return start_none(out, o, log_path, stop, res);

    int rc = -EINVAL;
    char **argv = NULL;                               /* owned */
    char *text = NULL;                                /* the log read back, owned */
    struct server_handle *h = xcalloc(1, sizeof(*h)); /* owned until *out */
    h->kind = o->kind;
    h->pid = -1;
    h->log_fd = -1;
    h->grace_s = o->stop_grace_s > 0 ? o->stop_grace_s : BACKEND_STOP_GRACE_S;
    char exe[4096];
    char name[256] = "";

    if (!s || !log_path) {
        snprintf(res->reason, sizeof(res->reason), "no setup or no log path");
        goto fail;
    }
    if (o->port < 0 || o->port > 65535) {
        snprintf(res->reason, sizeof(res->reason), "port %d is not 0..65535", o->port);
        goto fail;
    }
    /* A port on our loopback: every backend but docker on a named network, which the study
     * reaches by the container's name. */
    bool named_net = o->kind == BACKEND_DOCKER && o->docker_network && !backend_docker_host_net(o);
    bool loopback = !named_net;
    int port = o->port ? o->port : BACKEND_CONTAINER_PORT;
    if (loopback && !o->port) {
        port = free_port();
        if (port < 0) {
            rc = port;
            snprintf(res->reason, sizeof(res->reason), "no free loopback port: %s", strerror(-rc));
            goto fail;
        }
    }
    rc = backend_argv_err(o, s, port, &argv, res->reason, sizeof(res->reason));
    if (rc)
        goto fail;
    if (o->kind == BACKEND_DOCKER) {
        rc = backend_container_name(o, s, name, sizeof(name), res->reason, sizeof(res->reason));
        if (rc)
            goto fail;
        h->container = xstrdup(name);
        snprintf(h->endpoint, sizeof(h->endpoint), "http://%.200s:%d",
                 named_net ? name : BACKEND_HOST, named_net ? BACKEND_CONTAINER_PORT : port);
    } else {
        snprintf(h->endpoint, sizeof(h->endpoint), "http://%s:%d", BACKEND_HOST, port);
    }
    snprintf(res->endpoint, sizeof(res->endpoint), "%s", h->endpoint);
    if (find_exe(argv[0], exe, sizeof(exe))) {
        snprintf(res->reason, sizeof(res->reason), "%s: not found%s", argv[0],
                 strchr(argv[0], '/') ? " or not executable" : " on PATH");
        rc = 0;
        goto fail;
    }
    if (o->kind == BACKEND_DOCKER)
        h->docker = xstrdup(exe);

    h->log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (h->log_fd < 0) {
        rc = -errno;
        snprintf(res->reason, sizeof(res->reason), "cannot open %s: %s", log_path, strerror(errno));
        goto fail;
    }
    /* Only what this start writes is read back: the log may hold earlier attempts. */
    off_t log_from = lseek(h->log_fd, 0, SEEK_END);
    if (log_from < 0)
        log_from = 0;
    if (h->container) /* a container left by a study that was killed has the same name */
        docker_rm(h->docker, h->container, h->log_fd, stop);
    if (stopped(stop)) {
        res->status = START_INTERRUPTED;
        snprintf(res->reason, sizeof(res->reason), "interrupted before the server was started");
        rc = 0;
        goto fail;
    }
    if (loopback && port_is_free(port) == -EADDRINUSE) {
        snprintf(res->reason, sizeof(res->reason),
                 "port %d on %s is in use (a server left from an earlier run?)", port,
                 BACKEND_HOST);
        rc = 0;
        goto fail;
    }
    log_argv(h->log_fd, argv);
    rc = spawn(exe, argv, h->log_fd, &h->pid);
    if (rc) {
        snprintf(res->reason, sizeof(res->reason), "cannot start %.300s: %s", exe, strerror(-rc));
        goto fail;
    }

    double timeout = o->startup_timeout_s > 0 ? o->startup_timeout_s : BACKEND_STARTUP_TIMEOUT_S;
    int wstatus = 0;
    char last[300];
    mono_ns t0 = clock_now();
    wait_ready(h->endpoint, h->pid, timeout, stop, &res->status, &wstatus, last, sizeof(last));
    res->ready_s = ns_diff_s(t0, clock_now());
    if (res->status == START_OK) {
        char line[400];
        snprintf(line, sizeof(line), "+ ready after %.1f s at %s\n", res->ready_s, h->endpoint);
        log_write(h->log_fd, line);
        text = log_read(log_path, log_from, -1);
        enum start_status ignored;
        server_log_scan(text, &res->facts, &ignored, NULL, 0);
        free(text);
        backend_argv_free(argv);
        *out = h;
        return 0;
    }

    /* Not ready: stop what is left, then let the log say why. */
    off_t server_end = lseek(h->log_fd, 0, SEEK_END); /* before our own lines */
    pid_t pgid = h->pid;
    char how[256] = "";
    if (res->status == START_CRASHED) {
        describe_status(wstatus, how, sizeof(how));
        h->pid = -1; /* reaped by wait_ready */
    }
    if (h->container)
        docker_rm(h->docker, h->container, h->log_fd, NULL);
    char stop_how[256];
    group_stop(h->pid, pgid, h->grace_s, stop_how, sizeof(stop_how));
    h->pid = -1;
    char line[400];
    snprintf(line, sizeof(line), "+ %s: %s\n", start_status_name(res->status),
             how[0] ? how : stop_how);
    log_write(h->log_fd, line);

    text = log_read(log_path, log_from, -1);
    enum start_status cause;
    char cause_line[sizeof(res->reason)];
    server_log_scan(text, &res->facts, &cause, cause_line, sizeof(cause_line));
    server_log_tail(text, LOG_TAIL_LINES, res->log_tail, sizeof(res->log_tail));
    switch (res->status) {
    case START_CRASHED:
        if (cause != START_OK) {
            res->status = cause;
            snprintf(res->reason, sizeof(res->reason), "%s", cause_line);
        } else {
            /* The server's first word of an error (the cause; what follows is its fallout,
             * e.g. docker's "Run 'docker run --help'"), never one of our own "+ " lines. */
            char *own = log_read(log_path, log_from, server_end);
            char cause_text[400];
            server_log_first_error(own, cause_text, sizeof(cause_text));
            free(own);
            bool clean = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
            snprintf(res->reason, sizeof(res->reason),
                     "server %.100s before it was ready%s%.200s%s", how, cause_text[0] ? ": " : "",
                     cause_text,
                     clean ? " (a server that exits 0 at once may have gone to the background, "
                             "e.g. `docker run -d` or a double fork: the study can only track one "
                             "that stays in the foreground)"
                           : "");
        }
        break;
    case START_TIMEOUT:
        snprintf(res->reason, sizeof(res->reason), "not ready after %.1f s (%.150s)%s%.300s",
                 timeout, last, cause != START_OK ? "; the log says: " : "",
                 cause != START_OK ? cause_line : "");
        break;
    default:
        snprintf(res->reason, sizeof(res->reason), "interrupted while the server was starting");
        break;
    }
    free(text);
    rc = 0;
fail:
    if (rc)
        res->status = START_ERROR;
    if (res->status == START_ERROR && h->log_fd >= 0) {
        log_write(h->log_fd, "+ error: ");
        log_write(h->log_fd, res->reason);
        log_write(h->log_fd, "\n");
    }
    backend_argv_free(argv);
    handle_free(h);
    return rc;
}

void backend_log_tail(const char *log_path, char *out, size_t outlen)
{
    char *text = log_read(log_path, 0, -1);
    server_log_tail(text, LOG_TAIL_LINES, out, outlen);
    free(text);
}

bool backend_alive(struct server_handle *h, char *why, size_t whylen)
{
    if (whylen)
        why[0] = '\0';
    if (!h || h->kind == BACKEND_NONE || h->pid <= 0)
        return h && (h->kind == BACKEND_NONE || h->pid > 0);
    int status;
    pid_t r = waitpid(h->pid, &status, WNOHANG);
    if (r == 0)
        return true;
    char how[128] = "is gone";
    if (r == h->pid)
        describe_status(status, how, sizeof(how));
    snprintf(why, whylen, "the server %s while it was being measured", how);
    if (h->log_fd >= 0) {
        char line[200];
        snprintf(line, sizeof(line), "+ %s\n", why);
        log_write(h->log_fd, line);
    }
    h->pid = r == h->pid ? -1 : h->pid; /* reaped: backend_stop still ends what it left */
    return false;
}

void backend_stop(struct server_handle *h)
{
    if (!h)
        return;
    if (h->kind != BACKEND_NONE) {
        if (h->container)
            docker_rm(h->docker, h->container, h->log_fd, NULL);
        char how[256], line[400];
        group_stop(h->pid, h->pid, h->grace_s, how, sizeof(how));
        snprintf(line, sizeof(line), "+ stopped: %s\n", how);
        log_write(h->log_fd, line);
    }
    handle_free(h);
}
