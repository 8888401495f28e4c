/*
 * instances.c - `testbench sim --instance SPEC --instance SPEC ...`: several simulated vLLM
 * servers in one process, one per port, each with its own engine and KV budget, on one GPU.
 *
 * What they share depends on how the GPU is split, as it would on the real card:
 *   - whole-GPU instances (memory-fraction partitions, `gpu_memory_utilization` 0.45 + 0.45)
 *     time-slice one simulated GPU (gpu.c, engine/share.h's rule, as `plan --tenancy`);
 *   - MIG slices (`gpu=rtx-pro-6000:mig-2g.48gb`) are GPUs of their own in the catalog: their
 *     steps never wait for each other.
 * The layout is checked before any server starts, as the hardware and vLLM would refuse it:
 * fractions adding up to more than 1 (vLLM refuses an instance when free memory is below its
 * fraction x total), slices that do not fit the GPU, or instances naming different GPUs (one
 * process simulates one card; run one process per card). docs/TENANCY.md.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/catalog.h"
#include "core/log.h"
#include "sim/sim_internal.h"

#define DEFAULT_GPU "rtx-pro-6000" /* engine.h: engine_config.gpu NULL */

/* The catalog entry of instance i's GPU, or NULL (unknown: engine_new says so with hints). */
static const struct gpu_spec *gpu_of(const struct catalog *cat, const struct sim_options *o)
{
    return catalog_find_gpu(cat, o->engine.gpu ? o->engine.gpu : DEFAULT_GPU);
}

/* 0, or -EINVAL/-ENOSPC with err; *mig says whether the instances are MIG slices. */
static int check_layout(const struct catalog *cat, const struct sim_options *inst, size_t n,
                        bool *mig, char *err, size_t errlen)
{
    const struct gpu_spec *first = NULL;
    const char *parent0 = NULL;
    double util = 0, mem = 0, sms = 0;
    for (size_t i = 0; i < n; i++) {
        const struct gpu_spec *g = gpu_of(cat, &inst[i]);
        if (!g)
            return 0; /* engine_new reports the unknown name with suggestions */
        const char *parent = g->mig_parent ? g->mig_parent : g->name;
        if (!first) {
            first = g;
            parent0 = parent;
            *mig = g->mig_parent != NULL;
        }
        if (strcmp(parent, parent0) != 0) {
            snprintf(err, errlen,
                     "instance %zu is on %s, instance 1 on %s: one sim process simulates one "
                     "GPU (run one process per GPU)",
                     i + 1, parent, parent0);
            return -EINVAL;
        }
        if ((g->mig_parent != NULL) != *mig) {
            snprintf(err, errlen,
                     "instance %zu mixes a whole GPU and MIG slices: a GPU in MIG mode serves "
                     "only through its slices",
                     i + 1);
            return -EINVAL;
        }
        if (!*mig) {
            double u = inst[i].engine.gpu_memory_utilization;
            util += u > 0 ? u : 0.9;
            continue;
        }
        mem += g->mig_slice.memory_fraction;
        sms += g->mig_slice.sm_fraction;
        int same = 0;
        for (size_t k = 0; k < n; k++)
            same += gpu_of(cat, &inst[k]) == g;
        if (same > g->mig_slice.max_instances) {
            snprintf(err, errlen, "%d instances of MIG %s asked, %s holds at most %d", same,
                     g->mig_slice.name, parent, g->mig_slice.max_instances);
            return -ENOSPC;
        }
    }
    if (!*mig && util > 1.0 + 1e-9) {
        snprintf(err, errlen,
                 "the instances' gpu-memory-utilization add up to %.2f of the GPU (> 1): vLLM "
                 "refuses to start an instance when free memory is below its fraction x total",
                 util);
        return -ENOSPC;
    }
    if (*mig && (mem > 1.0 + 1e-9 || sms > 1.0 + 1e-9)) {
        snprintf(err, errlen,
                 "the MIG slices need %.2f of the GPU's memory and %.2f of its SMs (> 1)", mem,
                 sms);
        return -ENOSPC;
    }
    return 0;
}

int sim_instances_check(const struct sim_options *inst, size_t n, bool *mig, char *err,
                        size_t errlen)
{
    struct catalog *cat = NULL;
    int rc = catalog_load(&cat, inst[0].engine.catalog_dir, err, errlen);
    if (rc)
        return rc;
    *mig = false;
    rc = check_layout(cat, inst, n, mig, err, errlen);
    catalog_free(cat);
    return rc;
}

int sim_instances_serve(struct sim_options *inst, size_t n, char *err, size_t errlen)
{
    bool mig = false;
    int rc = sim_instances_check(inst, n, &mig, err, errlen);
    if (rc)
        return rc;
    /* Block the signals before any server thread exists, so every thread inherits the mask
     * and sigwait below is the one place that receives them. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    struct sim_gpu *gpu = mig || n < 2 ? NULL : sim_gpu_new();
    struct sim_server **srv = xcalloc(n, sizeof(*srv));
    size_t started = 0;
    for (; started < n; started++) {
        inst[started].gpu = gpu;
        char e[512] = "";
        rc = sim_server_start(&srv[started], &inst[started], e, sizeof(e));
        if (rc) {
            snprintf(err, errlen, "instance %zu (port %d): %s", started + 1, inst[started].port, e);
            break;
        }
    }
    if (!rc) {
        log_info("%zu instances on one GPU: %s", n,
                 mig   ? "MIG slices, isolated"
                 : gpu ? "steps time-slice the GPU (docs/TENANCY.md)"
                       : "one instance");
        int sig = 0;
        sigwait(&set, &sig);
        log_info("received signal %d, shutting down", sig);
    }
    for (size_t i = 0; i < started; i++)
        sim_server_stop(srv[i]);
    if (gpu && !rc) {
        struct sim_gpu_stats st;
        sim_gpu_stats(gpu, &st);
        log_info("shared GPU: %llu steps, busy %.1f s, %llu steps waited %.1f s for another "
                 "instance",
                 (unsigned long long)st.steps, st.busy_s, (unsigned long long)st.waited_steps,
                 st.wait_s);
    }
    free(srv);
    sim_gpu_free(gpu);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
