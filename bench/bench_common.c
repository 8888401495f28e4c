#include "bench_common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/xalloc.h"

int bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        return -1;
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int bench_wait_listening(int port, double timeout_s)
{
    mono_ns end = clock_now() + s_to_ns(timeout_s);
    while (clock_now() < end) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok)
            return 0;
        clock_sleep_ns(20 * NS_PER_MS);
    }
    return -ETIMEDOUT;
}

pid_t bench_spawn(char *const *argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

int bench_run(char *const *argv, int keep_stdout, struct rusage *ru)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!keep_stdout) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0)
                dup2(null, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage dummy;
    if (wait4(pid, &status, 0, ru ? ru : &dummy) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

json_t *bench_json_from_command(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    json_error_t e;
    json_t *j = json_loadf(p, 0, &e);
    pclose(p);
    if (!j)
        fprintf(stderr, "bench: cannot parse output of '%s': %s\n", cmd, e.text);
    return j;
}

char *bench_find(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    struct dirent *e;
    char *found = NULL;
    size_t sl = strlen(suffix);
    while (!found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n >= sl && strcmp(e->d_name + n - sl, suffix) == 0)
            found = xasprintf("%s/%s", dir, e->d_name);
    }
    closedir(d);
    return found;
}

double bench_path_number(json_t *root, const char *path)
{
    char *copy = xstrdup(path), *save = NULL;
    json_t *cur = root;
    for (char *tok = strtok_r(copy, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
        if (json_is_array(cur))
            cur = json_array_get(cur, strtoul(tok, NULL, 10));
        else
            cur = json_object_get(cur, tok);
    }
    free(copy);
    return json_is_number(cur) ? json_number_value(cur) : NAN;
}

static const char tiny_model[] =
    "name: bench/tiny-0.1b\n"
    "aliases: [bench-tiny]\n"
    "params_b: 0.1\n"
    "layers: 4\n"
    "hidden: 512\n"
    "heads: 8\n"
    "kv_heads: 8\n"
    "head_dim: 64\n"
    "intermediate: 2048\n"
    "vocab: 32000\n"
    "tie_word_embeddings: true\n"
    "dtype: bf16\n"
    "max_model_len: 8192\n"
    "source: \"bench/: a made-up tiny model so the engine is never the bottleneck\"\n";

int bench_tiny_catalog(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/tb_bench_catalog_XXXXXX");
    if (!mkdtemp(dir))
        return -errno;
    char path[512];
    snprintf(path, sizeof(path), "%s/models", dir);
    if (mkdir(path, 0700))
        return -errno;
    snprintf(path, sizeof(path), "%s/models/tiny.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fputs(tiny_model, f);
    fclose(f);
    return 0;
}

void bench_tiny_catalog_remove(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/models/tiny.yaml", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/models", dir);
    rmdir(path);
    rmdir(dir);
}
