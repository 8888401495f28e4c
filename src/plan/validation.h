/*
 * validation.h - published serving measurements (bench/validation/ files) replayed with the
 * planner: load the rows, predict each one, and compare like with like (a published mean with
 * the predicted mean, a median with the median). build/bench_validation prints the result;
 * docs/ENGINE.md ("Validation") carries its output.
 */
#ifndef TB_PLAN_VALIDATION_H
#define TB_PLAN_VALIDATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/xalloc.h"
#include "plan/plan.h"

/* One published measurement. Figures not published are NAN. */
struct validation_row {
    char id[96];
    char source[512];
    char gpu[64];
    char model[128];
    char quantization[32];   /* "" or "auto" = the checkpoint's own */
    char kv_cache_dtype[16]; /* "" or "auto" */
    int max_model_len;
    double gpu_memory_utilization;
    int tensor_parallel_size;
    int max_num_seqs;           /* 0 = vLLM's default for the GPU */
    int max_num_batched_tokens; /* 0 = vLLM's default for the GPU */
    int numa_nodes;             /* CPU sockets the tensor-parallel group spans (1) */
    int p2p;                    /* PCIe peer-to-peer: -1 the catalog's, 0 off, 1 on */
    int replicas; /* independent servers behind a balancer, each with concurrency / replicas */
    int prompt_tokens, output_tokens;
    int concurrency; /* closed-loop users over all replicas */
    int prompts;     /* requests over all replicas */
    double output_tps;
    double ttft_mean_ms, ttft_median_ms;
    double tpot_mean_ms, tpot_median_ms;
    bool ttft_queue_dominated;
    /* The published TTFT is below what the GPUs could do (the prompt's linear-layer FLOPs alone
     * over the TTFT exceed the dense 16-bit peak of the tensor-parallel group): shown, not scored,
     * like a queue-dominated one. The file's header gives the computation. */
    bool ttft_implausible;
    /* Request lengths vary (a dataset such as ShareGPT): prompt/output tokens are means. Sent
     * all at once, such a row's duration is its longest request's, which it does not publish. */
    bool lengths_vary;
    /* With lengths_vary: each request's lengths (owned), drawn once at load from a ShareGPT-like
     * distribution with the row's means (validation_sharegpt_lengths), which the planner
     * replays in order; NULL otherwise. */
    int *prompt_lens, *output_lens;
    size_t n_lens;
    bool held_out; /* by the file's split rule: every second row in file order */
};

struct validation_set {
    struct validation_row *rows; /* owned */
    size_t n;
};

/* predicted / published for each metric; NAN where the row does not publish it. The TTFT and
 * TPOT ratios use the mean where the row publishes one, else the median. */
struct validation_ratio {
    double tps;
    double ttft;
    double tpot;
    bool ttft_is_mean, tpot_is_mean;
};

void validation_set_init(struct validation_set *s);
void validation_set_release(struct validation_set *s);
/* Appends the rows of one file. 0, or -ENOENT / -EINVAL with "file:line:column: why" in err. */
MUST_USE int validation_load(struct validation_set *s, const char *path, char *err, size_t errlen);
/* ShareGPT-like lengths as vLLM's benchmark samples them, n of each, deterministic from seed,
 * whose means are prompt_mean and output_mean (to within rounding); docs/ENGINE.md
 * ("Validation") says which distribution and why. */
void validation_sharegpt_lengths(int prompt_mean, int output_mean, uint64_t seed, int *prompt,
                                 int *output, size_t n);
/* The planner's query for one replica of row r (users = concurrency / replicas). */
void validation_query(const struct validation_row *r, const char *calibration,
                      struct plan_query *q);
/* Predicts row r; the throughput is summed over the replicas. 0 or -errno with err. */
MUST_USE int validation_predict(const struct validation_row *r, const char *calibration,
                                struct plan_prediction *out, char *err, size_t errlen);
/* predicted / published (p's latencies are seconds, the row's milliseconds). */
void validation_compare(const struct validation_row *r, const struct plan_prediction *p,
                        struct validation_ratio *out);
/* Median of |ratio - 1| in percent over the finite ratios; NAN when there are none. */
double validation_median_abs_error(const double *ratios, size_t n);

#endif
