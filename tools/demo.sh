#!/usr/bin/env bash
# The seed's story on the built-in busybox image: layers, a union mount, a container's
# init and upper layers, a whiteout, and a commit that turns the upper layer into an image.
# Store: $SHALE_ROOT (default /var/lib/shale). Run as root, after a build (tools/quickstart.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SHALE="${SHALE_BIN:-$PWD/build/shale}"
export SHALE_ROOT="${SHALE_ROOT:-/var/lib/shale}"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "$*"; "$@"; }
sh_() { step "$1"; bash -c "$1"; }

rootfs=$(mktemp -d /tmp/shale-busybox.XXXXXX)
trap '"$SHALE" rm -f c1 >/dev/null 2>&1 || true; rm -rf "$rootfs"' EXIT
tools/mkbusybox.sh "$rootfs" >/dev/null
"$SHALE" rm -f c1 >/dev/null 2>&1 || true

run "$SHALE" import "$rootfs" busybox:latest
run "$SHALE" images
sh_ "$SHALE inspect busybox | jq '.[0] | {Id, RootFS, GraphDriver}'"

run "$SHALE" run --rm busybox sh -c 'echo "hello from $(hostname), pid $$"; cat /proc/self/cgroup | head -3'
run "$SHALE" run -d --name c1 busybox sleep 999
run "$SHALE" ps
sh_ "$SHALE inspect c1 | jq '.[0].GraphDriver'"
upper=$("$SHALE" inspect c1 | jq -r '.[0].GraphDriver.Data.UpperDir')
lower=$("$SHALE" inspect c1 | jq -r '.[0].GraphDriver.Data.LowerDir')
run "$SHALE" exec c1 sh -c 'echo "hello this is c1" > /tmp/c1.txt'
sh_ "cat $upper/tmp/c1.txt"
run "$SHALE" exec c1 rm /bin/vi
sh_ "ls -l $upper/bin/   # a whiteout: character device 0,0"
sh_ "ls -a ${lower%%:*}   # the init layer: hosts, hostname, resolv.conf, .dockerenv"
run "$SHALE" diff c1
run "$SHALE" commit -m "seed demo" c1 busybox:c1
run "$SHALE" history busybox:c1
run "$SHALE" run --rm busybox:c1 sh -c 'cat /tmp/c1.txt; ls /bin/vi 2>&1 || true'
run "$SHALE" rm -f c1
echo
echo "demo done (store: $SHALE_ROOT)"
