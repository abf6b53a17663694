// spec (a default bundle config, runc's) and features (runtime-spec features.md).
#include <unistd.h>

#include <iostream>

#include <nlohmann/json.hpp>

#include "runc/runc.h"
#include "runtime/rootless.h"
#include "runtime/seccomp.h"
#include "util/fs.h"

namespace shale::runc {
namespace {

using nlohmann::json;

// runc spec's defaults: sh on a terminal, the rootfs in ./rootfs, read-only, runc's caps.
oci::RuntimeSpec DefaultSpec(bool rootless) {
  oci::RuntimeSpec s;
  s.process.terminal = true;
  s.process.args = {"sh"};
  s.process.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "TERM=xterm"};
  s.process.cwd = "/";
  std::vector<std::string> caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  s.process.capabilities = {caps, caps, {}, caps, {}};
  s.process.rlimits = {{"RLIMIT_NOFILE", 1024, 1024}};
  s.process.no_new_privileges = true;
  s.root = {"rootfs", true};
  s.hostname = "shale";
  s.mounts = oci::DefaultLinuxMounts();
  s.mounts.push_back(
      {"/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}});
  s.linux.namespaces = {{"pid", ""}, {"network", ""}, {"ipc", ""}, {"uts", ""}, {"mount", ""},
                        {"cgroup", ""}};
  s.linux.masked_paths = {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                          "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                          "/proc/sched_debug", "/sys/firmware", "/proc/scsi"};
  s.linux.readonly_paths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                            "/proc/sysrq-trigger"};
  s.linux.resources.devices = {{false, "a", std::nullopt, std::nullopt, "rwm"}};
  if (rootless) runtime::ToRootless(&s, geteuid(), getegid());
  return s;
}

json Features() {
  json caps = json::array();
  for (int c = 0; c <= 40; ++c) {
    static const char* kNames[] = {
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"};
    caps.push_back(kNames[c]);
  }
  return {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", kSpecVersion},
      {"hooks", {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                 "poststop"}},
      {"mountOptions",
       {"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap",
        "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime",
        "nostrictatime", "nosuid", "private", "rbind", "relatime", "remount", "ridmap", "ro",
        "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime",
        "suid", "sync", "unbindable"}},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}},
        {"capabilities", caps},
        {"cgroup",
         {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}, {"rdma", true}}},
        {"seccomp",
         {{"enabled", true},
          {"actions",
           {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP"}},
          {"operators",
           {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
          {"archs", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
          {"knownFlags", runtime::KnownSeccompFlags()},
          {"supportedFlags", runtime::SupportedSeccompFlags()}}},
        // features-linux.md: the runtime reads mounts[].uidMappings/gidMappings (bind
        // mounts only, as runc).
        {"mountExtensions", {{"idmap", {{"enabled", true}}}}},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}}}},
      {"annotations", {{"org.opencontainers.runc.version", "shale-runc " + std::string(kVersion)}}},
  };
}

}  // namespace

void RegisterSpec(CLI::App& app, Globals& g) {
  auto bundle = std::make_shared<std::string>(".");
  auto rootless = std::make_shared<bool>(false);
  CLI::App* spec = app.add_subcommand("spec", "Write a default config.json into the bundle");
  spec->add_option("--bundle,-b", *bundle, "Bundle directory")->capture_default_str();
  spec->add_flag("--rootless", *rootless, "A spec for an unprivileged user (user namespace)");
  spec->callback([&g, bundle, rootless] {
    g.action = [bundle, rootless]() -> Result<int> {
      std::string path = AbsPath(*bundle) + "/config.json";
      if (PathExists(path))
        return Error(Errc::kAlreadyExists, path + " exists: remove it first");
      TRY(WriteFileAtomic(path, oci::ToJson(DefaultSpec(*rootless)).dump(2) + "\n", 0644));
      return 0;
    };
  });
  CLI::App* features = app.add_subcommand("features", "Print what this runtime supports (JSON)");
  features->callback([&g] {
    g.action = []() -> Result<int> {
      std::cout << Features().dump(2) << "\n";
      return 0;
    };
  });
}

}  // namespace shale::runc
