#!/bin/bash
# shale-runc against crun and runc on one bundle (busybox rootfs, /bin/true), side by side:
#   run        `RUNTIME run` (create + start + wait + delete), N times
#   lifecycle  create + start + (wait) + delete as containerd's shim calls them
#   podman     `podman --runtime X run --rm` (if podman is installed)
# and the peak RSS of the runtime process (GNU time's maxresident).
# Usage: bench/runtime.sh [BUILD_DIR] [N]   (as root; N defaults to 100)
set -euo pipefail
BUILD="${1:-build}"
N="${2:-100}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SHALE_RUNC="$(cd "$BUILD" && pwd)/shale-runc"
W=$(mktemp -d /tmp/bench-runtime.XXXXXX)
cleanup() {
  for r in "$SHALE_RUNC" crun runc; do
    "$r" --root "$W/state-$(basename "$r")" delete --force b1 >/dev/null 2>&1 || true
  done
  rm -rf "$W"
}
trap cleanup EXIT

"$REPO/tools/mkbusybox.sh" "$W/bundle/rootfs" >/dev/null
"$SHALE_RUNC" spec --bundle "$W/bundle"
# The same spec for all three: runc's defaults, no terminal, a cgroup of its own.
jq '.process.terminal = false | .process.args = ["/bin/true"] | .linux.cgroupsPath = "/bench-runtime/b1"' \
  "$W/bundle/config.json" >"$W/c.json" && mv "$W/c.json" "$W/bundle/config.json"

ms_per() {  # ms_per N START_NS END_NS
  echo "scale=2; ($3 - $2) / $1 / 1000000" | bc
}

runtimes=("$SHALE_RUNC")
command -v crun >/dev/null && runtimes+=(crun)
command -v runc >/dev/null && runtimes+=(runc)

printf '%-12s %12s %14s %12s\n' runtime "run ms" "lifecycle ms" "peak RSS KiB"
for r in "${runtimes[@]}"; do
  name=$(basename "$r")
  root="$W/state-$name"
  cd "$W/bundle"
  "$r" --root "$root" run b1 >/dev/null 2>&1 || { echo "$name: run failed:"; "$r" --root "$root" run b1; exit 1; }
  t0=$(date +%s%N)
  for _ in $(seq "$N"); do "$r" --root "$root" run b1 >/dev/null; done
  t1=$(date +%s%N)
  for _ in $(seq "$N"); do
    "$r" --root "$root" create b1 >/dev/null
    "$r" --root "$root" start b1
    while [ "$("$r" --root "$root" state b1 | jq -r .status)" != stopped ]; do :; done
    "$r" --root "$root" delete b1
  done
  t2=$(date +%s%N)
  rss=$(/usr/bin/time -f %M "$r" --root "$root" run b1 2>&1 >/dev/null | tail -1)
  printf '%-12s %12s %14s %12s\n' "$name" "$(ms_per "$N" "$t0" "$t1")" "$(ms_per "$N" "$t1" "$t2")" "$rss"
done
rmdir /sys/fs/cgroup/*/bench-runtime /sys/fs/cgroup/bench-runtime 2>/dev/null || true

if command -v podman >/dev/null; then
  P=(podman --root "$W/podman" --runroot "$W/podman-run" --cgroup-manager cgroupfs --events-backend none)
  tar -C "$W/bundle/rootfs" -cf "$W/rootfs.tar" .
  "${P[@]}" import "$W/rootfs.tar" localhost/bench:latest >/dev/null
  for r in "$SHALE_RUNC" crun; do
    t0=$(date +%s%N)
    ok=1
    for _ in $(seq 20); do
      "${P[@]}" --runtime "$(command -v "$r" || echo "$r")" run --rm --network none \
        --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/bench:latest true >/dev/null 2>&1 || ok=0
    done
    t1=$(date +%s%N)
    printf 'podman --runtime %-10s run --rm: %s ms%s\n' "$(basename "$r")" "$(ms_per 20 "$t0" "$t1")" \
      "$([ $ok = 1 ] || echo ' (runs failed)')"
  done
  "${P[@]}" system reset -f >/dev/null 2>&1 || true
fi
