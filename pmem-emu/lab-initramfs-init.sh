#!/bin/busybox sh
# The lab's initramfs /init (lab.sh builds it into the cpio): load the modules that reach the host's root over
# 9p, put a RAM overlay on it (so /tmp, /etc, /root are writable and the repo is visible everywhere, even under
# /tmp), and switch to it, running the stage-2 script named on the kernel command line (pmem-emu/lab-guest.sh).
# Any failure is printed on the console and powers the guest off, so the host sees it at once.
/bin/busybox mkdir -p /proc /sys /dev /lower /upper /newroot /usr/bin /sbin /usr/sbin
/bin/busybox --install -s /bin
fail() { echo "wblab: initramfs: $*"; poweroff -f; sleep 60; }
mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
for module in $(cat /modules/order); do
  insmod "/modules/$module" || fail "insmod $module"
done
stage2=""
for word in $(cat /proc/cmdline); do
  case "$word" in wblab.stage2=*) stage2=${word#wblab.stage2=};; esac
done
[ -n "$stage2" ] || fail "no wblab.stage2= on the kernel command line"
# The virtio 9p device may take a moment to appear after its module loads.
tries=0
until mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 host /lower 2>/dev/null; do
  tries=$((tries + 1)); [ $tries -lt 50 ] || fail "cannot mount the host's root over 9p (mount_tag host)"; sleep 0.1
done
mount -t tmpfs -o mode=0755 tmpfs /upper || fail "mount the overlay's tmpfs"
mkdir -p /upper/upper /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/upper,workdir=/upper/work overlay /newroot || fail "mount the overlay"
for dir in proc sys dev; do mount --move "/$dir" "/newroot/$dir" || fail "move /$dir"; done
[ -f "/newroot$stage2" ] || fail "the stage-2 script $stage2 is not visible in the guest"
exec switch_root /newroot /bin/bash "$stage2"
fail "switch_root"
