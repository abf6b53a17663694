#!/bin/bash
# shale-runc against crun and runc on one bundle (busybox rootfs, /bin/true), side by side:
#   run        `RUNTIME run` (create + start + wait + delete), N times
#   lifecycle  create + start + (wait) + delete as containerd's shim calls them
#   podman     `podman --runtime X run --rm` (if podman is installed)
# and the peak RSS of the runtime process (GNU time's maxresident). The runtimes take turns
# within each iteration (the machine is shared: its load then weighs on all alike).
# Usage: bench/runtime.sh [BUILD_DIR] [N]   (as root; N defaults to 100)
set -euo pipefail
BUILD="${1:-build}"
N="${2:-100}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SHALE_RUNC="$(cd "$BUILD" && pwd)/shale-runc"
W=$(mktemp -d /tmp/bench-runtime.XXXXXX)
cleanup() {
  for r in "$SHALE_RUNC" crun runc ${BENCH_EXTRA:-}; do
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
now_us() { echo "${EPOCHREALTIME/./}"; }

runtimes=("$SHALE_RUNC")
command -v crun >/dev/null && runtimes+=(crun)
command -v runc >/dev/null && runtimes+=(runc)
# BENCH_EXTRA="PATH...": more runtimes side by side (an older shale-runc, named apart).
read -r -a extra <<<"${BENCH_EXTRA:-}"
runtimes+=("${extra[@]}")

# Interleaved: iteration i runs every runtime once, so the load of a shared machine falls
# on all of them alike. Time taken without forking (bash's EPOCHREALTIME).
declare -A run_us life_us
cd "$W/bundle"
for r in "${runtimes[@]}"; do
  root="$W/state-$(basename "$r")"
  "$r" --root "$root" run b1 >/dev/null 2>&1 || { echo "$r: run failed:"; "$r" --root "$root" run b1; exit 1; }
  run_us[$r]=0 life_us[$r]=0
done
for _ in $(seq "$N"); do
  for r in "${runtimes[@]}"; do
    root="$W/state-$(basename "$r")"
    t0=$(now_us)
    "$r" --root "$root" run b1 >/dev/null
    t1=$(now_us)
    "$r" --root "$root" create b1 >/dev/null
    "$r" --root "$root" start b1
    while [ "$("$r" --root "$root" state b1 | jq -r .status)" != stopped ]; do :; done
    "$r" --root "$root" delete b1
    t2=$(now_us)
    run_us[$r]=$((run_us[$r] + t1 - t0))
    life_us[$r]=$((life_us[$r] + t2 - t1))
  done
done
printf '%-12s %12s %14s %12s\n' runtime "run ms" "lifecycle ms" "peak RSS KiB"
for r in "${runtimes[@]}"; do
  root="$W/state-$(basename "$r")"
  rss=$(/usr/bin/time -f %M "$r" --root "$root" run b1 2>&1 >/dev/null | tail -1)
  printf '%-12s %12s %14s %12s\n' "$(basename "$r")" "$(ms_per "$N" 0 "${run_us[$r]}000")" \
    "$(ms_per "$N" 0 "${life_us[$r]}000")" "$rss"
done
rmdir /sys/fs/cgroup/*/bench-runtime /sys/fs/cgroup/bench-runtime 2>/dev/null || true

if command -v podman >/dev/null; then
  P=(podman --root "$W/podman" --runroot "$W/podman-run" --cgroup-manager cgroupfs --events-backend none)
  tar -C "$W/bundle/rootfs" -cf "$W/rootfs.tar" .
  "${P[@]}" import "$W/rootfs.tar" localhost/bench:latest >/dev/null
  declare -A pod_us pod_ok
  for r in "$SHALE_RUNC" crun; do pod_us[$r]=0 pod_ok[$r]=1; done
  for _ in $(seq 20); do
    for r in "$SHALE_RUNC" crun; do
      t0=$(now_us)
      "${P[@]}" --runtime "$(command -v "$r" || echo "$r")" run --rm --network none \
        --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/bench:latest true >/dev/null 2>&1 ||
        pod_ok[$r]=0
      t1=$(now_us)
      pod_us[$r]=$((pod_us[$r] + t1 - t0))
    done
  done
  for r in "$SHALE_RUNC" crun; do
    printf 'podman --runtime %-10s run --rm: %s ms%s\n' "$(basename "$r")" \
      "$(ms_per 20 0 "${pod_us[$r]}000")" "$([ "${pod_ok[$r]}" = 1 ] || echo ' (runs failed)')"
  done
  "${P[@]}" system reset -f >/dev/null 2>&1 || true
fi
