# Shared set-up for the shale-runc suites (runc.bats, runc_clients.bats): a bundle from
# `shale-runc spec` over the busybox rootfs, a private --root, and a teardown that deletes
# every container of that root (their cgroups with them) and kills whatever is left in it.

load helpers

SHALE_RUNC="${SHALE_RUNC:-$(dirname "$SHALE_BIN")/shale-runc}"

runc_setup() {
  T="$BATS_TEST_TMPDIR"
  STATE="$T/state"
  B="$T/bundle"
  mkdir -p "$B"
  cp -a "$(busybox_rootfs)" "$B/rootfs"
  "$SHALE_RUNC" spec --bundle "$B"
  # A writable root and no terminal: what most tests want. A cgroup of the test's own, so
  # teardown can check and remove it.
  CG="shale-runc-test/$(basename "$T")"
  spec_set ".process.terminal = false | .root.readonly = false | .linux.cgroupsPath = \"$CG\""
}

# Runs shale-runc with the test's --root, in the bundle (runc's default --bundle is ".").
runc() { (cd "$B" && "$SHALE_RUNC" --root "$STATE" "$@"); }

# spec_set JQ_FILTER: edits the bundle's config.json in place.
spec_set() {
  jq "$1" "$B/config.json" >"$B/config.json.new" && mv "$B/config.json.new" "$B/config.json"
}

# spec_args ARG...: the container's process.args.
spec_args() {
  local j
  j=$(printf '%s\n' "$@" | jq -R . | jq -s -c .)
  spec_set ".process.args = $j"
}

runc_status() { runc state "$1" | jq -r .status; }

runc_teardown() {
  local id
  if [ -d "$STATE" ]; then
    for id in $("$SHALE_RUNC" --root "$STATE" list -q 2>/dev/null); do
      "$SHALE_RUNC" --root "$STATE" delete --force "$id" >/dev/null 2>&1 || true
    done
  fi
  # Anything still running from the bundle (a test that failed half-way).
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$T"/*) kill -9 "${p#/proc/}" 2>/dev/null || true ;; esac
  done
  local d
  for d in /sys/fs/cgroup/*/shale-runc-test/"$(basename "$T")" /sys/fs/cgroup/shale-runc-test/"$(basename "$T")"; do
    [ -d "$d" ] && rmdir "$d" 2>/dev/null
  done
  rmdir /sys/fs/cgroup/*/shale-runc-test /sys/fs/cgroup/shale-runc-test 2>/dev/null || true
  local m
  for m in $(awk -v r="$T" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}
