/*
 * share.h - several engine instances on one GPU by time-slicing (memory-fraction partitions:
 * two vLLM processes with gpu_memory_utilization 0.45 each). Each instance keeps its own KV
 * budget; the GPU's compute and memory bandwidth are shared by running the instances' steps
 * one at a time, in the order they become ready: a step of instance A that is ready while B's
 * step runs starts when B's ends. The model and its assumptions: docs/TENANCY.md.
 *
 * The share never reads a clock either: the driver (planner or simulator) passes its 'now'
 * and schedules the step's end at the time gpu_share_run returns. MIG slices need no share:
 * each slice is a GPU of its own in the catalog ("rtx-pro-6000:mig-2g.48gb").
 */
#ifndef TB_ENGINE_SHARE_H
#define TB_ENGINE_SHARE_H

#include <stdint.h>

struct gpu_share {
    double busy_until; /* driver's clock: when the step now on the GPU ends */
    double busy_s;     /* sum of step durations */
    double wait_s;     /* time steps spent waiting for another instance's step */
    uint64_t steps;
    uint64_t waited_steps; /* steps that had to wait */
};

void gpu_share_init(struct gpu_share *s);
/* A step of d seconds (engine_step_plan) ready at 'now': claims the GPU after the step that
 * holds it and returns when this step ends (>= now + d). */
double gpu_share_run(struct gpu_share *s, double now, double d);

#endif
