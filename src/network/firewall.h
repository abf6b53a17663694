// A network's own iptables rules: outbound NAT, the forwarding it allows, and its isolation
// from the other shale networks. Made once per network (docker's model: one MASQUERADE rule
// per bridge subnet, DOCKER-ISOLATION chains), not per container.
//
// Why not the plugins: the CNI bridge plugin's ipMasq and the firewall plugin write rules per
// container address, which costs each `run` about 70 ms of iptables calls in ADD and 60 ms in
// DEL here (measured, see docs/network.md); no Debian plugin writes per-network rules. The
// plugins still do all the per-container work (veth, IPAM, routes, port mappings).
//
// The rules live in four chains shared by every shale store on the machine:
//   filter FORWARD -> SHALE-FORWARD: first a jump to SHALE-ISOLATION for traffic leaving a
//     shale bridge for another interface, whose `-o <bridge> -j DROP` rules stop it when the
//     other interface is another shale network's bridge; then the accepts (replies, traffic
//     within the bridge, outbound, DNATed published ports), so a FORWARD policy of DROP (set
//     by docker, for one) does not cut containers off.
//   nat POSTROUTING -> SHALE-POSTROUTING: `-s <subnet> ! -o <bridge> -j MASQUERADE`.
// Internal networks get the isolation and the in-bridge accept only.
#pragma once

#include <string>
#include <vector>

#include "network/subnet.h"
#include "util/error.h"

namespace shale::network {

struct FirewallRule {
  std::string table, chain;
  bool first = false;  // inserted at the head of the chain (-I 1), else appended
  std::vector<std::string> match;  // the rule after the chain name
};

struct NetworkFirewall {
  std::string bridge;
  Ipv4Net subnet;
  bool internal = false;
};

// The rules of one network, in the order they are installed.
std::vector<FirewallRule> NetworkRules(const NetworkFirewall& n);

// Installs the chains, their jumps and the network's rules; idempotent (each rule checked
// with -C before it is added), serialised machine-wide by a lock under /run/shale.
Result<void> InstallNetworkRules(const NetworkFirewall& n);

// Deletes the network's rules (every copy); the shared chains stay, other stores use them.
void RemoveNetworkRules(const NetworkFirewall& n);

// Runs a tool with its output discarded; its exit status, or -1 if it could not run.
int RunTool(std::vector<std::string> args);

}  // namespace shale::network
