#include "network/firewall.h"

#include <gtest/gtest.h>

#include "util/strings.h"

namespace shale::network {
namespace {

std::vector<std::string> Spelled(const NetworkFirewall& n) {
  std::vector<std::string> out;
  for (const FirewallRule& r : NetworkRules(n))
    out.push_back(r.table + " " + (r.first ? "-I " : "-A ") + r.chain + " " + Join(r.match, " "));
  return out;
}

TEST(FirewallTest, ABridgeNetworkIsNattedForwardedAndIsolated) {
  NetworkFirewall n{"br-1", *ParseSubnet("172.20.0.0/16"), false};
  std::vector<std::string> want = {
      "filter -I SHALE-FORWARD -i br-1 ! -o br-1 -j SHALE-ISOLATION",
      "filter -A SHALE-ISOLATION -o br-1 -j DROP",
      "filter -A SHALE-FORWARD -o br-1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "filter -A SHALE-FORWARD -i br-1 -o br-1 -j ACCEPT",
      "filter -A SHALE-FORWARD -i br-1 ! -o br-1 -j ACCEPT",
      "filter -A SHALE-FORWARD -o br-1 -m conntrack --ctstate DNAT -j ACCEPT",
      "nat -A SHALE-POSTROUTING -s 172.20.0.0/16 ! -o br-1 -j MASQUERADE",
  };
  EXPECT_EQ(Spelled(n), want);
}

TEST(FirewallTest, AnInternalNetworkHasNoNatAndNoWayOut) {
  NetworkFirewall n{"br-2", *ParseSubnet("10.254.3.0/24"), true};
  std::vector<std::string> got = Spelled(n);
  for (const std::string& r : got) {
    EXPECT_EQ(r.find("MASQUERADE"), std::string::npos) << r;
    EXPECT_EQ(r.find("! -o br-2 -j ACCEPT"), std::string::npos) << r;
  }
  // Isolation first (inserted at the head), so no later accept can let traffic through.
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0], "filter -I SHALE-FORWARD -i br-2 ! -o br-2 -j SHALE-ISOLATION");
}

}  // namespace
}  // namespace shale::network
