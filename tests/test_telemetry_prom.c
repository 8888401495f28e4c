/*
 * test_telemetry_prom.c - the Prometheus text parser and the vLLM extraction: both metric
 * generations, escapes, NaN/Inf, timestamps, malformed lines counted, truncated and mangled
 * input (under ASan in the sanitizer build), and histogram quantiles against hand figures.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "telemetry/prom.h"
#include "telemetry_fixtures.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

struct seen {
    size_t n;
    char names[16][64];
    double values[16];
    size_t n_labels[16];
    char label0[16][64];
    bool has_ts[16];
    int64_t ts[16];
};

static void collect(const struct prom_sample *s, void *ctx)
{
    struct seen *x = ctx;
    if (x->n == 16)
        return;
    snprintf(x->names[x->n], 64, "%s", s->name);
    x->values[x->n] = s->value;
    x->n_labels[x->n] = s->n_labels;
    snprintf(x->label0[x->n], 64, "%s", s->n_labels ? s->labels[0].value : "");
    x->has_ts[x->n] = s->has_timestamp;
    x->ts[x->n] = s->timestamp_ms;
    x->n++;
}

static void grammar(void **state)
{
    (void)state;
    static const char text[] = "# HELP a:b help with \"quotes\" and \\ anything\n"
                               "# TYPE a:b gauge\n"
                               "# just a comment\n"
                               "\n"
                               "a:b 1\n"
                               "esc{a=\"q\\\"uote\\\\back\\nline\"} +Inf 1700000000000\n"
                               "  nan_v   NaN  \r\n"
                               "neg_inf -Inf\n"
                               "trailing_comma{a=\"1\",} 2\n"
                               "empty_labels{} 3\n"
                               "spaced{ a = \"x\" , b=\"y\" } 4e-3 -5\n"
                               "multi_byte{a=\"h\xc3\xa9llo\"} 5";
    struct seen x = {0};
    struct prom_stats st;
    assert_int_equal(prom_parse(text, strlen(text), collect, &x, &st), 0);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(st.comments, 3);
    assert_int_equal(st.samples, 8);
    assert_int_equal(x.n, 8);
    assert_string_equal(x.names[0], "a:b");
    NEAR(x.values[0], 1);
    assert_string_equal(x.names[1], "esc");
    assert_string_equal(x.label0[1], "q\"uote\\back\nline");
    assert_true(isinf(x.values[1]) && x.values[1] > 0);
    assert_true(x.has_ts[1]);
    assert_true(x.ts[1] == 1700000000000LL);
    assert_true(isnan(x.values[2]));
    assert_false(x.has_ts[2]);
    assert_true(isinf(x.values[3]) && x.values[3] < 0);
    assert_int_equal(x.n_labels[4], 1);
    NEAR(x.values[4], 2);
    assert_int_equal(x.n_labels[5], 0);
    assert_int_equal(x.n_labels[6], 2);
    assert_string_equal(x.label0[6], "x");
    NEAR(x.values[6], 0.004);
    assert_true(x.ts[6] == -5);
    assert_string_equal(x.label0[7], "h\xc3\xa9llo");
}

static void malformed_counted(void **state)
{
    (void)state;
    static const char text[] = "good 1\n"
                               "unterminated{a=\"b\n"
                               "bad_escape{a=\"b\\q\"} 1\n"
                               "extra 1 2 3\n"
                               "word_value abc\n"
                               "1starts_with_digit 3\n"
                               "# TYPE x sometype\n"
                               "# TYPE\n"
                               "unquoted{a=b} 1\n"
                               "no_value\n"
                               "no_value_labels{a=\"b\"}\n"
                               "float_ts 1 1.5\n"
                               "label:colon{a:b=\"x\"} 1\n"
                               "good2 2\n";
    struct seen x = {0};
    struct prom_stats st;
    assert_int_equal(prom_parse(text, strlen(text), collect, &x, &st), 0);
    assert_int_equal(st.samples, 2);
    assert_int_equal(st.malformed, 12);
    assert_int_equal(st.lines, 14);
    assert_string_equal(x.names[0], "good");
    assert_string_equal(x.names[1], "good2");
}

static void vllm_new_names(void **state)
{
    (void)state;
    struct server_sample s;
    struct prom_stats st;
    assert_int_equal(server_sample_parse(vllm_new, strlen(vllm_new), &s, &st), 0);
    assert_int_equal(st.malformed, 0);
    for (int f = 0; f < SF__COUNT; f++)
        assert_true(s.valid & (1u << f));
    NEAR(s.kv_usage_pct, 4.12);
    NEAR(s.requests_running, 8);
    NEAR(s.requests_waiting, 2);
    NEAR(s.prefix_queries, 40000);
    NEAR(s.prefix_hits, 10000);
    NEAR(s.preemptions, 3);
    NEAR(s.prompt_tokens, 131072);
    NEAR(s.generation_tokens, 27453);
    assert_int_equal(s.ttft->n, 13);
    assert_true(isinf(s.ttft->le[12]));
    NEAR(s.ttft->cum[12], 140);
    /* request_time_per_output_token_seconds must not be taken for ITL. */
    assert_int_equal(s.itl->n, 4);
    NEAR(s.itl->cum[3], 4000);
    /* Hand figures (buckets in telemetry_fixtures.h), Prometheus histogram_quantile:
     * p50: rank 70 in (0.08, 0.1] holding 60..90 -> 0.08 + 0.02 * 10/30
     * p95: rank 133 in (0.25, 0.5] holding 120..135 -> 0.25 + 0.25 * 13/15
     * p99: rank 138.6 in (0.75, 1.0] holding 138..140 -> 0.75 + 0.25 * 0.6/2
     * ITL p50: rank 2000 in (0.025, 0.05] holding 1000..3000 -> 0.0375 */
    NEAR(prom_hist_quantile(NULL, s.ttft, 0.50), 0.08 + 0.02 * 10.0 / 30.0);
    NEAR(prom_hist_quantile(NULL, s.ttft, 0.95), 0.25 + 0.25 * 13.0 / 15.0);
    NEAR(prom_hist_quantile(NULL, s.ttft, 0.99), 0.825);
    NEAR(prom_hist_quantile(NULL, s.itl, 0.50), 0.0375);
    server_sample_release(&s);
}

static void vllm_old_names_two_engines(void **state)
{
    (void)state;
    struct server_sample s;
    assert_int_equal(server_sample_parse(vllm_old, strlen(vllm_old), &s, NULL), 0);
    NEAR(s.kv_usage_pct, 30.0);    /* mean of 20 % and 40 % */
    NEAR(s.requests_running, 8.0); /* 3 + 5 */
    NEAR(s.requests_waiting, 1.0);
    NEAR(s.prefix_queries, 1000.0);
    NEAR(s.prefix_hits, 400.0);
    assert_false(s.valid & (1u << SF_TTFT));
    assert_false(s.valid & (1u << SF_PREEMPT));
    assert_null(s.ttft);
    /* ITL from time_per_output_token, engines summed per bound: 40, 100, 100.
     * p50: rank 50 in (0.01, 0.1] holding 40..100 -> 0.01 + 0.09 * 10/60 */
    assert_int_equal(s.itl->n, 3);
    NEAR(s.itl->cum[0], 40);
    NEAR(prom_hist_quantile(NULL, s.itl, 0.5), 0.01 + 0.09 * 10.0 / 60.0);
    server_sample_release(&s);
}

static void new_name_wins_when_both(void **state)
{
    (void)state;
    static const char text[] = "vllm:gpu_cache_usage_perc 0.9\n"
                               "vllm:kv_cache_usage_perc 0.1\n";
    struct server_sample s;
    assert_int_equal(server_sample_parse(text, strlen(text), &s, NULL), 0);
    NEAR(s.kv_usage_pct, 10.0);
    server_sample_release(&s);
}

static void quantile_window_and_edges(void **state)
{
    (void)state;
    struct prom_hist a = {.n = 4, .le = {0.1, 0.2, 0.4, INFINITY}, .cum = {10, 20, 30, 30}};
    struct prom_hist b = {.n = 4, .le = {0.1, 0.2, 0.4, INFINITY}, .cum = {10, 60, 70, 80}};
    /* b - a = {0, 40, 40, 50}. p50: rank 25 in (0.1, 0.2] holding 0..40 -> 0.1 + 0.1 * 25/40.
     * p90: rank 45 lands in +Inf -> the highest finite bound, 0.4. */
    NEAR(prom_hist_quantile(&a, &b, 0.5), 0.1 + 0.1 * 25.0 / 40.0);
    NEAR(prom_hist_quantile(&a, &b, 0.9), 0.4);
    /* The first bucket interpolates from 0. */
    NEAR(prom_hist_quantile(NULL, &a, 0.25), 0.1 * 7.5 / 10.0);
    /* Nothing new in the window, a counter reset, mismatched bounds: unknown. */
    assert_true(isnan(prom_hist_quantile(&a, &a, 0.5)));
    assert_true(isnan(prom_hist_quantile(&b, &a, 0.5)));
    struct prom_hist c = b;
    c.le[1] = 0.3;
    assert_true(isnan(prom_hist_quantile(&a, &c, 0.5)));
    struct prom_hist no_inf = {.n = 2, .le = {0.1, 0.2}, .cum = {1, 2}};
    assert_true(isnan(prom_hist_quantile(NULL, &no_inf, 0.5)));
}

/* Every prefix of a real scrape (a connection cut mid-body) and random byte damage must
 * parse without crashing or reading out of bounds; the parser copies into its own heap
 * block, so ASan sees any overrun of the exact-length input. */
static void truncations_and_mangling(void **state)
{
    (void)state;
    struct prom_stats full;
    assert_int_equal(prom_parse(vllm_new, strlen(vllm_new), NULL, NULL, &full), 0);
    size_t len = strlen(vllm_new);
    for (size_t cut = 0; cut <= len; cut++) {
        char *p = malloc(cut ? cut : 1);
        memcpy(p, vllm_new, cut);
        struct prom_stats st;
        struct server_sample s;
        assert_int_equal(server_sample_parse(p, cut, &s, &st), 0);
        assert_true(st.samples <= full.samples);
        assert_true(st.malformed <= 1); /* only the cut line can be bad */
        assert_true(st.samples + st.comments + st.malformed >= st.lines);
        server_sample_release(&s);
        free(p);
    }
    struct rng r;
    rng_seed(&r, 7);
    static const char junk[] = "{}\"\\=,# \n\t\rNaInf+-0.e";
    for (int round = 0; round < 300; round++) {
        char *p = malloc(len);
        memcpy(p, vllm_new, len);
        int flips = (int)rng_range(&r, 1, 20);
        for (int k = 0; k < flips; k++)
            p[rng_range(&r, 0, (int64_t)len - 1)] = junk[rng_range(&r, 0, sizeof(junk) - 2)];
        struct prom_stats st;
        struct server_sample s;
        assert_int_equal(server_sample_parse(p, len, &s, &st), 0);
        assert_true(st.samples + st.malformed >= full.samples - (size_t)flips);
        server_sample_release(&s);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grammar),
        cmocka_unit_test(malformed_counted),
        cmocka_unit_test(vllm_new_names),
        cmocka_unit_test(vllm_old_names_two_engines),
        cmocka_unit_test(new_name_wins_when_both),
        cmocka_unit_test(quantile_window_and_edges),
        cmocka_unit_test(truncations_and_mangling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
