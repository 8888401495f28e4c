/*
 * host.h - the host's CPU and memory from /proc, and this process's CPU time.
 * Private to the telemetry module; the parsers take text so tests can feed them.
 */
#ifndef TB_TELEMETRY_HOST_H
#define TB_TELEMETRY_HOST_H

#include <stdbool.h>
#include <stdint.h>

enum host_field { HF_CPU, HF_MEM, HF_PROC_CPU, HF__COUNT };

struct host_sample {
    double cpu_util_pct; /* all CPUs, since the previous read */
    double mem_used_mib; /* MemTotal - MemAvailable */
    double proc_cpu_s;   /* this process, since it started */
    uint32_t valid;      /* 1u << enum host_field */
};

/* Keeps the previous /proc/stat totals: utilisation is a difference of two reads. */
struct host_reader {
    unsigned long long prev_busy, prev_total;
    bool have_prev;
};

void host_reader_init(struct host_reader *h); /* takes the first /proc/stat reading */
void host_read(struct host_reader *h, struct host_sample *out);

/* "cpu  user nice system idle iowait irq softirq steal ..." -> busy and total jiffies. */
bool host_parse_stat(const char *text, unsigned long long *busy, unsigned long long *total);
/* /proc/meminfo text -> MiB in use; false without MemTotal and MemAvailable. */
bool host_parse_meminfo(const char *text, double *used_mib);

#endif
