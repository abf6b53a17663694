#include "network/network.h"

#include <fcntl.h>
#include <unistd.h>

#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <functional>
#include <set>

#include "network/cni.h"
#include "network/firewall.h"
#include "network/netns.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strings.h"

namespace shale::network {
namespace {

using nlohmann::json;

constexpr const char* kCniVersion = "1.0.0";

bool ValidNetworkName(std::string_view n) {
  if (n.empty() || n.size() > 64 || !isalnum(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

json InfoToShaleJson(const NetworkInfo& n) {
  return {{"id", n.id},
          {"bridge", n.bridge},
          {"subnet", FormatSubnet(n.subnet)},
          {"gateway", FormatIpv4(n.gateway)},
          {"internal", n.internal},
          {"created", n.created_ns}};
}

Result<NetworkInfo> InfoFromConflist(const json& c, const std::string& file) {
  auto it = c.find("shale");
  if (it == c.end() || !it->is_object())
    return Error(Errc::kCorrupt, file + ": no \"shale\" object (not made by shale network create)");
  NetworkInfo n;
  n.name = c.value("name", "");
  n.id = it->value("id", "");
  n.bridge = it->value("bridge", "");
  n.subnet = TRY(ParseSubnet(it->value("subnet", "")).Wrap(file));
  n.gateway = TRY(ParseIpv4(it->value("gateway", ""), "gateway").Wrap(file));
  n.internal = it->value("internal", false);
  n.created_ns = it->value("created", int64_t{0});
  n.conflist = c;
  return n;
}

// The container's own interface and first address in a CNI result.
void FillFromResult(Endpoint& e) {
  const json& r = e.result;
  if (!r.is_object()) return;
  json ifaces = r.value("interfaces", json::array());
  for (const json& ip : r.value("ips", json::array())) {
    std::string addr = ip.value("address", "");
    size_t slash = addr.find('/');
    if (slash == std::string::npos) continue;
    e.ip = addr.substr(0, slash);
    e.prefix = static_cast<int>(ParseInt(addr.substr(slash + 1), 0, 32, "prefix").value_or(0));
    e.gateway = ip.value("gateway", "");
    int idx = ip.value("interface", -1);
    if (idx >= 0 && idx < static_cast<int>(ifaces.size())) e.mac = ifaces[idx].value("mac", "");
    break;
  }
}

json EndpointToJson(const Endpoint& e) {
  return {{"network", e.network}, {"networkId", e.network_id}, {"ifname", e.ifname},
          {"aliases", e.aliases}, {"config", e.config},        {"runtimeConfig", e.runtime_config},
          {"result", e.result}};
}

Endpoint EndpointFromJson(const json& j) {
  Endpoint e;
  e.network = j.value("network", "");
  e.network_id = j.value("networkId", "");
  e.ifname = j.value("ifname", "");
  if (auto it = j.find("aliases"); it != j.end() && it->is_array())
    for (const json& a : *it)
      if (a.is_string()) e.aliases.push_back(a.get<std::string>());
  e.config = j.value("config", json());
  e.runtime_config = j.value("runtimeConfig", json::object());
  e.result = j.value("result", json());
  FillFromResult(e);
  return e;
}

// Removes a network's bridge. No plugin does: CNI leaves bridges. Stores made before the
// per-network rules (firewall.h) ran the firewall plugin, whose ingressPolicy rules (two per
// bridge, made on the first ADD) outlive every DEL: once the bridge goes they are dead rules,
// so delete exactly those two, spelled as the plugin made them.
void DeleteBridge(const std::string& name) {
  if (name.empty()) return;
  const std::string comment = "CNI firewall plugin rules (ingressPolicy: same-bridge)";
  while (RunTool({"iptables", "-t", "filter", "-D", "CNI-ISOLATION-STAGE-1", "-i", name, "!",
                  "-o", name, "-m", "comment", "--comment", comment, "-j",
                  "CNI-ISOLATION-STAGE-2"}) == 0) {
  }
  while (RunTool({"iptables", "-t", "filter", "-D", "CNI-ISOLATION-STAGE-2", "-o", name, "-m",
                  "comment", "--comment", comment, "-j", "DROP"}) == 0) {
  }
  if (!PathExists("/sys/class/net/" + name)) return;
  if (RunTool({"ip", "link", "delete", "dev", name}) != 0)
    LogWarn("delete the bridge " + name + " failed");
}

// The host-side veth of each endpoint: in the bridge plugin's result, the interfaces
// outside the sandbox other than the bridge.
std::vector<std::string> HostVeths(const Attachment& a) {
  std::vector<std::string> out;
  for (const Endpoint& e : a.endpoints) {
    if (!e.result.is_object()) continue;
    std::string bridge;
    if (e.config.contains("plugins") && e.config["plugins"].is_array() && !e.config["plugins"].empty())
      bridge = e.config["plugins"][0].value("bridge", "");
    for (const json& i : e.result.value("interfaces", json::array())) {
      if (!i.is_object() || i.contains("sandbox")) continue;
      std::string name = i.value("name", "");
      if (!name.empty() && name != bridge && name.find('/') == std::string::npos)
        out.push_back(name);
    }
  }
  return out;
}

// Polls until `path` is gone, at most `ms`; whether it went.
bool WaitGone(const std::string& path, int ms) {
  for (int i = 0; i < ms; ++i) {
    if (!PathExists(path)) return true;
    usleep(1000);
  }
  return !PathExists(path);
}

// The hosts file is bind-mounted into the container: rewrite the inode, never replace it.
Result<void> WriteInPlace(const std::string& path, const std::string& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) return Ok();  // the container was removed meanwhile
    return Error::FromErrno(errno, "open " + path);
  }
  return WriteAll(fd.get(), data, path);
}

const char* kHostsBase =
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n";

}  // namespace

json ToJson(const Attachment& a) {
  json eps = json::array();
  for (const Endpoint& e : a.endpoints) eps.push_back(EndpointToJson(e));
  return {{"containerId", a.container_id}, {"name", a.container_name},
          {"hostname", a.hostname},        {"hostsPath", a.hosts_path},
          {"netns", a.netns},              {"ports", PortMappingsJson(a.ports)},
          {"endpoints", eps}};
}

Attachment AttachmentFromJson(const json& j) {
  Attachment a;
  a.container_id = j.value("containerId", "");
  a.container_name = j.value("name", "");
  a.hostname = j.value("hostname", "");
  a.hosts_path = j.value("hostsPath", "");
  a.netns = j.value("netns", "");
  a.ports = PortMappingsFromJson(j.value("ports", json::array()));
  for (const json& e : j.value("endpoints", json::array())) a.endpoints.push_back(EndpointFromJson(e));
  return a;
}

std::string RenderHosts(const Attachment& self, const std::vector<Attachment>& all) {
  std::string out = kHostsBase;
  std::set<std::string> seen;
  auto line = [&](const std::string& ip, std::vector<std::string> names) {
    std::string l = ip + "\t" + Join(names, " ") + "\n";
    if (ip.empty() || !seen.insert(l).second) return;
    out += l;
  };
  if (!self.endpoints.empty()) {
    const Endpoint& first = self.endpoints[0];
    std::vector<std::string> names = {self.hostname};
    if (first.network != kDefaultNetwork) {
      if (self.container_name != self.hostname) names.push_back(self.container_name);
      names.insert(names.end(), first.aliases.begin(), first.aliases.end());
    }
    line(first.ip, names);
  }
  // docker's default bridge has no name resolution between containers; user networks do.
  for (const Endpoint& mine : self.endpoints) {
    if (mine.network == kDefaultNetwork) continue;
    for (const Attachment& o : all) {
      if (o.container_id == self.container_id) continue;
      for (const Endpoint& theirs : o.endpoints) {
        if (theirs.network_id != mine.network_id) continue;
        std::vector<std::string> names = {o.container_name};
        names.insert(names.end(), theirs.aliases.begin(), theirs.aliases.end());
        line(theirs.ip, names);
      }
    }
  }
  return out;
}

json BridgeConflist(const NetworkInfo& n, const std::string& ipam_dir) {
  json range = {{"subnet", FormatSubnet(n.subnet)}, {"gateway", FormatIpv4(n.gateway)}};
  json ipam = {{"type", "host-local"},
               {"ranges", json::array({json::array({range})})},
               {"dataDir", ipam_dir}};
  // Internal: no default route and no gateway address on the bridge, so nothing leaves the
  // network, and no masquerade.
  ipam["routes"] = n.internal ? json::array() : json::array({{{"dst", "0.0.0.0/0"}}});
  // NAT, forwarding and isolation are the network's own rules (firewall.h), made once.
  json bridge = {{"type", "bridge"},       {"bridge", n.bridge},
                 {"isGateway", !n.internal}, {"ipMasq", false},
                 {"hairpinMode", true},    {"ipam", ipam}};
  json portmap = {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}, {"snat", true}};
  json c = {{"cniVersion", kCniVersion},
            {"name", n.name},
            {"plugins", json::array({bridge, portmap})}};
  c["shale"] = InfoToShaleJson(n);
  return c;
}

void NoteForwarding(bool needed) {
  if (!needed) return;
  std::string v = std::string(Trim(ReadFile("/proc/sys/net/ipv4/ip_forward").value_or("1")));
  if (v == "0")
    LogWarn("IPv4 forwarding is off on this host: turning it on (net.ipv4.ip_forward=1) so "
            "that containers on bridge networks reach the outside; it stays on");
}

Result<FileLock> Networks::Lock() {
  TRY(MakeDirsAbs(dir_, 0700));
  return FileLock::Acquire(dir_ + "/lock", FileLock::Mode::kExclusive);
}

Networks::Networks(std::string store_root)
    : store_root_(std::move(store_root)), dir_(store_root_ + "/network") {}

std::string Networks::DefaultBridgeName() const {
  if (store_root_ == "/var/lib/shale") return "shale0";
  return "shale-" + Digest::Of(store_root_).hex().substr(0, 8);
}

Result<NetworkInfo> Networks::Read(const std::string& name) {
  std::string file = dir_ + "/networks/" + name + ".conflist";
  auto text = ReadFile(file);
  if (!text) {
    if (text.error().code() == Errc::kNotFound)
      return Error(Errc::kNotFound, "network " + name + " not found");
    return std::move(text).error();
  }
  json c = json::parse(*text, nullptr, false);
  if (c.is_discarded()) return Error(Errc::kCorrupt, file + ": not valid JSON");
  NetworkInfo n = TRY(InfoFromConflist(c, file));
  // The plugin chain follows from the network's own fields: a network made by an older
  // shale (per-container ipMasq and firewall plugin) gets today's chain. The cache keeps
  // each container's chain as run, so its DEL is unaffected.
  n.conflist = BridgeConflist(n, dir_ + "/ipam");
  return n;
}

namespace {
NetworkFirewall FirewallOf(const NetworkInfo& n) { return {n.bridge, n.subnet, n.internal}; }
std::string BootId() {
  return std::string(Trim(ReadFile("/proc/sys/kernel/random/boot_id").value_or("")));
}
}  // namespace

// The marker holds the boot id the rules were made in: rules do not survive a reboot, and
// checking them with iptables on every run would cost what they were moved out of the
// containers' path to save.
Result<void> Networks::EnsureRules(const NetworkInfo& n) {
  std::string marker = dir_ + "/rules/" + n.id;
  std::string boot = BootId();
  if (!boot.empty() && ReadFile(marker).value_or("") == boot) return Ok();
  TRY(InstallNetworkRules(FirewallOf(n)));
  TRY(MakeDirsAbs(dir_ + "/rules", 0700));
  return WriteFileAtomic(marker, boot, 0600);
}

Result<NetworkInfo> Networks::EnsureDefault() {
  auto n = Read(kDefaultNetwork);
  if (n || n.error().code() != Errc::kNotFound) return n;
  TRY(MakeDirsAbs(dir_ + "/networks", 0700));
  FileLock lock = TRY(Lock());
  n = Read(kDefaultNetwork);
  if (n || n.error().code() != Errc::kNotFound) return n;
  NetworkInfo info;
  info.name = kDefaultNetwork;
  info.id = RandomHexId(64);
  info.bridge = DefaultBridgeName();
  info.subnet = TRY(ClaimFreeSubnet(dir_, HostRoutes()).Wrap("choose the default bridge's subnet"));
  info.gateway = FirstHost(info.subnet);
  info.created_ns = NowUnixNanos();
  info.conflist = BridgeConflist(info, dir_ + "/ipam");
  TRY(WriteFileAtomic(dir_ + "/networks/" + info.name + ".conflist", info.conflist.dump(2), 0600));
  TRY(EnsureRules(info));
  return info;
}

Result<NetworkInfo> Networks::Create(const CreateRequest& req) {
  if (!ValidNetworkName(req.name))
    return Error(Errc::kInvalidArgument,
                 "invalid network name \"" + req.name + "\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
  if (req.name == kDefaultNetwork || req.name == "host" || req.name == "none")
    return Error(Errc::kInvalidArgument, "network name \"" + req.name + "\" is reserved (a "
                                         "predefined network mode)");
  TRY(EnsureDefault());
  FileLock lock = TRY(Lock());
  if (PathExists(dir_ + "/networks/" + req.name + ".conflist"))
    return Error(Errc::kAlreadyExists, "network with name " + req.name + " already exists");
  NetworkInfo info;
  info.name = req.name;
  info.id = RandomHexId(64);
  info.bridge = "br-" + info.id.substr(0, 12);
  info.internal = req.internal;
  info.created_ns = NowUnixNanos();
  std::vector<Ipv4Net> routes = HostRoutes();
  if (!req.subnet.empty()) {
    info.subnet = TRY(ParseSubnet(req.subnet));
    TRY(ClaimSubnet(info.subnet, dir_, routes));
  } else {
    if (!req.gateway.empty())
      return Error(Errc::kInvalidArgument, "--gateway needs --subnet");
    info.subnet = TRY(ClaimFreeSubnet(dir_, routes));
  }
  bool ok = false;
  struct Unclaim {
    const Ipv4Net& s;
    const std::string& owner;
    bool& ok;
    ~Unclaim() {
      if (!ok) ReleaseSubnet(s, owner);
    }
  } unclaim{info.subnet, dir_, ok};
  info.gateway = FirstHost(info.subnet);
  if (!req.gateway.empty()) {
    info.gateway = TRY(ParseIpv4(req.gateway, "--gateway"));
    uint32_t broadcast = info.subnet.addr | ~(~uint32_t{0} << (32 - info.subnet.prefix));
    if (!Contains(info.subnet, info.gateway) || info.gateway == info.subnet.addr ||
        info.gateway == broadcast)
      return Error(Errc::kInvalidArgument, "--gateway " + req.gateway +
                                               " is not a host address of the subnet " +
                                               FormatSubnet(info.subnet));
  }
  info.conflist = BridgeConflist(info, dir_ + "/ipam");
  std::string file = dir_ + "/networks/" + info.name + ".conflist";
  TRY(WriteFileAtomic(file, info.conflist.dump(2), 0600));
  if (auto r = EnsureRules(info); !r) {
    RemoveNetworkRules(FirewallOf(info));
    unlink(file.c_str());
    return std::move(r).error();
  }
  ok = true;
  return info;
}

Result<NetworkInfo> Networks::Get(std::string_view ref) {
  if (ref == kDefaultNetwork) return EnsureDefault();
  std::string r(ref);
  if (ValidNetworkName(r)) {
    auto n = Read(r);
    if (n || n.error().code() != Errc::kNotFound) return n;
  }
  std::vector<NetworkInfo> hits;
  for (NetworkInfo& n : TRY(List()))
    if (r.size() >= 3 && StartsWith(n.id, r)) hits.push_back(std::move(n));
  if (hits.size() == 1) return hits[0];
  if (hits.size() > 1)
    return Error(Errc::kInvalidArgument, "network " + r + " is ambiguous (" +
                                             std::to_string(hits.size()) + " matches)");
  return Error(Errc::kNotFound, "network " + r + " not found");
}

Result<std::vector<NetworkInfo>> Networks::List() {
  TRY(EnsureDefault());
  std::vector<NetworkInfo> out;
  for (const std::string& f : ListDir(dir_ + "/networks").value_or(std::vector<std::string>{})) {
    if (!EndsWith(f, ".conflist")) continue;
    auto n = Read(f.substr(0, f.size() - 9));
    if (n) out.push_back(std::move(*n));
  }
  std::sort(out.begin(), out.end(),
            [](const NetworkInfo& a, const NetworkInfo& b) { return a.name < b.name; });
  return out;
}

Result<void> Networks::Remove(std::string_view ref) {
  if (ref == kDefaultNetwork && !PathExists(dir_ + "/networks/bridge.conflist")) return Ok();
  NetworkInfo n = TRY(Get(ref));
  FileLock lock = TRY(Lock());
  std::vector<std::string> users;
  for (const Attachment& a : LoadAll())
    for (const Endpoint& e : a.endpoints)
      if (e.network_id == n.id) users.push_back(a.container_name);
  if (!users.empty())
    return Error(Errc::kBusy, "error while removing network " + n.name +
                                  ": network has active endpoints (" + Join(users, ", ") +
                                  "); stop or disconnect them first");
  if (unlink((dir_ + "/networks/" + n.name + ".conflist").c_str()) != 0)
    return Error::FromErrno(errno, "remove network " + n.name);
  RemoveNetworkRules(FirewallOf(n));
  unlink((dir_ + "/rules/" + n.id).c_str());
  DeleteBridge(n.bridge);
  (void)RemoveTreeAbs(dir_ + "/ipam/" + n.name);
  ReleaseSubnet(n.subnet, dir_);
  return Ok();
}

Result<std::vector<std::string>> Networks::Prune() {
  std::vector<std::string> removed;
  for (const NetworkInfo& n : TRY(List())) {
    if (n.name == kDefaultNetwork) continue;  // only by name: `network rm bridge`
    auto r = Remove(n.id);
    if (r) removed.push_back(n.name);
    else if (r.error().code() != Errc::kBusy) return std::move(r).error();
  }
  return removed;
}

json Networks::InspectJson(const NetworkInfo& n) {
  json containers = json::object();
  for (const Attachment& a : LoadAll())
    for (const Endpoint& e : a.endpoints)
      if (e.network_id == n.id)
        containers[a.container_id] = {{"Name", a.container_name},
                                      {"EndpointID", Digest::Of(a.container_id + e.network_id).hex()},
                                      {"MacAddress", e.mac},
                                      {"IPv4Address", e.ip + "/" + std::to_string(e.prefix)},
                                      {"IPv6Address", ""}};
  json cfg = {{"Subnet", FormatSubnet(n.subnet)}, {"Gateway", FormatIpv4(n.gateway)}};
  return {{"Name", n.name},
          {"Id", n.id},
          {"Created", FormatRfc3339Nano(n.created_ns)},
          {"Scope", "local"},
          {"Driver", "bridge"},
          {"EnableIPv6", false},
          {"IPAM", {{"Driver", "default"}, {"Options", json::object()}, {"Config", json::array({cfg})}}},
          {"Internal", n.internal},
          {"Attachable", false},
          {"Ingress", false},
          {"ConfigFrom", {{"Network", ""}}},
          {"ConfigOnly", false},
          {"Containers", containers},
          {"Options", {{"com.docker.network.bridge.name", n.bridge}}},
          {"Labels", json::object()}};
}

std::optional<Attachment> Networks::Load(const std::string& container_id) {
  auto text = ReadFile(dir_ + "/cache/" + container_id + ".json");
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return AttachmentFromJson(j);
}

std::vector<Attachment> Networks::LoadAll() {
  std::vector<Attachment> out;
  for (const std::string& f : ListDir(dir_ + "/cache").value_or(std::vector<std::string>{})) {
    if (!EndsWith(f, ".json")) continue;
    if (auto a = Load(f.substr(0, f.size() - 5))) out.push_back(std::move(*a));
  }
  return out;
}

Result<void> Networks::WriteCache(const Attachment& a) {
  TRY(MakeDirsAbs(dir_ + "/cache", 0700));
  // No fsync: the cache is for DEL after a crash of shale, not of the machine (a reboot
  // takes the netns, veths and rules with it).
  return WriteFileReplace(dir_ + "/cache/" + a.container_id + ".json", ToJson(a).dump(), 0600);
}

Result<void> Networks::RewriteHosts(const std::vector<std::string>& network_ids) {
  std::vector<Attachment> all = LoadAll();
  for (const Attachment& a : all) {
    bool shares = false;
    for (const Endpoint& e : a.endpoints)
      shares |= std::find(network_ids.begin(), network_ids.end(), e.network_id) != network_ids.end();
    if (shares && !a.hosts_path.empty()) TRY(WriteInPlace(a.hosts_path, RenderHosts(a, all)));
  }
  return Ok();
}

Result<Endpoint> Networks::AddEndpoint(Attachment& a, const NetworkInfo& n,
                                       const EndpointRequest& req, const std::string& ifname,
                                       bool with_ports) {
  Endpoint e;
  e.network = n.name;
  e.network_id = n.id;
  e.ifname = ifname;
  e.aliases = req.aliases;
  e.config = n.conflist;
  e.config.erase("shale");
  // Without published ports portmap has nothing to do: leave it out of this container's
  // chain (the cache keeps the chain as run, so DEL matches).
  if (!with_ports || a.ports.empty()) {
    json plugins = json::array();
    for (const json& p : e.config["plugins"])
      if (p.value("type", "") != "portmap") plugins.push_back(p);
    e.config["plugins"] = plugins;
  } else {
    e.runtime_config = {{"portMappings", PortMappingsJson(a.ports)}};
  }
  NoteForwarding(!n.internal);
  CniInvocation inv{a.container_id, a.netns, ifname, e.runtime_config};
  auto r = AddList(e.config, inv);
  if (!r) {
    // CNI: after a failed ADD the runtime calls DEL, which plugins must accept without a
    // prevResult, so that whatever the chain made before failing is undone.
    (void)DelList(e.config, nullptr, inv);
    return std::move(r).error().Wrap("attach to network " + n.name);
  }
  e.result = std::move(*r);
  FillFromResult(e);
  return e;
}

void Networks::DelEndpoint(const Attachment& a, const Endpoint& e) {
  std::string netns = PathExists(a.netns) ? a.netns : "";
  CniInvocation inv{a.container_id, netns, e.ifname, e.runtime_config};
  if (auto d = DelList(e.config, e.result, inv); !d)
    LogWarn("detach " + a.container_id.substr(0, 12) + " from network " + e.network + ": " +
            d.error().message());
}

Result<std::vector<NetworkInfo>> Networks::BeginAttach(const AttachRequest& req, Attachment& a) {
  std::vector<NetworkInfo> nets;
  for (const EndpointRequest& ep : req.networks) nets.push_back(TRY(Get(ep.network)));
  a.container_id = req.container_id;
  a.container_name = req.container_name;
  a.hostname = req.hostname;
  a.hosts_path = req.hosts_path;
  a.netns = NetnsPath(req.container_id);
  a.ports = req.ports;
  // Ports first: a port in use must fail before anything exists.
  a.port_fds = TRY(ReservePorts(a.ports));
  TRY(MakeDirsAbs(dir_ + "/cache", 0700));
  FileLock lock = TRY(Lock());
  if (PathExists(dir_ + "/cache/" + a.container_id + ".json") || PathExists(a.netns)) {
    // Left by a crash: undo it before starting over.
    lock = FileLock();
    TRY(Detach(a.container_id));
    lock = TRY(Lock());
  }
  for (const NetworkInfo& n : nets) TRY(EnsureRules(n));
  // The cache exists before the netns and the first ADD, so that a crash mid-way leaves a
  // record to undo.
  TRY(WriteCache(a));
  return nets;
}

Result<void> Networks::AddEndpoints(Attachment& a, const std::vector<NetworkInfo>& nets,
                                    const AttachRequest& req) {
  bool ok = false;
  struct Undo {
    Networks* self;
    Attachment& a;
    bool& ok;
    ~Undo() {
      if (ok) return;
      for (auto it = a.endpoints.rbegin(); it != a.endpoints.rend(); ++it) self->DelEndpoint(a, *it);
      (void)RemoveNetns(a.netns);
      unlink((self->dir_ + "/cache/" + a.container_id + ".json").c_str());
    }
  } undo{this, a, ok};
  std::vector<std::string> ids;
  for (size_t i = 0; i < nets.size(); ++i) {
    a.endpoints.push_back(TRY(AddEndpoint(a, nets[i], req.networks[i],
                                          "eth" + std::to_string(i), i == 0)));
    TRY(WriteCache(a));
    ids.push_back(nets[i].id);
  }
  std::vector<Attachment> all = LoadAll();
  TRY(WriteInPlace(a.hosts_path, RenderHosts(a, all)));
  TRY(RewriteHosts(ids));
  ok = true;
  return Ok();
}

Result<Attachment> Networks::Attach(const AttachRequest& req) {
  PendingAttach p = TRY(AttachAsync(req));
  TRY(p.op.Wait());
  std::optional<Attachment> a = Load(req.container_id);
  if (!a)
    return Error(Errc::kInternal, "container " + req.container_id.substr(0, 12) +
                                      ": attached, but its network cache is gone");
  a->port_fds = std::move(p.port_fds);
  return std::move(*a);
}

namespace {

// "OK", or "E<errc> <message>": what a background op reports before it exits.
std::string Verdict(const Result<void>& r) {
  if (r) return "OK";
  return "E" + std::to_string(static_cast<int>(r.error().code())) + " " + r.error().message();
}

// Runs fn in a grandchild with stdin and stdout on /dev/null, stderr kept (for its log
// lines) and no other fd of ours but its report pipe (fd 3, which fn may write an early
// message to): it must not hold the caller's locks, ports or pipes open after the caller
// let go of them. The returned fd reads what fn wrote, then its verdict.
Result<UniqueFd> RunInBackground(const std::function<Result<void>(int report_fd)>& fn) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Error::FromErrno(errno, "pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  fflush(stderr);
  pid_t c = fork();
  if (c < 0) return Error::FromErrno(errno, "fork");
  if (c == 0) {
    if (fork() != 0) _exit(0);
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
    }
    if (dup2(wr.get(), 3) != 3) _exit(1);
    syscall(SYS_close_range, 4, ~0U, 0);
    std::string v = Verdict(fn(3));
    (void)!write(3, v.data(), v.size());
    _exit(0);
  }
  wr.reset();
  int st;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
  }
  return rd;
}

Result<void> ParseVerdict(const std::string& text, const std::string& what) {
  if (text == "OK") return Ok();
  if (text.size() > 1 && text[0] == 'E') {
    size_t sp = text.find(' ');
    int code = static_cast<int>(ParseInt(text.substr(1, sp - 1), 0,
                                         static_cast<int>(Errc::kInternal), "errc")
                                    .value_or(static_cast<int>(Errc::kInternal)));
    return Error(static_cast<Errc>(code), sp == std::string::npos ? "" : text.substr(sp + 1));
  }
  return Error(Errc::kInternal, what + " ended without a verdict (killed?)");
}

}  // namespace

Result<void> PendingOp::Ready() {
  if (!report_ || !ready_pending_) return Ok();
  ready_pending_ = false;
  char mark = 0;
  ssize_t n;
  while ((n = read(report_.get(), &mark, 1)) < 0 && errno == EINTR) {
  }
  if (n == 1 && mark == 'R') return Ok();
  // It failed before the milestone: the rest of the pipe is its verdict.
  std::string rest = n == 1 ? std::string(1, mark) : "";
  rest += ReadAll(report_.get(), "the report of " + what_).value_or("");
  report_.reset();
  TRY(ParseVerdict(rest, what_));
  return Error(Errc::kInternal, what_ + " said it succeeded before its first step");
}

Result<void> PendingOp::Wait() {
  TRY(Ready());
  if (!report_) return Ok();
  auto text = ReadAll(report_.get(), "the report of " + what_);
  report_.reset();
  if (!text) return std::move(text).error();
  return ParseVerdict(*text, what_);
}

Result<PendingAttach> Networks::AttachAsync(const AttachRequest& req) {
  Attachment a;
  std::vector<NetworkInfo> nets = TRY(BeginAttach(req, a));
  PendingAttach p;
  p.netns = a.netns;
  p.port_fds = std::move(a.port_fds);
  std::string cache = dir_ + "/cache/" + a.container_id + ".json";
  // The background process makes the netns itself, says "R" once it exists — the runtime
  // can join it from then on — then runs the ADDs.
  auto fd = RunInBackground([&](int report_fd) -> Result<void> {
    // Until the netns exists, a failure undoes the first half's record here; after it,
    // AddEndpoints undoes everything.
    auto lock = Lock();
    if (!lock) {
      unlink(cache.c_str());
      return std::move(lock).error();
    }
    // The first half's lock was released at its return; a Detach of this container that
    // came in between removed the record, and there is nothing to attach any more.
    if (!PathExists(cache))
      return Error(Errc::kCancelled, "container " + a.container_id.substr(0, 12) +
                                         " was removed while its network was being set up");
    if (auto made = CreateNetns(a.netns); !made) {
      unlink(cache.c_str());
      return made;
    }
    TRY(WriteAll(report_fd, "R", "report pipe"));
    return AddEndpoints(a, nets, req);
  });
  if (!fd) {
    unlink(cache.c_str());
    return std::move(fd).error().Wrap("start the network setup of container " +
                                      a.container_id.substr(0, 12));
  }
  // Not waited for here: making the netns (~2 ms, most of it unshare) goes on while the
  // caller makes the container's layers; it waits with op.Ready() before the runtime joins.
  p.op = PendingOp(std::move(*fd), "the network setup of container " + a.container_id.substr(0, 12),
                   /*ready_mark=*/true);
  return p;
}

Result<void> Networks::Connect(const std::string& container_id, const EndpointRequest& ep) {
  NetworkInfo n = TRY(Get(ep.network));
  FileLock lock = TRY(Lock());
  TRY(EnsureRules(n));
  std::optional<Attachment> a = Load(container_id);
  if (!a || !PathExists(a->netns))
    return Error(Errc::kInvalidArgument,
                 "container " + container_id.substr(0, 12) +
                     " is not running on a bridge network (connect needs a running container "
                     "started with --network bridge or a user network)");
  for (const Endpoint& e : a->endpoints)
    if (e.network_id == n.id)
      return Error(Errc::kAlreadyExists, "container " + a->container_name +
                                             " is already connected to network " + n.name);
  int max_if = -1;
  for (const Endpoint& e : a->endpoints)
    max_if = std::max(max_if, static_cast<int>(ParseInt(e.ifname.substr(3), 0, 1000, "ifname").value_or(0)));
  a->endpoints.push_back(TRY(AddEndpoint(*a, n, ep, "eth" + std::to_string(max_if + 1), false)));
  if (auto w = WriteCache(*a); !w) {
    DelEndpoint(*a, a->endpoints.back());
    return w;
  }
  std::vector<std::string> ids;
  for (const Endpoint& e : a->endpoints) ids.push_back(e.network_id);
  return RewriteHosts(ids);
}

Result<void> Networks::Disconnect(const std::string& container_id, const std::string& network) {
  NetworkInfo n = TRY(Get(network));
  FileLock lock = TRY(Lock());
  std::optional<Attachment> a = Load(container_id);
  auto it = a ? std::find_if(a->endpoints.begin(), a->endpoints.end(),
                             [&](const Endpoint& e) { return e.network_id == n.id; })
              : std::vector<Endpoint>::iterator();
  if (!a || it == a->endpoints.end())
    return Error(Errc::kNotFound, "container " + container_id.substr(0, 12) +
                                      " is not connected to network " + n.name);
  DelEndpoint(*a, *it);
  a->endpoints.erase(it);
  TRY(WriteCache(*a));
  std::vector<std::string> ids = {n.id};
  for (const Endpoint& e : a->endpoints) ids.push_back(e.network_id);
  TRY(RewriteHosts(ids));
  if (!a->hosts_path.empty()) TRY(WriteInPlace(a->hosts_path, RenderHosts(*a, LoadAll())));
  return Ok();
}

Result<void> Networks::Detach(const std::string& container_id) {
  // Most calls find nothing (--network none/host, a second Detach from rm): no lock needed.
  if (!PathExists(dir_ + "/cache/" + container_id + ".json"))
    return RemoveNetns(NetnsPath(container_id));
  FileLock lock = TRY(Lock());
  std::optional<Attachment> a = Load(container_id);
  if (!a) return RemoveNetns(NetnsPath(container_id));
  // The netns goes first: with its last process gone the kernel destroys it and the veth
  // pairs in it, so DEL (given no netns, as CNI allows) only releases the addresses and the
  // port mappings. Deleting each veth from inside the netns cost about 20 ms per container.
  TRY(RemoveNetns(a->netns));
  for (auto it = a->endpoints.rbegin(); it != a->endpoints.rend(); ++it) DelEndpoint(*a, *it);
  std::vector<std::string> ids;
  for (const Endpoint& e : a->endpoints) ids.push_back(e.network_id);
  // The kernel destroys the netns in a work queue, a few ms later: wait for the host ends
  // of the veths, so that a Detach that returned leaves no interface behind (DetachAsync
  // hides this wait behind the removal of the layers).
  // A netns another container joined (--network container:) lives on without its file:
  // then delete the veth, as DEL inside the netns would have.
  for (const std::string& veth : HostVeths(*a))
    if (!WaitGone("/sys/class/net/" + veth, 100)) (void)RunTool({"ip", "link", "delete", "dev", veth});
  std::string cache = dir_ + "/cache/" + container_id + ".json";
  if (unlink(cache.c_str()) != 0 && errno != ENOENT) return Error::FromErrno(errno, "remove " + cache);
  return RewriteHosts(ids);
}

PendingOp Networks::DetachAsync(const std::string& container_id) {
  if (!PathExists(dir_ + "/cache/" + container_id + ".json")) {
    (void)RemoveNetns(NetnsPath(container_id));
    return PendingOp();
  }
  auto fd = RunInBackground([&](int) { return Detach(container_id); });
  if (!fd) {
    if (auto d = Detach(container_id); !d)
      LogWarn("release the network of " + container_id.substr(0, 12) + ": " + d.error().message());
    return PendingOp();
  }
  return PendingOp(std::move(*fd), "the network release of container " + container_id.substr(0, 12));
}

}  // namespace shale::network
