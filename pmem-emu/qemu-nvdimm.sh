#!/usr/bin/env bash
# A VM with an emulated NVDIMM, now the lab's: boots Debian's kernel under QEMU with an NVDIMM backed by FILE
# (created with SIZE if missing) and runs COMMAND inside (default: list the namespaces and describe /dev/pmem0).
# Everything else (disks, power cuts, KVM or TCG) is lab.sh's: see pmem-emu/README.md.
#   qemu-nvdimm.sh [FILE [SIZE]] [-- COMMAND...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
file=/var/tmp/nvdimm.img; size=256M
if [ $# -gt 0 ] && [ "$1" != "--" ]; then file=$(realpath -m "$1"); shift; fi
if [ $# -gt 0 ] && [ "$1" != "--" ]; then size=$1; shift; fi
[ "${1:-}" != "--" ] || shift
[ $# -gt 0 ] || set -- 'ndctl list -N; "$WB" pmem info /dev/pmem0'
"$here/lab.sh" setup
exec "$here/lab.sh" run --work "$(dirname "$file")" --nvdimm "$file:$size" -- "$@"
