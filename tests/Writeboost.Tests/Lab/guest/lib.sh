# Shell helpers the lab tests run inside the VM (sourced by the scenario scripts beside this file). Every helper
# prints what it did and fails loudly ("FAIL ..." and exit 1) when a step does not work.
set -uo pipefail
fail() { echo "FAIL $*"; exit 1; }
note() { echo "-- [${SECONDS}s] $*"; }

# The NVDIMM namespace of region R in MODE (fsdax or devdax), made once: the mode is written to the NVDIMM
# itself (an info block), so a second boot finds it as the first left it.
namespace_mode() {
  local region=$1 mode=$2 current
  current=$(ndctl list -n "namespace$region.0" 2>/dev/null | grep -o '"mode":"[a-z]*"' | cut -d'"' -f4)
  if [ "$current" != "$mode" ]; then
    ndctl create-namespace -f -e "namespace$region.0" -m "$mode" > /dev/null || fail "ndctl create-namespace $region $mode"
  fi
  note "namespace$region.0 is $mode"
}

# Formats a cache (only `wb create` formats; serve refuses a device holding no cache).
wb_create() {
  "$WB" create "$@" > /dev/null || fail "wb create $*"
}

# Starts `wb serve TABLE... --socket SOCKET` in the background; its pid goes to SERVE_PID and its output to
# SOCKET.log. serve_wait SOCKET... waits for each one's 'ready' line, so several servers start at once.
serve_start() {
  local socket=$1; shift
  rm -f "$socket" "$socket.log"
  "$WB" serve "$@" --socket "$socket" > "$socket.log" 2>&1 &
  SERVE_PID=$!
  echo "$SERVE_PID" > "$socket.pid"
}
serve_wait() {
  local socket started=$SECONDS
  for socket in "$@"; do
    until grep -q ready "$socket.log" 2>/dev/null; do
      kill -0 "$(cat "$socket.pid")" 2>/dev/null || { cat "$socket.log"; fail "wb serve on $socket exited before ready"; }
      [ $((SECONDS - started)) -lt 300 ] || fail "wb serve on $socket not ready in 300 s"
      sleep 0.2
    done
  done
  note "wb serve ready in $((SECONDS - started)) s: $*"
}

# The kernel's NBD client on a wb serve socket, 4 KiB blocks.
nbd_attach() {
  local socket=$1 device=$2
  nbd-client -u "$socket" "$device" -b 4096 > /dev/null 2>&1 || fail "nbd-client -u $socket $device"
  local tries=0
  until [ "$(blockdev --getsize64 "$device" 2>/dev/null || echo 0)" -gt 0 ]; do
    tries=$((tries + 1)); [ $tries -lt 100 ] || fail "$device has no size after nbd-client"
    sleep 0.1
  done
  note "$device on $socket: $(blockdev --getsize64 "$device") bytes"
}
nbd_detach() { nbd-client -d "$1" > /dev/null 2>&1 || fail "nbd-client -d $1"; }

# Waits until each ledger has more than MIN acknowledged writes (up to 300 s): a writer's pace is the host's, and
# a loaded host runs the guest several times slower, so a cut timed by the clock alone can come before the writes
# a test needs to judge. Usage: wait_acknowledged MIN LEDGER...
wait_acknowledged() {
  local min=$1 ledger count started=$SECONDS; shift
  for ledger in "$@"; do
    while count=$(grep -c done "$ledger" 2>/dev/null); [ "${count:-0}" -le "$min" ]; do
      [ $((SECONDS - started)) -lt 300 ] || fail "$ledger: not $min acknowledged writes in 300 s"
      sleep 0.5
    done
  done
}

# Acknowledged-write ledgers: $WB_LAB_PROBE ledger-write DEVICE LEDGER COUNT BLOCKS (FUA writes, each logged
# on the host share once it returned) and $WB_LAB_PROBE ledger-verify DEVICE LEDGER (every acknowledged write
# is there, or a later one that was in flight at the cut).
