#include "oci/runtime_spec.h"

#include <gtest/gtest.h>

namespace shale::oci {
namespace {

RuntimeSpec Sample() {
  RuntimeSpec s;
  s.process.terminal = true;
  s.process.console_height = 24;
  s.process.console_width = 80;
  s.process.user = {1000, 1000, {5, 27}};
  s.process.args = {"sh", "-c", "echo hi"};
  s.process.env = {"PATH=/bin", "TERM=xterm"};
  s.process.cwd = "/tmp";
  s.process.capabilities.bounding = DefaultCapabilities();
  s.process.capabilities.effective = {"CAP_KILL"};
  s.process.capabilities.ambient = {"CAP_NET_RAW"};
  s.process.rlimits = {{"RLIMIT_NOFILE", 1024, 512}};
  s.process.no_new_privileges = true;
  s.root = {"/var/lib/shale/overlay2/x/merged", true};
  s.hostname = "box";
  s.mounts = {{"/proc", "proc", "proc", {"nosuid", "noexec"}},
              {"/data", "bind", "/srv/data", {"rbind", "ro"}}};
  s.linux.namespaces = {{"pid", ""}, {"network", "/proc/1/ns/net"}};
  s.linux.resources.memory_limit = 64 << 20;
  s.linux.resources.memory_swap = 64 << 20;
  s.linux.resources.cpu_quota = 150000;
  s.linux.resources.cpu_period = 100000;
  s.linux.resources.cpu_shares = 512;
  s.linux.resources.pids_limit = 32;
  s.linux.cgroups_path = "shale/abc";
  s.linux.masked_paths = DefaultMaskedPaths();
  s.linux.readonly_paths = DefaultReadonlyPaths();
  s.annotations = {{"org.example", "v"}};
  return s;
}

TEST(RuntimeSpecTest, RoundTrip) {
  RuntimeSpec s = Sample();
  nlohmann::json j = ToJson(s);
  EXPECT_EQ(j["process"]["consoleSize"]["width"], 80);
  EXPECT_EQ(j["process"]["user"]["additionalGids"][1], 27);
  EXPECT_EQ(j["linux"]["resources"]["memory"]["limit"], 64 << 20);
  EXPECT_EQ(j["linux"]["cgroupsPath"], "shale/abc");
  EXPECT_EQ(j["mounts"][1]["options"][0], "rbind");
  auto back = RuntimeSpecFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(ToJson(*back), j);
  EXPECT_EQ(back->process.user.additional_gids, (std::vector<uint32_t>{5, 27}));
  EXPECT_EQ(back->process.rlimits[0].soft, 512u);
  EXPECT_EQ(back->linux.namespaces[1].path, "/proc/1/ns/net");
  EXPECT_EQ(*back->linux.resources.cpu_shares, 512u);
  EXPECT_TRUE(back->root.readonly);
  EXPECT_EQ(back->annotations["org.example"], "v");
}

TEST(RuntimeSpecTest, MinimalAndDefaults) {
  auto s = RuntimeSpecFromJson(nlohmann::json::parse(R"({"ociVersion":"1.0.2",
      "process":{"args":["true"]},"root":{"path":"rootfs"}})"));
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->process.cwd, "/");
  EXPECT_FALSE(s->linux.resources.memory_limit.has_value());
  EXPECT_EQ(s->oci_version, "1.0.2");
}

TEST(RuntimeSpecTest, BadFieldIsNamed) {
  auto s = RuntimeSpecFromJson(nlohmann::json::parse(R"({"process":{"args":"true"}})"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(s.error().message().find("process.args"), std::string::npos) << s.error().message();
  auto r = RuntimeSpecFromJson(
      nlohmann::json::parse(R"({"linux":{"resources":{"memory":{"limit":"x"}}}})"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("linux.resources.memory"), std::string::npos);
  EXPECT_FALSE(RuntimeSpecFromJson(nlohmann::json::array()));
}

TEST(RuntimeSpecTest, Defaults) {
  EXPECT_EQ(DefaultCapabilities().size(), 14u);
  EXPECT_EQ(DefaultMaskedPaths().size(), 11u);
  EXPECT_EQ(DefaultReadonlyPaths().size(), 5u);
}

}  // namespace
}  // namespace shale::oci
