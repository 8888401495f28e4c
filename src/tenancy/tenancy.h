/*
 * tenancy.h - `testbench plan --tenancy FILE`: several tenants (model, load, SLO) on one GPU
 * under each sharing strategy: one shared engine (one KV pool; LoRA adapters for tenants that
 * name one), memory-fraction partitions (one engine per tenant, time-slicing the GPU), or MIG
 * slices (one isolated engine per tenant). Per tenant and per strategy latency, SLO
 * attainment, goodput, fairness and interference; a verdict. docs/TENANCY.md.
 */
#ifndef TB_TENANCY_H
#define TB_TENANCY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "core/xalloc.h"

#define TENANCY_MAX_TENANTS 8
#define TENANCY_MAX_STRATEGIES 16

struct tenancy_tenant {
    char *name;
    char *model;   /* catalog name (the base model when adapter is set) */
    char *adapter; /* LoRA adapter name, or NULL */
    char *quantization;
    int max_model_len;
    int users;   /* closed loop; 0 = open loop at rate */
    double rate; /* requests/s */
    int prompt_tokens, output_tokens, requests;
    struct slo_cfg slo;
};

enum tenancy_kind { TENANCY_SHARED, TENANCY_PARTITIONED, TENANCY_MIG };

struct tenancy_strategy {
    char *name;
    enum tenancy_kind kind;
    double gpu_memory_utilization;         /* shared and mig (per slice); 0 = 0.9 */
    double fractions[TENANCY_MAX_TENANTS]; /* partitioned: one per tenant, in order */
    char *profiles[TENANCY_MAX_TENANTS];   /* mig: one per tenant, in order */
    size_t n_values;                       /* fractions or profiles given */
};

struct tenancy_cfg {
    char *path;
    char *gpu;
    char *catalog_dir;
    uint64_t seed;
    struct tenancy_tenant tenants[TENANCY_MAX_TENANTS];
    size_t n_tenants;
    struct tenancy_strategy strategies[TENANCY_MAX_STRATEGIES];
    size_t n_strategies;
};

/* 0, or -EINVAL/-ENOENT with "file:line:col: key: what" in err. c need not be initialised;
 * release it either way. */
MUST_USE int tenancy_cfg_load(struct tenancy_cfg *c, const char *path, char *err, size_t errlen);
void tenancy_cfg_release(struct tenancy_cfg *c);

/* Jain's fairness index (sum x)^2 / (n sum x^2) over n values; NAN when n == 0 or all 0. */
double tenancy_jain(const double *x, size_t n);

struct cost_calibration;
/* `plan --tenancy`'s prediction for strategy k of c: the object its --json writes in
 * "strategies" (docs/TENANCY.md). cal NULL = the built-in efficiencies. New reference, or NULL
 * with err (an unknown model, GPU or MIG profile). */
json_t *tenancy_predict_strategy(const struct tenancy_cfg *c, size_t k,
                                 const struct cost_calibration *cal, char *err, size_t errlen);

/* The `plan --tenancy` command (argv as plan received it). */
int tenancy_plan_main(int argc, char **argv);
/* `testbench tenancy --config FILE`: each strategy measured, tenants alone then together
 * (measure.c). Returns an exit code. */
int tenancy_measure_main(int argc, char **argv);

#endif
