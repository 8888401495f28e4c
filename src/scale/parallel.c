/*
 * parallel.c - `study --parallel N`: one box, several GPUs. The prepared study's unfinished
 * setups run as child shard processes (`testbench study --resume DIR --setup-index K --gpus
 * LIST`), at most N at once, each with GPUs of backend.gpu_ids no other running setup has
 * (backend.gpus_per_setup, default the setup's tensor_parallel_size). This process keeps the
 * folder's lock and folds each child's fragment into the study files as the child ends. The
 * order is the launch index's: a setup that needs more GPUs than are free waits for them (no
 * setup overtakes it, so the order of results is the same on every run).
 */
#include "scale/scale.h"
#include "scale/scale_internal.h"
#include "study/study_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/exitcode.h"
#include "core/log.h"

struct child {
    pid_t pid; /* 0: a free slot */
    size_t k, si;
    char *gpus; /* "0,1", or NULL */
};

static int gpus_needed(const struct study *st, size_t si)
{
    int per = st->cfg.study.backend.gpus_per_setup;
    int tp = st->setups[si].tensor_parallel_size;
    return per > 0 ? per : tp > 0 ? tp : 1;
}

/* Every setup must fit on the listed GPUs, and servers side by side need ports of their own. */
static int check_plan(const struct study *st, const size_t *pending, size_t n)
{
    const struct int_list *ids = &st->cfg.study.backend.gpu_ids;
    for (size_t i = 0; ids->n && i < n; i++) {
        size_t si = (size_t)scale_index_setup(st, pending[i]);
        if ((size_t)gpus_needed(st, si) > ids->n) {
            log_error("study: setup %s needs %d GPUs and backend.gpu_ids lists %zu",
                      st->setups[si].id, gpus_needed(st, si), ids->n);
            return TB_EXIT_USAGE;
        }
    }
    if (st->args.parallel > 1 && st->bo.port != 0 && st->bo.kind != BACKEND_NONE) {
        log_error("study: --parallel %d with backend.port %d: servers side by side cannot share a "
                  "port; set backend.port: 0 (a free port each)",
                  st->args.parallel, st->bo.port);
        return TB_EXIT_USAGE;
    }
    if (st->args.parallel > 1 && st->bo.kind == BACKEND_NONE) {
        log_error("study: --parallel with the none backend would measure one server from "
                  "several setups at once");
        return TB_EXIT_USAGE;
    }
    return TB_EXIT_OK;
}

/* GPUs for setup si from the free ones ("0,1", owned), NULL when there are not enough (or
 * none are listed: then *ok is still true). */
static char *take_gpus(const struct study *st, size_t si, bool *busy, bool *ok)
{
    const struct int_list *ids = &st->cfg.study.backend.gpu_ids;
    *ok = true;
    if (!ids->n)
        return NULL;
    int need = gpus_needed(st, si), have = 0;
    for (size_t g = 0; g < ids->n; g++)
        have += !busy[g];
    if (have < need) {
        *ok = false;
        return NULL;
    }
    char *list = xstrdup("");
    for (size_t g = 0; g < ids->n && need > 0; g++) {
        if (busy[g])
            continue;
        busy[g] = true;
        need--;
        char *next = xasprintf("%s%s%d", list, *list ? "," : "", ids->v[g]);
        free(list);
        list = next;
    }
    return list;
}

static void give_gpus(const struct study *st, const char *list, bool *busy)
{
    const struct int_list *ids = &st->cfg.study.backend.gpu_ids;
    for (const char *p = list; p && *p;) {
        int id = atoi(p);
        for (size_t g = 0; g < ids->n; g++)
            if (ids->v[g] == id)
                busy[g] = false;
        p = strchr(p, ',');
        p = p ? p + 1 : NULL;
    }
}

static pid_t start_child(struct study *st, struct child *c)
{
    char kbuf[32];
    snprintf(kbuf, sizeof(kbuf), "%zu", c->k);
    const char *argv[12];
    size_t n = 0;
    argv[n++] = st->self_exe;
    argv[n++] = "study";
    argv[n++] = "--resume";
    argv[n++] = st->dir;
    argv[n++] = "--setup-index";
    argv[n++] = kbuf;
    if (c->gpus) {
        argv[n++] = "--gpus";
        argv[n++] = c->gpus;
    }
    if (st->args.retry_failed)
        argv[n++] = "--retry-failed";
    argv[n] = NULL;
    char *log = xasprintf("%s/%s/shard.log", st->dir, st->setups[c->si].id);
    char *sub = xasprintf("%s/%s", st->dir, st->setups[c->si].id);
    mkdir(sub, 0777);
    pid_t pid = scale_spawn(argv, log, NULL);
    if (pid > 0 && !st->args.quiet)
        printf("  [%zu] %s: started (process %ld%s%s), log %s\n", c->k, st->setups[c->si].id,
               (long)pid, c->gpus ? ", GPUs " : "", c->gpus ? c->gpus : "", log);
    free(sub);
    free(log);
    return pid;
}

/* A child ended: its fragment folded into the study files, its GPUs free again. */
static int child_ended(struct study *st, struct child *c, int status, bool *busy)
{
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    scale_fold(st->dir, st->doc);
    int rc = study_save(st) ? TB_EXIT_RUNTIME : TB_EXIT_OK;
    const json_t *state = study_setup_state(st, c->si);
    if (!st->args.quiet)
        printf("  [%zu] %s: %s (exit %d)\n", c->k, st->setups[c->si].id,
               json_string_value(json_object_get(state, "status")), code);
    if (code != 0 && code != TB_EXIT_INTERRUPTED) {
        log_warn("study: the shard of %s ended with exit code %d; see %s/%s/shard.log",
                 st->setups[c->si].id, code, st->dir, st->setups[c->si].id);
        rc = rc ? rc : TB_EXIT_RUNTIME;
    }
    give_gpus(st, c->gpus, busy);
    free(c->gpus);
    memset(c, 0, sizeof(*c));
    return rc;
}

static void stop_children(struct child *kids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (kids[i].pid > 0)
            kill(kids[i].pid, SIGTERM); /* each stops its server and writes its fragment */
}

int scale_parallel_run(struct study *st)
{
    size_t n_pending = 0, next = 0, running = 0;
    size_t *pending = scale_pending(st, &n_pending);
    int rc = check_plan(st, pending, n_pending);
    size_t slots = (size_t)st->args.parallel;
    struct child *kids = xcalloc(slots, sizeof(*kids));
    bool *busy = xcalloc(st->cfg.study.backend.gpu_ids.n + 1, sizeof(*busy));
    bool stopping = false;
    int failed = 0; /* a child's failure: the others go on, the exit code says so */
    if (!rc && !st->args.quiet)
        printf("\n%zu setup%s to measure, %zu at a time\n", n_pending, n_pending == 1 ? "" : "s",
               slots);
    while (!rc || running) {
        while (!rc && !study_stop_requested && running < slots && next < n_pending) {
            struct child *c = kids;
            while (c->pid)
                c++;
            c->k = pending[next];
            c->si = (size_t)scale_index_setup(st, c->k);
            bool ok;
            c->gpus = take_gpus(st, c->si, busy, &ok);
            if (!ok)
                break; /* wait for GPUs */
            c->pid = start_child(st, c);
            if (c->pid < 0) {
                rc = TB_EXIT_RUNTIME;
                give_gpus(st, c->gpus, busy);
                free(c->gpus);
                memset(c, 0, sizeof(*c));
                break;
            }
            running++;
            next++;
        }
        if (!running)
            break;
        if (study_stop_requested && !stopping) {
            stopping = true;
            stop_children(kids, slots);
        }
        int status;
        pid_t p = waitpid(-1, &status, 0);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (size_t i = 0; i < slots; i++) {
            if (kids[i].pid != p)
                continue;
            failed = child_ended(st, &kids[i], status, busy) ? TB_EXIT_RUNTIME : failed;
            running--;
        }
        if (!rc && next == n_pending && !running)
            break;
    }
    if (!rc && study_stop_requested)
        rc = TB_EXIT_INTERRUPTED;
    rc = rc ? rc : failed;
    free(busy);
    free(kids);
    free(pending);
    return rc;
}
