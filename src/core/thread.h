/*
 * thread.h - helpers for the runner's worker threads.
 */
#ifndef TB_THREAD_H
#define TB_THREAD_H

/* Nice value of background threads: a CFS weight of 110 against the event loop's 1024, so
 * on a contended CPU the loop gets about nine tenths of it and is not preempted by their
 * wake-ups. */
#define THREAD_BACKGROUND_NICE 10

/*
 * Lowers the calling thread's CPU priority to THREAD_BACKGROUND_NICE (Linux keeps a nice
 * value per thread); a thread already nicer than that is left as it is. For threads whose
 * work may wait (result checkpoints, prompt building) and must not take the CPU from the
 * event loop that stamps token arrivals. Best effort: returns 0 or -errno, and a failure
 * changes nothing else.
 */
int thread_set_background(void);

#endif
