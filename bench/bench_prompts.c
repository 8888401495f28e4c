/*
 * bench_prompts.c - what it costs to build a large point's prompts before its clock starts
 * (src/runner/prompt_pool.h): the planning time (every /tokenize round trip, against the
 * simulator in this process, as `run --sim` does), the memory the recipes and the pool hold
 * against holding every text, and the CPU a prompt costs when it is composed from its recipe
 * as its request goes (what a request whose text the pool has not composed yet pays, with
 * no round trip).
 *
 *   build/bench_prompts [--requests 100000] [--tokens 1000] [--prefix 0] [--budget-mb 256]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "runner/prompt.h"
#include "runner/prompt_pool.h"
#include "sim/sim.h"
#include "workload/workload.h"

/* Resident memory now (VmRSS) and at its peak (VmHWM), MiB. */
static void rss_mib(double *now, double *peak)
{
    *now = *peak = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof(line), f)) {
        long kb;
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            *now = (double)kb / 1024;
        if (sscanf(line, "VmHWM: %ld", &kb) == 1)
            *peak = (double)kb / 1024;
    }
    if (f)
        fclose(f);
}

static int config_for(struct config *c, int requests, int tokens, int prefix)
{
    char path[] = "/tmp/tb_bench_prompts_XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    fprintf(f,
            "benchmark: {name: prompts}\n"
            "model: {name: meta-llama/Llama-3.1-8B-Instruct}\n"
            "requests: {num_requests: %d, prompt_tokens_min: %d, prompt_tokens_max: %d,\n"
            "           shared_prefix_tokens: %d, completion_tokens: 16}\n",
            requests, tokens, tokens, prefix);
    fclose(f);
    char err[1024];
    int rc = config_load(c, path, err, sizeof(err));
    unlink(path);
    if (rc)
        fprintf(stderr, "bench: %s\n", err);
    return rc;
}

int main(int argc, char **argv)
{
    int requests = 100000, tokens = 1000, prefix = 0;
    long budget_mb = PROMPT_POOL_BUDGET >> 20;
    static const struct option lo[] = {{"requests", required_argument, NULL, 'n'},
                                       {"tokens", required_argument, NULL, 't'},
                                       {"prefix", required_argument, NULL, 'p'},
                                       {"budget-mb", required_argument, NULL, 'b'},
                                       {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:t:p:b:", lo, NULL)) != -1) {
        if (ch == 'n')
            requests = atoi(optarg);
        else if (ch == 't')
            tokens = atoi(optarg);
        else if (ch == 'p')
            prefix = atoi(optarg);
        else if (ch == 'b')
            budget_mb = atol(optarg);
        else
            return 2;
    }
    if (requests < 1 || tokens < 1 || budget_mb < 1)
        return 2;
    struct sim_options so;
    sim_options_init(&so);
    so.port = 0;
    so.quiet = true;
    so.engine.gpu = "rtx-pro-6000";
    so.engine.model = "meta-llama/Llama-3.1-8B-Instruct";
    struct sim_server *sim = NULL;
    char err[512];
    if (sim_server_start(&sim, &so, err, sizeof(err))) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", sim_server_port(sim));
    struct config c;
    struct prompt_builder *b = NULL;
    struct workload *w = NULL;
    if (config_for(&c, requests, tokens, prefix) ||
        prompt_builder_new(&b, url, so.engine.model, NULL, 42) ||
        workload_new(&w, &c.tenants[0].requests, API_COMPLETIONS, err, sizeof(err))) {
        fprintf(stderr, "bench: set-up failed\n");
        return 1;
    }
    double rss0, hwm0;
    rss_mib(&rss0, &hwm0);
    struct req_record *recs = xcalloc((size_t)requests, sizeof(*recs));
    for (int i = 0; i < requests; i++)
        req_record_init(&recs[i]);
    workload_plan(w, 1, 0, recs, (size_t)requests);
    struct prompt_pool_cfg pc = {.builder = b,
                                 .workload = w,
                                 .recs = recs,
                                 .n = (size_t)requests,
                                 .seed = 7,
                                 .budget = (size_t)budget_mb << 20,
                                 .tenant = "bench"};
    struct prompt_pool *pool;
    mono_ns t0 = clock_now();
    if (prompt_pool_new(&pool, &pc)) {
        fprintf(stderr, "bench: cannot start the pool\n");
        return 1;
    }
    while (!prompt_pool_plan_done(pool))
        clock_sleep_ns(2 * NS_PER_MS);
    double plan_s = ns_diff_s(t0, clock_now());
    double rss_planned, hwm_planned;
    rss_mib(&rss_planned, &hwm_planned);
    /* Take them in order as fast as they come: what a request composed on the spot costs
     * shows in the takes the pool had not composed. */
    double all_bytes = 0, take_s = 0;
    mono_ns t1 = clock_now();
    for (int i = 0; i < requests; i++) {
        mono_ns a = clock_now();
        bool is_body;
        char *t = prompt_pool_take(pool, (size_t)i, &is_body);
        take_s += ns_diff_s(a, clock_now());
        all_bytes += t ? (double)strlen(t) : 0;
        free(t);
    }
    double drain_s = ns_diff_s(t1, clock_now());
    struct prompt_pool_stats st;
    prompt_pool_get_stats(pool, &st);
    mono_ns c0 = clock_now();
    int n_compose = requests < 2000 ? requests : 2000;
    for (int i = 0; i < n_compose; i++) { /* one request's composing, measured alone */
        struct prompt_recipe r;
        char *text = NULL;
        if (workload_recipe(w, b, 7 + (uint64_t)i, (size_t)i, &recs[i], &r, NULL) == 0)
            text = prompt_recipe_text(b, &r, NULL);
        free(text);
        prompt_recipe_release(&r);
    }
    /* That loop planned again (with /tokenize): time composing alone on a kept recipe. */
    double plan_again_s = ns_diff_s(c0, clock_now());
    struct prompt_recipe r;
    if (workload_recipe(w, b, 7, 0, &recs[0], &r, NULL))
        return 1;
    mono_ns c1 = clock_now();
    for (int i = 0; i < n_compose; i++)
        free(prompt_recipe_text(b, &r, NULL));
    double compose_us = ns_diff_s(c1, clock_now()) / n_compose * 1e6;
    prompt_recipe_release(&r);
    double rss_end, hwm_end;
    rss_mib(&rss_end, &hwm_end);

    printf("prompts: %d requests of %d tokens (shared prefix %d), pool budget %ld MiB, "
           "against the simulator's /tokenize in this process\n",
           requests, tokens, prefix, budget_mb);
    printf("  planning (every /tokenize round trip) %8.2f s   %8.0f prompts/s\n", plan_s,
           requests / plan_s);
    printf("  planning again, %d prompts           %8.2f ms a prompt\n", n_compose,
           plan_again_s / n_compose * 1e3);
    printf("  composing one from its recipe         %8.1f us (%.0f bytes)\n", compose_us,
           all_bytes / requests);
    printf("  recipes                               %8.1f MiB (%.0f bytes a request)\n",
           st.recipe_bytes / 1048576.0, (double)st.recipe_bytes / requests);
    printf("  texts held by the pool at most        %8.1f MiB\n", st.held_peak / 1048576.0);
    printf("  every text at once would be           %8.1f MiB\n", all_bytes / 1048576.0);
    printf("  taken in order: %d composed on take; %.3f s in takes of %.3f s\n",
           (int)st.composed_on_take, take_s, drain_s);
    printf("  process RSS MiB: before %.1f, planned %.1f (peak %.1f), end %.1f (peak %.1f)\n", rss0,
           rss_planned, hwm_planned, rss_end, hwm_end);
    prompt_pool_free(pool);
    for (int i = 0; i < requests; i++)
        req_record_release(&recs[i]);
    free(recs);
    workload_free(w);
    prompt_builder_free(b);
    config_release(&c);
    sim_server_stop(sim);
    return 0;
}
