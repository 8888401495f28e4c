/* test_results.c - result files: detailed.json read back with jansson, summary.csv with a
 * small RFC 4180 parser; required columns in order, NAN as empty, quoting, atomic rewrites
 * and file-name collisions. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "runner/results.h"

/* docs/OUTPUTS.md "summary.csv": required columns, in order. */
/* clang-format off */
static const char *const required[] = {
    "benchmark", "tenant", "model", "context_length", "concurrency", "rate", "arrival",
    "num_requests", "completed", "failed", "duration_s", "request_throughput",
    "output_throughput", "total_throughput", "ttft_mean_ms", "ttft_p50_ms", "ttft_p90_ms",
    "ttft_p95_ms", "ttft_p99_ms", "itl_mean_ms", "itl_p50_ms", "itl_p90_ms", "itl_p95_ms",
    "itl_p99_ms", "tpot_mean_ms", "tpot_p50_ms", "tpot_p90_ms", "tpot_p95_ms", "tpot_p99_ms",
    "e2e_mean_ms", "e2e_p50_ms", "e2e_p90_ms", "e2e_p95_ms", "e2e_p99_ms", "goodput",
    "slo_attainment_pct", "gpu_power_mean_w", "gpu_energy_j", "energy_per_output_token_j",
    "gpu_mem_used_max_mib", "gpu_temp_max_c", "kv_cache_usage_max_pct",
    "prefix_cache_hit_rate_pct",
};
/* clang-format on */
#define N_REQUIRED (sizeof(required) / sizeof(required[0]))

#define T0 5000000000ull
#define MS(x) (T0 + (mono_ns)((x)*1000000ull))

/* ---- a tiny RFC 4180 reader: rows of cells ---- */

struct csv {
    char ***rows;
    size_t *ncells;
    size_t nrows;
};

static void csv_parse(struct csv *c, const char *text)
{
    memset(c, 0, sizeof(*c));
    const char *p = text;
    while (*p) {
        c->rows = realloc(c->rows, (c->nrows + 1) * sizeof(*c->rows));
        c->ncells = realloc(c->ncells, (c->nrows + 1) * sizeof(*c->ncells));
        char **cells = NULL;
        size_t n = 0;
        for (;;) {
            char *cell = calloc(strlen(p) + 1, 1);
            size_t len = 0;
            if (*p == '"') {
                p++;
                for (;;) {
                    assert_true(*p != '\0'); /* unterminated quote */
                    if (*p == '"' && p[1] == '"') {
                        cell[len++] = '"';
                        p += 2;
                    } else if (*p == '"') {
                        p++;
                        break;
                    } else {
                        cell[len++] = *p++;
                    }
                }
            } else {
                while (*p && *p != ',' && *p != '\n' && *p != '"')
                    cell[len++] = *p++;
                assert_true(*p != '"'); /* a bare quote inside an unquoted field */
            }
            cells = realloc(cells, (n + 1) * sizeof(*cells));
            cells[n++] = cell;
            if (*p == ',') {
                p++;
                continue;
            }
            assert_true(*p == '\n'); /* every row ends with a newline */
            p++;
            break;
        }
        c->rows[c->nrows] = cells;
        c->ncells[c->nrows++] = n;
    }
}

static void csv_free(struct csv *c)
{
    for (size_t r = 0; r < c->nrows; r++) {
        for (size_t i = 0; i < c->ncells[r]; i++)
            free(c->rows[r][i]);
        free(c->rows[r]);
    }
    free(c->rows);
    free(c->ncells);
}

static const char *csv_get(const struct csv *c, size_t row, const char *col)
{
    for (size_t i = 0; i < c->ncells[0]; i++)
        if (strcmp(c->rows[0][i], col) == 0)
            return c->rows[row][i];
    fail_msg("no column %s", col);
    return NULL;
}

static double csv_num(const struct csv *c, size_t row, const char *col)
{
    const char *s = csv_get(c, row, col);
    assert_true(*s); /* a known value */
    char *end;
    double x = strtod(s, &end);
    assert_true(*end == '\0');
    return x;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)n + 1, 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

static void near(double got, double want)
{
    if (!(fabs(got - want) <= 1e-6 * (1 + fabs(want))))
        fail_msg("got %.12g, want %.12g", got, want);
}

/* ---- fixtures ---- */

struct point {
    struct req_record r[3];
    mono_ns ev[3][4];
    struct point_info pi;
    struct point_summary s;
    struct telemetry_window tw;
};

static void point_build(struct point *p, const char *tenant, double offset_ms)
{
    memset(p, 0, sizeof(*p));
    for (int i = 0; i < 3; i++) {
        struct req_record *r = &p->r[i];
        double b = offset_ms + 100.0 * i;
        r->id = (uint64_t)i;
        r->t_due = MS(b);
        r->t_sent = MS(b + 1);
        r->target_prompt_tokens = 200;
        r->target_output_tokens = 4;
        r->prompt_tokens = i == 1 ? -1 : 200;
        r->tokens_from_usage = i != 1;
        if (i == 2) {
            r->status = REQ_HTTP_5XX;
            r->http_status = 503;
            r->error = (char *)"server said \"busy\", retry";
            r->t_end = MS(b + 5);
            continue;
        }
        for (int k = 0; k < 4; k++)
            p->ev[i][k] = MS(b + 50 + 10 * k + i);
        r->events = p->ev[i];
        r->n_events = 4;
        r->t_first = p->ev[i][0];
        r->t_last = p->ev[i][3];
        r->t_end = r->t_last + 1000000;
        r->output_tokens = 4;
        r->http_status = 200;
    }
    struct slo_cfg slo = {.ttft_ms = 500,
                          .itl_ms = NAN,
                          .tpot_ms = NAN,
                          .e2e_ms = NAN,
                          .percentile = 95,
                          .confidence = 0.95};
    point_summary_compute(&p->s, p->r, 3, &slo);
    p->pi.benchmark = "bench";
    p->pi.tenant = tenant;
    p->pi.model = "meta-llama/Llama-3.1-8B-Instruct";
    p->pi.context_length = 0;
    p->pi.concurrency = 8;
    p->pi.rate = INFINITY;
    p->pi.arrival = ARRIVAL_POISSON;
    p->pi.num_requests = 3;
    double lag[] = {0.0001, 0.0002};
    dist_compute(&p->pi.dispatch_lag_s, lag, 2);
    dist_compute(&p->pi.loop_lag_s, NULL, 0);
    p->tw.gpu_power_mean_w = 300;
    p->tw.gpu_power_max_w = 350;
    p->tw.gpu_energy_j = 120;
    p->tw.gpu_energy_from_counter = true;
    p->tw.gpu_mem_used_max_mib = 40000;
    p->tw.gpu_temp_max_c = NAN; /* unknown: must be empty, never 0 */
    p->tw.kv_cache_usage_max_pct = 42.5;
    p->tw.kv_cache_usage_mean_pct = 20;
    p->tw.prefix_cache_hit_rate_pct = NAN;
    p->tw.num_preemptions = 0;
    p->tw.server_ttft_p50_s = 0.05;
    p->tw.server_ttft_p95_s = NAN;
    p->tw.server_itl_p50_s = NAN;
    p->tw.host_cpu_util_mean_pct = NAN;
    p->tw.runner_cpu_s = NAN;
    snprintf(p->tw.throttle_reasons, sizeof(p->tw.throttle_reasons), "sw_power_cap,hw_slowdown");
    p->tw.throttled = true;
    p->tw.n_samples = 3;
}

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tb_results_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = NULL;
    if (asprintf(&cmd, "rm -rf '%s'", tmpdir) > 0) {
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", tmpdir);
    }
    free(cmd);
    return 0;
}

static size_t count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp"))
            n++;
    closedir(d);
    return n;
}

static void check_csv(const char *path, struct point *pts, size_t npts)
{
    char *text = slurp(path);
    struct csv c;
    csv_parse(&c, text);
    assert_int_equal(c.nrows, 1 + npts);
    assert_true(c.ncells[0] >= N_REQUIRED);
    for (size_t i = 0; i < N_REQUIRED; i++)
        assert_string_equal(c.rows[0][i], required[i]);
    for (size_t r = 1; r <= npts; r++) {
        const struct point *p = &pts[r - 1];
        assert_int_equal(c.ncells[r], c.ncells[0]);
        assert_string_equal(csv_get(&c, r, "tenant"), p->pi.tenant);
        assert_string_equal(csv_get(&c, r, "benchmark"), "bench");
        assert_string_equal(csv_get(&c, r, "context_length"), "");
        assert_string_equal(csv_get(&c, r, "concurrency"), "8");
        assert_string_equal(csv_get(&c, r, "rate"), "inf");
        assert_string_equal(csv_get(&c, r, "arrival"), "poisson");
        near(csv_num(&c, r, "num_requests"), 3);
        near(csv_num(&c, r, "completed"), 2);
        near(csv_num(&c, r, "failed"), 1);
        near(csv_num(&c, r, "failed_http_5xx"), 1);
        near(csv_num(&c, r, "duration_s"), p->s.duration_s);
        near(csv_num(&c, r, "request_throughput"), p->s.request_throughput);
        near(csv_num(&c, r, "output_throughput"), p->s.output_throughput);
        near(csv_num(&c, r, "ttft_mean_ms"), p->s.ttft.mean * 1e3);
        near(csv_num(&c, r, "ttft_p90_ms"), p->s.ttft.p90 * 1e3);
        near(csv_num(&c, r, "itl_p50_ms"), p->s.itl.p50 * 1e3);
        near(csv_num(&c, r, "tpot_p99_ms"), p->s.tpot.p99 * 1e3);
        near(csv_num(&c, r, "e2e_p95_ms"), p->s.e2e.p95 * 1e3);
        near(csv_num(&c, r, "goodput"), p->s.goodput);
        near(csv_num(&c, r, "slo_attainment_pct"), 200.0 / 3.0);
        near(csv_num(&c, r, "tokens_from_events"), 1);
        if (r == 1) {
            /* no telemetry window: every telemetry cell is empty, not 0 */
            assert_string_equal(csv_get(&c, r, "gpu_power_mean_w"), "");
            assert_string_equal(csv_get(&c, r, "gpu_energy_j"), "");
            assert_string_equal(csv_get(&c, r, "energy_per_output_token_j"), "");
            assert_string_equal(csv_get(&c, r, "throttled"), "");
        } else {
            near(csv_num(&c, r, "gpu_power_mean_w"), 300);
            near(csv_num(&c, r, "gpu_energy_j"), 120);
            near(csv_num(&c, r, "energy_per_output_token_j"), 120.0 / 8.0);
            near(csv_num(&c, r, "energy_per_request_j"), 60);
            near(csv_num(&c, r, "kv_cache_usage_max_pct"), 42.5);
            near(csv_num(&c, r, "num_preemptions"), 0);
            near(csv_num(&c, r, "server_ttft_p50_ms"), 50);
            assert_string_equal(csv_get(&c, r, "gpu_temp_max_c"), "");
            assert_string_equal(csv_get(&c, r, "prefix_cache_hit_rate_pct"), "");
            assert_string_equal(csv_get(&c, r, "server_ttft_p95_ms"), "");
            assert_string_equal(csv_get(&c, r, "throttled"), "true");
        }
    }
    csv_free(&c);
    free(text);
}

static void check_detailed(const char *path, size_t npts)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        fail_msg("%s:%d: %s", path, je.line, je.text);
    assert_int_equal(json_integer_value(json_object_get(root, "schema_version")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(root, "tool"), "name")),
                        "testbench");
    assert_string_equal(json_string_value(json_object_get(root, "started_at")),
                        "2026-01-02T03:04:05Z");
    assert_true(json_is_object(json_object_get(root, "config")));
    assert_true(json_is_array(json_object_get(root, "gpus")));
    json_t *points = json_object_get(root, "points");
    assert_int_equal(json_array_size(points), npts);
    json_t *p0 = json_array_get(points, 0);
    assert_string_equal(json_string_value(json_object_get(p0, "tenant")), "team a, \"west\"");
    assert_true(json_is_null(json_object_get(p0, "context_length")));
    assert_int_equal(json_integer_value(json_object_get(p0, "concurrency")), 8);
    assert_string_equal(json_string_value(json_object_get(p0, "rate")), "inf");
    assert_string_equal(json_string_value(json_object_get(p0, "arrival")), "poisson");
    json_t *sum = json_object_get(p0, "summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "completed")), 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(sum, "failed_by_class"), "http_5xx")),
        1);
    json_t *ttft = json_object_get(sum, "ttft_ms");
    const char *keys[] = {"mean", "p50", "p90", "p95", "p99", "p99_9", "min", "max", "std"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_true(json_is_number(json_object_get(ttft, keys[i])));
    /* request 0: t_first - t_sent = 49 ms; request 1: 50 ms */
    near(json_number_value(json_object_get(ttft, "min")), 49);
    near(json_number_value(json_object_get(ttft, "max")), 50);
    assert_true(json_is_null(
        json_object_get(json_object_get(json_object_get(sum, "client"), "loop_lag_ms"), "p99")));
    assert_true(json_is_null(json_object_get(sum, "telemetry"))); /* point 0 had no window */
    json_t *reqs = json_object_get(p0, "requests");
    assert_int_equal(json_array_size(reqs), 3);
    json_t *r0 = json_array_get(reqs, 0), *r1 = json_array_get(reqs, 1),
           *r2 = json_array_get(reqs, 2);
    near(json_number_value(json_object_get(r0, "t_due")), 0.0);
    near(json_number_value(json_object_get(r0, "t_sent")), 0.001);
    near(json_number_value(json_object_get(r0, "t_first")), 0.050);
    near(json_number_value(json_object_get(r0, "ttft")), 0.049);
    near(json_number_value(json_object_get(r0, "tpot")), 0.010);
    near(json_number_value(json_object_get(r0, "e2e")), 0.079);
    assert_int_equal(json_array_size(json_object_get(r0, "itl")), 3);
    near(json_number_value(json_array_get(json_object_get(r0, "itl"), 1)), 0.010);
    assert_string_equal(json_string_value(json_object_get(r0, "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(r0, "tokens_source")), "usage");
    assert_int_equal(json_integer_value(json_object_get(r0, "prompt_tokens")), 200);
    assert_true(json_is_null(json_object_get(r0, "error")));
    assert_string_equal(json_string_value(json_object_get(r1, "tokens_source")), "events");
    assert_true(json_is_null(json_object_get(r1, "prompt_tokens")));
    assert_string_equal(json_string_value(json_object_get(r2, "status")), "http_5xx");
    assert_int_equal(json_integer_value(json_object_get(r2, "http_status")), 503);
    assert_string_equal(json_string_value(json_object_get(r2, "error")),
                        "server said \"busy\", retry");
    assert_true(json_is_null(json_object_get(r2, "t_first")));
    assert_true(json_is_null(json_object_get(r2, "ttft")));
    assert_true(json_is_null(json_object_get(r2, "tpot")));
    if (npts > 1) {
        json_t *tw =
            json_object_get(json_object_get(json_array_get(points, 1), "summary"), "telemetry");
        near(json_number_value(json_object_get(tw, "gpu_energy_j")), 120);
        assert_string_equal(json_string_value(json_object_get(tw, "gpu_energy_source")), "counter");
        assert_true(json_is_null(json_object_get(tw, "gpu_temp_max_c")));
        assert_int_equal(json_array_size(json_object_get(tw, "throttle_reasons")), 2);
    }
    json_decref(root);
}

static void write_two_points(void **state)
{
    (void)state;
    struct results_writer *w = NULL;
    char err[256];
    char *dir = NULL;
    assert_true(asprintf(&dir, "%s/a/b", tmpdir) > 0); /* mkdir -p */
    assert_int_equal(results_open(&w, dir, "run", err, sizeof(err)), 0);
    results_set_meta(w, "2026-01-02T03:04:05Z", json_pack("{s:s}", "name", "testbench"),
                     json_pack("{s:i}", "seed", 42), NULL, NULL, NULL);
    static struct point pts[2];
    point_build(&pts[0], "team a, \"west\"", 0);
    point_build(&pts[1], "b", 1000);
    results_add_point(w, &pts[0].pi, &pts[0].s, NULL, pts[0].r, 3, T0);
    assert_int_equal(results_flush(w, NULL, err, sizeof(err)), 0);
    check_csv(results_path(w, "summary"), pts, 1);
    check_detailed(results_path(w, "detailed"), 1);

    results_add_point(w, &pts[1].pi, &pts[1].s, &pts[1].tw, pts[1].r, 3, T0);
    json_t *tel = json_pack("{s:f, s:[s], s:[]}", "interval_s", 1.0, "sources", "nvml", "samples");
    assert_int_equal(results_flush(w, tel, err, sizeof(err)), 0);
    check_csv(results_path(w, "summary"), pts, 2);
    check_detailed(results_path(w, "detailed"), 2);
    json_error_t je;
    json_t *t = json_load_file(results_path(w, "telemetry"), 0, &je);
    assert_non_null(t);
    /* The telemetry as given, plus the run's identity. */
    const char *k;
    json_t *v;
    json_object_foreach(tel, k, v) assert_true(json_equal(json_object_get(t, k), v));
    assert_non_null(json_object_get(t, "tool"));
    assert_non_null(json_object_get(t, "config"));
    assert_non_null(json_object_get(t, "server"));
    assert_non_null(json_object_get(t, "gpus"));
    json_decref(t);
    json_decref(tel);
    assert_int_equal(count_tmp_files(dir), 0);
    assert_non_null(strstr(results_path(w, "detailed"), "/run_"));
    assert_null(results_path(w, "nope"));
    results_free(w);
    free(dir);
}

static void empty_telemetry_and_no_points(void **state)
{
    (void)state;
    struct results_writer *w = NULL;
    char err[256];
    assert_int_equal(results_open(&w, tmpdir, "empty", err, sizeof(err)), 0);
    assert_int_equal(results_flush(w, NULL, err, sizeof(err)), 0);
    json_error_t je;
    json_t *t = json_load_file(results_path(w, "telemetry"), 0, &je);
    assert_non_null(t);
    assert_true(json_is_null(json_object_get(t, "interval_s")));
    assert_int_equal(json_array_size(json_object_get(t, "sources")), 0);
    assert_int_equal(json_array_size(json_object_get(t, "samples")), 0);
    json_decref(t);
    json_t *d = json_load_file(results_path(w, "detailed"), 0, &je);
    assert_non_null(d);
    assert_int_equal(json_array_size(json_object_get(d, "points")), 0);
    assert_true(json_is_null(json_object_get(d, "tool")));
    json_decref(d);
    char *csv = slurp(results_path(w, "summary"));
    assert_int_equal(strchr(csv, '\n') - csv + 1, (long)strlen(csv)); /* header only */
    free(csv);
    results_free(w);
}

static void name_collision_gets_suffix(void **state)
{
    (void)state;
    char err[256];
    for (int attempt = 0; attempt < 3; attempt++) {
        struct results_writer *a = NULL, *b = NULL;
        assert_int_equal(results_open(&a, tmpdir, "same", err, sizeof(err)), 0);
        assert_int_equal(results_flush(a, NULL, err, sizeof(err)), 0);
        assert_int_equal(results_open(&b, tmpdir, "same", err, sizeof(err)), 0);
        const char *pa = results_path(a, "summary"), *pb = results_path(b, "summary");
        assert_string_not_equal(pa, pb);
        /* same second: "<stamp>_summary.csv" became "<stamp>-2_summary.csv" */
        size_t base = strlen(pa) - strlen("_summary.csv");
        bool same_stamp = strncmp(pa, pb, base) == 0;
        if (same_stamp)
            assert_string_equal(pb + base, "-2_summary.csv");
        results_free(a);
        results_free(b);
        if (same_stamp)
            return;
    }
    fail_msg("the clock ticked over on every attempt");
}

static void unwritable_dir_fails(void **state)
{
    (void)state;
    struct results_writer *w = NULL;
    char err[256] = "";
    char *file = NULL;
    assert_true(asprintf(&file, "%s/plainfile", tmpdir) > 0);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    char *under = NULL;
    assert_true(asprintf(&under, "%s/sub", file) > 0);
    assert_true(results_open(&w, under, "x", err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "sub"));
    assert_true(results_open(&w, file, "x", err, sizeof(err)) < 0);
    free(file);
    free(under);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(write_two_points),
        cmocka_unit_test(empty_telemetry_and_no_points),
        cmocka_unit_test(name_collision_gets_suffix),
        cmocka_unit_test(unwritable_dir_fails),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
