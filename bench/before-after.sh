#!/usr/bin/env bash
# Before/after rounds of two wb binaries, alternating in each round (before, then after), so both see the same
# machine: mode-1 FUA with one writer and with two (plus --independent, the same-run reference), mode-0 FUA,
# randwrite, and fio's nbd engine at QD16 against `wb serve --direct` in mode 0 and mode 1. One line per figure:
#   r<round> <before|after> <figure> <IOPS> [p50 µs] [reference IOPS, ratio] [randwrite: ratio to cache sequential]
#   bench/before-after.sh BEFORE_WB AFTER_WB OUT [ROUNDS]      (each WB a published wb, e.g. dotnet publish -o DIR)
# docs/benchmarks.md's last section was measured with it.
set -uo pipefail
before=$1; after=$2; out=$3; rounds=${4:-3}
: > "$out"
work=/var/tmp/wb-before-after; sock=$work/nbd.sock; pmem=/dev/shm/wb-before-after-$$.pmem; seconds=8
trap 'rm -rf "$work" "$pmem"' EXIT
summary() { # a wb bench JSON document on stdin → its figures
  python3 -c 'import json,sys; s=sys.stdin.read(); d=json.loads(s[s.index("{"):]); i=d.get("independent")
print(round(d["iops"]), d.get("p50_us", ""), "%d %.3f" % (i["iops"], d["iops_ratio_to_independent"]) if i else "", d.get("ratio_to_cache_sequential", ""))'
}
fio_iops() { # fio JSON on stdin → write IOPS (its nbd engine prints a line before the JSON)
  python3 -c 'import json,sys; s=sys.stdin.read(); print(round(json.loads(s[s.index("{"):])["jobs"][0]["write"]["iops"]))'
}
nbd_qd16() { # WB MODE → IOPS of 4 KiB random writes at QD16 on a freshly formatted cache
  local wb=$1 mode=$2 table pid
  rm -rf "$work"; mkdir -p "$work"; truncate -s 1G "$work/backing.img" "$work/cache.img"; rm -f "$pmem"; truncate -s 64M "$pmem"
  if [ "$mode" = 0 ]; then table=(0 "$work/backing.img" "$work/cache.img"); else table=(1 "$work/backing.img" "$work/cache.img" "$pmem" pmem_backend dax); fi
  "$wb" create "${table[@]}" --reformat >/dev/null 2>&1
  "$wb" serve "${table[@]}" --socket "$sock" --direct >/dev/null 2>&1 & pid=$!
  for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.1; done
  fio --name=w --ioengine=nbd --uri="nbd+unix:///?socket=$sock" --rw=randwrite --bs=4k --size=512m --iodepth=16 \
      --time_based --runtime=$seconds --ramp_time=1 --output-format=json 2>/dev/null | fio_iops
  kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null
}
export PMEM_IS_PMEM_FORCE=1
for r in $(seq "$rounds"); do
  for which in before after; do
    wb=$before; [ $which = after ] && wb=$after
    echo "r$r $which load $(cut -d' ' -f1 /proc/loadavg)" >> "$out"
    echo "r$r $which fua1-w1 $("$wb" bench fua --work-dir /dev/shm --mode 1 --ops 400000 --writers 1 --json | summary)" >> "$out"
    echo "r$r $which fua1-w2 $("$wb" bench fua --work-dir /dev/shm --mode 1 --ops 400000 --writers 2 --independent --json | summary)" >> "$out"
    echo "r$r $which fua0 $("$wb" bench fua --work-dir /var/tmp --mode 0 --ops 5000 --direct --json | summary)" >> "$out"
    echo "r$r $which randwrite $("$wb" bench randwrite --work-dir /var/tmp --ops 262144 --direct --json | summary)" >> "$out"
    echo "r$r $which nbd-qd16-m0 $(nbd_qd16 "$wb" 0)" >> "$out"
    echo "r$r $which nbd-qd16-m1 $(nbd_qd16 "$wb" 1)" >> "$out"
  done
done
