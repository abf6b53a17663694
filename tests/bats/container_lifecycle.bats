#!/usr/bin/env bats
# Detached containers and their monitor: ps, logs, exec, stop, kill, wait, rm, monitor death.

load helpers
bats_require_minimum_version 1.5.0

setup() {
  common_setup
  import_busybox
}
teardown() { common_teardown; }

no_trace_of() {
  local id="$1"
  [ ! -e "$SHALE_ROOT/containers/$id" ]
  [ ! -e "$SHALE_ROOT/overlay2/$id" ]
  [ ! -e "$SHALE_ROOT/overlay2/$id-init" ]
  [ ! -e "$SHALE_ROOT/image/overlay2/layerdb/mounts/$id" ]
  ! grep -q "$id" /proc/self/mountinfo || false
  local c
  for c in /sys/fs/cgroup/*/shale/"$id" /sys/fs/cgroup/unified/shale/"$id"; do
    [ ! -e "$c" ]
  done
}

@test "run -d + ps + logs + stop + rm" {
  run shale run -d --name web busybox sh -c 'echo out; echo err >&2; exec sleep 999'
  [ "$status" -eq 0 ]
  [[ "$output" =~ ^[0-9a-f]{64}$ ]]
  id="$output"
  run shale ps
  [[ "${lines[0]}" =~ ^CONTAINER\ ID\ +IMAGE\ +COMMAND\ +CREATED\ +STATUS\ +PORTS\ +NAMES$ ]]
  [[ "${lines[1]}" =~ ^${id:0:12}\ +busybox\ +\"sh\ -c.*\ +Up\ .*\ +web$ ]]
  [ "$(shale ps --format json | jq -r .Names)" = web ]
  sleep 0.2
  run shale logs web
  [[ "$output" == *out* ]]
  [[ "$output" == *err* ]]
  [ "$(shale logs web 2>/dev/null)" = out ]
  log="$SHALE_ROOT/containers/$id/$id-json.log"
  [ "$(head -1 "$log" | jq -r .stream)" = stdout ]
  [ "$(head -1 "$log" | jq -r .log)" = out ]
  [[ "$(head -1 "$log" | jq -r .time)" =~ ^[0-9]{4}-.*Z$ ]]
  [ "$(shale inspect web | jq -r '.[0].State.Status')" = running ]
  [ "$(shale inspect web | jq -r '.[0].State.Pid')" -gt 0 ]
  run shale stop -t 1 web
  [ "$status" -eq 0 ]
  [ "$output" = web ]
  run shale ps -a
  [[ "${lines[1]}" == *"Exited (137)"*" ago"* ]]
  [ -z "$(shale ps -q)" ]
  ! grep -q "$SHALE_ROOT/overlay2/$id/merged" /proc/self/mountinfo || false
  run shale rm web
  [ "$status" -eq 0 ]
  no_trace_of "$id"
}

@test "stop sends the stop signal first: a trapping container exits 0" {
  shale run -d --name t busybox sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done'
  sleep 0.3
  run shale stop t
  [ "$status" -eq 0 ]
  [ "$(shale wait t)" = 0 ]
}

@test "create + start + start -a; names and id prefixes work everywhere" {
  id=$(shale create --name cr busybox sh -c 'echo started')
  run shale ps -a
  [[ "${lines[1]}" == *Created* ]]
  [ "$(shale inspect cr | jq -r '.[0].State.Status')" = created ]
  run shale start -a "${id:0:5}"
  [ "$status" -eq 0 ]
  [ "$output" = started ]
  run shale start cr
  [ "$status" -eq 0 ]
  [ "$(shale wait cr)" = 0 ]
  [ "$(shale logs cr | wc -l)" -eq 2 ]
  run shale create --name cr busybox true
  [ "$status" -eq 125 ]
  [[ "$output" == *'The container name "/cr" is already in use'* ]]
  run shale rm nosuch
  [ "$status" -ne 0 ]
  [[ "$output" == *"No such container: nosuch"* ]]
}

@test "logs -f follows until exit; --tail; wait prints the exit code" {
  shale run -d --name lf busybox sh -c 'for i in 1 2 3; do echo line$i; sleep 0.3; done; exit 4'
  run shale logs -f lf
  [ "$status" -eq 0 ]
  [ "$output" = "$(printf 'line1\nline2\nline3')" ]
  run shale wait lf
  [ "$output" = 4 ]
  [ "$(shale logs --tail 1 lf)" = line3 ]
}

@test "exec: runs in the container with its env, -e/-w/-u, exit status, 126/127" {
  shale run -d --name ex -e FOO=bar busybox sleep 999
  run shale exec ex sh -c 'echo $FOO; probe hostname; cat /proc/1/cmdline | tr "\0" " "'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = bar ]
  id=$(shale inspect ex | jq -r '.[0].Id')
  [ "${lines[1]}" = "${id:0:12}" ]
  [ "${lines[2]}" = "sleep 999 " ]
  run shale exec -e FOO=baz -w /tmp -u nobody ex sh -c 'echo $FOO; pwd; id -u'
  [ "${lines[0]}" = baz ]
  [ "${lines[1]}" = /tmp ]
  [ "${lines[2]}" = 65534 ]
  run shale exec ex probe exit 5
  [ "$status" -eq 5 ]
  run -127 shale exec ex nosuchcmd
  [ "$status" -eq 127 ]
  run shale exec ex /etc/passwd
  [ "$status" -eq 126 ]
  run bash -c "echo viastdin | $SHALE_BIN exec -i ex cat"
  [ "$output" = viastdin ]
  if command -v script >/dev/null; then
    run script -qc "$SHALE_BIN --root $SHALE_ROOT exec -it ex sh -c 'test -t 0 && echo isatty'" /dev/null
    [[ "$output" == *isatty* ]]
  fi
  shale rm -f ex
  run shale exec ex true
  [ "$status" -ne 0 ]
}

@test "kill -s: the signal reaches the container's init" {
  shale run -d --name k busybox sh -c 'trap "exit 42" USR1; while :; do sleep 0.1; done'
  sleep 0.3
  run shale kill -s USR1 k
  [ "$status" -eq 0 ]
  [ "$(shale wait k)" = 42 ]
  run shale kill k
  [ "$status" -ne 0 ]
  [[ "$output" == *"is not running"* ]]
}

@test "monitor killed with -9: the container dies, ps -a shows Exited (137), nothing stays mounted" {
  id=$(shale run -d --name mon busybox sleep 999)
  mon=$(jq -r .MonitorPid "$SHALE_ROOT/containers/$id/state.json")
  ctr=$(shale inspect mon | jq -r '.[0].State.Pid')
  [ "$mon" -gt 0 ]
  kill -0 "$ctr"
  kill -9 "$mon"
  for _ in $(seq 50); do kill -0 "$ctr" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$ctr" 2>/dev/null || false
  run shale ps -a
  [[ "${lines[1]}" == *"Exited (137)"* ]]
  [ "$(shale inspect mon | jq -r '.[0].State.Running')" = false ]
  [[ "$(shale inspect mon | jq -r '.[0].State.Error')" == *"monitor"* ]]
  ! grep -q "$SHALE_ROOT/overlay2/$id/merged" /proc/self/mountinfo || false
  [ ! -e "/sys/fs/cgroup/memory/shale/$id" ]
  shale rm mon
  no_trace_of "$id"
}

@test "rm of a running container needs -f; rm -f leaves no mount, cgroup, dir or layer" {
  id=$(shale run -d --name r busybox sleep 999)
  run shale rm r
  [ "$status" -ne 0 ]
  [[ "$output" == *"running"* ]]
  [ -d "/sys/fs/cgroup/memory/shale/$id" ]
  run shale rm -f r
  [ "$status" -eq 0 ]
  no_trace_of "$id"
  [ -z "$(shale ps -aq)" ]
}

@test "run -d --rm: the monitor removes the container after it exits" {
  id=$(shale run -d --rm busybox sh -c 'sleep 0.3')
  for _ in $(seq 50); do [ -e "$SHALE_ROOT/containers/$id" ] || break; sleep 0.1; done
  no_trace_of "$id"
}

@test "run -d with a missing command: exit 127, the error is recorded" {
  run -127 shale run -d --name bad busybox nosuchcommand
  [ "$status" -eq 127 ]
  [[ "$output" == *nosuchcommand* ]]
  [ "$(shale inspect bad | jq -r '.[0].State.ExitCode')" = 127 ]
  [[ "$(shale inspect bad | jq -r '.[0].State.Error')" == *nosuchcommand* ]]
}

@test "inspect: container and image JSON arrays; unknown names fail" {
  shale create --name ins -e A=1 --memory 64m --pids-limit 50 --read-only --cap-add NET_ADMIN \
    -v /tmp:/hosttmp:ro busybox sleep 1 >/dev/null
  json=$(shale inspect ins busybox)
  [ "$(echo "$json" | jq length)" = 2 ]
  [ "$(echo "$json" | jq -r '.[0].Name')" = /ins ]
  [ "$(echo "$json" | jq -r '.[0].Path')" = sleep ]
  [ "$(echo "$json" | jq -r '.[0].Args[0]')" = 1 ]
  [ "$(echo "$json" | jq -r '.[0].Config.Image')" = busybox ]
  [ "$(echo "$json" | jq -r '.[0].Image')" = "$(echo "$json" | jq -r '.[1].Id')" ]
  [ "$(echo "$json" | jq -r '.[0].HostConfig.PidsLimit')" = 50 ]
  [ "$(echo "$json" | jq -r '.[0].HostConfig.ReadonlyRootfs')" = true ]
  [ "$(echo "$json" | jq -r '.[0].HostConfig.CapAdd[0]')" = NET_ADMIN ]
  [ "$(echo "$json" | jq -r '.[0].Mounts[0].Destination')" = /hosttmp ]
  [ "$(echo "$json" | jq -r '.[0].Mounts[0].RW')" = false ]
  [ "$(echo "$json" | jq -r '.[0].State.StartedAt')" = 0001-01-01T00:00:00Z ]
  [ "$(echo "$json" | jq -r '.[1].RepoTags[0]')" = busybox:latest ]
  run shale inspect nothing-here
  [ "$status" -ne 0 ]
  [[ "$output" == *"No such object: nothing-here"* ]]
}

@test "inspect --format prints fields through a template" {
  shale run -d --name fmt busybox sleep 60
  pid=$(shale inspect --format '{{.State.Pid}}' fmt)
  [ "$pid" -gt 1 ]
  [ -d "/proc/$pid" ]
  [ "$(shale inspect -f '{{.Name}} {{.State.Running}}' fmt)" = "/fmt true" ]
  upper=$(shale inspect -f '{{.GraphDriver.Data.UpperDir}}' fmt)
  [ -d "$upper" ]
  [ "$(shale inspect -f '{{json .RootFS.Layers}}' busybox)" = "$(shale inspect busybox | jq -c '.[0].RootFS.Layers')" ]
  run shale inspect -f '{{range .Args}}{{end}}' fmt
  [ "$status" -ne 0 ]
  [[ "$output" == *"cannot read action"* ]]
  shale rm -f fmt
}
