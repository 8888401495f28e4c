/*
 * bench_validation.c - how far to trust `testbench plan`: replays every published measurement
 * in bench/validation/ (YAML) with the planner and prints, per row, predicted / published for
 * output throughput, TTFT and TPOT (mean against mean where the row publishes means, else
 * median against median), then the median absolute error of each metric on the fitting and
 * the held-out halves, and the worst row. docs/ENGINE.md ("Validation") carries its output.
 *
 *   build/bench_validation [--calibration FILE] [--fit P[,P...]] [FILE.yaml ...]
 *
 * --fit fits the named efficiencies (calibrate's least squares) to the fitting half only and
 * prints them: how the built-in defaults in engine/calibration.c were chosen.
 *   (default: every YAML file in bench/validation in the source tree)
 */
#include <getopt.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "engine/calibration.h"
#include "plan/calibrate.h"
#include "plan/validation.h"

enum { M_TPS, M_TTFT, M_TPOT, M_TTFT_ALL, M_N };
static const char *const metric_names[M_N] = {"output tok/s", "TTFT", "TPOT", "TTFT (all)"};

/* Fits 'which' on the fitting half: each row becomes a calibrate point per replica. */
static int fit_defaults(const struct validation_set *set, const char *calibration, char *list)
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
        if (r->held_out)
            continue; /* never tune on the held-out half */
        struct calibrate_point *p = &cs.pts[cs.n];
        snprintf(p->gpu, sizeof(p->gpu), "%s", r->gpu);
        snprintf(p->model, sizeof(p->model), "%s", r->model);
        snprintf(p->quantization, sizeof(p->quantization), "%s",
                 strcmp(r->quantization, "auto") ? r->quantization : "");
        snprintf(p->kv_cache_dtype, sizeof(p->kv_cache_dtype), "%s",
                 strcmp(r->kv_cache_dtype, "auto") ? r->kv_cache_dtype : "");
        validation_query(r, NULL, &p->q);
        p->tps = r->output_tps / r->replicas;
        p->ttft_s = r->ttft_queue_dominated ? NAN : r->ttft_mean_ms / 1e3;
        p->tpot_s = r->tpot_mean_ms / 1e3;
        snprintf(p->label, sizeof(p->label), "%s", r->id);
        /* A row the planner cannot run (does not fit) has nothing to fit. */
        struct plan_prediction pr;
        char err[512];
        if (validation_predict(r, NULL, &pr, err, sizeof(err)) || !pr.fits)
            continue;
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
    static const struct option longopts[] = {{"calibration", required_argument, NULL, 'c'},
                                             {"fit", required_argument, NULL, 'f'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:f:", longopts, NULL)) != -1) {
        if (c == 'c') {
            calibration = optarg;
        } else if (c == 'f') {
            fit = optarg;
        } else {
            fprintf(stderr, "usage: bench_validation [--calibration FILE] [--fit P[,P...]] "
                            "[FILE.yaml ...]\n");
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
        int frc = fit_defaults(&set, calibration, fit);
        validation_set_release(&set);
        return frc;
    }
    /* ratios[half][metric][row] */
    double *ratios[2][M_N];
    size_t counts[2] = {0, 0};
    for (int h = 0; h < 2; h++)
        for (int m = 0; m < M_N; m++)
            ratios[h][m] = xcalloc(set.n + 1, sizeof(double));
    double worst = 1.0;
    const char *worst_id = "";
    const char *worst_metric = "";
    printf("calibration: %s\n", calibration ? calibration : "built-in defaults");
    printf("%-40s %-5s %7s %7s %7s   (predicted / published; TTFT/TPOT: mean vs mean)\n", "row",
           "half", "tok/s", "TTFT", "TPOT");
    for (size_t i = 0; i < set.n; i++) {
        const struct validation_row *r = &set.rows[i];
        struct plan_prediction p;
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
        struct validation_ratio vr;
        validation_compare(r, &p, &vr);
        /* A queue-dominated TTFT measures the queue, not the prefill: shown, not scored. */
        double ttft_scored = r->ttft_queue_dominated ? NAN : vr.ttft;
        double v[M_N] = {vr.tps, ttft_scored, vr.tpot, vr.ttft};
        print_ratio(vr.tps);
        print_ratio(vr.ttft);
        print_ratio(vr.tpot);
        printf("%s%s\n", r->ttft_queue_dominated ? "  (TTFT queue-dominated)" : "",
               vr.tpot_is_mean ? "" : "  (medians)");
        for (int m = 0; m < M_N; m++) {
            ratios[h][m][counts[h]] = v[m];
            if (m == M_TTFT_ALL)
                continue; /* shown for information; the worst row is judged on scored figures */
            double off = isfinite(v[m]) ? (v[m] > 1 ? v[m] : 1 / v[m]) : 1;
            if (off > worst) {
                worst = off;
                worst_id = r->id;
                worst_metric = metric_names[m];
            }
        }
        counts[h]++;
    }
    printf("\nmedian |predicted / published - 1|:\n");
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
    printf("worst row: %s, %s off by %.2fx\n", worst_id, worst_metric, worst);
    for (int h = 0; h < 2; h++)
        for (int m = 0; m < M_N; m++)
            free(ratios[h][m]);
    validation_set_release(&set);
    return 0;
}
