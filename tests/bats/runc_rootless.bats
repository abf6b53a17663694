#!/usr/bin/env bats
# shale-runc as an unprivileged user (uid 65534, no passwd lookups needed): `spec --rootless`,
# a user namespace mapping that uid to 0, no cgroup, state under $XDG_RUNTIME_DIR.

load runc_helpers

setup() {
  # Everything the user touches lives in a directory it owns (bats' own temp dirs are 0700
  # root's).
  U=$(mktemp -d /tmp/shale-rootless.XXXXXX)
  mkdir -p "$U/xdg" "$U/bundle"
  cp -a "$(busybox_rootfs)" "$U/bundle/rootfs"
  chown -R 65534:65534 "$U"
  chmod 0711 "$U"
}

teardown() {
  # Whatever a failed test left: the user's containers, then their processes.
  as_user "$SHALE_RUNC" list -q 2>/dev/null | while read -r id; do
    as_user "$SHALE_RUNC" delete --force "$id" >/dev/null 2>&1 || true
  done
  pkill -9 -u 65534 2>/dev/null || true
  # /etc/subuid and /etc/subgid as they were, if a test gave the user a range.
  local f
  for f in subuid subgid; do
    if [ -e "$U/$f.orig" ]; then cp -a "$U/$f.orig" "/etc/$f"
    elif [ -e "$U/$f.none" ]; then rm -f "/etc/$f"; fi
  done
  rm -rf "$U"
}

# No process of the user's is left. An init whose parent exited is reaped by the host's
# init, which can take a moment here: a zombie gets 2 s, a live process none.
no_user_processes() {
  local i
  for i in $(seq 20); do
    pgrep -u 65534 >/dev/null || return 0
    ps -o stat= -u 65534 | grep -qv '^Z' && break
    sleep 0.1
  done
  ps -o pid,ppid,stat,comm -u 65534
  return 1
}

# give_subids FIRST COUNT: a subordinate id range for uid 65534 in /etc/subuid and
# /etc/subgid (restored by teardown), as an administrator grants one with usermod --add-subuids.
give_subids() {
  local f
  for f in subuid subgid; do
    if [ -e "/etc/$f" ]; then cp -a "/etc/$f" "$U/$f.orig"; else touch "$U/$f.none"; fi
    echo "65534:$1:$2" >>"/etc/$f"
  done
}

# as_user CMD...: CMD as uid/gid 65534 in the bundle, with the user's XDG_RUNTIME_DIR.
as_user() {
  (cd "$U/bundle" && setpriv --reuid=65534 --regid=65534 --clear-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin XDG_RUNTIME_DIR="$U/xdg" "$@")
}

user_spec() {  # user_spec JQ_FILTER: edits the user's config.json
  jq "$1" "$U/bundle/config.json" >"$U/bundle/c.new" && mv "$U/bundle/c.new" "$U/bundle/config.json"
  chown 65534:65534 "$U/bundle/config.json"
}

@test "rootless: spec --rootless + run as uid 65534: root inside, the user outside, exit codes, files owned by the user, nothing left" {
  as_user "$SHALE_RUNC" spec --rootless
  run jq -c '[.linux.uidMappings[0].hostID, .linux.gidMappings[0].hostID, ([.linux.namespaces[].type] | index("user") != null)]' "$U/bundle/config.json"
  [ "$output" = '[65534,65534,true]' ]
  user_spec '.process.terminal = false | .root.readonly = false | .process.args = ["sh", "-c", "id -u; touch /made-inside; exit 3"]'
  run as_user "$SHALE_RUNC" run c1
  [ "$status" -eq 3 ]
  [ "${lines[0]}" = 0 ]
  [ "$(stat -c %u "$U/bundle/rootfs/made-inside")" = 65534 ]
  # The default --root is $XDG_RUNTIME_DIR/shale-runc, empty again after run.
  [ -d "$U/xdg/shale-runc" ]
  [ -z "$(ls "$U/xdg/shale-runc")" ]
  no_user_processes
}

@test "rootless: create, state, start, kill, delete as uid 65534; the init runs as the user on the host" {
  as_user "$SHALE_RUNC" spec --rootless
  user_spec '.process.terminal = false | .root.readonly = false | .process.args = ["sleep", "100"]'
  as_user "$SHALE_RUNC" create c2
  [ "$(as_user "$SHALE_RUNC" state c2 | jq -r .status)" = created ]
  as_user "$SHALE_RUNC" start c2
  [ "$(as_user "$SHALE_RUNC" state c2 | jq -r .status)" = running ]
  pid=$(as_user "$SHALE_RUNC" state c2 | jq -r .pid)
  grep -E "^Uid:\s+65534\s" "/proc/$pid/status"
  run as_user "$SHALE_RUNC" exec c2 id -u
  [ "$status" -eq 0 ]
  [ "$output" = 0 ]
  as_user "$SHALE_RUNC" kill c2 KILL
  for _ in $(seq 50); do
    [ "$(as_user "$SHALE_RUNC" state c2 | jq -r .status)" = stopped ] && break
    sleep 0.1
  done
  [ "$(as_user "$SHALE_RUNC" state c2 | jq -r .status)" = stopped ]
  as_user "$SHALE_RUNC" delete c2
  run as_user "$SHALE_RUNC" state c2
  [ "$status" -ne 0 ]
  [ -z "$(ls "$U/xdg/shale-runc")" ]
}

@test "rootless: a memory limit without a delegated cgroup is refused by name, nothing left" {
  as_user "$SHALE_RUNC" spec --rootless
  user_spec '.process.terminal = false | .process.args = ["true"] | .linux.resources = {"memory": {"limit": 67108864}}'
  run as_user "$SHALE_RUNC" run c3
  [ "$status" -ne 0 ]
  [[ "$output" == *linux.resources.memory.limit* ]]
  [ -z "$(ls "$U/xdg/shale-runc" 2>/dev/null)" ]
}

@test "rootless: more ids than the user's own through newuidmap/newgidmap and /etc/subuid; a range not granted is refused naming the file" {
  command -v newuidmap >/dev/null
  as_user "$SHALE_RUNC" spec --rootless
  local maps='[{"containerID": 0, "hostID": 65534, "size": 1}, {"containerID": 1, "hostID": 300000, "size": 65536}]'
  # CAP_CHOWN (not in runc's default set) to give a file to an id of the subordinate range.
  local chown='.process.capabilities |= with_entries(.value += ["CAP_CHOWN"])'
  user_spec "$chown | .process.terminal = false | .root.readonly = false | .linux.uidMappings = $maps | .linux.gidMappings = $maps | .process.args = [\"sh\", \"-c\", \"cat /proc/self/uid_map; touch /f; chown 1000:1000 /f; echo chowned\"]"
  # Not granted yet: newuidmap refuses, and the error says where ranges are granted.
  run as_user "$SHALE_RUNC" run c4
  [ "$status" -ne 0 ]
  [[ "$output" == *"/etc/subuid"* ]]
  [ -z "$(ls "$U/xdg/shale-runc" 2>/dev/null)" ]
  give_subids 300000 65536
  run as_user "$SHALE_RUNC" run c4
  [ "$status" -eq 0 ]
  # Both ranges are in the namespace's map, and id 1000 inside is 300999 on the host.
  [[ "$output" == *"65534"*"300000"*"65536"* ]]
  [[ "$output" == *chowned* ]]
  [ "$(stat -c %u:%g "$U/bundle/rootfs/f")" = 300999:300999 ]
  [ -z "$(ls "$U/xdg/shale-runc")" ]
  no_user_processes
}

@test "rootless: an idmapped mount is refused by its destination (as runc refuses it), nothing left" {
  as_user "$SHALE_RUNC" spec --rootless
  mkdir "$U/host" && chown 65534:65534 "$U/host"
  user_spec ".process.terminal = false | .process.args = [\"true\"] | .mounts += [{destination: \"/data\", type: \"bind\", source: \"$U/host\", options: [\"bind\", \"idmap\"]}]"
  run as_user "$SHALE_RUNC" run c4
  [ "$status" -ne 0 ]
  [[ "$output" == *"mount /data: idmapped mounts need a runtime running as root"* ]]
  [ -z "$(ls "$U/xdg/shale-runc" 2>/dev/null)" ]
}
