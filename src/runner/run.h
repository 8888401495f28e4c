/* run.h - `testbench run --config FILE`: the benchmark runner. */
#ifndef TB_RUN_H
#define TB_RUN_H

int run_main(int argc, char **argv);

#endif
