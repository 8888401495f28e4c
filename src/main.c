/*
 * main.c - subcommand dispatch; the only place that exits: every other function returns
 * its error to the caller, which cleans up.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>

#include "config/catalog.h"
#include "config/config.h"
#include "core/exitcode.h"
#include "core/version.h"
#include "plan/calibrate.h"
#include "plan/plan.h"
#include "report/report.h"
#include "runner/run.h"
#include "scale/load.h"
#include "sim/sim.h"
#include "study/study.h"
#include "tenancy/tenancy.h"
#include "telemetry/telemetry.h"

struct command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *usage;
};

/* `plan --tenancy FILE` is the tenancy planner (src/tenancy); every other plan is plan_main. */
static int plan_dispatch(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--tenancy") == 0 || strncmp(argv[i], "--tenancy=", 10) == 0)
            return tenancy_plan_main(argc, argv);
    return plan_main(argc, argv);
}

/* `run --workers/--coordinator/--worker` is distributed load (src/scale/load.h). */
static int run_dispatch(int argc, char **argv)
{
    return load_wanted(argc, argv) ? load_run_main(argc, argv) : run_main(argc, argv);
}

static const struct command commands[] = {
    {"run", run_dispatch,
     "testbench run --config FILE [--endpoint URL] [--model NAME] [--output-dir DIR] [--sim] "
     "[--quiet]\n    [--wait S] [--threads N]\n  Runs the benchmark a config describes and writes "
     "results/<prefix>_<time>_*.\n"
     "testbench run --config FILE --workers N [run options]\n"
     "testbench run --config FILE --coordinator HOST:PORT --expect N [run options]\n"
     "testbench run --config FILE --worker URL [--rank R] [run options]\n"
     "  The same load from N worker processes (local, or joining a coordinator from other\n"
     "  machines; R defaults to SLURM_PROCID or JOB_COMPLETION_INDEX), merged into one result."},
    {"merge", load_merge_main,
     "testbench merge OUT_DIR WORKER_detailed.json|WORKERS_DIR... [--prefix P] [--quiet]\n"
     "  Merges the workers' results of one distributed run into one (their request records\n"
     "  pooled on one clock, every summary recomputed)."},
    {"sim", sim_main,
     "testbench sim [MODEL] [--host 127.0.0.1] [--port 8000] [--model M] [--served-model-name N]\n"
     "    [--gpu G] [--quantization Q] [--kv-cache-dtype D] [--max-model-len N]\n"
     "    [--gpu-memory-utilization F] [--max-num-seqs N] [--max-num-batched-tokens N]\n"
     "    [--enable-prefix-caching | --no-enable-prefix-caching] [--tensor-parallel-size N]\n"
     "    [--block-size N] [--lora-modules NAME=PATH ...] [--seed N] [--trace FILE]\n"
     "    [--catalog DIR] [--calibration FILE] [--idle-timeout S] [--tokenize-llamacpp]\n"
     "    [--reasoning-tokens N] [--enable-prompt-tokens-details] [--quiet]\n"
     "    [--instance KEY=VALUE[,KEY=VALUE...] ...]\n"
     "  Serves an OpenAI-compatible API that behaves like vLLM on the given GPU and model;\n"
     "  with --instance (repeated), several instances on several ports sharing one GPU."},
    {"tenancy", tenancy_measure_main,
     "testbench tenancy --config FILE [--output-dir DIR] [--calibration FILE]\n"
     "    [--endpoints STRATEGY=URL[,URL...] ...] [--quiet]\n"
     "  Measures each strategy of a tenancy file, every tenant alone then all together, on\n"
     "  the built-in simulator or given servers: interference, fairness, attributed energy."},
    {"plan", plan_dispatch,
     "testbench plan --gpu NAME --model NAME [--quantization Q] [--kv-cache-dtype D]\n"
     "    [--context N[,N...]] [--prompt-tokens N] [--output-tokens N] [--users N[,N...]]\n"
     "    [--requests N] [--max-num-seqs N] [--max-num-batched-tokens N]\n"
     "    [--gpu-memory-utilization F] [--tensor-parallel-size N] [--no-enable-prefix-caching]\n"
     "    [--slo-ttft-ms X] [--slo-tpot-ms X] [--catalog DIR] [--calibration FILE] [--json]\n"
     "  Predicts memory, KV capacity, latency and throughput without a GPU.\n"
     "testbench plan --tenancy FILE [--calibration FILE] [--json]\n"
     "  Several tenants on one GPU: shared engine vs memory-fraction partitions vs MIG."},
    {"calibrate", calibrate_main,
     "testbench calibrate RESULTS_detailed.json... [--output FILE] [--gpu NAME] [--model NAME]\n"
     "    [--quantization Q] [--kv-cache-dtype D] [--fit P[,P...]] [--from FILE] [--catalog DIR]\n"
     "    [--force]\n"
     "  Fits the cost model's efficiencies to results measured on your GPU; writes a\n"
     "  calibration profile for plan, sim and study --calibration."},
    {"study", study_main,
     "testbench study --config FILE [--backend sim|docker|command|none] [--output-dir DIR]\n"
     "    [--force] [--plan-only] [--calibration FILE] [--quiet]\n"
     "    [--parallel N | --prepare | --executor slurm [--emit DIR] [--wait] | --executor k8s\n"
     "    --emit DIR]\n"
     "testbench study --resume DIR [--setup-index K | --shard i/n | --parallel N | --executor E]\n"
     "testbench study --merge DIR [--wait] | --apply DIR | --status DIR | --collect DIR\n"
     "  Plans, launches and measures each server setup of a study file; finds how many users\n"
     "  each serves within the SLO. Writes DIR/study.{csv,json} and manifest.json. Setups run\n"
     "  side by side with --parallel, shards, Slurm or Kubernetes (docs/SCALE.md)."},
    {"telemetry", telemetry_main,
     "testbench telemetry [--interval S] [--duration S] [--json] [--metrics-url URL] [--no-gpu]\n"
     "    [--no-host]\n"
     "  Samples GPUs (NVML) and the host, one line per sample."},
    {"report", report_main,
     "testbench report PATH... [--output FILE] [--title TEXT] [--users N] [--gpu NAME]\n"
     "    [--slo-ttft-ms X] [--slo-tpot-ms X] [--slo-itl-ms X] [--slo-e2e-ms X]\n"
     "    [--slo-percentile P] [--no-predict] [--quiet]\n"
     "  Turns result files, result folders and study folders into one offline HTML report\n"
     "  (and a Markdown summary beside it)."},
    {"compare", compare_main,
     "testbench compare A B [--output FILE.html] [--json] [--min-change-pct X] [--seed N]\n"
     "  Compares two runs or studies point by point; says which changes are beyond noise."},
    {"catalog", catalog_main,
     "testbench catalog [gpus|models|quantizations] [--catalog DIR] [--json]\n"
     "  Lists the GPUs, models and quantizations plan, sim, study and calibrate know, by the\n"
     "  names --gpu, --model and --quantization take."},
    {"validate", validate_main,
     "testbench validate --config FILE [--print]\n  Loads and checks a config; prints errors with "
     "file:line:column."},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *f)
{
    fprintf(f, "testbench %s - LLM inference testbench\n\nUsage:\n", TB_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %s\n", commands[i].usage);
    fprintf(f, "  testbench --version\n  testbench help [COMMAND]\n\n"
               "Exit codes: 0 done; 1 runtime failure; 2 usage or config error;\n"
               "            3 server unreachable or not ready; 130 interrupted (partial files "
               "written).\n");
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int help(int argc, char **argv)
{
    if (argc < 3) {
        print_usage(stdout);
        return TB_EXIT_OK;
    }
    const struct command *c = find_command(argv[2]);
    if (!c) {
        fprintf(stderr, "testbench: unknown command '%s'\n", argv[2]);
        return TB_EXIT_USAGE;
    }
    printf("%s\n", c->usage);
    return TB_EXIT_OK;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return TB_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("testbench %s (git %s)\n", TB_VERSION, TB_GIT);
        return TB_EXIT_OK;
    }
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return help(argc, argv);
    const struct command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "testbench: unknown command '%s' (see 'testbench help')\n", name);
        return TB_EXIT_USAGE;
    }
    /* Subcommands see argv[0] = their own name. */
    return c->main(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
    /* A peer that hangs up must cost an error on that connection, not the process (libcurl
     * runs with CURLOPT_NOSIGNAL, which also drops its own SIGPIPE guard for TLS writes). */
    signal(SIGPIPE, SIG_IGN);
    /* Each stream is a socket: 1,000+ concurrent streams need more than the usual soft
     * limit of 1,024 descriptors, so take what the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "testbench: libcurl failed to initialise\n");
        exit(TB_EXIT_RUNTIME);
    }
    int rc = dispatch(argc, argv);
    curl_global_cleanup();
    exit(rc);
}
