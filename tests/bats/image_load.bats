#!/usr/bin/env bats
# Loading docker and OCI archives built here by hand (GNU tar, sha256sum, jq): the merged
# view against what Docker would show, shared layers, hostile input, corrupt manifests,
# 150 layers, and a load killed halfway.

load helpers

setup() {
  common_setup
  W="$BATS_TEST_TMPDIR/w"
  mkdir -p "$W"
}
teardown() { common_teardown; }


# oci_archive OUT NAME LAYER_TAR...: an OCI layout archive with gzip layers.
oci_archive() {
  local out="$1" name="$2"
  shift 2
  local d
  d=$(mktemp -d "$W/oci.XXXXXX")
  mkdir -p "$d/blobs/sha256"
  local diff_ids=() descs=() l
  for l in "$@"; do
    diff_ids+=("\"sha256:$(sha "$l")\"")
    gzip -n -c "$l" >"$d/layer.gz"
    local g
    g=$(sha "$d/layer.gz")
    descs+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$g\",\"size\":$(stat -c %s "$d/layer.gz")}")
    mv "$d/layer.gz" "$d/blobs/sha256/$g"
  done
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"created":"2024-01-02T03:04:05Z","rootfs":{"type":"layers","diff_ids":[%s]}}' "$(IFS=,; echo "${diff_ids[*]}")" >"$d/c"
  local c
  c=$(sha "$d/c")
  mv "$d/c" "$d/blobs/sha256/$c"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$c" "$(stat -c %s "$d/blobs/sha256/$c")" "$(IFS=,; echo "${descs[*]}")" >"$d/m"
  local m
  m=$(sha "$d/m")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$m" "$(stat -c %s "$d/m")" "$name" "${name##*:}" >"$d/index.json"
  mv "$d/m" "$d/blobs/sha256/$m"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
  (cd "$d" && tar -cf "$out" oci-layout blobs index.json)
  echo "sha256:$c"
}

# Three layers with whiteouts, an opaque dir, hardlinks and symlinks.
make_three_layers() {
  local s="$W/src"
  mkdir -p "$s/1/a/sub" "$s/1/keep" "$s/1/opq/deep" "$s/1/x.d"
  echo f1 >"$s/1/a/f1"; echo f2 >"$s/1/a/f2"; echo g >"$s/1/a/sub/g"
  echo k >"$s/1/keep/k1"; echo x >"$s/1/x"; echo o1 >"$s/1/opq/o1"; echo o2 >"$s/1/opq/deep/o2"
  ln -s a/f1 "$s/1/sl"; ln "$s/1/a/f1" "$s/1/hl"; chmod 0600 "$s/1/a/f2"; chmod 1777 "$s/1/x.d"
  setfattr -n user.shale -v one "$s/1/a/f1" 2>/dev/null || true
  mkdir -p "$s/2/a" "$s/2/opq" "$s/2/b"
  : >"$s/2/.wh.x"; : >"$s/2/a/.wh.f2"; : >"$s/2/opq/.wh..wh..opq"; echo o3 >"$s/2/opq/o3"
  echo new >"$s/2/b/new"; echo f1-changed >"$s/2/a/f1"
  mkdir -p "$s/3/a/sub" "$s/3/c"
  : >"$s/3/.wh.keep"; : >"$s/3/a/sub/.wh.g"; echo c >"$s/3/c/file"; ln "$s/3/c/file" "$s/3/c/hard2"
  ln -s /nonexistent "$s/3/dangling"
  for i in 1 2 3; do tar --xattrs --numeric-owner -C "$s/$i" -cf "$W/layer$i.tar" .; done
}

# What Docker shows: apply the layers by hand (whiteouts with rm, then GNU tar).
expected_tree() {
  local exp="$1"
  shift
  mkdir -p "$exp"
  local l e
  for l in "$@"; do
    tar -tf "$l" | while read -r e; do
      e="${e#./}"
      case "$(basename "$e")" in
        .wh..wh..opq) find "$exp/$(dirname "$e")" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || true ;;
        .wh.*) rm -rf "$exp/$(dirname "$e")/$(basename "$e" | sed 's/^\.wh\.//')" ;;
      esac
    done
    tar --xattrs --numeric-owner -C "$exp" --exclude='.wh.*' -xf "$l"
  done
}

listing() {
  (cd "$1" && find . -mindepth 1 -printf '%p %y %m %s %l\n' | grep -v ' d .* 0 $' | sort)
  (cd "$1" && find . -mindepth 1 -type d -printf '%p %y %m\n' | sort)
}

@test "a 3-layer docker archive: the merged view is what Docker would show" {
  make_three_layers
  id=$(docker_archive "$W/img.tar" three:v1 "$W/layer1.tar" "$W/layer2.tar" "$W/layer3.tar")
  run shale load -i "$W/img.tar"
  [ "$status" -eq 0 ]
  [ "$output" = "Loaded image: three:v1" ]
  [ "$(shale images -q --no-trunc three:v1)" = "$id" ]
  merged=$(shale mount three:v1)
  expected_tree "$W/exp" "$W/layer1.tar" "$W/layer2.tar" "$W/layer3.tar"
  diff -r --no-dereference "$W/exp" "$merged"
  diff <(listing "$W/exp") <(listing "$merged")
  [ ! -e "$merged/x" ] && [ ! -e "$merged/keep" ] && [ ! -e "$merged/opq/o1" ] && [ -e "$merged/opq/o3" ]
  [ "$(cat "$merged/hl")" = f1 ] && [ "$(cat "$merged/a/f1")" = f1-changed ]
  [ "$(readlink "$merged/dangling")" = /nonexistent ]
  shale umount three:v1
  # chainIDs as Docker computes them, and layerdb parents.
  d1=sha256:$(sha "$W/layer1.tar"); d2=sha256:$(sha "$W/layer2.tar")
  c2=sha256:$(printf '%s %s' "$d1" "$d2" | sha256sum | cut -d' ' -f1)
  [ "$(cat "$SHALE_ROOT/image/overlay2/layerdb/sha256/${c2#sha256:}/parent")" = "$d1" ]
  lower=$(shale inspect three:v1 | jq -r '.[0].GraphDriver.Data.LowerDir')
  [ "$(echo "$lower" | tr ':' '\n' | wc -l)" -eq 2 ]
  for p in $(echo "$lower" | tr ':' ' '); do [ -d "$p" ]; done
}

@test "the same layers as an OCI archive with gzip layers give the same image" {
  make_three_layers
  id=$(oci_archive "$W/oci.tar" localhost/three:oci "$W/layer1.tar" "$W/layer2.tar" "$W/layer3.tar")
  run shale load -i "$W/oci.tar"
  [ "$status" -eq 0 ]
  [ "$output" = "Loaded image: localhost/three:oci" ]
  [ "$(shale images -q --no-trunc localhost/three:oci)" = "$id" ]
  merged=$(shale mount localhost/three:oci)
  expected_tree "$W/exp" "$W/layer1.tar" "$W/layer2.tar" "$W/layer3.tar"
  diff -r --no-dereference "$W/exp" "$merged"
  diff <(listing "$W/exp") <(listing "$merged")
  shale umount localhost/three:oci
  # The gzip blobs are kept as received; save gives them back, and docker-archive save
  # gives the uncompressed tars with the same diffIDs.
  entry="$SHALE_ROOT/image/overlay2/layerdb/sha256/$(sha "$W/layer1.tar")"
  [ "$(cat "$entry/blob-media-type")" = application/vnd.oci.image.layer.v1.tar+gzip ]
  shale save -o "$W/back.tar" localhost/three:oci
  mkdir "$W/back" && tar -C "$W/back" -xf "$W/back.tar"
  for i in 1 2 3; do
    f=$(jq -r ".[0].Layers[$((i - 1))]" "$W/back/manifest.json")
    [ "$(sha "$W/back/$f")" = "$(sha "$W/layer$i.tar")" ]
  done
  shale rmi localhost/three:oci
  run shale load -i "$W/back.tar"
  [ "$status" -eq 0 ]
  [ "$(shale images -q --no-trunc)" = "$id" ]
}

@test "rmi keeps layers another image shares" {
  mkdir -p "$W/base" "$W/a" "$W/b"
  echo base >"$W/base/base"; echo a >"$W/a/a"; echo b >"$W/b/b"
  for l in base a b; do tar -C "$W/$l" -cf "$W/$l.tar" .; done
  docker_archive "$W/ia.tar" img:a "$W/base.tar" "$W/a.tar" >/dev/null
  docker_archive "$W/ib.tar" img:b "$W/base.tar" "$W/b.tar" >/dev/null
  shale load -i "$W/ia.tar"
  shale load -i "$W/ib.tar"
  [ "$(ls "$SHALE_ROOT/image/overlay2/layerdb/sha256" | wc -l)" -eq 3 ]
  db="$SHALE_ROOT/image/overlay2/layerdb/sha256"
  base_cache=$(cat "$db/$(sha "$W/base.tar")/cache-id")
  a_chain=$(printf 'sha256:%s sha256:%s' "$(sha "$W/base.tar")" "$(sha "$W/a.tar")" | sha256sum | cut -d' ' -f1)
  a_cache=$(cat "$db/$a_chain/cache-id")
  run shale rmi img:a
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "Untagged: img:a" ]
  [ "${lines[2]}" = "Deleted: sha256:$a_chain" ]
  [ "${#lines[@]}" -eq 3 ]
  [ -d "$SHALE_ROOT/overlay2/$base_cache/diff" ]
  [ ! -e "$SHALE_ROOT/overlay2/$a_cache" ]
  [ ! -e "$db/$a_chain" ]
  merged=$(shale mount img:b)
  [ "$(cat "$merged/base") $(cat "$merged/b")" = "base b" ]
  [ ! -e "$merged/a" ]
  shale umount img:b
}

# hostile_layer OUT KIND: layer tars no honest tool writes (python's tarfile).
hostile_layer() {
  python3 - "$1" "$2" "$W/outside" <<'PY'
import io, sys, tarfile
out, kind, outside = sys.argv[1:4]
t = tarfile.open(out, "w", format=tarfile.PAX_FORMAT)
def reg(name, data=b"pwned\n"):
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
def link(name, target, type_):
    i = tarfile.TarInfo(name); i.type = type_; i.linkname = target; t.addfile(i)
if kind == "dotdot":
    reg("ok"); reg("../../../../../../" + outside.lstrip("/") + "/dotdot")
elif kind == "symlink":
    link("evil", outside, tarfile.SYMTYPE); reg("evil/symlinked")
elif kind == "hardlink":
    link("passwd", "/etc/passwd", tarfile.LNKTYPE); reg("passwd", b"root::0:0::/:/bin/sh\n")
elif kind == "hardlink-dotdot":
    link("passwd", "../../../../../../../etc/passwd", tarfile.LNKTYPE)
t.close()
PY
}

@test "hostile archives are refused, name the entry and leave nothing anywhere" {
  mkdir -p "$W/outside"
  passwd_before=$(sha /etc/passwd)
  for kind in dotdot symlink hardlink hardlink-dotdot; do
    hostile_layer "$W/$kind.tar" "$kind"
    docker_archive "$W/$kind-img.tar" "evil:$kind" "$W/$kind.tar" >/dev/null
    run shale load -i "$W/$kind-img.tar"
    echo "$kind: $output"
    [ "$status" -eq 1 ]
    case $kind in
      dotdot) [[ "$output" == *"dotdot"* ]] ;;
      symlink) [[ "$output" == *"symlinked"* || "$output" == *"evil"* ]] ;;
      hardlink*) [[ "$output" == *"passwd"* ]] ;;
    esac
    [ -z "$(ls -A "$W/outside")" ]
    [ "$(sha /etc/passwd)" = "$passwd_before" ]
    [ -z "$(shale images -q)" ]
    [ -z "$(ls -A "$SHALE_ROOT/tmp")" ]
    [ -z "$(ls "$SHALE_ROOT/image/overlay2/layerdb/sha256")" ]
    [ "$(ls "$SHALE_ROOT/overlay2")" = l ]
    [ -z "$(ls "$SHALE_ROOT/blobs/sha256")" ]
  done
  [ ! -e /dotdot ] && [ ! -e "$W/dotdot" ]
}

@test "a manifest naming a wrong diffID is refused and leaves no trace" {
  import_busybox
  before=$(find "$SHALE_ROOT" -path "$SHALE_ROOT/tmp" -prune -o -print | sort)
  mkdir -p "$W/l1" "$W/l2"
  echo one >"$W/l1/one"; echo two >"$W/l2/two"
  tar -C "$W/l1" -cf "$W/l1.tar" .; tar -C "$W/l2" -cf "$W/l2.tar" .
  docker_archive "$W/good.tar" good:1 "$W/l1.tar" "$W/l2.tar" >/dev/null
  # Same archive, but the second layer's bytes changed after the config was written.
  mkdir "$W/bad" && tar -C "$W/bad" -xf "$W/good.tar"
  echo changed >"$W/l2/two"; tar -C "$W/l2" -cf "$W/bad/l2/layer.tar" .
  (cd "$W/bad" && tar -cf "$W/bad.tar" *)
  run shale load -i "$W/bad.tar"
  [ "$status" -eq 1 ]
  [[ "$output" == *"layer sha256:$(sha "$W/l2.tar"): content has digest sha256:$(sha "$W/bad/l2/layer.tar"), manifest says sha256:$(sha "$W/l2.tar")"* ]]
  after=$(find "$SHALE_ROOT" -path "$SHALE_ROOT/tmp" -prune -o -print | sort)
  [ "$before" = "$after" ]
  [ -z "$(ls -A "$SHALE_ROOT/tmp")" ]
  # The OCI path checks the blob digest against the descriptor too.
  oci_archive "$W/oci.tar" localhost/bad:1 "$W/l1.tar" >/dev/null
  mkdir "$W/o" && tar -C "$W/o" -xf "$W/oci.tar"
  blob=$(jq -r '.layers[0].digest' "$W/o/blobs/sha256/$(jq -r '.manifests[0].digest' "$W/o/index.json" | cut -d: -f2)")
  gzip -n -c "$W/l2.tar" >"$W/o/blobs/sha256/${blob#sha256:}"
  (cd "$W/o" && tar -cf "$W/oci-bad.tar" oci-layout blobs index.json)
  run shale load -i "$W/oci-bad.tar"
  [ "$status" -eq 1 ]
  [[ "$output" == *"manifest says $blob"* ]]
  after=$(find "$SHALE_ROOT" -path "$SHALE_ROOT/tmp" -prune -o -print | sort)
  [ "$before" = "$after" ]
}

@test "a 150-layer image loads and mounts" {
  layers=()
  for i in $(seq 1 150); do
    mkdir -p "$W/s$i/layers"
    echo "$i" >"$W/s$i/layers/$i"
    [ "$i" -gt 1 ] && : >"$W/s$i/layers/.wh.$((i - 1))"
    tar -C "$W/s$i" -cf "$W/s$i.tar" .
    layers+=("$W/s$i.tar")
  done
  docker_archive "$W/deep.tar" deep:150 "${layers[@]}" >/dev/null
  run shale load -i "$W/deep.tar"
  [ "$status" -eq 0 ]
  [ "$(shale inspect deep:150 | jq '.[0].RootFS.Layers | length')" -eq 150 ]
  merged=$(shale mount deep:150)
  [ "$(ls "$merged/layers")" = 150 ]
  shale umount deep:150
  shale rmi deep:150
  [ "$(ls "$SHALE_ROOT/overlay2")" = l ]
}

@test "a load killed halfway leaves a store the next command reads" {
  import_busybox
  mkdir -p "$W/big"
  head -c 400M /dev/urandom >"$W/big/blob" 2>/dev/null
  tar -C "$W/big" -cf "$W/big.tar" .
  docker_archive "$W/bigimg.tar" big:1 "$W/big.tar" >/dev/null
  "$SHALE_BIN" load -i "$W/bigimg.tar" >/dev/null 2>&1 &
  pid=$!
  # Kill it once it is writing the layer.
  for _ in $(seq 1 100); do
    [ -n "$(find "$SHALE_ROOT/overlay2" -name blob -size +1M 2>/dev/null)" ] && break
    sleep 0.05
  done
  kill -9 "$pid"
  wait "$pid" || true
  run shale images
  [ "$status" -eq 0 ]
  [[ "$output" == *busybox* ]]
  [[ "$output" != *big* ]]
  # The reader (or this writer) cleaned up: nothing of the dead load is left.
  shale tag busybox busybox:after
  [ -z "$(ls -A "$SHALE_ROOT/tmp")" ]
  [ "$(ls "$SHALE_ROOT/overlay2" | wc -l)" -eq 2 ]
  [ -z "$(ls -A "$SHALE_ROOT/overlay2" | grep '^\.' || true)" ]  # no driver staging dirs
  run shale load -i "$W/bigimg.tar"
  [ "$status" -eq 0 ]
  [ "$output" = "Loaded image: big:1" ]
}

@test "large gzip layers stream from a file and from a pipe; save gives the blob back" {
  mkdir -p "$W/big/data"
  head -c 3M /dev/urandom >"$W/big/data/random"
  seq 1 200000 >"$W/big/data/text"
  tar -C "$W/big" -cf "$W/big.tar" .
  id=$(oci_archive "$W/big-oci.tar" localhost/big:gz "$W/big.tar")
  run shale load -i "$W/big-oci.tar"
  [ "$status" -eq 0 ]
  [ "$(shale images -q --no-trunc)" = "$id" ]
  merged=$(shale mount localhost/big:gz)
  cmp "$W/big/data/random" "$merged/data/random"
  shale umount localhost/big:gz
  shale save --format oci-archive -o "$W/again.tar" localhost/big:gz
  mkdir "$W/again" "$W/orig"
  tar -C "$W/again" -xf "$W/again.tar"; tar -C "$W/orig" -xf "$W/big-oci.tar"
  # The gzip blob comes back byte for byte.
  for b in "$W"/orig/blobs/sha256/*; do
    [ "$(stat -c %s "$b")" -lt 1000000 ] && continue
    cmp "$b" "$W/again/blobs/sha256/$(basename "$b")"
  done
  shale rmi localhost/big:gz
  run bash -c "cat '$W/big-oci.tar' | '$SHALE_BIN' load"
  [ "$status" -eq 0 ]
  [ "$output" = "Loaded image: localhost/big:gz" ]
  [ -z "$(ls -A "$SHALE_ROOT/tmp")" ]
}
