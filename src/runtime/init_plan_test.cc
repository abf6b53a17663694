#include <gtest/gtest.h>

#include "runtime/init.h"

namespace shale::runtime {
namespace {

oci::RuntimeSpec SysfsSpec(std::vector<oci::Namespace> ns) {
  oci::RuntimeSpec s;
  s.process.args = {"true"};
  s.root.path = "/nonexistent-rootfs";
  s.mounts = {{"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}}};
  s.linux.namespaces = std::move(ns);
  return s;
}

// sysfs shows the mounting process's network namespace. A namespace joined by path (a CNI
// netns file) is the container's own, so it gets a fresh sysfs, not the host's /sys.
TEST(PlanInit, SysfsOfTheContainersNetworkNamespaceNewOrJoined) {
  for (const char* path : {"", "/run/shale/netns/abc"}) {
    auto c = PlanInit(SysfsSpec({{"mount", ""}, {"network", path}}), RunOptions{}, true);
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_EQ(c->mounts.size(), 1u);
    EXPECT_EQ(c->mounts[0].type, "sysfs") << path;
    EXPECT_EQ(c->new_net, *path == '\0') << path;  // lo is brought up only in one made here
  }
  auto host = PlanInit(SysfsSpec({{"mount", ""}}), RunOptions{}, true);
  ASSERT_TRUE(host);
  EXPECT_EQ(host->mounts[0].source, "/sys");  // the host network: the host's /sys, bound
  EXPECT_TRUE(host->mounts[0].type.empty());
}

}  // namespace
}  // namespace shale::runtime
