/*
 * session_cfg.h - requests.session (docs/CONFIG.md): users who hold a conversation of several
 * turns, reading each answer and thinking before they type the next message. Plain values
 * only (no pointers), so a tenant's copy of requests is a plain struct copy.
 */
#ifndef TB_SESSION_CFG_H
#define TB_SESSION_CFG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/xalloc.h"

/* How a user's think time before each turn is drawn. */
enum think_dist { THINK_FIXED, THINK_EXPONENTIAL, THINK_LOGNORMAL };

struct session_cfg {
    bool enabled;            /* requests.session given as a mapping or true; default off */
    int turns;               /* requests per session; default 4 */
    enum think_dist think;   /* think_time_distribution; default exponential */
    double think_time_s;     /* mean think time (s); 0 = none; default 5 */
    double think_time_sigma; /* lognormal: sigma of ln(think time); default 1 */
    int message_tokens_min;  /* a later turn's new user message; default 64 */
    int message_tokens_max;  /* default 256 */
    /* In a closed loop of users, their first conversations begin spread evenly over this many
     * seconds (user k of N at k x spread / N), as people arrive rather than all in one
     * millisecond; NAN = think_time_s (the default); 0 = all at once. */
    double start_spread_s;
};

void session_cfg_defaults(struct session_cfg *s);
const char *think_dist_name(enum think_dist d); /* "fixed", "exponential", "lognormal" */
MUST_USE int think_dist_parse(const char *s, enum think_dist *out); /* 0 or -EINVAL */
const char *think_dist_names_list(void);                            /* for messages */
/* Draws one think time in ns from s, reproducibly from seed (0 when think_time_s is 0).
 * lognormal: mu = ln(mean) - sigma^2 / 2, so its mean is think_time_s. */
uint64_t session_think_ns(const struct session_cfg *s, uint64_t seed);
/* The think time before request i of a point whose think-time seed is seed: what the runner
 * draws and the planner replays (the same draw for the same seed and index). */
uint64_t session_think_at(const struct session_cfg *s, uint64_t seed, uint64_t i);
/* The spread of the users' first conversations in seconds (start_spread_s resolved). */
double session_start_spread_s(const struct session_cfg *s);
json_t *session_cfg_to_json(const struct session_cfg *s);
/* With a context window, the first turn's prompt length: the whole conversation (every answer
 * at completion_tokens and every later message at message_tokens_max) then fits the window.
 * May be < 1 (the config check refuses that). */
long session_first_prompt(const struct session_cfg *s, int context, int completion_tokens);

#endif
