/*
 * workload_cfg.c - defaults, copies, JSON and rules of requests.output_tokens, .dataset,
 * .trace and .rag (workload_cfg.h). The YAML tables are in config_load.c with the rest of
 * the schema; the rules name the member at fault so the loader can add file:line:column.
 */
#include "config/workload_cfg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/config_internal.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define PATH(buf, prefix, key) key_path(buf, sizeof(buf), prefix, key)

/* prefix.key; a path cut at CFG_PATH_MAX still names the place. */
static void key_path(char *buf, size_t len, const char *prefix, const char *key)
{
    int n = snprintf(buf, len, "%s.%s", prefix, key);
    if (n < 0 || (size_t)n >= len)
        buf[len - 1] = '\0';
}

static const char *const length_names[] = {"fixed", "uniform", "normal", "lognormal", "dataset"};
static const char *const dataset_names[] = {"sharegpt", "jsonl", "text"};
static const char *const trace_names[] = {"jsonl", "csv"};
static const struct {
    const char *name;
    double ns;
} time_units[] = {{"ms", 1e6}, {"s", 1e9}, {"us", 1e3}};

static int name_index(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

int length_kind_parse(const char *s, enum length_kind *out)
{
    int i = s ? name_index(s, length_names, N_ELEMS(length_names)) : LEN_FIXED;
    if (i < 0)
        return -EINVAL;
    *out = (enum length_kind)i;
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int dataset_format_parse(const char *s, const char *path, enum dataset_format *out)
{
    if (!s) {
        *out = path && ends_with(path, ".jsonl")  ? DS_JSONL
               : path && ends_with(path, ".json") ? DS_SHAREGPT
                                                  : DS_TEXT;
        return 0;
    }
    int i = name_index(s, dataset_names, N_ELEMS(dataset_names));
    if (i < 0)
        return -EINVAL;
    *out = (enum dataset_format)i;
    return 0;
}

int trace_format_parse(const char *s, const char *path, enum trace_format *out)
{
    if (!s) {
        *out = path && ends_with(path, ".csv") ? TRACE_CSV : TRACE_JSONL;
        return 0;
    }
    int i = name_index(s, trace_names, N_ELEMS(trace_names));
    if (i < 0)
        return -EINVAL;
    *out = (enum trace_format)i;
    return 0;
}

double trace_time_unit_ns(const char *s)
{
    if (!s)
        return 1e6;
    for (size_t i = 0; i < N_ELEMS(time_units); i++)
        if (strcmp(s, time_units[i].name) == 0)
            return time_units[i].ns;
    return 0;
}

/* ==== Defaults, copies, release ==== */

void workload_cfg_defaults(struct requests_cfg *r)
{
    memset(&r->output_tokens, 0, sizeof(r->output_tokens));
    r->output_tokens.min = 1;
    memset(&r->dataset, 0, sizeof(r->dataset));
    r->dataset.min_prompt_tokens = 1;
    memset(&r->trace, 0, sizeof(r->trace));
    r->trace.speed = 1.0;
    r->trace.block_tokens = 512;
    memset(&r->rag, 0, sizeof(r->rag));
    r->rag.document_tokens = 1000;
    r->rag.documents_per_request = 1;
    r->rag.question_tokens = 32;
}

void workload_cfg_copy(struct requests_cfg *dst, const struct requests_cfg *src)
{
    dst->output_tokens.distribution = xstrdup(src->output_tokens.distribution);
    dst->dataset.path = xstrdup(src->dataset.path);
    dst->dataset.format = xstrdup(src->dataset.format);
    dst->dataset.turns = xstrdup(src->dataset.turns);
    dst->trace.path = xstrdup(src->trace.path);
    dst->trace.format = xstrdup(src->trace.format);
    dst->trace.time_unit = xstrdup(src->trace.time_unit);
}

void workload_cfg_release(struct requests_cfg *r)
{
    free(r->output_tokens.distribution);
    free(r->dataset.path);
    free(r->dataset.format);
    free(r->dataset.turns);
    free(r->trace.path);
    free(r->trace.format);
    free(r->trace.time_unit);
    r->output_tokens.distribution = NULL;
    r->dataset.path = r->dataset.format = r->dataset.turns = NULL;
    r->trace.path = r->trace.format = r->trace.time_unit = NULL;
}

bool workload_cfg_sets_prompts(const struct requests_cfg *r)
{
    return r->dataset.path || r->trace.path || r->rag.documents > 0;
}

/* ==== JSON ==== */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

void workload_cfg_to_json(json_t *o, const struct requests_cfg *r)
{
    enum length_kind k = LEN_FIXED;
    (void)length_kind_parse(r->output_tokens.distribution, &k);
    json_object_set_new(
        o, "output_tokens",
        json_pack("{s:s, s:f, s:f, s:i, s:i}", "distribution", length_names[k], "mean",
                  r->output_tokens.mean ? r->output_tokens.mean : r->completion_tokens, "stddev",
                  r->output_tokens.stddev, "min", r->output_tokens.min, "max",
                  r->output_tokens.max));
    enum dataset_format df = DS_TEXT;
    (void)dataset_format_parse(r->dataset.format, r->dataset.path, &df);
    json_object_set_new(
        o, "dataset",
        json_pack("{s:o, s:o, s:s, s:i, s:i, s:b}", "path", str_or_null(r->dataset.path), "format",
                  r->dataset.path ? json_string(dataset_names[df]) : json_null(), "turns",
                  r->dataset.turns ? r->dataset.turns : "first", "min_prompt_tokens",
                  r->dataset.min_prompt_tokens, "max_prompt_tokens", r->dataset.max_prompt_tokens,
                  "replacement", r->dataset.replacement));
    enum trace_format tf = TRACE_JSONL;
    (void)trace_format_parse(r->trace.format, r->trace.path, &tf);
    json_object_set_new(o, "trace",
                        json_pack("{s:o, s:o, s:f, s:i, s:s}", "path", str_or_null(r->trace.path),
                                  "format",
                                  r->trace.path ? json_string(trace_names[tf]) : json_null(),
                                  "speed", r->trace.speed, "block_tokens", r->trace.block_tokens,
                                  "time_unit", r->trace.time_unit ? r->trace.time_unit : "ms"));
    json_object_set_new(o, "rag",
                        json_pack("{s:i, s:i, s:i, s:i, s:f}", "documents", r->rag.documents,
                                  "document_tokens", r->rag.document_tokens,
                                  "documents_per_request", r->rag.documents_per_request,
                                  "question_tokens", r->rag.question_tokens, "skew", r->rag.skew));
}

/* ==== Rules ==== */

static int bad_name(struct cfg_problem *p, char *const *v, const char *prefix, const char *key,
                    const char *allowed, const void *owner)
{
    return problem_at(p, v, prefix, key, owner, "unknown name \"%.40s\"; allowed: %s", *v, allowed);
}

static int check_output(struct cfg_problem *p, const struct requests_cfg *r, const char *prefix,
                        const void *owner)
{
    const struct length_dist *d = &r->output_tokens;
    char pre[CFG_PATH_MAX];
    PATH(pre, prefix, "output_tokens");
    enum length_kind k;
    if (length_kind_parse(d->distribution, &k))
        return bad_name(p, &d->distribution, pre, "distribution",
                        "fixed, uniform, normal, lognormal, dataset", owner);
    int rc = check_num(p, &d->mean, 0, true, 1e9, pre, "mean", owner);
    if (!rc)
        rc = check_num(p, &d->stddev, 0, true, 1e9, pre, "stddev", owner);
    if (!rc)
        rc = check_int_min(p, &d->min, 1, pre, "min", owner);
    if (!rc)
        rc = check_int_min(p, &d->max, 0, pre, "max", owner);
    if (!rc && d->max > 0) /* 0: no upper bound */
        rc = check_min_max(p, &d->min, &d->max, pre, "min", "max", owner);
    if (rc)
        return rc;
    if (k == LEN_DATASET && !r->dataset.path)
        return problem_at(p, &d->distribution, pre, "distribution", owner,
                          "\"dataset\" takes output lengths from requests.dataset, which is not "
                          "set");
    return 0;
}

static int check_dataset(struct cfg_problem *p, const struct dataset_cfg *d, const char *prefix,
                         const void *owner)
{
    char pre[CFG_PATH_MAX];
    PATH(pre, prefix, "dataset");
    enum dataset_format f;
    if (dataset_format_parse(d->format, d->path, &f))
        return bad_name(p, &d->format, pre, "format", "sharegpt, jsonl, text", owner);
    if (d->turns && strcmp(d->turns, "first") != 0 && strcmp(d->turns, "all") != 0)
        return bad_name(p, &d->turns, pre, "turns", "first, all", owner);
    int rc = check_not_empty(p, &d->path, pre, "path", owner);
    if (!rc)
        rc = check_int_min(p, &d->min_prompt_tokens, 1, pre, "min_prompt_tokens", owner);
    if (!rc)
        rc = check_int_min(p, &d->max_prompt_tokens, 0, pre, "max_prompt_tokens", owner);
    if (!rc && d->max_prompt_tokens > 0) /* 0: no upper bound */
        rc = check_min_max(p, &d->min_prompt_tokens, &d->max_prompt_tokens, pre,
                           "min_prompt_tokens", "max_prompt_tokens", owner);
    return rc;
}

static int check_trace(struct cfg_problem *p, const struct trace_cfg *t, const char *prefix,
                       const void *owner)
{
    char pre[CFG_PATH_MAX];
    PATH(pre, prefix, "trace");
    enum trace_format f;
    if (trace_format_parse(t->format, t->path, &f))
        return bad_name(p, &t->format, pre, "format", "jsonl, csv", owner);
    if (trace_time_unit_ns(t->time_unit) == 0)
        return bad_name(p, &t->time_unit, pre, "time_unit", "ms, s, us", owner);
    int rc = check_not_empty(p, &t->path, pre, "path", owner);
    if (!rc)
        rc = check_num(p, &t->speed, TRACE_MIN_SPEED, true, 1e6, pre, "speed", owner);
    if (!rc)
        rc = check_int_min(p, &t->block_tokens, 1, pre, "block_tokens", owner);
    return rc;
}

static int check_rag(struct cfg_problem *p, const struct rag_cfg *g, const char *prefix,
                     const void *owner)
{
    char pre[CFG_PATH_MAX];
    PATH(pre, prefix, "rag");
    int rc = check_int_min(p, &g->documents, 0, pre, "documents", owner);
    if (!rc)
        rc = check_int_min(p, &g->document_tokens, 1, pre, "document_tokens", owner);
    if (!rc)
        rc = check_int_min(p, &g->documents_per_request, 1, pre, "documents_per_request", owner);
    if (!rc)
        rc = check_int_min(p, &g->question_tokens, 1, pre, "question_tokens", owner);
    if (!rc)
        rc = check_num(p, &g->skew, 0, true, 10, pre, "skew", owner);
    if (!rc && g->documents > RAG_MAX_DOCUMENTS)
        rc = problem_at(p, &g->documents, pre, "documents", owner,
                        "%d is more than the %d a pool may hold", g->documents, RAG_MAX_DOCUMENTS);
    if (!rc && g->documents_per_request > RAG_MAX_PER_REQUEST)
        rc = problem_at(p, &g->documents_per_request, pre, "documents_per_request", owner,
                        "%d is more than the %d one prompt may hold", g->documents_per_request,
                        RAG_MAX_PER_REQUEST);
    double tokens = (double)g->documents_per_request * g->document_tokens + g->question_tokens;
    if (!rc && g->documents > 0 && tokens > RAG_MAX_PROMPT_TOKENS)
        rc = problem_at(p, &g->document_tokens, pre, "document_tokens", owner,
                        "a prompt of %d documents of %d tokens (+ %d for the question) is %.0f "
                        "tokens, more than the %.0f of the longest context window",
                        g->documents_per_request, g->document_tokens, g->question_tokens, tokens,
                        RAG_MAX_PROMPT_TOKENS);
    if (rc)
        return rc;
    if (g->documents > 0 && g->documents_per_request > g->documents)
        return problem_at(p, &g->documents_per_request, pre, "documents_per_request", owner,
                          "%d is more than the pool's documents (%d)", g->documents_per_request,
                          g->documents);
    return 0;
}

int workload_cfg_find_problem(struct cfg_problem *p, const struct requests_cfg *r,
                              const char *prefix, const void *owner)
{
    int rc = check_output(p, r, prefix, owner);
    if (!rc)
        rc = check_dataset(p, &r->dataset, prefix, owner);
    if (!rc)
        rc = check_trace(p, &r->trace, prefix, owner);
    if (!rc)
        rc = check_rag(p, &r->rag, prefix, owner);
    if (rc)
        return rc;
    /* One source of prompts: each decides the prompt lengths its own way. */
    int sources = !!r->dataset.path + !!r->trace.path + (r->rag.documents > 0);
    if (sources > 1) {
        const void *at = r->trace.path ? (const void *)&r->trace.path : (const void *)&r->rag;
        return problem_at(p, at, prefix, r->trace.path ? "trace.path" : "rag", owner,
                          "dataset, trace and rag are alternatives: set one of them");
    }
    if (sources && r->shared_prefix_tokens > 0)
        return problem_at(p, &r->shared_prefix_tokens, prefix, "shared_prefix_tokens", owner,
                          "cannot be combined with %s (it builds its own prompts)",
                          r->dataset.path ? "dataset"
                          : r->trace.path ? "trace"
                                          : "rag");
    return 0;
}
