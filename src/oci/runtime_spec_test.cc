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

TEST(RuntimeSpecTest, DevicesAndSeccompRoundTrip) {
  RuntimeSpec s = Sample();
  s.linux.resources.devices = DefaultDeviceRules();
  s.linux.seccomp = DefaultSeccomp(DefaultCapabilities());
  s.linux.seccomp->flags = {"SECCOMP_FILTER_FLAG_LOG"};
  s.linux.seccomp->default_errno_ret = 38;
  nlohmann::json j = ToJson(s);
  const nlohmann::json& d = j["linux"]["resources"]["devices"];
  ASSERT_EQ(d.size(), DefaultDeviceRules().size());
  EXPECT_EQ(d[0], nlohmann::json::parse(R"({"allow":false,"type":"a","access":"rwm"})"));
  EXPECT_EQ(d[3], nlohmann::json::parse(
                      R"({"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"})"));
  const nlohmann::json& sc = j["linux"]["seccomp"];
  EXPECT_EQ(sc["defaultAction"], "SCMP_ACT_ALLOW");
  EXPECT_EQ(sc["defaultErrnoRet"], 38);
  EXPECT_EQ(sc["syscalls"][0]["action"], "SCMP_ACT_ERRNO");
  auto back = RuntimeSpecFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(ToJson(*back), j);
  EXPECT_FALSE(back->linux.resources.devices[9].minor.has_value());  // 136:*
  ASSERT_TRUE(back->linux.seccomp);
  EXPECT_EQ(back->linux.seccomp->syscalls.size(), s.linux.seccomp->syscalls.size());

  // No seccomp member: no filter; an unconfined spec stays unconfined through JSON.
  s.linux.seccomp.reset();
  s.linux.resources.devices.clear();
  j = ToJson(s);
  EXPECT_FALSE(j["linux"].contains("seccomp"));
  EXPECT_FALSE(j["linux"]["resources"].contains("devices"));
  back = RuntimeSpecFromJson(j);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->linux.seccomp);
}

TEST(RuntimeSpecTest, SeccompFromRuntimeSpecJson) {
  auto s = RuntimeSpecFromJson(nlohmann::json::parse(R"({"linux":{"seccomp":{
      "defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
      "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                  {"names":["clone"],"action":"SCMP_ACT_ALLOW",
                   "args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                  {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":28}]},
      "resources":{"devices":[{"allow":false,"access":"rwm"},
                              {"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}}})"));
  ASSERT_TRUE(s) << s.error().message();
  const Seccomp& sc = *s->linux.seccomp;
  EXPECT_EQ(sc.default_action, "SCMP_ACT_ERRNO");
  EXPECT_FALSE(sc.default_errno_ret);
  ASSERT_EQ(sc.syscalls.size(), 3u);
  EXPECT_EQ(sc.syscalls[1].args[0].value, 2114060288u);
  EXPECT_EQ(sc.syscalls[1].args[0].op, "SCMP_CMP_MASKED_EQ");
  EXPECT_EQ(*sc.syscalls[2].errno_ret, 28u);
  const auto& devs = s->linux.resources.devices;
  ASSERT_EQ(devs.size(), 2u);
  EXPECT_EQ(devs[0].type, "");
  EXPECT_FALSE(devs[0].allow);
  EXPECT_EQ(*devs[1].major, 1);
  EXPECT_EQ(devs[1].access, "rw");

  auto bad = RuntimeSpecFromJson(
      nlohmann::json::parse(R"({"linux":{"seccomp":{"syscalls":[{"names":"read"}]}}})"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("linux.seccomp.syscalls"), std::string::npos);
}

TEST(RuntimeSpecTest, SeccompListenerPathAndMetadata) {
  auto s = RuntimeSpecFromJson(nlohmann::json::parse(R"({"linux":{"seccomp":{
      "defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock",
      "listenerMetadata":"MKNOD=/dev/null;x",
      "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}}})"));
  ASSERT_TRUE(s) << s.error().message();
  const Seccomp& sc = *s->linux.seccomp;
  EXPECT_EQ(sc.listener_path, "/run/agent.sock");
  EXPECT_EQ(sc.listener_metadata, "MKNOD=/dev/null;x");
  EXPECT_EQ(sc.syscalls[0].action, "SCMP_ACT_NOTIFY");

  // Kept through the spec shale-runc stores in its state directory.
  nlohmann::json j = ToJson(*s);
  EXPECT_EQ(j["linux"]["seccomp"]["listenerPath"], "/run/agent.sock");
  EXPECT_EQ(j["linux"]["seccomp"]["listenerMetadata"], "MKNOD=/dev/null;x");
  auto back = RuntimeSpecFromJson(j);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->linux.seccomp->listener_path, "/run/agent.sock");
  EXPECT_EQ(back->linux.seccomp->listener_metadata, "MKNOD=/dev/null;x");
  s->linux.seccomp->listener_path.clear();
  s->linux.seccomp->listener_metadata.clear();
  EXPECT_FALSE(ToJson(*s)["linux"]["seccomp"].contains("listenerPath"));
  EXPECT_FALSE(ToJson(*s)["linux"]["seccomp"].contains("listenerMetadata"));

  // config-linux.md: listenerMetadata MUST NOT be set without listenerPath.
  auto bad = RuntimeSpecFromJson(nlohmann::json::parse(
      R"({"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","listenerMetadata":"m"}}})"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("listenerMetadata"), std::string::npos);
  EXPECT_NE(bad.error().message().find("listenerPath"), std::string::npos);
  bad = RuntimeSpecFromJson(nlohmann::json::parse(
      R"({"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":7}}})"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("linux.seccomp.listenerPath"), std::string::npos);
}

TEST(RuntimeSpecTest, DefaultSecurityProfiles) {
  std::vector<DeviceRule> d = DefaultDeviceRules();
  ASSERT_FALSE(d.empty());
  EXPECT_FALSE(d[0].allow);  // deny everything first
  EXPECT_EQ(d[0].type, "a");
  ASSERT_EQ(PrivilegedDeviceRules().size(), 1u);
  EXPECT_TRUE(PrivilegedDeviceRules()[0].allow);

  Seccomp s = DefaultSeccomp(DefaultCapabilities());
  EXPECT_EQ(s.default_action, "SCMP_ACT_ALLOW");
  auto refused = [&](const std::string& name) {
    for (const SeccompSyscall& c : s.syscalls)
      for (const std::string& n : c.names)
        if (n == name && c.args.empty() && c.action == "SCMP_ACT_ERRNO") return true;
    return false;
  };
  for (const char* n : {"mount", "umount2", "unshare", "setns", "pivot_root", "bpf", "keyctl",
                        "kexec_load", "init_module", "reboot", "open_by_handle_at", "swapon"})
    EXPECT_TRUE(refused(n)) << n;
  for (const char* n : {"read", "chroot", "clone", "personality", "socket"})
    EXPECT_FALSE(refused(n)) << n;  // allowed, or refused only for some arguments
  bool clone3_enosys = false;
  for (const SeccompSyscall& c : s.syscalls)
    if (c.names == std::vector<std::string>{"clone3"}) clone3_enosys = (c.errno_ret == 38);
  EXPECT_TRUE(clone3_enosys);
}

// Docker's includes.caps rules: each added capability lifts the refusal of its syscalls, and
// only those; the default set keeps them refused.
TEST(RuntimeSpecTest, DefaultSeccompFollowsTheCapabilities) {
  auto refused = [](const Seccomp& s, const std::string& name) {
    for (const SeccompSyscall& c : s.syscalls)
      for (const std::string& n : c.names)
        if (n == name && c.action == "SCMP_ACT_ERRNO") return true;
    return false;
  };
  std::vector<std::string> caps = DefaultCapabilities();
  Seccomp def = DefaultSeccomp(caps);
  caps.push_back("CAP_SYS_ADMIN");
  Seccomp admin = DefaultSeccomp(caps);
  for (const char* n : {"mount", "umount2", "unshare", "setns", "clone", "clone3", "fsopen",
                        "move_mount", "sethostname", "syslog", "bpf", "perf_event_open"}) {
    EXPECT_TRUE(refused(def, n)) << n;
    EXPECT_FALSE(refused(admin, n)) << n;
  }
  for (const char* n : {"pivot_root", "kexec_load", "keyctl", "reboot", "init_module", "kcmp"})
    EXPECT_TRUE(refused(admin, n)) << n;  // not CAP_SYS_ADMIN's

  struct Case {
    const char* cap;
    std::vector<const char*> unlocks;
  };
  const Case cases[] = {
      {"SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}},
      {"sys_module", {"init_module", "finit_module", "delete_module"}},
      {"CAP_SYS_BOOT", {"reboot"}},
      {"CAP_SYS_TIME", {"settimeofday", "clock_settime"}},
      {"CAP_SYS_NICE", {"mbind", "set_mempolicy", "get_mempolicy"}},
      {"CAP_SYS_RAWIO", {"iopl", "ioperm"}},
      {"CAP_SYS_PACCT", {"acct"}},
      {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
      {"CAP_SYSLOG", {"syslog"}},
      {"CAP_BPF", {"bpf"}},
      {"CAP_PERFMON", {"perf_event_open"}},
      {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
  };
  for (const Case& c : cases) {
    std::vector<std::string> with = DefaultCapabilities();
    with.push_back(c.cap);
    Seccomp s = DefaultSeccomp(with);
    for (const char* n : c.unlocks) {
      EXPECT_TRUE(refused(def, n)) << n;
      EXPECT_FALSE(refused(s, n)) << c.cap << " " << n;
    }
    EXPECT_TRUE(refused(s, "mount")) << c.cap;  // nothing else is lifted
    EXPECT_TRUE(refused(s, "unshare")) << c.cap;
  }
  // chroot is in the default set; dropping CAP_SYS_CHROOT refuses it, as Docker does.
  EXPECT_FALSE(refused(def, "chroot"));
  std::vector<std::string> no_chroot = DefaultCapabilities();
  std::erase(no_chroot, "CAP_SYS_CHROOT");
  EXPECT_TRUE(refused(DefaultSeccomp(no_chroot), "chroot"));
  EXPECT_TRUE(refused(DefaultSeccomp({}), "chroot"));
}

TEST(RuntimeSpecTest, UnsupportedFieldsAreRefusedByName) {
  auto s = RuntimeSpecFromJson(nlohmann::json::parse(R"({"ociVersion":"1.0.2",
    "process":{"args":["sh"],"apparmorProfile":"x","scheduler":{},"user":{"uid":0,"gid":0,"username":"u"}},
    "root":{"path":"/r"},
    "linux":{"intelRdt":{"closID":"a"},"resources":{"hugepageLimits":[],
                          "blockIO":{"weight":10,"notInTheSpec":1}},
             "personality":{}, "notInTheSpec":{"a":1}}})"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::kUnsupported);
  const std::string& m = s.error().message();
  for (const char* f : {"process.apparmorProfile", "process.user.username", "linux.intelRdt"})
    EXPECT_NE(m.find(f), std::string::npos) << f << " in " << m;
  // Empty values count as absent.
  // Empty values count as absent; what the spec does not define is ignored (config.md).
  for (const char* f : {"scheduler", "hugepageLimits", "personality", "notInTheSpec", "blockIO"})
    EXPECT_EQ(m.find(f), std::string::npos) << f << " in " << m;
  auto unknown = RuntimeSpecFromJson(nlohmann::json::parse(
      R"({"process":{"args":["sh"],"future":true},"root":{"path":"/r"},"future":{"x":1}})"));
  EXPECT_TRUE(unknown) << unknown.error().message();
}

TEST(RuntimeSpecTest, HooksMappingsAndLinuxExtrasRoundTrip) {
  RuntimeSpec s = Sample();
  s.hooks.prestart = {{"/bin/hook", {"hook", "a"}, {"K=V"}, 5}};
  s.hooks.poststop = {{"/bin/stop", {}, {}, std::nullopt}};
  s.linux.namespaces.push_back({"user", ""});
  s.linux.uid_mappings = {{0, 100000, 65536}};
  s.linux.gid_mappings = {{0, 100000, 65536}};
  s.linux.sysctl = {{"net.ipv4.ip_forward", "1"}};
  s.linux.rootfs_propagation = "rslave";
  s.linux.resources.rdma["mlx5_1"] = {3, std::nullopt};
  s.linux.resources.unified = {{"memory.high", "1G"}};
  s.process.scheduler = Process::Scheduler{"SCHED_BATCH", 5, std::nullopt, {"SCHED_FLAG_RESET_ON_FORK"}};
  s.process.io_priority = Process::IoPriority{"IOPRIO_CLASS_BE", 4};
  s.linux.personality = Personality{"LINUX32", {}};
  s.process.oom_score_adj = -100;
  s.process.user.umask = 022;
  s.domainname = "example.org";
  nlohmann::json j = ToJson(s);
  EXPECT_EQ(j["hooks"]["prestart"][0]["timeout"], 5);
  EXPECT_EQ(j["linux"]["uidMappings"][0]["hostID"], 100000);
  auto back = RuntimeSpecFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(ToJson(*back), j);
  EXPECT_EQ(back->hooks.prestart[0].env[0], "K=V");
  EXPECT_EQ(*back->hooks.prestart[0].timeout, 5);
  EXPECT_EQ(back->linux.gid_mappings[0].size, 65536u);
  EXPECT_EQ(*back->process.oom_score_adj, -100);
  EXPECT_EQ(j["linux"]["resources"]["rdma"]["mlx5_1"], nlohmann::json({{"hcaHandles", 3}}));
  EXPECT_EQ(back->linux.resources.unified.at("memory.high"), "1G");
  EXPECT_EQ(j["process"]["scheduler"]["nice"], 5);
  EXPECT_EQ(back->process.scheduler->flags[0], "SCHED_FLAG_RESET_ON_FORK");
  EXPECT_EQ(back->process.io_priority->priority, 4);
  EXPECT_EQ(back->linux.personality->domain, "LINUX32");
  auto bad = RuntimeSpecFromJson(nlohmann::json::parse(
      R"({"linux":{"uidMappings":[{"containerID":0,"hostID":4294967295,"size":2}]}})"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace shale::oci

namespace shale::oci {
namespace {

TEST(RuntimeSpecTest, BlockIoHugepagesNetworkRoundTrip) {
  auto s = RuntimeSpecFromJson(nlohmann::json::parse(R"({"ociVersion":"1.0.2-dev",
    "process":{"args":["sh"]},"root":{"path":"/r"},
    "linux":{"resources":{
      "blockIO":{"weight":500,"leafWeight":300,
                 "weightDevice":[{"major":8,"minor":0,"weight":400,"leafWeight":200}],
                 "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":102400}],
                 "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":50}]},
      "hugepageLimits":[{"pageSize":"2MB","limit":2147483648}],
      "network":{"classID":255,"priorities":[{"name":"lo","priority":10}]}}}})"));
  ASSERT_TRUE(s) << s.error().message();
  const LinuxResources& r = s->linux.resources;
  EXPECT_EQ(r.blkio_weight, 500);
  EXPECT_EQ(r.blkio_leaf_weight, 300);
  ASSERT_EQ(r.blkio_weight_device.size(), 1u);
  EXPECT_EQ(r.blkio_weight_device[0].weight, 400);
  EXPECT_EQ(r.blkio_weight_device[0].leaf_weight, 200);
  ASSERT_EQ(r.blkio_throttle_read_bps.size(), 1u);
  EXPECT_EQ(r.blkio_throttle_read_bps[0].rate, 102400u);
  ASSERT_EQ(r.blkio_throttle_write_iops.size(), 1u);
  EXPECT_EQ(r.blkio_throttle_write_iops[0].minor, 16);
  ASSERT_EQ(r.hugepage_limits.size(), 1u);
  EXPECT_EQ(r.hugepage_limits[0].page_size, "2MB");
  EXPECT_EQ(r.hugepage_limits[0].limit, 2147483648u);
  EXPECT_EQ(r.network_class_id, 255u);
  ASSERT_EQ(r.network_priorities.size(), 1u);
  EXPECT_EQ(r.network_priorities[0].first, "lo");

  nlohmann::json j = ToJson(*s);
  EXPECT_EQ(j["linux"]["resources"]["blockIO"]["weightDevice"][0]["leafWeight"], 200);
  EXPECT_EQ(j["linux"]["resources"]["network"]["priorities"][0]["priority"], 10);
  auto back = RuntimeSpecFromJson(j);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(ToJson(*back), j);
}

TEST(RuntimeSpecTest, OciVersionMustBeSemVer1) {
  auto parse = [](const char* v) {
    nlohmann::json j = {{"ociVersion", v}, {"process", {{"args", {"sh"}}}},
                        {"root", {{"path", "/r"}}}};
    return RuntimeSpecFromJson(j);
  };
  for (const char* ok : {"1.0.0", "1.0.2-dev", "1.1.0+dev", "1.2.0-rc.1"})
    EXPECT_TRUE(parse(ok)) << ok;
  for (const char* bad : {"invalid", "1.0", "", "01.0.0", "1.0.0-"}) {
    auto r = parse(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message().find("ociVersion"), std::string::npos);
  }
  auto two = parse("2.0.0");
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().code(), Errc::kUnsupported);
}

}  // namespace
}  // namespace shale::oci

namespace shale::oci {
namespace {

// mounts[].uidMappings/gidMappings (runtime-spec 1.2) decode, round-trip and are validated.
TEST(RuntimeSpecTest, MountIdMappings) {
  auto s = RuntimeSpecFromJson(nlohmann::json::parse(R"({"process":{"args":["sh"]},
    "root":{"path":"/r"},
    "mounts":[{"destination":"/data","type":"bind","source":"/srv","options":["rbind","ridmap"],
               "uidMappings":[{"containerID":1000,"hostID":0,"size":2}],
               "gidMappings":[{"containerID":1000,"hostID":0,"size":2},
                              {"containerID":0,"hostID":5000,"size":1}]},
              {"destination":"/empty","type":"bind","source":"/srv","options":["bind"],
               "uidMappings":[],"gidMappings":[]}]})"));
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_EQ(s->mounts.size(), 2u);
  EXPECT_EQ(s->mounts[0].uid_mappings, (std::vector<IdMapping>{{1000, 0, 2}}));
  EXPECT_EQ(s->mounts[0].gid_mappings, (std::vector<IdMapping>{{1000, 0, 2}, {0, 5000, 1}}));
  EXPECT_TRUE(s->mounts[1].uid_mappings.empty());  // empty counts as absent
  nlohmann::json j = ToJson(*s);
  EXPECT_EQ(j["mounts"][0]["gidMappings"][1]["hostID"], 5000);
  EXPECT_FALSE(j["mounts"][1].contains("uidMappings"));
  auto back = RuntimeSpecFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(ToJson(*back), j);

  struct Bad {
    const char* maps;
    const char* message;
  } bad[] = {
      {R"("uidMappings":[{"containerID":0,"hostID":1000,"size":1}])", "needs gidMappings"},
      {R"("gidMappings":[{"containerID":0,"hostID":1000,"size":1}])", "needs uidMappings"},
      {R"("uidMappings":[{"containerID":0,"hostID":1000,"size":0}],
          "gidMappings":[{"containerID":0,"hostID":1000,"size":1}])", "out of range"},
      {R"("uidMappings":[{"containerID":0,"hostID":4294967295,"size":2}],
          "gidMappings":[{"containerID":0,"hostID":1000,"size":1}])", "out of range"},
      {R"("uidMappings":[{"containerID":0,"hostID":1000,"size":10},
                         {"containerID":5,"hostID":2000,"size":1}],
          "gidMappings":[{"containerID":0,"hostID":1000,"size":1}])", "overlap (containerID"},
      {R"("uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
          "gidMappings":[{"containerID":0,"hostID":1000,"size":10},
                         {"containerID":20,"hostID":1009,"size":1}])", "overlap (hostID"},
      {R"("uidMappings":[{"containerID":"0","hostID":1000,"size":1}],
          "gidMappings":[{"containerID":0,"hostID":1000,"size":1}])", "mounts.uidMappings"},
  };
  for (const Bad& b : bad) {
    std::string text = std::string(R"({"process":{"args":["sh"]},"root":{"path":"/r"},
      "mounts":[{"destination":"/data","type":"bind","source":"/srv","options":["bind"],)") +
                       b.maps + "}]}";
    auto r = RuntimeSpecFromJson(nlohmann::json::parse(text));
    ASSERT_FALSE(r) << b.maps;
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << b.maps;
    EXPECT_NE(r.error().message().find(b.message), std::string::npos) << r.error().message();
    if (std::string(b.message) != "mounts.uidMappings") {
      EXPECT_NE(r.error().message().find("/data"), std::string::npos) << r.error().message();
    }
  }
  // The same checks hold for linux.uidMappings now: overlapping lines the kernel would refuse.
  auto linux_overlap = RuntimeSpecFromJson(nlohmann::json::parse(
      R"({"linux":{"uidMappings":[{"containerID":0,"hostID":1000,"size":2},
                                  {"containerID":1,"hostID":5000,"size":1}]}})"));
  ASSERT_FALSE(linux_overlap);
  EXPECT_NE(linux_overlap.error().message().find("linux.uidMappings"), std::string::npos);
  // 341 lines: more than uid_map takes.
  nlohmann::json many = nlohmann::json::array();
  for (int i = 0; i < 341; ++i) many.push_back({{"containerID", i}, {"hostID", i}, {"size", 1}});
  nlohmann::json mount = nlohmann::json::object();
  mount["destination"] = "/d";
  mount["type"] = "bind";
  mount["source"] = "/s";
  mount["uidMappings"] = many;
  mount["gidMappings"] = many;
  nlohmann::json j2 = nlohmann::json::object();
  j2["mounts"] = nlohmann::json::array({mount});
  auto too_many = RuntimeSpecFromJson(j2);
  ASSERT_FALSE(too_many);
  EXPECT_NE(too_many.error().message().find("at most 340"), std::string::npos);
}

TEST(RuntimeSpecTest, SemVerMajorFollowsTheGrammar) {
  for (const char* ok : {"1.0.0", "1.1.0", "1.2.0-rc.1", "1.0.0-alpha.beta.1", "1.0.0+20130313",
                         "1.0.0-0.3.7+exp.sha.5114f85", "10.20.30", "1.0.0-x-y-z.--",
                         "1.0.0+001"}) {
    EXPECT_TRUE(SemVerMajor(ok)) << ok;
  }
  EXPECT_EQ(SemVerMajor("12.0.3-dev").value_or(""), "12");
  for (const char* bad : {"", "invalid", "1", "1.0", "1.0.0.0", "01.0.0", "1.00.0", "1.0.0-",
                          "1.0.0-01", "1.0.0+", "1.0.0-a..b", "1.0.0+a_b", "a.b.c", "1.0.0 "}) {
    EXPECT_FALSE(SemVerMajor(bad)) << bad;
  }
}

}  // namespace
}  // namespace shale::oci
