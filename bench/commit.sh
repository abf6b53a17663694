#!/usr/bin/env bash
# Commit cost: a one-file commit of a container of the busybox image and of a large
# (debootstrap minbase, ~6,700 files) image, side by side with `podman commit` of the large
# one, in one run. Target: the large-image commit within 1.2x of the busybox one (cost grows
# with the change, not the image) and under half of podman's time.
#
# Runs are interleaved (small, large, podman, small, ...) and medians reported: commit time
# is dominated by fsync, whose cost depends on what else the file system is writing back, so
# back-to-back batches of one command would measure the neighbours, not the command.
source "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-30}"
trap bench_cleanup EXIT
rootfs=$(bench_debootstrap_rootfs)
bench_loop_mount
export SHALE_ROOT="$BENCH_MNT/shale" SHALE_NO_PROGRESS=1
bb=$(mktemp -d "$BENCH_MNT/bb.XXXXXX")
"$BENCH_REPO/tools/mkbusybox.sh" "$bb" >/dev/null
"$SHALE" import "$bb" busybox:latest >/dev/null
"$SHALE" import "$rootfs" big:latest >/dev/null
"$SHALE" run -d --name small busybox sleep 1d >/dev/null
"$SHALE" run -d --name large big:latest sleep 1d >/dev/null
have_podman=0
if command -v podman >/dev/null; then
  have_podman=1
  tar -C "$rootfs" -cf "$BENCH_MNT/rootfs.tar" .
  podman_bench import "$BENCH_MNT/rootfs.tar" localhost/big:latest >/dev/null
  podman_bench run -d --name large --network none localhost/big:latest sleep 1d >/dev/null
else
  echo "bench: podman not installed; comparing shale only" >&2
fi
sync

# ms of one command, run after a one-file change made by `prepare`.
time_ms() {
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null
  e=$(date +%s%N)
  echo $(((e - s) / 1000))
}
: >"$BENCH_MNT/small.us"; : >"$BENCH_MNT/large.us"; : >"$BENCH_MNT/podman.us"
for i in $(seq "$RUNS"); do
  # A distinct change each run (busybox's date has no %N): each commit makes a new layer.
  "$SHALE" exec small sh -c "echo $i > /tmp/changed"
  time_ms "$SHALE" commit small bench:small >>"$BENCH_MNT/small.us"
  "$SHALE" exec large sh -c "echo $i > /tmp/changed"
  time_ms "$SHALE" commit large bench:large >>"$BENCH_MNT/large.us"
  if [ $have_podman = 1 ]; then
    podman_bench exec large sh -c "echo $i > /tmp/changed"
    time_ms podman_bench commit -q large localhost/bench:large >>"$BENCH_MNT/podman.us"
  fi
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) / 1000 }'; }
small=$(median "$BENCH_MNT/small.us")
large=$(median "$BENCH_MNT/large.us")
printf '%-34s %8s\n' "command ($RUNS runs, median)" "ms"
printf '%-34s %8s\n' "shale commit (busybox)" "$small" "shale commit (debootstrap)" "$large"
if [ $have_podman = 1 ]; then
  pm=$(median "$BENCH_MNT/podman.us")
  printf '%-34s %8s\n' "podman commit (debootstrap)" "$pm"
fi
echo "ratio shale large / shale busybox: $(echo "scale=2; $large / $small" | bc) (target <= 1.2)"
[ $have_podman = 1 ] && echo "ratio shale large / podman large:  $(echo "scale=2; $large / $pm" | bc) (target < 0.5)"
"$SHALE" rm -f small large >/dev/null 2>&1 || true
[ $have_podman = 1 ] && podman_bench rm -f large >/dev/null 2>&1 || true
