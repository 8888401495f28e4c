#!/usr/bin/env bash
# setup.sh - installs what testbench needs to build and test, from Debian's packages.
# Idempotent: installs only what is missing. The Dockerfile runs this same script
# (one source of truth for dependencies). Usage: scripts/setup.sh [build|runtime|dev]
#   build   - compiler and -dev libraries (default)
#   runtime - the shared libraries the binary needs, nothing else
#   dev     - build + the linters CI runs (shellcheck, yamllint, docker-compose, clang-format)
#             and the tools the tests use (socat and openssl: a TLS front for the HTTPS test;
#             clang-14 and libclang-rt-14-dev: libFuzzer for scripts/fuzz.sh)
set -euo pipefail

runtime_pkgs=(libcurl4 libevent-2.1-7 libevent-pthreads-2.1-7 libyaml-0-2 libjansson4 ca-certificates)
build_pkgs=(build-essential cmake pkg-config git libcurl4-openssl-dev libevent-dev libyaml-dev
            libjansson-dev libcmocka-dev)
dev_pkgs=(shellcheck yamllint docker-compose clang-format socat openssl clang-14 libclang-rt-14-dev)

case "${1:-build}" in
runtime) want=("${runtime_pkgs[@]}") ;;
build) want=("${build_pkgs[@]}") ;;
dev) want=("${build_pkgs[@]}" "${dev_pkgs[@]}") ;;
*) echo "usage: $0 [build|runtime|dev]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
echo "setup: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
