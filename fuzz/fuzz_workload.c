/*
 * fuzz_workload.c - the dataset and trace readers (src/workload/dataset.c, trace.c) through
 * their real entry points: the first byte picks the reader (ShareGPT JSON, JSON lines, text
 * corpus, trace JSON lines, trace CSV), the rest is written to a memfd and read by its
 * /proc/self/fd path. Properties beyond "no crash": a refusal always says why; an accepted
 * dataset has prompts (or corpus words) and valid output lengths; an accepted trace has rows
 * in time order with lengths >= 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "workload/dataset.h"
#include "workload/trace.h"

static void check_dataset(const char *path, uint8_t pick)
{
    static const char *const formats[] = {"sharegpt", "jsonl", "text"};
    struct dataset_cfg cfg = {.path = (char *)path,
                              .format = (char *)formats[pick % 3],
                              .turns = pick & 8 ? "all" : NULL,
                              .min_prompt_tokens = 1};
    char err[1024] = "";
    struct dataset *d = NULL;
    if (dataset_load(&d, &cfg, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || d)
            abort();
        return;
    }
    if (d->n == 0 && d->n_words == 0)
        abort();
    for (size_t i = 0; i < d->n; i++)
        if (!d->v[i].prompt || d->v[i].output_tokens == 0 || d->v[i].output_tokens < -1 ||
            (cfg.turns && !d->v[i].messages))
            abort();
    dataset_free(d);
}

static void check_trace(const char *path, uint8_t pick)
{
    struct trace_cfg cfg = {.path = (char *)path,
                            .format = pick & 1 ? "csv" : "jsonl",
                            .speed = 1,
                            .block_tokens = 512,
                            .time_unit = pick & 2 ? "s" : NULL};
    char err[1024] = "";
    struct trace *t = NULL;
    if (trace_load(&t, &cfg, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || t)
            abort();
        return;
    }
    if (t->n == 0)
        abort();
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].input_tokens < 1 || t->v[i].output_tokens < 1 ||
            (i && t->v[i].t_ns < t->v[i - 1].t_ns) || (t->v[i].n_hash && !t->v[i].hash_ids))
            abort();
    trace_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int fd = memfd_create("fuzz_workload", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (data[0] & 0x80)
        check_trace(path, data[0]);
    else
        check_dataset(path, data[0]);
    close(fd);
    return 0;
}
