// fstab-style mount options -> mount(2) flags, propagation and data (pure; runtime-private).
#pragma once

#include <string>
#include <vector>

#include "util/error.h"

namespace shale::runtime {

struct MountOptions {
  unsigned long flags = 0;        // MS_RDONLY, MS_NOSUID, ... (MS_BIND/MS_REC when bind)
  unsigned long propagation = 0;  // MS_PRIVATE|MS_REC, MS_SLAVE, ... applied after mounting
  bool bind = false;              // "bind" or "rbind" (or type "bind")
  std::string data;               // everything the kernel parses itself: "mode=755,size=65536k"
  // "idmap" / "ridmap" (runtime-spec 1.2): the bind is idmapped (mount_setattr
  // MOUNT_ATTR_IDMAP), with ridmap every mount of an rbind's tree, with idmap its top one only.
  // Never passed to mount(2).
  bool idmap = false;
  bool idmap_recursive = false;  // ridmap (implies idmap)
  // A bind mount ignores flags other than MS_BIND|MS_REC: those need a remount.
  bool NeedsRemount() const;
};

// Unknown words are passed to the filesystem as data. "defaults" and "tmpcopyup" are dropped.
// "idmap" and "ridmap" set the fields above (the last of them wins).
MountOptions ParseMountOptions(const std::string& type, const std::vector<std::string>& options);

}  // namespace shale::runtime
