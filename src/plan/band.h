/*
 * band.h - how far to trust a prediction, judged on the combination it falls in: the GPU family
 * (compute capability), the weight format as the engine runs it, the KV cache dtype, the model
 * class (dense or MoE), the prompt-length bucket and the parallelism (one GPU, tensor parallel
 * over NVLink, PCIe peer-to-peer, PCIe across sockets or host memory). The held-out half of
 * bench/validation/ (published vLLM measurements) gives, per row, its combination and its
 * prediction error (validation_table.c, written by `build/bench_validation --table`); a
 * prediction's band is the error of the held-out rows like it, widened when they are few and
 * marked extrapolated when there are none. docs/ENGINE.md, "Uncertainty", gives the rule.
 */
#ifndef TB_PLAN_BAND_H
#define TB_PLAN_BAND_H

#include <stdbool.h>
#include <stddef.h>

#include "plan/plan.h"

/* The dimensions a prediction's basis is judged on. */
enum band_dim { BD_GPU, BD_WEIGHTS, BD_KV, BD_MODEL, BD_PROMPT, BD_PARALLEL, BD_N };

struct band_key {
    char dim[BD_N][32]; /* "sm_120", "int4-weight-only", "fp8", "moe", "<=2k", "1 GPU" */
};

/* One held-out row of bench/validation with its combination and |predicted/published - 1| in
 * percent (a negative value: not scored, not published or the setup does not fit). */
struct band_row {
    const char *id;
    const char *dim[BD_N];
    double tps_err, ttft_err, tpot_err;
};
extern const struct band_row validation_band_rows[];
extern const size_t validation_band_n_rows;
extern const char validation_band_date[];

/* Rows like a prediction that the band rests on; fewer than this widen it. */
#define BAND_MIN_ROWS 3
/* The least band a calibration profile gives, whatever its fit's residual. */
#define CALIBRATED_BAND_FLOOR_PCT 5.0

struct cost_model;
struct cost_calibration;
struct catalog;

/* The combination of model m planned with prompt_tokens per request (the mean when they vary). */
void band_key_of(const struct cost_model *m, int prompt_tokens, struct band_key *k);
/* The combination of query q, resolved over cat. 0 or -errno with err (cost_model_init's). */
int band_key_of_query(const struct plan_query *q, const struct catalog *cat, struct band_key *k,
                      char *err, size_t errlen);
struct validation_row;
/* Held-out row r of bench/validation as the band table holds it: its combination (*k) and its
 * |predicted / published - 1| in percent with the built-in defaults per metric, -1 where not
 * scored (the setup does not fit, the row publishes no such figure, or its TTFT is
 * queue-dominated or implausible). bench_validation --table writes these; test_validation
 * recomputes them. 0, or -errno with err. */
int band_row_measure(const struct validation_row *r, const struct catalog *cat, struct band_key *k,
                     double *tps_err, double *ttft_err, double *tpot_err, char *err, size_t errlen);
/* Name of a dimension, for messages ("GPU", "weights", ...). */
const char *band_dim_name(enum band_dim d);
/* The band for the combination k over rows[0..n) (the built-in table, or any table a test
 * recomputes). */
void band_from_rows(const struct band_key *k, const struct band_row *rows, size_t n,
                    struct plan_band *out);
/* plan's band: band_from_rows over the built-in table, or the profile's own error after its fit
 * when cal (the profile in use, or NULL) was fitted on m's GPU and its fit error holds. */
void plan_band_for(const struct cost_model *m, int prompt_tokens,
                   const struct cost_calibration *cal, struct plan_band *out);

#endif
