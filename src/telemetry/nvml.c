/*
 * nvml.c - NVML by dlopen with a symbol table (nvtop's approach, github.com/Syllo/nvtop
 * src/extract_gpuinfo_nvidia.c, without its forty copy-pasted dlsym blocks). The ABI pieces we need
 * are declared here: nvmlReturn_t is an int (0 = success, 3 = NOT_SUPPORTED), a device handle is an
 * opaque pointer, and the two structs below match nvml.h's nvmlMemory_t (v1) and nvmlUtilization_t.
 *
 * Required: init, shutdown, device count, handle by index (each "_v2" first, then the
 * unversioned name). Everything else is optional; a per-call error, NOT_SUPPORTED included,
 * clears that field's valid bit and the sample goes on. Per sample also the compute processes
 * (pid, memory) and, in MIG mode, each MIG device's memory: several servers on one GPU.
 */
#include "telemetry/nvml.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvml_ret;   /* nvmlReturn_t */
typedef void *nvml_dev; /* nvmlDevice_t */

#define NVML_OK 0
#define NVML_TEMPERATURE_GPU 0
#define NVML_CLOCK_GRAPHICS 0
#define NVML_CLOCK_SM 1
#define NVML_CLOCK_MEM 2

struct nvml_memory { /* nvmlMemory_t */
    unsigned long long total, free, used;
};

struct nvml_utilization { /* nvmlUtilization_t */
    unsigned int gpu, memory;
};

/* nvmlProcessInfo_v1_t (nvmlDeviceGetComputeRunningProcesses, unversioned) and the layout the
 * _v2 and _v3 calls fill (nvmlProcessInfo_v2_t, which NVIDIA's own binding, nvidia-ml-py's
 * pynvml.py, also uses for _v3: c_nvmlProcessInfo_v3_t = c_nvmlProcessInfo_v2_t). */
struct nvml_proc_v1 {
    unsigned int pid;
    unsigned long long used;
};
struct nvml_proc_v2 {
    unsigned int pid;
    unsigned long long used;
    unsigned int gpu_instance, compute_instance; /* 0xFFFFFFFF outside MIG */
};
#define NVML_ERR_INSUFFICIENT_SIZE 7
#define NVML_ID_NONE 0xFFFFFFFFu

struct nvml_api {
    nvml_ret (*init)(void);
    nvml_ret (*shutdown)(void);
    nvml_ret (*get_count)(unsigned int *);
    nvml_ret (*get_handle)(unsigned int, nvml_dev *);
    nvml_ret (*get_name)(nvml_dev, char *, unsigned int);
    nvml_ret (*get_uuid)(nvml_dev, char *, unsigned int);
    nvml_ret (*driver_version)(char *, unsigned int);
    nvml_ret (*power_usage)(nvml_dev, unsigned int *);            /* mW */
    nvml_ret (*total_energy)(nvml_dev, unsigned long long *);     /* mJ */
    nvml_ret (*temperature)(nvml_dev, int, unsigned int *);       /* C */
    nvml_ret (*memory_info)(nvml_dev, struct nvml_memory *);      /* bytes */
    nvml_ret (*utilization)(nvml_dev, struct nvml_utilization *); /* % */
    nvml_ret (*clock_info)(nvml_dev, int, unsigned int *);        /* MHz */
    nvml_ret (*clock_reasons)(nvml_dev, unsigned long long *);    /* bitmask */
    nvml_ret (*power_limit)(nvml_dev, unsigned int *);            /* mW */
    const char *(*error_string)(nvml_ret);
    nvml_ret (*mig_mode)(nvml_dev, unsigned int *, unsigned int *);
    nvml_ret (*procs_v2)(nvml_dev, unsigned int *, struct nvml_proc_v2 *);
    nvml_ret (*procs_v1)(nvml_dev, unsigned int *, struct nvml_proc_v1 *);
    nvml_ret (*max_mig)(nvml_dev, unsigned int *);
    nvml_ret (*mig_handle)(nvml_dev, unsigned int, nvml_dev *);
    nvml_ret (*gpu_instance_id)(nvml_dev, unsigned int *);
};

struct nvml {
    void *lib;
    struct nvml_api api;
    bool inited;
    unsigned n;
    nvml_dev dev[NVML_MAX_GPUS];
    struct gpu_info info[NVML_MAX_GPUS];
    char driver[96];
};

/* Where each symbol lands; names[1] is the older spelling tried when names[0] is absent. */
struct nvml_sym {
    const char *names[2];
    size_t offset; /* into struct nvml_api */
    bool required;
};

#define SYM(a, b, field, req)                                                                      \
    {                                                                                              \
        {a, b}, offsetof(struct nvml_api, field), req                                              \
    }
static const struct nvml_sym nvml_syms[] = {
    SYM("nvmlInit_v2", "nvmlInit", init, true),
    SYM("nvmlShutdown", NULL, shutdown, true),
    SYM("nvmlDeviceGetCount_v2", "nvmlDeviceGetCount", get_count, true),
    SYM("nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex", get_handle, true),
    SYM("nvmlDeviceGetName", NULL, get_name, false),
    SYM("nvmlDeviceGetUUID", NULL, get_uuid, false),
    SYM("nvmlSystemGetDriverVersion", NULL, driver_version, false),
    SYM("nvmlDeviceGetPowerUsage", NULL, power_usage, false),
    SYM("nvmlDeviceGetTotalEnergyConsumption", NULL, total_energy, false),
    SYM("nvmlDeviceGetTemperature", NULL, temperature, false),
    SYM("nvmlDeviceGetMemoryInfo", NULL, memory_info, false),
    SYM("nvmlDeviceGetUtilizationRates", NULL, utilization, false),
    SYM("nvmlDeviceGetClockInfo", NULL, clock_info, false),
    SYM("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons",
        clock_reasons, false),
    SYM("nvmlDeviceGetEnforcedPowerLimit", NULL, power_limit, false),
    SYM("nvmlErrorString", NULL, error_string, false),
    SYM("nvmlDeviceGetMigMode", NULL, mig_mode, false),
    SYM("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2",
        procs_v2, false),
    SYM("nvmlDeviceGetComputeRunningProcesses", NULL, procs_v1, false),
    SYM("nvmlDeviceGetMaxMigDeviceCount", NULL, max_mig, false),
    SYM("nvmlDeviceGetMigDeviceHandleByIndex", NULL, mig_handle, false),
    SYM("nvmlDeviceGetGpuInstanceId", NULL, gpu_instance_id, false),
};
#undef SYM

/* Bit order of nvmlClocksEventReasons (NVML API reference,
 * https://docs.nvidia.com/deploy/nvml-api/group__nvmlClocksEventReasons.html). */
static const char *const throttle_bit_names[] = {
    "gpu_idle",
    "applications_clocks_setting",
    "sw_power_cap",
    "hw_slowdown",
    "sync_boost",
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
    "display_clock_setting",
};
#define N_THROTTLE_BITS (sizeof(throttle_bit_names) / sizeof(throttle_bit_names[0]))

size_t nvml_throttle_names(unsigned long long mask, const char **names, size_t max)
{
    size_t k = 0;
    for (size_t b = 0; b < N_THROTTLE_BITS && k < max; b++)
        if (mask & (1ull << b))
            names[k++] = throttle_bit_names[b];
    return k;
}

bool nvml_throttle_is_slowdown(unsigned long long mask)
{
    return (mask & ~1ull) != 0; /* bit 0 is gpu_idle: clocks low because there is no work */
}

static const char *nvml_err(const struct nvml *n, nvml_ret r, char *tmp, size_t len)
{
    if (n->api.error_string) {
        const char *s = n->api.error_string(r);
        if (s)
            return s;
    }
    snprintf(tmp, len, "NVML error %d", r);
    return tmp;
}

/* Resolves the table; -ENOENT naming the first missing required symbol in why. */
static int nvml_resolve(struct nvml *n, char *why, size_t why_len)
{
    for (size_t i = 0; i < sizeof(nvml_syms) / sizeof(nvml_syms[0]); i++) {
        const struct nvml_sym *s = &nvml_syms[i];
        void *p = NULL;
        for (size_t k = 0; k < 2 && !p && s->names[k]; k++)
            p = dlsym(n->lib, s->names[k]);
        if (!p && s->required) {
            snprintf(why, why_len, "symbol %s missing", s->names[0]);
            return -ENOENT;
        }
        /* dlsym hands out object pointers; POSIX guarantees they convert to functions. */
        memcpy((char *)&n->api + s->offset, &p, sizeof(p));
    }
    return 0;
}

static void *nvml_dlopen(char *why, size_t why_len)
{
    const char *env = getenv("TESTBENCH_NVML_LIB");
    const char *cands[] = {"libnvidia-ml.so.1", "libnvidia-ml.so"};
    if (env && *env) {
        void *lib = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!lib)
            snprintf(why, why_len, "%s", dlerror());
        return lib;
    }
    for (size_t i = 0; i < 2; i++) {
        void *lib = dlopen(cands[i], RTLD_NOW | RTLD_LOCAL);
        if (lib)
            return lib;
    }
    snprintf(why, why_len, "libnvidia-ml.so.1 not found (no NVIDIA driver?)");
    return NULL;
}

static void nvml_read_info(struct nvml *n, unsigned i)
{
    struct gpu_info *g = &n->info[i];
    nvml_dev d = n->dev[i];
    g->index = i;
    g->mem_total_mib = -1;
    g->power_limit_w = -1;
    g->mig_mode = -1;
    if (n->api.get_name && n->api.get_name(d, g->name, sizeof(g->name)) != NVML_OK)
        g->name[0] = '\0';
    if (n->api.get_uuid && n->api.get_uuid(d, g->uuid, sizeof(g->uuid)) != NVML_OK)
        g->uuid[0] = '\0';
    g->name[sizeof(g->name) - 1] = '\0';
    g->uuid[sizeof(g->uuid) - 1] = '\0';
    struct nvml_memory m;
    if (n->api.memory_info && n->api.memory_info(d, &m) == NVML_OK)
        g->mem_total_mib = (double)m.total / (1024.0 * 1024.0);
    unsigned mw;
    if (n->api.power_limit && n->api.power_limit(d, &mw) == NVML_OK)
        g->power_limit_w = mw / 1000.0;
    unsigned cur, pending;
    if (n->api.mig_mode && n->api.mig_mode(d, &cur, &pending) == NVML_OK)
        g->mig_mode = cur ? 1 : 0;
}

int nvml_open(struct nvml **out, char *why, size_t why_len)
{
    int rc = -ENODEV;
    char tmp[64];
    struct nvml *n = xcalloc(1, sizeof(*n));
    n->lib = nvml_dlopen(why, why_len);
    if (!n->lib)
        goto fail;
    rc = nvml_resolve(n, why, why_len);
    if (rc)
        goto fail;
    nvml_ret r = n->api.init();
    if (r != NVML_OK) {
        snprintf(why, why_len, "nvmlInit failed: %s", nvml_err(n, r, tmp, sizeof(tmp)));
        rc = -EIO;
        goto fail;
    }
    n->inited = true;
    unsigned count = 0;
    r = n->api.get_count(&count);
    if (r != NVML_OK) {
        snprintf(why, why_len, "nvmlDeviceGetCount failed: %s", nvml_err(n, r, tmp, sizeof(tmp)));
        rc = -EIO;
        goto fail;
    }
    if (count > NVML_MAX_GPUS)
        count = NVML_MAX_GPUS;
    for (unsigned i = 0; i < count; i++) {
        r = n->api.get_handle(i, &n->dev[n->n]);
        if (r != NVML_OK)
            continue; /* e.g. a GPU we may not access; the rest are still useful */
        nvml_read_info(n, n->n);
        n->info[n->n].index = i;
        n->n++;
    }
    if (n->n == 0) {
        snprintf(why, why_len, "no GPU visible to NVML");
        rc = -ENODEV;
        goto fail;
    }
    if (n->api.driver_version && n->api.driver_version(n->driver, sizeof(n->driver)) != NVML_OK)
        n->driver[0] = '\0';
    n->driver[sizeof(n->driver) - 1] = '\0';
    *out = n;
    return 0;
fail:
    nvml_close(n);
    return rc;
}

void nvml_close(struct nvml *n)
{
    if (!n)
        return;
    if (n->inited && n->api.shutdown)
        n->api.shutdown();
    if (n->lib)
        dlclose(n->lib);
    free(n);
}

unsigned nvml_count(const struct nvml *n)
{
    return n ? n->n : 0;
}

const struct gpu_info *nvml_info(const struct nvml *n, unsigned i)
{
    return &n->info[i];
}

const char *nvml_driver_version(const struct nvml *n)
{
    return n->driver;
}

#define SET(s, f) ((s)->valid |= 1u << (f))

static int id_or_none(unsigned int id)
{
    return id == NVML_ID_NONE || id > 0x7fffffffu ? NVML_NO_ID : (int)id;
}

/* The compute processes on d (the _v3/_v2 layout first, then v1); a list longer than
 * NVML_MAX_PROCS (INSUFFICIENT_SIZE) or any error leaves GF_PROCS clear. */
static void read_procs(struct nvml *n, nvml_dev d, struct gpu_sample *s)
{
    const struct nvml_api *a = &n->api;
    struct gpu_proc out[NVML_MAX_PROCS];
    unsigned count = NVML_MAX_PROCS;
    if (a->procs_v2) {
        struct nvml_proc_v2 p[NVML_MAX_PROCS];
        if (a->procs_v2(d, &count, p) != NVML_OK || count > NVML_MAX_PROCS)
            return;
        for (unsigned k = 0; k < count; k++)
            out[k] = (struct gpu_proc){p[k].pid, p[k].used, id_or_none(p[k].gpu_instance),
                                       id_or_none(p[k].compute_instance)};
    } else if (a->procs_v1) {
        struct nvml_proc_v1 p[NVML_MAX_PROCS];
        if (a->procs_v1(d, &count, p) != NVML_OK || count > NVML_MAX_PROCS)
            return;
        for (unsigned k = 0; k < count; k++)
            out[k] = (struct gpu_proc){p[k].pid, p[k].used, NVML_NO_ID, NVML_NO_ID};
    } else {
        return;
    }
    if (count) {
        s->procs = xcalloc(count, sizeof(*s->procs));
        memcpy(s->procs, out, count * sizeof(*out));
    }
    s->n_procs = count;
    SET(s, GF_PROCS);
}

/* The MIG devices of d (in MIG mode): uuid, GPU instance id and memory of each. */
static void read_migs(struct nvml *n, nvml_dev d, struct gpu_sample *s)
{
    const struct nvml_api *a = &n->api;
    unsigned max = 0;
    if (!a->max_mig || !a->mig_handle || a->max_mig(d, &max) != NVML_OK)
        return;
    if (max > NVML_MAX_MIG)
        max = NVML_MAX_MIG;
    struct mig_reading r[NVML_MAX_MIG];
    unsigned k = 0;
    for (unsigned i = 0; i < max; i++) {
        nvml_dev m;
        if (a->mig_handle(d, i, &m) != NVML_OK)
            continue; /* NOT_FOUND: no MIG device at this index */
        struct mig_reading *x = &r[k++];
        memset(x, 0, sizeof(*x));
        x->gpu_instance = NVML_NO_ID;
        if (a->get_uuid && a->get_uuid(m, x->uuid, sizeof(x->uuid)) != NVML_OK)
            x->uuid[0] = '\0';
        x->uuid[sizeof(x->uuid) - 1] = '\0';
        unsigned gi;
        if (a->gpu_instance_id && a->gpu_instance_id(m, &gi) == NVML_OK)
            x->gpu_instance = id_or_none(gi);
        struct nvml_memory mem;
        if (a->memory_info && a->memory_info(m, &mem) == NVML_OK) {
            x->mem_used_b = mem.used;
            x->mem_total_b = mem.total;
            x->mem_valid = true;
        }
    }
    if (k) {
        s->migs = xcalloc(k, sizeof(*s->migs));
        memcpy(s->migs, r, k * sizeof(*r));
    }
    s->n_migs = k;
    SET(s, GF_MIG);
}

void nvml_read(struct nvml *n, unsigned i, struct gpu_sample *s)
{
    const struct nvml_api *a = &n->api;
    nvml_dev d = n->dev[i];
    memset(s, 0, sizeof(*s));
    if (a->power_usage && a->power_usage(d, &s->power_mw) == NVML_OK)
        SET(s, GF_POWER);
    if (a->total_energy && a->total_energy(d, &s->energy_mj) == NVML_OK)
        SET(s, GF_ENERGY);
    if (a->temperature && a->temperature(d, NVML_TEMPERATURE_GPU, &s->temp_c) == NVML_OK)
        SET(s, GF_TEMP);
    struct nvml_memory m;
    if (a->memory_info && a->memory_info(d, &m) == NVML_OK) {
        s->mem_used_b = m.used;
        s->mem_total_b = m.total;
        SET(s, GF_MEM);
    }
    struct nvml_utilization u;
    if (a->utilization && a->utilization(d, &u) == NVML_OK) {
        s->util_gpu_pct = u.gpu;
        s->util_mem_pct = u.memory;
        SET(s, GF_UTIL);
    }
    if (a->clock_info && a->clock_info(d, NVML_CLOCK_SM, &s->sm_clock_mhz) == NVML_OK)
        SET(s, GF_SM_CLOCK);
    if (a->clock_info && a->clock_info(d, NVML_CLOCK_MEM, &s->mem_clock_mhz) == NVML_OK)
        SET(s, GF_MEM_CLOCK);
    if (a->clock_reasons && a->clock_reasons(d, &s->throttle_mask) == NVML_OK)
        SET(s, GF_THROTTLE);
    read_procs(n, d, s);
    if (n->info[i].mig_mode == 1)
        read_migs(n, d, s);
}

void gpu_sample_release(struct gpu_sample *s)
{
    free(s->procs);
    free(s->migs);
    s->procs = NULL;
    s->migs = NULL;
    s->n_procs = s->n_migs = 0;
}
