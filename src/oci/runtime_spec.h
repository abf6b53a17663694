// The OCI runtime spec (config.json), the only input of the runtime (runtime-spec v1.1).
// Data only; JSON (de)serialisation in runtime_spec.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

// gnu++20 predefines `linux` as 1; the spec has a member of that name.
#ifdef linux
#undef linux
#endif

namespace shale::oci {

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
};

struct Capabilities {
  std::vector<std::string> bounding, effective, inheritable, permitted, ambient;  // "CAP_CHOWN"
};

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t hard = 0;
  uint64_t soft = 0;
};

struct Process {
  bool terminal = false;
  uint32_t console_height = 0, console_width = 0;
  User user;
  std::vector<std::string> args;
  std::vector<std::string> env;  // "K=V"
  std::string cwd = "/";
  Capabilities capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
};

struct Root {
  std::string path;  // absolute: the already mounted rootfs (overlay2/<id>/merged)
  bool readonly = false;
};

struct Mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct Namespace {
  std::string type;  // "pid", "network", "mount", "ipc", "uts", "user", "cgroup"
  std::string path;  // join an existing one if set
};

// One device cgroup rule (runtime-spec linux.resources.devices[]). Rules apply in order; for a
// given access the last matching rule decides (as successive writes to cgroup v1
// devices.allow/devices.deny).
struct DeviceRule {
  bool allow = false;
  std::string type;               // "c", "b", or "a"/"" for all devices
  std::optional<int64_t> major;   // unset: any
  std::optional<int64_t> minor;   // unset: any
  std::string access;             // any of "rwm"; "" means "rwm"
};

struct LinuxResources {
  std::optional<int64_t> memory_limit;  // bytes
  std::optional<int64_t> memory_swap;
  std::optional<int64_t> cpu_quota;     // microseconds per period
  std::optional<uint64_t> cpu_period;
  std::optional<uint64_t> cpu_shares;
  std::optional<int64_t> pids_limit;
  // Empty: the runtime leaves device access as the parent cgroup has it (everything on a
  // host). DefaultDeviceRules() for a confined container; PrivilegedDeviceRules() for all.
  std::vector<DeviceRule> devices;
};

// runtime-spec linux.seccomp.syscalls[].args[].
struct SeccompArg {
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  std::string op;  // "SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", ..., "SCMP_CMP_MASKED_EQ"
};

struct SeccompSyscall {
  std::vector<std::string> names;
  std::string action;                  // "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", ...
  std::optional<uint32_t> errno_ret;   // for SCMP_ACT_ERRNO (default EPERM) / SCMP_ACT_TRACE
  std::vector<SeccompArg> args;        // all must match (one rule), except that args naming
                                       // the same index twice become one rule each (runc)
};

// runtime-spec linux.seccomp.
struct Seccomp {
  std::string default_action = "SCMP_ACT_ALLOW";
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;  // "SCMP_ARCH_X86_64"; the native one is always in
  std::vector<std::string> flags;          // "SECCOMP_FILTER_FLAG_LOG", "..._SPEC_ALLOW"
  std::vector<SeccompSyscall> syscalls;
};

struct Linux {
  std::vector<Namespace> namespaces;
  LinuxResources resources;
  std::string cgroups_path;  // "shale/<id>" (relative to the hierarchy roots)
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  // Unset: no filter (--privileged, --security-opt seccomp=unconfined).
  std::optional<Seccomp> seccomp;
};

struct RuntimeSpec {
  std::string oci_version = "1.1.0";
  Process process;
  Root root;
  std::string hostname;
  std::vector<Mount> mounts;
  Linux linux;
  nlohmann::json annotations = nlohmann::json::object();
};

nlohmann::json ToJson(const RuntimeSpec& spec);
// kInvalidArgument naming the field on malformed input.
Result<RuntimeSpec> RuntimeSpecFromJson(const nlohmann::json& j);

// Docker's default capability set (14 capabilities).
std::vector<std::string> DefaultCapabilities();
// Docker's masked and read-only /proc paths.
std::vector<std::string> DefaultMaskedPaths();
std::vector<std::string> DefaultReadonlyPaths();

// Docker's default device rules: deny all, then mknod of any char/block device and rw(m) of
// null, zero, full, random, urandom, tty, console, ptmx, pts/*, net/tun.
std::vector<DeviceRule> DefaultDeviceRules();
// --privileged: one rule allowing every access to every device.
std::vector<DeviceRule> PrivilegedDeviceRules();

// Docker's default seccomp profile in spirit, for a container holding the capabilities
// `caps` (names as in process.capabilities, "CAP_SYS_ADMIN"): everything is allowed except
// what Docker's profile leaves out (module loading, kexec, mount and namespace syscalls, bpf,
// keyrings, clock setting, reboot, ...), which fail with EPERM; clone with a namespace flag
// fails with EPERM, clone3 with ENOSYS (libc then falls back to clone), personality only with
// the values Docker allows. As Docker's `includes.caps` rules do, a capability in `caps` lifts
// the refusal of the syscalls it governs: CAP_SYS_ADMIN mount, umount2, unshare, setns, clone
// with namespace flags, clone3, ...; CAP_SYS_PTRACE kcmp, pidfd_getfd, process_madvise;
// CAP_SYS_CHROOT chroot (refused without it); and so on (seccomp_profile.cc has the table).
Seccomp DefaultSeccomp(const std::vector<std::string>& caps);

}  // namespace shale::oci
