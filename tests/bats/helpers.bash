# Shared set-up for the bats suites. Every test stores under its own temporary --root
# (exported as SHALE_ROOT) and teardown removes every mount, cgroup and process it made,
# even after a failure.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHALE_BIN="${SHALE_BIN:-$REPO_ROOT/build/shale}"
PROBE_BIN="${PROBE_BIN:-$REPO_ROOT/build/shale_probe}"

shale() { "$SHALE_BIN" "$@"; }

# The busybox rootfs (tools/mkbusybox.sh), made once per test file.
busybox_rootfs() {
  local dir="$BATS_FILE_TMPDIR/busybox-rootfs"
  if [ ! -d "$dir" ]; then
    "$REPO_ROOT/tools/mkbusybox.sh" "$dir" >/dev/null
    # The static probe rides along in the image for in-container assertions.
    install -m 0755 "$PROBE_BIN" "$dir/bin/probe"
  fi
  echo "$dir"
}

# Imports the busybox rootfs as busybox:latest into the test's store.
import_busybox() {
  shale import "$(busybox_rootfs)" busybox:latest >/dev/null
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# docker_archive OUT TAG LAYER_TAR...: a docker-save archive (layers first, as docker writes),
# made in $W (the test's work dir); prints the image id.
docker_archive() {
  local out="$1" tag="$2"
  shift 2
  local d
  d=$(mktemp -d "$W/arch.XXXXXX")
  local diff_ids=() layers=() i=0 l
  for l in "$@"; do
    i=$((i + 1))
    mkdir -p "$d/l$i"
    cp "$l" "$d/l$i/layer.tar"
    diff_ids+=("\"sha256:$(sha "$l")\"")
    layers+=("\"l$i/layer.tar\"")
  done
  local ids
  ids=$(IFS=,; echo "${diff_ids[*]}")
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"created":"2024-01-02T03:04:05Z","rootfs":{"type":"layers","diff_ids":[%s]}}' "$ids" >"$d/config.json"
  local cfg
  cfg=$(sha "$d/config.json")
  mv "$d/config.json" "$d/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":[%s]}]' "$cfg" "$tag" "$(IFS=,; echo "${layers[*]}")" >"$d/manifest.json"
  (cd "$d" && tar -cf "$out" l* "$cfg.json" manifest.json)
  echo "sha256:$cfg"
}

# A private dockerd for the docker suites: its own socket and data root under
# $BATS_FILE_TMPDIR, no bridge and no iptables (as this machine allows); the host's docker,
# if any, is untouched. Call from setup_file; private_dockerd_stop from teardown_file.
private_dockerd_start() {
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
  return 1
}

private_dockerd_stop() {
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

common_setup() {
  export SHALE_ROOT="$BATS_TEST_TMPDIR/root"
  export SHALE_NO_PROGRESS=1
  mkdir -p "$SHALE_ROOT"
}

# For the build suites: busybox in the store and an empty context dir in $C.
build_setup() {
  common_setup
  import_busybox
  C="$BATS_TEST_TMPDIR/ctx"
  mkdir -p "$C"
}

# Unmounts everything below the test's store (deepest first), kills processes whose
# cwd/root is inside it, removes its cgroups, then the files.
common_teardown() {
  local root="$BATS_TEST_TMPDIR/root"
  [ -d "$root" ] || return 0
  # Stop every container of this store, politely, then not.
  if [ -x "$SHALE_BIN" ]; then
    for id in $("$SHALE_BIN" --root "$root" ps -aq 2>/dev/null); do
      "$SHALE_BIN" --root "$root" rm -f "$id" >/dev/null 2>&1 || true
    done
    # Containers run on the store's own default bridge (docs/network.md): remove it and any
    # user network, so no bridge or iptables rule outlives the test.
    if [ -d "$root/network/networks" ]; then
      "$SHALE_BIN" --root "$root" network prune >/dev/null 2>&1 || true
      "$SHALE_BIN" --root "$root" network rm bridge >/dev/null 2>&1 || true
    fi
  fi
  local m
  for m in $(awk -v r="$root" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  # Monitors and containers that survived: anything whose root or cwd is under the store.
  local p
  for p in /proc/[0-9]*; do
    local r
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$root"*) kill -9 "${p#/proc/}" 2>/dev/null || true ;; esac
  done
  rm -rf "$root" 2>/dev/null || true
}
