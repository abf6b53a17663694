#!/usr/bin/env bash
# Commit cost: a one-file commit of a container of the busybox image and of a large
# (debootstrap minbase, ~6,700 files) image, side by side with `podman commit`, in one run.
# Target: the large-image commit within 1.2x of the busybox one (cost grows with the change,
# not the image) and under half of podman's time.
source "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-20}"
trap bench_cleanup EXIT
need_pkg hyperfine hyperfine
rootfs=$(bench_debootstrap_rootfs)
bench_loop_mount
export SHALE_ROOT="$BENCH_MNT/shale" SHALE_NO_PROGRESS=1
bb=$(mktemp -d "$BENCH_MNT/bb.XXXXXX")
"$BENCH_REPO/tools/mkbusybox.sh" "$bb" >/dev/null
"$SHALE" import "$bb" busybox:latest >/dev/null
"$SHALE" import "$rootfs" big:latest >/dev/null
"$SHALE" run -d --name small busybox sleep 1d >/dev/null
"$SHALE" run -d --name large big:latest sleep 1d >/dev/null

cmds=(
  --prepare "$SHALE exec small sh -c 'date +%N > /tmp/changed'" -n "shale commit busybox" "$SHALE commit small bench:small"
  --prepare "$SHALE exec large sh -c 'date +%N > /tmp/changed'" -n "shale commit debootstrap" "$SHALE commit large bench:large"
)
if command -v podman >/dev/null; then
  tar -C "$rootfs" -cf "$BENCH_MNT/rootfs.tar" .
  podman_bench import "$BENCH_MNT/rootfs.tar" localhost/big:latest >/dev/null
  podman_bench run -d --name large --network none localhost/big:latest sleep 1d >/dev/null
  cmds+=(--prepare "$BENCH_MNT/podman.sh exec large sh -c 'date +%N > /tmp/changed'"
    -n "podman commit debootstrap" "$BENCH_MNT/podman.sh commit -q large localhost/bench:large")
else
  echo "bench: podman not installed; comparing shale only" >&2
fi
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$BENCH_MNT/commit.json" "${cmds[@]}" >&2 || true
jq -r '.results[] | "\(.command)\t\(.median*1000|floor) ms"' "$BENCH_MNT/commit.json"
small=$(jq '.results[0].median' "$BENCH_MNT/commit.json")
large=$(jq '.results[1].median' "$BENCH_MNT/commit.json")
echo "large/busybox ratio: $(echo "scale=2; $large / $small" | bc)"
if [ "$(jq '.results | length' "$BENCH_MNT/commit.json")" = 3 ]; then
  pm=$(jq '.results[2].median' "$BENCH_MNT/commit.json")
  echo "shale large / podman large: $(echo "scale=2; $large / $pm" | bc)"
fi
"$SHALE" rm -f small large >/dev/null 2>&1 || true
podman_bench rm -f large >/dev/null 2>&1 || true
