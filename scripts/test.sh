#!/usr/bin/env bash
# test.sh - sets up, builds and runs every test: all of them under AddressSanitizer +
# UndefinedBehaviorSanitizer, the timing tests also in the normal build, the threaded ones under
# ThreadSanitizer; then the Release binary, a short libFuzzer run
# (scripts/fuzz.sh), the repository checks, then the Docker suite (scripts/docker_test.sh: the
# image, compose and `study --backend docker` against a real daemon). Where Docker cannot run
# (no daemon answers, not root) the Docker suite says so and is skipped; CI (.ci/run) starts a
# daemon and sets TB_DOCKER_TESTS=require, which makes a skip a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
jobs=$(nproc)
# Each phase's heading carries the seconds since the start, so a CI log shows where time goes.
phase() { echo "== [$SECONDS s] $*"; }

# A real single-node Slurm cluster (munged, slurmctld, two slurmd with fake gres GPUs) for the
# tests that drive Slurm (the study executor, the distributed load's sbatch recipe): started here,
# stopped by its process ids when this script ends. SLURM_CONF already set: that cluster is used.
if [ -z "${SLURM_CONF:-}" ]; then
    trap 'scripts/slurm.sh stop' EXIT
    phase "Slurm (scripts/slurm.sh start)"
    scripts/slurm.sh start >/dev/null
    export SLURM_CONF=${TB_SLURM_DIR:-/tmp/testbench-slurm}/slurm.conf
fi
export TB_SLURM_REQUIRED=1

# Every test runs under ASan + UBSan below. The normal (optimised) build reruns the timing tests
# (label timing, tests/labels.cmake: bounds on wall-clock figures, tightest without a
# sanitizer's slowdown) and the Slurm executor; running all of them twice more would double CI.
phase "build and test (RelWithDebInfo: the timing tests)"
BUILD_DIR=build scripts/build.sh -DTB_WERROR=ON
ctest --test-dir build --output-on-failure -j"$jobs" -L timing
# The Slurm study executor alone: its tasks run side by side and compare their measurements with
# a serial study's, so they do not share the two cores with other tests.
phase "Slurm study executor"
ctest --test-dir build --output-on-failure -L slurm

phase "build and test (ASan + UBSan)"
BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DTB_WERROR=ON -DSANITIZE=address,undefined
# Three at a time on two cores: most of these tests wait on a real-time simulator (the suite
# used under one core on average at -j2); the timing and heavy ones hold their locks.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j$((jobs + 1)) -LE slurm

# Threads meet in the runner (loop, prompt pools, checkpoint writer), the in-process simulator
# and the sampler.
phase "build and test (ThreadSanitizer)"
BUILD_DIR=build-tsan BUILD_TYPE=Debug scripts/build.sh -DTB_WERROR=ON -DSANITIZE=thread
# (no_threads: src/scale's study drivers, processes and files only; threads_elsewhere: end-to-end
# drivers whose threads other tests exercise here (tests/labels.cmake); the ASan run covers both.)
TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" ctest --test-dir build-tsan --output-on-failure -j"$jobs" -LE 'slurm|no_threads|threads_elsewhere'

# The Docker suite's slow part, the base image and the image build (minutes of apt and a
# compile, no timing), runs in the background from here, beside the Release build, the fuzzers
# and the checks, none of which measures time; its checks run at the end, alone.
docker_dir=$(mktemp -d /tmp/tb-docker-test.XXXXXX)
# A session of its own (setsid --wait: `wait` still gets its status) so that a failure below
# stops all of it.
setsid --wait scripts/docker_test.sh prepare "$docker_dir" >"$docker_dir/prepare.out" 2>&1 &
docker_prep=$!
stop_docker_prep() {
    if kill -0 "$docker_prep" 2>/dev/null; then
        kill -TERM -- "-$docker_prep" "$docker_prep" 2>/dev/null || true
        wait "$docker_prep" 2>/dev/null || true
    fi
    rm -rf "$docker_dir"
}
trap stop_docker_prep EXIT

# The build users and packagers make (Release, -O3): its optimiser sees other warnings than the
# ones above, and warnings must not creep in there either. The binary only; its tests are above.
phase "build (Release)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTB_WERROR=ON >/dev/null
cmake --build build-release -j"$jobs" --target testbench

# libFuzzer harnesses (clang, ASan + UBSan), a few seconds each; a crash fails the run and is
# kept in fuzz/regressions/, which the builds above replay (fuzz_replay_* tests).
fuzz_secs=${FUZZ_SECONDS:-8}
phase "fuzz (${fuzz_secs}s per target)"
scripts/fuzz.sh "$fuzz_secs"

if [ -x scripts/check.sh ]; then
    phase "repository checks"
    scripts/check.sh
fi

phase "Docker (the image, compose, study --backend docker; scripts/docker_test.sh)"
t=$SECONDS
wait "$docker_prep" || true # its results are in $docker_dir; check reports them
echo "(waited $((SECONDS - t)) s for the image build)"
trap - EXIT
scripts/docker_test.sh check "$docker_dir"
phase "done"
