#!/usr/bin/env bats
# shale build: real Dockerfiles on the busybox image; files, config, layers, history, the
# cache, failures that leave nothing, .dockerignore, multi-stage, the verb's flags.

load helpers

setup() { build_setup; }
teardown() { common_teardown; }

layers() { shale inspect "$1" | jq '.[0].RootFS.Layers | length'; }
# The image config as stored (history included).
image_config() {
  local id
  id=$(shale inspect "$1" | jq -r '.[0].Id')
  cat "$SHALE_ROOT/image/overlay2/imagedb/content/sha256/${id#sha256:}"
}
created_by() { image_config "$1" | jq -r '.history[].created_by'; }
cfg() { shale inspect "$1" | jq -c ".[0].Config.$2"; }
# Driver layers and containers: what a failed build must not leave behind.
store_state() {
  ls "$SHALE_ROOT/overlay2" | grep -v '^l$' | sort | tr '\n' ' '
  shale ps -aq | tr '\n' ' '
}

@test "build: files, config, one layer per RUN/COPY/new WORKDIR, docker's history lines" {
  echo hello >"$C/f.txt"
  mkdir -p "$C/dir/a"
  echo x >"$C/dir/a/b"
  chmod 0640 "$C/dir/a/b"
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox
ARG GREETING=hi
ENV A=1 B="two words"
RUN echo $GREETING > /greet
COPY f.txt /data/
WORKDIR /app
WORKDIR /app
COPY dir sub/
USER 1000:1000
LABEL x=y "z z"=w
EXPOSE 80 443/udp
VOLUME /vol
STOPSIGNAL SIGKILL
SHELL ["/bin/sh", "-xc"]
ENTRYPOINT echo ep
CMD ["a", "b"]
EOF
  run shale build -t built:1 "$C"
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == "Step 1/16 : FROM busybox" ]]
  [[ "$output" == *"Step 4/16 : RUN echo \$GREETING > /greet"* ]]
  [[ "$output" == *"Successfully tagged built:1"* ]]
  id=$(shale inspect built:1 | jq -r '.[0].Id')
  [[ "$output" == *"Successfully built ${id:7:12}"* ]]
  # busybox + RUN + COPY + the WORKDIR that made /app + COPY; the second WORKDIR adds none.
  [ "$(layers built:1)" -eq 5 ]
  [ "$(cfg built:1 Env)" = '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1","B=two words"]' ]
  [ "$(cfg built:1 WorkingDir)" = '"/app"' ]
  [ "$(cfg built:1 User)" = '"1000:1000"' ]
  [ "$(cfg built:1 Labels)" = '{"x":"y","z z":"w"}' ]
  [ "$(cfg built:1 ExposedPorts)" = '{"443/udp":{},"80/tcp":{}}' ]
  [ "$(cfg built:1 Volumes)" = '{"/vol":{}}' ]
  [ "$(cfg built:1 StopSignal)" = '"SIGKILL"' ]
  [ "$(cfg built:1 Shell)" = '["/bin/sh","-xc"]' ]
  [ "$(cfg built:1 Entrypoint)" = '["/bin/sh","-xc","echo ep"]' ]
  [ "$(cfg built:1 Cmd)" = '["a","b"]' ]
  run shale run --rm --user 0 --entrypoint "" built:1 sh -c \
    'cat /greet /data/f.txt /app/sub/a/b; stat -c "%a %u" /app/sub/a/b /app/sub/a; test -e /app/sub/dir || echo no-dir'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = hi ]
  [ "${lines[1]}" = hello ]
  [ "${lines[2]}" = x ]
  [ "${lines[3]}" = "640 0" ]
  [ "${lines[4]}" = "755 0" ]
  [ "${lines[5]}" = no-dir ]
  run created_by built:1
  [[ "$output" == *"|1 GREETING=hi /bin/sh -c echo \$GREETING > /greet"* ]]
  [[ "$output" == *"/bin/sh -c #(nop)  ENV A=1 B=two words"* ]]
  [[ "$output" == *"/bin/sh -c #(nop) COPY file:"*" in /data/ "* ]]
  [[ "$output" == *"/bin/sh -c #(nop) WORKDIR /app"* ]]
  [[ "$output" == *"/bin/sh -c #(nop)  EXPOSE 80 443/udp"* ]]
  [[ "$output" == *'/bin/sh -xc #(nop)  CMD ["a" "b"]'* ]]
  # Config-only steps are empty_layer entries; the layer steps are not.
  [ "$(shale inspect built:1 | jq -r '.[0].Id')" = "$id" ]
  [ "$(image_config built:1 | jq '.history | map(select(.empty_layer != true)) | length')" -eq 5 ]
  [ "$(image_config built:1 | jq '.history | length')" -eq 16 ]
}

@test "build: an unchanged rebuild is all cache hits with the same id; a changed COPY source rebuilds from its step" {
  echo one >"$C/a"
  echo b >"$C/b"
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox
RUN echo first > /first
COPY a /a
RUN cat /a > /copy
COPY b /b
EOF
  shale build -q -t c:1 "$C" >/dev/null
  id1=$(shale inspect c:1 | jq -r '.[0].Id')
  run shale build -t c:1 "$C"
  [ "$status" -eq 0 ]
  [ "$(grep -c -- '---> Using cache' <<<"$output")" -eq 4 ]
  [ "$(shale inspect c:1 | jq -r '.[0].Id')" = "$id1" ]
  # mtimes do not count, content does.
  touch -d '2001-01-01' "$C/a"
  run shale build -t c:1 "$C"
  [ "$(grep -c -- '---> Using cache' <<<"$output")" -eq 4 ]
  echo two >"$C/a"
  run shale build -t c:2 "$C"
  [ "$status" -eq 0 ]
  # Step 2 (RUN) is reused; from COPY a on, everything is made again.
  [ "$(grep -c -- '---> Using cache' <<<"$output")" -eq 1 ]
  [[ "$output" == *"Step 2/5 : RUN echo first > /first"$'\n'" ---> Using cache"* ]]
  [ "$(shale run --rm c:2 cat /copy)" = two ]
  [ "$(shale inspect c:1 | jq -c '.[0].RootFS.Layers[0:2]')" = "$(shale inspect c:2 | jq -c '.[0].RootFS.Layers[0:2]')" ]
  # --no-cache makes every step again.
  run shale build --no-cache -t c:3 "$C"
  [ "$status" -eq 0 ]
  [[ "$output" != *"Using cache"* ]]
  # Cache entries are ordinary images: once removed, the step is a miss, not an error.
  shale rmi c:1 c:2 c:3 >/dev/null
  run shale build -t c:4 "$C"
  [ "$status" -eq 0 ]
  [ "$(shale run --rm c:4 cat /copy)" = two ]
}

@test "build: a RUN that fails stops with docker's message and leaves no container, layer or tag" {
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox
RUN echo ok > /ok
RUN echo partial > /partial; exit 3
EOF
  shale build -q -t before "$C" 2>/dev/null && false
  before=$(store_state)
  run shale build -t f:1 "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"The command '/bin/sh -c echo partial > /partial; exit 3' returned a non-zero code: 3"* ]]
  [ "$(store_state)" = "$before" ]
  run shale inspect f:1
  [ "$status" -ne 0 ]
  # The step before stays cached.
  run shale build -t f:1 "$C"
  [[ "$output" == *"Step 2/3 : RUN echo ok > /ok"$'\n'" ---> Using cache"* ]]
}

@test "build: SIGINT and SIGTERM during a RUN clean up; after SIGKILL the next build repairs" {
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox
RUN echo ok > /ok
RUN sleep 30
EOF
  head -2 "$C/Dockerfile" >"$C/Dockerfile.ok"
  shale build -q -f "$C/Dockerfile.ok" "$C" >/dev/null
  before=$(store_state)
  for sig in INT TERM; do
    "$SHALE_BIN" build -t s:1 "$C" >"$BATS_TEST_TMPDIR/out" 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q 'Running in' "$BATS_TEST_TMPDIR/out" && break; sleep 0.1; done
    sleep 0.3
    kill -$sig $pid
    rc=0
    wait $pid || rc=$?
    [ "$rc" -eq 130 ]
    grep -q "build interrupted" "$BATS_TEST_TMPDIR/out"
    [ "$(store_state)" = "$before" ]
    run shale inspect s:1
    [ "$status" -ne 0 ]
  done
  "$SHALE_BIN" build -t s:1 "$C" >"$BATS_TEST_TMPDIR/out" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q 'Running in' "$BATS_TEST_TMPDIR/out" && break; sleep 0.1; done
  sleep 0.3
  kill -KILL $pid
  wait $pid || true
  # The container died with its builder; the next build removes it.
  echo 'FROM busybox' >"$C/Dockerfile"
  shale build -q "$C" >/dev/null
  [ "$(store_state)" = "$before" ]
}

@test "build: .dockerignore with exceptions decides what COPY sees" {
  mkdir -p "$C/logs" "$C/src"
  echo a >"$C/logs/a.log"
  echo keep >"$C/logs/keep.log"
  echo s >"$C/src/main.c"
  echo secret >"$C/secret.txt"
  printf 'logs\n!logs/keep.log\nsecret.txt\n' >"$C/.dockerignore"
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox
COPY . /ctx/
EOF
  run shale build -q -t ig "$C"
  [ "$status" -eq 0 ]
  run shale run --rm ig sh -c 'cd /ctx && find . | sort'
  [ "$status" -eq 0 ]
  [[ "$output" == *"./logs/keep.log"* ]]
  [[ "$output" == *"./src/main.c"* ]]
  [[ "$output" != *"a.log"* ]]
  [[ "$output" != *"secret"* ]]
  echo 'FROM busybox
COPY secret.txt /' >"$C/Dockerfile"
  run shale build "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"excluded by .dockerignore"* ]]
}

@test "build: multi-stage with COPY --from, --target builds only the stages it needs" {
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox AS builder
RUN echo built > /artifact
FROM busybox AS broken
RUN exit 1
FROM busybox
COPY --from=builder /artifact /from-builder
COPY --from=0 /artifact /from-index
COPY --from=busybox /bin/busybox /bb-copy
EOF
  run shale build -t ms "$C"
  [ "$status" -eq 0 ]
  [[ "$output" != *"RUN exit 1"* ]]
  [ "$(shale run --rm ms cat /from-builder /from-index)" = "built
built" ]
  shale run --rm ms test -x /bb-copy
  [ "$(layers ms)" -eq 4 ]
  run shale build -t ms:b --target builder "$C"
  [ "$status" -eq 0 ]
  [[ "$output" == *"Step 2/2 : RUN echo built > /artifact"* ]]
  [ "$(shale run --rm ms:b cat /artifact)" = built ]
  run shale build --target broken "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"returned a non-zero code: 1"* ]]
  run shale build --target nosuch "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"nosuch"* ]]
}

@test "build: -q prints only the id, --iidfile writes it, - reads the Dockerfile from stdin" {
  run shale build -q --iidfile "$BATS_TEST_TMPDIR/iid" - <<<$'FROM busybox\nENV Q=1'
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" =~ ^sha256:[0-9a-f]{64}$ ]]
  [ "$(cat "$BATS_TEST_TMPDIR/iid")" = "$output" ]
  [ "$(cfg "$output" Env)" = '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","Q=1"]' ]
}

@test "build: sources never come from outside the context (.., symlinks)" {
  echo outside >"$BATS_TEST_TMPDIR/outside"
  ln -s "$BATS_TEST_TMPDIR/outside" "$C/abs-link"
  ln -s ../outside "$C/rel-link"
  printf 'FROM busybox\nCOPY ../outside /x\n' >"$C/Dockerfile"
  run shale build "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"Forbidden path outside the build context"* ]]
  for l in abs-link rel-link; do
    printf 'FROM busybox\nCOPY %s /x\n' $l >"$C/Dockerfile"
    run shale build "$C"
    [ "$status" -ne 0 ]
    [[ "$output" == *"file not found in build context"* ]]
  done
  # Inside a copied directory a symlink stays a symlink.
  mkdir "$C/d"
  ln -s "$BATS_TEST_TMPDIR/outside" "$C/d/l"
  printf 'FROM busybox\nCOPY d /d\n' >"$C/Dockerfile"
  shale build -q -t sl "$C" >/dev/null
  [ "$(shale run --rm sl readlink /d/l)" = "$BATS_TEST_TMPDIR/outside" ]
}

@test "build: ADD extracts a local tar and refuses URLs; COPY --chown --chmod; globs" {
  mkdir -p "$BATS_TEST_TMPDIR/t/inner"
  echo in-tar >"$BATS_TEST_TMPDIR/t/inner/file"
  tar -czf "$C/a.tar.gz" -C "$BATS_TEST_TMPDIR/t" inner
  echo 1 >"$C/x1.txt"
  echo 2 >"$C/x2.txt"
  echo n >"$C/y.md"
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox
ADD a.tar.gz /opt/
COPY --chown=1234:55 --chmod=0600 x1.txt /owned
COPY x*.txt /glob/
EOF
  run shale build -q -t add "$C"
  [ "$status" -eq 0 ]
  run shale run --rm add sh -c 'cat /opt/inner/file; stat -c "%u %g %a" /owned; ls /glob'
  [ "${lines[0]}" = in-tar ]
  [ "${lines[1]}" = "1234 55 600" ]
  [ "${lines[2]}" = x1.txt ]
  [ "${lines[3]}" = x2.txt ]
  printf 'FROM busybox\nCOPY x*.txt /glob\n' >"$C/Dockerfile"
  run shale build "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"must be a directory and end with a /"* ]]
  printf 'FROM busybox\nADD https://example.com/f /f\n' >"$C/Dockerfile"
  run shale build "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"downloading is not supported"* ]]
}

@test "build: ADD extracts tars compressed with bzip2 and xz as docker does; a compressed file that is no tar is copied as is" {
  mkdir -p "$BATS_TEST_TMPDIR/t/d"
  echo bz >"$BATS_TEST_TMPDIR/t/d/b"
  tar -cjf "$C/b.tar.bz2" -C "$BATS_TEST_TMPDIR/t" d/b
  echo xz >"$BATS_TEST_TMPDIR/t/d/x"
  tar -cJf "$C/x.txz" -C "$BATS_TEST_TMPDIR/t" d/x
  echo not-a-tar | gzip >"$C/note.gz"
  : >"$C/empty"
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox
ADD b.tar.bz2 x.txz /opt/
ADD note.gz empty /files/
EOF
  run shale build -q -t addz "$C"
  [ "$status" -eq 0 ]
  run shale run --rm addz sh -c 'cat /opt/d/b /opt/d/x; zcat /files/note.gz; stat -c %s /files/empty'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = bz ]
  [ "${lines[1]}" = xz ]
  [ "${lines[2]}" = not-a-tar ]
  [ "${lines[3]}" = 0 ]
}

@test "build: intermediate images are hidden from images (shown by -a), each step's Parent is the step before" {
  cat >"$C/Dockerfile" <<'EOF'
FROM busybox
RUN echo 1 >/one
RUN echo 2 >/two
EOF
  shale build -q -t steps "$C" >/dev/null
  base=$(shale inspect busybox | jq -r '.[0].Id')
  final=$(shale inspect steps | jq -r '.[0].Id')
  mid=$(shale inspect steps | jq -r '.[0].Parent')
  [[ "$mid" == sha256:* ]]
  [ "$(shale inspect "$mid" | jq -r '.[0].Parent')" = "$base" ]
  # Without -a: busybox and steps only, as docker lists them.
  run shale images --format json
  [ "$(jq -s 'length' <<<"$output")" -eq 2 ]
  ! shale images -q --no-trunc | grep -q "$mid" || false
  run shale images -a --format json
  [ "$(jq -s '[.[] | select(.Repository == "<none>")] | length' <<<"$output")" -eq 1 ]
  shale images -a -q --no-trunc | grep -q "$mid"
  # Once nothing stands on it, an untagged image is dangling and listed again.
  shale rmi steps >/dev/null
  shale images -q --no-trunc | grep -q "$mid"
}

@test "build: syntax errors and bad flags stop before any work" {
  before=$(store_state)
  printf 'FROM busybox\nRUN echo hi\nFROBNICATE x\n' >"$C/Dockerfile"
  run shale build "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"Dockerfile:3"* ]]
  [[ "$output" != *"Step 1"* ]]
  printf 'FROM busybox\nRUN echo hi\n' >"$C/Dockerfile"
  run shale build --network bogus "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"--network bogus: use bridge (the default), host or none"* ]]
  run shale build -t 'Bad:Tag:x' "$C"
  [ "$status" -ne 0 ]
  [ "$(store_state)" = "$before" ]
}

@test "build: ONBUILD triggers run in the child build; --build-arg and --label" {
  printf 'FROM busybox\nONBUILD RUN echo triggered > /trig\n' >"$C/Dockerfile"
  shale build -q -t parent "$C" >/dev/null
  [ "$(cfg parent OnBuild)" = '["RUN echo triggered > /trig"]' ]
  printf 'FROM parent\nARG V=default\nRUN echo $V > /v\n' >"$C/Dockerfile"
  run shale build -t child --build-arg V=given --label team=core "$C"
  [ "$status" -eq 0 ]
  [[ "$output" == *"# Executing 1 build trigger"* ]]
  [[ "$output" == *'Step 4/4 : LABEL "team"="core"'* ]]
  [ "$(shale run --rm child cat /trig /v)" = "triggered
given" ]
  [ "$(cfg child OnBuild)" = null ]
  [ "$(cfg child Labels)" = '{"team":"core"}' ]
  run created_by child
  [[ "$output" == *"|1 V=given /bin/sh -c echo \$V > /v"* ]]
}

@test "build: a RUN whose program is missing fails clearly and leaves nothing; exec form and SHELL" {
  before=$(store_state)
  printf 'FROM busybox\nRUN ["/no/such/program", "x"]\n' >"$C/Dockerfile"
  run shale build -t miss "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"The command '/no/such/program x' could not be run"* ]]
  [ "$(store_state)" = "$before" ]
  printf 'FROM busybox\nSHELL ["/bin/sh", "-ec"]\nRUN ["sh", "-c", "echo exec > /e"]\nRUN false; echo not-reached > /n\n' >"$C/Dockerfile"
  run shale build "$C"
  [ "$status" -ne 0 ]
  [[ "$output" == *"The command '/bin/sh -ec false; echo not-reached > /n' returned a non-zero code: 1"* ]]
}

@test "build: RUN steps are on the bridge by default, as docker's; --network none has only lo" {
  printf 'FROM busybox\nRUN cat /proc/net/dev | cut -d: -f1 | tr -d " " | grep -v "|" | sort | tr "\\n" " " > /ifaces\n' >"$C/Dockerfile"
  run shale build -q -t net:bridge "$C"
  [ "$status" -eq 0 ]
  run shale run --rm --network none net:bridge cat /ifaces
  [ "$output" = "eth0 lo " ]
  run shale build -q --no-cache --network none -t net:none "$C"
  [ "$status" -eq 0 ]
  run shale run --rm --network none net:none cat /ifaces
  [ "$output" = "lo " ]
  # The step containers are gone, and with them their addresses (no lease left).
  [ -z "$(shale ps -aq)" ]
  [ -z "$(find "$SHALE_ROOT/network/ipam" -type f -name '*.*.*.*' 2>/dev/null)" ]
}
