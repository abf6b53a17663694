#!/usr/bin/env bash
# The seed's story on the built-in busybox image: layers, a union mount, a container's
# init and upper layers, a whiteout, and a commit that turns the upper layer into an image.
# Store: $SHALE_ROOT (default /var/lib/shale). Run as root, after a build (tools/quickstart.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SHALE="${SHALE_BIN:-$PWD/build/shale}"
export PATH="$(dirname "$SHALE"):$PATH"
export SHALE_ROOT="${SHALE_ROOT:-/var/lib/shale}"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
# Shows a command as one would type it: arguments with spaces or shell characters in quotes.
shown() {
  local a out=""
  for a in "$@"; do
    case "$a" in *[[:space:]\;\&\|\>\<\$\'\"]*) out+="'${a//\'/\'\\\'\'}' " ;; *) out+="$a " ;; esac
  done
  echo "${out% }"
}
run() { step "$(shown "$@")"; "$@"; }
sh_() { step "$1"; bash -c "$1"; }

rootfs=$(mktemp -d /tmp/shale-busybox.XXXXXX)
trap 'shale rm -f c1 >/dev/null 2>&1 || true; rm -rf "$rootfs"' EXIT
tools/mkbusybox.sh "$rootfs" >/dev/null
shale rm -f c1 >/dev/null 2>&1 || true

run shale import "$rootfs" busybox:latest
run shale images
sh_ "shale inspect busybox | jq '.[0] | {Id, RootFS, GraphDriver}'"

run shale run --rm busybox sh -c 'echo "hello from $(hostname), pid $$"; cat /proc/self/cgroup | head -3'
run shale run -d --name c1 busybox sleep 999
run shale ps
sh_ "shale inspect c1 | jq '.[0].GraphDriver'"
upper=$(shale inspect c1 | jq -r '.[0].GraphDriver.Data.UpperDir')
lower=$(shale inspect c1 | jq -r '.[0].GraphDriver.Data.LowerDir')
run shale exec c1 sh -c 'echo "hello this is c1" > /tmp/c1.txt'
sh_ "cat $upper/tmp/c1.txt"
run shale exec c1 rm /bin/vi
sh_ "ls -l $upper/bin/   # a whiteout: character device 0,0"
sh_ "cd ${lower%%:*} && find . -mindepth 1 | sort   # the init layer, apart from the upper dir"
run shale diff c1
run shale commit -m "seed demo" c1 busybox:c1
run shale history busybox:c1
run shale run --rm busybox:c1 sh -c 'cat /tmp/c1.txt; ls /bin/vi 2>&1 || true'
run shale rm -f c1
echo
echo "demo done (store: $SHALE_ROOT)"
