/*
 * test_study_backend_cfg.c - the docker backend's settings as `testbench validate` checks them
 * (src/config/study_cfg.c): backend.gpus (none, all, a count, device=...) and backend.network
 * (host, a network's name; never none or bridge, where the study cannot reach the server), each
 * error with file:line:column, the key and what is allowed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/xalloc.h"

/* text in a fresh temp file; the caller unlink()s and free()s the path. */
static char *write_temp(const char *text)
{
    char *path = xstrdup("/tmp/tb_backend_cfg_XXXXXX.yaml");
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    return path;
}

/* backend.gpus and backend.network as `testbench validate` checks them: file:line:column, the
 * key, and what is allowed. */
static void docker_values_are_validated(void **state)
{
    (void)state;
    static const struct {
        const char *backend; /* the backend section's body */
        const char *where;   /* "", or "LINE:COL: key: " */
        const char *want;
    } cases[] = {
        {"  type: docker\n  gpus: none\n  network: host\n", "", ""},
        {"  gpus: all\n  network: testbench_default\n", "", ""},
        {"  gpus: 2\n", "", ""},
        {"  gpus: \"device=0,1\"\n", "", ""},
        {"  gpus: 0\n", "9:9: backend.gpus: ", "is not none, all, a GPU count"},
        {"  gpus: \"\"\n", "9:9: backend.gpus: ", "is not none, all"},
        {"  gpus: \"all please\"\n", "9:9: backend.gpus: ", "docker's device=... form"},
        {"  network: none\n",
         "9:12: backend.network: ", "cannot reach a container on network none"},
        {"  network: bridge\n", "9:12: backend.network: ", "use host, a network of your own"},
        {"  network: \"my net\"\n", "9:12: backend.network: ", "is not a docker network name"},
        {"  network: \"-x\"\n", "9:12: backend.network: ", "is not a docker network name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = xasprintf("study:\n  name: v\nsetups:\n  grid:\n"
                               "    model: [meta-llama/Llama-3.1-8B-Instruct]\n"
                               "model:\n  name: meta-llama/Llama-3.1-8B-Instruct\n"
                               "backend:\n%s",
                               cases[i].backend);
        char *path = write_temp(text);
        struct config c;
        char err[1024] = "";
        int rc = config_load(&c, path, err, sizeof(err));
        char *want = xasprintf("%s:%s", path, cases[i].where);
        if (cases[i].where[0] ? rc != -EINVAL || strncmp(err, want, strlen(want)) != 0 ||
                                    !strstr(err, cases[i].want)
                              : rc != 0)
            fail_msg("for:\n%s\nwant '%s...%s'\ngot rc %d: '%s'", text, want, cases[i].want, rc,
                     err);
        if (rc == 0)
            config_release(&c);
        free(want);
        unlink(path);
        free(path);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(docker_values_are_validated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
