/* plan.h - `testbench plan`: the engine in virtual time, and capacity answers. */
#ifndef TB_PLAN_H
#define TB_PLAN_H

int plan_main(int argc, char **argv);

#endif
