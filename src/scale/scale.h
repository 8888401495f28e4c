/*
 * scale.h - a study beyond one process (docs/SCALE.md): its setups measured by separate
 * processes ("shards": `study --resume DIR --setup-index K` or `--shard i/n`), each writing only
 * its setups' fragments (DIR/<setup id>/fragment.json) under its setups' locks
 * (DIR/<setup id>/.lock), and folded into study.json/.csv/manifest.json by whoever holds the
 * folder's lock (DIR/.lock): `study --merge DIR`, a plain `--resume`, or the process driving the
 * shards. The drivers: `--parallel N` (child processes on this box, disjoint GPUs), `--executor
 * slurm` (an array job and a dependent merge job) and `--executor k8s` (an Indexed Job with vLLM
 * as a native sidecar, driven through the user's kubectl).
 *
 * Files: args.c (the flags), shard.c (locks, fragments, folding, provenance, the launch
 * index), parallel.c
 * (--parallel), slurm.c, k8s.c (+ k8s_yaml.c), proc.c (running the tools these drive).
 * study.c calls what is below; nothing here is used outside src/study and src/scale.
 */
#ifndef TB_SCALE_H
#define TB_SCALE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/xalloc.h"

struct study;
struct study_args;

/* One of study.c's getopt_long results: --prepare, --setup-index, --shard, --merge, --wait,
 * --parallel, --gpus, --executor, --emit, --cancel-on-interrupt, --apply, --status, --collect,
 * --endpoint (args.c; their codes are study.c's option table's). 0 when c was one of them and
 * was stored in a, 1 when c is not one of them, -EINVAL after saying what is wrong. */
MUST_USE int scale_parse_arg(int c, const char *value, struct study_args *a);

/* "i/n" -> *i, *n (0 <= i < n); 0 or -EINVAL. */
MUST_USE int scale_parse_shard(const char *spec, int *i, int *n);

/* Checks the beyond-one-process flags against each other (after parsing); 0 or -EINVAL with
 * the conflict said. */
MUST_USE int scale_check_args(const struct study_args *a);

/* A shard's GPUs (--gpus LIST, or under Slurm the job's SLURM_JOB_GPUS) handed to its server:
 * docker --gpus "device=LIST", CUDA_VISIBLE_DEVICES for the command backend. */
void scale_backend_gpus(struct study *st);

/* Is this process a shard (--setup-index or --shard)? */
bool scale_is_shard(const struct study *st);

/* Right after a resumed study.json is read: a shard claims its setups' locks (refusing one that
 * another process holds), then every fragment newer than study.json's state of its setup is
 * folded into st->doc (the shard's and everyone else's). A TB_EXIT_* code. */
int scale_open(struct study *st);

/* Should this process measure setup si? (A shard: its own setups only.) */
bool scale_selected(const struct study *st, size_t si);

/* Before measuring setup si: its lock (a shard holds it already). 0, or -EBUSY after saying
 * which process measures it now (the setup is then left to that process). */
int scale_claim(struct study *st, size_t si);
/* After setup si's files are saved: its lock released (a shard keeps it to the end). */
void scale_release(struct study *st, size_t si);
/* Every lock this process holds released. */
void scale_release_all(struct study *st);

/* Provenance of setup si's measuring (host, pid, GPUs, Slurm/Kubernetes job, start and end
 * times): begin before study_run_setup, end after. */
void scale_setup_begin(struct study *st, size_t si);
void scale_setup_end(struct study *st, size_t si);

/* study_save for a shard: each claimed setup's fragment, written atomically. 0 or -errno. */
MUST_USE int scale_fragments_write(struct study *st);
/* Before every save by the folder's owner: the revision of each setup this process holds goes
 * up (a newer fragment wins a fold), and setups measured at the same time on the same host are
 * marked side by side. */
void scale_before_save(struct study *st);

/* --prepare (and every driver): setups the plan says do not fit are recorded as such, the
 * others listed in study.json's "launch_index" (kept once written: index K means the same
 * setup for every later shard). A TB_EXIT_* code. */
int scale_prepare(struct study *st);
/* Launch index entries whose setups are not final yet (new array of *n indices, caller frees). */
size_t *scale_pending(struct study *st, size_t *n);
/* The setup index of launch_index[k], or -1. */
long scale_index_setup(const struct study *st, size_t k);

/* A signal handler that sets study_stop_requested (a merge or a driver waiting). */
void scale_on_stop(int sig);

/* `study --merge DIR [--wait]`: fragments folded into the study files under the folder lock;
 * idempotent; unfinished setups stay as they are. A TB_EXIT_* code. */
int scale_merge_main(const struct study_args *a);

/* `study --parallel N`: the prepared study's setups as child shard processes, N at a time with
 * disjoint GPUs (backend.gpu_ids), folded as each ends. A TB_EXIT_* code. */
int scale_parallel_run(struct study *st);

/* `study --executor slurm|k8s [--emit DIR] [--wait]` on a prepared study. A TB_EXIT_* code. */
int scale_slurm_run(struct study *st);
int scale_k8s_run(struct study *st);
/* `study --apply|--status|--collect DIR`: the emitted Kubernetes study through kubectl. */
int scale_k8s_action(const struct study_args *a);

#endif
