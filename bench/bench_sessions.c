/*
 * bench_sessions.c - does `testbench plan` model users in conversation as `testbench sim`
 * serves them? Runs the study tests/data/sessions/study.yaml (three session workloads: short
 * chat, long-context chat, RAG-like with a shared document prefix; 8 users, two conversations
 * each) on the simulator --repeat times and prints, per workload, the plan's error against the
 * measurement on TTFT p50, TTFT p95 and TPOT p50 (study.csv's err_* columns): each run's and
 * the median over runs. The target: within 10 %. tests/test_study.c checks the same study
 * with a margin a loaded machine keeps.
 *
 *   build/bench_sessions [--repeat N]
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "core/stats.h"
#include "core/xalloc.h"
#include "report/csv.h"

#define N_WL 3
#define N_ERR 3
#define MAX_REPEAT 20

static const char *const workloads[N_WL] = {"short_chat", "long_chat", "rag"};
static const char *const errs[N_ERR] = {"err_ttft_p50_pct", "err_ttft_p95_pct", "err_tpot_p50_pct"};
static const char *const labels[N_ERR] = {"TTFT p50", "TTFT p95", "TPOT p50"};

/* One study run; fills e[workload][metric] with the errors in percent. 0 or -1. */
static int one_run(const char *tmp, int k, double e[N_WL][N_ERR])
{
    char *out = xasprintf("%s/run%d", tmp, k);
    char *cfg = xasprintf("%s/tests/data/sessions/study.yaml", TB_SOURCE_DIR);
    char *argv[] = {(char *)TB_BINARY, "study", "--config", cfg,
                    "--output-dir",    out,     "--quiet",  NULL};
    int rc = bench_run(argv, 0, NULL);
    char *cmd = xasprintf("ls -d %s/sessions_agreement_*/study.csv", out);
    FILE *p = popen(cmd, "r");
    char path[1024] = "";
    if (p && !fgets(path, sizeof(path), p))
        path[0] = '\0';
    if (p)
        pclose(p);
    path[strcspn(path, "\n")] = '\0';
    struct csv_table t;
    if (rc != 0 || !*path || csv_table_load(&t, path) != 0) {
        fprintf(stderr, "bench_sessions: run %d failed (exit %d)\n", k, rc);
        free(cmd);
        free(cfg);
        free(out);
        return -1;
    }
    for (size_t r = 0; r < t.nrows; r++)
        for (int w = 0; w < N_WL; w++)
            if (strcmp(csv_table_get(&t, r, "workload"), workloads[w]) == 0)
                for (int m = 0; m < N_ERR; m++)
                    e[w][m] = csv_table_num(&t, r, errs[m]);
    csv_table_release(&t);
    free(cmd);
    free(cfg);
    free(out);
    return 0;
}

int main(int argc, char **argv)
{
    int repeat = 3;
    static const struct option opts[] = {{"repeat", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'r' || (repeat = atoi(optarg)) < 1 || repeat > MAX_REPEAT) {
            fprintf(stderr, "usage: bench_sessions [--repeat 1..%d]\n", MAX_REPEAT);
            return 2;
        }
    }
    char tmp[] = "/tmp/tb_bench_sessions_XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    static double e[MAX_REPEAT][N_WL][N_ERR];
    int ok = 0;
    for (int k = 0; k < repeat; k++) {
        for (int w = 0; w < N_WL; w++)
            for (int m = 0; m < N_ERR; m++)
                e[ok][w][m] = NAN;
        if (one_run(tmp, k, e[ok]) == 0)
            ok++;
    }
    printf("plan vs simulator, users in conversation (tests/data/sessions/study.yaml, 8 users, "
           "rtx-pro-6000, Llama-3.1-8B BF16, window 32768): (plan - measured) / measured\n");
    printf("%-12s %-9s %9s %s\n", "workload", "metric", "median", "per run");
    int within = 0, total = 0;
    for (int w = 0; w < N_WL; w++) {
        for (int m = 0; m < N_ERR; m++) {
            double v[MAX_REPEAT];
            int n = 0;
            for (int k = 0; k < ok; k++)
                if (!isnan(e[k][w][m]))
                    v[n++] = e[k][w][m];
            double abs_v[MAX_REPEAT];
            for (int k = 0; k < n; k++)
                abs_v[k] = fabs(v[k]);
            sort_doubles(abs_v, (size_t)n);
            double med = percentile_sorted(abs_v, (size_t)n, 0.5);
            printf("%-12s %-9s %8.1f %%", workloads[w], labels[m], med);
            for (int k = 0; k < n; k++)
                printf(" %+.1f", v[k]);
            printf("\n");
            within += med <= 10;
            total++;
        }
    }
    printf("%d of %d medians within 10 %% over %d runs\n", within, total, ok);
    char *rm = xasprintf("rm -rf %s", tmp);
    if (system(rm) != 0)
        fprintf(stderr, "bench_sessions: could not remove %s\n", tmp);
    free(rm);
    return ok == repeat ? 0 : 1;
}
