/*
 * test_docs.c - the docs match the program: every summary.csv column, detailed.json key and
 * config key that docs/OUTPUTS.md and docs/CONFIG.md list exists, and everything the program
 * writes or reads is listed. Names are taken from the first column of the docs' tables
 * (backticked, with `a_{x,y}_b` brace lists expanded).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"
#include "core/xalloc.h"
#include "sim/sim.h"
#include "tb_proc.h"

struct names {
    char **v;
    size_t n;
};

static void names_add(struct names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return;
    s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
    s->v[s->n++] = xstrdup(name);
}

static bool names_has(const struct names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return true;
    return false;
}

static void names_free(struct names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* Adds tok, expanding one brace list: ttft_{mean,p50}_ms -> ttft_mean_ms, ttft_p50_ms. */
static void add_expanded(struct names *s, const char *tok)
{
    const char *open = strchr(tok, '{'), *close = open ? strchr(open, '}') : NULL;
    if (!open || !close) {
        names_add(s, tok);
        return;
    }
    char *alts = xstrndup(open + 1, (size_t)(close - open - 1)), *save = NULL;
    for (char *a = strtok_r(alts, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        char *full = xasprintf("%.*s%s%s", (int)(open - tok), tok, a, close + 1);
        names_add(s, full);
        free(full);
    }
    free(alts);
}

/* Names in the first column of the tables under the line that starts with 'heading', up to
 * the next heading (any level) or a line that opens with a backtick (a table's caption, as
 * "`server.sim` keys"). */
static void doc_names(const char *doc, const char *heading, struct names *out)
{
    char *path = xasprintf("%s/docs/%s", TB_SOURCE_DIR, doc);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    bool in = false;
    while (fgets(line, sizeof(line), f)) {
        if (!in) {
            in = strncmp(line, heading, strlen(heading)) == 0;
            continue;
        }
        if (line[0] == '#' || line[0] == '`')
            break;
        if (strncmp(line, "| `", 3) != 0)
            continue;
        char *end = strchr(line + 1, '|'); /* the first cell only */
        if (end)
            *end = '\0';
        for (char *p = strchr(line, '`'); p; p = strchr(p, '`')) {
            char *q = strchr(p + 1, '`');
            if (!q)
                break;
            *q = '\0';
            add_expanded(out, p + 1);
            p = q + 1;
        }
    }
    fclose(f);
    free(path);
    assert_true(in);
}

/* Every name on one side is on the other; prints the differences. */
static void assert_same(const char *what, const struct names *docs, const struct names *prog)
{
    int missing = 0;
    for (size_t i = 0; i < prog->n; i++)
        if (!names_has(docs, prog->v[i])) {
            fprintf(stderr, "%s: '%s' is written by the program but not documented\n", what,
                    prog->v[i]);
            missing++;
        }
    for (size_t i = 0; i < docs->n; i++)
        if (!names_has(prog, docs->v[i])) {
            fprintf(stderr, "%s: '%s' is documented but the program has no such name\n", what,
                    docs->v[i]);
            missing++;
        }
    assert_int_equal(missing, 0);
}

static void object_keys(json_t *o, struct names *out)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) names_add(out, k);
}

/* Runs a small benchmark against the simulator; returns the output folder (caller frees). */
static char *small_run(void)
{
    struct sim_server *sim = tb_sim_start(NULL);
    assert_non_null(sim);
    char dir[] = "/tmp/tb_docs_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *body = xasprintf("server: {endpoint: \"http://127.0.0.1:%d\"}\n"
                           "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                           "requests: {num_requests: 3, prompt_tokens_min: 20,\n"
                           "  prompt_tokens_max: 30, completion_tokens: 5, rate_per_second: inf}\n"
                           "telemetry: {collect_gpu_stats: false}\n",
                           sim_server_port(sim));
    char *cfg = tb_write(dir, "c.yaml", body);
    assert_non_null(cfg);
    const char *args[] = {"testbench",    "run", "--config", cfg,
                          "--output-dir", dir,   "--quiet",  NULL};
    assert_int_equal(tb_run(TB_BINARY, args, sim, 0, 0), 0);
    sim_server_stop(sim);
    free(cfg);
    free(body);
    return xstrdup(dir);
}

static char *file_with(const char *dir, const char *suffix)
{
    char *path = tb_find(dir, suffix);
    assert_non_null(path);
    return path;
}

static void outputs_match_docs(void **state)
{
    (void)state;
    char *dir = small_run();
    /* summary.csv header */
    char *csv = file_with(dir, "_summary.csv");
    FILE *f = fopen(csv, "r");
    char head[16384];
    assert_non_null(fgets(head, sizeof(head), f));
    fclose(f);
    head[strcspn(head, "\r\n")] = '\0';
    struct names prog = {0}, docs = {0};
    char *save = NULL;
    for (char *c = strtok_r(head, ",", &save); c; c = strtok_r(NULL, ",", &save))
        names_add(&prog, c);
    doc_names("OUTPUTS.md", "## summary.csv", &docs);
    assert_same("summary.csv", &docs, &prog);
    names_free(&prog);
    names_free(&docs);

    /* detailed.json: top level, a point, its summary, a request record */
    json_t *root = tb_load_json(dir, "_detailed.json");
    assert_non_null(root);
    json_t *point = json_array_get(json_object_get(root, "points"), 0);
    const struct {
        const char *heading;
        json_t *obj;
    } parts[] = {
        {"## detailed.json", root},
        {"### A point", point},
        {"### `summary`", json_object_get(point, "summary")},
        {"### A request record", json_array_get(json_object_get(point, "requests"), 0)},
    };
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        object_keys(parts[i].obj, &prog);
        doc_names("OUTPUTS.md", parts[i].heading, &docs);
        assert_same(parts[i].heading, &docs, &prog);
        names_free(&prog);
        names_free(&docs);
    }
    json_decref(root);
    assert_int_equal(tb_remove_tree(dir), 0);
    free(csv);
    free(dir);
}

/* A distributed run's "load" objects (worker, clock measurement, merged, merged worker). */
static void load_outputs_match_docs(void **state)
{
    (void)state;
    char dir[] = "/tmp/tb_docs_load_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *cfg = tb_write(dir, "c.yaml",
                         "server: {endpoint: \"http://127.0.0.1:9\", sim: {gpu: h100}}\n"
                         "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                         "requests: {num_requests: 4, prompt_tokens_min: 20,\n"
                         "  prompt_tokens_max: 30, completion_tokens: 3, rate_per_second: inf}\n"
                         "telemetry: {collect_gpu_stats: false}\n");
    assert_non_null(cfg);
    const char *args[] = {"testbench", "run",          "--config", cfg,       "--workers",
                          "2",         "--output-dir", dir,        "--quiet", NULL};
    assert_int_equal(tb_run(TB_BINARY, args, NULL, 0, 0), 0);
    json_t *merged = tb_load_json(dir, "_detailed.json");
    assert_non_null(merged);
    json_t *ml = json_object_get(merged, "load");
    json_t *entry = json_array_get(json_object_get(ml, "workers"), 0);
    json_t *worker = json_load_file(json_string_value(json_object_get(entry, "file")), 0, NULL);
    assert_non_null(worker);
    json_t *wl = json_object_get(worker, "load");
    const struct {
        const char *heading;
        json_t *obj;
    } parts[] = {
        {"### `load`", wl},
        {"#### A clock measurement", json_array_get(json_object_get(wl, "syncs"), 0)},
        {"#### The merged file's `load`", ml},
        {"#### A merged run's worker", entry},
    };
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        struct names prog = {0}, docs = {0};
        assert_non_null(parts[i].obj);
        object_keys(parts[i].obj, &prog);
        doc_names("OUTPUTS.md", parts[i].heading, &docs);
        assert_same(parts[i].heading, &docs, &prog);
        names_free(&prog);
        names_free(&docs);
    }
    json_decref(worker);
    json_decref(merged);
    free(cfg);
    assert_int_equal(tb_remove_tree(dir), 0);
}

static void config_keys_match_docs(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    json_t *j = config_to_json(&c);
    const struct {
        const char *heading;
        json_t *obj;
    } parts[] = {
        {"### `benchmark`", json_object_get(j, "benchmark")},
        {"### `server`", json_object_get(j, "server")},
        {"`server.sim` keys", json_object_get(json_object_get(j, "server"), "sim")},
        {"### `model`", json_object_get(j, "model")},
        {"### `requests`", json_object_get(j, "requests")},
        {"`requests.output_tokens` keys",
         json_object_get(json_object_get(j, "requests"), "output_tokens")},
        {"`requests.dataset` keys", json_object_get(json_object_get(j, "requests"), "dataset")},
        {"`requests.trace` keys", json_object_get(json_object_get(j, "requests"), "trace")},
        {"`requests.rag` keys", json_object_get(json_object_get(j, "requests"), "rag")},
        {"#### `requests.session`", json_object_get(json_object_get(j, "requests"), "session")},
        {"### `slo`", json_object_get(j, "slo")},
        {"### `telemetry`", json_object_get(j, "telemetry")},
    };
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        struct names prog = {0}, docs = {0};
        object_keys(parts[i].obj, &prog);
        doc_names("CONFIG.md", parts[i].heading, &docs);
        /* "enabled" is the resolved form of server.sim's presence, not a key a file sets. */
        if (strcmp(parts[i].heading, "`server.sim` keys") == 0)
            names_add(&docs, "enabled");
        assert_same(parts[i].heading, &docs, &prog);
        names_free(&prog);
        names_free(&docs);
    }
    json_decref(j);
    config_release(&c);
}

/* The row of the table in doc whose first cell starts with first (a new string), or NULL. */
static char *table_row(const char *doc, const char *first)
{
    char *text = tb_read(doc);
    assert_non_null(text);
    char *row = NULL;
    for (char *line = text; line && *line && !row;) {
        char *end = strchr(line, '\n');
        if (strncmp(line, first, strlen(first)) == 0)
            row = end ? xstrndup(line, (size_t)(end - line)) : xstrdup(line);
        line = end ? end + 1 : NULL;
    }
    free(text);
    return row;
}

/* Issue 23 item 18: AIPerf's Inter Chunk Latency (every gap between consecutive content chunks,
 * pooled) is our itl; the mapping said AIPerf had none. */
static void metric_mapping_names_aiperf_inter_chunk_latency(void **state)
{
    (void)state;
    char *readme = table_row(TB_SOURCE_DIR "/README.md", "| `itl` |");
    char *metrics = table_row(TB_SOURCE_DIR "/docs/METRICS.md", "| `itl` (per event gap");
    assert_non_null(readme);
    assert_non_null(metrics);
    assert_non_null(strstr(readme, "| Inter Chunk Latency |"));
    assert_non_null(strstr(metrics, "inter chunk latency"));
    free(readme);
    free(metrics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(outputs_match_docs),
        cmocka_unit_test(load_outputs_match_docs),
        cmocka_unit_test(config_keys_match_docs),
        cmocka_unit_test(metric_mapping_names_aiperf_inter_chunk_latency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
