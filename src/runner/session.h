/*
 * session.h - multi-turn users (requests.session, docs/METRICS.md "Sessions").
 *
 * A session is one user's conversation: `turns` requests, each sending the conversation so far
 * (the earlier user messages and the answers as the server generated them) plus a new user
 * message. A turn is due when its user is ready: the previous answer's end plus a think time
 * drawn from (seed, request index), so it cannot be scheduled in advance; each session has a
 * timer of its own. Sessions arrive by the point's arrival schedule; the concurrency cap
 * bounds the sessions open at once (users), not requests. A session waiting for a free user
 * slot starts: with rate inf (a closed loop of users), when a user ends a conversation, after
 * a think time, and is due then; with a finite rate, as soon as a slot frees, due at its
 * scheduled arrival (the wait is its queue_delay).
 *
 * The records, prompts and the HTTP client stay the runner's: the set tells it through hooks
 * when a request is to go and when a session has ended.
 */
#ifndef TB_SESSION_H
#define TB_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "config/config.h"
#include "core/clock.h"
#include "runner/client.h"
#include "runner/record.h"

/* The runner's side (every user message is planned before the point starts, so a turn never
 * waits for one). release: request i is due at due (think: its think time; held: it waited
 * for a user slot) and should go now. ended: session s is over; skipped turns were never sent
 * (an earlier turn failed, or the point is stopping). */
struct session_hooks {
    void (*release)(void *ctx, size_t i, mono_ns due, mono_ns think, bool held);
    void (*ended)(void *ctx, size_t s, size_t skipped);
    void *ctx;
};

struct session_set;

/* Sessions over n_requests requests of cfg->turns each (the last may be shorter): session s
 * holds requests [s * turns, ...). cap: most sessions open at once (0 = no cap);
 * closed_loop: rate inf (see above). seed: think times. 0 or -ENOMEM. */
MUST_USE int session_set_new(struct session_set **out, struct event_base *base,
                             const struct session_cfg *cfg, size_t n_requests, int cap,
                             bool closed_loop, bool chat, uint64_t seed,
                             const struct session_hooks *hooks);
size_t session_set_count(const struct session_set *ss);
/* The request index of session s's first turn (s may be count: then n_requests). */
size_t session_set_first(const struct session_set *ss, size_t s);
/* Which session and turn request i is. */
void session_set_locate(const struct session_set *ss, size_t i, int *session, int *turn);
/* Session s arrives (its scheduled due time): it begins now, or waits for a user slot. */
void session_arrive(struct session_set *ss, size_t s, mono_ns due);
/* Fills rq's prompt (completions: the whole conversation; chat: the new message), history and
 * answer buffer for request i, taking *message (the built user message; *message becomes
 * NULL). For a later turn, adds the conversation's length so far (usage, else targets) to
 * rec->target_prompt_tokens (which held the message's). rq's strings stay valid until
 * request i is done. 0, or -E2BIG when the conversation would pass the session's ceiling
 * (the request must then not be sent). */
MUST_USE int session_fill_request(struct session_set *ss, size_t i, char **message,
                                  struct req_record *rec, struct client_request *rq);
/* Request i is done (rec: its record): the session goes on after a think time, or ends. */
void session_on_done(struct session_set *ss, size_t i, const struct req_record *rec);
/* No more releases: timers are dropped (the point is stopping). */
void session_set_stop(struct session_set *ss);
void session_set_free(struct session_set *ss); /* NULL is a no-op */

#endif
