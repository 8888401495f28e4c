#!/usr/bin/env bash
# docker_test.sh - the Docker suite: the image, the compose stack and `study --backend docker`
# against a real Docker daemon, as a user runs them.
#
#   1. a Debian 12 base image from Debian's own mirror (mmdebstrap, `docker import`): no registry
#   2. `docker build --network host` of the Dockerfile, once, and of its vllm-sim stage (a
#      stand-in for vLLM's image); every test below reuses them
#   3. the image: `--version`, `validate` (good and bad files), non-root, its size (printed), its
#      HEALTHCHECK on a running `testbench sim`
#   4. `docker stop` of a running `testbench run` leaves valid partial result files (exit 130)
#   5. the compose sim profile end to end, files in ./results owned by RUNNER_UID
#   6. `testbench study --backend docker` with the stand-in (gpus: none, network: host): the
#      containers testbench-<setup id> exist while measuring and are gone after the study, after
#      Ctrl-C in a setup, after --resume and after a failed start; HF_TOKEN is in no container's
#      arguments; the answer equals the same study's on --backend sim
#
# Containers use the host's network (loopback ports) or a port published on 127.0.0.1: no test
# sends traffic to any other address. Only what no daemon here can show (the GPU request that
# NVIDIA's runtime serves) is left to the stand-in docker CLI of tests/test_study_backend.c.
#
# Usage:
#   scripts/docker_test.sh               prepare, then check, in a folder of its own
#   scripts/docker_test.sh prepare DIR   steps 1-2 (minutes, and no timing in them), logs in DIR:
#                                        scripts/test.sh runs this in the background beside the
#                                        Release build and the fuzzers
#   scripts/docker_test.sh check DIR     steps 3-6 on what `prepare DIR` made, alone (they time real
#                                        servers); then removes the images and DIR
#
# Environment:
#   TB_DOCKER_TESTS  auto (default): where Docker cannot run here (no daemon answers, no root for
#                    mmdebstrap, a tool missing), say why and skip; require (.ci/run): that is a
#                    failure; skip: do not run
#   DOCKER_HOST      the daemon; .ci/run starts a private one (scripts/dockerd.sh)
#   TB_DOCKER_BASE   a local Debian 12 image to build FROM instead of one made with mmdebstrap
#   TB_DEBIAN_MIRROR the mirror mmdebstrap uses (default: the Debian mirror apt is set up with)
#   TB_DOCKER_KEEP=1 keep the images and the work folder at the end
#   TESTBENCH        the host's testbench, which drives the studies (default ./build/testbench)
# Exit: 0 all passed or skipped (auto), 1 a check failed or (require) the suite could not run.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

mode=${TB_DOCKER_TESTS:-auto}
action=${1:-all}
case $action in
all) work= ;;
prepare | check)
    if [ $# -ne 2 ] || [ ! -d "$2" ]; then
        echo "usage: $0 [prepare DIR | check DIR]" >&2
        exit 2
    fi
    work=$(cd "$2" && pwd)
    ;;
*) echo "usage: $0 [prepare DIR | check DIR]" >&2; exit 2 ;;
esac
tb=${TESTBENCH:-./build/testbench}
model=meta-llama/Llama-3.1-8B-Instruct
tag=testbench-test # image names; containers are tbtest-* and testbench-sNN-dsuite-*
passed=0
failed=0
failures=()
timings=()
started=$SECONDS

# A line for the log; prepare's are kept in the work folder too, for check to repeat.
say() {
    printf 'docker: %s\n' "$*"
    [ "$action" != prepare ] || printf 'docker: %s\n' "$*" >>"$work/results"
}

# skip_suite REASON: the suite cannot run here. prepare leaves the reason for check to say.
skip_suite() {
    if [ "$action" = prepare ]; then
        echo "$1" >"$work/skip"
        exit 0
    fi
    [ "$action" != check ] || rm -rf "$work" # check consumes what prepare left
    if [ "$mode" = require ]; then
        say "FAIL: the Docker suite cannot run: $1"
        say "0 passed, 1 failed"
        exit 1
    fi
    say "SKIPPED: the Docker suite did not run: $1"
    say "(CI runs it: .ci/run starts a daemon; TB_DOCKER_TESTS=require makes this a failure)"
    exit 0
}

ok() {
    printf 'ok    %s\n' "$1" | tee -a "$work/results"
    passed=$((passed + 1))
}

# bad NAME [FILE]: a failed check, with the end of FILE (a log) when given.
bad() {
    printf 'FAIL  %s\n' "$1" | tee -a "$work/results"
    if [ -n "${2:-}" ] && [ -f "$2" ]; then
        tail -n 25 "$2" | sed 's/^/      /'
    fi
    failed=$((failed + 1))
    failures+=("$1")
}

# expect NAME COMMAND...: ok when the command succeeds.
expect() {
    local name=$1
    shift
    if "$@" >"$work/expect.log" 2>&1; then ok "$name"; else bad "$name" "$work/expect.log"; fi
}

# timed NAME COMMAND...: runs it and keeps how long it took for the summary.
timed() {
    local name=$1 t=$SECONDS rc
    shift
    "$@"
    rc=$?
    timings+=("$(printf '%4d s  %s' $((SECONDS - t)) "$name")")
    printf '%4d s  %s\n' $((SECONDS - t)) "$name" >>"$work/timings"
    return "$rc"
}

# cpu_now: CPU seconds used so far by the daemon's containers (cgroup v1 cpuacct), by dockerd
# with its reaped children (when it is scripts/dockerd.sh's, whose folder holds its PID) and by
# this script's own children; "-" where unknown. Load-independent figures for the summary. Call
# it in this shell, not in $(...): `times` in a subshell counts the subshell's children.
cpu_now() {
    local containers=- daemon=- self pidf=${DOCKER_HOST:-}
    if [ -r /sys/fs/cgroup/cpuacct/docker/cpuacct.usage ]; then
        containers=$(awk '{ printf "%.1f", $1 / 1e9 }' /sys/fs/cgroup/cpuacct/docker/cpuacct.usage)
    fi
    pidf=$(dirname "${pidf#unix://}")/pid
    if [[ ${DOCKER_HOST:-} == unix://* ]] && [ -r "$pidf" ] && [ -r "/proc/$(cat "$pidf")/stat" ]; then
        daemon=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15 + $16 + $17) / hz }' \
            "/proc/$(cat "$pidf")/stat")
    fi
    # `times`: this shell's user and system time, then its children's, as 1m2.345s.
    times >"$work/times"
    self=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.1f", t }' "$work/times")
    echo "$containers $daemon $self" >"$work/cpu_now"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_until SECONDS COMMAND...: polls every 0.2 s; 1 on timeout.
wait_until() {
    local end=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# Containers of this suite's studies and runs (only ours: a user's own are never touched).
ours() { docker ps -a --format '{{.Names}}' | grep -E '^(tbtest-|testbench-s[0-9]+-dsuite-)' || true; }

cleanup() {
    local c
    [ "$action" != prepare ] || return 0 # check cleans up
    for c in $(ours); do docker rm -f "$c" >/dev/null 2>&1 || true; done
    if [ -n "${compose_down:-}" ]; then "${compose_down[@]}" >/dev/null 2>&1 || true; fi
    if [ "${TB_DOCKER_KEEP:-0}" != 1 ]; then
        docker rmi -f "$tag:run" "$tag:vllm-sim" "$tag/debian:bookworm" >/dev/null 2>&1 || true
        [ -z "$work" ] || rm -rf "$work"
    elif [ -n "$work" ]; then
        say "kept: images $tag:run, $tag:vllm-sim; work folder $work"
    fi
}

# ---- can it run here? ---------------------------------------------------------------------
case $mode in
auto | require) ;;
skip) say "SKIPPED: TB_DOCKER_TESTS=skip"; exit 0 ;;
*) echo "docker_test.sh: TB_DOCKER_TESTS must be auto, require or skip" >&2; exit 2 ;;
esac
command -v docker >/dev/null || skip_suite "the docker CLI is not installed (scripts/setup.sh dev)"
command -v python3 >/dev/null || skip_suite "python3 is not installed (scripts/setup.sh dev)"
if ! timeout 20 docker version >/dev/null 2>&1; then
    skip_suite "no Docker daemon answers at ${DOCKER_HOST:-unix:///var/run/docker.sock} (start one: sudo scripts/dockerd.sh start DIR, then DOCKER_HOST=unix://DIR/docker.sock)"
fi
compose=()
if command -v docker-compose >/dev/null; then
    compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    skip_suite "neither docker-compose nor the docker compose plugin is installed"
fi
[ "$action" = prepare ] || [ -x "$tb" ] || skip_suite "$tb is not built (scripts/build.sh)"
base=${TB_DOCKER_BASE:-}
if [ -n "$base" ]; then
    docker image inspect "$base" >/dev/null 2>&1 || skip_suite "TB_DOCKER_BASE=$base is not a local image"
elif [ "$(id -u)" -ne 0 ]; then
    skip_suite "making the base image with mmdebstrap needs root (or set TB_DOCKER_BASE to a local debian:12-slim)"
elif ! command -v mmdebstrap >/dev/null; then
    skip_suite "mmdebstrap is not installed (scripts/setup.sh dev)"
fi

[ -n "$work" ] || work=$(mktemp -d /tmp/tb-docker-test.XXXXXX)
chmod 755 "$work"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ "$action" != check ]; then
    say "daemon $(docker version --format '{{.Server.Version}}'), storage $(docker info --format '{{.Driver}}'), client $(docker version --format '{{.Client.Version}}'), ${compose[*]}"
    cpu_now
    mv "$work/cpu_now" "$work/cpu0"
fi

# Files the containers write belong to RUNNER_UID: not ours when we are root, to show it is used.
if [ "$(id -u)" -eq 0 ]; then runner_uid=4321; else runner_uid=$(id -u); fi

# ---- 1. base image ------------------------------------------------------------------------
make_base() {
    local mirror=${TB_DEBIAN_MIRROR:-}
    if [ -z "$mirror" ]; then
        # shellcheck disable=SC2016 # apt's $(FIELD) placeholders, not the shell's
        mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(LABEL)' 2>/dev/null |
            awk '$2 == "bookworm" && $3 == "Debian" { print $1; exit }')
    fi
    mirror=${mirror:-http://deb.debian.org/debian}
    say "base image from $mirror (mmdebstrap minbase, as debian:12-slim: no docs, no apt caches)"
    # As Debian's slim images: merged /usr without the usrmerge package (and the Perl it pulls),
    # no man pages, docs or locales, dpkg without fsync (force-unsafe-io) and apt that keeps no
    # .deb files or caches in the image.
    # shellcheck disable=SC2016 # $1 is mmdebstrap's, expanded by its hook shell
    mmdebstrap --variant=minbase --quiet --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --aptopt='APT::Install-Recommends "false"' --dpkgopt=force-unsafe-io \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --customize-hook='printf "%s\n" "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "Dir::Cache::pkgcache \"\";" "Dir::Cache::srcpkgcache \"\";" >"$1/etc/apt/apt.conf.d/docker-clean"; rm -f "$1"/var/cache/apt/*.bin' \
        bookworm "$work/rootfs.tar" "$mirror" </dev/null >"$work/mmdebstrap.log" 2>&1 &&
        docker import "$work/rootfs.tar" "$tag/debian:bookworm" >>"$work/mmdebstrap.log" 2>&1 &&
        rm -f "$work/rootfs.tar"
}
prepare() {
    if [ -z "$base" ]; then
        base=$tag/debian:bookworm
        if ! timed "base image (mmdebstrap + docker import)" make_base; then
            bad "base image from Debian's mirror" "$work/mmdebstrap.log"
            return 1
        fi
        ok "base image from Debian's mirror ($(docker image inspect -f '{{.Size}}' "$base" | awk '{printf "%.1f MB", $1 / 1e6}'))"
    fi
    echo "$base" >"$work/base"
    if ! timed "docker build (image and vllm-sim stage)" build; then
        bad "docker build --network host ." "$work/build.log"
        return 1
    fi
    ok "docker build --network host . (and --target vllm-sim)"
}

# ---- 2. the images ------------------------------------------------------------------------
build() {
    local git
    git=$(git describe --always --dirty 2>/dev/null || echo unknown)
    docker build --network host --build-arg DEBIAN_IMAGE="$base" --build-arg TB_GIT="$git" \
        -t "$tag:run" . >"$work/build.log" 2>&1 &&
        docker build --network host --build-arg DEBIAN_IMAGE="$base" --build-arg TB_GIT="$git" \
            --target vllm-sim -t "$tag:vllm-sim" . >>"$work/build.log" 2>&1
}

# What prepare left: its results, or why it could not run.
prepared() {
    [ ! -f "$work/skip" ] || skip_suite "$(cat "$work/skip")"
    if [ ! -f "$work/results" ]; then
        [ ! -f "$work/prepare.out" ] || tail -n 20 "$work/prepare.out"
        skip_suite "scripts/docker_test.sh prepare $work did not run, or did not finish"
    fi
    base=$(cat "$work/base" 2>/dev/null)
    passed=$(grep -c '^ok ' "$work/results")
    failed=$(grep -c '^FAIL ' "$work/results")
    mapfile -t failures < <(sed -n 's/^FAIL  //p' "$work/results")
    mapfile -t timings <"$work/timings"
    cat "$work/results"
}

case $action in
prepare)
    prepare
    rc=$?
    cpu_now
    awk '{ print $3 }' "$work/cpu_now" >"$work/cpu_prepare"
    exit "$rc"
    ;;
check) prepared ;;
all) prepare ;;
esac
if [ "$failed" -gt 0 ]; then
    say "the images could not be made: no check ran"
    say "$passed passed, $failed failed"
    exit 1
fi

# ---- 3. the image -------------------------------------------------------------------------
image_checks() {
    local size user out
    size=$(docker image inspect -f '{{.Size}}' "$tag:run")
    say "runtime image: $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }') (base $(docker image inspect -f '{{.Size}}' "$base" | awk '{printf "%.1f MB", $1 / 1e6}'))"
    if [ "$size" -lt 150000000 ]; then ok "runtime image is under 150 MB"; else bad "runtime image is under 150 MB (it is $size bytes)"; fi

    out=$(docker run --rm --network none "$tag:run" --version 2>&1)
    if [[ $out == "testbench $("$tb" --version | awk '{print $2}')"* ]]; then
        ok "docker run IMAGE --version: $out"
    else
        bad "docker run IMAGE --version prints the host build's version (got: $out)"
    fi
    user=$(docker run --rm --network none --entrypoint id "$tag:run" -u)
    if [ "$(docker image inspect -f '{{.Config.User}}' "$tag:run")" = testbench ] && [ "$user" != 0 ]; then
        ok "runs as a non-root user (testbench, uid $user)"
    else
        bad "runs as a non-root user (uid $user)"
    fi
    expect "docker run IMAGE validate --config /configs/study_quick.yaml" \
        docker run --rm --network none "$tag:run" validate --config /configs/study_quick.yaml

    mkdir -p "$work/cfg"
    cat >"$work/cfg/bad.yaml" <<'EOF'
study:
  name: "bad"
setups:
  grid:
    model: ["meta-llama/Llama-3.1-8B-Instruct"]
backend:
  type: "docker"
  network: "bridge"
EOF
    chmod 644 "$work/cfg/bad.yaml"
    out=$(docker run --rm --network none -v "$work/cfg:/cfg:ro" "$tag:run" validate --config /cfg/bad.yaml 2>&1)
    local rc=$?
    if [ "$rc" -eq 2 ] && [[ $out == *"/cfg/bad.yaml:8:12: backend.network: "* ]]; then
        ok "validate of a bad file in the image: exit 2, file:line:column and key"
    else
        bad "validate of a bad file in the image: exit 2, file:line:column and key (exit $rc: $out)"
    fi
}
timed "image checks" image_checks

# The stand-in as vLLM's own image is run: the model first, then vLLM's flags. Health checked
# every second here (the image's 10 s would only slow the test).
sim_port=$(free_port)
standin() {
    docker run -d --name tbtest-vllm --network host --health-interval 1s "$tag:vllm-sim" \
        "$model" --host 127.0.0.1 --port "$sim_port" --max-model-len 4096 \
        --gpu-memory-utilization 0.9 --max-num-seqs 16 --kv-cache-dtype auto \
        --tensor-parallel-size 1 --no-enable-prefix-caching >"$work/standin.log" 2>&1 &&
        wait_until 60 sh -c "[ \"\$(docker inspect -f '{{.State.Health.Status}}' tbtest-vllm)\" = healthy ]"
}
if timed "stand-in container healthy" standin; then
    ok "vllm-sim stand-in with vLLM's arguments turns healthy (HEALTHCHECK: GET /health on --port)"
    docker logs tbtest-vllm >"$work/standin.log" 2>&1
    if grep -Eq '^GPU KV cache size: [0-9,]+ tokens' "$work/standin.log" &&
        grep -q '^Maximum concurrency for 4096 tokens per request: ' "$work/standin.log"; then
        ok "the stand-in prints vLLM's KV-cache and concurrency lines"
    else
        bad "the stand-in prints vLLM's KV-cache and concurrency lines" "$work/standin.log"
    fi
else
    docker logs tbtest-vllm >>"$work/standin.log" 2>&1
    bad "vllm-sim stand-in turns healthy" "$work/standin.log"
fi

# ---- 4. docker stop of a running `testbench run` -----------------------------------------
served() { # the stand-in has finished N requests
    python3 - "$sim_port" "$1" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
done = sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("vllm:request_success_total"))
sys.exit(0 if done >= float(sys.argv[2]) else 1)
EOF
}
stop_run() {
    mkdir -p "$work/run/results"
    chown "$runner_uid:$runner_uid" "$work/run/results"
    cat >"$work/run/run.yaml" <<EOF
benchmark:
  name: "docker_stop"
  output_prefix: "docker_stop"
  seed: 42
server:
  api: "completions"
model:
  name: "$model"
requests:
  num_requests: 400
  concurrent_requests: 4
  rate_per_second: .inf
  prompt_tokens_min: 128
  prompt_tokens_max: 128
  completion_tokens: 64
telemetry:
  collect_gpu_stats: false
EOF
    chmod 644 "$work/run/run.yaml"
    docker run -d --name tbtest-run --network host --user "$runner_uid:$runner_uid" \
        -v "$work/run/run.yaml:/cfg/run.yaml:ro" -v "$work/run/results:/results" "$tag:run" \
        run --config /cfg/run.yaml --endpoint "http://127.0.0.1:$sim_port" --output-dir /results \
        >"$work/run.log" 2>&1 || return 1
    wait_until 60 served 8 || return 1
    docker stop -t 60 tbtest-run >>"$work/run.log" 2>&1
    docker logs tbtest-run >>"$work/run.log" 2>&1
    local code
    code=$(docker inspect -f '{{.State.ExitCode}}' tbtest-run)
    docker rm -f tbtest-run >/dev/null 2>&1
    [ "$code" = 130 ] || { echo "exit code $code, not 130" >>"$work/run.log"; return 1; }
    python3 - "$work/run/results" "$runner_uid" >>"$work/run.log" 2>&1 <<'EOF'
import csv, glob, json, os, sys
d, uid = sys.argv[1], int(sys.argv[2])
det = json.load(open(glob.glob(f"{d}/docker_stop_*_detailed.json")[0]))
point = det["points"][0]
assert point["partial"] is True, "the point is not marked partial"
assert 0 < len(point["requests"]) < 400, f"{len(point['requests'])} requests recorded"
rows = list(csv.DictReader(open(glob.glob(f"{d}/docker_stop_*_summary.csv")[0])))
assert rows and rows[0]["partial"] == "true", "summary.csv has no partial row"
json.load(open(glob.glob(f"{d}/docker_stop_*_telemetry.json")[0]))
assert not glob.glob(f"{d}/*.tmp"), "a .tmp file was left"
for f in glob.glob(f"{d}/*"):
    assert os.stat(f).st_uid == uid, f"{f} is not owned by {uid}"
print(f"partial point with {len(point['requests'])} requests")
EOF
}
if timed "docker stop of testbench run" stop_run; then
    ok "docker stop of a running testbench run: exit 130, valid partial files ($(tail -n 1 "$work/run.log"))"
else
    bad "docker stop of a running testbench run: exit 130, valid partial files" "$work/run.log"
fi
docker rm -f tbtest-vllm >/dev/null 2>&1

# ---- 5. the compose sim profile ---------------------------------------------------------
compose_sim() {
    local dir=$work/compose
    mkdir -p "$dir/results"
    chown "$runner_uid:$runner_uid" "$dir/results"
    ln -s "$PWD/configs" "$dir/configs"
    compose_env=(env SIM_PUBLISH_ADDR=127.0.0.1 SIM_PORT="$(free_port)" RUNNER_UID="$runner_uid"
        RUNNER_GID="$runner_uid" TESTBENCH_IMAGE="$tag:run")
    local args=(--env-file .env.example -f docker-compose.yml -f tests/docker/compose.loopback.yml
        --project-directory "$dir" -p tbtest)
    compose_down=("${compose_env[@]}" "${compose[@]}" "${args[@]}" --profile sim down)
    "${compose_env[@]}" timeout 300 "${compose[@]}" "${args[@]}" --profile sim up --no-build \
        --abort-on-container-exit --exit-code-from bench-sim sim bench-sim >"$dir/up.log" 2>&1
    local rc=$?
    "${compose_down[@]}" >>"$dir/up.log" 2>&1
    cp "$dir/up.log" "$work/compose.log"
    [ "$rc" -eq 0 ] || { echo "compose up: exit $rc" >>"$work/compose.log"; return 1; }
    python3 - "$dir/results" "$runner_uid" >>"$work/compose.log" 2>&1 <<'EOF'
import csv, glob, os, sys
d, uid = sys.argv[1], int(sys.argv[2])
files = glob.glob(f"{d}/sanity_check_*")
assert len(files) == 3, files
rows = list(csv.DictReader(open([f for f in files if f.endswith("_summary.csv")][0])))
assert rows and int(rows[0]["completed"]) == 10, rows
for f in files:
    st = os.stat(f)
    assert (st.st_uid, st.st_gid) == (uid, uid), f"{f} belongs to {st.st_uid}:{st.st_gid}"
EOF
}
if timed "compose sim profile" compose_sim; then
    ok "compose --profile sim up sim bench-sim: the sanity check, files in ./results owned by RUNNER_UID $runner_uid"
else
    bad "compose --profile sim up sim bench-sim" "$work/compose.log"
fi
compose_down=()
if [ -n "$(docker ps -a --filter label=com.docker.compose.project=tbtest -q)" ]; then
    bad "compose down leaves no container"
fi

# ---- 6. study --backend docker --------------------------------------------------------------
# Two setups that differ in max_num_seqs: with N users above it, one user waits a whole request
# (64 tokens, ~0.8 s) for a slot, over twice the 350 ms TTFT objective; at or below it TTFT is a
# prefill (~40-70 ms), a fifth of it. So the answer (2 and 4 users) stands on a busy machine.
# Request streams (closed-loop slots, no think time): users in conversation, a study's default,
# think seconds between turns and rarely wait for a slot at all.
# Judged at p90: above max_num_seqs most requests wait for a slot, far more than 10 %, and 36
# requests decide a p90 (p95 needs 72), which halves the two studies' time.
mkdir -p "$work/study/hf"
cat >"$work/study/study.yaml" <<EOF
study:
  name: "dsuite"
  gpu: "rtx-pro-6000"
  users: [2]
  capacity_search: true
  max_users: 8
  requests_per_user: 4
  min_requests: 8
backend:
  type: "sim"
  image: "$tag:vllm-sim"
  gpus: "none"
  network: "host"
  hf_cache: "$work/study/hf"
  startup_timeout_s: 120
  stop_grace_s: 10
setups:
  defaults:
    model: "$model"
    max_model_len: 4096
  list:
    - {name: "dsuite-seqs2", max_num_seqs: 2}
    - {name: "dsuite-seqs4", max_num_seqs: 4}
benchmark:
  name: "dsuite"
  output_dir: "$work/study/out"
  seed: 42
server:
  api: "completions"
model:
  name: "$model"
requests:
  prompt_tokens_min: 256
  prompt_tokens_max: 256
  completion_tokens: 64
workloads:
  - {name: "default", population: "streams"}
slo:
  ttft_ms: 350
  tpot_ms: 200
  percentile: 90
telemetry:
  collect_gpu_stats: false
EOF
secret=hf_docker_suite_not_in_args_42
c1=testbench-s01-dsuite-seqs2
c2=testbench-s02-dsuite-seqs4
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

# token_hidden NAME: the token reached the container by name, and is in none of its arguments.
token_hidden() {
    local args env
    args=$(docker inspect -f '{{.Path}} {{json .Args}} {{json .Config.Cmd}} {{json .Config.Entrypoint}}' "$1")
    env=$(docker inspect -f '{{json .Config.Env}}' "$1")
    [[ $args != *"$secret"* ]] && [[ $env == *"\"HF_TOKEN=$secret\""* ]]
}

second_measuring() { sed -n '/\[2\/2\]/,$p' "$work/study/docker1.log" | grep -q "users: TTFT"; }

study_docker() {
    local pid rc
    HF_TOKEN=$secret "$tb" study --config "$work/study/study.yaml" --backend docker \
        >"$work/study/docker1.log" 2>&1 &
    pid=$!
    if wait_until 120 running "$c1"; then
        ok "while setup 1 is measured its container $c1 runs"
        if token_hidden "$c1"; then
            ok "HF_TOKEN is in the container's environment and in none of its arguments (docker inspect)"
        else
            bad "HF_TOKEN is in the container's environment and in none of its arguments (docker inspect)"
        fi
    else
        bad "while setup 1 is measured its container $c1 runs" "$work/study/docker1.log"
    fi
    # Ctrl-C once setup 2 has measured its first point and goes on to the next.
    if wait_until 120 running "$c2" && wait_until 60 second_measuring; then
        kill -INT "$pid"
    else
        bad "setup 2's container $c2 runs" "$work/study/docker1.log"
        kill -INT "$pid"
    fi
    wait "$pid"
    rc=$?
    if [ "$rc" -eq 130 ] && [ -z "$(ours)" ]; then
        ok "Ctrl-C while setup 2 is measured: exit 130, no container left"
    else
        bad "Ctrl-C while setup 2 is measured: exit 130 (got $rc), no container left ($(ours | tr '\n' ' '))" "$work/study/docker1.log"
    fi
    local sdir
    sdir=$(find "$work/study/out" -maxdepth 1 -name 'dsuite_*' -type d | head -n 1)
    HF_TOKEN=$secret "$tb" study --resume "$sdir" --backend docker >"$work/study/docker2.log" 2>&1 &
    pid=$!
    if wait_until 120 running "$c2"; then
        ok "--resume: setup 2's container $c2 runs while it is measured"
    else
        bad "--resume: setup 2's container $c2 runs while it is measured" "$work/study/docker2.log"
    fi
    wait "$pid"
    rc=$?
    if [ "$rc" -eq 0 ] && [ -z "$(ours)" ]; then
        ok "the study ends (exit 0) with no container left"
    else
        bad "the study ends (exit 0, got $rc) with no container left ($(ours | tr '\n' ' '))" "$work/study/docker2.log"
    fi
    if grep -rq "$secret" "$sdir"; then bad "the token is in no study file or server log"; else ok "the token is in no study file or server log"; fi
    echo "$sdir" >"$work/study/docker.dir"
}
timed "study --backend docker (Ctrl-C, --resume)" study_docker

study_sim() {
    "$tb" study --config "$work/study/study.yaml" --backend sim --output-dir "$work/study/sim" \
        >"$work/study/sim.log" 2>&1
}
if timed "the same study on --backend sim" study_sim; then
    sim_dir=$(find "$work/study/sim" -maxdepth 1 -name 'dsuite_*' -type d | head -n 1)
    # The answer: per setup its state, the server's KV capacity (from its log), and per
    # workload the most users within the SLO and whether the target point met it.
    if python3 - "$(cat "$work/study/docker.dir" 2>/dev/null)" "$sim_dir" >"$work/study/compare.log" 2>&1 <<'EOF'; then
import json, sys
def answer(d):
    doc = json.load(open(f"{d}/study.json"))
    setups = {s["id"]: (s["status"], s["server_kv_capacity_tokens"]) for s in doc["setups"]}
    rows = {(r["setup"], r["workload"], r["role"], r["users"]): (r["status"], r["slo_met"])
            for r in doc["rows"]}
    users = {(r["setup"], r["workload"]): r["meas_max_users"] for r in doc["rows"]}
    return doc["backend"], setups, users, {k: v for k, v in rows.items() if k[2] == "target"}
db, ds, du, dt = answer(sys.argv[1])
sb, ss, su, st = answer(sys.argv[2])
print("docker:", ds, du, dt)
print("sim:   ", ss, su, st)
assert (db, sb) == ("docker", "sim"), (db, sb)
assert ds == ss and du == su and dt == st, "the answers differ"
assert sorted(du.values()) == [2, 4], du
print("answer: " + ", ".join(f"{s} {n} users" for (s, w), n in sorted(du.items()))
      + f"; server KV cache {ds[sorted(ds)[0]][1]:,} tokens")
EOF
        ok "the docker study's answer equals the sim study's ($(tail -n 1 "$work/study/compare.log"))"
    else
        bad "the docker study's answer equals the sim study's" "$work/study/compare.log"
    fi
else
    bad "the same study on --backend sim" "$work/study/sim.log"
fi

# A setup whose server refuses to start (70B weights in BF16 do not fit 96 GB; --force launches
# it anyway): failed_to_start, oom, and its container is gone.
failed_start() {
    sed -e 's/name: "dsuite"/name: "dsuite_oom"/' \
        -e 's/{name: "dsuite-seqs2", max_num_seqs: 2}/{name: "dsuite-oom", model: "meta-llama\/Llama-3.1-70B-Instruct"}/' \
        -e '/dsuite-seqs4/d' "$work/study/study.yaml" >"$work/study/oom.yaml"
    "$tb" study --config "$work/study/oom.yaml" --backend docker --force \
        --output-dir "$work/study/oom" >"$work/study/oom.log" 2>&1 || return 1
    [ -z "$(ours)" ] || { echo "left: $(ours)" >>"$work/study/oom.log"; return 1; }
    python3 - "$(find "$work/study/oom" -maxdepth 1 -name 'dsuite_oom_*' -type d | head -n 1)" \
        >>"$work/study/oom.log" 2>&1 <<'EOF'
import json, sys
s = json.load(open(f"{sys.argv[1]}/study.json"))["setups"][0]
assert s["id"] == "s01-dsuite-oom" and s["status"] == "failed_to_start", s
assert "out of memory" in s["reason"], s["reason"]
print(s["reason"])
EOF
}
if timed "study --backend docker, a failed start" failed_start; then
    ok "a server that fails to start: failed_to_start (oom), no container left"
else
    bad "a server that fails to start: failed_to_start (oom), no container left" "$work/study/oom.log"
fi

# ---- summary --------------------------------------------------------------------------------
say "times:"
printf '  %s\n' "${timings[@]}"
say "$([ "$action" = check ] && echo checks || echo "whole suite"): $((SECONDS - started)) s"
# CPU, whatever the machine's load: containers, dockerd, and this script's processes (prepare's too).
read -r c0 d0 _ <"$work/cpu0"
cpu_now
read -r c1 d1 self <"$work/cpu_now"
self_prep=$(cat "$work/cpu_prepare" 2>/dev/null || echo 0)
say "CPU time: containers $(awk -v a="$c0" -v b="$c1" 'BEGIN { if (a == "-" || b == "-") print "?"; else printf "%.0f", b - a }') s, dockerd and its children $(awk -v a="$d0" -v b="$d1" 'BEGIN { if (a == "-" || b == "-") print "?"; else printf "%.0f", b - a }') s, the suite's own processes (mmdebstrap, docker and compose clients, testbench studies) $(awk -v a="$self" -v b="$self_prep" 'BEGIN { printf "%.0f", a + b }') s"
if [ "$failed" -gt 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
say "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
