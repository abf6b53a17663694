// The OCI runtime spec (config.json), the only input of the runtime (runtime-spec v1.1).
// Data only; JSON (de)serialisation in runtime_spec.cc.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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
  std::optional<uint32_t> umask;  // unset: 022
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
  std::optional<int> oom_score_adj;  // written to /proc/self/oom_score_adj before exec
  std::string selinux_label;         // accepted only where SELinux is off (it then means nothing)
  // process.scheduler: sched_setattr(2) of the process before exec.
  struct Scheduler {
    std::string policy;                // "SCHED_OTHER", "SCHED_BATCH", "SCHED_FIFO", ...
    std::optional<int32_t> nice, priority;
    std::vector<std::string> flags;    // "SCHED_FLAG_RESET_ON_FORK", ...
    std::optional<uint64_t> runtime, deadline, period;  // ns, SCHED_DEADLINE
  };
  std::optional<Scheduler> scheduler;
  // process.ioPriority: ioprio_set(2) of the process before exec.
  struct IoPriority {
    std::string io_class;  // "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"
    int32_t priority = 0;  // 0 (highest) .. 7
  };
  std::optional<IoPriority> io_priority;
};

// linux.personality: the execution domain of the container's processes (personality(2)).
struct Personality {
  std::string domain;              // "LINUX" or "LINUX32"
  std::vector<std::string> flags;  // the spec defines none yet
};

struct Root {
  std::string path;  // absolute: the already mounted rootfs (overlay2/<id>/merged)
  bool readonly = false;
};

// linux.uidMappings / gidMappings: container ids [container_id, +size) are host ids
// [host_id, +size). Written by the runtime into the new user namespace's uid_map/gid_map.
struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
  bool operator==(const IdMapping&) const = default;
};

struct Mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
  // mounts[].uidMappings / gidMappings (runtime-spec 1.2, an idmapped bind mount): a file the
  // source's file system says is owned by container_id + i shows through the mount as owned
  // by host_id + i, host ids being those of the runtime's user namespace (the uid_map format;
  // runc and crun write these lines into the mount's user namespace as they are). Both or
  // neither; options "idmap" or "ridmap" say how (mount_options.h).
  std::vector<IdMapping> uid_mappings, gid_mappings;
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

// linux.resources.blockIO.weightDevice[]: a per-device weight and/or leaf weight.
struct BlockIoWeightDevice {
  int64_t major = 0, minor = 0;
  std::optional<uint16_t> weight, leaf_weight;  // 10..1000
};
// linux.resources.blockIO.throttle*Device[]: bytes or I/O operations per second.
struct BlockIoThrottleDevice {
  int64_t major = 0, minor = 0;
  uint64_t rate = 0;
};
// linux.resources.hugepageLimits[]: pageSize as the kernel names it ("2MB", "1GB").
struct HugepageLimit {
  std::string page_size;
  uint64_t limit = 0;  // bytes
};

struct LinuxResources {
  std::optional<int64_t> memory_limit;  // bytes
  std::optional<int64_t> memory_swap;
  std::optional<int64_t> cpu_quota;     // microseconds per period
  std::optional<uint64_t> cpu_period;
  std::optional<uint64_t> cpu_shares;
  std::optional<int64_t> pids_limit;
  std::optional<int64_t> memory_reservation;      // soft limit (v1 soft_limit, v2 memory.low)
  std::optional<uint64_t> memory_swappiness;      // v1 only
  std::optional<bool> memory_disable_oom_killer;  // v1 only
  std::optional<int64_t> memory_kernel, memory_kernel_tcp;  // v1 only (kmem, deprecated)
  std::optional<bool> memory_use_hierarchy;       // v1 memory.use_hierarchy; v2 always is
  // Refuse a new memory limit below the current usage (instead of the kernel reclaiming or
  // OOM-killing to meet it).
  std::optional<bool> memory_check_before_update;
  std::string cpu_cpus, cpu_mems;                 // cpuset lists: "0-3,5"
  std::optional<int64_t> cpu_realtime_runtime;    // v1 only (cpu.rt_runtime_us)
  std::optional<uint64_t> cpu_realtime_period;
  std::optional<uint64_t> cpu_burst;  // microseconds a period may borrow (v1 cfs_burst_us, v2 cpu.max.burst)
  std::optional<int64_t> cpu_idle;    // 1: SCHED_IDLE for the whole cgroup (cpu.idle)
  // Empty: the runtime leaves device access as the parent cgroup has it (everything on a
  // host). DefaultDeviceRules() for a confined container; PrivilegedDeviceRules() for all.
  std::vector<DeviceRule> devices;
  // blockIO: v1 blkio.*, v2 io.* (weights converted).
  std::optional<uint16_t> blkio_weight, blkio_leaf_weight;
  std::vector<BlockIoWeightDevice> blkio_weight_device;
  std::vector<BlockIoThrottleDevice> blkio_throttle_read_bps, blkio_throttle_write_bps,
      blkio_throttle_read_iops, blkio_throttle_write_iops;
  std::vector<HugepageLimit> hugepage_limits;
  // network: v1 only (net_cls.classid, net_prio.ifpriomap); v2 has no such controllers.
  std::optional<uint32_t> network_class_id;
  std::vector<std::pair<std::string, uint32_t>> network_priorities;  // interface, priority
  // rdma: per device (an HCA name, "mlx5_1"), the most handles and objects; v1 rdma.max in
  // the rdma hierarchy, v2 rdma.max. Unset members are "max".
  struct RdmaLimit {
    std::optional<uint32_t> hca_handles, hca_objects;
    bool operator==(const RdmaLimit&) const = default;
  };
  std::map<std::string, RdmaLimit> rdma;
  // unified: cgroup v2 files by name ("memory.high" -> "1G"), written as given after every
  // other field, so they win over a converted one (runc's order).
  std::map<std::string, std::string> unified;
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
  // SCMP_ACT_NOTIFY: the unix socket (AF_UNIX, SOCK_STREAM) the runtime sends the filter's
  // notify fd to, with the container process state (config-linux.md "The Container Process
  // State"); its `metadata` is listener_metadata. Both "" when unset. Decoding refuses a
  // listenerMetadata without a listenerPath; CompileSeccomp refuses NOTIFY without one.
  std::string listener_path;
  std::string listener_metadata;
};

// linux.devices: a node the runtime makes in the container (mknod, or a bind of the host's
// node where mknod is refused).
struct Device {
  std::string path;               // absolute, inside the container
  std::string type;               // "c", "b", "u" (unbuffered char), "p" (fifo)
  int64_t major = 0, minor = 0;
  std::optional<uint32_t> file_mode;  // permission bits; unset 0666
  std::optional<uint32_t> uid, gid;
};

struct Linux {
  std::vector<Namespace> namespaces;
  std::vector<Device> devices;
  std::vector<IdMapping> uid_mappings, gid_mappings;  // only with a new user namespace
  std::map<std::string, std::string> sysctl;          // "net.ipv4.ip_forward" -> "1"
  std::string rootfs_propagation;                      // "", "private", "rslave", "shared", ...
  std::string mount_label;                             // as process.selinux_label
  LinuxResources resources;
  std::string cgroups_path;  // "shale/<id>" (relative to the hierarchy roots)
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  // Unset: no filter (--privileged, --security-opt seccomp=unconfined).
  std::optional<Seccomp> seccomp;
  std::optional<Personality> personality;
};

// One hook (runtime-spec config.md#posix-platform-hooks): path is absolute, run with args and
// env as given, the container's state JSON on stdin; killed after `timeout` seconds if set.
struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout;
};

// When each runs (runtime-spec): prestart and createRuntime in the runtime's namespaces after
// the container's namespaces exist, before pivot_root; createContainer in the container's
// mount namespace before pivot_root; startContainer inside the container just before the
// user process is exec'd; poststart after it is; poststop after the container is deleted.
struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
  bool empty() const {
    return prestart.empty() && create_runtime.empty() && create_container.empty() &&
           start_container.empty() && poststart.empty() && poststop.empty();
  }
};

struct RuntimeSpec {
  std::string oci_version = "1.1.0";
  Process process;
  Root root;
  std::string hostname;
  std::string domainname;
  std::vector<Mount> mounts;
  Hooks hooks;
  Linux linux;
  nlohmann::json annotations = nlohmann::json::object();
};

nlohmann::json ToJson(const RuntimeSpec& spec);
// kInvalidArgument naming the field on malformed input. kUnsupported naming every field of
// the runtime spec that shale does not implement (linux.intelRdt, process.apparmorProfile,
// ...): such a field is never ignored. A field the spec does not define at all is ignored
// with a warning on stderr, as the spec requires. A field that is present but null or empty
// ({}, [], "") counts as absent. ociVersion must be a SemVer 2.0.0 1.x version. Id mappings
// (linux.uidMappings/gidMappings and each mount's) are kInvalidArgument, naming the field,
// unless each line has a size above 0 and stays within 32 bits, no two lines overlap on
// either side, and there are at most 340 lines (what uid_map takes); a mount with uidMappings
// must have gidMappings and the reverse.
Result<RuntimeSpec> RuntimeSpecFromJson(const nlohmann::json& j);
// The MAJOR of a SemVer 2.0.0 version ("1" of "1.2.0-rc.1+dev"); nullopt if `v` is not one.
std::optional<std::string_view> SemVerMajor(std::string_view v);

// Docker's default capability set (14 capabilities).
std::vector<std::string> DefaultCapabilities();
// The mounts every Linux container gets (runc's spec): /proc, /dev (tmpfs), /dev/pts,
// /dev/shm, /dev/mqueue, /sys (read-only).
std::vector<Mount> DefaultLinuxMounts();
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
