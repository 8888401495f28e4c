/*
 * bench_agreement.c - does `testbench plan` (the engine in virtual time) agree with
 * `testbench run` against `testbench sim` (the same engine in real time, measured through
 * HTTP by the runner)? For 1, 10 and 64 closed-loop users it compares median TTFT, median
 * TPOT and output throughput and prints the differences. The target: within 5 %.
 *
 *   build/bench_agreement [--gpu G] [--model M] [--prompt N] [--output N] [--users 1,10,64]
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "core/xalloc.h"

struct opts {
    const char *gpu;
    const char *model;
    int prompt;
    int output;
    const char *users;
};

static double pct(double a, double b)
{
    return fabs(a - b) / b * 100.0;
}

static int requests_for(int users)
{
    return users * 4 < 32 ? 32 : users * 4;
}

static json_t *run_plan(const struct opts *o, int users)
{
    char *cmd =
        xasprintf("%s plan --gpu %s --model %s --prompt-tokens %d --output-tokens %d "
                  "--users %d --requests %d --population streams --json",
                  TB_BINARY, o->gpu, o->model, o->prompt, o->output, users, requests_for(users));
    json_t *j = bench_json_from_command(cmd);
    free(cmd);
    return j;
}

static json_t *run_bench(const struct opts *o, int users, const char *dir)
{
    char *cfg = xasprintf("%s/agree_%d.yaml", dir, users);
    FILE *f = fopen(cfg, "w");
    if (!f)
        return NULL;
    fprintf(f,
            "benchmark: {name: agreement, output_prefix: agree_%d, output_dir: %s/u%d}\n"
            "server: {sim: {gpu: %s}}\n"
            "model: {name: %s}\n"
            "requests: {num_requests: %d, concurrent_requests: %d, rate_per_second: inf,\n"
            "           prompt_tokens_min: %d, prompt_tokens_max: %d, completion_tokens: %d}\n"
            "telemetry: {collect_gpu_stats: false, scrape_server_metrics: false}\n",
            users, dir, users, o->gpu, o->model, requests_for(users), users, o->prompt, o->prompt,
            o->output);
    fclose(f);
    char *argv[] = {(char *)TB_BINARY, "run", "--config", cfg, "--quiet", NULL};
    int rc = bench_run(argv, 0, NULL);
    free(cfg);
    if (rc != 0) {
        fprintf(stderr, "bench: testbench run exited %d\n", rc);
        return NULL;
    }
    /* Each users value has its own output folder, so the one file there is its result. */
    char *out = xasprintf("%s/u%d", dir, users);
    char *path = bench_find(out, "_detailed.json");
    json_error_t e;
    json_t *j = path ? json_load_file(path, 0, &e) : NULL;
    free(path);
    free(out);
    return j;
}

int main(int argc, char **argv)
{
    struct opts o = {"rtx-pro-6000", "meta-llama/Llama-3.1-8B-Instruct", 1024, 256, "1,10,64"};
    static const struct option lo[] = {
        {"gpu", required_argument, NULL, 'g'},    {"model", required_argument, NULL, 'm'},
        {"prompt", required_argument, NULL, 'p'}, {"output", required_argument, NULL, 'o'},
        {"users", required_argument, NULL, 'u'},  {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "g:m:p:o:u:", lo, NULL)) != -1) {
        switch (c) {
        case 'g':
            o.gpu = optarg;
            break;
        case 'm':
            o.model = optarg;
            break;
        case 'p':
            o.prompt = (int)strtol(optarg, NULL, 10);
            break;
        case 'o':
            o.output = (int)strtol(optarg, NULL, 10);
            break;
        case 'u':
            o.users = optarg;
            break;
        default:
            return 2;
        }
    }
    char dir[] = "/tmp/tb_agree_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    printf("agreement: plan vs run against sim, %s on %s, prompt %d, output %d tokens\n", o.model,
           o.gpu, o.prompt, o.output);
    printf("%6s  %-22s %12s %12s %8s\n", "users", "metric", "plan", "run", "diff");
    int worst_ok = 1;
    char *users = xstrdup(o.users), *save = NULL;
    for (char *tok = strtok_r(users, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int u = (int)strtol(tok, NULL, 10);
        json_t *plan = run_plan(&o, u);
        json_t *run = run_bench(&o, u, dir);
        if (!plan || !run) {
            printf("%6d  failed to get %s\n", u, plan ? "run" : "plan");
            worst_ok = 0;
            json_decref(plan);
            json_decref(run);
            continue;
        }
        const struct {
            const char *name, *plan_key, *run_key;
        } rows[] = {
            {"ttft_p50_ms", "ttft_p50_ms", "points.0.summary.ttft_ms.p50"},
            {"tpot_p50_ms", "tpot_p50_ms", "points.0.summary.tpot_ms.p50"},
            {"output_throughput", "output_throughput", "points.0.summary.output_throughput"},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
            double a = bench_path_number(plan, rows[i].plan_key);
            double b = bench_path_number(run, rows[i].run_key);
            double d = pct(a, b);
            if (!(d <= 5.0))
                worst_ok = 0;
            printf("%6d  %-22s %12.2f %12.2f %7.1f%%\n", u, rows[i].name, a, b, d);
        }
        json_decref(plan);
        json_decref(run);
    }
    free(users);
    printf("within 5%%: %s\n", worst_ok ? "yes" : "NO");
    char *rm = xasprintf("rm -rf %s", dir);
    if (system(rm) != 0)
        fprintf(stderr, "bench: could not remove %s\n", dir);
    free(rm);
    return worst_ok ? 0 : 1;
}
