/*
 * test_telemetry_scrape.c - end to end against a tiny libevent HTTP server on 127.0.0.1:0
 * whose /metrics text moves between scrapes (k = scrape number, from 0):
 *   kv_cache_usage_perc 0.1 (k+1); running k; waiting 2k; prefix queries 1000k, hits 250k;
 *   preemptions 3k; TTFT buckets {0.1: 10k, 0.5: 30k, 1: 40k, +Inf: 40k};
 *   ITL buckets {0.02: 40k, 0.05: 100k, +Inf: 100k}; plus one junk line.
 * /gone answers 404 (scraping must stop after one try); a closed port refuses.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "core/clock.h"
#include "telemetry/telemetry.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

struct server {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    int port;
    int scrapes; /* touched on the server thread; read after a scrape returned */
    int gone_hits;
};

static void on_metrics(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    int k = __atomic_fetch_add(&s->scrapes, 1, __ATOMIC_SEQ_CST);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(
        b,
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} %g\n"
        "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} %d\n"
        "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} %d\n"
        "this line is junk\n"
        "vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} %d\n"
        "vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} %d\n"
        "vllm:num_preemptions_total{engine=\"0\",model_name=\"m\"} %d\n"
        "# TYPE vllm:time_to_first_token_seconds histogram\n"
        "vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"0.1\",model_name=\"m\"} %d\n"
        "vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"0.5\",model_name=\"m\"} %d\n"
        "vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"1.0\",model_name=\"m\"} %d\n"
        "vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"+Inf\",model_name=\"m\"} %d\n"
        "vllm:inter_token_latency_seconds_bucket{engine=\"0\",le=\"0.02\",model_name=\"m\"} %d\n"
        "vllm:inter_token_latency_seconds_bucket{engine=\"0\",le=\"0.05\",model_name=\"m\"} %d\n"
        "vllm:inter_token_latency_seconds_bucket{engine=\"0\",le=\"+Inf\",model_name=\"m\"} %d\n",
        0.1 * (k + 1), k, 2 * k, 1000 * k, 250 * k, 3 * k, 10 * k, 30 * k, 40 * k, 40 * k, 40 * k,
        100 * k, 100 * k);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void on_gone(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    __atomic_fetch_add(&s->gone_hits, 1, __ATOMIC_SEQ_CST);
    evhttp_send_error(req, 404, "Not Found");
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static int bound_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

static int server_setup(void **state)
{
    struct server *s = calloc(1, sizeof(*s));
    evthread_use_pthreads();
    s->base = event_base_new();
    s->http = evhttp_new(s->base);
    evhttp_set_cb(s->http, "/metrics", on_metrics, s);
    evhttp_set_cb(s->http, "/gone", on_gone, s);
    struct evhttp_bound_socket *h = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    if (!h)
        return -1;
    s->port = bound_port(evhttp_bound_socket_get_fd(h));
    pthread_create(&s->thread, NULL, server_main, s);
    *state = s;
    return 0;
}

static int server_teardown(void **state)
{
    struct server *s = *state;
    event_base_loopbreak(s->base);
    pthread_join(s->thread, NULL);
    evhttp_free(s->http);
    event_base_free(s->base);
    free(s);
    return 0;
}

static struct telemetry *start_scraping(const char *url)
{
    struct telemetry_options o = {.interval_s = 60, .metrics_url = url, .t0 = clock_now()};
    struct telemetry *t = NULL;
    assert_int_equal(telemetry_start(&t, &o), 0);
    return t;
}

static json_t *server_of(json_t *doc, size_t i)
{
    return json_object_get(json_array_get(json_object_get(doc, "samples"), i), "server");
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static bool has_source(json_t *doc, const char *name)
{
    json_t *s = json_object_get(doc, "sources");
    for (size_t i = 0; i < json_array_size(s); i++)
        if (strcmp(json_string_value(json_array_get(s, i)), name) == 0)
            return true;
    return false;
}

static void scrape_changes_and_window(void **state)
{
    struct server *s = *state;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", s->port);
    int k0 = __atomic_load_n(&s->scrapes, __ATOMIC_SEQ_CST);
    assert_int_equal(k0, 0);
    mono_ns before = clock_now();
    struct telemetry *t = start_scraping(url); /* k = 0 */
    telemetry_sample_now(t);                   /* 1 */
    telemetry_sample_now(t);                   /* 2 */
    mono_ns mid = clock_now();
    telemetry_sample_now(t); /* 3 */
    telemetry_sample_now(t); /* 4 */
    mono_ns after = clock_now();
    assert_int_equal(__atomic_load_n(&s->scrapes, __ATOMIC_SEQ_CST), 5);

    json_t *doc = telemetry_json(t);
    assert_true(has_source(doc, "prometheus"));
    assert_false(has_source(doc, "nvml"));
    for (size_t k = 0; k < 5; k++) {
        json_t *sv = server_of(doc, k);
        NEAR(num(sv, "kv_cache_usage_pct"), 10.0 * (double)(k + 1));
        NEAR(num(sv, "num_requests_running"), (double)k);
        NEAR(num(sv, "num_requests_waiting"), 2.0 * (double)k);
        NEAR(num(sv, "num_preemptions"), 3.0 * (double)k);
        if (k == 0) /* no queries yet: a rate is unknown, not 0 */
            assert_true(json_is_null(json_object_get(sv, "prefix_cache_hit_rate_pct")));
        else
            NEAR(num(sv, "prefix_cache_hit_rate_pct"), 25.0);
    }
    json_decref(doc);

    struct telemetry_window w;
    telemetry_window(t, before, after, &w);
    assert_int_equal(w.n_samples, 5);
    NEAR(w.kv_cache_usage_max_pct, 50.0);
    NEAR(w.kv_cache_usage_mean_pct, 30.0);
    NEAR(w.prefix_cache_hit_rate_pct, 25.0); /* 1000 hits / 4000 queries */
    NEAR(w.num_preemptions, 12.0);
    /* Over 4 scrapes of growth: TTFT {40, 120, 160, 160}. p50: rank 80 in (0.1, 0.5]
     * holding 40..120 -> 0.3; p95: rank 152 in (0.5, 1] holding 120..160 -> 0.9.
     * ITL {160, 400, 400}: p50 rank 200 in (0.02, 0.05] holding 160..400 -> 0.025. */
    NEAR(w.server_ttft_p50_s, 0.3);
    NEAR(w.server_ttft_p95_s, 0.9);
    NEAR(w.server_itl_p50_s, 0.025);
    assert_true(isnan(w.gpu_energy_j));
    telemetry_window(t, mid, after, &w); /* samples 3 and 4 */
    assert_int_equal(w.n_samples, 2);
    NEAR(w.kv_cache_usage_mean_pct, 45.0);
    NEAR(w.num_preemptions, 3.0);
    NEAR(w.server_ttft_p50_s, 0.3);
    telemetry_free(t);
}

static void not_found_stops_scraping(void **state)
{
    struct server *s = *state;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/gone", s->port);
    struct telemetry *t = start_scraping(url);
    telemetry_sample_now(t);
    telemetry_sample_now(t);
    assert_int_equal(__atomic_load_n(&s->gone_hits, __ATOMIC_SEQ_CST), 1);
    json_t *doc = telemetry_json(t);
    assert_false(has_source(doc, "prometheus"));
    json_t *sv = server_of(doc, 2);
    assert_true(json_is_null(json_object_get(sv, "kv_cache_usage_pct")));
    assert_true(json_is_null(json_object_get(sv, "num_requests_running")));
    json_decref(doc);
    telemetry_free(t);
}

static void refused_stops_scraping(void **state)
{
    (void)state;
    /* A port that was just free: bind, read it, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    int port = bound_port(fd);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    mono_ns t0 = clock_now();
    struct telemetry *t = start_scraping(url);
    telemetry_sample_now(t);
    telemetry_sample_now(t);
    assert_true(clock_now() - t0 < 2 * NS_PER_S); /* refused fast, and not retried */
    json_t *doc = telemetry_json(t);
    assert_false(has_source(doc, "prometheus"));
    assert_int_equal(json_array_size(json_object_get(doc, "samples")), 3);
    json_decref(doc);
    telemetry_free(t);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scrape_changes_and_window),
        cmocka_unit_test(not_found_stops_scraping),
        cmocka_unit_test(refused_stops_scraping),
    };
    int rc = cmocka_run_group_tests(tests, server_setup, server_teardown);
    curl_global_cleanup();
    return rc;
}
