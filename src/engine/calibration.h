/*
 * calibration.h - the cost model's efficiencies and fixed costs, as one value that a profile
 * file can replace. The defaults are fitted on the fitting half of bench/validation/ (published
 * vLLM measurements); `testbench calibrate` fits them to the user's own results instead.
 * Each figure and why it has its default: docs/ENGINE.md ("Step duration"), docs/CALIBRATION.md.
 */
#ifndef TB_ENGINE_CALIBRATION_H
#define TB_ENGINE_CALIBRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/xalloc.h"

/* The parameters `testbench calibrate` fits, in this order (calibration_param_*). */
enum calibration_param {
    CAL_GEMM = 0,    /* dense GEMM: achieved / tensor peak of the weights' compute dtype */
    CAL_GEMM_INT4,   /* weight-only int4 (AWQ/GPTQ, Marlin dequantise) GEMM, / 16-bit peak */
    CAL_GEMM_FP4W,   /* FP4 weights on a GPU without FP4 tensor cores (upcast), / 16-bit peak */
    CAL_MOE,         /* fused MoE GEMM (load imbalance, padding), relative to the class above */
    CAL_ATTN,        /* attention prefill at short context, / 16-bit peak */
    CAL_WEIGHT_BW,   /* streaming weights: achieved / datasheet bandwidth */
    CAL_KV_BW,       /* paged-attention KV reads: achieved / datasheet bandwidth */
    CAL_STEP_S,      /* fixed cost per engine step (scheduler, launch, sampling) */
    CAL_REQUEST_S,   /* fixed cost per request outside the GPU, added to TTFT */
    CAL_SEQ_S,       /* per scheduled sequence per step (scheduler, sampling, output processing) */
    CAL_AR_NVLINK_S, /* per tensor-parallel all-reduce over NVLink (vLLM's custom kernel) */
    CAL_HOP_PCIE_S,  /* per ring step of an NCCL all-reduce over PCIe peer-to-peer */
    CAL_HOP_HOST_S,  /* ... staged through host memory (no peer-to-peer) */
    CAL_HOST_CONTENTION, /* CPU-side costs grow by this per other busy server on the host */
    CAL_MOE_LAYER_S,     /* least GPU time per MoE layer per step (routing, grouped GEMMs) */
    CAL_N_PARAMS
};

struct cost_calibration {
    double p[CAL_N_PARAMS];
    double attn_context_knee; /* tokens: attention efficiency falls as 1 / (1 + ctx / knee) */
    /* Identity of a fitted profile ("" for the defaults). */
    char gpu[128];
    char engine[32];
    char engine_version[32];
    char model[160];
    int points;            /* result points the fit used */
    int parameters;        /* parameters it fitted (0: a profile that does not say) */
    double err_before_pct; /* median |error| of the fitted figures before and after */
    double err_after_pct;
};

/* Names as written in a profile ("gemm", "gemm_int4", ...). */
const char *calibration_param_name(enum calibration_param p);
/* The built-in efficiencies (docs/ENGINE.md says where each comes from). */
void cost_calibration_default(struct cost_calibration *c);
/* Reads a profile (docs/CALIBRATION.md) over the defaults: a key not written keeps its default.
 * 0; -ENOENT (cannot open) or -EINVAL (bad YAML, unknown or duplicate key, value out of range)
 * with "file:line:column: why" in err. */
MUST_USE int cost_calibration_load(struct cost_calibration *c, const char *path, char *err,
                                   size_t errlen);
/* Writes c as a profile that cost_calibration_load reads back. 0 or -errno. */
MUST_USE int cost_calibration_write(const struct cost_calibration *c, FILE *f);
/* Whether a fitted profile's fit error can stand for its error elsewhere: it names its points
 * and they are no fewer than the parameters fitted (with fewer, the fit can pass through every
 * point and its residual says nothing). */
bool cost_calibration_fit_error_holds(const struct cost_calibration *c);
/* Whether profile c was fitted on another GPU than the one named (catalog name, or display
 * name): its efficiencies describe that card. False for the built-in defaults. */
bool cost_calibration_other_gpu(const struct cost_calibration *c, const char *name,
                                const char *display_name);
/* Lowest and highest value a fitted or loaded parameter may take. */
void calibration_param_range(enum calibration_param p, double *lo, double *hi);
/* True for the parameters a profile writes under `overhead:` (seconds, or the host-contention
 * factor), false for the efficiencies under `efficiency:`. */
bool calibration_param_is_overhead(enum calibration_param p);
/* True for the parameters `testbench calibrate` fits by default when the points constrain them;
 * the others (fixed costs that trade off against the bandwidth efficiencies at the points a
 * calibration run measures, and the topology terms) only when --fit names them
 * (docs/CALIBRATION.md). */
bool calibration_param_fitted_by_default(enum calibration_param p);

#endif
