#!/usr/bin/env bash
# study.sh - sets up, builds and runs a capacity study on this machine, e.g. on the GPU server:
#   scripts/study.sh --config configs/llama3_70b_study.yaml --backend docker
# Arguments go to `testbench study` (see docs/STUDY.md). The docker backend starts each vLLM
# setup as a container through the docker CLI, so Docker with the NVIDIA Container Toolkit must
# work here (`docker run --rm --gpus all debian:12-slim nvidia-smi`), and HF_TOKEN must be set
# for gated models.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
scripts/build.sh >/dev/null
exec ./build/testbench study "$@"
