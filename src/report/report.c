/*
 * report.c - the `report` and `compare` commands: options, inputs, and which files to write.
 */
#include "report/report.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/exitcode.h"
#include "core/log.h"
#include "report/compare.h"
#include "report/guidance.h"
#include "report/html.h"
#include "report/load.h"
#include "report/markdown.h"
#include "report/model.h"

/* Inputs larger than this in total get progress lines on stderr. */
#define PROGRESS_TOTAL_BYTES (64u * 1024 * 1024)

static const char report_usage[] =
    "usage: testbench report PATH... [--output FILE] [--title TEXT] [--users N] [--gpu NAME]\n"
    "    [--slo-ttft-ms X] [--slo-tpot-ms X] [--slo-itl-ms X] [--slo-e2e-ms X]\n"
    "    [--slo-percentile P] [--no-predict] [--quiet]\n"
    "PATH: result files (*_detailed.json, _summary.csv, _telemetry.json), folders of them, or\n"
    "study folders (study.csv). Writes FILE (default: report.html inside the one folder given,\n"
    "else ./report.html) and the Markdown summary beside it (.md).\n";

static const char compare_usage[] =
    "usage: testbench compare A B [--output FILE.html] [--json] [--min-change-pct X] [--seed N]\n"
    "A, B: a result file, a folder of results, or a study folder each. Prints the comparison\n"
    "as a Markdown table (or JSON); --output also writes it as an HTML report.\n";

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -EINVAL;
    *out = v;
    return 0;
}

/* The path of this binary, for `plan` child processes; NULL when /proc is not there. */
static char *self_exe(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return xstrdup(buf);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* FILE.html → FILE.md; anything else gets ".md" appended. */
static char *md_path(const char *html)
{
    size_t n = strlen(html);
    if (n > 5 && strcmp(html + n - 5, ".html") == 0)
        return xasprintf("%.*s.md", (int)(n - 5), html);
    return xasprintf("%s.md", html);
}

static int inputs_load(struct report_input *in, char **paths, int n)
{
    off_t total = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISREG(st.st_mode))
            total += st.st_size;
    }
    in->progress = (size_t)total > PROGRESS_TOTAL_BYTES;
    for (int i = 0; i < n; i++) {
        char err[1024];
        int rc = report_input_add(in, paths[i], err, sizeof(err));
        if (rc) {
            log_error("%s", err);
            return rc == -EINVAL || rc == -EPROTO || rc == -ENOENT || rc == -ENOTDIR
                       ? TB_EXIT_USAGE
                       : TB_EXIT_RUNTIME;
        }
    }
    return TB_EXIT_OK;
}

enum {
    OPT_OUTPUT = 'o',
    OPT_TITLE = 256,
    OPT_USERS,
    OPT_GPU,
    OPT_TTFT,
    OPT_TPOT,
    OPT_ITL,
    OPT_E2E,
    OPT_PCT,
    OPT_NO_PREDICT,
    OPT_QUIET,
    OPT_JSON,
    OPT_MIN_CHANGE,
    OPT_SEED,
    OPT_HELP,
};

int report_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"title", required_argument, NULL, OPT_TITLE},
        {"users", required_argument, NULL, OPT_USERS},
        {"gpu", required_argument, NULL, OPT_GPU},
        {"slo-ttft-ms", required_argument, NULL, OPT_TTFT},
        {"slo-tpot-ms", required_argument, NULL, OPT_TPOT},
        {"slo-itl-ms", required_argument, NULL, OPT_ITL},
        {"slo-e2e-ms", required_argument, NULL, OPT_E2E},
        {"slo-percentile", required_argument, NULL, OPT_PCT},
        {"no-predict", no_argument, NULL, OPT_NO_PREDICT},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL, *title = "testbench report", *gpu = NULL;
    double users = 10;
    bool predict = true;
    struct report_slo slo = {NAN, NAN, NAN, NAN, NAN};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case OPT_OUTPUT:
            output = optarg;
            break;
        case OPT_TITLE:
            title = optarg;
            break;
        case OPT_USERS:
            bad = parse_num(optarg, 1, 100000, &users) || users != floor(users);
            break;
        case OPT_GPU:
            gpu = optarg;
            break;
        case OPT_TTFT:
            bad = parse_num(optarg, 1e-3, 1e9, &slo.ttft_ms);
            break;
        case OPT_TPOT:
            bad = parse_num(optarg, 1e-3, 1e9, &slo.tpot_ms);
            break;
        case OPT_ITL:
            bad = parse_num(optarg, 1e-3, 1e9, &slo.itl_ms);
            break;
        case OPT_E2E:
            bad = parse_num(optarg, 1e-3, 1e9, &slo.e2e_ms);
            break;
        case OPT_PCT:
            bad = parse_num(optarg, 1, 100, &slo.percentile);
            break;
        case OPT_NO_PREDICT:
            predict = false;
            break;
        case OPT_QUIET:
            log_set_quiet(true);
            break;
        case OPT_HELP:
            fputs(report_usage, stdout);
            return TB_EXIT_OK;
        default:
            fputs(report_usage, stderr);
            return TB_EXIT_USAGE;
        }
        if (bad) {
            log_error("report: bad value '%s' (see testbench help report)", optarg);
            return TB_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(report_usage, stderr);
        return TB_EXIT_USAGE;
    }
    struct report_input in;
    report_input_init(&in);
    in.detail_runs = REPORT_CHART_RUNS;
    struct guidance g;
    memset(&g, 0, sizeof(g));
    json_t *model = NULL;
    char *html = NULL, *mdp = NULL, *self = NULL;
    int rc = inputs_load(&in, argv + optind, argc - optind);
    if (rc)
        goto out;
    if (!in.n_runs && !in.n_studies) {
        log_error("report: no results found%s",
                  in.n_skipped ? " that could be read (see the warnings above)" : "");
        rc = TB_EXIT_USAGE;
        goto out;
    }
    if (output)
        html = xstrdup(output);
    else if (argc - optind == 1 && is_dir(argv[optind])) {
        size_t n = strlen(argv[optind]);
        while (n > 1 && argv[optind][n - 1] == '/')
            n--; /* "results/" → results/report.html, not results//report.html */
        html = xasprintf("%.*s/report.html", (int)n, argv[optind]);
    } else
        html = xstrdup("report.html");
    mdp = md_path(html);
    self = predict ? self_exe() : NULL;
    guidance_build(&g, &in, (int)users, &slo, self, gpu);
    model = report_model_build(&in, &g, &slo, title, self, gpu);
    char err[1024];
    int wrc = html_write(html, model, err, sizeof(err));
    if (wrc) {
        log_error("report: %s", err);
        rc = TB_EXIT_RUNTIME;
        goto out;
    }
    wrc = markdown_write_file(mdp, model);
    if (wrc) {
        log_error("report: %s: %s", mdp, strerror(-wrc));
        rc = TB_EXIT_RUNTIME;
        goto out;
    }
    log_info("report: wrote %s and %s (%zu runs, %zu studies%s)", html, mdp, in.n_runs,
             in.n_studies, in.n_skipped ? "; some files skipped, see the warnings above" : "");
    if (in.n_runs > REPORT_CHART_RUNS)
        log_info("report: %zu runs is more than %d: the page has a row per run instead of its "
                 "charts (report a sub-folder for those)",
                 in.n_runs, REPORT_CHART_RUNS);
out:
    json_decref(model);
    guidance_release(&g);
    report_input_release(&in);
    free(html);
    free(mdp);
    free(self);
    return rc;
}

int compare_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"min-change-pct", required_argument, NULL, OPT_MIN_CHANGE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL;
    bool as_json = false;
    struct compare_options o = {.min_change_pct = 5.0, .seed = 1};
    double seed;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_OUTPUT:
            output = optarg;
            break;
        case OPT_JSON:
            as_json = true;
            break;
        case OPT_MIN_CHANGE:
            if (parse_num(optarg, 0, 1000, &o.min_change_pct)) {
                log_error("compare: bad --min-change-pct '%s'", optarg);
                return TB_EXIT_USAGE;
            }
            break;
        case OPT_SEED:
            if (parse_num(optarg, 0, 9e15, &seed)) {
                log_error("compare: bad --seed '%s'", optarg);
                return TB_EXIT_USAGE;
            }
            o.seed = (uint64_t)seed;
            break;
        case OPT_QUIET:
            log_set_quiet(true);
            break;
        case OPT_HELP:
            fputs(compare_usage, stdout);
            return TB_EXIT_OK;
        default:
            fputs(compare_usage, stderr);
            return TB_EXIT_USAGE;
        }
    }
    if (argc - optind != 2) {
        fputs(compare_usage, stderr);
        return TB_EXIT_USAGE;
    }
    struct report_input a, b;
    report_input_init(&a);
    report_input_init(&b);
    struct guidance g;
    memset(&g, 0, sizeof(g));
    json_t *cmp = NULL, *model = NULL;
    int rc = inputs_load(&a, argv + optind, 1);
    if (!rc)
        rc = inputs_load(&b, argv + optind + 1, 1);
    if (rc)
        goto out;
    cmp = compare_build(&a, argv[optind], &b, argv[optind + 1], &o);
    if (!json_array_size(json_object_get(cmp, "rows"))) {
        log_error("compare: %s and %s have no point in common (points match on setup, tenant, "
                  "context length, concurrency and rate)",
                  argv[optind], argv[optind + 1]);
        rc = TB_EXIT_USAGE;
        goto out;
    }
    if (as_json)
        json_dumpf(cmp, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    else
        markdown_compare(stdout, cmp);
    if (as_json)
        fputs("\n", stdout);
    if (output) {
        struct report_slo slo = {NAN, NAN, NAN, NAN, NAN};
        guidance_build(&g, &b, 10, &slo, NULL, NULL);
        model = report_model_build(&b, &g, &slo, "testbench comparison", NULL, NULL);
        json_object_set(model, "compare", cmp);
        char err[1024];
        if (html_write(output, model, err, sizeof(err)) != 0) {
            log_error("compare: %s", err);
            rc = TB_EXIT_RUNTIME;
        }
    }
out:
    json_decref(cmp);
    json_decref(model);
    guidance_release(&g);
    report_input_release(&a);
    report_input_release(&b);
    return rc;
}
