/*
 * test_config.c - the YAML config loader, config_check, config_to_json and `testbench validate`.
 * Fixtures: the .yaml files in tests/data/config; small error cases are written to temp files
 * inline.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

#define FIXTURES TB_SOURCE_DIR "/tests/data/config/"

static char err[1024];

static int load(struct config *c, const char *name)
{
    err[0] = '\0';
    return config_load(c, name, err, sizeof(err));
}

/* Writes text to a fresh temp file; the caller unlink()s and free()s the path. */
static char *write_temp(const char *text)
{
    char *path = xstrdup("/tmp/tb_test_config_XXXXXX.yaml");
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

/* Loads text, expects -EINVAL and err == "<tmpfile>:<where>..." with `want` inside. */
static void expect_error(const char *text, const char *where, const char *want)
{
    char *path = write_temp(text);
    struct config c;
    int rc = load(&c, path);
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "%s:%s", path, where);
    if (rc != -EINVAL || strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, want))
        fail_msg("for:\n%s\nwant rc %d, prefix '%s', containing '%s'\ngot rc %d: '%s'", text,
                 -EINVAL, prefix, want, rc, err);
    config_release(&c); /* released already; must be a no-op */
    unlink(path);
    free(path);
}

static void expect_ok(const char *text, struct config *c)
{
    char *path = write_temp(text);
    int rc = load(c, path);
    if (rc != 0)
        fail_msg("for:\n%s\nunexpected error %d: %s", text, rc, err);
    unlink(path);
    free(path);
}

static void test_seed_example(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(load(&c, FIXTURES "seed.yaml"), 0);
    assert_string_equal(c.benchmark.name, "Benchmark Name");
    assert_string_equal(c.benchmark.description, "What this test measures");
    assert_string_equal(c.benchmark.output_prefix, "output_filename_prefix");
    assert_string_equal(c.model.name, "meta-llama/Llama-3.1-70B-Instruct");
    assert_string_equal(c.model.quantization, "fp8");
    assert_int_equal(c.model.tensor_parallel_size, 1);
    assert_true(c.model.enable_prefix_caching);
    assert_int_equal(c.n_context_lengths, 3);
    assert_int_equal(c.context_lengths[0], 8192);
    assert_int_equal(c.context_lengths[1], 32768);
    assert_int_equal(c.context_lengths[2], 65536);
    assert_int_equal(c.requests.num_requests, 100);
    assert_int_equal(c.requests.n_concurrency, 1);
    assert_int_equal(c.requests.concurrency[0], 10);
    assert_int_equal(c.requests.arrival, ARRIVAL_POISSON);
    assert_int_equal(c.requests.n_rates, 1);
    assert_true(c.requests.rates[0] == 2.0);
    assert_int_equal(c.requests.prompt_tokens_min, 512);
    assert_int_equal(c.requests.prompt_tokens_max, 2048);
    assert_int_equal(c.requests.completion_tokens, 512);
    assert_true(c.telemetry.sample_interval_sec == 1.0);
    assert_true(c.telemetry.collect_gpu_stats);
    /* one tenant "default" copying the top level */
    assert_int_equal(c.n_tenants, 1);
    assert_false(c.tenants_given);
    assert_string_equal(c.tenants[0].name, "default");
    assert_string_equal(c.tenants[0].endpoint, "http://localhost:8000");
    assert_string_equal(c.tenants[0].model, c.model.name);
    assert_true(c.tenants[0].requests.rates[0] == 2.0);
    assert_int_equal(c.tenants[0].requests.completion_tokens, 512);
    assert_int_equal(config_n_points(&c), 3);
    assert_string_equal(c.path, FIXTURES "seed.yaml");
    assert_int_equal(config_check(&c, err, sizeof(err)), 0);
    config_release(&c);
    config_release(&c); /* idempotent */
}

static void check_defaults(const struct config *c)
{
    assert_int_equal(c->benchmark.seed, 42);
    assert_string_equal(c->benchmark.output_dir, "results");
    assert_string_equal(c->benchmark.output_prefix, "benchmark");
    assert_string_equal(c->benchmark.description, "");
    assert_string_equal(c->server.endpoint, "http://localhost:8000");
    assert_int_equal(c->server.api, API_COMPLETIONS);
    assert_string_equal(c->server.api_key_env, "OPENAI_API_KEY");
    assert_true(c->server.timeout_s == 600.0);
    assert_false(c->server.sim.enabled);
    assert_string_equal(c->server.sim.gpu, "rtx-pro-6000");
    assert_string_equal(c->server.sim.kv_cache_dtype, "auto");
    assert_true(c->server.sim.gpu_memory_utilization == 0.9);
    assert_int_equal(c->server.sim.enable_prefix_caching, 1);
    assert_int_equal(c->server.sim.tensor_parallel_size, 1);
    assert_int_equal(c->server.sim.seed, 42);
    assert_null(c->model.name);
    assert_null(c->model.quantization);
    assert_int_equal(c->model.tensor_parallel_size, 1);
    assert_true(c->model.enable_prefix_caching);
    assert_int_equal(c->n_context_lengths, 0);
    assert_int_equal(c->requests.num_requests, 100);
    assert_int_equal(c->requests.n_concurrency, 1);
    assert_int_equal(c->requests.concurrency[0], 10);
    assert_int_equal(c->requests.n_rates, 1);
    assert_true(isinf(c->requests.rates[0]));
    assert_int_equal(c->requests.arrival, ARRIVAL_POISSON);
    assert_true(c->requests.burstiness == 1.0);
    assert_int_equal(c->requests.prompt_tokens_min, 512);
    assert_int_equal(c->requests.prompt_tokens_max, 2048);
    assert_int_equal(c->requests.completion_tokens, 512);
    assert_int_equal(c->requests.shared_prefix_tokens, 0);
    /* The default SLO profile (chat), as every entry point uses it. */
    assert_true(c->slo.ttft_ms == 2000 && isnan(c->slo.itl_ms) && c->slo.tpot_ms == 100 &&
                isnan(c->slo.e2e_ms));
    assert_string_equal(c->slo.profile, "chat");
    assert_true(c->slo.percentile == 95.0);
    assert_true(c->telemetry.sample_interval_sec == 1.0);
    assert_true(c->telemetry.collect_gpu_stats);
    assert_true(c->telemetry.scrape_server_metrics);
    assert_int_equal(c->n_tenants, 1);
    assert_string_equal(c->tenants[0].name, "default");
    assert_null(c->tenants[0].model);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    check_defaults(&c);
    assert_string_equal(c.benchmark.name, "benchmark");
    assert_int_equal(config_check(&c, err, sizeof(err)), 0);
    config_release(&c);

    assert_int_equal(load(&c, FIXTURES "minimal.yaml"), 0);
    check_defaults(&c);
    assert_string_equal(c.benchmark.name, "minimal");
    assert_int_equal(config_n_points(&c), 1);
    config_release(&c);
}

static void test_sweeps(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(load(&c, FIXTURES "sweep.yaml"), 0);
    assert_int_equal(c.requests.n_concurrency, 3);
    assert_int_equal(c.requests.concurrency[0], 1);
    assert_int_equal(c.requests.concurrency[1], 4);
    assert_int_equal(c.requests.concurrency[2], 16);
    assert_int_equal(c.requests.n_rates, 4);
    assert_true(c.requests.rates[0] == 0.5);
    assert_true(c.requests.rates[1] == 2.0);
    assert_true(isinf(c.requests.rates[2]) && c.requests.rates[2] > 0);
    assert_true(isinf(c.requests.rates[3]));
    assert_int_equal(c.requests.arrival, ARRIVAL_GAMMA);
    assert_true(c.requests.burstiness == 0.5);
    assert_int_equal(c.requests.shared_prefix_tokens, 64);
    assert_int_equal(config_n_points(&c), 12);
    /* the default tenant carries the sweep lists */
    assert_int_equal(c.tenants[0].requests.n_concurrency, 3);
    assert_int_equal(c.tenants[0].requests.n_rates, 4);
    /* server and simulator */
    assert_string_equal(c.server.endpoint, "http://127.0.0.1:8001"); /* trailing '/' dropped */
    assert_string_equal(c.tenants[0].endpoint, "http://127.0.0.1:8001");
    assert_int_equal(c.server.api, API_CHAT);
    assert_true(c.server.timeout_s == 30.0);
    assert_true(c.server.sim.enabled);
    assert_string_equal(c.server.sim.gpu, "h200");
    assert_int_equal(c.server.sim.max_model_len, 32768);
    assert_string_equal(c.server.sim.model, "Qwen/Qwen2.5-7B-Instruct"); /* from model.name */
    assert_null(c.server.sim.quantization);                              /* "none" */
    assert_null(c.model.quantization);
    assert_int_equal(c.server.sim.tensor_parallel_size, 2); /* from model */
    assert_int_equal(c.server.sim.enable_prefix_caching, 0);
    assert_false(c.model.enable_prefix_caching); /* "no" */
    assert_int_equal(c.server.sim.seed, 7);      /* from benchmark.seed */
    assert_int_equal(c.benchmark.seed, 7);
    assert_string_equal(c.benchmark.output_dir, "out/sweeps");
    /* slo, telemetry */
    assert_true(c.slo.ttft_ms == 2000 && c.slo.itl_ms == 100 && c.slo.tpot_ms == 100);
    assert_true(isnan(c.slo.e2e_ms));
    assert_true(c.slo.percentile == 99);
    assert_true(c.telemetry.sample_interval_sec == 0.05);
    assert_false(c.telemetry.collect_gpu_stats);
    assert_true(c.telemetry.scrape_server_metrics);
    config_release(&c);
}

static void test_tenants_inherit(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(load(&c, FIXTURES "tenants.yaml"), 0);
    assert_true(c.tenants_given);
    assert_int_equal(c.n_tenants, 2);
    assert_true(c.server.sim.enabled); /* sim: {} */
    const struct tenant_cfg *a = &c.tenants[0], *b = &c.tenants[1];
    assert_string_equal(a->name, "chat");
    assert_string_equal(a->endpoint, "http://127.0.0.1:9000");
    assert_string_equal(a->model, "base-model");
    assert_int_equal(a->requests.num_requests, 50);       /* inherited */
    assert_int_equal(a->requests.concurrency[0], 8);      /* inherited */
    assert_true(a->requests.rates[0] == 1.5);             /* own */
    assert_int_equal(a->requests.completion_tokens, 128); /* own */
    assert_int_equal(a->requests.prompt_tokens_min, 512); /* default via top level */
    assert_true(a->slo.ttft_ms == 500);                   /* own */
    assert_true(a->slo.tpot_ms == 50);                    /* inherited */
    assert_true(isnan(a->slo.itl_ms));

    assert_string_equal(b->name, "batch");
    assert_string_equal(b->endpoint, "http://127.0.0.1:9001");
    assert_string_equal(b->model, "lora-batch");
    assert_int_equal(b->requests.arrival, ARRIVAL_CONSTANT);
    assert_true(isinf(b->requests.rates[0])); /* "inf" quoted */
    assert_int_equal(b->requests.concurrency[0], 0);
    assert_int_equal(b->requests.completion_tokens, 256);
    assert_true(b->slo.ttft_ms == 1500);
    assert_int_equal(config_n_points(&c), 2);

    /* --endpoint follows tenants that used server.endpoint, not the others */
    config_set_endpoint(&c, "http://10.0.0.1:8000/");
    assert_string_equal(c.server.endpoint, "http://10.0.0.1:8000");
    assert_string_equal(c.tenants[0].endpoint, "http://10.0.0.1:8000");
    assert_string_equal(c.tenants[1].endpoint, "http://127.0.0.1:9001");
    config_set_model(&c, "other");
    assert_string_equal(c.tenants[0].model, "other");
    assert_string_equal(c.tenants[1].model, "lora-batch");
    assert_string_equal(c.server.sim.model, "other");
    assert_int_equal(config_check(&c, err, sizeof(err)), 0);
    config_release(&c);
}

/* Fixture, position, message: the required error cases on files kept in the repo. */
static const struct {
    const char *file;
    const char *where; /* after "FILE:" */
    const char *want;
} fixture_errors[] = {
    {"bad_tab.yaml", "4:1: ", "found character that cannot start any token"},
    {"bad_unknown_key.yaml", "5:3: requests.concurency: ",
     "unknown key; allowed keys in requests: "
     "num_requests, concurrent_requests"},
    {"bad_type.yaml",
     "5:20: requests.rate_per_second: ", "expected a number or \"inf\", got \"fast\""},
    {"bad_min_max.yaml",
     "3:22: requests.prompt_tokens_max: ", "1024 is less than prompt_tokens_min (4096)"},
    {"bad_negative.yaml", "4:17: requests.num_requests: ", "must be at least 1, got -5"},
    {"bad_tenant_list.yaml",
     "7:24: tenants[1].requests.rate_per_second: ", "a tenant needs a single value"},
    {"bad_context.yaml", "3:5: context_lengths[1]: ", "context 512 leaves no room for the prompt"},
    {"bad_float_int.yaml", "2:17: requests.num_requests: ", "expected an integer, got \"10.5\""},
    {"bad_not_mapping.yaml", "1:1: ", "expected a mapping"},
};

static void test_fixture_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fixture_errors) / sizeof(fixture_errors[0]); i++) {
        char path[512], prefix[640];
        snprintf(path, sizeof(path), FIXTURES "%s", fixture_errors[i].file);
        snprintf(prefix, sizeof(prefix), "%s:%s", path, fixture_errors[i].where);
        struct config c;
        int rc = load(&c, path);
        if (rc != -EINVAL || strncmp(err, prefix, strlen(prefix)) != 0 ||
            !strstr(err, fixture_errors[i].want))
            fail_msg("%s: want '%s...%s', got rc %d '%s'", fixture_errors[i].file, prefix,
                     fixture_errors[i].want, rc, err);
        config_release(&c);
    }
}

static void test_inline_errors(void **state)
{
    (void)state;
    /* counts and ranges */
    expect_error("requests:\n  completion_tokens: 0\n",
                 "2:22: requests.completion_tokens: ", "must be at least 1, got 0");
    expect_error("requests:\n  concurrent_requests: [4, -1]\n",
                 "2:28: requests.concurrent_requests[1]: ", "must be at least 0");
    expect_error("requests:\n  rate_per_second: [1, 0]\n",
                 "2:24: requests.rate_per_second[1]: ", "must be greater than 0");
    expect_error("requests:\n  rate_per_second: []\n",
                 "2:20: requests.rate_per_second: ", "the list is empty");
    expect_error("context_lengths: []\n", "1:18: context_lengths: ", "the list is empty");
    expect_error("requests:\n  prompt_tokens_min: 100\n  shared_prefix_tokens: 100\n",
                 "3:25: requests.shared_prefix_tokens: ", "must be less than prompt_tokens_min");
    /* Sessions make their own prompts: no second source of prompts beside them. */
    expect_error("requests:\n  rag: {documents: 10}\n  session: {turns: 2}\n",
                 "3:12: requests.session: ", "cannot be combined with requests.dataset");
    expect_error("context_lengths: [4096]\nrequests:\n  completion_tokens: 64\n"
                 "  output_tokens: {distribution: uniform, min: 1, max: 128}\n  session: {}\n",
                 "1:19: context_lengths[0]: ", "needs fixed output lengths");
    expect_error("telemetry:\n  sample_interval_sec: 0.01\n",
                 "2:24: telemetry.sample_interval_sec: ", "must be at least 0.05");
    expect_error("slo:\n  percentile: 0\n", "2:15: slo.percentile: ", "must be in (0, 100]");
    expect_error("slo:\n  percentile: 100.5\n", "2:15: slo.percentile: ", "must be in (0, 100]");
    expect_error("slo:\n  ttft_ms: -3\n", "2:12: slo.ttft_ms: ", "must be greater than 0");
    expect_error("model:\n  tensor_parallel_size: 0\n",
                 "2:25: model.tensor_parallel_size: ", "must be at least 1");
    expect_error("requests:\n  num_requests: 99999999999\n",
                 "2:17: requests.num_requests: ", "out of range");
    /* names and types */
    expect_error("requests:\n  arrival_pattern: bursty\n", "2:20: requests.arrival_pattern: ",
                 "unknown arrival pattern \"bursty\"; allowed: poisson, constant, burst, gamma");
    expect_error("server:\n  api: grpc\n",
                 "2:8: server.api: ", "unknown api \"grpc\"; allowed: completions, chat");
    expect_error("telemetry:\n  collect_gpu_stats: maybe\n",
                 "2:22: telemetry.collect_gpu_stats: ", "expected true/false");
    expect_error("requests:\n  num_requests: \"10\"\n",
                 "2:17: requests.num_requests: ", "got the string \"10\" (remove the quotes)");
    expect_error("requests: [1, 2]\n", "1:11: requests: ", "expected a mapping, got a list");
    expect_error("benchmark:\n  name: ~\n", "2:9: benchmark.name: ", "expected a string, got null");
    expect_error("bogus: 1\n", "1:1: bogus: ", "unknown key; allowed keys: benchmark, server");
    expect_error("server:\n  sim:\n    gpus: h100\n", "3:5: server.sim.gpus: ", "unknown key");
    expect_error("benchmark:\n  name: a\n  name: b\n",
                 "3:3: benchmark.name: ", "duplicate key (first given at line 2)");
    /* server */
    expect_error("server:\n  endpoint: localhost:8000\n",
                 "2:13: server.endpoint: ", "must start with http:// or https://");
    expect_error("server:\n  endpoint: http://h:8000/v1\n",
                 "2:13: server.endpoint: ", "leave out the trailing /v1");
    expect_error("server:\n  api_key_env: sk-abc123\n",
                 "2:16: server.api_key_env: ", "must name an environment variable");
    expect_error("server:\n  sim:\n    gpu_memory_utilization: 1.5\n",
                 "3:29: server.sim.gpu_memory_utilization: ", "must be in (0, 1]");
    expect_error("benchmark:\n  output_prefix: a/b\n",
                 "2:18: benchmark.output_prefix: ", "without '/'");
    /* tenants */
    expect_error("tenants:\n  - name: a\n  - name: a\n",
                 "3:11: tenants[1].name: ", "duplicate tenant name \"a\" (also tenants[0])");
    expect_error("tenants:\n  - endpoint: http://x\n",
                 "2:5: tenants[0]: ", "missing required key \"name\"");
    expect_error("tenants: []\n", "1:10: tenants: ", "the list is empty");
    /* a tenant that inherits a sweep list: reported at the tenant */
    expect_error("requests:\n  concurrent_requests: [1, 2]\ntenants:\n  - name: a\n",
                 "4:5: tenants[0].requests.concurrent_requests: ", "a tenant needs a single value");
    /* tenant sets max below the inherited min: reported at the tenant's key */
    expect_error("requests:\n  prompt_tokens_min: 1000\ntenants:\n  - name: a\n    requests:\n"
                 "      prompt_tokens_max: 900\n",
                 "6:26: tenants[0].requests.prompt_tokens_max: ",
                 "900 is less than prompt_tokens_min (1000)");
    /* tenant sets min above the inherited max: reported at min */
    expect_error("tenants:\n  - name: a\n    requests:\n      prompt_tokens_min: 3000\n",
                 "4:26: tenants[0].requests.prompt_tokens_min: ",
                 "3000 is greater than prompt_tokens_max (2048)");
    /* a context too small for one tenant's completion_tokens */
    expect_error(
        "context_lengths: [4096, 1024]\ntenants:\n  - name: a\n  - name: b\n    requests:\n"
        "      completion_tokens: 2000\n",
        "1:25: context_lengths[1]: ",
        "context 1024 leaves no room for the prompt "
        "(tenants[1].requests.completion_tokens is 2000)");
    /* files */
    expect_error("", "1:1: ", "the file is empty");
    expect_error("benchmark:\n  name: a\n---\nbenchmark:\n  name: b\n",
                 "3:1: ", "a second YAML document");
    expect_error("benchmark: {name: [unclosed\n", "2:1: ", "did not find expected");
}

static void test_accepts(void **state)
{
    (void)state;
    struct config c;
    /* booleans in all spellings, quantization null, inf spellings, sim: true */
    expect_ok("model:\n  quantization: null\n  enable_prefix_caching: No\n"
              "telemetry:\n  collect_gpu_stats: YES\n  scrape_server_metrics: False\n"
              "requests:\n  rate_per_second: +.inf\nserver:\n  sim: true\n"
              "slo:\n  e2e_ms: ~\n  ttft_ms: 1e3\n",
              &c);
    assert_null(c.model.quantization);
    assert_false(c.model.enable_prefix_caching);
    assert_int_equal(c.server.sim.enable_prefix_caching, 0);
    assert_true(c.telemetry.collect_gpu_stats);
    assert_false(c.telemetry.scrape_server_metrics);
    assert_true(isinf(c.requests.rates[0]));
    assert_true(c.server.sim.enabled);
    assert_true(isnan(c.slo.e2e_ms));
    assert_true(c.slo.ttft_ms == 1000.0);
    config_release(&c);

    /* sim: false keeps it off; explicit sim fields beat the model's */
    expect_ok("model:\n  name: m\n  tensor_parallel_size: 4\nserver:\n  sim: false\n", &c);
    assert_false(c.server.sim.enabled);
    config_release(&c);
    expect_ok("model:\n  name: m\n  quantization: awq\nserver:\n  sim:\n    model: simm\n"
              "    quantization: fp8\n    tensor_parallel_size: 2\n    seed: 9\n"
              "    enable_prefix_caching: false\n",
              &c);
    assert_string_equal(c.server.sim.model, "simm");
    assert_string_equal(c.server.sim.quantization, "fp8");
    assert_string_equal(c.model.quantization, "awq");
    assert_int_equal(c.server.sim.tensor_parallel_size, 2);
    assert_int_equal(c.server.sim.seed, 9);
    assert_int_equal(c.server.sim.enable_prefix_caching, 0);
    config_release(&c);

    /* key order does not matter for inheritance: tenants before requests */
    expect_ok("tenants:\n  - name: t\nrequests:\n  num_requests: 7\n", &c);
    assert_int_equal(c.tenants[0].requests.num_requests, 7);
    config_release(&c);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct config c;
    int rc = load(&c, "/nonexistent/dir/x.yaml");
    assert_int_equal(rc, -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/dir/x.yaml"));
    config_release(&c);
}

static void test_check_after_override(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(load(&c, FIXTURES "seed.yaml"), 0);
    config_set_endpoint(&c, "ftp://host");
    assert_int_equal(config_check(&c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "server.endpoint: must start with http:// or https://, got "
                             "\"ftp://host\"");
    config_set_endpoint(&c, "https://host:443");
    assert_int_equal(config_check(&c, err, sizeof(err)), 0);
    assert_string_equal(c.tenants[0].endpoint, "https://host:443");
    c.requests.prompt_tokens_min = 5000;
    assert_int_equal(config_check(&c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "requests.prompt_tokens_max: 2048 is less than prompt_tokens_min "
                             "(5000)");
    c.requests.prompt_tokens_min = 512;
    c.context_lengths[0] = 100;
    assert_int_equal(config_check(&c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "context_lengths[0]: context 100 leaves no room"));
    config_release(&c);
}

static const char *jstr(json_t *root, const char *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(root, obj), key));
}

static void test_to_json(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(load(&c, FIXTURES "sweep.yaml"), 0);
    json_t *j = config_to_json(&c);
    assert_non_null(j);
    /* through text and back, as a result file would be read */
    char *text = json_dumps(j, 0);
    json_decref(j);
    json_error_t jerr;
    j = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(j);

    assert_string_equal(jstr(j, "benchmark", "name"), c.benchmark.name);
    assert_string_equal(jstr(j, "benchmark", "output_dir"), "out/sweeps");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "benchmark"), "seed")),
                     7);
    assert_string_equal(jstr(j, "server", "endpoint"), c.server.endpoint);
    assert_string_equal(jstr(j, "server", "api"), "chat");
    json_t *sim = json_object_get(json_object_get(j, "server"), "sim");
    assert_true(json_is_true(json_object_get(sim, "enabled")));
    assert_string_equal(json_string_value(json_object_get(sim, "gpu")), "h200");
    assert_true(json_is_null(json_object_get(sim, "quantization")));
    assert_true(json_is_null(json_object_get(json_object_get(j, "model"), "quantization")));
    assert_true(
        json_is_false(json_object_get(json_object_get(j, "model"), "enable_prefix_caching")));

    json_t *rq = json_object_get(j, "requests");
    json_t *conc = json_object_get(rq, "concurrent_requests");
    assert_int_equal(json_array_size(conc), c.requests.n_concurrency);
    for (size_t i = 0; i < c.requests.n_concurrency; i++)
        assert_int_equal(json_integer_value(json_array_get(conc, i)), c.requests.concurrency[i]);
    json_t *rates = json_object_get(rq, "rate_per_second");
    assert_int_equal(json_array_size(rates), 4);
    assert_true(json_real_value(json_array_get(rates, 0)) == 0.5);
    assert_string_equal(json_string_value(json_array_get(rates, 2)), "inf");
    assert_string_equal(json_string_value(json_object_get(rq, "arrival_pattern")), "gamma");
    assert_true(json_real_value(json_object_get(rq, "burstiness")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(rq, "shared_prefix_tokens")), 64);

    json_t *slo = json_object_get(j, "slo");
    assert_true(json_real_value(json_object_get(slo, "ttft_ms")) == 2000.0);
    assert_true(json_is_null(json_object_get(slo, "e2e_ms")));
    assert_true(json_real_value(json_object_get(slo, "percentile")) == 99.0);
    assert_true(json_is_null(json_object_get(j, "context_lengths")));

    json_t *ts = json_object_get(j, "tenants");
    assert_int_equal(json_array_size(ts), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ts, 0), "name")),
                        "default");
    json_t *tl = json_object_get(j, "telemetry");
    assert_true(json_real_value(json_object_get(tl, "sample_interval_sec")) == 0.05);
    assert_true(json_is_false(json_object_get(tl, "collect_gpu_stats")));
    json_decref(j);
    config_release(&c);

    /* tenants expanded, contexts listed */
    assert_int_equal(load(&c, FIXTURES "tenants.yaml"), 0);
    j = config_to_json(&c);
    ts = json_object_get(j, "tenants");
    assert_int_equal(json_array_size(ts), 2);
    json_t *t1 = json_array_get(ts, 1);
    assert_string_equal(json_string_value(json_object_get(t1, "model")), "lora-batch");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(t1, "requests"), "rate_per_second")),
        "inf");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(t1, "requests"), "num_requests")), 50);
    assert_int_equal(json_array_size(json_object_get(j, "context_lengths")), 2);
    json_decref(j);
    config_release(&c);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(arrival_name(ARRIVAL_POISSON), "poisson");
    assert_string_equal(arrival_name(ARRIVAL_CONSTANT), "constant");
    assert_string_equal(arrival_name(ARRIVAL_BURST), "burst");
    assert_string_equal(arrival_name(ARRIVAL_GAMMA), "gamma");
    assert_string_equal(api_kind_name(API_COMPLETIONS), "completions");
    assert_string_equal(api_kind_name(API_CHAT), "chat");
}

/* Runs `testbench validate ARGS`, capturing stdout+stderr; returns the exit status. */
static int run_validate(const char *args, char *out, size_t outlen)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' validate %s 2>&1", TB_BINARY, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_validate_command(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(run_validate("--config " FIXTURES "seed.yaml", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "OK: " FIXTURES "seed.yaml (3 points, 1 tenant)\n"));
    /* The seed sets prompt_tokens_min/max and context_lengths, which replace them: said; and
     * its BF16 70B at fp8 is a server no 96 GB GPU could have started: said, not refused. */
    assert_non_null(strstr(out, FIXTURES "seed.yaml: warning: context_lengths set every prompt"));
    assert_non_null(strstr(out, FIXTURES "seed.yaml: warning: model.quantization: vLLM quantizes"));
    assert_int_equal(run_validate("--config " FIXTURES "tenants.yaml", out, sizeof(out)), 0);
    assert_string_equal(out, "OK: " FIXTURES "tenants.yaml (2 points, 2 tenants)\n");
    assert_int_equal(run_validate("--config " FIXTURES "bad_type.yaml", out, sizeof(out)), 2);
    assert_string_equal(out, FIXTURES "bad_type.yaml:5:20: requests.rate_per_second: expected a "
                                      "number or \"inf\", got \"fast\"\n");
    assert_int_equal(run_validate("--config /nonexistent.yaml", out, sizeof(out)), 2);
    assert_non_null(strstr(out, "/nonexistent.yaml"));
    assert_int_equal(run_validate("", out, sizeof(out)), 2);
    assert_int_equal(run_validate("--bogus", out, sizeof(out)), 2);
    assert_int_equal(run_validate("--print --config " FIXTURES "minimal.yaml", out, sizeof(out)),
                     0);
    assert_non_null(strstr(out, "\"rate_per_second\": \"inf\""));
}

/* Issue 23 item 17: validate stopped at the first error. Now every error in the file, in file
 * order, each with its file:line:column; unknown keys with "did you mean"; a key left out to
 * find the next error causes no error of its own (the duplicate tenant name is not also a
 * "missing required key"); the other bound of a min > max pair is not blamed again. */
static void test_validate_reports_every_error(void **state)
{
    (void)state;
    char out[8192];
    assert_int_equal(run_validate("--config " FIXTURES "many_errors.yaml", out, sizeof(out)), 2);
    static const char *const want[] = {
        "many_errors.yaml:2:27: benchmark.seeed: unknown key; did you mean \"seed\"?",
        "many_errors.yaml:3:56: server.timeout_s: must be at least 0.001, got -5",
        "many_errors.yaml:6:17: requests.num_requests: must be at least 1, got 0",
        "many_errors.yaml:7:28: requests.concurrent_requests[1]: must be at least 0",
        "many_errors.yaml:9:22: requests.prompt_tokens_max: 100 is less than prompt_tokens_min",
        "many_errors.yaml:10:22: requests.completion_tokens: expected an integer, got \"many\"",
        "many_errors.yaml:11:3: requests.arival_pattern: unknown key; did you mean "
        "\"arrival_pattern\"?",
        "many_errors.yaml:12:33: slo.percentile: must be in (0, 100], got 250",
        "many_errors.yaml:15:11: tenants[1].name: duplicate tenant name \"a\"",
        "9 errors in " FIXTURES "many_errors.yaml\n",
    };
    const char *at = out;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *hit = strstr(at, want[i]);
        if (!hit)
            fprintf(stderr, "missing (or out of order): %s\nin:\n%s\n", want[i], out);
        assert_non_null(hit);
        at = hit + strlen(want[i]);
    }
    assert_null(strstr(out, "missing required key"));
    assert_null(strstr(out, "requests.prompt_tokens_min: "));
    /* One error stays one line, as before. */
    assert_int_equal(run_validate("--config " FIXTURES "bad_type.yaml", out, sizeof(out)), 2);
    assert_null(strstr(out, "errors in"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_sweeps),
        cmocka_unit_test(test_tenants_inherit),
        cmocka_unit_test(test_fixture_errors),
        cmocka_unit_test(test_inline_errors),
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_check_after_override),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_validate_command),
        cmocka_unit_test(test_validate_reports_every_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
