/*
 * share.c - time-slicing of one GPU between engine instances (share.h).
 *
 * Why whole steps, first come first served: without MPS, the CUDA contexts of two processes
 * do not run kernels at the same time; the GPU switches between them in time slices. A vLLM
 * step is a chain of kernels that ends in a synchronisation (the sampled tokens go back to
 * the CPU), so while both instances have work each step's GPU time is spent in full, and the
 * two instances' work adds up. Serialising whole steps keeps that total exactly; it gets the
 * order of interleaving wrong by at most one step (the driver's slices are shorter than a
 * step, so in reality both steps stretch and end nearer together). docs/TENANCY.md.
 */
#include "engine/share.h"

#include <string.h>

void gpu_share_init(struct gpu_share *s)
{
    memset(s, 0, sizeof(*s));
}

double gpu_share_run(struct gpu_share *s, double now, double d)
{
    double start = now;
    if (s->busy_until > now) {
        start = s->busy_until;
        s->wait_s += start - now;
        s->waited_steps++;
    }
    if (d < 0)
        d = 0;
    s->busy_until = start + d;
    s->busy_s += d;
    s->steps++;
    return s->busy_until;
}
