#!/usr/bin/env bash
# slurm.sh - a real single-node Slurm cluster for the tests (Debian's slurm-wlm and munge, which
# `scripts/setup.sh dev` installs): munged, slurmctld and two slurmd "nodes" (tbn1, tbn2), each
# with two fake GPUs through gres, all started as root without systemd, in the foreground of
# background jobs whose process ids are kept, so `stop` ends exactly these processes.
#   scripts/slurm.sh start   # writes $TB_SLURM_DIR/env (SLURM_CONF=...) and waits until both
#                            # nodes are idle; prints the env line
#   scripts/slurm.sh stop    # ends the daemons by their process ids, removes nothing else
# TB_SLURM_DIR (default /tmp/testbench-slurm) holds the configuration, state, logs and pids;
# TB_SLURM_PORT (default 26817) is slurmctld's port, the nodes take the next two.
set -euo pipefail
dir=${TB_SLURM_DIR:-/tmp/testbench-slurm}
port=${TB_SLURM_PORT:-26817}

stop() {
    local f pid
    for f in "$dir"/pids/*; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
    done
    for f in "$dir"/pids/*; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$f"
    done
}

start() {
    for p in munged slurmctld slurmd sbatch; do
        if ! command -v "$p" >/dev/null && [ ! -x "/usr/sbin/$p" ]; then
            echo "slurm.sh: $p is not installed (scripts/setup.sh dev installs slurm-wlm and munge)" >&2
            exit 1
        fi
    done
    [ -d "$dir/pids" ] && stop
    rm -rf "$dir"
    mkdir -p "$dir"/{pids,state,spool,munge,log}
    chmod 700 "$dir/munge"
    # munge's key: made here, so the cluster needs nothing from /etc.
    head -c 1024 /dev/urandom >"$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    # The fake GPUs: character devices like /dev/null, which gres only names.
    for n in 0 1 2 3; do
        mknod "$dir/gpu$n" c 1 3
    done
    local host
    host=$(hostname -s)
    cat >"$dir/slurm.conf" <<EOF
ClusterName=testbench
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
LaunchParameters=use_interactive_step
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=300
KillWait=10
NodeName=tbn1 NodeHostname=$host NodeAddr=127.0.0.1 Port=$((port + 1)) CPUs=2 RealMemory=2000 Gres=gpu:2 State=UNKNOWN
NodeName=tbn2 NodeHostname=$host NodeAddr=127.0.0.1 Port=$((port + 2)) CPUs=2 RealMemory=2000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=tbn1,tbn2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
    cat >"$dir/gres.conf" <<EOF
NodeName=tbn1 Name=gpu File=$dir/gpu[0-1]
NodeName=tbn2 Name=gpu File=$dir/gpu[2-3]
EOF
    export SLURM_CONF=$dir/slurm.conf
    munged -F -f --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed" >"$dir/log/munged.out" 2>&1 &
    echo $! >"$dir/pids/munged"
    for _ in $(seq 50); do
        [ -S "$dir/munge/munge.socket" ] && break
        sleep 0.1
    done
    slurmctld -D -i -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
    echo $! >"$dir/pids/slurmctld"
    for n in tbn1 tbn2; do
        slurmd -D -N "$n" -f "$SLURM_CONF" >"$dir/log/slurmd-$n.out" 2>&1 &
        echo $! >"$dir/pids/slurmd-$n"
    done
    echo "export SLURM_CONF=$SLURM_CONF" >"$dir/env"
    for _ in $(seq 200); do
        if [ "$(sinfo -h -o '%T' 2>/dev/null | sort -u)" = "idle" ]; then
            cat "$dir/env"
            return 0
        fi
        sleep 0.1
    done
    echo "slurm.sh: the cluster did not come up in 20 s; logs in $dir/log:" >&2
    tail -n 5 "$dir"/log/* >&2 || true
    stop
    exit 1
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
