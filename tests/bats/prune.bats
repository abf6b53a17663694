#!/usr/bin/env bats
# container prune, image prune [-a], system prune: what goes, what stays, docker's prompt.

load helpers

setup() {
  common_setup
  import_busybox
}
teardown() { common_teardown; }

@test "image prune removes the builder's cache images and their cache entries, keeps tagged images and their layers" {
  local ctx="$BATS_TEST_TMPDIR/ctx"
  mkdir -p "$ctx"
  printf 'FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n' >"$ctx/Dockerfile"
  shale build -q --network none -t built:1 "$ctx" >/dev/null
  # One untagged image per cached step before the last: intermediate images, shown by -a.
  [ "$(shale images -a | grep -c '<none>')" -ge 1 ]
  [ -n "$(ls "$SHALE_ROOT/image/overlay2/buildcache")" ]
  # Declined at the prompt: nothing goes.
  run bash -c "echo n | '$SHALE_BIN' image prune"
  [ "$status" -eq 0 ]
  [[ "$output" == *"WARNING! This will remove all dangling images."* ]]
  [ "$(shale images -a | grep -c '<none>')" -ge 1 ]
  run shale image prune -f
  [ "$status" -eq 0 ]
  [[ "$output" == *"Deleted Images:"*"deleted: sha256:"* ]]
  [[ "$output" == *"Total reclaimed space:"* ]]
  [ "$(shale images -a | grep -c '<none>' || true)" -eq 0 ]
  # The tagged images and everything they stand on are intact.
  run shale run --rm --network none built:1 cat /one /two
  [ "$output" = "$(printf 'one\ntwo')" ]
  # Entries of removed images are gone; the last step's, whose image is built:1, stays.
  [ "$(ls "$SHALE_ROOT/image/overlay2/buildcache" | wc -l)" -eq 1 ]
  run shale build --network none -t built:1 "$ctx"
  [ "$status" -eq 0 ]
  [[ "$output" != *"Using cache"*"Using cache"* ]]
}

@test "image prune -a keeps images a container uses; container prune and system prune remove stopped containers" {
  shale tag busybox other:1
  shale create --name keep --network none busybox true >/dev/null
  shale run -d --name up --network none busybox sleep 100 >/dev/null
  shale run --name done --network none busybox true >/dev/null
  run shale image prune -a -f
  [ "$status" -eq 0 ]
  # busybox is used by containers: it stays with both its tags.
  shale inspect busybox >/dev/null
  shale inspect other:1 >/dev/null
  run shale container prune -f
  [ "$status" -eq 0 ]
  [[ "$output" == *"Deleted Containers:"* ]]
  [ "$(shale ps -a --format json | jq -r .Names | tr '\n' ' ')" = "up " ]
  shale rm -f up >/dev/null
  shale run --name done2 --network none busybox true >/dev/null
  run shale system prune -a -f
  [ "$status" -eq 0 ]
  [[ "$output" == *"Deleted Containers:"*"Deleted Images:"*"untagged: busybox:latest"*"Total reclaimed space:"* ]]
  [ -z "$(shale ps -aq)" ]
  [ -z "$(shale images -q)" ]
  [ "$(ls "$SHALE_ROOT/overlay2" | grep -vc '^l$' || true)" -eq 0 ]
}
