#!/usr/bin/env bash
# Emulated pmem for the dax backend: a file on /dev/shm (tmpfs, so the mapping is RAM), used with
# PMEM_IS_PMEM_FORCE=1 in the environment so libpmem takes the real clwb/clflushopt + sfence path.
#   make-shm-pmem.sh NAME SIZE      → prints /dev/shm/NAME
# Remember: PMEM_IS_PMEM_FORCE must be in the environment when the process starts (export it, or prefix the
# command); .NET's Environment.SetEnvironmentVariable does not reach libpmem.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 NAME SIZE" >&2; exit 2; }
name=$1; size=$2
case "$name" in */*|..|.) echo "make-shm-pmem: NAME must be a plain file name, got '$name'" >&2; exit 2;; esac
[ -d /dev/shm ] || { echo "make-shm-pmem: /dev/shm does not exist on this machine" >&2; exit 1; }
fstype=$(stat -f -c %T /dev/shm)
[ "$fstype" = "tmpfs" ] || echo "make-shm-pmem: warning: /dev/shm is $fstype, not tmpfs" >&2
need=$(numfmt --from=iec "$size")
avail=$(( $(stat -f -c %a /dev/shm) * $(stat -f -c %S /dev/shm) ))
[ "$need" -le "$avail" ] || { echo "make-shm-pmem: /dev/shm has $avail bytes free, $need needed" >&2; exit 1; }
truncate -s "$size" "/dev/shm/$name"
echo "/dev/shm/$name"
