// Network namespaces as files: a new namespace kept alive by a bind mount of its nsfs inode
// on a file (as `ip netns add` does), so that CNI plugins can enter it (CNI_NETNS) before
// the container exists and the runtime joins it through linux.namespaces[].path.
#pragma once

#include <string>

#include "util/error.h"

namespace shale::network {

// Where the files live: /run/shale/netns (tmpfs: a reboot takes them away with the
// namespaces), or $SHALE_NETNS_DIR.
std::string NetnsDir();
// NetnsDir()/<id>.
std::string NetnsPath(const std::string& container_id);

// Creates a new network namespace bound at `path`. kAlreadyExists if `path` exists. On error
// nothing is left.
Result<void> CreateNetns(const std::string& path);
// The same without a child process, for a process that has one of its own to spare (the
// background attach): unshares here, binds, brings lo up, and returns this process to its
// network namespace.
Result<void> CreateNetnsHere(const std::string& path);
// Unmounts and removes `path`; a missing one is fine. The namespace itself goes when its
// last user (the container) is gone.
Result<void> RemoveNetns(const std::string& path);

}  // namespace shale::network
