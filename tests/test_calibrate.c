/*
 * test_calibrate.c - calibration profiles and `testbench calibrate` through the built binary:
 * results that the simulator produced with known efficiencies give those efficiencies back;
 * a profile moves plan's figures the documented way; a bad profile is a usage error with
 * file:line; the validation ratios are what a hand computation gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <glob.h>
#include <errno.h>
#include <math.h>
#include <jansson.h>

#include "config/catalog.h"
#include "core/xalloc.h"
#include "engine/calibration.h"
#include "plan/calibrate.h"
#include "plan/validation.h"
#include "tb_proc.h"

static char tmpdir[] = "/tmp/tb_calibrate_XXXXXX";

static char *path_in(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static void write_file(const char *name, const char *text)
{
    char *p = path_in(name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    free(p);
}

/* Runs `testbench ARGS` with stdout into *out (malloc'd, may be NULL) and stderr to errfile. */
static int run_tb(const char *args, char **out)
{
    char *cmd = xasprintf("%s %s 2>%s/stderr.txt", TB_BINARY, args, tmpdir);
    int st = tb_shell_capture(cmd, out);
    free(cmd);
    return st;
}

static char *read_stderr(void)
{
    char *p = path_in("stderr.txt");
    FILE *f = fopen(p, "r");
    free(p);
    assert_non_null(f);
    char *buf = xcalloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf %s", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc;
}

/* The simulator runs with these efficiencies and per-request cost, each far from its default
 * (0.6, 0.6, 0.8, 0.49 and 15 ms), so that a fit which does not move a parameter is seen;
 * calibrate must find them. */
#define TRUTH_GEMM "0.40"
#define TRUTH_ATTN "0.35"
#define TRUTH_WEIGHT_BW "0.55"
#define TRUTH_KV_BW "0.35"
#define TRUTH_REQUEST_S "0.030"
#define TRUTH_EFFICIENCIES                                                                         \
    "kind: calibration\n"                                                                          \
    "efficiency:\n"                                                                                \
    "  gemm: " TRUTH_GEMM "\n"                                                                     \
    "  attention: " TRUTH_ATTN "\n"                                                                \
    "  weight_bandwidth: " TRUTH_WEIGHT_BW "\n"                                                    \
    "  kv_bandwidth: " TRUTH_KV_BW "\n"
static const char truth_profile[] = TRUTH_EFFICIENCIES "overhead:\n"
                                                       "  request_s: " TRUTH_REQUEST_S "\n";

/* The truth as a calibration (the same numbers as the profile above). */
static void truth_calibration(struct cost_calibration *c)
{
    cost_calibration_default(c);
    c->p[CAL_GEMM] = atof(TRUTH_GEMM);
    c->p[CAL_ATTN] = atof(TRUTH_ATTN);
    c->p[CAL_WEIGHT_BW] = atof(TRUTH_WEIGHT_BW);
    c->p[CAL_KV_BW] = atof(TRUTH_KV_BW);
    c->p[CAL_REQUEST_S] = atof(TRUTH_REQUEST_S);
}

/* Points that separate the effects (docs/CALIBRATION.md): one user at three prompt lengths
 * (GEMM, attention growing with context, the per-request cost, decode streaming weights), and
 * eight users at a long context (paged-attention KV reads). On an L40S, whose decode steps
 * (~25 ms) are long next to the simulator's timer jitter on a busy host. */
static const char run_single[] =
    "benchmark: {name: cal1, output_prefix: cal1, output_dir: %s/out}\n"
    "server: {sim: {gpu: l40s, max_model_len: 16448, calibration: %s/truth.yaml}}\n"
    "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
    "context_lengths: [576, 8256, 16448]\n"
    "requests: {num_requests: 3, concurrent_requests: 1, rate_per_second: inf,\n"
    "           completion_tokens: 64}\n"
    "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n";
static const char run_batch[] =
    "benchmark: {name: cal8, output_prefix: cal8, output_dir: %s/out}\n"
    "server: {sim: {gpu: l40s, max_model_len: 16448, calibration: %s/truth.yaml}}\n"
    "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
    "context_lengths: [8320]\n"
    "requests: {num_requests: 8, concurrent_requests: 8, rate_per_second: inf,\n"
    "           completion_tokens: 128}\n"
    "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n";

static void assert_within(double got, double want, double rel)
{
    if (!(fabs(got - want) <= rel * want))
        fail_msg("got %g, want %g within %.0f %%", got, want, rel * 100);
}

/* The fit went at least half way from where it started to the truth (plus `slack`). */
static void assert_half_way(const char *name, double got, double start, double truth, double slack)
{
    if (!(fabs(got - truth) <= 0.5 * fabs(start - truth) + slack))
        fail_msg("%s: fitted %g, from %g towards the truth %g: not half way", name, got, start,
                 truth);
}

static double num(json_t *j, const char *key);

/* The simulator with the truth's efficiencies but no per-request cost, for path_overhead_s. */
static const char truth0_profile[] = TRUTH_EFFICIENCIES "overhead:\n"
                                                        "  request_s: 0\n";
static const char run_zero[] =
    "benchmark: {name: cal0, output_prefix: cal0, output_dir: %s/out}\n"
    "server: {sim: {gpu: l40s, max_model_len: 16448, calibration: %s/truth0.yaml}}\n"
    "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
    "context_lengths: [576]\n"
    "requests: {num_requests: 4, concurrent_requests: 1, rate_per_second: inf,\n"
    "           completion_tokens: 2}\n"
    "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n";

/* What this host's own HTTP path (client, simulator, loopback) adds to every TTFT, seconds: the
 * simulator run with no request_s, less the plan's TTFT for the same requests (the two agree to
 * within 0.5 % on the engine's share, docs/ENGINE.md). A fit can only read it as request_s. */
static double path_overhead_s(void)
{
    write_file("truth0.yaml", truth0_profile);
    char *t = xasprintf(run_zero, tmpdir, tmpdir);
    write_file("zero.yaml", t);
    free(t);
    char *a = xasprintf("run --quiet --config %s/zero.yaml", tmpdir);
    assert_int_equal(run_tb(a, NULL), 0);
    free(a);
    char *pat = xasprintf("%s/out/cal0_*_detailed.json", tmpdir);
    glob_t g;
    assert_int_equal(glob(pat, 0, NULL, &g), 0);
    free(pat);
    json_t *root = json_load_file(g.gl_pathv[0], 0, NULL);
    globfree(&g);
    assert_non_null(root);
    json_t *sum = json_object_get(json_array_get(json_object_get(root, "points"), 0), "summary");
    double measured = num(json_object_get(sum, "ttft_ms"), "mean");
    double in = num(sum, "prompt_tokens_total") / num(sum, "completed");
    json_decref(root);
    a = xasprintf("plan --gpu l40s --model llama-3.1-8b --max-model-len 16448 --prompt-tokens %d "
                  "--population streams --output-tokens 2 --users 1 --requests 4 --calibration "
                  "%s/truth0.yaml --json",
                  (int)lround(in), tmpdir);
    char *out = NULL;
    assert_int_equal(run_tb(a, &out), 0);
    free(a);
    json_t *plan = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(plan);
    double predicted = num(plan, "ttft_mean_ms");
    json_decref(plan);
    return (measured - predicted) / 1e3;
}

static void calibrate_recovers_the_simulators_efficiencies(void **state)
{
    (void)state;
    write_file("truth.yaml", truth_profile);
    char *t1 = xasprintf(run_single, tmpdir, tmpdir);
    char *t2 = xasprintf(run_batch, tmpdir, tmpdir);
    write_file("single.yaml", t1);
    write_file("batch.yaml", t2);
    free(t1);
    free(t2);
    char *a1 = xasprintf("run --quiet --config %s/single.yaml", tmpdir);
    char *a2 = xasprintf("run --quiet --config %s/batch.yaml", tmpdir);
    assert_int_equal(run_tb(a1, NULL), 0);
    assert_int_equal(run_tb(a2, NULL), 0);
    free(a1);
    free(a2);
    double path = path_overhead_s();
    char *out = NULL;
    char *a3 = xasprintf("calibrate %s/out/cal1_*_detailed.json %s/out/cal8_*_detailed.json "
                         "--output %s/fit.yaml",
                         tmpdir, tmpdir, tmpdir);
    assert_int_equal(run_tb(a3, &out), 0);
    free(a3);
    fprintf(stderr, "%s", out);
    free(out);

    struct cost_calibration fit, def, truth;
    cost_calibration_default(&def);
    cost_calibration_default(&fit);
    truth_calibration(&truth);
    char err[512];
    char *p = path_in("fit.yaml");
    assert_int_equal(cost_calibration_load(&fit, p, err, sizeof(err)), 0);
    free(p);
    /* The simulator runs in real time, so what it measured carries this host's own delays (a
     * loaded 2-core machine, AddressSanitizer's and ThreadSanitizer's slower paths): a fixed
     * 3 % tolerance failed about one run in three under ASan. The exact recovery is checked in
     * virtual time (calibrate_fit_recovers_the_truth_in_virtual_time); this test prints the
     * table of what the real-time round trip recovered, and asserts that every parameter went
     * at least half way from its default to the truth, which a fit that fails to move it (or
     * moves it the wrong way) cannot do. At a load average of 10 on 2 cores, normal build:
     * gemm 0.398, attention 0.353, weight_bandwidth 0.550, kv_bandwidth 0.351, request_s
     * 30.3 ms; ThreadSanitizer: 0.368, 0.355, 0.545, 0.375, 28.6 ms (half way allows 0.30-0.50,
     * 0.225-0.475, 0.425-0.675, 0.28-0.42, 22.5-37.5 ms). */
    static const enum calibration_param moved[] = {CAL_GEMM, CAL_ATTN, CAL_WEIGHT_BW, CAL_KV_BW};
    static const char *const names[] = {"gemm", "attention", "weight_bandwidth", "kv_bandwidth"};
    for (size_t k = 0; k < sizeof(moved) / sizeof(moved[0]); k++)
        assert_half_way(names[k], fit.p[moved[k]], def.p[moved[k]], truth.p[moved[k]], 0);
    /* request_s reads as the truth plus what this host's own path adds to each TTFT, which is
     * measured (a few tenths of a millisecond on an idle host, more under load). */
    fprintf(stderr, "host path adds %.2f ms to each TTFT; request_s fitted %.2f ms\n", path * 1e3,
            fit.p[CAL_REQUEST_S] * 1e3);
    assert_half_way("request_s", fit.p[CAL_REQUEST_S], def.p[CAL_REQUEST_S], truth.p[CAL_REQUEST_S],
                    fabs(path));
    /* A dense bf16 model says nothing about int4 or MoE kernels: kept, not invented. */
    assert_true(fit.p[CAL_GEMM_INT4] == def.p[CAL_GEMM_INT4]);
    assert_true(fit.p[CAL_MOE] == def.p[CAL_MOE]);
    assert_true(fit.p[CAL_STEP_S] == def.p[CAL_STEP_S]);
    /* The profile names what it was fitted on, and its fit. */
    assert_string_equal(fit.gpu, "l40s");
    assert_string_equal(fit.engine, "testbench-sim");
    assert_int_equal(fit.points, 4);
    assert_true(fit.err_after_pct < fit.err_before_pct);
}

/* The fit itself, without a clock: points whose "measured" figures are the planner's own with
 * the truth's efficiencies (virtual time, the same numbers on any machine, loaded or not) must
 * give the truth back. This is the exact claim; the real-time round trip above checks the
 * pipeline (files, lengths, the profile's names) at a tolerance a busy host cannot break, and
 * bench_calibrate prints how close the real-time recovery comes. */
static void calibrate_fit_recovers_the_truth_in_virtual_time(void **state)
{
    (void)state;
    struct cost_calibration truth, fit;
    truth_calibration(&truth);
    static const struct {
        int users, prompt, output, requests;
    } shape[] = {{1, 512, 64, 3}, {1, 8192, 64, 3}, {1, 16384, 64, 3}, {8, 8192, 128, 8}};
    struct catalog *cat = NULL;
    char err[512];
    assert_int_equal(catalog_load(&cat, NULL, err, sizeof(err)), 0);
    struct calibrate_set s;
    calibrate_set_init(&s);
    s.n = sizeof(shape) / sizeof(shape[0]);
    s.pts = xcalloc(s.n, sizeof(*s.pts));
    snprintf(s.gpu, sizeof(s.gpu), "l40s");
    snprintf(s.model, sizeof(s.model), "meta-llama/Llama-3.1-8B-Instruct");
    for (size_t i = 0; i < s.n; i++) {
        struct calibrate_point *p = &s.pts[i];
        snprintf(p->gpu, sizeof(p->gpu), "l40s");
        snprintf(p->model, sizeof(p->model), "meta-llama/Llama-3.1-8B-Instruct");
        p->q.max_model_len = 16448;
        p->q.tensor_parallel_size = 1;
        p->q.prefix_caching = true;
        p->q.users = shape[i].users;
        p->q.prompt_tokens = shape[i].prompt;
        p->q.output_tokens = shape[i].output;
        p->q.requests = shape[i].requests;
        p->q.slo = (struct slo_cfg){.ttft_ms = NAN,
                                    .itl_ms = NAN,
                                    .tpot_ms = NAN,
                                    .e2e_ms = NAN,
                                    .percentile = 95,
                                    .confidence = 0.95};
        struct plan_query q;
        calibrate_point_query(p, &q);
        struct plan_prediction pr;
        assert_int_equal(plan_predict_with(&q, cat, &truth, &pr, err, sizeof(err)), 0);
        assert_true(pr.fits && pr.simulated);
        p->tps = pr.output_tps;
        p->ttft_s = pr.ttft.mean;
        p->tpot_s = pr.tpot.mean;
    }
    catalog_free(cat);
    cost_calibration_default(&fit);
    struct calibrate_report rep;
    assert_int_equal(calibrate_fit(&s, NULL, NULL, &fit, &rep, err, sizeof(err)), 0);
    calibrate_set_release(&s);
    fprintf(stderr,
            "virtual time: gemm %.4f attention %.4f weight_bw %.4f kv_bw %.4f "
            "request_s %.3f ms, error %.2f -> %.3f %%\n",
            fit.p[CAL_GEMM], fit.p[CAL_ATTN], fit.p[CAL_WEIGHT_BW], fit.p[CAL_KV_BW],
            fit.p[CAL_REQUEST_S] * 1e3, rep.err_before_pct, rep.err_after_pct);
    static const enum calibration_param recovered[] = {CAL_GEMM, CAL_ATTN, CAL_WEIGHT_BW, CAL_KV_BW,
                                                       CAL_REQUEST_S};
    for (size_t k = 0; k < sizeof(recovered) / sizeof(recovered[0]); k++) {
        assert_true(rep.fitted[recovered[k]]);
        assert_within(fit.p[recovered[k]], truth.p[recovered[k]], 0.01);
    }
    assert_true(rep.err_before_pct > 5 && rep.err_after_pct < 0.5);
}

/* A calibration point hands the planner each completed request's measured lengths, in the
 * order sent, not only their mean (runs from calibrate_recovers_the_simulators_efficiencies). */
static void calibrate_replays_each_requests_lengths(void **state)
{
    (void)state;
    char *pat = xasprintf("%s/out/cal8_*_detailed.json", tmpdir);
    glob_t g;
    assert_int_equal(glob(pat, 0, NULL, &g), 0);
    free(pat);
    struct calibrate_set s;
    calibrate_set_init(&s);
    struct calibrate_overrides ov;
    memset(&ov, 0, sizeof(ov));
    char err[512];
    assert_int_equal(calibrate_load(&s, g.gl_pathv[0], &ov, err, sizeof(err)), 0);
    globfree(&g);
    assert_int_equal(s.n, 1);
    const struct calibrate_point *p = &s.pts[0];
    assert_int_equal(p->q.n_lens, 8);
    assert_true(p->q.prompt_lens == p->own_prompt_lens && p->q.output_lens == p->own_output_lens);
    long in = 0, out = 0;
    for (size_t i = 0; i < p->q.n_lens; i++) {
        assert_int_equal(p->q.output_lens[i], 128); /* completion_tokens, ignore_eos */
        assert_true(p->q.prompt_lens[i] > 8000 && p->q.prompt_lens[i] <= 8320 - 128);
        in += p->q.prompt_lens[i];
        out += p->q.output_lens[i];
    }
    /* Their means are the summary's, which the point also carries. */
    assert_int_equal((int)lround((double)in / 8), p->q.prompt_tokens);
    assert_int_equal((int)lround((double)out / 8), p->q.output_tokens);
    calibrate_set_release(&s);
}

/* Runs plan --json with extra args; returns the parsed object (caller decrefs). */
static json_t *plan_json(const char *extra)
{
    char *args = xasprintf("plan --gpu h200 --model llama-3.1-8b --prompt-tokens 2000 "
                           "--output-tokens 200 --users 8 --population streams --json %s",
                           extra);
    char *out = NULL;
    assert_int_equal(run_tb(args, &out), 0);
    free(args);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    free(out);
    assert_non_null(j);
    return j;
}

static double num(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void a_profile_moves_plan_the_documented_way(void **state)
{
    (void)state;
    /* Slower GEMMs: a longer prefill, so a higher TTFT; slower weight streaming: a longer decode
     * step, so a higher TPOT and less throughput; a larger request cost: TTFT grows by about it. */
    write_file("slow_gemm.yaml", "kind: calibration\nefficiency: {gemm: 0.2}\n");
    write_file("slow_bw.yaml", "kind: calibration\nefficiency: {weight_bandwidth: 0.4}\n");
    write_file("slow_req.yaml", "kind: calibration\noverhead: {request_s: 0.5}\n");
    json_t *base = plan_json("");
    char *a = xasprintf("--calibration %s/slow_gemm.yaml", tmpdir);
    json_t *g = plan_json(a);
    free(a);
    a = xasprintf("--calibration %s/slow_bw.yaml", tmpdir);
    json_t *b = plan_json(a);
    free(a);
    a = xasprintf("--calibration %s/slow_req.yaml", tmpdir);
    json_t *r = plan_json(a);
    free(a);
    assert_true(num(g, "ttft_mean_ms") > 1.5 * num(base, "ttft_mean_ms"));
    assert_true(num(b, "tpot_mean_ms") > 1.3 * num(base, "tpot_mean_ms"));
    assert_true(num(b, "output_throughput") < num(base, "output_throughput") / 1.3);
    assert_true(num(r, "ttft_mean_ms") > num(base, "ttft_mean_ms") + 400);
    /* The JSON carries means beside the percentiles, and the uncertainty band. */
    assert_true(num(base, "tpot_mean_ms") > 0 && num(base, "itl_mean_ms") > 0);
    json_t *u = json_object_get(base, "uncertainty");
    assert_non_null(u);
    assert_true(num(u, "output_throughput_pct") > 0 && num(u, "tpot_pct") > 0);
    /* The band names the combination it rests on (its rules: tests/test_validation.c). */
    assert_non_null(strstr(json_string_value(json_object_get(u, "combination")), "GPU sm_90"));
    assert_true(json_is_array(json_object_get(u, "row_ids")));
    json_decref(base);
    json_decref(g);
    json_decref(b);
    json_decref(r);

    /* A profile fitted on the planned GPU gives its own error after the fit as the band, never
     * under 5 %. */
    write_file("fit12.yaml", "kind: calibration\ngpu: h200\n"
                             "fit: {points: 6, error_before_pct: 30, error_after_pct: 12}\n");
    write_file("fit2.yaml", "kind: calibration\ngpu: h200\n"
                            "fit: {points: 6, error_before_pct: 30, error_after_pct: 2}\n");
    a = xasprintf("--calibration %s/fit12.yaml", tmpdir);
    json_t *c12 = plan_json(a);
    free(a);
    a = xasprintf("--calibration %s/fit2.yaml", tmpdir);
    json_t *c2 = plan_json(a);
    free(a);
    u = json_object_get(c12, "uncertainty");
    assert_true(fabs(num(u, "tpot_pct") - 12.0) < 1e-9);
    assert_non_null(strstr(json_string_value(json_object_get(u, "basis")), "calibration"));
    assert_true(fabs(num(json_object_get(c2, "uncertainty"), "output_throughput_pct") - 5.0) <
                1e-9);
    json_decref(c12);
    json_decref(c2);
}

static void a_bad_profile_is_a_usage_error_with_its_line(void **state)
{
    (void)state;
    write_file("bad.yaml", "kind: calibration\nefficiency:\n  gemm: 0.5\n  gemmm: 0.4\n");
    write_file("range.yaml", "kind: calibration\nefficiency:\n  kv_bandwidth: 7\n");
    char *a = xasprintf("plan --gpu h100 --model llama-3.1-8b --calibration %s/bad.yaml", tmpdir);
    assert_int_equal(run_tb(a, NULL), 2);
    free(a);
    char *e = read_stderr();
    assert_non_null(strstr(e, "bad.yaml:4:3"));
    assert_non_null(strstr(e, "gemmm"));
    free(e);
    a = xasprintf("sim --port 0 --calibration %s/range.yaml", tmpdir);
    assert_int_equal(run_tb(a, NULL), 2);
    free(a);
    e = read_stderr();
    assert_non_null(strstr(e, "range.yaml:3:17"));
    free(e);
}

/* The ratios bench_validation prints, recomputed by hand for made-up rows. */
static void validation_ratios_match_a_hand_computation(void **state)
{
    (void)state;
    struct validation_row r;
    memset(&r, 0, sizeof(r));
    r.output_tps = 1000.0;
    r.ttft_mean_ms = 400.0;
    r.ttft_median_ms = 300.0;
    r.tpot_mean_ms = 50.0;
    r.tpot_median_ms = 40.0;
    struct plan_prediction p;
    memset(&p, 0, sizeof(p));
    p.simulated = true;
    p.fits = true;
    p.output_tps = 1250.0;
    p.ttft.mean = 0.200; /* seconds */
    p.ttft.p50 = 0.330;
    p.tpot.mean = 0.045;
    p.tpot.p50 = 0.044;
    struct validation_ratio vr;
    validation_compare(&r, &p, &vr);
    /* Means against means where the row publishes means: 1250/1000, 200/400, 45/50. */
    assert_true(fabs(vr.tps - 1.25) < 1e-12);
    assert_true(fabs(vr.ttft - 0.5) < 1e-12);
    assert_true(fabs(vr.tpot - 0.9) < 1e-12);
    assert_true(vr.ttft_is_mean && vr.tpot_is_mean);
    /* A row with medians only: 330/300 and 44/40. */
    r.ttft_mean_ms = r.tpot_mean_ms = NAN;
    validation_compare(&r, &p, &vr);
    assert_true(fabs(vr.ttft - 1.1) < 1e-12);
    assert_true(fabs(vr.tpot - 1.1) < 1e-12);
    assert_false(vr.ttft_is_mean || vr.tpot_is_mean);
    /* Median |ratio - 1| in percent: |0.9-1|=10, |1.25-1|=25, |0.5-1|=50, NAN skipped -> 25. */
    double ratios[] = {0.9, 1.25, NAN, 0.5};
    assert_true(fabs(validation_median_abs_error(ratios, 4) - 25.0) < 1e-9);
    /* Even count: 10 and 25 -> 17.5 (linear interpolation between the middle two). */
    assert_true(fabs(validation_median_abs_error(ratios, 2) - 17.5) < 1e-9);
    /* A prediction that was not simulated compares nothing. */
    p.simulated = false;
    validation_compare(&r, &p, &vr);
    assert_true(isnan(vr.tps) && isnan(vr.ttft) && isnan(vr.tpot));
}

/* The shipped validation set loads, holds both halves, and its split is the file's rule. */
static void the_validation_set_loads_with_its_split(void **state)
{
    (void)state;
    struct validation_set s;
    validation_set_init(&s);
    char err[512];
    assert_int_equal(
        validation_load(&s, TB_SOURCE_DIR "/bench/validation/cloudrift.yaml", err, sizeof(err)), 0);
    assert_true(s.n >= 6);
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.rows[i].held_out, i % 2 == 1);
        assert_non_null(strstr(s.rows[i].source, "https://"));
    }
    validation_set_release(&s);
    /* Every file splits on its own, and the ShareGPT rows say their lengths vary (means), which
     * keeps the bursts among them out of `bench_validation --fit`. */
    assert_int_equal(validation_load(&s, TB_SOURCE_DIR "/bench/validation/gpustack_perf_lab.yaml",
                                     err, sizeof(err)),
                     0);
    size_t sharegpt = 0;
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.rows[i].held_out, i % 2 == 1);
        bool is_sharegpt = strstr(s.rows[i].id, "sharegpt") != NULL;
        assert_true(s.rows[i].lengths_vary == is_sharegpt);
        /* Those rows carry one drawn length pair per request of a replica, the others none. */
        assert_int_equal(s.rows[i].n_lens,
                         is_sharegpt ? (size_t)(s.rows[i].prompts / s.rows[i].replicas) : 0);
        assert_true((s.rows[i].prompt_lens != NULL) == is_sharegpt);
        sharegpt += is_sharegpt;
    }
    assert_true(sharegpt >= 6);
    /* Queue rule (b), as the file writes it: a row that sends every request at once with more
     * prompt tokens together than one step's budget (vLLM's OpenAI-server default: 2,048 on the
     * A100, 8,192 on the H100) is queue-dominated. */
    size_t bursts = 0;
    for (size_t i = 0; i < s.n; i++) {
        const struct validation_row *r = &s.rows[i];
        long budget = strstr(r->gpu, "a100") ? 2048 : 8192;
        if (r->concurrency == r->prompts && (long)r->prompts * r->prompt_tokens > budget) {
            assert_true(r->ttft_queue_dominated);
            bursts++;
        }
        assert_false(r->ttft_implausible);
    }
    assert_true(bursts >= 20);
    validation_set_release(&s);
    /* The one implausible TTFT (tenstorrent_gpu_reference.yaml's header computes it) loads as
     * such and is the 2,048-token row. */
    assert_int_equal(
        validation_load(&s, TB_SOURCE_DIR "/bench/validation/tenstorrent_gpu_reference.yaml", err,
                        sizeof(err)),
        0);
    size_t implausible = 0;
    for (size_t i = 0; i < s.n; i++)
        if (s.rows[i].ttft_implausible) {
            assert_non_null(strstr(s.rows[i].id, "-2048-"));
            implausible++;
        }
    assert_int_equal(implausible, 1);
    validation_set_release(&s);
    write_file("lv.yaml", "rows:\n  - id: x\n    source: s\n    engine: vllm\n"
                          "    engine_version: v\n    gpu: h100\n    model: m\n"
                          "    max_model_len: 1\n    prompt_tokens: 1\n    output_tokens: 1\n"
                          "    concurrency: 1\n    prompts: 1\n    output_throughput: 1\n"
                          "    lengths_vary: maybe\n");
    char *lv = path_in("lv.yaml");
    assert_int_equal(validation_load(&s, lv, err, sizeof(err)), -EINVAL);
    free(lv);
    assert_non_null(strstr(err, "lengths_vary"));
    validation_set_release(&s);
    /* A row missing a required key names its file and line. */
    write_file("v.yaml", "rows:\n  - id: x\n    gpu: h100\n");
    char *p = path_in("v.yaml");
    assert_int_equal(validation_load(&s, p, err, sizeof(err)), -EINVAL);
    free(p);
    assert_non_null(strstr(err, "v.yaml:2:"));
    validation_set_release(&s);
}

/* ShareGPT-like lengths: the published means, vLLM's sampler bounds, a long tail, and the same
 * draw for the same seed. */
static void sharegpt_lengths_keep_the_means_and_bounds(void **state)
{
    (void)state;
    enum { N = 1000 };
    int *p = xcalloc(N, sizeof(*p)), *o = xcalloc(N, sizeof(*o));
    int *p2 = xcalloc(N, sizeof(*p2)), *o2 = xcalloc(N, sizeof(*o2));
    validation_sharegpt_lengths(217, 197, 42, p, o, N);
    double sp = 0, so = 0;
    int pmax = 0;
    for (int i = 0; i < N; i++) {
        assert_true(p[i] >= 4 && p[i] <= 1024);
        assert_true(o[i] >= 4 && p[i] + o[i] <= 2048);
        sp += p[i];
        so += o[i];
        pmax = p[i] > pmax ? p[i] : pmax;
    }
    assert_true(fabs(sp / N - 217) < 1.0);
    assert_true(fabs(so / N - 197) < 1.0);
    assert_true(pmax > 3 * 217); /* long-tailed, not the mean every time */
    validation_sharegpt_lengths(217, 197, 42, p2, o2, N);
    assert_memory_equal(p, p2, N * sizeof(*p));
    assert_memory_equal(o, o2, N * sizeof(*o));
    validation_sharegpt_lengths(217, 197, 43, p2, o2, N);
    assert_true(memcmp(p, p2, N * sizeof(*p)) != 0);
    free(p);
    free(o);
    free(p2);
    free(o2);
}

/* plan replays per-request lengths in order: lengths equal to the means give the same plan as
 * none, varied ones a different one, and a pair longer than the window is refused. */
static void plan_replays_per_request_lengths(void **state)
{
    (void)state;
    struct plan_query q = {.gpu = "h100",
                           .model = "llama-3.1-8b",
                           .max_model_len = 2048,
                           .prompt_tokens = 300,
                           .output_tokens = 60,
                           .users = 4,
                           .requests = 16};
    char err[512];
    struct plan_prediction a, b, c;
    assert_int_equal(plan_predict(&q, &a, err, sizeof(err)), 0);
    int pl[16], ol[16];
    for (int i = 0; i < 16; i++) {
        pl[i] = 300;
        ol[i] = 60;
    }
    q.prompt_lens = pl;
    q.output_lens = ol;
    q.n_lens = 16;
    assert_int_equal(plan_predict(&q, &b, err, sizeof(err)), 0);
    assert_true(a.simulated && b.simulated);
    assert_true(a.output_tps == b.output_tps && a.ttft.mean == b.ttft.mean);
    for (int i = 0; i < 16; i++) { /* same means, spread */
        pl[i] = i % 2 ? 500 : 100;
        ol[i] = i % 4 < 2 ? 20 : 100;
    }
    assert_int_equal(plan_predict(&q, &c, err, sizeof(err)), 0);
    assert_true(c.output_tps != a.output_tps && c.ttft.mean != a.ttft.mean);
    /* The burst lasts as long as its longest requests: lower throughput than equal lengths. */
    assert_true(c.output_tps < a.output_tps);
    pl[5] = 2040; /* + 20 output tokens > 2048 */
    assert_int_equal(plan_predict(&q, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "request 5"));
}

/* A warm-up is served but never judged, as the runner's is (requests.warmup_requests): the
 * first requests sent here are long prompts whose TTFT misses the SLO; with them as the warm-up
 * the plan judges only the short ones after them, and passes. */
static void plan_judges_only_after_the_warm_up(void **state)
{
    (void)state;
    int pl[12], ol[12];
    for (int i = 0; i < 12; i++) {
        pl[i] = i < 4 ? 1900 : 100;
        ol[i] = 40;
    }
    struct plan_query q = {.gpu = "h100",
                           .model = "llama-3.1-8b",
                           .max_model_len = 2048,
                           .prompt_tokens = 600,
                           .output_tokens = 40,
                           .prompt_lens = pl,
                           .output_lens = ol,
                           .n_lens = 12,
                           .users = 4,
                           .requests = 12};
    char err[512];
    struct plan_prediction all, after;
    assert_int_equal(plan_predict(&q, &all, err, sizeof(err)), 0);
    q.warmup_requests = 4;
    assert_int_equal(plan_predict(&q, &after, err, sizeof(err)), 0);
    assert_true(all.simulated && after.simulated);
    assert_int_equal(all.ttft.n, 12);
    assert_int_equal(after.ttft.n, 8); /* judged: the requests after the warm-up */
    assert_int_equal(after.tpot.n, 8);
    assert_int_equal(after.failed, 0);
    assert_true(after.ttft.max < all.ttft.max / 2); /* the long prompts are not among them */
    /* The same SLO: missed with the long prompts judged, met after them. */
    q.slo.percentile = 95;
    q.slo.ttft_ms = 1e3 * (after.ttft.max + all.ttft.max) / 2;
    q.warmup_requests = 0;
    assert_int_equal(plan_predict(&q, &all, err, sizeof(err)), 0);
    q.warmup_requests = 4;
    assert_int_equal(plan_predict(&q, &after, err, sizeof(err)), 0);
    assert_false(all.meets_slo);
    assert_true(after.meets_slo);
    /* Users in conversation: the first turns sent are the warm-up, the rest judged. */
    q.population = VD_SESSIONS;
    session_cfg_defaults(&q.session);
    q.session.turns = 3;
    q.session.think_time_s = 0.5;
    q.prompt_lens = q.output_lens = NULL;
    q.n_lens = 0;
    q.prompt_tokens = 200;
    q.users = 2;
    q.requests = 12;
    q.warmup_requests = 6;
    assert_int_equal(plan_predict(&q, &after, err, sizeof(err)), 0);
    assert_int_equal(after.ttft.n, 6);
    assert_int_equal(after.ttft_first.n + after.ttft_later.n, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(validation_ratios_match_a_hand_computation),
        cmocka_unit_test(sharegpt_lengths_keep_the_means_and_bounds),
        cmocka_unit_test(plan_replays_per_request_lengths),
        cmocka_unit_test(plan_judges_only_after_the_warm_up),
        cmocka_unit_test(the_validation_set_loads_with_its_split),
        cmocka_unit_test(a_bad_profile_is_a_usage_error_with_its_line),
        cmocka_unit_test(a_profile_moves_plan_the_documented_way),
        cmocka_unit_test(calibrate_fit_recovers_the_truth_in_virtual_time),
        cmocka_unit_test(calibrate_recovers_the_simulators_efficiencies),
        cmocka_unit_test(calibrate_replays_each_requests_lengths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
