#include "network/subnet.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "util/fs.h"

namespace shale::network {
namespace {

Ipv4Net N(const char* s) { return *ParseSubnet(s); }

TEST(ParseSubnet, AcceptsCidrAndRefusesHostBitsAndSizes) {
  EXPECT_EQ(FormatSubnet(N("172.18.0.0/16")), "172.18.0.0/16");
  auto hb = ParseSubnet("172.18.0.1/16");
  ASSERT_FALSE(hb);
  EXPECT_NE(hb.error().message().find("did you mean 172.18.0.0/16"), std::string::npos);
  for (const char* bad : {"172.18.0.0", "172.18.0.0/31", "172.18.0.0/7", "300.1.1.0/24", "x/24", "10.0.0.0/"})
    EXPECT_FALSE(ParseSubnet(bad)) << bad;
}

TEST(Overlaps, PrefixesOfDifferentLength) {
  EXPECT_TRUE(Overlaps(N("10.0.0.0/8"), N("10.20.0.0/16")));
  EXPECT_TRUE(Overlaps(N("10.20.0.0/16"), N("10.0.0.0/8")));
  EXPECT_FALSE(Overlaps(N("10.20.0.0/16"), N("10.21.0.0/16")));
  EXPECT_TRUE(Contains(N("192.168.16.0/20"), *ParseIpv4("192.168.31.255", "ip")));
  EXPECT_FALSE(Contains(N("192.168.16.0/20"), *ParseIpv4("192.168.32.0", "ip")));
}

// /proc/net/route as the kernel prints it: little-endian hex words on x86.
constexpr const char* kRoutes =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    "docker0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    "wg0\t0010A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

TEST(ParseProcNetRoute, SkipsTheDefaultRoute) {
  std::vector<Ipv4Net> r = ParseProcNetRoute(kRoutes);
  EXPECT_EQ(r, (std::vector<Ipv4Net>{N("172.17.0.0/16"), N("172.18.0.0/16"), N("192.168.16.0/24")}));
}

TEST(ChooseSubnet, FirstPoolEntryClearOfRoutesAndClaims) {
  std::vector<Ipv4Net> routes = ParseProcNetRoute(kRoutes);
  EXPECT_EQ(*ChooseSubnet(DefaultPool(), routes), N("172.19.0.0/16"));
  // A wide host route (a VPN's 172.16.0.0/12) rules out every 172 entry.
  routes.push_back(N("172.16.0.0/12"));
  EXPECT_EQ(*ChooseSubnet(DefaultPool(), routes), N("192.168.0.0/20"));
  // 192.168.16.0/24 overlaps the 192.168.16.0/20 pool entry, not the ones around it.
  routes.push_back(N("192.168.0.0/20"));
  EXPECT_EQ(*ChooseSubnet(DefaultPool(), routes), N("192.168.32.0/20"));
  auto none = ChooseSubnet(DefaultPool(), {Ipv4Net{0, 1}, Ipv4Net{0x80000000u, 1}});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::kBusy);
  EXPECT_NE(none.error().message().find("--subnet"), std::string::npos);
}

TEST(ClaimSubnet, OneOwnerPerSubnetAndStaleClaimsTakenOver) {
  auto tmp = ScopedTempDir::Make("/tmp", "shale-subnets");
  ASSERT_TRUE(tmp);
  setenv("SHALE_SUBNETS_DIR", (tmp->path() + "/claims").c_str(), 1);
  std::string a = tmp->path() + "/a", b = tmp->path() + "/b";
  ASSERT_TRUE(MakeDirsAbs(a));
  ASSERT_TRUE(MakeDirsAbs(b));
  auto first = ClaimFreeSubnet(a, {N("172.17.0.0/16")});
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(*first, N("172.18.0.0/16"));
  // Another owner gets the next one, and cannot claim an overlapping subnet by hand.
  EXPECT_EQ(*ClaimFreeSubnet(b, {N("172.17.0.0/16")}), N("172.19.0.0/16"));
  auto clash = ClaimSubnet(N("172.18.4.0/24"), b, {});
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code(), Errc::kAlreadyExists);
  EXPECT_TRUE(ClaimSubnet(N("172.18.0.0/16"), a, {}));  // the owner again: fine
  // The owner's directory is gone (its store removed): the claim is stale.
  ASSERT_TRUE(RemoveTreeAbs(a));
  EXPECT_TRUE(ClaimSubnet(N("172.18.4.0/24"), b, {}));
  ReleaseSubnet(N("172.19.0.0/16"), b);
  EXPECT_EQ(*ClaimFreeSubnet(b, {N("172.17.0.0/16"), N("172.18.0.0/16")}), N("172.19.0.0/16"));
  unsetenv("SHALE_SUBNETS_DIR");
}

}  // namespace
}  // namespace shale::network
