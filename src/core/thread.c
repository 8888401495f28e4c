/*
 * thread.c - per-thread scheduling for the runner's helper threads.
 *
 * On Linux setpriority(PRIO_PROCESS, tid) sets one thread's nice value, not the process's
 * (man 7 sched, "the nice value is a per-thread attribute"). Lowering a priority needs no
 * privilege. SCHED_IDLE was not chosen: under a saturated CPU it could starve a checkpoint
 * or a prompt for as long as the point runs.
 */
#include "core/thread.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int thread_set_background(void)
{
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int now = getpriority(PRIO_PROCESS, (id_t)tid);
    if (errno)
        return -errno;
    if (now >= THREAD_BACKGROUND_NICE)
        return 0; /* already at or below it (e.g. the whole run under nice 19): never raise */
    if (setpriority(PRIO_PROCESS, (id_t)tid, THREAD_BACKGROUND_NICE))
        return -errno;
    return 0;
}
