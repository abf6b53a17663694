#!/usr/bin/env bats
# Networking over CNI: the default bridge, published ports, user networks with names,
# isolation, host/none/container: modes, and clean-up after every way a container ends.
# All traffic stays on this machine (127.0.0.1 and the test's own bridges).

load helpers
bats_require_minimum_version 1.5.0

setup() {
  common_setup
  import_busybox
  command -v curl >/dev/null || skip_unless_ci "curl is not installed"
  [ -x /usr/lib/cni/bridge ] || skip_unless_ci "containernetworking-plugins is not installed"
}
teardown() {
  # A test that changed the host (a namespace, a FORWARD policy) leaves its undo here.
  if [ -n "${undo_host:-}" ]; then eval "$undo_host"; fi
  common_teardown
}

skip_unless_ci() {
  if [ "${SHALE_CI:-0}" = 1 ]; then
    echo "$1 (SHALE_CI=1: a missing dependency is a failure)" >&2
    return 1
  fi
  skip "$1"
}

# A TCP port nobody on this host listens on or has bound.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

bridge_of() {  # bridge_of NETWORK: its bridge device
  jq -r '.shale.bridge' "$SHALE_ROOT/network/networks/$1.conflist"
}

# HTTP server in a container serving "$2" at /.
httpd_cmd() { echo "mkdir -p /w && echo $1 > /w/index.html && exec httpd -f -p 80 -h /w"; }

# Nothing of container $1 left on the host: no veth on the store's bridges, no iptables rule
# naming it, no lease, no netns file, no cache.
no_network_trace_of() {
  local id="$1" f br
  [ ! -e "/run/shale/netns/$id" ]
  [ ! -e "$SHALE_ROOT/network/cache/$id.json" ]
  ! iptables-save | grep -q "$id" || false
  ! grep -rqs "$id" "$SHALE_ROOT/network/ipam" || false
  # Each bridge has one veth per endpoint the cache still records, and not one more.
  for f in "$SHALE_ROOT"/network/networks/*.conflist; do
    br=$(jq -r '.shale.bridge' "$f")
    local name want have
    name=$(jq -r '.name' "$f")
    want=$(cat "$SHALE_ROOT"/network/cache/*.json 2>/dev/null |
      jq -s --arg n "$name" '[.[].endpoints[] | select(.network == $n)] | length')
    have=$(ip -o link show master "$br" 2>/dev/null | wc -l)
    [ "$have" -eq "${want:-0}" ]
  done
}

@test "default bridge: eth0 with an address and default route, hosts names the container, inspect shows it" {
  run shale run -d --name b1 busybox sleep 999
  [ "$status" -eq 0 ]
  id="$output"
  subnet=$(jq -r '.shale.subnet' "$SHALE_ROOT/network/networks/bridge.conflist")
  ip=$(shale inspect b1 | jq -r '.[0].NetworkSettings.IPAddress')
  gw=$(shale inspect b1 | jq -r '.[0].NetworkSettings.Gateway')
  mac=$(shale inspect b1 | jq -r '.[0].NetworkSettings.Networks.bridge.MacAddress')
  [[ "$ip" =~ ^[0-9.]+$ ]]
  [ "$(shale inspect b1 | jq -r '.[0].NetworkSettings.Networks.bridge.IPAddress')" = "$ip" ]
  [ "$gw" = "${subnet%.0/*}.1" ] || [ "$gw" = "$(echo "$subnet" | sed 's#\.0/.*#.1#')" ]
  [[ "$mac" =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]]
  run shale exec b1 ip -o -4 addr show eth0
  [[ "$output" == *"inet $ip/"* ]]
  run shale exec b1 ip route
  [[ "$output" == *"default via $gw dev eth0"* ]]
  # /sys is the container's network namespace's, not the host's.
  run shale exec b1 ls /sys/class/net
  [ "$(echo $output)" = "eth0 lo" ]
  run shale exec b1 cat /etc/hosts
  [[ "$output" == *"$ip	${id:0:12}"* ]]
  run shale exec b1 cat /etc/resolv.conf
  ! grep -q "nameserver 127\." <<<"$output" || false
  # The bridge answers on the gateway address: the container reaches the host.
  run shale exec b1 ping -c 1 -W 2 "$gw"
  [ "$status" -eq 0 ]
  shale rm -f b1
  no_network_trace_of "$id"
  # What stays is the default bridge alone; `network rm bridge` takes it too.
  br=$(bridge_of bridge)
  ip link show "$br" >/dev/null
  shale network rm bridge
  ! ip link show "$br" 2>/dev/null || false
  ! iptables-save | grep -q -- "$br" || false
}

@test "-p 127.0.0.1:PORT:80: busybox httpd fetched by curl from the host and from another container" {
  port=$(free_port)
  run shale run -d --name web -p "127.0.0.1:$port:80" busybox sh -c "$(httpd_cmd hello-web)"
  [ "$status" -eq 0 ]
  id="$output"
  for i in $(seq 50); do curl -fs -m 2 "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  run curl -fs -m 5 "http://127.0.0.1:$port/"
  [ "$status" -eq 0 ]
  [ "$output" = hello-web ]
  run shale port web
  [ "$output" = "80/tcp -> 127.0.0.1:$port" ]
  run shale port web 80
  [ "$output" = "127.0.0.1:$port" ]
  [ "$(shale inspect web | jq -r '.[0].NetworkSettings.Ports["80/tcp"][0].HostPort')" = "$port" ]
  [ "$(shale inspect web | jq -r '.[0].HostConfig.PortBindings["80/tcp"][0].HostIp')" = 127.0.0.1 ]
  run shale ps
  [[ "$output" == *"127.0.0.1:$port->80/tcp"* ]]
  # From the container network: another container on the bridge, by the container's address.
  ip=$(shale inspect web | jq -r '.[0].NetworkSettings.IPAddress')
  run shale run --rm busybox wget -q -O - "http://$ip/"
  [ "$output" = hello-web ]
  shale rm -f web
  no_network_trace_of "$id"
  ! iptables-save -t nat | grep -q -- "--dport $port" || false
  run curl -fs -m 2 "http://127.0.0.1:$port/"
  [ "$status" -ne 0 ]
}

@test "-p CONTAINER_PORT takes a free host port; ranges; -P publishes EXPOSEd ports" {
  run shale run -d --name r1 -p 80 -p "127.0.0.1::81-82/udp" busybox sleep 999
  [ "$status" -eq 0 ]
  run shale port r1
  [ "${#lines[@]}" -eq 3 ]
  [[ "${lines[0]}" =~ ^80/tcp\ -\>\ 0\.0\.0\.0:[0-9]+$ ]]
  [[ "$output" == *"81/udp -> 127.0.0.1:"* ]]
  [[ "$output" == *"82/udp -> 127.0.0.1:"* ]]
  p1=$(free_port)
  p2=$((p1 + 1))
  if ! python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', $p2))" 2>/dev/null; then
    skip "port $p2 is busy on this host"
  fi
  shale run -d --name r2 -p "127.0.0.1:$p1-$p2:90-91" busybox sleep 999
  run shale port r2
  [ "$output" = "90/tcp -> 127.0.0.1:$p1
91/tcp -> 127.0.0.1:$p2" ]
  shale import -c "EXPOSE 8080" -c 'CMD ["sleep","999"]' "$(busybox_rootfs)" exposing:latest >/dev/null
  shale run -d --name r3 -P exposing
  run shale port r3
  [[ "$output" =~ ^8080/tcp\ -\>\ 0\.0\.0\.0:[0-9]+$ ]]
  run shale run --rm -p 8080:80-81 busybox true
  [ "$status" -eq 125 ]
  [[ "$output" == *"differ in size"* ]]
  run shale run --rm -p 80/sctp busybox true
  [ "$status" -eq 125 ]
  [[ "$output" == *"tcp or udp"* ]]
}

@test "a host port in use (by another program or another container) is refused with 125, leaving nothing" {
  port=$(free_port)
  python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $port)); s.listen(1); time.sleep(30)" &
holder=$!
for i in $(seq 50); do ss -ltn | grep -q ":$port " && break; sleep 0.1; done
run shale run -d --name clash -p "127.0.0.1:$port:80" busybox sleep 999
kill "$holder"
wait "$holder" 2>/dev/null || true
[ "$status" -eq 125 ]
[[ "$output" == *"Bind for 127.0.0.1:$port failed: port is already allocated"* ]]
[ -z "$(shale ps -aq)" ]
[ -z "$(ls "$SHALE_ROOT/network/cache" 2>/dev/null)" ]
! iptables-save -t nat | grep -q -- "--dport $port"

# Now a container holds it: the second one is refused at run, the first keeps serving.
shale run -d --name first -p "127.0.0.1:$port:80" busybox sh -c "$(httpd_cmd first)"
run shale run --rm -p "$port:80" busybox true
[ "$status" -eq 125 ]
[[ "$output" == *"port is already allocated"* ]]
[ "$(shale ps -aq | wc -l)" -eq 1 ]
for i in $(seq 50); do curl -fs -m 2 "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
[ "$(curl -fs -m 5 "http://127.0.0.1:$port/")" = first ]
}

@test "user network: containers reach each other by name and alias, hosts kept current, rm refused while in use" {
  shale network create appnet >/dev/null
  run shale network inspect appnet
  [ "$status" -eq 0 ]
  [ "$(jq -r '.[0].Name' <<<"$output")" = appnet ]
  [ "$(jq -r '.[0].Driver' <<<"$output")" = bridge ]
  subnet=$(jq -r '.[0].IPAM.Config[0].Subnet' <<<"$output")
  [[ "$subnet" =~ ^[0-9.]+/[0-9]+$ ]]
  shale run -d --name api --network appnet --network-alias backend busybox sh -c "$(httpd_cmd from-api)" >/dev/null
  shale run -d --name front --network appnet busybox sh -c "$(httpd_cmd from-front)" >/dev/null
  sleep 0.3
  [ "$(shale exec front wget -q -O - http://api/)" = from-api ]
  [ "$(shale exec front wget -q -O - http://backend/)" = from-api ]
  # The first container's hosts file learnt of the second after it started.
  [ "$(shale exec api wget -q -O - http://front/)" = from-front ]
  run shale network inspect appnet
  [ "$(jq -r '.[0].Containers | length' <<<"$output")" -eq 2 ]
  run shale network rm appnet
  [ "$status" -ne 0 ]
  [[ "$output" == *"active endpoints"* ]]
  front=$(shale inspect front | jq -r '.[0].Id')
  shale rm -f front
  no_network_trace_of "$front"
  run shale exec api cat /etc/hosts
  [[ "$output" != *front* ]]
  shale rm -f api
  br=$(bridge_of appnet)
  shale network rm appnet
  ! ip link show "$br" 2>/dev/null || false
  ! iptables-save | grep -q -- "$br" || false
  [ ! -e "$SHALE_ROOT/network/ipam/appnet" ]
}

@test "networks are isolated from each other; --internal has no way out; --subnet and --gateway" {
  shale network create neta >/dev/null
  shale network create netb >/dev/null
  shale run -d --name srv --network neta busybox sh -c "$(httpd_cmd srv)" >/dev/null
  ip=$(shale inspect srv | jq -r '.[0].NetworkSettings.Networks.neta.IPAddress')
  sleep 0.3
  [ "$(shale run --rm --network neta busybox wget -q -O - "http://$ip/")" = srv ]
  run shale run --rm --network netb busybox sh -c "echo GET / | timeout 3 nc $ip 80"
  [ "$status" -ne 0 ]
  [[ "$output" != *srv* ]]

  o3=$((RANDOM % 200 + 20))
  shale network create --internal --subnet "10.254.$o3.0/24" --gateway "10.254.$o3.9" inner >/dev/null
  run shale network inspect inner
  [ "$(jq -r '.[0].IPAM.Config[0].Gateway' <<<"$output")" = "10.254.$o3.9" ]
  [ "$(jq -r '.[0].Internal' <<<"$output")" = true ]
  run shale run --rm --network inner busybox ip route
  [ "$status" -eq 0 ]
  [[ "$output" != *default* ]]
  [[ "$output" == *"10.254.$o3.0/24"* ]]
  ! iptables-save -t nat | grep -q "10.254.$o3.0/24" || false
  run shale network create --subnet "10.254.$o3.0/25" clash
  [ "$status" -ne 0 ]
  [[ "$output" == *overlaps* ]]
  run shale network create --subnet 10.254.1.1/24 bad
  [ "$status" -ne 0 ]
  [[ "$output" == *"host bits"* ]]
}

@test "host, none and container: modes" {
  run shale run --rm --network none busybox cat /proc/net/dev
  [ "$(grep -c : <<<"$output")" -eq 1 ]   # lo only
  [[ "$output" == *lo:* ]]
  host_if=$(ip -o link show | awk -F': ' '$2 != "lo" {print $2; exit}' | cut -d@ -f1)
  run shale run --rm --network host busybox cat /proc/net/dev
  [[ "$output" == *"$host_if:"* ]]
  [ -z "$(ls "$SHALE_ROOT/network/cache" 2>/dev/null)" ]

  shale run -d --name owner busybox sh -c "$(httpd_cmd owner)" >/dev/null
  ip=$(shale inspect owner | jq -r '.[0].NetworkSettings.IPAddress')
  sleep 0.3
  run shale run --rm --network container:owner busybox sh -c 'ip -o -4 addr show eth0; wget -q -O - http://127.0.0.1/'
  [ "$status" -eq 0 ]
  [[ "$output" == *"inet $ip/"* ]]
  [[ "$output" == *owner* ]]
  run shale run --rm --network container:nosuch busybox true
  [ "$status" -eq 125 ]
  [[ "$output" == *"No such container"* ]]
  run shale run --rm --network container:owner -p 80 busybox true
  [ "$status" -eq 125 ]
  run shale run --rm --network nosuchnet busybox true
  [ "$status" -eq 125 ]
  [[ "$output" == *"network nosuchnet not found"* ]]
}

@test "clean-up: --rm exit, a start that fails, a dead monitor, network connect/disconnect" {
  port=$(free_port)
  run shale run --rm --name gone -p "127.0.0.1:$port:80" busybox true
  [ "$status" -eq 0 ]
  [ -z "$(ls "$SHALE_ROOT/network/cache")" ]
  ! iptables-save -t nat | grep -q -- "--dport $port" || false

  # Fails after the network was made: the command does not exist.
  run -127 shale run --name broken -p "127.0.0.1:$port:80" busybox /no/such/cmd
  [ "$status" -eq 127 ]
  id=$(shale inspect broken | jq -r '.[0].Id')
  no_network_trace_of "$id"

  shale run -d --name orphan -p "127.0.0.1:$port:80" busybox sleep 999 >/dev/null
  id=$(shale inspect orphan | jq -r '.[0].Id')
  mon=$(jq -r .MonitorPid "$SHALE_ROOT/containers/$id/state.json")
  kill -9 "$mon"
  for i in $(seq 50); do [ "$(shale inspect orphan | jq -r '.[0].State.Status')" = exited ] && break; sleep 0.1; done
  [ "$(shale inspect orphan | jq -r '.[0].State.ExitCode')" = 137 ]
  no_network_trace_of "$id"

  shale network create extra >/dev/null
  shale run -d --name multi busybox sleep 999 >/dev/null
  shale network connect --alias mm extra multi
  run shale exec multi ip -o -4 addr show eth1
  [ "$status" -eq 0 ]
  [ "$(shale inspect multi | jq -r '.[0].NetworkSettings.Networks | keys | join(",")')" = bridge,extra ]
  shale network disconnect extra multi
  run shale exec multi ip -o -4 addr show eth1
  [ "$status" -ne 0 ]
  shale network rm extra
}

@test "outbound NAT: a container reaches an address beyond the host as the host, even under a FORWARD policy of DROP; the rules are the network's, made once" {
  # "Beyond the host" is a network namespace of this test behind a veth pair: the traffic
  # leaves through an interface that is not the bridge, as it would to the internet.
  o=$((RANDOM % 200 + 20))
  out=shale-out-$$
  ip netns add "$out"
  undo_host="ip netns del $out"
  ip link add "vo$$" type veth peer name "vi$$"
  ip link set "vi$$" netns "$out"
  ip addr add "10.253.$o.1/30" dev "vo$$"
  ip link set "vo$$" up
  ip -n "$out" addr add "10.253.$o.2/30" dev "vi$$"
  ip -n "$out" link set "vi$$" up
  ip -n "$out" link set lo up
  # Answers each connection with the address it came from.
  ip netns exec "$out" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(8)
while True:
    c, peer = s.accept(); c.sendall((peer[0] + "\n").encode()); c.close()
' &
  server=$!
  policy=$(iptables -S FORWARD | awk '$1 == "-P" {print $3}')
  undo_host="kill $server 2>/dev/null; iptables -P FORWARD $policy; ip link del vo$$ 2>/dev/null; ip netns del $out 2>/dev/null; true"
  sleep 0.3
  # Docker sets the policy to DROP; the network's accepts must let its containers out anyway.
  iptables -P FORWARD DROP
  run shale run --rm busybox sh -c "echo | nc -w 3 10.253.$o.2 8080"
  [ "$status" -eq 0 ]
  [ "$(echo $output)" = "10.253.$o.1" ]
  sub=$(jq -r '.shale.subnet' "$SHALE_ROOT/network/networks/bridge.conflist")
  br=$(bridge_of bridge)
  iptables -t nat -C SHALE-POSTROUTING -s "$sub" ! -o "$br" -j MASQUERADE
  iptables -C SHALE-ISOLATION -o "$br" -j DROP
  # Once per network, not per container: a second container adds no rule.
  before=$(iptables-save | grep -c -- "$br")
  shale run --rm busybox true
  [ "$(iptables-save | grep -c -- "$br")" -eq "$before" ]
  shale network rm bridge
  ! iptables-save | grep -q -- "$br" || false
}

@test "a CNI ADD that fails in the background fails the run with the plugin's message, exit 125, and leaves nothing" {
  # A bridge plugin that refuses every ADD (and accepts the DEL that follows, as CNI says).
  mkdir -p "$BATS_TEST_TMPDIR/cni"
  cat >"$BATS_TEST_TMPDIR/cni/bridge" <<'EOS'
#!/bin/sh
cat >/dev/null
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","code":11,"msg":"no addresses left (test)"}'
  exit 1
fi
exit 0
EOS
  chmod +x "$BATS_TEST_TMPDIR/cni/bridge"
  run env CNI_PATH="$BATS_TEST_TMPDIR/cni" "$SHALE_BIN" --root "$SHALE_ROOT" run --name failing busybox echo never
  [ "$status" -eq 125 ]
  [[ "$output" == *"no addresses left (test)"* ]]
  [[ "$output" != *never* ]]
  # The container stays, created and never started (docker's "Created" after a failed start),
  # without any network: no netns, no cache, no lease, no veth.
  id=$(shale inspect failing | jq -r '.[0].Id')
  [ "$(shale inspect failing | jq -r '.[0].State.Running')" = false ]
  no_network_trace_of "$id"
  shale rm failing
  [ -z "$(shale ps -aq)" ]
}
