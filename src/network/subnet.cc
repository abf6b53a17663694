#include "network/subnet.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <charconv>

#include "util/fs.h"
#include "util/strings.h"

namespace shale::network {
namespace {

bool ParseHex32(std::string_view s, uint32_t* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return ec == std::errc() && ptr == s.data() + s.size() && s.size() == 8;
}

uint32_t Mask(int prefix) { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

std::string ClaimName(const Ipv4Net& n) {
  return FormatIpv4(n.addr) + "_" + std::to_string(n.prefix);
}

// A claim's name back to its subnet; false for anything else in the directory.
bool ParseClaimName(const std::string& name, Ipv4Net* out) {
  size_t us = name.find('_');
  if (us == std::string::npos) return false;
  auto s = ParseSubnet(name.substr(0, us) + "/" + name.substr(us + 1));
  if (!s) return false;
  *out = *s;
  return true;
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, n) : "";
}

}  // namespace

Result<uint32_t> ParseIpv4(std::string_view s, std::string_view what) {
  struct in_addr a;
  std::string str(s);
  if (inet_pton(AF_INET, str.c_str(), &a) != 1)
    return Error(Errc::kInvalidArgument,
                 std::string(what) + " \"" + str + "\" is not an IPv4 address");
  return ntohl(a.s_addr);
}

std::string FormatIpv4(uint32_t addr) {
  struct in_addr a;
  a.s_addr = htonl(addr);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

Result<Ipv4Net> ParseSubnet(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos)
    return Error(Errc::kInvalidArgument,
                 "subnet \"" + std::string(s) + "\" is not in CIDR notation (e.g. 172.20.0.0/16)");
  Ipv4Net n;
  n.addr = TRY(ParseIpv4(s.substr(0, slash), "subnet address"));
  n.prefix = static_cast<int>(TRY(ParseInt(s.substr(slash + 1), 8, 30, "subnet prefix length")));
  if (n.addr & ~Mask(n.prefix))
    return Error(Errc::kInvalidArgument,
                 "subnet \"" + std::string(s) + "\" has host bits set; did you mean " +
                     FormatIpv4(n.addr & Mask(n.prefix)) + "/" + std::to_string(n.prefix) + "?");
  return n;
}

std::string FormatSubnet(const Ipv4Net& n) {
  return FormatIpv4(n.addr) + "/" + std::to_string(n.prefix);
}

bool Contains(const Ipv4Net& n, uint32_t addr) { return (addr & Mask(n.prefix)) == n.addr; }

bool Overlaps(const Ipv4Net& a, const Ipv4Net& b) {
  int p = std::min(a.prefix, b.prefix);
  return (a.addr & Mask(p)) == (b.addr & Mask(p));
}

uint32_t FirstHost(const Ipv4Net& n) { return n.addr + 1; }

std::vector<Ipv4Net> ParseProcNetRoute(std::string_view text) {
  // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; addresses are the raw
  // network-order words printed as hex in host order.
  std::vector<Ipv4Net> out;
  bool header = true;
  for (const std::string& line : Split(text, '\n')) {
    if (header) {
      header = false;
      continue;
    }
    std::vector<std::string> f;
    for (const std::string& w : Split(line, '\t'))
      if (!Trim(w).empty()) f.emplace_back(Trim(w));
    if (f.size() < 8) continue;
    uint32_t dst = 0, mask = 0;
    if (!ParseHex32(f[1], &dst) || !ParseHex32(f[7], &mask)) continue;
    uint32_t d = ntohl(dst);
    uint32_t m = ntohl(mask);
    int prefix = __builtin_popcount(m);
    if (prefix == 0) continue;
    out.push_back({d & Mask(prefix), prefix});
  }
  return out;
}

std::vector<Ipv4Net> DefaultPool() {
  std::vector<Ipv4Net> pool;
  for (uint32_t b = 17; b <= 31; ++b) pool.push_back({(172u << 24) | (b << 16), 16});
  for (uint32_t c = 0; c < 256; c += 16) pool.push_back({(192u << 24) | (168u << 16) | (c << 8), 20});
  return pool;
}

Result<Ipv4Net> ChooseSubnet(const std::vector<Ipv4Net>& pool, const std::vector<Ipv4Net>& in_use) {
  for (const Ipv4Net& c : pool) {
    bool clash = false;
    for (const Ipv4Net& u : in_use) clash |= Overlaps(c, u);
    if (!clash) return c;
  }
  return Error(Errc::kBusy,
               "no free subnet in the default address pools (172.17-31.0.0/16, "
               "192.168.0-240.0/20): all overlap the host's routes or other networks; pass "
               "--subnet");
}

std::string SubnetClaimDir() {
  if (const char* d = getenv("SHALE_SUBNETS_DIR"); d && *d) return d;
  return "/run/shale/subnets";
}

std::vector<Ipv4Net> HostRoutes() {
  return ParseProcNetRoute(ReadFile("/proc/net/route").value_or(""));
}

namespace {
// Live claims of other owners; stale ones (owner gone) are removed on the way.
std::vector<std::pair<Ipv4Net, std::string>> LiveClaims(const std::string& dir) {
  std::vector<std::pair<Ipv4Net, std::string>> out;
  for (const std::string& name : ListDir(dir).value_or(std::vector<std::string>{})) {
    Ipv4Net n;
    if (!ParseClaimName(name, &n)) continue;
    std::string owner = ReadLink(dir + "/" + name);
    if (owner.empty()) continue;
    if (!PathExists(owner)) {
      unlink((dir + "/" + name).c_str());
      continue;
    }
    out.emplace_back(n, owner);
  }
  return out;
}
}  // namespace

Result<void> ClaimSubnet(const Ipv4Net& subnet, const std::string& owner,
                         const std::vector<Ipv4Net>& routes) {
  std::string dir = SubnetClaimDir();
  TRY(MakeDirsAbs(dir, 0755));
  for (const auto& [n, who] : LiveClaims(dir)) {
    if (who == owner && n == subnet) return Ok();
    if (Overlaps(n, subnet))
      return Error(Errc::kAlreadyExists, "subnet " + FormatSubnet(subnet) + " overlaps " +
                                             FormatSubnet(n) + ", used by the shale networks of " +
                                             Dirname(who));
  }
  for (const Ipv4Net& r : routes)
    if (Overlaps(r, subnet))
      return Error(Errc::kAlreadyExists, "subnet " + FormatSubnet(subnet) +
                                             " overlaps the host route to " + FormatSubnet(r) +
                                             "; choose another --subnet");
  std::string link = dir + "/" + ClaimName(subnet);
  if (symlink(owner.c_str(), link.c_str()) != 0) {
    if (errno == EEXIST && ReadLink(link) == owner) return Ok();
    if (errno == EEXIST)
      return Error(Errc::kAlreadyExists,
                   "subnet " + FormatSubnet(subnet) + " was just claimed by " + ReadLink(link));
    return Error::FromErrno(errno, "claim subnet " + FormatSubnet(subnet) + " at " + link);
  }
  return Ok();
}

Result<Ipv4Net> ClaimFreeSubnet(const std::string& owner, const std::vector<Ipv4Net>& routes) {
  std::string dir = SubnetClaimDir();
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::vector<Ipv4Net> in_use = routes;
    for (const auto& [n, who] : LiveClaims(dir)) in_use.push_back(n);
    Ipv4Net n = TRY(ChooseSubnet(DefaultPool(), in_use));
    auto claimed = ClaimSubnet(n, owner, routes);
    if (claimed) return n;
    if (claimed.error().code() != Errc::kAlreadyExists) return std::move(claimed).error();
  }
  return Error(Errc::kBusy, "could not claim a free subnet (other processes keep taking them)");
}

void ReleaseSubnet(const Ipv4Net& subnet, const std::string& owner) {
  std::string link = SubnetClaimDir() + "/" + ClaimName(subnet);
  if (ReadLink(link) == owner) unlink(link.c_str());
}

}  // namespace shale::network
