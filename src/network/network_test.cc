#include "network/network.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "network/cni.h"
#include "network/netns.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::network {
namespace {

using nlohmann::json;

Attachment On(std::string id, std::string name, std::string net, std::string ip,
              std::vector<std::string> aliases = {}) {
  Attachment a;
  a.container_id = id;
  a.container_name = name;
  a.hostname = id.substr(0, 4);
  Endpoint e;
  e.network = net;
  e.network_id = "id-" + net;
  e.ip = ip;
  e.aliases = std::move(aliases);
  a.endpoints.push_back(e);
  return a;
}

TEST(RenderHosts, DefaultBridgeNamesOnlyItself) {
  std::vector<Attachment> all;
  all.push_back(On("aaaa1111", "web", "bridge", "172.17.0.2"));
  all.push_back(On("bbbb2222", "db", "bridge", "172.17.0.3"));
  std::string h = RenderHosts(all[0], all);
  EXPECT_NE(h.find("127.0.0.1\tlocalhost\n"), std::string::npos);
  EXPECT_NE(h.find("172.17.0.2\taaaa\n"), std::string::npos);
  EXPECT_EQ(h.find("db"), std::string::npos);
}

TEST(RenderHosts, UserNetworkPeersByNameAndAliasNotOtherNetworks) {
  std::vector<Attachment> all;
  all.push_back(On("aaaa1111", "web", "app", "10.1.0.2"));
  all.push_back(On("bbbb2222", "db", "app", "10.1.0.3", {"database"}));
  all.push_back(On("cccc3333", "other", "elsewhere", "10.2.0.2"));
  std::string h = RenderHosts(all[0], all);
  EXPECT_NE(h.find("10.1.0.2\taaaa web\n"), std::string::npos) << h;
  EXPECT_NE(h.find("10.1.0.3\tdb database\n"), std::string::npos) << h;
  EXPECT_EQ(h.find("other"), std::string::npos) << h;
}

TEST(PluginConfig, NameVersionCapabilitiesAndPrevResult) {
  json list = {{"cniVersion", "1.0.0"}, {"name", "app"}, {"plugins", json::array()}};
  json portmap = {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}};
  json rc = {{"portMappings", json::array({{{"hostPort", 8080}}})}, {"bandwidth", json::object()}};
  json prev = {{"cniVersion", "1.0.0"}, {"ips", json::array()}};
  json c = PluginConfig(list, portmap, rc, prev);
  EXPECT_EQ(c["name"], "app");
  EXPECT_EQ(c["cniVersion"], "1.0.0");
  EXPECT_EQ(c["runtimeConfig"], json({{"portMappings", rc["portMappings"]}}));  // asked-for only
  EXPECT_FALSE(c.contains("capabilities"));
  EXPECT_EQ(c["prevResult"], prev);
  json bridge = PluginConfig(list, {{"type", "bridge"}}, rc, nullptr);
  EXPECT_FALSE(bridge.contains("runtimeConfig"));
  EXPECT_FALSE(bridge.contains("prevResult"));
}

TEST(Attachment, CacheRoundTrip) {
  Attachment a = On("aaaa1111", "web", "app", "");
  a.netns = "/run/shale/netns/aaaa1111";
  a.hosts_path = "/x/hosts";
  a.ports = {PortMapping{"127.0.0.1", 8080, 80, "tcp"}};
  a.endpoints[0].ifname = "eth0";
  a.endpoints[0].config = {{"name", "app"}};
  a.endpoints[0].result = {
      {"interfaces", json::array({{{"name", "veth1"}}, {{"name", "eth0"}, {"mac", "aa:bb"}, {"sandbox", "/x"}}})},
      {"ips", json::array({{{"address", "10.1.0.5/24"}, {"gateway", "10.1.0.1"}, {"interface", 1}}})}};
  Attachment b = AttachmentFromJson(ToJson(a));
  EXPECT_EQ(b.netns, a.netns);
  EXPECT_EQ(b.ports, a.ports);
  ASSERT_EQ(b.endpoints.size(), 1u);
  EXPECT_EQ(b.endpoints[0].result, a.endpoints[0].result);
  EXPECT_EQ(b.endpoints[0].ip, "10.1.0.5");  // read back from the cached result
  EXPECT_EQ(b.endpoints[0].prefix, 24);
  EXPECT_EQ(b.endpoints[0].gateway, "10.1.0.1");
  EXPECT_EQ(b.endpoints[0].mac, "aa:bb");
}

TEST(FindPlugin, PlainNamesOnly) {
  EXPECT_EQ(FindPlugin("../bin/sh").error().code(), Errc::kInvalidArgument);
  auto missing = FindPlugin("no-such-plugin");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("containernetworking-plugins"), std::string::npos);
}

// The real plugins, as root: ADD's result is cached, and DEL works from the cache alone
// even after the network's own config is gone (the lease is released, the veth removed).
TEST(Networks, DelFromTheCacheAfterTheConfigIsGone) {
  if (geteuid() != 0 || access("/usr/lib/cni/bridge", X_OK) != 0)
    GTEST_SKIP() << "needs root and containernetworking-plugins";
  auto tmp = ScopedTempDir::Make("/tmp", "shale-nettest");
  ASSERT_TRUE(tmp);
  Networks nets(tmp->path());
  CreateRequest req;
  req.name = "cachetest";
  auto n = nets.Create(req);
  ASSERT_TRUE(n) << n.error().message();
  std::string hosts = tmp->path() + "/hosts";
  ASSERT_TRUE(WriteFileAtomic(hosts, ""));
  AttachRequest ar;
  ar.container_id = RandomHexId(64);
  ar.container_name = "c1";
  ar.hostname = "h1";
  ar.networks = {{"cachetest", {"alias1"}}};
  ar.hosts_path = hosts;
  auto a = nets.Attach(ar);
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(PathExists(a->netns));
  auto cached = nets.Load(ar.container_id);
  ASSERT_TRUE(cached);
  ASSERT_EQ(cached->endpoints.size(), 1u);
  const Endpoint& e = cached->endpoints[0];
  ASSERT_FALSE(e.ip.empty());
  EXPECT_TRUE(Contains(n->subnet, *ParseIpv4(e.ip, "ip")));
  EXPECT_EQ(e.result["ips"][0]["address"], e.ip + "/" + std::to_string(n->subnet.prefix));
  std::string lease = tmp->path() + "/network/ipam/cachetest/" + e.ip;
  EXPECT_TRUE(PathExists(lease));
  EXPECT_NE(ReadFile(hosts)->find(e.ip + "\th1 c1 alias1"), std::string::npos);
  // CHECK against the cached result: the plugins confirm what ADD made.
  CniInvocation inv{ar.container_id, a->netns, e.ifname, e.runtime_config};
  auto checked = CheckList(e.config, e.result, inv);
  EXPECT_TRUE(checked) << checked.error().message();

  // A changed or lost config must not matter to DEL.
  ASSERT_EQ(unlink((tmp->path() + "/network/networks/cachetest.conflist").c_str()), 0);
  ASSERT_TRUE(nets.Detach(ar.container_id));
  EXPECT_FALSE(PathExists(lease));
  EXPECT_FALSE(PathExists(a->netns));
  EXPECT_FALSE(nets.Load(ar.container_id));
  EXPECT_TRUE(ListDir("/sys/class/net/" + n->bridge + "/brif").value_or(std::vector<std::string>{}).empty());
  // Put the config back to remove the bridge and its rules.
  ASSERT_TRUE(WriteFileAtomic(tmp->path() + "/network/networks/cachetest.conflist", n->conflist.dump()));
  EXPECT_TRUE(nets.Remove("cachetest"));
  EXPECT_FALSE(PathExists("/sys/class/net/" + n->bridge));
  EXPECT_TRUE(nets.Remove("bridge"));
}

}  // namespace
}  // namespace shale::network
