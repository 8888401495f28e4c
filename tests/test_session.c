/*
 * test_session.c - multi-turn users (requests.session): think-time draws, the session set's
 * due times, conversations, user slots and failures on a bare event loop, the config keys
 * and their errors, and `testbench run` with sessions against the simulator.
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

#include <event2/event.h>
#include <jansson.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "fake_server.h"
#include "runner/metrics.h"
#include "runner/session.h"
#include "sim/sim.h"
#include "tb_proc.h"

/* ==== think times ==== */

static double think_mean(const struct session_cfg *c, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)session_think_ns(c, 1000u + (uint64_t)i) / 1e9;
    return sum / n;
}

static void think_times_follow_their_distribution(void **state)
{
    (void)state;
    struct session_cfg c;
    session_cfg_defaults(&c);
    c.think_time_s = 2.0;
    c.think = THINK_FIXED;
    assert_int_equal(session_think_ns(&c, 7), 2 * NS_PER_S);
    c.think = THINK_EXPONENTIAL;
    assert_int_equal(session_think_ns(&c, 7), session_think_ns(&c, 7)); /* same seed, same */
    assert_int_not_equal(session_think_ns(&c, 7), session_think_ns(&c, 8));
    assert_true(fabs(think_mean(&c, 20000) - 2.0) < 0.1);
    c.think = THINK_LOGNORMAL;
    c.think_time_sigma = 0.5;
    assert_true(fabs(think_mean(&c, 20000) - 2.0) < 0.1); /* mu chosen so the mean holds */
    c.think_time_s = 0;
    assert_int_equal(session_think_ns(&c, 7), 0);
}

/* ==== the session set on a bare loop ==== */

struct log {
    size_t released[16];
    mono_ns due[16], think[16];
    bool held[16];
    size_t n_released;
    size_t ended[16], skipped[16];
    size_t n_ended;
};

static void h_release(void *ctx, size_t i, mono_ns due, mono_ns think, bool held)
{
    struct log *l = ctx;
    l->released[l->n_released] = i;
    l->due[l->n_released] = due;
    l->think[l->n_released] = think;
    l->held[l->n_released] = held;
    l->n_released++;
}

static void h_ended(void *ctx, size_t s, size_t skipped)
{
    struct log *l = ctx;
    l->ended[l->n_ended] = s;
    l->skipped[l->n_ended] = skipped;
    l->n_ended++;
}

/* Runs the loop until n releases happened (or 2 s passed). */
static void loop_until(struct event_base *b, struct log *l, size_t n)
{
    mono_ns stop = clock_now() + 2 * NS_PER_S;
    while (l->n_released < n && clock_now() < stop)
        event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(l->n_released, n);
}

static struct session_cfg short_sessions(int turns, double think_s)
{
    struct session_cfg c;
    session_cfg_defaults(&c);
    c.enabled = true;
    c.turns = turns;
    c.think = THINK_FIXED;
    c.think_time_s = think_s;
    return c;
}

/* Request i "answers" with text, ending at t_end. */
static void answer(struct session_set *ss, size_t i, struct client_request *rq, const char *text,
                   mono_ns t_end, enum req_status st)
{
    struct req_record rec;
    req_record_init(&rec);
    rec.status = st;
    rec.t_end = t_end;
    rec.prompt_tokens = 100;
    rec.output_tokens = 10;
    assert_non_null(rq->answer);
    assert_int_equal(buf_puts(rq->answer, text), 0);
    session_on_done(ss, i, &rec);
    req_record_release(&rec);
}

static char *msg(const char *s)
{
    return xstrdup(s);
}

/* The runner's loop: precise timers (CLOCK_MONOTONIC, not the coarse clock). */
static struct event_base *loop_new(void)
{
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    struct event_base *b = event_base_new_with_config(ec);
    event_config_free(ec);
    return b;
}

static void completions_resend_the_conversation(void **state)
{
    (void)state;
    struct event_base *b = loop_new();
    struct log l = {0};
    struct session_hooks h = {h_release, h_ended, &l};
    struct session_cfg c = short_sessions(3, 0.02);
    struct session_set *ss;
    assert_int_equal(session_set_new(&ss, b, &c, 3, 0, true, false, 1, &h), 0);
    assert_int_equal(session_set_count(ss), 1);
    mono_ns t = clock_now();
    session_arrive(ss, 0, t);
    loop_until(b, &l, 1); /* released at its arrival */
    assert_int_equal(l.released[0], 0);
    assert_int_equal(l.due[0], t);
    assert_int_equal(l.think[0], 0);

    struct client_request rq = {0};
    struct req_record rec;
    req_record_init(&rec);
    char *m = msg("hello");
    rec.target_prompt_tokens = 5;
    assert_int_equal(session_fill_request(ss, 0, &m, &rec, &rq), 0);
    assert_null(m);
    assert_string_equal(rq.prompt, "hello");
    assert_int_equal(rec.target_prompt_tokens, 5);
    mono_ns end0 = clock_now();
    answer(ss, 0, &rq, " there", end0, REQ_OK);
    loop_until(b, &l, 2);
    /* Due when the user is ready: the answer's end plus the think time. */
    assert_int_equal(l.released[1], 1);
    assert_int_equal(l.think[1], 20 * NS_PER_MS);
    assert_int_equal(l.due[1], end0 + 20 * NS_PER_MS);
    assert_true(clock_now() >= l.due[1]);
    m = msg("again");
    rec.target_prompt_tokens = 7;
    assert_int_equal(session_fill_request(ss, 1, &m, &rec, &rq), 0);
    assert_string_equal(rq.prompt, "hello there\n\nagain");
    assert_int_equal(rec.target_prompt_tokens, 100 + 10 + 7); /* usage so far + message */
    answer(ss, 1, &rq, " \xc3\xa9t\xc3\xa9", clock_now(), REQ_OK);
    loop_until(b, &l, 3);
    m = msg("last");
    assert_int_equal(session_fill_request(ss, 2, &m, &rec, &rq), 0);
    assert_string_equal(rq.prompt, "hello there\n\nagain \xc3\xa9t\xc3\xa9\n\nlast");
    assert_int_equal(l.n_ended, 0);
    answer(ss, 2, &rq, "done", clock_now(), REQ_OK);
    assert_int_equal(l.n_ended, 1);
    assert_int_equal(l.skipped[0], 0);
    req_record_release(&rec);
    session_set_free(ss);
    event_base_free(b);
}

static void chat_sends_history_and_a_failure_ends_the_session(void **state)
{
    (void)state;
    struct event_base *b = loop_new();
    struct log l = {0};
    struct session_hooks h = {h_release, h_ended, &l};
    struct session_cfg c = short_sessions(4, 0);
    struct session_set *ss;
    assert_int_equal(session_set_new(&ss, b, &c, 4, 0, true, true, 1, &h), 0);
    session_arrive(ss, 0, clock_now());
    loop_until(b, &l, 1);
    struct client_request rq = {0};
    struct req_record rec;
    req_record_init(&rec);
    char *m = msg("q1");
    assert_int_equal(session_fill_request(ss, 0, &m, &rec, &rq), 0);
    assert_string_equal(rq.prompt, "q1");
    assert_int_equal(rq.n_history, 0);
    answer(ss, 0, &rq, "a1", clock_now(), REQ_OK);
    loop_until(b, &l, 2);
    m = msg("q2");
    assert_int_equal(session_fill_request(ss, 1, &m, &rec, &rq), 0);
    assert_string_equal(rq.prompt, "q2");
    assert_int_equal(rq.n_history, 2);
    assert_string_equal(rq.history[0], "q1");
    assert_string_equal(rq.history[1], "a1");
    /* Turn 1 fails: turns 2 and 3 are never released. */
    answer(ss, 1, &rq, "", clock_now(), REQ_HTTP_5XX);
    assert_int_equal(l.n_ended, 1);
    assert_int_equal(l.skipped[0], 2);
    for (int k = 0; k < 5; k++)
        event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(l.n_released, 2);
    req_record_release(&rec);
    session_set_free(ss);
    event_base_free(b);
}

/* Cap 1, two sessions arriving at once: the second waits for the user slot. */
static void user_slots_closed_and_open_loop(void **state)
{
    (void)state;
    for (int closed = 0; closed < 2; closed++) {
        struct event_base *b = loop_new();
        struct log l = {0};
        struct session_hooks h = {h_release, h_ended, &l};
        struct session_cfg c = short_sessions(1, 0.01);
        struct session_set *ss;
        assert_int_equal(session_set_new(&ss, b, &c, 2, 1, closed, false, 1, &h), 0);
        assert_int_equal(session_set_count(ss), 2);
        assert_int_equal(session_set_first(ss, 1), 1);
        mono_ns t = clock_now();
        session_arrive(ss, 0, t);
        session_arrive(ss, 1, t);
        loop_until(b, &l, 1);
        for (int k = 0; k < 5; k++)
            event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        assert_int_equal(l.n_released, 1); /* the slot is taken */
        struct client_request rq = {0};
        struct req_record rec;
        req_record_init(&rec);
        char *m = msg("x");
        assert_int_equal(session_fill_request(ss, 0, &m, &rec, &rq), 0);
        mono_ns end = clock_now();
        answer(ss, 0, &rq, "y", end, REQ_OK);
        assert_int_equal(l.n_ended, 1);
        loop_until(b, &l, 2);
        assert_int_equal(l.released[1], 1);
        if (closed) { /* the same user starts over after thinking */
            assert_int_equal(l.due[1], end + 10 * NS_PER_MS);
            assert_false(l.held[1]);
        } else { /* an arrival that waited: due when it came */
            assert_int_equal(l.due[1], t);
            assert_true(l.held[1]);
        }
        req_record_release(&rec);
        session_set_free(ss);
        event_base_free(b);
    }
}

/* ==== answer text as the client keeps it ==== */

static void answer_text_is_decoded(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *text;
    } cases[] = {
        {"plain words", "plain words"},
        {"a\\nb\\t\\\"q\\\" \\\\ \\/", "a\nb\t\"q\" \\ /"},
        {"caf\\u00e9 \\u20ac", "caf\xc3\xa9 \xe2\x82\xac"},
        {"\\ud83d\\ude00!", "\xf0\x9f\x98\x80!"},     /* a surrogate pair */
        {"x\\ud83dy", "x\xef\xbf\xbdy"},              /* a lone surrogate: U+FFFD */
        {"raw \xc3\xa9 bytes", "raw \xc3\xa9 bytes"}, /* UTF-8 passes through */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;
        buf_init(&b, 1024);
        assert_int_equal(client_text_append(&b, cases[i].raw, strlen(cases[i].raw)), 0);
        assert_string_equal(b.data, cases[i].text);
        buf_release(&b);
    }
    struct buf small;
    buf_init(&small, 4);
    assert_int_equal(client_text_append(&small, "abcdef", 6), -E2BIG);
    buf_release(&small);
}

/* ==== reasoning and cached-token metrics ==== */

static void reasoning_and_cached_metrics(void **state)
{
    (void)state;
    struct req_record r[2];
    for (int k = 0; k < 2; k++) {
        req_record_init(&r[k]);
        r[k].t_sent = NS_PER_S;
        r[k].t_first = NS_PER_S + 100 * NS_PER_MS;
        r[k].t_first_answer = NS_PER_S + 300 * NS_PER_MS;
        r[k].t_last = r[k].t_end = NS_PER_S + 500 * NS_PER_MS;
        r[k].output_tokens = 21;
        r[k].prompt_tokens = 200;
        r[k].n_reasoning_events = 10;
    }
    bool from_usage;
    assert_int_equal(record_reasoning_tokens(&r[0], &from_usage), 10);
    assert_false(from_usage);
    struct req_latencies l;
    record_latencies(&r[0], &l);
    assert_true(fabs(l.ttfa - 0.3) < 1e-9);
    assert_true(fabs(l.reasoning_rate - 10 / 0.2) < 1e-6); /* 10 tokens, first to first answer */
    assert_true(fabs(l.answer_rate - 10 / 0.2) < 1e-6);    /* 11 answer tokens, 10 gaps */
    r[1].usage_reasoning_tokens = 12;                      /* the server's count wins */
    assert_int_equal(record_reasoning_tokens(&r[1], &from_usage), 12);
    assert_true(from_usage);
    r[1].usage_reasoning_tokens = 30; /* more than the output: not believed */
    assert_int_equal(record_reasoning_tokens(&r[1], &from_usage), 10);
    assert_false(from_usage);
    r[1].usage_reasoning_tokens = 12;
    r[1].cached_tokens = 150; /* only one request reports cached tokens */
    struct point_summary s;
    point_summary_compute(&s, r, 2, NULL);
    assert_int_equal(s.reasoning_tokens_total, 22);
    assert_int_equal(s.reasoning_requests, 2);
    assert_int_equal(s.ttfa.n, 2);
    assert_int_equal(s.cached_reported, 1);
    assert_true(fabs(s.cached_prompt_pct - 75.0) < 1e-9); /* 150 of that request's 200 */
    assert_int_equal(s.sessions, 0);
    struct turn_summary *ts;
    assert_int_equal(turn_summaries_compute(&ts, r, 2), 0);
    assert_null(ts);
    /* As two turns of one session: per-turn figures, the second failed. */
    r[0].session = r[1].session = 0;
    r[0].turn = 0;
    r[1].turn = 1;
    r[1].status = REQ_HTTP_5XX;
    point_summary_compute(&s, r, 2, NULL);
    assert_int_equal(s.sessions, 1);
    assert_int_equal(s.ttft_first_turn.n, 1);
    assert_int_equal(s.ttft_later_turns.n, 0);
    assert_int_equal(turn_summaries_compute(&ts, r, 2), 2);
    assert_int_equal(ts[0].completed, 1);
    assert_int_equal(ts[1].failed, 1);
    assert_true(ts[0].prompt_tokens_mean == 200);
    assert_true(isnan(ts[0].cached_prompt_pct));
    assert_true(fabs(ts[0].ttft.p50 - 0.1) < 1e-9);
    free(ts);
}

/* ==== config ==== */

static char *write_tmp(const char *text)
{
    char path[] = "/tmp/tb_session_cfg_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return xstrdup(path);
}

static int load_text(const char *text, struct config *c, char *err, size_t errlen)
{
    char *p = write_tmp(text);
    int rc = config_load(c, p, err, errlen);
    unlink(p);
    free(p);
    return rc;
}

static void config_keys_and_errors(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    assert_int_equal(load_text("requests:\n  num_requests: 12\n", &c, err, sizeof(err)), 0);
    assert_false(c.tenants[0].requests.session.enabled);
    config_release(&c);
    assert_int_equal(load_text("requests:\n  session: {turns: 3, think_time_s: 0.5,\n"
                               "    think_time_distribution: lognormal}\n",
                               &c, err, sizeof(err)),
                     0);
    const struct session_cfg *s = &c.tenants[0].requests.session;
    assert_true(s->enabled);
    assert_int_equal(s->turns, 3);
    assert_int_equal(s->think, THINK_LOGNORMAL);
    assert_true(s->think_time_s == 0.5);
    assert_int_equal(s->message_tokens_min, 64);
    json_t *j = config_to_json(&c);
    json_t *js = json_object_get(json_object_get(j, "requests"), "session");
    assert_string_equal(json_string_value(json_object_get(js, "think_time_distribution")),
                        "lognormal");
    json_decref(j);
    config_release(&c);
    assert_int_equal(
        load_text("requests:\n  session: {enabled: false, turns: 3}\n", &c, err, sizeof(err)), 0);
    assert_false(c.tenants[0].requests.session.enabled);
    config_release(&c);
    /* A tenant inherits the session and may change one key. */
    assert_int_equal(load_text("requests:\n  session: {turns: 5}\n"
                               "tenants:\n  - name: a\n  - name: b\n"
                               "    requests: {session: {think_time_s: 1}}\n",
                               &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.tenants[0].requests.session.turns, 5);
    assert_int_equal(c.tenants[1].requests.session.turns, 5);
    assert_true(c.tenants[1].requests.session.think_time_s == 1.0);
    config_release(&c);

    const struct {
        const char *text, *want;
    } bad[] = {
        {"requests:\n  session: {think_time_distribution: gaussian}\n",
         ":2:38: requests.session.think_time_distribution: unknown distribution \"gaussian\""},
        {"requests:\n  session: {turns: 0}\n", ":2:20: requests.session.turns: must be at least 1"},
        {"requests:\n  session: {message_tokens_min: 300, message_tokens_max: 200}\n",
         "requests.session.message_tokens_max: 200 is less than message_tokens_min (300)"},
        {"requests:\n  session: {think_time_s: -1}\n",
         "requests.session.think_time_s: must be in [0, 86400], got -1"},
        {"requests:\n  session: {colour: red}\n", "requests.session.colour: unknown key"},
        {"context_lengths: [2048]\nrequests:\n  completion_tokens: 512\n  session: {turns: 4}\n",
         "context_lengths[0]: context 2048 leaves"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(load_text(bad[i].text, &c, err, sizeof(err)), 0);
        if (!strstr(err, bad[i].want))
            fprintf(stderr, "case %zu: %s\n", i, err);
        assert_non_null(strstr(err, bad[i].want));
        config_release(&c);
    }
}

/* ==== end to end against the simulator ==== */

/* Runs body (a config whose %d is the server's port) as dir/NAME.yaml; its detailed.json. */
static json_t *run_sim(const char *dir, const char *name, const char *body, int port,
                       const struct sim_server *sim)
{
    char *text = xasprintf(body, port);
    assert_int_equal(tb_run_config(TB_BINARY, dir, name, text, sim), 0);
    char *out = xasprintf("%s/%s_out", dir, name);
    json_t *root = tb_load_json(out, "_detailed.json");
    assert_non_null(root);
    free(out);
    free(text);
    return root;
}

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* 3 users x 4 turns, 150 ms fixed think time: each turn's prompt holds the last one and its
 * answer, each turn is due at the previous end + think, the server is idle enough that the
 * user's wait (ttft_sched) is the server's TTFT, and the conversations hit the prefix cache. */
static void sessions_against_the_simulator(void **state)
{
    (void)state;
    struct sim_server *sim = tb_sim_start(NULL);
    assert_non_null(sim);
    char dir[] = "/tmp/tb_session_XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *apis[] = {"completions", "chat"};
    for (size_t a = 0; a < 2; a++) {
        char *body = xasprintf("server: {endpoint: \"http://127.0.0.1:%%d\", api: %s}\n"
                               "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                               "requests: {num_requests: 12, concurrent_requests: 3,\n"
                               "  rate_per_second: inf, prompt_tokens_min: 600,\n"
                               "  prompt_tokens_max: 700, completion_tokens: 24,\n"
                               "  session: {turns: 4, think_time_distribution: fixed,\n"
                               "    think_time_s: 0.15, message_tokens_min: 40,\n"
                               "    message_tokens_max: 60}}\n"
                               "telemetry: {collect_gpu_stats: false, sample_interval_sec: 0.05}\n",
                               apis[a]);
        json_t *root = run_sim(dir, apis[a], body, sim_server_port(sim), sim);
        json_t *p = json_array_get(json_object_get(root, "points"), 0);
        json_t *reqs = json_object_get(p, "requests");
        assert_int_equal(json_array_size(reqs), 12);
        for (size_t i = 0; i < 12; i++) {
            json_t *r = json_array_get(reqs, i);
            assert_string_equal(json_string_value(json_object_get(r, "status")), "ok");
            size_t turn = i % 4;
            double ttft = num(r, "ttft"), sched = num(r, "ttft_sched");
            /* One user slot each, nothing queued: the user waits the server's TTFT plus dispatch
             * (a wait for a slot would be a whole request, 24 tokens: > 0.2 s; a loaded
             * machine's dispatch lag reached 16 ms). */
            if (!(sched >= ttft && sched - ttft < 0.05))
                fprintf(stderr, "request %zu: ttft %.6f ttft_sched %.6f\n", i, ttft, sched);
            assert_true(sched >= ttft && sched - ttft < 0.05);
            if (turn == 0) {
                /* The users arrive spread over one think time (start_spread_s defaults to
                 * think_time_s): user k of 3 at k x 0.15 / 3 s after the point's clock starts
                 * (after its prompts are built, however long that took). */
                double due = num(json_array_get(reqs, 0), "t_due") + (double)(i / 4) * 0.05;
                if (!(fabs(num(r, "t_due") - due) < 1e-4))
                    fprintf(stderr, "request %zu: t_due %.6f, want %.6f\n", i, num(r, "t_due"),
                            due);
                assert_true(fabs(num(r, "t_due") - due) < 1e-4);
                continue;
            }
            json_t *prev = json_array_get(reqs, i - 1);
            /* Due at the previous answer's end plus the 150 ms think time. */
            assert_true(fabs(num(r, "t_due") - (num(prev, "t_end") + 0.15)) < 1e-6);
            /* The prompt is the conversation: the last prompt, its answer, a new message. */
            double grown = num(r, "prompt_tokens") - num(prev, "prompt_tokens");
            assert_true(grown >= 24 + 40 && grown <= 24 + 60 + 16);
            assert_true(fabs(num(r, "prompt_tokens") - num(r, "target_prompt_tokens")) <= 2);
        }
        json_t *tel = json_object_get(json_object_get(p, "summary"), "telemetry");
        double hit = num(tel, "prefix_cache_hit_rate_pct");
        fprintf(stderr, "%s sessions: prefix-cache hit rate %.1f%%\n", apis[a], hit);
        assert_true(hit > 50.0); /* later turns reuse most of their conversation */
        json_decref(root);
        free(body);
    }
    sim_server_stop(sim);
    assert_int_equal(tb_remove_tree(dir), 0);
}

/* A reasoning model on the simulator (chat, the first 12 tokens as reasoning_content): the
 * reasoning is counted apart, the answer starts after it, the next turn's conversation holds
 * the answer only, and usage's cached_tokens shows the conversation reused. */
static void reasoning_sessions_against_the_simulator(void **state)
{
    (void)state;
    struct sim_options o;
    tb_sim_options(&o);
    o.reasoning_tokens = 12;
    o.prompt_tokens_details = true;
    struct sim_server *sim = tb_sim_start(&o);
    assert_non_null(sim);
    char dir[] = "/tmp/tb_reasoning_XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *body = "server: {endpoint: \"http://127.0.0.1:%d\", api: chat}\n"
                       "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
                       "requests: {num_requests: 4, concurrent_requests: 2,\n"
                       "  rate_per_second: inf, prompt_tokens_min: 300,\n"
                       "  prompt_tokens_max: 300, completion_tokens: 32,\n"
                       "  session: {turns: 2, think_time_s: 0, message_tokens_min: 20,\n"
                       "    message_tokens_max: 20}}\n"
                       "telemetry: {collect_gpu_stats: false}\n";
    json_t *root = run_sim(dir, "reasoning", body, sim_server_port(sim), sim);
    json_t *p = json_array_get(json_object_get(root, "points"), 0);
    json_t *reqs = json_object_get(p, "requests");
    for (size_t i = 0; i < 4; i++) {
        json_t *r = json_array_get(reqs, i);
        assert_string_equal(json_string_value(json_object_get(r, "status")), "ok");
        assert_int_equal(json_integer_value(json_object_get(r, "reasoning_tokens")), 12);
        assert_int_equal(json_integer_value(json_object_get(r, "output_tokens")), 32);
        /* The answer's first token comes after the 12 reasoning tokens. */
        assert_true(num(r, "ttfa") > num(r, "ttft"));
        assert_true(num(r, "t_first_answer") > num(r, "t_first"));
        if (i % 2 == 0) {
            assert_int_equal(json_integer_value(json_object_get(r, "cached_tokens")), 0);
            continue;
        }
        json_t *prev = json_array_get(reqs, i - 1);
        /* The conversation grew by the 20 answer tokens and the new message, not by the
         * reasoning; the earlier turn is served from the prefix cache. */
        assert_true(fabs(num(r, "prompt_tokens") - num(r, "target_prompt_tokens")) <= 2);
        assert_true(num(r, "prompt_tokens") - num(prev, "prompt_tokens") < 20 + 20 + 12);
        assert_true(num(r, "cached_tokens") >= 256);
    }
    json_t *sm = json_object_get(p, "summary");
    assert_int_equal(json_integer_value(json_object_get(sm, "reasoning_tokens_total")), 48);
    assert_int_equal(json_integer_value(json_object_get(sm, "reasoning_requests")), 4);
    assert_true(num(json_object_get(sm, "reasoning_token_rate"), "p50") > 0);
    assert_true(num(json_object_get(sm, "answer_token_rate"), "p50") > 0);
    double cached = num(sm, "cached_prompt_pct");
    assert_true(cached > 20 && cached < 60); /* first turns none, second turns most */
    json_t *by = json_object_get(json_object_get(sm, "sessions"), "by_turn");
    assert_int_equal(json_array_size(by), 2);
    assert_true(num(json_array_get(by, 0), "cached_prompt_pct") == 0);
    assert_true(num(json_array_get(by, 1), "cached_prompt_pct") > 60);
    json_decref(root);
    sim_server_stop(sim);
    assert_int_equal(tb_remove_tree(dir), 0);
}

/* A server that fails every request: each session ends at its first turn, its other turns are
 * never sent (counted as skipped, not failed) and the point still ends; a healthy tenant beside
 * it runs its sessions through. */
static void failed_turns_end_their_sessions(void **state)
{
    (void)state;
    struct fake_server *fs;
    assert_int_equal(fake_server_start(&fs), 0);
    char dir[] = "/tmp/tb_session_fail_XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *body = "server: {endpoint: \"http://127.0.0.1:%d\", api: chat, timeout_s: 5}\n"
                       "requests: {num_requests: 6, concurrent_requests: 2,\n"
                       "  rate_per_second: inf, prompt_tokens_min: 20, prompt_tokens_max: 20,\n"
                       "  completion_tokens: 8, session: {turns: 3, think_time_s: 0.01}}\n"
                       "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n"
                       "tenants:\n"
                       "  - {name: good, model: \"normal n=8 gap=1\"}\n"
                       "  - {name: bad, model: \"http500\"}\n";
    json_t *root = run_sim(dir, "fail", body, fake_server_port(fs), NULL);
    json_t *points = json_object_get(root, "points");
    assert_int_equal(json_array_size(points), 2);
    json_t *good = json_object_get(json_array_get(points, 0), "summary");
    json_t *bad = json_object_get(json_array_get(points, 1), "summary");
    assert_int_equal(json_integer_value(json_object_get(good, "completed")), 6);
    json_t *gs = json_object_get(good, "sessions");
    assert_int_equal(json_integer_value(json_object_get(gs, "count")), 2);
    assert_int_equal(json_integer_value(json_object_get(gs, "turns_skipped")), 0);
    assert_int_equal(json_array_size(json_object_get(gs, "by_turn")), 3);
    assert_int_equal(json_integer_value(json_object_get(bad, "issued")), 2);
    assert_int_equal(json_integer_value(json_object_get(bad, "failed")), 2);
    json_t *bs = json_object_get(bad, "sessions");
    assert_int_equal(json_integer_value(json_object_get(bs, "count")), 2);
    assert_int_equal(json_integer_value(json_object_get(bs, "turns_skipped")), 4);
    json_t *by = json_object_get(bs, "by_turn");
    assert_int_equal(json_array_size(by), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(by, 0), "failed")), 2);
    json_decref(root);
    fake_server_stop(fs);
    assert_int_equal(tb_remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(think_times_follow_their_distribution),
        cmocka_unit_test(completions_resend_the_conversation),
        cmocka_unit_test(chat_sends_history_and_a_failure_ends_the_session),
        cmocka_unit_test(user_slots_closed_and_open_loop),
        cmocka_unit_test(answer_text_is_decoded),
        cmocka_unit_test(reasoning_and_cached_metrics),
        cmocka_unit_test(config_keys_and_errors),
        cmocka_unit_test(sessions_against_the_simulator),
        cmocka_unit_test(reasoning_sessions_against_the_simulator),
        cmocka_unit_test(failed_turns_end_their_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
