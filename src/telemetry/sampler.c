/*
 * sampler.c - the telemetry thread, the sample store, window aggregation and JSON.
 *
 * One thread wakes on absolute CLOCK_MONOTONIC deadlines (start + k * interval), so a slow
 * read never shifts later samples; when a read overruns a deadline that tick is skipped, not
 * made up in a burst. The wait is a pthread_cond_timedwait on a CLOCK_MONOTONIC condition
 * rather than clock_nanosleep: same absolute deadline, but telemetry_stop() can wake it at
 * once instead of waiting out the interval.
 *
 * Two locks: sample_lock serialises taking a sample (the thread and telemetry_sample_now()
 * share one curl handle and the /proc/stat baseline); lock guards the stored array, so a
 * reader never waits behind a 2 s scrape.
 */
#include "telemetry/telemetry.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/http.h"
#include "core/log.h"
#include "telemetry/host.h"
#include "telemetry/nvml.h"
#include "telemetry/prom.h"

#define TELEMETRY_MAX_SAMPLES (1u << 21) /* 24 days at 1 s; past it we count and drop */
#define SCRAPE_MAX_BYTES (16u << 20)     /* a /metrics page is tens of KiB */
#define SCRAPE_TIMEOUT_MS 2000L
#define MIN_INTERVAL_S 0.05

struct sample {
    mono_ns at;
    double t;                /* seconds since options.t0 */
    struct gpu_sample *gpus; /* n_gpus of them */
    bool has_server;
    struct server_sample server;
    bool has_host;
    struct host_sample host;
};

struct telemetry {
    struct telemetry_options o;
    char *metrics_url; /* owned copy */
    mono_ns interval_ns;
    struct nvml *nvml; /* NULL: GPU telemetry off */
    unsigned n_gpus;

    pthread_mutex_t sample_lock; /* taking a sample; guards everything below to 'lock' */
    struct host_reader host;
    CURL *curl;
    struct curl_slist *headers; /* Authorization for /metrics, or NULL */
    struct buf body;
    bool scrape_on;
    bool scrape_ok; /* at least one scrape parsed */
    size_t scrape_failures;
    size_t malformed_lines;

    pthread_mutex_t lock; /* the store and the thread's state */
    pthread_cond_t wake;
    bool stop;
    bool thread_started;
    pthread_t thread;
    struct sample *s;
    size_t n, cap;
    size_t dropped;
};

/* ---- taking a sample ------------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct buf *b = userp;
    size_t n = size * nmemb;
    if (buf_append(b, ptr, n) != 0)
        return 0; /* too big or no memory: curl fails the transfer with a write error */
    return n;
}

/* 0 with out filled; -ENOENT (no /metrics there), -ECONNREFUSED, or -EIO. */
static int scrape(struct telemetry *t, struct server_sample *out, char *why, size_t why_len)
{
    buf_reset(&t->body);
    CURLcode cc = curl_easy_perform(t->curl);
    if (cc != CURLE_OK) {
        snprintf(why, why_len, "%s", curl_easy_strerror(cc));
        return cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
    }
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) {
        snprintf(why, why_len, "HTTP %ld", code);
        return code == 404 ? -ENOENT : -EIO;
    }
    struct prom_stats st;
    int rc = server_sample_parse(t->body.data ? t->body.data : "", t->body.len, out, &st);
    if (rc) {
        snprintf(why, why_len, "out of memory parsing metrics");
        return -EIO;
    }
    t->malformed_lines += st.malformed;
    if (st.samples == 0) {
        server_sample_release(out);
        snprintf(why, why_len, "no Prometheus samples in the response");
        return -ENOENT;
    }
    return 0;
}

static void scrape_into(struct telemetry *t, struct sample *s)
{
    char why[256] = "";
    int rc = scrape(t, &s->server, why, sizeof(why));
    if (rc == 0) {
        s->has_server = true;
        t->scrape_ok = true;
        return;
    }
    t->scrape_failures++;
    /* A server without /metrics will not grow one mid-run: say so once and stop asking. A
     * refused connection after scrapes worked may be a restart, so keep trying then. */
    if (rc == -ENOENT || (rc == -ECONNREFUSED && !t->scrape_ok)) {
        log_warn("server metrics off: %s: %s", t->metrics_url, why);
        t->scrape_on = false;
    } else if (t->scrape_failures == 1) {
        log_warn("server metrics scrape failed: %s: %s (will retry)", t->metrics_url, why);
    }
}

static void sample_release(const struct telemetry *t, struct sample *s)
{
    for (unsigned g = 0; s->gpus && g < t->n_gpus; g++)
        gpu_sample_release(&s->gpus[g]);
    free(s->gpus);
    s->gpus = NULL;
    server_sample_release(&s->server);
}

static void store(struct telemetry *t, struct sample *s)
{
    pthread_mutex_lock(&t->lock);
    if (t->n == TELEMETRY_MAX_SAMPLES) {
        if (t->dropped++ == 0)
            log_warn("telemetry: sample store full (%u samples); dropping later samples",
                     TELEMETRY_MAX_SAMPLES);
        pthread_mutex_unlock(&t->lock);
        sample_release(t, s);
        return;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->s = xreallocarray(t->s, t->cap, sizeof(*t->s));
    }
    t->s[t->n++] = *s;
    pthread_mutex_unlock(&t->lock);
}

static void take_sample(struct telemetry *t)
{
    struct sample s = {0};
    pthread_mutex_lock(&t->sample_lock);
    s.at = clock_now();
    s.t = ns_diff_s(t->o.t0, s.at);
    if (t->n_gpus) {
        s.gpus = xcalloc(t->n_gpus, sizeof(*s.gpus));
        for (unsigned i = 0; i < t->n_gpus; i++)
            nvml_read(t->nvml, i, &s.gpus[i]);
    }
    if (t->o.host) {
        host_read(&t->host, &s.host);
        s.has_host = s.host.valid != 0;
    }
    if (t->scrape_on)
        scrape_into(t, &s);
    store(t, &s); /* under sample_lock too, so stored samples stay in time order */
    pthread_mutex_unlock(&t->sample_lock);
}

void telemetry_sample_now(struct telemetry *t)
{
    if (t)
        take_sample(t);
}

/* ---- the thread ----------------------------------------------------------------------- */

static struct timespec to_timespec(mono_ns ns)
{
    struct timespec ts = {(time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S)};
    return ts;
}

static void *sampler_main(void *arg)
{
    struct telemetry *t = arg;
    mono_ns next = clock_now() + t->interval_ns;
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct timespec ts = to_timespec(next);
        pthread_cond_timedwait(&t->wake, &t->lock, &ts);
        if (t->stop)
            break;
        mono_ns now = clock_now();
        if (now < next)
            continue; /* woken early */
        pthread_mutex_unlock(&t->lock);
        take_sample(t);
        pthread_mutex_lock(&t->lock);
        now = clock_now();
        next += t->interval_ns;
        if (next <= now) /* overran: skip the ticks we missed, keep the phase */
            next += ((now - next) / t->interval_ns + 1) * t->interval_ns;
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static void scrape_setup(struct telemetry *t)
{
    buf_init(&t->body, SCRAPE_MAX_BYTES);
    t->curl = curl_easy_init();
    if (!t->curl) {
        log_warn("server metrics off: libcurl could not start");
        return;
    }
    curl_easy_setopt(t->curl, CURLOPT_URL, t->metrics_url);
    http_apply(t->curl);
    curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L); /* we are not the main thread */
    curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, SCRAPE_TIMEOUT_MS);
    curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, SCRAPE_TIMEOUT_MS);
    curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, &t->body);
    curl_easy_setopt(t->curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(t->curl, CURLOPT_USERAGENT, "testbench-telemetry");
    if (t->o.api_key && t->o.api_key[0]) {
        /* Servers started with --api-key guard /metrics too. The key lives on only in the
         * header list. */
        char *auth = xasprintf("Authorization: Bearer %s", t->o.api_key);
        t->headers = curl_slist_append(NULL, auth);
        explicit_bzero(auth, strlen(auth));
        free(auth);
        curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers);
    }
    t->o.api_key = NULL; /* borrowed: not kept past telemetry_start */
    t->scrape_on = true;
}

int telemetry_start(struct telemetry **out, const struct telemetry_options *o)
{
    if (!out || !o)
        return -EINVAL;
    int rc;
    struct telemetry *t = xcalloc(1, sizeof(*t));
    t->o = *o;
    if (!(t->o.interval_s > 0) || !isfinite(t->o.interval_s))
        t->o.interval_s = 1.0;
    if (t->o.interval_s < MIN_INTERVAL_S)
        t->o.interval_s = MIN_INTERVAL_S;
    if (t->o.interval_s > TELEMETRY_INTERVAL_MAX_S)
        t->o.interval_s = TELEMETRY_INTERVAL_MAX_S;
    t->interval_ns = s_to_ns(t->o.interval_s);
    t->metrics_url = xstrdup(o->metrics_url);
    t->o.metrics_url = t->metrics_url;
    pthread_mutex_init(&t->sample_lock, NULL);
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wake, &ca);
    pthread_condattr_destroy(&ca);

    if (t->o.gpu) {
        char why[256] = "";
        /* Said once per process: a study starts one sampler per measured point. */
        static atomic_bool said;
        if (nvml_open(&t->nvml, why, sizeof(why)) == 0)
            t->n_gpus = nvml_count(t->nvml);
        else if (!atomic_exchange(&said, true))
            log_warn("GPU telemetry off: %s", why);
    }
    if (t->o.host)
        host_reader_init(&t->host);
    if (t->metrics_url && *t->metrics_url)
        scrape_setup(t);

    take_sample(t); /* the first sample is there when start returns */
    rc = -pthread_create(&t->thread, NULL, sampler_main, t);
    if (rc)
        goto fail;
    t->thread_started = true;
    *out = t;
    return 0;
fail:
    telemetry_free(t);
    return rc;
}

void telemetry_stop(struct telemetry *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    bool join = t->thread_started;
    t->stop = true;
    t->thread_started = false;
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);
    if (join)
        pthread_join(t->thread, NULL);
}

void telemetry_free(struct telemetry *t)
{
    if (!t)
        return;
    telemetry_stop(t);
    for (size_t i = 0; i < t->n; i++)
        sample_release(t, &t->s[i]);
    free(t->s);
    if (t->curl)
        curl_easy_cleanup(t->curl);
    curl_slist_free_all(t->headers);
    buf_release(&t->body);
    nvml_close(t->nvml);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->sample_lock);
    free(t->metrics_url);
    free(t);
}

/* ---- window aggregation --------------------------------------------------------------- */

#define HAS(mask, f) (((mask) >> (f)) & 1u)

static void max_into(double *m, double v)
{
    if (isnan(*m) || v > *m)
        *m = v;
}

/* Energy of GPU g over samples [a, b]: counter difference, else trapezoid of power. */
static double gpu_energy(const struct sample *s, size_t a, size_t b, unsigned g, bool *counter)
{
    *counter = false;
    if (b <= a)
        return NAN;
    const struct gpu_sample *x = &s[a].gpus[g], *y = &s[b].gpus[g];
    if (HAS(x->valid, GF_ENERGY) && HAS(y->valid, GF_ENERGY) && y->energy_mj >= x->energy_mj) {
        *counter = true;
        return (double)(y->energy_mj - x->energy_mj) / 1000.0;
    }
    double e = 0;
    size_t pairs = 0;
    for (size_t i = a; i < b; i++) {
        const struct gpu_sample *p = &s[i].gpus[g], *q = &s[i + 1].gpus[g];
        if (!HAS(p->valid, GF_POWER) || !HAS(q->valid, GF_POWER))
            continue;
        double dt = ns_diff_s(s[i].at, s[i + 1].at);
        e += (p->power_mw + q->power_mw) / 2000.0 * dt;
        pairs++;
    }
    return pairs ? e : NAN;
}

static void add_reason_names(char *dst, size_t len, unsigned long long mask)
{
    const char *names[16];
    size_t k = nvml_throttle_names(mask, names, 16);
    size_t used = strlen(dst);
    for (size_t i = 0; i < k; i++) {
        int w = snprintf(dst + used, len - used, "%s%s", used ? "," : "", names[i]);
        if (w < 0 || (size_t)w >= len - used)
            break; /* 256 bytes hold all nine names; this is only a guard */
        used += (size_t)w;
    }
}

/* Index of the first/last sample in [a, b] with server field f (SIZE_MAX if none). */
static size_t find_server(const struct sample *s, size_t a, size_t b, int f, bool last)
{
    for (size_t k = 0; k <= b - a; k++) {
        size_t i = last ? b - k : a + k;
        if (s[i].has_server && HAS(s[i].server.valid, f))
            return i;
    }
    return SIZE_MAX;
}

static void window_server(const struct sample *s, size_t a, size_t b, struct telemetry_window *w)
{
    double kv_sum = 0;
    size_t kv_n = 0;
    for (size_t i = a; i <= b; i++)
        if (s[i].has_server && HAS(s[i].server.valid, SF_KV)) {
            kv_sum += s[i].server.kv_usage_pct;
            kv_n++;
            max_into(&w->kv_cache_usage_max_pct, s[i].server.kv_usage_pct);
        }
    if (kv_n)
        w->kv_cache_usage_mean_pct = kv_sum / (double)kv_n;

    size_t x = find_server(s, a, b, SF_PREFIX, false), y = find_server(s, a, b, SF_PREFIX, true);
    if (x != SIZE_MAX && y > x) {
        double dq = s[y].server.prefix_queries - s[x].server.prefix_queries;
        double dh = s[y].server.prefix_hits - s[x].server.prefix_hits;
        if (dq > 0 && dh >= 0 && dh <= dq)
            w->prefix_cache_hit_rate_pct = 100.0 * dh / dq;
    }
    x = find_server(s, a, b, SF_PREEMPT, false);
    y = find_server(s, a, b, SF_PREEMPT, true);
    if (x != SIZE_MAX && y > x && s[y].server.preemptions >= s[x].server.preemptions)
        w->num_preemptions = s[y].server.preemptions - s[x].server.preemptions;
    x = find_server(s, a, b, SF_TTFT, false);
    y = find_server(s, a, b, SF_TTFT, true);
    if (x != SIZE_MAX && y > x) {
        w->server_ttft_p50_s = prom_hist_quantile(s[x].server.ttft, s[y].server.ttft, 0.50);
        w->server_ttft_p95_s = prom_hist_quantile(s[x].server.ttft, s[y].server.ttft, 0.95);
    }
    x = find_server(s, a, b, SF_ITL, false);
    y = find_server(s, a, b, SF_ITL, true);
    if (x != SIZE_MAX && y > x)
        w->server_itl_p50_s = prom_hist_quantile(s[x].server.itl, s[y].server.itl, 0.50);
}

static void window_gpus(const struct sample *s, size_t a, size_t b, unsigned n_gpus,
                        struct telemetry_window *w)
{
    if (!n_gpus)
        return;
    double p_sum = 0;
    size_t p_n = 0;
    unsigned long long reasons = 0;
    for (size_t i = a; i <= b; i++) {
        double p = 0;
        bool any = false;
        for (unsigned g = 0; g < n_gpus; g++) {
            const struct gpu_sample *x = &s[i].gpus[g];
            if (HAS(x->valid, GF_POWER)) {
                p += x->power_mw / 1000.0;
                any = true;
            }
            if (HAS(x->valid, GF_MEM))
                max_into(&w->gpu_mem_used_max_mib, (double)x->mem_used_b / (1024.0 * 1024.0));
            if (HAS(x->valid, GF_TEMP))
                max_into(&w->gpu_temp_max_c, x->temp_c);
            if (HAS(x->valid, GF_THROTTLE))
                reasons |= x->throttle_mask;
        }
        if (any) {
            p_sum += p;
            p_n++;
            max_into(&w->gpu_power_max_w, p);
        }
    }
    if (p_n)
        w->gpu_power_mean_w = p_sum / (double)p_n;
    double e = 0;
    bool all_counter = true;
    for (unsigned g = 0; g < n_gpus && !isnan(e); g++) {
        bool counter;
        e += gpu_energy(s, a, b, g, &counter);
        all_counter &= counter;
    }
    w->gpu_energy_j = e;
    w->gpu_energy_from_counter = !isnan(e) && all_counter;
    w->throttled = nvml_throttle_is_slowdown(reasons);
    add_reason_names(w->throttle_reasons, sizeof(w->throttle_reasons), reasons);
}

static void window_host(const struct sample *s, size_t a, size_t b, struct telemetry_window *w)
{
    double sum = 0;
    size_t n = 0;
    size_t first = SIZE_MAX, last = SIZE_MAX;
    for (size_t i = a; i <= b; i++) {
        if (!s[i].has_host)
            continue;
        if (HAS(s[i].host.valid, HF_CPU)) {
            sum += s[i].host.cpu_util_pct;
            n++;
        }
        if (HAS(s[i].host.valid, HF_PROC_CPU)) {
            if (first == SIZE_MAX)
                first = i;
            last = i;
        }
    }
    if (n)
        w->host_cpu_util_mean_pct = sum / (double)n;
    if (first != SIZE_MAX && last > first)
        w->runner_cpu_s = s[last].host.proc_cpu_s - s[first].host.proc_cpu_s;
}

void telemetry_window(struct telemetry *t, mono_ns from, mono_ns to, struct telemetry_window *w)
{
    memset(w, 0, sizeof(*w));
    w->gpu_power_mean_w = w->gpu_power_max_w = w->gpu_energy_j = NAN;
    w->gpu_mem_used_max_mib = w->gpu_temp_max_c = NAN;
    w->kv_cache_usage_max_pct = w->kv_cache_usage_mean_pct = NAN;
    w->prefix_cache_hit_rate_pct = w->num_preemptions = NAN;
    w->server_ttft_p50_s = w->server_ttft_p95_s = w->server_itl_p50_s = NAN;
    w->host_cpu_util_mean_pct = w->runner_cpu_s = NAN;
    if (!t || from > to)
        return;
    pthread_mutex_lock(&t->lock);
    /* Samples are in time order: find [a, b], the ones inside the window. */
    size_t a = 0;
    while (a < t->n && t->s[a].at < from)
        a++;
    size_t b = a;
    while (b < t->n && t->s[b].at <= to)
        b++;
    if (b > a) {
        b--; /* inclusive */
        w->n_samples = b - a + 1;
        window_gpus(t->s, a, b, t->n_gpus, w);
        window_server(t->s, a, b, w);
        window_host(t->s, a, b, w);
    }
    pthread_mutex_unlock(&t->lock);
}

/* ---- JSON ----------------------------------------------------------------------------- */

/* A number, or null when it was not read (never 0 in its place). */
static json_t *jnum(bool valid, double v)
{
    return valid && isfinite(v) ? json_real(v) : json_null();
}

/* The processes on the GPU (null when NVML could not list them) and, in MIG mode, its MIG
 * devices (null otherwise). */
static void gpu_lists_json(json_t *o, const struct gpu_sample *x)
{
    const double mib = 1024.0 * 1024.0;
    json_t *procs = json_null(), *migs = json_null();
    if (HAS(x->valid, GF_PROCS)) {
        procs = json_array();
        for (unsigned k = 0; k < x->n_procs; k++) {
            const struct gpu_proc *p = &x->procs[k];
            json_array_append_new(
                procs, json_pack("{s:I, s:o, s:o, s:o}", "pid", (json_int_t)p->pid, "used_mib",
                                 jnum(p->used_b != NVML_MEM_UNKNOWN, (double)p->used_b / mib),
                                 "gpu_instance_id",
                                 p->gpu_instance < 0 ? json_null() : json_integer(p->gpu_instance),
                                 "compute_instance_id",
                                 p->compute_instance < 0 ? json_null()
                                                         : json_integer(p->compute_instance)));
        }
    }
    if (HAS(x->valid, GF_MIG)) {
        migs = json_array();
        for (unsigned k = 0; k < x->n_migs; k++) {
            const struct mig_reading *m = &x->migs[k];
            json_array_append_new(
                migs,
                json_pack("{s:o, s:o, s:o, s:o}", "uuid",
                          m->uuid[0] ? json_string(m->uuid) : json_null(), "gpu_instance_id",
                          m->gpu_instance < 0 ? json_null() : json_integer(m->gpu_instance),
                          "memory_used_mib", jnum(m->mem_valid, (double)m->mem_used_b / mib),
                          "memory_total_mib", jnum(m->mem_valid, (double)m->mem_total_b / mib)));
        }
    }
    json_object_set_new(o, "processes", procs);
    json_object_set_new(o, "mig_devices", migs);
}

static json_t *gpu_json(const struct telemetry *t, unsigned g, const struct gpu_sample *x)
{
    const struct gpu_info *info = nvml_info(t->nvml, g);
    uint32_t v = x->valid;
    json_t *reasons;
    if (HAS(v, GF_THROTTLE)) {
        const char *names[16];
        size_t k = nvml_throttle_names(x->throttle_mask, names, 16);
        reasons = json_array();
        for (size_t i = 0; i < k; i++)
            json_array_append_new(reasons, json_string(names[i]));
    } else {
        reasons = json_null();
    }
    const double mib = 1024.0 * 1024.0;
    json_t *o =
        json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "index",
                  (int)info->index, "name", info->name[0] ? json_string(info->name) : json_null(),
                  "power_w", jnum(HAS(v, GF_POWER), x->power_mw / 1000.0), "energy_j",
                  jnum(HAS(v, GF_ENERGY), (double)x->energy_mj / 1000.0), "temperature_c",
                  jnum(HAS(v, GF_TEMP), x->temp_c), "memory_used_mib",
                  jnum(HAS(v, GF_MEM), (double)x->mem_used_b / mib), "memory_total_mib",
                  jnum(HAS(v, GF_MEM), (double)x->mem_total_b / mib), "utilization_gpu_pct",
                  jnum(HAS(v, GF_UTIL), x->util_gpu_pct), "utilization_memory_pct",
                  jnum(HAS(v, GF_UTIL), x->util_mem_pct), "sm_clock_mhz",
                  jnum(HAS(v, GF_SM_CLOCK), x->sm_clock_mhz), "memory_clock_mhz",
                  jnum(HAS(v, GF_MEM_CLOCK), x->mem_clock_mhz), "throttle_reasons", reasons);
    gpu_lists_json(o, x);
    return o;
}

static json_t *server_json(const struct sample *s)
{
    const struct server_sample *x = &s->server;
    uint32_t v = s->has_server ? x->valid : 0;
    double rate = x->prefix_queries > 0 ? 100.0 * x->prefix_hits / x->prefix_queries : NAN;
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "kv_cache_usage_pct",
                     jnum(HAS(v, SF_KV), x->kv_usage_pct), "num_requests_running",
                     jnum(HAS(v, SF_RUNNING), x->requests_running), "num_requests_waiting",
                     jnum(HAS(v, SF_WAITING), x->requests_waiting), "prefix_cache_hit_rate_pct",
                     jnum(HAS(v, SF_PREFIX), rate), "num_preemptions",
                     jnum(HAS(v, SF_PREEMPT), x->preemptions));
}

static json_t *sample_json(const struct telemetry *t, const struct sample *s)
{
    json_t *gpus = json_array();
    for (unsigned g = 0; g < t->n_gpus; g++)
        json_array_append_new(gpus, gpu_json(t, g, &s->gpus[g]));
    json_t *o = json_pack("{s:f, s:o}", "t", s->t, "gpus", gpus);
    if (t->metrics_url)
        json_object_set_new(o, "server", server_json(s));
    if (t->o.host) {
        uint32_t v = s->has_host ? s->host.valid : 0;
        json_object_set_new(o, "host",
                            json_pack("{s:o, s:o}", "cpu_util_pct",
                                      jnum(HAS(v, HF_CPU), s->host.cpu_util_pct), "mem_used_mib",
                                      jnum(HAS(v, HF_MEM), s->host.mem_used_mib)));
    }
    return o;
}

size_t telemetry_n_samples(struct telemetry *t)
{
    if (!t)
        return 0;
    pthread_mutex_lock(&t->lock);
    size_t n = t->n;
    pthread_mutex_unlock(&t->lock);
    return n;
}

json_t *telemetry_sample_json(struct telemetry *t, size_t i)
{
    if (!t)
        return NULL;
    json_t *o = NULL;
    pthread_mutex_lock(&t->lock);
    if (i < t->n)
        o = sample_json(t, &t->s[i]);
    pthread_mutex_unlock(&t->lock);
    return o;
}

unsigned telemetry_n_gpus(struct telemetry *t)
{
    return t ? t->n_gpus : 0;
}

json_t *telemetry_json(struct telemetry *t)
{
    json_t *sources = json_array();
    json_t *samples = json_array();
    double interval = t ? t->o.interval_s : NAN;
    if (t) {
        pthread_mutex_lock(&t->lock);
        bool server = false, host = false;
        for (size_t i = 0; i < t->n; i++) {
            server |= t->s[i].has_server;
            host |= t->s[i].has_host;
            json_array_append_new(samples, sample_json(t, &t->s[i]));
        }
        pthread_mutex_unlock(&t->lock);
        /* The sources that delivered something, in a fixed order. */
        if (t->n_gpus)
            json_array_append_new(sources, json_string("nvml"));
        if (server)
            json_array_append_new(sources, json_string("prometheus"));
        if (host)
            json_array_append_new(sources, json_string("host"));
    }
    return json_pack("{s:o, s:o, s:o}", "interval_s", jnum(t != NULL, interval), "sources", sources,
                     "samples", samples);
}

json_t *telemetry_gpus_json(struct telemetry *t)
{
    json_t *a = json_array();
    for (unsigned g = 0; t && g < t->n_gpus; g++) {
        const struct gpu_info *i = nvml_info(t->nvml, g);
        const char *drv = nvml_driver_version(t->nvml);
        json_t *o = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o}", "index", (int)i->index, "name",
                              i->name[0] ? json_string(i->name) : json_null(), "uuid",
                              i->uuid[0] ? json_string(i->uuid) : json_null(), "driver_version",
                              drv[0] ? json_string(drv) : json_null(), "memory_total_mib",
                              jnum(i->mem_total_mib >= 0, i->mem_total_mib), "power_limit_w",
                              jnum(i->power_limit_w >= 0, i->power_limit_w), "mig_mode",
                              i->mig_mode < 0 ? json_null() : json_boolean(i->mig_mode));
        if (i->mig_mode == 1) /* NVML: MIG instances share the board's power sensor */
            json_object_set_new(o, "power_energy_scope", json_string("physical_gpu"));
        json_array_append_new(a, o);
    }
    return a;
}
