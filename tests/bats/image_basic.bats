#!/usr/bin/env bats
# The built-in busybox image: import, the overlay2 and layerdb files Docker would have,
# images/tag/rmi/history, save|load round trips.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

@test "import busybox: images lists it, inspect shows layers and real GraphDriver dirs" {
  run shale import "$(busybox_rootfs)" busybox:latest
  [ "$status" -eq 0 ]
  [[ "$output" =~ ^sha256:[0-9a-f]{64}$ ]]
  id="$output"
  run shale images
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" =~ ^REPOSITORY\ +TAG\ +IMAGE\ ID\ +CREATED\ +SIZE$ ]]
  [[ "${lines[1]}" =~ ^busybox\ +latest\ +${id:7:12}\  ]]
  run shale images -q
  [ "$output" = "${id:7:12}" ]
  run shale images --format json
  [ "$(echo "$output" | jq -r .Repository)" = busybox ]

  json=$(shale inspect busybox)
  [ "$(echo "$json" | jq -r '.[0].Id')" = "$id" ]
  [ "$(echo "$json" | jq -r '.[0].RootFS.Type')" = layers ]
  [ "$(echo "$json" | jq -r '.[0].RootFS.Layers | length')" = 1 ]
  [ "$(echo "$json" | jq -r '.[0].GraphDriver.Name')" = overlay2 ]
  upper=$(echo "$json" | jq -r '.[0].GraphDriver.Data.UpperDir')
  [ -x "$upper/bin/busybox" ]
  [ "$(echo "$json" | jq -r '.[0].GraphDriver.Data.LowerDir')" = null ]
  [ "$(echo "$json" | jq -r '.[0].Architecture')/$(echo "$json" | jq -r '.[0].Os')" = amd64/linux ]
  # The image id is the sha256 of the config bytes on disk.
  cfg="$SHALE_ROOT/image/overlay2/imagedb/content/sha256/${id#sha256:}"
  [ "sha256:$(sha256sum "$cfg" | cut -d' ' -f1)" = "$id" ]
}

@test "import keeps Docker's overlay2 and layerdb layout" {
  import_busybox
  diff_id=$(shale inspect busybox | jq -r '.[0].RootFS.Layers[0]')
  entry="$SHALE_ROOT/image/overlay2/layerdb/sha256/${diff_id#sha256:}"
  [ "$(cat "$entry/diff")" = "$diff_id" ]
  [ -s "$entry/size" ]
  [ ! -e "$entry/parent" ]
  cache=$(cat "$entry/cache-id")
  [[ "$cache" =~ ^[0-9a-f]{64}$ ]]
  layer="$SHALE_ROOT/overlay2/$cache"
  [ -d "$layer/diff" ]
  link=$(cat "$layer/link")
  [ "${#link}" -eq 26 ]
  [ "$(readlink "$SHALE_ROOT/overlay2/l/$link")" = "../$cache/diff" ]
  # A plain layer tar is kept as its tar-split (docs/layout.md), not as a second copy; save
  # rebuilds the tar from it and diff/.
  [ -s "$entry/tar-split.zst" ]
  [ ! -e "$entry/blob-digest" ]
  shale save busybox | tar -xOf - "${diff_id#sha256:}/layer.tar" | sha256sum | grep -q "^${diff_id#sha256:} "
  grep -q '"busybox":{"busybox:latest":"sha256:' "$SHALE_ROOT/image/overlay2/repositories.json"
  # Importing the same directory twice gives the same diffID (deterministic tar).
  run shale import "$(busybox_rootfs)" busybox:again
  [ "$status" -eq 0 ]
  [ "$(shale inspect busybox:again | jq -r '.[0].RootFS.Layers[0]')" = "$diff_id" ]
  [ "$(ls "$SHALE_ROOT/image/overlay2/layerdb/sha256" | wc -l)" -eq 1 ]
  [ -z "$(ls -A "$SHALE_ROOT/tmp")" ]
}

@test "import a tarball, stdin, with -c changes and -m" {
  tar -C "$(busybox_rootfs)" -czf "$BATS_TEST_TMPDIR/bb.tgz" .
  run shale import -c 'CMD ["sh"]' -c 'ENV A=1 B=two' -m "from a tgz" "$BATS_TEST_TMPDIR/bb.tgz" bb:tgz
  [ "$status" -eq 0 ]
  json=$(shale inspect bb:tgz)
  [ "$(echo "$json" | jq -c '.[0].Config.Cmd')" = '["sh"]' ]
  [ "$(echo "$json" | jq -c '.[0].Config.Env')" = '["A=1","B=two"]' ]
  [ "$(echo "$json" | jq -r '.[0].Comment')" = "from a tgz" ]
  run bash -c "'$SHALE_BIN' import - bb:stdin < '$BATS_TEST_TMPDIR/bb.tgz'"
  [ "$status" -eq 0 ]
  [ "$(shale inspect bb:stdin | jq -r '.[0].RootFS.Layers[0]')" = "$(echo "$json" | jq -r '.[0].RootFS.Layers[0]')" ]
  run shale history bb:stdin
  [[ "$output" == *"Imported from -"* ]]
  run shale import -c 'FROBNICATE x' "$BATS_TEST_TMPDIR/bb.tgz"
  [ "$status" -eq 1 ]
  [[ "$output" == *"FROBNICATE"* ]]
}

@test "tag, rmi and history basics" {
  import_busybox
  id=$(shale images -q --no-trunc)
  shale tag busybox busybox:2
  shale tag busybox docker.io/library/other
  run shale images
  [ "${#lines[@]}" -eq 4 ]
  [[ "$output" == *"other "*latest* ]]
  # By id, an image with several tags needs -f (docker's message).
  run shale rmi "${id:7:12}"
  [ "$status" -eq 1 ]
  [[ "$output" == *"must be forced"*"multiple repositories"* ]]
  run shale rmi busybox:2
  [ "$status" -eq 0 ]
  [ "$output" = "Untagged: busybox:2" ]
  run shale rmi other
  [ "$output" = "Untagged: other:latest" ]
  run shale history busybox
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" =~ ^IMAGE\ +CREATED\ +CREATED\ BY\ +SIZE\ +COMMENT$ ]]
  [[ "${lines[1]}" == "${id:7:12}"*"Imported from "* ]]
  run shale history --no-trunc -q busybox
  [ "$output" = "$id" ]
  run shale rmi busybox
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "Untagged: busybox:latest" ]
  [ "${lines[1]}" = "Deleted: $id" ]
  run shale images -q
  [ -z "$output" ]
  [ -z "$(ls "$SHALE_ROOT/image/overlay2/layerdb/sha256")" ]
  [ "$(ls "$SHALE_ROOT/overlay2")" = l ]
  [ -z "$(ls "$SHALE_ROOT/blobs/sha256")" ]
  run shale rmi busybox
  [ "$status" -eq 1 ]
  [[ "$output" == *"No such image: busybox"* ]]
}

@test "resolve: full id, sha256: id, unique prefix, ambiguous prefix" {
  import_busybox
  id=$(shale images -q --no-trunc)
  for ref in "$id" "${id#sha256:}" "${id:7:5}" docker.io/library/busybox:latest library/busybox; do
    run shale history -q --no-trunc "$ref"
    [ "$status" -eq 0 ]
    [ "$output" = "$id" ]
  done
  run shale history nosuch
  [ "$status" -eq 1 ]
  [ "$output" = "shale: history nosuch: No such image: nosuch" ]
}

@test "save | load round trip keeps the image id (docker-archive and oci-archive)" {
  import_busybox
  id=$(shale images -q --no-trunc)
  layers=$(shale inspect busybox | jq -c '.[0].RootFS.Layers')
  shale save -o "$BATS_TEST_TMPDIR/bb.tar" busybox:latest
  tar -tf "$BATS_TEST_TMPDIR/bb.tar" | grep -qx manifest.json
  tar -xOf "$BATS_TEST_TMPDIR/bb.tar" manifest.json | jq -e '.[0].RepoTags == ["busybox:latest"]'
  shale save --format oci-archive busybox > "$BATS_TEST_TMPDIR/bb-oci.tar"
  tar -xOf "$BATS_TEST_TMPDIR/bb-oci.tar" index.json |
    jq -e '.manifests[0].annotations["io.containerd.image.name"] == "docker.io/library/busybox:latest"'
  shale rmi busybox
  run shale load -i "$BATS_TEST_TMPDIR/bb.tar"
  [ "$status" -eq 0 ]
  [ "$output" = "Loaded image: busybox:latest" ]
  [ "$(shale images -q --no-trunc)" = "$id" ]
  [ "$(shale inspect busybox | jq -c '.[0].RootFS.Layers')" = "$layers" ]
  shale rmi busybox
  run bash -c "'$SHALE_BIN' load < '$BATS_TEST_TMPDIR/bb-oci.tar'"
  [ "$status" -eq 0 ]
  [ "$output" = "Loaded image: busybox:latest" ]
  [ "$(shale images -q --no-trunc)" = "$id" ]
  # Through a pipe (not seekable) too.
  shale rmi busybox
  run bash -c "cat '$BATS_TEST_TMPDIR/bb.tar' | '$SHALE_BIN' load -q"
  [ "$status" -eq 0 ]
  [ "$(shale images -q --no-trunc)" = "$id" ]
  # save refuses a terminal only; a missing image is an error naming it.
  run shale save nosuch -o "$BATS_TEST_TMPDIR/x.tar"
  [ "$status" -eq 1 ]
  [[ "$output" == *"No such image: nosuch"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/x.tar" ]
}

@test "mount shows the image read-only; umount removes the mount" {
  import_busybox
  run shale mount busybox
  [ "$status" -eq 0 ]
  merged="$output"
  [ -x "$merged/bin/busybox" ]
  grep -q '^root:' "$merged/etc/passwd"
  ! touch "$merged/newfile" 2>/dev/null || false
  shale umount busybox
  ! mountpoint -q "$merged" || false
}

@test "an ambiguous id prefix is an error" {
  import_busybox
  # 17 images give two that share their first hex digit (pigeonhole).
  for i in $(seq 1 16); do shale import -m "copy $i" "$(busybox_rootfs)" >/dev/null; done
  p=$(shale images -q | cut -c1 | sort | uniq -d | head -1)
  [ -n "$p" ]
  run shale history "$p"
  [ "$status" -eq 1 ]
  [[ "$output" == *"ambiguous"* ]]
  # All 17 share one layer.
  [ "$(ls "$SHALE_ROOT/image/overlay2/layerdb/sha256" | wc -l)" -eq 1 ]
}
