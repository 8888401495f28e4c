/*
 * host.c - /proc/stat CPU deltas, /proc/meminfo, CLOCK_PROCESS_CPUTIME_ID.
 * Idle time is idle + iowait (a CPU waiting on I/O runs nothing); guest time is already
 * inside user/nice, so it is not added again.
 */
#include "telemetry/host.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

bool host_parse_stat(const char *text, unsigned long long *busy, unsigned long long *total)
{
    unsigned long long v[8] = {0};
    if (strncmp(text, "cpu ", 4) != 0)
        return false;
    int n = sscanf(text + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    if (n < 4)
        return false;
    unsigned long long t = 0;
    for (int i = 0; i < n; i++)
        t += v[i];
    *total = t;
    *busy = t - v[3] - v[4];
    return true;
}

static bool meminfo_kib(const char *text, const char *key, unsigned long long *out)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == ':')
            return sscanf(p + kl + 1, "%llu", out) == 1;
    return false;
}

bool host_parse_meminfo(const char *text, double *used_mib)
{
    unsigned long long total, avail;
    if (!meminfo_kib(text, "MemTotal", &total) || !meminfo_kib(text, "MemAvailable", &avail))
        return false;
    *used_mib = avail > total ? 0 : (double)(total - avail) / 1024.0;
    return true;
}

/* Reads a small /proc file into buf (NUL-terminated); false if it cannot. */
static bool read_small(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

static bool stat_now(unsigned long long *busy, unsigned long long *total)
{
    char buf[512]; /* the first line is all we need */
    return read_small("/proc/stat", buf, sizeof(buf)) && host_parse_stat(buf, busy, total);
}

void host_reader_init(struct host_reader *h)
{
    memset(h, 0, sizeof(*h));
    h->have_prev = stat_now(&h->prev_busy, &h->prev_total);
}

void host_read(struct host_reader *h, struct host_sample *s)
{
    memset(s, 0, sizeof(*s));
    unsigned long long busy, total;
    if (stat_now(&busy, &total)) {
        if (h->have_prev && total > h->prev_total && busy >= h->prev_busy) {
            s->cpu_util_pct =
                100.0 * (double)(busy - h->prev_busy) / (double)(total - h->prev_total);
            s->valid |= 1u << HF_CPU;
        }
        /* Too short an interval (no jiffy passed) leaves the old reading as the base. */
        if (!h->have_prev || total > h->prev_total) {
            h->prev_busy = busy;
            h->prev_total = total;
            h->have_prev = true;
        }
    }
    char mem[8192];
    if (read_small("/proc/meminfo", mem, sizeof(mem)) && host_parse_meminfo(mem, &s->mem_used_mib))
        s->valid |= 1u << HF_MEM;
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) {
        s->proc_cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        s->valid |= 1u << HF_PROC_CPU;
    }
}
