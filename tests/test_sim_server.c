/*
 * test_sim_server.c - `testbench sim` against a libcurl client: every endpoint and error of
 * the simulator, streaming and not, disconnects, the trace and the CLI.
 * The server runs on 127.0.0.1, port 0, on its own thread (sim_server_start).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/clock.h"
#include "sim/sim.h"

#define TEST_GPU "h100"
#define TEST_MODEL "meta-llama/Llama-3.1-8B-Instruct"
#define TEST_MML 4096

static struct sim_server *srv;
static const char *lora_specs[] = {"sql-lora=/adapters/sql"};

static void test_options(struct sim_options *o)
{
    sim_options_init(o);
    o->port = 0;
    o->quiet = true;
    o->seed = 7;
    o->engine.gpu = TEST_GPU;
    o->engine.model = TEST_MODEL;
    o->engine.max_model_len = TEST_MML;
    o->lora_modules = lora_specs;
    o->n_lora_modules = 1;
}

static int group_setup(void **state)
{
    struct sim_options o;
    char err[256];
    (void)state;
    test_options(&o);
    if (sim_server_start(&srv, &o, err, sizeof(err))) {
        fprintf(stderr, "sim_server_start: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sim_server_stop(srv);
    srv = NULL;
    return 0;
}

/* ---- client helpers ------------------------------------------------------------------ */

struct resp {
    long status;
    struct buf body;
    int data_events; /* "data:" lines seen so far (disconnect test) */
    int abort_after; /* > 0: fail the transfer after this many events */
};

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
    struct resp *r = userp;
    size_t len = size * n;
    if (buf_append(&r->body, p, len))
        return 0;
    for (size_t i = 0; i + 5 <= len; i++)
        if (memcmp(p + i, "data:", 5) == 0)
            r->data_events++;
    if (r->abort_after > 0 && r->data_events >= r->abort_after)
        return 0; /* curl closes the connection */
    return len;
}

static CURL *easy_for(int port, const char *method, const char *path, const char *body,
                      struct resp *r, struct curl_slist **hdrs)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    buf_init(&r->body, 64u << 20);
    r->status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    return c;
}

static CURLcode http(const char *method, const char *path, const char *body, struct resp *r)
{
    struct curl_slist *hdrs = NULL;
    CURL *c = easy_for(sim_server_port(srv), method, path, body, r, &hdrs);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc;
}

static json_t *http_json(const char *method, const char *path, const char *body, long status)
{
    struct resp r = {0};
    assert_int_equal(http(method, path, body, &r), CURLE_OK);
    if (r.status != status)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, r.status, status,
                 r.body.data ? r.body.data : "");
    json_error_t jerr;
    json_t *j = json_loads(r.body.data ? r.body.data : "", 0, &jerr);
    if (!j)
        fail_msg("%s %s: bad JSON (%s): %s", method, path, jerr.text, r.body.data);
    buf_release(&r.body);
    return j;
}

/* Splits an SSE body into its JSON events; *done: "[DONE]" came, and came last. */
static json_t *parse_sse(const char *body, bool *done)
{
    json_t *events = json_array();
    *done = false;
    const char *p = body;
    while (p && *p) {
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        assert_memory_equal(p, "data: ", 6);
        assert_false(*done); /* nothing after [DONE] */
        if (end - p == 12 && memcmp(p + 6, "[DONE]", 6) == 0) {
            *done = true;
        } else {
            json_error_t jerr;
            json_t *j = json_loadb(p + 6, (size_t)(end - p - 6), 0, &jerr);
            if (!j)
                fail_msg("bad SSE JSON: %s", jerr.text);
            json_array_append_new(events, j);
        }
        p = end + 2;
    }
    return events;
}

static json_t *stream_events(const char *path, const char *body, bool *done)
{
    struct resp r = {0};
    assert_int_equal(http("POST", path, body, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    json_t *ev = parse_sse(r.body.data, done);
    buf_release(&r.body);
    return ev;
}

static long long jint(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static long long tokenize_count(const char *body)
{
    json_t *j = http_json("POST", "/tokenize", body, 200);
    long long n = jint(j, "count", NULL);
    assert_int_equal(json_array_size(json_object_get(j, "tokens")), n);
    assert_int_equal(jint(j, "max_model_len", NULL), TEST_MML);
    json_decref(j);
    return n;
}

static size_t count_words(const char *s)
{
    size_t n = 0;
    bool in = false;
    for (; *s; s++) {
        if (*s == ' ') {
            in = false;
        } else if (!in) {
            in = true;
            n++;
        }
    }
    return n;
}

/* ---- tests --------------------------------------------------------------------------- */

static void health_version_models(void **state)
{
    (void)state;
    struct resp r = {0};
    assert_int_equal(http("GET", "/health", NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    buf_release(&r.body);

    json_t *v = http_json("GET", "/version", NULL, 200);
    const char *ver = json_string_value(json_object_get(v, "version"));
    assert_non_null(ver);
    assert_non_null(strstr(ver, "(testbench-sim)"));
    json_decref(v);

    json_t *m = http_json("GET", "/v1/models", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(m, "object")), "list");
    json_t *data = json_object_get(m, "data");
    assert_int_equal(json_array_size(data), 2);
    json_t *base = json_array_get(data, 0), *lora = json_array_get(data, 1);
    assert_string_equal(json_string_value(json_object_get(base, "id")), TEST_MODEL);
    assert_string_equal(json_string_value(json_object_get(base, "object")), "model");
    assert_string_equal(json_string_value(json_object_get(base, "owned_by")), "vllm");
    assert_true(json_is_null(json_object_get(base, "parent")));
    assert_int_equal(jint(base, "max_model_len", NULL), TEST_MML);
    assert_true(jint(base, "created", NULL) > 0);
    assert_string_equal(json_string_value(json_object_get(lora, "id")), "sql-lora");
    assert_string_equal(json_string_value(json_object_get(lora, "root")), "/adapters/sql");
    assert_string_equal(json_string_value(json_object_get(lora, "parent")), TEST_MODEL);
    json_decref(m);
}

static void completion_stream_with_usage(void **state)
{
    (void)state;
    const char *prompt = "the time of day is a question for the people of the world";
    char body[512];
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"prompt\":\"%s\",\"max_tokens\":12,\"ignore_eos\":true,"
             "\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
             TEST_MODEL, prompt);
    bool done;
    json_t *ev = stream_events("/v1/completions", body, &done);
    assert_true(done);
    size_t n = json_array_size(ev);
    int content = 0;
    const char *id = json_string_value(json_object_get(json_array_get(ev, 0), "id"));
    assert_non_null(id);
    for (size_t i = 0; i + 1 < n; i++) {
        json_t *e = json_array_get(ev, i);
        assert_string_equal(json_string_value(json_object_get(e, "object")), "text_completion");
        assert_string_equal(json_string_value(json_object_get(e, "id")), id);
        assert_string_equal(json_string_value(json_object_get(e, "model")), TEST_MODEL);
        json_t *ch = json_array_get(json_object_get(e, "choices"), 0);
        const char *text = json_string_value(json_object_get(ch, "text"));
        assert_non_null(text);
        assert_int_equal(count_words(text), 1); /* one token per chunk */
        json_t *fr = json_object_get(ch, "finish_reason");
        if (i + 2 < n)
            assert_true(json_is_null(fr));
        else
            assert_string_equal(json_string_value(fr), "length");
        content++;
    }
    json_t *last = json_array_get(ev, n - 1);
    assert_int_equal(json_array_size(json_object_get(last, "choices")), 0);
    assert_int_equal(jint(last, "usage", "completion_tokens"), content);
    assert_int_equal(content, 12);
    char tb[256];
    snprintf(tb, sizeof(tb), "{\"model\":\"%s\",\"prompt\":\"%s\"}", TEST_MODEL, prompt);
    long long pt = tokenize_count(tb);
    assert_int_equal(pt, 13); /* common words: one token each */
    assert_int_equal(jint(last, "usage", "prompt_tokens"), pt);
    assert_int_equal(jint(last, "usage", "total_tokens"), pt + 12);
    json_decref(ev);
}

static void chat_stream_role_chunk_first(void **state)
{
    (void)state;
    const char *msgs = "[{\"role\":\"system\",\"content\":\"you are a help\"},"
                       "{\"role\":\"user\",\"content\":\"write a story about the sea\"}]";
    char body[512];
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"messages\":%s,\"max_completion_tokens\":7,\"ignore_eos\":true,"
             "\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
             TEST_MODEL, msgs);
    bool done;
    json_t *ev = stream_events("/v1/chat/completions", body, &done);
    assert_true(done);
    size_t n = json_array_size(ev);
    json_t *first = json_array_get(ev, 0);
    assert_string_equal(json_string_value(json_object_get(first, "object")),
                        "chat.completion.chunk");
    json_t *d0 = json_object_get(json_array_get(json_object_get(first, "choices"), 0), "delta");
    assert_string_equal(json_string_value(json_object_get(d0, "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(d0, "content")), "");
    int content = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        json_t *ch = json_array_get(json_object_get(json_array_get(ev, i), "choices"), 0);
        json_t *delta = json_object_get(ch, "delta");
        assert_null(json_object_get(delta, "role"));
        assert_int_equal(count_words(json_string_value(json_object_get(delta, "content"))), 1);
        json_t *fr = json_object_get(ch, "finish_reason");
        if (i + 2 < n)
            assert_true(json_is_null(fr));
        else
            assert_string_equal(json_string_value(fr), "length");
        content++;
    }
    json_t *last = json_array_get(ev, n - 1);
    assert_int_equal(json_array_size(json_object_get(last, "choices")), 0);
    assert_int_equal(jint(last, "usage", "completion_tokens"), 7);
    assert_int_equal(content, 7);
    char tb[512];
    snprintf(tb, sizeof(tb), "{\"model\":\"%s\",\"messages\":%s}", TEST_MODEL, msgs);
    long long pt = tokenize_count(tb);
    /* 4 system words + 6 user words + the template's 1 + 4 * 2 + 3 tokens */
    assert_int_equal(pt, 4 + 6 + 12);
    assert_int_equal(jint(last, "usage", "prompt_tokens"), pt);
    json_decref(ev);
}

static void non_streaming_replies(void **state)
{
    (void)state;
    json_t *c = http_json("POST", "/v1/completions",
                          "{\"prompt\":\"the sea\",\"max_tokens\":5,\"ignore_eos\":true}", 200);
    assert_string_equal(json_string_value(json_object_get(c, "object")), "text_completion");
    json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
    assert_int_equal(count_words(json_string_value(json_object_get(ch, "text"))), 5);
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "length");
    assert_int_equal(jint(c, "usage", "completion_tokens"), 5);
    assert_int_equal(jint(c, "usage", "prompt_tokens"), 2);
    assert_int_equal(jint(c, "usage", "total_tokens"), 7);
    json_decref(c);

    /* Completions default to 16 tokens. */
    c = http_json("POST", "/v1/completions", "{\"prompt\":\"the sea\",\"ignore_eos\":true}", 200);
    assert_int_equal(jint(c, "usage", "completion_tokens"), 16);
    json_decref(c);

    json_t *chat = http_json("POST", "/v1/chat/completions",
                             "{\"model\":\"sql-lora\",\"messages\":[{\"role\":\"user\","
                             "\"content\":[{\"type\":\"text\",\"text\":\"the sea\"}]}],"
                             "\"max_tokens\":4,\"ignore_eos\":true}",
                             200);
    assert_string_equal(json_string_value(json_object_get(chat, "object")), "chat.completion");
    assert_string_equal(json_string_value(json_object_get(chat, "model")), "sql-lora");
    json_t *msg = json_object_get(json_array_get(json_object_get(chat, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
    assert_int_equal(count_words(json_string_value(json_object_get(msg, "content"))), 4);
    assert_int_equal(jint(chat, "usage", "completion_tokens"), 4);
    assert_int_equal(jint(chat, "usage", "prompt_tokens"), 2 + 8); /* W + 8 for one message */
    json_decref(chat);
}

static void token_id_prompts(void **state)
{
    (void)state;
    static const struct {
        const char *prompt;
        long long tokens;
    } cases[] = {
        {"[1,2,3,40000]", 4},
        {"[[5,6]]", 2},
        {"[\"the sea and the sky\"]", 5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"prompt\":%s,\"max_tokens\":2,\"ignore_eos\":true}",
                 cases[i].prompt);
        json_t *c = http_json("POST", "/v1/completions", body, 200);
        assert_int_equal(jint(c, "usage", "prompt_tokens"), cases[i].tokens);
        json_decref(c);
    }
    json_t *d = http_json("POST", "/detokenize", "{\"tokens\":[0,1,2]}", 200);
    assert_string_equal(json_string_value(json_object_get(d, "prompt")), "the of and");
    json_decref(d);
}

static void natural_lengths_and_seeds(void **state)
{
    (void)state;
    int stops = 0;
    for (int i = 0; i < 12; i++) {
        json_t *c = http_json("POST", "/v1/completions",
                              "{\"prompt\":\"the sea\",\"max_tokens\":20,\"min_tokens\":3}", 200);
        long long k = jint(c, "usage", "completion_tokens");
        assert_true(k >= 3 && k <= 20);
        const char *fr = json_string_value(
            json_object_get(json_array_get(json_object_get(c, "choices"), 0), "finish_reason"));
        assert_string_equal(fr, k < 20 ? "stop" : "length");
        stops += k < 20;
        json_decref(c);
    }
    assert_true(stops > 0);
    /* min_tokens == max_tokens forces the full length. */
    json_t *c = http_json("POST", "/v1/completions",
                          "{\"prompt\":\"the sea\",\"max_tokens\":6,\"min_tokens\":6}", 200);
    assert_int_equal(jint(c, "usage", "completion_tokens"), 6);
    json_decref(c);
    /* A request seed fixes length and text. */
    const char *body = "{\"prompt\":\"the sea\",\"max_tokens\":30,\"seed\":99}";
    json_t *a = http_json("POST", "/v1/completions", body, 200);
    json_t *b = http_json("POST", "/v1/completions", body, 200);
    const char *ta = json_string_value(
        json_object_get(json_array_get(json_object_get(a, "choices"), 0), "text"));
    const char *tbx = json_string_value(
        json_object_get(json_array_get(json_object_get(b, "choices"), 0), "text"));
    assert_string_equal(ta, tbx);
    json_decref(a);
    json_decref(b);
}

static void continuous_usage_stats(void **state)
{
    (void)state;
    bool done;
    json_t *ev = stream_events(
        "/v1/completions",
        "{\"prompt\":\"the sea\",\"max_tokens\":5,\"ignore_eos\":true,\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}",
        &done);
    assert_true(done);
    assert_int_equal(json_array_size(ev), 6);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(jint(json_array_get(ev, i), "usage", "completion_tokens"),
                         (long long)i + 1);
    json_decref(ev);
}

static void errors(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *body;
        long status;
        const char *type, *needle;
    } cases[] = {
        {"POST", "/v1/completions", "{\"model\":\"nope\",\"prompt\":\"a\"}", 404, "NotFoundError",
         "does not exist"},
        {"POST", "/v1/chat/completions",
         "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", 404,
         "NotFoundError", "nope"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":4096}", 400,
         "BadRequestError",
         "This model's maximum context length is 4096 tokens. However, you requested 4097 "
         "tokens (1 in the messages, 4096 in the completion)"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",", 400, "BadRequestError", "JSON"},
        {"POST", "/v1/completions", "{\"max_tokens\":3}", 400, "BadRequestError", "prompt"},
        {"POST", "/v1/chat/completions", "{\"max_tokens\":3}", 400, "BadRequestError", "messages"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"n\":2}", 400, "BadRequestError", "n must"},
        {"POST", "/v1/completions", "{\"prompt\":[1,999999999]}", 400, "BadRequestError",
         "vocabulary"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":\"x\"}", 400,
         "BadRequestError", "integer"},
        {"GET", "/v1/completions", NULL, 405, NULL, NULL},
        {"POST", "/v1/models", "{}", 405, NULL, NULL},
        {"GET", "/v1/nothing", NULL, 404, NULL, NULL},
        {"POST", "/tokenize", "{\"model\":\"nope\",\"prompt\":\"a\"}", 404, "NotFoundError", NULL},
        {"POST", "/detokenize", "{\"tokens\":\"a\"}", 400, "BadRequestError", "tokens"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = http_json(cases[i].method, cases[i].path, cases[i].body, cases[i].status);
        json_t *e = json_object_get(j, "error");
        assert_true(json_is_object(e));
        assert_string_equal(json_string_value(json_object_get(j, "object")), "error");
        assert_int_equal(jint(e, "code", NULL), cases[i].status);
        if (cases[i].type)
            assert_string_equal(json_string_value(json_object_get(e, "type")), cases[i].type);
        if (cases[i].needle) {
            const char *msg = json_string_value(json_object_get(e, "message"));
            if (!strstr(msg, cases[i].needle))
                fail_msg("case %zu: '%s' lacks '%s'", i, msg, cases[i].needle);
        }
        json_decref(j);
    }
}

/* Value of the first sample line starting with 'prefix' in a /metrics text, or -1. */
static double metric(const char *text, const char *prefix)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            const char *sp = strchr(p, ' ');
            return sp ? strtod(sp + 1, NULL) : -1;
        }
    }
    return -1;
}

static char *get_metrics(void)
{
    struct resp r = {0};
    assert_int_equal(http("GET", "/metrics", NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    size_t len;
    return buf_take(&r.body, &len);
}

#define LBL "{engine=\"0\",model_name=\"" TEST_MODEL "\"}"

static void metrics_move(void **state)
{
    (void)state;
    char *before = get_metrics();
    json_t *c = http_json("POST", "/v1/completions",
                          "{\"prompt\":\"the sea and the land\",\"max_tokens\":9,"
                          "\"ignore_eos\":true}",
                          200);
    json_decref(c);
    char *after = get_metrics();
    assert_true(metric(after, "vllm:generation_tokens_total" LBL) -
                    metric(before, "vllm:generation_tokens_total" LBL) >=
                9);
    assert_true(metric(after, "vllm:prompt_tokens_total" LBL) >
                metric(before, "vllm:prompt_tokens_total" LBL));
    const char *len_lbl = "vllm:request_success_total{engine=\"0\",finished_reason=\"length\","
                          "model_name=\"" TEST_MODEL "\"}";
    assert_true(metric(after, len_lbl) == metric(before, len_lbl) + 1);
    assert_true(metric(after, "vllm:time_to_first_token_seconds_count" LBL) ==
                metric(before, "vllm:time_to_first_token_seconds_count" LBL) + 1);
    assert_true(metric(after, "vllm:e2e_request_latency_seconds_count" LBL) ==
                metric(before, "vllm:e2e_request_latency_seconds_count" LBL) + 1);
    assert_true(metric(after, "vllm:inter_token_latency_seconds_count" LBL) >=
                metric(before, "vllm:inter_token_latency_seconds_count" LBL) + 8);
    /* Every name of the contract is there, with its shape. */
    static const char *const names[] = {
        "vllm:num_requests_running" LBL,
        "vllm:num_requests_waiting" LBL,
        "vllm:kv_cache_usage_perc" LBL,
        "vllm:prefix_cache_queries_total" LBL,
        "vllm:prefix_cache_hits_total" LBL,
        "vllm:num_preemptions_total" LBL,
        "vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"+Inf\"",
        "vllm:inter_token_latency_seconds_sum" LBL,
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:cache_config_info{block_size=\"16\""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (metric(after, names[i]) < 0)
            fail_msg("no sample %s", names[i]);
    double kv = metric(after, "vllm:kv_cache_usage_perc" LBL);
    assert_true(kv >= 0 && kv <= 1);
    assert_non_null(strstr(after, "# TYPE vllm:e2e_request_latency_seconds histogram"));
    free(before);
    free(after);
}

static void disconnect_frees_stream(void **state)
{
    (void)state;
    char *before = get_metrics();
    struct resp r = {0};
    r.abort_after = 3;
    struct curl_slist *hdrs = NULL;
    CURL *c = easy_for(sim_server_port(srv), "POST", "/v1/completions",
                       "{\"prompt\":\"the sea\",\"max_tokens\":3000,\"ignore_eos\":true,"
                       "\"stream\":true}",
                       &r, &hdrs);
    assert_int_equal(curl_easy_perform(c), CURLE_WRITE_ERROR);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c); /* closes the socket mid-stream */
    buf_release(&r.body);
    mono_ns t0 = clock_now();
    while (sim_server_live_streams(srv) > 0 && clock_now() - t0 < 5 * NS_PER_S)
        clock_sleep_ns(5 * NS_PER_MS);
    assert_int_equal(sim_server_live_streams(srv), 0);
    char *after = get_metrics();
    const char *ab = "vllm:request_success_total{engine=\"0\",finished_reason=\"abort\","
                     "model_name=\"" TEST_MODEL "\"}";
    assert_true(metric(after, ab) == metric(before, ab) + 1);
    assert_true(metric(after, "vllm:num_requests_running" LBL) == 0);
    free(before);
    free(after);
}

#define N_CONC 64

static void concurrent_streams(void **state)
{
    (void)state;
    CURLM *m = curl_multi_init();
    struct resp r[N_CONC];
    CURL *e[N_CONC];
    struct curl_slist *h[N_CONC];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N_CONC; i++) {
        e[i] = easy_for(sim_server_port(srv), "POST", "/v1/chat/completions",
                        "{\"messages\":[{\"role\":\"user\",\"content\":\"the sea\"}],"
                        "\"max_tokens\":10,\"ignore_eos\":true,\"stream\":true}",
                        &r[i], &h[i]);
        curl_multi_add_handle(m, e[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < N_CONC; i++) {
        bool done;
        json_t *ev = parse_sse(r[i].body.data, &done);
        assert_true(done);
        assert_int_equal(json_array_size(ev), 11); /* role chunk + 10 tokens */
        json_decref(ev);
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
        curl_slist_free_all(h[i]);
        buf_release(&r[i].body);
    }
    curl_multi_cleanup(m);
}

static void trace_matches_streams(void **state)
{
    (void)state;
    char path[] = "/tmp/test_sim_trace_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct sim_options o;
    char err[256];
    test_options(&o);
    o.trace_path = path;
    struct sim_server *t = NULL;
    assert_int_equal(sim_server_start(&t, &o, err, sizeof(err)), 0);
    struct sim_server *saved = srv;
    srv = t;
    double t_before = (double)clock_now() / 1e9;
    static const int lens[] = {3, 8, 13};
    char ids[3][64];
    for (int i = 0; i < 3; i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"prompt\":\"the sea\",\"max_tokens\":%d,\"ignore_eos\":true,\"stream\":true}",
                 lens[i]);
        bool done;
        json_t *ev = stream_events("/v1/completions", body, &done);
        assert_int_equal(json_array_size(ev), lens[i]);
        snprintf(ids[i], sizeof(ids[i]), "%s",
                 json_string_value(json_object_get(json_array_get(ev, 0), "id")));
        json_decref(ev);
    }
    double t_after = (double)clock_now() / 1e9;
    sim_server_stop(t);
    srv = saved;

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[65536];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        assert_non_null(j);
        const char *id = json_string_value(json_object_get(j, "id"));
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(id, ids[i]) == 0)
                k = i;
        assert_true(k >= 0);
        json_t *tok = json_object_get(j, "tokens");
        assert_int_equal(json_array_size(tok), lens[k]);
        assert_int_equal(jint(j, "completion_tokens", NULL), lens[k]);
        double arrival = json_real_value(json_object_get(j, "arrival"));
        double prefill = json_real_value(json_object_get(j, "prefill_start"));
        double finish = json_real_value(json_object_get(j, "finish"));
        assert_true(arrival >= t_before - 1e-3 && finish <= t_after + 1e-3);
        assert_true(prefill >= arrival - 1e-3);
        double prev = prefill;
        for (size_t i = 0; i < json_array_size(tok); i++) {
            double ti = json_real_value(json_array_get(tok, i));
            assert_true(ti >= prev - 1e-6);
            prev = ti;
        }
        assert_true(finish >= prev - 1e-6);
        json_decref(j);
        n++;
    }
    fclose(f);
    unlink(path);
    assert_int_equal(n, 3);
}

static void cli_flags_and_signals(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s sim --bogus-flag >/dev/null 2>&1", TB_BINARY);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    snprintf(cmd, sizeof(cmd), "%s sim --port notanumber >/dev/null 2>&1", TB_BINARY);
    st = system(cmd);
    assert_int_equal(WEXITSTATUS(st), 2);

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execl(TB_BINARY, TB_BINARY, "sim", "--host", "127.0.0.1", "--port", "0", "--gpu", TEST_GPU,
              "--model", TEST_MODEL, "--max-model-len", "4096", "--lora-modules", "a=/lora/a",
              "b=/lora/b", "--served-model-name=served", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    char line[1024];
    int port = 0;
    bool saw_kv = false, saw_conc = false;
    while (!port && fgets(line, sizeof(line), f)) {
        saw_kv |= strstr(line, "GPU KV cache size: ") != NULL;
        if (strstr(line, "Maximum concurrency for 4096 tokens per request: ")) {
            const char *x = strrchr(line, ':') + 2;
            const char *dot = strchr(x, '.');
            saw_conc = dot && strlen(dot) >= 4 && dot[3] == 'x'; /* two decimals */
        }
        const char *p = strstr(line, "http://127.0.0.1:");
        if (p)
            port = atoi(p + strlen("http://127.0.0.1:"));
    }
    assert_true(saw_kv);
    assert_true(saw_conc);
    assert_true(port > 0);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    curl_easy_cleanup(c);
    /* Flags reached the server: two LoRA cards under the served name. */
    struct resp r = {0};
    struct curl_slist *hdrs = NULL;
    c = easy_for(port, "GET", "/v1/models", NULL, &r, &hdrs);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    json_t *m = json_loads(r.body.data, 0, NULL);
    buf_release(&r.body);
    json_t *data = json_object_get(m, "data");
    assert_int_equal(json_array_size(data), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "id")),
                        "served");
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 2), "parent")),
                        "served");
    assert_string_equal(json_string_value(json_object_get(json_array_get(data, 2), "root")),
                        "/lora/b");
    json_decref(m);
    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    fclose(f);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(health_version_models),
        cmocka_unit_test(completion_stream_with_usage),
        cmocka_unit_test(chat_stream_role_chunk_first),
        cmocka_unit_test(non_streaming_replies),
        cmocka_unit_test(token_id_prompts),
        cmocka_unit_test(natural_lengths_and_seeds),
        cmocka_unit_test(continuous_usage_stats),
        cmocka_unit_test(errors),
        cmocka_unit_test(metrics_move),
        cmocka_unit_test(disconnect_frees_stream),
        cmocka_unit_test(concurrent_streams),
        cmocka_unit_test(trace_matches_streams),
        cmocka_unit_test(cli_flags_and_signals),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
