/*
 * slurm.c - `study --executor slurm [--emit DIR] [--wait] [--cancel-on-interrupt]`: the
 * prepared study as one Slurm array job (a task per unfinished setup of the launch index, at
 * most slurm.max_parallel at once, TERM slurm.signal_s before the time limit so a task stops its
 * server and writes its fragment; `--resume --setup-index` finishes it later) and a merge job
 * that runs after every task (--dependency=afterany). Slurm is driven through its commands
 * (sbatch --parsable, squeue, scancel), as HPC sites run one configuration per array task.
 * Without --emit the jobs are submitted, and with --wait followed (fragments and squeue) to the
 * merge job's end; the exit code is then the merged study's: 0 when every launched setup is
 * final, 1 when some are not (resubmit with --resume DIR --executor slurm). Ctrl-C while
 * following leaves the jobs queued and prints the scancel line, or cancels them with
 * --cancel-on-interrupt.
 */
#include "scale/scale.h"
#include "scale/scale_internal.h"
#include "study/study_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/exitcode.h"
#include "core/fs.h"
#include "core/log.h"
#include "study/study_files.h"

#define SLURM_POLL_MS 1000   /* how often squeue and the fragments are read while following */
#define SLURM_SQUEUE_FAILS 5 /* squeue failing this often in a row ends the following */

/* "0-3,5,7-8": the launch indices to run, runs compressed as Slurm's --array takes them. */
static char *array_spec(const size_t *k, size_t n, int max_parallel)
{
    char *s = xstrdup("");
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && k[j + 1] == k[j] + 1)
            j++;
        char *next = j > i ? xasprintf("%s%s%zu-%zu", s, *s ? "," : "", k[i], k[j])
                           : xasprintf("%s%s%zu", s, *s ? "," : "", k[i]);
        free(s);
        s = next;
        i = j + 1;
    }
    if (max_parallel > 0) {
        char *next = xasprintf("%s%%%d", s, max_parallel);
        free(s);
        s = next;
    }
    return s;
}

/* The most GPUs one of the setups takes: a task's gres. */
static int gpus_per_task(const struct study *st, const size_t *k, size_t n)
{
    int most = 1;
    for (size_t i = 0; i < n; i++) {
        long si = scale_index_setup(st, k[i]);
        int per = st->cfg.study.backend.gpus_per_setup;
        int tp = si >= 0 ? st->setups[si].tensor_parallel_size : 1;
        int need = per > 0 ? per : tp > 0 ? tp : 1;
        most = need > most ? need : most;
    }
    return most;
}

/* The #SBATCH lines both scripts share: partition, account, extra options. */
static void common_options(FILE *f, const struct study_slurm_cfg *c)
{
    if (c->partition)
        fprintf(f, "#SBATCH --partition=%s\n", c->partition);
    if (c->account)
        fprintf(f, "#SBATCH --account=%s\n", c->account);
    for (size_t i = 0; i < c->extra_args.n; i++)
        fprintf(f, "#SBATCH %s\n", c->extra_args.v[i]);
}

static int write_script(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        log_error("study: cannot write %s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        return -EIO;
    }
    chmod(path, 0755);
    return 0;
}

/* DIR/study.sbatch (the array) and DIR/merge.sbatch, for the launch indices k. */
static int write_scripts(const struct study *st, const char *out, const size_t *k, size_t n)
{
    const struct study_slurm_cfg *c = &st->cfg.study.slurm;
    const char *bin = c->testbench ? c->testbench : st->self_exe;
    char *abs = realpath(st->dir, NULL); /* the tasks start wherever Slurm puts them */
    char *qbin = scale_shell_quote(bin), *qdir = scale_shell_quote(abs ? abs : st->dir);
    char *array = array_spec(k, n, c->max_parallel);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f,
            "#!/bin/bash\n"
            "# testbench study --executor slurm: one array task per setup of %s\n"
            "# (study.json \"launch_index\"); a task measures its setup and writes only its\n"
            "# fragment. Submit: sbatch --parsable study.sbatch, then merge.sbatch with\n"
            "# --dependency=afterany:<the array's job id>.\n"
            "#SBATCH --job-name=testbench-%s\n"
            "#SBATCH --array=%s\n"
            "#SBATCH --output=%s/task-%%A_%%a.out\n",
            st->dir, st->name, array, out);
    common_options(f, c);
    if (c->time)
        fprintf(f, "#SBATCH --time=%s\n", c->time);
    if (!c->gres)
        fprintf(f, "#SBATCH --gres=gpu:%d\n", gpus_per_task(st, k, n));
    else if (strcmp(c->gres, "none") != 0)
        fprintf(f, "#SBATCH --gres=%s\n", c->gres);
    /* B: the batch shell, which exec makes testbench itself: it stops its server, keeps
     * what it measured and exits 130 before the limit kills it. */
    if (c->signal_s > 0)
        fprintf(f, "#SBATCH --signal=B:TERM@%d\n", c->signal_s);
    fprintf(f, "exec %s study --resume %s --setup-index \"$SLURM_ARRAY_TASK_ID\"\n", qbin, qdir);
    fclose(f);
    char *path = xasprintf("%s/study.sbatch", out);
    int rc = write_script(path, text);
    free(path);
    free(text);
    f = open_memstream(&text, &len);
    fprintf(f,
            "#!/bin/bash\n"
            "# testbench study --executor slurm: folds the tasks' fragments into %s's\n"
            "# study files once every task has ended (submitted with --dependency=afterany).\n"
            "#SBATCH --job-name=testbench-%s-merge\n"
            "#SBATCH --output=%s/merge-%%j.out\n",
            st->dir, st->name, out);
    common_options(f, c);
    fprintf(f, "exec %s study --merge %s\n", qbin, qdir);
    fclose(f);
    path = xasprintf("%s/merge.sbatch", out);
    rc = rc ? rc : write_script(path, text);
    free(path);
    free(text);
    free(array);
    free(qbin);
    free(qdir);
    free(abs);
    return rc;
}

/* sbatch --parsable [...] script: the job id ("123", without ";cluster"), or NULL. */
static char *submit(const char *script, const char *dependency)
{
    const char *argv[6] = {"sbatch", "--parsable", NULL, NULL, NULL, NULL};
    char *dep = dependency ? xasprintf("--dependency=afterany:%s", dependency) : NULL;
    size_t n = 2;
    if (dep)
        argv[n++] = dep;
    argv[n++] = script;
    char *out = NULL;
    int rc = scale_run(argv, &out);
    free(dep);
    char *id = NULL;
    if (rc == 0 && out && out[0] >= '0' && out[0] <= '9') {
        out[strcspn(out, ";\n")] = '\0';
        id = xstrdup(out);
    } else {
        log_error("study: sbatch %s failed (exit %d)%s%s", script, rc, out && *out ? ": " : "",
                  out ? out : "");
    }
    free(out);
    return id;
}

/* What the submissions were, kept beside the scripts. */
static void record_jobs(const char *out, const char *array_id, const char *merge_id,
                        const char *array)
{
    char err[512], now[64];
    json_error_t je;
    char *path = xasprintf("%s/jobs.json", out);
    json_t *jobs = json_load_file(path, 0, &je);
    if (!json_is_array(jobs)) {
        json_decref(jobs);
        jobs = json_array();
    }
    clock_wall_iso(now, sizeof(now));
    json_array_append_new(jobs, json_pack("{s:s, s:s, s:s, s:s}", "submitted_at", now, "array_job",
                                          array_id, "merge_job", merge_id, "array", array));
    if (study_files_write_json(out, "jobs.json", jobs, err, sizeof(err)))
        log_warn("study: %s", err);
    json_decref(jobs);
    free(path);
}

/* The merge job's state from squeue ("PENDING", "RUNNING", "COMPLETED", ...), "" when squeue
 * no longer lists it, NULL when squeue failed. */
static char *job_state(const char *id)
{
    const char *argv[] = {"squeue", "-h", "-t", "all", "-j", id, "-o", "%i %T", NULL};
    char *out = NULL;
    int rc = scale_run(argv, &out);
    char *state = NULL;
    if (rc == 0) {
        state = xstrdup("");
        for (char *line = out; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            char *sp = strchr(line, ' ');
            if (sp && (size_t)(sp - line) == strlen(id) && strncmp(line, id, strlen(id)) == 0) {
                free(state);
                state = xstrdup(sp + 1);
            }
            line = nl ? nl + 1 : NULL;
        }
    }
    free(out);
    return state;
}

static bool job_over(const char *state)
{
    static const char *const live[] = {"PENDING",   "RUNNING",  "CONFIGURING", "COMPLETING",
                                       "SUSPENDED", "REQUEUED", "RESIZING",    "SIGNALING"};
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
        if (strcmp(state, live[i]) == 0)
            return false;
    return true; /* COMPLETED, FAILED, CANCELLED, TIMEOUT, ..., or no longer listed */
}

/* One line per change of a setup's state, read from the fragments (read only). */
static void print_progress(struct study *st, json_t *seen)
{
    json_t *doc = json_deep_copy(st->doc);
    scale_fold(st->dir, doc);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "setups"), i, s)
    {
        const char *id = json_string_value(json_object_get(s, "id"));
        const char *status = json_string_value(json_object_get(s, "status"));
        if (!id || !status || json_equal(json_object_get(seen, id), json_object_get(s, "status")))
            continue;
        json_object_set(seen, id, json_object_get(s, "status"));
        if (!st->args.quiet) {
            const json_t *job = json_object_get(json_object_get(s, "run"), "job");
            const char *task = json_string_value(json_object_get(job, "SLURM_ARRAY_TASK_ID"));
            if (task)
                printf("  %s: %s (task %s)\n", id, status, task);
            else
                printf("  %s: %s\n", id, status);
            fflush(stdout);
        }
    }
    json_decref(doc);
}

static void sleep_ms(int ms)
{
    for (int t = 0; t < ms / 50 && !study_stop_requested; t++)
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
}

/* Follows the jobs to the merge job's end: the merged study's exit code. */
static int follow(struct study *st, const char *array_id, const char *merge_id)
{
    json_t *seen = json_object();
    int fails = 0, rc = TB_EXIT_OK;
    for (;;) {
        print_progress(st, seen);
        char *state = job_state(merge_id);
        fails = state ? 0 : fails + 1;
        bool over = state && job_over(state);
        free(state);
        if (over)
            break;
        if (fails >= SLURM_SQUEUE_FAILS) {
            log_error("study: squeue failed %d times in a row; the jobs %s and %s go on; fold "
                      "what they measured with testbench study --merge %s",
                      fails, array_id, merge_id, st->dir);
            rc = TB_EXIT_RUNTIME;
            break;
        }
        sleep_ms(SLURM_POLL_MS);
        if (study_stop_requested) {
            rc = TB_EXIT_INTERRUPTED;
            break;
        }
    }
    json_decref(seen);
    if (rc == TB_EXIT_INTERRUPTED) {
        const char *argv[] = {"scancel", array_id, merge_id, NULL};
        char *line = scale_argv_line(argv);
        if (st->args.cancel && scale_run(argv, NULL) == 0) {
            log_warn("study: cancelled the jobs (%s); what they measured stays in the fragments: "
                     "testbench study --merge %s",
                     line, st->dir);
        } else {
            log_warn("study: the jobs stay queued and go on; cancel them with: %s", line);
        }
        free(line);
        return rc;
    }
    if (rc)
        return rc;
    /* The merge job's study files, as the report will read them. */
    char err[512];
    json_t *doc = NULL;
    if (study_files_read(st->dir, &doc, err, sizeof(err))) {
        log_error("study: %s", err);
        return TB_EXIT_RUNTIME;
    }
    json_decref(st->doc);
    st->doc = doc;
    size_t left = 0;
    free(scale_pending(st, &left));
    if (!st->args.quiet)
        study_print_guidance(st);
    if (left) {
        log_warn("study: %zu launched setup%s not finished (see %s/manifest.json); resubmit "
                 "them with: testbench study --resume %s --executor slurm",
                 left, left == 1 ? " is" : "s are", st->dir, st->dir);
        return TB_EXIT_RUNTIME;
    }
    return TB_EXIT_OK;
}

int scale_slurm_run(struct study *st)
{
    size_t n = 0;
    size_t *k = scale_pending(st, &n);
    int rc = TB_EXIT_OK;
    char *abs = realpath(st->dir, NULL);
    char *out = st->args.emit ? xstrdup(st->args.emit) : xasprintf("%s/slurm", abs ? abs : st->dir);
    free(abs);
    if (!n) {
        if (!st->args.quiet)
            printf("\nevery launched setup is final: nothing to submit\n");
        goto done;
    }
    if (fs_mkdir_p(out) || write_scripts(st, out, k, n)) {
        log_error("study: cannot write the Slurm scripts into %s", out);
        rc = TB_EXIT_RUNTIME;
        goto done;
    }
    char *array = array_spec(k, n, st->cfg.study.slurm.max_parallel);
    if (st->args.emit) {
        if (!st->args.quiet)
            printf("\nSlurm scripts for %zu setup%s (array %s) in %s:\n"
                   "  id=$(sbatch --parsable %s/study.sbatch)\n"
                   "  sbatch --dependency=afterany:$id %s/merge.sbatch\n",
                   n, n == 1 ? "" : "s", array, out, out, out);
        free(array);
        goto done;
    }
    /* The merge job takes the folder's lock: from here on the study files are its. */
    st->hands_off = true;
    study_unlock(st);
    char *script = xasprintf("%s/study.sbatch", out), *merge = xasprintf("%s/merge.sbatch", out);
    char *array_id = submit(script, NULL);
    char *merge_id = array_id ? submit(merge, array_id) : NULL;
    if (array_id && !merge_id) {
        const char *argv[] = {"scancel", array_id, NULL};
        (void)scale_run(argv, NULL);
    }
    if (merge_id) {
        record_jobs(out, array_id, merge_id, array);
        if (!st->args.quiet) {
            printf("\nsubmitted array job %s (%zu setup%s, array %s) and merge job %s\n"
                   "  follow:  squeue -j %s,%s   (or testbench study --merge %s at any time)\n"
                   "  cancel:  scancel %s %s\n",
                   array_id, n, n == 1 ? "" : "s", array, merge_id, array_id, merge_id, st->dir,
                   array_id, merge_id);
            fflush(stdout);
        }
        rc = st->args.wait ? follow(st, array_id, merge_id) : TB_EXIT_OK;
    } else {
        rc = TB_EXIT_RUNTIME;
    }
    free(array_id);
    free(merge_id);
    free(script);
    free(merge);
    free(array);
done:
    free(out);
    free(k);
    return rc;
}
