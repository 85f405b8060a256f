#!/usr/bin/env bash
# fio's nbd engine, 4 KiB random writes, against `nbdkit file` on the same backing file, in the same run:
#   QD16 without flushes, and QD1 with a flush after every write (--fsync=1).
# For wb: mode 0 and mode 1 (pmem on /dev/shm, clwb path forced). Cache files use O_DIRECT (--direct).
# Every run starts from the same state for every server: the backing file synced (nothing dirty in the page
# cache for nbdkit's first flush to write) and, for wb, a freshly formatted cache (nothing dirty for writeback).
# Otherwise the QD1 run would pay for the QD16 run's dirty data: nbdkit in its first fdatasync, wb mode 0 in
# writeback, one ring slot per partial log.
#   bench/nbd-vs-nbdkit.sh [WORKDIR] [SECONDS]     (CACHE_SIZE=4G for a cache the run does not wrap; default 1G)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/var/tmp/wb-nbd-bench}
seconds=${2:-10}
./pmem-emu/install-deps.sh
# WB=/path/to/wb measures that binary (e.g. a before/after pair copied out of their builds); else this tree's.
if [ -z "${WB:-}" ]; then
  dotnet build -c Release Writeboost.sln -nologo -v quiet -clp:ErrorsOnly
fi
wb="${WB:-$PWD/src/Writeboost.Cli/bin/Release/net10.0/wb}"
rm -rf "$work"; mkdir -p "$work"
truncate -s 1G "$work/backing.img"; truncate -s "${CACHE_SIZE:-1G}" "$work/cache.img"
pmem=/dev/shm/wb-nbd-bench-$$.pmem; truncate -s 64M "$pmem"
sock="$work/nbd.sock"
trap 'rm -f "$pmem"; pkill -f "$sock" || true' EXIT

iops() { # fio JSON on stdin → write IOPS
  # fio's nbd engine prints "fio: connected to NBD server" before the JSON document.
  python3 -c 'import json,sys; s=sys.stdin.read(); print(round(json.loads(s[s.index("{"):])["jobs"][0]["write"]["iops"]))'
}
run_fio() { # NAME QD EXTRA...
  local qd=$2; shift 2
  fio --name=w --ioengine=nbd --uri="nbd+unix:///?socket=$sock" --rw=randwrite --bs=4k --size=512m \
      --iodepth="$qd" --time_based --runtime="$seconds" --ramp_time=1 --output-format=json "$@" | iops
}
serve() { # starts a server on $sock, waits for it
  rm -f "$sock"
  "$@" &
  server_pid=$!
  for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}
stop() { kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }

nbdkit_run() { # QD EXTRA... → $result
  sync "$work/backing.img"
  serve nbdkit -f -U "$sock" file "$work/backing.img"
  result=$(run_fio nbdkit "$@"); stop
}
wb_run() { # MODE QD EXTRA... → $result
  local mode=$1; shift
  if [ "$mode" = 0 ]; then table=(0 "$work/backing.img" "$work/cache.img"); else table=(1 "$work/backing.img" "$work/cache.img" "$pmem" pmem_backend dax); fi
  sync "$work/backing.img"
  PMEM_IS_PMEM_FORCE=1 "$wb" create "${table[@]}" --reformat >/dev/null
  serve env PMEM_IS_PMEM_FORCE=1 "$wb" serve "${table[@]}" --socket "$sock" --direct >/dev/null
  result=$(run_fio wb "$@"); stop
}

printf '%-22s %14s %22s\n' "server" "QD16 IOPS" "QD1 flush-each IOPS"
nbdkit_run 16; a=$result; nbdkit_run 1 --fsync=1; b=$result
printf '%-22s %14s %22s\n' "nbdkit file" "$a" "$b"; base16=$a; base1=$b
for mode in 0 1; do
  wb_run $mode 16; a=$result; wb_run $mode 1 --fsync=1; b=$result
  printf '%-22s %14s %22s   (%.2fx, %.2fx nbdkit)\n' "wb mode $mode" "$a" "$b" "$(awk "BEGIN { print $a / $base16 }")" "$(awk "BEGIN { print $b / $base1 }")"
done
