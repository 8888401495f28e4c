/* test_prompt.c - prompt synthesis against a small /tokenize server on 127.0.0.1:
 * exact token targets with a vLLM-style and a llama.cpp-style endpoint, with a tokenizer
 * that splits long words, the uncalibrated fallback, shared prefixes and determinism. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <jansson.h>

#include "runner/prompt.h"

enum mode {
    MODE_VLLM,     /* {"prompt"} -> {"count"}: words + BOS */
    MODE_SPLIT,    /* as MODE_VLLM, words longer than 6 letters are 2 tokens */
    MODE_LLAMACPP, /* {"content"} -> {"tokens": [...]}; no tokens for {"prompt"} */
    MODE_404,      /* no /tokenize */
};

struct server {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    int port;
    enum mode mode;
    int calls; /* /tokenize requests answered; read after a builder call returns */
    char auth[128];
    pthread_mutex_t lock;
};

/* The test tokenizer: whitespace words, one token each (two when long in MODE_SPLIT),
 * plus one BOS. */
static long count_tokens(const char *text, enum mode mode)
{
    long n = 1;
    const char *p = text;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        size_t len = 0;
        while (p[len] && !isspace((unsigned char)p[len]))
            len++;
        n += mode == MODE_SPLIT && len > 6 ? 2 : 1;
        p += len;
    }
    return n;
}

static void reply_json(struct evhttp_request *req, int code, json_t *o)
{
    struct evbuffer *out = evbuffer_new();
    char *s = json_dumps(o, JSON_COMPACT);
    evbuffer_add(out, s, strlen(s));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", out);
    evbuffer_free(out);
    free(s);
    json_decref(o);
}

static void on_tokenize(struct evhttp_request *req, void *arg)
{
    struct server *srv = arg;
    pthread_mutex_lock(&srv->lock);
    srv->calls++;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    snprintf(srv->auth, sizeof(srv->auth), "%s", auth ? auth : "");
    pthread_mutex_unlock(&srv->lock);
    if (srv->mode == MODE_404) {
        reply_json(req, 404, json_pack("{s:s}", "detail", "Not Found"));
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_t *body = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
    const char *key = srv->mode == MODE_LLAMACPP ? "content" : "prompt";
    const char *text = json_string_value(json_object_get(body, key));
    if (!text && srv->mode == MODE_LLAMACPP) {
        /* what llama.cpp does with a body that lacks "content" */
        json_decref(body);
        reply_json(req, 200, json_pack("{s:[]}", "tokens"));
        return;
    }
    if (!text) {
        json_decref(body);
        reply_json(req, 400, json_pack("{s:s}", "error", "missing field"));
        return;
    }
    long n = count_tokens(text, srv->mode);
    if (srv->mode == MODE_LLAMACPP) {
        json_t *toks = json_array();
        for (long i = 0; i < n; i++)
            json_array_append_new(toks, json_integer(1000 + i));
        reply_json(req, 200, json_pack("{s:o}", "tokens", toks));
    } else {
        reply_json(
            req, 200,
            json_pack("{s:i, s:i, s:[]}", "count", (int)n, "max_model_len", 131072, "tokens"));
    }
    json_decref(body);
}

static void *serve(void *arg)
{
    struct server *srv = arg;
    event_base_dispatch(srv->base);
    return NULL;
}

static struct server *server_start(enum mode mode)
{
    struct server *srv = calloc(1, sizeof(*srv));
    assert_non_null(srv);
    pthread_mutex_init(&srv->lock, NULL);
    srv->mode = mode;
    srv->base = event_base_new();
    srv->http = evhttp_new(srv->base);
    evhttp_set_cb(srv->http, "/tokenize", on_tokenize, srv);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(srv->http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl), 0);
    srv->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&srv->thread, NULL, serve, srv), 0);
    return srv;
}

static int server_calls(struct server *srv)
{
    pthread_mutex_lock(&srv->lock);
    int n = srv->calls;
    pthread_mutex_unlock(&srv->lock);
    return n;
}

static void server_stop(struct server *srv)
{
    event_base_loopbreak(srv->base);
    pthread_join(srv->thread, NULL);
    evhttp_free(srv->http);
    event_base_free(srv->base);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

static char *server_url(const struct server *srv)
{
    char *u = NULL;
    assert_true(asprintf(&u, "http://127.0.0.1:%d/", srv->port) > 0);
    return u;
}

static size_t count_words(const char *s)
{
    return (size_t)(count_tokens(s, MODE_VLLM) - 1);
}

/* ---- cases ---- */

static void exact_targets(enum mode mode)
{
    struct server *srv = server_start(mode);
    char *url = server_url(srv);
    struct prompt_builder *b = NULL;
    assert_int_equal(prompt_builder_new(&b, url, "m", "sekret", 7), 0);
    assert_true(prompt_builder_calibrated(b));
    assert_string_equal(srv->auth, "Bearer sekret");
    const int targets[] = {1, 2, 5, 50, 128, 333, 1000, 4097, 20000};
    const int shared[] = {0, 32};
    int worst_calls = 0;
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
            int actual = -2;
            int before = server_calls(srv);
            char *text = prompt_build(b, targets[i], shared[s], 1000 + i, &actual);
            assert_non_null(text);
            int calls = server_calls(srv) - before;
            if (calls > worst_calls)
                worst_calls = calls;
            /* The target is reachable for any n >= 2 words plus BOS; 1 means BOS only. */
            assert_int_equal(actual, targets[i]);
            assert_int_equal(count_tokens(text, mode), targets[i]);
            free(text);
        }
    }
    /* A few round trips, not a search (the prefix is sized once per length, outside this). */
    assert_true(worst_calls <= 7);
    print_message("mode %d: worst round trips per prompt: %d\n", (int)mode, worst_calls);
    prompt_builder_free(b);
    free(url);
    server_stop(srv);
}

static void exact_vllm(void **state)
{
    (void)state;
    exact_targets(MODE_VLLM);
}

static void exact_split(void **state)
{
    (void)state;
    exact_targets(MODE_SPLIT);
}

static void exact_llamacpp(void **state)
{
    (void)state;
    exact_targets(MODE_LLAMACPP);
}

/* llama.cpp's /tokenize counts no chat messages; a server that has no chat API to probe (404
 * here) leaves the template unmeasured: said, and prompts are still built (raw counts). */
static void chat_probe_without_a_chat_api(void **state)
{
    (void)state;
    struct server *srv = server_start(MODE_LLAMACPP);
    char *url = server_url(srv);
    struct prompt_builder *b = NULL;
    assert_int_equal(prompt_builder_new(&b, url, "m", NULL, 7), 0);
    assert_int_equal(prompt_builder_chat_overhead(b), -1);
    prompt_builder_set_chat(b, true);
    assert_int_equal(prompt_builder_chat_overhead(b), -1);
    assert_true(prompt_builder_calibrated(b));
    int actual = -2;
    char *text = prompt_build(b, 300, 0, 5, &actual);
    assert_int_equal(actual, 300);
    assert_int_equal(count_tokens(text, MODE_LLAMACPP), 300);
    free(text);
    prompt_builder_free(b);
    free(url);
    server_stop(srv);
}

static void typical_round_trips(void **state)
{
    (void)state;
    struct server *srv = server_start(MODE_SPLIT);
    char *url = server_url(srv);
    struct prompt_builder *b = NULL;
    assert_int_equal(prompt_builder_new(&b, url, "m", NULL, 3), 0);
    int actual;
    free(prompt_build(b, 1000, 100, 0, &actual)); /* sizes the prefix */
    int before = server_calls(srv);
    for (uint64_t r = 1; r <= 20; r++) {
        char *t = prompt_build(b, 1000, 100, r, &actual);
        assert_int_equal(actual, 1000);
        free(t);
    }
    double per = (double)(server_calls(srv) - before) / 20.0;
    print_message("split tokenizer: %.2f round trips per prompt\n", per);
    assert_true(per <= 3.0);
    prompt_builder_free(b);
    free(url);
    server_stop(srv);
}

static void uncalibrated(void **state)
{
    (void)state;
    /* A server without /tokenize: probed once, then never again. */
    struct server *srv = server_start(MODE_404);
    char *url = server_url(srv);
    struct prompt_builder *b = NULL;
    assert_int_equal(prompt_builder_new(&b, url, "m", NULL, 1), 0);
    assert_false(prompt_builder_calibrated(b));
    int probes = server_calls(srv);
    assert_true(probes >= 1 && probes <= 2);
    int actual = 0;
    char *t = prompt_build(b, 300, 40, 5, &actual);
    assert_int_equal(actual, -1);
    assert_int_equal(count_words(t), 300);
    free(t);
    assert_int_equal(server_calls(srv), probes);
    prompt_builder_free(b);
    free(url);
    server_stop(srv);

    /* No base URL, and a port nobody listens on (the server above is gone). */
    const char *urls[] = {NULL, "", "http://127.0.0.1:1"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(prompt_builder_new(&b, urls[i], "m", NULL, 1), 0);
        assert_false(prompt_builder_calibrated(b));
        t = prompt_build(b, 77, 0, 9, &actual);
        assert_int_equal(actual, -1);
        assert_int_equal(count_words(t), 77);
        free(t);
        t = prompt_build(b, 0, 0, 9, &actual);
        assert_string_equal(t, "");
        free(t);
        prompt_builder_free(b);
    }
}

static size_t common_prefix(const char *a, const char *b)
{
    size_t n = 0;
    while (a[n] && a[n] == b[n])
        n++;
    return n;
}

static void shared_prefix(enum mode mode, const char *url)
{
    struct prompt_builder *b = NULL;
    assert_int_equal(prompt_builder_new(&b, url, "m", NULL, 11), 0);
    int actual;
    char *a = prompt_build(b, 500, 200, 1, &actual);
    char *c = prompt_build(b, 800, 200, 2, &actual);
    char *d = prompt_build(b, 500, 200, 3, &actual);
    char *z1 = prompt_build(b, 500, 0, 1, &actual);
    char *z2 = prompt_build(b, 500, 0, 2, &actual);
    size_t ac = common_prefix(a, c), ad = common_prefix(a, d);
    /* The same prefix bytes at the start of every prompt, whatever its length... */
    char *shared_text = strndup(a, ac < ad ? ac : ad);
    long shared_tokens = count_tokens(shared_text, mode);
    /* ...covering about the requested 200 tokens: at most that many, and short by no more
     * than a word and a partial word at the seam. */
    assert_true(shared_tokens <= 200 + 1);
    assert_true(shared_tokens >= 200 - 3);
    /* The tails differ right after it. */
    assert_string_not_equal(a + ac, c + ac);
    assert_true(strlen(a) - ad > 100);
    /* Without a shared prefix two prompts part within the first couple of words. */
    assert_true(common_prefix(z1, z2) < 40);
    free(shared_text);
    free(a);
    free(c);
    free(d);
    free(z1);
    free(z2);
    prompt_builder_free(b);
}

static void shared_prefix_calibrated(void **state)
{
    (void)state;
    struct server *srv = server_start(MODE_SPLIT);
    char *url = server_url(srv);
    shared_prefix(MODE_SPLIT, url);
    free(url);
    server_stop(srv);
}

static void shared_prefix_uncalibrated(void **state)
{
    (void)state;
    shared_prefix(MODE_VLLM, NULL); /* one word per token: BOS aside, same checks hold */
}

static void deterministic(void **state)
{
    (void)state;
    struct server *srv = server_start(MODE_VLLM);
    char *url = server_url(srv);
    struct prompt_builder *b1 = NULL, *b2 = NULL, *b3 = NULL;
    assert_int_equal(prompt_builder_new(&b1, url, "m", NULL, 5), 0);
    assert_int_equal(prompt_builder_new(&b2, url, "m", NULL, 5), 0);
    assert_int_equal(prompt_builder_new(&b3, NULL, "m", NULL, 6), 0);
    int x, y;
    char *p1 = prompt_build(b1, 400, 64, 77, &x);
    char *p2 = prompt_build(b2, 400, 64, 77, &y);
    assert_string_equal(p1, p2);
    assert_int_equal(x, y);
    char *p3 = prompt_build(b1, 400, 64, 78, &x);
    assert_string_not_equal(p1, p3);
    /* Another builder seed: another shared prefix. */
    char *p4 = prompt_build(b3, 400, 64, 77, &x);
    assert_true(common_prefix(p1, p4) < 40);
    free(p1);
    free(p2);
    free(p3);
    free(p4);
    prompt_builder_free(b1);
    prompt_builder_free(b2);
    prompt_builder_free(b3);
    free(url);
    server_stop(srv);
}

int main(void)
{
    evthread_use_pthreads();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_vllm),
        cmocka_unit_test(exact_split),
        cmocka_unit_test(exact_llamacpp),
        cmocka_unit_test(chat_probe_without_a_chat_api),
        cmocka_unit_test(typical_round_trips),
        cmocka_unit_test(uncalibrated),
        cmocka_unit_test(shared_prefix_calibrated),
        cmocka_unit_test(shared_prefix_uncalibrated),
        cmocka_unit_test(deterministic),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
