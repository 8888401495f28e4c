/*
 * validate.c - `testbench validate --config FILE [--print]`: load and check only.
 * Prints "OK: FILE (N points, M tenants)" and returns 0, or prints the loader's
 * file:line:column message and returns 2 (a config error, docs/CONFIG.md "Exit codes").
 */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exitcode.h"

static void validate_usage(FILE *f)
{
    fprintf(f, "usage: testbench validate --config FILE [--print]\n"
               "  --print  also print the resolved config (defaults filled in) as JSON\n");
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
    char err[1024];
    if (config_load(&c, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
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
    printf("OK: %s (%zu points, %zu tenants)\n", path, config_n_points(&c), c.n_tenants);
    config_release(&c);
    return TB_EXIT_OK;
}
