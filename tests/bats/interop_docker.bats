#!/usr/bin/env bats
# docker reads what shale writes and the reverse. The test starts its own dockerd on a
# private socket and data root (no bridge, no iptables, as this machine allows) and stops it
# afterwards; the host's docker, if any, is untouched.

load helpers

setup_file() { private_dockerd_start || true; }
teardown_file() { private_dockerd_stop; }

setup() { common_setup; import_busybox; }
teardown() { common_teardown; }

@test "docker loads shale's save of a committed image and runs it" {
  need_docker
  shale run --name c1 busybox sh -c 'echo hi > /tmp/mark; rm /bin/vi'
  shale commit c1 shaleimg:c1
  shale save -o "$BATS_TEST_TMPDIR/c1.tar" shaleimg:c1
  run docker load -i "$BATS_TEST_TMPDIR/c1.tar"
  [ "$status" -eq 0 ]
  [[ "$output" == *"shaleimg:c1"* ]]
  [ "$(docker image inspect shaleimg:c1 | jq -c '.[0].RootFS.Layers')" = \
    "$(shale inspect shaleimg:c1 | jq -c '.[0].RootFS.Layers')" ]
  [ "$(docker image inspect shaleimg:c1 | jq -r '.[0].Id')" = \
    "$(shale inspect shaleimg:c1 | jq -r '.[0].Id')" ]
  run docker run --rm --network none shaleimg:c1 sh -c 'cat /tmp/mark; test -e /bin/vi || echo vi-gone'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "hi" ]
  [ "${lines[1]}" = "vi-gone" ]
}

@test "shale loads docker's save of a docker commit and runs it" {
  need_docker
  shale save -o "$BATS_TEST_TMPDIR/bb.tar" busybox:latest
  docker load -i "$BATS_TEST_TMPDIR/bb.tar" >/dev/null
  docker run --name d1 --network none busybox:latest sh -c 'echo from docker > /etc/motd; rm /bin/ls'
  docker commit d1 dockerimg:c1 >/dev/null
  docker rm d1 >/dev/null
  docker save -o "$BATS_TEST_TMPDIR/d.tar" dockerimg:c1
  run shale load -i "$BATS_TEST_TMPDIR/d.tar"
  [ "$status" -eq 0 ]
  [ "$(shale inspect dockerimg:c1 | jq -c '.[0].RootFS.Layers')" = \
    "$(docker image inspect dockerimg:c1 | jq -c '.[0].RootFS.Layers')" ]
  [ "$(shale inspect dockerimg:c1 | jq -r '.[0].Id')" = \
    "$(docker image inspect dockerimg:c1 | jq -r '.[0].Id')" ]
  run shale run --rm dockerimg:c1 sh -c 'cat /etc/motd; test -e /bin/ls || echo ls-gone'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "from docker" ]
  [ "${lines[1]}" = "ls-gone" ]
}
