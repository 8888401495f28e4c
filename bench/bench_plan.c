/*
 * bench_plan.c - how fast the engine simulates: tokens (prompt + output) per CPU-second and
 * engine steps per CPU-second with 2,000 concurrent requests, measured with
 * CLOCK_PROCESS_CPUTIME_ID so that a busy machine does not skew it. Targets (docs/ENGINE.md):
 * >= 1,000,000 simulated tokens per CPU-second (plan) and >= 100,000 emitted tokens/s with
 * 2,000 concurrent requests (sim). Usage: bench_plan [gpu] [model]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct ctx {
    struct engine *e;
    uint32_t *prompt;
    int prompt_len, out, total, issued;
    long emitted;
};

static void issue(struct ctx *c)
{
    char err[256];
    int k = c->issued++;
    c->prompt[0] = (uint32_t)k;
    struct engine_request r = {.id = (uint64_t)k,
                               .prompt = c->prompt,
                               .prompt_len = (size_t)c->prompt_len,
                               .max_tokens = c->out};
    if (engine_add(c->e, &r, err, sizeof(err))) {
        fprintf(stderr, "bench_plan: %s\n", err);
        exit(1);
    }
}

static void on_event(void *ctx, const struct engine_event *ev)
{
    struct ctx *c = ctx;
    c->emitted += ev->new_tokens;
    if (ev->finish != FINISH_NONE && c->issued < c->total)
        issue(c); /* closed loop: keep the concurrency */
}

static int bench(const char *gpu, const char *model, int conc, int total, int prompt, int out)
{
    struct engine_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.gpu = gpu;
    cfg.model = model;
    cfg.max_model_len = 8192;
    cfg.max_num_seqs = conc;
    cfg.enable_prefix_caching = -1;
    struct ctx c;
    memset(&c, 0, sizeof(c));
    char err[512];
    if (engine_new(&c.e, &cfg, err, sizeof(err))) {
        fprintf(stderr, "bench_plan: %s\n", err);
        return 1;
    }
    c.prompt_len = prompt;
    c.out = out;
    c.total = total;
    c.prompt = calloc((size_t)prompt, sizeof(*c.prompt));
    for (int i = 0; i < prompt; i++)
        c.prompt[i] = (uint32_t)(i * 7919);
    double t0 = cpu_now();
    for (int i = 0; i < conc; i++)
        issue(&c);
    double now = 0;
    long steps = 0;
    for (;;) {
        double d = engine_step_plan(c.e);
        if (d < 0)
            break;
        now += d;
        engine_step_finish(c.e, now, on_event, &c);
        steps++;
    }
    double cpu = cpu_now() - t0;
    double simulated = (double)total * (prompt + out);
    printf("%-28s conc %5d  %6d requests x (%d + %d): %.3f CPU-s, %.2fM tokens simulated/CPU-s, "
           "%.0fk emitted tokens/CPU-s, %.0f steps/CPU-s (%ld steps, %.0f s virtual)\n",
           model, conc, total, prompt, out, cpu, simulated / cpu / 1e6, c.emitted / cpu / 1e3,
           steps / cpu, steps, now);
    free(c.prompt);
    engine_free(c.e);
    return 0;
}

int main(int argc, char **argv)
{
    const char *gpu = argc > 1 ? argv[1] : "h200";
    const char *model = argc > 2 ? argv[2] : "meta-llama/Llama-3.1-8B-Instruct";
    int rc = bench(gpu, model, 2000, 20000, 1000, 200);
    rc |= bench(gpu, model, 100, 2000, 4000, 500);
    rc |= bench(gpu, "openai/gpt-oss-20b", 2000, 20000, 1000, 200);
    return rc;
}
