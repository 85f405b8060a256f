#!/usr/bin/env bash
# Lists NVDIMM regions and namespaces with ndctl, and says how to make an fsdax or devdax namespace for the
# toolkit. Changes nothing.
set -euo pipefail
if ! command -v ndctl >/dev/null 2>&1; then
  echo "ndctl is not installed: apt-get install -y ndctl" >&2
  exit 1
fi
if [ ! -d /sys/bus/nd/devices ] || [ -z "$(ls /sys/bus/nd/devices 2>/dev/null)" ]; then
  echo "no NVDIMM bus on this machine (/sys/bus/nd/devices is empty): no real or emulated NVDIMM is present" >&2
  echo "  emulate one with memmap= (check-memmap.sh) or run the lab, a VM with emulated NVDIMMs (lab.sh)" >&2
  exit 1
fi
ndctl list --regions --namespaces --human
cat <<'HOW'
To use a region with the toolkit:
  ndctl create-namespace --mode=fsdax  --region=region0   # /dev/pmemN: mkfs.ext4 + mount -o dax, or block backend
  ndctl create-namespace --mode=devdax --region=region0   # /dev/daxN.M: the dax backend maps it directly (2 MiB aligned)
HOW
