/*
 * bench_validation.c - how far to trust `testbench plan`: replays every published measurement
 * in bench/validation/ (YAML) with the planner and prints, per row, predicted / published for
 * output throughput, TTFT and TPOT (mean against mean where the row publishes means, else
 * median against median), then the median absolute error of each metric on the fitting and
 * the held-out halves, and the worst row. docs/ENGINE.md ("Validation") carries its output.
 *
 *   build/bench_validation [--calibration FILE] [FILE.yaml ...]
 *   (default: every YAML file in bench/validation in the source tree)
 */
#include <getopt.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "plan/validation.h"

enum { M_TPS, M_TTFT, M_TPOT, M_N };
static const char *const metric_names[M_N] = {"output tok/s", "TTFT", "TPOT"};

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
    static const struct option longopts[] = {{"calibration", required_argument, NULL, 'c'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
        if (c != 'c') {
            fprintf(stderr, "usage: bench_validation [--calibration FILE] [FILE.yaml ...]\n");
            return 2;
        }
        calibration = optarg;
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
        double v[M_N] = {vr.tps, ttft_scored, vr.tpot};
        print_ratio(vr.tps);
        print_ratio(vr.ttft);
        print_ratio(vr.tpot);
        printf("%s%s\n", r->ttft_queue_dominated ? "  (TTFT queue-dominated)" : "",
               vr.tpot_is_mean ? "" : "  (medians)");
        for (int m = 0; m < M_N; m++) {
            ratios[h][m][counts[h]] = v[m];
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
    printf("%-10s %5s %14s %10s %10s\n", "half", "rows", "output tok/s", "TTFT", "TPOT");
    for (int h = 0; h < 2; h++) {
        printf("%-10s %5zu", h ? "held-out" : "fitting", counts[h]);
        for (int m = 0; m < M_N; m++) {
            double e = validation_median_abs_error(ratios[h][m], counts[h]);
            printf(m == 0 ? " %13.1f%%" : " %9.1f%%", e);
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
