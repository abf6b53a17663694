#include "network/ports.h"

#include <gtest/gtest.h>

namespace shale::network {
namespace {

PortMapping M(std::string ip, int host, int ctr, std::string proto = "tcp") {
  return PortMapping{std::move(ip), host, ctr, std::move(proto)};
}

TEST(ParsePublish, DockerForms) {
  EXPECT_EQ(*ParsePublish("80"), std::vector<PortMapping>{M("", 0, 80)});
  EXPECT_EQ(*ParsePublish("8080:80"), std::vector<PortMapping>{M("", 8080, 80)});
  EXPECT_EQ(*ParsePublish("127.0.0.1:8080:80/udp"),
            std::vector<PortMapping>{M("127.0.0.1", 8080, 80, "udp")});
  EXPECT_EQ(*ParsePublish("127.0.0.1::80"), std::vector<PortMapping>{M("127.0.0.1", 0, 80)});
  EXPECT_EQ(*ParsePublish("0.0.0.0:81:80"), std::vector<PortMapping>{M("", 81, 80)});
}

TEST(ParsePublish, Ranges) {
  EXPECT_EQ(*ParsePublish("8080-8081:80-81"),
            (std::vector<PortMapping>{M("", 8080, 80), M("", 8081, 81)}));
  EXPECT_EQ(*ParsePublish("53-54/udp"),
            (std::vector<PortMapping>{M("", 0, 53, "udp"), M("", 0, 54, "udp")}));
}

TEST(ParsePublish, RefusesBadInput) {
  for (const char* bad : {"", "x", "0", "65536", "80/sctp", "1.2.3:80:80", "a:b:c:d",
                          "8080-8082:80-81", "90-80", "[::1]:80:80", "-1", "99999999999999999999"}) {
    auto r = ParsePublish(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message().find(std::string("-p ") + bad), std::string::npos)
        << r.error().message();
  }
}

TEST(ExposedToMappings, ImageExposedPorts) {
  auto m = ExposedToMappings({{"80/tcp", nlohmann::json::object()}, {"53/udp", nlohmann::json::object()}});
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, (std::vector<PortMapping>{M("", 0, 53, "udp"), M("", 0, 80)}));
}

TEST(PortMappingsJson, RoundTripsAsPortmapWantsIt) {
  std::vector<PortMapping> in = {M("127.0.0.1", 8080, 80), M("", 5353, 53, "udp")};
  nlohmann::json j = PortMappingsJson(in);
  EXPECT_EQ(j[0]["hostPort"], 8080);
  EXPECT_EQ(j[0]["containerPort"], 80);
  EXPECT_EQ(j[0]["hostIP"], "127.0.0.1");
  EXPECT_FALSE(j[1].contains("hostIP"));
  EXPECT_EQ(PortMappingsFromJson(j), in);
}

TEST(ReservePorts, ChoosesAFreePortAndRefusesATakenOne) {
  std::vector<PortMapping> a = {M("127.0.0.1", 0, 80)};
  auto held = ReservePorts(a);
  ASSERT_TRUE(held) << held.error().message();
  ASSERT_GT(a[0].host_port, 0);
  std::vector<PortMapping> b = {M("127.0.0.1", a[0].host_port, 80)};
  auto clash = ReservePorts(b);
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(clash.error().message(), "Bind for 127.0.0.1:" + std::to_string(a[0].host_port) +
                                         " failed: port is already allocated");
  held->clear();  // released: the port can be taken again
  EXPECT_TRUE(ReservePorts(b));
}

}  // namespace
}  // namespace shale::network
