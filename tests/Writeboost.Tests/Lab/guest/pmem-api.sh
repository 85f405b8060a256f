#!/bin/bash
# The Pmem API on real drivers (three emulated NVDIMMs): the block backend on /dev/pmem2 (raw namespace), the dax
# backend on a file of ext4 -o dax (/dev/pmem1, fsdax) and on /dev/dax0.0 (devdax, 2 MiB alignment).
#   pmem-api.sh write    make the namespaces and the filesystem, describe each region, write seeded patterns
#                        with WritePersist; then the lab cuts the power (nothing synced after the writes)
#   pmem-api.sh verify   the namespace modes survived the reboot; every pattern reads back
# Sections start with "== NAME"; the probe prints "key value" lines (one probe process per boot: a .NET start
# costs seconds under TCG).
source "$(dirname "$0")/lib.sh"
phase=$1
if [ "$phase" = write ]; then
  namespace_mode 0 devdax
  namespace_mode 1 fsdax
  mkfs.ext4 -q -F -b 4096 /dev/pmem1 || fail "mkfs.ext4 -b 4096 /dev/pmem1"
fi
echo "== namespaces"
for region in 0 1 2; do
  echo "mode$region $(ndctl list -n namespace$region.0 | grep -o '"mode":"[a-z]*"' | cut -d'"' -f4)"
done
mkdir -p /mnt/pmem
mount -o dax /dev/pmem1 /mnt/pmem || fail "mount -o dax /dev/pmem1"
if [ "$phase" = write ]; then
  # The file and its size reach the media before the patterns; the patterns are made durable by the probe alone.
  truncate -s 16M /mnt/pmem/api.pmem && sync || fail "the pmem file"
  echo "== blockdev"
  echo "size_bytes $(blockdev --getsize64 /dev/pmem2)"
  dax_size=$(cat /sys/bus/dax/devices/dax0.0/size)
  "$WB_LAB_PROBE" batch "rmw rmw /dev/pmem2" \
    "block write /dev/pmem2 block 1048583 1000000 11 --direct" \
    "file write /mnt/pmem/api.pmem dax 4100 1000000 12" \
    "devdax write /dev/dax0.0 dax 2097152 1000000 13" \
    "devdax_unaligned_start map /dev/dax0.0 4096 2097152" \
    "devdax_unaligned_length map /dev/dax0.0 6291456 100000" \
    "devdax_past_end map /dev/dax0.0 $((dax_size - 2097152)) 4194304" \
    "file_unaligned map /mnt/pmem/api.pmem 4100 12345"
  echo "== cut"
  exit 0
fi
"$WB_LAB_PROBE" batch "block verify /dev/pmem2 block 1048583 1000000 11" \
  "file verify /mnt/pmem/api.pmem dax 4100 1000000 12" \
  "devdax verify /dev/dax0.0 dax 2097152 1000000 13"
umount /mnt/pmem
