#include "network/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "network/subnet.h"
#include "util/strings.h"

namespace shale::network {
namespace {

using nlohmann::json;

struct Range {
  int lo = 0, hi = 0;
  int size() const { return hi - lo + 1; }
};

Result<Range> ParseRange(std::string_view s, std::string_view what) {
  size_t dash = s.find('-');
  Range r;
  r.lo = static_cast<int>(TRY(ParseInt(s.substr(0, dash), 1, 65535, what)));
  r.hi = dash == std::string_view::npos
             ? r.lo
             : static_cast<int>(TRY(ParseInt(s.substr(dash + 1), 1, 65535, what)));
  if (r.hi < r.lo)
    return Error(Errc::kInvalidArgument, std::string(what) + " range \"" + std::string(s) +
                                             "\" ends before it starts");
  return r;
}

}  // namespace

Result<std::vector<PortMapping>> ParsePublish(std::string_view spec) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::kInvalidArgument, "-p " + std::string(spec) + ": " + why);
  };
  std::string_view s = spec;
  std::string proto = "tcp";
  if (size_t slash = s.rfind('/'); slash != std::string_view::npos) {
    proto = std::string(s.substr(slash + 1));
    s = s.substr(0, slash);
    if (proto != "tcp" && proto != "udp") return bad("protocol must be tcp or udp");
  }
  if (!s.empty() && s[0] == '[') return bad("IPv6 host addresses are not supported");
  std::vector<std::string> parts = Split(s, ':');
  if (parts.empty() || parts.size() > 3) return bad("expected [IP:][HOST_PORT:]CONTAINER_PORT");
  std::string ip, host;
  std::string ctr = parts.back();
  if (parts.size() == 2) host = parts[0];
  if (parts.size() == 3) {
    ip = parts[0];
    host = parts[1];
  }
  if (!ip.empty()) {
    auto a = ParseIpv4(ip, "host address");
    if (!a) return bad(a.error().message());
    if (ip == "0.0.0.0") ip.clear();
  }
  auto cr = ParseRange(ctr, "container port");
  if (!cr) return bad(cr.error().message());
  Range hr;
  if (!host.empty()) {
    auto h = ParseRange(host, "host port");
    if (!h) return bad(h.error().message());
    hr = *h;
    if (hr.size() != cr->size())
      return bad("the host port range (" + std::to_string(hr.size()) +
                 " ports) and the container port range (" + std::to_string(cr->size()) +
                 " ports) differ in size");
  }
  std::vector<PortMapping> out;
  for (int i = 0; i < cr->size(); ++i) {
    PortMapping m;
    m.host_ip = ip;
    m.host_port = host.empty() ? 0 : hr.lo + i;
    m.container_port = cr->lo + i;
    m.protocol = proto;
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<PortMapping>> ExposedToMappings(const json& exposed) {
  std::vector<PortMapping> out;
  if (!exposed.is_object()) return out;
  for (auto& [key, v] : exposed.items()) {
    auto ms = ParsePublish(key);
    if (!ms) return std::move(ms).error().Wrap("image ExposedPorts");
    out.insert(out.end(), ms->begin(), ms->end());
  }
  return out;
}

Result<std::vector<UniqueFd>> ReservePorts(std::vector<PortMapping>& mappings) {
  std::vector<UniqueFd> fds;
  for (PortMapping& m : mappings) {
    int type = m.protocol == "udp" ? SOCK_DGRAM : SOCK_STREAM;
    UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (!fd) return Error::FromErrno(errno, "socket for port " + PortKey(m));
    struct sockaddr_in sa = {};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(m.host_port));
    sa.sin_addr.s_addr = htonl(m.host_ip.empty() ? INADDR_ANY
                                                  : TRY(ParseIpv4(m.host_ip, "host address")));
    std::string where = (m.host_ip.empty() ? "0.0.0.0" : m.host_ip) + ":" +
                        (m.host_port ? std::to_string(m.host_port) : "0");
    if (bind(fd.get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof(sa)) != 0) {
      if (errno == EADDRINUSE)
        return Error(Errc::kAlreadyExists,
                     "Bind for " + where + " failed: port is already allocated");
      if (errno == EADDRNOTAVAIL)
        return Error(Errc::kInvalidArgument,
                     "Bind for " + where + " failed: " + m.host_ip + " is not an address of this host");
      return Error::FromErrno(errno, "bind " + where);
    }
    if (m.host_port == 0) {
      socklen_t len = sizeof(sa);
      if (getsockname(fd.get(), reinterpret_cast<struct sockaddr*>(&sa), &len) != 0)
        return Error::FromErrno(errno, "getsockname for " + where);
      m.host_port = ntohs(sa.sin_port);
    }
    fds.push_back(std::move(fd));
  }
  return fds;
}

json PortMappingsJson(const std::vector<PortMapping>& mappings) {
  json a = json::array();
  for (const PortMapping& m : mappings) {
    json e = {{"hostPort", m.host_port},
              {"containerPort", m.container_port},
              {"protocol", m.protocol}};
    if (!m.host_ip.empty()) e["hostIP"] = m.host_ip;
    a.push_back(std::move(e));
  }
  return a;
}

std::vector<PortMapping> PortMappingsFromJson(const json& j) {
  std::vector<PortMapping> out;
  if (!j.is_array()) return out;
  for (const json& e : j) {
    if (!e.is_object()) continue;
    PortMapping m;
    m.host_ip = e.value("hostIP", "");
    m.host_port = e.value("hostPort", 0);
    m.container_port = e.value("containerPort", 0);
    m.protocol = e.value("protocol", "tcp");
    out.push_back(std::move(m));
  }
  return out;
}

std::string PortKey(const PortMapping& m) {
  return std::to_string(m.container_port) + "/" + m.protocol;
}

}  // namespace shale::network
