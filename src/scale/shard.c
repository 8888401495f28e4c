/*
 * shard.c - a study's setups measured by separate processes without two of them ever writing
 * the same file (scale.h, docs/SCALE.md):
 *  - A setup is measured under its own lock, DIR/<id>/.lock (flock, exclusive), by a shard
 *    (`--setup-index K`, `--shard i/n`) or by a plain study; a shard never takes the folder's
 *    lock, which a plain study, a resume and `--merge` hold.
 *  - A shard writes only DIR/<id>/fragment.json of its setups (the setup's state and rows),
 *    atomically, at its start ("measuring"), after the setup and at an interruption.
 *  - Whoever holds the folder lock folds fragments into study.json. Each write of a setup's
 *    state raises its "revision"; a fragment is folded only when it is newer than study.json's
 *    state of that setup, so folding is idempotent and a fragment left behind never undoes
 *    what a later plain resume measured.
 *  - The launch index (study.json "launch_index") lists the setups to launch, in order; it is
 *    written once, so index K names the same setup for every shard and every resubmission.
 * Provenance: each setup's state keeps where and when it was measured ("run": host, pid, GPUs,
 * Slurm or Kubernetes job, start and end), and setups measured at the same time on the same
 * host are marked side by side.
 */
#include "scale/scale.h"
#include "scale/scale_internal.h"
#include "study/study_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/exitcode.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "study/study_files.h"

/* ==== Arguments ==== */

void scale_backend_gpus(struct study *st)
{
    const char *gpus = st->args.gpus;
    if (!gpus && st->bo.kind == BACKEND_DOCKER && scale_is_shard(st))
        gpus = getenv("SLURM_JOB_GPUS"); /* the physical ids Slurm gave the job */
    if (!gpus || !*gpus)
        return;
    if (st->bo.kind == BACKEND_DOCKER) {
        /* docker reads --gpus as CSV: several devices need the quotes. */
        free(st->docker_gpus);
        st->docker_gpus =
            strchr(gpus, ',') ? xasprintf("\"device=%s\"", gpus) : xasprintf("device=%s", gpus);
        st->bo.docker_gpus = st->docker_gpus;
    } else if (st->args.gpus) {
        setenv("CUDA_VISIBLE_DEVICES", gpus, 1); /* the server inherits it */
    }
}

bool scale_is_shard(const struct study *st)
{
    return st->args.setup_index >= 0 || st->args.shard_n > 0;
}

/* ==== Locks ==== */

static char *hostname_now(void)
{
    char h[256];
    if (gethostname(h, sizeof(h)) != 0)
        snprintf(h, sizeof(h), "unknown");
    h[sizeof(h) - 1] = '\0';
    return xstrdup(h);
}

/* DIR/<id>/.lock for this process: its fd, or -EBUSY after saying who holds it. */
static int lock_setup(const char *dir, const char *id)
{
    char *sub = xasprintf("%s/%s", dir, id);
    mkdir(sub, 0777);
    char *path = xasprintf("%s/.lock", sub);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        fd = -errno;
        log_error("study: cannot open %s: %s", path, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB)) {
        char who[160] = "";
        ssize_t n = pread(fd, who, sizeof(who) - 1, 0);
        who[n > 0 ? n : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
        log_error("study: setup %s is being measured by another testbench process (%s); it is "
                  "left to that one",
                  id, who[0] ? who : "unknown");
        close(fd);
        fd = -EBUSY;
    } else if (ftruncate(fd, 0) == 0) {
        char *host = hostname_now();
        dprintf(fd, "process %ld on %s\n", (long)getpid(), host);
        free(host);
    }
    free(path);
    free(sub);
    return fd;
}

static const char *state_id(const json_t *state)
{
    return json_string_value(json_object_get(state, "id"));
}

/* The doc's setups index of id, or -1. */
static long doc_setup(const json_t *doc, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "setups"), i, s)
    {
        const char *sid = state_id(s);
        if (sid && id && strcmp(sid, id) == 0)
            return (long)i;
    }
    return -1;
}

long scale_index_setup(const struct study *st, size_t k)
{
    const char *id = json_string_value(json_array_get(json_object_get(st->doc, "launch_index"), k));
    return id ? doc_setup(st->doc, id) : -1;
}

bool scale_selected(const struct study *st, size_t si)
{
    if (!st->shard)
        return true;
    return si < st->n_claim && st->claim_fd[si] >= 0;
}

int scale_claim(struct study *st, size_t si)
{
    if (st->shard || si >= st->n_claim)
        return 0;
    int fd = lock_setup(st->dir, st->setups[si].id);
    if (fd < 0)
        return fd;
    st->claim_fd[si] = fd;
    return 0;
}

void scale_release(struct study *st, size_t si)
{
    if (st->shard || si >= st->n_claim || st->claim_fd[si] < 0)
        return;
    close(st->claim_fd[si]);
    st->claim_fd[si] = -1;
}

void scale_release_all(struct study *st)
{
    for (size_t i = 0; i < st->n_claim; i++)
        if (st->claim_fd[i] >= 0)
            close(st->claim_fd[i]);
    free(st->claim_fd);
    st->claim_fd = NULL;
    st->n_claim = 0;
}

/* A shard's setups: launch_index[K], or every K with K % n == i. */
static int claim_shard(struct study *st)
{
    const json_t *launch = json_object_get(st->doc, "launch_index");
    if (!json_is_array(launch)) {
        log_error("study: %s has no launch index; prepare it first: testbench study --resume %s "
                  "--prepare",
                  st->dir, st->dir);
        return TB_EXIT_USAGE;
    }
    size_t n = json_array_size(launch);
    if (st->args.setup_index >= 0 && (size_t)st->args.setup_index >= n) {
        log_error("study: --setup-index %d: %s launches %zu setup%s (indices 0 to %zu)",
                  st->args.setup_index, st->dir, n, n == 1 ? "" : "s", n ? n - 1 : 0);
        return TB_EXIT_USAGE;
    }
    st->shard = true;
    for (size_t k = 0; k < n; k++) {
        bool mine = st->args.setup_index >= 0
                        ? k == (size_t)st->args.setup_index
                        : k % (size_t)st->args.shard_n == (size_t)st->args.shard_i;
        long si = mine ? scale_index_setup(st, k) : -1;
        if (mine && si < 0) {
            log_error("study: %s: launch_index[%zu] names no setup of the study", st->dir, k);
            return TB_EXIT_USAGE;
        }
        if (si < 0)
            continue;
        int fd = lock_setup(st->dir, json_string_value(json_array_get(launch, k)));
        if (fd < 0)
            return TB_EXIT_RUNTIME;
        st->claim_fd[si] = fd;
    }
    return TB_EXIT_OK;
}

int scale_open(struct study *st)
{
    size_t n = json_array_size(json_object_get(st->doc, "setups"));
    st->claim_fd = xcalloc(n ? n : 1, sizeof(*st->claim_fd));
    st->n_claim = n;
    for (size_t i = 0; i < n; i++)
        st->claim_fd[i] = -1;
    if (scale_is_shard(st)) {
        int rc = claim_shard(st);
        if (rc)
            return rc;
    }
    /* After the locks: a shard's own fragment cannot change under it now. */
    size_t folded = scale_fold(st->dir, st->doc);
    if (folded && !st->args.quiet && !st->shard)
        printf("%zu setup fragment%s folded in\n", folded, folded == 1 ? "" : "s");
    return TB_EXIT_OK;
}

/* ==== Fragments ==== */

bool scale_state_final(const json_t *state)
{
    const char *s = json_string_value(json_object_get(state, "status"));
    if (!s)
        return false;
    if (strcmp(s, "done") == 0 || strcmp(s, "does_not_fit") == 0 || strcmp(s, "crashed") == 0)
        return true;
    if (strcmp(s, "failed_to_start") != 0)
        return false;
    const char *c = json_string_value(json_object_get(state, "start_class"));
    return !c || strcmp(c, "error") != 0;
}

static json_int_t revision(const json_t *state)
{
    return json_integer_value(json_object_get(state, "revision"));
}

/* A fragment read back: {"setup": {...}, "rows": [...]}, or NULL with a warning. */
static json_t *fragment_read(const char *dir, const char *id)
{
    char *path = xasprintf("%s/%s/%s", dir, id, SCALE_FRAGMENT);
    json_error_t je;
    json_t *f = NULL;
    if (access(path, F_OK) == 0) {
        f = json_load_file(path, 0, &je);
        const json_t *setup = json_object_get(f, "setup");
        if (!f) {
            log_warn("study: %s: %s (line %d): not folded in", path, je.text, je.line);
        } else if (!json_is_object(setup) || !json_is_array(json_object_get(f, "rows")) ||
                   !state_id(setup) || strcmp(state_id(setup), id) != 0) {
            log_warn("study: %s is not a fragment of setup %s: not folded in", path, id);
            json_decref(f);
            f = NULL;
        }
    }
    free(path);
    return f;
}

/* The setup's state and rows in doc replaced by the fragment's. */
static void fold_one(json_t *doc, size_t si, const json_t *frag)
{
    json_t *setups = json_object_get(doc, "setups");
    const char *id = state_id(json_array_get(setups, si));
    json_t *rows = json_object_get(doc, "rows");
    for (size_t i = json_array_size(rows); i-- > 0;) {
        const char *rid = json_string_value(json_object_get(json_array_get(rows, i), "setup"));
        if (rid && strcmp(rid, id) == 0)
            json_array_remove(rows, i);
    }
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(frag, "rows"), i, r) json_array_append(rows, r);
    json_array_set(setups, si, json_object_get(frag, "setup"));
}

/* Rows grouped by their setup's place in the study, each setup's in the order written:
 * study.csv reads the same whatever order the shards ended in. */
static void rows_in_setup_order(json_t *doc)
{
    json_t *rows = json_object_get(doc, "rows"), *sorted = json_array();
    size_t si, i;
    json_t *s, *r;
    json_array_foreach(json_object_get(doc, "setups"), si, s)
    {
        json_array_foreach(rows, i, r)
        {
            const char *rid = json_string_value(json_object_get(r, "setup"));
            if (rid && state_id(s) && strcmp(rid, state_id(s)) == 0)
                json_array_append(sorted, r);
        }
    }
    json_array_foreach(rows, i, r)
    {
        if (doc_setup(doc, json_string_value(json_object_get(r, "setup"))) < 0)
            json_array_append(sorted, r); /* a setup the study no longer has: kept, last */
    }
    json_object_set_new(doc, "rows", sorted);
}

size_t scale_fold(const char *dir, json_t *doc)
{
    size_t folded = 0;
    json_t *setups = json_object_get(doc, "setups");
    for (size_t si = 0; si < json_array_size(setups); si++) {
        json_t *state = json_array_get(setups, si);
        const char *id = state_id(state);
        json_t *frag = id ? fragment_read(dir, id) : NULL;
        if (frag && revision(json_object_get(frag, "setup")) > revision(state)) {
            fold_one(doc, si, frag);
            folded++;
        }
        json_decref(frag);
    }
    if (folded)
        rows_in_setup_order(doc);
    scale_mark_side_by_side(doc);
    return folded;
}

static json_t *fragment_of(const struct study *st, size_t si)
{
    json_t *state = study_setup_state((struct study *)st, si);
    const char *id = state_id(state);
    json_t *rows = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(st->doc, "rows"), i, r)
    {
        const char *rid = json_string_value(json_object_get(r, "setup"));
        if (rid && strcmp(rid, id) == 0)
            json_array_append(rows, r);
    }
    char now[64];
    clock_wall_iso(now, sizeof(now));
    return json_pack("{s:i, s:s, s:s, s:O, s:o}", "schema_version", 1, "study", st->name,
                     "written_at", now, "setup", state, "rows", rows);
}

/* Each write of a setup's state by the process that holds it is newer than any before. */
static void bump(struct study *st, size_t si)
{
    json_t *state = study_setup_state(st, si);
    json_object_set_new(state, "revision", json_integer(revision(state) + 1));
}

int scale_fragments_write(struct study *st)
{
    int rc = 0;
    for (size_t si = 0; si < st->n_claim && si < st->n_setups; si++) {
        if (st->claim_fd[si] < 0)
            continue;
        bump(st, si);
        json_t *f = fragment_of(st, si);
        char *sub = xasprintf("%s/%s", st->dir, st->setups[si].id);
        char err[512];
        int w = study_files_write_json(sub, SCALE_FRAGMENT, f, err, sizeof(err));
        if (w) {
            log_error("study: %s", err);
            rc = w;
        }
        free(sub);
        json_decref(f);
    }
    return rc;
}

void scale_before_save(struct study *st)
{
    for (size_t si = 0; si < st->n_claim && si < st->n_setups; si++)
        if (st->claim_fd[si] >= 0)
            bump(st, si);
    rows_in_setup_order(st->doc);
    scale_mark_side_by_side(st->doc);
}

/* ==== Provenance ==== */

/* Wall-clock milliseconds: intervals compared across processes of one host. */
static json_int_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The job this process runs in, as its scheduler names it. */
static json_t *job_json(void)
{
    static const char *const slurm[] = {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                                        "SLURM_JOB_NODELIST"};
    json_t *j = json_object();
    for (size_t i = 0; i < sizeof(slurm) / sizeof(slurm[0]); i++)
        if (getenv(slurm[i]))
            json_object_set_new(j, slurm[i], json_string(getenv(slurm[i])));
    if (getenv("JOB_COMPLETION_INDEX")) {
        json_object_set_new(j, "JOB_COMPLETION_INDEX", json_string(getenv("JOB_COMPLETION_INDEX")));
        if (getenv("HOSTNAME")) /* a pod's name */
            json_object_set_new(j, "pod", json_string(getenv("HOSTNAME")));
    }
    return j;
}

void scale_setup_begin(struct study *st, size_t si)
{
    json_t *state = study_setup_state(st, si);
    char now[64];
    clock_wall_iso(now, sizeof(now));
    char *host = hostname_now();
    const char *gpus = st->args.gpus ? st->args.gpus : getenv("CUDA_VISIBLE_DEVICES");
    json_t *run =
        json_pack("{s:s, s:i, s:s?, s:s, s:I, s:o}", "host", host, "pid", (int)getpid(), "gpus",
                  gpus, "started_at", now, "started_unix_ms", unix_ms(), "job", job_json());
    if (st->args.parallel > 0 || scale_is_shard(st))
        json_object_set_new(run, "shard", json_true());
    json_object_set_new(state, "run", run);
    json_object_set_new(state, "status", json_string("measuring"));
    json_object_set_new(state, "reason", json_null());
    free(host);
    if (st->shard && scale_fragments_write(st))
        log_warn("study: the fragment of %s could not be written at its start", st->setups[si].id);
}

void scale_setup_end(struct study *st, size_t si)
{
    json_t *run = json_object_get(study_setup_state(st, si), "run");
    char now[64];
    clock_wall_iso(now, sizeof(now));
    json_object_set_new(run, "ended_at", json_string(now));
    json_object_set_new(run, "ended_unix_ms", json_integer(unix_ms()));
}

/* ==== Side by side ==== */

static bool run_interval(const json_t *state, const char **host, json_int_t *from, json_int_t *to)
{
    const json_t *run = json_object_get(state, "run");
    *host = json_string_value(json_object_get(run, "host"));
    *from = json_integer_value(json_object_get(run, "started_unix_ms"));
    const json_t *end = json_object_get(run, "ended_unix_ms");
    const char *status = json_string_value(json_object_get(state, "status"));
    /* Still measuring: until now. Ended without a time (killed): its start only. */
    *to = json_is_integer(end)                         ? json_integer_value(end)
          : status && strcmp(status, "measuring") == 0 ? unix_ms()
                                                       : *from;
    return *host && *from > 0;
}

void scale_mark_side_by_side(json_t *doc)
{
    json_t *setups = json_object_get(doc, "setups");
    size_t n = json_array_size(setups);
    for (size_t a = 0; a < n; a++) {
        json_t *sa = json_array_get(setups, a);
        const char *ha, *hb;
        json_int_t fa, ta, fb, tb;
        json_t *with = json_array();
        char *joined = NULL;
        if (run_interval(sa, &ha, &fa, &ta)) {
            for (size_t b = 0; b < n; b++) {
                const json_t *sb = json_array_get(setups, b);
                if (b == a || !run_interval(sb, &hb, &fb, &tb) || strcmp(ha, hb) != 0 ||
                    !(fa < tb && fb < ta))
                    continue;
                json_array_append_new(with, json_string(state_id(sb)));
                char *next =
                    xasprintf("%s%s%s", joined ? joined : "", joined ? ";" : "", state_id(sb));
                free(joined);
                joined = next;
            }
        }
        if (json_array_size(with))
            json_object_set(sa, "side_by_side_with", with);
        else
            json_object_del(sa, "side_by_side_with");
        json_decref(with);
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(doc, "rows"), i, r)
        {
            const char *rid = json_string_value(json_object_get(r, "setup"));
            if (rid && state_id(sa) && strcmp(rid, state_id(sa)) == 0)
                json_object_set_new(r, "side_by_side", json_string_or_null(joined));
        }
        free(joined);
    }
}

/* ==== The launch index ==== */

/* Launched when one workload fits (as study_run_setup decides), or with --force. */
static bool launchable(struct study *st, size_t si)
{
    if (st->args.force)
        return true;
    for (size_t wi = 0; wi < st->n_wl; wi++) {
        struct plan_prediction p;
        int prompt, output, context;
        study_predict(st, si, wi, st->cfg.study.users.v[0], &p, &prompt, &output, &context);
        if (p.fits)
            return true;
    }
    return false;
}

int scale_prepare(struct study *st)
{
    if (json_is_array(json_object_get(st->doc, "launch_index")))
        return TB_EXIT_OK; /* written once: K keeps naming the same setup */
    json_t *index = json_array();
    for (size_t si = 0; si < st->n_setups && !study_stop_requested; si++) {
        if (launchable(st, si)) {
            json_array_append_new(index, json_string(st->setups[si].id));
        } else if (!study_setup_final(st, study_setup_state(st, si))) {
            int rc = study_run_setup(st, si); /* recorded as not fitting; nothing starts */
            if (rc) {
                json_decref(index);
                return rc;
            }
        }
    }
    if (study_stop_requested) {
        json_decref(index);
        return TB_EXIT_INTERRUPTED;
    }
    json_object_set_new(st->doc, "launch_index", index);
    return study_save(st) ? TB_EXIT_RUNTIME : TB_EXIT_OK;
}

size_t *scale_pending(struct study *st, size_t *n)
{
    const json_t *launch = json_object_get(st->doc, "launch_index");
    size_t *out = xcalloc(json_array_size(launch) + 1, sizeof(*out));
    *n = 0;
    for (size_t k = 0; k < json_array_size(launch); k++) {
        long si = scale_index_setup(st, k);
        if (si >= 0 && !study_setup_final(st, study_setup_state(st, (size_t)si)))
            out[(*n)++] = k;
    }
    return out;
}
