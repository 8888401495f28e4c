#!/usr/bin/env bash
# build.sh - configures and builds testbench into build/ (or $BUILD_DIR).
# Extra arguments go to cmake's configure step, e.g. -DSANITIZE=address,undefined.
# BUILD_TARGET=NAME builds that target alone (e.g. testbench, without the tests and benches).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
