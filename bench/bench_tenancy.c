/*
 * bench_tenancy.c - does `testbench tenancy` (the runner measuring each strategy on simulators
 * in its own process) agree with `plan --tenancy` (the same engines in virtual time)? Runs the
 * measurement on a tenancy file and prints, per strategy and tenant, output tokens/s and TTFT
 * p95 beside the plan's, TTFT and TPOT interference, and the runner's own lag flags. Issue 20's
 * targets: output tok/s within 15 %, TTFT p95 within 25 %; MIG slices without interference,
 * time-sliced partitions with it. The worked example takes about 20 minutes.
 *
 *   build/bench_tenancy [--config configs/tenancy/rtx_pro_6000.yaml]
 */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "core/xalloc.h"

static double num(json_t *o, const char *path)
{
    return bench_path_number(o, path);
}

static bool distorted(json_t *summary)
{
    return json_is_true(json_object_get(json_object_get(summary, "client"), "client_distorted"));
}

int main(int argc, char **argv)
{
    const char *cfg = TB_SOURCE_DIR "/configs/tenancy/rtx_pro_6000.yaml";
    static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
                                       {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:", lo, NULL)) != -1) {
        if (c == 'c')
            cfg = optarg;
        else
            return 2;
    }
    char dir[] = "/tmp/tb_bench_tenancy_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char *argv_tb[] = {(char *)TB_BINARY, "tenancy",      "--config", (char *)cfg,
                       "--quiet",         "--output-dir", dir,        NULL};
    struct rusage ru;
    int rc = bench_run(argv_tb, 0, &ru);
    char *path = rc == 0 ? bench_find(dir, "Z.json") : NULL;
    json_error_t e;
    json_t *j = path ? json_load_file(path, 0, &e) : NULL;
    free(path);
    if (!j) {
        fprintf(stderr, "bench: testbench tenancy exited %d with no result\n", rc);
        return 1;
    }
    printf("tenancy: %s, measured on the simulator against plan --tenancy\n", cfg);
    printf("%-12s %-11s %9s %9s %7s %9s %9s %7s %12s %12s %s\n", "strategy", "tenant", "tok/s",
           "plan", "diff", "TTFT p95", "plan", "diff", "interf TTFT", "interf TPOT",
           "client_distorted alone/together");
    int within = 1;
    size_t k, i;
    json_t *st, *t;
    json_array_foreach(json_object_get(j, "strategies"), k, st)
    {
        json_array_foreach(json_object_get(st, "tenants"), i, t)
        {
            json_t *tog = json_object_get(t, "together");
            json_t *pred = json_object_get(t, "predicted");
            double tps = num(tog, "output_throughput"), ptps = num(pred, "output_tps");
            double p95 = num(tog, "ttft_ms.p95"), pp95 = num(pred, "ttft.p95_ms");
            double dt = (tps / ptps - 1) * 100, dp = (p95 / pp95 - 1) * 100;
            within &= fabs(dt) <= 15 && fabs(dp) <= 25;
            printf("%-12s %-11s %9.1f %9.1f %+6.1f%% %9.1f %9.1f %+6.1f%% %5.2f / %4.2f "
                   "%5.2f / %4.2f %s/%s\n",
                   json_string_value(json_object_get(st, "name")),
                   json_string_value(json_object_get(t, "tenant")), tps, ptps, dt, p95, pp95, dp,
                   num(t, "interference_ttft"), num(pred, "interference_ttft"),
                   num(t, "interference_tpot"), num(pred, "interference_tpot"),
                   distorted(json_object_get(t, "alone")) ? "yes" : "no",
                   distorted(tog) ? "yes" : "no");
        }
    }
    printf("within 15 %% (tok/s) and 25 %% (TTFT p95): %s\n", within ? "yes" : "NO");
    json_decref(j);
    char *rm = xasprintf("rm -rf %s", dir);
    if (system(rm) != 0)
        fprintf(stderr, "bench: could not remove %s\n", dir);
    free(rm);
    return within ? 0 : 1;
}
