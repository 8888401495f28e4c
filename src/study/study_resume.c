/*
 * study_resume.c - a study folder taken up again (`study --resume DIR`) without losing or
 * mixing anything. The rules (docs/STUDY.md "Resuming"):
 *  - One process per folder: an exclusive lock on DIR/.lock (a new study takes it too), so two
 *    resumes never measure the same setups at once or overwrite each other's files.
 *  - The study as it began: the backend, calibration profile and --force recorded in
 *    study.json are used again, and said so; a different --backend or --calibration is refused
 *    unless --allow-backend-change says it is meant (the answer would mix two kinds of server).
 *    Relative paths resolve against the working folder recorded when the study began. A study
 *    file whose definition (GPU, users, search, setups, workloads, SLO) differs from the
 *    recorded one is refused, naming the first difference: the folder would otherwise hold
 *    two studies under one name.
 *  - Nothing measured is lost: a finished setup is skipped; an unfinished one keeps the points
 *    it measured (they are reused, not measured again); a row read back that lacks what a row
 *    must have is dropped with a warning and its setup measured again.
 *  - A failure that may pass is retried: a start-up error on our side (a template, a program
 *    not on PATH, a busy port) always; a crashed or timed-out start, a server that died while
 *    measured, and a setup whose probes all failed, with --retry-failed. oom and kv_too_small
 *    are the server's answer and stay.
 */
#include "study/study_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/exitcode.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "scale/scale.h"
#include "study/study_files.h"

/* ==== The lock ==== */

int study_lock(struct study *st)
{
    char *path = xasprintf("%s/.lock", st->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
        log_error("study: cannot open %s: %s", path, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB)) {
        rc = -errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        log_error("study: %s is in use by another testbench study (process %s): one process "
                  "per study folder; wait for it to end or stop it, then --resume",
                  st->dir, pid[0] ? pid : "unknown");
        close(fd);
        fd = -1;
    } else if (ftruncate(fd, 0) == 0) {
        dprintf(fd, "%ld\n", (long)getpid());
    }
    free(path);
    st->lock_fd = fd;
    return rc;
}

void study_unlock(struct study *st)
{
    if (st->lock_fd > 0)
        close(st->lock_fd); /* releases the flock */
    st->lock_fd = -1;
}

/* ==== What the study was started with ==== */

json_t *study_invocation(const struct study *st)
{
    char cwd[PATH_MAX];
    char *cal = st->args.calibration ? realpath(st->args.calibration, NULL) : NULL;
    json_t *inv = json_pack("{s:s, s:s?, s:b, s:b, s:s?, s:s?}", "backend", st->backend_type,
                            "calibration", cal ? cal : st->args.calibration, "force",
                            st->args.force, "retry_failed", st->args.retry_failed, "cwd",
                            getcwd(cwd, sizeof(cwd)) ? cwd : NULL, "endpoint", st->args.endpoint);
    free(cal);
    return inv;
}

/* "a" and "b" as one short line each, for a message. */
static void json_brief(const json_t *v, char *out, size_t len)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(out, len, "%s", s ? s : "(none)");
    if (s && strlen(s) >= len && len > 4)
        memcpy(out + len - 4, "...", 4);
    free(s);
}

/* Same file or path? Both resolved where they exist. */
static bool same_path(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    bool same = strcmp(ra ? ra : a, rb ? rb : b) == 0;
    free(ra);
    free(rb);
    return same;
}

/* The recorded backend and calibration, unless the command line names others, which is
 * refused without --allow-backend-change. */
static int apply_recorded_backend(struct study *st, const json_t *inv)
{
    const char *rec = json_string_value(json_object_get(st->doc, "backend"));
    const json_t *rec_cal_j = json_object_get(inv, "calibration");
    const char *rec_cal = json_string_value(rec_cal_j);
    bool allow = st->args.allow_backend_change;
    if (rec && st->args.backend && strcmp(rec, st->args.backend) != 0 && !allow) {
        log_error("study: %s was measured on the %s backend; --backend %s would measure the rest "
                  "on another kind of server and mix both in one answer. Resume without "
                  "--backend, or add --allow-backend-change if that is what you want",
                  st->dir, rec, st->args.backend);
        return -EINVAL;
    }
    if (inv && st->args.calibration && !same_path(rec_cal, st->args.calibration) && !allow) {
        log_error("study: %s was planned %s%s; --calibration %s would plan the rest otherwise. "
                  "Resume without --calibration, or add --allow-backend-change",
                  st->dir,
                  rec_cal ? "with the calibration profile "
                          : "without a calibration "
                            "profile",
                  rec_cal ? rec_cal : "", st->args.calibration);
        return -EINVAL;
    }
    if (!st->args.backend && rec)
        st->args.backend = st->resume_backend = xstrdup(rec);
    if (!st->args.calibration && rec_cal)
        st->args.calibration = st->resume_calibration = xstrdup(rec_cal);
    const char *rec_ep = json_string_value(json_object_get(inv, "endpoint"));
    if (!st->args.endpoint && rec_ep)
        st->args.endpoint = st->resume_endpoint = xstrdup(rec_ep);
    if (json_is_true(json_object_get(inv, "force")))
        st->args.force = true;
    return 0;
}

/* Relative paths in the study file (workloads, datasets) resolve against the folder the study
 * began in, wherever --resume is typed. */
static void enter_recorded_cwd(struct study *st, const json_t *inv)
{
    const char *rec = json_string_value(json_object_get(inv, "cwd"));
    char cwd[PATH_MAX];
    if (!rec || !getcwd(cwd, sizeof(cwd)) || strcmp(cwd, rec) == 0)
        return;
    if (chdir(rec) == 0) {
        if (!st->args.quiet)
            printf("relative paths resolve against %s, where the study began\n", rec);
    } else {
        log_warn("study: cannot enter %s, where the study began (%s): relative paths in the "
                 "study file resolve against %s",
                 rec, strerror(errno), cwd);
    }
}

int study_resume_begin(struct study *st, char **config_path)
{
    char err[512];
    *config_path = NULL;
    st->dir = realpath(st->args.resume, NULL);
    if (!st->dir) {
        log_error("study: --resume %s: %s", st->args.resume, strerror(errno));
        return TB_EXIT_USAGE;
    }
    /* A shard locks its own setups only (scale_open), never the folder. */
    if (!scale_is_shard(st) && access(st->dir, W_OK) == 0 && study_lock(st))
        return TB_EXIT_RUNTIME;
    if (study_files_read(st->dir, &st->doc, err, sizeof(err))) {
        log_error("study: --resume %s: %s", st->args.resume, err);
        return TB_EXIT_USAGE;
    }
    int opened = scale_open(st);
    if (opened)
        return opened;
    const json_t *inv = json_object_get(st->doc, "invocation");
    /* Paths from the command line are the user's, relative to where they typed them. */
    if (st->args.config)
        *config_path = realpath(st->args.config, NULL);
    if (st->args.config && !*config_path) {
        log_error("study: --config %s: %s", st->args.config, strerror(errno));
        return TB_EXIT_USAGE;
    }
    if (st->args.calibration) {
        st->resume_calibration = realpath(st->args.calibration, NULL);
        if (st->resume_calibration)
            st->args.calibration = st->resume_calibration;
    }
    if (apply_recorded_backend(st, inv))
        return TB_EXIT_USAGE;
    enter_recorded_cwd(st, inv);
    if (!*config_path) {
        const char *p = json_string_value(json_object_get(st->doc, "config_path"));
        if (!p) {
            log_error("study: %s/study.json does not name its study file; give --config", st->dir);
            return TB_EXIT_USAGE;
        }
        *config_path = xstrdup(p);
    }
    if (!st->args.quiet)
        printf("resuming %s: backend %s%s, calibration %s%s\n", st->dir,
               st->args.backend ? st->args.backend : "(the study file's)",
               st->resume_backend ? " (recorded)" : "",
               st->args.calibration ? st->args.calibration : "none",
               st->args.retry_failed ? "; retrying failed setups" : "");
    return TB_EXIT_OK;
}

/* ==== The study's definition ==== */

/* What decides the answer, in study.json's "definition": a resumed study must have the same. */
json_t *study_definition(const struct study *st)
{
    const struct study_cfg *sc = &st->cfg.study;
    json_t *users = json_array();
    for (size_t i = 0; i < sc->users.n; i++)
        json_array_append_new(users, json_integer(sc->users.v[i]));
    json_t *setups = study_setups_json(st);
    size_t i;
    json_t *s;
    json_array_foreach(setups, i, s)
    {
        json_object_del(s, "status");
        json_object_del(s, "reason");
    }
    json_t *wls = json_array();
    for (size_t w = 0; w < st->n_wl; w++) {
        json_t *c = config_to_json(&st->wcfg[w]);
        json_t *api = json_object_get(json_object_get(c, "server"), "api");
        json_t *seed = json_object_get(json_object_get(c, "benchmark"), "seed");
        json_array_append_new(
            wls, json_pack("{s:s, s:o, s:s, s:O?, s:O?, s:O?, s:O?, s:O?}", "name", st->wl[w].name,
                           "window_fill", json_real_or_null(st->wl[w].window_fill), "population",
                           st->wl[w].sessions ? "sessions" : "streams", "api", api, "seed", seed,
                           "context_lengths", json_object_get(c, "context_lengths"), "requests",
                           json_object_get(c, "requests"), "slo", json_object_get(c, "slo")));
        json_decref(c);
    }
    json_t *d =
        json_pack("{s:s, s:s?, s:o, s:b, s:i, s:i, s:i, s:o, s:o}", "gpu", sc->gpu, "catalog",
                  sc->catalog, "users", users, "capacity_search", sc->capacity_search, "max_users",
                  sc->max_users, "requests_per_user", sc->requests_per_user, "min_requests",
                  sc->min_requests, "setups", setups, "workloads", wls);
    if (sc->slo_given) {
        json_t *c = config_to_json(&st->cfg);
        json_object_set(d, "slo", json_object_get(c, "slo"));
        json_decref(c);
    }
    return d;
}

/* The first place where a and b differ, as a path ("setups[2].max_model_len"), or false.
 * Keys present on one side only are not differences: a newer version writes more keys, and a
 * key a user cannot remove (every key is written) is missing only for that reason. */
static bool json_first_difference(const json_t *a, const json_t *b, char *path, size_t len)
{
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        json_t *va;
        size_t used = strlen(path);
        json_object_foreach((json_t *)a, k, va)
        {
            json_t *vb = json_object_get(b, k);
            if (!vb)
                continue;
            snprintf(path + used, len - used, "%s%s", used ? "." : "", k);
            if (json_first_difference(va, vb, path, len))
                return true;
            path[used] = '\0';
        }
        return false;
    }
    if (json_is_array(a) && json_is_array(b)) {
        size_t used = strlen(path);
        if (json_array_size(a) != json_array_size(b))
            return true;
        for (size_t i = 0; i < json_array_size(a); i++) {
            snprintf(path + used, len - used, "[%zu]", i);
            if (json_first_difference(json_array_get(a, i), json_array_get(b, i), path, len))
                return true;
            path[used] = '\0';
        }
        return false;
    }
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) != json_number_value(b);
    return !json_equal((json_t *)a, (json_t *)b);
}

/* The value at a path json_first_difference wrote ("a.b[2].c"), or NULL. */
static const json_t *json_at(const json_t *v, const char *path)
{
    char key[128];
    while (v && *path) {
        if (*path == '.')
            path++;
        if (*path == '[') {
            char *end;
            unsigned long i = strtoul(path + 1, &end, 10);
            v = json_array_get(v, i);
            path = *end == ']' ? end + 1 : end;
            continue;
        }
        size_t n = strcspn(path, ".[");
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        v = json_object_get(v, key);
        path += n;
    }
    return v;
}

static int check_definition(struct study *st)
{
    json_t *now = study_definition(st);
    const json_t *rec = json_object_get(st->doc, "definition");
    char path[256] = "";
    int rc = 0;
    if (!rec) {
        log_warn("study: %s/study.json records no definition (an earlier version wrote it): "
                 "whether %s is the file the study began with cannot be checked",
                 st->dir, st->cfg.path);
    } else if (json_first_difference(rec, now, path, sizeof(path))) {
        char was[160], is[160];
        json_brief(json_at(rec, path), was, sizeof(was));
        json_brief(json_at(now, path), is, sizeof(is));
        log_error("study: %s does not define the study in %s: %s is %s there and %s in the "
                  "file. Resume with the study file the study began with (a copy is "
                  "%s/study.yaml), or start a new study",
                  st->cfg.path, st->dir, path, was, is, st->dir);
        rc = -EINVAL;
    }
    if (!rc)
        json_object_set_new(st->doc, "definition", now);
    else
        json_decref(now);
    return rc;
}

/* ==== Setups and rows ==== */

static const char *row_str(const json_t *row, const char *key)
{
    return json_string_value(json_object_get(row, key));
}

static bool setup_has_measured_row(const struct study *st, const char *id)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(st->doc, "rows"), i, r)
    {
        const char *status = row_str(r, "status");
        if (status && strcmp(status, "measured") == 0 && strcmp(row_str(r, "setup"), id) == 0)
            return true;
    }
    return false;
}

/* The class of a failed start: recorded, or the reason's first word ("crashed: ..."). */
static void start_class(const json_t *state, char *out, size_t len)
{
    const char *c = json_string_value(json_object_get(state, "start_class"));
    const char *reason = json_string_value(json_object_get(state, "reason"));
    if (c)
        snprintf(out, len, "%s", c);
    else
        snprintf(out, len, "%.*s", reason ? (int)strcspn(reason, ":") : 0, reason ? reason : "");
}

bool study_setup_final(const struct study *st, const json_t *state)
{
    const char *s = json_string_value(json_object_get(state, "status"));
    const char *id = json_string_value(json_object_get(state, "id"));
    if (!s || !id)
        return false;
    if (strcmp(s, "does_not_fit") == 0)
        return true;
    if (strcmp(s, "done") == 0) /* all probes failed: worth another try when asked */
        return !st->args.retry_failed || setup_has_measured_row(st, id);
    if (strcmp(s, "crashed") == 0) /* the server died while measured: its points are kept */
        return !st->args.retry_failed;
    if (strcmp(s, "failed_to_start") != 0)
        return false;
    char cls[32];
    start_class(state, cls, sizeof(cls));
    if (strcmp(cls, "error") == 0) /* ours: a template, PATH, a busy port; fixed, then retried */
        return false;
    bool passing = strcmp(cls, "crashed") == 0 || strcmp(cls, "timeout") == 0;
    return !(passing && st->args.retry_failed);
}

/* Rows read back that lack what every row has cannot be shown or compared: dropped, and
 * their setups measured again. */
static void drop_malformed_rows(struct study *st, json_t *redo)
{
    static const char *const need[] = {"setup",    "status",         "role",        "model",
                                       "workload", "kv_cache_dtype", "quantization"};
    json_t *rows = json_object_get(st->doc, "rows");
    for (size_t i = json_array_size(rows); i-- > 0;) {
        json_t *r = json_array_get(rows, i);
        const char *missing = json_is_object(r) ? NULL : "everything";
        for (size_t k = 0; !missing && k < sizeof(need) / sizeof(need[0]); k++)
            if (!json_is_string(json_object_get(r, need[k])))
                missing = need[k];
        if (!missing && !json_is_integer(json_object_get(r, "users")))
            missing = "users";
        if (!missing)
            continue;
        const char *id = json_string_value(json_object_get(r, "setup"));
        log_warn("study: %s/study.json: row %zu (setup %s) has no '%s': dropped%s", st->dir, i + 1,
                 id ? id : "unknown", missing, id ? "; its setup is measured again" : "");
        if (id)
            json_object_set_new(redo, id, json_true());
        json_array_remove(rows, i);
    }
}

/* Rows of final setups stay; an unfinished setup keeps its measured points (study_measure.c
 * reuses them) and loses the rest (interrupted or failed points, rows of a failed start). */
static void keep_rows(struct study *st)
{
    json_t *rows = json_object_get(st->doc, "rows");
    for (size_t i = json_array_size(rows); i-- > 0;) {
        json_t *r = json_array_get(rows, i);
        const char *id = row_str(r, "setup");
        bool keep = false;
        for (size_t si = 0; si < st->n_setups; si++)
            if (strcmp(st->setups[si].id, id) == 0)
                keep = study_setup_final(st, study_setup_state(st, si)) ||
                       strcmp(row_str(r, "status"), "measured") == 0;
        if (!keep)
            json_array_remove(rows, i);
    }
}

int study_resume_merge(struct study *st)
{
    if (check_definition(st))
        return TB_EXIT_USAGE;
    json_t *redo = json_object();
    drop_malformed_rows(st, redo);
    json_t *old = json_object_get(st->doc, "setups");
    json_t *fresh = study_setups_json(st);
    size_t i;
    json_t *s;
    json_array_foreach(fresh, i, s)
    {
        const char *id = json_string_value(json_object_get(s, "id"));
        for (size_t j = 0; j < json_array_size(old); j++) {
            json_t *o = json_array_get(old, j);
            if (!json_equal(json_object_get(o, "id"), json_object_get(s, "id")))
                continue;
            if (study_setup_final(st, o) && !json_object_get(redo, id)) {
                json_array_set(fresh, i, o); /* frees s: stop comparing against it */
                break;
            }
            /* Measured again, but its writes stay newer than any fragment it had (shard.c). */
            if (json_is_integer(json_object_get(o, "revision")))
                json_object_set(s, "revision", json_object_get(o, "revision"));
            if (!st->args.quiet && json_is_string(json_object_get(o, "reason"))) {
                printf("%s: %s earlier (%s): measured again\n", id,
                       json_string_value(json_object_get(o, "status")),
                       json_string_value(json_object_get(o, "reason")));
            }
            break;
        }
    }
    json_decref(redo);
    json_object_set_new(st->doc, "setups", fresh);
    keep_rows(st);
    return TB_EXIT_OK;
}
