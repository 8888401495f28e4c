/*
 * session.c - multi-turn users: when each turn is due, what it sends, when a user slot frees
 * (session.h; docs/METRICS.md "Sessions").
 *
 * What a turn sends: the conversation as the server saw it. For chat, the earlier messages
 * (user, assistant, ...) and the new user message; an assistant message is the answer text
 * the server streamed (content, not reasoning: reasoning models are not sent their own
 * reasoning back, as their providers document). For completions, the flattened text: the
 * previous prompt, the answer, a blank line, the new message, so each turn's prompt starts
 * with the whole previous prompt and a prefix cache can reuse it.
 *
 * Each session has its own precise timer (ptimer.h; one timerfd for the set): a turn is due at
 * the previous answer's end plus a think time, known only when that answer ends. Releases
 * always go through the timer (the next loop turn when due already), so a request that fails
 * synchronously cannot recurse into the next.
 */
#include "runner/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/rng.h"
#include "core/text.h"
#include "runner/metrics.h"
#include "runner/ptimer.h"

/* One answer's text kept for the next turn: far beyond any completion_tokens in use (a
 * token is a few bytes); an answer past it is cut there. */
#define SESSION_ANSWER_MAX (4u << 20)
/* One conversation's text: the simulator takes bodies up to 64 MiB, vLLM's contexts are far
 * smaller. A turn that would pass it fails as client_limit and ends its session. */
#define SESSION_CONVO_MAX (32u << 20)

struct session {
    struct session_set *set;
    struct ptimer *timer;
    size_t first, turns; /* its requests: [first, first + turns) */
    size_t next;         /* the turn released next */
    mono_ns due, think;  /* of that release */
    bool held;           /* it waited for a user slot */
    bool open;           /* begun and not ended */
    struct buf convo;    /* completions: the conversation's text so far */
    char **msgs;         /* chat: the conversation so far, user first, alternating */
    size_t n_msgs;
    size_t msg_bytes;  /* their total length */
    char *message;     /* chat: the user message of the turn in flight */
    struct buf answer; /* the turn in flight's answer, as it streams */
    long tokens;       /* the conversation's length so far in tokens (usage, else targets) */
};

struct session_set {
    struct ptimer_set *timers;
    struct session_cfg cfg;
    struct session *s;
    size_t n;
    size_t n_requests;
    int cap;
    bool closed_loop, chat, stopping;
    uint64_t seed;
    struct session_hooks h;
    size_t open;      /* sessions begun and not ended */
    mono_ns *arrived; /* each session's scheduled arrival */
    size_t *fifo;     /* sessions waiting for a user slot */
    size_t head, tail;
};

static void on_session_timer(void *arg, mono_ns now);

int session_set_new(struct session_set **out, struct event_base *base,
                    const struct session_cfg *cfg, size_t n_requests, int cap, bool closed_loop,
                    bool chat, uint64_t seed, const struct session_hooks *hooks)
{
    size_t turns = cfg->turns > 0 ? (size_t)cfg->turns : 1;
    struct session_set *ss = xcalloc(1, sizeof(*ss));
    ss->cfg = *cfg;
    ss->n_requests = n_requests;
    ss->n = (n_requests + turns - 1) / turns;
    ss->cap = cap;
    ss->closed_loop = closed_loop;
    ss->chat = chat;
    ss->seed = seed;
    ss->h = *hooks;
    ss->s = xcalloc(ss->n ? ss->n : 1, sizeof(*ss->s));
    ss->arrived = xcalloc(ss->n ? ss->n : 1, sizeof(*ss->arrived));
    ss->fifo = xcalloc(ss->n ? ss->n : 1, sizeof(*ss->fifo));
    ss->timers = ptimer_set_new(base);
    if (!ss->timers) {
        session_set_free(ss);
        return -ENOMEM;
    }
    for (size_t k = 0; k < ss->n; k++) {
        struct session *s = &ss->s[k];
        s->set = ss;
        s->first = k * turns;
        s->turns = s->first + turns <= n_requests ? turns : n_requests - s->first;
        s->timer = ptimer_new(ss->timers, on_session_timer, s);
        buf_init(&s->convo, SESSION_CONVO_MAX);
        buf_init(&s->answer, SESSION_ANSWER_MAX);
    }
    *out = ss;
    return 0;
}

size_t session_set_count(const struct session_set *ss)
{
    return ss->n;
}

size_t session_set_first(const struct session_set *ss, size_t s)
{
    return s < ss->n ? ss->s[s].first : ss->n_requests;
}

void session_set_locate(const struct session_set *ss, size_t i, int *session, int *turn)
{
    size_t turns = ss->cfg.turns > 0 ? (size_t)ss->cfg.turns : 1;
    *session = (int)(i / turns);
    *turn = (int)(i % turns);
}

static struct session *session_of(struct session_set *ss, size_t i)
{
    size_t turns = ss->cfg.turns > 0 ? (size_t)ss->cfg.turns : 1;
    return &ss->s[i / turns];
}

/* The think time before request i, the same for the same seed and request. */
static mono_ns think_before(const struct session_set *ss, size_t i)
{
    return session_think_at(&ss->cfg, ss->seed, (uint64_t)i);
}

static void arm(struct session *s, mono_ns at)
{
    ptimer_at(s->timer, at);
}

static void conversation_clear(struct session *s)
{
    buf_release(&s->convo);
    buf_init(&s->convo, SESSION_CONVO_MAX);
    buf_reset(&s->answer);
    for (size_t k = 0; k < s->n_msgs; k++)
        free(s->msgs[k]);
    free(s->msgs);
    s->msgs = NULL;
    s->n_msgs = 0;
    s->msg_bytes = 0;
    free(s->message);
    s->message = NULL;
    s->tokens = 0;
}

static void begin(struct session *s, mono_ns due, mono_ns think, bool held)
{
    struct session_set *ss = s->set;
    s->open = true;
    ss->open++;
    s->next = 0;
    s->due = due;
    s->think = think;
    s->held = held;
    arm(s, due);
}

/* A user slot is free: the next waiting session begins. */
static void begin_waiting(struct session_set *ss, mono_ns freed_at)
{
    if (ss->stopping || ss->head == ss->tail || (ss->cap > 0 && ss->open >= (size_t)ss->cap))
        return;
    struct session *s = &ss->s[ss->fifo[ss->head++]];
    if (ss->closed_loop) {
        /* The same user starts a new conversation after reading the last answer. */
        mono_ns think = think_before(ss, s->first);
        begin(s, freed_at + think, think, false);
    } else {
        /* An arrival that waited: due when it arrived, the wait is its queue delay. */
        begin(s, ss->arrived[s - ss->s], 0, true);
    }
}

static void end(struct session *s, size_t skipped, mono_ns at)
{
    struct session_set *ss = s->set;
    ptimer_cancel(s->timer);
    conversation_clear(s);
    s->open = false;
    ss->open--;
    ss->h.ended(ss->h.ctx, (size_t)(s - ss->s), skipped);
    begin_waiting(ss, at ? at : clock_now());
}

void session_arrive(struct session_set *ss, size_t k, mono_ns due)
{
    if (k >= ss->n || ss->stopping)
        return;
    ss->arrived[k] = due;
    if (ss->closed_loop && ss->cap > 0 && k < (size_t)ss->cap) {
        /* The users arrive spread over start_spread_s (user k of N at k x spread / N), not in
         * one millisecond: their first turns would otherwise all prefill at once. The planner
         * (plan/vdriver.c) starts them at the same offsets. */
        mono_ns at = due + s_to_ns(session_start_spread_s(&ss->cfg) * (double)k / ss->cap);
        begin(&ss->s[k], at, 0, false);
    } else if (ss->cap == 0 || ss->open < (size_t)ss->cap) {
        begin(&ss->s[k], due, 0, false);
    } else {
        ss->fifo[ss->tail++] = k;
    }
}

static void on_session_timer(void *arg, mono_ns now)
{
    struct session *s = arg;
    struct session_set *ss = s->set;
    if (ss->stopping || !s->open || s->next >= s->turns)
        return;
    size_t i = s->first + s->next;
    (void)now;
    s->next++; /* before release: a request that fails at once comes back through on_done */
    ss->h.release(ss->h.ctx, i, s->due, s->think, s->held);
}

int session_fill_request(struct session_set *ss, size_t i, char **message, struct req_record *rec,
                         struct client_request *rq)
{
    struct session *s = session_of(ss, i);
    size_t turn = i - s->first;
    char *msg = *message;
    *message = NULL;
    int rc = 0;
    buf_reset(&s->answer);
    rq->answer = &s->answer;
    if (turn > 0)
        rec->target_prompt_tokens += (int)(s->tokens < INT32_MAX / 2 ? s->tokens : INT32_MAX / 2);
    if (ss->chat) {
        size_t len = strlen(msg);
        if (s->msg_bytes + len > SESSION_CONVO_MAX)
            rc = -E2BIG;
        s->message = msg;
        rq->prompt = msg;
        rq->history = (const char *const *)s->msgs;
        rq->n_history = s->n_msgs;
        return rc;
    }
    if (turn > 0)
        rc = buf_puts(&s->convo, "\n\n");
    rc = rc ? rc : buf_puts(&s->convo, msg);
    free(msg);
    rq->prompt = s->convo.data ? s->convo.data : "";
    rq->history = NULL;
    rq->n_history = 0;
    return rc;
}

/* The answer of request i joins the conversation. 0 or -E2BIG. */
static int keep_answer(struct session *s, const struct req_record *rec)
{
    char *answer = utf8_valid(s->answer.data ? s->answer.data : "", s->answer.len)
                       ? xstrdup(s->answer.data ? s->answer.data : "")
                       : utf8_repair(s->answer.data, s->answer.len);
    long prompt = rec->prompt_tokens >= 0 ? rec->prompt_tokens : rec->target_prompt_tokens;
    bool from_usage;
    /* Reasoning is not sent back: only the answer's tokens join the conversation. */
    s->tokens = prompt + rec->output_tokens - record_reasoning_tokens(rec, &from_usage);
    int rc = 0;
    if (s->set->chat) {
        s->msgs = xreallocarray(s->msgs, s->n_msgs + 2, sizeof(*s->msgs));
        s->msg_bytes += strlen(s->message) + strlen(answer);
        s->msgs[s->n_msgs++] = s->message;
        s->msgs[s->n_msgs++] = answer;
        s->message = NULL;
        return s->msg_bytes > SESSION_CONVO_MAX ? -E2BIG : 0;
    }
    rc = buf_puts(&s->convo, answer);
    free(answer);
    return rc;
}

void session_on_done(struct session_set *ss, size_t i, const struct req_record *rec)
{
    struct session *s = session_of(ss, i);
    size_t turn = i - s->first;
    size_t left = s->turns - turn - 1;
    if (rec->status != REQ_OK || ss->stopping) {
        end(s, left, rec->t_end);
        return;
    }
    if (left == 0 || keep_answer(s, rec) != 0) {
        end(s, left, rec->t_end);
        return;
    }
    s->think = think_before(ss, i + 1);
    s->due = (rec->t_end ? rec->t_end : clock_now()) + s->think;
    s->held = false;
    arm(s, s->due);
}

void session_set_stop(struct session_set *ss)
{
    if (!ss)
        return;
    ss->stopping = true;
    for (size_t k = 0; k < ss->n; k++)
        ptimer_cancel(ss->s[k].timer);
}

void session_set_free(struct session_set *ss)
{
    if (!ss)
        return;
    for (size_t k = 0; k < ss->n; k++) {
        struct session *s = &ss->s[k];
        ptimer_free(s->timer);
        conversation_clear(s);
        buf_release(&s->convo);
        buf_release(&s->answer);
    }
    ptimer_set_free(ss->timers);
    free(ss->s);
    free(ss->arrived);
    free(ss->fifo);
    free(ss);
}
