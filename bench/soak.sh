#!/usr/bin/env bash
# Soak test: `wb serve` under several concurrent NBD clients with data verification, the ring wrapping and the
# writeback worker busy the whole time, a kill -9 + restart in the middle, and the server's peak RSS sampled.
#
#   bench/soak.sh [--mode 0|1] [--seconds N] [--clients K] [--work-dir DIR] [--json] [--keep] ...
#
# Phases (times are fractions of --seconds, counted from the first `ready`):
#   1  (45 %)  K clients, each on its own region of the lower half of the export, each iteration written and
#              verified: fio --verify=crc32c --verify_backlog (reads interleaved with the writes) and a final
#              verify pass, ending with a flush. Roles by client index: 0 fio randwrite --fsync=8 (flush-heavy),
#              1 bench/soak-client.py (FUA writes, plain writes, WRITE_ZEROES, flushes: fio's nbd engine cannot
#              send FUA),
#              2 fio randrw 50/50, 3 fio randwrite with only the final flush; then again from 0.
#              At the end, with every client done and flushed, a SHA-256 of every phase-1 region.
#   2  (crash) the same roles start on the upper half, time-based, and after a few seconds the server is
#              killed with SIGKILL. Their failures are expected and ignored, except the FUA client's ledger.
#   restart    `wb serve` again (recovery). Checks: the phase-1 regions hash the same as before the crash; fio
#              --verify_only with each fio client's last job and seed finds no error; the FUA client's phase-1
#              blocks all hold their last write; its phase-2 ledger holds every durable write (mode 1: every
#              acknowledged write; mode 0: FUA writes and writes acknowledged before a completed flush).
#   3  (rest)  K clients over the whole export, written and verified as in phase 1, until --seconds is used up;
#              then SIGTERM: the server must exit 0. `wb status --json` then gives the ring laps (segment ids
#              are never reused: current_id / nr_segments) and the writeback progress.
# Exit 0 only if every check passed; otherwise 1 and a line naming each failed check. --json: one JSON object
# on the last line of stdout. Progress goes to stderr.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
client_py="$repo/bench/soak-client.py"

mode=1 seconds=600 clients=4 work="" json=0 keep=0 build=1 wb=""
backing_mib=512 cache_mib=64 pmem_mib=16 iter_mib=32 max_rss_mib=1024 pmem_backend=dax inject=0 direct=--direct

usage() {
  cat <<EOF
usage: bench/soak.sh [options]
  --mode 0|1            0 = volatile RAM buffer, 1 = buffer in (emulated) pmem           (default $mode)
  --seconds N           total soak time, from the first 'ready'                          (default $seconds)
  --clients K           concurrent NBD clients per phase (1..8)                           (default $clients)
  --work-dir DIR        where backing, cache and logs go (default: a new /var/tmp/wb-soak.XXXXXX)
  --json                print one JSON object on the last line of stdout
  --keep                keep the work directory (and pmem file) afterwards
  --no-build            do not run 'dotnet build' first
  --wb PATH             the wb program, or its wb.dll (default: src/Writeboost.Cli/bin/Release/net10.0/wb)
  --backing-mib N       export size                                                       (default $backing_mib)
  --cache-mib N         cache device size; small, so the ring wraps often                 (default $cache_mib)
  --pmem-mib N          mode 1 pmem size (on /dev/shm)                                    (default $pmem_mib)
  --pmem-backend B      dax (with PMEM_IS_PMEM_FORCE=1) or block                          (default $pmem_backend)
  --iter-mib N          MiB each fio iteration writes before its verify pass             (default $iter_mib)
  --max-rss-mib N       fail if the server's peak RSS exceeds this                        (default $max_rss_mib)
  --buffered            serve without --direct (page cache for backing and cache)
  --inject-corruption   negative control: zero 1 MiB of a phase-1 region during the crash; must fail
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --mode) mode=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --clients) clients=$2; shift ;;
    --work-dir) work=$2; shift ;;
    --json) json=1 ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    --wb) wb=$2; shift ;;
    --backing-mib) backing_mib=$2; shift ;;
    --cache-mib) cache_mib=$2; shift ;;
    --pmem-mib) pmem_mib=$2; shift ;;
    --pmem-backend) pmem_backend=$2; shift ;;
    --iter-mib) iter_mib=$2; shift ;;
    --max-rss-mib) max_rss_mib=$2; shift ;;
    --buffered) direct="" ;;
    --inject-corruption) inject=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "soak: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
int() { [[ "$2" =~ ^[0-9]+$ ]] || { echo "soak: $1 must be a whole number, not '$2'" >&2; exit 2; }; }
int --seconds "$seconds"; int --clients "$clients"; int --backing-mib "$backing_mib"; int --cache-mib "$cache_mib"
int --pmem-mib "$pmem_mib"; int --iter-mib "$iter_mib"; int --max-rss-mib "$max_rss_mib"
[ "$mode" = 0 ] || [ "$mode" = 1 ] || { echo "soak: --mode must be 0 or 1" >&2; exit 2; }
[ "$clients" -ge 1 ] && [ "$clients" -le 8 ] || { echo "soak: --clients must be 1..8" >&2; exit 2; }
[ "$seconds" -ge 20 ] || { echo "soak: --seconds must be at least 20" >&2; exit 2; }
for tool in fio python3; do command -v $tool >/dev/null || { echo "soak: $tool is missing (pmem-emu/install-deps.sh installs it)" >&2; exit 2; }; done

say() { echo "soak: $*" >&2; }
now() { date +%s; }

if [ $build = 1 ]; then
  say "building (dotnet build -c Release)"
  dotnet build -c Release "$repo/Writeboost.sln" -nologo -v quiet -clp:ErrorsOnly >&2 || { echo "soak: FAILED check build" >&2; exit 1; }
fi
wb=${wb:-$repo/src/Writeboost.Cli/bin/Release/net10.0/wb}
case "$wb" in
  *.dll) [ -f "$wb" ] || { echo "soak: $wb not found (build first, or pass --wb)" >&2; exit 2; }
         wb_cmd=(dotnet "$wb") ;;   # the muxer runs the app in its own process: its pid is still wb's
  *)     [ -x "$wb" ] || { echo "soak: $wb is not an executable (build first, or pass --wb)" >&2; exit 2; }
         wb_cmd=("$wb") ;;
esac

if [ -z "$work" ]; then work=$(mktemp -d /var/tmp/wb-soak.XXXXXX); else mkdir -p "$work"; fi
work=$(cd "$work" && pwd)
sock="$work/nbd.sock"
uri="nbd+unix:///?socket=$sock"
pmem=""
export PMEM_IS_PMEM_FORCE=1   # read by libpmem through getenv at start: must be in wb's environment

server_pid=""
cleanup() {
  touch "$work/stop" 2>/dev/null
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -9 "$server_pid" 2>/dev/null; fi
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  if [ $keep = 0 ]; then
    rm -rf "$work"; [ -n "$pmem" ] && rm -f "$pmem"
  else
    say "kept $work ${pmem:+and $pmem}"
  fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# ---- devices -----------------------------------------------------------------------------------------------
truncate -s "${backing_mib}M" "$work/backing.img"
truncate -s "${cache_mib}M" "$work/cache.img"
if [ "$mode" = 1 ]; then
  pmem=/dev/shm/wb-soak-$$.pmem
  truncate -s "${pmem_mib}M" "$pmem"
  table=(1 "$work/backing.img" "$work/cache.img" "$pmem" pmem_backend "$pmem_backend")
else
  table=(0 "$work/backing.img" "$work/cache.img")
fi
# Background writeback while the backing store is below 60 % busy, small batches, the superblock record every
# second: the writeback worker and the record are exercised all the time, not only when the ring is full.
table+=(writeback_threshold 60 nr_max_batched_writeback 4 update_sb_record_interval 1)
"${wb_cmd[@]}" create "${table[@]}" --reformat >"$work/create.log" 2>&1 || { cat "$work/create.log" >&2; echo "soak: FAILED check create" >&2; exit 1; }

facts="$work/facts"
: >"$facts"
fact() { echo "$1=$2" >>"$facts"; }
fact mode "$mode"; fact seconds "$seconds"; fact clients "$clients"; fact backing_mib "$backing_mib"
fact cache_mib "$cache_mib"; fact pmem_mib "$pmem_mib"; fact pmem_backend "$pmem_backend"; fact table "${table[*]}"
fact commit "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"; fact direct "${direct:-no}"; fact inject_corruption "$inject"; fact max_rss_mib "$max_rss_mib"

serve_count=0
start_server() { # starts wb serve; sets server_pid; returns 1 if it never says 'ready'
  serve_count=$((serve_count + 1))
  local log="$work/serve$serve_count.log" started
  started=$EPOCHREALTIME
  "${wb_cmd[@]}" serve "${table[@]}" --socket "$sock" $direct >"$log" 2>&1 &
  server_pid=$!
  echo "$server_pid" >"$work/server.pid"
  for _ in $(seq 600); do
    grep -qs ready "$log" && { fact "serve${serve_count}_ready_seconds" "$(awk "BEGIN{printf \"%.2f\", $EPOCHREALTIME - $started}")"; return 0; }
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  say "wb serve did not become ready; its output:"; cat "$log" >&2
  return 1
}
fail_now() { say "FAILED check $1"; fact fatal "$1"; finish; }

# ---- memory sampling: VmHWM and VmRSS of the wb process (the apphost is the process: no wrapper) -----------
sample_rss() {
  local pid
  pid=$(cat "$work/server.pid" 2>/dev/null) || return 0
  awk -v t="$(now)" -v p="$pid" '/^VmHWM|^VmRSS/{v[$1]=$2} END{if (v["VmHWM:"]) print t, p, v["VmHWM:"], v["VmRSS:"]}' \
    "/proc/$pid/status" 2>/dev/null >>"$work/rss.samples"
}
( while [ ! -e "$work/stop" ]; do sample_rss; sleep 1; done ) &

# ---- clients -----------------------------------------------------------------------------------------------
role_of() { case $(($1 % 4)) in 0) echo fsync ;; 1) echo fua ;; 2) echo randrw ;; 3) echo plain ;; esac; }
fio_job() { # NAME ROLE OFFSET SIZE IOSIZE SEED -> fio arguments, one per line
  local name=$1 role=$2
  printf '%s\n' "--name=$name" --ioengine=nbd "--uri=$uri" "--offset=$3" "--size=$4" "--io_size=$5" \
    --bsrange=4k-64k --iodepth=8 --verify=crc32c "--randseed=$6" --verify_state_save=0 --output-format=json
  case $role in
    fsync) printf '%s\n' --rw=randwrite --fsync=8 --end_fsync=1 ;;
    randrw) printf '%s\n' --rw=randrw --rwmixread=50 --end_fsync=1 ;;
    plain) printf '%s\n' --rw=randwrite --end_fsync=1 ;;
  esac
}
fio_loop() { # PHASE IDX ROLE OFFSET SIZE DEADLINE: fio iterations (write + verify) until the deadline
  local phase=$1 idx=$2 role=$3 off=$4 size=$5 deadline=$6 it=0 seed rc io args
  io=$(( size < iter_mib * 1048576 ? size : iter_mib * 1048576 ))
  while [ "$(now)" -lt "$deadline" ] && [ ! -e "$work/stop" ] && kill -0 "$server_pid" 2>/dev/null; do
    it=$((it + 1)); seed=$((7000000 + phase * 100000 + idx * 1000 + it))
    mapfile -t args < <(fio_job "p${phase}c$idx" "$role" "$off" "$size" "$io" "$seed")
    fio "${args[@]}" --verify_backlog=64 >"$work/p${phase}c$idx.out" 2>"$work/p${phase}c$idx.err"; rc=$?
    python3 "$client_py" fio-summary "$work/p${phase}c$idx.out" "$work/p${phase}c$idx.err" "$phase" "$idx" "$role" "$it" "$seed" "$rc" >>"$work/results.tsv"
    printf '%s\n' "${args[@]}" >"$work/p${phase}c$idx.lastjob"
    if [ $rc != 0 ]; then cp "$work/p${phase}c$idx.out" "$work/p${phase}c$idx.fail$it.out"; cp "$work/p${phase}c$idx.err" "$work/p${phase}c$idx.fail$it.err"; fi
  done
}
run_phase() { # PHASE BASE SLICE DEADLINE: K clients on [BASE + i*SLICE, +SLICE), until DEADLINE
  local phase=$1 base=$2 slice=$3 deadline=$4 i role off pids=()
  for ((i = 0; i < clients; i++)); do
    role=$(role_of $i); off=$((base + i * slice))
    if [ "$role" = fua ]; then
      python3 "$client_py" run --socket "$sock" --offset "$off" --size "$slice" --seed $((phase * 100 + i)) \
        --seconds $((deadline - $(now))) --fua-percent 50 --flush-every 32 --state "$work/p${phase}c$i.ledger.json" \
        >"$work/p${phase}c$i.ledger.out" 2>&1 &
    else
      fio_loop "$phase" "$i" "$role" "$off" "$slice" "$deadline" &
    fi
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  if ! kill -0 "$server_pid" 2>/dev/null; then
    say "wb serve died during phase $phase; the end of its output:"; tail -20 "$work/serve$serve_count.log" >&2
    fail_now "wb serve stayed up through phase $phase"
  fi
}
mib=1048576
half=$((backing_mib * mib / 2))
slice12=$(( half / clients / mib * mib ))
slice3=$(( backing_mib * mib / clients / mib * mib ))
fact slice_phase1_mib $((slice12 / mib)); fact slice_phase3_mib $((slice3 / mib)); fact iter_mib "$iter_mib"

finish() {
  touch "$work/stop"
  python3 "$client_py" report "$work" --json "$json"
  exit $?
}

# ---- phase 1 -----------------------------------------------------------------------------------------------
start_server || fail_now "server ready (first start)"
t0=$(now)
p1_end=$((t0 + seconds * 45 / 100))
crash_after=$(( seconds / 40 )); [ $crash_after -lt 3 ] && crash_after=3; [ $crash_after -gt 10 ] && crash_after=10
say "mode $mode, $clients clients, ${seconds}s; phase 1 until +$((p1_end - t0))s (work dir $work)"
run_phase 1 0 "$slice12" "$p1_end"
fact phase1_seconds $(( $(now) - t0 ))
ranges=()
for ((i = 0; i < clients; i++)); do ranges+=("$((i * slice12)):$slice12"); done
digest_before=$(python3 "$client_py" digest --socket "$sock" "${ranges[@]}") || fail_now "phase-1 digest before the crash (read failed)"
fact digest_before "$digest_before"

# ---- phase 2: load on the upper half, then kill -9 ----------------------------------------------------------
say "phase 2: load on the upper half, kill -9 after ${crash_after}s"
p2_start=$(now)
p2_pids=()
for ((i = 0; i < clients; i++)); do
  role=$(role_of $i); off=$((half + i * slice12))
  if [ "$role" = fua ]; then
    python3 "$client_py" run --socket "$sock" --offset "$off" --size "$slice12" --seed $((200 + i)) --seconds 3600 \
      --fua-percent 50 --flush-every 32 --state "$work/p2c$i.ledger.json" --expect-crash >"$work/p2c$i.ledger.out" 2>&1 &
  else
    mapfile -t args < <(fio_job "p2c$i" "$role" "$off" "$slice12" "$slice12" $((8000000 + i)))
    fio "${args[@]}" --time_based --runtime=3600 --verify=0 >"$work/p2c$i.out" 2>"$work/p2c$i.err" &
  fi
  p2_pids+=($!)
done
sleep "$crash_after"
if [ $inject = 1 ]; then
  say "negative control: zeroing 1 MiB of the first phase-1 region"
  python3 "$client_py" corrupt --socket "$sock" --offset $((slice12 / 2)) --length $mib
fi
sample_rss
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null
fact kill9_at_seconds $(( $(now) - t0 ))
fact phase2_seconds $(( $(now) - p2_start ))
for pid in "${p2_pids[@]}"; do # the clients notice the dead server; give them 30 s
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
done

# ---- restart (recovery) and the post-crash checks -----------------------------------------------------------
say "restart after kill -9 (recovery), then check"
if start_server; then fact recovered 1; else fact recovered 0; fail_now "server ready after kill -9 (recovery)"; fi
digest_after=$(python3 "$client_py" digest --socket "$sock" "${ranges[@]}") || fail_now "phase-1 digest after the crash (read failed)"
fact digest_after "$digest_after"
for ((i = 0; i < clients; i++)); do
  role=$(role_of $i)
  if [ "$role" = fua ]; then
    python3 "$client_py" check --socket "$sock" --state "$work/p1c$i.ledger.json" --durable fua >"$work/crash-p1c$i.check" 2>&1
    python3 "$client_py" check --socket "$sock" --state "$work/p2c$i.ledger.json" \
      --durable "$([ "$mode" = 1 ] && echo acked || echo fua)" >"$work/crash-p2c$i.check" 2>&1
  elif [ "$role" != randrw ] && [ -e "$work/p1c$i.lastjob" ]; then
    # fio can replay a randwrite job's last iteration from its seed (a randrw one it cannot: the digest covers it)
    mapfile -t args <"$work/p1c$i.lastjob"
    fio "${args[@]}" --verify_only >"$work/p1vc$i.out" 2>"$work/p1vc$i.err"; rc=$?
    python3 "$client_py" fio-summary "$work/p1vc$i.out" "$work/p1vc$i.err" 1v "$i" "$role" 0 0 "$rc" >>"$work/results.tsv"
  fi
done

# ---- phase 3 -----------------------------------------------------------------------------------------------
p3_start=$(now)
p3_end=$((t0 + seconds)); [ $p3_end -lt $((p3_start + 5)) ] && p3_end=$((p3_start + 5))
say "phase 3: the whole export until +$((p3_end - t0))s"
run_phase 3 0 "$slice3" "$p3_end"
fact phase3_seconds $(( $(now) - p3_start ))
sample_rss
kill -TERM "$server_pid"
for _ in $(seq 600); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then fact server_exit_code timeout; kill -9 "$server_pid"; fi
wait "$server_pid" 2>/dev/null; code=$?
grep -q server_exit_code "$facts" || fact server_exit_code "$code"
server_pid=""
fact total_seconds $(( $(now) - t0 ))
"${wb_cmd[@]}" status "${table[@]}" --json >"$work/status.json" 2>"$work/status.err" || say "wb status failed: $(cat "$work/status.err")"
finish
