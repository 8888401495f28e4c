/*
 * load_merge.c - the workers' results as one run.
 *
 * inference-perf's point, taken literally: percentiles of several workers cannot be combined
 * from their summaries, only from their raw records. So each point's request records are
 * read back from every worker's detailed.json (load_records.c: to the nanosecond), moved onto
 * the coordinator's clock with the offset measured for that worker and point, pooled, and
 * handed to the runner's own point_summary_compute() and results writer: the merged files
 * are what one runner would have written for the same requests.
 *
 * One record moves by one offset, so its latencies stay exact; only its place on the common
 * clock carries the offset's uncertainty, and so do the window metrics (duration and the
 * throughputs over it). The offset is interpolated between the point's start and end
 * measurements, in the worker's clock, which absorbs a steady drift.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exitcode.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/version.h"
#include "runner/metrics.h"
#include "runner/progress.h"
#include "runner/results.h"
#include "scale/load_internal.h"

/* One worker's detailed.json. */
struct wfile {
    const char *path;
    json_t *root;
    json_t *load; /* borrowed from root */
    int rank;
    mono_ns t0; /* its clock's origin */
    struct load_sync *syncs;
    size_t n_syncs;
};

struct merge {
    struct wfile *w; /* by rank, ascending */
    size_t n;
    int n_workers;
    mono_ns T0; /* the coordinator's clock origin: the merged files' t0 */
    const json_t *config;
    struct results_writer *rw;     /* the merged files (the caller's, or own_rw) */
    struct results_writer *own_rw; /* opened here */
    bool quiet;
    bool partial; /* a rank is missing, or a worker's point was cut short */
    size_t points;
    double uncertainty_max_s;
};

/* ---- reading the workers' files ---- */

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int wfile_open(struct wfile *f, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    memset(f, 0, sizeof(*f));
    f->path = path;
    f->root = json_load_file(path, 0, &je);
    if (!f->root) {
        snprintf(err, errlen, "%s: not a result file (line %d: %s)", path, je.line, je.text);
        return -EINVAL;
    }
    f->load = json_object_get(f->root, "load");
    json_int_t rank, proto, t0;
    if (!json_is_object(f->load) || !jstr(f->load, "role") ||
        strcmp(jstr(f->load, "role"), "worker") != 0) {
        snprintf(err, errlen,
                 "%s: not a worker's result (no \"load\" with role \"worker\"): merge takes "
                 "the files of `testbench run --worker`",
                 path);
        return -EINVAL;
    }
    if (json_unpack(f->load, "{s:I, s:I}", "protocol", &proto, "rank", &rank) ||
        proto != LOAD_PROTOCOL) {
        snprintf(err, errlen, "%s: a worker's result of another protocol version", path);
        return -EINVAL;
    }
    json_t *clock = json_object_get(f->root, "clock");
    if (json_unpack(clock, "{s:I}", "t0_monotonic_ns", &t0) || t0 <= 0) {
        snprintf(err, errlen, "%s: clock.t0_monotonic_ns is missing", path);
        return -EINVAL;
    }
    f->rank = (int)rank;
    f->t0 = (mono_ns)t0;
    json_t *syncs = json_object_get(f->load, "syncs");
    f->syncs = xcalloc(json_array_size(syncs) + 1, sizeof(*f->syncs));
    size_t i;
    json_t *s;
    json_array_foreach(syncs, i, s)
    {
        if (load_sync_from_json(s, &f->syncs[f->n_syncs++])) {
            snprintf(err, errlen, "%s: load.syncs[%zu] is not a clock measurement", path, i);
            return -EINVAL;
        }
    }
    return 0;
}

static void wfile_release(struct wfile *f)
{
    json_decref(f->root);
    free(f->syncs);
}

static int by_rank(const void *a, const void *b)
{
    const struct wfile *x = a, *y = b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

/* Every file of the same run, each rank once. */
static int check_same_run(struct merge *m, char *err, size_t errlen)
{
    const json_t *l0 = m->w[0].load;
    json_int_t n, T0;
    if (json_unpack((json_t *)l0, "{s:I, s:I}", "n_workers", &n, "coordinator_t0_ns", &T0) ||
        n < 1) {
        snprintf(err, errlen, "%s: load.n_workers or load.coordinator_t0_ns is missing",
                 m->w[0].path);
        return -EINVAL;
    }
    m->n_workers = (int)n;
    m->T0 = (mono_ns)T0;
    for (size_t i = 0; i < m->n; i++) {
        const struct wfile *f = &m->w[i];
        const char *run = jstr(f->load, "run_id"), *run0 = jstr(l0, "run_id");
        if (!run || !run0 || strcmp(run, run0) != 0) {
            snprintf(err, errlen, "%s and %s are results of different runs (load.run_id)",
                     m->w[0].path, f->path);
            return -EINVAL;
        }
        if (f->rank < 0 || f->rank >= m->n_workers || (i && f->rank == m->w[i - 1].rank)) {
            snprintf(err, errlen, "%s: rank %d given twice or out of 0..%d", f->path, f->rank,
                     m->n_workers - 1);
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- the common clock ---- */

/* Worker f's offset at its clock time t during point p, and its uncertainty. */
static int64_t wfile_offset(const struct wfile *f, size_t p, mono_ns t, int64_t *unc)
{
    const struct load_sync *s = NULL, *e = NULL, *near = NULL;
    for (size_t i = 0; i < f->n_syncs; i++) {
        const struct load_sync *x = &f->syncs[i];
        if (x->point == p && !x->end)
            s = x;
        else if (x->point == p)
            e = x;
        if (x->point <= p)
            near = x; /* the last measurement before it: a point without its own */
    }
    if (!s)
        s = e ? e : near ? near : &f->syncs[0];
    if (!e || e->t_ns <= s->t_ns) {
        *unc = s->uncertainty_ns;
        return s->offset_ns;
    }
    *unc = s->uncertainty_ns > e->uncertainty_ns ? s->uncertainty_ns : e->uncertainty_ns;
    double x = (double)(int64_t)(t - s->t_ns) / (double)(int64_t)(e->t_ns - s->t_ns);
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    return s->offset_ns + (int64_t)llround(x * (double)(e->offset_ns - s->offset_ns));
}

/* ---- one point ---- */

static const json_t *tenant_config(const struct merge *m, const char *tenant)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(m->config, "tenants"), i, t)
    {
        if (tenant && jstr(t, "name") && strcmp(jstr(t, "name"), tenant) == 0)
            return t;
    }
    return NULL;
}

static int tenant_index(const struct merge *m, const char *tenant)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(m->config, "tenants"), i, t)
    {
        if (tenant && jstr(t, "name") && strcmp(jstr(t, "name"), tenant) == 0)
            return (int)i;
    }
    return 0;
}

static double jnum_or_nan(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void slo_from_json(const json_t *o, struct slo_cfg *s)
{
    s->ttft_ms = jnum_or_nan(o, "ttft_ms");
    s->itl_ms = jnum_or_nan(o, "itl_ms");
    s->tpot_ms = jnum_or_nan(o, "tpot_ms");
    s->e2e_ms = jnum_or_nan(o, "e2e_ms");
    s->percentile = jnum_or_nan(o, "percentile");
}

/* A distribution as results.c writes it, back in seconds (scale: 1e3 for _ms). */
static void dist_from_json(const json_t *o, double scale, struct dist *d)
{
    d->n = (size_t)json_integer_value(json_object_get(o, "n"));
    d->mean = jnum_or_nan(o, "mean") / scale;
    d->p50 = jnum_or_nan(o, "p50") / scale;
    d->p90 = jnum_or_nan(o, "p90") / scale;
    d->p95 = jnum_or_nan(o, "p95") / scale;
    d->p99 = jnum_or_nan(o, "p99") / scale;
    d->p999 = jnum_or_nan(o, "p99_9") / scale;
    d->min = jnum_or_nan(o, "min") / scale;
    d->max = jnum_or_nan(o, "max") / scale;
    d->std = jnum_or_nan(o, "std") / scale;
}

/* A point's telemetry window as results.c writes it; false when null. */
static bool window_from_json(const json_t *o, struct telemetry_window *w)
{
    if (!json_is_object(o))
        return false;
    memset(w, 0, sizeof(*w));
    w->n_samples = (size_t)json_integer_value(json_object_get(o, "n_samples"));
    w->gpu_power_mean_w = jnum_or_nan(o, "gpu_power_mean_w");
    w->gpu_power_max_w = jnum_or_nan(o, "gpu_power_max_w");
    w->gpu_energy_j = jnum_or_nan(o, "gpu_energy_j");
    const char *src = jstr(o, "gpu_energy_source");
    w->gpu_energy_from_counter = src && strcmp(src, "counter") == 0;
    w->gpu_mem_used_max_mib = jnum_or_nan(o, "gpu_mem_used_max_mib");
    w->gpu_temp_max_c = jnum_or_nan(o, "gpu_temp_max_c");
    w->throttled = json_is_true(json_object_get(o, "throttled"));
    size_t i, len = 0;
    json_t *r;
    json_array_foreach(json_object_get(o, "throttle_reasons"), i, r)
    {
        len += (size_t)snprintf(w->throttle_reasons + len, sizeof(w->throttle_reasons) - len,
                                "%s%s", i ? "," : "", json_string_value(r));
        if (len >= sizeof(w->throttle_reasons))
            break;
    }
    w->kv_cache_usage_max_pct = jnum_or_nan(o, "kv_cache_usage_max_pct");
    w->kv_cache_usage_mean_pct = jnum_or_nan(o, "kv_cache_usage_mean_pct");
    w->prefix_cache_hit_rate_pct = jnum_or_nan(o, "prefix_cache_hit_rate_pct");
    w->num_preemptions = jnum_or_nan(o, "num_preemptions");
    w->server_ttft_p50_s = jnum_or_nan(o, "server_ttft_p50_ms") / 1e3;
    w->server_ttft_p95_s = jnum_or_nan(o, "server_ttft_p95_ms") / 1e3;
    w->server_itl_p50_s = jnum_or_nan(o, "server_itl_p50_ms") / 1e3;
    w->host_cpu_util_mean_pct = jnum_or_nan(o, "host_cpu_util_mean_pct");
    w->runner_cpu_s = jnum_or_nan(o, "runner_cpu_s");
    return true;
}

static enum arrival arrival_of(const char *name)
{
    for (int a = ARRIVAL_POISSON; a <= ARRIVAL_GAMMA; a++)
        if (name && strcmp(name, arrival_name((enum arrival)a)) == 0)
            return (enum arrival)a;
    return ARRIVAL_POISSON;
}

/* Worker f's entry for point p and tenant, or NULL. */
static const json_t *entry_of(const struct wfile *f, size_t p, const char *tenant)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(f->root, "points"), i, e)
    {
        const json_t *pt = json_object_get(e, "point");
        const char *t = jstr(e, "tenant");
        if (json_is_integer(pt) && (size_t)json_integer_value(pt) == p &&
            ((!t && !tenant) || (t && tenant && strcmp(t, tenant) == 0)))
            return e;
    }
    return NULL;
}

/* What the point's identity and client self-check are across workers: the caps add up, the
 * self-check is the worst worker's (its dispatch lag p99), any distortion or cut marks it. */
static void info_merge(struct point_info *pi, const json_t *e, bool first, struct dist *worst_p99)
{
    const json_t *sum = json_object_get(e, "summary"), *cl = json_object_get(sum, "client");
    const json_t *conc = json_object_get(e, "concurrency"), *rate = json_object_get(e, "rate");
    int cap = json_is_integer(conc) ? (int)json_integer_value(conc) : 0;
    if (first) {
        pi->tenant = jstr(e, "tenant");
        pi->model = jstr(e, "model");
        const json_t *ctx = json_object_get(e, "context_length");
        pi->context_length = json_is_integer(ctx) ? (int)json_integer_value(ctx) : 0;
        pi->rate = json_is_string(rate) ? INFINITY : jnum_or_nan(e, "rate");
        pi->arrival = arrival_of(jstr(e, "arrival"));
        pi->num_requests = (int)json_integer_value(json_object_get(sum, "num_requests"));
        pi->concurrency = cap;
    } else {
        pi->concurrency = pi->concurrency > 0 && cap > 0 ? pi->concurrency + cap : 0;
    }
    struct dist dl, ll;
    dist_from_json(json_object_get(cl, "dispatch_lag_ms"), 1e3, &dl);
    dist_from_json(json_object_get(cl, "loop_lag_ms"), 1e3, &ll);
    if (first || dl.p99 > worst_p99->p99) {
        *worst_p99 = dl;
        pi->dispatch_lag_s = dl;
        pi->loop_lag_s = ll;
    }
    pi->client_distorted |= json_is_true(json_object_get(cl, "client_distorted"));
    pi->partial |= json_is_true(json_object_get(e, "partial"));
    const json_t *ss = json_object_get(sum, "sessions");
    pi->session_turns_skipped += (size_t)json_integer_value(json_object_get(ss, "turns_skipped"));
}

struct pool {
    struct req_record *v;
    size_t n, cap;
};

static int pool_add_entry(struct merge *m, struct pool *pl, const struct wfile *f, size_t p,
                          int tenant, const json_t *e, char *err, size_t errlen)
{
    size_t i;
    json_t *rj;
    json_array_foreach(json_object_get(e, "requests"), i, rj)
    {
        if (pl->n == pl->cap) {
            pl->cap = pl->cap ? 2 * pl->cap : 256;
            pl->v = xreallocarray(pl->v, pl->cap, sizeof(*pl->v));
        }
        struct req_record *r = &pl->v[pl->n];
        char why[256];
        if (load_record_from_json(rj, f->t0, tenant, r, why, sizeof(why))) {
            snprintf(err, errlen, "%s: point %zu: %s", f->path, p, why);
            return -EINVAL;
        }
        pl->n++;
        int64_t unc;
        int64_t off = wfile_offset(f, p, r->t_sent ? r->t_sent : f->t0, &unc);
        load_record_shift(r, -off); /* worker clock -> coordinator clock, whole record */
        double u = (double)unc / 1e9;
        m->uncertainty_max_s = u > m->uncertainty_max_s ? u : m->uncertainty_max_s;
    }
    return 0;
}

static void pool_release(struct pool *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        req_record_release(&pl->v[i]);
    free(pl->v);
}

/* Pools point p's tenant over every worker and adds the merged point. */
static int merge_point(struct merge *m, size_t p, const char *tenant, char *err, size_t errlen)
{
    struct pool pl = {0};
    struct point_info pi;
    memset(&pi, 0, sizeof(pi));
    struct dist worst;
    const json_t *tw_json = NULL;
    bool first = true;
    int tenant_i = tenant_index(m, tenant), rc = 0;
    for (size_t k = 0; k < m->n && rc == 0; k++) {
        const json_t *e = entry_of(&m->w[k], p, tenant);
        if (!e) {
            pi.partial = true; /* this worker never reached it */
            continue;
        }
        info_merge(&pi, e, first, &worst);
        if (first) /* GPU and server telemetry: the lowest rank's (docs/SCALE_LOAD.md) */
            tw_json = json_object_get(json_object_get(e, "summary"), "telemetry");
        first = false;
        rc = pool_add_entry(m, &pl, &m->w[k], p, tenant_i, e, err, errlen);
    }
    if (rc == 0 && !first) {
        struct slo_cfg slo;
        slo_from_json(json_object_get(tenant_config(m, tenant), "slo"), &slo);
        struct point_summary s;
        point_summary_compute(&s, pl.v, pl.n, &slo);
        struct telemetry_window tw;
        bool have_tw = window_from_json(tw_json, &tw);
        pi.benchmark = jstr(json_object_get(m->config, "benchmark"), "name");
        pi.point = p;
        pi.partial |= m->n < (size_t)m->n_workers;
        m->partial |= pi.partial;
        results_add_point(m->rw, &pi, &s, have_tw ? &tw : NULL, pl.v, pl.n, m->T0);
        m->points++;
        if (!m->quiet)
            progress_print_summary(stdout, &pi, &s, have_tw ? &tw : NULL);
    }
    pool_release(&pl);
    return rc;
}

/* The (point, tenant) pairs in run order: by point, tenants as the workers wrote them. */
static int merge_points(struct merge *m, char *err, size_t errlen)
{
    size_t most = 0;
    bool any = false;
    for (size_t k = 0; k < m->n; k++) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(m->w[k].root, "points"), i, e)
        {
            size_t p = (size_t)json_integer_value(json_object_get(e, "point"));
            most = !any || p > most ? p : most;
            any = true;
        }
    }
    for (size_t p = 0; any && p <= most; p++) {
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(m->config, "tenants"), i, t)
        {
            bool seen = false;
            for (size_t k = 0; k < m->n && !seen; k++)
                seen = entry_of(&m->w[k], p, jstr(t, "name")) != NULL;
            if (!seen)
                continue; /* skipped by every worker (a context longer than the server's) */
            int rc = merge_point(m, p, jstr(t, "name"), err, errlen);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- the merged files ---- */

/* The lowest rank's telemetry file, its sample times moved onto the common clock. */
static json_t *merged_telemetry(const struct merge *m)
{
    const struct wfile *f = &m->w[0];
    size_t len = strlen(f->path), sl = strlen("_detailed.json");
    if (len < sl || strcmp(f->path + len - sl, "_detailed.json") != 0)
        return NULL;
    char *tp = xasprintf("%.*s_telemetry.json", (int)(len - sl), f->path);
    json_t *tel = json_load_file(tp, 0, NULL);
    free(tp);
    if (!tel)
        return NULL;
    int64_t unc;
    int64_t off = wfile_offset(f, 0, f->t0, &unc);
    double shift_s = (double)((int64_t)(f->t0 - m->T0) - off) / 1e9;
    json_t *lists[2] = {json_object_get(tel, "samples"), NULL};
    size_t i, j;
    json_t *o, *s;
    json_array_foreach(lists[0], i, s)
    {
        json_object_set_new(s, "t", json_real(jnum_or_nan(s, "t") + shift_s));
    }
    json_array_foreach(json_object_get(tel, "other_servers"), j, o)
    {
        json_array_foreach(json_object_get(o, "samples"), i, s)
        {
            json_object_set_new(s, "t", json_real(jnum_or_nan(s, "t") + shift_s));
        }
    }
    return tel;
}

static json_t *merged_load(const struct merge *m)
{
    json_t *workers = json_array(), *missing = json_array();
    size_t k = 0;
    for (int r = 0; r < m->n_workers; r++) {
        if (k >= m->n || m->w[k].rank != r) {
            json_array_append_new(missing, json_integer(r));
            continue;
        }
        const struct wfile *f = &m->w[k++];
        int64_t unc_max = 0, unc;
        for (size_t i = 0; i < f->n_syncs; i++)
            unc_max = f->syncs[i].uncertainty_ns > unc_max ? f->syncs[i].uncertainty_ns : unc_max;
        int64_t off = f->n_syncs ? wfile_offset(f, 0, f->t0, &unc) : 0;
        json_array_append_new(workers, json_pack("{s:i, s:O?, s:O?, s:s, s:f, s:f, s:O?}", "rank",
                                                 f->rank, "host", json_object_get(f->load, "host"),
                                                 "pid", json_object_get(f->load, "pid"), "file",
                                                 f->path, "offset_s", (double)off / 1e9,
                                                 "uncertainty_s", (double)unc_max / 1e9, "syncs",
                                                 json_object_get(f->load, "syncs")));
    }
    const json_t *l0 = m->w[0].load;
    return json_pack("{s:s, s:i, s:O?, s:i, s:I, s:O?, s:O?, s:o, s:f, s:o}", "role", "merged",
                     "protocol", LOAD_PROTOCOL, "run_id", json_object_get(l0, "run_id"),
                     "n_workers", m->n_workers, "coordinator_t0_ns", (json_int_t)m->T0,
                     "config_fingerprint", json_object_get(l0, "config_fingerprint"),
                     "output_prefix", json_object_get(l0, "output_prefix"), "ranks_missing",
                     missing, "clock_uncertainty_s", m->uncertainty_max_s, "workers", workers);
}

static json_t *tool_json(void)
{
    return json_pack("{s:s, s:s, s:s}", "name", "testbench", "version", TB_VERSION, "git", TB_GIT);
}

static json_t *copy_of(const json_t *root, const char *key)
{
    const json_t *v = json_object_get(root, key);
    return v ? json_deep_copy(v) : NULL;
}

/* Opens the merged files' writer in out_dir unless the caller gave one (m->rw). */
static int merge_open(struct merge *m, const char *out_dir, const char *prefix)
{
    char err[1024];
    if (m->rw)
        return TB_EXIT_OK;
    if (!prefix)
        prefix = jstr(m->w[0].load, "output_prefix");
    if (results_open(&m->own_rw, out_dir, prefix, err, sizeof(err))) {
        log_error("%s", err);
        return TB_EXIT_RUNTIME;
    }
    m->rw = m->own_rw;
    return TB_EXIT_OK;
}

static int merge_write(struct merge *m, char **path)
{
    char err[1024];
    const json_t *r0 = m->w[0].root;
    m->config = json_object_get(r0, "config");
    results_set_meta(m->rw, jstr(r0, "started_at") ? jstr(r0, "started_at") : "", tool_json(),
                     copy_of(r0, "config"), copy_of(r0, "server"), copy_of(r0, "host"),
                     copy_of(r0, "gpus"));
    results_set_clock(m->rw, m->T0);
    int rc = merge_points(m, err, sizeof(err));
    if (rc) {
        log_error("merge: %s", err);
        return TB_EXIT_RUNTIME;
    }
    results_set_load(m->rw, merged_load(m));
    json_t *tel = merged_telemetry(m);
    rc = results_flush(m->rw, tel, err, sizeof(err));
    json_decref(tel);
    if (rc) {
        log_error("%s", err);
        return TB_EXIT_RUNTIME;
    }
    if (path)
        *path = xstrdup(results_path(m->rw, "detailed"));
    return TB_EXIT_OK;
}

static int merge_run(struct merge *m, const char *const *paths, size_t n, const char *out_dir,
                     const char *prefix, char **merged_path)
{
    m->w = xcalloc(n ? n : 1, sizeof(*m->w));
    char err[1024] = "";
    int ec = TB_EXIT_OK;
    for (size_t i = 0; i < n && ec == TB_EXIT_OK; i++, m->n++)
        if (wfile_open(&m->w[i], paths[i], err, sizeof(err)))
            ec = TB_EXIT_USAGE;
    if (ec == TB_EXIT_OK && n == 0) {
        snprintf(err, sizeof(err), "no worker results to merge");
        ec = TB_EXIT_USAGE;
    }
    if (ec == TB_EXIT_OK) {
        qsort(m->w, m->n, sizeof(*m->w), by_rank);
        if (check_same_run(m, err, sizeof(err)))
            ec = TB_EXIT_USAGE;
    }
    if (ec != TB_EXIT_OK)
        log_error("merge: %s", err);
    if (ec == TB_EXIT_OK)
        ec = merge_open(m, out_dir, prefix);
    if (ec == TB_EXIT_OK)
        ec = merge_write(m, merged_path);
    if (ec == TB_EXIT_OK && m->n < (size_t)m->n_workers) {
        log_warn("merge: %zu of %d workers' results were merged: the points are marked partial",
                 m->n, m->n_workers);
        ec = TB_EXIT_RUNTIME;
    }
    if (ec == TB_EXIT_OK && m->points == 0) {
        log_error("merge: the workers' results hold no point");
        ec = TB_EXIT_RUNTIME;
    }
    for (size_t i = 0; i < m->n; i++)
        wfile_release(&m->w[i]);
    free(m->w);
    results_free(m->own_rw);
    return ec;
}

int load_merge_into(struct results_writer *rw, const char *const *paths, size_t n, bool quiet,
                    char **merged_path)
{
    struct merge m;
    memset(&m, 0, sizeof(m));
    m.quiet = quiet;
    m.rw = rw;
    return merge_run(&m, paths, n, NULL, NULL, merged_path);
}

int load_merge_files(const char *const *paths, size_t n, const char *out_dir, const char *prefix,
                     bool quiet, char **merged_path)
{
    struct merge m;
    memset(&m, 0, sizeof(m));
    m.quiet = quiet;
    return merge_run(&m, paths, n, out_dir, prefix, merged_path);
}
