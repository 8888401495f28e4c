/*
 * study_cfg.c - defaults, release and rules of the study sections (study_cfg.h). The YAML
 * side is in config_load.c with the rest of the schema; the rules live here and name the
 * member at fault, so the loader can add its file:line:column.
 */
#include "config/study_cfg.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

void str_list_release(struct str_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void setup_cfg_release(struct setup_cfg *s)
{
    free(s->name);
    free(s->model);
    free(s->quantization);
    free(s->kv_cache_dtype);
    str_list_release(&s->extra_args);
    memset(s, 0, sizeof(*s));
}

static void setup_cfg_unset(struct setup_cfg *s)
{
    memset(s, 0, sizeof(*s));
    s->enable_prefix_caching = -1;
}

void study_cfg_defaults(struct study_cfg *s)
{
    memset(s, 0, sizeof(*s));
    s->gpu = xstrdup("rtx-pro-6000");
    s->users.v = xcalloc(1, sizeof(int));
    s->users.v[0] = 10;
    s->users.n = 1;
    s->capacity_search = true;
    s->max_users = 256;
    s->requests_per_user = 4;
    s->min_requests = 20;
    s->max_requests = 0;
    s->warmup_per_user = 1;
    s->stop_when_decided = true;
    setup_cfg_unset(&s->defaults);
    s->backend.type = xstrdup("sim");
    s->backend.startup_timeout_s = 1800;
    s->backend.stop_grace_s = 30;
    s->slurm.signal_s = 300;
    s->k8s.image = xstrdup("testbench:latest");
    s->k8s.storage_size = xstrdup("20Gi");
    s->k8s.access_mode = xstrdup("ReadWriteMany");
    s->k8s.gpu_resource = xstrdup("nvidia.com/gpu");
    s->k8s.hf_token_secret = xstrdup("hf-token");
}

void study_cfg_release(struct study_cfg *s)
{
    free(s->name);
    free(s->gpu);
    free(s->catalog);
    free(s->users.v);
    setup_cfg_release(&s->defaults);
    struct setup_grid *g = &s->grid;
    str_list_release(&g->model);
    str_list_release(&g->quantization);
    str_list_release(&g->kv_cache_dtype);
    free(g->max_model_len.v);
    free(g->gpu_memory_utilization.v);
    free(g->tensor_parallel_size.v);
    free(g->max_num_seqs.v);
    for (size_t i = 0; i < s->n_list; i++)
        setup_cfg_release(&s->list[i]);
    free(s->list);
    for (size_t i = 0; i < s->n_workloads; i++) {
        free(s->workloads[i].name);
        free(s->workloads[i].config);
        free(s->workloads[i].population);
        free(s->workloads[i].slo_profile);
    }
    free(s->workloads);
    struct study_backend_cfg *b = &s->backend;
    free(b->type);
    free(b->image);
    free(b->gpus);
    free(b->hf_cache);
    free(b->network);
    str_list_release(&b->docker_args);
    free(b->command);
    free(b->endpoint);
    free(b->gpu_ids.v);
    struct study_slurm_cfg *sl = &s->slurm;
    free(sl->partition);
    free(sl->account);
    free(sl->time);
    free(sl->gres);
    str_list_release(&sl->extra_args);
    free(sl->testbench);
    struct study_k8s_cfg *k = &s->k8s;
    free(k->namespace_);
    free(k->image);
    free(k->storage_class);
    free(k->storage_size);
    free(k->access_mode);
    free(k->hf_token_secret);
    free(k->gpu_resource);
    memset(s, 0, sizeof(*s));
}

size_t study_cfg_n_setups(const struct study_cfg *s)
{
    if (!s->grid_given)
        return s->n_list ? s->n_list : 1;
    const struct setup_grid *g = &s->grid;
    const size_t dims[] = {
        g->model.n,         g->quantization.n,           g->kv_cache_dtype.n,
        g->max_model_len.n, g->gpu_memory_utilization.n, g->tensor_parallel_size.n,
        g->max_num_seqs.n};
    size_t n = 1;
    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++)
        n *= dims[i] ? dims[i] : 1;
    return n + s->n_list;
}

char *study_workload_path(const char *study_file, const struct workload_cfg *w)
{
    if (!w || !w->config)
        return xstrdup(study_file);
    if (w->config[0] == '/')
        return xstrdup(w->config);
    const char *slash = strrchr(study_file, '/');
    if (!slash)
        return xstrdup(w->config);
    return xasprintf("%.*s/%s", (int)(slash - study_file), study_file, w->config);
}

/* ==== Rules ==== */

/* Bounds that keep a study's planning and memory sane (a probe's requests are held in memory,
 * each setup is planned in tens of milliseconds): plan's own user ceiling, a probe of at most a
 * million requests, a thousand setups (under a minute of planning). */
#define STUDY_MAX_USERS 100000
#define STUDY_MAX_PROBE_REQUESTS 1000000
#define STUDY_MAX_SETUPS 1000
#define STUDY_MAX_TP 64
#define STUDY_MAX_MODEL_LEN 10000000
#define STUDY_MAX_STARTUP_S (7 * 86400.0)
#define STUDY_MAX_STOP_GRACE_S 3600.0

static int check_int_max(struct cfg_problem *p, const int *v, int max, const char *prefix,
                         const char *key, const void *fallback)
{
    if (*v <= max)
        return 0;
    return problem_at(p, v, prefix, key, fallback, "must be at most %d, got %d", max, *v);
}

static const char *const backend_types[] = {"sim", "docker", "command", "none"};

static int check_setup(struct cfg_problem *p, const struct setup_cfg *s, const char *prefix)
{
    int rc = check_int_min(p, &s->max_model_len, 0, prefix, "max_model_len", s);
    if (!rc)
        rc = check_int_max(p, &s->max_model_len, STUDY_MAX_MODEL_LEN, prefix, "max_model_len", s);
    if (!rc)
        rc = check_int_max(p, &s->tensor_parallel_size, STUDY_MAX_TP, prefix,
                           "tensor_parallel_size", s);
    if (!rc && s->gpu_memory_utilization != 0)
        rc = check_num(p, &s->gpu_memory_utilization, 0, false, 1, prefix, "gpu_memory_utilization",
                       s);
    if (!rc)
        rc = check_int_min(p, &s->tensor_parallel_size, 0, prefix, "tensor_parallel_size", s);
    if (!rc)
        rc = check_int_min(p, &s->max_num_seqs, 0, prefix, "max_num_seqs", s);
    return rc;
}

static int check_int_items(struct cfg_problem *p, const struct int_list *l, int min, int max,
                           const char *path)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i] >= min && l->v[i] <= max)
            continue;
        char full[CFG_PATH_MAX + 40];
        snprintf(full, sizeof(full), "%s[%zu]", path, i);
        if (l->v[i] < min)
            where(p, &l->v[i], full, "must be at least %d, got %d", min, l->v[i]);
        else
            where(p, &l->v[i], full, "must be at most %d, got %d", max, l->v[i]);
        where_owner(p, l);
        return -EINVAL;
    }
    return 0;
}

/* docker's --gpus: "all", a count, or its key=value form ("device=0,1"); "none" leaves the flag
 * out. Docker checks the key=value form itself. */
static bool gpus_ok(const char *g)
{
    if (strcmp(g, "none") == 0 || strcmp(g, "all") == 0)
        return true;
    if (!*g || strpbrk(g, " \t\n"))
        return false;
    if (strchr(g, '='))
        return true;
    return strspn(g, "0123456789") == strlen(g) && strspn(g, "0") != strlen(g);
}

/* backend.gpus and backend.network, whatever the type: --backend docker may pick them later. */
static int check_docker(struct cfg_problem *p, const struct study_backend_cfg *b)
{
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_.-";
    if (b->gpus && !gpus_ok(b->gpus)) {
        where(p, &b->gpus, "backend.gpus",
              "\"%.40s\" is not none, all, a GPU count or docker's device=... form", b->gpus);
        return -EINVAL;
    }
    const char *n = b->network;
    if (!n)
        return 0;
    if (!*n || strspn(n, name_chars) != strlen(n) || strchr("_.-", n[0])) {
        where(p, &b->network, "backend.network",
              "\"%.40s\" is not a docker network name: host, or a network such as "
              "testbench_default",
              n);
        return -EINVAL;
    }
    if (strcmp(n, "none") == 0 || strcmp(n, "bridge") == 0) {
        where(p, &b->network, "backend.network",
              "the study cannot reach a container on network %s; use host, a network of your "
              "own, or null (vLLM's port published on 127.0.0.1)",
              n);
        return -EINVAL;
    }
    return 0;
}

static int check_backend(struct cfg_problem *p, const struct study_backend_cfg *b)
{
    size_t k = 0, n = sizeof(backend_types) / sizeof(backend_types[0]);
    while (k < n && strcmp(backend_types[k], b->type) != 0)
        k++;
    if (k == n) {
        where(p, &b->type, "backend.type",
              "unknown backend \"%.40s\"; allowed: sim, docker, command, none", b->type);
        return -EINVAL;
    }
    if (strcmp(b->type, "command") == 0 && (!b->command || !*b->command)) {
        where(p, &b->command, "backend.command",
              "the command backend needs a command template, e.g. \"vllm serve {model} "
              "--port {port} {quantization_flag}\"");
        where_owner(p, b);
        return -EINVAL;
    }
    int rc = check_num(p, &b->startup_timeout_s, 0, false, STUDY_MAX_STARTUP_S, "backend",
                       "startup_timeout_s", b);
    if (!rc)
        rc = check_num(p, &b->stop_grace_s, 0, true, STUDY_MAX_STOP_GRACE_S, "backend",
                       "stop_grace_s", b);
    if (!rc && (b->port < 0 || b->port > 65535)) {
        where(p, &b->port, "backend.port", "must be a TCP port (1-65535) or 0 for a free one");
        rc = -EINVAL;
    }
    if (!rc)
        rc = check_docker(p, b);
    if (!rc)
        rc = check_int_items(p, &b->gpu_ids, 0, 4095, "backend.gpu_ids");
    for (size_t i = 0; !rc && i < b->gpu_ids.n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (b->gpu_ids.v[j] == b->gpu_ids.v[i]) {
                where(p, &b->gpu_ids, "backend.gpu_ids", "GPU %d is listed twice", b->gpu_ids.v[i]);
                rc = -EINVAL;
                break;
            }
        }
    }
    if (!rc)
        rc = check_int_min(p, &b->gpus_per_setup, 0, "backend", "gpus_per_setup", b);
    return rc;
}

static const char *const k8s_access_modes[] = {"ReadWriteMany", "ReadWriteOnce",
                                               "ReadWriteOncePod"};

static int check_executors(struct cfg_problem *p, const struct study_cfg *s)
{
    int rc = check_int_min(p, &s->slurm.signal_s, 0, "slurm", "signal_s", &s->slurm);
    if (!rc)
        rc = check_int_min(p, &s->slurm.max_parallel, 0, "slurm", "max_parallel", &s->slurm);
    if (!rc)
        rc = check_int_min(p, &s->k8s.max_parallel, 0, "kubernetes", "max_parallel", &s->k8s);
    size_t k = 0, n = sizeof(k8s_access_modes) / sizeof(k8s_access_modes[0]);
    while (!rc && k < n && strcmp(k8s_access_modes[k], s->k8s.access_mode) != 0)
        k++;
    if (!rc && k == n) {
        where(p, &s->k8s.access_mode, "kubernetes.access_mode",
              "unknown access mode \"%.40s\"; allowed: ReadWriteMany, ReadWriteOnce, "
              "ReadWriteOncePod",
              s->k8s.access_mode);
        rc = -EINVAL;
    }
    /* Slurm's options and Kubernetes' names end up on #SBATCH lines and in YAML: one line. */
    const char *const *one_line[] = {
        (const char *const *)&s->slurm.partition, (const char *const *)&s->slurm.account,
        (const char *const *)&s->slurm.time, (const char *const *)&s->slurm.gres};
    static const char *const names[] = {"slurm.partition", "slurm.account", "slurm.time",
                                        "slurm.gres"};
    for (size_t i = 0; !rc && i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = *one_line[i];
        if (v && strpbrk(v, "\n\r '\"")) {
            where(p, one_line[i], names[i], "must be one word (no blanks, quotes or line breaks)");
            rc = -EINVAL;
        }
    }
    for (size_t i = 0; !rc && i < s->slurm.extra_args.n; i++) {
        if (strpbrk(s->slurm.extra_args.v[i], "\n\r")) {
            where(p, &s->slurm.extra_args, "slurm.extra_args", "an option holds a line break");
            rc = -EINVAL;
        }
    }
    return rc;
}

static int check_workloads(struct cfg_problem *p, const struct study_cfg *s)
{
    for (size_t i = 0; i < s->n_workloads; i++) {
        const struct workload_cfg *w = &s->workloads[i];
        char path[CFG_PATH_MAX];
        snprintf(path, sizeof(path), "workloads[%zu]", i);
        if (!w->name || !*w->name || strchr(w->name, '/')) {
            char np[CFG_PATH_MAX + 8];
            snprintf(np, sizeof(np), "%s.name", path);
            where(p, &w->name, np, "must be set: a short name without '/'");
            where_owner(p, w);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->workloads[j].name, w->name) == 0) {
                char np[CFG_PATH_MAX + 8];
                snprintf(np, sizeof(np), "%s.name", path);
                where(p, &w->name, np, "duplicate workload name \"%.60s\"", w->name);
                return -EINVAL;
            }
        }
        if (!isnan(w->window_fill)) {
            int rc = check_num(p, &w->window_fill, 0, false, 1, path, "window_fill", w);
            if (rc)
                return rc;
        }
        if (w->population && strcmp(w->population, "sessions") != 0 &&
            strcmp(w->population, "streams") != 0) {
            char np[CFG_PATH_MAX + 16];
            snprintf(np, sizeof(np), "%s.population", path);
            where(p, &w->population, np,
                  "expected sessions (users in conversation) or streams (closed-loop request "
                  "streams, a batch job), got \"%.40s\"",
                  w->population);
            return -EINVAL;
        }
        if (w->slo_profile && !slo_profile_find(w->slo_profile)) {
            char np[CFG_PATH_MAX + 16];
            snprintf(np, sizeof(np), "%s.slo_profile", path);
            where(p, &w->slo_profile, np, "unknown SLO profile \"%.40s\"; allowed: %s",
                  w->slo_profile, slo_profile_names());
            return -EINVAL;
        }
    }
    return 0;
}

/* Every setup needs a model: from the grid, its list entry, setups.defaults or model.name. */
static int check_models(struct cfg_problem *p, const struct config *c)
{
    const struct study_cfg *s = &c->study;
    bool fallback = s->defaults.model || c->model.name;
    if (s->grid_given && !s->grid.model.n && !fallback) {
        where(p, &s->grid, "setups.grid",
              "no model: give setups.grid.model, setups.defaults.model or model.name");
        return -EINVAL;
    }
    for (size_t i = 0; i < s->n_list; i++) {
        if (!s->list[i].model && !fallback) {
            char path[CFG_PATH_MAX];
            snprintf(path, sizeof(path), "setups.list[%zu]", i);
            where(p, &s->list[i], path,
                  "no model: give model here, in setups.defaults or in model.name");
            return -EINVAL;
        }
    }
    if (!s->grid_given && !s->n_list && !fallback) {
        where(p, &s->name, "study", "no setups: give setups.grid or setups.list");
        return -EINVAL;
    }
    return 0;
}

int study_find_problem(const struct config *c, struct cfg_problem *p)
{
    const struct study_cfg *s = &c->study;
    if (!s->present)
        return 0;
    if (s->name && (!*s->name || strchr(s->name, '/'))) {
        where(p, &s->name, "study.name", "must be a short name without '/'");
        return -EINVAL;
    }
    if (!s->gpu || !*s->gpu) {
        where(p, &s->gpu, "study.gpu", "must name a GPU of the catalog, e.g. rtx-pro-6000");
        return -EINVAL;
    }
    if (!s->users.n) {
        where(p, &s->users, "study.users", "must list at least one number of users");
        return -EINVAL;
    }
    int rc = check_int_items(p, &s->users, 1, STUDY_MAX_USERS, "study.users");
    if (!rc)
        rc = check_int_min(p, &s->max_users, 1, "study", "max_users", NULL);
    if (!rc)
        rc = check_int_max(p, &s->max_users, STUDY_MAX_USERS, "study", "max_users", NULL);
    if (!rc)
        rc = check_int_min(p, &s->requests_per_user, 1, "study", "requests_per_user", NULL);
    if (!rc)
        rc = check_int_min(p, &s->min_requests, 1, "study", "min_requests", NULL);
    if (!rc)
        rc = check_int_max(p, &s->min_requests, STUDY_MAX_PROBE_REQUESTS, "study", "min_requests",
                           NULL);
    if (!rc)
        rc = check_int_min(p, &s->max_requests, 0, "study", "max_requests", NULL);
    if (!rc)
        rc = check_int_max(p, &s->max_requests, STUDY_MAX_PROBE_REQUESTS, "study", "max_requests",
                           NULL);
    if (!rc)
        rc = check_int_min(p, &s->warmup_per_user, 0, "study", "warmup_per_user", NULL);
    long most = s->capacity_search ? s->max_users : 0;
    for (size_t i = 0; i < s->users.n; i++)
        most = s->users.v[i] > most ? s->users.v[i] : most;
    if (!rc && most * (long)s->requests_per_user > STUDY_MAX_PROBE_REQUESTS)
        rc = problem_at(p, &s->requests_per_user, "study", "requests_per_user", NULL,
                        "%d requests per user at %ld users is %ld requests in one probe; at most "
                        "%d are allowed (lower it, or the users)",
                        s->requests_per_user, most, most * (long)s->requests_per_user,
                        STUDY_MAX_PROBE_REQUESTS);
    if (!rc)
        rc = check_setup(p, &s->defaults, "setups.defaults");
    for (size_t i = 0; !rc && i < s->n_list; i++) {
        char path[CFG_PATH_MAX];
        snprintf(path, sizeof(path), "setups.list[%zu]", i);
        rc = check_setup(p, &s->list[i], path);
    }
    if (!rc)
        rc = check_int_items(p, &s->grid.max_model_len, 1, STUDY_MAX_MODEL_LEN,
                             "setups.grid.max_model_len");
    if (!rc)
        rc = check_int_items(p, &s->grid.tensor_parallel_size, 1, STUDY_MAX_TP,
                             "setups.grid.tensor_parallel_size");
    if (!rc)
        rc = check_int_items(p, &s->grid.max_num_seqs, 1, INT_MAX, "setups.grid.max_num_seqs");
    size_t n_setups = study_cfg_n_setups(s);
    if (!rc && n_setups > STUDY_MAX_SETUPS) {
        where(p, s->grid_given ? (const void *)&s->grid : (const void *)&s->name, "setups",
              "%zu setups; at most %d are allowed (each is planned and may be launched): split "
              "the study",
              n_setups, STUDY_MAX_SETUPS);
        rc = -EINVAL;
    }
    if (!rc && strcmp(s->backend.type, "none") == 0 && n_setups > 1) {
        where(p, &s->backend.type, "backend.type",
              "the none backend measures one server someone else runs, so one setup; this "
              "study has %zu (use sim, docker or command to launch each)",
              n_setups);
        rc = -EINVAL;
    }
    for (size_t i = 0; !rc && i < s->grid.gpu_memory_utilization.n; i++) {
        char key[48];
        snprintf(key, sizeof(key), "gpu_memory_utilization[%zu]", i);
        rc = check_num(p, &s->grid.gpu_memory_utilization.v[i], 0, false, 1, "setups.grid", key,
                       &s->grid);
    }
    if (!rc)
        rc = check_models(p, c);
    if (!rc)
        rc = check_workloads(p, s);
    if (!rc)
        rc = check_backend(p, &s->backend);
    if (!rc)
        rc = check_executors(p, s);
    if (!rc && c->tenants_given) {
        where(p, &c->tenants, "tenants",
              "a study measures one tenant per server; put tenants in a run config instead");
        rc = -EINVAL;
    }
    return rc;
}
