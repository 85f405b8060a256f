#!/bin/bash
# The showcase's part in the lab (./run-emu.sh --vm runs it inside the VM through lab.sh): real pmem drivers on
# an emulated NVDIMM. Disks: /dev/vda backing, /dev/vdb cache; NVDIMMs: region0 made devdax (/dev/dax0.0),
# region1 fsdax with ext4 -o dax on it. Shows how wb maps each, then the FUA comparison with the pmem buffer
# on /dev/dax0.0. The figures are of emulated hardware under QEMU, not of a real NVDIMM.
set -euo pipefail
label="emulated NVDIMM under QEMU (${LAB_ACCEL:-tcg}), Debian kernel $(uname -r)"
step() { printf '\n== %s\n' "$*"; }
mode_of() { ndctl list -n "namespace$1.0" | grep -o '"mode":"[a-z]*"' | cut -d'"' -f4; }
[ "$(mode_of 0)" = devdax ] || ndctl create-namespace -f -e namespace0.0 -m devdax > /dev/null
[ "$(mode_of 1)" = fsdax ] || ndctl create-namespace -f -e namespace1.0 -m fsdax > /dev/null
mkfs.ext4 -q -F -b 4096 /dev/pmem1
mkdir -p /mnt/pmem && mount -o dax /dev/pmem1 /mnt/pmem
truncate -s 64M /mnt/pmem/wb.pmem

step "how wb maps device dax: /dev/dax0.0 — $label"
"$WB" pmem info /dev/dax0.0
step "how wb maps a file on ext4 -o dax: /mnt/pmem/wb.pmem — $label"
"$WB" pmem info /mnt/pmem/wb.pmem

step "one writer, every write a 4 KiB FUA: mode 0 vs mode 1 with the pmem buffer on /dev/dax0.0 — $label"
echo "cache /dev/vdb and backing /dev/vda are virtio disks backed by host files (O_DIRECT); no PMEM_IS_PMEM_FORCE"
json() { grep -o "\"$1\": *[0-9.]*" | head -n1 | grep -o '[0-9.]*$'; }
rows=()
for table in "0 /dev/vda /dev/vdb" "1 /dev/vda /dev/vdb /dev/dax0.0"; do
  # shellcheck disable=SC2086
  # --force: the second run benchmarks the disks the first one formatted (scratch disks of the showcase).
  out=$("$WB" bench fua $table --direct --force --max-seconds "${LAB_SHOWCASE_SECONDS:-5}" --json)
  rows+=("$(printf '%-5s %8s %9s %8s %8s %10s %13s' "${table%% *}" "$(json ops <<< "$out")" "$(json iops <<< "$out" | cut -d. -f1)" \
    "$(json p50_us <<< "$out")" "$(json p99_us <<< "$out")" "$(json full_segments <<< "$out")" "$(json partial_segments <<< "$out")")")
  iops[${table%% *}]=$(json iops <<< "$out")
done
printf '%-5s %8s %9s %8s %8s %10s %13s\n' mode ops IOPS "p50 us" "p99 us" "full segs" "partial segs"
printf '%s\n' "${rows[@]}"
awk -v a="${iops[1]}" -v b="${iops[0]}" 'BEGIN { if (b > 0) printf "mode 1 / mode 0 IOPS = %.1fx (%s)\n", a / b, "'"$label"'" }'
umount /mnt/pmem
