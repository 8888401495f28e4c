#!/usr/bin/env bash
# healthcheck.sh - the image's HEALTHCHECK (installed as /usr/local/bin/testbench-healthcheck).
# Every `testbench sim` in the container must answer GET /health with 200 on its --host and
# --port (127.0.0.1 for 0.0.0.0; the defaults 127.0.0.1 and 8000). A container that runs no
# simulator (run, validate, plan, telemetry) has nothing to serve and is healthy while it runs.
# The runtime image has bash and no curl: HTTP/1.0 over bash's /dev/tcp.
# Exit 0 healthy, 1 unhealthy (Docker's HEALTHCHECK contract).
set -uo pipefail

# probe HOST PORT: 0 when GET /health answers 200.
probe() {
    local status
    exec 3<>"/dev/tcp/$1/$2" || return 1
    printf 'GET /health HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" >&3 || return 1
    IFS= read -r -t 5 status <&3 || return 1
    exec 3<&-
    [[ $status == "HTTP/"*" 200"* ]]
}

for cmdline in /proc/[0-9]*/cmdline; do
    args=()
    mapfile -d '' -t args 2>/dev/null <"$cmdline" || continue # a process that just ended
    if [ "${#args[@]}" -lt 2 ] || [ "${args[0]##*/}" != testbench ] || [ "${args[1]}" != sim ]; then
        continue
    fi
    host=127.0.0.1
    port=8000
    for ((i = 2; i < ${#args[@]}; i++)); do
        case ${args[i]} in
        --host) host=${args[i + 1]:-}; i=$((i + 1)) ;;
        --host=*) host=${args[i]#--host=} ;;
        --port) port=${args[i + 1]:-}; i=$((i + 1)) ;;
        --port=*) port=${args[i]#--port=} ;;
        esac
    done
    case $host in
    0.0.0.0 | "") host=127.0.0.1 ;;
    :: | "[::]") host=::1 ;;
    esac
    if ! probe "$host" "$port"; then
        echo "testbench sim on $host:$port does not answer GET /health with 200"
        exit 1
    fi
done
exit 0
