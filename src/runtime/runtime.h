// The runtime: starts and manages a container's processes from an OCI runtime spec.
// Knows nothing of images, layers or registries: spec.root.path is an already mounted rootfs.
//
// Run() is the hot path of `shale run`: one clone into new namespaces, a flat list of setup
// steps in the child (mounts per spec, pivot_root, masked paths, capabilities, rlimits,
// no_new_privs), then execve. The parent returns once execve succeeded or failed.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "oci/runtime_spec.h"
#include "util/error.h"
#include "util/fd.h"

namespace shale::runtime {

struct Stdio {
  int in = -1, out = -1, err = -1;  // -1: inherit the caller's
};

struct RunOptions {
  std::string container_id;
  Stdio stdio;                      // ignored when spec.process.terminal: a pty is made
  bool no_pivot = false;            // chroot instead of pivot_root (--no-pivot)
  bool die_with_parent = true;      // PR_SET_PDEATHSIG(SIGKILL) on the container's init
};

struct Started {
  pid_t pid = -1;                   // in the caller's pid namespace
  UniqueFd pidfd;
  UniqueFd pty_master;              // set when spec.process.terminal
};

// Creates the cgroup (spec.linux.cgroups_path, resources applied), the namespaces, the mounts,
// switches root and execs spec.process. Errors: kNotFound when the executable is missing
// (shale run exits 127), kPermission when it cannot be executed (126), others as they come.
// On any failure nothing is left behind (no cgroup, no process).
Result<Started> Run(const oci::RuntimeSpec& spec, const RunOptions& opts);

struct ExecOptions {
  Stdio stdio;
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
