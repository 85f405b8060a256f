#!/usr/bin/env bash
# Installs what the toolkit and its tests need from Debian, only what is missing:
#   libpmem1  PMDK's libpmem, the dax backend's cache-line flush + fence (P/Invoke into libpmem.so.1)
#   fio       the reference benchmarks and real NBD clients (libpmem and nbd engines)
#   qemu-utils, libnbd-bin, nbdkit   real NBD clients (qemu-img, nbdinfo, nbdcopy) and the nbdkit baseline
#   librsvg2-bin  rsvg-convert: the benchmarks' latency plots as PNG besides SVG
#   python3   (only if no python3 is on PATH) the soak's ledger-keeping NBD client
# 'apt-get update' runs once, and only when something must be installed. Needs root (or sudo).
set -euo pipefail

packages=(libpmem1 fio qemu-utils libnbd-bin nbdkit librsvg2-bin)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
command -v python3 >/dev/null 2>&1 || missing+=(python3) # the soak's NBD ledger client (bench/soak-client.py)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing ${missing[*]} and apt-get is not available: install them with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq "${missing[@]}" >&2
