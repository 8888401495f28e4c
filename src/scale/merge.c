/*
 * merge.c - `study --merge DIR [--wait]`: the shards' fragments folded into study.json, .csv and
 * manifest.json under the folder's lock (scale.h). Idempotent: a fragment is folded only when it
 * is newer than what study.json holds of its setup, and the files are rewritten only when that
 * changed anything; setups no shard has finished stay as they are (pending, measuring,
 * interrupted). With --wait it folds every few seconds until every launched setup is final
 * (the Kubernetes merge Job, which cannot wait on the other Job itself).
 */
#include "scale/scale.h"
#include "scale/scale_internal.h"
#include "study/study_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/exitcode.h"
#include "core/log.h"
#include "study/study_files.h"

#define MERGE_WAIT_POLL_S 5

/* Launched setups (every setup without a launch index) that are not final. */
static size_t unfinished(const json_t *doc)
{
    const json_t *launch = json_object_get(doc, "launch_index");
    size_t n = 0, i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "setups"), i, s)
    {
        bool launched = !json_is_array(launch);
        size_t k;
        json_t *id;
        json_array_foreach(launch, k, id) launched |= json_equal(id, json_object_get(s, "id"));
        n += launched && !scale_state_final(s);
    }
    return n;
}

/* One fold: 0, or a TB_EXIT_* code; *left gets the unfinished setups. */
static int merge_once(struct study *st, size_t *left)
{
    char err[512];
    json_t *doc = NULL;
    int read = study_files_read(st->dir, &doc, err, sizeof(err));
    if (read == -ENOENT && st->args.wait) { /* no shard has seeded the folder yet */
        *left = 1;
        return TB_EXIT_OK;
    }
    if (read) {
        log_error("study: --merge %s: %s", st->dir, err);
        return TB_EXIT_USAGE;
    }
    json_t *before = json_deep_copy(doc);
    size_t folded = scale_fold(st->dir, doc);
    int rc = 0;
    if (!json_equal(before, doc)) {
        char now[64];
        clock_wall_iso(now, sizeof(now));
        json_object_set_new(doc, "updated_at", json_string(now));
        rc = study_files_write(st->dir, doc, err, sizeof(err));
        if (rc)
            log_error("study: %s", err);
    }
    *left = unfinished(doc);
    if (!st->args.quiet)
        printf("%s: %zu fragment%s folded in; %zu launched setup%s not finished\n", st->dir, folded,
               folded == 1 ? "" : "s", *left, *left == 1 ? "" : "s");
    json_decref(before);
    json_decref(doc);
    return rc ? TB_EXIT_RUNTIME : TB_EXIT_OK;
}

int scale_merge_main(const struct study_args *a)
{
    struct study st;
    memset(&st, 0, sizeof(st));
    st.lock_fd = -1;
    st.args = *a;
    st.dir = realpath(a->merge, NULL);
    if (!st.dir) {
        log_error("study: --merge %s: %s", a->merge, strerror(errno));
        return TB_EXIT_USAGE;
    }
    if (study_lock(&st)) {
        free(st.dir);
        return TB_EXIT_RUNTIME;
    }
    study_stop_requested = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = scale_on_stop;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    size_t left = 0;
    int rc = merge_once(&st, &left);
    while (!rc && a->wait && left && !study_stop_requested) {
        for (int t = 0; t < MERGE_WAIT_POLL_S * 10 && !study_stop_requested; t++)
            nanosleep(&(struct timespec){0, 100000000}, NULL);
        rc = merge_once(&st, &left);
    }
    if (!rc && study_stop_requested)
        rc = TB_EXIT_INTERRUPTED;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    study_unlock(&st);
    free(st.dir);
    return rc;
}
