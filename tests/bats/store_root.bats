#!/usr/bin/env bats
# The store root (issue 7, items 1 and 2, and the lock items): which directories may become
# a store, what recovery may delete, the modes that keep other users out of layers, and
# commands on the same store piped into each other.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# Runs the shale binary chrooted into a throw-away tmpfs inside a private mount namespace,
# so a regression (a store made at "/" and its tmp/ emptied) can only ever touch that tmpfs.
# The tmpfs has /tmp and /var/tmp holding victim files, and /home/u with a tmp/ of its own.
# Prints "rc=N" and then, one per line, the victim files still there.
in_throwaway_root() {
  local jail="$BATS_TEST_TMPDIR/jail"
  mkdir -p "$jail"
  unshare --mount --propagation private bash -euc '
    jail=$1; bin=$2; shift 2
    mount -t tmpfs -o size=512m jail "$jail"
    mkdir -p "$jail/tmp" "$jail/var/tmp" "$jail/home/u/tmp" "$jail/lib64"
    for f in "$jail/tmp/victim" "$jail/tmp/.X0-lock" "$jail/var/tmp/victim" "$jail/home/u/tmp/victim"; do
      echo precious > "$f"
    done
    mkdir "$jail/tmp/txn-looks-like-ours"; echo precious > "$jail/tmp/txn-looks-like-ours/f"
    cp "$bin" "$jail/shale"
    for lib in $(ldd "$bin" | grep -oE "/[^ ]+\.so[^ ]*"); do
      mkdir -p "$jail$(dirname "$lib")"; cp -L "$lib" "$jail$lib"
    done
    set +e
    chroot "$jail" /shale "$@" >/dev/null 2>"$jail/err"
    echo "rc=$?"
    cat "$jail/err" >&2
    (cd "$jail" && find tmp var/tmp home -type f | sort)
  ' _ "$jail" "$SHALE_BIN" "$@"
}

@test "--root \"\" is refused and nothing outside a store is created or deleted" {
  run in_throwaway_root --root "" images
  [[ "${lines[0]}" =~ store\ root\ \"\":\ empty ]] || [[ "$output" =~ store\ root\ \"\":\ empty ]]
  [[ "$output" =~ rc=1 ]]
  [[ "$output" =~ tmp/victim ]]
  [[ "$output" =~ tmp/.X0-lock ]]
  [[ "$output" =~ tmp/txn-looks-like-ours/f ]]
  [[ "$output" =~ var/tmp/victim ]]
}

@test "--root / and --root /var and a home with a tmp/ are refused, their tmp/ kept" {
  for r in / // /tmp/.. /var /home/u; do
    run in_throwaway_root --root "$r" images
    [[ "$output" =~ rc=1 ]]
    [[ "$output" =~ store\ root ]]
    [[ "$output" =~ tmp/victim ]]
    [[ "$output" =~ var/tmp/victim ]]
    [[ "$output" =~ home/u/tmp/victim ]]
    [[ "$output" =~ tmp/txn-looks-like-ours/f ]]
  done
}

@test "a non-empty directory that is not a store is refused with the reason" {
  d="$BATS_TEST_TMPDIR/notastore"
  mkdir -p "$d/tmp"; echo keep > "$d/tmp/x"; echo keep > "$d/file"
  run shale --root "$d" images
  [ "$status" -ne 0 ]
  [[ "$output" =~ "not a shale store" ]]
  [ -f "$d/tmp/x" ] && [ -f "$d/file" ]
  [ ! -e "$d/shale-store.json" ] && [ ! -e "$d/overlay2" ]
}

@test "a new directory becomes a marked store, 0700, with overlay2/ 0700" {
  run shale --root "$SHALE_ROOT/sub/store" images
  [ "$status" -eq 0 ]
  [ "$(jq -r .format "$SHALE_ROOT/sub/store/shale-store.json")" = shale-store ]
  [ "$(stat -c %a "$SHALE_ROOT/sub/store")" = 700 ]
  [ "$(stat -c %a "$SHALE_ROOT/sub/store/overlay2")" = 700 ]
}

@test "recovery removes only the staging names shale makes, never other files in tmp/" {
  import_busybox
  mkdir -p "$SHALE_ROOT/tmp/txn-dead01" "$SHALE_ROOT/tmp/not-ours"
  : > "$SHALE_ROOT/tmp/txn-dead01/journal"
  echo keep > "$SHALE_ROOT/tmp/not-ours/f"
  echo keep > "$SHALE_ROOT/tmp/plainfile"
  run shale images
  [ "$status" -eq 0 ]
  [ ! -e "$SHALE_ROOT/tmp/txn-dead01" ]
  [ -f "$SHALE_ROOT/tmp/not-ours/f" ]
  [ -f "$SHALE_ROOT/tmp/plainfile" ]
}

@test "another user cannot reach a setuid file a container wrote through its UpperDir (CVE-2021-41091)" {
  # Open the path down to the store to others, as /var/lib is, so only the store's own
  # modes stand between another user and the layers.
  d="$SHALE_ROOT"
  while [ "$d" != / ]; do d=$(dirname "$d"); chmod o+x "$d"; done
  import_busybox
  shale run -d --name c busybox sleep 300
  shale exec c sh -c 'cp /bin/busybox /tmp/w && chmod 4755 /tmp/w'
  upper=$(shale inspect -f '{{.GraphDriver.Data.UpperDir}}' c)
  lower=$(shale inspect -f '{{.GraphDriver.Data.LowerDir}}' c)
  [ -u "$upper/tmp/w" ]   # root sees it
  [ "$(stat -c %a "$SHALE_ROOT")" = 700 ]
  [ "$(stat -c %a "$SHALE_ROOT/overlay2")" = 700 ]
  # nobody can neither run it through the published upperdir nor reach the lower layers.
  run setpriv --reuid=65534 --regid=65534 --clear-groups "$upper/tmp/w" id -u
  [ "$status" -ne 0 ]
  [ "$output" != 0 ]
  first_lower=${lower%%:*}
  run setpriv --reuid=65534 --regid=65534 --clear-groups test -e "$first_lower/bin/busybox"
  [ "$status" -ne 0 ]
  shale rm -f c
}

@test "an existing store with the old modes (0711, overlay2 0701) is closed at open" {
  import_busybox
  chmod 0711 "$SHALE_ROOT"; chmod 0701 "$SHALE_ROOT/overlay2"
  run shale images
  [ "$status" -eq 0 ]
  [ "$(stat -c %a "$SHALE_ROOT")" = 700 ]
  [ "$(stat -c %a "$SHALE_ROOT/overlay2")" = 700 ]
}

@test "save | load and export | import on the same store finish (no lock deadlock)" {
  import_busybox
  run timeout 60 bash -c "'$SHALE_BIN' save busybox | '$SHALE_BIN' load"
  [ "$status" -eq 0 ]
  [[ "$output" =~ "Loaded image: busybox:latest" ]]
  shale create --name c busybox true >/dev/null
  run timeout 60 bash -c "'$SHALE_BIN' export c | '$SHALE_BIN' import - exported:1"
  [ "$status" -eq 0 ]
  [[ "$output" =~ ^sha256: ]]
  shale run --rm exported:1 true
  # The spool left nothing behind.
  [ -z "$(ls -A "$SHALE_ROOT/tmp")" ]
}

@test "while load waits on a slow stdin, images and run do not block" {
  import_busybox
  shale save -o "$BATS_TEST_TMPDIR/bb.tar" busybox
  ( (sleep 6; cat "$BATS_TEST_TMPDIR/bb.tar") | "$SHALE_BIN" load >"$BATS_TEST_TMPDIR/load.out" 2>&1 ) &
  loader=$!
  sleep 1
  run timeout 4 "$SHALE_BIN" images
  [ "$status" -eq 0 ]
  run timeout 20 "$SHALE_BIN" run --rm busybox echo ran
  [ "$status" -eq 0 ]
  [ "$output" = ran ]
  wait "$loader"
  grep -q "Loaded image: busybox:latest" "$BATS_TEST_TMPDIR/load.out"
}

@test "tag refuses a name over 255 characters and a digest reference (as docker)" {
  import_busybox
  long=$(printf 'a%.0s' $(seq 1 300))
  run shale tag busybox "$long:1"
  [ "$status" -ne 0 ]
  [[ "$output" =~ "must not be more than 255 characters" ]]
  run shale tag busybox "a:b@sha256:$(printf '0%.0s' $(seq 1 64))"
  [ "$status" -ne 0 ]
  [[ "$output" =~ "refusing to create a tag with a digest reference" ]]
  [ "$(shale images -q | wc -l)" = 1 ]
  run shale images --format json
  [[ ! "$output" =~ \"Repository\":\"a\" ]]
}

@test "inspect of a prefix matching several containers says it is ambiguous" {
  import_busybox
  # 17 containers: at least two share a first hex digit (there are 16).
  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17; do shale create busybox true >/dev/null; done
  p=$(shale ps -aq --no-trunc | cut -c1 | sort | uniq -d | head -1)
  [ -n "$p" ]
  run shale inspect "$p"
  [ "$status" -ne 0 ]
  [[ "$output" =~ "multiple containers found with provided prefix: $p" ]]
  [[ ! "$output" =~ "No such object" ]]
}
