#!/usr/bin/env bats
# shale run in the foreground: what the container sees from inside (probe), exit codes,
# isolation, limits and flags.

load helpers
bats_require_minimum_version 1.5.0

setup() {
  common_setup
  import_busybox
}
teardown() { common_teardown; }

# shale-init beside the binary (the build's shale-init target), else compiled here.
ensure_init() {
  local dir
  dir=$(dirname "$SHALE_BIN")
  if [ -x "$dir/shale-init" ]; then return 0; fi
  if [ ! -x "$BATS_FILE_TMPDIR/shale-init" ]; then
    gcc -O2 -static -o "$BATS_FILE_TMPDIR/shale-init" "$REPO_ROOT/src/container/init/shale_init.c"
  fi
  export SHALE_INIT="$BATS_FILE_TMPDIR/shale-init"
}

@test "run: pid 1, hostname = short id, Docker's default capabilities" {
  run shale run busybox probe pid
  [ "$status" -eq 0 ]
  [ "$output" = 1 ]
  run shale run --name h1 busybox probe hostname
  [ "$status" -eq 0 ]
  id=$(shale inspect h1 | jq -r '.[0].Id')
  [ "$output" = "${id:0:12}" ]
  run shale run -h myhost busybox sh -c 'probe hostname; cat /etc/hostname; echo $HOSTNAME'
  [ "${lines[0]}" = myhost ]
  [ "${lines[1]}" = myhost ]
  [ "${lines[2]}" = myhost ]
  run shale run busybox probe caps
  [[ "$output" == *"CapEff:	00000000a80425fb"* ]]
  run shale run --cap-drop ALL busybox probe caps
  [[ "$output" == *"CapEff:	0000000000000000"* ]]
  run shale run --cap-add NET_ADMIN --cap-drop chown busybox probe caps
  [[ "$output" == *"CapEff:	00000000a80435fa"* ]]
  # --privileged: every capability this host lets us hold (our own bounding set).
  run shale run --privileged busybox probe caps
  [ "$status" -eq 0 ]
  [[ "$output" == *"CapEff:	$(awk '/^CapBnd/ {print $2}' /proc/self/status)"* ]]
}

@test "run: overlay root, no host mounts, Docker's /dev, /proc masks" {
  run shale run --name m1 busybox cat /proc/self/mountinfo
  [ "$status" -eq 0 ]
  root_line=$(echo "$output" | awk '$5 == "/"')
  [[ "$root_line" == *" - overlay "* ]]
  id=$(shale inspect m1 | jq -r '.[0].Id')
  [[ "$root_line" == *"upperdir=$SHALE_ROOT/overlay2/$id/diff"* ]]
  [[ "$root_line" == *"$id-init/diff"* ]]
  ! echo "$output" | awk '{print $5}' | grep -qx /work || false
  ! echo "$output" | awk '{print $5}' | grep -q "^$SHALE_ROOT" || false
  for m in /proc /dev /dev/pts /dev/shm /dev/mqueue /sys /etc/hosts /etc/hostname /etc/resolv.conf; do
    echo "$output" | awk '{print $5}' | grep -qx "$m"
  done
  run shale run busybox sh -c 'cat /proc/timer_list | wc -c; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname 2>&1; ls -la /etc/mtab; test -e /.dockerenv'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = 0 ]
  [ "${lines[1]}" = 0 ]
  [[ "$output" == *"Read-only file system"* ]]
  [[ "$output" == *"/etc/mtab -> /proc/mounts"* ]]
  run shale run --privileged busybox sh -c 'cat /proc/timer_list | wc -c'
  [ "$output" -gt 0 ]
}

@test "run: hosts, hostname and resolv.conf come from containers/<id> and are not in the layers" {
  run shale run --name f1 busybox cat /etc/hosts
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == "127.0.0.1"*"localhost" ]]
  id=$(shale inspect f1 | jq -r '.[0].Id')
  [ "$(shale inspect f1 | jq -r '.[0].HostsPath')" = "$SHALE_ROOT/containers/$id/hosts" ]
  [ -f "$SHALE_ROOT/containers/$id/hostname" ]
  [ -f "$SHALE_ROOT/containers/$id/resolv.conf" ]
  # Placeholders live in the init layer (empty), nothing in the upper dir.
  [ -f "$SHALE_ROOT/overlay2/$id-init/diff/etc/hosts" ]
  [ ! -s "$SHALE_ROOT/overlay2/$id-init/diff/etc/hosts" ]
  [ -z "$(ls -A "$SHALE_ROOT/overlay2/$id/diff")" ]
  # No loopback nameserver survives in a separate network namespace.
  ! grep -q '^nameserver 127\.' "$SHALE_ROOT/containers/$id/resolv.conf" || false
}

@test "run: exit codes 0, 3, 125, 126, 127" {
  run shale run busybox true
  [ "$status" -eq 0 ]
  run shale run busybox probe exit 3
  [ "$status" -eq 3 ]
  run shale run nosuchimage true
  [ "$status" -eq 125 ]
  [[ "$output" == *"nosuchimage"* ]]
  run shale run --memory banana busybox true
  [ "$status" -eq 125 ]
  run shale run busybox /etc/passwd
  [ "$status" -eq 126 ]
  run -127 shale run --name nf busybox nosuchcommand
  [ "$status" -eq 127 ]
  [[ "$output" == *"nosuchcommand"* ]]
  [ "$(shale inspect nf | jq -r '.[0].State.ExitCode')" = 127 ]
  run shale run busybox sh -c 'sh -c "kill -9 \$\$"; exit $?'
  [ "$status" -eq 137 ]
}

@test "run: --network none has only lo; --network host sees the host's interfaces" {
  run shale run --network none busybox cat /proc/net/dev
  [ "$status" -eq 0 ]
  ifaces=$(echo "$output" | tail -n +3 | cut -d: -f1 | tr -d ' ')
  [ "$ifaces" = lo ]
  run shale run --network host busybox cat /proc/net/dev
  [ "$(echo "$output" | tail -n +3 | wc -l)" -eq "$(tail -n +3 /proc/net/dev | wc -l)" ]
}

@test "run: --read-only, -v binds (rw and ro), -e, --env-file, -w, -u" {
  run shale run --read-only busybox touch /x
  [ "$status" -ne 0 ]
  [[ "$output" == *"Read-only file system"* ]]
  src="$BATS_TEST_TMPDIR/src"
  mkdir -p "$src"
  echo from-host >"$src/f"
  run shale run -v "$src:/data" busybox sh -c 'cat /data/f; echo from-ctr > /data/g'
  [ "$status" -eq 0 ]
  [ "$output" = from-host ]
  [ "$(cat "$src/g")" = from-ctr ]
  run shale run -v "$src:/data:ro" busybox touch /data/h
  [ "$status" -ne 0 ]
  [ ! -e "$src/h" ]
  printf 'FROMFILE=1\n# comment\nA=file\n' >"$BATS_TEST_TMPDIR/env"
  run shale run --env-file "$BATS_TEST_TMPDIR/env" -e A=flag -w /some/dir -u nobody busybox \
    sh -c 'echo $FROMFILE $A; pwd; id -u; id -g; echo $PATH'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "1 flag" ]
  [ "${lines[1]}" = /some/dir ]
  [ "${lines[2]}" = 65534 ]
  [ "${lines[3]}" = 65534 ]
  [ "${lines[4]}" = /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ]
  run shale run -u 1234:4321 busybox sh -c 'id -u; id -g'
  [ "${lines[0]}" = 1234 ]
  [ "${lines[1]}" = 4321 ]
  run shale run -u nosuchuser busybox true
  [ "$status" -eq 125 ]
  [[ "$output" == *"unable to find user nosuchuser"* ]]
  run shale run --entrypoint /bin/echo busybox hi there
  [ "$output" = "hi there" ]
}

@test "run: --rm leaves no container, mount, cgroup, layer or layerdb/mounts entry" {
  before=$(ls "$SHALE_ROOT/overlay2" | wc -l)
  run shale run --rm busybox sh -c 'echo gone'
  [ "$status" -eq 0 ]
  [ "$output" = gone ]
  [ -z "$(shale ps -aq)" ]
  [ "$(ls "$SHALE_ROOT/overlay2" | wc -l)" -eq "$before" ]
  [ -z "$(ls -A "$SHALE_ROOT/image/overlay2/layerdb/mounts" 2>/dev/null)" ]
  ! grep -q "$SHALE_ROOT/overlay2" /proc/self/mountinfo || false
  # No container cgroup (a directory) under shale/ in any hierarchy; its files are the
  # parent's own.
  [ -z "$(find /sys/fs/cgroup/*/shale /sys/fs/cgroup/shale -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ]
  # A failed start with --rm leaves nothing either.
  run -127 shale run --rm busybox nosuchcommand
  [ "$status" -eq 127 ]
  [ -z "$(shale ps -aq)" ]
  [ "$(ls "$SHALE_ROOT/overlay2" | wc -l)" -eq "$before" ]
}

@test "run: --memory 32m OOM-kills a hog and inspect says OOMKilled" {
  run shale run --name hog --memory 32m busybox sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived'
  [ "$status" -eq 137 ]
  [ "$(shale inspect hog | jq -r '.[0].State.OOMKilled')" = true ]
  [ "$(shale inspect hog | jq -r '.[0].HostConfig.Memory')" = 33554432 ]
}

@test "run: --pids-limit 20 makes a fork loop fail; --cpus sets the CFS quota" {
  run shale run --pids-limit 20 busybox sh -c 'for i in $(seq 1 40); do sleep 5 & done; echo done'
  [[ "$output" == *"can't fork"* ]]
  run shale run -d --name cpu --cpus 0.5 busybox sleep 30
  [ "$status" -eq 0 ]
  id=$(shale inspect cpu | jq -r '.[0].Id')
  [ "$(cat /sys/fs/cgroup/cpu/shale/$id/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu,cpuacct/shale/$id/cpu.cfs_quota_us)" = 50000 ]
  [ "$(shale inspect cpu | jq -r '.[0].HostConfig.NanoCpus')" = 500000000 ]
  shale rm -f cpu
}

@test "run: --ulimit sets limits; a hard limit above the host's is a clear error" {
  run shale run --ulimit nofile=512:1024 busybox sh -c 'ulimit -n; ulimit -Hn'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = 512 ]
  [ "${lines[1]}" = 1024 ]
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ]; then
    run shale run --ulimit nofile=1024:$((hard + 1)) busybox true
    [ "$status" -eq 125 ]
    [[ "$output" == *"ulimit nofile: hard limit $((hard + 1)) exceeds this host's limit $hard; shale cannot raise hard limits"* ]]
  fi
}

@test "run: --security-opt no-new-privileges, --no-pivot" {
  run shale run --security-opt no-new-privileges busybox grep NoNewPrivs /proc/self/status
  [[ "$output" == *"NoNewPrivs:	1"* ]]
  run shale run busybox grep NoNewPrivs /proc/self/status
  [[ "$output" == *"NoNewPrivs:	0"* ]]
  run shale run --no-pivot busybox probe pid
  [ "$status" -eq 0 ]
  [ "$output" = 1 ]
}

@test "run --init: shale-init is pid 1, reaps zombies and passes the exit status" {
  ensure_init
  run shale run --init busybox sh -c 'echo $$; cat /proc/1/cmdline | tr "\0" " "'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = 2 ]
  [[ "${lines[1]}" == "/dev/init -- sh -c"* ]]
  run shale run --init busybox probe exit 7
  [ "$status" -eq 7 ]
  # An orphan whose parent exits becomes a zombie under pid 1 unless pid 1 reaps it.
  run shale run --init busybox sh -c '(sh -c "sleep 0.1 &" ); sleep 0.5; ps -o stat,comm | grep -c "^Z" || true'
  [ "${lines[-1]}" = 0 ]
}

@test "run -it / -t: a pty on /dev/pts/0, -i keeps stdin open" {
  command -v script >/dev/null || skip "script(1) not installed"
  run script -qc "$SHALE_BIN --root $SHALE_ROOT run -it --rm busybox sh -c 'tty; test -t 0 && echo isatty; echo \$TERM'" /dev/null
  [ "$status" -eq 0 ]
  [[ "$output" == *isatty* ]]
  [[ "$output" == *xterm* ]]
  [[ "$output" == *"/dev/pts/0"* ]]
  run bash -c "echo piped | $SHALE_BIN run -i --rm busybox cat"
  [ "$output" = piped ]
  run bash -c "echo piped | $SHALE_BIN run --rm busybox cat"
  [ "$output" = "" ]
}
