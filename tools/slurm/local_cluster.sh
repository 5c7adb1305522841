#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for tests and trying out the
# sweep's job arrays: munged, slurmctld and slurmd on localhost, everything
# (keys, sockets, state, logs, configuration) inside one folder.
#
#   tools/slurm/local_cluster.sh start DIR [PID]  # configure and start; prints
#                                                 # the SLURM_CONF to export
#   tools/slurm/local_cluster.sh stop DIR         # cancel its jobs, stop its daemons
#
# With PID, a watcher stops the cluster as soon as that process is gone,
# however it ended (a test that crashes or is killed leaves no daemons).
# Needs Debian's slurm-wlm and munge (tools/setup.sh installs them) and runs
# as root, as slurmd does. `start` waits until the node accepts jobs and
# stops what it started if it does not within 60 s.
set -euo pipefail

usage() { echo "usage: $0 start DIR [PID] | stop DIR" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
action=$1
dir=$2
watch=${3:-}
self=$(readlink -f "$0")

# A TCP port nothing listens on (random, checked with bash's /dev/tcp).
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "$0: no free TCP port found" >&2
  return 1
}

stop_pidfile() {
  local file=$1 pid
  [[ -s $file ]] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop() {
  [[ -d $dir ]] || return 0
  if [[ -s $dir/etc/slurm.conf && -s $dir/run/slurmctld.pid ]]; then
    SLURM_CONF="$dir/etc/slurm.conf" scancel --quiet --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 50); do
      [[ -z $(SLURM_CONF="$dir/etc/slurm.conf" squeue -h 2>/dev/null) ]] && break
      sleep 0.1
    done
  fi
  if [[ -s $dir/run/watcher.pid && $(cat "$dir/run/watcher.pid") != "${WATCHER:-}" ]]; then
    stop_pidfile "$dir/run/watcher.pid"
  fi
  stop_pidfile "$dir/run/slurmd.pid"
  stop_pidfile "$dir/run/slurmctld.pid"
  stop_pidfile "$dir/run/munged.pid"
  rm -f "$dir/run/watcher.pid"
}

start() {
  for tool in munged mungekey slurmctld slurmd sbatch scontrol; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found (tools/setup.sh installs slurm-wlm and munge)" >&2; exit 1; }
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 700 "$dir"
  mkdir -p "$dir"/{etc,run,log,state,spool}
  chmod 700 "$dir"/{etc,run,log,state,spool}
  if [[ -n $watch ]]; then
    # Detached (its own session), so it outlives whatever kills the watched
    # process's group.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
                    WATCHER=$$ "$2" stop "$3"' watcher "$watch" "$self" "$dir" \
      </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/run/watcher.pid"
  fi

  mungekey --create --keyfile="$dir/etc/munge.key" --force
  chmod 400 "$dir/etc/munge.key"
  munged --force --key-file="$dir/etc/munge.key" --socket="$dir/run/munge.socket" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/state/munged.seed"

  local node cpus mem ctld_port slurmd_port
  node=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  while [[ $slurmd_port == "$ctld_port" ]]; do slurmd_port=$(free_port); done
  cat >"$dir/etc/slurm.conf" <<CONF
ClusterName=stepsim-local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/run/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/etc/slurm.conf"
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 600); do
    if scontrol show node "$node" 2>/dev/null | grep -qE "State=(IDLE|MIXED|ALLOCATED)"; then
      echo "SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.1
  done
  echo "$0: the local cluster did not come up within 60 s; logs in $dir/log" >&2
  tail -n 20 "$dir"/log/*.log >&2 || true
  stop
  exit 1
}

case $action in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
