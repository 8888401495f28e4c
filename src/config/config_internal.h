/*
 * config_internal.h - what config.c shares with the YAML loader (config_load.c); not for
 * other modules.
 *
 * Validation lives in one place, config_find_problem(). It names each problem by the address
 * of the struct member at fault (with fallbacks: the enclosing section, the tenant), so the
 * loader, which remembers which YAML node filled which member, can add file:line:column,
 * while config_check() (after command-line overrides, no file positions) prints path: message.
 */
#ifndef TB_CONFIG_INTERNAL_H
#define TB_CONFIG_INTERNAL_H

#include "config/config.h"

#define CFG_PATH_MAX 128
#define CFG_MSG_MAX 240
#define CFG_WHERE_MAX 4

/* One place a problem can be reported: a member's address, its key path and the words. */
struct cfg_where {
    const void *addr;
    bool section; /* addr is a whole section (a tenant, a requests mapping), not a member */
    char path[CFG_PATH_MAX];
    char msg[CFG_MSG_MAX];
};

/* Candidates in order of preference; the loader uses the first whose member came from a node. */
struct cfg_problem {
    struct cfg_where at[CFG_WHERE_MAX];
    size_t n_at;
};

/* 0 when c is consistent; -EINVAL with p filled (at least one candidate) otherwise. */
MUST_USE int config_find_problem(const struct config *c, struct cfg_problem *p);

/* Building blocks of config_find_problem, shared with the study sections' checks. */
__attribute__((format(printf, 4, 5))) void where(struct cfg_problem *p, const void *addr,
                                                 const char *path, const char *fmt, ...);
void where_owner(struct cfg_problem *p, const void *addr);
/* The usual report: the words at prefix.key (the member at addr), then at fallback (its
 * section, a tenant; NULL: none). Returns -EINVAL, for `return problem_at(...)`. */
__attribute__((format(printf, 6, 7))) int problem_at(struct cfg_problem *p, const void *addr,
                                                     const char *prefix, const char *key,
                                                     const void *fallback, const char *fmt, ...);
/* *v >= min; lo < *v <= hi (lo_incl: lo <= *v). Path is prefix.key; fallback: its section. */
int check_int_min(struct cfg_problem *p, const int *v, int min, const char *prefix, const char *key,
                  const void *fallback);
int check_num(struct cfg_problem *p, const double *v, double lo, bool lo_incl, double hi,
              const char *prefix, const char *key, const void *fallback);
/* *min <= *max. Else the problem is at prefix.max_key ("N is less than MIN_KEY (M)"), then at
 * prefix.min_key, so a tenant that set only one of the two is shown the one it wrote. */
int check_min_max(struct cfg_problem *p, const int *min, const int *max, const char *prefix,
                  const char *min_key, const char *max_key, const void *fallback);
/* A string that is set (not NULL) must not be empty. */
int check_not_empty(struct cfg_problem *p, char *const *s, const char *prefix, const char *key,
                    const void *fallback);
/* requests.session's rules (session_cfg.c); prefix is "requests" or "tenants[i].requests". */
MUST_USE int session_find_problem(struct cfg_problem *p, const struct session_cfg *s,
                                  const char *prefix, const void *owner);
/* requests.warmup_requests, warmup_s, duration_s, stop_when_decided (measure_cfg.c). */
MUST_USE int measure_find_problem(struct cfg_problem *p, const struct requests_cfg *r,
                                  const char *prefix, const void *owner);
/* slo.confidence, and whether the stop rule of each tenant has an SLO to decide and enough
 * requests to decide it (measure_cfg.c). */
MUST_USE int verdict_find_problem(struct cfg_problem *p, const struct slo_cfg *s,
                                  const char *prefix, const void *owner);
MUST_USE int stop_rule_find_problem(struct cfg_problem *p, const struct requests_cfg *r,
                                    const struct slo_cfg *s, const char *prefix, const void *owner);
void measure_cfg_to_json(json_t *o, const struct requests_cfg *r);
/* The study sections' rules (study_cfg.c); 0 when there are none or they hold. */
MUST_USE int study_find_problem(const struct config *c, struct cfg_problem *p);

/* Table lookups; 0 or -EINVAL. */
MUST_USE int arrival_parse(const char *s, enum arrival *out);
MUST_USE int api_kind_parse(const char *s, enum api_kind *out);
/* "arrival_pattern"-style list of accepted names, e.g. "poisson, constant, burst, gamma". */
const char *arrival_names_list(void);
const char *api_kind_names_list(void);

void requests_cfg_copy(struct requests_cfg *dst, const struct requests_cfg *src);
void requests_cfg_release(struct requests_cfg *r);
/* Fills t from the top-level requests/slo, server.endpoint and model.name under the given name. */
void tenant_cfg_inherit(struct tenant_cfg *t, const struct config *c, const char *name);
void tenant_cfg_release(struct tenant_cfg *t);
/* Replaces c->tenants with the single "default" tenant built from the top level. */
void config_set_default_tenant(struct config *c);

/* Drops trailing '/' so the client can append "/v1/..." (in place). */
void endpoint_normalize(char *url);

#endif
