/*
 * fuzz.h - the one entry point every harness in fuzz/ defines (libFuzzer's). Built two ways:
 * with clang and -fsanitize=fuzzer (TB_FUZZ=ON, scripts/fuzz.sh), and with the normal compiler
 * and replay.c's main(), which feeds it each file of the corpus and regression directories
 * (the fuzz_replay_* ctests). docs/FUZZING.md.
 */
#ifndef TB_FUZZ_H
#define TB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0; a harness that finds a broken property abort()s, so both builds report it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
