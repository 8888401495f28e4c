/*
 * test_workload_e2e.c - workloads end to end against the simulator (in process, loopback):
 * a dataset's prompts reach the server with the lengths counted for them (usage.prompt_tokens
 * = target_prompt_tokens, whole conversations as chat message lists) and its output lengths
 * are generated; output lengths follow a normal distribution's mean; a trace's arrival times
 * are honoured at the configured speed, with exact prompt lengths; RAG prompts hit the prefix
 * cache; and chat prompts are exact on a server whose /tokenize has no chat form (llama.cpp's
 * shape) thanks to the template probe.
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
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"
#include "core/xalloc.h"
#include "runner/prompt.h"
#include "runner/run.h"
#include "sim/sim.h"
#include "tb_proc.h"

struct fixture {
    char dir[64];
    struct sim_server *sim;
    int port;
};

static int start(void **state, bool llamacpp)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/tb_wle2e_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    struct sim_options o;
    tb_sim_options(&o);
    o.tokenize_llamacpp = llamacpp;
    f->sim = tb_sim_start(&o);
    assert_non_null(f->sim);
    f->port = sim_server_port(f->sim);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return start(state, false);
}

static int setup_llamacpp(void **state)
{
    return start(state, true);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sim_server_stop(f->sim);
    assert_int_equal(tb_remove_tree(f->dir), 0);
    free(f);
    return 0;
}

static char *write_file(const struct fixture *f, const char *name, const char *text)
{
    char *path = tb_write(f->dir, name, text);
    assert_non_null(path);
    return path;
}

/* Runs the config text (endpoint and output dir added) and returns detailed.json's first
 * point's requests (a new reference; *root to decref). */
static json_t *run(const struct fixture *f, const char *api, const char *requests, json_t **root)
{
    char *body = xasprintf("benchmark: {name: wl, output_prefix: wl, output_dir: \"%s\"}\n"
                           "server: {endpoint: \"http://127.0.0.1:%d\", api: %s}\n"
                           "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                           "telemetry: {sample_interval_sec: 0.05, collect_gpu_stats: false}\n"
                           "requests:\n%s",
                           f->dir, f->port, api, requests);
    char *path = write_file(f, "wl.yaml", body);
    struct config c;
    char err[1024];
    if (config_load(&c, path, err, sizeof(err)))
        fail_msg("%s", err);
    struct run_options o = {.quiet = true, .wait_s = 5};
    struct run_outcome out;
    assert_int_equal(run_config(&c, &o, &out), 0);
    json_error_t je;
    *root = json_load_file(out.detailed_path, 0, &je);
    assert_non_null(*root);
    /* A second run in the same folder must find its own file. */
    assert_int_equal(unlink(out.detailed_path), 0);
    run_outcome_release(&out);
    free(body);
    free(path);
    return json_object_get(json_array_get(json_object_get(*root, "points"), 0), "requests");
}

static long ival(json_t *o, const char *key)
{
    return (long)json_integer_value(json_object_get(o, key));
}

static void all_ok_and_exact(json_t *reqs, size_t n)
{
    assert_int_equal(json_array_size(reqs), n);
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        assert_string_equal(json_string_value(json_object_get(r, "status")), "ok");
        if (ival(r, "prompt_tokens") != ival(r, "target_prompt_tokens"))
            fail_msg("request %zu: prompt_tokens %ld, target %ld", i, ival(r, "prompt_tokens"),
                     ival(r, "target_prompt_tokens"));
        assert_int_equal(ival(r, "output_tokens"), ival(r, "target_output_tokens"));
    }
}

static const char conversations[] =
    "{\"prompt\": \"tell me about the river and the city\", \"output_tokens\": 21}\n"
    "{\"messages\": [{\"role\": \"system\", \"content\": \"answer in one line\"},"
    " {\"role\": \"user\", \"content\": \"what is a cache\"},"
    " {\"role\": \"assistant\", \"content\": \"a place to keep things near\"},"
    " {\"role\": \"user\", \"content\": \"and a prefix cache in a model server\"}],"
    " \"output_tokens\": 13}\n"
    "{\"prompt\": \"write a long story about the market\", \"output_tokens\": 34}\n";

/* Whole conversations as message lists (chat) and flattened (completions): the server counts
 * what was counted for them, and generates the file's output lengths. */
static void dataset_lengths_reach_the_server(void **state)
{
    struct fixture *f = *state;
    char *path = write_file(f, "conv.jsonl", conversations);
    const char *apis[] = {"chat", "completions"};
    for (size_t k = 0; k < 2; k++) {
        char *rq = xasprintf("  num_requests: 6\n  concurrent_requests: 3\n"
                             "  dataset: {path: \"%s\", turns: all}\n"
                             "  output_tokens: {distribution: dataset}\n",
                             path);
        json_t *root, *reqs = run(f, apis[k], rq, &root);
        all_ok_and_exact(reqs, 6);
        long outs = 0;
        size_t i;
        json_t *r;
        json_array_foreach(reqs, i, r)
        {
            long o = ival(r, "output_tokens");
            assert_true(o == 21 || o == 13 || o == 34);
            outs += o;
        }
        /* Without replacement: each of the three twice. */
        assert_int_equal(outs, 2 * (21 + 13 + 34));
        json_decref(root);
        free(rq);
    }
    free(path);
}

/* The ShareGPT sample the project ships, first turns, with a length filter and the answers'
 * lengths as outputs. */
static void shipped_sharegpt_sample(void **state)
{
    struct fixture *f = *state;
    char *rq = xasprintf("  num_requests: 12\n  concurrent_requests: 6\n"
                         "  dataset: {path: \"%s/configs/data/sharegpt_sample.json\",\n"
                         "            min_prompt_tokens: 40, max_prompt_tokens: 200}\n"
                         "  output_tokens: {distribution: dataset, max: 300}\n",
                         TB_SOURCE_DIR);
    json_t *root, *reqs = run(f, "chat", rq, &root);
    all_ok_and_exact(reqs, 12);
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        long p = ival(r, "prompt_tokens");
        assert_true(p >= 40 && p <= 200);
        assert_true(ival(r, "output_tokens") <= 300);
    }
    json_decref(root);
    free(rq);
}

/* A text corpus: passages of real text sized to the configured lengths, exactly. */
static void corpus_passages_hit_their_lengths(void **state)
{
    struct fixture *f = *state;
    char *rq = xasprintf("  num_requests: 6\n  concurrent_requests: 3\n"
                         "  prompt_tokens_min: 150\n  prompt_tokens_max: 700\n"
                         "  completion_tokens: 4\n"
                         "  dataset: {path: \"%s/configs/data/corpus_sample.txt\"}\n",
                         TB_SOURCE_DIR);
    json_t *root, *reqs = run(f, "completions", rq, &root);
    all_ok_and_exact(reqs, 6);
    json_decref(root);
    free(rq);
}

static void output_lengths_follow_the_distribution(void **state)
{
    struct fixture *f = *state;
    json_t *root, *reqs = run(f, "completions",
                              "  num_requests: 160\n  concurrent_requests: 0\n"
                              "  prompt_tokens_min: 16\n  prompt_tokens_max: 32\n"
                              "  output_tokens: {distribution: normal, mean: 30, stddev: 8,"
                              " min: 10, max: 45}\n",
                              &root);
    all_ok_and_exact(reqs, 160);
    double sum = 0;
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        long o = ival(r, "output_tokens");
        assert_true(o >= 10 && o <= 45);
        sum += (double)o;
    }
    /* 160 draws of sd 8: the mean's standard error is 0.63 tokens. */
    fprintf(stderr, "normal(30, 8): mean output %.2f tokens\n", sum / 160);
    assert_true(fabs(sum / 160 - 30) < 2.5);
    json_decref(root);
}

/* Due times are the trace's, divided by speed; prompts have the recorded lengths. */
static void trace_timing_is_honoured(void **state)
{
    struct fixture *f = *state;
    char *path = write_file(f, "t.jsonl",
                            "{\"timestamp\": 1000, \"input_length\": 700, \"output_length\": 4,"
                            " \"hash_ids\": [1]}\n"
                            "{\"timestamp\": 1100, \"input_length\": 300, \"output_length\": 6}\n"
                            "{\"timestamp\": 1400, \"input_length\": 1100, \"output_length\": 5,"
                            " \"hash_ids\": [1, 2, 3]}\n"
                            "{\"timestamp\": 1402, \"input_length\": 80, \"output_length\": 3}\n"
                            "{\"timestamp\": 1800, \"input_length\": 600, \"output_length\": 9,"
                            " \"hash_ids\": [1]}\n");
    char *rq = xasprintf("  concurrent_requests: 0\n"
                         "  trace: {path: \"%s\", speed: 2, block_tokens: 256}\n",
                         path);
    json_t *root, *reqs = run(f, "completions", rq, &root);
    all_ok_and_exact(reqs, 5);
    const double want_s[] = {0, 0.050, 0.200, 0.201, 0.400};
    const long want_in[] = {700, 300, 1100, 80, 600};
    double t0 = json_real_value(json_object_get(json_array_get(reqs, 0), "t_due"));
    for (size_t i = 0; i < 5; i++) {
        json_t *r = json_array_get(reqs, i);
        double due = json_real_value(json_object_get(r, "t_due")) - t0;
        double sent = json_real_value(json_object_get(r, "t_sent"));
        assert_true(fabs(due - want_s[i]) < 1e-6);
        /* Sent when due (the loop's lag, not the trace, is all that may move it). */
        assert_true(sent - json_real_value(json_object_get(r, "t_due")) < 0.02);
        assert_int_equal(ival(r, "prompt_tokens"), want_in[i]);
    }
    json_decref(root);
    free(rq);
    free(path);
}

static double prefix_hit_rate(json_t *root)
{
    json_t *s = json_object_get(json_array_get(json_object_get(root, "points"), 0), "summary");
    return json_real_value(
        json_object_get(json_object_get(s, "telemetry"), "prefix_cache_hit_rate_pct"));
}

/* A small pool is reused (the cache hits), a large one is not. */
static void rag_pool_size_drives_prefix_hits(void **state)
{
    struct fixture *f = *state;
    const char *fmt = "  num_requests: 16\n  concurrent_requests: 2\n"
                      "  completion_tokens: 4\n"
                      "  rag: {documents: %d, document_tokens: 800, documents_per_request: 2,"
                      " question_tokens: 40}\n";
    char *small = xasprintf(fmt, 2), *large = xasprintf(fmt, 1000);
    json_t *ra, *rb;
    all_ok_and_exact(run(f, "completions", small, &ra), 16);
    all_ok_and_exact(run(f, "completions", large, &rb), 16);
    double a = prefix_hit_rate(ra), b = prefix_hit_rate(rb);
    fprintf(stderr, "rag prefix-cache hit rate: 2 documents %.1f%%, 1000 documents %.1f%%\n", a, b);
    assert_true(a > 40);
    assert_true(b < 10);
    assert_int_equal(
        ival(json_array_get(
                 json_object_get(json_array_get(json_object_get(ra, "points"), 0), "requests"), 0),
             "prompt_tokens"),
        1640);
    json_decref(ra);
    json_decref(rb);
    free(small);
    free(large);
}

/* llama.cpp's /tokenize cannot count a chat message: the probe measures the template. */
static void chat_exact_without_a_chat_tokenizer(void **state)
{
    struct fixture *f = *state;
    /* The simulator's template adds 8 tokens to one user message (src/sim/request.c). */
    char *url = xasprintf("http://127.0.0.1:%d", f->port);
    struct prompt_builder *b;
    assert_int_equal(prompt_builder_new(&b, url, "meta-llama/Llama-3.1-8B-Instruct", NULL, 3), 0);
    prompt_builder_set_chat(b, true);
    assert_int_equal(prompt_builder_chat_overhead(b), 8);
    prompt_builder_free(b);
    free(url);
    json_t *root, *reqs = run(f, "chat",
                              "  num_requests: 6\n  concurrent_requests: 3\n"
                              "  prompt_tokens_min: 100\n  prompt_tokens_max: 600\n"
                              "  completion_tokens: 4\n",
                              &root);
    all_ok_and_exact(reqs, 6);
    json_decref(root);

    /* Whole conversations: the contents' counts plus the template per message. */
    char *path = write_file(f, "conv.jsonl", conversations);
    char *rq = xasprintf("  num_requests: 3\n  concurrent_requests: 3\n"
                         "  dataset: {path: \"%s\", turns: all}\n",
                         path);
    reqs = run(f, "chat", rq, &root);
    all_ok_and_exact(reqs, 3);
    json_decref(root);
    free(rq);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(dataset_lengths_reach_the_server, setup, teardown),
        cmocka_unit_test_setup_teardown(shipped_sharegpt_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(corpus_passages_hit_their_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(output_lengths_follow_the_distribution, setup, teardown),
        cmocka_unit_test_setup_teardown(trace_timing_is_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(rag_pool_size_drives_prefix_hits, setup, teardown),
        cmocka_unit_test_setup_teardown(chat_exact_without_a_chat_tokenizer, setup_llamacpp,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
