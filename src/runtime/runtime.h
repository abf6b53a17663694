// The runtime: starts and manages a container's processes from an OCI runtime spec.
// Knows nothing of images, layers or registries: spec.root.path is an already mounted rootfs.
//
// The lifecycle is the runtime spec's: Create() clones the init into its namespaces, which
// does every mount, the cgroup and pivot_root and then blocks just before execve; the
// container is `created`. Start() releases it. With a state directory (shale-runc) the
// container outlives the creating process: state.h has its on-disk state, and Start, Kill,
// Delete and Pause below act on it from any later process. Without one (`shale run`), the
// init waits on the stage channel and only Created::Start can release it.
//
// Run() = Create + Start is the hot path of `shale run`.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "oci/runtime_spec.h"
#include "util/error.h"
#include "util/fd.h"

namespace shale::runtime {

class SeccompCache;  // seccomp.h

struct Stdio {
  int in = -1, out = -1, err = -1;  // -1: inherit the caller's
};

struct RunOptions {
  std::string container_id;
  Stdio stdio;                      // ignored when spec.process.terminal: a pty is made
  bool no_pivot = false;            // chroot instead of pivot_root (--no-pivot)
  bool die_with_parent = true;      // PR_SET_PDEATHSIG(SIGKILL) on the container's init
  // Where the state lives (state.h), made by Create and absent before; "" for none.
  std::string state_dir;
  std::string bundle;               // absolute; recorded in the state for `state`
  // Fds 3 .. 3+preserve_fds-1 stay open into the container (--preserve-fds, LISTEN_FDS);
  // every other fd above stderr is closed at execve.
  int preserve_fds = 0;
  // Rootless mode (shale-runc --rootless): the cgroup is optional. When it cannot be made
  // (no writable, delegated cgroup: EACCES/EPERM) the container runs without one if
  // linux.resources sets no limit, and is refused naming the field if it does (runc's
  // rootless rule, simplified). The state then records no cgroupsPath.
  bool rootless = false;
  // Where compiled seccomp programs are kept between containers (CompileSeccompCached);
  // nullptr = compiled for every container. Not owned.
  SeccompCache* seccomp_cache = nullptr;
};
using CreateOptions = RunOptions;

struct Started {
  pid_t pid = -1;                   // in the caller's pid namespace
  UniqueFd pidfd;
  UniqueFd pty_master;              // set when spec.process.terminal
};

// A container created by this process, its init blocked before execve. Move-only. Destroying
// it without Start or Detach kills the init and removes the cgroup and the state directory.
class Created {
 public:
  Created(Created&&) noexcept;
  Created& operator=(Created&&) = delete;
  ~Created();
  pid_t pid() const { return started_.pid; }
  UniqueFd& pty_master() { return started_.pty_master; }
  // Releases the init to its execve (startContainer hooks run inside first) and returns once
  // it succeeded: kNotFound when the executable is missing (shale run exits 127),
  // kPermission when it cannot be executed (126). Then runs the poststart hooks.
  Result<Started> Start() &&;
  // Leaves the created container to live on (shale-runc create): `start` releases it later.
  void Detach();

 private:
  friend Result<Created> Create(const oci::RuntimeSpec& spec, const RunOptions& opts);
  struct Impl;
  explicit Created(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  Started started_;
};

// Creates the cgroup (spec.linux.cgroups_path, resources applied), the namespaces (user
// namespaces with their id mappings), the mounts, runs the prestart, createRuntime and
// createContainer hooks, switches root, and returns with the init blocked just before
// execve. kAlreadyExists when opts.state_dir exists. On any failure nothing is left behind
// (no cgroup, no process, no state directory).
Result<Created> Create(const oci::RuntimeSpec& spec, const RunOptions& opts);

// --- On a container with a state directory (any process) ---

// created -> running: releases the init through its exec fifo, then runs poststart hooks
// (whose failure is only logged, as the spec says). kBusy naming the status otherwise.
Result<void> Start(const std::string& state_dir);
// Sends `sig` to the init, or with `all` to every process of its cgroup. kBusy when stopped.
Result<void> Kill(const std::string& state_dir, int sig, bool all);
// Removes a stopped container: its cgroup, then the poststop hooks, then the state
// directory. A created one is killed first; a running or paused one only with `force`
// (kBusy otherwise).
Result<void> Delete(const std::string& state_dir, bool force);
// Freezes or thaws a running container's cgroup; kBusy when it is not running (paused).
Result<void> Pause(const std::string& state_dir, bool paused);

// Creates the cgroup (spec.linux.cgroups_path, resources applied), the namespaces, the mounts,
// switches root and execs spec.process. Errors: kNotFound when the executable is missing
// (shale run exits 127), kPermission when it cannot be executed (126), others as they come.
// On any failure nothing is left behind (no cgroup, no process).
Result<Started> Run(const oci::RuntimeSpec& spec, const RunOptions& opts);

struct ExecOptions {
  Stdio stdio;
  int preserve_fds = 0;             // as RunOptions::preserve_fds
  // The container's state (OciState), sent with the process's seccomp notify fd to
  // linux.seccomp.listenerPath when the filter has SCMP_ACT_NOTIFY rules.
  nlohmann::json state = nlohmann::json::object();
  SeccompCache* seccomp_cache = nullptr;  // as RunOptions::seccomp_cache
  // Capabilities, no_new_privileges, masked paths are taken from the container's spec; the
  // process (args, env, cwd, user, terminal) from `process`.
};

// Starts `process` inside the running container whose init is `init_pid`: joins its
// namespaces and cgroup, applies the spec's capabilities and user, execs.
Result<Started> Exec(pid_t init_pid, const oci::RuntimeSpec& spec, const oci::Process& process,
                     const ExecOptions& opts);

// Cgroup operations on the container's cgroup (spec.linux.cgroups_path), v2 or v1.
Result<void> Freeze(const std::string& cgroups_path, bool frozen);
// True if the kernel OOM-killed a task of this cgroup (memory.events / memory.oom_control).
Result<bool> OomKilled(const std::string& cgroups_path);
// Kills every remaining task (SIGKILL) and removes the cgroup in every hierarchy.
Result<void> RemoveCgroup(const std::string& cgroups_path);
// Pids in the container's cgroup.
Result<std::vector<pid_t>> CgroupPids(const std::string& cgroups_path);

// Waits for `pid` (a child of this process); returns its exit status as a shell would:
// code, or 128+signal.
Result<int> Wait(pid_t pid);

}  // namespace shale::runtime
