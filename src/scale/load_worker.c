/*
 * load_worker.c - one worker of a distributed run: joins the coordinator, runs the config's
 * points with its share of the load (struct run_share), starts each point when the
 * coordinator says (measuring its clock against the coordinator's before and after), and
 * uploads its result files at the end. Its own files stay where the config puts them,
 * named <output_prefix>_rank<R>_<stamp>_*, whatever becomes of the coordinator.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/exitcode.h"
#include "core/http.h"
#include "core/log.h"
#include "core/version.h"
#include "scale/load_internal.h"

struct load_worker {
    CURL *h;   /* keep-alive to the coordinator, on the run's thread only */
    char *url; /* the coordinator's base URL */
    int rank, n;
    char run_id[64];
    mono_ns coord_t0;
    char fingerprint[17];
    char host[256];
    char *prefix;         /* the config's output_prefix, before the rank was added */
    pthread_mutex_t lock; /* syncs: the run's thread adds, a checkpoint thread describes */
    struct load_sync *syncs;
    size_t n_syncs;
};

static void worker_add_sync(struct load_worker *w, const struct load_sync *s)
{
    pthread_mutex_lock(&w->lock);
    w->syncs = xreallocarray(w->syncs, w->n_syncs + 1, sizeof(*w->syncs));
    w->syncs[w->n_syncs++] = *s;
    pthread_mutex_unlock(&w->lock);
}

/* ---- the run's hooks (struct run_share) ---- */

static int on_point_begin(void *ctx, size_t point, mono_ns *start)
{
    struct load_worker *w = ctx;
    struct load_sync s;
    if (load_sync_measure(w->h, w->url, LOAD_PINGS, &s)) {
        log_error("worker %d: the coordinator at %s stopped answering before point %zu", w->rank,
                  w->url, point + 1);
        return -ECONNREFUSED;
    }
    s.point = point;
    s.end = false;
    worker_add_sync(w, &s);
    json_t *body = json_pack("{s:i, s:I}", "rank", w->rank, "point", (json_int_t)point);
    char *text = json_dumps(body, JSON_COMPACT);
    char *url = xasprintf("%s/v1/ready", w->url), err[512];
    long status;
    json_t *reply = NULL;
    int rc = load_http(w->h, "POST", url, text, strlen(text), load_timeout_s() + 60, &status,
                       &reply, err, sizeof(err));
    json_t *st = json_object_get(reply, "start_ns");
    if (rc == 0 && status == 200 && json_is_integer(st)) {
        *start = (mono_ns)(json_integer_value(st) + s.offset_ns);
        mono_ns now = clock_now();
        if (*start < now)
            log_warn("worker %d: the start of point %zu reached this worker %.1f ms late; its "
                     "first requests go late (see dispatch_lag)",
                     w->rank, point + 1, ns_diff_s(*start, now) * 1e3);
    } else {
        const char *why = json_string_value(json_object_get(reply, "error"));
        log_error("worker %d: point %zu cannot start: %s", w->rank, point + 1,
                  why  ? why
                  : rc ? err
                       : "the coordinator gave no start time");
        rc = -ECANCELED;
    }
    json_decref(reply);
    free(url);
    free(text);
    json_decref(body);
    return rc;
}

static void on_point_end(void *ctx, size_t point)
{
    struct load_worker *w = ctx;
    struct load_sync s;
    if (load_sync_measure(w->h, w->url, LOAD_PINGS, &s)) {
        log_warn("worker %d: the clock after point %zu could not be measured (the coordinator "
                 "does not answer); the merge uses the one before it",
                 w->rank, point + 1);
        return;
    }
    s.point = point;
    s.end = true;
    worker_add_sync(w, &s);
}

static json_t *on_describe(void *ctx)
{
    struct load_worker *w = ctx;
    json_t *syncs = json_array();
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->n_syncs; i++)
        json_array_append_new(syncs, load_sync_json(&w->syncs[i]));
    pthread_mutex_unlock(&w->lock);
    return json_pack("{s:s, s:i, s:s, s:i, s:i, s:s, s:I, s:s, s:s, s:I, s:s, s:o}", "role",
                     "worker", "protocol", LOAD_PROTOCOL, "run_id", w->run_id, "rank", w->rank,
                     "n_workers", w->n, "coordinator", w->url, "coordinator_t0_ns",
                     (json_int_t)w->coord_t0, "config_fingerprint", w->fingerprint, "host", w->host,
                     "pid", (json_int_t)getpid(), "output_prefix", w->prefix, "syncs", syncs);
}

/* ---- joining ---- */

/* SLURM_PROCID (srun), else JOB_COMPLETION_INDEX (a Kubernetes Indexed Job), else -1. */
static int rank_from_env(void)
{
    const char *names[] = {"SLURM_PROCID", "JOB_COMPLETION_INDEX"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = getenv(names[i]);
        char *end;
        long r = v && *v ? strtol(v, &end, 10) : -1;
        if (v && *v && *end == '\0' && r >= 0 && r < 100000)
            return (int)r;
    }
    return -1;
}

/* Joins; the coordinator may not be up yet (started at the same time): tried again each
 * second for load_timeout_s(). *endpoint: the server it says to use, or NULL. */
static int worker_join(struct load_worker *w, int rank, char **endpoint)
{
    json_t *body = json_pack("{s:i, s:o, s:s, s:I, s:s, s:s}", "protocol", LOAD_PROTOCOL, "rank",
                             rank >= 0 ? json_integer(rank) : json_null(), "host", w->host, "pid",
                             (json_int_t)getpid(), "version", TB_VERSION, "config_fingerprint",
                             w->fingerprint);
    char *text = json_dumps(body, JSON_COMPACT);
    char *url = xasprintf("%s/v1/join", w->url), err[512];
    mono_ns until = clock_now() + s_to_ns(load_timeout_s());
    long status = 0;
    json_t *reply = NULL;
    int rc;
    bool said = false;
    for (;;) {
        rc =
            load_http(w->h, "POST", url, text, strlen(text), 30, &status, &reply, err, sizeof(err));
        if (rc != -ECONNREFUSED || clock_now() > until)
            break;
        if (!said)
            log_info("waiting for the coordinator at %s", w->url);
        said = true;
        clock_sleep_ns(NS_PER_S);
    }
    json_int_t r, n, t0;
    const char *run_id, *ep = NULL;
    if (rc == 0 && status == 200 &&
        json_unpack(reply, "{s:I, s:I, s:I, s:s, s?s}", "rank", &r, "n_workers", &n, "t0_ns", &t0,
                    "run_id", &run_id, "endpoint", &ep) == 0) {
        w->rank = (int)r;
        w->n = (int)n;
        w->coord_t0 = (mono_ns)t0;
        snprintf(w->run_id, sizeof(w->run_id), "%s", run_id);
        *endpoint = ep ? xstrdup(ep) : NULL;
    } else {
        const char *why = json_string_value(json_object_get(reply, "error"));
        log_error("cannot join the coordinator at %s: %s", w->url,
                  why  ? why
                  : rc ? err
                       : "it did not answer as a testbench coordinator");
        /* refused (another config, version, a rank taken): a usage error */
        rc = rc ? rc : why && status >= 400 && status < 500 ? -EPERM : -EPROTO;
    }
    json_decref(reply);
    free(url);
    free(text);
    json_decref(body);
    return rc;
}

/* ---- uploading the results ---- */

/* The coordinator's short answer to an upload: its status says it all. */
static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* POSTs the file at path to the coordinator as kind ("detailed", "telemetry"). 0 or -errno. */
static int worker_upload(struct load_worker *w, const char *path, const char *kind, int exit_code)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        if (f)
            fclose(f);
        return -errno;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char *url = xasprintf("%s/v1/result?rank=%d&kind=%s&exit=%d&name=%s", w->url, w->rank, kind,
                          exit_code, base);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    http_apply(h);
    curl_easy_setopt(h, CURLOPT_NOPROXY, load_url_is_loopback(url) ? "*" : NULL);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_READDATA, f);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = cc != CURLE_OK ? -ECONNREFUSED : status == 200 ? 0 : -EPROTO;
    if (rc)
        log_error("worker %d: %s could not be sent to the coordinator (%s)", w->rank, path,
                  cc != CURLE_OK ? curl_easy_strerror(cc) : "it refused the file");
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    fclose(f);
    free(url);
    return rc;
}

/* The telemetry first, the records last: the coordinator counts a worker done with them. */
static int worker_send_results(struct load_worker *w, const struct run_outcome *out, int ec)
{
    if (!out->detailed_path)
        return -ENOENT;
    int rc = out->telemetry_path ? worker_upload(w, out->telemetry_path, "telemetry", ec) : 0;
    if (rc == 0)
        rc = worker_upload(w, out->detailed_path, "detailed", ec);
    if (rc)
        log_error("worker %d: its results stay in %s; merge them by hand with `testbench merge "
                  "OUT_DIR` and every worker's _detailed.json",
                  w->rank, out->detailed_path);
    return rc;
}

/* ---- the worker ---- */

static void worker_release(struct load_worker *w)
{
    curl_easy_cleanup(w->h);
    free(w->url);
    free(w->prefix);
    free(w->syncs);
    pthread_mutex_destroy(&w->lock);
}

/* The config as this worker runs it: the coordinator's server, the rank in the file names. */
static int worker_config(struct load_worker *w, struct config *cfg, const char *endpoint)
{
    char err[512];
    if (load_check_split(cfg, w->n, err, sizeof(err))) {
        log_error("%s", err);
        return TB_EXIT_USAGE;
    }
    if (endpoint) {
        config_set_endpoint(cfg, endpoint);
        cfg->server.sim.enabled = false; /* the coordinator serves it */
    }
    const char *p = cfg->benchmark.output_prefix ? cfg->benchmark.output_prefix : "benchmark";
    w->prefix = xstrdup(p);
    char *ranked = xasprintf("%s_rank%d", p, w->rank);
    free(cfg->benchmark.output_prefix);
    cfg->benchmark.output_prefix = ranked;
    return TB_EXIT_OK;
}

int load_worker_run(struct config *cfg, const struct run_options *o, const char *url, int rank)
{
    struct load_worker w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.lock, NULL);
    w.h = curl_easy_init();
    w.url = xstrdup(url);
    size_t ul = strlen(w.url);
    while (ul && w.url[ul - 1] == '/')
        w.url[--ul] = '\0';
    load_hostname(w.host, sizeof(w.host));
    load_config_fingerprint(cfg, w.fingerprint);
    char *endpoint = NULL;
    int rc = worker_join(&w, rank >= 0 ? rank : rank_from_env(), &endpoint);
    int ec = rc == -EPERM ? TB_EXIT_USAGE : rc ? TB_EXIT_UNREACHABLE : TB_EXIT_OK;
    if (ec == TB_EXIT_OK)
        ec = worker_config(&w, cfg, endpoint);
    free(endpoint);
    if (ec != TB_EXIT_OK) {
        config_release(cfg);
        worker_release(&w);
        return ec;
    }
    if (!o->quiet)
        log_info("worker %d of %d (run %s, coordinator %s)", w.rank, w.n, w.run_id, w.url);
    struct run_share share = {w.rank, w.n, on_point_begin, on_point_end, on_describe, &w};
    struct run_options ro = *o;
    ro.share = &share;
    struct run_outcome out;
    ec = run_config(cfg, &ro, &out);
    if (worker_send_results(&w, &out, ec) && ec == TB_EXIT_OK)
        ec = TB_EXIT_RUNTIME;
    run_outcome_release(&out);
    worker_release(&w);
    return ec;
}
