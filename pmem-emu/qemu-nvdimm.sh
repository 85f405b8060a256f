#!/usr/bin/env bash
# Prints (or with --run, starts) a QEMU command line for a VM with an emulated NVDIMM backed by a file, in which
# /dev/pmem0 appears (fsdax) and ndctl can make devdax namespaces. Needs qemu-system-x86_64 and a bootable
# disk image of your own.
#   qemu-nvdimm.sh DISK_IMAGE [NVDIMM_FILE] [NVDIMM_GIB] [--run]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DISK_IMAGE [NVDIMM_FILE] [NVDIMM_GIB] [--run]" >&2; exit 2; }
disk=$1; nvdimm=${2:-/var/tmp/nvdimm.img}; gib=${3:-2}; run=${4:-}
[ -f "$disk" ] || { echo "qemu-nvdimm: no disk image at $disk (a bootable Linux image is needed)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null 2>&1 || { echo "qemu-nvdimm: qemu-system-x86_64 is missing: apt-get install -y qemu-system-x86" >&2; exit 1; }
[ -f "$nvdimm" ] || truncate -s "${gib}G" "$nvdimm"
cmd=(qemu-system-x86_64 -machine pc,nvdimm=on -m "4G,slots=2,maxmem=$((4 + gib))G" -smp 2
     -object "memory-backend-file,id=mem1,share=on,mem-path=$nvdimm,size=${gib}G"
     -device nvdimm,id=nvdimm1,memdev=mem1
     -drive "file=$disk,if=virtio" -nographic)
if [ -e /dev/kvm ]; then cmd+=(-enable-kvm -cpu host); fi
echo "${cmd[*]}"
echo "in the guest: ndctl list; wb pmem info /dev/pmem0" >&2
[ "$run" = "--run" ] && exec "${cmd[@]}"
exit 0
