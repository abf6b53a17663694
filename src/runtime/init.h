// The container's init child: everything it needs is computed by the parent before clone
// (InitConfig), so the child only executes a flat list of steps (crun's
// container_init_setup) and reports failure through the stage channel.
#pragma once

#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "oci/runtime_spec.h"
#include "runtime/channel.h"
#include "runtime/idmap.h"
#include "runtime/mount_options.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"

namespace shale::runtime {

struct PlannedMount {
  std::string destination;  // inside the rootfs
  std::string source;
  std::string type;         // empty for binds
  MountOptions options;
  bool source_is_file = false;  // binds of a file need a file as mount point
  // An idmapped bind (idmap.h): the parent opens its detached idmapped tree before the clone
  // (OpenIdmappedTrees sets tree_fd, inherited by the init), which the init attaches with
  // move_mount instead of binding `source`.
  std::optional<MountIdmap> idmap;
  int tree_fd = -1;
};

struct PlannedDevice {
  std::string path;       // inside the rootfs, absolute
  mode_t mode;            // S_IFCHR/S_IFBLK/S_IFIFO | permissions
  dev_t dev;
  uid_t uid;
  gid_t gid;
};

struct PlannedRlimit {
  std::string name;
  int resource;
  struct rlimit limit;
};

struct Caps {
  std::vector<cap_value_t> bounding, effective, permitted, inheritable, ambient;
};

// What the process part of a spec (Run and Exec) becomes.
struct ProcessPlan {
  std::vector<PlannedRlimit> rlimits;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  Caps caps;
  bool no_new_privs = false;
  std::string cwd = "/";
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string path;          // PATH from env, for the executable lookup
  int stdio[3] = {-1, -1, -1};
  // process.terminal: the child opens a pty from the container's own /dev/ptmx (its devpts
  // instance), makes the slave its controlling terminal and stdio, and sends the master to
  // the parent (Stage::kTerminal). Size in rows x columns, 0 to leave the kernel's default.
  bool terminal = false;
  unsigned console_height = 0, console_width = 0;
  mode_t umask = 022;
  std::optional<int> oom_score_adj;
  int preserve_fds = 0;      // fds 3..3+n-1 stay open across execve
  // The user namespace's setgroups is "deny" (rootless, one gid mapped: the kernel's price
  // for writing gid_map unprivileged): setgroups(2) fails, so it is skipped when there are
  // no additional gids, and additionalGids are refused by name.
  bool setgroups_denied = false;
  // linux.seccomp, compiled. Loaded while still privileged (before the user and capability
  // switch) without no_new_privs, else as late as possible: after the stage report, just
  // before execve (runc's order). With a listener (SCMP_ACT_NOTIFY) and no_new_privs, at the
  // end of the process set-up instead, before kReadyToExec, so that the notify fd reaches
  // the runtime (Stage::kSeccompFd) while it still waits for the stages.
  SeccompProgram seccomp;
  // process.scheduler, linux.personality and process.ioPriority, checked and converted:
  // applied before the user and capability switch (an RT policy or class needs
  // CAP_SYS_NICE / CAP_SYS_ADMIN) and before the filter.
  struct Scheduler {
    uint32_t policy = 0;
    uint64_t flags = 0;
    int32_t nice = 0;
    uint32_t priority = 0;
    uint64_t runtime = 0, deadline = 0, period = 0;
  };
  std::optional<Scheduler> scheduler;
  std::optional<int> io_priority;             // ioprio_set's value: class << 13 | level
  std::optional<unsigned long> personality;   // PER_LINUX, PER_LINUX32
};

struct InitConfig {
  // Namespaces joined by path (setns in the child); pid is joined by the parent. A user
  // namespace comes first: the others are joined with its capabilities.
  std::vector<std::pair<int, int>> join_ns;  // fd, CLONE_NEW*
  bool new_uts = false, new_net = false, new_cgroupns = false;
  // In a user namespace (new, its maps written by the parent before kStart, or joined): the
  // init becomes its root (setresuid/setresgid 0) before any mount.
  bool in_user_ns = false;
  // v1 `tasks` files the init writes "0" into first (CgroupManager::SelfJoinFiles).
  std::vector<std::string> cgroup_tasks;
  bool die_with_parent = true;
  std::string hostname, domainname;
  // Propagation of "/" in the new mount namespace (rootfsPropagation: MS_SHARED, MS_SLAVE,
  // MS_PRIVATE or MS_UNBINDABLE, with MS_REC for the r* forms); 0: MS_REC|MS_PRIVATE.
  unsigned long root_propagation = 0;
  std::vector<std::pair<std::string, std::string>> sysctl;  // "net/ipv4/ip_forward", "1"
  // Hooks: with any, the child stops at kMountsDone for the parent's prestart and
  // createRuntime hooks and gets its pid back with kHooksDone.
  bool sync_hooks = false;
  std::vector<oci::Hook> create_container, start_container;
  nlohmann::json state;      // the state JSON the hooks read (pid filled in by the child)
  // >= 0: the exec fifo (opened O_RDWR): the created init blocks reading one byte from it.
  // -1: it waits for Stage::kExec on the channel.
  int release_fd = -1;
  std::string rootfs;
  bool root_readonly = false;
  bool no_pivot = false;
  // The spec lists no mount namespace: the container shares the runtime's (runtime-spec), its
  // mounts are made there under a private bind of the rootfs on itself, and it is chrooted,
  // never pivoted (that would move the host's root).
  bool host_mount_ns = false;
  std::vector<PlannedMount> mounts;
  std::vector<PlannedDevice> devices;  // linux.devices, made after the mounts
  bool cgroup_v2 = false;
  std::vector<std::string> masked_paths, readonly_paths;
  ProcessPlan process;
};

// Builds the ProcessPlan: resolves capability and rlimit names, the scheduler, the I/O
// priority and the personality, compiles `seccomp` if set (through `seccomp_cache` when
// not null). kInvalidArgument naming the bad value. Runs in the parent.
Result<ProcessPlan> PlanProcess(const oci::Process& p, const oci::Capabilities& caps,
                                bool no_new_privs,
                                const std::optional<oci::Seccomp>& seccomp = std::nullopt,
                                const std::optional<oci::Personality>& personality = std::nullopt,
                                SeccompCache* seccomp_cache = nullptr);
Result<InitConfig> PlanInit(const oci::RuntimeSpec& spec, const RunOptions& opts,
                            bool cgroup_v2);

// True if `spec` lists no mount namespace: the container shares the runtime's.
bool SharesHostMountNs(const oci::RuntimeSpec& spec);
// For a container made with host_mount_ns: detaches the bind of `rootfs` on itself and with
// it every mount made for the container. Nothing when the rootfs carries no such bind (the
// top mount at `rootfs` is the rootfs's own mount, e.g. its overlay).
Result<void> DetachRootfsBind(const std::string& rootfs);

// Child side. Never return: exec or _exit after reporting on `ch`.
[[noreturn]] void RunInit(const InitConfig& cfg, Channel& ch);
// Exec's child: it is already in the container's namespaces.
[[noreturn]] void RunExecInit(const std::vector<std::pair<int, int>>& join_ns,
                              const std::vector<std::string>& cgroup_tasks, const ProcessPlan& p,
                              Channel& ch);
// Rootless exec's helper: joins the user namespace `user_fd` (its owner has every capability
// there), then the pid namespace `pid_fd` for its children (which takes CAP_SYS_ADMIN in the
// caller's user namespace: the reason for this step), forks RunExecInit(join_ns, ...), sends
// that child's pid (Stage::kChildPid) and exits.
[[noreturn]] void RunExecHelper(int user_fd, int pid_fd,
                                const std::vector<std::pair<int, int>>& join_ns,
                                const std::vector<std::string>& cgroup_tasks,
                                const ProcessPlan& p, Channel& ch);

}  // namespace shale::runtime
