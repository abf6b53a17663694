#!/usr/bin/env bats
# shale-runc under the real clients: podman (through conmon) and containerd (through its
# io.containerd.runc.v2 shim, the path Kubernetes takes), each with a private store, state
# and socket under the test's temporary directory, fed the busybox image by `shale save`.

load runc_helpers
bats_require_minimum_version 1.5.0

setup() {
  T="$BATS_TEST_TMPDIR"
  common_setup
  import_busybox
  shale save -o "$T/busybox.tar" busybox:latest
}

teardown() {
  if [ -n "${CTR_PID:-}" ]; then
    for t in $(ctr_ task ls -q 2>/dev/null); do ctr_ task kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
    sleep 0.5
    for t in $(ctr_ task ls -q 2>/dev/null); do ctr_ task delete -f "$t" >/dev/null 2>&1 || true; done
    for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1 || true; done
    kill "$CTR_PID" 2>/dev/null || true
    wait "$CTR_PID" 2>/dev/null || true
    # Shims outlive containerd by design: they are ours, started with our socket's address.
    pkill_shims
  fi
  if [ -n "${PODMAN_ROOT:-}" ]; then
    local ids
    ids=$(podman_ ps -aq --no-trunc 2>/dev/null)
    podman_ rm -af -t 0 >/dev/null 2>&1 || true
    for id in $ids $PODMAN_IDS; do
      "$SHALE_RUNC" --root "$PODMAN_RUNC_ROOT" delete --force "$id" >/dev/null 2>&1 || true
    done
    podman_ system reset -f >/dev/null 2>&1 || true
  fi
  STATE="$T/runc-state" runc_teardown
  common_teardown
}

pkill_shims() {
  local p
  for p in /proc/[0-9]*; do
    grep -qaF -- "$T/" "$p/cmdline" 2>/dev/null || continue
    case "$(cat "$p/comm" 2>/dev/null)" in containerd-shim*) kill -9 "${p#/proc/}" 2>/dev/null || true ;; esac
  done
}

# podman with a store and run root of the test's own. The runtime's state stays in its
# default /run/shale-runc: conmon's exit command (podman container cleanup) does not pass
# --runtime-flag on, so a private --root would never see the cleanup's delete.
PODMAN_RUNC_ROOT=/run/shale-runc
podman_() {
  podman --root "$PODMAN_ROOT" --runroot "$T/podman-run" --runtime "$SHALE_RUNC" \
    --cgroup-manager cgroupfs --events-backend none "$@"
}

# This machine's hard limits are below podman's defaults (nofile, nproc 1048576): ask for less.
PODMAN_LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network none)

@test "runc clients: podman run --rm, exit codes, run -d + exec + stop + rm, -it" {
  command -v podman >/dev/null || { [ -z "${SHALE_CI:-}" ] || false; skip "podman is not installed"; }
  PODMAN_ROOT="$T/podman"
  podman_ load -i "$T/busybox.tar" >/dev/null
  run podman_ run --rm "${PODMAN_LIMITS[@]}" busybox:latest sh -c 'echo hello from podman'
  [ "$status" -eq 0 ]
  [ "$output" = "hello from podman" ]
  run podman_ run --rm "${PODMAN_LIMITS[@]}" busybox:latest sh -c 'exit 42'
  [ "$status" -eq 42 ]
  run -127 podman_ run --rm "${PODMAN_LIMITS[@]}" busybox:latest /no/such/binary
  id=$(podman_ run -d "${PODMAN_LIMITS[@]}" busybox:latest sleep 300)
  [ "$(podman_ inspect -f '{{.State.Status}}' "$id")" = running ]
  run podman_ exec "$id" sh -c 'echo in exec; exit 3'
  [ "$status" -eq 3 ]
  [ "$output" = "in exec" ]
  # shale-runc's own state says the same as podman.
  PODMAN_IDS="$id"
  [ "$("$SHALE_RUNC" --root "$PODMAN_RUNC_ROOT" state "$id" | jq -r .status)" = running ]
  podman_ stop -t 1 "$id"
  [ "$(podman_ inspect -f '{{.State.Status}}' "$id")" = exited ]
  podman_ rm "$id"
  [ -z "$(podman_ ps -aq)" ]
  [ ! -e "$PODMAN_RUNC_ROOT/$id" ]
  # -it: conmon gets the terminal over --console-socket. The pause before exit: output
  # still in the pty when its last slave closes can be lost to conmon's read (EIO on
  # hang-up), with crun as well; seen once in a CI run.
  run timeout 60 script -qec "podman --root $PODMAN_ROOT --runroot $T/podman-run --runtime $SHALE_RUNC --cgroup-manager cgroupfs --events-backend none run --rm -it ${PODMAN_LIMITS[*]} busybox:latest sh -c 'tty; sleep 0.3; exit 5'" /dev/null
  [ "$status" -eq 5 ]
  [[ "$output" == *"/dev/pts/0"* ]]
}

ctr_() { ctr --address "$T/containerd/containerd.sock" "$@"; }

start_containerd() {
  mkdir -p "$T/containerd"
  cat >"$T/containerd/config.toml" <<EOC
version = 2
root = "$T/containerd/root"
state = "$T/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$T/containerd/containerd.sock"
[ttrpc]
  address = "$T/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOC
  containerd --config "$T/containerd/config.toml" >"$T/containerd/log" 2>&1 &
  CTR_PID=$!
  for i in $(seq 100); do ctr_ version >/dev/null 2>&1 && return 0; sleep 0.1; done
  cat "$T/containerd/log"
  return 1
}

@test "runc clients: containerd (runc v2 shim): ctr run, detached task, task exec, kill, delete" {
  command -v containerd >/dev/null || { [ -z "${SHALE_CI:-}" ] || false; skip "containerd is not installed"; }
  start_containerd
  ctr_ images import "$T/busybox.tar" >/dev/null
  RB=(--runc-binary "$SHALE_RUNC" --runc-root "$T/runc-state")
  run timeout 60 ctr --address "$T/containerd/containerd.sock" run --rm "${RB[@]}" docker.io/library/busybox:latest c1 sh -c 'echo hello from containerd; exit 6'
  [ "$status" -eq 6 ]
  [ "$output" = "hello from containerd" ]
  timeout 60 ctr --address "$T/containerd/containerd.sock" run -d "${RB[@]}" docker.io/library/busybox:latest c2 sleep 300
  [ "$(ctr_ task ls | awk '$1 == "c2" {print $3}')" = RUNNING ]
  [ "$("$SHALE_RUNC" --root "$T/runc-state/default" state c2 | jq -r .status)" = running ]
  run timeout 30 ctr --address "$T/containerd/containerd.sock" task exec --exec-id e1 c2 sh -c 'echo in exec; exit 3'
  [ "$status" -eq 3 ]
  [ "$output" = "in exec" ]
  ctr_ task ps c2 | grep -q "$(ctr_ task ls | awk '$1 == "c2" {print $2}')"
  ctr_ task kill -s SIGKILL c2
  for i in $(seq 50); do [ "$(ctr_ task ls | awk '$1 == "c2" {print $3}')" = STOPPED ] && break; sleep 0.1; done
  [ "$(ctr_ task ls | awk '$1 == "c2" {print $3}')" = STOPPED ]
  ctr_ task delete c2
  ctr_ containers delete c2
  [ -z "$(ctr_ task ls -q)" ]
  [ -z "$(ls "$T/runc-state/default")" ]
}
