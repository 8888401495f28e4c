/*
 * gt_server.c - a ground-truth load target for bench_runner: the smallest OpenAI-style SSE
 * server that keeps an exact schedule. Every streamed request gets its first token
 * --ttft-ms after its body arrived and then one token every --interval-ms, --tokens in all
 * (fewer if max_tokens asks for fewer), then a usage chunk and [DONE]. What the runner
 * measures can then be checked against numbers known in advance, not against another
 * program's estimate.
 *
 * Cheap on purpose, so the runner's limits show and not this server's: one thread, one
 * epoll set, a min-heap of streams ordered by their next due time, epoll_pwait2's
 * nanosecond timeout (timer slack set to 1 ns, so the kernel does not round the wake-up by
 * its default 50 us), one write() per token with TCP_NODELAY, keep-alive connections, and
 * no allocation per token. Tokens due within --coalesce-us (default 50) of a wake-up are
 * written in that wake-up, up to that much early: at 60k tokens/s a wake-up per token would
 * cost more than the tokens. Each token's lateness (write time minus due time) is recorded,
 * so the benchmark can tell the runner's error from this server's own.
 *
 * HTTP: request line, headers up to 16 KiB, a Content-Length body (no chunked requests).
 * POST /v1/completions and /v1/chat/completions stream when the body asks "stream": true and
 * answer one JSON document otherwise (the runner's 1-token preflight); GET /v1/models names
 * the model "gt"; anything else is a 404 with a body. Chunked transfer encoding frames the
 * stream, so the connection stays open for the next request.
 *
 *   gt_server --port P [--ttft-ms 50] [--interval-ms 5] [--tokens 400] [--coalesce-us 50]
 *             [--cpu N] [--nagle] [--stats FILE]
 * --nagle leaves Nagle's algorithm on (no TCP_NODELAY), as some HTTP servers do by default:
 * a client that holds back its ACKs then delays this server's tokens.
 *
 * SIGTERM or SIGINT ends it; --stats then receives one JSON object: events written, the
 * lateness distribution of every token and of first tokens (us), requests, errors, and the
 * server's own CPU seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GT_IN_MAX (64 * 1024)  /* a request's head and body must fit here */
#define GT_OUT_MAX (64 * 1024) /* bytes a slow reader may leave unsent before it is dropped */
#define GT_EVENTS 1024         /* epoll events per wake-up */
#define GT_LATE_BINS 200000    /* lateness histogram: 1 us bins up to 200 ms, then overflow */

typedef uint64_t mono_ns;

static mono_ns now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (mono_ns)ts.tv_sec * 1000000000u + (mono_ns)ts.tv_nsec;
}

/* ===== Lateness histogram ===== */

struct late_hist {
    uint32_t bins[GT_LATE_BINS];
    uint64_t n, over;
    mono_ns max;
};

static void late_record(struct late_hist *h, mono_ns late)
{
    uint64_t us = late / 1000;
    if (us < GT_LATE_BINS)
        h->bins[us]++;
    else
        h->over++;
    if (late > h->max)
        h->max = late;
    h->n++;
}

/* The q-quantile in microseconds (the upper edge of its bin; the max beyond the range). */
static double late_quantile(const struct late_hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)(q * (double)(h->n - 1)) + 1, seen = 0;
    for (size_t i = 0; i < GT_LATE_BINS; i++) {
        seen += h->bins[i];
        if (seen >= want)
            return (double)(i + 1);
    }
    return (double)h->max / 1e3;
}

/* ===== Connections and the schedule ===== */

enum conn_state { C_HEAD, C_BODY, C_STREAM };

struct conn {
    int fd;
    enum conn_state state;
    bool chat, want_close, writable_wait;
    size_t heap_at; /* index in the heap + 1; 0 = not scheduled */
    mono_ns due;
    int sent, total, prompt_tokens;
    uint64_t id;
    size_t head_len, body_len; /* of the request being read */
    size_t in_len, out_len;
    char in[GT_IN_MAX];
    char out[GT_OUT_MAX];
};

struct server {
    int ep, lfd;
    mono_ns ttft, interval;
    mono_ns coalesce; /* tokens due this soon after a wake-up go out with it (early) */
    int tokens;
    bool nagle; /* --nagle: leave Nagle's algorithm on, as a server without TCP_NODELAY does */
    struct conn **heap; /* min-heap on due */
    size_t heap_n, heap_cap;
    uint64_t next_id, requests, errors;
    mono_ns first_stream, last_end; /* the truth's window: first stream in, last stream out */
    struct late_hist *all, *first;
};

static bool heap_less(struct server *s, size_t a, size_t b)
{
    return s->heap[a]->due < s->heap[b]->due;
}

static void heap_swap(struct server *s, size_t a, size_t b)
{
    struct conn *t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->heap_at = a + 1;
    s->heap[b]->heap_at = b + 1;
}

static void heap_up(struct server *s, size_t i)
{
    while (i && heap_less(s, i, (i - 1) / 2)) {
        heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct server *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < s->heap_n && heap_less(s, l, m))
            m = l;
        if (l + 1 < s->heap_n && heap_less(s, l + 1, m))
            m = l + 1;
        if (m == i)
            return;
        heap_swap(s, i, m);
        i = m;
    }
}

static void heap_push(struct server *s, struct conn *c)
{
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 1024;
        struct conn **h = realloc(s->heap, cap * sizeof(*h));
        if (!h) {
            perror("gt_server: heap");
            exit(1);
        }
        s->heap = h;
        s->heap_cap = cap;
    }
    s->heap[s->heap_n] = c;
    c->heap_at = ++s->heap_n;
    heap_up(s, s->heap_n - 1);
}

static void heap_remove(struct server *s, struct conn *c)
{
    size_t i = c->heap_at - 1;
    c->heap_at = 0;
    if (i != --s->heap_n) {
        s->heap[i] = s->heap[s->heap_n];
        s->heap[i]->heap_at = i + 1;
        heap_down(s, i);
        heap_up(s, i);
    }
}

static void conn_close(struct server *s, struct conn *c)
{
    if (c->heap_at)
        heap_remove(s, c);
    close(c->fd); /* leaves the epoll set with it */
    free(c);
}

/* Queues bytes and writes what the socket takes; -1 when the reader is too far behind. */
static int conn_send(struct server *s, struct conn *c, const char *p, size_t n)
{
    if (c->out_len == 0) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0 && errno != EAGAIN)
            return -1;
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
    }
    if (!n)
        return 0;
    if (c->out_len + n > sizeof(c->out))
        return -1;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    if (!c->writable_wait) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->writable_wait = true;
    }
    return 0;
}

static int conn_flush(struct server *s, struct conn *c)
{
    while (c->out_len) {
        ssize_t w = write(c->fd, c->out, c->out_len);
        if (w < 0)
            return errno == EAGAIN ? 0 : -1;
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->writable_wait = false;
    return 0;
}

/* One HTTP chunk holding one SSE event ("data: <json>\n\n"), built in place. */
static size_t sse_chunk(char *out, size_t cap, const char *json, size_t jlen)
{
    size_t body = 6 + jlen + 2;
    int h = snprintf(out, cap, "%zx\r\n", body);
    if (h < 0 || (size_t)h + body + 2 > cap)
        return 0;
    char *p = out + h;
    memcpy(p, "data: ", 6);
    memcpy(p + 6, json, jlen);
    memcpy(p + 6 + jlen, "\n\n\r\n", 4);
    return (size_t)h + body + 2;
}

/* Writes the stream's next token (and, after the last, usage, [DONE] and the chunked end). */
static int stream_token(struct server *s, struct conn *c)
{
    char json[512], out[2048];
    bool last = c->sent + 1 == c->total;
    int jn = c->chat
                 ? snprintf(json, sizeof(json),
                            "{\"id\":\"chatcmpl-gt-%llu\",\"object\":\"chat.completion.chunk\","
                            "\"model\":\"gt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                            "\" tok\"},\"finish_reason\":%s}]}",
                            (unsigned long long)c->id, last ? "\"length\"" : "null")
                 : snprintf(json, sizeof(json),
                            "{\"id\":\"cmpl-gt-%llu\",\"object\":\"text_completion\",\"model\":"
                            "\"gt\",\"choices\":[{\"index\":0,\"text\":\" tok\",\"logprobs\":null,"
                            "\"finish_reason\":%s}]}",
                            (unsigned long long)c->id, last ? "\"length\"" : "null");
    size_t n = sse_chunk(out, sizeof(out), json, (size_t)jn);
    if (last) {
        jn = snprintf(json, sizeof(json),
                      "{\"id\":\"cmpl-gt-%llu\",\"model\":\"gt\",\"choices\":[],\"usage\":{"
                      "\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}",
                      (unsigned long long)c->id, c->prompt_tokens, c->total,
                      c->prompt_tokens + c->total);
        n += sse_chunk(out + n, sizeof(out) - n, json, (size_t)jn);
        n += sse_chunk(out + n, sizeof(out) - n, "[DONE]", 6);
        memcpy(out + n, "0\r\n\r\n", 5);
        n += 5;
    }
    c->sent++;
    return conn_send(s, c, out, n);
}

/* A number after "key": in the body, or def. Good enough for the bodies the runner sends. */
static long body_int(const char *body, size_t len, const char *key, long def)
{
    const char *k = memmem(body, len, key, strlen(key));
    if (!k)
        return def;
    const char *p = k + strlen(key), *end = body + len;
    while (p < end && (*p == '"' || *p == ':' || *p == ' '))
        p++;
    long v = 0;
    bool any = false;
    while (p < end && *p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        any = true;
    }
    return any ? v : def;
}

static int send_simple(struct server *s, struct conn *c, int code, const char *reason,
                       const char *body)
{
    char out[1024];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "\r\n%s",
                     code, reason, strlen(body), body);
    return conn_send(s, c, out, (size_t)n);
}

/* A whole request is in c->in: answer it (or start its stream). */
static int handle_request(struct server *s, struct conn *c, mono_ns now)
{
    const char *head = c->in, *body = c->in + c->head_len;
    size_t blen = c->body_len;
    s->requests++;
    bool post = strncmp(head, "POST ", 5) == 0;
    const char *path = strchr(head, ' ') + 1;
    bool completions = post && strncmp(path, "/v1/completions", 15) == 0;
    bool chat = post && strncmp(path, "/v1/chat/completions", 20) == 0;
    if (!completions && !chat) {
        if (strncmp(head, "GET /v1/models", 14) == 0)
            return send_simple(s, c, 200, "OK",
                               "{\"object\":\"list\",\"data\":[{\"id\":\"gt\",\"object\":\"model\","
                               "\"max_model_len\":1000000}]}");
        return send_simple(s, c, 404, "Not Found", "{\"error\":{\"message\":\"not found\"}}");
    }
    long max_tokens = body_int(body, blen, "\"max_tokens\"", s->tokens);
    int total = max_tokens > 0 && max_tokens < s->tokens ? (int)max_tokens : s->tokens;
    bool stream = memmem(body, blen, "\"stream\":true", 13) != NULL;
    c->id = ++s->next_id;
    c->prompt_tokens = (int)(blen / 6); /* a stand-in: the runner only reads it back */
    if (!stream) {
        char doc[512];
        snprintf(doc, sizeof(doc),
                 "{\"id\":\"cmpl-gt-%llu\",\"object\":\"text_completion\",\"model\":\"gt\","
                 "\"choices\":[{\"index\":0,\"text\":\" tok\",\"finish_reason\":\"length\"}],"
                 "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":1,\"total_tokens\":%d}}",
                 (unsigned long long)c->id, c->prompt_tokens, c->prompt_tokens + 1);
        return send_simple(s, c, 200, "OK", doc);
    }
    static const char hdr[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                              "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    c->chat = chat;
    c->sent = 0;
    c->total = total;
    c->state = C_STREAM;
    c->due = now + s->ttft;
    if (!s->first_stream)
        s->first_stream = now;
    heap_push(s, c);
    return conn_send(s, c, hdr, sizeof(hdr) - 1);
}

/* Parses what has arrived; answers each complete request. -1 closes the connection. */
static int conn_parse(struct server *s, struct conn *c, mono_ns now)
{
    while (c->state != C_STREAM) {
        if (c->state == C_HEAD) {
            char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
            if (!end)
                return c->in_len == sizeof(c->in) ? -1 : 0;
            *end = '\0'; /* the head becomes a string; its terminator is not needed again */
            c->head_len = (size_t)(end - c->in) + 4;
            const char *cl = strcasestr(c->in, "\r\ncontent-length:");
            c->body_len = cl ? strtoul(cl + 17, NULL, 10) : 0;
            c->want_close = strcasestr(c->in, "\r\nconnection: close") != NULL;
            if (c->head_len + c->body_len > sizeof(c->in) || !strchr(c->in, ' '))
                return -1;
            c->state = C_BODY;
        }
        if (c->in_len < c->head_len + c->body_len)
            return 0;
        c->state = C_HEAD;
        if (handle_request(s, c, now))
            return -1;
        size_t used = c->head_len + c->body_len;
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        if (c->state != C_STREAM && c->want_close)
            return -1; /* a simple answer on a closing connection: done */
    }
    return 0;
}

static void on_readable(struct server *s, struct conn *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
            if (c->state == C_STREAM)
                s->errors++; /* the client left mid-stream */
            conn_close(s, c);
            return;
        }
        if (r < 0)
            break;
        c->in_len += (size_t)r;
        if (c->in_len == sizeof(c->in))
            break;
    }
    if (conn_parse(s, c, now_ns())) {
        s->errors++;
        conn_close(s, c);
    }
}

static void on_accept(struct server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        if (!s->nagle)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev)) {
            close(fd);
            free(c);
        }
    }
}

/* Writes every token that is due; returns the time of the next one (0 = none). */
static mono_ns emit_due(struct server *s)
{
    mono_ns now = now_ns();
    while (s->heap_n) {
        struct conn *c = s->heap[0];
        if (c->due > now + s->coalesce) {
            now = now_ns();
            if (c->due > now + s->coalesce)
                return c->due;
        }
        mono_ns late = now > c->due ? now - c->due : 0;
        late_record(s->all, late);
        if (c->sent == 0)
            late_record(s->first, late);
        if (stream_token(s, c)) {
            s->errors++;
            conn_close(s, c);
            continue;
        }
        if (c->sent == c->total) {
            s->last_end = now;
            heap_remove(s, c);
            c->state = C_HEAD;
            if (c->want_close || (c->in_len && conn_parse(s, c, now))) {
                conn_close(s, c);
            }
            continue;
        }
        c->due += s->interval; /* from the schedule, not from now: lateness does not drift */
        heap_down(s, 0);
        now = now_ns();
    }
    return 0;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4096)) {
        perror("gt_server: listen");
        exit(1);
    }
    return fd;
}

static void write_stats(const struct server *s, const char *path)
{
    FILE *f = path ? fopen(path, "w") : stdout;
    if (!f) {
        perror(path);
        return;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    fprintf(f,
            "{\"events\":%llu,\"requests\":%llu,\"errors\":%llu,\"cpu_s\":%.3f,"
            "\"late_us\":{\"p50\":%.0f,\"p99\":%.0f,\"p99_9\":%.0f,\"max\":%.0f},"
            "\"first_late_us\":{\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f},"
            "\"ttft_ms\":%.3f,\"interval_ms\":%.3f,\"window_start_s\":%.6f,"
            "\"window_end_s\":%.6f}\n",
            (unsigned long long)s->all->n, (unsigned long long)s->requests,
            (unsigned long long)s->errors, cpu, late_quantile(s->all, 0.5),
            late_quantile(s->all, 0.99), late_quantile(s->all, 0.999), (double)s->all->max / 1e3,
            late_quantile(s->first, 0.5), late_quantile(s->first, 0.99),
            (double)s->first->max / 1e3, (double)s->ttft / 1e6, (double)s->interval / 1e6,
            (double)s->first_stream / 1e9, (double)s->last_end / 1e9);
    if (path)
        fclose(f);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    struct server s = {.ttft = 50000000, .interval = 5000000, .coalesce = 50000, .tokens = 400};
    int port = 0, cpu = -1;
    const char *stats = NULL;
    static const struct option lo[] = {
        {"port", required_argument, NULL, 'p'},
        {"ttft-ms", required_argument, NULL, 'f'},
        {"interval-ms", required_argument, NULL, 'i'},
        {"tokens", required_argument, NULL, 'n'},
        {"stats", required_argument, NULL, 's'},
        {"coalesce-us", required_argument, NULL, 'c'},
        {"cpu", required_argument, NULL, 'u'},
        {"nagle", no_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'p':
            port = (int)strtol(optarg, NULL, 10);
            break;
        case 'f':
            s.ttft = (mono_ns)(strtod(optarg, NULL) * 1e6);
            break;
        case 'i':
            s.interval = (mono_ns)(strtod(optarg, NULL) * 1e6);
            break;
        case 'n':
            s.tokens = (int)strtol(optarg, NULL, 10);
            break;
        case 's':
            stats = optarg;
            break;
        case 'u':
            cpu = (int)strtol(optarg, NULL, 10);
            break;
        case 'c':
            s.coalesce = (mono_ns)(strtod(optarg, NULL) * 1e3);
            break;
        case 'N':
            s.nagle = true;
            break;
        default:
            return 2;
        }
    }
    if (port <= 0 || s.tokens <= 0 || s.interval == 0) {
        fprintf(stderr, "usage: gt_server --port P [--ttft-ms 50] [--interval-ms 5] "
                        "[--tokens 400] [--coalesce-us 50] [--cpu N] [--nagle] [--stats FILE]\n");
        return 2;
    }
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    /* A real-time priority keeps the truth on time on a shared machine: the client under test
     * and any other work cannot delay a token by a scheduler time slice. Where it is not
     * allowed the server runs as it is, and its lateness says how that went. */
    if (cpu >= 0) {
        /* On a CPU of its own the server's wake-ups do not preempt the client under test. */
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set))
            fprintf(stderr, "gt_server: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
    }
    struct sched_param sp = {.sched_priority = 10};
    if (sched_setscheduler(0, SCHED_FIFO, &sp))
        fprintf(stderr, "gt_server: no real-time priority (%s): lateness may grow with load\n",
                strerror(errno));
    s.all = calloc(1, sizeof(*s.all));
    s.first = calloc(1, sizeof(*s.first));
    s.lfd = listen_on(port);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!s.all || !s.first || s.ep < 0)
        return 1;
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &lev);
    /* The signals are blocked except inside the wait, so none is lost between a check of
     * stop and the next sleep. */
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    static struct epoll_event evs[GT_EVENTS];
    while (!stop) {
        mono_ns next = emit_due(&s);
        struct timespec ts, *tsp = NULL;
        if (next) {
            mono_ns now = now_ns(), d = next > now ? next - now : 0;
            ts.tv_sec = (time_t)(d / 1000000000u);
            ts.tv_nsec = (long)(d % 1000000000u);
            tsp = &ts;
        }
        int n = epoll_pwait2(s.ep, evs, GT_EVENTS, tsp, &waitmask);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                on_accept(&s);
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                if (conn_flush(&s, c)) {
                    s.errors++;
                    conn_close(&s, c);
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(&s, c);
        }
    }
    write_stats(&s, stats);
    return 0;
}
