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
  rm -rf "$U"
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
  ! pgrep -u 65534
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

@test "rootless: an idmapped mount is refused by its destination (as runc refuses it), nothing left" {
  as_user "$SHALE_RUNC" spec --rootless
  mkdir "$U/host" && chown 65534:65534 "$U/host"
  user_spec ".process.terminal = false | .process.args = [\"true\"] | .mounts += [{destination: \"/data\", type: \"bind\", source: \"$U/host\", options: [\"bind\", \"idmap\"]}]"
  run as_user "$SHALE_RUNC" run c4
  [ "$status" -ne 0 ]
  [[ "$output" == *"mount /data: idmapped mounts need a runtime running as root"* ]]
  [ -z "$(ls "$U/xdg/shale-runc" 2>/dev/null)" ]
}
