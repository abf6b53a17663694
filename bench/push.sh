#!/usr/bin/env bash
# Push speed: `shale push` of the Debian minbase image (imported, so its layer has no
# compressed blob yet: push gzips it) to a fresh repository vs `podman push` and
# `skopeo copy containers-storage:… docker://…` (both compress too), in one run.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry-lib.sh"
bench_registry_setup
M="$BENCH_MNT"
podman_bench load -q -i "$M/minbase.tar" >/dev/null
SK="containers-storage:[overlay@$M/podman/storage+$M/podman/run]"
# A fresh shale store each run (load: plain layer, kept as tar-split, no gzip yet) and an
# empty registry each run, so every tool compresses and uploads the whole layer.
wipe_reg="rm -rf $M/registry/docker"
hyperfine --runs "${RUNS:-5}" --export-markdown "$M/push.md" \
  --prepare "$wipe_reg; rm -rf $M/sr; $SHALE --root $M/sr load -q -i $M/minbase.tar >/dev/null; $SHALE --root $M/sr tag minbase $REG/s/minbase:1" \
  "$SHALE --root $M/sr push -q $REG/s/minbase:1" \
  --prepare "$wipe_reg" \
  "$M/podman.sh push -q --tls-verify=false minbase:latest docker://$REG/p/minbase:1" \
  --prepare "$wipe_reg" \
  "skopeo copy -q --dest-tls-verify=false ${SK}localhost/minbase:latest docker://$REG/k/minbase:1"
cat "$M/push.md"
