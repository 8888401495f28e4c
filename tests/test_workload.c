/*
 * test_workload.c - the workload room without a server: output-length distributions (moments,
 * clipping, reproducibility), the dataset readers (ShareGPT, JSON lines, text; first turn and
 * whole conversations; errors naming file, line and key), the trace readers (Mooncake-shaped
 * JSON lines, Azure-shaped CSV with dates; time order, speed), the config rules of the new
 * sections with file:line:column, and sampling (without replacement covers every entry once,
 * the length filter, RAG documents and trace blocks that share bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"
#include "core/rng.h"
#include "core/text.h"
#include "core/xalloc.h"
#include "runner/prompt.h"
#include "workload/dataset.h"
#include "workload/length.h"
#include "workload/trace.h"
#include "workload/workload.h"
#include "tb_proc.h"

static char dir[64];

static char *write_file(const char *name, const char *text)
{
    char *path = tb_write(dir, name, text);
    assert_non_null(path);
    return path;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tb_workload_XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(tb_remove_tree(dir), 0);
    return 0;
}

/* ---- lengths ---------------------------------------------------------------------------- */

#define N_DRAWS 20000

static void moments(const struct length_dist *d, int completion, double *mean, double *sd, int *lo,
                    int *hi)
{
    struct length_sampler s;
    assert_int_equal(length_sampler_init(&s, d, completion), 0);
    struct rng r;
    rng_seed(&r, 7);
    double sum = 0, ss = 0;
    *lo = INT32_MAX;
    *hi = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        int v = length_draw(&s, &r, 0);
        sum += v;
        ss += (double)v * v;
        *lo = v < *lo ? v : *lo;
        *hi = v > *hi ? v : *hi;
    }
    *mean = sum / N_DRAWS;
    *sd = sqrt(ss / N_DRAWS - *mean * *mean);
}

static void length_distributions(void **state)
{
    (void)state;
    double mean, sd;
    int lo, hi;
    struct length_dist fixed = {.min = 1};
    moments(&fixed, 300, &mean, &sd, &lo, &hi);
    assert_int_equal(lo, 300);
    assert_int_equal(hi, 300);

    struct length_dist uni = {.distribution = "uniform", .min = 10, .max = 30};
    moments(&uni, 300, &mean, &sd, &lo, &hi);
    assert_int_equal(lo, 10);
    assert_int_equal(hi, 30);
    assert_true(fabs(mean - 20) < 0.2);

    struct length_dist nor = {.distribution = "normal", .mean = 200, .stddev = 40, .min = 1};
    moments(&nor, 300, &mean, &sd, &lo, &hi);
    assert_true(fabs(mean - 200) < 2);
    assert_true(fabs(sd - 40) < 2);

    /* The lognormal's own mean and standard deviation are the configured ones. */
    struct length_dist ln = {
        .distribution = "lognormal", .mean = 250, .stddev = 150, .min = 1, .max = 100000};
    moments(&ln, 300, &mean, &sd, &lo, &hi);
    assert_true(fabs(mean - 250) < 250 * 0.03);
    assert_true(fabs(sd - 150) < 150 * 0.08);

    /* Clipping clamps to [min, max]; max 0 is 4 x mean. */
    struct length_dist clip = {
        .distribution = "normal", .mean = 100, .stddev = 100, .min = 50, .max = 120};
    moments(&clip, 300, &mean, &sd, &lo, &hi);
    assert_int_equal(lo, 50);
    assert_int_equal(hi, 120);
    struct length_dist dflt = {.distribution = "lognormal", .stddev = 400, .min = 1};
    moments(&dflt, 100, &mean, &sd, &lo, &hi);
    assert_int_equal(hi, 400);

    /* The dataset's own length, clipped; none: the mean. */
    struct length_dist ds = {.distribution = "dataset", .min = 5, .max = 0};
    struct length_sampler s;
    assert_int_equal(length_sampler_init(&s, &ds, 64), 0);
    assert_int_equal(length_draw(&s, NULL, 1234), 1234);
    assert_int_equal(length_draw(&s, NULL, 2), 5);
    assert_int_equal(length_draw(&s, NULL, 0), 64);

    struct length_dist bad = {.distribution = "zipf"};
    assert_int_equal(length_sampler_init(&s, &bad, 64), -EINVAL);
}

/* ---- datasets --------------------------------------------------------------------------- */

static const char sharegpt[] =
    "[{\"id\": \"a\", \"conversations\": [\n"
    "  {\"from\": \"system\", \"value\": \"be brief\"},\n"
    "  {\"from\": \"human\", \"value\": \"first question\"},\n"
    "  {\"from\": \"gpt\", \"value\": \"first answer\"},\n"
    "  {\"from\": \"human\", \"value\": \"second question\"},\n"
    "  {\"from\": \"gpt\", \"value\": \"second answer here\"}]},\n"
    " {\"id\": \"b\", \"conversations\": [{\"from\": \"gpt\", \"value\": \"no user\"}]},\n"
    " {\"id\": \"c\", \"messages\": [{\"role\": \"user\", \"content\": \"only\"}]}]\n";

static void sharegpt_first_and_all(void **state)
{
    (void)state;
    char *path = write_file("s.json", sharegpt), err[512];
    struct dataset_cfg cfg = {.path = path, .min_prompt_tokens = 1};
    struct dataset *d;
    assert_int_equal(dataset_load(&d, &cfg, err, sizeof(err)), 0);
    assert_int_equal(d->format, DS_SHAREGPT);
    assert_int_equal(d->n, 2);
    assert_int_equal(d->skipped, 1);
    assert_string_equal(d->v[0].prompt, "first question");
    assert_string_equal(d->v[0].reply, "first answer");
    assert_null(d->v[0].messages);
    assert_string_equal(d->v[1].prompt, "only");
    assert_null(d->v[1].reply);
    dataset_free(d);

    cfg.turns = "all";
    assert_int_equal(dataset_load(&d, &cfg, err, sizeof(err)), 0);
    /* Up to the last user turn, roles mapped; its answer is the reply. */
    assert_string_equal(d->v[0].messages, "[{\"role\":\"system\",\"content\":\"be brief\"},"
                                          "{\"role\":\"user\",\"content\":\"first question\"},"
                                          "{\"role\":\"assistant\",\"content\":\"first answer\"},"
                                          "{\"role\":\"user\",\"content\":\"second question\"}]");
    assert_string_equal(d->v[0].reply, "second answer here");
    assert_string_equal(d->v[0].prompt, "System: be brief\n\nUser: first question\n\n"
                                        "Assistant: first answer\n\nUser: second question\n\n"
                                        "Assistant:");
    dataset_free(d);
    free(path);
}

static void jsonl_and_text(void **state)
{
    (void)state;
    char *path = write_file("p.jsonl", "{\"prompt\": \"hello there\", \"output_tokens\": 77}\n"
                                       "\n"
                                       "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"},"
                                       " {\"role\": \"assistant\", \"content\": \"yo\"}]}\n");
    char err[512];
    struct dataset_cfg cfg = {.path = path, .min_prompt_tokens = 1};
    struct dataset *d;
    assert_int_equal(dataset_load(&d, &cfg, err, sizeof(err)), 0);
    assert_int_equal(d->format, DS_JSONL);
    assert_int_equal(d->n, 2);
    assert_int_equal(d->v[0].output_tokens, 77);
    assert_string_equal(d->v[0].prompt, "hello there");
    assert_int_equal(d->v[1].output_tokens, -1);
    assert_string_equal(d->v[1].prompt, "hi");
    assert_string_equal(d->v[1].reply, "yo");
    dataset_free(d);
    free(path);

    path = write_file("c.txt", "  one two\tthree\n\nfour  ");
    cfg.path = path;
    assert_int_equal(dataset_load(&d, &cfg, err, sizeof(err)), 0);
    assert_int_equal(d->format, DS_TEXT);
    assert_int_equal(d->n_words, 4);
    assert_string_equal(d->words[2], "three");
    assert_string_equal(d->words[3], "four");
    dataset_free(d);
    free(path);
}

static void dataset_errors(void **state)
{
    (void)state;
    const struct {
        const char *name, *text, *format, *want;
    } cases[] = {
        {"bad1.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": 3}\n", NULL,
         "bad1.jsonl:2: needs \"prompt\""},
        {"bad2.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"output_tokens\": 0}\n", NULL,
         "bad2.jsonl:2: output_tokens: expected an integer >= 1"},
        {"bad3.jsonl", "{\"prompt\": \"a\"}\n\n{oops\n", NULL, "bad3.jsonl:3:"},
        {"bad4.json", "[{\"conversations\": 1}]", NULL, "bad4.json: item 0: needs"},
        {"bad5.json", "[{\"conversations\": [{\"from\": \"human\"}]}]", NULL,
         "bad5.json: item 0: turn 0: expected"},
        {"bad6.json", "{\"a\": 1}", NULL, "expected a list of conversations"},
        {"bad7.json", "[1,\n 2,,]", NULL, "bad7.json:2:"},
        {"bad8.data", "[]", "sharegpt", "no usable prompts"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_file(cases[i].name, cases[i].text), err[512] = "";
        struct dataset_cfg cfg = {.path = path, .format = (char *)cases[i].format};
        struct dataset *d = NULL;
        assert_true(dataset_load(&d, &cfg, err, sizeof(err)) < 0);
        assert_null(d);
        if (!strstr(err, cases[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name, err, cases[i].want);
        free(path);
    }
    char err[256];
    struct dataset_cfg cfg = {.path = "/nonexistent/x.jsonl"};
    struct dataset *d;
    assert_int_equal(dataset_load(&d, &cfg, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/x.jsonl: cannot open"));
}

/* ---- traces ----------------------------------------------------------------------------- */

static void traces(void **state)
{
    (void)state;
    /* Out of order on purpose: rows are replayed in time order. */
    char *path = write_file("t.jsonl",
                            "{\"timestamp\": 1000, \"input_length\": 600, \"output_length\": 5,"
                            " \"hash_ids\": [1, 2]}\n"
                            "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 7}\n"
                            "{\"timestamp\": 2500, \"input_length\": 50, \"output_length\": 9}\n");
    char err[512];
    struct trace_cfg cfg = {.path = path, .speed = 2, .block_tokens = 512};
    struct trace *t;
    assert_int_equal(trace_load(&t, &cfg, err, sizeof(err)), 0);
    assert_int_equal(t->n, 3);
    assert_int_equal(t->v[0].input_tokens, 100);
    assert_int_equal(t->v[1].n_hash, 2);
    assert_int_equal(t->v[1].hash_ids[1], 2);
    mono_ns off[3];
    trace_offsets(t, 2.0, off, 3);
    assert_int_equal(off[0], 0);
    assert_int_equal(off[1], 500 * NS_PER_MS); /* 1000 ms at twice the speed */
    assert_int_equal(off[2], 1250 * NS_PER_MS);
    trace_free(t);
    free(path);

    path = write_file("t.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                               "2023-11-16 18:15:46.5000000,374,44\n"
                               "2023-11-16 18:15:48.2500000,396,109\n"
                               "2023-11-16 18:16:00.0000000,879,\"12\"\n");
    cfg.path = path;
    assert_int_equal(trace_load(&t, &cfg, err, sizeof(err)), 0);
    assert_int_equal(t->n, 3);
    assert_int_equal(t->v[2].output_tokens, 12);
    trace_offsets(t, 1.0, off, 3);
    assert_int_equal(off[1], 1750 * NS_PER_MS);
    assert_int_equal(off[2], 13500 * NS_PER_MS);
    trace_free(t);
    free(path);

    const struct {
        const char *name, *text, *want;
    } bad[] = {
        {"b1.jsonl",
         "{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 1}\n"
         "{\"timestamp\": 2, \"input_length\": 0, \"output_length\": 1}\n",
         "b1.jsonl:2: input_length: expected an integer >= 1"},
        {"b2.jsonl", "{\"timestamp\": 1, \"output_length\": 1}\n", "b2.jsonl:1: missing"},
        {"b3.csv", "a,b\n1,2\n", "b3.csv:1: the header needs"},
        {"b4.csv", "timestamp,input_length,output_length\n5,yesterday,3\n",
         "b4.csv:2: input_length"},
        {"b5.jsonl", "{\"timestamp\": \"noon\", \"input_length\": 5, \"output_length\": 1}\n",
         "b5.jsonl:1: timestamp"},
        {"b6.jsonl",
         "{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 1,"
         " \"hash_ids\": [1, -2]}\n",
         "b6.jsonl:1: hash_ids[1]"},
        {"b7.jsonl", "\n\n", "has no rows"},
        /* Before 1970 (or past ~2191) a date's ns since the epoch overflow: refused. */
        {"b8.csv", "timestamp,input_length,output_length\n1011-11-16 18:15:46,3,3\n",
         "b8.csv:2: timestamp"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *p = write_file(bad[i].name, bad[i].text), e[512] = "";
        struct trace_cfg c = {.path = p, .speed = 1, .block_tokens = 512};
        assert_true(trace_load(&t, &c, e, sizeof(e)) < 0);
        if (!strstr(e, bad[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].name, e, bad[i].want);
        free(p);
    }
}

/* Probe 2026-12 items 21 and 31: what the readers took silently. A JSON line with trailing
 * garbage was read as its first value; a text corpus stopped at its first NUL; bytes that are
 * not UTF-8 reached the request body, which then went out without its prompt; empty user
 * turns became empty prompts, which every server refuses. */
static void readers_refuse_or_repair_what_they_took_silently(void **state)
{
    (void)state;
    char err[512] = "";
    struct dataset *d = NULL;
    /* Trailing garbage: an error naming the line, in datasets and in traces. */
    char *path = write_file("g.jsonl", "{\"prompt\": \"a\"}\n"
                                       "{\"prompt\":\"hi\"} trailing garbage {\"x\":\n");
    struct dataset_cfg cfg = {.path = path, .min_prompt_tokens = 1};
    assert_true(dataset_load(&d, &cfg, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "g.jsonl:2:"));
    free(path);
    path = write_file("g_trace.jsonl",
                      "{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 1} 7\n");
    struct trace_cfg tc = {.path = path, .speed = 1, .block_tokens = 512};
    struct trace *t = NULL;
    assert_true(trace_load(&t, &tc, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "g_trace.jsonl:1:"));
    free(path);
    /* A NUL in a text corpus: refused with its offset (it stopped the corpus there). */
    path = xasprintf("%s/nul.txt", dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite("abc\0def ghi", 1, 11, fp), 11);
    fclose(fp);
    cfg.path = path;
    assert_int_equal(dataset_load(&d, &cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "byte 3 is NUL"));
    free(path);
    /* Invalid UTF-8: every word is valid UTF-8 afterwards, and no word is lost. */
    path = write_file("bad_utf8.txt", "river \xff\xfe city \xc0\x80 end");
    cfg.path = path;
    assert_int_equal(dataset_load(&d, &cfg, err, sizeof(err)), 0);
    assert_int_equal(d->n_words, 5);
    for (size_t i = 0; i < d->n_words; i++)
        assert_true(utf8_valid(d->words[i], strlen(d->words[i])));
    assert_string_equal(d->words[1], "\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(d->words[4], "end");
    dataset_free(d);
    free(path);
    /* Empty user turns and prompts are skipped like records without a user turn... */
    path = write_file("empty.json", "[{\"conversations\": [{\"from\": \"human\", \"value\": \"\"},"
                                    " {\"from\": \"gpt\", \"value\": \"hm\"}]},"
                                    " {\"conversations\": [{\"from\": \"human\", \"value\": "
                                    "\"hello\"}]}]");
    cfg.path = path;
    assert_int_equal(dataset_load(&d, &cfg, err, sizeof(err)), 0);
    assert_int_equal(d->n, 1);
    assert_int_equal(d->skipped, 1);
    assert_string_equal(d->v[0].prompt, "hello");
    dataset_free(d);
    free(path);
    path = write_file("empty.jsonl", "{\"prompt\": \"\"}\n{\"prompt\": \"x\"}\n");
    cfg.path = path;
    assert_int_equal(dataset_load(&d, &cfg, err, sizeof(err)), 0);
    assert_int_equal(d->n, 1);
    dataset_free(d);
    free(path);
    /* ... and a file of nothing else has no usable prompt. */
    path = write_file("all_empty.json", "[{\"conversations\": [{\"from\": \"human\", \"value\": "
                                        "\"\"}]}]");
    cfg.path = path;
    assert_int_equal(dataset_load(&d, &cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no usable prompts"));
    free(path);
}

/* ---- config ----------------------------------------------------------------------------- */

static void config_rules(void **state)
{
    (void)state;
    const struct {
        const char *yaml, *want;
    } cases[] = {
        {"requests:\n  output_tokens: {distribution: zipf}\n",
         ":2:33: requests.output_tokens.distribution: unknown name \"zipf\""},
        {"requests:\n  output_tokens:\n    distribution: uniform\n    min: 50\n    max: 10\n",
         ":5:10: requests.output_tokens.max: 10 is less than min (50)"},
        {"requests:\n  output_tokens: {distribution: dataset}\n",
         "requests.output_tokens.distribution: \"dataset\" takes output lengths"},
        {"requests:\n  dataset: {path: a.json, turns: some}\n",
         ":2:34: requests.dataset.turns: unknown name"},
        {"requests:\n  dataset: {path: a.json}\n  trace: {path: t.csv}\n",
         ":3:17: requests.trace.path: dataset, trace and rag are alternatives"},
        {"context_lengths: [4096]\nrequests:\n  rag: {documents: 4}\n",
         "context_lengths[0]: cannot be combined with requests.dataset"},
        {"requests:\n  rag: {documents: 2, documents_per_request: 3}\n",
         "requests.rag.documents_per_request: 3 is more than the pool's documents (2)"},
        {"requests:\n  trace: {path: t.csv, speed: 0}\n", "requests.trace.speed: must be"},
        /* Probe 2026-12 item 26: a replay 10^9 times slower than its trace. */
        {"requests:\n  trace: {path: t.csv, speed: 1e-9}\n",
         "requests.trace.speed: must be in [0.001, 1e+06], got 1e-09"},
        /* Item 4: a prompt of 10^6 documents (its build was quadratic); item 30: one of 10^15
         * tokens. */
        {"requests:\n  rag: {documents: 10000000, documents_per_request: 1000000,\n"
         "        document_tokens: 1}\n",
         "requests.rag.documents_per_request: 1000000 is more than the 100000 one prompt"},
        {"requests:\n  rag: {documents: 10000000, document_tokens: 100000000}\n",
         "requests.rag.document_tokens: a prompt of 1 documents of 100000000 tokens"},
        {"requests:\n  dataset: {path: a.json, colour: red}\n",
         "requests.dataset.colour: unknown key; allowed keys in requests.dataset: path, format"},
        {"requests:\n  shared_prefix_tokens: 64\n  dataset: {path: a.jsonl}\n",
         "requests.shared_prefix_tokens: cannot be combined with dataset"},
        {"tenants:\n  - name: a\n    requests: {trace: {path: t.jsonl, time_unit: h}}\n",
         "tenants[0].requests.trace.time_unit: unknown name \"h\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_file("c.yaml", cases[i].yaml), err[1024] = "";
        struct config c;
        assert_int_equal(config_load(&c, path, err, sizeof(err)), -EINVAL);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
        config_release(&c);
        free(path);
    }

    /* A tenant inherits the sections key by key and owns its copies. */
    char *path = write_file("ok.yaml", "requests:\n"
                                       "  dataset: {path: a.jsonl, max_prompt_tokens: 900}\n"
                                       "  output_tokens: {distribution: lognormal, stddev: 9}\n"
                                       "tenants:\n"
                                       "  - name: a\n"
                                       "  - name: b\n"
                                       "    requests: {dataset: {turns: all}}\n");
    char err[512];
    struct config c;
    assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
    const struct requests_cfg *a = &c.tenants[0].requests, *b = &c.tenants[1].requests;
    assert_string_equal(b->dataset.path, "a.jsonl");
    assert_ptr_not_equal(a->dataset.path, b->dataset.path);
    assert_int_equal(b->dataset.max_prompt_tokens, 900);
    assert_string_equal(b->dataset.turns, "all");
    assert_null(a->dataset.turns);
    assert_string_equal(b->output_tokens.distribution, "lognormal");
    json_t *j = config_to_json(&c);
    json_t *ot = json_object_get(json_object_get(j, "requests"), "output_tokens");
    assert_string_equal(json_string_value(json_object_get(ot, "distribution")), "lognormal");
    assert_true(json_real_value(json_object_get(ot, "mean")) == 512.0); /* completion_tokens */
    json_t *ds = json_object_get(json_object_get(j, "requests"), "dataset");
    assert_string_equal(json_string_value(json_object_get(ds, "format")), "jsonl");
    json_decref(j);
    config_release(&c);
    free(path);
}

/* ---- sampling (no server: estimates) ---------------------------------------------------- */

static struct workload *workload_for(struct requests_cfg *rq, enum api_kind api)
{
    struct workload *w;
    char err[512];
    int rc = workload_new(&w, rq, api, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    return w;
}

static void dataset_sampling(void **state)
{
    (void)state;
    /* Five prompts of 4, 8, 12, 16, 20 bytes: about 1..5 tokens at 4 bytes a token. */
    char *path = write_file("five.jsonl", "{\"prompt\": \"aaaa\", \"output_tokens\": 11}\n"
                                          "{\"prompt\": \"bbbbbbbb\", \"output_tokens\": 12}\n"
                                          "{\"prompt\": \"cccccccccccc\", \"output_tokens\": 13}\n"
                                          "{\"prompt\": \"dddddddddddddddd\"}\n"
                                          "{\"prompt\": \"eeeeeeeeeeeeeeeeeeee\"}\n");
    struct config c;
    config_defaults(&c);
    struct requests_cfg *rq = &c.requests;
    rq->dataset.path = xstrdup(path);
    rq->num_requests = 12;
    rq->completion_tokens = 99;
    rq->output_tokens.distribution = xstrdup("dataset");
    struct workload *w = workload_for(rq, API_COMPLETIONS);
    struct prompt_builder *b;
    assert_int_equal(prompt_builder_new(&b, NULL, "m", NULL, 1), 0);
    struct req_record recs[12];
    memset(recs, 0, sizeof(recs));
    workload_plan(w, 42, 0, recs, 12);
    int seen[6] = {0};
    size_t order[10];
    for (size_t i = 0; i < 10; i++) {
        char *p = workload_prompt(w, b, 1000 + i, i, &recs[i]);
        size_t len = strlen(p);
        order[i] = len;
        assert_true(len % 4 == 0 && len >= 4 && len <= 20);
        seen[len / 4]++;
        assert_int_equal(recs[i].target_prompt_tokens, (int)len / 4);
        /* The file's output length, else the mean (completion_tokens). */
        assert_int_equal(recs[i].target_output_tokens, len <= 12 ? 10 + (int)len / 4 : 99);
        free(p);
    }
    /* Without replacement: each entry once per pass, twice in ten. */
    for (int k = 1; k <= 5; k++)
        assert_int_equal(seen[k], 2);
    /* The same seed gives the same sample; another point's seed another order. */
    size_t same = 0, other = 0;
    for (uint64_t seed = 42; seed <= 43; seed++) {
        workload_plan(w, seed, 0, recs, 12);
        for (size_t i = 0; i < 10; i++) {
            char *p = workload_prompt(w, b, 1000 + i, i, &recs[i]);
            if (seed == 42)
                same += strlen(p) == order[i];
            else
                other += strlen(p) == order[i];
            free(p);
        }
    }
    assert_int_equal(same, 10);
    assert_true(other < 10);
    workload_free(w);

    /* The length filter keeps 2..4 tokens only; with replacement. */
    rq->dataset.min_prompt_tokens = 2;
    rq->dataset.max_prompt_tokens = 4;
    rq->dataset.replacement = true;
    w = workload_for(rq, API_COMPLETIONS);
    workload_plan(w, 43, 0, recs, 12);
    int counts[6] = {0};
    for (size_t i = 0; i < 12; i++) {
        char *p = workload_prompt(w, b, 1000 + i, i, &recs[i]);
        counts[strlen(p) / 4]++;
        free(p);
    }
    assert_int_equal(counts[1] + counts[5], 0);
    assert_int_equal(counts[2] + counts[3] + counts[4], 12);
    workload_free(w);
    prompt_builder_free(b);
    config_release(&c);
    free(path);
}

/* RAG documents and trace blocks: the same id gives the same bytes at the same place. */
static void shared_segments(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    struct requests_cfg *rq = &c.requests;
    rq->rag.documents = 3;
    rq->rag.documents_per_request = 2;
    rq->rag.document_tokens = 50;
    rq->rag.question_tokens = 10;
    struct workload *w = workload_for(rq, API_COMPLETIONS);
    struct prompt_builder *b;
    assert_int_equal(prompt_builder_new(&b, NULL, "m", NULL, 1), 0);
    struct req_record recs[30];
    memset(recs, 0, sizeof(recs));
    workload_plan(w, 42, 0, recs, 30);
    char *p[30];
    for (size_t i = 0; i < 30; i++) {
        assert_int_equal(recs[i].target_prompt_tokens, 110);
        p[i] = workload_prompt(w, b, 500 + i, i, &recs[i]);
    }
    /* Three documents, two per request: requests that start with the same document share its
     * 50 words; every prompt is 110 words (uncalibrated: one word a token). */
    size_t same_start = 0;
    for (size_t i = 1; i < 30; i++) {
        size_t words = 1;
        for (const char *q = p[i]; *q; q++)
            words += *q == ' ';
        assert_int_equal(words, 110);
        size_t k = 0;
        while (p[0][k] && p[0][k] == p[i][k])
            k++;
        same_start += k > 100;
    }
    assert_true(same_start >= 3);
    assert_true(same_start < 29);
    for (size_t i = 0; i < 30; i++)
        free(p[i]);
    workload_free(w);
    config_release(&c);

    char *path =
        write_file("seg.jsonl", "{\"timestamp\": 0, \"input_length\": 40, \"output_length\": 2,"
                                " \"hash_ids\": [7, 8, 9]}\n"
                                "{\"timestamp\": 5, \"input_length\": 30, \"output_length\": 3,"
                                " \"hash_ids\": [7, 8]}\n"
                                "{\"timestamp\": 9, \"input_length\": 30, \"output_length\": 4,"
                                " \"hash_ids\": [6, 8]}\n");
    config_defaults(&c);
    rq = &c.requests;
    rq->trace.path = xstrdup(path);
    rq->trace.block_tokens = 10;
    w = workload_for(rq, API_COMPLETIONS);
    assert_int_equal(workload_n_requests(w), 3);
    mono_ns off[3];
    assert_true(workload_schedule(w, off, 3));
    assert_int_equal(off[2], 9 * NS_PER_MS);
    workload_plan(w, 42, 0, recs, 3);
    assert_int_equal(recs[1].target_prompt_tokens, 30);
    assert_int_equal(recs[2].target_output_tokens, 4);
    for (size_t i = 0; i < 3; i++)
        p[i] = workload_prompt(w, b, 900 + i, i, &recs[i]);
    /* Rows 0 and 1 share blocks 7 and 8 (20 words); row 2 starts with block 6. */
    size_t k = 0;
    while (p[0][k] && p[0][k] == p[1][k])
        k++;
    size_t spaces = 0;
    for (size_t j = 0; j < k; j++)
        spaces += p[0][j] == ' ';
    assert_true(spaces >= 19);
    assert_true(strncmp(p[0], p[2], 3) != 0 || strncmp(p[0], p[2], k) != 0);
    for (size_t i = 0; i < 3; i++)
        free(p[i]);
    workload_free(w);
    prompt_builder_free(b);
    config_release(&c);
    free(path);
}

/* The share of requests that carry the most popular document (uncalibrated builder: one
 * word a token, so a document is its first 20 words, compared as its first 60 bytes). */
static double top_document_share(double skew)
{
    struct config c;
    config_defaults(&c);
    struct requests_cfg *rq = &c.requests;
    rq->rag.documents = 100;
    rq->rag.documents_per_request = 1;
    rq->rag.document_tokens = 20;
    rq->rag.question_tokens = 5;
    rq->rag.skew = skew;
    struct workload *w = workload_for(rq, API_COMPLETIONS);
    struct prompt_builder *b;
    assert_int_equal(prompt_builder_new(&b, NULL, "m", NULL, 1), 0);
    enum { N = 300 };
    struct req_record *recs = xcalloc(N, sizeof(*recs));
    char *p[N];
    workload_plan(w, 42, 0, recs, N);
    for (size_t i = 0; i < N; i++)
        p[i] = workload_prompt(w, b, 77 + i, i, &recs[i]);
    size_t best = 0;
    for (size_t i = 0; i < N; i++) {
        size_t same = 0;
        for (size_t j = 0; j < N; j++)
            same += strncmp(p[i], p[j], 60) == 0;
        best = same > best ? same : best;
    }
    for (size_t i = 0; i < N; i++)
        free(p[i]);
    free(recs);
    prompt_builder_free(b);
    workload_free(w);
    config_release(&c);
    return (double)best / N;
}

static void rag_popularity_skew(void **state)
{
    (void)state;
    /* Uniform over 100: the top document ~1-3 %; Zipf s = 2: 1/zeta(2) = 61 %. */
    double u = top_document_share(0), z = top_document_share(2);
    assert_true(u < 0.06);
    assert_true(z > 0.5 && z < 0.72);

    /* Every document of a small pool in each request under the steepest skew: the rare ones
     * are taken in order instead of redrawn for ever. */
    struct config c;
    config_defaults(&c);
    c.requests.rag = (struct rag_cfg){.documents = 3,
                                      .document_tokens = 10,
                                      .documents_per_request = 3,
                                      .question_tokens = 2,
                                      .skew = 10};
    struct workload *w = workload_for(&c.requests, API_COMPLETIONS);
    struct prompt_builder *b;
    assert_int_equal(prompt_builder_new(&b, NULL, "m", NULL, 1), 0);
    struct req_record rec;
    memset(&rec, 0, sizeof(rec));
    workload_plan(w, 1, 0, &rec, 1);
    assert_int_equal(rec.target_prompt_tokens, 32);
    char *p = workload_prompt(w, b, 5, 0, &rec);
    assert_non_null(p);
    free(p);
    prompt_builder_free(b);
    workload_free(w);
    config_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(length_distributions),
        cmocka_unit_test(sharegpt_first_and_all),
        cmocka_unit_test(jsonl_and_text),
        cmocka_unit_test(dataset_errors),
        cmocka_unit_test(traces),
        cmocka_unit_test(readers_refuse_or_repair_what_they_took_silently),
        cmocka_unit_test(config_rules),
        cmocka_unit_test(dataset_sampling),
        cmocka_unit_test(shared_segments),
        cmocka_unit_test(rag_popularity_skew),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
