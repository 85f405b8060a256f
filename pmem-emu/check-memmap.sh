#!/usr/bin/env bash
# Is there a /dev/pmem0 from the memmap=XG!YG kernel parameter (RAM reserved as legacy pmem)? If not, says
# exactly what to add to the kernel command line. Changes nothing.
#   check-memmap.sh [SIZE_GIB] [START_GIB]
set -euo pipefail
size=${1:-4}; start=${2:-12}
if ls /dev/pmem* >/dev/null 2>&1; then
  for dev in /dev/pmem*; do
    echo "$dev: $(( $(blockdev --getsize64 "$dev") / 1024 / 1024 )) MiB — try: wb pmem info $dev"
  done
  exit 0
fi
if grep -qo 'memmap=[^ ]*!' /proc/cmdline; then
  echo "memmap= is on the kernel command line ($(grep -o 'memmap=[^ ]*' /proc/cmdline)) but no /dev/pmem* exists:" >&2
  echo "  the nd_pmem module may be missing (modprobe nd_pmem), or the range is not usable RAM (dmesg | grep -i e820)" >&2
  exit 1
fi
total_gib=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 1024 ))
echo "no /dev/pmem*: reserve RAM as pmem at boot with the kernel parameter  memmap=${size}G!${start}G" >&2
echo "  (${size} GiB starting at ${start} GiB; this machine has ${total_gib} GiB — pick a range dmesg | grep e820 shows usable)" >&2
echo "  Debian: add it to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub, reboot." >&2
exit 1
