/*
 * load.c - what `report` and `compare` read. A run is its detailed.json (the source of every
 * figure) plus the telemetry.json of the same stamp; summary.csv is redundant with the
 * summaries in detailed.json and is not read. A study folder is recognised by its study.csv.
 */
#include "report/load.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"

#define DETAILED_SUFFIX "_detailed.json"
#define SUMMARY_SUFFIX "_summary.csv"
#define TELEMETRY_SUFFIX "_telemetry.json"
/* Files above this size get a line on stderr while they load. */
#define PROGRESS_BYTES (16u * 1024 * 1024)

void report_input_init(struct report_input *in)
{
    memset(in, 0, sizeof(*in));
}

static void run_release(struct report_run *r)
{
    free(r->path);
    free(r->telemetry_path);
    free(r->label);
    free(r->study_setup);
    json_decref(r->detailed);
    json_decref(r->telemetry);
    free(r->model);
    free(r->quantization);
    free(r->kv_dtype);
    free(r->gpu);
}

void report_input_release(struct report_input *in)
{
    for (size_t i = 0; i < in->n_runs; i++)
        run_release(&in->runs[i]);
    free(in->runs);
    for (size_t i = 0; i < in->n_studies; i++) {
        free(in->studies[i].dir);
        free(in->studies[i].name);
        csv_table_release(&in->studies[i].csv);
        json_decref(in->studies[i].definition);
    }
    free(in->studies);
    memset(in, 0, sizeof(*in));
}

double json_num(const json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

void json_num_write(FILE *f, const json_t *j, const char *key, const char *fmt)
{
    double v = json_num(j, key);
    if (isnan(v))
        fputs("–", f);
    else
        fprintf(f, fmt, v);
}

double summary_dist(const json_t *summary, const char *key, const char *q)
{
    return json_num(json_object_get(summary, key), q);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* path with one suffix swapped for another (a new string). */
static char *swap_suffix(const char *path, const char *from, const char *to)
{
    size_t stem = strlen(path) - strlen(from);
    return xasprintf("%.*s%s", (int)stem, path, to);
}

/* Loads a JSON file and checks it is a testbench file of a schema we read. */
static int result_json_load(const char *path, json_t **out, bool progress, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    if ((unsigned long long)st.st_size > REPORT_MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s: %.1f GiB is more than a result file this reads (%.0f GiB)", path,
                 (double)st.st_size / (1024.0 * 1024 * 1024),
                 (double)REPORT_MAX_FILE_BYTES / (1024.0 * 1024 * 1024));
        return -EFBIG;
    }
    if (progress || (size_t)st.st_size >= PROGRESS_BYTES)
        log_info("report: reading %s (%.1f MiB)", path, (double)st.st_size / (1024.0 * 1024));
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        snprintf(err, errlen, "%s: not a testbench result (not JSON: line %d: %s)", path, je.line,
                 je.text);
        return -EINVAL;
    }
    const char *tool = json_string_value(json_object_get(json_object_get(j, "tool"), "name"));
    if (!json_is_object(j) || !tool || strcmp(tool, "testbench") != 0) {
        snprintf(err, errlen, "%s: not a testbench result (no \"tool\": {\"name\": \"testbench\"})",
                 path);
        json_decref(j);
        return -EINVAL;
    }
    json_t *sv = json_object_get(j, "schema_version");
    if (json_is_integer(sv) && json_integer_value(sv) > REPORT_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "%s: schema_version %lld is newer than this testbench reads (%d); use a newer "
                 "testbench",
                 path, (long long)json_integer_value(sv), REPORT_SCHEMA_VERSION);
        json_decref(j);
        return -EPROTO;
    }
    *out = j;
    return 0;
}

/* A copy of a config string, or dflt when it is absent or null. */
static char *cfg_str(const json_t *j, const char *dflt)
{
    const char *s = json_string_value(j);
    return xstrdup(s && *s ? s : dflt);
}

/* What the guidance matrix groups by: model, quantization, KV dtype; and a GPU to predict for. */
static void run_describe(struct report_run *r)
{
    json_t *cfg = json_object_get(r->detailed, "config");
    json_t *sim = json_object_get(json_object_get(cfg, "server"), "sim");
    bool on_sim = json_is_true(json_object_get(sim, "enabled"));
    const char *served =
        json_string_value(json_object_get(json_object_get(r->detailed, "server"), "model"));
    if (!served)
        served = json_string_value(json_object_get(json_object_get(cfg, "model"), "name"));
    r->model = xstrdup(served ? served : "unknown");
    json_t *q = json_object_get(json_object_get(cfg, "model"), "quantization");
    if (on_sim && json_is_string(json_object_get(sim, "quantization")))
        q = json_object_get(sim, "quantization");
    r->quantization = cfg_str(q, "default");
    r->kv_dtype =
        on_sim ? cfg_str(json_object_get(sim, "kv_cache_dtype"), "auto") : xstrdup("unknown");
    r->gpu = on_sim ? cfg_str(json_object_get(sim, "gpu"), "") : NULL;
    if (r->gpu && !*r->gpu) {
        free(r->gpu);
        r->gpu = NULL;
    }
}

/* Adds one run by its detailed.json; a run already added (same real path) is not repeated. */
static int run_add(struct report_input *in, const char *detailed, const char *setup, char *err,
                   size_t errlen)
{
    char real[PATH_MAX];
    if (!realpath(detailed, real)) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", detailed, strerror(e));
        return -e;
    }
    for (size_t i = 0; i < in->n_runs; i++)
        if (strcmp(in->runs[i].path, real) == 0)
            return 0;
    if (in->n_runs >= REPORT_MAX_RUNS) {
        snprintf(err, errlen, "%s: more than %d runs given", detailed, REPORT_MAX_RUNS);
        return -E2BIG;
    }
    struct report_run r;
    memset(&r, 0, sizeof(r));
    int rc = result_json_load(real, &r.detailed, in->progress, err, errlen);
    if (rc)
        return rc;
    if (!json_is_array(json_object_get(r.detailed, "points"))) {
        snprintf(err, errlen, "%s: not a testbench run result (no \"points\" array)", real);
        json_decref(r.detailed);
        return -EINVAL;
    }
    r.path = xstrdup(real);
    bool named = ends_with(real, DETAILED_SUFFIX);
    char *tel = named ? swap_suffix(real, DETAILED_SUFFIX, TELEMETRY_SUFFIX) : NULL;
    struct stat st;
    if (tel && stat(tel, &st) == 0) {
        rc = result_json_load(tel, &r.telemetry, in->progress, err, errlen);
        if (rc) {
            free(tel);
            run_release(&r);
            return rc;
        }
        r.telemetry_path = tel;
    } else {
        free(tel);
    }
    const char *base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
    r.label = setup   ? xstrdup(setup)
              : named ? swap_suffix(base, DETAILED_SUFFIX, "")
                      : xstrdup(base);
    r.study_setup = setup ? xstrdup(setup) : NULL;
    run_describe(&r);
    in->runs = xreallocarray(in->runs, in->n_runs + 1, sizeof(*in->runs));
    in->runs[in->n_runs++] = r;
    return 0;
}

/* What study.csv says about a run's setup wins over what the run could tell: the KV dtype of
 * a real server is set where the run does not see it. The label names the setup, workload and
 * users, since a setup has a run per user count. */
static void run_from_study_row(struct report_run *run, const struct csv_table *t, size_t r)
{
    const char *q = csv_table_get(t, r, "quantization");
    const char *kv = csv_table_get(t, r, "kv_cache_dtype");
    if (*q) {
        free(run->quantization);
        run->quantization = xstrdup(q);
    }
    if (*kv) {
        free(run->kv_dtype);
        run->kv_dtype = xstrdup(kv);
    }
    const char *wl = csv_table_get(t, r, "workload");
    const char *users = csv_table_get(t, r, "users");
    free(run->label);
    run->label = xasprintf("%s · %s%s%s users", run->study_setup, wl, *wl ? " · " : "", users);
}

static int study_add(struct report_input *in, const char *dir, char *err, size_t errlen)
{
    if (in->n_studies >= REPORT_MAX_STUDIES) {
        snprintf(err, errlen, "%s: more than %d studies given", dir, REPORT_MAX_STUDIES);
        return -E2BIG;
    }
    /* study.json, when present, says the schema; a newer one is refused like a run's. */
    char *sj = xasprintf("%s/study.json", dir);
    struct stat st;
    int rc = 0;
    json_t *definition = NULL;
    if (stat(sj, &st) == 0) {
        json_t *j = NULL;
        rc = result_json_load(sj, &j, in->progress, err, errlen);
        /* What the answer was judged on (workloads, SLO): the matrix says it. */
        definition = json_incref(json_object_get(j, "definition"));
        json_decref(j);
    }
    free(sj);
    if (rc) {
        json_decref(definition);
        return rc;
    }
    struct report_study s;
    memset(&s, 0, sizeof(s));
    s.definition = definition;
    char *csv = xasprintf("%s/study.csv", dir);
    rc = csv_table_load(&s.csv, csv);
    if (rc == 0 && (csv_table_col(&s.csv, "setup") < 0 || csv_table_col(&s.csv, "status") < 0)) {
        csv_table_release(&s.csv);
        rc = -EINVAL;
    }
    if (rc) {
        snprintf(err, errlen, "%s: not a testbench study file (%s)", csv,
                 rc == -EINVAL ? "no setup and status columns" : strerror(-rc));
        free(csv);
        json_decref(definition);
        return rc;
    }
    free(csv);
    s.dir = xstrdup(dir);
    const char *base = strrchr(dir, '/');
    s.name = xstrdup(base && base[1] ? base + 1 : dir);
    in->studies = xreallocarray(in->studies, in->n_studies + 1, sizeof(*in->studies));
    in->studies[in->n_studies++] = s;
    struct report_study *sp = &in->studies[in->n_studies - 1];
    /* Each run the study measured, once, named by its setup. */
    for (size_t r = 0; r < sp->csv.nrows; r++) {
        const char *rel = csv_table_get(&sp->csv, r, "run_detailed");
        if (!*rel)
            continue;
        char *p = rel[0] == '/' ? xstrdup(rel) : xasprintf("%s/%s", dir, rel);
        size_t before = in->n_runs;
        rc = run_add(in, p, csv_table_get(&sp->csv, r, "setup"), err, errlen);
        free(p);
        if (rc)
            return rc;
        if (in->n_runs > before)
            run_from_study_row(&in->runs[in->n_runs - 1], &sp->csv, r);
    }
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A folder: a study when it has study.csv, else its run files and subfolders, in name order. */
static int dir_add(struct report_input *in, const char *dir, int depth, size_t *found, char *err,
                   size_t errlen)
{
    char *csv = xasprintf("%s/study.csv", dir);
    struct stat st;
    bool is_study = stat(csv, &st) == 0;
    free(csv);
    if (is_study) {
        (*found)++;
        return study_add(in, dir, err, errlen);
    }
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", dir, strerror(e));
        return -e;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            names = xreallocarray(names, n + 1, sizeof(*names));
            names[n++] = xstrdup(e->d_name);
        }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), name_cmp);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char *p = xasprintf("%s/%s", dir, names[i]);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode) && depth < REPORT_MAX_DEPTH) {
            rc = dir_add(in, p, depth + 1, found, err, errlen);
        } else if (S_ISREG(st.st_mode) && ends_with(names[i], DETAILED_SUFFIX)) {
            (*found)++;
            rc = run_add(in, p, NULL, err, errlen);
        }
        free(p);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int path_add(struct report_input *in, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    if (S_ISDIR(st.st_mode)) {
        size_t found = 0;
        int rc = dir_add(in, path, 0, &found, err, errlen);
        if (!rc && !found) {
            snprintf(err, errlen, "%s: holds no testbench results (*%s or study.csv)", path,
                     DETAILED_SUFFIX);
            rc = -EINVAL;
        }
        return rc;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (strcmp(base, "study.csv") == 0 || strcmp(base, "study.json") == 0) {
        char *dir = base == path ? xstrdup(".") : xstrndup(path, (size_t)(base - path - 1));
        int rc = study_add(in, dir, err, errlen);
        free(dir);
        return rc;
    }
    const char *suffixes[] = {SUMMARY_SUFFIX, TELEMETRY_SUFFIX};
    for (size_t i = 0; i < 2; i++)
        if (ends_with(path, suffixes[i])) {
            char *d = swap_suffix(path, suffixes[i], DETAILED_SUFFIX);
            int rc = run_add(in, d, NULL, err, errlen);
            free(d);
            return rc;
        }
    if (ends_with(path, DETAILED_SUFFIX))
        return run_add(in, path, NULL, err, errlen);
    /* Anything else: read it, so the message says what it is not. */
    json_t *j = NULL;
    int rc = result_json_load(path, &j, in->progress, err, errlen);
    if (rc == 0) {
        json_decref(j);
        return run_add(in, path, NULL, err, errlen);
    }
    return rc;
}

int report_input_add(struct report_input *in, const char *path, char *err, size_t errlen)
{
    if (!strpbrk(path, "*?["))
        return path_add(in, path, err, errlen);
    glob_t g;
    int grc = glob(path, 0, NULL, &g);
    if (grc != 0) {
        snprintf(err, errlen, "%s: matches no file", path);
        if (grc != GLOB_NOMATCH)
            globfree(&g);
        return -ENOENT;
    }
    int rc = 0;
    for (size_t i = 0; i < g.gl_pathc && !rc; i++)
        rc = path_add(in, g.gl_pathv[i], err, errlen);
    globfree(&g);
    return rc;
}
