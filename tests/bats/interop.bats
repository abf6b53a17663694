#!/usr/bin/env bats
# What shale writes, podman and skopeo read; what podman writes, shale reads.
# Podman runs here with runc (crun refuses this machine's hybrid cgroup layout until hugetlb
# is moved to v1) and with default_ulimits set (the hard nofile/nproc limits cannot be raised
# here); both are set through a private containers.conf and podman root, so the host's
# configuration is untouched.

load helpers

setup_file() {
  export PM_DIR="$BATS_FILE_TMPDIR/podman"
  mkdir -p "$PM_DIR"
  cat >"$PM_DIR/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
}

teardown_file() {
  if command -v podman >/dev/null; then
    podman_ system prune -af >/dev/null 2>&1 || true
    podman_ system reset -f >/dev/null 2>&1 || true
  fi
  awk -v r="$BATS_FILE_TMPDIR" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

podman_() {
  CONTAINERS_CONF="$PM_DIR/containers.conf" podman --root "$PM_DIR/storage" \
    --runroot "$PM_DIR/run" --storage-driver overlay "$@"
}

need() {
  command -v "$1" >/dev/null || skip "$1 is not installed (apt-get install $1)"
}

setup() { common_setup; import_busybox; }
teardown() { common_teardown; }

@test "podman loads shale's docker-archive save and runs it" {
  need podman
  shale save -o "$BATS_TEST_TMPDIR/bb.tar" busybox:latest
  run podman_ load -i "$BATS_TEST_TMPDIR/bb.tar"
  [ "$status" -eq 0 ]
  [[ "$output" == *"busybox:latest"* ]]
  run podman_ run --rm --network none busybox:latest sh -c 'echo hello from $(cat /etc/passwd | head -c 4)'
  [ "$status" -eq 0 ]
  [ "$output" = "hello from root" ]
  # Same diffIDs on both sides.
  want=$(shale inspect busybox | jq -c '.[0].RootFS.Layers')
  got=$(podman_ image inspect busybox:latest | jq -c '.[0].RootFS.Layers')
  [ "$want" = "$got" ]
}

@test "podman loads shale's oci-archive save of a committed image" {
  need podman
  shale run --name c1 busybox sh -c 'echo committed > /tmp/mark; rm /bin/vi'
  shale commit c1 busybox:c1
  shale save --format oci-archive -o "$BATS_TEST_TMPDIR/c1.tar" busybox:c1
  run podman_ load -i "$BATS_TEST_TMPDIR/c1.tar"
  [ "$status" -eq 0 ]
  [[ "$output" == *"busybox:c1"* ]]
  run podman_ run --rm --network none busybox:c1 sh -c 'cat /tmp/mark; test -e /bin/vi || echo vi-gone'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "committed" ]
  [ "${lines[1]}" = "vi-gone" ]
}

@test "shale loads podman's save and runs it" {
  need podman
  tar -C "$(busybox_rootfs)" -cf "$BATS_TEST_TMPDIR/rootfs.tar" .
  podman_ import "$BATS_TEST_TMPDIR/rootfs.tar" localhost/frompodman:1 >/dev/null
  podman_ run --name pc --network none localhost/frompodman:1 sh -c 'echo from podman > /etc/motd'
  podman_ commit pc localhost/frompodman:2 >/dev/null
  podman_ rm pc >/dev/null
  podman_ save -o "$BATS_TEST_TMPDIR/p.tar" localhost/frompodman:2
  run shale load -i "$BATS_TEST_TMPDIR/p.tar"
  [ "$status" -eq 0 ]
  want=$(podman_ image inspect localhost/frompodman:2 | jq -c '.[0].RootFS.Layers')
  got=$(shale inspect localhost/frompodman:2 | jq -c '.[0].RootFS.Layers')
  [ "$want" = "$got" ]
  run shale run --rm localhost/frompodman:2 cat /etc/motd
  [ "$status" -eq 0 ]
  [ "$output" = "from podman" ]
}

@test "skopeo reads shale's archives and shale loads what skopeo writes" {
  need skopeo
  shale save -o "$BATS_TEST_TMPDIR/bb.tar" busybox:latest
  run skopeo inspect "docker-archive:$BATS_TEST_TMPDIR/bb.tar"
  [ "$status" -eq 0 ]
  want=$(shale inspect busybox | jq -c '.[0].RootFS.Layers')
  [ "$(echo "$output" | jq -c '.Layers')" = "$want" ]
  shale save --format oci-archive -o "$BATS_TEST_TMPDIR/bb-oci.tar" busybox:latest
  run skopeo inspect --config "oci-archive:$BATS_TEST_TMPDIR/bb-oci.tar"
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | jq -c '.rootfs.diff_ids')" = "$want" ]
  # skopeo converts the docker archive to an OCI archive (gzip layers); shale loads it.
  skopeo copy -q "docker-archive:$BATS_TEST_TMPDIR/bb.tar" \
    "oci-archive:$BATS_TEST_TMPDIR/sk.tar:skopeo/busybox:copied"
  run shale load -i "$BATS_TEST_TMPDIR/sk.tar"
  [ "$status" -eq 0 ]
  run shale run --rm skopeo/busybox:copied echo ok
  [ "$output" = "ok" ]
}
