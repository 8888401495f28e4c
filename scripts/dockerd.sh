#!/usr/bin/env bash
# dockerd.sh - a private Docker daemon for the tests, without systemd (root; Debian's docker.io):
# its data, state and socket all under one folder, stopped by its PID.
#
#   scripts/dockerd.sh start DIR   start it; prints the DOCKER_HOST to use (unix://DIR/docker.sock)
#   scripts/dockerd.sh stop DIR    stop it: SIGTERM to its PID (it stops its containers first),
#                                  SIGKILL to its process group after 60 s, unmount what it left
#                                  under DIR, remove DIR
#
# No bridge, no iptables rules, no IP forwarding: nothing on the machine changes but DIR, and a
# container reaches only what its own network settings give it (`--network host`, or a network
# of its own, such as compose's). The storage driver is dockerd's choice (overlay2 where the
# kernel has it), or TB_DOCKERD_STORAGE (e.g. vfs). .ci/run uses this; by hand:
#   dir=$(mktemp -d /tmp/tb-dockerd.XXXXXX) && sudo scripts/dockerd.sh start "$dir"
#   DOCKER_HOST=unix://$dir/docker.sock scripts/docker_test.sh
#   sudo scripts/dockerd.sh stop "$dir"
set -euo pipefail

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
if [ -z "$dir" ] || [ "$dir" = / ]; then
    usage
fi

# pid_of FILE NAME: the PID in FILE, if that process is still NAME (a PID can be reused).
pid_of() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    echo "$pid"
}

our_pid() {
    pid_of "$dir/pid" dockerd
}

# Mount points under DIR, deepest first.
mounts_under() {
    awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

start() {
    if ! command -v dockerd >/dev/null; then
        echo "dockerd.sh: dockerd is not installed (scripts/setup.sh dev installs docker.io)" >&2
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "dockerd.sh: dockerd needs root" >&2
        exit 1
    fi
    mkdir -p "$dir"
    if our_pid >/dev/null; then
        echo "dockerd.sh: a daemon already runs for $dir (pid $(our_pid))" >&2
        exit 1
    fi
    local sock="$dir/docker.sock" storage=()
    [ -z "${TB_DOCKERD_STORAGE:-}" ] || storage=(--storage-driver "$TB_DOCKERD_STORAGE")
    # setsid: its own process group, so that a last-resort SIGKILL reaches what it forked.
    setsid dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
        --host "unix://$sock" --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
        "${storage[@]}" </dev/null >"$dir/dockerd.log" 2>&1 &
    echo $! >"$dir/pid"
    local i
    for ((i = 0; i < 600; i++)); do # 60 s
        if DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1; then
            echo "dockerd.sh: dockerd $(DOCKER_HOST="unix://$sock" docker version \
                --format '{{.Server.Version}}') (pid $(cat "$dir/pid"), storage \
$(DOCKER_HOST="unix://$sock" docker info --format '{{.Driver}}')) on unix://$sock" >&2
            echo "unix://$sock"
            return 0
        fi
        if ! our_pid >/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "dockerd.sh: dockerd did not start; the end of $dir/dockerd.log:" >&2
    tail -n 20 "$dir/dockerd.log" >&2
    stop
    exit 1
}

stop() {
    local pid i
    if pid=$(our_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 600; i++)); do # 60 s
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        if [ -d "/proc/$pid" ]; then
            echo "dockerd.sh: dockerd (pid $pid) did not stop within 60 s: SIGKILL" >&2
            kill -KILL -- "-$pid" 2>/dev/null || true
            sleep 1
        fi
    fi
    # The containerd dockerd started (in a process group of its own) goes with dockerd; after a
    # SIGKILL it is left behind.
    if pid=$(pid_of "$dir/exec/containerd/containerd.pid" containerd); then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    local m
    while IFS= read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(mounts_under)
    if [ -n "$(mounts_under)" ]; then
        echo "dockerd.sh: still mounted under $dir, left in place:" >&2
        mounts_under >&2
        return 1
    fi
    rm -rf "$dir"
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
