#!/usr/bin/env bash
# Container start latency: N `shale run --rm busybox true` against `crun run` of a plain OCI
# bundle of the same rootfs and `podman run --rm --network none` of the same image, all on a
# loop-mounted ext4, the cases taking turns in ROUNDS rounds (default 5). Prints ms per run
# and the ratios. Target (issue 11): shale <= 1.0x crun, the engine's work included.
# The network cases side by side: shale on its default bridge (CNI) against shale
# --network none and podman on its default network (CNI bridge too). Targets (issue 10):
# shale bridge <= 0.3x podman's, and the bridge adding <= 15 ms over --network none.
# Usage: bench/start.sh [N]   (root; installs crun and podman with apt-get if missing)
source "$(dirname "$0")/lib.sh"
N="${1:-${N:-100}}"
need_pkg crun crun
need_pkg podman podman
need_pkg jq jq

mounted_hugetlb=0
cleanup() {
  "$SHALE" --root "$store" network rm bridge >/dev/null 2>&1 || true
  bench_cleanup
  if [ "$mounted_hugetlb" = 1 ]; then umount /sys/fs/cgroup/hugetlb 2>/dev/null || true; fi
}
trap cleanup EXIT
# crun refuses a hybrid layout whose cgroup2 tree holds hugetlb; give hugetlb a v1 tree.
if ! mountpoint -q /sys/fs/cgroup/hugetlb 2>/dev/null; then
  mkdir -p /sys/fs/cgroup/hugetlb 2>/dev/null || true
  if mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null; then
    mounted_hugetlb=1
  fi
fi

bench_loop_mount
rootfs="$BENCH_MNT/rootfs"
"$BENCH_REPO/tools/mkbusybox.sh" "$rootfs" >/dev/null
store="$BENCH_MNT/shale"
"$SHALE" --root "$store" import "$rootfs" busybox:latest >/dev/null

bundle="$BENCH_MNT/bundle"
mkdir -p "$bundle"
cp -a "$rootfs" "$bundle/rootfs"
(cd "$bundle" && crun spec)
jq '.process.terminal = false | .process.args = ["true"] | .root.readonly = false' \
  "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"

"$SHALE" --root "$store" save busybox:latest | podman_bench load -q >/dev/null

shale_run() { "$SHALE" --root "$store" run --rm --network none busybox true; }
shale_bridge_run() { "$SHALE" --root "$store" run --rm busybox true; }
crun_run() { crun run --bundle "$bundle" "bench-$$-$i"; }
podman_run() { podman_bench run --rm --network none busybox:latest true; }
podman_bridge_run() { podman_bench run --rm busybox:latest true; }
cases=(shale_run shale_bridge_run crun_run podman_run podman_bridge_run)

# Warm-up (page cache, first-use directories), then the measured runs. The cases take turns
# in ROUNDS rounds of N/ROUNDS runs each, so that a slower minute of this shared machine
# weighs on all of them alike (one block per case made crun 11.5 ms in one run, 15.6 in
# the next).
for ((i = 0; i < 5; i++)); do shale_run >/dev/null; shale_bridge_run >/dev/null; crun_run >/dev/null; done
podman_run >/dev/null
podman_bridge_run >/dev/null
ROUNDS="${ROUNDS:-5}"
per_round=$(((N + ROUNDS - 1) / ROUNDS))
declare -A total_ns
for c in "${cases[@]}"; do total_ns[$c]=0; done
for ((r = 0; r < ROUNDS; r++)); do
  for c in "${cases[@]}"; do
    start=$(date +%s%N)
    for ((i = r * per_round; i < (r + 1) * per_round; i++)); do
      "$c" >/dev/null || { echo "bench: failed: $c" >&2; exit 1; }
    done
    end=$(date +%s%N)
    total_ns[$c]=$((total_ns[$c] + end - start))
  done
done
ms() { echo "scale=2; ${total_ns[$1]} / 1000000 / ($ROUNDS * $per_round)" | bc; }
t_shale=$(ms shale_run)
t_bridge=$(ms shale_bridge_run)
t_crun=$(ms crun_run)
t_podman=$(ms podman_run)
t_podman_bridge=$(ms podman_bridge_run)
leftover=$("$SHALE" --root "$store" ps -aq | wc -l)

printf '%-44s %8s ms/run\n' "shale run --rm --network none busybox true" "$t_shale"
printf '%-44s %8s ms/run\n' "shale run --rm busybox true (bridge)" "$t_bridge"
printf '%-44s %8s ms/run\n' "crun run (OCI bundle, same rootfs)" "$t_crun"
printf '%-44s %8s ms/run\n' "podman run --rm --network none busybox true" "$t_podman"
printf 'shale/crun   = %s\n' "$(echo "scale=2; $t_shale / $t_crun" | bc)"
printf '%-44s %8s ms/run\n' "podman run --rm busybox true (its bridge)" "$t_podman_bridge"
printf 'shale/podman = %s\n' "$(echo "scale=2; $t_shale / $t_podman" | bc)"
printf 'bridge: shale/podman = %s, shale bridge - none = %s ms\n' \
  "$(echo "scale=2; $t_bridge / $t_podman_bridge" | bc)" "$(echo "scale=2; $t_bridge - $t_shale" | bc)"
printf 'N = %s, containers left in the shale store: %s\n' "$N" "$leftover"
