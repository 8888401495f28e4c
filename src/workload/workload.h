/*
 * workload.h - what each request of a tenant contains, for the runner: its target prompt and
 * output lengths, its prompt (synthetic text, a dataset's prompt or conversation, a trace
 * row's blocks, RAG documents and a question) and, for a trace, when it is due.
 *
 * A workload is made once per tenant (files are read then); each point starts with
 * workload_plan() and then fixes every prompt with workload_recipe() on the tenant's prompt
 * thread, in request order, before the point's clock starts. Nothing here is shared between
 * tenants.
 */
#ifndef TB_WORKLOAD_H
#define TB_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "runner/prompt.h"
#include "runner/record.h"

struct workload;

/* rq and its strings are borrowed for the workload's life. 0, or -errno with
 * "requests.dataset.path: FILE:LINE: why" (or .trace) in err. */
MUST_USE int workload_new(struct workload **out, const struct requests_cfg *rq, enum api_kind api,
                          char *err, size_t errlen);
void workload_free(struct workload *w); /* NULL is a no-op */

/* Lets the builder draw words from a text corpus (dataset format text); call once after
 * prompt_builder_new. */
void workload_attach(struct workload *w, struct prompt_builder *b);
/* Requests per point: the trace's rows, else num_requests. */
size_t workload_n_requests(const struct workload *w);
/* True when the trace fixes the due offsets (then off[0..n) is filled). */
bool workload_schedule(const struct workload *w, mono_ns *off, size_t n);
/* Before a point: every record's target prompt and output tokens (a dataset's prompt length
 * is known only when its prompt is built: 0 until then) from the point's seed. context > 0:
 * prompts fill context - output tokens. */
void workload_plan(struct workload *w, uint64_t seed, int context, struct req_record *recs,
                   size_t n);
/* With requests.session, after workload_plan: each later turn's target is its new user
 * message (drawn from message_tokens_min..max with seed, in request order; the conversation
 * comes on top when it is sent), and with context > 0 each first turn leaves room for the
 * whole conversation (session_first_prompt). Request i is session i / turns, turn i % turns.
 * The runner sends these and the planner replays them (study_predict.c). */
void workload_plan_turns(const struct requests_cfg *rq, uint64_t seed, int context,
                         struct req_record *recs, size_t n);
/* Request i's prompt as a recipe (prompt.h): every /tokenize call it needs is made here, and
 * the text can be composed from it later without the server. May set rec's targets
 * (datasets). Call in request order (a dataset is sampled in that order). text: when not
 * NULL, the text composed on the way (caller frees), or NULL. 0 or -ENOMEM. */
MUST_USE int workload_recipe(struct workload *w, struct prompt_builder *b, uint64_t seed, size_t i,
                             struct req_record *rec, struct prompt_recipe *out, char **text);
/* Request i's prompt (caller frees): text, or with workload_messages() a JSON array of chat
 * messages. workload_recipe and its text. */
char *workload_prompt(struct workload *w, struct prompt_builder *b, uint64_t seed, size_t i,
                      struct req_record *rec);
/* Request i's prompt depends on the requests before it (a dataset is sampled in request order,
 * through its length filter): every process of a distributed load must plan them all to draw
 * the same prompt for the same request. */
bool workload_draws_in_order(const struct workload *w);
/* Prompts are JSON message lists (a chat dataset with turns: all). */
bool workload_messages(const struct workload *w);
/* Said at the end of a point: a dataset that ran out and was reused, entries filtered. */
void workload_point_note(const struct workload *w, const char *tenant);

#endif
