#!/usr/bin/env bash
# shale build, side by side in one run:
#  1. the seed's FROM + RUN with --no-cache vs `DOCKER_BUILDKIT=0 docker build` (a private
#     dockerd) and `podman build`. Target: shale at most 0.3x docker.
#  2. a fully cached rebuild of the same Dockerfile. Target: under 20 ms.
#  3. a context of 10,000 files (COPY . /ctx/, cached): the context listing and sources
#     digest vs `tar -c CONTEXT | sha256sum`. Target: at least as fast as tar | sha256sum.
# Runs are interleaved (shale, docker, podman, shale, ...) and medians reported, since the
# cost is mostly fsync and process start, which the neighbours' load moves.
source "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-15}"
M="$BENCH_MNT"
cleanup() {
  if [ -n "${DK_PID:-}" ]; then
    kill "$DK_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DK_PID" 2>/dev/null || break; sleep 0.2; done
  fi
  bench_cleanup
}
trap cleanup EXIT
bench_loop_mount
export SHALE_ROOT="$M/shale" SHALE_NO_PROGRESS=1
bb=$(mktemp -d "$M/bb.XXXXXX")
"$BENCH_REPO/tools/mkbusybox.sh" "$bb" >/dev/null
"$SHALE" import "$bb" busybox:latest >/dev/null
"$SHALE" save -o "$M/busybox.tar" busybox:latest

ctx="$M/ctx"
mkdir -p "$ctx"
printf 'FROM busybox\nRUN echo hi > /hello\n' >"$ctx/Dockerfile"

have_docker=0
if command -v dockerd >/dev/null; then
  export DOCKER_HOST="unix://$M/docker/docker.sock"
  mkdir -p "$M/docker"
  dockerd --bridge=none --iptables=false --ip-masq=false --data-root "$M/docker/data" \
    --exec-root "$M/docker/exec" -H "$DOCKER_HOST" --pidfile "$M/docker/docker.pid" \
    >"$M/docker/dockerd.log" 2>&1 &
  DK_PID=$!
  for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
  if docker load -q -i "$M/busybox.tar" >/dev/null 2>&1; then have_docker=1; fi
fi
[ $have_docker = 1 ] || echo "bench: no dockerd here; docker left out" >&2
have_podman=0
if command -v podman >/dev/null && podman_bench load -q -i "$M/busybox.tar" >/dev/null 2>&1; then
  have_podman=1
else
  echo "bench: podman not usable here; left out" >&2
fi
sync

time_us() {
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s%N)
  echo $(((e - s) / 1000))
}
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

for f in shale docker podman cached; do : >"$M/$f.us"; done
"$SHALE" build -q --network none "$ctx" >/dev/null  # the cache for the cached rebuild
for i in $(seq "$RUNS"); do
  time_us "$SHALE" build -q --network none --no-cache "$ctx" >>"$M/shale.us"
  if [ $have_docker = 1 ]; then
    time_us env DOCKER_BUILDKIT=0 docker build -q --no-cache --network none "$ctx" >>"$M/docker.us"
  fi
  if [ $have_podman = 1 ]; then
    time_us podman_bench build -q --no-cache --network none "$ctx" >>"$M/podman.us"
  fi
  time_us "$SHALE" build -q --network none "$ctx" >>"$M/cached.us"
done

# 10,000 files of 1 KiB in 100 directories.
big="$M/bigctx"
mkdir -p "$big"
for d in $(seq 100); do
  mkdir -p "$big/d$d"
  for f in $(seq 100); do head -c 1024 /dev/urandom >"$big/d$d/f$f"; done
done
printf 'FROM busybox\nCOPY . /ctx/\n' >"$big/Dockerfile"
"$SHALE" build -q --network none "$big" >/dev/null
: >"$M/ctx.us"; : >"$M/tar.us"
for i in $(seq "$RUNS"); do
  time_us "$SHALE" build -q --network none "$big" >>"$M/ctx.us"
  time_us sh -c "tar -C '$big' -cf - . | sha256sum" >>"$M/tar.us"
done

s=$(median "$M/shale.us")
printf '%-52s %9s\n' "command ($RUNS runs, median)" "ms"
printf '%-52s %9s\n' "shale build --no-cache (FROM + RUN)" "$s"
if [ $have_docker = 1 ]; then
  d=$(median "$M/docker.us")
  printf '%-52s %9s\n' "DOCKER_BUILDKIT=0 docker build --no-cache" "$d"
fi
if [ $have_podman = 1 ]; then
  p=$(median "$M/podman.us")
  printf '%-52s %9s\n' "podman build --no-cache" "$p"
fi
c=$(median "$M/cached.us")
printf '%-52s %9s\n' "shale build, all cached (FROM + RUN)" "$c"
x=$(median "$M/ctx.us")
t=$(median "$M/tar.us")
printf '%-52s %9s\n' "shale build, all cached, 10,000-file context" "$x"
printf '%-52s %9s\n' "tar -c CONTEXT | sha256sum" "$t"
echo
[ $have_docker = 1 ] && echo "shale / docker (FROM + RUN, target <= 0.30x): $(ratio "$s" "$d")"
[ $have_podman = 1 ] && echo "shale / podman (FROM + RUN):                  $(ratio "$s" "$p")"
echo "cached rebuild (target < 20 ms):              $c ms"
echo "10,000-file context / tar | sha256sum (target <= 1.00x): $(ratio "$x" "$t")"
