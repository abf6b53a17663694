#!/usr/bin/env bats
# The store lock makes concurrent shale commands safe: parallel imports, tags, runs, commits
# and removals leave a store every later command reads without error.

load helpers

setup() { common_setup; import_busybox; }
teardown() { common_teardown; }

@test "parallel imports, runs, commits and rmi leave a consistent store" {
  rootfs=$(busybox_rootfs)
  pids=()
  for i in 1 2 3 4; do
    shale import "$rootfs" "par:$i" >/dev/null & pids+=($!)
    shale run --rm busybox sh -c "echo $i > /tmp/f" >/dev/null & pids+=($!)
    ( shale run --name "c$i" busybox sh -c "echo $i > /tmp/mark" >/dev/null &&
      shale commit "c$i" "committed:$i" >/dev/null &&
      shale rm "c$i" >/dev/null ) & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  # Every image is there once, with its layers; the shared base layer is stored once.
  run shale images --format json
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | jq -r 'select(.Repository=="par") | .Tag' | sort | tr '\n' ' ')" = "1 2 3 4 " ]
  [ "$(echo "$output" | jq -r 'select(.Repository=="committed") | .Tag' | sort | tr '\n' ' ')" = "1 2 3 4 " ]
  [ "$(ls "$SHALE_ROOT/image/overlay2/layerdb/sha256" | wc -l)" -eq 5 ]  # base + 4 commits
  for i in 1 2 3 4; do
    run shale run --rm "committed:$i" cat /tmp/mark
    [ "$output" = "$i" ]
  done
  # Nothing left in staging, no container left behind.
  [ -z "$(ls -A "$SHALE_ROOT/tmp")" ]
  [ -z "$(shale ps -aq)" ]
  # Parallel removals too.
  for i in 1 2 3 4; do shale rmi "committed:$i" "par:$i" >/dev/null & pids+=($!); done
  wait
  [ "$(ls "$SHALE_ROOT/image/overlay2/layerdb/sha256" | wc -l)" -eq 1 ]
  run shale run --rm busybox echo ok
  [ "$output" = "ok" ]
}
