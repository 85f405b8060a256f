#!/bin/bash
# Mode 1 on real pmem drivers: the pmem buffer on /dev/dax0.0 (device dax) and on a file of an ext4 -o dax
# filesystem (/dev/pmem1, fsdax), each served by wb serve and written by the kernel's NBD client with FUA writes.
#   mode1.sh write SECONDS   format, serve, write; returns while the writers still run (the lab cuts the power)
#   mode1.sh verify          recover (wb status), serve, every acknowledged write reads back; then the crash
#                            harness's --nbd-client run (fio's nbd engine) inside the VM
source "$(dirname "$0")/lib.sh"
phase=$1
namespace_mode 0 devdax
namespace_mode 1 fsdax
mkdir -p /mnt/pmem
if [ "$phase" = write ]; then
  mkfs.ext4 -q -F -b 4096 /dev/pmem1 || fail "mkfs.ext4 /dev/pmem1"
fi
mount -o dax /dev/pmem1 /mnt/pmem || fail "mount -o dax /dev/pmem1"
grep -q " /mnt/pmem .*dax" /proc/mounts || fail "/mnt/pmem is not mounted with dax"
if [ "$phase" = write ]; then
  truncate -s 64M /mnt/pmem/wb.pmem && sync || fail "the pmem file"
fi
dax_table=(1 /dev/vda /dev/vdb /dev/dax0.0)
file_table=(1 /dev/vdc /dev/vdd /mnt/pmem/wb.pmem)
if [ "$phase" = write ]; then
  wb_create "${dax_table[@]}"; wb_create "${file_table[@]}"
  "$WB" pmem info /dev/dax0.0 > /run/info_dax & "$WB" pmem info /mnt/pmem/wb.pmem > /run/info_file; wait
  for table in dax file; do
    echo "== info_$table"
    grep -E "backend|granularity|map_sync|device_dax" "/run/info_$table"
  done
else
  # Recovery first, as wb status does it (it prints what it replayed and what it rebuilt from pmem); then serve.
  "$WB" status "${dax_table[@]}" > /run/recovery_dax 2>&1 & "$WB" status "${file_table[@]}" > /run/recovery_file 2>&1; wait
  for table in dax file; do
    echo "== recovery_$table"
    cat "/run/recovery_$table"
  done
fi
serve_start /run/dax.sock "${dax_table[@]}"; dax_pid=$SERVE_PID
serve_start /run/file.sock "${file_table[@]}"; file_pid=$SERVE_PID
serve_wait /run/dax.sock /run/file.sock
nbd_attach /run/dax.sock /dev/nbd0
nbd_attach /run/file.sock /dev/nbd1
if [ "$phase" = write ]; then
  "$WB_LAB_PROBE" ledger-write /dev/nbd0 "$LAB_WORK/dax.ledger" 1000000 4096 600 > "$LAB_WORK/dax.writer" 2>&1 &
  "$WB_LAB_PROBE" ledger-write /dev/nbd1 "$LAB_WORK/file.ledger" 1000000 4096 600 > "$LAB_WORK/file.writer" 2>&1 &
  sleep "$2"
  wait_acknowledged 100 "$LAB_WORK/dax.ledger" "$LAB_WORK/file.ledger"
  note "power cut now, writers running: $(grep -c done "$LAB_WORK/dax.ledger") + $(grep -c done "$LAB_WORK/file.ledger") acknowledged"
  exit 0
fi
for table in dax file; do
  device=/dev/nbd0; [ $table = file ] && device=/dev/nbd1
  echo "== $table"
  "$WB_LAB_PROBE" ledger-verify $device "$LAB_WORK/$table.ledger" > "$LAB_WORK/$table.verify"
  echo "exit $?"
  grep -v LOST "$LAB_WORK/$table.verify"; grep LOST "$LAB_WORK/$table.verify" | head -n 3
done
nbd_detach /dev/nbd0; nbd_detach /dev/nbd1
kill -TERM $dax_pid $file_pid
wait $dax_pid || fail "wb serve (dax) did not exit 0 on SIGTERM"
wait $file_pid || fail "wb serve (file) did not exit 0 on SIGTERM"
umount /mnt/pmem
echo "== crashtest"
"$WB" crashtest --mode 1 --states 200 --nbd-client "fio --name=w --ioengine=nbd --uri={uri} --rw=randwrite --bs=4k --size=256k --fsync=4" > "$LAB_WORK/crashtest.out" 2>&1
echo "exit $?"
tail -n 5 "$LAB_WORK/crashtest.out"
