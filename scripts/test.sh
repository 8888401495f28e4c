#!/usr/bin/env bash
# test.sh - sets up, builds and runs every test: the normal build, the AddressSanitizer +
# UndefinedBehaviorSanitizer build, the ThreadSanitizer build, the Release binary, a short libFuzzer run
# (scripts/fuzz.sh), then the repository checks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
jobs=$(nproc)

echo "== build and test (RelWithDebInfo)"
BUILD_DIR=build scripts/build.sh -DTB_WERROR=ON
ctest --test-dir build --output-on-failure -j"$jobs" -LE slurm

# The Slurm executor against a real single-node cluster (munged, slurmctld, two slurmd with fake
# gres GPUs), started here and stopped by its process ids; alone, so its side-by-side
# measurements do not share the two cores with other tests. SLURM_CONF set: that cluster is used.
echo "== Slurm executor (scripts/slurm.sh: a single-node cluster)"
slurm_ours=
if [ -z "${SLURM_CONF:-}" ]; then
    trap 'scripts/slurm.sh stop' EXIT
    scripts/slurm.sh start >/dev/null
    export SLURM_CONF=${TB_SLURM_DIR:-/tmp/testbench-slurm}/slurm.conf
    slurm_ours=1
fi
TB_SLURM_REQUIRED=1 ctest --test-dir build --output-on-failure -L slurm
if [ -n "$slurm_ours" ]; then
    scripts/slurm.sh stop
    trap - EXIT
    unset SLURM_CONF
fi

echo "== build and test (ASan + UBSan)"
BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DTB_WERROR=ON -DSANITIZE=address,undefined
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slurm

# Threads meet in the sampler, the in-process simulator and the result checkpoints.
echo "== build and test (ThreadSanitizer)"
BUILD_DIR=build-tsan BUILD_TYPE=Debug scripts/build.sh -DTB_WERROR=ON -DSANITIZE=thread
TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" ctest --test-dir build-tsan --output-on-failure -j"$jobs" -LE slurm

# The build users and packagers make (Release, -O3): its optimiser sees other warnings than the
# ones above, and warnings must not creep in there either. The binary only; its tests are above.
echo "== build (Release)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTB_WERROR=ON >/dev/null
cmake --build build-release -j"$jobs" --target testbench

# libFuzzer harnesses (clang, ASan + UBSan), a few seconds each; a crash fails the run and is
# kept in fuzz/regressions/, which the builds above replay (fuzz_replay_* tests).
fuzz_secs=${FUZZ_SECONDS:-8}
echo "== fuzz (${fuzz_secs}s per target)"
scripts/fuzz.sh "$fuzz_secs"

if [ -x scripts/check.sh ]; then
    echo "== repository checks"
    scripts/check.sh
fi
