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

// process.scheduler, process.ioPriority and linux.personality: names and ranges checked in
// the parent, converted to the kernel's values.
TEST(PlanProcess, SchedulerIoPriorityPersonality) {
  oci::Process p;
  p.args = {"true"};
  p.scheduler = oci::Process::Scheduler{"SCHED_BATCH", 5, std::nullopt, {"SCHED_FLAG_RESET_ON_FORK"}};
  p.io_priority = oci::Process::IoPriority{"IOPRIO_CLASS_IDLE", 0};
  auto plan = PlanProcess(p, {}, false, std::nullopt, oci::Personality{"LINUX32", {}});
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_EQ(plan->scheduler->policy, 3u);
  EXPECT_EQ(plan->scheduler->nice, 5);
  EXPECT_EQ(plan->scheduler->flags, 1u);
  EXPECT_EQ(*plan->io_priority, 3 << 13);
  EXPECT_EQ(*plan->personality, 0x0008u);

  auto refused = [&](oci::Process q, std::optional<oci::Personality> per, const char* what) {
    auto r = PlanProcess(q, {}, false, std::nullopt, per);
    ASSERT_FALSE(r) << what;
    EXPECT_NE(r.error().message().find(what), std::string::npos) << r.error().message();
  };
  oci::Process q = p;
  q.scheduler->policy = "SCHED_ISO";
  refused(q, std::nullopt, "process.scheduler.policy");
  q = p;
  q.scheduler->nice = 20;
  refused(q, std::nullopt, "process.scheduler.nice");
  q = p;
  q.scheduler = oci::Process::Scheduler{"SCHED_FIFO", std::nullopt, 0, {}};
  refused(q, std::nullopt, "outside 1..99");
  q.scheduler->priority = 10;
  EXPECT_TRUE(PlanProcess(q, {}, false));
  q.scheduler = oci::Process::Scheduler{"SCHED_DEADLINE", std::nullopt, std::nullopt, {}};
  refused(q, std::nullopt, "SCHED_DEADLINE needs runtime");
  q.scheduler->flags = {"SCHED_FLAG_NOPE"};
  refused(q, std::nullopt, "unknown flag SCHED_FLAG_NOPE");
  q = p;
  q.io_priority->priority = 8;
  refused(q, std::nullopt, "process.ioPriority.priority");
  q.io_priority = oci::Process::IoPriority{"IOPRIO_CLASS_NONE", 0};
  refused(q, std::nullopt, "process.ioPriority.class");
  refused(p, oci::Personality{"LINUX64", {}}, "linux.personality.domain");
  refused(p, oci::Personality{"LINUX", {"X"}}, "linux.personality.flags");
}

}  // namespace
}  // namespace shale::runtime
