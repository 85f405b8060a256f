#!/bin/bash
# The on-disk format against the real dm-writeboost module (Debian's dm-writeboost-dkms), both directions:
#   A: wb writes (mode 0, wb serve on /dev/vda + /dev/vdb, FUA writes through the kernel's NBD client), power cut
#      without a drain; the kernel module replays that cache and reads return every acknowledged write.
#   B: the kernel writes (dmsetup writeboost, FUA writes), power cut; wb replays it. Twice: on /dev/vde + /dev/vdf
#      a few writes, so the kernel's log has not wrapped around its ring of segments ("unwrapped"); on /dev/vdc +
#      /dev/vdd writes until the cut, so it has wrapped many times ("wrapped": each FUA costs the module about
#      three segments, and it never updates its superblock record by default).
#   kernel.sh write SECONDS   both writers at once, the lab cuts the power while they run
#   kernel.sh verify          A through the kernel, B through wb (wb check, then wb serve recovers it)
# Quirks of the module kept in mind: it writes an empty segment after a flush, and its drop_caches waits forever
# on data still in its RAM buffer (so nothing here sends drop_caches).
source "$(dirname "$0")/lib.sh"
phase=$1
modprobe dm-writeboost || fail "modprobe dm-writeboost (built by dkms for $(uname -r))"
echo "module $(modinfo -n dm-writeboost)"
kernel_table() { echo "0 $(blockdev --getsz "$1") writeboost $1 $2"; }
# No udev in the lab: dmsetup makes the /dev/mapper node itself.
dm_create() { dmsetup create "$1" --noudevsync --table "$2" && dmsetup mknodes "$1"; }
if [ "$phase" = write ]; then
  wb_create 0 /dev/vda /dev/vdb
  serve_start /run/a.sock 0 /dev/vda /dev/vdb
  serve_wait /run/a.sock
  nbd_attach /run/a.sock /dev/nbd0
  dm_create wbk "$(kernel_table /dev/vdc /dev/vdd)" || fail "dmsetup create (kernel writes)"
  dm_create wbn "$(kernel_table /dev/vde /dev/vdf)" || fail "dmsetup create (kernel writes, unwrapped)"
  "$WB_LAB_PROBE" ledger-write /dev/mapper/wbn "$LAB_WORK/n.ledger" 40 4096 > "$LAB_WORK/n.writer" 2>&1 || fail "kernel writes (unwrapped)"
  cat "$LAB_WORK/n.writer"
  "$WB_LAB_PROBE" ledger-write /dev/nbd0 "$LAB_WORK/a.ledger" 1000000 4096 600 > "$LAB_WORK/a.writer" 2>&1 &
  "$WB_LAB_PROBE" ledger-write /dev/mapper/wbk "$LAB_WORK/b.ledger" 1000000 4096 600 > "$LAB_WORK/b.writer" 2>&1 &
  sleep "$2"
  wait_acknowledged 200 "$LAB_WORK/a.ledger" "$LAB_WORK/b.ledger"
  echo "== cut"
  echo "a_acknowledged $(grep -c done "$LAB_WORK/a.ledger") b_acknowledged $(grep -c done "$LAB_WORK/b.ledger")"
  exit 0
fi
echo "== a_kernel_replays_wb"
dm_create wba "$(kernel_table /dev/vda /dev/vdb)" || fail "dmsetup create on wb's cache"
echo "status $(dmsetup status wba)"
"$WB_LAB_PROBE" ledger-verify /dev/mapper/wba "$LAB_WORK/a.ledger"
echo "exit $?"
dmesg | grep -i writeboost | grep -i -E "checksum|invalid|error" | sed 's/^/dmesg /'
dmsetup remove --noudevsync wba || fail "dmsetup remove wba"
# Both kernel-made caches: wb check (read-only) first, at once; then wb serve recovers each, and the reads judge.
"$WB" check /dev/vdf > "$LAB_WORK/n.check" 2>&1 & n_check=$!
"$WB" check /dev/vdd > "$LAB_WORK/b.check" 2>&1; b_check_exit=$?
wait $n_check; n_check_exit=$?
serve_start /run/n.sock 0 /dev/vde /dev/vdf
serve_start /run/b.sock 0 /dev/vdc /dev/vdd
serve_wait /run/n.sock /run/b.sock
nbd_attach /run/n.sock /dev/nbd1
nbd_attach /run/b.sock /dev/nbd2
for case in "n /dev/nbd1 unwrapped" "b /dev/nbd2 wrapped"; do
  read -r ledger device name <<< "$case"
  echo "== b_wb_replays_kernel_$name"
  declare -n check_exit="${ledger}_check_exit"
  echo "check_exit $check_exit"
  tail -n 3 "$LAB_WORK/$ledger.check" | cut -c1-300
  grep "recovery:" "/run/$ledger.sock.log"
  "$WB_LAB_PROBE" ledger-verify "$device" "$LAB_WORK/$ledger.ledger" > "$LAB_WORK/$ledger.verify"
  echo "exit $?"
  grep -v LOST "$LAB_WORK/$ledger.verify"; grep LOST "$LAB_WORK/$ledger.verify" | head -n 3
  nbd_detach "$device"
done
