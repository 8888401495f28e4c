/*
 * validate.c - `testbench validate --config FILE [--print]`: load and check only.
 * Prints "OK: FILE (N points, M tenants)" and returns 0, or prints every error the loader
 * found, each with file:line:column (unknown keys with "did you mean"), in file order, and
 * returns 2 (a config error, docs/CONFIG.md "Exit codes").
 */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/servable.h"
#include "core/exitcode.h"
#include "core/text.h"
#include "study/setups.h"
#include "study/study.h"

static void validate_usage(FILE *f)
{
    fprintf(f, "usage: testbench validate --config FILE [--print]\n"
               "  --print  also print the resolved config (defaults filled in) as JSON\n");
}

/* The loader's messages (one per line, each with file:line:column), cleaned for a terminal,
 * then how many there were. */
static void errors_print(const char *path, const char *err)
{
    size_t n = 0;
    for (const char *line = err; *line;) {
        size_t len = strcspn(line, "\n");
        char raw[2048], shown[2048];
        snprintf(raw, sizeof(raw), "%.*s", (int)len, line);
        term_clean(shown, sizeof(shown), raw);
        fprintf(stderr, "%s\n", shown);
        n++;
        line += len;
        if (*line == '\n')
            line++;
    }
    if (n > 1) {
        char p[1024];
        term_clean(p, sizeof(p), path);
        fprintf(stderr, "%zu errors in %s\n", n, p);
    }
}

int validate_main(int argc, char **argv)
{
    const char *path = NULL;
    bool print = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "testbench validate: %s needs a file\n", a);
                validate_usage(stderr);
                return TB_EXIT_USAGE;
            }
            path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
        } else if (strcmp(a, "--print") == 0) {
            print = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            validate_usage(stdout);
            return TB_EXIT_OK;
        } else {
            fprintf(stderr, "testbench validate: unknown argument '%s'\n", a);
            validate_usage(stderr);
            return TB_EXIT_USAGE;
        }
    }
    if (!path || !*path) {
        fprintf(stderr, "testbench validate: --config FILE is required\n");
        validate_usage(stderr);
        return TB_EXIT_USAGE;
    }

    struct config c;
    char err[16384]; /* every error in the file, one per line */
    if (config_load(&c, path, err, sizeof(err)) != 0) {
        errors_print(path, err);
        return TB_EXIT_USAGE;
    }
    if (print) {
        json_t *j = config_to_json(&c);
        char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))
                    : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(j);
    }
    if (config_prompt_note(&c))
        fprintf(stderr, "%s: warning: %s\n", path, config_prompt_note(&c));
    /* A run config describes a server that already runs: a checkpoint it could not have
     * loaded with that quantization is worth saying, not refusing (a study's setups, which
     * testbench launches, are refused below). */
    if (servable_config_check(&c, err, sizeof(err)))
        fprintf(stderr, "%s: warning: %s\n", path, err);
    if (c.study.present) {
        /* A study file: its workloads are run configs of their own, checked here too. */
        size_t nw = c.study.n_workloads ? c.study.n_workloads : 1, bad = 0;
        for (size_t i = 0; i < nw; i++) {
            const struct workload_cfg *w = c.study.n_workloads ? &c.study.workloads[i] : NULL;
            if (!w || !w->config)
                continue;
            char *wp = study_workload_path(c.path, w);
            struct config wc;
            int rc = config_load(&wc, wp, err, sizeof(err));
            if (!rc && wc.tenants_given) {
                snprintf(err, sizeof(err), "%s: a study workload has one tenant; this has %zu", wp,
                         wc.n_tenants);
                rc = -EINVAL;
            }
            config_release(&wc);
            if (rc) {
                /* Every workload is checked: each one's errors under its name. */
                fprintf(stderr, "%s: workloads[%zu] (%s):\n", path, i, w->name);
                errors_print(wp, err);
                bad++;
            }
            free(wp);
        }
        if (bad) {
            config_release(&c);
            return TB_EXIT_USAGE;
        }
        /* A checkpoint vLLM cannot load with the setup's --quantization is refused before
         * any server is started for it. */
        if (study_setups_check(&c, err, sizeof(err))) {
            fprintf(stderr, "%s: setups: %s\n", path, err);
            config_release(&c);
            return TB_EXIT_USAGE;
        }
        /* What the study itself checks before launching anything: setups the engine can
         * plan, command lines that can be built, workload names that can name files. */
        if (study_validate(path)) {
            config_release(&c);
            return TB_EXIT_USAGE;
        }
        printf("OK: %s (study: %zu setups x %zu workloads, backend %s)\n", path,
               study_cfg_n_setups(&c.study), nw, c.study.backend.type);
    } else {
        size_t np = config_n_points(&c);
        printf("OK: %s (%zu %s, %zu %s)\n", path, np, np == 1 ? "point" : "points", c.n_tenants,
               c.n_tenants == 1 ? "tenant" : "tenants");
    }
    config_release(&c);
    return TB_EXIT_OK;
}
