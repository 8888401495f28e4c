/*
 * proc.c - the command-line tools the executors drive (sbatch, squeue, scancel, kubectl) and
 * the child shards of --parallel: run one and read what it prints, or start one in the
 * background. No shell runs: argv is passed as it is.
 */
#include "scale/scale_internal.h"
#include "study/study_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"

#define SCALE_MAX_OUTPUT (1024 * 1024) /* what a tool may print that we read */

void scale_on_stop(int sig)
{
    (void)sig;
    study_stop_requested = 1;
}

static int exit_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

int scale_run(const char *const *argv, char **out)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC))
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return -e;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fds[1], STDOUT_FILENO);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "testbench: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    struct buf b;
    buf_init(&b, SCALE_MAX_OUTPUT);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (buf_append(&b, chunk, (size_t)n))
            continue; /* past the ceiling: the rest is dropped, the tool still drained */
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out) {
        size_t len = 0;
        *out = buf_take(&b, &len);
        if (!*out)
            *out = xstrdup("");
    }
    buf_release(&b);
    return exit_status(status);
}

pid_t scale_spawn(const char *const *argv, const char *log, const char *const *env)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        log_error("study: cannot open %s: %s", log, strerror(e));
        return -e;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (pid == 0) {
        setpgid(0, 0); /* Ctrl-C reaches the driver, which stops its children in order */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "testbench: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    return pid;
}

char *scale_shell_quote(const char *text)
{
    if (*text && !text[strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789_-+=/.,:@%")])
        return xstrdup(text);
    size_t n = 3;
    for (const char *p = text; *p; p++)
        n += *p == '\'' ? 4 : 1;
    char *q = xcalloc(1, n), *o = q;
    *o++ = '\'';
    for (const char *p = text; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o = '\'';
    return q;
}

char *scale_argv_line(const char *const *argv)
{
    char *line = xstrdup("");
    for (size_t i = 0; argv[i]; i++) {
        char *q = scale_shell_quote(argv[i]);
        char *next = xasprintf("%s%s%s", line, i ? " " : "", q);
        free(q);
        free(line);
        line = next;
    }
    return line;
}
