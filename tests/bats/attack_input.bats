#!/usr/bin/env bats
# Hostile numbers, users and files (issue 7 items 3, 4, 7, 10, 12 and the docker-habit
# items HOME and -it without a terminal): refused with a clear message, never wrapped to
# root, never hanging, and a failed `run --rm` leaves nothing behind.

load helpers

setup() { common_setup; import_busybox; }
teardown() { common_teardown; }

# No container, no mount under the store: what a failed run must leave.
assert_nothing_left() {
  [ -z "$(shale ps -aq)" ]
  ! awk -v r="$SHALE_ROOT" 'index($5, r) == 1' /proc/self/mountinfo | grep -q . || false
}

# An image from the busybox rootfs with a replaced /etc/passwd and some --change lines.
image_with_passwd() {  # image_with_passwd TAG KIND [CHANGE...]  (KIND: zero | fifo | big)
  local tag=$1 kind=$2; shift 2
  local r="$BATS_TEST_TMPDIR/rootfs-$kind"
  cp -a "$(busybox_rootfs)" "$r"
  rm -f "$r/etc/passwd"
  case "$kind" in
    zero) mknod "$r/etc/passwd" c 1 5 ;;
    fifo) mkfifo "$r/etc/passwd" ;;
    big) echo "nobody:x:4294967296:0::/:/bin/sh" > "$r/etc/passwd" ;;
  esac
  local args=()
  for c in "$@"; do args+=(-c "$c"); done
  shale import "${args[@]}" "$r" "$tag" >/dev/null
}

@test "-u with ids past 2^31-1 is refused, never run as root, and run --rm leaves nothing" {
  for u in 4294967296 4294967295 2147483648 0:4294967296 99999999999999999999; do
    run timeout 30 "$SHALE_BIN" run --rm -u "$u" busybox id
    echo "$u: $status $output"
    [ "$status" -eq 125 ]
    [[ "$output" =~ "out of range" ]]
    [[ ! "$output" =~ uid=0 ]]
  done
  assert_nothing_left
}

@test "an image User or passwd entry past 2^31-1 is refused" {
  shale import -c 'USER 4294967296' "$(busybox_rootfs)" biguser:1 >/dev/null
  run timeout 30 "$SHALE_BIN" run --rm biguser:1 id
  [ "$status" -eq 125 ]
  [[ "$output" =~ "out of range" ]]
  shale import -c 'USER 99999999999999999999999' "$(busybox_rootfs)" hugeuser:1 >/dev/null
  run timeout 30 "$SHALE_BIN" run --rm hugeuser:1 id
  [ "$status" -eq 125 ]
  image_with_passwd bigentry:1 big 'USER nobody'
  run timeout 30 "$SHALE_BIN" run --rm bigentry:1 id
  [ "$status" -eq 125 ]
  [[ "$output" =~ "passwd entry nobody" ]]
  assert_nothing_left
}

@test "an image whose /etc/passwd is /dev/zero or a FIFO is refused at once" {
  image_with_passwd zero:1 zero 'USER nobody'
  run timeout 20 "$SHALE_BIN" run --rm zero:1 id
  [ "$status" -eq 125 ]
  [[ "$output" =~ "etc/passwd: not a regular file" ]]
  image_with_passwd fifo:1 fifo 'USER nobody'
  run timeout 20 "$SHALE_BIN" run --rm fifo:1 id
  [ "$status" -eq 125 ]
  [[ "$output" =~ "not a regular file" ]]
  assert_nothing_left
}

@test "--env-file of /dev/zero or a FIFO is refused at once" {
  run timeout 20 "$SHALE_BIN" run --rm --env-file /dev/zero busybox true
  [ "$status" -eq 125 ]
  [[ "$output" =~ "not a regular file" ]]
  mkfifo "$BATS_TEST_TMPDIR/fifo"
  run timeout 20 "$SHALE_BIN" run --rm --env-file "$BATS_TEST_TMPDIR/fifo" busybox true
  [ "$status" -eq 125 ]
  [[ "$output" =~ "not a regular file" ]]
  assert_nothing_left
}

@test "huge or tiny numbers in flags get a clear error, not an abort or a wrong one" {
  run shale run --rm --ulimit nofile=99999999999999999999 busybox true
  [ "$status" -eq 125 ]
  [[ "$output" =~ "out of range" ]]
  run shale run --rm --ulimit nofile=0 busybox true
  [ "$status" -eq 125 ]
  [[ "$output" =~ "too low" ]]
  run shale run --rm --ulimit as=1 busybox true
  [ "$status" -eq 125 ]
  [[ "$output" =~ "too low" ]]
  for m in 99999999999999999999g 9223372036854775808; do
    run shale run --rm -m "$m" busybox true
    [ "$status" -eq 125 ]
    [[ "$output" =~ "too large" ]]
  done
  run shale run --rm --pids-limit 99999999999999999999 busybox true
  [ "$status" -eq 125 ]
  [[ "$output" =~ "out of range" ]]
  assert_nothing_left
}

@test "a StopSignal the kernel does not have is refused at create" {
  shale import -c 'STOPSIGNAL SIGFOO' "$(busybox_rootfs)" badsig:1 >/dev/null
  run shale create badsig:1 true
  [ "$status" -eq 125 ]
  [[ "$output" =~ "StopSignal" ]] && [[ "$output" =~ SIGFOO ]]
  assert_nothing_left
}

@test "-v onto / or /proc is refused as docker and runc do" {
  run shale run --rm -v /tmp:/ busybox true
  [ "$status" -eq 125 ]
  [[ "$output" =~ "destination can't be '/'" ]]
  run shale run --rm -v /tmp:/proc busybox true
  [ "$status" -eq 125 ]
  [[ "$output" =~ "/proc is not allowed" ]]
  assert_nothing_left
}

@test "a WORKDIR through a dangling symlink names the workdir and the image" {
  r="$BATS_TEST_TMPDIR/rootfs-wd"
  cp -a "$(busybox_rootfs)" "$r"
  ln -s /nowhere/at/all "$r/wd"
  shale import -c 'WORKDIR /wd/sub' "$r" wd:1 >/dev/null
  run shale run --rm wd:1 pwd
  [ "$status" -ne 0 ]
  [[ "$output" =~ "working directory /wd/sub of image wd:1" ]]
  assert_nothing_left
}

@test "HOME is set from the user's passwd entry, unless given" {
  run shale run --rm busybox sh -c 'echo $HOME'
  [ "$output" = /root ]
  run shale run --rm -u 4242 busybox sh -c 'echo $HOME'
  [ "$output" = / ]
  run shale run --rm -e HOME=/x busybox sh -c 'echo $HOME'
  [ "$output" = /x ]
}

@test "-it with a stdin that is not a terminal is refused, not hung" {
  run timeout 20 bash -c "echo hi | '$SHALE_BIN' run --rm -it busybox cat"
  [ "$status" -eq 1 ]
  [[ "$output" =~ "the input device is not a TTY" ]]
  assert_nothing_left
}
