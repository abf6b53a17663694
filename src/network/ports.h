// Published ports: `-p` specs, and the host sockets that hold them while a container runs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/fd.h"

namespace shale::network {

struct PortMapping {
  std::string host_ip;     // "" = every address (0.0.0.0)
  int host_port = 0;       // 0 = any free port, chosen when the container starts
  int container_port = 0;
  std::string protocol = "tcp";  // tcp | udp
  bool operator==(const PortMapping&) const = default;
};

// `-p` as docker reads it: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp], where either port may
// be a range (LOW-HIGH; a host range must be as long as the container range). "80" and
// "127.0.0.1::80" take a free host port. One mapping per container port.
// kInvalidArgument naming the spec: "-p 8080:80/sctp: protocol must be tcp or udp".
Result<std::vector<PortMapping>> ParsePublish(std::string_view spec);
// The image's ExposedPorts keys ("80/tcp", "53/udp", "8000-8002/tcp") as mappings to free
// host ports, for -P.
Result<std::vector<PortMapping>> ExposedToMappings(const nlohmann::json& exposed_ports);

// Binds every mapping's host address and port (the socket stays unlistened: traffic goes to
// the container by the portmap plugin's DNAT, the socket only keeps others off the port, as
// docker's proxy does). Fills in the chosen port where host_port is 0.
// kAlreadyExists "Bind for 0.0.0.0:8080 failed: port is already allocated".
Result<std::vector<UniqueFd>> ReservePorts(std::vector<PortMapping>& mappings);

// The portmap plugin's runtimeConfig entries ({hostPort, containerPort, protocol, hostIP}).
nlohmann::json PortMappingsJson(const std::vector<PortMapping>& mappings);
std::vector<PortMapping> PortMappingsFromJson(const nlohmann::json& j);
// docker's key: "80/tcp".
std::string PortKey(const PortMapping& m);

}  // namespace shale::network
