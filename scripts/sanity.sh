#!/usr/bin/env bash
# sanity.sh - sets up, builds and runs the sanity benchmark against the built-in
# simulator (no GPU, no server needed). Results land in ./results.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
scripts/build.sh
exec ./build/testbench run --config configs/sanity_check.yaml --sim "$@"
