/*
 * sim_cli.c - `testbench sim [MODEL] [flags]`: flags named as vLLM's `vllm serve` ones, and
 * the model first as `vllm serve MODEL` takes it (or --model), so that an image whose entrypoint
 * is `testbench sim` stands in for vLLM's under the same `docker run` arguments.
 * Both "--flag value" and "--flag=value" work; --lora-modules takes one
 * or more NAME=PATH values up to the next flag. Bad flags: usage on stderr, exit 2.
 * --instance KEY=VALUE[,KEY=VALUE...] (repeated) serves several instances from one process on
 * one simulated GPU (instances.c); its keys are the flags' names without "--", and each
 * instance starts from the other flags' values.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exitcode.h"
#include "core/log.h"
#include "config/catalog.h"
#include "engine/calibration.h"
#include "engine/cost.h"
#include "sim/sim_internal.h"

static const char usage[] =
    "usage: testbench sim [MODEL] [--host 127.0.0.1] [--port 8000] [--model M]\n"
    "    [--served-model-name N]\n"
    "    [--gpu G] [--quantization Q] [--kv-cache-dtype D] [--max-model-len N]\n"
    "    [--gpu-memory-utilization F] [--max-num-seqs N] [--max-num-batched-tokens N]\n"
    "    [--enable-prefix-caching | --no-enable-prefix-caching] [--tensor-parallel-size N]\n"
    "    [--block-size N] [--lora-modules NAME=PATH ...] [--seed N] [--trace FILE]\n"
    "    [--catalog DIR] [--calibration FILE] [--idle-timeout S] [--tokenize-llamacpp]\n"
    "    [--reasoning-tokens N] [--enable-prompt-tokens-details] [--quiet]\n"
    "    [--fail-pct P] [--fail-status CODE]\n"
    "    [--instance port=P,gpu-memory-utilization=F[,KEY=VALUE...] ...]\n"
    "  --instance (repeated): one server per instance, all on one simulated GPU; KEY is any\n"
    "  flag above without \"--\" but lora-modules, calibration and quiet; port defaults to\n"
    "  --port + the instance's index. Whole-GPU instances time-slice the GPU; MIG slices\n"
    "  (gpu=GPU:mig-PROFILE) are isolated. docs/TENANCY.md.\n";

enum flag_kind { F_STR, F_INT, F_DOUBLE, F_U64, F_TRUE, F_FALSE, F_LORA, F_INSTANCE };

#define SIM_MAX_INSTANCES 16

struct flag {
    const char *name;
    enum flag_kind kind;
    size_t offset; /* into struct sim_options */
};

#define OPT(field) offsetof(struct sim_options, field)

static const struct flag flags[] = {
    {"--host", F_STR, OPT(host)},
    {"--port", F_INT, OPT(port)},
    {"--model", F_STR, OPT(engine.model)},
    {"--served-model-name", F_STR, OPT(served_model_name)},
    {"--gpu", F_STR, OPT(engine.gpu)},
    {"--quantization", F_STR, OPT(engine.quantization)},
    {"--kv-cache-dtype", F_STR, OPT(engine.kv_cache_dtype)},
    {"--max-model-len", F_INT, OPT(engine.max_model_len)},
    {"--gpu-memory-utilization", F_DOUBLE, OPT(engine.gpu_memory_utilization)},
    {"--max-num-seqs", F_INT, OPT(engine.max_num_seqs)},
    {"--max-num-batched-tokens", F_INT, OPT(engine.max_num_batched_tokens)},
    {"--enable-prefix-caching", F_TRUE, OPT(engine.enable_prefix_caching)},
    {"--no-enable-prefix-caching", F_FALSE, OPT(engine.enable_prefix_caching)},
    {"--tensor-parallel-size", F_INT, OPT(engine.tensor_parallel_size)},
    {"--block-size", F_INT, OPT(engine.block_size)},
    {"--lora-modules", F_LORA, 0},
    {"--seed", F_U64, OPT(seed)},
    {"--trace", F_STR, OPT(trace_path)},
    {"--catalog", F_STR, OPT(engine.catalog_dir)},
    {"--idle-timeout", F_INT, OPT(idle_timeout_s)},
    {"--calibration", F_STR, OPT(calibration_path)},
    {"--reasoning-tokens", F_INT, OPT(reasoning_tokens)},
    {"--enable-prompt-tokens-details", F_TRUE, OPT(prompt_tokens_details)},
    {"--quiet", F_TRUE, OPT(quiet)},
    {"--tokenize-llamacpp", F_TRUE, OPT(tokenize_llamacpp)},
    {"--fail-pct", F_INT, OPT(fail_pct)},
    {"--fail-status", F_INT, OPT(fail_status)},
    {"--instance", F_INSTANCE, 0},
};

static const struct flag *flag_named(const char *name, size_t len)
{
    for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
        if (strlen(flags[k].name) == len && strncmp(flags[k].name, name, len) == 0)
            return &flags[k];
    return NULL;
}

/* A flag without a value (F_TRUE / F_FALSE), the same on the command line and in --instance. */
static void set_switch(const struct flag *f, struct sim_options *o)
{
    if (f->offset == OPT(quiet))
        o->quiet = true;
    else if (f->offset == OPT(tokenize_llamacpp))
        o->tokenize_llamacpp = true;
    else if (f->offset == OPT(prompt_tokens_details))
        o->prompt_tokens_details = true;
    else
        o->engine.enable_prefix_caching = f->kind == F_TRUE;
}

static int parse_value(const struct flag *f, const char *v, struct sim_options *o)
{
    char *end;
    void *p = (char *)o + f->offset;
    errno = 0;
    switch (f->kind) {
    case F_STR:
        if (!*v)
            return -EINVAL;
        *(const char **)p = v;
        return 0;
    case F_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < 0 || x > INT_MAX)
            return -EINVAL;
        *(int *)p = (int)x;
        return 0;
    }
    case F_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !(x > 0 && x <= 1))
            return -EINVAL;
        *(double *)p = x;
        return 0;
    }
    case F_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-')
            return -EINVAL;
        *(uint64_t *)p = x;
        return 0;
    }
    default:
        return -EINVAL;
    }
}

/* Fills o from argv (argv[0] = "sim"); lora is the caller's array of argc slots, inst of
 * SIM_MAX_INSTANCES (the --instance values, parsed later over o). */
static int parse_args(int argc, char **argv, struct sim_options *o, const char **lora,
                      const char **inst, size_t *n_inst, bool *help)
{
    const char *positional = NULL; /* `vllm serve MODEL`: the model first */
    int first = 1;
    if (argc > 1 && argv[1][0] != '-') {
        positional = argv[1];
        first = 2;
    }
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = true;
            return 0;
        }
        size_t nlen = strcspn(arg, "=");
        const char *inline_val = arg[nlen] == '=' ? arg + nlen + 1 : NULL;
        const struct flag *f = flag_named(arg, nlen);
        if (!f) {
            fprintf(stderr, "testbench sim: unknown flag '%s'\n", arg);
            return -EINVAL;
        }
        if (f->kind == F_TRUE || f->kind == F_FALSE) {
            if (inline_val) {
                fprintf(stderr, "testbench sim: %s takes no value\n", f->name);
                return -EINVAL;
            }
            set_switch(f, o);
            continue;
        }
        if (f->kind == F_LORA) {
            size_t before = o->n_lora_modules;
            if (inline_val)
                lora[o->n_lora_modules++] = inline_val;
            while (!inline_val && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                lora[o->n_lora_modules++] = argv[++i];
            if (o->n_lora_modules == before) {
                fprintf(stderr, "testbench sim: --lora-modules needs NAME=PATH\n");
                return -EINVAL;
            }
            continue;
        }
        const char *v = inline_val;
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "testbench sim: %s needs a value\n", f->name);
                return -EINVAL;
            }
            v = argv[++i];
        }
        if (f->kind == F_INSTANCE) {
            if (*n_inst == SIM_MAX_INSTANCES) {
                fprintf(stderr, "testbench sim: at most %d --instance\n", SIM_MAX_INSTANCES);
                return -EINVAL;
            }
            inst[(*n_inst)++] = v;
            continue;
        }
        if (parse_value(f, v, o)) {
            fprintf(stderr, "testbench sim: bad value for %s: '%s'\n", f->name, v);
            return -EINVAL;
        }
    }
    if (positional) {
        if (o->engine.model && strcmp(o->engine.model, positional) != 0) {
            fprintf(stderr, "testbench sim: model given twice: '%s' and --model '%s'\n", positional,
                    o->engine.model);
            return -EINVAL;
        }
        o->engine.model = positional;
    }
    if (o->idle_timeout_s < 1) {
        fprintf(stderr, "testbench sim: --idle-timeout must be at least 1 (seconds)\n");
        return -EINVAL;
    }
    if (o->port > 65535) {
        fprintf(stderr, "testbench sim: --port must be 0..65535\n");
        return -EINVAL;
    }
    return 0;
}

/* One --instance value over a copy of the other flags' options. 'spec' is cut up in place
 * (string options point into it, so it lives as long as out). */
static int parse_instance(char *spec, const struct sim_options *base, size_t idx,
                          struct sim_options *out)
{
    *out = *base;
    out->port = -1;
    out->n_lora_modules = 0;
    out->lora_modules = NULL;
    out->trace_path = NULL;
    for (char *item = spec, *next; item && *item; item = next) {
        next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        size_t klen = strcspn(item, "=");
        char name[64];
        const struct flag *f = NULL;
        if (klen + 3 <= sizeof(name)) {
            snprintf(name, sizeof(name), "--%.*s", (int)klen, item);
            f = flag_named(name, klen + 2);
        }
        if (!f || f->kind == F_LORA || f->kind == F_INSTANCE || f->offset == OPT(quiet) ||
            f->offset == OPT(calibration_path)) {
            fprintf(stderr, "testbench sim: --instance %zu: unknown or per-process key '%.*s'\n",
                    idx + 1, (int)klen, item);
            return -EINVAL;
        }
        const char *v = item[klen] == '=' ? item + klen + 1 : NULL;
        if (f->kind == F_TRUE || f->kind == F_FALSE) {
            if (v) {
                fprintf(stderr, "testbench sim: --instance %zu: %s takes no value\n", idx + 1,
                        name + 2);
                return -EINVAL;
            }
            set_switch(f, out);
            continue;
        }
        if (!v || parse_value(f, v, out)) {
            fprintf(stderr, "testbench sim: --instance %zu: bad value for %s: '%s'\n", idx + 1,
                    name + 2, v ? v : "");
            return -EINVAL;
        }
    }
    if (out->port < 0)
        out->port = base->port ? base->port + (int)idx : 0;
    if (out->port > 65535) {
        fprintf(stderr, "testbench sim: --instance %zu: port must be 0..65535\n", idx + 1);
        return -EINVAL;
    }
    return 0;
}

/* Two things said before serving. vLLM refuses to start when the model's whole window does not
 * fit the KV cache (it asks for a smaller max_model_len); the simulator, given no
 * --max-model-len, serves the window that fits instead (docs/ENGINE.md): one line says so, and
 * how to serve what vLLM would. And a calibration profile fitted on another GPU is named. */
static void window_note(const struct sim_options *o)
{
    struct catalog *cat = NULL;
    char err[512];
    if (catalog_load(&cat, o->engine.catalog_dir, err, sizeof(err)))
        return; /* the server says what is wrong with it */
    struct engine_config cfg = o->engine;
    if (!cfg.num_lora_slots)
        cfg.num_lora_slots = (int)o->n_lora_modules;
    /* And a calibration profile fitted on another card than the one served. */
    const struct gpu_spec *g = catalog_find_gpu(cat, cfg.gpu ? cfg.gpu : "rtx-pro-6000");
    if (cfg.calibration && g &&
        cost_calibration_other_gpu(cfg.calibration, g->name, g->display_name))
        log_warn("sim: the calibration profile was fitted on %s, not %s: its efficiencies "
                 "describe that GPU",
                 cfg.calibration->gpu, g->name);
    struct cost_model cm;
    if (o->engine.max_model_len <= 0 && cost_model_init(&cm, cat, &cfg, err, sizeof(err)) == 0 &&
        cm.fits && cm.max_model_len_clamped)
        log_warn(
            "sim: the window is %d tokens, what the KV cache holds, not %s's %d: vLLM would "
            "refuse to start without --max-model-len (give --max-model-len %d or less, or more "
            "--gpu-memory-utilization)",
            cm.max_model_len, cm.model->name, cm.model->max_model_len, cm.max_model_len);
    catalog_free(cat);
}

/* Serves the --instance values (each over o); an exit code. */
static int serve_instances(const struct sim_options *o, const char **spec, size_t n)
{
    struct sim_options inst[SIM_MAX_INSTANCES];
    char *copy[SIM_MAX_INSTANCES] = {0};
    char err[640] = "";
    int code = TB_EXIT_OK;
    if (o->trace_path) {
        fprintf(stderr, "testbench sim: with --instance, give each its own trace=FILE\n");
        return TB_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++) {
        copy[i] = xstrdup(spec[i]);
        if (parse_instance(copy[i], o, i, &inst[i])) {
            fputs(usage, stderr);
            code = TB_EXIT_USAGE;
            goto out;
        }
    }
    int rc = sim_instances_serve(inst, n, err, sizeof(err));
    if (rc) {
        log_error("sim: %s", err[0] ? err : strerror(-rc));
        code = (rc == -EINVAL || rc == -ENOENT || rc == -ENOSPC) ? TB_EXIT_USAGE : TB_EXIT_RUNTIME;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(copy[i]);
    return code;
}

int sim_main(int argc, char **argv)
{
    struct sim_options o;
    bool help = false;
    char err[512] = "";
    sim_options_init(&o);
    const char **lora = xcalloc((size_t)argc + 1, sizeof(*lora));
    o.lora_modules = lora;
    const char *inst[SIM_MAX_INSTANCES];
    size_t n_inst = 0;
    int code = TB_EXIT_OK;
    if (parse_args(argc, argv, &o, lora, inst, &n_inst, &help)) {
        fputs(usage, stderr);
        code = TB_EXIT_USAGE;
        goto out;
    }
    if (help) {
        fputs(usage, stdout);
        goto out;
    }
    if (o.fail_pct > 100 || (o.fail_status && (o.fail_status < 400 || o.fail_status > 599))) {
        fprintf(stderr, "testbench sim: --fail-pct must be 0..100 and --fail-status 400..599\n");
        code = TB_EXIT_USAGE;
        goto out;
    }
    struct cost_calibration cal;
    if (o.calibration_path) {
        cost_calibration_default(&cal);
        if (cost_calibration_load(&cal, o.calibration_path, err, sizeof(err))) {
            log_error("sim: %s", err);
            code = TB_EXIT_USAGE;
            goto out;
        }
        o.engine.calibration = &cal;
    }
    bool was_quiet = log_is_quiet();
    if (o.quiet)
        log_set_quiet(true);
    if (n_inst) {
        code = serve_instances(&o, inst, n_inst);
        log_set_quiet(was_quiet);
        goto out;
    }
    window_note(&o);
    int rc = sim_server_serve(&o, err, sizeof(err));
    log_set_quiet(was_quiet);
    if (rc) {
        log_error("sim: %s", err[0] ? err : strerror(-rc));
        /* Configuration the engine refuses (unknown GPU/model, does not fit) is a usage
         * error; anything else (cannot listen) is a runtime failure. */
        code = (rc == -EINVAL || rc == -ENOENT || rc == -ENOSPC) ? TB_EXIT_USAGE : TB_EXIT_RUNTIME;
    }
out:
    free(lora);
    return code;
}
