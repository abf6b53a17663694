// Container networks over CNI: the networks of a store (the default "bridge" and user
// networks), and attaching containers to them.
//
// On disk (under --root):
//   network/networks/<name>.conflist   a CNI network configuration list (what the plugins
//                                      get) plus shale's own "shale" object (id, subnet, ...)
//   network/cache/<container id>.json  what ADD made, per network: the conflist used, the
//                                      runtimeConfig, the result. DEL gets exactly this, so a
//                                      changed or removed network config cannot break it.
//   network/ipam/<name>/               host-local's leases (one file per address)
//   network/rules/<network id>         the boot id the network's firewall rules were made in
//   network/lock                       flock for every change
// Outside the store: the netns files (netns.h) and the machine-wide subnet claims (subnet.h).
//
// Lifecycle: Attach (before the container's process starts) reserves the host ports, makes
// the netns (lo up), runs ADD for every network, writes the cache after each step
// and the container's /etc/hosts. Detach (after it stopped, or on rm) runs DEL from the cache,
// removes the netns and the cache. A failed Attach undoes what it did before returning.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "network/ports.h"
#include "network/subnet.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/fs.h"

namespace shale::network {

inline constexpr const char* kDefaultNetwork = "bridge";

struct NetworkInfo {
  std::string name, id, bridge;
  Ipv4Net subnet;
  uint32_t gateway = 0;
  bool internal = false;
  int64_t created_ns = 0;
  nlohmann::json conflist;
};

struct CreateRequest {
  std::string name;
  std::string subnet, gateway;  // "" = chosen
  bool internal = false;
};

struct EndpointRequest {
  std::string network;
  std::vector<std::string> aliases;
};

struct AttachRequest {
  std::string container_id, container_name, hostname;
  std::vector<EndpointRequest> networks;  // the first gets eth0 and the published ports
  std::vector<PortMapping> ports;
  std::string hosts_path;  // rewritten in place (it is bind-mounted) to name the container
};

// One network of an attached container, as the cache holds it.
struct Endpoint {
  std::string network, network_id, ifname;
  std::vector<std::string> aliases;
  std::string ip, gateway, mac;
  int prefix = 0;
  nlohmann::json config, runtime_config, result;
};

struct Attachment {
  std::string container_id, container_name, hostname, hosts_path, netns;
  std::vector<PortMapping> ports;  // host ports filled in
  std::vector<Endpoint> endpoints;
  std::vector<UniqueFd> port_fds;  // held while the container runs; not cached
};

// Network work going on in a background process (a grandchild, so that no process has to
// reap it): the CNI plugins of Attach run while the container is being created, those of
// Detach while its layers are removed. Wait() gives its verdict, once. One dropped without
// Wait is abandoned: the process finishes on its own. (It is not waited for on destruction
// because a forked copy, the client's after it forked the monitor, must not read the verdict
// meant for the other.)
class PendingOp {
 public:
  PendingOp() = default;  // nothing pending: Wait() is Ok
  // `ready_mark`: the process first writes "R" once a milestone is reached (the netns
  // exists), which Ready() waits for.
  explicit PendingOp(UniqueFd report, std::string what, bool ready_mark = false)
      : report_(std::move(report)), what_(std::move(what)), ready_pending_(ready_mark) {}
  PendingOp(PendingOp&&) = default;
  PendingOp& operator=(PendingOp&&) = default;
  bool pending() const { return static_cast<bool>(report_); }
  // Blocks until the milestone is reached (Ok), or the process failed before it (its
  // verdict, and the op is over). Ok at once without a mark or once read.
  Result<void> Ready();
  Result<void> Wait();  // Ready(), then the verdict

 private:
  UniqueFd report_;
  std::string what_;
  bool ready_pending_ = false;
};

// Attach's first half, done: the ports are held and the netns is being made at `netns`
// (the path the runtime joins, once op.Ready()); op is the second half, every CNI ADD, the
// cache and the hosts file.
struct PendingAttach {
  std::string netns;
  std::vector<UniqueFd> port_fds;
  PendingOp op;
};

nlohmann::json ToJson(const Attachment& a);
Attachment AttachmentFromJson(const nlohmann::json& j);

// The hosts file of `self`: loopback lines, "<ip> <hostname>" for its first network, and
// on user networks one line per peer on a shared network: "<ip> <name> <aliases...>".
// Pure.
std::string RenderHosts(const Attachment& self, const std::vector<Attachment>& all);

// The CNI conflist of a bridge network: bridge (+ host-local IPAM with leases in
// `ipam_dir`, a gateway unless internal) and portmap. Outbound NAT, forwarding and the
// isolation between networks are per-network rules (firewall.h), not per container. Pure.
nlohmann::json BridgeConflist(const NetworkInfo& n, const std::string& ipam_dir);

class Networks {
 public:
  explicit Networks(std::string store_root);

  // kAlreadyExists for a taken name, kInvalidArgument for a bad name/subnet/gateway or a
  // gateway outside the subnet; the subnet is chosen (subnet.h) when not given.
  Result<NetworkInfo> Create(const CreateRequest& req);
  // By name, full id or unique id prefix; "bridge" is made on first use.
  // kNotFound "network X not found".
  Result<NetworkInfo> Get(std::string_view ref);
  Result<std::vector<NetworkInfo>> List();
  // kBusy while a container is attached. Deletes the bridge device, its isolation rules and
  // leases, and releases the subnet. Unlike docker, "bridge" may be removed too (when no
  // container uses it): it is made again, maybe on another subnet, when a container next
  // needs it. That is how a store is left with nothing of shale on the host.
  Result<void> Remove(std::string_view ref);
  // Removes user networks no container is attached to (never "bridge"); returns their names.
  Result<std::vector<std::string>> Prune();
  // docker's `network inspect` object.
  nlohmann::json InspectJson(const NetworkInfo& n);

  // See the lifecycle above. kAlreadyExists for a host port in use; nothing is left then.
  Result<Attachment> Attach(const AttachRequest& req);
  // Attach with the netns and the ADDs in the background: the container can be created in
  // the netns once op.Ready() is Ok, and must not start before op.Wait() succeeded. A failed
  // op has undone itself.
  Result<PendingAttach> AttachAsync(const AttachRequest& req);
  // Adds a running container (attached by Attach) to one more network.
  Result<void> Connect(const std::string& container_id, const EndpointRequest& ep);
  // kNotFound if the container is not on `network`.
  Result<void> Disconnect(const std::string& container_id, const std::string& network);
  // DEL for every cached network, netns and cache removed. Nothing cached: fine (only the
  // netns file is removed if any).
  Result<void> Detach(const std::string& container_id);
  // Detach in the background (for a stopped container whose layers are removed meanwhile).
  PendingOp DetachAsync(const std::string& container_id);
  // What the cache holds for a container (nullopt: not attached).
  std::optional<Attachment> Load(const std::string& container_id);
  std::vector<Attachment> LoadAll();

  // The default bridge's device name: shale0 for /var/lib/shale, "shale-<8 hex>" (from the
  // store path) for other stores, so that stores on one machine never share a bridge.
  std::string DefaultBridgeName() const;
  const std::string& dir() const { return dir_; }

 private:
  Result<FileLock> Lock();
  Result<NetworkInfo> Read(const std::string& name);
  Result<NetworkInfo> EnsureDefault();
  // The network's firewall rules (firewall.h), made once per boot.
  Result<void> EnsureRules(const NetworkInfo& n);
  Result<void> WriteCache(const Attachment& a);
  Result<void> RewriteHosts(const std::vector<std::string>& networks);
  // Attach's second half: every ADD, the cache after each, the hosts files. Undoes all of
  // Attach (DEL, netns, cache) when it fails.
  Result<void> AddEndpoints(Attachment& a, const std::vector<NetworkInfo>& nets,
                            const AttachRequest& req);
  // Attach's first half: the ports reserved, leftovers of a crash undone, rules, the netns,
  // the cache's first record. Returns the networks resolved.
  Result<std::vector<NetworkInfo>> BeginAttach(const AttachRequest& req, Attachment& a);
  Result<Endpoint> AddEndpoint(Attachment& a, const NetworkInfo& n, const EndpointRequest& ep,
                               const std::string& ifname, bool with_ports);
  void DelEndpoint(const Attachment& a, const Endpoint& e);

  std::string store_root_, dir_;
};

// Says once on stderr when IPv4 forwarding is off and will be turned on (the bridge plugin
// does it for gateway networks).
void NoteForwarding(bool needed);

}  // namespace shale::network
