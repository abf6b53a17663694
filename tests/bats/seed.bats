#!/usr/bin/env bats
# The seed, verbatim: a container's layers on disk as Docker lays them out, its writes and
# deletes in the upper dir, the init layer apart, and commit packing only the upper dir.

load helpers

setup() {
  common_setup
  import_busybox
}
teardown() { common_teardown; }

@test "seed: c1's layers, writes and whiteouts on the host; commit packs only the upper dir" {
  run shale run -d --name c1 busybox sleep 999
  [ "$status" -eq 0 ]
  id="$output"

  # inspect shows the four overlay dirs, in Docker's layout.
  json=$(shale inspect c1)
  [ "$(echo "$json" | jq -r '.[0].GraphDriver.Name')" = overlay2 ]
  lower=$(echo "$json" | jq -r '.[0].GraphDriver.Data.LowerDir')
  upper=$(echo "$json" | jq -r '.[0].GraphDriver.Data.UpperDir')
  merged=$(echo "$json" | jq -r '.[0].GraphDriver.Data.MergedDir')
  work=$(echo "$json" | jq -r '.[0].GraphDriver.Data.WorkDir')
  [ "$upper" = "$SHALE_ROOT/overlay2/$id/diff" ]
  [ "$merged" = "$SHALE_ROOT/overlay2/$id/merged" ]
  [ "$work" = "$SHALE_ROOT/overlay2/$id/work" ]
  [ "${lower%%:*}" = "$SHALE_ROOT/overlay2/$id-init/diff" ]
  image_top=$(shale inspect busybox | jq -r '.[0].GraphDriver.Data.UpperDir')
  [ "${lower#*:}" = "$image_top" ]
  for d in "$upper" "$merged" "$work" "${lower%%:*}"; do [ -d "$d" ]; done
  grep -q " $merged " /proc/self/mountinfo

  # A write in the container appears in the upper dir on the host.
  run shale exec c1 sh -c 'echo "hello this is c1" > /tmp/c1.txt'
  [ "$status" -eq 0 ]
  [ "$(cat "$upper/tmp/c1.txt")" = "hello this is c1" ]
  [ "$(cat "$merged/tmp/c1.txt")" = "hello this is c1" ]

  # A delete of an image file leaves an overlay whiteout: a 0:0 character device.
  [ -e "$merged/bin/vi" ]
  run shale exec c1 rm /bin/vi
  [ "$status" -eq 0 ]
  [ -c "$upper/bin/vi" ]
  [ "$(stat -c %t:%T "$upper/bin/vi")" = 0:0 ]
  [ ! -e "$merged/bin/vi" ]
  [ -e "$image_top/bin/vi" ]

  # The init layer's placeholders sit in <id>-init/diff, never in the upper dir.
  for f in etc/hosts etc/hostname etc/resolv.conf .dockerenv dev/console; do
    [ -e "$SHALE_ROOT/overlay2/$id-init/diff/$f" ]
    [ ! -e "$upper/$f" ]
  done
  [ "$(readlink "$SHALE_ROOT/overlay2/$id-init/diff/etc/mtab")" = /proc/mounts ]
  [ ! -e "$upper/etc" ]

  run shale diff c1
  [ "$status" -eq 0 ]
  [[ "$output" == *"C /bin"* ]]
  [[ "$output" == *"D /bin/vi"* ]]
  [[ "$output" == *"C /tmp"* ]]
  [[ "$output" == *"A /tmp/c1.txt"* ]]
  [[ "$output" != *"/etc/hostname"* ]]

  # commit -> a new image; a container of it sees the write and not the deleted file.
  run shale commit -m "seed commit" -c 'CMD ["sh"]' c1 c1img:v1
  [ "$status" -eq 0 ]
  [[ "$output" =~ ^sha256:[0-9a-f]{64}$ ]]
  img="$output"
  run shale run --rm c1img:v1 sh -c 'cat /tmp/c1.txt; test -e /bin/vi && echo vi-present; cat /etc/hostname'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "hello this is c1" ]
  [[ "$output" != *vi-present* ]]
  # etc/hostname is the new container's own, not c1's baked in.
  [ "${lines[1]}" != "${id:0:12}" ]
  [ "$(shale inspect c1img:v1 | jq -r '.[0].Config.Cmd[0]')" = sh ]
  [ "$(shale inspect c1img:v1 | jq -r '.[0].RootFS.Layers | length')" = 2 ]
  [ "$(shale inspect c1img:v1 | jq -r '.[0].Container')" = "$id" ]

  # The committed layer in `save`: bin/.wh.vi and tmp/c1.txt, no etc/hostname (init layer).
  shale save -o "$BATS_TEST_TMPDIR/c1img.tar" c1img:v1
  mkdir "$BATS_TEST_TMPDIR/x"
  tar -xf "$BATS_TEST_TMPDIR/c1img.tar" -C "$BATS_TEST_TMPDIR/x"
  top=$(jq -r '.[0].Layers[-1]' "$BATS_TEST_TMPDIR/x/manifest.json")
  entries=$(tar -tf "$BATS_TEST_TMPDIR/x/$top")
  echo "$entries" | grep -qx 'bin/.wh.vi'
  echo "$entries" | grep -qx 'tmp/c1.txt'
  ! echo "$entries" | grep -q 'etc/hostname' || false
  ! echo "$entries" | grep -q 'etc/hosts' || false
  ! echo "$entries" | grep -q '.dockerenv' || false

  # history shows the commit.
  run shale history c1img:v1
  [ "$status" -eq 0 ]
  [[ "${lines[1]}" == "${img:7:12}"*"seed commit" ]]
  [[ "${lines[2]}" == "<missing>"* ]]

  # Two commits of the same container state give the same diffID.
  img2=$(shale commit c1 c1img:v2)
  [ "$(shale inspect c1img:v1 | jq -r '.[0].RootFS.Layers[-1]')" = \
    "$(shale inspect c1img:v2 | jq -r '.[0].RootFS.Layers[-1]')" ]
  img3=$(shale commit --reproducible --pause=false c1 c1img:v3)
  img4=$(shale commit --reproducible --pause=false c1 c1img:v4)
  [ "$(shale inspect c1img:v3 | jq -r '.[0].RootFS.Layers[-1]')" = \
    "$(shale inspect c1img:v4 | jq -r '.[0].RootFS.Layers[-1]')" ]

  # export: the merged view as a plain tar.
  shale export -o "$BATS_TEST_TMPDIR/c1.tar" c1
  tar -tf "$BATS_TEST_TMPDIR/c1.tar" | grep -qx 'tmp/c1.txt'
  ! tar -tf "$BATS_TEST_TMPDIR/c1.tar" | grep -qx 'bin/vi' || false
  tar -tf "$BATS_TEST_TMPDIR/c1.tar" | grep -qx 'bin/busybox'

  # rm -f leaves nothing of c1; its images stay usable.
  shale rm -f c1
  [ ! -e "$SHALE_ROOT/overlay2/$id" ]
  [ ! -e "$SHALE_ROOT/overlay2/$id-init" ]
  ! grep -q "$id" /proc/self/mountinfo || false
  run shale run --rm c1img:v1 cat /tmp/c1.txt
  [ "$output" = "hello this is c1" ]
}
