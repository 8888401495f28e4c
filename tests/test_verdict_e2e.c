/*
 * test_verdict_e2e.c - the verdict rule through the real binary (docs/METRICS.md "Verdicts"):
 * a server that fails a share of its requests (the simulator's --fail-pct) makes `run`,
 * `study` and `report` say "missed" with the failures counted and named; without an SLO the
 * run says so and prints no attainment; the stop rule ends a point far from its SLO at the
 * minimum and runs one it cannot decide to the cap; warm-up, duration, the heartbeat outside a
 * terminal and the saturation warning. Bounds are loose on purpose (a busy 2-core machine):
 * what is asserted is which side of each rule a run lands on, never a timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/xalloc.h"
#include "tb_proc.h"

struct fixture {
    char dir[256];
    struct sim_server *sim;
    int port;
};

static int setup_with(void **state, int fail_pct, int fail_status)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/tb_verdict_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    struct sim_options o;
    tb_sim_options(&o);
    o.fail_pct = fail_pct;
    o.fail_status = fail_status;
    f->sim = tb_sim_start(&o);
    assert_non_null(f->sim);
    f->port = sim_server_port(f->sim);
    *state = f;
    return 0;
}

static int setup_healthy(void **state)
{
    return setup_with(state, 0, 0);
}

/* 65 % of requests answered 400, as in the run of 20 that read "met". */
static int setup_failing(void **state)
{
    return setup_with(state, 65, 400);
}

/* 4 % answered 503: rarely enough that p95 still looks met, often enough that its interval
 * can never be sure of it. */
static int setup_shedding(void **state)
{
    return setup_with(state, 4, 503);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sim_server_stop(f->sim);
    if (tb_remove_tree(f->dir) != 0)
        fprintf(stderr, "cleanup failed\n");
    free(f);
    return 0;
}

/* Runs `testbench run` on body (endpoint placeholder %d = the simulator's port) with stdout
 * and stderr to NAME.log; returns the log, *root the detailed.json. */
static char *run_logged(struct fixture *f, const char *name, const char *fmt, json_t **root)
{
    char *body = xasprintf(fmt, f->port);
    char *file = xasprintf("%s.yaml", name);
    char *cfg = tb_write(f->dir, file, body);
    char *out = xasprintf("%s/%s_out", f->dir, name);
    char *log = xasprintf("%s/%s.log", f->dir, name);
    const char *argv[] = {"testbench", "run", "--config", cfg, "--output-dir", out, NULL};
    int rc = tb_run_logged(TB_BINARY, argv, log, NULL, NULL, 0, NULL);
    char *text = tb_read(log);
    if (rc != 0)
        fprintf(stderr, "%s\n", text);
    assert_int_equal(rc, 0);
    *root = tb_load_json(out, "_detailed.json");
    assert_non_null(*root);
    free(body);
    free(file);
    free(cfg);
    free(out);
    free(log);
    return text;
}

static json_t *summary0(json_t *root)
{
    return json_object_get(json_array_get(json_object_get(root, "points"), 0), "summary");
}

static size_t count_status(json_t *root, const char *status, bool warmup_too)
{
    size_t n = 0, i;
    json_t *r;
    json_array_foreach(
        json_object_get(json_array_get(json_object_get(root, "points"), 0), "requests"), i, r)
    {
        if (!warmup_too && json_is_true(json_object_get(r, "warmup")))
            continue;
        const char *st = json_string_value(json_object_get(r, "status"));
        n += strcmp(st, status) == 0;
    }
    return n;
}

static const char failing_run[] =
    "benchmark: {name: fails, output_prefix: fails}\n"
    "server: {endpoint: \"http://127.0.0.1:%d\"}\n"
    "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
    "requests: {num_requests: 20, concurrent_requests: 4, rate_per_second: inf,\n"
    "  prompt_tokens_min: 64, prompt_tokens_max: 64, completion_tokens: 8}\n"
    "slo: {ttft_ms: 60000, tpot_ms: 10000}\n"
    "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n";

/* The run: most requests fail with HTTP 400. The verdict is missed and says how many
 * failed and why; attainment counts them (it used to read "35.0 %, verdict: met"). */
static void run_counts_failures_as_misses(void **state)
{
    struct fixture *f = *state;
    json_t *root;
    char *log = run_logged(f, "fails", failing_run, &root);
    size_t failed = count_status(root, "http_4xx", true);
    fprintf(stderr, "%zu of 20 failed\n", failed);
    assert_true(failed >= 12 && failed <= 14); /* 65 %, give or take the preflight */
    char want[128];
    snprintf(want, sizeof(want), "missed: %zu of 20 failed (http_4xx)", failed);
    json_t *s = summary0(root);
    assert_string_equal(json_string_value(json_object_get(s, "slo_verdict")), want);
    double attain = json_number_value(json_object_get(s, "slo_attainment_pct"));
    assert_true(fabs(attain - (20.0 - (double)failed) / 20.0 * 100.0) < 1e-6);
    json_t *v = json_object_get(s, "verdict");
    assert_string_equal(json_string_value(json_object_get(v, "state")), "missed");
    assert_int_equal(json_integer_value(json_object_get(v, "failed")), (json_int_t)failed);
    /* The terminal: the SLO with its percentile, then the verdict line with the failures. */
    char line[160];
    snprintf(line, sizeof(line), "verdict    %s", want);
    assert_non_null(strstr(log, line));
    assert_non_null(strstr(log, "slo        p95 of ttft <= 60000 ms, tpot <= 10000 ms"));
    snprintf(line, sizeof(line), "SLO attainment %.1f%% of 20 requests", attain);
    assert_non_null(strstr(log, line));
    /* The report reads the same files and judges them by the same rule. */
    char *out = xasprintf("%s/fails_out", f->dir);
    char *md = xasprintf("%s/fails.md", f->dir);
    char *html = xasprintf("%s/fails.html", f->dir);
    const char *argv[] = {"testbench", "report",       out,       "--output",
                          html,        "--no-predict", "--quiet", NULL};
    assert_int_equal(tb_run(TB_BINARY, argv, NULL, 0, 0), 0);
    char *text = tb_read(md);
    assert_non_null(text);
    assert_non_null(strstr(text, want));
    free(text);
    free(md);
    free(html);
    free(out);
    json_decref(root);
    free(log);
}

/* Without objectives there is nothing to attain: said, and no attainment printed or stored.
 * (A file without an slo section is judged by the default profile: a file without objectives
 * clears them, docs/CONFIG.md "SLO profiles".) */
static void run_without_slo_says_so(void **state)
{
    struct fixture *f = *state;
    json_t *root;
    char *log = run_logged(f, "noslo",
                           "benchmark: {name: noslo, output_prefix: noslo}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\"}\n"
                           "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                           "requests: {num_requests: 6, concurrent_requests: 2,\n"
                           "  prompt_tokens_min: 32, prompt_tokens_max: 32, completion_tokens: 4}\n"
                           "slo: {ttft_ms: null, tpot_ms: null}\n"
                           "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
                           &root);
    assert_non_null(strstr(log, "slo        no SLO set"));
    assert_null(strstr(log, "attainment"));
    json_t *s = summary0(root);
    assert_true(json_is_null(json_object_get(s, "slo_attainment_pct")));
    assert_true(json_is_null(json_object_get(s, "goodput")));
    assert_true(json_is_null(json_object_get(s, "verdict")));
    json_decref(root);
    free(log);
}

static const char stop_run[] =
    "benchmark: {name: stop, output_prefix: stop}\n"
    "server: {endpoint: \"http://127.0.0.1:%d\"}\n"
    "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
    "requests: {num_requests: 400, concurrent_requests: 8, rate_per_second: inf,\n"
    "  warmup_requests: 8, stop_when_decided: true,\n"
    "  prompt_tokens_min: 32, prompt_tokens_max: 32, completion_tokens: 4}\n"
    "slo: {ttft_ms: 60000}\n"
    "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n";

/* Far from its SLO (TTFT of milliseconds against a minute), a point stops at its look: the 72
 * requests after the warm-up and the round in flight, nowhere near the 400 it may send. */
static void far_from_the_slo_stops_at_the_minimum(void **state)
{
    struct fixture *f = *state;
    json_t *root;
    char *log = run_logged(f, "far", stop_run, &root);
    json_t *s = summary0(root);
    assert_string_equal(json_string_value(json_object_get(s, "ended_by")), "decided");
    json_int_t issued = json_integer_value(json_object_get(s, "issued"));
    fprintf(stderr, "far: %lld requests after the warm-up\n", (long long)issued);
    assert_true(issued >= 72 && issued <= 72 + 8 + 8);
    assert_int_equal(json_integer_value(json_object_get(s, "warmup_requests")), 8);
    assert_int_equal(count_status(root, "ok", true) - count_status(root, "ok", false), 8);
    json_t *v = json_object_get(s, "verdict");
    assert_true(json_is_true(json_object_get(v, "decided")));
    assert_int_equal(json_integer_value(json_object_get(v, "requests")), 72);
    assert_non_null(strstr(log, "stopped    once the verdict was certain"));
    json_decref(root);
    free(log);
}

/* Users in conversation stop at the look too: its sample is whole conversations in the order
 * they began (2 turns each), and the point ends far short of the 400 it may send. */
static void conversations_stop_at_the_minimum(void **state)
{
    struct fixture *f = *state;
    json_t *root;
    char *log = run_logged(f, "talk",
                           "benchmark: {name: talk, output_prefix: talk}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\"}\n"
                           "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                           "requests: {num_requests: 400, concurrent_requests: 8,\n"
                           "  rate_per_second: inf, warmup_requests: 8, stop_when_decided: true,\n"
                           "  prompt_tokens_min: 32, prompt_tokens_max: 32, completion_tokens: 4,\n"
                           "  session: {turns: 2, think_time_distribution: fixed,\n"
                           "    think_time_s: 0.01, start_spread_s: 0,\n"
                           "    message_tokens_min: 8, message_tokens_max: 8}}\n"
                           "slo: {ttft_ms: 60000}\n"
                           "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
                           &root);
    json_t *s = summary0(root);
    assert_string_equal(json_string_value(json_object_get(s, "ended_by")), "decided");
    json_int_t issued = json_integer_value(json_object_get(s, "issued"));
    fprintf(stderr, "talk: %lld requests after the warm-up\n", (long long)issued);
    /* The look's 72, plus what the other users sent while the look's last conversation
     * finished (about a conversation each here: 72 + 8 x 2 + 8 on a quiet machine). The bound
     * holds on a busy one, where a slow conversation lets the others run on: far short of the
     * 400 the point may send. */
    assert_true(issued >= 72 && issued <= 200);
    json_t *v = json_object_get(s, "verdict");
    assert_true(json_is_true(json_object_get(v, "decided")));
    assert_true(json_is_true(json_object_get(v, "met")));
    assert_int_equal(json_integer_value(json_object_get(v, "requests")), 72);
    assert_non_null(strstr(log, "stopped    once the verdict was certain"));
    json_decref(root);
    free(log);
}

/* 4 % failures: p95 looks met, but the failures hold the interval's top, so the look cannot
 * decide; the point runs to its cap and says it is undecided. */
static void undecided_runs_to_the_cap(void **state)
{
    struct fixture *f = *state;
    json_t *root;
    char *log = run_logged(f, "near",
                           "benchmark: {name: near, output_prefix: near}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\"}\n"
                           "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                           "requests: {num_requests: 120, concurrent_requests: 8,\n"
                           "  warmup_requests: 8, stop_when_decided: true,\n"
                           "  prompt_tokens_min: 32, prompt_tokens_max: 32, completion_tokens: 4}\n"
                           "slo: {ttft_ms: 60000}\n"
                           "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
                           &root);
    json_t *s = summary0(root);
    assert_string_equal(json_string_value(json_object_get(s, "ended_by")), "requests");
    assert_int_equal(json_integer_value(json_object_get(s, "issued")), 112);
    json_t *v = json_object_get(s, "verdict");
    assert_false(json_is_true(json_object_get(v, "decided")));
    assert_non_null(strstr(log, "verdict    undecided (met by the estimate)"));
    assert_non_null(strstr(log, "failed (http_5xx)"));
    json_decref(root);
    free(log);
}

/* Run length by time: the point stops sending at duration_s though num_requests is far off. */
static void duration_ends_the_point(void **state)
{
    struct fixture *f = *state;
    json_t *root;
    setenv("TESTBENCH_HEARTBEAT_S", "0.3", 1);
    char *log = run_logged(f, "timed",
                           "benchmark: {name: timed, output_prefix: timed}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\"}\n"
                           "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                           "requests: {num_requests: 100000, concurrent_requests: 64,\n"
                           "  rate_per_second: 20, arrival_pattern: constant, duration_s: 1.5,\n"
                           "  prompt_tokens_min: 32, prompt_tokens_max: 32, completion_tokens: 4}\n"
                           "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
                           &root);
    unsetenv("TESTBENCH_HEARTBEAT_S");
    json_t *s = summary0(root);
    assert_string_equal(json_string_value(json_object_get(s, "ended_by")), "duration");
    json_int_t issued = json_integer_value(json_object_get(s, "issued"));
    fprintf(stderr, "timed: %lld requests in 1.5 s at 20/s\n", (long long)issued);
    assert_true(issued >= 10 && issued <= 40);
    assert_false(json_is_true(
        json_object_get(json_array_get(json_object_get(root, "points"), 0), "partial")));
    /* Outside a terminal, a whole progress line now and then rather than a redrawn one. */
    assert_non_null(strstr(log, "[point 1/1] "));
    assert_null(strstr(log, "\r"));
    /* A healthy open loop keeps up with what it is offered. */
    assert_false(json_is_true(json_object_get(s, "saturated")));
    json_decref(root);
    free(log);
}

/* An open loop that offers far more than one slot can serve is saturated, and says so. */
static void saturation_is_warned(void **state)
{
    struct fixture *f = *state;
    json_t *root;
    char *log = run_logged(f, "sat",
                           "benchmark: {name: sat, output_prefix: sat}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\"}\n"
                           "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                           "requests: {num_requests: 24, concurrent_requests: 1,\n"
                           "  rate_per_second: 200, arrival_pattern: constant,\n"
                           "  prompt_tokens_min: 32, prompt_tokens_max: 32, completion_tokens: 8}\n"
                           "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
                           &root);
    json_t *s = summary0(root);
    double offered = json_number_value(json_object_get(s, "offered_rate"));
    double achieved = json_number_value(json_object_get(s, "achieved_rate"));
    fprintf(stderr, "offered %.1f/s, achieved %.1f/s\n", offered, achieved);
    assert_true(offered > 150);
    assert_true(json_is_true(json_object_get(s, "saturated")));
    assert_non_null(strstr(log, "WARNING: saturated"));
    json_decref(root);
    free(log);
}

/* A study whose server sheds 40 % of its requests: every probe is missed for its failures,
 * stops at its look, and study.csv, the terminal and the report say why. */
static void study_counts_failures_as_misses(void **state)
{
    struct fixture *f = *state;
    char *text = xasprintf(
        "study: {name: shed, users: [4], capacity_search: false}\n"
        "backend:\n"
        "  type: command\n"
        "  startup_timeout_s: 60\n"
        "  stop_grace_s: 2\n"
        "  command: \"%s sim --port {port} --model {model} {max_model_len_flag} --gpu h100 "
        "--fail-pct 40 --fail-status 503 --quiet\"\n"
        "setups:\n"
        "  list:\n"
        "    - {name: shedding, model: meta-llama/Llama-3.1-8B-Instruct, max_model_len: 4096}\n"
        "benchmark: {output_dir: %s/out}\n"
        "requests: {prompt_tokens_min: 64, prompt_tokens_max: 64, completion_tokens: 8}\n"
        /* request streams: the failures decide, not the population (users in conversation by
         * default: 4 turns with 5 s think times) */
        "workloads: [{name: default, population: streams}]\n"
        "slo: {ttft_ms: 60000}\n",
        TB_BINARY, f->dir);
    char *cfg = tb_write(f->dir, "shed.yaml", text);
    char *log = xasprintf("%s/shed.log", f->dir);
    const char *argv[] = {"testbench", "study", "--config", cfg, NULL};
    int rc = tb_run_logged(TB_BINARY, argv, log, NULL, NULL, 0, NULL);
    char *out = tb_read(log);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    char *sdir = tb_study_dir(f->dir, "shed");
    assert_non_null(sdir);
    char *jpath = xasprintf("%s/study.json", sdir);
    json_t *doc = json_load_file(jpath, 0, NULL);
    assert_non_null(doc);
    json_t *row = json_array_get(json_object_get(doc, "rows"), 0);
    assert_true(json_is_false(json_object_get(row, "slo_met")));
    assert_string_equal(json_string_value(json_object_get(row, "slo_state")), "missed");
    assert_true(json_integer_value(json_object_get(row, "slo_failed")) > 0);
    const char *line = json_string_value(json_object_get(row, "slo_line"));
    assert_non_null(line);
    assert_non_null(strstr(line, "failed (http_5xx)"));
    assert_string_equal(json_string_value(json_object_get(row, "ended_by")), "decided");
    assert_true(json_integer_value(json_object_get(row, "slo_requests")) >= 10);
    assert_non_null(strstr(out, line));
    assert_non_null(strstr(out, "Measuring (GPU time):"));
    /* study.csv carries the same line; the report's study table shows it. */
    char *csv_path = xasprintf("%s/study.csv", sdir);
    char *csv = tb_read(csv_path);
    assert_non_null(strstr(csv, "failed (http_5xx)"));
    char *html = xasprintf("%s/shed.html", f->dir);
    const char *rargv[] = {"testbench", "report",       sdir,      "--output",
                           html,        "--no-predict", "--quiet", NULL};
    assert_int_equal(tb_run(TB_BINARY, rargv, NULL, 0, 0), 0);
    char *md_path = xasprintf("%s/shed.md", f->dir);
    char *md = tb_read(md_path);
    assert_non_null(md);
    assert_non_null(strstr(md, "failed (http_5xx)"));
    free(md);
    free(md_path);
    free(html);
    free(csv);
    free(csv_path);
    json_decref(doc);
    free(jpath);
    free(sdir);
    free(out);
    free(log);
    free(cfg);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(run_counts_failures_as_misses, setup_failing, teardown),
        cmocka_unit_test_setup_teardown(run_without_slo_says_so, setup_healthy, teardown),
        cmocka_unit_test_setup_teardown(far_from_the_slo_stops_at_the_minimum, setup_healthy,
                                        teardown),
        cmocka_unit_test_setup_teardown(conversations_stop_at_the_minimum, setup_healthy, teardown),
        cmocka_unit_test_setup_teardown(undecided_runs_to_the_cap, setup_shedding, teardown),
        cmocka_unit_test_setup_teardown(duration_ends_the_point, setup_healthy, teardown),
        cmocka_unit_test_setup_teardown(saturation_is_warned, setup_healthy, teardown),
        cmocka_unit_test_setup_teardown(study_counts_failures_as_misses, setup_healthy, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
