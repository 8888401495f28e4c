/*
 * nvml.h - GPUs through NVML opened at run time with dlopen. No nvml.h and no
 * link dependency: a machine without the driver is a normal state, not an error.
 * Private to the telemetry module.
 */
#ifndef TB_TELEMETRY_NVML_H
#define TB_TELEMETRY_NVML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/xalloc.h"

#define NVML_MAX_GPUS 64

/* Validity bits of one GPU sample (P16): bit set => the field was read this time. */
enum gpu_field {
    GF_POWER,
    GF_ENERGY,
    GF_TEMP,
    GF_MEM,
    GF_UTIL,
    GF_SM_CLOCK,
    GF_MEM_CLOCK,
    GF_THROTTLE,
    GF_PROCS, /* procs/n_procs read (n_procs may be 0: no compute process) */
    GF_MIG,   /* migs/n_migs read (MIG mode on) */
    GF__COUNT
};

#define NVML_MAX_PROCS 64 /* compute processes read per GPU per sample */
#define NVML_MAX_MIG 8    /* MIG devices per GPU (7 on the 7-slice GPUs) */
#define NVML_NO_ID (-1)   /* gpu/compute instance of a process outside MIG */

/* One process holding a CUDA context on the GPU (nvmlDeviceGetComputeRunningProcesses). */
struct gpu_proc {
    unsigned pid;              /* in the host's PID namespace, not a container's */
    unsigned long long used_b; /* GPU memory it holds; NVML_MEM_UNKNOWN when not available */
    int gpu_instance;          /* MIG GPU instance id, or NVML_NO_ID */
    int compute_instance;      /* MIG compute instance id, or NVML_NO_ID */
};
#define NVML_MEM_UNKNOWN (~0ull) /* NVML_VALUE_NOT_AVAILABLE */

/* One MIG device of a GPU in MIG mode: what NVML reads per MIG device (memory; power,
 * energy and utilisation stay the board's). */
struct mig_reading {
    char uuid[96];
    int gpu_instance; /* its GPU instance id, or NVML_NO_ID when unknown */
    unsigned long long mem_used_b, mem_total_b;
    bool mem_valid;
};

struct gpu_sample {
    unsigned power_mw;
    unsigned long long energy_mj; /* since driver load; differences are what count */
    unsigned temp_c;
    unsigned long long mem_used_b;
    unsigned long long mem_total_b;
    unsigned util_gpu_pct;
    unsigned util_mem_pct;
    unsigned sm_clock_mhz;
    unsigned mem_clock_mhz;
    unsigned long long throttle_mask; /* NVML clocks-event reason bits */
    struct gpu_proc *procs;           /* n_procs of them, owned (NULL when none) */
    unsigned n_procs;
    struct mig_reading *migs; /* n_migs of them, owned (NULL when none) */
    unsigned n_migs;
    uint32_t valid; /* 1u << enum gpu_field */
};

/* Frees the sample's process and MIG lists; the sample stays readable otherwise. */
void gpu_sample_release(struct gpu_sample *s);

/* Static facts of one GPU; strings empty and numbers < 0 when unknown. */
struct gpu_info {
    unsigned index;
    char name[96];
    char uuid[96];
    double mem_total_mib;
    double power_limit_w;
    int mig_mode; /* -1 unknown, 0 off, 1 on (power/energy are then per physical GPU) */
};

struct nvml;

/*
 * Opens the library (getenv("TESTBENCH_NVML_LIB"), else libnvidia-ml.so.1, then
 * libnvidia-ml.so), resolves the symbol table, initialises NVML and reads each GPU's facts.
 * 0, or -ENODEV / -EIO with a reason in why (the caller logs it once).
 */
MUST_USE int nvml_open(struct nvml **out, char *why, size_t why_len);
void nvml_close(struct nvml *n); /* NULL is a no-op */
unsigned nvml_count(const struct nvml *n);
const struct gpu_info *nvml_info(const struct nvml *n, unsigned i);
const char *nvml_driver_version(const struct nvml *n); /* "" when unknown */
/* Reads GPU i now; a failed or unsupported call clears that field's bit, nothing else. The
 * process list and, in MIG mode, the MIG devices are allocated: gpu_sample_release(out). */
void nvml_read(struct nvml *n, unsigned i, struct gpu_sample *out);

/* Names of the bits set in mask, in bit order; returns how many were written (<= max). */
size_t nvml_throttle_names(unsigned long long mask, const char **names, size_t max);
/* True if mask holds a reason other than gpu_idle (a real slowdown). */
bool nvml_throttle_is_slowdown(unsigned long long mask);

#endif
