#!/usr/bin/env bash
# sanity.sh - sets up, builds and runs the main job on the built-in simulator (no GPU, no server
# needed): the quick capacity study, configs/study_quick.yaml. It plans four server setups,
# launches each as a simulated vLLM, measures 10 users and searches for the most users within the
# SLO. Results land in ./results/study_quick_<time>/. Extra arguments go to `testbench study`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
scripts/build.sh
exec ./build/testbench study --config configs/study_quick.yaml --backend sim "$@"
