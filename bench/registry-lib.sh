# Shared by bench/pull.sh and bench/push.sh (source after lib.sh): a local docker-registry on
# the loop mount and the Debian minbase image as a docker-archive.

# Starts docker-registry on 127.0.0.1 at a free port, storage in $BENCH_MNT/registry.
# Sets REG and REG_PID; REG_LOG is its access log.
bench_registry_start() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  REG="127.0.0.1:$port"
  REG_LOG="$BENCH_MNT/registry.log"
  cat >"$BENCH_MNT/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $BENCH_MNT/registry
  delete:
    enabled: true
http:
  addr: $REG
  secret: shale-bench
YML
  docker-registry serve "$BENCH_MNT/registry.yml" >"$REG_LOG" 2>&1 &
  REG_PID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://$REG/v2/" && return 0
    sleep 0.05
  done
  echo "bench: docker-registry did not start" >&2
  return 1
}

bench_registry_stop() {
  if [ -n "${REG_PID:-}" ]; then
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
  fi
}

# $BENCH_MNT/minbase.tar: the minbase rootfs as a one-layer docker-archive (tar, no shale).
bench_minbase_archive() {
  local rootfs d
  rootfs=$(bench_debootstrap_rootfs)
  d=$(mktemp -d "$BENCH_MNT/archive.XXXXXX")
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$d/layer.tar" .
  local diff_id config cfg
  diff_id=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  config=$(printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["bash"]},"created":"2024-01-01T00:00:00Z","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff_id")
  cfg=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
  mkdir "$d/$diff_id"
  mv "$d/layer.tar" "$d/$diff_id/layer.tar"
  printf '%s' "$config" >"$d/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["minbase:latest"],"Layers":["%s/layer.tar"]}]' \
    "$cfg" "$diff_id" >"$d/manifest.json"
  (cd "$d" && tar -cf "$BENCH_MNT/minbase.tar" "$diff_id" "$cfg.json" manifest.json)
  rm -rf "$d"
}

# The set-up both registry benchmarks share: tools, the shale binary, the minbase rootfs on
# the loop mount, a local registry (stopped on exit) and the minbase docker archive.
bench_registry_setup() {
  need_pkg hyperfine hyperfine
  need_pkg skopeo skopeo
  [ -x "$SHALE" ] || { echo "bench: $SHALE not built" >&2; exit 1; }
  bench_debootstrap_rootfs >/dev/null
  bench_loop_mount
  trap 'bench_registry_stop; bench_cleanup' EXIT
  bench_registry_start
  bench_minbase_archive
}

# $BENCH_MNT/layers4.tar: the same rootfs as a four-layer docker-archive (the rest, usr/lib,
# usr/share, usr/bin+sbin), made with tar, for the parallel-download case of bench/pull.sh.
bench_layered_archive() {
  local rootfs d
  rootfs=$(bench_debootstrap_rootfs)
  d=$(mktemp -d "$BENCH_MNT/archive.XXXXXX")
  local parts=("--exclude=./usr/lib --exclude=./usr/share --exclude=./usr/bin --exclude=./usr/sbin ."
               "./usr/lib" "./usr/share" "./usr/bin ./usr/sbin")
  local diff_ids=() layers=() k
  for k in 0 1 2 3; do
    # shellcheck disable=SC2086
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$d/l$k.tar" ${parts[$k]}
    local id
    id=$(sha256sum "$d/l$k.tar" | cut -d' ' -f1)
    mkdir -p "$d/$id"
    mv "$d/l$k.tar" "$d/$id/layer.tar"
    diff_ids+=("\"sha256:$id\"")
    layers+=("\"$id/layer.tar\"")
  done
  local config cfg
  config=$(printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["bash"]},"created":"2024-01-01T00:00:00Z","rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$(IFS=,; echo "${diff_ids[*]}")")
  cfg=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
  printf '%s' "$config" >"$d/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["layers4:latest"],"Layers":[%s]}]' \
    "$cfg" "$(IFS=,; echo "${layers[*]}")" >"$d/manifest.json"
  (cd "$d" && tar -cf "$BENCH_MNT/layers4.tar" ./*)
  rm -rf "$d"
}
