#!/bin/bash
# A real filesystem on wb serve through the kernel's NBD client: two stacks at once, ext4 on mode 0 and xfs on
# mode 1 (pmem on device dax) — both modes, both filesystems, in the lab's time budget. Disks: vda..vdd (backing,
# cache per stack); NVDIMM 0 as devdax.
#   fs.sh write SECONDS   mkfs, files and a directory tree written with fsync (manifest on the host share after
#                         each fsync), renames made durable; then more writes, and the lab cuts the power mid-way
#   fs.sh verify          wb recovers, the filesystem mounts (journal replay), every manifest file has its
#                         checksum, e2fsck -fn / xfs_repair -n are clean
source "$(dirname "$0")/lib.sh"
phase=$1
stacks=("m0ext4 0 ext4 /dev/vda /dev/vdb" "m1xfs 1 xfs /dev/vdc /dev/vdd /dev/dax0.0")
namespace_mode 0 devdax
sockets=()
for stack in "${stacks[@]}"; do
  read -r name mode fs backing cache pmem <<< "$stack"
  [ "$phase" = write ] && wb_create "$mode" "$backing" "$cache" ${pmem:-}
  serve_start "/run/$name.sock" "$mode" "$backing" "$cache" ${pmem:-}
  sockets+=("/run/$name.sock")
done
serve_wait "${sockets[@]}"
n=0
for socket in "${sockets[@]}"; do
  nbd_attach "$socket" "/dev/nbd$n"
  n=$((n + 1))
done

# Files of random sizes in a tree; each fsync'd (file, then its directory) before its line joins the manifest.
workload() {
  local name=$1 root=$2 manifest=$LAB_WORK/$1.manifest i dir file size
  : > "$manifest"
  for i in $(seq 1 6); do
    dir="$root/tree/d$((i % 4))/e$((i % 3))"
    mkdir -p "$dir"
    file="$dir/f$i"
    size=$(( (i * 7777) % 100000 + 1 ))
    head -c "$size" /dev/urandom > "$file.tmp"
    sync "$file.tmp" || fail "$name: fsync $file.tmp"
    if [ $((i % 2)) -eq 0 ]; then
      mv "$file.tmp" "$file"   # the rename is durable once the directory is fsync'd
    else
      cp "$file.tmp" "$file" && rm "$file.tmp" && sync "$file" || fail "$name: $file"
    fi
    sync "$dir" "$root/tree/d$((i % 4))" "$root/tree" "$root" || fail "$name: fsync of the directories of $file"
    echo "$(sha256sum "$file" | cut -d' ' -f1)  ${file#"$root"/}" >> "$manifest"
  done
  echo "$name: $(wc -l < "$manifest") files durable at ${SECONDS}s"
  # More writes, never synced by us and never to a manifest file: the power is cut in the middle of these.
  mkdir -p "$root/more"
  for i in $(seq 1 100000); do
    head -c 65536 /dev/urandom > "$root/more/g$((i % 50))"
    mv "$root/more/g$((i % 50))" "$root/more/h$((i % 7))"
    [ $((i % 10)) -ne 0 ] || sync "$root/more/h$((i % 7))"
  done
}

n=0
for stack in "${stacks[@]}"; do
  read -r name mode fs backing cache pmem <<< "$stack"
  device=/dev/nbd$n; mount_point=/mnt/$name
  mkdir -p "$mount_point"
  if [ "$phase" = write ]; then
    if [ "$fs" = ext4 ]; then mkfs.ext4 -q -F -b 4096 "$device"; else mkfs.xfs -q -f "$device"; fi || fail "mkfs.$fs $device"
    mount "$device" "$mount_point" || fail "mount $device"
    workload "$name" "$mount_point" > "$LAB_WORK/$name.workload" 2>&1 &
  else
    echo "== $name"
    mount "$device" "$mount_point" || fail "$name: mount $device after the cut"
    # ext4 says "recovery complete", xfs "Starting recovery" when the mount replays the journal.
    if dmesg | grep -E "\($(basename "$device")\)|\($(basename "$device")\):" | grep -q -i -E "recovery complete|starting recovery"; then
      echo "journal_replayed yes"
    else
      echo "journal_replayed no"
    fi
    files=$(wc -l < "$LAB_WORK/$name.manifest")
    bad=$(cd "$mount_point" && sha256sum -c --quiet "$LAB_WORK/$name.manifest" 2>&1 | grep -c -v '^$')
    echo "files $files"
    echo "bad_files $bad"
    [ "$bad" -eq 0 ] || (cd "$mount_point" && sha256sum -c --quiet "$LAB_WORK/$name.manifest" 2>&1 | head -5)
    umount "$mount_point" || fail "$name: umount"
    if [ "$fs" = ext4 ]; then e2fsck -fn "$device" > "$LAB_WORK/$name.fsck" 2>&1; else xfs_repair -n "$device" > "$LAB_WORK/$name.fsck" 2>&1; fi
    echo "fsck_exit $?"
    tail -n 3 "$LAB_WORK/$name.fsck"
  fi
  n=$((n + 1))
done
if [ "$phase" = write ]; then
  # Let each stack make its files durable, then cut in the middle of the unsynced writes.
  deadline=$((SECONDS + 600))
  for stack in "${stacks[@]}"; do
    read -r name _ <<< "$stack"
    until grep -q "files durable" "$LAB_WORK/$name.workload" 2>/dev/null; do
      grep -q FAIL "$LAB_WORK/$name.workload" 2>/dev/null && { cat "$LAB_WORK/$name.workload"; fail "$name workload"; }
      [ $SECONDS -lt $deadline ] || fail "$name: workload not durable in time"
      sleep 0.5
    done
    cat "$LAB_WORK/$name.workload"
  done
  sleep "$2"
  echo "== cut"
fi
