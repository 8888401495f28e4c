#!/usr/bin/env bash
# setup.sh - installs what testbench needs to build and test, from Debian's packages.
# Idempotent: installs only what is missing. The Dockerfile runs this same script
# (one source of truth for dependencies). Usage: scripts/setup.sh [build|runtime|dev]
#   build   - compiler and -dev libraries (default)
#   runtime - the shared libraries the binary needs, nothing else
#   dev     - build + the linters CI runs (shellcheck, yamllint, docker-compose, clang-format),
#             the tools the tests use (socat and openssl: a TLS front for the HTTPS test;
#             clang-14 and libclang-rt-14-dev: libFuzzer for scripts/fuzz.sh; slurm-wlm and
#             munge: the single-node cluster of scripts/slurm.sh), what the
#             report tests use: Chromium driven by playwright-core (npm, pinned, into
#             .tools/node, which git ignores) and Jupyter with pandas and matplotlib for the
#             notebooks, and what the Docker suite uses (scripts/docker_test.sh): Debian's
#             Docker engine (docker.io, unless a dockerd is installed already, e.g. Docker's
#             own docker-ce, which conflicts with it) and mmdebstrap for the base image
set -euo pipefail
cd "$(dirname "$0")/.."

# libjs-chart.js: Chart.js, which `testbench report` inlines into every report it writes.
runtime_pkgs=(libcurl4 libevent-2.1-7 libevent-pthreads-2.1-7 libyaml-0-2 libjansson4 ca-certificates
              libjs-chart.js)
# The build group also takes Chart.js: whoever builds testbench runs its main job, whose last
# step is a report.
build_pkgs=(build-essential cmake pkg-config git libcurl4-openssl-dev libevent-dev libyaml-dev
            libjansson-dev libcmocka-dev libjs-chart.js)
dev_pkgs=(shellcheck yamllint docker-compose clang-format socat openssl clang-14 libclang-rt-14-dev
          mmdebstrap slurm-wlm munge)
if ! command -v dockerd >/dev/null || dpkg-query -W -f='${Status}' docker.io 2>/dev/null |
    grep -q "install ok installed"; then
    dev_pkgs+=(docker.io)
fi
# The report's tests: a real browser, and the notebooks executed headless.
report_test_pkgs=(libjs-chart.js chromium python3-pandas python3-matplotlib jupyter-nbconvert
                  python3-ipykernel)
# Pinned: the browser test's driver (playwright-core drives Debian's /usr/bin/chromium; it
# downloads no browser of its own).
playwright_version=1.64.1

case "${1:-build}" in
runtime) want=("${runtime_pkgs[@]}") ;;
build) want=("${build_pkgs[@]}") ;;
dev) want=("${build_pkgs[@]}" "${dev_pkgs[@]}" "${report_test_pkgs[@]}") ;;
*) echo "usage: $0 [build|runtime|dev]" >&2; exit 2 ;;
esac

# npm_tools: what the tests drive through node, into .tools/node (dev only): playwright-core for
# tests/report_browser.cjs; kubernetes-models (the Kubernetes API's types and JSON schemas), yaml
# and typescript for tests/k8s_validate.mjs, the offline check of the emitted manifests.
npm_pins=("playwright-core@$playwright_version" kubernetes-models@5.1.0 yaml@2.9.1
          typescript@5.9.3)
npm_tools() {
    local pin name want have missing_pins=()
    for pin in "${npm_pins[@]}"; do
        name=${pin%@*}
        want=${pin##*@}
        have=$(node -p "require('./.tools/node/node_modules/$name/package.json').version" \
            2>/dev/null || true)
        [ "$have" = "$want" ] || missing_pins+=("$pin")
    done
    [ ${#missing_pins[@]} -eq 0 ] && return 0
    if ! command -v npm >/dev/null; then
        echo "setup: npm is needed for the browser and manifest tests (apt-get install npm)" >&2
        return 1
    fi
    echo "setup: installing ${missing_pins[*]} into .tools/node" >&2
    npm install --silent --no-audit --no-fund --prefix .tools/node "${npm_pins[@]}" >/dev/null
}

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    if [ "${1:-build}" = dev ]; then
        npm_tools
    fi
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
echo "setup: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "${1:-build}" = dev ]; then
    npm_tools
fi
