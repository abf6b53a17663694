#!/usr/bin/env bats
# shale-runc driven by runc's conventions: a bundle from `shale-runc spec` over the busybox
# rootfs, the lifecycle create -> start -> kill -> delete, wrong-state errors, exit codes,
# hooks, user namespaces, idmapped mounts, fds, the console socket and CVE-2019-5736.

load runc_helpers

setup() { runc_setup; }
teardown() {
  # Seccomp agents (start_agent) that a failed test left waiting.
  local p
  [ -f "$T/agent.pids" ] && for p in $(cat "$T/agent.pids"); do kill -9 "$p" 2>/dev/null || true; done
  runc_teardown
}

SECCOMP_AGENT="${SECCOMP_AGENT:-$(dirname "$SHALE_BIN")/shale_seccomp_agent}"

# start_agent SOCK NAME: a seccomp agent on $T/SOCK.sock (it removes the socket once it
# accepted its one connection) that writes the container process state it receives to
# $T/NAME.json and fails mkdir/mkdirat with EROFS (30); its pid in AGENT_PID.
start_agent() {
  [ -x "$SECCOMP_AGENT" ] || { echo "no $SECCOMP_AGENT: make -C build shale_seccomp_agent"; return 1; }
  "$SECCOMP_AGENT" "$T/$1.sock" "$T/$2.json" 30 >/dev/null 2>"$T/$2.err" 3>&- &
  AGENT_PID=$!
  echo "$AGENT_PID" >>"$T/agent.pids"
  local i
  for i in $(seq 100); do [ -S "$T/$1.sock" ] && return 0; sleep 0.05; done
  echo "agent $2 did not listen: $(cat "$T/$2.err")"
  return 1
}

# wait_file FILE: until FILE exists (the agent writes it atomically), 5 s at most.
wait_file() {
  local i
  for i in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.05; done
  return 1
}

# wait_agent PID: the agent exits 0 once no process is left under its filter.
wait_agent() {
  local i
  for i in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$1" 2>/dev/null; then
    echo "agent $1 still waits on its fd"
    return 1
  fi
  wait "$1"
}

# A filter that notifies mkdir and mkdirat to the agent on $T/$1.sock.
notify_mkdir_to() {
  spec_set ".linux.seccomp = {defaultAction: \"SCMP_ACT_ALLOW\", listenerPath: \"$T/$1.sock\", listenerMetadata: \"agent=$1;x=1\", syscalls: [{names: [\"mkdir\", \"mkdirat\"], action: \"SCMP_ACT_NOTIFY\"}]}"
}

@test "runc: spec makes a bundle that runs; run passes stdout and the exit status" {
  [ -f "$B/config.json" ]
  run "$SHALE_RUNC" spec --bundle "$B"
  [ "$status" -ne 0 ]
  [[ "$output" == *"exists"* ]]
  spec_args sh -c 'echo hello from shale-runc; exit 3'
  run runc run c1
  [ "$status" -eq 3 ]
  [ "$output" = "hello from shale-runc" ]
  # run deletes what it created
  run runc state c1
  [ "$status" -ne 0 ]
  [[ "$output" == *"does not exist"* ]]
  spec_args /bin/nonexistent
  run runc run c1
  [ "$status" -ne 0 ]
  [[ "$output" == *"nonexistent"* ]]
  [ -z "$(ls "$STATE")" ]
  run "$SHALE_RUNC" --version
  [[ "$output" == *"spec: 1.1.0"* ]]
}

@test "runc: create, start, state, kill, delete and the errors of a wrong state" {
  spec_args sleep 100
  runc create --pid-file "$T/pid" c1
  [ "$(runc_status c1)" = created ]
  pid=$(runc state c1 | jq .pid)
  [ "$pid" = "$(cat "$T/pid")" ]
  [ "$(runc state c1 | jq -r .bundle)" = "$B" ]
  # Blocked before exec: still our own binary, not sleep.
  [ "$(cat /proc/$pid/comm)" != sleep ]
  run runc create c1
  [ "$status" -ne 0 ]
  [[ "$output" == *"already exists"* ]]
  runc start c1
  [ "$(runc_status c1)" = running ]
  [ "$(cat /proc/$pid/comm)" = sleep ]
  run runc start c1
  [ "$status" -ne 0 ]
  [[ "$output" == *"it is running"* ]]
  run runc delete c1
  [ "$status" -ne 0 ]
  [[ "$output" == *"running"*"--force"* ]]
  [ "$(runc list -q)" = c1 ]
  [ "$(runc ps --format json c1)" = "[$pid]" ]
  [ "$(runc events --stats c1 | jq .data.pids.current)" = 1 ]
  echo '{"pids": {"limit": 77}}' | runc update --resources - c1
  [ "$(cat /sys/fs/cgroup/pids/"$CG"/pids.max 2>/dev/null || cat /sys/fs/cgroup/"$CG"/pids.max)" = 77 ]
  runc pause c1
  [ "$(runc_status c1)" = paused ]
  grep -q '^State:.*(stopped)' /proc/$pid/status || grep -q FROZEN /sys/fs/cgroup/freezer/"$CG"/freezer.state
  runc resume c1
  [ "$(runc_status c1)" = running ]
  runc kill c1 KILL
  for i in $(seq 50); do [ "$(runc_status c1)" = stopped ] && break; sleep 0.1; done
  [ "$(runc_status c1)" = stopped ]
  [ "$(runc state c1 | jq .pid)" = 0 ]
  run runc kill c1 TERM
  [ "$status" -ne 0 ]
  [[ "$output" == *"stopped"* ]]
  run runc start c1
  [ "$status" -ne 0 ]
  runc delete c1
  run runc state c1
  [ "$status" -ne 0 ]
  [ ! -d /sys/fs/cgroup/pids/"$CG" ] && [ ! -d /sys/fs/cgroup/"$CG" ]
  # delete --force of what does not exist is not an error (podman and containerd rely on it)
  runc delete --force c1
  run runc delete c1
  [ "$status" -ne 0 ]
  run runc start no-such
  [ "$status" -ne 0 ]
  [[ "$output" == *"does not exist"* ]]
  run runc create ../escape
  [ "$status" -ne 0 ]
  [[ "$output" == *"invalid container id"* ]]
}

@test "runc: delete of a created container kills it; delete --force of a running one" {
  spec_args sleep 100
  runc create c1
  pid=$(runc state c1 | jq .pid)
  runc delete c1
  [ ! -d "$STATE/c1" ]
  ! kill -0 "$pid" 2>/dev/null || [ "$(awk '{print $3}' /proc/$pid/stat)" = Z ]
  runc create c1
  runc start c1
  runc delete --force c1
  [ -z "$(runc list -q)" ]
}

@test "runc: exec with an exit status, --cwd, --env, --user, --process; not in a stopped one" {
  spec_args sleep 100
  runc create c1
  runc start c1
  run runc exec c1 sh -c 'exit 5'
  [ "$status" -eq 5 ]
  run runc exec --cwd /tmp --env FOO=bar --user 1000:1000 c1 sh -c 'echo $(pwd) $FOO $(id -u):$(id -g)'
  [ "$output" = "/tmp bar 1000:1000" ]
  jq -n '{args:["sh","-c","echo from-process-file"],cwd:"/",env:["PATH=/bin"],user:{uid:0,gid:0}}' >"$T/p.json"
  run runc exec --process "$T/p.json" c1
  [ "$output" = from-process-file ]
  runc exec -d --pid-file "$T/epid" c1 sleep 50
  [ "$(cat /proc/$(cat "$T/epid")/comm)" = sleep ]
  runc kill c1 KILL
  for i in $(seq 50); do [ "$(runc_status c1)" = stopped ] && break; sleep 0.1; done
  run runc exec c1 true
  [ "$status" -ne 0 ]
  [[ "$output" == *"stopped"* ]]
}

@test "runc: hooks run in the spec's order with the state on stdin; a hook past its timeout fails create" {
  cat >"$T/hook" <<EOS
#!/bin/sh
read -r state
echo "\$1 \$(echo "\$state" | jq -r '.status + " " + .id + " " + (.pid|tostring)')" >>"$T/hooks.log"
EOS
  chmod +x "$T/hook"
  h() { echo "{\"path\":\"$T/hook\",\"args\":[\"hook\",\"$1\"]}"; }
  spec_set ".hooks = {prestart:[$(h prestart)], createRuntime:[$(h createRuntime)], createContainer:[$(h createContainer)], poststart:[$(h poststart)], poststop:[$(h poststop)], startContainer:[{path:\"/bin/sh\",args:[\"sh\",\"-c\",\"echo started > /tmp/start-hook\"]}]}"
  spec_args sleep 100
  runc create c1
  pid=$(runc state c1 | jq .pid)
  [ "$(cut -d' ' -f1 "$T/hooks.log" | tr '\n' ' ')" = "prestart createRuntime createContainer " ]
  grep -q "^prestart created c1 $pid\$" "$T/hooks.log"
  [ ! -e "$B/rootfs/tmp/start-hook" ]
  runc start c1
  [ "$(cat "$B/rootfs/tmp/start-hook")" = started ]
  grep -q "^poststart running c1 $pid\$" "$T/hooks.log"
  runc delete --force c1
  grep -q "^poststop stopped c1" "$T/hooks.log"
  [ "$(wc -l <"$T/hooks.log")" -eq 5 ]

  spec_set ".hooks = {createRuntime:[{path:\"/bin/sleep\",args:[\"sleep\",\"30\"],timeout:1}]}"
  SECONDS=0
  run runc create c2
  [ "$status" -ne 0 ]
  [[ "$output" == *"createRuntime hook /bin/sleep"*"timeout of 1 s"* ]]
  [ "$SECONDS" -lt 10 ]
  [ ! -d "$STATE/c2" ]
  [ ! -d /sys/fs/cgroup/pids/"$CG" ] && [ ! -d /sys/fs/cgroup/"$CG" ]
}

@test "runc: a spec field shale does not implement is refused by name, leaving nothing" {
  spec_set '.linux.intelRdt = {closID: "x"} | .process.apparmorProfile = "p"'
  run runc create c1
  [ "$status" -ne 0 ]
  [[ "$output" == *"linux.intelRdt"* ]]
  [[ "$output" == *"process.apparmorProfile"* ]]
  [ -z "$(ls "$STATE" 2>/dev/null)" ]
  run runc --systemd-cgroup create c1
  [ "$status" -ne 0 ]
  [[ "$output" == *"systemd"* ]]
}

@test "runc: linux.devices makes the nodes; sysctl, oomScoreAdj and umask are applied" {
  spec_set '.linux.devices = [{path: "/dev/mynull", type: "c", major: 1, minor: 3, fileMode: 438, uid: 7, gid: 8}] | .linux.sysctl = {"net.ipv4.ip_unprivileged_port_start": "80"} | .process.oomScoreAdj = 123 | .process.user.umask = 63'
  spec_args sh -c 'stat -c "%t:%T %a %u:%g" /dev/mynull; echo x > /dev/mynull && echo wrote; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/self/oom_score_adj; umask'
  run runc run c1
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "1:3 666 7:8" ]
  [ "${lines[1]}" = wrote ]
  [ "${lines[2]}" = 80 ]
  [ "${lines[3]}" = 123 ]
  [ "${lines[4]}" = 0077 ]
}

@test "runc: a user namespace with uid/gid mappings" {
  # The container's root (host uid 100000) must reach the rootfs through the test's dirs.
  local d="$B"
  while [ "$d" != / ]; do chmod a+x "$d"; d=$(dirname "$d"); done
  spec_set '.linux.namespaces += [{type: "user"}] | .linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}] | .linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}]'
  spec_args sh -c 'cat /proc/self/uid_map /proc/self/gid_map; id -u; sleep 100'
  runc run -d c1 >"$T/out"
  pid=$(runc state c1 | jq .pid)
  for i in $(seq 50); do [ -s "$T/out" ] && grep -q '^0$' "$T/out" && break; sleep 0.1; done
  [ "$(awk 'NR==1 {print $1, $2, $3}' "$T/out")" = "0 100000 65536" ]
  [ "$(awk 'NR==2 {print $1, $2, $3}' "$T/out")" = "0 100000 65536" ]
  grep -qx 0 "$T/out"
  # In the host's eyes the container's root is uid 100000.
  [ "$(awk '/^Uid:/ {print $2}' /proc/$pid/status)" = 100000 ]
  runc exec c1 sh -c 'id -u' | grep -qx 0
  runc delete --force c1
  # Mappings without a user namespace are an error naming the fields.
  spec_set '.linux.namespaces -= [{type: "user"}]'
  run runc create c2
  [ "$status" -ne 0 ]
  [[ "$output" == *"uidMappings"* ]]
}

@test "runc: only stdio, --preserve-fds and LISTEN_FDS fds reach the container; cwd stays inside" {
  # probe fds lists the open fds above stderr.
  spec_args /bin/probe fds
  run runc run c1 5<"$B/config.json"
  [ "$status" -eq 0 ]
  [ -z "$output" ] || { echo "leaked fds: $output"; false; }
  run runc run --preserve-fds 2 c1 3<"$B/config.json" 4<"$B/config.json" 5<"$B/config.json"
  [ "$status" -eq 0 ]
  [ "$(echo $output)" = "3 4" ] || { echo "fds: $output"; false; }
  spec_args sh -c 'echo $LISTEN_FDS $LISTEN_PID; ls /proc/self/fd | tr "\n" " "'
  run env LISTEN_FDS=1 "$SHALE_RUNC" --root "$STATE" run --bundle "$B" c1 3<"$B/config.json"
  [[ "${lines[0]}" == "1 1" ]]
  [[ "${lines[1]}" == "0 1 2 3 "* ]]
  # A cwd that is a symlink out of the root resolves inside it (CVE-2024-21626).
  ln -s ../../../../../../.. "$B/rootfs/escape"
  spec_set '.process.cwd = "/escape"'
  spec_args /bin/probe ls .
  run runc run c1
  [ "$status" -eq 0 ]
  [[ "$output" == *probe* || "$output" == *bin* ]]
  [[ "$output" != *"$(basename "$T")"* ]]
}

@test "runc: process.terminal sends the pty master over --console-socket" {
  command -v python3 >/dev/null || { [ -z "${SHALE_CI:-}" ] || false; skip "python3 is not installed"; }
  spec_set '.process.terminal = true'
  spec_args sh -c 'tty; echo cols=$(stty size)'
  spec_set '.process.consoleSize = {height: 30, width: 101}'
  # A console socket receiver, as runc's recvtty: it prints what the terminal shows.
  timeout 30 python3 - "$T/console.sock" >"$T/tty.out" 2>&1 <<'EOS' &
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 1024, 1)
out = b""
while True:
    try:
        d = os.read(fds[0], 4096)
    except OSError:
        break
    if not d:
        break
    out += d
sys.stdout.write(out.decode())
EOS
  rcv=$!
  for i in $(seq 50); do [ -S "$T/console.sock" ] && break; sleep 0.1; done
  run runc run --console-socket "$T/console.sock" c1
  [ "$status" -eq 0 ]
  wait "$rcv" || true
  grep -q '^/dev/pts/0' "$T/tty.out" || { cat "$T/tty.out"; false; }
  grep -q 'cols=30 101' "$T/tty.out"
  spec_set '.process.terminal = true'
  run runc create c2
  [ "$status" -ne 0 ]
  [[ "$output" == *"--console-socket"* ]]
}

@test "runc: the container cannot write the runtime binary through /proc/<pid>/exe (CVE-2019-5736)" {
  # A copy of the binary: if the protection failed, only the copy would be damaged.
  cp "$SHALE_RUNC" "$T/shale-runc"
  before=$(sha "$T/shale-runc")
  spec_args sleep 100
  (cd "$B" && "$T/shale-runc" --root "$STATE" create c1)
  pid=$(runc state c1 | jq .pid)
  # The created init is our binary, blocked before exec: the attacker's chance. It waits,
  # holding /proc/1/exe open, for every runtime process to be gone, then opens it for writing.
  # While a runtime process (this exec, the start) still runs the same file, the kernel answers
  # "Text file busy"; that refusal proves nothing about the copy, so retry until it is gone.
  "$T/shale-runc" --root "$STATE" exec -d c1 sh -c 'exec 3</proc/1/exe; while [ "$(cat /proc/1/comm)" != sleep ]; do :; done; i=0; while :; do if (echo x >>/proc/self/fd/3) 2>/tmp/err; then echo WROTE; break; fi; if ! grep -q "Text file busy" /tmp/err || [ $i -ge 100 ]; then echo REFUSED; cat /tmp/err; break; fi; i=$((i+1)); sleep 0.1; done >/tmp/result.part 2>&1; mv /tmp/result.part /tmp/result'
  "$T/shale-runc" --root "$STATE" start c1
  for i in $(seq 150); do [ -s "$B/rootfs/tmp/result" ] && break; sleep 0.1; done
  cat "$B/rootfs/tmp/result"
  grep -q REFUSED "$B/rootfs/tmp/result"
  grep -q "Read-only file system\|Operation not permitted" "$B/rootfs/tmp/result"
  [ "$(sha "$T/shale-runc")" = "$before" ]
}

@test "runc: shale's own containers run under a read-only copy of shale too (CVE-2019-5736)" {
  common_setup
  import_busybox
  shale run -d --name c1 busybox:latest sleep 100
  pid=$(shale inspect c1 | jq -r '.[0].State.Pid')
  monitor=$(awk '{print $4}' /proc/"$pid"/stat)
  # The monitor, parent of the container's init (cloned from it), runs from the copy. Hold
  # its binary open as an attacker would, and once the monitor is gone open it for writing.
  [ "$(readlink /proc/"$monitor"/exe)" != "$SHALE_BIN" ]
  exec {held}<"/proc/$monitor/exe"
  shale rm -f c1
  for i in $(seq 50); do kill -0 "$monitor" 2>/dev/null || break; sleep 0.1; done
  run bash -c ": >>/dev/fd/$held"
  exec {held}<&-
  [ "$status" -ne 0 ]
  [[ "$output" == *"Read-only file system"* ]]
  common_teardown
}

# create_refused TEXT: `create c1` fails with a message holding TEXT and leaves no state.
create_refused() {
  run runc create c1
  [ "$status" -ne 0 ]
  [[ "$output" == *"$1"* ]]
  [ -z "$(ls "$STATE" 2>/dev/null)" ]
}

@test "runc: blockIO weight (BFQ) and throttles land in the container's cgroup files; network is applied or refused by name" {
  # The whole disk of this machine: throttles are per disk, not per partition.
  local disk="" d bfq=""
  for d in /sys/block/*; do
    [ -e "$d/device" ] && { disk=$(cat "$d/dev"); break; }
  done
  # BFQ, where the kernel has it, gives cgroups a weight file (CFQ's blkio.weight is gone).
  grep -qw bfq "$d/queue/scheduler" 2>/dev/null && bfq=1
  local dir file want wfile wwant
  if [ -e /sys/fs/cgroup/blkio/cgroup.procs ]; then
    dir=/sys/fs/cgroup/blkio/$CG file=blkio.throttle.read_bps_device want="$disk 1048576"
    wfile=blkio.bfq.weight wwant=500
  elif grep -qw io /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    dir=/sys/fs/cgroup/$CG file=io.max want="$disk rbps=1048576"
    wfile=io.bfq.weight wwant="default 500"
  fi
  if [ -z "$disk" ] || [ -z "$dir" ]; then
    [ -z "${SHALE_CI:-}" ] || false
    skip "no disk or no blkio/io cgroup controller here"
  fi
  local weight=""
  [ -n "$bfq" ] && weight="weight: 500,"
  spec_set ".linux.resources.blockIO = {$weight throttleReadBpsDevice: [{major: ${disk%:*}, minor: ${disk#*:}, rate: 1048576}]}"
  spec_args sleep 100
  runc create c1
  grep -qx "$want.*" "$dir/$file"
  [ -z "$bfq" ] || [ "$(cat "$dir/$wfile")" = "$wwant" ]
  runc delete --force c1

  spec_set ".linux.resources.blockIO = null | .linux.resources.network = {classID: 1048577}"
  if [ -e /sys/fs/cgroup/net_cls/cgroup.procs ]; then
    runc create c1
    [ "$(cat /sys/fs/cgroup/net_cls/$CG/net_cls.classid)" = 1048577 ]
    runc delete --force c1
  else
    # cgroup v2 has no net_cls; a v1 host may not mount it: refused, naming the field.
    create_refused linux.resources.network
  fi
}

@test "runc: rootfsPropagation shared shows in mountinfo and mounts reach a bind of /; unbindable cannot be bound" {
  spec_set '.process.capabilities.bounding += ["CAP_SYS_ADMIN"] | .process.capabilities.effective += ["CAP_SYS_ADMIN"] | .process.capabilities.permitted += ["CAP_SYS_ADMIN"] | .linux.seccomp = null | .linux.rootfsPropagation = "shared"'
  spec_args sh -c 'mkdir /t /m /s && touch /s/f && mount --bind / /t && mount --bind /s /m && ls /t/m; awk "\$5 == \"/\" && / shared:/" /proc/self/mountinfo | wc -l'
  run runc run c1
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = f ]
  [ "${lines[1]}" = 1 ]
  rm -rf "$B/rootfs/t" "$B/rootfs/m" "$B/rootfs/s"
  # The default (rprivate): the later mount does not reach the bind.
  spec_set '.linux.rootfsPropagation = null'
  run runc run c1
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = 0 ]
  rm -rf "$B/rootfs/t" "$B/rootfs/m" "$B/rootfs/s"
  spec_set '.linux.rootfsPropagation = "unbindable"'
  spec_args sh -c 'mkdir /t && mount --bind / /t && echo bound; awk "\$5 == \"/\" && / unbindable/" /proc/self/mountinfo | wc -l'
  run runc run c1
  [[ "$output" == *"Invalid argument"* ]]
  [ "${lines[-1]}" = 1 ]
  [[ "$output" != *bound* ]]
  spec_set '.linux.rootfsPropagation = "bogus"'
  create_refused 'linux.rootfsPropagation "bogus"'
}

@test "runc: an ociVersion that is not SemVer 1.x is refused by name" {
  spec_set '.ociVersion = "invalid"'
  create_refused 'ociVersion "invalid"'
}

@test "runc: a spec without a mount namespace shares the runtime's; delete leaves no mount behind" {
  spec_set '.linux.namespaces -= [{type: "mount"}]'
  spec_args sh -c 'readlink /proc/self/ns/mnt; ls /proc/self/fd >/dev/null && echo proc'
  run runc run c1
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "$(readlink /proc/self/ns/mnt)" ]
  [ "${lines[1]}" = proc ]
  ! grep -q " $B/" /proc/self/mountinfo || false
  spec_args sleep 100
  runc create c1
  grep -q " $B/rootfs/proc " /proc/self/mountinfo
  runc delete --force c1
  ! grep -q " $B/" /proc/self/mountinfo || false
  # A create that fails half-way through the mounts leaves none either.
  spec_set '.mounts += [{destination: "/x", type: "nosuchfs", source: "none"}]'
  create_refused /x
  ! grep -q " $B/" /proc/self/mountinfo || false
  # Its propagation would be the host's: refused.
  spec_set '.linux.rootfsPropagation = "shared"'
  create_refused "linux.rootfsPropagation needs a mount namespace"
  ! grep -q " $B/" /proc/self/mountinfo || false
}

@test "runc: shale-runc is one static PIE and runs a container within 3 MiB of peak RSS" {
  # No dynamic loader: it execs twice per container (the CVE-2019-5736 copy), and ld.so
  # mapping and relocating libc and libm each time cost time and resident pages. crun's
  # peak is 3.3 MiB here; a dynamically linked shale-runc's was 3.5.
  run readelf -lW "$SHALE_RUNC"
  [ "$status" -eq 0 ]
  [[ "$output" == *"DYN (Position-Independent Executable"* ]]
  [[ "$output" != *"INTERP"* ]]
  spec_args true
  runc run c1
  rss=$( (cd "$B" && /usr/bin/time -f %M "$SHALE_RUNC" --root "$STATE" run c1) 2>&1 | tail -1)
  echo "peak RSS: $rss KiB"
  [ "$rss" -lt 3072 ]
}

@test "runc: linux.resources.unified lands in the cgroup2 files, update changes it; rdma and bad keys are refused by name" {
  # The cgroup2 directory of the container: the unified hierarchy itself (v2) or the hybrid
  # one a v1 host mounts at /sys/fs/cgroup/unified (this machine).
  local dir
  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then dir=/sys/fs/cgroup/$CG
  else dir=/sys/fs/cgroup/unified/$CG; fi
  spec_set '.linux.resources.unified = {"cgroup.max.descendants": "7"}'
  spec_args sleep 100
  runc create c1
  [ "$(cat "$dir/cgroup.max.descendants")" = 7 ]
  echo '{"unified": {"cgroup.max.depth": "3"}}' | runc update --resources - c1
  [ "$(cat "$dir/cgroup.max.depth")" = 3 ]
  runc delete --force c1
  [ ! -d "$dir" ]

  spec_set '.linux.resources.unified = {"cgroup.procs": "1"}'
  create_refused 'linux.resources.unified["cgroup.procs"]'
  spec_set '.linux.resources.unified = {"nosuchctl.limit": "1"}'
  create_refused nosuchctl.limit
  # No rdma controller on this machine: refused naming the field. With one, rdma.max holds
  # the line.
  spec_set '.linux.resources.unified = null | .linux.resources.rdma = {"mlx5_0": {"hcaHandles": 2}}'
  if ls /sys/fs/cgroup/rdma/rdma.max /sys/fs/cgroup/rdma.max >/dev/null 2>&1; then
    run runc create c1
    [[ "$status" -eq 0 || "$output" == *"rdma"* ]]
    runc delete --force c1 2>/dev/null || true
  else
    create_refused linux.resources.rdma
  fi
}

# idmapped_mount DEST SOURCE OPTIONS_JSON [MAPS_JSON]: appends a bind of SOURCE on DEST with
# OPTIONS (a JSON array) and, when given, MAPS as both its uidMappings and gidMappings.
idmapped_mount() {
  local maps=""
  [ -n "${4:-}" ] && maps=", uidMappings: $4, gidMappings: $4"
  spec_set ".mounts += [{destination: \"$1\", type: \"bind\", source: \"$2\", options: $3$maps}]"
}

@test "runc: an idmapped bind mount (mounts[].uidMappings) shows and writes ids through its mapping" {
  local h="$T/host"
  mkdir -p "$h"
  touch "$h/a" "$h/b" "$h/r"
  chown 1000:1000 "$h" "$h/a"
  chown 1001:1001 "$h/b"
  chmod 755 "$h"
  # runtime-spec (and runc, crun, the kernel): a file the source's file system says is owned by
  # containerID + i shows as hostID + i. So host 1000 and 1001 show as 0 and 1, root's 0 is
  # outside the mapping (the overflow id), and what root creates lands as 1000 on the host.
  idmapped_mount /data "$h" '["bind", "idmap"]' '[{containerID: 1000, hostID: 0, size: 2}]'
  spec_args sh -c 'stat -c %u:%g /data/a /data/b /data/r /data; touch /data/new && echo made'
  run runc run c1
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = 0:0 ]
  [ "${lines[1]}" = 1:1 ]
  [ "${lines[2]}" = 65534:65534 ]
  [ "${lines[3]}" = 0:0 ]  # the directory: root owns it here (no CAP_DAC_OVERRIDE needed)
  [ "${lines[4]}" = made ]
  [ "$(stat -c %u:%g "$h/new")" = 1000:1000 ]
  # The other direction: containerID 0 hostID 1000 shows the host's root-owned file as 1000.
  spec_set '.mounts[-1].uidMappings = [{containerID: 0, hostID: 1000, size: 2}] | .mounts[-1].gidMappings = [{containerID: 0, hostID: 1000, size: 2}]'
  spec_args sh -c 'stat -c %u:%g /data/r /data/a'
  run runc run c1
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = 1000:1000 ]
  [ "${lines[1]}" = 65534:65534 ]
  # ro is applied on top of the mapping; the tree's fd does not reach the container.
  spec_set '.mounts[-1].options = ["bind", "idmap", "ro"]'
  spec_args sh -c 'touch /data/x 2>/dev/null && echo wrote; /bin/probe fds; echo end'
  run runc run c1
  [ "$status" -eq 0 ]
  [ "$output" = end ] || { echo "output: $output"; false; }
  [ ! -e "$h/x" ]
  # The bind on the host is untouched and nothing is left mounted.
  [ "$(stat -c %u:%g "$h/a")" = 1000:1000 ]
  ! grep -q " $h " /proc/self/mountinfo || false
}

@test "runc: ridmap maps every mount of an rbind, idmap only its top one" {
  local h="$T/host"
  mkdir -p "$h/sub"
  touch "$h/a"
  chown 1000:1000 "$h/a"
  mount -t tmpfs -o mode=755 tmpfs "$h/sub"
  touch "$h/sub/f"
  chown 1001:1001 "$h/sub/f"
  local maps='[{containerID: 1000, hostID: 0, size: 2}]'
  idmapped_mount /r "$h" '["rbind", "ridmap"]' "$maps"
  idmapped_mount /i "$h" '["rbind", "idmap"]' "$maps"
  spec_args sh -c 'stat -c %u:%g /r/a /r/sub/f /i/a /i/sub/f'
  run runc run c1
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = 0:0 ]
  [ "${lines[1]}" = 1:1 ]
  [ "${lines[2]}" = 0:0 ]
  [ "${lines[3]}" = 1001:1001 ]
}

@test "runc: idmapped mounts in a container with a user namespace: its mapping, or the mount's own" {
  local d="$B"
  while [ "$d" != / ]; do chmod a+x "$d"; d=$(dirname "$d"); done
  local h="$T/host"
  mkdir -p "$h"
  touch "$h/f"
  chmod 755 "$h"
  spec_set '.linux.namespaces += [{type: "user"}] | .linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}] | .linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}]'
  # idmap without mappings takes the container's: the host's root-owned files are root's in
  # the container, and its root's files are root's on the host. Mount mappings are in host
  # ids (runc's reading): hostID 100000 is the container's 0. A plain bind shows nobody.
  # The container's root may not create mount points in the host root's rootfs.
  mkdir "$B/rootfs/own" "$B/rootfs/given" "$B/rootfs/plain"
  idmapped_mount /own "$h" '["bind", "idmap"]'
  idmapped_mount /given "$h" '["bind"]' '[{containerID: 0, hostID: 100000, size: 65536}]'
  idmapped_mount /plain "$h" '["bind"]'
  spec_args sh -c 'stat -c %u:%g /own/f /given/f /plain/f; touch /own/n1 /given/n2 && echo made; touch /plain/n3 2>/dev/null || echo refused'
  run runc run c1
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = 0:0 ]
  [ "${lines[1]}" = 0:0 ]
  [ "${lines[2]}" = 65534:65534 ]
  [ "${lines[3]}" = made ]
  [ "${lines[4]}" = refused ]
  [ "$(stat -c %u:%g "$h/n1")" = 0:0 ]
  [ "$(stat -c %u:%g "$h/n2")" = 0:0 ]
}

@test "runc: idmapped mounts are refused clearly where they cannot be; features reports them" {
  run "$SHALE_RUNC" features
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | jq .linux.mountExtensions.idmap.enabled)" = true ]
  [ "$(echo "$output" | jq '.mountOptions | index("idmap") != null and index("ridmap") != null')" = true ]
  local h="$T/host"
  mkdir -p "$h"
  local maps='[{containerID: 1000, hostID: 0, size: 2}]'
  # A file system without idmapped mounts (ramfs): the kernel's refusal, named.
  mount -t ramfs ramfs "$h"
  idmapped_mount /data "$h" '["bind", "idmap"]' "$maps"
  create_refused "mount /data"
  [[ "$output" == *"MOUNT_ATTR_IDMAP"* ]]
  [[ "$output" == *"ramfs"* ]]
  umount "$h"
  # idmap without mappings needs a user namespace to take them from.
  spec_set '.mounts[-1] |= del(.uidMappings, .gidMappings)'
  create_refused "no user namespace"
  # Not a bind.
  spec_set '.mounts[-1] = {destination: "/data", type: "tmpfs", source: "tmpfs", options: ["idmap"], uidMappings: [{containerID: 0, hostID: 1000, size: 1}], gidMappings: [{containerID: 0, hostID: 1000, size: 1}]}'
  create_refused "bind mounts only"
  # Only one of the two, or overlapping lines: the spec's own rules, by field.
  idmapped_mount /half "$h" '["bind"]'
  spec_set '.mounts[-2] = .mounts[-1] | .mounts[-1].uidMappings = [{containerID: 0, hostID: 1000, size: 1}]'
  create_refused "uidMappings needs gidMappings"
  spec_set '.mounts[-1].gidMappings = [{containerID: 0, hostID: 1000, size: 5}, {containerID: 2, hostID: 3000, size: 1}]'
  create_refused "overlap"
  ! grep -q " $B/" /proc/self/mountinfo || false
}

@test "runc: an idmapped bind of a shared host mount is private, as a plain bind is" {
  local h="$T/host"
  mkdir -p "$h/sub"
  mount --bind "$h" "$h"
  mount --make-shared "$h"
  # The clone of a shared mount would be its peer (or slave): the container's mounts under it
  # would reach the host, or the host's the container. Both binds are private.
  spec_set '.process.capabilities.bounding += ["CAP_SYS_ADMIN"] | .process.capabilities.effective += ["CAP_SYS_ADMIN"] | .process.capabilities.permitted += ["CAP_SYS_ADMIN"] | .linux.seccomp = null'
  idmapped_mount /data "$h" '["rbind", "ridmap"]' '[{containerID: 0, hostID: 0, size: 65536}]'
  idmapped_mount /plain "$h" '["rbind"]'
  spec_args sh -c 'grep -E " /(data|plain) " /proc/self/mountinfo; mount -t tmpfs tmpfs /data/sub && echo mounted; sleep 100'
  runc run -d c1 >"$T/out"
  for i in $(seq 50); do grep -q mounted "$T/out" && break; sleep 0.1; done
  cat "$T/out"
  grep -q mounted "$T/out"
  grep -q " /data .*idmapped" "$T/out"
  ! grep -E "shared:|master:" "$T/out" || false
  ! grep -q " $h/sub " /proc/self/mountinfo || false
  runc delete --force c1
}

@test "runc: SCMP_ACT_NOTIFY hands the notify fd and the process state to listenerPath; the agent's errno reaches the container" {
  # noNewPrivileges (the default spec's): the filter goes in before the init reports ready.
  start_agent a1 a1
  local a1=$AGENT_PID
  notify_mkdir_to a1
  # What the init does after the filter is in (kReadyToExec, the fifo wait, startContainer
  # hooks, execve) runs under it: a hook's mkdir is the agent's to answer too.
  spec_set '.hooks.startContainer = [{path: "/bin/sh", args: ["sh", "-c", "mkdir /hooked 2>/hook.out; echo hook-rc=$? >>/hook.out"]}]'
  spec_args sh -c 'mkdir /x; echo rc=$?; [ -d /x ] || echo no-x; exec sleep 100'
  runc create c1 >"$T/out" 2>&1
  # The agent had the state before create returned; it writes it out just after.
  wait_file "$T/a1.json"
  pid=$(runc state c1 | jq .pid)
  [ "$(runc_status c1)" = created ]
  jq . "$T/a1.json"
  [ "$(jq -c .fds "$T/a1.json")" = '["seccompFd"]' ]
  [ "$(jq .pid "$T/a1.json")" = "$pid" ]
  [ "$(jq -r .metadata "$T/a1.json")" = "agent=a1;x=1" ]
  [ "$(jq -r .ociVersion "$T/a1.json")" = 1.1.0 ]
  [ "$(jq -r .state.id "$T/a1.json")" = c1 ]
  [ "$(jq -r .state.status "$T/a1.json")" = creating ]
  [ "$(jq .state.pid "$T/a1.json")" = "$pid" ]
  [ "$(jq -r .state.bundle "$T/a1.json")" = "$B" ]
  runc start c1
  for i in $(seq 100); do grep -q '^rc=' "$T/out" && break; sleep 0.05; done
  cat "$T/out"
  grep -q "can't create directory '/x': Read-only file system" "$T/out"
  grep -qx rc=1 "$T/out"
  grep -qx no-x "$T/out"
  [ ! -d "$B/rootfs/x" ]
  cat "$B/rootfs/hook.out"
  grep -q "Read-only file system" "$B/rootfs/hook.out"
  grep -qx hook-rc=1 "$B/rootfs/hook.out"
  [ ! -d "$B/rootfs/hooked" ]
  spec_set 'del(.hooks)'

  # exec: its own filter and notify fd, sent with the running container's state to the
  # same listenerPath, where a second agent listens now.
  start_agent a1 a2
  local a2=$AGENT_PID
  run runc exec c1 sh -c 'mkdir /y; echo rc=$?'
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *"can't create directory '/y': Read-only file system"* ]]
  [[ "$output" == *"rc=1"* ]]
  wait_file "$T/a2.json"
  [ "$(jq -r .state.status "$T/a2.json")" = running ]
  [ "$(jq .state.pid "$T/a2.json")" = "$pid" ]
  [ "$(jq .pid "$T/a2.json")" -gt 0 ] && [ "$(jq .pid "$T/a2.json")" != "$pid" ]
  [ "$(jq -r .metadata "$T/a2.json")" = "agent=a1;x=1" ]
  wait_agent "$a2"  # the exec'd process is gone: its fd hung up

  runc delete --force c1
  wait_agent "$a1"

  # Without noNewPrivileges the filter goes in early (before the user switch): same result.
  start_agent a3 a3
  local a3=$AGENT_PID
  notify_mkdir_to a3
  spec_set '.process.noNewPrivileges = false'
  spec_args sh -c 'mkdir /z; echo rc=$?'
  run runc run c2
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *"can't create directory '/z': Read-only file system"* ]]
  [[ "$output" == *"rc=1"* ]]
  [ "$(jq -r .state.id "$T/a3.json")" = c2 ]
  wait_agent "$a3"
}

@test "runc: a seccomp listener that cannot be reached fails create naming its path, leaving nothing; NOTIFY needs a listenerPath" {
  notify_mkdir_to nobody
  spec_args sleep 100
  run runc create c1
  echo "$output"
  [ "$status" -ne 0 ]
  [[ "$output" == *"$T/nobody.sock"* ]]
  [ ! -e "$STATE/c1" ]
  for d in /sys/fs/cgroup/*/"$CG"; do [ ! -d "$d" ] || { echo "left behind: $d"; false; }; done
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [[ "$r" != "$B"/* ]] || { echo "left behind: ${p#/proc/} ($r)"; false; }
  done
  # A socket nobody accepts on is refused too (ECONNREFUSED), still by path.
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/nobody.sock"
  run runc create c1
  [ "$status" -ne 0 ]
  [[ "$output" == *"$T/nobody.sock"* ]]
  [ ! -e "$STATE/c1" ]

  spec_set 'del(.linux.seccomp.listenerPath) | del(.linux.seccomp.listenerMetadata)'
  create_refused "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"
  spec_set '.linux.seccomp.listenerMetadata = "m"'
  create_refused "listenerMetadata is set without linux.seccomp.listenerPath"

  run "$SHALE_RUNC" features
  [ "$(echo "$output" | jq '.linux.seccomp.actions | index("SCMP_ACT_NOTIFY") != null')" = true ]
  [ "$(echo "$output" | jq '.linux.seccomp.supportedFlags | index("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") != null')" = true ]
}

@test "runc: process.scheduler, process.ioPriority and linux.personality reach the process, in create and exec; bad values are refused by name" {
  spec_set '.process.scheduler = {policy: "SCHED_BATCH", nice: 5} | .process.ioPriority = {class: "IOPRIO_CLASS_IDLE", priority: 0} | .linux.personality = {domain: "LINUX32"}'
  # /proc/self/stat: field 19 is the nice value, 41 the policy (SCHED_BATCH = 3).
  spec_args sh -c 'uname -m; awk "{print \$19, \$41}" /proc/self/stat; ionice -p $$'
  run runc run c1
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = i686 ]
  [ "${lines[1]}" = "5 3" ]
  [[ "${lines[2]}" == idle* ]]
  # exec takes its own from --process, and the container's personality.
  spec_args sleep 100
  runc create c1
  runc start c1
  jq '.process | .args = ["sh", "-c", "uname -m; awk \"{print \\$19, \\$41}\" /proc/self/stat; ionice -p $$"] | .scheduler = {policy: "SCHED_IDLE"} | .ioPriority = {class: "IOPRIO_CLASS_BE", priority: 6}' \
    "$B/config.json" >"$T/process.json"
  run runc exec --process "$T/process.json" c1
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = i686 ]
  [ "${lines[1]}" = "0 5" ]
  [[ "${lines[2]}" == *"best-effort"*6* ]]
  runc delete --force c1

  spec_set '.process.scheduler = {policy: "SCHED_ISO"}'
  create_refused process.scheduler.policy
  spec_set '.process.scheduler = null | .process.ioPriority = {class: "IOPRIO_CLASS_BE", priority: 9}'
  create_refused process.ioPriority.priority
  spec_set '.process.ioPriority = null | .linux.personality = {domain: "LINUX64"}'
  create_refused linux.personality.domain
}

@test "runc: cpu burst and idle land in the cpu controller's files (v1 cpu.cfs_burst_us/cpu.idle, v2 cpu.max.burst/cpu.idle)" {
  local dir burst
  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then dir=/sys/fs/cgroup/$CG burst=cpu.max.burst
  else dir=/sys/fs/cgroup/cpu/$CG burst=cpu.cfs_burst_us; fi
  spec_set '.linux.resources.cpu = {quota: 50000, period: 100000, burst: 20000, idle: 1}'
  spec_args sleep 100
  runc create c1
  [ "$(cat "$dir/$burst")" = 20000 ]
  [ "$(cat "$dir/cpu.idle")" = 1 ]
  runc delete --force c1
  # A burst above the quota: the kernel refuses it, and the error names the field.
  spec_set '.linux.resources.cpu = {quota: 50000, period: 100000, burst: 90000}'
  create_refused linux.resources.cpu.burst
}

@test "runc: memory.checkBeforeUpdate refuses an update below the current usage and keeps the limit; useHierarchy is applied" {
  local dir limit
  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then dir=/sys/fs/cgroup/$CG limit=memory.max
  else dir=/sys/fs/cgroup/memory/$CG limit=memory.limit_in_bytes; fi
  spec_set '.linux.resources.memory = {limit: 67108864, useHierarchy: true}'
  spec_args sleep 100
  runc create c1
  [ -e /sys/fs/cgroup/cgroup.controllers ] || [ "$(cat "$dir/memory.use_hierarchy")" = 1 ]
  # The init, blocked before exec, uses some memory: a 4 KiB limit is below it.
  run runc update --resources - c1 <<<'{"memory": {"limit": 4096, "checkBeforeUpdate": true}}'
  [ "$status" -ne 0 ]
  [[ "$output" == *"checkBeforeUpdate"*"below the current usage"* ]]
  [ "$(cat "$dir/$limit")" = 67108864 ]
  echo '{"memory": {"limit": 33554432, "checkBeforeUpdate": true}}' | runc update --resources - c1
  [ "$(cat "$dir/$limit")" = 33554432 ]
  runc delete --force c1
}
