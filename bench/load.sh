#!/usr/bin/env bash
# Load speed: `shale load` of a large single-layer image (debootstrap --variant=minbase
# bookworm, ~120 MB of files) against plain tar extraction of the same layer, and against
# `podman load`, in one run on a fresh loop-mounted ext4 (/ is mounted with discard, which
# distorts IO timing).
#
# Caches are kept warm, the same way for every command: the inputs live on the loop file
# system, hyperfine does one untimed warm-up run per command, and --prepare removes the
# previous output before each run. Every tar run ends with `sync -f` of its output, because
# shale (and podman) make the layer durable before they commit it: all commands are timed
# to durable data.
# Targets: shale plain <= 1.1x `tar -xf`, shale gzip <= 0.8x `tar -xzf` (both sides end with
# their data synced).
# Usage: bench/load.sh   (root; RUNS=5 by default; the median is reported)
BENCH_MNT="${BENCH_MNT:-/mnt/shale-bench-load}"
source "$(dirname "$0")/lib.sh"
RUNS="${RUNS:-5}"
trap bench_cleanup EXIT

need_pkg hyperfine hyperfine
need_pkg pigz pigz
need_pkg jq jq
if ! command -v podman >/dev/null; then
  need_pkg podman podman || true
fi
[ -x "$SHALE" ] || { echo "bench: $SHALE not built" >&2; exit 1; }
rootfs=$(bench_debootstrap_rootfs)

bench_loop_mount
M="$BENCH_MNT"

# The layer, plain and gzip, and the two archives around it.
tar --numeric-owner --xattrs -C "$rootfs" -cf "$M/layer.tar" .
# gzip, not pigz: registries and docker push write single-stream gzip (Go compress/gzip).
gzip -6 -n -c "$M/layer.tar" >"$M/layer.tar.gz"
sha() { sha256sum "$1" | cut -d' ' -f1; }
diff_id=$(sha "$M/layer.tar")
config=$(printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["bash"]},"created":"2024-01-01T00:00:00Z","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff_id")
cfg=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
d=$(mktemp -d "$M/docker.XXXXXX")
mkdir "$d/$diff_id"
ln "$M/layer.tar" "$d/$diff_id/layer.tar"
printf '%s' "$config" >"$d/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["big:latest"],"Layers":["%s/layer.tar"]}]' "$cfg" "$diff_id" >"$d/manifest.json"
(cd "$d" && tar -cf "$M/docker.tar" "$diff_id" "$cfg.json" manifest.json)
o=$(mktemp -d "$M/oci.XXXXXX")
mkdir -p "$o/blobs/sha256"
gz=$(sha "$M/layer.tar.gz")
ln "$M/layer.tar.gz" "$o/blobs/sha256/$gz"
printf '%s' "$config" >"$o/blobs/sha256/$cfg"
manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$cfg" "${#config}" "$gz" "$(stat -c %s "$M/layer.tar.gz")")
man=$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)
printf '%s' "$manifest" >"$o/blobs/sha256/$man"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/big:oci","org.opencontainers.image.ref.name":"oci"}}]}' \
  "$man" "${#manifest}" >"$o/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$o/oci-layout"
(cd "$o" && tar -cf "$M/oci.tar" oci-layout blobs index.json)
rm -rf "$d" "$o"
echo "bench: layer.tar $(du -h --apparent-size "$M/layer.tar" | cut -f1), layer.tar.gz $(du -h --apparent-size "$M/layer.tar.gz" | cut -f1), $(tar -tf "$M/layer.tar" | wc -l) entries" >&2

x="$M/x"
cmds=(
  --prepare "rm -rf $x" -n "tar -xf" "mkdir -p $x && tar -C $x -xf $M/layer.tar && sync -f $x"
  --prepare "rm -rf $x" -n "tar -xzf" "mkdir -p $x && tar -C $x -xzf $M/layer.tar.gz && sync -f $x"
  --prepare "rm -rf $x" -n "tar -I pigz -xf" "mkdir -p $x && tar -C $x -I pigz -xf $M/layer.tar.gz && sync -f $x"
  --prepare "rm -rf $M/sr" -n "shale load (docker, plain)" "SHALE_NO_PROGRESS=1 $SHALE --root $M/sr load -q -i $M/docker.tar"
  --prepare "rm -rf $M/sr" -n "shale load (oci, gzip)" "SHALE_NO_PROGRESS=1 $SHALE --root $M/sr load -q -i $M/oci.tar"
)
if command -v podman >/dev/null; then
  mkdir -p "$M/pmconf"
  printf '[engine]\nruntime = "runc"\n' >"$M/pmconf/containers.conf"
  cmds+=(--prepare "rm -rf $M/pm" -n "podman load (docker, plain)"
    "CONTAINERS_CONF=$M/pmconf/containers.conf podman --root $M/pm/storage --runroot $M/pm/run --storage-driver overlay load -q -i $M/docker.tar")
else
  echo "bench: podman is not installed (apt-get install podman); skipping it" >&2
fi
hyperfine --warmup 1 --runs "$RUNS" --export-json "$M/load.json" "${cmds[@]}" >&2
# Sanity: the loaded image is what was archived.
got=$("$SHALE" --root "$M/sr" images -q --no-trunc)
[ "$got" = "sha256:$cfg" ] || { echo "bench: loaded image id $got, expected sha256:$cfg" >&2; exit 1; }
echo "bench: the layer's tar-split: $(du -ch "$M"/sr/image/overlay2/layerdb/sha256/*/tar-split.zst | tail -1 | cut -f1)" >&2

med() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median' "$M/load.json"; }
printf '\n%-30s %10s\n' "command (median of $RUNS, warm)" "seconds"
jq -r '.results[] | "\(.command)\t\(.median)"' "$M/load.json" |
  while IFS=$'\t' read -r n s; do printf '%-30s %10.3f\n' "$n" "$s"; done
ratio() { echo "scale=2; $1 / $2" | bc; }
echo
target() {  # target RATIO MAX
  if [ "$(echo "$1 <= $2" | bc)" = 1 ]; then echo "(target <= $2: met)"; else echo "(target <= $2: MISSED)"; fi
}
r_plain=$(ratio "$(med 'shale load (docker, plain)')" "$(med 'tar -xf')")
r_gzip=$(ratio "$(med 'shale load (oci, gzip)')" "$(med 'tar -xzf')")
echo "shale plain / tar -xf:          $r_plain $(target "$r_plain" 1.1)"
echo "shale gzip  / tar -xzf:         $r_gzip $(target "$r_gzip" 0.8)"
echo "shale gzip  / tar -I pigz -xf:  $(ratio "$(med 'shale load (oci, gzip)')" "$(med 'tar -I pigz -xf')")"
if [ -n "$(med 'podman load (docker, plain)')" ]; then
  echo "shale plain / podman load:      $(ratio "$(med 'shale load (docker, plain)')" "$(med 'podman load (docker, plain)')")"
fi
rm -rf "$M/pm"
