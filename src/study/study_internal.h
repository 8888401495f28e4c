/*
 * study_internal.h - what the study's own files share (study.c orders the work; study_predict.c
 * plans, study_rows.c keeps study.json's rows and setup states, study_measure.c launches and
 * measures, study_print.c prints the terminal tables, study_resume.c continues a folder).
 * Not a public interface: only src/study/ includes it.
 */
#ifndef TB_STUDY_INTERNAL_H
#define TB_STUDY_INTERNAL_H

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "plan/plan.h"
#include "runner/run.h"
#include "study/backend.h"
#include "study/setups.h"

/* Set by SIGINT/SIGTERM/SIGHUP while a study runs: stop after the current point, keep it. */
extern volatile sig_atomic_t study_stop_requested;

struct study_args {
    const char *config;
    const char *resume;
    const char *backend;
    const char *output_dir;
    bool force;
    bool plan_only;
    bool quiet;
    const char *calibration;   /* --calibration FILE: plan and the sim backend use it */
    bool retry_failed;         /* --retry-failed: crashed/timeout starts and failed probes */
    bool allow_backend_change; /* --allow-backend-change: resume on another backend */
    /* Beyond one process (src/scale/scale.h, docs/SCALE.md). */
    bool prepare;           /* --prepare: plan, record what does not fit, write the launch index */
    int setup_index;        /* --setup-index K: this process measures launch_index[K]; -1 none */
    int shard_i, shard_n;   /* --shard i/n: launch_index[k] for k % n == i; n 0 = none */
    const char *merge;      /* --merge DIR */
    int parallel;           /* --parallel N: N setups at once on this box; 0 none */
    const char *gpus;       /* --gpus LIST: the GPUs a shard's server may use */
    const char *executor;   /* --executor local|slurm|k8s */
    const char *emit;       /* --emit DIR: write the job scripts/manifests, submit nothing */
    bool wait;              /* --wait: follow the submitted jobs to their end */
    bool cancel;            /* --cancel-on-interrupt: Ctrl-C while following cancels the jobs */
    const char *k8s_action; /* "apply", "status" or "collect" */
    const char *k8s_dir;    /* the --emit folder those act on */
    const char *endpoint;   /* --endpoint URL: the none backend's server (a k8s sidecar) */
};

struct study {
    struct study_args args;
    struct config cfg; /* the study file */
    const char *name;
    struct study_setup *setups;
    size_t n_setups;
    struct study_workload *wl;
    size_t n_wl;
    struct config *wcfg; /* each workload's config as loaded, for lengths and SLOs */
    char *dir;
    json_t *doc; /* study.json: {..., setups: [...], rows: [...]} */
    struct backend_options bo;
    const char *backend_type; /* "sim", "docker", ...: what measures this run */
    char self_exe[PATH_MAX];
    int lock_fd;          /* DIR/.lock, held while the study runs; -1 none */
    char *resume_backend; /* owned copies of what a resume took from study.json */
    char *resume_calibration;
    char *resume_endpoint;
    int *claim_fd; /* per setup: DIR/<id>/.lock held by this process, -1 none (src/scale) */
    size_t n_claim;
    bool shard;        /* --setup-index/--shard: writes only its setups' fragments */
    bool hands_off;    /* the study was submitted: its files are the merge job's */
    char *docker_gpus; /* a shard's --gpus as docker's "device=..." (owned) */
};

/* One setup x workload: what its probes share. */
struct cell {
    struct study *st;
    size_t si, wi;
    const char *endpoint;
    struct server_handle *server; /* watched between probes: a server that died ends the setup */
    char died[256];               /* how it ended, once it has */
    long meas_kv;                 /* from the server's log, -1 unknown */
    int prompt, output, context;
    json_t *measured; /* users (as a string key) -> its row */
    int pred_max;     /* plan's max users, -1 unknown */
};

/* Tokens a later chat turn adds besides the answer and the message, in the simulator's
 * Llama-3 shaped template (src/sim/request.c): end of the answer, the user header and end,
 * the generation prompt. */
#define STUDY_CHAT_TURN_TOKENS 8

/* ---- study_predict.c: the plan for a setup x workload ---- */
struct servable;
/* What vLLM makes of setup si's checkpoint and quantization (config/servable.h): 0, or
 * -EINVAL when it would refuse to load it (sv->why). */
int study_servable(const struct study *st, size_t si, struct servable *sv);
const struct slo_cfg *study_workload_slo(const struct study *st, size_t wi);
/* The study's or the workload entry's SLO into a probe's (or the loaded workload's) config. */
void study_workload_apply(const struct study *st, size_t wi, struct config *cfg);
/* Turns per conversation of workload wi's users, or 0 for closed-loop streams. */
int study_turns(const struct study *st, size_t wi);
/* Requests a probe of `users` of workload wi sends at most (probe.c): warm-up and cap. */
int study_requests_for(const struct study *st, size_t wi, int users);
/* A probe's benchmark.seed: fresh prompts for every probe. */
uint64_t study_probe_seed(uint64_t seed, size_t wi, int users);
/* Predicts setup si x workload wi at `users`, with the lengths the probe will send. */
int study_predict(const struct study *st, size_t si, size_t wi, int users,
                  struct plan_prediction *p, int *prompt, int *output, int *context);
/* Every setup x workload can be planned (the engine knows its GPU, model, quantization, KV
 * dtype and TP); else -EINVAL after naming the setup and the engine's reason. */
int study_check_plannable(const struct study *st);
/* The plan's most users within the SLO, -1 unknown. */
int study_predict_max_users(const struct study *st, size_t si, size_t wi, int prompt, int output);
/* ---- probe.c: a probe's size, and what measuring costs ---- */
struct probe_size {
    int warmup; /* requests left out first: users x study.warmup_per_user */
    int look;   /* the stop rule looks once this many after the warm-up have finished */
    int cap;    /* the most after the warm-up */
    int total;  /* warmup + cap: the run's num_requests */
    bool stops; /* study.stop_when_decided and an SLO to decide */
};
void study_probe_size(const struct study *st, size_t wi, int users, struct probe_size *out);
/* Measuring time the plan expects for a setup x workload, seconds, stopping when certain;
 * *fixed_s (may be NULL): the same with every probe to its cap. */
double study_expected_seconds(const struct study *st, size_t si, size_t wi, int max_users,
                              double *fixed_s);
/* A row's probe_s (measured) and probe_fixed_s (its cap's time, scaled from it). */
void study_probe_times(json_t *row, double spent_s, size_t sent, int total);
struct measuring_totals {
    size_t probes, stopped, undecided;
    double spent_s, fixed_s;
};
/* Over every measured row of the study (resumed ones too). */
void study_measuring_totals(const struct study *st, struct measuring_totals *t);
void study_measuring_save(struct study *st); /* study.json "measuring" */
void study_print_measuring(const struct study *st);

/* ---- study_rows.c: study.json's rows and setup states ---- */
void study_row_set_pair(json_t *row, const char *name, json_t *pred, json_t *meas);
json_t *study_row_new(const struct study *st, size_t si, size_t wi, const char *role, int users,
                      const char *status, const char *reason);
void study_row_predicted(json_t *r, const struct plan_prediction *p, long meas_kv);
void study_row_measured(json_t *r, const struct run_point *pt);
json_t *study_rel_path(const struct study *st, const char *path);
json_t *study_setup_state(struct study *st, size_t si);
void study_setup_set_status(struct study *st, size_t si, const char *status, const char *reason);
int study_save(struct study *st);
json_t *study_setups_json(const struct study *st);
void study_rows_unmeasured(struct study *st, size_t si, size_t only, const char *status,
                           const char *reason, long meas_kv, const char *log_rel);

/* ---- study_measure.c: one setup, launched, measured, stopped ---- */
/* What measure() returns when the setup's server is gone (cell.died says how). */
#define STUDY_SERVER_DIED (-ECHILD)
int study_run_setup(struct study *st, size_t si);
/* The backend's view of a setup (strings borrowed from s). */
void study_server_setup_from(const struct study_setup *s, struct server_setup *out);

/* ---- study_print.c: the terminal tables ---- */
/* The workload in one line: its name, population and lengths. */
void study_describe_workload(const struct study *st, size_t wi, char *buf, size_t len);
void study_print_plan(struct study *st);
void study_print_guidance(struct study *st);

/* ---- study_resume.c: a folder taken up again (its file comment has the rules) ---- */
/* Takes DIR/.lock for this process (exclusive); 0 or -errno after saying who holds it. */
int study_lock(struct study *st);
void study_unlock(struct study *st);
/* --resume: the folder locked, study.json read, the recorded backend/calibration/--force
 * applied (or a change refused), the recorded working folder entered; *config_path (owned) is
 * the study file to load. A TB_EXIT_* code. */
int study_resume_begin(struct study *st, char **config_path);
/* After the study file is loaded: its definition checked against the recorded one, rows read
 * back checked, final setups and measured points kept. A TB_EXIT_* code. */
int study_resume_merge(struct study *st);
/* study.json's "invocation" (what the study runs with) and "definition" (what decides the
 * answer) for this study. New references. */
json_t *study_invocation(const struct study *st);
json_t *study_definition(const struct study *st);
/* A setup state that needs no more work: done (unless --retry-failed and no point measured),
 * does_not_fit, or a failed start that is the server's answer (not an error of ours, nor,
 * with --retry-failed, a crash or time-out). */
bool study_setup_final(const struct study *st, const json_t *state);

#endif
