/*
 * load_cli.c - the command lines of distributed load: `run --workers N`, `run --coordinator
 * ADDR --expect N`, `run --worker URL [--rank R]` (every other `run` option as usual), and
 * `merge OUT W...`. --workers is a coordinator on 127.0.0.1 with N local workers it starts
 * itself: the same protocol as workers on other machines.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/exitcode.h"
#include "core/log.h"
#include "scale/load.h"
#include "scale/load_internal.h"
#include "sim/sim.h"

#define LOAD_MAX_WORKERS 1024
#define CHILD_EXIT_WAIT_S 10.0 /* after the merge, local workers have this long to exit */

struct load_args {
    int workers;             /* --workers N, 0 = not given */
    const char *coordinator; /* --coordinator ADDR */
    int expect;              /* --expect N */
    const char *worker;      /* --worker URL */
    int rank;                /* --rank R, -1 = not given */
    char **rest;             /* argv without the options above (argv[0] kept) */
    int n_rest;
};

static const char *const load_opts[] = {"--workers", "--coordinator", "--expect", "--worker",
                                        "--rank"};
#define N_LOAD_OPTS (sizeof(load_opts) / sizeof(load_opts[0]))

/* The option of load_opts that arg is ("--x" or "--x=..."), or -1. */
static int load_opt(const char *arg)
{
    for (size_t i = 0; i < N_LOAD_OPTS; i++) {
        size_t n = strlen(load_opts[i]);
        if (strncmp(arg, load_opts[i], n) == 0 && (arg[n] == '\0' || arg[n] == '='))
            return (int)i;
    }
    return -1;
}

bool load_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        int k = load_opt(argv[i]);
        if (k == 0 || k == 1 || k == 3)
            return true;
    }
    return false;
}

static int parse_count(const char *opt, const char *v, int lo, int hi, int *out)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || n < lo || n > hi) {
        log_error("run: %s expects a whole number %d..%d, got '%s'", opt, lo, hi, v ? v : "");
        return -EINVAL;
    }
    *out = (int)n;
    return 0;
}

/* Takes the load options out of argv; the rest is `run`'s own. */
static int parse_load_args(int argc, char **argv, struct load_args *a)
{
    memset(a, 0, sizeof(*a));
    a->rank = -1;
    a->rest = xcalloc((size_t)argc + 1, sizeof(char *));
    a->rest[a->n_rest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        int k = load_opt(argv[i]);
        if (k < 0) {
            a->rest[a->n_rest++] = argv[i];
            continue;
        }
        const char *eq = strchr(argv[i], '=');
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        int rc = 0;
        switch (k) {
        case 0:
            rc = parse_count("--workers", v, 1, LOAD_MAX_WORKERS, &a->workers);
            break;
        case 1:
            a->coordinator = v;
            break;
        case 2:
            rc = parse_count("--expect", v, 1, LOAD_MAX_WORKERS, &a->expect);
            break;
        case 3:
            a->worker = v;
            break;
        default:
            rc = parse_count("--rank", v, 0, LOAD_MAX_WORKERS - 1, &a->rank);
            break;
        }
        if (rc)
            return rc;
        if (!v) {
            log_error("run: %s needs a value", load_opts[k]);
            return -EINVAL;
        }
    }
    int roles = (a->workers > 0) + (a->coordinator != NULL) + (a->worker != NULL);
    if (roles != 1) {
        log_error("run: give one of --workers N, --coordinator ADDR --expect N, --worker URL");
        return -EINVAL;
    }
    if (a->coordinator && a->expect == 0) {
        log_error("run: --coordinator needs --expect N (how many workers will join)");
        return -EINVAL;
    }
    if ((a->expect && !a->coordinator) || (a->rank >= 0 && !a->worker)) {
        log_error("run: --expect goes with --coordinator, --rank with --worker");
        return -EINVAL;
    }
    return 0;
}

/* ---- local workers (--workers N) ---- */

/* The worker's command line: run's own options less --sim (the coordinator serves the
 * simulator), then --worker URL --rank R --quiet --output-dir DIR. */
static char **child_argv(const struct load_args *a, const char *url, int rank, const char *dir,
                         char *rank_text)
{
    char **v = xcalloc((size_t)a->n_rest + 12, sizeof(char *));
    int n = 0;
    v[n++] = "testbench";
    v[n++] = "run";
    for (int i = 1; i < a->n_rest; i++)
        if (strcmp(a->rest[i], "--sim") != 0 && strcmp(a->rest[i], "-s") != 0)
            v[n++] = a->rest[i];
    snprintf(rank_text, 16, "%d", rank);
    const char *tail[] = {"--worker", url, "--rank", rank_text, "--quiet", "--output-dir", dir};
    for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
        v[n++] = (char *)tail[i];
    return v;
}

/* Starts local worker rank; its pid, or -errno. In a process group of its own (a Ctrl-C at
 * the terminal reaches the coordinator, which passes it on once), and ended with SIGTERM if
 * the coordinator dies. */
static int child_start(const struct load_args *a, const char *url, int rank, const char *dir)
{
    char rank_text[16];
    char **v = child_argv(a, url, rank, dir, rank_text);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(TB_EXIT_RUNTIME);
        execv("/proc/self/exe", v);
        fprintf(stderr, "error: cannot start a worker: %s\n", strerror(errno));
        _exit(TB_EXIT_RUNTIME);
    }
    int e = errno;
    free(v);
    return pid < 0 ? -e : (int)pid;
}

/* After the merge: the local workers have sent everything and exit; any that does not within
 * CHILD_EXIT_WAIT_S is ended. */
static void children_wait(const int *pids, int n)
{
    mono_ns until = clock_now() + s_to_ns(CHILD_EXIT_WAIT_S);
    for (int i = 0; i < n; i++) {
        if (pids[i] <= 0)
            continue;
        while (waitpid(pids[i], NULL, WNOHANG) == 0) {
            if (clock_now() > until) {
                kill(pids[i], SIGKILL);
                waitpid(pids[i], NULL, 0);
                break;
            }
            clock_sleep_ns(20 * NS_PER_MS);
        }
    }
}

/* ---- the roles ---- */

/* The config as every role compares it: --model applies before the fingerprint. */
static int load_config_for(struct config *cfg, const char *path, const struct run_options *o)
{
    char err[1024];
    if (config_load(cfg, path, err, sizeof(err))) {
        log_error("%s", err);
        return TB_EXIT_USAGE;
    }
    if (o->model)
        config_set_model(cfg, o->model);
    if (o->sim)
        cfg->server.sim.enabled = true;
    return TB_EXIT_OK;
}

/* --workers N and --coordinator: the coordinator, the simulator it serves, the local
 * workers. */
static int coordinate(const struct load_args *a, struct config *cfg, const struct run_options *o)
{
    int n = a->workers ? a->workers : a->expect;
    char err[512];
    if (load_check_split(cfg, n, err, sizeof(err))) {
        log_error("%s", err);
        return TB_EXIT_USAGE;
    }
    struct sim_server *sim = NULL;
    char *endpoint = NULL;
    if (cfg->server.sim.enabled) {
        int rc = run_sim_start(cfg, o->quiet, &sim);
        if (rc)
            return rc == -EINVAL || rc == -ENOENT || rc == -ENOSPC ? TB_EXIT_USAGE
                                                                   : TB_EXIT_RUNTIME;
        endpoint = xasprintf("http://127.0.0.1:%d", sim_server_port(sim));
    } else if (o->endpoint) {
        endpoint = xstrdup(o->endpoint);
    }
    struct load_coord_options co = {
        .bind = a->coordinator ? a->coordinator : "127.0.0.1:0",
        .n = n,
        .cfg = cfg,
        .endpoint = endpoint,
        .out_dir = o->output_dir ? o->output_dir : cfg->benchmark.output_dir,
        .prefix = cfg->benchmark.output_prefix,
        .quiet = o->quiet,
    };
    struct load_coord *c = NULL;
    int ec = load_coord_new(&c, &co);
    int *pids = xcalloc((size_t)n, sizeof(*pids));
    for (int r = 0; r < a->workers && ec == TB_EXIT_OK; r++) {
        pids[r] = child_start(a, load_coord_url(c), r, load_coord_workers_dir(c));
        if (pids[r] < 0) {
            log_error("cannot start worker %d: %s", r, strerror(-pids[r]));
            ec = TB_EXIT_RUNTIME;
        } else {
            load_coord_add_child(c, r, pids[r]);
        }
    }
    if (ec == TB_EXIT_OK)
        ec = load_coord_run(c);
    else
        for (int r = 0; r < a->workers; r++)
            if (pids[r] > 0)
                kill(pids[r], SIGTERM);
    children_wait(pids, a->workers);
    free(pids);
    load_coord_free(c);
    sim_server_stop(sim);
    free(endpoint);
    return ec;
}

int load_run_main(int argc, char **argv)
{
    struct load_args a;
    const char *config = NULL;
    struct run_options o;
    int ec = TB_EXIT_USAGE;
    if (parse_load_args(argc, argv, &a) == 0 && run_parse_args(a.n_rest, a.rest, &config, &o) == 0)
        ec = TB_EXIT_OK;
    struct config cfg;
    if (ec == TB_EXIT_OK) {
        log_set_quiet(o.quiet);
        ec = load_config_for(&cfg, config, &o);
    }
    if (ec == TB_EXIT_OK && a.worker) {
        ec = load_worker_run(&cfg, &o, a.worker, a.rank); /* takes cfg */
    } else if (ec == TB_EXIT_OK) {
        ec = coordinate(&a, &cfg, &o);
        config_release(&cfg);
    }
    free(a.rest);
    return ec;
}

/* ---- merge ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A worker's file name: <prefix>_rank<R>_<stamp>_detailed.json. */
static bool worker_file_name(const char *name)
{
    const char *r = strstr(name, "_rank");
    return r && r[5] >= '0' && r[5] <= '9' && ends_with(name, "_detailed.json");
}

/* PATH, or every worker's detailed.json in the folder PATH. */
static int merge_arg(const char *path, char ***paths, size_t *n)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        log_error("merge: %s: %s", path, strerror(errno));
        return -errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        *paths = xreallocarray(*paths, *n + 1, sizeof(char *));
        (*paths)[(*n)++] = xstrdup(path);
        return 0;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (worker_file_name(e->d_name)) {
            *paths = xreallocarray(*paths, *n + 1, sizeof(char *));
            (*paths)[(*n)++] = xasprintf("%s/%s", path, e->d_name);
        }
    if (d)
        closedir(d);
    return 0;
}

int load_merge_main(int argc, char **argv)
{
    const char *out = NULL, *prefix = NULL;
    bool quiet = false;
    char **paths = NULL;
    size_t n = 0;
    int ec = TB_EXIT_OK;
    for (int i = 1; i < argc && ec == TB_EXIT_OK; i++) {
        if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0)
            quiet = true;
        else if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc)
            prefix = argv[++i];
        else if (argv[i][0] == '-')
            ec = TB_EXIT_USAGE;
        else if (!out)
            out = argv[i];
        else if (merge_arg(argv[i], &paths, &n))
            ec = TB_EXIT_USAGE;
    }
    if (ec == TB_EXIT_OK && (!out || n == 0))
        ec = TB_EXIT_USAGE;
    if (ec == TB_EXIT_USAGE)
        log_error("usage: testbench merge OUT_DIR WORKER_detailed.json|WORKERS_DIR... "
                  "[--prefix P] [--quiet]");
    log_set_quiet(quiet);
    char *merged = NULL;
    if (ec == TB_EXIT_OK)
        ec = load_merge_files((const char *const *)paths, n, out, prefix, quiet, &merged);
    if (merged && !quiet)
        printf("\nmerged results of %zu workers:\n  %s\n", n, merged);
    free(merged);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return ec;
}
