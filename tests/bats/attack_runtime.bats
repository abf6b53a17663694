#!/usr/bin/env bats
# Runtime defects found by trying shale with docker habits (issue 7): lo in a new network
# namespace, capabilities that the seccomp profile must follow, and an attached client that
# dies while its container runs.

load helpers

setup() { common_setup; import_busybox; }
teardown() {
  # A client started in the background by a test: never leave it behind.
  if [ -n "${client:-}" ]; then kill -9 "$client" 2>/dev/null || true; fi
  common_teardown
}

status_of() { shale inspect "$1" 2>/dev/null | jq -r '.[0].State.Status'; }

# Polls (every 0.1 s, at most $2 tenths) until `status_of $1` prints $3 ("gone": no such
# container any more).
wait_status() {
  local id=$1 tries=$2 want=$3 i got
  for ((i = 0; i < tries; i++)); do
    got=$(status_of "$id")
    [ -z "$got" ] || [ "$got" = null ] && got=gone
    [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  echo "container $id: status $got, wanted $want" >&2
  return 1
}

@test "--network none brings lo up: 127.0.0.1 answers inside" {
  run shale run --rm --network none busybox sh -c \
    'cat /sys/class/net/lo/operstate; probe loopback; ping -c1 -W2 127.0.0.1 >/dev/null && echo ping-ok'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" != "down" ]
  [[ "$output" == *"loopback ok"* ]]
  [[ "$output" == *"ping-ok"* ]]
  # The host network is left as it is (shale configures only namespaces it made).
  run shale run --rm --network host busybox probe loopback
  [ "$status" -eq 0 ]
}

@test "--cap-add SYS_ADMIN unlocks mount and unshare under the default seccomp profile" {
  run shale run --rm --cap-add SYS_ADMIN busybox sh -c \
    'mkdir -p /mnt && mount -t tmpfs t /mnt && touch /mnt/f && umount /mnt && unshare -n -u true && echo ok; grep Seccomp: /proc/self/status'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "ok" ]
  [[ "${lines[1]}" == *"2" ]]  # the filter is still on: only the cap's syscalls opened
  # Without the capability both stay refused.
  run shale run --rm busybox sh -c 'mkdir -p /mnt && mount -t tmpfs t /mnt'
  [ "$status" -ne 0 ]
  run shale run --rm busybox sh -c 'unshare -n true'
  [ "$status" -ne 0 ]
  [[ "$output" == *"Operation not permitted"* ]]
}

@test "the container does not inherit the monitor's ignored SIGPIPE" {
  run shale run --rm busybox grep -E '^Sig(Ign|Blk)' /proc/self/status
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "SigBlk:	0000000000000000" ]
  [ "${lines[1]}" = "SigIgn:	0000000000000000" ]
}

@test "run --rm whose client is SIGKILLed keeps running and is removed when it exits" {
  # $SHALE_BIN, not the shale function: $! must be the client itself, not a subshell.
  "$SHALE_BIN" run --rm --name x busybox sh -c 'sleep 3' >/dev/null 2>&1 &
  client=$!
  wait_status x 50 running
  kill -9 "$client"
  wait "$client" 2>/dev/null || true
  sleep 0.5
  [ "$(status_of x)" = running ]
  # The monitor removes it after its exit, as docker's daemon does.
  wait_status x 60 gone
  run shale ps -a -q
  [ -z "$output" ]
}

@test "an attached client's death leaves the container running, its output goes to the log" {
  out="$BATS_TEST_TMPDIR/client.out"
  "$SHALE_BIN" run --name y busybox sh -c 'echo before; sleep 2; echo after; exit 3' >"$out" 2>&1 &
  client=$!
  wait_status y 50 running
  for i in $(seq 50); do grep -q before "$out" && break; sleep 0.1; done
  kill -9 "$client"
  wait "$client" 2>/dev/null || true
  wait_status y 60 exited
  [ "$(shale inspect y | jq -r '.[0].State.ExitCode')" = 3 ]
  run shale logs y
  [[ "$output" == *"before"*"after"* ]]
  run cat "$out"
  [[ "$output" == *"before"* ]]
  [[ "$output" != *"after"* ]]
}

@test "a closed stdout (EPIPE) on the client stops the echo, not the container" {
  run bash -c "'$SHALE_BIN' run --name z busybox sh -c 'echo first; sleep 1; seq 1 20000; echo last' | head -n1"
  [ "$output" = "first" ]
  wait_status z 60 exited
  [ "$(shale inspect z | jq -r '.[0].State.ExitCode')" = 0 ]
  run shale logs z
  [[ "$output" == *"20000"*"last"* ]]
}

@test "signals sent to the attached client still reach the container" {
  out="$BATS_TEST_TMPDIR/client.out"
  "$SHALE_BIN" run --rm --name s busybox sh -c \
    'trap "echo got-term; exit 3" TERM; echo ready; while true; do sleep 0.1; done' >"$out" 2>&1 &
  client=$!
  for i in $(seq 50); do grep -q ready "$out" && break; sleep 0.1; done
  kill -TERM "$client"
  rc=0
  wait "$client" || rc=$?
  client=
  [ "$rc" -eq 3 ]
  grep -q got-term "$out"
  wait_status s 30 gone
}
