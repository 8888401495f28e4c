/*
 * nvml_double.c - a stand-in for libnvidia-ml.so with scripted values, loaded by the real
 * loader through TESTBENCH_NVML_LIB. Built several times from this one source (see
 * tests/telemetry.cmake), because a symbol's absence can only be shown by a library that
 * lacks it:
 *   nvml_double          every symbol, the _v2 / EventReasons spellings
 *   nvml_double_old      unversioned nvmlInit/GetCount/GetHandleByIndex, the older
 *                        ...ThrottleReasons name, and no nvmlDeviceGetTotalEnergyConsumption
 *   nvml_double_broken   no nvmlShutdown (a required symbol)
 *
 * Environment, read at nvmlInit (which also resets the call counters):
 *   NVML_DOUBLE_SCENARIO   ramp (default) | init_fail | zero_devices
 *   NVML_DOUBLE_GPUS       devices (default 1, at most 8)
 *   NVML_DOUBLE_MIG        1: MIG mode on
 *   NVML_DOUBLE_UTIL_UNSUPPORTED  1: utilisation answers NOT_SUPPORTED (3)
 *   NVML_DOUBLE_PROCS      compute processes per device (default 2, at most 8)
 *
 * Values for device d on the k-th call (k from 0) of each function:
 *   power        100 W + 10 W * k + 50 W * d        (reported in mW)
 *   energy       1000 J * (d + 1) + 500 J * k       (reported in mJ)
 *   temperature  40 C + k
 *   memory       total 81920 MiB, used 4096 MiB + 1024 MiB * d
 *   utilisation  gpu 50 %, memory 20 %
 *   clocks       SM 1980 MHz, memory 2619 MHz
 *   reasons      k = 0: gpu_idle; k = 3: sw_power_cap; k = 4: sw_power_cap | sw_thermal_slowdown
 *   power limit  700 W
 *   processes    p = 0..PROCS-1: pid 1000 + 10 * d + p, 1024 MiB + 512 MiB * p; in MIG mode on
 *                GPU instance p % 2 + 1, compute instance 0 (else 0xFFFFFFFF); the full library
 *                answers ..._v3 with the v2 layout, the old one the unversioned call with v1
 *   MIG devices  in MIG mode, 2 per device: uuid MIG-double-d-k, GPU instance k + 1, memory
 *                total 40960 MiB, used 2048 MiB + 1024 MiB * k; max count 2 (NOT_SUPPORTED
 *                outside MIG mode)
 */
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_DEV 8
#define NOT_SUPPORTED 3
#define UNINITIALIZED 1
#define INVALID_ARGUMENT 2
#define UNKNOWN 999

struct memory {
    unsigned long long total, free, used;
};
struct utilization {
    unsigned int gpu, memory;
};
struct device {
    int index;
};

enum { C_POWER, C_ENERGY, C_TEMP, C_REASONS, C__COUNT };

#define MAX_PROCS 8
#define MIG_PER_DEV 2
#define INSUFFICIENT_SIZE 7
#define NOT_FOUND 6

static struct device devices[MAX_DEV];
static struct device mig_devices[MAX_DEV][MIG_PER_DEV]; /* index: d * MIG_PER_DEV + k */
static int n_procs;
static unsigned calls[C__COUNT][MAX_DEV];
static int n_devices;
static int inited;
static int mig;
static int util_unsupported;

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? (int)strtol(v, NULL, 10) : dflt;
}

static int dev_index(void *h)
{
    struct device *d = h;
    if (!inited || !d || d < devices || d >= devices + MAX_DEV)
        return -1;
    return d->index;
}

static int init_common(void)
{
    const char *sc = getenv("NVML_DOUBLE_SCENARIO");
    memset(calls, 0, sizeof(calls));
    if (sc && strcmp(sc, "init_fail") == 0)
        return UNKNOWN;
    n_devices = env_int("NVML_DOUBLE_GPUS", 1);
    if (n_devices > MAX_DEV)
        n_devices = MAX_DEV;
    if (sc && strcmp(sc, "zero_devices") == 0)
        n_devices = 0;
    mig = env_int("NVML_DOUBLE_MIG", 0);
    util_unsupported = env_int("NVML_DOUBLE_UTIL_UNSUPPORTED", 0);
    n_procs = env_int("NVML_DOUBLE_PROCS", 2);
    if (n_procs > MAX_PROCS)
        n_procs = MAX_PROCS;
    for (int i = 0; i < MAX_DEV; i++) {
        devices[i].index = i;
        for (int k = 0; k < MIG_PER_DEV; k++)
            mig_devices[i][k].index = i * MIG_PER_DEV + k;
    }
    inited = 1;
    return 0;
}

/* A MIG device handle's index (d * MIG_PER_DEV + k), or -1. */
static int mig_index(void *h)
{
    struct device *m = h, *first = &mig_devices[0][0];
    if (!inited || !mig || !m || m < first || m >= first + MAX_DEV * MIG_PER_DEV)
        return -1;
    return m->index;
}

struct proc_v1 {
    unsigned int pid;
    unsigned long long used;
};
struct proc_v2 {
    unsigned int pid;
    unsigned long long used;
    unsigned int gi, ci;
};

/* Fills the v2 layout (v1 takes its first two fields); INSUFFICIENT_SIZE when *count is short. */
static int procs(void *h, unsigned int *count, struct proc_v2 *out)
{
    int d = dev_index(h);
    if (d < 0 || !count)
        return INVALID_ARGUMENT;
    if (*count < (unsigned)n_procs) {
        *count = (unsigned)n_procs;
        return INSUFFICIENT_SIZE;
    }
    for (int p = 0; p < n_procs; p++) {
        out[p].pid = 1000u + 10u * (unsigned)d + (unsigned)p;
        out[p].used = (1024ull + 512ull * (unsigned)p) * 1024ull * 1024ull;
        out[p].gi = mig ? (unsigned)(p % 2 + 1) : 0xFFFFFFFFu;
        out[p].ci = mig ? 0u : 0xFFFFFFFFu;
    }
    *count = (unsigned)n_procs;
    return 0;
}

static int get_count(unsigned int *n)
{
    if (!inited)
        return UNINITIALIZED;
    *n = (unsigned)n_devices;
    return 0;
}

static int get_handle(unsigned int i, void **h)
{
    if (!inited)
        return UNINITIALIZED;
    if ((int)i >= n_devices)
        return INVALID_ARGUMENT;
    *h = &devices[i];
    return 0;
}

static int reasons(void *h, unsigned long long *mask)
{
    int d = dev_index(h);
    if (d < 0)
        return INVALID_ARGUMENT;
    unsigned k = calls[C_REASONS][d]++;
    *mask = k == 0 ? 0x1ull : k == 3 ? 0x4ull : k == 4 ? (0x4ull | 0x20ull) : 0;
    return 0;
}

/* Prototypes keep -Wmissing-prototypes quiet; they are this library's ABI. */
EXPORT int nvmlShutdown(void);
EXPORT const char *nvmlErrorString(int r);
EXPORT int nvmlDeviceGetName(void *h, char *buf, unsigned int len);
EXPORT int nvmlDeviceGetUUID(void *h, char *buf, unsigned int len);
EXPORT int nvmlSystemGetDriverVersion(char *buf, unsigned int len);
EXPORT int nvmlDeviceGetPowerUsage(void *h, unsigned int *mw);
EXPORT int nvmlDeviceGetTemperature(void *h, int sensor, unsigned int *c);
EXPORT int nvmlDeviceGetMemoryInfo(void *h, struct memory *m);
EXPORT int nvmlDeviceGetUtilizationRates(void *h, struct utilization *u);
EXPORT int nvmlDeviceGetClockInfo(void *h, int type, unsigned int *mhz);
EXPORT int nvmlDeviceGetEnforcedPowerLimit(void *h, unsigned int *mw);
EXPORT int nvmlDeviceGetMigMode(void *h, unsigned int *cur, unsigned int *pending);
EXPORT int nvmlDeviceGetMaxMigDeviceCount(void *h, unsigned int *count);
EXPORT int nvmlDeviceGetMigDeviceHandleByIndex(void *h, unsigned int i, void **mig_h);
EXPORT int nvmlDeviceGetGpuInstanceId(void *h, unsigned int *id);

#ifdef NVML_DOUBLE_OLD
EXPORT int nvmlInit(void);
EXPORT int nvmlDeviceGetCount(unsigned int *n);
EXPORT int nvmlDeviceGetHandleByIndex(unsigned int i, void **h);
EXPORT int nvmlDeviceGetCurrentClocksThrottleReasons(void *h, unsigned long long *mask);

int nvmlInit(void)
{
    return init_common();
}
int nvmlDeviceGetCount(unsigned int *n)
{
    return get_count(n);
}
int nvmlDeviceGetHandleByIndex(unsigned int i, void **h)
{
    return get_handle(i, h);
}
int nvmlDeviceGetCurrentClocksThrottleReasons(void *h, unsigned long long *mask)
{
    return reasons(h, mask);
}
EXPORT int nvmlDeviceGetComputeRunningProcesses(void *h, unsigned int *count, struct proc_v1 *out);
int nvmlDeviceGetComputeRunningProcesses(void *h, unsigned int *count, struct proc_v1 *out)
{
    struct proc_v2 tmp[MAX_PROCS];
    unsigned n = *count < MAX_PROCS ? *count : MAX_PROCS;
    int rc = procs(h, &n, tmp);
    *count = n;
    for (unsigned p = 0; rc == 0 && p < n; p++) {
        out[p].pid = tmp[p].pid;
        out[p].used = tmp[p].used;
    }
    return rc;
}
#else
EXPORT int nvmlInit_v2(void);
EXPORT int nvmlDeviceGetCount_v2(unsigned int *n);
EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **h);
EXPORT int nvmlDeviceGetCurrentClocksEventReasons(void *h, unsigned long long *mask);
EXPORT int nvmlDeviceGetTotalEnergyConsumption(void *h, unsigned long long *mj);

int nvmlInit_v2(void)
{
    return init_common();
}
int nvmlDeviceGetCount_v2(unsigned int *n)
{
    return get_count(n);
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **h)
{
    return get_handle(i, h);
}
int nvmlDeviceGetCurrentClocksEventReasons(void *h, unsigned long long *mask)
{
    return reasons(h, mask);
}
EXPORT int nvmlDeviceGetComputeRunningProcesses_v3(void *h, unsigned int *count,
                                                   struct proc_v2 *out);
int nvmlDeviceGetComputeRunningProcesses_v3(void *h, unsigned int *count, struct proc_v2 *out)
{
    return procs(h, count, out);
}
int nvmlDeviceGetTotalEnergyConsumption(void *h, unsigned long long *mj)
{
    int d = dev_index(h);
    if (d < 0)
        return INVALID_ARGUMENT;
    unsigned k = calls[C_ENERGY][d]++;
    *mj = 1000000ull * (unsigned)(d + 1) + 500000ull * k;
    return 0;
}
#endif

#ifndef NVML_DOUBLE_BROKEN
int nvmlShutdown(void)
{
    inited = 0;
    return 0;
}
#endif

const char *nvmlErrorString(int r)
{
    return r == UNKNOWN ? "Unknown Error (double)" : r == NOT_SUPPORTED ? "Not Supported" : "error";
}

int nvmlDeviceGetName(void *h, char *buf, unsigned int len)
{
    if (dev_index(h) < 0 || len < 18)
        return INVALID_ARGUMENT;
    strcpy(buf, "NVIDIA Double GPU");
    return 0;
}

int nvmlDeviceGetUUID(void *h, char *buf, unsigned int len)
{
    int m = mig_index(h);
    if (m >= 0 && len >= 16) {
        memcpy(buf, "MIG-double-d-k", 15);
        buf[11] = (char)('0' + m / MIG_PER_DEV);
        buf[13] = (char)('0' + m % MIG_PER_DEV);
        return 0;
    }
    int d = dev_index(h);
    if (d < 0 || len < 16)
        return INVALID_ARGUMENT;
    memcpy(buf, "GPU-double-0", 13);
    buf[11] = (char)('0' + d);
    return 0;
}

int nvmlSystemGetDriverVersion(char *buf, unsigned int len)
{
    if (len < 14)
        return INVALID_ARGUMENT;
    strcpy(buf, "570.00-double");
    return 0;
}

int nvmlDeviceGetPowerUsage(void *h, unsigned int *mw)
{
    int d = dev_index(h);
    if (d < 0)
        return INVALID_ARGUMENT;
    unsigned k = calls[C_POWER][d]++;
    *mw = 100000u + 10000u * k + 50000u * (unsigned)d;
    return 0;
}

int nvmlDeviceGetTemperature(void *h, int sensor, unsigned int *c)
{
    int d = dev_index(h);
    if (d < 0 || sensor != 0)
        return INVALID_ARGUMENT;
    *c = 40u + calls[C_TEMP][d]++;
    return 0;
}

int nvmlDeviceGetMemoryInfo(void *h, struct memory *m)
{
    const unsigned long long mib = 1024ull * 1024ull;
    int g = mig_index(h);
    if (g >= 0) {
        m->total = 40960ull * mib;
        m->used = (2048ull + 1024ull * (unsigned)(g % MIG_PER_DEV)) * mib;
        m->free = m->total - m->used;
        return 0;
    }
    int d = dev_index(h);
    if (d < 0)
        return INVALID_ARGUMENT;
    m->total = 81920ull * mib;
    m->used = (4096ull + 1024ull * (unsigned)d) * mib;
    m->free = m->total - m->used;
    return 0;
}

int nvmlDeviceGetUtilizationRates(void *h, struct utilization *u)
{
    if (dev_index(h) < 0)
        return INVALID_ARGUMENT;
    if (util_unsupported)
        return NOT_SUPPORTED;
    u->gpu = 50;
    u->memory = 20;
    return 0;
}

int nvmlDeviceGetClockInfo(void *h, int type, unsigned int *mhz)
{
    if (dev_index(h) < 0)
        return INVALID_ARGUMENT;
    if (type == 1)
        *mhz = 1980;
    else if (type == 2)
        *mhz = 2619;
    else
        return NOT_SUPPORTED;
    return 0;
}

int nvmlDeviceGetEnforcedPowerLimit(void *h, unsigned int *mw)
{
    if (dev_index(h) < 0)
        return INVALID_ARGUMENT;
    *mw = 700000;
    return 0;
}

int nvmlDeviceGetMigMode(void *h, unsigned int *cur, unsigned int *pending)
{
    if (dev_index(h) < 0)
        return INVALID_ARGUMENT;
    *cur = *pending = mig ? 1u : 0u;
    return 0;
}

int nvmlDeviceGetMaxMigDeviceCount(void *h, unsigned int *count)
{
    if (dev_index(h) < 0)
        return INVALID_ARGUMENT;
    if (!mig)
        return NOT_SUPPORTED;
    *count = MIG_PER_DEV;
    return 0;
}

int nvmlDeviceGetMigDeviceHandleByIndex(void *h, unsigned int i, void **mig_h)
{
    int d = dev_index(h);
    if (d < 0)
        return INVALID_ARGUMENT;
    if (!mig || i >= MIG_PER_DEV)
        return NOT_FOUND;
    *mig_h = &mig_devices[d][i];
    return 0;
}

int nvmlDeviceGetGpuInstanceId(void *h, unsigned int *id)
{
    int m = mig_index(h);
    if (m < 0)
        return INVALID_ARGUMENT;
    *id = (unsigned)(m % MIG_PER_DEV) + 1u;
    return 0;
}
