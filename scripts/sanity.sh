#!/usr/bin/env bash
# sanity.sh - sets up, builds and runs the main job on the built-in simulator (no GPU, no server
# needed): the quick capacity study, configs/study_quick.yaml, then its report. The study plans
# four server setups, launches each as a simulated vLLM, measures 10 users and searches for the
# most users within the SLO; the report puts the answer and the evidence on one offline page.
# Results land in ./results/study_quick_<time>/ (report.html and report.md inside).
# Extra arguments go to `testbench study`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
BUILD_TARGET=testbench scripts/build.sh # the program alone: the tests are scripts/test.sh's
./build/testbench study --config configs/study_quick.yaml --backend sim "$@"
latest=$(find results -maxdepth 1 -type d -name 'study_quick_*' | sort | tail -n 1)
exec ./build/testbench report "$latest"
