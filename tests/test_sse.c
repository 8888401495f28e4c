/*
 * test_sse.c - the SSE parser: recorded server streams fed whole, split at every point,
 * byte by byte and with other line endings must give the same events; edge cases of the
 * event-stream rules; the line-size bound.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "runner/sse.h"

#define MAX_EVENTS 64

struct events {
    char *data[MAX_EVENTS];
    size_t len[MAX_EVENTS];
    size_t n;
    int stop_at; /* return 7 from the callback for event number stop_at (1-based), 0 = never */
};

static int collect(void *ctx, const char *data, size_t len)
{
    struct events *e = ctx;
    assert_true(e->n < MAX_EVENTS);
    assert_int_equal(data[len], '\0'); /* the contract: NUL-terminated */
    e->data[e->n] = malloc(len + 1);
    memcpy(e->data[e->n], data, len + 1);
    e->len[e->n] = len;
    e->n++;
    return e->stop_at && (int)e->n == e->stop_at ? 7 : 0;
}

static void events_clear(struct events *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->data[i]);
    memset(e, 0, sizeof(*e));
}

static void events_assert_equal(const struct events *a, const struct events *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->len[i], b->len[i]);
        assert_memory_equal(a->data[i], b->data[i], a->len[i]);
    }
}

/* Feeds s in pieces: cut points at[0..ncut) (ascending), then finish. Returns the first
 * nonzero result, or 0. */
static int feed_cuts(struct events *e, const char *s, size_t n, const size_t *at, size_t ncut)
{
    struct sse_parser *p = NULL;
    assert_int_equal(sse_parser_new(&p, SSE_MAX_LINE, collect, e), 0);
    size_t from = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncut && !rc; i++) {
        size_t to = i < ncut ? at[i] : n;
        rc = sse_parser_feed(p, s + from, to - from);
        from = to;
    }
    if (!rc)
        rc = sse_parser_finish(p);
    sse_parser_free(p);
    return rc;
}

static int feed_whole(struct events *e, const char *s, size_t n)
{
    return feed_cuts(e, s, n, NULL, 0);
}

static char *read_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/data/sse/%s", TB_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *s = malloc(1 << 16);
    size_t n = fread(s, 1, (1 << 16) - 1, f);
    fclose(f);
    s[n] = '\0';
    *len = n;
    return s;
}

/* Replaces every \n with eol. */
static char *convert_eol(const char *s, size_t n, const char *eol, size_t *out_len)
{
    size_t el = strlen(eol);
    char *o = malloc(n * el + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            memcpy(o + j, eol, el);
            j += el;
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = '\0';
    *out_len = j;
    return o;
}

/* Concatenated text of the JSON events (choices[0].text or delta.content), "[DONE]" counted. */
static void events_text(const struct events *e, char *out, size_t cap, int *n_done, int *n_usage)
{
    out[0] = '\0';
    *n_done = 0;
    *n_usage = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->data[i], "[DONE]") == 0) {
            (*n_done)++;
            continue;
        }
        json_error_t err;
        json_t *j = json_loads(e->data[i], 0, &err);
        assert_non_null(j);
        json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
        const char *t = json_string_value(json_object_get(c0, "text"));
        if (!t)
            t = json_string_value(json_object_get(json_object_get(c0, "delta"), "content"));
        if (t)
            strncat(out, t, cap - strlen(out) - 1);
        if (json_is_object(json_object_get(j, "usage")))
            (*n_usage)++;
        json_decref(j);
    }
}

struct fixture_case {
    const char *file;
    size_t n_events; /* including [DONE] */
    const char *text;
    int n_usage;
};

static const struct fixture_case fixtures[] = {
    {"vllm_completion.txt", 10, " The quick brown fox jumps over the lazy", 1},
    {"vllm_chat.txt", 8, "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x99\x82", 1},
    {"llamacpp_chat.txt", 7, "Hello, world!", 1},
    {"tgi_chat.txt", 5, "Bonjour \xc3\xa0 tous", 1},
};

/* Every split into two pieces and byte-by-byte feeding give the whole-feed events. */
static void check_all_splits(const char *s, size_t n, const struct events *want)
{
    for (size_t cut = 0; cut <= n; cut++) {
        struct events got = {0};
        assert_int_equal(feed_cuts(&got, s, n, &cut, 1), 0);
        events_assert_equal(&got, want);
        events_clear(&got);
    }
    size_t *cuts = malloc(n * sizeof(*cuts));
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    struct events got = {0};
    assert_int_equal(feed_cuts(&got, s, n, cuts, n ? n - 1 : 0), 0);
    events_assert_equal(&got, want);
    events_clear(&got);
    free(cuts);
}

static void test_fixtures(void **state)
{
    (void)state;
    for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
        const struct fixture_case *fc = &fixtures[f];
        size_t n;
        char *s = read_fixture(fc->file, &n);
        struct events want = {0};
        assert_int_equal(feed_whole(&want, s, n), 0);
        assert_int_equal(want.n, fc->n_events);
        char text[256];
        int n_done, n_usage;
        events_text(&want, text, sizeof(text), &n_done, &n_usage);
        assert_string_equal(text, fc->text);
        assert_int_equal(n_done, 1);
        assert_int_equal(n_usage, fc->n_usage);
        assert_string_equal(want.data[want.n - 1], "[DONE]");

        check_all_splits(s, n, &want);
        static const char *const eols[] = {"\r\n", "\r"};
        for (size_t k = 0; k < 2; k++) {
            size_t m;
            char *conv = convert_eol(s, n, eols[k], &m);
            struct events alt = {0};
            assert_int_equal(feed_whole(&alt, conv, m), 0);
            events_assert_equal(&alt, &want);
            events_clear(&alt);
            check_all_splits(conv, m, &want);
            free(conv);
        }
        events_clear(&want);
        free(s);
    }
}

static void test_crlf_split(void **state)
{
    (void)state;
    struct sse_parser *p = NULL;
    struct events e = {0};
    assert_int_equal(sse_parser_new(&p, 64, collect, &e), 0);
    /* If the \n after the \r were taken as its own (blank) line, "a" would be dispatched
     * alone and "b" would become a second event. */
    assert_int_equal(sse_parser_feed(p, "data: a\r", 8), 0);
    assert_int_equal(sse_parser_feed(p, "\ndata: b\r", 9), 0);
    assert_int_equal(e.n, 0);
    assert_int_equal(sse_parser_feed(p, "\n", 1), 0);
    assert_int_equal(e.n, 0);
    assert_int_equal(sse_parser_feed(p, "\r", 1), 0);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.data[0], "a\nb");
    /* a lone \r then a feed starting with something else is a plain line end */
    assert_int_equal(sse_parser_feed(p, "data: c\r", 8), 0);
    assert_int_equal(sse_parser_feed(p, "\r", 1), 0);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.data[1], "c");
    sse_parser_free(p);
    events_clear(&e);
}

static void test_fields(void **state)
{
    (void)state;
    static const char in[] = ": comment\n"
                             "data:x\n\n"     /* no space */
                             "data:  two\n\n" /* only one space is removed */
                             "data\n\n"       /* no colon: empty data */
                             "event: foo\nid: 7\nretry: 10\nbogus: 1\n\n" /* no data: nothing */
                             "data: l1\ndata: l2\n: mid comment\ndata: l3\n\n"
                             "DATA: upper\n\n" /* field names are case-sensitive */
                             "data: tail";     /* dispatched by finish */
    struct events e = {0};
    assert_int_equal(feed_whole(&e, in, sizeof(in) - 1), 0);
    assert_int_equal(e.n, 5);
    assert_string_equal(e.data[0], "x");
    assert_string_equal(e.data[1], " two");
    assert_string_equal(e.data[2], "");
    assert_int_equal(e.len[2], 0);
    assert_string_equal(e.data[3], "l1\nl2\nl3");
    assert_string_equal(e.data[4], "tail");
    events_clear(&e);
}

static void test_oversize(void **state)
{
    (void)state;
    char line[64];
    struct events e = {0};
    struct sse_parser *p = NULL;
    assert_int_equal(sse_parser_new(&p, 16, collect, &e), 0);
    /* exactly 16 bytes is allowed */
    snprintf(line, sizeof(line), "data: 0123456789\n\n");
    assert_int_equal(sse_parser_feed(p, line, strlen(line)), 0);
    assert_int_equal(e.n, 1);
    /* 17 bytes in one feed */
    snprintf(line, sizeof(line), "data: 0123456789a\n\n");
    assert_int_equal(sse_parser_feed(p, line, strlen(line)), -E2BIG);
    /* sticky until reset */
    assert_int_equal(sse_parser_feed(p, "data: x\n\n", 9), -E2BIG);
    assert_int_equal(sse_parser_finish(p), -E2BIG);
    sse_parser_reset(p);
    /* byte by byte, no newline ever: fails once the partial line passes the bound */
    int rc = 0;
    size_t fed = 0;
    for (; fed < 40 && !rc; fed++)
        rc = sse_parser_feed(p, "d", 1);
    assert_int_equal(rc, -E2BIG);
    assert_int_equal(fed, 17);
    sse_parser_reset(p);
    assert_int_equal(sse_parser_feed(p, "data: ok\n\n", 10), 0);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.data[1], "ok");
    /* data joined from several short lines is bounded as well */
    rc = 0;
    for (int i = 0; i < 10 && !rc; i++)
        rc = sse_parser_feed(p, "data: 0123\n", 11);
    assert_int_equal(rc, -E2BIG);
    sse_parser_free(p);
    events_clear(&e);

    /* a 1 MiB line without a newline against the default bound */
    size_t big = SSE_MAX_LINE + 10;
    char *s = malloc(big);
    memcpy(s, "data: ", 6);
    memset(s + 6, 'x', big - 6);
    assert_int_equal(feed_whole(&e, s, big), -E2BIG);
    assert_int_equal(e.n, 0);
    free(s);
}

static void test_callback_stop(void **state)
{
    (void)state;
    static const char in[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    struct events e = {0};
    e.stop_at = 2;
    assert_int_equal(feed_whole(&e, in, sizeof(in) - 1), 7);
    assert_int_equal(e.n, 2);
    events_clear(&e);
    struct sse_parser *p = NULL;
    assert_int_equal(sse_parser_new(&p, 0, collect, &e), -EINVAL);
    assert_null(p);
    sse_parser_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),      cmocka_unit_test(test_crlf_split),
        cmocka_unit_test(test_fields),        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_callback_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
