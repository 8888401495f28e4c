/*
 * bench_stopping.c - what stopping a probe once its verdict is certain saves (docs/STUDY.md
 * "Probes"): runs configs/study_quick.yaml on the simulator twice, with the stop rule and as
 * the fixed-size design of the same confidence (every probe to its cap, study.stop_when_decided
 * false), and prints each setup's capacity answer and the measuring time of both; then the
 * plan's estimate of both designs for configs/llama3_70b_study.yaml. The target: the same
 * answers within one user for at most half the fixed design's measuring time. About five
 * minutes (the simulator runs in real time).
 *
 *   ./build/bench_stopping [study file]     (default configs/study_quick.yaml)
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bench_common.h"
#include "core/clock.h"
#include "core/xalloc.h"

#define MAX_SETUPS 64

struct outcome {
    double spent_s, fixed_s, wall_s;
    size_t probes, stopped;
    char setup[MAX_SETUPS][96];
    long users[MAX_SETUPS];
    size_t n;
};

/* The study folder the last run wrote under out (the only one there). */
static char *study_folder(const char *out)
{
    char *cmd = xasprintf("ls -d %s/*/ 2>/dev/null | head -1", out);
    FILE *p = popen(cmd, "r");
    char line[1024] = "";
    if (p && fgets(line, sizeof(line), p))
        line[strcspn(line, "\n")] = '\0';
    if (p)
        pclose(p);
    free(cmd);
    size_t n = strlen(line);
    if (n && line[n - 1] == '/')
        line[n - 1] = '\0';
    return line[0] ? xstrdup(line) : NULL;
}

static int run_study(const char *config, const char *out, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    char *const argv[] = {TB_BINARY, "study",        "--config",  (char *)config, "--backend",
                          "sim",     "--output-dir", (char *)out, "--quiet",      NULL};
    mono_ns t0 = clock_now();
    int rc = bench_run(argv, 0, NULL);
    o->wall_s = ns_diff_s(t0, clock_now());
    if (rc)
        return rc;
    char *dir = study_folder(out);
    char *path = dir ? xasprintf("%s/study.json", dir) : NULL;
    json_t *doc = path ? json_load_file(path, 0, NULL) : NULL;
    free(path);
    free(dir);
    if (!doc)
        return -1;
    json_t *m = json_object_get(doc, "measuring");
    o->spent_s = json_number_value(json_object_get(m, "spent_s"));
    o->fixed_s = json_number_value(json_object_get(m, "fixed_design_s"));
    o->probes = (size_t)json_integer_value(json_object_get(m, "probes"));
    o->stopped = (size_t)json_integer_value(json_object_get(m, "stopped_when_decided"));
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(doc, "rows"), i, row)
    {
        const char *setup = json_string_value(json_object_get(row, "setup"));
        json_t *mx = json_object_get(row, "meas_max_users");
        if (!setup || !json_is_integer(mx))
            continue;
        size_t k = 0;
        while (k < o->n && strcmp(o->setup[k], setup) != 0)
            k++;
        if (k == o->n && o->n < MAX_SETUPS) {
            snprintf(o->setup[k], sizeof(o->setup[k]), "%s", setup);
            o->users[k] = (long)json_integer_value(mx);
            o->n++;
        }
    }
    json_decref(doc);
    return 0;
}

/* A copy of the study file with the stop rule off: the fixed design. */
static char *fixed_copy(const char *config, const char *dir)
{
    FILE *in = fopen(config, "r");
    char *path = xasprintf("%s/fixed.yaml", dir);
    FILE *out = fopen(path, "w");
    if (!in || !out) {
        if (in)
            fclose(in);
        if (out)
            fclose(out);
        free(path);
        return NULL;
    }
    char line[4096];
    while (fgets(line, sizeof(line), in)) {
        fputs(line, out);
        if (strncmp(line, "study:", 6) == 0)
            fputs("  stop_when_decided: false\n", out);
    }
    fclose(in);
    fclose(out);
    return path;
}

int main(int argc, char **argv)
{
    const char *config = argc > 1 ? argv[1] : "configs/study_quick.yaml";
    char dir[] = "/tmp/tb_bench_stopping_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char *fixed = fixed_copy(config, dir);
    char *out_a = xasprintf("%s/stop", dir), *out_b = xasprintf("%s/fixed", dir);
    struct outcome a, b;
    printf("%s on the simulator, stopping when certain, then the fixed design:\n", config);
    fflush(stdout);
    if (!fixed || run_study(config, out_a, &a) || run_study(fixed, out_b, &b)) {
        fprintf(stderr, "bench_stopping: a study failed (its folder: %s)\n", dir);
        return 1;
    }
    printf("  %-52s %8s %8s\n", "setup", "stop", "fixed");
    bool same = a.n == b.n && a.n > 0;
    for (size_t k = 0; k < a.n; k++) {
        long other = k < b.n ? b.users[k] : -1;
        same &= labs(a.users[k] - other) <= 1;
        printf("  %-52s %8ld %8ld\n", a.setup[k], a.users[k], other);
    }
    printf("  measuring: %.0f s with the stop rule (%zu probes, %zu stopped once certain; its "
           "own estimate of the fixed design %.0f s), %.0f s fixed: %.0f %%\n",
           a.spent_s, a.probes, a.stopped, a.fixed_s, b.spent_s,
           b.spent_s > 0 ? a.spent_s / b.spent_s * 100 : NAN);
    printf("  wall time: %.0f s and %.0f s\n", a.wall_s, b.wall_s);
    printf("  target (answers within one user, at most half the time): %s\n",
           same && a.spent_s * 2 <= b.spent_s ? "met" : "missed");
    printf("\nconfigs/llama3_70b_study.yaml, the plan's estimate:\n");
    fflush(stdout);
    char *cmd = xasprintf("%s study --config configs/llama3_70b_study.yaml --plan-only | tail -1",
                          TB_BINARY);
    int rc = system(cmd);
    free(cmd);
    free(out_a);
    free(out_b);
    free(fixed);
    char *rm = xasprintf("rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    free(rm);
    return rc == 0 ? 0 : 1;
}
