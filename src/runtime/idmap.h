// Idmapped bind mounts (runtime-spec 1.2: mounts[].uidMappings/gidMappings, options idmap and
// ridmap), as runc 1.2 and crun make them: the runtime, still in the host's user namespace,
// makes a user namespace holding the mount's mapping, clones the source as a detached tree
// (open_tree OPEN_TREE_CLONE), idmaps it (mount_setattr MOUNT_ATTR_IDMAP) and hands the tree's
// fd across the clone; the init attaches it with move_mount onto the destination resolved
// inside the rootfs. mount_setattr needs CAP_SYS_ADMIN over the source's file system (the
// initial user namespace), which a container's own user namespace does not give, hence the
// parent; attaching a detached tree is allowed there.
//
// What a mapping means: a file the source's file system says is owned by containerID + i shows
// through the mount as owned by hostID + i, hostID in the runtime's user namespace (the lines
// are written into the mount's user namespace's uid_map as they are, as runc and crun do). In a
// container with a user namespace the mount therefore shows those host ids as the container
// ids linux.uidMappings gives them; `idmap` without mappings takes the container's own
// (linux.uidMappings, or the user namespace joined by path), so that files owned by 0 on disk
// are root's in the container.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/runtime_spec.h"
#include "runtime/mount_options.h"
#include "util/error.h"
#include "util/fd.h"

namespace shale::runtime {

struct PlannedMount;

// How a PlannedMount is idmapped: the user namespace whose mapping it takes is made from
// `uid`/`gid`, or is the container's joined one at `userns_path` (then `uid`/`gid` are empty).
struct MountIdmap {
  std::vector<oci::IdMapping> uid, gid;
  std::string userns_path;
  bool recursive = false;  // ridmap: every mount of the (rbind) tree, not only its top one
};

// Decides whether mount `m` (options parsed into `o`) of `spec` is idmapped and with which
// mapping (pure). Not idmapped (nullopt) without the options idmap/ridmap and without
// mappings; mappings without either option mean idmap (runc). kInvalidArgument naming the
// destination for: a mount that is not a bind; idmap without mappings in a container that has
// no user namespace (the runtime spec's MUST); crun's "idmap=uids=..." form. kPermission for a
// rootless runtime (runc refuses it too: mount_setattr needs root in the initial namespace).
Result<std::optional<MountIdmap>> PlanMountIdmap(const oci::Mount& m, const MountOptions& o,
                                                 const oci::RuntimeSpec& spec, bool rootless);

// uid_map text: "containerID hostID size\n" per mapping.
std::string FormatIdMap(const std::vector<oci::IdMapping>& maps);

// Writes `maps` into /proc/<pid>/<file> (uid_map or gid_map); `whose` names the namespace in
// the error ("the container's user namespace").
Result<void> WriteIdMap(pid_t pid, const char* file, const std::vector<oci::IdMapping>& maps,
                        std::string_view whose);

// A new user namespace holding `uid`/`gid`, as an fd of its /proc/<pid>/ns/user: a child is
// cloned into it, its maps are written, the fd opened, and the child killed and reaped
// (the namespace lives on while the fd does). REQUIRES: single-threaded caller; CAP_SETUID and
// CAP_SETGID (root), as writing a map of other ids takes.
Result<UniqueFd> NewUserNamespace(const std::vector<oci::IdMapping>& uid,
                                  const std::vector<oci::IdMapping>& gid);

// For every mount of `mounts` with an `idmap`: the detached idmapped tree of its source, one
// user namespace per distinct mapping. Sets each such mount's `tree_fd` and returns the fds
// owning them (O_CLOEXEC: the init inherits them across the clone, closes each once attached,
// and none survives an execve). Errors name the mount's destination and the cause: the kernel
// lacks the syscalls (kUnsupported), the file system of the source does not allow idmapped
// mounts (mount_setattr EINVAL, kInvalidArgument, the file system's type named), no privilege
// (kPermission).
Result<std::vector<UniqueFd>> OpenIdmappedTrees(std::vector<PlannedMount>* mounts);

}  // namespace shale::runtime
