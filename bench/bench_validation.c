/*
 * bench_validation.c - how far to trust `testbench plan`: replays every published measurement
 * in bench/validation/ (YAML) with the planner and prints, per row, predicted / published for
 * output throughput, TTFT and TPOT (mean against mean where the row publishes means, else
 * median against median), then the median absolute error of each metric on the fitting and
 * the held-out halves, and the worst row. docs/ENGINE.md ("Validation") carries its output.
 * A second, separate line repeats the medians after calibration: request_s fitted for each
 * deployment (source page) on its own fitting-half rows, as `testbench calibrate` fits a user's
 * deployment; the built-in line is the one plan's band follows.
 *
 *   build/bench_validation [--calibration FILE] [--fit P[,P...] [--fit-rows S[,S...]]]
 *                          [--table FILE] [FILE.yaml ...]
 *
 * --fit fits the named efficiencies (calibrate's least squares) to the fitting half only and
 * prints them: how the built-in defaults in engine/calibration.c were chosen; --fit-rows keeps
 * the fitting-half rows whose id contains one of the strings (or, given as "!S", drops those).
 * Besides the medians it prints the rows with a scored figure beyond 1.5x and the medians of
 * the Blackwell rows (compute capability >= 10) alone.
 * --table writes the held-out rows' combinations and errors with the built-in defaults as C
 * (src/plan/validation_table.c): the basis of plan's band (plan/band.h).
 *   (default: every YAML file in bench/validation in the source tree)
 */
#include <getopt.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/catalog.h"
#include "core/xalloc.h"
#include "engine/calibration.h"
#include "plan/band.h"
#include "plan/calibrate.h"
#include "plan/plan.h"
#include "plan/validation.h"

enum { M_TPS, M_TTFT, M_TPOT, M_TTFT_ALL, M_N };
/* A scored figure off by more than this either way counts against the target (issue 21). */
#define FAR 1.5
static const char *const metric_names[M_N] = {"output tok/s", "TTFT", "TPOT", "TTFT (all)"};

/* A TTFT that measures the queue, or one no GPU could produce, is shown, not scored. */
static bool ttft_scored(const struct validation_row *r)
{
    return !r->ttft_queue_dominated && !r->ttft_implausible;
}

/* Row r as a calibrate point (one replica), as `testbench calibrate` sees a measured point.
 * false when the planner cannot run it (does not fit): nothing to fit. */
static bool row_point(const struct validation_row *r, struct calibrate_point *p)
{
    snprintf(p->gpu, sizeof(p->gpu), "%s", r->gpu);
    snprintf(p->model, sizeof(p->model), "%s", r->model);
    snprintf(p->quantization, sizeof(p->quantization), "%s",
             strcmp(r->quantization, "auto") ? r->quantization : "");
    snprintf(p->kv_cache_dtype, sizeof(p->kv_cache_dtype), "%s",
             strcmp(r->kv_cache_dtype, "auto") ? r->kv_cache_dtype : "");
    validation_query(r, NULL, &p->q);
    p->tps = r->output_tps / r->replicas;
    p->ttft_s = ttft_scored(r) ? r->ttft_mean_ms / 1e3 : NAN;
    p->tpot_s = r->tpot_mean_ms / 1e3;
    snprintf(p->label, sizeof(p->label), "%s", r->id);
    struct plan_prediction pr;
    char err[512];
    return validation_predict(r, NULL, &pr, err, sizeof(err)) == 0 && pr.fits;
}

/* True when rows (a comma list of id substrings, or NULL for every row) selects row id: an id
 * with one of the substrings, or, when every entry is "!S", an id without any of them. */
static bool row_selected(const char *rows, const char *id)
{
    if (!rows)
        return true;
    bool all_excl = true, hit = false;
    for (const char *p = rows; *p;) {
        size_t n = strcspn(p, ",");
        bool excl = *p == '!';
        size_t skip = excl ? 1 : 0;
        char part[128];
        size_t len = n - skip < sizeof(part) ? n - skip : sizeof(part) - 1;
        snprintf(part, sizeof(part), "%.*s", (int)len, p + skip);
        all_excl = all_excl && excl;
        if (len && strstr(id, part)) {
            if (excl)
                return false;
            hit = true;
        }
        p += n;
        p += *p == ',';
    }
    return hit || all_excl;
}

/* Fits 'which' on the fitting half (the rows 'rows' selects): each row becomes a calibrate point
 * per replica. */
static int fit_defaults(const struct validation_set *set, const char *calibration, char *list,
                        const char *rows)
{
    bool which[CAL_N_PARAMS] = {false};
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < CAL_N_PARAMS && strcmp(tok, calibration_param_name((enum calibration_param)k)))
            k++;
        if (k == CAL_N_PARAMS) {
            fprintf(stderr, "bench_validation: unknown parameter '%s'\n", tok);
            return 2;
        }
        which[k] = true;
    }
    struct calibrate_set cs;
    calibrate_set_init(&cs);
    cs.pts = xcalloc(set->n + 1, sizeof(*cs.pts));
    for (size_t i = 0; i < set->n; i++) {
        const struct validation_row *r = &set->rows[i];
        if (r->held_out || !row_selected(rows, r->id))
            continue; /* never tune on the held-out half */
        if (row_point(r, &cs.pts[cs.n]))
            cs.n++;
    }
    struct cost_calibration cal;
    cost_calibration_default(&cal);
    char err[512];
    if (calibration && cost_calibration_load(&cal, calibration, err, sizeof(err))) {
        fprintf(stderr, "bench_validation: %s\n", err);
        calibrate_set_release(&cs);
        return 2;
    }
    struct calibrate_report rep;
    int rc = calibrate_fit(&cs, NULL, which, &cal, &rep, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "bench_validation: %s\n", err);
        calibrate_set_release(&cs);
        return 1;
    }
    printf("fitted on %zu rows of the fitting half: median error %.1f %% -> %.1f %%\n", cs.n,
           rep.err_before_pct, rep.err_after_pct);
    for (int i = 0; i < CAL_N_PARAMS; i++)
        printf("  %-18s %.4g%s\n", calibration_param_name((enum calibration_param)i), cal.p[i],
               rep.fitted[i] ? "  (fitted)" : "");
    calibrate_set_release(&cs);
    return 0;
}

/* The deployment a row belongs to: its source address (one page or file: one server setup
 * measured by one client), the text before the first blank. */
static void deployment_of(const struct validation_row *r, char *key, size_t len)
{
    const char *s = r->source + strspn(r->source, " \t\n");
    snprintf(key, len, "%.*s", (int)strcspn(s, " \t\n"), s);
}

/* The defaults with request_s fitted on the fitting-half rows of deployment 'key' alone: what
 * `testbench calibrate` does with the points of a user's own deployment. *fitted is false (and
 * cal the defaults) when those rows publish no scored TTFT, which alone constrains it. */
static void deployment_calibration(const struct validation_set *set, const char *key,
                                   struct cost_calibration *cal, bool *fitted)
{
    cost_calibration_default(cal);
    *fitted = false;
    struct calibrate_set cs;
    calibrate_set_init(&cs);
    cs.pts = xcalloc(set->n + 1, sizeof(*cs.pts));
    bool any_ttft = false;
    for (size_t i = 0; i < set->n; i++) {
        const struct validation_row *r = &set->rows[i];
        char k[512];
        deployment_of(r, k, sizeof(k));
        if (r->held_out || strcmp(k, key) != 0)
            continue; /* the held-out rows of a deployment are what the fit is judged on */
        if (row_point(r, &cs.pts[cs.n])) {
            any_ttft = any_ttft || isfinite(cs.pts[cs.n].ttft_s);
            cs.n++;
        }
    }
    if (any_ttft) {
        bool which[CAL_N_PARAMS] = {false};
        which[CAL_REQUEST_S] = true;
        struct calibrate_report rep;
        char err[512];
        if (calibrate_fit(&cs, NULL, which, cal, &rep, err, sizeof(err)) == 0)
            *fitted = rep.fitted[CAL_REQUEST_S];
        if (!*fitted)
            cost_calibration_default(cal);
    }
    calibrate_set_release(&cs);
}

/* Row r predicted with the efficiencies cal (throughput summed over its replicas). */
static int predict_with(const struct validation_row *r, const struct catalog *cat,
                        const struct cost_calibration *cal, struct plan_prediction *p, char *err,
                        size_t errlen)
{
    struct plan_query q;
    validation_query(r, NULL, &q);
    int rc = plan_predict_with(&q, cat, cal, p, err, errlen);
    if (!rc)
        p->output_tps *= r->replicas;
    return rc;
}

/* Writes one held-out row of the band table; 0, or 1 with the reason on stderr. */
static int write_band_row(FILE *f, const struct validation_row *r, const struct catalog *cat)
{
    struct band_key k;
    double tps, ttft, tpot;
    char err[512];
    if (band_row_measure(r, cat, &k, &tps, &ttft, &tpot, err, sizeof(err))) {
        fprintf(stderr, "bench_validation: %s: %s\n", r->id, err);
        return 1;
    }
    fprintf(f,
            "    {\"%s\",\n     {\"%s\", \"%s\", \"%s\", \"%s\", \"%s\", \"%s\"},\n"
            "     %.2f, %.2f, %.2f},\n",
            r->id, k.dim[0], k.dim[1], k.dim[2], k.dim[3], k.dim[4], k.dim[5], tps, ttft, tpot);
    return 0;
}

/* Writes src/plan/validation_table.c: each held-out row's combination and its error with the
 * built-in defaults, the basis of plan's band (plan/band.h). */
static int write_band_table(const struct validation_set *set, const char *path)
{
    struct catalog *cat = NULL;
    char err[512];
    if (catalog_load(&cat, NULL, err, sizeof(err))) {
        fprintf(stderr, "bench_validation: %s\n", err);
        return 1;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        catalog_free(cat);
        return 1;
    }
    time_t now = time(NULL);
    char date[16];
    strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&now));
    fprintf(f, "/*\n * validation_table.c - written by `build/bench_validation --table\n"
               " * src/plan/validation_table.c`; do not edit.\n"
               " * The held-out rows of bench/validation/ with their combination and "
               "|predicted/published - 1|\n"
               " * in percent (-1: not scored) with the built-in defaults: the basis of plan's "
               "band\n"
               " * (plan/band.h). tests/test_validation.c recomputes it and fails when it is "
               "stale.\n */\n");
    fprintf(f,
            "#include \"plan/band.h\"\n\nconst char validation_band_date[] = \"%s\";\n\n"
            "/* clang-format off */\nconst struct band_row validation_band_rows[] = {\n",
            date);
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < set->n; i++) {
        if (!set->rows[i].held_out)
            continue;
        if (write_band_row(f, &set->rows[i], cat))
            rc = 1; /* a row the planner cannot run: the table would be incomplete */
        else
            n++;
    }
    fprintf(f, "};\n/* clang-format on */\n\nconst size_t validation_band_n_rows = %zu;\n", n);
    catalog_free(cat);
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    printf("wrote %zu held-out rows to %s\n", n, path);
    return rc;
}

/* Median |error| per half and metric over rows 0..counts[h]. */
static void print_medians(double *ratios[2][M_N], const size_t counts[2])
{
    printf("%-10s %5s %14s %10s %10s %22s\n", "half", "rows", "output tok/s", "TTFT", "TPOT",
           "TTFT incl. queueing");
    for (int h = 0; h < 2; h++) {
        printf("%-10s %5zu", h ? "held-out" : "fitting", counts[h]);
        for (int m = 0; m < M_N; m++) {
            double e = validation_median_abs_error(ratios[h][m], counts[h]);
            int w = m == 0 ? 13 : m == M_TTFT_ALL ? 21 : 9;
            if (isfinite(e))
                printf(" %*.1f%%", w, e);
            else
                printf(" %*s ", w, "-"); /* nothing scored in this half */
        }
        printf("\n");
    }
}

static void print_ratio(double r)
{
    if (isfinite(r))
        printf(" %7.2f", r);
    else
        printf(" %7s", "-");
}

int main(int argc, char **argv)
{
    const char *calibration = NULL;
    char *fit = NULL;
    const char *table = NULL;    /* --table FILE: write the held-out rows' band table (C) */
    const char *fit_rows = NULL; /* --fit-rows S[,S...]: fit on the rows whose id has one */
    static const struct option longopts[] = {{"calibration", required_argument, NULL, 'c'},
                                             {"fit", required_argument, NULL, 'f'},
                                             {"fit-rows", required_argument, NULL, 'r'},
                                             {"table", required_argument, NULL, 't'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:f:r:t:", longopts, NULL)) != -1) {
        if (c == 'c') {
            calibration = optarg;
        } else if (c == 'f') {
            fit = optarg;
        } else if (c == 't') {
            table = optarg;
        } else if (c == 'r') {
            fit_rows = optarg;
        } else {
            fprintf(stderr, "usage: bench_validation [--calibration FILE] [--fit P[,P...] "
                            "[--fit-rows S[,S...]]] [--table FILE] [FILE.yaml ...]\n");
            return 2;
        }
    }
    struct validation_set set;
    validation_set_init(&set);
    char err[512];
    glob_t g;
    memset(&g, 0, sizeof(g));
    if (optind == argc) {
        if (glob(TB_SOURCE_DIR "/bench/validation/*.yaml", 0, NULL, &g) != 0) {
            fprintf(stderr, "bench_validation: no bench/validation/*.yaml\n");
            return 1;
        }
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (validation_load(&set, g.gl_pathv[i], err, sizeof(err))) {
                fprintf(stderr, "bench_validation: %s\n", err);
                return 2;
            }
        globfree(&g);
    } else {
        for (int i = optind; i < argc; i++)
            if (validation_load(&set, argv[i], err, sizeof(err))) {
                fprintf(stderr, "bench_validation: %s\n", err);
                return 2;
            }
    }

    if (fit) {
        int frc = fit_defaults(&set, calibration, fit, fit_rows);
        validation_set_release(&set);
        return frc;
    }
    if (table) {
        if (calibration)
            fprintf(stderr, "bench_validation: --table uses the built-in defaults only\n");
        int trc = calibration ? 2 : write_band_table(&set, table);
        validation_set_release(&set);
        return trc;
    }
    struct catalog *cat = NULL;
    if (catalog_load(&cat, NULL, err, sizeof(err))) {
        fprintf(stderr, "bench_validation: %s\n", err);
        validation_set_release(&set);
        return 1;
    }
    /* ratios[half][metric][row]: built-in (or --calibration) figures; cal_ratios: with each
     * deployment's request_s fitted on its own fitting-half rows, a separate line. */
    double *ratios[2][M_N], *cal_ratios[2][M_N], *bw_ratios[2][M_N];
    size_t counts[2] = {0, 0}, bw_counts[2] = {0, 0};
    for (int h = 0; h < 2; h++)
        for (int m = 0; m < M_N; m++) {
            ratios[h][m] = xcalloc(set.n + 1, sizeof(double));
            cal_ratios[h][m] = xcalloc(set.n + 1, sizeof(double));
            bw_ratios[h][m] = xcalloc(set.n + 1, sizeof(double));
        }
    /* Rows with a scored figure off by more than FAR (either way), per half. */
    char far_ids[2][4096] = {"", ""};
    size_t far_n[2] = {0, 0};
    struct deployment {
        char key[512];
        struct cost_calibration cal;
        bool fitted;
    } *deps = xcalloc(set.n + 1, sizeof(*deps));
    size_t ndep = 0;
    double worst = 1.0, cal_worst = 1.0;
    const char *worst_id = "", *cal_worst_id = "";
    const char *worst_metric = "", *cal_worst_metric = "";
    printf("calibration: %s\n", calibration ? calibration : "built-in defaults");
    printf("%-40s %-5s %7s %7s %7s %9s   (predicted / published; TTFT/TPOT: mean vs mean;\n"
           "%-40s %-5s %7s %7s %7s %9s    TTFT/dep.: request_s fitted per deployment)\n",
           "row", "half", "tok/s", "TTFT", "TPOT", "TTFT/dep.", "", "", "", "", "", "");
    for (size_t i = 0; i < set.n; i++) {
        const struct validation_row *r = &set.rows[i];
        struct plan_prediction p, pc;
        int h = r->held_out ? 1 : 0;
        printf("%-40s %-5s", r->id, h ? "held" : "fit");
        if (validation_predict(r, calibration, &p, err, sizeof(err))) {
            printf(" error: %s\n", err);
            continue;
        }
        if (!p.fits) {
            printf(" does not fit: %s\n", p.fit_msg);
            continue;
        }
        /* Each deployment is fitted once, at its first row. */
        size_t d = 0;
        char key[512];
        deployment_of(r, key, sizeof(key));
        while (d < ndep && strcmp(deps[d].key, key) != 0)
            d++;
        if (d == ndep) {
            snprintf(deps[d].key, sizeof(deps[d].key), "%s", key);
            deployment_calibration(&set, key, &deps[d].cal, &deps[d].fitted);
            ndep++;
        }
        const struct cost_calibration *dcal = &deps[d].cal;
        bool dfit = deps[d].fitted;
        if (predict_with(r, cat, dcal, &pc, err, sizeof(err))) {
            printf(" error: %s\n", err);
            continue;
        }
        struct validation_ratio vr, vc;
        validation_compare(r, &p, &vr);
        validation_compare(r, &pc, &vc);
        double v[M_N] = {vr.tps, ttft_scored(r) ? vr.ttft : NAN, vr.tpot, vr.ttft};
        double vcal[M_N] = {vc.tps, ttft_scored(r) ? vc.ttft : NAN, vc.tpot, vc.ttft};
        print_ratio(vr.tps);
        print_ratio(vr.ttft);
        print_ratio(vr.tpot);
        printf("  ");
        print_ratio(vc.ttft);
        if (dfit)
            printf(" (%.0f ms)", dcal->p[CAL_REQUEST_S] * 1e3);
        printf("%s%s%s\n", r->ttft_queue_dominated ? "  (TTFT queue-dominated)" : "",
               r->ttft_implausible ? "  (TTFT implausible)" : "",
               vr.tpot_is_mean ? "" : "  (medians)");
        const struct gpu_spec *gs = catalog_find_gpu(cat, r->gpu);
        bool blackwell = gs && gs->compute_capability >= 10.0;
        bool far = false;
        for (int m = 0; m < M_N; m++) {
            ratios[h][m][counts[h]] = v[m];
            cal_ratios[h][m][counts[h]] = vcal[m];
            if (blackwell)
                bw_ratios[h][m][bw_counts[h]] = v[m];
            if (m != M_TTFT_ALL && isfinite(v[m]) && (v[m] > FAR || v[m] < 1 / FAR))
                far = true;
            if (m == M_TTFT_ALL)
                continue; /* shown for information; the worst row is judged on scored figures */
            double off = isfinite(v[m]) ? (v[m] > 1 ? v[m] : 1 / v[m]) : 1;
            if (off > worst) {
                worst = off;
                worst_id = r->id;
                worst_metric = metric_names[m];
            }
            off = isfinite(vcal[m]) ? (vcal[m] > 1 ? vcal[m] : 1 / vcal[m]) : 1;
            if (off > cal_worst) {
                cal_worst = off;
                cal_worst_id = r->id;
                cal_worst_metric = metric_names[m];
            }
        }
        counts[h]++;
        bw_counts[h] += blackwell;
        if (far) {
            size_t len = strlen(far_ids[h]);
            snprintf(far_ids[h] + len, sizeof(far_ids[h]) - len, "%s%s", len ? ", " : "", r->id);
            far_n[h]++;
        }
    }
    printf("\nmedian |predicted / published - 1|:\n");
    print_medians(ratios, counts);
    printf("worst row: %s, %s off by %.2fx\n", worst_id, worst_metric, worst);
    printf("rows with a scored figure beyond %.1fx: fitting %zu%s%s%s, held-out %zu%s%s%s\n", FAR,
           far_n[0], far_n[0] ? " (" : "", far_ids[0], far_n[0] ? ")" : "", far_n[1],
           far_n[1] ? " (" : "", far_ids[1], far_n[1] ? ")" : "");
    printf("\nBlackwell rows alone (compute capability >= 10: RTX PRO 6000, RTX 5090):\n");
    print_medians(bw_ratios, bw_counts);
    printf("\nafter calibration (request_s fitted per deployment, i.e. per source page, on its "
           "fitting-half rows;\nother defaults as built in):\n");
    print_medians(cal_ratios, counts);
    printf("worst row: %s, %s off by %.2fx\n", cal_worst_id, cal_worst_metric, cal_worst);
    catalog_free(cat);
    free(deps);
    for (int h = 0; h < 2; h++)
        for (int m = 0; m < M_N; m++) {
            free(ratios[h][m]);
            free(cal_ratios[h][m]);
            free(bw_ratios[h][m]);
        }
    validation_set_release(&set);
    return 0;
}
