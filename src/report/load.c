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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
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

/* Bytes this process may still allocate: the address-space limit (ulimit -v) less what it
 * maps already, and what the machine has available (RAM and swap); SIZE_MAX when unknown. */
static size_t memory_available(void)
{
    size_t avail = SIZE_MAX;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        unsigned long long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (f) {
            if (fscanf(f, "%llu", &pages) != 1)
                pages = 0;
            fclose(f);
        }
        unsigned long long used = pages * (unsigned long long)sysconf(_SC_PAGESIZE);
        avail = used < rl.rlim_cur ? (size_t)(rl.rlim_cur - used) : 0;
    }
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[128];
        unsigned long long kb, sum = 0;
        int seen = 0;
        while (fgets(line, sizeof(line), f)) {
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1 ||
                sscanf(line, "SwapFree: %llu kB", &kb) == 1) {
                sum += kb * 1024;
                seen++;
            }
        }
        fclose(f);
        if (seen && sum < avail)
            avail = (size_t)sum;
    }
    return avail;
}

static void say_out_of_memory(const char *path, double need, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "out of memory reading %s (needs about %.1f GB to parse; report fewer or smaller "
             "runs, or raise the memory limit)",
             path, need / 1e9);
}

/* Loads a JSON file and checks it is a testbench file of a schema we read. Regular files only
 * (a FIFO would block the read forever). A file whose tree cannot fit in memory is refused
 * before parsing, and running out of memory while parsing says so, with the memory needed. */
static int result_json_load(const char *path, json_t **out, bool progress, char *err, size_t errlen)
{
    FILE *f = NULL;
    const char *kind = "";
    int rc = fs_open_regular(path, &f, &kind);
    if (rc == -EINVAL) {
        snprintf(err, errlen, "%s: not a regular file (%s); give a testbench result file", path,
                 kind);
        return -EINVAL;
    }
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        fclose(f);
        return -e;
    }
    if ((unsigned long long)st.st_size > REPORT_MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s: %.1f GiB is more than a result file this reads (%.0f GiB)", path,
                 (double)st.st_size / (1024.0 * 1024 * 1024),
                 (double)REPORT_MAX_FILE_BYTES / (1024.0 * 1024 * 1024));
        fclose(f);
        return -EFBIG;
    }
    double need = (double)st.st_size * REPORT_PARSE_FACTOR;
    if (need > (double)memory_available()) {
        say_out_of_memory(path, need, err, errlen);
        fclose(f);
        return -ENOMEM;
    }
    if (progress || (size_t)st.st_size >= PROGRESS_BYTES)
        log_info("report: reading %s (%.1f MiB)", path, (double)st.st_size / (1024.0 * 1024));
    json_error_t je;
    json_t *j = json_loadf(f, 0, &je);
    fclose(f);
    if (!j) {
        if (json_error_code(&je) == json_error_out_of_memory) {
            say_out_of_memory(path, need, err, errlen);
            return -ENOMEM;
        }
        /* jansson says line -1 when the error has no place (an empty file, a read error). */
        if (je.line > 0)
            snprintf(err, errlen, "%s: not a testbench result (not JSON: line %d: %s)", path,
                     je.line, je.text);
        else
            snprintf(err, errlen, "%s: not a testbench result (not JSON: %s)", path, je.text);
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
    /* The base model: the config names it (the simulator's own model when set); the server's
     * first model may be a LoRA adapter a tenant asked for (vLLM lists adapters beside the
     * base), which is no model of the catalog. */
    const char *base = on_sim ? json_string_value(json_object_get(sim, "model")) : NULL;
    if (!base || !*base)
        base = json_string_value(json_object_get(json_object_get(cfg, "model"), "name"));
    if (!base || !*base)
        base = json_string_value(json_object_get(json_object_get(r->detailed, "server"), "model"));
    r->model = xstrdup(base && *base ? base : "unknown");
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

/* The per-request records of every point, dropped: a report of many runs draws no per-run
 * chart, and the summaries hold every figure its tables show. */
static void run_strip_requests(json_t *detailed)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(detailed, "points"), i, p)
    {
        if (json_object_get(p, "requests"))
            json_object_set_new(p, "requests", json_array());
    }
}

/* A distributed run's worker file (its share of the load; docs/SCALE_LOAD.md). */
static bool is_worker_share(const json_t *detailed)
{
    const char *role =
        json_string_value(json_object_get(json_object_get(detailed, "load"), "role"));
    return role && strcmp(role, "worker") == 0;
}

/* Adds one run by its detailed.json; a run already added (same real path) is not repeated.
 * Beyond REPORT_MAX_RUNS runs nothing more is read (-E2BIG). A telemetry file beside it that
 * cannot be read costs a warning, not the run. in_folder: found by searching a folder, where a
 * worker's share is left out (the merged run holds all of the load); a worker's file named on
 * the command line is read. */
static int run_add(struct report_input *in, const char *detailed, const char *setup, bool in_folder,
                   char *err, size_t errlen)
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
        snprintf(err, errlen, "%s: more than %d runs given; the rest are not read", detailed,
                 REPORT_MAX_RUNS);
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
    if (in_folder && is_worker_share(r.detailed)) {
        json_decref(r.detailed);
        return 0;
    }
    r.path = xstrdup(real);
    bool named = ends_with(real, DETAILED_SUFFIX);
    char *tel = named ? swap_suffix(real, DETAILED_SUFFIX, TELEMETRY_SUFFIX) : NULL;
    struct stat st;
    if (tel && stat(tel, &st) == 0) {
        char terr[1024];
        if (result_json_load(tel, &r.telemetry, in->progress, terr, sizeof(terr)) == 0) {
            r.telemetry_path = tel;
            tel = NULL;
        } else {
            log_warn("report: %s; the run is shown without its telemetry", terr);
            in->n_skipped++;
        }
    }
    free(tel);
    const char *base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
    r.label = setup   ? xstrdup(setup)
              : named ? swap_suffix(base, DETAILED_SUFFIX, "")
                      : xstrdup(base);
    r.study_setup = setup ? xstrdup(setup) : NULL;
    run_describe(&r);
    in->runs = xreallocarray(in->runs, in->n_runs + 1, sizeof(*in->runs));
    in->runs[in->n_runs++] = r;
    /* Many runs: no run keeps its requests (the first ones are stripped once the count
     * passes the mark, the later ones as they come), so memory grows with runs, not requests. */
    if (in->detail_runs && in->n_runs > in->detail_runs) {
        size_t from = in->n_runs == in->detail_runs + 1 ? 0 : in->n_runs - 1;
        for (size_t i = from; i < in->n_runs; i++)
            run_strip_requests(in->runs[i].detailed);
    }
    return 0;
}

/* A run inside a folder or named by a study: one that cannot be read is skipped with a
 * warning (the page shows the rest, and a study's row its figures from study.csv). After
 * REPORT_MAX_RUNS one warning says the rest are left out. */
static void run_add_or_warn(struct report_input *in, const char *detailed, const char *setup,
                            bool in_folder, const char *what)
{
    char err[1024];
    int rc = run_add(in, detailed, setup, in_folder, err, sizeof(err));
    if (!rc)
        return;
    in->n_skipped++;
    if (rc == -E2BIG && in->warned_full)
        return;
    in->warned_full = in->warned_full || rc == -E2BIG;
    log_warn("report: %s%s", err, what);
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
                 rc == -EINVAL   ? "no setup and status columns"
                 : rc == -ESPIPE ? "not a regular file"
                                 : strerror(-rc));
        if (rc == -ESPIPE)
            rc = -EINVAL;
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
        run_add_or_warn(in, p, csv_table_get(&sp->csv, r, "setup"), false,
                        " (study.csv names it; its row is shown from study.csv alone)");
        free(p);
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
            /* A distributed run's workers' own files (docs/SCALE_LOAD.md): each holds a share
             * of the load, the merged run beside the folder holds all of it. */
            if (!ends_with(names[i], "_workers"))
                rc = dir_add(in, p, depth + 1, found, err, errlen);
        } else if (S_ISREG(st.st_mode) && ends_with(names[i], DETAILED_SUFFIX)) {
            (*found)++;
            run_add_or_warn(in, p, NULL, true, "; skipped");
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
        /* "results/" names the folder "results": its files are results/x, not results//x. */
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
            n--;
        char *dir = xstrndup(path, n);
        size_t found = 0;
        int rc = dir_add(in, dir, 0, &found, err, errlen);
        free(dir);
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
            int rc = run_add(in, d, NULL, false, err, errlen);
            free(d);
            return rc;
        }
    if (ends_with(path, DETAILED_SUFFIX))
        return run_add(in, path, NULL, false, err, errlen);
    /* Anything else: read it, so the message says what it is not. */
    json_t *j = NULL;
    int rc = result_json_load(path, &j, in->progress, err, errlen);
    if (rc == 0) {
        json_decref(j);
        return run_add(in, path, NULL, false, err, errlen);
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
