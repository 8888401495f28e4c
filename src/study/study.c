/*
 * study.c - `testbench study` (study.h). The order of work is what makes it cheap:
 *   1. plan every setup x workload (milliseconds) and print the predicted answer;
 *   2. per setup: a setup the plan says does not fit is recorded, not launched (--force
 *      launches anyway); otherwise the backend starts it, its own start-up figures are read,
 *      each workload is measured at the study's user counts and searched for the most users
 *      within the SLO (starting from the plan's answer, so few points are measured), and the
 *      server is stopped;
 *   3. after every setup the study files are rewritten, so Ctrl-C, a crash or --resume lose
 *      nothing finished.
 * Every probe is an ordinary run (runner/run.h) with its own result files.
 */
#include "study/study.h"
#include "study/study_internal.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/exitcode.h"
#include "core/jsonx.h"
#include "core/log.h"
#include "core/version.h"
#include "scale/scale.h"
#include "study/backend_internal.h"
#include "study/study_files.h"

volatile sig_atomic_t study_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    study_stop_requested = 1;
}

/* The same start failure three setups in a row (the image is missing, the driver is wrong)
 * will fail every remaining setup the same way: stop there and say so, rather than spend the
 * rest of the study on it. */
#define SAME_FAILURE_STOP 3

struct failure_repeat {
    char what[600]; /* the last failure, the setup id taken out */
    int times;
};

static bool same_failure_again(struct study *st, size_t si, struct failure_repeat *r)
{
    const json_t *state = study_setup_state(st, si);
    const char *status = json_string_value(json_object_get(state, "status"));
    const char *reason = json_string_value(json_object_get(state, "reason"));
    const char *cls = json_string_value(json_object_get(state, "start_class"));
    /* oom and kv_too_small are answers about each setup, not a broken environment. */
    bool broken = cls && (strcmp(cls, "crashed") == 0 || strcmp(cls, "error") == 0 ||
                          strcmp(cls, "timeout") == 0);
    if (!status || strcmp(status, "failed_to_start") != 0 || !reason || !broken) {
        r->times = 0;
        return false;
    }
    char what[sizeof(r->what)];
    const char *id = st->setups[si].id;
    size_t n = 0, idlen = strlen(id);
    for (const char *p = reason; *p && n + 1 < sizeof(what);) {
        if (strncmp(p, id, idlen) == 0) { /* "testbench-s03-...": the same failure */
            p += idlen;
            continue;
        }
        what[n++] = *p++;
    }
    what[n] = '\0';
    r->times = strcmp(what, r->what) == 0 ? r->times + 1 : 1;
    snprintf(r->what, sizeof(r->what), "%s", what);
    if (r->times < SAME_FAILURE_STOP)
        return false;
    log_error("study: the last %d setups failed to start the same way (%s): the rest would too. "
              "The study stops here; fix the cause, then 'testbench study --resume %s "
              "--retry-failed' (server logs: %s/<setup id>/server.log)",
              r->times, reason, st->dir, st->dir);
    return true;
}

/* ==== Set-up ==== */

static int parse_args(int argc, char **argv, struct study_args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"resume", required_argument, NULL, 'r'},
        {"backend", required_argument, NULL, 'b'},
        {"output-dir", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},
        {"plan-only", no_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"calibration", required_argument, NULL, 'C'},
        {"retry-failed", no_argument, NULL, 'R'},
        {"allow-backend-change", no_argument, NULL, 'A'},
        /* Beyond one process: src/scale/scale.h. */
        {"prepare", no_argument, NULL, 'P'},
        {"setup-index", required_argument, NULL, 'K'},
        {"shard", required_argument, NULL, 'S'},
        {"merge", required_argument, NULL, 'M'},
        {"wait", no_argument, NULL, 'W'},
        {"parallel", required_argument, NULL, 'N'},
        {"gpus", required_argument, NULL, 'G'},
        {"executor", required_argument, NULL, 'E'},
        {"emit", required_argument, NULL, 'e'},
        {"cancel-on-interrupt", no_argument, NULL, 'X'},
        {"apply", required_argument, NULL, 1},
        {"status", required_argument, NULL, 2},
        {"collect", required_argument, NULL, 3},
        {"endpoint", required_argument, NULL, 4},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    a->setup_index = -1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:r:b:o:fpqh", opts, NULL)) != -1) {
        int sc = scale_parse_arg(c, optarg, a);
        if (sc < 0)
            return sc;
        if (sc == 0)
            continue;
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 'r':
            a->resume = optarg;
            break;
        case 'b':
            a->backend = optarg;
            break;
        case 'o':
            a->output_dir = optarg;
            break;
        case 'f':
            a->force = true;
            break;
        case 'p':
            a->plan_only = true;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 'C':
            a->calibration = optarg;
            break;
        case 'R':
            a->retry_failed = true;
            break;
        case 'A':
            a->allow_backend_change = true;
            break;
        default:
            return -EINVAL;
        }
    }
    if (optind < argc) {
        log_error("study: unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (scale_check_args(a))
        return -EINVAL;
    if (a->merge || a->k8s_action)
        return 0;
    if (!a->config && !a->resume) {
        log_error("study: --config FILE (a new study) or --resume DIR is required");
        return -EINVAL;
    }
    if (!a->resume && (a->retry_failed || a->allow_backend_change)) {
        log_error("study: --retry-failed and --allow-backend-change go with --resume DIR");
        return -EINVAL;
    }
    return 0;
}

static int backend_from_config(struct study *st)
{
    const struct study_backend_cfg *b = &st->cfg.study.backend;
    const char *type = st->args.backend ? st->args.backend : b->type;
    static const struct {
        const char *name;
        enum backend_kind kind;
    } kinds[] = {{"sim", BACKEND_SIM},
                 {"docker", BACKEND_DOCKER},
                 {"command", BACKEND_COMMAND},
                 {"none", BACKEND_NONE}};
    size_t k = 0;
    while (k < 4 && strcmp(kinds[k].name, type) != 0)
        k++;
    if (k == 4) {
        log_error("study: unknown backend '%s' (sim, docker, command, none)", type);
        return -EINVAL;
    }
    if (kinds[k].kind == BACKEND_COMMAND && !b->command) {
        log_error("study: the command backend needs backend.command in %s", st->cfg.path);
        return -EINVAL;
    }
    ssize_t n = readlink("/proc/self/exe", st->self_exe, sizeof(st->self_exe) - 1);
    st->self_exe[n > 0 ? n : 0] = '\0';
    st->bo = (struct backend_options){
        .kind = kinds[k].kind,
        .self_exe = st->self_exe,
        .sim_gpu = st->cfg.study.gpu,
        .sim_catalog = st->cfg.study.catalog,
        .sim_calibration = st->args.calibration,
        .seed = st->cfg.benchmark.seed,
        .docker_image = b->image,
        .docker_gpus = b->gpus,
        .hf_cache = b->hf_cache,
        .docker_network = b->network,
        .docker_args = (const char *const *)b->docker_args.v,
        .n_docker_args = b->docker_args.n,
        .command_template = b->command,
        .endpoint = st->args.endpoint ? st->args.endpoint
                    : b->endpoint     ? b->endpoint
                                      : st->cfg.server.endpoint,
        .port = b->port,
        .startup_timeout_s = b->startup_timeout_s,
        .stop_grace_s = b->stop_grace_s,
        .name_prefix = "testbench",
    };
    st->backend_type = type;
    scale_backend_gpus(st);
    return 0;
}

/* What would fail only after a server was launched is found before anything is: a command
 * template's unknown or unset placeholder, a workload whose name cannot begin a result file's
 * name. */
static int check_launchable(struct study *st)
{
    for (size_t si = 0; si < st->n_setups; si++) {
        struct server_setup ss;
        study_server_setup_from(&st->setups[si], &ss);
        char **argv = NULL, err[512];
        int rc = backend_argv_err(&st->bo, &ss, 8000, &argv, err, sizeof(err));
        backend_argv_free(argv);
        if (rc == -EINVAL) {
            log_error("study: %s: setup %s cannot be launched: %s", st->cfg.path, st->setups[si].id,
                      err);
            return -EINVAL;
        }
    }
    int most = st->cfg.study.max_users;
    for (size_t u = 0; u < st->cfg.study.users.n; u++)
        most = st->cfg.study.users.v[u] > most ? st->cfg.study.users.v[u] : most;
    for (size_t wi = 0; wi < st->n_wl; wi++) {
        char *prefix = xasprintf("%s_u%d", st->wl[wi].name, most);
        const char *why = config_prefix_problem(prefix);
        if (why)
            log_error("study: %s: workload name '%s' cannot name its result files: '%s' %s",
                      st->cfg.path, st->wl[wi].name, prefix, why);
        free(prefix);
        if (why)
            return -EINVAL;
    }
    return 0;
}

static int load_workloads(struct study *st)
{
    study_workloads_resolve(&st->cfg, &st->wl, &st->n_wl);
    st->wcfg = xcalloc(st->n_wl, sizeof(*st->wcfg));
    for (size_t i = 0; i < st->n_wl; i++) {
        char err[1024];
        if (config_load(&st->wcfg[i], st->wl[i].path, err, sizeof(err))) {
            log_error("study: workload %s: %s", st->wl[i].name, err);
            return -EINVAL;
        }
        if (st->wcfg[i].requests.trace.path) {
            /* A trace replays its own arrivals and lengths: it is not N users, so it has no
             * capacity to search for. Measure it with `testbench run`. */
            log_error("study: workload %s (%s) replays a trace; a study measures N users "
                      "(sessions or streams), so replay the trace with 'testbench run' instead",
                      st->wl[i].name, st->wl[i].path);
            return -EINVAL;
        }
        if (st->wcfg[i].tenants_given) {
            log_error("study: workload %s (%s) has tenants; a study measures one tenant per "
                      "server",
                      st->wl[i].name, st->wl[i].path);
            return -EINVAL;
        }
        study_workload_apply(st, i, &st->wcfg[i]);
    }
    return 0;
}

/* A new folder results/<name>_<UTC stamp>, locked for this process (a resumed one is already
 * open: study_resume_begin). */
static int open_dir(struct study *st)
{
    if (st->args.resume)
        return 0;
    const char *base = st->args.output_dir ? st->args.output_dir : st->cfg.benchmark.output_dir;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    char *cmd_dir = xstrdup(base);
    for (char *p = cmd_dir + 1; *p; p++) { /* mkdir -p */
        if (*p == '/') {
            *p = '\0';
            mkdir(cmd_dir, 0777);
            *p = '/';
        }
    }
    mkdir(cmd_dir, 0777);
    free(cmd_dir);
    for (int k = 1; k < 100; k++) {
        free(st->dir);
        st->dir = k == 1 ? xasprintf("%s/%s_%s", base, st->name, stamp)
                         : xasprintf("%s/%s_%s-%d", base, st->name, stamp, k);
        if (mkdir(st->dir, 0777) == 0)
            return study_lock(st);
        if (errno != EEXIST)
            break;
    }
    log_error("study: cannot create %s: %s", st->dir, strerror(errno));
    return -errno;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char b[8192];
    size_t n;
    while (out && (n = fread(b, 1, sizeof(b), in)) > 0)
        fwrite(b, 1, n, out);
    if (out)
        fclose(out);
    if (in)
        fclose(in);
}

/* study.json's frame: what the study is (its definition) and runs with (its invocation), every
 * setup pending; or the resumed one with its final setups and measured points kept. */
static int open_doc(struct study *st)
{
    char now[64];
    int rc = TB_EXIT_OK;
    if (st->args.resume) {
        rc = study_resume_merge(st);
    } else {
        clock_wall_iso(now, sizeof(now));
        char *abs = realpath(st->cfg.path, NULL);
        st->doc = json_pack("{s:i, s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:s, s:o, s:o}",
                            "schema_version", 1, "tool", "name", "testbench", "version", TB_VERSION,
                            "git", TB_GIT, "study", st->name, "gpu", st->cfg.study.gpu,
                            "started_at", now, "config_path", abs ? abs : st->cfg.path, "setups",
                            study_setups_json(st), "rows", json_array());
        free(abs);
        json_object_set_new(st->doc, "definition", study_definition(st));
        char *copy = xasprintf("%s/study.yaml", st->dir);
        copy_file(st->cfg.path, copy);
        free(copy);
        rc = scale_open(st);
    }
    if (!rc) {
        json_object_set_new(st->doc, "backend", json_string(st->backend_type));
        json_object_set_new(st->doc, "invocation", study_invocation(st));
    }
    return rc;
}

static int study_setup_all(struct study *st)
{
    char err[1024];
    char *resume_path = NULL;
    if (st->args.resume) {
        int ec = study_resume_begin(st, &resume_path);
        if (ec) {
            free(resume_path);
            return ec;
        }
    }
    const char *path = resume_path ? resume_path : st->args.config;
    int rc = config_load(&st->cfg, path, err, sizeof(err));
    free(resume_path);
    if (rc) {
        log_error("%s", err);
        return TB_EXIT_USAGE;
    }
    if (!st->cfg.study.present && !st->cfg.model.name) {
        log_error("study: %s has no study sections and no model.name; see docs/STUDY.md",
                  st->cfg.path);
        return TB_EXIT_USAGE;
    }
    st->name = st->cfg.study.name ? st->cfg.study.name : st->cfg.benchmark.output_prefix;
    study_setups_expand(&st->cfg, &st->setups, &st->n_setups);
    if (load_workloads(st) || backend_from_config(st) || check_launchable(st) ||
        study_check_plannable(st))
        return TB_EXIT_USAGE;
    if (st->args.plan_only) { /* nothing is written: a resumed folder's document is not kept */
        json_decref(st->doc);
        st->doc = NULL;
        return TB_EXIT_OK;
    }
    if (open_dir(st))
        return TB_EXIT_RUNTIME;
    return open_doc(st);
}

static void study_release(struct study *st);

int study_validate(const char *path)
{
    struct study st;
    memset(&st, 0, sizeof(st));
    st.lock_fd = -1;
    st.args.config = path;
    st.args.plan_only = true; /* nothing is opened or written */
    st.args.quiet = true;
    int rc = study_setup_all(&st);
    study_release(&st);
    return rc;
}

static void study_release(struct study *st)
{
    study_setups_free(st->setups, st->n_setups);
    for (size_t i = 0; st->wcfg && i < st->n_wl; i++)
        config_release(&st->wcfg[i]);
    free(st->wcfg);
    study_workloads_free(st->wl, st->n_wl);
    json_decref(st->doc);
    scale_release_all(st);
    study_unlock(st);
    free(st->dir);
    free(st->resume_backend);
    free(st->resume_calibration);
    free(st->resume_endpoint);
    free(st->docker_gpus);
    config_release(&st->cfg);
}

/* Every setup this process measures, one after another, each under its own lock; or, with
 * --prepare, --parallel or --executor, the prepared study handed to src/scale. */
static int study_measure_all(struct study *st)
{
    if (st->args.prepare || st->args.parallel || st->args.executor) {
        int rc = scale_prepare(st);
        if (!rc && st->args.prepare && !st->args.quiet) {
            size_t n = json_array_size(json_object_get(st->doc, "launch_index"));
            printf("\n%zu setup%s to launch, one process each (on any machine that sees the "
                   "folder):\n  testbench study --resume %s --setup-index K   (K = 0 to %zu)\n"
                   "then fold them in: testbench study --merge %s\n",
                   n, n == 1 ? "" : "s", st->dir, n ? n - 1 : 0, st->dir);
        }
        if (rc || st->args.prepare)
            return rc;
        if (st->args.parallel)
            return scale_parallel_run(st);
        return strcmp(st->args.executor, "slurm") == 0 ? scale_slurm_run(st) : scale_k8s_run(st);
    }
    int rc = 0;
    size_t busy = 0;
    struct failure_repeat repeat = {"", 0};
    for (size_t si = 0; si < st->n_setups && !rc; si++) {
        json_t *state = study_setup_state(st, si);
        if (!scale_selected(st, si))
            continue;
        if (study_setup_final(st, state)) {
            if (!st->args.quiet)
                printf("\n[%zu/%zu] %s: %s earlier, skipped\n", si + 1, st->n_setups,
                       st->setups[si].id, json_string_value(json_object_get(state, "status")));
            continue;
        }
        if (scale_claim(st, si)) {
            busy++;
            continue;
        }
        scale_setup_begin(st, si);
        rc = study_run_setup(st, si);
        scale_setup_end(st, si);
        if (study_save(st) && !rc)
            rc = TB_EXIT_RUNTIME;
        scale_release(st, si);
        if (!rc && same_failure_again(st, si, &repeat))
            rc = TB_EXIT_RUNTIME;
        if (!rc && study_stop_requested)
            rc = TB_EXIT_INTERRUPTED;
    }
    if (!rc && busy) {
        log_error("study: %zu setup%s measured by other processes now; fold them in when they "
                  "end: testbench study --merge %s",
                  busy, busy == 1 ? " is" : "s are", st->dir);
        rc = TB_EXIT_RUNTIME;
    }
    return rc;
}

int study_main(int argc, char **argv)
{
    struct study st;
    memset(&st, 0, sizeof(st));
    st.lock_fd = -1;
    if (parse_args(argc, argv, &st.args))
        return TB_EXIT_USAGE;
    log_set_quiet(st.args.quiet);
    if (st.args.merge)
        return scale_merge_main(&st.args);
    if (st.args.k8s_action)
        return scale_k8s_action(&st.args);
    /* From the start: a Ctrl-C or a dropped SSH session (SIGHUP) while planning, launching or
     * measuring stops the study cleanly, never by the default action that would leave a
     * folder --resume cannot continue, or a server behind. */
    study_stop_requested = 0;
    struct sigaction sa, old_int, old_term, old_hup;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    int rc = study_setup_all(&st);
    /* The folder's files exist before the (possibly long) plan: --resume can continue from
     * any moment. */
    if (!rc && st.doc && study_save(&st))
        rc = TB_EXIT_RUNTIME;
    if (!rc && !st.args.quiet)
        study_print_plan(&st);
    if (!rc && study_stop_requested)
        rc = TB_EXIT_INTERRUPTED;
    if (rc || st.args.plan_only)
        goto out;
    if (!st.args.quiet)
        printf("\nstudy folder: %s\n", st.dir);
    rc = study_measure_all(&st);
    if (!st.args.quiet && !st.shard && !st.hands_off && !st.args.prepare) {
        study_print_guidance(&st);
        study_print_measuring(&st);
    }
out:
    if (rc == TB_EXIT_INTERRUPTED && st.doc) {
        log_warn("study interrupted: finished setups and measured points are in %s; continue "
                 "with 'testbench study --resume %s'",
                 st.dir, st.dir);
        study_save(&st);
    }
    if (!st.args.quiet && st.doc && !st.args.plan_only && !st.shard && !st.hands_off &&
        !st.args.prepare && (rc == TB_EXIT_OK || rc == TB_EXIT_INTERRUPTED))
        printf("\nstudy files:\n  %s/study.csv\n  %s/study.json\n  %s/manifest.json\n", st.dir,
               st.dir, st.dir);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    study_release(&st);
    return rc;
}
