#!/usr/bin/env bash
# Pull speed: `shale pull` vs `podman pull` vs `skopeo copy docker://… containers-storage:`
# of the Debian minbase image (one ~90 MB gzip layer, pushed once by skopeo) from a local
# docker-registry, each into a fresh store, in one run. Then: a pull of an image whose layers
# are all present, counted in the registry's access log (requests and blob GETs). Then the
# same rootfs as four layers: shale downloading one layer at a time vs three at once (the
# default) vs podman.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry-lib.sh"
bench_registry_setup
M="$BENCH_MNT"
skopeo copy -q --dest-tls-verify=false "docker-archive:$M/minbase.tar" "docker://$REG/bench/minbase:1"
echo "bench: layer blob $(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$REG/v2/bench/minbase/manifests/1" | jq '.layers[0].size') bytes" >&2
podman_bench info >/dev/null 2>&1 || true
SK="containers-storage:[overlay@$M/sk/storage+$M/sk/run]"
hyperfine --runs "${RUNS:-5}" --export-markdown "$M/pull.md" \
  --prepare "rm -rf $M/sr" "$SHALE --root $M/sr pull -q $REG/bench/minbase:1" \
  --prepare "$M/podman.sh rmi -af >/dev/null 2>&1 || true" \
  "$M/podman.sh pull -q --tls-verify=false $REG/bench/minbase:1" \
  --prepare "awk -v r=$M/sk 'index(\$5, r) == 1 { print \$5 }' /proc/self/mountinfo | sort -r | xargs -r umount -l; rm -rf $M/sk" \
  "skopeo copy -q --src-tls-verify=false docker://$REG/bench/minbase:1 ${SK}bench/minbase:1"
cat "$M/pull.md"
# All layers present: one manifest request, no blob transfer.
before=$(grep -c '"GET /v2/' "$REG_LOG" || true)
blobs_before=$(grep -c '"GET /v2/[^ ]*/blobs/' "$REG_LOG" || true)
"$SHALE" --root "$M/sr" pull -q "$REG/bench/minbase:1" >/dev/null
after=$(grep -c '"GET /v2/' "$REG_LOG" || true)
blobs_after=$(grep -c '"GET /v2/[^ ]*/blobs/' "$REG_LOG" || true)
echo "pull of a present image: $((after - before)) GET requests (/v2/ ping + manifest), $((blobs_after - blobs_before)) blob GETs"

# Four layers: downloads in parallel, extraction in order following them.
bench_layered_archive
skopeo copy -q --dest-tls-verify=false "docker-archive:$M/layers4.tar" "docker://$REG/bench/layers4:1"
hyperfine --runs "${RUNS:-5}" --export-markdown "$M/pull4.md" \
  --prepare "rm -rf $M/sr" "SHALE_MAX_DOWNLOADS=1 $SHALE --root $M/sr pull -q $REG/bench/layers4:1" \
  --prepare "rm -rf $M/sr" "$SHALE --root $M/sr pull -q $REG/bench/layers4:1" \
  --prepare "$M/podman.sh rmi -af >/dev/null 2>&1 || true" \
  "$M/podman.sh pull -q --tls-verify=false $REG/bench/layers4:1"
cat "$M/pull4.md"
