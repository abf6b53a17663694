#include "runtime/rootless.h"

#include <gtest/gtest.h>

namespace shale::runtime {
namespace {

TEST(RootlessTest, FullRangeUidMap) {
  EXPECT_TRUE(UidMapIsFullRange("         0          0 4294967295\n"));
  EXPECT_FALSE(UidMapIsFullRange("         0       1000          1\n"));
  EXPECT_FALSE(UidMapIsFullRange("0 0 4294967295\n1 1 1\n"));  // two lines
  EXPECT_FALSE(UidMapIsFullRange("0 0 x\n"));
  EXPECT_FALSE(UidMapIsFullRange(""));
  EXPECT_FALSE(DetectRootless(0, "0 0 4294967295\n"));
  EXPECT_TRUE(DetectRootless(0, "0 1000 1\n"));
  EXPECT_TRUE(DetectRootless(1000, "0 0 4294967295\n"));
}

TEST(RootlessTest, ToRootlessRewritesTheSpec) {
  oci::RuntimeSpec s;
  s.linux.namespaces = {{"pid", ""}, {"network", ""}, {"mount", ""}};
  s.mounts = {{"/dev/pts", "devpts", "devpts", {"newinstance", "gid=5", "mode=620"}},
              {"/sys", "sysfs", "sysfs", {"nosuid", "ro"}}};
  s.linux.resources.memory_limit = 1 << 26;
  ToRootless(&s, 1000, 1001);
  std::vector<std::string> types;
  for (const auto& n : s.linux.namespaces) types.push_back(n.type);
  EXPECT_EQ(types, (std::vector<std::string>{"pid", "mount", "user"}));
  ASSERT_EQ(s.linux.uid_mappings.size(), 1u);
  EXPECT_EQ(s.linux.uid_mappings[0].host_id, 1000u);
  EXPECT_EQ(s.linux.gid_mappings[0].host_id, 1001u);
  EXPECT_EQ(s.mounts[0].options, (std::vector<std::string>{"newinstance", "mode=620"}));
  EXPECT_EQ(s.mounts[1].type, "none");
  EXPECT_EQ(s.mounts[1].source, "/sys");
  EXPECT_TRUE(ResourceLimitFields(s.linux.resources).empty());
  EXPECT_TRUE(IsSelfMapping(s.linux.uid_mappings, 1000));
  EXPECT_FALSE(IsSelfMapping(s.linux.uid_mappings, 0));
}

TEST(RootlessTest, LimitFieldsAndIdMapToolArgs) {
  oci::LinuxResources r;
  r.devices = {{false, "a", std::nullopt, std::nullopt, "rwm"}};  // deny-only: no limit
  EXPECT_TRUE(ResourceLimitFields(r).empty());
  r.pids_limit = 10;
  r.memory_limit = 1 << 20;
  EXPECT_EQ(ResourceLimitFields(r), (std::vector<std::string>{"linux.resources.memory.limit",
                                                             "linux.resources.pids.limit"}));
  EXPECT_EQ(IdMapToolArgs("newuidmap", 42, {{0, 1000, 1}, {1, 100000, 65536}}),
            (std::vector<std::string>{"newuidmap", "42", "0", "1000", "1", "1", "100000",
                                      "65536"}));
}

TEST(RootlessTest, DescendantsBreadthFirstAndCycleSafe) {
  std::vector<std::pair<pid_t, pid_t>> t = {{10, 1}, {11, 10}, {12, 10}, {13, 11}, {20, 1}};
  EXPECT_EQ(Descendants(10, t), (std::vector<pid_t>{10, 11, 12, 13}));
  EXPECT_EQ(Descendants(5, {{5, 6}, {6, 5}}), (std::vector<pid_t>{5, 6}));
}

}  // namespace
}  // namespace shale::runtime
