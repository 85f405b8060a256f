#!/usr/bin/env bash
# A single-node Slurm on this machine, from Debian's packages, for trying the array script (and for its test):
#
#   single-node.sh start DIR   install slurm-wlm and munge if missing (apt-get update once, only then), write
#                              DIR/slurm.conf for this host (one node: $(hostname -s), CPUs from nproc, one
#                              partition), start munged, slurmctld and slurmd with every state, log, pid and
#                              socket file under DIR, and wait until the node takes jobs
#   single-node.sh stop DIR    stop the daemons that 'start DIR' started (by their pids), nothing else
#
# Then: export SLURM_CONF=DIR/slurm.conf and use sbatch, squeue, sacct-less Slurm as usual.
# Exit codes of start: 0 ready; 77 Slurm cannot run here (the reason on stderr); 1 another failure.
# Nothing system-wide is touched but the packages: munged gets its own key and socket in DIR, the ports are
# chosen free, and the daemons run as root (SlurmUser=root), so no service of the machine is reused or stopped.
set -euo pipefail
say() { echo "single-node: $*" >&2; }
cannot() { say "$*"; exit 77; }

[ $# -eq 2 ] || { say "usage: $0 start|stop DIR"; exit 2; }
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

stop() {
  # Reverse order: the node, the controller, then munge (they need it to say goodbye).
  for daemon in slurmd slurmctld munged; do
    pidfile="$dir/$daemon.pid"
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

if [ "$action" = stop ]; then
  stop
  exit 0
fi
[ "$action" = start ] || { say "usage: $0 start|stop DIR"; exit 2; }

# ---- packages ----
missing=()
for package in slurm-wlm munge; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || cannot "missing ${missing[*]} and apt-get is not available"
  [ "$(id -u)" -eq 0 ] || cannot "missing ${missing[*]}: installing them needs root"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists once, and only when installing from the current ones fails.
  apt-get install -y -qq "${missing[@]}" >&2 || { apt-get update -qq >&2 && apt-get install -y -qq "${missing[@]}" >&2; } \
    || cannot "apt-get could not install ${missing[*]}"
fi
[ "$(id -u)" -eq 0 ] || cannot "the daemons run as root here (SlurmUser=root): run as root"
for tool in munged mungekey slurmctld slurmd sbatch scontrol sinfo; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || cannot "$tool is missing after installing slurm-wlm and munge"
done
export PATH="$PATH:/usr/sbin"

# ---- configuration ----
host=$(hostname -s)
cpus=$(nproc)
free_port() { # a TCP port nobody listens on, from a range well away from the defaults (6817/6818)
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  return 1
}
ctld_port=$(free_port) || cannot "no free TCP port"
slurmd_port=$(free_port) || cannot "no free TCP port"
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 700 "$dir/munge"
cat > "$dir/slurm.conf" <<EOF
# Written by deploy/slurm/single-node.sh: one node, this host.
ClusterName=wbsingle
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"

# On any failure from here on, stop what was started.
trap 'status=$?; [ $status -eq 0 ] || stop; exit $status' EXIT

# ---- munge: its own key and socket ----
[ -s "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1 \
  || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" 2>"$dir/munge/start.err" \
  || cannot "munged did not start: $(tail -n 3 "$dir/munge/start.err" "$dir/munge/munged.log" 2>/dev/null | tr '\n' ' ')"

# ---- the controller and the node ----
slurmctld -f "$SLURM_CONF" 2>"$dir/slurmctld.err" || cannot "slurmctld did not start: $(tail -n 3 "$dir/slurmctld.err" "$dir/slurmctld.log" 2>/dev/null | tr '\n' ' ')"
slurmd -f "$SLURM_CONF" -N "$host" 2>"$dir/slurmd.err" || cannot "slurmd did not start: $(tail -n 3 "$dir/slurmd.err" "$dir/slurmd.log" 2>/dev/null | tr '\n' ' ')"
for _ in $(seq 60); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)
  case "$state" in
    idle*|mix*|alloc*) say "ready: node $host ($cpus CPUs), SLURM_CONF=$SLURM_CONF"; exit 0 ;;
  esac
  sleep 0.5
done
cannot "the node did not come up (state '${state:-none}'): $(tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" 2>/dev/null | tr '\n' ' ')"
