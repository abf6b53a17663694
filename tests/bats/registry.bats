#!/usr/bin/env bats
# pull / push / login / logout against a real registry: Debian's docker-registry on
# 127.0.0.1 at a free port, storage in the test's temp dir, stopped in teardown.

load helpers

# start_registry [htpasswd]: sets REG (host:port), REG_DIR, REG_PID.
start_registry() {
  REG_DIR="$BATS_TEST_TMPDIR/registry"
  mkdir -p "$REG_DIR"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  REG="127.0.0.1:$port"
  cat >"$REG_DIR/config.yml" <<YML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: $REG
  secret: shale-bats
YML
  if [ "${1:-}" = htpasswd ]; then
    htpasswd -Bbn alice right-pw >"$REG_DIR/htpasswd"
    printf 'auth:\n  htpasswd:\n    realm: shale-bats\n    path: %s\n' "$REG_DIR/htpasswd" \
      >>"$REG_DIR/config.yml"
  fi
  docker-registry serve "$REG_DIR/config.yml" >"$REG_DIR/log" 2>&1 &
  REG_PID=$!
  echo "$REG_PID" >"$REG_DIR/pid"
  local i
  for i in $(seq 100); do
    curl -s -o /dev/null "http://$REG/v2/" && return 0
    sleep 0.05
  done
  echo "docker-registry did not start"; cat "$REG_DIR/log"; return 1
}

stop_registry() {
  if [ -f "$BATS_TEST_TMPDIR/registry/pid" ]; then
    local pid
    pid=$(cat "$BATS_TEST_TMPDIR/registry/pid")
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$BATS_TEST_TMPDIR/registry/pid"
  fi
}

# Layer blobs the registry received (PUTs that completed an upload), from its access log.
count_blob_puts() {
  grep -c '"PUT /v2/[^ ]*/blobs/uploads/[^ ]*digest=sha256' "$REG_DIR/log" || true
}

setup() {
  common_setup
  export SHALE_AUTH_FILE="$BATS_TEST_TMPDIR/auth/auth.json"
  import_busybox
}
teardown() {
  stop_registry
  awk -v r="$BATS_TEST_TMPDIR/fresh" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  if [ -d "$BATS_TEST_TMPDIR/podman" ]; then
    podman_ system reset -f >/dev/null 2>&1 || true
    awk -v r="$BATS_TEST_TMPDIR/podman" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo |
      sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  common_teardown
}

# A private podman (own root, runc, ulimits this machine allows; as in interop.bats).
podman_() {
  local d="$BATS_TEST_TMPDIR/podman"
  mkdir -p "$d"
  [ -f "$d/containers.conf" ] || cat >"$d/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
  CONTAINERS_CONF="$d/containers.conf" podman --root "$d/storage" --runroot "$d/run" \
    --storage-driver overlay "$@"
}

image_id() { shale inspect -f '{{.Id}}' "$1"; }

@test "libcurl is not linked: only registry commands load it (dlopen), and they work" {
  # readelf: the engine's NEEDED entries; every process would otherwise load libcurl's
  # ~30 libraries at start-up (docs/benchmarks.md).
  run readelf -d "$SHALE_BIN"
  [ "$status" -eq 0 ]
  [[ "$output" == *"(NEEDED)"* ]]
  [[ "$output" != *libcurl* ]]
  # A registry command opens it on first use (ld.so's LD_DEBUG=files names each load).
  start_registry
  shale tag busybox "$REG/dl/busybox:1"
  LD_DEBUG=files shale push "$REG/dl/busybox:1" 2>"$BATS_TEST_TMPDIR/ld.log" >/dev/null
  grep -q 'file=libcurl\.so\.4 .*dynamically loaded' "$BATS_TEST_TMPDIR/ld.log"
  LD_DEBUG=files shale images 2>"$BATS_TEST_TMPDIR/ld2.log" >/dev/null
  grep -q 'file=' "$BATS_TEST_TMPDIR/ld2.log"
  ! grep -q 'libcurl' "$BATS_TEST_TMPDIR/ld2.log" || false
}

@test "push busybox and a committed image, rmi, pull back: same ids" {
  start_registry
  shale run --name c1 busybox sh -c 'echo committed > /data.txt'
  shale commit c1 busybox:c1 >/dev/null
  shale rm c1 >/dev/null
  local base_id c1_id
  base_id=$(image_id busybox)
  c1_id=$(image_id busybox:c1)
  shale tag busybox "$REG/shale/busybox:latest"
  shale tag busybox:c1 "$REG/shale/busybox:c1"
  run shale push "$REG/shale/busybox:latest"
  [ "$status" -eq 0 ]
  [[ "$output" == *"The push refers to repository [$REG/shale/busybox]"* ]]
  [[ "$output" == *"latest: digest: sha256:"* ]]
  run shale push "$REG/shale/busybox:c1"
  [ "$status" -eq 0 ]
  # The base layer is already there: only the new layer is uploaded.
  [ "$(grep -c ': Pushed' <<<"$output")" -eq 1 ]
  [ "$(grep -c ': Layer already exists' <<<"$output")" -eq 1 ]

  shale rmi "$REG/shale/busybox:latest" "$REG/shale/busybox:c1" busybox busybox:c1 >/dev/null
  run shale images -q
  [ -z "$output" ]

  run shale pull "$REG/shale/busybox:latest"
  [ "$status" -eq 0 ]
  [[ "$output" == *"Pull complete"* ]]
  [[ "$output" == *"Status: Downloaded newer image for $REG/shale/busybox:latest"* ]]
  [ "$(image_id "$REG/shale/busybox:latest")" = "$base_id" ]
  local digest
  digest=$(grep -o 'Digest: sha256:[0-9a-f]*' <<<"$output" | cut -d' ' -f2)
  [ "$(shale inspect -f '{{json .RepoDigests}}' "$REG/shale/busybox:latest")" = "[\"$REG/shale/busybox@$digest\"]" ]
  # The second image shares the base layer: only the missing layer is fetched.
  run shale pull "$REG/shale/busybox:c1"
  [ "$status" -eq 0 ]
  [ "$(grep -c ': Already exists' <<<"$output")" -eq 1 ]
  [ "$(grep -c ': Pull complete' <<<"$output")" -eq 1 ]
  [ "$(image_id "$REG/shale/busybox:c1")" = "$c1_id" ]
  run shale run --rm "$REG/shale/busybox:c1" cat /data.txt
  [ "$output" = committed ]
  # Up to date: nothing fetched, said so.
  run shale pull "$REG/shale/busybox:c1"
  [[ "$output" == *"Status: Image is up to date for $REG/shale/busybox:c1"* ]]
  # Piped: no carriage returns, no escape sequences.
  ! grep -q $'\r' <<<"$output" || false
  ! grep -q $'\033' <<<"$output" || false
}

@test "push twice uploads each blob once; a pulled image pushes with the same manifest digest" {
  start_registry
  shale tag busybox "$REG/a/bb:1"
  run shale push "$REG/a/bb:1"
  [ "$status" -eq 0 ]
  local digest
  digest=$(grep -o 'digest: sha256:[0-9a-f]*' <<<"$output" | cut -d' ' -f2)
  [ "$(count_blob_puts)" -eq 2 ]   # one layer + the config
  run shale push "$REG/a/bb:1"
  [ "$status" -eq 0 ]
  [ "$(count_blob_puts)" -eq 2 ]
  # Another repository of the same registry: mounted, not uploaded.
  shale tag busybox "$REG/b/bb:1"
  run shale push "$REG/b/bb:1"
  [ "$status" -eq 0 ]
  [[ "$output" == *"Mounted from a/bb"* ]]
  [ "$(count_blob_puts)" -eq 2 ]   # the config mounted too (it is where the image was pushed)
  # Pull into an empty store, push back: same manifest digest, nothing uploaded.
  shale rmi -f "$REG/a/bb:1" "$REG/b/bb:1" busybox >/dev/null
  shale pull -q "$REG/a/bb:1" >/dev/null
  run shale push "$REG/a/bb:1"
  [ "$status" -eq 0 ]
  [[ "$output" == *"digest: $digest"* ]]
  [ "$(count_blob_puts)" -eq 2 ]
  # rmi forgets what pull and push kept: no blob, no distribution record is left.
  shale rmi "$REG/a/bb:1" >/dev/null
  [ -z "$(ls "$SHALE_ROOT/blobs/sha256")" ]
  [ -z "$(find "$SHALE_ROOT/image/overlay2/distribution" -type f 2>/dev/null)" ]
  # An imported image pushed (push makes its gzip), then removed: nothing left either.
  import_busybox
  shale tag busybox "$REG/c/bb:1"
  shale push -q "$REG/c/bb:1" >/dev/null
  [ -n "$(ls "$SHALE_ROOT/blobs/sha256")" ]
  shale rmi "$REG/c/bb:1" busybox >/dev/null
  [ -z "$(ls "$SHALE_ROOT/blobs/sha256")" ]
}

@test "pull -q prints only the reference; unknown tag and bad references fail with one line" {
  start_registry
  shale tag busybox "$REG/q/bb:1"
  shale push -q "$REG/q/bb:1" >/dev/null
  shale rmi "$REG/q/bb:1" >/dev/null
  run shale pull -q "$REG/q/bb:1"
  [ "$status" -eq 0 ]
  [ "$output" = "$REG/q/bb:1" ]
  run shale pull "$REG/q/bb:nope"
  [ "$status" -eq 1 ]
  [[ "$output" == *"registry $REG: manifest q/bb:nope: HTTP 404 manifest unknown"* ]]
  run shale pull "$REG/q/BB:1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"repository name must be lowercase"* ]]
  stop_registry
  run shale pull "$REG/q/bb:1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"registry $REG: cannot connect"* ]]
  [ "${#lines[@]}" -eq 2 ]  # "1: Pulling from", then the error
}

@test "login: wrong password fails in one line, right one is saved 0600, logout forgets" {
  start_registry htpasswd
  run shale login -u alice -p wrong-pw "$REG"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "shale: login $REG: registry $REG: wrong username or password" ]]
  [ ! -e "$SHALE_AUTH_FILE" ]
  shale tag busybox "$REG/p/bb:1"
  run shale push "$REG/p/bb:1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"shale login $REG"* ]]
  run bash -c "echo right-pw | '$SHALE_BIN' login -u alice --password-stdin '$REG'"
  [ "$status" -eq 0 ]
  [ "$output" = "Login Succeeded" ]
  [ "$(stat -c %a "$SHALE_AUTH_FILE")" = 600 ]
  [ "$(jq -r --arg r "$REG" '.auths[$r].auth' "$SHALE_AUTH_FILE" | base64 -d)" = "alice:right-pw" ]
  run shale push "$REG/p/bb:1"
  [ "$status" -eq 0 ]
  run shale logout "$REG"
  [ "$status" -eq 0 ]
  [ "$output" = "Removing login credentials for $REG" ]
  [ "$(jq -r --arg r "$REG" '.auths[$r] // "gone"' "$SHALE_AUTH_FILE")" = gone ]
  shale rmi "$REG/p/bb:1" >/dev/null
  run shale pull "$REG/p/bb:1"
  [ "$status" -eq 1 ]
}

@test "a corrupt blob in the registry is refused naming its digest; the store is unchanged" {
  start_registry
  shale tag busybox "$REG/c/bb:1"
  shale push -q "$REG/c/bb:1" >/dev/null
  shale rmi "$REG/c/bb:1" busybox >/dev/null
  local layer
  layer=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REG/v2/c/bb/manifests/1" | jq -r '.layers[0].digest')
  local hex=${layer#sha256:}
  local data="$REG_DIR/data/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
  [ -f "$data" ]
  # Same size, other bytes.
  local size
  size=$(stat -c %s "$data")
  head -c "$size" /dev/urandom >"$data"
  local before
  before=$(cd "$SHALE_ROOT" && find . -path ./tmp -prune -o -print | grep -v shale.lock | sort | md5sum)
  run shale pull "$REG/c/bb:1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"$layer"* ]]
  [[ "$output" == *"content has digest"* ]]
  [ "$(cd "$SHALE_ROOT" && find . -path ./tmp -prune -o -print | grep -v shale.lock | sort | md5sum)" = "$before" ]
  run shale images -q
  [ -z "$output" ]
}

@test "a pull killed with SIGKILL leaves no image, tag or layer; the next pull works" {
  start_registry
  # A layer big enough to be caught mid-way (random, so gzip cannot shrink it).
  local src="$BATS_TEST_TMPDIR/big"
  mkdir -p "$src"
  cp -a "$(busybox_rootfs)/." "$src/"
  head -c 60000000 /dev/urandom >"$src/random.bin"
  shale import "$src" big:1 >/dev/null
  local id
  id=$(image_id big:1)
  shale tag big:1 "$REG/k/big:1"
  shale push -q "$REG/k/big:1" >/dev/null
  shale rmi "$REG/k/big:1" big:1 busybox >/dev/null
  local delay
  for delay in 0.05 0.3 0.8; do
    "$SHALE_BIN" pull -q "$REG/k/big:1" >/dev/null 2>&1 &
    local pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # Whatever instant it died at: nothing visible (a pull that finished is the exception).
    if shale inspect "$REG/k/big:1" >/dev/null 2>&1; then
      shale rmi "$REG/k/big:1" >/dev/null
    fi
    run shale images -q
    [ -z "$output" ]
    [ -z "$(ls "$SHALE_ROOT/image/overlay2/layerdb/sha256" 2>/dev/null)" ]
  done
  # Killed for sure in the middle of the big layer's download: its ingest file is kept (the
  # recovery that other commands run spares it), and the next pull resumes from it.
  "$SHALE_BIN" pull -q "$REG/k/big:1" >/dev/null 2>&1 &
  local pid=$! i size=0
  for i in $(seq 400); do
    size=$(find "$SHALE_ROOT/tmp" -maxdepth 1 -name 'ingest-*' -size +2M -printf '%s\n' 2>/dev/null | head -1)
    [ -n "$size" ] && break
    sleep 0.01
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -n "$size" ]
  shale images -q >/dev/null
  local ingest
  ingest=$(ls "$SHALE_ROOT/tmp" | grep '^ingest-')
  [ -n "$ingest" ]
  [ -z "$(shale images -q)" ]
  # It may have been killed after the whole blob arrived (then there is nothing to fetch).
  local have blob_size
  have=$(stat -c %s "$SHALE_ROOT/tmp/$ingest")
  blob_size=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REG/v2/k/big/manifests/1" | jq '.layers[0].size')
  local ranged blob_gets
  ranged=$(grep -c '" 206 ' "$REG_DIR/log" || true)
  blob_gets=$(grep -c "\"GET /v2/k/big/blobs/sha256:${ingest#ingest-}" "$REG_DIR/log" || true)
  run shale pull "$REG/k/big:1"
  [ "$status" -eq 0 ]
  [ "$(image_id "$REG/k/big:1")" = "$id" ]
  if [ "$have" -eq "$blob_size" ]; then
    sleep 0.3  # the registry logs after answering
    # Verified from the file alone: no request for the blob.
    [ "$(grep -c "\"GET /v2/k/big/blobs/sha256:${ingest#ingest-}" "$REG_DIR/log" || true)" -eq "$blob_gets" ]
  else
    for i in $(seq 40); do
      [ "$(grep -c '" 206 ' "$REG_DIR/log" || true)" -gt "$ranged" ] && break
      sleep 0.05
    done
    [ "$(grep -c '" 206 ' "$REG_DIR/log" || true)" -gt "$ranged" ]  # a Range request, answered
  fi
  # Leftovers of the killed pulls were collected, the ingest file became the kept blob.
  [ -z "$(ls "$SHALE_ROOT/tmp")" ]
  # Only the image's own driver layer remains.
  [ "$(ls "$SHALE_ROOT/overlay2" | grep -vc '^l$')" -eq 1 ]
}

@test "push --compression-format zstd: OCI manifest of zstd layers made once; a 3-layer pull gives the same id; images --digests" {
  start_registry
  shale run --name c1 busybox sh -c 'echo one > /one' >/dev/null
  shale commit c1 l:2 >/dev/null
  shale rm c1 >/dev/null
  shale run --name c2 l:2 sh -c 'echo two > /two; rm /one' >/dev/null
  shale commit c2 l:3 >/dev/null
  shale rm c2 >/dev/null
  local id
  id=$(image_id l:3)
  shale tag l:3 "$REG/z/l:3"
  run shale push --compression-format zstd "$REG/z/l:3"
  [ "$status" -eq 0 ]
  local man
  man=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/z/l/manifests/3")
  [ "$(jq -r .mediaType <<<"$man")" = application/vnd.oci.image.manifest.v1+json ]
  [ "$(jq '.layers | length' <<<"$man")" -eq 3 ]
  [ "$(jq -r '[.layers[].mediaType] | unique | .[]' <<<"$man")" = application/vnd.oci.image.layer.v1.tar+zstd ]
  # The blob is real zstd.
  local first
  first=$(jq -r '.layers[0].digest' <<<"$man")
  curl -s "http://$REG/v2/z/l/blobs/$first" | zstd -d -c | tar -t >/dev/null
  # Another repository of the same registry: every layer mounted, nothing compressed again.
  local puts blobs_before
  puts=$(count_blob_puts)
  blobs_before=$(ls "$SHALE_ROOT/blobs/sha256" | wc -l)
  shale tag l:3 "$REG/z/other:3"
  run shale push --compression-format zstd "$REG/z/other:3"
  [ "$status" -eq 0 ]
  [[ "$output" == *"Mounted from z/l"* ]]
  [ "$(count_blob_puts)" -eq "$puts" ]
  [ "$(ls "$SHALE_ROOT/blobs/sha256" | wc -l)" -eq "$blobs_before" ]  # same blobs, same manifest
  # Pulled into an empty store (three layers, downloaded at once): the same image.
  local fresh="$BATS_TEST_TMPDIR/fresh"
  run env SHALE_ROOT="$fresh" "$SHALE_BIN" pull "$REG/z/l:3"
  [ "$status" -eq 0 ]
  [ "$(SHALE_ROOT="$fresh" "$SHALE_BIN" inspect -f '{{.Id}}' "$REG/z/l:3")" = "$id" ]
  run env SHALE_ROOT="$fresh" "$SHALE_BIN" run --rm "$REG/z/l:3" sh -c 'cat /two; ls /one 2>&1'
  [[ "$output" == *two*"No such file"* ]]
  local digest
  digest=sha256:$(printf %s "$man" | sha256sum | cut -d' ' -f1)
  run env SHALE_ROOT="$fresh" "$SHALE_BIN" images --digests
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == "REPOSITORY"*"TAG"*"DIGEST"*"IMAGE ID"* ]]
  [[ "$output" == *"$REG/z/l"*3*"$digest"* ]]
  run env SHALE_ROOT="$fresh" "$SHALE_BIN" images --format json
  [ "$(jq -r .Digest <<<"$output")" = "$digest" ]
  run env SHALE_ROOT="$fresh" "$SHALE_BIN" inspect -f '{{json .RepoDigests}}' "$REG/z/l:3"
  [ "$output" = "[\"$REG/z/l@$digest\"]" ]
}

@test "interop: skopeo reads what shale pushed; shale pulls what skopeo pushed" {
  command -v skopeo >/dev/null || skip "skopeo is not installed"
  start_registry
  shale run --name c1 busybox sh -c 'echo two > /two.txt'
  shale commit c1 busybox:two >/dev/null
  shale rm c1 >/dev/null
  local id
  id=$(image_id busybox:two)
  shale tag busybox:two "$REG/i/two:1"
  shale push -q "$REG/i/two:1" >/dev/null
  run skopeo inspect --tls-verify=false "docker://$REG/i/two:1"
  [ "$status" -eq 0 ]
  [ "$(jq '.Layers | length' <<<"$output")" -eq 2 ]
  skopeo copy -q --src-tls-verify=false "docker://$REG/i/two:1" \
    "docker-archive:$BATS_TEST_TMPDIR/two.tar:x/two:1"
  shale rmi busybox:two "$REG/i/two:1" >/dev/null
  shale load -i "$BATS_TEST_TMPDIR/two.tar" >/dev/null
  [ "$(image_id x/two:1)" = "$id" ]
  # skopeo pushes (converting to an OCI manifest and config), shale pulls: same layers.
  local layers
  layers=$(shale inspect -f '{{json .RootFS.Layers}}' x/two:1)
  skopeo copy -q --dest-tls-verify=false --format oci \
    "docker-archive:$BATS_TEST_TMPDIR/two.tar" "docker://$REG/i/sk:oci"
  shale rmi x/two:1 >/dev/null
  run shale pull "$REG/i/sk:oci"
  [ "$status" -eq 0 ]
  [ "$(shale inspect -f '{{json .RootFS.Layers}}' "$REG/i/sk:oci")" = "$layers" ]
  run shale run --rm "$REG/i/sk:oci" cat /two.txt
  [ "$output" = two ]
}

@test "pull of a multi-platform index picks the host or --platform" {
  command -v skopeo >/dev/null || skip "skopeo is not installed"
  start_registry
  shale tag busybox "$REG/m/bb:amd"
  shale push -q "$REG/m/bb:amd" >/dev/null
  local man size digest
  man=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REG/v2/m/bb/manifests/amd")
  size=$(printf %s "$man" | wc -c)
  digest=sha256:$(printf %s "$man" | sha256sum | cut -d' ' -f1)
  local idx
  idx=$(jq -cn --arg d "$digest" --argjson s "$size" '{schemaVersion:2,
    mediaType:"application/vnd.docker.distribution.manifest.list.v2+json",
    manifests:[{mediaType:"application/vnd.docker.distribution.manifest.v2+json",digest:$d,size:$s,
                platform:{architecture:"amd64",os:"linux"}}]}')
  curl -sf -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.list.v2+json' \
    --data-binary "$idx" "http://$REG/v2/m/bb/manifests/multi" >/dev/null
  shale rmi "$REG/m/bb:amd" >/dev/null
  run shale pull --platform linux/arm64 "$REG/m/bb:multi"
  [ "$status" -eq 1 ]
  [[ "$output" == *"no image for linux/arm64"*"linux/amd64"* ]]
  run shale pull --platform linux/amd64 "$REG/m/bb:multi"
  [ "$status" -eq 0 ]
  [ "$(image_id "$REG/m/bb:multi")" = "$(image_id busybox)" ]
  # The index is kept with the image (pushing it back keeps its digest) and goes with it.
  local idx_hex
  idx_hex=$(printf %s "$idx" | sha256sum | cut -d' ' -f1)
  [ -f "$SHALE_ROOT/blobs/sha256/$idx_hex" ]
  shale rmi "$REG/m/bb:multi" busybox >/dev/null
  [ ! -e "$SHALE_ROOT/blobs/sha256/$idx_hex" ]
  [ -z "$(ls "$SHALE_ROOT/blobs/sha256")" ]
}

@test "run --pull missing pulls an image that is not local; --pull never does not" {
  start_registry
  shale tag busybox "$REG/r/bb:1"
  shale push -q "$REG/r/bb:1" >/dev/null
  shale rmi "$REG/r/bb:1" >/dev/null
  run shale run --rm --pull never "$REG/r/bb:1" true
  [ "$status" -eq 125 ]
  run shale run --rm "$REG/r/bb:1" echo ran
  [ "$status" -eq 0 ]
  [[ "$output" == *"Unable to find image '$REG/r/bb:1' locally"* ]]
  [[ "$output" == *"ran"* ]]
  run shale create --pull always --name pc "$REG/r/bb:1" true
  [ "$status" -eq 0 ]
  [[ "$output" == *"Digest: sha256:"* ]]
  shale rm pc >/dev/null
}

@test "interop: podman pulls and runs what shale pushed; shale pulls what podman pushed" {
  command -v podman >/dev/null || skip "podman is not installed"
  start_registry
  shale run --name c1 busybox sh -c 'echo from-shale > /who.txt'
  shale commit -c 'CMD ["cat", "/who.txt"]' c1 busybox:who >/dev/null
  shale rm c1 >/dev/null
  shale tag busybox:who "$REG/pm/who:1"
  shale push -q "$REG/pm/who:1" >/dev/null
  run podman_ pull -q --tls-verify=false "$REG/pm/who:1"
  [ "$status" -eq 0 ]
  run podman_ run --rm --net=none "$REG/pm/who:1"
  [ "$status" -eq 0 ]
  [ "$output" = from-shale ]
  [ "$(podman_ image inspect -f '{{json .RootFS.Layers}}' "$REG/pm/who:1" | jq -c .)" = \
    "$(shale inspect -f '{{json .RootFS.Layers}}' "$REG/pm/who:1" | jq -c .)" ]
  podman_ tag "$REG/pm/who:1" "$REG/pm/back:1"
  podman_ push -q --tls-verify=false "$REG/pm/back:1"
  run shale pull "$REG/pm/back:1"
  [ "$status" -eq 0 ]
  [ "$(shale inspect -f '{{json .RootFS.Layers}}' "$REG/pm/back:1")" = \
    "$(shale inspect -f '{{json .RootFS.Layers}}' busybox:who)" ]
  run shale run --rm "$REG/pm/back:1"
  [ "$output" = from-shale ]
}
