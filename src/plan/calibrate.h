/*
 * calibrate.h - `testbench calibrate RESULTS...`: fits the cost model's efficiencies
 * (engine/calibration.h) to results measured on the user's own GPU, by least squares on the
 * per-point figures (log of predicted / measured output throughput, mean TTFT and mean TPOT),
 * and writes a calibration profile. docs/CALIBRATION.md describes the loop.
 */
#ifndef TB_PLAN_CALIBRATE_H
#define TB_PLAN_CALIBRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/xalloc.h"
#include "engine/calibration.h"
#include "plan/plan.h"

/* Setup fields the result files may lack (a real server does not report its quantization or
 * KV dtype); NULL / 0 = take them from the results. */
struct calibrate_overrides {
    const char *gpu;
    const char *model;
    const char *quantization;
    const char *kv_cache_dtype;
    double gpu_memory_utilization;
    int max_num_seqs;
    int max_num_batched_tokens;
    const char *catalog_dir;
    bool force; /* fit for --gpu even when the files say they were measured on another GPU */
};

/* One measured point as the planner replays it. */
struct calibrate_point {
    char label[128];
    char gpu[128], model[160], quantization[32], kv_cache_dtype[16];
    struct plan_query q; /* numbers only: calibrate_point_query adds the strings */
    double tps;          /* measured output tokens/s */
    double ttft_s;       /* measured mean TTFT */
    double tpot_s;       /* measured mean TPOT; NAN when outputs are one token */
    /* Owned: the completed requests' measured lengths in the order sent, which q points at
     * (q.prompt_lens, q.output_lens); NULL when q's lengths are borrowed or absent. */
    int *own_prompt_lens, *own_output_lens;
};

struct calibrate_set {
    struct calibrate_point *pts; /* owned */
    size_t n;
    char gpu[128]; /* catalog name of the GPU the results came from */
    char engine[32];
    char engine_version[32];
    char model[160];
    size_t skipped; /* points that are not a closed loop or were cut short */
};

struct calibrate_report {
    bool fitted[CAL_N_PARAMS]; /* false: the results do not constrain it; kept as it was */
    double err_before_pct;     /* median |predicted / measured - 1| over all figures */
    double err_after_pct;
    int evaluations;
};

/* The planner's query for p, its strings borrowed from p. */
void calibrate_point_query(const struct calibrate_point *p, struct plan_query *q);
void calibrate_set_init(struct calibrate_set *s);
void calibrate_set_release(struct calibrate_set *s);
/* Appends the closed-loop points of one detailed.json. 0, or -ENOENT / -EINVAL with err. */
MUST_USE int calibrate_load(struct calibrate_set *s, const char *path,
                            const struct calibrate_overrides *ov, char *err, size_t errlen);
/* Fits the parameters in 'which' (NULL = every one the points constrain, except step_s, which
 * a dense model's decode cannot tell from weight bandwidth) starting from *cal, which receives
 * the result. 0 or -errno with err. */
MUST_USE int calibrate_fit(const struct calibrate_set *s, const char *catalog_dir,
                           const bool *which, struct cost_calibration *cal,
                           struct calibrate_report *rep, char *err, size_t errlen);

int calibrate_main(int argc, char **argv);

#endif
