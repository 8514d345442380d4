#!/usr/bin/env bash
# A one-node Slurm cluster on 127.0.0.1, for tests and for trying
# `cmkm slurm` on a laptop: munged, slurmctld and slurmd started by hand (no
# systemd), with every file under one folder, so several can be made and
# thrown away.
#
#   scripts/slurm-cluster.sh install
#       installs Debian's slurmctld, slurmd, slurm-client and munge with
#       apt-get where sbatch or the daemons are missing (needs root)
#   scripts/slurm-cluster.sh start DIR [CTLD_PORT SLURMD_PORT]
#       installs what is missing, writes DIR/slurm.conf and a munge key,
#       starts the three daemons and waits until the node takes jobs;
#       prints the line to export (SLURM_CONF=DIR/slurm.conf)
#   scripts/slurm-cluster.sh stop DIR
#       stops the daemons by the pids in their pid files (never by name)
#
# Everything listens on 127.0.0.1 only (CommunicationParameters). Each
# cluster has its own munge socket and key, state and spool folders, so a
# stale state from another cluster never blocks a start.
set -euo pipefail

die() { echo "slurm-cluster: $*" >&2; exit 1; }

install_packages() {
    local missing=0
    for cmd in sbatch squeue scontrol slurmctld slurmd munged mungekey; do
        command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || missing=1
    done
    [[ $missing == 0 ]] && return 0
    [[ $(id -u) == 0 ]] || die "Slurm is not installed and installing it needs root: apt-get install slurmctld slurmd slurm-client munge"
    echo "slurm-cluster: installing slurmctld slurmd slurm-client munge with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
}

# Waits up to $2 tenths of a second for command $1 to succeed.
wait_for() {
    local tries=$2
    until eval "$1" >/dev/null 2>&1; do
        tries=$((tries - 1))
        [[ $tries -gt 0 ]] || return 1
        sleep 0.1
    done
}

start() {
    local dir=$1 ctld_port=${2:-6817} slurmd_port=${3:-6818}
    install_packages
    [[ $(id -u) == 0 ]] || die "the test cluster runs its daemons as root and munge; run as root"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ -e $dir/slurm.conf ]] && die "$dir already holds a cluster; stop it and use a fresh folder"
    mkdir -p "$dir"/{state,spool,log,munge}
    # munged refuses a socket folder others can write, and must be able to
    # reach it: the path down to it is traversable, the folder its own.
    chmod 755 "$dir"
    local up=$dir
    while [[ $up != / ]]; do chmod o+x "$up" 2>/dev/null || true; up=$(dirname "$up"); done
    chown munge:munge "$dir/munge"
    chmod 755 "$dir/munge"
    runuser -u munge -- mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1 \
        || die "mungekey could not create $dir/munge/munge.key"
    runuser -u munge -- munged --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
        || die "munged did not start: $(tail -n 5 "$dir/munge/munged.log" 2>/dev/null)"

    local cpus mem
    cpus=$(nproc)
    # Slurm drains a node that declares more memory than it has.
    mem=$(awk '/MemTotal/ { print int($2 / 1024 * 0.8) }' /proc/meminfo)
    cat > "$dir/slurm.conf" <<EOF
ClusterName=cmkmtest$$
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
DependencyParameters=kill_invalid_depend
MinJobAge=600
MaxArraySize=10001
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$dir/slurm.conf
    slurmctld -f "$SLURM_CONF" -i || die "slurmctld did not start: $(tail -n 5 "$dir/log/slurmctld.log" 2>/dev/null)"
    wait_for "scontrol ping | grep -q UP" 100 || { stop "$dir"; die "slurmctld does not answer: $(tail -n 5 "$dir/log/slurmctld.log")"; }
    slurmd -f "$SLURM_CONF" || { stop "$dir"; die "slurmd did not start: $(tail -n 5 "$dir/log/slurmd.log" 2>/dev/null)"; }
    wait_for "sinfo -h -o %T | grep -qx idle" 300 \
        || { local state; state=$(sinfo -h -o '%T %E' 2>&1); stop "$dir"; die "the node did not become idle ($state): $(tail -n 5 "$dir/log/slurmd.log")"; }
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop_pid() {
    local file=$1 pid
    [[ -s $file ]] || return 0
    pid=$(<"$file")
    kill "$pid" 2>/dev/null || return 0
    wait_for "! kill -0 $pid" 100 || kill -9 "$pid" 2>/dev/null || true
}

stop() {
    local dir=$1
    [[ -d $dir ]] || die "$dir: no such cluster folder"
    stop_pid "$dir/slurmd.pid"
    stop_pid "$dir/slurmctld.pid"
    stop_pid "$dir/munge/munged.pid"
}

case "${1:-}" in
    install) install_packages ;;
    start) [[ $# -ge 2 ]] || die "usage: $0 start DIR [CTLD_PORT SLURMD_PORT]"; start "$2" "${3:-6817}" "${4:-6818}" ;;
    stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
    *) die "usage: $0 install | start DIR [CTLD_PORT SLURMD_PORT] | stop DIR" ;;
esac
