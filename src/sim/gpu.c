/*
 * gpu.c - one simulated GPU time-sliced between the servers of one process (sim.h).
 *
 * The rule is engine/share.h's, the one `plan --tenancy` applies in virtual time: a step that
 * becomes ready while another server's step holds the GPU starts when that one ends. Here the
 * clock is real (absolute CLOCK_MONOTONIC seconds, so servers started at different moments
 * agree) and the servers run on threads of their own, so the share sits behind a mutex. The
 * lock is taken once per engine step (milliseconds apart), never per token.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/xalloc.h"
#include "engine/share.h"
#include "sim/sim_internal.h"

struct sim_gpu {
    pthread_mutex_t lock;
    struct gpu_share share; /* guarded by lock */
};

struct sim_gpu *sim_gpu_new(void)
{
    struct sim_gpu *g = xcalloc(1, sizeof(*g));
    pthread_mutex_init(&g->lock, NULL);
    gpu_share_init(&g->share);
    return g;
}

void sim_gpu_free(struct sim_gpu *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->lock);
    free(g);
}

double sim_gpu_claim(struct sim_gpu *g, double now_abs, double d)
{
    if (d < 0)
        d = 0;
    pthread_mutex_lock(&g->lock);
    double end = gpu_share_run(&g->share, now_abs, d);
    pthread_mutex_unlock(&g->lock);
    return end - d;
}

void sim_gpu_stats(struct sim_gpu *g, struct sim_gpu_stats *out)
{
    pthread_mutex_lock(&g->lock);
    out->busy_s = g->share.busy_s;
    out->wait_s = g->share.wait_s;
    out->steps = g->share.steps;
    out->waited_steps = g->share.waited_steps;
    pthread_mutex_unlock(&g->lock);
}
