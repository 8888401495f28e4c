/*
 * session_cfg.c - requests.session: defaults, names, its rules and its JSON, and the think
 * time draw (docs/CONFIG.md "requests.session", docs/METRICS.md "Sessions").
 * The YAML walker (config_load.c) fills the struct from its table of keys; the rules are
 * here so that the file's positions and the command line's overrides share them.
 */
#include "config/session_cfg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "core/clock.h"
#include "core/rng.h"

/* A conversation of more turns than this is a typo, and would let prompts grow past any
 * model's context. */
#define SESSION_TURNS_MAX 1000
/* A day: think times beyond it would outlast any run. */
#define SESSION_THINK_MAX_S 86400.0
#define SESSION_SIGMA_MAX 10.0

static const struct {
    const char *name;
    enum think_dist value;
} think_dists[] = {
    {"fixed", THINK_FIXED},
    {"exponential", THINK_EXPONENTIAL},
    {"lognormal", THINK_LOGNORMAL},
};

#define N_DISTS (sizeof(think_dists) / sizeof(think_dists[0]))

void session_cfg_defaults(struct session_cfg *s)
{
    memset(s, 0, sizeof(*s));
    s->turns = 4;
    s->think = THINK_EXPONENTIAL;
    s->think_time_s = 5.0;
    s->think_time_sigma = 1.0;
    s->message_tokens_min = 64;
    s->message_tokens_max = 256;
    s->start_spread_s = NAN;
}

const char *think_dist_name(enum think_dist d)
{
    for (size_t i = 0; i < N_DISTS; i++)
        if (think_dists[i].value == d)
            return think_dists[i].name;
    return "unknown";
}

int think_dist_parse(const char *s, enum think_dist *out)
{
    for (size_t i = 0; s && i < N_DISTS; i++) {
        if (strcmp(s, think_dists[i].name) == 0) {
            *out = think_dists[i].value;
            return 0;
        }
    }
    return -EINVAL;
}

const char *think_dist_names_list(void)
{
    return "fixed, exponential, lognormal";
}

uint64_t session_think_ns(const struct session_cfg *s, uint64_t seed)
{
    double mean = s->think_time_s;
    if (!(mean > 0))
        return 0;
    struct rng g;
    rng_seed(&g, seed);
    double x = mean;
    if (s->think == THINK_EXPONENTIAL) {
        x = rng_exp(&g, mean);
    } else if (s->think == THINK_LOGNORMAL) {
        double sigma = s->think_time_sigma;
        x = exp(log(mean) - sigma * sigma / 2 + sigma * rng_normal(&g));
    }
    if (!(x < SESSION_THINK_MAX_S * 10)) /* a far tail (or NAN) is cut, not overflowed */
        x = SESSION_THINK_MAX_S * 10;
    return s_to_ns(x);
}

uint64_t session_think_at(const struct session_cfg *s, uint64_t seed, uint64_t i)
{
    return session_think_ns(s, hash64(&i, sizeof(i), seed));
}

double session_start_spread_s(const struct session_cfg *s)
{
    return isnan(s->start_spread_s) ? s->think_time_s : s->start_spread_s;
}

json_t *session_cfg_to_json(const struct session_cfg *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "enabled", json_boolean(s->enabled));
    json_object_set_new(o, "turns", json_integer(s->turns));
    json_object_set_new(o, "think_time_distribution", json_string(think_dist_name(s->think)));
    json_object_set_new(o, "think_time_s", json_real(s->think_time_s));
    json_object_set_new(o, "think_time_sigma", json_real(s->think_time_sigma));
    json_object_set_new(o, "message_tokens_min", json_integer(s->message_tokens_min));
    json_object_set_new(o, "message_tokens_max", json_integer(s->message_tokens_max));
    json_object_set_new(o, "start_spread_s", json_real(session_start_spread_s(s)));
    return o;
}

int session_find_problem(struct cfg_problem *p, const struct session_cfg *s, const char *prefix,
                         const void *owner)
{
    char sp[CFG_PATH_MAX], path[CFG_PATH_MAX + 32];
    snprintf(sp, sizeof(sp), "%s.session", prefix);
    if (!s->enabled)
        return 0;
    int rc = check_int_min(p, &s->turns, 1, sp, "turns", owner);
    if (rc)
        return rc;
    if (s->turns > SESSION_TURNS_MAX)
        return problem_at(p, &s->turns, sp, "turns", owner, "must be at most %d, got %d",
                          SESSION_TURNS_MAX, s->turns);
    if (strcmp(think_dist_name(s->think), "unknown") == 0) {
        snprintf(path, sizeof(path), "%s.think_time_distribution", sp);
        where(p, &s->think, path, "unknown distribution; allowed: %s", think_dist_names_list());
        return -EINVAL;
    }
    rc = check_num(p, &s->think_time_s, 0, true, SESSION_THINK_MAX_S, sp, "think_time_s", owner);
    if (!rc)
        rc = check_num(p, &s->think_time_sigma, 0, true, SESSION_SIGMA_MAX, sp, "think_time_sigma",
                       owner);
    if (!rc && !isnan(s->start_spread_s))
        rc = check_num(p, &s->start_spread_s, 0, true, SESSION_THINK_MAX_S, sp, "start_spread_s",
                       owner);
    if (!rc)
        rc = check_int_min(p, &s->message_tokens_min, 1, sp, "message_tokens_min", owner);
    if (!rc)
        rc = check_int_min(p, &s->message_tokens_max, 1, sp, "message_tokens_max", owner);
    if (!rc)
        rc = check_min_max(p, &s->message_tokens_min, &s->message_tokens_max, sp,
                           "message_tokens_min", "message_tokens_max", owner);
    return rc;
}

long session_first_prompt(const struct session_cfg *s, int context, int completion_tokens)
{
    return (long)context - (long)s->turns * completion_tokens -
           (long)(s->turns - 1) * s->message_tokens_max;
}
