#!/bin/bash
# The OCI runtime-tools validation suite against shale-runc and crun, side by side on this
# machine (not part of CI: it needs Go and the runtime-tools source).
#
# Usage: tests/oci-validation.sh [BUILD_DIR] [RUNTIME_TOOLS_SRC]
#   RUNTIME_TOOLS_SRC: a checkout of opencontainers/runtime-tools at 0105384 (the last commit
#   that builds with Debian 12's Go 1.19, with its vendored modules); default: a git clone
#   from $RUNTIME_TOOLS_GIT (a local mirror), checked out into a temporary directory.
# Needs: golang-go (apt), root. Writes a summary per runtime and per test program, and the
# TAP output of every program under $OUT (default /tmp/oci-validation).
set -uo pipefail
BUILD="${1:-build}"
SRC="${2:-}"
SHALE_RUNC="$(cd "$BUILD" && pwd)/shale-runc"
OUT="${OUT:-/tmp/oci-validation}"
mkdir -p "$OUT"

if [ -z "$SRC" ]; then
  SRC="$OUT/runtime-tools"
  if [ ! -d "$SRC" ]; then
    git clone -q "${RUNTIME_TOOLS_GIT:?set RUNTIME_TOOLS_GIT or pass RUNTIME_TOOLS_SRC}" "$SRC"
    git -C "$SRC" checkout -q 0105384
  fi
fi
export GOFLAGS=-mod=vendor GOPATH="$OUT/gopath" GOCACHE="$OUT/gocache"
if [ ! -x "$SRC/runtimetest" ]; then
  make -C "$SRC" runtimetest validation-executables >"$OUT/build.log" 2>&1 ||
    { echo "building runtime-tools failed, see $OUT/build.log"; exit 1; }
fi

# Directories made during the run are found by this stamp at cleanup.
STAMP="$OUT/run.stamp"
touch "$STAMP"

declare -A pass fail skip
run_suite() {  # run_suite NAME RUNTIME_PATH
  local name="$1" rt="$2" t
  pass[$name]=0 fail[$name]=0 skip[$name]=0
  mkdir -p "$OUT/$name"
  for t in "$SRC"/validation/*/*.t; do
    local base
    base=$(basename "$t" .t)
    (cd "$SRC" && RUNTIME="$rt" timeout 120 "$t") >"$OUT/$name/$base.tap" 2>&1
    local p f s
    s=$(grep -ciE '^ok .*# skip' "$OUT/$name/$base.tap" || true)
    f=$(grep -cE '^not ok ' "$OUT/$name/$base.tap" || true)
    p=$(( $(grep -cE '^ok ' "$OUT/$name/$base.tap" || true) - s ))
    pass[$name]=$(( ${pass[$name]} + p ))
    fail[$name]=$(( ${fail[$name]} + f ))
    skip[$name]=$(( ${skip[$name]} + s ))
    printf '%-8s %-40s pass %4d fail %3d skip %3d\n' "$name" "$base" "$p" "$f" "$s" >>"$OUT/summary.txt"
  done
}

: >"$OUT/summary.txt"
run_suite shale-runc "$SHALE_RUNC"
command -v crun >/dev/null && run_suite crun "$(command -v crun)"
# Some programs leave a bundle with mounts (a spec without a mount namespace makes the
# runtime mount in ours), and cgroups of their own naming: remove them.
for m in $(awk 'index($5, "/tmp/ocitest") == 1 {print $5}' /proc/self/mountinfo | sort -r); do
  umount -l "$m" 2>/dev/null || true
done
rm -rf /tmp/ocitest* 2>/dev/null || true
for n in cgrouptest testdir shale-runc; do
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "$h$n" ] && find "$h$n" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
done
# crun makes its cgroup directories, files and all, even under a /sys/fs/cgroup/<controller>
# that is a plain tmpfs directory (a v1 controller not mounted there): the programs' container
# ids are UUIDs.
uuid='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
for h in /sys/fs/cgroup/*/; do
  [ "$(stat -f -c %T "$h")" = tmpfs ] || continue
  find "$h" -mindepth 1 -maxdepth 1 -type d -newer "$STAMP" -regextype posix-extended \
    \( -regex ".*/($uuid|cgrouptest|testdir)" \) -exec rm -rf {} + 2>/dev/null
done
echo "per program: $OUT/summary.txt; TAP: $OUT/<runtime>/<program>.tap"
for n in "${!pass[@]}"; do
  printf '%-10s passed %5d  failed %4d  skipped %4d\n' "$n" "${pass[$n]}" "${fail[$n]}" "${skip[$n]}"
done
