# Shared set-up for the bats suites. Every test stores under its own temporary --root
# (exported as SHALE_ROOT) and teardown removes every mount, cgroup and process it made,
# even after a failure.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHALE_BIN="${SHALE_BIN:-$REPO_ROOT/build/shale}"
PROBE_BIN="${PROBE_BIN:-$REPO_ROOT/build/shale_probe}"

shale() { "$SHALE_BIN" "$@"; }

# The busybox rootfs (tools/mkbusybox.sh), made once per test file.
busybox_rootfs() {
  local dir="$BATS_FILE_TMPDIR/busybox-rootfs"
  if [ ! -d "$dir" ]; then
    "$REPO_ROOT/tools/mkbusybox.sh" "$dir" >/dev/null
    # The static probe rides along in the image for in-container assertions.
    install -m 0755 "$PROBE_BIN" "$dir/bin/probe"
  fi
  echo "$dir"
}

# Imports the busybox rootfs as busybox:latest into the test's store.
import_busybox() {
  shale import "$(busybox_rootfs)" busybox:latest >/dev/null
}

common_setup() {
  export SHALE_ROOT="$BATS_TEST_TMPDIR/root"
  export SHALE_NO_PROGRESS=1
  mkdir -p "$SHALE_ROOT"
}

# Unmounts everything below the test's store (deepest first), kills processes whose
# cwd/root is inside it, removes its cgroups, then the files.
common_teardown() {
  local root="$BATS_TEST_TMPDIR/root"
  [ -d "$root" ] || return 0
  # Stop every container of this store, politely, then not.
  if [ -x "$SHALE_BIN" ]; then
    for id in $("$SHALE_BIN" --root "$root" ps -aq 2>/dev/null); do
      "$SHALE_BIN" --root "$root" rm -f "$id" >/dev/null 2>&1 || true
    done
  fi
  local m
  for m in $(awk -v r="$root" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  # Monitors and containers that survived: anything whose root or cwd is under the store.
  local p
  for p in /proc/[0-9]*; do
    local r
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$root"*) kill -9 "${p#/proc/}" 2>/dev/null || true ;; esac
  done
  rm -rf "$root" 2>/dev/null || true
}
