#!/usr/bin/env bats
# docker reads what shale writes and the reverse. The test starts its own dockerd on a
# private socket and data root (no bridge, no iptables, as this machine allows) and stops it
# afterwards; the host's docker, if any, is untouched.

load helpers

setup_file() {
  command -v dockerd >/dev/null || return 0
  export DK_DIR="$BATS_FILE_TMPDIR/docker"
  export DOCKER_HOST="unix://$DK_DIR/docker.sock"
  mkdir -p "$DK_DIR"
  dockerd --bridge=none --iptables=false --ip-masq=false --data-root "$DK_DIR/data" \
    --exec-root "$DK_DIR/exec" -H "$DOCKER_HOST" --pidfile "$DK_DIR/docker.pid" \
    >"$DK_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 100); do
    docker version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "dockerd did not start:" >&3
  tail -5 "$DK_DIR/dockerd.log" >&3
}

teardown_file() {
  [ -n "${DK_DIR:-}" ] || return 0
  if [ -f "$DK_DIR/docker.pid" ]; then
    kill "$(cat "$DK_DIR/docker.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$DK_DIR/docker.pid" ] || break; sleep 0.2; done
  fi
  awk -v r="$DK_DIR" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

need_docker() {
  command -v dockerd >/dev/null || skip "dockerd is not installed (apt-get install docker.io)"
  docker version >/dev/null 2>&1 || skip "dockerd did not start here (see its log in \$BATS_FILE_TMPDIR)"
}

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
