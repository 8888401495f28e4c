/*
 * config.c - defaults, the one set of validation rules (config_find_problem, used by both
 * config_load and config_check), and small helpers the YAML loader in config_load.c shares
 * (the resolved config as JSON: config_json.c). docs/CONFIG.md is the user-facing description.
 */
#include "config/config.h"
#include "config/config_internal.h"
#include "core/jsonx.h"
#include "telemetry/telemetry.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ==== Names ==== */

static const struct {
    const char *name;
    enum arrival value;
} arrivals[] = {
    {"poisson", ARRIVAL_POISSON},
    {"constant", ARRIVAL_CONSTANT},
    {"burst", ARRIVAL_BURST},
    {"gamma", ARRIVAL_GAMMA},
};

static const struct {
    const char *name;
    enum api_kind value;
} api_kinds[] = {
    {"completions", API_COMPLETIONS},
    {"chat", API_CHAT},
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Below 1 ms libcurl rounds a request timeout to 0, which it reads as "no timeout". */
#define CFG_TIMEOUT_MIN_S 0.001
/* Telemetry samples at least this often: a longer interval sees nothing of a point, and
 * far larger ones overflow the sampler's nanosecond clock. */
#define CFG_INTERVAL_MAX_S TELEMETRY_INTERVAL_MAX_S
/* Gamma shapes outside this range draw gaps of 0 or beyond any run's length (the schedule
 * cannot be built): 0.01 is already bursts of ~100 requests at once. */
#define CFG_BURSTINESS_MIN 0.01
#define CFG_BURSTINESS_MAX 1000.0
/* Points measured per run: each is a full load of num_requests; more is a typo. */
#define CFG_POINTS_MAX 100000
/* A result file name is prefix + "_YYYYmmddTHHMMSSZ-NNNN_telemetry.json" (at most 40 bytes),
 * and a file name holds at most 255 bytes (NAME_MAX on Linux). */
#define CFG_PREFIX_MAX 200
/* What one request costs in memory while its point runs, besides its token times: the
 * record, the schedule, the prompt's text (about 4 bytes a token) and its JSON later. */
#define CFG_REQ_BYTES_FIXED 512.0
/* A prompt is held as its recipe (~72 bytes, 16 more a segment) plus at most the runner's
 * pool of texts (PROMPT_POOL_BUDGET, src/runner/prompt_pool.h), not as text per request. */
#define CFG_REQ_BYTES_PROMPT_RECIPE 128.0
#define CFG_PROMPT_POOL_BYTES (256.0 * 1048576)
#define CFG_REQ_BYTES_PER_OUTPUT_TOKEN 32.0 /* its time (8) and its detailed.json text (~24) */

const char *arrival_name(enum arrival a)
{
    for (size_t i = 0; i < N_ELEMS(arrivals); i++)
        if (arrivals[i].value == a)
            return arrivals[i].name;
    return "unknown";
}

const char *api_kind_name(enum api_kind a)
{
    for (size_t i = 0; i < N_ELEMS(api_kinds); i++)
        if (api_kinds[i].value == a)
            return api_kinds[i].name;
    return "unknown";
}

int arrival_parse(const char *s, enum arrival *out)
{
    for (size_t i = 0; i < N_ELEMS(arrivals); i++) {
        if (strcmp(arrivals[i].name, s) == 0) {
            *out = arrivals[i].value;
            return 0;
        }
    }
    return -EINVAL;
}

int api_kind_parse(const char *s, enum api_kind *out)
{
    for (size_t i = 0; i < N_ELEMS(api_kinds); i++) {
        if (strcmp(api_kinds[i].name, s) == 0) {
            *out = api_kinds[i].value;
            return 0;
        }
    }
    return -EINVAL;
}

const char *arrival_names_list(void)
{
    return "poisson, constant, burst, gamma";
}

const char *api_kind_names_list(void)
{
    return "completions, chat";
}

/* ==== Defaults, copies, release ==== */

static void requests_defaults(struct requests_cfg *r)
{
    memset(r, 0, sizeof(*r));
    r->num_requests = 100;
    r->concurrency = xcalloc(1, sizeof(*r->concurrency));
    r->concurrency[0] = 10;
    r->n_concurrency = 1;
    r->rates = xcalloc(1, sizeof(*r->rates));
    r->rates[0] = INFINITY;
    r->n_rates = 1;
    r->arrival = ARRIVAL_POISSON;
    r->burstiness = 1.0;
    r->prompt_tokens_min = 512;
    r->prompt_tokens_max = 2048;
    r->completion_tokens = 512;
    r->shared_prefix_tokens = 0;
    r->warmup_requests = 0;
    r->warmup_s = 0;
    r->duration_s = NAN;
    r->stop_when_decided = false;
    workload_cfg_defaults(r);
    session_cfg_defaults(&r->session);
}

/* One default for every entry point: the default profile's objectives. */
static void slo_defaults(struct slo_cfg *s)
{
    slo_from_profile(s, slo_profile_default());
    s->confidence = 0.95;
}

void requests_cfg_copy(struct requests_cfg *dst, const struct requests_cfg *src)
{
    *dst = *src;
    dst->concurrency =
        xreallocarray(NULL, src->n_concurrency ? src->n_concurrency : 1, sizeof(*dst->concurrency));
    if (src->n_concurrency)
        memcpy(dst->concurrency, src->concurrency, src->n_concurrency * sizeof(*src->concurrency));
    dst->rates = xreallocarray(NULL, src->n_rates ? src->n_rates : 1, sizeof(*dst->rates));
    if (src->n_rates)
        memcpy(dst->rates, src->rates, src->n_rates * sizeof(*src->rates));
    workload_cfg_copy(dst, src);
}

void requests_cfg_release(struct requests_cfg *r)
{
    free(r->concurrency);
    free(r->rates);
    r->concurrency = NULL;
    r->rates = NULL;
    r->n_concurrency = 0;
    r->n_rates = 0;
    workload_cfg_release(r);
}

void tenant_cfg_inherit(struct tenant_cfg *t, const struct config *c, const char *name)
{
    memset(t, 0, sizeof(*t));
    t->name = xstrdup(name);
    t->endpoint = xstrdup(c->server.endpoint);
    t->model = xstrdup(c->model.name);
    requests_cfg_copy(&t->requests, &c->requests);
    t->slo = c->slo;
}

void tenant_cfg_release(struct tenant_cfg *t)
{
    free(t->name);
    free(t->endpoint);
    free(t->model);
    requests_cfg_release(&t->requests);
    memset(t, 0, sizeof(*t));
}

static void tenants_release(struct config *c)
{
    for (size_t i = 0; i < c->n_tenants; i++)
        tenant_cfg_release(&c->tenants[i]);
    free(c->tenants);
    c->tenants = NULL;
    c->n_tenants = 0;
}

void config_set_default_tenant(struct config *c)
{
    tenants_release(c);
    c->tenants = xcalloc(1, sizeof(*c->tenants));
    c->n_tenants = 1;
    c->tenants_given = false;
    tenant_cfg_inherit(&c->tenants[0], c, "default");
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    c->benchmark.name = xstrdup("benchmark");
    c->benchmark.description = xstrdup("");
    c->benchmark.output_prefix = xstrdup("benchmark");
    c->benchmark.output_dir = xstrdup("results");
    c->benchmark.seed = 42;

    c->model.name = NULL;
    c->model.quantization = NULL;
    c->model.tensor_parallel_size = 1;
    c->model.enable_prefix_caching = true;

    c->server.endpoint = xstrdup("http://localhost:8000");
    c->server.api = API_COMPLETIONS;
    c->server.api_key_env = xstrdup("OPENAI_API_KEY");
    c->server.timeout_s = 600.0;
    /* The simulator's inherited fields are resolved here and by the loader, so users of the
     * struct never see the "-1 / 0 = inherit" markers. */
    struct sim_cfg *s = &c->server.sim;
    s->enabled = false;
    s->gpu = xstrdup("rtx-pro-6000");
    s->model = NULL;
    s->quantization = NULL;
    s->kv_cache_dtype = xstrdup("auto");
    s->max_model_len = 0;
    s->gpu_memory_utilization = 0.9;
    s->max_num_seqs = 0;
    s->max_num_batched_tokens = 0;
    s->enable_prefix_caching = c->model.enable_prefix_caching;
    s->tensor_parallel_size = c->model.tensor_parallel_size;
    s->seed = c->benchmark.seed;

    c->context_lengths = NULL;
    c->n_context_lengths = 0;
    requests_defaults(&c->requests);
    slo_defaults(&c->slo);

    c->telemetry.sample_interval_sec = 1.0;
    c->telemetry.collect_gpu_stats = true;
    c->telemetry.scrape_server_metrics = true;

    config_set_default_tenant(c);
    study_cfg_defaults(&c->study);
}

void config_release(struct config *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->benchmark.name);
    free(c->benchmark.description);
    free(c->benchmark.output_prefix);
    free(c->benchmark.output_dir);
    free(c->server.endpoint);
    free(c->server.api_key_env);
    free(c->server.ca_bundle);
    free(c->server.sim.gpu);
    free(c->server.sim.model);
    free(c->server.sim.quantization);
    free(c->server.sim.kv_cache_dtype);
    free(c->server.sim.catalog);
    free(c->server.sim.calibration);
    free(c->model.name);
    free(c->model.quantization);
    free(c->context_lengths);
    requests_cfg_release(&c->requests);
    tenants_release(c);
    study_cfg_release(&c->study);
    memset(c, 0, sizeof(*c));
}

/* ==== Overrides ==== */

void endpoint_normalize(char *url)
{
    if (!url)
        return;
    size_t n = strlen(url);
    /* Keep "http://" itself intact; config_check reports it as having no host. */
    while (n > 0 && url[n - 1] == '/' && !(n >= 2 && url[n - 2] == '/'))
        url[--n] = '\0';
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

void config_set_endpoint(struct config *c, const char *url)
{
    char *old = c->server.endpoint;
    c->server.endpoint = xstrdup(url);
    endpoint_normalize(c->server.endpoint);
    for (size_t i = 0; i < c->n_tenants; i++) {
        if (str_eq(c->tenants[i].endpoint, old)) {
            free(c->tenants[i].endpoint);
            c->tenants[i].endpoint = xstrdup(c->server.endpoint);
        }
    }
    free(old);
}

void config_set_model(struct config *c, const char *name)
{
    char *old = c->model.name;
    c->model.name = xstrdup(name);
    for (size_t i = 0; i < c->n_tenants; i++) {
        if (str_eq(c->tenants[i].model, old)) {
            free(c->tenants[i].model);
            c->tenants[i].model = xstrdup(name);
        }
    }
    if (str_eq(c->server.sim.model, old)) {
        free(c->server.sim.model);
        c->server.sim.model = xstrdup(name);
    }
    free(old);
}

int config_set_closed_loop(struct config *c, int users, int num_requests, int context,
                           bool sessions)
{
    if (c->tenants_given)
        return -EINVAL;
    struct requests_cfg *r = &c->requests;
    r->concurrency = xreallocarray(r->concurrency, 1, sizeof(*r->concurrency));
    r->concurrency[0] = users;
    r->n_concurrency = 1;
    r->rates = xreallocarray(r->rates, 1, sizeof(*r->rates));
    r->rates[0] = INFINITY;
    r->n_rates = 1;
    r->num_requests = num_requests;
    /* People in conversation, or request streams that send the next request when the last
     * ends (docs/STUDY.md "Populations"); the planner models either. */
    if (sessions && !r->session.enabled)
        session_cfg_defaults(&r->session); /* a workload without session keys: the defaults */
    r->session.enabled = sessions;
    free(c->context_lengths);
    c->context_lengths = NULL;
    c->n_context_lengths = 0;
    if (context > 0) {
        c->context_lengths = xcalloc(1, sizeof(int));
        c->context_lengths[0] = context;
        c->n_context_lengths = 1;
    }
    config_set_default_tenant(c);
    return 0;
}

size_t config_n_points(const struct config *c)
{
    size_t n = c->n_context_lengths ? c->n_context_lengths : 1;
    if (c->n_tenants > 0)
        n *= c->tenants[0].requests.n_concurrency * c->tenants[0].requests.n_rates;
    return n;
}

/* ==== Validation ==== */

/* Adds a candidate place for the problem; the same words may be repeated at fallbacks. */
__attribute__((format(printf, 4, 5))) void where(struct cfg_problem *p, const void *addr,
                                                 const char *path, const char *fmt, ...)
{
    if (p->n_at >= CFG_WHERE_MAX)
        return;
    struct cfg_where *w = &p->at[p->n_at++];
    w->addr = addr;
    snprintf(w->path, sizeof(w->path), "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
    va_end(ap);
}

/* A fallback place with the previous candidate's path and words. */
static void where_fallback(struct cfg_problem *p, const void *addr, bool section)
{
    if (!addr || p->n_at == 0 || p->n_at >= CFG_WHERE_MAX)
        return;
    p->at[p->n_at] = p->at[p->n_at - 1];
    p->at[p->n_at].addr = addr;
    p->at[p->n_at].section = section;
    p->n_at++;
}

/* Another member that holds the same value (a list as a whole for one of its items). */
static void where_also(struct cfg_problem *p, const void *addr)
{
    where_fallback(p, addr, false);
}

/* The enclosing mapping (a tenant, its requests), for values it inherited. */
void where_owner(struct cfg_problem *p, const void *addr)
{
    where_fallback(p, addr, true);
}

#define PATH(buf, prefix, key) snprintf(buf, sizeof(buf), "%s.%s", prefix, key)

int problem_at(struct cfg_problem *p, const void *addr, const char *prefix, const char *key,
               const void *fallback, const char *fmt, ...)
{
    char msg[CFG_MSG_MAX], path[CFG_PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    PATH(path, prefix, key);
    where(p, addr, path, "%s", msg);
    where_owner(p, fallback);
    return -EINVAL;
}

int check_int_min(struct cfg_problem *p, const int *v, int min, const char *prefix, const char *key,
                  const void *fallback)
{
    if (*v >= min)
        return 0;
    return problem_at(p, v, prefix, key, fallback, "must be at least %d, got %d", min, *v);
}

/* lo < v <= hi (lo_incl: lo <= v); hi may be INFINITY (then v must still be finite). */
int check_num(struct cfg_problem *p, const double *v, double lo, bool lo_incl, double hi,
              const char *prefix, const char *key, const void *fallback)
{
    bool ok = isfinite(*v) && (lo_incl ? *v >= lo : *v > lo) && *v <= hi;
    if (ok)
        return 0;
    char path[CFG_PATH_MAX];
    PATH(path, prefix, key);
    if (!isfinite(*v))
        where(p, v, path, "must be a finite number, got %g", *v);
    else if (isinf(hi))
        where(p, v, path, "must be %s %g, got %g", lo_incl ? "at least" : "greater than", lo, *v);
    else
        where(p, v, path, "must be in %s%g, %g], got %g", lo_incl ? "[" : "(", lo, hi, *v);
    where_owner(p, fallback);
    return -EINVAL;
}

int check_min_max(struct cfg_problem *p, const int *min, const int *max, const char *prefix,
                  const char *min_key, const char *max_key, const void *fallback)
{
    if (*min <= *max)
        return 0;
    char path[CFG_PATH_MAX];
    PATH(path, prefix, max_key);
    where(p, max, path, "%d is less than %s (%d)", *max, min_key, *min);
    PATH(path, prefix, min_key);
    where(p, min, path, "%d is greater than %s (%d)", *min, max_key, *max);
    where_owner(p, fallback);
    return -EINVAL;
}

int check_not_empty(struct cfg_problem *p, char *const *s, const char *prefix, const char *key,
                    const void *fallback)
{
    if (!*s || **s)
        return 0;
    return problem_at(p, s, prefix, key, fallback, "must not be empty");
}

static bool env_name_ok(const char *s)
{
    if (!s || !*s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (const char *q = s; *q; q++) {
        bool ok = (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                  (*q >= '0' && *q <= '9') || *q == '_';
        if (!ok)
            return false;
    }
    return true;
}

/* NULL when the URL is usable as a base URL, else what is wrong with it. */
static const char *endpoint_problem(const char *url)
{
    if (!url || !*url)
        return "must not be empty";
    const char *host;
    if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else
        return "must start with http:// or https://";
    if (*host == '\0' || *host == '/')
        return "has no host after the scheme";
    for (const char *q = url; *q; q++)
        if (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            return "must not contain whitespace";
    size_t n = strlen(url);
    if (n >= 3 && strcmp(url + n - 3, "/v1") == 0)
        return "is a base URL: leave out the trailing /v1 (the client appends /v1/...)";
    return NULL;
}

static int check_endpoint(struct cfg_problem *p, char *const *url, const char *path,
                          const void *fallback)
{
    const char *why = endpoint_problem(*url);
    if (!why)
        return 0;
    where(p, url, path, "%s, got \"%.80s\"", why, *url ? *url : "");
    where_owner(p, fallback);
    return -EINVAL;
}

/* Rules for one requests section; prefix is "requests" or "tenants[i].requests". */
static int check_requests(struct cfg_problem *p, const struct requests_cfg *r, const char *prefix,
                          bool tenant, const void *owner)
{
    char path[CFG_PATH_MAX];
    int rc;
    rc = check_int_min(p, &r->num_requests, 1, prefix, "num_requests", owner);
    if (rc)
        return rc;
    PATH(path, prefix, "concurrent_requests");
    if (r->n_concurrency == 0) {
        where(p, &r->concurrency, path, "the list is empty");
        where_owner(p, owner);
        return -EINVAL;
    }
    if (tenant && r->n_concurrency > 1) {
        where(p, &r->concurrency, path,
              "a tenant needs a single value, got a list of %zu (sweeps belong in the top-level "
              "requests of a config without tenants)",
              r->n_concurrency);
        where_owner(p, r);
        where_owner(p, owner);
        return -EINVAL;
    }
    for (size_t i = 0; i < r->n_concurrency; i++) {
        if (r->concurrency[i] >= 0)
            continue;
        char ipath[CFG_PATH_MAX + 32];
        if (r->n_concurrency > 1)
            snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        else
            snprintf(ipath, sizeof(ipath), "%s", path);
        where(p, &r->concurrency[i], ipath, "must be at least 0 (0 = no cap), got %d",
              r->concurrency[i]);
        where_also(p, &r->concurrency);
        where_owner(p, owner);
        return -EINVAL;
    }
    PATH(path, prefix, "rate_per_second");
    if (r->n_rates == 0) {
        where(p, &r->rates, path, "the list is empty");
        where_owner(p, owner);
        return -EINVAL;
    }
    if (tenant && r->n_rates > 1) {
        where(p, &r->rates, path,
              "a tenant needs a single value, got a list of %zu (sweeps belong in the top-level "
              "requests of a config without tenants)",
              r->n_rates);
        where_owner(p, r);
        where_owner(p, owner);
        return -EINVAL;
    }
    for (size_t i = 0; i < r->n_rates; i++) {
        if (r->rates[i] > 0) /* INFINITY passes, NAN does not */
            continue;
        char ipath[CFG_PATH_MAX + 32];
        if (r->n_rates > 1)
            snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        else
            snprintf(ipath, sizeof(ipath), "%s", path);
        where(p, &r->rates[i], ipath, "must be greater than 0 (or \"inf\"), got %g", r->rates[i]);
        where_also(p, &r->rates);
        where_owner(p, owner);
        return -EINVAL;
    }
    if (strcmp(arrival_name(r->arrival), "unknown") == 0) {
        PATH(path, prefix, "arrival_pattern");
        where(p, &r->arrival, path, "unknown arrival pattern; allowed: %s", arrival_names_list());
        return -EINVAL;
    }
    rc = check_num(p, &r->burstiness, CFG_BURSTINESS_MIN, true, CFG_BURSTINESS_MAX, prefix,
                   "burstiness", owner);
    if (rc)
        return rc;
    rc = check_int_min(p, &r->prompt_tokens_min, 1, prefix, "prompt_tokens_min", owner);
    if (rc)
        return rc;
    rc = check_int_min(p, &r->prompt_tokens_max, 1, prefix, "prompt_tokens_max", owner);
    if (rc)
        return rc;
    rc = check_int_min(p, &r->completion_tokens, 1, prefix, "completion_tokens", owner);
    if (rc)
        return rc;
    rc = check_int_min(p, &r->shared_prefix_tokens, 0, prefix, "shared_prefix_tokens", owner);
    if (rc)
        return rc;
    rc = check_min_max(p, &r->prompt_tokens_min, &r->prompt_tokens_max, prefix, "prompt_tokens_min",
                       "prompt_tokens_max", owner);
    if (rc)
        return rc;
    if (r->shared_prefix_tokens > 0 && r->shared_prefix_tokens >= r->prompt_tokens_min) {
        PATH(path, prefix, "shared_prefix_tokens");
        where(p, &r->shared_prefix_tokens, path,
              "%d leaves no room for the unique part of the prompt: it must be less than "
              "prompt_tokens_min (%d)",
              r->shared_prefix_tokens, r->prompt_tokens_min);
        PATH(path, prefix, "prompt_tokens_min");
        where(p, &r->prompt_tokens_min, path, "%d must be greater than shared_prefix_tokens (%d)",
              r->prompt_tokens_min, r->shared_prefix_tokens);
        where_owner(p, owner);
        return -EINVAL;
    }
    rc = workload_cfg_find_problem(p, r, prefix, owner);
    if (!rc)
        rc = session_find_problem(p, &r->session, prefix, owner);
    if (rc)
        return rc;
    /* A session builds each turn from the conversation so far; prompts from a dataset, a
     * trace or a RAG pool would need their own turn model, which is not there yet. */
    if (r->session.enabled && workload_cfg_sets_prompts(r))
        return problem_at(p, &r->session.enabled, prefix, "session", owner,
                          "cannot be combined with requests.dataset, requests.trace or "
                          "requests.rag (sessions build their own conversations)");
    return measure_find_problem(p, r, prefix, owner);
}

static int check_slo(struct cfg_problem *p, const struct slo_cfg *s, const char *prefix,
                     const void *owner)
{
    const struct {
        const char *key;
        const double *v;
    } ms[] = {
        {"ttft_ms", &s->ttft_ms},
        {"itl_ms", &s->itl_ms},
        {"tpot_ms", &s->tpot_ms},
        {"e2e_ms", &s->e2e_ms},
    };
    for (size_t i = 0; i < N_ELEMS(ms); i++) {
        if (isnan(*ms[i].v)) /* no objective */
            continue;
        int rc = check_num(p, ms[i].v, 0, false, INFINITY, prefix, ms[i].key, owner);
        if (rc)
            return rc;
    }
    int rc = check_num(p, &s->percentile, 0, false, 100, prefix, "percentile", owner);
    if (!rc)
        rc = verdict_find_problem(p, s, prefix, owner);
    return rc;
}

/* Each context must leave room for a prompt after the completion (and its shared prefix). */
static int check_context(struct cfg_problem *p, const struct config *c, size_t i,
                         const struct requests_cfg *r, const char *who)
{
    int ctx = c->context_lengths[i];
    char path[CFG_PATH_MAX];
    snprintf(path, sizeof(path), "context_lengths[%zu]", i);
    if (workload_cfg_sets_prompts(r)) {
        where(p, &c->context_lengths[i], path,
              "cannot be combined with %s.dataset, .trace or .rag (they set the prompt lengths)",
              who);
        return -EINVAL;
    }
    if (ctx <= r->completion_tokens) {
        where(p, &c->context_lengths[i], path,
              "context %d leaves no room for the prompt (%s.completion_tokens is %d)", ctx, who,
              r->completion_tokens);
        return -EINVAL;
    }
    if (r->shared_prefix_tokens > 0 && ctx - r->completion_tokens <= r->shared_prefix_tokens) {
        where(p, &c->context_lengths[i], path,
              "context %d leaves %d prompt tokens, not more than %s.shared_prefix_tokens (%d)", ctx,
              ctx - r->completion_tokens, who, r->shared_prefix_tokens);
        return -EINVAL;
    }
    /* Sessions: the last turn's conversation must fit the window too, which is only known
     * when every answer has the same length. */
    if (r->session.enabled && r->output_tokens.distribution &&
        strcmp(r->output_tokens.distribution, "fixed") != 0) {
        where(p, &c->context_lengths[i], path,
              "a context sweep with %s.session needs fixed output lengths (%s.output_tokens is "
              "%s), so that a whole conversation is known to fit the window",
              who, who, r->output_tokens.distribution);
        return -EINVAL;
    }
    long first = session_first_prompt(&r->session, ctx, r->completion_tokens);
    if (r->session.enabled &&
        first <= (r->shared_prefix_tokens > 0 ? r->shared_prefix_tokens : 0)) {
        where(p, &c->context_lengths[i], path,
              "context %d leaves %ld tokens for a session's first prompt (%s.session: %d turns "
              "of %d completion tokens and %d-token messages must fit), not more than %d",
              ctx, first, who, r->session.turns, r->completion_tokens,
              r->session.message_tokens_max, r->shared_prefix_tokens);
        return -EINVAL;
    }
    return 0;
}

const char *config_prefix_problem(const char *prefix)
{
    static char msg[CFG_MSG_MAX];
    if (strlen(prefix) > CFG_PREFIX_MAX) {
        snprintf(msg, sizeof(msg),
                 "is %zu bytes long; at most %d are allowed (a file name holds 255 bytes, and "
                 "the stamp and suffix take the rest)",
                 strlen(prefix), CFG_PREFIX_MAX);
        return msg;
    }
    if (prefix[0] == '.')
        return "must not start with '.' (the result files would be hidden)";
    for (const unsigned char *q = (const unsigned char *)prefix; *q; q++) {
        if (*q < 0x20 || *q == 0x7f) {
            snprintf(msg, sizeof(msg),
                     "must not contain control characters (byte 0x%02x at offset %zu)", *q,
                     (size_t)(q - (const unsigned char *)prefix));
            return msg;
        }
    }
    return NULL;
}

/* The bytes this machine has, or 0 when it cannot tell. */
static double physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0;
}

/* One point of r holds every request's record, prompt recipe and token times at once; refuse what
 * cannot fit in this machine's memory (better now than an abort minutes into the run). */
static int check_memory(struct cfg_problem *p, const struct requests_cfg *r, const char *prefix,
                        const void *owner)
{
    double mem = physical_memory();
    double per = CFG_REQ_BYTES_FIXED + CFG_REQ_BYTES_PROMPT_RECIPE +
                 CFG_REQ_BYTES_PER_OUTPUT_TOKEN * r->completion_tokens;
    double need = per * r->num_requests + CFG_PROMPT_POOL_BYTES;
    if (mem <= 0 || need <= mem)
        return 0;
    return problem_at(p, &r->num_requests, prefix, "num_requests", owner,
                      "%d requests need about %.1f GiB of memory for one point (%.0f bytes "
                      "each: record, prompt recipe and token times, and the prompt pool); this "
                      "machine has %.1f GiB",
                      r->num_requests, need / (1u << 30), per, mem / (1u << 30));
}

int config_find_problem(const struct config *c, struct cfg_problem *p)
{
    memset(p, 0, sizeof(*p));
    int rc;
    const struct bench_cfg *b = &c->benchmark;

    if (!b->name) {
        where(p, &b->name, "benchmark.name", "must be set");
        return -EINVAL;
    }
    if (!b->output_prefix || !*b->output_prefix || strchr(b->output_prefix, '/')) {
        where(p, &b->output_prefix, "benchmark.output_prefix",
              "must be a non-empty file name prefix without '/', got \"%.80s\"",
              b->output_prefix ? b->output_prefix : "");
        return -EINVAL;
    }
    const char *why = config_prefix_problem(b->output_prefix);
    if (why) {
        where(p, &b->output_prefix, "benchmark.output_prefix", "%s", why);
        return -EINVAL;
    }
    if (!b->output_dir || !*b->output_dir) {
        where(p, &b->output_dir, "benchmark.output_dir", "must not be empty");
        return -EINVAL;
    }
    if (b->seed > (uint64_t)INT64_MAX) {
        where(p, &b->seed, "benchmark.seed", "must be at most %lld", (long long)INT64_MAX);
        return -EINVAL;
    }

    /* Before the server: the simulator inherits from the model. */
    const struct model_cfg *m = &c->model;
    if (m->name && !*m->name) {
        where(p, &m->name, "model.name", "must not be empty (leave it out to ask the server)");
        return -EINVAL;
    }
    rc = check_int_min(p, &m->tensor_parallel_size, 1, "model", "tensor_parallel_size", NULL);
    if (rc)
        return rc;

    const struct server_cfg *sv = &c->server;
    rc = check_endpoint(p, &sv->endpoint, "server.endpoint", NULL);
    if (rc)
        return rc;
    if (strcmp(api_kind_name(sv->api), "unknown") == 0) {
        where(p, &sv->api, "server.api", "unknown api; allowed: %s", api_kind_names_list());
        return -EINVAL;
    }
    if (!env_name_ok(sv->api_key_env)) {
        where(p, &sv->api_key_env, "server.api_key_env",
              "must name an environment variable (letters, digits, '_'), not hold a key");
        return -EINVAL;
    }
    rc = check_num(p, &sv->timeout_s, CFG_TIMEOUT_MIN_S, true, INFINITY, "server", "timeout_s",
                   NULL);
    if (rc)
        return rc;
    if (sv->ca_bundle && access(sv->ca_bundle, R_OK) != 0) {
        where(p, &sv->ca_bundle, "server.ca_bundle", "cannot read '%s': %s", sv->ca_bundle,
              strerror(errno));
        return -EINVAL;
    }
    const struct sim_cfg *s = &sv->sim;
    if (!s->gpu || !*s->gpu) {
        where(p, &s->gpu, "server.sim.gpu", "must not be empty");
        return -EINVAL;
    }
    if (!s->kv_cache_dtype || !*s->kv_cache_dtype) {
        where(p, &s->kv_cache_dtype, "server.sim.kv_cache_dtype", "must not be empty");
        return -EINVAL;
    }
    rc = check_int_min(p, &s->max_model_len, 0, "server.sim", "max_model_len", NULL);
    if (!rc)
        rc = check_num(p, &s->gpu_memory_utilization, 0, false, 1, "server.sim",
                       "gpu_memory_utilization", NULL);
    if (!rc)
        rc = check_int_min(p, &s->max_num_seqs, 0, "server.sim", "max_num_seqs", NULL);
    if (!rc)
        rc = check_int_min(p, &s->max_num_batched_tokens, 0, "server.sim", "max_num_batched_tokens",
                           NULL);
    if (!rc)
        rc = check_int_min(p, &s->tensor_parallel_size, 1, "server.sim", "tensor_parallel_size",
                           NULL);
    if (!rc)
        rc = check_int_min(p, &s->reasoning_tokens, 0, "server.sim", "reasoning_tokens", NULL);
    if (rc)
        return rc;
    if (s->seed > (uint64_t)INT64_MAX) {
        where(p, &s->seed, "server.sim.seed", "must be at most %lld", (long long)INT64_MAX);
        return -EINVAL;
    }

    rc = check_requests(p, &c->requests, "requests", false, NULL);
    if (!rc)
        rc = check_memory(p, &c->requests, "requests", NULL);
    if (rc)
        return rc;
    rc = check_slo(p, &c->slo, "slo", NULL);
    if (!rc)
        rc = stop_rule_find_problem(p, &c->requests, &c->slo, "requests", NULL);
    if (rc)
        return rc;

    for (size_t i = 0; i < c->n_context_lengths; i++) {
        char path[CFG_PATH_MAX];
        snprintf(path, sizeof(path), "context_lengths[%zu]", i);
        if (c->context_lengths[i] < 1) {
            where(p, &c->context_lengths[i], path, "must be at least 1, got %d",
                  c->context_lengths[i]);
            return -EINVAL;
        }
        rc = check_context(p, c, i, &c->requests, "requests");
        if (rc)
            return rc;
    }

    if (c->n_tenants == 0) {
        where(p, &c->tenants, "tenants", "there must be at least one tenant");
        return -EINVAL;
    }
    /* In double: three lists of a million items each overflow nothing here. */
    double points = (double)(c->n_context_lengths ? c->n_context_lengths : 1) *
                    (double)c->tenants[0].requests.n_concurrency *
                    (double)c->tenants[0].requests.n_rates;
    if (points > CFG_POINTS_MAX) {
        where(p, &c->requests, "requests",
              "the sweep has %.3g points (context_lengths x concurrent_requests x "
              "rate_per_second); at most %d are allowed in one run",
              points, CFG_POINTS_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < c->n_tenants; i++) {
        const struct tenant_cfg *t = &c->tenants[i];
        char prefix[CFG_PATH_MAX], path[CFG_PATH_MAX + 32];
        snprintf(prefix, sizeof(prefix), "tenants[%zu]", i);
        if (!t->name || !*t->name) {
            snprintf(path, sizeof(path), "%s.name", prefix);
            where(p, &t->name, path, "must be set and not empty");
            where_owner(p, t);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->tenants[j].name, t->name) == 0) {
                snprintf(path, sizeof(path), "%s.name", prefix);
                where(p, &t->name, path, "duplicate tenant name \"%.60s\" (also tenants[%zu])",
                      t->name, j);
                where_owner(p, t);
                return -EINVAL;
            }
        }
        snprintf(path, sizeof(path), "%s.endpoint", prefix);
        rc = check_endpoint(p, &t->endpoint, path, t);
        if (rc)
            return rc;
        if (t->model && !*t->model) {
            snprintf(path, sizeof(path), "%s.model", prefix);
            where(p, &t->model, path, "must not be empty");
            where_owner(p, t);
            return -EINVAL;
        }
        snprintf(path, sizeof(path), "%s.requests", prefix);
        rc = check_requests(p, &t->requests, path, c->tenants_given, t);
        if (rc)
            return rc;
        snprintf(path, sizeof(path), "%s.slo", prefix);
        rc = check_slo(p, &t->slo, path, t);
        if (rc)
            return rc;
        snprintf(path, sizeof(path), "%s.requests", prefix);
        rc = stop_rule_find_problem(p, &t->requests, &t->slo, path, t);
        if (rc)
            return rc;
        /* Every context against this tenant (a failure must not be overwritten by a later
         * context that fits). */
        for (size_t k = 0; k < c->n_context_lengths; k++) {
            rc = check_context(p, c, k, &t->requests, path);
            if (rc)
                return rc;
        }
        rc = check_memory(p, &t->requests, path, t);
        if (rc)
            return rc;
    }

    rc = check_num(p, &c->telemetry.sample_interval_sec, 0.05, true, INFINITY, "telemetry",
                   "sample_interval_sec", NULL);
    if (!rc)
        rc = check_num(p, &c->telemetry.sample_interval_sec, 0.05, true, CFG_INTERVAL_MAX_S,
                       "telemetry", "sample_interval_sec", NULL);
    if (rc)
        return rc;
    return study_find_problem(c, p);
}

int config_check(const struct config *c, char *err, size_t errlen)
{
    struct cfg_problem p;
    int rc = config_find_problem(c, &p);
    if (rc && errlen > 0)
        snprintf(err, errlen, "%s: %s", p.at[0].path, p.at[0].msg);
    return rc;
}

const char *config_prompt_note(const struct config *c)
{
    return c->prompt_lengths_unused
               ? "context_lengths set every prompt (context minus the request's output), so "
                 "requests.prompt_tokens_min/max are not used; the server's window is its own "
                 "setting (max_model_len)"
               : NULL;
}
