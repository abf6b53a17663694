// The container's side of networking: which namespace it joins, attaching it to CNI
// networks before it starts (network/), and NetworkSettings for inspect.
#include "container/container.h"

#include "util/strings.h"

namespace shale::container {

using nlohmann::json;

Result<void> Manager::PrepareNetwork(const Record& r, oci::RuntimeSpec& spec) {
  auto set_path = [&spec](const std::string& path) {
    for (oci::Namespace& n : spec.linux.namespaces)
      if (n.type == "network") n.path = path;
  };
  if (std::string other = NetworkContainer(r.host.network_mode); !other.empty()) {
    std::string oid = TRY(Resolve(other).Wrap("--network container:" + other));
    State os = TRY(GetState(oid));
    if (os.status != "running" && os.status != "paused")
      return Error(Errc::kInvalidArgument, "cannot join the network namespace of container " +
                                               other + ": it is not running");
    set_path("/proc/" + std::to_string(os.pid) + "/ns/net");
    // docker: a container on another's network shares its names and resolver too.
    for (oci::Mount& m : spec.mounts)
      if (m.destination == "/etc/hosts" || m.destination == "/etc/resolv.conf")
        m.source = ContainerDir(oid) + m.destination.substr(4);
    return Ok();
  }
  if (!UsesCni(r.host.network_mode)) return Ok();
  if (begun_network_id_ != r.id) TRY(BeginNetwork(r));
  begun_network_id_.clear();
  set_path(begun_netns_);
  return Ok();
}

Result<void> Manager::BeginNetwork(const Record& r) {
  network::AttachRequest req;
  req.container_id = r.id;
  req.container_name = r.name;
  req.hostname = r.config.hostname;
  req.networks = {{r.host.network_mode, r.host.network_aliases}};
  req.ports = r.host.port_bindings;
  req.hosts_path = ContainerDir(r.id) + "/hosts";
  // The ADDs go on in the background while the monitor creates the container in the netns
  // (about 15 ms of plugin work hidden behind the runtime's).
  network::PendingAttach a = TRY(networks_.AttachAsync(req));
  held_ports_ = std::move(a.port_fds);
  pending_network_ = std::move(a.op);
  begun_network_id_ = r.id;
  begun_netns_ = a.netns;
  return Ok();
}

void Manager::AbandonNetwork(const std::string& id) {
  (void)AwaitNetwork();
  (void)networks_.Detach(id);
  held_ports_.clear();
  if (begun_network_id_ == id) begun_network_id_.clear();
}

Result<void> Manager::AwaitNetwork() {
  network::PendingOp op = std::move(pending_network_);
  return op.Wait();
}

void Manager::StartNetworkRelease(const std::string& id) {
  releasing_network_ = networks_.DetachAsync(id);
  releasing_id_ = id;
}

network::PendingOp Manager::TakeNetworkRelease(const std::string& id) {
  if (releasing_id_ == id) {
    releasing_id_.clear();
    return std::move(releasing_network_);
  }
  return networks_.DetachAsync(id);
}

Result<runtime::Started> Manager::CreateAndStart(const Record& r, const oci::RuntimeSpec& spec,
                                                 const runtime::RunOptions& ro) {
  const std::string what = "set up the network of " + r.name;
  TRY(pending_network_.Ready().Wrap(what));  // the netns exists
  auto created = runtime::Create(spec, ro);
  if (!created) {
    // A setup that failed undoes itself, netns included, which the runtime may have found
    // gone: the setup's error is then the cause to report.
    if (auto n = AwaitNetwork(); !n) return std::move(n).error().Wrap(what);
    return std::move(created).error();
  }
  runtime::Created c = std::move(*created);
  // On failure ~Created kills the init, blocked before its execve, and removes its cgroup.
  TRY(AwaitNetwork().Wrap(what));
  return std::move(c).Start();
}

json Manager::NetworkSettings(const Record& r) {
  json ns = {{"Bridge", ""},      {"SandboxID", ""},     {"HairpinMode", false},
             {"SandboxKey", ""},  {"Ports", json::object()}, {"Gateway", ""},
             {"IPAddress", ""},   {"IPPrefixLen", 0},    {"MacAddress", ""},
             {"EndpointID", ""},  {"Networks", json::object()}};
  std::optional<network::Attachment> a = networks_.Load(r.id);
  if (!a) {
    if (r.host.network_mode == "host" || r.host.network_mode == "none")
      ns["Networks"][r.host.network_mode] = json::object();
    return ns;
  }
  ns["SandboxKey"] = a->netns;
  for (const network::PortMapping& m : a->ports)
    ns["Ports"][network::PortKey(m)].push_back(
        {{"HostIp", m.host_ip.empty() ? "0.0.0.0" : m.host_ip},
         {"HostPort", std::to_string(m.host_port)}});
  for (size_t i = 0; i < a->endpoints.size(); ++i) {
    const network::Endpoint& e = a->endpoints[i];
    std::string endpoint_id = Digest::Of(r.id + e.network_id).hex();
    if (i == 0) {
      ns["Gateway"] = e.gateway;
      ns["IPAddress"] = e.ip;
      ns["IPPrefixLen"] = e.prefix;
      ns["MacAddress"] = e.mac;
      ns["EndpointID"] = endpoint_id;
    }
    ns["Networks"][e.network] = {{"IPAMConfig", nullptr},
                                 {"Links", nullptr},
                                 {"Aliases", e.aliases.empty() ? json(nullptr) : json(e.aliases)},
                                 {"NetworkID", e.network_id},
                                 {"EndpointID", endpoint_id},
                                 {"Gateway", e.gateway},
                                 {"IPAddress", e.ip},
                                 {"IPPrefixLen", e.prefix},
                                 {"MacAddress", e.mac}};
  }
  return ns;
}

}  // namespace shale::container
