/*
 * guidance.h - the answer a report opens with: for each model / quantization / KV dtype and
 * context length, whether N users meet the SLO, what one of them gets (tokens/s p50, TTFT
 * p95), and how many users stay within the SLO. Measured where a run or study measured it,
 * predicted by `testbench plan` where not, and each cell says which.
 */
#ifndef TB_REPORT_GUIDANCE_H
#define TB_REPORT_GUIDANCE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "report/load.h"

/* Objectives a report judges points by. NAN = the run's own (config) value; percentile too. */
struct report_slo {
    double ttft_ms, tpot_ms, itl_ms, e2e_ms, percentile;
};

enum cell_source { CELL_NONE, CELL_MEASURED, CELL_PREDICTED };
/* Why a cell has no verdict: it was judged, its setup does not fit (or cannot be loaded), or
 * it was not run (failed to start, interrupted, nothing at that user count). */
enum cell_state { CELL_JUDGED, CELL_NO_FIT, CELL_NOT_RUN };

struct guidance_cell {
    /* Cells are never pooled across studies or runs: a study's setups form its tables, and each
     * run outside a study its own (two runs' points at the same model and context may differ
     * in everything else). */
    char *group;     /* the study folder's name, or the run's label */
    bool from_study; /* group names a study */
    char *workload;  /* study workload; "" for plain runs */
    char *model, *quantization, *kv_dtype;
    long context;      /* tokens: the window (max_model_len) of a study's setup, or the prompt +
                          output of a plain run's requests */
    bool window;       /* context is a server's window (a study), not request lengths */
    bool context_upto; /* not swept: the largest prompt + output a request had */
    enum cell_source source;
    enum cell_state state;
    int slo_met;             /* 1, 0, or -1 unknown */
    double user_tps_p50;     /* tokens/s one user sees; NAN unknown */
    double ttft_p95_ms;      /* NAN unknown */
    double max_users;        /* most users within the SLO; NAN unknown, 0 none tried met it */
    bool max_users_at_least; /* the largest count tried met it: the true limit may be higher */
    double min_tried;        /* smallest count tried, for "fewer than" */
    const char *status;      /* a study setup's "does_not_fit" or "failed_to_start"; "" */
    char *evidence;          /* a measured study verdict's evidence (study.csv slo_evidence):
                                the percentile judged, its confidence interval, the requests
                                judged; "" none */
    char *note;              /* status, reason or what was missing; "" none */
    char *origin;            /* the run or study/setup the values come from */
    char *weights;           /* the weights' one name ("bf16 (checkpoint)", "fp8"), or NULL */
};

/* What a workload's cells were judged on: one line each for the SLO and the workload. */
struct guidance_basis {
    char *group;    /* as in the cells: the study's name, or the run's label */
    char *workload; /* as in the cells; "" for plain runs */
    char *slo;      /* "chat: TTFT p95 <= 2000 ms, TPOT p95 <= 100 ms" */
    char *what;     /* population and lengths */
};

struct guidance {
    struct guidance_cell *cells;
    size_t n;
    int users;
    struct guidance_basis *bases;
    size_t n_bases;
};

/*
 * Builds the cells from every run and study in `in` for `users` users. self_exe (this binary)
 * runs `plan --json` for cells without a measurement, on the run's simulated GPU or on gpu
 * when that is given; NULL self_exe predicts nothing.
 */
void guidance_build(struct guidance *g, const struct report_input *in, int users,
                    const struct report_slo *slo, const char *self_exe, const char *gpu);
void guidance_release(struct guidance *g);

/* The point against its objectives (the run's, with slo's overrides) by the verdict rule
 * (report/judge.h): 1 met, 0 missed, -1 none. why (whylen bytes) gets the one-line verdict
 * with its confidence interval ("missed: 13 of 20 failed (http_4xx)"). */
int point_judge(const json_t *run, const json_t *point, const struct report_slo *slo, char *why,
                size_t whylen);

/* Cells as JSON for the page: [{group, from_study, workload, model, quantization, kv_dtype,
 * context, ...}], in order: studies' cells first, then each run's, by group. */
json_t *guidance_json(const struct guidance *g);
/* The bases as JSON: [{group, workload, slo, what}], one per table of the cells. */
json_t *guidance_bases_json(const struct guidance *g);

#endif
