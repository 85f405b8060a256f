#!/usr/bin/env bash
# The lab: a real Linux kernel under the toolkit. QEMU boots Debian's kernel (linux-image-amd64) with a small
# busybox initramfs built here, an emulated NVDIMM and virtio disks that are host files; the guest's root is this
# machine's own root, shared read-only over 9p with a RAM overlay on top, so the host's dotnet, ndctl, nbd-client,
# mkfs and this repository (at the same path) run in the guest unchanged. KVM where it works, TCG otherwise.
#
#   lab.sh setup             install what is missing from Debian, build dm-writeboost for Debian's kernel (dkms),
#                            build the initramfs, publish wb ReadyToRun (idempotent: only what is stale)
#   lab.sh check             say whether the lab can boot here, and why not (exit 0: it can)
#   lab.sh run [options] -- COMMAND...
#                            boot, run COMMAND inside (bash, the repo at its path, cwd kept when visible), print its
#                            output, end with a clean shutdown or a power cut, exit with COMMAND's exit code
#     --work DIR             host directory shared read-write at the same path in the guest (default: a new one
#                            under /var/tmp, removed afterwards); relative disk and NVDIMM paths are inside it
#     --disk PATH:SIZE       a virtio disk (/dev/vda, /dev/vdb, ... in order), created with SIZE if missing
#     --nvdimm PATH:SIZE     an emulated NVDIMM backed by PATH (/dev/pmem0 in region0, ...), created if missing
#     --shutdown             end with a clean shutdown: sync, unmount everything, power off (default)
#     --power-cut            end with a power cut: QEMU is killed (SIGKILL) the moment COMMAND returns, no sync
#     --timeout SECONDS      limit for COMMAND (default 900); --boot-timeout SECONDS for the boot (default 300)
#     --accel kvm|tcg        override the choice (default: kvm when /dev/kvm can run a VM, else tcg)
#   In the guest: $WB is the ReadyToRun wb, $WB_JIT the normal build's wb, $WB_LAB_PROBE the Pmem API probe,
#   $LAB_WORK the shared directory, $LAB_ACCEL kvm or tcg; the NVDIMM and nbd modules are loaded, /dev/vd* and /dev/pmem* exist.
#
# Exit codes of 'run': COMMAND's own; 125 the lab could not boot (the reason and the console's last lines on
# stderr); 124 COMMAND timed out. Nothing is left running: QEMU is killed by its pid on every path out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
lab=${WB_LAB_DIR:-$here/.lab}   # initramfs, published wb, logs: untracked
say() { echo "lab: $*" >&2; }
die() { say "$*"; exit "${exit_code:-1}"; }

packages=(qemu-system-x86 linux-image-amd64 linux-headers-amd64 dkms dm-writeboost-dkms busybox-static ndctl
          nbd-client xfsprogs e2fsprogs dmsetup cpio kmod)

# The Debian kernel the guest boots: the version linux-image-amd64 depends on (never `uname -r`, the host's).
kernel_version() {
  local dep
  dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null | grep -o 'linux-image-[0-9][^ ,]*' | head -n1)
  [ -n "$dep" ] || return 1
  echo "${dep#linux-image-}"
}

install_packages() {
  local missing=() package
  for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is not available"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}; run as root or install sudo"
    sudo="sudo"
  fi
  say "installing ${missing[*]} (Debian's kernel, QEMU, the dm-writeboost module's source: a few minutes once)"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# dkms builds for the kernels whose headers it finds; make sure the Debian kernel's module exists.
build_module() {
  local kver=$1 ko
  ko=$(find "/lib/modules/$kver/updates" -name 'dm-writeboost.ko*' 2>/dev/null | head -n1)
  [ -n "$ko" ] && return 0
  local version
  version=$(dpkg-query -W -f='${Version}' dm-writeboost-dkms | sed 's/-[^-]*$//')
  say "building dm-writeboost $version for $kver with dkms"
  dkms install "dm-writeboost/$version" -k "$kver" >&2 || die "dkms could not build dm-writeboost for $kver"
}

# The initramfs: static busybox, the modules that reach the 9p root and the overlay, and /init.
build_initramfs() {
  local kver=$1 out="$lab/initramfs-$kver.cpio.gz"
  if [ -f "$out" ] && [ "$out" -nt "$here/lab-initramfs-init.sh" ] && [ "$out" -nt "/lib/modules/$kver/modules.dep" ]; then
    return 0
  fi
  say "building the initramfs for $kver (busybox and the 9p, virtio and overlay modules of Debian's kernel)"
  local root
  root=$(mktemp -d "$lab/initramfs.XXXXXX")
  mkdir -p "$root/bin" "$root/modules"
  cp /bin/busybox "$root/bin/busybox"
  file -L "$root/bin/busybox" 2>/dev/null | grep -q "statically linked" || ldd /bin/busybox 2>&1 | grep -q "not a dynamic" \
    || die "/bin/busybox is not static (busybox-static provides it)"
  : > "$root/modules/order"
  local path
  # --show-depends lists each module after its dependencies; builtin ones print "builtin" and are skipped.
  for path in $(modprobe -S "$kver" --show-depends -a virtio_pci 9pnet_virtio 9p overlay | awk '$1 == "insmod" {print $2}'); do
    local name
    name=$(basename "$path")
    [ -f "$root/modules/$name" ] && continue
    cp "$path" "$root/modules/$name"
    echo "$name" >> "$root/modules/order"
  done
  cp "$here/lab-initramfs-init.sh" "$root/init"
  chmod +x "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$root"
}

# wb (and the probe) published ReadyToRun: .NET's JIT under TCG costs a minute per start.
publish_wb() {
  local out="$lab/wb" stamp="$lab/wb/.published"
  if [ -f "$stamp" ] && [ -z "$(find "$repo/src" "$repo/tests/Writeboost.LabProbe" "$repo/Directory.Build.props" \
        \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) -newer "$stamp" -print -quit 2>/dev/null)" ]; then
    return 0
  fi
  command -v dotnet >/dev/null || die "the .NET SDK (dotnet) is not installed"
  say "publishing wb and the lab probe ReadyToRun into $out"
  rm -rf "$out"
  local project
  for project in "$repo/src/Writeboost.Cli/Writeboost.Cli.csproj" "$repo/tests/Writeboost.LabProbe/Writeboost.LabProbe.csproj"; do
    # A separate artifacts path keeps this RID-specific build from touching the normal build's obj/ and bin/.
    dotnet publish "$project" -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
      --artifacts-path "$lab/artifacts" -o "$out" -nologo -v quiet -clp:ErrorsOnly >&2 \
      || die "dotnet publish of $(basename "$project") failed"
  done
  touch "$stamp"
}

setup() {
  mkdir -p "$lab"
  install_packages
  local kver
  kver=$(kernel_version) || die "linux-image-amd64 is not installed"
  [ -f "/boot/vmlinuz-$kver" ] || die "/boot/vmlinuz-$kver is missing (reinstall linux-image-$kver)"
  build_module "$kver"
  build_initramfs "$kver"
  publish_wb
  echo "$kver" > "$lab/kernel-version"
}

# kvm when /dev/kvm can run a VM, else tcg. The device may exist where the CPU has no virtualisation, and KVM
# may create a VM that never runs (nested virtualisation seen here: a stopped VM stays up, a booting one prints
# nothing for ever): so the probe boots the lab's kernel under KVM with no root and waits up to 15 s for the
# kernel's first console line. The answer is kept for this host's boot (boot_id), so one probe serves every run.
choose_accel() {
  if [ -n "${accel:-}" ]; then echo "$accel"; return; fi
  local boot_id cache="$lab/accel"
  boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
  if [ -f "$cache" ] && [ "$(head -n1 "$cache")" = "$boot_id" ]; then sed -n 2p "$cache"; return; fi
  local answer=tcg kver
  kver=$(cat "$lab/kernel-version" 2>/dev/null || true)
  if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ -n "$kver" ] && [ -f "/boot/vmlinuz-$kver" ]; then
    local console probe tries=0
    console=$(mktemp)
    qemu-system-x86_64 -accel kvm -cpu host -machine pc -m 256M -nodefaults -display none -monitor none \
      -serial "file:$console" -no-reboot -kernel "/boot/vmlinuz-$kver" -append "console=ttyS0 panic=-1" \
      >/dev/null 2>&1 &
    probe=$!
    while [ $tries -lt 150 ] && kill -0 "$probe" 2>/dev/null && ! grep -q "Linux version" "$console" 2>/dev/null; do
      sleep 0.1; tries=$((tries + 1))
    done
    grep -q "Linux version" "$console" 2>/dev/null && answer=kvm
    kill -9 "$probe" 2>/dev/null || true
    wait "$probe" 2>/dev/null || true
    rm -f "$console"
  fi
  printf '%s\n%s\n' "$boot_id" "$answer" > "$cache" 2>/dev/null || true
  echo "$answer"
}

# Why the lab cannot boot, if it cannot; prints nothing and returns 0 when it can.
why_not() {
  [ "$(uname -m)" = "x86_64" ] || { echo "the lab boots an x86_64 Debian kernel; this machine is $(uname -m)"; return 1; }
  command -v qemu-system-x86_64 >/dev/null 2>&1 || { echo "qemu-system-x86_64 is missing (lab.sh setup installs qemu-system-x86)"; return 1; }
  local kver
  kver=$(cat "$lab/kernel-version" 2>/dev/null) || { echo "the lab is not set up ($lab/kernel-version missing): run pmem-emu/lab.sh setup"; return 1; }
  [ -f "/boot/vmlinuz-$kver" ] || { echo "/boot/vmlinuz-$kver is missing"; return 1; }
  [ -f "$lab/initramfs-$kver.cpio.gz" ] || { echo "the initramfs is missing: run pmem-emu/lab.sh setup"; return 1; }
  [ -x "$lab/wb/wb" ] || { echo "the ReadyToRun wb is missing: run pmem-emu/lab.sh setup"; return 1; }
  return 0
}

check() {
  local why
  if ! why=$(why_not); then say "cannot boot: $why"; exit 1; fi
  local kver
  kver=$(cat "$lab/kernel-version")
  echo "lab: ready: kernel $kver, accel $(choose_accel), $(qemu-system-x86_64 --version | head -n1)"
  local ko
  ko=$(find "/lib/modules/$kver/updates" -name 'dm-writeboost.ko*' | head -n1)
  echo "lab: dm-writeboost module: ${ko:-missing}"
}

run() {
  local work="" end=shutdown timeout_s=900 boot_timeout_s=300 disks=() nvdimms=()
  accel=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --work) work=$(realpath -m "$2"); shift 2;;
      --disk) disks+=("$2"); shift 2;;
      --nvdimm) nvdimms+=("$2"); shift 2;;
      --shutdown) end=shutdown; shift;;
      --power-cut) end=cut; shift;;
      --timeout) timeout_s=$2; shift 2;;
      --boot-timeout) boot_timeout_s=$2; shift 2;;
      --accel) accel=$2; shift 2;;
      --) shift; break;;
      *) exit_code=2 die "run: unknown option $1 (the command goes after --)";;
    esac
  done
  [ $# -gt 0 ] || exit_code=2 die "run: no command (lab.sh run [options] -- COMMAND...)"
  local why
  why=$(why_not) || exit_code=125 die "cannot boot: $why"
  local kver
  kver=$(cat "$lab/kernel-version")

  local own_work=0
  if [ -z "$work" ]; then work=$(mktemp -d /var/tmp/wb-lab.XXXXXX); own_work=1; fi
  mkdir -p "$work"
  local run_dir="$work/.lab-run"
  rm -rf "$run_dir"; mkdir -p "$run_dir"

  local chosen
  chosen=$(choose_accel)
  # The command, as the guest's bash runs it: the host's cwd when the guest can see it (the root is shared).
  {
    echo "export WB='$lab/wb/wb' WB_JIT='$repo/src/Writeboost.Cli/bin/Release/net10.0/wb' WB_LAB_PROBE='$lab/wb/Writeboost.LabProbe'"
    echo "export LAB_WORK='$work' LAB_REPO='$repo' LAB_ACCEL='$chosen'"
    echo "cd '$PWD' 2>/dev/null || cd '$work'"
    if [ $# -eq 1 ]; then printf '%s\n' "$1"; else printf '%q ' "$@"; echo; fi
  } > "$run_dir/cmd.sh"

  local qemu=(qemu-system-x86_64 -machine "pc,nvdimm=on" -m 2G,slots=4,maxmem=16G -smp 2
              -display none -monitor none -serial "file:$run_dir/console.log" -no-reboot
              -kernel "/boot/vmlinuz-$kver" -initrd "$lab/initramfs-$kver.cpio.gz"
              -append "console=ttyS0 panic=-1 loglevel=4 mitigations=off wblab.stage2=$here/lab-guest.sh wblab.run=$run_dir wblab.work=$work wblab.end=$end ${WB_LAB_APPEND:-}"
              -virtfs "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap"
              -virtfs "local,path=$work,mount_tag=work,security_model=none,multidevs=remap")
  if [ "$chosen" = kvm ]; then qemu+=(-accel kvm -cpu host); else qemu+=(-accel tcg,thread=multi -cpu max); fi
  local spec path size i=0
  for spec in "${disks[@]}"; do
    path=${spec%:*}; size=${spec##*:}
    [[ "$path" = /* ]] || path="$work/$path"
    [ -e "$path" ] || truncate -s "$size" "$path"
    # cache=unsafe: QEMU's writes go to the host page cache, which a power cut of the guest does not lose.
    qemu+=(-drive "file=$path,if=virtio,format=raw,cache=unsafe,discard=unmap")
  done
  for spec in "${nvdimms[@]}"; do
    path=${spec%:*}; size=${spec##*:}
    [[ "$path" = /* ]] || path="$work/$path"
    [ -e "$path" ] || truncate -s "$size" "$path"
    size=$(stat -c %s "$path")
    qemu+=(-object "memory-backend-file,id=nv$i,share=on,mem-path=$path,size=$size,align=2M" -device "nvdimm,id=nvdimm$i,memdev=nv$i")
    i=$((i + 1))
  done

  local started=$SECONDS qemu_pid
  "${qemu[@]}" > "$run_dir/qemu.log" 2>&1 &
  qemu_pid=$!
  # Every way out of here kills QEMU by its pid and removes a work directory we made.
  finish() {
    kill -9 "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    [ "$own_work" -eq 0 ] || rm -rf "$work"
  }
  trap finish EXIT
  trap 'exit 130' INT TERM

  console_tail() { tail -n 25 "$run_dir/console.log" 2>/dev/null | sed 's/^/  console: /' >&2; sed 's/^/  qemu: /' "$run_dir/qemu.log" >&2; }
  local printed=0 size_now
  print_new_output() {
    [ -f "$run_dir/output" ] || return 0
    size_now=$(stat -c %s "$run_dir/output")
    if [ "$size_now" -gt "$printed" ]; then
      tail -c +$((printed + 1)) "$run_dir/output" | head -c $((size_now - printed))
      printed=$size_now
    fi
  }
  while [ ! -f "$run_dir/booted" ]; do
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
      say "the guest stopped before it booted (accel $chosen); its console said:"; console_tail; exit 125
    fi
    if [ $((SECONDS - started)) -ge "$boot_timeout_s" ]; then
      say "the guest did not boot in $boot_timeout_s s (accel $chosen); its console said:"; console_tail; exit 125
    fi
    sleep 0.2
  done
  local booted=$((SECONDS - started))
  echo "$booted" > "$run_dir/boot-seconds"
  local command_started=$SECONDS
  while [ ! -f "$run_dir/rc" ]; do
    print_new_output
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
      print_new_output
      say "the guest stopped while the command ran (a kernel panic?); its console said:"; console_tail; exit 125
    fi
    if [ $((SECONDS - command_started)) -ge "$timeout_s" ]; then
      print_new_output
      say "the command did not finish in $timeout_s s; power cut. The console's last lines:"; console_tail; exit 124
    fi
    sleep 0.2
  done
  print_new_output
  # The summary below goes on a line of its own even when the output did not end with a newline.
  [ ! -s "$run_dir/output" ] || [ -z "$(tail -c 1 "$run_dir/output")" ] || echo
  local rc
  rc=$(cat "$run_dir/rc")
  if [ "$end" = cut ]; then
    kill -9 "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  else
    local deadline=$((SECONDS + 120))
    while kill -0 "$qemu_pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then say "the clean shutdown did not finish in 120 s; power cut instead"; console_tail; break; fi
      sleep 0.2
    done
    grep -q "wblab: shutdown clean" "$run_dir/console.log" 2>/dev/null || say "warning: the guest did not report a clean shutdown"
  fi
  say "boot $booted s, command $((SECONDS - command_started)) s, accel $chosen, end $end, exit $rc"
  exit "$rc"
}

case "${1:-}" in
  setup) shift; setup "$@";;
  check) shift; check "$@";;
  run) shift; run "$@";;
  -h|--help|"") sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ];;
  *) exit_code=2 die "unknown subcommand $1 (setup, check, run)";;
esac
