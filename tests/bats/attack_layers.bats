#!/usr/bin/env bats
# Layers made from hostile or racing input (issue 7): a commit of a container that keeps
# writing, load of archives built to eat memory, layer tars of odd shapes that must save back
# byte for byte, and names that must be refused.

load helpers

setup() {
  common_setup
  W="$BATS_TEST_TMPDIR/w"
  mkdir -p "$W"
}
teardown() { common_teardown; }

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Issue 7 item 6: the tar and the layer's files used to be made in two passes, so a file
# that changed between them gave an image whose save failed ("... is gone from .../diff" or
# "changed"). Every commit must now save, and its layer must hold what its diffID says.
@test "commit -p false of a container rewriting a file gives images that save" {
  import_busybox
  shale run -d --name racer busybox sh -c \
    'head -c 30000000 /dev/zero > /zbig; touch /ready; mkdir -p /race; i=0; while :; do i=$((i+1)); dd if=/dev/urandom of=/race/f bs=$((i * 7919 % 300000 + 1)) count=1 2>/dev/null; mv /race/f /race/g; ln -sf g /race/l; cp /race/g /race/f; done' >/dev/null
  # /zbig is packed after /race/ (sorted walk): the old second pass came long after the first.
  local t=0
  until shale exec racer test -e /ready 2>/dev/null; do sleep 0.2; t=$((t + 1)); [ $t -lt 100 ]; done
  for n in 1 2 3 4 5 6; do
    run shale commit -p false racer "racy:$n"
    [ "$status" -eq 0 ] || { echo "commit $n: $output"; false; }
    run shale save -o "$W/racy$n.tar" "racy:$n"
    [ "$status" -eq 0 ] || { echo "save $n: $output"; false; }
    # The saved layer tar has the diffID the image records.
    local top
    top=$(tar -xOf "$W/racy$n.tar" manifest.json | jq -r '.[0].Layers[-1]')
    local want
    want=$(tar -xOf "$W/racy$n.tar" "$(tar -xOf "$W/racy$n.tar" manifest.json | jq -r '.[0].Config')" | jq -r '.rootfs.diff_ids[-1]')
    [ "sha256:$(tar -xOf "$W/racy$n.tar" "$top" | sha256sum | cut -d' ' -f1)" = "$want" ]
  done
  shale rm -f racer >/dev/null
}
