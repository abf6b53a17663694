// Rootless mode: what changes when the runtime runs as an unprivileged user (shale-runc
// --rootless, runc's and crun's mode). The decisions are pure functions over text and specs,
// tested without a user namespace; runtime.cc and init.cc act on them.
//
// What an unprivileged user can do, and so what rootless mode does:
//   * clone3 with CLONE_NEWUSER plus the other namespaces (the user namespace is made first
//     and owns them); the parent writes the maps: one mapping of its own euid/egid of size 1
//     directly ("deny" into setgroups before gid_map, as the kernel requires), anything else
//     through the setuid newuidmap/newgidmap (package uidmap, /etc/subuid), as runc does;
//   * no mknod: device nodes are bound from the host (init.cc already falls back to that);
//   * no cgroup unless one is delegated to it: see ResourceLimitFields.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "oci/runtime_spec.h"
#include "util/error.h"

namespace shale::runtime {

// True if `uid_map` (the text of /proc/self/uid_map) is the single line mapping the whole id
// range onto itself ("0 0 4294967295"): the initial user namespace, or one that was given
// everything. False for any partial mapping and for text that does not parse.
bool UidMapIsFullRange(std::string_view uid_map);
// runc's `--rootless auto`: an euid other than 0, or euid 0 inside a user namespace whose
// mapping is not the full range (root of a rootless podman's namespace, say).
bool DetectRootless(uid_t euid, std::string_view uid_map);

// runc's `spec --rootless` rewrite (libcontainer/specconv ToRootless) for the caller
// `uid`/`gid`: a new user namespace mapping container root to them (size 1), no network
// namespace (the host's, where sysfs cannot be mounted by an unprivileged user: /sys becomes
// a read-only rbind of the host's), no uid=/gid= mount options (gid 5 is not mapped) and no
// linux.resources.
void ToRootless(oci::RuntimeSpec* spec, uid_t uid, gid_t gid);

// The config.json names of the fields of `r` that set a limit ("linux.resources.memory.limit"),
// in the spec's order; empty when none does. Device rules that only deny count for none:
// without a device cgroup the container still reaches only the default nodes (bound from
// the host; nothing can be mknod'ed in a user namespace), which is all that deny-all plus
// the runtime's default rules allows.
std::vector<std::string> ResourceLimitFields(const oci::LinuxResources& r);

// True if `maps` is one mapping of size 1 whose host id is `id`: what the kernel lets a
// process write for its own euid (egid) without privilege.
bool IsSelfMapping(const std::vector<oci::IdMapping>& maps, uint32_t id);
// The argv of newuidmap/newgidmap (`tool`) for the user namespace of `pid`:
// {tool, pid, containerID, hostID, size, ...}.
std::vector<std::string> IdMapToolArgs(const char* tool, pid_t pid,
                                       const std::vector<oci::IdMapping>& maps);

// Writes the uid_map/gid_map of the new user namespace of `pid` as an unprivileged parent:
// directly for a self mapping (setgroups "deny" before gid_map), else by running
// newuidmap/newgidmap. kPermission naming the tool and /etc/subuid (/etc/subgid) when the
// tool refuses.
Result<void> WriteIdMapsUnprivileged(pid_t pid, const oci::Linux& l);

// `root` and every pid descending from it in `pid_ppid` ({pid, parent pid}, as read from
// /proc/<pid>/stat), `root` first, then in breadth-first order.
std::vector<pid_t> Descendants(pid_t root, const std::vector<std::pair<pid_t, pid_t>>& pid_ppid);

// The processes of a container that has no cgroup, found through /proc: every process in the
// init's pid namespace when that is not ours, else the init and its descendants. Empty when
// the init `pid` (with start time `pid_start`) is gone.
std::vector<pid_t> ProcessPids(pid_t pid, uint64_t pid_start);

}  // namespace shale::runtime
