/*
 * test_config_hardening.c - config files that are not configs (issue 13, item 17): nesting
 * deep enough to make libyaml quadratic, and paths that are not regular files. Through
 * `testbench validate`, the command a user runs first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"

/* Runs `testbench validate --config path` (killed after 10 s); output in out, exit code back. */
static int validate(const char *path, char *out, size_t cap, double *secs)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "timeout 10 %s validate --config '%s' 2>&1", TB_BINARY, path);
    mono_ns t0 = clock_now();
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    *secs = ns_diff_s(t0, clock_now());
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void write_file(const char *path, const char *head, char fill, size_t n, const char *tail)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(head, f);
    for (size_t i = 0; i < n; i++)
        fputc(fill, f);
    fputs(tail, f);
    assert_int_equal(fclose(f), 0);
}

/* item 17: 200k nested '[' (a 200 KB file; 96 s in libyaml before) is refused at once,
 * with the position of the level that goes too deep. */
static void item17_deep_nesting_refused(void **state)
{
    (void)state;
    char path[] = "/tmp/tb_deep_XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    close(fd);
    char out[4096], want[512];
    double secs;

    write_file(path, "", '[', 200000, "\n");
    assert_int_equal(validate(path, out, sizeof(out), &secs), 2);
    snprintf(want, sizeof(want), "%s:1:65: nested deeper than 64", path);
    if (!strstr(out, want))
        fail_msg("'%s' lacks '%s'", out, want);
    if (secs > 2)
        fail_msg("refusing 200k levels took %.2f s", secs);

    /* Block mappings count too; the position is that of the 65th level. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 70; i++)
        fprintf(f, "%*sk%d:\n", i, "", i);
    fprintf(f, "%*sv: 1\n", 70, "");
    assert_int_equal(fclose(f), 0);
    assert_int_equal(validate(path, out, sizeof(out), &secs), 2);
    snprintf(want, sizeof(want), "%s:65:65: nested deeper than 64", path);
    if (!strstr(out, want))
        fail_msg("'%s' lacks '%s'", out, want);

    /* Under the limit, the loader goes on to its usual checks. */
    write_file(path, "benchmark: ", '[', 10, "1]]]]]]]]]]\n");
    assert_int_equal(validate(path, out, sizeof(out), &secs), 2);
    assert_null(strstr(out, "nested deeper"));
    unlink(path);
}

/* item 17: a FIFO (or a directory) as the config path is refused, not waited on. */
static void item17_fifo_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/tb_fifo_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/config.yaml", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    char out[4096];
    double secs;
    assert_int_equal(validate(path, out, sizeof(out), &secs), 2); /* 124: timeout killed it */
    if (!strstr(out, "not a regular file (a FIFO)"))
        fail_msg("FIFO: '%s'", out);
    assert_true(secs < 5);
    assert_int_equal(validate(dir, out, sizeof(out), &secs), 2);
    if (!strstr(out, "not a regular file (a directory)"))
        fail_msg("directory: '%s'", out);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(item17_deep_nesting_refused),
        cmocka_unit_test(item17_fifo_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
