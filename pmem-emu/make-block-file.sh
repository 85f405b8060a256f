#!/usr/bin/env bash
# Emulated pmem for the block backend: a file of SIZE bytes (suffixes K M G), optionally attached to a loop
# device so the block backend runs on a real block device node (BLKGETSIZE64, the block layer's flush).
#   make-block-file.sh PATH SIZE [--loop]
# Prints the path to use: the file, or /dev/loopN with --loop (detach later with: losetup -d /dev/loopN).
set -euo pipefail
usage() { echo "usage: $0 PATH SIZE [--loop]" >&2; exit 2; }
[ $# -ge 2 ] || usage
path=$1; size=$2; loop=${3:-}
[ -z "$loop" ] || [ "$loop" = "--loop" ] || usage

mkdir -p "$(dirname "$path")"
if [ -e "$path" ] && [ ! -f "$path" ]; then
  echo "make-block-file: $path exists and is not a regular file; refusing to touch it" >&2; exit 1
fi
truncate -s "$size" "$path"
sync -f "$path" 2>/dev/null || sync

if [ "$loop" = "--loop" ]; then
  command -v losetup >/dev/null || { echo "make-block-file: losetup is missing (apt-get install -y mount)" >&2; exit 1; }
  if ! device=$(losetup -f --show "$path" 2>&1); then
    echo "make-block-file: cannot attach a loop device ($device): needs root and /dev/loop-control" >&2; exit 1
  fi
  echo "$device"
else
  echo "$path"
fi
