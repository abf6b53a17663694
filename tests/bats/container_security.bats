#!/usr/bin/env bats
# Docker's default confinement, checked from inside the container: the seccomp profile,
# the device allow-list, and what --privileged / --security-opt seccomp=unconfined lift.

load helpers

setup() { common_setup; import_busybox; }
teardown() { common_teardown; }

@test "default seccomp profile refuses unshare and mount without CAP_SYS_ADMIN" {
  run shale run --rm busybox sh -c 'grep Seccomp: /proc/self/status; unshare -n true'
  [ "$status" -ne 0 ]
  [[ "$output" == *"Seccomp:"*"2"* ]]
  [[ "$output" == *"Operation not permitted"* ]]
  run shale run --rm busybox mount -t tmpfs x /tmp
  [ "$status" -ne 0 ]
  [[ "$output" == *"permission denied"* ]]  # busybox's words for EPERM
  # With the capability, the profile lets them through (docker's includes.caps rules;
  # attack_runtime.bats checks it in depth).
  run shale run --rm --cap-add SYS_ADMIN busybox sh -c 'mount -t tmpfs x /tmp && echo mounted'
  [ "$output" = "mounted" ]
}

@test "--security-opt seccomp=unconfined lifts the filter" {
  run shale run --rm --cap-add SYS_ADMIN --security-opt seccomp=unconfined busybox \
    sh -c 'grep Seccomp: /proc/self/status; unshare -n true && echo unshared'
  [ "$status" -eq 0 ]
  [[ "$output" == *"Seccomp:"*"0"* ]]
  [[ "$output" == *"unshared"* ]]
  id=$(shale create --security-opt seccomp=unconfined busybox true)
  [ "$(shale inspect "$id" | jq -r '.[0].HostConfig.SecurityOpt[0]')" = "seccomp=unconfined" ]
  run shale run --rm --security-opt apparmor=x busybox true
  [ "$status" -eq 125 ]
  [[ "$output" == *"seccomp=unconfined"* ]]
}

@test "devices: mknod works, but only the default devices can be opened" {
  run shale run --rm busybox sh -c 'mknod /tmp/sda b 8 0 && head -c1 /tmp/sda'
  [ "$status" -ne 0 ]
  [[ "$output" == *"Operation not permitted"* ]]
  run shale run --rm busybox sh -c 'head -c4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "4" ]
  [ "${lines[1]}" = "null-ok" ]
  # --privileged lifts the allow-list: the open gets past the cgroup (ENXIO or data, not EPERM).
  run shale run --rm --privileged busybox sh -c 'mknod /tmp/sda b 8 0 && head -c1 /tmp/sda >/dev/null'
  [[ "$output" != *"Operation not permitted"* ]]
}

@test "exec'd processes get the same filter" {
  shale run -d --name c1 busybox sleep 60
  run shale exec c1 sh -c 'grep Seccomp: /proc/self/status; unshare -n true'
  [ "$status" -ne 0 ]
  [[ "$output" == *"Seccomp:"*"2"* ]]
  shale rm -f c1
}
