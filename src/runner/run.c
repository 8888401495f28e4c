/*
 * run.c - `testbench run`: loads a config, finds (or starts) the server, sets up the run
 * (prompt builders, telemetry, result files, the event loop and HTTP client), then runs each
 * point of the sweep (context × concurrency × rate) with point.c, all tenants at once. After
 * each point the summaries and files are rewritten, so an interrupted run keeps every
 * finished request; a last flush goes to a fallback directory when the asked one fails.
 */
#include "runner/run.h"
#include "runner/run_internal.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "core/exitcode.h"
#include "core/http.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/text.h"
#include "core/thread.h"
#include "core/version.h"
#include "engine/calibration.h"
#include "runner/client.h"
#include "runner/estimate.h"
#include "runner/probe.h"
#include "runner/progress.h"
#include "runner/ptimer.h"
#include "runner/prompt.h"
#include "runner/results.h"
#include "runner/schedule.h"
#include "runner/session.h"
#include "sim/sim.h"
#include "telemetry/telemetry.h"
#include "workload/workload.h"

/* Descriptors the runner needs besides one per stream: stdio, result files, the event loop's
 * own, telemetry's scrape and NVML, DNS, /tokenize calls. */
#define FD_RESERVE 64

static volatile sig_atomic_t interrupted;
/* The same, for other threads (the prompt pools' /tokenize calls): a sig_atomic_t is for the
 * handler and the thread it interrupts, a lock-free atomic for every thread. */
static atomic_bool interrupted_all;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    atomic_store(&interrupted_all, true);
}

struct run_args {
    const char *config;
    struct run_options o;
};

bool run_interrupted(void)
{
    return interrupted != 0;
}

uint64_t run_point_seed(uint64_t seed, size_t point, size_t tenant, const char *what)
{
    char key[128];
    int n = snprintf(key, sizeof(key), "%zu/%zu/%s", point, tenant, what);
    return hash64(key, (unsigned long)n, seed);
}

uint64_t run_seed(const struct runner *r, size_t point, size_t tenant, const char *what)
{
    return run_point_seed(r->cfg.benchmark.seed, point, tenant, what);
}

static struct telemetry *telem_main(const struct runner *r)
{
    return r->n_telems ? r->telems[0] : NULL;
}

int runner_flush(struct runner *r)
{
    char err[512];
    for (size_t k = 0; k < r->n_telems; k++)
        if (r->telems[k])
            telemetry_sample_now(r->telems[k]);
    json_t *tj = telem_main(r) ? telemetry_json(telem_main(r)) : NULL;
    /* Other endpoints' /metrics samples, beside the main timeline (same clock). */
    json_t *others = json_array();
    for (size_t k = 1; k < r->n_telems; k++) {
        if (!r->telems[k])
            continue;
        json_t *oj = telemetry_json(r->telems[k]);
        json_array_append_new(others, json_pack("{s:s, s:O}", "endpoint", r->telem_endpoint[k],
                                                "samples", json_object_get(oj, "samples")));
        json_decref(oj);
    }
    if (tj && json_array_size(others))
        json_object_set(tj, "other_servers", others);
    json_decref(others);
    const struct run_share *sh = r->args.share;
    if (sh)
        results_set_load(r->rw, sh->describe(sh->ctx));
    int rc = results_flush(r->rw, tj, err, sizeof(err));
    json_decref(tj);
    if (rc && strcmp(err, r->write_error) != 0) {
        log_error("%s%s", err,
                  r->out->n_points ? "; the results are kept in memory and written again after "
                                     "the next point"
                                   : "");
        snprintf(r->write_error, sizeof(r->write_error), "%s", err);
    } else if (!rc && r->write_failed) {
        log_info("results written again: %s", results_path(r->rw, "detailed"));
        r->write_error[0] = '\0';
    }
    r->write_failed = rc != 0;
    return rc;
}

/* Where the results go when their directory cannot take them at the end:
 * TESTBENCH_FALLBACK_DIR, else $TMPDIR, else /tmp. */
static const char *fallback_dir(void)
{
    const char *d = getenv("TESTBENCH_FALLBACK_DIR");
    if (!d || !*d)
        d = getenv("TMPDIR");
    return d && *d ? d : "/tmp";
}

/* The last flush: when the output directory still fails, the measured points go to the
 * fallback directory rather than being lost. 0 when they were written somewhere. */
static int flush_final(struct runner *r)
{
    if (runner_flush(r) == 0)
        return 0;
    char err[512];
    const char *dir = fallback_dir();
    char *from = xstrdup(results_path(r->rw, "detailed"));
    int rc = results_relocate(r->rw, dir, err, sizeof(err));
    if (rc == 0)
        rc = runner_flush(r);
    if (rc == 0)
        log_error("%s could not be written; every measured point is in %s instead (and the "
                  "matching _summary.csv, _telemetry.json)",
                  from, results_path(r->rw, "detailed"));
    else
        log_error("the results could not be written to %s either: they are lost", dir);
    free(from);
    return -EIO; /* not where they were asked for: exit 1 either way */
}

/* ---- set-up ----------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct run_args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"endpoint", required_argument, NULL, 'e'},
        {"model", required_argument, NULL, 'm'},  {"output-dir", required_argument, NULL, 'o'},
        {"sim", no_argument, NULL, 's'},          {"quiet", no_argument, NULL, 'q'},
        {"wait", required_argument, NULL, 'w'},   {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    a->o.wait_s = 5;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:e:m:o:sqw:t:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 'e':
            a->o.endpoint = optarg;
            break;
        case 'm':
            a->o.model = optarg;
            break;
        case 'o':
            a->o.output_dir = optarg;
            break;
        case 's':
            a->o.sim = true;
            break;
        case 'q':
            a->o.quiet = true;
            break;
        case 'w':
            /* NAN compares false with everything and never ended the wait: refused, as are
             * negative values; "inf" waits until the server is ready or a signal comes. */
            a->o.wait_s = strtod(optarg, &end);
            if (end == optarg || *end || isnan(a->o.wait_s) || a->o.wait_s < 0) {
                log_error("run: --wait expects seconds (a number >= 0, or inf), got '%s'", optarg);
                return -EINVAL;
            }
            break;
        case 't': {
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end || n < 1 || n > 256) {
                log_error("run: --threads expects a number of loop threads 1..256, got '%s'",
                          optarg);
                return -EINVAL;
            }
            a->o.threads = (int)n;
            break;
        }
        default:
            return -EINVAL;
        }
    }
    if (optind < argc) {
        log_error("run: unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (!a->config) {
        log_error("run: --config FILE is required (see 'testbench help run')");
        return -EINVAL;
    }
    return 0;
}

int run_parse_args(int argc, char **argv, const char **config, struct run_options *o)
{
    struct run_args a;
    int rc = parse_args(argc, argv, &a);
    *config = a.config;
    *o = a.o;
    return rc;
}

static int apply_overrides(struct runner *r)
{
    struct config *c = &r->cfg;
    if (r->args.endpoint)
        config_set_endpoint(c, r->args.endpoint);
    if (r->args.model)
        config_set_model(c, r->args.model);
    if (r->args.output_dir) {
        free(c->benchmark.output_dir);
        c->benchmark.output_dir = xstrdup(r->args.output_dir);
    }
    if (r->args.sim)
        c->server.sim.enabled = true;
    char err[1024];
    if (config_check(c, err, sizeof(err))) {
        log_error("%s", err);
        return -EINVAL;
    }
    return 0;
}

/* The simulator serves the config's model; tenants naming other models become LoRA adapters. */
int run_sim_start(const struct config *c, bool quiet, struct sim_server **out)
{
    const struct sim_cfg *s = &c->server.sim;
    struct sim_options o;
    sim_options_init(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.quiet = quiet;
    o.seed = s->seed;
    o.engine.gpu = s->gpu;
    o.engine.model = s->model ? s->model : c->model.name;
    o.engine.quantization = s->quantization ? s->quantization : c->model.quantization;
    o.engine.kv_cache_dtype = s->kv_cache_dtype;
    o.reasoning_tokens = s->reasoning_tokens;
    o.prompt_tokens_details = s->enable_prompt_tokens_details;
    o.engine.catalog_dir = s->catalog;
    struct cost_calibration cal;
    if (s->calibration) {
        char err[512];
        cost_calibration_default(&cal);
        if (cost_calibration_load(&cal, s->calibration, err, sizeof(err))) {
            log_error("run: server.sim.calibration: %s", err);
            return -EINVAL;
        }
        o.engine.calibration = &cal;
    }
    o.engine.max_model_len = s->max_model_len;
    o.engine.gpu_memory_utilization = s->gpu_memory_utilization;
    o.engine.max_num_seqs = s->max_num_seqs;
    o.engine.max_num_batched_tokens = s->max_num_batched_tokens;
    o.engine.enable_prefix_caching =
        s->enable_prefix_caching >= 0 ? s->enable_prefix_caching : c->model.enable_prefix_caching;
    o.engine.tensor_parallel_size =
        s->tensor_parallel_size ? s->tensor_parallel_size : c->model.tensor_parallel_size;
    const char **lora = xcalloc(c->n_tenants, sizeof(*lora));
    char **lora_own = xcalloc(c->n_tenants, sizeof(*lora_own));
    size_t n_lora = 0;
    for (size_t t = 0; t < c->n_tenants; t++) {
        const char *m = c->tenants[t].model;
        if (m && o.engine.model && strcmp(m, o.engine.model) != 0) {
            lora_own[n_lora] = xasprintf("%s=sim", m);
            lora[n_lora] = lora_own[n_lora];
            n_lora++;
        }
    }
    o.lora_modules = lora;
    o.n_lora_modules = n_lora;
    o.engine.num_lora_slots = (int)n_lora;
    char err[1024];
    int rc = sim_server_start(out, &o, err, sizeof(err));
    for (size_t i = 0; i < n_lora; i++)
        free(lora_own[i]);
    free(lora_own);
    free(lora);
    if (rc)
        log_error("cannot start the built-in simulator: %s", err);
    return rc;
}

static int start_sim(struct runner *r)
{
    const struct config *c = &r->cfg;
    int rc = run_sim_start(c, r->args.quiet, &r->sim);
    if (rc)
        return rc;
    char *ep = xasprintf("http://127.0.0.1:%d", sim_server_port(r->sim));
    log_info("simulator listening on %s", ep);
    for (size_t t = 0; t < c->n_tenants; t++) {
        free(r->tenant_endpoint[t]);
        r->tenant_endpoint[t] = xstrdup(ep);
    }
    free(ep);
    return 0;
}

/* Probes each tenant's server; fills model names and max lengths. Returns an exit code. */
/* An earlier tenant on the same server, or -1: its answers are reused, not asked again. */
static long same_server(const struct runner *r, size_t t)
{
    for (size_t u = 0; u < t; u++)
        if (strcmp(r->tenant_endpoint[u], r->tenant_endpoint[t]) == 0)
            return (long)u;
    return -1;
}

/* Checks one tenant's model against the server's vLLM extensions (once per server and model). */
static void tenant_extensions(struct runner *r, size_t t, long u)
{
    if (u >= 0 && strcmp(r->tenant_model[u], r->tenant_model[t]) == 0) {
        r->tenant_ignore_eos[t] = r->tenant_ignore_eos[u];
        return;
    }
    probe_extensions(r->tenant_endpoint[t], r->cfg.server.api == API_CHAT, r->tenant_model[t],
                     r->api_key, &r->tenant_ignore_eos[t]);
    if (!r->tenant_ignore_eos[t])
        log_warn("%s rejects vLLM's ignore_eos/min_tokens: sending max_tokens alone, so "
                 "outputs may end before completion_tokens (see output_tokens per request)",
                 r->tenant_endpoint[t]);
}

/* Probes each distinct server once; fills every tenant's model name and max length. */
static int probe_servers(struct runner *r, json_t **server_json)
{
    const struct config *c = &r->cfg;
    *server_json = NULL;
    for (size_t t = 0; t < c->n_tenants; t++) {
        long u = same_server(r, t);
        if (u >= 0) {
            const char *model = c->tenants[t].model ? c->tenants[t].model : r->tenant_model[u];
            r->tenant_model[t] = xstrdup(model);
            r->tenant_max_len[t] = r->tenant_max_len[u];
            tenant_extensions(r, t, u);
            continue;
        }
        struct server_info si;
        char err[1024];
        int rc =
            probe_server(r->tenant_endpoint[t], r->api_key, r->args.wait_s, &si, err, sizeof(err));
        if (rc == -EINTR) {
            server_info_release(&si);
            return TB_EXIT_INTERRUPTED;
        }
        if (rc) {
            log_error("%s", err);
            server_info_release(&si);
            return rc == -EACCES ? TB_EXIT_RUNTIME : TB_EXIT_UNREACHABLE;
        }
        const char *model = c->tenants[t].model;
        if (!model && si.n_models)
            model = si.models[0];
        if (!model) {
            log_error("%s does not list a model in /v1/models; set model.name in the config or "
                      "--model",
                      r->tenant_endpoint[t]);
            server_info_release(&si);
            return TB_EXIT_USAGE;
        }
        r->tenant_model[t] = xstrdup(model);
        /* vLLM reports one max_model_len for the base model and its adapters. */
        r->tenant_max_len[t] = si.max_model_len;
        tenant_extensions(r, t, -1);
        if (t == 0)
            *server_json = server_info_json(&si, model);
        /* The server's strings may hold terminal escapes (a title, a cleared screen). */
        char shown_model[256], shown_version[128];
        term_clean(shown_model, sizeof(shown_model), model);
        term_clean(shown_version, sizeof(shown_version), si.version ? si.version : "unknown");
        log_info("server %s: model %s, version %s, max_model_len %ld", r->tenant_endpoint[t],
                 shown_model, shown_version, r->tenant_max_len[t]);
        server_info_release(&si);
    }
    return TB_EXIT_OK;
}

static json_t *tool_json(void)
{
    return json_pack("{s:s, s:s, s:s}", "name", "testbench", "version", TB_VERSION, "git", TB_GIT);
}

static int open_results(struct runner *r, json_t *server_json)
{
    char err[1024], started[64];
    int rc = results_open(&r->rw, r->cfg.benchmark.output_dir, r->cfg.benchmark.output_prefix, err,
                          sizeof(err));
    if (rc) {
        log_error("%s", err);
        json_decref(server_json);
        return rc;
    }
    clock_wall_iso(started, sizeof(started));
    results_set_clock(r->rw, r->t0);
    results_set_meta(r->rw, started, tool_json(), config_to_json(&r->cfg), server_json,
                     host_info_json(),
                     telem_main(r) ? telemetry_gpus_json(telem_main(r)) : json_array());
    return 0;
}

/* One sampler for the GPUs, the host and the first tenant's server; one more per other
 * server endpoint, scraping its /metrics only. */
static void start_telemetry(struct runner *r)
{
    const struct telemetry_cfg *tc = &r->cfg.telemetry;
    size_t n = r->cfg.n_tenants;
    r->telems = xcalloc(n, sizeof(*r->telems));
    r->telem_endpoint = xcalloc(n, sizeof(*r->telem_endpoint));
    r->tenant_telem = xcalloc(n, sizeof(*r->tenant_telem));
    for (size_t t = 0; t < n; t++) {
        size_t k = 0;
        while (k < r->n_telems && strcmp(r->telem_endpoint[k], r->tenant_endpoint[t]) != 0)
            k++;
        if (k == r->n_telems && k > 0 && !tc->scrape_server_metrics)
            k = 0; /* nothing to sample per server */
        r->tenant_telem[t] = k;
        if (k < r->n_telems)
            continue;
        char *url =
            tc->scrape_server_metrics ? xasprintf("%s/metrics", r->tenant_endpoint[t]) : NULL;
        struct telemetry_options o = {
            .interval_s = tc->sample_interval_sec,
            .gpu = k == 0 && tc->collect_gpu_stats,
            .metrics_url = url,
            .api_key = r->api_key,
            .host = k == 0,
            .t0 = r->t0,
        };
        r->telem_endpoint[k] = xstrdup(r->tenant_endpoint[t]);
        r->n_telems++;
        if (telemetry_start(&r->telems[k], &o) != 0) {
            log_warn("telemetry for %s could not start; the run goes on without it",
                     r->tenant_endpoint[t]);
            r->telems[k] = NULL;
        }
        free(url);
    }
}

static void stop_telemetry(struct runner *r)
{
    for (size_t k = 0; k < r->n_telems; k++)
        if (r->telems[k])
            telemetry_stop(r->telems[k]);
}

static bool context_fits(struct runner *r, int context)
{
    for (size_t t = 0; t < r->cfg.n_tenants; t++) {
        if (r->tenant_max_len[t] > 0 && context > r->tenant_max_len[t]) {
            log_warn("context %d is longer than the server's max_model_len %ld (%s); skipping "
                     "its points",
                     context, r->tenant_max_len[t], r->tenant_endpoint[t]);
            return false;
        }
    }
    return true;
}

static int run_points(struct runner *r)
{
    const struct config *c = &r->cfg;
    size_t n_ctx = c->n_context_lengths ? c->n_context_lengths : 1;
    size_t per_ctx = c->requests.n_concurrency * c->requests.n_rates;
    size_t count = config_n_points(c);
    for (size_t ci = 0; ci < n_ctx; ci++) {
        int context = c->n_context_lengths ? c->context_lengths[ci] : 0;
        if (context && !context_fits(r, context))
            continue; /* said once for all its concurrency and rate points */
        for (size_t k = 0; k < c->requests.n_concurrency; k++) {
            for (size_t q = 0; q < c->requests.n_rates; q++) {
                if (interrupted)
                    return 0;
                struct point_key key = {ci * per_ctx + k * c->requests.n_rates + q, count, context,
                                        c->requests.concurrency[k], c->requests.rates[q]};
                int rc = point_run(r, &key);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

static void runner_release(struct runner *r)
{
    for (size_t k = 0; k < r->n_telems; k++) {
        telemetry_free(r->telems[k]);
        free(r->telem_endpoint[k]);
    }
    free(r->telems);
    free(r->telem_endpoint);
    free(r->tenant_telem);
    client_free(r->client);
    ptimer_set_free(r->timers);
    if (r->base)
        event_base_free(r->base);
    for (size_t t = 0; t < r->cfg.n_tenants; t++) {
        if (r->builders)
            prompt_builder_free(r->builders[t]);
        if (r->workloads)
            workload_free(r->workloads[t]);
        if (r->tenant_endpoint)
            free(r->tenant_endpoint[t]);
        if (r->tenant_model)
            free(r->tenant_model[t]);
    }
    free(r->builders);
    free(r->workloads);
    free(r->tenant_endpoint);
    free(r->tenant_model);
    free(r->tenant_max_len);
    free(r->tenant_ignore_eos);
    results_free(r->rw);
    sim_server_stop(r->sim);
    config_release(&r->cfg);
}

static struct event_base *loop_new(void)
{
    /* libevent's own timers stay coarse (progress, checkpoints): what needs sub-millisecond
     * accuracy (releases, session turns, the heartbeat, libcurl's timer) runs on ptimer sets,
     * since libevent's precise timers re-arm a timerfd on every loop turn (ptimer.h). */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    struct event_base *b = event_base_new_with_config(ec);
    event_config_free(ec);
    return b;
}

/* The most streams the config can have open at once: each tenant's concurrency cap (the
 * largest of a sweep), or all its requests when uncapped. */
static rlim_t streams_planned(const struct config *c)
{
    rlim_t n = 0;
    for (size_t t = 0; t < c->n_tenants; t++) {
        const struct requests_cfg *rq = &c->tenants[t].requests;
        rlim_t most = 0;
        for (size_t k = 0; k < rq->n_concurrency; k++) {
            rlim_t v =
                rq->concurrency[k] > 0 ? (rlim_t)rq->concurrency[k] : (rlim_t)rq->num_requests;
            most = v > most ? v : most;
        }
        n += most + 2; /* + its /tokenize and telemetry connections */
    }
    return n;
}

/* Loop threads for the transfers: --threads, else one per CLIENT_STREAMS_PER_THREAD planned
 * streams (at ~100 events/s a stream and ~8 us an event, most of a core) up to the CPUs but
 * one, which stays with the run's own loop; 1 = the transfers run on the run's loop. */
#define CLIENT_STREAMS_PER_THREAD 1000
static int client_threads(const struct runner *r)
{
    if (r->args.threads > 0)
        return r->args.threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    rlim_t want =
        (streams_planned(&r->cfg) + CLIENT_STREAMS_PER_THREAD - 1) / CLIENT_STREAMS_PER_THREAD;
    long most = cpus > 2 ? cpus - 1 : 1;
    return want > (rlim_t)most ? (int)most : want < 1 ? 1 : (int)want;
}

/* Descriptors the run needs: a socket per stream, and one more per stream when the server runs
 * in this process (the simulator's side of each connection), plus FD_RESERVE. */
static rlim_t fds_needed(const struct config *c, const struct run_options *o)
{
    bool in_process = c->server.sim.enabled || o->server_in_process;
    return streams_planned(c) * (in_process ? 2 : 1) + FD_RESERVE;
}

/* Every stream holds a socket: check the descriptor limit before any load (running out
 * mid-run looked like a server that refused connections, and libevent exits on it). The
 * soft limit is raised up to the hard one when that is enough. 0, or -EMFILE (said). */
static int check_fd_limit(const struct config *c, const struct run_options *o)
{
    rlim_t need = fds_needed(c, o);
    bool in_process = c->server.sim.enabled || o->server_in_process;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) {
        struct rlimit up = {rl.rlim_max == RLIM_INFINITY ? need : rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return 0;
    }
    log_error("this run needs about %llu file descriptors (%llu for concurrent streams and "
              "connections%s + %d for the runner), but the limit is %llu (hard limit %llu): raise "
              "it (ulimit -n %llu) or lower concurrent_requests",
              (unsigned long long)need, (unsigned long long)(need - FD_RESERVE),
              in_process ? ", two each: the simulator serves them in this process" : "", FD_RESERVE,
              (unsigned long long)rl.rlim_cur,
              rl.rlim_max == RLIM_INFINITY ? 0ull : (unsigned long long)rl.rlim_max,
              (unsigned long long)need);
    return -EMFILE;
}

/* True for localhost, 127.0.0.0/8 and [::1]: traffic that never leaves the machine. */
static bool host_is_loopback(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    const char *at = strchr(h, '@');
    size_t hl = strcspn(h, "/?#");
    if (at && (size_t)(at - h) < hl)
        h = at + 1;
    return strncmp(h, "localhost", 9) == 0 || strncmp(h, "127.", 4) == 0 ||
           strncmp(h, "[::1]", 5) == 0;
}

/* The API key and URL credentials never reach a file or a message (core/text.h); a key sent
 * in clear text over the network is worth a warning. */
static void register_secrets(struct runner *r)
{
    secret_add(r->api_key);
    bool warned = false;
    for (size_t t = 0; t < r->cfg.n_tenants; t++) {
        const char *ep = r->tenant_endpoint[t];
        char *ui = url_userinfo(ep);
        if (ui) {
            secret_add(ui);
            const char *colon = strchr(ui, ':');
            if (colon)
                secret_add(colon + 1);
            free(ui);
        }
        if (!warned && r->api_key && r->api_key[0] && strncmp(ep, "http://", 7) == 0 &&
            !host_is_loopback(ep)) {
            log_warn("the API key in %s goes to %s over plain http://: anyone on the path can "
                     "read it; use https://",
                     r->cfg.server.api_key_env, ep);
            warned = true;
        }
    }
}

static int runner_setup(struct runner *r)
{
    struct config *c = &r->cfg;
    r->tenant_endpoint = xcalloc(c->n_tenants, sizeof(char *));
    r->tenant_model = xcalloc(c->n_tenants, sizeof(char *));
    r->tenant_max_len = xcalloc(c->n_tenants, sizeof(long));
    r->tenant_ignore_eos = xcalloc(c->n_tenants, sizeof(bool));
    r->builders = xcalloc(c->n_tenants, sizeof(*r->builders));
    r->workloads = xcalloc(c->n_tenants, sizeof(*r->workloads));
    for (size_t t = 0; t < c->n_tenants; t++)
        r->tenant_endpoint[t] = xstrdup(c->tenants[t].endpoint);
    /* Datasets and traces are read before anything starts: a bad file costs no server. */
    for (size_t t = 0; t < c->n_tenants; t++) {
        char err[1280];
        if (workload_new(&r->workloads[t], &c->tenants[t].requests, c->server.api, err,
                         sizeof(err))) {
            log_error("tenant %s: %s", c->tenants[t].name, err);
            return TB_EXIT_USAGE;
        }
    }
    r->api_key = c->server.api_key_env ? getenv(c->server.api_key_env) : NULL;
    register_secrets(r);
    http_set_ca_bundle(c->server.ca_bundle); /* before the sampler thread starts */
    if (c->server.sim.enabled) {
        /* As `testbench sim`: a setup the engine refuses (or a bad calibration file) is a
         * usage error, anything else a runtime failure. */
        int src = start_sim(r);
        if (src)
            return src == -EINVAL || src == -ENOENT || src == -ENOSPC ? TB_EXIT_USAGE
                                                                      : TB_EXIT_RUNTIME;
    }
    json_t *server_json;
    int ec = probe_servers(r, &server_json);
    if (ec != TB_EXIT_OK)
        return ec;
    r->t0 = clock_now();
    start_telemetry(r);
    if (open_results(r, server_json))
        return TB_EXIT_RUNTIME;
    /* Files from the start (no points yet): a run killed before its first checkpoint still
     * leaves them, and a directory that cannot take them is found before any load. */
    if (runner_flush(r)) {
        log_error("nothing was sent; fix the output directory (benchmark.output_dir or "
                  "--output-dir) and run again");
        return TB_EXIT_RUNTIME;
    }
    for (size_t t = 0; t < c->n_tenants; t++) {
        if (interrupted) /* between calibrations: each is at most one /tokenize call */
            return TB_EXIT_INTERRUPTED;
        if (prompt_builder_new(&r->builders[t], r->tenant_endpoint[t], r->tenant_model[t],
                               r->api_key, run_point_seed(c->benchmark.seed, 0, t, "prefix"))) {
            log_error("cannot set up prompts for tenant %s", c->tenants[t].name);
            return TB_EXIT_RUNTIME;
        }
        prompt_builder_set_chat(r->builders[t], c->server.api == API_CHAT);
        workload_attach(r->workloads[t], r->builders[t]);
        bool seen = false; /* one warning per server */
        for (size_t u = 0; u < t; u++)
            seen |= strcmp(r->tenant_endpoint[u], r->tenant_endpoint[t]) == 0;
        if (!seen && !prompt_builder_calibrated(r->builders[t]))
            log_warn("%s has no /tokenize: prompt lengths are estimated (about one token per "
                     "word); actual counts come from usage",
                     r->tenant_endpoint[t]);
    }
    r->base = loop_new();
    r->timers = r->base ? ptimer_set_new(r->base) : NULL;
    struct client_options co = {
        .api_key = r->api_key, .timeout_s = c->server.timeout_s, .threads = client_threads(r)};
    if (!r->timers || client_new(&r->client, r->base, &co)) {
        log_error("cannot create the event loop or HTTP client");
        return TB_EXIT_RUNTIME;
    }
    return TB_EXIT_OK;
}

int run_config(struct config *cfg, const struct run_options *o, struct run_outcome *out)
{
    struct runner r;
    memset(&r, 0, sizeof(r));
    memset(out, 0, sizeof(*out));
    r.cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg)); /* ours now: released with the runner */
    r.args = *o;
    r.out = out;
    log_set_quiet(r.args.quiet);
    if (apply_overrides(&r)) {
        config_release(&r.cfg);
        return out->exit_code = TB_EXIT_USAGE;
    }
    if (check_fd_limit(&r.cfg, o)) {
        config_release(&r.cfg);
        return out->exit_code = TB_EXIT_RUNTIME;
    }
    client_reserve_descriptors((size_t)fds_needed(&r.cfg, o));
    if (!r.args.quiet)
        run_estimate_print(stdout, &r.cfg);
    interrupted = 0;
    atomic_store(&interrupted_all, false);
    struct sigaction sa, old_int, old_term, old_hup;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    /* A second Ctrl-C kills at once, unless the caller has processes of its own to stop. */
    sa.sa_flags = o->keep_handler ? 0 : SA_RESETHAND;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* A dropped SSH session (SIGHUP) ends the run as Ctrl-C does: files written, exit 130. */
    sigaction(SIGHUP, &sa, &old_hup);
    probe_set_stop_flag(&interrupted);
    prompt_set_stop_flag(&interrupted_all);

    int ec = runner_setup(&r);
    if (ec == TB_EXIT_OK) {
        int rc = run_points(&r);
        stop_telemetry(&r);
        /* Once more after the last point's flush: telemetry's closing samples, and files at
         * all when no point ran (every context skipped, or Ctrl-C while building prompts). */
        if (flush_final(&r) || (rc && rc != -E2BIG))
            ec = TB_EXIT_RUNTIME;
        else if (rc == -E2BIG)
            ec = TB_EXIT_USAGE; /* the prompts cannot fit the server's window (said) */
        else if (interrupted)
            ec = TB_EXIT_INTERRUPTED;
        else if (r.completed_total == 0)
            ec = TB_EXIT_RUNTIME;
        if (r.rw && !r.args.quiet)
            printf("\nresults:\n  %s\n  %s\n  %s\n", results_path(r.rw, "detailed"),
                   results_path(r.rw, "summary"), results_path(r.rw, "telemetry"));
        if (interrupted)
            log_warn("interrupted: partial results written");
        else if (r.completed_total == 0 && rc != -E2BIG)
            log_error("no request completed; see the errors in %s",
                      r.rw ? results_path(r.rw, "detailed") : "the results");
    } else if (interrupted) {
        ec = TB_EXIT_INTERRUPTED;
    }
    if (r.rw) {
        out->detailed_path = xstrdup(results_path(r.rw, "detailed"));
        out->summary_path = xstrdup(results_path(r.rw, "summary"));
        out->telemetry_path = xstrdup(results_path(r.rw, "telemetry"));
    }
    runner_release(&r);
    secret_forget_all();
    probe_set_stop_flag(NULL);
    prompt_set_stop_flag(NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    return out->exit_code = ec;
}

void run_outcome_release(struct run_outcome *o)
{
    free(o->points);
    free(o->detailed_path);
    free(o->summary_path);
    free(o->telemetry_path);
    memset(o, 0, sizeof(*o));
}

int run_main(int argc, char **argv)
{
    struct run_args a;
    if (parse_args(argc, argv, &a))
        return TB_EXIT_USAGE;
    log_set_quiet(a.o.quiet);
    struct config cfg;
    char err[1024];
    if (config_load(&cfg, a.config, err, sizeof(err))) {
        log_error("%s", err);
        return TB_EXIT_USAGE;
    }
    if (config_prompt_note(&cfg))
        log_warn("%s: %s", a.config, config_prompt_note(&cfg));
    struct run_outcome out;
    int ec = run_config(&cfg, &a.o, &out);
    run_outcome_release(&out);
    return ec;
}
