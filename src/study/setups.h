/*
 * setups.h - a study's server setups (the grid's combinations, then the list) and workloads,
 * resolved from the study sections: every field filled from the entry, setups.defaults or the
 * run sections, and a stable id per setup for folders, container names and --resume.
 */
#ifndef TB_SETUPS_H
#define TB_SETUPS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

struct study_setup {
    char *id;             /* "s01-llama-3.1-8b-instruct-fp8-kvauto-8k-g0.90": [a-z0-9._-] */
    char *model;          /* these are owned */
    char *quantization;   /* NULL = none */
    char *kv_cache_dtype; /* "auto", "fp8", ... */
    int max_model_len;    /* 0 = the model's */
    double gpu_memory_utilization;
    int tensor_parallel_size;
    int max_num_seqs;          /* 0 = server default */
    int enable_prefix_caching; /* 0/1 */
    char **extra_args;         /* borrowed from the config */
    size_t n_extra_args;
};

struct study_workload {
    char *name;
    char *path;              /* the run config it came from */
    double window_fill;      /* NAN = prompts from the config's lengths */
    bool sessions;           /* users in conversation (default); false: request streams */
    const char *slo_profile; /* borrowed from the config; NULL = the workload's own slo */
};

/* Expands c's setups; *out is an array of *n (free with study_setups_free). */
void study_setups_expand(const struct config *c, struct study_setup **out, size_t *n);
void study_setups_free(struct study_setup *s, size_t n);
/* The workloads, paths resolved against the study file's folder; none listed = the study file
 * itself as one workload named after its benchmark. */
void study_workloads_resolve(const struct config *c, struct study_workload **out, size_t *n);
void study_workloads_free(struct study_workload *w, size_t n);
/* Every setup of c against the catalog's checkpoints (config/servable.h): the first one vLLM
 * would refuse to load, as "setup ID (model M, quantization Q): why". 0 or -EINVAL with err;
 * a catalog that cannot be loaded is not judged here (the plan says why). */
MUST_USE int study_setups_check(const struct config *c, char *err, size_t errlen);

#endif
