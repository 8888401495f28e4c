/*
 * study.h - `testbench study`: from one benchmark of one server to an answer across server
 * setups. Each setup (model x quantization x KV dtype x context x memory share) is planned,
 * launched through a backend (sim, docker, command, none), measured at the study's user counts,
 * searched for the most users within the SLO, and stopped. docs/STUDY.md has the file format.
 */
#ifndef TB_STUDY_H
#define TB_STUDY_H

int study_main(int argc, char **argv);
/* The checks a study makes before it launches anything, for `testbench validate`: the file and
 * its workloads load, every setup can be planned, every command line built, every workload
 * name can name result files. 0, or nonzero after printing what is wrong. */
int study_validate(const char *path);

#endif
