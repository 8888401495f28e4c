/*
 * load.h - distributed load: one run's requests sent by several worker processes, on one
 * machine or several, and merged into one result as if one runner had sent them
 * (docs/SCALE_LOAD.md).
 *
 *   testbench run --config F --workers N              N local worker processes, merged
 *   testbench run --config F --coordinator ADDR --expect N   waits for N workers, merges
 *   testbench run --config F --worker URL [--rank R]  one worker of a coordinator's run
 *   testbench merge OUT W0_detailed.json W1_detailed.json ...
 *
 * No broker: the coordinator is a small HTTP server (libevent) in the testbench binary; the
 * workers are runners (run_config with a struct run_share) that ask it when to start each
 * point and measure their clock against it; at the end each uploads its result files, and the
 * coordinator pools every worker's request records onto its clock and recomputes each summary
 * with the runner's own metrics code (point_summary_compute).
 */
#ifndef TB_SCALE_LOAD_H
#define TB_SCALE_LOAD_H

#include <stdbool.h>

/* True when argv (a `run` command line) asks for distributed load: --workers, --coordinator
 * or --worker. */
bool load_wanted(int argc, char **argv);
/* `testbench run` with --workers, --coordinator or --worker; returns the exit code. */
int load_run_main(int argc, char **argv);
/* `testbench merge OUT W...`; returns the exit code. */
int load_merge_main(int argc, char **argv);

#endif
