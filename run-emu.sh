#!/usr/bin/env bash
# The showcase: installs what is missing, builds, makes emulated pmem and devices under a work directory, then:
# the Pmem API on both backends (how each region is mapped; 4 KiB write+persist latency against fio's libpmem
# engine in the same run); the RFC's worst case, every write FUA, in mode 0 and mode 1 side by side; a
# crash-injection campaign on both modes with its verdict; and the status of a mode-1 device on the emulated
# files. With --vm, also the lab (pmem-emu/lab.sh): Debian's kernel under QEMU with emulated NVDIMMs, how wb maps
# /dev/dax0.0 and an ext4 -o dax file, and the FUA comparison with the pmem buffer on /dev/dax0.0.
# Exit code non-zero if anything failed (set -e).
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

work="$root/.wb-work"
keep=0
pmem_device=""
cache_device=""
backing_device=""
assume_yes=0
ops=200000
crash_states=200000
bench_seconds=2
vm=0
usage() {
  cat <<USAGE
usage: ./run-emu.sh [options]
  --work-dir DIR   where the emulated devices go (default: ./.wb-work)
  --keep           keep the work directory and /dev/shm files afterwards
  --pmem PATH      also benchmark a real pmem device (/dev/pmem0, /dev/dax0.0, a file on -o dax): DESTROYS its data
  --cache PATH     also run the FUA comparison with this cache device (e.g. /dev/nvme0n1p1): DESTROYS its data
  --backing PATH   the backing device for that run (default: a 1 GiB file in the work directory): DESTROYS its data
  --ops N          operations per benchmark (default $ops)
  --crash-states N states the crash campaign checks (default $crash_states; e.g. 2000000 for a long one)
  --bench-seconds S the longest each benchmark round measures (default $bench_seconds: a look, three rounds
                   with their spread; docs/benchmarks.md's figures come from longer runs, each with its command)
  --yes            do not ask before writing to a real device given with --pmem
  --vm             also run the lab: Debian's kernel under QEMU (KVM, or TCG where KVM does not work) with
                   emulated NVDIMMs: wb pmem info on /dev/dax0.0 and on an ext4 -o dax file, and the FUA
                   comparison with the pmem buffer on /dev/dax0.0 (the first time installs QEMU and Debian's
                   kernel: a few minutes; then about a minute more)
USAGE
}
while [ $# -gt 0 ]; do
  case "$1" in
    --work-dir) work=$(realpath -m "$2"); shift 2;;
    --keep) keep=1; shift;;
    --pmem) pmem_device=$2; shift 2;;
    --cache) cache_device=$2; shift 2;;
    --backing) backing_device=$2; shift 2;;
    --ops) ops=$2; shift 2;;
    --crash-states) crash_states=$2; shift 2;;
    --bench-seconds) bench_seconds=$2; shift 2;;
    --yes) assume_yes=1; shift;;
    --vm) vm=1; shift;;
    -h|--help) usage; exit 0;;
    *) echo "run-emu: unknown option $1" >&2; usage >&2; exit 2;;
  esac
done

for given in "$pmem_device" "$cache_device" "$backing_device"; do
  [ -z "$given" ] || [ -e "$given" ] || { echo "run-emu: $given does not exist" >&2; exit 2; }
done

# Each step says when it starts (seconds since the script began), so a slow step shows in the log itself.
step() { printf '\n== %s  [%d s]\n' "$*" "$SECONDS"; }

# Loud confirmation before writing to a real block or character device (files are ours to overwrite).
confirm_destroy() {
  local dev=$1
  [ -b "$dev" ] || [ -c "$dev" ] || return 0
  echo "WARNING: the next step OVERWRITES the data on $dev."
  if [ "$assume_yes" -ne 1 ]; then
    [ -t 0 ] || { echo "run-emu: refusing to write to $dev without a terminal; pass --yes" >&2; exit 2; }
    read -r -p "Type the device path again to continue: " answer
    [ "$answer" = "$dev" ] || { echo "run-emu: not confirmed; $dev untouched" >&2; exit 2; }
  fi
}

step "dependencies"
./pmem-emu/install-deps.sh
command -v dotnet >/dev/null || { echo "run-emu: the .NET SDK (dotnet) is not installed" >&2; exit 1; }

step "build"
# What the showcase runs (wb and samples/PmemWal): the tests and the other samples are built by ./run-tests.sh.
dotnet build -c Release Writeboost.Showcase.slnf -nologo -v quiet -clp:ErrorsOnly
wb="$root/src/Writeboost.Cli/bin/Release/net10.0/wb"

step "emulated pmem"
mkdir -p "$work"
shm_name="wb-emu-$$.pmem"
block_pmem=$(./pmem-emu/make-block-file.sh "$work/pmem-block.img" 64M)
shm_pmem=$(./pmem-emu/make-shm-pmem.sh "$shm_name" 64M)
cleanup() {
  rm -f "/dev/shm/$shm_name"
  [ "$keep" -eq 1 ] || rm -rf "$work"
}
[ "$keep" -eq 1 ] && trap - EXIT || trap cleanup EXIT
echo "block backend: $block_pmem (64 MiB file; durable after fdatasync)"
echo "dax backend:   $shm_pmem (64 MiB tmpfs file, PMEM_IS_PMEM_FORCE=1: clwb + sfence through libpmem)"

step "how each region is mapped"
"$wb" pmem info "$block_pmem"
echo
PMEM_IS_PMEM_FORCE=1 "$wb" pmem info "$shm_pmem"

step "Pmem API: 4 KiB write+persist latency, block backend (one fdatasync per write)"
"$wb" bench pmem "$block_pmem" --backend block --ops "$ops" --max-seconds "$bench_seconds"

step "Pmem API: 4 KiB write+persist latency, dax backend vs fio --ioengine=libpmem (same file size, same run)"
PMEM_IS_PMEM_FORCE=1 "$wb" bench pmem "$shm_pmem" --backend dax --ops "$ops" --max-seconds "$bench_seconds" --fio

step "The RFC's worst case: one writer, every write a 4 KiB FUA — mode 0 (RAM buffer) vs mode 1 (pmem buffer)"
echo "mode 0 seals a partial log and flushes the cache device per write; mode 1 persists into pmem and writes only full logs"
echo "three rounds; each figure is their median with the range, mode 1's p50 also as a multiple of its floor (one bare pmem persist)"
PMEM_IS_PMEM_FORCE=1 "$wb" bench fua --mode both --work-dir "$work" --direct --max-seconds "$bench_seconds" \
  --latency-svg "$work/fua-latency.svg" --latency-png "$work/fua-latency.png"

step "Crash-injection campaign: every crash state the hardware allows (sampled), both modes, and the seeded bugs"
echo "each state is recovered and checked: no acknowledged write lost, no garbage; the seeded bugs must all be caught"
"$wb" crashtest --states "$crash_states" --ops 400 --mutants all

step "I/O errors at every operation: each read, write and flush of backing, cache and pmem failed in turn"
echo "the error must reach a request or the status, reads are never wrong, no acknowledged write is lost; two seeded error-handling bugs must be caught"
"$wb" faults --runs 300 --mutants all

step "Damaged media: every metadata byte flipped, sectors zeroed, stale laps, truncation — recovered and judged"
echo "never data nobody wrote, every loss reported by recovery and by wb check (mode 1 shown; docs/reliability.md has both)"
"$wb" corrupt --mode 1 --mutants all

step "A design of one's own under the same judges: samples/PmemWal, a pmem write-ahead log loaded with --target"
echo "crash states, I/O errors and damaged media (its header and record headers named as its metadata: docs/prototyping.md)"
wal="$root/samples/PmemWal/bin/Release/net10.0/PmemWal.dll"
"$wb" crashtest --target "$wal" --states 10000 | tail -n 3
"$wb" faults --target "$wal" --runs 100 | tail -n 1
"$wb" corrupt --target "$wal"
echo "its seeded flaw ChecksumOmitsHeader (a record CRC that leaves out the header) passes every crash state; damage catches it:"
if "$wb" corrupt --target "$wal" --workload wrap --target-arg flaw=ChecksumOmitsHeader > "$work/flawed-wal.txt"; then
  cat "$work/flawed-wal.txt"
  echo "the corruption sweep missed ChecksumOmitsHeader" >&2
  exit 1
fi
grep -E "^corruptions tried|violation:" "$work/flawed-wal.txt" | head -n 2

step "A mode-1 device on the emulated files: written through the benchmark (which formats fresh paths), then status"
echo "a benchmark refuses paths that hold a cache, a pmem buffer or a filesystem (--force overrides): these are fresh"
backing="$work/backing.img"; cache="$work/cache.img"
truncate -s 1G "$backing"; truncate -s 256M "$cache"
table=(1 "$backing" "$cache" "$shm_pmem" pmem_backend dax)
PMEM_IS_PMEM_FORCE=1 "$wb" bench fua "${table[@]}" --ops 20000 >/dev/null
PMEM_IS_PMEM_FORCE=1 "$wb" status "${table[@]}"

if [ -n "$pmem_device" ]; then
  step "real pmem device $pmem_device"
  confirm_destroy "$pmem_device"
  "$wb" pmem info "$pmem_device"
  "$wb" bench pmem "$pmem_device" --ops "$ops" --force
fi

if [ -n "$cache_device" ]; then
  step "the FUA comparison on real devices: cache $cache_device"
  real_backing=${backing_device:-$work/backing.img}
  confirm_destroy "$cache_device"
  confirm_destroy "$real_backing"
  [ -e "$real_backing" ] || truncate -s 1G "$real_backing"
  real_pmem=${pmem_device:-$shm_pmem}
  PMEM_IS_PMEM_FORCE=1 "$wb" bench fua 0 "$real_backing" "$cache_device" --direct --max-seconds 10 --force
  PMEM_IS_PMEM_FORCE=1 "$wb" bench fua 1 "$real_backing" "$cache_device" "$real_pmem" --direct --max-seconds 10 --force
fi

if [ "$vm" -eq 1 ]; then
  step "The lab: Debian's kernel under QEMU with emulated NVDIMMs (pmem-emu/lab.sh) — EMULATED hardware"
  ./pmem-emu/lab.sh setup
  mkdir -p "$work/lab"
  ./pmem-emu/lab.sh run --work "$work/lab" --disk backing.img:1G --disk cache.img:256M \
    --nvdimm devdax.img:256M --nvdimm fsdax.img:256M -- "$root/pmem-emu/lab-showcase.sh"
fi

step "done"
if [ "$keep" -eq 1 ]; then
  echo "work files kept: $work (backing.img, cache.img, pmem-block.img) and $shm_pmem"
  echo "try: PMEM_IS_PMEM_FORCE=1 $wb status ${table[*]} --json"
else
  echo "work files removed (pass --keep to keep them)"
fi
