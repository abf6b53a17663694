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

// Creates a new network namespace bound at `path`, with lo up: unshares in this process,
// binds, and returns this process to its own namespace (so that the plugins it runs next
// start in the host's; the background attach calls it, in a process of its own).
// kAlreadyExists if `path` exists. On error nothing is left.
Result<void> CreateNetns(const std::string& path);
// Unmounts and removes `path`; a missing one is fine. The namespace itself goes when its
// last user (the container) is gone.
Result<void> RemoveNetns(const std::string& path);

}  // namespace shale::network
