// IPv4 subnets: parsing, and choosing one for a new network that collides with nothing the
// host routes and nothing another shale network on this machine holds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace shale::network {

struct Ipv4Net {
  uint32_t addr = 0;  // host byte order, host bits cleared
  int prefix = 0;
  bool operator==(const Ipv4Net&) const = default;
};

// "10.1.2.3" -> host-order address. kInvalidArgument naming `what`.
Result<uint32_t> ParseIpv4(std::string_view s, std::string_view what);
std::string FormatIpv4(uint32_t addr);
// "172.18.0.0/16". kInvalidArgument for a bad address, a prefix outside 8..30 (a network
// needs room for a gateway and a container), or host bits set ("172.18.0.1/16").
Result<Ipv4Net> ParseSubnet(std::string_view s);
std::string FormatSubnet(const Ipv4Net& n);
bool Contains(const Ipv4Net& n, uint32_t addr);
bool Overlaps(const Ipv4Net& a, const Ipv4Net& b);
// The first usable address (.1 of a /24): docker's default gateway.
uint32_t FirstHost(const Ipv4Net& n);

// The destinations of /proc/net/route (hex, as the kernel prints them), default routes left
// out (they overlap everything and take nothing).
std::vector<Ipv4Net> ParseProcNetRoute(std::string_view text);
// docker's default address pools: 172.17.0.0/16 .. 172.31.0.0/16, then 192.168.0.0/20 ..
// 192.168.240.0/20.
std::vector<Ipv4Net> DefaultPool();
// The first subnet of `pool` that overlaps nothing in `in_use`. kBusy "no free subnet in
// the default address pools: all overlap the host's routes or other networks; pass --subnet".
Result<Ipv4Net> ChooseSubnet(const std::vector<Ipv4Net>& pool, const std::vector<Ipv4Net>& in_use);

// Machine-wide claims, so that two stores (or two processes) never pick the same subnet
// before either bridge exists: /run/shale/subnets/<a.b.c.d>_<len> is a symlink to the
// claiming store's network dir (symlink creation is atomic; EEXIST = taken). A claim whose
// owner dir is gone is stale and taken over. $SHALE_SUBNETS_DIR overrides the directory.
std::string SubnetClaimDir();
// Claims `subnet` for `owner`; kAlreadyExists "subnet X overlaps Y, used by ..." when it
// overlaps a live claim or a host route not made by `owner` itself.
Result<void> ClaimSubnet(const Ipv4Net& subnet, const std::string& owner,
                         const std::vector<Ipv4Net>& routes);
// Chooses from DefaultPool() and claims in one step (retrying on a race).
Result<Ipv4Net> ClaimFreeSubnet(const std::string& owner, const std::vector<Ipv4Net>& routes);
// Drops the claim if `owner` holds it.
void ReleaseSubnet(const Ipv4Net& subnet, const std::string& owner);
// The host's routes now (/proc/net/route).
std::vector<Ipv4Net> HostRoutes();

}  // namespace shale::network
