#!/bin/bash
# The lab's stage 2, PID 1 in the guest (lab-initramfs-init.sh switches to it): the host's root is the root, a RAM
# overlay makes it writable. Mounts the shared work directory at its host path, loads the drivers the lab's
# commands use, runs the command lab.sh wrote, records its exit code, then ends as asked: a power cut (nothing
# is synced; the host kills QEMU) or a clean shutdown (sync, unmount, power off). Messages go to the console.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
say() { echo "wblab: $*" > /dev/console; }
off() { sync; busybox poweroff -f; sleep 60; }
run_dir="" work="" end=shutdown
for word in $(cat /proc/cmdline); do
  case "$word" in
    wblab.run=*) run_dir=${word#wblab.run=};;
    wblab.work=*) work=${word#wblab.work=};;
    wblab.end=*) end=${word#wblab.end=};;
  esac
done
mkdir -p /dev/pts /dev/shm /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
chmod 1777 /tmp
# The host's mtab is a symlink to /proc/self/mounts; keep it so.
mkdir -p "$work"
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 work "$work" || { say "cannot mount the work directory $work"; off; }
echo booted > "$run_dir/booted"
# Debian's ndctl routes libnvdimm through 'ndctl load-keys'; load it directly.
modprobe --ignore-install libnvdimm
modprobe -a virtio_blk nfit nd_pmem nd_btt dax_pmem device_dax nbd 2> /dev/console
# NVDIMM namespaces and virtio disks are probed asynchronously: wait (briefly) until the nodes settle.
for _ in $(seq 1 50); do
  regions=$(ls -d /sys/bus/nd/devices/region* 2>/dev/null | wc -l)
  nodes=$(ls /dev/pmem* /dev/dax* 2>/dev/null | wc -l)
  [ "$regions" -eq 0 ] || [ "$nodes" -ge "$regions" ] && break
  sleep 0.1
done
say "command starting ($(uname -r))"
bash "$run_dir/cmd.sh" > "$run_dir/output" 2>&1 < /dev/null
rc=$?
echo "$rc" > "$run_dir/rc.tmp" && mv "$run_dir/rc.tmp" "$run_dir/rc"
say "command exited $rc"
if [ "$end" = cut ]; then
  # The host kills QEMU as soon as it sees the exit code: nothing more is written, nothing synced.
  while :; do sleep 3600; done
fi
kill -TERM -1 2>/dev/null; sleep 0.5; kill -KILL -1 2>/dev/null
sync
# Unmount what the command left mounted (deepest first), then the work directory.
for mount_point in $(awk '{print $2}' /proc/mounts | sort -r); do
  case "$mount_point" in
    /|/proc|/sys|/dev|/dev/pts|/dev/shm|/run|"$work") ;;
    /sys/*|/proc/*) ;;
    *) umount "$mount_point" 2>/dev/null || say "could not unmount $mount_point";;
  esac
done
for dm in $(dmsetup ls 2>/dev/null | awk '$1 != "No" {print $1}'); do dmsetup remove "$dm" 2>/dev/null || say "could not remove dm device $dm"; done
sync
umount "$work" 2>/dev/null
say "shutdown clean"
busybox poweroff -f
sleep 60
